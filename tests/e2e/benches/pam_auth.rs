//! Benchmark: one authentication through libpam + pam_netauth against the
//! same AuthEntity made directly with the core client, and logins per second
//! with 1, 8 and 32 concurrent processes. Needs root (private mount
//! namespace, as the PAM e2e tests). Run:
//!
//! ```text
//! cargo bench -p netauth-e2e --bench pam_auth
//! ```
//!
//! `PAM_BENCH_ITERATIONS` (default 400) sets the sample size of the latency
//! rows. Prints a Markdown table.

#[path = "../tests/pam_support/mod.rs"]
mod pam_support;

use std::time::{Duration, Instant};

use netauth_core::blocking::BlockingClient;
use netauth_core::config::TokenCacheKind;
use netauth_core::{ClientBuilder, Secret};
use pam_support::{config_for, start_world, Env};

const OFFLINE_OFF: &str = "[unix.pam]\noffline_login = false\n";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .copied()
        .unwrap_or_default()
}

struct Stats {
    median: Duration,
    p90: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    Stats {
        median: percentile(&samples, 50.0),
        p90: percentile(&samples, 90.0),
        p99: percentile(&samples, 99.0),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("pam_auth: benchmark only; run `cargo bench -p netauth-e2e --bench pam_auth`");
        return;
    }
    let iterations: usize = std::env::var("PAM_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(400);
    let warmup = 20;

    let mut env = Env::new();
    // Cached credentials off: what the module itself costs, comparable
    // with the direct call. The default (on) is measured at the end.
    let world = start_world(&env, OFFLINE_OFF);
    env.service("bench", "auth required @MODULE@ @CONFIG@\n");
    let drain = env.spawn_log_drain();
    let secret = Secret::new("alice-pw");

    // 1. The core client's blocking facade: a runtime, a connection and a
    //    TLS handshake per call, exactly the work the module does.
    let builder = ClientBuilder::from_config_file(env.config_path())
        .expect("config")
        .service_name("pam_netauth")
        .token_cache_kind(TokenCacheKind::Memory);
    let blocking = BlockingClient::new(builder.clone());
    let mut direct = Vec::with_capacity(iterations);
    for i in 0..iterations + warmup {
        let start = Instant::now();
        blocking.auth_entity("alice", &secret).expect("direct auth");
        if i >= warmup {
            direct.push(start.elapsed());
        }
    }

    // 2. Reference: the async client on one kept-open connection.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let reused: Vec<Duration> = runtime.block_on(async {
        let client = builder.build().expect("client");
        let mut samples = Vec::with_capacity(iterations);
        for i in 0..iterations + warmup {
            let start = Instant::now();
            client.auth_entity("alice", &secret).await.expect("auth");
            if i >= warmup {
                samples.push(start.elapsed());
            }
        }
        samples
    });
    drop(runtime);

    // 3. Through libpam: pam_start + pam_authenticate + pam_end per sample,
    //    in one process (the driver), conversation answering the password.
    let through_pam = timed_logins(&mut env, iterations, warmup);

    let direct = stats(direct);
    let reused = stats(reused);
    let pam = stats(through_pam);

    // 4. Throughput: P driver processes, each doing its share of logins.
    let total_logins = 960;
    let driver = env!("CARGO_BIN_EXE_pam_driver");
    let mut throughput = Vec::new();
    for processes in [1usize, 8, 32] {
        let per_process = total_logins / processes;
        let script = format!(
            "fail=0; pids=''; i=0; \
             while [ $i -lt {processes} ]; do \
               {driver} --repeat {per_process} --answer alice-pw bench alice & pids=\"$pids $!\"; i=$((i+1)); \
             done; \
             for p in $pids; do wait $p || fail=1; done; exit $fail"
        );
        let before = world.server.faults().call_count("AuthEntity");
        let run = env.run(&["sh", "-c", &script], "");
        assert!(run.success, "{processes} processes: {}", run.text());
        let done = processes * per_process;
        assert_eq!(
            world.server.faults().call_count("AuthEntity") - before,
            done
        );
        throughput.push((processes, done, run.elapsed));
    }
    // 5. The shipped default, cached credentials on: each successful login
    //    also makes an Argon2id verifier and writes it (fsync).
    env.write_config(&config_for(world.server.port(), &world.cert, ""));
    let default_iterations = (iterations / 4).max(20);
    let with_offline = stats(timed_logins(&mut env, default_iterations, 5));
    let logged = drain.finish();

    println!();
    println!("### pam_netauth: authentication latency ({iterations} samples each, after {warmup} warm-up)");
    println!();
    println!("| path | median ms | p90 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    println!(
        "| core client, blocking facade (runtime + TLS connection per call) | {} | {} | {} |",
        ms(direct.median),
        ms(direct.p90),
        ms(direct.p99)
    );
    println!(
        "| libpam + pam_netauth (pam_start + pam_authenticate + pam_end), `offline_login = false` | {} | {} | {} |",
        ms(pam.median),
        ms(pam.p90),
        ms(pam.p99)
    );
    println!(
        "| libpam + pam_netauth, shipped default `offline_login = true` ({default_iterations} samples) | {} | {} | {} |",
        ms(with_offline.median),
        ms(with_offline.p90),
        ms(with_offline.p99)
    );
    println!(
        "| reference: async client, one kept-open connection | {} | {} | {} |",
        ms(reused.median),
        ms(reused.p90),
        ms(reused.p99)
    );
    println!();
    println!(
        "Overhead of the module over the same direct call: median {} ms, p99 {} ms.",
        ms(pam.median.saturating_sub(direct.median)),
        ms(pam.p99.saturating_sub(direct.p99))
    );
    println!();
    println!("### pam_netauth: logins per second (concurrent processes, one PAM cycle per login)");
    println!();
    println!("| processes | logins | wall s | logins/s |");
    println!("|---:|---:|---:|---:|");
    for (processes, done, elapsed) in throughput {
        println!(
            "| {processes} | {done} | {:.2} | {:.0} |",
            elapsed.as_secs_f64(),
            done as f64 / elapsed.as_secs_f64()
        );
    }
    println!();
    println!("({logged} syslog messages captured during the run.)");
}

/// `iterations` timed PAM cycles (pam_start + pam_authenticate + pam_end)
/// in one driver process, after `warmup` untimed ones.
fn timed_logins(env: &mut Env, iterations: usize, warmup: usize) -> Vec<Duration> {
    let count = (iterations + warmup).to_string();
    let run = env.driver(&[
        "--repeat",
        &count,
        "--timings",
        "--answer",
        "alice-pw",
        "bench",
        "alice",
    ]);
    assert!(run.success, "pam run failed: {}", run.text());
    let samples: Vec<Duration> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("timing "))
        .filter_map(|n| n.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .skip(warmup)
        .collect();
    assert_eq!(samples.len(), iterations);
    samples
}

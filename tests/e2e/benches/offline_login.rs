//! Benchmark: what the cached credentials cost. Prints Markdown tables:
//!
//! 1. Argon2id parameter candidates: one verifier check (Argon2id + HMAC +
//!    the record read) in this process, per parameter set;
//! 2. through libpam + pam_netauth (the `pam_driver` program, one
//!    `pam_start` + `pam_authenticate` + `pam_end` per sample): an online
//!    login with `offline_login = false` and with the default (a verifier
//!    made and written after each online login), and a login during an
//!    outage answered from the cached verifier (the server drops every
//!    connection; after the first failure the offline state sends every
//!    login straight to the cache).
//!
//! Needs root (private mount namespace, as the PAM e2e tests). Run:
//!
//! ```text
//! cargo bench -p netauth-e2e --bench offline_login
//! ```
//!
//! `OFFLINE_BENCH_ITERATIONS` (default 60) sets the sample size.

#[path = "../tests/pam_support/mod.rs"]
mod pam_support;

use std::time::{Duration, Instant};

use netauth_cache::trusted::Owner;
use netauth_offline::verifier::{OfflinePolicy, VerifierParams};
use netauth_offline::{OfflineCheck, VerifierStore};
use pam_support::{start_world, Env};

fn median_p90(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| {
        let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
        samples.get(rank).copied().unwrap_or_default()
    };
    (at(50.0), at(90.0))
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `n` PAM logins of alice in one driver process; the per-cycle timings.
fn pam_logins(env: &mut Env, n: usize, password: &str) -> Vec<Duration> {
    let count = n.to_string();
    let run = env.driver(&[
        "--repeat",
        &count,
        "--timings",
        "--answer",
        password,
        "bench",
        "alice",
    ]);
    assert!(run.success, "pam run failed: {}", run.text());
    run.stdout
        .lines()
        .filter_map(|l| l.strip_prefix("timing "))
        .filter_map(|n| n.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .collect()
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "offline_login: benchmark only; run `cargo bench -p netauth-e2e --bench offline_login`"
        );
        return;
    }
    let iterations: usize = std::env::var("OFFLINE_BENCH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let warmup = 5;

    // 1. Parameter candidates, in process.
    let scratch = tempfile::tempdir().expect("temp dir");
    let policy = OfflinePolicy {
        max_age: None,
        failed_attempts: 0,
        failed_delay: Duration::ZERO,
    };
    let candidates = [
        (
            VerifierParams {
                m_kib: 12_288,
                t: 3,
                p: 1,
            },
            "OWASP line 3",
        ),
        (
            VerifierParams {
                m_kib: 19_456,
                t: 2,
                p: 1,
            },
            "OWASP line 2 (default)",
        ),
        (
            VerifierParams {
                m_kib: 47_104,
                t: 1,
                p: 1,
            },
            "OWASP line 1",
        ),
        (
            VerifierParams {
                m_kib: 65_536,
                t: 3,
                p: 4,
            },
            "RFC 9106 second choice",
        ),
    ];
    let mut table = Vec::new();
    for (i, (params, name)) in candidates.iter().enumerate() {
        let store = VerifierStore::at(scratch.path().join(format!("s{i}")), Owner::RootOrCaller)
            .with_params(*params);
        store.store("alice", "alice-pw", 1000).expect("store");
        let mut samples = Vec::new();
        for n in 0..iterations + warmup {
            let start = Instant::now();
            let outcome = store.check("alice", "alice-pw", 1000, &policy);
            if n >= warmup {
                samples.push(start.elapsed());
            }
            assert!(
                matches!(outcome, OfflineCheck::Accepted { .. }),
                "{outcome:?}"
            );
        }
        table.push((*params, *name, median_p90(samples)));
    }

    // 2. Through libpam.
    let mut env = Env::new();
    let world = start_world(&env, "[unix.pam]\noffline_login = false\n");
    env.service("bench", "auth required @MODULE@ @CONFIG@\n");
    let drain = env.spawn_log_drain();
    let without = pam_logins(&mut env, iterations + warmup, "alice-pw");
    let config = std::fs::read_to_string(env.config_path()).expect("config");
    env.write_config(&config.replace("offline_login = false", "offline_login = true"));
    let with = pam_logins(&mut env, iterations + warmup, "alice-pw");
    world.server.faults().set_drop_connections(true);
    let calls = world.server.faults().call_count("*");
    let offline = pam_logins(&mut env, iterations + warmup, "alice-pw");
    assert_eq!(world.server.faults().call_count("*"), calls);
    let first_outage_login = offline.first().copied().unwrap_or_default();
    let logged = drain.finish();

    let without = median_p90(without.into_iter().skip(warmup).collect());
    let with = median_p90(with.into_iter().skip(warmup).collect());
    let offline = median_p90(offline.into_iter().skip(warmup).collect());

    println!();
    println!("### Argon2id parameters: one offline check ({iterations} samples, in process)");
    println!();
    println!("| parameters | | median ms | p90 ms |");
    println!("|---|---|---:|---:|");
    for (p, name, (median, p90)) in table {
        println!(
            "| m={} KiB, t={}, p={} | {name} | {} | {} |",
            p.m_kib,
            p.t,
            p.p,
            ms(median),
            ms(p90)
        );
    }
    println!();
    println!("### pam_netauth with cached credentials ({iterations} samples each)");
    println!();
    println!("| login | median ms | p90 ms |");
    println!("|---|---:|---:|");
    println!(
        "| online, offline_login = false | {} | {} |",
        ms(without.0),
        ms(without.1)
    );
    println!(
        "| online, offline_login = true (verifier made and written) | {} | {} |",
        ms(with.0),
        ms(with.1)
    );
    println!(
        "| server down, offline state set: cached verifier, no network call | {} | {} |",
        ms(offline.0),
        ms(offline.1)
    );
    println!();
    println!(
        "The verifier adds {} ms to an online login at the median (target: at most 150 ms). \
         First login of the outage (connection refused, then the cache): {} ms.",
        ms(with.0.saturating_sub(without.0)),
        ms(first_outage_login)
    );
    println!("({logged} syslog messages captured during the run.)");
}

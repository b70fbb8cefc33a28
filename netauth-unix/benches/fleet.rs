//! Fleet benchmark: what one host refresh costs NetAuth, direct vs from a
//! published snapshot, and what a host's refresh from the snapshot costs
//! the host. Prints markdown tables.
//!
//! Run: `cargo bench -p netauth-unix --bench fleet` (optional arguments:
//! entity counts, default `20000 100000`).
//!
//! The test server runs in this process (TLS) and every `netauth-unix`
//! command as a child, so this process's CPU time (`getrusage(RUSAGE_SELF)`,
//! children not included) over a command is the server's CPU for it, and
//! the status file's call count is the server calls. The host's refresh
//! from the snapshot reads it from a `file://` folder: verification,
//! parsing, the host's mapping and the cache write, without the transfer.
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a benchmark program, not shipped: a failed setup must stop it"
)]

#[path = "../tests/refresh_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netauth_testserver::{generate_tls_identity, Options, TestServer};
use netauth_unix::refresh::RefreshStatus;
use support::{seed_directory, RefreshEnv};

const RUNS: usize = 3;
/// Refresh interval of the shipped timer.
const INTERVAL_S: f64 = 300.0;

fn cpu_self() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is valid for writes for the call's duration.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

struct Measured {
    wall: Duration,
    server_cpu: Duration,
}

fn run(args: &[&str]) -> Measured {
    let cpu = cpu_self();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run netauth-unix");
    let wall = started.elapsed();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Measured {
        wall,
        server_cpu: cpu_self() - cpu,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![20_000, 100_000]
    } else {
        counts
    };
    let mut load_rows = Vec::new();
    let mut host_rows = Vec::new();
    for &n in &counts {
        let server = TestServer::start(Options {
            tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
            ..Default::default()
        });
        seed_directory(server.state(), n);
        let direct = RefreshEnv::new(&server, "max_shrink_percent = 100");
        let runs: Vec<Measured> = (0..RUNS)
            .map(|_| run(&["refresh", "--config", p(&direct.config)]))
            .collect();
        let direct_cpu = median(runs.iter().map(|r| r.server_cpu).collect());
        let direct_wall = median(runs.iter().map(|r| r.wall).collect());
        let calls = RefreshStatus::load(&direct.cache_dir())
            .expect("status")
            .expect("status present")
            .last_calls;

        // The publisher: one fetch per interval whatever the fleet's size.
        let work = direct.dir.path();
        let key = work.join("publisher.key");
        let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
            .args(["keygen", "--out", p(&key)])
            .output()
            .expect("keygen");
        assert!(out.status.success());
        let public = String::from_utf8(out.stdout).expect("UTF-8");
        let www = work.join("www");
        let publish = run(&[
            "publish",
            "--config",
            p(&direct.config),
            "--out",
            p(&www),
            "--key",
            p(&key),
        ]);
        let snapshot_bytes = std::fs::metadata(www.join("snapshot.json"))
            .expect("snapshot")
            .len();

        // A host reading the snapshot: no server call, no server CPU.
        let host_dir = work.join("host");
        std::fs::create_dir(&host_dir).expect("host dir");
        let host_config = RefreshEnv::write_config(
            &host_dir,
            "[core]\nserver = \"127.0.0.1\"\nport = 9\n[tls]\npwn_me = true\n",
            &format!(
                "source = \"file://{}/\"\n{}\nmax_shrink_percent = 100\n",
                p(&www),
                public.trim()
            ),
        );
        let host_runs: Vec<Measured> = (0..RUNS)
            .map(|_| run(&["refresh", "--config", p(&host_config)]))
            .collect();
        let host_status = RefreshStatus::load(&host_dir.join("cache"))
            .expect("status")
            .expect("status present");
        assert_eq!(host_status.users, n, "every entity served");
        let host_cpu = median(host_runs.iter().map(|r| r.server_cpu).collect());
        let host_wall = median(host_runs.iter().map(|r| r.wall).collect());

        let c = direct_cpu.as_secs_f64();
        for hosts in [100u32, 1_000, 10_000] {
            load_rows.push(format!(
                "| {n} | {hosts} | {:.1} calls/s, {:.2} cores | {:.3} calls/s, {:.4} cores |",
                f64::from(hosts) * f64::from(calls) / INTERVAL_S,
                f64::from(hosts) * c / INTERVAL_S,
                f64::from(calls) / INTERVAL_S,
                publish.server_cpu.as_secs_f64() / INTERVAL_S,
            ));
        }
        host_rows.push(format!(
            "| {n} | {calls} | {} | {} | {} | 0 | {} | {:.1} MiB | {} | {} |",
            ms(direct_cpu),
            ms(direct_wall),
            ms(publish.server_cpu),
            ms(host_cpu),
            snapshot_bytes as f64 / (1024.0 * 1024.0),
            ms(publish.wall),
            ms(host_wall),
        ));
    }
    println!("Per host refresh (test server over TLS in the bench process, release build, median of {RUNS}):");
    println!();
    println!("| entities | server calls, direct | server CPU, direct | host wall time, direct | server CPU, one publish | server calls, from snapshot | server CPU, from snapshot | snapshot size | publish wall time | host wall time, from snapshot (file) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for row in host_rows {
        println!("{row}");
    }
    println!();
    println!("Implied NetAuth load, every host refreshing every 5 minutes (direct: every host; published: one publisher, whatever the fleet):");
    println!();
    println!("| entities | hosts | direct | published |");
    println!("|---:|---:|---:|---:|");
    for row in load_rows {
        println!("{row}");
    }
}

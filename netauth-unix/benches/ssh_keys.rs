//! `ssh-keys` benchmark: how long sshd waits for
//! `AuthorizedKeysCommand /usr/sbin/netauth-unix ssh-keys %u`, through the
//! real binary (process start, config, cache, TLS connection, one
//! EntityInfo), at 1,000 and 20,000 served users. Prints a markdown table.
//!
//! Run: `cargo bench -p netauth-unix --bench ssh_keys`
//! (optional arguments: user counts, e.g. `-- 1000 50000`).
//!
//! Three ways the keys come: from the server (the default, server up),
//! from the cache (`[unix.ssh] cache_only = true`), and from the cache
//! because the server is down (connection refused, the fallback). The test
//! server runs in this process with TLS on loopback.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a benchmark program, not shipped: a failed setup must stop it"
)]

#[path = "../tests/refresh_support/mod.rs"]
mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netauth_testserver::{generate_tls_identity, Options, TestServer};
use support::{seed_directory, user_name, RefreshEnv};

const SAMPLES: usize = 200;

fn ssh_keys(config: &Path, user: &str) -> (Duration, String) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .args(["ssh-keys", user, "--config"])
        .arg(config)
        .stderr(Stdio::null())
        .output()
        .expect("run netauth-unix ssh-keys");
    let took = started.elapsed();
    assert!(out.status.success(), "ssh-keys failed: {:?}", out.status);
    (took, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Median and 90th percentile of `SAMPLES` runs, each for another user.
fn measure(config: &Path, users: usize, expect: &str) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..SAMPLES)
        .map(|i| {
            let user = user_name((i * 7919) % users);
            let (took, keys) = ssh_keys(config, &user);
            if expect == "key" && user != user_name(2) {
                assert!(keys.starts_with("ssh-ed25519 "), "{user}: {keys:?}");
            }
            took
        })
        .collect();
    times.sort();
    (times[SAMPLES / 2], times[SAMPLES * 9 / 10])
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let counts = if counts.is_empty() {
        vec![1_000, 20_000]
    } else {
        counts
    };
    println!("| served users | from the server | from the cache (`cache_only`) | from the cache (server down) | cache size |");
    println!("|---:|---:|---:|---:|---:|");
    for users in counts {
        let server = TestServer::start(Options {
            tls: Some(generate_tls_identity(&["localhost"])),
            ..Options::default()
        });
        seed_directory(server.state(), users);
        for i in 0..users {
            server.state().set_entity_meta(&user_name(i), |m| {
                m.keys = vec![format!(
                    "SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i:08} user{i}@host"
                )];
            });
        }
        let env = RefreshEnv::new(&server, "");
        let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
            .args(["refresh", "--config"])
            .arg(&env.config)
            .output()
            .expect("refresh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cache_size = std::fs::metadata(env.cache_path())
            .map(|m| m.len())
            .unwrap_or(0);

        let online = measure(&env.config, users, "key");
        let text = std::fs::read_to_string(&env.config).expect("config");
        let cache_only = env.dir.path().join("cache-only.toml");
        std::fs::write(
            &cache_only,
            format!("{text}\n[unix.ssh]\ncache_only = true\n"),
        )
        .expect("write config");
        let cached = measure(&cache_only, users, "key");
        server.shutdown();
        let fallback = measure(&env.config, users, "key");
        println!(
            "| {users} | {} / {} | {} / {} | {} / {} | {:.2} MiB |",
            ms(online.0),
            ms(online.1),
            ms(cached.0),
            ms(cached.1),
            ms(fallback.0),
            ms(fallback.1),
            cache_size as f64 / (1024.0 * 1024.0)
        );
    }
    println!();
    println!(
        "median / p90 of {SAMPLES} runs each, the whole process (spawn to exit) as sshd sees it."
    );
}

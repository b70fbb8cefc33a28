//! The `netauth-unix` binary: exit codes, messages, and `status`.
#![allow(
    clippy::expect_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::process::{Command, Output};

use netauth_testserver::{Options, TestServer};
use support::{seed_directory, RefreshEnv};

fn netauth_unix(args: &[&str], config: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run netauth-unix")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn server(n: usize) -> TestServer {
    let server = TestServer::start(Options::default());
    seed_directory(server.state(), n);
    server
}

#[test]
fn refresh_then_status() {
    let server = server(25);
    let env = RefreshEnv::new(&server, "");

    let out = netauth_unix(&["refresh"], &env.config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("25 users"), "{stderr}");
    assert!(stderr.contains("calls"), "{stderr}");
    assert!(env.cache_path().is_file());

    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("users:        25"), "{stdout}");
    assert!(stdout.contains("groups:       11"), "{stdout}");
    assert!(stdout.contains("last error:   none"), "{stdout}");
    assert!(stdout.contains("reachable ("), "{stdout}");
    assert!(stdout.contains(" ago"), "{stdout}");
}

#[test]
fn a_failed_refresh_exits_1_with_one_line_and_status_reports_it() {
    let server = server(25);
    let env = RefreshEnv::new(&server, "");
    assert_eq!(
        netauth_unix(&["refresh"], &env.config).status.code(),
        Some(0)
    );
    let before = std::fs::read(env.cache_path()).unwrap();
    drop(server);

    let out = netauth_unix(&["refresh"], &env.config);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("netauth-unix: refresh failed: "),
        "{stderr}"
    );
    assert!(stderr.contains("cannot reach"), "{stderr}");
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);

    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(0), "the cache is still usable");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("last error:   EntitySearch failed"),
        "{stdout}"
    );
    assert!(stdout.contains("NOT reachable"), "{stdout}");
}

#[test]
fn status_without_a_cache_exits_1() {
    let server = server(1);
    let env = RefreshEnv::new(&server, "");
    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("MISSING"));
    assert!(text(&out.stderr).contains("no usable cache"));
}

#[test]
fn configuration_errors_exit_2_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let out = netauth_unix(&["refresh"], &missing);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.toml"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[core]\nserver = \"x\"\n[unix.refresh]\nmax_shrink_percent = 500\n",
    )
    .unwrap();
    for cmd in ["refresh", "status"] {
        let out = netauth_unix(&[cmd], &bad);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("bad.toml") && stderr.contains("max_shrink_percent"),
            "{stderr}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(
        help.contains("refresh") && help.contains("status"),
        "{help}"
    );
}

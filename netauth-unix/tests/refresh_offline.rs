//! The refresh and the offline login: it deletes the cached credentials of
//! users it no longer serves, clears the offline state, and reads from the
//! same ordered server list as the PAM module.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use netauth_cache::trusted::Owner;
use netauth_core::config::Config;
use netauth_offline::{OfflineState, StateFile, VerifierStore};
use netauth_testserver::{BlackHole, Options, TestServer};
use netauth_unix::refresh::{refresh_blocking, Notice, RefreshOptions};
use support::{seed_directory, user_name, RefreshEnv};

fn server(n: usize) -> TestServer {
    let server = TestServer::start(Options::default());
    seed_directory(server.state(), n);
    server
}

fn offline_dir(env: &RefreshEnv) -> std::path::PathBuf {
    env.cache_dir().join("offline")
}

#[test]
fn a_refresh_deletes_the_credentials_of_users_no_longer_served_and_ends_the_outage() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server(5);
    let env = RefreshEnv::new(&server, "");
    let store = VerifierStore::at(offline_dir(&env), Owner::Root);
    for user in [user_name(0), user_name(1), "gone-user".to_owned()] {
        store.store(&user, "pw", 1000).unwrap();
    }
    let state = StateFile::at(offline_dir(&env), Owner::Root);
    let mut outage = OfflineState::default();
    outage.record_failure(1000, &[("dead:1".into(), "refused".into())], 0.0);
    state.write(&outage).unwrap();

    let config = Config::load(&env.config).unwrap();
    let report = refresh_blocking(&config, RefreshOptions::default()).expect("refresh");
    assert!(
        report
            .notices
            .contains(&Notice::VerifiersRemoved { count: 1 }),
        "{:?}",
        report.notices
    );
    assert_eq!(store.count().unwrap(), 2);
    assert!(store.info("gone-user").unwrap().is_none());
    assert!(store.info(&user_name(0)).unwrap().is_some());
    let after = state.read().unwrap();
    assert!(!after.in_outage(), "{after:?}");
    assert_eq!(
        after.last_good.as_deref(),
        Some(format!("127.0.0.1:{}", server.port()).as_str())
    );

    // An entity removed from the directory: its credentials go at the next
    // refresh.
    server.state().remove_entity(&user_name(1));
    refresh_blocking(&config, RefreshOptions::default()).expect("second refresh");
    assert!(store.info(&user_name(1)).unwrap().is_none());
    assert_eq!(store.count().unwrap(), 1);
}

#[test]
fn two_servers_the_first_black_holed_the_refresh_reads_from_the_second() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let hole = BlackHole::start();
    let live = server(5);
    let dir = tempfile::tempdir().unwrap();
    let core = format!(
        "[core]\nserver = \"127.0.0.1\"\nport = {}\n[tls]\npwn_me = true\n",
        live.port()
    );
    // A hole accepts the connection and never answers: only the call's
    // deadline ends the wait, and the first server gets half of it.
    let config_path = RefreshEnv::write_config(dir.path(), &core, "request_timeout_ms = 4000");
    // The list goes into [unix] (the helper writes cache_dir there).
    let text = std::fs::read_to_string(&config_path).unwrap().replace(
        "[unix]\n",
        &format!(
            "[unix]\nconnect_timeout_ms = 500\nservers = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\n",
            hole.port(),
            live.port()
        ),
    );
    std::fs::write(&config_path, text).unwrap();
    let config = Config::load(&config_path).unwrap();
    let started = Instant::now();
    let report = refresh_blocking(&config, RefreshOptions::default()).expect("refresh");
    assert_eq!(report.users, 5);
    // One wait on the hole (half of one deadline), not one per call.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(live.faults().call_count("EntitySearch") > 0);
    let state = StateFile::at(dir.path().join("cache/offline"), Owner::Root);
    // No offline folder was made for nothing: no login ever stored one.
    assert_eq!(state.read().unwrap(), OfflineState::default());
}

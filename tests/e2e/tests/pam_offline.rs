//! Logins that survive an outage, through real libpam and pamtester: cached
//! credentials, the offline state, several servers. See pam_support for
//! the sandbox; the module's offline folder is the test's
//! `varlib/netauth/offline` (`/var/lib/netauth/offline` in the namespace).

mod pam_support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use netauth_cache::trusted::Owner;
use netauth_offline::verifier::record_name;
use netauth_offline::{OfflineState, StateFile};
use netauth_testserver::{generate_tls_identity, BlackHole, Options, TestServer};
use pam_support::*;

const OFFLINE_MESSAGE: &str = "authenticated with cached credentials (NetAuth unreachable)";

fn offline_dir(env: &Env) -> PathBuf {
    env.path("varlib/netauth/offline")
}

fn record(env: &Env, user: &str) -> PathBuf {
    offline_dir(env).join(record_name(user))
}

fn state(env: &Env) -> OfflineState {
    StateFile::at(offline_dir(env), Owner::Root)
        .read()
        .expect("state file")
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .expect("stat")
        .permissions()
        .mode()
        & 0o7777
}

/// Every line the module logged holds neither a password nor a verifier.
fn assert_no_secret_logged(env: &mut Env, secrets: &[String]) {
    for line in env.syslog() {
        for secret in secrets {
            assert!(
                !line.contains(secret.as_str()),
                "secret in a log line: {line}"
            );
        }
    }
}

/// The hex MAC of a record (the secret part of a verifier).
fn mac_of(env: &Env, user: &str) -> String {
    let text = std::fs::read_to_string(record(env, user)).expect("record");
    text.lines()
        .find_map(|l| l.strip_prefix("mac="))
        .expect("mac line")
        .to_owned()
}

/// Sets a record's last online login `days` back.
fn age_record(env: &Env, user: &str, days: u64) {
    let path = record(env, user);
    let text = std::fs::read_to_string(&path).expect("record");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let aged: String = text
        .lines()
        .map(|l| match l.strip_prefix("online_at=") {
            Some(_) => format!("online_at={}\n", now - days * 86_400),
            None => format!("{l}\n"),
        })
        .collect();
    std::fs::write(&path, aged).expect("write record");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Makes the next login probe again (as if the offline period were over).
fn end_offline_period(env: &Env) {
    let file = StateFile::at(offline_dir(env), Owner::Root);
    let mut s = file.read().expect("state");
    s.until = 1;
    file.write(&s).expect("write state");
}

#[test]
fn online_login_stores_a_verifier_used_offline_with_counter_and_age_limit() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(
        &env,
        "[unix.pam]\noffline_failed_attempts = 3\noffline_failed_delay_s = 2\n",
    );
    env.service("na", NETAUTH_ONLY);

    assert!(!offline_dir(&env).exists());
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    assert_eq!(mode(&offline_dir(&env)), 0o700);
    assert_eq!(mode(&record(&env, "alice")), 0o600);
    assert_eq!(mode(&offline_dir(&env).join("host.key")), 0o600);
    let mac = mac_of(&env, "alice");

    // The server goes down.
    world.server.faults().set_drop_connections(true);
    let run = env.pamtester("na", "alice", &["authenticate", "acct_mgmt"], "alice-pw\n");
    assert_ok(&run);
    assert!(run.text().contains(OFFLINE_MESSAGE), "{}", run.text());
    assert!(env
        .module_log()
        .iter()
        .any(|l| l.contains("outcome=PAM_SUCCESS")
            && l.contains("offline: password matches the cached credentials")));

    // Wrong passwords fail; after 3 the right one is refused, before the
    // password is looked at, until the delay has passed.
    for _ in 0..3 {
        let run = env.pamtester("na", "alice", &["authenticate"], "not-alices\n");
        assert_fails_with(&run, AUTH_ERR);
        assert!(!run.text().contains(OFFLINE_MESSAGE));
    }
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, PERM_DENIED);
    assert!(
        run.text().contains("Too many wrong passwords"),
        "{}",
        run.text()
    );
    assert!(
        env.last_decision().contains("3 wrong offline passwords"),
        "{}",
        env.last_decision()
    );
    std::thread::sleep(Duration::from_millis(2200));
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));

    // A verifier older than offline_login_max_age_days (7) is refused.
    age_record(&env, "alice", 8);
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(
        env.last_decision().contains("offline_login_max_age_days"),
        "{}",
        env.last_decision()
    );
    age_record(&env, "alice", 6);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));

    // bob never logged in online: no cached credentials.
    assert_fails_with(
        &env.pamtester("na", "bob", &["authenticate"], "bob-pw\n"),
        AUTHINFO_UNAVAIL,
    );
    // Password changes are refused offline, with a message.
    let run = env.pamtester(
        "na",
        "alice",
        &["chauthtok"],
        "alice-pw\nnew-pw-1\nnew-pw-1\n",
    );
    assert!(!run.success, "{}", run.text());
    assert!(
        run.text()
            .contains("Password changes need the NetAuth server"),
        "{}",
        run.text()
    );

    assert_no_secret_logged(&mut env, &["alice-pw".into(), "not-alices".into(), mac]);
}

#[test]
fn locked_once_online_deletes_the_verifier() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    assert!(record(&env, "alice").exists());

    world.server.state().lock("alice", true);
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTH_ERR,
    );
    assert!(
        !record(&env, "alice").exists(),
        "verifier kept for a locked entity"
    );

    // The next outage: no offline login for alice.
    world.server.state().lock("alice", false);
    world.server.faults().set_drop_connections(true);
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(!run.text().contains(OFFLINE_MESSAGE));
}

#[test]
fn a_password_change_replaces_the_verifier() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    assert_ok(&env.pamtester(
        "na",
        "alice",
        &["chauthtok"],
        "alice-pw\nnew-alice-pw\nnew-alice-pw\n",
    ));
    world.server.faults().set_drop_connections(true);
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTH_ERR,
    );
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "new-alice-pw\n"));
}

#[test]
fn a_black_holed_server_is_waited_on_once_then_skipped_until_the_next_probe() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    assert!(!state(&env).in_outage());

    // Every answer now comes too late: the first login waits the deadline
    // (2.5 s), then logs in offline.
    world
        .server
        .faults()
        .set_delay(Some(Duration::from_secs(30)));
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_ok(&run);
    assert!(run.text().contains(OFFLINE_MESSAGE), "{}", run.text());
    assert!(
        run.elapsed >= Duration::from_millis(2000),
        "{:?}",
        run.elapsed
    );
    let outage = state(&env);
    assert!(outage.in_outage() && outage.backoff_s == 30, "{outage:?}");
    assert_eq!(outage.errors.len(), 1, "{outage:?}");

    // Within the offline period: no network call at all.
    let calls = world.server.faults().call_count("*");
    for _ in 0..3 {
        let run = env.pamtester("na", "alice", &["authenticate", "acct_mgmt"], "alice-pw\n");
        assert_ok(&run);
        assert!(run.text().contains(OFFLINE_MESSAGE));
    }
    assert_eq!(world.server.faults().call_count("*"), calls);
    assert!(
        env.last_decision().contains("no server asked"),
        "{}",
        env.last_decision()
    );

    // After T the next login probes: still dead, the wait doubles.
    end_offline_period(&env);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    assert_eq!(world.server.faults().call_count("*"), calls + 1);
    assert_eq!(state(&env).backoff_s, 60);

    // Back: the probe succeeds online and ends the outage.
    world.server.faults().clear();
    end_offline_period(&env);
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_ok(&run);
    assert!(!run.text().contains(OFFLINE_MESSAGE), "{}", run.text());
    assert!(!state(&env).in_outage(), "{:?}", state(&env));
}

#[test]
fn two_servers_the_first_down_logins_go_to_the_second_within_the_deadline() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let hole = BlackHole::start();
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Options::default()
    });
    seed(&server);
    let cert = env.path("tls.pem");
    std::fs::write(&cert, server.cert_pem().unwrap()).unwrap();
    // core.server stays the master (and the default); the list is read.
    let extra = format!(
        "servers = [\"127.0.0.1:{}\", \"127.0.0.1:{}\"]\n",
        hole.port(),
        server.port()
    );
    env.write_config(&config_for(server.port(), &cert, &extra));
    env.write_cache(&seeded_cache());
    env.service("na", NETAUTH_ONLY);

    let run = env.pamtester("na", "alice", &["authenticate", "acct_mgmt"], "alice-pw\n");
    assert_ok(&run);
    assert!(!run.text().contains(OFFLINE_MESSAGE), "{}", run.text());
    assert_eq!(server.faults().call_count("AuthEntity"), 1);
    let second = format!("127.0.0.1:{}", server.port());
    let s = state(&env);
    assert_eq!(s.last_good.as_deref(), Some(second.as_str()), "{s:?}");
    assert!(!s.in_outage());
    assert!(
        s.errors
            .iter()
            .any(|e| e.server == format!("127.0.0.1:{}", hole.port())),
        "{s:?}"
    );
    // The good one is tried first from now on: no wait on the hole.
    let run = env.pamtester("na", "bob", &["authenticate"], "bob-pw\n");
    assert_ok(&run);
    assert!(
        run.elapsed < Duration::from_millis(1200),
        "{:?}",
        run.elapsed
    );
}

#[test]
fn planted_links_and_open_files_in_the_verifier_folder_are_refused() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    let mac = mac_of(&env, "alice");
    world.server.faults().set_drop_connections(true);
    let path = record(&env, "alice");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTHINFO_UNAVAIL,
    );
    assert!(
        env.last_decision().contains("writable by group or others"),
        "{}",
        env.last_decision()
    );

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let elsewhere = env.path("planted-record");
    std::fs::rename(&path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTHINFO_UNAVAIL,
    );
    assert!(
        env.last_decision().contains("symbolic link"),
        "{}",
        env.last_decision()
    );
    std::fs::remove_file(&path).unwrap();
    std::fs::rename(&elsewhere, &path).unwrap();
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));

    // A host key others can read is not trusted either.
    let key = offline_dir(&env).join("host.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTHINFO_UNAVAIL,
    );
    assert!(
        env.last_decision().contains("open to group or others"),
        "{}",
        env.last_decision()
    );
    assert_no_secret_logged(&mut env, &["alice-pw".into(), mac]);
}

/// A caller that is not root (a screen locker running as the user) cannot
/// read the verifiers nor the state: online it logs in without storing
/// anything, during an outage it gets PAM_AUTHINFO_UNAVAIL.
#[test]
fn callers_that_are_not_root_get_no_cached_login() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    // The test folder (config, certificate, module link) readable by the
    // unprivileged caller, as /etc/netauth is on a host.
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for file in ["config.toml", "tls.pem"] {
        std::fs::set_permissions(env.path(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let as_nobody = |env: &mut Env, password: &str| {
        env.run(
            &[
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "pamtester",
                "-v",
                "na",
                "alice",
                "authenticate",
            ],
            &format!("{password}\n"),
        )
    };
    assert_ok(&as_nobody(&mut env, "alice-pw"));
    assert!(
        !record(&env, "alice").exists(),
        "a non-root caller stored a verifier"
    );

    // Root stores one; the outage: root logs in offline, nobody does not.
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    world.server.faults().set_drop_connections(true);
    let run = as_nobody(&mut env, "alice-pw");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(!run.text().contains(OFFLINE_MESSAGE));
    assert!(
        !state(&env).in_outage(),
        "a non-root caller wrote the state"
    );
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_ok(&run);
    assert!(run.text().contains(OFFLINE_MESSAGE), "{}", run.text());
}

//! `netauth-unix check USER`: what a login would meet, and `status`'s
//! offline lines.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use netauth_cache::trusted::Owner;
use netauth_offline::{OfflineState, StateFile, VerifierStore};
use netauth_testserver::{Options, TestServer};
use support::{seed_directory, user_name, RefreshEnv};

fn netauth_unix(args: &[&str], env: &RefreshEnv) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netauth-unix"))
        .args(args)
        .arg("--config")
        .arg(&env.config)
        .output()
        .expect("run netauth-unix")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn world(extra: &str) -> (TestServer, RefreshEnv) {
    let server = TestServer::start(Options::default());
    seed_directory(server.state(), 20);
    let env = RefreshEnv::new(&server, extra);
    let out = netauth_unix(&["refresh"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (server, env)
}

#[test]
fn check_reports_nss_server_access_and_cached_credentials() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (server, env) = world("\n[unix.pam.service.sshd]\nallow_groups = [\"ng_eng\"]\n");
    // nu00000 is in ng_eng (every third), nu00001 is not; nu00002 is locked.
    let out = netauth_unix(&["check", &user_name(0), "--service", "sshd"], &env);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("local:        no"), "{text}");
    assert!(text.contains("nss:          served: uid 200000"), "{text}");
    assert!(text.contains("entity exists, not locked"), "{text}");
    assert!(
        text.contains("access:       allowed (allow_groups"),
        "{text}"
    );
    assert!(text.contains("offline:      no"), "{text}");
    assert!(text.contains("cached credentials: none"), "{text}");

    let out = netauth_unix(&["check", &user_name(1), "--service", "sshd"], &env);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("access:       DENIED"),
        "{}",
        stdout(&out)
    );
    // Another service has no rule.
    let out = netauth_unix(&["check", &user_name(1), "--service", "login"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));

    let out = netauth_unix(&["check", &user_name(2)], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("entity LOCKED"), "{}", stdout(&out));
    let out = netauth_unix(&["check", "nobody-such"], &env);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("not served by the cache"),
        "{}",
        stdout(&out)
    );

    // Cached credentials and an outage.
    let dir = env.cache_dir().join("offline");
    VerifierStore::at(&dir, Owner::Root)
        .store(&user_name(0), "pw", netauth_offline::unix_now() - 7200)
        .unwrap();
    let mut outage = OfflineState::default();
    outage.record_failure(
        netauth_offline::unix_now(),
        &[("127.0.0.1:9".into(), "connection refused".into())],
        0.0,
    );
    StateFile::at(&dir, Owner::Root).write(&outage).unwrap();
    server.faults().set_drop_connections(true);
    let out = netauth_unix(&["check", &user_name(0)], &env);
    let text = stdout(&out);
    assert!(text.contains("server:       NOT reachable"), "{text}");
    assert!(text.contains("offline:      yes"), "{text}");
    assert!(
        text.contains("cached credentials: present, last online login 2 h 0 min ago"),
        "{text}"
    );
    let record =
        std::fs::read_to_string(dir.join(netauth_offline::verifier::record_name(&user_name(0))))
            .unwrap();
    let mac = record.lines().find_map(|l| l.strip_prefix("mac=")).unwrap();
    assert!(!text.contains(mac));

    let out = netauth_unix(&["status"], &env);
    let text = stdout(&out);
    assert!(text.contains("offline:      since "), "{text}");
    assert!(text.contains("last error:   127.0.0.1:9 at "), "{text}");
    assert!(text.contains("cached credentials: 1 user(s)"), "{text}");
    assert!(!text.contains(mac));
}

/// `--password-stdin` runs the service's real PAM stack: here a stack of
/// pam_exec checking the password, in a private mount namespace whose
/// /etc/pam.d is the test's.
#[test]
fn check_password_stdin_runs_the_services_pam_stack() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (_server, env) = world("");
    let pam_d = env.dir.path().join("pam.d");
    std::fs::create_dir(&pam_d).unwrap();
    let script = env.dir.path().join("check-pw");
    std::fs::write(
        &script,
        "#!/bin/sh\npw=$(tr -d '\\000')\n[ \"$pw\" = right-pw ] && exit 0\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(
        pam_d.join("chk"),
        format!(
            "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n",
            script.display()
        ),
    )
    .unwrap();
    let run = |password: &str| {
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg(format!(
                "mount --bind {} /etc/pam.d && exec \"$@\"",
                pam_d.display()
            ))
            .arg("sh")
            .arg(env!("CARGO_BIN_EXE_netauth-unix"))
            .args([
                "check",
                &user_name(0),
                "--service",
                "chk",
                "--password-stdin",
                "--config",
            ])
            .arg(&env.config)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = run("right-pw");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout(&out).contains("pam auth:     Success"),
        "{}",
        stdout(&out)
    );
    assert!(
        stdout(&out).contains("pam account:  Success"),
        "{}",
        stdout(&out)
    );
    let out = run("wrong-pw");
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(!stdout(&out).contains("wrong-pw"), "{}", stdout(&out));
}

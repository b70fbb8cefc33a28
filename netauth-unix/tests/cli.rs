//! The `netauth-unix` binary: exit codes, messages, and `status`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::process::{Command, Output};

use netauth_testserver::{Options, TestServer};
use support::{require_stock_local_groups, seed_directory, RefreshEnv};

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
    if netauth_test_support::skip_without_root() {
        return;
    }
    require_stock_local_groups();
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
    // The seed's users and staff meet the host's own /etc/group: the
    // refresh warns and status names both as their own lines.
    assert!(
        stderr.contains("group \"users\" (gid 300200): a local group has that name"),
        "{stderr}"
    );
    assert!(
        stdout.contains("name clashes: 2 NetAuth groups have the name of a local group"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  left out:   group \"staff\" (gid 300201)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  left out:   group \"users\" (gid 300200)"),
        "{stdout}"
    );
    assert!(stdout.contains("local groups: no NetAuth user"), "{stdout}");
}

#[test]
fn a_failed_refresh_exits_1_with_one_line_and_status_reports_it() {
    if netauth_test_support::skip_without_root() {
        return;
    }
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

    // The cache is still usable; the server being down explains the failed
    // refresh, so it is the status's verdict.
    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("users:        25"), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains("last error:   EntitySearch failed"),
        "{stdout}"
    );
    assert!(stdout.contains("NOT reachable"), "{stdout}");
}

#[test]
fn status_without_a_cache_exits_3() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server(1);
    let env = RefreshEnv::new(&server, "");
    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("MISSING"));
    assert!(text(&out.stderr).contains("the NSS module would refuse the cache"));
}

/// `status` with a fresh refresh behind it: exit 0.
fn refreshed(n: usize) -> (TestServer, RefreshEnv) {
    let server = server(n);
    let env = RefreshEnv::new(&server, "");
    let out = netauth_unix(&["refresh"], &env.config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = netauth_unix(&["status"], &env.config);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("health:       ok"));
    (server, env)
}

/// Replaces the cache atomically (as the refresh does) with `change` applied.
fn rewrite_cache(env: &RefreshEnv, change: impl FnOnce(&mut netauth_cache::CacheContent)) {
    let bytes = std::fs::read(env.cache_path()).unwrap();
    let mut content = netauth_cache::CacheView::parse(&bytes)
        .unwrap()
        .to_content()
        .unwrap();
    change(&mut content);
    let bytes = netauth_cache::encode(&content).unwrap();
    netauth_cache::write_atomic(&env.cache_dir(), "nss.cache", &bytes).unwrap();
}

fn status(env: &RefreshEnv) -> (Option<i32>, String, String) {
    let out = netauth_unix(&["status"], &env.config);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Exit 1: a cache older than status_max_age_s (default 3600 s), or one
/// dated ahead of the clock, with the server up and the refresh fine.
#[test]
fn status_exits_1_for_a_stale_cache() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (_server, env) = refreshed(5);
    rewrite_cache(&env, |c| c.generated_at = unix_now() - 7200);
    let (code, stdout, stderr) = status(&env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("2 h 0 min ago"), "{stdout}");
    assert!(
        stderr.contains(
            "stale: the cache was written 2 h 0 min ago, more than status_max_age_s = 3600"
        ),
        "{stderr}"
    );
    // The threshold is a setting.
    let text_of_config = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text_of_config.replace("[unix]\n", "[unix]\nstatus_max_age_s = 10000\n"),
    )
    .unwrap();
    assert_eq!(status(&env).0, Some(0));
    std::fs::write(&env.config, &text_of_config).unwrap();

    rewrite_cache(&env, |c| c.generated_at = unix_now() + 3600);
    let (code, _, stderr) = status(&env);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("ahead of the clock"), "{stderr}");
}

/// Exit 1: the last refresh failed although the server answers (here a
/// local account file that is not trusted), and the cache is fresh.
#[test]
fn status_exits_1_when_the_last_refresh_failed() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let (_server, env) = refreshed(5);
    // A copy of the host's passwd, named by the config (the last table of
    // the file is [unix.refresh]), that anyone may write.
    let passwd = env.dir.path().join("passwd");
    std::fs::copy("/etc/passwd", &passwd).unwrap();
    let mut config = std::fs::read_to_string(&env.config).unwrap();
    config.push_str(&format!(
        "local_passwd = {:?}\n",
        passwd.display().to_string()
    ));
    std::fs::write(&env.config, config).unwrap();
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert_eq!(
        netauth_unix(&["refresh"], &env.config).status.code(),
        Some(1)
    );
    let (code, stdout, stderr) = status(&env);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("reachable ("), "{stdout}");
    assert!(
        stderr.contains("stale: the last refresh failed: "),
        "{stderr}"
    );
    // The next good refresh clears it.
    std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        netauth_unix(&["refresh"], &env.config).status.code(),
        Some(0)
    );
    assert_eq!(status(&env).0, Some(0));
}

/// Exit 3: a cache the NSS module would refuse, although it parses: the
/// same trust checks (mode, owner, folder), readable by every user,
/// every block intact. It wins over a server that is down.
#[test]
fn status_exits_3_for_a_cache_the_nss_module_would_refuse() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &std::path::Path, mode| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let (server, env) = refreshed(5);
    let cache = env.cache_path();
    let dir = env.cache_dir();
    for (path, mode, needle) in [
        (&cache, 0o666, "writable by group or others (mode 0666)"),
        (&cache, 0o600, "not readable by other users (mode 0600)"),
        (&dir, 0o775, "writable by group or others (mode 0775)"),
        (
            &dir,
            0o700,
            "folder not searchable by other users (mode 0700)",
        ),
    ] {
        let before = std::fs::metadata(path).unwrap().permissions();
        chmod(path, mode);
        let (code, stdout, stderr) = status(&env);
        std::fs::set_permissions(path, before).unwrap();
        assert_eq!(code, Some(3), "{mode:o}: {stdout}{stderr}");
        assert!(stdout.contains("UNTRUSTED"), "{stdout}");
        assert!(
            stderr.contains("the NSS module would refuse the cache: ") && stderr.contains(needle),
            "{needle}: {stderr}"
        );
    }
    assert_eq!(status(&env).0, Some(0));

    // A damaged block (the header is intact).
    let mut bytes = std::fs::read(&cache).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    netauth_cache::write_atomic(&dir, "nss.cache", &bytes).unwrap();
    let (code, stdout, stderr) = status(&env);
    assert_eq!(code, Some(3), "{stdout}{stderr}");
    assert!(stdout.contains("UNUSABLE"), "{stdout}");

    // With the server down too, the refused cache is the verdict.
    drop(server);
    let (code, stdout, _) = status(&env);
    assert_eq!(code, Some(3));
    assert!(stdout.contains("NOT reachable"), "{stdout}");
}

/// Exit 4: the server cannot be reached, all else being well.
#[test]
fn status_exits_4_when_the_server_is_unreachable() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (server, env) = refreshed(5);
    drop(server);
    let (code, stdout, stderr) = status(&env);
    assert_eq!(code, Some(4), "{stdout}{stderr}");
    assert!(stdout.contains("NOT reachable"), "{stdout}");
    assert!(stdout.contains("last error:   none"), "{stdout}");
    assert!(stderr.contains("server unreachable: "), "{stderr}");
}

/// Exit 2: a certificate the PAM module would refuse is a configuration
/// problem (every login answers PAM_SERVICE_ERR), whatever the rest.
#[test]
fn status_exits_2_for_a_missing_certificate() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (_server, env) = refreshed(2);
    let config = std::fs::read_to_string(&env.config).unwrap();
    let broken = config.replace(
        "pwn_me = true",
        "pwn_me = false\ncertificate = \"/nonexistent/tls.pem\"",
    );
    assert_ne!(broken, config, "the test server's config turns TLS off");
    std::fs::write(&env.config, broken).unwrap();
    let (code, _, stderr) = status(&env);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("key tls.certificate: ") && stderr.contains("/nonexistent/tls.pem"),
        "{stderr}"
    );
}

#[test]
fn configuration_errors_exit_2_naming_the_file_and_key() {
    if netauth_test_support::skip_without_root() {
        return;
    }
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

/// `status` checks the whole file like the PAM module does: a problem only
/// PAM reads (a misspelt PAM table, a bad value in one) is a configuration
/// error, not a green status while every login fails.
#[test]
fn status_checks_the_pam_tables_too() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server(3);
    let env = RefreshEnv::new(&server, "");
    assert_eq!(
        netauth_unix(&["refresh"], &env.config).status.code(),
        Some(0)
    );
    let good = std::fs::read_to_string(&env.config).unwrap();
    for (extra, at, named) in [
        (
            "[unix.Pam]\nallow_groups = [\"admins\"]\n",
            "Pam",
            "key unix.Pam: unknown key `Pam`",
        ),
        (
            "[unix.pam]\nallow_groups = [\"\"]\n",
            "allow_groups",
            "key unix.pam.allow_groups: holds an empty group name",
        ),
        (
            "[unix.pam.service.sshd]\nalow_groups = []\n",
            "alow_groups",
            "key unix.pam.service.sshd.alow_groups: unknown key",
        ),
    ] {
        let body = format!("{good}{extra}");
        let offset = good.len() + extra.find(at).unwrap();
        let line = body[..offset].matches('\n').count() + 1;
        std::fs::write(&env.config, &body).unwrap();
        let out = netauth_unix(&["status"], &env.config);
        assert_eq!(out.status.code(), Some(2), "{extra}");
        let stderr = text(&out.stderr);
        let expected = format!(
            "netauth-unix: config file {}, line {line}, {named}",
            env.config.display()
        );
        assert!(stderr.starts_with(&expected), "{expected}\n{stderr}");
    }
}

/// Legal but likely mistakes are warnings: a top-level table named like
/// ours (not read), a per-service PAM table for a service /etc/pam.d
/// does not have.
#[test]
fn status_warns_of_look_alike_tables_and_unknown_pam_services() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server(3);
    let env = RefreshEnv::new(&server, "");
    assert_eq!(
        netauth_unix(&["refresh"], &env.config).status.code(),
        Some(0)
    );
    let mut body = std::fs::read_to_string(&env.config).unwrap();
    body.push_str(
        "[unix.pam.service.other]\n[unix.pam.service.no-such-service-here]\n\
         allow_groups = [\"admins\"]\n[unix_pam]\nallow_groups = [\"admins\"]\n[UNIX]\n[netkeys]\n",
    );
    std::fs::write(&env.config, &body).unwrap();
    let out = netauth_unix(&["status"], &env.config);
    let stderr = text(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("netauth-unix: warning: "))
        .collect();
    assert_eq!(warnings.len(), 3, "{stderr}");
    for key in ["unix.pam.service.no-such-service-here", "unix_pam", "UNIX"] {
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&format!(", key {key}: "))),
            "{key}: {stderr}"
        );
    }
    assert!(text(&out.stdout).contains("users:        3"));
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

/// Runs netauth-unix with standard output and/or error a pipe whose
/// reading end is already closed: every write fails with EPIPE.
fn with_closed_pipes(args: &[&str], close_stdout: bool, close_stderr: bool) -> Output {
    let closed = || {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        std::process::Stdio::from(writer)
    };
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netauth-unix"));
    cmd.args(args);
    if close_stdout {
        cmd.stdout(closed());
    }
    if close_stderr {
        cmd.stderr(closed());
    }
    cmd.output().expect("run netauth-unix")
}

/// A closed pipe never aborts a command (it used to panic: exit 101); the
/// exit status is the one the command would have had.
#[test]
fn a_closed_pipe_changes_no_exit_status() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (server, env) = refreshed(5);
    let config = env.config.to_str().unwrap();
    for (args, expected) in [
        (&["status", "--config", config][..], 0),
        (&["refresh", "--config", config][..], 0),
        (&["refresh", "--verbose", "--config", config][..], 0),
        (&["--help"][..], 0),
        (&["status", "--help"][..], 0),
        (&["--version"][..], 0),
        (&["frobnicate"][..], 2),
    ] {
        for (out, err) in [(true, false), (false, true), (true, true)] {
            let run = with_closed_pipes(args, out, err);
            assert_eq!(
                run.status.code(),
                Some(expected),
                "{args:?} stdout closed {out}, stderr closed {err}: {}",
                text(&run.stderr)
            );
            assert!(!text(&run.stderr).contains("panicked"), "{args:?}");
        }
    }
    // Unhealthy: the status code still comes through.
    drop(server);
    for (out, err) in [(true, false), (false, true), (true, true)] {
        let run = with_closed_pipes(&["status", "--config", config], out, err);
        assert_eq!(run.status.code(), Some(4), "{}", text(&run.stderr));
    }
    let missing = env.dir.path().join("missing.toml");
    let run = with_closed_pipes(
        &["status", "--config", missing.to_str().unwrap()],
        true,
        true,
    );
    assert_eq!(run.status.code(), Some(2));
}

/// As an admin types it: `status | head -1` prints one line and the status
/// exits 0, not 101.
#[test]
fn status_piped_into_head() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let (_server, env) = refreshed(5);
    let out = Command::new("bash")
        .arg("-c")
        .arg("\"$0\" status --config \"$1\" | head -1; exit \"${PIPESTATUS[0]}\"")
        .arg(env!("CARGO_BIN_EXE_netauth-unix"))
        .arg(&env.config)
        .output()
        .expect("bash");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("cache:        "), "{stdout}");
    assert!(!text(&out.stderr).contains("panicked"));
}

//! `netauth-unix ssh-keys` through the real binary, against the test server
//! over TLS, run as `nobody` (what sshd's AuthorizedKeysCommandUser is):
//! what it prints, where messages go, when the cache answers.
//!
//! Needs root (to switch to nobody with setpriv; CI runs as root).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

// Switching to nobody needs root: without it each test is skipped, named
// on stderr (a failure where NETAUTH_E2E_REQUIRE_ROOT is set, as on CI).
use netauth_test_support::skip_without_root;
use netauth_testserver::{generate_tls_identity, BlackHole, Options, TestServer};
use support::{seed_directory, user_name, RefreshEnv};

const BIN: &str = env!("CARGO_BIN_EXE_netauth-unix");
const KEY_A: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKeyA alice@laptop";
const KEY_B: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABKeyB alice:old key";

struct World {
    server: TestServer,
    env: RefreshEnv,
}

impl World {
    /// Five entities (the third locked) and their keys, refreshed into the
    /// cache; the work folder opened to everybody (as /etc/netauth and
    /// /var/lib/netauth are), `ssh` holding the `[unix.ssh]` lines.
    fn new(ssh: &str) -> World {
        let server = TestServer::start(Options {
            tls: Some(generate_tls_identity(&["localhost"])),
            ..Options::default()
        });
        seed_directory(server.state(), 5);
        let d = server.state();
        d.set_entity_meta(&user_name(0), |m| {
            m.keys = vec![
                format!("SSH:{KEY_A}"),
                "GPG:0xDEADBEEF".into(),
                format!("ssh:{KEY_B}"),
            ];
        });
        d.set_entity_meta(&user_name(1), |m| m.keys = vec!["GPG:0xB0B".into()]);
        d.set_entity_meta(&user_name(2), |m| {
            m.keys = vec!["SSH:ssh-ed25519 AAAALocked locked@host".into()];
        });
        // A directory account named like a local system account of the
        // host (not of the refresh's own local files, so it is served).
        d.add_entity("daemon", 250_000, "pw");
        d.set_entity_meta("daemon", |m| {
            m.primary_group = Some("ng_users".into());
            m.keys = vec!["SSH:ssh-ed25519 AAAADaemon evil@host".into()];
        });
        let env = RefreshEnv::new(&server, &format!("\n[unix.ssh]\n{ssh}"));
        std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("open the work folder");
        let out = Command::new(BIN)
            .args(["refresh", "--config"])
            .arg(&env.config)
            .output()
            .expect("run refresh");
        assert!(out.status.success(), "{}", text(&out.stderr));
        World { server, env }
    }

    /// `netauth-unix ARGS --config CONFIG` as nobody.
    fn as_nobody(&self, args: &[&str]) -> Output {
        self.run_as_nobody(Path::new(BIN), args, true)
    }

    fn run_as_nobody(&self, program: &Path, args: &[&str], add_config: bool) -> Output {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--reset-env",
        ])
        .arg(program)
        .args(args);
        if add_config {
            cmd.arg("--config").arg(&self.env.config);
        }
        cmd.output().expect("run setpriv")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exit 0 and exactly these lines on stdout.
#[track_caller]
fn assert_keys(out: &Output, keys: &[&str]) {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let expected: String = keys.iter().map(|k| format!("{k}\n")).collect();
    assert_eq!(text(&out.stdout), expected, "stderr: {}", text(&out.stderr));
}

#[test]
fn keys_come_from_the_server_as_nobody_and_follow_it_at_once() {
    if skip_without_root() {
        return;
    }
    let w = World::new("");
    let alice = user_name(0);
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_keys(&out, &[KEY_A, KEY_B]);
    assert_eq!(text(&out.stderr), "", "nothing to say");
    assert_keys(
        &w.as_nobody(&["ssh-keys", &alice, "--type", "gpg"]),
        &["0xDEADBEEF"],
    );
    assert_keys(&w.as_nobody(&["ssh-keys", &alice, "--type", "X509"]), &[]);

    // Removed on the server: gone at once, although the cache has it.
    w.server
        .state()
        .set_entity_meta(&alice, |m| m.keys.retain(|k| !k.contains("KeyB")));
    assert_keys(&w.as_nobody(&["ssh-keys", &alice]), &[KEY_A]);
    // Added on the server: there at once.
    w.server.state().set_entity_meta(&alice, |m| {
        m.keys.push("SSH:ssh-ed25519 AAAANew alice@new".into())
    });
    assert_keys(
        &w.as_nobody(&["ssh-keys", &alice]),
        &[KEY_A, "ssh-ed25519 AAAANew alice@new"],
    );
    // A key with a newline from the server never prints as two lines.
    w.server.state().set_entity_meta(&alice, |m| {
        m.keys = vec![format!("SSH:{KEY_A}\nssh-ed25519 AAAAEvil x")]
    });
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_keys(&out, &[]);
    assert!(
        text(&out.stderr).contains("refused"),
        "{}",
        text(&out.stderr)
    );
    // Locked on the server: nothing, although the cache says unlocked.
    w.server.state().lock(&alice, true);
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_keys(&out, &[]);
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );
    // Deleted on the server: nothing, although the cache has the keys.
    w.server.state().remove_entity(&alice);
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_keys(&out, &[]);
    assert!(
        text(&out.stderr).contains("deleted"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn unknown_locked_and_foreign_users_get_nothing_and_exit_0() {
    if skip_without_root() {
        return;
    }
    let w = World::new("");
    for user in ["nosuchuser", "root", "x:y", ""] {
        let out = w.as_nobody(&["ssh-keys", user]);
        assert_keys(&out, &[]);
    }
    // Locked (cache and server agree).
    assert_keys(&w.as_nobody(&["ssh-keys", &user_name(2)]), &[]);
    // Served, no SSH key.
    assert_keys(&w.as_nobody(&["ssh-keys", &user_name(1)]), &[]);
    // The host's /etc/passwd has its own "daemon" (uid 1): the refresh does
    // not serve the directory's "daemon" (250000), so its keys must not
    // open the local account.
    let out = w.as_nobody(&["ssh-keys", "daemon"]);
    assert_keys(&out, &[]);
    assert!(
        text(&out.stderr).contains("not a NetAuth user of this host"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn netkeys_command_lines_work_unchanged() {
    if skip_without_root() {
        return;
    }
    let w = World::new("");
    let alice = user_name(0);
    let link = w.env.dir.path().join("netkeys");
    std::os::unix::fs::symlink(BIN, &link).expect("link netkeys");
    let config = w.env.config.display().to_string();
    let forms: Vec<Vec<String>> = [
        &["--ID", &alice, "--config", &config][..],
        &["-ID", &alice, "-config", &config],
        &[
            "-ID", &alice, "-type", "SSH", "-service", "sshd", "-config", &config,
        ],
        &["--ID", &alice, "-verbose", "--config", &config],
        &[&format!("-ID={alice}"), &format!("-config={config}")],
    ]
    .iter()
    .map(|form| form.iter().map(|s| s.to_string()).collect())
    .collect();
    for form in &forms {
        let args: Vec<&str> = form.iter().map(String::as_str).collect();
        let out = w.run_as_nobody(&link, &args, false);
        assert_keys(&out, &[KEY_A, KEY_B]);
        // The main binary with netkeys' flags first does the same.
        let out = w.run_as_nobody(Path::new(BIN), &args, false);
        assert_keys(&out, &[KEY_A, KEY_B]);
    }
    let out = w.run_as_nobody(
        &link,
        &["-ID", &alice, "-type", "GPG", "-config", &config],
        false,
    );
    assert_keys(&out, &["0xDEADBEEF"]);
    // The service-name netkeys' --service sets reaches the server.
    w.run_as_nobody(
        &link,
        &["-ID", &alice, "-service", "sshd-keys", "-config", &config],
        false,
    );
    let sent = w
        .server
        .last_metadata_for("EntityInfo")
        .expect("EntityInfo call");
    assert_eq!(sent.service_name.as_deref(), Some("sshd-keys"));
}

#[test]
fn the_cache_answers_only_while_the_server_is_unreachable() {
    if skip_without_root() {
        return;
    }
    let World { server, env } = World::new("");
    let w_env = env;
    let alice = user_name(0);
    server.shutdown();
    let w = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                "--reset-env",
                BIN,
            ])
            .args(args)
            .arg("--config")
            .arg(&w_env.config)
            .output()
            .expect("run")
    };
    let out = w(&["ssh-keys", &alice]);
    assert_keys(&out, &[KEY_A, KEY_B]);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("keys from the cache"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    // Offline, the cache's lock bit still counts.
    assert_keys(&w(&["ssh-keys", &user_name(2)]), &[]);
}

#[test]
fn a_server_that_does_not_answer_costs_the_deadline_then_the_cache_answers() {
    if skip_without_root() {
        return;
    }
    let w = World::new("request_timeout_ms = 300\n");
    let hole = BlackHole::start();
    let config = std::fs::read_to_string(&w.env.config).unwrap();
    let port_line = format!("port = {}", w.server.port());
    std::fs::write(
        &w.env.config,
        config.replace(&port_line, &format!("port = {}", hole.port())),
    )
    .unwrap();
    let started = Instant::now();
    let out = w.as_nobody(&["ssh-keys", &user_name(0)]);
    let took = started.elapsed();
    assert_keys(&out, &[KEY_A, KEY_B]);
    // The message names the deadline left of the lookup's 300 ms (a few
    // ms may have gone to the start of the command).
    let stderr = text(&out.stderr);
    let waited: u64 = stderr
        .split_once("did not answer within ")
        .and_then(|(_, rest)| rest.split_once(" ms"))
        .and_then(|(ms, _)| ms.parse().ok())
        .unwrap_or_else(|| panic!("no deadline in: {stderr}"));
    assert!((200..=300).contains(&waited), "{stderr}");
    // The deadline, not the [unix] default of 5 s, bounds the wait.
    assert!(took < Duration::from_secs(3), "{took:?}");
}

/// `[unix] servers` holds for ssh-keys too: the first server does not
/// answer, so the lookup moves on to the second within its deadline, and
/// the keys are the server's (a key removed there is gone), not the cache's.
#[test]
fn the_server_list_is_tried_in_order() {
    if skip_without_root() {
        return;
    }
    let w = World::new("request_timeout_ms = 2000\n");
    let hole = BlackHole::start();
    let config = std::fs::read_to_string(&w.env.config).unwrap();
    assert!(config.contains("[unix]\n"), "{config}");
    let servers = format!(
        "[unix]\nservers = [\"localhost:{}\", \"localhost:{}\"]\n",
        hole.port(),
        w.server.port()
    );
    // core.server points at the black hole too: only the list's second
    // entry answers.
    let config = config.replacen("[unix]\n", &servers, 1).replace(
        &format!("port = {}\n", w.server.port()),
        &format!("port = {}\n", hole.port()),
    );
    assert!(
        config.contains(&format!("port = {}\n", hole.port())),
        "{config}"
    );
    std::fs::write(&w.env.config, config).unwrap();
    w.server
        .state()
        .set_entity_meta(&user_name(0), |m| m.keys = vec![format!("SSH:{KEY_A}")]);
    let out = w.as_nobody(&["ssh-keys", &user_name(0)]);
    assert_keys(&out, &[KEY_A]);
    assert!(
        !text(&out.stderr).contains("from the cache"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn cache_only_never_asks_the_server() {
    if skip_without_root() {
        return;
    }
    let w = World::new("cache_only = true\n");
    let alice = user_name(0);
    w.server.state().set_entity_meta(&alice, |m| m.keys.clear());
    w.server.faults().reset_counts();
    assert_keys(&w.as_nobody(&["ssh-keys", &alice]), &[KEY_A, KEY_B]);
    assert_eq!(w.server.faults().call_count("EntityInfo"), 0);
}

#[test]
fn errors_print_nothing_on_stdout_and_exit_1() {
    if skip_without_root() {
        return;
    }
    let w = World::new("");
    let alice = user_name(0);
    let unreadable: PathBuf = w.env.config.clone();
    let cache = w.env.cache_path();

    // The cache gone: which users are served cannot be told.
    std::fs::rename(&cache, cache.with_extension("away")).unwrap();
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("no cache"),
        "{}",
        text(&out.stderr)
    );
    std::fs::rename(cache.with_extension("away"), &cache).unwrap();

    // A cache others may write is not trusted.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), String::new())
    );
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o644)).unwrap();

    // A misspelt [unix.ssh] key.
    let config = std::fs::read_to_string(&unreadable).unwrap();
    std::fs::write(
        &unreadable,
        config.replace("[unix.ssh]", "[unix.ssh]\ncache_onyl = true"),
    )
    .unwrap();
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), String::new())
    );
    assert!(
        text(&out.stderr).contains("cache_onyl"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(&unreadable, &config).unwrap();

    // A config nobody cannot read.
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = w.as_nobody(&["ssh-keys", &alice]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(1), String::new())
    );
    assert!(
        text(&out.stderr).contains("config"),
        "{}",
        text(&out.stderr)
    );
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o644)).unwrap();

    // Bad usage: clap's message on stderr, exit 2.
    let out = w.as_nobody(&["ssh-keys"]);
    assert_eq!(
        (out.status.code(), text(&out.stdout)),
        (Some(2), String::new())
    );
    assert_keys(&w.as_nobody(&["ssh-keys", &alice]), &[KEY_A, KEY_B]);
}

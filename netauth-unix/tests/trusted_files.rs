//! `netauth-unix refresh` and the files around the cache: explicit modes
//! whatever the umask, a folder others can write, a link planted at the
//! lock, an untrusted config, temporary files left by a killed refresh.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};

use netauth_testserver::{Options, TestServer};
use support::{seed_directory, RefreshEnv};

/// `netauth-unix ARGS --config CONFIG` under `umask`.
fn netauth_unix_umask(umask: &str, args: &[&str], config: &Path) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_netauth-unix"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run netauth-unix")
}

fn refresh(config: &Path) -> Output {
    netauth_unix_umask("022", &["refresh"], config)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn server() -> TestServer {
    let server = TestServer::start(Options::default());
    seed_directory(server.state(), 10);
    server
}

/// Under `umask 000` the refresh used to create the folder 0777 and the
/// lock 0666 (anybody could then roll the cache back); under `umask 077`
/// a folder nobody else could enter would hide the cache from every user.
/// Every folder and file gets its mode explicitly.
#[test]
fn modes_are_explicit_whatever_the_umask() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server();
    for umask in ["000", "077"] {
        let env = RefreshEnv::new(&server, "");
        let out = netauth_unix_umask(umask, &["refresh"], &env.config);
        assert_eq!(out.status.code(), Some(0), "{umask}: {}", text(&out.stderr));
        let dir = env.cache_dir();
        assert_eq!(mode_of(&dir), 0o755, "folder under umask {umask}");
        assert_eq!(
            mode_of(&env.cache_path()),
            0o644,
            "cache under umask {umask}"
        );
        assert_eq!(
            mode_of(&dir.join(".refresh.lock")),
            0o600,
            "lock under umask {umask}"
        );
        assert_eq!(
            mode_of(&dir.join("refresh-status.json")),
            0o644,
            "status under umask {umask}"
        );
        assert_eq!(std::fs::metadata(env.cache_path()).unwrap().uid(), 0);
        // A second run, over existing files, keeps the modes.
        let out = netauth_unix_umask(umask, &["refresh"], &env.config);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        assert_eq!(mode_of(&env.cache_path()), 0o644);
        assert_eq!(mode_of(&dir.join("refresh-status.json")), 0o644);
    }
}

/// A cache folder others can write: exit 1 with one line naming the folder
/// and the reason, and nothing in it changes.
#[test]
fn a_cache_folder_others_can_write_fails_the_refresh_and_is_left_alone() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server();
    let env = RefreshEnv::new(&server, "");
    assert_eq!(refresh(&env.config).status.code(), Some(0));
    let before = std::fs::read(env.cache_path()).unwrap();
    let status_before = std::fs::read(env.cache_dir().join("refresh-status.json")).unwrap();
    chmod(&env.cache_dir(), 0o777);
    let out = refresh(&env.config);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: folder writable by group or others (mode 0777)",
            env.cache_dir().display()
        )),
        "{stderr}"
    );
    assert!(
        std::fs::read(env.cache_path()).unwrap() == before,
        "cache changed"
    );
    assert!(
        std::fs::read(env.cache_dir().join("refresh-status.json")).unwrap() == status_before,
        "status changed"
    );
    assert_eq!(mode_of(&env.cache_dir()), 0o777);
    // `status` says what is wrong with the cache instead of reading it.
    let out = netauth_unix_umask("022", &["status"], &env.config);
    assert!(
        text(&out.stdout).contains("UNTRUSTED"),
        "{}",
        text(&out.stdout)
    );
    chmod(&env.cache_dir(), 0o755);
    assert_eq!(refresh(&env.config).status.code(), Some(0));
}

/// A link planted at `.refresh.lock` must not make root create the file it
/// names (it could have been /etc/nologin).
#[test]
fn a_link_at_the_lock_fails_the_refresh_without_creating_its_target() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server();
    let env = RefreshEnv::new(&server, "");
    std::fs::create_dir(env.cache_dir()).unwrap();
    chmod(&env.cache_dir(), 0o755);
    let target = env.dir.path().join("nologin");
    std::os::unix::fs::symlink(&target, env.cache_dir().join(".refresh.lock")).unwrap();
    let out = refresh(&env.config);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(".refresh.lock") && stderr.contains("symbolic link"),
        "{stderr}"
    );
    assert!(!target.exists(), "the link's target was created");
    assert!(!env.cache_path().exists());
}

/// A config others can write is a configuration error (exit 2) naming the
/// file and the reason; nothing is fetched or written.
#[test]
fn an_untrusted_config_exits_2_naming_file_and_reason() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server();
    let env = RefreshEnv::new(&server, "");
    chmod(&env.config, 0o666);
    for cmd in ["refresh", "status"] {
        let out = netauth_unix_umask("022", &[cmd], &env.config);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&env.config.display().to_string())
                && stderr.contains("writable by group or others (mode 0666)"),
            "{stderr}"
        );
    }
    assert!(!env.cache_dir().exists());
}

/// A refresh killed before its rename leaves a complete temporary cache
/// behind; the next refresh removes it (under the lock).
#[test]
fn temporary_files_of_a_killed_refresh_are_removed() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server();
    let env = RefreshEnv::new(&server, "");
    assert_eq!(refresh(&env.config).status.code(), Some(0));
    let stale = env.cache_dir().join(".nss.cache.tmp.999999.1.0");
    std::fs::copy(env.cache_path(), &stale).unwrap();
    assert_eq!(refresh(&env.config).status.code(), Some(0));
    assert!(!stale.exists(), "stale temporary file left behind");
}

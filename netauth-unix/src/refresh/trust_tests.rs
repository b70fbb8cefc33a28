//! The refresh and the files around it: the cache folder, the lock, the
//! local account files, the previous cache and temporary files left behind.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use super::fetch::tests::{block_on, FakeDirectory};
use super::model::SourceGroup;
use super::*;

struct Env {
    dir: tempfile::TempDir,
    settings: RefreshSettings,
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        chmod(&etc, 0o755);
        for (name, text) in [
            ("passwd", "root:x:0:0:root:/root:/bin/bash\n"),
            ("group", "root:x:0:\n"),
            ("shells", "/bin/sh\n"),
        ] {
            std::fs::write(etc.join(name), text).unwrap();
            chmod(&etc.join(name), 0o644);
        }
        let settings = RefreshSettings {
            cache_dir: dir.path().join("cache"),
            local_passwd: etc.join("passwd"),
            local_group: etc.join("group"),
            shells_file: etc.join("shells"),
            ..Default::default()
        };
        Env { dir, settings }
    }

    fn cache_dir(&self) -> &Path {
        &self.settings.cache_dir
    }

    fn cache_path(&self) -> PathBuf {
        self.cache_dir().join(CACHE_FILE_NAME)
    }

    fn run(&self) -> Result<RefreshReport, RefreshError> {
        let mut d = FakeDirectory::with_numbers(2000..2005, 100);
        for e in &mut d.entities {
            e.primary_group = Some("staff".into());
        }
        d.groups = vec![SourceGroup {
            name: "staff".into(),
            number: Some(3000),
            expansions: vec![],
        }];
        let settings = RefreshSettings {
            search_cap: d.cap,
            ..self.settings.clone()
        };
        block_on(refresh_and_record(
            &mut d,
            "netauth.example:1729",
            &settings,
            RefreshOptions::default(),
        ))
    }

    /// Every file in the cache folder with its content, for "untouched".
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(self.cache_dir())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let content = std::fs::read(e.path()).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), content)
            })
            .collect();
        files.sort();
        files
    }
}

/// Compares folder snapshots without printing their bytes.
fn assert_same(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert!(
        a == b,
        "{what}: folder changed: {:?} -> {:?}",
        names(a),
        names(b)
    );
}

fn assert_untrusted(err: &RefreshError, needle: &str) {
    assert!(matches!(err, RefreshError::Untrusted(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(needle), "{needle}: {text}");
}

/// A link planted at the lock's path must not make root create (or
/// truncate) the file it points to, e.g. /etc/nologin.
#[test]
fn a_link_planted_at_the_lock_is_refused_and_its_target_untouched() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    let lock = env.cache_dir().join(LOCK_FILE_NAME);
    std::fs::remove_file(&lock).unwrap();
    let absent = env.dir.path().join("nologin");
    std::os::unix::fs::symlink(&absent, &lock).unwrap();
    let before = env.snapshot();
    let err = env.run().unwrap_err();
    assert_untrusted(&err, "symbolic link");
    assert!(err.to_string().contains(".refresh.lock"), "{err}");
    assert!(!absent.exists(), "the link's target was created");
    assert_same(&before, &env.snapshot(), "");

    // A target that exists is not truncated either.
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    assert_untrusted(&env.run().unwrap_err(), "symbolic link");
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
}

/// Whoever can write the cache folder can roll the cache back, plant links
/// or replace it: the refresh refuses such a folder and writes nothing.
#[test]
fn a_cache_folder_others_may_write_is_refused_and_left_untouched() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    let before = env.snapshot();
    for mode in [0o777, 0o775, 0o1777] {
        chmod(env.cache_dir(), mode);
        let err = env.run().unwrap_err();
        assert_untrusted(
            &err,
            &format!("folder writable by group or others (mode {mode:04o})"),
        );
        assert!(err
            .to_string()
            .contains(&env.cache_dir().display().to_string()));
        assert_same(&before, &env.snapshot(), &format!("mode {mode:o}"));
        assert_eq!(
            mode_of(env.cache_dir()),
            mode,
            "the refresh changed the mode"
        );
    }
    chmod(env.cache_dir(), 0o755);
    if is_root() {
        std::os::unix::fs::chown(env.cache_dir(), Some(1000), None).unwrap();
        let err = env.run().unwrap_err();
        assert_untrusted(&err, "folder owned by uid 1000; only root may own it");
        assert_same(&before, &env.snapshot(), "");
        std::os::unix::fs::chown(env.cache_dir(), Some(0), None).unwrap();
    }
    env.run().unwrap();
}

/// A previous cache that is not root's or that others may write means
/// someone else had a hand in it: refused, nothing written.
#[test]
fn an_untrusted_previous_cache_stops_the_refresh() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    chmod(&env.cache_path(), 0o666);
    let before = std::fs::read(env.cache_path()).unwrap();
    let err = env.run().unwrap_err();
    assert_untrusted(&err, "nss.cache: writable by group or others (mode 0666)");
    assert!(
        std::fs::read(env.cache_path()).unwrap() == before,
        "cache changed"
    );
    assert_eq!(mode_of(&env.cache_path()), 0o666);
    // The failure is recorded for `status`.
    let status = RefreshStatus::load(env.cache_dir()).unwrap().unwrap();
    assert!(status
        .last_error
        .unwrap()
        .contains("writable by group or others"));
    chmod(&env.cache_path(), 0o644);
    env.run().unwrap();
}

#[test]
fn untrusted_local_account_files_fail_before_any_write() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    for file in [&env.settings.local_passwd, &env.settings.local_group] {
        chmod(file, 0o666);
        let err = env.run().unwrap_err();
        assert_untrusted(
            &err,
            &format!("{}: writable by group or others", file.display()),
        );
        chmod(file, 0o644);
        assert!(
            std::fs::read(env.cache_path()).unwrap() == before,
            "cache changed"
        );
    }
    // A FIFO at /etc/group: refused without blocking.
    let group = env.settings.local_group.clone();
    std::fs::remove_file(&group).unwrap();
    let c = std::ffi::CString::new(group.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    assert_untrusted(&env.run().unwrap_err(), "not a regular file (a FIFO)");
}

/// A refresh killed before its rename leaves a complete temporary file;
/// the next refresh removes it while holding the lock.
#[test]
fn stale_temporary_files_are_removed_under_the_lock() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    let stale = [
        env.cache_dir().join(".nss.cache.tmp.4242.123456.0"),
        env.cache_dir().join(".refresh-status.json.tmp.4242.9.1"),
    ];
    for path in &stale {
        std::fs::write(path, b"left by a killed refresh").unwrap();
    }
    // Not ours: left alone.
    let other = env.cache_dir().join("nss.cache.bak");
    std::fs::write(&other, b"admin's copy").unwrap();

    // While another refresh holds the lock, its temporary files are its
    // own: a second refresh is refused and removes nothing.
    let lock = RefreshLock::acquire(env.cache_dir()).unwrap();
    // (acquiring it cleaned them; plant them again as the holder's own)
    for path in &stale {
        std::fs::write(path, b"being written").unwrap();
    }
    assert!(matches!(env.run().unwrap_err(), RefreshError::Busy { .. }));
    assert!(stale.iter().all(|p| p.exists()));
    drop(lock);

    env.run().unwrap();
    for path in &stale {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(other.exists());
    let names: Vec<String> = env.snapshot().into_iter().map(|f| f.0).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
}

/// Every file the refresh creates gets an explicit mode: an old lock
/// file others could write is narrowed.
#[test]
fn the_lock_file_gets_mode_0600_whatever_it_had() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run().unwrap();
    let lock = env.cache_dir().join(LOCK_FILE_NAME);
    assert_eq!(mode_of(&lock), 0o600);
    chmod(&lock, 0o666);
    env.run().unwrap();
    assert_eq!(mode_of(&lock), 0o600);
    assert_eq!(mode_of(env.cache_dir()), 0o755);
    assert_eq!(mode_of(&env.cache_path()), 0o644);
    assert_eq!(
        mode_of(&env.cache_dir().join(status::STATUS_FILE_NAME)),
        0o644
    );
}

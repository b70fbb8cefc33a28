//! The refresh from a `file://` snapshot folder (the HTTP path, 304s and the
//! refusals through a real nginx are in tests/e2e/tests/fleet_nginx.rs).

use super::*;
use crate::refresh::model::{SourceEntity, SourceGroup};
use crate::refresh::snapshot::Snapshot;
use ed25519_dalek::SigningKey;
use netauth_cache::CACHE_FILE_NAME;
use std::os::unix::fs::PermissionsExt;

struct Env {
    dir: tempfile::TempDir,
    settings: RefreshSettings,
    published: PathBuf,
}

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(etc.join("group"), "root:x:0:\nusers:x:100:\n").unwrap();
        std::fs::write(etc.join("shells"), "/bin/sh\n").unwrap();
        let published = dir.path().join("published");
        std::fs::create_dir(&published).unwrap();
        let settings = RefreshSettings {
            cache_dir: dir.path().join("cache"),
            local_passwd: etc.join("passwd"),
            local_group: etc.join("group"),
            shells_file: etc.join("shells"),
            source: Some(format!("file://{}/", published.display())),
            publisher_key: Some(snapshot::format_public_key(&key(1).verifying_key())),
            ..Default::default()
        };
        Env {
            dir,
            settings,
            published,
        }
    }

    /// Publishes a directory of `users` users, signed with `key(seed)`.
    fn publish(&self, users: usize, sequence: u64, generated_at: i64, seed: u8) {
        let entities = (0..users)
            .map(|i| SourceEntity {
                id: format!("u{i}"),
                number: Some(5000 + i as i32),
                primary_group: Some("staff".into()),
                ..Default::default()
            })
            .collect();
        let groups = vec![SourceGroup {
            name: "staff".to_owned(),
            number: Some(5000),
            expansions: vec![],
        }];
        let mut snap = Snapshot::from_fetched(entities, groups, "s".to_owned());
        snap.sequence = sequence;
        snap.generated_at = generated_at;
        let bytes = snap.encode();
        std::fs::write(self.published.join(SNAPSHOT_FILE_NAME), &bytes).unwrap();
        std::fs::write(
            self.published.join(SIGNATURE_FILE_NAME),
            snapshot::sign(&bytes, &key(seed)),
        )
        .unwrap();
    }

    fn refresh(&self) -> Result<RefreshReport, RefreshError> {
        refresh_and_record(&self.settings, RefreshOptions { force: true })
    }

    fn cache(&self) -> Option<Vec<u8>> {
        std::fs::read(self.settings.cache_dir.join(CACHE_FILE_NAME)).ok()
    }

    /// The refresh is refused for `why` and the cache is unchanged.
    fn refused(&self, why: &str) {
        let before = self.cache();
        let e = self.refresh().unwrap_err();
        assert!(matches!(e, RefreshError::Snapshot { .. }), "{e:?}");
        assert!(e.to_string().contains(why), "{e}");
        assert_eq!(self.cache(), before);
        let status = crate::refresh::RefreshStatus::load(&self.settings.cache_dir)
            .unwrap()
            .unwrap();
        assert!(status.last_error.unwrap().contains(why));
    }
}

#[test]
fn a_folder_snapshot_is_built_with_the_hosts_rules() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.publish(3, 10, unix_now(), 1);
    let report = env.refresh().unwrap();
    assert_eq!(report.users, 3);
    // The local `users` group does not matter here; the snapshot's group is served.
    assert_eq!(report.groups, 1);
    let snap = report.snapshot.unwrap();
    assert_eq!((snap.sequence, snap.not_modified), (10, false));
    let state = SnapshotState::load(&env.settings.cache_dir).unwrap();
    assert_eq!(state.sequence, 10);
    // The verified copy is kept next to the cache.
    assert_eq!(
        std::fs::read(env.settings.cache_dir.join(SNAPSHOT_FILE_NAME)).unwrap(),
        std::fs::read(env.published.join(SNAPSHOT_FILE_NAME)).unwrap()
    );
    let _ = &env.dir;
}

#[test]
fn rollback_age_size_and_key_are_checked() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.publish(3, 10, unix_now(), 1);
    env.refresh().unwrap();
    // An older snapshot, validly signed.
    env.publish(2, 9, unix_now(), 1);
    env.refused("is lower than 10");
    // The same sequence is not a rollback.
    env.publish(2, 10, unix_now(), 1);
    assert_eq!(env.refresh().unwrap().users, 2);
    // Too old.
    env.publish(3, 11, unix_now() - 100_000, 1);
    env.refused("more than snapshot_max_age_s");
    // Another key.
    env.publish(3, 12, unix_now(), 2);
    env.refused("signature does not match");
    // Too large to be read.
    env.publish(3, 12, unix_now(), 1);
    let small = Env {
        settings: RefreshSettings {
            snapshot_max_bytes: 64,
            ..env.settings.clone()
        },
        ..Env::new()
    };
    let e = refresh_and_record(&small.settings, RefreshOptions { force: true }).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
}

#[test]
fn a_publisher_key_change_resets_the_sequence() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    env.publish(3, 10, unix_now(), 1);
    env.refresh().unwrap();
    env.settings.publisher_key = Some(snapshot::format_public_key(&key(2).verifying_key()));
    env.publish(3, 5, unix_now(), 2);
    assert_eq!(env.refresh().unwrap().snapshot.unwrap().sequence, 5);
}

#[test]
fn a_folder_others_may_write_is_refused() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.publish(3, 10, unix_now(), 1);
    std::fs::set_permissions(&env.published, PermissionsExt::from_mode(0o777)).unwrap();
    env.refused("not to be trusted");
}

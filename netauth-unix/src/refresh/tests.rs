//! Tests of the whole refresh against a fake directory (no network).

use super::fetch::tests::{block_on, FakeDirectory};
use super::model::{SourceEntity, SourceGroup};
use super::*;

/// An excerpt of a stock Debian 12 host's local files (the e2e tests use
/// the host's own).
const STOCK_PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const STOCK_GROUP: &str = "root:x:0:\nadm:x:4:\nsudo:x:27:\naudio:x:29:\nstaff:x:50:\n\
    users:x:100:\nnogroup:x:65534:\n";

struct Env {
    dir: tempfile::TempDir,
    settings: RefreshSettings,
}

impl Env {
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc).unwrap();
        std::fs::write(etc.join("passwd"), STOCK_PASSWD).unwrap();
        std::fs::write(etc.join("group"), STOCK_GROUP).unwrap();
        std::fs::write(etc.join("shells"), "/bin/sh\n/bin/bash\n").unwrap();
        let settings = RefreshSettings {
            cache_dir: dir.path().join("cache"),
            local_passwd: etc.join("passwd"),
            local_group: etc.join("group"),
            shells_file: etc.join("shells"),
            ..Default::default()
        };
        Env { dir, settings }
    }

    fn cache_path(&self) -> PathBuf {
        self.settings.cache_dir.join(CACHE_FILE_NAME)
    }

    /// Runs a refresh against `dir`, whose answer cap the settings follow.
    fn run(&self, dir: &mut FakeDirectory, force: bool) -> Result<RefreshReport, RefreshError> {
        let settings = RefreshSettings {
            search_cap: dir.cap,
            ..self.settings.clone()
        };
        block_on(refresh_and_record(
            dir,
            "netauth.example:1729",
            &settings,
            RefreshOptions { force },
        ))
    }

    fn status(&self) -> RefreshStatus {
        RefreshStatus::load(&self.settings.cache_dir)
            .unwrap()
            .unwrap()
    }
}

/// `n` users numbered from 2000, all in group "eng" (3000) as primary and
/// direct group (a name the local files do not have; see
/// `stock_group_names_keep_every_user_and_the_status_lists_the_clashes`).
fn directory(n: i32, cap: usize) -> FakeDirectory {
    let mut d = FakeDirectory::with_numbers(2000..2000 + n, cap);
    for e in &mut d.entities {
        e.primary_group = Some("eng".into());
        e.groups = vec!["eng".into()];
    }
    d.groups = vec![SourceGroup {
        name: "eng".into(),
        number: Some(3000),
        expansions: vec![],
    }];
    d
}

#[test]
fn success_writes_a_readable_cache_and_a_status() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    let mut d = directory(250, 100);
    let report = env.run(&mut d, false).unwrap();
    assert_eq!(report.users, 250);
    assert_eq!(report.groups, 1);
    assert!(report.entity_calls >= 3, "{}", report.entity_calls);
    assert_eq!(report.group_calls, 1);
    assert_eq!(report.previous_users, None);

    let bytes = std::fs::read(env.cache_path()).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(view.user_count(), 250);
    assert_eq!(view.source().unwrap(), "netauth.example 1729");
    let u = view.user_by_uid(2100).unwrap().unwrap();
    assert_eq!(u.gid, 3000);
    let g = view.group_by_gid(3000).unwrap().unwrap();
    assert_eq!(g.members.len(), 250);

    let st = env.status();
    assert!(st.last_success.is_some());
    assert_eq!(st.last_success, st.last_attempt);
    assert_eq!(st.last_error, None);
    assert_eq!(st.users, 250);
    assert_eq!(st.last_calls, report.calls());
    assert_eq!(st.server, "netauth.example:1729");
}

#[test]
fn a_failure_midway_keeps_the_previous_cache_byte_for_byte() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run(&mut directory(300, 100), false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    let first_status = env.status();

    let mut d = directory(310, 100);
    d.fail_entity_call = Some(3);
    let err = env.run(&mut d, false).unwrap_err();
    assert!(
        matches!(
            err,
            RefreshError::Fetch {
                method: "EntitySearch",
                calls_before: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);

    let st = env.status();
    assert_eq!(st.last_success, first_status.last_success);
    assert_eq!(st.users, 300);
    assert!(st.last_error.unwrap().contains("EntitySearch failed"));
    assert_eq!(st.last_calls, 4);
    // No temporary files are left behind.
    let names: Vec<String> = std::fs::read_dir(&env.settings.cache_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.contains(".tmp.")), "{names:?}");
}

#[test]
fn an_unprovable_answer_keeps_the_previous_cache() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run(&mut directory(10, 100), false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    let mut d = FakeDirectory::with_numbers(vec![5000; 100], 100);
    let err = env.run(&mut d, false).unwrap_err();
    assert!(matches!(err, RefreshError::Incomplete(_)), "{err}");
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);
}

#[test]
fn the_shrink_guard_refuses_a_sudden_loss_unless_forced() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run(&mut directory(100, 16_000), false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();

    // Losing 51 of 100 is refused at the default 50%.
    let err = env.run(&mut directory(49, 16_000), false).unwrap_err();
    match &err {
        RefreshError::Shrink(s) => assert_eq!((s.what, s.previous, s.new), ("users", 100, 49)),
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("--force"));
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);

    // A directory that suddenly answers nothing is refused too.
    let err = env.run(&mut directory(0, 16_000), false).unwrap_err();
    assert!(matches!(err, RefreshError::Shrink(_)), "{err}");
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);

    // Losing exactly half is allowed.
    let report = env.run(&mut directory(50, 16_000), false).unwrap();
    assert_eq!((report.previous_users, report.users), (Some(100), 50));

    // --force overrides the guard.
    let report = env.run(&mut directory(10, 16_000), true).unwrap();
    assert_eq!((report.previous_users, report.users), (Some(50), 10));
    assert_eq!(
        previous_counts(&env.cache_path(), &mut Vec::new()).unwrap(),
        Some((10, 1))
    );
}

#[test]
fn the_shrink_guard_also_watches_groups() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    let mut d = directory(10, 100);
    d.groups.extend((0..9).map(|i| SourceGroup {
        name: format!("extra{i}"),
        number: Some(4000 + i),
        expansions: vec![],
    }));
    env.run(&mut d, false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    // Same users, but 9 of 10 groups gone.
    let err = env.run(&mut directory(10, 100), false).unwrap_err();
    match &err {
        RefreshError::Shrink(s) => assert_eq!((s.what, s.previous, s.new), ("groups", 10, 1)),
        other => panic!("{other}"),
    }
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);
}

#[test]
fn a_corrupt_previous_cache_is_replaced_with_a_notice() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    std::fs::create_dir_all(&env.settings.cache_dir).unwrap();
    std::fs::write(env.cache_path(), b"garbage").unwrap();
    let report = env.run(&mut directory(5, 100), false).unwrap();
    assert!(report
        .notices
        .iter()
        .any(|n| matches!(n, Notice::PreviousCacheUnreadable { .. })));
    assert_eq!(
        previous_counts(&env.cache_path(), &mut Vec::new()).unwrap(),
        Some((5, 1))
    );
}

#[test]
fn unreadable_local_files_fail_before_any_call() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    env.run(&mut directory(5, 100), false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    env.settings.local_group = env.dir.path().join("nonexistent");
    let mut d = directory(6, 100);
    let err = env.run(&mut d, false).unwrap_err();
    assert!(matches!(err, RefreshError::LocalFile { .. }), "{err}");
    assert!(err.to_string().contains("nonexistent"), "{err}");
    assert_eq!(d.entity_calls, 0);
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);
}

#[test]
fn an_unreadable_shells_file_gives_everyone_the_default_shell() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    env.settings.shells_file = env.dir.path().join("no-shells");
    let mut d = directory(2, 100);
    d.entities[0].shell = Some("/bin/bash".into());
    let report = env.run(&mut d, false).unwrap();
    assert!(report
        .notices
        .iter()
        .any(|n| matches!(n, Notice::ShellsFileUnreadable { .. })));
    let bytes = std::fs::read(env.cache_path()).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    for i in 0..2 {
        assert_eq!(view.user_at(i).unwrap().unwrap().shell, b"/bin/sh");
    }
}

#[test]
fn a_second_refresh_while_one_holds_the_lock_is_refused() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    env.run(&mut directory(5, 100), false).unwrap();
    let before = std::fs::read(env.cache_path()).unwrap();
    let status_before = env.status();
    let lock = RefreshLock::acquire(&env.settings.cache_dir).unwrap();
    let err = env.run(&mut directory(6, 100), false).unwrap_err();
    assert!(matches!(err, RefreshError::Busy { .. }), "{err}");
    assert_eq!(std::fs::read(env.cache_path()).unwrap(), before);
    assert_eq!(env.status(), status_before);
    drop(lock);
    env.run(&mut directory(6, 100), false).unwrap();
}

#[test]
fn hostile_entities_are_skipped_and_the_refresh_succeeds() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    let mut d = directory(3, 100);
    d.entities.push(SourceEntity {
        id: "root".into(),
        number: Some(4000),
        primary_group: Some("eng".into()),
        ..Default::default()
    });
    d.entities.push(SourceEntity {
        id: "x:0:0::/:/bin/sh\nevil".into(),
        number: Some(4001),
        primary_group: Some("eng".into()),
        ..Default::default()
    });
    let report = env.run(&mut d, false).unwrap();
    assert_eq!(report.users, 3);
    assert_eq!(
        report
            .notices
            .iter()
            .filter(|n| matches!(n, Notice::UserSkipped { .. }))
            .count(),
        2
    );
    assert_eq!(env.status().skipped_users, 2);
}

#[test]
fn stock_group_names_keep_every_user_and_the_status_lists_the_clashes() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let env = Env::new();
    std::fs::write(
        &env.settings.local_group,
        format!("{STOCK_GROUP}localadm:x:1500:u3\n"),
    )
    .unwrap();
    let mut d = directory(6, 100);
    d.groups = ["users", "staff", "dev"]
        .iter()
        .zip(3000..)
        .map(|(name, gid)| SourceGroup {
            name: (*name).into(),
            number: Some(gid),
            expansions: vec![],
        })
        .collect();
    for e in &mut d.entities {
        let even = e.number.is_some_and(|n| n % 2 == 0);
        e.primary_group = Some(if even { "users" } else { "staff" }.into());
        e.groups = vec!["staff".into(), "dev".into()];
    }
    let report = env.run(&mut d, false).unwrap();
    assert_eq!(report.users, 6);
    assert_eq!(report.groups, 1);

    let bytes = std::fs::read(env.cache_path()).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    let first = view.user_at(0).unwrap().unwrap();
    assert_eq!((first.uid, first.gid), (2000, 3000));
    assert!(view.group_by_gid(3000).unwrap().is_none());
    assert!(view.group_by_name(b"users").unwrap().is_none());
    assert_eq!(
        view.groups_of_user(first.name)
            .unwrap()
            .unwrap()
            .collect::<Vec<_>>(),
        vec![3002]
    );

    let st = env.status();
    let clashes: Vec<(&str, u32, usize, usize)> = st
        .group_name_clashes
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.gid,
                c.primary_users,
                c.supplementary_users,
            )
        })
        .collect();
    // Every user is in staff: the three with primary group users lose it.
    assert_eq!(clashes, vec![("staff", 3001, 3, 3), ("users", 3000, 3, 0)]);
    assert_eq!(st.users_without_clashing_groups, 3);
    assert_eq!(
        st.local_group_members,
        vec![status::LocalGroupMember {
            user: "u3".into(),
            group: "localadm".into()
        }]
    );
    assert_eq!(st.skipped_users, 0);

    // Renamed: both are served under the prefix, nothing is lost.
    let mut env = env;
    env.settings.local_group_name_clash = LocalGroupNameClash::Rename;
    let report = env.run(&mut d, false).unwrap();
    assert_eq!(report.groups, 3);
    let bytes = std::fs::read(env.cache_path()).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    let g = view.group_by_name(b"netauth-users").unwrap().unwrap();
    assert_eq!(g.gid, 3000);
    assert_eq!(
        view.group_by_gid(3001).unwrap().unwrap().name,
        b"netauth-staff"
    );
    let st = env.status();
    assert_eq!(
        st.group_name_clashes[1].served_as.as_deref(),
        Some("netauth-users")
    );
    assert_eq!(st.users_without_clashing_groups, 0);
}

//! The refresh against the test server over real gRPC (and real TLS).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

#[path = "refresh_support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use netauth_cache::CacheView;
use netauth_core::config::Config;
use netauth_core::{ClientBuilder, Error};
use netauth_testserver::{generate_tls_identity, BlackHole, Options, TestServer};
use netauth_unix::refresh::{
    refresh_blocking, ClashOutcome, Notice, RefreshError, RefreshOptions, RefreshReport,
    RefreshStatus,
};
use support::{
    primary_group, require_stock_local_groups, seed_directory, seed_stock_directory, user_name,
    RefreshEnv, FIRST_UID, GROUPS, STOCK_NAMED_GROUPS,
};

fn run(env: &RefreshEnv, force: bool) -> Result<RefreshReport, RefreshError> {
    let config = Config::load(&env.config).expect("config");
    refresh_blocking(&config, RefreshOptions { force })
}

fn cache_bytes(env: &RefreshEnv) -> Vec<u8> {
    std::fs::read(env.cache_path()).expect("cache")
}

fn status(env: &RefreshEnv) -> RefreshStatus {
    RefreshStatus::load(&env.cache_dir())
        .unwrap()
        .expect("status file")
}

fn server_with(n: usize, search_cap: usize) -> TestServer {
    let server = TestServer::start(Options {
        search_cap,
        ..Default::default()
    });
    seed_directory(server.state(), n);
    server
}

#[test]
fn twenty_thousand_entities_all_arrive_in_a_few_calls() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server_with(20_000, 16_000);
    let env = RefreshEnv::new(&server, "");
    server.faults().reset_counts();
    let report = run(&env, false).expect("refresh");

    assert_eq!(report.entities_fetched, 20_000);
    assert_eq!(report.users, 20_000);
    // One capped answer, split once at its median: 3 entity searches.
    assert_eq!(report.entity_calls, 3);
    assert_eq!(report.group_calls, 1);
    assert_eq!(
        server.faults().call_count("EntitySearch"),
        report.entity_calls as usize
    );
    assert_eq!(server.faults().call_count("GroupSearch"), 1);
    assert_eq!(server.faults().call_count("GroupMembers"), 0);
    assert_eq!(server.faults().call_count("EntityGroups"), 0);

    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(view.user_count(), 20_000);
    let uids: BTreeSet<u32> = (0..view.user_count())
        .map(|i| view.user_at(i).unwrap().unwrap().uid)
        .collect();
    let expected: BTreeSet<u32> = (0..20_000).map(|i| (FIRST_UID + i) as u32).collect();
    assert_eq!(uids, expected);
    let users = view.group_by_name(b"ng_users").unwrap().unwrap();
    assert_eq!(users.members.len(), 20_000);

    let st = status(&env);
    assert_eq!(st.users, 20_000);
    assert_eq!(st.last_calls, 4);
    assert_eq!(st.last_error, None);
}

#[test]
fn a_small_cap_is_beaten_by_splitting() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    // Cap 100 over 2,500 entities: many splits, still complete.
    let server = server_with(2_500, 100);
    let env = RefreshEnv::new(&server, "search_cap = 100");
    let report = run(&env, false).expect("refresh");
    assert_eq!(report.users, 2_500);
    assert!(report.entity_calls >= 26, "{}", report.entity_calls);
    assert!(report.entity_calls <= 150, "{}", report.entity_calls);
}

#[test]
fn negative_and_extreme_numbers_are_fetched() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = TestServer::start(Options {
        search_cap: 3,
        ..Default::default()
    });
    let d = server.state();
    d.add_group("ng_users", 300_000, "users", None);
    // (-1 would ask the server to pick a number.)
    // min_uid is raised past the host's own accounts (a real host's first
    // user often has 1000), so that only the minimum decides.
    for (i, n) in [
        i32::MIN,
        -70_000,
        -2,
        1,
        249_999,
        250_000,
        250_001,
        i32::MAX,
    ]
    .iter()
    .enumerate()
    {
        let name = format!("nx{i}");
        d.add_entity(&name, *n, "pw");
        d.set_entity_meta(&name, |m| m.primary_group = Some("ng_users".into()));
    }
    let env = RefreshEnv::new(&server, "search_cap = 3\nmin_uid = 250000");
    let report = run(&env, false).expect("refresh");
    assert_eq!(report.entities_fetched, 8);
    // Served: 250,000 and above (250,000, 250,001, i32::MAX); the rest is below min_uid.
    assert_eq!(report.users, 3);
    let below = report
        .notices
        .iter()
        .filter(|n| matches!(n, Notice::UserSkipped { .. }))
        .count();
    assert_eq!(below, 5);
}

/// For every served group, the cache's members equal GroupMembers; for
/// every user, the cache's initgroups list equals EntityGroups (both
/// restricted to what is served).
#[test]
fn memberships_equal_the_servers_group_members_and_entity_groups() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    require_stock_local_groups();
    let server = server_with(400, 16_000);
    let env = RefreshEnv::new(&server, "");
    let report = run(&env, false).expect("refresh");
    // Every user is served although all have `users` or `staff`, which
    // the host's /etc/group has, as primary group; those two are not
    // served as groups.
    assert_eq!(report.users, 400);
    assert_eq!(report.groups, GROUPS.len());
    let clashed: BTreeSet<&str> = report
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::GroupNameClash { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(clashed, BTreeSet::from(["staff", "users"]));

    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    let served_users: BTreeSet<String> = (0..400).map(user_name).collect();
    let gid_of: BTreeMap<&str, u32> = GROUPS.iter().map(|(n, g)| (*n, *g as u32)).collect();

    let config = Config::load(&env.config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ClientBuilder::from_config(config).build().unwrap();
        let mut nonempty = 0;
        for (group, gid) in GROUPS {
            let answer: BTreeSet<String> = client
                .group_members(group)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .filter(|id| served_users.contains(id))
                .collect();
            let record = view.group_by_gid(*gid as u32).unwrap().unwrap();
            assert_eq!(record.name, group.as_bytes());
            let cached: BTreeSet<String> = record
                .members
                .map(|m| String::from_utf8(m.unwrap().to_vec()).unwrap())
                .collect();
            assert_eq!(cached, answer, "members of {group}");
            if !cached.is_empty() {
                nonempty += 1;
            }
        }
        assert_eq!(nonempty, GROUPS.len() - 1, "only ng_empty is empty");

        for i in 0..400 {
            let name = user_name(i);
            let answer: BTreeSet<u32> = client
                .entity_groups(&name)
                .await
                .unwrap()
                .into_iter()
                .filter_map(|g| gid_of.get(g.name.as_str()).copied())
                .collect();
            let cached: BTreeSet<u32> = match view.groups_of_user(name.as_bytes()).unwrap() {
                Some(gids) => gids.collect(),
                None => BTreeSet::new(),
            };
            assert_eq!(cached, answer, "groups of {name}");
            let user = view.user_by_name(name.as_bytes()).unwrap().unwrap();
            assert_eq!(user.gid, primary_group(i).1 as u32, "primary gid of {name}");
        }
    });
    // The stock-named groups' numbers resolve to no group (nor does any
    // user-private or other group take them), their names to none of ours.
    for (name, gid) in STOCK_NAMED_GROUPS {
        assert!(view.group_by_gid(*gid as u32).unwrap().is_none(), "{name}");
        assert!(
            view.group_by_name(name.as_bytes()).unwrap().is_none(),
            "{name}"
        );
    }
    let st = status(&env);
    assert_eq!(st.group_name_clashes.len(), 2);
    // Users with primary group users but a direct member of staff lose it.
    assert!(st.users_without_clashing_groups > 0);
    // The rules matter here: someone is in ng_all only through ng_hidden,
    // and someone in ng_eng is kept out of ng_devs by the nested exclusion.
    let all = view.group_by_name(b"ng_all").unwrap().unwrap();
    let all: BTreeSet<Vec<u8>> = all.members.map(|m| m.unwrap().to_vec()).collect();
    assert!(all.contains(user_name(17).as_bytes())); // hidden only
    assert!(!all.contains(user_name(0).as_bytes())); // an intern
    let devs = view.group_by_name(b"ng_devs").unwrap().unwrap();
    let devs: BTreeSet<Vec<u8>> = devs.members.map(|m| m.unwrap().to_vec()).collect();
    assert!(devs.contains(user_name(3).as_bytes()));
    assert!(!devs.contains(user_name(33).as_bytes())); // eng and intern
                                                       // Locked entities are still served.
    assert!(
        view.user_by_name(user_name(2).as_bytes())
            .unwrap()
            .unwrap()
            .locked
    );
}

#[test]
fn a_refresh_failing_midway_leaves_the_previous_cache_byte_for_byte() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server_with(1_000, 100);
    let env = RefreshEnv::new(&server, "search_cap = 100");
    run(&env, false).expect("first refresh");
    let before = cache_bytes(&env);
    let first = status(&env);

    server.state().add_entity("nlate", 250_000, "pw");
    server
        .faults()
        .fail_method_after("EntitySearch", 3, tonic::Code::Unavailable);
    let err = run(&env, false).expect_err("must fail");
    let msg = err.to_string();
    assert!(
        matches!(
            err,
            RefreshError::Fetch {
                calls_before: 3,
                ..
            }
        ),
        "{msg}"
    );
    assert!(msg.contains("EntitySearch failed after 3"), "{msg}");
    assert!(!msg.contains('\n'));
    assert_eq!(cache_bytes(&env), before);

    let st = status(&env);
    assert_eq!(st.last_success, first.last_success);
    assert_eq!(st.users, 1_000);
    assert!(st.last_error.as_deref().unwrap().contains("EntitySearch"));

    // GroupSearch failing after all entities arrived: same.
    server.faults().clear();
    server
        .faults()
        .fail_method("GroupSearch", tonic::Code::Internal);
    let err = run(&env, false).expect_err("must fail");
    assert!(err.to_string().contains("GroupSearch"), "{err}");
    assert_eq!(cache_bytes(&env), before);

    // Once the server is healthy the refresh goes through.
    server.faults().clear();
    assert_eq!(run(&env, false).unwrap().users, 1_000);
}

#[test]
fn a_server_that_is_down_leaves_the_cache() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server_with(50, 16_000);
    let env = RefreshEnv::new(&server, "");
    run(&env, false).expect("first refresh");
    let before = cache_bytes(&env);
    drop(server);

    let err = run(&env, false).expect_err("server is gone");
    let cause = err.client_error().and_then(|e| e.downcast_ref::<Error>());
    assert!(
        cause.is_some_and(Error::is_server_unavailable),
        "{err} / {cause:?}"
    );
    assert_eq!(cache_bytes(&env), before);
    assert!(status(&env).last_error.is_some());
}

#[test]
fn a_black_holed_server_fails_within_the_deadline() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let hole = BlackHole::start();
    let dir = tempfile::tempdir().unwrap();
    let core = format!(
        "[core]\nserver = \"127.0.0.1\"\nport = {}\n[tls]\npwn_me = true\n",
        hole.port()
    );
    let config = RefreshEnv::write_config(dir.path(), &core, "request_timeout_ms = 1000");
    let started = Instant::now();
    let err = refresh_blocking(&Config::load(&config).unwrap(), RefreshOptions::default())
        .expect_err("black hole");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let cause = err.client_error().and_then(|e| e.downcast_ref::<Error>());
    assert!(cause.is_some_and(Error::is_server_unavailable), "{err}");
    assert!(!dir.path().join("cache/nss.cache").exists());
}

#[test]
fn tls_works_with_the_right_certificate_and_a_rejected_one_leaves_the_cache() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Default::default()
    });
    seed_directory(server.state(), 30);
    let env = RefreshEnv::new(&server, "");
    assert_eq!(run(&env, false).expect("TLS refresh").users, 30);
    let before = cache_bytes(&env);

    // Another self-signed certificate for the same names: not trusted.
    let other = generate_tls_identity(&["localhost", "127.0.0.1"]);
    std::fs::write(env.dir.path().join("tls.pem"), other.cert_pem).unwrap();
    let err = run(&env, false).expect_err("untrusted certificate");
    let cause = err.client_error().and_then(|e| e.downcast_ref::<Error>());
    assert!(cause.is_some_and(Error::is_tls), "{err}");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert_eq!(cache_bytes(&env), before);
}

#[test]
fn the_shrink_guard_refuses_a_server_that_lost_most_users() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let big = server_with(200, 16_000);
    let env = RefreshEnv::new(&big, "");
    run(&env, false).expect("first refresh");
    let before = cache_bytes(&env);

    // The same config now reaches a server that knows 20 users.
    let small = server_with(20, 16_000);
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        &format!("port = {}", big.port()),
        &format!("port = {}", small.port()),
    );
    std::fs::write(&env.config, text).unwrap();

    let err = run(&env, false).expect_err("shrink guard");
    assert!(matches!(err, RefreshError::Shrink(_)), "{err}");
    assert!(err.to_string().contains("200") && err.to_string().contains("--force"));
    assert_eq!(cache_bytes(&env), before);

    let report = run(&env, true).expect("forced");
    assert_eq!((report.previous_users, report.users), (Some(200), 20));
}

#[test]
fn hostile_directory_data_is_skipped_or_cleaned_and_the_rest_is_served() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server_with(10, 16_000);
    let d = server.state();
    for (id, number) in [
        ("root", 260_000),
        ("evil:x:0:0::/root:/bin/sh", 260_001),
        ("12345", 260_002),
        ("toor", 0),
        ("lowuid", 10),
        ("nfields", 260_003),
        ("nprivate", 260_004),
    ] {
        d.add_entity(id, number, "pw");
        d.set_entity_meta(id, |m| m.primary_group = Some("ng_users".into()));
    }
    d.set_entity_meta("nfields", |m| {
        m.gecos = Some("Eve:\nroot::0:0".into());
        m.home = Some("/home/../etc".into());
        m.shell = Some("/usr/bin/evil".into());
    });
    d.set_entity_meta("nprivate", |m| {
        m.primary_group = Some("no_such_group".into())
    });
    d.add_group("bad group", 300_100, "x", None);
    d.add_group("root", 300_101, "x", None);

    let env = RefreshEnv::new(&server, "missing_primary_group = \"private\"");
    let report = run(&env, false).expect("refresh goes on");
    assert_eq!(report.users, 12); // 10 seeded + nfields + nprivate
    assert_eq!(report.private_groups, 1);
    let skipped_users: BTreeSet<String> = report
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::UserSkipped { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    let expected: BTreeSet<String> = [
        "root",
        "evil:x:0:0::/root:/bin/sh",
        "12345",
        "toor",
        "lowuid",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(skipped_users, expected);
    let skipped_groups: BTreeSet<String> = report
        .notices
        .iter()
        .filter_map(|n| match n {
            Notice::GroupSkipped { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert!(skipped_groups.contains("bad group"), "{skipped_groups:?}");
    // The host has a local group "root": the NetAuth group of that name is
    // not served as a group (local_group_name_clash = "omit"), and says so.
    assert!(
        report.notices.iter().any(|n| matches!(
            n,
            Notice::GroupNameClash { name, outcome: ClashOutcome::Omitted, .. } if name == "root"
        )),
        "{:?}",
        report.notices
    );

    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    assert!(view.group_by_gid(300_101).unwrap().is_none());
    let u = view.user_by_name(b"nfields").unwrap().unwrap();
    assert_eq!(u.gecos, b"Eve  root  0 0");
    assert_eq!(u.home, b"/home/nfields");
    assert_eq!(u.shell, b"/bin/sh");
    let p = view.user_by_name(b"nprivate").unwrap().unwrap();
    assert_eq!(p.gid, 260_004);
    assert_eq!(
        view.group_by_gid(260_004).unwrap().unwrap().name,
        b"nprivate"
    );
    assert!(view.user_by_uid(0).unwrap().is_none());
}

/// The directory most real ones look like, against the host's own
/// /etc/group: every user is served; `users` and `staff` are omitted, or
/// served renamed with the setting, and the status says which.
#[test]
fn a_directory_with_stock_group_names_is_served_whole() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    require_stock_local_groups();
    let server = TestServer::start(Options::default());
    seed_stock_directory(server.state());

    let env = RefreshEnv::new(&server, "");
    let report = run(&env, false).expect("refresh");
    assert_eq!(report.users, 3);
    assert_eq!(report.groups, 1); // nx-dev
    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    let gid = |name: &str| view.user_by_name(name.as_bytes()).unwrap().unwrap().gid;
    assert_eq!(
        (gid("alice"), gid("bob"), gid("carol")),
        (61100, 61101, 61100)
    );
    let groups = |name: &str| -> Vec<u32> {
        view.groups_of_user(name.as_bytes())
            .unwrap()
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    assert_eq!(groups("alice"), vec![61102]);
    assert_eq!(groups("carol"), Vec::<u32>::new());
    assert!(view.group_by_gid(61100).unwrap().is_none());
    let st = status(&env);
    let clashes: Vec<(&str, Option<&str>, usize, usize)> = st
        .group_name_clashes
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.served_as.as_deref(),
                c.primary_users,
                c.supplementary_users,
            )
        })
        .collect();
    assert_eq!(
        clashes,
        vec![("staff", None, 1, 2), ("users", None, 2, 1)],
        "{st:?}"
    );
    assert_eq!(st.users_without_clashing_groups, 3);

    let env = RefreshEnv::new(&server, "local_group_name_clash = \"rename\"");
    let report = run(&env, false).expect("refresh");
    assert_eq!((report.users, report.groups), (3, 3));
    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    let users = view.group_by_name(b"netauth-users").unwrap().unwrap();
    assert_eq!(users.gid, 61100);
    let members: Vec<&[u8]> = users.members.map(Result::unwrap).collect();
    assert_eq!(members, vec![&b"bob"[..], b"carol"]);
    assert_eq!(
        view.group_by_gid(61101).unwrap().unwrap().name,
        b"netauth-staff"
    );
    let st = status(&env);
    assert_eq!(
        st.group_name_clashes[1].served_as.as_deref(),
        Some("netauth-users")
    );
    assert_eq!(st.users_without_clashing_groups, 0);
}

/// Keys and lock state come with the search answers: the refresh stores
/// them without one more call, the way the server holds them (TYPE
/// upper-cased, the key as given), and follows a key removed on the server.
#[test]
fn keys_and_lock_state_reach_the_cache_without_extra_calls() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = server_with(5, 16_000);
    let alice = user_name(0);
    let locked = user_name(2);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKey alice@host";
    server.state().set_entity_meta(&alice, |m| {
        m.keys = vec![format!("SSH:{key}"), "GPG:0xDEADBEEF".into()];
    });
    server.state().set_entity_meta(&locked, |m| {
        m.keys = vec!["SSH:ssh-rsa AAAAB3 locked".into()];
    });
    let env = RefreshEnv::new(&server, "");
    server.faults().reset_counts();
    let report = run(&env, false).expect("refresh");
    assert_eq!(report.calls(), 2, "one entity search, one group search");
    assert_eq!(server.faults().call_count("EntityKeys"), 0);
    assert_eq!(server.faults().call_count("EntityInfo"), 0);

    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    let keys: Vec<(String, String)> = view
        .user_keys(alice.as_bytes())
        .unwrap()
        .unwrap()
        .map(|k| k.map(|(t, k)| (t.to_owned(), k.to_owned())).unwrap())
        .collect();
    assert_eq!(
        keys,
        [
            ("SSH".to_owned(), key.to_owned()),
            ("GPG".to_owned(), "0xDEADBEEF".to_owned())
        ]
    );
    let locked_user = view.user_by_name(locked.as_bytes()).unwrap().unwrap();
    assert!(locked_user.locked);
    assert_eq!(view.user_keys(locked.as_bytes()).unwrap().unwrap().len(), 1);
    assert!(!view.user_by_name(alice.as_bytes()).unwrap().unwrap().locked);
    assert_eq!(
        view.user_keys(user_name(1).as_bytes())
            .unwrap()
            .unwrap()
            .len(),
        0
    );

    server.state().set_entity_meta(&alice, |m| m.keys.clear());
    run(&env, false).expect("second refresh");
    let bytes = cache_bytes(&env);
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(view.user_keys(alice.as_bytes()).unwrap().unwrap().len(), 0);
}

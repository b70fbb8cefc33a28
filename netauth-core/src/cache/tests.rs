use super::*;

pub(crate) fn user(name: &str, uid: u32, gid: u32) -> UnixUser {
    UnixUser {
        name: name.to_owned(),
        uid,
        gid,
        gecos: format!("{name} the tester"),
        home: format!("/home/{name}"),
        shell: "/bin/bash".to_owned(),
        locked: false,
    }
}

pub(crate) fn sample() -> CacheContent {
    let mut users = vec![
        user("alice", 10001, 20001),
        user("bob", 10002, 20001),
        user("carol", 10003, 20002),
    ];
    users[2].locked = true;
    users[2].gecos.clear();
    let groups = vec![
        UnixGroup {
            name: "staff".to_owned(),
            gid: 20001,
            members: vec!["alice".to_owned(), "bob".to_owned()],
        },
        UnixGroup {
            name: "admins".to_owned(),
            gid: 20002,
            members: vec!["carol".to_owned(), "localuser".to_owned()],
        },
        UnixGroup {
            name: "empty".to_owned(),
            gid: 20003,
            members: vec![],
        },
    ];
    let mut user_groups = BTreeMap::new();
    user_groups.insert("alice".to_owned(), vec![20001, 20002]);
    user_groups.insert("carol".to_owned(), vec![20002]);
    CacheContent {
        users,
        groups,
        user_groups,
        generated_at: 1_700_000_000,
        source: "netauth.example.org".to_owned(),
    }
}

/// Every answer the sample gives, as owned data, to compare corrupted
/// files against.
fn answers(view: &CacheView<'_>) -> Result<Vec<String>, CacheError> {
    let mut out = Vec::new();
    for name in ["alice", "bob", "carol", "nobody", "staff"] {
        out.push(format!(
            "{:?}",
            view.user_by_name(name.as_bytes())?
                .map(|u| describe_user(&u))
        ));
        out.push(format!(
            "{:?}",
            view.groups_of_user(name.as_bytes())?
                .map(|g| g.collect::<Vec<_>>())
        ));
    }
    for uid in [10001, 10002, 10003, 10004, 0] {
        out.push(format!(
            "{:?}",
            view.user_by_uid(uid)?.map(|u| describe_user(&u))
        ));
    }
    for name in ["staff", "admins", "empty", "alice"] {
        out.push(format!(
            "{:?}",
            view.group_by_name(name.as_bytes())?
                .map(|g| describe_group(&g))
        ));
    }
    for gid in [20001, 20002, 20003, 20004] {
        out.push(format!(
            "{:?}",
            view.group_by_gid(gid)?.map(|g| describe_group(&g))
        ));
    }
    out.push(format!("{:?}", view.to_content()?));
    Ok(out)
}

fn describe_user(u: &UserRecord<'_>) -> String {
    format!(
        "{:?}:{}:{}:{:?}:{:?}:{:?}:{}:{:?}",
        u.name,
        u.uid,
        u.gid,
        u.gecos,
        u.home,
        u.shell,
        u.locked,
        u.groups.clone().collect::<Vec<_>>()
    )
}

fn describe_group(g: &GroupRecord<'_>) -> String {
    let members: Vec<_> = g.members.clone().collect();
    format!("{:?}:{}:{:?}", g.name, g.gid, members)
}

#[test]
fn round_trip() {
    let content = sample();
    let bytes = encode(&content).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(view.to_content().unwrap(), content);
    assert_eq!(view.user_count(), 3);
    assert_eq!(view.group_count(), 3);
    assert_eq!(view.generated_at(), 1_700_000_000);
    assert_eq!(view.source().unwrap(), "netauth.example.org");

    let alice = view.user_by_name(b"alice").unwrap().unwrap();
    assert_eq!((alice.uid, alice.gid), (10001, 20001));
    assert_eq!(alice.home, b"/home/alice");
    assert_eq!(alice.groups.collect::<Vec<_>>(), vec![20001, 20002]);
    assert!(view.user_by_uid(10003).unwrap().unwrap().locked);
    assert_eq!(view.user_by_uid(10002).unwrap().unwrap().name, b"bob");
    assert!(view.user_by_name(b"alic").unwrap().is_none());
    assert!(view.user_by_name(b"").unwrap().is_none());
    assert!(view.user_by_uid(1).unwrap().is_none());
    assert!(view.user_by_uid(u32::MAX).unwrap().is_none());

    let admins = view.group_by_gid(20002).unwrap().unwrap();
    assert_eq!(admins.name, b"admins");
    let members: Vec<_> = admins.members.map(Result::unwrap).collect();
    assert_eq!(members, vec![&b"carol"[..], b"localuser"]);
    assert_eq!(
        view.group_by_name(b"empty").unwrap().unwrap().members.len(),
        0
    );
    assert!(view.group_by_name(b"alice").unwrap().is_none());
    assert!(view.group_by_gid(20004).unwrap().is_none());
    assert_eq!(view.groups_of_user(b"bob").unwrap().unwrap().len(), 0);
    assert!(view.groups_of_user(b"zed").unwrap().is_none());

    assert_eq!(view.user_at(3).unwrap().map(|u| u.uid), None);
    assert_eq!(view.group_at(0).unwrap().unwrap().name, b"staff");

    let again = CacheView::with_layout(&bytes, view.layout()).unwrap();
    assert_eq!(again.user_by_name(b"carol").unwrap().unwrap().uid, 10003);
}

#[test]
fn empty_cache_round_trips() {
    let content = CacheContent::default();
    let bytes = encode(&content).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(view.to_content().unwrap(), content);
    assert!(view.user_by_name(b"x").unwrap().is_none());
    assert!(view.group_by_gid(5).unwrap().is_none());
}

#[test]
fn many_entries_round_trip() {
    let mut content = CacheContent::default();
    for i in 0..5000u32 {
        content
            .users
            .push(user(&format!("user{i}"), 100_000 + i * 3, 1000));
    }
    for i in 0..700u32 {
        content.groups.push(UnixGroup {
            name: format!("group{i}"),
            gid: 50_000 - i,
            members: (0..i % 13).map(|m| format!("user{}", m * 31 + i)).collect(),
        });
    }
    let bytes = encode(&content).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    for u in &content.users {
        let found = view.user_by_name(u.name.as_bytes()).unwrap().unwrap();
        assert_eq!(found.uid, u.uid);
        assert_eq!(
            view.user_by_uid(u.uid).unwrap().unwrap().name,
            u.name.as_bytes()
        );
    }
    for g in &content.groups {
        assert_eq!(
            view.group_by_name(g.name.as_bytes()).unwrap().unwrap().gid,
            g.gid
        );
        assert_eq!(
            view.group_by_gid(g.gid).unwrap().unwrap().members.len(),
            g.members.len()
        );
    }
    assert_eq!(view.to_content().unwrap(), content);
}

#[test]
fn layout_refuses_other_bytes() {
    let bytes = encode(&sample()).unwrap();
    let copy = bytes.clone();
    let layout = CacheView::parse(&bytes).unwrap().layout();
    assert!(CacheView::with_layout(&copy, layout).is_err());
    assert!(CacheView::with_layout(&bytes[..bytes.len() - 1], layout).is_err());
}

#[test]
fn every_truncation_is_refused() {
    let bytes = encode(&sample()).unwrap();
    for len in 0..bytes.len() {
        assert!(
            CacheView::parse(&bytes[..len]).is_err(),
            "length {len} accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(matches!(
        CacheView::parse(&longer),
        Err(CacheError::LengthMismatch { .. })
    ));
}

/// xorshift64*: deterministic pseudo-random numbers for the corruption tests.
pub(crate) struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_corruptions_give_an_error_or_the_original_answers() {
    let bytes = encode(&sample()).unwrap();
    let expected = answers(&CacheView::parse(&bytes).unwrap()).unwrap();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut accepted = 0;
    for round in 0..20_000 {
        let mut bad = bytes.clone();
        let flips = 1 + round % 4;
        for _ in 0..flips {
            let at = rng.below(bad.len());
            bad[at] ^= 1 << rng.below(8);
        }
        if bad == bytes {
            continue;
        }
        if let Ok(view) = CacheView::parse(&bad) {
            accepted += 1;
            if let Ok(got) = answers(&view) {
                assert_eq!(
                    got, expected,
                    "round {round}: wrong answer from a corrupted file"
                );
            }
        }
    }
    // CRC-32 catches every flip of up to 32 bits in a burst; a pass means
    // none slipped through.
    assert_eq!(accepted, 0);
}

#[test]
fn header_errors_are_specific() {
    let bytes = encode(&sample()).unwrap();
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(CacheView::parse(&bad).unwrap_err(), CacheError::BadMagic);
    let mut bad = bytes.clone();
    bad[12] = 2;
    assert_eq!(
        CacheView::parse(&bad).unwrap_err(),
        CacheError::UnsupportedVersion(2)
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        CacheView::parse(&bad).unwrap_err(),
        CacheError::ChecksumMismatch
    );
    assert_eq!(
        CacheView::parse(b"").unwrap_err(),
        CacheError::LengthMismatch {
            expected: 64,
            actual: 0
        }
    );
    assert_eq!(
        CacheView::parse(&[0u8; 100]).unwrap_err(),
        CacheError::BadMagic
    );
}

fn invalid(content: &CacheContent) -> String {
    match encode(content) {
        Err(CacheError::Invalid(msg)) => msg,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn duplicates_are_refused() {
    let mut c = sample();
    c.users.push(user("alice", 10009, 1));
    assert!(invalid(&c).contains("duplicate user name"));

    let mut c = sample();
    c.users.push(user("dave", 10001, 1));
    assert!(invalid(&c).contains("duplicate uid"));

    let mut c = sample();
    c.groups.push(UnixGroup {
        name: "staff".into(),
        gid: 1,
        members: vec![],
    });
    assert!(invalid(&c).contains("duplicate group name"));

    let mut c = sample();
    c.groups.push(UnixGroup {
        name: "other".into(),
        gid: 20001,
        members: vec![],
    });
    assert!(invalid(&c).contains("duplicate gid"));

    let mut c = sample();
    c.groups[0].members.push("alice".into());
    assert!(invalid(&c).contains("twice"));

    let mut c = sample();
    c.user_groups.insert("bob".into(), vec![5, 6, 5]);
    assert!(invalid(&c).contains("twice"));

    let mut c = sample();
    c.user_groups.insert("ghost".into(), vec![5]);
    assert!(invalid(&c).contains("unknown user"));
}

#[test]
fn hostile_strings_and_ids_are_refused() {
    let bad_fields = ["a:b", "a\nb", "a\0b", "a\rb", "a\x7fb", "\t"];
    for bad in bad_fields {
        for field in 0..4 {
            let mut c = sample();
            let u = &mut c.users[0];
            match field {
                0 => u.name = bad.into(),
                1 => u.gecos = bad.into(),
                2 => u.home = bad.into(),
                _ => u.shell = bad.into(),
            }
            invalid(&c);
        }
        let mut c = sample();
        c.groups[0].name = bad.into();
        invalid(&c);
        let mut c = sample();
        c.groups[0].members[0] = bad.into();
        invalid(&c);
        let mut c = sample();
        c.source = bad.into();
        invalid(&c);
    }
    for bad_name in [
        "",
        "a,b",
        "a b",
        "a\u{00a0}b",
        &"x".repeat(MAX_NAME_LEN + 1),
    ] {
        let mut c = sample();
        c.users[1].name = bad_name.to_owned();
        invalid(&c);
        let mut c = sample();
        c.groups[1].name = bad_name.to_owned();
        invalid(&c);
    }
    // Gecos may hold commas and spaces (it is a comma-separated field).
    let mut c = sample();
    c.users[0].gecos = "Alice A., Room 1, +1 555".into();
    encode(&c).unwrap();

    for id in [0, u32::MAX] {
        let mut c = sample();
        c.users[0].uid = id;
        invalid(&c);
        let mut c = sample();
        c.users[0].gid = id;
        invalid(&c);
        let mut c = sample();
        c.groups[0].gid = id;
        invalid(&c);
        let mut c = sample();
        c.user_groups.insert("bob".into(), vec![id]);
        invalid(&c);
    }
}

#[test]
fn write_atomic_replaces_and_cleans_up() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("netauth-cache-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let first = encode(&sample()).unwrap();
    write_atomic(&dir, CACHE_FILE_NAME, &first).unwrap();
    let path = dir.join(CACHE_FILE_NAME);
    assert_eq!(std::fs::read(&path).unwrap(), first);
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );

    let mut second_content = sample();
    second_content.users.pop();
    second_content.user_groups.remove("carol");
    let second = encode(&second_content).unwrap();
    write_atomic(&dir, CACHE_FILE_NAME, &second).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), second);

    assert!(write_atomic(&dir, "a/b", &second).is_err());
    assert!(write_atomic(&dir.join("missing"), CACHE_FILE_NAME, &second).is_err());
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != CACHE_FILE_NAME)
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

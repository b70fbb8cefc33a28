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
    let mut user_keys = BTreeMap::new();
    user_keys.insert(
        "alice".to_owned(),
        vec![
            "SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@laptop".to_owned(),
            "GPG:0xDEADBEEF".to_owned(),
            "ssh:no-pty ssh-rsa AAAAB3NzaC1yc2E alice:old key".to_owned(),
        ],
    );
    user_keys.insert(
        "carol".to_owned(),
        vec!["SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICarol carol@x".to_owned()],
    );
    CacheContent {
        users,
        groups,
        user_groups,
        user_keys,
        generated_at: 1_700_000_000,
        source: "netauth.example.org".to_owned(),
    }
}

/// One lookup, run on its own against a view.
#[derive(Debug, Clone)]
enum Query {
    UserName(String),
    Uid(u32),
    GroupsOf(String),
    KeysOf(String),
    GroupName(String),
    Gid(u32),
    UserAt(usize),
    GroupAt(usize),
    Source,
    Everything,
}

fn run(view: &CacheView<'_>, query: &Query) -> Result<String, CacheError> {
    let user = |u: Option<UserRecord<'_>>| format!("{:?}", u.map(|u| describe_user(&u)));
    let group = |g: Option<GroupRecord<'_>>| {
        g.map(|g| describe_group(&g))
            .transpose()
            .map(|g| format!("{g:?}"))
    };
    match query {
        Query::UserName(name) => view.user_by_name(name.as_bytes()).map(user),
        Query::Uid(uid) => view.user_by_uid(*uid).map(user),
        Query::GroupsOf(name) => view
            .groups_of_user(name.as_bytes())
            .map(|g| format!("{:?}", g.map(|g| g.collect::<Vec<_>>()))),
        Query::KeysOf(name) => view
            .user_keys(name.as_bytes())
            .and_then(|keys| keys.map(|k| k.collect::<Result<Vec<_>, _>>()).transpose())
            .map(|keys| format!("{keys:?}")),
        Query::GroupName(name) => view.group_by_name(name.as_bytes()).and_then(group),
        Query::Gid(gid) => view.group_by_gid(*gid).and_then(group),
        Query::UserAt(i) => view.user_at(*i).map(user),
        Query::GroupAt(i) => view.group_at(*i).and_then(group),
        Query::Source => view.source().map(str::to_owned),
        Query::Everything => view.to_content().map(|c| format!("{c:?}")),
    }
}

/// Lookups of (some of) the keys of `content`, and of a few unknown keys.
fn queries(content: &CacheContent, step: usize) -> Vec<Query> {
    let mut out = Vec::new();
    for (i, u) in content.users.iter().enumerate().step_by(step) {
        out.push(Query::UserName(u.name.clone()));
        out.push(Query::Uid(u.uid));
        out.push(Query::GroupsOf(u.name.clone()));
        out.push(Query::KeysOf(u.name.clone()));
        out.push(Query::UserAt(i));
    }
    for (i, g) in content.groups.iter().enumerate().step_by(step) {
        out.push(Query::GroupName(g.name.clone()));
        out.push(Query::Gid(g.gid));
        out.push(Query::GroupAt(i));
    }
    for unknown in ["nobody", "staff", "alice"] {
        out.push(Query::UserName(unknown.to_owned()));
        out.push(Query::KeysOf(unknown.to_owned()));
        out.push(Query::GroupName(unknown.to_owned()));
    }
    for id in [0, 1, 10004, 20004, u32::MAX] {
        out.push(Query::Uid(id));
        out.push(Query::Gid(id));
    }
    out.push(Query::Source);
    out.push(Query::Everything);
    out
}

/// Every answer the sample gives, one entry per lookup, to compare damaged
/// files against.
fn lookups(view: &CacheView<'_>) -> Vec<Result<String, CacheError>> {
    queries(&sample(), 1).iter().map(|q| run(view, q)).collect()
}

/// All of [`lookups`], or the first error.
fn answers(view: &CacheView<'_>) -> Result<Vec<String>, CacheError> {
    lookups(view).into_iter().collect()
}

/// A directory big enough for many 4 KiB blocks (about 700 KB).
fn large() -> CacheContent {
    let mut content = CacheContent::default();
    for i in 0..5000u32 {
        let name = format!("user{i}");
        content
            .user_groups
            .insert(name.clone(), (0..i % 7).map(|g| 50_000 - g * 97).collect());
        content.users.push(user(&name, 100_000 + i * 3, 1000));
        if i % 3 == 0 {
            let keys = (0..i % 4)
                .map(|k| format!("SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i}x{k} {name}@host"))
                .collect();
            content.user_keys.insert(name, keys);
        }
    }
    for i in 0..700u32 {
        content.groups.push(UnixGroup {
            name: format!("group{i}"),
            gid: 50_000 - i,
            members: (0..i % 13).map(|m| format!("user{}", m * 31 + i)).collect(),
        });
    }
    content
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

fn describe_group(g: &GroupRecord<'_>) -> Result<String, CacheError> {
    let members = g.members.clone().collect::<Result<Vec<_>, _>>()?;
    Ok(format!("{:?}:{}:{:?}", g.name, g.gid, members))
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
    assert_eq!(admins.members.joined().unwrap(), b"carol\0localuser\0");
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
    assert!(view.is_fully_checked());

    let keys: Vec<(&str, &str)> = view
        .user_keys(b"alice")
        .unwrap()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        keys,
        [
            (
                "SSH",
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAlice alice@laptop"
            ),
            ("GPG", "0xDEADBEEF"),
            ("ssh", "no-pty ssh-rsa AAAAB3NzaC1yc2E alice:old key"),
        ]
    );
    // A locked user's keys are kept; the caller decides.
    assert_eq!(view.user_keys(b"carol").unwrap().unwrap().len(), 1);
    assert_eq!(view.user_keys(b"bob").unwrap().unwrap().len(), 0);
    assert!(view.user_keys(b"staff").unwrap().is_none());
    assert!(view.user_keys(b"").unwrap().is_none());

    let check = LazyCheck::new(&bytes).unwrap();
    let lazy = check.view(&bytes).unwrap();
    assert!(!lazy.is_fully_checked());
    assert_eq!(lazy.user_by_name(b"carol").unwrap().unwrap().uid, 10003);
    assert_eq!(answers(&lazy).unwrap(), answers(&view).unwrap());
    assert_eq!(check.verified_blocks(), check.block_count());
    assert_eq!(check.damaged_block(), None);
    // Every block verified: later views skip the per-block check.
    assert!(check.view(&bytes).unwrap().is_fully_checked());
}

#[test]
fn views_skip_the_bitset_once_every_block_is_verified() {
    let bytes = encode_with_block_size(&sample(), 64).unwrap();
    let check = LazyCheck::new(&bytes).unwrap();
    assert!(check.block_count() > 8);
    let view = check.view(&bytes).unwrap();
    view.user_by_name(b"alice").unwrap().unwrap();
    let partly = check.verified_blocks();
    assert!(partly > 0 && partly < check.block_count(), "{partly}");
    assert!(!check.view(&bytes).unwrap().is_fully_checked());
    check.verify_all(&bytes).unwrap();
    assert_eq!(check.verified_blocks(), check.block_count());
    let after = check.view(&bytes).unwrap();
    assert!(after.is_fully_checked());
    assert_eq!(answers(&after).unwrap(), answers(&view).unwrap());
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
fn lazy_check_refuses_other_bytes() {
    let bytes = encode(&sample()).unwrap();
    let copy = bytes.clone();
    let check = LazyCheck::new(&bytes).unwrap();
    assert!(check.view(&copy).is_err());
    assert!(check.view(&bytes[..bytes.len() - 1]).is_err());
    assert!(check.verify_all(&copy).is_err());
    assert_eq!(check.verified_blocks(), 0);
}

#[test]
fn every_truncation_is_refused() {
    for block_size in [64, BLOCK_SIZE] {
        let bytes = encode_with_block_size(&sample(), block_size).unwrap();
        for len in 0..bytes.len() {
            assert!(
                CacheView::parse(&bytes[..len]).is_err(),
                "length {len} accepted"
            );
            // Refused from the header alone, before any lookup.
            assert!(
                LazyCheck::new(&bytes[..len]).is_err(),
                "length {len} accepted lazily"
            );
        }
    }
    let bytes = encode(&sample()).unwrap();
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
    for block_size in [64, BLOCK_SIZE] {
        let bytes = encode_with_block_size(&sample(), block_size).unwrap();
        let expected = answers(&CacheView::parse(&bytes).unwrap()).unwrap();
        let mut rng = Rng(0x1234_5678_9abc_def1);
        let (mut accepted, mut answered, mut failed) = (0, 0, 0);
        for round in 0..10_000 {
            let mut bad = bytes.clone();
            let flips = 1 + round % 4;
            for _ in 0..flips {
                let at = rng.below(bad.len());
                bad[at] ^= 1 << rng.below(8);
            }
            if bad == bytes {
                continue;
            }
            // The replaced mark lies outside every checksum on purpose (the
            // writer sets it in place): changing it alone is no damage, the
            // file reads as before.
            let mark = crate::REPLACED_MARK_OFFSET..crate::REPLACED_MARK_OFFSET + 4;
            let mut unmarked = bad.clone();
            unmarked[mark.clone()].copy_from_slice(&bytes[mark]);
            if unmarked == bytes {
                let view = CacheView::parse(&bad).expect("only the mark changed");
                assert_eq!(answers(&view).unwrap(), expected, "round {round}");
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
            // Lazily: every lookup gives an error or exactly the original
            // answer, and the damage is found by a full check.
            let Ok(check) = LazyCheck::new(&bad) else {
                continue;
            };
            let view = check.view(&bad).unwrap();
            for (got, want) in lookups(&view).into_iter().zip(&expected) {
                match got {
                    Ok(got) => {
                        assert_eq!(&got, want, "round {round}: wrong answer");
                        answered += 1;
                    }
                    Err(e) => {
                        assert!(matches!(e, CacheError::DamagedBlock { .. }), "{e:?}");
                        failed += 1;
                    }
                }
            }
            assert!(check.verify_all(&bad).is_err(), "round {round}");
            assert!(check.damaged_block().is_some());
        }
        // CRC-32 catches every flip of up to 32 bits in a burst; a pass means
        // none slipped through.
        assert_eq!(accepted, 0);
        assert!(
            failed > 0,
            "block size {block_size}: no damage found lazily"
        );
        if block_size == 64 {
            // Small blocks: damage in one leaves the lookups that do not
            // read it answering.
            assert!(answered > 0, "no lookup answered around the damage");
        }
    }
}

/// The blocks `query` reads on the intact file, found with a fresh check.
fn blocks_read(bytes: &[u8], query: &Query) -> Vec<usize> {
    let check = LazyCheck::new(bytes).unwrap();
    run(&check.view(bytes).unwrap(), query).unwrap();
    (0..check.block_count())
        .filter(|&b| check.is_verified(b))
        .collect()
}

/// The offset range of block `block` of a file encoded with `block_size`.
fn block_range(bytes: &[u8], block_size: u32, block: usize) -> std::ops::Range<usize> {
    // The data area starts at the first block boundary after the header.
    let header_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
    let data_start = header_len.next_multiple_of(block_size as usize);
    let start = data_start + block * block_size as usize;
    start..(start + block_size as usize).min(bytes.len())
}

#[test]
fn a_damaged_block_fails_exactly_the_lookups_that_read_it() {
    let mut rng = Rng(0x5eed_0fb1_0c00);
    for (content, block_size, step) in [
        (sample(), 64, 1),
        (large(), BLOCK_SIZE, 97),
        (large(), 256, 211),
    ] {
        let bytes = encode_with_block_size(&content, block_size).unwrap();
        let queries = queries(&content, step);
        let good = CacheView::parse(&bytes).unwrap();
        let expected: Vec<String> = queries.iter().map(|q| run(&good, q).unwrap()).collect();
        let reads: Vec<Vec<usize>> = queries.iter().map(|q| blocks_read(&bytes, q)).collect();
        let blocks = LazyCheck::new(&bytes).unwrap().block_count();
        assert!(blocks > 8, "{blocks} blocks");
        for block in (0..blocks).step_by(1 + blocks / 64) {
            let range = block_range(&bytes, block_size, block);
            let mut bad = bytes.clone();
            bad[range.start + rng.below(range.len())] ^= 1 << rng.below(8);
            // One check for all the lookups, as a long-lived mapping has.
            let check = LazyCheck::new(&bad).unwrap();
            let view = check.view(&bad).unwrap();
            let (mut answered, mut failed) = (0, 0);
            for ((query, want), read) in queries.iter().zip(&expected).zip(&reads) {
                let got = run(&view, query);
                if read.contains(&block) {
                    assert_eq!(
                        got,
                        Err(CacheError::DamagedBlock { block }),
                        "{query:?} reads damaged block {block}"
                    );
                    failed += 1;
                } else {
                    assert_eq!(got.as_ref(), Ok(want), "{query:?} does not read {block}");
                    answered += 1;
                }
            }
            // Index blocks no query here probes are never read.
            let read_by_any = reads.iter().any(|r| r.contains(&block));
            assert_eq!(check.damaged_block(), read_by_any.then_some(block));
            assert_eq!(failed > 0, read_by_any);
            assert!(answered > 0, "block {block}: every lookup failed");
            assert!(!check.is_verified(block));
            assert_eq!(
                check.verify_all(&bad),
                Err(CacheError::DamagedBlock { block })
            );
            assert!(!check.view(&bad).unwrap().is_fully_checked());
        }
    }
}

#[test]
fn a_lookup_checks_only_the_blocks_it_reads() {
    let content = large();
    let bytes = encode(&content).unwrap();
    let blocks = LazyCheck::new(&bytes).unwrap().block_count();
    assert!(blocks > 100, "{blocks} blocks");
    for u in content.users.iter().step_by(501) {
        let by_name = blocks_read(&bytes, &Query::UserName(u.name.clone()));
        // The hash slot, then the record, which holds its strings and gid
        // list in one piece (a block, or two where it crosses a boundary).
        assert!(by_name.len() <= 3, "{}: {by_name:?}", u.name);
        let by_uid = blocks_read(&bytes, &Query::Uid(u.uid));
        assert!(by_uid.len() <= 3, "{}: {by_uid:?}", u.uid);
    }
    // Decoding everything reads every data section but not the indexes.
    let everything = blocks_read(&bytes, &Query::Everything).len();
    assert!(
        everything > blocks / 2 && everything < blocks,
        "{everything}"
    );
}

/// Where the CRC table of a file encoded with `block_size` starts (after
/// the last data block), and how many blocks it has.
fn crc_table(bytes: &[u8], block_size: u32) -> (usize, usize) {
    let blocks = LazyCheck::new(bytes).unwrap().block_count();
    let start = block_range(bytes, block_size, blocks - 1).end;
    (start, (blocks * 4).div_ceil(4096.max(block_size as usize)))
}

/// The data blocks' CRCs lie in a table after the data area, each block
/// of it checked against a CRC in the header when a lookup first needs
/// one of its CRCs: damage there fails exactly the lookups that read a
/// block whose CRC it holds, never the mapping as a whole.
#[test]
fn a_damaged_crc_table_block_fails_only_the_lookups_it_vouches_for() {
    let content = large();
    let block_size = 64u32;
    let bytes = encode_with_block_size(&content, block_size).unwrap();
    let queries = queries(&content, 7);
    let good = CacheView::parse(&bytes).unwrap();
    let expected: Vec<String> = queries.iter().map(|q| run(&good, q).unwrap()).collect();
    let reads: Vec<Vec<usize>> = queries.iter().map(|q| blocks_read(&bytes, q)).collect();
    let (table, table_blocks) = crc_table(&bytes, block_size);
    // A block of the table is a page long.
    let table_block_len = 4096;
    assert_eq!(table + table_blocks * table_block_len, bytes.len());
    assert!(table_blocks >= 3, "{table_blocks}");
    let per_table_block = table_block_len / 4;
    for table_block in [0, table_blocks / 2, table_blocks - 1] {
        let mut bad = bytes.clone();
        bad[table + table_block * table_block_len + 5] ^= 4;
        assert!(CacheView::parse(&bad).is_err());
        let check = LazyCheck::new(&bad).expect("the header is intact");
        let view = check.view(&bad).unwrap();
        let vouched = table_block * per_table_block..(table_block + 1) * per_table_block;
        let (mut answered, mut failed) = (0, 0);
        for ((query, want), read) in queries.iter().zip(&expected).zip(&reads) {
            let got = run(&view, query);
            if read.iter().any(|b| vouched.contains(b)) {
                assert!(
                    matches!(got, Err(CacheError::DamagedBlock { .. })),
                    "{query:?}: {got:?}"
                );
                failed += 1;
            } else {
                assert_eq!(got.as_ref(), Ok(want), "{query:?}");
                answered += 1;
            }
        }
        assert!(answered > 0, "table block {table_block}");
        assert!(check.verify_all(&bad).is_err());
        let _ = failed;
    }
}

/// Mapping a file checks its header alone, and the header stays within
/// one block however large the directory: the per-block CRCs are not in
/// it (at a million users they were 218 KB, all read and checksummed by
/// every process's first lookup).
#[test]
fn the_header_stays_within_a_block_as_the_directory_grows() {
    for content in [sample(), large()] {
        let bytes = encode(&content).unwrap();
        let header_len = u32::from_le_bytes(bytes[16..20].try_into().unwrap()) as usize;
        assert!(header_len <= BLOCK_SIZE as usize, "{header_len}");
        let (table, _) = crc_table(&bytes, BLOCK_SIZE);
        assert!(table > header_len);
    }
    assert!(encode(&large()).unwrap().len() > 500 * BLOCK_SIZE as usize);
}

/// [`large`] encoded with blocks of `block_size`, and the queries of every
/// `step`-th entry.
fn large_file(block_size: u32, step: usize) -> (Vec<u8>, Vec<Query>) {
    let content = large();
    let bytes = encode_with_block_size(&content, block_size).unwrap();
    (bytes, queries(&content, step))
}

/// The union of the blocks `queries` read, each query on a fresh check.
fn union_of_blocks_read(bytes: &[u8], queries: &[Query]) -> std::collections::BTreeSet<usize> {
    queries.iter().flat_map(|q| blocks_read(bytes, q)).collect()
}

#[test]
fn verified_blocks_are_counted_once_from_the_first_to_the_last() {
    // Far more blocks than the early list holds: the marks move from the
    // list to the bitset on the way, and none may be lost or counted twice.
    let (bytes, queries) = large_file(64, 41);
    let check = LazyCheck::new(&bytes).unwrap();
    let view = check.view(&bytes).unwrap();
    let mut expected = std::collections::BTreeSet::new();
    for (i, query) in queries.iter().enumerate() {
        run(&view, query).unwrap();
        expected.extend(blocks_read(&bytes, query));
        assert_eq!(check.verified_blocks(), expected.len(), "after query {i}");
        if i % 16 == 0 || i + 1 == queries.len() {
            for block in 0..check.block_count() {
                assert_eq!(
                    check.is_verified(block),
                    expected.contains(&block),
                    "{block}"
                );
            }
        }
    }
    assert!(expected.len() > 500, "{}", expected.len());
    assert!(expected.len() < check.block_count());
    check.verify_all(&bytes).unwrap();
    assert_eq!(check.verified_blocks(), check.block_count());
    assert!(check.view(&bytes).unwrap().is_fully_checked());
}

#[test]
fn threads_recording_the_same_blocks_count_each_once() {
    let (bytes, queries) = large_file(64, 97);
    let expected = union_of_blocks_read(&bytes, &queries);
    assert!(expected.len() > 200, "{}", expected.len());
    for round in 0..20 {
        let check = LazyCheck::new(&bytes).unwrap();
        let start = std::sync::Barrier::new(4);
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let (check, bytes, queries, start) = (&check, &bytes, &queries, &start);
                scope.spawn(move || {
                    let view = check.view(bytes).unwrap();
                    start.wait();
                    for query in queries {
                        run(&view, query).unwrap();
                    }
                });
            }
        });
        assert_eq!(check.verified_blocks(), expected.len(), "round {round}");
        let marked: std::collections::BTreeSet<usize> = (0..check.block_count())
            .filter(|&b| check.is_verified(b))
            .collect();
        assert_eq!(marked, expected, "round {round}");
    }
}

#[test]
fn threads_share_one_check() {
    let (bytes, queries) = large_file(256, 37);
    let good = CacheView::parse(&bytes).unwrap();
    let expected: Vec<String> = queries.iter().map(|q| run(&good, q).unwrap()).collect();
    let reads: Vec<Vec<usize>> = queries.iter().map(|q| blocks_read(&bytes, q)).collect();
    let damaged = reads[0][0];
    let range = block_range(&bytes, 256, damaged);
    let mut bad = bytes.clone();
    bad[range.start] ^= 0x10;
    for (file, is_bad) in [(&bytes, false), (&bad, true)] {
        let check = LazyCheck::new(file).unwrap();
        std::thread::scope(|scope| {
            for t in 0..8u64 {
                let (check, queries, expected, reads) = (&check, &queries, &expected, &reads);
                scope.spawn(move || {
                    let view = check.view(file).unwrap();
                    let mut rng = Rng(0x9e37_79b9 + t);
                    for _ in 0..2000 {
                        let i = rng.below(queries.len());
                        let got = run(&view, &queries[i]);
                        if is_bad && reads[i].contains(&damaged) {
                            assert_eq!(got, Err(CacheError::DamagedBlock { block: damaged }));
                        } else {
                            assert_eq!(got.as_ref(), Ok(&expected[i]), "{:?}", queries[i]);
                        }
                    }
                });
            }
        });
        if is_bad {
            assert_eq!(check.damaged_block(), Some(damaged));
        } else {
            assert_eq!(check.verify_all(file), Ok(()));
        }
    }
}

#[test]
fn header_errors_are_specific() {
    let bytes = encode(&sample()).unwrap();
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert_eq!(CacheView::parse(&bad).unwrap_err(), CacheError::BadMagic);
    let mut bad = bytes.clone();
    bad[12] = 1;
    assert_eq!(
        CacheView::parse(&bad).unwrap_err(),
        CacheError::UnsupportedVersion(1)
    );
    assert_eq!(
        LazyCheck::new(&bad).unwrap_err(),
        CacheError::UnsupportedVersion(1)
    );
    let mut bad = bytes.clone();
    bad[100] ^= 0x40;
    assert_eq!(
        CacheView::parse(&bad).unwrap_err(),
        CacheError::ChecksumMismatch
    );
    assert_eq!(
        LazyCheck::new(&bad).unwrap_err(),
        CacheError::ChecksumMismatch
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    assert_eq!(
        CacheView::parse(&bad).unwrap_err(),
        CacheError::DamagedBlock { block: 0 }
    );
    let check = LazyCheck::new(&bad).unwrap();
    assert_eq!(
        check.verify_all(&bad).unwrap_err(),
        CacheError::DamagedBlock { block: 0 }
    );
    assert_eq!(check.damaged_block(), Some(0));
    assert_eq!(
        CacheView::parse(b"").unwrap_err(),
        CacheError::LengthMismatch {
            expected: 72,
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
    // A record holds a gecos, home or shell of up to 65,535 bytes (a u16
    // length); the refresh's cleaning caps them far lower.
    for field in 0..3 {
        for (len, ok) in [(65_535, true), (65_536, false)] {
            let mut c = sample();
            let u = &mut c.users[0];
            let long = "x".repeat(len);
            match field {
                0 => u.gecos = long,
                1 => u.home = long,
                _ => u.shell = long,
            }
            if ok {
                let bytes = encode(&c).unwrap();
                let view = CacheView::parse(&bytes).unwrap();
                assert_eq!(view.to_content().unwrap(), c);
            } else {
                invalid(&c);
            }
        }
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
    second_content.user_keys.remove("carol");
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

/// Files a correct writer never writes, with right checksums: every kind of
/// hostile name, field and id. Each entry must be refused by every lookup
/// that reaches it (eager and lazy views), while the clean entries of the
/// same file still answer.
#[test]
fn entries_the_writer_never_writes_are_refused_despite_right_checksums() {
    use super::writer::encode_unchecked;
    let clean = sample();
    let mut cases: Vec<(&str, CacheContent)> = Vec::new();
    let user_case = |f: &dyn Fn(&mut UnixUser)| {
        let mut c = clean.clone();
        f(&mut c.users[0]);
        let name = c.users[0].name.clone();
        if name != "alice" {
            let gids = c.user_groups.remove("alice").unwrap_or_default();
            c.user_groups.insert(name.clone(), gids);
            let keys = c.user_keys.remove("alice").unwrap_or_default();
            c.user_keys.insert(name, keys);
        }
        c
    };
    for bad in ["al:ce", "al\nce", "al\0ce", "al,ce", "al ce", "al\tce", ""] {
        cases.push(("user name", user_case(&|u| u.name = bad.into())));
    }
    for bad in ["A:B", "A\nroot::0:0::/:/bin/sh", "A\0B", "A\rB", "A\u{7f}"] {
        cases.push(("gecos", user_case(&|u| u.gecos = bad.into())));
        cases.push(("home", user_case(&|u| u.home = format!("/home/{bad}"))));
        cases.push(("shell", user_case(&|u| u.shell = format!("/bin/{bad}"))));
    }
    cases.push(("uid 0", user_case(&|u| u.uid = 0)));
    cases.push(("uid -1", user_case(&|u| u.uid = u32::MAX)));
    cases.push(("gid 0", user_case(&|u| u.gid = 0)));
    let mut c = clean.clone();
    c.user_groups.insert("alice".into(), vec![20001, 0]);
    cases.push(("supplementary gid 0", c));

    for (what, content) in &cases {
        let bytes = encode_unchecked(content, 64).unwrap();
        let check = LazyCheck::new(&bytes).unwrap();
        for view in [
            CacheView::parse(&bytes).unwrap(),
            check.view(&bytes).unwrap(),
        ] {
            let hostile = &content.users[0];
            let refused = |r: Result<Option<UserRecord<'_>>, CacheError>| {
                assert!(
                    matches!(r, Err(CacheError::UnsafeEntry(_))),
                    "{what}: {:?}",
                    r.map(|u| u.map(|u| describe_user(&u)))
                )
            };
            refused(view.user_by_name(hostile.name.as_bytes()));
            refused(view.user_by_uid(hostile.uid));
            refused(view.user_at(0));
            assert!(view.groups_of_user(hostile.name.as_bytes()).is_err());
            assert!(view.user_keys(hostile.name.as_bytes()).is_err());
            // The others still answer, by name, by id and by index.
            for (i, u) in content.users.iter().enumerate().skip(1) {
                let found = view.user_by_name(u.name.as_bytes()).unwrap().unwrap();
                assert_eq!(found.uid, u.uid, "{what}");
                assert!(view.user_by_uid(u.uid).unwrap().is_some(), "{what}");
                assert!(view.user_at(i).unwrap().is_some(), "{what}");
            }
            assert!(view.to_content().is_err(), "{what}");
        }
    }

    let group_case = |f: &dyn Fn(&mut UnixGroup)| {
        let mut c = clean.clone();
        f(&mut c.groups[0]);
        c
    };
    let mut cases: Vec<(&str, CacheContent)> = Vec::new();
    for bad in ["st:ff", "st\nff", "st\0ff", "st,ff", "st ff", ""] {
        cases.push(("group name", group_case(&|g| g.name = bad.into())));
    }
    cases.push(("gid 0", group_case(&|g| g.gid = 0)));
    cases.push(("gid -1", group_case(&|g| g.gid = u32::MAX)));
    for (what, content) in &cases {
        let bytes = encode_unchecked(content, 64).unwrap();
        let check = LazyCheck::new(&bytes).unwrap();
        for view in [
            CacheView::parse(&bytes).unwrap(),
            check.view(&bytes).unwrap(),
        ] {
            let hostile = &content.groups[0];
            for r in [
                view.group_by_name(hostile.name.as_bytes()),
                view.group_by_gid(hostile.gid),
                view.group_at(0),
            ] {
                assert!(
                    matches!(r, Err(CacheError::UnsafeEntry(_))),
                    "{what}: {:?}",
                    r.map(|g| g.map(|g| g.gid))
                );
            }
            let other = view.group_by_name(b"admins").unwrap().unwrap();
            assert_eq!(other.gid, 20002, "{what}");
            assert!(view.group_at(1).unwrap().is_some());
        }
    }

    // A member name (here not also a user name) holding a separator: the
    // group record reads, its member list is refused as a whole (a NUL, the
    // list's own separator, makes one name too many), other groups' lists
    // are not.
    for bad in ["lo:cal", "lo\ncal", "lo\0cal", "lo,cal", ""] {
        let mut c = clean.clone();
        c.groups[1].members[1] = bad.into();
        let bytes = encode_unchecked(&c, 64).unwrap();
        let view = CacheView::parse(&bytes).unwrap();
        let members: Vec<Result<&[u8], CacheError>> = view
            .group_by_name(b"admins")
            .unwrap()
            .unwrap()
            .members
            .collect();
        assert_eq!(members.len(), 1, "{bad:?}: {members:?}");
        let expected_refusal = if bad.contains('\0') {
            matches!(members[0], Err(CacheError::Corrupt(_)))
        } else {
            matches!(members[0], Err(CacheError::UnsafeEntry(_)))
        };
        assert!(expected_refusal, "{bad:?}: {members:?}");
        let staff = view.group_by_name(b"staff").unwrap().unwrap();
        assert!(staff.members.joined().is_ok(), "{bad:?}");
    }

    // What the writer does write is never refused: every byte from 0x80
    // up, commas and spaces in a gecos, spaces in a path.
    let mut c = clean.clone();
    c.users[0].gecos = "Zoë Ünïcödé, Room 1\u{85}\u{a0}".into();
    c.users[0].home = "/home/with space".into();
    c.users[0].name = "zoë".into();
    c.user_groups.remove("alice");
    c.user_keys.remove("alice");
    let bytes = encode(&c).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    assert!(view.user_by_name("zoë".as_bytes()).unwrap().is_some());
    assert_eq!(view.to_content().unwrap(), c);
}

/// A file of an earlier format (version 2, no keys), as the version 2
/// writer wrote it: refused as a whole, so the NSS module answers UNAVAIL
/// until a refresh writes the current version, instead of misreading it.
#[test]
fn a_version_2_file_is_refused_as_unsupported() {
    let v2 = include_bytes!("../tests/data/version2.cache");
    assert_eq!(&v2[..8], b"NAUTHNSS");
    assert_eq!(u32::from_le_bytes(v2[12..16].try_into().unwrap()), 2);
    assert_eq!(
        CacheView::parse(v2).unwrap_err(),
        CacheError::UnsupportedVersion(2)
    );
    assert_eq!(
        LazyCheck::new(v2).unwrap_err(),
        CacheError::UnsupportedVersion(2)
    );
    // And what this writer writes says version 5; a version 4 file (the
    // same bytes but for the version, so even its checksums are right) is
    // refused too.
    let v5 = encode(&sample()).unwrap();
    assert_eq!(u32::from_le_bytes(v5[12..16].try_into().unwrap()), 5);
    assert_eq!(FORMAT_VERSION, 5);
    let mut v4 = v5.clone();
    v4[12..16].copy_from_slice(&4u32.to_le_bytes());
    assert_eq!(
        CacheView::parse(&v4).unwrap_err(),
        CacheError::UnsupportedVersion(4)
    );
    let mut v3 = v5.clone();
    v3[12..16].copy_from_slice(&3u32.to_le_bytes());
    assert_eq!(
        CacheView::parse(&v3).unwrap_err(),
        CacheError::UnsupportedVersion(3)
    );
}

#[test]
fn hostile_keys_are_refused_by_the_writer() {
    for bad in [
        "ssh-ed25519 AAAA",
        ":ssh-ed25519 AAAA",
        "SSH:",
        "SSH:ssh-ed25519 AAAA\nssh-ed25519 BBBB",
        "SSH:ssh-ed25519 AAAA\0",
        "SSH:ssh-ed25519 AAAA\r",
        "S SH:ssh-ed25519 AAAA",
    ] {
        let mut c = sample();
        c.user_keys.get_mut("alice").unwrap().push(bad.into());
        assert!(invalid(&c).contains("alice"), "{bad:?}");
    }
    let mut c = sample();
    c.user_keys
        .insert("ghost".into(), vec!["SSH:ssh-ed25519 AAAA".into()]);
    assert!(invalid(&c).contains("unknown user"));
    let mut c = sample();
    c.user_keys.insert(
        "bob".into(),
        (0..=clean::MAX_KEYS_PER_USER)
            .map(|i| format!("SSH:ssh-ed25519 AAAA{i}"))
            .collect(),
    );
    assert!(invalid(&c).contains("more than"));
}

/// A crafted file whose key breaks the writer's rule (a newline would make
/// `ssh-keys` print two lines, the second a key nobody stored): the key is
/// refused, the user's passwd entry and the other users' keys are not.
#[test]
fn keys_the_writer_never_writes_are_refused_despite_right_checksums() {
    use super::writer::encode_unchecked;
    for bad in [
        "SSH:ssh-ed25519 AAAA\nssh-ed25519 EVIL",
        "SSH:ssh-ed25519 AAAA\0",
        "SSH",
        ":ssh-ed25519 AAAA",
        "S H:ssh-ed25519 AAAA",
        "SSH:",
    ] {
        let mut c = sample();
        c.user_keys.get_mut("alice").unwrap()[1] = bad.into();
        let bytes = encode_unchecked(&c, 64).unwrap();
        let check = LazyCheck::new(&bytes).unwrap();
        for view in [
            CacheView::parse(&bytes).unwrap(),
            check.view(&bytes).unwrap(),
        ] {
            let keys: Vec<_> = view.user_keys(b"alice").unwrap().unwrap().collect();
            assert!(keys[0].is_ok(), "{bad:?}");
            assert!(
                matches!(keys[1], Err(CacheError::UnsafeEntry(_))),
                "{bad:?}: {keys:?}"
            );
            assert!(keys[2].is_ok(), "{bad:?}");
            assert_eq!(view.user_by_name(b"alice").unwrap().unwrap().uid, 10001);
            assert_eq!(view.user_keys(b"carol").unwrap().unwrap().len(), 1);
            assert!(view.to_content().is_err());
        }
    }
}

/// Keys live apart from the passwd data: a passwd, group or initgroups
/// lookup reads no block that holds only key data (the KEYS section and
/// the key strings in the string pool), and a key lookup reads a handful of
/// blocks.
#[test]
fn passwd_lookups_do_not_read_the_keys() {
    let content = large();
    let block_size = 64;
    let bytes = encode_with_block_size(&content, block_size).unwrap();
    let field = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let section = |i: usize| (field(72 + 8 * i), field(72 + 8 * i + 4));
    let data_start = field(16).next_multiple_of(block_size as usize);
    let (strings_at, strings_len) = section(0);
    let key_strings: usize = content.user_keys.values().flatten().map(String::len).sum();
    let (keys_at, keys_len) = section(9);
    let key_only = [
        (
            strings_at + strings_len - key_strings,
            strings_at + strings_len,
        ),
        (keys_at, keys_at + keys_len),
    ];
    // Blocks wholly inside a key-only range.
    let key_blocks: Vec<usize> = (0..LazyCheck::new(&bytes).unwrap().block_count())
        .filter(|b| {
            let range = block_range(&bytes, block_size, *b);
            key_only
                .iter()
                .any(|(from, to)| range.start >= *from && range.end <= *to)
        })
        .collect();
    assert!(key_blocks.len() > 20, "{key_blocks:?}");
    assert!(data_start <= strings_at);
    for u in content.users.iter().step_by(333) {
        for query in [
            Query::UserName(u.name.clone()),
            Query::Uid(u.uid),
            Query::GroupsOf(u.name.clone()),
        ] {
            let read = blocks_read(&bytes, &query);
            assert!(
                read.iter().all(|b| !key_blocks.contains(b)),
                "{query:?} reads key blocks: {read:?}"
            );
        }
        let keys = blocks_read(&bytes, &Query::KeysOf(u.name.clone()));
        // Hash slot, record, name, key range, key refs, key strings: a
        // few 64-byte blocks each.
        assert!(keys.len() <= 16, "{}: {keys:?}", u.name);
    }
    for g in content.groups.iter().step_by(97) {
        let read = blocks_read(&bytes, &Query::GroupName(g.name.clone()));
        assert!(read.iter().all(|b| !key_blocks.contains(b)), "{}", g.name);
    }
}

/// The one in-place write: replacing the cache marks the old file (4 bytes
/// at the mark's offset, nothing else), which stays readable with the same
/// answers; the new file is installed unmarked.
#[test]
fn replacing_the_cache_marks_the_old_file_and_nothing_else() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CACHE_FILE_NAME);
    let first = encode(&sample()).unwrap();
    write_atomic(dir.path(), CACHE_FILE_NAME, &first).unwrap();
    // Held open as a process holds its mapping of the old file.
    let mut old = std::fs::File::open(&path).unwrap();
    let second = encode(&large()).unwrap();
    write_atomic(dir.path(), CACHE_FILE_NAME, &second).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), second, "new file unmarked");
    let mut old_bytes = Vec::new();
    old.read_to_end(&mut old_bytes).unwrap();
    let mark = REPLACED_MARK_OFFSET..REPLACED_MARK_OFFSET + 4;
    assert_eq!(old_bytes[mark.clone()], 1u32.to_le_bytes());
    let mut unmarked = old_bytes.clone();
    unmarked[mark].copy_from_slice(&[0; 4]);
    assert_eq!(unmarked, first, "only the mark changed");
    // A marked file is still a good file: fully and lazily checked.
    let view = CacheView::parse(&old_bytes).unwrap();
    assert_eq!(view.to_content().unwrap(), sample());
    let check = LazyCheck::new(&old_bytes).unwrap();
    check.verify_all(&old_bytes).unwrap();
}

/// What is not a cache file of this format is never written to: nothing
/// at the path, another file, a version older than 4 (whose mark lay
/// elsewhere or did not exist), a link (not followed). A version 4 file,
/// whose mark lies at the same offset, is marked, so that processes still
/// mapping it after an upgrade notice the new file at once.
#[test]
fn only_a_cache_file_of_this_format_is_marked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CACHE_FILE_NAME);
    assert!(!mark_replaced(dir.path(), CACHE_FILE_NAME).unwrap());
    let text = vec![b'x'; 200];
    std::fs::write(&path, &text).unwrap();
    assert!(!mark_replaced(dir.path(), CACHE_FILE_NAME).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), text);
    let mut v3 = encode(&sample()).unwrap();
    v3[12..16].copy_from_slice(&3u32.to_le_bytes());
    std::fs::write(&path, &v3).unwrap();
    assert!(!mark_replaced(dir.path(), CACHE_FILE_NAME).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), v3);
    let mut v4 = encode(&sample()).unwrap();
    v4[12..16].copy_from_slice(&4u32.to_le_bytes());
    std::fs::write(&path, &v4).unwrap();
    assert!(mark_replaced(dir.path(), CACHE_FILE_NAME).unwrap());
    let marked = std::fs::read(&path).unwrap();
    assert_eq!(marked[60..64], 1u32.to_le_bytes());
    assert_eq!(marked[..60], v4[..60]);
    assert_eq!(marked[64..], v4[64..]);
    let short = &encode(&sample()).unwrap()[..40];
    std::fs::write(&path, short).unwrap();
    assert!(!mark_replaced(dir.path(), CACHE_FILE_NAME).unwrap());
    assert_eq!(std::fs::read(&path).unwrap(), short);
    // A link to a cache file elsewhere: refused, its target untouched.
    let target = dir.path().join("elsewhere");
    let good = encode(&sample()).unwrap();
    std::fs::write(&target, &good).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&target, &path).unwrap();
    assert!(mark_replaced(dir.path(), CACHE_FILE_NAME).is_err());
    assert_eq!(std::fs::read(&target).unwrap(), good);
}

/// Ids are found through a hash table: one probe in the common case, so a
/// uid or gid lookup reads as few blocks as a name lookup, however large
/// the directory (a binary search read about log2(n) of them).
#[test]
fn id_lookups_read_a_few_blocks() {
    let content = large();
    let bytes = encode_with_block_size(&content, 64).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    for u in content.users.iter().step_by(97) {
        assert_eq!(
            view.user_by_uid(u.uid).unwrap().unwrap().name,
            u.name.as_bytes()
        );
        let read = blocks_read(&bytes, &Query::Uid(u.uid));
        // Id slot (maybe two), record, name, gecos, home, shell, gids.
        assert!(read.len() <= 10, "{}: {read:?}", u.uid);
    }
    for g in content.groups.iter().step_by(13) {
        assert_eq!(
            view.group_by_gid(g.gid).unwrap().unwrap().name,
            g.name.as_bytes()
        );
    }
    assert!(view.user_by_uid(99).unwrap().is_none());
    assert!(view.group_by_gid(99).unwrap().is_none());
}

/// The streaming writer of a refresh writes, byte for byte, the file
/// `encode` returns (same seed), and `write_atomic_with` installs it.
#[test]
fn encode_to_file_writes_what_encode_returns() {
    // Over 2 MiB in all, so that the file goes out in more than one write.
    let mut big = sample();
    for i in 0..9_000u32 {
        let mut u = user(&format!("user{i}"), 100_000 + i * 3, 1000);
        u.gecos = "x".repeat(i as usize % 300);
        big.users.push(u);
        if i % 7 == 0 {
            big.user_groups
                .insert(format!("user{i}"), vec![1000, 2000 + i]);
        }
    }
    for i in 0..400u32 {
        big.groups.push(UnixGroup {
            name: format!("group{i}"),
            gid: 50_000 - i,
            members: (0..i % 13).map(|m| format!("user{}", m * 31 + i)).collect(),
        });
    }
    let dir = tempfile::tempdir().unwrap();
    for content in [CacheContent::default(), sample(), big] {
        super::writer::PINNED_SEED.with(|s| s.set(Some(0x5eed)));
        let expected = encode(&content).unwrap();
        let len = crate::write_atomic_with(dir.path(), "nss.cache", |file| {
            crate::encode_to_file(&content, file)
        })
        .unwrap();
        super::writer::PINNED_SEED.with(|s| s.set(None));
        let written = std::fs::read(dir.path().join("nss.cache")).unwrap();
        assert_eq!(len, expected.len() as u64);
        if content.users.len() > 5_000 {
            assert!(written.len() > 2 * 1024 * 1024, "{}", written.len());
        }
        assert!(written == expected, "the streamed file differs");
        assert_eq!(
            CacheView::parse(&written).unwrap().to_content().unwrap(),
            content
        );
    }
}

/// Content the writer refuses leaves no file behind, neither the cache
/// nor a temporary file.
#[test]
fn encode_to_file_refuses_what_encode_refuses_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = sample();
    bad.users[1].name = "alice".to_owned();
    let err = crate::write_atomic_with(dir.path(), "nss.cache", |file| {
        crate::encode_to_file(&bad, file)
    })
    .unwrap_err();
    assert!(
        matches!(&err, crate::WriteError::Invalid(e) if *e == encode(&bad).unwrap_err()),
        "{err:?}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

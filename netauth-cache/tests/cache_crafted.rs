//! Crafted cache files: mutations whose checksums (the block CRCs and the
//! header CRC) are fixed up afterwards, as a hostile writer would make
//! them. The reader must never panic or read out of bounds, eagerly
//! (`CacheView::parse`) or lazily (`LazyCheck`, as the NSS module reads),
//! and every answer it gives must match the key asked for.
#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "helpers that craft hostile files (outside #[test]): a crafting bug must fail the test"
)]

use netauth_cache::{
    encode, encode_with_block_size, CacheContent, CacheError, CacheView, GroupRecord, LazyCheck,
    UnixGroup, UnixUser, UserRecord,
};
use std::collections::BTreeMap;

fn content() -> CacheContent {
    let mut users = Vec::new();
    let mut user_groups = BTreeMap::new();
    for i in 0..12u32 {
        let name = format!("u{i}");
        users.push(UnixUser {
            name: name.clone(),
            uid: 5000 + i,
            gid: 7000 + i % 3,
            gecos: format!("User {i}"),
            home: format!("/home/u{i}"),
            shell: "/bin/sh".into(),
            locked: i % 5 == 0,
        });
        user_groups.insert(name, (0..i % 4).map(|g| 7000 + g).collect());
    }
    let groups = (0..4u32)
        .map(|g| UnixGroup {
            name: format!("g{g}"),
            gid: 7000 + g,
            members: (0..12)
                .filter(|i| i % 4 > g)
                .map(|i| format!("u{i}"))
                .collect(),
        })
        .collect();
    CacheContent {
        users,
        groups,
        user_groups,
        user_keys: Default::default(),
        generated_at: 42,
        source: "server".into(),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?) as usize)
}

use netauth_cache::crafting::reseal_header as fix_header_crc;
use netauth_cache::crafting::{reseal as fix_crc, reseal_blocks as fix_block_crcs};

/// Runs [`exercise`] on the file both ways the reader checks it: as a
/// whole, and block by block on first use. Returns whether either accepted
/// the header.
fn exercise_both(bytes: &[u8]) -> bool {
    let mut accepted = false;
    if let Ok(view) = CacheView::parse(bytes) {
        exercise(&view);
        accepted = true;
    }
    if let Ok(check) = LazyCheck::new(bytes) {
        let view = check.view(bytes).unwrap();
        exercise(&view);
        let _ = check.verify_all(bytes);
        accepted = true;
    }
    accepted
}

/// A name a passwd or group line can carry: no separator, white space,
/// control byte or NUL.
fn safe_name(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b > b' ' && b != b':' && b != b',' && b != 0x7f)
}

fn safe_field(s: &[u8]) -> bool {
    s.iter().all(|&b| b >= b' ' && b != b':' && b != 0x7f)
}

/// Whatever the file says, a returned user is one a correct writer could
/// have written: no entry with a separator, a NUL or id 0 reaches a caller.
fn assert_safe_user(u: &UserRecord<'_>) {
    assert!(safe_name(u.name), "user name {:?}", u.name);
    for field in [u.gecos, u.home, u.shell] {
        assert!(safe_field(field), "user field {field:?}");
    }
    for id in [u.uid, u.gid].into_iter().chain(u.groups.clone()) {
        assert!(id != 0 && id != u32::MAX, "id {id}");
    }
}

fn assert_safe_group(g: &GroupRecord<'_>) {
    assert!(safe_name(g.name), "group name {:?}", g.name);
    assert!(g.gid != 0 && g.gid != u32::MAX, "gid {}", g.gid);
    for m in g.members.clone().flatten() {
        assert!(safe_name(m), "member {m:?}");
    }
}

/// Runs every kind of lookup; returns how many answers were given.
fn exercise(view: &CacheView<'_>) -> usize {
    let mut answers = 0;
    for i in 0..16u32 {
        let name = format!("u{i}");
        if let Ok(Some(u)) = view.user_by_name(name.as_bytes()) {
            assert_eq!(u.name, name.as_bytes());
            assert_safe_user(&u);
            answers += 1;
        }
        if let Ok(Some(u)) = view.user_by_uid(5000 + i) {
            assert_eq!(u.uid, 5000 + i);
            assert_safe_user(&u);
            answers += 1;
        }
        if let Ok(Some(gids)) = view.groups_of_user(name.as_bytes()) {
            let _ = gids.count();
        }
        let group = format!("g{i}");
        if let Ok(Some(g)) = view.group_by_name(group.as_bytes()) {
            assert_eq!(g.name, group.as_bytes());
            assert_safe_group(&g);
            answers += 1;
        }
        if let Ok(Some(g)) = view.group_by_gid(7000 + i) {
            assert_eq!(g.gid, 7000 + i);
            assert_safe_group(&g);
            answers += 1;
        }
    }
    for i in 0..view.user_count().min(64) {
        if let Ok(Some(u)) = view.user_at(i) {
            assert_safe_user(&u);
        }
    }
    for i in 0..view.group_count().min(64) {
        if let Ok(Some(g)) = view.group_at(i) {
            assert_safe_group(&g);
            let _ = g.members.count();
        }
    }
    let _ = view.user_at(usize::MAX);
    let _ = view.source();
    let _ = view.to_content();
    answers
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn untouched_file_answers_everything() {
    for block_size in [64, 4096] {
        let bytes = encode_with_block_size(&content(), block_size).unwrap();
        let view = CacheView::parse(&bytes).unwrap();
        assert_eq!(exercise(&view), 12 * 2 + 4 * 2);
        let check = LazyCheck::new(&bytes).unwrap();
        assert_eq!(exercise(&check.view(&bytes).unwrap()), 12 * 2 + 4 * 2);
        assert_eq!(check.damaged_block(), None);
    }
}

#[test]
fn crafted_byte_changes_never_panic_nor_answer_another_key() {
    for block_size in [64, 4096] {
        let bytes = encode_with_block_size(&content(), block_size).unwrap();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut parsed = 0;
        for round in 0..15_000 {
            let mut bad = bytes.clone();
            // Half the rounds damage the end of the file only: the last
            // data blocks and the CRC table (the header stays valid, so
            // the lazy reader meets the damage in a lookup); the others
            // anywhere past the magic.
            let from = if round % 2 == 0 {
                bytes.len() - 700.min(bytes.len() - 12)
            } else {
                12
            };
            for _ in 0..1 + round % 3 {
                let at = from + rng.below(bad.len() - from);
                bad[at] = match rng.below(4) {
                    0 => bad[at] ^ (1 << rng.below(8)),
                    1 => 0xff,
                    2 => 0,
                    _ => rng.next() as u8,
                };
            }
            match round % 3 {
                // Everything fixed: a consistent crafted file.
                0 => fix_crc(&mut bad),
                // Only the header fixed: the block CRCs disagree.
                1 => fix_header_crc(&mut bad),
                // Nothing fixed: plain damage.
                _ => {}
            }
            if exercise_both(&bad) {
                parsed += 1;
            }
        }
        assert!(
            parsed > 1000,
            "the mutations should mostly keep the header valid ({parsed})"
        );
    }
}

#[test]
fn crafted_u32_fields_at_extremes_never_panic() {
    let bytes = encode_with_block_size(&content(), 64).unwrap();
    // Every aligned 32-bit word past the CRC, set to values that stress the
    // arithmetic (overflow, off-by-one, huge counts).
    for at in (12..bytes.len() - 3).step_by(4) {
        for value in [
            0u32,
            1,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX,
            u32::MAX - 7,
            bytes.len() as u32,
        ] {
            for fix_blocks in [true, false] {
                let mut bad = bytes.clone();
                bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
                if fix_blocks {
                    fix_block_crcs(&mut bad);
                }
                fix_header_crc(&mut bad);
                exercise_both(&bad);
            }
        }
    }
    // The default block size too (one data block here).
    let bytes = encode(&content()).unwrap();
    for at in (12..bytes.len() - 3).step_by(4) {
        for value in [0u32, 1, u32::MAX, bytes.len() as u32] {
            let mut bad = bytes.clone();
            bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
            fix_crc(&mut bad);
            exercise_both(&bad);
        }
    }
}

/// `(offset, length)` of section `i` from the section table.
fn section(bytes: &[u8], i: usize) -> (usize, usize) {
    (
        u32_at(bytes, 72 + i * 8).unwrap(),
        u32_at(bytes, 72 + i * 8 + 4).unwrap(),
    )
}

/// Byte patches a hostile writer would make, checksums fixed: a uid or gid
/// of 0 in a record, a `:` or newline or NUL in a stored string. The entry
/// is refused (an error, never the entry), the others still answer.
#[test]
fn crafted_ids_and_separators_are_refused_with_right_checksums() {
    let bytes = encode_with_block_size(&content(), 64).unwrap();
    let (users_at, _) = section(&bytes, 1);
    let (index_at, index_len) = section(&bytes, 2);
    assert_eq!(index_len, 12 * 4);
    // Where u3's record starts (the index is in enumeration order, u0
    // first); uid and gid are its first two fields.
    let record = users_at + u32_at(&bytes, index_at + 3 * 4).unwrap();
    let refused = |bad: &[u8], what: &str| {
        for view in [
            CacheView::parse(bad).unwrap(),
            LazyCheck::new(bad).unwrap().view(bad).unwrap(),
        ] {
            let by_index = view.user_at(3);
            assert!(
                matches!(by_index, Err(CacheError::UnsafeEntry(_))),
                "{what}: {by_index:?}"
            );
            // By name: refused, whatever index the uid points to.
            assert!(view.user_by_name(b"u3").is_err(), "{what}");
            assert!(view.user_by_uid(5003).is_err(), "{what}");
            assert_eq!(view.user_by_name(b"u4").unwrap().unwrap().uid, 5004);
            assert_eq!(view.user_by_uid(5005).unwrap().unwrap().uid, 5005);
            // An enumeration by index meets the error at 3 only.
            let answered = (0..12).filter(|&i| view.user_at(i).is_ok()).count();
            assert_eq!(answered, 11, "{what}");
        }
    };
    for (field, value) in [(0, 0u32), (4, 0), (4, u32::MAX)] {
        let mut bad = bytes.clone();
        bad[record + field..record + field + 4].copy_from_slice(&value.to_le_bytes());
        fix_crc(&mut bad);
        refused(&bad, &format!("record field {field} = {value}"));
    }
    // The home of u3, "/home/u3", lives once, in its record.
    let home = bytes
        .windows(8)
        .position(|w| w == b"/home/u3")
        .expect("home in the record");
    for byte in [b':', b'\n', 0] {
        let mut bad = bytes.clone();
        bad[home + 5] = byte;
        fix_crc(&mut bad);
        refused(&bad, &format!("home byte {byte:#x}"));
    }
}

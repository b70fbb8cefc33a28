//! Crafted cache files: mutations whose CRC is fixed up afterwards, as a
//! hostile writer would make them. The reader must never panic or read out
//! of bounds, and every answer it gives must match the key asked for.

use netauth_core::cache::{encode, CacheContent, CacheView, UnixGroup, UnixUser};
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
        generated_at: 42,
        source: "server".into(),
    }
}

fn fix_crc(bytes: &mut [u8]) {
    let crc = crc32fast::hash(&bytes[12..]);
    bytes[8..12].copy_from_slice(&crc.to_le_bytes());
}

/// Runs every kind of lookup; returns how many answers were given.
fn exercise(view: &CacheView<'_>) -> usize {
    let mut answers = 0;
    for i in 0..16u32 {
        let name = format!("u{i}");
        if let Ok(Some(u)) = view.user_by_name(name.as_bytes()) {
            assert_eq!(u.name, name.as_bytes());
            answers += 1;
        }
        if let Ok(Some(u)) = view.user_by_uid(5000 + i) {
            assert_eq!(u.uid, 5000 + i);
            let _ = u.groups.count();
            answers += 1;
        }
        if let Ok(Some(gids)) = view.groups_of_user(name.as_bytes()) {
            let _ = gids.count();
        }
        let group = format!("g{i}");
        if let Ok(Some(g)) = view.group_by_name(group.as_bytes()) {
            assert_eq!(g.name, group.as_bytes());
            let _ = g.members.clone().filter(Result::is_ok).count();
            answers += 1;
        }
        if let Ok(Some(g)) = view.group_by_gid(7000 + i) {
            assert_eq!(g.gid, 7000 + i);
            answers += 1;
        }
    }
    for i in 0..view.user_count().min(64) {
        let _ = view.user_at(i);
    }
    for i in 0..view.group_count().min(64) {
        if let Ok(Some(g)) = view.group_at(i) {
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
    let bytes = encode(&content()).unwrap();
    let view = CacheView::parse(&bytes).unwrap();
    assert_eq!(exercise(&view), 12 * 2 + 4 * 2);
}

#[test]
fn crafted_byte_changes_never_panic_nor_answer_another_key() {
    let bytes = encode(&content()).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut parsed = 0;
    for round in 0..30_000 {
        let mut bad = bytes.clone();
        for _ in 0..1 + round % 3 {
            let at = 12 + rng.below(bad.len() - 12);
            bad[at] = match rng.below(4) {
                0 => bad[at] ^ (1 << rng.below(8)),
                1 => 0xff,
                2 => 0,
                _ => rng.next() as u8,
            };
        }
        fix_crc(&mut bad);
        if let Ok(view) = CacheView::parse(&bad) {
            parsed += 1;
            exercise(&view);
        }
    }
    assert!(
        parsed > 1000,
        "the mutations should mostly keep the header valid ({parsed})"
    );
}

#[test]
fn crafted_u32_fields_at_extremes_never_panic() {
    let bytes = encode(&content()).unwrap();
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
            let mut bad = bytes.clone();
            bad[at..at + 4].copy_from_slice(&value.to_le_bytes());
            fix_crc(&mut bad);
            if let Ok(view) = CacheView::parse(&bad) {
                exercise(&view);
            }
        }
    }
}

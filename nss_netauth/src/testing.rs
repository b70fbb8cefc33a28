//! What the unit tests of `source` and `enumerate` share: a cache file of
//! their own in a temp folder of their own, read under a rule that trusts
//! files the test's user owns, with a log they can read back.

use crate::source::{SharedSlot, Source, ThreadState};
use netauth_cache::trusted::{Owner, TrustRule};
use netauth_cache::{encode_with_block_size, write_atomic, CacheContent, UnixGroup, UnixUser};
use std::cell::RefCell;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The cache rule, but a file (and folder) of the test's user passes it.
pub const MINE: TrustRule = TrustRule::CACHE.with_owner(Owner::RootOrCaller);

pub const FILE_NAME: &str = "nss.cache";

/// Small blocks, so that a small file has many of them.
pub const BLOCK: u32 = 64;

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The log sink of [`source`]: each test thread has its own.
fn log(message: &str) {
    LOG.with(|log| log.borrow_mut().push(message.to_owned()));
}

/// What was logged on this thread since the last call.
pub fn logged() -> Vec<String> {
    LOG.with(|log| std::mem::take(&mut *log.borrow_mut()))
}

/// The source of the test file at `path`, under [`MINE`].
pub fn source(path: &str) -> Source<'_> {
    Source {
        path,
        rule: MINE,
        log,
    }
}

/// A folder of the test's own (mode 0700) and the cache path in it.
pub fn folder() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME).to_str().unwrap().to_owned();
    (dir, path)
}

/// A thread's state and a process's slot, as nobody has used them yet.
pub fn fresh() -> (ThreadState, SharedSlot) {
    (ThreadState::NEW, SharedSlot::new())
}

/// Users named `names` (uids from 1000 in that order), in group `staff`.
pub fn content(names: &[&str]) -> CacheContent {
    CacheContent {
        users: names
            .iter()
            .zip(1000..)
            .map(|(name, uid)| UnixUser {
                name: (*name).to_owned(),
                uid,
                gid: 5000,
                gecos: format!("The user {name}"),
                home: format!("/home/{name}"),
                shell: "/bin/sh".to_owned(),
                locked: false,
            })
            .collect(),
        groups: vec![UnixGroup {
            name: "staff".to_owned(),
            gid: 5000,
            members: names.iter().map(|n| (*n).to_owned()).collect(),
        }],
        ..CacheContent::default()
    }
}

pub fn encoded(names: &[&str]) -> Vec<u8> {
    encode_with_block_size(&content(names), BLOCK).unwrap()
}

/// Installs a cache of `names` as the writer does (the old file marked).
pub fn install(dir: &Path, names: &[&str]) {
    write_atomic(dir, FILE_NAME, &encoded(names)).unwrap();
}

/// Installs `bytes` by a plain rename, without marking the old file.
pub fn install_unmarked(dir: &Path, bytes: &[u8]) {
    let tmp = dir.join("unmarked.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::rename(&tmp, dir.join(FILE_NAME)).unwrap();
}

/// A cache of `names` with one byte of `damaged`'s gecos flipped: the CRC
/// of the block holding it no longer matches.
pub fn damaged(names: &[&str], damaged: &str) -> Vec<u8> {
    let mut bytes = encoded(names);
    let at = netauth_test_support::offset_of(&bytes, format!("The user {damaged}").as_bytes());
    bytes[at + 4] ^= 0x20;
    bytes
}

pub fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

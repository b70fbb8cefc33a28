//! Building a cache file: validation, encoding, atomic installation.

use super::format::*;
use super::{clean, CacheContent, CacheError, UnixUser, MAX_NAME_LEN};
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Uid/gid values never written: 0 (root must never come from the
/// directory) and `(uid_t)-1` (means "no change" to chown and setreuid).
fn reserved_id(id: u32) -> bool {
    id == 0 || id == u32::MAX
}

/// What the writer reads. [`CacheContent`] is one; a caller that holds
/// its directory in another shape (the refresh: member lists and gid lists
/// by user index instead of by name, for its peak memory) is another.
/// Users and groups are read by position, in enumeration order.
pub trait CacheSource {
    /// The users, in enumeration order.
    fn users(&self) -> &[UnixUser];
    /// The gids `initgroups` adds for the user at `index` of [`users`](Self::users).
    fn user_gids(&self, index: usize) -> &[u32];
    /// The public keys of the user at `index`, each `TYPE:KEY`.
    fn user_keys(&self, index: usize) -> &[String];
    /// How many groups there are.
    fn group_count(&self) -> usize;
    /// The name and gid of the group at `index`.
    fn group(&self, index: usize) -> (&str, u32);
    /// The member names of the group at `index`.
    fn members(&self, index: usize) -> impl Iterator<Item = &str> + Clone;
    /// When the data was fetched, in seconds since the Unix epoch.
    fn generated_at(&self) -> i64;
    /// Which server the data came from.
    fn source(&self) -> &str;
    /// The rules of the source's own shape, given the set of user names:
    /// [`CacheContent`] refuses a gid list or keys for a user it does not
    /// hold.
    fn check_shape(&self, user_names: &HashSet<&str>) -> Result<(), CacheError>;
}

impl CacheSource for CacheContent {
    fn users(&self) -> &[UnixUser] {
        &self.users
    }
    fn user_gids(&self, index: usize) -> &[u32] {
        self.users
            .get(index)
            .and_then(|u| self.user_groups.get(&u.name))
            .map_or(&[], Vec::as_slice)
    }
    fn user_keys(&self, index: usize) -> &[String] {
        self.users
            .get(index)
            .and_then(|u| self.user_keys.get(&u.name))
            .map_or(&[], Vec::as_slice)
    }
    fn group_count(&self) -> usize {
        self.groups.len()
    }
    fn group(&self, index: usize) -> (&str, u32) {
        self.groups
            .get(index)
            .map_or(("", 0), |g| (g.name.as_str(), g.gid))
    }
    fn members(&self, index: usize) -> impl Iterator<Item = &str> + Clone {
        self.groups
            .get(index)
            .map_or(&[][..], |g| g.members.as_slice())
            .iter()
            .map(String::as_str)
    }
    fn generated_at(&self) -> i64 {
        self.generated_at
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn check_shape(&self, user_names: &HashSet<&str>) -> Result<(), CacheError> {
        refuse_unknown_users(&self.user_groups, user_names, "group list")?;
        refuse_unknown_users(&self.user_keys, user_names, "keys")
    }
}

/// Refuses lists kept by user name (`what`, for the error: "keys", "group
/// list") for a user not among `user_names`.
pub fn refuse_unknown_users<V>(
    lists: &std::collections::BTreeMap<String, V>,
    user_names: &HashSet<&str>,
    what: &str,
) -> Result<(), CacheError> {
    match lists.keys().find(|u| !user_names.contains(u.as_str())) {
        Some(user) => Err(CacheError::Invalid(format!(
            "{what} for unknown user {user:?}"
        ))),
        None => Ok(()),
    }
}

/// A probe chain longer than this makes the writer try another seed.
const MAX_PROBE_BEFORE_RESEED: usize = 32;
const SEED_ATTEMPTS: usize = 8;

fn check_field(what: &str, owner: &str, value: &str) -> Result<(), CacheError> {
    if let Some(c) = value.chars().find(|&c| c.is_ascii_control() || c == ':') {
        return Err(CacheError::Invalid(format!(
            "{what} of {owner:?} contains the forbidden character {c:?}"
        )));
    }
    Ok(())
}

fn check_name(what: &str, name: &str) -> Result<(), CacheError> {
    if name.is_empty() {
        return Err(CacheError::Invalid(format!("empty {what} name")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(CacheError::Invalid(format!(
            "{what} name {name:?} is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    check_field(&format!("{what} name"), name, name)?;
    if let Some(c) = name.chars().find(|&c| c == ',' || c.is_whitespace()) {
        return Err(CacheError::Invalid(format!(
            "{what} name {name:?} contains the forbidden character {c:?}"
        )));
    }
    Ok(())
}

fn check_user(u: &UnixUser) -> Result<(), CacheError> {
    check_name("user", &u.name)?;
    check_field("gecos", &u.name, &u.gecos)?;
    check_field("home", &u.name, &u.home)?;
    check_field("shell", &u.name, &u.shell)?;
    if reserved_id(u.uid) || reserved_id(u.gid) {
        return Err(CacheError::Invalid(format!(
            "user {:?} has the reserved uid/gid {}/{}",
            u.name, u.uid, u.gid
        )));
    }
    Ok(())
}

fn check_group<'m>(
    name: &str,
    gid: u32,
    members: impl Iterator<Item = &'m str>,
) -> Result<(), CacheError> {
    check_name("group", name)?;
    if reserved_id(gid) {
        return Err(CacheError::Invalid(format!(
            "group {name:?} has the reserved gid {gid}"
        )));
    }
    let mut seen = HashSet::new();
    for m in members {
        check_name("member", m)?;
        if !seen.insert(m) {
            return Err(CacheError::Invalid(format!(
                "group {name:?} lists member {m:?} twice"
            )));
        }
    }
    Ok(())
}

/// Checks every rule [`encode`] enforces, without encoding.
pub(crate) fn validate<C: CacheSource>(content: &C) -> Result<(), CacheError> {
    check_field("source", "cache", content.source())?;
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for u in content.users() {
        check_user(u)?;
        if !names.insert(u.name.as_str()) {
            return Err(CacheError::Invalid(format!(
                "duplicate user name {:?}",
                u.name
            )));
        }
        if !ids.insert(u.uid) {
            return Err(CacheError::Invalid(format!("duplicate uid {}", u.uid)));
        }
    }
    let mut group_names = HashSet::new();
    let mut gids = HashSet::new();
    for index in 0..content.group_count() {
        let (name, gid) = content.group(index);
        check_group(name, gid, content.members(index))?;
        if !group_names.insert(name) {
            return Err(CacheError::Invalid(format!(
                "duplicate group name {name:?}"
            )));
        }
        if !gids.insert(gid) {
            return Err(CacheError::Invalid(format!("duplicate gid {gid}")));
        }
    }
    content.check_shape(&names)?;
    for (index, u) in content.users().iter().enumerate() {
        check_gid_list(&u.name, content.user_gids(index))?;
        check_keys(&u.name, content.user_keys(index))?;
    }
    Ok(())
}

fn check_gid_list(user: &str, list: &[u32]) -> Result<(), CacheError> {
    let mut seen = HashSet::new();
    for &gid in list {
        if reserved_id(gid) {
            return Err(CacheError::Invalid(format!(
                "group list of {user:?} has the reserved gid {gid}"
            )));
        }
        if !seen.insert(gid) {
            return Err(CacheError::Invalid(format!(
                "group list of {user:?} has gid {gid} twice"
            )));
        }
    }
    Ok(())
}

fn check_keys(user: &str, keys: &[String]) -> Result<(), CacheError> {
    if keys.len() > clean::MAX_KEYS_PER_USER {
        return Err(CacheError::Invalid(format!(
            "user {user:?} has {} keys, more than {}",
            keys.len(),
            clean::MAX_KEYS_PER_USER
        )));
    }
    for key in keys {
        if let Err(problem) = clean::check_key(key) {
            return Err(CacheError::Invalid(format!(
                "a key of {user:?} is refused: {problem}"
            )));
        }
    }
    Ok(())
}

fn too_large() -> CacheError {
    CacheError::Invalid("cache would exceed 4 GiB".to_owned())
}

fn to_u32(n: usize) -> Result<u32, CacheError> {
    u32::try_from(n).map_err(|_| too_large())
}

/// A deduplicating string pool.
#[derive(Default)]
struct Pool<'c> {
    bytes: Vec<u8>,
    seen: HashMap<&'c str, (u32, u32)>,
}

impl<'c> Pool<'c> {
    fn add(&mut self, s: &'c str) -> Result<(u32, u32), CacheError> {
        if let Some(&r) = self.seen.get(s) {
            return Ok(r);
        }
        let r = (to_u32(self.bytes.len())?, to_u32(s.len())?);
        self.bytes.extend_from_slice(s.as_bytes());
        to_u32(self.bytes.len())?;
        self.seen.insert(s, r);
        Ok(r)
    }
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_ref(out: &mut Vec<u8>, r: (u32, u32)) {
    put_u32(out, r.0);
    put_u32(out, r.1);
}

/// Builds an open-addressing table (linear probing) of `entries`, each
/// `(slot hash, stored key, record offset)`; returns the slots
/// `(stored key, record offset + 1)`, 0 marking an empty slot, and the
/// longest probe distance.
fn build_hash_table(entries: &[(u32, u32, u32)]) -> Result<(Vec<(u32, u32)>, usize), CacheError> {
    let slots = entries
        .len()
        .checked_mul(2)
        .and_then(|n| n.max(8).checked_next_power_of_two())
        .ok_or_else(too_large)?;
    let mask = slots - 1;
    let mut table: Vec<(u32, u32)> = vec![(0, 0); slots];
    let mut longest = 0;
    for &(h, key, offset) in entries {
        let mut slot = h as usize & mask;
        let mut distance = 0;
        loop {
            let entry = table.get_mut(slot).ok_or_else(too_large)?;
            if entry.1 == 0 {
                *entry = (key, offset.checked_add(1).ok_or_else(too_large)?);
                break;
            }
            slot = (slot + 1) & mask;
            distance += 1;
        }
        longest = longest.max(distance);
    }
    Ok((table, longest))
}

/// The four index tables of a file and the seed they were built with.
struct Indexes {
    seed: u32,
    user_names: Vec<(u32, u32)>,
    user_ids: Vec<(u32, u32)>,
    group_names: Vec<(u32, u32)>,
    group_ids: Vec<(u32, u32)>,
}

#[cfg(test)]
thread_local! {
    /// Tests pin the seeds (the first one, then one more per attempt) to
    /// compare two files byte for byte.
    pub(crate) static PINNED_SEED: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

fn pinned_seed(attempt: usize) -> Option<u32> {
    #[cfg(test)]
    return PINNED_SEED
        .with(|s| s.get())
        .map(|s| s.wrapping_add(attempt as u32));
    #[cfg(not(test))]
    {
        let _ = attempt;
        None
    }
}

/// Hash tables for both name sets and both id sets, re-seeding while a
/// probe chain is long. `user_offsets` and `group_offsets` are where each
/// record starts in its section.
fn hash_tables<C: CacheSource>(
    content: &C,
    user_offsets: &[u32],
    group_offsets: &[u32],
) -> Result<Indexes, CacheError> {
    let random = std::collections::hash_map::RandomState::new();
    let mut best: Option<(usize, Indexes)> = None;
    for attempt in 0..SEED_ATTEMPTS {
        let mut hasher = random.build_hasher();
        hasher.write_usize(attempt);
        let seed = pinned_seed(attempt).unwrap_or(hasher.finish() as u32);
        let by_name = |name: &str, offset: u32| {
            let h = name_hash(seed, name.as_bytes());
            (h, h, offset)
        };
        let by_id = |id: u32, offset: u32| (id_hash(seed, id), id, offset);
        let users = content.users().iter().zip(user_offsets.iter().copied());
        let groups = (0..content.group_count())
            .map(|index| content.group(index))
            .zip(group_offsets.iter().copied());
        let tables = [
            users
                .clone()
                .map(|(u, off)| by_name(&u.name, off))
                .collect::<Vec<_>>(),
            users.map(|(u, off)| by_id(u.uid, off)).collect(),
            groups
                .clone()
                .map(|((name, _), off)| by_name(name, off))
                .collect(),
            groups.map(|((_, gid), off)| by_id(gid, off)).collect(),
        ];
        let mut longest = 0;
        let mut built = Vec::with_capacity(tables.len());
        for entries in &tables {
            let (table, l) = build_hash_table(entries)?;
            longest = longest.max(l);
            built.push(table);
        }
        let better = best.as_ref().is_none_or(|(l, _)| longest < *l);
        if better {
            let mut it = built.into_iter();
            let mut next = || it.next().unwrap_or_default();
            best = Some((
                longest,
                Indexes {
                    seed,
                    user_names: next(),
                    user_ids: next(),
                    group_names: next(),
                    group_ids: next(),
                },
            ));
        }
        if longest <= MAX_PROBE_BEFORE_RESEED {
            break;
        }
    }
    best.map(|(_, indexes)| indexes).ok_or_else(too_large)
}

/// A u16 length of a record string, or the writer's refusal.
fn field_len(what: &str, owner: &str, value: &str) -> Result<u16, CacheError> {
    u16::try_from(value.len()).map_err(|_| {
        CacheError::Invalid(format!(
            "{what} of {owner:?} is longer than {MAX_FIELD_LEN} bytes"
        ))
    })
}

/// What one user record holds besides the user: its supplementary gids
/// and its key range in KEYS.
struct UserExtras<'c> {
    gids: &'c [u32],
    first_key: u32,
    key_count: u32,
}

/// The bytes of a user's record: the fixed head, then name, gecos, home
/// and shell, then the supplementary gids, so that a lookup reads one
/// piece of the file.
fn user_record_len(u: &UnixUser, extras: &UserExtras<'_>) -> Result<usize, CacheError> {
    USER_HEAD_LEN
        .checked_add(u.name.len() + u.gecos.len() + u.home.len() + u.shell.len())
        .and_then(|n| n.checked_add(extras.gids.len().checked_mul(GID_LEN)?))
        .ok_or_else(too_large)
}

fn put_user_record(
    out: &mut Vec<u8>,
    u: &UnixUser,
    extras: &UserExtras<'_>,
) -> Result<(), CacheError> {
    put_u32(out, u.uid);
    put_u32(out, u.gid);
    put_u32(out, if u.locked { USER_FLAG_LOCKED } else { 0 });
    put_u32(out, to_u32(extras.gids.len())?);
    put_u32(out, extras.first_key);
    put_u32(out, extras.key_count);
    for (what, value) in [
        ("name", &u.name),
        ("gecos", &u.gecos),
        ("home", &u.home),
        ("shell", &u.shell),
    ] {
        out.extend_from_slice(&field_len(what, &u.name, value)?.to_le_bytes());
    }
    for value in [&u.name, &u.gecos, &u.home, &u.shell] {
        out.extend_from_slice(value.as_bytes());
    }
    for &gid in extras.gids {
        put_u32(out, gid);
    }
    Ok(())
}

/// The bytes of a group's record: the fixed head, the name, each member
/// name's length (a byte: names are at most [`MAX_NAME_LEN`] bytes), then
/// the member names each followed by a NUL, ready to copy into a caller's
/// buffer.
fn group_record_len<'m>(
    name: &str,
    mut members: impl Iterator<Item = &'m str>,
) -> Result<usize, CacheError> {
    members
        .try_fold(GROUP_HEAD_LEN + name.len(), |n, m| {
            n.checked_add(m.len() + 2)
        })
        .ok_or_else(too_large)
}

fn put_group_record<'m>(
    out: &mut Vec<u8>,
    (name, gid): (&str, u32),
    members: impl Iterator<Item = &'m str> + Clone,
) -> Result<(), CacheError> {
    let (count, members_len) = members
        .clone()
        .fold((0usize, 0usize), |(c, n), m| (c + 1, n + m.len() + 1));
    put_u32(out, gid);
    put_u32(out, to_u32(count)?);
    put_u32(out, to_u32(members_len)?);
    out.extend_from_slice(&field_len("name", name, name)?.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name.as_bytes());
    for m in members.clone() {
        let len = u8::try_from(m.len()).map_err(|_| {
            CacheError::Invalid(format!(
                "member name {m:?} is longer than {MAX_NAME_LEN} bytes"
            ))
        })?;
        out.push(len);
    }
    for m in members {
        out.extend_from_slice(m.as_bytes());
        out.push(0);
    }
    Ok(())
}

/// Where each record starts in its section, and the section's length.
fn record_offsets<T>(
    items: impl Iterator<Item = T>,
    mut len: impl FnMut(T) -> Result<usize, CacheError>,
) -> Result<(Vec<u32>, usize), CacheError> {
    let mut offsets = Vec::new();
    let mut total = 0usize;
    for item in items {
        offsets.push(to_u32(total)?);
        total = total.checked_add(len(item)?).ok_or_else(too_large)?;
    }
    to_u32(total)?;
    Ok((offsets, total))
}

/// Validates `content` and encodes it as a version 5 cache file with
/// blocks of [`BLOCK_SIZE`](super::BLOCK_SIZE) bytes.
///
/// Refuses (with [`CacheError::Invalid`]) duplicate user or group names or
/// ids, uid/gid 0 and 4294967295, names that are empty, longer than
/// [`MAX_NAME_LEN`] or hold `,` or white space, any string holding `:` or an
/// ASCII control character (NUL, newline, ...), a member listed twice, and a
/// group list for an unknown user or with a repeated gid, and keys of an
/// unknown user, more than [`clean::MAX_KEYS_PER_USER`] of them, or one
/// that [`clean::check_key`] refuses. The refresh cleans directory data
/// before; this is the last line of defence.
pub fn encode(content: &CacheContent) -> Result<Vec<u8>, CacheError> {
    encode_with_block_size(content, super::BLOCK_SIZE)
}

/// [`encode`] with another checksum block size: a power of two from 64 to
/// 1 MiB. Tests use small blocks so that a small file has many of them.
pub fn encode_with_block_size(
    content: &CacheContent,
    block_size: u32,
) -> Result<Vec<u8>, CacheError> {
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(CacheError::Invalid(format!(
            "block size {block_size} is not a power of two from {MIN_BLOCK_SIZE} to {MAX_BLOCK_SIZE}"
        )));
    }
    validate(content)?;
    encode_unchecked(content, block_size)
}

/// [`encode_with_block_size`] without [`validate`]: writes what it is given,
/// with right checksums. Tests use it to make the files a correct writer
/// never writes (the reader must refuse their entries).
pub(crate) fn encode_unchecked<C: CacheSource>(
    content: &C,
    block_size: u32,
) -> Result<Vec<u8>, CacheError> {
    let mut out = Vec::new();
    let header = stream_unchecked(content, block_size, &mut out, |out, layout| {
        // The header's place, filled in once the data is written.
        out.reserve_exact(layout.file_len);
        out.resize(layout.data_start, 0);
        Ok(())
    })
    .map_err(|e| match e {
        WriteError::Invalid(e) => e,
        WriteError::Io(e) => CacheError::Invalid(format!("cannot encode the cache: {e}")),
    })?;
    if let Some(place) = out.get_mut(..header.len()) {
        place.copy_from_slice(&header);
    }
    Ok(out)
}

/// Why [`encode_to_file`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The content breaks a rule of the writer (see [`encode`]).
    #[error(transparent)]
    Invalid(#[from] CacheError),
    /// The file could not be written.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Validates `content` and writes it to `file` (empty, at offset 0) as
/// [`encode`] would, byte for byte, without ever holding the whole file:
/// the data area goes out block by block as its records are made (its
/// CRCs are kept, 4 bytes a block), then the CRC table, and the header,
/// which holds the CRCs of the table, last, at offset 0. For a refresh,
/// whose peak memory would otherwise be the content plus the whole file.
/// Returns the file's length. With [`write_atomic_with`], the cache is
/// installed as [`write_atomic`] installs [`encode`]'s bytes.
pub fn encode_to_file<C: CacheSource>(content: &C, file: &mut File) -> Result<u64, WriteError> {
    use std::os::unix::fs::FileExt;
    validate(content)?;
    let mut out = AlignedWrites::new(&mut *file);
    let mut file_len = 0;
    let header = stream_unchecked(content, super::BLOCK_SIZE, &mut out, |out, layout| {
        file_len = layout.file_len as u64;
        // Zeros where the header goes, so that the writes stay aligned to
        // the start of the file; the header overwrites them at the end.
        out.write_all(&vec![0; layout.data_start])
    })?;
    out.flush()?;
    drop(out);
    file.write_all_at(&header, 0)?;
    Ok(file_len)
}

/// How much of the data area waits in memory before it is written out.
const STREAM_CHUNK: usize = 64 * 1024;

/// The size and alignment of [`AlignedWrites`]' writes: a huge page.
const LARGE_WRITE: usize = 2 * 1024 * 1024;

/// A writer that passes its bytes on in writes of exactly [`LARGE_WRITE`]
/// bytes (the last one shorter), each at a multiple of it from where it
/// started. The page cache keeps what one large write wrote in large
/// folios, which the kernel then maps into every reader 2 MiB at a time,
/// one TLB entry where 4 KiB writes would need 512 (measured: a 21 MB
/// cache written in 2 MiB writes is mapped with huge entries, in 64 KiB
/// writes with none).
struct AlignedWrites<W: Write> {
    out: W,
    pending: Vec<u8>,
}

impl<W: Write> AlignedWrites<W> {
    fn new(out: W) -> Self {
        AlignedWrites {
            out,
            pending: Vec::with_capacity(LARGE_WRITE + STREAM_CHUNK),
        }
    }
}

impl<W: Write> Write for AlignedWrites<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= LARGE_WRITE {
            let mut written = 0;
            for chunk in self.pending.chunks_exact(LARGE_WRITE) {
                self.out.write_all(chunk)?;
                written += chunk.len();
            }
            self.pending.drain(..written);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        self.out.flush()
    }
}

/// Encodes `content` to `out` without validating it: `start` is called
/// with the layout once it is known (to put `out` at the start of the data
/// area), then the data area and the CRC table are written; returns the
/// header (and the zero padding up to the data area), which belongs at
/// the start of the file.
fn stream_unchecked<C: CacheSource, W: Write>(
    content: &C,
    block_size: u32,
    out: &mut W,
    start: impl FnOnce(&mut W, &FileLayout) -> io::Result<()>,
) -> Result<Vec<u8>, WriteError> {
    let parts = Parts::gather(content)?;
    let layout = FileLayout::new(&parts.section_lens(), block_size)?;
    start(out, &layout)?;
    let mut data = DataStream {
        out,
        pending: Vec::with_capacity(STREAM_CHUNK + MAX_FIELD_LEN * 4),
        at: layout.data_start,
        block_len: layout.block_len,
        crcs: Vec::with_capacity(layout.block_count),
    };
    put_sections(&mut data, content, &parts, &layout)?;
    let (seed, source) = (parts.indexes.seed, parts.source);
    drop(parts);
    data.pad_to(layout.crc_table)?;
    data.flush_blocks()?;
    let mut table = Vec::with_capacity(layout.file_len - layout.crc_table);
    data.crcs.iter().for_each(|&crc| put_u32(&mut table, crc));
    table.resize(layout.file_len - layout.crc_table, 0);
    data.out.write_all(&table)?;
    let mut header = Vec::with_capacity(layout.data_start);
    put_header(&mut header, content, &layout, seed, source)?;
    header.resize(layout.data_start, 0);
    put_checksums(&mut header, &table, &layout);
    Ok(header)
}

/// The data area on its way to the file: whole blocks are written out with
/// their CRCs kept, the rest waits in `pending`.
struct DataStream<'w, W> {
    out: &'w mut W,
    pending: Vec<u8>,
    /// The file offset of `pending`'s first byte.
    at: usize,
    block_len: usize,
    /// The CRC of each block written so far.
    crcs: Vec<u32>,
}

impl<W: Write> DataStream<'_, W> {
    /// The file offset of the next byte.
    fn pos(&self) -> usize {
        self.at + self.pending.len()
    }

    /// Zero bytes up to the file offset `to`.
    fn pad_to(&mut self, to: usize) -> Result<(), CacheError> {
        let gap = to.checked_sub(self.pos()).ok_or_else(|| {
            CacheError::Invalid("a record is longer than its computed length".to_owned())
        })?;
        self.pending.resize(self.pending.len() + gap, 0);
        Ok(())
    }

    /// Writes out the whole blocks waiting, once there are enough of them.
    fn maybe_flush(&mut self) -> io::Result<()> {
        if self.pending.len() >= STREAM_CHUNK {
            self.flush_blocks()?;
        }
        Ok(())
    }

    /// Writes out every whole block waiting.
    fn flush_blocks(&mut self) -> io::Result<()> {
        let whole = self.pending.len() / self.block_len * self.block_len;
        let (blocks, _) = self.pending.split_at(whole);
        for block in blocks.chunks_exact(self.block_len) {
            self.crcs.push(crc32fast::hash(block));
        }
        self.out.write_all(blocks)?;
        self.pending.drain(..whole);
        self.at += whole;
        Ok(())
    }
}

/// What the file holds besides the records themselves, gathered before
/// anything is written: the pool, the key references, each user's
/// extras, where each record will start, and the hash tables.
struct Parts<'c> {
    /// What passwd and group lookups never read: the source and the keys.
    pool: Pool<'c>,
    source: (u32, u32),
    keys: Vec<u8>,
    extras: Vec<UserExtras<'c>>,
    user_offsets: Vec<u32>,
    users_len: usize,
    group_offsets: Vec<u32>,
    groups_len: usize,
    indexes: Indexes,
}

impl<'c> Parts<'c> {
    fn gather<C: CacheSource>(content: &'c C) -> Result<Self, CacheError> {
        let mut pool = Pool::default();
        let source = pool.add(content.source())?;
        let mut keys = Vec::new();
        let mut extras = Vec::with_capacity(content.users().len());
        for index in 0..content.users().len() {
            let own = content.user_keys(index);
            extras.push(UserExtras {
                gids: content.user_gids(index),
                first_key: to_u32(keys.len() / STR_REF_LEN)?,
                key_count: to_u32(own.len())?,
            });
            for key in own {
                put_ref(&mut keys, pool.add(key)?);
            }
        }
        let (user_offsets, users_len) =
            record_offsets(content.users().iter().zip(&extras), |(u, x)| {
                user_record_len(u, x)
            })?;
        let (group_offsets, groups_len) = record_offsets(0..content.group_count(), |index| {
            group_record_len(content.group(index).0, content.members(index))
        })?;
        let indexes = hash_tables(content, &user_offsets, &group_offsets)?;
        Ok(Parts {
            pool,
            source,
            keys,
            extras,
            user_offsets,
            users_len,
            group_offsets,
            groups_len,
            indexes,
        })
    }

    /// The length of each section, in section order.
    fn section_lens(&self) -> [usize; KNOWN_SECTIONS] {
        let slots_len = |t: &[(u32, u32)]| t.len() * HASH_SLOT_LEN;
        [
            self.pool.bytes.len(),
            self.users_len,
            self.user_offsets.len() * INDEX_ENTRY_LEN,
            slots_len(&self.indexes.user_names),
            slots_len(&self.indexes.user_ids),
            self.groups_len,
            self.group_offsets.len() * INDEX_ENTRY_LEN,
            slots_len(&self.indexes.group_names),
            slots_len(&self.indexes.group_ids),
            self.keys.len(),
        ]
    }
}

/// Writes every section at its place in `layout`, in section order, the
/// records straight into the data stream.
fn put_sections<C: CacheSource, W: Write>(
    data: &mut DataStream<'_, W>,
    content: &C,
    parts: &Parts<'_>,
    layout: &FileLayout,
) -> Result<(), WriteError> {
    let mut sections = layout.sections.iter();
    let mut start_section = |data: &mut DataStream<'_, W>| match sections.next() {
        Some(&(at, _)) => data.pad_to(at),
        None => Ok(()),
    };
    start_section(data)?;
    put_chunked(data, &parts.pool.bytes, |out, b| out.push(*b))?;
    start_section(data)?;
    for (u, x) in content.users().iter().zip(&parts.extras) {
        put_user_record(&mut data.pending, u, x)?;
        data.maybe_flush()?;
    }
    start_section(data)?;
    put_chunked(data, &parts.user_offsets, |out, &off| put_u32(out, off))?;
    start_section(data)?;
    put_chunked(data, &parts.indexes.user_names, put_slot)?;
    start_section(data)?;
    put_chunked(data, &parts.indexes.user_ids, put_slot)?;
    start_section(data)?;
    for index in 0..content.group_count() {
        put_group_record(
            &mut data.pending,
            content.group(index),
            content.members(index),
        )?;
        data.maybe_flush()?;
    }
    start_section(data)?;
    put_chunked(data, &parts.group_offsets, |out, &off| put_u32(out, off))?;
    start_section(data)?;
    put_chunked(data, &parts.indexes.group_names, put_slot)?;
    start_section(data)?;
    put_chunked(data, &parts.indexes.group_ids, put_slot)?;
    start_section(data)?;
    put_chunked(data, &parts.keys, |out, b| out.push(*b))?;
    Ok(())
}

/// Writes `items` with `put`, a chunk at a time, so that a large section
/// never waits whole in memory.
fn put_chunked<W: Write, T>(
    data: &mut DataStream<'_, W>,
    items: &[T],
    mut put: impl FnMut(&mut Vec<u8>, &T),
) -> io::Result<()> {
    for chunk in items.chunks(4096) {
        chunk.iter().for_each(|item| put(&mut data.pending, item));
        data.maybe_flush()?;
    }
    Ok(())
}

fn put_slot(out: &mut Vec<u8>, &(key, offset_plus_one): &(u32, u32)) {
    put_u32(out, key);
    put_u32(out, offset_plus_one);
}

/// Where the parts of a file go, computed from its sections' lengths.
struct FileLayout {
    /// Absolute `(offset, length)` of each section.
    sections: Vec<(usize, usize)>,
    header_len: usize,
    data_start: usize,
    block_len: usize,
    block_count: usize,
    /// Offset of the CRC table, right after the last data block.
    crc_table: usize,
    crc_blocks: usize,
    file_len: usize,
}

impl FileLayout {
    /// Sections are laid out relative to the start of the data area first:
    /// its size gives the block count, which gives the size of the CRC
    /// table and so of the header, which gives where the data area starts
    /// (the next block boundary, so that checking a block touches nothing
    /// else).
    fn new(section_lens: &[usize], block_size: u32) -> Result<Self, CacheError> {
        let mut relative = Vec::with_capacity(section_lens.len());
        let mut data_len = 0usize;
        for &len in section_lens {
            data_len = data_len.next_multiple_of(8);
            relative.push((data_len, len));
            data_len = data_len.checked_add(len).ok_or_else(too_large)?;
        }
        let block_len = block_size as usize;
        let block_count = data_len.div_ceil(block_len);
        let crc_blocks = crc_block_count(block_count, block_len).ok_or_else(too_large)?;
        let header_len = crc_blocks
            .checked_mul(BLOCK_CRC_LEN)
            .and_then(|n| n.checked_add(HEADER_FIXED_LEN + section_lens.len() * SECTION_ENTRY_LEN))
            .ok_or_else(too_large)?;
        let data_start = header_len
            .checked_next_multiple_of(block_len)
            .ok_or_else(too_large)?;
        let crc_table = block_count
            .checked_mul(block_len)
            .and_then(|n| n.checked_add(data_start))
            .ok_or_else(too_large)?;
        let file_len = crc_blocks
            .checked_mul(table_block_len(block_len))
            .and_then(|n| n.checked_add(crc_table))
            .ok_or_else(too_large)?;
        to_u32(file_len)?;
        Ok(FileLayout {
            sections: relative
                .into_iter()
                .map(|(off, len)| (data_start + off, len))
                .collect(),
            header_len,
            data_start,
            block_len,
            block_count,
            crc_table,
            crc_blocks,
            file_len,
        })
    }
}

/// The fixed header and the section table; the CRCs are filled in by
/// [`put_checksums`].
fn put_header<C: CacheSource>(
    out: &mut Vec<u8>,
    content: &C,
    layout: &FileLayout,
    seed: u32,
    source: (u32, u32),
) -> Result<(), CacheError> {
    out.extend_from_slice(&MAGIC);
    put_u32(out, 0); // header CRC, filled in last
    put_u32(out, super::FORMAT_VERSION);
    put_u32(out, to_u32(layout.header_len)?);
    put_u32(out, to_u32(layout.sections.len())?);
    out.extend_from_slice(&(layout.file_len as u64).to_le_bytes());
    out.extend_from_slice(&content.generated_at().to_le_bytes());
    put_u32(out, seed);
    put_u32(out, to_u32(content.users().len())?);
    put_u32(out, to_u32(content.group_count())?);
    put_ref(out, source);
    put_u32(out, 0); // replaced mark: not replaced
    put_u32(out, to_u32(layout.block_len)?);
    put_u32(out, to_u32(layout.block_count)?);
    debug_assert_eq!(out.len(), HEADER_FIXED_LEN);
    for &(offset, len) in &layout.sections {
        put_u32(out, to_u32(offset)?);
        put_u32(out, to_u32(len)?);
    }
    Ok(())
}

/// Fills in the header's CRC of every block of the CRC `table` (which
/// holds the CRC of every data block) and the header's own CRC; `header`
/// runs up to the data area.
fn put_checksums(header: &mut [u8], table: &[u8], layout: &FileLayout) {
    let level_one = HEADER_FIXED_LEN + layout.sections.len() * SECTION_ENTRY_LEN;
    if let Some(fields) = header.get_mut(level_one..layout.header_len) {
        for (block, field) in table
            .chunks(table_block_len(layout.block_len))
            .zip(fields.chunks_exact_mut(BLOCK_CRC_LEN))
        {
            field.copy_from_slice(&crc32fast::hash(block).to_le_bytes());
        }
    }
    debug_assert_eq!(
        table.len(),
        layout.crc_blocks * table_block_len(layout.block_len)
    );
    if let Some(crc) = header_crc(header, layout.data_start) {
        if let Some(field) = header.get_mut(H_CRC..H_CRC + 4) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
    }
}

/// Sets the replaced mark in the header of the cache file at
/// `dir/file_name`, if it is a cache file of this format: the one in-place
/// write a cache file ever gets, 4 bytes at a fixed offset outside every
/// checksum, which tells every process that maps the file, without a system
/// call, that the path now holds another file. Returns whether a mark was
/// written; nothing at the path (`Ok(false)`) is the first refresh.
///
/// It opens without following a link and without blocking, writes only to
/// a regular file that starts with this format's magic and version and is
/// long enough to hold a header, and writes nothing else: readers map the
/// file read-only and rely on every other byte staying as it is.
pub fn mark_replaced(dir: &Path, file_name: &str) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(dir.join(file_name))
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() || meta.len() < HEADER_FIXED_LEN as u64 {
        return Ok(false);
    }
    let mut head = [0u8; H_VERSION + 4];
    file.read_exact_at(&mut head, 0)?;
    // Version 4 keeps its mark at the same offset: marking it lets the
    // processes that still map it (loaded before an upgrade) notice at once.
    if head.get(..MAGIC.len()) != Some(&MAGIC[..])
        || !matches!(
            read_u32(&head, H_VERSION),
            Some(4) | Some(super::FORMAT_VERSION)
        )
    {
        return Ok(false);
    }
    file.write_all_at(&REPLACED.to_le_bytes(), H_REPLACED as u64)?;
    Ok(true)
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How the names of [`write_atomic`]'s temporary files for `file_name`
/// begin (`.NAME.tmp.`): a writer holding the folder's lock removes the
/// ones a killed writer left behind.
pub fn temp_file_prefix(file_name: &str) -> String {
    format!(".{file_name}.tmp.")
}

/// Installs `bytes` as `dir/file_name` atomically: a temporary file in the
/// same folder (created exclusively, mode 0644), written, fsynced, the old
/// file marked as replaced ([`mark_replaced`]), the new one renamed over
/// it, then the folder fsynced. Readers see the old file or the
/// new one, never a part; after a crash at any point the old file is intact
/// (at worst a `.NAME.tmp.*` file is left behind, see [`temp_file_prefix`]).
/// The temporary file is removed on error. Its mode is exactly 0644,
/// whatever the umask.
pub fn write_atomic(dir: &Path, file_name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_with(dir, file_name, |file| file.write_all(bytes))
}

/// [`write_atomic`] with the content written by `write` into the temporary
/// file (empty, at offset 0), e.g. by [`encode_to_file`]: the file is
/// installed only if `write` succeeds, and removed if it fails.
pub fn write_atomic_with<T, E: From<io::Error>>(
    dir: &Path,
    file_name: &str,
    write: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    if file_name.is_empty() || file_name.contains('/') || file_name == "." || file_name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid cache file name {file_name:?}"),
        )
        .into());
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tmp_path = dir.join(format!(
        "{}{}.{nanos}.{}",
        temp_file_prefix(file_name),
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp_path)?;
    let result = (|| {
        // The umask may have narrowed the mode; the cache must be
        // world-readable for every process that resolves names.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        let written = write(&mut file)?;
        file.sync_all()?;
        // Before the rename, so that no reader can see the new file while
        // the old one is still unmarked: a writer killed after the mark
        // and before the rename leaves the old file in place, marked,
        // which readers only take as a reason to look at the path again.
        // A mark that cannot be written does not stop the refresh: readers
        // then notice the new file at their next periodic look.
        let _ = mark_replaced(dir, file_name);
        fs::rename(&tmp_path, dir.join(file_name))?;
        File::open(dir)?.sync_all()?;
        Ok(written)
    })();
    if result.is_err() {
        // After a successful rename this finds nothing, which is fine.
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

#[cfg(test)]
mod aligned_writes_tests {
    use super::{AlignedWrites, LARGE_WRITE};
    use std::io::Write;

    /// Records each write it is given.
    #[derive(Default)]
    struct Recorder {
        writes: Vec<usize>,
        bytes: Vec<u8>,
    }

    impl Write for Recorder {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.writes.push(bytes.len());
            self.bytes.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_write_but_the_last_is_one_whole_large_write() {
        let mut recorder = Recorder::default();
        let mut expected = Vec::new();
        {
            let mut out = AlignedWrites::new(&mut recorder);
            // Pieces of uneven sizes, as the data stream hands them on.
            for i in 0..200usize {
                let piece = vec![(i % 251) as u8; 4096 + i * 613];
                out.write_all(&piece).unwrap();
                expected.extend_from_slice(&piece);
            }
            out.flush().unwrap();
        }
        assert_eq!(recorder.bytes, expected);
        let (last, whole) = recorder.writes.split_last().unwrap();
        assert!(whole.len() >= 2, "{:?}", recorder.writes);
        assert!(whole.iter().all(|&n| n == LARGE_WRITE), "{whole:?}");
        assert!(*last <= LARGE_WRITE);
    }
}

//! Building a cache file: validation, encoding, atomic installation.

use super::format::*;
use super::{clean, CacheContent, CacheError, UnixGroup, UnixUser, MAX_NAME_LEN};
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

fn check_group(g: &UnixGroup) -> Result<(), CacheError> {
    check_name("group", &g.name)?;
    if reserved_id(g.gid) {
        return Err(CacheError::Invalid(format!(
            "group {:?} has the reserved gid {}",
            g.name, g.gid
        )));
    }
    let mut seen = HashSet::new();
    for m in &g.members {
        check_name("member", m)?;
        if !seen.insert(m.as_str()) {
            return Err(CacheError::Invalid(format!(
                "group {:?} lists member {m:?} twice",
                g.name
            )));
        }
    }
    Ok(())
}

/// Checks every rule [`encode`] enforces, without encoding.
pub(crate) fn validate(content: &CacheContent) -> Result<(), CacheError> {
    check_field("source", "cache", &content.source)?;
    let mut names = HashSet::new();
    let mut ids = HashSet::new();
    for u in &content.users {
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
    for g in &content.groups {
        check_group(g)?;
        if !group_names.insert(g.name.as_str()) {
            return Err(CacheError::Invalid(format!(
                "duplicate group name {:?}",
                g.name
            )));
        }
        if !gids.insert(g.gid) {
            return Err(CacheError::Invalid(format!("duplicate gid {}", g.gid)));
        }
    }
    for (user, list) in &content.user_groups {
        if !names.contains(user.as_str()) {
            return Err(CacheError::Invalid(format!(
                "group list for unknown user {user:?}"
            )));
        }
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
    }
    for (user, keys) in &content.user_keys {
        if !names.contains(user.as_str()) {
            return Err(CacheError::Invalid(format!(
                "keys for unknown user {user:?}"
            )));
        }
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
/// `(slot hash, stored key)` for the record at its position; returns the
/// slots `(stored key, record index + 1)` and the longest probe distance.
fn build_hash_table(entries: &[(u32, u32)]) -> Result<(Vec<u8>, usize), CacheError> {
    let slots = entries
        .len()
        .checked_mul(2)
        .and_then(|n| n.max(8).checked_next_power_of_two())
        .ok_or_else(too_large)?;
    let mask = slots - 1;
    let mut table: Vec<(u32, u32)> = vec![(0, 0); slots];
    let mut longest = 0;
    for (index, &(h, key)) in entries.iter().enumerate() {
        let mut slot = h as usize & mask;
        let mut distance = 0;
        loop {
            let entry = table.get_mut(slot).ok_or_else(too_large)?;
            if entry.1 == 0 {
                *entry = (key, to_u32(index)?.checked_add(1).ok_or_else(too_large)?);
                break;
            }
            slot = (slot + 1) & mask;
            distance += 1;
        }
        longest = longest.max(distance);
    }
    let mut out = Vec::with_capacity(slots * HASH_SLOT_LEN);
    for (h, i) in table {
        put_u32(&mut out, h);
        put_u32(&mut out, i);
    }
    Ok((out, longest))
}

/// The four index tables of a file and the seed they were built with.
struct Indexes {
    seed: u32,
    user_names: Vec<u8>,
    user_ids: Vec<u8>,
    group_names: Vec<u8>,
    group_ids: Vec<u8>,
}

/// Hash tables for both name sets and both id sets, re-seeding while a
/// probe chain is long.
fn hash_tables(content: &CacheContent) -> Result<Indexes, CacheError> {
    let random = std::collections::hash_map::RandomState::new();
    let mut best: Option<(usize, Indexes)> = None;
    for attempt in 0..SEED_ATTEMPTS {
        let mut hasher = random.build_hasher();
        hasher.write_usize(attempt);
        let seed = hasher.finish() as u32;
        let by_name = |name: &str| {
            let h = name_hash(seed, name.as_bytes());
            (h, h)
        };
        let by_id = |id: u32| (id_hash(seed, id), id);
        let tables = [
            content
                .users
                .iter()
                .map(|u| by_name(&u.name))
                .collect::<Vec<_>>(),
            content.users.iter().map(|u| by_id(u.uid)).collect(),
            content.groups.iter().map(|g| by_name(&g.name)).collect(),
            content.groups.iter().map(|g| by_id(g.gid)).collect(),
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

/// Validates `content` and encodes it as a version 4 cache file with
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
pub(crate) fn encode_unchecked(
    content: &CacheContent,
    block_size: u32,
) -> Result<Vec<u8>, CacheError> {
    let mut pool = Pool::default();
    let source = pool.add(&content.source)?;

    let mut gids = Vec::new();
    let mut users = Vec::with_capacity(content.users.len() * USER_RECORD_LEN);
    for u in &content.users {
        let list = content
            .user_groups
            .get(&u.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let first = to_u32(gids.len() / GID_LEN)?;
        for &gid in list {
            put_u32(&mut gids, gid);
        }
        put_ref(&mut users, pool.add(&u.name)?);
        put_u32(&mut users, u.uid);
        put_u32(&mut users, u.gid);
        put_ref(&mut users, pool.add(&u.gecos)?);
        put_ref(&mut users, pool.add(&u.home)?);
        put_ref(&mut users, pool.add(&u.shell)?);
        put_u32(&mut users, if u.locked { USER_FLAG_LOCKED } else { 0 });
        put_u32(&mut users, first);
        put_u32(&mut users, to_u32(list.len())?);
        put_u32(&mut users, 0);
    }

    // Each group's member names ready to copy into a caller's buffer:
    // `name NUL` one after the other, not references into the pool.
    let mut members = Vec::new();
    let mut groups = Vec::with_capacity(content.groups.len() * GROUP_RECORD_LEN);
    for g in &content.groups {
        let first = to_u32(members.len())?;
        for m in &g.members {
            members.extend_from_slice(m.as_bytes());
            members.push(0);
        }
        put_ref(&mut groups, pool.add(&g.name)?);
        put_u32(&mut groups, g.gid);
        put_u32(&mut groups, first);
        put_u32(&mut groups, to_u32(g.members.len())?);
        put_u32(&mut groups, to_u32(members.len())? - first);
    }

    // Keys go last in the string pool, so that the strings passwd and group
    // lookups read lie exactly as in a file without keys.
    let mut keys = Vec::new();
    let mut user_keys = Vec::with_capacity(content.users.len() * KEY_RANGE_LEN);
    for u in &content.users {
        let own = content
            .user_keys
            .get(&u.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        put_u32(&mut user_keys, to_u32(keys.len() / STR_REF_LEN)?);
        put_u32(&mut user_keys, to_u32(own.len())?);
        for key in own {
            put_ref(&mut keys, pool.add(key)?);
        }
    }

    let Indexes {
        seed,
        user_names,
        user_ids,
        group_names,
        group_ids,
    } = hash_tables(content)?;

    let sections: [&[u8]; KNOWN_SECTIONS] = [
        &pool.bytes,
        &users,
        &user_names,
        &user_ids,
        &groups,
        &group_names,
        &group_ids,
        &members,
        &gids,
        &user_keys,
        &keys,
    ];
    // Sections are laid out relative to the start of the data area first:
    // its size gives the block count, which gives the header length, which
    // gives where the data area starts (the next block boundary, so that a
    // block is a page and checking it touches nothing else).
    let mut relative = Vec::with_capacity(KNOWN_SECTIONS);
    let mut data_len = 0usize;
    for s in sections {
        data_len = data_len.next_multiple_of(8);
        relative.push((data_len, s.len()));
        data_len = data_len.checked_add(s.len()).ok_or_else(too_large)?;
    }
    let block_len = block_size as usize;
    let block_count = data_len.div_ceil(block_len);
    let header_len = block_count
        .checked_mul(BLOCK_CRC_LEN)
        .and_then(|n| n.checked_add(HEADER_FIXED_LEN + KNOWN_SECTIONS * SECTION_ENTRY_LEN))
        .ok_or_else(too_large)?;
    let data_start = header_len
        .checked_next_multiple_of(block_len)
        .ok_or_else(too_large)?;
    let file_len = data_start.checked_add(data_len).ok_or_else(too_large)?;
    to_u32(file_len)?;

    let mut out = Vec::with_capacity(file_len);
    out.extend_from_slice(&MAGIC);
    put_u32(&mut out, 0); // header CRC, filled in last
    put_u32(&mut out, super::FORMAT_VERSION);
    put_u32(&mut out, to_u32(header_len)?);
    put_u32(&mut out, to_u32(KNOWN_SECTIONS)?);
    out.extend_from_slice(&(file_len as u64).to_le_bytes());
    out.extend_from_slice(&content.generated_at.to_le_bytes());
    put_u32(&mut out, seed);
    put_u32(&mut out, to_u32(content.users.len())?);
    put_u32(&mut out, to_u32(content.groups.len())?);
    put_ref(&mut out, source);
    put_u32(&mut out, 0); // replaced mark: not replaced
    put_u32(&mut out, block_size);
    put_u32(&mut out, to_u32(block_count)?);
    debug_assert_eq!(out.len(), HEADER_FIXED_LEN);
    for (offset, len) in relative {
        put_u32(&mut out, to_u32(data_start + offset)?);
        put_u32(&mut out, to_u32(len)?);
    }
    let crc_table = out.len();
    out.resize(header_len, 0); // block CRCs, filled in below
    out.resize(data_start, 0);
    for s in sections {
        out.resize(out.len().next_multiple_of(8), 0);
        out.extend_from_slice(s);
    }
    debug_assert_eq!(out.len(), file_len);

    let crcs: Vec<u32> = out
        .get(data_start..)
        .unwrap_or_default()
        .chunks(block_len)
        .map(crc32fast::hash)
        .collect();
    debug_assert_eq!(crcs.len(), block_count);
    for (i, crc) in crcs.into_iter().enumerate() {
        let at = crc_table + i * BLOCK_CRC_LEN;
        if let Some(field) = out.get_mut(at..at + BLOCK_CRC_LEN) {
            field.copy_from_slice(&crc.to_le_bytes());
        }
    }
    let crc = header_crc(&out, data_start).ok_or_else(too_large)?;
    if let Some(field) = out.get_mut(H_CRC..H_CRC + 4) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
    Ok(out)
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
    if head.get(..MAGIC.len()) != Some(&MAGIC[..])
        || read_u32(&head, H_VERSION) != Some(super::FORMAT_VERSION)
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
    if file_name.is_empty() || file_name.contains('/') || file_name == "." || file_name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid cache file name {file_name:?}"),
        ));
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
        file.write_all(bytes)?;
        file.sync_all()?;
        // Before the rename, so that no reader can see the new file while
        // the old one is still unmarked: a writer killed after the mark
        // and before the rename leaves the old file in place, marked,
        // which readers only take as a reason to look at the path again.
        // A mark that cannot be written does not stop the refresh: readers
        // then notice the new file at their next periodic look.
        let _ = mark_replaced(dir, file_name);
        fs::rename(&tmp_path, dir.join(file_name))?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // After a successful rename this finds nothing, which is fine.
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

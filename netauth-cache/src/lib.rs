//! The on-disk cache that the NSS module answers from.
//!
//! The refresh (`netauth-unix refresh`) maps the NetAuth directory into a
//! [`CacheSource`] (a [`CacheContent`] is one; the refresh's own holds
//! member and gid lists by user index) and streams it with
//! [`encode_to_file`] into the temporary file of [`write_atomic_with`],
//! which installs it at [`CACHE_PATH`]; [`encode`] gives the same bytes in
//! memory and [`write_atomic`] installs them. `libnss_netauth.so.2` maps that file
//! and answers `getpwnam`, `getgrgid`, `initgroups` and friends through a
//! [`CacheView`], without a network call and without parsing the whole file.
//!
//! # Why the format is what it is
//!
//! * **Binary with indexes, not text.** The module is loaded into every
//!   process of the host; a lookup must cost a few hundred nanoseconds even
//!   at 1,000,000 users. Hash tables over names and over ids (open
//!   addressing, linear probing, load factor at most 1/2) give a lookup in
//!   one probe whatever the size of the directory (a binary search over
//!   ids touched about twenty cache lines and pages at a million users);
//!   they are read straight out of the mapped file, so a process pays
//!   nothing for entries it never asks about and the page cache is shared
//!   by all processes.
//! * **One file, replaced by `rename`.** A reader that opened the old file
//!   keeps a consistent snapshot; its next lookup notices the new file and
//!   maps it. There is never a mix of two versions and a crash of the writer
//!   leaves the previous file in place ([`write_atomic`]). Readers depend on
//!   the file never being modified in place (a truncation under a live
//!   mapping would fault), which is why only [`write_atomic`] writes it.
//! * **A replaced mark, so that noticing costs no system call.** Just
//!   before it renames a new file over the old one, [`write_atomic`] sets
//!   the old file's replaced mark ([`mark_replaced`]): 4 bytes of its
//!   header at [`REPLACED_MARK_OFFSET`], the one write a cache file ever
//!   gets in place, outside every checksum (the header CRC counts them as
//!   zero), to a regular file of this format only, never through a link.
//!   Every process that maps the old file shares the page, so its next
//!   lookup reads the mark (a volatile read of the mapping) and only then
//!   `stat`s the path and maps the new file: a warm lookup makes no system
//!   call at all (SSSD's memory cache does the same). The mark comes
//!   before the rename, so no reader can see the new file while the old one
//!   looks current; a writer killed between the two leaves the old file at
//!   the path, marked, which readers take only as a reason to `stat` the
//!   path (they find the same file and keep it). A file replaced without
//!   the mark (by another tool, or because the mark could not be written)
//!   and a change of the file's owner or mode are noticed by the `stat`
//!   each reader makes at most once a second anyway.
//! * **Checked before trusted, block by block.** Every data block of
//!   256 bytes ([`BLOCK_SIZE`]) has a CRC-32 in a table after the data
//!   area; every block of that table (a page: 1,024 CRCs) has a CRC-32 in
//!   the header, which carries a magic, a version,
//!   the file length and a CRC-32 of its own over all of it. When the
//!   module maps a file it checks only the header (magic, version, length,
//!   header CRC, every section bound), which stays within one page up to
//!   about 250 MB of data: a truncated, foreign or otherwise
//!   damaged header refuses the file as a whole (`UNAVAIL`). A data block
//!   is checked the first time a lookup reads any byte of it (and the
//!   block of the CRC table holding its CRC, the first time that is
//!   needed), and remembered as checked by the mapping ([`LazyCheck`]: a
//!   list of the first 64, then bitsets): a fresh process pays for the two
//!   or three blocks its lookup touches (a hash slot and a record) instead
//!   of the whole file, which at 100,000 users is 20 MB of CRC and page faults,
//!   and the check at map time does not grow with the directory (with
//!   every block's CRC in the header, it was 218 KB at a million users).
//!   These checks compute the CRC by table: crc32fast's vector code first
//!   detects the CPU, a series of `cpuid`s that in a virtual machine cost
//!   more than a lookup's checks; a check of the whole file (before an
//!   enumeration, or by a tool) uses crc32fast. Every read of the data area goes through one accessor
//!   that does this, so no lookup can use an unchecked byte. A damaged
//!   block makes the lookups that read it fail
//!   ([`CacheError::DamagedBlock`]; the module answers `UNAVAIL`) and
//!   leaves the others, which never read it, answering correctly; an
//!   enumeration checks all blocks first, so it never stops half-way.
//!   [`CacheView::parse`] (tools, PAM's offline check) checks every block
//!   at once. Every offset and length is also checked when a lookup
//!   follows it (checked arithmetic, no indexing), and every index hit is
//!   verified against the record it points to, so even a crafted file with
//!   correct checksums can give an error but never a wrong entry, a panic
//!   or an out-of-bounds read. Nor a hostile one: every entry is checked
//!   against the writer's rules before it is returned (no `:`, newline,
//!   NUL, other control byte, or in a name `,` or space; no uid, gid or
//!   supplementary gid 0 or -1). An entry that breaks them is refused
//!   ([`CacheError::UnsafeEntry`]): lookups of it fail (the module answers
//!   `UNAVAIL`), lookups of other entries are unaffected, and an
//!   enumeration skips it. The check is a scan of the entry's few short
//!   strings, without allocation. A group's member list is checked as a
//!   whole in one pass before any of it is used.
//! * **Little-endian, 32-bit offsets, records in one piece.** Records are
//!   read with `from_le_bytes` from unaligned positions, so the file needs
//!   no alignment guarantees; 32-bit offsets bound the file to 4 GiB, far
//!   above any directory. A user's record holds its name, gecos, home,
//!   shell and supplementary gids right after its fixed head, and a
//!   group's its name and member names: a lookup reads a hash slot and
//!   then one piece of the file, two cache misses and two pages, where
//!   references into a string pool and a gid array cost five (version 4).
//!   Shells and home prefixes repeat in every record instead of once in a
//!   pool; at 100,000 users that costs about as much as the references
//!   did. An index of record offsets in enumeration order serves
//!   `getpwent` and `getgrent`.
//! * **Member lists ready to copy.** Each group's member names are stored
//!   together, each followed by its NUL, exactly as they are laid out in
//!   the caller's buffer, so a group lookup or enumeration copies one
//!   range instead of following a reference per member to another part of
//!   the file (a cache miss each: a department of 2,500 members was 2,500
//!   of them). Strings are stored without terminators otherwise; the
//!   module adds the NUL in the caller's buffer.
//! * **A seeded hash.** Names are hashed with FNV-1a (simple, stable, no
//!   dependency) started from a per-file random seed and finished with the
//!   MurmurHash3 mixer so the low bits used as the slot are well spread. The
//!   seed keeps names chosen in the directory from being crafted into one
//!   long probe chain; the writer also re-seeds if a chain gets long.
//! * **Versioned.** A reader refuses any other [`FORMAT_VERSION`]; extra
//!   sections after the known ones are ignored, so a later writer can add
//!   data without breaking this reader.
//!
//! # Layout (version 5)
//!
//! ```text
//! header (72 bytes, all integers little-endian)
//!   0  magic "NAUTHNSS"          8  header crc32 of bytes [12, data_start)
//!  12  version u32 (5)          16  header_len u32
//!                                   (72 + 8 * section_count + 4 * table_blocks)
//!  20  section_count u32 (>= 10) 24 file_len u64
//!  32  generated_at i64 (unix)  40  hash_seed u32
//!  44  user_count u32           48  group_count u32
//!  52  source: offset u32, length u32 into STRINGS
//!  60  replaced mark u32: 0 as written, 1 once the writer has put another
//!      file at the path; counted as 0 by the header CRC
//!  64  block_size u32 (a power of two, 64 to 1 MiB; 256 as written)
//!  68  block_count u32: data blocks, ceil(data length / block_size)
//! section table: section_count x (offset u32, length u32), absolute
//!   offsets, every section inside the data area
//!   0 STRINGS      string pool: the source, then the keys
//!   1 USERS        user records, one after the other: uid u32, gid u32,
//!                  flags u32 (bit 0 = locked), gid count u32, first key
//!                  u32, key count u32, lengths u16 of name, gecos, home,
//!                  shell (32 bytes), then those four strings, then the
//!                  supplementary gids (u32 each)
//!   2 USER_INDEX   user_count x u32: each record's offset in USERS, in
//!                  enumeration order
//!   3 USER_NAMES   hash slots (name hash u32, record offset + 1 or 0 =
//!                  empty), a power of two, more slots than users; the
//!                  first slot probed is the hash's low bits
//!   4 USER_IDS     hash slots (uid u32, record offset + 1 or 0 = empty)
//!                  as for names, the first slot probed by the id hash
//!   5 GROUPS       group records: gid u32, member count u32, member
//!                  list length u32, name length u16, 2 zero bytes (16
//!                  bytes), then the name, then each member name's length
//!                  (u8), then the member names, each followed by a NUL
//!   6 GROUP_INDEX  group_count x u32, as USER_INDEX
//!   7 GROUP_NAMES  hash slots as for users
//!   8 GROUP_IDS    hash slots (gid u32, record offset + 1) as for uids
//!   9 KEYS         string refs, one per public key, each `TYPE:KEY` as
//!                  NetAuth stores it (`EntityMeta.Keys`); a user's are
//!                  the range its record names
//! table CRCs: table_blocks x crc32 u32 (in the header, after the section
//!   table), one per block of the CRC table
//! zero padding up to data_start = header_len rounded up to block_size
//! data area: the sections, each at a multiple of 8, zero-padded to
//!   block_count blocks
//! CRC table: block_count x crc32 u32, block i covering
//!   [data_start + i * block_size, data_start + (i + 1) * block_size),
//!   zero-padded to table_blocks blocks of table_block = max(4096,
//!   block_size) bytes: table_blocks = ceil(4 * block_count /
//!   table_block); file_len = data_start + block_count * block_size +
//!   table_blocks * table_block
//! ```
//!
//! The id hash is the MurmurHash3 finaliser of the id mixed with the
//! file's seed (so that ids chosen in the directory cannot be crafted into
//! a long chain either).
//!
//! The keys live in a section of their own, beside the user records rather
//! than in them: a passwd or group lookup never reads them, and only
//! `netauth-unix ssh-keys` reads KEYS and the key strings
//! ([`CacheView::user_keys`]). A key holds no control byte (so no NUL and
//! no newline: `ssh-keys` prints one per line) and its TYPE is printable
//! ASCII without space; the writer refuses anything else and the reader
//! refuses a key that breaks the rule.
//!
//! Versions 1 (one CRC over the whole file), 2 (no keys), 3 (sorted id
//! arrays, member references, no replaced mark) and 4 (strings in a pool,
//! every block's CRC in the header) are refused as unsupported: the module
//! answers `UNAVAIL` until the next refresh writes version 5 (the packages
//! start a refresh on upgrade). A process still running an older module
//! (loaded before the upgrade) refuses a version 5 file the same way until
//! it is restarted; the writer sets the replaced mark of a version 4 file
//! too (at the same offset), so such a process notices the new file at
//! its next lookup.
//!
//! A string ref is `(offset, length)` relative to the start of STRINGS.

pub mod clean;
#[doc(hidden)]
pub mod crafting;
mod format;
mod reader;
pub mod trusted;
mod writer;

pub use reader::{CacheView, Gids, GroupRecord, Keys, LazyCheck, Members, UserRecord};
pub use writer::{
    encode, encode_to_file, encode_with_block_size, mark_replaced, refuse_unknown_users,
    temp_file_prefix, write_atomic, write_atomic_with, CacheSource, WriteError,
};

use std::collections::BTreeMap;

/// The folder the refresh writes to by default.
pub const CACHE_DIR: &str = "/var/lib/netauth";
/// The cache's file name inside [`CACHE_DIR`].
pub const CACHE_FILE_NAME: &str = "nss.cache";
/// The fixed path the NSS module reads. Nothing may redirect it: a setuid
/// program would trust whatever it points to.
pub const CACHE_PATH: &str = "/var/lib/netauth/nss.cache";
/// The only format version this code reads and writes (5: records in one
/// piece with their strings and gids, per-block checksums whose table is
/// itself checked block by block, users' public keys, hashed id indexes,
/// the replaced mark).
pub const FORMAT_VERSION: u32 = 5;
/// Where the replaced mark lies in a cache file: a little-endian u32, 0 as
/// written, non-zero once [`write_atomic`] has put another file at the path
/// (see [`mark_replaced`]). A process that maps the file reads it (with a
/// volatile read: it is the one word that may change under a mapping) to
/// learn, without a system call, that it should map the path again.
pub const REPLACED_MARK_OFFSET: usize = format::H_REPLACED;
/// The size of the blocks [`encode`] checksums one by one: the first lookup
/// to touch a block checks 256 bytes (four cache lines), not a page.
pub const BLOCK_SIZE: u32 = 256;
/// Longest user or group name the writer accepts (glibc's LOGIN_NAME_MAX
/// minus the terminator).
pub const MAX_NAME_LEN: usize = 255;

/// A passwd entry as the cache stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub home: String,
    pub shell: String,
    /// The entity is locked in NetAuth. NSS still resolves it (files keep
    /// their owner's name); PAM refuses it.
    pub locked: bool,
}

/// A group entry as the cache stores it; `members` are the effective
/// members (after INCLUDE/EXCLUDE expansion), by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixGroup {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Everything one cache file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheContent {
    /// Users in enumeration order (`getpwent`).
    pub users: Vec<UnixUser>,
    /// Groups in enumeration order (`getgrent`).
    pub groups: Vec<UnixGroup>,
    /// Per user name, the gids `initgroups` adds for that user (its
    /// effective groups; the primary gid may be listed, the module skips the
    /// one glibc passes). A user missing here has an empty list.
    pub user_groups: BTreeMap<String, Vec<u32>>,
    /// Per user name, the user's public keys, each `TYPE:KEY` as NetAuth
    /// stores them (`EntityMeta.Keys`), in order. A user missing here has
    /// none. See [`clean::check_key`] for what a key may hold.
    pub user_keys: BTreeMap<String, Vec<String>>,
    /// When the data was fetched, in seconds since the Unix epoch.
    pub generated_at: i64,
    /// Which server the data came from (for `netauth-unix status`).
    pub source: String,
}

/// Why a cache could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The content breaks a rule of the writer (duplicate, hostile string,
    /// reserved id, too large). The message names the offending entry.
    #[error("invalid cache content: {0}")]
    Invalid(String),
    /// Not a cache file at all (wrong magic).
    #[error("not a netauth cache file (bad magic)")]
    BadMagic,
    /// A cache file of a version this code does not read.
    #[error("unsupported cache format version {0}")]
    UnsupportedVersion(u32),
    /// The file is shorter or longer than its header says (a cut-off copy).
    #[error("cache length mismatch: header says {expected} bytes, file has {actual}")]
    LengthMismatch { expected: u64, actual: u64 },
    /// The header checksum does not match: the file was damaged.
    #[error("cache header checksum mismatch")]
    ChecksumMismatch,
    /// A data block's checksum does not match: that part of the file was
    /// damaged. Lookups that read the block fail; others are unaffected.
    #[error("cache checksum mismatch in block {block}")]
    DamagedBlock { block: usize },
    /// A structural rule is broken (an offset out of bounds, an index that
    /// points to the wrong record). The message names what.
    #[error("corrupt cache: {0}")]
    Corrupt(&'static str),
    /// An entry holds what the writer never writes: a name or field with
    /// `:`, a newline, NUL or another byte that breaks passwd/group lines,
    /// or a uid or gid of 0 or -1. The checksums cannot catch it (a crafted
    /// file carries right ones), so the reader checks every entry it
    /// returns: lookups of that entry fail, others are unaffected, and an
    /// enumeration skips it.
    #[error("cache entry refused: {0} (a crafted file?)")]
    UnsafeEntry(&'static str),
}

#[cfg(test)]
mod tests;

//! Reading a cache file in place, every offset checked, every byte
//! checksummed before it is used.
//!
//! All reads of the data area go through one accessor,
//! [`Checked::in_section`]: it bounds-checks the range inside its section
//! and, for a lazily checked file, verifies the CRC of every block the
//! range touches that was not verified yet. Nothing else in this file reads
//! a [`Section`]'s bytes, so no lookup can use a byte whose block was not
//! verified.

use super::format::*;
use super::{CacheContent, CacheError, UnixGroup, UnixUser, FORMAT_VERSION};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Where the parts of one file lie, read from its checked header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    len: usize,
    sections: [Span; KNOWN_SECTIONS],
    user_count: usize,
    group_count: usize,
    hash_seed: u32,
    generated_at: i64,
    source: (u32, u32),
    /// Offset of the CRC table: one CRC per data block, right after the
    /// last data block.
    crc_table: usize,
    /// Offset of the CRCs of the CRC table's blocks (inside the header).
    level_one: usize,
    /// Offset of block 0; everything before is the header and its padding.
    data_start: usize,
    block_shift: u32,
    /// Data blocks (the CRC table's blocks not counted).
    block_count: usize,
    /// Blocks of the CRC table.
    crc_blocks: usize,
    /// log2 of the length of a block of the CRC table.
    table_shift: u32,
}

/// `(offset, length)` of a section, absolute, inside the data area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Span {
    off: usize,
    len: usize,
}

/// The bytes of one section, and where they start in the data area. Read
/// only through [`Checked::in_section`].
#[derive(Clone, Copy, Default)]
struct Section<'a> {
    bytes: &'a [u8],
    /// Offset of `bytes[0]` from the start of the data area.
    from_data_start: usize,
}

/// The one way to read bytes of the data area.
#[derive(Clone, Copy)]
struct Checked<'a> {
    file: &'a [u8],
    /// Offset of block 0 (the end of the checked header).
    data_start: usize,
    block_shift: u32,
    crc_table: usize,
    level_one: usize,
    /// log2 of the length of a block of the CRC table.
    table_shift: u32,
    /// The verified blocks; `None` when every block was verified up front
    /// ([`CacheView::parse`]).
    verified: Option<&'a Verified>,
}

/// The verified blocks of one mapping, shared by all the threads that use
/// it: the first few in a short list, then one bit per block.
///
/// Memory order: a mark (or `complete`) only certifies bytes that never
/// change while the file is mapped (the cache is replaced by rename, never
/// written in place); setting it publishes no data written by the verifying
/// thread. So `Relaxed` is enough: a thread that does not see a mark yet
/// verifies the block itself (the same answer, a little extra work), one
/// that sees it reads the same immutable bytes the verifier read.
struct Verified {
    /// The first blocks verified, each plus one (0: free), filled in
    /// order. A process's first lookups check a handful of blocks: the
    /// list spares them the bitset, which at 100,000 users is 10 KB that
    /// calloc clears, three page faults in every process's first lookup.
    early: [AtomicU32; EARLY_BLOCKS],
    /// One bit per block, made once `early` is full, holding its blocks.
    bits: OnceLock<Box<[AtomicU64]>>,
    /// One bit per block of the CRC table, set once its CRC in the header
    /// matched: a data block's CRC is trusted only then.
    table_bits: Box<[AtomicU64]>,
    block_count: usize,
    /// Blocks verified so far (each counted once, by the thread that
    /// recorded it).
    count: AtomicUsize,
    /// Every block is verified: views made from now on skip the marks.
    complete: AtomicBool,
    /// First block found damaged, plus one (0: none so far), for the log.
    damaged: AtomicUsize,
}

/// How many verified blocks a mapping lists before it makes its bitset:
/// the blocks of a dozen lookups or so, in 256 bytes.
const EARLY_BLOCKS: usize = 64;

/// Bitsets longer than this (32 KiB) are allocated [`BITSET_MAPPED_WORDS`]
/// long at least.
const BITSET_MAPPED_FROM_WORDS: usize = 4096;
/// 128 KiB and a page, in words: above glibc's default mmap threshold.
const BITSET_MAPPED_WORDS: usize = (128 * 1024 + 4096) / 8;

/// A zeroed bitset of `n` bits. A large one is asked for at least glibc's
/// default mmap threshold (128 KiB) long, so that it is a fresh mapping of
/// zero pages, each faulted in only when a block of its range is first
/// verified, instead of heap memory calloc clears (at a million users,
/// 105 KB cleared and 27 page faults). The extra length is never touched.
fn zeroed_bitset(n: usize) -> Box<[AtomicU64]> {
    let words = n.div_ceil(64);
    let words = if words > BITSET_MAPPED_FROM_WORDS {
        words.max(BITSET_MAPPED_WORDS)
    } else {
        words
    };
    bytemuck::allocation::zeroed_slice_box::<AtomicU64>(words)
}

/// Sets bit `index` of `bits`; whether it was clear (`false` when out of
/// range).
fn set_bit(bits: &[AtomicU64], index: usize) -> bool {
    let bit = 1u64 << (index % 64);
    bits.get(index / 64)
        .is_some_and(|word| word.fetch_or(bit, Ordering::Relaxed) & bit == 0)
}

impl Verified {
    fn new(block_count: usize, crc_blocks: usize) -> Self {
        Verified {
            early: [const { AtomicU32::new(0) }; EARLY_BLOCKS],
            bits: OnceLock::new(),
            table_bits: zeroed_bitset(crc_blocks),
            block_count,
            count: AtomicUsize::new(0),
            complete: AtomicBool::new(block_count == 0),
            damaged: AtomicUsize::new(0),
        }
    }

    /// Whether `block` is in the early list (which is filled in order, so
    /// the first free entry ends it).
    fn listed(&self, block: usize) -> bool {
        let Some(mark) = early_mark(block) else {
            return false;
        };
        for entry in &self.early {
            match entry.load(Ordering::Relaxed) {
                0 => return false,
                m if m == mark => return true,
                _ => {}
            }
        }
        false
    }

    /// Whether `block` was recorded as verified.
    fn contains(&self, block: usize) -> bool {
        match self.bits.get() {
            Some(bits) => bits
                .get(block / 64)
                .is_some_and(|w| w.load(Ordering::Relaxed) & (1 << (block % 64)) != 0),
            None => self.listed(block),
        }
    }

    /// Records `block` as verified and counts it, once.
    fn record(&self, block: usize) {
        if self.record_new(block)
            && self.count.fetch_add(1, Ordering::Relaxed) + 1 == self.block_count
        {
            self.complete.store(true, Ordering::Relaxed);
        }
    }

    /// Records `block`; whether no thread had recorded it before. The
    /// early list's entries are claimed lowest first and never change
    /// again, so two threads recording one block both meet the entry the
    /// first of them claimed: a block is listed once. Only a thread that
    /// found the list full makes the bitset, with every listed block set,
    /// and no block is listed after that.
    fn record_new(&self, block: usize) -> bool {
        if self.bits.get().is_none() {
            let Some(mark) = early_mark(block) else {
                return false;
            };
            for entry in &self.early {
                match entry.compare_exchange(0, mark, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return true,
                    Err(m) if m == mark => return false,
                    Err(_) => {}
                }
            }
        }
        let bits = self.bits.get_or_init(|| {
            let bits = zeroed_bitset(self.block_count);
            for entry in &self.early {
                if let Some(listed) = entry.load(Ordering::Relaxed).checked_sub(1) {
                    set_bit(&bits, u32_to_usize(listed));
                }
            }
            bits
        });
        set_bit(bits, block)
    }
}

/// Block `block`'s entry in the early list: the block plus one (`None`
/// past the header's u32 block count, which no verified block is).
fn early_mark(block: usize) -> Option<u32> {
    u32::try_from(block).ok()?.checked_add(1)
}

/// Why a read of the data area failed. Small and `Copy`, so the hot path
/// passes it in registers; callers turn it into a [`CacheError`] naming
/// what they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    OutOfBounds,
    /// The block's CRC does not match.
    Damaged(u32),
    /// The entry holds what the writer never writes.
    Unsafe(Refusal),
}

/// What an entry holds that the writer never writes. A field-less code, so
/// that [`Fault`] stays small enough to travel in registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    UserName,
    UserField,
    UserId,
    SupplementaryGid,
    GroupName,
    GroupId,
    MemberName,
    Key,
}

impl Refusal {
    fn describe(self) -> &'static str {
        match self {
            Refusal::UserName => "user name holds a byte the writer never writes",
            Refusal::UserField => "user gecos, home or shell holds a byte the writer never writes",
            Refusal::UserId => "user with uid or gid 0 or -1",
            Refusal::SupplementaryGid => "user with supplementary gid 0 or -1",
            Refusal::GroupName => "group name holds a byte the writer never writes",
            Refusal::GroupId => "group with gid 0 or -1",
            Refusal::MemberName => "member name holds a byte the writer never writes",
            Refusal::Key => "a key holds what the writer never writes",
        }
    }
}

impl Fault {
    #[cold]
    fn error(self, what: &'static str) -> CacheError {
        match self {
            Fault::OutOfBounds => CacheError::Corrupt(what),
            Fault::Damaged(block) => CacheError::DamagedBlock {
                block: u32_to_usize(block),
            },
            Fault::Unsafe(refusal) => CacheError::UnsafeEntry(refusal.describe()),
        }
    }
}

impl<'a> Checked<'a> {
    #[inline(always)]
    fn ensure_verified(&self, verified: &Verified, block: usize, way: CrcWay) -> Result<(), Fault> {
        // The bitset's bit, or the slow path (which reads the early list
        // while there is no bitset): a warm lookup pays only the check that
        // the bitset exists.
        if let Some(bits) = verified.bits.get() {
            let word = bits.get(block / 64).ok_or(Fault::OutOfBounds)?;
            if word.load(Ordering::Relaxed) & (1u64 << (block % 64)) != 0 {
                return Ok(());
            }
        }
        self.verify_block(verified, block, way)
    }

    /// The slow path of [`ensure_verified`](Self::ensure_verified): looks
    /// the block up in the early list (or in a bitset made since), else
    /// checks it and records the outcome.
    #[cold]
    #[inline(never)]
    fn verify_block(&self, verified: &Verified, block: usize, way: CrcWay) -> Result<(), Fault> {
        if verified.contains(block) {
            return Ok(());
        }
        if let Err(e) = self
            .ensure_table_verified(verified, block, way)
            .and_then(|()| self.check_block(block, way))
        {
            let _ = verified.damaged.compare_exchange(
                0,
                block.saturating_add(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            return Err(e);
        }
        verified.record(block);
        Ok(())
    }

    /// Makes sure the block of the CRC table that holds block `block`'s
    /// CRC matches its own CRC in the (checked) header, once per mapping.
    fn ensure_table_verified(
        &self,
        verified: &Verified,
        block: usize,
        way: CrcWay,
    ) -> Result<(), Fault> {
        let table_block =
            block.checked_mul(BLOCK_CRC_LEN).ok_or(Fault::OutOfBounds)? >> self.table_shift;
        let word = verified
            .table_bits
            .get(table_block / 64)
            .ok_or(Fault::OutOfBounds)?;
        let bit = 1u64 << (table_block % 64);
        if word.load(Ordering::Relaxed) & bit != 0 {
            return Ok(());
        }
        self.check_table_block(table_block, way)
            .map_err(|e| match e {
                // The CRC that vouches for this block cannot be trusted.
                Fault::Damaged(_) => {
                    u32::try_from(block).map_or(Fault::OutOfBounds, Fault::Damaged)
                }
                other => other,
            })?;
        word.fetch_or(bit, Ordering::Relaxed);
        Ok(())
    }

    /// Compares block `table_block` of the CRC table with its CRC in the
    /// header.
    fn check_table_block(&self, table_block: usize, way: CrcWay) -> Result<(), Fault> {
        self.compare_crc(
            way,
            table_block,
            self.crc_table,
            self.table_shift,
            self.file.len(),
            self.level_one,
        )
    }

    /// Compares block `block` with its CRC in the CRC table, which the
    /// caller has verified.
    fn check_block(&self, block: usize, way: CrcWay) -> Result<(), Fault> {
        self.compare_crc(
            way,
            block,
            self.data_start,
            self.block_shift,
            self.crc_table,
            self.crc_table,
        )
    }

    /// Compares block `index` of the blocks of `1 << shift` bytes from
    /// `first` (all of them before `limit`) with the CRC at `crcs + 4 *
    /// index`, computed `way`.
    fn compare_crc(
        &self,
        way: CrcWay,
        index: usize,
        first: usize,
        shift: u32,
        limit: usize,
        crcs: usize,
    ) -> Result<(), Fault> {
        let start = index
            .checked_shl(shift)
            .and_then(|rel| rel.checked_add(first))
            .ok_or(Fault::OutOfBounds)?;
        let end = start
            .checked_add(1 << shift)
            .filter(|&end| end <= limit)
            .ok_or(Fault::OutOfBounds)?;
        let bytes = self.file.get(start..end).ok_or(Fault::OutOfBounds)?;
        let stored = index
            .checked_mul(BLOCK_CRC_LEN)
            .and_then(|at| at.checked_add(crcs))
            .and_then(|at| read_u32(self.file, at))
            .ok_or(Fault::OutOfBounds)?;
        if way.checksum(bytes) != stored {
            // The header's u32 block count bounds the index.
            return Err(Fault::Damaged(
                u32::try_from(index).map_err(|_| Fault::OutOfBounds)?,
            ));
        }
        Ok(())
    }

    /// `sec.bytes[rel .. rel + len]`, once every block it touches is known
    /// to have its recorded CRC.
    #[inline(always)]
    fn in_section(&self, sec: Section<'a>, rel: usize, len: usize) -> Result<&'a [u8], Fault> {
        let end = rel.checked_add(len).ok_or(Fault::OutOfBounds)?;
        let bytes = sec.bytes.get(rel..end).ok_or(Fault::OutOfBounds)?;
        if let (Some(verified), false) = (self.verified, bytes.is_empty()) {
            // No overflow: both are offsets inside the file.
            let first = (sec.from_data_start + rel) >> self.block_shift;
            let last = (sec.from_data_start + end - 1) >> self.block_shift;
            for block in first..=last {
                self.ensure_verified(verified, block, CrcWay::Table)?;
            }
        }
        Ok(bytes)
    }

    /// Follows the string reference stored at `record[at..at + 8]` into
    /// the string pool `strings`.
    #[inline(always)]
    fn string(&self, strings: Section<'a>, record: &[u8], at: usize) -> Result<&'a [u8], Fault> {
        let off = read_u32(record, at).ok_or(Fault::OutOfBounds)?;
        let len = read_u32(record, at.saturating_add(4)).ok_or(Fault::OutOfBounds)?;
        self.in_section(strings, u32_to_usize(off), u32_to_usize(len))
    }
}

const HEADER_OOB: CacheError = CacheError::Corrupt("header out of bounds");

/// A u32 field of the header.
fn header_field(bytes: &[u8], off: usize) -> Result<u32, CacheError> {
    read_u32(bytes, off).ok_or(HEADER_OOB)
}

/// What the fixed header says about the header's own extent, checked up
/// to its CRC.
struct HeaderExtent {
    header_len: usize,
    block_size: u32,
    data_start: usize,
}

/// Where the blocks and the CRC table lie, from the checked header.
struct BlockExtent {
    block_count: usize,
    crc_blocks: usize,
    level_one: usize,
    crc_table: usize,
}

impl Layout {
    /// Checks the header: magic, version, length, header CRC (which covers
    /// the CRCs of the CRC table's blocks and the padding up to the data
    /// area), and every section bound and size. Reads only the header,
    /// never the data area nor the CRC table.
    fn read(bytes: &[u8]) -> Result<Layout, CacheError> {
        let extent = Self::read_extent(bytes)?;
        let blocks = Self::read_blocks(bytes, &extent)?;
        let field = |off| header_field(bytes, off);
        let mut sections = [Span::default(); KNOWN_SECTIONS];
        for (i, sec) in sections.iter_mut().enumerate() {
            let entry = HEADER_FIXED_LEN + i * SECTION_ENTRY_LEN;
            let off = u32_to_usize(field(entry)?);
            let len = u32_to_usize(field(entry + 4)?);
            let end = off
                .checked_add(len)
                .ok_or(CacheError::Corrupt("section out of bounds"))?;
            if off < extent.data_start || end > blocks.crc_table {
                return Err(CacheError::Corrupt("section out of bounds"));
            }
            *sec = Span { off, len };
        }
        let user_count = u32_to_usize(field(H_USER_COUNT)?);
        let group_count = u32_to_usize(field(H_GROUP_COUNT)?);
        check_section_sizes(&sections, user_count, group_count)?;
        let block_len = u32_to_usize(extent.block_size);
        Ok(Layout {
            len: bytes.len(),
            sections,
            user_count,
            group_count,
            hash_seed: field(H_HASH_SEED)?,
            generated_at: i64::from_le_bytes(
                read_u64(bytes, H_GENERATED_AT)
                    .ok_or(HEADER_OOB)?
                    .to_le_bytes(),
            ),
            source: (field(H_SOURCE)?, field(H_SOURCE + 4)?),
            crc_table: blocks.crc_table,
            level_one: blocks.level_one,
            data_start: extent.data_start,
            block_shift: extent.block_size.trailing_zeros(),
            block_count: blocks.block_count,
            crc_blocks: blocks.crc_blocks,
            table_shift: table_block_len(block_len).trailing_zeros(),
        })
    }

    /// Magic, version, length, block size and the header CRC: after this,
    /// every byte before the data area is known to be as written.
    fn read_extent(bytes: &[u8]) -> Result<HeaderExtent, CacheError> {
        if bytes.len() < HEADER_FIXED_LEN {
            return Err(if bytes.starts_with(&MAGIC) || MAGIC.starts_with(bytes) {
                CacheError::LengthMismatch {
                    expected: HEADER_FIXED_LEN as u64,
                    actual: bytes.len() as u64,
                }
            } else {
                CacheError::BadMagic
            });
        }
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(CacheError::BadMagic);
        }
        let field = |off| header_field(bytes, off);
        let version = field(H_VERSION)?;
        if version != FORMAT_VERSION {
            return Err(CacheError::UnsupportedVersion(version));
        }
        let file_len = read_u64(bytes, H_FILE_LEN).ok_or(HEADER_OOB)?;
        if file_len != bytes.len() as u64 {
            return Err(CacheError::LengthMismatch {
                expected: file_len,
                actual: bytes.len() as u64,
            });
        }
        // Enough of the header to find its end (bounds-checked before the
        // CRC is known to match, trusted only after).
        let header_len = u32_to_usize(field(H_HEADER_LEN)?);
        let block_size = field(H_BLOCK_SIZE)?;
        if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size)
        {
            return Err(CacheError::Corrupt("bad block size"));
        }
        let data_start = header_len
            .checked_next_multiple_of(u32_to_usize(block_size))
            .filter(|&start| header_len >= HEADER_FIXED_LEN && start <= bytes.len())
            .ok_or(CacheError::Corrupt("bad header length"))?;
        if header_crc(bytes, data_start).ok_or(HEADER_OOB)? != field(H_CRC)? {
            return Err(CacheError::ChecksumMismatch);
        }
        Ok(HeaderExtent {
            header_len,
            block_size,
            data_start,
        })
    }

    /// The section count, the block count and the CRC table, each checked
    /// against the header's length and the file's.
    fn read_blocks(bytes: &[u8], extent: &HeaderExtent) -> Result<BlockExtent, CacheError> {
        let field = |off| header_field(bytes, off);
        let section_count = u32_to_usize(field(H_SECTION_COUNT)?);
        if !(KNOWN_SECTIONS..=MAX_SECTIONS).contains(&section_count) {
            return Err(CacheError::Corrupt("bad section count"));
        }
        let block_len = u32_to_usize(extent.block_size);
        let block_count = u32_to_usize(field(H_BLOCK_COUNT)?);
        let crc_blocks = crc_block_count(block_count, block_len)
            .ok_or(CacheError::Corrupt("bad block count"))?;
        let level_one = HEADER_FIXED_LEN + section_count * SECTION_ENTRY_LEN;
        if crc_blocks
            .checked_mul(BLOCK_CRC_LEN)
            .and_then(|n| n.checked_add(level_one))
            != Some(extent.header_len)
        {
            return Err(CacheError::Corrupt("bad header length"));
        }
        let crc_table = block_count
            .checked_mul(block_len)
            .and_then(|n| n.checked_add(extent.data_start));
        let expected_len = crc_table
            .zip(crc_blocks.checked_mul(table_block_len(block_len)))
            .and_then(|(table, len)| table.checked_add(len));
        let Some(crc_table) = crc_table.filter(|_| expected_len == Some(bytes.len())) else {
            return Err(CacheError::Corrupt("block count does not match the length"));
        };
        Ok(BlockExtent {
            block_count,
            crc_blocks,
            level_one,
            crc_table,
        })
    }
}

/// Every section's size agrees with the counts: the indexes hold one entry
/// per record, the record sections at least a head per record, the hash
/// tables a power of two of slots, more than their entries.
fn check_section_sizes(
    sections: &[Span; KNOWN_SECTIONS],
    user_count: usize,
    group_count: usize,
) -> Result<(), CacheError> {
    let len_of = |sec: usize| sections.get(sec).copied().unwrap_or_default().len;
    let holds =
        |sec: usize, count: usize, item: usize| count.checked_mul(item) == Some(len_of(sec));
    let fits = |sec: usize, count: usize, item: usize| {
        count.checked_mul(item).is_some_and(|n| n <= len_of(sec))
    };
    if !holds(SEC_USER_INDEX, user_count, INDEX_ENTRY_LEN)
        || !holds(SEC_GROUP_INDEX, group_count, INDEX_ENTRY_LEN)
        || !fits(SEC_USERS, user_count, USER_HEAD_LEN)
        || !fits(SEC_GROUPS, group_count, GROUP_HEAD_LEN)
    {
        return Err(CacheError::Corrupt(
            "section size does not match the counts",
        ));
    }
    for (sec, count) in [
        (SEC_USER_NAMES, user_count),
        (SEC_USER_IDS, user_count),
        (SEC_GROUP_NAMES, group_count),
        (SEC_GROUP_IDS, group_count),
    ] {
        let len = len_of(sec);
        let slots = len / HASH_SLOT_LEN;
        if len % HASH_SLOT_LEN != 0 || !slots.is_power_of_two() || slots <= count {
            return Err(CacheError::Corrupt("bad hash table size"));
        }
    }
    if len_of(SEC_KEYS) % STR_REF_LEN != 0 {
        return Err(CacheError::Corrupt("bad list section size"));
    }
    Ok(())
}

/// A cache file whose header was checked, and whose data blocks are checked
/// the first time a lookup reads them: the way a long-lived mapping is
/// read (the NSS module keeps one per file version, shared by its
/// threads). A fresh process then pays for the blocks its lookups touch,
/// not for the whole file.
///
/// It holds no reference to the bytes: [`view`](Self::view) takes them
/// each time and refuses any other memory than the one that was checked.
pub struct LazyCheck {
    addr: usize,
    layout: Layout,
    verified: Verified,
}

impl std::fmt::Debug for LazyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyCheck")
            .field("len", &self.layout.len)
            .field("block_count", &self.layout.block_count)
            .field("verified", &self.verified_blocks())
            .field("damaged_block", &self.damaged_block())
            .finish()
    }
}

impl LazyCheck {
    /// Checks the header of `bytes` (magic, version, length, header CRC,
    /// section bounds) without reading the data area.
    pub fn new(bytes: &[u8]) -> Result<Self, CacheError> {
        let layout = Layout::read(bytes)?;
        Ok(LazyCheck {
            addr: bytes.as_ptr() as usize,
            layout,
            verified: Verified::new(layout.block_count, layout.crc_blocks),
        })
    }

    /// A view of `bytes`, which must be the very memory given to
    /// [`new`](Self::new) (same address and length). Each block the view's
    /// lookups read is verified once; a damaged one makes the lookup fail
    /// with [`CacheError::DamagedBlock`].
    pub fn view<'a>(&'a self, bytes: &'a [u8]) -> Result<CacheView<'a>, CacheError> {
        self.belongs(bytes)?;
        // Once every block is verified, views skip the bitset altogether.
        let verified = if self.verified.complete.load(Ordering::Relaxed) {
            None
        } else {
            Some(&self.verified)
        };
        CacheView::new(bytes, self.layout, verified)
    }

    /// Verifies every block not verified yet (an enumeration reads nearly
    /// the whole file and must not stop half-way), with crc32fast: over a
    /// whole file its CPU detection pays for itself many times.
    pub fn verify_all(&self, bytes: &[u8]) -> Result<(), CacheError> {
        let view = self.view(bytes)?;
        if view.is_fully_checked() {
            return Ok(());
        }
        for block in 0..self.layout.block_count {
            view.file
                .ensure_verified(&self.verified, block, CrcWay::Detected)
                .map_err(|f| f.error("block out of range"))?;
        }
        Ok(())
    }

    fn belongs(&self, bytes: &[u8]) -> Result<(), CacheError> {
        if bytes.as_ptr() as usize != self.addr || bytes.len() != self.layout.len {
            return Err(CacheError::Corrupt("check does not belong to these bytes"));
        }
        Ok(())
    }

    /// How many checksum blocks the data area has.
    pub fn block_count(&self) -> usize {
        self.layout.block_count
    }

    /// Whether block `block` was verified (and found intact) so far.
    pub fn is_verified(&self, block: usize) -> bool {
        self.verified.contains(block)
    }

    /// How many blocks were verified so far.
    pub fn verified_blocks(&self) -> usize {
        self.verified.count.load(Ordering::Relaxed)
    }

    /// The first block a lookup found damaged, if any.
    pub fn damaged_block(&self) -> Option<usize> {
        self.verified.damaged.load(Ordering::Relaxed).checked_sub(1)
    }
}

/// A checked, borrowed view of a cache file. Cheap to copy.
#[derive(Clone, Copy)]
pub struct CacheView<'a> {
    file: Checked<'a>,
    layout: Layout,
}

impl std::fmt::Debug for CacheView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheView")
            .field("len", &self.layout.len)
            .field("users", &self.layout.user_count)
            .field("groups", &self.layout.group_count)
            .field("lazy", &self.file.verified.is_some())
            .finish()
    }
}

/// One passwd entry, borrowed from the file. Strings are raw bytes (the
/// writer only stores UTF-8 without NUL, but the reader does not rely on it).
#[derive(Debug, Clone)]
pub struct UserRecord<'a> {
    pub name: &'a [u8],
    pub uid: u32,
    pub gid: u32,
    pub gecos: &'a [u8],
    pub home: &'a [u8],
    pub shell: &'a [u8],
    pub locked: bool,
    /// The user's supplementary gids (for `initgroups`).
    pub groups: Gids<'a>,
    /// The user's range in KEYS: first entry, count.
    keys: (u32, u32),
    /// Gecos, home and shell as stored, one after the other.
    fields: &'a [u8],
}

/// One group entry, borrowed from the file.
#[derive(Debug, Clone)]
pub struct GroupRecord<'a> {
    pub name: &'a [u8],
    pub gid: u32,
    pub members: Members<'a>,
}

/// Iterator over a gid list stored in the file (bounds and blocks checked
/// when the record was read).
#[derive(Debug, Clone)]
pub struct Gids<'a> {
    raw: &'a [u8],
}

impl Iterator for Gids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let (head, rest) = self.raw.split_first_chunk::<4>()?;
        self.raw = rest;
        Some(u32::from_le_bytes(*head))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.raw.len() / GID_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Gids<'_> {}

/// A group's member names, stored ready to copy: each name followed by a
/// NUL, one after the other (`alice\0bob\0`), in one range of the file
/// whose blocks were checked when the record was read, with each name's
/// length (a byte) beside them. The list is checked as a whole
/// ([`joined`](Self::joined), which hands out the bytes for one copy; the
/// iterator does it before its first name): a list holding a name the
/// writer never writes, or names other than the lengths say, gives an error
/// and no name at all.
#[derive(Clone)]
pub struct Members<'a> {
    lens: &'a [u8],
    list: &'a [u8],
    checked: bool,
}

impl std::fmt::Debug for Members<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("count", &self.lens.len())
            .finish()
    }
}

impl<'a> Members<'a> {
    /// How many members are left.
    pub fn count_left(&self) -> usize {
        self.lens.len()
    }

    /// The remaining names as stored, each followed by its NUL, once every
    /// one is known to be a name the writer could have written (not empty,
    /// no separator, white space or control byte) and the names are exactly
    /// those the lengths give. Two passes of vector compares over the bytes
    /// (a department's list is tens of kilobytes) and a few instructions
    /// per name.
    pub fn joined(&self) -> Result<&'a [u8], CacheError> {
        const MISMATCH: CacheError = CacheError::Corrupt("member list does not match its lengths");
        let list = self.list;
        let (bad, nuls) = scan_member_list(list);
        if bad || self.lens.contains(&0) {
            return Err(CacheError::UnsafeEntry(Refusal::MemberName.describe()));
        }
        if nuls != self.lens.len() {
            return Err(MISMATCH);
        }
        // Every length lands on a NUL: with as many NULs as names, there is
        // none inside a name.
        let mut at = 0usize;
        for &len in self.lens {
            at += usize::from(len);
            if list.get(at) != Some(&0) {
                return Err(MISMATCH);
            }
            at += 1;
        }
        if at != list.len() {
            return Err(MISMATCH);
        }
        Ok(list)
    }

    /// Where each remaining name starts in [`joined`](Self::joined)'s
    /// bytes, from the lengths alone (call `joined` first).
    pub fn starts(&self) -> impl Iterator<Item = usize> + 'a {
        self.lens.iter().scan(0usize, |at, &len| {
            let start = *at;
            *at += usize::from(len) + 1;
            Some(start)
        })
    }
}

/// Whether a byte of a member list is one a name may not hold (what a
/// served name may not, NUL aside: it ends each name in the list).
#[inline(always)]
fn bad_in_member_list(b: u8) -> bool {
    (b.wrapping_sub(1) < b' ') | (b == b':') | (b == b',') | (b == 0x7f)
}

/// One pass over a member list: whether it holds a byte no name may hold,
/// and how many NULs it holds. Fixed-size chunks whose lanes are folded
/// without branches, which the compiler turns into vector compares (a
/// department's list is tens of kilobytes; byte by byte it was most of a
/// group lookup).
fn scan_member_list(list: &[u8]) -> (bool, usize) {
    let (chunks, tail) = list.as_chunks::<SCAN_LANES>();
    let (mut bad, mut nuls) = (false, 0usize);
    for chunk in chunks {
        let (chunk_bad, chunk_nuls) = scan_chunk(chunk);
        bad |= chunk_bad;
        nuls += chunk_nuls;
    }
    // The tail goes through the same chunk code, padded with a byte that
    // is neither bad nor NUL: a byte-by-byte tail cost more than a chunk.
    if !tail.is_empty() {
        let mut padded = [b'a'; SCAN_LANES];
        for (dst, &src) in padded.iter_mut().zip(tail) {
            *dst = src;
        }
        let (chunk_bad, chunk_nuls) = scan_chunk(&padded);
        bad |= chunk_bad;
        nuls += chunk_nuls;
    }
    (bad, nuls)
}

/// The chunk length of [`scan_member_list`].
const SCAN_LANES: usize = 32;

/// One chunk of [`scan_member_list`]: its lanes folded without branches.
#[inline(always)]
fn scan_chunk(chunk: &[u8; SCAN_LANES]) -> (bool, usize) {
    let (mut bad, mut nuls) = (0u8, 0u8);
    for &b in chunk {
        bad |= u8::from(bad_in_member_list(b));
        nuls += u8::from(b == 0);
    }
    (bad != 0, usize::from(nuls))
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<&'a [u8], CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.checked {
            self.checked = true;
            if let Err(e) = self.joined() {
                self.lens = &[];
                self.list = &[];
                return Some(Err(e));
            }
        }
        let (&len, lens) = self.lens.split_first()?;
        self.lens = lens;
        // Checked by `joined`: the name and its NUL are in the list.
        let (name, rest) = self
            .list
            .split_at_checked(usize::from(len))
            .unwrap_or((self.list, &[]));
        self.list = rest.get(1..).unwrap_or_default();
        Some(Ok(name))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.lens.len(), Some(self.lens.len()))
    }
}

impl ExactSizeIterator for Members<'_> {}

/// Iterator over a user's public keys, each `(TYPE, KEY)` split at the
/// first `:` of the stored `TYPE:KEY`. Each is checked as it is followed
/// (the writer's rule, [`clean::check_key`](super::clean::check_key)); a bad
/// reference, a damaged block or a key the writer never writes yields an
/// error.
#[derive(Clone)]
pub struct Keys<'a> {
    refs: &'a [u8],
    file: Checked<'a>,
    strings: Section<'a>,
}

impl std::fmt::Debug for Keys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("count", &(self.refs.len() / STR_REF_LEN))
            .finish()
    }
}

impl<'a> Iterator for Keys<'a> {
    type Item = Result<(&'a str, &'a str), CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (head, rest) = self.refs.split_first_chunk::<8>()?;
        self.refs = rest;
        Some(
            self.file
                .string(self.strings, head, 0)
                .and_then(|raw| {
                    std::str::from_utf8(raw)
                        .ok()
                        .and_then(|text| super::clean::check_key(text).ok())
                        .ok_or(Fault::Unsafe(Refusal::Key))
                })
                .map_err(|f| f.error("key out of bounds")),
        )
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.refs.len() / STR_REF_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Keys<'_> {}

/// Whether a byte of `s` is one a served name may not hold: what a passwd
/// or group line parser splits on (`:`, `,`, newline), other white space
/// and control bytes, DEL, NUL. Compares without branches or table loads,
/// which the compiler turns into vector code: a lookup checks every string
/// of the entry it returns.
#[inline(always)]
fn breaks_name(s: &[u8]) -> bool {
    s.iter().fold(false, |bad, &b| {
        bad | (b <= b' ') | (b == b':') | (b == b',') | (b == 0x7f)
    })
}

/// Whether a byte of `s` is one a gecos, home or shell may not hold: `:`,
/// control bytes, DEL.
#[inline(always)]
fn breaks_field(s: &[u8]) -> bool {
    s.iter().fold(false, |bad, &b| {
        bad | (b < b' ') | (b == b':') | (b == 0x7f)
    })
}

/// A name the writer could have written.
#[inline(always)]
fn safe_name(s: &[u8]) -> bool {
    !s.is_empty() && !breaks_name(s)
}

/// A gecos, home or shell the writer could have written.
#[inline(always)]
fn safe_field(s: &[u8]) -> bool {
    !breaks_field(s)
}

/// Ids never served: 0 (root) and `(uid_t)-1` ("no change" to chown).
#[inline(always)]
fn reserved_id(id: u32) -> bool {
    id == 0 || id == u32::MAX
}

/// Refuses a user entry a correct writer never writes (a crafted file
/// whose checksums are right): a name or field holding a separator, control
/// byte or NUL, or a uid, gid or supplementary gid of 0 or -1.
#[inline(always)]
fn check_user(user: UserRecord<'_>) -> Result<UserRecord<'_>, Fault> {
    if !safe_name(user.name) {
        return Err(Fault::Unsafe(Refusal::UserName));
    }
    // Gecos, home and shell lie one after the other in the record: one
    // pass over the three.
    if !safe_field(user.fields) {
        return Err(Fault::Unsafe(Refusal::UserField));
    }
    if reserved_id(user.uid) || reserved_id(user.gid) {
        return Err(Fault::Unsafe(Refusal::UserId));
    }
    if user.groups.clone().any(reserved_id) {
        return Err(Fault::Unsafe(Refusal::SupplementaryGid));
    }
    Ok(user)
}

/// Refuses a group entry a correct writer never writes: a bad name or gid
/// 0 or -1. Member names are checked as [`Members`] yields them.
#[inline(always)]
fn check_group(group: GroupRecord<'_>) -> Result<GroupRecord<'_>, Fault> {
    if !safe_name(group.name) {
        return Err(Fault::Unsafe(Refusal::GroupName));
    }
    if reserved_id(group.gid) {
        return Err(Fault::Unsafe(Refusal::GroupId));
    }
    Ok(group)
}

fn u32_to_usize(v: u32) -> usize {
    // u32 always fits in usize on the 32- and 64-bit targets we build for.
    v as usize
}

impl<'a> CacheView<'a> {
    fn new(
        bytes: &'a [u8],
        layout: Layout,
        verified: Option<&'a Verified>,
    ) -> Result<Self, CacheError> {
        if bytes.len() != layout.len {
            return Err(CacheError::Corrupt("check does not belong to these bytes"));
        }
        Ok(CacheView {
            file: Checked {
                file: bytes,
                data_start: layout.data_start,
                block_shift: layout.block_shift,
                crc_table: layout.crc_table,
                level_one: layout.level_one,
                table_shift: layout.table_shift,
                verified,
            },
            layout,
        })
    }

    /// Section `i`. Its bounds were checked against this very length by
    /// [`Layout::read`]; slicing here, per use, rather than once per view
    /// keeps a view (made for every lookup) cheap.
    #[inline(always)]
    fn sec(&self, i: usize) -> Section<'a> {
        let span = self.layout.sections.get(i).copied().unwrap_or_default();
        Section {
            bytes: span
                .off
                .checked_add(span.len)
                .and_then(|end| self.file.file.get(span.off..end))
                .unwrap_or_default(),
            from_data_start: span.off.saturating_sub(self.layout.data_start),
        }
    }

    /// Checks `bytes` as a whole (magic, version, length, header CRC,
    /// every section bound and size, and the CRC of every block) and
    /// returns a view, or why the file is unusable. For tools that read a
    /// file once; a long-lived mapping uses [`LazyCheck`] instead.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CacheError> {
        let layout = Layout::read(bytes)?;
        let view = CacheView::new(bytes, layout, None)?;
        for table_block in 0..layout.crc_blocks {
            view.file
                .check_table_block(table_block, CrcWay::Detected)
                .map_err(|f| f.error("block out of range"))?;
        }
        for block in 0..layout.block_count {
            view.file
                .check_block(block, CrcWay::Detected)
                .map_err(|f| f.error("block out of range"))?;
        }
        Ok(view)
    }

    /// Whether every block was verified before the view was made
    /// ([`parse`](Self::parse), or a [`LazyCheck`] whose blocks have all
    /// been verified), so that its reads skip the per-block check.
    pub fn is_fully_checked(&self) -> bool {
        self.file.verified.is_none()
    }

    /// When the data was fetched (seconds since the Unix epoch).
    pub fn generated_at(&self) -> i64 {
        self.layout.generated_at
    }

    /// The server the data came from.
    pub fn source(&self) -> Result<&'a str, CacheError> {
        const BAD: &str = "source out of bounds";
        let (off, len) = self.layout.source;
        let raw = self
            .file
            .in_section(self.sec(SEC_STRINGS), u32_to_usize(off), u32_to_usize(len))
            .map_err(|f| f.error(BAD))?;
        std::str::from_utf8(raw).map_err(|_| CacheError::Corrupt("source is not UTF-8"))
    }

    pub fn user_count(&self) -> usize {
        self.layout.user_count
    }

    pub fn group_count(&self) -> usize {
        self.layout.group_count
    }

    /// The user at `index` in enumeration order; `Ok(None)` past the end.
    /// An entry the writer never writes (see [`CacheError::UnsafeEntry`])
    /// is an error, never returned.
    pub fn user_at(&self, index: usize) -> Result<Option<UserRecord<'a>>, CacheError> {
        if index >= self.layout.user_count {
            return Ok(None);
        }
        self.read_user(index)
            .and_then(|u| check_user(u).map_err(|f| f.error("entry refused")))
            .map(Some)
    }

    /// The group at `index` in enumeration order; `Ok(None)` past the end.
    /// An entry the writer never writes is an error, never returned.
    pub fn group_at(&self, index: usize) -> Result<Option<GroupRecord<'a>>, CacheError> {
        if index >= self.layout.group_count {
            return Ok(None);
        }
        self.read_group(index)
            .and_then(|g| check_group(g).map_err(|f| f.error("entry refused")))
            .map(Some)
    }

    /// Where record `index` starts in its section, from USER_INDEX or
    /// GROUP_INDEX.
    fn record_offset(&self, index_section: usize, index: usize) -> Result<usize, Fault> {
        let at = index
            .checked_mul(INDEX_ENTRY_LEN)
            .ok_or(Fault::OutOfBounds)?;
        let entry = self
            .file
            .in_section(self.sec(index_section), at, INDEX_ENTRY_LEN)?;
        read_u32(entry, 0)
            .map(u32_to_usize)
            .ok_or(Fault::OutOfBounds)
    }

    /// The record at `index`, bounds and blocks checked but not its
    /// contents: only for comparing it with the key of a lookup, which then
    /// checks it ([`check_user`]) before returning it.
    fn read_user(&self, index: usize) -> Result<UserRecord<'a>, CacheError> {
        if index >= self.layout.user_count {
            return Err(CacheError::Corrupt("user index out of range"));
        }
        self.record_offset(SEC_USER_INDEX, index)
            .and_then(|offset| self.read_user_at(offset))
            .map_err(|f| f.error("user record out of bounds"))
    }

    /// The user record at `offset` in USERS: its fixed head, then in one
    /// piece its name, gecos, home, shell and gids. The small error type
    /// lets the reads inline into one straight path.
    #[inline(always)]
    fn read_user_at(&self, offset: usize) -> Result<UserRecord<'a>, Fault> {
        const BAD: Fault = Fault::OutOfBounds;
        let users = self.sec(SEC_USERS);
        let head = self.file.in_section(users, offset, USER_HEAD_LEN)?;
        let n = |at| read_u32(head, at).ok_or(BAD);
        let len = |at| read_u16(head, at).map(usize::from).ok_or(BAD);
        let (name_len, gecos_len, home_len, shell_len) = (len(24)?, len(26)?, len(28)?, len(30)?);
        let gid_count = u32_to_usize(n(12)?);
        let strings_len = name_len + gecos_len + home_len + shell_len;
        let body_len = gid_count
            .checked_mul(GID_LEN)
            .and_then(|g| g.checked_add(strings_len))
            .ok_or(BAD)?;
        let body = self.file.in_section(
            users,
            offset.checked_add(USER_HEAD_LEN).ok_or(BAD)?,
            body_len,
        )?;
        let (name, rest) = body.split_at_checked(name_len).ok_or(BAD)?;
        let (fields, gids) = rest
            .split_at_checked(gecos_len + home_len + shell_len)
            .ok_or(BAD)?;
        let (gecos, rest) = fields.split_at_checked(gecos_len).ok_or(BAD)?;
        let (home, shell) = rest.split_at_checked(home_len).ok_or(BAD)?;
        Ok(UserRecord {
            name,
            uid: n(0)?,
            gid: n(4)?,
            gecos,
            home,
            shell,
            locked: n(8)? & USER_FLAG_LOCKED != 0,
            groups: Gids { raw: gids },
            keys: (n(16)?, n(20)?),
            fields,
        })
    }

    /// The user record at `offset` whose name is `name`, if it is that.
    /// The record is read in one piece either way: a slot whose hash
    /// matches another name is rare.
    #[inline(always)]
    fn user_named_at(&self, offset: usize, name: &[u8]) -> Result<Option<UserRecord<'a>>, Fault> {
        let user = self.read_user_at(offset)?;
        Ok((user.name == name).then_some(user))
    }

    /// As [`read_user`](Self::read_user), for groups.
    fn read_group(&self, index: usize) -> Result<GroupRecord<'a>, CacheError> {
        if index >= self.layout.group_count {
            return Err(CacheError::Corrupt("group index out of range"));
        }
        self.record_offset(SEC_GROUP_INDEX, index)
            .and_then(|offset| self.read_group_at(offset))
            .map_err(|f| f.error("group record out of bounds"))
    }

    /// The group record at `offset` in GROUPS: its fixed head, then in one
    /// piece its name, its members' lengths and its member list.
    #[inline(always)]
    fn read_group_at(&self, offset: usize) -> Result<GroupRecord<'a>, Fault> {
        const BAD: Fault = Fault::OutOfBounds;
        let groups = self.sec(SEC_GROUPS);
        let head = self.file.in_section(groups, offset, GROUP_HEAD_LEN)?;
        let n = |at| read_u32(head, at).ok_or(BAD);
        let count = u32_to_usize(n(4)?);
        let list_len = u32_to_usize(n(8)?);
        let name_len = read_u16(head, 12).map(usize::from).ok_or(BAD)?;
        let body_len = name_len
            .checked_add(count)
            .and_then(|n| n.checked_add(list_len))
            .ok_or(BAD)?;
        let body = self.file.in_section(
            groups,
            offset.checked_add(GROUP_HEAD_LEN).ok_or(BAD)?,
            body_len,
        )?;
        let (name, rest) = body.split_at_checked(name_len).ok_or(BAD)?;
        let (lens, list) = rest.split_at_checked(count).ok_or(BAD)?;
        Ok(GroupRecord {
            name,
            gid: n(0)?,
            members: Members {
                lens,
                list,
                checked: false,
            },
        })
    }

    /// Probes a name hash table: slots `(name hash u32, record offset + 1)`;
    /// calls `matches(offset)` for each candidate whose hash equals.
    /// Bounded by the table size even if it is full.
    fn probe<T>(
        &self,
        table: Section<'a>,
        name: &[u8],
        mut matches: impl FnMut(usize) -> Result<Option<T>, CacheError>,
    ) -> Result<Option<T>, CacheError> {
        const WHAT: &str = "hash slot out of bounds";
        let slots = table.bytes.len() / HASH_SLOT_LEN;
        if slots == 0 {
            return Ok(None);
        }
        let mask = slots - 1;
        let hash = name_hash(self.layout.hash_seed, name);
        let mut slot = hash as usize & mask;
        for _ in 0..slots {
            let entry = self
                .file
                .in_section(table, slot * HASH_SLOT_LEN, HASH_SLOT_LEN)
                .map_err(|f| f.error(WHAT))?;
            let stored_hash = read_u32(entry, 0).ok_or(CacheError::Corrupt(WHAT))?;
            let offset_plus_one = read_u32(entry, 4).ok_or(CacheError::Corrupt(WHAT))?;
            if offset_plus_one == 0 {
                return Ok(None);
            }
            if stored_hash == hash {
                if let Some(found) = matches(u32_to_usize(offset_plus_one) - 1)? {
                    return Ok(Some(found));
                }
            }
            slot = (slot + 1) & mask;
        }
        Ok(None)
    }

    /// The user named `name`. A hash hit is compared with the record's
    /// name first, so that an entry refused by [`check_user`] only fails
    /// lookups of its own name.
    pub fn user_by_name(&self, name: &[u8]) -> Result<Option<UserRecord<'a>>, CacheError> {
        self.probe(self.sec(SEC_USER_NAMES), name, |offset| {
            match self.user_named_at(offset, name) {
                Ok(Some(user)) => check_user(user)
                    .map(Some)
                    .map_err(|f| f.error("entry refused")),
                Ok(None) => Ok(None),
                Err(f) => Err(f.error("user record out of bounds")),
            }
        })
    }

    /// The group named `name` (see [`user_by_name`](Self::user_by_name)).
    pub fn group_by_name(&self, name: &[u8]) -> Result<Option<GroupRecord<'a>>, CacheError> {
        self.probe(self.sec(SEC_GROUP_NAMES), name, |offset| {
            let group = self
                .read_group_at(offset)
                .map_err(|f| f.error("group record out of bounds"))?;
            if group.name != name {
                return Ok(None);
            }
            check_group(group)
                .map(Some)
                .map_err(|f| f.error("entry refused"))
        })
    }

    /// Probes an id hash table: slots `(id, record offset + 1)`, the first
    /// at [`id_hash`] of `id`, linear probing. Bounded by the table size
    /// even if it is full.
    fn find_id(&self, table: Section<'a>, id: u32) -> Result<Option<usize>, CacheError> {
        const WHAT: &str = "id slot out of bounds";
        const BAD: CacheError = CacheError::Corrupt(WHAT);
        let slots = table.bytes.len() / ID_ENTRY_LEN;
        if slots == 0 {
            return Ok(None);
        }
        let mask = slots - 1;
        let mut slot = id_hash(self.layout.hash_seed, id) as usize & mask;
        for _ in 0..slots {
            let entry = self
                .file
                .in_section(table, slot * ID_ENTRY_LEN, ID_ENTRY_LEN)
                .map_err(|f| f.error(WHAT))?;
            let stored = read_u32(entry, 0).ok_or(BAD)?;
            let offset_plus_one = read_u32(entry, 4).ok_or(BAD)?;
            if offset_plus_one == 0 {
                return Ok(None);
            }
            if stored == id {
                return Ok(Some(u32_to_usize(offset_plus_one) - 1));
            }
            slot = (slot + 1) & mask;
        }
        Ok(None)
    }

    pub fn user_by_uid(&self, uid: u32) -> Result<Option<UserRecord<'a>>, CacheError> {
        let Some(offset) = self.find_id(self.sec(SEC_USER_IDS), uid)? else {
            return Ok(None);
        };
        let user = self
            .read_user_at(offset)
            .map_err(|f| f.error("user record out of bounds"))?;
        if user.uid != uid {
            return Err(CacheError::Corrupt("uid index points to another user"));
        }
        check_user(user)
            .map(Some)
            .map_err(|f| f.error("entry refused"))
    }

    pub fn group_by_gid(&self, gid: u32) -> Result<Option<GroupRecord<'a>>, CacheError> {
        let Some(offset) = self.find_id(self.sec(SEC_GROUP_IDS), gid)? else {
            return Ok(None);
        };
        let group = self
            .read_group_at(offset)
            .map_err(|f| f.error("group record out of bounds"))?;
        if group.gid != gid {
            return Err(CacheError::Corrupt("gid index points to another group"));
        }
        check_group(group)
            .map(Some)
            .map_err(|f| f.error("entry refused"))
    }

    /// The public keys of user `name` (all types, in stored order);
    /// `Ok(None)` for an unknown user. Whether the user is locked is
    /// [`user_by_name`](Self::user_by_name)'s to say: this returns the keys
    /// of a locked user too. Reads only the user's own key range, never
    /// another user's.
    pub fn user_keys(&self, name: &[u8]) -> Result<Option<Keys<'a>>, CacheError> {
        self.user_by_name(name)?
            .map(|user| self.keys_of(&user))
            .transpose()
    }

    /// The keys of `user`, from its range in KEYS.
    fn keys_of(&self, user: &UserRecord<'a>) -> Result<Keys<'a>, CacheError> {
        const WHAT: &str = "key range out of bounds";
        const BAD: CacheError = CacheError::Corrupt(WHAT);
        let (first, count) = (u32_to_usize(user.keys.0), u32_to_usize(user.keys.1));
        let refs_start = first.checked_mul(STR_REF_LEN).ok_or(BAD)?;
        let refs_len = count.checked_mul(STR_REF_LEN).ok_or(BAD)?;
        Ok(Keys {
            refs: self
                .file
                .in_section(self.sec(SEC_KEYS), refs_start, refs_len)
                .map_err(|f| f.error(WHAT))?,
            file: self.file,
            strings: self.sec(SEC_STRINGS),
        })
    }

    /// The supplementary gids of user `name`; `Ok(None)` for an unknown user.
    pub fn groups_of_user(&self, name: &[u8]) -> Result<Option<Gids<'a>>, CacheError> {
        Ok(self.user_by_name(name)?.map(|u| u.groups))
    }

    /// Decodes the whole file into owned data (for status output and tests).
    /// Users with an empty group list get no `user_groups` entry, users
    /// without keys no `user_keys` entry.
    pub fn to_content(&self) -> Result<CacheContent, CacheError> {
        fn text(raw: &[u8]) -> Result<String, CacheError> {
            String::from_utf8(raw.to_vec()).map_err(|_| CacheError::Corrupt("string is not UTF-8"))
        }
        let mut content = CacheContent {
            generated_at: self.generated_at(),
            source: self.source()?.to_owned(),
            user_groups: BTreeMap::new(),
            ..CacheContent::default()
        };
        for i in 0..self.user_count() {
            let u = self
                .user_at(i)?
                .ok_or(CacheError::Corrupt("user index out of range"))?;
            let name = text(u.name)?;
            let gids: Vec<u32> = u.groups.clone().collect();
            if !gids.is_empty() {
                content.user_groups.insert(name.clone(), gids);
            }
            let keys = self
                .keys_of(&u)?
                .map(|k| k.map(|(kind, key)| format!("{kind}:{key}")))
                .collect::<Result<Vec<_>, _>>()?;
            if !keys.is_empty() {
                content.user_keys.insert(name.clone(), keys);
            }
            content.users.push(UnixUser {
                name,
                uid: u.uid,
                gid: u.gid,
                gecos: text(u.gecos)?,
                home: text(u.home)?,
                shell: text(u.shell)?,
                locked: u.locked,
            });
        }
        for i in 0..self.group_count() {
            let g = self
                .group_at(i)?
                .ok_or(CacheError::Corrupt("group index out of range"))?;
            let members = g
                .members
                .map(|m| m.and_then(text))
                .collect::<Result<_, _>>()?;
            content.groups.push(UnixGroup {
                name: text(g.name)?,
                gid: g.gid,
                members,
            });
        }
        Ok(content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan finds a bad byte and counts NULs wherever they lie: in a
    /// whole chunk or in the padded tail, for lists of every length around
    /// one and two chunks.
    #[test]
    fn member_list_scan_sees_every_position() {
        for len in [1, 2, 31, 32, 33, 40, 63, 64, 65, 95] {
            let clean = vec![b'a'; len];
            assert_eq!(scan_member_list(&clean), (false, 0), "len {len}");
            for at in 0..len {
                let mut list = clean.clone();
                list[at] = b':';
                assert_eq!(scan_member_list(&list), (true, 0), "len {len}, ':' at {at}");
                list[at] = 0;
                assert_eq!(
                    scan_member_list(&list),
                    (false, 1),
                    "len {len}, NUL at {at}"
                );
            }
            let nuls = vec![0u8; len];
            assert_eq!(scan_member_list(&nuls), (false, len), "len {len} of NULs");
        }
    }

    /// The member list check forbids exactly the bytes a name may not hold.
    #[test]
    fn member_lists_refuse_what_names_refuse() {
        for b in 1..=255u8 {
            let list = [b, 0];
            let members = Members {
                lens: &[1],
                list: &list,
                checked: false,
            };
            assert_eq!(members.joined().is_ok(), safe_name(&[b]), "byte {b:#x}");
        }
        for (list, lens, ok) in [
            (&b""[..], &[][..], true),
            (b"a\0bc\0", &[1, 2], true),
            (b"\0", &[0], false),
            (b"\0", &[1], false),
            (b"a\0\0b\0", &[1, 1, 1], false),
            (b"a\0b", &[1, 1], false),
            (b"a\0b\0", &[1], false),
            (b"a\0b\0", &[3], false),
            (b"ab\0c\0", &[1, 3], false),
            (b"a\0b\0", &[1, 1, 1], false),
        ] {
            let members = Members {
                lens,
                list,
                checked: false,
            };
            assert_eq!(members.joined().is_ok(), ok, "{list:?} {lens:?}");
            if ok {
                let names: Vec<_> = members.clone().map(Result::unwrap).collect();
                let starts: Vec<_> = members.starts().collect();
                assert_eq!(names.len(), lens.len());
                for (name, start) in names.iter().zip(starts) {
                    assert_eq!(&list[start..start + name.len()], *name);
                }
            } else {
                assert!(members.clone().next().unwrap().is_err());
            }
        }
    }
}

//! Constants of the version 5 layout and the helpers both sides share.

pub(crate) const MAGIC: [u8; 8] = *b"NAUTHNSS";
/// The header CRC covers the file from this offset to the start of the data
/// area (the table of CRC-table CRCs and the padding after it included),
/// with the replaced mark ([`H_REPLACED`]) counted as zero.
pub(crate) const CRC_START: usize = 12;
pub(crate) const HEADER_FIXED_LEN: usize = 72;
pub(crate) const SECTION_ENTRY_LEN: usize = 8;
pub(crate) const BLOCK_CRC_LEN: usize = 4;
/// Sections a version 5 reader needs; later writers may append more.
pub(crate) const KNOWN_SECTIONS: usize = 10;
/// Bounds the header a reader accepts, so a hostile count cannot make the
/// section table huge.
pub(crate) const MAX_SECTIONS: usize = 64;
/// Block sizes a reader accepts (powers of two). Small blocks are for
/// tests; the writer uses [`super::BLOCK_SIZE`].
pub(crate) const MIN_BLOCK_SIZE: u32 = 64;
pub(crate) const MAX_BLOCK_SIZE: u32 = 1 << 20;

pub(crate) const SEC_STRINGS: usize = 0;
pub(crate) const SEC_USERS: usize = 1;
pub(crate) const SEC_USER_INDEX: usize = 2;
pub(crate) const SEC_USER_NAMES: usize = 3;
pub(crate) const SEC_USER_IDS: usize = 4;
pub(crate) const SEC_GROUPS: usize = 5;
pub(crate) const SEC_GROUP_INDEX: usize = 6;
pub(crate) const SEC_GROUP_NAMES: usize = 7;
pub(crate) const SEC_GROUP_IDS: usize = 8;
pub(crate) const SEC_KEYS: usize = 9;

/// The fixed part of a user record; its strings and gids follow it.
pub(crate) const USER_HEAD_LEN: usize = 32;
/// The fixed part of a group record; its name and member list follow it.
pub(crate) const GROUP_HEAD_LEN: usize = 16;
/// One entry of USER_INDEX or GROUP_INDEX: a record's offset in its section.
pub(crate) const INDEX_ENTRY_LEN: usize = 4;
pub(crate) const ID_ENTRY_LEN: usize = 8;
pub(crate) const HASH_SLOT_LEN: usize = 8;
pub(crate) const STR_REF_LEN: usize = 8;
pub(crate) const GID_LEN: usize = 4;
/// Longest gecos, home or shell a record can hold (a u16 length); the
/// refresh's cleaning caps them far lower.
pub(crate) const MAX_FIELD_LEN: usize = u16::MAX as usize;

pub(crate) const USER_FLAG_LOCKED: u32 = 1;

// Header field offsets.
pub(crate) const H_CRC: usize = 8;
pub(crate) const H_VERSION: usize = 12;
pub(crate) const H_HEADER_LEN: usize = 16;
pub(crate) const H_SECTION_COUNT: usize = 20;
pub(crate) const H_FILE_LEN: usize = 24;
pub(crate) const H_GENERATED_AT: usize = 32;
pub(crate) const H_HASH_SEED: usize = 40;
pub(crate) const H_USER_COUNT: usize = 44;
pub(crate) const H_GROUP_COUNT: usize = 48;
pub(crate) const H_SOURCE: usize = 52;
/// The replaced mark: 0 as written; the writer sets it (to
/// [`REPLACED`]) in the old file just before it renames a new one over it.
/// The only bytes of a cache file ever written in place; outside the
/// header CRC.
pub(crate) const H_REPLACED: usize = 60;
pub(crate) const REPLACED: u32 = 1;
pub(crate) const H_BLOCK_SIZE: usize = 64;
/// How many data blocks there are (the CRC table's blocks not counted).
pub(crate) const H_BLOCK_COUNT: usize = 68;

/// The shortest block of the CRC table (a page, 1,024 CRCs): small data
/// blocks keep a lookup's first check short, larger table blocks keep
/// their CRCs, which the header holds, few.
pub(crate) const MIN_TABLE_BLOCK_LEN: usize = 4096;

/// The length of a block of the CRC table, for data blocks of `block_len`
/// (a power of two): a page, or a data block if that is longer.
pub(crate) fn table_block_len(block_len: usize) -> usize {
    block_len.max(MIN_TABLE_BLOCK_LEN)
}

/// How many blocks the CRC table of `block_count` data blocks of
/// `block_len` takes (it follows the data area, each of its blocks covered
/// by a CRC in the header).
pub(crate) fn crc_block_count(block_count: usize, block_len: usize) -> Option<usize> {
    Some(
        block_count
            .checked_mul(BLOCK_CRC_LEN)?
            .div_ceil(table_block_len(block_len)),
    )
}

/// Reads a little-endian u16 at `off`, or `None` if it is out of bounds.
pub(crate) fn read_u16(bytes: &[u8], off: usize) -> Option<u16> {
    let end = off.checked_add(2)?;
    let raw: [u8; 2] = bytes.get(off..end)?.try_into().ok()?;
    Some(u16::from_le_bytes(raw))
}

/// The name hash: FNV-1a from a per-file seed, then the MurmurHash3
/// finaliser so that the low bits (the slot) depend on every input byte.
pub(crate) fn name_hash(seed: u32, name: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5 ^ seed;
    for &b in name {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// How a reader computes a CRC-32 (IEEE, as zlib's); both ways give the
/// same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CrcWay {
    /// By table (slice-by-16), with no CPU detection: for the header and
    /// the few blocks a lookup checks. crc32fast's first use detects the
    /// CPU with a series of `cpuid`s, each a trap to the hypervisor in a
    /// virtual machine: it cost a fresh process's first lookup about
    /// 50 µs, far more than its checks take by table.
    Table,
    /// crc32fast: detects the CPU once, then several times faster per byte
    /// (PCLMULQDQ). For checking a whole file.
    Detected,
}

/// The lanes of [`CrcWay::Table`] (slice-by-16): lane `k` holds the CRC of
/// a byte followed by `k` zero bytes. Computed at compile time by the `crc`
/// crate, and kept as a plain array: it then lies in the read-only data
/// `dlopen` maps anyway. (The crate's own `Crc` value holds a pointer, so
/// it would lie in relocated data, 16 KiB that cost every process's first
/// lookup page faults of their own.)
static CRC_LANES: [[u32; 256]; 16] =
    *crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISO_HDLC).table();

/// Runs the (inverted) CRC-32 state `crc` over `bytes`, 16 bytes a step.
// A u8 indexes a lane of 256 entries, and the lanes are constant indices
// of an array of 16: no index here can be out of bounds. Plain indexing
// also keeps the unoptimised test builds fast.
#[allow(clippy::indexing_slicing)]
fn crc_by_table(mut crc: u32, bytes: &[u8]) -> u32 {
    let t = &CRC_LANES;
    let (chunks, tail) = bytes.as_chunks::<16>();
    for chunk in chunks {
        let [b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14, b15] = *chunk;
        let [h0, h1, h2, h3] = (crc ^ u32::from_le_bytes([b0, b1, b2, b3])).to_le_bytes();
        crc = t[15][usize::from(h0)]
            ^ t[14][usize::from(h1)]
            ^ t[13][usize::from(h2)]
            ^ t[12][usize::from(h3)]
            ^ t[11][usize::from(b4)]
            ^ t[10][usize::from(b5)]
            ^ t[9][usize::from(b6)]
            ^ t[8][usize::from(b7)]
            ^ t[7][usize::from(b8)]
            ^ t[6][usize::from(b9)]
            ^ t[5][usize::from(b10)]
            ^ t[4][usize::from(b11)]
            ^ t[3][usize::from(b12)]
            ^ t[2][usize::from(b13)]
            ^ t[1][usize::from(b14)]
            ^ t[0][usize::from(b15)];
    }
    for &byte in tail {
        crc = t[0][usize::from(crc.to_le_bytes()[0] ^ byte)] ^ (crc >> 8);
    }
    crc
}

impl CrcWay {
    pub(crate) fn checksum(self, bytes: &[u8]) -> u32 {
        match self {
            CrcWay::Table => !crc_by_table(!0, bytes),
            CrcWay::Detected => crc32fast::hash(bytes),
        }
    }
}

/// The header CRC of a file whose data area starts at `data_start`: bytes
/// [`CRC_START`]..`data_start`, the replaced mark counted as zero (so that
/// marking a file does not make it look damaged). By table: every
/// process's first lookup computes it.
pub(crate) fn header_crc(bytes: &[u8], data_start: usize) -> Option<u32> {
    let mut crc = crc_by_table(!0, bytes.get(CRC_START..H_REPLACED)?);
    crc = crc_by_table(crc, &[0; 4]);
    crc = crc_by_table(crc, bytes.get(H_REPLACED + 4..data_start)?);
    Some(!crc)
}

/// The slot hash of a uid or gid in an id table: the MurmurHash3 finaliser
/// of the id mixed with the file's seed, so that ids chosen in the
/// directory cannot be crafted into one long probe chain.
pub(crate) fn id_hash(seed: u32, id: u32) -> u32 {
    let mut h = id ^ seed.rotate_left(16) ^ 0x9e37_79b9;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// Reads a little-endian u32 at `off`, or `None` if it is out of bounds.
pub(crate) fn read_u32(bytes: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    let raw: [u8; 4] = bytes.get(off..end)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw))
}

/// Reads a little-endian u64 at `off`, or `None` if it is out of bounds.
pub(crate) fn read_u64(bytes: &[u8], off: usize) -> Option<u64> {
    let end = off.checked_add(8)?;
    let raw: [u8; 8] = bytes.get(off..end)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable() {
        // Fixed values: a change here breaks every existing cache file.
        assert_eq!(name_hash(0, b""), 0xab3e_7c0b);
        assert_eq!(name_hash(0x1234_5678, b"alice"), 0x2ee5_c85c);
        let a = name_hash(0, b"alice");
        assert_eq!(a, name_hash(0, b"alice"));
        assert_ne!(a, name_hash(1, b"alice"));
        assert_ne!(a, name_hash(0, b"alicf"));
        assert_eq!(id_hash(0, 0), 0x92ca_2f0e);
        assert_eq!(id_hash(7, 100_000), id_hash(7, 100_000));
        assert_ne!(id_hash(7, 100_000), id_hash(8, 100_000));
    }

    #[test]
    fn both_crc_ways_agree() {
        // Every length up to two CRC-table blocks and a bit, so that each
        // tail and chunk size of both implementations is covered.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let bytes: Vec<u8> = (0..8300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert_eq!(CrcWay::Table.checksum(b"123456789"), 0xcbf4_3926);
        for len in 0..bytes.len() {
            let part = &bytes[..len];
            assert_eq!(
                CrcWay::Table.checksum(part),
                CrcWay::Detected.checksum(part),
                "length {len}"
            );
        }
    }

    #[test]
    fn reads_are_bounds_checked() {
        let b = [1u8, 0, 0, 0, 2];
        assert_eq!(read_u32(&b, 0), Some(1));
        assert_eq!(read_u32(&b, 2), None);
        assert_eq!(read_u32(&b, usize::MAX), None);
        assert_eq!(read_u64(&b, 0), None);
    }
}

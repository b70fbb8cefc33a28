//! Re-sealing a cache file after its bytes were changed: what a hostile
//! writer would do to make a crafted file look intact. The reader's tests
//! and the end-to-end tests use it to prove that right checksums alone
//! never make the reader serve what the writer never writes. Nothing in a
//! module or the refresh calls it.
//!
//! It trusts nothing it reads (the header may be crafted too): it fixes
//! what the header's numbers leave room for and never panics.

use super::format::*;

/// Where the header says the parts of the file are, if that makes sense.
struct Parts {
    level_one: usize,
    data_start: usize,
    crc_table: usize,
    block_len: usize,
    table_block_len: usize,
    block_count: usize,
    table_blocks: usize,
}

fn parts(bytes: &[u8]) -> Option<Parts> {
    let field = |at| read_u32(bytes, at).map(|v| v as usize);
    let header_len = field(H_HEADER_LEN)?;
    let sections = field(H_SECTION_COUNT)?;
    let block_len = field(H_BLOCK_SIZE)?;
    let block_count = field(H_BLOCK_COUNT)?;
    if !block_len.is_power_of_two() {
        return None;
    }
    let data_start = header_len.checked_next_multiple_of(block_len)?;
    Some(Parts {
        level_one: sections
            .checked_mul(SECTION_ENTRY_LEN)?
            .checked_add(HEADER_FIXED_LEN)?,
        data_start,
        crc_table: block_count
            .checked_mul(block_len)?
            .checked_add(data_start)?,
        block_len,
        table_block_len: table_block_len(block_len),
        block_count,
        table_blocks: crc_block_count(block_count, block_len)?,
    })
}

/// Writes the CRC of each of `count` blocks of `len` from `first` into the
/// table at `table`, as far as the file holds both.
fn fix_crcs(bytes: &mut [u8], len: usize, count: usize, first: usize, table: usize) {
    for block in 0..count {
        let Some(start) = block
            .checked_mul(len)
            .and_then(|b| b.checked_add(first))
            .filter(|&s| s < bytes.len())
        else {
            return;
        };
        let end = start.saturating_add(len).min(bytes.len());
        let crc = bytes.get(start..end).map(crc32fast::hash).unwrap_or(0);
        let Some(field) = block
            .checked_mul(BLOCK_CRC_LEN)
            .and_then(|b| b.checked_add(table))
            .and_then(|at| bytes.get_mut(at..at.checked_add(BLOCK_CRC_LEN)?))
        else {
            return;
        };
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Recomputes every block CRC the tables have room for: each data block's
/// in the CRC table, then each block of that table's in the header.
pub fn reseal_blocks(bytes: &mut [u8]) {
    let Some(p) = parts(bytes) else {
        return;
    };
    fix_crcs(bytes, p.block_len, p.block_count, p.data_start, p.crc_table);
    fix_crcs(
        bytes,
        p.table_block_len,
        p.table_blocks,
        p.crc_table,
        p.level_one,
    );
}

/// Recomputes the header CRC (over `[12, data start)`, the replaced mark
/// counted as zero).
pub fn reseal_header(bytes: &mut [u8]) {
    let end = parts(bytes)
        .map_or(bytes.len(), |p| p.data_start)
        .clamp(H_REPLACED + 4, bytes.len().max(H_REPLACED + 4));
    let Some(crc) = header_crc(bytes, end) else {
        return;
    };
    if let Some(field) = bytes.get_mut(H_CRC..H_CRC + 4) {
        field.copy_from_slice(&crc.to_le_bytes());
    }
}

/// [`reseal_blocks`], then [`reseal_header`]: every checksum right again.
pub fn reseal(bytes: &mut [u8]) {
    reseal_blocks(bytes);
    reseal_header(bytes);
}

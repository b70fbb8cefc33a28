//! Reading a cache file in place, every offset checked.

use super::format::*;
use super::{CacheContent, CacheError, UnixGroup, UnixUser, FORMAT_VERSION};
use std::collections::BTreeMap;

/// Where the sections of one checked file lie. Obtained from
/// [`CacheView::parse`] and reused with [`CacheView::with_layout`] so that a
/// long-lived mapping is checked (CRC) once, not on every lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Address and length of the bytes that were checked: `with_layout`
    /// accepts only the very same memory.
    addr: usize,
    len: usize,
    sections: [(usize, usize); KNOWN_SECTIONS],
    user_count: usize,
    group_count: usize,
    hash_seed: u32,
    generated_at: i64,
    source: (u32, u32),
}

/// A checked, borrowed view of a cache file. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct CacheView<'a> {
    layout: Layout,
    strings: &'a [u8],
    users: &'a [u8],
    user_names: &'a [u8],
    user_ids: &'a [u8],
    groups: &'a [u8],
    group_names: &'a [u8],
    group_ids: &'a [u8],
    members: &'a [u8],
    gids: &'a [u8],
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
}

/// One group entry, borrowed from the file.
#[derive(Debug, Clone)]
pub struct GroupRecord<'a> {
    pub name: &'a [u8],
    pub gid: u32,
    pub members: Members<'a>,
}

/// Iterator over a gid list stored in the file (bounds checked when the
/// record was read).
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

/// Iterator over a group's member names. Each item is checked as it is
/// followed; a bad reference yields an error.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    refs: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Iterator for Members<'a> {
    type Item = Result<&'a [u8], CacheError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (head, rest) = self.refs.split_first_chunk::<8>()?;
        self.refs = rest;
        Some(resolve(self.strings, head, 0).ok_or(CacheError::Corrupt("member name out of bounds")))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.refs.len() / STR_REF_LEN;
        (n, Some(n))
    }
}

impl ExactSizeIterator for Members<'_> {}

/// Follows the string reference stored at `record[at..at + 8]`.
fn resolve<'a>(strings: &'a [u8], record: &[u8], at: usize) -> Option<&'a [u8]> {
    let off = read_u32(record, at)? as usize;
    let len = read_u32(record, at.checked_add(4)?)? as usize;
    strings.get(off..off.checked_add(len)?)
}

fn u32_to_usize(v: u32) -> usize {
    // u32 always fits in usize on the 32- and 64-bit targets we build for.
    v as usize
}

impl<'a> CacheView<'a> {
    /// Checks `bytes` as a whole (magic, version, length, CRC, every section
    /// bound and size) and returns a view, or why the file is unusable.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, CacheError> {
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
        let field = |off| read_u32(bytes, off).ok_or(CacheError::Corrupt("header out of bounds"));
        let version = field(H_VERSION)?;
        if version != FORMAT_VERSION {
            return Err(CacheError::UnsupportedVersion(version));
        }
        let file_len =
            read_u64(bytes, H_FILE_LEN).ok_or(CacheError::Corrupt("header out of bounds"))?;
        if file_len != bytes.len() as u64 {
            return Err(CacheError::LengthMismatch {
                expected: file_len,
                actual: bytes.len() as u64,
            });
        }
        let stored_crc = field(H_CRC)?;
        let body = bytes
            .get(CRC_START..)
            .ok_or(CacheError::Corrupt("header out of bounds"))?;
        if crc32fast::hash(body) != stored_crc {
            return Err(CacheError::ChecksumMismatch);
        }

        let section_count = u32_to_usize(field(H_SECTION_COUNT)?);
        if !(KNOWN_SECTIONS..=MAX_SECTIONS).contains(&section_count) {
            return Err(CacheError::Corrupt("bad section count"));
        }
        let header_len = u32_to_usize(field(H_HEADER_LEN)?);
        if header_len != HEADER_FIXED_LEN + section_count * SECTION_ENTRY_LEN
            || header_len > bytes.len()
        {
            return Err(CacheError::Corrupt("bad header length"));
        }
        if field(H_FLAGS)? != 0 {
            return Err(CacheError::Corrupt("unknown header flags"));
        }
        let mut sections = [(0usize, 0usize); KNOWN_SECTIONS];
        for (i, sec) in sections.iter_mut().enumerate() {
            let entry = HEADER_FIXED_LEN + i * SECTION_ENTRY_LEN;
            let off = u32_to_usize(field(entry)?);
            let len = u32_to_usize(field(entry + 4)?);
            let end = off
                .checked_add(len)
                .ok_or(CacheError::Corrupt("section out of bounds"))?;
            if off < header_len || end > bytes.len() {
                return Err(CacheError::Corrupt("section out of bounds"));
            }
            *sec = (off, len);
        }
        let user_count = u32_to_usize(field(H_USER_COUNT)?);
        let group_count = u32_to_usize(field(H_GROUP_COUNT)?);
        let sized = |sec: usize, count: usize, item: usize| {
            let (_, len) = sections.get(sec).copied().unwrap_or_default();
            count.checked_mul(item) == Some(len)
        };
        if !sized(SEC_USERS, user_count, USER_RECORD_LEN)
            || !sized(SEC_USER_IDS, user_count, ID_ENTRY_LEN)
            || !sized(SEC_GROUPS, group_count, GROUP_RECORD_LEN)
            || !sized(SEC_GROUP_IDS, group_count, ID_ENTRY_LEN)
        {
            return Err(CacheError::Corrupt(
                "section size does not match the counts",
            ));
        }
        for (sec, count) in [(SEC_USER_NAMES, user_count), (SEC_GROUP_NAMES, group_count)] {
            let (_, len) = sections.get(sec).copied().unwrap_or_default();
            let slots = len / HASH_SLOT_LEN;
            if len % HASH_SLOT_LEN != 0 || !slots.is_power_of_two() || slots <= count {
                return Err(CacheError::Corrupt("bad hash table size"));
            }
        }
        let (_, members_len) = sections.get(SEC_MEMBERS).copied().unwrap_or_default();
        let (_, gids_len) = sections.get(SEC_GIDS).copied().unwrap_or_default();
        if members_len % STR_REF_LEN != 0 || gids_len % GID_LEN != 0 {
            return Err(CacheError::Corrupt("bad list section size"));
        }
        let source = (field(H_SOURCE)?, field(H_SOURCE + 4)?);
        let layout = Layout {
            addr: bytes.as_ptr() as usize,
            len: bytes.len(),
            sections,
            user_count,
            group_count,
            hash_seed: field(H_HASH_SEED)?,
            generated_at: i64::from_le_bytes(
                read_u64(bytes, H_GENERATED_AT)
                    .ok_or(CacheError::Corrupt("header out of bounds"))?
                    .to_le_bytes(),
            ),
            source,
        };
        Self::with_layout(bytes, layout)
    }

    /// The layout of this view, to rebuild it later with
    /// [`with_layout`](Self::with_layout) without checking the CRC again.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Rebuilds a view of bytes already checked by [`parse`](Self::parse).
    /// Refuses any other memory than the one that was parsed (address and
    /// length must match). Every lookup still checks what it follows.
    pub fn with_layout(bytes: &'a [u8], layout: Layout) -> Result<Self, CacheError> {
        if bytes.as_ptr() as usize != layout.addr || bytes.len() != layout.len {
            return Err(CacheError::Corrupt("layout does not belong to these bytes"));
        }
        let sec = |i: usize| -> Result<&'a [u8], CacheError> {
            let (off, len) = layout
                .sections
                .get(i)
                .copied()
                .ok_or(CacheError::Corrupt("no such section"))?;
            bytes
                .get(
                    off..off
                        .checked_add(len)
                        .ok_or(CacheError::Corrupt("section out of bounds"))?,
                )
                .ok_or(CacheError::Corrupt("section out of bounds"))
        };
        Ok(CacheView {
            layout,
            strings: sec(SEC_STRINGS)?,
            users: sec(SEC_USERS)?,
            user_names: sec(SEC_USER_NAMES)?,
            user_ids: sec(SEC_USER_IDS)?,
            groups: sec(SEC_GROUPS)?,
            group_names: sec(SEC_GROUP_NAMES)?,
            group_ids: sec(SEC_GROUP_IDS)?,
            members: sec(SEC_MEMBERS)?,
            gids: sec(SEC_GIDS)?,
        })
    }

    /// When the data was fetched (seconds since the Unix epoch).
    pub fn generated_at(&self) -> i64 {
        self.layout.generated_at
    }

    /// The server the data came from.
    pub fn source(&self) -> Result<&'a str, CacheError> {
        let (off, len) = (
            u32_to_usize(self.layout.source.0),
            u32_to_usize(self.layout.source.1),
        );
        let raw = off
            .checked_add(len)
            .and_then(|end| self.strings.get(off..end))
            .ok_or(CacheError::Corrupt("source out of bounds"))?;
        std::str::from_utf8(raw).map_err(|_| CacheError::Corrupt("source is not UTF-8"))
    }

    pub fn user_count(&self) -> usize {
        self.layout.user_count
    }

    pub fn group_count(&self) -> usize {
        self.layout.group_count
    }

    /// The user at `index` in enumeration order; `Ok(None)` past the end.
    pub fn user_at(&self, index: usize) -> Result<Option<UserRecord<'a>>, CacheError> {
        if index >= self.layout.user_count {
            return Ok(None);
        }
        self.read_user(index).map(Some)
    }

    /// The group at `index` in enumeration order; `Ok(None)` past the end.
    pub fn group_at(&self, index: usize) -> Result<Option<GroupRecord<'a>>, CacheError> {
        if index >= self.layout.group_count {
            return Ok(None);
        }
        self.read_group(index).map(Some)
    }

    fn read_user(&self, index: usize) -> Result<UserRecord<'a>, CacheError> {
        const BAD: CacheError = CacheError::Corrupt("user record out of bounds");
        let start = index.checked_mul(USER_RECORD_LEN).ok_or(BAD)?;
        let rec = sub_slice(self.users, start, 1, USER_RECORD_LEN).ok_or(BAD)?;
        let s = |at| resolve(self.strings, rec, at).ok_or(BAD);
        let n = |at| read_u32(rec, at).ok_or(BAD);
        let first_gid = u32_to_usize(n(44)?);
        let gid_count = u32_to_usize(n(48)?);
        let gid_start = first_gid.checked_mul(GID_LEN).ok_or(BAD)?;
        Ok(UserRecord {
            name: s(0)?,
            uid: n(8)?,
            gid: n(12)?,
            gecos: s(16)?,
            home: s(24)?,
            shell: s(32)?,
            locked: n(40)? & USER_FLAG_LOCKED != 0,
            groups: Gids {
                raw: sub_slice(self.gids, gid_start, gid_count, GID_LEN).ok_or(BAD)?,
            },
        })
    }

    fn read_group(&self, index: usize) -> Result<GroupRecord<'a>, CacheError> {
        const BAD: CacheError = CacheError::Corrupt("group record out of bounds");
        let start = index.checked_mul(GROUP_RECORD_LEN).ok_or(BAD)?;
        let rec = sub_slice(self.groups, start, 1, GROUP_RECORD_LEN).ok_or(BAD)?;
        let n = |at| read_u32(rec, at).ok_or(BAD);
        let first = u32_to_usize(n(12)?);
        let count = u32_to_usize(n(16)?);
        let refs_start = first.checked_mul(STR_REF_LEN).ok_or(BAD)?;
        Ok(GroupRecord {
            name: resolve(self.strings, rec, 0).ok_or(BAD)?,
            gid: n(8)?,
            members: Members {
                refs: sub_slice(self.members, refs_start, count, STR_REF_LEN).ok_or(BAD)?,
                strings: self.strings,
            },
        })
    }

    /// Probes a name hash table; calls `matches(index)` for each candidate
    /// whose hash equals. Bounded by the table size even if it is full.
    fn probe<T>(
        &self,
        table: &[u8],
        name: &[u8],
        mut matches: impl FnMut(usize) -> Result<Option<T>, CacheError>,
    ) -> Result<Option<T>, CacheError> {
        let slots = table.len() / HASH_SLOT_LEN;
        if slots == 0 {
            return Ok(None);
        }
        let mask = slots - 1;
        let hash = name_hash(self.layout.hash_seed, name);
        let mut slot = hash as usize & mask;
        for _ in 0..slots {
            let at = slot * HASH_SLOT_LEN;
            let stored_hash =
                read_u32(table, at).ok_or(CacheError::Corrupt("hash slot out of bounds"))?;
            let index_plus_one =
                read_u32(table, at + 4).ok_or(CacheError::Corrupt("hash slot out of bounds"))?;
            if index_plus_one == 0 {
                return Ok(None);
            }
            if stored_hash == hash {
                if let Some(found) = matches(u32_to_usize(index_plus_one) - 1)? {
                    return Ok(Some(found));
                }
            }
            slot = (slot + 1) & mask;
        }
        Ok(None)
    }

    pub fn user_by_name(&self, name: &[u8]) -> Result<Option<UserRecord<'a>>, CacheError> {
        self.probe(self.user_names, name, |index| {
            let user = self
                .user_at(index)?
                .ok_or(CacheError::Corrupt("user index out of range"))?;
            Ok((user.name == name).then_some(user))
        })
    }

    pub fn group_by_name(&self, name: &[u8]) -> Result<Option<GroupRecord<'a>>, CacheError> {
        self.probe(self.group_names, name, |index| {
            let group = self
                .group_at(index)?
                .ok_or(CacheError::Corrupt("group index out of range"))?;
            Ok((group.name == name).then_some(group))
        })
    }

    /// Binary search in a sorted `(id, index)` array.
    fn find_id(table: &[u8], id: u32) -> Result<Option<usize>, CacheError> {
        const BAD: CacheError = CacheError::Corrupt("id index out of bounds");
        let (mut low, mut high) = (0usize, table.len() / ID_ENTRY_LEN);
        while low < high {
            let mid = low + (high - low) / 2;
            let at = mid * ID_ENTRY_LEN;
            let here = read_u32(table, at).ok_or(BAD)?;
            match here.cmp(&id) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => {
                    return Ok(Some(u32_to_usize(read_u32(table, at + 4).ok_or(BAD)?)));
                }
            }
        }
        Ok(None)
    }

    pub fn user_by_uid(&self, uid: u32) -> Result<Option<UserRecord<'a>>, CacheError> {
        let Some(index) = Self::find_id(self.user_ids, uid)? else {
            return Ok(None);
        };
        let user = self
            .user_at(index)?
            .ok_or(CacheError::Corrupt("user index out of range"))?;
        if user.uid != uid {
            return Err(CacheError::Corrupt("uid index points to another user"));
        }
        Ok(Some(user))
    }

    pub fn group_by_gid(&self, gid: u32) -> Result<Option<GroupRecord<'a>>, CacheError> {
        let Some(index) = Self::find_id(self.group_ids, gid)? else {
            return Ok(None);
        };
        let group = self
            .group_at(index)?
            .ok_or(CacheError::Corrupt("group index out of range"))?;
        if group.gid != gid {
            return Err(CacheError::Corrupt("gid index points to another group"));
        }
        Ok(Some(group))
    }

    /// The supplementary gids of user `name`; `Ok(None)` for an unknown user.
    pub fn groups_of_user(&self, name: &[u8]) -> Result<Option<Gids<'a>>, CacheError> {
        Ok(self.user_by_name(name)?.map(|u| u.groups))
    }

    /// Decodes the whole file into owned data (for status output and tests).
    /// Users with an empty group list get no `user_groups` entry.
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

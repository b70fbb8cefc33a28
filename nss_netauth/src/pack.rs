//! Laying out an entry's strings and pointer arrays in the caller's buffer.
//!
//! Safe code only: the buffer is a `&mut [MaybeUninit<u8>]` (glibc hands us
//! uninitialised memory), positions are offsets, and the pointer values
//! stored in `gr_mem` are computed from the buffer's own address. The C
//! boundary turns the returned offsets into pointers.

use netauth_cache::{CacheError, GroupRecord, UserRecord};
use std::mem::{align_of, size_of, MaybeUninit};

/// Why an entry could not be packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackError {
    /// The caller's buffer is too small: `TRYAGAIN` with `ERANGE`.
    TooSmall,
    /// The cache holds something unusable (a string with a NUL, a bad
    /// reference): `UNAVAIL`.
    Corrupt(CacheError),
}

impl From<CacheError> for PackError {
    fn from(e: CacheError) -> Self {
        PackError::Corrupt(e)
    }
}

/// Fills a buffer front to back.
pub struct Packer<'b> {
    buf: &'b mut [MaybeUninit<u8>],
    used: usize,
}

/// The password field of every entry: the real one is never in NSS. `*`,
/// as SSSD serves, not `x`: `x` tells pam_unix to look for a shadow entry,
/// and without one its account step refuses the user.
const PASSWORD_PLACEHOLDER: &[u8] = b"*";

impl<'b> Packer<'b> {
    pub fn new(buf: &'b mut [MaybeUninit<u8>]) -> Self {
        Packer { buf, used: 0 }
    }

    fn base(&self) -> usize {
        self.buf.as_ptr() as usize
    }

    /// Reserves `len` bytes, returns their offset and the bytes.
    fn take(&mut self, len: usize) -> Result<(usize, &mut [MaybeUninit<u8>]), PackError> {
        let start = self.used;
        let end = start.checked_add(len).ok_or(PackError::TooSmall)?;
        let space = self.buf.get_mut(start..end).ok_or(PackError::TooSmall)?;
        self.used = end;
        Ok((start, space))
    }

    /// Copies `s` plus a NUL terminator; returns its offset.
    ///
    /// `s` holds no NUL (a truncated name would be a wrong answer): the
    /// reader refuses every entry with one before it returns it, as the
    /// writer never writes one.
    pub fn c_string(&mut self, s: &[u8]) -> Result<usize, PackError> {
        let (offset, space) = self.take(s.len() + 1)?;
        let (body, terminator) = space.split_at_mut(s.len());
        // A plain zip of equal lengths: compiled to a copy.
        for (dst, &src) in body.iter_mut().zip(s) {
            dst.write(src);
        }
        for nul in terminator {
            nul.write(0);
        }
        Ok(offset)
    }

    /// Copies `s` as it is (a member list, whose NULs are in it); returns
    /// its offset.
    pub fn bytes(&mut self, s: &[u8]) -> Result<usize, PackError> {
        let (offset, space) = self.take(s.len())?;
        for (dst, &src) in space.iter_mut().zip(s) {
            dst.write(src);
        }
        Ok(offset)
    }

    /// Skips to the next address aligned for a pointer.
    fn align_for_pointer(&mut self) -> Result<(), PackError> {
        let addr = self
            .base()
            .checked_add(self.used)
            .ok_or(PackError::TooSmall)?;
        let pad = addr.next_multiple_of(align_of::<*mut u8>()) - addr;
        self.take(pad).map(|_| ())
    }

    /// Writes a NULL-terminated array of pointers to the strings at
    /// `offsets` (earlier results of [`c_string`](Self::c_string)), aligned
    /// for pointers; returns the array's offset.
    pub fn pointer_array(
        &mut self,
        count: usize,
        offsets: impl Iterator<Item = usize>,
    ) -> Result<usize, PackError> {
        self.align_for_pointer()?;
        let slots = count.checked_add(1).ok_or(PackError::TooSmall)?;
        let bytes = slots
            .checked_mul(size_of::<usize>())
            .ok_or(PackError::TooSmall)?;
        let base = self.base();
        let (start, space) = self.take(bytes)?;
        // One slot per name, then the NULL; a name missing from `offsets`
        // leaves a NULL too, never an unwritten slot.
        let mut offsets = offsets.take(count);
        for slot in space.chunks_exact_mut(size_of::<usize>()) {
            let value = offsets.next().map_or(0, |off| base.wrapping_add(off));
            for (dst, src) in slot.iter_mut().zip(value.to_ne_bytes()) {
                dst.write(src);
            }
        }
        Ok(start)
    }
}

/// Offsets of a packed passwd entry's strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedUser {
    pub name: usize,
    pub passwd: usize,
    pub gecos: usize,
    pub dir: usize,
    pub shell: usize,
}

/// Offsets of a packed group entry: its strings and the `gr_mem` array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedGroup {
    pub name: usize,
    pub passwd: usize,
    pub members: usize,
}

pub fn pack_user(
    buf: &mut [MaybeUninit<u8>],
    user: &UserRecord<'_>,
) -> Result<PackedUser, PackError> {
    let mut p = Packer::new(buf);
    Ok(PackedUser {
        name: p.c_string(user.name)?,
        passwd: p.c_string(PASSWORD_PLACEHOLDER)?,
        gecos: p.c_string(user.gecos)?,
        dir: p.c_string(user.home)?,
        shell: p.c_string(user.shell)?,
    })
}

pub fn pack_group(
    buf: &mut [MaybeUninit<u8>],
    group: &GroupRecord<'_>,
) -> Result<PackedGroup, PackError> {
    let mut p = Packer::new(buf);
    let name = p.c_string(group.name)?;
    let passwd = p.c_string(PASSWORD_PLACEHOLDER)?;
    // The members are stored as they are laid out here, `name NUL` one
    // after the other, with their lengths beside: one check of the whole
    // list, one copy, then the pointers to where each name starts.
    let list = group.members.joined()?;
    let count = group.members.count_left();
    let first = p.bytes(list)?;
    let offsets = group.members.starts().map(|start| first + start);
    let members = p.pointer_array(count, offsets)?;
    Ok(PackedGroup {
        name,
        passwd,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netauth_cache::{encode, CacheContent, CacheView, UnixGroup, UnixUser};
    use std::collections::BTreeMap;

    fn cache() -> Vec<u8> {
        let content = CacheContent {
            users: vec![UnixUser {
                name: "alice".into(),
                uid: 1001,
                gid: 2001,
                gecos: "Alice".into(),
                home: "/home/alice".into(),
                shell: "/bin/sh".into(),
                locked: false,
            }],
            groups: vec![
                UnixGroup {
                    name: "staff".into(),
                    gid: 2001,
                    members: vec!["alice".into(), "bob".into(), "carol".into()],
                },
                UnixGroup {
                    name: "nobody-here".into(),
                    gid: 2002,
                    members: vec![],
                },
            ],
            user_groups: BTreeMap::new(),
            user_keys: Default::default(),
            generated_at: 0,
            source: String::new(),
        };
        encode(&content).unwrap()
    }

    /// A buffer whose every byte is initialised, so tests can read it back.
    fn buffer(len: usize) -> Vec<MaybeUninit<u8>> {
        vec![MaybeUninit::new(0xa5); len]
    }

    fn read(buf: &[MaybeUninit<u8>]) -> Vec<u8> {
        // SAFETY: every element was created with MaybeUninit::new in `buffer`.
        buf.iter().map(|b| unsafe { b.assume_init() }).collect()
    }

    fn c_str_at(bytes: &[u8], offset: usize) -> &[u8] {
        let rest = &bytes[offset..];
        &rest[..rest.iter().position(|&b| b == 0).unwrap()]
    }

    #[test]
    fn user_fits_exactly_or_is_too_small() {
        let bytes = cache();
        let view = CacheView::parse(&bytes).unwrap();
        let user = view.user_by_name(b"alice").unwrap().unwrap();
        let needed = "alice x Alice /home/alice /bin/sh ".len();
        for len in 0..needed {
            let mut buf = buffer(len);
            assert_eq!(
                pack_user(&mut buf, &user),
                Err(PackError::TooSmall),
                "len {len}"
            );
        }
        let mut buf = buffer(needed);
        let packed = pack_user(&mut buf, &user).unwrap();
        let bytes = read(&buf);
        assert_eq!(c_str_at(&bytes, packed.name), b"alice");
        assert_eq!(c_str_at(&bytes, packed.passwd), b"*");
        assert_eq!(c_str_at(&bytes, packed.gecos), b"Alice");
        assert_eq!(c_str_at(&bytes, packed.dir), b"/home/alice");
        assert_eq!(c_str_at(&bytes, packed.shell), b"/bin/sh");
    }

    #[test]
    fn group_members_array_is_aligned_and_points_into_the_buffer() {
        let bytes = cache();
        let view = CacheView::parse(&bytes).unwrap();
        for (name, members) in [
            ("staff", vec!["alice", "bob", "carol"]),
            ("nobody-here", vec![]),
        ] {
            let group = view.group_by_name(name.as_bytes()).unwrap().unwrap();
            // Shift the buffer start so every misalignment is tried.
            for shift in 0..8 {
                let mut fitted = None;
                for len in 0..120 {
                    let mut storage = buffer(len + 8);
                    let buf = &mut storage[shift..shift + len];
                    match pack_group(buf, &group) {
                        Err(PackError::TooSmall) => {
                            assert!(fitted.is_none(), "smaller after fitting")
                        }
                        Err(e) => panic!("{e:?}"),
                        Ok(packed) => {
                            fitted.get_or_insert(len);
                            let base = buf.as_ptr() as usize;
                            let bytes = read(buf);
                            assert_eq!(c_str_at(&bytes, packed.name), name.as_bytes());
                            assert_eq!((base + packed.members) % align_of::<*mut u8>(), 0);
                            let ptr_size = size_of::<usize>();
                            for i in 0..=members.len() {
                                let at = packed.members + i * ptr_size;
                                let value = usize::from_ne_bytes(
                                    bytes[at..at + ptr_size].try_into().unwrap(),
                                );
                                if i == members.len() {
                                    assert_eq!(value, 0, "array not NULL-terminated");
                                } else {
                                    assert_eq!(
                                        c_str_at(&bytes, value - base),
                                        members[i].as_bytes()
                                    );
                                }
                            }
                            assert!(packed.members + (members.len() + 1) * ptr_size <= len);
                        }
                    }
                }
                assert!(fitted.is_some());
            }
        }
    }

    /// Strings are copied with their terminator, one after the other. A
    /// string holding a NUL never gets here: the reader refuses the entry
    /// (its tests, `entries_the_writer_never_writes_are_refused_despite_right_checksums`,
    /// and the e2e test of a crafted cache cover it).
    #[test]
    fn strings_are_copied_with_their_terminator() {
        let mut storage = buffer(64);
        let mut p = Packer::new(&mut storage);
        assert_eq!(p.c_string(b"").unwrap(), 0);
        assert_eq!(p.c_string(b"ab").unwrap(), 1);
        assert_eq!(p.c_string(b"c").unwrap(), 4);
        assert_eq!(read(&storage[..6]), b"\0ab\0c\0");
    }
}

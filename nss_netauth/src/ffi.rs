//! The glibc NSS entry points: the only unsafe code of the module.
//!
//! Each entry point converts its raw arguments, runs the safe lookup inside
//! `catch_unwind` (a panic becomes `UNAVAIL`, never unwinds into C), and
//! writes the result through the caller's pointers.

use crate::enumerate::{self, Step};
use crate::pack::{pack_group, pack_user, PackError, PackedGroup, PackedUser};
use crate::source::{self, Unavailable, SHIPPED};
use netauth_cache::{CacheError, CacheView, GroupRecord, UserRecord};
use std::ffi::{c_char, c_int, c_long, CStr, CString};
use std::mem::MaybeUninit;
use std::panic::{catch_unwind, AssertUnwindSafe};

// enum nss_status from <nss.h>
const NSS_STATUS_TRYAGAIN: c_int = -2;
const NSS_STATUS_UNAVAIL: c_int = -1;
const NSS_STATUS_NOTFOUND: c_int = 0;
const NSS_STATUS_SUCCESS: c_int = 1;

/// What a call ends with: an NSS status and the errno that goes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    NotFound,
    /// Buffer too small (`ERANGE`) or out of memory (`ENOMEM`).
    TryAgain(c_int),
    Unavailable(c_int),
}

impl From<Unavailable> for Outcome {
    fn from(_: Unavailable) -> Self {
        Outcome::Unavailable(libc::ENOENT)
    }
}

impl From<PackError> for Outcome {
    fn from(e: PackError) -> Self {
        match e {
            PackError::TooSmall => Outcome::TryAgain(libc::ERANGE),
            PackError::Corrupt(_) => Outcome::Unavailable(libc::ENOENT),
        }
    }
}

/// Runs `body` so that no panic escapes, stores the errno, returns the status.
fn guarded(errnop: *mut c_int, body: impl FnOnce() -> Outcome) -> c_int {
    let outcome =
        catch_unwind(AssertUnwindSafe(body)).unwrap_or(Outcome::Unavailable(libc::EAGAIN));
    let (status, errno) = match outcome {
        Outcome::Success => return NSS_STATUS_SUCCESS,
        Outcome::NotFound => (NSS_STATUS_NOTFOUND, libc::ENOENT),
        Outcome::TryAgain(errno) => (NSS_STATUS_TRYAGAIN, errno),
        Outcome::Unavailable(errno) => (NSS_STATUS_UNAVAIL, errno),
    };
    if !errnop.is_null() {
        // SAFETY: glibc passes a valid pointer to the caller's errno.
        unsafe { *errnop = errno };
    }
    status
}

/// Writes `message` to syslog (LOG_AUTH, LOG_ERR).
pub fn log_error(message: &str) {
    let Ok(text) = CString::new(message.replace('\0', "?")) else {
        return;
    };
    // SAFETY: the format is a literal "%s" and `text` is a valid C string
    // that outlives the call.
    unsafe {
        libc::syslog(
            libc::LOG_AUTH | libc::LOG_ERR,
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// The caller's buffer as a slice of possibly uninitialised bytes.
///
/// # Safety
/// `buffer` must be valid for writes of `buflen` bytes for the lifetime 'b
/// and not be accessed otherwise meanwhile (the NSS contract).
unsafe fn caller_buffer<'b>(
    buffer: *mut c_char,
    buflen: libc::size_t,
) -> &'b mut [MaybeUninit<u8>] {
    if buffer.is_null() {
        return &mut [];
    }
    let len = buflen.min(isize::MAX as usize);
    // SAFETY: guaranteed by the caller (see above); MaybeUninit<u8> has the
    // layout of a byte and accepts any content, initialised or not.
    unsafe { std::slice::from_raw_parts_mut(buffer.cast::<MaybeUninit<u8>>(), len) }
}

/// The name argument as bytes, or `None` for a NULL pointer.
///
/// # Safety
/// `name` must be NULL or point to a NUL-terminated string.
unsafe fn name_arg<'a>(name: *const c_char) -> Option<&'a [u8]> {
    if name.is_null() {
        return None;
    }
    // SAFETY: a non-NULL name is a C string (NSS contract).
    Some(unsafe { CStr::from_ptr(name) }.to_bytes())
}

/// Fills `result` with the packed entry.
///
/// # Safety
/// `result` must be NULL or valid for writes; `buffer` must be the buffer
/// the entry was packed into.
unsafe fn store_user(
    result: *mut libc::passwd,
    buffer: *mut c_char,
    p: PackedUser,
    uid: u32,
    gid: u32,
) -> Outcome {
    if result.is_null() {
        return Outcome::Unavailable(libc::EINVAL);
    }
    let at = |offset: usize| buffer.wrapping_add(offset);
    // SAFETY: `result` is a valid, writable struct passwd (NSS contract);
    // the pointers point into the caller's buffer where the strings are.
    unsafe {
        (*result).pw_name = at(p.name);
        (*result).pw_passwd = at(p.passwd);
        (*result).pw_uid = uid;
        (*result).pw_gid = gid;
        (*result).pw_gecos = at(p.gecos);
        (*result).pw_dir = at(p.dir);
        (*result).pw_shell = at(p.shell);
    }
    Outcome::Success
}

/// Fills `result` with the packed group.
///
/// # Safety
/// As for [`store_user`].
unsafe fn store_group(
    result: *mut libc::group,
    buffer: *mut c_char,
    p: PackedGroup,
    gid: u32,
) -> Outcome {
    if result.is_null() {
        return Outcome::Unavailable(libc::EINVAL);
    }
    let at = |offset: usize| buffer.wrapping_add(offset);
    // SAFETY: `result` is a valid, writable struct group; gr_mem points to
    // the pointer-aligned, NULL-terminated array packed into the buffer.
    unsafe {
        (*result).gr_name = at(p.name);
        (*result).gr_passwd = at(p.passwd);
        (*result).gr_gid = gid;
        (*result).gr_mem = at(p.members).cast::<*mut c_char>();
    }
    Outcome::Success
}

type Packed<T> = Result<(T, u32, u32), Outcome>;

/// Looks up one user and packs it into `buf`.
fn find_user(
    buf: &mut [MaybeUninit<u8>],
    find: impl for<'v> FnOnce(&CacheView<'v>) -> Result<Option<UserRecord<'v>>, CacheError>,
) -> Packed<PackedUser> {
    source::with_view(|view| match find(view) {
        Ok(Some(user)) => Ok((pack_user(buf, &user)?, user.uid, user.gid)),
        Ok(None) => Err(Outcome::NotFound),
        Err(_) => Err(Outcome::Unavailable(libc::ENOENT)),
    })?
}

/// Looks up one group and packs it into `buf`.
fn find_group(
    buf: &mut [MaybeUninit<u8>],
    find: impl for<'v> FnOnce(&CacheView<'v>) -> Result<Option<GroupRecord<'v>>, CacheError>,
) -> Packed<PackedGroup> {
    source::with_view(|view| match find(view) {
        Ok(Some(group)) => Ok((pack_group(buf, &group)?, group.gid, 0)),
        Ok(None) => Err(Outcome::NotFound),
        Err(_) => Err(Outcome::Unavailable(libc::ENOENT)),
    })?
}

fn outcome_of(result: Result<Outcome, Outcome>) -> Outcome {
    result.unwrap_or_else(|o| o)
}

/// # Safety
/// glibc NSS contract: `name` a C string, `result` a writable struct
/// passwd, `buffer` writable for `buflen` bytes, `errnop` writable.
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getpwnam_r(
    name: *const c_char,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let Some(name) = (unsafe { name_arg(name) }) else {
            return Outcome::NotFound;
        };
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        outcome_of(
            find_user(buf, |v| v.user_by_name(name)).map(|(p, uid, gid)| {
                // SAFETY: the entry was packed into `buffer`.
                unsafe { store_user(result, buffer, p, uid, gid) }
            }),
        )
    })
}

/// # Safety
/// glibc NSS contract, as for [`_nss_netauth_getpwnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getpwuid_r(
    uid: libc::uid_t,
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        outcome_of(find_user(buf, |v| v.user_by_uid(uid)).map(|(p, uid, gid)| {
            // SAFETY: the entry was packed into `buffer`.
            unsafe { store_user(result, buffer, p, uid, gid) }
        }))
    })
}

/// # Safety
/// glibc NSS contract: `name` a C string, `result` a writable struct group,
/// `buffer` writable for `buflen` bytes, `errnop` writable.
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getgrnam_r(
    name: *const c_char,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let Some(name) = (unsafe { name_arg(name) }) else {
            return Outcome::NotFound;
        };
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        outcome_of(
            find_group(buf, |v| v.group_by_name(name)).map(|(p, gid, _)| {
                // SAFETY: the entry was packed into `buffer`.
                unsafe { store_group(result, buffer, p, gid) }
            }),
        )
    })
}

/// # Safety
/// glibc NSS contract, as for [`_nss_netauth_getgrnam_r`].
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getgrgid_r(
    gid: libc::gid_t,
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        outcome_of(find_group(buf, |v| v.group_by_gid(gid)).map(|(p, gid, _)| {
            // SAFETY: the entry was packed into `buffer`.
            unsafe { store_group(result, buffer, p, gid) }
        }))
    })
}

fn start_outcome(r: Result<(), Unavailable>) -> Outcome {
    match r {
        Ok(()) => Outcome::Success,
        Err(e) => e.into(),
    }
}

/// `setpwent`; `stayopen` has no meaning for a mapped file.
#[no_mangle]
pub extern "C" fn _nss_netauth_setpwent(_stayopen: c_int) -> c_int {
    guarded(std::ptr::null_mut(), || {
        start_outcome(enumerate::start(
            &enumerate::PASSWD,
            &SHIPPED,
            source::snapshot,
        ))
    })
}

#[no_mangle]
pub extern "C" fn _nss_netauth_endpwent() -> c_int {
    guarded(std::ptr::null_mut(), || {
        enumerate::stop(&enumerate::PASSWD);
        Outcome::Success
    })
}

#[no_mangle]
pub extern "C" fn _nss_netauth_setgrent(_stayopen: c_int) -> c_int {
    guarded(std::ptr::null_mut(), || {
        start_outcome(enumerate::start(
            &enumerate::GROUP,
            &SHIPPED,
            source::snapshot,
        ))
    })
}

#[no_mangle]
pub extern "C" fn _nss_netauth_endgrent() -> c_int {
    guarded(std::ptr::null_mut(), || {
        enumerate::stop(&enumerate::GROUP);
        Outcome::Success
    })
}

fn step_outcome(step: Step<Outcome>) -> Outcome {
    match step {
        Step::Entry => Outcome::Success,
        Step::End => Outcome::NotFound,
        Step::Failed(outcome) => outcome,
        Step::Unavailable => Outcome::Unavailable(libc::ENOENT),
    }
}

/// # Safety
/// glibc NSS contract: `result` a writable struct passwd, `buffer` writable
/// for `buflen` bytes, `errnop` writable.
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getpwent_r(
    result: *mut libc::passwd,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        step_outcome(enumerate::step(
            &enumerate::PASSWD,
            &SHIPPED,
            source::snapshot,
            |view, from| {
                let Some((index, user)) = next_entry(from, |i| view.user_at(i))? else {
                    return Ok(None);
                };
                let packed = pack_user(buf, &user)?;
                // SAFETY: the entry was packed into `buffer`.
                match unsafe { store_user(result, buffer, packed, user.uid, user.gid) } {
                    Outcome::Success => Ok(Some(index + 1)),
                    other => Err(other),
                }
            },
        ))
    })
}

/// # Safety
/// glibc NSS contract: `result` a writable struct group, `buffer` writable
/// for `buflen` bytes, `errnop` writable.
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_getgrent_r(
    result: *mut libc::group,
    buffer: *mut c_char,
    buflen: libc::size_t,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let buf = unsafe { caller_buffer(buffer, buflen) };
        step_outcome(enumerate::step(
            &enumerate::GROUP,
            &SHIPPED,
            source::snapshot,
            |view, from| {
                let Some((index, group)) = next_entry(from, |i| view.group_at(i))? else {
                    return Ok(None);
                };
                let packed = pack_group(buf, &group)?;
                // SAFETY: the entry was packed into `buffer`.
                match unsafe { store_group(result, buffer, packed, group.gid) } {
                    Outcome::Success => Ok(Some(index + 1)),
                    other => Err(other),
                }
            },
        ))
    })
}

/// The first entry at or after `from` that the reader does not refuse as
/// unsafe (skipped: see the `enumerate` module), with its index; `None` past
/// the end. Any other error makes the walk unavailable.
fn next_entry<T>(
    from: usize,
    entry_at: impl Fn(usize) -> Result<Option<T>, CacheError>,
) -> Result<Option<(usize, T)>, Outcome> {
    let mut index = from;
    loop {
        match entry_at(index) {
            Ok(Some(entry)) => return Ok(Some((index, entry))),
            Ok(None) => return Ok(None),
            Err(CacheError::UnsafeEntry(_)) => index = index.saturating_add(1),
            Err(_) => return Err(Outcome::Unavailable(libc::ENOENT)),
        }
    }
}

/// The size to grow the gid array to when it is full, or `None` when it may
/// not grow (`limit` > 0 is the caller's maximum).
fn grown_size(size: c_long, limit: c_long) -> Option<c_long> {
    let doubled = size.checked_mul(2)?.max(8);
    if limit > 0 {
        (size < limit).then_some(doubled.min(limit))
    } else {
        Some(doubled)
    }
}

/// glibc's gid array during `initgroups_dyn`: `groups` is NULL (with
/// `capacity` 0) or a malloc'd array of `capacity` gids whose first `used`
/// are set; `limit` > 0 caps its growth.
struct GidArray {
    groups: *mut libc::gid_t,
    used: c_long,
    capacity: c_long,
    limit: c_long,
}

impl GidArray {
    /// The gids set so far.
    fn set(&self) -> &[libc::gid_t] {
        match usize::try_from(self.used) {
            // SAFETY: the first `used` entries of the array are set (the
            // type's invariant; `used` ≤ `capacity`, checked at entry and
            // kept by `append_new`).
            Ok(n) if !self.groups.is_null() => unsafe {
                std::slice::from_raw_parts(self.groups, n)
            },
            _ => &[],
        }
    }

    /// Appends each listed gid that is not `skip` (the primary group glibc
    /// adds itself) and not in the array yet, growing it as glibc expects.
    /// A full array that may not grow ends the list (success: glibc asked
    /// for at most `limit`); a failed `realloc` is TRYAGAIN with ENOMEM.
    fn append_new(&mut self, listed: impl Iterator<Item = u32>, skip: u32) -> Outcome {
        for gid in listed {
            if gid == skip || self.set().contains(&gid) {
                continue;
            }
            if self.used == self.capacity {
                match self.grow() {
                    Some(true) => {}
                    Some(false) => return Outcome::TryAgain(libc::ENOMEM),
                    None => break,
                }
            }
            let Ok(at) = usize::try_from(self.used) else {
                break;
            };
            // SAFETY: used < capacity, and the array holds `capacity` gids.
            unsafe { self.groups.add(at).write(gid) };
            self.used += 1;
        }
        Outcome::Success
    }

    /// Doubles the array with `realloc`: `None` when it may not grow,
    /// `Some(false)` when the allocation failed (the array is unchanged).
    fn grow(&mut self) -> Option<bool> {
        let new_capacity = grown_size(self.capacity, self.limit)?;
        let bytes = usize::try_from(new_capacity)
            .ok()?
            .checked_mul(std::mem::size_of::<libc::gid_t>())?;
        // SAFETY: `groups` is NULL or the malloc'd array glibc gave us;
        // glibc frees whatever is left in *groupsp.
        let grown = unsafe { libc::realloc(self.groups.cast(), bytes) }.cast::<libc::gid_t>();
        if grown.is_null() {
            return Some(false);
        }
        self.groups = grown;
        self.capacity = new_capacity;
        Some(true)
    }
}

/// `initgroups_dyn`: appends the user's cached groups to `*groupsp`,
/// growing it with `realloc` as glibc expects.
///
/// # Safety
/// glibc NSS contract: `user` a C string; `start`, `size`, `groupsp`,
/// `errnop` writable; `*groupsp` a malloc'd array of `*size` gids of which
/// the first `*start` are set.
#[no_mangle]
pub unsafe extern "C" fn _nss_netauth_initgroups_dyn(
    user: *const c_char,
    skip_group: libc::gid_t,
    start: *mut c_long,
    size: *mut c_long,
    groupsp: *mut *mut libc::gid_t,
    limit: c_long,
    errnop: *mut c_int,
) -> c_int {
    guarded(errnop, || {
        // SAFETY: see the function's contract.
        let Some(name) = (unsafe { name_arg(user) }) else {
            return Outcome::NotFound;
        };
        if start.is_null() || size.is_null() || groupsp.is_null() {
            return Outcome::Unavailable(libc::EINVAL);
        }
        // SAFETY: the three pointers are valid (checked non-NULL; contract).
        let (used, capacity, groups) = unsafe { (*start, *size, *groupsp) };
        if used < 0 || capacity < used || (groups.is_null() && capacity > 0) {
            return Outcome::Unavailable(libc::EINVAL);
        }
        let mut array = GidArray {
            groups,
            used,
            capacity,
            limit,
        };
        let found = source::with_view(|view| match view.groups_of_user(name) {
            // Straight into glibc's array: no list of our own to allocate.
            Ok(Some(gids)) => Ok(array.append_new(gids, skip_group)),
            Ok(None) => Err(Outcome::NotFound),
            Err(_) => Err(Outcome::Unavailable(libc::ENOENT)),
        });
        let outcome = match found {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(outcome)) => return outcome,
            Err(unavailable) => return unavailable.into(),
        };
        // SAFETY: the three pointers are valid (checked above).
        unsafe {
            *groupsp = array.groups;
            *size = array.capacity;
            *start = array.used;
        }
        outcome
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_respects_the_limit() {
        assert_eq!(grown_size(0, 0), Some(8));
        assert_eq!(grown_size(16, 0), Some(32));
        assert_eq!(grown_size(16, 20), Some(20));
        assert_eq!(grown_size(20, 20), None);
        assert_eq!(grown_size(c_long::MAX, 0), None);
    }

    #[test]
    fn enumeration_skips_refused_entries_only() {
        let entries = |i: usize| match i {
            0 | 3 => Ok(Some(i)),
            1 | 2 | 4 => Err(CacheError::UnsafeEntry("crafted")),
            5 => Err(CacheError::DamagedBlock { block: 1 }),
            _ => Ok(None),
        };
        assert!(matches!(next_entry(0, entries), Ok(Some((0, 0)))));
        assert!(matches!(next_entry(1, entries), Ok(Some((3, 3)))));
        // A damaged block is no reason to skip: the walk is unavailable.
        assert!(matches!(
            next_entry(4, entries),
            Err(Outcome::Unavailable(libc::ENOENT))
        ));
        assert!(matches!(next_entry(6, entries), Ok(None)));
    }

    /// A gid array as glibc hands it over: malloc'd, `set` first.
    fn glibc_array(set: &[libc::gid_t], capacity: usize, limit: c_long) -> GidArray {
        // SAFETY: a plain allocation, filled below within its size.
        let groups = unsafe { libc::malloc(capacity.max(1) * std::mem::size_of::<libc::gid_t>()) }
            .cast::<libc::gid_t>();
        assert!(!groups.is_null());
        for (i, &gid) in set.iter().enumerate() {
            // SAFETY: i < set.len() ≤ capacity.
            unsafe { groups.add(i).write(gid) };
        }
        GidArray {
            groups,
            used: set.len() as c_long,
            capacity: capacity as c_long,
            limit,
        }
    }

    fn free(array: GidArray) {
        // SAFETY: allocated by malloc/realloc above.
        unsafe { libc::free(array.groups.cast()) };
    }

    #[test]
    fn gids_skip_primary_and_present_and_grow_the_array() {
        let mut array = glibc_array(&[5], 1, 0);
        assert_eq!(
            array.append_new([5, 6, 7, 6, 8].into_iter(), 7),
            Outcome::Success
        );
        assert_eq!(array.set(), &[5, 6, 8]);
        assert_eq!(array.capacity, 8);
        assert_eq!(array.append_new(std::iter::empty(), 1), Outcome::Success);
        assert_eq!(array.set(), &[5, 6, 8]);
        // More than one growth, every gid kept once.
        assert_eq!(
            array.append_new((100..130).chain(100..130), 0),
            Outcome::Success
        );
        assert_eq!(array.set().len(), 33);
        assert_eq!(array.capacity, 64);
        free(array);
    }

    #[test]
    fn gids_stop_at_the_limit() {
        let mut array = glibc_array(&[5], 2, 3);
        assert_eq!(
            array.append_new([6, 7, 8, 9].into_iter(), 0),
            Outcome::Success
        );
        assert_eq!(array.set(), &[5, 6, 7]);
        assert_eq!(array.capacity, 3);
        free(array);
        // An empty, NULL array grows from nothing.
        let mut array = GidArray {
            groups: std::ptr::null_mut(),
            used: 0,
            capacity: 0,
            limit: 0,
        };
        assert_eq!(array.append_new([4, 4].into_iter(), 0), Outcome::Success);
        assert_eq!(array.set(), &[4]);
        free(array);
    }

    #[test]
    fn panics_become_unavailable() {
        let mut errno = 0;
        #[allow(clippy::panic)]
        let status = guarded(&mut errno, || panic!("boom"));
        assert_eq!((status, errno), (NSS_STATUS_UNAVAIL, libc::EAGAIN));
        assert_eq!(
            guarded(std::ptr::null_mut(), || Outcome::NotFound),
            NSS_STATUS_NOTFOUND
        );
        assert_eq!(
            guarded(&mut errno, || Outcome::TryAgain(libc::ERANGE)),
            NSS_STATUS_TRYAGAIN
        );
        assert_eq!(errno, libc::ERANGE);
    }
}

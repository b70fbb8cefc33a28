//! Drives `libnss_netauth.so.2` through glibc's `_r` functions and through
//! its own entry points (dlopen), for the NSS end-to-end tests. Runs inside
//! the test namespace (see `netauth_e2e::nss::run_in_namespace`), where
//! /var/lib/netauth is a private tmpfs it may overwrite.
//!
//! ```text
//! nss_probe buffers EXPECTED      every lookup kind, buffer sizes from 0 up
//! nss_probe threads A B ROUNDS    8 lookup threads while the cache flips A/B
//! nss_probe corrupt GOOD RANDOM   every truncation and RANDOM corruptions
//! nss_probe blocks GOOD           each data block damaged in turn
//! nss_probe missing               no cache file at all
//! nss_probe fork EXPECTED ROUNDS  forks while other threads look up
//! nss_probe generate OUT USERS    writes a generated cache (benchmarks)
//! nss_probe time EXPECTED ITERS   median/p99 of warm lookups (benchmarks)
//! ```
//! EXPECTED/A/B/GOOD are cache files; the expected answers are read from
//! them with netauth-core's reader. Prints `ok <summary>` and exits 0, or
//! prints what went wrong and exits 1.

use netauth_cache::{
    write_atomic, CacheContent, CacheView, LazyCheck, UnixGroup, UnixUser, CACHE_DIR,
    CACHE_FILE_NAME, REPLACED_MARK_OFFSET,
};
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_long, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NSS_STATUS_TRYAGAIN: c_int = -2;
const NSS_STATUS_UNAVAIL: c_int = -1;
const NSS_STATUS_NOTFOUND: c_int = 0;
const NSS_STATUS_SUCCESS: c_int = 1;

type Failure = String;
type Check = Result<(), Failure>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["buffers", expected] => buffers(&load(expected)),
        ["threads", a, b, rounds] => threads(&load(a), &load(b), parse(rounds)),
        ["corrupt", good, random] => corrupt(&read(good), parse(random)),
        ["blocks", good] => blocks(&read(good)),
        ["missing"] => missing(),
        ["unavailable"] => unavailable(),
        ["fork", expected, rounds] => fork(&load(expected), parse(rounds)),
        ["replaced", a, b, c] => replaced(&load(a), &load(b), &load(c)),
        ["generate", out, users] => generate(out, parse(users)),
        ["time", expected, iterations] => time(&load(expected), parse(iterations)),
        _ => Err(format!("usage: see the source; got {args:?}")),
    };
    match result {
        Ok(()) => println!("ok {}", args.first().copied().unwrap_or_default()),
        Err(e) => {
            println!("FAILED: {e}");
            std::process::exit(1);
        }
    }
}

fn parse(s: &str) -> usize {
    s.parse().expect("a number")
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("read a cache file")
}

/// The answers a cache file must give, read with the library's reader.
struct Expected {
    bytes: Vec<u8>,
    content: CacheContent,
}

fn load(path: &str) -> Expected {
    let bytes = read(path);
    let content = CacheView::parse(&bytes)
        .and_then(|v| v.to_content())
        .expect("a valid expected cache");
    Expected { bytes, content }
}

fn install(bytes: &[u8]) {
    write_atomic(Path::new(CACHE_DIR), CACHE_FILE_NAME, bytes).expect("install the cache");
}

fn c(s: &str) -> CString {
    CString::new(s).expect("no NUL")
}

/// # Safety
/// `p` must be a valid C string.
unsafe fn text(p: *const c_char) -> String {
    assert!(!p.is_null(), "NULL string in an entry");
    // SAFETY: the caller guarantees a valid C string.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// An answer, as owned data, comparable with the cache content.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Passwd {
    name: String,
    passwd: String,
    uid: u32,
    gid: u32,
    gecos: String,
    dir: String,
    shell: String,
}

impl Passwd {
    fn of(u: &UnixUser) -> Self {
        Passwd {
            name: u.name.clone(),
            passwd: "*".into(),
            uid: u.uid,
            gid: u.gid,
            gecos: u.gecos.clone(),
            dir: u.home.clone(),
            shell: u.shell.clone(),
        }
    }

    /// # Safety
    /// `p` must be a filled struct passwd.
    unsafe fn read(p: &libc::passwd) -> Self {
        // SAFETY: a filled struct passwd holds valid C strings.
        unsafe {
            Passwd {
                name: text(p.pw_name),
                passwd: text(p.pw_passwd),
                uid: p.pw_uid,
                gid: p.pw_gid,
                gecos: text(p.pw_gecos),
                dir: text(p.pw_dir),
                shell: text(p.pw_shell),
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    passwd: String,
    gid: u32,
    members: Vec<String>,
}

impl Group {
    fn of(g: &UnixGroup) -> Self {
        Group {
            name: g.name.clone(),
            passwd: "*".into(),
            gid: g.gid,
            members: g.members.clone(),
        }
    }

    /// # Safety
    /// `g` must be a filled struct group.
    unsafe fn read(g: &libc::group) -> Self {
        let mut members = Vec::new();
        assert_eq!(
            g.gr_mem as usize % std::mem::align_of::<*mut c_char>(),
            0,
            "gr_mem misaligned"
        );
        // SAFETY: gr_mem is a NULL-terminated array of C strings.
        unsafe {
            let mut p = g.gr_mem;
            while !(*p).is_null() {
                members.push(text(*p));
                p = p.add(1);
            }
            Group {
                name: text(g.gr_name),
                passwd: text(g.gr_passwd),
                gid: g.gr_gid,
                members,
            }
        }
    }
}

// ---- glibc's public functions, with an exact buffer size ----------------

/// Outcome of one `_r` call through glibc.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer<T> {
    Found(T),
    /// Return value 0 and NULL result (not found), or another error code.
    Missing(c_int),
    TooSmall,
}

fn glibc_getpwnam(name: &str, len: usize) -> Answer<Passwd> {
    let name = c(name);
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc =
        unsafe { libc::getpwnam_r(name.as_ptr(), &mut pwd, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `pwd`.
    answer(rc, result, || unsafe { Passwd::read(&pwd) })
}

fn glibc_getpwuid(uid: u32, len: usize) -> Answer<Passwd> {
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `pwd`.
    answer(rc, result, || unsafe { Passwd::read(&pwd) })
}

fn glibc_getpwent(len: usize) -> Answer<Passwd> {
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct passwd is a valid out-parameter.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc = unsafe { libc::getpwent_r(&mut pwd, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `pwd`.
    answer(rc, result, || unsafe { Passwd::read(&pwd) })
}

/// Sorts a `get*_r` return into the probe's answers; `read` copies the
/// filled struct when `result` is set.
fn answer<R, T>(rc: c_int, result: *mut R, read: impl FnOnce() -> T) -> Answer<T> {
    if rc == libc::ERANGE {
        assert!(result.is_null(), "ERANGE with a result");
        Answer::TooSmall
    } else if result.is_null() {
        Answer::Missing(rc)
    } else {
        Answer::Found(read())
    }
}

fn glibc_getgrnam(name: &str, len: usize) -> Answer<Group> {
    let name = c(name);
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct group is a valid out-parameter.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc =
        unsafe { libc::getgrnam_r(name.as_ptr(), &mut grp, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `grp`.
    answer(rc, result, || unsafe { Group::read(&grp) })
}

fn glibc_getgrgid(gid: u32, len: usize) -> Answer<Group> {
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct group is a valid out-parameter.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc = unsafe { libc::getgrgid_r(gid, &mut grp, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `grp`.
    answer(rc, result, || unsafe { Group::read(&grp) })
}

fn glibc_getgrent(len: usize) -> Answer<Group> {
    let mut buf = vec![0 as c_char; len.max(1)];
    // SAFETY: zeroed struct group is a valid out-parameter.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result = std::ptr::null_mut();
    // SAFETY: all pointers are valid; `len` bytes of `buf` are writable.
    let rc = unsafe { libc::getgrent_r(&mut grp, buf.as_mut_ptr(), len, &mut result) };
    // SAFETY: a non-NULL result is the filled `grp`.
    answer(rc, result, || unsafe { Group::read(&grp) })
}

/// `getgrouplist` with room for `room` gids: the list, or the count needed.
fn glibc_getgrouplist(user: &str, primary: u32, room: usize) -> Result<Vec<u32>, usize> {
    let user = c(user);
    let mut groups = vec![0 as libc::gid_t; room.max(1)];
    let mut count = room as c_int;
    // SAFETY: `groups` has room for `count` gids.
    let rc = unsafe { libc::getgrouplist(user.as_ptr(), primary, groups.as_mut_ptr(), &mut count) };
    if rc < 0 {
        Err(count as usize)
    } else {
        groups.truncate(count as usize);
        Ok(groups)
    }
}

/// Calls `lookup` with buffer sizes 0, 1, 2, ... until it answers: every
/// smaller size must say ERANGE and nothing else; the answer must be
/// `expected`. Returns the size that fitted.
fn sizes_up<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &T,
    mut lookup: impl FnMut(usize) -> Answer<T>,
) -> Result<usize, Failure> {
    for len in 0..1 << 16 {
        match lookup(len) {
            Answer::TooSmall => continue,
            Answer::Found(got) => {
                ensure!(
                    got == *expected,
                    "{what} with {len} bytes: got {got:?}, want {expected:?}"
                );
                return Ok(len);
            }
            Answer::Missing(rc) => {
                return Err(format!("{what} with {len} bytes: not found (rc {rc})"))
            }
        }
    }
    Err(format!("{what}: never fitted"))
}

fn expected_groups_of(content: &CacheContent, user: &UnixUser) -> Vec<u32> {
    let mut gids = vec![user.gid];
    for &g in content
        .user_groups
        .get(&user.name)
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        if !gids.contains(&g) {
            gids.push(g);
        }
    }
    gids.sort_unstable();
    gids
}

// ---- the module's own entry points, through dlopen -----------------------

type PwByName =
    unsafe extern "C" fn(*const c_char, *mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;
type PwByUid =
    unsafe extern "C" fn(libc::uid_t, *mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;
type GrByName =
    unsafe extern "C" fn(*const c_char, *mut libc::group, *mut c_char, usize, *mut c_int) -> c_int;
type GrByGid =
    unsafe extern "C" fn(libc::gid_t, *mut libc::group, *mut c_char, usize, *mut c_int) -> c_int;
type PwEnt = unsafe extern "C" fn(*mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int;
type GrEnt = unsafe extern "C" fn(*mut libc::group, *mut c_char, usize, *mut c_int) -> c_int;
type SetEnt = unsafe extern "C" fn(c_int) -> c_int;
type EndEnt = unsafe extern "C" fn() -> c_int;
type InitGroups = unsafe extern "C" fn(
    *const c_char,
    libc::gid_t,
    *mut c_long,
    *mut c_long,
    *mut *mut libc::gid_t,
    c_long,
    *mut c_int,
) -> c_int;

struct Module {
    getpwnam_r: PwByName,
    getpwuid_r: PwByUid,
    getgrnam_r: GrByName,
    getgrgid_r: GrByGid,
    setpwent: SetEnt,
    getpwent_r: PwEnt,
    endpwent: EndEnt,
    setgrent: SetEnt,
    getgrent_r: GrEnt,
    endgrent: EndEnt,
    initgroups_dyn: InitGroups,
}

impl Module {
    fn open() -> Module {
        let lib = c("libnss_netauth.so.2");
        // SAFETY: dlopen with a valid name; the module has no constructors.
        let handle = unsafe { libc::dlopen(lib.as_ptr(), libc::RTLD_NOW) };
        assert!(
            !handle.is_null(),
            "dlopen libnss_netauth.so.2 failed (LD_LIBRARY_PATH?)"
        );
        let sym = |name: &str| {
            let n = c(name);
            // SAFETY: valid handle and name.
            let p = unsafe { libc::dlsym(handle, n.as_ptr()) };
            assert!(!p.is_null(), "{name} not exported");
            p
        };
        // SAFETY: each symbol is the module's function of that C signature.
        unsafe {
            Module {
                getpwnam_r: std::mem::transmute::<*mut libc::c_void, PwByName>(sym(
                    "_nss_netauth_getpwnam_r",
                )),
                getpwuid_r: std::mem::transmute::<*mut libc::c_void, PwByUid>(sym(
                    "_nss_netauth_getpwuid_r",
                )),
                getgrnam_r: std::mem::transmute::<*mut libc::c_void, GrByName>(sym(
                    "_nss_netauth_getgrnam_r",
                )),
                getgrgid_r: std::mem::transmute::<*mut libc::c_void, GrByGid>(sym(
                    "_nss_netauth_getgrgid_r",
                )),
                setpwent: std::mem::transmute::<*mut libc::c_void, SetEnt>(sym(
                    "_nss_netauth_setpwent",
                )),
                getpwent_r: std::mem::transmute::<*mut libc::c_void, PwEnt>(sym(
                    "_nss_netauth_getpwent_r",
                )),
                endpwent: std::mem::transmute::<*mut libc::c_void, EndEnt>(sym(
                    "_nss_netauth_endpwent",
                )),
                setgrent: std::mem::transmute::<*mut libc::c_void, SetEnt>(sym(
                    "_nss_netauth_setgrent",
                )),
                getgrent_r: std::mem::transmute::<*mut libc::c_void, GrEnt>(sym(
                    "_nss_netauth_getgrent_r",
                )),
                endgrent: std::mem::transmute::<*mut libc::c_void, EndEnt>(sym(
                    "_nss_netauth_endgrent",
                )),
                initgroups_dyn: std::mem::transmute::<*mut libc::c_void, InitGroups>(sym(
                    "_nss_netauth_initgroups_dyn",
                )),
            }
        }
    }

    /// A direct passwd call with a buffer of exactly `len` bytes (placed at
    /// an odd address so alignment bugs show): (status, errno, entry).
    fn passwd_call(
        &self,
        len: usize,
        call: impl FnOnce(*mut libc::passwd, *mut c_char, usize, *mut c_int) -> c_int,
    ) -> (c_int, c_int, Option<Passwd>) {
        let mut storage = vec![0x5a as c_char; len + 1];
        // SAFETY: zeroed struct passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut errno = 0;
        let status = call(&mut pwd, storage[1..].as_mut_ptr(), len, &mut errno);
        // SAFETY: on success the module filled `pwd`.
        let entry = (status == NSS_STATUS_SUCCESS).then(|| unsafe { Passwd::read(&pwd) });
        (status, errno, entry)
    }

    fn group_call(
        &self,
        len: usize,
        call: impl FnOnce(*mut libc::group, *mut c_char, usize, *mut c_int) -> c_int,
    ) -> (c_int, c_int, Option<Group>) {
        let mut storage = vec![0x5a as c_char; len + 1];
        // SAFETY: zeroed struct group is a valid out-parameter.
        let mut grp: libc::group = unsafe { std::mem::zeroed() };
        let mut errno = 0;
        let status = call(&mut grp, storage[1..].as_mut_ptr(), len, &mut errno);
        // SAFETY: on success the module filled `grp`.
        let entry = (status == NSS_STATUS_SUCCESS).then(|| unsafe { Group::read(&grp) });
        (status, errno, entry)
    }

    fn pwnam(&self, name: &str, len: usize) -> (c_int, c_int, Option<Passwd>) {
        let name = c(name);
        // SAFETY: valid arguments per the NSS contract.
        self.passwd_call(len, |p, b, l, e| unsafe {
            (self.getpwnam_r)(name.as_ptr(), p, b, l, e)
        })
    }

    fn pwuid(&self, uid: u32, len: usize) -> (c_int, c_int, Option<Passwd>) {
        // SAFETY: valid arguments per the NSS contract.
        self.passwd_call(len, |p, b, l, e| unsafe {
            (self.getpwuid_r)(uid, p, b, l, e)
        })
    }

    fn grnam(&self, name: &str, len: usize) -> (c_int, c_int, Option<Group>) {
        let name = c(name);
        // SAFETY: valid arguments per the NSS contract.
        self.group_call(len, |g, b, l, e| unsafe {
            (self.getgrnam_r)(name.as_ptr(), g, b, l, e)
        })
    }

    fn grgid(&self, gid: u32, len: usize) -> (c_int, c_int, Option<Group>) {
        // SAFETY: valid arguments per the NSS contract.
        self.group_call(len, |g, b, l, e| unsafe {
            (self.getgrgid_r)(gid, g, b, l, e)
        })
    }

    fn pwent(&self, len: usize) -> (c_int, c_int, Option<Passwd>) {
        // SAFETY: valid arguments per the NSS contract.
        self.passwd_call(len, |p, b, l, e| unsafe { (self.getpwent_r)(p, b, l, e) })
    }

    fn grent(&self, len: usize) -> (c_int, c_int, Option<Group>) {
        // SAFETY: valid arguments per the NSS contract.
        self.group_call(len, |g, b, l, e| unsafe { (self.getgrent_r)(g, b, l, e) })
    }

    /// initgroups_dyn on a malloc'd array starting as `[primary]` with room
    /// for `size`; returns (status, gids, final size).
    fn initgroups(
        &self,
        user: &str,
        primary: u32,
        size: usize,
        limit: c_long,
    ) -> (c_int, Vec<u32>, c_long) {
        let user = c(user);
        // SAFETY: malloc of a positive size; glibc's contract wants a malloc'd array.
        let array = unsafe { libc::malloc(size.max(1) * std::mem::size_of::<libc::gid_t>()) }
            .cast::<libc::gid_t>();
        assert!(!array.is_null());
        // SAFETY: the array has room for at least one gid.
        unsafe { *array = primary };
        let (mut start, mut size, mut groups, mut errno): (c_long, c_long, _, c_int) =
            (1, size.max(1) as c_long, array, 0);
        // SAFETY: valid pointers per the NSS contract.
        let status = unsafe {
            (self.initgroups_dyn)(
                user.as_ptr(),
                primary,
                &mut start,
                &mut size,
                &mut groups,
                limit,
                &mut errno,
            )
        };
        // SAFETY: the module leaves `start` valid gids in `groups`.
        let gids = unsafe { std::slice::from_raw_parts(groups, start as usize) }.to_vec();
        // SAFETY: `groups` is the (possibly realloc'd) malloc'd array.
        unsafe { libc::free(groups.cast()) };
        (status, gids, size)
    }
}

/// Direct calls with every buffer size: TRYAGAIN/ERANGE below the needed
/// size, then SUCCESS with the right entry, and the same for larger sizes.
fn module_sizes<T: PartialEq + std::fmt::Debug>(
    what: &str,
    expected: &T,
    mut call: impl FnMut(usize) -> (c_int, c_int, Option<T>),
) -> Result<usize, Failure> {
    let mut fitted = None;
    for len in 0..4096 {
        let (status, errno, entry) = call(len);
        match (status, fitted) {
            (NSS_STATUS_TRYAGAIN, None) => {
                ensure!(
                    errno == libc::ERANGE,
                    "{what} with {len} bytes: TRYAGAIN with errno {errno}"
                )
            }
            (NSS_STATUS_SUCCESS, _) => {
                ensure!(
                    entry.as_ref() == Some(expected),
                    "{what} with {len} bytes: {entry:?}"
                );
                fitted.get_or_insert(len);
                if len > fitted.unwrap_or(len) + 64 {
                    break;
                }
            }
            _ => {
                return Err(format!(
                    "{what} with {len} bytes: status {status} errno {errno}"
                ))
            }
        }
    }
    fitted.ok_or_else(|| format!("{what}: never fitted"))
}

fn buffers(expected: &Expected) -> Check {
    install(&expected.bytes);
    let content = &expected.content;
    let module = Module::open();
    let mut checks = 0;
    for u in &content.users {
        let want = Passwd::of(u);
        sizes_up(&format!("getpwnam_r {}", u.name), &want, |len| {
            glibc_getpwnam(&u.name, len)
        })?;
        sizes_up(&format!("getpwuid_r {}", u.uid), &want, |len| {
            glibc_getpwuid(u.uid, len)
        })?;
        module_sizes(&format!("_getpwnam_r {}", u.name), &want, |len| {
            module.pwnam(&u.name, len)
        })?;
        module_sizes(&format!("_getpwuid_r {}", u.uid), &want, |len| {
            module.pwuid(u.uid, len)
        })?;
        let groups = expected_groups_of(content, u);
        let mut needed = None;
        for room in 0..groups.len() + 2 {
            match glibc_getgrouplist(&u.name, u.gid, room) {
                Err(n) => {
                    ensure!(
                        room < groups.len(),
                        "getgrouplist {} refused room for {room}",
                        u.name
                    );
                    needed = Some(n);
                }
                Ok(mut got) => {
                    got.sort_unstable();
                    ensure!(
                        got == groups,
                        "getgrouplist {}: {got:?}, want {groups:?}",
                        u.name
                    );
                }
            }
        }
        if let Some(n) = needed {
            ensure!(
                n == groups.len(),
                "getgrouplist {} said it needs {n}",
                u.name
            );
        }
        checks += 5;
    }
    for g in &content.groups {
        let want = Group::of(g);
        sizes_up(&format!("getgrnam_r {}", g.name), &want, |len| {
            glibc_getgrnam(&g.name, len)
        })?;
        sizes_up(&format!("getgrgid_r {}", g.gid), &want, |len| {
            glibc_getgrgid(g.gid, len)
        })?;
        module_sizes(&format!("_getgrnam_r {}", g.name), &want, |len| {
            module.grnam(&g.name, len)
        })?;
        module_sizes(&format!("_getgrgid_r {}", g.gid), &want, |len| {
            module.grgid(g.gid, len)
        })?;
        checks += 4;
    }

    // Unknown keys.
    ensure!(
        module.pwnam("na_nobody", 4096).0 == NSS_STATUS_NOTFOUND,
        "unknown name not NOTFOUND"
    );
    ensure!(
        module.pwuid(79_999, 4096).0 == NSS_STATUS_NOTFOUND,
        "unknown uid not NOTFOUND"
    );
    ensure!(
        module.grnam("na_nogroup", 4096).0 == NSS_STATUS_NOTFOUND,
        "unknown group not NOTFOUND"
    );
    ensure!(
        module.grgid(79_999, 4096).0 == NSS_STATUS_NOTFOUND,
        "unknown gid not NOTFOUND"
    );
    ensure!(
        matches!(glibc_getpwnam("na_nobody", 4096), Answer::Missing(0)),
        "glibc unknown name"
    );

    // Enumeration through glibc: each entry after ERANGEs from size 0 up,
    // in cache order, none skipped or repeated.
    // SAFETY: plain calls without arguments.
    unsafe { libc::setpwent() };
    for u in &content.users {
        sizes_up(
            &format!("getpwent_r {}", u.name),
            &Passwd::of(u),
            glibc_getpwent,
        )?;
    }
    ensure!(
        matches!(glibc_getpwent(4096), Answer::Missing(_)),
        "getpwent_r past the end"
    );
    // SAFETY: as above.
    unsafe { libc::endpwent() };
    // SAFETY: as above.
    unsafe { libc::setgrent() };
    for g in &content.groups {
        sizes_up(
            &format!("getgrent_r {}", g.name),
            &Group::of(g),
            glibc_getgrent,
        )?;
    }
    ensure!(
        matches!(glibc_getgrent(4096), Answer::Missing(_)),
        "getgrent_r past the end"
    );
    // SAFETY: as above.
    unsafe { libc::endgrent() };

    // Enumeration through the module directly.
    // SAFETY: plain calls.
    ensure!(
        unsafe { (module.setpwent)(0) } == NSS_STATUS_SUCCESS,
        "setpwent"
    );
    for u in &content.users {
        let want = Passwd::of(u);
        module_sizes(&format!("_getpwent_r {}", u.name), &want, |len| {
            let r = module.pwent(len);
            if r.0 == NSS_STATUS_SUCCESS {
                // Succeeded: the position moved on; go back one entry by
                // restarting and skipping, so the helper can retry sizes.
                restart_passwd(&module, content, &u.name);
            }
            r
        })?;
        // Now really consume it.
        let (status, _, entry) = module.pwent(4096);
        ensure!(
            status == NSS_STATUS_SUCCESS && entry == Some(want),
            "_getpwent_r {} consume",
            u.name
        );
    }
    ensure!(
        module.pwent(4096).0 == NSS_STATUS_NOTFOUND,
        "_getpwent_r past the end"
    );
    ensure!(
        module.pwent(4096).0 == NSS_STATUS_NOTFOUND,
        "_getpwent_r stays at the end"
    );
    // SAFETY: plain calls.
    unsafe { (module.endpwent)() };
    // SAFETY: plain calls.
    ensure!(
        unsafe { (module.setgrent)(0) } == NSS_STATUS_SUCCESS,
        "setgrent"
    );
    for g in &content.groups {
        for len in 0..8 {
            let (status, errno, _) = module.grent(len);
            ensure!(
                status == NSS_STATUS_TRYAGAIN && errno == libc::ERANGE,
                "_getgrent_r {} with {len} bytes: {status}/{errno}",
                g.name
            );
        }
        let (status, _, entry) = module.grent(4096);
        ensure!(
            status == NSS_STATUS_SUCCESS && entry == Some(Group::of(g)),
            "_getgrent_r {}",
            g.name
        );
    }
    ensure!(
        module.grent(4096).0 == NSS_STATUS_NOTFOUND,
        "_getgrent_r past the end"
    );
    // SAFETY: plain calls.
    unsafe { (module.endgrent)() };
    // After endgrent, a new walk starts at the beginning.
    if let Some(first) = content.groups.first() {
        let (status, _, entry) = module.grent(4096);
        ensure!(
            status == NSS_STATUS_SUCCESS && entry == Some(Group::of(first)),
            "walk after endgrent"
        );
        // SAFETY: plain calls.
        unsafe { (module.endgrent)() };
    }

    // initgroups_dyn: growth from a one-slot array, the limit, unknown user.
    for u in &content.users {
        let listed: Vec<u32> = content
            .user_groups
            .get(&u.name)
            .cloned()
            .unwrap_or_default();
        let (status, gids, _) = module.initgroups(&u.name, u.gid, 1, 0);
        ensure!(
            status == NSS_STATUS_SUCCESS,
            "initgroups_dyn {}: {status}",
            u.name
        );
        let mut want: Vec<u32> = vec![u.gid];
        want.extend(listed.iter().filter(|&&g| g != u.gid));
        ensure!(
            gids == want,
            "initgroups_dyn {}: {gids:?}, want {want:?}",
            u.name
        );
        let (status, gids, size) = module.initgroups(&u.name, u.gid, 1, 2);
        ensure!(
            status == NSS_STATUS_SUCCESS && gids.len() <= 2 && size <= 2,
            "initgroups_dyn limit {gids:?}"
        );
    }
    ensure!(
        module.initgroups("na_nobody", 1, 4, 0).0 == NSS_STATUS_NOTFOUND,
        "initgroups_dyn of an unknown user"
    );
    checks += 1;
    println!("checked {checks} entries");
    Ok(())
}

/// Restarts the passwd walk and consumes entries up to (not including) `name`.
fn restart_passwd(module: &Module, content: &CacheContent, name: &str) {
    // SAFETY: plain calls.
    unsafe { (module.setpwent)(0) };
    for u in content.users.iter().take_while(|u| u.name != name) {
        let (status, _, _) = module.pwent(4096);
        assert_eq!(status, NSS_STATUS_SUCCESS, "re-walk to {}", u.name);
    }
}

/// Answers allowed for a key: the entry in A or its absence, same for B.
struct Versions {
    users_by_name: BTreeMap<String, [Option<Passwd>; 2]>,
    users_by_uid: BTreeMap<u32, [Option<Passwd>; 2]>,
    groups_by_name: BTreeMap<String, [Option<Group>; 2]>,
    groups_by_gid: BTreeMap<u32, [Option<Group>; 2]>,
}

fn versions(a: &CacheContent, b: &CacheContent) -> Versions {
    let mut v = Versions {
        users_by_name: BTreeMap::new(),
        users_by_uid: BTreeMap::new(),
        groups_by_name: BTreeMap::new(),
        groups_by_gid: BTreeMap::new(),
    };
    for (i, content) in [a, b].into_iter().enumerate() {
        for u in &content.users {
            v.users_by_name.entry(u.name.clone()).or_default()[i] = Some(Passwd::of(u));
            v.users_by_uid.entry(u.uid).or_default()[i] = Some(Passwd::of(u));
        }
        for g in &content.groups {
            v.groups_by_name.entry(g.name.clone()).or_default()[i] = Some(Group::of(g));
            v.groups_by_gid.entry(g.gid).or_default()[i] = Some(Group::of(g));
        }
    }
    v
}

/// Which version an answer belongs to: bit 0 = A, bit 1 = B; 0 = neither.
fn classify<T: PartialEq>(answer: &Answer<T>, allowed: &[Option<T>; 2]) -> u8 {
    let got = match answer {
        Answer::Found(t) => Some(t),
        Answer::Missing(_) => None,
        Answer::TooSmall => return 0,
    };
    let mut mask = 0;
    for (i, want) in allowed.iter().enumerate() {
        if want.as_ref() == got {
            mask |= 1 << i;
        }
    }
    mask
}

fn threads(a: &Expected, b: &Expected, rounds: usize) -> Check {
    install(&a.bytes);
    let versions = Arc::new(versions(&a.content, &b.content));
    let stop = Arc::new(AtomicBool::new(false));
    let lookups = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let mut workers = Vec::new();
    for t in 0..8usize {
        let (versions, stop, lookups, seen) = (
            versions.clone(),
            stop.clone(),
            lookups.clone(),
            seen.clone(),
        );
        workers.push(std::thread::spawn(move || -> Check {
            let user_names: Vec<_> = versions.users_by_name.iter().collect();
            let uids: Vec<_> = versions.users_by_uid.iter().collect();
            let group_names: Vec<_> = versions.groups_by_name.iter().collect();
            let gids: Vec<_> = versions.groups_by_gid.iter().collect();
            let mut i = t * 7919;
            while !stop.load(Ordering::Relaxed) {
                i = i.wrapping_add(1);
                let mask = match i % 4 {
                    0 => {
                        let (name, allowed) = user_names[i / 4 % user_names.len()];
                        let got = glibc_getpwnam(name, 4096);
                        let m = classify(&got, allowed);
                        ensure!(m != 0, "thread {t}: getpwnam {name}: {got:?}");
                        m
                    }
                    1 => {
                        let (uid, allowed) = uids[i / 4 % uids.len()];
                        let got = glibc_getpwuid(*uid, 4096);
                        let m = classify(&got, allowed);
                        ensure!(m != 0, "thread {t}: getpwuid {uid}: {got:?}");
                        m
                    }
                    2 => {
                        let (name, allowed) = group_names[i / 4 % group_names.len()];
                        let got = glibc_getgrnam(name, 1 << 16);
                        let m = classify(&got, allowed);
                        ensure!(m != 0, "thread {t}: getgrnam {name}: {got:?}");
                        m
                    }
                    _ => {
                        let (gid, allowed) = gids[i / 4 % gids.len()];
                        let got = glibc_getgrgid(*gid, 1 << 16);
                        let m = classify(&got, allowed);
                        ensure!(m != 0, "thread {t}: getgrgid {gid}: {got:?}");
                        m
                    }
                };
                if mask == 1 || mask == 2 {
                    seen[mask as usize - 1].fetch_add(1, Ordering::Relaxed);
                }
                lookups.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    for round in 0..rounds {
        install(if round % 2 == 0 { &b.bytes } else { &a.bytes });
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| "a lookup thread panicked".to_owned())??;
    }
    let (only_a, only_b) = (
        seen[0].load(Ordering::Relaxed),
        seen[1].load(Ordering::Relaxed),
    );
    println!(
        "{} lookups over {rounds} replacements; {only_a} answers only A gives, {only_b} only B gives",
        lookups.load(Ordering::Relaxed)
    );
    ensure!(only_a > 0 && only_b > 0, "replacements were not noticed");
    Ok(())
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// What a damaged file may answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    /// Refused as a whole (a truncated file, a damaged header): UNAVAIL.
    Refused,
    /// Damaged somewhere: each lookup UNAVAIL or exactly the good answer
    /// (it may not read the damaged block), an enumeration UNAVAIL (it
    /// checks every block before its first entry).
    Somewhere,
    /// Intact: the good answers.
    None,
}

/// Every lookup on the installed (damaged) cache, checked against `damage`;
/// returns how many lookups answered (the others were UNAVAIL).
fn damaged_answers(
    module: &Module,
    good: &CacheContent,
    what: &str,
    damage: Damage,
) -> Result<usize, Failure> {
    let mut answered = 0;
    let mut ok_status = |status: c_int| {
        if status == NSS_STATUS_SUCCESS {
            answered += 1;
        }
        match damage {
            Damage::Refused => status == NSS_STATUS_UNAVAIL,
            Damage::Somewhere => status == NSS_STATUS_UNAVAIL || status == NSS_STATUS_SUCCESS,
            Damage::None => status == NSS_STATUS_SUCCESS,
        }
    };
    for u in &good.users {
        let want = Some(Passwd::of(u));
        let (status, errno, entry) = module.pwnam(&u.name, 4096);
        ensure!(
            ok_status(status),
            "{what}: getpwnam {} status {status}",
            u.name
        );
        ensure!(
            status != NSS_STATUS_SUCCESS || entry == want,
            "{what}: getpwnam {} wrong: {entry:?}",
            u.name
        );
        ensure!(
            status == NSS_STATUS_SUCCESS || errno == libc::ENOENT,
            "{what}: errno {errno}"
        );
        let (status, _, entry) = module.pwuid(u.uid, 4096);
        ensure!(
            ok_status(status),
            "{what}: getpwuid {} status {status}",
            u.uid
        );
        ensure!(
            status != NSS_STATUS_SUCCESS || entry == want,
            "{what}: getpwuid {} wrong",
            u.uid
        );
        match glibc_getpwnam(&u.name, 4096) {
            Answer::Found(p) => ensure!(Some(p) == want, "{what}: glibc getpwnam {} wrong", u.name),
            Answer::Missing(_) => {}
            Answer::TooSmall => return Err(format!("{what}: ERANGE with a large buffer")),
        }
        let (status, gids, _) = module.initgroups(&u.name, u.gid, 1, 0);
        ensure!(
            ok_status(status),
            "{what}: initgroups {} status {status}",
            u.name
        );
        if status == NSS_STATUS_SUCCESS {
            let mut want: Vec<u32> = vec![u.gid];
            want.extend(
                good.user_groups
                    .get(&u.name)
                    .into_iter()
                    .flatten()
                    .filter(|&&g| g != u.gid),
            );
            ensure!(gids == want, "{what}: initgroups {} wrong", u.name);
        }
    }
    for g in &good.groups {
        let want = Some(Group::of(g));
        let (status, _, entry) = module.grnam(&g.name, 1 << 16);
        ensure!(
            ok_status(status),
            "{what}: getgrnam {} status {status}",
            g.name
        );
        ensure!(
            status != NSS_STATUS_SUCCESS || entry == want,
            "{what}: getgrnam {} wrong",
            g.name
        );
        let (status, _, entry) = module.grgid(g.gid, 1 << 16);
        ensure!(
            ok_status(status),
            "{what}: getgrgid {} status {status}",
            g.gid
        );
        ensure!(
            status != NSS_STATUS_SUCCESS || entry == want,
            "{what}: getgrgid {} wrong",
            g.gid
        );
        match glibc_getgrgid(g.gid, 1 << 16) {
            Answer::Found(got) => {
                ensure!(Some(got) == want, "{what}: glibc getgrgid {} wrong", g.gid)
            }
            Answer::Missing(_) => {}
            Answer::TooSmall => return Err(format!("{what}: ERANGE with a large buffer")),
        }
    }
    // Enumeration: UNAVAIL at once, or the exact good list.
    // SAFETY: plain call.
    let status = unsafe { (module.setpwent)(0) };
    let want_status = match damage {
        Damage::None => NSS_STATUS_SUCCESS,
        Damage::Refused | Damage::Somewhere => NSS_STATUS_UNAVAIL,
    };
    ensure!(status == want_status, "{what}: setpwent {status}");
    let mut listed = Vec::new();
    loop {
        let (status, _, entry) = module.pwent(4096);
        match status {
            NSS_STATUS_SUCCESS => listed.extend(entry),
            NSS_STATUS_NOTFOUND | NSS_STATUS_UNAVAIL => break,
            other => return Err(format!("{what}: getpwent status {other}")),
        }
        ensure!(
            listed.len() <= good.users.len(),
            "{what}: enumeration too long"
        );
    }
    // SAFETY: plain call.
    unsafe { (module.endpwent)() };
    let good_list: Vec<Passwd> = good.users.iter().map(Passwd::of).collect();
    ensure!(
        listed == good_list || (damage != Damage::None && listed.is_empty()),
        "{what}: enumeration wrong ({} of {})",
        listed.len(),
        good_list.len()
    );
    Ok(answered)
}

fn corrupt(good_bytes: &[u8], random: usize) -> Check {
    let good = CacheView::parse(good_bytes)
        .and_then(|v| v.to_content())
        .map_err(|e| format!("bad GOOD file: {e}"))?;
    let module = Module::open();
    for len in 0..good_bytes.len() {
        install(&good_bytes[..len]);
        damaged_answers(
            &module,
            &good,
            &format!("truncated to {len}"),
            Damage::Refused,
        )?;
    }
    let mut state = 0x0123_4567_89ab_cdef_u64 ^ random as u64;
    let (mut accepted, mut answered) = (0, 0);
    for round in 0..random {
        let mut bad = good_bytes.to_vec();
        for _ in 0..1 + round % 8 {
            let at = (xorshift(&mut state) % bad.len() as u64) as usize;
            bad[at] = xorshift(&mut state) as u8;
        }
        install(&bad);
        // The replaced mark is outside every checksum on purpose (the
        // writer sets it in place): a file that differs only there is
        // intact.
        let mark = REPLACED_MARK_OFFSET..REPLACED_MARK_OFFSET + 4;
        let intact = bad.len() == good_bytes.len()
            && bad
                .iter()
                .zip(good_bytes)
                .enumerate()
                .all(|(i, (x, y))| x == y || mark.contains(&i));
        answered += damaged_answers(
            &module,
            &good,
            &format!("corruption round {round}"),
            if intact {
                Damage::None
            } else {
                Damage::Somewhere
            },
        )?;
        if intact {
            accepted += 1;
        }
    }
    // A good file is still answered after all that (the module recovered).
    install(good_bytes);
    damaged_answers(&module, &good, "good again", Damage::None)?;
    let u = good.users.first().ok_or("GOOD has no user")?;
    ensure!(
        module.pwnam(&u.name, 4096).0 == NSS_STATUS_SUCCESS,
        "good file not answered"
    );
    // A cache others could write is refused: a change of mode does not mark
    // the file, so it is noticed at the module's next look at the path,
    // within its re-check interval (a second).
    let path = Path::new(CACHE_DIR).join(CACHE_FILE_NAME);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .map_err(|e| e.to_string())?;
    std::thread::sleep(RECHECK);
    ensure!(
        module.pwnam(&u.name, 4096).0 == NSS_STATUS_UNAVAIL,
        "world-writable cache accepted"
    );
    println!(
        "{} truncations, {random} corruptions ({accepted} left the file intact; \
         {answered} lookups answered around the damage)",
        good_bytes.len()
    );
    Ok(())
}

/// One lookup of a known key through the module's entry points.
enum Lookup<'c> {
    PwNam(&'c UnixUser),
    PwUid(&'c UnixUser),
    Init(&'c UnixUser),
    GrNam(&'c UnixGroup),
    GrGid(&'c UnixGroup),
}

impl Lookup<'_> {
    /// Runs the same lookup with netauth-core's reader on `view`.
    fn read_with(&self, view: &CacheView<'_>) -> bool {
        let group = |g: Option<netauth_cache::GroupRecord<'_>>| {
            g.is_some_and(|g| g.members.clone().all(|m| m.is_ok()))
        };
        match self {
            Lookup::PwNam(u) => matches!(view.user_by_name(u.name.as_bytes()), Ok(Some(_))),
            Lookup::PwUid(u) => matches!(view.user_by_uid(u.uid), Ok(Some(_))),
            Lookup::Init(u) => matches!(view.groups_of_user(u.name.as_bytes()), Ok(Some(_))),
            Lookup::GrNam(g) => view.group_by_name(g.name.as_bytes()).is_ok_and(group),
            Lookup::GrGid(g) => view.group_by_gid(g.gid).is_ok_and(group),
        }
    }

    /// Runs it through the module: (status, errno, whether the entry is
    /// exactly the good one).
    fn call(&self, module: &Module, good: &CacheContent) -> (c_int, c_int, bool) {
        match self {
            Lookup::PwNam(u) => {
                let (status, errno, entry) = module.pwnam(&u.name, 4096);
                (status, errno, entry == Some(Passwd::of(u)))
            }
            Lookup::PwUid(u) => {
                let (status, errno, entry) = module.pwuid(u.uid, 4096);
                (status, errno, entry == Some(Passwd::of(u)))
            }
            Lookup::Init(u) => {
                let (status, gids, _) = module.initgroups(&u.name, u.gid, 1, 0);
                let mut want: Vec<u32> = vec![u.gid];
                want.extend(
                    good.user_groups
                        .get(&u.name)
                        .into_iter()
                        .flatten()
                        .filter(|&&g| g != u.gid),
                );
                (status, libc::ENOENT, gids == want)
            }
            Lookup::GrNam(g) => {
                let (status, errno, entry) = module.grnam(&g.name, 1 << 16);
                (status, errno, entry == Some(Group::of(g)))
            }
            Lookup::GrGid(g) => {
                let (status, errno, entry) = module.grgid(g.gid, 1 << 16);
                (status, errno, entry == Some(Group::of(g)))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Lookup::PwNam(u) => format!("getpwnam {}", u.name),
            Lookup::PwUid(u) => format!("getpwuid {}", u.uid),
            Lookup::Init(u) => format!("initgroups {}", u.name),
            Lookup::GrNam(g) => format!("getgrnam {}", g.name),
            Lookup::GrGid(g) => format!("getgrgid {}", g.gid),
        }
    }
}

/// Damages each data block in turn (one flipped bit): every lookup that
/// reads the block answers UNAVAIL, every other one answers exactly as the
/// intact file does, and an enumeration answers UNAVAIL. Which blocks a
/// lookup reads is found with netauth-core's reader on the intact file.
fn blocks(good_bytes: &[u8]) -> Check {
    let good = CacheView::parse(good_bytes)
        .and_then(|v| v.to_content())
        .map_err(|e| format!("bad GOOD file: {e}"))?;
    let mut lookups = Vec::new();
    for u in &good.users {
        lookups.extend([Lookup::PwNam(u), Lookup::PwUid(u), Lookup::Init(u)]);
    }
    for g in &good.groups {
        lookups.extend([Lookup::GrNam(g), Lookup::GrGid(g)]);
    }
    let mut reads = Vec::new();
    for lookup in &lookups {
        let check = LazyCheck::new(good_bytes).map_err(|e| e.to_string())?;
        let view = check.view(good_bytes).map_err(|e| e.to_string())?;
        ensure!(
            lookup.read_with(&view),
            "{} fails on GOOD",
            lookup.describe()
        );
        let read: Vec<usize> = (0..check.block_count())
            .filter(|&b| check.is_verified(b))
            .collect();
        reads.push(read);
    }
    let block_count = LazyCheck::new(good_bytes)
        .map_err(|e| e.to_string())?
        .block_count();
    ensure!(block_count >= 4, "GOOD has only {block_count} blocks");
    // The data area starts at the first block boundary after the header
    // (header_len at offset 16, block_size at 64).
    let field = |at: usize| -> Result<usize, Failure> {
        let raw = good_bytes.get(at..at + 4).ok_or("short header")?;
        Ok(u32::from_le_bytes(raw.try_into().map_err(|_| "short header")?) as usize)
    };
    let block_size = field(64)?;
    let data_start = field(16)?.next_multiple_of(block_size);
    let module = Module::open();
    let (mut answered, mut unavailable) = (0, 0);
    for block in 0..block_count {
        let mut bad = good_bytes.to_vec();
        let start = data_start + block * block_size;
        let end = (start + block_size).min(bad.len());
        let at = start + (block * 7919) % (end - start);
        bad[at] ^= 1 << (block % 8);
        install(&bad);
        for (lookup, read) in lookups.iter().zip(&reads) {
            let (status, errno, right) = lookup.call(&module, &good);
            if read.contains(&block) {
                ensure!(
                    (status, errno) == (NSS_STATUS_UNAVAIL, libc::ENOENT),
                    "block {block} damaged: {} reads it but gave {status}/{errno}",
                    lookup.describe()
                );
                unavailable += 1;
            } else {
                ensure!(
                    status == NSS_STATUS_SUCCESS && right,
                    "block {block} damaged: {} does not read it but gave {status} \
                     (right entry: {right})",
                    lookup.describe()
                );
                answered += 1;
            }
        }
        // SAFETY: plain calls.
        let (set, get) = unsafe { ((module.setpwent)(0), module.pwent(4096).0) };
        // SAFETY: plain call.
        unsafe { (module.endpwent)() };
        ensure!(
            set == NSS_STATUS_UNAVAIL && get == NSS_STATUS_UNAVAIL,
            "block {block} damaged: enumeration gave {set}/{get}"
        );
        // SAFETY: plain calls.
        let (set, get) = unsafe { ((module.setgrent)(0), module.grent(1 << 16).0) };
        // SAFETY: plain call.
        unsafe { (module.endgrent)() };
        ensure!(
            set == NSS_STATUS_UNAVAIL && get == NSS_STATUS_UNAVAIL,
            "block {block} damaged: group enumeration gave {set}/{get}"
        );
    }
    ensure!(
        answered > 0 && unavailable > 0,
        "{answered} answered, {unavailable} unavailable"
    );
    println!(
        "{block_count} blocks damaged in turn: {unavailable} lookups read the damaged block \
         (UNAVAIL), {answered} did not (right answer)"
    );
    Ok(())
}

fn missing() -> Check {
    let _ = std::fs::remove_file(Path::new(CACHE_DIR).join(CACHE_FILE_NAME));
    unavailable()
}

/// Every entry point answers UNAVAIL (errno ENOENT) for the cache in place
/// (missing, or one the module refuses as a whole).
fn unavailable() -> Check {
    let module = Module::open();
    let (status, errno, _) = module.pwnam("na_alice", 4096);
    ensure!(
        (status, errno) == (NSS_STATUS_UNAVAIL, libc::ENOENT),
        "getpwnam: {status}/{errno}"
    );
    let (status, errno, _) = module.grgid(71001, 4096);
    ensure!(
        (status, errno) == (NSS_STATUS_UNAVAIL, libc::ENOENT),
        "getgrgid: {status}/{errno}"
    );
    // SAFETY: plain calls.
    ensure!(
        unsafe { (module.setpwent)(0) } == NSS_STATUS_UNAVAIL,
        "setpwent"
    );
    ensure!(module.pwent(4096).0 == NSS_STATUS_UNAVAIL, "getpwent");
    // SAFETY: plain calls.
    unsafe { (module.endpwent)() };
    ensure!(
        module.initgroups("na_alice", 1, 4, 0).0 == NSS_STATUS_UNAVAIL,
        "initgroups_dyn"
    );
    ensure!(
        matches!(glibc_getpwnam("na_alice", 4096), Answer::Missing(_)),
        "glibc getpwnam"
    );
    Ok(())
}

/// Forks many times while 4 threads keep looking up (and enumerating): every
/// child must look up, enumerate and exit within seconds (no lock held by a
/// parent thread may block it).
fn fork(expected: &Expected, rounds: usize) -> Check {
    install(&expected.bytes);
    let content = Arc::new(expected.content.clone());
    let first = content.users.first().cloned().ok_or("no user")?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for t in 0..4 {
        let (content, stop) = (content.clone(), stop.clone());
        workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for u in &content.users {
                    assert_eq!(glibc_getpwnam(&u.name, 4096), Answer::Found(Passwd::of(u)));
                }
                if t == 0 {
                    // SAFETY: plain calls; enumeration keeps the state lock busy.
                    unsafe { libc::setgrent() };
                    while let Answer::Found(_) = glibc_getgrent(1 << 16) {}
                    // SAFETY: plain call.
                    unsafe { libc::endgrent() };
                }
            }
        }));
    }
    let mut result = Ok(());
    for round in 0..rounds {
        if round % 10 == 5 {
            // Replace the cache now and then, so children also remap.
            install(&expected.bytes);
        }
        // SAFETY: the child only calls lookups and _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = glibc_getpwnam(&first.name, 4096) == Answer::Found(Passwd::of(&first))
                && glibc_getpwuid(first.uid, 4096) == Answer::Found(Passwd::of(&first))
                && glibc_getgrouplist(&first.name, first.gid, 64).is_ok();
            // SAFETY: plain call in the child.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        ensure!(pid > 0, "fork failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: waiting for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: killing our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                result = Err(format!("child {round} hung (deadlock after fork?)"));
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if result.is_err() {
            break;
        }
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            result = Err(format!("child {round} failed: status {status:#x}"));
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join()
            .map_err(|_| "a lookup thread panicked".to_owned())?;
    }
    result?;
    println!("{rounds} forks");
    Ok(())
}

/// The module's re-check interval (`RECHECK_MS` in nss_netauth's source)
/// plus a margin: how long a change that does not mark the file may go
/// unnoticed.
const RECHECK: Duration = Duration::from_millis(1100);

/// A replaced cache is noticed by the next lookup in every process and
/// every thread: children that mapped the old file on their own, children
/// that inherited the parent's mapping, threads with their own mappings and
/// the parent itself, all looking up through glibc right after the
/// replacement. Then a replacement that never marked the old file (a plain
/// rename, as another tool would make): noticed within the re-check
/// interval.
fn replaced(a: &Expected, b: &Expected, c: &Expected) -> Check {
    let name = a
        .content
        .users
        .iter()
        .map(|u| u.name.clone())
        .find(|n| {
            [&b.content, &c.content]
                .iter()
                .all(|x| x.users.iter().any(|u| &u.name == n))
        })
        .ok_or("no user in all three versions")?;
    let answer_in = |e: &Expected| {
        e.content
            .users
            .iter()
            .find(|u| u.name == name)
            .map(|u| Answer::Found(Passwd::of(u)))
            .ok_or("user missing")
    };
    let (in_a, in_b, in_c) = (answer_in(a)?, answer_in(b)?, answer_in(c)?);
    ensure!(in_a != in_b && in_b != in_c, "the versions must differ");
    install(&a.bytes);

    let mut ready = [0 as c_int; 2];
    let mut go = [0 as c_int; 2];
    // SAFETY: two valid arrays of two fds.
    ensure!(
        unsafe { libc::pipe(ready.as_mut_ptr()) == 0 && libc::pipe(go.as_mut_ptr()) == 0 },
        "pipe failed"
    );
    let spawn_child = || -> Result<libc::pid_t, String> {
        // SAFETY: the child only looks up, reads and writes its pipes and
        // calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let before = glibc_getpwnam(&name, 4096);
            let mut byte = [0u8; 1];
            // SAFETY: valid fds and a one-byte buffer.
            unsafe {
                libc::write(ready[1], byte.as_ptr().cast(), 1);
                libc::read(go[0], byte.as_mut_ptr().cast(), 1);
            }
            let after = glibc_getpwnam(&name, 4096);
            let code = if before != in_a {
                2
            } else if after != in_b {
                1
            } else {
                0
            };
            // SAFETY: plain call in the child.
            unsafe { libc::_exit(code) };
        }
        ensure!(pid > 0, "fork failed");
        Ok(pid)
    };
    let mut children = Vec::new();
    // Children that map the cache themselves...
    for _ in 0..3 {
        children.push(spawn_child()?);
    }
    ensure!(glibc_getpwnam(&name, 4096) == in_a, "parent: A not served");
    // ...and children that inherit the parent's mapping.
    for _ in 0..3 {
        children.push(spawn_child()?);
    }
    let barrier = Arc::new(std::sync::Barrier::new(5));
    let mut workers = Vec::new();
    for t in 0..4 {
        let (barrier, name, in_a, in_b) =
            (barrier.clone(), name.clone(), in_a.clone(), in_b.clone());
        workers.push(std::thread::spawn(move || -> Check {
            let before = glibc_getpwnam(&name, 4096);
            barrier.wait();
            barrier.wait();
            let after = glibc_getpwnam(&name, 4096);
            ensure!(before == in_a, "thread {t}: A not served: {before:?}");
            ensure!(
                after == in_b,
                "thread {t}: the replaced cache was served: {after:?}"
            );
            Ok(())
        }));
    }
    for _ in &children {
        let mut byte = [0u8; 1];
        // SAFETY: a valid fd and a one-byte buffer.
        ensure!(
            unsafe { libc::read(ready[0], byte.as_mut_ptr().cast(), 1) } == 1,
            "a child never got ready"
        );
    }
    barrier.wait();
    install(&b.bytes);
    barrier.wait();
    for _ in &children {
        // SAFETY: a valid fd and a one-byte buffer.
        unsafe { libc::write(go[1], [1u8].as_ptr().cast(), 1) };
    }
    let parent_after = glibc_getpwnam(&name, 4096);
    let mut failures = Vec::new();
    for (i, pid) in children.into_iter().enumerate() {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
            failures.push(format!("child {i}: status {status:#x}"));
        }
    }
    for w in workers {
        if let Err(e) = w.join().map_err(|_| "a thread panicked".to_owned())? {
            failures.push(e);
        }
    }
    ensure!(
        parent_after == in_b,
        "parent: the replaced cache was served"
    );
    ensure!(
        failures.is_empty(),
        "the replacement went unnoticed (1: served the old file, 2: did not serve A \
         first): {failures:?}"
    );

    // A replacement that did not mark the old file.
    let tmp = Path::new(CACHE_DIR).join(".unmarked.tmp");
    std::fs::write(&tmp, &c.bytes).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, Path::new(CACHE_DIR).join(CACHE_FILE_NAME)).map_err(|e| e.to_string())?;
    let soon = glibc_getpwnam(&name, 4096);
    ensure!(
        soon == in_b || soon == in_c,
        "unmarked replacement: {soon:?}"
    );
    std::thread::sleep(RECHECK);
    let later = glibc_getpwnam(&name, 4096);
    ensure!(
        later == in_c,
        "unmarked replacement never noticed: {later:?}"
    );
    println!("6 children, 4 threads and the parent noticed the replacement at once");
    Ok(())
}

fn generate(out: &str, users: usize) -> Check {
    let count = u32::try_from(users).map_err(|e| e.to_string())?;
    let content = netauth_e2e::nss::generated_content(0, count, "bench");
    let bytes = netauth_cache::encode(&content).map_err(|e| e.to_string())?;
    std::fs::write(out, &bytes).map_err(|e| e.to_string())?;
    println!(
        "{} users, {} groups, {} bytes",
        content.users.len(),
        content.groups.len(),
        bytes.len()
    );
    Ok(())
}

/// Warm lookups through glibc, one at a time: prints median and p99 in ns.
fn time(expected: &Expected, iterations: usize) -> Check {
    install(&expected.bytes);
    let users = &expected.content.users;
    let groups = &expected.content.groups;
    ensure!(!users.is_empty() && !groups.is_empty(), "empty cache");
    let names: Vec<CString> = users.iter().map(|u| c(&u.name)).collect();
    let group_names: Vec<CString> = groups.iter().map(|g| c(&g.name)).collect();
    let mut buf = vec![0 as c_char; 1 << 20];
    let report = |what: &str, mut samples: Vec<u64>| {
        samples.sort_unstable();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
        println!("{what}: median {} ns, p99 {} ns", at(0.5), at(0.99));
    };
    let mut state = 0x5eed_u64;
    let mut run =
        |f: &mut dyn FnMut(usize, &mut [c_char]) -> bool, n: usize| -> Result<Vec<u64>, Failure> {
            let mut samples = Vec::with_capacity(iterations);
            for _ in 0..iterations {
                let i = (xorshift(&mut state) % n as u64) as usize;
                let start = Instant::now();
                let found = f(i, &mut buf);
                samples.push(start.elapsed().as_nanos() as u64);
                ensure!(found, "lookup {i} failed");
            }
            Ok(samples)
        };
    // SAFETY (all closures below): valid pointers and buffer lengths.
    let samples = run(
        &mut |i, buf| unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            libc::getpwnam_r(
                names[i].as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            ) == 0
                && !result.is_null()
        },
        users.len(),
    )?;
    report("getpwnam_r", samples);
    let samples = run(
        &mut |i, buf| unsafe {
            let mut pwd: libc::passwd = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            libc::getpwuid_r(
                users[i].uid,
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            ) == 0
                && !result.is_null()
        },
        users.len(),
    )?;
    report("getpwuid_r", samples);
    let samples = run(
        &mut |i, buf| unsafe {
            let mut grp: libc::group = std::mem::zeroed();
            let mut result = std::ptr::null_mut();
            libc::getgrnam_r(
                group_names[i].as_ptr(),
                &mut grp,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            ) == 0
                && !result.is_null()
        },
        groups.len(),
    )?;
    report("getgrnam_r", samples);
    let samples = run(
        &mut |i, _| {
            let mut room = [0 as libc::gid_t; 64];
            let mut count = room.len() as c_int;
            unsafe {
                libc::getgrouplist(
                    names[i].as_ptr(),
                    users[i].gid,
                    room.as_mut_ptr(),
                    &mut count,
                ) >= 0
            }
        },
        users.len(),
    )?;
    report("getgrouplist", samples);
    Ok(())
}

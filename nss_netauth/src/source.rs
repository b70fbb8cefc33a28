//! Finding, mapping and re-mapping the cache file.
//!
//! * Each thread keeps its own `Arc` of the current mapping in a
//!   thread-local, so a warm lookup takes no lock, touches no shared
//!   counter and makes no system call: it reads the mapped file's replaced
//!   mark, then looks up in the mapping.
//! * The writer sets the replaced mark in the old file before it renames a
//!   new one over it ([`netauth_cache::mark_replaced`]), so the next lookup
//!   in every process that maps the old file sees the mark and `stat`s the
//!   path. A file replaced without the mark (by another tool, or a writer
//!   whose mark failed), and a file whose owner or mode changed, are
//!   noticed by the `stat` each thread makes at most every
//!   [`RECHECK_MS`] anyway, as is a marked file still at the path (a
//!   writer killed between the mark and the rename): it is simply kept.
//! * A new or replaced file (other device, inode, size, mtime or ctime) is
//!   mapped and its header checked (magic, version, length, header CRC,
//!   section bounds) once per process where possible: the first thread to
//!   see it leaves the mapping in a shared slot for the others. A process's
//!   first lookup opens the file without `stat`ing the path first (there
//!   is no mapping to compare with): open, checks and map take seven
//!   system calls (see [`first_mapping`]). The data
//!   blocks are checked (CRC) when a lookup first reads them
//!   ([`LazyCheck`]), so a fresh process pays for the few blocks its
//!   lookups touch, not for the whole file; the verified-blocks bitset
//!   belongs to the mapping and is shared by the threads that use it. A
//!   damaged block fails the lookups that read it (`UNAVAIL`, logged once
//!   per mapping); an enumeration checks every block before its first
//!   entry, so it never stops half-way. That slot is
//!   only ever taken with `try_lock`; a thread that finds it busy maps the
//!   file on its own. Nothing here can block, so a `fork` while another
//!   thread holds the slot cannot deadlock the child.
//! * The mapping stays valid after the file is replaced (rename keeps the
//!   old inode alive while it is mapped); a lookup under way finishes on the
//!   old snapshot and the next one maps the new file.

use memmap2::{Mmap, MmapOptions};
use netauth_cache::trusted::{open_trusted, TrustRule};
use netauth_cache::{CacheError, CacheView, LazyCheck, CACHE_PATH, REPLACED_MARK_OFFSET};
use std::cell::RefCell;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, TryLockError};

/// Identity of one version of the cache file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    /// Changes with chmod/chown too, so a cache made writable to others is
    /// re-checked (and refused) on the next lookup.
    ctime: i64,
    ctime_nsec: i64,
}

impl FileId {
    fn of(meta: &Metadata) -> Self {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec(),
        }
    }
}

/// Why the cache cannot be used: every case answers `UNAVAIL`.
#[derive(Debug)]
pub enum Unavailable {
    /// No cache file (not refreshed yet, or the path is unreadable).
    Missing,
    /// The file is there but not usable: not a regular root-owned file that
    /// only root can write in a folder only root can write, or damaged.
    /// The text names the file (or folder) and the reason.
    Refused(String),
}

/// One mapped version of the cache file, its header checked, its blocks
/// checked as lookups read them.
pub struct Mapped {
    map: Mmap,
    check: LazyCheck,
    id: FileId,
    /// A damaged block was logged for this mapping.
    damage_logged: AtomicBool,
}

/// How long a thread uses an unmarked mapping without a `stat` of the
/// path. Bounds how late a replacement that did not mark the old file, or
/// a change of the file's owner or mode, is noticed.
pub const RECHECK_MS: u64 = 1000;

/// A monotonic clock in milliseconds that costs no system call (the coarse
/// clock is read from the vDSO); `None` if there is none, and then every
/// lookup stats the path.
fn coarse_millis() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) } != 0 {
        return None;
    }
    Some(
        (now.tv_sec as u64)
            .saturating_mul(1000)
            .saturating_add(now.tv_nsec as u64 / 1_000_000),
    )
}

impl Mapped {
    /// Whether the writer has marked this file as replaced (another file
    /// is, or is about to be, at the path).
    fn replaced(&self) -> bool {
        let Some(word) = self.map.get(REPLACED_MARK_OFFSET..REPLACED_MARK_OFFSET + 4) else {
            return true;
        };
        // SAFETY: `word` is 4 readable bytes of the mapping, which lives as
        // long as `self`. They are the only bytes of a cache file that are
        // ever written in place (by another process, the writer), so they
        // are read with a volatile read, never through the checked views
        // (the header CRC counts them as zero).
        let mark = unsafe { std::ptr::read_volatile(word.as_ptr().cast::<[u8; 4]>()) };
        mark != [0; 4]
    }

    pub fn view(&self) -> Result<CacheView<'_>, CacheError> {
        self.check.view(&self.map)
    }

    /// Checks every block not checked yet (before an enumeration).
    pub fn verify_all(&self) -> Result<(), CacheError> {
        let result = self.check.verify_all(&self.map);
        self.log_damage();
        result
    }

    /// Logs the first damaged block a lookup ran into, once per mapping.
    fn log_damage(&self) {
        if let Some(block) = self.check.damaged_block() {
            if !self.damage_logged.swap(true, Ordering::Relaxed) {
                crate::ffi::log_error(&format!(
                    "nss_netauth: {CACHE_PATH} is damaged (checksum mismatch in block \
                     {block}); lookups that need it answer UNAVAIL until the next refresh"
                ));
            }
        }
    }

    fn load() -> Result<Arc<Mapped>, Unavailable> {
        // Anyone able to write the file or its folder could make every
        // process resolve names to their liking: both must be root's and
        // writable by nobody else; a FIFO or a link there is refused
        // without blocking or following it (see TrustRule::CACHE).
        let trusted = open_trusted(Path::new(CACHE_PATH), &TrustRule::CACHE).map_err(|e| {
            if e.is_untrusted() {
                Unavailable::Refused(e.to_string())
            } else {
                // Missing or unreadable (not refreshed yet, or a folder
                // this process may not enter): not logged.
                Unavailable::Missing
            }
        })?;
        let meta = trusted.metadata().clone();
        let file = trusted.into_file();
        // The checked size (at most 4 GiB): `Mmap::map` would `fstat` the
        // file again to learn it.
        let len = usize::try_from(meta.size())
            .map_err(|_| Unavailable::Refused(format!("{CACHE_PATH}: too large to map")))?;
        // SAFETY: the cache is only ever replaced by rename (write_atomic),
        // never modified or truncated in place, and we map it read-only, so
        // the bytes behind the slice do not change while it is mapped.
        let map = unsafe { MmapOptions::new().len(len).map(&file) }
            .map_err(|e| Unavailable::Refused(format!("{CACHE_PATH}: mmap failed: {e}")))?;
        let check =
            LazyCheck::new(&map).map_err(|e| Unavailable::Refused(format!("{CACHE_PATH}: {e}")))?;
        Ok(Arc::new(Mapped {
            map,
            check,
            id: FileId::of(&meta),
            damage_logged: AtomicBool::new(false),
        }))
    }
}

/// A thread's mapping and when it last compared it with the path.
struct Local {
    mapped: Arc<Mapped>,
    looked_at: Option<u64>,
}

impl Local {
    /// Whether the mapping may be used without a `stat` of the path.
    fn current_without_stat(&self, now: Option<u64>) -> bool {
        let recent = match (self.looked_at, now) {
            (Some(then), Some(now)) => now.saturating_sub(then) < RECHECK_MS,
            _ => false,
        };
        recent && !self.mapped.replaced()
    }
}

thread_local! {
    static LOCAL: RefCell<Option<Local>> = const { RefCell::new(None) };
    /// The last file version this thread refused: logged once, and not
    /// read again until the file changes.
    static LAST_REFUSED: RefCell<Option<FileId>> = const { RefCell::new(None) };
}

static SHARED: Mutex<Option<Arc<Mapped>>> = Mutex::new(None);

/// A mapping of the file whose identity is `id` (or of a newer one): the
/// shared one if it matches, else a fresh one, left in the shared slot.
fn obtain(id: FileId) -> Result<Arc<Mapped>, Unavailable> {
    let mut shared = match SHARED.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    if let Some(slot) = shared.as_deref() {
        if let Some(mapped) = slot.as_ref().filter(|m| m.id == id) {
            return Ok(Arc::clone(mapped));
        }
    }
    if refused_before(id) {
        // Do not re-read and re-check a damaged file on every lookup.
        return Err(Unavailable::Refused("refused before".to_owned()));
    }
    let fresh = Mapped::load().inspect_err(|e| report(id, e))?;
    if let Some(slot) = shared.as_deref_mut() {
        *slot = Some(Arc::clone(&fresh));
    }
    Ok(fresh)
}

/// The first mapping of a process whose threads have mapped nothing yet,
/// made without a `stat` of the path first: with no mapping to compare it
/// with, the `fstat` of the trusted open names the version. `None` when
/// the path must be `stat`ed after all: a mapping is already shared (it
/// may be the current one), the shared slot is busy, this thread refused a
/// version before (not to be read again until the file changes), or the
/// file was refused now (so that the refusal is logged, once, against the
/// version the path names).
fn first_mapping() -> Option<Result<Arc<Mapped>, Unavailable>> {
    let refused_any = LAST_REFUSED
        .try_with(|last| last.try_borrow().map(|last| last.is_some()).unwrap_or(true))
        .unwrap_or(true);
    if refused_any {
        return None;
    }
    let mut shared = match SHARED.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return None,
    };
    if shared.is_some() {
        return None;
    }
    match Mapped::load() {
        Ok(fresh) => {
            *shared = Some(Arc::clone(&fresh));
            Some(Ok(fresh))
        }
        Err(Unavailable::Missing) => Some(Err(Unavailable::Missing)),
        Err(Unavailable::Refused(_)) => None,
    }
}

fn refused_before(id: FileId) -> bool {
    LAST_REFUSED
        .try_with(|last| {
            last.try_borrow()
                .map(|last| *last == Some(id))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Logs a refused cache once per thread and file version; a missing cache
/// is not logged (it is the normal state before the first refresh).
fn report(id: FileId, e: &Unavailable) {
    let Unavailable::Refused(why) = e else { return };
    let first = LAST_REFUSED
        .try_with(|last| match last.try_borrow_mut() {
            Ok(mut last) if *last != Some(id) => {
                *last = Some(id);
                true
            }
            _ => false,
        })
        .unwrap_or(false);
    if first {
        crate::ffi::log_error(&format!("nss_netauth: ignoring the cache: {why}"));
    }
}

fn current_id() -> Result<FileId, Unavailable> {
    std::fs::metadata(CACHE_PATH)
        .map(|m| FileId::of(&m))
        .map_err(|_| Unavailable::Missing)
}

/// Runs `f` on a view of the current cache.
pub fn with_view<R>(f: impl FnOnce(&CacheView<'_>) -> R) -> Result<R, Unavailable> {
    let now = coarse_millis();
    let mut f = Some(f);
    let local = LOCAL.try_with(|cell| {
        // A failed borrow would mean re-entry; fall through to a private
        // mapping rather than panic.
        let Ok(mut slot) = cell.try_borrow_mut() else {
            return None;
        };
        let first = match slot.as_ref() {
            None => first_mapping(),
            Some(_) => None,
        };
        match first {
            Some(Ok(mapped)) => {
                *slot = Some(Local {
                    mapped,
                    looked_at: now,
                })
            }
            Some(Err(e)) => return Some(Err(e)),
            None => {}
        }
        if !slot.as_ref().is_some_and(|l| l.current_without_stat(now)) {
            let id = match current_id() {
                Ok(id) => id,
                Err(e) => {
                    *slot = None;
                    return Some(Err(e));
                }
            };
            match slot.as_mut() {
                Some(local) if local.mapped.id == id => local.looked_at = now,
                _ => match obtain(id) {
                    Ok(mapped) => {
                        *slot = Some(Local {
                            mapped,
                            looked_at: now,
                        })
                    }
                    Err(e) => {
                        *slot = None;
                        return Some(Err(e));
                    }
                },
            }
        }
        let mapped = &slot.as_ref()?.mapped;
        let view = match mapped.view() {
            Ok(view) => view,
            Err(e) => return Some(Err(Unavailable::Refused(e.to_string()))),
        };
        let result = f.take().map(|f| Ok(f(&view)));
        mapped.log_damage();
        result
    });
    if let Ok(Some(result)) = local {
        return result;
    }
    // Thread-local storage gone (thread exiting) or busy: use a mapping
    // for this call only.
    let mapped = obtain(current_id()?)?;
    let view = mapped
        .view()
        .map_err(|e| Unavailable::Refused(e.to_string()))?;
    let result = match f.take() {
        Some(f) => Ok(f(&view)),
        None => Err(Unavailable::Refused("lookup ran twice".to_owned())),
    };
    mapped.log_damage();
    result
}

/// The current mapping itself, kept by an enumeration as its snapshot.
pub fn snapshot() -> Result<Arc<Mapped>, Unavailable> {
    let id = current_id()?;
    let local = LOCAL
        .try_with(|cell| {
            let slot = cell.try_borrow().ok()?;
            slot.as_ref()
                .filter(|l| l.mapped.id == id)
                .map(|l| Arc::clone(&l.mapped))
        })
        .ok()
        .flatten();
    match local {
        Some(mapped) => Ok(mapped),
        None => obtain(id),
    }
}

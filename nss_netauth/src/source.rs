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
//!   lookups touch, not for the whole file; the record of verified blocks
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
//! * Where the file is and what makes it trusted is a [`Source`]: the
//!   shipped module reads [`SHIPPED`] only (the fixed [`CACHE_PATH`], root's
//!   rule [`TrustRule::CACHE`]; nothing at run time can change either). The
//!   logic ([`ThreadState`], [`SharedSlot`]) takes the source, the shared
//!   slot and the time as parameters, so that unit tests drive it on a file
//!   of their own in a folder of their own, with a clock of their own;
//!   [`with_view`] and [`snapshot`] bind it to the thread-local state, the
//!   process-wide slot and the coarse clock.

use memmap2::Mmap;
use netauth_cache::trusted::{open_trusted, TrustRule};
use netauth_cache::{CacheError, CacheView, LazyCheck, CACHE_PATH, REPLACED_MARK_OFFSET};
use std::cell::RefCell;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};

/// Where a cache file is and what makes it trusted.
#[derive(Clone, Copy)]
pub struct Source<'a> {
    /// The cache file.
    pub path: &'a str,
    /// What the file and its folder must be ([`open_trusted`]).
    pub rule: TrustRule,
    /// Where a refused or damaged file is reported.
    pub log: fn(&str),
}

/// The shipped module's source: the fixed path, which no environment
/// variable or configuration can redirect (every process of the host reads
/// it), and root's rule. Anyone able to write the file or its folder could
/// make every process resolve names to their liking: both must be root's
/// and writable by nobody else; a FIFO or a link there is refused without
/// blocking or following it (see [`TrustRule::CACHE`]).
pub static SHIPPED: Source<'static> = Source {
    path: CACHE_PATH,
    rule: TrustRule::CACHE,
    log: crate::ffi::log_error,
};

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
    /// The file is there but not usable: not a regular file owned and
    /// writable as the source's rule says, in a folder that passes it, or
    /// damaged. The text names the file (or folder) and the reason.
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
    pub fn verify_all(&self, source: &Source<'_>) -> Result<(), CacheError> {
        let result = self.check.verify_all(&self.map);
        self.log_damage(source);
        result
    }

    /// Logs the first damaged block a lookup ran into, once per mapping.
    fn log_damage(&self, source: &Source<'_>) {
        if let Some(block) = self.check.damaged_block() {
            if !self.damage_logged.swap(true, Ordering::Relaxed) {
                (source.log)(&format!(
                    "nss_netauth: {} is damaged (checksum mismatch in block \
                     {block}); lookups that need it answer UNAVAIL until the next refresh",
                    source.path
                ));
            }
        }
    }

    fn load(source: &Source<'_>) -> Result<Arc<Mapped>, Unavailable> {
        let path = source.path;
        let trusted = open_trusted(Path::new(path), &source.rule).map_err(|e| {
            if e.is_untrusted() {
                Unavailable::Refused(e.to_string())
            } else {
                // Missing or unreadable (not refreshed yet, or a folder
                // this process may not enter): not logged.
                Unavailable::Missing
            }
        })?;
        let meta = trusted.metadata().clone();
        let map = trusted
            .map()
            .map_err(|e| Unavailable::Refused(e.to_string()))?;
        let check =
            LazyCheck::new(&map).map_err(|e| Unavailable::Refused(format!("{path}: {e}")))?;
        Ok(Arc::new(Mapped {
            map,
            check,
            id: FileId::of(&meta),
            damage_logged: AtomicBool::new(false),
        }))
    }

    /// Runs `f` on a view of this mapping. Inlined: a warm lookup is this,
    /// the replaced mark and the search, and a call here would cost it the
    /// moves of `f`'s captures and of the result.
    #[inline(always)]
    fn run<R>(
        &self,
        source: &Source<'_>,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<R, Unavailable> {
        let view = self
            .view()
            .map_err(|e| Unavailable::Refused(e.to_string()))?;
        let result = f(&view);
        self.log_damage(source);
        Ok(result)
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

/// One thread's view of a source: its mapping, and the last file version
/// it refused (logged once, and not read again until the file changes).
pub struct ThreadState {
    local: Option<Local>,
    last_refused: Option<FileId>,
}

/// The mapping a process's threads share, so that a new file is mapped
/// and its header checked once per process where possible. Only ever
/// taken with `try_lock`: a thread that finds it busy maps the file on its
/// own.
pub struct SharedSlot(Mutex<Option<Arc<Mapped>>>);

impl Default for SharedSlot {
    fn default() -> Self {
        SharedSlot::new()
    }
}

impl SharedSlot {
    pub const fn new() -> Self {
        SharedSlot(Mutex::new(None))
    }

    /// The slot, or `None` when another thread holds it.
    fn try_take(&self) -> Option<MutexGuard<'_, Option<Arc<Mapped>>>> {
        match self.0.try_lock() {
            Ok(guard) => Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// A mapping of the file whose identity is `id` (or of a newer one): the
/// shared one if it matches, else a fresh one, left in the shared slot.
/// `last_refused` is the calling thread's memory of a refused version
/// (`None` when it has none to offer: then a refusal is not logged).
fn obtain(
    source: &Source<'_>,
    shared: &SharedSlot,
    last_refused: Option<&mut Option<FileId>>,
    id: FileId,
) -> Result<Arc<Mapped>, Unavailable> {
    let mut slot = shared.try_take();
    if let Some(mapped) = slot.as_deref().and_then(Option::as_ref) {
        if mapped.id == id {
            return Ok(Arc::clone(mapped));
        }
    }
    if last_refused.as_deref() == Some(&Some(id)) {
        // Do not re-read and re-check a damaged file on every lookup.
        return Err(Unavailable::Refused("refused before".to_owned()));
    }
    let fresh = Mapped::load(source).inspect_err(|e| report(source, last_refused, id, e))?;
    if let Some(slot) = slot.as_deref_mut() {
        *slot = Some(Arc::clone(&fresh));
    }
    Ok(fresh)
}

/// The first mapping of a process whose threads have mapped nothing yet,
/// made without a `stat` of the path first: with no mapping to compare it
/// with, the `fstat` of the trusted open names the version. `None` when
/// the path must be `stat`ed after all: a mapping is already shared (it
/// may be the current one), the shared slot is busy, this thread refused a
/// version before (`refused_any`: not to be read again until the file
/// changes), or the file was refused now (so that the refusal is logged,
/// once, against the version the path names).
fn first_mapping(
    source: &Source<'_>,
    shared: &SharedSlot,
    refused_any: bool,
) -> Option<Result<Arc<Mapped>, Unavailable>> {
    if refused_any {
        return None;
    }
    let mut slot = shared.try_take()?;
    if slot.is_some() {
        return None;
    }
    match Mapped::load(source) {
        Ok(fresh) => {
            *slot = Some(Arc::clone(&fresh));
            Some(Ok(fresh))
        }
        Err(Unavailable::Missing) => Some(Err(Unavailable::Missing)),
        Err(Unavailable::Refused(_)) => None,
    }
}

/// Logs a refused cache once per thread and file version; a missing cache
/// is not logged (it is the normal state before the first refresh).
fn report(
    source: &Source<'_>,
    last_refused: Option<&mut Option<FileId>>,
    id: FileId,
    e: &Unavailable,
) {
    let Unavailable::Refused(why) = e else { return };
    let Some(last) = last_refused else { return };
    if *last != Some(id) {
        *last = Some(id);
        (source.log)(&format!("nss_netauth: ignoring the cache: {why}"));
    }
}

fn current_id(source: &Source<'_>) -> Result<FileId, Unavailable> {
    std::fs::metadata(source.path)
        .map(|m| FileId::of(&m))
        .map_err(|_| Unavailable::Missing)
}

impl ThreadState {
    /// A thread that has mapped nothing yet.
    pub const NEW: ThreadState = ThreadState {
        local: None,
        last_refused: None,
    };

    /// Runs `f` on a view of `source`'s current file; `now` is the time
    /// in milliseconds on a monotonic clock (`None`: unknown, the path is
    /// `stat`ed).
    #[inline(always)]
    pub fn with_view<R>(
        &mut self,
        source: &Source<'_>,
        shared: &SharedSlot,
        now: Option<u64>,
        f: impl FnOnce(&CacheView<'_>) -> R,
    ) -> Result<R, Unavailable> {
        let current = match &self.local {
            Some(local) => local.current_without_stat(now),
            None => false,
        };
        if !current {
            self.look_at_path(source, shared, now)?;
        }
        match &self.local {
            Some(local) => local.mapped.run(source, f),
            None => Err(Unavailable::Missing),
        }
    }

    /// Makes `self.local` the mapping of the file at the path (the first
    /// one, after a mark, or once [`RECHECK_MS`] have passed), or forgets
    /// it when the file cannot be used.
    #[cold]
    #[inline(never)]
    fn look_at_path(
        &mut self,
        source: &Source<'_>,
        shared: &SharedSlot,
        now: Option<u64>,
    ) -> Result<(), Unavailable> {
        if self.local.is_none() {
            match first_mapping(source, shared, self.last_refused.is_some()) {
                Some(Ok(mapped)) => {
                    self.local = Some(Local {
                        mapped,
                        looked_at: now,
                    });
                    return Ok(());
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        let found = current_id(source).and_then(|id| match self.local.as_mut() {
            Some(local) if local.mapped.id == id => {
                local.looked_at = now;
                Ok(None)
            }
            _ => obtain(source, shared, Some(&mut self.last_refused), id).map(Some),
        });
        match found {
            Ok(None) => {}
            Ok(Some(mapped)) => {
                self.local = Some(Local {
                    mapped,
                    looked_at: now,
                })
            }
            Err(e) => {
                self.local = None;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The current mapping itself, kept by an enumeration as its snapshot.
    pub fn snapshot(
        &mut self,
        source: &Source<'_>,
        shared: &SharedSlot,
    ) -> Result<Arc<Mapped>, Unavailable> {
        let id = current_id(source)?;
        match self.local.as_ref().filter(|l| l.mapped.id == id) {
            Some(local) => Ok(Arc::clone(&local.mapped)),
            None => obtain(source, shared, Some(&mut self.last_refused), id),
        }
    }
}

thread_local! {
    static THREAD: RefCell<ThreadState> = const { RefCell::new(ThreadState::NEW) };
}

static SHARED: SharedSlot = SharedSlot::new();

/// Runs `f` on a view of the shipped cache ([`SHIPPED`]).
pub fn with_view<R>(f: impl FnOnce(&CacheView<'_>) -> R) -> Result<R, Unavailable> {
    let now = coarse_millis();
    let mut f = Some(f);
    let done = THREAD.try_with(|cell| {
        // A failed borrow would mean re-entry; fall through to a private
        // mapping rather than panic.
        let mut thread = cell.try_borrow_mut().ok()?;
        let f = f.take()?;
        Some(thread.with_view(&SHIPPED, &SHARED, now, f))
    });
    if let Ok(Some(result)) = done {
        return result;
    }
    // Thread-local storage gone (thread exiting) or busy: use a mapping
    // for this call only.
    let mapped = obtain(&SHIPPED, &SHARED, None, current_id(&SHIPPED)?)?;
    match f.take() {
        Some(f) => mapped.run(&SHIPPED, f),
        None => Err(Unavailable::Refused("lookup ran twice".to_owned())),
    }
}

/// The shipped cache's current mapping, kept by an enumeration as its
/// snapshot.
pub fn snapshot() -> Result<Arc<Mapped>, Unavailable> {
    let done = THREAD.try_with(|cell| {
        let mut thread = cell.try_borrow_mut().ok()?;
        Some(thread.snapshot(&SHIPPED, &SHARED))
    });
    match done {
        Ok(Some(result)) => result,
        _ => obtain(&SHIPPED, &SHARED, None, current_id(&SHIPPED)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;
    use netauth_cache::trusted::Owner;

    /// The uid of `name` as a lookup through `thread` at `now` finds it.
    fn uid_of(
        thread: &mut ThreadState,
        source: &Source<'_>,
        shared: &SharedSlot,
        now: u64,
        name: &str,
    ) -> Result<Result<Option<u32>, CacheError>, Unavailable> {
        thread.with_view(source, shared, Some(now), |view| {
            view.user_by_name(name.as_bytes())
                .map(|user| user.map(|u| u.uid))
        })
    }

    fn mapping(thread: &ThreadState) -> *const Mapped {
        Arc::as_ptr(&thread.local.as_ref().unwrap().mapped)
    }

    #[test]
    fn the_shipped_source_is_the_fixed_path_under_roots_rule() {
        assert_eq!(SHIPPED.path, CACHE_PATH);
        assert_eq!(SHIPPED.rule, TrustRule::CACHE);
        assert_eq!(SHIPPED.rule.owner, Owner::Root);
        assert!(!SHIPPED.rule.follow_links);
    }

    #[test]
    fn a_lookup_maps_the_file_once_and_reuses_the_mapping() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &["alice", "bob"]);
        let t = 50_000;
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t, "alice").unwrap(),
            Ok(Some(1000))
        );
        let first = mapping(&thread);
        // Another thread of the process takes the shared mapping.
        let mut other = ThreadState::NEW;
        assert_eq!(
            uid_of(&mut other, &source, &shared, t, "bob").unwrap(),
            Ok(Some(1001))
        );
        assert_eq!(mapping(&other), first);
        // Within the interval no lookup opens or stats the path: with the
        // file gone, the mapping still answers.
        std::fs::remove_file(&path).unwrap();
        for (dt, name, uid) in [(0, "bob", Some(1001)), (RECHECK_MS - 1, "carol", None)] {
            assert_eq!(
                uid_of(&mut thread, &source, &shared, t + dt, name).unwrap(),
                Ok(uid)
            );
            assert_eq!(mapping(&thread), first);
        }
        assert!(logged().is_empty());
    }

    #[test]
    fn a_marked_replacement_is_seen_by_the_next_lookup() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &["alice"]);
        let t = 50_000;
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t, "alice").unwrap(),
            Ok(Some(1000))
        );
        let old = Arc::clone(&thread.local.as_ref().unwrap().mapped);
        assert!(!old.replaced());
        install(dir.path(), &["carol", "alice"]);
        assert!(old.replaced(), "write_atomic marks the old file");
        // Same instant: the mark alone sends the lookup to the path.
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t, "alice").unwrap(),
            Ok(Some(1001))
        );
        assert_ne!(mapping(&thread), Arc::as_ptr(&old));
        // The new file was mapped once for the process: another thread
        // takes the same mapping.
        let mut other = ThreadState::NEW;
        assert_eq!(
            uid_of(&mut other, &source, &shared, t, "carol").unwrap(),
            Ok(Some(1000))
        );
        assert_eq!(mapping(&other), mapping(&thread));
        // The old mapping stays readable for whoever still holds it.
        assert_eq!(
            old.view()
                .unwrap()
                .user_by_name(b"alice")
                .unwrap()
                .map(|u| u.uid),
            Some(1000)
        );
    }

    #[test]
    fn an_unmarked_replacement_is_seen_after_the_recheck_interval() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &["alice"]);
        let t = 50_000;
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t, "alice").unwrap(),
            Ok(Some(1000))
        );
        install_unmarked(dir.path(), &encoded(&["carol", "alice"]));
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t + RECHECK_MS - 1, "alice").unwrap(),
            Ok(Some(1000)),
            "no stat before the interval is over"
        );
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t + RECHECK_MS, "alice").unwrap(),
            Ok(Some(1001))
        );
        // The stat restarts the interval: a file put back unmarked waits.
        install_unmarked(dir.path(), &encoded(&["alice"]));
        let later = t + RECHECK_MS + RECHECK_MS - 1;
        assert_eq!(
            uid_of(&mut thread, &source, &shared, later, "alice").unwrap(),
            Ok(Some(1001))
        );
        // Without a clock every lookup stats the path.
        let no_clock = thread
            .with_view(&source, &shared, None, |view| {
                view.user_by_name(b"alice").map(|u| u.map(|u| u.uid))
            })
            .unwrap();
        assert_eq!(no_clock, Ok(Some(1000)));
    }

    #[test]
    fn a_missing_file_is_unavailable() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        for t in [50_000, 50_001] {
            assert!(matches!(
                uid_of(&mut thread, &source, &shared, t, "alice"),
                Err(Unavailable::Missing)
            ));
        }
        assert!(matches!(
            thread.snapshot(&source, &shared),
            Err(Unavailable::Missing)
        ));
        // A file that appears is used at once (nothing was mapped).
        install(dir.path(), &["alice"]);
        assert_eq!(
            uid_of(&mut thread, &source, &shared, 50_002, "alice").unwrap(),
            Ok(Some(1000))
        );
        // And one that goes away is missing at the next look at the path,
        // its mapping dropped.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            uid_of(&mut thread, &source, &shared, 50_002 + RECHECK_MS, "alice"),
            Err(Unavailable::Missing)
        ));
        assert!(thread.local.is_none());
        // A missing cache is the state before the first refresh: not logged.
        assert!(logged().is_empty());
    }

    #[test]
    fn a_file_others_may_write_is_refused_and_logged_once() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &["alice"]);
        chmod(Path::new(&path), 0o666);
        for t in [50_000, 50_001, 50_002 + RECHECK_MS] {
            let e = uid_of(&mut thread, &source, &shared, t, "alice").unwrap_err();
            assert!(matches!(e, Unavailable::Refused(_)), "{e:?}");
        }
        let log = logged();
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(
            log[0].contains(&format!("{path}: writable by group or others (mode 0666)")),
            "{log:?}"
        );
        assert!(thread.snapshot(&source, &shared).is_err());
        // Fixed (chmod changes the file's ctime): used again.
        chmod(Path::new(&path), 0o644);
        assert_eq!(
            uid_of(&mut thread, &source, &shared, 60_000, "alice").unwrap(),
            Ok(Some(1000))
        );
        // Made writable while mapped: refused at the next look at the path.
        chmod(Path::new(&path), 0o646);
        assert!(uid_of(&mut thread, &source, &shared, 60_000 + RECHECK_MS, "alice").is_err());
        assert_eq!(logged().len(), 1);
    }

    #[test]
    fn a_file_in_a_folder_others_may_write_is_refused() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &["alice"]);
        chmod(dir.path(), 0o777);
        let e = uid_of(&mut thread, &source, &shared, 50_000, "alice").unwrap_err();
        assert!(matches!(e, Unavailable::Refused(_)), "{e:?}");
        let log = logged();
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(
            log[0].contains("folder writable by group or others"),
            "{log:?}"
        );
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn roots_rule_refuses_a_file_root_does_not_own() {
        let (dir, path) = folder();
        install(dir.path(), &["alice"]);
        if is_root() {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
        }
        let strict = Source {
            rule: TrustRule::CACHE,
            ..source(&path)
        };
        let (mut thread, shared) = fresh();
        let e = uid_of(&mut thread, &strict, &shared, 50_000, "alice").unwrap_err();
        assert!(matches!(e, Unavailable::Refused(_)), "{e:?}");
        assert!(logged()[0].contains("only root may own it"));
    }

    #[test]
    fn a_damaged_block_fails_only_the_lookups_that_read_it_and_is_logged_once() {
        let names = [
            "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
        ];
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install_unmarked(dir.path(), &damaged(&names, "alice"));
        let t = 50_000;
        for _ in 0..3 {
            let found = uid_of(&mut thread, &source, &shared, t, "alice").unwrap();
            assert!(
                matches!(found, Err(CacheError::DamagedBlock { .. })),
                "{found:?}"
            );
            assert_eq!(
                uid_of(&mut thread, &source, &shared, t, "judy").unwrap(),
                Ok(Some(1009))
            );
        }
        let log = logged();
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(
            log[0].contains(&format!("{path} is damaged (checksum mismatch in block")),
            "{log:?}"
        );
        // A new file is a new mapping, checked (and logged) afresh.
        install(dir.path(), &names);
        assert_eq!(
            uid_of(&mut thread, &source, &shared, t, "alice").unwrap(),
            Ok(Some(1000))
        );
        assert!(logged().is_empty());
    }
}

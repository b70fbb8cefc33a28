//! `setpwent`/`getpwent_r`/`endpwent` and the group equivalents.
//!
//! The position is process-wide (as POSIX wants; glibc serialises the calls
//! with its own lock) and walks one snapshot of the cache taken at `set*ent`
//! (or at the first `get*ent`): a cache replaced mid-way does not make the
//! walk skip or repeat entries. A too-small buffer does not advance it.
//! Every block of the snapshot is checked when it is taken: a damaged file
//! gives `UNAVAIL` before the first entry, never a list cut short. An entry
//! the reader refuses although its blocks are intact (one the writer never
//! writes, with `:`, a newline, NUL or id 0: a crafted file, see
//! [`CacheError::UnsafeEntry`](netauth_cache::CacheError::UnsafeEntry))
//! is skipped, as lookups of it fail: the walk lists every other entry.
//!
//! The state sits in a `Mutex`, taken with bounded retries instead of a
//! blocking `lock`: in a child forked while another thread of the parent
//! held it, the call gives up (`UNAVAIL`) instead of hanging forever. A
//! poisoned lock is recovered (the state is valid at every step).
//!
//! The state and the way to the current mapping are parameters: the C
//! entry points pass [`PASSWD`] or [`GROUP`] and the shipped source
//! ([`crate::source::snapshot`]); unit tests pass their own.

use crate::source::{Mapped, Source, Unavailable};
use netauth_cache::CacheView;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

pub enum Position {
    /// Not started: the next `get*ent` takes a snapshot.
    Fresh,
    Walking {
        snapshot: Arc<Mapped>,
        next: usize,
    },
}

pub static PASSWD: Mutex<Position> = Mutex::new(Position::Fresh);
pub static GROUP: Mutex<Position> = Mutex::new(Position::Fresh);

/// What a `get*ent` step produced.
pub enum Step<E> {
    /// Entry packed; the position moved on.
    Entry,
    /// No more entries.
    End,
    /// The entry did not fit or could not be packed; position unchanged.
    Failed(E),
    Unavailable,
}

/// Number of `try_lock` attempts before giving up: yields first, then 1 ms
/// sleeps, about two seconds in all.
const YIELDS: u32 = 100;
const SLEEPS: u32 = 2000;

pub fn lock(state: &Mutex<Position>) -> Option<MutexGuard<'_, Position>> {
    for attempt in 0..YIELDS + SLEEPS {
        match state.try_lock() {
            Ok(guard) => return Some(guard),
            Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
            Err(TryLockError::WouldBlock) if attempt < YIELDS => std::thread::yield_now(),
            Err(TryLockError::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    None
}

/// `set*ent`: start over on the current cache, which `snapshot` maps
/// (`source` names it in the log).
pub fn start(
    state: &Mutex<Position>,
    source: &Source<'_>,
    snapshot: impl FnOnce() -> Result<Arc<Mapped>, Unavailable>,
) -> Result<(), Unavailable> {
    let Some(mut position) = lock(state) else {
        return Err(Unavailable::Refused("enumeration state busy".to_owned()));
    };
    *position = Position::Fresh;
    let snapshot = checked_snapshot(source, snapshot)?;
    *position = Position::Walking { snapshot, next: 0 };
    Ok(())
}

/// The current mapping, every block of it checked.
fn checked_snapshot(
    source: &Source<'_>,
    snapshot: impl FnOnce() -> Result<Arc<Mapped>, Unavailable>,
) -> Result<Arc<Mapped>, Unavailable> {
    let snapshot = snapshot()?;
    snapshot
        .verify_all(source)
        .map_err(|e| Unavailable::Refused(e.to_string()))?;
    Ok(snapshot)
}

/// `end*ent`: drop the snapshot.
pub fn stop(state: &Mutex<Position>) {
    if let Some(mut position) = lock(state) {
        *position = Position::Fresh;
    }
}

/// `get*ent_r`: hands the position to `emit`, which packs the first entry
/// from there it does not skip and returns the position after it (or
/// `Ok(None)` past the end); advances only when it packed. A walk not
/// started takes its snapshot as [`start`] does.
pub fn step<E>(
    state: &Mutex<Position>,
    source: &Source<'_>,
    snapshot: impl FnOnce() -> Result<Arc<Mapped>, Unavailable>,
    emit: impl FnOnce(&CacheView<'_>, usize) -> Result<Option<usize>, E>,
) -> Step<E> {
    let Some(mut position) = lock(state) else {
        return Step::Unavailable;
    };
    if let Position::Fresh = *position {
        match checked_snapshot(source, snapshot) {
            Ok(snapshot) => *position = Position::Walking { snapshot, next: 0 },
            Err(_) => return Step::Unavailable,
        }
    }
    let Position::Walking { snapshot, next } = &mut *position else {
        return Step::Unavailable;
    };
    let Ok(view) = snapshot.view() else {
        return Step::Unavailable;
    };
    match emit(&view, *next) {
        Ok(Some(after)) => {
            *next = after;
            Step::Entry
        }
        Ok(None) => Step::End,
        Err(e) => Step::Failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{SharedSlot, ThreadState};
    use crate::testing::*;
    use netauth_cache::CacheError;

    const NAMES: [&str; 5] = ["erin", "alice", "dave", "bob", "carol"];

    /// One `getpwent` step: the name of the entry packed, `None` at the
    /// end, `Err` when the walk is unavailable.
    fn next_name(
        state: &Mutex<Position>,
        source: &Source<'_>,
        thread: &mut ThreadState,
        shared: &SharedSlot,
    ) -> Result<Option<String>, &'static str> {
        let mut name = None;
        let step = step(
            state,
            source,
            || thread.snapshot(source, shared),
            |view, from| {
                let Some(user) = view.user_at(from)? else {
                    return Ok::<_, CacheError>(None);
                };
                name = Some(String::from_utf8(user.name.to_vec()).unwrap());
                Ok(Some(from + 1))
            },
        );
        match step {
            Step::Entry => Ok(name),
            Step::End => Ok(None),
            Step::Failed(_) => Err("failed"),
            Step::Unavailable => Err("unavailable"),
        }
    }

    /// Up to `count` entries from the position.
    fn walk(
        state: &Mutex<Position>,
        source: &Source<'_>,
        thread: &mut ThreadState,
        shared: &SharedSlot,
        count: usize,
    ) -> Vec<String> {
        let mut names = Vec::new();
        while names.len() < count {
            match next_name(state, source, thread, shared).unwrap() {
                Some(name) => names.push(name),
                None => break,
            }
        }
        names
    }

    #[test]
    fn a_walk_lists_every_entry_once_in_order() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &NAMES);
        let state = Mutex::new(Position::Fresh);
        // getpwent without setpwent starts a walk too.
        assert_eq!(walk(&state, &source, &mut thread, &shared, 100), NAMES);
        for _ in 0..2 {
            assert_eq!(next_name(&state, &source, &mut thread, &shared), Ok(None));
        }
        start(&state, &source, || thread.snapshot(&source, &shared)).unwrap();
        assert_eq!(walk(&state, &source, &mut thread, &shared, 100), NAMES);
    }

    #[test]
    fn a_walk_keeps_its_snapshot_when_the_file_is_replaced() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &NAMES);
        let state = Mutex::new(Position::Fresh);
        start(&state, &source, || thread.snapshot(&source, &shared)).unwrap();
        let mut names = walk(&state, &source, &mut thread, &shared, 2);
        install(dir.path(), &["zoe", "yann"]);
        // Lookups see the new file meanwhile...
        let zoe = thread
            .with_view(&source, &shared, Some(1), |view| {
                view.user_by_name(b"zoe").map(|u| u.is_some())
            })
            .unwrap();
        assert_eq!(zoe, Ok(true));
        // ...while the walk ends on the file it started on.
        names.extend(walk(&state, &source, &mut thread, &shared, 100));
        assert_eq!(names, NAMES);
    }

    #[test]
    fn setpwent_starts_over_on_the_current_file() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &NAMES);
        let state = Mutex::new(Position::Fresh);
        assert_eq!(walk(&state, &source, &mut thread, &shared, 3), NAMES[..3]);
        start(&state, &source, || thread.snapshot(&source, &shared)).unwrap();
        assert_eq!(walk(&state, &source, &mut thread, &shared, 2), NAMES[..2]);
        install(dir.path(), &["zoe", "yann"]);
        start(&state, &source, || thread.snapshot(&source, &shared)).unwrap();
        assert_eq!(
            walk(&state, &source, &mut thread, &shared, 100),
            ["zoe", "yann"]
        );
        // endpwent forgets the position: the next getpwent starts over.
        stop(&state);
        assert!(matches!(*lock(&state).unwrap(), Position::Fresh));
        assert_eq!(walk(&state, &source, &mut thread, &shared, 1), ["zoe"]);
    }

    #[test]
    fn a_damaged_file_makes_the_walk_unavailable() {
        let (dir, path) = folder();
        let source = source(&path);
        let (mut thread, shared) = fresh();
        install(dir.path(), &NAMES);
        let state = Mutex::new(Position::Fresh);
        assert_eq!(walk(&state, &source, &mut thread, &shared, 2), NAMES[..2]);
        // The last entry is damaged: the walk must not list the others
        // and then stop short, nor go on with the old snapshot.
        install_unmarked(dir.path(), &damaged(&NAMES, "carol"));
        let e = start(&state, &source, || thread.snapshot(&source, &shared)).unwrap_err();
        assert!(matches!(e, Unavailable::Refused(_)), "{e:?}");
        for _ in 0..2 {
            assert_eq!(
                next_name(&state, &source, &mut thread, &shared),
                Err("unavailable")
            );
        }
        let log = logged();
        assert_eq!(log.len(), 1, "{log:?}");
        assert!(log[0].contains("is damaged"), "{log:?}");
        // A missing file: unavailable too.
        std::fs::remove_file(&path).unwrap();
        assert!(matches!(
            start(&state, &source, || thread.snapshot(&source, &shared)),
            Err(Unavailable::Missing)
        ));
        // A repaired file can be walked.
        install(dir.path(), &NAMES);
        assert_eq!(walk(&state, &source, &mut thread, &shared, 100), NAMES);
    }
}

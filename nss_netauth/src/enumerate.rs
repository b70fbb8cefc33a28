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

use crate::source::{self, Mapped, Unavailable};
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

pub fn lock(state: &'static Mutex<Position>) -> Option<MutexGuard<'static, Position>> {
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

/// `set*ent`: start over on the current cache.
pub fn start(state: &'static Mutex<Position>) -> Result<(), Unavailable> {
    let Some(mut position) = lock(state) else {
        return Err(Unavailable::Refused("enumeration state busy".to_owned()));
    };
    *position = Position::Fresh;
    let snapshot = checked_snapshot()?;
    *position = Position::Walking { snapshot, next: 0 };
    Ok(())
}

/// The current mapping, every block of it checked.
fn checked_snapshot() -> Result<Arc<Mapped>, Unavailable> {
    let snapshot = source::snapshot()?;
    snapshot
        .verify_all()
        .map_err(|e| Unavailable::Refused(e.to_string()))?;
    Ok(snapshot)
}

/// `end*ent`: drop the snapshot.
pub fn stop(state: &'static Mutex<Position>) {
    if let Some(mut position) = lock(state) {
        *position = Position::Fresh;
    }
}

/// `get*ent_r`: hands the position to `emit`, which packs the first entry
/// from there it does not skip and returns the position after it (or
/// `Ok(None)` past the end); advances only when it packed.
pub fn step<E>(
    state: &'static Mutex<Position>,
    emit: impl FnOnce(&CacheView<'_>, usize) -> Result<Option<usize>, E>,
) -> Step<E> {
    let Some(mut position) = lock(state) else {
        return Step::Unavailable;
    };
    if let Position::Fresh = *position {
        match checked_snapshot() {
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

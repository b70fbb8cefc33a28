//! Helpers shared by the tests of every crate in the workspace.
//!
//! Some tests need root: the end-to-end tests mount file systems in private
//! namespaces and switch users, and tests elsewhere write configs, caches
//! and certificates that the trusted-file rules accept only when root owns
//! them. Run as a normal user, `cargo test` skips those, naming each one on
//! stderr (past the test harness's capture), so the rest of the suite still
//! passes and nobody mistakes a skip for a pass. CI runs as root and sets
//! [`REQUIRE_ROOT_VAR`], so there a skip is a failure.

use std::io::Write;
use std::panic::Location;

/// Set (to anything) where every test must run: a skip fails.
pub const REQUIRE_ROOT_VAR: &str = "NETAUTH_E2E_REQUIRE_ROOT";

/// Whether the calling test must return at once for lack of root; says so
/// on stderr. Panics instead when [`REQUIRE_ROOT_VAR`] is set.
#[track_caller]
pub fn skip_without_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return false;
    }
    let test = test_name(Location::caller());
    assert!(
        std::env::var_os(REQUIRE_ROOT_VAR).is_none(),
        "{test} needs root (mount namespaces, root-owned files, switching users) and {REQUIRE_ROOT_VAR} is set"
    );
    // Not eprintln!: the harness captures that for passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs root (mount namespaces, root-owned files, switching users); run as root to test it"
    );
    true
}

/// `file:line name`: libtest names each test's thread after the test (with
/// one test thread it may be `main`, and the location still says which).
fn test_name(at: &Location<'_>) -> String {
    let location = format!("{}:{}", at.file(), at.line());
    match std::thread::current().name() {
        Some(name) if name != "main" => format!("{location} {name}"),
        _ => location,
    }
}

/// Where `needle` first occurs in `haystack` (a test's way to find a
/// record's bytes in an encoded cache, to damage or craft them). Panics,
/// naming the needle, when it is not there.
#[track_caller]
pub fn offset_of(haystack: &[u8], needle: &[u8]) -> usize {
    let at = haystack.windows(needle.len()).position(|w| w == needle);
    assert!(
        at.is_some(),
        "{:?} is not in the bytes",
        String::from_utf8_lossy(needle)
    );
    at.unwrap_or_default()
}

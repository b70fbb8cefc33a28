//! The status file the refresh leaves in the cache folder, and the shrink guard.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use netauth_cache::trusted::{read_trusted, TrustRule};

/// File name of the status file inside the cache folder.
pub const STATUS_FILE_NAME: &str = "refresh-status.json";

/// What `netauth-unix status` reports about the last refreshes. Times are
/// seconds since the Unix epoch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshStatus {
    /// When the last refresh started.
    pub last_attempt: Option<i64>,
    /// When the last successful refresh started (its data is in the cache).
    pub last_success: Option<i64>,
    /// The last refresh's error; `None` when it succeeded.
    pub last_error: Option<String>,
    /// gRPC calls the last refresh made.
    pub last_calls: u32,
    /// Wall time of the last refresh.
    pub last_duration_ms: u64,
    /// Server the last refresh asked.
    pub server: String,
    /// Counts of the last successful refresh.
    pub users: usize,
    pub groups: usize,
    pub private_groups: usize,
    pub entities_fetched: usize,
    pub groups_fetched: usize,
    pub skipped_users: usize,
    pub skipped_groups: usize,
    /// Everything logged as skipped or changed.
    pub notices: usize,
}

impl RefreshStatus {
    /// Reads the status file of `cache_dir`; `Ok(None)` if there is none yet.
    /// It must be trusted like the cache next to it
    /// ([`TrustRule::REFRESH_STATE`]).
    pub fn load(cache_dir: &Path) -> io::Result<Option<RefreshStatus>> {
        match read_trusted(&cache_dir.join(STATUS_FILE_NAME), &TrustRule::REFRESH_STATE) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// Writes the status file atomically.
    pub fn store(&self, cache_dir: &Path) -> io::Result<()> {
        let mut text = serde_json::to_vec_pretty(self).map_err(io::Error::other)?;
        text.push(b'\n');
        netauth_cache::write_atomic(cache_dir, STATUS_FILE_NAME, &text)
    }
}

/// A refresh that would drop too many of the previous cache's users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "refusing to replace a cache of {previous} {what} with one of {new} (more than \
     {max_percent}% lost; a misconfigured server?); run with --force if this is intended"
)]
pub struct ShrinkRefused {
    /// `"users"` or `"groups"`.
    pub what: &'static str,
    pub previous: usize,
    pub new: usize,
    pub max_percent: u8,
}

/// Refuses a new count of `what` that drops more than `max_percent` of the
/// previous one. No previous cache (or an empty one) never refuses.
pub fn check_shrink(
    what: &'static str,
    previous: usize,
    new: usize,
    max_percent: u8,
) -> Result<(), ShrinkRefused> {
    let lost = previous.saturating_sub(new) as u128;
    if lost * 100 > previous as u128 * u128::from(max_percent) {
        return Err(ShrinkRefused {
            what,
            previous,
            new,
            max_percent,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrink_guard() {
        assert!(check_shrink("users", 0, 0, 50).is_ok());
        assert!(check_shrink("users", 0, 10, 50).is_ok());
        assert!(check_shrink("users", 100, 200, 50).is_ok());
        assert!(check_shrink("users", 100, 50, 50).is_ok()); // exactly half lost
        assert_eq!(
            check_shrink("users", 100, 49, 50),
            Err(ShrinkRefused {
                what: "users",
                previous: 100,
                new: 49,
                max_percent: 50
            })
        );
        assert!(check_shrink("users", 1000, 0, 50).is_err());
        assert!(check_shrink("users", 1000, 0, 100).is_ok()); // guard off
        assert!(check_shrink("users", 1000, 999, 0).is_err()); // any loss refused
        assert!(check_shrink("users", 3, 1, 50).is_err());
        assert!(check_shrink("users", usize::MAX, 0, 99).is_err());
        let msg = check_shrink("users", 20_000, 5, 50)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("20000 users") && msg.contains("--force"),
            "{msg}"
        );
        let msg = check_shrink("groups", 10, 2, 50).unwrap_err().to_string();
        assert!(msg.contains("10 groups"), "{msg}");
    }

    #[test]
    fn status_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(RefreshStatus::load(dir.path()).unwrap(), None);
        let s = RefreshStatus {
            last_attempt: Some(10),
            last_success: Some(9),
            last_error: Some("boom".into()),
            users: 3,
            ..Default::default()
        };
        s.store(dir.path()).unwrap();
        assert_eq!(RefreshStatus::load(dir.path()).unwrap(), Some(s));
    }
}

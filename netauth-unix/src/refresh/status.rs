//! The status file the refresh leaves in the cache folder, and the shrink guard.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::build::{ClashOutcome, Notice};
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
    /// NetAuth groups of the last successful refresh that a local group's
    /// name kept from being served under their own name.
    pub group_name_clashes: Vec<GroupNameClash>,
    /// Served users that went without at least one supplementary group for
    /// such a clash.
    pub users_without_clashing_groups: usize,
    /// Served users that a local group line names as a member.
    pub local_group_members: Vec<LocalGroupMember>,
}

/// A NetAuth group whose name a local group has.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupNameClash {
    pub name: String,
    pub gid: u32,
    /// The name it is served under (`renamed_group_prefix`); `None`: not
    /// served as a group.
    pub served_as: Option<String>,
    /// The renamed name that was taken or unusable, if renaming was refused.
    pub rename_refused: Option<String>,
    /// Served users whose primary gid it is.
    pub primary_users: usize,
    /// Served members that went without it as a supplementary group.
    pub supplementary_users: usize,
}

/// A served user named in a local group line (glibc adds that group).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalGroupMember {
    pub user: String,
    pub group: String,
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

    /// Records the name clashes and local group members among a
    /// successful refresh's notices (replacing those of the one before).
    pub fn set_clashes(&mut self, notices: &[Notice]) {
        self.group_name_clashes.clear();
        self.local_group_members.clear();
        self.users_without_clashing_groups = 0;
        for n in notices {
            match n {
                Notice::GroupNameClash {
                    name,
                    gid,
                    outcome,
                    primary_users,
                    supplementary_users,
                } => self.group_name_clashes.push(GroupNameClash {
                    name: name.clone(),
                    gid: *gid,
                    served_as: match outcome {
                        ClashOutcome::Renamed(n) => Some(n.clone()),
                        _ => None,
                    },
                    rename_refused: match outcome {
                        ClashOutcome::RenameRefused(n) => Some(n.clone()),
                        _ => None,
                    },
                    primary_users: *primary_users,
                    supplementary_users: *supplementary_users,
                }),
                Notice::SupplementaryGroupsLeftOut { users } => {
                    self.users_without_clashing_groups = *users
                }
                Notice::LocalGroupMember { user, group } => {
                    self.local_group_members.push(LocalGroupMember {
                        user: user.clone(),
                        group: group.clone(),
                    })
                }
                _ => {}
            }
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
        if netauth_test_support::skip_without_root() {
            return;
        }
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

    #[test]
    fn clashes_are_recorded_and_survive_a_round_trip() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        let mut s = RefreshStatus {
            users_without_clashing_groups: 99,
            ..Default::default()
        };
        s.set_clashes(&[
            Notice::GroupNameClash {
                name: "users".into(),
                gid: 3300,
                outcome: ClashOutcome::Omitted,
                primary_users: 4,
                supplementary_users: 2,
            },
            Notice::GroupNameClash {
                name: "staff".into(),
                gid: 3301,
                outcome: ClashOutcome::Renamed("netauth-staff".into()),
                primary_users: 1,
                supplementary_users: 0,
            },
            Notice::GroupNameClash {
                name: "adm".into(),
                gid: 3302,
                outcome: ClashOutcome::RenameRefused("netauth-adm".into()),
                primary_users: 0,
                supplementary_users: 1,
            },
            Notice::SupplementaryGroupsLeftOut { users: 3 },
            Notice::LocalGroupMember {
                user: "carol".into(),
                group: "sudo".into(),
            },
            Notice::GecosCleaned { user: "x".into() },
        ]);
        assert_eq!(s.users_without_clashing_groups, 3);
        assert_eq!(s.group_name_clashes.len(), 3);
        assert_eq!(s.group_name_clashes[0].served_as, None);
        assert_eq!(s.group_name_clashes[0].rename_refused, None);
        assert_eq!(
            s.group_name_clashes[1].served_as.as_deref(),
            Some("netauth-staff")
        );
        assert_eq!(
            s.group_name_clashes[2].rename_refused.as_deref(),
            Some("netauth-adm")
        );
        assert_eq!(
            s.local_group_members,
            vec![LocalGroupMember {
                user: "carol".into(),
                group: "sudo".into()
            }]
        );
        let dir = tempfile::tempdir().unwrap();
        s.store(dir.path()).unwrap();
        assert_eq!(RefreshStatus::load(dir.path()).unwrap(), Some(s.clone()));

        // The next refresh without clashes clears them.
        s.set_clashes(&[]);
        assert_eq!(s.group_name_clashes, vec![]);
        assert_eq!(s.local_group_members, vec![]);
        assert_eq!(s.users_without_clashing_groups, 0);
    }

    #[test]
    fn a_status_file_written_before_the_clash_fields_still_loads() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(STATUS_FILE_NAME),
            r#"{
  "last_attempt": 1750000000,
  "last_success": 1750000000,
  "last_error": null,
  "last_calls": 4,
  "last_duration_ms": 120,
  "server": "netauth.example:1729",
  "users": 25,
  "groups": 11,
  "private_groups": 0,
  "entities_fetched": 25,
  "groups_fetched": 12,
  "skipped_users": 0,
  "skipped_groups": 1,
  "notices": 1
}
"#,
        )
        .unwrap();
        let s = RefreshStatus::load(dir.path()).unwrap().unwrap();
        assert_eq!((s.users, s.groups, s.skipped_groups), (25, 11, 1));
        assert_eq!(s.group_name_clashes, vec![]);
        assert_eq!(s.local_group_members, vec![]);
        assert_eq!(s.users_without_clashing_groups, 0);
    }
}

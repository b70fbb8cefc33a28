//! Mapping the fetched directory to passwd and group entries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::members::{self, MembershipInput, MembershipIssue};
use super::model::{SourceEntity, SourceGroup};
use netauth_cache::clean::{self, LocalAccounts, NameProblem};
use netauth_cache::{UnixGroup, UnixUser};
use netauth_core::config::refresh::{MissingPrimaryGroup, RefreshSettings};

/// Why an entity or group is not served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The name breaks the name rule.
    BadName(NameProblem),
    /// Two or more entities (or groups) carry this name; all are skipped.
    DuplicateName,
    /// No `Number`.
    NoNumber,
    /// Number 0: root's id is never served from the directory.
    RootId,
    /// Below `min_uid`/`min_gid` (negative numbers included).
    BelowMinimum { number: i32, minimum: u32 },
    /// Two or more entities (or groups) carry this number; all are skipped.
    DuplicateNumber(i32),
    /// A local account or group of the same name exists.
    ShadowsLocalName,
    /// A local account or group with the same id exists.
    ShadowsLocalId(u32),
    /// The primary group is unset or not served, and the policy is `skip`.
    NoPrimaryGroup(Option<String>),
    /// The policy is `private`, but the private group's gid or name is taken.
    PrivateGroupTaken(Option<String>),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::BadName(p) => write!(f, "{p}"),
            SkipReason::DuplicateName => f.write_str("the name is held by more than one record"),
            SkipReason::NoNumber => f.write_str("no number"),
            SkipReason::RootId => f.write_str("number 0 is never served"),
            SkipReason::BelowMinimum { number, minimum } => {
                write!(f, "number {number} is below the minimum {minimum}")
            }
            SkipReason::DuplicateNumber(n) => {
                write!(f, "number {n} is held by more than one record")
            }
            SkipReason::ShadowsLocalName => f.write_str("a local account of that name exists"),
            SkipReason::ShadowsLocalId(n) => write!(f, "a local account with id {n} exists"),
            SkipReason::NoPrimaryGroup(None) => f.write_str(
                "no primary group (missing_primary_group = \"skip\")",
            ),
            SkipReason::NoPrimaryGroup(Some(g)) => write!(
                f,
                "primary group {g:?} is not served (missing_primary_group = \"skip\")"
            ),
            SkipReason::PrivateGroupTaken(g) => write!(
                f,
                "primary group {:?} is not served and the user-private group's name or gid is taken",
                g.as_deref().unwrap_or("")
            ),
        }
    }
}

/// Something the refresh skipped or changed; the rest of the refresh went on.
/// Displayed with every directory string escaped (`{:?}`), so a hostile name
/// cannot forge log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    UserSkipped {
        name: String,
        reason: SkipReason,
    },
    GroupSkipped {
        name: String,
        reason: SkipReason,
    },
    /// The gecos held `:` or control characters (replaced by spaces) or was too long.
    GecosCleaned {
        user: String,
    },
    /// The entity's home was unusable; the template was used.
    HomeReplaced {
        user: String,
        home: String,
    },
    /// The entity's shell is not listed in the shells file; the default was used.
    ShellReplaced {
        user: String,
        shell: String,
    },
    /// An expansion was ignored while computing memberships.
    Expansion(MembershipIssue),
    /// The shells file could not be read: every user gets the default shell.
    ShellsFileUnreadable {
        path: std::path::PathBuf,
        error: String,
    },
    /// The cache being replaced could not be read, so the shrink guard had
    /// nothing to compare with.
    PreviousCacheUnreadable {
        error: String,
    },
    /// The status file could not be written (the cache was).
    StatusFileUnwritable {
        error: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::UserSkipped { name, reason } => write!(f, "user {name:?} skipped: {reason}"),
            Notice::GroupSkipped { name, reason } => write!(f, "group {name:?} skipped: {reason}"),
            Notice::GecosCleaned { user } => write!(
                f,
                "user {user:?}: gecos cleaned (':' and control characters replaced, or cut)"
            ),
            Notice::HomeReplaced { user, home } => {
                write!(
                    f,
                    "user {user:?}: unusable home {home:?} replaced by the template"
                )
            }
            Notice::ShellReplaced { user, shell } => write!(
                f,
                "user {user:?}: shell {shell:?} is not in the shells file; default used"
            ),
            Notice::Expansion(MembershipIssue::BadExpansion { group, expansion }) => {
                write!(
                    f,
                    "group {group:?}: malformed expansion {expansion:?} ignored"
                )
            }
            Notice::Expansion(MembershipIssue::UnknownTarget { group, target }) => {
                write!(
                    f,
                    "group {group:?}: expansion names unknown group {target:?}; ignored"
                )
            }
            Notice::Expansion(MembershipIssue::Cycle { group, target }) => write!(
                f,
                "group {group:?}: expansion of {target:?} lies on a cycle; ignored"
            ),
            Notice::ShellsFileUnreadable { path, error } => write!(
                f,
                "cannot read the shells file {}: {error}; every user gets the default shell",
                path.display()
            ),
            Notice::StatusFileUnwritable { error } => {
                write!(f, "cannot write the status file: {error}")
            }
            Notice::PreviousCacheUnreadable { error } => write!(
                f,
                "the previous cache is unreadable ({error}); the shrink guard is skipped"
            ),
        }
    }
}

/// The mapped directory, ready for the cache.
#[derive(Debug, Default)]
pub struct Mapped {
    /// Sorted by uid.
    pub users: Vec<UnixUser>,
    /// Sorted by gid; user-private groups included.
    pub groups: Vec<UnixGroup>,
    /// Per served user, the sorted gids of the served groups it is an
    /// effective member of (users without any are absent).
    pub user_groups: BTreeMap<String, Vec<u32>>,
    /// How many of `groups` are user-private groups made by the refresh.
    pub private_groups: usize,
    pub notices: Vec<Notice>,
}

/// Numbers claimed more than once.
fn duplicated<I: IntoIterator<Item = T>, T: std::hash::Hash + Eq>(items: I) -> HashSet<T> {
    let mut seen = HashSet::new();
    let mut dup = HashSet::new();
    for i in items {
        if let Some(i) = seen.replace(i) {
            dup.insert(i);
        }
    }
    dup
}

/// Checks the id rules shared by users and groups.
fn check_id(
    number: Option<i32>,
    minimum: u32,
    duplicates: &HashSet<i32>,
) -> Result<u32, SkipReason> {
    let n = number.ok_or(SkipReason::NoNumber)?;
    if n == 0 {
        return Err(SkipReason::RootId);
    }
    if n < 0 || (n as u32) < minimum {
        return Err(SkipReason::BelowMinimum { number: n, minimum });
    }
    if duplicates.contains(&n) {
        return Err(SkipReason::DuplicateNumber(n));
    }
    Ok(n as u32)
}

/// Maps entities and groups to passwd/group entries, applying every
/// cleaning rule of the module documentation.
pub fn map_directory(
    entities: &[SourceEntity],
    groups: &[SourceGroup],
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
) -> Mapped {
    let mut out = Mapped::default();

    // ---- groups ----
    let dup_group_names = duplicated(groups.iter().map(|g| g.name.as_str()));
    let dup_gids = duplicated(groups.iter().filter_map(|g| g.number));
    // name -> served gid
    let mut served_group_gid: HashMap<&str, u32> = HashMap::new();
    for g in groups {
        let verdict = (|| {
            if dup_group_names.contains(g.name.as_str()) {
                return Err(SkipReason::DuplicateName);
            }
            clean::check_name(&g.name).map_err(SkipReason::BadName)?;
            let gid = check_id(g.number, settings.min_gid, &dup_gids)?;
            if local.group_names.contains(&g.name) {
                return Err(SkipReason::ShadowsLocalName);
            }
            if local.gids.contains(&gid) {
                return Err(SkipReason::ShadowsLocalId(gid));
            }
            Ok(gid)
        })();
        match verdict {
            Ok(gid) => {
                served_group_gid.insert(g.name.as_str(), gid);
            }
            Err(reason) => out.notices.push(Notice::GroupSkipped {
                name: g.name.clone(),
                reason,
            }),
        }
    }

    // ---- users ----
    let dup_ids = duplicated(entities.iter().map(|e| e.id.as_str()));
    let dup_uids = duplicated(entities.iter().filter_map(|e| e.number));
    let all_group_names: HashSet<&str> = groups.iter().map(|g| g.name.as_str()).collect();
    let all_gids: HashSet<i32> = groups.iter().filter_map(|g| g.number).collect();
    // entity index -> served user index
    let mut served_user: Vec<Option<usize>> = vec![None; entities.len()];
    let mut private_groups: Vec<UnixGroup> = Vec::new();
    for (ei, e) in entities.iter().enumerate() {
        let verdict = (|| {
            if dup_ids.contains(e.id.as_str()) {
                return Err(SkipReason::DuplicateName);
            }
            clean::check_name(&e.id).map_err(SkipReason::BadName)?;
            let uid = check_id(e.number, settings.min_uid, &dup_uids)?;
            if local.user_names.contains(&e.id) {
                return Err(SkipReason::ShadowsLocalName);
            }
            if local.uids.contains(&uid) {
                return Err(SkipReason::ShadowsLocalId(uid));
            }
            let primary = e
                .primary_group
                .as_deref()
                .and_then(|g| served_group_gid.get(g).copied());
            let (gid, private) = match (primary, settings.missing_primary_group) {
                (Some(gid), _) => (gid, false),
                (None, MissingPrimaryGroup::Skip) => {
                    return Err(SkipReason::NoPrimaryGroup(e.primary_group.clone()))
                }
                (None, MissingPrimaryGroup::Private) => {
                    let taken = uid < settings.min_gid
                        || all_gids.contains(&(uid as i32))
                        || all_group_names.contains(e.id.as_str())
                        || local.gids.contains(&uid)
                        || local.group_names.contains(&e.id);
                    if taken {
                        return Err(SkipReason::PrivateGroupTaken(e.primary_group.clone()));
                    }
                    (uid, true)
                }
            };
            Ok((uid, gid, private))
        })();
        let (uid, gid, private) = match verdict {
            Ok(v) => v,
            Err(reason) => {
                out.notices.push(Notice::UserSkipped {
                    name: e.id.clone(),
                    reason,
                });
                continue;
            }
        };
        if private {
            private_groups.push(UnixGroup {
                name: e.id.clone(),
                gid,
                members: Vec::new(),
            });
        }

        let raw_gecos = e
            .gecos
            .as_deref()
            .or(e.display_name.as_deref())
            .unwrap_or("");
        let (gecos, changed) = clean::clean_gecos(raw_gecos);
        if changed {
            out.notices
                .push(Notice::GecosCleaned { user: e.id.clone() });
        }

        let home = match e.home.as_deref().filter(|_| settings.use_entity_home) {
            Some(h) => match clean::usable_path(h) {
                Some(h) => h.to_owned(),
                None => {
                    out.notices.push(Notice::HomeReplaced {
                        user: e.id.clone(),
                        home: h.to_owned(),
                    });
                    settings.templated_home(&e.id, uid)
                }
            },
            None => settings.templated_home(&e.id, uid),
        };

        let shell = match e.shell.as_deref() {
            Some(s) if shells.contains(s) && clean::usable_path(s).is_some() => s.to_owned(),
            Some(s) => {
                out.notices.push(Notice::ShellReplaced {
                    user: e.id.clone(),
                    shell: s.to_owned(),
                });
                settings.default_shell.clone()
            }
            None => settings.default_shell.clone(),
        };

        served_user[ei] = Some(out.users.len());
        out.users.push(UnixUser {
            name: e.id.clone(),
            uid,
            gid,
            gecos,
            home,
            shell,
            locked: e.locked,
        });
    }

    // ---- memberships (over everything fetched, served or not) ----
    let membership = members::compute(&MembershipInput {
        group_names: groups.iter().map(|g| g.name.as_str()).collect(),
        group_expansions: groups
            .iter()
            .map(|g| g.expansions.iter().map(String::as_str).collect())
            .collect(),
        entity_direct_groups: entities
            .iter()
            .map(|e| e.groups.iter().map(String::as_str).collect())
            .collect(),
    });
    out.notices
        .extend(membership.issues.iter().cloned().map(Notice::Expansion));

    let mut user_gids: Vec<Vec<u32>> = vec![Vec::new(); out.users.len()];
    for (gi, g) in groups.iter().enumerate() {
        // A duplicated name is skipped, and only the first of the name
        // carries members in the computation.
        let Some(&gid) = served_group_gid.get(g.name.as_str()) else {
            continue;
        };
        let mut names = Vec::new();
        for &ei in &membership.members[gi] {
            if let Some(ui) = served_user[ei as usize] {
                names.push(out.users[ui].name.clone());
                user_gids[ui].push(gid);
            }
        }
        names.sort_unstable();
        out.groups.push(UnixGroup {
            name: g.name.clone(),
            gid,
            members: names,
        });
    }
    out.private_groups = private_groups.len();
    out.groups.extend(private_groups);
    out.groups.sort_by_key(|g| g.gid);

    for (ui, mut gids) in user_gids.into_iter().enumerate() {
        if gids.is_empty() {
            continue;
        }
        gids.sort_unstable();
        gids.dedup();
        out.user_groups.insert(out.users[ui].name.clone(), gids);
    }
    out.users.sort_by_key(|u| u.uid);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, number: i32, primary: &str, groups: &[&str]) -> SourceEntity {
        SourceEntity {
            id: id.into(),
            number: Some(number),
            primary_group: Some(primary.into()),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    fn group(name: &str, number: i32, expansions: &[&str]) -> SourceGroup {
        SourceGroup {
            name: name.into(),
            number: Some(number),
            expansions: expansions.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn shells() -> HashSet<String> {
        clean::parse_shells("/bin/sh\n/bin/bash\n")
    }

    fn local() -> LocalAccounts {
        LocalAccounts::parse(
            "root:x:0:0::/root:/bin/bash\nlocaluser:x:1500:1500::/home/l:/bin/sh\n",
            "root:x:0:\nlocalgroup:x:1600:\nusers:x:100:\n",
        )
    }

    fn skipped_users(m: &Mapped) -> Vec<(String, SkipReason)> {
        m.notices
            .iter()
            .filter_map(|n| match n {
                Notice::UserSkipped { name, reason } => Some((name.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    fn skipped_groups(m: &Mapped) -> Vec<(String, SkipReason)> {
        m.notices
            .iter()
            .filter_map(|n| match n {
                Notice::GroupSkipped { name, reason } => Some((name.clone(), reason.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_plain_directory_maps_fully() {
        let s = RefreshSettings::default();
        let mut alice = entity("alice", 2001, "staff", &["staff", "admins"]);
        alice.gecos = Some("Alice,,,".into());
        alice.home = Some("/srv/alice".into());
        alice.shell = Some("/bin/bash".into());
        let mut bob = entity("bob", 2002, "staff", &["staff"]);
        bob.display_name = Some("Bob B".into());
        bob.locked = true;
        let m = map_directory(
            &[bob, alice],
            &[
                group("staff", 3000, &[]),
                group("admins", 3001, &[]),
                group("all", 3002, &["INCLUDE:staff"]),
            ],
            &s,
            &local(),
            &shells(),
        );
        assert!(m.notices.is_empty(), "{:?}", m.notices);
        assert_eq!(
            m.users,
            vec![
                UnixUser {
                    name: "alice".into(),
                    uid: 2001,
                    gid: 3000,
                    gecos: "Alice,,,".into(),
                    home: "/srv/alice".into(),
                    shell: "/bin/bash".into(),
                    locked: false,
                },
                UnixUser {
                    name: "bob".into(),
                    uid: 2002,
                    gid: 3000,
                    gecos: "Bob B".into(),
                    home: "/home/bob".into(),
                    shell: "/bin/sh".into(),
                    locked: true,
                },
            ]
        );
        let g: Vec<(&str, u32, Vec<&str>)> = m
            .groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.gid,
                    g.members.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            g,
            vec![
                ("staff", 3000, vec!["alice", "bob"]),
                ("admins", 3001, vec!["alice"]),
                ("all", 3002, vec!["alice", "bob"]),
            ]
        );
        assert_eq!(m.user_groups["alice"], vec![3000, 3001, 3002]);
        assert_eq!(m.user_groups["bob"], vec![3000, 3002]);
    }

    #[test]
    fn hostile_names_and_ids_are_skipped_and_the_rest_goes_on() {
        let s = RefreshSettings::default();
        let entities = vec![
            entity("good", 2000, "g", &["g"]),
            entity("bad:name", 2001, "g", &["g"]),
            entity("evil\nroot::0:0::/:/bin/sh", 2002, "g", &["g"]),
            entity("12345", 2003, "g", &[]),
            entity("toor", 0, "g", &["g"]),
            entity("low", 999, "g", &[]),
            entity("neg", -5, "g", &[]),
            entity("twin1", 2100, "g", &["g"]),
            entity("twin2", 2100, "g", &[]),
            entity("root", 2200, "g", &[]),
            entity("localuser", 2201, "g", &[]),
            entity("takes1500", 1500, "g", &[]),
            entity("dupid", 2300, "g", &[]),
            entity("dupid", 2301, "g", &[]),
            SourceEntity {
                id: "nonum".into(),
                primary_group: Some("g".into()),
                ..Default::default()
            },
        ];
        let m = map_directory(&entities, &[group("g", 3000, &[])], &s, &local(), &shells());
        assert_eq!(m.users.len(), 1);
        assert_eq!(m.users[0].name, "good");
        assert_eq!(m.groups[0].members, vec!["good"]);
        let skipped = skipped_users(&m);
        let reason = |n: &str| {
            skipped
                .iter()
                .filter(|(name, _)| name == n)
                .map(|(_, r)| r.clone())
                .collect::<Vec<_>>()
        };
        assert!(matches!(
            reason("bad:name")[..],
            [SkipReason::BadName(NameProblem::BadCharacter)]
        ));
        assert_eq!(reason("evil\nroot::0:0::/:/bin/sh").len(), 1);
        assert!(matches!(
            reason("12345")[..],
            [SkipReason::BadName(NameProblem::AllDigits)]
        ));
        assert_eq!(reason("toor"), vec![SkipReason::RootId]);
        assert_eq!(
            reason("low"),
            vec![SkipReason::BelowMinimum {
                number: 999,
                minimum: 1000
            }]
        );
        assert_eq!(
            reason("neg"),
            vec![SkipReason::BelowMinimum {
                number: -5,
                minimum: 1000
            }]
        );
        assert_eq!(reason("twin1"), vec![SkipReason::DuplicateNumber(2100)]);
        assert_eq!(reason("twin2"), vec![SkipReason::DuplicateNumber(2100)]);
        assert_eq!(reason("root"), vec![SkipReason::ShadowsLocalName]);
        assert_eq!(reason("localuser"), vec![SkipReason::ShadowsLocalName]);
        assert_eq!(reason("takes1500"), vec![SkipReason::ShadowsLocalId(1500)]);
        assert_eq!(
            reason("dupid"),
            vec![SkipReason::DuplicateName, SkipReason::DuplicateName]
        );
        assert_eq!(reason("nonum"), vec![SkipReason::NoNumber]);
        // Displayed notices escape the hostile newline.
        let text: Vec<String> = m.notices.iter().map(ToString::to_string).collect();
        assert!(text.iter().all(|t| !t.contains('\n')), "{text:?}");
    }

    #[test]
    fn hostile_groups_are_skipped_and_members_still_flow_through_them() {
        let s = RefreshSettings::default();
        // "hidden" is below min_gid so not served, but "top" INCLUDEs it.
        let groups = vec![
            group("top", 3000, &["INCLUDE:hidden"]),
            group("hidden", 500, &[]),
            group("bad,name", 3001, &[]),
            group("zero", 0, &[]),
            group("dupa", 3100, &[]),
            group("dupb", 3100, &[]),
            group("localgroup", 3200, &[]),
            group("takes1600", 1600, &[]),
            group("users", 3300, &[]),
        ];
        let entities = vec![entity(
            "alice",
            2000,
            "top",
            &["hidden", "bad,name", "dupa"],
        )];
        let m = map_directory(&entities, &groups, &s, &local(), &shells());
        let names: Vec<&str> = m.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["top"]);
        assert_eq!(m.groups[0].members, vec!["alice"]);
        assert_eq!(m.user_groups["alice"], vec![3000]);
        let skipped = skipped_groups(&m);
        assert_eq!(skipped.len(), 8, "{skipped:?}");
        assert!(skipped.contains(&("zero".into(), SkipReason::RootId)));
        assert!(skipped.contains(&("dupa".into(), SkipReason::DuplicateNumber(3100))));
        assert!(skipped.contains(&("dupb".into(), SkipReason::DuplicateNumber(3100))));
        assert!(skipped.contains(&("localgroup".into(), SkipReason::ShadowsLocalName)));
        assert!(skipped.contains(&("takes1600".into(), SkipReason::ShadowsLocalId(1600))));
        assert!(skipped.contains(&("users".into(), SkipReason::ShadowsLocalName)));
    }

    #[test]
    fn fields_are_cleaned_or_replaced() {
        let s = RefreshSettings::default();
        let mut e = entity("carol", 2000, "g", &[]);
        e.gecos = Some("Carol:x:0:0\nroot".into());
        e.home = Some("/home/../etc".into());
        e.shell = Some("/usr/bin/fish".into());
        let mut d = entity("dave", 2001, "g", &[]);
        d.home = Some("relative/home".into());
        d.shell = Some("/bin/sh\n".into());
        let m = map_directory(&[e, d], &[group("g", 3000, &[])], &s, &local(), &shells());
        assert_eq!(m.users[0].gecos, "Carol x 0 0 root");
        assert_eq!(m.users[0].home, "/home/carol");
        assert_eq!(m.users[0].shell, "/bin/sh");
        assert_eq!(m.users[1].home, "/home/dave");
        assert_eq!(m.users[1].shell, "/bin/sh");
        assert_eq!(m.notices.len(), 5, "{:?}", m.notices);
    }

    #[test]
    fn entity_home_can_be_ignored() {
        let s = RefreshSettings {
            use_entity_home: false,
            home_template: "/net/{uid}/{name}".into(),
            ..Default::default()
        };
        let mut e = entity("erin", 2000, "g", &[]);
        e.home = Some("/srv/erin".into());
        let m = map_directory(&[e], &[group("g", 3000, &[])], &s, &local(), &shells());
        assert_eq!(m.users[0].home, "/net/2000/erin");
        assert!(m.notices.is_empty());
    }

    #[test]
    fn missing_primary_group_skip_policy() {
        let s = RefreshSettings::default();
        let mut none = entity("none", 2000, "x", &[]);
        none.primary_group = None;
        let m = map_directory(
            &[
                entity("ghost", 2001, "nosuch", &[]),
                entity("low", 2002, "lowgroup", &[]),
                none,
            ],
            &[group("lowgroup", 10, &[])],
            &s,
            &local(),
            &shells(),
        );
        assert!(m.users.is_empty());
        let skipped = skipped_users(&m);
        assert!(skipped.contains(&(
            "ghost".into(),
            SkipReason::NoPrimaryGroup(Some("nosuch".into()))
        )));
        assert!(skipped.contains(&(
            "low".into(),
            SkipReason::NoPrimaryGroup(Some("lowgroup".into()))
        )));
        assert!(skipped.contains(&("none".into(), SkipReason::NoPrimaryGroup(None))));
    }

    #[test]
    fn missing_primary_group_private_policy() {
        let s = RefreshSettings {
            missing_primary_group: MissingPrimaryGroup::Private,
            ..Default::default()
        };
        let entities = vec![
            entity("frank", 2000, "nosuch", &["g"]),
            // gid 3000 is taken by group g.
            entity("gina", 3000, "nosuch", &[]),
            // a group named like the user exists.
            entity("g", 2001, "nosuch", &[]),
            // a local group has gid 1600.
            entity("hank", 1600, "nosuch", &[]),
            // a local group named "localgroup"... and a user of that name.
            entity("localgroup", 2002, "nosuch", &[]),
        ];
        let m = map_directory(&entities, &[group("g", 3000, &[])], &s, &local(), &shells());
        let users: Vec<(&str, u32, u32)> = m
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.uid, u.gid))
            .collect();
        assert_eq!(users, vec![("frank", 2000, 2000)]);
        assert_eq!(m.private_groups, 1);
        assert_eq!(
            m.groups,
            vec![
                UnixGroup {
                    name: "frank".into(),
                    gid: 2000,
                    members: vec![]
                },
                UnixGroup {
                    name: "g".into(),
                    gid: 3000,
                    members: vec!["frank".into()]
                },
            ]
        );
        let skipped = skipped_users(&m);
        assert_eq!(skipped.len(), 4, "{skipped:?}");
        for name in ["gina", "g", "hank", "localgroup"] {
            assert!(
                skipped
                    .iter()
                    .any(|(n, r)| n == name && matches!(r, SkipReason::PrivateGroupTaken(_))),
                "{name}: {skipped:?}"
            );
        }
    }

    #[test]
    fn output_is_independent_of_answer_order() {
        let s = RefreshSettings::default();
        let mut entities: Vec<SourceEntity> = (0..50)
            .map(|i| entity(&format!("u{i}"), 2000 + i, "g0", &[&format!("g{}", i % 5)]))
            .collect();
        let mut groups: Vec<SourceGroup> = (0..5)
            .map(|i| group(&format!("g{i}"), 3000 + i, &["INCLUDE:g4"]))
            .collect();
        groups[4].expansions.clear();
        let a = map_directory(&entities, &groups, &s, &local(), &shells());
        entities.reverse();
        groups.reverse();
        let b = map_directory(&entities, &groups, &s, &local(), &shells());
        assert_eq!(a.users, b.users);
        assert_eq!(a.groups, b.groups);
        assert_eq!(a.user_groups, b.user_groups);
    }
}

//! Mapping the fetched directory to passwd and group entries.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::members::{self, MembershipInput, MembershipIssue, Memberships};
use super::model::{SourceEntity, SourceGroup};
use netauth_cache::clean::{self, KeyProblem, LocalAccounts, NameProblem};
use netauth_cache::{CacheError, CacheSource, UnixGroup, UnixUser};
use netauth_core::config::refresh::{LocalGroupNameClash, MissingPrimaryGroup, RefreshSettings};

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

/// What became of a NetAuth group whose name a local group has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClashOutcome {
    /// `local_group_name_clash = "omit"`: not served as a group.
    Omitted,
    /// `"rename"`: served under this name.
    Renamed(String),
    /// `"rename"`, but this renamed name is taken by a local or NetAuth
    /// group, or breaks the name rule: not served as a group.
    RenameRefused(String),
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
    /// A public key of the entity is not served (the user is). `index` is
    /// its place in `EntityMeta.Keys`, counted from 0.
    KeyDropped {
        user: String,
        index: usize,
        problem: KeyProblem,
    },
    /// The entity has more public keys than are served; the first ones are.
    KeysCut {
        user: String,
        kept: usize,
        dropped: usize,
    },
    /// A local group has the group's name (its number is free). Its members
    /// are served all the same: `primary_users` keep `gid` as their primary
    /// gid; unless renamed, `gid` has no name on the host and
    /// `supplementary_users` go without it.
    GroupNameClash {
        name: String,
        gid: u32,
        outcome: ClashOutcome,
        primary_users: usize,
        supplementary_users: usize,
    },
    /// Served users who lost at least one supplementary group to a name
    /// clash (each counted once).
    SupplementaryGroupsLeftOut {
        users: usize,
    },
    /// A local group line names a served user as a member: glibc adds that
    /// local group to the user's groups (NSS merges memberships by name).
    LocalGroupMember {
        user: String,
        group: String,
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
    /// Cached credentials of users no longer served were deleted.
    VerifiersRemoved {
        count: usize,
    },
    /// The cached credentials or the offline state could not be updated.
    OfflineStoreUnusable {
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
            Notice::KeyDropped {
                user,
                index,
                problem,
            } => write!(
                f,
                "user {user:?}: public key number {} not served: {problem}",
                index + 1
            ),
            Notice::KeysCut {
                user,
                kept,
                dropped,
            } => write!(
                f,
                "user {user:?}: {dropped} public keys beyond the first {kept} not served"
            ),
            Notice::GroupNameClash {
                name,
                gid,
                outcome,
                primary_users,
                supplementary_users,
            } => {
                write!(
                    f,
                    "group {name:?} (gid {gid}): a local group has that name, so "
                )?;
                match outcome {
                    ClashOutcome::Renamed(served_as) => {
                        return write!(f, "it is served as {served_as:?} (with its members)")
                    }
                    ClashOutcome::Omitted => f.write_str("it is not served as a group")?,
                    ClashOutcome::RenameRefused(renamed) => write!(
                        f,
                        "it would be served as {renamed:?}, but that name is taken or \
                         unusable: not served as a group"
                    )?,
                }
                write!(
                    f,
                    "; {primary_users} users keep gid {gid} as primary group (no name \
                     resolves it), {supplementary_users} users go without it as a \
                     supplementary group"
                )
            }
            Notice::SupplementaryGroupsLeftOut { users } => write!(
                f,
                "{users} users lost a supplementary group whose name a local group has"
            ),
            Notice::LocalGroupMember { user, group } => write!(
                f,
                "user {user:?} is listed in the local group {group:?}: glibc gives it \
                 that group's gid too (remove the name from the local group file if \
                 that is stale)"
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
            Notice::VerifiersRemoved { count } => write!(
                f,
                "cached credentials of {count} user(s) no longer served deleted"
            ),
            Notice::OfflineStoreUnusable { error } => write!(
                f,
                "cannot update the cached credentials or the offline state: {error}"
            ),
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
    /// Per served user, its usable public keys (`TYPE:KEY`, in the
    /// directory's order); users without any are absent.
    pub user_keys: BTreeMap<String, Vec<String>>,
    /// How many of `groups` are user-private groups made by the refresh.
    pub private_groups: usize,
    pub notices: Vec<Notice>,
}

/// The mapped directory as the refresh hands it to the writer: what
/// [`Mapped`] holds, with each group's members and each user's gids by
/// user index instead of by name, so that a member or a gid list costs 4
/// bytes a name instead of a copy of it (at 100,000 users, most of the
/// refresh's memory). [`MappedIndexed::into_mapped`] gives the [`Mapped`].
#[derive(Debug, Default)]
pub struct MappedIndexed {
    /// Sorted by uid.
    pub users: Vec<UnixUser>,
    /// Sorted by gid; user-private groups included.
    pub groups: Vec<IndexedGroup>,
    /// Per user (indexed like `users`), the sorted gids of the served
    /// groups it is an effective member of.
    pub user_gids: Vec<Vec<u32>>,
    /// As [`Mapped::user_keys`].
    pub user_keys: BTreeMap<String, Vec<String>>,
    pub private_groups: usize,
    pub notices: Vec<Notice>,
}

/// A served group with its members as indexes into
/// [`MappedIndexed::users`], in the order of their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedGroup {
    pub name: String,
    pub gid: u32,
    pub members: Vec<u32>,
}

impl MappedIndexed {
    /// The same directory with member and gid lists by name.
    pub fn into_mapped(self) -> Mapped {
        let name = |i: &u32| {
            self.users
                .get(*i as usize)
                .map(|u| u.name.clone())
                .unwrap_or_default()
        };
        let groups = self
            .groups
            .iter()
            .map(|g| UnixGroup {
                name: g.name.clone(),
                gid: g.gid,
                members: g.members.iter().map(name).collect(),
            })
            .collect();
        let user_groups = self
            .users
            .iter()
            .zip(&self.user_gids)
            .filter(|(_, gids)| !gids.is_empty())
            .map(|(u, gids)| (u.name.clone(), gids.clone()))
            .collect();
        Mapped {
            users: self.users,
            groups,
            user_groups,
            user_keys: self.user_keys,
            private_groups: self.private_groups,
            notices: self.notices,
        }
    }

    /// What the writer reads: this directory, with when and where it was
    /// fetched.
    pub fn cache_source<'a>(&'a self, generated_at: i64, source: &'a str) -> IndexedSource<'a> {
        IndexedSource {
            mapped: self,
            generated_at,
            source,
        }
    }
}

/// [`MappedIndexed`] as the cache writer reads it.
pub struct IndexedSource<'a> {
    mapped: &'a MappedIndexed,
    generated_at: i64,
    source: &'a str,
}

impl CacheSource for IndexedSource<'_> {
    fn users(&self) -> &[UnixUser] {
        &self.mapped.users
    }
    fn user_gids(&self, index: usize) -> &[u32] {
        self.mapped.user_gids.get(index).map_or(&[], Vec::as_slice)
    }
    fn user_keys(&self, index: usize) -> &[String] {
        self.mapped
            .users
            .get(index)
            .and_then(|u| self.mapped.user_keys.get(&u.name))
            .map_or(&[], Vec::as_slice)
    }
    fn group_count(&self) -> usize {
        self.mapped.groups.len()
    }
    fn group(&self, index: usize) -> (&str, u32) {
        self.mapped
            .groups
            .get(index)
            .map_or(("", 0), |g| (g.name.as_str(), g.gid))
    }
    fn members(&self, index: usize) -> impl Iterator<Item = &str> + Clone {
        let users = &self.mapped.users;
        self.mapped
            .groups
            .get(index)
            .map_or(&[][..], |g| g.members.as_slice())
            .iter()
            .map(move |&i| users.get(i as usize).map_or("", |u| u.name.as_str()))
    }
    fn generated_at(&self) -> i64 {
        self.generated_at
    }
    fn source(&self) -> &str {
        self.source
    }
    fn check_shape(&self, user_names: &HashSet<&str>) -> Result<(), CacheError> {
        let members_known = self.mapped.groups.iter().all(|g| {
            g.members
                .iter()
                .all(|&i| (i as usize) < self.mapped.users.len())
        });
        if !members_known || self.mapped.user_gids.len() > self.mapped.users.len() {
            return Err(CacheError::Invalid(
                "a member or gid list refers to no user".to_owned(),
            ));
        }
        netauth_cache::refuse_unknown_users(&self.mapped.user_keys, user_names, "keys")
    }
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

/// The keys of entity `user` that may be served: those
/// [`clean::check_key`] accepts, at most [`clean::MAX_KEYS_PER_USER`]; a
/// notice for each one left out. A key that breaks the rule costs only
/// itself, never the user.
fn served_keys(user: &str, keys: Vec<String>, notices: &mut Vec<Notice>) -> Vec<String> {
    let mut served = Vec::new();
    let mut cut = 0;
    for (index, key) in keys.into_iter().enumerate() {
        match clean::check_key(&key) {
            Err(problem) => notices.push(Notice::KeyDropped {
                user: user.to_owned(),
                index,
                problem,
            }),
            Ok(_) if served.len() == clean::MAX_KEYS_PER_USER => cut += 1,
            Ok(_) => served.push(key),
        }
    }
    if cut > 0 {
        notices.push(Notice::KeysCut {
            user: user.to_owned(),
            kept: served.len(),
            dropped: cut,
        });
    }
    served
}

/// Maps entities and groups to passwd/group entries, applying every
/// cleaning rule of the module documentation. Groups come first (a user
/// needs its primary group's gid), then users, then memberships (which
/// need both).
pub fn map_directory(
    entities: &[SourceEntity],
    groups: &[SourceGroup],
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
) -> Mapped {
    map_directory_owned(entities.to_vec(), groups, None, settings, local, shells)
}

/// [`map_directory`] with the effective memberships already computed (a
/// published snapshot carries them; indexed like `groups`, members as
/// indexes into `entities`).
pub fn map_directory_with(
    entities: &[SourceEntity],
    groups: &[SourceGroup],
    membership: Memberships,
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
) -> Mapped {
    map_directory_owned(
        entities.to_vec(),
        groups,
        Some(membership),
        settings,
        local,
        shells,
    )
}

/// [`map_directory_with`] (or [`map_directory`] when `membership` is
/// `None`) consuming the entities, for the refresh's peak memory: their
/// direct groups are freed once the memberships are known, their strings
/// move into the users rather than being copied, and they are freed before
/// the member lists are built. Same output as the borrowing versions.
pub fn map_directory_owned(
    entities: Vec<SourceEntity>,
    groups: &[SourceGroup],
    membership: Option<Memberships>,
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
) -> Mapped {
    map_directory_indexed(entities, groups, membership, settings, local, shells).into_mapped()
}

/// [`map_directory_owned`] with member and gid lists by user index (see
/// [`MappedIndexed`]): what the refresh writes from.
pub fn map_directory_indexed(
    mut entities: Vec<SourceEntity>,
    groups: &[SourceGroup],
    membership: Option<Memberships>,
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
) -> MappedIndexed {
    let membership = membership.unwrap_or_else(|| effective_memberships(&entities, groups));
    // Only the memberships needed the direct groups.
    for e in &mut entities {
        e.groups = Vec::new();
    }
    let mut out = MappedIndexed::default();
    let group_verdicts = judge_groups(groups, settings, local, &mut out.notices);
    let served = map_users(
        &mut entities,
        groups,
        &group_verdicts,
        settings,
        local,
        shells,
        &mut out.notices,
    );
    drop(entities);
    out.users = served.users;
    out.user_keys = served.user_keys;
    out.user_gids = map_memberships(
        &membership,
        groups,
        &group_verdicts,
        &served.user_of_entity,
        &mut out,
    );
    drop(membership);
    report_local_group_members(&out.users, local, &mut out.notices);

    out.private_groups = served.private_groups.len();
    out.groups
        .extend(served.private_groups.into_iter().map(|g| IndexedGroup {
            name: g.name,
            gid: g.gid,
            members: Vec::new(),
        }));
    // Gids and uids are unique here (duplicates were skipped): an unstable
    // sort gives the same order without a stable sort's scratch copy.
    out.groups.sort_unstable_by_key(|g| g.gid);
    for gids in &mut out.user_gids {
        gids.sort_unstable();
        gids.dedup();
        gids.shrink_to_fit();
    }
    sort_users_by_uid(&mut out);
    out
}

/// Sorts the users by uid, their gid lists with them, and points every
/// member index at the user's new place (member lists keep their order).
fn sort_users_by_uid(out: &mut MappedIndexed) {
    let mut order: Vec<u32> = (0..out.users.len() as u32).collect();
    order.sort_unstable_by_key(|&i| out.users.get(i as usize).map(|u| u.uid));
    // new_place[old index] = new index.
    let mut new_place = vec![0u32; order.len()];
    for (new, &old) in order.iter().enumerate() {
        if let Some(slot) = new_place.get_mut(old as usize) {
            *slot = new as u32;
        }
    }
    drop(order);
    for g in &mut out.groups {
        for m in &mut g.members {
            *m = new_place.get(*m as usize).copied().unwrap_or(*m);
        }
    }
    // In place, by cycles: the element at `i` belongs at `new_place[i]`.
    for i in 0..new_place.len() {
        while let Some(&target) = new_place.get(i) {
            let target = target as usize;
            if target == i {
                break;
            }
            out.users.swap(i, target);
            out.user_gids.swap(i, target);
            new_place.swap(i, target);
        }
    }
}

/// What became of each fetched group, decided before any user is mapped.
struct GroupVerdicts<'a> {
    /// Per group: its gid and the name it is served under (`None`: a local
    /// group has its name and it is not served). `None` for skipped groups.
    gid: Vec<Option<(u32, Option<String>)>>,
    /// Name -> gid of every group a user may have as its primary group: the
    /// served ones and the ones only a local name keeps from being served.
    primary_gid: HashMap<&'a str, u32>,
    /// The names groups are served under.
    served_names: HashSet<String>,
    /// Every fetched group name, served or not.
    all_names: HashSet<&'a str>,
    /// Groups whose name a local group has (by index), and what became of them.
    clashes: Vec<(usize, ClashOutcome)>,
}

/// Decides what becomes of each group: its name and gid checked against
/// the rules and the local groups, and, when a local group has its name,
/// what `local_group_name_clash` makes of it.
fn judge_groups<'a>(
    groups: &'a [SourceGroup],
    settings: &RefreshSettings,
    local: &LocalAccounts,
    notices: &mut Vec<Notice>,
) -> GroupVerdicts<'a> {
    let dup_group_names = duplicated(groups.iter().map(|g| g.name.as_str()));
    let dup_gids = duplicated(groups.iter().filter_map(|g| g.number));
    let mut verdicts = GroupVerdicts {
        gid: vec![None; groups.len()],
        primary_gid: HashMap::new(),
        served_names: HashSet::new(),
        all_names: groups.iter().map(|g| g.name.as_str()).collect(),
        clashes: Vec::new(),
    };
    for (gi, (g, slot)) in groups.iter().zip(verdicts.gid.iter_mut()).enumerate() {
        let verdict = (|| {
            if dup_group_names.contains(g.name.as_str()) {
                return Err(SkipReason::DuplicateName);
            }
            clean::check_name(&g.name).map_err(SkipReason::BadName)?;
            let gid = check_id(g.number, settings.min_gid, &dup_gids)?;
            // A number clash skips the group even when the name clashes too.
            if local.gids.contains(&gid) {
                return Err(SkipReason::ShadowsLocalId(gid));
            }
            Ok(gid)
        })();
        let gid = match verdict {
            Ok(gid) => gid,
            Err(reason) => {
                notices.push(Notice::GroupSkipped {
                    name: g.name.clone(),
                    reason,
                });
                continue;
            }
        };
        verdicts.primary_gid.insert(g.name.as_str(), gid);
        let served_as = if local.group_names.contains(&g.name) {
            let outcome = clash_outcome(&g.name, settings, local, &verdicts.all_names);
            let served_as = match &outcome {
                ClashOutcome::Renamed(name) => Some(name.clone()),
                _ => None,
            };
            verdicts.clashes.push((gi, outcome));
            served_as
        } else {
            Some(g.name.clone())
        };
        if let Some(name) = &served_as {
            verdicts.served_names.insert(name.clone());
        }
        *slot = Some((gid, served_as));
    }
    verdicts
}

/// What `local_group_name_clash` makes of a group whose name a local group
/// has.
fn clash_outcome(
    name: &str,
    settings: &RefreshSettings,
    local: &LocalAccounts,
    all_group_names: &HashSet<&str>,
) -> ClashOutcome {
    match settings.local_group_name_clash {
        LocalGroupNameClash::Omit => ClashOutcome::Omitted,
        LocalGroupNameClash::Rename => {
            let renamed = format!("{}{}", settings.renamed_group_prefix, name);
            let free = clean::check_name(&renamed).is_ok()
                && !local.group_names.contains(&renamed)
                && !all_group_names.contains(renamed.as_str());
            if free {
                ClashOutcome::Renamed(renamed)
            } else {
                ClashOutcome::RenameRefused(renamed)
            }
        }
    }
}

/// The served users, in entity order.
struct ServedUsers {
    users: Vec<UnixUser>,
    /// Entity index -> served user index.
    user_of_entity: Vec<Option<usize>>,
    /// The user-private groups made for users without a primary group.
    private_groups: Vec<UnixGroup>,
    /// Served user name -> the keys that may be served (users without any
    /// are left out).
    user_keys: BTreeMap<String, Vec<String>>,
}

/// Checks every entity against the rules and the local accounts, finds its
/// primary gid (or makes a user-private group) and cleans its fields.
fn map_users(
    entities: &mut [SourceEntity],
    groups: &[SourceGroup],
    group_verdicts: &GroupVerdicts<'_>,
    settings: &RefreshSettings,
    local: &LocalAccounts,
    shells: &HashSet<String>,
    notices: &mut Vec<Notice>,
) -> ServedUsers {
    // Owned: the entities' names move into the users below.
    let dup_ids: HashSet<String> = duplicated(entities.iter().map(|e| e.id.as_str()))
        .into_iter()
        .map(str::to_owned)
        .collect();
    let dup_uids = duplicated(entities.iter().filter_map(|e| e.number));
    // Every fetched gid, so that a user-private group never takes the
    // number of a group that is skipped or not served under its name.
    let all_gids: HashSet<i32> = groups.iter().filter_map(|g| g.number).collect();
    let mut served = ServedUsers {
        users: Vec::with_capacity(entities.len()),
        user_of_entity: vec![None; entities.len()],
        private_groups: Vec::new(),
        user_keys: BTreeMap::new(),
    };
    for (e, slot) in entities.iter_mut().zip(served.user_of_entity.iter_mut()) {
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
                .and_then(|g| group_verdicts.primary_gid.get(g).copied());
            let (gid, private) = match (primary, settings.missing_primary_group) {
                (Some(gid), _) => (gid, false),
                (None, MissingPrimaryGroup::Skip) => {
                    return Err(SkipReason::NoPrimaryGroup(
                        e.primary_group.as_deref().map(str::to_owned),
                    ))
                }
                (None, MissingPrimaryGroup::Private) => {
                    let taken = uid < settings.min_gid
                        || all_gids.contains(&(uid as i32))
                        || group_verdicts.all_names.contains(e.id.as_str())
                        || group_verdicts.served_names.contains(&e.id)
                        || local.gids.contains(&uid)
                        || local.group_names.contains(&e.id);
                    if taken {
                        return Err(SkipReason::PrivateGroupTaken(
                            e.primary_group.as_deref().map(str::to_owned),
                        ));
                    }
                    (uid, true)
                }
            };
            Ok((uid, gid, private))
        })();
        let (uid, gid, private) = match verdict {
            Ok(v) => v,
            Err(reason) => {
                notices.push(Notice::UserSkipped {
                    name: e.id.clone(),
                    reason,
                });
                continue;
            }
        };
        if private {
            served.private_groups.push(UnixGroup {
                name: e.id.clone(),
                gid,
                members: Vec::new(),
            });
        }
        let keys = served_keys(&e.id, std::mem::take(&mut e.keys), notices);
        if !keys.is_empty() {
            served.user_keys.insert(e.id.clone(), keys);
        }
        *slot = Some(served.users.len());
        served
            .users
            .push(clean_user(e, uid, gid, settings, shells, notices));
    }
    served.users.shrink_to_fit();
    served
}

/// The passwd entry of a served entity: gecos cleaned, an unusable home or
/// unlisted shell replaced (each with a notice).
fn clean_user(
    e: &mut SourceEntity,
    uid: u32,
    gid: u32,
    settings: &RefreshSettings,
    shells: &HashSet<String>,
    notices: &mut Vec<Notice>,
) -> UnixUser {
    let raw_gecos = e
        .gecos
        .as_deref()
        .or(e.display_name.as_deref())
        .unwrap_or("");
    let (gecos, changed) = clean::clean_gecos(raw_gecos);
    if changed {
        notices.push(Notice::GecosCleaned { user: e.id.clone() });
    }

    let home = match e.home.as_deref().filter(|_| settings.use_entity_home) {
        Some(h) => match clean::usable_path(h) {
            Some(h) => h.to_owned(),
            None => {
                notices.push(Notice::HomeReplaced {
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
            notices.push(Notice::ShellReplaced {
                user: e.id.clone(),
                shell: s.to_owned(),
            });
            settings.default_shell.clone()
        }
        None => settings.default_shell.clone(),
    };

    UnixUser {
        // The entity is not read again: its name moves.
        name: std::mem::take(&mut e.id),
        uid,
        gid,
        gecos,
        home,
        shell,
        locked: e.locked,
    }
}

/// Effective members of every fetched group (indexed like `groups`),
/// over every fetched entity: a skipped group or entity still passes
/// memberships on.
pub(crate) fn effective_memberships(
    entities: &[SourceEntity],
    groups: &[SourceGroup],
) -> Memberships {
    members::compute(&MembershipInput {
        group_names: groups.iter().map(|g| g.name.as_str()).collect(),
        group_expansions: groups
            .iter()
            .map(|g| g.expansions.iter().map(String::as_str).collect())
            .collect(),
        // Each entity's own list, lent: no copy per entity.
        entity_direct_groups: entities.iter().map(|e| e.groups.as_slice()).collect(),
    })
}

/// Of a group's effective members (entity indexes), the served ones, as
/// indexes into the served users.
fn served_members<'a>(
    effective: &'a [u32],
    served_user: &'a [Option<usize>],
) -> impl Iterator<Item = usize> + 'a {
    effective
        .iter()
        .filter_map(|&ei| served_user.get(ei as usize).copied().flatten())
}

/// The served members of a served group (user indexes, in the order of
/// their names, as the cache lists them), each given `gid` in its list.
fn group_members(
    effective: &[u32],
    served_user: &[Option<usize>],
    users: &[UnixUser],
    user_gids: &mut [Vec<u32>],
    gid: u32,
) -> Vec<u32> {
    let mut members = Vec::with_capacity(served_members(effective, served_user).count());
    for ui in served_members(effective, served_user) {
        if let (Some(_), Some(gids)) = (users.get(ui), user_gids.get_mut(ui)) {
            members.push(ui as u32);
            gids.push(gid);
        }
    }
    // Served names are unique.
    members.sort_unstable_by_key(|&i| users.get(i as usize).map(|u| u.name.as_str()));
    members
}

/// Computes memberships over everything fetched (served or not), pushes
/// the served groups with their served members to `out.groups`, and
/// reports what name clashes cost. Returns, per served user, the gids of
/// its served groups (unsorted).
fn map_memberships(
    membership: &Memberships,
    groups: &[SourceGroup],
    group_verdicts: &GroupVerdicts<'_>,
    served_user: &[Option<usize>],
    out: &mut MappedIndexed,
) -> Vec<Vec<u32>> {
    out.notices
        .extend(membership.issues.iter().cloned().map(Notice::Expansion));

    let mut user_gids: Vec<Vec<u32>> = vec![Vec::new(); out.users.len()];
    // Served users who lost a supplementary group to a name clash.
    let mut lost_a_group: HashSet<usize> = HashSet::new();
    let mut supplementary_lost: HashMap<usize, usize> = HashMap::new();
    for ((gi, verdict), effective) in group_verdicts
        .gid
        .iter()
        .enumerate()
        .zip(&membership.members)
    {
        // Skipped groups, duplicated names included, have no gid here.
        let Some((gid, served_as)) = verdict else {
            continue;
        };
        let gid = *gid;
        let Some(served_as) = served_as else {
            // Not served as a group: its gid stays the primary gid of the
            // users who have it as primary group, and is no one's
            // supplementary group.
            let mut lost = 0;
            for ui in served_members(effective, served_user) {
                if out.users.get(ui).is_some_and(|u| u.gid != gid) {
                    lost += 1;
                    lost_a_group.insert(ui);
                }
            }
            supplementary_lost.insert(gi, lost);
            continue;
        };
        let members = group_members(effective, served_user, &out.users, &mut user_gids, gid);
        out.groups.push(IndexedGroup {
            name: served_as.clone(),
            gid,
            members,
        });
    }
    // By name, whatever the answer order.
    let mut clashes: Vec<&(usize, ClashOutcome)> = group_verdicts.clashes.iter().collect();
    clashes.sort_by(|a, b| {
        let name = |gi: usize| groups.get(gi).map(|g| g.name.as_str());
        name(a.0).cmp(&name(b.0))
    });
    for (gi, outcome) in clashes {
        let (Some(Some((gid, _))), Some(group)) = (group_verdicts.gid.get(*gi), groups.get(*gi))
        else {
            continue;
        };
        let gid = *gid;
        out.notices.push(Notice::GroupNameClash {
            name: group.name.clone(),
            gid,
            outcome: outcome.clone(),
            primary_users: out.users.iter().filter(|u| u.gid == gid).count(),
            supplementary_users: supplementary_lost.get(gi).copied().unwrap_or(0),
        });
    }
    if !lost_a_group.is_empty() {
        out.notices.push(Notice::SupplementaryGroupsLeftOut {
            users: lost_a_group.len(),
        });
    }
    user_gids
}

/// Reports the served users a local group line names: glibc adds that
/// local group to their groups. By user name (the map is sorted), whatever
/// the answer order.
fn report_local_group_members(
    users: &[UnixUser],
    local: &LocalAccounts,
    notices: &mut Vec<Notice>,
) {
    let served_names: HashSet<&str> = users.iter().map(|u| u.name.as_str()).collect();
    for (user, local_groups) in &local.member_of {
        if served_names.contains(user.as_str()) {
            notices.extend(local_groups.iter().map(|group| Notice::LocalGroupMember {
                user: user.clone(),
                group: group.clone(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(id: &str, number: i32, primary: &str, groups: &[&str]) -> SourceEntity {
        SourceEntity {
            id: id.into(),
            number: Some(number),
            primary_group: Some(primary.into()),
            groups: groups.iter().map(|&g| g.into()).collect(),
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

    /// Keys and the lock bit of served users reach the cache; a key that
    /// breaks the rule is left out (with a notice) and costs the user
    /// nothing; a skipped entity's keys go nowhere.
    #[test]
    fn served_users_keep_their_keys_and_lock_state() {
        let s = RefreshSettings::default();
        let mut alice = entity("alice", 2001, "staff", &["staff"]);
        alice.keys = vec![
            "SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop".into(),
            "SSH:ssh-ed25519 AAAA\nssh-ed25519 EVIL".into(),
            "GPG:0xDEADBEEF".into(),
        ];
        let mut bob = entity("bob", 2002, "staff", &["staff"]);
        bob.locked = true;
        bob.keys = vec!["SSH:ssh-rsa AAAAB3 bob".into()];
        let mut many = entity("many", 2003, "staff", &[]);
        many.keys = (0..clean::MAX_KEYS_PER_USER + 3)
            .map(|i| format!("SSH:ssh-ed25519 K{i}"))
            .collect();
        let mut root = entity("root", 2004, "staff", &[]);
        root.keys = vec!["SSH:ssh-ed25519 ROOT".into()];
        let m = map_directory(
            &[alice, bob, many, root],
            &[group("staff", 3000, &[])],
            &s,
            &local(),
            &shells(),
        );
        assert_eq!(
            m.user_keys["alice"],
            vec![
                "SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA alice@laptop".to_string(),
                "GPG:0xDEADBEEF".to_string()
            ]
        );
        assert_eq!(
            m.user_keys["bob"],
            vec!["SSH:ssh-rsa AAAAB3 bob".to_string()]
        );
        assert_eq!(m.user_keys["many"].len(), clean::MAX_KEYS_PER_USER);
        assert!(!m.user_keys.contains_key("root"));
        let locked: Vec<(&str, bool)> = m
            .users
            .iter()
            .map(|u| (u.name.as_str(), u.locked))
            .collect();
        assert_eq!(locked, [("alice", false), ("bob", true), ("many", false)]);
        assert!(m.notices.contains(&Notice::KeyDropped {
            user: "alice".into(),
            index: 1,
            problem: KeyProblem::ControlCharacter,
        }));
        assert!(m.notices.contains(&Notice::KeysCut {
            user: "many".into(),
            kept: clean::MAX_KEYS_PER_USER,
            dropped: 3,
        }));
        // What the refresh maps, the writer takes.
        let content = netauth_cache::CacheContent {
            users: m.users,
            groups: m.groups,
            user_groups: m.user_groups,
            user_keys: m.user_keys,
            ..Default::default()
        };
        netauth_cache::encode(&content).unwrap();
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
            group("takes1600", 1600, &[]),
            // Names a local group has: not served (but not skipped either).
            group("localgroup", 3200, &[]),
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
        assert_eq!(skipped.len(), 6, "{skipped:?}");
        assert!(skipped.contains(&("zero".into(), SkipReason::RootId)));
        assert!(skipped.contains(&("dupa".into(), SkipReason::DuplicateNumber(3100))));
        assert!(skipped.contains(&("dupb".into(), SkipReason::DuplicateNumber(3100))));
        assert!(skipped.contains(&("takes1600".into(), SkipReason::ShadowsLocalId(1600))));
        let clashed: Vec<String> = clashes(&m).into_iter().map(|c| c.0).collect();
        assert_eq!(clashed, vec!["localgroup", "users"]);
    }

    /// Debian 12's stock groups that directories most often meet, plus a
    /// stale line handing `sudo` to a name the directory also has.
    fn stock_local(extra_group_lines: &str) -> LocalAccounts {
        LocalAccounts::parse(
            "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n",
            &format!(
                "root:x:0:\nadm:x:4:\nsudo:x:27:carol,ghost,mallory\nstaff:x:50:\n\
                 users:x:100:\nnogroup:x:65534:\n{extra_group_lines}"
            ),
        )
    }

    /// `users` and `staff` as primary and supplementary groups, as most
    /// NetAuth directories have them.
    fn stock_directory() -> (Vec<SourceEntity>, Vec<SourceGroup>) {
        (
            vec![
                entity("alice", 2001, "users", &["staff", "dev"]),
                entity("bob", 2002, "staff", &["users"]),
                entity("carol", 2003, "dev", &["users", "staff"]),
                entity("dave", 2004, "users", &["users"]),
            ],
            vec![
                group("users", 3300, &[]),
                group("staff", 3301, &[]),
                group("dev", 3302, &[]),
            ],
        )
    }

    fn served_groups(m: &Mapped) -> Vec<(&str, u32, Vec<&str>)> {
        m.groups
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.gid,
                    g.members.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    fn clashes(m: &Mapped) -> Vec<(String, u32, ClashOutcome, usize, usize)> {
        m.notices
            .iter()
            .filter_map(|n| match n {
                Notice::GroupNameClash {
                    name,
                    gid,
                    outcome,
                    primary_users,
                    supplementary_users,
                } => Some((
                    name.clone(),
                    *gid,
                    outcome.clone(),
                    *primary_users,
                    *supplementary_users,
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_local_group_name_keeps_the_group_unserved_but_never_its_members() {
        let (entities, groups) = stock_directory();
        let m = map_directory(
            &entities,
            &groups,
            &RefreshSettings::default(),
            &stock_local(""),
            &shells(),
        );
        assert!(skipped_users(&m).is_empty(), "{:?}", m.notices);
        assert!(skipped_groups(&m).is_empty(), "{:?}", m.notices);
        let users: Vec<(&str, u32)> = m.users.iter().map(|u| (u.name.as_str(), u.gid)).collect();
        // Primary gids are the clashing groups' NetAuth numbers.
        assert_eq!(
            users,
            vec![
                ("alice", 3300),
                ("bob", 3301),
                ("carol", 3302),
                ("dave", 3300)
            ]
        );
        // Only the group without a local namesake is served; the others'
        // gids belong to no served group (nor to a local one).
        assert_eq!(served_groups(&m), vec![("dev", 3302, vec!["alice"])]);
        // Supplementary lists hold no clashing gid.
        assert_eq!(m.user_groups.get("alice"), Some(&vec![3302]));
        assert_eq!(m.user_groups.get("bob"), None);
        assert_eq!(m.user_groups.get("carol"), None);
        assert_eq!(m.user_groups.get("dave"), None);
        assert_eq!(
            clashes(&m),
            vec![
                ("staff".into(), 3301, ClashOutcome::Omitted, 1, 2),
                // dave is a member of users but has it as primary: no loss.
                ("users".into(), 3300, ClashOutcome::Omitted, 2, 2),
            ]
        );
        // alice (staff), bob (users), carol (both): each counted once.
        assert!(m
            .notices
            .contains(&Notice::SupplementaryGroupsLeftOut { users: 3 }));
        let text: Vec<String> = m.notices.iter().map(ToString::to_string).collect();
        assert!(
            text.iter().any(|t| t.contains("\"users\" (gid 3300)")
                && t.contains("not served as a group")
                && t.contains("2 users keep gid 3300")),
            "{text:?}"
        );
    }

    #[test]
    fn rename_serves_clashing_groups_under_the_prefix() {
        let (entities, groups) = stock_directory();
        let s = RefreshSettings {
            local_group_name_clash: LocalGroupNameClash::Rename,
            ..Default::default()
        };
        let m = map_directory(&entities, &groups, &s, &stock_local(""), &shells());
        assert_eq!(
            served_groups(&m),
            vec![
                ("netauth-users", 3300, vec!["bob", "carol", "dave"]),
                ("netauth-staff", 3301, vec!["alice", "carol"]),
                ("dev", 3302, vec!["alice"]),
            ]
        );
        assert_eq!(m.user_groups["alice"], vec![3301, 3302]);
        assert_eq!(m.user_groups["bob"], vec![3300]);
        assert_eq!(m.user_groups["carol"], vec![3300, 3301]);
        assert_eq!(m.users[0].gid, 3300);
        assert_eq!(
            clashes(&m),
            vec![
                (
                    "staff".into(),
                    3301,
                    ClashOutcome::Renamed("netauth-staff".into()),
                    1,
                    0
                ),
                (
                    "users".into(),
                    3300,
                    ClashOutcome::Renamed("netauth-users".into()),
                    2,
                    0
                ),
            ]
        );
        assert!(!m
            .notices
            .iter()
            .any(|n| matches!(n, Notice::SupplementaryGroupsLeftOut { .. })));

        // Another prefix.
        let s = RefreshSettings {
            renamed_group_prefix: "na_".into(),
            ..s
        };
        let m = map_directory(&entities, &groups, &s, &stock_local(""), &shells());
        let names: Vec<&str> = m.groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, vec!["na_users", "na_staff", "dev"]);
    }

    #[test]
    fn a_renamed_name_that_is_taken_or_unusable_is_omitted_not_served_twice() {
        let long = "a".repeat(60);
        let (mut entities, mut groups) = stock_directory();
        // NetAuth has its own "netauth-users"; a local group took
        // "netauth-staff"; the renamed long name would break the length rule.
        groups.push(group("netauth-users", 3303, &[]));
        groups.push(group(&long, 3304, &[]));
        entities.push(entity("erin", 2005, &long, &["netauth-users"]));
        let s = RefreshSettings {
            local_group_name_clash: LocalGroupNameClash::Rename,
            ..Default::default()
        };
        let local = stock_local(&format!("netauth-staff:x:1700:\n{long}:x:1701:\n"));
        let m = map_directory(&entities, &groups, &s, &local, &shells());
        assert_eq!(
            served_groups(&m),
            vec![
                ("dev", 3302, vec!["alice"]),
                ("netauth-users", 3303, vec!["erin"])
            ]
        );
        assert_eq!(
            clashes(&m),
            vec![
                (
                    long.clone(),
                    3304,
                    ClashOutcome::RenameRefused(format!("netauth-{long}")),
                    1,
                    0
                ),
                (
                    "staff".into(),
                    3301,
                    ClashOutcome::RenameRefused("netauth-staff".into()),
                    1,
                    2
                ),
                (
                    "users".into(),
                    3300,
                    ClashOutcome::RenameRefused("netauth-users".into()),
                    2,
                    2
                ),
            ]
        );
        assert_eq!(m.users.len(), 5);
        assert_eq!(m.users[4].gid, 3304);
        // Each name is served once.
        let mut names: Vec<&str> = m.groups.iter().map(|g| g.name.as_str()).collect();
        names.dedup();
        assert_eq!(names.len(), m.groups.len());
    }

    #[test]
    fn a_clashing_number_still_skips_the_group_and_its_primary_users() {
        let (entities, mut groups) = stock_directory();
        // "users" with the number of a local group: skipped, as are the
        // users whose primary group it is (missing_primary_group = "skip").
        groups[0].number = Some(1600);
        let m = map_directory(
            &entities,
            &groups,
            &RefreshSettings::default(),
            &stock_local("localgroup:x:1600:\n"),
            &shells(),
        );
        assert_eq!(
            skipped_groups(&m),
            vec![("users".into(), SkipReason::ShadowsLocalId(1600))]
        );
        let skipped: Vec<String> = skipped_users(&m).into_iter().map(|(n, _)| n).collect();
        assert_eq!(skipped, vec!["alice", "dave"]);
        assert_eq!(clashes(&m).len(), 1); // staff
    }

    #[test]
    fn no_user_private_group_takes_the_number_or_name_of_a_clashing_group() {
        let s = RefreshSettings {
            missing_primary_group: MissingPrimaryGroup::Private,
            local_group_name_clash: LocalGroupNameClash::Rename,
            ..Default::default()
        };
        let entities = vec![
            entity("alice", 2001, "users", &[]),
            // uid 3300 = the unserved "users" gid; a private group there
            // would give getgrgid(3300) a name for alice's primary gid.
            entity("uid3300", 3300, "nosuch", &[]),
            // A user named like the renamed group.
            entity("netauth-staff", 2002, "nosuch", &[]),
            entity("frank", 2003, "nosuch", &[]),
        ];
        let groups = vec![group("users", 3300, &[]), group("staff", 3301, &[])];
        let local = stock_local("");
        let s_omit = RefreshSettings {
            local_group_name_clash: LocalGroupNameClash::Omit,
            ..s.clone()
        };
        for settings in [&s, &s_omit] {
            let m = map_directory(&entities, &groups, settings, &local, &shells());
            let skipped: Vec<(String, SkipReason)> = skipped_users(&m);
            assert!(
                skipped
                    .iter()
                    .any(|(n, r)| n == "uid3300" && matches!(r, SkipReason::PrivateGroupTaken(_))),
                "{skipped:?}"
            );
            let gids: Vec<u32> = m.groups.iter().map(|g| g.gid).collect();
            let mut unique = gids.clone();
            unique.dedup();
            assert_eq!(gids, unique);
            assert!(m.users.iter().any(|u| u.name == "frank" && u.gid == 2003));
        }
        let m = map_directory(&entities, &groups, &s, &local, &shells());
        assert!(skipped_users(&m)
            .iter()
            .any(|(n, r)| n == "netauth-staff" && matches!(r, SkipReason::PrivateGroupTaken(_))));
        assert_eq!(
            m.groups
                .iter()
                .filter(|g| g.name == "netauth-staff")
                .count(),
            1
        );
    }

    #[test]
    fn served_users_named_in_a_local_group_line_are_reported() {
        let (mut entities, groups) = stock_directory();
        entities.push(entity("mallory", 0, "users", &[])); // skipped: uid 0
        let m = map_directory(
            &entities,
            &groups,
            &RefreshSettings::default(),
            &stock_local("adm2:x:1800:alice,carol\n"),
            &shells(),
        );
        let listed: Vec<(&str, &str)> = m
            .notices
            .iter()
            .filter_map(|n| match n {
                Notice::LocalGroupMember { user, group } => Some((user.as_str(), group.as_str())),
                _ => None,
            })
            .collect();
        // "ghost" is no NetAuth user and mallory is not served.
        assert_eq!(
            listed,
            vec![("alice", "adm2"), ("carol", "sudo"), ("carol", "adm2")]
        );
        // Still served.
        assert!(m.users.iter().any(|u| u.name == "carol"));
        let text = Notice::LocalGroupMember {
            user: "carol".into(),
            group: "sudo".into(),
        }
        .to_string();
        assert!(
            text.contains("\"carol\"") && text.contains("\"sudo\""),
            "{text}"
        );
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

    /// A directory that meets every rule of the mapping: bad and
    /// duplicated names and numbers, local accounts, name clashes, missing
    /// primary groups, user-private groups, dirty gecos, homes and shells,
    /// keys, locks, INCLUDE/EXCLUDE (a cycle, an unknown target).
    fn golden_directory() -> (Vec<SourceEntity>, Vec<SourceGroup>) {
        let mut groups = vec![
            group("g0", 3000, &["INCLUDE:g1", "EXCLUDE:g3"]),
            group("g1", 3001, &["INCLUDE:g2"]),
            group("g2", 3002, &[]),
            group("g3", 3003, &["INCLUDE:g4", "BOGUS"]),
            group("g4", 3004, &["INCLUDE:g3"]),
            group("users", 3005, &["INCLUDE:g0"]),
            group("localgroup", 3006, &[]),
            group("dup", 3007, &[]),
            group("dup", 3008, &[]),
            group("low", 10, &["INCLUDE:nowhere"]),
            group("samegid", 3009, &[]),
            group("samegid2", 3009, &[]),
            group("bad name", 3010, &[]),
            group("netauth-taken", 3011, &[]),
            group("taken", 3012, &[]),
            group("lg", 1600, &[]),
        ];
        groups.push(SourceGroup {
            name: "nonumber".into(),
            number: None,
            expansions: vec![],
        });
        let mut entities = Vec::new();
        for i in 0..60i32 {
            let primary = ["g0", "g1", "users", "localgroup", "nope", "taken"][i as usize % 6];
            let direct: Vec<String> = ["g0", "g1", "g2", "g3", "g4", "users", "low", "dup"]
                .iter()
                .enumerate()
                .filter(|(k, _)| (i as usize + k).is_multiple_of(k + 2))
                .map(|(_, g)| g.to_string())
                .collect();
            let direct: Vec<&str> = direct.iter().map(String::as_str).collect();
            let mut e = entity(&format!("user{i:02}"), 2000 + i, primary, &direct);
            match i % 7 {
                0 => e.gecos = Some(format!("User {i}:room\t{i}")),
                1 => e.display_name = Some(format!("Display {i}")),
                2 => e.home = Some(format!("/srv/home/user{i:02}")),
                3 => e.home = Some("/srv/../etc".into()),
                4 => e.shell = Some("/bin/bash".into()),
                5 => e.shell = Some("/usr/bin/fish".into()),
                _ => e.primary_group = None,
            }
            if i % 5 == 0 {
                e.keys = vec![
                    format!("SSH:ssh-ed25519 AAAA{i} user{i}"),
                    "SSH:bad\nkey".into(),
                ];
            }
            e.locked = i % 11 == 0;
            entities.push(e);
        }
        entities.push(entity("localuser", 2100, "g0", &["g0"]));
        entities.push(entity("root", 2101, "g0", &["g0"]));
        entities.push(entity("same", 2102, "g0", &["g0"]));
        entities.push(entity("same", 2103, "g0", &["g0"]));
        entities.push(entity("twin1", 2104, "g0", &["g0"]));
        entities.push(entity("twin2", 2104, "g0", &["g0"]));
        entities.push(entity("lowuid", 999, "g0", &["g0"]));
        entities.push(entity("-bad", 2105, "g0", &["g0"]));
        entities.push(entity("takes1500", 1500, "g0", &["g0"]));
        entities.push(entity("zero", 0, "g0", &["g0"]));
        entities.push(entity("g2", 3002, "nope", &["g2"]));
        entities.push(entity("nonum", 0, "g0", &[]));
        if let Some(e) = entities.last_mut() {
            e.number = None;
        }
        (entities, groups)
    }

    /// The host accounts the golden directory is mapped against.
    fn golden_local_accounts() -> LocalAccounts {
        LocalAccounts::parse(
            "root:x:0:0::/root:/bin/bash\nlocaluser:x:1500:1500::/home/l:/bin/sh\n",
            "root:x:0:\nlocalgroup:x:1600:user03,user04\nusers:x:100:\nnetauth-taken:x:1700:\n",
        )
    }

    /// The two policies the golden directory is mapped under.
    fn golden_policies() -> [RefreshSettings; 2] {
        [
            (MissingPrimaryGroup::Skip, LocalGroupNameClash::Omit),
            (MissingPrimaryGroup::Private, LocalGroupNameClash::Rename),
        ]
        .map(|(missing, clash)| RefreshSettings {
            missing_primary_group: missing,
            local_group_name_clash: clash,
            ..RefreshSettings::default()
        })
    }

    /// What the refresh writes (the mapping by user index, streamed by the
    /// writer) is the cache of the mapping by name: every user, group,
    /// member, gid list and key, in order, under both policies, and a
    /// directory in shuffled answer order too.
    #[test]
    fn the_indexed_mapping_writes_the_cache_of_the_mapping() {
        let (mut entities, mut groups) = golden_directory();
        let local = golden_local_accounts();
        let dir = tempfile::tempdir().unwrap();
        for reversed in [false, true] {
            if reversed {
                entities.reverse();
                groups.reverse();
            }
            for s in golden_policies() {
                let by_name = map_directory(&entities, &groups, &s, &local, &shells());
                let indexed =
                    map_directory_indexed(entities.clone(), &groups, None, &s, &local, &shells());
                assert!(indexed.groups.iter().any(|g| g.members.len() > 5));
                netauth_cache::write_atomic_with(dir.path(), "nss.cache", |file| {
                    netauth_cache::encode_to_file(&indexed.cache_source(7, "src"), file)
                })
                .unwrap();
                let bytes = std::fs::read(dir.path().join("nss.cache")).unwrap();
                let expected = netauth_cache::CacheContent {
                    users: by_name.users,
                    groups: by_name.groups,
                    user_groups: by_name.user_groups,
                    user_keys: by_name.user_keys,
                    generated_at: 7,
                    source: "src".into(),
                };
                let view = netauth_cache::CacheView::parse(&bytes).unwrap();
                assert_eq!(view.to_content().unwrap(), expected);
                assert_eq!(indexed.notices, by_name.notices);
            }
        }
    }

    /// The whole mapped output of [`golden_directory`] under two policies,
    /// against a recorded copy (`testdata/mapped.golden`): restructuring
    /// the mapping must not change one user, group, membership, key or
    /// notice. `UPDATE_GOLDEN=1` rewrites the copy after an intended change.
    #[test]
    fn mapped_output_matches_the_recorded_golden_copy() {
        let (entities, groups) = golden_directory();
        let local = golden_local_accounts();
        let mut text = String::new();
        for s in golden_policies() {
            let m = map_directory(&entities, &groups, &s, &local, &shells());
            let (missing, clash) = (s.missing_primary_group, s.local_group_name_clash);
            text.push_str(&format!("{missing:?} {clash:?}\n{m:#?}\n"));
        }
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/refresh/testdata/mapped.golden");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
        }
        let golden = std::fs::read_to_string(&path).unwrap();
        assert!(
            golden == text,
            "the mapped output changed; diff {} with:\n{text}",
            path.display()
        );
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

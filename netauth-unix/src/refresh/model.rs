//! The refresh's view of the directory: only the fields it maps to Unix.

use std::sync::Arc;

/// An entity as the refresh needs it. Group names are shared (one
/// allocation per distinct name, not one per entity that names it: at
/// 100,000 entities naming a few groups, a large part of the fetch).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceEntity {
    /// `Entity.ID`: the login name.
    pub id: String,
    /// `Entity.Number`: the uid.
    pub number: Option<i32>,
    /// `EntityMeta.PrimaryGroup`: a group name.
    pub primary_group: Option<Arc<str>>,
    /// `EntityMeta.GECOS`.
    pub gecos: Option<String>,
    /// `EntityMeta.DisplayName`, the gecos when `GECOS` is unset.
    pub display_name: Option<String>,
    /// `EntityMeta.Home`.
    pub home: Option<String>,
    /// `EntityMeta.Shell`.
    pub shell: Option<String>,
    /// `EntityMeta.Locked`: still served by NSS, refused by PAM.
    pub locked: bool,
    /// `EntityMeta.Groups`: direct memberships, group names.
    pub groups: Vec<Arc<str>>,
    /// `EntityMeta.Keys`: public keys, each `TYPE:KEY` (the search answer
    /// carries them, so they cost no extra call).
    pub keys: Vec<String>,
}

/// A group as the refresh needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceGroup {
    /// `Group.Name`.
    pub name: String,
    /// `Group.Number`: the gid.
    pub number: Option<i32>,
    /// `Group.Expansions`, each `MODE:groupname`.
    pub expansions: Vec<String>,
}

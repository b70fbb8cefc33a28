//! The refresh's view of the directory: only the fields it maps to Unix.

/// An entity as the refresh needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceEntity {
    /// `Entity.ID`: the login name.
    pub id: String,
    /// `Entity.Number`: the uid.
    pub number: Option<i32>,
    /// `EntityMeta.PrimaryGroup`: a group name.
    pub primary_group: Option<String>,
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
    pub groups: Vec<String>,
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

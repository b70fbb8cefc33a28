//! The NetAuth data model as plain Rust types, converted to and from the
//! generated prost messages in [`crate::proto`].
//!
//! Conversions from the wire are lenient where the server may legitimately
//! omit things (absent proto2 fields become `None`/`false`/empty), and they
//! drop the `secret` field: the server only ever sends `<REDACTED>` there.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::proto;
use crate::proto::netauth::v2 as pb;

/// A string that does not name what it should (for example an expansion
/// `MAYBE:staff`, whose mode is none of the protocol's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
}

/// The wire enumerations, as generated from the .proto files: their
/// numbers and their names (`as_str_name`, `from_str_name`) are the
/// protocol's, with nothing to keep in step by hand.
pub use pb::{Action, RuleAction};
pub use proto::{Capability, ExpansionMode};

/// Capability numbers from the wire; numbers this client does not know are
/// skipped rather than guessed at.
fn capabilities_from_wire(numbers: &[i32]) -> Vec<Capability> {
    numbers
        .iter()
        .filter_map(|n| Capability::try_from(*n).ok())
        .collect()
}

fn capabilities_to_wire(caps: &[Capability]) -> Vec<i32> {
    caps.iter().map(|c| i32::from(*c)).collect()
}

/// One group expansion rule, written `MODE:group` on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Expansion {
    pub mode: ExpansionMode,
    pub group: String,
}

impl FromStr for Expansion {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        let (mode, group) = s.split_once(':').ok_or_else(|| UnknownName {
            what: "expansion",
            name: s.to_owned(),
        })?;
        let mode = ExpansionMode::from_str_name(mode).ok_or_else(|| UnknownName {
            what: "expansion mode",
            name: mode.to_owned(),
        })?;
        Ok(Expansion {
            mode,
            group: group.to_owned(),
        })
    }
}

impl fmt::Display for Expansion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.mode.as_str_name(), self.group)
    }
}

/// One value of a key/value entry; `index` orders the values of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvValue {
    pub value: String,
    pub index: Option<i32>,
}

/// A key with its ordered values.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvData {
    pub key: String,
    pub values: Vec<KvValue>,
}

impl KvData {
    /// A key whose values are numbered in the given order (as NetAuth's
    /// clients do).
    pub fn new<I, S>(key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        KvData {
            key: key.into(),
            values: values
                .into_iter()
                .enumerate()
                .map(|(i, v)| KvValue {
                    value: v.into(),
                    index: Some(i32::try_from(i).unwrap_or(i32::MAX)),
                })
                .collect(),
        }
    }

    /// The values sorted by their index (values without one keep their
    /// place after the indexed ones).
    pub fn sorted_values(&self) -> Vec<&str> {
        let mut values: Vec<&KvValue> = self.values.iter().collect();
        values.sort_by_key(|v| v.index.unwrap_or(i32::MAX));
        values.into_iter().map(|v| v.value.as_str()).collect()
    }
}

impl From<proto::KvValue> for KvValue {
    fn from(v: proto::KvValue) -> Self {
        KvValue {
            value: v.value,
            index: v.index,
        }
    }
}

impl From<KvValue> for proto::KvValue {
    fn from(v: KvValue) -> Self {
        proto::KvValue {
            value: v.value,
            index: v.index,
        }
    }
}

impl From<proto::KvData> for KvData {
    fn from(d: proto::KvData) -> Self {
        KvData {
            key: d.key,
            values: d.values.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<KvData> for proto::KvData {
    fn from(d: KvData) -> Self {
        proto::KvData {
            key: d.key,
            values: d.values.into_iter().map(Into::into).collect(),
        }
    }
}

/// Splits `key:value` strings (untyped meta, `TYPE:KEY` keys) into a map of
/// key to values, in the order given. An order suffix `key{3}` is kept as
/// part of the key; strings without a colon are skipped.
pub fn parse_kv_strings<S: AsRef<str>>(strings: &[S]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for s in strings {
        if let Some((k, v)) = s.as_ref().split_once(':') {
            map.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    map
}

/// An entity's metadata. Optional text fields the server did not send are
/// `None`; `locked` is false when the server sent no lock bit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntityMeta {
    /// Name of the primary group.
    pub primary_group: Option<String>,
    pub gecos: Option<String>,
    pub legal_name: Option<String>,
    pub display_name: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub graphical_shell: Option<String>,
    pub badge_number: Option<String>,
    pub locked: bool,
    /// Direct memberships only (group names).
    pub groups: Vec<String>,
    pub capabilities: Vec<Capability>,
    /// Each `TYPE:KEY`.
    pub keys: Vec<String>,
    /// Each `key:value`.
    pub untyped_meta: Vec<String>,
    pub kv: Vec<KvData>,
}

impl From<proto::EntityMeta> for EntityMeta {
    fn from(m: proto::EntityMeta) -> Self {
        EntityMeta {
            primary_group: m.primary_group,
            gecos: m.gecos,
            legal_name: m.legal_name,
            display_name: m.display_name,
            home: m.home,
            shell: m.shell,
            graphical_shell: m.graphical_shell,
            badge_number: m.badge_number,
            locked: m.locked.unwrap_or(false),
            capabilities: capabilities_from_wire(&m.capabilities),
            groups: m.groups,
            keys: m.keys,
            untyped_meta: m.untyped_meta,
            kv: m.kv.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<EntityMeta> for proto::EntityMeta {
    /// `locked: false` is sent as "no lock bit", so an update built from a
    /// default `EntityMeta` never unlocks anyone (locking has its own calls).
    fn from(m: EntityMeta) -> Self {
        proto::EntityMeta {
            primary_group: m.primary_group,
            gecos: m.gecos,
            legal_name: m.legal_name,
            display_name: m.display_name,
            home: m.home,
            shell: m.shell,
            graphical_shell: m.graphical_shell,
            badge_number: m.badge_number,
            locked: m.locked.then_some(true),
            groups: m.groups,
            capabilities: capabilities_to_wire(&m.capabilities),
            keys: m.keys,
            untyped_meta: m.untyped_meta,
            kv: m.kv.into_iter().map(Into::into).collect(),
        }
    }
}

/// An entity (a user or a machine account). There is no secret field: the
/// server answers `<REDACTED>` there, which is not data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entity {
    pub id: String,
    /// The uid-like number; `None` when the server sent none.
    pub number: Option<i32>,
    pub meta: EntityMeta,
}

impl From<proto::Entity> for Entity {
    fn from(e: proto::Entity) -> Self {
        Entity {
            id: e.id.unwrap_or_default(),
            number: e.number,
            meta: e.meta.map(Into::into).unwrap_or_default(),
        }
    }
}

impl From<Entity> for proto::Entity {
    fn from(e: Entity) -> Self {
        proto::Entity {
            id: Some(e.id),
            number: e.number,
            secret: None,
            meta: Some(e.meta.into()),
        }
    }
}

/// A group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub display_name: Option<String>,
    /// The gid-like number; `None` when the server sent none.
    pub number: Option<i32>,
    /// Name of the group whose members manage this one.
    pub managed_by: Option<String>,
    pub capabilities: Vec<Capability>,
    pub expansions: Vec<Expansion>,
    /// Each `key:value`.
    pub untyped_meta: Vec<String>,
    pub kv: Vec<KvData>,
}

impl From<proto::Group> for Group {
    /// Expansion strings that do not parse as `MODE:group` are skipped.
    fn from(g: proto::Group) -> Self {
        Group {
            name: g.name.unwrap_or_default(),
            display_name: g.display_name,
            number: g.number,
            managed_by: g.managed_by,
            capabilities: capabilities_from_wire(&g.capabilities),
            expansions: g.expansions.iter().filter_map(|x| x.parse().ok()).collect(),
            untyped_meta: g.untyped_meta,
            kv: g.kv.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Group> for proto::Group {
    fn from(g: Group) -> Self {
        proto::Group {
            name: Some(g.name),
            display_name: g.display_name,
            number: g.number,
            managed_by: g.managed_by,
            capabilities: capabilities_to_wire(&g.capabilities),
            expansions: g.expansions.iter().map(ToString::to_string).collect(),
            untyped_meta: g.untyped_meta,
            kv: g.kv.into_iter().map(Into::into).collect(),
        }
    }
}

/// What `GroupInfo` answers: the group, then the groups it manages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    pub group: Group,
    pub managed: Vec<Group>,
}

/// Health of one server subsystem.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubSystemStatus {
    pub name: String,
    pub ok: bool,
    pub fault_message: Option<String>,
}

/// What `SystemStatus` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerStatus {
    pub system_ok: bool,
    pub first_failure: Option<SubSystemStatus>,
    pub sub_systems: Vec<SubSystemStatus>,
}

impl From<pb::SubSystemStatus> for SubSystemStatus {
    fn from(s: pb::SubSystemStatus) -> Self {
        SubSystemStatus {
            name: s.name.unwrap_or_default(),
            ok: s.ok.unwrap_or(false),
            fault_message: s.fault_message,
        }
    }
}

impl From<SubSystemStatus> for pb::SubSystemStatus {
    fn from(s: SubSystemStatus) -> Self {
        pb::SubSystemStatus {
            name: Some(s.name),
            ok: Some(s.ok),
            fault_message: s.fault_message,
        }
    }
}

impl From<pb::ServerStatus> for ServerStatus {
    fn from(s: pb::ServerStatus) -> Self {
        ServerStatus {
            system_ok: s.system_ok.unwrap_or(false),
            first_failure: s.first_failure.map(Into::into),
            sub_systems: s.sub_systems.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<ServerStatus> for pb::ServerStatus {
    fn from(s: ServerStatus) -> Self {
        pb::ServerStatus {
            system_ok: Some(s.system_ok),
            first_failure: s.first_failure.map(Into::into),
            sub_systems: s.sub_systems.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_from_the_wire_skip_unknown_numbers() {
        let wire = [0, 7, 15, 23, 1000];
        let caps = capabilities_from_wire(&wire);
        assert_eq!(
            caps,
            vec![
                Capability::GlobalRoot,
                Capability::LockEntity,
                Capability::ModifyGroupMembers
            ]
        );
        assert_eq!(capabilities_to_wire(&caps), vec![0, 15, 23]);
    }

    #[test]
    fn expansions_parse_and_print() {
        let x: Expansion = "INCLUDE:staff".parse().unwrap();
        assert_eq!(x.mode, ExpansionMode::Include);
        assert_eq!(x.group, "staff");
        assert_eq!(x.to_string(), "INCLUDE:staff");
        assert!("staff".parse::<Expansion>().is_err());
        let err = "MAYBE:staff".parse::<Expansion>().unwrap_err();
        assert_eq!(err.to_string(), "unknown expansion mode \"MAYBE\"");
        let x: Expansion = "DROP:old".parse().unwrap();
        assert_eq!(
            (x.mode, x.to_string()),
            (ExpansionMode::Drop, "DROP:old".into())
        );
    }

    #[test]
    fn entity_from_wire_reads_absent_fields_and_drops_the_secret() {
        let wire = proto::Entity {
            id: Some("alice".into()),
            number: Some(1001),
            secret: Some("<REDACTED>".into()),
            meta: Some(proto::EntityMeta {
                shell: Some("/bin/bash".into()),
                capabilities: vec![0, 12, 4242],
                groups: vec!["staff".into()],
                ..Default::default()
            }),
        };
        let e = Entity::from(wire);
        assert_eq!(e.id, "alice");
        assert_eq!(e.number, Some(1001));
        assert!(!e.meta.locked);
        assert_eq!(e.meta.home, None);
        assert_eq!(e.meta.shell.as_deref(), Some("/bin/bash"));
        assert_eq!(
            e.meta.capabilities,
            vec![Capability::GlobalRoot, Capability::ModifyEntityMeta]
        );
        assert!(!format!("{e:?}").contains("REDACTED"));
        let back = proto::Entity::from(e);
        assert_eq!(back.secret, None);
        assert_eq!(back.meta.unwrap().locked, None);

        let no_meta = Entity::from(proto::Entity {
            id: Some("bob".into()),
            ..Default::default()
        });
        assert_eq!(no_meta.number, None);
        assert_eq!(no_meta.meta, EntityMeta::default());
    }

    #[test]
    fn entity_and_group_round_trip() {
        let e = Entity {
            id: "carol".into(),
            number: Some(7),
            meta: EntityMeta {
                primary_group: Some("staff".into()),
                gecos: Some("Carol".into()),
                legal_name: Some("Carol C".into()),
                display_name: Some("carol".into()),
                home: Some("/home/carol".into()),
                shell: Some("/bin/zsh".into()),
                graphical_shell: Some("/usr/bin/gnome".into()),
                badge_number: Some("42".into()),
                locked: true,
                groups: vec!["a".into(), "b".into()],
                capabilities: vec![Capability::LockEntity],
                keys: vec!["SSH:ssh-ed25519 AAAA".into()],
                untyped_meta: vec!["k:v".into()],
                kv: vec![KvData::new("mail", ["x@y", "z@y"])],
            },
        };
        assert_eq!(Entity::from(proto::Entity::from(e.clone())), e);

        let g = Group {
            name: "ops".into(),
            display_name: Some("Operations".into()),
            number: Some(3000),
            managed_by: Some("admins".into()),
            capabilities: vec![Capability::CreateGroup],
            expansions: vec!["EXCLUDE:contractors".parse().unwrap()],
            untyped_meta: vec!["a:b".into()],
            kv: vec![KvData::new("k", ["v"])],
        };
        let wire = proto::Group::from(g.clone());
        assert_eq!(wire.expansions, vec!["EXCLUDE:contractors".to_string()]);
        assert_eq!(Group::from(wire), g);
    }

    #[test]
    fn kv_helpers() {
        let d = KvData {
            key: "k".into(),
            values: vec![
                KvValue {
                    value: "second".into(),
                    index: Some(1),
                },
                KvValue {
                    value: "first".into(),
                    index: Some(0),
                },
            ],
        };
        assert_eq!(d.sorted_values(), vec!["first", "second"]);
        let map = parse_kv_strings(&["SSH:key one", "SSH:key two", "GPG:x", "junk"]);
        assert_eq!(map["SSH"], vec!["key one", "key two"]);
        assert_eq!(map["GPG"], vec!["x"]);
        assert_eq!(map.len(), 2);
    }

    #[test]
    fn server_status_from_wire() {
        let s = ServerStatus::from(pb::ServerStatus {
            system_ok: None,
            first_failure: Some(pb::SubSystemStatus {
                name: Some("db".into()),
                ok: Some(false),
                fault_message: Some("disk".into()),
            }),
            sub_systems: vec![],
        });
        assert!(!s.system_ok);
        assert_eq!(
            s.first_failure.unwrap().fault_message.as_deref(),
            Some("disk")
        );
    }
}

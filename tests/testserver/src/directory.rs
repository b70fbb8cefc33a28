//! The directory the server answers from: entities, groups, hashed secrets,
//! and the rules that turn direct memberships and group expansions into
//! effective memberships.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use netauth_proto::netauth::v2::Action;
use netauth_proto::{Capability, Entity, EntityMeta, Group, KvData};
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::search::{Doc, Query};

/// What servers answer in place of an entity's secret.
pub const REDACTED: &str = "<REDACTED>";

/// A group expansion rule (`Group.Expansions` entries `INCLUDE:x` / `EXCLUDE:x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpansionRule {
    Include,
    Exclude,
}

impl ExpansionRule {
    fn prefix(self) -> &'static str {
        match self {
            ExpansionRule::Include => "INCLUDE",
            ExpansionRule::Exclude => "EXCLUDE",
        }
    }
}

/// A salted SHA-256 of a secret: cheap on purpose, so that seeding tens of
/// thousands of entities takes milliseconds. Never use this outside tests.
pub(crate) struct HashedSecret {
    salt: [u8; 16],
    hash: [u8; 32],
}

impl HashedSecret {
    fn digest(salt: &[u8; 16], secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(secret.as_bytes());
        h.finalize().into()
    }

    pub(crate) fn new(secret: &str) -> HashedSecret {
        let mut salt = [0u8; 16];
        fastrand::fill(&mut salt);
        HashedSecret {
            hash: Self::digest(&salt, secret),
            salt,
        }
    }

    pub(crate) fn matches(&self, secret: &str) -> bool {
        Self::digest(&self.salt, secret) == self.hash
    }
}

pub(crate) struct EntityRecord {
    /// Stored without a secret; `meta` always present.
    pub entity: Entity,
    pub secret: Option<HashedSecret>,
}

#[derive(Default)]
pub(crate) struct DirState {
    entities: BTreeMap<String, EntityRecord>,
    entity_numbers: HashMap<i32, String>,
    groups: BTreeMap<String, Group>,
    group_numbers: HashMap<i32, String>,
}

fn not_found(what: &str) -> Status {
    Status::not_found(format!("{what} does not exist"))
}

fn strip_order_suffix(key: &str) -> &str {
    // `key{3}` -> `key` (OpenLDAP-style ordering suffix).
    if let Some(open) = key.rfind('{') {
        let inner = &key[open + 1..];
        if let Some(digits) = inner.strip_suffix('}') {
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                return &key[..open];
            }
        }
    }
    key
}

fn um_key(entry: &str) -> &str {
    entry.split(':').next().unwrap_or(entry)
}

/// Untyped metadata (`key:value` strings) as NetAuth manages it.
pub(crate) fn patch_untyped(
    slice: &mut Vec<String>,
    action: Action,
    key: &str,
    value: &str,
) -> Result<Vec<String>, Status> {
    match action {
        Action::Read => {
            let mut out: Vec<String> = if key == "*" {
                slice.clone()
            } else {
                let want = strip_order_suffix(key);
                slice
                    .iter()
                    .filter(|kv| strip_order_suffix(um_key(kv)) == want)
                    .cloned()
                    .collect()
            };
            out.sort();
            return Ok(out);
        }
        Action::Upsert => {
            let entry = format!("{key}:{value}");
            let mut replaced = false;
            for kv in slice.iter_mut() {
                if um_key(kv) == key {
                    kv.clone_from(&entry);
                    replaced = true;
                }
            }
            if !replaced {
                slice.push(entry);
            }
        }
        Action::Clearexact => slice.retain(|kv| um_key(kv) != key),
        Action::Clearfuzzy => {
            let want = strip_order_suffix(key);
            slice.retain(|kv| strip_order_suffix(um_key(kv)) != want)
        }
        Action::Add | Action::Drop => {
            return Err(Status::invalid_argument("action not valid for metadata"))
        }
    }
    slice.sort();
    slice.dedup();
    Ok(Vec::new())
}

pub(crate) fn kv_get(kv: &[KvData], key: &str) -> Result<Vec<KvData>, Status> {
    if key == "*" {
        return Ok(kv.to_vec());
    }
    kv.iter()
        .find(|d| d.key == key)
        .map(|d| vec![d.clone()])
        .ok_or_else(|| not_found("key"))
}

fn ordered(mut data: KvData) -> KvData {
    // Keep the order the client asked for when it gave indexes.
    data.values.sort_by_key(|v| v.index.unwrap_or(i32::MAX));
    data
}

pub(crate) fn kv_add(kv: &mut Vec<KvData>, data: KvData) -> Result<(), Status> {
    if kv.iter().any(|d| d.key == data.key) {
        return Err(Status::already_exists("key already exists"));
    }
    kv.push(ordered(data));
    Ok(())
}

pub(crate) fn kv_del(kv: &mut Vec<KvData>, key: &str) -> Result<(), Status> {
    let before = kv.len();
    kv.retain(|d| d.key != key);
    if kv.len() == before {
        return Err(not_found("key"));
    }
    Ok(())
}

pub(crate) fn kv_replace(kv: &mut [KvData], data: KvData) -> Result<(), Status> {
    let slot = kv
        .iter_mut()
        .find(|d| d.key == data.key)
        .ok_or_else(|| not_found("key"))?;
    *slot = ordered(data);
    Ok(())
}

/// Walks group expansions for one question, remembering finished answers.
struct Expander<'a> {
    st: &'a DirState,
    direct: HashMap<&'a str, Vec<&'a str>>,
    memo: HashMap<&'a str, HashSet<&'a str>>,
}

impl<'a> Expander<'a> {
    fn new(st: &'a DirState) -> Expander<'a> {
        let mut direct: HashMap<&'a str, Vec<&'a str>> = HashMap::new();
        for (id, rec) in &st.entities {
            for g in rec.entity.meta.iter().flat_map(|m| m.groups.iter()) {
                direct.entry(g.as_str()).or_default().push(id.as_str());
            }
        }
        Expander {
            st,
            direct,
            memo: HashMap::new(),
        }
    }

    /// Effective members of `name`; the flag says a cycle was cut below, in
    /// which case the answer is not remembered (it depends on the path).
    fn members(&mut self, name: &str, stack: &mut Vec<&'a str>) -> (HashSet<&'a str>, bool) {
        let Some((name, group)) = self.st.groups.get_key_value(name) else {
            return (HashSet::new(), false);
        };
        let name = name.as_str();
        if let Some(done) = self.memo.get(name) {
            return (done.clone(), false);
        }
        if stack.contains(&name) {
            return (HashSet::new(), true);
        }
        stack.push(name);
        let mut set: HashSet<&'a str> = self
            .direct
            .get(name)
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let mut excluded: HashSet<&'a str> = HashSet::new();
        let mut cut = false;
        for rule in &group.expansions {
            match rule.split_once(':') {
                Some(("INCLUDE", target)) => {
                    let (m, c) = self.members(target, stack);
                    cut |= c;
                    set.extend(m);
                }
                Some(("EXCLUDE", target)) => {
                    let (m, c) = self.members(target, stack);
                    cut |= c;
                    excluded.extend(m);
                }
                _ => {}
            }
        }
        // Exclusion wins over direct membership and inclusion.
        set.retain(|e| !excluded.contains(e));
        stack.pop();
        if !cut {
            self.memo.insert(name, set.clone());
        }
        (set, cut)
    }

    fn groups_of(&mut self, entity: &str) -> Vec<&'a str> {
        let st = self.st;
        st.groups
            .keys()
            .filter(|g| self.members(g, &mut Vec::new()).0.contains(entity))
            .map(String::as_str)
            .collect()
    }
}

fn entity_doc(e: &Entity) -> Doc<'_> {
    let mut fields: Vec<(&'static str, &str)> = Vec::with_capacity(8);
    if let Some(id) = &e.id {
        fields.push(("ID", id));
    }
    if let Some(m) = &e.meta {
        let singles: [(&'static str, &Option<String>); 8] = [
            ("meta.PrimaryGroup", &m.primary_group),
            ("meta.GECOS", &m.gecos),
            ("meta.LegalName", &m.legal_name),
            ("meta.DisplayName", &m.display_name),
            ("meta.Home", &m.home),
            ("meta.Shell", &m.shell),
            ("meta.GraphicalShell", &m.graphical_shell),
            ("meta.BadgeNumber", &m.badge_number),
        ];
        for (name, v) in singles {
            if let Some(v) = v {
                fields.push((name, v));
            }
        }
        if let Some(l) = m.locked {
            fields.push(("meta.Locked", if l { "true" } else { "false" }));
        }
        fields.extend(m.groups.iter().map(|g| ("meta.Groups", g.as_str())));
        fields.extend(m.keys.iter().map(|k| ("meta.Keys", k.as_str())));
        fields.extend(
            m.untyped_meta
                .iter()
                .map(|k| ("meta.UntypedMeta", k.as_str())),
        );
        fields.extend(
            m.capabilities
                .iter()
                .filter_map(|c| Capability::try_from(*c).ok())
                .map(|c| ("meta.Capabilities", c.as_str_name())),
        );
    }
    Doc {
        fields,
        number: e.number,
    }
}

fn group_doc(g: &Group) -> Doc<'_> {
    let mut fields: Vec<(&'static str, &str)> = Vec::with_capacity(6);
    for (name, v) in [
        ("Name", &g.name),
        ("DisplayName", &g.display_name),
        ("ManagedBy", &g.managed_by),
    ] {
        if let Some(v) = v {
            fields.push((name, v));
        }
    }
    fields.extend(g.expansions.iter().map(|x| ("Expansions", x.as_str())));
    fields.extend(g.untyped_meta.iter().map(|x| ("UntypedMeta", x.as_str())));
    fields.extend(
        g.capabilities
            .iter()
            .filter_map(|c| Capability::try_from(*c).ok())
            .map(|c| ("Capabilities", c.as_str_name())),
    );
    Doc {
        fields,
        number: g.number,
    }
}

fn add_capability(list: &mut Vec<i32>, cap: Capability) {
    if !list.contains(&(cap as i32)) {
        list.push(cap as i32);
    }
}

impl DirState {
    fn next_number(used: &HashMap<i32, String>) -> i32 {
        let next = used.keys().max().map_or(1, |m| m.saturating_add(1));
        if next > 0 && !used.contains_key(&next) {
            return next;
        }
        (1..i32::MAX).find(|n| !used.contains_key(n)).unwrap_or(0)
    }

    pub(crate) fn entity(&self, id: &str) -> Result<&EntityRecord, Status> {
        self.entities.get(id).ok_or_else(|| not_found("entity"))
    }

    fn entity_mut(&mut self, id: &str) -> Result<&mut EntityRecord, Status> {
        self.entities.get_mut(id).ok_or_else(|| not_found("entity"))
    }

    pub(crate) fn entity_meta_mut(&mut self, id: &str) -> Result<&mut EntityMeta, Status> {
        Ok(self
            .entity_mut(id)?
            .entity
            .meta
            .get_or_insert_with(Default::default))
    }

    pub(crate) fn group(&self, name: &str) -> Result<&Group, Status> {
        self.groups.get(name).ok_or_else(|| not_found("group"))
    }

    pub(crate) fn group_mut(&mut self, name: &str) -> Result<&mut Group, Status> {
        self.groups.get_mut(name).ok_or_else(|| not_found("group"))
    }

    /// `number`: None or -1 picks the next free number.
    pub(crate) fn create_entity(
        &mut self,
        id: &str,
        number: Option<i32>,
        secret: Option<&str>,
    ) -> Result<(), Status> {
        if id.is_empty() {
            return Err(Status::invalid_argument("entity ID is empty"));
        }
        if self.entities.contains_key(id) {
            return Err(Status::already_exists("entity ID already exists"));
        }
        let number = match number {
            None | Some(-1) => Self::next_number(&self.entity_numbers),
            Some(n) if self.entity_numbers.contains_key(&n) => {
                return Err(Status::already_exists("entity number already exists"))
            }
            Some(n) => n,
        };
        self.entity_numbers.insert(number, id.to_string());
        self.entities.insert(
            id.to_string(),
            EntityRecord {
                entity: Entity {
                    id: Some(id.to_string()),
                    number: Some(number),
                    secret: None,
                    meta: Some(EntityMeta::default()),
                },
                secret: secret.map(HashedSecret::new),
            },
        );
        Ok(())
    }

    pub(crate) fn destroy_entity(&mut self, id: &str) -> Result<(), Status> {
        let rec = self
            .entities
            .remove(id)
            .ok_or_else(|| not_found("entity"))?;
        if let Some(n) = rec.entity.number {
            self.entity_numbers.remove(&n);
        }
        Ok(())
    }

    /// Merges the typed fields that are set; lists, capabilities and the
    /// lock have calls of their own and are ignored here.
    pub(crate) fn update_entity_meta(&mut self, id: &str, new: &EntityMeta) -> Result<(), Status> {
        let meta = self.entity_meta_mut(id)?;
        let pairs: [(&mut Option<String>, &Option<String>); 8] = [
            (&mut meta.primary_group, &new.primary_group),
            (&mut meta.gecos, &new.gecos),
            (&mut meta.legal_name, &new.legal_name),
            (&mut meta.display_name, &new.display_name),
            (&mut meta.home, &new.home),
            (&mut meta.shell, &new.shell),
            (&mut meta.graphical_shell, &new.graphical_shell),
            (&mut meta.badge_number, &new.badge_number),
        ];
        for (slot, value) in pairs {
            if value.is_some() {
                slot.clone_from(value);
            }
        }
        Ok(())
    }

    pub(crate) fn set_secret(&mut self, id: &str, secret: &str) -> Result<(), Status> {
        self.entity_mut(id)?.secret = Some(HashedSecret::new(secret));
        Ok(())
    }

    /// Unknown entity, locked entity and wrong secret all look the same.
    pub(crate) fn authenticate(&self, id: &str, secret: &str) -> bool {
        let Some(rec) = self.entities.get(id) else {
            return false;
        };
        let locked = rec
            .entity
            .meta
            .as_ref()
            .and_then(|m| m.locked)
            .unwrap_or(false);
        !locked && rec.secret.as_ref().is_some_and(|s| s.matches(secret))
    }

    pub(crate) fn secret_matches(&self, id: &str, secret: &str) -> bool {
        self.entities
            .get(id)
            .and_then(|r| r.secret.as_ref())
            .is_some_and(|s| s.matches(secret))
    }

    pub(crate) fn set_locked(&mut self, id: &str, locked: bool) -> Result<(), Status> {
        self.entity_meta_mut(id)?.locked = Some(locked);
        Ok(())
    }

    pub(crate) fn create_group(
        &mut self,
        name: &str,
        number: Option<i32>,
        display_name: Option<&str>,
        managed_by: Option<&str>,
    ) -> Result<(), Status> {
        if name.is_empty() {
            return Err(Status::invalid_argument("group name is empty"));
        }
        if self.groups.contains_key(name) {
            return Err(Status::already_exists("group name already exists"));
        }
        let number = match number {
            None | Some(-1) => Self::next_number(&self.group_numbers),
            Some(n) if self.group_numbers.contains_key(&n) => {
                return Err(Status::already_exists("group number already exists"))
            }
            Some(n) => n,
        };
        self.group_numbers.insert(number, name.to_string());
        self.groups.insert(
            name.to_string(),
            Group {
                name: Some(name.to_string()),
                display_name: display_name.map(str::to_string),
                number: Some(number),
                managed_by: managed_by.filter(|m| !m.is_empty()).map(str::to_string),
                ..Default::default()
            },
        );
        Ok(())
    }

    pub(crate) fn destroy_group(&mut self, name: &str) -> Result<(), Status> {
        let g = self.groups.remove(name).ok_or_else(|| not_found("group"))?;
        if let Some(n) = g.number {
            self.group_numbers.remove(&n);
        }
        Ok(())
    }

    /// Display name and managing group; name and number stay.
    pub(crate) fn update_group_meta(&mut self, name: &str, new: &Group) -> Result<(), Status> {
        let g = self.group_mut(name)?;
        if new.display_name.is_some() {
            g.display_name.clone_from(&new.display_name);
        }
        if let Some(m) = &new.managed_by {
            g.managed_by = Some(m.clone()).filter(|m| !m.is_empty());
        }
        Ok(())
    }

    /// Adds (replacing any rule on the same target) or removes a rule.
    pub(crate) fn set_rule(
        &mut self,
        group: &str,
        rule: Option<ExpansionRule>,
        target: &str,
    ) -> Result<(), Status> {
        if !self.groups.contains_key(target) {
            return Err(not_found("target group"));
        }
        let g = self.group_mut(group)?;
        g.expansions
            .retain(|x| x.split_once(':').map(|(_, t)| t) != Some(target));
        if let Some(rule) = rule {
            g.expansions.push(format!("{}:{target}", rule.prefix()));
        }
        Ok(())
    }

    pub(crate) fn add_direct_member(&mut self, entity: &str, group: &str) -> Result<(), Status> {
        if !self.groups.contains_key(group) {
            return Err(not_found("group"));
        }
        let meta = self.entity_meta_mut(entity)?;
        if !meta.groups.iter().any(|g| g == group) {
            meta.groups.push(group.to_string());
        }
        Ok(())
    }

    pub(crate) fn del_direct_member(&mut self, entity: &str, group: &str) -> Result<(), Status> {
        self.entity_meta_mut(entity)?.groups.retain(|g| g != group);
        Ok(())
    }

    pub(crate) fn set_entity_capability(
        &mut self,
        id: &str,
        cap: Capability,
        add: bool,
    ) -> Result<(), Status> {
        let caps = &mut self.entity_meta_mut(id)?.capabilities;
        if add {
            add_capability(caps, cap);
        } else {
            caps.retain(|c| *c != cap as i32);
        }
        Ok(())
    }

    pub(crate) fn set_group_capability(
        &mut self,
        name: &str,
        cap: Capability,
        add: bool,
    ) -> Result<(), Status> {
        let caps = &mut self.group_mut(name)?.capabilities;
        if add {
            add_capability(caps, cap);
        } else {
            caps.retain(|c| *c != cap as i32);
        }
        Ok(())
    }

    pub(crate) fn effective_members(&self, group: &str) -> Vec<&str> {
        let mut x = Expander::new(self);
        let mut v: Vec<&str> = x.members(group, &mut Vec::new()).0.into_iter().collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn effective_groups(&self, entity: &str) -> Vec<&str> {
        Expander::new(self).groups_of(entity)
    }

    /// The entity's own capabilities plus those of its effective groups.
    pub(crate) fn capabilities_of(&self, id: &str) -> Vec<Capability> {
        let mut caps: Vec<Capability> = Vec::new();
        let push = |caps: &mut Vec<Capability>, list: &[i32]| {
            for c in list.iter().filter_map(|c| Capability::try_from(*c).ok()) {
                if !caps.contains(&c) {
                    caps.push(c);
                }
            }
        };
        if let Some(m) = self.entities.get(id).and_then(|r| r.entity.meta.as_ref()) {
            push(&mut caps, &m.capabilities);
        }
        for g in self.effective_groups(id) {
            if let Some(group) = self.groups.get(g) {
                push(&mut caps, &group.capabilities);
            }
        }
        caps
    }

    /// Whether `entity` is an effective member of the group that manages `group`.
    pub(crate) fn manages(&self, entity: &str, group: &str) -> bool {
        let Some(manager) = self.groups.get(group).and_then(|g| g.managed_by.as_deref()) else {
            return false;
        };
        Expander::new(self)
            .members(manager, &mut Vec::new())
            .0
            .contains(entity)
    }

    /// An entity as servers answer it: secret redacted, groups in no
    /// particular order.
    pub(crate) fn entity_answer(rec: &EntityRecord) -> Entity {
        let mut e = rec.entity.clone();
        e.secret = Some(REDACTED.to_string());
        if let Some(m) = e.meta.as_mut() {
            fastrand::shuffle(&mut m.groups);
        }
        e
    }

    pub(crate) fn search_entities(&self, q: &Query, cap: usize) -> Vec<Entity> {
        let mut hits: Vec<&EntityRecord> = self
            .entities
            .values()
            .filter(|r| q.matches(&entity_doc(&r.entity)))
            .collect();
        fastrand::shuffle(&mut hits);
        hits.truncate(cap);
        hits.into_iter().map(Self::entity_answer).collect()
    }

    pub(crate) fn search_groups(&self, q: &Query, cap: usize) -> Vec<Group> {
        let mut hits: Vec<&Group> = self
            .groups
            .values()
            .filter(|g| q.matches(&group_doc(g)))
            .collect();
        fastrand::shuffle(&mut hits);
        hits.truncate(cap);
        hits.into_iter().cloned().collect()
    }

    pub(crate) fn member_entities(&self, group: &str) -> Vec<Entity> {
        let mut out: Vec<Entity> = self
            .effective_members(group)
            .into_iter()
            .filter_map(|id| self.entities.get(id))
            .map(Self::entity_answer)
            .collect();
        fastrand::shuffle(&mut out);
        out
    }

    pub(crate) fn group_entities_of(&self, id: &str) -> Result<Vec<Group>, Status> {
        self.entity(id)?;
        let mut out: Vec<Group> = self
            .effective_groups(id)
            .into_iter()
            .filter_map(|g| self.groups.get(g).cloned())
            .collect();
        fastrand::shuffle(&mut out);
        Ok(out)
    }

    /// The group first, then the groups it manages.
    pub(crate) fn group_info(&self, name: &str) -> Result<Vec<Group>, Status> {
        let g = self.group(name)?;
        let mut out = vec![g.clone()];
        out.extend(
            self.groups
                .values()
                .filter(|m| {
                    m.managed_by.as_deref() == Some(name) && m.name.as_deref() != Some(name)
                })
                .cloned(),
        );
        Ok(out)
    }

    pub(crate) fn entity_keys(
        &mut self,
        id: &str,
        action: Action,
        key_type: &str,
        key: &str,
    ) -> Result<Vec<String>, Status> {
        let meta = self.entity_meta_mut(id)?;
        let key_type = key_type.to_uppercase();
        match action {
            Action::Read => Ok(meta
                .keys
                .iter()
                .filter(|k| {
                    key_type.is_empty()
                        || key_type == "*"
                        || k.split(':')
                            .next()
                            .unwrap_or("")
                            .eq_ignore_ascii_case(&key_type)
                })
                .cloned()
                .collect()),
            Action::Add => {
                let entry = format!("{key_type}:{key}");
                if !meta.keys.contains(&entry) {
                    meta.keys.push(entry);
                }
                Ok(Vec::new())
            }
            Action::Drop => {
                let entry = format!("{key_type}:{key}");
                meta.keys.retain(|k| *k != entry);
                Ok(Vec::new())
            }
            _ => Err(Status::invalid_argument("action not valid for keys")),
        }
    }

    pub(crate) fn entity_count(&self) -> usize {
        self.entities.len()
    }

    pub(crate) fn group_count(&self) -> usize {
        self.groups.len()
    }
}

/// Thread-safe handle on the server's directory: seed it before or while
/// the server runs, inspect it after calls. Seeding methods panic on
/// inconsistent input (unknown names, duplicates): that is a test bug.
#[derive(Clone, Default)]
pub struct Directory {
    inner: Arc<Mutex<DirState>>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.lock_state();
        f.debug_struct("Directory")
            .field("entities", &st.entity_count())
            .field("groups", &st.group_count())
            .finish()
    }
}

impl Directory {
    pub fn new() -> Directory {
        Directory::default()
    }

    pub(crate) fn lock_state(&self) -> MutexGuard<'_, DirState> {
        // A panicking test thread must not wedge the server.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `number` -1 picks the next free number.
    pub fn add_entity(&self, id: &str, number: i32, secret: &str) {
        self.lock_state()
            .create_entity(id, Some(number), Some(secret))
            .unwrap_or_else(|e| panic!("add_entity({id}): {}", e.message()));
    }

    /// Deletes the entity, as EntityDestroy does.
    pub fn remove_entity(&self, id: &str) {
        self.lock_state()
            .destroy_entity(id)
            .unwrap_or_else(|e| panic!("remove_entity({id}): {}", e.message()));
    }

    pub fn set_entity_meta(&self, id: &str, f: impl FnOnce(&mut EntityMeta)) {
        let mut st = self.lock_state();
        let meta = st
            .entity_meta_mut(id)
            .unwrap_or_else(|_| panic!("set_entity_meta: no entity {id}"));
        f(meta);
    }

    /// `number` -1 picks the next free number.
    pub fn add_group(&self, name: &str, number: i32, display_name: &str, managed_by: Option<&str>) {
        self.lock_state()
            .create_group(name, Some(number), Some(display_name), managed_by)
            .unwrap_or_else(|e| panic!("add_group({name}): {}", e.message()));
    }

    /// A direct membership (`EntityMeta.Groups`).
    pub fn add_member(&self, entity: &str, group: &str) {
        self.lock_state()
            .add_direct_member(entity, group)
            .unwrap_or_else(|e| panic!("add_member({entity}, {group}): {}", e.message()));
    }

    pub fn remove_member(&self, entity: &str, group: &str) {
        self.lock_state()
            .del_direct_member(entity, group)
            .unwrap_or_else(|e| panic!("remove_member({entity}, {group}): {}", e.message()));
    }

    pub fn add_rule(&self, group: &str, mode: ExpansionRule, target: &str) {
        self.lock_state()
            .set_rule(group, Some(mode), target)
            .unwrap_or_else(|e| panic!("add_rule({group}, {target}): {}", e.message()));
    }

    /// A capability held by the entity directly.
    pub fn set_capability(&self, entity: &str, cap: Capability) {
        self.lock_state()
            .set_entity_capability(entity, cap, true)
            .unwrap_or_else(|e| panic!("set_capability({entity}): {}", e.message()));
    }

    /// A capability held by every effective member of the group.
    pub fn set_group_capability(&self, group: &str, cap: Capability) {
        self.lock_state()
            .set_group_capability(group, cap, true)
            .unwrap_or_else(|e| panic!("set_group_capability({group}): {}", e.message()));
    }

    /// Sets `EntityMeta.Locked` (present from then on, as on NetAuth).
    pub fn lock(&self, id: &str, locked: bool) {
        self.lock_state()
            .set_locked(id, locked)
            .unwrap_or_else(|e| panic!("lock({id}): {}", e.message()));
    }

    pub fn set_secret(&self, id: &str, secret: &str) {
        self.lock_state()
            .set_secret(id, secret)
            .unwrap_or_else(|e| panic!("set_secret({id}): {}", e.message()));
    }

    /// Sorted; same rules as GroupMembers.
    pub fn effective_members(&self, group: &str) -> Vec<String> {
        let st = self.lock_state();
        st.effective_members(group)
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Sorted; same rules as EntityGroups.
    pub fn effective_groups(&self, entity: &str) -> Vec<String> {
        let st = self.lock_state();
        let mut v: Vec<String> = st
            .effective_groups(entity)
            .into_iter()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    }

    pub fn entity_count(&self) -> usize {
        self.lock_state().entity_count()
    }

    pub fn group_count(&self) -> usize {
        self.lock_state().group_count()
    }

    /// Whether `secret` is the entity's current secret (lock not considered).
    pub fn check_secret(&self, id: &str, secret: &str) -> bool {
        self.lock_state().secret_matches(id, secret)
    }

    /// The stored entity (no secret field), if any.
    pub fn entity(&self, id: &str) -> Option<Entity> {
        self.lock_state().entity(id).ok().map(|r| r.entity.clone())
    }

    pub fn group(&self, name: &str) -> Option<Group> {
        self.lock_state().group(name).ok().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> Directory {
        let d = Directory::new();
        for (i, id) in ["a", "b", "c", "d"].iter().enumerate() {
            d.add_entity(id, 10 + i as i32, "pw");
        }
        for g in ["g1", "g2", "g3", "x"] {
            d.add_group(g, -1, g, None);
        }
        d
    }

    #[test]
    fn include_exclude_recursive_and_exclusion_wins() {
        let d = dir();
        d.add_member("a", "g1");
        d.add_member("b", "g2");
        d.add_member("c", "g3");
        d.add_member("c", "x");
        d.add_member("b", "x");
        // g1 includes g2 includes g3; g1 excludes x (b and c): exclusion wins
        d.add_rule("g1", ExpansionRule::Include, "g2");
        d.add_rule("g2", ExpansionRule::Include, "g3");
        assert_eq!(d.effective_members("g1"), vec!["a", "b", "c"]);
        d.add_rule("g1", ExpansionRule::Exclude, "x");
        assert_eq!(d.effective_members("g1"), vec!["a"]);
        // exclusion also beats a direct membership
        d.add_member("b", "g1");
        assert_eq!(d.effective_members("g1"), vec!["a"]);
        assert_eq!(d.effective_groups("c"), vec!["g2", "g3", "x"]);
        assert_eq!(d.effective_groups("a"), vec!["g1"]);
    }

    #[test]
    fn cycles_terminate() {
        let d = dir();
        d.add_member("a", "g1");
        d.add_member("b", "g2");
        d.add_rule("g1", ExpansionRule::Include, "g2");
        d.add_rule("g2", ExpansionRule::Include, "g1");
        assert_eq!(d.effective_members("g1"), vec!["a", "b"]);
        assert_eq!(d.effective_members("g2"), vec!["a", "b"]);
        d.add_rule("g3", ExpansionRule::Include, "g3");
        d.add_member("c", "g3");
        assert_eq!(d.effective_members("g3"), vec!["c"]);
        assert_eq!(d.effective_groups("a"), vec!["g1", "g2"]);
    }

    #[test]
    fn untyped_meta_actions() {
        let mut v = Vec::new();
        patch_untyped(&mut v, Action::Upsert, "k{1}", "one").unwrap();
        patch_untyped(&mut v, Action::Upsert, "k{0}", "zero").unwrap();
        patch_untyped(&mut v, Action::Upsert, "other", "x").unwrap();
        patch_untyped(&mut v, Action::Upsert, "other", "y").unwrap();
        assert_eq!(
            patch_untyped(&mut v, Action::Read, "k", "").unwrap(),
            vec!["k{0}:zero", "k{1}:one"]
        );
        assert_eq!(
            patch_untyped(&mut v, Action::Read, "*", "").unwrap(),
            vec!["k{0}:zero", "k{1}:one", "other:y"]
        );
        patch_untyped(&mut v, Action::Clearexact, "k{0}", "").unwrap();
        assert_eq!(v, vec!["k{1}:one", "other:y"]);
        patch_untyped(&mut v, Action::Upsert, "k{5}", "five").unwrap();
        patch_untyped(&mut v, Action::Clearfuzzy, "k", "").unwrap();
        assert_eq!(v, vec!["other:y"]);
    }

    #[test]
    fn next_number_and_duplicates() {
        let d = dir();
        d.add_entity("e", -1, "pw");
        assert_eq!(d.entity("e").unwrap().number, Some(14));
        let mut st = d.lock_state();
        assert_eq!(
            st.create_entity("f", Some(14), None).unwrap_err().code(),
            tonic::Code::AlreadyExists
        );
        assert_eq!(
            st.create_entity("a", None, None).unwrap_err().code(),
            tonic::Code::AlreadyExists
        );
        st.create_entity("zero", Some(0), None).unwrap();
    }

    #[test]
    fn secrets_are_hashed_and_lock_blocks_auth() {
        let d = dir();
        let st = d.lock_state();
        assert!(st.authenticate("a", "pw"));
        assert!(!st.authenticate("a", "wrong"));
        assert!(!st.authenticate("nobody", "pw"));
        let rec = st.entity("a").unwrap();
        assert!(rec.entity.secret.is_none());
        drop(st);
        d.lock("a", true);
        assert!(!d.lock_state().authenticate("a", "pw"));
        assert!(d.check_secret("a", "pw"));
    }
}

//! The initial directory, from a TOML file.
//!
//! ```toml
//! [[group]]
//! name = "staff"            # required
//! number = 2000             # optional; -1 or absent picks the next free
//! display_name = "Staff"
//! managed_by = "admins"
//! include = ["developers"]  # expansion rules
//! exclude = ["interns"]
//! capabilities = ["CREATE_ENTITY"]
//! untyped_meta = ["k:v"]
//!
//! [[entity]]
//! id = "alice"              # required
//! number = 1001             # optional; -1 or absent picks the next free
//! secret = "alice-secret"   # required
//! locked = false            # optional; absent leaves EntityMeta.Locked unset
//! primary_group = "staff"   # and gecos, home, shell, graphical_shell,
//! display_name = "Alice"    # legal_name, badge_number
//! groups = ["staff"]        # direct memberships
//! capabilities = ["GLOBAL_ROOT"]
//! keys = ["SSH:ssh-ed25519 AAAA... alice@host"]
//! untyped_meta = ["k:v"]
//! ```

use std::path::Path;

use netauth_proto::Capability;
use serde::Deserialize;

use crate::directory::{Directory, ExpansionRule};

/// A fixture that could not be read, parsed or applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixtureError(pub String);

impl std::fmt::Display for FixtureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FixtureError {}

fn auto_number() -> i32 {
    -1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureEntity {
    pub id: String,
    #[serde(default = "auto_number")]
    pub number: i32,
    pub secret: String,
    pub locked: Option<bool>,
    pub primary_group: Option<String>,
    pub gecos: Option<String>,
    pub legal_name: Option<String>,
    pub display_name: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub graphical_shell: Option<String>,
    pub badge_number: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub untyped_meta: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureGroup {
    pub name: String,
    #[serde(default = "auto_number")]
    pub number: i32,
    pub display_name: Option<String>,
    pub managed_by: Option<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub untyped_meta: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub entity: Vec<FixtureEntity>,
    #[serde(default)]
    pub group: Vec<FixtureGroup>,
}

fn capability(name: &str, whose: &str) -> Result<Capability, FixtureError> {
    Capability::from_str_name(name)
        .ok_or_else(|| FixtureError(format!("{whose}: unknown capability {name:?}")))
}

impl Fixture {
    pub fn from_toml_str(s: &str) -> Result<Fixture, FixtureError> {
        toml::from_str(s).map_err(|e| FixtureError(format!("fixture is not valid: {e}")))
    }

    pub fn load(path: &Path) -> Result<Fixture, FixtureError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| FixtureError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| FixtureError(format!("{}: {}", path.display(), e.0)))
    }
}

impl Directory {
    /// Adds the fixture's groups, entities, memberships, rules and capabilities.
    pub fn load_fixture(&self, f: &Fixture) -> Result<(), FixtureError> {
        let mut st = self.lock_state();
        let err =
            |what: String| move |s: tonic::Status| FixtureError(format!("{what}: {}", s.message()));
        for g in &f.group {
            st.create_group(
                &g.name,
                Some(g.number),
                g.display_name.as_deref(),
                g.managed_by.as_deref(),
            )
            .map_err(err(format!("group {}", g.name)))?;
            let group = st.group_mut(&g.name).map_err(err(g.name.clone()))?;
            group.untyped_meta.clone_from(&g.untyped_meta);
            for c in &g.capabilities {
                let c = capability(c, &g.name)?;
                st.set_group_capability(&g.name, c, true)
                    .map_err(err(g.name.clone()))?;
            }
        }
        for g in &f.group {
            for (targets, rule) in [
                (&g.include, ExpansionRule::Include),
                (&g.exclude, ExpansionRule::Exclude),
            ] {
                for t in targets {
                    st.set_rule(&g.name, Some(rule), t)
                        .map_err(err(format!("group {} rule on {t}", g.name)))?;
                }
            }
        }
        for e in &f.entity {
            let whose = format!("entity {}", e.id);
            st.create_entity(&e.id, Some(e.number), Some(&e.secret))
                .map_err(err(whose.clone()))?;
            for g in &e.groups {
                st.add_direct_member(&e.id, g)
                    .map_err(err(format!("{whose} in group {g}")))?;
            }
            for c in &e.capabilities {
                let c = capability(c, &whose)?;
                st.set_entity_capability(&e.id, c, true)
                    .map_err(err(whose.clone()))?;
            }
            let meta = st.entity_meta_mut(&e.id).map_err(err(whose.clone()))?;
            meta.locked = e.locked;
            meta.primary_group.clone_from(&e.primary_group);
            meta.gecos.clone_from(&e.gecos);
            meta.legal_name.clone_from(&e.legal_name);
            meta.display_name.clone_from(&e.display_name);
            meta.home.clone_from(&e.home);
            meta.shell.clone_from(&e.shell);
            meta.graphical_shell.clone_from(&e.graphical_shell);
            meta.badge_number.clone_from(&e.badge_number);
            meta.keys.clone_from(&e.keys);
            meta.untyped_meta.clone_from(&e.untyped_meta);
        }
        Ok(())
    }
}

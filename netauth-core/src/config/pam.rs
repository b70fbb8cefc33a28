//! Host settings of the PAM module: our own `[unix.pam]` table of NetAuth's
//! `config.toml`.
//!
//! ```toml
//! [unix.pam]
//! allow_groups = ["staff"]        # absent or empty: every entity may log in
//! request_timeout_ms = 3000       # overrides [unix] request_timeout_ms
//! connect_timeout_ms = 2000       # overrides [unix] connect_timeout_ms
//! offline_max_age_s = 86400       # oldest cache the account step trusts offline
//!
//! [unix.pam.service.sshd]
//! allow_groups = ["admins"]       # replaces the list above for PAM service sshd
//! ```
//!
//! Unknown keys and tables here are configuration errors (PAM_SERVICE_ERR),
//! like anywhere under `[unix]`: a misspelt `allow_groups` must not silently
//! admit everybody. [`PamSection::validate`] is this table's part of the one
//! validation step ([`super::unix::UnixSection::validated`]).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

use super::InvalidSetting;

/// Longest deadline we accept; anything above is certainly a typo (ms vs s).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Default age limit of the on-disk cache for offline account decisions.
pub const DEFAULT_OFFLINE_MAX_AGE_S: u64 = 86_400;

/// The raw `[unix.pam]` table as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct PamSection {
    #[serde(default)]
    pub allow_groups: Option<Vec<String>>,
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub offline_max_age_s: Option<u64>,
    #[serde(default, deserialize_with = "super::unix::tables")]
    pub service: BTreeMap<String, ServiceSection>,
}

/// A `[unix.pam.service.NAME]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct ServiceSection {
    /// Present (even empty) replaces the host-wide list for this service.
    #[serde(default)]
    pub allow_groups: Option<Vec<String>>,
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PamSettings {
    pub allow_groups: Vec<String>,
    pub service_allow_groups: BTreeMap<String, Vec<String>>,
    /// `None`: the client's own (`[unix]`) deadline applies.
    pub request_timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub offline_max_age: Duration,
}

impl Default for PamSettings {
    fn default() -> Self {
        PamSettings {
            allow_groups: Vec::new(),
            service_allow_groups: BTreeMap::new(),
            request_timeout: None,
            connect_timeout: None,
            offline_max_age: Duration::from_secs(DEFAULT_OFFLINE_MAX_AGE_S),
        }
    }
}

fn check_groups(key: &str, groups: &[String]) -> Result<(), InvalidSetting> {
    match groups.iter().find(|g| g.trim().is_empty()) {
        Some(_) => Err(InvalidSetting::new(key, "holds an empty group name")),
        None => Ok(()),
    }
}

fn check_timeout(key: &str, value: Option<u64>) -> Result<(), InvalidSetting> {
    match value {
        Some(0) => Err(InvalidSetting::new(key, "must be greater than 0")),
        Some(ms) if ms > MAX_TIMEOUT_MS => Err(InvalidSetting::new(
            key,
            format!("{ms} is above the limit of {MAX_TIMEOUT_MS} ms"),
        )),
        _ => Ok(()),
    }
}

impl PamSection {
    /// Checks the values serde cannot; the error names the dotted key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        check_groups(
            "unix.pam.allow_groups",
            self.allow_groups.as_deref().unwrap_or_default(),
        )?;
        for (service, table) in &self.service {
            if let Some(groups) = &table.allow_groups {
                let key = format!(
                    "unix.pam.service.{}.allow_groups",
                    super::locate::key_segment(service)
                );
                check_groups(&key, groups)?;
            }
        }
        check_timeout("unix.pam.request_timeout_ms", self.request_timeout_ms)?;
        check_timeout("unix.pam.connect_timeout_ms", self.connect_timeout_ms)?;
        Ok(())
    }
}

impl PamSettings {
    /// The settings a validated table gives (see [`PamSection::validate`]).
    pub fn from_section(section: &PamSection) -> PamSettings {
        let timeout = |ms: Option<u64>| ms.filter(|ms| *ms > 0).map(Duration::from_millis);
        PamSettings {
            allow_groups: section.allow_groups.clone().unwrap_or_default(),
            service_allow_groups: section
                .service
                .iter()
                .filter_map(|(name, table)| Some((name.clone(), table.allow_groups.clone()?)))
                .collect(),
            request_timeout: timeout(section.request_timeout_ms),
            connect_timeout: timeout(section.connect_timeout_ms),
            offline_max_age: Duration::from_secs(
                section
                    .offline_max_age_s
                    .unwrap_or(DEFAULT_OFFLINE_MAX_AGE_S),
            ),
        }
    }

    /// The settings of `config` (validated when it was read).
    pub fn from_config(config: &super::Config) -> PamSettings {
        PamSettings::from_section(&config.unix.pam)
    }

    /// Parses and validates the `[unix]` tables of a whole config file
    /// text, other tables ignored (for tests; the module reads the file
    /// with [`super::Config::load`]).
    pub fn from_config_text(text: &str) -> Result<PamSettings, crate::Error> {
        let unix = super::unix::UnixSection::from_toml_str(text, "config.toml")?;
        Ok(PamSettings::from_section(&unix.pam))
    }

    /// The groups that admit a user to `service`; empty means everybody.
    pub fn allowed_groups(&self, service: &str) -> &[String] {
        self.service_allow_groups
            .get(service)
            .unwrap_or(&self.allow_groups)
    }

    /// Whether an entity with the given effective groups may use `service`.
    pub fn admits(&self, service: &str, effective_groups: &[String]) -> bool {
        let allowed = self.allowed_groups(service);
        allowed.is_empty() || allowed.iter().any(|g| effective_groups.contains(g))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn absent_table_admits_everybody() {
        let s = PamSettings::from_config_text("[core]\nserver = \"x\"\n").unwrap();
        assert_eq!(s, PamSettings::default());
        assert!(s.admits("sshd", &[]));
        assert_eq!(s.offline_max_age, Duration::from_secs(86_400));
    }

    #[test]
    fn host_list_and_service_override() {
        let s = PamSettings::from_config_text(
            r#"
            [unix.pam]
            allow_groups = ["staff", "ops"]
            request_timeout_ms = 1500
            connect_timeout_ms = 700
            offline_max_age_s = 60
            [unix.pam.service.sshd]
            allow_groups = ["admins"]
            [unix.pam.service.login]
            allow_groups = []
            [unix.pam.service.su]
            "#,
        )
        .unwrap();
        assert_eq!(s.request_timeout, Some(Duration::from_millis(1500)));
        assert_eq!(s.connect_timeout, Some(Duration::from_millis(700)));
        assert_eq!(s.offline_max_age, Duration::from_secs(60));
        assert!(s.admits("other", &groups(&["ops"])));
        assert!(!s.admits("other", &groups(&["admins"])));
        assert!(s.admits("sshd", &groups(&["admins"])));
        assert!(!s.admits("sshd", &groups(&["staff"])));
        // An explicit empty list opens the service to everybody ...
        assert!(s.admits("login", &[]));
        // ... a service table without the key inherits the host list.
        assert!(!s.admits("su", &[]));
        assert!(s.admits("su", &groups(&["staff"])));
    }

    #[test]
    fn misspelt_key_is_an_error_naming_it() {
        let err = PamSettings::from_config_text("[unix.pam]\nallowed_groups = [\"a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowed_groups"), "{err}");
        assert!(err.contains("line 2, key unix.pam.allowed_groups"), "{err}");
        let err = PamSettings::from_config_text("[unix.pam.service.sshd]\nallow_group = [\"a\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2, key unix.pam.service.sshd.allow_group:"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        for (text, key) in [
            ("[unix.pam]\nrequest_timeout_ms = 0\n", "request_timeout_ms"),
            (
                "[unix.pam]\nconnect_timeout_ms = 9999999\n",
                "connect_timeout_ms",
            ),
            ("[unix.pam]\nallow_groups = [\"\"]\n", "allow_groups"),
            ("[unix.pam.service.sshd]\nallow_groups = [\" \"]\n", "sshd"),
            ("[unix.pam]\nallow_groups = \"staff\"\n", "allow_groups"),
        ] {
            let err = PamSettings::from_config_text(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("line 2"), "{text}: {err}");
        }
    }
}

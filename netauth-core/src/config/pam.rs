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
//! Unknown keys in these tables are configuration errors (PAM_SERVICE_ERR):
//! a misspelt `allow_groups` must not silently admit everybody.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Longest deadline we accept; anything above is certainly a typo (ms vs s).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// Default age limit of the on-disk cache for offline account decisions.
pub const DEFAULT_OFFLINE_MAX_AGE_S: u64 = 86_400;

/// The raw `[unix.pam]` table as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PamSection {
    #[serde(default)]
    pub allow_groups: Option<Vec<String>>,
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    #[serde(default)]
    pub offline_max_age_s: Option<u64>,
    #[serde(default)]
    pub service: BTreeMap<String, ServiceSection>,
}

/// A `[unix.pam.service.NAME]` table.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
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

fn check_groups(key: &str, groups: &[String]) -> Result<(), String> {
    match groups.iter().find(|g| g.trim().is_empty()) {
        Some(_) => Err(format!("{key} holds an empty group name")),
        None => Ok(()),
    }
}

fn check_timeout(key: &str, value: Option<u64>) -> Result<Option<Duration>, String> {
    match value {
        None => Ok(None),
        Some(0) => Err(format!("{key} must be greater than 0")),
        Some(ms) if ms > MAX_TIMEOUT_MS => Err(format!(
            "{key} = {ms} is above the limit of {MAX_TIMEOUT_MS} ms"
        )),
        Some(ms) => Ok(Some(Duration::from_millis(ms))),
    }
}

impl PamSettings {
    /// Validates a parsed table; the error names the offending key.
    pub fn from_section(section: PamSection) -> Result<PamSettings, String> {
        let allow_groups = section.allow_groups.unwrap_or_default();
        check_groups("unix.pam.allow_groups", &allow_groups)?;
        let mut service_allow_groups = BTreeMap::new();
        for (service, table) in section.service {
            if let Some(groups) = table.allow_groups {
                check_groups(&format!("unix.pam.service.{service}.allow_groups"), &groups)?;
                service_allow_groups.insert(service, groups);
            }
        }
        Ok(PamSettings {
            allow_groups,
            service_allow_groups,
            request_timeout: check_timeout(
                "unix.pam.request_timeout_ms",
                section.request_timeout_ms,
            )?,
            connect_timeout: check_timeout(
                "unix.pam.connect_timeout_ms",
                section.connect_timeout_ms,
            )?,
            offline_max_age: Duration::from_secs(
                section
                    .offline_max_age_s
                    .unwrap_or(DEFAULT_OFFLINE_MAX_AGE_S),
            ),
        })
    }

    /// Parses and validates the `[unix.pam]` table from a whole config file
    /// text (used by tests; the module goes through the core's `Config`).
    pub fn from_config_text(text: &str) -> Result<PamSettings, String> {
        #[derive(Deserialize, Default)]
        struct Root {
            #[serde(default)]
            unix: Option<Unix>,
        }
        #[derive(Deserialize, Default)]
        struct Unix {
            #[serde(default)]
            pam: Option<PamSection>,
        }
        let root: Root = toml::from_str(text).map_err(|e| format!("unix.pam: {e}"))?;
        PamSettings::from_section(root.unix.and_then(|u| u.pam).unwrap_or_default())
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
        let err =
            PamSettings::from_config_text("[unix.pam]\nallowed_groups = [\"a\"]\n").unwrap_err();
        assert!(err.contains("allowed_groups"), "{err}");
        let err = PamSettings::from_config_text("[unix.pam.service.sshd]\nallow_group = [\"a\"]\n")
            .unwrap_err();
        assert!(err.contains("allow_group"), "{err}");
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
            let err = PamSettings::from_config_text(text).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}

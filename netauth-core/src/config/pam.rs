//! Host settings of the PAM module: our own `[unix.pam]` table of NetAuth's
//! `config.toml`.
//!
//! ```toml
//! [unix.pam]
//! allow_groups = ["staff"]        # absent or empty: every entity may log in
//! request_timeout_ms = 3000       # overrides [unix] request_timeout_ms
//! connect_timeout_ms = 2000       # overrides [unix] connect_timeout_ms
//! offline_max_age_s = 86400       # oldest cache the account step trusts offline
//! offline_login = true            # cached password verifiers while the server is down
//! offline_login_max_age_days = 7  # since the last online login; 0 = no limit
//! offline_failed_attempts = 5     # wrong offline passwords before a pause; 0 = never
//! offline_failed_delay_s = 300    # the pause
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
/// Default of `offline_login_max_age_days`.
pub const DEFAULT_OFFLINE_LOGIN_MAX_AGE_DAYS: u64 = 7;
/// Default of `offline_failed_attempts`.
pub const DEFAULT_OFFLINE_FAILED_ATTEMPTS: u32 = 5;
/// Default of `offline_failed_delay_s`.
pub const DEFAULT_OFFLINE_FAILED_DELAY_S: u64 = 300;
/// Upper bounds: anything above is surely a typo.
const MAX_OFFLINE_LOGIN_MAX_AGE_DAYS: u64 = 3650;
const MAX_OFFLINE_FAILED_DELAY_S: u64 = 30 * 86_400;

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
    #[serde(default)]
    pub offline_login: Option<bool>,
    #[serde(default)]
    pub offline_login_max_age_days: Option<u64>,
    #[serde(default)]
    pub offline_failed_attempts: Option<u32>,
    #[serde(default)]
    pub offline_failed_delay_s: Option<u64>,
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
    /// Cached password verifiers are stored and used.
    pub offline_login: bool,
    /// Oldest last online login an offline login accepts; `None`: no limit.
    pub offline_login_max_age: Option<Duration>,
    /// Wrong offline passwords before offline logins pause; 0: never.
    pub offline_failed_attempts: u32,
    pub offline_failed_delay: Duration,
}

impl Default for PamSettings {
    fn default() -> Self {
        PamSettings {
            allow_groups: Vec::new(),
            service_allow_groups: BTreeMap::new(),
            request_timeout: None,
            connect_timeout: None,
            offline_max_age: Duration::from_secs(DEFAULT_OFFLINE_MAX_AGE_S),
            offline_login: true,
            offline_login_max_age: Some(days(DEFAULT_OFFLINE_LOGIN_MAX_AGE_DAYS)),
            offline_failed_attempts: DEFAULT_OFFLINE_FAILED_ATTEMPTS,
            offline_failed_delay: Duration::from_secs(DEFAULT_OFFLINE_FAILED_DELAY_S),
        }
    }
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n.saturating_mul(86_400))
}

fn check_at_most(
    key: &str,
    value: Option<u64>,
    max: u64,
    unit: &str,
) -> Result<(), InvalidSetting> {
    match value {
        Some(n) if n > max => Err(InvalidSetting::new(
            key,
            format!("{n} is above the limit of {max} {unit}"),
        )),
        _ => Ok(()),
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
        check_at_most(
            "unix.pam.offline_login_max_age_days",
            self.offline_login_max_age_days,
            MAX_OFFLINE_LOGIN_MAX_AGE_DAYS,
            "days",
        )?;
        check_at_most(
            "unix.pam.offline_failed_delay_s",
            self.offline_failed_delay_s,
            MAX_OFFLINE_FAILED_DELAY_S,
            "seconds",
        )?;
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
            offline_login: section.offline_login.unwrap_or(true),
            offline_login_max_age: match section
                .offline_login_max_age_days
                .unwrap_or(DEFAULT_OFFLINE_LOGIN_MAX_AGE_DAYS)
            {
                0 => None,
                n => Some(days(n)),
            },
            offline_failed_attempts: section
                .offline_failed_attempts
                .unwrap_or(DEFAULT_OFFLINE_FAILED_ATTEMPTS),
            offline_failed_delay: Duration::from_secs(
                section
                    .offline_failed_delay_s
                    .unwrap_or(DEFAULT_OFFLINE_FAILED_DELAY_S),
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
    fn offline_login_keys() {
        let s = PamSettings::default();
        assert!(s.offline_login);
        assert_eq!(
            s.offline_login_max_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(s.offline_failed_attempts, 5);
        assert_eq!(s.offline_failed_delay, Duration::from_secs(300));
        let s = PamSettings::from_config_text(
            "[unix.pam]\noffline_login = false\noffline_login_max_age_days = 0\n\
             offline_failed_attempts = 2\noffline_failed_delay_s = 9\n",
        )
        .unwrap();
        assert!(!s.offline_login);
        assert_eq!(s.offline_login_max_age, None);
        assert_eq!(s.offline_failed_attempts, 2);
        assert_eq!(s.offline_failed_delay, Duration::from_secs(9));
        for (text, key) in [
            (
                "[unix.pam]\noffline_login_max_age_days = 99999\n",
                "offline_login_max_age_days",
            ),
            (
                "[unix.pam]\noffline_failed_delay_s = 99999999\n",
                "offline_failed_delay_s",
            ),
            ("[unix.pam]\noffline_login = \"yes\"\n", "offline_login"),
            (
                "[unix.pam]\noffline_failed_attempts = -1\n",
                "offline_failed_attempts",
            ),
        ] {
            let err = PamSettings::from_config_text(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
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

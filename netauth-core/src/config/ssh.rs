//! Settings of `netauth-unix ssh-keys` (sshd's `AuthorizedKeysCommand`):
//! our own `[unix.ssh]` table of NetAuth's `config.toml`.
//!
//! ```toml
//! [unix.ssh]
//! request_timeout_ms = 1000   # deadline of the server lookup, connect included
//! cache_only = false          # true: never ask the server, answer from the cache
//! ```
//!
//! sshd waits for the command before it answers the client, so the lookup
//! has a short deadline of its own; when it passes (or the server cannot
//! be reached at all) the keys come from the cache. Unknown keys in this
//! table are configuration errors: a misspelt `cache_only` must not
//! silently keep asking a server the administrator meant to keep out of
//! the login path.

use serde::Deserialize;
use std::time::Duration;

use super::InvalidSetting;

/// Default of `request_timeout_ms`: long enough for a server on the same
/// continent, short enough that a dead one does not stall logins.
pub const DEFAULT_SSH_REQUEST_TIMEOUT_MS: u64 = 1000;
/// Longest deadline accepted: sshd's own `LoginGraceTime` is 120 s, and
/// anything near it is certainly a typo (ms vs s).
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The `[unix.ssh]` table as written; checked by [`SshSettings::from_section`]
/// when the file is read.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, expecting = "a table")]
pub struct SshSection {
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    #[serde(default)]
    pub cache_only: Option<bool>,
}

/// Validated settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshSettings {
    /// Deadline of the whole server lookup (connection included).
    pub request_timeout: Duration,
    /// Answer from the cache without asking the server.
    pub cache_only: bool,
}

impl Default for SshSettings {
    fn default() -> Self {
        SshSettings {
            request_timeout: Duration::from_millis(DEFAULT_SSH_REQUEST_TIMEOUT_MS),
            cache_only: false,
        }
    }
}

impl SshSettings {
    /// Validates a parsed table; the error names the offending key.
    pub fn from_section(section: &SshSection) -> Result<SshSettings, InvalidSetting> {
        const KEY: &str = "unix.ssh.request_timeout_ms";
        let request_timeout = match section.request_timeout_ms {
            None => Duration::from_millis(DEFAULT_SSH_REQUEST_TIMEOUT_MS),
            Some(0) => return Err(InvalidSetting::new(KEY, "must be greater than 0")),
            Some(ms) if ms > MAX_TIMEOUT_MS => {
                return Err(InvalidSetting::new(
                    KEY,
                    format!("{ms} is above the limit of {MAX_TIMEOUT_MS} ms"),
                ))
            }
            Some(ms) => Duration::from_millis(ms),
        };
        Ok(SshSettings {
            request_timeout,
            cache_only: section.cache_only.unwrap_or(false),
        })
    }

    /// The settings of `config` (validated when it was read, so the
    /// defaults stand in only for a table that cannot be wrong).
    pub fn from_config(config: &super::Config) -> SshSettings {
        SshSettings::from_section(&config.unix.ssh).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::unix::UnixSection;

    fn from_text(text: &str) -> crate::Result<SshSettings> {
        UnixSection::from_toml_str(text, "/etc/netauth/config.toml")
            .map(|unix| SshSettings::from_section(&unix.ssh).unwrap())
    }

    #[test]
    fn absent_table_gives_the_defaults() {
        let s = from_text("[core]\nserver = \"x\"\n").unwrap();
        assert_eq!(s, SshSettings::default());
        assert_eq!(s.request_timeout, Duration::from_millis(1000));
        assert!(!s.cache_only);
    }

    #[test]
    fn every_key_is_read() {
        let s = from_text("[unix.ssh]\nrequest_timeout_ms = 250\ncache_only = true\n").unwrap();
        assert_eq!(s.request_timeout, Duration::from_millis(250));
        assert!(s.cache_only);
    }

    #[test]
    fn misspelt_keys_and_bad_values_are_errors_naming_the_key() {
        for (text, key) in [
            ("[unix.ssh]\ncache_onyl = true\n", "cache_onyl"),
            ("[unix.ssh]\nrequest_timeout_ms = 0\n", "request_timeout_ms"),
            (
                "[unix.ssh]\nrequest_timeout_ms = 600000\n",
                "request_timeout_ms",
            ),
            ("[unix.ssh]\ncache_only = \"yes\"\n", "cache_only"),
        ] {
            let err = from_text(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn config_section_is_read_through_the_core_config() {
        let config = crate::config::Config::from_toml_str(
            "[core]\nserver = \"x\"\n[unix.ssh]\ncache_only = true\n",
            "/etc/netauth/config.toml",
        )
        .unwrap();
        assert!(SshSettings::from_config(&config).cache_only);
        let err = crate::config::Config::from_toml_str(
            "[core]\nserver = \"x\"\n[unix.ssh]\ncache = true\n",
            "/etc/netauth/config.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unix.ssh") && err.contains("cache"), "{err}");
    }

    /// The man page names every key (the example file is checked against
    /// the parser with the other tables).
    #[test]
    fn the_man_page_names_every_key() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../packaging/common/netauth-unix.8");
        let man = std::fs::read_to_string(&path).unwrap();
        for key in crate::config::known_keys::<SshSection>() {
            assert!(man.contains(&key), "{key} missing from netauth-unix.8");
        }
    }
}

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

/// Default of `request_timeout_ms`: long enough for a server on the same
/// continent, short enough that a dead one does not stall logins.
pub const DEFAULT_SSH_REQUEST_TIMEOUT_MS: u64 = 1000;
/// Longest deadline accepted: sshd's own `LoginGraceTime` is 120 s, and
/// anything near it is certainly a typo (ms vs s).
const MAX_TIMEOUT_MS: u64 = 60_000;

/// The raw `[unix.ssh]` table as written.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
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
    pub fn from_section(section: SshSection) -> Result<SshSettings, String> {
        let request_timeout = match section.request_timeout_ms {
            None => Duration::from_millis(DEFAULT_SSH_REQUEST_TIMEOUT_MS),
            Some(0) => return Err("unix.ssh.request_timeout_ms must be greater than 0".into()),
            Some(ms) if ms > MAX_TIMEOUT_MS => {
                return Err(format!(
                    "unix.ssh.request_timeout_ms = {ms} is above the limit of {MAX_TIMEOUT_MS} ms"
                ))
            }
            Some(ms) => Duration::from_millis(ms),
        };
        Ok(SshSettings {
            request_timeout,
            cache_only: section.cache_only.unwrap_or(false),
        })
    }

    /// Reads and validates `[unix.ssh]` of `config`.
    pub fn from_config(config: &super::Config) -> crate::Result<SshSettings> {
        let section: SshSection = config.section("unix.ssh")?;
        let file = config.file.clone().unwrap_or_default();
        SshSettings::from_section(section).map_err(|problem| crate::Error::Config {
            file,
            key: Some("unix.ssh".to_owned()),
            line: None,
            problem,
        })
    }

    /// Parses and validates the `[unix.ssh]` table from a whole config file
    /// text (tests).
    pub fn from_config_text(text: &str) -> Result<SshSettings, String> {
        #[derive(Deserialize, Default)]
        struct Root {
            #[serde(default)]
            unix: Option<Unix>,
        }
        #[derive(Deserialize, Default)]
        struct Unix {
            #[serde(default)]
            ssh: Option<SshSection>,
        }
        let root: Root = toml::from_str(text).map_err(|e| format!("unix.ssh: {e}"))?;
        SshSettings::from_section(root.unix.and_then(|u| u.ssh).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_table_gives_the_defaults() {
        let s = SshSettings::from_config_text("[core]\nserver = \"x\"\n").unwrap();
        assert_eq!(s, SshSettings::default());
        assert_eq!(s.request_timeout, Duration::from_millis(1000));
        assert!(!s.cache_only);
    }

    #[test]
    fn every_key_is_read() {
        let s = SshSettings::from_config_text(
            "[unix.ssh]\nrequest_timeout_ms = 250\ncache_only = true\n",
        )
        .unwrap();
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
            let err = SshSettings::from_config_text(text).unwrap_err();
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
        assert!(SshSettings::from_config(&config).unwrap().cache_only);
        let config = crate::config::Config::from_toml_str(
            "[core]\nserver = \"x\"\n[unix.ssh]\ncache = true\n",
            "/etc/netauth/config.toml",
        )
        .unwrap();
        let err = SshSettings::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("unix.ssh") && err.contains("cache"), "{err}");
    }

    fn repository_file(path: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The shipped example shows every key of `[unix.ssh]`, commented out,
    /// with its real default: uncommented, the table parses to exactly the
    /// defaults. The man page names every key.
    #[test]
    fn the_example_config_and_the_man_page_show_every_key() {
        let text = repository_file("packaging/common/config.toml");
        let start = text
            .find("\n[unix.ssh]\n")
            .expect("[unix.ssh] in the example");
        let table = &text[start + 1..];
        let end = table[1..].find("\n[").map_or(table.len(), |e| e + 1);
        let uncommented: String = table[..end]
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let doc: toml::Table =
            toml::from_str(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        let shown: Vec<&str> = doc["unix"]["ssh"]
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(shown, ["cache_only", "request_timeout_ms"]);
        assert_eq!(
            SshSettings::from_config_text(&uncommented).unwrap(),
            SshSettings::default()
        );
        let man = repository_file("packaging/common/netauth-unix.8");
        for key in shown {
            assert!(man.contains(key), "{key} missing from netauth-unix.8");
        }
    }
}

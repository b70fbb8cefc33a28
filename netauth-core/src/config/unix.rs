//! Our `[unix]` table and every table under it.
//!
//! NetAuth's tools share `config.toml` and ignore what they do not know, so
//! NetAuth's tables and other tools' tables may hold anything. `[unix]` is
//! ours alone: each of its tables is a serde struct with
//! `deny_unknown_fields`, so a misspelt key or table (`conect_timeout_ms`,
//! `[unix.Pam]`, `[unix.refesh]`) is an error naming it, never a default
//! silently kept (a lost `allow_groups` would let every entity log in).
//!
//! | key | default |
//! |---|---|
//! | `unix.connect_timeout_ms` | 2000 |
//! | `unix.request_timeout_ms` | 5000 |
//! | `unix.cache_dir` | `/var/lib/netauth` |
//! | `unix.status_max_age_s` | 3600 |
//! | `unix.servers` | `[]`: `core.server` alone |
//! | `[unix.refresh]` | see [`RefreshSettings`] |
//! | `[unix.pam]`, `[unix.pam.service.NAME]` | see [`PamSection`] |
//! | `[unix.ssh]` | see [`SshSettings`] |
//!
//! A new table is a new field of [`UnixSection`] (its type: a
//! `Deserialize + Default` struct with `deny_unknown_fields`, read with
//! [`table`]), plus a line in [`UnixSection::validated`] if some values
//! need checking.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::pam::PamSection;
use super::refresh::{RefreshSettings, DEFAULT_CACHE_DIR};
use super::ssh::{SshSection, SshSettings};
use super::{InvalidSetting, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REQUEST_TIMEOUT};

/// Default of `unix.status_max_age_s`: an hour, a dozen refresh intervals
/// of the shipped timer (5 minutes plus up to 2 of jitter), so that one or
/// two failed runs are not an alarm but a refresh stuck for an hour is.
pub const DEFAULT_STATUS_MAX_AGE_S: u64 = 3600;

/// The `[unix]` table as written, after [`UnixSection::validated`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct UnixSection {
    /// Deadline to connect, in ms; see [`UnixSection::connect_timeout`].
    pub connect_timeout_ms: Option<i64>,
    /// Deadline of each call, in ms; see [`UnixSection::request_timeout`].
    pub request_timeout_ms: Option<i64>,
    /// Folder of the cache; see [`UnixSection::cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Oldest cache `netauth-unix status` calls fresh, in seconds; see
    /// [`UnixSection::status_max_age`].
    pub status_max_age_s: Option<u64>,
    /// Read servers (`host` or `host:port`) tried in order; see
    /// [`UnixSection::read_servers`].
    pub servers: Option<Vec<String>>,
    /// `[unix.refresh]`; its `cache_dir` is `[unix] cache_dir`.
    #[serde(deserialize_with = "table")]
    pub refresh: RefreshSettings,
    /// `[unix.pam]` and its `[unix.pam.service.NAME]` tables.
    #[serde(deserialize_with = "table")]
    pub pam: PamSection,
    /// `[unix.ssh]`: `netauth-unix ssh-keys`.
    #[serde(deserialize_with = "table")]
    pub ssh: SshSection,
}

impl UnixSection {
    /// The one validation step of our tables, after deserializing: absolute
    /// paths, ranges, templates. The error names the dotted key.
    pub fn validated(mut self) -> Result<UnixSection, InvalidSetting> {
        positive_millis("unix.connect_timeout_ms", self.connect_timeout_ms)?;
        positive_millis("unix.request_timeout_ms", self.request_timeout_ms)?;
        if self.cache_dir.as_ref().is_some_and(|d| !d.is_absolute()) {
            return Err(InvalidSetting::new(
                "unix.cache_dir",
                "must be an absolute path",
            ));
        }
        if self.status_max_age_s == Some(0) {
            return Err(InvalidSetting::new(
                "unix.status_max_age_s",
                "must be a number of seconds above 0",
            ));
        }
        for entry in self.servers.iter().flatten() {
            parse_server(entry, 1).map_err(|why| InvalidSetting::new("unix.servers", why))?;
        }
        self.refresh.validate()?;
        self.pam.validate()?;
        SshSettings::from_section(&self.ssh)?;
        self.refresh.cache_dir = self.cache_dir().to_owned();
        Ok(self)
    }

    /// `connect_timeout_ms`, or its default.
    pub fn connect_timeout(&self) -> Duration {
        millis(self.connect_timeout_ms).unwrap_or(DEFAULT_CONNECT_TIMEOUT)
    }

    /// `request_timeout_ms`, or its default.
    pub fn request_timeout(&self) -> Duration {
        millis(self.request_timeout_ms).unwrap_or(DEFAULT_REQUEST_TIMEOUT)
    }

    /// `status_max_age_s`, or its default.
    pub fn status_max_age(&self) -> Duration {
        Duration::from_secs(self.status_max_age_s.unwrap_or(DEFAULT_STATUS_MAX_AGE_S))
    }

    /// The read servers as `(host, port)`, in order: `servers` when it
    /// lists any (an entry without a port gets `default_port`, NetAuth's
    /// `core.port`), else none (the caller uses `core.server`). Validated
    /// entries only (see [`UnixSection::validated`]).
    pub fn read_servers(&self, default_port: u16) -> Vec<(String, u16)> {
        self.servers
            .iter()
            .flatten()
            .filter_map(|entry| parse_server(entry, default_port).ok())
            .collect()
    }

    /// `cache_dir`, or `/var/lib/netauth`.
    pub fn cache_dir(&self) -> &Path {
        self.cache_dir
            .as_deref()
            .unwrap_or(Path::new(DEFAULT_CACHE_DIR))
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port` as `(host, port)`; a bare
/// IPv6 literal (more than one colon) is a host without a port.
pub fn parse_server(entry: &str, default_port: u16) -> Result<(String, u16), String> {
    let entry = entry.trim();
    let bad = |why: &str| Err(format!("{entry:?}: {why}"));
    if entry.is_empty() {
        return bad("empty server name");
    }
    if entry.chars().any(|c| c.is_whitespace() || c == '/') {
        return bad("not a host name (expected host or host:port)");
    }
    let (host, port) = if let Some(rest) = entry.strip_prefix('[') {
        match rest.split_once(']') {
            Some((host, "")) => (host, None),
            Some((host, port)) => match port.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return bad("text after the bracketed address"),
            },
            None => return bad("unclosed bracket"),
        }
    } else if entry.matches(':').count() == 1 {
        let (host, port) = entry.split_once(':').unwrap_or((entry, ""));
        (host, Some(port))
    } else {
        (entry, None)
    };
    if host.is_empty() {
        return bad("empty host");
    }
    let port = match port {
        None => default_port,
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return bad("the port must be a number from 1 to 65535"),
        },
    };
    Ok((host.to_owned(), port))
}

fn positive_millis(key: &str, value: Option<i64>) -> Result<(), InvalidSetting> {
    match value {
        Some(n) if n <= 0 => Err(InvalidSetting::new(
            key,
            "must be a positive number of milliseconds",
        )),
        _ => Ok(()),
    }
}

fn millis(value: Option<i64>) -> Option<Duration> {
    value
        .and_then(|n| u64::try_from(n).ok())
        .filter(|n| *n > 0)
        .map(Duration::from_millis)
}

/// A top-level table name that looks like ours but is not `unix`
/// (`unix_pam`, `Unix`, `UNIX`, `unix-refresh`): whatever it holds is
/// ignored, which its author surely did not mean.
pub fn looks_like_ours(top_level_key: &str) -> bool {
    top_level_key != "unix" && super::locate::loose(top_level_key).starts_with("unix")
}

/// Reads one of our tables as a table only. serde's derived structs also
/// take an array (values by position), which no one means in a config file:
/// `sshd = []` must not pass for a `[unix.pam.service.sshd]` table.
pub fn table<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct TableOnly<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for TableOnly<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a table")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
        }
    }
    deserializer.deserialize_map(TableOnly(PhantomData))
}

/// Reads a table of our tables (`[unix.pam.service.NAME]`), each with [`table`].
pub fn tables<'de, D, T>(deserializer: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct AsTable<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for AsTable<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            table(d).map(AsTable)
        }
    }
    let map: BTreeMap<String, AsTable<T>> = table(deserializer)?;
    Ok(map.into_iter().map(|(k, v)| (k, v.0)).collect())
}

#[cfg(test)]
mod server_list_tests {
    use super::*;

    #[test]
    fn server_entries() {
        let ok = |e: &str| parse_server(e, 1729).unwrap();
        assert_eq!(ok("ns1.example.com"), ("ns1.example.com".into(), 1729));
        assert_eq!(ok("ns2.example.com:443"), ("ns2.example.com".into(), 443));
        assert_eq!(ok("[::1]:9"), ("::1".into(), 9));
        assert_eq!(ok("[::1]"), ("::1".into(), 1729));
        assert_eq!(ok("fe80::1"), ("fe80::1".into(), 1729));
        for bad in ["", "a b", "a:0", "a:x", ":1", "[::1", "[::1]x", "https://a"] {
            assert!(parse_server(bad, 1729).is_err(), "{bad}");
        }
    }

    #[test]
    fn servers_key_is_validated_and_ordered() {
        let unix =
            UnixSection::from_toml_str("[unix]\nservers = [\"b\", \"a:7\"]\n", "config.toml")
                .unwrap();
        assert_eq!(
            unix.read_servers(1729),
            [("b".to_owned(), 1729), ("a".to_owned(), 7)]
        );
        let err = UnixSection::from_toml_str("[unix]\nservers = [\"a:99999\"]\n", "config.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unix.servers") && err.contains("line 2"),
            "{err}"
        );
    }
}

//! The refresh's settings, read from our own tables of NetAuth's config.toml.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::clean;

/// What to do with a user whose primary group is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MissingPrimaryGroup {
    /// The user is not served (and the skip is logged).
    Skip,
    /// The user gets a user-private group: gid = uid, named like the user,
    /// when neither the gid nor the name is taken (by a NetAuth group or a
    /// local one); otherwise the user is skipped.
    Private,
}

/// Settings of `netauth-unix refresh`. See the module documentation for the
/// keys and their defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshSettings {
    /// `[unix] cache_dir`: where the cache and the status file are written.
    pub cache_dir: PathBuf,
    pub min_uid: u32,
    pub min_gid: u32,
    pub home_template: String,
    pub use_entity_home: bool,
    pub default_shell: String,
    pub shells_file: PathBuf,
    pub missing_primary_group: MissingPrimaryGroup,
    pub local_passwd: PathBuf,
    pub local_group: PathBuf,
    pub max_shrink_percent: u8,
    pub request_timeout_ms: u64,
    pub search_cap: usize,
}

/// The default cache folder.
pub const DEFAULT_CACHE_DIR: &str = "/var/lib/netauth";

impl Default for RefreshSettings {
    fn default() -> Self {
        RefreshSettings {
            cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
            min_uid: 1000,
            min_gid: 1000,
            home_template: "/home/{name}".to_owned(),
            use_entity_home: true,
            default_shell: "/bin/sh".to_owned(),
            shells_file: PathBuf::from("/etc/shells"),
            missing_primary_group: MissingPrimaryGroup::Skip,
            local_passwd: PathBuf::from("/etc/passwd"),
            local_group: PathBuf::from("/etc/group"),
            max_shrink_percent: 50,
            request_timeout_ms: 60_000,
            search_cap: 16_000,
        }
    }
}

/// A setting that is present but unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: [{table}] {key}: {reason}")]
pub struct SettingsError {
    pub file: String,
    pub table: &'static str,
    pub key: String,
    pub reason: String,
}

#[derive(Deserialize, Default)]
struct UnixTable {
    cache_dir: Option<PathBuf>,
    refresh: Option<toml::Value>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RefreshTable {
    min_uid: Option<u32>,
    min_gid: Option<u32>,
    home_template: Option<String>,
    use_entity_home: Option<bool>,
    default_shell: Option<String>,
    shells_file: Option<PathBuf>,
    missing_primary_group: Option<MissingPrimaryGroup>,
    local_passwd: Option<PathBuf>,
    local_group: Option<PathBuf>,
    max_shrink_percent: Option<u8>,
    request_timeout_ms: Option<u64>,
    search_cap: Option<usize>,
}

impl RefreshSettings {
    /// Reads the settings from the `[unix]` table (`unix`: `None` when the
    /// file has none) of the config file `file` (named in errors only).
    pub fn from_unix_table(
        unix: Option<&toml::Value>,
        file: &Path,
    ) -> Result<RefreshSettings, SettingsError> {
        let file_name = file.display().to_string();
        let err = |table: &'static str, key: &str, reason: String| SettingsError {
            file: file_name.clone(),
            table,
            key: key.to_owned(),
            reason,
        };
        let unix: UnixTable = match unix {
            None => UnixTable::default(),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e: toml::de::Error| err("unix", "", e.message().to_owned()))?,
        };
        let table: RefreshTable = match unix.refresh {
            None => RefreshTable::default(),
            Some(v) => v
                .try_into()
                .map_err(|e: toml::de::Error| err("unix.refresh", "", e.message().to_owned()))?,
        };
        let d = RefreshSettings::default();
        let s = RefreshSettings {
            cache_dir: unix.cache_dir.unwrap_or(d.cache_dir),
            min_uid: table.min_uid.unwrap_or(d.min_uid),
            min_gid: table.min_gid.unwrap_or(d.min_gid),
            home_template: table.home_template.unwrap_or(d.home_template),
            use_entity_home: table.use_entity_home.unwrap_or(d.use_entity_home),
            default_shell: table.default_shell.unwrap_or(d.default_shell),
            shells_file: table.shells_file.unwrap_or(d.shells_file),
            missing_primary_group: table
                .missing_primary_group
                .unwrap_or(d.missing_primary_group),
            local_passwd: table.local_passwd.unwrap_or(d.local_passwd),
            local_group: table.local_group.unwrap_or(d.local_group),
            max_shrink_percent: table.max_shrink_percent.unwrap_or(d.max_shrink_percent),
            request_timeout_ms: table.request_timeout_ms.unwrap_or(d.request_timeout_ms),
            search_cap: table.search_cap.unwrap_or(d.search_cap),
        };

        if !s.cache_dir.is_absolute() {
            return Err(err("unix", "cache_dir", "must be an absolute path".into()));
        }
        for (key, path) in [
            ("shells_file", &s.shells_file),
            ("local_passwd", &s.local_passwd),
            ("local_group", &s.local_group),
        ] {
            if !path.is_absolute() {
                return Err(err("unix.refresh", key, "must be an absolute path".into()));
            }
        }
        if clean::usable_path(&s.home_template.replace("{name}", "x").replace("{uid}", "1"))
            .is_none()
        {
            return Err(err(
                "unix.refresh",
                "home_template",
                "must give an absolute path without ':', control characters or '..' \
                 ({name} and {uid} are replaced)"
                    .into(),
            ));
        }
        if clean::usable_path(&s.default_shell).is_none() {
            return Err(err(
                "unix.refresh",
                "default_shell",
                "must be an absolute path without ':', control characters or '..'".into(),
            ));
        }
        if s.max_shrink_percent > 100 {
            return Err(err(
                "unix.refresh",
                "max_shrink_percent",
                "must be between 0 and 100".into(),
            ));
        }
        if s.request_timeout_ms == 0 {
            return Err(err(
                "unix.refresh",
                "request_timeout_ms",
                "must be more than 0".into(),
            ));
        }
        if s.search_cap == 0 {
            return Err(err(
                "unix.refresh",
                "search_cap",
                "must be more than 0".into(),
            ));
        }
        Ok(s)
    }

    /// Reads the settings from the `[unix]` table of `config`'s document.
    pub fn from_config(config: &crate::config::Config) -> Result<RefreshSettings, SettingsError> {
        let file = config.file.clone().unwrap_or_default();
        RefreshSettings::from_unix_table(config.document().get("unix"), &file)
    }

    /// The home directory the template gives `name` / `uid`.
    pub fn templated_home(&self, name: &str, uid: u32) -> String {
        self.home_template
            .replace("{name}", name)
            .replace("{uid}", &uid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RefreshSettings, SettingsError> {
        let doc: toml::Table = toml::from_str(text).unwrap();
        RefreshSettings::from_unix_table(doc.get("unix"), Path::new("/etc/netauth/config.toml"))
    }

    #[test]
    fn defaults_without_a_unix_table() {
        let s = parse("[core]\nserver = \"x\"\n").unwrap();
        assert_eq!(s, RefreshSettings::default());
        assert_eq!(s.cache_dir, Path::new("/var/lib/netauth"));
        assert_eq!(s.templated_home("alice", 1001), "/home/alice");
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            r#"
            [unix]
            cache_dir = "/tmp/c"
            [unix.refresh]
            min_uid = 2000
            min_gid = 3000
            home_template = "/u/{uid}/{name}"
            use_entity_home = false
            default_shell = "/bin/bash"
            shells_file = "/tmp/shells"
            missing_primary_group = "private"
            local_passwd = "/tmp/passwd"
            local_group = "/tmp/group"
            max_shrink_percent = 10
            request_timeout_ms = 500
            search_cap = 100
            "#,
        )
        .unwrap();
        assert_eq!(s.cache_dir, Path::new("/tmp/c"));
        assert_eq!((s.min_uid, s.min_gid), (2000, 3000));
        assert_eq!(s.templated_home("bob", 7), "/u/7/bob");
        assert!(!s.use_entity_home);
        assert_eq!(s.default_shell, "/bin/bash");
        assert_eq!(s.shells_file, Path::new("/tmp/shells"));
        assert_eq!(s.missing_primary_group, MissingPrimaryGroup::Private);
        assert_eq!(s.local_passwd, Path::new("/tmp/passwd"));
        assert_eq!(s.local_group, Path::new("/tmp/group"));
        assert_eq!(s.max_shrink_percent, 10);
        assert_eq!(s.request_timeout_ms, 500);
        assert_eq!(s.search_cap, 100);
    }

    #[test]
    fn bad_values_name_the_file_and_key() {
        for (text, key) in [
            ("[unix.refresh]\nmin_uid = -1\n", ""),
            ("[unix.refresh]\nmin_ui = 5\n", ""),
            ("[unix.refresh]\nmissing_primary_group = \"maybe\"\n", ""),
            ("[unix]\ncache_dir = \"rel/dir\"\n", "cache_dir"),
            (
                "[unix.refresh]\nhome_template = \"home/{name}\"\n",
                "home_template",
            ),
            (
                "[unix.refresh]\nhome_template = \"/home/a:b\"\n",
                "home_template",
            ),
            (
                "[unix.refresh]\ndefault_shell = \"/bin/../sh\"\n",
                "default_shell",
            ),
            (
                "[unix.refresh]\nmax_shrink_percent = 101\n",
                "max_shrink_percent",
            ),
            (
                "[unix.refresh]\nlocal_passwd = \"passwd\"\n",
                "local_passwd",
            ),
            (
                "[unix.refresh]\nrequest_timeout_ms = 0\n",
                "request_timeout_ms",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            let msg = e.to_string();
            assert!(msg.starts_with("/etc/netauth/config.toml: [unix"), "{msg}");
        }
    }
}

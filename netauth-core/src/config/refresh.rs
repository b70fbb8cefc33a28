//! The refresh's settings, read from our own tables of NetAuth's config.toml.

use std::path::{Path, PathBuf};

use netauth_cache::clean;

/// What to do with a user whose primary group is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissingPrimaryGroup {
    /// The user is not served (and the skip is logged).
    Skip,
    /// The user gets a user-private group: gid = uid, named like the user,
    /// when neither the gid nor the name is taken (by a NetAuth group or a
    /// local one); otherwise the user is skipped.
    Private,
}

/// What to do with a NetAuth group whose name a local group already has
/// (its number being free). Either way the group's members are served, and
/// a user whose primary group it is keeps its number as gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalGroupNameClash {
    /// Not served as a group: its gid has no name on this host, and it is
    /// left out of its members' supplementary groups.
    Omit,
    /// Served under `renamed_group_prefix` + its name, unless that name is
    /// unusable or taken by a local or NetAuth group (then omitted).
    Rename,
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
    pub local_group_name_clash: LocalGroupNameClash,
    pub renamed_group_prefix: String,
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
            local_group_name_clash: LocalGroupNameClash::Omit,
            renamed_group_prefix: "netauth-".to_owned(),
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

impl RefreshSettings {
    /// Reads the settings from the `[unix]` table (`unix`: `None` when the
    /// file has none) of the config file `file` (named in errors only).
    /// Keys of `[unix]` other than `cache_dir` and `refresh` belong to others
    /// and are ignored; an unknown key in `[unix.refresh]` is an error.
    pub fn from_unix_table(
        unix: Option<&toml::Value>,
        file: &Path,
    ) -> Result<RefreshSettings, SettingsError> {
        let err = |table: &'static str, key: &str, reason: &str| SettingsError {
            file: file.display().to_string(),
            table,
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let mut s = RefreshSettings::default();
        let empty = toml::Table::new();
        let unix = match unix {
            None => &empty,
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(err("unix", "", "must be a table")),
        };
        if let Some(v) = unix.get("cache_dir") {
            s.cache_dir =
                path_value(v).ok_or_else(|| err("unix", "cache_dir", "must be a path"))?;
        }
        let refresh = match unix.get("refresh") {
            None => &empty,
            Some(toml::Value::Table(t)) => t,
            Some(_) => return Err(err("unix", "refresh", "must be a table")),
        };
        for (key, v) in refresh {
            let bad = |reason: &str| err("unix.refresh", key, reason);
            match key.as_str() {
                "min_uid" => {
                    s.min_uid = u32_value(v).ok_or_else(|| bad("must be a number 0-4294967295"))?
                }
                "min_gid" => {
                    s.min_gid = u32_value(v).ok_or_else(|| bad("must be a number 0-4294967295"))?
                }
                "home_template" => {
                    s.home_template = string_value(v).ok_or_else(|| bad("must be a string"))?
                }
                "use_entity_home" => {
                    s.use_entity_home = v.as_bool().ok_or_else(|| bad("must be true or false"))?
                }
                "default_shell" => {
                    s.default_shell = string_value(v).ok_or_else(|| bad("must be a string"))?
                }
                "shells_file" => {
                    s.shells_file = path_value(v).ok_or_else(|| bad("must be a path"))?
                }
                "missing_primary_group" => {
                    s.missing_primary_group = match v.as_str() {
                        Some("skip") => MissingPrimaryGroup::Skip,
                        Some("private") => MissingPrimaryGroup::Private,
                        _ => return Err(bad("must be \"skip\" or \"private\"")),
                    }
                }
                "local_group_name_clash" => {
                    s.local_group_name_clash = match v.as_str() {
                        Some("omit") => LocalGroupNameClash::Omit,
                        Some("rename") => LocalGroupNameClash::Rename,
                        _ => return Err(bad("must be \"omit\" or \"rename\"")),
                    }
                }
                "renamed_group_prefix" => {
                    s.renamed_group_prefix =
                        string_value(v).ok_or_else(|| bad("must be a string"))?
                }
                "local_passwd" => {
                    s.local_passwd = path_value(v).ok_or_else(|| bad("must be a path"))?
                }
                "local_group" => {
                    s.local_group = path_value(v).ok_or_else(|| bad("must be a path"))?
                }
                "max_shrink_percent" => {
                    s.max_shrink_percent = v
                        .as_integer()
                        .and_then(|n| u8::try_from(n).ok())
                        .filter(|n| *n <= 100)
                        .ok_or_else(|| bad("must be between 0 and 100"))?
                }
                "request_timeout_ms" => {
                    s.request_timeout_ms = v
                        .as_integer()
                        .and_then(|n| u64::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("must be a number of milliseconds above 0"))?
                }
                "search_cap" => {
                    s.search_cap = v
                        .as_integer()
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                        .ok_or_else(|| bad("must be a number above 0"))?
                }
                _ => return Err(bad("unknown key (a typo would silently keep a default)")),
            }
        }

        if !s.cache_dir.is_absolute() {
            return Err(err("unix", "cache_dir", "must be an absolute path"));
        }
        for (key, path) in [
            ("shells_file", &s.shells_file),
            ("local_passwd", &s.local_passwd),
            ("local_group", &s.local_group),
        ] {
            if !path.is_absolute() {
                return Err(err("unix.refresh", key, "must be an absolute path"));
            }
        }
        let sample_home = s.home_template.replace("{name}", "x").replace("{uid}", "1");
        if clean::usable_path(&sample_home).is_none() {
            return Err(err(
                "unix.refresh",
                "home_template",
                "must give an absolute path without ':', control characters or '..' \
                 ({name} and {uid} are replaced)",
            ));
        }
        // Checked as the start of a name (the rest is a group name that
        // passed the name rule): never empty, so a renamed name differs.
        if s.renamed_group_prefix.is_empty()
            || clean::check_name(&format!("{}x", s.renamed_group_prefix)).is_err()
        {
            return Err(err(
                "unix.refresh",
                "renamed_group_prefix",
                "must be a non-empty start of a name: letters, digits, '.', '_' and '-', \
                 not starting with '.' or '-'",
            ));
        }
        if clean::usable_path(&s.default_shell).is_none() {
            return Err(err(
                "unix.refresh",
                "default_shell",
                "must be an absolute path without ':', control characters or '..'",
            ));
        }
        Ok(s)
    }

    /// Reads the settings from the `[unix]` table of `config`'s document.
    pub fn from_config(config: &super::Config) -> Result<RefreshSettings, SettingsError> {
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

fn string_value(v: &toml::Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

fn path_value(v: &toml::Value) -> Option<PathBuf> {
    v.as_str().filter(|s| !s.is_empty()).map(PathBuf::from)
}

fn u32_value(v: &toml::Value) -> Option<u32> {
    v.as_integer().and_then(|n| u32::try_from(n).ok())
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
            local_group_name_clash = "rename"
            renamed_group_prefix = "nx_"
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
        assert_eq!(s.local_group_name_clash, LocalGroupNameClash::Rename);
        assert_eq!(s.renamed_group_prefix, "nx_");
        assert_eq!(s.local_passwd, Path::new("/tmp/passwd"));
        assert_eq!(s.local_group, Path::new("/tmp/group"));
        assert_eq!(s.max_shrink_percent, 10);
        assert_eq!(s.request_timeout_ms, 500);
        assert_eq!(s.search_cap, 100);
    }

    #[test]
    fn bad_values_name_the_file_and_key() {
        for (text, key) in [
            ("[unix.refresh]\nmin_uid = -1\n", "min_uid"),
            ("[unix.refresh]\nmin_ui = 5\n", "min_ui"),
            (
                "[unix.refresh]\nmissing_primary_group = \"maybe\"\n",
                "missing_primary_group",
            ),
            (
                "[unix.refresh]\nuse_entity_home = \"yes\"\n",
                "use_entity_home",
            ),
            ("[unix]\nrefresh = 5\n", "refresh"),
            ("[unix.refresh]\nsearch_cap = 0\n", "search_cap"),
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
            (
                "[unix.refresh]\nlocal_group_name_clash = \"serve\"\n",
                "local_group_name_clash",
            ),
            (
                "[unix.refresh]\nrenamed_group_prefix = \"\"\n",
                "renamed_group_prefix",
            ),
            (
                "[unix.refresh]\nrenamed_group_prefix = \"-x\"\n",
                "renamed_group_prefix",
            ),
            (
                "[unix.refresh]\nrenamed_group_prefix = \"a:b\"\n",
                "renamed_group_prefix",
            ),
            (
                "[unix.refresh]\nrenamed_group_prefix = \"a$\"\n",
                "renamed_group_prefix",
            ),
            (
                "[unix.refresh]\nrenamed_group_prefix = 5\n",
                "renamed_group_prefix",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
            let msg = e.to_string();
            assert!(msg.starts_with("/etc/netauth/config.toml: [unix"), "{msg}");
        }
    }

    /// Every `[unix.refresh]` key, as the parser knows them.
    const KEYS: &[&str] = &[
        "min_uid",
        "min_gid",
        "home_template",
        "use_entity_home",
        "default_shell",
        "shells_file",
        "missing_primary_group",
        "local_group_name_clash",
        "renamed_group_prefix",
        "local_passwd",
        "local_group",
        "max_shrink_percent",
        "request_timeout_ms",
        "search_cap",
    ];

    fn repository_file(path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The shipped example config lists every key of `[unix.refresh]`,
    /// commented out, with its real default: uncommented, it parses to
    /// exactly the defaults.
    #[test]
    fn the_example_config_shows_every_key_with_its_default() {
        let text = repository_file("packaging/common/config.toml");
        let start = text
            .find("\n[unix.refresh]\n")
            .expect("[unix.refresh] in the example");
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
        let refresh = doc["unix"]["refresh"].as_table().unwrap();
        let shown: Vec<&str> = refresh.keys().map(String::as_str).collect();
        let mut known = KEYS.to_vec();
        known.sort_unstable();
        let mut shown_sorted = shown.clone();
        shown_sorted.sort_unstable();
        assert_eq!(shown_sorted, known, "keys of the example's [unix.refresh]");
        let parsed = RefreshSettings::from_unix_table(doc.get("unix"), Path::new("example"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            RefreshSettings {
                cache_dir: PathBuf::from(DEFAULT_CACHE_DIR),
                ..parsed
            },
            RefreshSettings::default()
        );
        // Each key is accepted by the parser (none is a leftover).
        for key in KEYS {
            assert!(refresh.contains_key(*key), "{key}");
        }
    }

    /// The module documentation, the man page and the README name every key.
    #[test]
    fn every_key_is_documented() {
        let module_docs = repository_file("netauth-unix/src/refresh/mod.rs");
        let man = repository_file("packaging/common/netauth-unix.8");
        let readme = repository_file("README.md");
        for key in KEYS {
            assert!(
                module_docs.contains(&format!("`[unix.refresh] {key}`")),
                "{key} missing from the settings table of the refresh module docs"
            );
            assert!(readme.contains(key), "{key} missing from README.md");
        }
        for key in ["local_group_name_clash", "renamed_group_prefix"] {
            assert!(man.contains(key), "{key} missing from netauth-unix.8");
        }
    }
}

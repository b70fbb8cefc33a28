//! The refresh's settings, read from our own tables of NetAuth's config.toml.

use std::path::PathBuf;

use netauth_cache::clean;
use serde::Deserialize;

use super::InvalidSetting;

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

/// What to do with a NetAuth group whose name a local group already has
/// (its number being free). Either way the group's members are served, and
/// a user whose primary group it is keeps its number as gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocalGroupNameClash {
    /// Not served as a group: its gid has no name on this host, and it is
    /// left out of its members' supplementary groups.
    Omit,
    /// Served under `renamed_group_prefix` + its name, unless that name is
    /// unusable or taken by a local or NetAuth group (then omitted).
    Rename,
}

/// Settings of `netauth-unix refresh`: the `[unix.refresh]` table as
/// written (every key optional, defaults below). See the refresh module
/// documentation for the keys.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, expecting = "a table")]
pub struct RefreshSettings {
    /// `[unix] cache_dir` (not a key of this table): where the cache and
    /// the status file are written.
    #[serde(skip)]
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
    /// Where a published snapshot is fetched from instead of asking the
    /// server: `https://HOST/PATH/`, `http://...` or `file:///PATH/`
    /// (a folder: `snapshot.json` and `snapshot.json.sig` are read from it).
    pub source: Option<String>,
    /// The publisher's public key, `ed25519:BASE64` as `netauth-unix
    /// keygen` prints it; required with `source`.
    pub publisher_key: Option<String>,
    /// PEM file of the only certificates an `https` source is trusted
    /// with (as `tls.certificate` is for NetAuth); unset: the system's CA
    /// store.
    pub source_certificate: Option<PathBuf>,
    /// A snapshot generated longer ago than this (seconds) is refused.
    pub snapshot_max_age_s: u64,
    /// A snapshot larger than this (bytes) is refused unread.
    pub snapshot_max_bytes: u64,
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
            source: None,
            publisher_key: None,
            source_certificate: None,
            snapshot_max_age_s: 86_400,
            snapshot_max_bytes: 256 * 1024 * 1024,
        }
    }
}

impl RefreshSettings {
    /// Checks the values serde cannot: absolute paths, ranges, templates.
    /// The error names the dotted key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let err = |key: &str, problem: &str| {
            Err(InvalidSetting::new(format!("unix.refresh.{key}"), problem))
        };
        for (key, path) in [
            ("shells_file", &self.shells_file),
            ("local_passwd", &self.local_passwd),
            ("local_group", &self.local_group),
        ] {
            if !path.is_absolute() {
                return err(key, "must be an absolute path");
            }
        }
        if self.max_shrink_percent > 100 {
            return err("max_shrink_percent", "must be between 0 and 100");
        }
        if self.request_timeout_ms == 0 {
            return err(
                "request_timeout_ms",
                "must be a number of milliseconds above 0",
            );
        }
        if self.search_cap == 0 {
            return err("search_cap", "must be a number above 0");
        }
        let sample_home = self
            .home_template
            .replace("{name}", "x")
            .replace("{uid}", "1");
        if clean::usable_path(&sample_home).is_none() {
            return err(
                "home_template",
                "must give an absolute path without ':', control characters or '..' \
                 ({name} and {uid} are replaced)",
            );
        }
        // Checked as the start of a name (the rest is a group name that
        // passed the name rule): never empty, so a renamed name differs.
        if self.renamed_group_prefix.is_empty()
            || clean::check_name(&format!("{}x", self.renamed_group_prefix)).is_err()
        {
            return err(
                "renamed_group_prefix",
                "must be a non-empty start of a name: letters, digits, '.', '_' and '-', \
                 not starting with '.' or '-'",
            );
        }
        if clean::usable_path(&self.default_shell).is_none() {
            return err(
                "default_shell",
                "must be an absolute path without ':', control characters or '..'",
            );
        }
        self.validate_source()
    }

    /// Checks `source` and the keys that go with it.
    fn validate_source(&self) -> Result<(), InvalidSetting> {
        let err = |key: &str, problem: &str| {
            Err(InvalidSetting::new(format!("unix.refresh.{key}"), problem))
        };
        if let Some(path) = &self.source_certificate {
            if !path.is_absolute() {
                return err("source_certificate", "must be an absolute path");
            }
        }
        if self.snapshot_max_age_s == 0 {
            return err("snapshot_max_age_s", "must be a number of seconds above 0");
        }
        if self.snapshot_max_bytes == 0 {
            return err("snapshot_max_bytes", "must be a number of bytes above 0");
        }
        let Some(source) = &self.source else {
            return Ok(());
        };
        let usable = match source.split_once("://") {
            Some(("https" | "http", rest)) => {
                !rest.is_empty() && !rest.starts_with('/') && rest.ends_with('/')
            }
            Some(("file", rest)) => rest.starts_with('/') && rest.ends_with('/'),
            _ => false,
        };
        if !usable || source.chars().any(|c| c.is_control() || c == ' ') {
            return err(
                "source",
                "must be a folder URL ending in '/': https://HOST/PATH/, http://HOST/PATH/ \
                 or file:///PATH/",
            );
        }
        match &self.publisher_key {
            None => err(
                "source",
                "needs publisher_key (the key the snapshot must be signed with)",
            ),
            Some(k) if !k.starts_with("ed25519:") => err(
                "publisher_key",
                "must be ed25519:BASE64, as `netauth-unix keygen` prints it",
            ),
            Some(_) => Ok(()),
        }
    }

    /// The settings of `config` (validated when it was read).
    pub fn from_config(config: &super::Config) -> RefreshSettings {
        config.unix.refresh.clone()
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
    use crate::config::unix::UnixSection;
    use crate::Error;
    use std::path::Path;

    fn parse(text: &str) -> Result<RefreshSettings, Error> {
        UnixSection::from_toml_str(text, "/etc/netauth/config.toml").map(|u| u.refresh)
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
            source = "https://mirror.example/netauth/"
            publisher_key = "ed25519:AAAA"
            source_certificate = "/etc/netauth/mirror.pem"
            snapshot_max_age_s = 600
            snapshot_max_bytes = 1000
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
        assert_eq!(s.source.as_deref(), Some("https://mirror.example/netauth/"));
        assert_eq!(s.publisher_key.as_deref(), Some("ed25519:AAAA"));
        assert_eq!(
            s.source_certificate.as_deref(),
            Some(Path::new("/etc/netauth/mirror.pem"))
        );
        assert_eq!((s.snapshot_max_age_s, s.snapshot_max_bytes), (600, 1000));
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
            ("[unix.refresh]\nsource = \"ftp://x/\"\n", "source"),
            ("[unix.refresh]\nsource = \"https://x/snap\"\n", "source"),
            ("[unix.refresh]\nsource = \"file://rel/\"\n", "source"),
            ("[unix.refresh]\nsource = \"https://x/\"\n", "source"),
            (
                "[unix.refresh]\npublisher_key = \"abc\"\nsource = \"file:///s/\"\n",
                "publisher_key",
            ),
            (
                "[unix.refresh]\nsource_certificate = \"ca.pem\"\n",
                "source_certificate",
            ),
            (
                "[unix.refresh]\nsnapshot_max_age_s = 0\n",
                "snapshot_max_age_s",
            ),
            (
                "[unix.refresh]\nsnapshot_max_bytes = 0\n",
                "snapshot_max_bytes",
            ),
        ] {
            let e = parse(text).unwrap_err();
            let Error::Config {
                file,
                key: got,
                line,
                problem,
            } = &e
            else {
                panic!("{text}: {e:?}")
            };
            assert_eq!(file, Path::new("/etc/netauth/config.toml"));
            let table = if key == "refresh" || key == "cache_dir" {
                "unix"
            } else {
                "unix.refresh"
            };
            assert_eq!(
                got.as_deref(),
                Some(&*format!("{table}.{key}")),
                "{text}: {e}"
            );
            // The key is on the second line of every case.
            assert_eq!(*line, Some(2), "{text}: {e}");
            assert!(!problem.is_empty());
            let msg = e.to_string();
            assert!(
                msg.starts_with("config file /etc/netauth/config.toml, line 2, key unix"),
                "{msg}"
            );
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
        "source",
        "publisher_key",
        "source_certificate",
        "snapshot_max_age_s",
        "snapshot_max_bytes",
    ];

    fn repository_file(path: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The list above is the parser's own (a key added to the struct must
    /// be documented, and shown in the example: see `config::example`).
    #[test]
    fn the_key_list_is_the_parsers() {
        let mut known = crate::config::known_keys::<RefreshSettings>();
        known.sort_unstable();
        let mut listed: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
        listed.sort_unstable();
        assert_eq!(known, listed);
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

//! NetAuth's `config.toml`, shared with NetAuth's own tools.
//!
//! | key | default |
//! |---|---|
//! | `core.server` | required |
//! | `core.port` | 1729 |
//! | `core.master` | `core.server` |
//! | `tls.certificate` | `keys/tls.pem`, relative to the config file's folder |
//! | `tls.pwn_me` | false (true = plain text, no TLS) |
//! | `client.ID` | the host name |
//! | `token.cache` | `fs` (or `memory`) |
//! | `unix.connect_timeout_ms` | 2000 |
//! | `unix.request_timeout_ms` | 5000 |
//! | `unix.status_max_age_s` | 3600 |
//!
//! The file is read one way: serde structs for every table we read, then
//! one validation step, and one error type ([`Error::Config`]) naming the
//! file, the dotted key and the line. NetAuth's tables keep NetAuth's
//! semantics (unknown keys are ignored, `core.port` may be a string), and
//! other tools' tables are ignored, as NetAuth's tools do: they share the
//! file. Everything under `[unix]` is ours and strict (see [`unix`]): an
//! unknown key or table there, in any case, is an error.
//! [`Config::load_checked`] also reports what is legal but likely a mistake
//! ([`ConfigWarning`]).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use toml::de::DeTable;
use toml::Value;

use crate::error::{config_message, Error, Result};
use netauth_cache::trusted::{read_trusted, TrustRule};

mod locate;
pub mod pam;
pub mod refresh;
pub mod ssh;
pub mod unix;

use unix::UnixSection;

/// Where NetAuth's tools look for their configuration.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/netauth/config.toml";
/// NetAuth's port.
pub const DEFAULT_PORT: u16 = 1729;
/// Default of `unix.connect_timeout_ms`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);
/// Default of `unix.request_timeout_ms`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_millis(5000);
/// Default of `tls.certificate`.
pub const DEFAULT_CERTIFICATE: &str = "keys/tls.pem";

/// Which token cache `token.cache` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenCacheKind {
    /// `<temp dir>/<entity>.nt`, shared with NetAuth's tools.
    #[default]
    Fs,
    /// Process memory only.
    Memory,
}

/// The settings the client needs, plus the whole parsed document.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file these settings came from, if any.
    pub file: Option<PathBuf>,
    /// `core.server`: where reads go.
    pub server: String,
    /// `core.port`.
    pub port: u16,
    /// `core.master` as configured; see [`Config::master`] for the effective value.
    pub master: Option<String>,
    /// `tls.certificate`, already resolved against the config file's folder.
    pub certificate: PathBuf,
    /// `tls.pwn_me`: plain text when true.
    pub pwn_me: bool,
    /// `client.ID` as configured; see [`Config::client_id`].
    pub client_id: Option<String>,
    /// `token.cache`.
    pub token_cache: TokenCacheKind,
    /// `unix.connect_timeout_ms`.
    pub connect_timeout: Duration,
    /// `unix.request_timeout_ms`.
    pub request_timeout: Duration,
    /// Our `[unix]` tables, validated.
    pub unix: UnixSection,
}

impl Config {
    /// Settings for `server` with every default and no file behind them.
    pub fn new(server: impl Into<String>) -> Config {
        Config {
            file: None,
            server: server.into(),
            port: DEFAULT_PORT,
            master: None,
            certificate: PathBuf::from(DEFAULT_CERTIFICATE),
            pwn_me: false,
            client_id: None,
            token_cache: TokenCacheKind::default(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            unix: UnixSection::default(),
        }
    }

    /// Reads and parses a config file. It must be a trusted file
    /// ([`TrustRule::CONFIG`]: a regular file of at most 1 MiB, owned by
    /// root, in a root-owned folder, neither writable by group or others):
    /// whoever can change it chooses the server PAM believes.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        Config::from_toml_str(&read_text(path)?, path)
    }

    /// [`Config::load`], plus what is legal but likely a mistake: a
    /// top-level table named like ours (`[unix_pam]`, `[Unix]`: not read),
    /// a `[unix.pam.service.NAME]` table for which `pam_dir` (normally
    /// `/etc/pam.d`) holds no file `NAME`.
    pub fn load_checked(
        path: impl AsRef<Path>,
        pam_dir: &Path,
    ) -> Result<(Config, Vec<ConfigWarning>)> {
        let path = path.as_ref();
        let text = read_text(path)?;
        let config = Config::from_toml_str(&text, path)?;
        let warnings = config.warnings(&text, pam_dir);
        Ok((config, warnings))
    }

    /// Parses config text; `path` names the file in errors and anchors a
    /// relative `tls.certificate`.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let (document, root): (Document, _) = deserialize(text, path)?;
        let unix = validated(document.unix, text, &root, path)?;
        let at = |key: &str| locate::line_of_key(text, &root, key);
        let problem = |key: &str, problem: String| Error::Config {
            file: path.to_owned(),
            key: Some(key.to_owned()),
            line: at(key),
            problem,
        };

        let server = document
            .core
            .server
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                problem(
                    "core.server",
                    "missing: the NetAuth server to use".to_owned(),
                )
            })?;
        let master = document.core.master.filter(|s| !s.trim().is_empty());
        let certificate = {
            let raw = document
                .tls
                .certificate
                .unwrap_or_else(|| DEFAULT_CERTIFICATE.to_owned());
            resolve_relative(path, Path::new(&raw))
        };
        let token_cache = match document.token.cache.as_deref() {
            None | Some("fs") => TokenCacheKind::Fs,
            Some("memory") => TokenCacheKind::Memory,
            Some(other) => {
                return Err(problem(
                    "token.cache",
                    format!("unknown token cache {other:?} (use \"fs\" or \"memory\")"),
                ))
            }
        };

        Ok(Config {
            file: Some(path.to_owned()),
            server,
            port: document.core.port.unwrap_or(DEFAULT_PORT),
            master,
            certificate,
            pwn_me: document.tls.pwn_me.unwrap_or(false),
            client_id: document.client.id.filter(|s| !s.is_empty()),
            token_cache,
            connect_timeout: unix.connect_timeout(),
            request_timeout: unix.request_timeout(),
            unix,
        })
    }

    /// What [`Config::load_checked`] warns about, for the text this was
    /// parsed from.
    fn warnings(&self, text: &str, pam_dir: &Path) -> Vec<ConfigWarning> {
        let Ok(root) = DeTable::parse(text) else {
            return Vec::new();
        };
        let root = root.into_inner();
        let file = self.file.clone().unwrap_or_default();
        let warning = |key: String, problem: String| ConfigWarning {
            file: file.clone(),
            line: locate::line_of_key(text, &root, &key),
            key,
            problem,
        };
        let mut warnings = Vec::new();
        for (key, _) in root.iter() {
            if unix::looks_like_ours(key.get_ref()) {
                warnings.push(warning(
                    locate::key_segment(key.get_ref()),
                    "looks like one of our tables, but only [unix] and the tables under it \
                     are read (names are case-sensitive): everything in it is ignored"
                        .to_owned(),
                ));
            }
        }
        for name in self.unix.pam.service.keys() {
            let plain = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
            if !plain || !pam_dir.join(name).exists() {
                warnings.push(warning(
                    format!("unix.pam.service.{}", locate::key_segment(name)),
                    format!(
                        "no PAM service {name:?}: {} has no such file, so this table \
                         applies to nothing (a misspelt service keeps the host-wide \
                         allow_groups)",
                        pam_dir.display()
                    ),
                ));
            }
        }
        warnings
    }

    /// The server writes go to: `core.master`, or `core.server` when unset.
    pub fn master(&self) -> &str {
        self.master.as_deref().unwrap_or(&self.server)
    }

    /// The `client-name` to send: `client.ID`, or this machine's host name.
    pub fn client_id(&self) -> String {
        match &self.client_id {
            Some(id) => id.clone(),
            None => host_name(),
        }
    }
}

/// A setting that parsed but cannot be used: its dotted key and why. The
/// loader turns it into [`Error::Config`] with the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// Dotted, e.g. `unix.refresh.min_uid`.
    pub key: String,
    pub problem: String,
}

impl InvalidSetting {
    pub fn new(key: impl Into<String>, problem: impl Into<String>) -> InvalidSetting {
        InvalidSetting {
            key: key.into(),
            problem: problem.into(),
        }
    }
}

/// Something legal in the file that is likely a mistake (see
/// [`Config::load_checked`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    /// Dotted.
    pub key: String,
    pub line: Option<usize>,
    pub problem: String,
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&config_message(
            &self.file,
            Some(&self.key),
            self.line,
            &self.problem,
        ))
    }
}

/// The whole file as serde sees it. Not `deny_unknown_fields`: other tools'
/// tables are none of our business.
#[derive(Default, Deserialize)]
#[serde(default)]
struct Document {
    core: CoreTable,
    tls: TlsTable,
    client: ClientTable,
    token: TokenTable,
    unix: UnixSection,
}

// NetAuth's tables: NetAuth's semantics, so unknown keys are allowed.

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a table")]
struct CoreTable {
    server: Option<String>,
    #[serde(deserialize_with = "port")]
    port: Option<u16>,
    master: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a table")]
struct TlsTable {
    certificate: Option<String>,
    #[serde(deserialize_with = "true_or_false")]
    pwn_me: Option<bool>,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a table")]
struct ClientTable {
    #[serde(rename = "ID")]
    id: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default, expecting = "a table")]
struct TokenTable {
    cache: Option<String>,
}

/// A port as NetAuth reads it: a number, or a string holding one.
fn port<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u16>, D::Error> {
    let n = match Value::deserialize(d)? {
        Value::Integer(n) => Some(n),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.and_then(|n| u16::try_from(n).ok())
        .filter(|p| *p != 0)
        .map(Some)
        .ok_or_else(|| D::Error::custom("must be a port number 1-65535"))
}

fn true_or_false<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Boolean(b) => Ok(Some(b)),
        _ => Err(D::Error::custom("must be true or false")),
    }
}

/// Parses `text` as TOML and deserializes `T` from it. Errors name the
/// file, and the key and line where there are some.
fn deserialize<'t, T: DeserializeOwned>(text: &'t str, file: &Path) -> Result<(T, DeTable<'t>)> {
    let root = DeTable::parse(text).map_err(|e| Error::Config {
        file: file.to_owned(),
        key: None,
        line: e.span().map(|span| locate::line_of(text, span.start)),
        problem: format!("not valid TOML: {}", e.message().trim_end()),
    })?;
    let value = T::deserialize(toml::de::Deserializer::from(root.clone()))
        .map_err(|e| locate::from_serde(file, text, root.get_ref(), &e))?;
    Ok((value, root.into_inner()))
}

/// Our tables through the one validation step; errors get the key's line.
fn validated(
    unix: UnixSection,
    text: &str,
    root: &DeTable<'_>,
    file: &Path,
) -> Result<UnixSection> {
    unix.validated()
        .map_err(|invalid| locate::from_invalid(file, text, root, invalid))
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = read_trusted(path, &TrustRule::CONFIG).map_err(|e| {
        let problem = if e.is_untrusted() {
            format!("not trusted: {}", e.describe_for(path))
        } else {
            format!("cannot read the file: {}", e.describe_for(path))
        };
        Error::config(path, None, problem)
    })?;
    String::from_utf8(bytes).map_err(|_| Error::config(path, None, "not valid UTF-8 text"))
}

impl UnixSection {
    /// Reads and validates only the `[unix]` tables of config text, other
    /// tables ignored; errors name `path`, the key and the line.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<UnixSection> {
        #[derive(Deserialize)]
        struct UnixOnly {
            #[serde(default)]
            unix: UnixSection,
        }
        let path = path.as_ref();
        let (only, root): (UnixOnly, _) = deserialize(text, path)?;
        validated(only.unix, text, &root, path)
    }
}

/// The keys `T` knows, from serde's own list (in its unknown-key error).
#[cfg(test)]
pub(crate) fn known_keys<T: DeserializeOwned>() -> Vec<String> {
    let error = toml::from_str::<T>("no_such_key_at_all = 1")
        .err()
        .expect("an unknown key is refused");
    let message = error.message().to_owned();
    let expected = message
        .split_once("expected ")
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn resolve_relative(config_file: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        return target.to_owned();
    }
    let folder = config_file.parent().unwrap_or(Path::new(""));
    let joined = folder.join(target);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// This machine's host name, as NetAuth's clients send it by default.
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the pointer and length describe `buf`, which outlives the call;
    // gethostname writes at most `len` bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_owned();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).into_owned();
    if name.is_empty() {
        "localhost".to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod example;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::from_toml_str(text, "/etc/netauth/config.toml")
    }

    #[test]
    fn minimal_file_takes_every_default() {
        let c = parse("[core]\nserver = \"netauth.example.com\"\n").unwrap();
        assert_eq!(c.server, "netauth.example.com");
        assert_eq!(c.port, 1729);
        assert_eq!(c.master(), "netauth.example.com");
        assert_eq!(c.certificate, PathBuf::from("/etc/netauth/keys/tls.pem"));
        assert!(!c.pwn_me);
        assert_eq!(c.client_id(), host_name());
        assert_eq!(c.token_cache, TokenCacheKind::Fs);
        assert_eq!(c.connect_timeout, Duration::from_millis(2000));
        assert_eq!(c.request_timeout, Duration::from_millis(5000));
        assert_eq!(c.unix.status_max_age(), Duration::from_secs(3600));
        assert_eq!(
            c.file.as_deref(),
            Some(Path::new("/etc/netauth/config.toml"))
        );
    }

    #[test]
    fn every_key_is_read_and_unknown_ones_are_ignored() {
        let c = parse(
            r#"
            [core]
            server = "replica.example.com"
            port = 8443
            master = "master.example.com"
            conf = "/etc/netauth"        # unknown key
            [tls]
            certificate = "/srv/ca.pem"
            pwn_me = true
            Certificate = 3              # unknown key (NetAuth's table)
            [client]
            ID = "web01"
            [token]
            cache = "memory"
            [unix]
            connect_timeout_ms = 150
            request_timeout_ms = 900
            [unix.pam]
            allow_groups = ["staff"]
            [somebody.else]
            x = [1, 2]
            "#,
        )
        .unwrap();
        assert_eq!(c.server, "replica.example.com");
        assert_eq!(c.port, 8443);
        assert_eq!(c.master(), "master.example.com");
        assert_eq!(c.certificate, PathBuf::from("/srv/ca.pem"));
        assert!(c.pwn_me);
        assert_eq!(c.client_id(), "web01");
        assert_eq!(c.token_cache, TokenCacheKind::Memory);
        assert_eq!(c.connect_timeout, Duration::from_millis(150));
        assert_eq!(c.request_timeout, Duration::from_millis(900));
        assert_eq!(c.unix.pam.allow_groups, Some(vec!["staff".to_owned()]));
    }

    #[test]
    fn relative_certificate_is_relative_to_the_config_folder() {
        let c = Config::from_toml_str(
            "[core]\nserver=\"s\"\n[tls]\ncertificate=\"certs/server.pem\"\n",
            "/opt/na/conf/config.toml",
        )
        .unwrap();
        assert_eq!(
            c.certificate,
            PathBuf::from("/opt/na/conf/certs/server.pem")
        );
    }

    #[test]
    fn our_tables_are_read_into_the_config() {
        let c = parse(
            "[core]\nserver=\"s\"\n[unix]\ncache_dir = \"/srv/c\"\n[unix.refresh]\nmin_uid = 5000\n\
             [unix.pam]\noffline_max_age_s = 60\n[unix.pam.service.sshd]\nallow_groups = []\n",
        )
        .unwrap();
        assert_eq!(c.unix.cache_dir(), Path::new("/srv/c"));
        // The refresh's folder is [unix] cache_dir.
        assert_eq!(c.unix.refresh.cache_dir, Path::new("/srv/c"));
        assert_eq!(c.unix.refresh.min_uid, 5000);
        let pam = pam::PamSettings::from_config(&c);
        assert_eq!(pam.offline_max_age, Duration::from_secs(60));
        assert!(pam.admits("sshd", &[]));
        let defaults = parse("[core]\nserver=\"s\"\n").unwrap();
        assert_eq!(defaults.unix, Config::new("s").unix);
        assert_eq!(
            refresh::RefreshSettings::from_config(&defaults),
            refresh::RefreshSettings::default()
        );
        assert_eq!(
            pam::PamSettings::from_config(&defaults),
            pam::PamSettings::default()
        );
    }

    /// Anything under [unix] we do not know, in any case and however it is
    /// written (table header, dotted key, inline table), is an error naming
    /// the file, the key and its line: a misspelt table holding
    /// allow_groups must not leave the host open.
    #[test]
    fn unknown_keys_and_tables_under_unix_fail_closed() {
        let head = "[core]\nserver = \"s\"\n";
        for (body, key, line) in [
            ("[unix.Pam]\nallow_groups = [\"admins\"]\n", "unix.Pam", 3),
            ("[unix.PAM]\nallow_groups = [\"admins\"]\n", "unix.PAM", 3),
            ("[unix.refesh]\nmin_uid = 5\n", "unix.refesh", 3),
            (
                "[unix]\nconect_timeout_ms = 5\n",
                "unix.conect_timeout_ms",
                4,
            ),
            (
                "[unix]\nConnect_Timeout_Ms = 5\n",
                "unix.Connect_Timeout_Ms",
                4,
            ),
            (
                "[unix.pam]\nAllow_groups = [\"a\"]\n",
                "unix.pam.Allow_groups",
                4,
            ),
            (
                "[unix.pam.Service.sshd]\nallow_groups = [\"a\"]\n",
                "unix.pam.Service",
                3,
            ),
            (
                "[unix.pam.service.sshd]\nallowgroups = [\"a\"]\n",
                "unix.pam.service.sshd.allowgroups",
                4,
            ),
            ("[unix.refresh]\nMIN_UID = 5\n", "unix.refresh.MIN_UID", 4),
            (
                "[unix]\npam = { Allow_groups = [] }\n",
                "unix.pam.Allow_groups",
                4,
            ),
            ("[unix]\nPam.allow_groups = [\"a\"]\n", "unix.Pam", 4),
            ("[unix.nss]\n", "unix.nss", 3),
        ] {
            let text = format!("{head}{body}");
            match parse(&text) {
                Err(Error::Config {
                    file,
                    key: Some(got),
                    line: got_line,
                    problem,
                }) => {
                    assert_eq!(file, Path::new("/etc/netauth/config.toml"));
                    assert_eq!(got, key, "{body}: {problem}");
                    assert_eq!(got_line, Some(line), "{body}: {problem}");
                    let last = key.rsplit('.').next().unwrap();
                    assert!(
                        problem.contains(&format!("unknown key `{last}`")),
                        "{body}: {problem}"
                    );
                }
                other => panic!("{body}: expected a config error, got {other:?}"),
            }
        }
        // A case-only slip gets the right name suggested.
        let e = parse(&format!("{head}[unix.Pam]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `pam`?"), "{e}");
        assert!(
            e.starts_with("config file /etc/netauth/config.toml, line 3, key unix.Pam: "),
            "{e}"
        );
    }

    #[test]
    fn our_tables_must_be_tables() {
        for (text, key) in [
            ("unix = 5\n", "unix"),
            ("[unix]\npam = 3\n", "unix.pam"),
            ("[unix]\nrefresh = \"x\"\n", "unix.refresh"),
            ("[unix.pam]\nservice = 1\n", "unix.pam.service"),
            ("[unix.pam.service]\nsshd = []\n", "unix.pam.service.sshd"),
        ] {
            let text = format!("{text}[core]\nserver = \"s\"\n");
            assert_config_error(parse(&text), Some(key), "table");
        }
    }

    /// Other tools' tables (and look-alikes of ours, which only
    /// `load_checked` warns about) are none of our business.
    #[test]
    fn other_top_level_tables_are_allowed() {
        let c = parse(
            "[core]\nserver=\"s\"\n[netkeys]\nx = 1\n[unix_pam]\nallow_groups = [\"a\"]\n\
             [Unix]\nx = 2\n",
        )
        .unwrap();
        assert_eq!(c.unix, UnixSection::default());
    }

    #[test]
    fn load_checked_warns_of_look_alike_tables_and_unknown_pam_services() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let pam_d = dir.path().join("pam.d");
        std::fs::create_dir(&pam_d).unwrap();
        std::fs::write(pam_d.join("sshd"), "").unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[core]\nserver = \"s\"\n\n[unix_pam]\nallow_groups = [\"a\"]\n[Unix]\n[UNIX.pam]\n\
             [unix-refresh]\n[unixish]\n[netkeys]\n[\"unix.pam\"]\n\
             [unix.pam.service.sshd]\n[unix.pam.service.shd]\nallow_groups = []\n\
             [unix.pam.service.\"../sshd\"]\n",
        )
        .unwrap();
        let (config, warnings) = Config::load_checked(&path, &pam_d).unwrap();
        assert_eq!(config.server, "s");
        let got: Vec<(String, Option<usize>)> =
            warnings.iter().map(|w| (w.key.clone(), w.line)).collect();
        let mut expected = vec![
            ("unix_pam".to_owned(), Some(4)),
            ("Unix".to_owned(), Some(6)),
            ("UNIX".to_owned(), Some(7)),
            ("unix-refresh".to_owned(), Some(8)),
            ("unixish".to_owned(), Some(9)),
            ("\"unix.pam\"".to_owned(), Some(11)),
            ("unix.pam.service.shd".to_owned(), Some(13)),
            ("unix.pam.service.\"../sshd\"".to_owned(), Some(15)),
        ];
        let mut got_sorted = got.clone();
        got_sorted.sort();
        expected.sort();
        assert_eq!(got_sorted, expected, "{warnings:#?}");
        let text = warnings
            .iter()
            .find(|w| w.key == "unix.pam.service.shd")
            .unwrap()
            .to_string();
        assert!(
            text.starts_with(&format!(
                "config file {}, line 13, key unix.pam.service.shd: no PAM service \"shd\"",
                path.display()
            )),
            "{text}"
        );
        let text = warnings
            .iter()
            .find(|w| w.key == "Unix")
            .unwrap()
            .to_string();
        assert!(text.contains("only [unix]"), "{text}");
    }

    fn assert_config_error(result: Result<Config>, key: Option<&str>, needle: &str) {
        match result {
            Err(Error::Config {
                file,
                key: got_key,
                problem,
                ..
            }) => {
                assert_eq!(file, PathBuf::from("/etc/netauth/config.toml"));
                assert_eq!(got_key.as_deref(), key, "{problem}");
                assert!(problem.contains(needle), "{problem}");
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn missing_file_names_the_file() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let e = Config::load(&path).unwrap_err();
        match &e {
            Error::Config { file, key, .. } => {
                assert_eq!(file, &path);
                assert_eq!(key, &None);
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("cannot read the file"), "{e}");
    }

    /// Whoever can write the config chooses the server (and `pwn_me`): a
    /// file or folder others can write, or a file of another user, is
    /// refused naming the file and the reason; so are FIFOs, devices and
    /// files past the 1 MiB cap, without blocking or filling memory.
    #[test]
    fn untrusted_config_files_are_refused_naming_file_and_reason() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let good = "[core]\nserver = \"netauth.example.com\"\n";
        std::fs::write(&path, good).unwrap();
        let chmod = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        chmod(&path, 0o644);
        assert_eq!(Config::load(&path).unwrap().server, "netauth.example.com");
        let refused = |path: &Path, needle: &str| {
            let e = Config::load(path).unwrap_err();
            assert!(e.is_config(), "{e:?}");
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(needle), "{needle}: {text}");
        };

        chmod(&path, 0o666);
        refused(
            &path,
            "not trusted: writable by group or others (mode 0666)",
        );
        chmod(&path, 0o644);
        chmod(dir.path(), 0o777);
        refused(&path, "folder writable by group or others (mode 0777)");
        chmod(dir.path(), 0o700);
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&path, Some(1000), None).unwrap();
            refused(&path, "owned by uid 1000; only root may own it");
            std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        }
        let fifo = dir.path().join("fifo.toml");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        refused(&fifo, "not a regular file (a FIFO)");
        refused(
            Path::new("/dev/zero"),
            "not a regular file (a character device)",
        );
        let big = dir.path().join("big.toml");
        std::fs::write(&big, good).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(2 << 20)
            .unwrap();
        refused(&big, "more than the limit of 1048576");
    }

    #[test]
    fn bad_toml_names_the_line() {
        let e = parse("[core]\nserver = \"s\"\nport = = 3\n").unwrap_err();
        match &e {
            Error::Config { line, problem, .. } => {
                assert_eq!(*line, Some(3), "{problem}");
                assert!(problem.contains("not valid TOML"));
            }
            other => panic!("{other:?}"),
        }
        assert!(e.to_string().contains("line 3"), "{e}");
    }

    #[test]
    fn each_bad_value_names_its_key() {
        assert_config_error(parse(""), Some("core.server"), "missing");
        assert_config_error(
            parse("[core]\nport = 1729\n"),
            Some("core.server"),
            "missing",
        );
        assert_config_error(
            parse("[core]\nserver = \"  \"\n"),
            Some("core.server"),
            "missing",
        );
        assert_config_error(parse("[core]\nserver = 7\n"), Some("core.server"), "string");
        assert_config_error(parse("core = 5\n"), Some("core"), "table");
        assert_config_error(
            parse("[core]\nserver=\"s\"\nport = 0\n"),
            Some("core.port"),
            "port",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\nport = 70000\n"),
            Some("core.port"),
            "port",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\nport = true\n"),
            Some("core.port"),
            "port",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\nmaster = 1\n"),
            Some("core.master"),
            "string",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[tls]\ncertificate = []\n"),
            Some("tls.certificate"),
            "string",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[tls]\npwn_me = \"yes\"\n"),
            Some("tls.pwn_me"),
            "true or false",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[client]\nID = 3\n"),
            Some("client.ID"),
            "string",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[token]\ncache = \"redis\"\n"),
            Some("token.cache"),
            "redis",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[unix]\nconnect_timeout_ms = 0\n"),
            Some("unix.connect_timeout_ms"),
            "positive",
        );
        assert_config_error(
            parse("[core]\nserver=\"s\"\n[unix]\nrequest_timeout_ms = -5\n"),
            Some("unix.request_timeout_ms"),
            "positive",
        );
    }

    #[test]
    fn bad_values_name_their_line() {
        for (text, key, line) in [
            ("[core]\nserver=\"s\"\nport = 0\n", "core.port", 3),
            (
                "[core]\nserver=\"s\"\n\n[tls]\npwn_me = 1\n",
                "tls.pwn_me",
                5,
            ),
            (
                "[core]\nserver=\"s\"\n[token]\ncache = \"x\"\n",
                "token.cache",
                4,
            ),
            ("[core]\nserver=\" \"\n", "core.server", 2),
            (
                "[core]\nserver=\"s\"\n[unix]\nstatus_max_age_s = 0\n",
                "unix.status_max_age_s",
                4,
            ),
            (
                "[core]\nserver=\"s\"\n[unix]\nconnect_timeout_ms = 0\n",
                "unix.connect_timeout_ms",
                4,
            ),
            (
                "[core]\nserver=\"s\"\n[unix.refresh]\nmin_uid = -1\n",
                "unix.refresh.min_uid",
                4,
            ),
            (
                "[core]\nserver=\"s\"\n[unix.refresh]\n\nhome_template = \"x\"\n",
                "unix.refresh.home_template",
                5,
            ),
            (
                "[core]\nserver=\"s\"\n[unix.pam.service.\"a.b\"]\nallow_groups = [\"\"]\n",
                "unix.pam.service.\"a.b\".allow_groups",
                4,
            ),
        ] {
            match parse(text) {
                Err(Error::Config {
                    key: Some(got),
                    line: got_line,
                    problem,
                    ..
                }) => {
                    assert_eq!(got, key, "{text}: {problem}");
                    assert_eq!(got_line, Some(line), "{text}: {problem}");
                }
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn port_may_be_a_numeric_string() {
        let c = parse("[core]\nserver=\"s\"\nport = \"1730\"\n").unwrap();
        assert_eq!(c.port, 1730);
    }

    #[test]
    fn host_name_is_not_empty() {
        assert!(!host_name().is_empty());
    }
}

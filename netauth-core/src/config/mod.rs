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
//!
//! Unknown tables and keys are ignored (as NetAuth's tools do); the parsed
//! document is kept so that each module can read its own table with
//! [`Config::section`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use toml::{Table, Value};

use crate::error::{Error, Result};
use netauth_cache::trusted::{read_trusted, TrustRule};

pub mod pam;
pub mod refresh;
pub mod ssh;

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
    document: Table,
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
            document: Table::new(),
        }
    }

    /// Reads and parses a config file. It must be a trusted file
    /// ([`TrustRule::CONFIG`]: a regular file of at most 1 MiB, owned by
    /// root, in a root-owned folder, neither writable by group or others):
    /// whoever can change it chooses the server PAM believes.
    pub fn load(path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let bytes = read_trusted(path, &TrustRule::CONFIG).map_err(|e| {
            let problem = if e.is_untrusted() {
                format!("not trusted: {}", e.describe_for(path))
            } else {
                format!("cannot read the file: {}", e.describe_for(path))
            };
            Error::config(path, None, problem)
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::config(path, None, "not valid UTF-8 text"))?;
        Config::from_toml_str(&text, path)
    }

    /// Parses config text; `path` names the file in errors and anchors a
    /// relative `tls.certificate`.
    pub fn from_toml_str(text: &str, path: impl AsRef<Path>) -> Result<Config> {
        let path = path.as_ref();
        let document: Table = text.parse().map_err(|e: toml::de::Error| Error::Config {
            file: path.to_owned(),
            key: None,
            line: e.span().map(|span| line_of(text, span.start)),
            problem: format!("not valid TOML: {}", e.message().trim_end()),
        })?;
        let reader = Reader {
            file: path,
            document: &document,
        };

        let server = reader
            .string("core.server")?
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                Error::config(
                    path,
                    Some("core.server"),
                    "missing: the NetAuth server to use",
                )
            })?;
        let port = match reader.get("core.port")? {
            None => DEFAULT_PORT,
            Some(value) => port_from(value).ok_or_else(|| {
                Error::config(path, Some("core.port"), "must be a port number 1-65535")
            })?,
        };
        let master = reader
            .string("core.master")?
            .filter(|s| !s.trim().is_empty());
        let certificate = {
            let raw = reader
                .string("tls.certificate")?
                .unwrap_or_else(|| DEFAULT_CERTIFICATE.to_owned());
            resolve_relative(path, Path::new(&raw))
        };
        let pwn_me = reader.bool("tls.pwn_me")?.unwrap_or(false);
        let client_id = reader.string("client.ID")?.filter(|s| !s.is_empty());
        let token_cache = match reader.string("token.cache")?.as_deref() {
            None | Some("fs") => TokenCacheKind::Fs,
            Some("memory") => TokenCacheKind::Memory,
            Some(other) => {
                return Err(Error::config(
                    path,
                    Some("token.cache"),
                    format!("unknown token cache {other:?} (use \"fs\" or \"memory\")"),
                ))
            }
        };
        let connect_timeout = reader
            .millis("unix.connect_timeout_ms")?
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let request_timeout = reader
            .millis("unix.request_timeout_ms")?
            .unwrap_or(DEFAULT_REQUEST_TIMEOUT);

        Ok(Config {
            file: Some(path.to_owned()),
            server,
            port,
            master,
            certificate,
            pwn_me,
            client_id,
            token_cache,
            connect_timeout,
            request_timeout,
            document,
        })
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

    /// The whole parsed document (empty when there was no file).
    pub fn document(&self) -> &Table {
        &self.document
    }

    /// Deserializes the table at `dotted_path` (e.g. `"unix.pam"`) into `T`;
    /// a missing table gives `T::default()`. Errors name the file and path.
    pub fn section<T: DeserializeOwned + Default>(&self, dotted_path: &str) -> Result<T> {
        let file = self.file.clone().unwrap_or_default();
        let mut table = &self.document;
        for part in dotted_path.split('.') {
            match table.get(part) {
                None => return Ok(T::default()),
                Some(Value::Table(inner)) => table = inner,
                Some(_) => {
                    return Err(Error::config(file, Some(dotted_path), "must be a table"));
                }
            }
        }
        Value::Table(table.clone())
            .try_into()
            .map_err(|e: toml::de::Error| {
                Error::config(file, Some(dotted_path), e.message().trim_end().to_owned())
            })
    }
}

/// 1-based line of byte offset `at` in `text`.
fn line_of(text: &str, at: usize) -> usize {
    let end = at.min(text.len());
    text.as_bytes()
        .get(..end)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
        + 1
}

fn port_from(value: &Value) -> Option<u16> {
    let n = match value {
        Value::Integer(n) => *n,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    u16::try_from(n).ok().filter(|p| *p != 0)
}

fn resolve_relative(config_file: &Path, target: &Path) -> PathBuf {
    if target.is_absolute() {
        return target.to_owned();
    }
    let folder = config_file.parent().unwrap_or(Path::new(""));
    let joined = folder.join(target);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// Typed access to dotted keys of the document, with errors naming the key.
struct Reader<'a> {
    file: &'a Path,
    document: &'a Table,
}

impl Reader<'_> {
    fn get(&self, dotted: &str) -> Result<Option<&Value>> {
        let mut table = self.document;
        let mut parts = dotted.split('.').peekable();
        let mut walked = String::new();
        while let Some(part) = parts.next() {
            if !walked.is_empty() {
                walked.push('.');
            }
            walked.push_str(part);
            let Some(value) = table.get(part) else {
                return Ok(None);
            };
            if parts.peek().is_none() {
                return Ok(Some(value));
            }
            match value {
                Value::Table(inner) => table = inner,
                _ => return Err(Error::config(self.file, Some(&walked), "must be a table")),
            }
        }
        Ok(None)
    }

    fn string(&self, dotted: &str) -> Result<Option<String>> {
        match self.get(dotted)? {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::config(self.file, Some(dotted), "must be a string")),
        }
    }

    fn bool(&self, dotted: &str) -> Result<Option<bool>> {
        match self.get(dotted)? {
            None => Ok(None),
            Some(Value::Boolean(b)) => Ok(Some(*b)),
            Some(_) => Err(Error::config(
                self.file,
                Some(dotted),
                "must be true or false",
            )),
        }
    }

    fn millis(&self, dotted: &str) -> Result<Option<Duration>> {
        match self.get(dotted)? {
            None => Ok(None),
            Some(Value::Integer(n)) if *n > 0 => Ok(Some(Duration::from_millis(n.unsigned_abs()))),
            Some(_) => Err(Error::config(
                self.file,
                Some(dotted),
                "must be a positive number of milliseconds",
            )),
        }
    }
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
            [client]
            ID = "web01"
            [token]
            cache = "memory"
            [unix]
            connect_timeout_ms = 150
            request_timeout_ms = 900
            [unix.pam]
            minimum_uid = 1000
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

    #[derive(Debug, Default, serde::Deserialize, PartialEq)]
    #[serde(default)]
    struct PamSettings {
        minimum_uid: u32,
        service: String,
    }

    #[test]
    fn sections_deserialize_or_default() {
        let c = parse("[core]\nserver=\"s\"\n[unix.pam]\nminimum_uid = 1000\nextra = 1\n").unwrap();
        let pam: PamSettings = c.section("unix.pam").unwrap();
        assert_eq!(
            pam,
            PamSettings {
                minimum_uid: 1000,
                service: String::new()
            }
        );
        let absent: PamSettings = c.section("unix.nss").unwrap();
        assert_eq!(absent, PamSettings::default());
        let absent: PamSettings = c.section("nothing.here.at.all").unwrap();
        assert_eq!(absent, PamSettings::default());

        let bad = parse("[core]\nserver=\"s\"\n[unix.pam]\nminimum_uid = \"lots\"\n").unwrap();
        let e = bad.section::<PamSettings>("unix.pam").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/etc/netauth/config.toml"), "{text}");
        assert!(text.contains("unix.pam"), "{text}");

        let not_table = parse("[core]\nserver=\"s\"\n[unix]\npam = 3\n").unwrap();
        let e = not_table.section::<PamSettings>("unix.pam").unwrap_err();
        assert!(e.to_string().contains("must be a table"), "{e}");
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
    fn port_may_be_a_numeric_string() {
        let c = parse("[core]\nserver=\"s\"\nport = \"1730\"\n").unwrap();
        assert_eq!(c.port, 1730);
    }

    #[test]
    fn host_name_is_not_empty() {
        assert!(!host_name().is_empty());
    }
}

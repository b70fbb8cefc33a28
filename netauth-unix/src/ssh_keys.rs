//! `netauth-unix ssh-keys USER [--type TYPE]`: the public keys sshd's
//! `AuthorizedKeysCommand` asks for, and a drop-in for NetAuth's `netkeys`.
//!
//! sshd reads every line the command prints as an authorized key and
//! discards them all when it exits non-zero, so:
//!
//! - standard output carries keys and nothing else, one per line; every
//!   message goes to standard error (and, for what an administrator must
//!   see, to syslog: sshd drops the command's stderr unless it runs with
//!   debug logging);
//! - a user who is unknown, not served by this host, locked, or deleted on
//!   the server gets no output and exit status 0 (nothing to authorize);
//! - anything that makes the answer unknowable (an unreadable config or
//!   cache, an unexpected server error) prints nothing and exits 1.
//!
//! # Which keys
//!
//! Only a user the refresh serves (one in the cache the NSS module answers
//! from) has keys here, and only while the host's account of that name is
//! that user: if the name service resolves the name to another uid (a
//! local account created since the last refresh), nothing is printed, so a
//! directory entity can never authorize logins into a local account.
//!
//! The server is asked first ([`EntityInfo`], which carries the keys and
//! the lock bit in one answer) with a short deadline (`[unix.ssh]
//! request_timeout_ms`, default 1 s, connection included), so a key removed
//! or an entity locked in NetAuth stops working at once. Only when the
//! server cannot be reached (refused, timed out, TLS failure) do the keys
//! come from the cache, unless the cache says the user is locked. An answer
//! of the server is final: "locked" or "no such entity" prints nothing, even
//! though the cache still has keys. So does an entity whose number no
//! longer matches the cached uid (deleted and re-created under the same
//! name): its keys would open the old account's files. `[unix.ssh]
//! cache_only = true` never asks the server.
//!
//! It needs nothing an unprivileged `AuthorizedKeysCommandUser` (such as
//! `nobody`) cannot read: the config, the certificate and the cache are
//! world-readable, and no token is used (EntityInfo needs none; the token
//! cache is kept in memory, never read from disk).
//!
//! # netkeys compatibility
//!
//! Invoked as `netkeys` (a link), or with netkeys' `--ID USER` as the first
//! argument, the command behaves as `ssh-keys`. netkeys' flags are taken as
//! its documentation writes them, with one dash or two: `-ID`, `-type`,
//! `-service` (the service-name sent to the server), `-config`, `-verbose`
//! (accepted; messages go to stderr anyway). Unlike netkeys, an unknown
//! entity exits 0 (netkeys exits 1, which sshd treats the same way).
//!
//! [`EntityInfo`]: netauth_core::Client::entity_info

use std::ffi::{CString, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use netauth_cache::clean;
use netauth_cache::trusted::{open_trusted, TrustRule};
use netauth_cache::{CacheView, LazyCheck, CACHE_FILE_NAME};
use netauth_core::blocking::BlockingClient;
use netauth_core::config::refresh::RefreshSettings;
use netauth_core::config::ssh::SshSettings;
use netauth_core::config::{Config, TokenCacheKind, DEFAULT_CONFIG_PATH};
use netauth_core::ClientBuilder;

/// `service-name` sent to the server unless `--service` says otherwise.
pub const SERVICE_NAME: &str = "netauth-unix-ssh-keys";
/// The key type printed unless `--type` says otherwise (NetAuth's default).
pub const DEFAULT_KEY_TYPE: &str = "SSH";
/// The program name that selects netkeys' behaviour.
pub const NETKEYS_NAME: &str = "netkeys";
/// netkeys' flags, written with one dash in NetAuth's documentation.
const NETKEYS_FLAGS: [&str; 5] = ["ID", "type", "service", "config", "verbose"];

/// The arguments of `ssh-keys`.
#[derive(clap::Args, Debug, Clone)]
pub struct SshKeysArgs {
    /// The user whose keys to print (sshd_config: %u).
    #[arg(
        value_name = "USER",
        required_unless_present = "id",
        conflicts_with = "id"
    )]
    pub user: Option<String>,
    /// The user, as NetAuth's netkeys takes it (`--ID %u`).
    #[arg(long = "ID", value_name = "USER")]
    pub id: Option<String>,
    /// The key type to print, case-insensitive.
    #[arg(long = "type", value_name = "TYPE", default_value = DEFAULT_KEY_TYPE)]
    pub kind: String,
    /// NetAuth config file.
    #[arg(long, short, value_name = "PATH", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,
    /// The service-name sent to the server (netkeys' --service).
    #[arg(long, value_name = "NAME", hide = true)]
    pub service: Option<String>,
    /// Accepted for netkeys' sake; messages always go to stderr.
    #[arg(long, hide = true)]
    pub verbose: bool,
}

impl SshKeysArgs {
    fn user(&self) -> &str {
        self.user.as_deref().or(self.id.as_deref()).unwrap_or("")
    }
}

/// Rewrites the command line so that clap parses netkeys' forms: when the
/// program is invoked as `netkeys`, or its first argument is one of
/// netkeys' flags and `--ID` is among them, `ssh-keys` is inserted as the
/// subcommand; for
/// `ssh-keys`, netkeys' one-dash flags (`-ID alice`, `-type=SSH`) become
/// two-dash ones. Anything else is left as it is.
pub fn rewrite_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let Some(program) = args.first().cloned() else {
        return args;
    };
    let as_netkeys = Path::new(&program)
        .file_name()
        .is_some_and(|name| name == NETKEYS_NAME);
    // Without the name, netkeys' form needs its --ID: `netauth-unix
    // --config X refresh` stays the (wrong) usage it is.
    let netkeys_form = args.get(1).is_some_and(|a| netkeys_flag(a).is_some())
        && args.iter().skip(1).any(|a| {
            netkeys_flag(a).is_some_and(|f| f == "--ID" || f.to_string_lossy().starts_with("--ID="))
        });
    let rest_from = if as_netkeys || netkeys_form {
        args.insert(1, OsString::from("ssh-keys"));
        2
    } else if args.get(1).is_some_and(|a| a == "ssh-keys") {
        2
    } else {
        return args;
    };
    for arg in args.iter_mut().skip(rest_from) {
        if let Some(two_dash) = netkeys_flag(arg) {
            *arg = two_dash;
        }
    }
    args
}

/// `--NAME[=value]` for a netkeys flag written `-NAME[=value]` or
/// `--NAME[=value]`; `None` for anything else.
fn netkeys_flag(arg: &OsString) -> Option<OsString> {
    let text = arg.to_str()?;
    let bare = text.strip_prefix("--").or_else(|| text.strip_prefix('-'))?;
    let name = bare.split_once('=').map_or(bare, |(name, _)| name);
    NETKEYS_FLAGS
        .contains(&name)
        .then(|| OsString::from(format!("--{bare}")))
}

/// The cache's view of the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedUser {
    pub uid: u32,
    pub locked: bool,
    /// `TYPE:KEY` entries.
    pub keys: Vec<String>,
}

/// What the server said about the entity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerAnswer {
    Entity {
        number: Option<i32>,
        locked: bool,
        /// `TYPE:KEY` entries.
        keys: Vec<String>,
    },
    /// No such entity (deleted since the last refresh).
    NotFound,
    /// The server could not be reached: refused, timed out, TLS failure.
    Unavailable(String),
    /// Any other failure: the answer is unknown.
    Failed(String),
}

/// Why no key is printed (exit 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoKeys {
    /// Not in the cache: not a directory user this host serves.
    NotServed,
    /// The host resolves the name to another uid than the cache's.
    OtherAccount { host_uid: u32, cached_uid: u32 },
    /// Locked in NetAuth (said by the server, or by the cache offline).
    Locked { offline: bool },
    /// The server knows no such entity any more.
    Deleted,
    /// The entity's number is not the cached uid any more.
    NumberChanged {
        cached_uid: u32,
        number: Option<i32>,
    },
}

/// Where printed keys come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Server,
    /// `cache_only = true`.
    Cache,
    /// The server was unavailable (why).
    CacheFallback(String),
}

/// The decision for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keys {
        /// `TYPE:KEY` entries, all types.
        keys: Vec<String>,
        source: KeySource,
    },
    NoKeys(NoKeys),
    /// The answer is unknown: print nothing, exit 1.
    Error(String),
}

/// The rules of the [module documentation](self), over what the cache, the
/// host's name service and the server (`None`: not asked) said.
pub fn decide(
    cached: Result<Option<CachedUser>, String>,
    host_uid: Option<u32>,
    server: Option<ServerAnswer>,
) -> Verdict {
    let cached = match cached {
        Ok(Some(c)) => c,
        Ok(None) => return Verdict::NoKeys(NoKeys::NotServed),
        Err(e) => return Verdict::Error(e),
    };
    if let Some(host_uid) = host_uid.filter(|&uid| uid != cached.uid) {
        return Verdict::NoKeys(NoKeys::OtherAccount {
            host_uid,
            cached_uid: cached.uid,
        });
    }
    let from_cache = |source: KeySource| {
        if cached.locked {
            Verdict::NoKeys(NoKeys::Locked { offline: true })
        } else {
            Verdict::Keys {
                keys: cached.keys.clone(),
                source,
            }
        }
    };
    match server {
        None => from_cache(KeySource::Cache),
        Some(ServerAnswer::Unavailable(why)) => from_cache(KeySource::CacheFallback(why)),
        Some(ServerAnswer::NotFound) => Verdict::NoKeys(NoKeys::Deleted),
        Some(ServerAnswer::Failed(e)) => Verdict::Error(e),
        Some(ServerAnswer::Entity { locked: true, .. }) => {
            Verdict::NoKeys(NoKeys::Locked { offline: false })
        }
        Some(ServerAnswer::Entity { number, .. })
            if number.map(i64::from) != Some(i64::from(cached.uid)) =>
        {
            Verdict::NoKeys(NoKeys::NumberChanged {
                cached_uid: cached.uid,
                number,
            })
        }
        Some(ServerAnswer::Entity { keys, .. }) => Verdict::Keys {
            keys,
            source: KeySource::Server,
        },
    }
}

/// The keys of type `kind` (ASCII case-insensitive) among `TYPE:KEY`
/// entries, as sshd reads them, and how many entries were refused
/// ([`clean::check_key`]: a key from the server holding a newline would
/// print as two keys).
pub fn select<'k>(entries: &'k [String], kind: &str) -> (Vec<&'k str>, usize) {
    let mut keys = Vec::new();
    let mut refused = 0;
    for entry in entries {
        match clean::check_key(entry) {
            Ok((t, key)) if t.eq_ignore_ascii_case(kind) => keys.push(key),
            Ok(_) => {}
            Err(_) => refused += 1,
        }
    }
    (keys, refused)
}

/// How a message is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    /// stderr only.
    Info,
    /// stderr and syslog (notice).
    Notice,
    /// stderr and syslog (warning).
    Warning,
    /// stderr and syslog (error).
    Error,
}

fn report(level: Level, message: &str) {
    // One line, whatever the message holds.
    let line = message.replace(['\n', '\r', '\0'], " ");
    // Never eprintln!: it panics when stderr is a closed pipe.
    let _ = writeln!(std::io::stderr(), "netauth-unix ssh-keys: {line}");
    let priority = match level {
        Level::Info => return,
        Level::Notice => libc::LOG_NOTICE,
        Level::Warning => libc::LOG_WARNING,
        Level::Error => libc::LOG_ERR,
    };
    let Ok(text) = CString::new(format!("ssh-keys: {line}")) else {
        return;
    };
    // SAFETY: the ident is a static C string (openlog keeps the pointer);
    // the format is a literal "%s" with one argument, a valid C string
    // that lives until the call returns.
    unsafe {
        libc::openlog(c"netauth-unix".as_ptr(), libc::LOG_PID, libc::LOG_AUTHPRIV);
        libc::syslog(priority, c"%s".as_ptr(), text.as_ptr());
    }
}

/// The uid the host's name service gives `user` (what sshd logs in as),
/// `None` when it knows no such user or the lookup fails.
fn host_uid(user: &str) -> Option<u32> {
    let name = CString::new(user).ok()?;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        // SAFETY: all-zero is a valid `passwd` (null pointers, zero ids)
        // that getpwnam_r overwrites.
        let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `name` is a C string; `entry`, `buffer` (with its true
        // length) and `found` are valid for writes during the call, and
        // the strings it stores in `buffer` are not read afterwards.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut entry,
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                &mut found,
            )
        };
        if rc == libc::ERANGE && buffer.len() < 1024 * 1024 {
            buffer.resize(buffer.len() * 4, 0);
            continue;
        }
        return (rc == 0 && !found.is_null()).then_some(entry.pw_uid);
    }
}

/// The user's entry in the cache at `path`, read as the NSS module reads
/// it (trusted file, mapped, blocks checked when read): sshd runs this for
/// every key login, and a large cache is many megabytes.
fn cached_user(path: &Path, user: &str) -> Result<Option<CachedUser>, String> {
    let map = open_trusted(path, &TrustRule::CACHE).and_then(|t| t.map());
    let bytes = map.map_err(|e| {
        if e.is_not_found() {
            format!(
                "no cache at {} (run netauth-unix refresh): cannot tell which users are served",
                path.display()
            )
        } else {
            format!("cache {} not usable: {e}", path.display())
        }
    })?;
    let unusable =
        |e: netauth_cache::CacheError| format!("cache {} not usable: {e}", path.display());
    let check = LazyCheck::new(&bytes).map_err(unusable)?;
    let view: CacheView<'_> = check.view(&bytes).map_err(unusable)?;
    let Some(record) = view.user_by_name(user.as_bytes()).map_err(unusable)? else {
        return Ok(None);
    };
    let mut keys = Vec::new();
    if let Some(stored) = view.user_keys(user.as_bytes()).map_err(unusable)? {
        for key in stored {
            let (kind, key) = key.map_err(unusable)?;
            keys.push(format!("{kind}:{key}"));
        }
    }
    Ok(Some(CachedUser {
        uid: record.uid,
        locked: record.locked,
        keys,
    }))
}

/// Asks the server, within `timeout` all told.
fn ask_server(config: &Config, service: &str, timeout: Duration, user: &str) -> ServerAnswer {
    let builder = ClientBuilder::from_config(config.clone())
        .service_name(service)
        // EntityInfo needs no token: none is read from disk.
        .token_cache_kind(TokenCacheKind::Memory)
        .connect_timeout(config.connect_timeout.min(timeout))
        .request_timeout(timeout);
    match BlockingClient::new(builder).entity_info(user) {
        Ok(entity) => ServerAnswer::Entity {
            number: entity.number,
            locked: entity.meta.locked,
            keys: entity.meta.keys,
        },
        Err(e) if e.is_not_found() => ServerAnswer::NotFound,
        Err(e) if e.is_server_unavailable() => ServerAnswer::Unavailable(e.to_string()),
        Err(e) => ServerAnswer::Failed(e.to_string()),
    }
}

/// Runs `ssh-keys`, printing keys to `out`; returns the exit status.
pub fn run(args: &SshKeysArgs, out: &mut dyn Write) -> u8 {
    let user = args.user();
    if clean::check_name(user).is_err() {
        report(
            Level::Info,
            &format!("{user:?} is not a name NetAuth users are served under: no keys"),
        );
        return 0;
    }
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            report(Level::Error, &format!("{user}: no keys: {e}"));
            return 1;
        }
    };
    let settings = SshSettings::from_config(&config);
    let cache_dir = RefreshSettings::from_config(&config).cache_dir;
    let cached = cached_user(&cache_dir.join(CACHE_FILE_NAME), user);
    let host_uid = match &cached {
        Ok(Some(_)) => host_uid(user),
        _ => None,
    };
    let server = match (&cached, settings.cache_only) {
        (Ok(Some(_)), false) => Some(ask_server(
            &config,
            args.service.as_deref().unwrap_or(SERVICE_NAME),
            settings.request_timeout,
            user,
        )),
        _ => None,
    };
    let (entries, source) = match decide(cached, host_uid, server) {
        Verdict::Keys { keys, source } => (keys, source),
        Verdict::NoKeys(why) => {
            let (level, text) = explain(why);
            report(level, &format!("{user}: no keys: {text}"));
            return 0;
        }
        Verdict::Error(e) => {
            report(Level::Error, &format!("{user}: no keys: {e}"));
            return 1;
        }
    };
    if let KeySource::CacheFallback(why) = &source {
        report(
            Level::Warning,
            &format!("{user}: keys from the cache: server unavailable: {why}"),
        );
    }
    let (keys, refused) = select(&entries, &args.kind);
    if refused > 0 {
        report(
            Level::Warning,
            &format!("{user}: {refused} stored keys refused (control characters or no TYPE)"),
        );
    }
    if let Err(e) = write_keys(&keys, out) {
        report(Level::Info, &format!("{user}: cannot write the keys: {e}"));
        return 1;
    }
    0
}

/// The log level and text of a request answered with no keys.
fn explain(why: NoKeys) -> (Level, String) {
    match why {
        NoKeys::NotServed => (Level::Info, "not a NetAuth user of this host".to_owned()),
        NoKeys::OtherAccount {
            host_uid,
            cached_uid,
        } => (
            Level::Notice,
            format!(
                "the host's account of that name has uid {host_uid}, not the \
                 directory's {cached_uid}: NetAuth keys do not apply to it"
            ),
        ),
        NoKeys::Locked { offline: false } => (Level::Notice, "locked in NetAuth".to_owned()),
        NoKeys::Locked { offline: true } => (
            Level::Notice,
            "locked in the cache (server unavailable)".to_owned(),
        ),
        NoKeys::Deleted => (
            Level::Notice,
            "no such entity on the server any more (deleted)".to_owned(),
        ),
        NoKeys::NumberChanged { cached_uid, number } => (
            Level::Notice,
            format!(
                "the entity's number is {} on the server but {cached_uid} in the \
                 cache (re-created?): no keys until the next refresh",
                number.map_or("unset".to_owned(), |n| n.to_string())
            ),
        ),
    }
}

/// One write, so that a reader never sees half a key list; a closed pipe
/// (sshd gave up waiting) is an error to report, not a panic.
fn write_keys(keys: &[&str], out: &mut dyn Write) -> std::io::Result<()> {
    let mut text = String::new();
    for key in keys {
        text.push_str(key);
        text.push('\n');
    }
    out.write_all(text.as_bytes()).and_then(|()| out.flush())
}

/// The `ssh-keys` command.
pub fn main(args: &SshKeysArgs) -> ExitCode {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    ExitCode::from(run(args, &mut out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn netkeys_command_lines_become_ssh_keys() {
        for (given, wanted) in [
            (
                &["/usr/bin/netkeys", "--ID", "alice"][..],
                &["/usr/bin/netkeys", "ssh-keys", "--ID", "alice"][..],
            ),
            (
                &["netkeys", "-ID", "alice", "-type", "gpg"],
                &["netkeys", "ssh-keys", "--ID", "alice", "--type", "gpg"],
            ),
            (
                &["netkeys", "-ID=alice", "-service=sshd", "-verbose"],
                &[
                    "netkeys",
                    "ssh-keys",
                    "--ID=alice",
                    "--service=sshd",
                    "--verbose",
                ],
            ),
            (
                &["/usr/sbin/netauth-unix", "--ID", "alice"],
                &["/usr/sbin/netauth-unix", "ssh-keys", "--ID", "alice"],
            ),
            (
                &["netauth-unix", "-ID", "alice", "-config", "/c.toml"],
                &[
                    "netauth-unix",
                    "ssh-keys",
                    "--ID",
                    "alice",
                    "--config",
                    "/c.toml",
                ],
            ),
            (
                &["netauth-unix", "ssh-keys", "alice", "-type", "SSH"],
                &["netauth-unix", "ssh-keys", "alice", "--type", "SSH"],
            ),
            // Other commands and plain arguments are left alone, and so is
            // a netkeys flag without netkeys' --ID.
            (
                &["netauth-unix", "--config", "/x", "refresh"],
                &["netauth-unix", "--config", "/x", "refresh"],
            ),
            (
                &["netauth-unix", "-type", "SSH", "-ID=bob"],
                &["netauth-unix", "ssh-keys", "--type", "SSH", "--ID=bob"],
            ),
            (
                &["netauth-unix", "refresh", "-v"],
                &["netauth-unix", "refresh", "-v"],
            ),
            (
                &["netauth-unix", "status", "-c", "/x"],
                &["netauth-unix", "status", "-c", "/x"],
            ),
            (
                &["netauth-unix", "ssh-keys", "-c", "/x", "bob"],
                &["netauth-unix", "ssh-keys", "-c", "/x", "bob"],
            ),
            (&["netauth-unix"], &["netauth-unix"]),
        ] {
            assert_eq!(rewrite_args(os(given)), os(wanted), "{given:?}");
        }
        // A user named like a flag is still a user when it is the value.
        assert_eq!(
            rewrite_args(os(&["netkeys", "--ID", "alice", "--type"])),
            os(&["netkeys", "ssh-keys", "--ID", "alice", "--type"])
        );
    }

    fn cached(uid: u32, locked: bool, keys: &[&str]) -> Result<Option<CachedUser>, String> {
        Ok(Some(CachedUser {
            uid,
            locked,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        }))
    }

    fn entity(number: i32, locked: bool, keys: &[&str]) -> Option<ServerAnswer> {
        Some(ServerAnswer::Entity {
            number: Some(number),
            locked,
            keys: keys.iter().map(|k| k.to_string()).collect(),
        })
    }

    fn keys(verdict: &Verdict) -> Option<(Vec<&str>, &KeySource)> {
        match verdict {
            Verdict::Keys { keys, source } => {
                Some((keys.iter().map(String::as_str).collect(), source))
            }
            _ => None,
        }
    }

    #[test]
    fn the_server_decides_when_it_answers() {
        let old = &["SSH:ssh-ed25519 OLD"][..];
        let new = &["SSH:ssh-ed25519 NEW"][..];
        let v = decide(
            cached(2001, false, old),
            Some(2001),
            entity(2001, false, new),
        );
        assert_eq!(keys(&v), Some((new.to_vec(), &KeySource::Server)));
        // A key removed on the server is gone, whatever the cache holds.
        let v = decide(cached(2001, false, old), None, entity(2001, false, &[]));
        assert_eq!(keys(&v), Some((vec![], &KeySource::Server)));
        // Locked or deleted on the server: nothing, never the cache.
        assert_eq!(
            decide(cached(2001, false, old), None, entity(2001, true, new)),
            Verdict::NoKeys(NoKeys::Locked { offline: false })
        );
        assert_eq!(
            decide(cached(2001, false, old), None, Some(ServerAnswer::NotFound)),
            Verdict::NoKeys(NoKeys::Deleted)
        );
        // Re-created under the same name with another number.
        assert_eq!(
            decide(cached(2001, false, old), None, entity(3001, false, new)),
            Verdict::NoKeys(NoKeys::NumberChanged {
                cached_uid: 2001,
                number: Some(3001)
            })
        );
        let no_number = Some(ServerAnswer::Entity {
            number: None,
            locked: false,
            keys: vec![],
        });
        assert!(matches!(
            decide(cached(2001, false, old), None, no_number),
            Verdict::NoKeys(NoKeys::NumberChanged { .. })
        ));
        // An answer that is neither: unknown, fail.
        assert!(matches!(
            decide(
                cached(2001, false, old),
                None,
                Some(ServerAnswer::Failed("internal".into()))
            ),
            Verdict::Error(_)
        ));
    }

    #[test]
    fn the_cache_answers_only_when_the_server_is_unavailable_or_not_asked() {
        let old = &["SSH:ssh-ed25519 OLD"][..];
        let down = || Some(ServerAnswer::Unavailable("refused".into()));
        let v = decide(cached(2001, false, old), None, down());
        assert_eq!(
            keys(&v),
            Some((old.to_vec(), &KeySource::CacheFallback("refused".into())))
        );
        assert_eq!(
            decide(cached(2001, true, old), None, down()),
            Verdict::NoKeys(NoKeys::Locked { offline: true })
        );
        let v = decide(cached(2001, false, old), None, None);
        assert_eq!(keys(&v), Some((old.to_vec(), &KeySource::Cache)));
        assert_eq!(
            decide(cached(2001, true, old), None, None),
            Verdict::NoKeys(NoKeys::Locked { offline: true })
        );
    }

    #[test]
    fn only_served_users_of_this_host_have_keys() {
        let new = &["SSH:ssh-ed25519 NEW"][..];
        assert_eq!(
            decide(Ok(None), None, entity(2001, false, new)),
            Verdict::NoKeys(NoKeys::NotServed)
        );
        // The host resolves the name to a local account: never its keys.
        assert_eq!(
            decide(cached(2001, false, new), Some(0), entity(2001, false, new)),
            Verdict::NoKeys(NoKeys::OtherAccount {
                host_uid: 0,
                cached_uid: 2001
            })
        );
        assert!(matches!(
            decide(Err("no cache".into()), None, entity(2001, false, new)),
            Verdict::Error(_)
        ));
    }

    #[test]
    fn keys_are_selected_by_type_case_insensitively() {
        let entries: Vec<String> = [
            "SSH:ssh-ed25519 AAAA one",
            "GPG:0xDEADBEEF",
            "ssh:ssh-rsa BBBB two:with:colons",
            "SSH:ssh-ed25519 CCCC\nssh-ed25519 EVIL",
            "no type at all",
            "SSH:",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (ssh, refused) = select(&entries, "SSH");
        assert_eq!(
            ssh,
            ["ssh-ed25519 AAAA one", "ssh-rsa BBBB two:with:colons"]
        );
        assert_eq!(refused, 3);
        assert_eq!(select(&entries, "Ssh").0, ssh);
        assert_eq!(select(&entries, "gpg").0, ["0xDEADBEEF"]);
        assert!(select(&entries, "X509").0.is_empty());
    }
}

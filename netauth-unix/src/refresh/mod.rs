//! The refresh: fills the NSS cache from the NetAuth server.
//!
//! `netauth-unix refresh` calls [`refresh`]: it fetches every entity and
//! group, maps them to passwd and group entries with the rules below,
//! computes effective memberships locally, and installs the cache with
//! [`netauth_cache::write_atomic`]. A failed refresh leaves the previous cache
//! exactly as it was and returns an error saying why. Either way a small
//! status file (`refresh-status.json`, see [`status::RefreshStatus`]) is
//! written next to the cache for `netauth-unix status`.
//!
//! # Settings
//!
//! In NetAuth's `config.toml` (core, TLS and client settings come from the
//! usual tables, see `netauth_core::config`):
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `[unix] cache_dir` | `/var/lib/netauth` | folder of the cache (`nss.cache`), the status file and the refresh lock. The NSS module always reads `/var/lib/netauth/nss.cache`; another folder is for tests. |
//! | `[unix.refresh] min_uid` | `1000` | entities with a lower number are not served |
//! | `[unix.refresh] min_gid` | `1000` | groups with a lower number are not served |
//! | `[unix.refresh] home_template` | `"/home/{name}"` | home when the entity has none, an unusable one, or `use_entity_home` is false; `{name}` and `{uid}` are replaced |
//! | `[unix.refresh] use_entity_home` | `true` | use the entity's `Home` when it is usable |
//! | `[unix.refresh] default_shell` | `"/bin/sh"` | shell when the entity has none or one not listed in `shells_file` |
//! | `[unix.refresh] shells_file` | `"/etc/shells"` | an entity's shell is used only if listed here (unreadable: none is) |
//! | `[unix.refresh] missing_primary_group` | `"skip"` | user whose primary group is unset or not served: `"skip"` (not served, logged) or `"private"` (a user-private group, gid = uid, named like the user, when neither is taken by a NetAuth or local group; otherwise skipped) |
//! | `[unix.refresh] local_passwd` | `"/etc/passwd"` | local users whose names and uids NetAuth must not shadow |
//! | `[unix.refresh] local_group` | `"/etc/group"` | local groups whose names and gids NetAuth must not shadow |
//! | `[unix.refresh] local_group_name_clash` | `"omit"` | a NetAuth group whose name a local group has (see [Local name clashes](#local-name-clashes)): `"omit"` (not served as a group; its members still are) or `"rename"` (served as `renamed_group_prefix` + its name) |
//! | `[unix.refresh] renamed_group_prefix` | `"netauth-"` | prefix of the renamed groups of `local_group_name_clash = "rename"`; letters, digits, `.`, `_`, `-`, not starting with `.` or `-` |
//! | `[unix.refresh] max_shrink_percent` | `50` | refuse a refresh that would drop more than this share of the previous cache's users, or of its groups (likely a misconfigured server); `--force` overrides, `100` disables |
//! | `[unix.refresh] request_timeout_ms` | `60000` | deadline of each search call of the refresh (big answers take seconds) |
//! | `[unix.refresh] search_cap` | `16000` | the server's search answer cap; change only if your server's differs |
//! | `[unix.refresh] source` | none | fleets: a folder URL (`https://`, `http://`, `file:///`, ending in `/`) where `netauth-unix publish` output is served; the refresh then reads the signed snapshot there instead of asking the server (see [`snapshot_fetch`]) |
//! | `[unix.refresh] publisher_key` | none | the publisher's public key, `ed25519:BASE64` as `netauth-unix keygen` prints it; required with `source` |
//! | `[unix.refresh] source_certificate` | none | PEM of the only certificates an `https` source is trusted with; unset: the system's CA store |
//! | `[unix.refresh] snapshot_max_age_s` | `86400` | a snapshot generated longer ago is refused (a publisher that stopped, an old snapshot played back); `publish` rewrites an unchanged one at half this age |
//! | `[unix.refresh] snapshot_max_bytes` | `268435456` | a larger snapshot is refused unread |
//!
//! Paths must be absolute; an unknown key or table anywhere under `[unix]`
//! is an error naming file, line and key (a typo would otherwise silently
//! keep a default); see `netauth_core::config::unix`.
//!
//! # Fetching
//!
//! Entities by `Number` range, splitting capped answers until every range is
//! answered under the cap (see [`fetch`]): complete beyond the 16,000 cap in
//! a few calls (20,000 entities: 3 calls). Groups with one
//! `GroupSearch("*")`, by range only if that is capped. No call per group or
//! per user.
//!
//! # Fleets
//!
//! With `[unix.refresh] source` set, the directory comes from a signed
//! snapshot that `netauth-unix publish` ([`publish`]) wrote, over HTTP(S)
//! or from a folder ([`snapshot_fetch`]; format in [`snapshot`]), instead
//! of from the server; the mapping below, the shrink guard, the writer and
//! the status file are the same. The snapshot carries the effective
//! memberships, computed by the publisher with the rules below.
//!
//! # Memberships
//!
//! Computed locally with the server's rules (see [`members`]): direct
//! memberships from each entity's `meta.Groups`, recursive INCLUDE/EXCLUDE,
//! exclusion wins. Over everything fetched, so a group that is not served
//! (e.g. below `min_gid`) still passes its members through an INCLUDE.
//! A group's member list and a user's initgroups list hold only served users
//! and served groups: a skipped entity's name is never listed, so a local
//! account of the same name cannot inherit its groups.
//!
//! # Cleaning rules
//!
//! Each rule skips or changes one record, logs it (a [`build::Notice`],
//! printed with every directory string escaped) and the refresh goes on:
//!
//! - **Names** (user and group): must match `^[A-Za-z0-9_][A-Za-z0-9._-]*\$?$`,
//!   not all digits, at most 64 bytes (see [`clean::check_name`]);
//!   otherwise skipped.
//! - **Numbers**: none, 0 (root's id is never served), negative or below
//!   `min_uid`/`min_gid`: skipped.
//! - **Duplicates**: two entities with one number, two groups with one
//!   number, or one name held twice: all claimants are skipped (which one is
//!   right cannot be known; files owned by that id must not change owner).
//! - **Local accounts**: a user whose name or uid is in `local_passwd`, a
//!   group whose gid is in `local_group`: skipped. A group whose name (only)
//!   is in `local_group` is not skipped: see [Local name
//!   clashes](#local-name-clashes). Those files must be readable, or the
//!   refresh fails.
//! - **Primary group**: must name a served group or one only a local name
//!   clash keeps from being served, else `missing_primary_group` applies.
//! - **gecos** (`GECOS`, else `DisplayName`, else empty): `:` and control
//!   characters (NUL, newline, tab, C0, DEL, C1) become spaces; cut to
//!   1,024 bytes.
//! - **home**: used when absolute, without `:`, control characters, `.` or
//!   `..` components, at most 4,095 bytes; else the template.
//! - **shell**: used only when listed in `shells_file` (and clean like a
//!   home); else `default_shell`.
//! - **Expansions**: malformed ones, ones naming unknown groups and ones on a
//!   cycle are ignored.
//! - **Public keys** (`EntityMeta.Keys`, each `TYPE:KEY`, for
//!   `netauth-unix ssh-keys`): a served user's keys are stored with its
//!   lock state; a key with a control character (a newline would print as
//!   two keys), an empty or non-printable TYPE, or longer than 32 KiB is
//!   left out, the user is not; at most 128 keys per user (see
//!   [`clean::check_key`]).
//!
//! # Local name clashes
//!
//! A stock Debian host already has groups named `users` (100), `staff`
//! (50), `sudo` (27) and others, and most directories use the same names.
//! A NetAuth group whose **name** a local group has is never served under
//! that name: the local group wins `getgrnam`, and a second group of the
//! same name would let a sudoers rule `%users` or `%sudo` match it through
//! `getgrgid` (sudo compares the names of the user's gids). Its members are
//! still served:
//!
//! - a user whose primary group it is keeps that group's NetAuth number as
//!   its gid;
//! - with `local_group_name_clash = "omit"` (the default) the group is not
//!   served at all: its gid has no name on the host (`getgrgid` finds
//!   nothing, `ls -l` and `id` show the bare number) and it is left out of
//!   every member's supplementary groups. No other served group (neither a
//!   user-private one nor a renamed one) ever gets that number, so it never
//!   resolves to a wrong name;
//! - with `"rename"` it is served as `renamed_group_prefix` + its name
//!   (`netauth-users`), with its members, in their supplementary groups.
//!   If that name breaks the name rule or is taken by a local or another
//!   NetAuth group, the group is omitted as above (never served twice).
//!
//! The trade-off: `"omit"` keeps every group name on the host meaning one
//! gid, so nothing written for the local `users` or `staff` (sudoers,
//! polkit, file ACLs by name) can reach a NetAuth group, at the price of
//! gids without a name and fewer supplementary groups. `"rename"` makes the
//! groups visible and usable by name, but under a name the directory does
//! not use (rules must say `%netauth-staff`), and a local group created
//! later under the renamed name makes the group disappear at the next
//! refresh.
//!
//! A group whose **number** a local group has is skipped, like a user whose
//! name or uid a local account has, and users whose primary group it is
//! follow `missing_primary_group`.
//!
//! A served user whose name a local group line lists as a member (say a
//! stale `sudo:x:27:alice`) gains that local group: glibc merges
//! memberships by name across NSS modules. The user is served, and the
//! refresh reports it. Every clash is a notice, and `netauth-unix status`
//! lists the clashing groups (renamed or left out, with how many users keep
//! their gid as primary or lost them as supplementary group) and the users
//! named in local group lines, from the status file.
//!
//! # Failures
//!
//! Server down, TLS rejected, a call failing midway, an answer that cannot
//! be proved complete, unreadable local files, a cache that fails the
//! writer's checks, or a sudden loss of more than `max_shrink_percent` of the
//! users or of the groups: the refresh returns [`RefreshError`] and does not
//! touch the cache.
//! Only one refresh runs at a time (an `flock` on `cache_dir/.refresh.lock`).
//!
//! # Files
//!
//! Every file read goes through [`netauth_cache::trusted`]: the local
//! account files and the shells file ([`TrustRule::LOCAL_ACCOUNTS`]), the
//! previous cache ([`TrustRule::CACHE`]) and the status file must be
//! regular files owned by root, not writable by group or others, in folders
//! likewise; an untrusted local file or previous cache fails the refresh
//! ([`RefreshError::Untrusted`]) before anything is written. The cache
//! folder is created with mode 0755 (missing parents too) whatever the
//! umask, and an existing one must be root's and writable by nobody else.
//! The lock is opened with `O_NOFOLLOW` and given mode 0600; the cache and
//! status file are written by [`netauth_cache::write_atomic`] with mode
//! 0644. Holding the lock, the refresh removes temporary files a killed
//! refresh left behind ([`netauth_cache::temp_file_prefix`]) and writes the
//! status file.

pub mod build;
pub mod fetch;
pub mod members;
pub mod model;
pub mod offline;
pub mod publish;
pub mod snapshot;
pub mod snapshot_fetch;
pub mod status;

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use build::{ClashOutcome, Notice, SkipReason};
pub use fetch::IncompleteError;
use fetch::{DirectorySource, FetchError};
use model::{SourceEntity, SourceGroup};
use netauth_cache::clean::{self, LocalAccounts};
use netauth_cache::trusted::{
    create_dir_private, read_trusted, set_exact_mode, Owner, TrustError, TrustRule,
};
use netauth_cache::{temp_file_prefix, CacheError, CacheView, WriteError, CACHE_FILE_NAME};
use netauth_core::client::{Client, ClientBuilder};
pub use netauth_core::config::refresh::{
    LocalGroupNameClash, MissingPrimaryGroup, RefreshSettings,
};
use netauth_core::config::Config;
pub use status::{RefreshStatus, ShrinkRefused};

/// Options of one refresh run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshOptions {
    /// Write the cache even when the shrink guard would refuse it.
    pub force: bool,
}

/// What a successful refresh did.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    /// Served users and groups (user-private groups included).
    pub users: usize,
    pub groups: usize,
    pub private_groups: usize,
    /// What the server answered.
    pub entities_fetched: usize,
    pub groups_fetched: usize,
    /// gRPC search calls made (entity and group searches).
    pub entity_calls: u32,
    pub group_calls: u32,
    /// Users and groups in the cache this one replaced, if there was a
    /// readable one.
    pub previous_users: Option<usize>,
    pub previous_groups: Option<usize>,
    /// Where the cache was written and how big it is.
    pub cache_path: PathBuf,
    pub cache_bytes: usize,
    pub duration: Duration,
    /// Everything skipped or changed, in order.
    pub notices: Vec<Notice>,
    /// Set when the directory came from a published snapshot
    /// (`[unix.refresh] source`) rather than from the server.
    pub snapshot: Option<snapshot_fetch::SnapshotFetched>,
}

impl RefreshReport {
    /// All gRPC calls the refresh made.
    pub fn calls(&self) -> u32 {
        self.entity_calls + self.group_calls
    }
}

/// Why a refresh failed. The cache was not touched.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The client could not be set up (config, certificate, ...).
    #[error("{0}")]
    Client(Box<dyn std::error::Error + Send + Sync>),
    /// A search call failed; nothing is written from a partial answer.
    #[error(
        "{method} failed{}, nothing written: {source}",
        if *calls_before == 0 { String::new() } else {
            format!(" after {calls_before} successful calls (answer cut off)")
        }
    )]
    Fetch {
        method: &'static str,
        expression: String,
        calls_before: u32,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The answers cannot be proved complete.
    #[error("incomplete directory, nothing written: {0}")]
    Incomplete(#[from] IncompleteError),
    /// A local file the refresh needs could not be read.
    #[error("cannot read {}: {source}", path.display())]
    LocalFile { path: PathBuf, source: io::Error },
    /// A file or folder the refresh reads or writes is not to be trusted
    /// (see [`netauth_cache::trusted`]): writable by others, not root's, a
    /// link, not a regular file, too large. Nothing was written.
    #[error("refusing an untrusted file, nothing written: {0}")]
    Untrusted(TrustError),
    /// The shrink guard refused the new cache.
    #[error(transparent)]
    Shrink(#[from] ShrinkRefused),
    /// The writer refused the mapped content (a cleaning rule missed something).
    #[error("the new cache failed the writer's checks, nothing written: {0}")]
    Encode(#[from] CacheError),
    /// The cache folder or file could not be written.
    #[error("cannot write the cache in {}: {source}", dir.display())]
    Write { dir: PathBuf, source: io::Error },
    /// Another refresh is running.
    #[error("another refresh is running (lock {} is held)", path.display())]
    Busy { path: PathBuf },
    /// The published snapshot could not be fetched or was refused.
    #[error("snapshot from {source_url} refused, cache kept: {problem}")]
    Snapshot { source_url: String, problem: String },
}

impl RefreshError {
    /// The underlying client error, if the failure came from the network.
    pub fn client_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match self {
            RefreshError::Client(e) | RefreshError::Fetch { source: e, .. } => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<FetchError<E>> for RefreshError {
    fn from(e: FetchError<E>) -> Self {
        match e {
            FetchError::Call {
                method,
                expression,
                calls_before,
                source,
            } => RefreshError::Fetch {
                method,
                expression,
                calls_before,
                source: Box::new(source),
            },
            FetchError::Incomplete(i) => RefreshError::Incomplete(i),
        }
    }
}

/// The client as a directory source.
pub(crate) struct ClientSource<'a> {
    client: &'a Client,
    /// Every group name the answers named so far, once: 100,000 entities
    /// name the same few groups, and each entity would otherwise hold its
    /// own copy of each name.
    group_names: HashSet<Arc<str>>,
}

impl<'a> ClientSource<'a> {
    /// The directory as `client` answers it.
    pub(crate) fn of(client: &'a Client) -> Self {
        ClientSource {
            client,
            group_names: HashSet::new(),
        }
    }
}

/// The shared copy of `name` in `names`, added if it is new.
fn shared_name(names: &mut HashSet<Arc<str>>, name: String) -> Arc<str> {
    if let Some(known) = names.get(name.as_str()) {
        return Arc::clone(known);
    }
    let name: Arc<str> = name.into();
    names.insert(Arc::clone(&name));
    name
}

impl DirectorySource for ClientSource<'_> {
    type Error = netauth_core::Error;
    async fn search_entities(
        &mut self,
        expression: &str,
    ) -> netauth_core::Result<Vec<SourceEntity>> {
        let answer = self.client.entity_search(expression).await?;
        let names = &mut self.group_names;
        Ok(answer
            .into_iter()
            .map(|e| SourceEntity {
                id: e.id,
                number: e.number,
                primary_group: e.meta.primary_group.map(|g| shared_name(names, g)),
                gecos: e.meta.gecos,
                display_name: e.meta.display_name,
                home: e.meta.home,
                shell: e.meta.shell,
                locked: e.meta.locked,
                // Grown by pushes while decoding: the spare room of
                // 100,000 small lists would stay until the mapping.
                groups: shrunk(
                    e.meta
                        .groups
                        .into_iter()
                        .map(|g| shared_name(names, g))
                        .collect(),
                ),
                keys: shrunk(e.meta.keys),
            })
            .collect())
    }
    async fn search_groups(&mut self, expression: &str) -> netauth_core::Result<Vec<SourceGroup>> {
        let answer = self.client.group_search(expression).await?;
        Ok(answer
            .into_iter()
            .map(|g| SourceGroup {
                name: g.name,
                number: g.number,
                expansions: g.expansions.iter().map(ToString::to_string).collect(),
            })
            .collect())
    }
}

fn shrunk<T>(mut list: Vec<T>) -> Vec<T> {
    list.shrink_to_fit();
    list
}

/// The service name the refresh sends.
pub const SERVICE_NAME: &str = "netauth-unix";

/// `host:port` of the server `config` reads from, for messages and the status.
pub fn server_label(config: &Config) -> String {
    if config.server.contains(':') && !config.server.starts_with('[') {
        format!("[{}]:{}", config.server, config.port)
    } else {
        format!("{}:{}", config.server, config.port)
    }
}

/// Runs one refresh with the server, TLS and `[unix]` settings of `config`,
/// and records the outcome in the status file. Must run inside a Tokio
/// runtime (see [`refresh_blocking`] otherwise).
pub async fn refresh(
    config: &Config,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError> {
    let settings = RefreshSettings::from_config(config);
    if settings.source.is_some() {
        // A blocking HTTP (or file) fetch: no runtime is needed.
        let mut outcome = snapshot_fetch::refresh_and_record(&settings, options);
        if let Ok(report) = &mut outcome {
            offline::prune_verifiers(&settings.cache_dir, report);
        }
        return outcome;
    }
    let server = server_label(config);
    let client = ClientBuilder::from_config(config.clone())
        .service_name(SERVICE_NAME)
        .request_timeout(Duration::from_millis(settings.request_timeout_ms))
        .build();
    match client {
        Ok(client) => {
            let mut outcome =
                refresh_and_record(&mut ClientSource::of(&client), &server, &settings, options)
                    .await;
            if let Ok(report) = &mut outcome {
                let answered = client.health().answered_by();
                offline::after_success(&settings.cache_dir, answered.as_deref(), report);
            }
            outcome
        }
        Err(e) => {
            let outcome = Err(RefreshError::Client(Box::new(e)));
            // The outcome is what matters; a status that cannot be written
            // (or a folder we may not write in) has nothing to add to it.
            if let Ok(lock) = RefreshLock::acquire(&settings.cache_dir) {
                let _ = record_status(
                    &lock,
                    &settings,
                    &server,
                    unix_now(),
                    &outcome,
                    0,
                    Duration::ZERO,
                );
            }
            outcome
        }
    }
}

/// [`refresh`] on a current-thread runtime made for the call and dropped
/// before returning.
pub fn refresh_blocking(
    config: &Config,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError> {
    let settings = RefreshSettings::from_config(config);
    map_large_allocations();
    if settings.source.is_some() {
        return snapshot_fetch::refresh_and_record(&settings, options);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| RefreshError::Client(Box::new(e)))?;
    let outcome = runtime.block_on(refresh(config, options));
    drop(runtime);
    outcome
}

/// An exclusive, non-blocking `flock` on `cache_dir/.refresh.lock`,
/// released when dropped (the kernel releases it if the process dies).
/// Everything the refresh writes in the folder is written while holding it.
pub(crate) struct RefreshLock {
    _file: File,
}

const LOCK_FILE_NAME: &str = ".refresh.lock";
/// Mode of the cache folder (and of any folder above it the refresh
/// creates): every process must be able to read the cache.
const CACHE_DIR_MODE: u32 = 0o755;
/// Mode of the lock file: only the refresh opens it.
const LOCK_FILE_MODE: u32 = 0o600;

impl RefreshLock {
    /// Makes sure `dir` exists (created with mode 0755 whatever the umask)
    /// and is trusted (root's, writable by nobody else: whoever could write
    /// it could replace the cache or plant links), takes the lock, then
    /// removes temporary files a killed refresh left behind (none of a
    /// running refresh can exist: it would hold the lock).
    fn acquire(dir: &Path) -> Result<RefreshLock, RefreshError> {
        Self::acquire_named(dir, LOCK_FILE_NAME)
    }

    /// [`RefreshLock::acquire`] with another lock file name (`publish`
    /// locks its output folder with its own).
    pub(crate) fn acquire_named(dir: &Path, lock_name: &str) -> Result<RefreshLock, RefreshError> {
        create_dir_private(dir, CACHE_DIR_MODE, Owner::Root).map_err(|e| match e {
            TrustError::Io { source, .. } => RefreshError::Write {
                dir: dir.to_owned(),
                source,
            },
            untrusted => RefreshError::Untrusted(untrusted),
        })?;
        let path = dir.join(lock_name);
        // O_NOFOLLOW: a link planted here must not make root create or
        // open the file it points to; O_NONBLOCK: nor may a FIFO hang us.
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(LOCK_FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|source| {
                if source.raw_os_error() == Some(libc::ELOOP) {
                    RefreshError::Untrusted(TrustError::Link { path: path.clone() })
                } else {
                    RefreshError::Write {
                        dir: dir.to_owned(),
                        source,
                    }
                }
            })?;
        set_exact_mode(&file, &path, LOCK_FILE_MODE, Owner::Root).map_err(|e| match e {
            TrustError::Io { source, .. } => RefreshError::Write {
                dir: dir.to_owned(),
                source,
            },
            untrusted => RefreshError::Untrusted(untrusted),
        })?;
        // SAFETY: flock only reads the descriptor number, which `file` keeps
        // open for the call's duration; no memory is shared with the kernel.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let err = io::Error::last_os_error();
            return Err(if err.kind() == io::ErrorKind::WouldBlock {
                RefreshError::Busy { path }
            } else {
                RefreshError::Write {
                    dir: dir.to_owned(),
                    source: err,
                }
            });
        }
        remove_stale_temp_files(dir).map_err(|source| RefreshError::Write {
            dir: dir.to_owned(),
            source,
        })?;
        Ok(RefreshLock { _file: file })
    }
}

/// Removes the temporary files of [`netauth_cache::write_atomic`] (cache
/// and status file) that a refresh killed before its rename left in `dir`.
/// Only called with the lock held.
fn remove_stale_temp_files(dir: &Path) -> io::Result<()> {
    let prefixes = [
        temp_file_prefix(CACHE_FILE_NAME),
        temp_file_prefix(status::STATUS_FILE_NAME),
        temp_file_prefix(snapshot::SNAPSHOT_FILE_NAME),
        temp_file_prefix(snapshot::SIGNATURE_FILE_NAME),
        temp_file_prefix(snapshot_fetch::STATE_FILE_NAME),
    ];
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        if prefixes.iter().any(|p| name.starts_with(p.as_bytes())) {
            // unlink removes a link itself, never what it points to.
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The bytes of the cache at `path` if it is trusted ([`TrustRule::CACHE`]:
/// a regular file in a folder, both root's and writable by nobody else).
/// A missing file is an error for which [`TrustError::is_not_found`] holds.
pub fn read_cache(path: &Path) -> Result<Vec<u8>, TrustError> {
    read_trusted(path, &TrustRule::CACHE)
}

fn counts_of(bytes: &[u8]) -> Result<(usize, usize), String> {
    CacheView::parse(bytes)
        .map(|v| (v.user_count(), v.group_count()))
        .map_err(|e| e.to_string())
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// The login shells the shells file lists. Unreadable or untrusted: none
/// is listed (everyone gets the default shell), as the setting documents.
fn read_shells(settings: &RefreshSettings, notices: &mut Vec<Notice>) -> HashSet<String> {
    match read_trusted(&settings.shells_file, &TrustRule::LOCAL_ACCOUNTS) {
        Ok(bytes) => clean::parse_shells(&String::from_utf8_lossy(&bytes)),
        Err(e) => {
            notices.push(Notice::ShellsFileUnreadable {
                path: settings.shells_file.clone(),
                error: e.describe_for(&settings.shells_file),
            });
            HashSet::new()
        }
    }
}

/// The user and group counts of the cache about to be replaced, for the
/// shrink guard; `None` when there is none. A damaged previous cache is
/// replaced (with a notice); one that is not to be trusted (another owner,
/// writable by others, a link) means someone else had a hand in the
/// folder: stop and say so.
fn previous_counts(
    cache_path: &Path,
    notices: &mut Vec<Notice>,
) -> Result<Option<(usize, usize)>, RefreshError> {
    Ok(match read_cache(cache_path) {
        Ok(bytes) => match counts_of(&bytes) {
            Ok(n) => Some(n),
            Err(error) => {
                notices.push(Notice::PreviousCacheUnreadable { error });
                None
            }
        },
        Err(e) if e.is_not_found() => None,
        Err(e) if e.is_untrusted() => return Err(RefreshError::Untrusted(e)),
        Err(e) => {
            notices.push(Notice::PreviousCacheUnreadable {
                error: e.to_string(),
            });
            None
        }
    })
}

/// The refresh proper, against any directory source, holding the folder's
/// `_lock`. `server` labels the cache's source. Does not write the status
/// file.
async fn refresh_from<S>(
    _lock: &RefreshLock,
    source: &mut S,
    server: &str,
    settings: &RefreshSettings,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError>
where
    S: DirectorySource,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let prepared = prepare(settings)?;
    let fetched = fetch::fetch_all(source, settings.search_cap).await?;
    let mut report = install(
        prepared,
        fetched.entities,
        fetched.groups,
        None,
        server,
        settings,
        options,
    )?;
    report.entity_calls = fetched.entity_calls;
    report.group_calls = fetched.group_calls;
    Ok(report)
}

/// What a refresh reads before fetching: the local account files, the
/// shells, the previous cache's counts.
pub(crate) struct Prepared {
    started: Instant,
    generated_at: i64,
    local: LocalAccounts,
    shells: HashSet<String>,
    cache_path: PathBuf,
    previous: Option<(usize, usize)>,
    notices: Vec<Notice>,
}

/// Reads what [`install`] needs besides the directory (the caller holds
/// the folder's lock).
pub(crate) fn prepare(settings: &RefreshSettings) -> Result<Prepared, RefreshError> {
    let started = Instant::now();
    let generated_at = unix_now();
    let dir = &settings.cache_dir;
    let mut notices = Vec::new();

    let local = LocalAccounts::read(&settings.local_passwd, &settings.local_group).map_err(
        |e| match e {
            TrustError::Io { path, source, .. } => RefreshError::LocalFile { path, source },
            untrusted => RefreshError::Untrusted(untrusted),
        },
    )?;
    let shells = read_shells(settings, &mut notices);
    let cache_path = dir.join(CACHE_FILE_NAME);
    let previous = previous_counts(&cache_path, &mut notices)?;
    Ok(Prepared {
        started,
        generated_at,
        local,
        shells,
        cache_path,
        previous,
        notices,
    })
}

/// Maps the fetched directory with the host's rules and installs the
/// cache (the caller holds the folder's lock). `memberships`: the
/// effective memberships when already known (a snapshot's), else computed.
/// The report's call counts are zero. The directory is taken by value so
/// that it is freed once mapped: the encoder's buffers, not the fetched
/// entities, then set the refresh's peak memory.
pub(crate) fn install(
    prepared: Prepared,
    entities: Vec<SourceEntity>,
    groups: Vec<SourceGroup>,
    memberships: Option<members::Memberships>,
    server: &str,
    settings: &RefreshSettings,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError> {
    let Prepared {
        started,
        generated_at,
        local,
        shells,
        cache_path,
        previous,
        mut notices,
    } = prepared;
    let dir = &settings.cache_dir;
    let (entities_fetched, groups_fetched) = (entities.len(), groups.len());
    // Member and gid lists by user index: no copy of a name per membership.
    let mut mapped =
        build::map_directory_indexed(entities, &groups, memberships, settings, &local, &shells);
    drop(groups);
    release_free_memory();
    notices.append(&mut mapped.notices);

    if let (Some((users, groups)), false) = (previous, options.force) {
        let max = settings.max_shrink_percent;
        status::check_shrink("users", users, mapped.users.len(), max)?;
        status::check_shrink("groups", groups, mapped.groups.len(), max)?;
    }

    let (source_label, _) = clean::clean_gecos(server);
    let content = mapped.cache_source(generated_at, &source_label);
    // Streamed to the temporary file: the whole file is never in memory
    // next to the content.
    let cache_bytes = netauth_cache::write_atomic_with(dir, CACHE_FILE_NAME, |file| {
        netauth_cache::encode_to_file(&content, file)
    })
    .map_err(|e| match e {
        WriteError::Invalid(e) => RefreshError::Encode(e),
        WriteError::Io(source) => RefreshError::Write {
            dir: dir.clone(),
            source,
        },
    })?;
    let (users, groups, private_groups) = (
        mapped.users.len(),
        mapped.groups.len(),
        mapped.private_groups,
    );
    drop(mapped);

    Ok(RefreshReport {
        users,
        groups,
        private_groups,
        entities_fetched,
        groups_fetched,
        entity_calls: 0,
        group_calls: 0,
        previous_users: previous.map(|p| p.0),
        previous_groups: previous.map(|p| p.1),
        cache_path,
        cache_bytes: cache_bytes as usize,
        duration: started.elapsed(),
        notices,
        snapshot: None,
    })
}

/// Hands the memory freed so far back to the system. The mapping frees the
/// fetched directory in many small pieces between the ones it keeps; glibc
/// keeps such pages (they count in the peak resident size) and the
/// encoder's large buffers would come on top of them.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it
    // touches no memory in use and takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Makes glibc serve every large allocation with its own mapping, returned
/// to the system when freed, instead of raising its threshold after the
/// first large free and taking later large buffers from the heap, where
/// the freed pieces of a phase stay resident under the next one. Only for
/// the process of the `refresh` command (a process-wide setting).
fn map_large_allocations() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt sets an allocator parameter; a fixed threshold is a
    // documented value and changes no allocation already made.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

/// [`refresh_from`], then the status file. A status file that cannot be
/// written becomes a notice (of a success) or is ignored (on failure): it
/// never changes the outcome.
pub(crate) async fn refresh_and_record<S>(
    source: &mut S,
    server: &str,
    settings: &RefreshSettings,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError>
where
    S: DirectorySource,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    let started_at = unix_now();
    let started = Instant::now();
    let mut counting = fetch::Counting {
        inner: source,
        calls: 0,
    };
    // Without the lock, no status either: when busy, another refresh owns
    // the folder and its status; otherwise the folder cannot (or must not)
    // be written.
    let lock = RefreshLock::acquire(&settings.cache_dir)?;
    let mut outcome = refresh_from(&lock, &mut counting, server, settings, options).await;
    let written = record_status(
        &lock,
        settings,
        server,
        started_at,
        &outcome,
        counting.calls,
        started.elapsed(),
    );
    drop(lock);
    if let (Ok(report), Err(e)) = (&mut outcome, written) {
        report.notices.push(Notice::StatusFileUnwritable {
            error: e.to_string(),
        });
    }
    outcome
}

/// Records the outcome of a refresh in the status file of
/// `settings.cache_dir`, whose `_lock` the caller holds.
fn record_status(
    _lock: &RefreshLock,
    settings: &RefreshSettings,
    server: &str,
    attempt_started: i64,
    outcome: &Result<RefreshReport, RefreshError>,
    calls: u32,
    duration: Duration,
) -> io::Result<()> {
    let mut status = RefreshStatus::load(&settings.cache_dir)
        .ok()
        .flatten()
        .unwrap_or_default();
    status.last_attempt = Some(attempt_started);
    status.server = server.to_owned();
    status.last_duration_ms = duration.as_millis() as u64;
    status.last_calls = calls;
    match outcome {
        Ok(r) => {
            status.last_success = Some(attempt_started);
            status.last_error = None;
            status.users = r.users;
            status.groups = r.groups;
            status.private_groups = r.private_groups;
            status.entities_fetched = r.entities_fetched;
            status.groups_fetched = r.groups_fetched;
            status.skipped_users = r
                .notices
                .iter()
                .filter(|n| matches!(n, Notice::UserSkipped { .. }))
                .count();
            status.skipped_groups = r
                .notices
                .iter()
                .filter(|n| matches!(n, Notice::GroupSkipped { .. }))
                .count();
            status.notices = r.notices.len();
            status.set_clashes(&r.notices);
        }
        Err(e) => status.last_error = Some(e.to_string()),
    }
    status.store(&settings.cache_dir)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod trust_tests;

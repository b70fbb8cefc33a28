//! The real backend: NetAuth through the core's blocking client (one
//! current-thread runtime per call, dropped before returning), and the
//! on-disk cache for offline account decisions, the cached verifiers and
//! the offline state (see the `netauth-offline` crate).
//!
//! The offline state is read before a call to the servers: while it says
//! "offline until T", no server is asked and the call fails at once as
//! unavailable. After a call, a transport failure starts or prolongs the
//! outage, any answer ends it, and the server that answered is kept to be
//! tried first. A process that is not root cannot read or write the state
//! (nor the verifiers): it always asks the servers.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    AccountInfo, Backend, BackendError, CacheAnswer, Listing, ModuleArgs, OfflineCheck,
    OfflinePolicy, PamSettings, SERVICE_NAME,
};
use netauth_cache::clean::LocalAccounts;
use netauth_cache::trusted::{open_trusted, read_trusted, Owner, TrustRule};
use netauth_cache::{LazyCheck, CACHE_PATH};
use netauth_core::blocking::BlockingClient;
use netauth_core::client::ClientBuilder;
use netauth_core::config::{Config, TokenCacheKind};
use netauth_core::error::Error;
use netauth_core::secret::Secret as CoreSecret;
use netauth_offline::state::jitter;
use netauth_offline::{unix_now, StateFile, VerifierStore};

/// NetAuth as the PAM flows see it.
pub struct NetAuthBackend {
    client: BlockingClient,
    cache_path: PathBuf,
    /// `[unix.refresh] local_passwd`: the same local accounts the refresh
    /// refuses to shadow in NSS are left to the local modules here.
    local_passwd: PathBuf,
    offline: Offline,
}

/// The cached verifiers and the offline state, root's only.
struct Offline {
    /// The process runs as root: only then are the files used.
    root: bool,
    verifiers: VerifierStore,
    state: StateFile,
}

impl Offline {
    fn system() -> Offline {
        Offline {
            // SAFETY: geteuid has no preconditions and cannot fail.
            root: unsafe { libc::geteuid() } == 0,
            verifiers: VerifierStore::system(),
            state: StateFile::system(),
        }
    }

    /// Why no server is to be asked now, if the state says so.
    fn skip_reason(&self) -> Option<String> {
        if !self.root {
            return None;
        }
        let state = self.state.read().ok()?;
        let now = unix_now();
        state.is_offline(now).then(|| {
            format!(
                "no server asked: NetAuth offline for {} s (state file {}), next probe in {} s",
                now.saturating_sub(state.since),
                self.state.path().display(),
                state.until.saturating_sub(now)
            )
        })
    }

    /// Records what a call to the servers showed.
    fn note<T>(&self, result: &Result<T, BackendError>, client: &BlockingClient) {
        if !self.root {
            return;
        }
        let health = client.builder().health();
        let Ok(mut state) = self.state.read() else {
            return;
        };
        let changed = match result {
            Err(BackendError::Unavailable(_)) => {
                state.record_failure(unix_now(), &health.failures(), jitter());
                true
            }
            Err(BackendError::Misconfigured(_)) => false,
            _ => {
                let now = unix_now();
                let mut changed = false;
                for (server, text) in health.failures() {
                    state.note_error(&server, now, &text);
                    changed = true;
                }
                state.record_success(health.answered_by().as_deref()) || changed
            }
        };
        if changed {
            // A state that cannot be written costs a probe next time, no more.
            let _ = self.state.write(&state);
        }
    }
}

impl NetAuthBackend {
    /// Reads and validates the configuration named by the module arguments
    /// (the whole file: an unknown key or table anywhere under `[unix]` is
    /// an error too) and prepares (does not connect) the client. Every
    /// error names the file, the key and the line at fault.
    pub fn load(args: &ModuleArgs) -> Result<(PamSettings, NetAuthBackend), String> {
        let config = Config::load(&args.config).map_err(|e| e.to_string())?;
        let settings = PamSettings::from_config(&config);
        let local_passwd = config.unix.refresh.local_passwd.clone();
        if !config.pwn_me {
            // Checked now rather than at the first call, so that a missing
            // or untrusted certificate reads as a configuration error, not
            // an outage (and a FIFO there cannot hang the login).
            open_trusted(&config.certificate, &TrustRule::CERTIFICATE)
                .map_err(|e| format!("key tls.certificate: {e}"))?;
        }
        let offline = Offline::system();
        let mut builder = ClientBuilder::from_config(config)
            .service_name(SERVICE_NAME)
            // Never leave a user's token in a file behind.
            .token_cache_kind(TokenCacheKind::Memory);
        if let Some(timeout) = settings.request_timeout {
            builder = builder.request_timeout(timeout);
        }
        if let Some(timeout) = settings.connect_timeout {
            builder = builder.connect_timeout(timeout);
        }
        if offline.root {
            if let Some(server) = offline.state.read().ok().and_then(|s| s.last_good) {
                builder = builder.prefer_server(&server);
            }
        }
        let backend = NetAuthBackend {
            client: BlockingClient::new(builder),
            cache_path: PathBuf::from(CACHE_PATH),
            local_passwd,
            offline,
        };
        Ok((settings, backend))
    }
}

/// Sorts a client error into the classes the return-code contract needs.
fn classify(error: Error) -> BackendError {
    let text = error.to_string();
    if error.is_not_found() {
        BackendError::NotFound
    } else if error.is_unauthenticated() || error.is_permission_denied() {
        BackendError::Rejected(text)
    } else if error.is_server_unavailable() {
        BackendError::Unavailable(text)
    } else if error.is_config() {
        BackendError::Misconfigured(text)
    } else {
        BackendError::Failed(text)
    }
}

impl NetAuthBackend {
    /// A read call to the servers, unless the offline state says not to
    /// ask; its outcome is recorded in the state.
    fn read<T>(
        &mut self,
        call: impl FnOnce(&BlockingClient) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        if let Some(why) = self.offline.skip_reason() {
            return Err(BackendError::Unavailable(why));
        }
        let result = call(&self.client);
        self.offline.note(&result, &self.client);
        result
    }
}

impl Backend for NetAuthBackend {
    fn authenticate(&mut self, user: &str, secret: &str) -> Result<(), BackendError> {
        let secret = CoreSecret::new(secret);
        self.read(|client| client.auth_entity(user, &secret).map_err(classify))
    }

    fn account(&mut self, user: &str, with_groups: bool) -> Result<AccountInfo, BackendError> {
        self.read(|client| account_of(client, user, with_groups))
    }

    fn change_secret(&mut self, user: &str, old: &str, new: &str) -> Result<(), BackendError> {
        // The master: not one of the read servers the offline state is
        // about, so it is neither skipped nor recorded.
        let old = CoreSecret::new(old);
        let new = CoreSecret::new(new);
        self.client
            .change_secret(user, &old, &new)
            .map_err(classify)
    }

    fn cached_account(&mut self, user: &str) -> CacheAnswer {
        cached_account(&self.cache_path, user, SystemTime::now(), Owner::Root)
    }

    fn is_local_account(&mut self, user: &str) -> Result<bool, BackendError> {
        // Read for every call: the file is small and an admin's new local
        // account counts at once. Unreadable: fail closed as misconfigured.
        let text = read_trusted(&self.local_passwd, &TrustRule::LOCAL_ACCOUNTS).map_err(|e| {
            BackendError::Misconfigured(format!("key unix.refresh.local_passwd: {e}"))
        })?;
        let local = LocalAccounts::parse(&String::from_utf8_lossy(&text), "");
        Ok(local.user_names.contains(user))
    }

    fn has_verifier(&mut self, user: &str) -> bool {
        self.offline.root && matches!(self.offline.verifiers.info(user), Ok(Some(_)))
    }

    fn offline_check(&mut self, user: &str, secret: &str, policy: &OfflinePolicy) -> OfflineCheck {
        if !self.offline.root {
            return OfflineCheck::Unusable(
                "cached credentials are root's only, and this process is not root".to_owned(),
            );
        }
        self.offline
            .verifiers
            .check(user, secret, unix_now(), policy)
    }

    fn remember_secret(&mut self, user: &str, secret: &str) -> Result<(), String> {
        if !self.offline.root {
            return Ok(());
        }
        self.offline
            .verifiers
            .store(user, secret, unix_now())
            .map_err(|e| e.to_string())
    }

    fn forget_secret(&mut self, user: &str) -> Result<(), String> {
        // Said plainly, rather than as the permission error the attempt
        // would meet: the verifier stays until a root process deletes it.
        if !self.offline.root {
            return Err(
                "cached credentials are root's only, and this process is not root".to_owned(),
            );
        }
        self.offline
            .verifiers
            .forget(user)
            .map(drop)
            .map_err(|e| e.to_string())
    }
}

/// EntityInfo plus (when asked) EntityGroups, on one connection and one
/// runtime.
fn account_of(
    client: &BlockingClient,
    user: &str,
    with_groups: bool,
) -> Result<AccountInfo, BackendError> {
    client
        .run(|client| async move {
            let entity = client.entity_info(user).await?;
            let groups = if with_groups {
                client
                    .entity_groups(user)
                    .await?
                    .into_iter()
                    .map(|g| g.name)
                    .collect()
            } else {
                Vec::new()
            };
            Ok(AccountInfo {
                locked: entity.meta.locked,
                groups,
            })
        })
        .map_err(classify)
}

/// Whether the cache at its fixed path lists `user`: the module's test of
/// "a NetAuth user". Needs no configuration (the path is fixed, as for NSS).
pub fn cache_listing(user: &str) -> Listing {
    cache_listing_at(std::path::Path::new(CACHE_PATH), user, Owner::Root)
}

/// [`cache_listing`] for the file at `path` owned by `owner`; the same trust
/// checks as [`cached_account`], but the file is mapped, not read, and only
/// the blocks the look-up reads are checksummed (as NSS does): this runs for
/// every login, and a large cache is many megabytes.
pub(crate) fn cache_listing_at(path: &std::path::Path, user: &str, owner: Owner) -> Listing {
    let unusable =
        |e: &dyn std::fmt::Display| Listing::Unusable(format!("{}: {e}", path.display()));
    let map = match open_trusted(path, &TrustRule::CACHE.with_owner(owner)).and_then(|t| t.map()) {
        Ok(map) => map,
        Err(e) => return Listing::Unusable(e.to_string()),
    };
    let listed = LazyCheck::new(&map).and_then(|check| {
        check
            .view(&map)?
            .user_by_name(user.as_bytes())
            .map(|u| u.is_some())
    });
    match listed {
        Ok(true) => Listing::Listed,
        Ok(false) => Listing::NotListed,
        Err(e) => unusable(&e),
    }
}

/// How far ahead of the clock a cache's `generated_at` may be and still
/// count for offline decisions (clocks of two hosts differ a little).
const MAX_CACHE_AHEAD_S: u64 = 300;

/// Looks `user` up in the cache file at `path`. The groups are the names of
/// the user's cached effective-group gids (not the primary gid, which the
/// online check does not count either).
///
/// The file must pass [`TrustRule::CACHE`] with `owner` (root in the
/// module), as the NSS module requires: a regular file in a folder, both
/// owned by root and writable by nobody else. Whoever can write either could
/// otherwise admit any cached user while the server is down.
pub(crate) fn cached_account(
    path: &std::path::Path,
    user: &str,
    now: SystemTime,
    owner: Owner,
) -> CacheAnswer {
    // Mapped and checked as NSS checks it: the header now, then the blocks
    // this user's record and groups lie in. Reading and checking the whole
    // file would make an offline login read and checksum some 200 MB at a
    // million users.
    let map = match open_trusted(path, &TrustRule::CACHE.with_owner(owner)).and_then(|t| t.map()) {
        Ok(map) => map,
        Err(e) => return CacheAnswer::Unusable(e.to_string()),
    };
    let check = match LazyCheck::new(&map) {
        Ok(check) => check,
        Err(e) => return CacheAnswer::Unusable(format!("{}: {e}", path.display())),
    };
    let view = match check.view(&map) {
        Ok(view) => view,
        Err(e) => return CacheAnswer::Unusable(format!("{}: {e}", path.display())),
    };
    let record = match view.user_by_name(user.as_bytes()) {
        Ok(Some(record)) => record,
        Ok(None) => return CacheAnswer::Absent,
        Err(e) => return CacheAnswer::Unusable(format!("{}: {e}", path.display())),
    };
    let mut groups = Vec::new();
    for gid in record.groups.clone() {
        match view.group_by_gid(gid) {
            Ok(Some(group)) => groups.push(String::from_utf8_lossy(group.name).into_owned()),
            Ok(None) => {}
            Err(e) => return CacheAnswer::Unusable(format!("{}: {e}", path.display())),
        }
    }
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // A cache from the future would count as fresh however old it really
    // is (a clock stepped back, or a file dated ahead): beyond a little
    // clock skew it is not used. An unreadable time counts as ancient.
    let generated = u64::try_from(view.generated_at()).unwrap_or(0);
    let ahead = generated.saturating_sub(now_s);
    if ahead > MAX_CACHE_AHEAD_S {
        return CacheAnswer::Unusable(format!(
            "{}: written {ahead} s in the future (generated_at ahead of this host's clock by more than {MAX_CACHE_AHEAD_S} s)",
            path.display()
        ));
    }
    CacheAnswer::Present {
        locked: record.locked,
        groups,
        age: Duration::from_secs(now_s.saturating_sub(generated)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netauth_cache::{encode, CacheContent, UnixGroup, UnixUser};
    use std::collections::BTreeMap;

    fn user(name: &str, uid: u32, locked: bool) -> UnixUser {
        UnixUser {
            name: name.into(),
            uid,
            gid: 5000,
            gecos: String::new(),
            home: format!("/home/{name}"),
            shell: "/bin/sh".into(),
            locked,
        }
    }

    fn sample(generated_at: i64) -> Vec<u8> {
        let content = CacheContent {
            users: vec![user("alice", 2001, false), user("carol", 2003, true)],
            groups: vec![
                UnixGroup {
                    name: "users".into(),
                    gid: 5000,
                    members: vec![],
                },
                UnixGroup {
                    name: "admins".into(),
                    gid: 5001,
                    members: vec!["alice".into(), "carol".into()],
                },
            ],
            user_groups: BTreeMap::from([
                ("alice".to_string(), vec![5001]),
                ("carol".to_string(), vec![5001]),
            ]),
            user_keys: Default::default(),
            generated_at,
            source: "test".into(),
        };
        encode(&content).unwrap()
    }

    #[test]
    fn cache_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(matches!(
            cached_account(&path, "alice", now, ME),
            CacheAnswer::Unusable(_)
        ));
        write_0644(&path, &sample(1_000_000 - 30));
        assert_eq!(
            cached_account(&path, "alice", now, ME),
            CacheAnswer::Present {
                locked: false,
                groups: vec!["admins".into()],
                age: Duration::from_secs(30)
            }
        );
        assert!(matches!(
            cached_account(&path, "carol", now, ME),
            CacheAnswer::Present { locked: true, .. }
        ));
        assert_eq!(cached_account(&path, "zed", now, ME), CacheAnswer::Absent);
        // A damaged file is unusable, not "absent".
        let mut bytes = sample(1);
        if let Some(b) = bytes.last_mut() {
            *b ^= 0xff;
        }
        write_0644(&path, &bytes);
        assert!(matches!(
            cached_account(&path, "alice", now, ME),
            CacheAnswer::Unusable(_)
        ));
    }

    /// The file is mapped and only the blocks a user's answer lies in are
    /// checked, as NSS does: damage in another user's record leaves this
    /// user's answer alone, damage in this user's own record makes it
    /// unusable.
    #[test]
    fn cache_lookup_checks_the_blocks_of_its_user_only() {
        let users: Vec<UnixUser> = (0..20)
            .map(|i| UnixUser {
                // Longer than a block: every record has blocks of its own.
                gecos: "g".repeat(400),
                ..user(&format!("user{i:02}"), 3000 + i, false)
            })
            .collect();
        let content = CacheContent {
            users,
            groups: vec![UnixGroup {
                name: "users".into(),
                gid: 5000,
                members: vec![],
            }],
            user_groups: BTreeMap::new(),
            user_keys: Default::default(),
            generated_at: 1_000_000,
            source: "test".into(),
        };
        let mut bytes = encode(&content).unwrap();
        let at = netauth_test_support::offset_of(&bytes, b"/home/user17");
        bytes[at + 1] ^= 0x20;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        write_0644(&path, &bytes);
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert!(matches!(
            cached_account(&path, "user03", now, ME),
            CacheAnswer::Present { locked: false, .. }
        ));
        match cached_account(&path, "user17", now, ME) {
            CacheAnswer::Unusable(why) => assert!(why.contains("nss.cache"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cache_dated_in_the_future_is_unusable_beyond_a_little_skew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        write_0644(&path, &sample(1_000_000 + 240));
        assert!(matches!(
            cached_account(&path, "alice", now, ME),
            CacheAnswer::Present { age, .. } if age.is_zero()
        ));
        write_0644(&path, &sample(1_000_000 + 301));
        match cached_account(&path, "alice", now, ME) {
            CacheAnswer::Unusable(why) => assert!(why.contains("future"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Whether the cache lists a user does not depend on its date.
        assert_eq!(cache_listing_at(&path, "alice", ME), Listing::Listed);
    }

    #[test]
    fn cache_listing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        assert!(matches!(
            cache_listing_at(&path, "alice", ME),
            Listing::Unusable(why) if why.contains("nss.cache")
        ));
        write_0644(&path, &sample(1));
        assert_eq!(cache_listing_at(&path, "alice", ME), Listing::Listed);
        assert_eq!(cache_listing_at(&path, "carol", ME), Listing::Listed);
        assert_eq!(cache_listing_at(&path, "zed", ME), Listing::NotListed);
        assert_eq!(cache_listing_at(&path, "", ME), Listing::NotListed);
        // Not trusted, or damaged: unusable, not "not listed".
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            cache_listing_at(&path, "zed", ME),
            Listing::Unusable(_)
        ));
        write_0644(&path, b"NAUTHNSS garbage");
        assert!(matches!(
            cache_listing_at(&path, "zed", ME),
            Listing::Unusable(_)
        ));
    }

    /// Writes a cache file with the mode the refresh gives it, whatever the umask.
    fn write_0644(path: &std::path::Path, bytes: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    /// The owner rule the tests can meet whoever runs them (the module
    /// itself passes `Owner::Root`).
    const ME: Owner = Owner::RootOrCaller;

    fn me() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    #[test]
    fn cache_writable_by_others_or_owned_by_another_is_unusable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        write_0644(&path, &sample(1_000_000 - 30));
        assert!(matches!(
            cached_account(&path, "alice", now, ME),
            CacheAnswer::Present { .. }
        ));
        if me() == 0 {
            std::os::unix::fs::chown(&path, Some(1000), None).unwrap();
            for owner in [Owner::Root, ME] {
                assert!(matches!(
                    cached_account(&path, "alice", now, owner),
                    CacheAnswer::Unusable(why) if why.contains("owned by uid 1000")
                ));
            }
            std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        }
        for mode in [0o664, 0o646] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                cached_account(&path, "alice", now, ME),
                CacheAnswer::Unusable(_)
            ));
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        // A cache folder others may write: anybody could have swapped the
        // file, so it is unusable (naming the folder).
        for mode in [0o777, 0o775] {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                cached_account(&path, "alice", now, ME),
                CacheAnswer::Unusable(why)
                    if why.contains(&dir.path().display().to_string())
                        && why.contains(&format!("folder writable by group or others (mode {mode:04o})"))
            ));
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // A folder or a FIFO at the path: unusable, and no hang.
        assert!(matches!(
            cached_account(dir.path(), "alice", now, ME),
            CacheAnswer::Unusable(_)
        ));
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        assert!(matches!(
            cached_account(&fifo, "alice", now, ME),
            CacheAnswer::Unusable(_)
        ));
    }

    fn write_config(dir: &std::path::Path, body: &str) -> ModuleArgs {
        let path = dir.join("config.toml");
        std::fs::write(&path, body).unwrap();
        ModuleArgs::parse(&[format!("config={}", path.display())])
    }

    #[test]
    fn load_reports_configuration_problems() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = ModuleArgs::parse(&["config=/nonexistent/netauth/config.toml"]);
        let err = NetAuthBackend::load(&missing).err().unwrap();
        assert!(err.contains("/nonexistent/netauth/config.toml"), "{err}");

        let args = write_config(dir.path(), "[core]\nport = 1729\n");
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(err.contains("core.server"), "{err}");

        let args = write_config(
            dir.path(),
            "[core]\nserver = \"localhost\"\n[tls]\ncertificate = \"nope.pem\"\n",
        );
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(err.contains("tls.certificate"), "{err}");

        let args = write_config(
            dir.path(),
            "[core]\nserver = \"localhost\"\n[tls]\npwn_me = true\n[unix.pam]\nallow_group = [\"x\"]\n",
        );
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(err.contains("allow_group"), "{err}");

        let args = write_config(
            dir.path(),
            "[core]\nserver = \"localhost\"\n[tls]\npwn_me = true\n[unix.pam]\nallow_groups = [\"x\"]\n",
        );
        let (settings, _) = NetAuthBackend::load(&args).unwrap();
        assert_eq!(settings.allow_groups, vec!["x".to_string()]);
    }

    /// Whoever can write the config (or the certificate, or the local
    /// accounts file) could point PAM at their own server or hide a local
    /// account: such files are refused, naming the file and the reason.
    #[test]
    fn load_refuses_untrusted_config_certificate_and_local_accounts() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let chmod = |p: &std::path::Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.pem");
        std::fs::write(&cert, "not parsed until the first call").unwrap();
        chmod(&cert, 0o644);
        let passwd = dir.path().join("passwd");
        std::fs::write(
            &passwd,
            "root:x:0:0::/root:/bin/sh\nlocal:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        chmod(&passwd, 0o644);
        let body = format!(
            "[core]\nserver = \"localhost\"\n[tls]\ncertificate = \"{}\"\n\
             [unix.refresh]\nlocal_passwd = \"{}\"\n",
            cert.display(),
            passwd.display()
        );
        let args = write_config(dir.path(), &body);
        let config = dir.path().join("config.toml");
        chmod(&config, 0o644);
        let (_, mut backend) = NetAuthBackend::load(&args).unwrap();
        assert_eq!(backend.is_local_account("local"), Ok(true));

        chmod(&config, 0o666);
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(
            err.contains(&config.display().to_string())
                && err.contains("writable by group or others (mode 0666)"),
            "{err}"
        );
        chmod(&config, 0o644);
        if me() == 0 {
            std::os::unix::fs::chown(&config, Some(1000), None).unwrap();
            let err = NetAuthBackend::load(&args).err().unwrap();
            assert!(err.contains("owned by uid 1000"), "{err}");
            std::os::unix::fs::chown(&config, Some(0), None).unwrap();
        }

        chmod(&cert, 0o646);
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(
            err.contains("tls.certificate")
                && err.contains(&cert.display().to_string())
                && err.contains("writable by group or others (mode 0646)"),
            "{err}"
        );
        chmod(&cert, 0o644);
        std::fs::remove_file(&cert).unwrap();
        let c_fifo = std::ffi::CString::new(cert.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        let err = NetAuthBackend::load(&args).err().unwrap();
        assert!(err.contains("not a regular file (a FIFO)"), "{err}");

        chmod(&passwd, 0o666);
        match backend.is_local_account("local") {
            Err(BackendError::Misconfigured(why)) => assert!(
                why.contains("local_passwd")
                    && why.contains(&passwd.display().to_string())
                    && why.contains("writable by group or others"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
    }
}

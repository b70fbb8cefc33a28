//! The real backend: NetAuth through the core's blocking client (one
//! current-thread runtime per call, dropped before returning), and the
//! on-disk cache for offline account decisions.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{
    AccountInfo, Backend, BackendError, CacheAnswer, Listing, ModuleArgs, PamSection, PamSettings,
    SERVICE_NAME,
};
use crate::blocking::BlockingClient;
use crate::cache::{CacheView, LazyCheck, CACHE_PATH};
use crate::client::ClientBuilder;
use crate::config::{Config, TokenCacheKind};
use crate::error::Error;
use crate::refresh::clean::LocalAccounts;
use crate::refresh::RefreshSettings;
use crate::secret::Secret as CoreSecret;

/// NetAuth as the PAM flows see it.
pub struct NetAuthBackend {
    client: BlockingClient,
    cache_path: PathBuf,
    /// `[unix.refresh] local_passwd`: the same local accounts the refresh
    /// refuses to shadow in NSS are left to the local modules here.
    local_passwd: PathBuf,
}

impl NetAuthBackend {
    /// Reads the configuration named by the module arguments, validates our
    /// `[unix.pam]` table and prepares (does not connect) the client. Every
    /// error names the file and the key at fault.
    pub fn load(args: &ModuleArgs) -> Result<(PamSettings, NetAuthBackend), String> {
        let config = Config::load(&args.config).map_err(|e| e.to_string())?;
        let section: PamSection = config.section("unix.pam").map_err(|e| e.to_string())?;
        let settings = PamSettings::from_section(section)?;
        let local_passwd = RefreshSettings::from_config(&config)
            .map_err(|e| e.to_string())?
            .local_passwd;
        if !config.pwn_me {
            // Found now rather than at the first call, so that a missing
            // certificate reads as a configuration error, not an outage.
            std::fs::metadata(&config.certificate).map_err(|e| {
                format!(
                    "key tls.certificate: cannot read {}: {e}",
                    config.certificate.display()
                )
            })?;
        }
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
        let backend = NetAuthBackend {
            client: BlockingClient::new(builder),
            cache_path: PathBuf::from(CACHE_PATH),
            local_passwd,
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

impl Backend for NetAuthBackend {
    fn authenticate(&mut self, user: &str, secret: &str) -> Result<(), BackendError> {
        let secret = CoreSecret::new(secret);
        self.client.auth_entity(user, &secret).map_err(classify)
    }

    fn account(&mut self, user: &str, with_groups: bool) -> Result<AccountInfo, BackendError> {
        // Both calls on one connection and one runtime.
        self.client
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

    fn change_secret(&mut self, user: &str, old: &str, new: &str) -> Result<(), BackendError> {
        let old = CoreSecret::new(old);
        let new = CoreSecret::new(new);
        self.client
            .change_secret(user, &old, &new)
            .map_err(classify)
    }

    fn cached_account(&mut self, user: &str) -> CacheAnswer {
        cached_account(&self.cache_path, user, SystemTime::now(), 0)
    }

    fn is_local_account(&mut self, user: &str) -> Result<bool, BackendError> {
        // Read for every call: the file is small and an admin's new local
        // account counts at once. Unreadable: fail closed as misconfigured.
        let text = std::fs::read(&self.local_passwd).map_err(|e| {
            BackendError::Misconfigured(format!(
                "key unix.refresh.local_passwd: cannot read {}: {e}",
                self.local_passwd.display()
            ))
        })?;
        let local = LocalAccounts::parse(&String::from_utf8_lossy(&text), "");
        Ok(local.user_names.contains(user))
    }
}

/// Whether the cache at its fixed path lists `user`: the module's test of
/// "a NetAuth user". Needs no configuration (the path is fixed, as for NSS).
pub fn cache_listing(user: &str) -> Listing {
    cache_listing_at(std::path::Path::new(CACHE_PATH), user, 0)
}

/// [`cache_listing`] for the file at `path` owned by `owner`; the same trust
/// checks as [`cached_account`], but only the blocks the look-up reads are
/// checksummed (as NSS does), not the whole file.
pub(crate) fn cache_listing_at(path: &std::path::Path, user: &str, owner: u32) -> Listing {
    let unusable =
        |e: &dyn std::fmt::Display| Listing::Unusable(format!("{}: {e}", path.display()));
    let bytes = match read_trusted(path, owner) {
        Ok(bytes) => bytes,
        Err(e) => return unusable(&e),
    };
    let listed = LazyCheck::new(&bytes).and_then(|check| {
        check
            .view(&bytes)?
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
/// The file must be a regular file owned by `owner` (root in the module)
/// and writable by nobody else, as the NSS module requires: whoever can
/// write it could otherwise admit any cached user while the server is down.
pub(crate) fn cached_account(
    path: &std::path::Path,
    user: &str,
    now: SystemTime,
    owner: u32,
) -> CacheAnswer {
    let bytes = match read_trusted(path, owner) {
        Ok(bytes) => bytes,
        Err(e) => return CacheAnswer::Unusable(format!("{}: {e}", path.display())),
    };
    let view = match CacheView::parse(&bytes) {
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

/// Reads the file at `path` if it is a regular file owned by `owner` that
/// neither group nor others may write (checked on the open file).
fn read_trusted(path: &std::path::Path, owner: u32) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    // O_NONBLOCK: a FIFO planted at the path must not hang the login.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.uid() != owner || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "not a regular file owned by uid {owner} and writable only by it; not trusted"
        )));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{encode, CacheContent, UnixGroup, UnixUser};
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
            cached_account(&path, "alice", now, me()),
            CacheAnswer::Unusable(_)
        ));
        write_0644(&path, &sample(1_000_000 - 30));
        assert_eq!(
            cached_account(&path, "alice", now, me()),
            CacheAnswer::Present {
                locked: false,
                groups: vec!["admins".into()],
                age: Duration::from_secs(30)
            }
        );
        assert!(matches!(
            cached_account(&path, "carol", now, me()),
            CacheAnswer::Present { locked: true, .. }
        ));
        assert_eq!(cached_account(&path, "zed", now, me()), CacheAnswer::Absent);
        // A damaged file is unusable, not "absent".
        let mut bytes = sample(1);
        if let Some(b) = bytes.last_mut() {
            *b ^= 0xff;
        }
        write_0644(&path, &bytes);
        assert!(matches!(
            cached_account(&path, "alice", now, me()),
            CacheAnswer::Unusable(_)
        ));
    }

    #[test]
    fn cache_dated_in_the_future_is_unusable_beyond_a_little_skew() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        write_0644(&path, &sample(1_000_000 + 240));
        assert!(matches!(
            cached_account(&path, "alice", now, me()),
            CacheAnswer::Present { age, .. } if age.is_zero()
        ));
        write_0644(&path, &sample(1_000_000 + 301));
        match cached_account(&path, "alice", now, me()) {
            CacheAnswer::Unusable(why) => assert!(why.contains("future"), "{why}"),
            other => panic!("{other:?}"),
        }
        // Whether the cache lists a user does not depend on its date.
        assert_eq!(cache_listing_at(&path, "alice", me()), Listing::Listed);
    }

    #[test]
    fn cache_listing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        assert!(matches!(
            cache_listing_at(&path, "alice", me()),
            Listing::Unusable(why) if why.contains("nss.cache")
        ));
        write_0644(&path, &sample(1));
        assert_eq!(cache_listing_at(&path, "alice", me()), Listing::Listed);
        assert_eq!(cache_listing_at(&path, "carol", me()), Listing::Listed);
        assert_eq!(cache_listing_at(&path, "zed", me()), Listing::NotListed);
        assert_eq!(cache_listing_at(&path, "", me()), Listing::NotListed);
        // Not trusted, or damaged: unusable, not "not listed".
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(matches!(
            cache_listing_at(&path, "zed", me()),
            Listing::Unusable(_)
        ));
        write_0644(&path, b"NAUTHNSS garbage");
        assert!(matches!(
            cache_listing_at(&path, "zed", me()),
            Listing::Unusable(_)
        ));
    }

    /// Writes a cache file with the mode the refresh gives it, whatever the umask.
    fn write_0644(path: &std::path::Path, bytes: &[u8]) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

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
            cached_account(&path, "alice", now, me()),
            CacheAnswer::Present { .. }
        ));
        assert!(matches!(
            cached_account(&path, "alice", now, me().wrapping_add(1)),
            CacheAnswer::Unusable(_)
        ));
        for mode in [0o664, 0o646] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(matches!(
                cached_account(&path, "alice", now, me()),
                CacheAnswer::Unusable(_)
            ));
        }
        // A folder or a FIFO at the path: unusable, and no hang.
        assert!(matches!(
            cached_account(dir.path(), "alice", now, me()),
            CacheAnswer::Unusable(_)
        ));
        let fifo = dir.path().join("fifo");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        assert!(matches!(
            cached_account(&fifo, "alice", now, me()),
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
}

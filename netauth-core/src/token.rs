//! Token caches: where a client keeps the token it got for its entity.
//!
//! [`FsTokenCache`] is compatible with NetAuth's own tools: the token for
//! entity `E` is the whole content of `<temp dir>/E.nt`, mode 0600. The temp
//! dir is usually shared (`/tmp`), so the cache refuses entity names that
//! would leave the folder, never follows a link planted at `E.nt`, and only
//! reads regular files owned by the current user in a folder that is not
//! writable by others (or is sticky, like `/tmp`): see
//! [`TrustRule::TOKEN`].

use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::secret::Token;
use netauth_cache::trusted::{check_dir, read_trusted, TrustRule};

/// Somewhere to keep tokens between calls.
pub trait TokenCache: Send + Sync + fmt::Debug {
    /// The cached token for `entity`, if any.
    fn get(&self, entity: &str) -> Result<Option<Token>>;
    /// Stores `token` for `entity`, replacing any previous one.
    fn put(&self, entity: &str, token: &Token) -> Result<()>;
    /// Forgets the token for `entity` (no error if there was none).
    fn remove(&self, entity: &str) -> Result<()>;
}

/// Tokens kept in process memory.
#[derive(Debug, Default)]
pub struct MemoryTokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl MemoryTokenCache {
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Token>> {
        // A panic elsewhere while holding the lock leaves a usable map.
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl TokenCache for MemoryTokenCache {
    fn get(&self, entity: &str) -> Result<Option<Token>> {
        Ok(self.map().get(entity).cloned())
    }

    fn put(&self, entity: &str, token: &Token) -> Result<()> {
        self.map().insert(entity.to_owned(), token.clone());
        Ok(())
    }

    fn remove(&self, entity: &str) -> Result<()> {
        self.map().remove(entity);
        Ok(())
    }
}

/// NetAuth-compatible file cache: `<dir>/<entity>.nt`.
#[derive(Debug, Clone)]
pub struct FsTokenCache {
    dir: PathBuf,
}

impl Default for FsTokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl FsTokenCache {
    /// The cache NetAuth's tools use: the system temp dir.
    pub fn new() -> Self {
        FsTokenCache {
            dir: std::env::temp_dir(),
        }
    }

    /// A cache in another folder (tests, private dirs).
    pub fn with_dir(dir: impl Into<PathBuf>) -> Self {
        FsTokenCache { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `entity`'s token. Refuses names that would leave
    /// the folder or cannot be a file name.
    pub fn path_for(&self, entity: &str) -> Result<PathBuf> {
        check_entity_name(entity)?;
        Ok(self.dir.join(format!("{entity}.nt")))
    }
}

fn check_entity_name(entity: &str) -> Result<()> {
    let reason = if entity.is_empty() {
        Some("empty")
    } else if entity == "." || entity == ".." {
        Some("a path component")
    } else if entity.contains('/') {
        Some("contains '/'")
    } else if entity.contains('\0') {
        Some("contains NUL")
    } else if entity.len() > 250 {
        Some("too long for a file name")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidArgument(format!(
            "entity name {:?} cannot name a token file: {reason}",
            entity.escape_debug().to_string()
        ))),
        None => Ok(()),
    }
}

fn cache_error(path: &Path, what: &str, e: impl fmt::Display) -> Error {
    Error::TokenCache {
        detail: format!("{what} {}: {e}", path.display()),
    }
}

impl TokenCache for FsTokenCache {
    /// The file must pass [`TrustRule::TOKEN`]: a regular file of at most
    /// 64 KiB owned by the caller (or root), that nobody else may write, in
    /// a folder that is the caller's (or root's) and not writable by others
    /// unless sticky (like `/tmp`). A link, a FIFO, a file of another user
    /// or one others may write is an error naming the file and the reason
    /// (the client logs it and fetches a fresh token); no file is `None`.
    fn get(&self, entity: &str) -> Result<Option<Token>> {
        let path = self.path_for(entity)?;
        let bytes = match read_trusted(&path, &TrustRule::TOKEN) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(Error::TokenCache {
                    detail: format!("not using {}: {}", path.display(), e.describe_for(&path)),
                })
            }
        };
        let text = String::from_utf8(bytes).map_err(|e| cache_error(&path, "cannot read", e))?;
        let token = Token::new(text);
        Ok((!token.is_empty()).then_some(token))
    }

    /// Writes a new file in the same folder and renames it over `E.nt`, so
    /// a link planted at `E.nt` is replaced, never written through.
    fn put(&self, entity: &str, token: &Token) -> Result<()> {
        let path = self.path_for(entity)?;
        check_dir(&self.dir, &TrustRule::TOKEN).map_err(|e| Error::TokenCache {
            detail: format!("not writing a token: {e}"),
        })?;
        let mut temp = tempfile::Builder::new()
            .prefix(".netauth-token-")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.dir)
            .map_err(|e| cache_error(&self.dir, "cannot create a file in", e))?;
        write_all_sync(temp.as_file_mut(), token.expose().as_bytes())
            .map_err(|e| cache_error(temp.path(), "cannot write", e))?;
        temp.persist(&path)
            .map_err(|e| cache_error(&path, "cannot replace", e.error))?;
        Ok(())
    }

    fn remove(&self, entity: &str) -> Result<()> {
        let path = self.path_for(entity)?;
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cache_error(&path, "cannot remove", e)),
        }
    }
}

fn write_all_sync(file: &mut File, bytes: &[u8]) -> io::Result<()> {
    // Group/other bits can only be narrowed by the umask; make sure.
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn current_uid() -> u32 {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() }
    }

    #[test]
    fn memory_cache_stores_replaces_and_forgets() {
        let cache = MemoryTokenCache::new();
        assert_eq!(cache.get("alice").unwrap(), None);
        cache.put("alice", &Token::new("t1")).unwrap();
        cache.put("alice", &Token::new("t2")).unwrap();
        assert_eq!(cache.get("alice").unwrap().unwrap().expose(), "t2");
        assert_eq!(cache.get("bob").unwrap(), None);
        cache.remove("alice").unwrap();
        cache.remove("alice").unwrap();
        assert_eq!(cache.get("alice").unwrap(), None);
        assert!(!format!("{cache:?}").contains("t2"));
    }

    #[test]
    fn fs_cache_writes_netauth_format_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FsTokenCache::with_dir(dir.path());
        assert_eq!(cache.get("alice").unwrap(), None);
        cache
            .put("alice", &Token::new("header.payload.sig"))
            .unwrap();
        let path = dir.path().join("alice.nt");
        assert_eq!(fs::read_to_string(&path).unwrap(), "header.payload.sig");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            cache.get("alice").unwrap().unwrap().expose(),
            "header.payload.sig"
        );

        cache.put("alice", &Token::new("second")).unwrap();
        assert_eq!(cache.get("alice").unwrap().unwrap().expose(), "second");
        // Nothing but the token file is left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("alice.nt")]);

        cache.remove("alice").unwrap();
        assert!(!path.exists());
        cache.remove("alice").unwrap();
    }

    #[test]
    fn fs_cache_reads_a_token_written_by_netauth_tools() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("svc.nt");
        fs::write(&path, "abc.def.ghi").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let cache = FsTokenCache::with_dir(dir.path());
        assert_eq!(cache.get("svc").unwrap().unwrap().expose(), "abc.def.ghi");
    }

    #[test]
    fn fs_cache_never_follows_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("victim");
        fs::write(&target, "precious").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("alice.nt");
        symlink(&target, &link).unwrap();

        let cache = FsTokenCache::with_dir(dir.path());
        // Reading through the link is refused (the victim's content is not a token).
        let e = cache.get("alice").unwrap_err().to_string();
        assert!(e.contains("alice.nt") && e.contains("symbolic link"), "{e}");
        // Writing replaces the link itself; the target is untouched.
        cache.put("alice", &Token::new("tok")).unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
        let meta = fs::symlink_metadata(&link).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(fs::read_to_string(&link).unwrap(), "tok");
        // Removing a planted link removes the link, not the target.
        fs::remove_file(&link).unwrap();
        symlink(&target, &link).unwrap();
        cache.remove("alice").unwrap();
        assert_eq!(fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn fs_cache_refuses_files_it_should_not_trust() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FsTokenCache::with_dir(dir.path());
        let refused = |entity: &str, needle: &str| {
            let e = cache.get(entity).unwrap_err().to_string();
            assert!(e.contains(&format!("{entity}.nt")), "{e}");
            assert!(e.contains(needle), "{needle}: {e}");
        };
        // World-writable: someone else could have put anything there.
        let path = dir.path().join("alice.nt");
        fs::write(&path, "planted").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
        refused("alice", "writable by group or others (mode 0666)");
        // A directory (or FIFO) at the token path is not a token.
        fs::create_dir(dir.path().join("bob.nt")).unwrap();
        refused("bob", "not a regular file (a folder)");
        let fifo = dir.path().join("carol.nt");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: c_path is a valid NUL-terminated path for the duration of the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        refused("carol", "not a regular file (a FIFO)");
        // Owned by another user (checkable when the tests run as root).
        if current_uid() == 0 {
            let theirs = dir.path().join("erin.nt");
            fs::write(&theirs, "planted").unwrap();
            fs::set_permissions(&theirs, fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            refused("erin", "owned by uid 65534");
        }
        // Empty file: no token.
        let empty = dir.path().join("dave.nt");
        fs::write(&empty, "").unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(cache.get("dave").unwrap(), None);
    }

    /// In a folder others may write (and that is not sticky), anybody could
    /// swap the file after we wrote it: neither read nor written. A sticky
    /// folder like /tmp is fine.
    #[test]
    fn fs_cache_refuses_a_folder_others_may_write_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FsTokenCache::with_dir(dir.path());
        cache.put("alice", &Token::new("tok")).unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let e = cache.get("alice").unwrap_err().to_string();
        assert!(
            e.contains("folder writable by group or others (mode 0777)"),
            "{e}"
        );
        let e = cache
            .put("alice", &Token::new("tok2"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("folder writable by group or others"), "{e}");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(cache.get("alice").unwrap().unwrap().expose(), "tok");
        cache.put("alice", &Token::new("tok2")).unwrap();
        assert_eq!(cache.get("alice").unwrap().unwrap().expose(), "tok2");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    }

    #[test]
    fn fs_cache_rejects_hostile_names() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FsTokenCache::with_dir(dir.path());
        let long = "x".repeat(300);
        for name in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "/abs",
            "nul\0byte",
            long.as_str(),
        ] {
            assert!(
                matches!(cache.path_for(name), Err(Error::InvalidArgument(_))),
                "{name:?}"
            );
            assert!(cache.get(name).is_err(), "{name:?}");
            assert!(cache.put(name, &Token::new("t")).is_err(), "{name:?}");
            assert!(cache.remove(name).is_err(), "{name:?}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        // Dots inside a name are fine: the suffix keeps it in the folder.
        assert_eq!(cache.path_for("a.b").unwrap(), dir.path().join("a.b.nt"));
    }

    #[test]
    fn fs_cache_default_dir_is_the_temp_dir() {
        assert_eq!(FsTokenCache::new().dir(), std::env::temp_dir());
        assert_eq!(
            FsTokenCache::new().path_for("alice").unwrap(),
            std::env::temp_dir().join("alice.nt")
        );
    }
}

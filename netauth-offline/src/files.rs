//! The private folder and its files: trusted reads, atomic 0600 writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netauth_cache::trusted::{
    check_dir, create_dir_private, open_trusted, set_exact_mode, FolderRule, Owner, TrustError,
    TrustRule,
};

/// Mode of the folder.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in it.
pub const FILE_MODE: u32 = 0o600;
/// Largest file read from the folder (a record is a few hundred bytes).
pub const MAX_FILE_BYTES: u64 = 64 * 1024;

/// Why a file of the folder cannot be used. The text names the file and
/// the reason, never its content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Trust(#[from] TrustError),
    #[error("{}: {what} (mode {mode:04o}): it holds secrets, only its owner may have any access", path.display())]
    NotPrivate {
        path: PathBuf,
        what: &'static str,
        mode: u32,
    },
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    #[error("{}: damaged: {why}", path.display())]
    Damaged { path: PathBuf, why: String },
    #[error("{}: busy: another process held the lock for more than {} ms", path.display(), waited.as_millis())]
    Busy { path: PathBuf, waited: Duration },
    #[error("{0}")]
    Crypto(String),
}

impl StoreError {
    /// The file (or folder) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            StoreError::Trust(e) => e.is_not_found(),
            StoreError::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// The folder holding the files, with the owner rule (root in the module;
/// root or the caller in unit tests).
#[derive(Clone, Debug)]
pub struct PrivateDir {
    pub path: PathBuf,
    pub owner: Owner,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// How often a lock held by another process is tried again.
const LOCK_POLL: Duration = Duration::from_millis(5);
/// Longest wait [`PrivateDir::lock`] accepts: a login must not hang.
const MAX_LOCK_WAIT: Duration = Duration::from_secs(60);

/// An exclusive `flock` on a lock file of the folder, released when
/// dropped (and by the kernel if the process dies). The descriptor is
/// close-on-exec: a program the host process starts does not inherit it.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    path: PathBuf,
}

impl FileLock {
    /// Removes the lock file, still holding the lock, then releases it: for
    /// a lock whose record is gone. A process waiting on the removed file
    /// sees it is no longer the one at the path and locks the new one.
    pub fn remove(self) -> Result<(), StoreError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                path: self.path.clone(),
                action: "remove",
                source,
            }),
        }
    }
}

impl PrivateDir {
    pub fn new(path: impl Into<PathBuf>, owner: Owner) -> PrivateDir {
        PrivateDir {
            path: path.into(),
            owner,
        }
    }

    fn rule(&self) -> TrustRule {
        TrustRule {
            max_size: MAX_FILE_BYTES,
            owner: self.owner,
            folder: FolderRule::Private,
            follow_links: false,
        }
    }

    /// The folder passes the folder rule and has no group or other bits.
    pub fn check(&self) -> Result<(), StoreError> {
        check_dir(&self.path, &self.rule())?;
        let meta = std::fs::symlink_metadata(&self.path).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            action: "inspect",
            source,
        })?;
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::NotPrivate {
                path: self.path.clone(),
                what: "folder open to group or others",
                mode,
            });
        }
        Ok(())
    }

    /// Creates the folder (0700) when missing, then [`PrivateDir::check`].
    /// A missing parent (`/var/lib/netauth` before the first refresh) is
    /// made 0755, as the refresh makes it: the NSS cache there is for all.
    pub fn ensure(&self) -> Result<(), StoreError> {
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir_private(parent, 0o755, self.owner)?;
        }
        create_dir_private(&self.path, DIR_MODE, self.owner)?;
        self.check()
    }

    /// The whole content of `name`, if the folder and the file are trusted.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        self.check()?;
        let path = self.path.join(name);
        let file = open_trusted(&path, &self.rule())?;
        let mode = file.metadata().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::NotPrivate {
                path,
                what: "file open to group or others",
                mode,
            });
        }
        Ok(file.read_all()?)
    }

    /// Installs `bytes` as `name` atomically with mode 0600; with
    /// `exclusive`, fails with `AlreadyExists` instead of replacing a file
    /// that is there (a hard link instead of a rename).
    pub fn write(&self, name: &str, bytes: &[u8], exclusive: bool) -> Result<(), StoreError> {
        self.ensure()?;
        let target = self.path.join(name);
        let tmp = self.path.join(format!(
            ".{name}.tmp.{}.{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let io_error = |action, source| StoreError::Io {
            path: target.clone(),
            action,
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(|e| io_error("create a temporary file for", e))?;
        let result = (|| {
            set_exact_mode(&file, &tmp, FILE_MODE, self.owner)?;
            file.write_all(bytes).map_err(|e| io_error("write", e))?;
            file.sync_all().map_err(|e| io_error("sync", e))?;
            if exclusive {
                std::fs::hard_link(&tmp, &target).map_err(|e| io_error("install", e))?;
            } else {
                std::fs::rename(&tmp, &target).map_err(|e| io_error("install", e))?;
            }
            std::fs::File::open(&self.path)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| io_error("sync the folder of", e))
        })();
        // After a rename this finds nothing; after a link it drops the
        // second name.
        let _ = std::fs::remove_file(&tmp);
        result
    }

    /// Removes `name`; a missing file is fine.
    pub fn remove(&self, name: &str) -> Result<(), StoreError> {
        let path = self.path.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io {
                path,
                action: "remove",
                source,
            }),
        }
    }

    /// Names of the files in the folder that start with `prefix` (not the
    /// temporary files).
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        let entries = std::fs::read_dir(&self.path).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            action: "list",
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str() {
                if name.starts_with(prefix) {
                    names.push(name.to_owned());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    /// Takes the exclusive lock on the lock file `name` (created empty,
    /// mode 0600, when missing), waiting at most `wait` (a minute at most) for another
    /// process to release it: then [`StoreError::Busy`]. The caller runs
    /// inside sshd or login, so it never blocks in the kernel: it polls.
    pub fn lock(&self, name: &str, wait: Duration) -> Result<FileLock, StoreError> {
        self.check()?;
        let path = self.path.join(name);
        let io_error = |action, source| StoreError::Io {
            path: path.clone(),
            action,
            source,
        };
        let wait = wait.min(MAX_LOCK_WAIT);
        let deadline = Instant::now() + wait;
        loop {
            // O_NOFOLLOW: no planted link makes root create or open what it
            // points to; O_NONBLOCK: nor may a FIFO hang the login.
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(FILE_MODE)
                .custom_flags(
                    libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY,
                )
                .open(&path)
                .map_err(|e| {
                    if e.raw_os_error() == Some(libc::ELOOP) {
                        StoreError::Trust(TrustError::Link { path: path.clone() })
                    } else {
                        io_error("open the lock file", e)
                    }
                })?;
            set_exact_mode(&file, &path, FILE_MODE, self.owner)?;
            loop {
                // SAFETY: flock only reads the descriptor number, which
                // `file` keeps open for the call; no memory is shared.
                let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                if rc == 0 {
                    break;
                }
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::WouldBlock {
                    return Err(io_error("lock", err));
                }
                let now = Instant::now();
                if now >= deadline {
                    return Err(StoreError::Busy { path, waited: wait });
                }
                std::thread::sleep(LOCK_POLL.min(deadline - now));
            }
            // The holder may have removed the file (its record went) before
            // releasing it: a lock on that one protects nothing any more.
            let held = file.metadata().map_err(|e| io_error("inspect", e))?;
            match std::fs::symlink_metadata(&path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(FileLock { _file: file, path });
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("inspect", e)),
            }
            if Instant::now() >= deadline {
                return Err(StoreError::Busy { path, waited: wait });
            }
        }
    }

    pub fn file_path(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Bytes of a hex string, or `None`.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// The value of the first `key=value` line of a record.
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Whether `path`'s folder exists at all (to tell "nothing cached yet" from
/// "cannot read").
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

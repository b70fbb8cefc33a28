//! The private folder and its files: trusted reads, atomic 0600 writes.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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

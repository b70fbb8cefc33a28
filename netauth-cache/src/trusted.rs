//! Opening a file that someone else may have planted, replaced or changed.
//!
//! Every file the modules and the refresh read goes through
//! [`open_trusted`] (or [`read_trusted`]) with a [`TrustRule`]:
//!
//! * **Opened without blocking and without following a link**:
//!   `O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC`, so a FIFO
//!   planted at the path cannot hang a login or a lookup and a link cannot
//!   send us to a file of the planter's choosing. A rule may allow links
//!   ([`TrustRule::follow_links`]): each link is then followed by hand, and
//!   only when it lives in a folder that passes the folder check, which is
//!   repeated for the folder of every hop (at most [`MAX_LINK_HOPS`]).
//! * **Checked on the opened descriptor** (`fstat`, so nothing can be
//!   swapped in between the check and the read): a regular file (not a
//!   FIFO, device, socket or folder), owned as the rule says ([`Owner`]),
//!   not writable by group or others (`mode & 0o022 == 0`), at most
//!   [`TrustRule::max_size`] bytes.
//! * **Its folder checked too** ([`FolderRule`]): the folder is opened
//!   first, checked with `fstat` (owned as the rule says, not writable by
//!   group or others, or sticky like `/tmp` where allowed) and the file is
//!   opened relative to that very folder (`openat`), so whoever can write the
//!   folder (and so replace the file at will) cannot be trusted either. Only
//!   the containing folder is checked, not every folder above it.
//! * **Read with a cap**: at most `max_size + 1` bytes are ever read, so a
//!   file that grows after the check (or a file whose size `stat` does not
//!   tell, like those of `/proc`) is refused instead of filling memory.
//!
//! A refused file gives a [`TrustError`] whose text names the file (or
//! folder) at fault and the reason, for example
//! `/etc/netauth/config.toml: writable by group or others (mode 0666)`.
//!
//! # The rules and their size caps
//!
//! | file | rule | cap | owner | folder | links |
//! |---|---|---|---|---|---|
//! | `config.toml` | [`TrustRule::CONFIG`] | 1 MiB | root | checked | followed through checked folders |
//! | `tls.certificate` | [`TrustRule::CERTIFICATE`] | 1 MiB | root | checked | followed through checked folders |
//! | `/etc/passwd`, `/etc/group`, `/etc/shells` | [`TrustRule::LOCAL_ACCOUNTS`] | 64 MiB | root | checked | followed through checked folders |
//! | the NSS cache | [`TrustRule::CACHE`] | 4 GiB (the format's own bound) | root | checked | refused |
//! | the refresh's status file | [`TrustRule::REFRESH_STATE`] | 1 MiB | root | checked | refused |
//! | a token file (`<temp dir>/E.nt`) | [`TrustRule::TOKEN`] | 64 KiB | root or the caller | checked, sticky allowed | refused |
//!
//! "The caller" is the process's effective uid, for files only that user's
//! own processes read. Files every process trusts (the config a setuid
//! program's PAM stack reads, the cache every process's lookups use) must
//! belong to root.
//!
//! This module uses only `std` and `libc`: it is part of the network-free
//! cache code that the NSS module links.

use std::ffi::CString;
use std::fmt;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Links followed at most when a rule follows links.
pub const MAX_LINK_HOPS: u32 = 8;

const MIB: u64 = 1024 * 1024;

/// Who may own a trusted file (and its folder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// uid 0 only.
    Root,
    /// uid 0 or this process's effective uid (at the time of the check).
    RootOrCaller,
}

impl Owner {
    fn allows(self, uid: u32) -> bool {
        uid == 0 || (self == Owner::RootOrCaller && uid == effective_uid())
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Root => f.write_str("root"),
            Owner::RootOrCaller => write!(f, "root or uid {}", effective_uid()),
        }
    }
}

/// What the folder holding a trusted file must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FolderRule {
    /// Not checked.
    Unchecked,
    /// Owned as the file's [`Owner`] says and not writable by group or
    /// others: nobody else can replace the file.
    Private,
    /// As [`FolderRule::Private`], but a sticky folder (like `/tmp`) that
    /// everybody may write is accepted too: there nobody but the owner of a
    /// file (or of the folder) can rename or remove it.
    PrivateOrSticky,
}

/// What makes a file trusted; see the [module documentation](self).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustRule {
    /// Largest size accepted, in bytes.
    pub max_size: u64,
    /// Who may own the file and its folder.
    pub owner: Owner,
    /// What the folder holding the file must be.
    pub folder: FolderRule,
    /// Follow a symbolic link at the path (and at its targets) when the
    /// link lives in a folder that passes the folder rule. Without it (or
    /// with [`FolderRule::Unchecked`]) a link is refused.
    pub follow_links: bool,
}

impl TrustRule {
    /// NetAuth's `config.toml`.
    pub const CONFIG: TrustRule = TrustRule {
        max_size: MIB,
        owner: Owner::Root,
        folder: FolderRule::Private,
        follow_links: true,
    };
    /// The PEM file `tls.certificate` names.
    pub const CERTIFICATE: TrustRule = TrustRule {
        max_size: MIB,
        owner: Owner::Root,
        folder: FolderRule::Private,
        follow_links: true,
    };
    /// `/etc/passwd`, `/etc/group` and `/etc/shells` (or the files
    /// `[unix.refresh]` names instead).
    pub const LOCAL_ACCOUNTS: TrustRule = TrustRule {
        max_size: 64 * MIB,
        owner: Owner::Root,
        folder: FolderRule::Private,
        follow_links: true,
    };
    /// The NSS cache: its 32-bit offsets bound it to 4 GiB.
    pub const CACHE: TrustRule = TrustRule {
        max_size: u32::MAX as u64,
        owner: Owner::Root,
        folder: FolderRule::Private,
        follow_links: false,
    };
    /// The refresh's status file next to the cache.
    pub const REFRESH_STATE: TrustRule = TrustRule {
        max_size: MIB,
        owner: Owner::Root,
        folder: FolderRule::Private,
        follow_links: false,
    };
    /// A NetAuth token file in the (usually shared, sticky) temp folder.
    pub const TOKEN: TrustRule = TrustRule {
        max_size: 64 * 1024,
        owner: Owner::RootOrCaller,
        folder: FolderRule::PrivateOrSticky,
        follow_links: false,
    };

    /// This rule with another owner rule (tests, tools).
    pub const fn with_owner(self, owner: Owner) -> TrustRule {
        TrustRule { owner, ..self }
    }
}

/// Why a file (or its folder) is not trusted.
#[derive(Debug)]
pub enum TrustError {
    /// The file or folder could not be opened, inspected or read.
    Io {
        path: PathBuf,
        action: &'static str,
        source: io::Error,
    },
    /// A symbolic link where the rule follows none.
    Link { path: PathBuf },
    /// More than [`MAX_LINK_HOPS`] links, or a loop.
    TooManyLinks { path: PathBuf },
    /// Not a regular file: a FIFO, a device, a socket, a folder.
    NotRegular { path: PathBuf, kind: &'static str },
    /// The folder path does not name a folder.
    NotFolder { path: PathBuf },
    /// Owned by a uid the rule does not allow.
    Owner {
        path: PathBuf,
        folder: bool,
        uid: u32,
        allowed: Owner,
    },
    /// Writable by group or others (`mode` is the permission bits).
    Writable {
        path: PathBuf,
        folder: bool,
        mode: u32,
    },
    /// Larger than the rule's cap; `size` is `None` when the file grew while
    /// being read (or `stat` did not tell its size).
    TooLarge {
        path: PathBuf,
        max: u64,
        size: Option<u64>,
    },
    /// The path names no file (empty, `/`, ends in `..`).
    NotAFilePath { path: PathBuf },
}

impl TrustError {
    /// The file or folder at fault (for a followed link, maybe not the path
    /// asked for).
    pub fn path(&self) -> &Path {
        match self {
            TrustError::Io { path, .. }
            | TrustError::Link { path }
            | TrustError::TooManyLinks { path }
            | TrustError::NotRegular { path, .. }
            | TrustError::NotFolder { path }
            | TrustError::Owner { path, .. }
            | TrustError::Writable { path, .. }
            | TrustError::TooLarge { path, .. }
            | TrustError::NotAFilePath { path } => path,
        }
    }

    /// The file (or a folder on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, TrustError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }

    /// The file or folder exists but is not to be trusted (as opposed to
    /// missing or unreadable).
    pub fn is_untrusted(&self) -> bool {
        !matches!(self, TrustError::Io { .. })
    }

    /// The reason alone, without the path.
    pub fn reason(&self) -> String {
        match self {
            TrustError::Io { action, source, .. } => format!("cannot {action}: {source}"),
            TrustError::Link { .. } => "a symbolic link (not followed here)".to_owned(),
            TrustError::TooManyLinks { .. } => {
                format!("more than {MAX_LINK_HOPS} symbolic links, or a loop")
            }
            TrustError::NotRegular { kind, .. } => format!("not a regular file ({kind})"),
            TrustError::NotFolder { .. } => "not a folder".to_owned(),
            TrustError::Owner {
                folder,
                uid,
                allowed,
                ..
            } => format!(
                "{}owned by uid {uid}; only {allowed} may own it",
                if *folder { "folder " } else { "" }
            ),
            TrustError::Writable { folder, mode, .. } => format!(
                "{}writable by group or others (mode {mode:04o})",
                if *folder { "folder " } else { "" }
            ),
            TrustError::TooLarge { max, size, .. } => match size {
                Some(size) => format!("{size} bytes, more than the limit of {max}"),
                None => format!("more than the limit of {max} bytes"),
            },
            TrustError::NotAFilePath { .. } => "does not name a file".to_owned(),
        }
    }

    /// The reason, with the path at fault when that is not `asked` (a
    /// folder, a link's target): for messages that already name `asked`.
    pub fn describe_for(&self, asked: &Path) -> String {
        if self.path() == asked {
            self.reason()
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path().display(), self.reason())
    }
}

impl std::error::Error for TrustError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrustError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A file that passed its rule, open for reading.
#[derive(Debug)]
pub struct TrustedFile {
    file: File,
    meta: Metadata,
    path: PathBuf,
    max_size: u64,
}

impl TrustedFile {
    /// `fstat` of the opened file, as checked.
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The file that was opened (the final target when links were followed).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file mapped read-only, as long as it was when checked (no second
    /// `fstat`). For cache files, which are only ever replaced by rename
    /// (never modified or truncated in place), so the bytes behind the map
    /// do not change while it lives; a lookup then reads only the pages it
    /// needs instead of the whole file.
    pub fn map(self) -> Result<memmap2::Mmap, TrustError> {
        let too_large = || TrustError::TooLarge {
            path: self.path.clone(),
            max: self.max_size,
            size: Some(self.meta.size()),
        };
        let len = usize::try_from(self.meta.size()).map_err(|_| too_large())?;
        // SAFETY: mapped read-only, and the files this is for are replaced
        // by rename only (see above), so the mapped bytes never change.
        unsafe { memmap2::MmapOptions::new().len(len).map(&self.file) }.map_err(|source| {
            TrustError::Io {
                path: self.path.clone(),
                action: "map",
                source,
            }
        })
    }

    /// The whole content, reading at most the cap plus one byte, so that a
    /// file that grew since the check is refused rather than read on.
    pub fn read_all(self) -> Result<Vec<u8>, TrustError> {
        let expected = usize::try_from(self.meta.size()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(expected.saturating_add(1));
        let max = self.max_size;
        self.file
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| TrustError::Io {
                path: self.path.clone(),
                action: "read",
                source,
            })?;
        if bytes.len() as u64 > max {
            return Err(TrustError::TooLarge {
                path: self.path,
                max,
                size: None,
            });
        }
        Ok(bytes)
    }
}

/// Opens `path` for reading if it passes `rule` (see the [module
/// documentation](self)).
pub fn open_trusted(path: &Path, rule: &TrustRule) -> Result<TrustedFile, TrustError> {
    let mut current = path.to_owned();
    for _ in 0..=MAX_LINK_HOPS {
        match open_once(&current, rule)? {
            Opened::File(file) => return Ok(file),
            Opened::Link(target) => current = target,
        }
    }
    Err(TrustError::TooManyLinks {
        path: path.to_owned(),
    })
}

/// [`open_trusted`], then [`TrustedFile::read_all`].
pub fn read_trusted(path: &Path, rule: &TrustRule) -> Result<Vec<u8>, TrustError> {
    open_trusted(path, rule)?.read_all()
}

/// Checks that the folder at `path` is one a file under `rule` may live in.
pub fn check_dir(path: &Path, rule: &TrustRule) -> Result<(), TrustError> {
    open_dir_checked(path, rule.owner, rule.folder).map(drop)
}

/// Makes sure the folder `path` exists and is trusted: a missing folder
/// (and any missing folder above it) is created with exactly `mode`,
/// whatever the umask (set with `fchmod` after `mkdir`); an existing one
/// must pass [`FolderRule::Private`] for `owner`.
pub fn create_dir_private(path: &Path, mode: u32, owner: Owner) -> Result<(), TrustError> {
    let io_error = |action, source| TrustError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let c_path = c_string(path.as_os_str().as_bytes()).map_err(|e| io_error("create", e))?;
    // SAFETY: c_path is a valid NUL-terminated string for the call.
    let rc = unsafe { libc::mkdir(c_path.as_ptr(), mode & 0o7777) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        match err.kind() {
            io::ErrorKind::AlreadyExists => {}
            io::ErrorKind::NotFound => {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .ok_or_else(|| io_error("create", err))?;
                create_dir_private(parent, mode, owner)?;
                return create_dir_private(path, mode, owner);
            }
            _ => return Err(io_error("create", err)),
        }
    } else {
        // Ours: give it exactly `mode`, which the umask may have narrowed.
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| io_error("open", e))?;
        dir.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|e| io_error("set the mode of", e))?;
    }
    check_dir(
        path,
        &TrustRule {
            max_size: 0,
            owner,
            folder: FolderRule::Private,
            follow_links: false,
        },
    )
}

/// Sets the permission bits of an open file to exactly `mode` and checks it
/// is a regular file owned as `owner` says: for files a writer creates or
/// reuses (a lock file), whatever the umask or an earlier mode was.
pub fn set_exact_mode(file: &File, path: &Path, mode: u32, owner: Owner) -> Result<(), TrustError> {
    let meta = file.metadata().map_err(|source| TrustError::Io {
        path: path.to_owned(),
        action: "inspect",
        source,
    })?;
    check_regular_and_owned(&meta, path, owner)?;
    if meta.mode() & 0o7777 != mode & 0o7777 {
        file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(|source| TrustError::Io {
                path: path.to_owned(),
                action: "set the mode of",
                source,
            })?;
    }
    Ok(())
}

enum Opened {
    File(TrustedFile),
    /// A link in a trusted folder, to follow: its target path.
    Link(PathBuf),
}

/// The flags every trusted file is opened with.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

fn open_once(path: &Path, rule: &TrustRule) -> Result<Opened, TrustError> {
    let io_error = |action, source| TrustError::Io {
        path: path.to_owned(),
        action,
        source,
    };
    let file = if rule.folder == FolderRule::Unchecked {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OPEN_FLAGS & !libc::O_RDONLY)
            .open(path)
            .map_err(|e| {
                if e.raw_os_error() == Some(libc::ELOOP) {
                    TrustError::Link {
                        path: path.to_owned(),
                    }
                } else {
                    io_error("open", e)
                }
            })?
    } else {
        let (folder, name) = split(path)?;
        let dir = open_dir_checked(&folder, rule.owner, rule.folder)?;
        let c_name = c_string(name.as_os_str().as_bytes()).map_err(|e| io_error("open", e))?;
        // SAFETY: dir is an open folder for the call; c_name is a valid
        // NUL-terminated string; openat returns a new descriptor or -1.
        let fd = unsafe { libc::openat(dir.as_raw_fd(), c_name.as_ptr(), OPEN_FLAGS) };
        if fd < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::ELOOP) {
                return Err(io_error("open", err));
            }
            if !rule.follow_links {
                return Err(TrustError::Link {
                    path: path.to_owned(),
                });
            }
            let target = read_link_at(&dir, &c_name).map_err(|_| io_error("open", err))?;
            return Ok(Opened::Link(folder.join(target)));
        }
        // SAFETY: fd is a descriptor openat just returned, owned by nobody else.
        unsafe { File::from_raw_fd(fd) }
    };
    let meta = file.metadata().map_err(|e| io_error("inspect", e))?;
    check_file_meta(&meta, path, rule.owner, rule.max_size)?;
    Ok(Opened::File(TrustedFile {
        file,
        meta,
        path: path.to_owned(),
        max_size: rule.max_size,
    }))
}

/// A regular file whose owner `owner` allows.
fn check_regular_and_owned(meta: &Metadata, path: &Path, owner: Owner) -> Result<(), TrustError> {
    if !meta.file_type().is_file() {
        return Err(TrustError::NotRegular {
            path: path.to_owned(),
            kind: kind_name(meta.mode()),
        });
    }
    if !owner.allows(meta.uid()) {
        return Err(TrustError::Owner {
            path: path.to_owned(),
            folder: false,
            uid: meta.uid(),
            allowed: owner,
        });
    }
    Ok(())
}

fn check_file_meta(meta: &Metadata, path: &Path, owner: Owner, max: u64) -> Result<(), TrustError> {
    check_regular_and_owned(meta, path, owner)?;
    if meta.mode() & 0o022 != 0 {
        return Err(TrustError::Writable {
            path: path.to_owned(),
            folder: false,
            mode: meta.mode() & 0o7777,
        });
    }
    if meta.size() > max {
        return Err(TrustError::TooLarge {
            path: path.to_owned(),
            max,
            size: Some(meta.size()),
        });
    }
    Ok(())
}

/// Opens the folder at `path` (following links in its own path: whoever
/// put them there owns a folder above) and checks it with `fstat`.
///
/// Opened with `O_PATH`: the descriptor only names the folder for `fstat`
/// and the `openat`/`readlinkat` of the file in it, so the open skips the
/// file system's own open and release of a readable folder (and needs no
/// read permission on it, only the search permission the `openat` needs).
fn open_dir_checked(path: &Path, owner: Owner, rule: FolderRule) -> Result<File, TrustError> {
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ENOTDIR) {
                TrustError::NotFolder {
                    path: path.to_owned(),
                }
            } else {
                TrustError::Io {
                    path: path.to_owned(),
                    action: "open the folder",
                    source,
                }
            }
        })?;
    if rule == FolderRule::Unchecked {
        return Ok(dir);
    }
    let meta = dir.metadata().map_err(|source| TrustError::Io {
        path: path.to_owned(),
        action: "inspect the folder",
        source,
    })?;
    if !owner.allows(meta.uid()) {
        return Err(TrustError::Owner {
            path: path.to_owned(),
            folder: true,
            uid: meta.uid(),
            allowed: owner,
        });
    }
    let sticky = meta.mode() & libc::S_ISVTX != 0;
    if meta.mode() & 0o022 != 0 && !(rule == FolderRule::PrivateOrSticky && sticky) {
        return Err(TrustError::Writable {
            path: path.to_owned(),
            folder: true,
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(dir)
}

/// `path` as (folder, file name); a bare name is in `.`.
fn split(path: &Path) -> Result<(PathBuf, PathBuf), TrustError> {
    let not_a_file = || TrustError::NotAFilePath {
        path: path.to_owned(),
    };
    if !matches!(path.components().next_back(), Some(Component::Normal(_))) {
        return Err(not_a_file());
    }
    let name = path.file_name().ok_or_else(not_a_file)?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok((folder, PathBuf::from(name)))
}

fn read_link_at(dir: &File, name: &CString) -> io::Result<PathBuf> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: dir is open, name is NUL-terminated, buf is valid for writes
    // of buf.len() bytes; readlinkat writes at most that many.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    if n >= buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    buf.truncate(n);
    Ok(PathBuf::from(std::ffi::OsString::from_vec(buf)))
}

fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))
}

fn kind_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a FIFO",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFDIR => "a folder",
        libc::S_IFSOCK => "a socket",
        libc::S_IFLNK => "a symbolic link",
        _ => "not a file",
    }
}

fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;
    use std::time::{Duration, Instant};

    /// A rule the tests can meet whoever runs them.
    const MINE: TrustRule = TrustRule {
        max_size: 1024,
        owner: Owner::RootOrCaller,
        folder: FolderRule::Private,
        follow_links: false,
    };

    fn write(path: &Path, bytes: &[u8], mode: u32) {
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    fn is_root() -> bool {
        effective_uid() == 0
    }

    #[test]
    fn a_private_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        write(&path, b"[core]\n", 0o644);
        assert_eq!(read_trusted(&path, &MINE).unwrap(), b"[core]\n");
        let file = open_trusted(&path, &MINE).unwrap();
        assert_eq!(file.metadata().len(), 7);
        assert_eq!(file.path(), path);
        // Read-only files are fine, and so is a size of exactly the cap.
        write(&path, &[b'x'; 1024], 0o400);
        assert_eq!(read_trusted(&path, &MINE).unwrap().len(), 1024);
    }

    #[test]
    fn a_trusted_file_maps_to_the_bytes_it_holds_and_an_empty_one_to_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nss.cache");
        write(&path, b"cache bytes", 0o644);
        let map = open_trusted(&path, &MINE).unwrap().map().unwrap();
        assert_eq!(&map[..], b"cache bytes");
        write(&path, b"", 0o644);
        assert!(open_trusted(&path, &MINE)
            .unwrap()
            .map()
            .unwrap()
            .is_empty());
        // The checks come first: a file others may write is never mapped.
        write(&path, b"x", 0o666);
        assert!(matches!(
            open_trusted(&path, &MINE).and_then(|t| t.map()),
            Err(TrustError::Writable { .. })
        ));
    }

    #[test]
    fn writable_by_group_or_others_is_refused_naming_file_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        for mode in [0o666, 0o664, 0o646, 0o620] {
            write(&path, b"x", mode);
            let e = read_trusted(&path, &MINE).unwrap_err();
            assert!(
                matches!(e, TrustError::Writable { folder: false, .. }),
                "{e:?}"
            );
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: writable by group or others (mode {mode:04o})",
                    path.display()
                )
            );
            assert!(e.is_untrusted() && !e.is_not_found());
        }
    }

    #[test]
    fn a_file_of_another_user_is_refused() {
        // chown needs root.
        if netauth_test_support::skip_without_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tls.pem");
        write(&path, b"x", 0o644);
        std::os::unix::fs::chown(&path, Some(1000), None).unwrap();
        for rule in [MINE, MINE.with_owner(Owner::Root)] {
            let e = read_trusted(&path, &rule).unwrap_err();
            assert!(matches!(e, TrustError::Owner { uid: 1000, .. }), "{e:?}");
            assert!(e.to_string().contains("owned by uid 1000"), "{e}");
        }
        // Root-owned but the rule wants root: fine.
        std::os::unix::fs::chown(&path, Some(0), None).unwrap();
        assert!(read_trusted(&path, &MINE.with_owner(Owner::Root)).is_ok());
    }

    #[test]
    fn fifos_devices_and_folders_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("tls.pem");
        mkfifo(&fifo);
        let started = Instant::now();
        let e = read_trusted(&fifo, &MINE).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            format!("{}: not a regular file (a FIFO)", fifo.display())
        );
        let rule = TrustRule {
            owner: Owner::Root,
            ..MINE
        };
        for device in ["/dev/zero", "/dev/null", "/dev/urandom"] {
            let e = read_trusted(Path::new(device), &rule).unwrap_err();
            assert!(
                matches!(
                    e,
                    TrustError::NotRegular {
                        kind: "a character device",
                        ..
                    }
                ),
                "{device}: {e:?}"
            );
        }
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        let e = read_trusted(&folder, &MINE).unwrap_err();
        assert!(
            matches!(
                e,
                TrustError::NotRegular {
                    kind: "a folder",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn the_size_cap_holds_by_stat_and_by_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        write(&path, b"", 0o644);
        // A sparse file: large by stat, nothing read.
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1025)
            .unwrap();
        let e = read_trusted(&path, &MINE).unwrap_err();
        assert!(
            matches!(
                e,
                TrustError::TooLarge {
                    max: 1024,
                    size: Some(1025),
                    ..
                }
            ),
            "{e:?}"
        );
        // A file whose stat size says nothing (procfs: 0) but that reads on:
        // refused once the cap is passed, not read to its end.
        let rule = TrustRule {
            max_size: 16,
            folder: FolderRule::Unchecked,
            ..MINE
        };
        let proc_file = Path::new("/proc/self/mountinfo");
        assert_eq!(std::fs::metadata(proc_file).unwrap().len(), 0);
        let e = read_trusted(proc_file, &rule).unwrap_err();
        assert!(
            matches!(
                e,
                TrustError::TooLarge {
                    max: 16,
                    size: None,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn links_are_refused_unless_followed_through_trusted_folders() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.pem");
        write(&target, b"pem", 0o644);
        let link = dir.path().join("tls.pem");
        symlink(&target, &link).unwrap();
        let e = read_trusted(&link, &MINE).unwrap_err();
        assert!(matches!(e, TrustError::Link { .. }), "{e:?}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // Unchecked folder: links are refused too (O_NOFOLLOW).
        let unchecked = TrustRule {
            folder: FolderRule::Unchecked,
            follow_links: true,
            ..MINE
        };
        assert!(matches!(
            read_trusted(&link, &unchecked).unwrap_err(),
            TrustError::Link { .. }
        ));

        let follow = TrustRule {
            follow_links: true,
            ..MINE
        };
        assert_eq!(read_trusted(&link, &follow).unwrap(), b"pem");
        // Relative links and chains.
        let rel = dir.path().join("rel.pem");
        symlink("tls.pem", &rel).unwrap();
        let file = open_trusted(&rel, &follow).unwrap();
        assert_eq!(file.path(), target);
        // A target in a folder others can write is refused, naming that folder.
        let open_dir = dir.path().join("shared");
        std::fs::create_dir(&open_dir).unwrap();
        chmod(&open_dir, 0o777);
        write(&open_dir.join("x.pem"), b"pem", 0o644);
        let bad = dir.path().join("bad.pem");
        symlink(open_dir.join("x.pem"), &bad).unwrap();
        let e = read_trusted(&bad, &follow).unwrap_err();
        assert!(
            matches!(e, TrustError::Writable { folder: true, .. }),
            "{e:?}"
        );
        assert_eq!(e.path(), open_dir);
        assert!(e
            .describe_for(&bad)
            .contains(&open_dir.display().to_string()));
        // A link inside such a folder is not followed either.
        symlink(&target, open_dir.join("y.pem")).unwrap();
        assert!(read_trusted(&open_dir.join("y.pem"), &follow).is_err());
        // Loops end.
        symlink("loop-b", dir.path().join("loop-a")).unwrap();
        symlink("loop-a", dir.path().join("loop-b")).unwrap();
        let e = read_trusted(&dir.path().join("loop-a"), &follow).unwrap_err();
        assert!(matches!(e, TrustError::TooManyLinks { .. }), "{e:?}");
        // The target of a refused link was never opened for writing or changed.
        assert_eq!(std::fs::read(&target).unwrap(), b"pem");
    }

    #[test]
    fn the_folder_must_be_private_or_sticky_where_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("cache");
        std::fs::create_dir(&folder).unwrap();
        let path = folder.join("nss.cache");
        write(&path, b"x", 0o644);
        chmod(&folder, 0o755);
        assert!(read_trusted(&path, &MINE).is_ok());
        check_dir(&folder, &MINE).unwrap();
        for mode in [0o777, 0o775, 0o757] {
            chmod(&folder, mode);
            let e = read_trusted(&path, &MINE).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "{}: folder writable by group or others (mode {mode:04o})",
                    folder.display()
                )
            );
            assert!(check_dir(&folder, &MINE).is_err());
            // Unchecked: the folder does not matter.
            let unchecked = TrustRule {
                folder: FolderRule::Unchecked,
                ..MINE
            };
            assert!(read_trusted(&path, &unchecked).is_ok());
        }
        // Sticky and world-writable, like /tmp: only where the rule says.
        chmod(&folder, 0o1777);
        assert!(read_trusted(&path, &MINE).is_err());
        let sticky = TrustRule {
            folder: FolderRule::PrivateOrSticky,
            ..MINE
        };
        assert!(read_trusted(&path, &sticky).is_ok());
        chmod(&folder, 0o755);
        if is_root() {
            std::os::unix::fs::chown(&folder, Some(1000), None).unwrap();
            for rule in [MINE, sticky] {
                let e = read_trusted(&path, &rule).unwrap_err();
                assert!(
                    matches!(
                        e,
                        TrustError::Owner {
                            folder: true,
                            uid: 1000,
                            ..
                        }
                    ),
                    "{e:?}"
                );
                assert!(e.to_string().contains("folder owned by uid 1000"), "{e}");
            }
            std::os::unix::fs::chown(&folder, Some(effective_uid()), None).unwrap();
        }
        // A missing folder or file is "not found", not "untrusted".
        let e = read_trusted(&dir.path().join("nope/nss.cache"), &MINE).unwrap_err();
        assert!(e.is_not_found() && !e.is_untrusted(), "{e:?}");
        let e = read_trusted(&folder.join("nope"), &MINE).unwrap_err();
        assert!(e.is_not_found(), "{e:?}");
        // The stock temp folder passes the token rule.
        check_dir(Path::new("/tmp"), &TrustRule::TOKEN).unwrap();
    }

    #[test]
    fn paths_that_name_no_file_are_refused() {
        for path in ["", "/", "/tmp/..", "."] {
            let e = read_trusted(Path::new(path), &MINE).unwrap_err();
            assert!(
                matches!(
                    e,
                    TrustError::NotAFilePath { .. } | TrustError::NotRegular { .. }
                ),
                "{path:?}: {e:?}"
            );
        }
    }

    /// Runs in a child process (see below): the umask is process-wide and
    /// other tests create files at the same time.
    #[test]
    fn create_dir_private_child() {
        let Some(target) = std::env::var_os("NETAUTH_TRUSTED_UMASK_CHILD") else {
            return;
        };
        let target = PathBuf::from(target);
        for umask in [0o000, 0o077] {
            // SAFETY: umask has no preconditions; this process runs only this test.
            unsafe { libc::umask(umask) };
            let leaf = target.join(format!("u{umask:o}/a/b"));
            create_dir_private(&leaf, 0o755, Owner::RootOrCaller).unwrap();
            for dir in [leaf.as_path(), leaf.parent().unwrap()] {
                let mode = std::fs::metadata(dir).unwrap().mode() & 0o7777;
                assert_eq!(mode, 0o755, "{} under umask {umask:03o}", dir.display());
            }
            // Again: exists and is trusted.
            create_dir_private(&leaf, 0o755, Owner::RootOrCaller).unwrap();
        }
    }

    #[test]
    fn create_dir_private_sets_the_mode_whatever_the_umask() {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "trusted::tests::create_dir_private_child"])
            .env("NETAUTH_TRUSTED_UMASK_CHILD", dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
        assert!(dir.path().join("u0/a/b").is_dir());
        assert!(dir.path().join("u77/a/b").is_dir());

        // An existing folder others may write is refused, not fixed.
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let e = create_dir_private(&open, 0o755, Owner::RootOrCaller).unwrap_err();
        assert!(
            matches!(e, TrustError::Writable { folder: true, .. }),
            "{e:?}"
        );
        // A file in the way is not a folder.
        let file = dir.path().join("file");
        write(&file, b"", 0o644);
        assert!(create_dir_private(&file, 0o755, Owner::RootOrCaller).is_err());
    }

    #[test]
    fn set_exact_mode_narrows_and_widens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        write(&path, b"", 0o666);
        let file = File::open(&path).unwrap();
        set_exact_mode(&file, &path, 0o600, Owner::RootOrCaller).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o600);
        set_exact_mode(&file, &path, 0o644, Owner::RootOrCaller).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o7777, 0o644);
    }
}

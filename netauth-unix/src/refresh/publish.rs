//! `netauth-unix publish` and `netauth-unix keygen`: the publisher's side of
//! fleet refreshes (see [`super::snapshot`] for the files and their format,
//! [`super::snapshot_fetch`] for the hosts' side).
//!
//! `publish --out DIR` fetches the directory exactly as a refresh does (same
//! calls, same completeness proof), and installs `DIR/snapshot.json` and
//! then `DIR/snapshot.json.sig`, each atomically (mode 0644, for the web
//! server), holding `DIR/.publish.lock`. It changes nothing in `DIR` when
//! the directory is the one the current snapshot holds and that snapshot is
//! younger than half of `snapshot_max_age_s` (so ETags stay, and hosts never
//! see a snapshot too old while the publisher runs).
//!
//! The private key file holds one line, `ed25519-private:BASE64` (the
//! 32-byte seed); it must be root's, mode 0600 or stricter, in a folder
//! nobody else may write. `keygen` creates it (never over an existing file)
//! and returns the public key in the form `publisher_key` takes.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use netauth_cache::trusted::{
    open_trusted, read_trusted, FolderRule, Owner, TrustError, TrustRule,
};
use netauth_core::client::ClientBuilder;
use netauth_core::config::refresh::RefreshSettings;
use netauth_core::config::Config;

use super::snapshot::{self, Snapshot, SIGNATURE_FILE_NAME, SNAPSHOT_FILE_NAME};
use super::{fetch, server_label, unix_now, ClientSource, RefreshError, RefreshLock, SERVICE_NAME};

/// Where `keygen` writes and `publish` reads the private key by default.
pub const DEFAULT_KEY_PATH: &str = "/etc/netauth/publisher.key";
/// The lock of the output folder.
pub const PUBLISH_LOCK_NAME: &str = ".publish.lock";

/// The private key file's rule: root's, small, in a private folder (its
/// mode is checked on top).
const KEY_RULE: TrustRule = TrustRule {
    max_size: 4096,
    owner: Owner::Root,
    folder: FolderRule::Private,
    follow_links: true,
};

/// What a publish did.
#[derive(Debug, Clone)]
pub struct PublishReport {
    pub out: PathBuf,
    /// False: the directory was unchanged and the files were left alone.
    pub written: bool,
    pub sequence: u64,
    pub generated_at: i64,
    pub entities: usize,
    pub groups: usize,
    pub bytes: usize,
    /// gRPC search calls made.
    pub calls: u32,
    /// Expansions every host will ignore (malformed, unknown target, on a
    /// cycle): hosts reading the snapshot do not see them, so the
    /// publisher reports them.
    pub expansion_problems: Vec<String>,
    pub duration: Duration,
}

fn key_error(path: &Path, problem: impl std::fmt::Display) -> RefreshError {
    RefreshError::Snapshot {
        source_url: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// Reads the publisher's private key at `path` (see the module
/// documentation for what it must be).
pub fn load_private_key(path: &Path) -> Result<SigningKey, RefreshError> {
    let file = open_trusted(path, &KEY_RULE).map_err(|e| match e {
        TrustError::Io { path, source, .. } => RefreshError::LocalFile { path, source },
        untrusted => RefreshError::Untrusted(untrusted),
    })?;
    let mode = file.metadata().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!("the private key must be readable by root only (mode {mode:o}; chmod 600)"),
        ));
    }
    let bytes = zeroize::Zeroizing::new(file.read_all().map_err(RefreshError::Untrusted)?);
    snapshot::parse_private_key(&bytes).map_err(|e| key_error(path, e))
}

/// Makes a key pair: the private key at `path` (created, mode 0600; an
/// existing file is an error), the public key returned as `ed25519:BASE64`.
pub fn keygen(path: &Path) -> io::Result<String> {
    let mut seed = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::getrandom(seed.as_mut_slice()).map_err(io::Error::other)?;
    let key = SigningKey::from_bytes(&seed);
    let text = snapshot::format_private_key(&key);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)?;
    // The umask can only remove bits; make sure of the exact mode anyway.
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(snapshot::format_public_key(&key.verifying_key()))
}

/// The snapshot in `out` if it is there, trusted, and signed by `key`.
fn current_snapshot(out: &Path, key: &SigningKey) -> Option<Snapshot> {
    let bytes = read_trusted(&out.join(SNAPSHOT_FILE_NAME), &TrustRule::CACHE).ok()?;
    let signature = read_trusted(&out.join(SIGNATURE_FILE_NAME), &TrustRule::REFRESH_STATE).ok()?;
    snapshot::verify_and_decode(&bytes, &signature, &key.verifying_key()).ok()
}

/// Publishes the directory of `config`'s server into `out`, signed with the
/// key at `key_path`.
pub fn publish(
    config: &Config,
    out: &Path,
    key_path: &Path,
) -> Result<PublishReport, RefreshError> {
    let started = Instant::now();
    let settings = RefreshSettings::from_config(config);
    let key = load_private_key(key_path)?;
    let _lock = RefreshLock::acquire_named(out, PUBLISH_LOCK_NAME)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|e| RefreshError::Client(Box::new(e)))?;
    let fetched = runtime.block_on(async {
        let client = ClientBuilder::from_config(config.clone())
            .service_name(SERVICE_NAME)
            .request_timeout(Duration::from_millis(settings.request_timeout_ms))
            .build()
            .map_err(|e| RefreshError::Client(Box::new(e)))?;
        let fetched = fetch::fetch_all(&mut ClientSource::of(&client), settings.search_cap).await?;
        Ok::<_, RefreshError>(fetched)
    });
    drop(runtime);
    let fetched = fetched?;
    let calls = fetched.entity_calls + fetched.group_calls;

    let mut snap = Snapshot::from_fetched(fetched.entities, fetched.groups, server_label(config));
    let expansion_problems: Vec<String> =
        super::build::effective_memberships(&snap.entities, &snap.groups)
            .issues
            .into_iter()
            .map(|i| super::Notice::Expansion(i).to_string())
            .collect();
    let now = unix_now();
    let previous = current_snapshot(out, &key);
    let fresh_for = i64::try_from(settings.snapshot_max_age_s / 2).unwrap_or(i64::MAX);
    if let Some(prev) = &previous {
        if prev.same_directory(&snap) && now.saturating_sub(prev.generated_at) < fresh_for {
            return Ok(PublishReport {
                out: out.to_owned(),
                written: false,
                sequence: prev.sequence,
                generated_at: prev.generated_at,
                entities: prev.entities.len(),
                groups: prev.groups.len(),
                bytes: prev.encode().len(),
                calls,
                expansion_problems,
                duration: started.elapsed(),
            });
        }
    }
    snap.generated_at = now;
    snap.sequence = previous
        .map(|p| p.sequence.saturating_add(1))
        .unwrap_or(0)
        .max(u64::try_from(now).unwrap_or(0));
    let bytes = snap.encode();
    let signature = snapshot::sign(&bytes, &key);
    let write_error = |source| RefreshError::Write {
        dir: out.to_owned(),
        source,
    };
    netauth_cache::write_atomic(out, SNAPSHOT_FILE_NAME, &bytes).map_err(write_error)?;
    netauth_cache::write_atomic(out, SIGNATURE_FILE_NAME, &signature).map_err(write_error)?;
    Ok(PublishReport {
        out: out.to_owned(),
        written: true,
        sequence: snap.sequence,
        generated_at: snap.generated_at,
        entities: snap.entities.len(),
        groups: snap.groups.len(),
        bytes: bytes.len(),
        calls,
        expansion_problems,
        duration: started.elapsed(),
    })
}

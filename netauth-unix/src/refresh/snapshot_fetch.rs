//! The refresh from a published snapshot (`[unix.refresh] source`): fetch
//! `snapshot.json` and its signature over HTTP(S) or from a folder, verify
//! the signature before parsing anything, refuse a rollback or a stale
//! snapshot, then build the cache with this host's own rules (as a direct
//! refresh does) and install it. Any failure keeps the cache as it was and
//! is recorded in the status file.
//!
//! # HTTP
//!
//! One blocking client (`ureq`, rustls with ring: the TLS stack of the
//! NetAuth client; no async runtime), with `request_timeout_ms` as the
//! deadline of each request (connection, headers and body together) and
//! `snapshot_max_bytes` as the cap of the body. An `https` source is
//! trusted with the system's CA store, or with exactly the certificates of
//! `source_certificate` (as `tls.certificate` is for NetAuth). Redirects
//! are followed (at most 5, never from https to http).
//!
//! The request is conditional (`If-None-Match` with the last ETag,
//! `If-Modified-Since` with the last Last-Modified, both kept in
//! `snapshot-state.json` next to the cache). On `304 Not Modified` the copy
//! of the last verified snapshot kept next to the cache (`snapshot.json`,
//! `snapshot.json.sig`) is verified and used again: the cache is rebuilt
//! either way, so a change of the host's local accounts or rules takes
//! effect at the next refresh, as with a direct one.
//!
//! The two files cannot change together on a web server: a host that
//! fetches between the publisher's two renames gets a signature that does
//! not match; the fetch is then made once more, unconditionally.
//!
//! # Refusals
//!
//! - a signature that is not `publisher_key`'s over the exact bytes
//!   (checked before the bytes are parsed);
//! - a sequence number lower than the one the current cache was built from
//!   (an old snapshot put back), as long as `publisher_key` is unchanged;
//! - a snapshot generated more than `snapshot_max_age_s` ago;
//! - a body over `snapshot_max_bytes`, an HTTP status other than 200 (or
//!   304 to a conditional request), a deadline passed, a TLS failure.
//!
//! The host maps the snapshot with its own rules and the snapshot's
//! effective memberships; expansions the server's rules ignore (malformed,
//! unknown target, on a cycle) are reported by `publish`, not by each host.
//!
//! `file:///PATH/` reads both files through the trusted-file helper
//! (regular files, root's, in a folder nobody else may write).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use netauth_cache::trusted::{read_trusted, FolderRule, Owner, TrustError, TrustRule};
use netauth_core::config::refresh::RefreshSettings;
use serde::{Deserialize, Serialize};

use super::members::Memberships;
use super::snapshot::{
    self, Snapshot, SnapshotError, MAX_SIGNATURE_BYTES, SIGNATURE_FILE_NAME, SNAPSHOT_FILE_NAME,
};
use super::{
    install, prepare, record_status, unix_now, RefreshError, RefreshLock, RefreshOptions,
    RefreshReport,
};

/// The fetch state next to the cache.
pub const STATE_FILE_NAME: &str = "snapshot-state.json";

/// Redirects followed at most.
const MAX_REDIRECTS: u32 = 5;

/// What a refresh from a snapshot fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFetched {
    pub source: String,
    pub sequence: u64,
    pub generated_at: i64,
    /// The server answered `304 Not Modified`: the kept copy was used.
    pub not_modified: bool,
    /// Size of `snapshot.json`.
    pub bytes: usize,
}

/// `snapshot-state.json`: what the current cache was built from, and the
/// validators of the conditional request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SnapshotState {
    pub source: String,
    pub publisher_key: String,
    pub sequence: u64,
    pub generated_at: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl SnapshotState {
    /// The state in `cache_dir`, if there is a readable one.
    pub fn load(cache_dir: &Path) -> Option<SnapshotState> {
        let bytes =
            read_trusted(&cache_dir.join(STATE_FILE_NAME), &TrustRule::REFRESH_STATE).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn store(&self, cache_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        netauth_cache::write_atomic(cache_dir, STATE_FILE_NAME, &bytes)
    }
}

/// Snapshot bytes and their signature, as fetched.
struct Fetched {
    snapshot: Vec<u8>,
    signature: Vec<u8>,
    not_modified: bool,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// The refresh from `settings.source`, then the status file; the
/// counterpart of the direct `refresh_and_record`.
pub(crate) fn refresh_and_record(
    settings: &RefreshSettings,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError> {
    let started_at = unix_now();
    let started = std::time::Instant::now();
    let source = settings.source.clone().unwrap_or_default();
    let lock = RefreshLock::acquire(&settings.cache_dir)?;
    let mut outcome = refresh_from_snapshot(&lock, &source, settings, options);
    let written = record_status(
        &lock,
        settings,
        &source,
        started_at,
        &outcome,
        0,
        started.elapsed(),
    );
    drop(lock);
    if let (Ok(report), Err(e)) = (&mut outcome, written) {
        report.notices.push(super::Notice::StatusFileUnwritable {
            error: e.to_string(),
        });
    }
    outcome
}

fn refused(source: &str, problem: impl std::fmt::Display) -> RefreshError {
    RefreshError::Snapshot {
        source_url: source.to_owned(),
        problem: problem.to_string(),
    }
}

fn refresh_from_snapshot(
    _lock: &RefreshLock,
    source: &str,
    settings: &RefreshSettings,
    options: RefreshOptions,
) -> Result<RefreshReport, RefreshError> {
    let key_text = settings.publisher_key.clone().unwrap_or_default();
    let key = snapshot::parse_public_key(&key_text).map_err(|e| refused(source, e))?;
    let prepared = prepare(settings)?;
    let dir = &settings.cache_dir;
    // The state counts only for the same source and key: another
    // publisher's sequence numbers say nothing about this one's.
    let state = SnapshotState::load(dir).filter(|s| s.publisher_key == key_text);
    let conditional = state.as_ref().filter(|s| s.source == source);

    let transport = Transport::new(source, settings).map_err(|e| refused(source, e))?;
    let (fetched, snap) =
        fetch_verified(&transport, conditional, &key, settings).map_err(|e| refused(source, e))?;

    if let Some(state) = &state {
        if snap.sequence < state.sequence {
            return Err(refused(
                source,
                format!(
                    "its sequence number {} is lower than {}, the one the current cache was built \
                     from (an older snapshot put back?)",
                    snap.sequence, state.sequence
                ),
            ));
        }
    }
    let age = unix_now().saturating_sub(snap.generated_at);
    if age > i64::try_from(settings.snapshot_max_age_s).unwrap_or(i64::MAX) {
        return Err(refused(
            source,
            format!(
                "generated {age} s ago (sequence {}), more than snapshot_max_age_s = {} (is the \
                 publisher running?)",
                snap.sequence, settings.snapshot_max_age_s
            ),
        ));
    }

    let label = format!("{source} (snapshot {})", snap.sequence);
    let memberships = Memberships {
        members: snap.members,
        issues: Vec::new(),
    };
    let mut report = install(
        prepared,
        snap.entities,
        snap.groups,
        Some(memberships),
        &label,
        settings,
        options,
    )?;

    // The cache is in place: keep the snapshot it was built from (for the
    // next 304) and then the state that names it.
    let write_error = |source| RefreshError::Write {
        dir: dir.clone(),
        source,
    };
    if !fetched.not_modified {
        netauth_cache::write_atomic(dir, SNAPSHOT_FILE_NAME, &fetched.snapshot)
            .map_err(write_error)?;
        netauth_cache::write_atomic(dir, SIGNATURE_FILE_NAME, &fetched.signature)
            .map_err(write_error)?;
    }
    let (etag, last_modified) = if fetched.not_modified {
        conditional
            .map(|s| (s.etag.clone(), s.last_modified.clone()))
            .unwrap_or_default()
    } else {
        (fetched.etag.clone(), fetched.last_modified.clone())
    };
    SnapshotState {
        source: source.to_owned(),
        publisher_key: key_text,
        sequence: snap.sequence,
        generated_at: snap.generated_at,
        etag,
        last_modified,
    }
    .store(dir)
    .map_err(write_error)?;

    report.snapshot = Some(SnapshotFetched {
        source: source.to_owned(),
        sequence: snap.sequence,
        generated_at: snap.generated_at,
        not_modified: fetched.not_modified,
        bytes: fetched.snapshot.len(),
    });
    Ok(report)
}

/// Fetches (conditionally when `conditional` names validators and the kept
/// copy is there) and verifies. A fresh pair that fails verification is
/// fetched once more, unconditionally (the publisher may have been between
/// its two renames); a kept copy that fails is replaced by a fresh fetch.
fn fetch_verified(
    transport: &Transport,
    conditional: Option<&SnapshotState>,
    key: &VerifyingKey,
    settings: &RefreshSettings,
) -> Result<(Fetched, Snapshot), String> {
    let kept = conditional.and_then(|_| read_kept_copy(settings));
    let validators = conditional.filter(|_| kept.is_some());
    let mut fetched = transport.fetch(validators)?;
    if fetched.not_modified {
        let (snapshot, signature) = kept.unwrap_or_default();
        fetched.snapshot = snapshot;
        fetched.signature = signature;
        match snapshot::verify_and_decode(&fetched.snapshot, &fetched.signature, key) {
            Ok(snap) => return Ok((fetched, snap)),
            Err(_) => fetched = transport.fetch(None)?,
        }
    }
    match snapshot::verify_and_decode(&fetched.snapshot, &fetched.signature, key) {
        Ok(snap) => Ok((fetched, snap)),
        Err(SnapshotError::BadSignature | SnapshotError::BadSignatureFile)
            if transport.is_remote() =>
        {
            let again = transport.fetch(None)?;
            let snap = snapshot::verify_and_decode(&again.snapshot, &again.signature, key)
                .map_err(|e| e.to_string())?;
            Ok((again, snap))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The copy of the last verified snapshot next to the cache.
fn read_kept_copy(settings: &RefreshSettings) -> Option<(Vec<u8>, Vec<u8>)> {
    let rule = TrustRule {
        max_size: settings.snapshot_max_bytes,
        ..TrustRule::CACHE
    };
    let dir = &settings.cache_dir;
    let snapshot = read_trusted(&dir.join(SNAPSHOT_FILE_NAME), &rule).ok()?;
    let signature = read_trusted(&dir.join(SIGNATURE_FILE_NAME), &TrustRule::REFRESH_STATE).ok()?;
    Some((snapshot, signature))
}

/// Where the files come from.
enum Transport {
    Http {
        agent: ureq::Agent,
        base: String,
        cap: u64,
    },
    Folder {
        dir: PathBuf,
        cap: u64,
    },
}

impl Transport {
    fn new(source: &str, settings: &RefreshSettings) -> Result<Transport, String> {
        let cap = settings.snapshot_max_bytes;
        if let Some(path) = source.strip_prefix("file://") {
            return Ok(Transport::Folder {
                dir: PathBuf::from(path),
                cap,
            });
        }
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(MAX_REDIRECTS)
            .timeout_global(Some(Duration::from_millis(settings.request_timeout_ms)))
            .user_agent(concat!("netauth-unix/", env!("CARGO_PKG_VERSION")));
        if source.starts_with("https://") {
            // https_only: a redirect to plain http is refused.
            config = config.https_only(true).tls_config(tls_config(settings)?);
        }
        Ok(Transport::Http {
            agent: config.build().into(),
            base: source.to_owned(),
            cap,
        })
    }

    fn is_remote(&self) -> bool {
        matches!(self, Transport::Http { .. })
    }

    fn fetch(&self, conditional: Option<&SnapshotState>) -> Result<Fetched, String> {
        match self {
            Transport::Folder { dir, cap } => {
                let rule = TrustRule {
                    max_size: *cap,
                    owner: Owner::Root,
                    folder: FolderRule::Private,
                    follow_links: true,
                };
                let read = |name: &str, rule: &TrustRule| {
                    let path = dir.join(name);
                    read_trusted(&path, rule).map_err(|e| match e {
                        TrustError::TooLarge { .. } => format!(
                            "{} is larger than {} bytes (snapshot_max_bytes)",
                            path.display(),
                            rule.max_size
                        ),
                        e => describe_trust(&path, &e),
                    })
                };
                let signature_rule = TrustRule {
                    max_size: MAX_SIGNATURE_BYTES as u64,
                    ..rule
                };
                Ok(Fetched {
                    snapshot: read(SNAPSHOT_FILE_NAME, &rule)?,
                    signature: read(SIGNATURE_FILE_NAME, &signature_rule)?,
                    not_modified: false,
                    etag: None,
                    last_modified: None,
                })
            }
            Transport::Http { agent, base, cap } => {
                let url = format!("{base}{SNAPSHOT_FILE_NAME}");
                let mut request = agent.get(&url);
                if let Some(state) = conditional {
                    if let Some(etag) = &state.etag {
                        request = request.header("If-None-Match", etag);
                    }
                    if let Some(lm) = &state.last_modified {
                        request = request.header("If-Modified-Since", lm);
                    }
                }
                let mut response = request.call().map_err(|e| format!("GET {url}: {e}"))?;
                let status = response.status().as_u16();
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let etag = header("etag");
                let last_modified = header("last-modified");
                if status == 304 && conditional.is_some() {
                    return Ok(Fetched {
                        snapshot: Vec::new(),
                        signature: Vec::new(),
                        not_modified: true,
                        etag,
                        last_modified,
                    });
                }
                if status != 200 {
                    return Err(format!("GET {url}: HTTP status {status}"));
                }
                let snapshot = read_body(&mut response, *cap, &url)?;
                let sig_url = format!("{base}{SIGNATURE_FILE_NAME}");
                let mut response = agent
                    .get(&sig_url)
                    .call()
                    .map_err(|e| format!("GET {sig_url}: {e}"))?;
                let status = response.status().as_u16();
                if status != 200 {
                    return Err(format!("GET {sig_url}: HTTP status {status}"));
                }
                let signature = read_body(&mut response, MAX_SIGNATURE_BYTES as u64, &sig_url)?;
                Ok(Fetched {
                    snapshot,
                    signature,
                    not_modified: false,
                    etag,
                    last_modified,
                })
            }
        }
    }
}

fn read_body(
    response: &mut ureq::http::Response<ureq::Body>,
    cap: u64,
    url: &str,
) -> Result<Vec<u8>, String> {
    response
        .body_mut()
        .with_config()
        .limit(cap)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => {
                format!("GET {url}: larger than {cap} bytes (snapshot_max_bytes)")
            }
            e => format!("GET {url}: {e}"),
        })
}

fn describe_trust(path: &Path, e: &TrustError) -> String {
    if e.is_untrusted() {
        format!(
            "{} is not to be trusted: {}",
            path.display(),
            e.describe_for(path)
        )
    } else {
        e.describe_for(path)
    }
}

/// TLS for an `https` source: ring, and either exactly the certificates of
/// `source_certificate` or the system's CA store.
fn tls_config(settings: &RefreshSettings) -> Result<ureq::tls::TlsConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

    let certs: Vec<Certificate<'static>> = match &settings.source_certificate {
        Some(path) => {
            let pem = read_trusted(path, &TrustRule::CERTIFICATE)
                .map_err(|e| format!("source_certificate: {}", describe_trust(path, &e)))?;
            let mut certs = Vec::new();
            for item in CertificateDer::pem_slice_iter(&pem) {
                let der = item.map_err(|e| {
                    format!("source_certificate {}: not valid PEM: {e}", path.display())
                })?;
                certs.push(Certificate::from_der(der.as_ref()).to_owned());
            }
            if certs.is_empty() {
                return Err(format!(
                    "source_certificate {}: no PEM certificate in the file",
                    path.display()
                ));
            }
            certs
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                return Err(format!(
                    "no certificate in the system's CA store ({} errors); set source_certificate",
                    found.errors.len()
                ));
            }
            found
                .certs
                .iter()
                .map(|c| Certificate::from_der(c.as_ref()).to_owned())
                .collect()
        }
    };
    Ok(TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(RootCerts::Specific(Arc::new(certs)))
        .build())
}

#[cfg(test)]
mod tests;

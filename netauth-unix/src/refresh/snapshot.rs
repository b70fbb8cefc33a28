//! The published snapshot: what one refresh fetched from NetAuth, for hosts
//! that read it from a web server, mirror or folder instead of asking the
//! server (`[unix.refresh] source`).
//!
//! # Files
//!
//! `netauth-unix publish --out DIR` writes two files:
//!
//! - `snapshot.json`: the directory as fetched (every entity and group,
//!   each group's effective members, keys and lock state), not a host's
//!   cache: each host applies its own `[unix.refresh]` rules (local
//!   accounts, name clashes, `min_uid`...) to it, as to a direct fetch.
//! - `snapshot.json.sig`: the detached Ed25519 signature over the exact
//!   bytes of `snapshot.json`, in standard base64 and a newline.
//!
//! # Format (version 1)
//!
//! One JSON object: `format` (`"netauth-unix-snapshot"`), `version` (1),
//! `sequence`, `generated_at` (Unix seconds), `server` (where it was
//! fetched), `entities` (sorted by every field, id first), `groups` (sorted
//! by every field, name first) whose `members` are indexes into `entities`
//! (sorted, no duplicates). Entities and groups are one per line, so a
//! line-based diff or rsync's delta transfer sees only what changed.
//! Unknown fields are errors: a version 2 gets a new `version`.
//!
//! # Stable bytes, increasing sequence
//!
//! The same directory gives the same `entities`, `groups` and `members`
//! bytes (everything sorted; a direct membership or expansion list is a set
//! and is sorted too, keys keep the directory's order, which sshd sees).
//! When those equal the previous snapshot's in `DIR`, publish leaves both
//! files untouched (bytes and modification time), so a web server's ETag and
//! Last-Modified stay and hosts get `304 Not Modified`. Only a changed
//! directory gets a new snapshot, with `generated_at` now and `sequence` =
//! the larger of the previous one + 1 and `generated_at` (so a publisher that
//! lost its folder, or a second publisher, still moves forward).
//! An unchanged directory therefore keeps an old `generated_at`: hosts
//! compare it with `snapshot_max_age_s`, so publish rewrites an unchanged
//! snapshot once it is half that old (the publisher's own
//! `snapshot_max_age_s`), and the age limit catches only a publisher that
//! stopped (or an old snapshot played back to a host that has none yet).

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::build;
use super::model::{SourceEntity, SourceGroup};

/// File names in the published folder (and in the host's cache folder,
/// where the last verified snapshot is kept for `304 Not Modified`).
pub const SNAPSHOT_FILE_NAME: &str = "snapshot.json";
pub const SIGNATURE_FILE_NAME: &str = "snapshot.json.sig";

const FORMAT: &str = "netauth-unix-snapshot";
const VERSION: u32 = 1;
/// The prefix of public keys in `publisher_key` and of `keygen`'s output.
pub const PUBLIC_KEY_PREFIX: &str = "ed25519:";
/// The prefix of the private key file's one line.
pub const PRIVATE_KEY_PREFIX: &str = "ed25519-private:";
/// A signature file is base64 of 64 bytes and a newline; more is refused.
pub const MAX_SIGNATURE_BYTES: usize = 256;

/// A snapshot in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub sequence: u64,
    pub generated_at: i64,
    pub server: String,
    /// Sorted (see the module documentation).
    pub entities: Vec<SourceEntity>,
    /// Sorted.
    pub groups: Vec<SourceGroup>,
    /// Per group (indexed like `groups`), its effective members as sorted
    /// indexes into `entities`.
    pub members: Vec<Vec<u32>>,
}

/// Why snapshot bytes, a signature or a key were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("the signature file is not one base64 Ed25519 signature")]
    BadSignatureFile,
    #[error("the signature does not match the snapshot and publisher_key (altered, or signed by another key)")]
    BadSignature,
    #[error("not a snapshot: {0}")]
    Malformed(String),
    #[error("snapshot version {0} is not known to this netauth-unix (1 is)")]
    UnknownVersion(u32),
    #[error("invalid key: {0}")]
    BadKey(String),
}

impl Snapshot {
    /// A snapshot of what a refresh fetched: sorted, with the effective
    /// memberships computed with the server's rules.
    pub fn from_fetched(
        mut entities: Vec<SourceEntity>,
        mut groups: Vec<SourceGroup>,
        server: String,
    ) -> Snapshot {
        for e in &mut entities {
            e.groups.sort_unstable();
        }
        for g in &mut groups {
            g.expansions.sort_unstable();
        }
        entities.sort_by(|a, b| entity_key(a).cmp(&entity_key(b)));
        groups.sort_by(|a, b| {
            (&a.name, a.number, &a.expansions).cmp(&(&b.name, b.number, &b.expansions))
        });
        let members = build::effective_memberships(&entities, &groups).members;
        Snapshot {
            sequence: 0,
            generated_at: 0,
            server,
            entities,
            groups,
            members,
        }
    }

    /// Whether `self` and `other` hold the same directory (whatever their
    /// sequence, time and server).
    pub fn same_directory(&self, other: &Snapshot) -> bool {
        self.entities == other.entities
            && self.groups == other.groups
            && self.members == other.members
    }

    /// The snapshot's bytes (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 * (self.entities.len() + self.groups.len()) + 256);
        let header = Header {
            format: FORMAT,
            version: VERSION,
            sequence: self.sequence,
            generated_at: self.generated_at,
            server: &self.server,
        };
        // Serializing plain structs of strings and numbers cannot fail.
        let header = serde_json::to_vec(&header).unwrap_or_default();
        // The header object without its closing brace, then the lists.
        out.extend_from_slice(header.strip_suffix(b"}").unwrap_or(&header));
        out.extend_from_slice(b",\n\"entities\":[");
        for (i, e) in self.entities.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            let wire = WireEntity::from(e);
            out.extend_from_slice(&serde_json::to_vec(&wire).unwrap_or_default());
        }
        out.extend_from_slice(b"\n],\n\"groups\":[");
        for (i, (g, members)) in self.groups.iter().zip(&self.members).enumerate() {
            out.extend_from_slice(if i == 0 { b"\n" } else { b",\n" });
            let wire = WireGroup {
                name: g.name.clone(),
                number: g.number,
                expansions: g.expansions.clone(),
                members: members.clone(),
            };
            out.extend_from_slice(&serde_json::to_vec(&wire).unwrap_or_default());
        }
        out.extend_from_slice(b"\n]}\n");
        out
    }

    /// Parses snapshot bytes whose signature was verified
    /// ([`verify_and_decode`] does both, in that order).
    fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| SnapshotError::Malformed(e.to_string()))?;
        if wire.format != FORMAT {
            return Err(SnapshotError::Malformed(format!(
                "format {:?}, not {FORMAT:?}",
                wire.format
            )));
        }
        if wire.version != VERSION {
            return Err(SnapshotError::UnknownVersion(wire.version));
        }
        let count = wire.entities.len();
        let mut groups = Vec::with_capacity(wire.groups.len());
        let mut members = Vec::with_capacity(wire.groups.len());
        for g in wire.groups {
            let sorted = g.members.windows(2).all(|w| matches!(w, [a, b] if a < b));
            if !sorted || g.members.last().is_some_and(|&m| m as usize >= count) {
                return Err(SnapshotError::Malformed(format!(
                    "group {:?}: members are not sorted indexes of the {count} entities",
                    g.name
                )));
            }
            groups.push(SourceGroup {
                name: g.name,
                number: g.number,
                expansions: g.expansions,
            });
            members.push(g.members);
        }
        Ok(Snapshot {
            sequence: wire.sequence,
            generated_at: wire.generated_at,
            server: wire.server,
            entities: wire.entities.into_iter().map(SourceEntity::from).collect(),
            groups,
            members,
        })
    }
}

/// Verifies `signature_file` (the bytes of `snapshot.json.sig`) over
/// `bytes` with `key`, then, and only then, parses `bytes`.
pub fn verify_and_decode(
    bytes: &[u8],
    signature_file: &[u8],
    key: &VerifyingKey,
) -> Result<Snapshot, SnapshotError> {
    let signature = parse_signature(signature_file)?;
    key.verify_strict(bytes, &signature)
        .map_err(|_| SnapshotError::BadSignature)?;
    Snapshot::decode(bytes)
}

/// The contents of `snapshot.json.sig` for `bytes`.
pub fn sign(bytes: &[u8], key: &SigningKey) -> Vec<u8> {
    let mut out = BASE64.encode(key.sign(bytes).to_bytes()).into_bytes();
    out.push(b'\n');
    out
}

fn parse_signature(file: &[u8]) -> Result<Signature, SnapshotError> {
    if file.len() > MAX_SIGNATURE_BYTES {
        return Err(SnapshotError::BadSignatureFile);
    }
    let text = std::str::from_utf8(file).map_err(|_| SnapshotError::BadSignatureFile)?;
    let raw = BASE64
        .decode(text.trim_end_matches('\n'))
        .map_err(|_| SnapshotError::BadSignatureFile)?;
    let raw: [u8; 64] = raw
        .try_into()
        .map_err(|_| SnapshotError::BadSignatureFile)?;
    Ok(Signature::from_bytes(&raw))
}

/// Parses `publisher_key` (`ed25519:BASE64`).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, SnapshotError> {
    let bad = |why: &str| SnapshotError::BadKey(format!("publisher_key {why}"));
    let b64 = text
        .strip_prefix(PUBLIC_KEY_PREFIX)
        .ok_or_else(|| bad("does not start with ed25519:"))?;
    let raw = BASE64
        .decode(b64)
        .map_err(|_| bad("is not base64 after ed25519:"))?;
    let raw: [u8; 32] = raw.try_into().map_err(|_| bad("is not 32 bytes long"))?;
    let key = VerifyingKey::from_bytes(&raw).map_err(|_| bad("is not an Ed25519 public key"))?;
    if key.is_weak() {
        return Err(bad("is a weak Ed25519 key"));
    }
    Ok(key)
}

/// The config form of a public key.
pub fn format_public_key(key: &VerifyingKey) -> String {
    format!("{PUBLIC_KEY_PREFIX}{}", BASE64.encode(key.as_bytes()))
}

/// The private key file's contents for `key`.
pub fn format_private_key(key: &SigningKey) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(format!(
        "{PRIVATE_KEY_PREFIX}{}\n",
        BASE64.encode(key.as_bytes())
    ))
}

/// Parses a private key file. The error never holds its contents.
pub fn parse_private_key(file: &[u8]) -> Result<SigningKey, SnapshotError> {
    let bad = || SnapshotError::BadKey(format!("not a {PRIVATE_KEY_PREFIX}BASE64 line"));
    let text = std::str::from_utf8(file).map_err(|_| bad())?;
    let b64 = text
        .trim_end_matches('\n')
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or_else(bad)?;
    let raw = zeroize::Zeroizing::new(BASE64.decode(b64).map_err(|_| bad())?);
    let seed: &[u8; 32] = raw.as_slice().try_into().map_err(|_| bad())?;
    Ok(SigningKey::from_bytes(seed))
}

/// Sort key of an entity: every field, so that the order never depends on
/// the order of the server's answers.
#[allow(clippy::type_complexity)]
fn entity_key(
    e: &SourceEntity,
) -> (
    &str,
    Option<i32>,
    &Option<std::sync::Arc<str>>,
    &Option<String>,
    &Option<String>,
    &Option<String>,
    &Option<String>,
    bool,
    &[std::sync::Arc<str>],
    &[String],
) {
    (
        &e.id,
        e.number,
        &e.primary_group,
        &e.gecos,
        &e.display_name,
        &e.home,
        &e.shell,
        e.locked,
        &e.groups,
        &e.keys,
    )
}

#[derive(Serialize)]
struct Header<'a> {
    format: &'a str,
    version: u32,
    sequence: u64,
    generated_at: i64,
    server: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    format: String,
    version: u32,
    sequence: u64,
    generated_at: i64,
    server: String,
    entities: Vec<WireEntity>,
    groups: Vec<WireGroup>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntity {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    primary_group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gecos: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    home: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shell: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    locked: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keys: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireGroup {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    number: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    expansions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    members: Vec<u32>,
}

impl From<&SourceEntity> for WireEntity {
    fn from(e: &SourceEntity) -> Self {
        WireEntity {
            id: e.id.clone(),
            number: e.number,
            primary_group: e.primary_group.as_deref().map(str::to_owned),
            gecos: e.gecos.clone(),
            display_name: e.display_name.clone(),
            home: e.home.clone(),
            shell: e.shell.clone(),
            locked: e.locked,
            groups: e.groups.iter().map(|g| g.to_string()).collect(),
            keys: e.keys.clone(),
        }
    }
}

impl From<WireEntity> for SourceEntity {
    fn from(e: WireEntity) -> Self {
        SourceEntity {
            id: e.id,
            number: e.number,
            primary_group: e.primary_group.map(Into::into),
            gecos: e.gecos,
            display_name: e.display_name,
            home: e.home,
            shell: e.shell,
            locked: e.locked,
            groups: e.groups.into_iter().map(Into::into).collect(),
            keys: e.keys,
        }
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "snapshot {} of {} ({} entities, {} groups)",
            self.sequence,
            self.generated_at,
            self.entities.len(),
            self.groups.len()
        )
    }
}

#[cfg(test)]
mod tests;

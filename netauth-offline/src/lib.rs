//! What lets a login survive a NetAuth outage: the cached password
//! verifiers ([`verifier`]) and the offline state ([`state`]).
//!
//! Everything lives in one root-only folder, [`OFFLINE_DIR`]
//! (`/var/lib/netauth/offline`, mode 0700):
//!
//! | file | what | mode |
//! |---|---|---|
//! | `host.key` | 32 random bytes, the HMAC key of every verifier (made on first use) | 0600 |
//! | `v-<SHA-256 of the user name, hex>` | one user's verifier, age and offline failure counter | 0600 |
//! | `.lock.v-<same hex>` | empty; its `flock` serialises the logins of that user (goes with the record) | 0600 |
//! | `state` | "offline until T", backoff, last good server, last error per server | 0600 |
//!
//! Every read goes through the trusted-file helper
//! ([`netauth_cache::trusted`]): no links, a regular file owned by root,
//! size-capped, in a folder owned by root; on top of that neither the files
//! nor the folder may have any group or other permission bit, since they
//! hold secrets. Every write is atomic (a temporary file created
//! exclusively with mode 0600, fsynced, renamed, the folder fsynced).
//!
//! A process that is not root (a screen locker running as the user) cannot
//! open the folder: it gets no cached login and does not record the
//! offline state (it just asks the server).
//!
//! Nothing here formats a password, a verifier or the host key: the types
//! that hold them have redacted `Debug` output, and errors name files and
//! reasons only.

pub mod files;
pub mod state;
pub mod verifier;

pub use files::StoreError;
pub use state::{OfflineState, StateFile};
pub use verifier::{OfflineCheck, VerifierParams, VerifierStore};

/// The folder of the verifiers, the host key and the state file.
pub const OFFLINE_DIR: &str = "/var/lib/netauth/offline";

/// Seconds since the epoch (0 for a clock before it).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

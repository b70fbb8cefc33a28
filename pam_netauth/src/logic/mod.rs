//! Decision logic of the PAM module.
//!
//! The cdylib `pam_netauth` is a thin shell: it turns the C entry points into
//! calls of [`run`] with a [`PamHost`] over the real PAM handle. Everything
//! that decides something lives here, over two small traits, so it is unit
//! tested with fakes:
//!
//! - [`PamHost`]: what the flows need from libpam (user, items,
//!   conversation, syslog);
//! - [`Backend`]: what they need from NetAuth (AuthEntity, EntityInfo +
//!   EntityGroups, the self-service secret change, the on-disk cache).
//!
//! Plus one question answered before any configuration is read: whether the
//! on-disk cache lists the user ([`Listing`]). A user it does not list is not
//! NetAuth's (another directory's, or nobody's), and is left to the other
//! modules without a network call.
//!
//! Return codes follow the table in docs/pam.md; no error path yields
//! [`PamCode::Success`].
//!
//! This code runs inside every PAM-using process: nothing here may panic.

mod args;
mod backend;
mod flow;

pub use args::{ModuleArgs, PassSource, UncachedUsers, DEFAULT_CONFIG_PATH, KNOWN_ARGUMENTS};
pub use backend::{cache_listing, NetAuthBackend};
pub use flow::{run, run_with, Op};
pub use netauth_core::config::pam::{
    PamSection, PamSettings, ServiceSection, DEFAULT_OFFLINE_MAX_AGE_S,
};
pub use netauth_offline::verifier::{OfflineCheck, OfflinePolicy};

use std::time::Duration;

/// A password in memory: wiped when dropped.
pub type Secret = zeroize::Zeroizing<String>;

/// A password as libpam hands it over (conversation answer, PAM item):
/// bytes, not yet known to be text. Wiped when dropped.
pub type RawSecret = zeroize::Zeroizing<Vec<u8>>;

/// Longest password the module accepts, in bytes; longer ones are refused
/// without asking the server.
pub const MAX_PASSWORD_BYTES: usize = 4096;

/// The value this module sends as gRPC `service-name`.
pub const SERVICE_NAME: &str = "pam_netauth";

/// PAM return codes this module uses (Linux-PAM numbering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PamCode {
    Success,
    ServiceErr,
    SystemErr,
    BufErr,
    PermDenied,
    AuthErr,
    AuthinfoUnavail,
    UserUnknown,
    SessionErr,
    ConvErr,
    AuthtokErr,
    AuthtokRecoveryErr,
    TryAgain,
    Ignore,
    Abort,
}

impl PamCode {
    /// The numeric value libpam expects (`security/_pam_types.h`).
    pub fn as_raw(self) -> i32 {
        match self {
            PamCode::Success => 0,
            PamCode::ServiceErr => 3,
            PamCode::SystemErr => 4,
            PamCode::BufErr => 5,
            PamCode::PermDenied => 6,
            PamCode::AuthErr => 7,
            PamCode::AuthinfoUnavail => 9,
            PamCode::UserUnknown => 10,
            PamCode::SessionErr => 14,
            PamCode::ConvErr => 19,
            PamCode::AuthtokErr => 20,
            PamCode::AuthtokRecoveryErr => 21,
            PamCode::TryAgain => 24,
            PamCode::Ignore => 25,
            PamCode::Abort => 26,
        }
    }

    /// A code returned by a libpam call; anything unexpected becomes
    /// SYSTEM_ERR, never SUCCESS.
    pub fn from_raw(raw: i32) -> PamCode {
        match raw {
            0 => PamCode::Success,
            3 => PamCode::ServiceErr,
            5 => PamCode::BufErr,
            6 => PamCode::PermDenied,
            7 => PamCode::AuthErr,
            9 => PamCode::AuthinfoUnavail,
            10 => PamCode::UserUnknown,
            14 => PamCode::SessionErr,
            19 => PamCode::ConvErr,
            20 => PamCode::AuthtokErr,
            21 => PamCode::AuthtokRecoveryErr,
            24 => PamCode::TryAgain,
            25 => PamCode::Ignore,
            26 => PamCode::Abort,
            _ => PamCode::SystemErr,
        }
    }

    /// The C constant's name, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            PamCode::Success => "PAM_SUCCESS",
            PamCode::ServiceErr => "PAM_SERVICE_ERR",
            PamCode::SystemErr => "PAM_SYSTEM_ERR",
            PamCode::BufErr => "PAM_BUF_ERR",
            PamCode::PermDenied => "PAM_PERM_DENIED",
            PamCode::AuthErr => "PAM_AUTH_ERR",
            PamCode::AuthinfoUnavail => "PAM_AUTHINFO_UNAVAIL",
            PamCode::UserUnknown => "PAM_USER_UNKNOWN",
            PamCode::SessionErr => "PAM_SESSION_ERR",
            PamCode::ConvErr => "PAM_CONV_ERR",
            PamCode::AuthtokErr => "PAM_AUTHTOK_ERR",
            PamCode::AuthtokRecoveryErr => "PAM_AUTHTOK_RECOVERY_ERR",
            PamCode::TryAgain => "PAM_TRY_AGAIN",
            PamCode::Ignore => "PAM_IGNORE",
            PamCode::Abort => "PAM_ABORT",
        }
    }
}

/// `flags` bits of the pam_sm_* calls that matter here.
pub mod flags {
    pub const SILENT: i32 = 0x8000;
    pub const DISALLOW_NULL_AUTHTOK: i32 = 0x0001;
    pub const PRELIM_CHECK: i32 = 0x4000;
    pub const UPDATE_AUTHTOK: i32 = 0x2000;
}

/// The two password items of a PAM handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenItem {
    /// PAM_AUTHTOK: the password (auth) or the new password (chauthtok).
    Authtok,
    /// PAM_OLDAUTHTOK: the current password during chauthtok.
    OldAuthtok,
}

/// syslog priorities used by the module (facility is always authpriv).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Err,
    Warning,
    Notice,
    Info,
    Debug,
}

/// What the flows need from libpam. The real implementation lives in the
/// `pam_netauth` crate; tests use a fake.
pub trait PamHost {
    /// PAM_USER, asking through the conversation when unset (`pam_get_user`).
    fn user(&mut self) -> Result<String, PamCode>;
    /// PAM_SERVICE, if set.
    fn service(&self) -> Option<String>;
    /// PAM_RHOST, if set.
    fn rhost(&self) -> Option<String>;
    /// Reads PAM_AUTHTOK / PAM_OLDAUTHTOK, bytes as they are.
    fn token(&self, item: TokenItem) -> Result<Option<RawSecret>, PamCode>;
    /// Stores PAM_AUTHTOK / PAM_OLDAUTHTOK for later modules.
    fn set_token(&mut self, item: TokenItem, value: &[u8]) -> Result<(), PamCode>;
    /// Asks for a secret with echo off; the answer's bytes as they are.
    fn prompt_secret(&mut self, prompt: &str) -> Result<RawSecret, PamCode>;
    /// Shows an error text to the user (not called under PAM_SILENT).
    fn show_error(&mut self, message: &str);
    /// Shows an informational text to the user (PAM_TEXT_INFO; not called
    /// under PAM_SILENT).
    fn show_info(&mut self, message: &str);
    /// Writes one line to syslog, facility authpriv.
    fn log(&mut self, level: LogLevel, message: &str);
}

/// What the server said about an entity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountInfo {
    pub locked: bool,
    /// Effective group names; empty when not asked for.
    pub groups: Vec<String>,
}

/// Failure of a backend call, classified for the return-code contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// The server says the entity does not exist (NOT_FOUND).
    NotFound,
    /// The server refused: wrong secret, locked or unknown entity
    /// (UNAUTHENTICATED), or PERMISSION_DENIED.
    Rejected(String),
    /// No usable answer in time: unreachable, deadline, TLS rejected,
    /// transport errors.
    Unavailable(String),
    /// The server answered with another error (INTERNAL, UNIMPLEMENTED, ...).
    Failed(String),
    /// The configuration turned out unusable only when used (e.g. the
    /// trusted certificate is not a PEM certificate): PAM_SERVICE_ERR.
    Misconfigured(String),
}

/// What the on-disk cache knows about a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CacheAnswer {
    /// No cache, or one that cannot be read; the text says why.
    Unusable(String),
    /// The cache is readable and does not list the user.
    Absent,
    /// The user is listed.
    Present {
        locked: bool,
        /// Names of the groups the cache lists the user in.
        groups: Vec<String>,
        /// Time since the cache was written.
        age: Duration,
    },
}

/// Whether the on-disk cache (the one the NSS module serves the host's
/// NetAuth users from) lists a user by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listing {
    Listed,
    NotListed,
    /// No cache, or one that cannot be trusted or read; the text says why.
    Unusable(String),
}

/// What the flows need from NetAuth.
pub trait Backend {
    /// AuthEntity.
    fn authenticate(&mut self, user: &str, secret: &str) -> Result<(), BackendError>;
    /// EntityInfo, plus EntityGroups when `with_groups`.
    fn account(&mut self, user: &str, with_groups: bool) -> Result<AccountInfo, BackendError>;
    /// Self-service change: AuthGetToken with `old`, then AuthChangeSecret on
    /// the master.
    fn change_secret(&mut self, user: &str, old: &str, new: &str) -> Result<(), BackendError>;
    /// The on-disk cache's view of `user`, for offline account decisions.
    fn cached_account(&mut self, user: &str) -> CacheAnswer;
    /// Whether `user` is a local account (in the local passwd file). Such a
    /// user is never NetAuth's to decide, even when an entity has the same
    /// name: otherwise a NetAuth secret would open a local account (root).
    fn is_local_account(&mut self, user: &str) -> Result<bool, BackendError>;
    /// Whether `user` has a cached password verifier (that a "locked" or
    /// "unknown" answer must delete).
    fn has_verifier(&mut self, user: &str) -> bool;
    /// The cached verifier's verdict on `secret`; asked only when no
    /// server could be reached.
    fn offline_check(&mut self, user: &str, secret: &str, policy: &OfflinePolicy) -> OfflineCheck;
    /// After an online success with `secret` (a login, a password change):
    /// stores a new verifier. The error text names a file, never a secret.
    fn remember_secret(&mut self, user: &str, secret: &str) -> Result<(), String>;
    /// Deletes `user`'s verifier (the server says locked or unknown).
    fn forget_secret(&mut self, user: &str) -> Result<(), String>;
}

#[cfg(test)]
mod tests;

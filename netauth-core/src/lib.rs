//! Shared code of the NetAuth PAM/NSS modules.

pub mod cache;

#[cfg(feature = "client")]
pub use netauth_proto as proto;

#[cfg(feature = "client")]
pub mod pam;

#[cfg(feature = "client")]
pub mod refresh;

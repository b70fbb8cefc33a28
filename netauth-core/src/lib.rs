//! Shared code of the NetAuth PAM/NSS modules.

#[cfg(feature = "client")]
pub use netauth_proto as proto;

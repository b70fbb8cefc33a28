//! Shared code of the NetAuth PAM/NSS modules.
//!
//! With the `client` feature (default): the NetAuth gRPC client
//! ([`client::Client`], [`blocking::BlockingClient`]), its configuration
//! ([`config::Config`]), errors, token caches and secrets. Without features
//! only the on-disk cache format is built (for the NSS module, which must not
//! pull in tokio or tonic).

pub mod cache;

#[cfg(feature = "client")]
pub use netauth_proto as proto;

#[cfg(feature = "client")]
pub mod pam;

#[cfg(feature = "client")]
pub mod refresh;

#[cfg(feature = "client")]
pub mod blocking;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "client")]
pub mod config;
#[cfg(feature = "client")]
pub mod error;
#[cfg(feature = "client")]
pub mod secret;
#[cfg(feature = "client")]
mod secret_rpc;
#[cfg(feature = "client")]
mod tls;
#[cfg(feature = "client")]
pub mod token;
#[cfg(feature = "client")]
pub mod types;

#[cfg(feature = "client")]
pub use client::{Client, ClientBuilder};
#[cfg(feature = "client")]
pub use config::Config;
#[cfg(feature = "client")]
pub use error::{Error, Result};
#[cfg(feature = "client")]
pub use secret::{Secret, Token};

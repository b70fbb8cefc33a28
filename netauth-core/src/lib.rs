//! The NetAuth v2 client shared by the PAM module and the admin command.
//!
//! [`client::Client`] (async) and [`blocking::BlockingClient`] (one
//! current-thread runtime per call, dropped before returning) cover the whole
//! v2 API; [`config::Config`] reads NetAuth's own `config.toml`, including
//! our `[unix]` tables; [`error::Error`] tells the server's answers apart
//! from transport failures; [`token`] keeps tokens as NetAuth's tools do.
//!
//! Nothing here is loaded by the NSS module: the cache it reads lives in the
//! network-free `netauth-cache` crate.

pub use netauth_proto as proto;

pub mod blocking;
pub mod client;
pub mod config;
pub mod error;
pub mod secret;
mod secret_rpc;
mod tls;
pub mod token;
pub mod types;

pub use client::{Client, ClientBuilder};
pub use config::Config;
pub use error::{Error, Result};
pub use secret::{Secret, Token};

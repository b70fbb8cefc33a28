//! The refresh: fills the NSS cache from the NetAuth server.
//! (Documentation of settings and rules: see below, completed with the runner.)

pub mod build;
pub mod clean;
pub(crate) mod fetch;
pub mod members;
pub mod model;
pub mod settings;
pub mod status;

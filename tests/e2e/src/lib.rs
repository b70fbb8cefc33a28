//! End-to-end tests live in tests/.

pub mod nss;

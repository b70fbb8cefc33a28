//! End-to-end tests live in tests/.

pub mod elf;
pub mod nss;
pub mod root;

pub use root::skip_without_root;

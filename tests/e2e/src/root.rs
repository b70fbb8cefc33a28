//! The end-to-end tests mount file systems in private namespaces, install
//! files owned by root and switch users: they need root. The skip itself is
//! shared with every crate's tests and lives in `netauth-test-support`.

pub use netauth_test_support::{skip_without_root, REQUIRE_ROOT_VAR};

//! The admin side of netauth-unix: the refresh that fills the NSS cache from
//! the NetAuth server, and its status file; and `ssh-keys`, sshd's
//! `AuthorizedKeysCommand`. The `netauth-unix` command (`src/main.rs`) is a
//! thin front end over this library.

pub mod refresh;
pub mod ssh_keys;

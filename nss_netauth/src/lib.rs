//! `libnss_netauth.so.2`: glibc NSS module answering `passwd`, `group` and
//! `initgroups` for NetAuth users and groups from the on-disk cache at
//! [`netauth_cache::CACHE_PATH`] (written by `netauth-unix refresh`).
//!
//! No network, no daemon, no threads: a lookup checks the mapped cache's
//! replaced mark (no system call; see `source`), maps the file if it is new (its header checked once per version, each data
//! block the first time a lookup reads it; see `source`), finds the entry
//! through the file's indexes and copies it into the caller's buffer
//! (`pack`). `ffi` holds the C entry points and all the unsafe code.
//!
//! nsswitch.conf: `passwd: files netauth` and `group: files netauth`. Do not
//! add an `initgroups:` line unless it continues past `files`
//! (`initgroups: files [SUCCESS=continue] netauth`): with such a line glibc
//! stops at the first service that reports success, and a NetAuth user who
//! is also in a local group would lose their NetAuth groups.

mod enumerate;
mod ffi;
mod pack;
mod source;
#[cfg(test)]
mod testing;

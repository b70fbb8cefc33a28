//! `netauth-unix status`: the offline state the PAM module recorded and
//! how many users have cached credentials (never whose secret).

use std::path::Path;

use netauth_cache::trusted::Owner;
use netauth_offline::{StateFile, VerifierStore};
use netauth_unix::refresh::offline::offline_dir;

use crate::output::say;
use crate::status::{format_age, format_time};

/// Prints the offline lines of the report for the offline folder of
/// `cache_dir`. Nothing here changes the exit status: an outage shows as
/// an unreachable server already.
pub fn report(cache_dir: &Path, now: i64) {
    let dir = offline_dir(cache_dir);
    let now_u = u64::try_from(now).unwrap_or(0);
    match StateFile::at(&dir, Owner::Root).read() {
        Ok(state) if state.in_outage() => {
            let since = i64::try_from(state.since).unwrap_or(0);
            let until = i64::try_from(state.until).unwrap_or(0);
            say!(
                "offline:      since {} ({} ago); next probe {}",
                format_time(since),
                format_age(now - since),
                if state.is_offline(now_u) {
                    format!("{} (in {})", format_time(until), format_age(until - now))
                } else {
                    "at the next login".to_owned()
                }
            );
            print_servers(&state);
        }
        Ok(state) => {
            say!("offline:      no (no outage recorded)");
            print_servers(&state);
        }
        Err(e) => say!("offline:      state unreadable: {e}"),
    }
    match VerifierStore::at(&dir, Owner::Root).count() {
        Ok(n) => say!("cached credentials: {n} user(s) ({})", dir.display()),
        Err(e) => say!("cached credentials: unreadable: {e}"),
    }
}

fn print_servers(state: &netauth_offline::OfflineState) {
    if let Some(server) = &state.last_good {
        say!("last good:    {server}");
    }
    for e in &state.errors {
        say!(
            "last error:   {} at {}: {}",
            e.server,
            format_time(i64::try_from(e.at).unwrap_or(0)),
            e.text
        );
    }
}

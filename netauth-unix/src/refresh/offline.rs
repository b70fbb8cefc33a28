//! After a successful refresh: the cached credentials of users the new
//! cache no longer serves are deleted (a user removed from the directory,
//! or no longer served here, must not log in during the next outage), and
//! the offline state is cleared (a server answered), remembering the one
//! that did.
//!
//! The folder is `cache_dir/offline`: `/var/lib/netauth/offline`, the one
//! the PAM module uses, unless `[unix] cache_dir` moves it for a test.

use std::path::Path;

use netauth_cache::trusted::{read_trusted, Owner, TrustRule};
use netauth_cache::CacheView;
use netauth_offline::{StateFile, VerifierStore};

use super::{Notice, RefreshReport};

/// The offline folder of the cache folder `cache_dir`.
pub fn offline_dir(cache_dir: &Path) -> std::path::PathBuf {
    cache_dir.join("offline")
}

/// See the [module documentation](self); problems become notices.
pub fn after_success(cache_dir: &Path, answered_by: Option<&str>, report: &mut RefreshReport) {
    prune_verifiers(cache_dir, report);
    if let Err(e) = StateFile::at(offline_dir(cache_dir), Owner::Root).clear(answered_by) {
        report.notices.push(Notice::OfflineStoreUnusable {
            error: e.to_string(),
        });
    }
}

/// Deletes the cached credentials of users the new cache does not serve.
/// A refresh from a published snapshot does only this: it says nothing
/// about whether the NetAuth server answers, so the offline state stays.
pub fn prune_verifiers(cache_dir: &Path, report: &mut RefreshReport) {
    let dir = offline_dir(cache_dir);
    let bytes = match read_trusted(&report.cache_path, &TrustRule::CACHE) {
        Ok(bytes) => bytes,
        Err(e) => {
            report.notices.push(Notice::OfflineStoreUnusable {
                error: e.to_string(),
            });
            return;
        }
    };
    let removed = CacheView::parse(&bytes)
        .map_err(|e| e.to_string())
        .and_then(|view| {
            VerifierStore::at(&dir, Owner::Root)
                .retain(|user| matches!(view.user_by_name(user.as_bytes()), Ok(Some(_))))
                .map_err(|e| e.to_string())
        });
    match removed {
        Ok(0) => {}
        Ok(count) => report.notices.push(Notice::VerifiersRemoved { count }),
        Err(error) => report.notices.push(Notice::OfflineStoreUnusable { error }),
    }
}

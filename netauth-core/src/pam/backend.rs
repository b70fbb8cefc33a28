//! The real backend: NetAuth through the core's blocking client, and the
//! on-disk cache for offline account decisions.

use super::{AccountInfo, Backend, BackendError, CacheAnswer, ModuleArgs, PamSettings};

/// NetAuth through the blocking client (placeholder until the client lands).
pub struct NetAuthBackend {
    _private: (),
}

impl NetAuthBackend {
    /// Reads the configuration named by the module arguments.
    pub fn load(args: &ModuleArgs) -> Result<(PamSettings, NetAuthBackend), String> {
        Err(format!(
            "{}: client not available yet",
            args.config.display()
        ))
    }
}

impl Backend for NetAuthBackend {
    fn authenticate(&mut self, _user: &str, _secret: &str) -> Result<(), BackendError> {
        Err(BackendError::Unavailable("not implemented".into()))
    }
    fn account(&mut self, _user: &str, _with_groups: bool) -> Result<AccountInfo, BackendError> {
        Err(BackendError::Unavailable("not implemented".into()))
    }
    fn change_secret(&mut self, _user: &str, _old: &str, _new: &str) -> Result<(), BackendError> {
        Err(BackendError::Unavailable("not implemented".into()))
    }
    fn cached_account(&mut self, _user: &str) -> CacheAnswer {
        CacheAnswer::Unusable("not implemented".into())
    }
}

//! A blocking facade for the PAM module and the admin tool.
//!
//! Each call builds a current-thread Tokio runtime, builds the async client
//! inside it (tonic channels spawn their tasks on the runtime that builds
//! them), runs, and drops the runtime before returning. Dropping the runtime
//! cancels its tasks and joins its blocking-pool threads (used for DNS
//! look-ups), so no thread outlives the call. The price: a DNS look-up that
//! hangs in the C library delays the return until the resolver gives up.

use std::future::Future;

use crate::client::{Client, ClientBuilder};
use crate::error::{Error, Result};
use crate::secret::{Secret, Token};
use crate::types::{Entity, Group, ServerStatus};

/// Runs NetAuth calls synchronously; see the module documentation.
#[derive(Debug, Clone)]
pub struct BlockingClient {
    builder: ClientBuilder,
}

impl BlockingClient {
    /// Wraps `builder`. Its token cache is created now, so a memory cache
    /// lasts across calls.
    pub fn new(builder: ClientBuilder) -> Self {
        BlockingClient {
            builder: builder.share_token_cache(),
        }
    }

    pub fn builder(&self) -> &ClientBuilder {
        &self.builder
    }

    /// Runs `f` with a fresh client on a runtime that lives only for this
    /// call; for several calls on one connection.
    pub fn run<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(Client) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            // block_on inside a runtime would panic; use the async client there.
            return Err(Error::Runtime(
                "blocking NetAuth call made from inside an async runtime".to_owned(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| Error::Runtime(format!("cannot start a Tokio runtime: {e}")))?;
        let result = runtime.block_on(async {
            let client = self.builder.build()?;
            f(client).await
        });
        drop(runtime);
        result
    }

    /// See [`Client::auth_entity`].
    pub fn auth_entity(&self, id: &str, secret: &Secret) -> Result<()> {
        self.run(|c| async move { c.auth_entity(id, secret).await })
    }

    /// See [`Client::auth_get_token`].
    pub fn get_token(&self, id: &str, secret: &Secret) -> Result<Token> {
        self.run(|c| async move { c.auth_get_token(id, secret).await })
    }

    /// Self-service secret change; see [`Client::change_own_secret`].
    pub fn change_secret(&self, id: &str, old_secret: &Secret, new_secret: &Secret) -> Result<()> {
        self.run(|c| async move { c.change_own_secret(id, old_secret, new_secret).await })
    }

    pub fn entity_info(&self, id: &str) -> Result<Entity> {
        self.run(|c| async move { c.entity_info(id).await })
    }

    pub fn entity_groups(&self, id: &str) -> Result<Vec<Group>> {
        self.run(|c| async move { c.entity_groups(id).await })
    }

    pub fn group_members(&self, name: &str) -> Result<Vec<Entity>> {
        self.run(|c| async move { c.group_members(name).await })
    }

    pub fn entity_search(&self, expression: &str) -> Result<Vec<Entity>> {
        self.run(|c| async move { c.entity_search(expression).await })
    }

    pub fn group_search(&self, expression: &str) -> Result<Vec<Group>> {
        self.run(|c| async move { c.group_search(expression).await })
    }

    pub fn ping(&self) -> Result<()> {
        self.run(|c| async move { c.system_ping().await })
    }

    pub fn status(&self) -> Result<ServerStatus> {
        self.run(|c| async move { c.system_status().await })
    }
}

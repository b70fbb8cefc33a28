//! The async NetAuth client.
//!
//! Reads go to the read servers (`[unix] servers`, else `core.server`),
//! writes to `core.master`, each over its own lazily connected channel.
//! The read servers are tried in order within the one deadline of the call
//! (see [`ServerHealth`]): each gets an equal share of what is left, the last
//! one all of it, and the one that answered is tried first from then on. Every call carries `client-name` and
//! `service-name`; calls that need a token also carry `authorization` (the
//! raw token). Every call has a deadline, enforced both as the gRPC timeout
//! and locally, so a server that accepts TCP and then says nothing still
//! fails in time.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use crate::config::{Config, TokenCacheKind};
use crate::error::{Error, Result};
use crate::proto;
use crate::proto::netauth::v2 as pb;
use crate::proto::netauth::v2::net_auth2_client::NetAuth2Client;
use crate::secret::{Secret, Token};
use crate::secret_rpc::{self, AuthRpc, SecretRequest};
use crate::tls::{self, Connector, TlsSettings};
use crate::token::{FsTokenCache, MemoryTokenCache, TokenCache};
use crate::types::{
    Action, Capability, Entity, EntityMeta, Group, GroupInfo, KvData, RuleAction, ServerStatus,
};

/// `service-name` sent when the caller sets none.
pub const DEFAULT_SERVICE_NAME: &str = "netauth-unix";
/// Largest message sent or accepted: a search over a 20,000-entity
/// directory answers far more than gRPC's usual 4 MiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Something that produces the entity's secret when a token is needed
/// (for example by asking the user). `None` means "no secret available".
pub type SecretCallback = Arc<dyn Fn() -> Option<Secret> + Send + Sync>;

#[derive(Clone)]
enum SecretSource {
    Fixed(Secret),
    Callback(SecretCallback),
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Fixed(_) => f.write_str("Fixed(<redacted>)"),
            SecretSource::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// Which read server answered last and what the others said: shared by
/// every client built from one [`ClientBuilder`] (and its clones), so that a
/// server found dead is not waited on again by the next call, and so that
/// the caller can remember the good one (the PAM module keeps it in its
/// state file) and report the errors.
#[derive(Debug, Default)]
pub struct ServerHealth {
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    /// Tried first (a `host:port` of the list).
    preferred: Option<String>,
    /// The last server that answered a call, if any did.
    answered: Option<String>,
    /// The last transport failure of each server that had one, in order.
    failures: Vec<(String, String)>,
}

impl ServerHealth {
    fn lock(&self) -> MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tries `server` (`host:port`) first from now on.
    pub fn prefer(&self, server: &str) {
        self.lock().preferred = Some(server.to_owned());
    }

    /// The server that answered last (any answer, errors included, as long
    /// as it came from the server).
    pub fn answered_by(&self) -> Option<String> {
        self.lock().answered.clone()
    }

    /// The last transport failure of each server, since this was created.
    pub fn failures(&self) -> Vec<(String, String)> {
        self.lock().failures.clone()
    }

    fn order(&self, names: &[&str]) -> Vec<usize> {
        let state = self.lock();
        let first = state
            .preferred
            .as_deref()
            .and_then(|p| names.iter().position(|n| *n == p));
        first
            .into_iter()
            .chain((0..names.len()).filter(|i| Some(*i) != first))
            .collect()
    }

    fn answered(&self, server: &str) {
        let mut state = self.lock();
        state.answered = Some(server.to_owned());
        state.preferred = Some(server.to_owned());
    }

    fn failed(&self, server: &str, error: &Error) {
        let mut state = self.lock();
        let text = error.to_string();
        match state.failures.iter_mut().find(|(s, _)| s == server) {
            Some(entry) => entry.1 = text,
            None => state.failures.push((server.to_owned(), text)),
        }
    }
}

/// Builds a [`Client`] from a [`Config`] (or a config file) plus overrides,
/// which win over the file.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    config: Config,
    service_name: String,
    entity: Option<String>,
    secret: Option<SecretSource>,
    token_cache: Option<Arc<dyn TokenCache>>,
    health: Arc<ServerHealth>,
}

impl ClientBuilder {
    /// A builder for `server` with every default and no config file.
    pub fn new(server: impl Into<String>) -> Self {
        Self::from_config(Config::new(server))
    }

    pub fn from_config(config: Config) -> Self {
        ClientBuilder {
            config,
            service_name: DEFAULT_SERVICE_NAME.to_owned(),
            entity: None,
            secret: None,
            token_cache: None,
            health: Arc::default(),
        }
    }

    /// Reads the config file at `path`.
    pub fn from_config_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Ok(Self::from_config(Config::load(path)?))
    }

    /// The settings as they stand (file plus overrides so far).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads go to `server` alone (it replaces `[unix] servers`).
    pub fn server(mut self, server: impl Into<String>) -> Self {
        self.config.server = server.into();
        self.config.unix.servers = None;
        self
    }

    /// Reads go to these servers (`host` or `host:port`), tried in order.
    pub fn read_servers(mut self, servers: Vec<String>) -> Self {
        self.config.unix.servers = Some(servers);
        self
    }

    /// The read servers as `host:port`, in the configured order.
    pub fn read_server_names(&self) -> Vec<String> {
        self.read_list()
            .iter()
            .map(|(host, port)| authority(host, *port))
            .collect()
    }

    fn read_list(&self) -> Vec<(String, u16)> {
        let list = self.config.unix.read_servers(self.config.port);
        if list.is_empty() {
            vec![(self.config.server.clone(), self.config.port)]
        } else {
            list
        }
    }

    /// Tries `server` (`host:port`, as [`ClientBuilder::read_server_names`]
    /// spells it) first, e.g. the one that answered last time.
    pub fn prefer_server(self, server: &str) -> Self {
        self.health.prefer(server);
        self
    }

    /// What the clients built from this builder learnt about the servers.
    pub fn health(&self) -> &Arc<ServerHealth> {
        &self.health
    }

    pub fn port(mut self, port: u16) -> Self {
        self.config.port = port;
        self
    }

    pub fn master(mut self, master: impl Into<String>) -> Self {
        self.config.master = Some(master.into());
        self
    }

    /// The PEM file to trust (instead of `tls.certificate`).
    pub fn certificate(mut self, path: impl Into<PathBuf>) -> Self {
        self.config.certificate = path.into();
        self
    }

    /// `true` turns TLS off (plain-text gRPC).
    pub fn pwn_me(mut self, plain_text: bool) -> Self {
        self.config.pwn_me = plain_text;
        self
    }

    /// The `client-name` to send (instead of `client.ID` / the host name).
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.config.client_id = Some(id.into());
        self
    }

    /// The `service-name` to send, e.g. `pam_netauth`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config.connect_timeout = timeout;
        self
    }

    /// The deadline of each call.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.config.request_timeout = timeout;
        self
    }

    /// Selects the kind of token cache (instead of `token.cache`).
    pub fn token_cache_kind(mut self, kind: TokenCacheKind) -> Self {
        self.config.token_cache = kind;
        self.token_cache = None;
        self
    }

    /// Uses this token cache instance.
    pub fn token_cache(mut self, cache: Arc<dyn TokenCache>) -> Self {
        self.token_cache = Some(cache);
        self
    }

    /// The entity whose token authorizes calls that need one.
    pub fn entity(mut self, entity: impl Into<String>) -> Self {
        self.entity = Some(entity.into());
        self
    }

    /// The entity's secret, used to get a token when none is cached.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secret = Some(SecretSource::Fixed(secret));
        self
    }

    /// Asks `callback` for the secret only when a token must be fetched.
    pub fn secret_callback(
        mut self,
        callback: impl Fn() -> Option<Secret> + Send + Sync + 'static,
    ) -> Self {
        self.secret = Some(SecretSource::Callback(Arc::new(callback)));
        self
    }

    /// Creates the token cache now (if none was given) so that every client
    /// built from this builder shares it, e.g. across blocking calls.
    pub fn share_token_cache(mut self) -> Self {
        if self.token_cache.is_none() {
            self.token_cache = Some(self.new_token_cache());
        }
        self
    }

    fn new_token_cache(&self) -> Arc<dyn TokenCache> {
        match self.config.token_cache {
            TokenCacheKind::Fs => Arc::new(FsTokenCache::new()),
            TokenCacheKind::Memory => Arc::new(MemoryTokenCache::new()),
        }
    }

    /// Builds the client. Must run inside a Tokio runtime (the channels'
    /// background tasks live on it); no connection is made until the first
    /// call. Reads the trusted certificate unless TLS is off.
    pub fn build(&self) -> Result<Client> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Runtime(
                "ClientBuilder::build must be called inside a Tokio runtime".to_owned(),
            ));
        }
        let config = &self.config;
        if config.server.trim().is_empty() {
            let file = config.file.clone().unwrap_or_default();
            return Err(Error::config(
                file,
                Some("core.server"),
                "missing: the NetAuth server to use",
            ));
        }
        let client_name = ascii_metadata("client-name", &config.client_id())?;
        let service_name = ascii_metadata("service-name", &self.service_name)?;

        let tls_config = if config.pwn_me {
            None
        } else {
            Some(self.load_tls()?)
        };
        let key = if config.unix.read_servers(config.port).is_empty() {
            "core.server"
        } else {
            "unix.servers"
        };
        let reads = self
            .read_list()
            .iter()
            .map(|(host, port)| Remote::new(host, *port, tls_config.as_ref(), config, key))
            .collect::<Result<Vec<_>>>()?;
        let master = authority(config.master(), config.port);
        let write = match reads.iter().find(|r| r.name == master) {
            Some(read) => read.clone(),
            None => Remote::new(
                config.master(),
                config.port,
                tls_config.as_ref(),
                config,
                "core.master",
            )?,
        };
        let token_cache = self
            .token_cache
            .clone()
            .unwrap_or_else(|| self.new_token_cache());

        Ok(Client {
            inner: Arc::new(Inner {
                reads,
                health: self.health.clone(),
                write,
                client_name,
                service_name,
                request_timeout: config.request_timeout,
                entity: self.entity.clone(),
                secret: self.secret.clone(),
                token_cache,
            }),
        })
    }

    fn load_tls(&self) -> Result<Arc<rustls::ClientConfig>> {
        let path = &self.config.certificate;
        let from = match &self.config.file {
            Some(file) => format!(" (tls.certificate of {})", file.display()),
            None => String::new(),
        };
        let pem = tls::read_certificate(path, &from)?;
        tls::client_config(tls::load_roots(&pem, path)?)
    }
}

/// The token of a GetToken answer; an answer without one is an error.
fn token_of(answer: pb::AuthResult, id: &str) -> Result<Token> {
    match answer.token {
        Some(token) if !token.is_empty() => Ok(Token::new(token)),
        _ => Err(Error::NoToken {
            entity: id.to_owned(),
        }),
    }
}

fn ascii_metadata(key: &str, value: &str) -> Result<AsciiMetadataValue> {
    MetadataValue::try_from(value)
        .map_err(|_| Error::InvalidArgument(format!("{key} {value:?} is not printable ASCII")))
}

/// `host:port` with IPv6 literals bracketed.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// One server and the channel to it.
#[derive(Clone)]
struct Remote {
    stub: NetAuth2Client<Channel>,
    /// The stub's channel, for the calls made with the wiping codec.
    channel: Channel,
    /// `host:port`, for error messages.
    name: String,
}

impl Remote {
    fn new(
        host: &str,
        port: u16,
        tls_config: Option<&Arc<rustls::ClientConfig>>,
        config: &Config,
        key: &'static str,
    ) -> Result<Remote> {
        let name = authority(host, port);
        let bad_host = |e: &dyn fmt::Display| {
            let file = config.file.clone().unwrap_or_default();
            Error::config(file, Some(key), format!("cannot use server {name:?}: {e}"))
        };
        // Our connector does TLS itself, so tonic sees http://; the origin
        // tells the server the request came over https.
        let mut endpoint =
            Endpoint::from_shared(format!("http://{name}")).map_err(|e| bad_host(&e))?;
        let tls = match tls_config {
            Some(tls_config) => {
                let origin = format!("https://{name}")
                    .parse()
                    .map_err(|e: tonic::codegen::http::uri::InvalidUri| bad_host(&e))?;
                endpoint = endpoint.origin(origin);
                Some(TlsSettings {
                    config: tls_config.clone(),
                    server_name: tls::server_name(host)?,
                    trusted: config.certificate.clone(),
                })
            }
            None => None,
        };
        let connector = Connector {
            host: host.to_owned(),
            port,
            tls,
            timeout: config.connect_timeout,
        };
        let channel = endpoint.connect_with_connector_lazy(connector);
        let stub = NetAuth2Client::new(channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Remote {
            stub,
            channel,
            name,
        })
    }
}

type Stub = NetAuth2Client<Channel>;
type RpcResult<T> = std::result::Result<tonic::Response<T>, tonic::Status>;

struct Inner {
    /// The read servers, in the configured order.
    reads: Vec<Remote>,
    health: Arc<ServerHealth>,
    write: Remote,
    client_name: AsciiMetadataValue,
    service_name: AsciiMetadataValue,
    request_timeout: Duration,
    entity: Option<String>,
    secret: Option<SecretSource>,
    token_cache: Arc<dyn TokenCache>,
}

/// The NetAuth client. Cheap to clone; all clones share channels and cache.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field(
                "servers",
                &self.inner.reads.iter().map(|r| &r.name).collect::<Vec<_>>(),
            )
            .field("master", &self.inner.write.name)
            .field("entity", &self.inner.entity)
            .field("secret", &self.inner.secret)
            .field("request_timeout", &self.inner.request_timeout)
            .finish_non_exhaustive()
    }
}

fn entity_ref(id: &str) -> proto::Entity {
    proto::Entity {
        id: Some(id.to_owned()),
        ..Default::default()
    }
}

fn group_ref(name: &str) -> proto::Group {
    proto::Group {
        name: Some(name.to_owned()),
        ..Default::default()
    }
}

fn entity_request(id: &str) -> pb::EntityRequest {
    pb::EntityRequest {
        entity: Some(entity_ref(id)),
        data: None,
    }
}

fn group_request(name: &str) -> pb::GroupRequest {
    pb::GroupRequest {
        group: Some(group_ref(name)),
        data: None,
    }
}

fn membership_request(group: &str, entity: &str) -> pb::EntityRequest {
    pb::EntityRequest {
        entity: Some(proto::Entity {
            id: Some(entity.to_owned()),
            meta: Some(proto::EntityMeta {
                groups: vec![group.to_owned()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        data: None,
    }
}

fn kv_request(target: &str, action: Action, key: &str, value: Option<&str>) -> pb::KvRequest {
    pb::KvRequest {
        target: Some(target.to_owned()),
        action: Some(i32::from(action)),
        key: Some(key.to_owned()),
        value: value.map(str::to_owned),
    }
}

fn kv2_request(target: &str, data: KvData) -> pb::Kv2Request {
    pb::Kv2Request {
        target: Some(target.to_owned()),
        data: Some(data.into()),
    }
}

fn kv2_key(target: &str, key: &str) -> pb::Kv2Request {
    kv2_request(
        target,
        KvData {
            key: key.to_owned(),
            values: Vec::new(),
        },
    )
}

fn search_request(expression: &str) -> pb::SearchRequest {
    pb::SearchRequest {
        expression: Some(expression.to_owned()),
    }
}

impl Client {
    /// Shorthand for [`ClientBuilder::from_config_file`].
    pub fn builder_from_file(path: impl AsRef<std::path::Path>) -> Result<ClientBuilder> {
        ClientBuilder::from_config_file(path)
    }

    /// The entity this client authenticates as, if any.
    pub fn entity(&self) -> Option<&str> {
        self.inner.entity.as_deref()
    }

    /// The token cache in use.
    pub fn token_cache(&self) -> &Arc<dyn TokenCache> {
        &self.inner.token_cache
    }

    /// What the clients of this builder learnt about the read servers.
    pub fn health(&self) -> &Arc<ServerHealth> {
        &self.inner.health
    }

    /// One gRPC call with metadata, token and deadline.
    async fn call<Req, Resp, F, Fut>(
        &self,
        remote: &Remote,
        message: Req,
        token: Option<&Token>,
        rpc: F,
    ) -> Result<Resp>
    where
        F: FnOnce(Stub, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = RpcResult<Resp>>,
    {
        self.call_within(remote, message, token, rpc, self.inner.request_timeout)
            .await
    }

    /// [`Client::call`] with its own deadline.
    async fn call_within<Req, Resp, F, Fut>(
        &self,
        remote: &Remote,
        message: Req,
        token: Option<&Token>,
        rpc: F,
        deadline: Duration,
    ) -> Result<Resp>
    where
        F: FnOnce(Stub, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = RpcResult<Resp>>,
    {
        let mut request = tonic::Request::new(message);
        request.set_timeout(deadline);
        let metadata = request.metadata_mut();
        metadata.insert("client-name", self.inner.client_name.clone());
        metadata.insert("service-name", self.inner.service_name.clone());
        if let Some(token) = token {
            let mut value = MetadataValue::try_from(token.expose()).map_err(|_| {
                Error::InvalidArgument("the token is not printable ASCII".to_owned())
            })?;
            // Keeps the token out of HPACK tables and Debug output.
            value.set_sensitive(true);
            metadata.insert("authorization", value);
        }
        match tokio::time::timeout(deadline, rpc(remote.stub.clone(), request)).await {
            Err(_elapsed) => Err(Error::TimedOut {
                server: remote.name.clone(),
                after: deadline,
            }),
            Ok(Err(status)) => Err(Error::from_status(status, &remote.name, deadline)),
            Ok(Ok(response)) => Ok(response.into_inner()),
        }
    }

    /// A call without a token to the read servers.
    async fn read<Req, Resp, F, Fut>(&self, message: Req, rpc: F) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(Stub, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = RpcResult<Resp>>,
    {
        self.read_on(message, |stub, _, r| rpc(stub, r)).await
    }

    /// A call without a token to the read servers, in order (the one that
    /// answered last first) within one overall deadline: each server gets
    /// an equal share of the time left, the last one all of it. Only a
    /// transport failure (unreachable, deadline, TLS refused) moves on to
    /// the next; any answer of a server is the answer. `rpc` also gets the
    /// server's channel (for the calls made with the wiping codec).
    async fn read_on<Req, Resp, F, Fut>(&self, message: Req, rpc: F) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(Stub, Channel, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = RpcResult<Resp>>,
    {
        let names: Vec<&str> = self.inner.reads.iter().map(|r| r.name.as_str()).collect();
        let order = self.inner.health.order(&names);
        let total = self.inner.request_timeout;
        let start = Instant::now();
        let mut last_error = None;
        for (tried, index) in order.iter().enumerate() {
            let Some(remote) = self.inner.reads.get(*index) else {
                continue;
            };
            let left = total.saturating_sub(start.elapsed());
            if left.is_zero() {
                break;
            }
            let servers_left = u32::try_from(order.len() - tried).unwrap_or(1).max(1);
            let share = left / servers_left;
            let channel = remote.channel.clone();
            let outcome = self
                .call_within(
                    remote,
                    message.clone(),
                    None,
                    |stub, r| rpc(stub, channel, r),
                    share,
                )
                .await;
            match outcome {
                Err(e) if e.is_server_unavailable() => {
                    self.inner.health.failed(&remote.name, &e);
                    last_error = Some(e);
                }
                other => {
                    self.inner.health.answered(&remote.name);
                    return other;
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::TimedOut {
            server: names.join(", "),
            after: total,
        }))
    }

    /// A call with the entity's token to the master. A cached token the
    /// server rejects is dropped, replaced by a fresh one, and the call is
    /// made once more.
    async fn write<Req, Resp, F, Fut>(&self, message: Req, rpc: F) -> Result<Resp>
    where
        Req: Clone,
        F: Fn(Stub, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = RpcResult<Resp>>,
    {
        let remote = &self.inner.write;
        let (token, from_cache) = self.cached_or_fresh_token().await?;
        match self.call(remote, message.clone(), Some(&token), &rpc).await {
            Err(Error::Unauthenticated { .. }) if from_cache => {
                self.forget_token();
                let token = self.fresh_token().await?;
                self.call(remote, message, Some(&token), &rpc).await
            }
            other => other,
        }
    }

    fn configured_entity(&self) -> Result<&str> {
        self.inner.entity.as_deref().ok_or(Error::NoEntity)
    }

    /// A token for the configured entity: the cached one, or a new one
    /// obtained with the secret (and then cached).
    pub async fn token(&self) -> Result<Token> {
        Ok(self.cached_or_fresh_token().await?.0)
    }

    async fn cached_or_fresh_token(&self) -> Result<(Token, bool)> {
        let entity = self.configured_entity()?;
        match self.inner.token_cache.get(entity) {
            Ok(Some(token)) => return Ok((token, true)),
            Ok(None) => {}
            // A broken cache must not stop the call: fetch a fresh token.
            Err(e) => log::warn!("netauth: ignoring token cache: {e}"),
        }
        Ok((self.fresh_token().await?, false))
    }

    async fn fresh_token(&self) -> Result<Token> {
        let entity = self.configured_entity()?;
        let secret = match &self.inner.secret {
            Some(SecretSource::Fixed(secret)) => secret.clone(),
            Some(SecretSource::Callback(callback)) => {
                callback().ok_or_else(|| Error::NoSecret {
                    entity: entity.to_owned(),
                })?
            }
            None => {
                return Err(Error::NoSecret {
                    entity: entity.to_owned(),
                })
            }
        };
        // From the master: the token is for writes, and the master holds
        // the authoritative secret (a replica may lag or be down).
        let token = self
            .get_token_from(&self.inner.write, entity, &secret)
            .await?;
        if let Err(e) = self.inner.token_cache.put(entity, &token) {
            log::warn!("netauth: cannot cache token: {e}");
        }
        Ok(token)
    }

    /// Drops the configured entity's cached token.
    pub fn forget_token(&self) {
        if let Some(entity) = &self.inner.entity {
            if let Err(e) = self.inner.token_cache.remove(entity) {
                log::warn!("netauth: cannot drop cached token: {e}");
            }
        }
    }

    // ----- entities -----

    /// Creates an entity; `number: None` lets the server pick the next free one.
    pub async fn entity_create(
        &self,
        id: &str,
        number: Option<i32>,
        secret: &Secret,
    ) -> Result<()> {
        let message = pb::EntityRequest {
            entity: Some(proto::Entity {
                id: Some(id.to_owned()),
                number: Some(number.unwrap_or(-1)),
                secret: Some(secret.expose().to_owned()),
                meta: None,
            }),
            data: None,
        };
        self.write(message, |mut c, r| async move { c.entity_create(r).await })
            .await
            .map(drop)
    }

    /// Changes `id`'s metadata; fields left `None` are not changed (groups,
    /// keys, capabilities and the lock bit have their own calls).
    pub async fn entity_update(&self, id: &str, meta: &EntityMeta) -> Result<()> {
        let message = pb::EntityRequest {
            entity: Some(entity_ref(id)),
            data: Some(proto::Entity {
                id: Some(id.to_owned()),
                meta: Some(meta.clone().into()),
                ..Default::default()
            }),
        };
        self.write(message, |mut c, r| async move { c.entity_update(r).await })
            .await
            .map(drop)
    }

    /// One entity; [`Error::DoesNotExist`] if unknown.
    pub async fn entity_info(&self, id: &str) -> Result<Entity> {
        let answer = self
            .read(entity_request(id), |mut c, r| async move {
                c.entity_info(r).await
            })
            .await?;
        answer
            .entities
            .into_iter()
            .next()
            .map(Entity::from)
            .ok_or_else(|| Error::DoesNotExist {
                message: format!("no entity {id:?}"),
            })
    }

    /// Entities matching `expression` (at most 16,000 per answer).
    pub async fn entity_search(&self, expression: &str) -> Result<Vec<Entity>> {
        let answer = self
            .read(search_request(expression), |mut c, r| async move {
                c.entity_search(r).await
            })
            .await?;
        Ok(answer.entities.into_iter().map(Entity::from).collect())
    }

    /// Untyped metadata of an entity. `Action::Read` (no token) answers
    /// `key:value` strings (`key` `"*"` for all); `Upsert`, `Clearfuzzy` and
    /// `Clearexact` change it and answer nothing.
    pub async fn entity_um(
        &self,
        id: &str,
        action: Action,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<String>> {
        let message = kv_request(id, action, key, value);
        let answer = if action == Action::Read {
            self.read(message, |mut c, r| async move { c.entity_um(r).await })
                .await?
        } else {
            self.write(message, |mut c, r| async move { c.entity_um(r).await })
                .await?
        };
        Ok(answer.strings)
    }

    /// Adds a key with ordered values; the key must not exist yet.
    pub async fn entity_kv_add<I, S>(&self, id: &str, key: &str, values: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let message = kv2_request(id, KvData::new(key, values));
        self.write(message, |mut c, r| async move { c.entity_kv_add(r).await })
            .await
            .map(drop)
    }

    /// Values of `key` (`"*"` for all keys).
    pub async fn entity_kv_get(&self, id: &str, key: &str) -> Result<Vec<KvData>> {
        let answer = self
            .read(kv2_key(id, key), |mut c, r| async move {
                c.entity_kv_get(r).await
            })
            .await?;
        Ok(answer.kv_data.into_iter().map(KvData::from).collect())
    }

    pub async fn entity_kv_del(&self, id: &str, key: &str) -> Result<()> {
        self.write(kv2_key(id, key), |mut c, r| async move {
            c.entity_kv_del(r).await
        })
        .await
        .map(drop)
    }

    /// Replaces the values of an existing key.
    pub async fn entity_kv_replace<I, S>(&self, id: &str, key: &str, values: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let message = kv2_request(id, KvData::new(key, values));
        self.write(
            message,
            |mut c, r| async move { c.entity_kv_replace(r).await },
        )
        .await
        .map(drop)
    }

    /// Public keys of an entity. `Action::Read` (no token) with `kind` a key
    /// type or `"*"` answers `TYPE:KEY` strings; `Add`/`Drop` with `key`
    /// change them.
    pub async fn entity_keys(
        &self,
        id: &str,
        action: Action,
        kind: &str,
        key: Option<&str>,
    ) -> Result<Vec<String>> {
        let message = kv_request(id, action, kind, key);
        let answer = if action == Action::Read {
            self.read(message, |mut c, r| async move { c.entity_keys(r).await })
                .await?
        } else {
            self.write(message, |mut c, r| async move { c.entity_keys(r).await })
                .await?
        };
        Ok(answer.strings)
    }

    pub async fn entity_destroy(&self, id: &str) -> Result<()> {
        self.write(entity_request(id), |mut c, r| async move {
            c.entity_destroy(r).await
        })
        .await
        .map(drop)
    }

    pub async fn entity_lock(&self, id: &str) -> Result<()> {
        self.write(entity_request(id), |mut c, r| async move {
            c.entity_lock(r).await
        })
        .await
        .map(drop)
    }

    pub async fn entity_unlock(&self, id: &str) -> Result<()> {
        self.write(entity_request(id), |mut c, r| async move {
            c.entity_unlock(r).await
        })
        .await
        .map(drop)
    }

    /// Effective group memberships of an entity.
    pub async fn entity_groups(&self, id: &str) -> Result<Vec<Group>> {
        let answer = self
            .read(entity_request(id), |mut c, r| async move {
                c.entity_groups(r).await
            })
            .await?;
        Ok(answer.groups.into_iter().map(Group::from).collect())
    }

    // ----- authentication -----

    /// Checks `id`'s secret. [`Error::Unauthenticated`] covers wrong
    /// secret, unknown entity and locked entity alike.
    pub async fn auth_entity(&self, id: &str, secret: &Secret) -> Result<()> {
        let message = SecretRequest(pb::AuthRequest {
            entity: Some(entity_ref(id)),
            secret: Some(secret.expose().to_owned()),
            token: None,
        });
        self.read_on(message, |_, channel, r| {
            secret_rpc::unary::<pb::Empty>(channel, AuthRpc::Entity, r)
        })
        .await
        .map(drop)
    }

    /// Checks `id`'s secret and returns a token for it (asks the read servers).
    pub async fn auth_get_token(&self, id: &str, secret: &Secret) -> Result<Token> {
        let message = SecretRequest(pb::AuthRequest {
            entity: Some(entity_ref(id)),
            secret: Some(secret.expose().to_owned()),
            token: None,
        });
        let answer: pb::AuthResult = self
            .read_on(message, |_, channel, r| {
                secret_rpc::unary(channel, AuthRpc::GetToken, r)
            })
            .await?;
        token_of(answer, id)
    }

    async fn get_token_from(&self, remote: &Remote, id: &str, secret: &Secret) -> Result<Token> {
        let message = SecretRequest(pb::AuthRequest {
            entity: Some(entity_ref(id)),
            secret: Some(secret.expose().to_owned()),
            token: None,
        });
        let channel = remote.channel.clone();
        let answer: pb::AuthResult = self
            .call(remote, message, None, |_, r| {
                secret_rpc::unary(channel, AuthRpc::GetToken, r)
            })
            .await?;
        token_of(answer, id)
    }

    /// Asks the server whether `token` is valid.
    pub async fn auth_validate_token(&self, token: &Token) -> Result<()> {
        let message = SecretRequest(pb::AuthRequest {
            entity: None,
            secret: None,
            token: Some(token.expose().to_owned()),
        });
        self.read_on(message, |_, channel, r| {
            secret_rpc::unary::<pb::Empty>(channel, AuthRpc::ValidateToken, r)
        })
        .await
        .map(drop)
    }

    /// Sets `id`'s secret to `new_secret`, authorized by the configured
    /// entity's token. When that entity is `id` itself the server also wants
    /// the current secret in `old_secret`; see [`Client::change_own_secret`].
    pub async fn auth_change_secret(
        &self,
        id: &str,
        new_secret: &Secret,
        old_secret: Option<&Secret>,
    ) -> Result<()> {
        let message = change_secret_request(id, new_secret, old_secret);
        let channel = self.inner.write.channel.clone();
        self.write(message, |_, r| {
            secret_rpc::unary::<pb::Empty>(channel.clone(), AuthRpc::ChangeSecret, r)
        })
        .await
        .map(drop)
    }

    /// Self-service change: gets a token with the old secret, then changes
    /// the secret with that token, both on the master. Needs no configured
    /// entity; the token cache is not touched.
    pub async fn change_own_secret(
        &self,
        id: &str,
        old_secret: &Secret,
        new_secret: &Secret,
    ) -> Result<()> {
        let token = self
            .get_token_from(&self.inner.write, id, old_secret)
            .await?;
        let message = change_secret_request(id, new_secret, Some(old_secret));
        let channel = self.inner.write.channel.clone();
        self.call(&self.inner.write, message, Some(&token), |_, r| {
            secret_rpc::unary::<pb::Empty>(channel, AuthRpc::ChangeSecret, r)
        })
        .await
        .map(drop)
    }

    // ----- groups -----

    /// Creates a group; `number: None` lets the server pick.
    pub async fn group_create(
        &self,
        name: &str,
        display_name: &str,
        managed_by: Option<&str>,
        number: Option<i32>,
    ) -> Result<()> {
        let message = pb::GroupRequest {
            group: Some(proto::Group {
                name: Some(name.to_owned()),
                display_name: Some(display_name.to_owned()),
                number: Some(number.unwrap_or(-1)),
                managed_by: managed_by.map(str::to_owned),
                ..Default::default()
            }),
            data: None,
        };
        self.write(message, |mut c, r| async move { c.group_create(r).await })
            .await
            .map(drop)
    }

    /// Updates the group named `group.name` (display name, managing group, ...).
    pub async fn group_update(&self, group: &Group) -> Result<()> {
        let message = pb::GroupRequest {
            group: Some(group.clone().into()),
            data: None,
        };
        self.write(message, |mut c, r| async move { c.group_update(r).await })
            .await
            .map(drop)
    }

    /// A group and the groups it manages; [`Error::DoesNotExist`] if unknown.
    pub async fn group_info(&self, name: &str) -> Result<GroupInfo> {
        let answer = self
            .read(group_request(name), |mut c, r| async move {
                c.group_info(r).await
            })
            .await?;
        let mut groups = answer.groups.into_iter().map(Group::from);
        let group = groups.next().ok_or_else(|| Error::DoesNotExist {
            message: format!("no group {name:?}"),
        })?;
        Ok(GroupInfo {
            group,
            managed: groups.collect(),
        })
    }

    /// Untyped metadata of a group; see [`Client::entity_um`].
    pub async fn group_um(
        &self,
        name: &str,
        action: Action,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<String>> {
        let message = kv_request(name, action, key, value);
        let answer = if action == Action::Read {
            self.read(message, |mut c, r| async move { c.group_um(r).await })
                .await?
        } else {
            self.write(message, |mut c, r| async move { c.group_um(r).await })
                .await?
        };
        Ok(answer.strings)
    }

    pub async fn group_kv_add<I, S>(&self, name: &str, key: &str, values: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let message = kv2_request(name, KvData::new(key, values));
        self.write(message, |mut c, r| async move { c.group_kv_add(r).await })
            .await
            .map(drop)
    }

    pub async fn group_kv_get(&self, name: &str, key: &str) -> Result<Vec<KvData>> {
        let answer = self
            .read(kv2_key(name, key), |mut c, r| async move {
                c.group_kv_get(r).await
            })
            .await?;
        Ok(answer.kv_data.into_iter().map(KvData::from).collect())
    }

    pub async fn group_kv_del(&self, name: &str, key: &str) -> Result<()> {
        self.write(kv2_key(name, key), |mut c, r| async move {
            c.group_kv_del(r).await
        })
        .await
        .map(drop)
    }

    pub async fn group_kv_replace<I, S>(&self, name: &str, key: &str, values: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let message = kv2_request(name, KvData::new(key, values));
        self.write(
            message,
            |mut c, r| async move { c.group_kv_replace(r).await },
        )
        .await
        .map(drop)
    }

    /// Adds (`Include`/`Exclude`) or removes (`RemoveRule`) an expansion of
    /// group `name` towards group `target`.
    pub async fn group_update_rules(
        &self,
        name: &str,
        action: RuleAction,
        target: &str,
    ) -> Result<()> {
        let message = pb::GroupRulesRequest {
            group: Some(group_ref(name)),
            target: Some(group_ref(target)),
            rule_action: Some(i32::from(action)),
        };
        self.write(
            message,
            |mut c, r| async move { c.group_update_rules(r).await },
        )
        .await
        .map(drop)
    }

    /// Makes `entity` a direct member of `group`.
    pub async fn group_add_member(&self, group: &str, entity: &str) -> Result<()> {
        self.write(membership_request(group, entity), |mut c, r| async move {
            c.group_add_member(r).await
        })
        .await
        .map(drop)
    }

    /// Removes `entity`'s direct membership of `group`.
    pub async fn group_del_member(&self, group: &str, entity: &str) -> Result<()> {
        self.write(membership_request(group, entity), |mut c, r| async move {
            c.group_del_member(r).await
        })
        .await
        .map(drop)
    }

    pub async fn group_destroy(&self, name: &str) -> Result<()> {
        self.write(group_request(name), |mut c, r| async move {
            c.group_destroy(r).await
        })
        .await
        .map(drop)
    }

    /// Effective members (expansions applied). An unknown group answers an
    /// empty list, as the server does.
    pub async fn group_members(&self, name: &str) -> Result<Vec<Entity>> {
        let answer = self
            .read(group_request(name), |mut c, r| async move {
                c.group_members(r).await
            })
            .await?;
        Ok(answer.entities.into_iter().map(Entity::from).collect())
    }

    pub async fn group_search(&self, expression: &str) -> Result<Vec<Group>> {
        let answer = self
            .read(search_request(expression), |mut c, r| async move {
                c.group_search(r).await
            })
            .await?;
        Ok(answer.groups.into_iter().map(Group::from).collect())
    }

    // ----- system -----

    /// Adds (`Action::Add`) or drops (`Action::Drop`) `capability` on group
    /// `target`, or on entity `target` when `direct`.
    pub async fn system_capabilities(
        &self,
        target: &str,
        action: Action,
        capability: Capability,
        direct: bool,
    ) -> Result<()> {
        let message = pb::CapabilityRequest {
            capability: Some(i32::from(capability)),
            direct: Some(direct),
            target: Some(target.to_owned()),
            action: Some(i32::from(action)),
        };
        self.write(
            message,
            |mut c, r| async move { c.system_capabilities(r).await },
        )
        .await
        .map(drop)
    }

    /// Succeeds if the read server answers.
    pub async fn system_ping(&self) -> Result<()> {
        self.read(
            pb::Empty {},
            |mut c, r| async move { c.system_ping(r).await },
        )
        .await
        .map(drop)
    }

    pub async fn system_status(&self) -> Result<ServerStatus> {
        let answer = self
            .read(
                pb::Empty {},
                |mut c, r| async move { c.system_status(r).await },
            )
            .await?;
        Ok(answer.into())
    }
}

fn change_secret_request(
    id: &str,
    new_secret: &Secret,
    old_secret: Option<&Secret>,
) -> SecretRequest {
    SecretRequest(pb::AuthRequest {
        entity: Some(proto::Entity {
            id: Some(id.to_owned()),
            secret: old_secret.map(|s| s.expose().to_owned()),
            ..Default::default()
        }),
        secret: Some(new_secret.expose().to_owned()),
        token: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[tokio::test]
    async fn client_and_its_futures_can_cross_threads() {
        assert_send_sync::<Client>();
        assert_send_sync::<ClientBuilder>();
        let client = ClientBuilder::new("localhost")
            .pwn_me(true)
            .build()
            .unwrap();
        let secret = Secret::new("x");
        assert_send(&client.entity_search("*"));
        assert_send(&client.entity_lock("bob"));
        assert_send(&client.change_own_secret("a", &secret, &secret));
        assert_send(&client.entity_kv_add("a", "k", ["v"]));
    }

    #[test]
    fn authority_brackets_ipv6() {
        assert_eq!(authority("::1", 1729), "[::1]:1729");
        assert_eq!(authority("[::1]", 1729), "[::1]:1729");
        assert_eq!(authority("netauth.example.com", 1), "netauth.example.com:1");
    }

    #[test]
    fn build_outside_a_runtime_is_an_error_not_a_panic() {
        let e = ClientBuilder::new("localhost")
            .pwn_me(true)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Runtime(_)), "{e:?}");
    }

    #[tokio::test]
    async fn build_reports_an_unreadable_certificate_by_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.toml");
        let config =
            Config::from_toml_str("[core]\nserver = \"localhost\"\n", &config_path).unwrap();
        let e = ClientBuilder::from_config(config).build().unwrap_err();
        match &e {
            Error::Config {
                file, key, problem, ..
            } => {
                assert_eq!(file, &dir.path().join("keys/tls.pem"));
                assert_eq!(key.as_deref(), Some("tls.certificate"));
                assert!(
                    problem.contains(&config_path.display().to_string()),
                    "{problem}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn non_ascii_metadata_is_refused() {
        let e = ClientBuilder::new("localhost")
            .pwn_me(true)
            .service_name("pam\nnetauth")
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    }

    #[tokio::test]
    async fn debug_output_hides_the_secret() {
        let builder = ClientBuilder::new("localhost")
            .pwn_me(true)
            .entity("admin")
            .secret(Secret::new("s3cr3t-value"));
        let client = builder.build().unwrap();
        let shown = format!("{builder:?} {client:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("admin"));
    }
}

//! A NetAuth-protocol gRPC server for tests (never shipped to users).
//!
//! It implements every method of `netauth.v2.NetAuth2` with the semantics
//! of the protocol fact sheet: hashed secrets, locks, tokens with
//! capabilities and expiry, managing groups, direct and expanded
//! memberships, KV and untyped metadata, keys, search with the result cap,
//! redacted secrets, read-only mode and NetAuth's error codes. It runs on
//! its own thread with its own tokio runtime, so sync tests, async tests and
//! end-to-end tests can all use it, and it can inject faults.
//!
//! ```no_run
//! use netauth_testserver::{Options, TestServer};
//! let server = TestServer::start(Options::default());
//! server.state().add_entity("alice", 1001, "secret");
//! println!("{}", server.config_toml(None));
//! ```

mod directory;
mod faults;
mod fixture;
mod search;
mod service;
mod tls;
mod token;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use netauth_proto::netauth::v2::net_auth2_server::NetAuth2Server;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::StreamExt as _;
use tonic::transport::{Identity, Server, ServerTlsConfig};

pub use directory::{Directory, ExpansionRule, REDACTED};
pub use faults::{BlackHole, Faults, ANY_METHOD};
pub use fixture::{Fixture, FixtureEntity, FixtureError, FixtureGroup};
pub use service::CallMetadata;
pub use tls::{generate_tls_identity, TlsIdentity};
pub use token::Claims;

use faults::FaultyStream;
use service::{MetadataLog, NetAuthService, Shared};
use token::TokenService;

/// Largest message the server decodes or encodes: a 20,000-entity search
/// answer is well above gRPC's usual 4 MiB.
pub const MAX_MESSAGE_SIZE: usize = 256 * 1024 * 1024;

/// How a server starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// None = plain text.
    pub tls: Option<TlsIdentity>,
    /// Mutating calls answer UNIMPLEMENTED, as on a read replica.
    pub read_only: bool,
    /// Lifetime of issued tokens (default 1 h).
    pub token_lifetime: Duration,
    /// Most results one search answers, silently (default 16,000).
    pub search_cap: usize,
    /// Initial directory.
    pub fixture: Option<Fixture>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            tls: None,
            read_only: false,
            token_lifetime: Duration::from_secs(3600),
            search_cap: 16_000,
            fixture: None,
        }
    }
}

/// A running server. Dropping it (or [`TestServer::shutdown`]) stops it and
/// joins its thread.
pub struct TestServer {
    addr: SocketAddr,
    tls_cert: Option<String>,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .field("tls", &self.tls_cert.is_some())
            .finish_non_exhaustive()
    }
}

async fn serve(
    listener: std::net::TcpListener,
    mut server: Server,
    service: NetAuthService,
    drop_flag: Arc<AtomicBool>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("netauth-testserver: cannot use listener: {e}");
            return;
        }
    };
    let incoming = TcpListenerStream::new(listener).filter_map(move |conn| match conn {
        Ok(stream) if drop_flag.load(Ordering::SeqCst) => {
            drop(stream);
            None
        }
        Ok(stream) => {
            let _ = stream.set_nodelay(true);
            Some(Ok(FaultyStream::new(stream, drop_flag.clone())))
        }
        Err(e) => Some(Err(e)),
    });
    let svc = NetAuth2Server::new(service)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let mut on_stop = stop;
    let serving = server.add_service(svc).serve_with_incoming(incoming);
    // No graceful drain: a test server stops at once, and open connections
    // (idle client channels, delayed calls) close when the runtime goes.
    tokio::select! {
        r = serving => if let Err(e) = r {
            eprintln!("netauth-testserver: server stopped: {e}");
        },
        _ = on_stop.wait_for(|s| *s) => {}
    }
}

impl TestServer {
    /// Starts on 127.0.0.1:0 on its own background thread with its own tokio
    /// runtime. Returns once listening. Panics if it cannot start (bad
    /// fixture, bad TLS identity): that is a test bug.
    pub fn start(opts: Options) -> TestServer {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), opts)
    }

    /// Like [`TestServer::start`] on a given address.
    pub fn start_on(addr: SocketAddr, opts: Options) -> TestServer {
        Self::try_start_on(addr, opts).unwrap_or_else(|e| panic!("test server: {e}"))
    }

    pub fn try_start_on(addr: SocketAddr, opts: Options) -> Result<TestServer, String> {
        let dir = Directory::new();
        if let Some(f) = &opts.fixture {
            dir.load_fixture(f).map_err(|e| e.to_string())?;
        }
        let mut server = Server::builder();
        if let Some(tls) = &opts.tls {
            let identity = Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            server = server
                .tls_config(ServerTlsConfig::new().identity(identity))
                .map_err(|e| format!("TLS identity not usable: {e}"))?;
        }
        let listener =
            std::net::TcpListener::bind(addr).map_err(|e| format!("cannot bind {addr}: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("cannot configure listener: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("no local address: {e}"))?;
        let faults = Faults::default();
        let shared = Arc::new(Shared {
            dir,
            faults: faults.clone(),
            tokens: TokenService::new(),
            read_only: opts.read_only,
            token_lifetime: opts.token_lifetime,
            search_cap: opts.search_cap,
            metadata: Mutex::new(MetadataLog::default()),
            log_calls: AtomicBool::new(false),
        });
        let service = NetAuthService {
            shared: shared.clone(),
        };
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let drop_flag = faults.drop_flag();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("netauth-testserver-rt")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot build runtime: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("netauth-testserver".into())
            .spawn(move || {
                runtime.block_on(serve(listener, server, service, drop_flag, stop_rx));
                runtime.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| format!("cannot spawn server thread: {e}"))?;
        Ok(TestServer {
            addr,
            tls_cert: opts.tls.map(|t| t.cert_pem),
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT` with TLS, `http://127.0.0.1:PORT` without.
    pub fn uri(&self) -> String {
        match self.tls_cert {
            Some(_) => format!("https://localhost:{}", self.port()),
            None => format!("http://127.0.0.1:{}", self.port()),
        }
    }

    /// The certificate the server presents, if it serves TLS.
    pub fn cert_pem(&self) -> Option<&str> {
        self.tls_cert.as_deref()
    }

    /// Seed or inspect the directory (thread-safe).
    pub fn state(&self) -> &Directory {
        &self.shared.dir
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Metadata of the most recent call.
    pub fn last_metadata(&self) -> Option<CallMetadata> {
        self.metadata_log().last.clone()
    }

    /// Metadata of the most recent call of `method` (e.g. `"AuthEntity"`).
    pub fn last_metadata_for(&self, method: &str) -> Option<CallMetadata> {
        self.metadata_log().by_method.get(method).cloned()
    }

    fn metadata_log(&self) -> std::sync::MutexGuard<'_, MetadataLog> {
        self.shared
            .metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// While on, every call is logged to stderr (method, client-name,
    /// service-name, whether a token came).
    pub fn set_log_calls(&self, on: bool) {
        self.shared.log_calls.store(on, Ordering::Relaxed);
    }

    /// Stops the server and joins its thread.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// A NetAuth `config.toml` body pointing at this server: `core.server`
    /// is `localhost` with TLS (so the certificate's DNS name matches) and
    /// `127.0.0.1` without; `tls.certificate` = `cert_path` when given;
    /// `tls.pwn_me = true` when the server speaks plain text.
    pub fn config_toml(&self, cert_path: Option<&Path>) -> String {
        let mut s = String::new();
        let host = if self.tls_cert.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let _ = writeln!(s, "[core]\nserver = \"{host}\"\nport = {}\n", self.port());
        let _ = writeln!(s, "[tls]");
        if self.tls_cert.is_some() {
            if let Some(p) = cert_path {
                let quoted = toml::Value::String(p.display().to_string()).to_string();
                let _ = writeln!(s, "certificate = {quoted}");
            }
        } else {
            let _ = writeln!(s, "pwn_me = true");
        }
        s
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

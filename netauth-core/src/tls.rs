//! Connecting to a NetAuth server: TCP with a deadline, then TLS (rustls with
//! the ring provider) trusting exactly the configured PEM, or plain text when
//! the operator opted in.
//!
//! A NetAuth server usually presents a self-signed *end-entity* certificate
//! (CA:FALSE, serverAuth). rustls' webpki verifier accepts such a certificate
//! as a trust anchor: an anchor is only a subject name and a public key, and
//! the leaf is then "issued" by itself. So the verifier is rustls' standard
//! one (server name, validity period, key usage, signatures all checked) over
//! a root store holding only the configured certificates; no system roots.
//!
//! We use our own connector (tonic `connect_with_connector_lazy`) rather than
//! tonic's `ClientTlsConfig` so that the connect deadline covers TCP and TLS
//! together and so that each failure reaches the caller as a typed
//! [`ConnectFailure`] that [`crate::error`] can classify.

use std::fmt;
use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::codegen::http::Uri;

use crate::error::{Error, Result};
use netauth_cache::trusted::{read_trusted, TrustRule};

/// Reads the certificate file at `cert_path` if it is trusted
/// ([`TrustRule::CERTIFICATE`]: a regular root-owned file of at most 1 MiB
/// in a root-owned folder, neither writable by others): a FIFO there must
/// not hang the caller past every deadline, a device must not fill memory,
/// and whoever could rewrite the file could make us trust their server.
/// `from` says which config named it, for the message.
pub(crate) fn read_certificate(cert_path: &Path, from: &str) -> Result<Vec<u8>> {
    read_trusted(cert_path, &TrustRule::CERTIFICATE).map_err(|e| {
        let problem = if e.is_untrusted() {
            format!(
                "certificate{from} not trusted: {}",
                e.describe_for(cert_path)
            )
        } else {
            format!(
                "cannot read the certificate{from}: {}",
                e.describe_for(cert_path)
            )
        };
        Error::config(cert_path, Some("tls.certificate"), problem)
    })
}

/// Parses the PEM file at `cert_path` into a root store that holds exactly
/// its certificates. Errors name the certificate file and `tls.certificate`.
pub(crate) fn load_roots(pem: &[u8], cert_path: &Path) -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for (n, item) in CertificateDer::pem_slice_iter(pem).enumerate() {
        let der = item.map_err(|e| {
            Error::config(
                cert_path,
                Some("tls.certificate"),
                format!("certificate {} is not valid PEM: {e}", n + 1),
            )
        })?;
        roots.add(der).map_err(|e| {
            Error::config(
                cert_path,
                Some("tls.certificate"),
                format!("certificate {} cannot be trusted: {e}", n + 1),
            )
        })?;
    }
    if roots.is_empty() {
        return Err(Error::config(
            cert_path,
            Some("tls.certificate"),
            "no PEM certificate in the file",
        ));
    }
    Ok(roots)
}

/// A rustls client configuration trusting only `roots`, offering HTTP/2.
pub(crate) fn client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::InvalidArgument(format!("TLS setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The name the server's certificate must carry: a DNS name or an IP address.
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_owned())
        .map_err(|e| Error::InvalidArgument(format!("server name {host:?}: {e}")))
}

/// Why a connection could not be made. Kept typed so that the error
/// mapping can tell the cases apart after tonic has wrapped it.
#[derive(Debug)]
pub(crate) enum ConnectFailure {
    /// TCP connect plus TLS handshake did not finish in time.
    TimedOut { after: Duration },
    /// The TLS handshake failed.
    Tls { detail: String },
    /// TCP connect failed (refused, unreachable, name not resolved, ...).
    Io(io::Error),
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectFailure::TimedOut { after } => {
                write!(f, "connect timed out after {} ms", after.as_millis())
            }
            ConnectFailure::Tls { detail } => write!(f, "TLS handshake failed: {detail}"),
            ConnectFailure::Io(e) => write!(f, "connect failed: {e}"),
        }
    }
}

impl std::error::Error for ConnectFailure {}

/// TLS settings of a connector.
#[derive(Clone)]
pub(crate) struct TlsSettings {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    /// The certificate file trusted (`tls.certificate`), named in handshake
    /// errors: "UnknownIssuer" alone does not say what was expected.
    pub(crate) trusted: std::path::PathBuf,
}

/// A tower service tonic calls to open each connection.
#[derive(Clone)]
pub(crate) struct Connector {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) tls: Option<TlsSettings>,
    pub(crate) timeout: Duration,
}

impl tonic::codegen::Service<Uri> for Connector {
    type Response = TokioIo<Stream>;
    type Error = ConnectFailure;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectFailure>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ConnectFailure>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let after = this.timeout;
            match tokio::time::timeout(after, this.connect()).await {
                Ok(result) => result.map(TokioIo::new),
                Err(_) => Err(ConnectFailure::TimedOut { after }),
            }
        })
    }
}

impl Connector {
    async fn connect(self) -> Result<Stream, ConnectFailure> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let tcp = TcpStream::connect((host, self.port))
            .await
            .map_err(ConnectFailure::Io)?;
        // Small request/answer exchanges: do not wait to fill segments.
        let _ = tcp.set_nodelay(true);
        let Some(tls) = self.tls else {
            return Ok(Stream::Plain(tcp));
        };
        let stream = TlsConnector::from(tls.config)
            .connect(tls.server_name, tcp)
            .await
            .map_err(|e| handshake_failure(e, &tls.trusted))?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// A handshake error is a TLS rejection only when rustls refused something;
/// a connection closed or reset mid-handshake is a transport failure.
fn handshake_failure(e: io::Error, trusted: &Path) -> ConnectFailure {
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(tls) => ConnectFailure::Tls {
            detail: format!("{tls} (trusted certificate: {})", trusted.display()),
        },
        None => ConnectFailure::Io(e),
    }
}

/// A plain or TLS connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_errors_name_the_certificate_file_and_key() {
        let path = Path::new("/etc/netauth/keys/tls.pem");
        let e = load_roots(b"not a certificate at all", path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("/etc/netauth/keys/tls.pem"), "{text}");
        assert!(text.contains("tls.certificate"), "{text}");

        let garbage = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let e = load_roots(garbage, path).unwrap_err();
        assert!(e.is_config(), "{e:?}");
    }

    /// A FIFO (nobody writing) returns at once, a device is refused before
    /// a byte is read, a file others can write or of another user is not
    /// trusted; each error names the file, the key and the reason.
    #[test]
    fn untrusted_certificate_files_are_refused_without_blocking() {
        if netauth_test_support::skip_without_root() {
            return;
        }
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let refused = |path: &Path, needle: &str| {
            let started = std::time::Instant::now();
            let e = read_certificate(path, " (tls.certificate of /etc/netauth/config.toml)")
                .unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(2), "{needle}");
            assert!(e.is_config(), "{e:?}");
            let text = e.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains("tls.certificate"), "{text}");
            assert!(text.contains(needle), "{needle}: {text}");
        };
        let fifo = dir.path().join("fifo.pem");
        let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);
        refused(&fifo, "not a regular file (a FIFO)");
        refused(
            Path::new("/dev/zero"),
            "not a regular file (a character device)",
        );

        let pem = dir.path().join("tls.pem");
        std::fs::write(&pem, b"pem").unwrap();
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(read_certificate(&pem, "").unwrap(), b"pem");
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o646)).unwrap();
        refused(&pem, "not trusted: writable by group or others (mode 0646)");
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o644)).unwrap();
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            std::os::unix::fs::chown(&pem, Some(1000), None).unwrap();
            refused(&pem, "owned by uid 1000");
        }
        refused(
            &dir.path().join("missing.pem"),
            "cannot read the certificate",
        );
    }

    #[test]
    fn a_self_signed_leaf_is_accepted_as_trust_anchor() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.self_signed(&key).unwrap();
        let roots = load_roots(cert.pem().as_bytes(), Path::new("x.pem")).unwrap();
        assert_eq!(roots.len(), 1);
    }

    #[test]
    fn server_names_accept_dns_and_ip() {
        assert!(matches!(
            server_name("localhost").unwrap(),
            ServerName::DnsName(_)
        ));
        assert!(matches!(
            server_name("127.0.0.1").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            server_name("[::1]").unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(server_name("bad name!").is_err());
    }
}

//! One error type for the whole client.
//!
//! NetAuth's own error meanings (mapped from gRPC status codes) are kept apart
//! from transport failures, because a PAM module must tell "wrong password"
//! ([`Error::Unauthenticated`]) from "server down"
//! ([`Error::is_server_unavailable`]). No variant ever carries a secret or a
//! token.

use std::error::Error as StdError;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use tonic::Code;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `PERMISSION_DENIED`: the token lacks the needed capability.
    #[error("requestor unqualified: {message}")]
    RequestorUnqualified { message: String },
    /// `INVALID_ARGUMENT`: for example a token missing where one is needed.
    #[error("malformed request: {message}")]
    MalformedRequest { message: String },
    /// `INTERNAL`: storage failure, empty search expression, ...
    #[error("internal server error: {message}")]
    Internal { message: String },
    /// `UNAUTHENTICATED`: wrong secret, unknown or locked entity (the server
    /// does not say which), or a bad token.
    #[error("authentication failed: {message}")]
    Unauthenticated { message: String },
    /// `UNIMPLEMENTED`: a mutating call reached a read-only replica.
    #[error("server is read-only: {message}")]
    ReadOnly { message: String },
    /// `ALREADY_EXISTS`: duplicate ID, name or number.
    #[error("already exists: {message}")]
    Exists { message: String },
    /// `NOT_FOUND`, or an empty answer where exactly one thing was asked for.
    #[error("does not exist: {message}")]
    DoesNotExist { message: String },
    /// Any other status the server answered.
    #[error("server answered {code:?}: {message}")]
    Rpc { code: Code, message: String },

    /// The server could not be reached: connection refused, reset or
    /// dropped, name not resolved, HTTP/2 failure.
    #[error("cannot reach NetAuth server {server}: {detail}")]
    Unreachable { server: String, detail: String },
    /// A deadline passed (connect or call).
    #[error("NetAuth server {server} did not answer within {} ms", .after.as_millis())]
    TimedOut { server: String, after: Duration },
    /// The TLS handshake failed: certificate not trusted, wrong name, expired,
    /// no TLS spoken by the other end, ...
    #[error("TLS connection to NetAuth server {server} rejected: {detail}")]
    TlsRejected { server: String, detail: String },

    /// A configuration problem; `file` is the file at fault and `key` the
    /// setting (dotted), when there is one.
    #[error("{}", config_message(.file, .key.as_deref(), *.line, .problem))]
    Config {
        file: PathBuf,
        key: Option<String>,
        line: Option<usize>,
        problem: String,
    },
    /// A call needs a token but no entity was configured to get one.
    #[error("no entity configured: cannot get a token for an authenticated call")]
    NoEntity,
    /// A token is needed for `entity` but there is no secret to get one with.
    #[error("no secret available to get a token for entity {entity:?}")]
    NoSecret { entity: String },
    /// `AuthGetToken` succeeded without a token in its answer.
    #[error("the server answered no token for entity {entity:?}")]
    NoToken { entity: String },
    /// The token cache could not be used.
    #[error("token cache: {detail}")]
    TokenCache { detail: String },
    /// An argument that cannot be sent (bad host name, non-ASCII metadata,
    /// an entity name that would escape the token cache folder, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The async runtime could not be started or is missing.
    #[error("async runtime: {0}")]
    Runtime(String),
}

pub(crate) fn config_message(
    file: &std::path::Path,
    key: Option<&str>,
    line: Option<usize>,
    problem: &str,
) -> String {
    let mut out = format!("config file {}", file.display());
    if let Some(line) = line {
        let _ = write!(out, ", line {line}");
    }
    if let Some(key) = key {
        let _ = write!(out, ", key {key}");
    }
    let _ = write!(out, ": {problem}");
    out
}

impl Error {
    /// The server (or the path to it) failed, not the credentials: PAM maps
    /// this to "authentication information unavailable" rather than to
    /// "wrong password".
    pub fn is_server_unavailable(&self) -> bool {
        matches!(
            self,
            Error::Unreachable { .. } | Error::TimedOut { .. } | Error::TlsRejected { .. }
        )
    }

    /// Wrong secret, unknown or locked entity, or a rejected token.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(self, Error::Unauthenticated { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::DoesNotExist { .. })
    }

    pub fn is_permission_denied(&self) -> bool {
        matches!(self, Error::RequestorUnqualified { .. })
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::TimedOut { .. })
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Error::TlsRejected { .. })
    }

    pub fn is_config(&self) -> bool {
        matches!(self, Error::Config { .. })
    }

    pub(crate) fn config(
        file: impl Into<PathBuf>,
        key: Option<&str>,
        problem: impl Into<String>,
    ) -> Error {
        Error::Config {
            file: file.into(),
            key: key.map(str::to_owned),
            line: None,
            problem: problem.into(),
        }
    }

    /// Maps a gRPC status to an error. `server` (host:port) and `deadline`
    /// describe the call, for transport errors.
    pub fn from_status(status: tonic::Status, server: &str, deadline: Duration) -> Error {
        // A status with a source was made locally from a transport error;
        // one without came from the server.
        if let Some(source) = StdError::source(&status) {
            // Whatever code tonic picked (h2 protocol errors come out as
            // INTERNAL), a local transport failure is never a server answer.
            return classify_transport(source, server, deadline).unwrap_or_else(|| {
                match status.code() {
                    Code::DeadlineExceeded => Error::TimedOut {
                        server: server.to_owned(),
                        after: deadline,
                    },
                    _ => Error::Unreachable {
                        server: server.to_owned(),
                        detail: describe_status(&status),
                    },
                }
            });
        }
        let message = status.message().to_owned();
        match status.code() {
            Code::PermissionDenied => Error::RequestorUnqualified { message },
            Code::InvalidArgument => Error::MalformedRequest { message },
            Code::Internal => Error::Internal { message },
            Code::Unauthenticated => Error::Unauthenticated { message },
            Code::Unimplemented => Error::ReadOnly { message },
            Code::AlreadyExists => Error::Exists { message },
            Code::NotFound => Error::DoesNotExist { message },
            Code::DeadlineExceeded => Error::TimedOut {
                server: server.to_owned(),
                after: deadline,
            },
            Code::Unavailable => Error::Unreachable {
                server: server.to_owned(),
                detail: describe_status(&status),
            },
            code => Error::Rpc { code, message },
        }
    }
}

/// The status message plus its innermost cause, for a log line.
fn describe_status(status: &tonic::Status) -> String {
    let mut detail = status.message().to_owned();
    if let Some(source) = StdError::source(status) {
        let root = innermost(source);
        let root = root.to_string();
        if !root.is_empty() && !detail.contains(&root) {
            if !detail.is_empty() {
                detail.push_str(": ");
            }
            detail.push_str(&root);
        }
    }
    if detail.is_empty() {
        detail = format!("{:?}", status.code());
    }
    detail
}

fn innermost<'a>(err: &'a (dyn StdError + 'static)) -> &'a (dyn StdError + 'static) {
    let mut found = err;
    for_each_cause(err, &mut |e| {
        found = e;
        false
    });
    found
}

/// Calls `f` on `err` and every cause below it, including the error kept
/// inside an `io::Error` (whose `source()` skips it). Stops when `f` says so.
fn for_each_cause<'a>(
    err: &'a (dyn StdError + 'static),
    f: &mut dyn FnMut(&'a (dyn StdError + 'static)) -> bool,
) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if f(e) {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if let Some(inner) = io.get_ref() {
                let inner: &'a (dyn StdError + 'static) = inner;
                if for_each_cause(inner, f) {
                    return true;
                }
                // The inner error's own sources were just walked.
                return false;
            }
        }
        current = e.source();
    }
    false
}

/// What kind of transport failure an error chain shows, most telling first:
/// TLS, then timeouts, then unreachable.
pub(crate) fn classify_transport(
    err: &(dyn StdError + 'static),
    server: &str,
    deadline: Duration,
) -> Option<Error> {
    let mut tls: Option<String> = None;
    let mut timed_out: Option<Duration> = None;
    let mut unreachable: Option<String> = None;
    for_each_cause(err, &mut |e| {
        if let Some(c) = e.downcast_ref::<crate::tls::ConnectFailure>() {
            match c {
                crate::tls::ConnectFailure::TimedOut { after } => {
                    timed_out.get_or_insert(*after);
                }
                crate::tls::ConnectFailure::Tls { detail } => {
                    tls.get_or_insert_with(|| detail.clone());
                }
                crate::tls::ConnectFailure::Io(io) => {
                    unreachable.get_or_insert_with(|| io.to_string());
                }
            }
        } else if let Some(r) = e.downcast_ref::<rustls::Error>() {
            tls.get_or_insert_with(|| r.to_string());
        } else if e.is::<tokio::time::error::Elapsed>() {
            timed_out.get_or_insert(deadline);
        } else if let Some(io) = e.downcast_ref::<io::Error>() {
            match io.kind() {
                io::ErrorKind::TimedOut => {
                    timed_out.get_or_insert(deadline);
                }
                _ => {
                    unreachable.get_or_insert_with(|| io.to_string());
                }
            }
        } else if e.to_string().contains("Timeout expired") {
            // tonic's own per-request timeout (its type is private).
            timed_out.get_or_insert(deadline);
        }
        false
    });
    let server = server.to_owned();
    if let Some(detail) = tls {
        Some(Error::TlsRejected { server, detail })
    } else if let Some(after) = timed_out {
        Some(Error::TimedOut { server, after })
    } else {
        unreachable.map(|detail| Error::Unreachable { server, detail })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const DL: Duration = Duration::from_secs(5);

    fn map(code: Code) -> Error {
        Error::from_status(tonic::Status::new(code, "msg"), "srv:1729", DL)
    }

    #[test]
    fn server_codes_map_to_netauth_errors() {
        assert!(matches!(
            map(Code::PermissionDenied),
            Error::RequestorUnqualified { .. }
        ));
        assert!(matches!(
            map(Code::InvalidArgument),
            Error::MalformedRequest { .. }
        ));
        assert!(matches!(map(Code::Internal), Error::Internal { .. }));
        assert!(matches!(
            map(Code::Unauthenticated),
            Error::Unauthenticated { .. }
        ));
        assert!(matches!(map(Code::Unimplemented), Error::ReadOnly { .. }));
        assert!(matches!(map(Code::AlreadyExists), Error::Exists { .. }));
        assert!(matches!(map(Code::NotFound), Error::DoesNotExist { .. }));
        assert!(matches!(
            map(Code::DeadlineExceeded),
            Error::TimedOut { .. }
        ));
        assert!(matches!(map(Code::Unavailable), Error::Unreachable { .. }));
        assert!(matches!(
            map(Code::DataLoss),
            Error::Rpc {
                code: Code::DataLoss,
                ..
            }
        ));
        assert!(map(Code::Unavailable).is_server_unavailable());
        assert!(map(Code::DeadlineExceeded).is_server_unavailable());
        assert!(!map(Code::Unauthenticated).is_server_unavailable());
        assert!(map(Code::Unauthenticated).is_unauthenticated());
        assert!(map(Code::NotFound).is_not_found());
        assert!(map(Code::PermissionDenied).is_permission_denied());
    }

    fn status_with_source(
        code: Code,
        source: impl StdError + Send + Sync + 'static,
    ) -> tonic::Status {
        let mut status = tonic::Status::new(code, "transport error");
        status.set_source(Arc::new(source));
        status
    }

    #[derive(Debug, thiserror::Error)]
    #[error("wrapper")]
    struct Wrapper(#[source] Box<dyn StdError + Send + Sync>);

    #[test]
    fn transport_failures_are_classified_by_their_cause() {
        let refused = io::Error::new(io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::from_status(
            status_with_source(Code::Unavailable, Wrapper(Box::new(refused))),
            "s:1",
            DL,
        );
        assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");

        // rustls error hidden inside an io::Error, as tokio-rustls reports it.
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        let e = Error::from_status(
            status_with_source(Code::Unknown, Wrapper(Box::new(tls))),
            "s:1",
            DL,
        );
        assert!(matches!(e, Error::TlsRejected { .. }), "{e:?}");
        assert!(e.is_server_unavailable());

        let slow = io::Error::new(io::ErrorKind::TimedOut, "slow");
        let e = Error::from_status(status_with_source(Code::Unavailable, slow), "s:1", DL);
        assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");

        // A locally made status whose cause is not recognised is still a
        // transport failure, not something the server said, whatever its code.
        for code in [Code::Unknown, Code::Internal, Code::Cancelled] {
            let e = Error::from_status(
                status_with_source(code, Wrapper("h2 protocol error".into())),
                "s:1",
                DL,
            );
            assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
        }
    }

    #[test]
    fn config_errors_name_file_line_and_key() {
        let e = Error::Config {
            file: "/etc/netauth/config.toml".into(),
            key: Some("core.server".into()),
            line: Some(3),
            problem: "missing".into(),
        };
        assert_eq!(
            e.to_string(),
            "config file /etc/netauth/config.toml, line 3, key core.server: missing"
        );
        assert!(e.is_config());
    }
}

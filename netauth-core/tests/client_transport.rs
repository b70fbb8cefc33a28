//! Transport failures: a stopped server, a black hole, a slow server,
//! dropped connections, injected status codes, and a search answer bigger
//! than gRPC's default 4 MiB limit.

#[path = "client_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use netauth_core::config::TokenCacheKind;
use netauth_core::{ClientBuilder, Error, Secret};
use netauth_testserver::{BlackHole, Options, TestServer};
use support::*;
use tonic::Code;

/// Generous slack for a loaded CI machine; the point is "no hang".
const MARGIN: Duration = Duration::from_secs(3);

#[tokio::test]
async fn a_stopped_server_is_unreachable() {
    let server = plain_server();
    let port = server.port();
    server.shutdown();
    let client = ClientBuilder::new("127.0.0.1")
        .port(port)
        .pwn_me(true)
        .token_cache_kind(TokenCacheKind::Memory)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    assert!(e.is_server_unavailable());
    assert!(!e.is_unauthenticated());
    assert!(started.elapsed() < Duration::from_secs(2) + MARGIN);
    // The message names the server but not the secret.
    let text = e.to_string();
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("alice-secret"), "{text}");
}

#[tokio::test]
async fn a_stopped_tls_server_is_unreachable() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    let port = server.port();
    server.shutdown();
    let client = ClientBuilder::new("localhost")
        .port(port)
        .certificate(&cert)
        .build()
        .unwrap();
    let e = client.system_ping().await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
}

#[tokio::test]
async fn a_black_hole_times_out_within_the_deadline_plain_text() {
    let hole = BlackHole::start();
    let deadline = Duration::from_millis(800);
    let client = ClientBuilder::new("127.0.0.1")
        .port(hole.port())
        .pwn_me(true)
        .connect_timeout(deadline)
        .request_timeout(deadline)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
    assert!(e.is_server_unavailable());
    assert!(elapsed < deadline + MARGIN, "{elapsed:?}");
}

#[tokio::test]
async fn a_black_hole_times_out_within_the_connect_deadline_with_tls() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let hole = BlackHole::start();
    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let connect = Duration::from_millis(500);
    let client = ClientBuilder::new("127.0.0.1")
        .port(hole.port())
        .certificate(&cert)
        .connect_timeout(connect)
        .request_timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.system_ping().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
    // The TLS handshake never completes: the connect deadline ends it, long
    // before the 30 s call deadline.
    assert!(elapsed < connect + MARGIN, "{elapsed:?}");
}

#[tokio::test]
async fn a_slow_server_times_out() {
    let server = plain_server();
    server.faults().set_delay(Some(Duration::from_secs(10)));
    let deadline = Duration::from_millis(700);
    let client = builder(&server).request_timeout(deadline).build().unwrap();
    let started = Instant::now();
    let e = client.entity_info("alice").await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
    assert!(elapsed < deadline + MARGIN, "{elapsed:?}");
    // Once the server is fast again the same client works.
    server.faults().set_delay(None);
    client.entity_info("alice").await.unwrap();
}

#[tokio::test]
async fn dropped_connections_are_unreachable() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let server = plain_server();
    server.faults().set_drop_connections(true);
    let client = builder(&server).build().unwrap();
    let started = Instant::now();
    let e = client.system_ping().await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5) + MARGIN);

    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let tls = tls_server(identity);
    tls.faults().set_drop_connections(true);
    let client = ClientBuilder::new("localhost")
        .port(tls.port())
        .certificate(&cert)
        .build()
        .unwrap();
    let e = client.system_ping().await.unwrap_err();
    // Closed mid-handshake: the peer went away, TLS did not reject anything.
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
}

#[tokio::test]
async fn injected_status_codes_map_to_errors() {
    let server = plain_server();
    let client = builder(&server).build().unwrap();
    type IsExpected = fn(&Error) -> bool;
    let cases: [(Code, IsExpected); 10] = [
        (Code::PermissionDenied, |e| {
            matches!(e, Error::RequestorUnqualified { .. })
        }),
        (Code::InvalidArgument, |e| {
            matches!(e, Error::MalformedRequest { .. })
        }),
        (Code::Internal, |e| matches!(e, Error::Internal { .. })),
        (Code::Unauthenticated, |e| {
            matches!(e, Error::Unauthenticated { .. })
        }),
        (Code::Unimplemented, |e| matches!(e, Error::ReadOnly { .. })),
        (Code::AlreadyExists, |e| matches!(e, Error::Exists { .. })),
        (Code::NotFound, |e| matches!(e, Error::DoesNotExist { .. })),
        (Code::Unavailable, |e| {
            matches!(e, Error::Unreachable { .. })
        }),
        (Code::DeadlineExceeded, |e| {
            matches!(e, Error::TimedOut { .. })
        }),
        (Code::DataLoss, |e| {
            matches!(
                e,
                Error::Rpc {
                    code: Code::DataLoss,
                    ..
                }
            )
        }),
    ];
    for (code, expected) in cases {
        server.faults().clear();
        server.faults().fail_method("EntityInfo", code);
        let e = client.entity_info("alice").await.unwrap_err();
        assert!(expected(&e), "{code:?} gave {e:?}");
    }
    // n successes, then the error.
    server.faults().clear();
    server
        .faults()
        .fail_method_after("SystemPing", 2, Code::Unavailable);
    client.system_ping().await.unwrap();
    client.system_ping().await.unwrap();
    let e = client.system_ping().await.unwrap_err();
    assert!(e.is_server_unavailable(), "{e:?}");
}

#[tokio::test]
async fn a_search_answer_bigger_than_4_mib_is_received() {
    let server = TestServer::start(Options {
        search_cap: 20_000,
        ..Options::default()
    });
    let filler = "x".repeat(300);
    for n in 0..20_000 {
        let id = format!("u{n:05}");
        server.state().add_entity(&id, 10_000 + n, "pw");
        let gecos = format!("{id} {filler}");
        server.state().set_entity_meta(&id, |m| {
            m.gecos = Some(gecos);
            m.home = Some(format!("/home/{id}"));
            m.shell = Some("/bin/bash".into());
        });
    }
    let client = builder(&server)
        .request_timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let all = client.entity_search("*").await.unwrap();
    assert_eq!(all.len(), 20_000);
    assert!(all
        .iter()
        .all(|e| e.meta.gecos.as_ref().is_some_and(|g| g.len() > 300)));
}

//! TLS: a NetAuth-style self-signed leaf works as the trust root; a wrong
//! certificate, a wrong name or an expired certificate fail closed with
//! `TlsRejected`; plain text happens only when configured.

#[path = "client_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use netauth_core::config::TokenCacheKind;
use netauth_core::{ClientBuilder, Error};
use support::*;

fn tls_client(host: &str, port: u16, cert: &std::path::Path) -> ClientBuilder {
    ClientBuilder::new(host)
        .port(port)
        .certificate(cert)
        .connect_timeout(SHORT)
        .request_timeout(Duration::from_secs(5))
        .token_cache_kind(TokenCacheKind::Memory)
}

#[tokio::test]
async fn a_netauth_style_certificate_works_by_name_and_by_ip() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    for host in ["localhost", "127.0.0.1"] {
        let client = tls_client(host, server.port(), &cert).build().unwrap();
        client.system_ping().await.unwrap();
        let alice = client.entity_info("alice").await.unwrap();
        assert_eq!(alice.number, Some(1001));
        client
            .auth_entity("alice", &netauth_core::Secret::new("alice-secret"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_test_servers_own_generator_works_too() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_testserver::generate_tls_identity(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    let client = tls_client("localhost", server.port(), &cert)
        .build()
        .unwrap();
    client.system_status().await.unwrap();
}

#[tokio::test]
async fn config_file_with_relative_certificate_path() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("keys")).unwrap();
    write_pem(&dir.path().join("keys"), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    // No tls.certificate: the default keys/tls.pem next to the file.
    let config = format!(
        "[core]\nserver = \"localhost\"\nport = {}\n[client]\nID = \"cfg-host\"\n[token]\ncache = \"memory\"\n",
        server.port()
    );
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let client = ClientBuilder::from_config_file(&path)
        .unwrap()
        .build()
        .unwrap();
    client.system_ping().await.unwrap();
    assert_eq!(
        server
            .last_metadata_for("SystemPing")
            .unwrap()
            .client_name
            .as_deref(),
        Some("cfg-host")
    );

    // The test server's own config text works as well.
    let cert = dir.path().join("keys/tls.pem");
    let path2 = dir.path().join("config2.toml");
    std::fs::write(&path2, server.config_toml(Some(&cert))).unwrap();
    let client = ClientBuilder::from_config_file(&path2)
        .unwrap()
        .token_cache_kind(TokenCacheKind::Memory)
        .build()
        .unwrap();
    client.system_ping().await.unwrap();
}

fn assert_tls_rejected(e: &Error) {
    assert!(
        matches!(e, Error::TlsRejected { .. }),
        "expected TlsRejected, got {e:?}"
    );
    assert!(e.is_server_unavailable());
    assert!(!e.is_unauthenticated());
}

#[tokio::test]
async fn a_different_certificate_is_rejected() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let served = netauth_style_identity(&["localhost", "127.0.0.1"]);
    let other = netauth_style_identity(&["localhost", "127.0.0.1"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "other.pem", &other.cert_pem);
    let server = tls_server(served);
    let client = tls_client("localhost", server.port(), &cert)
        .build()
        .unwrap();
    let e = client.system_ping().await.unwrap_err();
    assert_tls_rejected(&e);
    // The message names the file that was trusted instead.
    assert!(
        e.to_string()
            .contains(&format!("trusted certificate: {}", cert.display())),
        "{e}"
    );
    let e = client
        .auth_entity("alice", &netauth_core::Secret::new("alice-secret"))
        .await
        .unwrap_err();
    assert_tls_rejected(&e);
    assert_eq!(server.faults().call_count("SystemPing"), 0);
    assert_eq!(server.faults().call_count("AuthEntity"), 0);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_rejected() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["netauth.example.com"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    for host in ["localhost", "127.0.0.1"] {
        let client = tls_client(host, server.port(), &cert).build().unwrap();
        let e = client.system_ping().await.unwrap_err();
        assert_tls_rejected(&e);
        assert!(e.to_string().to_lowercase().contains("name"), "{e}");
    }
    // Only the DNS name is in the certificate: the IP does not match it.
    let identity = netauth_style_identity(&["localhost"]);
    let cert = write_pem(dir.path(), "dns-only.pem", &identity.cert_pem);
    let server = tls_server(identity);
    let client = tls_client("127.0.0.1", server.port(), &cert)
        .build()
        .unwrap();
    assert_tls_rejected(&client.system_ping().await.unwrap_err());
    let client = tls_client("localhost", server.port(), &cert)
        .build()
        .unwrap();
    client.system_ping().await.unwrap();
}

#[tokio::test]
async fn an_expired_certificate_is_rejected() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity_valid(&["localhost"], Some(()));
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    let client = tls_client("localhost", server.port(), &cert)
        .build()
        .unwrap();
    let e = client.system_ping().await.unwrap_err();
    assert_tls_rejected(&e);
    assert!(e.to_string().to_lowercase().contains("expired"), "{e}");
}

#[tokio::test]
async fn tls_client_against_a_plain_text_server_fails_closed() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = plain_server();
    let client = tls_client("localhost", server.port(), &cert)
        .build()
        .unwrap();
    let started = Instant::now();
    let e = client.system_ping().await.unwrap_err();
    assert!(e.is_server_unavailable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(server.faults().call_count("SystemPing"), 0);
}

#[tokio::test]
async fn plain_text_is_used_only_when_configured() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let server = tls_server(identity);
    // pwn_me against a TLS server: no answer, and certainly no downgrade.
    let plain = tls_client("localhost", server.port(), &cert)
        .pwn_me(true)
        .build()
        .unwrap();
    let e = plain.system_ping().await.unwrap_err();
    assert!(e.is_server_unavailable(), "{e:?}");
    assert_eq!(server.faults().call_count("SystemPing"), 0);

    // A config without pwn_me needs a certificate: no silent plain text.
    let config = format!("[core]\nserver = \"localhost\"\nport = {}\n", server.port());
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let e = ClientBuilder::from_config_file(&path)
        .unwrap()
        .build()
        .unwrap_err();
    match e {
        Error::Config { file, key, .. } => {
            assert_eq!(file, dir.path().join("keys/tls.pem"));
            assert_eq!(key.as_deref(), Some("tls.certificate"));
        }
        other => panic!("{other:?}"),
    }
    // And pwn_me = true in the file does speak plain text (to a plain server).
    let plain_server = plain_server();
    let config = format!(
        "[core]\nserver = \"127.0.0.1\"\nport = {}\n[tls]\npwn_me = true\n",
        plain_server.port()
    );
    std::fs::write(&path, config).unwrap();
    ClientBuilder::from_config_file(&path)
        .unwrap()
        .build()
        .unwrap()
        .system_ping()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_file_that_is_not_a_certificate_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", "hello, I am not PEM\n");
    let e = tls_client("localhost", 1729, &cert).build().unwrap_err();
    match e {
        Error::Config { file, key, .. } => {
            assert_eq!(file, cert);
            assert_eq!(key.as_deref(), Some("tls.certificate"));
        }
        other => panic!("{other:?}"),
    }
}

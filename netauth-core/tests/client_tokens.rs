//! Token handling (cache, refresh on UNAUTHENTICATED, secret callback),
//! request metadata, and the read/write split between server and master.

#[path = "client_support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netauth_core::token::{FsTokenCache, MemoryTokenCache, TokenCache};
use netauth_core::{Error, Secret, Token};
use support::*;

#[tokio::test]
async fn a_cached_token_is_reused() {
    let server = plain_server();
    let cache = Arc::new(MemoryTokenCache::new());
    let client = admin(&server).token_cache(cache.clone()).build().unwrap();
    client.entity_lock("bob").await.unwrap();
    client.entity_unlock("bob").await.unwrap();
    client.entity_lock("bob").await.unwrap();
    assert_eq!(server.faults().call_count("AuthGetToken"), 1);
    let cached = cache.get("admin").unwrap().expect("token cached");
    assert_eq!(client.token().await.unwrap(), cached);
}

#[tokio::test]
async fn a_rejected_cached_token_is_replaced_and_the_call_retried_once() {
    let server = plain_server();
    let cache = Arc::new(MemoryTokenCache::new());
    cache.put("admin", &Token::new("stale.or.forged")).unwrap();
    let client = admin(&server).token_cache(cache.clone()).build().unwrap();
    client.entity_lock("bob").await.unwrap();
    assert_eq!(server.faults().call_count("EntityLock"), 2);
    assert_eq!(server.faults().call_count("AuthGetToken"), 1);
    let fresh = cache.get("admin").unwrap().unwrap();
    assert_ne!(fresh.expose(), "stale.or.forged");
    assert!(server
        .state()
        .entity("bob")
        .unwrap()
        .meta
        .unwrap()
        .locked
        .unwrap_or(false));
}

#[tokio::test]
async fn an_expired_token_is_refreshed() {
    let server = netauth_testserver::TestServer::start(netauth_testserver::Options {
        token_lifetime: Duration::from_secs(1),
        ..options()
    });
    let client = admin(&server).build().unwrap();
    client.entity_lock("bob").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    client.entity_unlock("bob").await.unwrap();
    assert_eq!(server.faults().call_count("AuthGetToken"), 2);
}

#[tokio::test]
async fn a_fresh_token_that_is_rejected_is_not_retried_forever() {
    let server = plain_server();
    server
        .faults()
        .fail_method("EntityLock", tonic::Code::Unauthenticated);
    // Empty cache: fresh token, rejected, no retry.
    let client = admin(&server).build().unwrap();
    let e = client.entity_lock("bob").await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert_eq!(server.faults().call_count("EntityLock"), 1);
    // Cached token: one retry with a fresh token, then the error.
    let e = client.entity_lock("bob").await.unwrap_err();
    assert!(matches!(e, Error::Unauthenticated { .. }), "{e:?}");
    assert_eq!(server.faults().call_count("EntityLock"), 3);
    assert_eq!(server.faults().call_count("AuthGetToken"), 2);
}

#[tokio::test]
async fn other_errors_do_not_drop_the_cached_token() {
    let server = plain_server();
    let cache = Arc::new(MemoryTokenCache::new());
    let client = admin(&server).token_cache(cache.clone()).build().unwrap();
    client.entity_lock("bob").await.unwrap();
    let before = cache.get("admin").unwrap().unwrap();
    let e = client.entity_lock("nobody").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    assert_eq!(cache.get("admin").unwrap().unwrap(), before);
    assert_eq!(server.faults().call_count("AuthGetToken"), 1);
}

#[tokio::test]
async fn the_secret_callback_is_asked_only_when_a_token_is_needed() {
    let server = plain_server();
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let client = builder(&server)
        .entity("admin")
        .secret_callback(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Some(Secret::new("admin-secret"))
        })
        .token_cache(Arc::new(MemoryTokenCache::new()))
        .build()
        .unwrap();
    client.entity_info("alice").await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 0);
    client.entity_lock("bob").await.unwrap();
    client.entity_unlock("bob").await.unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);

    let declined = builder(&server)
        .entity("admin")
        .secret_callback(|| None)
        .token_cache(Arc::new(MemoryTokenCache::new()))
        .build()
        .unwrap();
    let e = declined.entity_lock("bob").await.unwrap_err();
    assert!(
        matches!(e, Error::NoSecret { ref entity } if entity == "admin"),
        "{e:?}"
    );
}

#[tokio::test]
async fn the_file_cache_works_end_to_end() {
    let server = plain_server();
    let dir = tempfile::tempdir().unwrap();
    let cache = Arc::new(FsTokenCache::with_dir(dir.path()));
    let client = admin(&server).token_cache(cache).build().unwrap();
    client.entity_lock("bob").await.unwrap();
    let path = dir.path().join("admin.nt");
    let meta = std::fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    let token = Token::new(std::fs::read_to_string(&path).unwrap());
    client.auth_validate_token(&token).await.unwrap();

    // Another client (another process, say) picks the cached token up.
    let again = admin(&server)
        .token_cache(Arc::new(FsTokenCache::with_dir(dir.path())))
        .build()
        .unwrap();
    again.entity_unlock("bob").await.unwrap();
    assert_eq!(server.faults().call_count("AuthGetToken"), 1);
}

#[tokio::test]
async fn metadata_is_sent_on_every_call_and_the_token_only_where_needed() {
    let server = plain_server();
    let cache = Arc::new(MemoryTokenCache::new());
    let client = admin(&server).token_cache(cache.clone()).build().unwrap();
    client.system_ping().await.unwrap();
    client.entity_info("alice").await.unwrap();
    client.entity_lock("bob").await.unwrap();

    let token = cache.get("admin").unwrap().unwrap();
    for method in ["SystemPing", "EntityInfo", "AuthGetToken", "EntityLock"] {
        let seen = server
            .last_metadata_for(method)
            .unwrap_or_else(|| panic!("no call to {method} recorded"));
        assert_eq!(seen.client_name.as_deref(), Some("test-host"), "{method}");
        assert_eq!(
            seen.service_name.as_deref(),
            Some("client-tests"),
            "{method}"
        );
        if method == "EntityLock" {
            // The raw token, no "Bearer " prefix.
            assert_eq!(
                seen.authorization.as_deref(),
                Some(token.expose()),
                "{method}"
            );
        } else {
            assert_eq!(seen.authorization, None, "{method}");
        }
    }
}

#[tokio::test]
async fn client_name_defaults_to_the_host_name() {
    let server = plain_server();
    let client = netauth_core::ClientBuilder::new("127.0.0.1")
        .port(server.port())
        .pwn_me(true)
        .build()
        .unwrap();
    client.system_ping().await.unwrap();
    let seen = server.last_metadata_for("SystemPing").unwrap();
    assert_eq!(seen.client_name, Some(netauth_core::config::host_name()));
    assert_eq!(
        seen.service_name.as_deref(),
        Some(netauth_core::client::DEFAULT_SERVICE_NAME)
    );
}

/// Nothing listens on 127.0.0.2 at the test server's port: a dead peer.
#[tokio::test]
async fn writes_go_to_the_master_and_reads_to_the_server() {
    let server = plain_server();
    let port = server.port();

    // Reads on the live server, master dead: reads work, writes fail
    // without ever reaching the read server.
    let client = admin(&server).master("127.0.0.2").build().unwrap();
    client.entity_info("alice").await.unwrap();
    let e = client.entity_lock("bob").await.unwrap_err();
    match &e {
        Error::Unreachable { server: name, .. } => assert_eq!(name, &format!("127.0.0.2:{port}")),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.faults().call_count("EntityLock"), 0);
    assert_eq!(server.faults().call_count("AuthGetToken"), 0);

    // Reads on a dead server, master live: writes (and their token) work.
    let client = admin(&server)
        .server("127.0.0.2")
        .master("127.0.0.1")
        .build()
        .unwrap();
    client.entity_lock("bob").await.unwrap();
    assert_eq!(server.faults().call_count("EntityLock"), 1);
    let e = client.entity_info("alice").await.unwrap_err();
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    // Self-service secret change goes to the master too.
    client
        .change_own_secret("alice", &Secret::new("alice-secret"), &Secret::new("n3w"))
        .await
        .unwrap();
    assert!(server.state().check_secret("alice", "n3w"));
}

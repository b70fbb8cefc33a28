//! The blocking facade: each call on its own short-lived runtime.

#[path = "client_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use netauth_core::blocking::BlockingClient;
use netauth_core::token::{MemoryTokenCache, TokenCache};
use netauth_core::{ClientBuilder, Error, Secret};
use support::*;

#[test]
fn every_blocking_call_works() {
    let server = plain_server();
    let client = BlockingClient::new(builder(&server));
    client.ping().unwrap();
    assert!(client.status().unwrap().system_ok);
    client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .unwrap();
    let e = client
        .auth_entity("alice", &Secret::new("wrong"))
        .unwrap_err();
    assert!(e.is_unauthenticated(), "{e:?}");
    let token = client
        .get_token("alice", &Secret::new("alice-secret"))
        .unwrap();
    assert!(!token.is_empty());
    assert_eq!(client.entity_info("alice").unwrap().number, Some(1001));
    assert!(client.entity_info("nobody").unwrap_err().is_not_found());
    assert_eq!(
        names(&client.entity_groups("alice").unwrap()),
        sorted(&["staff", "everyone", "employees"])
    );
    assert_eq!(
        ids(&client.group_members("employees").unwrap()),
        sorted(&["alice", "carol"])
    );
    assert_eq!(client.entity_search("*").unwrap().len(), 6);
    assert_eq!(client.group_search("*").unwrap().len(), 6);

    client
        .change_secret("alice", &Secret::new("alice-secret"), &Secret::new("n3w"))
        .unwrap();
    assert!(server.state().check_secret("alice", "n3w"));
    let e = client
        .change_secret("alice", &Secret::new("alice-secret"), &Secret::new("x"))
        .unwrap_err();
    assert!(e.is_unauthenticated(), "{e:?}");
}

#[test]
fn run_does_several_calls_on_one_client() {
    let server = plain_server();
    let client = BlockingClient::new(builder(&server));
    let (entity, groups) = client
        .run(|c| async move {
            let entity = c.entity_info("bob").await?;
            let groups = c.entity_groups("bob").await?;
            Ok((entity, groups))
        })
        .unwrap();
    assert_eq!(entity.id, "bob");
    assert_eq!(names(&groups), sorted(&["contractors", "everyone"]));
}

#[test]
fn the_token_cache_lasts_across_blocking_calls() {
    let server = plain_server();
    let client = BlockingClient::new(admin(&server));
    client
        .run(|c| async move { c.entity_lock("bob").await })
        .unwrap();
    client
        .run(|c| async move { c.entity_unlock("bob").await })
        .unwrap();
    assert_eq!(server.faults().call_count("AuthGetToken"), 1);

    // Same with a cache made from the kind (share_token_cache).
    let plain = BlockingClient::new(
        builder(&server)
            .entity("admin")
            .secret(Secret::new("admin-secret")),
    );
    plain
        .run(|c| async move { c.entity_lock("bob").await })
        .unwrap();
    plain
        .run(|c| async move { c.entity_unlock("bob").await })
        .unwrap();
    assert_eq!(server.faults().call_count("AuthGetToken"), 2);

    // An explicit cache is the one used.
    let cache: Arc<dyn TokenCache> = Arc::new(MemoryTokenCache::new());
    let explicit = BlockingClient::new(admin(&server).token_cache(cache.clone()));
    explicit
        .run(|c| async move { c.entity_lock("bob").await })
        .unwrap();
    assert!(cache.get("admin").unwrap().is_some());
}

#[test]
fn blocking_calls_fail_in_time_when_the_server_is_gone() {
    let server = plain_server();
    let port = server.port();
    server.shutdown();
    let client = BlockingClient::new(
        ClientBuilder::new("127.0.0.1")
            .port(port)
            .pwn_me(true)
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let e = client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .unwrap_err();
    assert!(e.is_server_unavailable(), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(4));

    let hole = netauth_testserver::BlackHole::start();
    let client = BlockingClient::new(
        ClientBuilder::new("127.0.0.1")
            .port(hole.port())
            .pwn_me(true)
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let e = client.ping().unwrap_err();
    assert!(matches!(e, Error::TimedOut { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[test]
fn a_blocking_call_inside_a_runtime_is_an_error_not_a_panic() {
    let server = plain_server();
    let client = BlockingClient::new(builder(&server));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let e = runtime.block_on(async { client.ping() }).unwrap_err();
    assert!(matches!(e, Error::Runtime(_)), "{e:?}");
}

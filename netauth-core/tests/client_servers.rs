//! Several read servers: tried in order within one deadline, the one that
//! answered first from then on, writes to the master only.

#[path = "client_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use netauth_core::config::TokenCacheKind;
use netauth_core::{ClientBuilder, Error, Secret};
use netauth_testserver::BlackHole;
use support::*;

fn two_servers(first: String, second: String) -> ClientBuilder {
    ClientBuilder::new("127.0.0.1")
        .read_servers(vec![first, second])
        .pwn_me(true)
        .token_cache_kind(TokenCacheKind::Memory)
        .connect_timeout(Duration::from_millis(600))
        .request_timeout(Duration::from_millis(2000))
}

#[tokio::test]
async fn a_stopped_first_server_is_passed_over_and_the_second_remembered() {
    let dead = plain_server();
    let dead_port = dead.port();
    dead.shutdown();
    let live = plain_server();
    let builder = two_servers(
        format!("127.0.0.1:{dead_port}"),
        format!("127.0.0.1:{}", live.port()),
    );
    assert_eq!(
        builder.read_server_names(),
        [
            format!("127.0.0.1:{dead_port}"),
            format!("127.0.0.1:{}", live.port())
        ]
    );
    let client = builder.build().unwrap();
    client
        .auth_entity("alice", &Secret::new("alice-secret"))
        .await
        .unwrap();
    let live_name = format!("127.0.0.1:{}", live.port());
    assert_eq!(client.health().answered_by(), Some(live_name.clone()));
    let failures = client.health().failures();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, format!("127.0.0.1:{dead_port}"));
    // A wrong secret is the second server's answer, not a reason to go on.
    let e = client
        .auth_entity("alice", &Secret::new("wrong"))
        .await
        .unwrap_err();
    assert!(e.is_unauthenticated(), "{e:?}");
    assert_eq!(live.faults().call_count("AuthEntity"), 2);
    // A new client from the same builder tries the good one first.
    let again = builder.build().unwrap();
    again.entity_info("alice").await.unwrap();
    assert_eq!(again.health().failures().len(), 1);
}

#[tokio::test]
async fn a_black_holed_first_server_leaves_the_second_time_within_one_deadline() {
    let hole = BlackHole::start();
    let live = plain_server();
    let client = two_servers(
        format!("127.0.0.1:{}", hole.port()),
        format!("127.0.0.1:{}", live.port()),
    )
    .build()
    .unwrap();
    let started = Instant::now();
    client.entity_info("alice").await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(2000) + Duration::from_secs(2),
        "{elapsed:?}"
    );
    assert_eq!(live.faults().call_count("EntityInfo"), 1);
    // Then the second one is asked first: no more waiting on the hole.
    let started = Instant::now();
    client.entity_info("alice").await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn all_servers_down_is_unavailable_within_the_deadline() {
    let a = BlackHole::start();
    let b = BlackHole::start();
    let deadline = Duration::from_millis(1200);
    let client = two_servers(
        format!("127.0.0.1:{}", a.port()),
        format!("127.0.0.1:{}", b.port()),
    )
    .request_timeout(deadline)
    .build()
    .unwrap();
    let started = Instant::now();
    let e = client.system_ping().await.unwrap_err();
    assert!(e.is_server_unavailable(), "{e:?}");
    assert!(
        started.elapsed() < deadline + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(client.health().failures().len(), 2);
    assert_eq!(client.health().answered_by(), None);
}

#[tokio::test]
async fn writes_go_to_the_master_not_to_the_read_list() {
    let replica = plain_server();
    let master = plain_server();
    let client = ClientBuilder::new("127.0.0.1")
        .read_servers(vec![format!("127.0.0.1:{}", replica.port())])
        .master("127.0.0.1")
        .port(master.port())
        .pwn_me(true)
        .token_cache_kind(TokenCacheKind::Memory)
        .build()
        .unwrap();
    client
        .change_own_secret(
            "alice",
            &Secret::new("alice-secret"),
            &Secret::new("new-secret"),
        )
        .await
        .unwrap();
    assert_eq!(master.faults().call_count("AuthChangeSecret"), 1);
    assert_eq!(replica.faults().call_count("AuthChangeSecret"), 0);
    let e = client.entity_info("nobody-here").await.unwrap_err();
    assert!(matches!(e, Error::DoesNotExist { .. }), "{e:?}");
    assert_eq!(replica.faults().call_count("EntityInfo"), 1);
    assert_eq!(master.faults().call_count("EntityInfo"), 0);
}

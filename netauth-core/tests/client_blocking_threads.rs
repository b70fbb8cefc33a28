//! The blocking facade leaves no thread behind. Alone in its own test
//! binary (one test) so that no other test's threads disturb the count.

#[path = "client_support/mod.rs"]
mod support;

use std::time::Duration;

use netauth_core::blocking::BlockingClient;
use netauth_core::{ClientBuilder, Secret};
use support::*;

#[test]
fn no_thread_outlives_a_blocking_call() {
    if netauth_test_support::skip_without_root() {
        return;
    }
    // Servers first: they run their own threads for the whole test.
    let server = plain_server();
    let identity = netauth_style_identity(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let cert = write_pem(dir.path(), "tls.pem", &identity.cert_pem);
    let tls = tls_server(identity);
    let hole = netauth_testserver::BlackHole::start();
    let stopped_port = {
        let s = plain_server();
        let port = s.port();
        s.shutdown();
        port
    };
    // Let server start-up threads settle.
    std::thread::sleep(Duration::from_millis(200));

    let plain = BlockingClient::new(admin(&server));
    // "localhost" needs a DNS look-up, which runs on a blocking-pool thread.
    let over_tls = BlockingClient::new(
        ClientBuilder::new("localhost")
            .port(tls.port())
            .certificate(&cert)
            .entity("admin")
            .secret(Secret::new("admin-secret")),
    );
    let black_hole = BlockingClient::new(
        ClientBuilder::new("127.0.0.1")
            .port(hole.port())
            .pwn_me(true)
            .request_timeout(Duration::from_millis(300)),
    );
    let stopped = BlockingClient::new(
        ClientBuilder::new("127.0.0.1")
            .port(stopped_port)
            .pwn_me(true),
    );

    let before = thread_count();
    for _ in 0..3 {
        plain.ping().unwrap();
        plain.entity_info("alice").unwrap();
        plain
            .run(|c| async move {
                c.entity_lock("bob").await?;
                c.entity_unlock("bob").await
            })
            .unwrap();
        over_tls.ping().unwrap();
        over_tls
            .auth_entity("alice", &Secret::new("alice-secret"))
            .unwrap();
        over_tls
            .run(|c| async move { c.entity_lock("bob").await })
            .unwrap();
        assert!(black_hole.ping().unwrap_err().is_timeout());
        assert!(stopped.ping().unwrap_err().is_server_unavailable());
        assert_eq!(
            thread_count(),
            before,
            "a blocking call left a thread behind"
        );
    }
}

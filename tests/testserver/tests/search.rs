//! Search: the query-string subset, the silent result cap, and answers
//! larger than gRPC's default 4 MiB limit.

mod common;

use std::collections::HashSet;
use std::sync::OnceLock;

use common::*;
use netauth_proto::netauth::v2::net_auth2_client::NetAuth2Client;
use netauth_proto::netauth::v2::SearchRequest;
use netauth_proto::Entity;
use netauth_testserver::{Options, TestServer};
use tonic::Code;

const BIG: usize = 20_000;

/// 20,000 entities `u00000`..`u19999` with numbers 0..19999 and enough
/// metadata that 16,000 of them exceed 4 MiB.
fn big_server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let server = TestServer::start(Options::default());
        let dir = server.state();
        let padding = "x".repeat(200);
        for i in 0..BIG {
            let id = format!("u{i:05}");
            dir.add_entity(&id, i as i32, "pw");
            dir.set_entity_meta(&id, |m| {
                m.display_name = Some(format!("User {i}"));
                m.home = Some(format!("/home/{id}"));
                m.shell = Some("/bin/bash".into());
                m.badge_number = Some(padding.clone());
            });
        }
        server
    })
}

fn search(e: &str) -> SearchRequest {
    SearchRequest {
        expression: Some(e.to_string()),
    }
}

async fn entities(c: &mut Client, e: &str) -> Vec<Entity> {
    c.entity_search(req(search(e), None))
        .await
        .unwrap_or_else(|s| panic!("search {e:?}: {s}"))
        .into_inner()
        .entities
}

fn numbers(v: &[Entity]) -> Vec<i32> {
    let mut n: Vec<i32> = v.iter().filter_map(|e| e.number).collect();
    n.sort_unstable();
    n
}

#[tokio::test]
async fn star_answers_the_cap_silently() {
    let server = big_server();
    assert_eq!(server.state().entity_count(), BIG);
    let mut c = client(server).await;
    let all = entities(&mut c, "*").await;
    assert_eq!(all.len(), 16_000);
    let distinct: HashSet<_> = all.iter().map(|e| e.id.clone()).collect();
    assert_eq!(distinct.len(), 16_000);
    assert!(all
        .iter()
        .all(|e| e.secret.as_deref() == Some("<REDACTED>")));
    assert_eq!(entities(&mut c, "Number:>=0").await.len(), 16_000);
}

#[tokio::test]
async fn numeric_ranges_combine() {
    let mut c = client(big_server()).await;
    let r = entities(&mut c, "+Number:>=10000 +Number:<18000").await;
    assert_eq!(numbers(&r), (10_000..18_000).collect::<Vec<i32>>());
    assert_eq!(
        numbers(&entities(&mut c, "Number:>19995").await),
        vec![19996, 19997, 19998, 19999]
    );
    assert_eq!(numbers(&entities(&mut c, "Number:<3").await), vec![0, 1, 2]);
    assert_eq!(
        numbers(&entities(&mut c, "Number:<=3").await),
        vec![0, 1, 2, 3]
    );
    assert_eq!(numbers(&entities(&mut c, "Number:1234").await), vec![1234]);
    assert_eq!(
        numbers(&entities(&mut c, "+Number:>=100 +Number:<110 -Number:105").await),
        vec![100, 101, 102, 103, 104, 106, 107, 108, 109]
    );
}

#[tokio::test]
async fn prefix_wildcards_and_fields() {
    let mut c = client(big_server()).await;
    let r = entities(&mut c, "ID:u0*").await;
    assert_eq!(r.len(), 10_000);
    assert!(r.iter().all(|e| e.id.as_deref().unwrap().starts_with("u0")));
    assert_eq!(entities(&mut c, "ID:u1999?").await.len(), 10);
    assert_eq!(ids(&entities(&mut c, "ID:u00042").await), vec!["u00042"]);
    assert_eq!(
        ids(&entities(&mut c, "meta.Home:u00043").await),
        vec!["u00043"]
    );
    assert!(entities(&mut c, "ID:nobody").await.is_empty());
}

#[tokio::test]
async fn answer_order_is_not_stable() {
    let mut c = client(big_server()).await;
    let a = entities(&mut c, "Number:<200").await;
    let b = entities(&mut c, "Number:<200").await;
    assert_eq!(numbers(&a), numbers(&b));
    let order = |v: &[Entity]| v.iter().map(|e| e.number).collect::<Vec<_>>();
    assert_ne!(order(&a), order(&b), "200 results in the same order twice");
}

#[tokio::test]
async fn big_answers_exceed_the_default_4_mib_limit() {
    let server = big_server();
    let ch = tonic::transport::Endpoint::from_shared(server.uri())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut default_client = NetAuth2Client::new(ch);
    let err = default_client
        .entity_search(req(search("*"), None))
        .await
        .expect_err("more than 4 MiB");
    assert!(
        matches!(err.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{err}"
    );
}

#[tokio::test]
async fn bad_expressions_are_internal_errors() {
    let mut c = client(big_server()).await;
    for e in ["", "   ", "Number:>=abc", "\"unterminated", "ID:"] {
        assert_eq!(
            code(c.entity_search(req(search(e), None)).await),
            Code::Internal,
            "{e:?}"
        );
    }
    assert_eq!(
        code(
            c.entity_search(req(SearchRequest { expression: None }, None))
                .await
        ),
        Code::Internal
    );
}

#[tokio::test]
async fn the_cap_is_an_option() {
    let server = TestServer::start(Options {
        fixture: Some(sample_fixture()),
        search_cap: 3,
        ..Options::default()
    });
    let mut c = client(&server).await;
    assert_eq!(entities(&mut c, "*").await.len(), 3);
    let groups = c
        .group_search(req(search("*"), None))
        .await
        .unwrap()
        .into_inner()
        .groups;
    assert_eq!(groups.len(), 3);
}

#[tokio::test]
async fn text_fields_match_words() {
    let server = sample_server();
    let mut c = client(&server).await;
    assert_eq!(
        ids(&entities(&mut c, "meta.Groups:staff").await),
        vec!["alice", "bob", "erin", "frank"],
        "direct memberships only"
    );
    assert_eq!(
        ids(&entities(&mut c, "meta.DisplayName:anderson").await),
        vec!["alice"]
    );
    assert_eq!(
        ids(&entities(&mut c, "meta.DisplayName:\"Alice Anderson\"").await),
        vec!["alice"]
    );
    assert_eq!(
        ids(&entities(&mut c, "meta.PrimaryGroup:contractors").await),
        vec!["carol"]
    );
    assert_eq!(ids(&entities(&mut c, "meta.Shell:zsh").await), vec!["bob"]);
    assert_eq!(ids(&entities(&mut c, "ID:alice").await), vec!["alice"]);
    assert_eq!(ids(&entities(&mut c, "Number:1001").await), vec!["alice"]);
    assert_eq!(
        ids(&entities(&mut c, "Davis").await),
        vec!["dave"],
        "bare word: any field"
    );
    assert_eq!(
        ids(&entities(&mut c, "+meta.Groups:staff -ID:bob -meta.Locked:true").await),
        vec!["alice", "frank"]
    );
    assert_eq!(
        ids(&entities(&mut c, "ID:carol ID:dave").await),
        vec!["carol", "dave"]
    );
    assert!(entities(&mut c, "NoSuchField:alice").await.is_empty());
}

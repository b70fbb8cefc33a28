//! Helpers for driving the test server through the generated gRPC client
//! over a real loopback connection.
#![allow(dead_code)]

use std::path::PathBuf;

use netauth_proto::netauth::v2::net_auth2_client::NetAuth2Client;
use netauth_proto::netauth::v2::{AuthRequest, EntityRequest, GroupRequest};
use netauth_proto::{Entity, EntityMeta, Group};
use netauth_testserver::{Fixture, Options, TestServer, MAX_MESSAGE_SIZE};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

pub type Client = NetAuth2Client<Channel>;

pub fn sample_fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/sample.toml");
    Fixture::load(&path).expect("sample fixture loads")
}

pub fn sample_server() -> TestServer {
    TestServer::start(Options {
        fixture: Some(sample_fixture()),
        ..Options::default()
    })
}

pub async fn client(server: &TestServer) -> Client {
    let mut ep = Endpoint::from_shared(server.uri()).expect("uri");
    if let Some(pem) = server.cert_pem() {
        ep = ep
            .tls_config(
                ClientTlsConfig::new()
                    .ca_certificate(Certificate::from_pem(pem))
                    .domain_name("localhost"),
            )
            .expect("tls config");
    }
    let ch = ep.connect().await.expect("connect");
    NetAuth2Client::new(ch)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}

/// A request with NetAuth's metadata; `token` goes in `authorization`.
pub fn req<T>(msg: T, token: Option<&str>) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("client-name", "test-host".parse().expect("ascii"));
    r.metadata_mut()
        .insert("service-name", "testserver-tests".parse().expect("ascii"));
    if let Some(t) = token {
        r.metadata_mut()
            .insert("authorization", t.parse().expect("ascii token"));
    }
    r
}

pub fn auth(id: &str, secret: &str) -> AuthRequest {
    AuthRequest {
        entity: Some(entity(id)),
        secret: Some(secret.to_string()),
        token: None,
    }
}

pub async fn token(c: &mut Client, id: &str, secret: &str) -> String {
    c.auth_get_token(req(auth(id, secret), None))
        .await
        .expect("token")
        .into_inner()
        .token
        .expect("token field")
}

pub fn entity(id: &str) -> Entity {
    Entity {
        id: Some(id.to_string()),
        ..Default::default()
    }
}

pub fn entity_req(id: &str) -> EntityRequest {
    EntityRequest {
        entity: Some(entity(id)),
        data: None,
    }
}

/// GroupAddMember / GroupDelMember shape: Entity.ID + meta.Groups = [group].
pub fn member_req(id: &str, group: &str) -> EntityRequest {
    EntityRequest {
        entity: Some(Entity {
            id: Some(id.to_string()),
            meta: Some(EntityMeta {
                groups: vec![group.to_string()],
                ..Default::default()
            }),
            ..Default::default()
        }),
        data: None,
    }
}

pub fn group_req(name: &str) -> GroupRequest {
    GroupRequest {
        group: Some(Group {
            name: Some(name.to_string()),
            ..Default::default()
        }),
        data: None,
    }
}

pub fn code<T: std::fmt::Debug>(r: Result<T, Status>) -> Code {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => s.code(),
    }
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub fn ids(entities: &[Entity]) -> Vec<String> {
    sorted(entities.iter().filter_map(|e| e.id.clone()).collect())
}

pub fn names(groups: &[Group]) -> Vec<String> {
    sorted(groups.iter().filter_map(|g| g.name.clone()).collect())
}

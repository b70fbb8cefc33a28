//! Fault injection, the black hole, shutdown, TLS and the config snippet.

mod common;

use std::time::{Duration, Instant};

use common::*;
use netauth_proto::netauth::v2::net_auth2_client::NetAuth2Client;
use netauth_proto::netauth::v2::Empty;
use netauth_testserver::{generate_tls_identity, BlackHole, Options, TestServer};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};
use tonic::Code;

#[tokio::test]
async fn delay_slows_every_answer() {
    let server = sample_server();
    let mut c = client(&server).await;
    server.faults().set_delay(Some(Duration::from_millis(300)));
    let t = Instant::now();
    c.system_ping(req(Empty {}, None)).await.unwrap();
    assert!(t.elapsed() >= Duration::from_millis(300));
    let mut r = req(Empty {}, None);
    r.set_timeout(Duration::from_millis(50));
    let e = c.system_ping(r).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{e}"
    );
    server.faults().clear();
    let t = Instant::now();
    c.system_ping(req(Empty {}, None)).await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn injected_errors_and_counters() {
    let server = sample_server();
    let mut c = client(&server).await;
    let f = server.faults();
    f.fail_method("EntityInfo", Code::Unavailable);
    assert_eq!(
        code(c.entity_info(req(entity_req("alice"), None)).await),
        Code::Unavailable
    );
    c.entity_groups(req(entity_req("alice"), None))
        .await
        .unwrap();
    f.fail_method_after("AuthEntity", 2, Code::Internal);
    for _ in 0..2 {
        c.auth_entity(req(auth("alice", "alice-secret"), None))
            .await
            .unwrap();
    }
    assert_eq!(
        code(
            c.auth_entity(req(auth("alice", "alice-secret"), None))
                .await
        ),
        Code::Internal
    );
    assert_eq!(f.call_count("EntityInfo"), 1);
    assert_eq!(f.call_count("AuthEntity"), 3);
    assert_eq!(f.call_count("EntityGroups"), 1);
    assert_eq!(f.call_count("GroupInfo"), 0);
    f.fail_method("*", Code::DeadlineExceeded);
    assert_eq!(
        code(c.system_ping(req(Empty {}, None)).await),
        Code::DeadlineExceeded
    );
    f.clear();
    c.entity_info(req(entity_req("alice"), None)).await.unwrap();
    c.auth_entity(req(auth("alice", "alice-secret"), None))
        .await
        .unwrap();
    assert_eq!(f.call_count("*"), 8);
}

#[tokio::test]
async fn dropped_connections() {
    let server = sample_server();
    let mut c = client(&server).await;
    c.system_ping(req(Empty {}, None)).await.unwrap();
    server.faults().set_drop_connections(true);
    // The open connection fails on its next use (as a transport error)...
    let e = c.system_ping(req(Empty {}, None)).await.unwrap_err();
    assert!(matches!(e.code(), Code::Unavailable | Code::Unknown), "{e}");
    // ... and new ones are closed at once.
    let t = Instant::now();
    let r = Endpoint::from_shared(server.uri())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .connect()
        .await;
    match r {
        Err(_) => {}
        Ok(ch) => {
            // The handshake is lazy: the call is what fails.
            let r = NetAuth2Client::new(ch)
                .system_ping(req(Empty {}, None))
                .await;
            assert!(r.is_err());
        }
    }
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(server.faults().call_count("SystemPing"), 1);
    server.faults().set_drop_connections(false);
    let mut c = client(&server).await;
    c.system_ping(req(Empty {}, None)).await.unwrap();
}

#[tokio::test]
async fn black_hole_makes_calls_time_out() {
    let hole = BlackHole::start();
    let ch = Endpoint::from_shared(format!("http://{}", hole.addr()))
        .unwrap()
        .timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect_lazy();
    let t = Instant::now();
    let e = NetAuth2Client::new(ch)
        .system_ping(req(Empty {}, None))
        .await
        .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    assert!(
        matches!(
            e.code(),
            Code::DeadlineExceeded | Code::Cancelled | Code::Unavailable
        ),
        "{e}"
    );
}

#[test]
fn drop_stops_the_server_and_frees_the_port() {
    let server = sample_server();
    let addr = server.addr();
    std::net::TcpStream::connect(addr).expect("listening");
    let t = Instant::now();
    drop(server);
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening"
    );
    // shutdown() does the same, and works from a sync test.
    let server = TestServer::start(Options::default());
    let addr = server.addr();
    server.shutdown();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn fixed_port_and_start_errors() {
    let first = TestServer::start(Options::default());
    let taken = first.addr();
    let err = TestServer::try_start_on(taken, Options::default()).unwrap_err();
    assert!(err.contains("cannot bind"), "{err}");
    let bad = Options {
        fixture: Some(
            netauth_testserver::Fixture::from_toml_str(
                "[[entity]]\nid = \"a\"\nsecret = \"s\"\ngroups = [\"missing\"]\n",
            )
            .unwrap(),
        ),
        ..Options::default()
    };
    let err = TestServer::try_start_on("127.0.0.1:0".parse().unwrap(), bad).unwrap_err();
    assert!(err.contains("missing"), "{err}");
    assert!(netauth_testserver::Fixture::from_toml_str("[[entity]]\nid = 1\n").is_err());
    assert!(
        netauth_testserver::Fixture::from_toml_str("[[group]]\nname = \"g\"\ntypo = 1\n").is_err(),
        "unknown keys are refused"
    );
}

fn tls_server() -> TestServer {
    TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        fixture: Some(sample_fixture()),
        ..Options::default()
    })
}

async fn tls_ping(uri: &str, pem: &str, domain: &str) -> Result<(), String> {
    let ep = Endpoint::from_shared(uri.to_string())
        .unwrap()
        .timeout(Duration::from_secs(5))
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(pem))
                .domain_name(domain),
        )
        .unwrap();
    let ch = ep.connect().await.map_err(|e| format!("{e:?}"))?;
    NetAuth2Client::new(ch)
        .system_ping(req(Empty {}, None))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn tls_with_the_servers_own_certificate() {
    let server = tls_server();
    let pem = server.cert_pem().unwrap().to_string();
    assert!(server.uri().starts_with("https://localhost:"));
    tls_ping(&server.uri(), &pem, "localhost").await.unwrap();
    let by_ip = format!("https://127.0.0.1:{}", server.port());
    tls_ping(&by_ip, &pem, "127.0.0.1").await.unwrap();
    // Through the common helper too (full client).
    let mut c = client(&server).await;
    c.auth_entity(req(auth("alice", "alice-secret"), None))
        .await
        .unwrap();
}

#[tokio::test]
async fn tls_refuses_other_certificates_names_and_plain_text() {
    let server = tls_server();
    let pem = server.cert_pem().unwrap().to_string();
    let other = generate_tls_identity(&["localhost", "127.0.0.1"]).cert_pem;
    assert!(tls_ping(&server.uri(), &other, "localhost").await.is_err());
    assert!(tls_ping(&server.uri(), &pem, "wrong.example")
        .await
        .is_err());
    let plain = format!("http://127.0.0.1:{}", server.port());
    let ch = Endpoint::from_shared(plain)
        .unwrap()
        .timeout(Duration::from_secs(3))
        .connect_lazy();
    assert!(NetAuth2Client::new(ch)
        .system_ping(req(Empty {}, None))
        .await
        .is_err());
    // And a TLS client against a plain server fails too.
    let plain_server = sample_server();
    let uri = format!("https://localhost:{}", plain_server.port());
    assert!(tls_ping(&uri, &pem, "localhost").await.is_err());
}

#[test]
fn generated_certificate_is_like_netauths() {
    use x509_parser::extensions::GeneralName;
    use x509_parser::prelude::*;
    let id = generate_tls_identity(&["localhost", "127.0.0.1", "netauth.example"]);
    assert!(id.key_pem.contains("PRIVATE KEY"));
    assert!(
        !format!("{id:?}").contains("PRIVATE KEY"),
        "key kept out of Debug"
    );
    let (_, pem) = parse_x509_pem(id.cert_pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
    assert_eq!(
        cert.public_key().algorithm.algorithm,
        x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY
    );
    let params = cert.public_key().algorithm.parameters.as_ref().unwrap();
    assert_eq!(
        params.as_oid().unwrap(),
        x509_parser::oid_registry::OID_EC_P256
    );
    let bc = cert.basic_constraints().unwrap().unwrap().value;
    assert!(!bc.ca, "CA:FALSE");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.server_auth);
    let san = cert.subject_alternative_name().unwrap().unwrap().value;
    let names: Vec<String> = san
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => d.to_string(),
            GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        vec!["localhost", "ip:[127, 0, 0, 1]", "netauth.example"]
    );
}

#[test]
fn config_toml_points_at_the_server() {
    let plain = TestServer::start(Options::default());
    let cfg: toml::Value = toml::from_str(&plain.config_toml(None)).unwrap();
    assert_eq!(cfg["core"]["server"].as_str(), Some("127.0.0.1"));
    assert_eq!(
        cfg["core"]["port"].as_integer(),
        Some(i64::from(plain.port()))
    );
    assert_eq!(cfg["tls"]["pwn_me"].as_bool(), Some(true));
    let tls = tls_server();
    let cfg: toml::Value =
        toml::from_str(&tls.config_toml(Some(std::path::Path::new("/tmp/x \"y\"/tls.pem"))))
            .unwrap();
    assert_eq!(cfg["core"]["server"].as_str(), Some("localhost"));
    assert_eq!(
        cfg["tls"]["certificate"].as_str(),
        Some("/tmp/x \"y\"/tls.pem")
    );
    assert!(cfg["tls"].get("pwn_me").is_none());
}

#[test]
fn usable_from_plain_threads() {
    // No runtime here: the server brings its own; a client on another
    // runtime on another thread talks to it.
    let server = sample_server();
    let uri = server.uri();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ch = Endpoint::from_shared(uri).unwrap().connect().await.unwrap();
        NetAuth2Client::new(ch)
            .system_ping(req(Empty {}, None))
            .await
            .unwrap();
    });
    assert_eq!(server.faults().call_count("SystemPing"), 1);
}

//! Shared helpers of the client_* integration tests (included with
//! `#[path]`).
#![allow(dead_code)]
#![allow(
    clippy::expect_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use netauth_core::config::TokenCacheKind;
use netauth_core::token::{MemoryTokenCache, TokenCache};
use netauth_core::{ClientBuilder, Secret};
use netauth_testserver::{Fixture, Options, TestServer, TlsIdentity};

/// A small directory: an admin with GLOBAL_ROOT, users with and without
/// groups, a locked user, nested INCLUDE/EXCLUDE rules, a managed group.
pub const FIXTURE: &str = r#"
[[entity]]
id = "admin"
number = 1
secret = "admin-secret"
capabilities = ["GLOBAL_ROOT"]

[[entity]]
id = "alice"
number = 1001
secret = "alice-secret"
primary_group = "staff"
gecos = "Alice Anders"
legal_name = "Alice B. Anders"
display_name = "Alice"
home = "/home/alice"
shell = "/bin/bash"
groups = ["staff"]
keys = ["SSH:ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIalice alice@host"]
untyped_meta = ["phone:555-0101"]

[[entity]]
id = "bob"
number = 1002
secret = "bob-secret"
groups = ["contractors"]

[[entity]]
id = "carol"
number = 1003
secret = "carol-secret"
locked = true
groups = ["staff"]

[[entity]]
id = "dave"
number = 1004
secret = "dave-secret"
groups = ["helpdesk"]

[[entity]]
id = "eve"
number = 1005
secret = "eve-secret"

[[group]]
name = "staff"
number = 2000
display_name = "Staff"

[[group]]
name = "contractors"
number = 2001
display_name = "Contractors"

[[group]]
name = "helpdesk"
number = 2002
display_name = "Help desk"

[[group]]
name = "everyone"
number = 2003
display_name = "Everyone"
include = ["staff", "contractors"]

[[group]]
name = "employees"
number = 2004
display_name = "Employees"
include = ["everyone"]
exclude = ["contractors"]

[[group]]
name = "projects"
number = 2005
display_name = "Projects"
managed_by = "helpdesk"
"#;

pub const SHORT: Duration = Duration::from_millis(1500);

pub fn fixture() -> Fixture {
    Fixture::from_toml_str(FIXTURE).expect("test fixture parses")
}

pub fn options() -> Options {
    Options {
        fixture: Some(fixture()),
        ..Options::default()
    }
}

/// A plain-text server with the fixture.
pub fn plain_server() -> TestServer {
    TestServer::start(options())
}

pub fn tls_server(identity: TlsIdentity) -> TestServer {
    TestServer::start(Options {
        tls: Some(identity),
        ..options()
    })
}

/// A plain-text client for `server` (127.0.0.1), memory token cache.
pub fn builder(server: &TestServer) -> ClientBuilder {
    ClientBuilder::new("127.0.0.1")
        .port(server.port())
        .pwn_me(true)
        .service_name("client-tests")
        .client_id("test-host")
        .connect_timeout(SHORT)
        .request_timeout(Duration::from_secs(5))
        .token_cache_kind(TokenCacheKind::Memory)
}

/// `builder` acting as `entity` with `secret`, with its own memory cache.
pub fn as_entity(server: &TestServer, entity: &str, secret: &str) -> ClientBuilder {
    builder(server)
        .entity(entity)
        .secret(Secret::new(secret))
        .token_cache(Arc::new(MemoryTokenCache::new()) as Arc<dyn TokenCache>)
}

pub fn admin(server: &TestServer) -> ClientBuilder {
    as_entity(server, "admin", "admin-secret")
}

/// Writes `pem` to `<dir>/<name>` and returns the path.
pub fn write_pem(dir: &Path, name: &str, pem: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write pem");
    path
}

/// A certificate made like NetAuth's generator: self-signed ECDSA P-256
/// leaf, CA:FALSE, EKU serverAuth, SANs `names` (DNS or IP).
pub fn netauth_style_identity(names: &[&str]) -> TlsIdentity {
    netauth_style_identity_valid(names, None)
}

/// As [`netauth_style_identity`]; `expired` makes it valid only in the past.
pub fn netauth_style_identity_valid(names: &[&str], expired: Option<()>) -> TlsIdentity {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::DigitalSignature,
        rcgen::KeyUsagePurpose::KeyEncipherment,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "NetAuth Server");
    if expired.is_some() {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    TlsIdentity {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// Number of threads of this process.
pub fn thread_count() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("Threads: line")
}

/// Entity IDs, sorted.
pub fn ids(entities: &[netauth_core::types::Entity]) -> Vec<String> {
    let mut v: Vec<String> = entities.iter().map(|e| e.id.clone()).collect();
    v.sort();
    v
}

/// Group names, sorted.
pub fn names(groups: &[netauth_core::types::Group]) -> Vec<String> {
    let mut v: Vec<String> = groups.iter().map(|g| g.name.clone()).collect();
    v.sort();
    v
}

pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

//! Shared helpers of the refresh tests, the refresh end-to-end tests and the
//! refresh benchmark (included elsewhere with `#[path]`).
#![allow(dead_code)]
#![allow(
    clippy::expect_used,
    reason = "test helpers (outside #[test], so clippy.toml does not cover them): a failed setup must stop the test loudly"
)]

use std::path::{Path, PathBuf};

use netauth_testserver::{Directory, ExpansionRule, TestServer};

/// First entity number of the seeded directory.
pub const FIRST_UID: i32 = 200_000;

/// Name of the `i`th seeded entity. Prefixed so that no host account clashes.
pub fn user_name(i: usize) -> String {
    format!("nu{i:05}")
}

/// Served groups of the seeded directory (all but `ng_hidden`) with gids.
pub const GROUPS: &[(&str, i32)] = &[
    ("ng_users", 300_000),
    ("ng_eng", 300_001),
    ("ng_ops", 300_002),
    ("ng_contractors", 300_003),
    ("ng_interns", 300_004),
    ("ng_staff", 300_005),
    ("ng_all", 300_006),
    ("ng_devs", 300_007),
    ("ng_nocode", 300_008),
    ("ng_empty", 300_009),
    ("ng_leads", 300_010),
];

/// A group below the default `min_gid`: not served, but `ng_all` INCLUDEs it.
pub const HIDDEN_GROUP: (&str, i32) = ("ng_hidden", 500);

/// Seeds a company-like directory of `n` entities: everyone in `ng_users`
/// (their primary group); direct memberships by index; nested rules:
///
/// - ng_staff  = INCLUDE ng_eng, INCLUDE ng_ops, EXCLUDE ng_contractors (+ direct)
/// - ng_all    = INCLUDE ng_staff, INCLUDE ng_hidden, EXCLUDE ng_interns
/// - ng_nocode = INCLUDE ng_interns
/// - ng_devs   = INCLUDE ng_eng, EXCLUDE ng_nocode
///
/// Entity 2 is locked; every fourth has a gecos, home and bash.
pub fn seed_directory(dir: &Directory, n: usize) {
    for (name, gid) in GROUPS.iter().chain([&HIDDEN_GROUP]) {
        dir.add_group(name, *gid, name, None);
    }
    dir.add_rule("ng_staff", ExpansionRule::Include, "ng_eng");
    dir.add_rule("ng_staff", ExpansionRule::Include, "ng_ops");
    dir.add_rule("ng_staff", ExpansionRule::Exclude, "ng_contractors");
    dir.add_rule("ng_all", ExpansionRule::Include, "ng_staff");
    dir.add_rule("ng_all", ExpansionRule::Include, "ng_hidden");
    dir.add_rule("ng_all", ExpansionRule::Exclude, "ng_interns");
    dir.add_rule("ng_nocode", ExpansionRule::Include, "ng_interns");
    dir.add_rule("ng_devs", ExpansionRule::Include, "ng_eng");
    dir.add_rule("ng_devs", ExpansionRule::Exclude, "ng_nocode");

    for i in 0..n {
        let name = user_name(i);
        dir.add_entity(&name, FIRST_UID + i as i32, "pw");
        let mut groups = vec!["ng_users"];
        for (group, modulus) in [
            ("ng_eng", 3),
            ("ng_ops", 5),
            ("ng_contractors", 7),
            ("ng_interns", 11),
            ("ng_staff", 13),
            ("ng_hidden", 17),
        ] {
            if i % modulus == 0 {
                groups.push(group);
            }
        }
        if i % 100 == 1 {
            groups.push("ng_leads");
        }
        dir.set_entity_meta(&name, |m| {
            m.primary_group = Some("ng_users".to_owned());
            m.groups = groups.iter().map(|g| g.to_string()).collect();
            if i % 4 == 0 {
                m.gecos = Some(format!("User {i},Room {i}"));
                m.home = Some(format!("/srv/home/{name}"));
                m.shell = Some("/bin/bash".to_owned());
            }
        });
        if i == 2 {
            dir.lock(&name, true);
        }
    }
}

/// A work folder holding a config for `server`, its certificate (if TLS),
/// local passwd/group/shells files and the cache folder.
pub struct RefreshEnv {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl RefreshEnv {
    /// `extra` is appended to `[unix.refresh]`.
    pub fn new(server: &TestServer, extra: &str) -> RefreshEnv {
        let dir = tempfile::Builder::new()
            .prefix("netauth-refresh-")
            .tempdir()
            .expect("temp dir");
        let cert = server.cert_pem().map(|pem| {
            let path = dir.path().join("tls.pem");
            std::fs::write(&path, pem).expect("write cert");
            path
        });
        let config = Self::write_config(dir.path(), &server.config_toml(cert.as_deref()), extra);
        RefreshEnv { dir, config }
    }

    /// Writes config.toml from a `[core]`/`[tls]` body plus our tables.
    pub fn write_config(dir: &Path, core_and_tls: &str, extra: &str) -> PathBuf {
        std::fs::write(dir.join("passwd"), "root:x:0:0:root:/root:/bin/bash\n").expect("passwd");
        std::fs::write(dir.join("group"), "root:x:0:\n").expect("group");
        std::fs::write(dir.join("shells"), "/bin/sh\n/bin/bash\n").expect("shells");
        let d = dir.display();
        let text = format!(
            "{core_and_tls}\n[unix]\ncache_dir = \"{d}/cache\"\n\n[unix.refresh]\n\
             local_passwd = \"{d}/passwd\"\nlocal_group = \"{d}/group\"\nshells_file = \"{d}/shells\"\n{extra}\n"
        );
        let path = dir.join("config.toml");
        std::fs::write(&path, text).expect("config");
        path
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn cache_path(&self) -> PathBuf {
        self.cache_dir().join("nss.cache")
    }
}

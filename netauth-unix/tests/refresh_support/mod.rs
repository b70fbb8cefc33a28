//! Shared helpers of the refresh tests, the refresh end-to-end tests and the
//! refresh benchmark (included elsewhere with `#[path]`).
#![allow(dead_code)]
#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
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

/// NetAuth groups named like groups of a stock Debian host's /etc/group
/// (`users` 100, `staff` 50), as most directories have them: never served
/// under those names (the local ones keep them), yet the users whose primary
/// group they are keep their numbers as gid.
pub const STOCK_NAMED_GROUPS: &[(&str, i32)] = &[("users", 300_200), ("staff", 300_201)];

/// Every group the seeded directory holds.
pub const FETCHED_GROUPS: usize = GROUPS.len() + 1 + STOCK_NAMED_GROUPS.len();

/// The primary group of the `i`th seeded entity: `users` or `staff`.
pub fn primary_group(i: usize) -> (&'static str, i32) {
    STOCK_NAMED_GROUPS[i % 2]
}

/// Whether the `i`th seeded entity is a direct member of a stock-named group
/// (left out of its supplementary groups unless renamed).
pub fn in_stock_named_group(i: usize, group: &str) -> bool {
    match group {
        "users" => i.is_multiple_of(4),
        "staff" => i.is_multiple_of(3),
        _ => false,
    }
}

/// The tests run against the host's own /etc/passwd and /etc/group, as on
/// a real host; the seed is built to meet Debian's stock `users` and
/// `staff` there. Fails loudly where they are missing, rather than pass
/// without testing the clash.
pub fn require_stock_local_groups() {
    let text = std::fs::read_to_string("/etc/group").expect("read /etc/group");
    for (name, _) in STOCK_NAMED_GROUPS {
        assert!(
            text.lines().any(|l| l.split(':').next() == Some(*name)),
            "these tests expect a stock Debian /etc/group with a {name:?} group"
        );
    }
}

/// A small directory in the shape of most real ones (see
/// `stock-directory.toml`): primary groups `users` and `staff`.
pub const STOCK_DIRECTORY: &str = include_str!("stock-directory.toml");

/// Loads [`STOCK_DIRECTORY`].
pub fn seed_stock_directory(dir: &Directory) {
    let fixture = netauth_testserver::Fixture::from_toml_str(STOCK_DIRECTORY).expect("fixture");
    dir.load_fixture(&fixture).expect("load the fixture");
}

/// Seeds a company-like directory of `n` entities: everyone in `ng_users`;
/// primary group `users` or `staff` (see [`STOCK_NAMED_GROUPS`]), some
/// direct members of those too; direct memberships by index; nested rules:
///
/// - ng_staff  = INCLUDE ng_eng, INCLUDE ng_ops, EXCLUDE ng_contractors (+ direct)
/// - ng_all    = INCLUDE ng_staff, INCLUDE ng_hidden, EXCLUDE ng_interns
/// - ng_nocode = INCLUDE ng_interns
/// - ng_devs   = INCLUDE ng_eng, EXCLUDE ng_nocode
///
/// Entity 2 is locked; every fourth has a gecos, home and bash.
pub fn seed_directory(dir: &Directory, n: usize) {
    for (name, gid) in GROUPS
        .iter()
        .chain([&HIDDEN_GROUP])
        .chain(STOCK_NAMED_GROUPS)
    {
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
        for (group, _) in STOCK_NAMED_GROUPS {
            if in_stock_named_group(i, group) {
                groups.push(group);
            }
        }
        dir.set_entity_meta(&name, |m| {
            m.primary_group = Some(primary_group(i).0.to_owned());
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
/// a shells file and the cache folder. The local account files are the
/// host's own /etc/passwd and /etc/group (the defaults), never a synthetic
/// stand-in: an empty local group file once hid that every user of a
/// directory vanished on a stock host.
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
        Self::write_config_with_cache_dir(dir, core_and_tls, extra, &dir.join("cache"))
    }

    /// [`write_config`](Self::write_config) with another cache folder (a
    /// refresh run inside a test's mount namespace writes where the NSS
    /// module reads, `/var/lib/netauth`).
    pub fn write_config_with_cache_dir(
        dir: &Path,
        core_and_tls: &str,
        extra: &str,
        cache_dir: &Path,
    ) -> PathBuf {
        std::fs::write(dir.join("shells"), "/bin/sh\n/bin/bash\n").expect("shells");
        let d = dir.display();
        let c = cache_dir.display();
        let text = format!(
            "{core_and_tls}\n[unix]\ncache_dir = \"{c}\"\n\n[unix.refresh]\n\
             shells_file = \"{d}/shells\"\n{extra}\n"
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

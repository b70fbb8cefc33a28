//! End to end: the test server, `netauth-unix refresh --config` into a temp
//! cache folder, then real glibc NSS (`getent`, `id`) loading the freshly
//! built module in a private mount namespace, compared with what the
//! server's GroupMembers and EntityGroups answer.

#[path = "../../../netauth-unix/tests/refresh_support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use netauth_core::blocking::BlockingClient;
use netauth_core::config::Config;
use netauth_core::ClientBuilder;
use netauth_e2e::nss::{
    require_root, run_in_namespace, workspace_root, NsRun, NSSWITCH_FILES_THEN_NETAUTH,
};
use netauth_testserver::{generate_tls_identity, Options, TestServer};
use support::{seed_directory, user_name, RefreshEnv, GROUPS};

const USERS: usize = 60;

/// Builds the `netauth-unix` binary as it ships, in its own target folder
/// (the `cargo test` running us holds the workspace's build lock).
fn netauth_unix() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => workspace_root().join("target"),
        }
        .join("refresh-e2e");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "netauth-unix", "--target-dir"])
            .arg(&target)
            .current_dir(workspace_root())
            .status()
            .expect("run cargo build -p netauth-unix");
        assert!(status.success(), "cargo build -p netauth-unix failed");
        target.join("debug/netauth-unix")
    })
}

fn refresh(config: &Path) -> Output {
    Command::new(netauth_unix())
        .args(["refresh", "--config"])
        .arg(config)
        .output()
        .expect("run netauth-unix")
}

/// Runs `script` (sh) in the namespace with `cache` installed; returns stdout.
fn in_namespace(cache: &[u8], script: &str) -> String {
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_FILES_THEN_NETAUTH,
            cache: Some(cache),
            etc_group: None,
            files: &[("script.sh", script.as_bytes())],
        },
        "sh",
        &["{scratch}/script.sh"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Splits `== key` delimited output into key -> lines.
fn sections(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(key) = line.strip_prefix("== ") {
            current = key.to_owned();
            out.entry(current.clone()).or_default();
        } else {
            out.entry(current.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    out
}

/// What the server says, through the real client.
struct Truth {
    /// user -> expected passwd line
    passwd: BTreeMap<String, String>,
    /// user -> uid
    uids: BTreeMap<String, u32>,
    /// group -> effective members (served users only)
    members: BTreeMap<String, BTreeSet<String>>,
    /// user -> all gids `id -G` must show (primary + served effective groups)
    gids: BTreeMap<String, BTreeSet<u32>>,
}

fn truth(config: &Path) -> Truth {
    let client = BlockingClient::new(ClientBuilder::from_config(Config::load(config).unwrap()));
    let gid_of: BTreeMap<&str, u32> = GROUPS.iter().map(|(n, g)| (*n, *g as u32)).collect();
    let users: BTreeSet<String> = (0..USERS).map(user_name).collect();
    let mut t = Truth {
        passwd: BTreeMap::new(),
        uids: BTreeMap::new(),
        members: BTreeMap::new(),
        gids: BTreeMap::new(),
    };
    for name in &users {
        let e = client.entity_info(name).expect("EntityInfo");
        let uid = e.number.expect("number") as u32;
        let primary = gid_of[e.meta.primary_group.as_deref().expect("primary group")];
        let home = e
            .meta
            .home
            .clone()
            .unwrap_or_else(|| format!("/home/{name}"));
        let shell = match e.meta.shell.as_deref() {
            Some(s @ ("/bin/sh" | "/bin/bash")) => s.to_owned(),
            _ => "/bin/sh".to_owned(),
        };
        let gecos = e.meta.gecos.clone().unwrap_or_default();
        t.passwd.insert(
            name.clone(),
            format!("{name}:*:{uid}:{primary}:{gecos}:{home}:{shell}"),
        );
        t.uids.insert(name.clone(), uid);
        let mut gids: BTreeSet<u32> = client
            .entity_groups(name)
            .expect("EntityGroups")
            .iter()
            .filter_map(|g| gid_of.get(g.name.as_str()).copied())
            .collect();
        gids.insert(primary);
        t.gids.insert(name.clone(), gids);
    }
    for (group, _) in GROUPS {
        let members = client
            .group_members(group)
            .expect("GroupMembers")
            .into_iter()
            .map(|e| e.id)
            .filter(|id| users.contains(id))
            .collect();
        t.members.insert(group.to_string(), members);
    }
    t
}

fn check_nss_against_truth(cache: &[u8], t: &Truth) {
    let mut script = String::from("set -u\n");
    for (name, uid) in &t.uids {
        script += &format!(
            "echo '== pw {name}'; getent passwd {name}\necho '== pwid {name}'; getent passwd {uid}\n\
             echo '== id {name}'; id -G {name}\n"
        );
    }
    for (group, gid) in GROUPS {
        script += &format!(
            "echo '== gr {group}'; getent group {group}\necho '== grid {group}'; getent group {gid}\n"
        );
    }
    script += "echo '== all'; getent passwd\n";
    let out = sections(&in_namespace(cache, &script));

    for (name, line) in &t.passwd {
        assert_eq!(
            out[&format!("pw {name}")],
            vec![line.clone()],
            "getent passwd {name}"
        );
        assert_eq!(
            out[&format!("pwid {name}")],
            vec![line.clone()],
            "getent passwd by uid of {name}"
        );
        let ids: BTreeSet<u32> = out[&format!("id {name}")]
            .concat()
            .split_whitespace()
            .map(|g| g.parse().expect("numeric gid"))
            .collect();
        assert_eq!(&ids, &t.gids[name], "id -G {name}");
    }
    let mut nonempty = 0;
    for (group, gid) in GROUPS {
        for key in [format!("gr {group}"), format!("grid {group}")] {
            let lines = &out[&key];
            assert_eq!(lines.len(), 1, "{key}: {lines:?}");
            let fields: Vec<&str> = lines[0].split(':').collect();
            assert_eq!(fields[..3], [*group, "*", &gid.to_string()], "{key}");
            let members: BTreeSet<String> = fields[3]
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            assert_eq!(members, t.members[*group], "{key}");
        }
        if !t.members[*group].is_empty() {
            nonempty += 1;
        }
    }
    assert_eq!(nonempty, GROUPS.len() - 1, "the seed exercises every rule");

    // Enumeration (files first, then ours): each NetAuth user exactly once.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for line in &out["all"] {
        let name = line.split(':').next().unwrap_or_default();
        if t.passwd.contains_key(name) {
            *seen.entry(name.to_owned()).or_default() += 1;
            assert_eq!(line, &t.passwd[name]);
        }
    }
    assert_eq!(seen.len(), USERS);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");
}

#[test]
fn refresh_then_getent_and_id_match_the_server() {
    require_root();
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Default::default()
    });
    seed_directory(server.state(), USERS);
    let env = RefreshEnv::new(&server, "");

    let out = refresh(&env.config);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cache = std::fs::read(env.cache_path()).expect("the refresh wrote the cache");

    let t = truth(&env.config);
    // The rules are exercised: ng_all includes someone only through the
    // unserved ng_hidden, and ng_devs excludes an engineer who is an intern.
    assert!(t.members["ng_all"].contains(&user_name(17)));
    assert!(t.members["ng_eng"].contains(&user_name(33)));
    assert!(!t.members["ng_devs"].contains(&user_name(33)));
    check_nss_against_truth(&cache, &t);

    // The server goes away: the refresh fails, the cache stays byte for
    // byte, and lookups keep answering from it.
    drop(server);
    let out = refresh(&env.config);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let after = std::fs::read(env.cache_path()).unwrap();
    assert_eq!(after, cache);
    let name = user_name(5);
    let text = in_namespace(&after, &format!("getent passwd {name}\n"));
    assert_eq!(text.trim_end(), t.passwd[&name]);
}

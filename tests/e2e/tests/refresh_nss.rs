//! End to end: the test server, `netauth-unix refresh --config` into a temp
//! cache folder, then real glibc NSS (`getent`, `id`) loading the freshly
//! built module in a private mount namespace, compared with what the
//! server's GroupMembers and EntityGroups answer. The host's own
//! /etc/passwd and /etc/group stay in place (Debian's stock users and
//! groups), and the directories use `users` and `staff` as primary groups,
//! as most real ones do.

#[path = "../../../netauth-unix/tests/refresh_support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use netauth_core::blocking::BlockingClient;
use netauth_core::config::Config;
use netauth_core::ClientBuilder;
use netauth_e2e::nss::{
    netauth_unix_binary, run_in_namespace, sh_in_namespace, NsRun, NSSWITCH_FILES_THEN_NETAUTH,
};
use netauth_testserver::{generate_tls_identity, Options, TestServer};
use support::{
    require_stock_local_groups, seed_directory, seed_stock_directory, user_name, RefreshEnv,
    GROUPS, STOCK_NAMED_GROUPS,
};

const USERS: usize = 60;

/// The `netauth-unix` binary as it ships.
fn netauth_unix() -> &'static Path {
    netauth_unix_binary()
}

fn refresh(config: &Path) -> Output {
    Command::new(netauth_unix())
        .args(["refresh", "--config"])
        .arg(config)
        .output()
        .expect("run netauth-unix")
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
    // Served groups: supplementary groups are these only.
    let gid_of: BTreeMap<&str, u32> = GROUPS.iter().map(|(n, g)| (*n, *g as u32)).collect();
    // Primary groups: also users and staff, which a local group's name
    // keeps from being served; their users keep the NetAuth numbers.
    let primary_gid_of: BTreeMap<&str, u32> = GROUPS
        .iter()
        .chain(STOCK_NAMED_GROUPS)
        .map(|(n, g)| (*n, *g as u32))
        .collect();
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
        let primary = primary_gid_of[e.meta.primary_group.as_deref().expect("primary group")];
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
    let out = sections(&sh_in_namespace(cache, &script));

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
    if netauth_e2e::skip_without_root() {
        return;
    }
    require_stock_local_groups();
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
    let text = sh_in_namespace(&after, &format!("getent passwd {name}\n"));
    assert_eq!(text.trim_end(), t.passwd[&name]);
}

/// The directory most real ones look like, refreshed on a stock host: the
/// refresh itself runs in the namespace (so it reads the same /etc/group as
/// glibc, where one line names carol) and writes where the module reads.
#[test]
fn a_directory_using_stock_group_names_is_served_on_a_stock_host() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    require_stock_local_groups();
    let server = TestServer::start(Options {
        tls: Some(generate_tls_identity(&["localhost", "127.0.0.1"])),
        ..Default::default()
    });
    seed_stock_directory(server.state());
    let dir = tempfile::Builder::new()
        .prefix("netauth-stock-")
        .tempdir()
        .expect("temp dir");
    let cert = dir.path().join("tls.pem");
    std::fs::write(&cert, server.cert_pem().expect("TLS")).unwrap();
    let core = server.config_toml(Some(&cert));
    let config = |name: &str, extra: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        RefreshEnv::write_config_with_cache_dir(&sub, &core, extra, Path::new("/var/lib/netauth"))
    };
    let omit = config("omit", "");
    let rename = config("rename", "local_group_name_clash = \"rename\"");
    let bin = netauth_unix().display().to_string();
    let (omit, rename) = (omit.display(), rename.display());
    let script = format!(
        "set -u\n\
         echo '== refresh'; {bin} refresh --config {omit} 2>&1; echo \"exit=$?\"\n\
         echo '== pw'; getent passwd alice\n\
         echo '== id'; id alice\n\
         echo '== carol'; id -G carol\n\
         echo '== gid'; getent group 61100; echo \"exit=$?\"\n\
         echo '== users'; getent group users\n\
         echo '== staff'; getent group staff\n\
         echo '== status'; {bin} status --config {omit}\n\
         echo '== rename'; {bin} refresh --config {rename} 2>&1; echo \"exit=$?\"\n\
         echo '== renamed'; getent group netauth-users\n\
         echo '== id renamed'; id alice\n\
         echo '== users renamed'; getent group users\n"
    );
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_FILES_THEN_NETAUTH,
            cache: None,
            etc_group_extra: Some("na-admins:x:60999:carol\n"),
            files: &[("script.sh", script.as_bytes())],
        },
        "sh",
        &["{scratch}/script.sh"],
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sections(&text);
    let host_line = |name: &str| {
        std::fs::read_to_string("/etc/group")
            .unwrap()
            .lines()
            .find(|l| l.split(':').next() == Some(name))
            .unwrap()
            .to_owned()
    };

    let refresh = out["refresh"].join("\n");
    assert!(refresh.contains("exit=0"), "{text}");
    assert!(refresh.contains("3 users"), "{refresh}");
    assert!(
        refresh.contains("user \"carol\" is listed in the local group \"na-admins\""),
        "{refresh}"
    );
    // Served, with the NetAuth number of users as primary gid.
    assert_eq!(
        out["pw"],
        vec!["alice:*:61001:61100:Alice Anderson,,,:/home/alice:/bin/bash"]
    );
    // No name for 61100, and staff (NetAuth 61101) is not among alice's
    // groups, neither by number nor as the host's staff.
    assert_eq!(
        out["id"],
        vec!["uid=61001(alice) gid=61100 groups=61100,61102(nx-dev)"]
    );
    // glibc adds the local group whose line names carol.
    let carol: BTreeSet<&str> = out["carol"][0].split_whitespace().collect();
    assert_eq!(carol, BTreeSet::from(["61100", "60999"]));
    assert_eq!(out["gid"], vec!["exit=2"]);
    // By name, the host's own groups.
    assert_eq!(out["users"], vec![host_line("users")]);
    assert_eq!(out["staff"], vec![host_line("staff")]);

    let status = out["status"].join("\n");
    assert!(
        status.contains("name clashes: 2 NetAuth groups have the name of a local group: 2 left out, 0 renamed; 3 users lost a supplementary group"),
        "{status}"
    );
    assert!(
        status.contains("  left out:   group \"users\" (gid 61100): 2 users keep gid 61100"),
        "{status}"
    );
    assert!(
        status.contains("  member:     user \"carol\" of local group \"na-admins\""),
        "{status}"
    );

    // Renamed: the groups answer under the prefix, with their members.
    assert!(out["rename"].join("\n").contains("exit=0"), "{text}");
    assert_eq!(out["renamed"], vec!["netauth-users:*:61100:bob,carol"]);
    assert_eq!(
        out["id renamed"],
        vec![
            "uid=61001(alice) gid=61100(netauth-users) \
             groups=61100(netauth-users),61101(netauth-staff),61102(nx-dev)"
        ]
    );
    assert_eq!(out["users renamed"], vec![host_line("users")]);
}

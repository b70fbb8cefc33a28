//! Helpers of the NSS end-to-end tests: building the module, sample caches,
//! and running a program in a private mount namespace where glibc loads
//! `libnss_netauth.so.2` and finds a test cache at the fixed path.

use netauth_cache::{encode, CacheContent, UnixGroup, UnixUser};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// `files` first, as on a real host.
pub const NSSWITCH_FILES_THEN_NETAUTH: &str =
    "passwd: files netauth\ngroup: files netauth\nshadow: files\n";
/// Only our module, so that every lookup and every buffer size reaches it
/// (nss_files answers ERANGE for any long line of /etc/passwd).
pub const NSSWITCH_NETAUTH_ONLY: &str = "passwd: netauth\ngroup: netauth\n";

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// Builds the `netauth-unix` binary as it ships, in its own target folder
/// (the `cargo test` running us holds the workspace's build lock), once per
/// test binary, and returns its path.
pub fn netauth_unix_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = target_dir().join("refresh-e2e");
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

/// Builds `libnss_netauth.so` exactly as it ships (`cargo build -p
/// nss_netauth`, so netauth-core without its client feature) into its own
/// target folder, and returns a folder holding `libnss_netauth.so.2` for
/// `LD_LIBRARY_PATH`.
///
/// Building here (once per test binary) means a plain `cargo test
/// --workspace` from a clean checkout tests the current source, never a
/// stale library. The separate target folder avoids waiting on the lock of
/// the `cargo test` that runs us and keeps the workspace build's feature
/// set from leaking into the module.
pub fn nss_module_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_nss_module("nss-e2e", None))
}

/// The module as the `.rpm` ships it: built with `NETAUTH_UNWINDER=libgcc_s`
/// (the shared unwinder, for glibc 2.34), in a target folder of its own;
/// returns the folder holding `libnss_netauth.so.2`.
pub fn nss_module_dir_with_shared_unwinder() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_nss_module("nss-e2e-libgcc_s", Some("libgcc_s")))
}

fn build_nss_module(target_name: &str, unwinder: Option<&str>) -> PathBuf {
    let target = target_dir().join(target_name);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet", "-p", "nss_netauth", "--target-dir"])
        .arg(&target)
        .current_dir(workspace_root())
        .env_remove("NETAUTH_UNWINDER");
    if let Some(unwinder) = unwinder {
        build.env("NETAUTH_UNWINDER", unwinder);
    }
    let status = build.status().expect("run cargo build -p nss_netauth");
    assert!(status.success(), "cargo build -p nss_netauth failed");
    let library = target.join("debug/libnss_netauth.so");
    assert!(
        library.is_file(),
        "{} missing after the build",
        library.display()
    );
    let dir = target.join("nss-lib");
    std::fs::create_dir_all(&dir).expect("create the library folder");
    // Replace the link atomically: test binaries may run in parallel.
    let tmp = dir.join(format!(".link.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&library, &tmp).expect("symlink the module");
    std::fs::rename(&tmp, dir.join("libnss_netauth.so.2")).expect("install the symlink");
    dir
}

/// The e2e tests mount file systems in a private namespace: they need root
/// (CI runs as root). Each test first asks [`crate::skip_without_root`];
/// a helper reached without root anyway fails loudly rather than half-run.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the NSS end-to-end tests must run as root (they use mount namespaces)"
    );
}

/// What a command run in the namespace sees.
pub struct NsRun<'a> {
    pub nsswitch: &'a str,
    /// Installed as /var/lib/netauth/nss.cache (mode 0644) when given.
    pub cache: Option<&'a [u8]>,
    /// Lines appended to a copy of the host's own /etc/group, bind-mounted
    /// over it in the namespace (a local group line naming a NetAuth user).
    /// The host's accounts and groups stay visible either way: tests never
    /// replace them with a synthetic file (a real host is not empty), and
    /// the host's file itself is never written.
    pub etc_group_extra: Option<&'a str>,
    /// Extra files placed in the scratch folder, passed to the program by
    /// path via `{scratch}` in its arguments.
    pub files: &'a [(&'a str, &'a [u8])],
}

/// Runs `program args...` in a private mount namespace where
/// /etc/nsswitch.conf is `run.nsswitch`, /var/lib is an empty tmpfs holding
/// only the test cache, nscd's socket is hidden, and `LD_LIBRARY_PATH`
/// finds the freshly built module. `{scratch}` in an argument is replaced
/// by a folder with `run.files` in it.
pub fn run_in_namespace(run: &NsRun<'_>, program: &str, args: &[&str]) -> Output {
    require_root();
    let module_dir = nss_module_dir();
    let scratch = tempfile::Builder::new()
        .prefix("netauth-e2e-")
        .tempdir()
        .expect("scratch folder");
    let nsswitch = scratch.path().join("nsswitch.conf");
    std::fs::write(&nsswitch, run.nsswitch).expect("write nsswitch.conf");
    let cache = scratch.path().join("nss.cache");
    if let Some(bytes) = run.cache {
        std::fs::write(&cache, bytes).expect("write the cache");
    }
    let etc_group = scratch.path().join("group");
    if let Some(extra) = run.etc_group_extra {
        let mut text = std::fs::read_to_string("/etc/group").expect("read /etc/group");
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(extra);
        std::fs::write(&etc_group, text).expect("write the copy of /etc/group");
    }
    for (name, bytes) in run.files {
        std::fs::write(scratch.path().join(name), bytes).expect("write a scratch file");
    }
    let script = r#"set -eu
mount -t tmpfs -o mode=0755 netauth-e2e /var/lib
mkdir -p /var/lib/netauth
chmod 0755 /var/lib/netauth
if [ -n "$NA_E2E_CACHE" ]; then
  cp "$NA_E2E_CACHE" /var/lib/netauth/nss.cache
  chmod 0644 /var/lib/netauth/nss.cache
fi
mount --bind "$NA_E2E_NSSWITCH" /etc/nsswitch.conf
if [ -n "$NA_E2E_GROUP" ]; then mount --bind "$NA_E2E_GROUP" /etc/group; fi
if [ -d /run/nscd ]; then mount -t tmpfs netauth-e2e /run/nscd; fi
unset NA_E2E_CACHE NA_E2E_NSSWITCH NA_E2E_GROUP
exec "$@"
"#;
    let scratch_str = scratch.path().to_str().expect("UTF-8 temp path");
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{scratch}", scratch_str))
        .collect();
    Command::new("unshare")
        .args([
            "-m",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            program,
        ])
        .args(&args)
        .env("LD_LIBRARY_PATH", module_dir)
        .env("NA_E2E_NSSWITCH", &nsswitch)
        .env(
            "NA_E2E_GROUP",
            if run.etc_group_extra.is_some() {
                etc_group.as_os_str()
            } else {
                "".as_ref()
            },
        )
        .env(
            "NA_E2E_CACHE",
            if run.cache.is_some() {
                cache.as_os_str()
            } else {
                "".as_ref()
            },
        )
        .output()
        .expect("run unshare")
}

/// Runs `script` with `sh` in a namespace where NSS reads `files`, then
/// netauth from `cache`; fails the test unless it exits 0; returns stdout.
pub fn sh_in_namespace(cache: &[u8], script: &str) -> String {
    let out = run_in_namespace(
        &NsRun {
            nsswitch: NSSWITCH_FILES_THEN_NETAUTH,
            cache: Some(cache),
            etc_group_extra: None,
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

pub fn user(name: &str, uid: u32, gid: u32, gecos: &str) -> UnixUser {
    UnixUser {
        name: name.to_owned(),
        uid,
        gid,
        gecos: gecos.to_owned(),
        home: format!("/home/{name}"),
        shell: "/bin/bash".to_owned(),
        locked: false,
    }
}

fn group(name: &str, gid: u32, members: &[&str]) -> UnixGroup {
    UnixGroup {
        name: name.to_owned(),
        gid,
        members: members.iter().map(|m| (*m).to_owned()).collect(),
    }
}

/// Each user's groups as the members lists say (what the refresh computes).
pub fn user_groups_from_members(
    users: &[UnixUser],
    groups: &[UnixGroup],
) -> BTreeMap<String, Vec<u32>> {
    let mut out = BTreeMap::new();
    for u in users {
        let gids: Vec<u32> = groups
            .iter()
            .filter(|g| g.members.contains(&u.name))
            .map(|g| g.gid)
            .collect();
        if !gids.is_empty() {
            out.insert(u.name.clone(), gids);
        }
    }
    out
}

/// Primary gids of [`sample_content`] that no group names: the NetAuth
/// groups `users` and `staff`, which the host's /etc/group has, as a refresh
/// leaves them (`local_group_name_clash = "omit"`).
pub const UNNAMED_PRIMARY_GIDS: [u32; 2] = [71100, 71101];

/// A small directory, as a refresh would leave it on a stock host: `na_all`
/// is the effective result of INCLUDE na_staff, INCLUDE na_admins, EXCLUDE
/// na_bob; na_erin and na_frank have `users` and `staff` as primary groups,
/// which are not served (a local group has each name), so their gids have
/// no name. Other names and ids are chosen not to clash with a host's /etc
/// files.
pub fn sample_content() -> CacheContent {
    let mut users = vec![
        user("na_alice", 70001, 71001, "Alice Example,Room 1"),
        user("na_bob", 70002, 71001, "Bob"),
        user("na_carol", 70003, 71002, "Carol"),
        user("na_dave", 70004, 71003, ""),
        user("na_erin", 70005, UNNAMED_PRIMARY_GIDS[0], "Erin"),
        user("na_frank", 70006, UNNAMED_PRIMARY_GIDS[1], "Frank"),
    ];
    users[2].locked = true;
    users[3].shell = "/bin/sh".to_owned();
    let groups = vec![
        group("na_staff", 71001, &["na_alice", "na_bob"]),
        group("na_admins", 71002, &["na_carol"]),
        group("na_devs", 71003, &["na_alice", "na_dave", "na_erin"]),
        group("na_all", 71004, &["na_alice", "na_carol"]),
        group("na_empty", 71005, &[]),
    ];
    let user_groups = user_groups_from_members(&users, &groups);
    CacheContent {
        users,
        groups,
        user_groups,
        user_keys: Default::default(),
        generated_at: 1_750_000_000,
        source: "netauth.test".to_owned(),
    }
}

/// Recomputes every checksum of a cache file (the block CRCs, then the
/// header CRC), as a hostile writer would after changing bytes: the reader
/// must then refuse the entry on its contents alone.
pub fn reseal(bytes: &mut [u8]) {
    netauth_cache::crafting::reseal(bytes);
}

pub fn encode_content(content: &CacheContent) -> Vec<u8> {
    encode(content).expect("encode the test cache")
}

/// `getent passwd` line of a user (nss_netauth serves `*` as the password).
pub fn passwd_line(u: &UnixUser) -> String {
    format!(
        "{}:*:{}:{}:{}:{}:{}",
        u.name, u.uid, u.gid, u.gecos, u.home, u.shell
    )
}

/// `getent group` line of a group.
pub fn group_line(g: &UnixGroup) -> String {
    format!("{}:*:{}:{}", g.name, g.gid, g.members.join(","))
}

/// A generated directory of users `first..first + count` whose gecos and
/// group memberships carry `tag`, so two versions differ in every entry
/// they share.
pub fn generated_content(first: u32, count: u32, tag: &str) -> CacheContent {
    let users: Vec<UnixUser> = (first..first + count)
        .map(|i| {
            user(
                &format!("na_u{i}"),
                80_000 + i,
                81_000 + i % 10,
                &format!("{tag} user {i}"),
            )
        })
        .collect();
    let salt: u32 = tag.bytes().map(u32::from).sum();
    let groups: Vec<UnixGroup> = (0..10u32)
        .map(|g| UnixGroup {
            name: format!("na_g{g}"),
            gid: 81_000 + g,
            members: users
                .iter()
                .filter(|u| (u.uid + salt).is_multiple_of(g + 2))
                .map(|u| u.name.clone())
                .collect(),
        })
        .collect();
    let user_groups = user_groups_from_members(&users, &groups);
    CacheContent {
        users,
        groups,
        user_groups,
        user_keys: Default::default(),
        generated_at: 1_750_000_000,
        source: format!("netauth.test/{tag}"),
    }
}

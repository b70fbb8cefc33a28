//! The crate graph enforces the architecture: the NSS module, which glibc
//! loads into every process of the host, links nothing that can talk to the
//! network. (The symbols of the release module are checked after the
//! package build, in `package_install.rs`.)

use std::path::PathBuf;
use std::process::Command;

/// Crates that must never reach a process through `libnss_netauth.so.2`.
pub const NETWORK_CRATES: &[&str] = &[
    "tokio",
    "tonic",
    "hyper",
    "hyper-util",
    "h2",
    "rustls",
    "tokio-rustls",
    "prost",
    "netauth-proto",
    "netauth-core",
    "ring",
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The crate names of `cargo tree -p PACKAGE -e normal`.
fn normal_dependencies(package: &str) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "-p",
            package,
        ])
        .current_dir(workspace_root())
        .output()
        .expect("run cargo tree");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

#[test]
fn nss_module_and_cache_have_no_network_crate() {
    for package in ["nss_netauth", "netauth-cache"] {
        let deps = normal_dependencies(package);
        assert!(deps.iter().any(|d| d == package), "{package}: {deps:?}");
        let network: Vec<&String> = deps
            .iter()
            .filter(|d| NETWORK_CRATES.contains(&d.as_str()))
            .collect();
        assert!(network.is_empty(), "{package} depends on {network:?}");
    }
}

#[test]
fn the_check_would_see_a_network_crate() {
    // The PAM module does talk to the server: the same listing must show it,
    // or the test above proves nothing.
    let deps = normal_dependencies("pam_netauth");
    for expected in ["tokio", "tonic", "rustls", "netauth-core", "netauth-cache"] {
        assert!(
            deps.iter().any(|d| d == expected),
            "pam_netauth: no {expected}"
        );
    }
}

#[test]
fn nss_module_depends_on_the_cache_alone_among_our_crates() {
    let ours: Vec<String> = normal_dependencies("nss_netauth")
        .into_iter()
        .filter(|d| d.starts_with("netauth") || d.ends_with("_netauth"))
        .collect();
    assert_eq!(ours, ["nss_netauth", "netauth-cache"]);
}

/// The workspace's member folders, as the root `Cargo.toml` lists them.
fn workspace_members() -> Vec<String> {
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let list = manifest
        .split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("a members list in the root Cargo.toml");
    list.split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

/// Members that end up in a package (the test crates never do).
fn shipped_members() -> Vec<String> {
    workspace_members()
        .into_iter()
        .filter(|m| !m.starts_with("tests/"))
        .collect()
}

#[test]
fn every_shipped_crate_takes_the_workspace_lints() {
    // Without `[lints] workspace = true` a crate silently loses the deny
    // list (unwrap, expect, panic, indexing, undocumented unsafe) and clippy
    // stays green.
    let shipped = shipped_members();
    for crate_name in [
        "netauth-cache",
        "nss_netauth",
        "pam_netauth",
        "netauth-core",
    ] {
        assert!(shipped.iter().any(|m| m == crate_name), "{shipped:?}");
    }
    for member in shipped {
        let manifest =
            std::fs::read_to_string(workspace_root().join(&member).join("Cargo.toml")).unwrap();
        let lints = manifest
            .split_once("\n[lints]\n")
            .map(|(_, rest)| rest.lines().next().unwrap_or(""));
        assert_eq!(
            lints,
            Some("workspace = true"),
            "{member}/Cargo.toml: no `[lints] workspace = true`"
        );
    }
}

#[test]
fn the_readme_parts_table_names_every_crate_and_says_where_to_change_what() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for member in workspace_members() {
        assert!(
            readme.contains(&format!("| `{member}/` |")),
            "README.md: no row for {member}/ in the parts table"
        );
    }
    let where_to = readme
        .split_once("**Where to change what.**")
        .map(|(_, rest)| rest.split("\n\n").next().unwrap_or(""))
        .expect("README.md: a \"Where to change what\" paragraph");
    for crate_dir in shipped_members() {
        assert!(
            where_to.contains(crate_dir.as_str()),
            "README.md: \"Where to change what\" does not name {crate_dir}"
        );
    }
}

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

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

/// Shipped functions longer than [`MAX_FUNCTION_LINES`] that are known and
/// not yet split (file, function). Shrink this list; never grow it.
const LONG_FUNCTIONS_TO_SPLIT: &[(&str, &str)] = &[
    // One arm per notice: a long match, each arm one sentence.
    ("netauth-unix/src/refresh/build.rs", "fmt"),
    ("netauth-unix/src/refresh/build.rs", "map_users"),
    (
        "netauth-unix/src/refresh/snapshot_fetch.rs",
        "refresh_from_snapshot",
    ),
    ("netauth-unix/src/refresh/snapshot_fetch.rs", "fetch"),
];

const MAX_FUNCTION_LINES: usize = 80;

/// `(file, function, lines)` of every function in `dir` longer than
/// [`MAX_FUNCTION_LINES`], test code left out. Relies on rustfmt's layout
/// (CI checks it): a function ends at the first line that is its own
/// indentation followed by `}`.
fn long_functions(dir: &std::path::Path, found: &mut Vec<(String, String, usize)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            long_functions(&path, found);
            continue;
        }
        if !name.ends_with(".rs") || name == "tests.rs" || name.ends_with("_tests.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .take_while(|l| !l.starts_with("#[cfg(test)]"))
            .collect();
        for (at, line) in lines.iter().enumerate() {
            let code = line.trim_start();
            let indent = &line[..line.len() - code.len()];
            let Some(fn_at) = code.find("fn ") else {
                continue;
            };
            let before = &code[..fn_at];
            let is_header = before.split_whitespace().all(|w| {
                [
                    "pub",
                    "pub(crate)",
                    "const",
                    "async",
                    "unsafe",
                    "extern",
                    "\"C\"",
                ]
                .contains(&w)
                    || w.starts_with("pub(")
            });
            if !is_header || code.ends_with(';') {
                continue;
            }
            let fn_name: String = code[fn_at + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let closing = format!("{indent}}}");
            if let Some(len) = lines[at..].iter().position(|l| *l == closing) {
                if len + 1 > MAX_FUNCTION_LINES {
                    let file = path
                        .strip_prefix(workspace_root())
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .replace("tests/e2e/../../", "");
                    found.push((file, fn_name, len + 1));
                }
            }
        }
    }
}

#[test]
fn no_new_shipped_function_is_longer_than_80_lines() {
    let mut found = Vec::new();
    for member in shipped_members() {
        long_functions(&workspace_root().join(&member).join("src"), &mut found);
    }
    let new: Vec<&(String, String, usize)> = found
        .iter()
        .filter(|(file, name, _)| {
            !LONG_FUNCTIONS_TO_SPLIT
                .iter()
                .any(|(f, n)| file.ends_with(f) && name == n)
        })
        .collect();
    assert!(
        new.is_empty(),
        "split these into named steps (functions over {MAX_FUNCTION_LINES} lines): {new:?}"
    );
    // A split function leaves the list, so the list cannot hide a new one.
    for (file, name) in LONG_FUNCTIONS_TO_SPLIT {
        assert!(
            found.iter().any(|(f, n, _)| f.ends_with(file) && n == name),
            "{file}: {name} is no longer over {MAX_FUNCTION_LINES} lines: remove it from LONG_FUNCTIONS_TO_SPLIT"
        );
    }
}

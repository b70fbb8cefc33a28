//! What the documents promise and the tree holds must agree where a reader
//! acts on it: the Rust version to install, and the one way the cache may
//! be replaced.

use std::path::PathBuf;

fn read(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// The text after `heading` up to the next line starting with `next`.
fn section<'a>(text: &'a str, heading: &str, next: &str) -> &'a str {
    let (_, rest) = text
        .split_once(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    rest.split(next).next().unwrap_or(rest)
}

#[test]
fn the_rust_version_of_the_manifest_is_the_one_the_docs_ask_for() {
    // The build needs what the newest dependency needs (tonic: 1.88); an
    // older `rust-version` lets cargo start a build that fails halfway.
    let manifest = read("Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("rust-version in the workspace manifest");
    let wanted = format!("Rust {version} or newer");
    let readme = read("README.md");
    let install = section(&readme, "\n## Install\n", "\n## ");
    assert!(
        install.contains(&wanted),
        "README's Install: not {wanted:?}"
    );
    assert!(
        read("scripts/setup.sh").contains(&wanted),
        "scripts/setup.sh: not {wanted:?}"
    );
    for (file, text) in [
        ("README.md", &readme),
        ("scripts/setup.sh", &read("scripts/setup.sh")),
    ] {
        for other in text.match_indices("Rust 1.").map(|(at, _)| &text[at..]) {
            assert!(
                other.starts_with(&format!("Rust {version}")),
                "{file}: {:?} is not the manifest's {version}",
                other.lines().next().unwrap_or("")
            );
        }
    }
}

#[test]
fn the_admin_docs_say_only_atomic_replacement_of_the_cache_is_supported() {
    // Every process maps the cache: writing into it in place crashes
    // enumerating processes with SIGBUS. Both places an admin looks say so.
    let readme = read("README.md");
    let admin = section(&readme, "\n## Administration\n", "\n## ");
    let manual = read("packaging/common/netauth-unix.8");
    let replacing = section(&manual, "\n.SH REPLACING THE CACHE\n", "\n.SH ");
    for (place, text) in [
        ("README's Administration", admin),
        ("netauth-unix(8)", replacing),
    ] {
        // One line of words, without the README's blockquote markers.
        let flat = text
            .split_whitespace()
            .filter(|w| *w != ">")
            .collect::<Vec<_>>()
            .join(" ");
        for needle in ["in place", "SIGBUS", "Only atomic replacement is supported"] {
            assert!(flat.contains(needle), "{place}: no {needle:?}");
        }
        assert!(flat.contains("mv"), "{place}: no hand-install recipe (mv)");
    }
}

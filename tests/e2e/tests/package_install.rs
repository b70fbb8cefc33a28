//! The packages install like a real system component: builds the .deb and
//! .rpm with `packaging/build.sh`, then runs `packaging/test-install.sh`,
//! which installs the .deb into an overlay of the host's root inside a
//! private mount namespace (never the host itself), refreshes against the
//! test server, resolves and logs in NetAuth users through the installed
//! nsswitch.conf and pam-auth-update profile, removes and purges the package
//! and diffs /etc/nsswitch.conf and /etc/pam.d against the copies taken
//! before; and checks the .rpm's file list and scriptlets.
//!
//! Needs root (as CI runs), pamtester and rpm; the first run also installs
//! cargo-deb and cargo-generate-rpm and makes a release build.

use std::path::PathBuf;
use std::process::Command;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

fn run(script: &str) -> (bool, String) {
    let output = Command::new("bash")
        .arg(script)
        .current_dir(workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn deb_installs_works_and_uninstalls_cleanly_and_rpm_is_well_formed() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let (built, log) = run("packaging/build.sh");
    assert!(built, "packaging/build.sh failed:\n{log}");
    nss_module_holds_no_network_code();

    let (passed, log) = run("packaging/test-install.sh");
    println!("{log}");
    let summary = log
        .lines()
        .rev()
        .find(|l| l.starts_with("package install test:"))
        .unwrap_or("no summary line");
    let failures: Vec<&str> = log.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(
        passed && failures.is_empty(),
        "{summary}\n{}\n(full output above)",
        failures.join("\n")
    );
    // The script must really have checked things, not stopped early.
    assert!(
        summary.contains(" 0 failed") && !summary.contains(": 0 passed"),
        "{summary}"
    );
}

/// The release NSS module that the package build made, in the same cargo
/// call as the PAM module and the admin command (so with every feature
/// those turn on), holds no code of a network crate: no symbol of one, and
/// no panic location in one's sources. The unstripped build output is
/// checked, not the stripped copy that is packaged.
fn nss_module_holds_no_network_code() {
    let module = workspace_root().join("target/release/libnss_netauth.so");
    let nm = Command::new("nm")
        .args(["--demangle", "--defined-only"])
        .arg(&module)
        .output()
        .expect("run nm");
    assert!(nm.status.success(), "nm {}", module.display());
    let symbols = String::from_utf8_lossy(&nm.stdout);
    let bytes = std::fs::read(&module).unwrap_or_else(|e| panic!("{}: {e}", module.display()));
    let text = String::from_utf8_lossy(&bytes);
    for name in [
        "tokio",
        "tonic",
        "hyper",
        "h2",
        "rustls",
        "prost",
        "ring",
        "netauth_core",
    ] {
        let in_symbol = symbols
            .lines()
            .find(|l| l.contains(&format!(" {name}::")) || l.contains(&format!("<{name}::")));
        assert!(
            in_symbol.is_none(),
            "{} holds {in_symbol:?}",
            module.display()
        );
        // A panic location names the source file: `.../<name>-<version>/src/...`.
        let source = format!("/{}-", name.replace('_', "-"));
        let in_path = text
            .match_indices(&source)
            .any(|(at, _)| text[at + source.len()..].starts_with(|c: char| c.is_ascii_digit()));
        assert!(
            !in_path,
            "{} holds a source path of {name}",
            module.display()
        );
    }
    // The same scan does see our own code.
    assert!(
        symbols.contains("netauth_cache::"),
        "no netauth_cache symbol in {}",
        module.display()
    );
}

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
    let (built, log) = run("packaging/build.sh");
    assert!(built, "packaging/build.sh failed:\n{log}");

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

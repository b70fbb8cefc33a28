//! The commands of `packaging/rpm/README.authselect`, run as written on
//! authselect profile files of the shapes RHEL and Fedora ship: the sssd
//! profile (its own source before `files`, pam_unix skipped for non-local
//! users, `pam_pwquality local_users_only`), the local profile (group
//! merging: `files [SUCCESS=merge]`) and RHEL 8's minimal profile. CI runs
//! on Debian, where authselect itself is not packaged, so what the commands
//! make of those files is checked here as text.

use std::path::Path;
use std::process::Command;

fn guide() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../packaging/rpm/README.authselect");
    std::fs::read_to_string(path).unwrap()
}

/// The guide's NSS command (one line).
fn nsswitch_command(guide: &str) -> String {
    let line = guide
        .lines()
        .find(|l| l.trim_start().starts_with("sed ") && l.trim_end().ends_with(" nsswitch.conf"))
        .expect("the nsswitch.conf command in README.authselect");
    line.trim().to_owned()
}

/// The guide's PAM loop, from `for f in` to its `done`, dedented.
fn pam_loop(guide: &str) -> String {
    let lines: Vec<&str> = guide.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.trim() == "for f in system-auth password-auth; do")
        .expect("the PAM loop in README.authselect");
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.trim() == "done")
            .expect("the end of the PAM loop");
    lines[start..=end]
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run_in(dir: &Path, script: &str) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A custom profile folder holding `files` (name, text).
fn profile(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap()
}

fn line_of<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(start)).collect()
}

#[test]
fn nsswitch_command_puts_netauth_after_files_and_its_action_once() {
    let command = nsswitch_command(&guide());
    let cases = [
        // sssd: SSSD's source first, so SSSD wins a name both serve.
        (
            "passwd:     sss files {if \"with-altfiles\":altfiles }systemd   {exclude if \"with-custom-passwd\"}\n\
             group:      sss files {if \"with-altfiles\":altfiles }systemd   {exclude if \"with-custom-group\"}\n\
             shadow:     files sss\n",
            vec![
                "passwd:     sss files netauth {if \"with-altfiles\":altfiles }systemd   {exclude if \"with-custom-passwd\"}",
                "group:      sss files netauth {if \"with-altfiles\":altfiles }systemd   {exclude if \"with-custom-group\"}",
                "shadow:     files sss",
            ],
        ),
        // local, with group merging: the action stays with files.
        (
            "passwd:     files {if \"with-altfiles\":altfiles }systemd\n\
             group:      files {if \"with-altfiles\":altfiles }systemd {exclude if \"with-group-merging\"}\n\
             group:      files [SUCCESS=merge] {if \"with-altfiles\":altfiles [SUCCESS=merge] }systemd [SUCCESS=merge] {include if \"with-group-merging\"}\n",
            vec![
                "passwd:     files netauth {if \"with-altfiles\":altfiles }systemd",
                "group:      files netauth {if \"with-altfiles\":altfiles }systemd {exclude if \"with-group-merging\"}",
                "group:      files [SUCCESS=merge] netauth {if \"with-altfiles\":altfiles [SUCCESS=merge] }systemd [SUCCESS=merge] {include if \"with-group-merging\"}",
            ],
        ),
        // RHEL 8 minimal: files alone at the end of the line.
        (
            "passwd:     files\ngroup:      files\nhosts:      files dns\n",
            vec!["passwd:     files netauth", "group:      files netauth", "hosts:      files dns"],
        ),
    ];
    for (input, wanted) in cases {
        let dir = profile(&[("nsswitch.conf", input)]);
        run_in(dir.path(), &command);
        let once = read(dir.path(), "nsswitch.conf");
        assert_eq!(once.lines().collect::<Vec<_>>(), wanted, "{input}");
        // Run again (an admin repeating the step): nothing changes.
        run_in(dir.path(), &command);
        assert_eq!(read(dir.path(), "nsswitch.conf"), once);
    }
}

const SSSD_STACK: &str = "\
auth        required                                     pam_env.so
auth        required                                     pam_faildelay.so delay=2000000
auth        [default=1 ignore=ignore success=ok]         pam_usertype.so isregular
auth        [default=1 ignore=ignore success=ok]         pam_localuser.so
auth        sufficient                                   pam_unix.so {if not \"without-nullok\":nullok}
auth        [default=1 ignore=ignore success=ok]         pam_usertype.so isregular
auth        sufficient                                   pam_sss.so forward_pass
auth        required                                     pam_deny.so

account     required                                     pam_unix.so
account     sufficient                                   pam_localuser.so
account     sufficient                                   pam_usertype.so issystem
account     [default=bad success=ok user_unknown=ignore] pam_sss.so
account     required                                     pam_permit.so

password    requisite                                    pam_pwquality.so local_users_only
password    sufficient                                   pam_unix.so sha512 shadow {if not \"without-nullok\":nullok} use_authtok
password    sufficient                                   pam_sss.so use_authtok
password    required                                     pam_deny.so

session     optional                                     pam_keyinit.so revoke
session     required                                     pam_limits.so
session     required                                     pam_unix.so
session     optional                                     pam_sss.so
";

const LOCAL_STACK: &str = "\
auth        required                                     pam_env.so
auth        required                                     pam_faildelay.so delay=2000000
auth        sufficient                                   pam_unix.so {if not \"without-nullok\":nullok}
auth        required                                     pam_deny.so

account     required                                     pam_unix.so

password    requisite                                    pam_pwquality.so
password    sufficient                                   pam_unix.so yescrypt shadow {if not \"without-nullok\":nullok} use_authtok
password    required                                     pam_deny.so

session     optional                                     pam_keyinit.so revoke
session     required                                     pam_limits.so
session     optional                                     pam_oddjob_mkhomedir.so                               {include if \"with-mkhomedir\"}
session     required                                     pam_unix.so
";

/// The line right after the first line of `stack` matching `anchor`.
fn after<'a>(stack: &'a str, anchor: &str) -> Vec<&'a str> {
    let lines: Vec<&str> = stack.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(anchor))
        .unwrap_or_else(|| panic!("{anchor} in\n{stack}"));
    lines[at + 1..].iter().take(2).copied().collect()
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

#[test]
fn pam_loop_adds_netauth_after_pam_unix_with_the_right_password_source() {
    let script = pam_loop(&guide());
    for (stack, auth_source) in [
        (SSSD_STACK, "try_first_pass"),
        (LOCAL_STACK, "use_first_pass"),
    ] {
        let dir = profile(&[("system-auth", stack), ("password-auth", stack)]);
        run_in(dir.path(), &script);
        for file in ["system-auth", "password-auth"] {
            let out = read(dir.path(), file);
            assert_eq!(out.matches("pam_netauth.so").count(), 4, "{out}");
            // auth: right after pam_unix; the password it read is reused
            // where pam_unix ran for everyone, asked for where it did not.
            let next = after(
                &out,
                "auth        sufficient                                   pam_unix.so",
            );
            assert_eq!(
                words(next[0]),
                ["auth", "sufficient", "pam_netauth.so", auth_source],
                "{out}"
            );
            // account: local users skip pam_netauth; its errors deny.
            let next = after(
                &out,
                "account     required                                     pam_unix.so",
            );
            assert_eq!(
                words(next[0]),
                [
                    "account",
                    "[success=1",
                    "default=ignore]",
                    "pam_localuser.so"
                ]
            );
            assert_eq!(
                words(next[1]),
                [
                    "account",
                    "[success=ok",
                    "ignore=ignore",
                    "user_unknown=ignore",
                    "default=bad]",
                    "pam_netauth.so",
                    "ignore_unknown_user"
                ]
            );
            // password: takes what pam_pwquality read, or asks itself when
            // pwquality skips non-local users (local_users_only).
            let next = after(
                &out,
                "password    sufficient                                   pam_unix.so",
            );
            assert_eq!(
                words(next[0]),
                ["password", "sufficient", "pam_netauth.so", "try_first_pass"]
            );
            assert!(
                !line_of(&out, "password")
                    .iter()
                    .any(|l| l.contains("pam_netauth.so use_authtok")),
                "use_authtok would fail where pam_pwquality read nothing: {out}"
            );
            let next = after(
                &out,
                "session     required                                     pam_unix.so",
            );
            assert_eq!(words(next[0]), ["session", "optional", "pam_netauth.so"]);
            // The sssd module's lines are untouched and still follow ours.
            if stack == SSSD_STACK {
                for module in [
                    "pam_sss.so forward_pass",
                    "pam_sss.so use_authtok",
                    "pam_localuser.so\n",
                ] {
                    assert!(out.contains(module), "{module} kept: {out}");
                }
            }
        }
    }
}

#[test]
fn guide_names_the_full_select_command_and_the_bases_without_authselect() {
    let guide = guide();
    assert!(guide.contains("authselect select custom/netauth with-mkhomedir"));
    assert!(guide.contains("No existing configuration detected"));
    assert!(guide.contains("--force"));
    assert!(guide.contains("`minimal` (RHEL 8"));
    assert!(guide.contains("install -D -m 0644 server-cert.pem /etc/netauth/keys/tls.pem"));
}

//! pam_netauth inside the host process: what loading it asks of the
//! process, threads, fork, and what reaches syslog. Uses the pam_driver
//! program (src/bin/pam_driver.rs) over real libpam, in the same sandbox
//! as the other PAM tests.

mod pam_support;

use netauth_e2e::elf::{exported, needed, newest_glibc_needed};
use pam_support::*;

/// GCC's unwinder (libgcc_eh) is linked in, so that a C program (`login`,
/// `su`, `sshd`), which has no libgcc_s loaded, does not search for, map
/// and relocate it when libpam loads the module. That libgcc_eh calls
/// `_dl_find_object`: the module needs glibc 2.35. (The `.rpm`'s build,
/// which keeps libgcc_s for RHEL 9's 2.34, is checked by
/// packaging/test-install.sh.)
#[test]
fn the_module_depends_on_libpam_and_libc_alone_and_needs_glibc_2_35_at_most() {
    let module = built_module();
    assert_eq!(
        needed(module),
        ["libpam.so.0", "libc.so.6", "ld-linux-x86-64.so.2"]
    );
    let newest = newest_glibc_needed(module);
    assert!(newest <= 35, "the module needs GLIBC_2.{newest}");
}

/// Only the six PAM entry points: the linked-in unwinder's symbols, like
/// everything else of the module, stay local.
#[test]
fn the_module_exports_exactly_the_pam_entry_points() {
    assert_eq!(
        exported(built_module()),
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred",
        ]
    );
}

/// `threads <phase> before=N after=M` from the driver.
fn thread_counts(output: &str, phase: &str) -> (usize, usize) {
    let line = output
        .lines()
        .find(|l| l.starts_with(&format!("threads {phase} ")))
        .unwrap_or_else(|| panic!("no {phase} thread line in {output}"));
    let number = |key: &str| -> usize {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line}"))
    };
    (number("before="), number("after="))
}

/// Authenticate, fork, authenticate again in the child (as OpenSSH does);
/// after pam_end the thread count is what it was before pam_start, in the
/// parent and in the child.
#[test]
fn fork_after_use_and_no_thread_left_behind() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    let run = env.driver(&[
        "--op", "auth", "--op", "acct", "--answer", "alice-pw", "--fork", "na", "alice",
    ]);
    assert!(run.success, "{}", run.text());
    let out = &run.stdout;
    assert_eq!(out.matches("result auth 0 ").count(), 2, "{out}");
    assert_eq!(out.matches("result acct 0 ").count(), 2, "{out}");
    assert!(out.contains("child exit ok=true"), "{out}");
    for phase in ["parent", "child"] {
        let (before, after) = thread_counts(out, phase);
        assert_eq!(before, after, "{phase}: {out}");
        assert_eq!(before, 1, "{phase}: the driver is single-threaded: {out}");
    }
}

/// With a host name in `core.server` the look-up runs on Tokio's blocking
/// pool; that thread must be gone after the call too.
#[test]
fn no_thread_left_after_a_name_lookup() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.write_config(
        &config_for(world.server.port(), &world.cert, "")
            .replace("server = \"127.0.0.1\"", "server = \"localhost\""),
    );
    env.service("na", NETAUTH_ONLY);
    let run = env.driver(&["--answer", "alice-pw", "--fork", "na", "alice"]);
    assert!(run.success, "{}", run.text());
    for phase in ["parent", "child"] {
        let (before, after) = thread_counts(&run.stdout, phase);
        assert_eq!((before, after), (1, 1), "{phase}: {}", run.text());
    }
}

/// Failure paths (timeouts, refused connections) leave no thread either.
#[test]
fn no_thread_left_after_failures() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    let hole = netauth_testserver::BlackHole::start();
    env.write_config(&config_for(
        hole.addr().port(),
        &world.cert,
        "[unix.pam]\nconnect_timeout_ms = 300\nrequest_timeout_ms = 300\n",
    ));
    env.service("na", NETAUTH_ONLY);
    let run = env.driver(&["--answer", "alice-pw", "--fork", "na", "alice"]);
    assert!(!run.success);
    assert!(run.stdout.contains("result auth 9 "), "{}", run.text());
    for phase in ["parent", "child"] {
        let (before, after) = thread_counts(&run.stdout, phase);
        assert_eq!(before, after, "{phase}: {}", run.text());
    }
}

/// The driver counts prompts: one for auth, none with use_first_pass data.
#[test]
fn exactly_one_prompt_per_authentication() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    let run = env.driver(&["--answer", "alice-pw", "na", "alice"]);
    assert!(run.success, "{}", run.text());
    assert!(run.stdout.contains("prompts 1\n"), "{}", run.stdout);
}

/// Every decision is logged to authpriv with user, service, rhost and
/// outcome; no password ever appears in anything the module logged.
#[test]
fn passwords_never_reach_the_log() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "[unix.pam]\nallow_groups = [\"engineering\"]\n");
    env.service(
        "na",
        "auth required @MODULE@ @CONFIG@ debug\n\
         account required @MODULE@ @CONFIG@ debug\n\
         password required @MODULE@ @CONFIG@ debug\n\
         session required @MODULE@ @CONFIG@ debug\n",
    );
    let passwords = [
        "alice-pw",
        "Wr0ng-Guess-17",
        "N3w-Secret-99",
        "Mismatch-Other-5",
    ];
    env.pamtester(
        "na",
        "alice",
        &["authenticate", "acct_mgmt", "open_session", "close_session"],
        "alice-pw\n",
    );
    env.pamtester("na", "alice", &["authenticate"], "Wr0ng-Guess-17\n");
    env.pamtester("na", "bob", &["authenticate", "acct_mgmt"], "bob-pw\n");
    env.pamtester(
        "na",
        "alice",
        &["chauthtok"],
        "alice-pw\nN3w-Secret-99\nMismatch-Other-5\n",
    );
    env.pamtester(
        "na",
        "alice",
        &["chauthtok"],
        "alice-pw\nN3w-Secret-99\nN3w-Secret-99\n",
    );
    env.pamtester("na", "alice", &["authenticate"], "N3w-Secret-99\n");
    env.pamtester("na", "nobody", &["authenticate"], "Wr0ng-Guess-17\n");

    let all = env.syslog().to_vec();
    assert!(all.len() >= 10, "too few log lines: {all:#?}");
    for line in &all {
        for password in passwords.iter().chain(&["bob-pw"]) {
            assert!(
                !line.contains(password),
                "password {password:?} logged: {line}"
            );
        }
    }
    let decisions: Vec<&String> = all.iter().filter(|l| l.contains(" outcome=")).collect();
    assert!(decisions.len() >= 10, "{all:#?}");
    for line in decisions {
        // <PRI>: facility authpriv (10) in the high bits.
        let pri: u32 = line
            .strip_prefix('<')
            .and_then(|l| l.split('>').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no priority: {line}"));
        assert_eq!(pri >> 3, 10, "not authpriv: {line}");
        assert!(line.contains("pam_netauth(na:"), "{line}");
        for key in [
            "user=\"",
            "service=\"na\"",
            "rhost=\"192.0.2.10\"",
            "outcome=PAM_",
        ] {
            assert!(line.contains(key), "{key} missing: {line}");
        }
    }
    // The decisions themselves are there.
    let text = all.join("\n");
    for expected in [
        "auth user=\"alice\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_SUCCESS",
        "auth user=\"alice\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_AUTH_ERR",
        "account user=\"bob\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_PERM_DENIED",
        "password-update user=\"alice\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_AUTHTOK_ERR",
        "password-update user=\"alice\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_SUCCESS",
        "session-open user=\"alice\"",
    ] {
        assert!(text.contains(expected), "{expected} missing: {text}");
    }
}

/// Copies of a password that may remain in the memory of a process after
/// pam_end, as docs/pam.md ("Secrets in memory") accounts for them: none.
const PASSWORD_COPIES_LEFT: usize = 0;

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// How often `needle` occurs in the file `dump` (grep: a debug-built loop
/// over a dump of tens of MB is slow).
fn occurrences(dump: &str, needle: &str) -> usize {
    let out = std::process::Command::new("grep")
        .args(["-aoF", "--", needle, dump])
        .output()
        .expect("run grep");
    out.stdout.iter().filter(|b| **b == b'\n').count()
}

/// Copies of `password` in `dump`, also those of a freed block whose first
/// bytes the allocator reused for its own list pointers (glibc writes 16
/// bytes there): the larger of the counts of its first and last 40 bytes.
fn copies(dump: &str, password: &str) -> usize {
    let part = password.len().min(40);
    let head = password.get(..part).unwrap_or(password);
    let tail = password.get(password.len() - part..).unwrap_or(password);
    occurrences(dump, head).max(occurrences(dump, tail))
}

/// Runs the driver with `args` plus `--core`, and counts each of
/// `passwords` in the dump taken after pam_end (the driver wipes its own
/// copies of the answers first).
fn copies_after_pam_end(
    env: &mut Env,
    name: &str,
    args: &[&str],
    passwords: &[&str],
) -> Vec<usize> {
    let prefix = env.path(name);
    let prefix = prefix.to_str().expect("utf-8 path");
    let mut argv = vec!["--core", prefix];
    argv.extend_from_slice(args);
    let run = env.driver(&argv);
    assert!(run.success, "{name}: {}", run.text());
    let core = run
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("core "))
        .unwrap_or_else(|| panic!("{name}: no core file: {}", run.text()));
    let size = std::fs::metadata(core).expect("core dump").len();
    assert!(size > 100_000, "{name}: core dump too small");
    let counts = passwords.iter().map(|p| copies(core, p)).collect();
    std::fs::remove_file(core).expect("remove core dump");
    counts
}

/// After pam_end no copy of the password is left in the process's memory
/// (freed heap included): counted in a core dump (gdb's gcore) of the
/// driver after an authentication and a password change, over TLS and over
/// plain text. The count guards the wiping of every buffer that held the
/// secret (conversation answer, PAM item reads, the gRPC request and the
/// buffers it went through).
#[test]
fn no_password_left_in_memory_after_pam_end() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    assert!(
        std::process::Command::new("gcore").output().is_ok(),
        "gcore missing: install gdb (scripts/setup.sh)"
    );
    // Long enough that a freed copy keeps a recognisable part.
    let old = "Sentinel-Old-9f2c41d7e3-a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";
    let new = "Sentinel-New-5b7e03a8c6-0f1e2d3c4b5a69788796a5b4c3d2e1f0fedcba98";
    let mut env = Env::new();
    let world = start_world(&env, "");
    world.server.state().set_secret("alice", old);
    env.service("na", NETAUTH_ONLY);

    let auth = copies_after_pam_end(
        &mut env,
        "core-auth-tls",
        &["--answer-hex", &hex(old), "na", "alice"],
        &[old],
    );
    let change = copies_after_pam_end(
        &mut env,
        "core-chauthtok-tls",
        &[
            "--op",
            "chauthtok",
            "--answer-hex",
            &hex(old),
            "--answer-hex",
            &hex(new),
            "--answer-hex",
            &hex(new),
            "na",
            "alice",
        ],
        &[old, new],
    );
    assert!(world.server.state().check_secret("alice", new));

    let plain = netauth_testserver::TestServer::start(netauth_testserver::Options::default());
    seed(&plain);
    plain.state().set_secret("alice", old);
    env.write_config(&format!(
        "[core]\nserver = \"127.0.0.1\"\nport = {}\n\n[tls]\npwn_me = true\n",
        plain.port()
    ));
    let auth_plain = copies_after_pam_end(
        &mut env,
        "core-auth-plain",
        &["--answer-hex", &hex(old), "na", "alice"],
        &[old],
    );
    assert!(plain.faults().call_count("AuthEntity") >= 1);

    for (what, counts) in [
        ("auth over TLS", auth),
        ("password change over TLS", change),
        ("auth over plain text", auth_plain),
    ] {
        eprintln!("copies after pam_end, {what}: {counts:?}");
        for count in counts {
            assert!(
                count == PASSWORD_COPIES_LEFT,
                "{what}: {count} copies of a password in memory after pam_end"
            );
        }
    }
}

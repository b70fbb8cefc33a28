//! Hostile files through real libpam and real glibc NSS: a config or
//! certificate others can write (or that belongs to another user), a FIFO or
//! an endless device in their place, and a cache folder others can write.
//! Each is refused with a log line naming the file and the reason.

mod pam_support;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netauth_cache::{CacheContent, UnixGroup, UnixUser};
use netauth_e2e::nss::{encode_content, nss_module_dir, sample_content};
use pam_support::*;

fn chmod(path: &std::path::Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Generous bound for "returned at once" (process start-up included).
const PROMPT: Duration = Duration::from_secs(5);

/// The last decision names `file` and `reason` and is logged at LOG_ERR.
fn assert_refused(env: &mut Env, file: &str, reason: &str) {
    let line = env.last_decision();
    assert!(
        line.contains(file) && line.contains(reason) && line.contains("outcome=PAM_SERVICE_ERR"),
        "{file}: {reason}: {line}"
    );
}

/// An unprivileged user who can write config.toml could point PAM at their
/// own server (with `pwn_me = true`) and log in as anybody: a config that
/// group or others may write, or that belongs to another user, is refused
/// before any network call.
#[test]
fn a_config_others_can_write_or_own_is_refused() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    let config = env.config_path();
    let shown = config.display().to_string();
    chmod(&config, 0o644);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    let calls = world.server.faults().call_count("AuthEntity");

    chmod(&config, 0o666);
    for ops in [&["authenticate"][..], &["acct_mgmt"]] {
        assert_fails_with(
            &env.pamtester("na", "alice", ops, "alice-pw\n"),
            SERVICE_ERR,
        );
        assert_refused(&mut env, &shown, "writable by group or others (mode 0666)");
    }
    chmod(&config, 0o644);
    std::os::unix::fs::chown(&config, Some(1000), Some(1000)).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        SERVICE_ERR,
    );
    assert_refused(&mut env, &shown, "owned by uid 1000; only root may own it");
    std::os::unix::fs::chown(&config, Some(0), Some(0)).unwrap();
    // Its folder counts too: whoever can write it can replace the file.
    chmod(env.dir.path(), 0o777);
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        SERVICE_ERR,
    );
    let folder = env.dir.path().display().to_string();
    assert_refused(
        &mut env,
        &folder,
        "folder writable by group or others (mode 0777)",
    );
    chmod(env.dir.path(), 0o700);
    assert_eq!(world.server.faults().call_count("AuthEntity"), calls);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
}

/// Whoever can rewrite the certificate chooses which server PAM trusts.
#[test]
fn a_certificate_others_can_write_or_own_is_refused() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    let shown = world.cert.display().to_string();
    chmod(&world.cert, 0o644);
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    for mode in [0o666, 0o664] {
        chmod(&world.cert, mode);
        assert_fails_with(
            &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
            SERVICE_ERR,
        );
        assert_refused(
            &mut env,
            &shown,
            &format!("writable by group or others (mode {mode:04o})"),
        );
    }
    chmod(&world.cert, 0o644);
    std::os::unix::fs::chown(&world.cert, Some(1000), None).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        SERVICE_ERR,
    );
    assert_refused(&mut env, &shown, "owned by uid 1000");
}

/// A FIFO as certificate (nobody writing to it) used to block `auth`
/// forever; `/dev/zero` as certificate or config grew the process without
/// bound. Both are refused at once, inside a small address-space limit
/// (reading /dev/zero would exhaust it) and an outer timeout (a block
/// would hit it).
#[test]
fn a_fifo_or_dev_zero_as_certificate_or_config_is_refused_at_once() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    env.service("zero", "auth required @MODULE@ config=/dev/zero\n");
    let fifo = env.path("fifo.pem");
    let c_fifo = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_fifo.as_ptr(), 0o644) }, 0);

    let bounded = |env: &mut Env, service: &str| {
        let script =
            format!("ulimit -v 1048576; exec timeout 30 pamtester -v {service} alice authenticate");
        env.run(&["sh", "-c", &script], "alice-pw\n")
    };
    let cases = [
        ("na", fifo.clone(), "not a regular file (a FIFO)"),
        (
            "na",
            "/dev/zero".into(),
            "not a regular file (a character device)",
        ),
    ];
    for (service, cert, reason) in cases {
        env.write_config(&config_for(world.server.port(), &cert, ""));
        let run = bounded(&mut env, service);
        assert!(run.elapsed < PROMPT, "{reason}: took {:?}", run.elapsed);
        assert_fails_with(&run, SERVICE_ERR);
        assert_refused(&mut env, &cert.display().to_string(), reason);
    }
    let run = bounded(&mut env, "zero");
    assert!(run.elapsed < PROMPT, "took {:?}", run.elapsed);
    assert_fails_with(&run, SERVICE_ERR);
    assert_refused(
        &mut env,
        "/dev/zero",
        "not a regular file (a character device)",
    );
    assert_eq!(world.server.faults().call_count("AuthEntity"), 0);
}

fn cached(name: &str, uid: u32) -> UnixUser {
    UnixUser {
        name: name.into(),
        uid,
        gid: 5001,
        gecos: String::new(),
        home: format!("/home/{name}"),
        shell: "/bin/sh".into(),
        locked: false,
    }
}

/// A fresh cache holding alice, member of staff.
fn fresh_cache() -> CacheContent {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    CacheContent {
        users: vec![cached("alice", 2001)],
        groups: vec![UnixGroup {
            name: "staff".into(),
            gid: 5001,
            members: vec!["alice".into()],
        }],
        user_groups: [("alice".to_string(), vec![5001])].into_iter().collect(),
        user_keys: Default::default(),
        generated_at: i64::try_from(now).unwrap_or(0) - 60,
        source: "test".into(),
    }
}

/// PAM trusts the cache (which users are NetAuth's, and the offline account
/// rule) only in a folder nobody but root may write: otherwise anybody could
/// put a cache there admitting whoever they like while the server is down.
/// With an untrusted cache the module cannot tell a NetAuth user and leaves
/// the decision to the other modules (PAM_IGNORE), so a stack of ours alone
/// admits nobody (libpam's "no module decided" is PAM_PERM_DENIED).
#[test]
fn the_offline_rule_refuses_a_cache_folder_others_can_write() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "[unix.pam]\noffline_max_age_s = 3600\n");
    env.service("na", NETAUTH_ONLY);
    world.server.shutdown();
    env.write_cache(&fresh_cache());
    let folder = env.path("varlib/netauth");
    chmod(&folder, 0o755);
    chmod(&folder.join("nss.cache"), 0o644);
    assert_ok(&env.pamtester("na", "alice", &["acct_mgmt"], ""));
    assert!(
        env.last_decision().contains("offline"),
        "{}",
        env.last_decision()
    );

    for mode in [0o777, 0o775] {
        chmod(&folder, mode);
        assert_fails_with(
            &env.pamtester("na", "alice", &["acct_mgmt"], ""),
            "Permission denied",
        );
        let line = env.last_decision();
        assert!(
            line.contains("cache unusable: /var/lib/netauth: folder writable by group or others")
                && line.contains(&format!("(mode {mode:04o})")),
            "{line}"
        );
    }
    chmod(&folder, 0o755);
    std::os::unix::fs::chown(&folder, Some(1000), None).unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["acct_mgmt"], ""),
        "Permission denied",
    );
    assert!(
        env.last_decision()
            .contains("/var/lib/netauth: folder owned by uid 1000"),
        "{}",
        env.last_decision()
    );
}

/// The NSS module serves the cache only from a folder nobody but root may
/// write; otherwise every lookup answers UNAVAIL (getent: not found) and the
/// module logs the folder and the reason once.
#[test]
fn nss_refuses_a_cache_folder_others_can_write() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let content = sample_content();
    let folder = env.path("varlib/netauth");
    std::fs::write(folder.join("nss.cache"), encode_content(&content)).unwrap();
    chmod(&folder, 0o755);
    chmod(&folder.join("nss.cache"), 0o644);
    let nsswitch = env.path("nsswitch.conf");
    std::fs::write(&nsswitch, "passwd: netauth\ngroup: netauth\n").unwrap();
    let module_dir = nss_module_dir().to_str().unwrap().to_owned();
    let nsswitch = nsswitch.to_str().unwrap().to_owned();
    let name = content.users[0].name.clone();
    let getent = |env: &mut Env| -> String {
        let script = "mount --bind \"$1\" /etc/nsswitch.conf && \
                      LD_LIBRARY_PATH=\"$2\" getent passwd \"$3\"; echo \"exit=$?\"";
        let run = env.run(
            &["sh", "-c", script, "sh", &nsswitch, &module_dir, &name],
            "",
        );
        run.stdout
    };
    let out = getent(&mut env);
    assert!(
        out.contains(&format!("{name}:*:")) && out.contains("exit=0"),
        "{out}"
    );

    let cases: [(u32, Option<u32>, &str); 3] = [
        (
            0o777,
            None,
            "folder writable by group or others (mode 0777)",
        ),
        (
            0o775,
            None,
            "folder writable by group or others (mode 0775)",
        ),
        (
            0o755,
            Some(1000),
            "folder owned by uid 1000; only root may own it",
        ),
    ];
    for (mode, owner, reason) in cases {
        chmod(&folder, mode);
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&folder, Some(uid), None).unwrap();
        }
        let out = getent(&mut env);
        assert!(out.trim() == "exit=2", "{reason}: {out}");
        let logged = env.syslog().to_vec();
        let expected = format!("nss_netauth: ignoring the cache: /var/lib/netauth: {reason}");
        assert!(
            logged.iter().any(|l| l.contains(&expected)),
            "{expected}: {logged:?}"
        );
        std::os::unix::fs::chown(&folder, Some(0), None).unwrap();
    }
    chmod(&folder, 0o755);
    let out = getent(&mut env);
    assert!(out.contains("exit=0"), "{out}");
}

//! pam_netauth through real libpam and pamtester: authentication, account,
//! password change and failure handling. See pam_support for the sandbox.

mod pam_support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use netauth_cache::{CacheContent, UnixGroup, UnixUser};
use netauth_testserver::{generate_tls_identity, BlackHole};
use pam_support::*;

// ------------------------------------------------------------------ auth

#[test]
fn right_and_wrong_password() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);

    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"));
    let line = env.last_decision();
    assert!(
        line.contains(
            "auth user=\"alice\" service=\"na\" rhost=\"192.0.2.10\" outcome=PAM_SUCCESS"
        ),
        "{line}"
    );
    let metadata = world
        .server
        .last_metadata_for("AuthEntity")
        .expect("AuthEntity reached the server");
    assert_eq!(metadata.service_name.as_deref(), Some("pam_netauth"));
    assert!(metadata.client_name.is_some_and(|n| !n.is_empty()));
    assert!(metadata.authorization.is_none());
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "bob-pw\n"),
        AUTH_ERR,
    );
    assert!(env.last_decision().contains("outcome=PAM_AUTH_ERR"));
    // Empty password: refused without asking the server.
    let before = world.server.faults().call_count("AuthEntity");
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "\n"),
        AUTH_ERR,
    );
    assert_eq!(world.server.faults().call_count("AuthEntity"), before);
    assert!(env.last_decision().contains("empty password"));
}

#[test]
fn locked_entity_fails_auth_and_account() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_fails_with(
        &env.pamtester("na", "erin", &["authenticate"], "erin-pw\n"),
        AUTH_ERR,
    );
    assert_fails_with(
        &env.pamtester("na", "erin", &["acct_mgmt"], ""),
        PERM_DENIED,
    );
    assert!(env.last_decision().contains("locked"));
}

/// A name the cache does not list is not NetAuth's: ignored without a
/// prompt or a call; with `uncached_users=ask` the server is asked and its
/// "unknown" is an authentication failure.
#[test]
fn unknown_user_is_ignored_unless_the_server_is_asked() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    // On the server, not (yet) in the cache: not a user of this host.
    world.server.state().add_entity("frank", 2010, "frank-pw");
    env.service("na", NETAUTH_ONLY);
    for user in ["nobody-here", "frank"] {
        let run = env.pamtester("na", user, &["authenticate"], "x-pw\n");
        assert!(!run.success, "{}", run.text());
        assert!(!run.text().contains("Password:"), "{}", run.text());
        let line = env.last_decision();
        assert!(
            line.contains("outcome=PAM_IGNORE") && line.contains("not in the NetAuth cache"),
            "{line}"
        );
        assert!(!env.pamtester("na", user, &["acct_mgmt"], "").success);
        assert!(env.last_decision().contains("outcome=PAM_IGNORE"));
    }
    assert_eq!(world.server.faults().call_count("AuthEntity"), 0);
    assert_eq!(world.server.faults().call_count("EntityInfo"), 0);

    env.service(
        "ask",
        &NETAUTH_ONLY.replace("@CONFIG@", "@CONFIG@ uncached_users=ask"),
    );
    assert_fails_with(
        &env.pamtester("ask", "nobody-here", &["authenticate"], "x-pw\n"),
        AUTH_ERR,
    );
    assert_fails_with(
        &env.pamtester("ask", "nobody-here", &["acct_mgmt"], ""),
        USER_UNKNOWN,
    );
    assert_ok(&env.pamtester("ask", "frank", &["authenticate", "acct_mgmt"], "frank-pw\n"));
}

/// pam_netauth before pam_unix: NetAuth users are decided by NetAuth, local
/// users fall through to pam_unix only with `ignore_unknown_user`.
#[test]
fn unknown_user_falls_through_to_pam_unix_with_ignore_unknown_user() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.with_local_user(&[]);
    // An entity named like the local account: its NetAuth secret must never
    // open the local account.
    world
        .server
        .state()
        .add_entity("localuser", 4343, "netauth-side-secret");
    let stack = |extra: &str| {
        format!(
            "auth [success=done ignore=ignore default=die] @MODULE@ @CONFIG@ {extra}\n\
             auth required pam_unix.so\n\
             account [success=done ignore=ignore default=die] @MODULE@ @CONFIG@ {extra}\n\
             account required pam_unix.so\n"
        )
    };
    env.service("ignoring", &stack("ignore_unknown_user"));
    env.service("strict", &stack(""));

    // Only one password line: pam_netauth must not have prompted first.
    let local = format!("{LOCAL_PASSWORD}\n");
    assert_ok(&env.pamtester(
        "ignoring",
        "localuser",
        &["authenticate", "acct_mgmt"],
        &local,
    ));
    assert!(env
        .module_log()
        .iter()
        .any(|l| l.contains("outcome=PAM_IGNORE")));
    assert_fails_with(
        &env.pamtester("ignoring", "localuser", &["authenticate"], "wrong\n"),
        AUTH_ERR,
    );
    // NetAuth users still go through NetAuth in the same stack.
    assert_ok(&env.pamtester(
        "ignoring",
        "alice",
        &["authenticate", "acct_mgmt"],
        "alice-pw\n",
    ));
    assert_fails_with(
        &env.pamtester("ignoring", "alice", &["authenticate"], "wrong\n"),
        AUTH_ERR,
    );

    // Without the option too, a local account is never NetAuth's to
    // decide: pam_netauth ignores it and pam_unix answers.
    assert_ok(&env.pamtester(
        "strict",
        "localuser",
        &["authenticate", "acct_mgmt"],
        &local,
    ));
    assert_fails_with(
        &env.pamtester("strict", "localuser", &["authenticate"], "wrong\n"),
        AUTH_ERR,
    );
    for service in ["strict", "ignoring"] {
        assert_fails_with(
            &env.pamtester(
                service,
                "localuser",
                &["authenticate"],
                "netauth-side-secret\n",
            ),
            AUTH_ERR,
        );
    }
    // A name neither local nor in NetAuth's cache: ignored, pam_unix
    // decides (it does not know the name either).
    assert_fails_with(
        &env.pamtester("strict", "mallory", &["authenticate"], "whatever\n"),
        USER_UNKNOWN,
    );
    assert!(env.last_decision().contains("outcome=PAM_IGNORE"));
    // Asking the server about such names, without ignore_unknown_user: an
    // authentication failure, and the stack dies.
    env.service("asking", &stack("uncached_users=ask"));
    assert_fails_with(
        &env.pamtester("asking", "mallory", &["authenticate"], "whatever\n"),
        AUTH_ERR,
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A password that is not UTF-8 is refused, never converted lossily: where
/// `pw\xff\xff` once became the secret `pw\u{FFFD}\u{FFFD}`, `pw\xfe\xfe`
/// (a different password with the same lossy form) must not log in, and
/// neither reaches the server. The same for one longer than 4 KiB.
#[test]
fn passwords_that_are_not_utf8_or_too_long_never_reach_the_server() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    // The secret a lossy chauthtok to pw\xff\xff left behind.
    world
        .server
        .state()
        .set_secret("alice", "pw\u{FFFD}\u{FFFD}");
    let too_long = vec![b'a'; 4097];
    for bad in [&b"pw\xfe\xfe"[..], b"pw\x80\x80", &too_long] {
        let run = env.driver(&["--answer-hex", &hex(bad), "na", "alice"]);
        assert!(run.stdout.contains("result auth 7 "), "{}", run.text());
        assert!(
            env.last_decision().contains("without asking the server"),
            "{}",
            env.last_decision()
        );
    }
    assert_eq!(world.server.faults().call_count("AuthEntity"), 0);
    // The collapsed text itself is a valid password and does log in.
    let run = env.driver(&["--answer", "pw\u{FFFD}\u{FFFD}", "na", "alice"]);
    assert!(run.stdout.contains("result auth 0 "), "{}", run.text());

    // A new password that is not UTF-8 or too long: PAM_AUTHTOK_ERR, and
    // the secret stays.
    world.server.state().set_secret("alice", "alice-pw");
    for bad in [&b"pw\xff\xff"[..], &too_long] {
        let run = env.driver(&[
            "--op",
            "chauthtok",
            "--answer",
            "alice-pw",
            "--answer-hex",
            &hex(bad),
            "--answer-hex",
            &hex(bad),
            "na",
            "alice",
        ]);
        assert!(
            run.stdout.contains("result chauthtok 20 "),
            "{}",
            run.text()
        );
        assert!(world.server.state().check_secret("alice", "alice-pw"));
    }
    assert_eq!(world.server.faults().call_count("AuthChangeSecret"), 0);
}

/// `use_first_pass`: the password comes from pam_exec (expose_authtok
/// prompts and stores PAM_AUTHTOK); pam_netauth must not prompt again.
#[test]
fn use_first_pass_takes_the_password_of_an_earlier_module() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service(
        "firstpass",
        "auth optional pam_exec.so expose_authtok quiet /bin/cat\n\
         auth required @MODULE@ @CONFIG@ use_first_pass\n",
    );
    assert_ok(&env.pamtester("firstpass", "alice", &["authenticate"], "alice-pw\n"));
    assert_fails_with(
        &env.pamtester("firstpass", "alice", &["authenticate"], "bob-pw\n"),
        AUTH_ERR,
    );
    // Without an earlier module there is nothing to use: failure, no prompt.
    env.service("alone", "auth required @MODULE@ @CONFIG@ use_first_pass\n");
    let run = env.pamtester("alone", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTH_ERR);
    assert!(!run.text().contains("Password:"), "{}", run.text());
    assert!(env.last_decision().contains("use_first_pass"));
}

/// pam_netauth hands the password it prompted for to a later module.
#[test]
fn prompted_password_is_handed_to_later_modules() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service(
        "handon",
        "auth required @MODULE@ @CONFIG@\nauth required @MODULE@ @CONFIG@ use_first_pass\n",
    );
    assert_ok(&env.pamtester("handon", "bob", &["authenticate"], "bob-pw\n"));
    let successes = env
        .module_log()
        .iter()
        .filter(|l| l.contains("outcome=PAM_SUCCESS"))
        .count();
    assert_eq!(successes, 2);
}

// ------------------------------------------------------------------ account

const RULES: &str = "\
[unix.pam]
allow_groups = [\"engineering\"]

[unix.pam.service.na-staff]
allow_groups = [\"staff\"]
";

#[test]
fn access_rule_uses_effective_membership_and_per_service_override() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, RULES);
    env.service("na", NETAUTH_ONLY);
    env.service("na-staff", NETAUTH_ONLY);

    // alice is in engineering only through INCLUDE developers.
    assert_ok(&env.pamtester("na", "alice", &["authenticate", "acct_mgmt"], "alice-pw\n"));
    // bob is not in engineering; dave is EXCLUDEd (interns).
    for user in ["bob", "dave"] {
        assert_fails_with(&env.pamtester("na", user, &["acct_mgmt"], ""), PERM_DENIED);
        assert!(
            env.last_decision().contains("allowed group"),
            "{}",
            env.last_decision()
        );
    }
    // The service override admits staff only.
    assert_ok(&env.pamtester("na-staff", "bob", &["acct_mgmt"], ""));
    assert_fails_with(
        &env.pamtester("na-staff", "alice", &["acct_mgmt"], ""),
        PERM_DENIED,
    );
}

fn cache_user(name: &str, uid: u32, locked: bool) -> UnixUser {
    UnixUser {
        name: name.into(),
        uid,
        gid: 5001,
        gecos: String::new(),
        home: format!("/home/{name}"),
        shell: "/bin/sh".into(),
        locked,
    }
}

fn offline_cache(age: Duration) -> CacheContent {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    CacheContent {
        users: vec![
            cache_user("alice", 2001, false),
            cache_user("bob", 2002, false),
            cache_user("erin", 2004, true),
        ],
        groups: vec![
            UnixGroup {
                name: "staff".into(),
                gid: 5001,
                members: vec!["bob".into()],
            },
            UnixGroup {
                name: "engineering".into(),
                gid: 5005,
                members: vec!["alice".into(), "erin".into()],
            },
        ],
        user_groups: [
            ("alice".to_string(), vec![5005]),
            ("bob".to_string(), vec![5001]),
            ("erin".to_string(), vec![5005]),
        ]
        .into_iter()
        .collect(),
        user_keys: Default::default(),
        generated_at: i64::try_from(now.saturating_sub(age).as_secs()).unwrap_or(0),
        source: "test".into(),
    }
}

/// Offline rule: server unreachable -> the cache decides when it is fresh
/// and lists the user; otherwise PAM_AUTHINFO_UNAVAIL.
#[test]
fn account_offline_decides_from_the_cache() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let rules = RULES.replace("[unix.pam]\n", "[unix.pam]\noffline_max_age_s = 3600\n");
    let world = start_world(&env, &rules);
    env.service("na", NETAUTH_ONLY);
    world.server.shutdown();

    // No cache at all: nobody is a NetAuth user (NSS knows none either).
    env.remove_cache();
    assert!(!env.pamtester("na", "alice", &["acct_mgmt"], "").success);
    let line = env.last_decision();
    assert!(
        line.contains("outcome=PAM_IGNORE") && line.contains("cache unusable"),
        "{line}"
    );

    env.write_cache(&offline_cache(Duration::from_secs(60)));
    assert_ok(&env.pamtester("na", "alice", &["acct_mgmt"], ""));
    assert!(
        env.last_decision().contains("offline"),
        "{}",
        env.last_decision()
    );
    assert_fails_with(&env.pamtester("na", "bob", &["acct_mgmt"], ""), PERM_DENIED);
    assert_fails_with(
        &env.pamtester("na", "erin", &["acct_mgmt"], ""),
        PERM_DENIED,
    );
    // Not in the cache: not a NetAuth user.
    assert!(!env.pamtester("na", "zed", &["acct_mgmt"], "").success);
    assert!(env.last_decision().contains("outcome=PAM_IGNORE"));
    // Auth never succeeds offline: the cache holds no secrets.
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTHINFO_UNAVAIL,
    );

    // Too old.
    env.write_cache(&offline_cache(Duration::from_secs(7200)));
    assert_fails_with(
        &env.pamtester("na", "alice", &["acct_mgmt"], ""),
        AUTHINFO_UNAVAIL,
    );
    assert!(
        env.last_decision().contains("offline_max_age_s"),
        "{}",
        env.last_decision()
    );

    // Dated more than a few minutes ahead of the clock: not trusted for
    // offline decisions, however fresh it claims to be.
    let mut future = offline_cache(Duration::ZERO);
    future.generated_at += 3600;
    env.write_cache(&future);
    assert_fails_with(
        &env.pamtester("na", "alice", &["acct_mgmt"], ""),
        AUTHINFO_UNAVAIL,
    );
    assert!(
        env.last_decision().contains("future"),
        "{}",
        env.last_decision()
    );
    future.generated_at -= 3600 - 120;
    env.write_cache(&future);
    assert_ok(&env.pamtester("na", "alice", &["acct_mgmt"], ""));

    // Damaged: whose user alice is cannot be told; left to other modules.
    std::fs::write(env.path("varlib/netauth/nss.cache"), b"NAUTHNSS garbage").unwrap();
    assert!(!env.pamtester("na", "alice", &["acct_mgmt"], "").success);
    let line = env.last_decision();
    assert!(
        line.contains("outcome=PAM_IGNORE") && line.contains("cache unusable"),
        "{line}"
    );
}

// ------------------------------------------------------------------ failures

/// Generous bound for "within the deadline": connect 1.5 s + request 2.5 s
/// configured, plus process start-up.
const DEADLINE_BOUND: Duration = Duration::from_secs(8);

#[test]
fn server_stopped_is_authinfo_unavail() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    world.server.shutdown();
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(run.elapsed < DEADLINE_BOUND, "{:?}", run.elapsed);
}

#[test]
fn black_holed_server_is_authinfo_unavail_within_the_deadline() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    let hole = BlackHole::start();
    env.write_config(&config_for(hole.addr().port(), &world.cert, ""));
    env.service("na", NETAUTH_ONLY);
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(run.elapsed < DEADLINE_BOUND, "auth took {:?}", run.elapsed);
    // Account: after the deadline the (fresh) cache decides.
    let run = env.pamtester("na", "alice", &["acct_mgmt"], "");
    assert_ok(&run);
    assert!(
        run.elapsed < DEADLINE_BOUND,
        "account took {:?}",
        run.elapsed
    );
    assert!(env.last_decision().contains("offline"));
    // [unix.pam] overrides the deadline: 300 ms.
    env.write_config(&config_for(
        hole.addr().port(),
        &world.cert,
        "[unix.pam]\nconnect_timeout_ms = 300\nrequest_timeout_ms = 300\n",
    ));
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(
        run.elapsed < Duration::from_secs(3),
        "took {:?}",
        run.elapsed
    );
}

#[test]
fn wrong_tls_certificate_is_authinfo_unavail() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    let other = generate_tls_identity(&["localhost", "127.0.0.1"]);
    let wrong = env.path("other.pem");
    std::fs::write(&wrong, other.cert_pem).unwrap();
    env.write_config(&config_for(world.server.port(), &wrong, ""));
    env.service("na", NETAUTH_ONLY);
    let run = env.pamtester("na", "alice", &["authenticate"], "alice-pw\n");
    assert_fails_with(&run, AUTHINFO_UNAVAIL);
    assert!(run.elapsed < DEADLINE_BOUND);
    assert!(
        env.last_decision().contains("TLS"),
        "{}",
        env.last_decision()
    );
    assert_eq!(world.server.faults().call_count("AuthEntity"), 0);
}

#[test]
fn bad_configuration_is_service_err_naming_the_problem() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    let cases = [
        ("[core]\nport = 1729\n".to_string(), "core.server"),
        (
            config_for(
                world.server.port(),
                &world.cert,
                "[unix.pam]\nallowed_groups = [\"x\"]\n",
            ),
            "allowed_groups",
        ),
        (
            config_for(world.server.port(), &env.path("missing.pem"), ""),
            "tls.certificate",
        ),
        ("this is not toml".to_string(), "TOML"),
    ];
    for (config, named) in cases {
        env.write_config(&config);
        assert_fails_with(
            &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
            SERVICE_ERR,
        );
        let line = env.last_decision();
        assert!(
            line.contains(named) && line.starts_with("<83>"),
            "{named}: {line}"
        );
        // Whose login and where, even when the configuration is at fault.
        assert!(
            line.contains("auth user=\"alice\" service=\"na\" rhost=\"192.0.2.10\""),
            "{line}"
        );
        assert_fails_with(
            &env.pamtester("na", "alice", &["acct_mgmt"], ""),
            SERVICE_ERR,
        );
    }
    // A missing file.
    env.service(
        "nofile",
        "auth required @MODULE@ config=/nonexistent/config.toml\n",
    );
    assert_fails_with(
        &env.pamtester("nofile", "alice", &["authenticate"], "alice-pw\n"),
        SERVICE_ERR,
    );
    assert!(env.last_decision().contains("/nonexistent/config.toml"));
}

/// Every table and key under [unix] is ours: a misspelt one is a
/// configuration error naming file, line, key, user and service, never an
/// ignored table. (`[unix.Pam]` holding allow_groups used to be skipped
/// silently, letting every entity in.)
#[test]
fn misspelt_table_or_key_under_unix_is_service_err_not_an_open_host() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    // alice is a NetAuth user the cache lists: the module decides for her.
    env.write_cache(&offline_cache(Duration::from_secs(60)));
    assert_ok(&env.pamtester("na", "alice", &["authenticate", "acct_mgmt"], "alice-pw\n"));

    for (extra, key) in [
        ("[unix.Pam]\nallow_groups = [\"admins\"]\n", "unix.Pam"),
        ("[unix.PAM]\nallow_groups = [\"admins\"]\n", "unix.PAM"),
        ("[unix.refesh]\nmin_uid = 5000\n", "unix.refesh"),
        ("conect_timeout_ms = 300\n", "unix.conect_timeout_ms"),
        (
            "[unix.pam.service.na]\nallow_group = [\"admins\"]\n",
            "unix.pam.service.na.allow_group",
        ),
    ] {
        let config = config_for(world.server.port(), &world.cert, extra);
        let needle = key.rsplit('.').next().unwrap();
        let line = 1 + config
            .lines()
            .position(|l| l.contains(needle))
            .expect("key in the config");
        env.write_config(&config);
        let calls = world.server.faults().call_count("AuthEntity");
        for (ops, stdin) in [
            (&["authenticate"][..], "alice-pw\n"),
            (&["acct_mgmt"][..], ""),
        ] {
            assert_fails_with(&env.pamtester("na", "alice", ops, stdin), SERVICE_ERR);
            let decision = env.last_decision();
            for part in [
                format!("config file {}", env.config_path().display()),
                format!("line {line}, key {key}: unknown key `{needle}`"),
                "user=\"alice\" service=\"na\"".to_owned(),
                "outcome=PAM_SERVICE_ERR".to_owned(),
            ] {
                assert!(
                    decision.contains(&part),
                    "{key} {ops:?}: {part}: {decision}"
                );
            }
        }
        assert_eq!(
            world.server.faults().call_count("AuthEntity"),
            calls,
            "{key}"
        );
    }
}

// ------------------------------------------------------------------ password

#[test]
fn password_change_through_pamtester() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);

    let run = env.pamtester(
        "na",
        "alice",
        &["chauthtok"],
        "alice-pw\nfresh-pw-2\nfresh-pw-2\n",
    );
    assert_ok(&run);
    for prompt in ["Current password:", "New password:", "Retype new password:"] {
        assert!(run.text().contains(prompt), "{prompt}: {}", run.text());
    }
    assert!(world.server.state().check_secret("alice", "fresh-pw-2"));
    assert!(!world.server.state().check_secret("alice", "alice-pw"));
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "fresh-pw-2\n"));
    assert_fails_with(
        &env.pamtester("na", "alice", &["authenticate"], "alice-pw\n"),
        AUTH_ERR,
    );
}

#[test]
fn password_change_refusals_change_nothing() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    // Wrong current password: stops before asking for a new one.
    let run = env.pamtester(
        "na",
        "bob",
        &["chauthtok"],
        "wrong\nfresh-pw-2\nfresh-pw-2\n",
    );
    assert!(!run.success);
    assert!(!run.text().contains("New password:"), "{}", run.text());
    // Confirmation mismatch.
    let run = env.pamtester(
        "na",
        "bob",
        &["chauthtok"],
        "bob-pw\nfresh-pw-2\nfresh-pw-3\n",
    );
    assert_fails_with(&run, AUTHTOK_ERR);
    assert!(run.text().contains("do not match"), "{}", run.text());
    assert!(world.server.state().check_secret("bob", "bob-pw"));
    assert_eq!(world.server.faults().call_count("AuthChangeSecret"), 0);
}

/// `use_authtok`: pam_pwhistory asks for the new password (twice) and
/// stores PAM_AUTHTOK; pam_netauth uses it without prompting.
#[test]
fn use_authtok_takes_the_new_password_from_an_earlier_module() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, &local_accounts_config(&env));
    // pam_pwhistory wants a passwd entry (NSS gives one in real life); bob
    // is no local account for pam_netauth (local_passwd leaves him out).
    env.with_local_user(&["bob"]);
    env.service(
        "na",
        "password requisite pam_pwhistory.so\n\
         password required @MODULE@ @CONFIG@ use_authtok\n",
    );
    let run = env.pamtester(
        "na",
        "bob",
        &["chauthtok"],
        "bob-pw\nfresh-pw-2\nfresh-pw-2\n",
    );
    assert_ok(&run);
    assert!(world.server.state().check_secret("bob", "fresh-pw-2"));

    // Without an earlier module there is no new password: refused.
    env.service("alone", "password required @MODULE@ @CONFIG@ use_authtok\n");
    let run = env.pamtester(
        "alone",
        "bob",
        &["chauthtok"],
        "fresh-pw-2\nx-pw-3\nx-pw-3\n",
    );
    assert_fails_with(&run, AUTHTOK_ERR);
    assert!(!run.text().contains("New password:"), "{}", run.text());
    assert!(world.server.state().check_secret("bob", "fresh-pw-2"));
}

// ------------------------------------------------------------------ session, setcred

#[test]
fn session_and_setcred_succeed_and_sessions_are_logged() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service(
        "na",
        "auth required @MODULE@ @CONFIG@\nsession required @MODULE@ @CONFIG@\n",
    );
    assert_ok(&env.pamtester(
        "na",
        "alice",
        &["authenticate", "setcred", "open_session", "close_session"],
        "alice-pw\n",
    ));
    let log = env.module_log().join("\n");
    assert!(log.contains("session-open user=\"alice\""), "{log}");
    assert!(log.contains("session-close user=\"alice\""), "{log}");
}

/// The session step says nothing about users that are not NetAuth's: a
/// local account, or a user the cache does not list.
#[test]
fn sessions_of_other_users_leave_no_log_line() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, &local_accounts_config(&env));
    env.with_local_user(&["sssuser"]);
    env.service(
        "na",
        "session optional @MODULE@ @CONFIG@\nsession required pam_permit.so\n",
    );
    let before = env.module_log().len();
    for user in ["localuser", "root", "sssuser"] {
        assert_ok(&env.pamtester("na", user, &["open_session", "close_session"], ""));
    }
    let lines = env.module_log();
    assert_eq!(lines.len(), before, "{:#?}", lines.get(before..));
    assert_ok(&env.pamtester("na", "bob", &["open_session", "close_session"], ""));
    let log = env.module_log().join("\n");
    assert!(log.contains("session-open user=\"bob\""), "{log}");
}

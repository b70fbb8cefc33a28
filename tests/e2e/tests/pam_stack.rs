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

#[test]
fn unknown_user_without_ignore_is_an_auth_failure() {
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service("na", NETAUTH_ONLY);
    assert_fails_with(
        &env.pamtester("na", "nobody-here", &["authenticate"], "x-pw\n"),
        AUTH_ERR,
    );
    assert_fails_with(
        &env.pamtester("na", "nobody-here", &["acct_mgmt"], ""),
        USER_UNKNOWN,
    );
}

/// pam_netauth before pam_unix: NetAuth users are decided by NetAuth, local
/// users fall through to pam_unix only with `ignore_unknown_user`.
#[test]
fn unknown_user_falls_through_to_pam_unix_with_ignore_unknown_user() {
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
    // A name neither local nor in NetAuth: without the option it is an
    // authentication failure and the stack dies.
    assert_fails_with(
        &env.pamtester("strict", "mallory", &["authenticate"], "whatever\n"),
        AUTH_ERR,
    );
}

/// `use_first_pass`: the password comes from pam_exec (expose_authtok
/// prompts and stores PAM_AUTHTOK); pam_netauth must not prompt again.
#[test]
fn use_first_pass_takes_the_password_of_an_earlier_module() {
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
    let mut env = Env::new();
    let rules = RULES.replace("[unix.pam]\n", "[unix.pam]\noffline_max_age_s = 3600\n");
    let world = start_world(&env, &rules);
    env.service("na", NETAUTH_ONLY);
    world.server.shutdown();

    // No cache at all.
    assert_fails_with(
        &env.pamtester("na", "alice", &["acct_mgmt"], ""),
        AUTHINFO_UNAVAIL,
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
    assert_fails_with(
        &env.pamtester("na", "zed", &["acct_mgmt"], ""),
        AUTHINFO_UNAVAIL,
    );
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

    // Damaged.
    std::fs::write(env.path("varlib/netauth/nss.cache"), b"NAUTHNSS garbage").unwrap();
    assert_fails_with(
        &env.pamtester("na", "alice", &["acct_mgmt"], ""),
        AUTHINFO_UNAVAIL,
    );
}

// ------------------------------------------------------------------ failures

/// Generous bound for "within the deadline": connect 1.5 s + request 2.5 s
/// configured, plus process start-up.
const DEADLINE_BOUND: Duration = Duration::from_secs(8);

#[test]
fn server_stopped_is_authinfo_unavail() {
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
    let mut env = Env::new();
    let world = start_world(&env, "");
    let hole = BlackHole::start();
    env.write_config(&config_for(hole.addr().port(), &world.cert, ""));
    env.service("na", NETAUTH_ONLY);
    for (ops, stdin) in [
        (&["authenticate"][..], "alice-pw\n"),
        (&["acct_mgmt"][..], ""),
    ] {
        let run = env.pamtester("na", "alice", ops, stdin);
        assert_fails_with(&run, AUTHINFO_UNAVAIL);
        assert!(
            run.elapsed < DEADLINE_BOUND,
            "{ops:?} took {:?}",
            run.elapsed
        );
    }
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

// ------------------------------------------------------------------ password

#[test]
fn password_change_through_pamtester() {
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

//! The shipped Debian profile (packaging/debian/pam-config) in the stack
//! `pam-auth-update` builds from it, beside pam_unix and, where a test says
//! so, a second directory (a pam_exec stand-in for SSSD): who decides for
//! whom, what NetAuth gets to see, and what is logged. See pam_support for
//! the sandbox.

mod pam_support;

use pam_support::*;

/// A user the cache serves (so NSS has a passwd entry for it) whose entity
/// was deleted from NetAuth passes nothing that runs `account` only (an SSH
/// key login, say): the shipped account line, with its
/// `ignore_unknown_user`, refuses it as it refuses a locked one.
#[test]
fn a_deleted_entity_still_in_the_cache_fails_the_shipped_account_line() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, &local_accounts_config(&env));
    env.with_local_user(&["alice", "bob", "dave", "erin"]);
    env.service("login", &shipped_stack(&env, None, None));

    assert_ok(&env.pamtester("login", "bob", &["acct_mgmt"], ""));
    world.server.state().remove_entity("bob");
    assert_fails_with(
        &env.pamtester("login", "bob", &["acct_mgmt"], ""),
        PERM_DENIED,
    );
    let line = env.last_decision();
    assert!(
        line.contains("account user=\"bob\"") && line.contains("deleted"),
        "{line}"
    );
    assert_fails_with(
        &env.pamtester("login", "erin", &["acct_mgmt"], ""),
        PERM_DENIED,
    );
    // Local accounts never reach pam_netauth's account line.
    assert_ok(&env.pamtester("login", "localuser", &["acct_mgmt"], ""));
}

fn assert_denied(run: &Run) {
    assert!(!run.success, "expected a refusal: {}", run.text());
}

/// The other directory's users, decided by it alone: right password in,
/// wrong out, its account rule applies; pam_netauth answers PAM_IGNORE
/// without a call.
fn other_directory_decides(env: &mut Env, state: &str) {
    assert_ok(&env.pamtester(
        "login",
        "sssuser",
        &["authenticate", "acct_mgmt"],
        "sss-pw\n",
    ));
    let ours: Vec<String> = env
        .module_log()
        .into_iter()
        .filter(|l| l.contains("user=\"sssuser\""))
        .collect();
    assert!(
        ours.iter().all(|l| l.contains("outcome=PAM_IGNORE")),
        "{state}: {ours:#?}"
    );
    assert_fails_with(
        &env.pamtester("login", "sssuser", &["authenticate"], "wrong-pw\n"),
        AUTH_ERR,
    );
    assert_ok(&env.pamtester("login", "ssslocked", &["authenticate"], "sss-pw\n"));
    assert_denied(&env.pamtester("login", "ssslocked", &["acct_mgmt"], ""));
}

/// Another directory (SSSD, LDAP, winbind) beside NetAuth: with NetAuth
/// up, misconfigured and down, that directory's users are decided by it
/// alone, and not one of their passwords reaches NetAuth. A NetAuth user's
/// wrong password is asked once and sent once.
#[test]
fn another_directorys_users_are_decided_by_it_alone() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let world = start_world(&env, &local_accounts_config(&env));
    // NSS entries for everybody (the cache's and SSSD's users, as their
    // NSS modules would give them); local_passwd lists none of them.
    env.with_local_user(&["alice", "bob", "sssuser", "ssslocked"]);
    let fake = fake_directory(&env);
    let stack = shipped_stack(
        &env,
        Some(&format!(
            "[success=end default=ignore] pam_exec.so expose_authtok quiet {}",
            fake.display()
        )),
        Some(&format!(
            "[success=ok ignore=ignore default=bad] pam_exec.so quiet {}",
            fake.display()
        )),
    );
    env.service("login", &stack);
    let good_config = std::fs::read_to_string(env.config_path()).expect("config");
    // Shared counters: still readable once the server is stopped.
    let faults = world.server.faults().clone();
    let calls = || ["AuthEntity", "EntityInfo", "EntityGroups"].map(|m| faults.call_count(m));

    // NetAuth up.
    let before = calls();
    other_directory_decides(&mut env, "up");
    assert_eq!(
        calls(),
        before,
        "the other directory's logins reached NetAuth"
    );
    assert_ok(&env.pamtester(
        "login",
        "alice",
        &["authenticate", "acct_mgmt"],
        "alice-pw\n",
    ));
    // Wrong, then the right one on the next line: not asked a second time,
    // so the attempt fails, and the wrong password went out exactly once.
    let before = world.server.faults().call_count("AuthEntity");
    assert_fails_with(
        &env.pamtester("login", "alice", &["authenticate"], "wrong-pw\nalice-pw\n"),
        AUTH_ERR,
    );
    assert_eq!(world.server.faults().call_count("AuthEntity"), before + 1);
    assert!(env.last_decision().contains("outcome=PAM_AUTH_ERR"));

    // NetAuth misconfigured: NetAuth's users are refused, nobody else is.
    let before = calls();
    env.write_config("[core]\nport = 1729\n");
    other_directory_decides(&mut env, "misconfigured");
    assert_fails_with(
        &env.pamtester("login", "alice", &["acct_mgmt"], ""),
        SERVICE_ERR,
    );
    assert!(env.last_decision().contains("user=\"alice\""));
    assert_eq!(calls(), before);

    // NetAuth down.
    env.write_config(&good_config);
    world.server.shutdown();
    other_directory_decides(&mut env, "down");
    // alice logged in online above: her cached credentials let her in,
    // through the shipped stack; bob never did: no login without NetAuth.
    let run = env.pamtester("login", "alice", &["authenticate"], "alice-pw\n");
    assert_ok(&run);
    assert!(
        run.text()
            .contains("authenticated with cached credentials (NetAuth unreachable)"),
        "{}",
        run.text()
    );
    assert_denied(&env.pamtester("login", "alice", &["authenticate"], "wrong-pw\n"));
    assert_denied(&env.pamtester("login", "bob", &["authenticate"], "bob-pw\n"));
    assert!(env.last_decision().contains("outcome=PAM_AUTHINFO_UNAVAIL"));
}

/// `try_first_pass` (not the shipped choice): pam_unix's password refused,
/// then the one asked for accepted; the refusal has its own line.
#[test]
fn a_refused_password_before_a_retry_is_logged() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let mut env = Env::new();
    let _world = start_world(&env, "");
    env.service(
        "na",
        "auth [success=2 default=ignore] pam_unix.so\n\
         auth [success=1 default=ignore] @MODULE@ @CONFIG@ try_first_pass\n\
         auth requisite pam_deny.so\nauth required pam_permit.so\n",
    );
    assert_ok(&env.pamtester("na", "alice", &["authenticate"], "wrong-pw\nalice-pw\n"));
    let lines: Vec<String> = env
        .module_log()
        .into_iter()
        .filter(|l| l.contains("user=\"alice\""))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].contains("attempt=PAM_AUTH_ERR"), "{lines:#?}");
    assert!(lines[1].contains("outcome=PAM_SUCCESS"), "{lines:#?}");
}

//! Flow tests over a fake PAM handle and a fake NetAuth.

use super::*;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

const GOOD: &str = "correct horse battery";
const NEW: &str = "new-staple-7";

#[derive(Default)]
struct FakeHost {
    user: Option<String>,
    service: Option<String>,
    rhost: Option<String>,
    items: HashMap<&'static str, String>,
    answers: VecDeque<Result<String, PamCode>>,
    prompts: Vec<String>,
    shown: Vec<String>,
    logs: Vec<(LogLevel, String)>,
}

fn item_key(item: TokenItem) -> &'static str {
    match item {
        TokenItem::Authtok => "authtok",
        TokenItem::OldAuthtok => "oldauthtok",
    }
}

impl FakeHost {
    fn new(user: &str) -> FakeHost {
        FakeHost {
            user: Some(user.to_owned()),
            service: Some("sshd".into()),
            rhost: Some("192.0.2.7".into()),
            ..FakeHost::default()
        }
    }
    fn answering(mut self, answers: &[&str]) -> FakeHost {
        self.answers = answers.iter().map(|a| Ok(a.to_string())).collect();
        self
    }
    fn with_item(mut self, item: TokenItem, value: &str) -> FakeHost {
        self.items.insert(item_key(item), value.to_owned());
        self
    }
    fn item(&self, item: TokenItem) -> Option<&str> {
        self.items.get(item_key(item)).map(String::as_str)
    }
    fn log_text(&self) -> String {
        self.logs
            .iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
    /// The decision line (always the last one).
    fn decision(&self) -> &str {
        &self.logs.last().expect("a decision line").1
    }
}

impl PamHost for FakeHost {
    fn user(&mut self) -> Result<String, PamCode> {
        self.user.clone().ok_or(PamCode::ConvErr)
    }
    fn service(&self) -> Option<String> {
        self.service.clone()
    }
    fn rhost(&self) -> Option<String> {
        self.rhost.clone()
    }
    fn token(&self, item: TokenItem) -> Result<Option<Secret>, PamCode> {
        Ok(self.item(item).map(|s| Secret::new(s.to_owned())))
    }
    fn set_token(&mut self, item: TokenItem, value: &str) -> Result<(), PamCode> {
        self.items.insert(item_key(item), value.to_owned());
        Ok(())
    }
    fn prompt_secret(&mut self, prompt: &str) -> Result<Secret, PamCode> {
        self.prompts.push(prompt.to_owned());
        self.answers
            .pop_front()
            .unwrap_or(Err(PamCode::ConvErr))
            .map(Secret::new)
    }
    fn show_error(&mut self, message: &str) {
        self.shown.push(message.to_owned());
    }
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_owned()));
    }
}

struct FakeEntity {
    secret: String,
    locked: bool,
    groups: Vec<String>,
}

#[derive(Default)]
struct FakeNetAuth {
    entities: HashMap<String, FakeEntity>,
    down: bool,
    cache: Option<CacheAnswer>,
    calls: Vec<String>,
    /// Names in the fake local passwd file; `None`: the file is unreadable.
    local: Option<Vec<String>>,
}

impl FakeNetAuth {
    fn with(mut self, id: &str, secret: &str, locked: bool, groups: &[&str]) -> Self {
        self.entities.insert(
            id.to_owned(),
            FakeEntity {
                secret: secret.to_owned(),
                locked,
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
        );
        self
    }
    fn directory() -> Self {
        FakeNetAuth::default()
            .local(Some(&["root", "daemon"]))
            .with("alice", GOOD, false, &["staff", "admins"])
            .with("bob", GOOD, false, &["staff"])
            .with("carol", GOOD, true, &["admins"])
    }
    fn down(mut self) -> Self {
        self.down = true;
        self
    }
    fn local(mut self, names: Option<&[&str]>) -> Self {
        self.local = names.map(|n| n.iter().map(|s| s.to_string()).collect());
        self
    }
    fn cache(mut self, answer: CacheAnswer) -> Self {
        self.cache = Some(answer);
        self
    }
    fn unavailable() -> BackendError {
        BackendError::Unavailable("cannot reach NetAuth server 127.0.0.1:1: refused".into())
    }
}

impl Backend for FakeNetAuth {
    fn authenticate(&mut self, user: &str, secret: &str) -> Result<(), BackendError> {
        self.calls.push(format!("AuthEntity {user}"));
        if self.down {
            return Err(Self::unavailable());
        }
        match self.entities.get(user) {
            Some(e) if !e.locked && e.secret == secret => Ok(()),
            // Like the server: wrong, locked and unknown look the same.
            _ => Err(BackendError::Rejected("authentication failed".into())),
        }
    }
    fn account(&mut self, user: &str, with_groups: bool) -> Result<AccountInfo, BackendError> {
        self.calls
            .push(format!("EntityInfo {user} groups={with_groups}"));
        if self.down {
            return Err(Self::unavailable());
        }
        let e = self.entities.get(user).ok_or(BackendError::NotFound)?;
        Ok(AccountInfo {
            locked: e.locked,
            groups: if with_groups {
                e.groups.clone()
            } else {
                Vec::new()
            },
        })
    }
    fn change_secret(&mut self, user: &str, old: &str, new: &str) -> Result<(), BackendError> {
        self.calls.push(format!("ChangeSecret {user}"));
        if self.down {
            return Err(Self::unavailable());
        }
        match self.entities.get_mut(user) {
            Some(e) if !e.locked && e.secret == old => {
                e.secret = new.to_owned();
                Ok(())
            }
            _ => Err(BackendError::Rejected("authentication failed".into())),
        }
    }
    fn cached_account(&mut self, user: &str) -> CacheAnswer {
        self.calls.push(format!("cache {user}"));
        self.cache
            .clone()
            .unwrap_or_else(|| CacheAnswer::Unusable("no cache file".into()))
    }
    fn is_local_account(&mut self, user: &str) -> Result<bool, BackendError> {
        match &self.local {
            Some(names) => Ok(names.iter().any(|n| n == user)),
            None => Err(BackendError::Misconfigured(
                "key unix.refresh.local_passwd: cannot read /nope".into(),
            )),
        }
    }
}

/// Runs `op` and checks what every call must satisfy: no password in any
/// log line, exactly one decision line naming user, service, rhost, outcome.
fn call(
    op: Op,
    host: &mut FakeHost,
    backend: &mut FakeNetAuth,
    args: &[&str],
    flags: i32,
    settings: PamSettings,
) -> PamCode {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let code = run_with(op, host, &args, flags, |_| Ok((settings, &mut *backend)));
    let logs = host.log_text();
    for secret in [GOOD, NEW, "wrong-one", "mismatch-2"] {
        assert!(!logs.contains(secret), "secret in log: {logs}");
    }
    let decision = host.decision();
    assert!(
        decision.contains(&format!("outcome={}", code.name())),
        "{decision}"
    );
    if let Some(rhost) = &host.rhost {
        assert!(decision.contains(rhost.as_str()), "{decision}");
    }
    code
}

impl Backend for &mut FakeNetAuth {
    fn authenticate(&mut self, user: &str, secret: &str) -> Result<(), BackendError> {
        (**self).authenticate(user, secret)
    }
    fn account(&mut self, user: &str, with_groups: bool) -> Result<AccountInfo, BackendError> {
        (**self).account(user, with_groups)
    }
    fn change_secret(&mut self, user: &str, old: &str, new: &str) -> Result<(), BackendError> {
        (**self).change_secret(user, old, new)
    }
    fn cached_account(&mut self, user: &str) -> CacheAnswer {
        (**self).cached_account(user)
    }
    fn is_local_account(&mut self, user: &str) -> Result<bool, BackendError> {
        (**self).is_local_account(user)
    }
}

fn auth(host: &mut FakeHost, backend: &mut FakeNetAuth, args: &[&str]) -> PamCode {
    call(
        Op::Authenticate,
        host,
        backend,
        args,
        0,
        PamSettings::default(),
    )
}

// ---------------------------------------------------------------- auth

#[test]
fn right_password_succeeds_and_is_handed_on() {
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let mut na = FakeNetAuth::directory();
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Success);
    assert_eq!(host.prompts, vec!["Password: "]);
    assert_eq!(host.item(TokenItem::Authtok), Some(GOOD));
    assert_eq!(na.calls, vec!["AuthEntity alice"]);
    let line = host.decision();
    assert!(
        line.starts_with("auth user=\"alice\" service=\"sshd\" rhost=\"192.0.2.7\""),
        "{line}"
    );
}

#[test]
fn wrong_password_locked_and_unknown_are_auth_err() {
    for (user, password) in [("alice", "wrong-one"), ("carol", GOOD), ("zed", GOOD)] {
        let mut host = FakeHost::new(user).answering(&[password]);
        let mut na = FakeNetAuth::directory();
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::AuthErr, "{user}");
    }
}

#[test]
fn empty_password_is_refused_without_asking_the_server() {
    let mut host = FakeHost::new("alice").answering(&[""]);
    let mut na = FakeNetAuth::directory();
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::AuthErr);
    assert!(na.calls.is_empty());
    let mut host = FakeHost::new("alice").with_item(TokenItem::Authtok, "");
    assert_eq!(
        auth(&mut host, &mut na, &["use_first_pass"]),
        PamCode::AuthErr
    );
    assert!(na.calls.is_empty());
}

#[test]
fn unknown_user_is_ignored_with_ignore_unknown_user_before_any_prompt() {
    let mut host = FakeHost::new("mallory").answering(&[GOOD]);
    let mut na = FakeNetAuth::directory();
    assert_eq!(
        auth(&mut host, &mut na, &["ignore_unknown_user"]),
        PamCode::Ignore
    );
    assert!(
        host.prompts.is_empty(),
        "a password for a name NetAuth does not know must not be asked for"
    );
    assert_eq!(na.calls, vec!["EntityInfo mallory groups=false"]);
    // A known user still authenticates normally.
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["ignore_unknown_user"]),
        PamCode::Success
    );
}

#[test]
fn server_down_is_authinfo_unavail() {
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let mut na = FakeNetAuth::directory().down();
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::AuthinfoUnavail);
    assert!(
        host.decision().contains("cannot reach"),
        "{}",
        host.decision()
    );
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["ignore_unknown_user"]),
        PamCode::AuthinfoUnavail
    );
    assert!(host.prompts.is_empty());
}

#[test]
fn use_first_pass_never_prompts() {
    let mut host = FakeHost::new("alice").with_item(TokenItem::Authtok, GOOD);
    let mut na = FakeNetAuth::directory();
    assert_eq!(
        auth(&mut host, &mut na, &["use_first_pass"]),
        PamCode::Success
    );
    assert!(host.prompts.is_empty());

    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["use_first_pass"]),
        PamCode::AuthErr
    );
    assert!(host.prompts.is_empty());
    assert!(host.decision().contains("use_first_pass"));

    let mut host = FakeHost::new("alice").with_item(TokenItem::Authtok, "wrong-one");
    assert_eq!(
        auth(&mut host, &mut na, &["use_first_pass"]),
        PamCode::AuthErr
    );
}

#[test]
fn try_first_pass_prompts_only_without_an_earlier_password() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").with_item(TokenItem::Authtok, GOOD);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::Success
    );
    assert!(host.prompts.is_empty());
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::Success
    );
    assert_eq!(host.prompts.len(), 1);
}

#[test]
fn try_first_pass_prompts_once_when_the_earlier_password_is_refused() {
    // pam_unix's try_first_pass: the stacked password is tried first; when
    // it is not ours, the user is asked once.
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, "the-local-password")
        .answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::Success
    );
    assert_eq!(host.prompts.len(), 1);
    assert_eq!(host.item(TokenItem::Authtok), Some(GOOD));

    // A wrong answer to that one prompt fails; no third try.
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, "the-local-password")
        .answering(&["still-wrong", GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::AuthErr
    );
    assert_eq!(host.prompts.len(), 1);

    // An empty earlier password is not ours either.
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, "")
        .answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::Success
    );

    // Server down: no prompt, the outage is the answer.
    let mut na = FakeNetAuth::directory().down();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, GOOD)
        .answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::AuthinfoUnavail
    );
    assert!(host.prompts.is_empty());
}

#[test]
fn local_accounts_are_left_to_the_local_modules() {
    // An entity named like a local account (root) must not open it: no
    // prompt, no call to the server, PAM_IGNORE in every phase.
    let mut na = FakeNetAuth::directory().with("root", GOOD, false, &["admins"]);
    for args in [
        &[][..],
        &["ignore_unknown_user"][..],
        &["try_first_pass"][..],
    ] {
        let mut host = FakeHost::new("root")
            .with_item(TokenItem::Authtok, GOOD)
            .answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut na, args), PamCode::Ignore);
        assert!(host.prompts.is_empty());
        assert_eq!(
            account("root", &mut na, args, PamSettings::default()),
            PamCode::Ignore
        );
        let mut host = FakeHost::new("root").answering(&[GOOD, "new-one", "new-one"]);
        assert_eq!(
            chauthtok(&mut host, &mut na, args, flags::PRELIM_CHECK),
            PamCode::Ignore
        );
    }
    assert!(
        na.calls.iter().all(|c| !c.contains("root")),
        "{:?}",
        na.calls
    );

    // A local passwd file we cannot read: fail closed, naming the key.
    let mut na = FakeNetAuth::directory().local(None);
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::ServiceErr);
    assert!(
        host.decision().contains("local_passwd"),
        "{}",
        host.decision()
    );
}

#[test]
fn without_pass_options_the_module_asks_itself() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, "wrong-one")
        .answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Success);
    assert_eq!(host.prompts.len(), 1);
}

#[test]
fn conversation_failure_is_reported_not_success() {
    let mut host = FakeHost::new("alice");
    let mut na = FakeNetAuth::directory();
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::ConvErr);
    assert!(na.calls.is_empty());
    let mut host = FakeHost {
        user: None,
        ..FakeHost::new("x")
    };
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::ConvErr);
}

#[test]
fn impossible_user_names_are_never_sent() {
    let mut na = FakeNetAuth::directory();
    // "caf\u{FFFD}": what the host makes of a user name that is not UTF-8.
    for name in [
        "",
        "ali ce",
        "alice\n",
        "a\u{7}b",
        "caf\u{FFFD}",
        &"x".repeat(300),
    ] {
        let mut host = FakeHost::new(name).answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::AuthErr, "{name:?}");
        let mut host = FakeHost::new(name).answering(&[GOOD]);
        assert_eq!(
            auth(&mut host, &mut na, &["ignore_unknown_user"]),
            PamCode::Ignore
        );
        // The decision line escapes the name: one line, no raw control bytes.
        assert!(!host.decision().contains('\n') && !host.decision().contains('\u{7}'));
    }
    assert!(na.calls.is_empty());
}

#[test]
fn bad_configuration_is_service_err_naming_the_problem_without_prompting() {
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let args = vec!["config=/nowhere/config.toml".to_string()];
    let code = run_with(Op::Authenticate, &mut host, &args, 0, |_| {
        Err::<(PamSettings, FakeNetAuth), _>("key core.server: missing".to_string())
    });
    assert_eq!(code, PamCode::ServiceErr);
    assert!(host.prompts.is_empty());
    let line = host.decision();
    assert!(
        line.contains("/nowhere/config.toml") && line.contains("core.server"),
        "{line}"
    );
    assert!(line.contains("user=\"alice\" service=\"sshd\""), "{line}");
    assert_eq!(host.logs.last().map(|l| l.0), Some(LogLevel::Err));
}

#[test]
fn unknown_arguments_are_logged_and_ignored() {
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let mut na = FakeNetAuth::directory();
    assert_eq!(
        auth(&mut host, &mut na, &["nullok", "debug"]),
        PamCode::Success
    );
    assert!(host
        .logs
        .iter()
        .any(|(l, m)| *l == LogLevel::Warning && m.contains("\"nullok\"")));
    assert!(host.logs.iter().any(|(l, _)| *l == LogLevel::Debug));
    // Without debug, no debug lines.
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Success);
    assert!(!host.logs.iter().any(|(l, _)| *l == LogLevel::Debug));
}

// ---------------------------------------------------------------- setcred, session

#[test]
fn setcred_succeeds_without_config_or_network() {
    let mut host = FakeHost::new("alice");
    let code = run_with(Op::Setcred, &mut host, &[], 0, |_| {
        Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into())
    });
    assert_eq!(code, PamCode::Success);
}

#[test]
fn sessions_are_logged() {
    for op in [Op::OpenSession, Op::CloseSession] {
        let mut host = FakeHost::new("alice");
        let code = run_with(op, &mut host, &[], 0, |_| {
            Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into())
        });
        assert_eq!(code, PamCode::Success);
        assert!(host.decision().contains("session-") && host.decision().contains("alice"));
        let mut host = FakeHost {
            user: None,
            ..FakeHost::new("x")
        };
        let code = run_with(op, &mut host, &[], 0, |_| {
            Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into())
        });
        assert_eq!(code, PamCode::SessionErr);
    }
}

// ---------------------------------------------------------------- account

fn restricted(text: &str) -> PamSettings {
    PamSettings::from_config_text(text).unwrap()
}

fn account(user: &str, na: &mut FakeNetAuth, args: &[&str], settings: PamSettings) -> PamCode {
    let mut host = FakeHost::new(user);
    call(Op::AcctMgmt, &mut host, na, args, 0, settings)
}

#[test]
fn account_existing_locked_unknown() {
    let mut na = FakeNetAuth::directory();
    assert_eq!(
        account("alice", &mut na, &[], PamSettings::default()),
        PamCode::Success
    );
    // No rule: no group lookup.
    assert_eq!(na.calls, vec!["EntityInfo alice groups=false"]);
    assert_eq!(
        account("carol", &mut na, &[], PamSettings::default()),
        PamCode::PermDenied
    );
    assert_eq!(
        account("zed", &mut na, &[], PamSettings::default()),
        PamCode::UserUnknown
    );
    assert_eq!(
        account(
            "zed",
            &mut na,
            &["ignore_unknown_user"],
            PamSettings::default()
        ),
        PamCode::Ignore
    );
}

#[test]
fn account_access_rules_with_service_override() {
    let settings = restricted(
        "[unix.pam]\nallow_groups = [\"staff\"]\n[unix.pam.service.sshd]\nallow_groups = [\"admins\"]\n",
    );
    let mut na = FakeNetAuth::directory().with("dave", GOOD, false, &["contractors"]);
    // FakeHost's service is sshd: admins only.
    assert_eq!(
        account("alice", &mut na, &[], settings.clone()),
        PamCode::Success
    );
    assert_eq!(
        account("bob", &mut na, &[], settings.clone()),
        PamCode::PermDenied
    );
    assert_eq!(
        account("dave", &mut na, &[], settings.clone()),
        PamCode::PermDenied
    );
    assert!(na
        .calls
        .contains(&"EntityInfo alice groups=true".to_string()));
    // Another service uses the host list.
    let mut host = FakeHost::new("bob");
    host.service = Some("login".into());
    assert_eq!(
        call(Op::AcctMgmt, &mut host, &mut na, &[], 0, settings.clone()),
        PamCode::Success
    );
    let mut host = FakeHost::new("dave");
    host.service = Some("login".into());
    assert_eq!(
        call(Op::AcctMgmt, &mut host, &mut na, &[], 0, settings.clone()),
        PamCode::PermDenied
    );
    assert!(
        host.decision().contains("allowed group"),
        "{}",
        host.decision()
    );
    // Locked beats membership.
    assert_eq!(
        account("carol", &mut na, &[], settings),
        PamCode::PermDenied
    );
}

fn present(locked: bool, groups: &[&str], age_s: u64) -> CacheAnswer {
    CacheAnswer::Present {
        locked,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        age: Duration::from_secs(age_s),
    }
}

#[test]
fn offline_account_rule() {
    let settings = restricted(
        "[unix.pam]\noffline_max_age_s = 3600\n[unix.pam.service.sshd]\nallow_groups = [\"admins\"]\n",
    );
    let cases = [
        (present(false, &["admins"], 10), PamCode::Success),
        (present(true, &["admins"], 10), PamCode::PermDenied),
        (present(false, &["staff"], 10), PamCode::PermDenied),
        (present(false, &["admins"], 3601), PamCode::AuthinfoUnavail),
        (CacheAnswer::Absent, PamCode::AuthinfoUnavail),
        (
            CacheAnswer::Unusable("bad checksum".into()),
            PamCode::AuthinfoUnavail,
        ),
    ];
    for (answer, expected) in cases {
        let mut na = FakeNetAuth::directory().down().cache(answer.clone());
        let mut host = FakeHost::new("alice");
        let code = call(Op::AcctMgmt, &mut host, &mut na, &[], 0, settings.clone());
        assert_eq!(code, expected, "{answer:?}");
        if code == PamCode::Success {
            assert!(host.decision().contains("offline"), "{}", host.decision());
        }
    }
    // offline_max_age_s = 0: the cache is never consulted.
    let mut na = FakeNetAuth::directory()
        .down()
        .cache(present(false, &[], 0));
    let settings = restricted("[unix.pam]\noffline_max_age_s = 0\n");
    assert_eq!(
        account("alice", &mut na, &[], settings),
        PamCode::AuthinfoUnavail
    );
    assert!(!na.calls.iter().any(|c| c.starts_with("cache")));
}

// ---------------------------------------------------------------- password

const PRELIM: i32 = flags::PRELIM_CHECK;
const UPDATE: i32 = flags::UPDATE_AUTHTOK;

fn chauthtok(host: &mut FakeHost, na: &mut FakeNetAuth, args: &[&str], flags: i32) -> PamCode {
    call(Op::Chauthtok, host, na, args, flags, PamSettings::default())
}

#[test]
fn password_change_in_two_phases() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").answering(&[GOOD, NEW, NEW]);
    assert_eq!(chauthtok(&mut host, &mut na, &[], PRELIM), PamCode::Success);
    assert_eq!(host.prompts, vec!["Current password: "]);
    assert_eq!(host.item(TokenItem::OldAuthtok), Some(GOOD));
    assert!(host.decision().starts_with("password-prelim"));
    assert_eq!(chauthtok(&mut host, &mut na, &[], UPDATE), PamCode::Success);
    assert_eq!(
        host.prompts,
        vec![
            "Current password: ",
            "New password: ",
            "Retype new password: "
        ]
    );
    assert_eq!(host.item(TokenItem::Authtok), Some(NEW));
    assert_eq!(na.entities["alice"].secret, NEW);
}

#[test]
fn wrong_current_password_stops_in_the_preliminary_check() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").answering(&["wrong-one"]);
    assert_eq!(chauthtok(&mut host, &mut na, &[], PRELIM), PamCode::AuthErr);
    assert_eq!(host.item(TokenItem::OldAuthtok), None);
    assert_eq!(na.entities["alice"].secret, GOOD);
    // Even if the application went on, the update has no old password.
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], UPDATE),
        PamCode::AuthtokRecoveryErr
    );
    assert_eq!(na.entities["alice"].secret, GOOD);
}

#[test]
fn mismatched_confirmation_changes_nothing() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .answering(&[NEW, "mismatch-2"]);
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], UPDATE),
        PamCode::AuthtokErr
    );
    assert_eq!(host.shown, vec!["Sorry, passwords do not match."]);
    assert!(!na.calls.iter().any(|c| c.starts_with("ChangeSecret")));
    // PAM_SILENT: nothing shown.
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .answering(&[NEW, "mismatch-2"]);
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], UPDATE | flags::SILENT),
        PamCode::AuthtokErr
    );
    assert!(host.shown.is_empty());
}

#[test]
fn use_authtok_takes_the_new_password_from_an_earlier_module() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .with_item(TokenItem::Authtok, NEW);
    assert_eq!(
        chauthtok(&mut host, &mut na, &["use_authtok"], UPDATE),
        PamCode::Success
    );
    assert!(host.prompts.is_empty());
    assert_eq!(na.entities["alice"].secret, NEW);

    let mut host = FakeHost::new("bob").with_item(TokenItem::OldAuthtok, GOOD);
    assert_eq!(
        chauthtok(&mut host, &mut na, &["use_authtok"], UPDATE),
        PamCode::AuthtokErr
    );
    assert_eq!(na.entities["bob"].secret, GOOD);
}

#[test]
fn use_first_pass_takes_the_current_password_from_oldauthtok() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").with_item(TokenItem::OldAuthtok, GOOD);
    assert_eq!(
        chauthtok(&mut host, &mut na, &["use_first_pass"], PRELIM),
        PamCode::Success
    );
    assert!(host.prompts.is_empty());
    let mut host = FakeHost::new("alice");
    assert_eq!(
        chauthtok(&mut host, &mut na, &["use_first_pass"], PRELIM),
        PamCode::AuthtokRecoveryErr
    );
}

#[test]
fn password_change_edge_cases() {
    let mut na = FakeNetAuth::directory();
    // No phase flag.
    let mut host = FakeHost::new("alice");
    assert_eq!(chauthtok(&mut host, &mut na, &[], 0), PamCode::ServiceErr);
    // Empty new password.
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .answering(&["", ""]);
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], UPDATE),
        PamCode::AuthtokErr
    );
    // Unknown user with ignore_unknown_user: ignored in both phases, no prompt.
    for phase in [PRELIM, UPDATE] {
        let mut host = FakeHost::new("root").answering(&[GOOD, NEW, NEW]);
        assert_eq!(
            chauthtok(&mut host, &mut na, &["ignore_unknown_user"], phase),
            PamCode::Ignore
        );
        assert!(host.prompts.is_empty());
    }
    // Server down.
    let mut na = FakeNetAuth::directory().down();
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], PRELIM),
        PamCode::AuthinfoUnavail
    );
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .answering(&[NEW, NEW]);
    assert_eq!(
        chauthtok(&mut host, &mut na, &[], UPDATE),
        PamCode::AuthinfoUnavail
    );
}

// ---------------------------------------------------------------- no error path succeeds

#[test]
fn no_failure_ever_yields_success() {
    let failures = [
        BackendError::NotFound,
        BackendError::Rejected("no".into()),
        BackendError::Unavailable("down".into()),
        BackendError::Failed("internal".into()),
        BackendError::Misconfigured("bad pem".into()),
    ];
    struct Failing(BackendError);
    impl Backend for Failing {
        fn authenticate(&mut self, _: &str, _: &str) -> Result<(), BackendError> {
            Err(self.0.clone())
        }
        fn account(&mut self, _: &str, _: bool) -> Result<AccountInfo, BackendError> {
            Err(self.0.clone())
        }
        fn change_secret(&mut self, _: &str, _: &str, _: &str) -> Result<(), BackendError> {
            Err(self.0.clone())
        }
        fn cached_account(&mut self, _: &str) -> CacheAnswer {
            CacheAnswer::Absent
        }
        fn is_local_account(&mut self, _: &str) -> Result<bool, BackendError> {
            // Not local, so each failure above reaches the server paths.
            Ok(false)
        }
    }
    for failure in failures {
        for ignore in [false, true] {
            let args: Vec<String> = if ignore {
                vec!["ignore_unknown_user".into()]
            } else {
                vec![]
            };
            for (op, flags) in [
                (Op::Authenticate, 0),
                (Op::AcctMgmt, 0),
                (Op::Chauthtok, PRELIM),
                (Op::Chauthtok, UPDATE),
            ] {
                let mut host = FakeHost::new("alice")
                    .with_item(TokenItem::OldAuthtok, GOOD)
                    .answering(&[GOOD, NEW, NEW]);
                let failing = Failing(failure.clone());
                let code = run_with(op, &mut host, &args, flags, |_| {
                    Ok((PamSettings::default(), failing))
                });
                assert_ne!(code, PamCode::Success, "{op:?} {failure:?} ignore={ignore}");
            }
        }
    }
}

/// A host that reports PAM_SUCCESS or PAM_IGNORE as an error code must not
/// turn a failure into success, nor into an IGNORE that lets the rest of
/// the stack decide (an `optional pam_permit` would then admit).
#[test]
fn host_errors_claiming_success_or_ignore_are_still_failures() {
    struct OddError(FakeHost, PamCode);
    impl PamHost for OddError {
        fn user(&mut self) -> Result<String, PamCode> {
            Err(self.1)
        }
        fn service(&self) -> Option<String> {
            None
        }
        fn rhost(&self) -> Option<String> {
            None
        }
        fn token(&self, _: TokenItem) -> Result<Option<Secret>, PamCode> {
            Err(self.1)
        }
        fn set_token(&mut self, _: TokenItem, _: &str) -> Result<(), PamCode> {
            Err(self.1)
        }
        fn prompt_secret(&mut self, _: &str) -> Result<Secret, PamCode> {
            Err(self.1)
        }
        fn show_error(&mut self, _: &str) {}
        fn log(&mut self, level: LogLevel, message: &str) {
            self.0.log(level, message)
        }
    }
    let mut na = FakeNetAuth::directory();
    for claimed in [PamCode::Success, PamCode::Ignore] {
        let mut odd = OddError(FakeHost::new("x"), claimed);
        for (op, flags) in [
            (Op::Authenticate, 0),
            (Op::AcctMgmt, 0),
            (Op::Chauthtok, PRELIM),
            (Op::Chauthtok, UPDATE),
        ] {
            let code = run_with(op, &mut odd, &[], flags, |_| {
                Ok((PamSettings::default(), &mut na))
            });
            assert_eq!(code, PamCode::SystemErr, "{op:?} {claimed:?}");
        }
    }
}

#[test]
fn raw_codes_round_trip_and_unknown_codes_are_errors() {
    for code in [
        PamCode::Success,
        PamCode::ServiceErr,
        PamCode::PermDenied,
        PamCode::AuthErr,
        PamCode::AuthinfoUnavail,
        PamCode::UserUnknown,
        PamCode::ConvErr,
        PamCode::AuthtokErr,
        PamCode::Ignore,
    ] {
        assert_eq!(PamCode::from_raw(code.as_raw()), code);
    }
    assert_eq!(PamCode::from_raw(-1), PamCode::SystemErr);
    assert_eq!(PamCode::from_raw(999), PamCode::SystemErr);
}

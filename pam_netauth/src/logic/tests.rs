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
    items: HashMap<&'static str, Vec<u8>>,
    answers: VecDeque<Result<Vec<u8>, PamCode>>,
    prompts: Vec<String>,
    shown: Vec<String>,
    info: Vec<String>,
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
    fn answering(self, answers: &[&str]) -> FakeHost {
        let bytes: Vec<&[u8]> = answers.iter().map(|a| a.as_bytes()).collect();
        self.answering_bytes(&bytes)
    }
    fn answering_bytes(mut self, answers: &[&[u8]]) -> FakeHost {
        self.answers = answers.iter().map(|a| Ok(a.to_vec())).collect();
        self
    }
    fn with_item(self, item: TokenItem, value: &str) -> FakeHost {
        self.with_item_bytes(item, value.as_bytes())
    }
    fn with_item_bytes(mut self, item: TokenItem, value: &[u8]) -> FakeHost {
        self.items.insert(item_key(item), value.to_vec());
        self
    }
    fn item(&self, item: TokenItem) -> Option<&str> {
        self.items
            .get(item_key(item))
            .map(|v| std::str::from_utf8(v).expect("test items are text"))
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
    fn token(&self, item: TokenItem) -> Result<Option<RawSecret>, PamCode> {
        Ok(self.items.get(item_key(item)).cloned().map(RawSecret::new))
    }
    fn set_token(&mut self, item: TokenItem, value: &[u8]) -> Result<(), PamCode> {
        self.items.insert(item_key(item), value.to_vec());
        Ok(())
    }
    fn prompt_secret(&mut self, prompt: &str) -> Result<RawSecret, PamCode> {
        self.prompts.push(prompt.to_owned());
        self.answers
            .pop_front()
            .unwrap_or(Err(PamCode::ConvErr))
            .map(RawSecret::new)
    }
    fn show_error(&mut self, message: &str) {
        self.shown.push(message.to_owned());
    }
    fn show_info(&mut self, message: &str) {
        self.info.push(message.to_owned());
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
    /// Names the fake on-disk cache lists; `None`: the cache is unusable.
    listed: Option<Vec<String>>,
    /// Cached verifiers: user -> (password, wrong offline tries).
    verifiers: HashMap<String, (String, u32)>,
    /// Every offline check answers this instead, when set.
    offline_answer: Option<OfflineCheck>,
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
    /// alice, bob and carol (locked), all in the cache, as the refresh
    /// leaves them.
    fn directory() -> Self {
        FakeNetAuth::default()
            .local(Some(&["root", "daemon"]))
            .listing(Some(&["alice", "bob", "carol"]))
            .with("alice", GOOD, false, &["staff", "admins"])
            .with("bob", GOOD, false, &["staff"])
            .with("carol", GOOD, true, &["admins"])
    }
    /// An entity the cache does not list (yet).
    fn with_unlisted(self, id: &str, groups: &[&str]) -> Self {
        self.with(id, GOOD, false, groups)
    }
    fn listing(mut self, names: Option<&[&str]>) -> Self {
        self.listed = names.map(|n| n.iter().map(|s| s.to_string()).collect());
        self
    }
    fn list(mut self, name: &str) -> Self {
        if let Some(names) = &mut self.listed {
            names.push(name.to_owned());
        }
        self
    }
    fn remove(mut self, id: &str) -> Self {
        self.entities.remove(id);
        self
    }
    /// The fake cache's answer for `user`, as `run_with`'s listing.
    fn listing_of(&self, user: &str) -> Listing {
        match &self.listed {
            Some(names) if names.iter().any(|n| n == user) => Listing::Listed,
            Some(_) => Listing::NotListed,
            None => Listing::Unusable("/var/lib/netauth/nss.cache: no such file".into()),
        }
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
    fn has_verifier(&mut self, user: &str) -> bool {
        self.verifiers.contains_key(user)
    }
    fn offline_check(&mut self, user: &str, secret: &str, policy: &OfflinePolicy) -> OfflineCheck {
        if let Some(answer) = &self.offline_answer {
            return answer.clone();
        }
        match self.verifiers.get_mut(user) {
            None => OfflineCheck::NoVerifier,
            Some((_, failed))
                if policy.failed_attempts > 0 && *failed >= policy.failed_attempts =>
            {
                OfflineCheck::LockedOut {
                    failed: *failed,
                    retry_in_s: 90,
                }
            }
            Some((password, failed)) if password == secret => {
                *failed = 0;
                OfflineCheck::Accepted { age_s: 60 }
            }
            Some((_, failed)) => {
                *failed += 1;
                OfflineCheck::Wrong { failed: *failed }
            }
        }
    }
    fn remember_secret(&mut self, user: &str, secret: &str) -> Result<(), String> {
        self.verifiers
            .insert(user.to_owned(), (secret.to_owned(), 0));
        Ok(())
    }
    fn forget_secret(&mut self, user: &str) -> Result<(), String> {
        self.verifiers.remove(user);
        Ok(())
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
    let listing = backend.listing_of(host.user.as_deref().unwrap_or(""));
    let code = run_with(
        op,
        host,
        &args,
        flags,
        |_| listing,
        |_| Ok((settings, &mut *backend)),
    );
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
    fn has_verifier(&mut self, user: &str) -> bool {
        (**self).has_verifier(user)
    }
    fn offline_check(&mut self, user: &str, secret: &str, policy: &OfflinePolicy) -> OfflineCheck {
        (**self).offline_check(user, secret, policy)
    }
    fn remember_secret(&mut self, user: &str, secret: &str) -> Result<(), String> {
        (**self).remember_secret(user, secret)
    }
    fn forget_secret(&mut self, user: &str) -> Result<(), String> {
        (**self).forget_secret(user)
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
    // zed: listed in the cache, deleted from the server since.
    for (user, password) in [("alice", "wrong-one"), ("carol", GOOD), ("zed", GOOD)] {
        for args in [&[][..], &["ignore_unknown_user"][..]] {
            let mut host = FakeHost::new(user).answering(&[password]);
            let mut na = FakeNetAuth::directory().list("zed");
            assert_eq!(auth(&mut host, &mut na, args), PamCode::AuthErr, "{user}");
        }
    }
    // Asking the server about names the cache does not list: refused.
    let mut host = FakeHost::new("zed").answering(&[GOOD]);
    let mut na = FakeNetAuth::directory();
    assert_eq!(
        auth(&mut host, &mut na, &["uncached_users=ask"]),
        PamCode::AuthErr
    );
    assert_eq!(na.calls, vec!["AuthEntity zed"]);
}

/// A user the cache does not list is not NetAuth's: PAM_IGNORE in every
/// phase, nothing prompted, nothing sent, the configuration not even read.
#[test]
fn users_the_cache_does_not_list_are_left_to_the_other_modules() {
    // dave exists on the server but the cache does not list him (yet):
    // for this host he is not a NetAuth user until the refresh serves him.
    let mut na = FakeNetAuth::directory().with_unlisted("dave", &[]);
    for user in ["sssuser", "dave"] {
        for args in [
            &[][..],
            &["ignore_unknown_user"][..],
            &["use_first_pass"][..],
        ] {
            for (op, flags) in [
                (Op::Authenticate, 0),
                (Op::AcctMgmt, 0),
                (Op::Chauthtok, PRELIM),
                (Op::Chauthtok, UPDATE),
            ] {
                let mut host = FakeHost::new(user)
                    .with_item(TokenItem::Authtok, GOOD)
                    .answering(&[GOOD, NEW, NEW]);
                let argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
                let code = run_with(
                    op,
                    &mut host,
                    &argv,
                    flags,
                    |_| Listing::NotListed,
                    |_| Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into()),
                );
                assert_eq!(code, PamCode::Ignore, "{user} {op:?} {args:?}");
                assert!(host.prompts.is_empty());
                assert!(host.decision().contains("not in the NetAuth cache"));
            }
        }
        // The same through the fake backend: no call reaches it.
        let mut host = FakeHost::new(user).answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Ignore);
        assert_eq!(
            account(
                user,
                &mut na,
                &["ignore_unknown_user"],
                PamSettings::default()
            ),
            PamCode::Ignore
        );
    }
    assert!(na.calls.is_empty(), "{:?}", na.calls);

    // uncached_users=ask: the server is asked, as for any name.
    let mut host = FakeHost::new("dave").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["uncached_users=ask"]),
        PamCode::Success
    );
    assert_eq!(
        account(
            "dave",
            &mut na,
            &["uncached_users=ask"],
            PamSettings::default()
        ),
        PamCode::Success
    );
}

/// Without a usable cache NetAuth's users are unknown to NSS as well, and
/// whose user it is cannot be told: left to the other modules, with a
/// warning naming the problem; nothing is sent.
#[test]
fn an_unusable_cache_leaves_every_user_to_the_other_modules() {
    let mut na = FakeNetAuth::directory().listing(None);
    for user in ["alice", "sssuser"] {
        let mut host = FakeHost::new(user).answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Ignore);
        assert!(host.prompts.is_empty());
        let (level, line) = host.logs.last().unwrap();
        assert_eq!(*level, LogLevel::Warning);
        assert!(
            line.contains("cache unusable") && line.contains("no such file"),
            "{line}"
        );
        assert_eq!(
            account(
                user,
                &mut na,
                &["ignore_unknown_user"],
                PamSettings::default()
            ),
            PamCode::Ignore
        );
    }
    assert!(na.calls.is_empty(), "{:?}", na.calls);
    // uncached_users=ask: the server decides.
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["uncached_users=ask"]),
        PamCode::Success
    );
}

/// A user the cache lists (so NSS serves it) whose entity the server no
/// longer knows was deleted: refused in `account`, with or without
/// `ignore_unknown_user` (the shipped profile's option), as firmly as a lock.
#[test]
fn a_deleted_entity_still_in_the_cache_is_refused_in_account() {
    let mut na = FakeNetAuth::directory().remove("bob");
    for args in [
        &[][..],
        &["ignore_unknown_user"][..],
        &["uncached_users=ask", "ignore_unknown_user"][..],
    ] {
        let mut host = FakeHost::new("bob");
        let code = call(
            Op::AcctMgmt,
            &mut host,
            &mut na,
            args,
            0,
            PamSettings::default(),
        );
        assert_eq!(code, PamCode::PermDenied, "{args:?}");
        assert!(host.decision().contains("deleted"), "{}", host.decision());
    }
    // Not a password prompt's worth either, with ignore_unknown_user.
    let mut host = FakeHost::new("bob").answering(&[GOOD]);
    assert_eq!(
        auth(
            &mut host,
            &mut na,
            &["uncached_users=ask", "ignore_unknown_user"]
        ),
        PamCode::AuthErr
    );
}

/// NetAuth secrets are text: a password that is not UTF-8 (or longer than
/// 4 KiB) is refused without asking the server, never converted lossily
/// (which would let `pw\xfe\xfe` open an account whose secret is what
/// `pw\xff\xff` became).
#[test]
fn passwords_that_are_not_utf8_or_too_long_are_refused_without_asking_the_server() {
    let collapsed = "pw\u{FFFD}\u{FFFD}";
    let mut na = FakeNetAuth::directory()
        .with("dave", collapsed, false, &[])
        .list("dave");
    let too_long = "a".repeat(MAX_PASSWORD_BYTES + 1);
    for bad in [
        &b"pw\xfe\xfe"[..],
        b"pw\x80\x80",
        b"pw\xff\xff",
        too_long.as_bytes(),
    ] {
        let mut host = FakeHost::new("dave").answering_bytes(&[bad]);
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::AuthErr);
        assert!(
            host.decision().contains("without asking the server"),
            "{}",
            host.decision()
        );
        // Handed on as typed: a later module may take such bytes.
        assert_eq!(host.items.get("authtok").map(Vec::as_slice), Some(bad));
        let mut host = FakeHost::new("dave").with_item_bytes(TokenItem::Authtok, bad);
        assert_eq!(
            auth(&mut host, &mut na, &["use_first_pass"]),
            PamCode::AuthErr
        );
    }
    assert!(na.calls.is_empty(), "{:?}", na.calls);
    // The longest accepted password and the collapsed text itself do reach it.
    let longest = "b".repeat(MAX_PASSWORD_BYTES);
    let mut na = na.with("erin", &longest, false, &[]).list("erin");
    let mut host = FakeHost::new("erin").answering(&[&longest]);
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Success);
    let mut host = FakeHost::new("dave").answering(&[collapsed]);
    assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Success);
}

#[test]
fn new_passwords_that_are_not_utf8_or_too_long_are_authtok_err() {
    let mut na = FakeNetAuth::directory();
    let too_long = "n".repeat(MAX_PASSWORD_BYTES + 1);
    for bad in [&b"pw\xff\xff"[..], too_long.as_bytes()] {
        let mut host = FakeHost::new("alice")
            .with_item(TokenItem::OldAuthtok, GOOD)
            .answering_bytes(&[bad, bad]);
        assert_eq!(
            chauthtok(&mut host, &mut na, &[], UPDATE),
            PamCode::AuthtokErr
        );
        assert!(host.decision().contains("without asking the server"));
        assert_eq!(host.shown.len(), 1);
        let mut host = FakeHost::new("alice")
            .with_item(TokenItem::OldAuthtok, GOOD)
            .with_item_bytes(TokenItem::Authtok, bad);
        assert_eq!(
            chauthtok(&mut host, &mut na, &["use_authtok"], UPDATE),
            PamCode::AuthtokErr
        );
        // The current password: refused in the preliminary check.
        let mut host = FakeHost::new("alice").answering_bytes(&[bad]);
        assert_eq!(chauthtok(&mut host, &mut na, &[], PRELIM), PamCode::AuthErr);
        assert_eq!(host.item(TokenItem::OldAuthtok), None);
    }
    assert!(na.calls.is_empty(), "{:?}", na.calls);
    assert_eq!(na.entities["alice"].secret, GOOD);
}

/// try_first_pass: the earlier module's password refused, then ours
/// accepted: both are logged, the refusal as its own line.
#[test]
fn a_refused_password_before_the_retry_is_logged() {
    let mut na = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::Authtok, "wrong-one")
        .answering(&[GOOD]);
    assert_eq!(
        auth(&mut host, &mut na, &["try_first_pass"]),
        PamCode::Success
    );
    assert_eq!(host.logs.len(), 2, "{:?}", host.logs);
    let (level, first) = &host.logs[0];
    assert_eq!(*level, LogLevel::Notice);
    assert!(
        first.starts_with(
            "auth user=\"alice\" service=\"sshd\" rhost=\"192.0.2.7\" attempt=PAM_AUTH_ERR"
        ),
        "{first}"
    );
    assert!(first.contains("server refused"), "{first}");
    assert!(host.decision().contains("outcome=PAM_SUCCESS"));
    assert_eq!(na.calls, vec!["AuthEntity alice", "AuthEntity alice"]);
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
        auth(
            &mut host,
            &mut na,
            &["uncached_users=ask", "ignore_unknown_user"]
        ),
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
    // A name the cache does not list, with the server asked about it: the
    // existence check fails before anything is prompted.
    let mut host = FakeHost::new("mallory").answering(&[GOOD]);
    assert_eq!(
        auth(
            &mut host,
            &mut na,
            &["uncached_users=ask", "ignore_unknown_user"]
        ),
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
    // Listed too, as in a cache written before the local account existed.
    let mut na = FakeNetAuth::directory()
        .with("root", GOOD, false, &["admins"])
        .list("root");
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
        for (args, expected) in [
            (&[][..], PamCode::Ignore),
            (&["ignore_unknown_user"][..], PamCode::Ignore),
            (&["uncached_users=ask"][..], PamCode::AuthErr),
            (
                &["uncached_users=ask", "ignore_unknown_user"][..],
                PamCode::Ignore,
            ),
        ] {
            let mut host = FakeHost::new(name).answering(&[GOOD]);
            assert_eq!(
                auth(&mut host, &mut na, args),
                expected,
                "{name:?} {args:?}"
            );
            assert!(host.prompts.is_empty());
        }
        let mut host = FakeHost::new(name).answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut na, &[]), PamCode::Ignore);
        // The decision line escapes the name: one line, no raw control bytes.
        assert!(!host.decision().contains('\n') && !host.decision().contains('\u{7}'));
    }
    assert!(na.calls.is_empty());
}

#[test]
fn bad_configuration_is_service_err_naming_the_problem_without_prompting() {
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let args = vec!["config=/nowhere/config.toml".to_string()];
    let code = run_with(
        Op::Authenticate,
        &mut host,
        &args,
        0,
        |_| Listing::Listed,
        |_| Err::<(PamSettings, FakeNetAuth), _>("key core.server: missing".to_string()),
    );
    assert_eq!(code, PamCode::ServiceErr);
    assert!(host.prompts.is_empty());
    let line = host.decision();
    assert!(
        line.contains("/nowhere/config.toml") && line.contains("core.server"),
        "{line}"
    );
    // The line names who and where, as every decision line does.
    assert!(
        line.starts_with("auth user=\"alice\" service=\"sshd\" rhost=\"192.0.2.7\""),
        "{line}"
    );
    assert_eq!(host.logs.last().map(|l| l.0), Some(LogLevel::Err));
}

/// A broken NetAuth configuration concerns NetAuth's users only: a user the
/// cache does not list is ignored all the same, so the account line of the
/// stack (default=bad) does not lock out another directory's users.
#[test]
fn bad_configuration_leaves_users_the_cache_does_not_list_alone() {
    for op in [Op::Authenticate, Op::AcctMgmt, Op::Chauthtok] {
        let mut host = FakeHost::new("sssuser").answering(&[GOOD]);
        let code = run_with(
            op,
            &mut host,
            &[],
            PRELIM,
            |_| Listing::NotListed,
            |_| Err::<(PamSettings, FakeNetAuth), _>("key core.server: missing".to_string()),
        );
        assert_eq!(code, PamCode::Ignore, "{op:?}");
        assert!(host.prompts.is_empty());
        assert!(host.decision().contains("user=\"sssuser\""));
    }
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
    let code = run_with(
        Op::Setcred,
        &mut host,
        &[],
        0,
        |_| panic!("the cache must not be read"),
        |_| Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into()),
    );
    assert_eq!(code, PamCode::Success);
    assert!(host.decision().contains("user=\"alice\""));
}

fn session(op: Op, user: &str, na: &mut FakeNetAuth, args: &[&str]) -> FakeHost {
    let mut host = FakeHost::new(user);
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let listing = na.listing_of(user);
    let code = run_with(
        op,
        &mut host,
        &args,
        0,
        |_| listing,
        |_| Ok((PamSettings::default(), &mut *na)),
    );
    assert_eq!(code, PamCode::Success, "{op:?} {user}");
    host
}

/// Sessions of NetAuth's users are logged; those of local users and of
/// users the cache does not list leave no line at all; nothing is sent.
#[test]
fn sessions_are_logged_for_netauth_users_only() {
    let mut na = FakeNetAuth::directory()
        .with("root", GOOD, false, &[])
        .list("root");
    for op in [Op::OpenSession, Op::CloseSession] {
        let host = session(op, "alice", &mut na, &[]);
        assert_eq!(host.logs.len(), 1, "{:?}", host.logs);
        assert!(host.decision().contains("session-") && host.decision().contains("alice"));
        for user in ["root", "daemon", "sssuser", "not a name"] {
            let host = session(op, user, &mut na, &[]);
            assert!(host.logs.is_empty(), "{user}: {:?}", host.logs);
        }
        // Asking the server about uncached users: logged unless local.
        let host = session(op, "sssuser", &mut na, &["uncached_users=ask"]);
        assert!(host.decision().contains("sssuser"));
        let host = session(op, "root", &mut na, &["uncached_users=ask"]);
        assert!(host.logs.is_empty(), "{:?}", host.logs);

        let mut host = FakeHost {
            user: None,
            ..FakeHost::new("x")
        };
        let code = run_with(
            op,
            &mut host,
            &[],
            0,
            |_| Listing::Listed,
            |_| Err::<(PamSettings, FakeNetAuth), _>("must not be loaded".into()),
        );
        assert_eq!(code, PamCode::SessionErr);

        // A broken configuration does not fail a session; it is said.
        let mut host = FakeHost::new("alice");
        let code = run_with(
            op,
            &mut host,
            &[],
            0,
            |_| Listing::Listed,
            |_| Err::<(PamSettings, FakeNetAuth), _>("key core.server: missing".into()),
        );
        assert_eq!(code, PamCode::Success);
        assert!(host.decision().contains("core.server"));
    }
    assert!(na.calls.is_empty(), "{:?}", na.calls);
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
    // zed: not in the cache; the server is asked only with uncached_users=ask.
    assert_eq!(
        account("zed", &mut na, &[], PamSettings::default()),
        PamCode::Ignore
    );
    assert_eq!(
        account(
            "zed",
            &mut na,
            &["uncached_users=ask"],
            PamSettings::default()
        ),
        PamCode::UserUnknown
    );
    assert_eq!(
        account(
            "zed",
            &mut na,
            &["uncached_users=ask", "ignore_unknown_user"],
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
    let mut na = FakeNetAuth::directory()
        .with("dave", GOOD, false, &["contractors"])
        .list("dave");
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
        fn has_verifier(&mut self, _: &str) -> bool {
            true
        }
        // A verifier that never matches: an outage alone admits nobody.
        fn offline_check(&mut self, _: &str, _: &str, _: &OfflinePolicy) -> OfflineCheck {
            OfflineCheck::Wrong { failed: 1 }
        }
        fn remember_secret(&mut self, _: &str, _: &str) -> Result<(), String> {
            Ok(())
        }
        fn forget_secret(&mut self, _: &str) -> Result<(), String> {
            Ok(())
        }
    }
    let listings = [
        Listing::Listed,
        Listing::NotListed,
        Listing::Unusable("gone".into()),
    ];
    for failure in failures {
        for args in [
            &[][..],
            &["ignore_unknown_user"][..],
            &["uncached_users=ask"][..],
            &["uncached_users=ask", "ignore_unknown_user"][..],
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            for listing in &listings {
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
                    let code = run_with(
                        op,
                        &mut host,
                        &args,
                        flags,
                        |_| listing.clone(),
                        |_| Ok((PamSettings::default(), failing)),
                    );
                    assert_ne!(
                        code,
                        PamCode::Success,
                        "{op:?} {failure:?} {args:?} {listing:?}"
                    );
                }
            }
        }
    }
}

/// A host that reports PAM_SUCCESS or PAM_IGNORE as an error code must not
/// turn a failure into success, nor into an IGNORE that lets the rest of
/// the stack decide (an `optional pam_permit` would then admit).
#[test]
fn host_errors_claiming_success_or_ignore_are_still_failures() {
    /// Fails every call with the code; the user name too unless `.2`.
    struct OddError(FakeHost, PamCode, bool);
    impl PamHost for OddError {
        fn user(&mut self) -> Result<String, PamCode> {
            if self.2 {
                Ok("alice".into())
            } else {
                Err(self.1)
            }
        }
        fn service(&self) -> Option<String> {
            None
        }
        fn rhost(&self) -> Option<String> {
            None
        }
        fn token(&self, _: TokenItem) -> Result<Option<RawSecret>, PamCode> {
            Err(self.1)
        }
        fn set_token(&mut self, _: TokenItem, _: &[u8]) -> Result<(), PamCode> {
            Err(self.1)
        }
        fn prompt_secret(&mut self, _: &str) -> Result<RawSecret, PamCode> {
            Err(self.1)
        }
        fn show_error(&mut self, _: &str) {}
        fn show_info(&mut self, _: &str) {}
        fn log(&mut self, level: LogLevel, message: &str) {
            self.0.log(level, message)
        }
    }
    let mut na = FakeNetAuth::directory();
    for claimed in [PamCode::Success, PamCode::Ignore] {
        let mut odd = OddError(FakeHost::new("x"), claimed, false);
        for (op, flags) in [
            (Op::Authenticate, 0),
            (Op::AcctMgmt, 0),
            (Op::Chauthtok, PRELIM),
            (Op::Chauthtok, UPDATE),
        ] {
            let code = run_with(
                op,
                &mut odd,
                &[],
                flags,
                |_| Listing::Listed,
                |_| Ok((PamSettings::default(), &mut na)),
            );
            assert_eq!(code, PamCode::SystemErr, "{op:?} {claimed:?}");
        }
        // The user is known, the password items and the conversation fail.
        let mut odd = OddError(FakeHost::new("x"), claimed, true);
        for (op, flags, args) in [
            (Op::Authenticate, 0, &[][..]),
            (Op::Authenticate, 0, &["use_first_pass"][..]),
            (Op::Chauthtok, PRELIM, &[][..]),
            (Op::Chauthtok, UPDATE, &[][..]),
        ] {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            let code = run_with(
                op,
                &mut odd,
                &args,
                flags,
                |_| Listing::Listed,
                |_| Ok((PamSettings::default(), &mut na)),
            );
            assert_eq!(code, PamCode::SystemErr, "{op:?} {claimed:?} {args:?}");
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

// ----- cached credentials -----

fn offline_settings() -> PamSettings {
    PamSettings::default()
}

#[test]
fn an_online_login_stores_a_verifier_and_an_outage_uses_it_with_a_message() {
    let mut backend = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::Success);
    assert_eq!(
        backend.verifiers.get("alice").map(|v| v.0.as_str()),
        Some(GOOD)
    );
    assert!(host.info.is_empty(), "{:?}", host.info);

    let mut backend = FakeNetAuth {
        down: true,
        ..backend
    };
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::Success);
    assert_eq!(host.info, [flow::OFFLINE_LOGIN_MESSAGE]);
    assert!(
        host.decision().contains("offline: password matches"),
        "{}",
        host.decision()
    );
    // Under PAM_SILENT the user is not told.
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let code = call(
        Op::Authenticate,
        &mut host,
        &mut backend,
        &[],
        flags::SILENT,
        offline_settings(),
    );
    assert_eq!(code, PamCode::Success);
    assert!(host.info.is_empty());

    let mut host = FakeHost::new("alice").answering(&["wrong"]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::AuthErr);
    assert!(host.info.is_empty());
    // No verifier: as before, AUTHINFO_UNAVAIL.
    let mut host = FakeHost::new("bob").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::AuthinfoUnavail);
}

#[test]
fn a_verifier_is_never_used_after_the_server_answered() {
    let mut backend = FakeNetAuth::directory();
    backend
        .verifiers
        .insert("alice".into(), ("old-password".into(), 0));
    // The server refuses the old password: no offline success with it.
    let mut host = FakeHost::new("alice").answering(&["old-password"]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::AuthErr);
    // An answer other than "refused" (INTERNAL) is not an outage either.
    let mut backend = FakeNetAuth::directory();
    backend.verifiers.insert("alice".into(), (GOOD.into(), 0));
    struct Internal(FakeNetAuth);
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    backend.offline_answer = Some(OfflineCheck::Accepted { age_s: 1 });
    let failing = Internal(backend);
    impl Backend for Internal {
        fn authenticate(&mut self, _: &str, _: &str) -> Result<(), BackendError> {
            Err(BackendError::Failed("internal".into()))
        }
        fn account(&mut self, u: &str, g: bool) -> Result<AccountInfo, BackendError> {
            self.0.account(u, g)
        }
        fn change_secret(&mut self, u: &str, o: &str, n: &str) -> Result<(), BackendError> {
            self.0.change_secret(u, o, n)
        }
        fn cached_account(&mut self, u: &str) -> CacheAnswer {
            self.0.cached_account(u)
        }
        fn is_local_account(&mut self, u: &str) -> Result<bool, BackendError> {
            self.0.is_local_account(u)
        }
        fn has_verifier(&mut self, u: &str) -> bool {
            self.0.has_verifier(u)
        }
        fn offline_check(&mut self, u: &str, s: &str, p: &OfflinePolicy) -> OfflineCheck {
            self.0.offline_check(u, s, p)
        }
        fn remember_secret(&mut self, u: &str, s: &str) -> Result<(), String> {
            self.0.remember_secret(u, s)
        }
        fn forget_secret(&mut self, u: &str) -> Result<(), String> {
            self.0.forget_secret(u)
        }
    }
    let args: Vec<String> = Vec::new();
    let code = run_with(
        Op::Authenticate,
        &mut host,
        &args,
        0,
        |_| Listing::Listed,
        |_| Ok((PamSettings::default(), failing)),
    );
    assert_eq!(code, PamCode::AuthinfoUnavail);
}

#[test]
fn locked_or_unknown_online_deletes_the_verifier_a_wrong_password_does_not() {
    let mut backend = FakeNetAuth::directory();
    backend.verifiers.insert("alice".into(), (GOOD.into(), 0));
    backend.verifiers.insert("carol".into(), (GOOD.into(), 0));
    backend.verifiers.insert("bob".into(), (GOOD.into(), 0));
    let mut host = FakeHost::new("alice").answering(&["wrong"]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::AuthErr);
    assert!(backend.verifiers.contains_key("alice"));
    // carol is locked: refused, and her verifier goes.
    let mut host = FakeHost::new("carol").answering(&[GOOD]);
    assert_eq!(auth(&mut host, &mut backend, &[]), PamCode::AuthErr);
    assert!(!backend.verifiers.contains_key("carol"));
    assert!(
        host.log_text().contains("cached credentials deleted"),
        "{}",
        host.log_text()
    );
    // bob was deleted from the directory: the account step removes it.
    let mut backend = backend.remove("bob");
    let mut host = FakeHost::new("bob");
    let code = call(
        Op::AcctMgmt,
        &mut host,
        &mut backend,
        &[],
        0,
        offline_settings(),
    );
    assert_eq!(code, PamCode::PermDenied);
    assert!(!backend.verifiers.contains_key("bob"));
    // A locked entity seen by the account step: gone too.
    backend.verifiers.insert("carol".into(), (GOOD.into(), 0));
    let mut host = FakeHost::new("carol");
    let code = call(
        Op::AcctMgmt,
        &mut host,
        &mut backend,
        &[],
        0,
        offline_settings(),
    );
    assert_eq!(code, PamCode::PermDenied);
    assert!(!backend.verifiers.contains_key("carol"));
}

#[test]
fn offline_lockout_max_age_unusable_and_switch_off() {
    let mut backend = FakeNetAuth::directory().down();
    backend.verifiers.insert("alice".into(), (GOOD.into(), 0));
    let settings = PamSettings {
        offline_failed_attempts: 2,
        ..offline_settings()
    };
    for _ in 0..2 {
        let mut host = FakeHost::new("alice").answering(&["wrong"]);
        let code = call(
            Op::Authenticate,
            &mut host,
            &mut backend,
            &[],
            0,
            settings.clone(),
        );
        assert_eq!(code, PamCode::AuthErr);
    }
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let code = call(
        Op::Authenticate,
        &mut host,
        &mut backend,
        &[],
        0,
        settings.clone(),
    );
    assert_eq!(code, PamCode::PermDenied);
    assert!(
        host.shown
            .iter()
            .any(|m| m.contains("try again in 2 minute")),
        "{:?}",
        host.shown
    );
    assert!(host.info.is_empty());

    for (answer, code) in [
        (
            OfflineCheck::TooOld {
                age_s: 8 * 86_400,
                max_s: 7 * 86_400,
            },
            PamCode::AuthinfoUnavail,
        ),
        (
            OfflineCheck::Unusable("untrusted".into()),
            PamCode::AuthinfoUnavail,
        ),
    ] {
        backend.offline_answer = Some(answer);
        let mut host = FakeHost::new("alice").answering(&[GOOD]);
        assert_eq!(auth(&mut host, &mut backend, &[]), code);
        assert!(host.info.is_empty());
    }
    backend.offline_answer = Some(OfflineCheck::Accepted { age_s: 1 });
    let off = PamSettings {
        offline_login: false,
        ..offline_settings()
    };
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let code = call(
        Op::Authenticate,
        &mut host,
        &mut backend,
        &[],
        0,
        off.clone(),
    );
    assert_eq!(code, PamCode::AuthinfoUnavail);
    assert!(
        host.decision().contains("offline logins are off"),
        "{}",
        host.decision()
    );
    // Off: an online login stores nothing either.
    let mut backend = FakeNetAuth::directory();
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let code = call(Op::Authenticate, &mut host, &mut backend, &[], 0, off);
    assert_eq!(code, PamCode::Success);
    assert!(backend.verifiers.is_empty());
}

#[test]
fn password_changes_are_refused_offline_with_a_message_and_replace_the_verifier_online() {
    let mut backend = FakeNetAuth::directory().down();
    backend.verifiers.insert("alice".into(), (GOOD.into(), 0));
    let mut host = FakeHost::new("alice").answering(&[GOOD]);
    let code = call(
        Op::Chauthtok,
        &mut host,
        &mut backend,
        &[],
        PRELIM,
        offline_settings(),
    );
    assert_eq!(code, PamCode::AuthinfoUnavail);
    assert_eq!(host.shown, [flow::OFFLINE_CHANGE_MESSAGE]);

    let mut backend = FakeNetAuth {
        down: false,
        ..backend
    };
    let mut host = FakeHost::new("alice")
        .with_item(TokenItem::OldAuthtok, GOOD)
        .answering(&[NEW, NEW]);
    let code = call(
        Op::Chauthtok,
        &mut host,
        &mut backend,
        &[],
        UPDATE,
        offline_settings(),
    );
    assert_eq!(code, PamCode::Success);
    assert_eq!(
        backend.verifiers.get("alice").map(|v| v.0.as_str()),
        Some(NEW)
    );
}

//! The auth, account, password and session flows.

use super::{
    flags, Backend, BackendError, CacheAnswer, Listing, LogLevel, ModuleArgs, OfflineCheck,
    OfflinePolicy, PamCode, PamHost, PamSettings, PassSource, RawSecret, Secret, TokenItem,
    UncachedUsers, MAX_PASSWORD_BYTES,
};

/// What the user is told after an offline login.
pub const OFFLINE_LOGIN_MESSAGE: &str =
    "authenticated with cached credentials (NetAuth unreachable)";
/// What the user is told when a password change meets an outage.
pub const OFFLINE_CHANGE_MESSAGE: &str =
    "Password changes need the NetAuth server, which cannot be reached now. Try again later.";

/// The PAM function being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Authenticate,
    Setcred,
    AcctMgmt,
    Chauthtok,
    OpenSession,
    CloseSession,
}

impl Op {
    fn label(self) -> &'static str {
        match self {
            Op::Authenticate => "auth",
            Op::Setcred => "setcred",
            Op::AcctMgmt => "account",
            Op::Chauthtok => "password",
            Op::OpenSession => "session-open",
            Op::CloseSession => "session-close",
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Op::OpenSession | Op::CloseSession)
    }
}

/// A decision and why; the reason goes to syslog and never holds a secret.
struct Verdict {
    code: PamCode,
    reason: String,
    /// Logged at this level instead of the one the code implies.
    level: Option<LogLevel>,
    /// Not logged at all (a session of a user that is not NetAuth's).
    silent: bool,
}

fn verdict(code: PamCode, reason: impl Into<String>) -> Verdict {
    Verdict {
        code,
        reason: reason.into(),
        level: None,
        silent: false,
    }
}

impl Verdict {
    fn at(mut self, level: LogLevel) -> Verdict {
        self.level = Some(level);
        self
    }
}

/// Success without a log line: the session step of a user that is not ours.
fn unlogged_session() -> Verdict {
    Verdict {
        silent: true,
        ..verdict(PamCode::Success, "")
    }
}

/// A libpam call failed; its code is passed on, but never as success nor
/// as IGNORE (which would leave the decision to the rest of the stack).
fn host_failure(code: PamCode, reason: &str) -> Verdict {
    let code = match code {
        PamCode::Success | PamCode::Ignore => PamCode::SystemErr,
        code => code,
    };
    verdict(code, reason)
}

fn misconfigured(why: String) -> Verdict {
    verdict(PamCode::ServiceErr, format!("configuration problem: {why}"))
}

/// A password as text, or why it is refused: NetAuth secrets are UTF-8
/// strings, and a lossy conversion would let different byte strings (every
/// invalid sequence becomes U+FFFD) open the same account.
fn password_text(raw: RawSecret) -> Result<Secret, &'static str> {
    let mut raw = raw;
    if raw.len() > MAX_PASSWORD_BYTES {
        return Err("longer than 4096 bytes");
    }
    // Moves the bytes (no copy); on error they come back to be wiped.
    match String::from_utf8(std::mem::take(&mut *raw)) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) => {
            drop(RawSecret::new(e.into_bytes()));
            Err("not valid UTF-8")
        }
    }
}

/// Serves one PAM call with the real NetAuth backend built from the config
/// file named by the arguments, and the on-disk cache at its fixed path.
pub fn run<H: PamHost>(op: Op, host: &mut H, raw_args: &[String], flags: i32) -> PamCode {
    run_with(
        op,
        host,
        raw_args,
        flags,
        super::cache_listing,
        super::NetAuthBackend::load,
    )
}

/// Serves one PAM call. `listing` tells whether the cache lists a user
/// (asked before the configuration is read: a user that is not NetAuth's is
/// left alone even when NetAuth's configuration is broken); `load` reads
/// the configuration and builds the backend (tests pass fakes for both). A
/// `load` error is a configuration problem: PAM_SERVICE_ERR with the error
/// text in the log.
pub fn run_with<H, B, L, F>(
    op: Op,
    host: &mut H,
    raw_args: &[String],
    flags: i32,
    listing: L,
    load: F,
) -> PamCode
where
    H: PamHost,
    B: Backend,
    L: FnOnce(&str) -> Listing,
    F: FnOnce(&ModuleArgs) -> Result<(PamSettings, B), String>,
{
    let args = ModuleArgs::parse(raw_args);
    for unknown in &args.unknown {
        host.log(
            LogLevel::Warning,
            &format!("ignoring unknown module argument {unknown:?}"),
        );
    }
    if args.debug {
        host.log(LogLevel::Debug, &format!("module arguments: {args:?}"));
    }
    let service = host.service().unwrap_or_default();
    let rhost = host.rhost().unwrap_or_default();
    let op_label = match (op, flags & flags::PRELIM_CHECK != 0) {
        (Op::Chauthtok, true) => "password-prelim",
        (Op::Chauthtok, false) => "password-update",
        _ => op.label(),
    };
    let line = LineStart {
        op: op_label,
        service: &service,
        rhost: &rhost,
    };

    let mut user = None;
    let outcome = match (op, host.user()) {
        // Nothing to do, and nothing that could fail: no config, no network.
        (Op::Setcred, name) => {
            user = name.ok();
            verdict(PamCode::Success, "nothing to set")
        }
        (op, Err(code)) if op.is_session() => verdict(
            PamCode::SessionErr,
            format!("cannot get the user name ({})", code.name()),
        ),
        (_, Err(code)) => host_failure(code, "cannot get the user name"),
        (op, Ok(name)) => {
            let outcome = serve(op, host, &args, flags, &line, &name, listing, load);
            user = Some(name);
            outcome
        }
    };
    if outcome.silent {
        return outcome.code;
    }

    let level = outcome.level.unwrap_or(match outcome.code {
        PamCode::Success | PamCode::Ignore => LogLevel::Info,
        PamCode::AuthErr | PamCode::PermDenied | PamCode::UserUnknown | PamCode::AuthtokErr => {
            LogLevel::Notice
        }
        PamCode::AuthinfoUnavail | PamCode::ConvErr | PamCode::TryAgain => LogLevel::Warning,
        _ => LogLevel::Err,
    });
    host.log(
        level,
        &format!(
            "{} outcome={} reason={:?}",
            line.with_user(user.as_deref().unwrap_or("")),
            outcome.code.name(),
            outcome.reason
        ),
    );
    outcome.code
}

/// What every line about one call starts with.
struct LineStart<'a> {
    op: &'a str,
    service: &'a str,
    rhost: &'a str,
}

impl LineStart<'_> {
    /// `{:?}` quotes and escapes names that come from outside.
    fn with_user(&self, user: &str) -> String {
        format!(
            "{} user={user:?} service={:?} rhost={:?}",
            self.op, self.service, self.rhost
        )
    }
}

/// Everything after the user name is known: is the user NetAuth's, the
/// configuration, then the flow of `op`.
#[allow(clippy::too_many_arguments)]
fn serve<H, B, L, F>(
    op: Op,
    host: &mut H,
    args: &ModuleArgs,
    flags: i32,
    line: &LineStart<'_>,
    user: &str,
    listing: L,
    load: F,
) -> Verdict
where
    H: PamHost,
    B: Backend,
    L: FnOnce(&str) -> Listing,
    F: FnOnce(&ModuleArgs) -> Result<(PamSettings, B), String>,
{
    let ask_server = args.uncached_users == UncachedUsers::Ask;
    if !plausible_entity_id(user) {
        return implausible_id(op, args, ask_server);
    }
    let listed = listing(user);
    if !ask_server {
        if let Some(left) = left_to_other_modules(op, &listed) {
            return left;
        }
    }
    let (settings, mut backend) = match load(args) {
        Ok(loaded) => loaded,
        Err(problem) => return configuration_problem(op, args, &problem),
    };
    let mut flow = Flow {
        host,
        backend: &mut backend,
        args,
        settings: &settings,
        flags,
        service: line.service,
        line,
        user,
        listed: listed == Listing::Listed,
    };
    let result = match op {
        Op::Authenticate => flow.authenticate(),
        Op::AcctMgmt => flow.account(),
        Op::Chauthtok => flow.chauthtok(),
        _ => flow.session(),
    };
    result.unwrap_or_else(|v| v)
}

/// A name no entity can have: never sent, never looked up.
fn implausible_id(op: Op, args: &ModuleArgs, ask_server: bool) -> Verdict {
    if op.is_session() {
        unlogged_session()
    } else if !ask_server || args.ignore_unknown_user {
        verdict(PamCode::Ignore, "not a possible NetAuth ID")
    } else {
        let code = match op {
            Op::Authenticate => PamCode::AuthErr,
            _ => PamCode::UserUnknown,
        };
        verdict(code, "not a possible NetAuth ID")
    }
}

/// With `uncached_users=ignore`: the verdict for a user the cache does not
/// list (or cannot tell about), `None` for a listed user.
fn left_to_other_modules(op: Op, listed: &Listing) -> Option<Verdict> {
    match listed {
        Listing::Listed => None,
        _ if op.is_session() => Some(unlogged_session()),
        Listing::NotListed => Some(verdict(
            PamCode::Ignore,
            "not in the NetAuth cache: not a NetAuth user, left to the other modules",
        )),
        // Without the cache NSS does not know NetAuth's users either;
        // whatever the other modules decide, they decide without us.
        Listing::Unusable(why) => Some(
            verdict(
                PamCode::Ignore,
                format!(
                    "cannot tell whether this is a NetAuth user, left to the other modules: cache unusable: {why}"
                ),
            )
            .at(LogLevel::Warning),
        ),
    }
}

/// A configuration that does not load: sessions are still logged, every
/// other operation is a service error.
fn configuration_problem(op: Op, args: &ModuleArgs, problem: &str) -> Verdict {
    if op.is_session() {
        verdict(
            PamCode::Success,
            format!(
                "logged only; configuration problem in {}: {problem}",
                args.config.display()
            ),
        )
        .at(LogLevel::Warning)
    } else {
        verdict(
            PamCode::ServiceErr,
            format!(
                "configuration problem in {}: {problem}",
                args.config.display()
            ),
        )
    }
}

/// A user name that can be a NetAuth ID; anything else is never sent.
/// U+FFFD stands for bytes that were not UTF-8 (the host converts the PAM
/// user lossily): sent on, many different user names would reach one entity.
fn plausible_entity_id(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == char::REPLACEMENT_CHARACTER)
}

struct Flow<'a, H, B> {
    host: &'a mut H,
    backend: &'a mut B,
    args: &'a ModuleArgs,
    settings: &'a PamSettings,
    flags: i32,
    service: &'a str,
    line: &'a LineStart<'a>,
    user: &'a str,
    /// The cache lists the user: a NetAuth user, whatever else happens.
    listed: bool,
}

type Step<T> = Result<T, Verdict>;

impl<H: PamHost, B: Backend> Flow<'_, H, B> {
    fn debug(&mut self, message: &str) {
        if self.args.debug {
            self.host.log(LogLevel::Debug, message);
        }
    }

    fn show_error(&mut self, message: &str) {
        if self.flags & flags::SILENT == 0 {
            self.host.show_error(message);
        }
    }

    fn show_info(&mut self, message: &str) {
        if self.flags & flags::SILENT == 0 {
            self.host.show_info(message);
        }
    }

    fn offline_policy(&self) -> OfflinePolicy {
        OfflinePolicy {
            max_age: self.settings.offline_login_max_age,
            failed_attempts: self.settings.offline_failed_attempts,
            failed_delay: self.settings.offline_failed_delay,
        }
    }

    /// After an online success: a new cached verifier of `secret`.
    fn remember(&mut self, secret: &str) {
        if !self.settings.offline_login {
            return;
        }
        if let Err(why) = self.backend.remember_secret(self.user, secret) {
            self.host.log(
                LogLevel::Warning,
                &format!("cannot store the cached credentials: {why}"),
            );
        }
    }

    /// The server says the entity is locked or gone: its cached verifier
    /// must not open the account during the next outage.
    fn forget(&mut self, because: &str) {
        match self.backend.forget_secret(self.user) {
            Ok(()) => self.host.log(
                LogLevel::Notice,
                &format!(
                    "{} cached credentials deleted: {because}",
                    self.line.with_user(self.user)
                ),
            ),
            Err(why) => self.host.log(
                LogLevel::Err,
                &format!("cannot delete the cached credentials ({because}): {why}"),
            ),
        }
    }

    /// After a refused password: when the user has a cached verifier, asks
    /// whether the entity is locked or unknown (the refusal looks the same
    /// for a wrong password) and deletes the verifier if so.
    fn forget_if_locked_or_unknown(&mut self) {
        if !self.backend.has_verifier(self.user) {
            return;
        }
        match self.backend.account(self.user, false) {
            Ok(info) if info.locked => self.forget("the server says the entity is locked"),
            Err(BackendError::NotFound) => self.forget("the server does not know the entity"),
            _ => {}
        }
    }

    /// No server could be reached (`why`): the cached verifier decides.
    fn offline_login(&mut self, password: &str, why: &str) -> Verdict {
        if !self.settings.offline_login {
            return verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; offline logins are off"),
            );
        }
        let policy = self.offline_policy();
        match self.backend.offline_check(self.user, password, &policy) {
            OfflineCheck::Accepted { age_s } => {
                self.show_info(OFFLINE_LOGIN_MESSAGE);
                verdict(
                    PamCode::Success,
                    format!(
                        "offline: password matches the cached credentials (last online login {age_s} s ago); {why}"
                    ),
                )
            }
            OfflineCheck::Wrong { failed } => verdict(
                PamCode::AuthErr,
                format!(
                    "offline: password does not match the cached credentials ({failed} wrong offline in a row); {why}"
                ),
            ),
            OfflineCheck::NoVerifier => verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; no cached credentials for this user"),
            ),
            OfflineCheck::TooOld { age_s, max_s } => verdict(
                PamCode::AuthinfoUnavail,
                format!(
                    "{why}; cached credentials refused: last online login {} days ago, more than offline_login_max_age_days = {}",
                    age_s / 86_400,
                    max_s / 86_400
                ),
            ),
            OfflineCheck::LockedOut { failed, retry_in_s } => {
                self.show_error(&format!(
                    "Too many wrong passwords while NetAuth is unreachable; try again in {} minute(s).",
                    retry_in_s.div_ceil(60)
                ));
                verdict(
                    PamCode::PermDenied,
                    format!(
                        "offline: refused without checking the password: {failed} wrong offline passwords, offline_failed_delay_s has {retry_in_s} s to go; {why}"
                    ),
                )
            }
            OfflineCheck::Unusable(problem) => verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; cached credentials unusable: {problem}"),
            ),
        }
    }

    /// A refusal that is not the call's outcome (the call goes on), logged
    /// so that every refused password leaves a line.
    fn log_refusal(&mut self, refusal: &Verdict, next: &str) {
        let line = format!(
            "{} attempt={} reason={:?}; {next}",
            self.line.with_user(self.user),
            refusal.code.name(),
            refusal.reason
        );
        self.host.log(LogLevel::Notice, &line);
    }

    /// A local account is never NetAuth's to decide, even when an entity
    /// has the same name: otherwise a NetAuth secret would open it (root).
    fn not_local(&mut self) -> Step<()> {
        match self.backend.is_local_account(self.user) {
            Ok(false) => Ok(()),
            Ok(true) => Err(verdict(
                PamCode::Ignore,
                "a local account: left to the local modules",
            )),
            Err(BackendError::Misconfigured(why)) => Err(misconfigured(why)),
            Err(other) => Err(misconfigured(format!(
                "cannot tell whether the user is local: {other:?}"
            ))),
        }
    }

    /// Whether `ignore_unknown_user` lets a name the server does not know
    /// pass as PAM_IGNORE: never for a user the cache lists (an entity that
    /// was deleted must be refused, at least as firmly as a locked one).
    fn ignores_unknown(&self) -> bool {
        self.args.ignore_unknown_user && !self.listed
    }

    /// With `ignore_unknown_user` (and `uncached_users=ask`): PAM_IGNORE for
    /// a name the server does not know, before anything is prompted or sent.
    fn skip_unknown(&mut self) -> Step<()> {
        if !self.ignores_unknown() {
            return Ok(());
        }
        match self.backend.account(self.user, false) {
            Ok(_) => Ok(()),
            Err(BackendError::Misconfigured(why)) => Err(misconfigured(why)),
            Err(BackendError::NotFound) => Err(verdict(PamCode::Ignore, "not a NetAuth entity")),
            Err(BackendError::Unavailable(why))
            | Err(BackendError::Failed(why))
            | Err(BackendError::Rejected(why)) => Err(verdict(
                PamCode::AuthinfoUnavail,
                format!("cannot tell whether the entity exists: {why}"),
            )),
        }
    }

    /// A password per the pass source; the bool is true when we prompted.
    fn obtain(
        &mut self,
        item: TokenItem,
        prompt: &str,
        missing: PamCode,
    ) -> Step<(RawSecret, bool)> {
        let earlier = match self.args.pass_source {
            PassSource::Prompt => None,
            PassSource::TryFirst | PassSource::UseFirst => self
                .host
                .token(item)
                .map_err(|code| host_failure(code, "cannot read the password item"))?,
        };
        match (earlier, self.args.pass_source) {
            (Some(secret), _) => {
                self.debug("using the password from an earlier module");
                Ok((secret, false))
            }
            (None, PassSource::UseFirst) => Err(verdict(
                missing,
                "use_first_pass: no password from an earlier module",
            )),
            (None, _) => {
                let secret = self
                    .host
                    .prompt_secret(prompt)
                    .map_err(|code| host_failure(code, "conversation failed"))?;
                Ok((secret, true))
            }
        }
    }

    fn store(&mut self, item: TokenItem, secret: &[u8]) {
        if let Err(code) = self.host.set_token(item, secret) {
            self.host.log(
                LogLevel::Warning,
                &format!(
                    "cannot hand the password to later modules ({})",
                    code.name()
                ),
            );
        }
    }

    fn authenticate(&mut self) -> Step<Verdict> {
        self.not_local()?;
        self.skip_unknown()?;
        let (password, prompted) =
            self.obtain(TokenItem::Authtok, "Password: ", PamCode::AuthErr)?;
        let outcome = self.check_password(password, prompted);
        // try_first_pass, as pam_unix does it: an earlier module's password
        // that is not ours (refused or empty) leads to one prompt of our own.
        let retry = !prompted
            && self.args.pass_source == PassSource::TryFirst
            && outcome.code == PamCode::AuthErr;
        if !retry {
            return Ok(outcome);
        }
        self.log_refusal(
            &outcome,
            "the password came from an earlier module (try_first_pass): asking once",
        );
        let password = self
            .host
            .prompt_secret("Password: ")
            .map_err(|code| host_failure(code, "conversation failed"))?;
        Ok(self.check_password(password, true))
    }

    /// Checks one password with the server; a password we prompted for is
    /// handed to later modules (as typed, even when we refuse it: another
    /// module may take bytes that are not UTF-8).
    fn check_password(&mut self, password: RawSecret, prompted: bool) -> Verdict {
        if password.is_empty() {
            return verdict(PamCode::AuthErr, "empty password refused");
        }
        if prompted {
            self.store(TokenItem::Authtok, &password);
        }
        let password = match password_text(password) {
            Ok(text) => text,
            Err(why) => {
                return verdict(
                    PamCode::AuthErr,
                    format!("password refused without asking the server: {why}"),
                )
            }
        };
        match self.backend.authenticate(self.user, &password) {
            Ok(()) => {
                self.remember(&password);
                verdict(PamCode::Success, "password accepted")
            }
            Err(BackendError::Misconfigured(why)) => misconfigured(why),
            Err(BackendError::Rejected(why)) => {
                self.forget_if_locked_or_unknown();
                verdict(PamCode::AuthErr, format!("server refused: {why}"))
            }
            Err(BackendError::NotFound) if self.ignores_unknown() => {
                verdict(PamCode::Ignore, "not a NetAuth entity")
            }
            Err(BackendError::NotFound) => verdict(PamCode::AuthErr, "not a NetAuth entity"),
            // Only when no server answered: never after an answer.
            Err(BackendError::Unavailable(why)) => self.offline_login(&password, &why),
            Err(BackendError::Failed(why)) => verdict(PamCode::AuthinfoUnavail, why),
        }
    }

    fn account(&mut self) -> Step<Verdict> {
        self.not_local()?;
        let user = self.user;
        let restricted = !self.settings.allowed_groups(self.service).is_empty();
        let online = match self.backend.account(user, restricted) {
            Ok(info) => info,
            Err(BackendError::Misconfigured(why)) => return Ok(misconfigured(why)),
            Err(BackendError::NotFound) if self.listed => {
                if self.backend.has_verifier(user) {
                    self.forget("the server does not know the entity");
                }
                return Ok(verdict(
                    PamCode::PermDenied,
                    "listed in the NetAuth cache, but the server does not know the entity (deleted)",
                ));
            }
            Err(BackendError::NotFound) if self.ignores_unknown() => {
                return Ok(verdict(PamCode::Ignore, "not a NetAuth entity"))
            }
            Err(BackendError::NotFound) => {
                return Ok(verdict(PamCode::UserUnknown, "not a NetAuth entity"))
            }
            Err(BackendError::Unavailable(why))
            | Err(BackendError::Failed(why))
            | Err(BackendError::Rejected(why)) => return Ok(self.account_offline(user, &why)),
        };
        if online.locked && self.backend.has_verifier(user) {
            self.forget("the server says the entity is locked");
        }
        Ok(if online.locked {
            verdict(PamCode::PermDenied, "entity is locked")
        } else if !self.settings.admits(self.service, &online.groups) {
            verdict(
                PamCode::PermDenied,
                format!(
                    "not in any allowed group {:?}",
                    self.settings.allowed_groups(self.service)
                ),
            )
        } else {
            verdict(PamCode::Success, "entity exists, not locked, allowed")
        })
    }

    /// Sessions are only logged, and only for NetAuth's users.
    fn session(&mut self) -> Step<Verdict> {
        if self.not_local().is_err() {
            return Ok(unlogged_session());
        }
        Ok(verdict(PamCode::Success, "logged only"))
    }

    /// The offline rule: when the server cannot answer, the on-disk cache
    /// decides if it is readable, younger than `offline_max_age_s` (0 turns
    /// offline decisions off) and lists the user: locked or not in an allowed
    /// group -> PAM_PERM_DENIED, otherwise PAM_SUCCESS. Anything else ->
    /// PAM_AUTHINFO_UNAVAIL.
    fn account_offline(&mut self, user: &str, why: &str) -> Verdict {
        let max_age = self.settings.offline_max_age;
        if max_age.is_zero() {
            return verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; offline decisions are off"),
            );
        }
        match self.backend.cached_account(user) {
            CacheAnswer::Unusable(problem) => verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; cache unusable: {problem}"),
            ),
            CacheAnswer::Absent => verdict(
                PamCode::AuthinfoUnavail,
                format!("{why}; user not in the cache"),
            ),
            CacheAnswer::Present { age, .. } if age > max_age => verdict(
                PamCode::AuthinfoUnavail,
                format!(
                    "{why}; cache is {} s old, older than offline_max_age_s = {}",
                    age.as_secs(),
                    max_age.as_secs()
                ),
            ),
            CacheAnswer::Present { locked: true, .. } => verdict(
                PamCode::PermDenied,
                format!("offline (cache): entity is locked; {why}"),
            ),
            CacheAnswer::Present { groups, .. } if !self.settings.admits(self.service, &groups) => {
                verdict(
                    PamCode::PermDenied,
                    format!(
                        "offline (cache): not in any allowed group {:?}; {why}",
                        self.settings.allowed_groups(self.service)
                    ),
                )
            }
            CacheAnswer::Present { age, .. } => verdict(
                PamCode::Success,
                format!(
                    "offline (cache {} s old): entity listed, not locked, allowed; {why}",
                    age.as_secs()
                ),
            ),
        }
    }

    fn chauthtok(&mut self) -> Step<Verdict> {
        let prelim = self.flags & flags::PRELIM_CHECK != 0;
        if !prelim && self.flags & flags::UPDATE_AUTHTOK == 0 {
            return Err(verdict(
                PamCode::ServiceErr,
                "neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK set",
            ));
        }
        self.not_local()?;
        self.skip_unknown()?;
        if prelim {
            self.check_current_password()
        } else {
            self.update_password()
        }
    }

    /// PAM_PRELIM_CHECK: obtain the current password and verify it, so the
    /// user is not asked for a new one in vain; keep it in PAM_OLDAUTHTOK.
    fn check_current_password(&mut self) -> Step<Verdict> {
        let (old, prompted) = self.obtain(
            TokenItem::OldAuthtok,
            "Current password: ",
            PamCode::AuthtokRecoveryErr,
        )?;
        if old.is_empty() {
            return Err(verdict(PamCode::AuthErr, "empty current password refused"));
        }
        let text = password_text(old.clone()).map_err(|why| {
            verdict(
                PamCode::AuthErr,
                format!("current password refused without asking the server: {why}"),
            )
        })?;
        Ok(match self.backend.authenticate(self.user, &text) {
            Ok(()) => {
                if prompted {
                    self.store(TokenItem::OldAuthtok, &old);
                }
                verdict(PamCode::Success, "current password verified")
            }
            Err(BackendError::Misconfigured(why)) => misconfigured(why),
            Err(BackendError::Rejected(why)) => {
                verdict(PamCode::AuthErr, format!("current password refused: {why}"))
            }
            Err(BackendError::NotFound) => verdict(PamCode::UserUnknown, "not a NetAuth entity"),
            Err(BackendError::Unavailable(why)) => {
                self.show_error(OFFLINE_CHANGE_MESSAGE);
                verdict(
                    PamCode::AuthinfoUnavail,
                    format!("password change refused offline: {why}"),
                )
            }
            Err(BackendError::Failed(why)) => verdict(PamCode::AuthinfoUnavail, why),
        })
    }

    /// PAM_UPDATE_AUTHTOK: the new password (from PAM_AUTHTOK with
    /// use_authtok, else asked twice), then the self-service change.
    fn update_password(&mut self) -> Step<Verdict> {
        let old = self
            .host
            .token(TokenItem::OldAuthtok)
            .map_err(|code| host_failure(code, "cannot read PAM_OLDAUTHTOK"))?
            .ok_or_else(|| {
                verdict(
                    PamCode::AuthtokRecoveryErr,
                    "no current password from the preliminary check",
                )
            })?;
        let old = password_text(old).map_err(|why| {
            verdict(
                PamCode::AuthtokRecoveryErr,
                format!("current password unusable: {why}"),
            )
        })?;
        let new = if self.args.use_authtok {
            self.host
                .token(TokenItem::Authtok)
                .map_err(|code| host_failure(code, "cannot read PAM_AUTHTOK"))?
                .ok_or_else(|| {
                    verdict(
                        PamCode::AuthtokErr,
                        "use_authtok: no new password from an earlier module",
                    )
                })?
        } else {
            let first = self
                .host
                .prompt_secret("New password: ")
                .map_err(|code| host_failure(code, "conversation failed"))?;
            let again = self
                .host
                .prompt_secret("Retype new password: ")
                .map_err(|code| host_failure(code, "conversation failed"))?;
            if *first != *again {
                self.show_error("Sorry, passwords do not match.");
                return Err(verdict(PamCode::AuthtokErr, "new passwords do not match"));
            }
            first
        };
        if new.is_empty() {
            return Err(verdict(PamCode::AuthtokErr, "empty new password refused"));
        }
        let new_text = password_text(new.clone()).map_err(|why| {
            self.show_error("The new password is not valid text or is too long.");
            verdict(
                PamCode::AuthtokErr,
                format!("new password refused without asking the server: {why}"),
            )
        })?;
        if !self.args.use_authtok {
            self.store(TokenItem::Authtok, &new);
        }
        Ok(
            match self.backend.change_secret(self.user, &old, &new_text) {
                Ok(()) => {
                    self.remember(&new_text);
                    verdict(PamCode::Success, "secret changed")
                }
                Err(BackendError::Misconfigured(why)) => misconfigured(why),
                Err(BackendError::Rejected(why)) => verdict(
                    PamCode::AuthtokErr,
                    format!("server refused the change: {why}"),
                ),
                Err(BackendError::NotFound) => {
                    verdict(PamCode::UserUnknown, "not a NetAuth entity")
                }
                Err(BackendError::Unavailable(why)) => {
                    self.show_error(OFFLINE_CHANGE_MESSAGE);
                    verdict(PamCode::AuthinfoUnavail, why)
                }
                Err(BackendError::Failed(why)) => {
                    verdict(PamCode::AuthtokErr, format!("change failed: {why}"))
                }
            },
        )
    }
}

//! The auth, account, password and session flows.

use super::{
    flags, Backend, BackendError, CacheAnswer, LogLevel, ModuleArgs, PamCode, PamHost, PamSettings,
    PassSource, Secret, TokenItem,
};

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
}

/// A decision and why; the reason goes to syslog and never holds a secret.
struct Verdict {
    code: PamCode,
    reason: String,
}

fn verdict(code: PamCode, reason: impl Into<String>) -> Verdict {
    Verdict {
        code,
        reason: reason.into(),
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

/// Serves one PAM call with the real NetAuth backend built from the config
/// file named by the arguments.
pub fn run<H: PamHost>(op: Op, host: &mut H, raw_args: &[String], flags: i32) -> PamCode {
    run_with(op, host, raw_args, flags, super::NetAuthBackend::load)
}

/// Serves one PAM call; `load` reads the configuration and builds the
/// backend (tests pass a fake). A `load` error is a configuration problem:
/// PAM_SERVICE_ERR with the error text in the log.
pub fn run_with<H, B, F>(op: Op, host: &mut H, raw_args: &[String], flags: i32, load: F) -> PamCode
where
    H: PamHost,
    B: Backend,
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

    let mut user = None;
    let outcome = match op {
        // Nothing to do, and nothing that could fail: no config, no network.
        Op::Setcred => verdict(PamCode::Success, "nothing to set"),
        Op::OpenSession | Op::CloseSession => match host.user() {
            Ok(name) => {
                user = Some(name);
                verdict(PamCode::Success, "logged only")
            }
            Err(code) => verdict(
                PamCode::SessionErr,
                format!("cannot get the user name ({})", code.name()),
            ),
        },
        Op::Authenticate | Op::AcctMgmt | Op::Chauthtok => match load(&args) {
            Err(problem) => {
                // The line says whose login the broken file refused.
                user = host.user().ok();
                verdict(
                    PamCode::ServiceErr,
                    format!(
                        "configuration problem in {}: {problem}",
                        args.config.display()
                    ),
                )
            }
            Ok((settings, mut backend)) => {
                let mut flow = Flow {
                    host: &mut *host,
                    backend: &mut backend,
                    args: &args,
                    settings: &settings,
                    flags,
                    service: &service,
                };
                let result = match op {
                    Op::Authenticate => flow.authenticate(&mut user),
                    Op::AcctMgmt => flow.account(&mut user),
                    _ => flow.chauthtok(&mut user),
                };
                result.unwrap_or_else(|v| v)
            }
        },
    };

    let level = match outcome.code {
        PamCode::Success | PamCode::Ignore => LogLevel::Info,
        PamCode::AuthErr | PamCode::PermDenied | PamCode::UserUnknown | PamCode::AuthtokErr => {
            LogLevel::Notice
        }
        PamCode::AuthinfoUnavail | PamCode::ConvErr | PamCode::TryAgain => LogLevel::Warning,
        _ => LogLevel::Err,
    };
    let op_label = match (op, flags & flags::PRELIM_CHECK != 0) {
        (Op::Chauthtok, true) => "password-prelim",
        (Op::Chauthtok, false) => "password-update",
        _ => op.label(),
    };
    // Debug formatting quotes and escapes names that come from outside.
    host.log(
        level,
        &format!(
            "{op_label} user={:?} service={service:?} rhost={rhost:?} outcome={} reason={:?}",
            user.as_deref().unwrap_or(""),
            outcome.code.name(),
            outcome.reason
        ),
    );
    outcome.code
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

    /// The user name; a name that cannot be an entity is "unknown".
    fn user(&mut self, slot: &mut Option<String>, unknown: PamCode) -> Step<String> {
        let name = self
            .host
            .user()
            .map_err(|code| host_failure(code, "cannot get the user name"))?;
        *slot = Some(name.clone());
        if plausible_entity_id(&name) {
            match self.backend.is_local_account(&name) {
                Ok(false) => Ok(name),
                Ok(true) => Err(verdict(
                    PamCode::Ignore,
                    "a local account: left to the local modules",
                )),
                Err(BackendError::Misconfigured(why)) => Err(misconfigured(why)),
                Err(other) => Err(misconfigured(format!(
                    "cannot tell whether the user is local: {other:?}"
                ))),
            }
        } else if self.args.ignore_unknown_user {
            Err(verdict(PamCode::Ignore, "not a possible NetAuth ID"))
        } else {
            Err(verdict(unknown, "not a possible NetAuth ID"))
        }
    }

    /// With `ignore_unknown_user`: PAM_IGNORE for a name the server does not
    /// know, before anything is prompted or sent.
    fn skip_unknown(&mut self, user: &str) -> Step<()> {
        if !self.args.ignore_unknown_user {
            return Ok(());
        }
        match self.backend.account(user, false) {
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
    fn obtain(&mut self, item: TokenItem, prompt: &str, missing: PamCode) -> Step<(Secret, bool)> {
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

    fn store(&mut self, item: TokenItem, secret: &str) {
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

    fn authenticate(&mut self, slot: &mut Option<String>) -> Step<Verdict> {
        let user = self.user(slot, PamCode::AuthErr)?;
        self.skip_unknown(&user)?;
        let (password, prompted) =
            self.obtain(TokenItem::Authtok, "Password: ", PamCode::AuthErr)?;
        let outcome = self.check_password(&user, &password, prompted);
        // try_first_pass, as pam_unix does it: an earlier module's password
        // that is not ours (refused or empty) leads to one prompt of our own.
        let retry = !prompted
            && self.args.pass_source == PassSource::TryFirst
            && outcome.code == PamCode::AuthErr;
        if !retry {
            return Ok(outcome);
        }
        self.debug("the earlier module's password was refused; prompting");
        let password = self
            .host
            .prompt_secret("Password: ")
            .map_err(|code| host_failure(code, "conversation failed"))?;
        Ok(self.check_password(&user, &password, true))
    }

    /// Checks one password with the server; a password we prompted for is
    /// handed to later modules.
    fn check_password(&mut self, user: &str, password: &Secret, prompted: bool) -> Verdict {
        if password.is_empty() {
            return verdict(PamCode::AuthErr, "empty password refused");
        }
        if prompted {
            self.store(TokenItem::Authtok, password);
        }
        match self.backend.authenticate(user, password) {
            Ok(()) => verdict(PamCode::Success, "password accepted"),
            Err(BackendError::Misconfigured(why)) => misconfigured(why),
            Err(BackendError::Rejected(why)) => {
                verdict(PamCode::AuthErr, format!("server refused: {why}"))
            }
            Err(BackendError::NotFound) if self.args.ignore_unknown_user => {
                verdict(PamCode::Ignore, "not a NetAuth entity")
            }
            Err(BackendError::NotFound) => verdict(PamCode::AuthErr, "not a NetAuth entity"),
            Err(BackendError::Unavailable(why)) | Err(BackendError::Failed(why)) => {
                verdict(PamCode::AuthinfoUnavail, why)
            }
        }
    }

    fn account(&mut self, slot: &mut Option<String>) -> Step<Verdict> {
        let user = self.user(slot, PamCode::UserUnknown)?;
        let restricted = !self.settings.allowed_groups(self.service).is_empty();
        let online = match self.backend.account(&user, restricted) {
            Ok(info) => info,
            Err(BackendError::Misconfigured(why)) => return Ok(misconfigured(why)),
            Err(BackendError::NotFound) if self.args.ignore_unknown_user => {
                return Ok(verdict(PamCode::Ignore, "not a NetAuth entity"))
            }
            Err(BackendError::NotFound) => {
                return Ok(verdict(PamCode::UserUnknown, "not a NetAuth entity"))
            }
            Err(BackendError::Unavailable(why))
            | Err(BackendError::Failed(why))
            | Err(BackendError::Rejected(why)) => return Ok(self.account_offline(&user, &why)),
        };
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

    fn chauthtok(&mut self, slot: &mut Option<String>) -> Step<Verdict> {
        let prelim = self.flags & flags::PRELIM_CHECK != 0;
        if !prelim && self.flags & flags::UPDATE_AUTHTOK == 0 {
            return Err(verdict(
                PamCode::ServiceErr,
                "neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK set",
            ));
        }
        let user = self.user(slot, PamCode::UserUnknown)?;
        self.skip_unknown(&user)?;
        if prelim {
            self.check_current_password(&user)
        } else {
            self.update_password(&user)
        }
    }

    /// PAM_PRELIM_CHECK: obtain the current password and verify it, so the
    /// user is not asked for a new one in vain; keep it in PAM_OLDAUTHTOK.
    fn check_current_password(&mut self, user: &str) -> Step<Verdict> {
        let (old, prompted) = self.obtain(
            TokenItem::OldAuthtok,
            "Current password: ",
            PamCode::AuthtokRecoveryErr,
        )?;
        if old.is_empty() {
            return Err(verdict(PamCode::AuthErr, "empty current password refused"));
        }
        Ok(match self.backend.authenticate(user, &old) {
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
            Err(BackendError::Unavailable(why)) | Err(BackendError::Failed(why)) => {
                verdict(PamCode::AuthinfoUnavail, why)
            }
        })
    }

    /// PAM_UPDATE_AUTHTOK: the new password (from PAM_AUTHTOK with
    /// use_authtok, else asked twice), then the self-service change.
    fn update_password(&mut self, user: &str) -> Step<Verdict> {
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
            if !first.is_empty() {
                self.store(TokenItem::Authtok, &first);
            }
            first
        };
        if new.is_empty() {
            return Err(verdict(PamCode::AuthtokErr, "empty new password refused"));
        }
        Ok(match self.backend.change_secret(user, &old, &new) {
            Ok(()) => verdict(PamCode::Success, "secret changed"),
            Err(BackendError::Misconfigured(why)) => misconfigured(why),
            Err(BackendError::Rejected(why)) => verdict(
                PamCode::AuthtokErr,
                format!("server refused the change: {why}"),
            ),
            Err(BackendError::NotFound) => verdict(PamCode::UserUnknown, "not a NetAuth entity"),
            Err(BackendError::Unavailable(why)) => verdict(PamCode::AuthinfoUnavail, why),
            Err(BackendError::Failed(why)) => {
                verdict(PamCode::AuthtokErr, format!("change failed: {why}"))
            }
        })
    }
}

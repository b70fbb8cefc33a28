//! `pam_netauth.so`: PAM service module for NetAuth.
//!
//! A thin shell: `pamsm` exports the `pam_sm_*` symbols, each entry point
//! runs [`logic::run`] under `catch_unwind`, and [`host::Host`]
//! gives the decision logic access to the PAM handle. Everything that
//! decides lives (unit-tested) in [`logic`].

mod host;
pub mod logic;
mod wiping_alloc;

#[global_allocator]
static HEAP: wiping_alloc::WipingAllocator = wiping_alloc::WipingAllocator;

use std::panic::{catch_unwind, AssertUnwindSafe};

use logic::{Op, PamCode};
use pamsm::{pam_module, LogLvl, Pam, PamError, PamFlags, PamLibExt, PamServiceModule};

struct PamNetAuth;

impl PamServiceModule for PamNetAuth {
    fn authenticate(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::Authenticate, &pamh, flags, &args)
    }

    fn setcred(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::Setcred, &pamh, flags, &args)
    }

    fn acct_mgmt(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::AcctMgmt, &pamh, flags, &args)
    }

    fn chauthtok(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::Chauthtok, &pamh, flags, &args)
    }

    fn open_session(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::OpenSession, &pamh, flags, &args)
    }

    fn close_session(pamh: Pam, flags: PamFlags, args: Vec<String>) -> PamError {
        serve(Op::CloseSession, &pamh, flags, &args)
    }
}

pam_module!(PamNetAuth);

/// Runs one PAM call. `pamsm`'s generated entry points do not catch panics,
/// so this does: a panic must never unwind into the C caller.
fn serve(op: Op, pamh: &Pam, flags: PamFlags, args: &[String]) -> PamError {
    caught(
        op,
        || {
            let mut host = host::Host::new(pamh, flags.bits());
            logic::run(op, &mut host, args, flags.bits())
        },
        |message| {
            let _ = pamh.syslog(LogLvl::CRIT, message);
        },
    )
}

/// The PAM status of `call`: a panic in it becomes an error status, logged
/// with `log`, and never unwinds further.
fn caught(op: Op, call: impl FnOnce() -> PamCode, log: impl FnOnce(&str)) -> PamError {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(code) => to_pam_error(code),
        Err(_) => {
            // Logging may itself fail; nothing more can be done then.
            let _ = catch_unwind(AssertUnwindSafe(|| {
                log(&format!("internal error (panic) during {op:?}; refusing"));
            }));
            match op {
                Op::OpenSession | Op::CloseSession => PamError::SESSION_ERR,
                _ => PamError::SERVICE_ERR,
            }
        }
    }
}

fn to_pam_error(code: PamCode) -> PamError {
    match code {
        PamCode::Success => PamError::SUCCESS,
        PamCode::ServiceErr => PamError::SERVICE_ERR,
        PamCode::SystemErr => PamError::SYSTEM_ERR,
        PamCode::BufErr => PamError::BUF_ERR,
        PamCode::PermDenied => PamError::PERM_DENIED,
        PamCode::AuthErr => PamError::AUTH_ERR,
        PamCode::AuthinfoUnavail => PamError::AUTHINFO_UNAVAIL,
        PamCode::UserUnknown => PamError::USER_UNKNOWN,
        PamCode::SessionErr => PamError::SESSION_ERR,
        PamCode::ConvErr => PamError::CONV_ERR,
        PamCode::AuthtokErr => PamError::AUTHTOK_ERR,
        PamCode::AuthtokRecoveryErr => PamError::AUTHTOK_RECOVERY_ERR,
        PamCode::TryAgain => PamError::TRY_AGAIN,
        PamCode::Ignore => PamError::IGNORE,
        PamCode::Abort => PamError::ABORT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test binary links the same unwinder as the module (the build
    /// script's `libgcc_eh`, no libgcc_s): these panics unwind through it.
    #[test]
    fn a_panic_becomes_an_error_status_and_is_logged() {
        let ops = [
            (Op::Authenticate, PamError::SERVICE_ERR),
            (Op::Setcred, PamError::SERVICE_ERR),
            (Op::AcctMgmt, PamError::SERVICE_ERR),
            (Op::Chauthtok, PamError::SERVICE_ERR),
            (Op::OpenSession, PamError::SESSION_ERR),
            (Op::CloseSession, PamError::SESSION_ERR),
        ];
        for (op, status) in ops {
            let mut logged = Vec::new();
            let got = caught(op, || panic!("boom"), |m| logged.push(m.to_owned()));
            assert_eq!(got, status, "{op:?}");
            assert_eq!(
                logged,
                [format!("internal error (panic) during {op:?}; refusing")]
            );
        }
    }

    #[test]
    fn a_panicking_log_still_gives_the_status() {
        let got = caught(Op::Authenticate, || panic!("boom"), |_| panic!("log"));
        assert_eq!(got, PamError::SERVICE_ERR);
        let got = caught(Op::Authenticate, || PamCode::Success, |_| panic!("log"));
        assert_eq!(got, PamError::SUCCESS);
    }
}

//! The PAM handle as seen by the decision logic: items, conversation,
//! syslog. All `unsafe` of the module is here, at the libpam boundary.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;

use crate::logic::{flags, LogLevel, PamCode, PamHost, RawSecret, TokenItem};
use pamsm::{LogLvl, Pam, PamLibExt};
use zeroize::{Zeroize, Zeroizing};

// Linux-PAM constants (security/_pam_types.h).
const PAM_CONV: c_int = 5;
const PAM_AUTHTOK: c_int = 6;
const PAM_OLDAUTHTOK: c_int = 7;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_SUCCESS: c_int = 0;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_set_item(pamh: *const c_void, item_type: c_int, item: *const c_void) -> c_int;
}

pub struct Host<'a> {
    pamh: &'a Pam,
    raw: *const c_void,
    flags: i32,
}

impl<'a> Host<'a> {
    pub fn new(pamh: &'a Pam, flags: i32) -> Host<'a> {
        // SAFETY: pamsm::Pam is #[repr(transparent)] over the pam_handle_t
        // pointer libpam passed to the entry point; this copies that pointer.
        let raw = unsafe { *(pamh as *const Pam).cast::<*const c_void>() };
        Host { pamh, raw, flags }
    }

    /// Sends one message through the application's conversation function.
    /// Returns the response text, zeroized and freed on our side.
    fn converse(&self, style: c_int, text: &str) -> Result<Option<RawSecret>, PamCode> {
        let text = CString::new(text).map_err(|_| PamCode::BufErr)?;
        let mut item: *const c_void = ptr::null();
        // SAFETY: raw is the live handle of this call; item is a valid out pointer.
        let rc = unsafe { pam_get_item(self.raw, PAM_CONV, &mut item) };
        if rc != PAM_SUCCESS {
            return Err(PamCode::from_raw(rc));
        }
        if item.is_null() {
            return Err(PamCode::ConvErr);
        }
        // SAFETY: libpam stores a struct pam_conv under PAM_CONV and keeps it
        // alive for the handle's lifetime.
        let conv = unsafe { &*item.cast::<PamConv>() };
        let Some(conv_fn) = conv.conv else {
            return Err(PamCode::ConvErr);
        };
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut message_ptr: *const PamMessage = &message;
        let mut response: *mut PamResponse = ptr::null_mut();
        // SAFETY: one message, valid for the call; the application allocates
        // the response array with malloc and hands ownership to us.
        let rc = unsafe { conv_fn(1, &mut message_ptr, &mut response, conv.appdata_ptr) };
        // SAFETY: response is null or the malloc'd array of one response.
        let answer = unsafe { take_response(response) };
        if rc != PAM_SUCCESS {
            return Err(match PamCode::from_raw(rc) {
                PamCode::Success => PamCode::ConvErr,
                code => code,
            });
        }
        Ok(answer)
    }

    fn set_item(&self, item: c_int, value: &[u8]) -> Result<(), PamCode> {
        if value.contains(&0) {
            return Err(PamCode::BufErr);
        }
        let mut buffer = Zeroizing::new(Vec::with_capacity(value.len() + 1));
        buffer.extend_from_slice(value);
        buffer.push(0);
        // SAFETY: buffer is NUL-terminated and outlives the call; libpam
        // copies the string (and wipes its old copy).
        let rc = unsafe { pam_set_item(self.raw, item, buffer.as_ptr().cast()) };
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(PamCode::from_raw(rc))
        }
    }
}

/// Copies the text out of a conversation response, wipes and frees it.
///
/// # Safety
/// `response` is null or points to one malloc'd `pam_response` whose `resp`
/// is null or a malloc'd NUL-terminated string, owned by the caller.
unsafe fn take_response(response: *mut PamResponse) -> Option<RawSecret> {
    if response.is_null() {
        return None;
    }
    // SAFETY: per the function contract.
    let text = unsafe { (*response).resp };
    let secret = if text.is_null() {
        None
    } else {
        // SAFETY: a NUL-terminated string owned by us now.
        let bytes = unsafe { CStr::from_ptr(text) }.to_bytes();
        let secret = secret_from_bytes(bytes);
        // SAFETY: the same string, writable and len bytes long; wiped before
        // free so the password does not linger in freed heap memory.
        unsafe { std::slice::from_raw_parts_mut(text.cast::<u8>(), bytes.len()) }.zeroize();
        // SAFETY: allocated with malloc by the application (PAM convention).
        unsafe { libc::free(text.cast()) };
        Some(secret)
    };
    // SAFETY: the array itself, also malloc'd.
    unsafe { libc::free(response.cast()) };
    secret
}

/// A password as bytes from C, copied as they are into memory that is wiped
/// when dropped. Whether they are usable as a NetAuth secret (UTF-8, not too
/// long) is the flows' decision, never a lossy conversion here.
fn secret_from_bytes(bytes: &[u8]) -> RawSecret {
    RawSecret::new(bytes.to_vec())
}

fn text_from_cstr(value: Option<&CStr>) -> Option<String> {
    value.map(|c| c.to_string_lossy().into_owned())
}

impl PamHost for Host<'_> {
    fn user(&mut self) -> Result<String, PamCode> {
        match self.pamh.get_user(None) {
            Ok(Some(name)) => Ok(name.to_string_lossy().into_owned()),
            Ok(None) => Err(PamCode::ServiceErr),
            Err(e) => Err(PamCode::from_raw(e as i32)),
        }
    }

    fn service(&self) -> Option<String> {
        text_from_cstr(self.pamh.get_service().ok().flatten())
    }

    fn rhost(&self) -> Option<String> {
        text_from_cstr(self.pamh.get_rhost().ok().flatten())
    }

    fn token(&self, item: TokenItem) -> Result<Option<RawSecret>, PamCode> {
        let value = match item {
            TokenItem::Authtok => self.pamh.get_cached_authtok(),
            TokenItem::OldAuthtok => self.pamh.get_cached_oldauthtok(),
        };
        match value {
            Ok(value) => Ok(value.map(|c| secret_from_bytes(c.to_bytes()))),
            Err(e) => Err(PamCode::from_raw(e as i32)),
        }
    }

    fn set_token(&mut self, item: TokenItem, value: &[u8]) -> Result<(), PamCode> {
        match item {
            TokenItem::Authtok => self.set_item(PAM_AUTHTOK, value),
            TokenItem::OldAuthtok => self.set_item(PAM_OLDAUTHTOK, value),
        }
    }

    fn prompt_secret(&mut self, prompt: &str) -> Result<RawSecret, PamCode> {
        self.converse(PAM_PROMPT_ECHO_OFF, prompt)?
            .ok_or(PamCode::ConvErr)
    }

    fn show_error(&mut self, message: &str) {
        if self.flags & flags::SILENT == 0 {
            // A failed message is not worth failing the call for.
            let _ = self.converse(PAM_ERROR_MSG, message);
        }
    }

    fn show_info(&mut self, message: &str) {
        if self.flags & flags::SILENT == 0 {
            let _ = self.converse(PAM_TEXT_INFO, message);
        }
    }

    fn log(&mut self, level: LogLevel, message: &str) {
        let level = match level {
            LogLevel::Err => LogLvl::ERR,
            LogLevel::Warning => LogLvl::WARNING,
            LogLevel::Notice => LogLvl::NOTICE,
            LogLevel::Info => LogLvl::INFO,
            LogLevel::Debug => LogLvl::DEBUG,
        };
        // pam_syslog: facility authpriv, "%s" format, prefixed with the
        // module name, service and function.
        let _ = self.pamh.syslog(level, message);
    }
}

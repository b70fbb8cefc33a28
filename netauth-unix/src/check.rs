//! `netauth-unix check USER [--service NAME] [--password-stdin]`: what a
//! login of USER would meet right now, in the order pam_netauth meets it
//! (like `sssctl user-checks`): a local account or not, served by NSS (the
//! cache) or not, what the server says (locked, groups) or that it cannot be
//! reached, the access rule of the service, the offline state and the
//! cached credentials (present, age; never the secret).
//!
//! With `--password-stdin` it also runs a real PAM authentication and
//! account check through the host's stack for the service (the first line
//! of standard input is the password), so that what the other modules of
//! the stack do counts too.
//!
//! Exit status: 0 a login would pass (with `--password-stdin`: it did),
//! 1 it would not (or did not), 2 bad usage or configuration.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::ptr;

use netauth_cache::clean::LocalAccounts;
use netauth_cache::trusted::{read_trusted, Owner, TrustRule};
use netauth_cache::{CacheView, CACHE_FILE_NAME};
use netauth_core::blocking::BlockingClient;
use netauth_core::config::pam::PamSettings;
use netauth_core::config::Config;
use netauth_core::ClientBuilder;
use netauth_offline::{unix_now, StateFile, VerifierStore};
use netauth_unix::refresh::offline::offline_dir;
use netauth_unix::refresh::RefreshSettings;
use zeroize::Zeroizing;

use crate::fail;
use crate::output::say;
use crate::status::format_age;

/// What `check` was asked.
pub struct Request<'a> {
    pub config: &'a Path,
    pub user: &'a str,
    pub service: &'a str,
    pub password_stdin: bool,
}

/// Runs `netauth-unix check`.
pub fn run(request: &Request<'_>) -> ExitCode {
    let config = match Config::load(request.config) {
        Ok(c) => c,
        Err(e) => return fail(2, e),
    };
    let user = request.user;
    let service = request.service;
    let settings = PamSettings::from_config(&config);
    let refresh = RefreshSettings::from_config(&config);
    let mut passes = true;
    say!("user:         {user}");
    say!("service:      {service}");

    match read_trusted(&refresh.local_passwd, &TrustRule::LOCAL_ACCOUNTS) {
        Ok(text) => {
            let local = LocalAccounts::parse(&String::from_utf8_lossy(&text), "");
            if local.user_names.contains(user) {
                say!(
                    "local:        yes: a local account ({}), left to the local modules",
                    refresh.local_passwd.display()
                );
            } else {
                say!("local:        no");
            }
        }
        Err(e) => {
            say!("local:        cannot tell: {e} (every login: PAM_SERVICE_ERR)");
            passes = false;
        }
    }

    let cached_groups = report_nss(&refresh.cache_dir, user, &mut passes);
    let online_groups = report_server(&config, &settings, user, &mut passes);
    let groups = online_groups.or(cached_groups).unwrap_or_default();
    let allowed = settings.allowed_groups(service);
    if allowed.is_empty() {
        say!("access:       allowed (no allow_groups for this service)");
    } else if settings.admits(service, &groups) {
        say!("access:       allowed (allow_groups {allowed:?})");
    } else {
        say!("access:       DENIED: in none of allow_groups {allowed:?}");
        passes = false;
    }
    report_offline(&refresh.cache_dir, &settings, user);

    if request.password_stdin {
        let mut line = Zeroizing::new(String::new());
        if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
            return fail(
                2,
                format!("cannot read the password from standard input: {e}"),
            );
        }
        while line.ends_with(['\n', '\r']) {
            line.pop();
        }
        passes = pam_login(service, user, &line);
    }
    if passes {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The cache's view of `user`; their groups when listed.
fn report_nss(cache_dir: &Path, user: &str, passes: &mut bool) -> Option<Vec<String>> {
    let path = cache_dir.join(CACHE_FILE_NAME);
    let bytes = match read_trusted(&path, &TrustRule::CACHE) {
        Ok(bytes) => bytes,
        Err(e) => {
            say!("nss:          cache unusable: {e}");
            *passes = false;
            return None;
        }
    };
    let listed = CacheView::parse(&bytes).and_then(|view| {
        let Some(record) = view.user_by_name(user.as_bytes())? else {
            return Ok(None);
        };
        let mut groups = Vec::new();
        for gid in record.groups.clone() {
            if let Some(group) = view.group_by_gid(gid)? {
                groups.push(String::from_utf8_lossy(group.name).into_owned());
            }
        }
        Ok(Some((record.uid, record.gid, record.locked, groups)))
    });
    match listed {
        Ok(Some((uid, gid, locked, groups))) => {
            say!(
                "nss:          served: uid {uid}, gid {gid}{}; groups {groups:?}",
                if locked { ", locked" } else { "" }
            );
            Some(groups)
        }
        Ok(None) => {
            say!("nss:          not served by the cache: not a NetAuth user of this host");
            *passes = false;
            None
        }
        Err(e) => {
            say!("nss:          cache unusable: {}: {e}", path.display());
            *passes = false;
            None
        }
    }
}

/// What the server says about `user` (with the PAM module's deadlines);
/// their groups when it answered.
fn report_server(
    config: &Config,
    settings: &PamSettings,
    user: &str,
    passes: &mut bool,
) -> Option<Vec<String>> {
    let mut builder = ClientBuilder::from_config(config.clone()).service_name("netauth-unix");
    if let Some(timeout) = settings.request_timeout {
        builder = builder.request_timeout(timeout);
    }
    if let Some(timeout) = settings.connect_timeout {
        builder = builder.connect_timeout(timeout);
    }
    let client = BlockingClient::new(builder);
    let answer = client.run(|client| async move {
        let entity = client.entity_info(user).await?;
        let groups = client.entity_groups(user).await?;
        Ok((
            entity.meta.locked,
            groups.into_iter().map(|g| g.name).collect(),
        ))
    });
    let answered = client.builder().health().answered_by().unwrap_or_default();
    match answer {
        Ok((locked, groups)) => {
            let groups: Vec<String> = groups;
            if locked {
                say!("server:       {answered}: entity LOCKED; groups {groups:?}");
                *passes = false;
            } else {
                say!("server:       {answered}: entity exists, not locked; groups {groups:?}");
            }
            Some(groups)
        }
        Err(e) if e.is_not_found() => {
            say!("server:       {answered}: no such entity");
            *passes = false;
            None
        }
        Err(e) if e.is_server_unavailable() => {
            say!("server:       NOT reachable: {e}");
            say!("login now:    offline: the cache decides the account step, cached credentials the password");
            None
        }
        Err(e) => {
            say!("server:       error: {e}");
            *passes = false;
            None
        }
    }
}

/// The offline state and `user`'s cached credentials.
fn report_offline(cache_dir: &Path, settings: &PamSettings, user: &str) {
    let dir = offline_dir(cache_dir);
    let now = unix_now();
    match StateFile::at(&dir, Owner::Root).read() {
        Ok(state) if state.is_offline(now) => say!(
            "offline:      yes: logins ask no server for {} more",
            format_age(i64::try_from(state.until - now).unwrap_or(0))
        ),
        Ok(state) if state.in_outage() => {
            say!("offline:      outage recorded; the next login probes the servers")
        }
        Ok(_) => say!("offline:      no"),
        Err(e) => say!("offline:      state unreadable: {e}"),
    }
    if !settings.offline_login {
        say!("cached credentials: off (offline_login = false)");
        return;
    }
    match VerifierStore::at(&dir, Owner::Root).info(user) {
        Ok(Some(info)) => {
            let age = i64::try_from(now.saturating_sub(info.online_at)).unwrap_or(i64::MAX);
            let too_old = settings
                .offline_login_max_age
                .is_some_and(|max| age > i64::try_from(max.as_secs()).unwrap_or(i64::MAX));
            say!(
                "cached credentials: present, last online login {} ago{}{}",
                format_age(age),
                if too_old {
                    " (older than offline_login_max_age_days: refused offline)"
                } else {
                    ""
                },
                if info.failed > 0 {
                    format!("; {} wrong offline password(s)", info.failed)
                } else {
                    String::new()
                }
            );
        }
        Ok(None) => say!("cached credentials: none (no online login stored one yet)"),
        Err(e) => say!("cached credentials: unusable: {e}"),
    }
}

// ----- a real PAM login through the host's stack -----

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
    c_int,
    *mut *const PamMessage,
    *mut *mut PamResponse,
    *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

/// The conversation's data: the password (NUL-terminated) and the user.
struct Answers {
    password: Zeroizing<Vec<u8>>,
    user: CString,
}

unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    let Ok(count) = usize::try_from(num_msg) else {
        return PAM_CONV_ERR;
    };
    if count == 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the &Answers given to pam_start, alive for the run.
    let answers = unsafe { &*appdata.cast::<Answers>() };
    // SAFETY: calloc of count responses; the module frees them.
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes an array of num_msg message pointers.
        let message = unsafe { &**msg.add(i) };
        let text = if message.msg.is_null() {
            String::new()
        } else {
            // SAFETY: the message text, NUL-terminated.
            unsafe { CStr::from_ptr(message.msg) }
                .to_string_lossy()
                .into_owned()
        };
        let answer: *const c_char = match message.msg_style {
            PAM_PROMPT_ECHO_OFF => answers.password.as_ptr().cast(),
            PAM_PROMPT_ECHO_ON => answers.user.as_ptr(),
            _ => {
                say!("pam message:  {}", text.trim_end());
                ptr::null()
            }
        };
        if !answer.is_null() {
            // SAFETY: replies has count entries; strdup copies the
            // NUL-terminated answer (the module wipes and frees the copy).
            unsafe { (*replies.add(i)).resp = libc::strdup(answer) };
        }
    }
    // SAFETY: resp is the module's out pointer.
    unsafe { *resp = replies };
    PAM_SUCCESS
}

/// pam_authenticate then pam_acct_mgmt for `user` through `service`'s
/// stack; true when both succeed.
fn pam_login(service: &str, user: &str, password: &str) -> bool {
    let (Ok(c_service), Ok(c_user)) = (CString::new(service), CString::new(user)) else {
        say!("pam:          service or user name holds a NUL byte");
        return false;
    };
    if password.contains('\0') {
        say!("pam:          the password holds a NUL byte");
        return false;
    }
    let mut password_bytes = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    password_bytes.extend_from_slice(password.as_bytes());
    password_bytes.push(0);
    let answers = Answers {
        password: password_bytes,
        user: c_user.clone(),
    };
    let conv = PamConv {
        conv: Some(converse),
        appdata_ptr: (&answers as *const Answers).cast_mut().cast(),
    };
    let mut handle: *mut c_void = ptr::null_mut();
    // SAFETY: valid NUL-terminated strings and a conversation that outlives
    // the handle (pam_end below).
    let rc = unsafe { pam_start(c_service.as_ptr(), c_user.as_ptr(), &conv, &mut handle) };
    if rc != PAM_SUCCESS || handle.is_null() {
        say!("pam:          pam_start failed ({rc})");
        return false;
    }
    let describe = |code: c_int| {
        // SAFETY: handle is live; pam_strerror returns a static string.
        let text = unsafe { pam_strerror(handle, code) };
        if text.is_null() {
            code.to_string()
        } else {
            // SAFETY: NUL-terminated static text.
            unsafe { CStr::from_ptr(text) }
                .to_string_lossy()
                .into_owned()
        }
    };
    // SAFETY: live handle.
    let auth = unsafe { pam_authenticate(handle, 0) };
    say!("pam auth:     {}", describe(auth));
    let mut last = auth;
    if auth == PAM_SUCCESS {
        // SAFETY: live handle.
        last = unsafe { pam_acct_mgmt(handle, 0) };
        say!("pam account:  {}", describe(last));
    }
    // SAFETY: live handle, ended once.
    unsafe { pam_end(handle, last) };
    last == PAM_SUCCESS
}

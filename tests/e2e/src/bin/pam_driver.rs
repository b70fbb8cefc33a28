//! A tiny PAM application for the end-to-end tests and the benchmark: drives
//! real libpam (and through it pam_netauth) where pamtester cannot.
//!
//! ```text
//! pam_driver [options] SERVICE USER
//!   --op auth|acct|chauthtok|session   what to run (repeatable, in order; default auth)
//!   --answer TEXT                      conversation answers, in order (repeatable)
//!   --answer-hex HEX                   an answer given as hex bytes: any bytes (not
//!                                      UTF-8, say), and no clear copy in argv
//!   --core PREFIX                      after the run, wipe the driver's own copies of
//!                                      the answers, then dump this process's memory
//!                                      with `gcore -o PREFIX` (file PREFIX.<pid>)
//!   --fork                             after the run, fork and run again in the child
//!   --repeat N                         whole pam_start..pam_end cycles (benchmark)
//!   --timings                          print one "timing <ns>" line per cycle
//! ```
//! Prints `result <op> <code> <pam_strerror text>` per call, `prompts <n>`,
//! and `threads <phase> before=<n> after=<n>` (counted in /proc/self/task
//! before pam_start and after pam_end). Exit status 0 when every call
//! returned PAM_SUCCESS, 1 otherwise, 2 on usage errors.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::ptr;
use std::time::Instant;

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

#[repr(C)]
struct PamConv {
    conv: Option<
        unsafe extern "C" fn(
            c_int,
            *mut *const PamMessage,
            *mut *mut PamResponse,
            *mut c_void,
        ) -> c_int,
    >,
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
    fn pam_chauthtok(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_strerror(pamh: *mut c_void, errnum: c_int) -> *const c_char;
}

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;

/// Conversation state: the answers still to give and how many prompts came.
struct Script<'a> {
    /// NUL-terminated answers, owned by the options (no copy here).
    answers: &'a [Vec<u8>],
    next: usize,
    prompts: usize,
    /// Benchmark runs: no prompt echo on stderr.
    quiet: bool,
}

unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || msg.is_null() || resp.is_null() || appdata.is_null() {
        return 19; // PAM_CONV_ERR
    }
    // SAFETY: appdata is the &mut Script given to pam_start, alive for the run.
    let script = unsafe { &mut *appdata.cast::<Script<'_>>() };
    let count = num_msg as usize;
    // SAFETY: calloc of count responses; freed by the module (PAM convention).
    let replies =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if replies.is_null() {
        return 5; // PAM_BUF_ERR
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes an array of num_msg message pointers.
        let message = unsafe { &**msg.add(i) };
        // SAFETY: text of the message, NUL-terminated.
        let text = unsafe { CStr::from_ptr(message.msg) }.to_string_lossy();
        match message.msg_style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON => {
                script.prompts += 1;
                if !script.quiet {
                    eprintln!("prompt {text:?}");
                }
                let Some(answer) = script.answers.get(script.next) else {
                    // No answer left: behave like a user who closed the terminal.
                    // SAFETY: free what was allocated so far.
                    unsafe { free_replies(replies, count) };
                    return 19;
                };
                script.next += 1;
                // SAFETY: replies has count entries; strdup copies the
                // NUL-terminated answer (the module wipes and frees the copy).
                unsafe { (*replies.add(i)).resp = libc::strdup(answer.as_ptr().cast()) };
            }
            _ if script.quiet => {}
            _ => eprintln!("message {text:?}"),
        }
    }
    // SAFETY: resp is the module's out pointer.
    unsafe { *resp = replies };
    0
}

unsafe fn free_replies(replies: *mut PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: entries are null or strdup'd.
        unsafe { libc::free((*replies.add(i)).resp.cast()) };
    }
    // SAFETY: calloc'd above.
    unsafe { libc::free(replies.cast()) };
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

struct Options {
    service: CString,
    user: CString,
    ops: Vec<String>,
    /// NUL-terminated; wiped before a core dump.
    answers: Vec<Vec<u8>>,
    core: Option<String>,
    fork: bool,
    repeat: usize,
    timings: bool,
}

fn usage(problem: &str) -> ! {
    eprintln!("pam_driver: {problem}");
    std::process::exit(2)
}

fn parse() -> Options {
    let mut args = std::env::args().skip(1);
    let mut positional = Vec::new();
    let mut options = Options {
        service: CString::default(),
        user: CString::default(),
        ops: Vec::new(),
        answers: Vec::new(),
        core: None,
        fork: false,
        repeat: 1,
        timings: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--op" => options
                .ops
                .push(args.next().unwrap_or_else(|| usage("--op needs a value"))),
            "--answer" => {
                let answer = args
                    .next()
                    .unwrap_or_else(|| usage("--answer needs a value"));
                options.answers.push(
                    CString::new(answer)
                        .unwrap_or_else(|_| usage("NUL in answer"))
                        .into_bytes_with_nul(),
                );
            }
            "--answer-hex" => {
                let hex = args
                    .next()
                    .unwrap_or_else(|| usage("--answer-hex needs a value"));
                options.answers.push(
                    decode_hex(&hex).unwrap_or_else(|| usage("--answer-hex: bad hex or NUL")),
                );
            }
            "--core" => {
                options.core = Some(args.next().unwrap_or_else(|| usage("--core needs a value")))
            }
            "--fork" => options.fork = true,
            "--timings" => options.timings = true,
            "--repeat" => {
                options.repeat = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| usage("--repeat needs a number"))
            }
            _ => positional.push(arg),
        }
    }
    let [service, user] =
        <[String; 2]>::try_from(positional).unwrap_or_else(|_| usage("need SERVICE USER"));
    options.service = CString::new(service).unwrap_or_else(|_| usage("bad service"));
    options.user = CString::new(user).unwrap_or_else(|_| usage("bad user"));
    if options.ops.is_empty() {
        options.ops.push("auth".into());
    }
    options
}

/// Hex to bytes plus a NUL, allocated once at its final size (a growing
/// vector would leave partial copies in freed memory).
fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(hex.len() / 2 + 1);
    for pair in hex.as_bytes().chunks(2) {
        let text = std::str::from_utf8(pair).ok()?;
        let byte = u8::from_str_radix(text, 16).ok()?;
        if byte == 0 {
            return None;
        }
        bytes.push(byte);
    }
    bytes.push(0);
    Some(bytes)
}

/// Overwrites the driver's own copies of the answers, so that a core dump
/// shows only what libpam and the module left behind.
fn wipe_answers(options: &mut Options) {
    for answer in &mut options.answers {
        // SAFETY: the vector's own initialised bytes.
        unsafe { libc::explicit_bzero(answer.as_mut_ptr().cast(), answer.len()) };
    }
}

/// Dumps this process's memory with gdb's gcore; returns the file name.
fn dump_core(prefix: &str) -> String {
    let pid = std::process::id();
    let status = std::process::Command::new("gcore")
        .args(["-o", prefix, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => format!("{prefix}.{pid}"),
        other => {
            println!("gcore failed: {other:?}");
            std::process::exit(1)
        }
    }
}

/// One pam_start .. pam_end cycle; true when every call succeeded.
fn cycle(options: &Options, phase: &str, quiet: bool) -> bool {
    let mut script = Script {
        answers: &options.answers,
        next: 0,
        prompts: 0,
        quiet,
    };
    let conv = PamConv {
        conv: Some(converse),
        appdata_ptr: (&mut script as *mut Script<'_>).cast(),
    };
    let before = thread_count();
    let mut pamh: *mut c_void = ptr::null_mut();
    // SAFETY: valid C strings and conv, pamh is an out pointer.
    let rc = unsafe {
        pam_start(
            options.service.as_ptr(),
            options.user.as_ptr(),
            &conv,
            &mut pamh,
        )
    };
    if rc != 0 {
        println!("result start {rc} pam_start failed");
        return false;
    }
    let mut all_ok = true;
    let mut last = 0;
    for op in &options.ops {
        // SAFETY: pamh is the live handle from pam_start.
        let rc = unsafe {
            match op.as_str() {
                "auth" => pam_authenticate(pamh, 0),
                "acct" => pam_acct_mgmt(pamh, 0),
                "chauthtok" => pam_chauthtok(pamh, 0),
                "session" => {
                    let rc = pam_open_session(pamh, 0);
                    if rc == 0 {
                        pam_close_session(pamh, 0)
                    } else {
                        rc
                    }
                }
                other => usage(&format!("unknown op {other}")),
            }
        };
        if !quiet {
            // SAFETY: pam_strerror returns a static string.
            let text = unsafe { CStr::from_ptr(pam_strerror(pamh, rc)) }.to_string_lossy();
            println!("result {op} {rc} {text}");
        }
        all_ok &= rc == 0;
        last = rc;
        if rc != 0 {
            break;
        }
    }
    // SAFETY: ends the handle; it is not used afterwards.
    unsafe { pam_end(pamh, last) };
    let after = thread_count();
    if !quiet {
        println!("prompts {}", script.prompts);
        println!("threads {phase} before={before} after={after}");
    }
    all_ok
}

fn main() {
    let mut options = parse();
    let mut ok = true;
    if options.repeat > 1 || options.timings {
        for _ in 0..options.repeat {
            let start = Instant::now();
            ok &= cycle(&options, "bench", true);
            if options.timings {
                println!("timing {}", start.elapsed().as_nanos());
            }
        }
    } else {
        ok = cycle(&options, "parent", false);
    }
    if let Some(prefix) = options.core.clone() {
        wipe_answers(&mut options);
        println!("core {}", dump_core(&prefix));
    }
    if options.fork {
        let _ = std::io::stdout().flush();
        // SAFETY: fork in a single-threaded moment of this program (the
        // module left no threads: that is what the test checks); the child
        // only runs PAM again and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let child_ok = cycle(&options, "child", false);
            let _ = std::io::stdout().flush();
            // SAFETY: leave the child without running the parent's atexit handlers twice.
            unsafe { libc::_exit(if child_ok { 0 } else { 1 }) };
        }
        if pid < 0 {
            println!("fork failed");
            std::process::exit(1);
        }
        let mut status = 0;
        // SAFETY: waits for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let child_ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        println!("child exit ok={child_ok}");
        ok &= child_ok;
    }
    let _ = std::io::stdout().flush();
    std::process::exit(if ok { 0 } else { 1 });
}

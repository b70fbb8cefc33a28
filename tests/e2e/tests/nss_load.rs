//! What glibc pays to load the NSS module and what its first lookup costs
//! in system calls: the module exports exactly the entry points glibc looks
//! for, depends on libc alone (GCC's unwinder is linked in) and needs no
//! glibc newer than 2.35, the `.rpm`'s build (the shared unwinder) none
//! newer than 2.34 (RHEL 9), and a process's first lookup opens, checks and
//! maps the cache in seven system calls, with no `stat` of the path.

use netauth_e2e::elf::{exported, needed, newest_glibc_needed};
use netauth_e2e::nss::{
    encode_content, nss_module_dir, nss_module_dir_with_shared_unwinder, run_in_namespace,
    sample_content, NsRun,
};
use std::path::PathBuf;

/// The functions glibc's NSS looks up in a module for the databases we
/// serve (passwd, group, initgroups).
const ENTRY_POINTS: &[&str] = &[
    "_nss_netauth_endgrent",
    "_nss_netauth_endpwent",
    "_nss_netauth_getgrent_r",
    "_nss_netauth_getgrgid_r",
    "_nss_netauth_getgrnam_r",
    "_nss_netauth_getpwent_r",
    "_nss_netauth_getpwnam_r",
    "_nss_netauth_getpwuid_r",
    "_nss_netauth_initgroups_dyn",
    "_nss_netauth_setgrent",
    "_nss_netauth_setpwent",
];

fn module() -> PathBuf {
    nss_module_dir().join("libnss_netauth.so.2")
}

#[test]
fn the_module_exports_exactly_the_nss_entry_points() {
    assert_eq!(exported(&module()), ENTRY_POINTS);
}

/// GCC's unwinder (libgcc_eh) is linked in, so that a C program (`id`,
/// `ls -l`, `sshd`), which has no libgcc_s loaded, does not search for, map
/// and relocate it on its first lookup. That libgcc_eh calls
/// `_dl_find_object`: the module needs glibc 2.35 (Debian 12 has 2.36).
#[test]
fn the_module_depends_on_libc_alone_and_needs_glibc_2_35_at_most() {
    assert_eq!(needed(&module()), ["libc.so.6", "ld-linux-x86-64.so.2"]);
    let newest = newest_glibc_needed(&module());
    assert!(newest <= 35, "the module needs GLIBC_2.{newest}");
}

/// The `.rpm` is for RHEL 9 (glibc 2.34): its module is built with
/// `NETAUTH_UNWINDER=libgcc_s` and keeps the shared unwinder.
#[test]
fn the_shared_unwinder_build_needs_no_glibc_newer_than_2_34() {
    let library = nss_module_dir_with_shared_unwinder().join("libnss_netauth.so.2");
    assert_eq!(
        needed(&library),
        ["libgcc_s.so.1", "libc.so.6", "ld-linux-x86-64.so.2"]
    );
    let newest = newest_glibc_needed(&library);
    assert!(
        newest <= 34,
        "the shared-unwinder build needs GLIBC_2.{newest}"
    );
}

/// The system calls of one `getent passwd` between the open of the cache's
/// folder and the answer, traced by valgrind (`--trace-syscalls`): names
/// only, e.g. `sys_openat`.
fn first_lookup_syscalls() -> (Vec<String>, String) {
    let cache = encode_content(&sample_content());
    let out = run_in_namespace(
        &NsRun {
            nsswitch: "passwd: netauth\ngroup: netauth\n",
            cache: Some(&cache),
            etc_group_extra: None,
            files: &[],
        },
        "valgrind",
        &["--trace-syscalls=yes", "getent", "passwd", "na_alice"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.starts_with("na_alice:"), "{stdout}");
    let trace = String::from_utf8_lossy(&out.stderr).into_owned();
    // A call valgrind runs asynchronously is traced twice: `sys_x ( ... )
    // --> [async] ...` and its result `... [async] --> Success(..)`.
    let calls: Vec<String> = trace
        .lines()
        .filter_map(|l| l.strip_prefix("SYSCALL["))
        .filter_map(|l| l.split_once(") ").map(|(_, rest)| rest))
        .filter(|rest| !rest.starts_with("..."))
        // The tests load a debug build, whose std checks a descriptor with
        // `fcntl(F_GETFD)` before it closes it; a release build does not.
        .filter(|rest| !rest.starts_with("sys_fcntl"))
        .map(|rest| rest.to_owned())
        .collect();
    let start = calls
        .iter()
        .position(|c| c.contains("(/var/lib/netauth)"))
        .unwrap_or_else(|| panic!("no open of the cache's folder:\n{trace}"));
    let end = calls
        .iter()
        .position(|c| c.starts_with("sys_write ( 1,"))
        .unwrap_or_else(|| panic!("no answer written:\n{trace}"));
    let before_open = calls[..start].join("\n");
    let names = calls[start..end]
        .iter()
        .map(|c| c.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    (names, before_open)
}

#[test]
fn the_first_lookup_opens_checks_and_maps_the_cache_in_seven_system_calls() {
    if netauth_e2e::skip_without_root() {
        return;
    }
    let (calls, before_open) = first_lookup_syscalls();
    assert!(
        !before_open.contains("nss.cache"),
        "the cache's path was used before its folder was opened:\n{before_open}"
    );
    // The folder opened and checked, the file opened relative to it, the
    // folder closed, the file checked, mapped and closed.
    let fstat = |c: &str| matches!(c, "sys_statx" | "sys_newfstatat" | "sys_fstat");
    assert!(calls.len() >= 7, "{calls:?}");
    assert_eq!(calls[0], "sys_openat", "{calls:?}");
    assert!(fstat(&calls[1]), "{calls:?}");
    assert_eq!(calls[2], "sys_openat", "{calls:?}");
    assert_eq!(calls[3], "sys_close", "{calls:?}");
    assert!(fstat(&calls[4]), "{calls:?}");
    assert_eq!(calls[5], "sys_mmap", "{calls:?}");
    assert_eq!(calls[6], "sys_close", "{calls:?}");
    // Then nothing of the module's until getent writes the answer (glibc's
    // stdio may fstat its stdout first).
    let rest = &calls[7..];
    assert!(
        rest.iter()
            .all(|c| c == "sys_newfstatat" || c == "sys_fstat"),
        "{calls:?}"
    );
}

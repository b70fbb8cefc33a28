//! Link flags of the NSS module.

use std::process::Command;

fn main() {
    // glibc dlopens `libnss_netauth.so.2` by that name.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_netauth.so.2");
    // Never unloaded: thread-local destructors of the module may still run
    // after a dlclose, so the code must stay mapped.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NETAUTH_UNWINDER");
    println!("cargo:rerun-if-env-changed=CC");
    match std::env::var("NETAUTH_UNWINDER").as_deref() {
        Ok("libgcc_s") => {}
        Ok("libgcc_eh") | Err(std::env::VarError::NotPresent) => link_the_unwinder_in(),
        Ok(other) => fail(&format!(
            "NETAUTH_UNWINDER={other:?}: say libgcc_eh (the default) or libgcc_s"
        )),
        Err(e) => fail(&format!("NETAUTH_UNWINDER: {e}")),
    }
}

/// Stops the build with `message` (a build script's way to fail).
fn fail(message: &str) -> ! {
    eprintln!("nss_netauth build: {message}");
    std::process::exit(1)
}

/// Links GCC's unwinder (libgcc_eh.a, which catching a panic needs) into
/// the module, so that it depends on libc alone: the first lookup of a C
/// program (`id`, `ls -l`, `sshd`), which has no libgcc_s loaded, no longer
/// searches for, maps and relocates libgcc_s.so.1 (about 150 µs on the
/// machines we measure). Its symbols stay local to the module (only the
/// `_nss_netauth_*` entry points are exported), and no unwind ever crosses
/// the module's edge, so the process's own libgcc_s, if any, never meets
/// it. This libgcc_eh calls `_dl_find_object` (glibc 2.35): a module for
/// an older glibc (the `.rpm`, for RHEL 9's 2.34) is built with
/// `NETAUTH_UNWINDER=libgcc_s` and keeps the shared one.
fn link_the_unwinder_in() {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .unwrap_or_else(|e| fail(&format!("run {cc} -print-file-name=libgcc_eh.a: {e}")));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = std::path::Path::new(&path)
        .parent()
        .filter(|dir| out.status.success() && !dir.as_os_str().is_empty())
        .unwrap_or_else(|| {
            fail(&format!(
                "{cc} knows no libgcc_eh.a (install gcc), or build with \
                 NETAUTH_UNWINDER=libgcc_s to link the shared libgcc_s"
            ))
        });
    println!("cargo:rustc-link-search=native={}", dir.display());
    // Before the standard library's -lgcc_s on the link line, so every
    // unwinder symbol resolves here and --as-needed drops libgcc_s.
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}

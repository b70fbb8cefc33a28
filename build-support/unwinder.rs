// Shared by the build scripts of both modules, which `include!` it: how a
// module gets GCC's unwinder, which catching a panic needs.

/// Links GCC's unwinder into the module (`libgcc_eh.a`, the default), or
/// leaves it to the shared `libgcc_s.so.1` when `NETAUTH_UNWINDER=libgcc_s`.
///
/// Linked in, the module depends on no libgcc_s: a C program (`id`,
/// `ls -l`, `login`, `su`, `sshd`), which has none loaded, no longer
/// searches for, maps and relocates libgcc_s.so.1 when it loads the module
/// (about 150 µs of the NSS module's first lookup, 270 µs of the PAM
/// module's load, on the machines we measure). The unwinder's symbols stay
/// local to the module (only its entry points are exported), and no unwind
/// ever crosses the module's edge, so the process's own libgcc_s, if any,
/// never meets it. This libgcc_eh calls `_dl_find_object` (glibc 2.35): a
/// module for an older glibc (the `.rpm`, for RHEL 9's 2.34) is built with
/// `NETAUTH_UNWINDER=libgcc_s` and keeps the shared one.
fn choose_the_unwinder(module: &str) {
    println!("cargo:rerun-if-changed=../build-support/unwinder.rs");
    println!("cargo:rerun-if-env-changed=NETAUTH_UNWINDER");
    println!("cargo:rerun-if-env-changed=CC");
    match std::env::var("NETAUTH_UNWINDER").as_deref() {
        Ok("libgcc_s") => {}
        Ok("libgcc_eh") | Err(std::env::VarError::NotPresent) => link_the_unwinder_in(module),
        Ok(other) => fail(
            module,
            &format!("NETAUTH_UNWINDER={other:?}: say libgcc_eh (the default) or libgcc_s"),
        ),
        Err(e) => fail(module, &format!("NETAUTH_UNWINDER: {e}")),
    }
}

/// Stops the build of `module` with `message` (a build script's way to
/// fail).
fn fail(module: &str, message: &str) -> ! {
    eprintln!("{module} build: {message}");
    std::process::exit(1)
}

/// Links `libgcc_eh.a`, found by asking the C compiler where it is.
fn link_the_unwinder_in(module: &str) {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = std::process::Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .unwrap_or_else(|e| {
            fail(
                module,
                &format!("run {cc} -print-file-name=libgcc_eh.a: {e}"),
            )
        });
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let dir = std::path::Path::new(&path)
        .parent()
        .filter(|dir| out.status.success() && !dir.as_os_str().is_empty())
        .unwrap_or_else(|| {
            fail(
                module,
                &format!(
                    "{cc} knows no libgcc_eh.a (install gcc), or build with \
                     NETAUTH_UNWINDER=libgcc_s to link the shared libgcc_s"
                ),
            )
        });
    println!("cargo:rustc-link-search=native={}", dir.display());
    // Before the standard library's -lgcc_s on the link line, so every
    // unwinder symbol resolves here and --as-needed drops libgcc_s.
    println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
}

//! Link flags of the NSS module.

fn main() {
    // glibc dlopens `libnss_netauth.so.2` by that name.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_netauth.so.2");
    // Never unloaded: thread-local destructors of the module may still run
    // after a dlclose, so the code must stay mapped.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    // The unwinder linked in (libgcc_eh, as `gcc -static-libgcc` does for a
    // shared library) instead of a dependency on libgcc_s.so.1: most
    // processes that look up a user (C programs) do not have libgcc_s
    // loaded, and glibc would have to find, map and relocate it on every
    // first lookup. Panics never leave the module (each entry point catches
    // them), so its private unwinder never meets another one's frames.
    println!("cargo:rustc-link-lib=static=gcc_eh");
    println!("cargo:rerun-if-changed=build.rs");
}

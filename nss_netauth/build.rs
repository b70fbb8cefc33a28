//! Link flags of the NSS module.

include!("../build-support/unwinder.rs");

fn main() {
    // glibc dlopens `libnss_netauth.so.2` by that name.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libnss_netauth.so.2");
    // Never unloaded: thread-local destructors of the module may still run
    // after a dlclose, so the code must stay mapped.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
    choose_the_unwinder("nss_netauth");
}

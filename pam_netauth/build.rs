//! Link flags of the module.

include!("../build-support/unwinder.rs");

fn main() {
    // -z nodelete: libpam dlclose()s modules in pam_end; Rust's std (thread
    // locals, at-exit hooks) and ring keep pointers into the image, so it
    // must never be unmapped from the host process.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
    choose_the_unwinder("pam_netauth");
}

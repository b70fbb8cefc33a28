//! Link flags of the module.

fn main() {
    // -z nodelete: libpam dlclose()s modules in pam_end; Rust's std (thread
    // locals, at-exit hooks) and ring keep pointers into the image, so it
    // must never be unmapped from the host process.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    println!("cargo:rerun-if-changed=build.rs");
}

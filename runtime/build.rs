//! Compiles the runtime's one C file (`csrc/current_m.c`: the current M's
//! thread-local, reached through its TLS descriptor) with the `cc` crate.

fn main() {
    println!("cargo:rerun-if-changed=csrc/current_m.c");
    cc::Build::new().file("csrc/current_m.c").warnings_into_errors(true).compile("cgocheck_current_m");
}

//! Compiles the small C library the tests call (`csrc/pairs.c`).

fn main() {
    println!("cargo:rerun-if-changed=csrc/pairs.c");
    cc::Build::new().file("csrc/pairs.c").warnings_into_errors(true).compile("pairs");
}

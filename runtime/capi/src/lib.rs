//! The cgocheck runtime as a static library for a C program that exports
//! no managed functions of its own: `cargo build --release -p
//! cgocheck-capi` writes `target/release/libcgocheck_capi.a`, which holds
//! the runtime and its C ABI (`cgocheck_init`, `cgocheck_level`, declared
//! in `runtime/include/cgocheck.h`). A program that does export managed
//! functions links its own staticlib crate, which contains the runtime the
//! same way (c-tests/cmain is one); link only one such library per
//! program, as each carries its own copy of Rust's standard library.
//!
//! Nothing is defined here: naming the runtime is what puts it, with its
//! `#[no_mangle]` C functions, into the archive.

#![deny(missing_docs)]

pub use cgocheck;

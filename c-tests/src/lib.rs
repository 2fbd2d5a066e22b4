//! c-tests: the suites that drive real C code compiled by `build.rs`.
//!
//! - [`harness`]: runs one named case as its own process (the `cases` binary)
//!   under `CGOCHECK=0`, `1` and `2` and compares exit status and output with
//!   the expectation for each level.
//! - [`ffi`]: the C functions of `csrc/`, declared once.
//! - the `cases` binary (src/bin/cases.rs) holds the case bodies; the suites
//!   under `tests/` hold the tables of expectations.

pub mod ffi;
pub mod harness;

//! c-tests: the suites that drive real C code compiled by `build.rs`.
//!
//! - [`harness`]: runs one named case of a case binary as its own process
//!   under `CGOCHECK=0`, `1` and `2` and compares exit status and output with
//!   the expectation for each level.
//! - [`ffi`]: the C functions of `csrc/`, declared once.
//! - the case binaries hold the case bodies — `cases` (heap, levels),
//!   `ptrcases` (every managed → C row of the spec), `callbacks` (exports,
//!   handles, C threads, nesting), `crash` (crash reports), `stacks` (deep
//!   recursion in callbacks from fresh C threads) — and the suites
//!   under `tests/` hold the tables of expectations. `bench` is the
//!   benchmark program, `examples/tour.rs` the tour, `cmain/` a C `main`
//!   linking the runtime as a static library.

#![deny(missing_docs)]

pub mod ffi;
pub mod harness;

//! A library with C inside, as a user of cgocheck writes one, for the
//! tests in `tests/harness.rs`: they show that under `cargo test` a failed
//! check fails its own test only (`cgocheck::run_test`).

#![deny(missing_docs)]

use core::ffi::{c_int, c_long};

/// C's `struct pair` (`csrc/pairs.c`): a pointer C reads through, and a
/// number.
#[derive(cgocheck::CType, Clone, Copy)]
#[repr(C)]
pub struct Pair {
    /// What C reads.
    pub p: *mut c_int,
    /// Added to it.
    pub n: c_int,
}

cgocheck::c_functions! {
    extern "C" {
        /// `*pp->p + pp->n`.
        pub fn pair_get(pp: *const Pair) -> c_int;
        /// The sum of `n` ints at `xs`.
        pub fn sum_ints(xs: *const c_int, n: usize) -> c_long;
    }
}

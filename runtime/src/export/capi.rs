//! The runtime's own C ABI, declared for C in `runtime/include/cgocheck.h`.
//!
//! C test binaries link a static library that contains the runtime (the
//! runtime alone, `libcgocheck_capi.a` from `runtime/capi`, or a user
//! crate's staticlib that depends on the runtime and adds its exported
//! functions). What C needs from the
//! runtime itself is small: exported functions start the runtime on their
//! own, so these are for a C `main` that wants to start it explicitly and to
//! know the checking level it runs under. The managed string and slice
//! layouts C sees in exported functions' signatures are typedefs in the
//! header, checked against [`GcStr`](crate::GcStr) and
//! [`GcSlice`](crate::GcSlice) below.

use super::{start, started};
use crate::check;
use core::ffi::c_int;

/// `int cgocheck_init(void)`: starts the runtime if it has not started.
/// Returns 1 if this call started it, 0 if it was already running. Safe to
/// call from any thread, any number of times, concurrently.
#[unsafe(no_mangle)]
pub extern "C" fn cgocheck_init() -> c_int {
    c_int::from(start())
}

/// `int cgocheck_level(void)`: the checking level in effect, 0, 1 or 2
/// (`CGOCHECK`, else `GODEBUG=cgocheck=N`, else 1). Starts the runtime if it
/// has not started.
#[unsafe(no_mangle)]
pub extern "C" fn cgocheck_level() -> c_int {
    if !started() {
        start();
    }
    check::level() as c_int
}

// The header's `cgocheck_string` and `cgocheck_slice` are these layouts.
const _: () = {
    use crate::{GcSlice, GcStr};
    use core::mem::{align_of, size_of};
    assert!(size_of::<GcStr>() == 2 * size_of::<usize>() && align_of::<GcStr>() == align_of::<usize>());
    assert!(size_of::<GcSlice<u8>>() == 3 * size_of::<usize>() && align_of::<GcSlice<u8>>() == align_of::<usize>());
};

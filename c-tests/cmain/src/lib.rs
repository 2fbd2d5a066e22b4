//! The managed half of a C program with its own `main` (main.c beside this
//! crate): what a C library author writes to test C code against the
//! runtime. This crate is built as a static library that contains the
//! runtime; main.c includes `cgocheck.h`, declares the functions exported
//! here, and links the library (the commands are in main.c's comment and
//! in c-tests/tests/callback_cmain.rs, which builds and runs it).
//!
//! Nothing here starts the runtime: the first exported function C calls
//! does, from whichever thread calls first.

#![deny(missing_docs)]

use cgocheck::{GcSlice, GcStr, Handle};
use core::ffi::c_int;
use std::sync::atomic::{AtomicI64, Ordering};

/// Calls of `GoCountCall` so far.
static CALLS: AtomicI64 = AtomicI64::new(0);

cgocheck::export! {
    /// `int GoAdd(int, int)`: the simplest callback.
    pub fn GoAdd(a: c_int, b: c_int) -> c_int {
        a + b
    }

    /// `int GoStarted(void)`: 1 if the runtime had started by the time this
    /// managed code ran (it always must have).
    pub fn GoStarted() -> c_int {
        c_int::from(cgocheck::export::started())
    }

    /// `int64_t GoCountCall(void)`: counts calls from every thread; returns
    /// the count including this call.
    pub fn GoCountCall() -> i64 {
        CALLS.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `int64_t GoStringLen(cgocheck_string)`: a string header C built over
    /// its own bytes; returns the length if the text is "hello from C",
    /// else -1 (so a layout mismatch shows).
    pub fn GoStringLen(s: GcStr) -> i64 {
        if s.as_str() == "hello from C" { s.len() as i64 } else { -1 }
    }

    /// `int64_t GoSumSlice(cgocheck_slice)`: sums a slice of int64 C built
    /// over its own array; -1 if its capacity is not its length plus one.
    pub fn GoSumSlice(s: GcSlice<i64>) -> i64 {
        if s.cap() != s.len() + 1 {
            return -1;
        }
        s.as_slice().iter().sum()
    }

    /// `cgocheck_handle GoNewHandle(int64_t)`: C keeps a Handle to a
    /// managed value.
    pub fn GoNewHandle(v: i64) -> usize {
        Handle::new(v).as_raw()
    }

    /// `int64_t GoHandleValue(cgocheck_handle)`: the value behind a Handle
    /// C kept.
    pub fn GoHandleValue(h: usize) -> i64 {
        *Handle::from_raw(h).value::<i64>()
    }

    /// `void GoDeleteHandle(cgocheck_handle)`.
    pub fn GoDeleteHandle(h: usize) {
        Handle::from_raw(h).delete();
    }

    /// `unsigned char *GoLeak(void)`: the mistake the checker is for: a new,
    /// unpinned managed byte returned to C.
    pub fn GoLeak() -> *mut u8 {
        cgocheck::new(1u8).as_ptr()
    }
}

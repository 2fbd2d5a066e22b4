//! Go's C string and byte-buffer helpers: `C.CString`, `C.CBytes`,
//! `C.GoString`, `C.GoStringN`, `C.GoBytes`.
//!
//! cmd/cgo gives every Go file that imports "C" these five functions. Two
//! copy managed data into C memory from `malloc` (the caller frees it with
//! C's `free`, [`c_free`]): such memory holds no managed pointer, so it can
//! be passed to C and kept there freely. Three copy C memory into new
//! managed values, so the result stays valid after C frees or reuses its
//! buffer.
//!
//! They call `malloc`/`free`/`strlen` directly, not through `cgocall`
//! (none of them calls back or blocks), so they work inside and outside
//! tasks, as Go's do.
//!
//! Where Go silently does something else, these refuse with a message:
//! a string with a NUL byte would reach C cut short ([`c_string`] panics),
//! and C bytes that are not UTF-8 cannot be a `GcStr`, whose bytes are
//! always UTF-8 ([`go_string`] panics and points to [`go_bytes`]).

use crate::values::{new_slice, new_string, GcSlice, GcStr};
use core::ffi::{c_char, c_void, CStr};

/// Go's `C.CString(s)`: a NUL-terminated copy of `s` in memory from C's
/// `malloc`, which the caller frees with [`c_free`] (C's `free`).
///
/// # Panics
/// If `s` contains a NUL byte (C would see only the part before it; Go
/// passes it cut short), or if `malloc` fails (Go: `runtime: C malloc
/// failed`).
pub fn c_string(s: &str) -> *mut c_char {
    if let Some(at) = s.bytes().position(|b| b == 0) {
        panic!(
            "cgocheck::c_string: the string has a NUL byte at index {at} (of {}), so C would see only the \
             first {at} bytes; remove it, or pass the bytes and their length with c_bytes",
            s.len()
        );
    }
    let p = malloc_copy(s.as_bytes(), 1, "c_string");
    p.cast()
}

/// Go's `C.CBytes(b)`: a copy of `b` in memory from C's `malloc` (no
/// terminator), which the caller frees with [`c_free`].
///
/// # Panics
/// If `malloc` fails.
pub fn c_bytes(b: &[u8]) -> *mut c_void {
    malloc_copy(b, 0, "c_bytes")
}

/// C's `free`, for the memory [`c_string`] and [`c_bytes`] return.
///
/// # Safety
/// `p` is null or came from `c_string`/`c_bytes` (or C's `malloc`) and is
/// not used after this call.
pub unsafe fn c_free<T>(p: *mut T) {
    // SAFETY: the caller's promise.
    unsafe { libc::free(p.cast()) }
}

/// Go's `C.GoString(p)`: the C string at `p` (up to its NUL) copied into a
/// managed string; a null `p` gives the empty string.
///
/// # Safety
/// A non-null `p` points to a NUL-terminated C string, readable until the
/// call returns.
///
/// # Panics
/// If the bytes are not UTF-8 (a `GcStr` always is; Go's strings need not
/// be): use [`go_bytes`] for arbitrary bytes.
pub unsafe fn go_string(p: *const c_char) -> GcStr {
    if p.is_null() {
        return GcStr::empty();
    }
    // SAFETY: the caller's promise: a NUL-terminated string.
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    utf8_string(bytes, "go_string")
}

/// Go's `C.GoStringN(p, n)`: the `n` bytes at `p` (NULs included) copied
/// into a managed string.
///
/// # Safety
/// `p` points to `n` readable bytes (it may be null when `n` is 0).
///
/// # Panics
/// If the bytes are not UTF-8; use [`go_bytes`] for arbitrary bytes.
pub unsafe fn go_string_n(p: *const c_char, n: usize) -> GcStr {
    // SAFETY: the caller's promise.
    let bytes = unsafe { c_slice(p.cast(), n) };
    utf8_string(bytes, "go_string_n")
}

/// Go's `C.GoBytes(p, n)`: the `n` bytes at `p` copied into a new managed
/// byte slice (length and capacity `n`).
///
/// # Safety
/// `p` points to `n` readable bytes (it may be null when `n` is 0).
pub unsafe fn go_bytes(p: *const c_void, n: usize) -> GcSlice<u8> {
    // SAFETY: the caller's promise.
    let bytes = unsafe { c_slice(p.cast(), n) };
    let s = new_slice::<u8>(n);
    // SAFETY: `s` was just allocated; only this function refers to it.
    unsafe { s.as_mut_slice() }.copy_from_slice(bytes);
    s
}

/// `n` bytes at `p` as a slice (empty for `n == 0`, whatever `p` is).
///
/// # Safety
/// As for [`go_bytes`].
unsafe fn c_slice<'a>(p: *const u8, n: usize) -> &'a [u8] {
    if n == 0 {
        return &[];
    }
    assert!(!p.is_null(), "cgocheck: a null C pointer with a length of {n} bytes");
    // SAFETY: the caller's promise: `n` readable bytes at non-null `p`.
    unsafe { std::slice::from_raw_parts(p, n) }
}

/// A managed string of `bytes`, or a panic naming `what` and where the
/// bytes stop being UTF-8.
fn utf8_string(bytes: &[u8], what: &str) -> GcStr {
    match std::str::from_utf8(bytes) {
        Ok(s) => new_string(s),
        Err(e) => panic!(
            "cgocheck::{what}: the C bytes are not UTF-8 (invalid at byte {} of {}), and a GcStr holds UTF-8 \
             only; copy them with cgocheck::ffi::go_bytes instead",
            e.valid_up_to(),
            bytes.len()
        ),
    }
}

/// `malloc(len + extra)` holding `b` then `extra` zero bytes.
fn malloc_copy(b: &[u8], extra: usize, what: &str) -> *mut c_void {
    let size = b.len() + extra;
    // SAFETY: malloc has no preconditions; at least one byte is asked for,
    // so a null result is a failure (C may return null for 0 bytes).
    let p = unsafe { libc::malloc(size.max(1)) };
    assert!(!p.is_null(), "cgocheck::{what}: C malloc of {size} bytes failed");
    // SAFETY: `p` has `size >= b.len()` writable bytes, fresh from malloc,
    // so it cannot overlap `b`.
    unsafe {
        std::ptr::copy_nonoverlapping(b.as_ptr(), p.cast::<u8>(), b.len());
        std::ptr::write_bytes(p.cast::<u8>().add(b.len()), 0, extra);
    }
    p
}

//! The runtime's side of the pointer checks: the level, and the checks
//! gated by it against the real heap.
//!
//! The checker crate's checks are pure functions of a [`ManagedMemory`](crate::ManagedMemory) and
//! run whenever called, so tests can call them directly. The call layer
//! (the typed `extern "C"` wrappers, the `export` macro, the store APIs)
//! calls the functions here instead, which:
//!
//! 1. read the level once per process ([`level`]): `CGOCHECK`, else
//!    `GODEBUG=cgocheck=N`, else 1 (rules and precedence in the checker's
//!    `level.rs`). A bad value stops the program with the message naming the
//!    variable and the accepted values, exit status 2. The runtime reads it
//!    at program start, from an `.init_array` constructor (Linux and
//!    Android, the targets the runtime runs on), so a bad value is reported
//!    before `main` whether or not the program reaches a check;
//! 2. skip the check when the level does not run its family
//!    ([`Checks::Args`] at 1 and 2, [`Checks::Stores`] at 2): at level 0 a
//!    check costs one load and one compare;
//! 3. run it against [`heap()`](crate::heap()), returning the error; the call
//!    layer turns it into a panic.

use crate::heap::heap;
use cgocheck_checker::types::PointeeType;
use cgocheck_checker::{
    check_arg, check_memmove, check_pointer, check_ptr_write, check_result, check_slice_copy, CType, CallSite,
    CheckError, Checks, Hint, Level, Type,
};
use std::sync::OnceLock;

static LEVEL: OnceLock<Level> = OnceLock::new();

/// The process's checking level, read from the environment on first use.
/// A bad value prints the error and exits with status 2.
#[inline]
pub fn level() -> Level {
    *LEVEL.get_or_init(|| match Level::from_env() {
        Ok(level) => level,
        Err(e) => {
            eprintln!("cgocheck: {e}");
            std::process::exit(2)
        }
    })
}

/// Reads the level before `main` (and before a C `main` calls in), so a bad
/// `CGOCHECK` stops the program at start.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[used]
#[link_section = ".init_array"]
static READ_LEVEL_AT_START: extern "C" fn() = {
    extern "C" fn read_level() {
        level();
    }
    read_level
};

/// Runs `check` when `level` runs the family `checks`; `Ok` otherwise.
#[inline(always)]
pub fn gated(level: Level, checks: Checks, check: impl FnOnce() -> Result<(), CheckError>) -> Result<(), CheckError> {
    if level.runs(checks) {
        check()
    } else {
        Ok(())
    }
}

/// Checks argument `site` passed by value (`check_arg`).
#[inline]
pub fn value<T: CType>(site: CallSite, value: &T) -> Result<(), CheckError> {
    // SAFETY: `value` is a valid `T`, and `T::TYPE` describes `T`.
    gated(level(), Checks::Args, || unsafe { check_arg(heap(), site, T::TYPE, value as *const T as *const u8) })
}

/// Checks argument `site` of type `ty` at `value` (`check_arg`).
///
/// # Safety
/// `value` must point to a valid value of `ty`.
#[inline]
pub unsafe fn arg(site: CallSite, ty: &Type, value: *const u8) -> Result<(), CheckError> {
    // SAFETY: the caller's contract.
    gated(level(), Checks::Args, || unsafe { check_arg(heap(), site, ty, value) })
}

/// Checks the pointer argument `site` with what the call site knows about
/// it (`check_pointer`). `T` is its pointee type (`c_void` for `void*`).
///
/// # Safety
/// For [`Hint::Whole`], its `value` must point to a valid value of its `ty`.
#[inline]
pub unsafe fn pointer<T: PointeeType>(site: CallSite, ptr: *const T, hint: Hint<'_>) -> Result<(), CheckError> {
    let pointee = match T::POINTER.kind {
        cgocheck_checker::Kind::Pointer { elem } => Some(elem.get()),
        _ => None,
    };
    // SAFETY: the caller's contract.
    gated(level(), Checks::Args, || unsafe { check_pointer(heap(), site, ptr.cast(), pointee, hint) })
}

/// Checks the result of the exported function `func` (`check_result`).
#[inline]
pub fn result<T: CType>(func: &'static str, value: &T) -> Result<(), CheckError> {
    // SAFETY: `value` is a valid `T`, and `T::TYPE` describes `T`.
    gated(level(), Checks::Args, || unsafe { check_result(heap(), func, T::TYPE, value as *const T as *const u8) })
}

/// Checks storing the pointer `src` at `dst` (level 2, `check_ptr_write`).
#[inline]
pub fn ptr_write(dst: *const u8, src: *const u8) -> Result<(), CheckError> {
    gated(level(), Checks::Stores, || check_ptr_write(heap(), dst, src))
}

/// Writes `value` to `dst`, which may be C memory, after the level-2 check
/// (`check_memmove`). On error nothing is written.
///
/// # Safety
/// `dst` must be valid for writing a `T` and aligned.
#[inline]
pub unsafe fn write<T: CType>(dst: *mut T, value: T) -> Result<(), CheckError> {
    // SAFETY: `value` is a valid `T` to read from.
    gated(level(), Checks::Stores, || unsafe {
        check_memmove(heap(), T::TYPE, dst.cast(), &value as *const T as *const u8)
    })?;
    // SAFETY: the caller's contract.
    unsafe { dst.write(value) };
    Ok(())
}

/// Copies `src` to `dst`, which may be C memory, after the level-2 check
/// (`check_slice_copy`). On error nothing is copied.
///
/// # Safety
/// `dst` must be valid for writing `src.len()` `T`s, aligned, and not
/// overlap `src`.
#[inline]
pub unsafe fn copy<T: CType + Copy>(dst: *mut T, src: &[T]) -> Result<(), CheckError> {
    // SAFETY: `src` holds `src.len()` valid `T`s.
    gated(level(), Checks::Stores, || unsafe {
        check_slice_copy(heap(), T::TYPE, dst.cast(), src.as_ptr().cast(), src.len())
    })?;
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
    Ok(())
}

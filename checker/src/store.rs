//! Store checks (level 2): Go's `cgocheck.go`.
//!
//! Go's compiler inserts a write barrier on every pointer store, and under
//! `GOEXPERIMENT=cgocheck2` the barrier checks that no unpinned Go pointer is
//! written into memory that is not Go's (C's malloc, C globals), where the
//! collector cannot see it. Rust has no such barrier, so these checks are
//! explicit APIs that the managed side calls when it writes through a C
//! pointer:
//!
//! - [`check_ptr_write`]: one pointer stored at `dst` (`cgoCheckPtrWrite`);
//! - [`check_memmove`], [`check_memmove_partial`]: a typed value copied to
//!   `dst` (`cgoCheckMemmove`, `cgoCheckMemmove2`);
//! - [`check_slice_copy`]: `n` elements copied (`cgoCheckSliceCopy`);
//! - [`check_typed_block`]: the pointer words of part of a typed value
//!   (`cgoCheckTypedBlock` / `cgoCheckBits`), for callers that already know
//!   the destination is C memory.
//!
//! A store into managed memory is always fine (the collector sees it). Every
//! pointer word of the source (by the type's mask, `words.rs`; a
//! `[*mut u8; 32769]` is one run, no bitmap is built) must pass the shallow
//! rule of `unknown.rs`: null, C, pinned, or a managed global.
//!
//! One departure from Go: Go skips the check when the *source* is not Go
//! memory, since under cgocheck2 every earlier store into it was checked. In
//! Rust a value holding managed pointers can sit anywhere (an OS thread's
//! stack, a `Box`) without any check having run, so the source is checked
//! wherever it lives.

use crate::arg::Walker;
use crate::error::{CheckError, Fault, Site, StoreOp, Walk};
use crate::memory::ManagedMemory;
use crate::path::{steps_to, Step};
use crate::types::{Type, WORD};
use crate::words::scan_run;

/// Storing the pointer `src` at `dst`.
pub fn check_ptr_write<M: ManagedMemory + ?Sized>(mem: &M, dst: *const u8, src: *const u8) -> Result<(), CheckError> {
    let (d, s) = (dst as usize, src as usize);
    if s == 0 || !mem.region(s).is_managed() || mem.region(d).is_managed() {
        return Ok(());
    }
    Walker { mem }.shallow(s, d).map_err(|f| store_error(mem, *f, StoreOp::Write, "pointer".into(), d, s))
}

/// Copying a value of type `ty` from `src` to `dst`.
///
/// # Safety
/// `src` must be readable for `ty.size` bytes and hold a valid `ty`.
pub unsafe fn check_memmove<M: ManagedMemory + ?Sized>(
    mem: &M,
    ty: &Type,
    dst: *const u8,
    src: *const u8,
) -> Result<(), CheckError> {
    // SAFETY: the caller's contract.
    unsafe { check_memmove_partial(mem, ty, dst, src, 0, ty.size) }
}

/// Copying bytes `off..off + size` of a value of type `ty` whose start is at
/// `src`, to a destination whose copy of those bytes starts at `dst`.
///
/// # Safety
/// `src` must be the start of a valid `ty`, readable at `off..off + size`.
pub unsafe fn check_memmove_partial<M: ManagedMemory + ?Sized>(
    mem: &M,
    ty: &Type,
    dst: *const u8,
    src: *const u8,
    off: usize,
    size: usize,
) -> Result<(), CheckError> {
    if !ty.has_pointers() || mem.region(dst as usize).is_managed() {
        return Ok(());
    }
    // SAFETY: the caller's contract.
    unsafe { Walker { mem }.typed(ty, src as usize, off, off.saturating_add(size)) }
        .map_err(|f| store_error(mem, *f, StoreOp::Memmove, ty.to_string(), dst as usize, src as usize))
}

/// Copying `n` elements of type `elem` from `src` to `dst`.
///
/// # Safety
/// `src` must hold `n` valid values of `elem`.
pub unsafe fn check_slice_copy<M: ManagedMemory + ?Sized>(
    mem: &M,
    elem: &Type,
    dst: *const u8,
    src: *const u8,
    n: usize,
) -> Result<(), CheckError> {
    if !elem.has_pointers() || n == 0 || mem.region(dst as usize).is_managed() {
        return Ok(());
    }
    let w = Walker { mem };
    let s = src as usize;
    let walk: Walk = if elem.size == WORD {
        // Pointer-word elements: one run of `n` words.
        // SAFETY: the caller's contract: `n` aligned, readable words.
        unsafe {
            scan_run(s, n, |i, v| {
                w.shallow(v, s + i * WORD).map_err(|f| f.steps(steps_to(elem, 0)).step(Step::Index(i)))
            })
        }
    } else {
        (0..n).try_for_each(|i| {
            // SAFETY: element `i` is one of the caller's `n` values.
            unsafe { w.typed(elem, s + i * elem.size, 0, elem.size) }.map_err(|f| f.step(Step::Index(i)))
        })
    };
    walk.map_err(|f| store_error(mem, *f, StoreOp::SliceCopy, format!("[{n}]{elem}"), dst as usize, s))
}

/// The pointer words of bytes `off..off + size` of the value of type `ty`
/// starting at `src` (Go's `cgoCheckTypedBlock`). The caller has decided
/// that the destination is C memory.
///
/// # Safety
/// `src` must be the start of a valid `ty`, readable at `off..off + size`.
pub unsafe fn check_typed_block<M: ManagedMemory + ?Sized>(
    mem: &M,
    ty: &Type,
    src: *const u8,
    off: usize,
    size: usize,
) -> Result<(), CheckError> {
    // SAFETY: the caller's contract.
    unsafe { Walker { mem }.typed(ty, src as usize, off, off.saturating_add(size)) }
        .map_err(|f| store_error(mem, *f, StoreOp::TypedBlock, ty.to_string(), 0, src as usize))
}

#[cold]
#[inline(never)]
fn store_error<M: ManagedMemory + ?Sized>(
    mem: &M,
    f: Fault,
    op: StoreOp,
    ty: String,
    dst: usize,
    src: usize,
) -> CheckError {
    f.into_error(mem, Site::Store { op, ty, dst, src }, None)
}

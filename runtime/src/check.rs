//! The runtime's side of the pointer checks: the level, and the checks
//! gated by it against the real heap.
//!
//! The checker crate's checks are pure functions of a [`ManagedMemory`] and
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
//!
//! One shortcut, for the commonest checked argument: a pointer checked as
//! a whole heap object (Go's `_cgoCheckPointer(p, nil)`: a `Gc` or a raw
//! pointer passed as is). Each thread remembers the last such pointer it
//! found clean — the object's base and which of its words are pointers,
//! for objects of up to 64 words — with the heap's count of frees
//! (`CleanPointer`). The same pointer again, with no slot freed anywhere
//! since (so the object is the same object, of the same type) and every
//! pointer word of it still null, is clean again without the lookup: a
//! loop of calls passing one object pays a few loads. Anything else (a
//! non-null pointer word, which must be checked for pinning, another
//! pointer, a free since) takes the whole check. A pointer is remembered
//! the second time in a row it is checked (its object then costs a second
//! lookup, once), so a stream of different pointers pays one store each,
//! not a lookup more.

use crate::heap::heap;
use crate::heap::span::FREES;
use crate::sched::m::{current_m, current_m_inline};
use cgocheck_checker::memory::{ManagedMemory, Region};
use cgocheck_checker::types::PointeeType;
use cgocheck_checker::{
    check_arg, check_memmove, check_pointer, check_ptr_write, check_result, check_slice_copy, CType, CallSite,
    CheckError, Checks, Hint, Level, Type,
};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::OnceLock;

static LEVEL: OnceLock<Level> = OnceLock::new();

/// The process's checking level, read from the environment on first use.
/// A bad value prints the error and exits with status 2.
#[inline]
pub fn level() -> Level {
    *LEVEL.get_or_init(|| match Level::from_env() {
        Ok(level) => {
            FULL.store(if level == Level::Full { 2 } else { 1 }, Ordering::Relaxed);
            level
        }
        Err(e) => {
            eprintln!("cgocheck: {e}");
            std::process::exit(2)
        }
    })
}

/// Whether the level is 2 (`Level::Full`): 2 yes, 1 no, 0 not read yet.
/// One byte, set with the level (which the program reads before `main`,
/// below), for the C-call path's one test of it (`ffi::lend::recording`).
static FULL: AtomicU8 = AtomicU8::new(0);

/// Whether the level is 2: one load and a compare once the level is read.
#[inline(always)]
pub(crate) fn full() -> bool {
    match FULL.load(Ordering::Relaxed) {
        2 => true,
        1 => false,
        _ => level() == Level::Full,
    }
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

/// Checks the pointer argument `site` as a whole heap object
/// ([`Hint::Unknown`]: a `Gc` or raw pointer passed as is), with the
/// thread's last clean answer (file comment). `pointee` is its static
/// pointee type (`None` for `void*`).
///
/// # Safety
/// None beyond the heap answering truthfully; `ptr` is only looked up.
#[inline]
pub unsafe fn unknown_pointer(site: CallSite, ptr: *const u8, pointee: Option<&Type>) -> Result<(), CheckError> {
    gated(level(), Checks::Args, || {
        if clean_again(ptr as usize) {
            return Ok(());
        }
        // SAFETY: the caller's contract.
        unsafe { unknown_pointer_looked_up(site, ptr, pointee) }
    })
}

/// A thread's last clean whole-object pointer check (file comment): kept
/// in its M, written and read by that thread only.
#[derive(Default)]
pub(crate) struct CleanPointer {
    /// The pointer (0: none).
    ptr: AtomicUsize,
    /// The object's first byte.
    base: AtomicUsize,
    /// Bit `i`: word `i` of the object is a pointer word.
    mask: AtomicU64,
    /// `FREES` before the check found it clean.
    frees: AtomicU64,
    /// The last pointer that took the whole check: one that does again is
    /// remembered.
    last: AtomicUsize,
}

/// Whether `ptr` is this thread's last clean pointer, with no free since
/// and every pointer word of its object still null. Never inlined: it reads
/// the current M inline (`sched/m.rs`).
#[inline(never)]
fn clean_again(ptr: usize) -> bool {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m_inline().as_ref() }) else { return false };
    let c = &m.clean;
    if ptr == 0
        || c.ptr.load(Ordering::Relaxed) != ptr
        || c.frees.load(Ordering::Relaxed) != FREES.load(Ordering::SeqCst)
    {
        return false;
    }
    let base = c.base.load(Ordering::Relaxed);
    let mut mask = c.mask.load(Ordering::Relaxed);
    while mask != 0 {
        let at = base + mask.trailing_zeros() as usize * cgocheck_checker::WORD;
        mask &= mask - 1;
        // SAFETY: a pointer word of the live object (no slot was freed
        // since the check that found it live), word-aligned.
        if unsafe { core::ptr::read_volatile(at as *const usize) } != 0 {
            return false;
        }
    }
    true
}

/// [`unknown_pointer`] without a remembered answer: the whole check; a
/// clean heap object of up to 64 words checked twice in a row is
/// remembered.
///
/// # Safety
/// As [`unknown_pointer`].
#[inline(never)]
unsafe fn unknown_pointer_looked_up(site: CallSite, ptr: *const u8, pointee: Option<&Type>) -> Result<(), CheckError> {
    let frees = FREES.load(Ordering::SeqCst);
    // SAFETY: no `Whole` hint; every read is bounded by the heap.
    unsafe { check_pointer(heap(), site, ptr, pointee, Hint::Unknown) }?;
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return Ok(()) };
    // Only this thread writes its M's record: a load and a store (an
    // atomic swap would be a locked instruction).
    let repeated = m.clean.last.load(Ordering::Relaxed) == ptr as usize;
    m.clean.last.store(ptr as usize, Ordering::Relaxed);
    if !repeated {
        return Ok(());
    }
    let Region::Heap(o) = heap().region(ptr as usize) else { return Ok(()) };
    if o.ptr_bits.len() <= 64 {
        let c = &m.clean;
        c.ptr.store(0, Ordering::Relaxed);
        c.base.store(o.base, Ordering::Relaxed);
        c.mask.store(o.ptr_bits.iter_ones().fold(0, |mask, i| mask | 1 << i), Ordering::Relaxed);
        c.frees.store(frees, Ordering::Relaxed);
        c.ptr.store(ptr as usize, Ordering::Relaxed);
    }
    Ok(())
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

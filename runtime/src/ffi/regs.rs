//! C functions called with their arguments in registers: which parameter
//! and result types travel in the C ABI's integer registers as they are,
//! so that a declared function's wrapper (`c_functions!`) can hand them to
//! `asmcgocall` directly — no argument frame, no trampoline — when every
//! one of its (at most five) parameters and its result do.
//!
//! Those types are the integers, `bool`, raw pointers and `()` (no
//! result): [`InReg`]. A wrapper finds out at compile time, per type, with
//! [`Probe`]: method lookup on `&Probe<T>` picks [`Direct`] when `T:
//! InReg` and falls back to [`ViaFrame`] otherwise (autoref-based
//! dispatch: the macro sees the concrete types), so a function with a
//! `double` or a struct argument still compiles and takes the frame path.
//! The values go in and out as words: [`to_reg`] widens a narrow integer
//! as the ABI has callers do (sign- or zero-extended), [`from_reg`] keeps
//! the low bytes of the result, whatever C left above them.

use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};

/// A type that travels in one integer register of the C ABI (System V
/// x86_64): integers up to 64 bits, `bool`, raw pointers, and `()` for
/// "no result".
///
/// # Safety
/// The type must be at most 8 bytes, passed and returned in a general
/// register by the C ABI, and `SIGNED` must say whether the ABI widens it
/// with its sign.
pub unsafe trait InReg {
    /// Widened with its sign (signed integers narrower than a word).
    const SIGNED: bool;
}

macro_rules! in_reg {
    ($($t:ty => $signed:literal),* $(,)?) => {$(
        // SAFETY: an integer, bool or unit: general register, at most 8 bytes.
        unsafe impl InReg for $t {
            const SIGNED: bool = $signed;
        }
    )*};
}

in_reg! {
    () => false, bool => false,
    i8 => true, i16 => true, i32 => true, i64 => false, isize => false,
    u8 => false, u16 => false, u32 => false, u64 => false, usize => false,
}

// SAFETY: a thin pointer is one word in a general register (a pointer to
// an unsized type is two, and takes the frame path).
unsafe impl<T> InReg for *const T {
    const SIGNED: bool = false;
}
// SAFETY: as above.
unsafe impl<T> InReg for *mut T {
    const SIGNED: bool = false;
}

/// Asks, for a concrete `T`, whether it travels in a register: `(&Probe::<T>::NEW).reg()`.
pub struct Probe<T: ?Sized>(PhantomData<*const T>);

impl<T: ?Sized> Probe<T> {
    /// The probe.
    pub const NEW: Probe<T> = Probe(PhantomData);
}

/// The answer for `T: InReg`: `Some(signed)`.
pub trait Direct {
    /// `Some(whether it is sign-extended)`.
    fn reg(&self) -> Option<bool>;
}

impl<T: InReg> Direct for Probe<T> {
    #[inline(always)]
    fn reg(&self) -> Option<bool> {
        Some(T::SIGNED)
    }
}

/// The answer for every other type: `None`, the frame path.
pub trait ViaFrame {
    /// `None`.
    fn reg(&self) -> Option<bool>;
}

impl<T: ?Sized> ViaFrame for &Probe<T> {
    #[inline(always)]
    fn reg(&self) -> Option<bool> {
        None
    }
}

/// `v` as the register word the C ABI passes: its bytes, widened with its
/// sign when `signed`. Only called for [`InReg`] types (a wrapper's
/// register path; for other types the path is never taken).
#[inline(always)]
pub fn to_reg<T>(v: T, signed: bool) -> u64 {
    let size = size_of::<T>();
    assert!(size <= 8, "cgocheck: a value wider than a register on the register path");
    let mut w = 0u64;
    // SAFETY: `size` bytes of `v` into the first `size` bytes of `w`
    // (little-endian: the low bytes), both valid and distinct.
    unsafe { core::ptr::copy_nonoverlapping((&raw const v).cast::<u8>(), (&raw mut w).cast::<u8>(), size) };
    core::mem::forget(v);
    if signed && size < 8 {
        let shift = 64 - 8 * size as u32;
        (((w << shift) as i64) >> shift) as u64
    } else {
        w
    }
}

/// The value of type `T` in the low bytes of the register word `r`.
///
/// # Safety
/// `r` must be what a C function returning `T` left in `rax` (`T` an
/// [`InReg`] type).
#[inline(always)]
pub unsafe fn from_reg<T>(r: u64) -> T {
    let size = size_of::<T>();
    assert!(size <= 8, "cgocheck: a value wider than a register on the register path");
    let mut v = MaybeUninit::<T>::uninit();
    // SAFETY: the low `size` bytes of `r` into `v`.
    unsafe { core::ptr::copy_nonoverlapping((&raw const r).cast::<u8>(), v.as_mut_ptr().cast::<u8>(), size) };
    // SAFETY: the caller's contract: C returned a `T` there.
    unsafe { v.assume_init() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_tell_register_types_from_the_rest() {
        assert_eq!((&Probe::<i32>::NEW).reg(), Some(true));
        assert_eq!((&Probe::<u8>::NEW).reg(), Some(false));
        assert_eq!((&Probe::<*mut core::ffi::c_void>::NEW).reg(), Some(false));
        assert_eq!((&Probe::<()>::NEW).reg(), Some(false));
        assert_eq!((&Probe::<f64>::NEW).reg(), None);
        assert_eq!((&Probe::<[u64; 2]>::NEW).reg(), None);
    }

    #[test]
    fn words_are_widened_as_the_abi_wants_and_read_back() {
        assert_eq!(to_reg(-1i8, true), u64::MAX);
        assert_eq!(to_reg(-2i32, true), (-2i64) as u64);
        assert_eq!(to_reg(0xffu8, false), 0xff);
        assert_eq!(to_reg(true, false), 1);
        let p = 0x1234_5678_9abc_usize as *const u8;
        assert_eq!(to_reg(p, false), 0x1234_5678_9abc);
        // SAFETY: each word holds a value of the type read.
        unsafe {
            assert_eq!(from_reg::<i32>(0xdead_beef_ffff_fffe), -2);
            assert_eq!(from_reg::<u16>(0x1_0002), 2);
            assert!(from_reg::<bool>(0xff00_0001));
            from_reg::<()>(7);
        }
    }
}

//! The store API: managed code writing through C pointers.
//!
//! Under `GOEXPERIMENT=cgocheck2` Go's write barrier checks every pointer
//! store, and the runtime's `typedmemmove`/`typedslicecopy` check every
//! copy: storing an unpinned Go pointer into memory that is not Go's (C's
//! `malloc`, a C global) fails, because the collector cannot see it there.
//! Rust has no compiler-inserted barrier, so managed code writes through a
//! C pointer with the methods of [`CPtr<T>`]:
//!
//! | Go | here | check at `CGOCHECK=2` |
//! |---|---|---|
//! | `*p = x` (one pointer word) | [`CPtr::write`] | `cgoCheckPtrWrite` ([`check::ptr_write`]) |
//! | `*p = v` (a larger value) | [`CPtr::write`] | `cgoCheckMemmove` ([`check::write`]) |
//! | `*p = *q`, `typedmemmove` | [`CPtr::memmove`] | `cgoCheckMemmove` |
//! | `copy(p.a[:], s)` | [`CPtr::copy_from`] | `cgoCheckSliceCopy` ([`check::copy`]) |
//!
//! At levels 0 and 1 they are plain stores (one load and compare of the
//! level first). A violation panics with the checker's message before
//! anything is written. A write into managed memory through a `CPtr` is
//! never a violation: the checks look at the destination first.
//!
//! [`CPtr<T>`] is one word, `#[repr(transparent)]` over `*mut T`, with the
//! descriptor of a raw pointer to `T`, so it can be a parameter or result
//! type of a `c_functions!` declaration: `fn f14a() -> CPtr<*mut c_char>;`.
//! [`cptr_field!`](crate::cptr_field) projects it to a field, like Go's
//! `&p.f`.

use crate::check;
use crate::heap::heap;
use crate::values::Gc;
use cgocheck_checker::types::PointeeType;
use cgocheck_checker::{check_memmove, CType, CallSite, CheckError, Checks, Type, WORD};
use core::fmt;

/// A pointer to C memory that managed code writes through (Go's `*C.T`).
#[repr(transparent)]
pub struct CPtr<T> {
    ptr: *mut T,
}

impl<T> Clone for CPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for CPtr<T> {}

impl<T> PartialEq for CPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl<T> Eq for CPtr<T> {}

impl<T> fmt::Debug for CPtr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CPtr({:p})", self.ptr)
    }
}

impl<T> CPtr<T> {
    /// Wraps a raw pointer.
    pub const fn new(ptr: *mut T) -> CPtr<T> {
        CPtr { ptr }
    }

    /// The null pointer.
    pub const fn null() -> CPtr<T> {
        CPtr { ptr: core::ptr::null_mut() }
    }

    /// Whether the pointer is null.
    pub fn is_null(self) -> bool {
        self.ptr.is_null()
    }

    /// The raw pointer.
    pub fn as_ptr(self) -> *mut T {
        self.ptr
    }

    /// A pointer `n` elements further (C's `p + n`).
    ///
    /// # Safety
    /// As for `<*mut T>::add`: the result stays inside the same allocation.
    pub unsafe fn add(self, n: usize) -> CPtr<T> {
        // SAFETY: the caller's contract.
        CPtr { ptr: unsafe { self.ptr.add(n) } }
    }

    /// Reads the value (loads are never checked).
    ///
    /// # Safety
    /// `self` is valid for reading an initialised `T` and aligned.
    pub unsafe fn read(self) -> T {
        // SAFETY: the caller's contract.
        unsafe { self.ptr.read() }
    }
}

impl<T: CType> CPtr<T> {
    /// Stores `value` at `self` (Go's `*p = v`). At `CGOCHECK=2`, a value
    /// holding an unpinned managed pointer stored into C memory panics with
    /// the checker's message and nothing is written. A one-word pointer value
    /// is checked as a pointer write (Go's write barrier), anything larger
    /// as a typed memmove.
    ///
    /// # Safety
    /// `self` is valid for writing a `T` and aligned.
    #[track_caller]
    #[inline]
    pub unsafe fn write(self, value: T) {
        if T::TYPE.size == WORD && T::TYPE.ptrdata == WORD {
            // SAFETY: `T` is one word, and that word is a pointer word.
            let word = unsafe { core::mem::transmute_copy::<T, *const u8>(&value) };
            or_fail(check::ptr_write(self.ptr as *const u8, word));
            // SAFETY: the caller's contract.
            unsafe { self.ptr.write(value) }
        } else {
            // SAFETY: the caller's contract; `check::write` writes only
            // after a successful check.
            or_fail(unsafe { check::write(self.ptr, value) });
        }
    }

    /// Copies the value at `src` to `self` without moving it through a
    /// temporary (Go's `typedmemmove`, as in `*p = *q`): for values too
    /// large to pass by value, like a `[*mut c_char; 32769]`. Checked as a
    /// typed memmove; the two may overlap.
    ///
    /// # Safety
    /// `self` is valid for writing a `T` and aligned.
    #[track_caller]
    pub unsafe fn memmove(self, src: &T) {
        // SAFETY: `src` is a valid `T`.
        or_fail(check::gated(check::level(), Checks::Stores, || unsafe {
            check_memmove(heap(), T::TYPE, self.ptr as *const u8, (src as *const T).cast())
        }));
        // SAFETY: the caller's contract for `self`; `src` is a readable `T`;
        // `ptr::copy` allows the two to overlap, as memmove does.
        unsafe { core::ptr::copy(src, self.ptr, 1) }
    }

    /// Copies the elements of `src` to `self` and the `src.len() - 1`
    /// elements after it (Go's `copy(dst, src)`). At `CGOCHECK=2` every
    /// managed pointer among them must be pinned.
    ///
    /// # Safety
    /// `self` is valid for writing `src.len()` `T`s, aligned, and does not
    /// overlap `src`.
    #[track_caller]
    pub unsafe fn copy_from(self, src: &[T])
    where
        T: Copy,
    {
        // SAFETY: the caller's contract.
        or_fail(unsafe { check::copy(self.ptr, src) });
    }
}

impl<T, const N: usize> CPtr<[T; N]> {
    /// A pointer to element `i` of the C array (Go's `&p.a[i]`, where
    /// `p.a[i:]` starts). Panics when `i` is out of range.
    pub fn elem(self, i: usize) -> CPtr<T> {
        assert!(i < N, "cgocheck: index out of range [{i}] with length {N}");
        CPtr::new(self.ptr.cast::<T>().wrapping_add(i))
    }
}

/// Panics with the checker's message.
#[track_caller]
#[inline]
fn or_fail(r: Result<(), CheckError>) {
    if let Err(e) = r {
        super::fail(e);
    }
}

// SAFETY: `repr(transparent)` over `*mut T`: the descriptor of a raw
// pointer to `T`; null (all zero) is valid.
unsafe impl<T: PointeeType> CType for CPtr<T> {
    const TYPE: &'static Type = T::POINTER;
}

/// A C pointer passed to C: checked like a raw pointer (it should point to C
/// memory; if it points into a managed object, that object is checked whole).
impl<T: PointeeType> super::Arg<*mut T> for CPtr<T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        super::Arg::<*mut T>::check(&self.ptr, site)
    }

    #[inline(always)]
    fn into_c(self) -> *mut T {
        self.ptr
    }
}

/// As for `*mut T`.
impl<T: PointeeType> super::Arg<*const T> for CPtr<T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        super::Arg::<*mut T>::check(&self.ptr, site)
    }

    #[inline(always)]
    fn into_c(self) -> *const T {
        self.ptr
    }
}

impl<T> From<Gc<T>> for CPtr<T> {
    /// A `CPtr` into managed memory: writes through it are never store
    /// violations (the collector sees them).
    fn from(p: Gc<T>) -> CPtr<T> {
        CPtr::new(p.as_ptr())
    }
}

/// Projects a [`CPtr`] to one of its pointee's fields, like Go's `&p.f`:
/// `cptr_field!(p, f)` is a `CPtr` to field `f` of the struct `p` points to.
/// Use it inside `unsafe`: `p` must point to a valid struct.
///
/// ```
/// use cgocheck::{cptr_field, CPtr, CType};
///
/// #[derive(CType)]
/// #[repr(C)]
/// struct Pair {
///     a: u64,
///     b: [u64; 2],
/// }
///
/// // SAFETY: calloc'd room for one zeroed `Pair`, freed below.
/// unsafe {
///     let p = CPtr::<Pair>::new(libc::calloc(1, std::mem::size_of::<Pair>()).cast());
///     cptr_field!(p, b).elem(1).write(7);
///     assert_eq!(p.read().b, [0, 7]);
///     libc::free(p.as_ptr().cast());
/// }
/// ```
#[macro_export]
macro_rules! cptr_field {
    ($p:expr, $field:ident) => {
        $crate::ffi::CPtr::new(&raw mut (*$crate::ffi::CPtr::as_ptr($p)).$field)
    };
}

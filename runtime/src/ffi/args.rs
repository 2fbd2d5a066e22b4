//! What a call site knows about each argument, and the check it gets.
//!
//! cmd/cgo rewrites every `C.f(args)` into code that evaluates each argument
//! once, then calls `_cgoCheckPointer(arg, hint)` for the arguments that
//! need it, choosing the hint from the *syntax* of the argument
//! (`cmd/cgo/gcc.go`: `checkIndex`, `checkAddr`, `checkSlice`), and finally
//! calls C. Rust macros cannot look inside an expression the way cmd/cgo
//! does, so the call site says it with a short wrapper instead:
//!
//! - [`field`]`(&x.f)`: Go's `&x`, `&x.f` ([`Hint::Element`]); said of an
//!   element of a managed slice or array (`field(&s[i])`, which Rust cannot
//!   tell apart from `field(&x.f)`), the checker finds the array in the
//!   heap object or managed global and checks all of it, as Go checks
//!   `&s[i]`;
//! - [`elem`]`(&s, i)`: Go's `&s[i]`, `&a[i]`, `&p[i]` for `p` a pointer to
//!   an array ([`Hint::Whole`]);
//! - [`slice_data`]`(&s)`: Go's `unsafe.SliceData(s[i:j])` / a slice
//!   expression (`checkSlice`), the same whole-slice check without an index;
//! - [`string_data`]`(&s)`: Go's `unsafe.StringData(s)`, which cmd/cgo does
//!   not check at all; here the string's bytes are checked as an extent;
//! - [`pointee`]`::<T>(p)`, [`extent`]`(p, n)`: beyond Go, a `void*` whose
//!   type is known, and a pointer with its length;
//! - anything else — a raw pointer, a [`Gc`], a [`CPtr`](super::CPtr) — is an
//!   unknown pointer ([`Hint::Unknown`]: the whole heap object or managed
//!   global is checked; a pointer into a task stack is refused, since a
//!   stack has no object bounds: pass it with one of the wrappers above).
//!
//! Go strips conversions before it looks (`unsafe.Pointer(&s.a)` is still
//! checked as the field `a`, Go issue 25941); here [`Hinted::as_void`] is the
//! conversion to `void*` and keeps the hint and the pointee type.
//!
//! Which arguments are checked at all is decided by the *parameter* type,
//! as cmd/cgo's `needsPointerCheck` does: a pointer to a type without
//! pointers (`int*`, a union of integers) is never checked — C, reading
//! through it by its type, finds no pointer — while `void*` and pointers to
//! pointerful types are. Values passed by value are checked with
//! [`check::value`] when their type has pointers (a struct, a string, a
//! slice: Go's `passstring` row). Both decisions are on constants, so an
//! argument that needs no check costs nothing at all.
//!
//! [`Arg`] is the trait that ties an argument to its parameter type: the
//! wrappers `c_functions!` generates take `impl Arg<P>` for a parameter of
//! type `P`.

use crate::check;
use crate::heap::heap;
use crate::values::{Gc, GcSlice, GcStr};
use cgocheck_checker::types::PointeeType;
use cgocheck_checker::{check_pointer, CType, CallSite, CheckError, Checks, Hint, Kind, Type};
use core::ffi::c_void;
use core::marker::PhantomData;

/// An argument for a C parameter of type `P`.
///
/// Implemented for `P` itself (any [`CType`]: integers, structs by value,
/// raw pointers, managed strings and slices), and for the other ways to say
/// "a pointer" — [`Gc`], [`Hinted`], [`CPtr`](super::CPtr) — when `P` is a
/// raw pointer to their pointee. A type of one's own can implement it to be
/// passed directly.
///
/// An argument that fits no parameter is refused at compile time with a
/// message that says what fits. A string's bytes are `u8`s, so
/// `string_data(&s)` fits a `*const u8` and needs `.cast::<c_char>()` for
/// C's `char*`; a Rust reference is not a C pointer, so `&mut arr` goes in
/// through a wrapper that says what C sees:
///
/// ```compile_fail
/// use core::ffi::c_int;
/// // C's `char*` where `char` is signed (`c_char` is `i8` on x86-64).
/// cgocheck::c_functions! { extern "C" { fn puts(s: *const i8) -> c_int; } }
/// cgocheck::run(|| {
///     let s = cgocheck::new_string("hi\0");
///     // error: `Hinted<'_, u8>` cannot be passed to a C parameter of type `*const i8`
///     unsafe { puts(cgocheck::string_data(&s)) };
/// });
/// ```
/// ```
/// use core::ffi::{c_char, c_int};
/// cgocheck::c_functions! { extern "C" { fn puts(s: *const c_char) -> c_int; } }
/// cgocheck::run(|| {
///     let s = cgocheck::new_string("hi\0");
///     // SAFETY: NUL-terminated.
///     unsafe { puts(cgocheck::string_data(&s).cast::<c_char>()) };
/// });
/// ```
/// ```compile_fail
/// cgocheck::c_functions! { extern "C" { fn memset(p: *mut u8, c: i32, n: usize) -> *mut u8; } }
/// let mut arr = [1u8; 4];
/// // error: `&mut [u8; 4]` cannot be passed to a C parameter of type `*mut u8`
/// cgocheck::run(|| unsafe { memset(&mut arr, 0, 4) });
/// ```
/// ```
/// cgocheck::c_functions! { extern "C" { fn memset(p: *mut u8, c: i32, n: usize) -> *mut u8; } }
/// let mut arr = [1u8; 4];
/// // SAFETY: the 4 bytes of `arr`.
/// cgocheck::run(|| unsafe { memset(cgocheck::field(&mut arr).cast::<u8>(), 0, 4) });
/// assert_eq!(arr, [0; 4]);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be passed to a C parameter of type `{P}`",
    label = "this argument does not fit the parameter type `{P}`",
    note = "for a pointer parameter, pass a raw pointer, a `Gc<T>`, a `CPtr`, or a wrapper that says what C sees: \
            `field(&x)` / `field(&mut x)` (one value or field), `elem(&arr, i)` (an element of an array or slice), \
            `slice_data(&arr)` (an array's or slice's data), `string_data(&s)` (a string's bytes), \
            `extent(p, n)` (n bytes), `pointee::<T>(p)` (a `void*` to a T)",
    note = "the pointee types must match: convert a wrapper with `.cast::<U>()` (`string_data(&s).cast::<c_char>()` \
            for a `char*`), and to `void*` with `.as_void()`; a `*mut T` fits a `*const T` parameter"
)]
pub trait Arg<P> {
    /// Runs the argument check for this argument at position `site`, at the
    /// process's `CGOCHECK` level.
    fn check(&self, site: CallSite) -> Result<(), CheckError>;

    /// The value C receives.
    fn into_c(self) -> P;
}

/// Whether a parameter of type `P` is checked (cmd/cgo's
/// `needsPointerCheck`): a pointer whose pointee has pointers, `void*`, or
/// a value with pointers. Folds to a constant.
#[inline(always)]
pub fn param_needs_check<P: CType>() -> bool {
    match P::TYPE.kind {
        Kind::Pointer { elem } => elem.get().has_pointers(),
        _ => P::TYPE.has_pointers(),
    }
}

/// By value, including a raw pointer (Go's `_cgoCheckPointer(p, nil)` for
/// a pointer: the whole object it points into).
impl<T: CType> Arg<T> for T {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        if !param_needs_check::<T>() {
            return Ok(());
        }
        // A pointer goes straight to the unknown-pointer check (what
        // `check::value` would reach after dispatching on the kind); the
        // match is on a constant and folds away.
        let pointee = match T::TYPE.kind {
            Kind::Pointer { elem } => Some(elem.get()),
            Kind::UnsafePointer => None,
            _ => return check::value(site, self),
        };
        // SAFETY: `T`'s descriptor says it is one pointer word (a `CType`
        // promise), so `self` is read as the pointer it is.
        let ptr = unsafe { core::mem::transmute_copy::<T, *const u8>(self) };
        // SAFETY: the pointer is only looked up.
        unsafe { check::unknown_pointer(site, ptr, pointee) }
    }

    #[inline(always)]
    fn into_c(self) -> T {
        self
    }
}

/// A `*mut T` for a `*const T` parameter.
impl<T: PointeeType> Arg<*const T> for *mut T {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        Arg::<*const T>::check(&self.cast_const(), site)
    }

    #[inline(always)]
    fn into_c(self) -> *const T {
        self
    }
}

/// A managed pointer: nothing is known about how much of the object C sees,
/// so the whole object is checked (Go's `C.f(p)` with `p` a variable).
impl<T: CType> Arg<*mut T> for Gc<T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        Arg::<*mut T>::check(&self.as_ptr(), site)
    }

    #[inline(always)]
    fn into_c(self) -> *mut T {
        self.as_ptr()
    }
}

/// As for `*mut T`.
impl<T: CType> Arg<*const T> for Gc<T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        Arg::<*mut T>::check(&self.as_ptr(), site)
    }

    #[inline(always)]
    fn into_c(self) -> *const T {
        self.as_ptr()
    }
}

/// A pointer argument with what the call site knows about it: built by
/// [`field`], [`elem`], [`slice_data`], [`string_data`], [`pointee`],
/// [`extent`]. `T` is its static pointee type (`c_void` after
/// [`Hinted::as_void`]); it borrows the slice or array header an
/// [`elem`] hint reads, for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct Hinted<'a, T> {
    /// The pointer C receives.
    ptr: *mut T,
    /// Where the hinted memory starts: `ptr` itself, except for an element
    /// of a Rust slice view (the view's first element, see [`elem`]).
    at: *const u8,
    /// The type the hint reads `at` as (kept across `as_void`).
    pointee: Option<&'static Type>,
    hint: Hint<'a>,
    _borrow: PhantomData<&'a ()>,
}

impl<'a, T> Hinted<'a, T> {
    fn new(ptr: *mut T, pointee: Option<&'static Type>, hint: Hint<'a>) -> Self {
        Hinted { ptr, at: ptr as *const u8, pointee, hint, _borrow: PhantomData }
    }

    /// The conversion to `void*` (Go's `unsafe.Pointer(x)`): the same
    /// pointer, checked as before by its original pointee type.
    pub fn as_void(self) -> Hinted<'a, c_void> {
        Hinted { ptr: self.ptr.cast(), at: self.at, pointee: self.pointee, hint: self.hint, _borrow: PhantomData }
    }

    /// A conversion to another pointer type (Go's `(*U)(unsafe.Pointer(x))`),
    /// checked as before: cmd/cgo strips conversions before it looks.
    pub fn cast<U>(self) -> Hinted<'a, U> {
        Hinted { ptr: self.ptr.cast(), at: self.at, pointee: self.pointee, hint: self.hint, _borrow: PhantomData }
    }

    /// The pointer C receives.
    pub fn as_ptr(&self) -> *mut T {
        self.ptr
    }

    /// What the call site knows about it.
    pub fn hint(&self) -> Hint<'a> {
        self.hint
    }

    /// The check, ungated by the parameter type.
    #[inline]
    fn run(&self, site: CallSite) -> Result<(), CheckError> {
        check::gated(check::level(), Checks::Args, || {
            // SAFETY: a `Whole` hint's `value` points to the array or slice
            // header its constructor borrowed for `'a`, which outlives `self`;
            // every other read is bounded by the heap.
            unsafe { check_pointer(heap(), site, self.at, self.pointee, self.hint) }
        })
    }
}

impl<T: PointeeType> Arg<*mut T> for Hinted<'_, T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        if param_needs_check::<*mut T>() {
            self.run(site)
        } else {
            Ok(())
        }
    }

    #[inline(always)]
    fn into_c(self) -> *mut T {
        self.ptr
    }
}

impl<T: PointeeType> Arg<*const T> for Hinted<'_, T> {
    #[inline(always)]
    fn check(&self, site: CallSite) -> Result<(), CheckError> {
        Arg::<*mut T>::check(self, site)
    }

    #[inline(always)]
    fn into_c(self) -> *const T {
        self.ptr
    }
}

/// Anything that is the address of one value: a reference, a raw pointer,
/// or a managed pointer (Go's `&T{...}`).
pub trait Address<T> {
    /// The address, as a raw pointer.
    fn address(self) -> *mut T;
}

impl<T> Address<T> for &T {
    fn address(self) -> *mut T {
        (self as *const T).cast_mut()
    }
}
impl<T> Address<T> for &mut T {
    fn address(self) -> *mut T {
        self
    }
}
impl<T> Address<T> for *const T {
    fn address(self) -> *mut T {
        self.cast_mut()
    }
}
impl<T> Address<T> for *mut T {
    fn address(self) -> *mut T {
        self
    }
}
impl<T> Address<T> for Gc<T> {
    fn address(self) -> *mut T {
        self.as_ptr()
    }
}

/// The address of one variable or field: Go's `&x`, `&x.f`
/// ([`Hint::Element`]). Only the pointee, as its type `T`, is checked —
/// not the rest of the object it lives in — except for an element of an
/// array of `T` in a heap object or managed global (`field(&s[i])`), where
/// the whole array is checked, as Go checks `&s[i]` (prefer [`elem`], which
/// says it; [`pointee`] gives C one element only).
///
/// C may write through the pointer only when it was made from a `&mut`, a
/// raw pointer or a `Gc` (not from a shared reference).
pub fn field<'a, T: CType>(addr: impl Address<T>) -> Hinted<'a, T> {
    Hinted::new(addr.address(), Some(T::TYPE), Hint::Element)
}

/// A `void*` whose pointee type is known to be `T` (beyond Go,
/// [`Hint::Pointee`]): checked as one `T`, where Go checks the whole object
/// (Go issue 28606's false positive).
pub fn pointee<'a, T: CType>(ptr: *mut c_void) -> Hinted<'a, c_void> {
    Hinted::new(ptr, Some(T::TYPE), Hint::Pointee(T::TYPE))
}

/// A pointer that gives C exactly `n` bytes (beyond Go, [`Hint::Extent`]):
/// the pointer words among those bytes are checked, nothing else.
pub fn extent<'a, T>(ptr: *mut T, n: usize) -> Hinted<'a, T> {
    Hinted::new(ptr, None, Hint::Extent(n))
}

/// An array or slice whose elements a call may pass: Go's `&a[i]` checks
/// the whole of it.
pub trait Indexed {
    /// The element type.
    type Elem;
    /// Number of elements.
    fn len(&self) -> usize;
    /// Whether it has no elements.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Address of element 0 (possibly dangling when empty).
    fn base(&self) -> *mut Self::Elem;
    /// The hint for "an element of this", and where it reads.
    fn whole(&self) -> (Hint<'_>, *const u8);
}

/// A managed slice: its backing array, all `cap` elements (Go's
/// `cgoCheckArg` of the slice).
impl<T: CType> Indexed for GcSlice<T> {
    type Elem = T;
    fn len(&self) -> usize {
        GcSlice::len(self)
    }
    fn base(&self) -> *mut T {
        self.as_ptr()
    }
    fn whole(&self) -> (Hint<'_>, *const u8) {
        (Hint::Whole { ty: Self::TYPE, value: (self as *const Self).cast() }, self.as_ptr() as *const u8)
    }
}

/// An array value (a local, a field, a managed global).
impl<T: CType, const N: usize> Indexed for [T; N] {
    type Elem = T;
    fn len(&self) -> usize {
        N
    }
    fn base(&self) -> *mut T {
        self.as_ptr().cast_mut()
    }
    fn whole(&self) -> (Hint<'_>, *const u8) {
        (Hint::Whole { ty: Self::TYPE, value: self.as_ptr().cast() }, self.as_ptr().cast())
    }
}

/// A managed pointer to an array (Go's `a := new([10]byte); &a[0]`).
impl<T: CType, const N: usize> Indexed for Gc<[T; N]> {
    type Elem = T;
    fn len(&self) -> usize {
        N
    }
    fn base(&self) -> *mut T {
        self.as_ptr().cast()
    }
    fn whole(&self) -> (Hint<'_>, *const u8) {
        (Hint::Whole { ty: <[T; N]>::TYPE, value: self.as_ptr().cast() }, self.as_ptr().cast())
    }
}

/// A Rust slice view (`&obj.a[..]`, Go's `obj.a[:]`): it has no header in
/// memory, so its elements are checked as an extent from its first element.
impl<T: CType> Indexed for [T] {
    type Elem = T;
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn base(&self) -> *mut T {
        self.as_ptr().cast_mut()
    }
    fn whole(&self) -> (Hint<'_>, *const u8) {
        (Hint::Extent(core::mem::size_of_val(self)), self.as_ptr().cast())
    }
}

/// The address of element `i` of an array or slice: Go's `&s[i]`
/// ([`Hint::Whole`]): the whole array or slice is checked, nothing else of
/// the object it lives in. Panics when `i` is out of range, as Go does.
pub fn elem<S: Indexed + ?Sized>(s: &S, i: usize) -> Hinted<'_, S::Elem>
where
    S::Elem: CType,
{
    let len = s.len();
    assert!(i < len, "cgocheck: index out of range [{i}] with length {len}");
    let (hint, at) = s.whole();
    Hinted { ptr: s.base().wrapping_add(i), at, pointee: Some(<S::Elem>::TYPE), hint, _borrow: PhantomData }
}

/// The data pointer of an array or slice, checked as [`elem`] checks it
/// (Go's `unsafe.SliceData(s[i:j])` and slice expressions): also for an
/// empty one.
pub fn slice_data<S: Indexed + ?Sized>(s: &S) -> Hinted<'_, S::Elem>
where
    S::Elem: CType,
{
    let (hint, at) = s.whole();
    Hinted { ptr: s.base(), at, pointee: Some(<S::Elem>::TYPE), hint, _borrow: PhantomData }
}

/// A string's bytes (a managed string or a `&str` viewing managed memory).
pub trait StrData {
    /// The bytes' address and their number.
    fn data(&self) -> (*const u8, usize);
}
impl StrData for GcStr {
    fn data(&self) -> (*const u8, usize) {
        (self.as_ptr(), self.len())
    }
}
impl StrData for str {
    fn data(&self) -> (*const u8, usize) {
        (self.as_ptr(), self.len())
    }
}

/// A string's data pointer: Go's `unsafe.StringData(s)`. cmd/cgo does not
/// check it (string bytes hold no pointers); here its `len` bytes are
/// checked as an extent, which finds nothing in a real string and catches
/// a string made to view pointer words.
pub fn string_data<S: StrData + ?Sized>(s: &S) -> Hinted<'_, u8> {
    let (ptr, len) = s.data();
    Hinted::new(ptr.cast_mut(), None, Hint::Extent(len))
}

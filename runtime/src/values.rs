//! Managed values: Go's `*T`, `[]T` and `string` as Rust types.
//!
//! - [`Gc<T>`]: a nullable pointer to a managed `T` (Go's `*T`). One word,
//!   `Copy`, compares by address.
//! - [`GcSlice<T>`]: `{ ptr, len, cap }` over a managed backing array
//!   (Go's slice header, same layout).
//! - [`GcStr`]: `{ ptr, len }` over managed UTF-8 bytes (Go's string header).
//!
//! All three are `#[repr(C)]`/`transparent`, so they can sit in
//! `#[derive(CType)]` structs and be passed to C; their descriptors say the
//! first word is a pointer.
//!
//! Why `Deref` is sound: the heap never moves an object, and its memory is
//! only released by the unsafe `Heap::free` (whose caller promises nobody
//! dereferences the object again) or, later, by the collector, which frees
//! only objects no `Gc` reaches. So a non-null `Gc<T>` obtained from
//! [`new`] points to a live, initialised (at worst all-zero, which
//! `CType` guarantees is a valid `T`) `T` for as long as it is used. Shared
//! references are handed out freely, like Go's pointers; mutation goes
//! through the unsafe [`Gc::as_mut`] / [`GcSlice::as_mut_slice`] (caller
//! rules out aliasing) or through `T`'s interior mutability.

use crate::heap::heap;
use cgocheck_checker::types::{PointeeType, ONE_POINTER};
use cgocheck_checker::{CType, Kind, Type, TypeRef, WORD};
use std::fmt;
use std::ops::{Deref, Index};

/// A nullable pointer to a managed `T`: Go's `*T`.
#[repr(transparent)]
pub struct Gc<T> {
    ptr: *mut T,
}

impl<T> Clone for Gc<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Gc<T> {}

impl<T> PartialEq for Gc<T> {
    fn eq(&self, other: &Self) -> bool {
        self.ptr == other.ptr
    }
}
impl<T> Eq for Gc<T> {}

impl<T> fmt::Debug for Gc<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Gc({:p})", self.ptr)
    }
}

// SAFETY: a `Gc<T>` hands out `&T` on any thread, like `&T` itself: it is
// Send and Sync exactly when `T: Sync`. Mutation is unsafe (`as_mut`).
unsafe impl<T: Sync> Send for Gc<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Gc<T> {}

impl<T> Gc<T> {
    /// The nil pointer.
    pub const fn null() -> Gc<T> {
        Gc { ptr: std::ptr::null_mut() }
    }

    /// Whether this is the nil pointer.
    pub fn is_null(self) -> bool {
        self.ptr.is_null()
    }

    /// The raw pointer.
    pub fn as_ptr(self) -> *mut T {
        self.ptr
    }

    /// The address as an integer.
    pub fn addr(self) -> usize {
        self.ptr as usize
    }

    /// Wraps a raw pointer.
    ///
    /// # Safety
    /// `ptr` is null or points to a live managed `T` (from [`new`] or
    /// an element of a managed array), as `Deref` will rely on.
    pub const unsafe fn from_ptr(ptr: *mut T) -> Gc<T> {
        Gc { ptr }
    }

    /// A mutable reference to the value. Panics on nil.
    ///
    /// # Safety
    /// No other reference to the value (through any copy of this `Gc`, a
    /// `Deref`, or C) is used while the returned one is alive.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut(&self) -> &mut T {
        assert!(!self.is_null(), "cgocheck: nil pointer dereference (Gc<{}>::as_mut)", std::any::type_name::<T>());
        // SAFETY: non-null, so live and initialised (module comment); the
        // caller guarantees exclusivity.
        unsafe { &mut *self.ptr }
    }
}

impl<T> Deref for Gc<T> {
    type Target = T;
    /// Panics on nil, like Go's nil pointer dereference.
    fn deref(&self) -> &T {
        assert!(!self.is_null(), "cgocheck: nil pointer dereference (Gc<{}>)", std::any::type_name::<T>());
        // SAFETY: a non-null Gc points to a live, initialised T that is
        // never moved nor freed while reachable (module comment); mutation
        // only happens through unsafe APIs that exclude this reference.
        unsafe { &*self.ptr }
    }
}

/// `*T`: one pointer word whose element is `T`'s descriptor, named lazily
/// (a `TypeRef`), so managed types may point to themselves and to each other:
///
/// ```
/// use cgocheck::{CType, Gc, GcSlice, Kind};
///
/// #[derive(CType)]
/// #[repr(C)]
/// struct Parent { kids: GcSlice<Child> }
/// #[derive(CType)]
/// #[repr(C)]
/// struct Child { parent: Gc<Parent>, next: Gc<Child> }
///
/// let Kind::Pointer { elem } = <Gc<Parent>>::TYPE.kind else { unreachable!() };
/// assert!(std::ptr::eq(elem.get(), Parent::TYPE));
/// assert_eq!((Child::TYPE.size, Child::TYPE.ptrdata), (16, 16));
///
/// let p = cgocheck::new(Parent { kids: cgocheck::new_slice(1) });
/// let c = cgocheck::new(Child { parent: p, next: Gc::null() });
/// assert!(c.parent == p && c.next.is_null());
/// ```
// SAFETY: one pointer word (`repr(transparent)` over `*mut T`); null (all
// zero) is a valid `Gc`.
unsafe impl<T: CType> CType for Gc<T> {
    /// The same descriptor as `*mut T`: which kind of pointer it is is decided
    /// by where it points, not by its type.
    const TYPE: &'static Type = <T as PointeeType>::POINTER;
}

/// Allocates a managed `T` holding `value`: Go's `&T{...}` / `new(T)`.
/// Aligned to `T`'s alignment, whatever it is (up to Rust's largest, 2^29).
#[inline]
pub fn new<T: CType>(value: T) -> Gc<T> {
    let p = heap().alloc(T::TYPE, 1) as *mut T;
    // SAFETY: `alloc` returned zeroed, aligned memory for one `T` (the
    // descriptor's size and alignment are `T`'s, a `CType` promise); nothing
    // else refers to it yet. For a zero-sized `T` the write is a no-op at the
    // (aligned, non-null) zero-sized address.
    unsafe { p.write(value) };
    Gc { ptr: p }
}

/// A managed slice: `{ ptr, len, cap }` like Go's slice header.
#[repr(C)]
pub struct GcSlice<T> {
    ptr: *mut T,
    len: usize,
    cap: usize,
}

impl<T> Clone for GcSlice<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for GcSlice<T> {}

impl<T> fmt::Debug for GcSlice<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GcSlice({:p}, len {}, cap {})", self.ptr, self.len, self.cap)
    }
}

// SAFETY: as for `Gc<T>`: shared access to `T`s from any thread.
unsafe impl<T: Sync> Send for GcSlice<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for GcSlice<T> {}

impl<T> GcSlice<T> {
    /// The nil slice (null pointer, length 0).
    pub const fn nil() -> GcSlice<T> {
        GcSlice { ptr: std::ptr::null_mut(), len: 0, cap: 0 }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Pointer to the backing array (null for the nil slice).
    pub fn as_ptr(&self) -> *mut T {
        self.ptr
    }

    /// Pointer to element `i` (`i <= len`: one past the end is allowed, as
    /// for `&s[len:]`). Panics when out of range.
    pub fn elem_ptr(&self, i: usize) -> *mut T {
        assert!(i <= self.len, "cgocheck: index {i} out of range [0:{}]", self.len);
        self.ptr.wrapping_add(i)
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: `ptr` points to a live managed array of `cap >= len`
        // initialised `T`s (zeroed by the heap, valid per `CType`), never
        // moved nor freed while reachable (see `Gc`'s Deref).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// The elements, mutably.
    ///
    /// # Safety
    /// No other reference to these elements (from another copy of this
    /// slice header, `as_slice`, or C) is used while this one is alive.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> &mut [T] {
        if self.ptr.is_null() {
            return &mut [];
        }
        // SAFETY: as in `as_slice`; exclusivity is the caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl<T> Index<usize> for GcSlice<T> {
    type Output = T;
    fn index(&self, i: usize) -> &T {
        &self.as_slice()[i]
    }
}

// SAFETY: `repr(C)` `{ *mut T, usize, usize }`; the first word is the pointer; all zero is the nil slice.
unsafe impl<T: CType> CType for GcSlice<T> {
    const TYPE: &'static Type = &Type {
        name: "",
        size: 3 * WORD,
        align: WORD,
        ptrdata: WORD,
        kind: Kind::Slice { elem: TypeRef::of::<T>() },
        ptrmask: ONE_POINTER,
    };
}

/// Allocates a zeroed managed array of `len` `T`s and returns the slice
/// over it (`len == cap`): Go's `make([]T, len)`. Panics, naming the
/// request, when `len` elements overflow `usize` bytes or do not fit in the
/// heap (see [`Heap::alloc`](crate::Heap::alloc)).
#[inline]
pub fn new_slice<T: CType>(len: usize) -> GcSlice<T> {
    let ptr = heap().alloc(T::TYPE, len) as *mut T;
    GcSlice { ptr, len, cap: len }
}

/// A managed string: `{ ptr, len }` like Go's string header.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct GcStr {
    ptr: *const u8,
    len: usize,
}

// SAFETY: the bytes are immutable after `new_string`.
unsafe impl Send for GcStr {}
// SAFETY: as above.
unsafe impl Sync for GcStr {}

impl GcStr {
    /// The empty string (null pointer).
    pub const fn empty() -> GcStr {
        GcStr { ptr: std::ptr::null(), len: 0 }
    }

    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn as_str(&self) -> &str {
        if self.len == 0 {
            return "";
        }
        // SAFETY: `new_string` copied `len` bytes of a `&str` (valid UTF-8)
        // into a managed array that is never written again, moved, or freed
        // while reachable.
        unsafe { std::str::from_utf8_unchecked(std::slice::from_raw_parts(self.ptr, self.len)) }
    }
}

impl Deref for GcStr {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Debug for GcStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

// SAFETY: `repr(C)` `{ *const u8, usize }`; the first word is the pointer;
// all zero is the empty string.
unsafe impl CType for GcStr {
    const TYPE: &'static Type =
        &Type { name: "string", size: 2 * WORD, align: WORD, ptrdata: WORD, kind: Kind::String, ptrmask: ONE_POINTER };
}

/// Copies `s` into managed memory: Go's `string` of managed bytes.
pub fn new_string(s: &str) -> GcStr {
    if s.is_empty() {
        return GcStr::empty();
    }
    let ptr = heap().alloc(u8::TYPE, s.len());
    // SAFETY: `alloc` returned `s.len()` writable bytes nobody else sees
    // yet; source and destination do not overlap (one is managed memory).
    unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), ptr, s.len()) };
    GcStr { ptr, len: s.len() }
}

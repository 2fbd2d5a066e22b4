//! Managed values: Go's `*T`, `[]T` and `string` as Rust types.
//!
//! - [`Gc<T>`]: a nullable pointer to a managed `T` (Go's `*T`). One word,
//!   `Copy`, compares by address.
//! - [`GcSlice<T>`]: `{ ptr, len, cap }` over a managed backing array
//!   (Go's slice header, same layout).
//! - [`GcStr`]: `{ ptr, len }` over managed UTF-8 bytes (Go's string header).
//!
//! Allocation: [`new`] (Go's `&T{...}`), [`new_zeroed`] and [`new_with`]
//! (Go's `new(T)`, and construction in place: a big value is never built
//! on a task stack), [`new_slice`] (`make([]T, n)`), [`new_string`].
//! Slices have Go's `s[i:j]` ([`GcSlice::slice`]) and `append`
//! ([`GcSlice::append`], sharing the backing array while it has room).
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
use std::ops::{Bound, Deref, Index, RangeBounds};

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
/// cgocheck::run(|| {
///     let p = cgocheck::new(Parent { kids: cgocheck::new_slice(1) });
///     let c = cgocheck::new(Child { parent: p, next: Gc::null() });
///     assert!(c.parent == p && c.next.is_null());
/// });
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

/// Allocates a managed `T` with every byte zero: Go's `new(T)`. The value
/// is never built anywhere else, so a `T` of any size (a 256 KiB buffer)
/// costs no stack: `new(big_value)` would first build `big_value` on the
/// calling task's stack. All zero is a valid `T` (a [`CType`] promise).
#[inline]
pub fn new_zeroed<T: CType>() -> Gc<T> {
    Gc { ptr: heap().alloc(T::TYPE, 1) as *mut T }
}

/// Allocates a zeroed managed `T` and lets `init` fill it in place, before
/// anyone else can see it: construction without building the value on the
/// stack (`init` gets `&mut T` to the heap object).
///
/// ```
/// #[derive(cgocheck::CType)]
/// #[repr(C)]
/// struct Page { len: usize, bytes: [u8; 256 << 10] }
///
/// # cgocheck::run(|| {
/// let p = cgocheck::new_with(|p: &mut Page| {
///     p.len = 3;
///     p.bytes[..3].copy_from_slice(b"abc");
/// });
/// assert_eq!(&p.bytes[..p.len], b"abc");
/// # });
/// ```
#[inline]
pub fn new_with<T: CType>(init: impl FnOnce(&mut T)) -> Gc<T> {
    let g = new_zeroed::<T>();
    // SAFETY: the object was just allocated and only `g` refers to it; `g`
    // is not handed out before `init` returns.
    init(unsafe { g.as_mut() });
    g
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

    /// The number of elements (Go's `len(s)`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of elements the backing array has room for from `ptr` (Go's `cap(s)`).
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

impl<T: CType> GcSlice<T> {
    /// Go's `s[i:j]`: a slice header over the same backing array, elements
    /// `i..j`, with capacity `cap - i`. As in Go, `j` may go past `len` up to
    /// `cap` (the elements there are the array's), and the bounds default
    /// to `0` and `len` (`s.slice(..)`, `s.slice(2..)`).
    ///
    /// # Panics
    /// Unless `i <= j <= cap`, with Go's message (`slice bounds out of
    /// range`) naming the request.
    #[track_caller]
    pub fn slice(&self, range: impl RangeBounds<usize>) -> GcSlice<T> {
        let i = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.checked_add(1).expect("cgocheck: slice start overflows usize"),
            Bound::Unbounded => 0,
        };
        let j = match range.end_bound() {
            Bound::Included(&j) => j.checked_add(1).expect("cgocheck: slice end overflows usize"),
            Bound::Excluded(&j) => j,
            Bound::Unbounded => self.len,
        };
        assert!(
            j <= self.cap,
            "cgocheck: slice bounds out of range [:{j}] with capacity {} (GcSlice::slice)",
            self.cap
        );
        assert!(i <= j, "cgocheck: slice bounds out of range [{i}:{j}] (GcSlice::slice)");
        if self.ptr.is_null() {
            return GcSlice::nil();
        }
        GcSlice { ptr: self.ptr.wrapping_add(i), len: j - i, cap: self.cap - i }
    }

    /// Go's `append(s, elems...)`: when `elems` fit in the capacity, they are
    /// written into the backing array after `len` and the returned header
    /// shares it (as in Go, other headers over that array see them);
    /// otherwise a new array is allocated (Go's growth: double, or 1.25x
    /// above 256 elements, at least `len + elems.len()`), the elements copied
    /// over, and the returned header is the only one over it.
    ///
    /// ```
    /// # cgocheck::run(|| {
    /// let s = cgocheck::new_slice::<i32>(0);
    /// // SAFETY: no other reference to the elements after `len` is alive.
    /// let s = unsafe { s.append(&[1, 2, 3]) };
    /// let t = s.slice(1..2);
    /// // SAFETY: as above: `t`'s elements after its `len` (s[2..]) are not
    /// // referenced while it writes them.
    /// let t = unsafe { t.append(&[9]) };
    /// assert_eq!((s.as_slice(), t.as_slice()), (&[1, 2, 9][..], &[2, 9][..]));
    /// # });
    /// ```
    ///
    /// # Safety
    /// As for [`as_mut_slice`](Self::as_mut_slice), for the elements it
    /// writes: no reference to elements `len..len + elems.len()` of the
    /// backing array (from another header's `as_slice`, or C) is used
    /// while they are written.
    ///
    /// # Panics
    /// When the new length overflows or the new array does not fit in the
    /// heap (see [`Heap::alloc`](crate::Heap::alloc)).
    #[track_caller]
    pub unsafe fn append(self, elems: &[T]) -> GcSlice<T>
    where
        T: Copy,
    {
        let n = elems.len();
        let len = self.len.checked_add(n).unwrap_or_else(|| {
            panic!("cgocheck: append of {n} elements to a slice of length {}: the length overflows", self.len)
        });
        let mut out = self;
        if len > self.cap {
            let grown = if self.cap < 256 { self.cap * 2 } else { self.cap + self.cap / 4 };
            let cap = grown.max(len);
            let ptr = heap().alloc(T::TYPE, cap) as *mut T;
            if self.len > 0 {
                // SAFETY: the old array holds `len` initialised `T`s; the new
                // one has room for `cap >= len` and nobody else sees it yet.
                unsafe { std::ptr::copy_nonoverlapping(self.ptr, ptr, self.len) };
            }
            out = GcSlice { ptr, len: self.len, cap };
        }
        if n > 0 {
            // SAFETY: `out.len + n <= out.cap` elements fit in the backing
            // array; `elems` cannot overlap the elements after `out.len`
            // (the caller promises nobody references them); `T: Copy`.
            unsafe { std::ptr::copy_nonoverlapping(elems.as_ptr(), out.ptr.add(out.len), n) };
        }
        out.len = len;
        out
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

    /// Pointer to the bytes (null for the empty string).
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr
    }

    /// The length in bytes (Go's `len(s)`).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the length is 0.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The string.
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

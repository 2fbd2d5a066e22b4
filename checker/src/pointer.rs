//! A pointer argument and what is known about its extent: Go's
//! `cgoCheckPointer` with its second argument, plus two hints Go lacks.
//!
//! cmd/cgo looks at the expression of each pointer argument and tells the
//! runtime how much memory the pointer gives C:
//!
//! | expression | Go's 2nd argument | [`Hint`] | checked |
//! |---|---|---|---|
//! | `&x`, `&x.f` | `true` | [`Hint::Element`] | the pointee type only (an array element: the array, below) |
//! | `&a[i]`, `&s[i]` | the array / slice | [`Hint::Whole`] | the whole array or backing array |
//! | anything else | `nil` | [`Hint::Unknown`] | the whole heap object (`unknown.rs`) |
//! | (beyond Go) `void*` whose type is known | – | [`Hint::Pointee`] | that type only |
//! | (beyond Go) pointer + length | – | [`Hint::Extent`] | those bytes only |
//!
//! The two additions fix Go's false positives where a field's address
//! reaches C as `void*` (Go issue 28606: the whole object is checked and an
//! unrelated pointer field fails the call).
//!
//! `&s[i]` said with `field`: Rust cannot tell `field(&s[i])` from
//! `field(&x.f)` (both are a `&T`), and Go checks the whole backing array
//! for the first. So an [`Hint::Element`] pointer is checked as Go checks
//! `&s[i]` whenever the memory says it is an array element: a `T` at an
//! element boundary of a heap object allocated as an array of `T` (a
//! managed slice's backing array), or of an array of `T` inside a heap
//! object or a managed global (`Gc<[T; N]>`, a struct's array field, a
//! global array). The whole of that array is checked, its path marked
//! `(its array)`; `field(&x.f)` where `f` is no array element is unchanged.
//! The innermost such array counts (`&a[i][j]` checks `a[i]`, as Go). To
//! give C one element only, say so: `pointee::<T>(p)` or `extent(p, n)`.
//! On a task stack there are no types to tell, so `field(&a[i])` of a stack
//! array checks one element; `elem(&a, i)` checks the array.
//!
//! Where the pointee is read as a type (element, pointee, whole), the
//! pointer must be aligned for it and the type must fit in the memory it
//! points into; a pointer into a freed slot or a span tail is reported
//! whatever the hint.
//!
//! One past the end: an address is classified by the byte it designates.
//! A pointer one past the end of object A designates the first byte of
//! whatever follows A, and is checked as pointing there, as Go's
//! `findObject` does — with one exception that is sound: when nothing has
//! ever been allocated there (a heap slot never used, a span's unused
//! tail), no allocation ever returned that address, so no real pointer to
//! another object has it; the only pointer with that value is A's end
//! pointer, and it is checked as pointing into A (`memory::region_of`).
//! Where something follows A — a live object B, or a freed slot that a
//! dangling pointer may really mean — no sound rule tells the two apart:
//! the address is the same, and a real pointer to B has to be checked as
//! such; preferring A would let it through unchecked. (Padding every
//! allocation by a byte would separate them, at the cost of a size class
//! for every power-of-two object; the heap does not do it.) So when a check
//! fails at such an address and the address is likelier A's end than B's
//! start (A is pinned, or B is a freed slot: see `error.rs`), the message
//! says both objects — "this pointer is the end of object A (…); the check
//! looked at the object after it, B (…)" — and the fix: a zero-length
//! extent (`Hint::Extent(0)`) gives C no bytes and is not checked at all,
//! so `as_ptr_range().end` or an empty slice's pointer is passed with
//! `Extent(0)`; a pointer stored in memory (zlib's `next_in` after it has
//! consumed its input) needs A to have one spare byte.

use crate::arg::Walker;
use crate::error::{CallSite, CheckError, Site, Walk};
use crate::memory::{ManagedMemory, Region};
use crate::path::Step;
use crate::types::{Kind, Type, WORD};

/// What the call site knows about how much memory a pointer argument gives
/// to C.
#[derive(Clone, Copy, Debug)]
pub enum Hint<'a> {
    /// The address of one variable, field or element (`&x.f`): only the
    /// pointee, as its static type, is checked. A `void*` with this hint is
    /// checked as [`Hint::Unknown`], as in Go.
    Element,
    /// The address of an element of an array or slice (`&s[i]`): the whole
    /// array or backing array is checked.
    Whole {
        /// The type of the array or slice.
        ty: &'a Type,
        /// The address of the array, or of the slice header.
        value: *const u8,
    },
    /// Nothing known: the whole heap object the pointer points into.
    Unknown,
    /// Beyond Go: a `void*` whose pointee type is known; checked as that
    /// type, like [`Hint::Element`].
    Pointee(&'a Type),
    /// Beyond Go: the pointer gives C exactly this many bytes.
    Extent(usize),
}

/// Checks a pointer argument `ptr` of `site` whose static pointee type is
/// `pointee` (`None` for `void*`), using `hint`.
///
/// # Safety
/// For [`Hint::Whole`], `value` must point to a valid value of `ty` (an
/// array, or a slice header). Everything else read is found and bounded
/// through `mem`, which must answer truthfully.
pub unsafe fn check_pointer<M: ManagedMemory + ?Sized>(
    mem: &M,
    site: CallSite,
    ptr: *const u8,
    pointee: Option<&Type>,
    hint: Hint<'_>,
) -> Result<(), CheckError> {
    let w = Walker { mem };
    let p = ptr as usize;
    // SAFETY: the caller's contract for `Whole`; the rest is bounded by `mem`.
    let walk = unsafe {
        match (hint, pointee) {
            (Hint::Element, Some(t)) => w.field(t, p),
            (Hint::Pointee(t), _) => w.element(t, p),
            (Hint::Element, None) | (Hint::Unknown, _) => w.pointer(p, true, None),
            (Hint::Whole { ty, value }, _) => w.whole(ty, value as usize, p),
            (Hint::Extent(n), _) => w.extent(p, n),
        }
    };
    walk.map_err(|f| (*f).into_error(mem, Site::Arg(site), Some(p)))
}

impl<M: ManagedMemory + ?Sized> Walker<'_, M> {
    /// `p` is `&x` or `&x.f` of type `t`, or `&s[i]` said the same way: an
    /// element of an array of `t` in a heap object or managed global gets
    /// the whole array checked (see the file comment); anything else is one
    /// `t`.
    ///
    /// # Safety
    /// None beyond `mem` answering truthfully.
    unsafe fn field(&self, t: &Type, p: usize) -> Walk {
        let Some(region) = self.target(p, t.size, t.align, None)? else {
            return Ok(());
        };
        let array = match region {
            Region::Heap(o) if o.count > 1 && t.size > 0 && o.elem.same_as(t) && (p - o.base) % t.size == 0 => {
                // SAFETY: the live object holds `o.count` values of `t`.
                return unsafe { self.elements(o.elem, o.base, o.count, false) }
                    .map_err(|f| f.step(Step::Enclosing("array")).step(Step::Deref));
            }
            // A single object of type `t` is not inside an array of `t`s.
            Region::Heap(o) if o.elem.size > 0 && !(o.count == 1 && core::ptr::eq(o.elem, t)) => {
                let within = (p - o.base) % o.elem.size;
                array_of(o.elem, within, t).map(|(ty, off)| (ty, p - within + off))
            }
            Region::Global { .. } => {
                self.mem.global(p).and_then(|g| array_of(g.ty, p - g.base, t).map(|(ty, off)| (ty, g.base + off)))
            }
            _ => None,
        };
        match array {
            // SAFETY: the array lies inside the live object or global (its
            // type says so), which holds a valid value of it.
            Some((ty, at)) => {
                unsafe { self.value(ty, at, false) }.map_err(|f| f.step(Step::Enclosing("array")).step(Step::Deref))
            }
            // SAFETY: `target` proved `t.size` aligned bytes at `p`.
            None => unsafe { self.value(t, p, false) }.map_err(|f| f.step(Step::Deref)),
        }
    }

    /// `p` designates one value of type `t`.
    ///
    /// # Safety
    /// None beyond `mem` answering truthfully.
    unsafe fn element(&self, t: &Type, p: usize) -> Walk {
        if self.target(p, t.size, t.align, None)?.is_none() {
            return Ok(());
        }
        // SAFETY: `target` proved `t.size` aligned bytes at `p` inside live
        // managed memory.
        unsafe { self.value(t, p, false) }.map_err(|f| f.step(Step::Deref))
    }

    /// `p` is an element of the array or slice `ty` at `value`.
    ///
    /// # Safety
    /// `value` must point to a valid value of `ty`.
    unsafe fn whole(&self, ty: &Type, value: usize, p: usize) -> Walk {
        if p == 0 || !self.mem.region(p).is_managed() {
            return Ok(());
        }
        // A slice is checked as a top-level slice (its backing array need
        // not be pinned; its elements are below the top level). An array
        // reached through the pointer is below the top level.
        let (top, what) = match ty.kind {
            Kind::Slice { .. } => (true, "slice"),
            _ => (false, "array"),
        };
        // SAFETY: the caller's contract.
        unsafe { self.value(ty, value, top) }.map_err(|f| f.step(Step::Enclosing(what)).step(Step::Deref))
    }

    /// `p` gives C exactly `n` bytes: the pointer words among them.
    fn extent(&self, p: usize, n: usize) -> Walk {
        if n == 0 {
            return Ok(());
        }
        let Some(region) = self.target(p, n, 1, None)? else {
            return Ok(());
        };
        let walk = match region {
            Region::Heap(o) => {
                let first = (p - o.base) / WORD;
                let end = (p - o.base + n).div_ceil(WORD);
                // SAFETY: `target` proved `p..p + n` inside the live object,
                // so words `first..end` are its words.
                unsafe { self.object_words(&o, first, end) }.map_err(|f| {
                    if p == o.base {
                        f
                    } else {
                        f.step(Step::Enclosing("object"))
                    }
                })
            }
            // SAFETY: `target` proved `p..p + n` inside the stack or globals.
            _ => unsafe { self.conservative(p, n) },
        };
        walk.map_err(|f| f.step(Step::Deref))
    }
}

/// The innermost array of `t`s inside a value of type `ty` that has an
/// element starting at byte `offset`: the array's type and its offset in
/// the value. Structs descend into the field covering the offset, arrays
/// into the element; unions and everything else stop.
fn array_of<'t>(mut ty: &'t Type, mut offset: usize, t: &Type) -> Option<(&'t Type, usize)> {
    let mut at = 0;
    loop {
        match ty.kind {
            Kind::Array { elem, len } if elem.size > 0 && offset < elem.size * len => {
                if elem.same_as(t) {
                    return (offset % elem.size == 0).then_some((ty, at));
                }
                at += offset / elem.size * elem.size;
                offset %= elem.size;
                ty = elem;
            }
            Kind::Struct { fields } => {
                let f = fields.iter().find(|f| f.offset <= offset && offset < f.offset + f.ty.size)?;
                at += f.offset;
                offset -= f.offset;
                ty = f.ty;
            }
            _ => return None,
        }
    }
}

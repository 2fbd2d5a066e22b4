//! The argument walk: Go's `cgoCheckArg`, for every kind.
//!
//! A value C is about to receive may hold managed pointers. At the top level
//! (the argument itself, or the fields of a struct passed by value) a managed
//! pointer is fine: C may use it for the call. Below the top level (anything
//! reached through a pointer, slice or interface) every managed pointer must
//! be pinned, because C could keep it. [`Walker::value`] walks a value of a
//! known [`Type`] in memory and applies that rule kind by kind:
//!
//! - pointer / unsafe pointer: below the top level it must be pinned; then
//!   what it points to is checked as an unknown pointer (`unknown.rs`: the
//!   whole heap object or managed global; a task stack is refused, its
//!   extent unknown);
//! - array: each element, at the same level (pointer elements as one fast
//!   run, see `words.rs`);
//! - struct: each field with pointers, at the same level;
//! - union: each pointer word of the union's mask, as an unsafe pointer (which
//!   member is live is unknown); a union without pointer fields has no
//!   pointer words and is not looked at;
//! - slice: its data pointer must be pinned below the top level; all `cap`
//!   elements are checked below the top level;
//! - string: its data pointer must be pinned below the top level;
//! - interface: a dynamic type that lives in the managed heap (built at run
//!   time) is refused; otherwise the data (word or pointed-to value) is
//!   checked below the top level as that type;
//! - map, chan: refused whenever not nil (Go refuses even a nil one; a nil
//!   map or channel shares nothing, so we let it pass);
//! - func: refused when it points into managed memory (a managed closure).
//!
//! Walks return a `Fault` on the first problem; `error.rs` turns it into the
//! message. [`check_arg`] is the entry point for one argument.

use crate::error::{CallSite, CheckError, Fault, GoKind, Site, Walk, What};
use crate::memory::{region_of, ManagedMemory, Region};
use crate::path::{steps_to, Step};
use crate::types::{Kind, Type, WORD};
use crate::unknown::NOTE_GLOBAL_PADDING;
use crate::words::{scan_run, type_runs, word};

pub(crate) const NOTE_STACK: &str =
    "it points into a task stack; stacks cannot be pinned, so C must not see a pointer to one below the top level";
pub(crate) const NOTE_RUNTIME_TYPE: &str =
    "the interface's dynamic type was built at run time and lives in the Go heap";

/// A walk over memory, asking `mem` about every non-null pointer it meets.
pub(crate) struct Walker<'m, M: ?Sized> {
    pub mem: &'m M,
}

impl<M: ManagedMemory + ?Sized> Walker<'_, M> {
    /// Checks the value of type `ty` at `addr` (Go's `cgoCheckArg` with
    /// `indir`); `top` says whether managed pointers in it may be unpinned.
    ///
    /// # Safety
    /// `addr` must hold a valid value of `ty`, readable for `ty.size` bytes.
    pub(crate) unsafe fn value(&self, ty: &Type, addr: usize, top: bool) -> Walk {
        if !ty.has_pointers() {
            return Ok(());
        }
        // The kinds that are one pointer word: `addr` holds a valid `ty`,
        // which has pointers and so is word-aligned and at least a word long.
        match ty.kind {
            // SAFETY: one aligned, readable pointer word at `addr`.
            Kind::Pointer { .. } | Kind::UnsafePointer => unsafe { self.pointer(word(addr), top, Some(addr)) },
            // SAFETY: as above.
            Kind::Map { .. } => refuse_non_nil(GoKind::Map, unsafe { word(addr) }, addr),
            // SAFETY: as above.
            Kind::Chan { .. } => refuse_non_nil(GoKind::Chan, unsafe { word(addr) }, addr),
            Kind::Func => {
                // SAFETY: as above.
                let f = unsafe { word(addr) };
                if f != 0 && self.mem.region(f).is_managed() {
                    return Err(Fault::new(What::Unpinned(GoKind::Func), f, Some(addr)));
                }
                Ok(())
            }
            // SAFETY: the array's `len` elements are the value.
            Kind::Array { elem, len } => unsafe { self.elements(elem, addr, len, top) },
            Kind::Struct { fields } => {
                for f in fields.iter().filter(|f| f.ty.has_pointers()) {
                    // SAFETY: a field lies inside its struct.
                    unsafe { self.value(f.ty, addr + f.offset, top) }.map_err(|e| e.step(Step::Field(f.name)))?;
                }
                Ok(())
            }
            // SAFETY: `addr` holds a valid union of type `ty`.
            Kind::Union { .. } => unsafe { self.union(ty, addr, top) },
            // SAFETY: `addr` holds a valid interface value (two words).
            Kind::Interface => unsafe { self.interface(addr, top) },
            // SAFETY: `addr` holds a valid slice header of `elem`s.
            Kind::Slice { elem } => unsafe { self.slice(elem.get(), addr, top) },
            // SAFETY: `addr` holds a valid string header.
            Kind::String => unsafe { self.string(addr, top) },
            // A scalar never has pointers; a descriptor that says it does is
            // not believed.
            Kind::Bool
            | Kind::Int8
            | Kind::Int16
            | Kind::Int32
            | Kind::Int64
            | Kind::Uint8
            | Kind::Uint16
            | Kind::Uint32
            | Kind::Uint64
            | Kind::Int
            | Kind::Uintptr
            | Kind::Float32
            | Kind::Float64
            | Kind::Complex64
            | Kind::Complex128 => Ok(()),
        }
    }

    /// Checks a pointer `v` (stored at `at`, if anywhere), typed or not:
    /// below the top level it must be pinned; then its target is checked as
    /// an unknown pointer (its type does not bound what C may reach, as in
    /// Go).
    ///
    /// # Safety
    /// None beyond `mem` answering truthfully: what is read is found
    /// through `mem` and bounded by it.
    #[inline]
    pub(crate) unsafe fn pointer(&self, v: usize, top: bool, at: Option<usize>) -> Walk {
        if v == 0 {
            return Ok(());
        }
        // Matched by reference: moving the object out of the region would
        // copy it through memory in wide loads that miss the narrow stores
        // that built it (a store-forwarding stall on every checked pointer).
        let region = region_of(self.mem, v);
        let walk = match &region {
            Region::Heap(o) => {
                if !top && !self.mem.is_pinned(o.base) {
                    return Err(Fault::new(What::Unpinned(GoKind::Pointer), v, at));
                }
                // SAFETY: `o` is the live object `v` points into.
                unsafe { self.object(o, v) }
            }
            Region::Stack { .. } if !top => {
                return Err(Fault::noted(What::Unpinned(GoKind::Pointer), v, at, NOTE_STACK));
            }
            // SAFETY: `region` is `region_of(mem, v)`.
            _ => unsafe { self.unknown(region, v, at) },
        };
        walk.map_err(|f| f.step(Step::Deref))
    }

    /// Checks `n` elements of type `elem` at `addr`, at level `top`.
    ///
    /// # Safety
    /// `addr` must hold `n` valid values of `elem`.
    pub(crate) unsafe fn elements(&self, elem: &Type, addr: usize, n: usize, top: bool) -> Walk {
        match elem.kind {
            // SAFETY: `n` pointer elements are `n` aligned, readable words.
            Kind::Pointer { .. } | Kind::UnsafePointer => unsafe {
                scan_run(addr, n, |i, v| {
                    self.pointer(v, top, Some(addr + i * WORD)).map_err(|f| f.step(Step::Index(i)))
                })
            },
            _ => {
                for i in 0..n {
                    // SAFETY: element `i` lies inside the `n` elements.
                    unsafe { self.value(elem, addr + i * elem.size, top) }.map_err(|f| f.step(Step::Index(i)))?;
                }
                Ok(())
            }
        }
    }

    /// Each pointer word of a union, as an unsafe pointer.
    ///
    /// # Safety
    /// `addr` must hold a valid value of the union `ty`.
    unsafe fn union(&self, ty: &Type, addr: usize, top: bool) -> Walk {
        type_runs(ty, 0, 0, ty.size, &mut |off, n| {
            // SAFETY: the union's pointer words lie inside the value.
            unsafe {
                scan_run(addr + off, n, |i, v| {
                    let at = addr + off + i * WORD;
                    self.pointer(v, top, Some(at)).map_err(|f| f.steps(steps_to(ty, off + i * WORD)))
                })
            }
        })
    }

    /// A slice header `{ data, len, cap }` at `addr`.
    ///
    /// # Safety
    /// `addr` must hold a valid slice header of `elem`s.
    unsafe fn slice(&self, elem: &Type, addr: usize, top: bool) -> Walk {
        // SAFETY: a slice header is three aligned words.
        let (data, cap) = unsafe { (word(addr), word(addr + 2 * WORD)) };
        let Some(region) = self.target(data, 0, 1, Some(addr))? else {
            return Ok(());
        };
        if !top && !self.pinned(&region) {
            return Err(self.unpinned(data, &region, addr));
        }
        if !elem.has_pointers() {
            return Ok(());
        }
        let Some(bytes) = cap.checked_mul(elem.size) else {
            return Err(Fault::new(What::PastEnd(usize::MAX), data, Some(addr)));
        };
        self.target(data, bytes, elem.align, Some(addr))?;
        // SAFETY: `target` proved `cap` elements at `data` lie inside live
        // managed memory and are aligned for `elem`.
        unsafe { self.elements(elem, data, cap, false) }
    }

    /// A string header `{ data, len }` at `addr`.
    ///
    /// # Safety
    /// `addr` must hold a valid string header.
    unsafe fn string(&self, addr: usize, top: bool) -> Walk {
        // SAFETY: a string header is two aligned words.
        let data = unsafe { word(addr) };
        match self.target(data, 0, 1, Some(addr))? {
            Some(region) if !top && !self.pinned(&region) => Err(self.unpinned(data, &region, addr)),
            _ => Ok(()),
        }
    }

    /// An interface value `{ type, data }` at `addr`.
    ///
    /// # Safety
    /// `addr` must hold a valid interface value: a null type word, or one
    /// that points to a live `Type`, with a data word that fits it.
    unsafe fn interface(&self, addr: usize, top: bool) -> Walk {
        // SAFETY: an interface value is two aligned words.
        let (t, data) = unsafe { (word(addr), word(addr + WORD)) };
        if t == 0 {
            return Ok(());
        }
        match self.mem.region(t) {
            Region::Heap(_) => {
                return Err(Fault::noted(What::Unpinned(GoKind::Interface), t, Some(addr), NOTE_RUNTIME_TYPE));
            }
            Region::Freed(_) => return Err(Fault::new(What::Freed, t, Some(addr))),
            Region::Unallocated(_) => return Err(Fault::new(What::Unallocated, t, Some(addr))),
            Region::SpanTail { .. } => return Err(Fault::new(What::SpanTail, t, Some(addr))),
            _ => {}
        }
        // SAFETY: the type word of a valid interface value points to a live
        // `Type` (the caller's contract), and it is not in the heap.
        let it: &Type = unsafe { &*(t as *const Type) };
        if it.is_direct_iface() {
            // The data word is the value itself (one pointer-shaped word).
            // SAFETY: a direct-interface type is one word, read in place.
            return unsafe { self.value(it, addr + WORD, false) };
        }
        let Some(region) = self.target(data, it.size, it.align, Some(addr + WORD))? else {
            return Ok(());
        };
        if !top && !self.pinned(&region) {
            return Err(self.unpinned(data, &region, addr + WORD));
        }
        // SAFETY: `target` proved `it.size` aligned bytes at `data` inside
        // live managed memory; the interface says they hold an `it`.
        unsafe { self.value(it, data, false) }.map_err(|f| f.step(Step::Deref))
    }

    /// Classifies `v` as something to read `size` bytes of, aligned to
    /// `align`: `None` when there is nothing to check (null, C memory, the
    /// zero-sized allocation); the managed region when it is readable;
    /// a fault for freed or never-allocated memory, a span tail,
    /// misalignment, or memory smaller than `size` (for a managed global:
    /// than the rest of the variable).
    pub(crate) fn target(
        &self,
        v: usize,
        size: usize,
        align: usize,
        at: Option<usize>,
    ) -> Result<Option<Region<'_>>, Box<Fault>> {
        if v == 0 {
            return Ok(None);
        }
        let region = region_of(self.mem, v);
        let end = match region {
            Region::NotManaged | Region::ZeroSized => return Ok(None),
            Region::Freed(_) => return Err(Fault::new(What::Freed, v, at)),
            Region::Unallocated(_) => return Err(Fault::new(What::Unallocated, v, at)),
            Region::SpanTail { .. } => return Err(Fault::new(What::SpanTail, v, at)),
            Region::Heap(o) => o.base + o.size,
            Region::Stack { hi, .. } => hi,
            Region::Global { hi, .. } if size == 0 => hi,
            Region::Global { .. } => match self.mem.global(v) {
                Some(g) => g.base + g.ty.size,
                None => return Err(Fault::noted(What::Unallocated, v, at, NOTE_GLOBAL_PADDING)),
            },
        };
        if align > 1 && v & (align - 1) != 0 {
            return Err(Fault::new(What::Misaligned(align), v, at));
        }
        if size > end - v {
            return Err(Fault::new(What::PastEnd(size), v, at));
        }
        Ok(Some(region))
    }

    /// Whether managed memory in `region` counts as pinned: heap
    /// objects as the heap says, managed globals always, stacks never.
    pub(crate) fn pinned(&self, region: &Region<'_>) -> bool {
        match region {
            Region::Heap(o) => self.mem.is_pinned(o.base),
            Region::Stack { .. } => false,
            _ => true,
        }
    }

    #[cold]
    fn unpinned(&self, v: usize, region: &Region<'_>, at: usize) -> Box<Fault> {
        match region {
            Region::Stack { .. } => Fault::noted(What::Unpinned(GoKind::Pointer), v, Some(at), NOTE_STACK),
            _ => Fault::new(What::Unpinned(GoKind::Pointer), v, Some(at)),
        }
    }
}

/// Maps and channels are never allowed across; a nil one holds nothing.
fn refuse_non_nil(kind: GoKind, v: usize, at: usize) -> Walk {
    if v == 0 {
        Ok(())
    } else {
        Err(Fault::new(What::Unpinned(kind), v, Some(at)))
    }
}

/// Checks one argument value of type `ty` at `value`, as a top-level
/// argument of `site` (Go's `cgoCheckPointer(arg, nil)`). For a pointer
/// argument this is the "unknown pointer" check: what it points to is
/// checked as a whole heap object.
///
/// # Safety
/// `value` must point to a valid value of `ty`. Managed memory reached from
/// it is found and bounded through `mem`, which must answer truthfully.
pub unsafe fn check_arg<M: ManagedMemory + ?Sized>(
    mem: &M,
    site: CallSite,
    ty: &Type,
    value: *const u8,
) -> Result<(), CheckError> {
    let w = Walker { mem };
    // SAFETY: the caller's contract.
    match unsafe { w.value(ty, value as usize, true) } {
        Ok(()) => Ok(()),
        // SAFETY: the caller's contract.
        Err(f) => Err(unsafe { root_error(mem, *f, Site::Arg(site), ty, value as usize) }),
    }
}

/// The error for a fault found walking the root value `ty` at `value`: the
/// argument (or result) named is the pointer's target for pointer types,
/// else the value itself (for arguments); a pointer found in the root value
/// itself is not "found at" the caller's local.
///
/// # Safety
/// `value` must point to a valid value of `ty`.
#[cold]
#[inline(never)]
pub(crate) unsafe fn root_error<M: ManagedMemory + ?Sized>(
    mem: &M,
    mut f: Fault,
    site: Site,
    ty: &Type,
    value: usize,
) -> CheckError {
    if f.at == Some(value) {
        f.at = None;
    }
    let argument = match (&ty.kind, &site) {
        // SAFETY: a pointer-typed value is one aligned word.
        (Kind::Pointer { .. } | Kind::UnsafePointer, _) => Some(unsafe { word(value) }),
        // A result by value sits in the exporting function's frame: no news.
        (_, Site::Result { .. }) => None,
        _ => Some(value),
    };
    f.into_error(mem, site, argument)
}

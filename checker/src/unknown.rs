//! Unknown pointers: Go's `cgoCheckUnknownPointer` and `cgoIsGoPointer`.
//!
//! When the checker knows only that C receives a pointer into managed
//! memory, not how much of that memory C will look at, it checks everything
//! C could reach without following another pointer, and requires every
//! managed pointer found there to be pinned (it does not follow those: their
//! targets are pinned memory, which is C's to read):
//!
//! - into a heap object: the whole object, through its pointer bitmap
//!   (`words.rs`: runs of set bits, zero words skipped 16 at a time); an
//!   object's end pointer where nothing follows counts as into it
//!   (`memory::region_of`);
//! - into a managed global: the whole global, as for a heap object. Go
//!   knows only the data/bss range and refuses any unknown pointer into it;
//!   the runtime knows each `managed_static!`'s bounds and type
//!   ([`ManagedMemory::global`]), so a global whose pointer words hold only
//!   nil, C or pinned pointers passes, and one holding an unpinned pointer
//!   fails wherever in the global the pointer points (element 0 of a global
//!   array whose element 1 is unpinned fails). An address in the padding
//!   between two globals is no variable: refused as not an allocated object;
//! - into a task stack: refused, typed or `void*`, with an error that names
//!   the wrappers (`field`, `elem`, `pointee`, `extent`). In Go such a value
//!   escapes to the heap and its whole object is checked; here it stays on
//!   the stack, and a stack has no object bounds, so the whole object cannot
//!   be found. The alternatives were worse: letting it through is the silent
//!   pass a sanitizer must not have; checking the pointee type alone misses
//!   the rest of an array (`&a[0] as *mut T`); scanning the words from the
//!   pointer to the stack top scans the callers' frames too, whose locals
//!   hold unpinned managed pointers as a rule, so the verdict would depend
//!   on code far from the call. The call site knows what C gets, and the
//!   wrappers say it: `field(&x)` (one value of its type), `elem(&a, i)`
//!   (the whole array), `pointee::<T>(p)`, `extent(p, n)` — a byte buffer
//!   on a task stack passes with any of them.
//!
//! [`Walker::shallow`] is the per-word rule ("managed and not pinned" fails;
//! Go's `cgoIsGoPointer(p) && !isPinned(p)`), shared with the store checks:
//! null, C memory, the zero-sized allocation and managed globals pass; heap
//! objects pass when pinned; stack pointers never (stacks cannot be pinned);
//! freed slots, never-allocated slots and span tails are reported as bad
//! pointers.

use crate::arg::{Walker, NOTE_STACK};
use crate::error::{Fault, GoKind, Walk, What};
use crate::memory::{region_of, ManagedMemory, Object, Region};
use crate::path::{steps_in_object, steps_to, Step};
use crate::types::{Type, WORD};
use crate::words::{bitmap_runs, bits_u64, scan_run, type_runs, word};

pub(crate) const NOTE_STACK_EXTENT: &str = "a task stack has no object bounds, so the checker cannot know how much \
     of it C sees (Go would have moved the value to the heap and checked its whole object)";
pub(crate) const NOTE_GLOBAL_PADDING: &str =
    "it points into the managed globals section, but into no variable (the padding between two)";

impl<M: ManagedMemory + ?Sized> Walker<'_, M> {
    /// What an unknown pointer `v` (in `region`) lets C see, checked:
    /// the whole heap object or managed global; refused on a task stack.
    ///
    /// # Safety
    /// `region` must be `region_of(mem, v)` (so an end pointer before
    /// nothing comes as its object).
    pub(crate) unsafe fn unknown(&self, region: Region<'_>, v: usize, at: Option<usize>) -> Walk {
        match region {
            Region::NotManaged | Region::ZeroSized => Ok(()),
            Region::Freed(_) => Err(Fault::new(What::Freed, v, at)),
            Region::Unallocated(_) => Err(Fault::new(What::Unallocated, v, at)),
            Region::SpanTail { .. } => Err(Fault::new(What::SpanTail, v, at)),
            // SAFETY: `o` is the live object `v` points into.
            Region::Heap(o) => unsafe { self.object(&o, v) },
            Region::Global { .. } => self.global(v, at),
            Region::Stack { .. } => Err(Fault::noted(What::UnknownExtent, v, at, NOTE_STACK_EXTENT)),
        }
    }

    /// Every pointer word of the managed global `v` points into, by its
    /// type (the shallow rule, as for a heap object).
    pub(crate) fn global(&self, v: usize, at: Option<usize>) -> Walk {
        let Some(g) = self.mem.global(v) else {
            return Err(Fault::noted(What::Unallocated, v, at, NOTE_GLOBAL_PADDING));
        };
        // SAFETY: a managed global is a live, readable value of its type,
        // aligned for it (the runtime's contract for `global`).
        unsafe { self.typed(g.ty, g.base, 0, g.ty.size) }.map_err(|f| {
            if v == g.base {
                f
            } else {
                f.step(Step::Enclosing("global"))
            }
        })
    }

    /// The per-word rule: `v`, found at `at`, must not be an unpinned
    /// managed pointer.
    #[inline]
    pub(crate) fn shallow(&self, v: usize, at: usize) -> Walk {
        match region_of(self.mem, v) {
            Region::NotManaged | Region::ZeroSized | Region::Global { .. } => Ok(()),
            Region::Heap(o) if self.mem.is_pinned(o.base) => Ok(()),
            Region::Heap(_) => Err(Fault::new(What::Unpinned(GoKind::Pointer), v, Some(at))),
            Region::Stack { .. } => Err(Fault::noted(What::Unpinned(GoKind::Pointer), v, Some(at), NOTE_STACK)),
            Region::Freed(_) => Err(Fault::new(What::Freed, v, Some(at))),
            Region::Unallocated(_) => Err(Fault::new(What::Unallocated, v, Some(at))),
            Region::SpanTail { .. } => Err(Fault::new(What::SpanTail, v, Some(at))),
        }
    }

    /// Every pointer word of the live heap object `o`, entered at `entry`.
    ///
    /// # Safety
    /// `o` must be a live object as `mem` describes it.
    // Always inlined (with `object_words`): the object is then read where
    // `region()` built it, in registers, on every checked pointer.
    #[inline(always)]
    pub(crate) unsafe fn object(&self, o: &Object<'_>, entry: usize) -> Walk {
        // SAFETY: the object's bitmap covers its `size / 8` words, all inside
        // the live object and word-aligned (objects are).
        unsafe { self.object_words(o, 0, o.size / WORD) }.map_err(|f| {
            if entry == o.base {
                f
            } else {
                f.step(Step::Enclosing("object"))
            }
        })
    }

    /// The pointer words among words `first..end` of the live object `o`.
    ///
    /// # Safety
    /// `o` must be a live object and `end <= o.size / 8`.
    #[inline(always)]
    pub(crate) unsafe fn object_words(&self, o: &Object<'_>, first: usize, end: usize) -> Walk {
        let len = o.ptr_bits.len();
        if first == 0 && end >= len && len <= 64 {
            // The whole object's bitmap is one `u64` (objects up to 512
            // bytes, the common case of a checked pointer): visit its set
            // bits directly, without the run machinery.
            let mut m = if len == 0 { 0 } else { bits_u64(o.ptr_bits, 0) };
            while m != 0 {
                let at = o.base + m.trailing_zeros() as usize * WORD;
                m &= m - 1;
                // SAFETY: a word of the live, word-aligned object.
                let v = unsafe { word(at) };
                if v != 0 {
                    self.shallow(v, at).map_err(|f| f.steps(steps_in_object(o.elem, o.count, at - o.base)))?;
                }
            }
            return Ok(());
        }
        let bits = if first == 0 && end >= len { o.ptr_bits } else { &o.ptr_bits[first.min(len)..end.min(len)] };
        bitmap_runs(bits, |w, n| {
            let start = o.base + (first + w) * WORD;
            // SAFETY: the run's words are words of the live object.
            unsafe {
                scan_run(start, n, |i, v| {
                    let at = start + i * WORD;
                    self.shallow(v, at).map_err(|f| f.steps(steps_in_object(o.elem, o.count, at - o.base)))
                })
            }
        })
    }

    /// The pointer words of type `ty` in bytes `lo..hi` of the value at
    /// `value`, by the type's mask.
    ///
    /// # Safety
    /// `value` must be readable for the pointer words of `ty` that start in
    /// `lo..hi`, and word-aligned if there are any.
    pub(crate) unsafe fn typed(&self, ty: &Type, value: usize, lo: usize, hi: usize) -> Walk {
        type_runs(ty, 0, lo, hi, &mut |off, n| {
            // SAFETY: the caller's contract covers these words.
            unsafe {
                scan_run(value + off, n, |i, v| {
                    self.shallow(v, value + off + i * WORD).map_err(|f| f.steps(steps_to(ty, off + i * WORD)))
                })
            }
        })
    }

    /// Every whole word in `addr..addr + n` (memory without pointer bits:
    /// a stack or managed globals) treated as a possible pointer.
    ///
    /// # Safety
    /// The bytes must be readable.
    pub(crate) unsafe fn conservative(&self, addr: usize, n: usize) -> Walk {
        let first = addr.next_multiple_of(WORD);
        let words = (addr + n).saturating_sub(first) / WORD;
        // SAFETY: the whole words inside the readable range, aligned.
        unsafe {
            scan_run(first, words, |i, v| {
                let at = first + i * WORD;
                self.shallow(v, at).map_err(|f| f.step(Step::Offset(at - addr)))
            })
        }
    }
}

//! Address lookup: the heap's answers to the checker's questions.
//!
//! `region(addr)` in the order of the common cases, each step O(1):
//!
//! 1. `addr - base < reserved`, one subtract and compare against the
//!    reserved range (objects and task stacks). Outside it, the only other managed memory is the globals
//!    section (one more range test); everything else is `NotManaged`.
//! 2. The page table entry of `addr`'s page. Null: the zero-sized address
//!    (first byte of page 0) or unused range (`NotManaged`).
//! 3. The span: for a small span, slot index = offset × reciprocal >> 32
//!    (sizeclass.rs); past the last slot is the span's tail. For a large
//!    span, slot 0 up to the object's size, tail after. For a stack, the
//!    stack's bounds (its guard page is not managed memory).
//! 4. The slot's alloc bit: `Heap`, or for a slot not live `Freed` if it
//!    ever held an object and `Unallocated` if not, with the object's base,
//!    size, element type, count, and a `&BitSlice` window into the layout's
//!    bitmap (span.rs): nothing is allocated or computed per word.
//!
//! Lock-free reading: the reservation is immutable after `OnceLock`
//! publishes it; page table entries are stored with Release after the span
//! is fully built and loaded with Acquire; spans and layouts are never freed,
//! and what changes in a span (alloc bits, pin bits, mark bits, counts, a
//! reused span's layout, and the base and page count of a retired span
//! reused elsewhere, span.rs) is atomic. A lookup racing with a free and
//! reuse of the same memory sees the state before or after (a layout and
//! its alloc bit are ordered: layout stored before the bit is set, read
//! after the bit); one racing with the reuse of a retired span elsewhere
//! may answer nonsense for that instant, but its arithmetic wraps and its
//! indexes are checked.

use super::arena::Arena;
use super::sizeclass::PAGE;
use super::span::{Span, SpanKind};
use super::Heap;
use crate::globals;
use cgocheck_checker::memory::GlobalVar;
use cgocheck_checker::{ManagedMemory, Object, Region};

/// Where an address lands in the reserved range.
enum Place<'a> {
    /// Outside the range, or in a part with no span.
    Outside,
    /// The zero-sized allocation address.
    ZeroSized,
    /// Slot `slot` of a small or large span.
    Slot(&'a Arena, &'static Span, usize),
    /// Past the last slot of a span.
    Tail(&'static Span),
    /// A stack span (including its guard page).
    Stack(&'static Span),
}

impl Heap {
    #[inline]
    fn place(&self, addr: usize) -> Place<'_> {
        // Before the first allocation nothing is managed heap; `get` does
        // not reserve.
        let Some(arena) = self.arena.get() else { return Place::Outside };
        let off = addr.wrapping_sub(arena.base);
        if off >= arena.reserved {
            return Place::Outside;
        }
        let Some(span) = arena.span_at(off / PAGE) else {
            return if off == 0 { Place::ZeroSized } else { Place::Outside };
        };
        match span.kind {
            SpanKind::Small { .. } => {
                let slot = span.slot_of(addr);
                if slot < span.nslots {
                    Place::Slot(arena, span, slot)
                } else {
                    Place::Tail(span)
                }
            }
            SpanKind::Large => {
                if addr.wrapping_sub(span.base()) < span.large_size() {
                    Place::Slot(arena, span, 0)
                } else {
                    Place::Tail(span)
                }
            }
            SpanKind::Stack => Place::Stack(span),
        }
    }

    /// The span and slot of a heap object address (live or freed).
    #[inline(always)]
    pub(crate) fn slot_of(&self, addr: usize) -> Option<(&'static Span, usize)> {
        match self.place(addr) {
            Place::Slot(_, span, slot) => Some((span, slot)),
            _ => None,
        }
    }
}

impl ManagedMemory for Heap {
    // Always inlined: the answer is a seven-word enum the checker takes
    // apart at once; returned through memory, every checked pointer paid a
    // store-forwarding stall reading it back.
    #[inline(always)]
    fn region(&self, addr: usize) -> Region<'_> {
        match self.place(addr) {
            Place::Outside => globals::region(addr),
            Place::ZeroSized => Region::ZeroSized,
            Place::Slot(arena, span, slot) => {
                // The alloc bit first (Acquire), then layout and count: a
                // reader that sees the bit of a new object sees its layout.
                let live = span.is_allocated(slot);
                let layout = span.layout();
                let count = span.count(layout, slot);
                let size = span.object_size(layout, count);
                let obj = Object {
                    base: span.base() + slot * span.slot_size,
                    size,
                    elem: layout.elem,
                    count,
                    ptr_bits: layout.ptr_bits(count, size, arena.zero),
                };
                if live {
                    Region::Heap(obj)
                } else if span.was_allocated(slot) {
                    Region::Freed(obj)
                } else {
                    Region::Unallocated(obj)
                }
            }
            Place::Tail(span) => Region::SpanTail { span_base: span.base(), span_end: span.end() },
            Place::Stack(span) => {
                let lo = span.base() + PAGE;
                if addr >= lo && span.is_allocated(0) {
                    Region::Stack { task: span.task.load(std::sync::atomic::Ordering::Acquire), lo, hi: span.end() }
                } else {
                    Region::NotManaged
                }
            }
        }
    }

    fn global(&self, addr: usize) -> Option<GlobalVar<'_>> {
        globals::var(addr)
    }

    #[inline]
    fn is_pinned(&self, addr: usize) -> bool {
        match self.place(addr) {
            // C memory and globals: nothing to pin, never moves.
            Place::Outside | Place::ZeroSized => true,
            Place::Slot(_, span, slot) => span.is_allocated(slot) && span.is_pinned(slot),
            Place::Tail(_) => false,
            // A stack cannot be pinned; its guard page and a freed stack
            // are not managed memory.
            Place::Stack(_) => !matches!(self.region(addr), Region::Stack { .. }),
        }
    }
}

//! The managed heap.
//!
//! Memory for managed values: typed objects, slice backing arrays, strings,
//! and task stacks, all inside one reserved address range (`arena.rs`).
//! Design in one breath:
//!
//! - The range is cut into 8 KiB pages; runs of pages are [`Span`]s
//!   (`span.rs`). A page table maps every page to its span.
//! - Small requests (up to 32 KiB) are rounded to a size class
//!   (`sizeclass.rs`) and served from spans segregated by (size class,
//!   element type, single value or array): all slots of a span share one
//!   layout, so the span carries one pointer bitmap for its slots and the
//!   type for messages, allocation writes no bitmap and objects have no
//!   header.
//! - Larger requests, and any alignment above the 8 KiB page (up to Rust's
//!   largest, 2^29), get a span of their own; large objects of one element
//!   type share one bitmap (span.rs), so the heap's bookkeeping stays
//!   bounded however many different lengths are allocated.
//! - Sizes are checked before anything is built: a count whose byte size
//!   overflows, is larger than the heap, or does not fit in what is left is
//!   a panic naming the request (count, type, bytes), never a wrapped size.
//! - Threads allocate small objects lock-free from their own cached spans
//!   (`cache.rs`); getting and returning spans, large objects and stacks go
//!   through one lock (`central.rs`).
//! - Lookup (`lookup.rs`) is lock-free: range check, page table, span,
//!   slot by multiply-shift, alloc bit. That is the [`ManagedMemory`]
//!   implementation the checker uses.
//! - Memory is zero when handed out: fresh pages are zero; a freed small
//!   slot is zeroed by `free`; a freed large object's pages are given back
//!   to the kernel, which zero-fills them when touched again.
//! - The heap never moves objects. Memory is freed only by the unsafe
//!   [`Heap::free`] (tests; later the collector's sweeper, which frees only
//!   unreachable objects).
//!
//! [`ManagedMemory`]: cgocheck_checker::ManagedMemory

mod arena;
mod cache;
mod central;
mod lookup;
pub mod sizeclass;
mod span;
mod stack;

pub use stack::{GuardHit, StackRange};

use arena::{Arena, MAX_ALIGN};
use central::Central;
use cgocheck_checker::{ManagedMemory, Type};
use sizeclass::{class_for, CLASSES, MAX_SMALL, PAGE};
use span::{Span, SpanKind};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The managed heap. There is one, reached with [`heap()`].
pub struct Heap {
    arena: OnceLock<Arena>,
    central: Mutex<Central>,
}

pub(crate) static HEAP: Heap = Heap { arena: OnceLock::new(), central: Mutex::new(Central::new()) };

/// The process's managed heap.
#[inline]
pub fn heap() -> &'static Heap {
    &HEAP
}

impl Heap {
    /// The reserved range, reserved on first use.
    #[inline]
    fn arena(&self) -> &Arena {
        self.arena.get_or_init(Arena::reserve)
    }

    /// The central state, locked. A panic while holding the lock (address
    /// space exhausted) happens before any change, so a poisoned lock is
    /// still consistent and is taken over.
    fn central(&self) -> MutexGuard<'_, Central> {
        self.central.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The address every zero-sized allocation returns.
    pub fn zero_sized_addr(&self) -> usize {
        self.arena().base
    }

    /// The address range `(lo, hi)` of the heap's objects: every heap
    /// object lies inside. Task stacks lie just above, in
    /// [`Heap::stack_range`]; nothing else lies in either.
    pub fn reserved_range(&self) -> (usize, usize) {
        let a = self.arena();
        (a.base, a.base + a.len)
    }

    /// Allocates zeroed memory for `count` values of type `elem` (an array
    /// when `count > 1`) and returns its address, aligned to `elem.align`
    /// (any power of two up to 2^29, Rust's largest). Zero bytes (a
    /// zero-sized type or `count == 0`) return the one zero-sized address,
    /// which is aligned for every type.
    ///
    /// `elem` must describe the values that will be stored there (its
    /// pointer words are what the checker and the collector will read).
    /// Panics, naming the request, when `elem.size * count` overflows, is
    /// larger than the heap or does not fit in what is left of it, or when
    /// `elem` is impossible (an alignment that is not a power of two or is
    /// above 2^29; pointers in a size that is not whole words).
    #[inline]
    pub fn alloc(&self, elem: &'static Type, count: usize) -> *mut u8 {
        let Some(size) = elem.size.checked_mul(count) else {
            panic!("cgocheck: allocation of {count} values of {elem} ({} bytes each) overflows", elem.size);
        };
        let align = elem.align.max(1);
        if !align.is_power_of_two() || align > MAX_ALIGN {
            bad_align(elem);
        }
        if size == 0 {
            return self.zero_sized_addr() as *mut u8;
        }
        // Small spans are page-aligned: slots of a class that is a multiple
        // of `align` are aligned only up to the page.
        if size <= MAX_SMALL && align <= PAGE {
            if let Some(class) = class_for(size, align) {
                return self.alloc_small(elem, count, class) as *mut u8;
            }
        }
        self.alloc_large(elem, count, size, align) as *mut u8
    }

    #[inline]
    fn alloc_small(&self, elem: &'static Type, count: usize, class: usize) -> usize {
        let single = count == 1;
        let hit = cache::with_cache(|c| {
            let e = c.entry(elem, class, single);
            if e.serves(elem, class, single) {
                if let Some(addr) = e.alloc(count) {
                    return addr;
                }
            }
            self.refill(e, elem, count, class)
        });
        match hit {
            Some(addr) => addr,
            None => self.alloc_uncached(elem, count, class),
        }
    }

    /// Slow path: the entry for the key is empty, exhausted, or serves
    /// another key. Give its span back and take one for this key.
    #[cold]
    fn refill(&self, e: &mut cache::Entry, elem: &'static Type, count: usize, class: usize) -> usize {
        let single = count == 1;
        let arena = self.arena();
        let mut central = self.central();
        if let Some(old) = e.span.take() {
            central.give_back(old);
        }
        let layout = central.layout(arena, elem, CLASSES[class].size, if single { 1 } else { 0 });
        let span = central.take_small(arena, class, &CLASSES[class], layout);
        drop(central);
        e.fill(elem, class, single, span);
        e.alloc(count).expect("a span taken from the central heap has a free slot")
    }

    /// Allocation on a thread whose cache is already destroyed: take a span,
    /// use one slot, give it back.
    #[cold]
    fn alloc_uncached(&self, elem: &'static Type, count: usize, class: usize) -> usize {
        let mut e = cache::Entry::EMPTY;
        let addr = self.refill(&mut e, elem, count, class);
        if let Some(span) = e.span {
            self.give_back(&[span]);
        }
        addr
    }

    /// Returns spans from a thread cache to the central lists.
    pub(crate) fn give_back(&self, spans: &[&'static Span]) {
        let mut central = self.central();
        for &s in spans {
            central.give_back(s);
        }
    }

    /// A span of its own for `size` bytes (checked against the heap before
    /// anything is built: the pages are found before the bitmap).
    #[cold]
    fn alloc_large(&self, elem: &'static Type, count: usize, size: usize, align: usize) -> usize {
        let arena = self.arena();
        // Page 0 is the zero-sized address; every size below is at most
        // the range, so no page count or rounding can overflow.
        let usable = arena.len - PAGE;
        if size > usable {
            panic!(
                "cgocheck: allocation of {count} values of {elem} ({} bytes each, {size} bytes) is larger than the managed heap ({usable} bytes)",
                elem.size
            );
        }
        span::check_elem(elem);
        let mut central = self.central();
        let Some(span) = central.take_large(arena, elem, count, size.div_ceil(PAGE), align) else {
            let used = central.in_use();
            drop(central);
            panic!(
                "cgocheck: managed heap exhausted: allocation of {count} values of {elem} ({size} bytes) does not fit, {used} of {} bytes in use",
                arena.len
            );
        };
        span.take_slot(0, count);
        span.base
    }

    /// Frees the object at `ptr` (its base address). Small slots are zeroed
    /// now; large objects' pages go back to the kernel. From now on
    /// `region()` of its addresses answers `Region::Freed` until the slot is
    /// reused.
    ///
    /// Panics if `ptr` is not the base of a live heap object, or the object
    /// is pinned. Freeing the zero-sized address does nothing.
    ///
    /// # Safety
    /// Nothing may use the object afterwards: no `Gc`/`GcSlice`/`GcStr` or
    /// reference to it is dereferenced again, no other thread reads or writes
    /// it concurrently, and no C code keeps it.
    pub unsafe fn free(&self, ptr: *mut u8) {
        let addr = ptr as usize;
        let (span, slot) = match self.slot_of(addr) {
            Some((span, slot)) if span.is_allocated(slot) => {
                let base = span.base + slot * span.slot_size;
                if base != addr {
                    panic!("cgocheck: free of {addr:#x}, an interior pointer of the object at {base:#x}");
                }
                (span, slot)
            }
            Some((span, slot)) if !span.was_allocated(slot) => {
                panic!("cgocheck: free of {addr:#x}, which is not an allocated object (a heap slot never allocated)")
            }
            Some(_) => panic!("cgocheck: free of {addr:#x}: the object was already freed"),
            None if addr == self.zero_sized_addr() => return,
            None => panic!("cgocheck: free of {addr:#x}, which is not a heap object ({:?})", self.region(addr)),
        };
        assert!(!span.is_pinned(slot), "cgocheck: free of {addr:#x}: the object is pinned");
        match span.kind {
            SpanKind::Small { .. } => {
                // SAFETY: the slot `[addr, addr + slot_size)` lies in
                // committed pages of this span; the caller guarantees nobody
                // uses the object any more, so overwriting it races with
                // nothing.
                unsafe { std::ptr::write_bytes(ptr, 0, span.slot_size) };
                // Publishes the zeroes to the next owner (see
                // `clear_allocated`).
                if !span.clear_allocated(slot) {
                    panic!("cgocheck: free of {addr:#x}: the object was freed concurrently");
                }
                if span.is_full() {
                    self.central().freed_small(span);
                }
            }
            SpanKind::Large => {
                if !span.clear_allocated(0) {
                    panic!("cgocheck: free of {addr:#x}: the object was freed concurrently");
                }
                self.arena().discard(span.base, span.npages * PAGE);
                self.central().freed_large(span);
            }
            SpanKind::Stack => unreachable!("slot_of never answers a stack"),
        }
    }
}

/// The panic for a descriptor whose alignment no allocation can have.
#[cold]
fn bad_align(elem: &Type) -> ! {
    panic!(
        "cgocheck: type {elem} has alignment {}: the heap serves alignments that are powers of two, at most {MAX_ALIGN} (Rust's largest)",
        elem.align
    )
}

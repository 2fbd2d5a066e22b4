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
//!   through one lock (`central.rs`). Pages freed by the collector form free
//!   runs shared by small spans of every class and large objects
//!   (`runs.rs`); the scavenger gives runs that stay free back to the
//!   kernel (`gc/scavenge.rs`).
//! - Lookup (`lookup.rs`) is lock-free: range check, page table, span,
//!   slot by multiply-shift, alloc bit. That is the [`ManagedMemory`]
//!   implementation the checker uses.
//! - Memory is zero when handed out: fresh pages are zero; a freed small
//!   slot is zeroed when freed (at `CGOCHECK=2`, when the quarantine lets
//!   it go, `gc/quarantine.rs`); a freed large object's pages are given back
//!   to the kernel, which zero-fills them when touched again; so free runs
//!   are zero too.
//! - The heap never moves objects. Memory is reclaimed by the collector
//!   (`gc/`): marking sets per-slot mark bits in the spans, the sweeper
//!   frees the slots found dead with the same protocol as [`Heap::free`]
//!   (which stays, unsafe, for tests), and allocation helps sweep before
//!   it takes fresh pages. Totals for the pacer and `mem_stats` are kept in
//!   `counters.rs`.
//! - Managed objects are made by tasks (the collector scans their stacks):
//!   the slow paths (a span refill, a large object) panic on a thread that
//!   is not running a task, and on a task they are safepoints
//!   (`gc::alloc_slow_path`). The fast path checks nothing: a
//!   thread outside a task has an empty cache, so its first allocation
//!   takes the slow path. Zero-sized allocations are fine anywhere.
//! - When the range is exhausted, the allocation asks for a full
//!   collection and tries once more; if it still does not fit, the
//!   process ends with a fatal out-of-memory report naming the request,
//!   the heap's size, the live size and `GOMEMLIMIT`
//!   (`gc::pacer::out_of_memory`, exit status 2), as Go's runtime does.
//!
//! [`ManagedMemory`]: cgocheck_checker::ManagedMemory

pub(crate) mod arena;
mod cache;
mod central;
pub(crate) mod counters;
mod lookup;
mod runs;
pub mod sizeclass;
pub(crate) mod span;
mod stack;
#[doc(hidden)]
pub mod testing;

pub use counters::{counters, HeapCounters};
pub(crate) use runs::SCAVENGE_AFTER_MS;
pub use stack::{GuardHit, StackRange};

use crate::sched::nopreempt::NoPreempt;
use arena::{Arena, MAX_ALIGN};
pub(crate) use central::Central;
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
    pub(crate) fn arena(&self) -> &Arena {
        self.arena.get_or_init(Arena::reserve)
    }

    /// The reserved range if it exists yet (never reserves).
    #[inline]
    pub(crate) fn arena_if_reserved(&self) -> Option<&Arena> {
        self.arena.get()
    }

    /// The central state, locked, with preemption held off while it is
    /// held (the collector's rule for runtime locks, `sched/nopreempt.rs`).
    /// A panic while holding the lock (address space exhausted) happens
    /// before any change, so a poisoned lock is still consistent and is
    /// taken over.
    pub(crate) fn central(&self) -> CentralGuard<'_> {
        let np = NoPreempt::new();
        CentralGuard { guard: self.central.lock().unwrap_or_else(|e| e.into_inner()), _np: np }
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
                e.alloc(count)
            } else {
                None
            }
        });
        match hit {
            Some(Some(addr)) => addr,
            _ => self.refill(elem, count, class),
        }
    }

    /// Slow path: the entry for the key is empty, exhausted, or serves
    /// another key (or the thread's cache is gone). The safepoint comes
    /// first, outside the cache: the task may be stopped there. Then a
    /// span for the key goes into the entry, its old span back to the
    /// central lists; on a thread whose cache is destroyed (another
    /// thread-local's destructor allocating) the span serves one slot and
    /// goes back.
    #[cold]
    fn refill(&self, elem: &'static Type, count: usize, class: usize) -> usize {
        self.slow_path_entry();
        // From here until the span is in the cache (or given back), it is
        // in this task's hands only: no collection may begin meanwhile, or
        // its sweep would treat the span by a state the span no longer has
        // (the "span taken from the central heap has a free slot" panic of
        // the stress soak). The collector waits for the guard to go.
        let _np = NoPreempt::new();
        if crate::gc::quarantine::active() {
            // CGOCHECK=2: spans this thread caches that a collection left
            // without a live object can be held and protected once it lets
            // them go.
            crate::gc::quarantine::let_cached_spans_go();
        }
        let single = count == 1;
        let span = self.take_span(elem, single, class);
        let installed = cache::with_cache(|c| {
            let e = c.entry(elem, class, single);
            let old = e.span.take();
            e.fill(elem, class, single, span);
            (e.alloc(count), old)
        });
        match installed {
            Some((addr, old)) => {
                if let Some(old) = old {
                    self.give_back(&[old]);
                }
                addr.expect("a span taken from the central heap has a free slot")
            }
            None => {
                let mut e = cache::Entry::EMPTY;
                e.fill(elem, class, single, span);
                let addr = e.alloc(count).expect("a span taken from the central heap has a free slot");
                self.give_back(&[span]);
                addr
            }
        }
    }

    /// A span of class `class` for the key, owned by the caller: a partial
    /// one; else, while a sweep is in progress, sweeps some spans and looks
    /// again; else a new one. When the range is exhausted: a full
    /// collection and one more try, then the fatal out-of-memory report.
    fn take_span(&self, elem: &'static Type, single: bool, class: usize) -> &'static Span {
        let arena = self.arena();
        let (mut helped, mut collected) = (false, false);
        loop {
            let mut central = self.central();
            let layout = central.layout(arena, elem, CLASSES[class].size, if single { 1 } else { 0 });
            if let Some(span) = central.take_partial(layout) {
                return span;
            }
            if !helped && crate::gc::sweep::in_progress() {
                drop(central);
                crate::gc::sweep::help();
                helped = true;
                continue;
            }
            if let Some(span) = central.take_small(arena, class, &CLASSES[class], layout) {
                return span;
            }
            drop(central);
            // Only tasks come this far (`slow_path_entry`).
            if !collected {
                crate::gc::gc();
                collected = true;
                continue;
            }
            crate::gc::pacer::out_of_memory(CLASSES[class].npages * PAGE);
        }
    }

    /// The first thing of every allocation slow path: on a task, the
    /// collector's hook (a cycle may start; a safepoint); elsewhere the
    /// outside-a-task panic (module comment).
    #[inline]
    fn slow_path_entry(&self) {
        if on_task() {
            crate::gc::alloc_slow_path();
        } else {
            outside_task();
        }
    }

    /// The calling thread gives back every span its cache holds (the
    /// `CGOCHECK=2` quarantine's [`let_cached_spans_go`]: a span no cache
    /// owns can be held and protected). The caller holds off preemption.
    ///
    /// [`let_cached_spans_go`]: crate::gc::quarantine::let_cached_spans_go
    pub(crate) fn give_back_cache(&self) {
        let spans = cache::with_cache(|c| c.take_all()).unwrap_or_default();
        if !spans.is_empty() {
            self.give_back(&spans);
        }
    }

    /// Returns spans from a thread cache to the central lists.
    pub(crate) fn give_back(&self, spans: &[&'static Span]) {
        let arena = self.arena();
        let mut central = self.central();
        for &s in spans {
            central.give_back(arena, s);
        }
        drop(central);
        if crate::gc::quarantine::active() {
            // A span held just now counts against the quarantine's bound.
            crate::gc::quarantine::trim();
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
        self.slow_path_entry();
        if crate::gc::sweep::in_progress() {
            crate::gc::sweep::help();
        }
        let mut collected = false;
        loop {
            let mut central = self.central();
            if let Some(span) = central.take_large(arena, elem, count, size.div_ceil(PAGE), align) {
                span.take_slot(0, count);
                counters::allocated(1, span.large_size());
                return span.base();
            }
            drop(central);
            // Only tasks come this far (`slow_path_entry`).
            if !collected {
                crate::gc::gc();
                collected = true;
                continue;
            }
            crate::gc::pacer::out_of_memory(size);
        }
    }

    /// Frees the small slots of word `w` of `span` whose bits are set in
    /// `bits` (live objects nobody uses any more): zeroes them, then sets
    /// their freed bits with one SeqCst OR (the protocol of `free`; a
    /// span its owner gave back full becomes partial, one all free and
    /// uncached is retired: [`Heap::after_small_frees`]).
    pub(crate) fn free_small_slots(&self, span: &'static Span, w: usize, bits: u64) {
        debug_assert!(matches!(span.kind, SpanKind::Small { .. }));
        let mut rest = bits;
        while rest != 0 {
            let slot = w * 64 + rest.trailing_zeros() as usize;
            rest &= rest - 1;
            // SAFETY: the slot lies in committed pages of this live span
            // (slot < nslots: dead bits are masked to the slots); it is
            // unreachable (the collector found it so) and not pinned, so
            // nothing reads or writes it concurrently.
            unsafe { std::ptr::write_bytes((span.base() + slot * span.slot_size) as *mut u8, 0, span.slot_size) };
        }
        let n = span.free_slots_in_word(w, bits);
        counters::freed(n, n * span.slot_size);
    }

    /// After [`Heap::free_small_slots`] on `span`: the central part of the
    /// free protocol (a span given back full becomes partial; one all free
    /// and uncached is retired).
    pub(crate) fn after_small_frees(&self, span: &'static Span) {
        // Without the lock first: most swept spans are cached or still
        // hold live objects, and need nothing more. `freed_small` checks
        // again under the lock.
        let idle = span.state.load(std::sync::atomic::Ordering::SeqCst) == span::state::PARTIAL;
        if span.is_full() || (idle && span.live_slots() == 0) {
            self.central().freed_small(self.arena(), span);
        }
    }

    /// Frees the large object of `span` (dead: nobody uses it): its pages
    /// go back to the kernel and its run to the free runs.
    /// False, changing nothing, if it was freed already (a `Heap::free`
    /// racing with the sweep, see `Span::clear_dead`).
    pub(crate) fn free_large_object(&self, span: &'static Span) -> bool {
        let bytes = span.large_size();
        if !span.clear_allocated(0) {
            return false;
        }
        span.frees.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        counters::freed(1, bytes);
        self.arena().discard(span.base(), span.npages() * PAGE);
        self.central().freed_large(self.arena(), span);
        true
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
                let base = span.base() + slot * span.slot_size;
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
        span.clear_dead(slot);
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
                span.frees.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                counters::freed(1, span.slot_size);
                if span.is_full() {
                    self.central().freed_small(self.arena(), span);
                }
            }
            SpanKind::Large => {
                if !self.free_large_object(span) {
                    panic!("cgocheck: free of {addr:#x}: the object was freed concurrently");
                }
            }
            SpanKind::Stack => unreachable!("slot_of never answers a stack"),
        }
    }
}

/// The central state behind its lock, with preemption held off (the guard
/// is dropped after the lock, field order).
pub(crate) struct CentralGuard<'a> {
    guard: MutexGuard<'a, Central>,
    _np: NoPreempt,
}

impl std::ops::Deref for CentralGuard<'_> {
    type Target = Central;
    fn deref(&self) -> &Central {
        &self.guard
    }
}

impl std::ops::DerefMut for CentralGuard<'_> {
    fn deref_mut(&mut self) -> &mut Central {
        &mut self.guard
    }
}

/// Whether the calling thread is running a task (its M has a current
/// task).
#[inline]
pub(crate) fn on_task() -> bool {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    unsafe { crate::sched::m::current_m().as_ref() }.is_some_and(|m| m.curg().is_some())
}

/// The panic for a managed allocation outside a task (decision 3).
#[cold]
#[track_caller]
fn outside_task() -> ! {
    panic!(
        "cgocheck::new called outside a task: managed objects are made by tasks, whose stacks the collector scans; \
         run this code inside cgocheck::run(|| ...) / cgocheck::run_test(|| ...) or a task it spawns; \
         a Gc kept outside a task needs a cgocheck::Root"
    )
}

/// The panic for a descriptor whose alignment no allocation can have.
#[cold]
fn bad_align(elem: &Type) -> ! {
    panic!(
        "cgocheck: type {elem} has alignment {}: the heap serves alignments that are powers of two, at most {MAX_ALIGN} (Rust's largest)",
        elem.align
    )
}

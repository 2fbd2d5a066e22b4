//! Spans: runs of heap pages, and the layouts that describe their slots.
//!
//! A [`Span`] is a run of whole pages with one job: the slots of one small
//! size class, one large object, or one task stack. Its identity (base, page
//! count, kind, slot geometry) never changes after it is published in the
//! page table; what changes is tracked in atomics:
//!
//! - `alloc` and `freed`: one bit each per slot. A slot holds a live object
//!   when its alloc bit is set and its freed bit is not. The two are split by
//!   writer: only the span's owner (the thread whose cache holds it, or the
//!   central lock for large spans and stacks) writes `alloc`, so taking a
//!   never-used slot is a plain load and store, no locked instruction — the
//!   bulk of the allocation fast path's cost otherwise. `free`, from any
//!   thread, sets the `freed` bit with an atomic OR. When the owner moves
//!   its cursor to a word it "claims" it: the freed slots of the word get
//!   their alloc bit cleared, then their freed bit (one atomic AND per 64
//!   slots), so reused slots too are handed out with a plain store. Alloc
//!   bits past the last slot are set at creation so they never look free.
//! - `reused`: one bit per slot, set by the owner's claim when it turns a
//!   freed slot back into a free one (before it clears the alloc and freed
//!   bits). A slot that is not live has held an object exactly when its
//!   alloc, freed or reused bit is set ([`Span::was_allocated`]), so the
//!   lookup tells a freed slot from one never allocated at no cost to the
//!   allocation fast path.
//! - `pinned`: one bit per slot, the fast answer to `is_pinned`; the counts
//!   behind it live in the pinner (set and cleared under its lock).
//! - `counts`: for spans of arrays (a slice of `len` elements), the element
//!   count of each slot, since slots of one class hold different lengths;
//!   `large_count`: the element count of a large span's object.
//! - The per-slot bitmaps (alloc, freed, reused, pinned, and the
//!   collector's mark and dead below) of 64 slots lie side by side in one
//!   cache line (`Group`): a lookup, the marker and the sweeper read
//!   several of them for one slot.
//! - `layout`: the [`Layout`] of the slots. Fixed for small spans; a large
//!   span's run may be reused for another large object, which publishes a new
//!   layout pointer.
//!
//! A [`Layout`] is immutable and interned, so every span of "slots of 32
//! bytes holding one `Node`" shares one. It owns a pointer bitmap: the
//! element's mask repeated `reps` times, then (small layouts) one slot's
//! worth of zero bits. The bitmap of an object of `count` elements and
//! `size` bytes is the window of `size / 8` bits starting `reps - count`
//! elements in: the last `count` repetitions followed by zeros. So lookups
//! hand out a `&BitSlice` into the layout and nothing is written per
//! allocation. Pointer-free layouts hand out a window of one shared,
//! never-written zero region instead of owning bits.
//!
//! Small layouts are keyed by (element type, class size, single value or
//! array). Large objects of one element type share one layout whatever
//! their length (their size and count live in the span): it is rebuilt
//! only when an object has more elements than its `reps`, with `reps` at
//! least doubled, so the bitmaps ever built for one element type add up to
//! less than twice the bitmap of its largest large object (which is 1/64 of
//! that object's bytes), however many different lengths are allocated.
//!
//! The collector adds three per-slot bitmaps and a sweep generation:
//!
//! - `mark`: set by marking (`gc/mark.rs`, several threads: an atomic OR),
//!   one bit per slot, slot 0 for a large object. Stacks are never marked.
//! - `dead`: written while the world is stopped, after marking
//!   (`prepare_sweep`): live-allocated, not marked, not pinned. The mark
//!   bits are cleared at the same time, ready for the next cycle.
//! - `sweep_gen`: the sweep generation this span was swept for
//!   (`gc/sweep.rs`); whoever moves it from "needs sweeping" to "swept"
//!   with a CAS frees the `dead` slots, so each span is swept once per
//!   cycle whoever gets there first (background sweeper, an allocating
//!   thread, `gc()`).
//!
//! At `CGOCHECK=2` the quarantine (`gc/quarantine.rs`) adds one more:
//!
//! - `quarantined`: freed slots not to be reused yet. Set before the
//!   freed bit and cleared (after the slot is zeroed) while the freed bit
//!   stays, so a claim that sees a freed bit sees whether the slot is
//!   quarantined, and one that sees it released sees it zero. A
//!   quarantined slot is neither live nor free: lookups answer `Freed`,
//!   the owner's claim skips it, [`Span::free_slots`] does not count it,
//!   so a span holding one is never retired. `frees` counts it when it is
//!   released, not when it is quarantined, so `taken_since_take` counts
//!   every object once. A span with no live object left is *held* by the
//!   quarantine (state `HELD`, `protected` set when its pages are made
//!   inaccessible); `lent` records which C call last received each slot's
//!   object (`ffi/lend.rs`).
//!
//! Every small and large span ever created is on one append-only,
//! lock-free list (`all_next`, [`for_each_span`]), so the collector
//! enumerates them with the world stopped without taking a lock that a
//! stopped task might hold.
//!
//! Span and Layout structs are never freed: a lookup racing with a free may
//! still hold a reference to them (see the page table in `lookup.rs`). A
//! span whose pages go back to the page runs (central.rs: a small span
//! found all free after a sweep, a freed large object whose run is taken
//! for something else) is *retired*: its page-table entries are cleared,
//! then the struct waits in a pool for its shape (small: size class and
//! count mode; large: any) and is reused at another address, so `base` and
//! `npages` are atomics. A lookup that loaded the struct before the entries
//! were cleared may then compute with the new base: all its arithmetic
//! wraps and every index is checked, so the answer is wrong for that
//! instant (as any answer about memory freed under it) but in bounds. The
//! bound: the structs of one shape are at most the most spans of that shape
//! ever in use at once, so they follow the peak heap, not the total ever
//! allocated. Layouts are bounded by the number of element types times the
//! size classes, plus the doublings above for large objects.
//!
//! A lookup racing with the free and reuse of a large span may read the old
//! layout with the new object's count. Its answer is then wrong for that
//! instant (as any answer about memory being freed under it), but stays in
//! bounds: the size is capped at the span's pages and the bitmap window at
//! the layout's bits.

use super::sizeclass::{Class, PAGE};
use bitvec::prelude::*;
use cgocheck_checker::{Type, WORD};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU16, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// The pointer layout shared by the slots of spans of one shape.
pub(crate) struct Layout {
    /// Type of one element.
    pub elem: &'static Type,
    /// Element count of every slot, or 0 when each slot or large object
    /// records its own count (arrays).
    pub count: usize,
    /// Element mask repeated `reps` times, then one small slot's worth of
    /// zero bits; the shared zero region when the element holds no pointers.
    bits: &'static BitSlice<u64, Lsb0>,
    /// Repetitions of the element mask at the start of `bits`.
    reps: usize,
    /// Words per element (0 for pointer-free elements).
    elem_words: usize,
    /// Small slots of a fixed count up to 64 words: their pointer bitmap
    /// as one word (`has_mask`), so marking scans them without a bitmap
    /// window.
    pub slot_mask: u64,
    pub has_mask: bool,
}

/// Refuses an element type no layout can describe: one holding pointers
/// whose size is not a whole number of words (every pointer word is
/// word-aligned, so a real type with a pointer has a size in whole words).
pub fn check_elem(elem: &Type) {
    if elem.has_pointers() && elem.size & (WORD - 1) != 0 {
        panic!("cgocheck: type {elem} holds pointers but its size {} is not a multiple of 8", elem.size);
    }
}

impl Layout {
    /// Builds the layout of small slots of `slot_size` bytes holding `count`
    /// elements (0: any count that fits). `zero` is the shared zero region.
    pub fn new(elem: &'static Type, slot_size: usize, count: usize, zero: &'static BitSlice<u64, Lsb0>) -> Layout {
        let reps = if count == 0 { slot_size / elem.size.max(1) } else { count };
        let mut layout = Layout::build(elem, count, reps, slot_size.div_ceil(WORD), zero);
        if count != 0 && slot_size <= 64 * WORD {
            let bits = layout.ptr_bits(count, slot_size, zero);
            layout.slot_mask = if bits.is_empty() { 0 } else { bits.load_le::<u64>() };
            layout.has_mask = true;
        }
        layout
    }

    /// Builds the layout shared by large objects of up to `reps` elements of
    /// `elem` (their count and size are the span's).
    pub fn large(elem: &'static Type, reps: usize, zero: &'static BitSlice<u64, Lsb0>) -> Layout {
        Layout::build(elem, 0, reps, 0, zero)
    }

    /// Whether this large-object layout describes an object of `count`
    /// elements.
    pub fn holds(&self, count: usize) -> bool {
        self.elem_words == 0 || count <= self.reps
    }

    /// Whether the slots hold pointers (marking scans them).
    #[inline(always)]
    pub fn has_pointers(&self) -> bool {
        self.elem_words != 0
    }

    /// Repetitions of the element mask (the largest count a large-object
    /// layout holds).
    pub fn reps(&self) -> usize {
        self.reps
    }

    /// The mask repeated `reps` times, then `pad` zero words.
    fn build(elem: &'static Type, count: usize, reps: usize, pad: usize, zero: &'static BitSlice<u64, Lsb0>) -> Layout {
        if !elem.has_pointers() {
            return Layout { elem, count, bits: &zero[..0], reps: 0, elem_words: 0, slot_mask: 0, has_mask: false };
        }
        check_elem(elem);
        let elem_words = elem.size / WORD;
        let mut bits = bitvec![u64, Lsb0; 0; reps * elem_words + pad];
        // Write one element's mask, then double the written prefix until
        // `reps` copies are there: O(log reps) copies of growing runs
        // instead of `reps` walks of the element type.
        elem.write_ptr_bits(&mut bits[..elem_words]);
        let mut done = 1;
        while done < reps {
            let n = done.min(reps - done);
            bits.copy_within(..n * elem_words, done * elem_words);
            done += n;
        }
        let bits = BitBox::leak(bits.into_boxed_bitslice());
        Layout { elem, count, bits, reps, elem_words, slot_mask: 0, has_mask: false }
    }

    /// The pointer bitmap of an object of `count` elements and `size` bytes
    /// (a small slot's size, or a large object's): `size / 8` bits, O(1),
    /// nothing allocated. Always inlined into `region()`, for the same
    /// reason as it. Clamped to the bits there are (see the file comment on
    /// racing lookups); for a consistent `count` and `size` it never is.
    #[inline(always)]
    pub fn ptr_bits(
        &self,
        count: usize,
        size: usize,
        zero: &'static BitSlice<u64, Lsb0>,
    ) -> &'static BitSlice<u64, Lsb0> {
        let words = size.div_ceil(WORD);
        if self.elem_words == 0 {
            return &zero[..words.min(zero.len())];
        }
        let start = (self.reps - count.min(self.reps)) * self.elem_words;
        &self.bits[start..(start + words).min(self.bits.len())]
    }
}

/// What a span's pages are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SpanKind {
    /// Slots of one size class.
    Small { class: u8 },
    /// One large object.
    Large,
    /// A task stack; its first page is a PROT_NONE guard page.
    Stack,
}

/// Who may allocate from a small span (changed only under the central lock).
pub(crate) mod state {
    /// In one thread's cache: only that thread sets alloc bits.
    pub const CACHED: u8 = 0;
    /// On the central partial list: has free slots, nobody allocating.
    pub const PARTIAL: u8 = 1;
    /// Every slot was allocated when its owner gave it back.
    pub const FULL: u8 = 2;
    /// All free and retired: its pages are a free run (central.rs); no
    /// free, sweep or give-back may act on it until it is reused.
    pub const RETIRED: u8 = 3;
    /// `CGOCHECK=2`: no live object, only quarantined and free slots, its
    /// pages inaccessible (`gc/quarantine.rs`); nobody allocates from it
    /// until the quarantine lets it go.
    pub const HELD: u8 = 4;
}

/// A run of pages with one job. See the file comment.
pub(crate) struct Span {
    /// Address of the first page (changes only when a retired span is
    /// reused, see the file comment).
    base: AtomicUsize,
    /// Pages in the run (as `base`).
    npages: AtomicUsize,
    pub kind: SpanKind,
    /// Slots (1 for large objects and stacks).
    pub nslots: usize,
    /// Slot size of a small span (0 otherwise).
    pub slot_size: usize,
    /// `ceil(2^32 / slot_size)` for the slot index of a small span.
    pub div_magic: u64,
    layout: AtomicPtr<Layout>,
    /// The per-slot bitmaps, one [`Group`] per 64 slots.
    g: Box<[Group]>,
    /// Per-slot element counts (spans of arrays only, else empty).
    counts: Box<[AtomicU16]>,
    /// Large spans: the element count of the object (with the layout, set
    /// before its alloc bit).
    large_count: AtomicUsize,
    /// Small spans: [`state`]. Changed only under the central lock; read
    /// without it by `free`.
    pub state: AtomicU8,
    /// Stacks: the task that runs on it.
    pub task: AtomicU64,
    /// The sweep generation this span was swept for (gc/sweep.rs).
    pub sweep_gen: AtomicU32,
    /// The next span on the list of all spans (set once, before the span
    /// is put at the list's head).
    all_next: AtomicPtr<Span>,
    /// Index of this span in its central partial list, `usize::MAX` when
    /// not listed (central lock).
    pub partial_idx: AtomicUsize,
    /// Slots freed so far, by anyone (the allocation count at give-back).
    pub frees: AtomicUsize,
    /// Live slots and `frees` when a thread cache last took the span.
    pub live_at_take: AtomicUsize,
    pub frees_at_take: AtomicUsize,
    /// `CGOCHECK=2`: the pages are inaccessible (`gc/quarantine.rs`).
    pub protected: std::sync::atomic::AtomicBool,
    /// `CGOCHECK=2`: the quarantine is releasing slots of it without the
    /// central lock; it may not be held meanwhile (`gc/quarantine.rs`).
    pub releasing: std::sync::atomic::AtomicBool,
    /// `CGOCHECK=2`: batches of its slots a sweeper quarantined and has not
    /// poisoned or held yet; it may not be held by anyone else meanwhile
    /// (`gc/quarantine.rs`).
    pub unlisted: AtomicU32,
    /// `CGOCHECK=2`: moves on when the quarantine lets the whole span go
    /// and when the span is reused: batches made before are stale
    /// (`gc/quarantine.rs`).
    pub qgen: AtomicU32,
    /// `CGOCHECK=2`: one [`LentRecord`] per slot, made on the first record
    /// (`ffi/lend.rs`); null before. Never freed (as the span).
    lent: AtomicPtr<LentRecord>,
}

/// Which C call last received a slot's object (`ffi/lend.rs`, which says
/// how the words are written and read).
#[derive(Default)]
pub(crate) struct LentRecord {
    /// The C (or exported) function's name: address of its bytes.
    pub func: AtomicUsize,
    /// Its length, the argument position and flags (0: no record).
    pub meta: AtomicU64,
    /// The task that made the call.
    pub task: AtomicU64,
}

/// Pin bits set or cleared so far, in any span: `ffi/lend.rs` knows from it
/// that a pinned flag it recorded may have changed.
pub(crate) static PIN_CHANGES: AtomicU64 = AtomicU64::new(0);

/// Frees so far, in any span (counted *before* each free is done, so a
/// reader that sees the same count twice knows no slot was freed, and so
/// none reused, between): a thread's last clean pointer check
/// (`check.rs`) is valid while it does not move.
pub(crate) static FREES: AtomicU64 = AtomicU64::new(0);

/// Head of the list of all small and large spans (file comment).
static ALL_SPANS: AtomicPtr<Span> = AtomicPtr::new(ptr::null_mut());

/// Puts a new span on the list of all spans. Called under the central
/// lock (one writer at a time); readers need no lock.
pub(crate) fn register(span: &'static Span) {
    span.all_next.store(ALL_SPANS.load(Ordering::Relaxed), Ordering::Relaxed);
    // Release: a reader that loads the new head sees its `all_next`.
    ALL_SPANS.store(span as *const Span as *mut Span, Ordering::Release);
}

/// The head of the list of all spans.
pub(crate) fn first_span() -> Option<&'static Span> {
    // SAFETY: the list holds leaked spans only, never freed; Acquire pairs
    // with `register`'s Release.
    unsafe { ALL_SPANS.load(Ordering::Acquire).as_ref() }
}

/// Calls `f` on every small and large span ever created (retired ones
/// too: they have nothing allocated). Lock-free, allocation-free.
pub(crate) fn for_each_span(mut f: impl FnMut(&'static Span)) {
    let mut s = first_span();
    while let Some(span) = s {
        f(span);
        s = span.next_span();
    }
}

/// The bitmaps of 64 slots, side by side in one cache line: the lookup,
/// marking and sweeping read several of them for one slot, and on a large
/// heap each separate bitmap was a cache miss of its own.
#[repr(C, align(64))]
#[derive(Default)]
struct Group {
    /// Written by the owner only.
    alloc: AtomicU64,
    /// Set by `free`, cleared by the owner on reuse.
    freed: AtomicU64,
    /// Set by the owner when it reclaims a freed slot; never cleared.
    reused: AtomicU64,
    pinned: AtomicU64,
    /// Mark bits (file comment; never set for a stack).
    mark: AtomicU64,
    /// Slots found dead by the last mark, not swept yet.
    dead: AtomicU64,
    /// `CGOCHECK=2`: freed slots held in the quarantine (their freed bit
    /// is set too, but the owner's claim skips them until it is cleared).
    quarantined: AtomicU64,
}

fn groups(nslots: usize) -> Box<[Group]> {
    (0..nslots.div_ceil(64)).map(|_| Group::default()).collect()
}

impl Span {
    /// A span of slots of size class `class` (index `class_idx`), all free.
    /// `per_slot_counts`: the slots hold arrays of varying length.
    pub fn small(base: usize, class_idx: usize, class: &Class, layout: &'static Layout, per_slot_counts: bool) -> Span {
        let counts =
            if per_slot_counts { (0..class.nslots).map(|_| AtomicU16::new(0)).collect() } else { Box::default() };
        Span {
            slot_size: class.size,
            div_magic: class.div_magic,
            counts,
            ..Span::blank(base, class.npages, SpanKind::Small { class: class_idx as u8 }, class.nslots, layout)
        }
    }

    /// A span for one large object, free.
    pub fn large(base: usize, npages: usize, layout: &'static Layout) -> Span {
        Span::blank(base, npages, SpanKind::Large, 1, layout)
    }

    /// A span for a task stack (guard page first), not in use.
    pub fn stack(base: usize, npages: usize) -> Span {
        Span::blank(base, npages, SpanKind::Stack, 1, ptr::null())
    }

    fn blank(base: usize, npages: usize, kind: SpanKind, nslots: usize, layout: *const Layout) -> Span {
        let g = groups(nslots);
        // Bits past the last slot read as allocated so that scans for a
        // free slot never return them.
        if nslots & 63 != 0 {
            g[nslots / 64].alloc.store(!0u64 << (nslots % 64), Ordering::Relaxed);
        }
        Span {
            base: AtomicUsize::new(base),
            npages: AtomicUsize::new(npages),
            kind,
            nslots,
            slot_size: 0,
            div_magic: 0,
            layout: AtomicPtr::new(layout as *mut Layout),
            g,
            counts: Box::default(),
            large_count: AtomicUsize::new(0),
            state: AtomicU8::new(state::CACHED),
            task: AtomicU64::new(0),
            sweep_gen: AtomicU32::new(crate::gc::sweep::current_gen()),
            all_next: AtomicPtr::new(ptr::null_mut()),
            partial_idx: AtomicUsize::new(usize::MAX),
            frees: AtomicUsize::new(0),
            live_at_take: AtomicUsize::new(0),
            frees_at_take: AtomicUsize::new(0),
            protected: std::sync::atomic::AtomicBool::new(false),
            releasing: std::sync::atomic::AtomicBool::new(false),
            unlisted: AtomicU32::new(0),
            qgen: AtomicU32::new(0),
            lent: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Address of the first page.
    #[inline(always)]
    pub fn base(&self) -> usize {
        self.base.load(Ordering::Relaxed)
    }

    /// Pages in the run.
    #[inline(always)]
    pub fn npages(&self) -> usize {
        self.npages.load(Ordering::Relaxed)
    }

    /// The next span on the list of all spans.
    #[inline]
    pub fn next_span(&self) -> Option<&'static Span> {
        // SAFETY: as `first_span`.
        unsafe { self.all_next.load(Ordering::Acquire).as_ref() }
    }

    /// Central lock, span retired and unpublished: makes the struct a fresh
    /// span of `npages` pages at `base` with `layout`, nothing allocated,
    /// owned by the caller (state CACHED), swept for the current
    /// generation. Only atomics change, so a racing lookup that still holds
    /// the struct stays in bounds (file comment).
    pub fn reuse_at(&self, base: usize, npages: usize, layout: &'static Layout) {
        debug_assert!(self.kind != SpanKind::Stack);
        for w in 0..self.g.len() {
            let tail = if w == self.nslots / 64 && self.nslots & 63 != 0 { !0u64 << (self.nslots % 64) } else { 0 };
            self.g[w].alloc.store(tail, Ordering::Relaxed);
            self.g[w].freed.store(0, Ordering::Relaxed);
            self.g[w].reused.store(0, Ordering::Relaxed);
            self.g[w].pinned.store(0, Ordering::Relaxed);
            self.g[w].mark.store(0, Ordering::Relaxed);
            self.g[w].dead.store(0, Ordering::Relaxed);
            self.g[w].quarantined.store(0, Ordering::Relaxed);
        }
        self.base.store(base, Ordering::Relaxed);
        self.npages.store(npages, Ordering::Relaxed);
        self.qgen.fetch_add(1, Ordering::Relaxed);
        self.large_count.store(0, Ordering::Relaxed);
        self.state.store(state::CACHED, Ordering::Relaxed);
        self.sweep_gen.store(crate::gc::sweep::current_gen(), Ordering::Relaxed);
        self.partial_idx.store(usize::MAX, Ordering::Relaxed);
        self.set_layout(layout);
    }

    /// Marks slot `i`; true if it was not marked before (this caller
    /// counts and scans it). A plain load first: most words that reach a
    /// marked object find it marked and skip the locked instruction.
    #[inline(always)]
    pub fn try_mark(&self, i: usize) -> bool {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        let m = &self.g[w].mark;
        m.load(Ordering::Relaxed) & bit == 0 && m.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// [`Span::try_mark`] for a marker that runs alone (no other thread
    /// writes mark bits meanwhile): a plain load and store, no locked
    /// instruction.
    #[inline(always)]
    pub fn try_mark_alone(&self, i: usize) -> bool {
        let (w, bit) = (i / 64, 1u64 << (i % 64));
        let m = &self.g[w].mark;
        let old = m.load(Ordering::Relaxed);
        if old & bit != 0 {
            return false;
        }
        m.store(old | bit, Ordering::Relaxed);
        true
    }

    /// Whether slot `i` is marked (between a mark and `prepare_sweep`).
    #[inline]
    pub fn is_marked(&self, i: usize) -> bool {
        self.g.get(i / 64).is_some_and(|g| g.mark.load(Ordering::Relaxed) & (1 << (i % 64)) != 0)
    }

    /// World stopped, marking done: records the dead slots (live, not
    /// marked, not pinned) and clears the mark bits. Returns whether any
    /// slot died. Stacks have no mark bits (never swept).
    pub fn prepare_sweep(&self) -> bool {
        let mut any = 0;
        for w in 0..self.g.len() {
            // Bits past the last slot are set in `alloc` and never marked:
            // masked off here.
            let valid = if w == self.nslots / 64 { !(!0u64 << (self.nslots % 64)) } else { !0 };
            let live = self.g[w].alloc.load(Ordering::Relaxed) & !self.g[w].freed.load(Ordering::Relaxed) & valid;
            let dead = live & !self.g[w].mark.load(Ordering::Relaxed) & !self.g[w].pinned.load(Ordering::Relaxed);
            self.g[w].dead.store(dead, Ordering::Relaxed);
            self.g[w].mark.store(0, Ordering::Relaxed);
            any |= dead;
        }
        any != 0
    }

    /// Words of the dead bitmap.
    pub fn dead_words(&self) -> usize {
        self.g.len()
    }

    /// The sweeper (who won the span's sweep CAS): takes the dead slots of
    /// word `w`.
    pub fn take_dead(&self, w: usize) -> u64 {
        self.g[w].dead.swap(0, Ordering::Relaxed)
    }

    /// Slots not free for allocation now: live objects, and quarantined
    /// slots (`CGOCHECK=2`).
    pub fn live_slots(&self) -> usize {
        self.nslots - self.free_slots()
    }

    /// Slots its owner took since it took the span from the central heap
    /// (`central.rs`, `note_take`): live now, less live then, plus what was
    /// freed meanwhile.
    pub fn taken_since_take(&self) -> usize {
        let freed_meanwhile =
            self.frees.load(Ordering::Relaxed).wrapping_sub(self.frees_at_take.load(Ordering::Relaxed));
        (self.live_slots() + freed_meanwhile).saturating_sub(self.live_at_take.load(Ordering::Relaxed))
    }

    /// Calls `f(slot)` for every pinned slot.
    pub fn for_each_pinned(&self, mut f: impl FnMut(usize)) {
        for (w, p) in self.g.iter().map(|g| &g.pinned).enumerate() {
            let mut bits = p.load(Ordering::Acquire);
            while bits != 0 {
                f(w * 64 + bits.trailing_zeros() as usize);
                bits &= bits - 1;
            }
        }
    }

    /// One past the last byte of the run.
    #[inline]
    pub fn end(&self) -> usize {
        self.base() + self.npages() * PAGE
    }

    /// The current layout of the slots (small and large spans; stacks have
    /// none).
    #[inline(always)]
    pub fn layout(&self) -> &'static Layout {
        debug_assert!(self.kind != SpanKind::Stack);
        // SAFETY: small and large spans are created with a leaked
        // `&'static Layout` and `set_layout` only stores others, never
        // freed; stacks (null) never reach here (every caller matches on
        // `kind` first). Acquire pairs with the Release store in
        // `set_layout`, so the layout's fields are visible.
        unsafe { &*self.layout.load(Ordering::Acquire) }
    }

    /// Points a reused large span at the layout of its new object; called
    /// before the object's alloc bit is set, so a reader that sees the bit
    /// sees this layout.
    pub fn set_layout(&self, layout: &'static Layout) {
        self.layout.store(layout as *const Layout as *mut Layout, Ordering::Release);
    }

    /// Whether slot `i` holds a live object: alloc bit set, freed bit
    /// clear. The freed word is read first: `claim_word` clears alloc bits
    /// before freed bits, so a reader that sees a freed bit already cleared
    /// (Acquire, pairing with the claim's Release) also sees the alloc bit
    /// cleared, and a freed slot never looks live. Acquire on the alloc
    /// word pairs with the Release of `take_slot` (the slot's count).
    #[inline(always)]
    pub fn is_allocated(&self, i: usize) -> bool {
        let (w, bit) = (i / 64, 1 << (i % 64));
        let freed = self.g[w].freed.load(Ordering::Acquire);
        self.g[w].alloc.load(Ordering::Acquire) & !freed & bit != 0
    }

    /// Whether slot `i`, not live, has ever held an object (freed) rather
    /// than never (see the file comment). Read after `is_allocated` said
    /// not live: a claim sets the reused bit (Release) before it clears the
    /// alloc bit, so a reader whose Acquire load saw that alloc bit cleared
    /// sees the reused bit.
    #[inline]
    pub fn was_allocated(&self, i: usize) -> bool {
        let (w, bit) = (i / 64, 1 << (i % 64));
        let alloc = self.g[w].alloc.load(Ordering::Acquire);
        let freed = self.g[w].freed.load(Ordering::Acquire);
        (alloc | freed | self.g[w].reused.load(Ordering::Acquire)) & bit != 0
    }

    /// Element count of slot `i`.
    #[inline]
    pub fn count(&self, layout: &Layout, i: usize) -> usize {
        if layout.count != 0 {
            layout.count
        } else if self.kind == SpanKind::Large {
            self.large_count.load(Ordering::Relaxed)
        } else {
            self.counts[i].load(Ordering::Relaxed) as usize
        }
    }

    /// Bytes of the object in a slot holding `count` elements: the class
    /// size for a small span; for a large span the object's size in whole
    /// words, capped at the span (see the file comment on racing lookups).
    #[inline]
    pub fn object_size(&self, layout: &Layout, count: usize) -> usize {
        if self.kind == SpanKind::Large {
            count.saturating_mul(layout.elem.size).min(self.npages() * PAGE).next_multiple_of(WORD)
        } else {
            self.slot_size
        }
    }

    /// Bytes of a large span's current object.
    #[inline]
    pub fn large_size(&self) -> usize {
        let layout = self.layout();
        self.object_size(layout, self.count(layout, 0))
    }

    /// Owner only: makes the freed slots of word `w` plain free slots and
    /// returns the word's free slots (set bits); None past the last word.
    /// Acquire on the freed word pairs with the Release of
    /// `clear_allocated`: a slot seen free is seen with the zeroing its free
    /// did.
    #[inline]
    pub fn claim_word(&self, w: usize) -> Option<u64> {
        let alloc = self.g.get(w)?.alloc.load(Ordering::Relaxed);
        let mut freed = self.g[w].freed.load(Ordering::Acquire);
        if freed != 0 {
            // Quarantined slots stay taken (file comment); Acquire pairs
            // with the Release that clears a bit after zeroing the slot.
            freed &= !self.g[w].quarantined.load(Ordering::Acquire);
        }
        if freed != 0 {
            // Reused bits, then alloc bits, then freed bits (see
            // `is_allocated`, `was_allocated`). Only this thread writes
            // `alloc` and `reused`; `free` may set other freed bits
            // meanwhile, which the AND leaves alone.
            self.g[w].reused.fetch_or(freed, Ordering::Release);
            self.g[w].alloc.store(alloc & !freed, Ordering::Release);
            self.g[w].freed.fetch_and(!freed, Ordering::Release);
        }
        Some(!(alloc & !freed))
    }

    /// Owner only: hands out slot `i`, which `claim_word` returned free,
    /// with `count` elements: one plain store, since only the owner writes
    /// `alloc` words.
    #[inline]
    pub fn take_slot(&self, i: usize, count: usize) {
        if self.kind == SpanKind::Large {
            self.large_count.store(count, Ordering::Relaxed);
        } else if !self.counts.is_empty() {
            // Fits: a small slot holds at most 32768 one-byte elements.
            self.counts[i].store(count as u16, Ordering::Relaxed);
        }
        let (w, bit) = (i / 64, 1 << (i % 64));
        let alloc = self.g[w].alloc.load(Ordering::Relaxed);
        debug_assert!(alloc & bit == 0, "slot {i} handed out twice");
        // Release: a reader that sees the slot live sees its count.
        self.g[w].alloc.store(alloc | bit, Ordering::Release);
    }

    /// Marks live slot `i` freed; returns false if it was not live (a
    /// double free, possibly concurrent). SeqCst (which includes Release:
    /// the owner that sees the slot free sees the zeroing done before) for
    /// the protocol with `give_back` (central.rs).
    pub fn clear_allocated(&self, i: usize) -> bool {
        FREES.fetch_add(1, Ordering::SeqCst);
        let (w, bit) = (i / 64, 1 << (i % 64));
        self.g[w].alloc.load(Ordering::Acquire) & bit != 0 && self.g[w].freed.fetch_or(bit, Ordering::SeqCst) & bit == 0
    }

    /// The sweeper: marks the live slots `bits` of word `w` freed (already
    /// zeroed), one SeqCst OR for all (as `clear_allocated`).
    /// Returns how many were not freed already (see `clear_dead`).
    pub fn free_slots_in_word(&self, w: usize, bits: u64) -> usize {
        FREES.fetch_add(1, Ordering::SeqCst);
        let before = self.g[w].freed.fetch_or(bits, Ordering::SeqCst);
        let n = (bits & !before).count_ones() as usize;
        self.frees.fetch_add(n, Ordering::Relaxed);
        n
    }

    /// `Heap::free` of slot `i`: the sweep must not free it again (nor,
    /// once it is reused, its next object). A free that comes after the
    /// sweeper took the slot's dead bit frees an object the collector found
    /// unreachable: the program broke `free`'s contract, and one of the two
    /// frees reports it.
    pub fn clear_dead(&self, i: usize) {
        if let Some(d) = self.g.get(i / 64).map(|g| &g.dead) {
            d.fetch_and(!(1 << (i % 64)), Ordering::SeqCst);
        }
    }

    /// Free slots right now (SeqCst loads: see `Central::give_back`).
    pub fn free_slots(&self) -> usize {
        self.g
            .iter()
            .map(|g| {
                let freed = g.freed.load(Ordering::SeqCst) & !g.quarantined.load(Ordering::SeqCst);
                (!g.alloc.load(Ordering::SeqCst) | freed).count_ones() as usize
            })
            .sum()
    }

    /// Slots holding a live object (alloc bit set, freed bit clear).
    pub fn live_objects(&self) -> usize {
        let mut n = 0;
        for w in 0..self.g.len() {
            let valid = if w == self.nslots / 64 { !(!0u64 << (self.nslots % 64)) } else { !0 };
            n += (self.g[w].alloc.load(Ordering::SeqCst) & !self.g[w].freed.load(Ordering::SeqCst) & valid).count_ones()
                as usize;
        }
        n
    }

    /// Whether slot `i` is in the quarantine.
    #[inline]
    pub fn is_quarantined(&self, i: usize) -> bool {
        self.g.get(i / 64).is_some_and(|g| g.quarantined.load(Ordering::Acquire) & (1 << (i % 64)) != 0)
    }

    /// The quarantined slots of word `w`.
    pub fn quarantined_in_word(&self, w: usize) -> u64 {
        self.g[w].quarantined.load(Ordering::Acquire)
    }

    /// The quarantine takes the dead slots `bits` of word `w`: quarantined,
    /// then freed (file comment). Returns the slots it took: a racing
    /// `Heap::free` (a program breaking `free`'s contract on an object the
    /// collector found dead) may have freed one first; that one is left
    /// freed and not quarantined.
    pub fn quarantine_slots_in_word(&self, w: usize, bits: u64) -> u64 {
        FREES.fetch_add(1, Ordering::SeqCst);
        let live = bits & !self.g[w].freed.load(Ordering::SeqCst);
        self.g[w].quarantined.fetch_or(live, Ordering::SeqCst);
        let before = self.g[w].freed.fetch_or(live, Ordering::SeqCst);
        if live & before != 0 {
            self.g[w].quarantined.fetch_and(!(live & before), Ordering::SeqCst);
        }
        live & !before
    }

    /// The quarantine lets the slots `bits` of word `w` go (already
    /// zeroed): they become free slots, counted in `frees`.
    pub fn release_slots_in_word(&self, w: usize, bits: u64) {
        let before = self.g[w].quarantined.fetch_and(!bits, Ordering::SeqCst);
        self.frees.fetch_add((before & bits).count_ones() as usize, Ordering::Relaxed);
    }

    /// The lend record of slot `i`, made (zeroed, for every slot) on first
    /// use; None for a slot past the last.
    pub fn lent_record(&self, i: usize) -> Option<&LentRecord> {
        if i >= self.nslots {
            return None;
        }
        let mut table = self.lent.load(Ordering::Acquire);
        if table.is_null() {
            let fresh: Box<[LentRecord]> = (0..self.nslots).map(|_| LentRecord::default()).collect();
            let fresh = Box::leak(fresh).as_mut_ptr();
            match self.lent.compare_exchange(ptr::null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => table = fresh,
                Err(won) => {
                    // SAFETY: `fresh` came from `Box::leak` of `nslots`
                    // records just above and was never published.
                    drop(unsafe { Box::from_raw(ptr::slice_from_raw_parts_mut(fresh, self.nslots)) });
                    table = won;
                }
            }
        }
        // SAFETY: a published table has `nslots` records and is never
        // freed; `i < nslots`.
        Some(unsafe { &*table.add(i) })
    }

    /// The lend record of slot `i` if one was ever made (no allocation:
    /// the crash handler reads it).
    pub fn lent_record_if_any(&self, i: usize) -> Option<&LentRecord> {
        let table = self.lent.load(Ordering::Acquire);
        // SAFETY: as `lent_record`.
        (i < self.nslots && !table.is_null()).then(|| unsafe { &*table.add(i) })
    }

    /// Whether the owner gave this span back with every slot allocated
    /// (SeqCst: see `Central::give_back`).
    pub fn is_full(&self) -> bool {
        self.state.load(Ordering::SeqCst) == state::FULL
    }

    /// Whether slot `i` is pinned.
    #[inline]
    pub fn is_pinned(&self, i: usize) -> bool {
        self.g[i / 64].pinned.load(Ordering::Acquire) & (1 << (i % 64)) != 0
    }

    /// Sets or clears the pin bit of slot `i` (the pinner does this under its
    /// lock, which orders it with the count it mirrors).
    pub fn set_pinned(&self, i: usize, on: bool) {
        PIN_CHANGES.fetch_add(1, Ordering::Relaxed);
        let bit = 1 << (i % 64);
        if on {
            self.g[i / 64].pinned.fetch_or(bit, Ordering::Release);
        } else {
            self.g[i / 64].pinned.fetch_and(!bit, Ordering::Release);
        }
    }

    /// Slot index of `addr` in a small span (may be `>= nslots`: the tail).
    #[inline(always)]
    pub fn slot_of(&self, addr: usize) -> usize {
        // Wrapping: a lookup racing with the reuse of a retired span may
        // see a base above `addr` (file comment); its slot is then garbage
        // but checked against `nslots` by every caller.
        ((addr.wrapping_sub(self.base()) as u64).wrapping_mul(self.div_magic) >> 32) as usize
    }
}

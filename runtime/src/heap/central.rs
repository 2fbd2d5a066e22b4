//! The central heap: everything behind the heap lock (the slow path).
//!
//! Threads allocate small objects from spans in their own cache
//! (`cache.rs`) without locking. They come here, under one mutex, when they
//! need a span, when they give one back, for every large object, for stacks,
//! and when a free makes a full span usable again:
//!
//! - `layouts` interns the [`Layout`]s of small spans by (element type,
//!   slot size, count mode); `large_layouts` holds the one layout of large
//!   objects per element type, replaced by one with at least twice the
//!   repetitions when a longer array comes (see span.rs for the bound).
//! - `partial` lists, per layout, the spans that have free slots and no
//!   owner. A span leaves the list when a thread cache takes it and comes
//!   back when the cache gives it back with free slots, or when a `free` hits
//!   a span its owner gave back full.
//! - pages: two bump pointers, one up through the object range (arena.rs),
//!   committing 64 MiB at a time, one down through the stack range,
//!   committing 1 GiB at a time; plus free lists of large-object runs and of stack runs by page count. A freed
//!   run keeps its `Span` (spans are never freed, see span.rs) and is
//!   reused for a request of at most its size and at least half of it; the
//!   pages past the new object answer `SpanTail`. Splitting and merging free
//!   runs comes with the collector's sweeper.
//! - a stack run is whole stack granules (256 KiB, arena.rs): the usable
//!   stack at its top, and below it, from the run's start, the guard (at
//!   least one page, the rounding slack with it). Its span starts at the
//!   guard's last page, so its first page is the guard page and the rest is
//!   the stack (as region() reads it); the stack table (not the page table)
//!   maps the run to it. The run is guarded once, when first made; a freed
//!   stack keeps its guard for the next one.
//! - alignment above the 8 KiB page (a `#[repr(align(N))]` type, up to
//!   Rust's 2^29): the range is aligned to 2^29 (arena.rs), so a run is
//!   aligned when its page index is. A fresh run moves the bump pointer up
//!   to the next aligned page index, leaving the pages skipped unused
//!   (address space only, never touched: less than the alignment per such
//!   object); a freed run is reused only if its base is aligned.
//! - Running out of pages changes nothing and answers `None`: the caller
//!   panics naming its request.
//!
//! Small spans are never returned to the page allocator yet: a span whose
//! slots are all free stays on its partial list for its layout.

use super::arena::{Arena, STACK_GRANULE};
use super::sizeclass::{Class, PAGE, PAGE_SHIFT};
use super::span::{state, Layout, Span, SpanKind};
use cgocheck_checker::Type;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;

/// Pages committed at a time as objects fill their range (64 MiB).
const COMMIT_PAGES: usize = 8192;
/// Pages committed at a time as stacks fill theirs (1 GiB: 63 default
/// stacks). Committing is address space only (`MAP_NORESERVE`); large
/// chunks keep the stack range few mappings.
const STACK_COMMIT_PAGES: usize = (1 << 30) / PAGE;
/// Pages in a stack granule.
const GRANULE_PAGES: usize = STACK_GRANULE / PAGE;

/// Key of an interned layout: (element type address, slot size, count or 0).
type LayoutKey = (usize, usize, usize);

/// State behind the heap lock.
pub(crate) struct Central {
    layouts: BTreeMap<LayoutKey, &'static Layout>,
    /// The layout of large objects, by element type address.
    large_layouts: BTreeMap<usize, &'static Layout>,
    /// Spans with free slots and no owner, by layout address.
    partial: BTreeMap<usize, Vec<&'static Span>>,
    /// Freed large-object runs, by page count.
    free_large: BTreeMap<usize, Vec<&'static Span>>,
    /// Freed stack runs, by page count.
    free_stacks: BTreeMap<usize, Vec<&'static Span>>,
    /// Next never-used page index of the object range (page 0 is the
    /// zero-sized address).
    next_page: usize,
    /// Pages below this index are committed.
    committed: usize,
    /// Pages of the stack range, from its top, used by stacks (whole
    /// granules).
    stack_used: usize,
    /// Pages of the stack range, from its top, committed.
    stack_committed: usize,
}

impl Central {
    pub const fn new() -> Central {
        Central {
            layouts: BTreeMap::new(),
            large_layouts: BTreeMap::new(),
            partial: BTreeMap::new(),
            free_large: BTreeMap::new(),
            free_stacks: BTreeMap::new(),
            next_page: 1,
            committed: 1,
            stack_used: 0,
            stack_committed: 0,
        }
    }

    /// The interned layout for slots of `slot_size` bytes holding `count`
    /// elements of `elem` (0: per-slot counts).
    pub fn layout(&mut self, arena: &Arena, elem: &'static Type, slot_size: usize, count: usize) -> &'static Layout {
        self.layouts
            .entry((elem as *const Type as usize, slot_size, count))
            .or_insert_with(|| Box::leak(Box::new(Layout::new(elem, slot_size, count, arena.zero))))
    }

    /// The layout of large objects of `elem` holding `count` elements: the
    /// current one if it holds that many, else a new one with at least
    /// twice the repetitions (capped at what fits in the heap). The one it
    /// replaces stays valid for the objects that use it.
    fn large_layout(&mut self, arena: &Arena, elem: &'static Type, count: usize) -> &'static Layout {
        let key = elem as *const Type as usize;
        let old = self.large_layouts.get(&key).copied();
        if let Some(l) = old.filter(|l| l.holds(count)) {
            return l;
        }
        let most = arena.len / elem.size.max(1);
        let reps = count.max(old.map_or(0, |l| l.reps().saturating_mul(2).min(most)));
        let layout: &'static Layout = Box::leak(Box::new(Layout::large(elem, reps, arena.zero)));
        self.large_layouts.insert(key, layout);
        layout
    }

    /// Bytes of the object range handed out so far (the bump pointer).
    pub fn in_use(&self) -> usize {
        self.next_page * PAGE
    }

    /// Bytes of the stack range handed out so far.
    pub fn stacks_in_use(&self) -> usize {
        self.stack_used * PAGE
    }

    /// `npages` fresh committed pages whose address is a multiple of
    /// `align` (a power of two); returns their address, or None, changing
    /// nothing, when the range has no room left.
    fn fresh_pages(&mut self, arena: &Arena, npages: usize, align: usize) -> Option<usize> {
        let total = arena.len >> PAGE_SHIFT;
        // The range's base is aligned to any alignment (arena.rs): aligning
        // the page index aligns the address.
        let first = self.next_page.next_multiple_of((align / PAGE).max(1));
        if first > total || npages > total - first {
            return None;
        }
        self.next_page = first + npages;
        if self.next_page > self.committed {
            let upto = self.next_page.next_multiple_of(COMMIT_PAGES).min(total);
            arena.commit(arena.base + self.committed * PAGE, (upto - self.committed) * PAGE);
            self.committed = upto;
        }
        Some(arena.base + first * PAGE)
    }

    /// A fresh committed run of `run_pages` pages (whole granules) from the
    /// top of the stack range down; returns its address, or None, changing
    /// nothing, when the stack range has no room left.
    fn fresh_stack_run(&mut self, arena: &Arena, run_pages: usize) -> Option<usize> {
        debug_assert_eq!(run_pages % GRANULE_PAGES, 0);
        let total = (arena.reserved - arena.len) >> PAGE_SHIFT;
        if run_pages > total - self.stack_used {
            return None;
        }
        self.stack_used += run_pages;
        let top = arena.base + arena.reserved;
        if self.stack_used > self.stack_committed {
            let upto = self.stack_used.next_multiple_of(STACK_COMMIT_PAGES).min(total);
            arena.commit_stacks(top - upto * PAGE, (upto - self.stack_committed) * PAGE);
            self.stack_committed = upto;
        }
        Some(top - self.stack_used * PAGE)
    }

    /// A span of class `class` for `layout` with a free slot, owned by the
    /// caller (state CACHED) from now on.
    pub fn take_small(
        &mut self,
        arena: &Arena,
        class_idx: usize,
        class: &Class,
        layout: &'static Layout,
    ) -> &'static Span {
        let key = layout as *const Layout as usize;
        if let Some(span) = self.partial.get_mut(&key).and_then(Vec::pop) {
            span.state.store(state::CACHED, SeqCst);
            return span;
        }
        let Some(base) = self.fresh_pages(arena, class.npages, PAGE) else {
            panic!(
                "cgocheck: managed heap exhausted: a span of {} bytes for objects of {} does not fit, {} of {} bytes in use",
                class.npages * PAGE,
                layout.elem,
                self.in_use(),
                arena.len
            );
        };
        let span: &'static Span = Box::leak(Box::new(Span::small(base, class_idx, class, layout, layout.count == 0)));
        arena.publish(span);
        span
    }

    /// Takes back a span from a thread cache: partial if a slot is free,
    /// full otherwise.
    ///
    /// The race with a concurrent `free` of one of its slots (which takes
    /// the lock only when it sees the span FULL, see `Heap::free`) is the
    /// store-buffering shape, closed with SeqCst: here "store FULL, then
    /// read the alloc bits", there "clear the bit, then read the state",
    /// all SeqCst. In the single total order one of the two reads sees the
    /// other's store: either this count sees the freed slot (partial), or
    /// the freer sees FULL and, under the lock, makes the span partial.
    /// Both may happen; the state test under the lock lists it once.
    pub fn give_back(&mut self, span: &'static Span) {
        span.state.store(state::FULL, SeqCst);
        if span.free_slots() > 0 {
            span.state.store(state::PARTIAL, SeqCst);
            self.partial.entry(span.layout() as *const Layout as usize).or_default().push(span);
        }
    }

    /// A slot of `span` was freed and the freer saw the span FULL: make it
    /// partial again unless `give_back` already did.
    pub fn freed_small(&mut self, span: &'static Span) {
        if span.state.load(SeqCst) == state::FULL {
            span.state.store(state::PARTIAL, SeqCst);
            self.partial.entry(span.layout() as *const Layout as usize).or_default().push(span);
        }
    }

    /// A freed run of at least `npages` pages from `list`, if one is at most
    /// twice that size and its base is a multiple of `align`.
    fn reuse(list: &mut BTreeMap<usize, Vec<&'static Span>>, npages: usize, align: usize) -> Option<&'static Span> {
        let (n, i) = list
            .range(npages..=npages.saturating_mul(2))
            .find_map(|(&n, runs)| Some((n, runs.iter().rposition(|s| s.base & (align - 1) == 0)?)))?;
        let runs = list.get_mut(&n).expect("the run just found");
        let span = runs.swap_remove(i);
        if runs.is_empty() {
            list.remove(&n);
        }
        Some(span)
    }

    /// A span for a large object of `count` elements of `elem` in `npages`
    /// pages at an address aligned to `align`, with its layout set, its
    /// pages zero and its slot claimed (the heap lock makes the caller the
    /// owner); the caller takes the slot. None, changing nothing, when no
    /// freed run fits and the range has no room left. Pages come before the
    /// layout, so a request that cannot fit builds no bitmap.
    pub fn take_large(
        &mut self,
        arena: &Arena,
        elem: &'static Type,
        count: usize,
        npages: usize,
        align: usize,
    ) -> Option<&'static Span> {
        if let Some(span) = Central::reuse(&mut self.free_large, npages, align) {
            span.set_layout(self.large_layout(arena, elem, count));
            span.claim_word(0);
            return Some(span);
        }
        let base = self.fresh_pages(arena, npages, align)?;
        let layout = self.large_layout(arena, elem, count);
        let span: &'static Span = Box::leak(Box::new(Span::large(base, npages, layout)));
        arena.publish(span);
        Some(span)
    }

    /// Files a freed large span (already discarded) for reuse.
    pub fn freed_large(&mut self, span: &'static Span) {
        debug_assert_eq!(span.kind, SpanKind::Large);
        self.free_large.entry(span.npages).or_default().push(span);
    }

    /// A stack span of `npages` pages (guard page first, guarded with the
    /// run's slack below it), its slot claimed; the caller takes it. None,
    /// changing nothing, when the range has no room left.
    pub fn take_stack(&mut self, arena: &Arena, npages: usize) -> Option<&'static Span> {
        if let Some(span) = Central::reuse(&mut self.free_stacks, npages, PAGE) {
            span.claim_word(0);
            return Some(span);
        }
        let run_pages = npages.next_multiple_of(GRANULE_PAGES);
        let run = self.fresh_stack_run(arena, run_pages)?;
        let base = run + (run_pages - npages) * PAGE;
        arena.guard(run, base + PAGE - run);
        let span: &'static Span = Box::leak(Box::new(Span::stack(base, npages)));
        arena.publish_stack(span);
        Some(span)
    }

    /// Files a freed stack span (already discarded) for reuse.
    pub fn freed_stack(&mut self, span: &'static Span) {
        self.free_stacks.entry(span.npages).or_default().push(span);
    }
}

//! The central heap: everything behind the heap lock (the slow path).
//!
//! Threads allocate small objects from spans in their own cache
//! (`cache.rs`) without locking. They come here, under one mutex, when they
//! need a span, when they give one back, for every large object, for stacks,
//! and when a free makes a full span usable again:
//!
//! - `layouts` interns [`Layout`]s by (element type, slot size, count mode).
//! - `partial` lists, per layout, the spans that have free slots and no
//!   owner. A span leaves the list when a thread cache takes it and comes
//!   back when the cache gives it back with free slots, or when a `free` hits
//!   a span its owner gave back full.
//! - pages: a bump pointer through the reserved range, committing 64 MiB at
//!   a time, plus free lists of large-object runs and of stack runs by page
//!   count. A freed run keeps its `Span` (spans are never freed, see
//!   span.rs) and is reused for a request of at most its size and at least
//!   half of it; the pages past the new object answer `SpanTail`. Splitting
//!   and merging free runs comes with the collector's sweeper.
//!
//! Small spans are never returned to the page allocator yet: a span whose
//! slots are all free stays on its partial list for its layout.

use super::arena::Arena;
use super::sizeclass::{Class, PAGE, PAGE_SHIFT};
use super::span::{state, Layout, Span, SpanKind};
use cgocheck_checker::Type;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::SeqCst;

/// Pages committed at a time as the heap grows (64 MiB).
const COMMIT_PAGES: usize = 8192;

/// Key of an interned layout: (element type address, slot size, count or 0).
type LayoutKey = (usize, usize, usize);

/// State behind the heap lock.
pub(crate) struct Central {
    layouts: BTreeMap<LayoutKey, &'static Layout>,
    /// Spans with free slots and no owner, by layout address.
    partial: BTreeMap<usize, Vec<&'static Span>>,
    /// Freed large-object runs, by page count.
    free_large: BTreeMap<usize, Vec<&'static Span>>,
    /// Freed stack runs, by page count.
    free_stacks: BTreeMap<usize, Vec<&'static Span>>,
    /// Next never-used page index (page 0 is the zero-sized address).
    next_page: usize,
    /// Pages below this index are committed.
    committed: usize,
}

impl Central {
    pub const fn new() -> Central {
        Central {
            layouts: BTreeMap::new(),
            partial: BTreeMap::new(),
            free_large: BTreeMap::new(),
            free_stacks: BTreeMap::new(),
            next_page: 1,
            committed: 1,
        }
    }

    /// The interned layout for slots of `slot_size` bytes holding `count`
    /// elements of `elem` (0: per-slot counts).
    pub fn layout(&mut self, arena: &Arena, elem: &'static Type, slot_size: usize, count: usize) -> &'static Layout {
        self.layouts
            .entry((elem as *const Type as usize, slot_size, count))
            .or_insert_with(|| Box::leak(Box::new(Layout::new(elem, slot_size, count, arena.zero))))
    }

    /// `npages` fresh committed pages; returns their address.
    fn fresh_pages(&mut self, arena: &Arena, npages: usize) -> usize {
        let total = arena.len >> PAGE_SHIFT;
        let first = self.next_page;
        if npages > total - first {
            panic!(
                "cgocheck: managed heap exhausted: {} more bytes requested, {} of {} bytes in use",
                npages * PAGE,
                first * PAGE,
                arena.len
            );
        }
        self.next_page += npages;
        if self.next_page > self.committed {
            let upto = self.next_page.next_multiple_of(COMMIT_PAGES).min(total);
            arena.commit(arena.base + self.committed * PAGE, (upto - self.committed) * PAGE);
            self.committed = upto;
        }
        arena.base + first * PAGE
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
        let base = self.fresh_pages(arena, class.npages);
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
    /// twice that size.
    fn reuse(list: &mut BTreeMap<usize, Vec<&'static Span>>, npages: usize) -> Option<&'static Span> {
        let (&n, runs) = list.range_mut(npages..=npages.saturating_mul(2)).next()?;
        let span = runs.pop();
        if runs.is_empty() {
            list.remove(&n);
        }
        span
    }

    /// A span for a large object of `layout.slot_size` bytes, with its
    /// layout set, its pages zero and its slot claimed (the heap lock makes
    /// the caller the owner); the caller takes the slot.
    pub fn take_large(&mut self, arena: &Arena, layout: &'static Layout) -> &'static Span {
        let npages = layout.slot_size.div_ceil(PAGE);
        if let Some(span) = Central::reuse(&mut self.free_large, npages) {
            span.set_layout(layout);
            span.claim_word(0);
            return span;
        }
        let base = self.fresh_pages(arena, npages);
        let span: &'static Span = Box::leak(Box::new(Span::large(base, npages, layout)));
        arena.publish(span);
        span
    }

    /// Files a freed large span (already discarded) for reuse.
    pub fn freed_large(&mut self, span: &'static Span) {
        debug_assert_eq!(span.kind, SpanKind::Large);
        self.free_large.entry(span.npages).or_default().push(span);
    }

    /// A stack span of `npages` pages (guard page first, protected), its
    /// slot claimed; the caller takes it.
    pub fn take_stack(&mut self, arena: &Arena, npages: usize) -> &'static Span {
        if let Some(span) = Central::reuse(&mut self.free_stacks, npages) {
            span.claim_word(0);
            return span;
        }
        let base = self.fresh_pages(arena, npages);
        arena.guard(base);
        let span: &'static Span = Box::leak(Box::new(Span::stack(base, npages)));
        arena.publish(span);
        span
    }

    /// Files a freed stack span (already discarded) for reuse.
    pub fn freed_stack(&mut self, span: &'static Span) {
        self.free_stacks.entry(span.npages).or_default().push(span);
    }
}

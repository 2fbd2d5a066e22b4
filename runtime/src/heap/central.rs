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
//!   owner. A span leaves the list when a thread cache takes it (or when it
//!   is retired: each span knows its index) and comes back when the cache
//!   gives it back with free slots, or when a free (the sweeper's or
//!   `Heap::free`) hits a span its owner gave back full.
//! - pages: free page runs first (runs.rs: shared by small spans and large
//!   objects, best fit, split and merged), then two bump pointers, one up
//!   through the object range (arena.rs), committing 64 MiB at a time, one
//!   down through the stack range, committing 1 GiB at a time; plus a free
//!   list of stack runs by page count (a freed stack keeps its span and is
//!   reused for a request of at most its size and at least half of it).
//! - a small span whose slots are all free and that no cache holds (found
//!   by the sweeper, or given back so by a cache) is retired: its pages
//!   become a free run (not released yet; the scavenger releases it if it
//!   stays free). Like a freed large object's run, the run keeps its span
//!   published, so that dangling pointers still answer `Freed`, until the
//!   run is taken (by a span of any class or a large object) or
//!   scavenged; then the span is unpublished and its struct goes to a
//!   pool for its shape (span.rs says why that bounds them).
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
//!   object); a free run serves it from its first aligned page, the pages
//!   before and after staying free.
//! - Running out of pages changes nothing and answers `None`: the caller
//!   asks for a collection and tries again, then reports the request.
//!
//! Every change to the page figures is mirrored in `counters.rs`.

use super::arena::{Arena, STACK_GRANULE};
use super::counters;
use super::runs::{now_ms, Run, Runs};
use super::sizeclass::{Class, PAGE, PAGE_SHIFT};
use super::span::{self, state, Layout, Span, SpanKind};
use cgocheck_checker::Type;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};

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
    /// Free page runs of the object range.
    runs: Runs,
    /// Retired small span structs by (class, per-slot counts).
    small_pool: BTreeMap<(u8, bool), Vec<&'static Span>>,
    /// Retired large span structs.
    large_pool: Vec<&'static Span>,
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
            runs: Runs::new(),
            small_pool: BTreeMap::new(),
            large_pool: Vec::new(),
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

    /// Bytes of the stack range handed out so far.
    pub fn stacks_in_use(&self) -> usize {
        self.stack_used * PAGE
    }

    /// Mirrors the page figures in `counters.rs`.
    fn sync_counters(&self) {
        counters::set_pages((self.next_page - 1) * PAGE, self.runs.idle_pages * PAGE, self.runs.released_pages * PAGE);
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

    /// `npages` zeroed pages at an address that is a multiple of `align`:
    /// from the free runs if one fits (retiring the freed large object's
    /// span that still owned it), else fresh. None, changing nothing, when
    /// neither has room.
    fn pages(&mut self, arena: &Arena, npages: usize, align: usize) -> Option<usize> {
        let base = match self.runs.take(npages, (align / PAGE).max(1)) {
            Some(t) => {
                if let Some(owner) = t.owner {
                    self.retire_owner(arena, owner);
                }
                arena.base + t.page * PAGE
            }
            None => self.fresh_pages(arena, npages, align)?,
        };
        self.sync_counters();
        Some(base)
    }

    /// The span that still owned a free run (a freed large object's, or
    /// a small span found all free), whose run was taken or scavenged:
    /// unpublished, to the pool for its shape.
    fn retire_owner(&mut self, arena: &Arena, span: &'static Span) {
        arena.unpublish(span.base(), span.npages());
        match span.kind {
            SpanKind::Small { class } => {
                self.small_pool.entry((class, span.layout().count == 0)).or_default().push(span)
            }
            _ => self.large_pool.push(span),
        }
    }

    /// A small span all free and not cached: off its partial list, its
    /// pages a free run it still owns (so a dangling pointer into it
    /// answers `Freed` until the pages are reused).
    fn retire_small(&mut self, arena: &Arena, span: &'static Span) {
        self.partial_remove(span);
        span.state.store(state::RETIRED, SeqCst);
        let page = (span.base() - arena.base) >> PAGE_SHIFT;
        let run = Run {
            pages: span.npages(),
            released: false,
            cycle: crate::gc::sweep::current_gen(),
            at_ms: now_ms(),
            owner: Some(span),
        };
        self.runs.insert(page, run);
        self.sync_counters();
    }

    /// Whether `span` may be retired now: nothing live in it and swept for
    /// this cycle (no dead slots pending).
    fn retirable(span: &Span) -> bool {
        span.live_slots() == 0 && span.sweep_gen.load(SeqCst) == crate::gc::sweep::current_gen()
    }

    fn partial_push(&mut self, span: &'static Span) {
        let list = self.partial.entry(span.layout() as *const Layout as usize).or_default();
        span.partial_idx.store(list.len(), Relaxed);
        list.push(span);
    }

    fn partial_remove(&mut self, span: &'static Span) {
        let i = span.partial_idx.swap(usize::MAX, Relaxed);
        if i == usize::MAX {
            return;
        }
        let list = self.partial.get_mut(&(span.layout() as *const Layout as usize)).expect("a listed span's list");
        list.swap_remove(i);
        if let Some(moved) = list.get(i) {
            moved.partial_idx.store(i, Relaxed);
        }
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

    /// A span for `layout` from its partial list, owned by the caller
    /// (state CACHED) from now on.
    pub fn take_partial(&mut self, layout: &'static Layout) -> Option<&'static Span> {
        let span = self.partial.get_mut(&(layout as *const Layout as usize)).and_then(Vec::pop)?;
        span.partial_idx.store(usize::MAX, Relaxed);
        span.state.store(state::CACHED, SeqCst);
        Some(Central::note_take(span))
    }

    /// Records where the owner starts (the allocation count at give-back).
    fn note_take(span: &'static Span) -> &'static Span {
        span.frees_at_take.store(span.frees.load(Relaxed), Relaxed);
        span.live_at_take.store(span.live_slots(), Relaxed);
        span
    }

    /// A span of class `class` for `layout` with a free slot, owned by the
    /// caller (state CACHED) from now on: a partial one, else a new one on
    /// pages from the free runs or fresh. None, changing nothing, when the
    /// range has no room left.
    pub fn take_small(
        &mut self,
        arena: &Arena,
        class_idx: usize,
        class: &Class,
        layout: &'static Layout,
    ) -> Option<&'static Span> {
        if let Some(span) = self.take_partial(layout) {
            return Some(span);
        }
        let base = self.pages(arena, class.npages, PAGE)?;
        let pooled = self.small_pool.get_mut(&(class_idx as u8, layout.count == 0)).and_then(Vec::pop);
        let span = match pooled {
            Some(span) => {
                span.reuse_at(base, class.npages, layout);
                span
            }
            None => {
                let span: &'static Span =
                    Box::leak(Box::new(Span::small(base, class_idx, class, layout, layout.count == 0)));
                span::register(span);
                span
            }
        };
        arena.publish(span);
        Some(Central::note_take(span))
    }

    /// Takes back a span from a thread cache: counts what its owner
    /// allocated from it; then retired if all free, partial if a slot is
    /// free, full otherwise.
    ///
    /// The race with a concurrent free of one of its slots (which takes
    /// the lock only when it sees the span FULL, see `Heap::free`) is the
    /// store-buffering shape, closed with SeqCst: here "store FULL, then
    /// read the alloc bits", there "set the freed bit, then read the
    /// state", all SeqCst. In the single total order one of the two reads
    /// sees the other's store: either this count sees the freed slot
    /// (partial), or the freer sees FULL and, under the lock, makes the
    /// span partial. Both may happen; the state test under the lock lists
    /// it once.
    pub fn give_back(&mut self, arena: &Arena, span: &'static Span) {
        span.state.store(state::FULL, SeqCst);
        let live = span.live_slots();
        let taken = span.taken_since_take();
        counters::allocated(taken, taken * span.slot_size);
        if live < span.nslots {
            span.state.store(state::PARTIAL, SeqCst);
            if Central::retirable(span) {
                self.retire_small(arena, span);
            } else {
                self.partial_push(span);
            }
        }
        // `CGOCHECK=2`: a span left with quarantined slots and nothing
        // live can be held now that no cache owns it.
        if crate::gc::quarantine::active() {
            crate::gc::quarantine::try_hold(self, span);
        }
    }

    /// The quarantine holds `span` (`gc/quarantine.rs`; PARTIAL or FULL,
    /// nothing live): off its partial list, nobody allocates from it.
    pub fn hold(&mut self, span: &'static Span) {
        self.partial_remove(span);
        span.state.store(state::HELD, SeqCst);
    }

    /// The quarantine lets a held span go (its slots zeroed and free):
    /// partial again, or retired when nothing in it is live.
    pub fn unhold(&mut self, arena: &Arena, span: &'static Span) {
        debug_assert_eq!(span.state.load(SeqCst), state::HELD);
        // The batches of its slots are all released with it: stale now.
        span.qgen.fetch_add(1, SeqCst);
        span.state.store(state::PARTIAL, SeqCst);
        if Central::retirable(span) {
            self.retire_small(arena, span);
        } else {
            self.partial_push(span);
        }
    }

    /// Slots of `span` were freed (by the sweeper or `Heap::free`): a span
    /// its owner gave back full becomes partial again unless `give_back`
    /// already did; one all free that no cache holds is retired.
    pub fn freed_small(&mut self, arena: &Arena, span: &'static Span) {
        // The slots freed may have been taken again meanwhile: the span was
        // cached when they were freed, its owner claimed them, and gave the
        // span back full. Then it stays full.
        if span.state.load(SeqCst) == state::FULL && span.free_slots() > 0 {
            span.state.store(state::PARTIAL, SeqCst);
            self.partial_push(span);
        }
        if span.state.load(SeqCst) == state::PARTIAL && Central::retirable(span) {
            self.retire_small(arena, span);
        }
    }

    /// A span for a large object of `count` elements of `elem` in `npages`
    /// pages at an address aligned to `align`, with its layout set and its
    /// pages zero (the heap lock makes the caller the owner); the caller
    /// takes the slot. None, changing nothing, when no free run fits and
    /// the range has no room left. Pages come before the layout, so a
    /// request that cannot fit builds no bitmap.
    pub fn take_large(
        &mut self,
        arena: &Arena,
        elem: &'static Type,
        count: usize,
        npages: usize,
        align: usize,
    ) -> Option<&'static Span> {
        let base = self.pages(arena, npages, align)?;
        let layout = self.large_layout(arena, elem, count);
        let span = match self.large_pool.pop() {
            Some(span) => {
                span.reuse_at(base, npages, layout);
                span
            }
            None => {
                let span: &'static Span = Box::leak(Box::new(Span::large(base, npages, layout)));
                span::register(span);
                span
            }
        };
        arena.publish(span);
        Some(span)
    }

    /// Files a freed large span (already discarded) as a free run it still
    /// owns: a pointer into it answers `Freed` until the run is reused.
    pub fn freed_large(&mut self, arena: &Arena, span: &'static Span) {
        debug_assert_eq!(span.kind, SpanKind::Large);
        let page = (span.base() - arena.base) >> PAGE_SHIFT;
        let run = Run {
            pages: span.npages(),
            released: true,
            cycle: crate::gc::sweep::current_gen(),
            at_ms: now_ms(),
            owner: Some(span),
        };
        self.runs.insert(page, run);
        self.sync_counters();
    }

    /// The scavenger's first step: removes the runs to release now
    /// (runs.rs), retiring the spans that still own some; returns their
    /// addresses and page counts. The caller releases them without the
    /// lock, then calls [`Central::scavenged`].
    pub fn take_scavengeable(&mut self, arena: &Arena) -> Vec<(usize, usize, bool)> {
        let old = self.runs.take_old(crate::gc::sweep::current_gen(), now_ms());
        let out = old
            .into_iter()
            .map(|(page, run)| {
                if let Some(owner) = run.owner {
                    self.retire_owner(arena, owner);
                }
                (arena.base + page * PAGE, run.pages, run.released)
            })
            .collect();
        self.sync_counters();
        out
    }

    /// Files runs released by the scavenger back as free, released runs.
    pub fn scavenged(&mut self, arena: &Arena, runs: &[(usize, usize, bool)]) {
        let cycle = crate::gc::sweep::current_gen();
        for &(base, pages, _) in runs {
            let page = (base - arena.base) >> PAGE_SHIFT;
            self.runs.insert(page, Run { pages, released: true, cycle, at_ms: now_ms(), owner: None });
        }
        self.sync_counters();
    }

    /// A freed stack run of at least `npages` pages, if one is at most
    /// twice that size.
    fn reuse_stack(list: &mut BTreeMap<usize, Vec<&'static Span>>, npages: usize) -> Option<&'static Span> {
        let (&n, runs) = list.range_mut(npages..=npages.saturating_mul(2)).next()?;
        let span = runs.pop().expect("lists are removed when empty");
        if runs.is_empty() {
            list.remove(&n);
        }
        Some(span)
    }

    /// A stack span of `npages` pages (guard page first, guarded with the
    /// run's slack below it), its slot claimed; the caller takes it. None,
    /// changing nothing, when the range has no room left.
    pub fn take_stack(&mut self, arena: &Arena, npages: usize) -> Option<&'static Span> {
        if let Some(span) = Central::reuse_stack(&mut self.free_stacks, npages) {
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
        self.free_stacks.entry(span.npages()).or_default().push(span);
    }
}

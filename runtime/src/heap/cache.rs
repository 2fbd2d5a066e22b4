//! Per-thread span caches: the lock-free allocation fast path.
//!
//! Each OS thread (runtime worker or foreign C thread alike) has a small
//! direct-mapped table of spans it currently allocates from, keyed by
//! (element type, size class, single value or array). A hit allocates by
//! taking the lowest set bit of `free`, a snapshot of the free slots of one
//! 64-slot word, and setting that slot's alloc bit: no lock, no search, and
//! for a never-used slot no locked instruction either (span.rs). When the
//! word is used up the next word is loaded;
//! when the span is used up, or the entry is needed for another key, the
//! span goes back to the central lists and another is taken, under the heap
//! lock.
//!
//! A span in a cache is owned by that thread: only it writes alloc bits, so
//! a slot it sees free stays free until it takes it. Other threads may free
//! slots of it at any time (setting freed bits); the snapshot then misses
//! those slots until the span is taken again, which costs nothing but a
//! little reuse.
//!
//! When the thread exits, the table's destructor gives every span back.
//! Allocation from a thread whose table is already destroyed (another
//! thread-local's destructor allocating) goes to the central heap directly.

use super::span::Span;
use cgocheck_checker::Type;
use std::cell::UnsafeCell;

/// Entries per thread (a power of two).
const ENTRIES: usize = 128;

/// One cached span and the allocation cursor in it.
#[derive(Clone, Copy)]
pub(crate) struct Entry {
    /// Key: element type address (0 for an empty entry).
    elem: usize,
    /// Key: size class index.
    class: u8,
    /// Key: single value (`true`) or array with per-slot counts.
    single: bool,
    /// The span allocated from (None for an empty entry).
    pub span: Option<&'static Span>,
    /// Alloc-bit word of the span that `free` was taken from.
    word: usize,
    /// Free slots of that word not yet handed out.
    free: u64,
}

impl Entry {
    pub const EMPTY: Entry = Entry { elem: 0, class: 0, single: false, span: None, word: 0, free: 0 };

    /// Whether this entry serves the key.
    #[inline]
    pub fn serves(&self, elem: &'static Type, class: usize, single: bool) -> bool {
        self.elem == elem as *const Type as usize && self.class as usize == class && self.single == single
    }

    /// Points the entry at `span` for the key, cursor at the first word.
    pub fn fill(&mut self, elem: &'static Type, class: usize, single: bool, span: &'static Span) {
        let free = span.claim_word(0).unwrap_or(0);
        *self =
            Entry { elem: elem as *const Type as usize, class: class as u8, single, span: Some(span), word: 0, free };
    }

    /// Takes a free slot for `count` elements and returns its address, or
    /// None when the span has no more free slots in this pass.
    #[inline]
    pub fn alloc(&mut self, count: usize) -> Option<usize> {
        let span = self.span?;
        while self.free == 0 {
            self.word += 1;
            self.free = span.claim_word(self.word)?;
        }
        let bit = self.free.trailing_zeros() as usize;
        self.free &= self.free - 1;
        let slot = self.word * 64 + bit;
        // The address exists before the slot is taken and stays live
        // (`black_box`: the compiler cannot recompute it from `slot`
        // afterwards): a task preempted for a collection right after
        // `take_slot` holds the new object's address in a register or its
        // stack, which the collector scans, so the object is marked, not
        // swept under the task.
        let addr = std::hint::black_box(span.base() + slot * span.slot_size);
        span.take_slot(slot, count);
        Some(addr)
    }
}

/// A thread's table of entries.
pub(crate) struct ThreadCache {
    entries: [Entry; ENTRIES],
}

impl ThreadCache {
    /// The entry a key maps to.
    #[inline]
    pub fn entry(&mut self, elem: &'static Type, class: usize, single: bool) -> &mut Entry {
        let h = (elem as *const Type as usize >> 3) ^ (class << 1) ^ single as usize;
        let i = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (usize::BITS - ENTRIES.trailing_zeros())) & (ENTRIES - 1);
        &mut self.entries[i]
    }
}

impl ThreadCache {
    /// Empties every entry; returns the spans they held.
    pub fn take_all(&mut self) -> Vec<&'static Span> {
        self.entries.iter_mut().filter_map(|e| std::mem::replace(e, Entry::EMPTY).span).collect()
    }
}

impl Drop for ThreadCache {
    fn drop(&mut self) {
        let spans = self.take_all();
        if !spans.is_empty() {
            super::HEAP.give_back(&spans);
        }
    }
}

thread_local! {
    static CACHE: UnsafeCell<ThreadCache> = const { UnsafeCell::new(ThreadCache { entries: [Entry::EMPTY; ENTRIES] }) };
}

/// Runs `f` on this thread's cache; None when the thread is exiting and its
/// cache is gone.
#[inline]
pub(crate) fn with_cache<R>(f: impl FnOnce(&mut ThreadCache) -> R) -> Option<R> {
    CACHE
        .try_with(|c| {
            // SAFETY: the cache is only reached through this function, and
            // `f` (the heap's allocation path) never re-enters it: it runs
            // no user code and the central heap does not touch thread
            // caches. So this is the only live reference. Signal handlers
            // must not allocate (they do not: see the signal design).
            f(unsafe { &mut *c.get() })
        })
        .ok()
}

//! The heap's running totals, for the pacer and `mem_stats` (gc/).
//!
//! Allocation is counted at span granularity, never on the allocation fast
//! path: when a thread cache gives a span back, the slots its owner took
//! since it got the span are `live now - live then + freed meanwhile`
//! (central.rs); large objects are counted one by one (their path takes the
//! heap lock anyway). So allocations from a span still in some cache are
//! not counted yet: at most one span per cache entry, as Go's `mcache`
//! (`mem_stats` adds them, [`cached_allocations`]; the pacer does not).
//! Frees are counted by whoever frees (the sweeper, `Heap::free`). The page
//! figures mirror the central state, updated under its lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);
static ALLOC_OBJECTS: AtomicU64 = AtomicU64::new(0);
static FREED_BYTES: AtomicU64 = AtomicU64::new(0);
static FREED_OBJECTS: AtomicU64 = AtomicU64::new(0);
static HEAP_SYS: AtomicU64 = AtomicU64::new(0);
static HEAP_IDLE: AtomicU64 = AtomicU64::new(0);
static HEAP_RELEASED: AtomicU64 = AtomicU64::new(0);

/// A snapshot of the heap's totals (bytes unless named objects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapCounters {
    /// Bytes ever allocated (objects' slot sizes; a large object's size).
    pub total_alloc: u64,
    /// Objects ever allocated.
    pub mallocs: u64,
    /// Bytes freed (by the sweeper or `Heap::free`).
    pub freed: u64,
    /// Objects freed.
    pub frees: u64,
    /// Bytes of the object range ever handed to spans (Go's `HeapSys`).
    pub heap_sys: u64,
    /// Of those, bytes in free page runs (Go's `HeapIdle` without the
    /// free slots inside spans).
    pub heap_idle: u64,
    /// Of the idle bytes, those given back to the kernel.
    pub heap_released: u64,
}

/// The heap's totals now.
pub fn counters() -> HeapCounters {
    HeapCounters {
        total_alloc: ALLOC_BYTES.load(Relaxed),
        mallocs: ALLOC_OBJECTS.load(Relaxed),
        freed: FREED_BYTES.load(Relaxed),
        frees: FREED_OBJECTS.load(Relaxed),
        heap_sys: HEAP_SYS.load(Relaxed),
        heap_idle: HEAP_IDLE.load(Relaxed),
        heap_released: HEAP_RELEASED.load(Relaxed),
    }
}

/// The allocations not counted yet because their spans are still in a
/// thread cache: `(objects, bytes)`, summed over every small span in the
/// `CACHED` state (`Span::taken_since_take`, the count its give-back will
/// add). For `mem_stats`, which adds them to the running totals so that
/// objects still in some cache's span are not missing from `heap_alloc`;
/// read without locks while tasks allocate, so approximate then. Walks
/// every span.
pub(crate) fn cached_allocations() -> (u64, u64) {
    let (mut objects, mut bytes) = (0u64, 0u64);
    super::span::for_each_span(|span| {
        if matches!(span.kind, super::span::SpanKind::Small { .. })
            && span.state.load(Relaxed) == super::span::state::CACHED
        {
            let taken = span.taken_since_take() as u64;
            objects += taken;
            bytes += taken * span.slot_size as u64;
        }
    });
    (objects, bytes)
}

/// Counts `objects` allocations of `bytes` in all.
pub(crate) fn allocated(objects: usize, bytes: usize) {
    ALLOC_OBJECTS.fetch_add(objects as u64, Relaxed);
    ALLOC_BYTES.fetch_add(bytes as u64, Relaxed);
}

/// Counts `objects` frees of `bytes` in all.
pub(crate) fn freed(objects: usize, bytes: usize) {
    FREED_OBJECTS.fetch_add(objects as u64, Relaxed);
    FREED_BYTES.fetch_add(bytes as u64, Relaxed);
}

/// Central lock: the page figures now.
pub(crate) fn set_pages(sys: usize, idle: usize, released: usize) {
    HEAP_SYS.store(sys as u64, Relaxed);
    HEAP_IDLE.store(idle as u64, Relaxed);
    HEAP_RELEASED.store(released as u64, Relaxed);
}

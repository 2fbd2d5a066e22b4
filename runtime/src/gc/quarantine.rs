//! The `CGOCHECK=2` quarantine: memory the collector frees is poisoned and
//! held back from reuse for a while, so that a use of a freed object — C
//! reading through a pointer it kept after the call, Rust code using a
//! `Gc` it kept where the collector cannot see it — faults or is found,
//! instead of reading whatever the slot holds next. (AddressSanitizer's
//! quarantine and GWP-ASan's guard pages are the models; unlike them, we
//! know which C call last received each object, `ffi/lend.rs`.)
//!
//! At levels 0 and 1 none of this runs: the sweeper frees as before.
//!
//! ## What happens to a dead object at level 2
//!
//! 1. **Poisoned** (by the sweeper, `sweep.rs`, instead of zeroing): every
//!    word of a small slot becomes [`POISON_TAG`]` | its own address`. The
//!    value is not a canonical x86-64 address, so using a word read from
//!    freed memory as a pointer faults, and the faulting register still
//!    says where the word came from (`signal/report.rs` decodes it). The
//!    slot is then marked quarantined and freed (`span.rs`): lookups say
//!    `Freed`, the owner's claim skips it, and the bytes leave the live
//!    heap (the pacer and `mem_stats` count them freed).
//! 2. **Made inaccessible where the granularity allows**: a small span left
//!    with no live object, that no thread cache holds, is *held*: taken off
//!    the allocation lists (state `HELD`) and `mprotect`ed `PROT_NONE`
//!    whole, so any access faults at the address touched. A span still in
//!    a thread's cache cannot be (its owner may allocate into its free
//!    slots): the thread lets its cached spans go at its next C call from
//!    a declared function, at `gc()`, or when the span runs out
//!    ([`before_c_call`]), and the span is held then. A dead large object's
//!    pages are protected at once. Protection is capped at
//!    [`MAX_PROTECTED`] spans (each splits the heap's mapping, and the
//!    kernel limits mappings); past it, poisoning alone.
//! 3. **Held** in a first-in first-out list of batches (one per span per
//!    sweep), bounded in bytes by `CGOCHECK_QUARANTINE` (default 25% of the
//!    live heap, at least 4 MiB). A held span counts whole (its free slots
//!    cannot be used either), a partly live span its quarantined slots, a
//!    large object its bytes.
//! 4. **Released**, oldest first, when the bound is passed: a slot that was
//!    readable is checked word by word against its poison first — a
//!    changed word is a write after free, reported with the object and
//!    the offset (fatal, exit status 2) — then zeroed and made free; a held
//!    span is unprotected, zeroed and listed again (or retired when all
//!    free); a large object's pages go back to the kernel.
//!
//! A fault in quarantined memory is reported by the crash handler with
//! the object, the collection that freed it, the C call that last received
//! it and the fix, before the frames (`signal/report.rs`,
//! [`describe_fault`]).
//!
//! Locks: the batch list's lock, then the heap's central lock (a release
//! puts spans back); the central lock alone to hold a span. Both are taken
//! under `NoPreempt`. The crash handler only tries the batch list's lock.

use crate::heap::sizeclass::PAGE;
use crate::heap::span::{state, Span, SpanKind};
use crate::heap::{counters, heap, Central};
use crate::sched::nopreempt::NoPreempt;
use cgocheck_checker::env::{QuarantineSize, QUARANTINE_FLOOR};
use cgocheck_checker::{Level, WORD};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::*};
use std::sync::Mutex;

/// The high bits of every poisoned word: not a canonical address (user
/// addresses are below 2^47), so a poisoned word used as a pointer faults.
pub const POISON_TAG: u64 = 0xFDFD << 48;

/// The most spans protected at once (each `mprotect`ed range splits the
/// heap's mapping in up to three; Linux allows 65530 mappings).
pub const MAX_PROTECTED: usize = 16384;

/// Whether the quarantine runs: `CGOCHECK=2`.
#[inline]
pub(crate) fn active() -> bool {
    crate::check::level() == Level::Full
}

/// Dead slots of one span taken in one sweep.
struct Batch {
    span: &'static Span,
    /// The collection that freed them (`gc N` in `GODEBUG=gctrace=1`).
    cycle: u64,
    /// (word, slots) of the bitmaps.
    words: Box<[(usize, u64)]>,
}

static BATCHES: Mutex<VecDeque<Batch>> = Mutex::new(VecDeque::new());
/// Bytes held (see the file comment, step 3).
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// Objects quarantined now.
static OBJECTS: AtomicUsize = AtomicUsize::new(0);
/// Spans (small held, and large) protected now.
static PROTECTED: AtomicUsize = AtomicUsize::new(0);
/// Batches released so far (`mem_stats`).
static RELEASED: AtomicU64 = AtomicU64::new(0);
/// Bumped when a span in some thread's cache got quarantined slots: each
/// thread compares it with the last value it acted on ([`before_c_call`]).
pub(crate) static EPOCH: AtomicU64 = AtomicU64::new(0);

fn batches() -> std::sync::MutexGuard<'static, VecDeque<Batch>> {
    BATCHES.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bound, in bytes, now.
fn bound() -> usize {
    match crate::sched::config::config().quarantine {
        QuarantineSize::Bytes(n) => n as usize,
        QuarantineSize::Percent(p) => {
            let share = (super::pacer::heap_live() as u128 * p as u128 / 100) as usize;
            share.max(QUARANTINE_FLOOR as usize)
        }
    }
}

/// The collection a sweep of generation `gen` belongs to (`sweep.rs`:
/// generation 1 before the first cycle).
fn cycle_of(gen: u32) -> u64 {
    gen.wrapping_sub(1) as u64
}

/// Writes the poison over `[addr, addr + len)` (whole words).
///
/// # Safety
/// The range is dead heap memory, accessible, that nothing else uses.
unsafe fn poison(addr: usize, len: usize) {
    let words = addr as *mut u64;
    for i in 0..len / WORD {
        // SAFETY: the caller's contract; `i < len / 8`.
        unsafe { words.add(i).write((addr + i * WORD) as u64 | POISON_TAG) };
    }
}

/// The first word of `[addr, addr + len)` that no longer holds its poison:
/// its offset and value.
///
/// # Safety
/// As [`poison`].
unsafe fn first_changed(addr: usize, len: usize) -> Option<(usize, u64)> {
    let words = addr as *const u64;
    (0..len / WORD).find_map(|i| {
        // SAFETY: the caller's contract.
        let v = unsafe { words.add(i).read_volatile() };
        (v != (addr + i * WORD) as u64 | POISON_TAG).then_some((i * WORD, v))
    })
}

fn protect(addr: usize, len: usize, on: bool) -> bool {
    let prot = if on { libc::PROT_NONE } else { libc::PROT_READ | libc::PROT_WRITE };
    // SAFETY: a page-aligned range of the heap's own reservation, holding
    // only quarantined (dead) objects and free slots: nothing may touch it
    // while it is protected.
    unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) == 0 }
}

/// The sweeper, at level 2: quarantines the dead slots `dead` ((word,
/// slots) pairs) of the small span `span`, swept for generation `gen`.
pub(crate) fn take_small(span: &'static Span, gen: u32, dead: Vec<(usize, u64)>) {
    let _np = NoPreempt::new();
    let size = span.slot_size;
    let mut taken = 0;
    for &(w, bits) in &dead {
        let mut rest = bits;
        while rest != 0 {
            let slot = w * 64 + rest.trailing_zeros() as usize;
            rest &= rest - 1;
            // SAFETY: the slot lies in this live span's committed pages
            // (slot < nslots); the collector found it unreachable and not
            // pinned, so nothing reads or writes it.
            unsafe { poison(span.base() + slot * size, size) };
        }
        taken += span.quarantine_slots_in_word(w, bits);
    }
    counters::freed(taken, taken * size);
    OBJECTS.fetch_add(taken, Relaxed);
    BYTES.fetch_add(taken * size, Relaxed);
    {
        let h = heap();
        let mut central = h.central();
        if span.state.load(SeqCst) == state::CACHED {
            EPOCH.fetch_add(1, Release);
        } else {
            try_hold(&mut central, span);
        }
    }
    push(Batch { span, cycle: cycle_of(gen), words: dead.into_boxed_slice() });
}

/// The sweeper, at level 2: quarantines the dead large object of `span`;
/// false if a racing `Heap::free` freed it first.
pub(crate) fn take_large(span: &'static Span, gen: u32) -> bool {
    let _np = NoPreempt::new();
    let bytes = span.large_size();
    let (base, len) = (span.base(), span.npages() * PAGE);
    // Quarantined before freed, as a small slot (span.rs).
    if span.quarantine_slots_in_word(0, 1) == 0 {
        return false;
    }
    counters::freed(1, bytes);
    OBJECTS.fetch_add(1, Relaxed);
    BYTES.fetch_add(len, Relaxed);
    if PROTECTED.load(Relaxed) < MAX_PROTECTED && protect(base, len, true) {
        PROTECTED.fetch_add(1, Relaxed);
        span.protected.store(true, Release);
    } else {
        // SAFETY: the dead object's own pages, accessible (not protected).
        unsafe { poison(base, bytes) };
    }
    push(Batch { span, cycle: cycle_of(gen), words: Box::new([(0, 1)]) });
    true
}

/// Central lock held: holds `span` (file comment, step 2) if it has
/// quarantined slots, no live object, no cache owns it, and protection is
/// possible. Called after a sweep quarantined slots of it and when a
/// thread cache gives it back.
pub(crate) fn try_hold(central: &mut Central, span: &'static Span) {
    let st = span.state.load(SeqCst);
    if !(st == state::PARTIAL || st == state::FULL) || span.live_objects() != 0 {
        return;
    }
    let q: usize = (0..span.dead_words()).map(|w| span.quarantined_in_word(w).count_ones() as usize).sum();
    if q == 0 || PROTECTED.load(Relaxed) >= MAX_PROTECTED {
        return;
    }
    let len = span.npages() * PAGE;
    if !protect(span.base(), len, true) {
        return;
    }
    central.hold(span);
    span.protected.store(true, Release);
    PROTECTED.fetch_add(1, Relaxed);
    // A held span counts whole: its free slots are out of use too.
    BYTES.fetch_add(len - q * span.slot_size, Relaxed);
}

/// Adds a batch and releases the oldest while the bound is passed.
fn push(batch: Batch) {
    let mut list = batches();
    list.push_back(batch);
    trim_locked(&mut list);
}

/// Releases the oldest batches while the bound is passed (after spans
/// were held by `Heap::give_back`, which cannot take the batch list's lock
/// under the central lock).
pub(crate) fn trim() {
    let _np = NoPreempt::new();
    trim_locked(&mut batches());
}

fn trim_locked(list: &mut VecDeque<Batch>) {
    let bound = bound();
    while BYTES.load(Relaxed) > bound {
        let Some(oldest) = list.pop_front() else { break };
        release(&oldest);
    }
}

/// Lets the slots of `b` that are still quarantined go (file comment,
/// step 4). Batch list lock held.
fn release(b: &Batch) {
    let span = b.span;
    let h = heap();
    match span.kind {
        SpanKind::Large => {
            if !span.is_quarantined(0) {
                return;
            }
            let len = span.npages() * PAGE;
            if span.protected.swap(false, AcqRel) {
                assert!(protect(span.base(), len, false), "cgocheck: mprotect failed releasing quarantined pages");
                PROTECTED.fetch_sub(1, Relaxed);
            } else {
                check_poison(span, 0, b.cycle);
            }
            h.arena().discard(span.base(), len);
            span.release_slots_in_word(0, 1);
            forget_lends(span, 0, 1);
            OBJECTS.fetch_sub(1, Relaxed);
            BYTES.fetch_sub(len, Relaxed);
            h.central().freed_large(h.arena(), span);
        }
        SpanKind::Small { .. } => {
            let mut central = h.central();
            if span.state.load(SeqCst) == state::HELD {
                // The whole span goes at once: unprotected (nothing could
                // write it), zeroed, listed again.
                let len = span.npages() * PAGE;
                assert!(protect(span.base(), len, false), "cgocheck: mprotect failed releasing quarantined pages");
                span.protected.store(false, Release);
                PROTECTED.fetch_sub(1, Relaxed);
                for w in 0..span.dead_words() {
                    let q = span.quarantined_in_word(w);
                    zero_slots(span, w, q);
                    span.release_slots_in_word(w, q);
                    forget_lends(span, w, q);
                    OBJECTS.fetch_sub(q.count_ones() as usize, Relaxed);
                }
                BYTES.fetch_sub(len, Relaxed);
                central.unhold(h.arena(), span);
            } else {
                // A batch may be stale (its slots went with a held span,
                // or the span was retired and reused): only the slots still
                // quarantined are released, and a span gains free slots
                // only if some were.
                let mut released = 0;
                for &(w, bits) in b.words.iter() {
                    let q = bits & span.quarantined_in_word(w);
                    let mut rest = q;
                    while rest != 0 {
                        check_poison(span, w * 64 + rest.trailing_zeros() as usize, b.cycle);
                        rest &= rest - 1;
                    }
                    zero_slots(span, w, q);
                    span.release_slots_in_word(w, q);
                    forget_lends(span, w, q);
                    let n = q.count_ones() as usize;
                    OBJECTS.fetch_sub(n, Relaxed);
                    BYTES.fetch_sub(n * span.slot_size, Relaxed);
                    released += n;
                }
                if released > 0 {
                    central.freed_small(h.arena(), span);
                }
            }
        }
        SpanKind::Stack => unreachable!("stacks are never quarantined"),
    }
    RELEASED.fetch_add(1, Relaxed);
}

fn zero_slots(span: &Span, w: usize, bits: u64) {
    let mut rest = bits;
    while rest != 0 {
        let slot = w * 64 + rest.trailing_zeros() as usize;
        rest &= rest - 1;
        // SAFETY: a quarantined slot of this span: dead, accessible (the
        // span is not protected now), used by nobody.
        unsafe { std::ptr::write_bytes((span.base() + slot * span.slot_size) as *mut u8, 0, span.slot_size) };
    }
}

fn forget_lends(span: &Span, w: usize, bits: u64) {
    let mut rest = bits;
    while rest != 0 {
        if let Some(r) = span.lent_record_if_any(w * 64 + rest.trailing_zeros() as usize) {
            crate::ffi::lend::forget(r);
        }
        rest &= rest - 1;
    }
}

/// Checks that slot `slot` of `span` (quarantined, accessible) still holds
/// its poison; a changed word is a write after free: reported, and the
/// process ends with exit status 2.
fn check_poison(span: &'static Span, slot: usize, cycle: u64) {
    let (base, size) = match span.kind {
        SpanKind::Large => (span.base(), span.large_size()),
        _ => (span.base() + slot * span.slot_size, span.slot_size),
    };
    // SAFETY: a quarantined slot, accessible, used by nobody.
    let Some((offset, value)) = (unsafe { first_changed(base, size) }) else { return };
    let layout = span.layout();
    let lend = crate::ffi::lend::describe(span, slot);
    let who = if lend.is_some() { "C wrote into" } else { "a write into" };
    let mut msg = format!(
        "cgocheck: {who} a managed object freed by the collector (CGOCHECK=2 quarantine)\n\
         \x20 the {size}-byte object of type {} at {base:#x} was freed by collection {cycle} (gc {cycle} in \
         GODEBUG=gctrace=1)\n\
         \x20 after that, the word at offset {offset} ({:#x}) was overwritten with {value:#x}\n",
        layout.elem,
        base + offset
    );
    match lend {
        Some(l) => msg.push_str(&format!(
            "  it was last handed to C by {l}\n  fix: C kept the pointer after the call returned and wrote \
             through it. Pin the object with a Pinner for as long as C keeps it, or give C a Handle \
             (cgocheck::Handle) instead of the pointer.\n"
        )),
        None => msg.push_str(
            "  it was never handed to C by a declared C function: something kept its address where the \
             collector does not look (a Box, a Vec, a plain static, C memory).\n  fix: keep the object \
             reachable while it is used: a Root, a field of managed memory, or a Handle.\n",
        ),
    }
    msg.push_str("fatal error: write into freed managed memory\n");
    // One write: the report is not interleaved with other output.
    use std::io::Write;
    let _ = std::io::stderr().write_all(msg.as_bytes());
    // SAFETY: ends the process, as a fatal signal's report does.
    unsafe { libc::_exit(2) }
}

/// A thread about to run C code (a declared function's call) or a `gc()`:
/// if slots of spans in thread caches were quarantined since this thread
/// last looked, it gives back every span its cache holds, so that the ones
/// left without a live object are held and protected before C runs.
#[inline]
pub(crate) fn before_c_call() {
    thread_local! {
        static SEEN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let now = EPOCH.load(Acquire);
    let stale = SEEN.try_with(|s| s.replace(now) != now).unwrap_or(false);
    if stale {
        let _np = NoPreempt::new();
        heap().give_back_cache();
    }
}

/// The quarantine's figures (`mem_stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuarantineStats {
    /// Bytes held from reuse now (file comment, step 3).
    pub bytes: u64,
    /// Freed objects in the quarantine now.
    pub objects: u64,
    /// Spans whose pages are inaccessible now.
    pub protected_spans: u64,
    /// Batches released so far.
    pub released_batches: u64,
    /// The bound now, in bytes.
    pub bound: u64,
}

pub(crate) fn stats() -> QuarantineStats {
    QuarantineStats {
        bytes: BYTES.load(Relaxed) as u64,
        objects: OBJECTS.load(Relaxed) as u64,
        protected_spans: PROTECTED.load(Relaxed) as u64,
        released_batches: RELEASED.load(Relaxed),
        bound: if active() { bound() as u64 } else { 0 },
    }
}

/// What the crash handler says about a fault at `addr` in quarantined
/// memory: the span and slot, the collection that freed it (when the batch
/// list's lock is free). Lock-free but for a `try_lock`; allocates nothing.
pub(crate) struct FaultSite {
    pub span: &'static Span,
    pub slot: usize,
    /// False for a free slot of a held span (between freed objects).
    pub quarantined: bool,
    pub cycle: Option<u64>,
}

pub(crate) fn describe_fault(addr: usize) -> Option<FaultSite> {
    let (span, slot) = heap().slot_of(addr)?;
    let quarantined = span.is_quarantined(slot);
    if !quarantined {
        return span.protected.load(Acquire).then_some(FaultSite { span, slot, quarantined, cycle: None });
    }
    let cycle = BATCHES.try_lock().ok().and_then(|list| {
        list.iter()
            .rev()
            .find(|b| {
                std::ptr::eq(b.span, span) && b.words.iter().any(|&(w, bits)| w == slot / 64 && bits & (1 << (slot % 64)) != 0)
            })
            .map(|b| b.cycle)
    });
    Some(FaultSite { span, slot, quarantined, cycle })
}

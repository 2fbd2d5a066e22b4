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
//! 1. **Quarantined** (by the sweeper, `sweep.rs`, instead of freed): the
//!    slot is marked quarantined and freed (`span.rs`): lookups say
//!    `Freed`, the owner's claim skips it, and the bytes leave the live
//!    heap (the pacer and `mem_stats` count them freed). Then it is
//!    poisoned, unless its span is held (2): every word becomes
//!    [`POISON_TAG`]` | its own address`. The value is not a canonical
//!    x86-64 address, so using a word read from freed memory as a pointer
//!    faults, and the faulting register still says where the word came
//!    from (`signal/report.rs` decodes it).
//! 2. **Made inaccessible where the granularity allows**: a small span left
//!    with no live object, that no thread cache holds, is *held*: taken off
//!    the allocation lists (state `HELD`) and `mprotect`ed `PROT_NONE`
//!    whole, so any access faults at the address touched. A sweeper holds
//!    the spans it found so together, at the end of its run of sweeps
//!    ([`hold_pending`]), so that spans side by side are protected by one
//!    call (each call interrupts every CPU running the process to flush
//!    its TLB); a span it could not hold after all is poisoned then. A
//!    batch is listed (releasable) only once poisoned or held. A span in
//!    a thread's cache cannot be (its owner may allocate into its free
//!    slots): the thread lets its cached spans go at its next C call from
//!    a declared function, at `gc()`, or at its next span refill
//!    ([`let_cached_spans_go`]), and the span is held then. A dead large object's
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
//! Locks: the batch list's lock is held only to add or take batches; the
//! heap's central lock to hold a span and to release a group of batches
//! (one taking for up to [`RELEASE_GROUP`]). One thread releases at a time
//! ([`trim`]), so sweepers and allocation do not queue behind it. Locks are
//! taken under `NoPreempt`; the crash handler only tries the batch list's.

use crate::heap::sizeclass::PAGE;
use crate::heap::span::{state, Span, SpanKind};
use crate::heap::{counters, heap, Central};
use crate::sched::nopreempt::NoPreempt;
use cgocheck_checker::env::{QuarantineSize, QUARANTINE_FLOOR};
use cgocheck_checker::{Level, WORD};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
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
    /// The span's `qgen` when the batch was made: a batch whose span has
    /// moved on (its slots released with the whole span, or the span
    /// reused) is stale, and releases nothing — its bits may name newer
    /// quarantined slots, maybe not poisoned yet.
    qgen: u32,
    /// The collection that freed them (`gc N` in `GODEBUG=gctrace=1`).
    cycle: u64,
    /// (word, slots) of the bitmaps.
    words: Box<[(usize, u64)]>,
    /// Bytes of its slots (counted in [`BYTES`] when taken).
    bytes: usize,
}

static BATCHES: Mutex<VecDeque<Batch>> = Mutex::new(VecDeque::new());
/// Bytes held (see the file comment, step 3).
static BYTES: AtomicUsize = AtomicUsize::new(0);
/// The part of [`BYTES`] in batches not listed yet (candidates waiting in
/// a sweeper's [`PENDING`]): no release can reach them, so the bound is
/// kept against the rest ([`listed_bytes`]).
static UNLISTED_BYTES: AtomicUsize = AtomicUsize::new(0);
/// Objects quarantined now.
static OBJECTS: AtomicUsize = AtomicUsize::new(0);
/// Spans (small held, and large) protected now.
static PROTECTED: AtomicUsize = AtomicUsize::new(0);
/// Batches released so far (`mem_stats`).
static RELEASED: AtomicU64 = AtomicU64::new(0);
/// Bumped when a span in some thread's cache got quarantined slots: each
/// thread compares it with the last value it acted on ([`let_cached_spans_go`]).
static EPOCH: AtomicU64 = AtomicU64::new(0);

/// The batch list, locked, with preemption held off while it is held (the
/// collector's rule for runtime locks).
struct BatchesGuard {
    list: std::sync::MutexGuard<'static, VecDeque<Batch>>,
    _np: NoPreempt,
}

impl std::ops::Deref for BatchesGuard {
    type Target = VecDeque<Batch>;
    fn deref(&self) -> &VecDeque<Batch> {
        &self.list
    }
}

impl std::ops::DerefMut for BatchesGuard {
    fn deref_mut(&mut self) -> &mut VecDeque<Batch> {
        &mut self.list
    }
}

fn batches() -> BatchesGuard {
    let np = NoPreempt::new();
    BatchesGuard { list: BATCHES.lock().unwrap_or_else(|e| e.into_inner()), _np: np }
}

/// Bytes held in listed batches (and held spans): what releases can lower.
fn listed_bytes() -> usize {
    BYTES.load(SeqCst).saturating_sub(UNLISTED_BYTES.load(SeqCst))
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

/// The runs of consecutive set bits of `bits`: (first bit, length).
fn runs(mut bits: u64) -> impl Iterator<Item = (usize, usize)> {
    std::iter::from_fn(move || {
        if bits == 0 {
            return None;
        }
        let start = bits.trailing_zeros() as usize;
        let len = (!(bits >> start)).trailing_zeros() as usize;
        bits &= if start + len == 64 { 0 } else { !0u64 << (start + len) };
        Some((start, len))
    })
}

/// Writes the poison over `[addr, addr + len)` (whole words).
///
/// # Safety
/// The range is dead heap memory, accessible, that nothing else uses.
unsafe fn poison(addr: usize, len: usize) {
    // SAFETY: the caller's contract.
    let words = unsafe { std::slice::from_raw_parts_mut(addr as *mut u64, len / WORD) };
    for (i, w) in words.iter_mut().enumerate() {
        *w = (addr + i * WORD) as u64 | POISON_TAG;
    }
}

/// Checks that `[addr, addr + len)` still holds its poison and zeroes it;
/// returns the offset and value of the first changed word, if any (and
/// then zeroes nothing).
///
/// # Safety
/// As [`poison`].
unsafe fn verify_and_zero(addr: usize, len: usize) -> Option<(usize, u64)> {
    // SAFETY: the caller's contract.
    if let Some(changed) = unsafe { first_changed(addr, len) } {
        return Some(changed);
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::write_bytes(addr as *mut u8, 0, len) };
    None
}

/// The offset and value of the first word of `[addr, addr + len)` that no
/// longer holds its poison.
///
/// # Safety
/// As [`poison`].
unsafe fn first_changed(addr: usize, len: usize) -> Option<(usize, u64)> {
    // SAFETY: the caller's contract.
    let words = unsafe { std::slice::from_raw_parts(addr as *const u64, len / WORD) };
    // One pass that folds the differences (vectorised), the search only
    // when there is one.
    let diff = words.iter().enumerate().fold(0, |acc, (i, &w)| acc | (w ^ ((addr + i * WORD) as u64 | POISON_TAG)));
    if diff == 0 {
        return None;
    }
    words.iter().enumerate().find_map(|(i, &w)| (w != (addr + i * WORD) as u64 | POISON_TAG).then_some((i * WORD, w)))
}

/// Central lock held, `span` about to be held: its quarantined slots not in
/// `unpoisoned` (the batches being held with it, never poisoned) belong to
/// listed batches and hold their poison, unless something wrote into them
/// since; checked now, as the release would have (the release of a held
/// span only zeroes it). A changed word is reported, exit status 2.
fn check_before_hold(span: &'static Span, unpoisoned: &[(usize, u64)]) {
    let size = span.slot_size;
    for w in 0..span.dead_words() {
        let skip = unpoisoned.iter().filter(|&&(uw, _)| uw == w).fold(0, |acc, &(_, bits)| acc | bits);
        for (first, n) in runs(span.quarantined_in_word(w) & !skip) {
            let addr = span.base() + (w * 64 + first) * size;
            // SAFETY: quarantined slots of a span not held (the caller holds
            // the central lock, so nobody holds or releases it meanwhile):
            // dead, accessible, used by nobody.
            if let Some((offset, value)) = unsafe { first_changed(addr, n * size) } {
                let slot = w * 64 + first + offset / size;
                report_write(span, slot, cycle_of_slot(span, slot), offset % size, value);
            }
        }
    }
}

/// The collection that quarantined slot `slot` of `span`, from the listed
/// batches (None if none names it).
fn cycle_of_slot(span: &Span, slot: usize) -> Option<u64> {
    cycle_in(&batches(), span, slot)
}

/// The collection of the newest batch in `list` that names slot `slot` of
/// `span`.
fn cycle_in(list: &VecDeque<Batch>, span: &Span, slot: usize) -> Option<u64> {
    list.iter()
        .rev()
        .find(|b| {
            std::ptr::eq(b.span, span)
                && b.words.iter().any(|&(w, bits)| w == slot / 64 && bits & (1 << (slot % 64)) != 0)
        })
        .map(|b| b.cycle)
}

/// Makes quarantined pages inaccessible; false, leaving them accessible,
/// when the kernel refuses (its limit on mappings). A refusal part way
/// through a range may have changed some of it: that part is made
/// accessible again (or the process ends, saying why).
fn protect_or_leave(addr: usize, len: usize) -> bool {
    if protect(addr, len, true) {
        return true;
    }
    unprotect(addr, len);
    false
}

fn protect(addr: usize, len: usize, on: bool) -> bool {
    let prot = if on { libc::PROT_NONE } else { libc::PROT_READ | libc::PROT_WRITE };
    // SAFETY: a page-aligned range of the heap's own reservation, holding
    // only quarantined (dead) objects and free slots: nothing may touch it
    // while it is protected.
    unsafe { libc::mprotect(addr as *mut libc::c_void, len, prot) == 0 }
}

/// Makes quarantined pages accessible again, or ends the process saying
/// why: unprotecting part of a protected run splits a mapping, which fails
/// only at the kernel's limit on mappings.
fn unprotect(addr: usize, len: usize) {
    if !protect(addr, len, false) {
        let e = std::io::Error::last_os_error();
        eprintln!(
            "cgocheck: the CGOCHECK=2 quarantine cannot make {len} bytes at {addr:#x} accessible again: {e}\n\
             cgocheck: the process has too many memory mappings (vm.max_map_count); lower CGOCHECK_QUARANTINE \
             or raise vm.max_map_count\nfatal error: quarantine release failed"
        );
        // SAFETY: ends the process, as a fatal report does.
        unsafe { libc::_exit(2) }
    }
}

/// The sweeper, at level 2: quarantines the dead slots `dead` ((word,
/// slots) pairs) of the small span `span`, swept for generation `gen`.
///
/// A span left with nothing live is a candidate to hold: its batch waits
/// (unpoisoned: if it is held, no access is possible and poisoning would
/// be wasted) until [`hold_pending`], which holds the candidates together
/// and poisons those it could not hold. Other batches are poisoned now.
/// Either way a batch is listed (and may be released, which checks the
/// poison) only once it is poisoned or held.
pub(crate) fn take_small(span: &'static Span, gen: u32, dead: Vec<(usize, u64)>) {
    let size = span.slot_size;
    let batch = {
        let np = NoPreempt::new();
        // Counted before the slots are quarantined: whoever finds the span
        // without a live object (which needs these bits) also finds this.
        span.unlisted.fetch_add(1, SeqCst);
        let words: Vec<(usize, u64)> = dead
            .iter()
            .map(|&(w, bits)| (w, span.quarantine_slots_in_word(w, bits)))
            .filter(|&(_, taken)| taken != 0)
            .collect();
        let taken: usize = words.iter().map(|&(_, bits)| bits.count_ones() as usize).sum();
        counters::freed(taken, taken * size);
        OBJECTS.fetch_add(taken, Relaxed);
        BYTES.fetch_add(taken * size, SeqCst);
        if words.is_empty() {
            span.unlisted.fetch_sub(1, SeqCst);
            return;
        }
        let qgen = span.qgen.load(Relaxed);
        let mut batch =
            Some(Batch { span, qgen, cycle: cycle_of(gen), words: words.into_boxed_slice(), bytes: taken * size });
        if span.state.load(SeqCst) != state::CACHED && span.live_objects() == 0 {
            // Counted while the sweep of this span is still in flight
            // (`sweep.rs`), so `finish_all` waits for it to be listed too.
            PENDING_COUNT.fetch_add(1, SeqCst);
            UNLISTED_BYTES.fetch_add(taken * size, SeqCst);
            let full = PENDING.try_with(|p| {
                let mut p = p.borrow_mut();
                p.extend(batch.take());
                p.len() >= PENDING_MAX
            });
            match full {
                Ok(full) => {
                    drop(np);
                    if full {
                        hold_pending();
                    }
                    return;
                }
                // The thread is exiting: no list to wait in; poisoned now.
                Err(_) => {
                    PENDING_COUNT.fetch_sub(1, SeqCst);
                    UNLISTED_BYTES.fetch_sub(taken * size, SeqCst);
                }
            }
        }
        let batch = batch.take().expect("a batch not handed to the pending list");
        poison_batch(&batch);
        span.unlisted.fetch_sub(1, SeqCst);
        // The state is read again after the count went down (SeqCst both):
        // a span given back from now on is held by `give_back` itself; one
        // given back before, while the count kept it off, is held here.
        if span.state.load(SeqCst) == state::CACHED {
            EPOCH.fetch_add(1, Release);
        } else if span.live_objects() == 0 {
            try_hold(&mut heap().central(), span);
        }
        batch
    };
    batches().push_back(batch);
    trim();
}

/// Poisons the slots of `batch` (quarantined, unlisted, not held: nobody
/// else touches them).
fn poison_batch(b: &Batch) {
    let size = b.span.slot_size;
    for &(w, bits) in b.words.iter() {
        for (first, n) in runs(bits) {
            // SAFETY: quarantined slots of a live span, in its committed
            // pages: dead (the collector found them unreachable and not
            // pinned), accessible (not held), and used by nobody.
            unsafe { poison(b.span.base() + (w * 64 + first) * size, n * size) };
        }
    }
}

/// Candidate batches a sweeper found holdable, waiting to be held together
/// (so that spans side by side are protected by one call: each call
/// interrupts every CPU running this process).
const PENDING_MAX: usize = 256;
thread_local! {
    static PENDING: std::cell::RefCell<Vec<Batch>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A sweeper, at the end of a run of sweeps (and every [`PENDING_MAX`]
/// candidates): holds the spans of its candidate batches that may still be
/// held, protecting the ones side by side with one call; poisons the
/// others; lists them all.
pub(crate) fn hold_pending() {
    let np = NoPreempt::new();
    let Ok(mut pending) = PENDING.try_with(|p| std::mem::take(&mut *p.borrow_mut())) else { return };
    if pending.is_empty() {
        return;
    }
    pending.sort_by_key(|b| b.span.base());
    // How many of the pending batches are this span's: its `unlisted`
    // count is theirs, which do not keep this sweeper from holding it.
    let own = |k: usize| pending.iter().filter(|b| std::ptr::eq(b.span, pending[k].span)).count() as u32;
    let mut is_held = vec![false; pending.len()];
    {
        let h = heap();
        let mut central = h.central();
        let mut i = 0;
        while i < pending.len() {
            if !holdable(pending[i].span, own(i)) {
                i += 1;
                continue;
            }
            // A run of holdable spans side by side (a span with two
            // batches appears twice: the run takes the repeat along).
            let start = i;
            let mut end = pending[i].span.end();
            i += 1;
            while i < pending.len()
                && (std::ptr::eq(pending[i].span, pending[i - 1].span)
                    || (pending[i].span.base() == end && holdable(pending[i].span, own(i))))
            {
                end = pending[i].span.end();
                i += 1;
            }
            for k in start..i {
                let span = pending[k].span;
                if k > start && std::ptr::eq(span, pending[k - 1].span) {
                    continue;
                }
                // Every batch of this span being held now is unpoisoned.
                let unpoisoned: Vec<(usize, u64)> = pending[start..i]
                    .iter()
                    .filter(|b| std::ptr::eq(b.span, span))
                    .flat_map(|b| b.words.iter().copied())
                    .collect();
                check_before_hold(span, &unpoisoned);
            }
            let spans = pending[start..i].iter().filter(|b| !b.span.protected.load(Relaxed)).count();
            if PROTECTED.load(Relaxed) + spans > MAX_PROTECTED
                || !protect_or_leave(pending[start].span.base(), end - pending[start].span.base())
            {
                continue;
            }
            for k in start..i {
                if !pending[k].span.protected.load(Relaxed) {
                    held(&mut central, pending[k].span);
                }
                is_held[k] = true;
                pending[k].span.unlisted.fetch_sub(1, SeqCst);
            }
        }
    }
    // Outside the lock: the batches not held are poisoned (their count
    // still keeps anyone from holding their spans meanwhile), then let go.
    for (b, held) in pending.iter().zip(&is_held) {
        if !held {
            poison_batch(b);
            b.span.unlisted.fetch_sub(1, SeqCst);
        }
    }
    let (n, bytes) = (pending.len(), pending.iter().map(|b| b.bytes).sum::<usize>());
    batches().extend(pending);
    UNLISTED_BYTES.fetch_sub(bytes, SeqCst);
    drop(np);
    trim();
    PENDING_COUNT.fetch_sub(n, SeqCst);
}

/// Candidate batches in sweepers' lists, not listed yet.
static PENDING_COUNT: AtomicUsize = AtomicUsize::new(0);

/// Whether sweepers still hold candidate batches (`sweep::finish_all`
/// waits until they are listed and the bound is kept).
pub(crate) fn pending() -> bool {
    PENDING_COUNT.load(SeqCst) != 0
}

/// Whether `span` may be held now (central lock held): quarantined slots,
/// nothing live, no cache owns it, not being released, and protection is
/// possible.
///
/// `unlisted` is read after the bitmaps: a sweeper counts it before it
/// quarantines the slots that leave the span without a live object, so a
/// span seen without one is seen with the sweeper's count (its batch is
/// not poisoned yet: holding it, then releasing it, then poisoning the
/// batch would write into freed slots).
///
/// `own`: the caller's own unlisted batches of the span (a sweeper holding
/// its candidates), which do not count.
fn holdable(span: &Span, own: u32) -> bool {
    let st = span.state.load(SeqCst);
    (st == state::PARTIAL || st == state::FULL)
        && !span.releasing.load(Relaxed)
        && span.live_objects() == 0
        && (0..span.dead_words()).any(|w| span.quarantined_in_word(w) != 0)
        && span.unlisted.load(SeqCst) == own
        && PROTECTED.load(Relaxed) < MAX_PROTECTED
}

/// Central lock held, `span` holdable and just protected: held.
fn held(central: &mut Central, span: &'static Span) {
    let q: usize = (0..span.dead_words()).map(|w| span.quarantined_in_word(w).count_ones() as usize).sum();
    central.hold(span);
    span.protected.store(true, Release);
    PROTECTED.fetch_add(1, Relaxed);
    // A held span counts whole: its free slots are out of use too.
    BYTES.fetch_add(span.npages() * PAGE - q * span.slot_size, SeqCst);
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
    BYTES.fetch_add(len, SeqCst);
    // The cap is checked and taken in one step (sweepers race here).
    let slot = PROTECTED.fetch_update(Relaxed, Relaxed, |n| (n < MAX_PROTECTED).then_some(n + 1)).is_ok();
    if slot && protect_or_leave(base, len) {
        span.protected.store(true, Release);
    } else {
        if slot {
            PROTECTED.fetch_sub(1, Relaxed);
        }
        // SAFETY: the dead object's own pages, accessible (not protected).
        unsafe { poison(base, bytes) };
    }
    let batch =
        Batch { span, qgen: span.qgen.load(Relaxed), cycle: cycle_of(gen), words: Box::new([(0, 1)]), bytes: len };
    batches().push_back(batch);
    drop(_np);
    trim();
    true
}

/// Central lock held: holds `span` (file comment, step 2) if it may be
/// held; for a span a thread cache gives back (`Central::give_back`).
pub(crate) fn try_hold(central: &mut Central, span: &'static Span) {
    if !holdable(span, 0) {
        return;
    }
    check_before_hold(span, &[]);
    if protect_or_leave(span.base(), span.npages() * PAGE) {
        held(central, span);
    }
}

/// Whether a thread is releasing batches (one at a time: the others go on
/// sweeping and allocating instead of queueing for the locks).
static TRIMMING: AtomicBool = AtomicBool::new(false);

/// Batches released under one taking of the central lock, at most.
const RELEASE_GROUP: usize = 512;

/// Releases the oldest batches while the bound is passed, unless another
/// thread is at it. Called after a batch is added and after spans were
/// held by `Heap::give_back` (which cannot release under the central
/// lock).
///
/// Whoever adds bytes and finds a release in progress leaves it to that
/// thread, which looks at the total again after it stops: the additions
/// and the flag are SeqCst, so either the adder sees the flag cleared and
/// releases, or the releaser sees the bytes.
pub(crate) fn trim() {
    let bound = bound();
    loop {
        if listed_bytes() <= bound || TRIMMING.swap(true, SeqCst) {
            return;
        }
        // Preemption is held off by the locks of each step, not across the
        // whole release: a world stop waits for one step at most.
        let mut emptied = false;
        loop {
            let excess = listed_bytes().saturating_sub(bound);
            if excess == 0 {
                break;
            }
            let group = oldest(excess);
            if group.is_empty() {
                // What is over the bound is not listed yet: its sweeper
                // trims after listing it.
                emptied = true;
                break;
            }
            release_group(&group);
        }
        TRIMMING.store(false, SeqCst);
        if emptied {
            return;
        }
    }
}

/// Takes the oldest batches that hold about `excess` bytes (at least one,
/// at most [`RELEASE_GROUP`]).
fn oldest(excess: usize) -> Vec<Batch> {
    let mut list = batches();
    let mut out = Vec::new();
    let mut bytes = 0;
    while bytes < excess && out.len() < RELEASE_GROUP {
        let Some(b) = list.pop_front() else { break };
        bytes += match b.span.kind {
            SpanKind::Small { .. } if b.span.state.load(Relaxed) != state::HELD => {
                b.words
                    .iter()
                    .map(|&(w, bits)| (bits & b.span.quarantined_in_word(w)).count_ones() as usize)
                    .sum::<usize>()
                    * b.span.slot_size
            }
            _ => b.span.npages() * PAGE,
        };
        out.push(b);
    }
    out
}

/// Lets the slots of each batch that are still quarantined go (file
/// comment, step 4), in three steps:
///
/// 1. Central lock: the small spans of the batches are marked
///    `releasing`, so nobody holds (and protects) them meanwhile, and the
///    held ones among them noted.
/// 2. No lock: held spans are unprotected (those side by side by one
///    call) and zeroed; the other batches' quarantined slots are checked
///    against the poison and zeroed, a run of slots at a time; all are
///    made free (as any free: the owner of a cached span sees them at its
///    next claim; a held span is on no list and in no cache). A large
///    object is unprotected or checked, and its pages given back.
/// 3. Central lock: held spans are listed again (or retired when all
///    free), a span given back full becomes partial, one all free is
///    retired, a large object's run is filed; the marks go.
fn release_group(group: &[Batch]) {
    let h = heap();
    let mut held: Vec<&'static Span>;
    let mut unheld: Vec<&Batch> = Vec::with_capacity(group.len());
    {
        let _central = h.central();
        // A stale batch (its span released whole, or reused, since) does
        // not release a newer hold of the span.
        held = group
            .iter()
            .filter(|b| b.qgen == b.span.qgen.load(Relaxed))
            .map(|b| b.span)
            .filter(|s| matches!(s.kind, SpanKind::Small { .. }) && s.state.load(SeqCst) == state::HELD)
            .collect();
        held.sort_by_key(|s| s.base());
        held.dedup_by_key(|s| s.base());
        for b in group {
            // Only this thread releases (`trim`): the marks are its own. A
            // held span is marked too (it stays held, off every list, until
            // step 3); a large object's span is only ever released from
            // the list, so it needs no mark.
            if b.span.kind != SpanKind::Large {
                b.span.releasing.store(true, Relaxed);
            }
            unheld.push(b);
        }
    }
    // Step 2, no lock. Held spans first: unprotected (neighbours by one
    // call) and zeroed whole (nothing could write them); their batches
    // then find nothing quarantined.
    let mut i = 0;
    while i < held.len() {
        let (start, mut end) = (held[i].base(), held[i].end());
        i += 1;
        while i < held.len() && held[i].base() == end {
            end = held[i].end();
            i += 1;
        }
        unprotect(start, end - start);
    }
    for &span in &held {
        span.protected.store(false, Release);
        PROTECTED.fetch_sub(1, Relaxed);
        for w in 0..span.dead_words() {
            let q = span.quarantined_in_word(w);
            forget_lends(span, w, q);
            zero_slots(span, w, q);
            span.release_slots_in_word(w, q);
            OBJECTS.fetch_sub(q.count_ones() as usize, Relaxed);
        }
        BYTES.fetch_sub(span.npages() * PAGE, SeqCst);
    }
    let (mut freed_in, mut freed_large): (Vec<&'static Span>, Vec<&'static Span>) = (Vec::new(), Vec::new());
    for b in &unheld {
        if b.span.kind == SpanKind::Large {
            if release_large(b) {
                freed_large.push(b.span);
            }
        } else if release_slots(b) > 0 {
            freed_in.push(b.span);
        }
    }
    let mut central = h.central();
    for span in held {
        central.unhold(h.arena(), span);
    }
    for span in freed_in {
        central.freed_small(h.arena(), span);
    }
    for span in freed_large {
        central.freed_large(h.arena(), span);
    }
    for b in unheld {
        b.span.releasing.store(false, Relaxed);
    }
    RELEASED.fetch_add(group.len() as u64, Relaxed);
}

/// A quarantined large object (no lock: step 2): unprotected or checked,
/// its pages given back; true if it was released (its run is filed in
/// step 3).
fn release_large(b: &Batch) -> bool {
    let span = b.span;
    if b.qgen != span.qgen.load(Relaxed) || !span.is_quarantined(0) {
        return false;
    }
    let h = heap();
    let len = span.npages() * PAGE;
    if span.protected.swap(false, AcqRel) {
        unprotect(span.base(), len);
        PROTECTED.fetch_sub(1, Relaxed);
    } else {
        let size = span.large_size();
        // SAFETY: the dead object's own pages, accessible, used by nobody
        // (its run is filed only after this); checked, not zeroed: the
        // pages go back to the kernel next.
        if let Some((offset, value)) = unsafe { first_changed(span.base(), size) } {
            report_write(span, 0, Some(b.cycle), offset, value);
        }
    }
    h.arena().discard(span.base(), len);
    forget_lends(span, 0, 1);
    span.release_slots_in_word(0, 1);
    OBJECTS.fetch_sub(1, Relaxed);
    BYTES.fetch_sub(len, SeqCst);
    true
}

/// The slots of `b` still quarantined, in a span not held (marked
/// `releasing`): checked against the poison and zeroed a run at a time,
/// then made free. Returns how many. A batch may be stale (its slots went
/// with a held span, or the span was retired and reused): only what is
/// still quarantined is touched.
fn release_slots(b: &Batch) -> usize {
    let span = b.span;
    let size = span.slot_size;
    let mut released = 0;
    if b.qgen != span.qgen.load(Relaxed) {
        return 0;
    }
    for &(w, bits) in b.words.iter() {
        let q = bits & span.quarantined_in_word(w);
        for (first, n) in runs(q) {
            let addr = span.base() + (w * 64 + first) * size;
            // SAFETY: quarantined slots of a span nobody may hold while it
            // is marked releasing: dead, accessible, used by nobody.
            if let Some((offset, value)) = unsafe { verify_and_zero(addr, n * size) } {
                report_write(span, w * 64 + first + offset / size, Some(b.cycle), offset % size, value);
            }
        }
        forget_lends(span, w, q);
        span.release_slots_in_word(w, q);
        let n = q.count_ones() as usize;
        OBJECTS.fetch_sub(n, Relaxed);
        BYTES.fetch_sub(n * size, SeqCst);
        released += n;
    }
    released
}

fn zero_slots(span: &Span, w: usize, bits: u64) {
    for (first, n) in runs(bits) {
        let addr = span.base() + (w * 64 + first) * span.slot_size;
        // SAFETY: quarantined slots of this span: dead, accessible (the
        // span is not protected now), used by nobody.
        unsafe { std::ptr::write_bytes(addr as *mut u8, 0, n * span.slot_size) };
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

/// Reports a write after free found at release: the word at `offset` of
/// slot `slot` of `span` holds `value`, not its poison. Ends the process
/// with exit status 2.
fn report_write(span: &'static Span, slot: usize, cycle: Option<u64>, offset: usize, value: u64) -> ! {
    let (base, size) = match span.kind {
        SpanKind::Large => (span.base(), span.large_size()),
        _ => (span.base() + slot * span.slot_size, span.slot_size),
    };
    let layout = span.layout();
    let lend = crate::ffi::lend::describe(span, slot);
    // The record says C received the pointer; the write came after the
    // collector freed the object, through a copy of its address.
    let who = if lend.is_some() { "C wrote into" } else { "a write into" };
    let freed = match cycle {
        Some(n) => format!("was freed by collection {n} (gc {n} in GODEBUG=gctrace=1)"),
        None => "was freed by the collector".to_owned(),
    };
    let mut msg = format!(
        "cgocheck: {who} a managed object freed by the collector (CGOCHECK=2 quarantine)\n\
         \x20 the {size}-byte object of type {} at {base:#x} {freed}\n\
         \x20 after that, the word at offset {offset} ({:#x}) was overwritten with {value:#x}\n",
        layout.elem,
        base + offset
    );
    match lend {
        Some(l) if l.pinned() => msg.push_str(&format!(
            "  it was last handed to C by {l}\n  fix: it was pinned then, but unpinned (or its Pinner dropped) \
             while C still kept the pointer and wrote through it. Keep it pinned for as long as C keeps the \
             pointer, or give C a Handle (cgocheck::Handle) instead.\n"
        )),
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

/// A thread about to run C code (a declared function's call), calling
/// `gc()`, or refilling a span of its cache: if slots of spans in thread
/// caches were quarantined since this thread last looked, it gives back
/// every span its cache holds, so that the ones left without a live object
/// are held and protected (before C runs, in the first case).
#[inline]
pub(crate) fn let_cached_spans_go() {
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
    let cycle = BATCHES.try_lock().ok().and_then(|list| cycle_in(&list, span, slot));
    Some(FaultSite { span, slot, quarantined, cycle })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_the_stretches_of_set_bits() {
        let all = |b: u64| runs(b).collect::<Vec<_>>();
        assert_eq!(all(0), []);
        assert_eq!(all(1), [(0, 1)]);
        assert_eq!(all(!0), [(0, 64)]);
        assert_eq!(all(0b1110_0110), [(1, 2), (5, 3)]);
        assert_eq!(all(1 << 63 | 1), [(0, 1), (63, 1)]);
        assert_eq!(all(!0 << 60), [(60, 4)]);
    }

    #[test]
    fn poison_names_each_word_and_a_changed_word_is_found_before_zeroing() {
        let mut buf = vec![0u64; 8];
        let addr = buf.as_mut_ptr() as usize;
        // SAFETY: `buf` is 64 bytes this test owns.
        unsafe { poison(addr, 64) };
        for (i, w) in buf.iter().enumerate() {
            assert_eq!(*w, (addr + i * 8) as u64 | POISON_TAG);
        }
        buf[5] = 99;
        // SAFETY: as above.
        assert_eq!(unsafe { verify_and_zero(addr, 64) }, Some((40, 99)));
        assert_eq!(buf[0], (addr as u64) | POISON_TAG, "nothing is zeroed when a word changed");
        // SAFETY: as above.
        unsafe { poison(addr, 64) };
        // SAFETY: as above.
        assert_eq!(unsafe { verify_and_zero(addr, 64) }, None);
        assert!(buf.iter().all(|&w| w == 0), "an intact range is zeroed");
    }
}

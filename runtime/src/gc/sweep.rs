//! Sweeping: freeing what the last mark found dead, with the world running.
//!
//! - `begin_cycle` (world stopped, marking done) walks every small and
//!   large span on the heap's lock-free list of all spans (`span.rs`) and
//!   records in each its dead slots: allocated, not marked, not pinned
//!   (`Span::prepare_sweep`), resetting the mark bits. A span with dead
//!   slots is left one sweep generation behind; the others are swept
//!   already. Then the generation moves on and the sweep cursor is put at
//!   the head of the list. Nothing is freed yet, and nothing here locks.
//! - A span is swept by whoever moves its `sweep_gen` from the previous
//!   generation to the current one with a CAS: exactly once per cycle,
//!   whoever gets there first. Sweepers take spans from the shared cursor:
//!   the background sweeper thread (woken after the world restarts),
//!   allocation (the heap's refill and large-object paths sweep some spans
//!   before they take fresh pages while a sweep is in progress), and
//!   [`finish_all`] (the collector before its next cycle, `gc()`).
//! - Sweeping a small span frees its dead slots with the heap's concurrent
//!   free protocol (`Heap::free_small_slots`: zero them, then set their
//!   freed bits with one SeqCst OR per 64 slots; a span its owner gave back
//!   full becomes partial; one all free that no cache holds is retired and
//!   its pages go to the free runs, reusable by any size class). A span in
//!   some thread's cache may be swept meanwhile: its owner sees the freed
//!   slots at its next claim of a word, as for any free. A dead large
//!   object's pages are given back to the kernel and its run filed for
//!   reuse.
//! - Spans made after `begin_cycle` start swept and are put at the list's
//!   head, before the cursor: the sweep never sees them.
//! - `IN_FLIGHT` counts sweepers between taking a span from the cursor and
//!   finishing its sweep (counted before they take it), so `finish_all`,
//!   having emptied the cursor, knows when the sweeps other threads took
//!   are done. Counting attempts, not spans, keeps it exact even for a span
//!   made by a plain thread while the world was stopped (it may look one
//!   generation behind, with no dead slots: its sweep frees nothing).
//! - At `CGOCHECK=2` the dead are not freed but poisoned and held in the
//!   quarantine (`quarantine.rs`), which frees them later.
//! - After a cycle's sweep, and every five seconds without one, the
//!   scavenger (`scavenge.rs`) gives free runs that stayed free back to
//!   the kernel.

use super::scavenge;
use crate::heap::heap;
use crate::heap::span::{first_span, for_each_span, state::RETIRED, Span, SpanKind};
use crate::heap::SCAVENGE_AFTER_MS;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex, OnceLock};

/// The sweep generation: one per cycle. A span whose `sweep_gen` is
/// `GEN - 1` still has dead slots to free; `GEN`: swept.
static GEN: AtomicU32 = AtomicU32::new(1);
/// Sweepers between taking a span and finishing it (module comment).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// The next span to look at.
static CURSOR: AtomicPtr<Span> = AtomicPtr::new(std::ptr::null_mut());
/// Spans an allocation sweeps before taking fresh pages.
const HELP_SPANS: usize = 16;
/// Spans an allocation looks at, at most, to find them.
const HELP_VISITS: usize = 256;

/// The current sweep generation (spans made now start swept for it).
#[inline]
pub(crate) fn current_gen() -> u32 {
    GEN.load(Acquire)
}

/// World stopped, marking done: records in each span which slots died
/// (allocated, unmarked, unpinned) and resets the mark bits. The slots are
/// freed later, by the background sweeper or by allocation.
pub(crate) fn begin_cycle() {
    let old = GEN.load(Relaxed);
    let new = old.wrapping_add(1);
    for_each_span(|span| {
        if span.kind == SpanKind::Stack {
            return;
        }
        // A retired small span has no live slot and no mark bit (a stale
        // pointer into it finds no allocated slot): nothing to prepare, and
        // its generation is set when it is reused (`Span::reuse_at`). After
        // a heap has shrunk most spans are retired: skipping their bitmaps
        // keeps this walk, done with the world stopped, short.
        if matches!(span.kind, SpanKind::Small { .. }) && span.state.load(Relaxed) == RETIRED {
            return;
        }
        let gen = if span.prepare_sweep() { old } else { new };
        span.sweep_gen.store(gen, Relaxed);
    });
    CURSOR.store(first_span().map_or(std::ptr::null_mut(), |s| s as *const Span as *mut Span), SeqCst);
    // Release: a sweeper that reads the new generation sees the dead bits.
    GEN.store(new, Release);
    super::mark::end_cycle();
}

/// Whether spans are left to sweep.
#[inline]
pub(crate) fn in_progress() -> bool {
    !CURSOR.load(Relaxed).is_null()
}

/// The next span from the cursor, for any sweeper.
fn next_span() -> Option<&'static Span> {
    let mut cur = CURSOR.load(Acquire);
    loop {
        // SAFETY: the cursor holds null or a span from the all-spans list;
        // spans are never freed.
        let span = unsafe { cur.as_ref() }?;
        let next = span.next_span().map_or(std::ptr::null_mut(), |s| s as *const Span as *mut Span);
        match CURSOR.compare_exchange_weak(cur, next, AcqRel, Acquire) {
            Ok(_) => return Some(span),
            Err(now) => cur = now,
        }
    }
}

/// Takes the next span from the cursor and sweeps it if it is still
/// unswept this generation (module comment). Returns None when the cursor
/// is empty, else whether this call swept the span.
fn sweep_next() -> Option<bool> {
    IN_FLIGHT.fetch_add(1, SeqCst);
    let swept = next_span().map(sweep_span);
    IN_FLIGHT.fetch_sub(1, SeqCst);
    swept
}

/// Sweeps `span` if it is still unswept this generation; returns whether
/// this call did.
fn sweep_span(span: &'static Span) -> bool {
    let gen = GEN.load(Acquire);
    if span.sweep_gen.compare_exchange(gen.wrapping_sub(1), gen, AcqRel, Relaxed).is_err() {
        return false;
    }
    let h = heap();
    if super::quarantine::active() {
        // `CGOCHECK=2`: the dead are poisoned and held, not freed.
        match span.kind {
            SpanKind::Small { .. } => {
                let dead: Vec<(usize, u64)> =
                    (0..span.dead_words()).map(|w| (w, span.take_dead(w))).filter(|&(_, d)| d != 0).collect();
                if !dead.is_empty() {
                    super::quarantine::take_small(span, gen, dead);
                }
            }
            SpanKind::Large => {
                if span.take_dead(0) != 0 {
                    super::quarantine::take_large(span, gen);
                }
            }
            SpanKind::Stack => {}
        }
        return true;
    }
    match span.kind {
        SpanKind::Small { .. } => {
            let mut freed = false;
            for w in 0..span.dead_words() {
                let dead = span.take_dead(w);
                if dead != 0 {
                    h.free_small_slots(span, w, dead);
                    freed = true;
                }
            }
            if freed {
                h.after_small_frees(span);
            }
        }
        SpanKind::Large => {
            if span.take_dead(0) != 0 {
                // False only if a `Heap::free` got there first (span.rs, `clear_dead`).
                h.free_large_object(span);
            }
        }
        SpanKind::Stack => {}
    }
    true
}

/// Allocation helps: sweeps up to a few spans that need it.
pub(crate) fn help() {
    let mut swept = 0;
    // Spans with nothing dead cost a failed CAS each; a bound on them too
    // keeps one allocation's share small.
    for _ in 0..HELP_VISITS {
        match sweep_next() {
            None => break,
            Some(true) => swept += 1,
            Some(false) => {}
        }
        if swept == HELP_SPANS {
            break;
        }
    }
    super::quarantine::hold_pending();
}

/// Sweeps every span still unswept (world running); returns when none is
/// left, then lets the scavenger release what stayed free.
pub(crate) fn finish_all() {
    while sweep_next().is_some() {}
    super::quarantine::hold_pending();
    // Spans other sweepers took may still be in progress, and at level 2
    // their quarantine batches not listed yet.
    while IN_FLIGHT.load(SeqCst) > 0 || super::quarantine::pending() {
        std::thread::yield_now();
    }
    scavenge::run();
}

/// Wakes the background sweeper after the world restarted (starting it
/// the first time), and makes sure the mark threads for the next cycle
/// exist (starting a thread allocates, which is not done while stopped).
pub(crate) fn wake_background() {
    super::mark::ensure_workers(super::pacer::mark_workers());
    static STARTED: OnceLock<()> = OnceLock::new();
    STARTED.get_or_init(|| {
        std::thread::Builder::new()
            .name("cgocheck-sweep".into())
            .spawn(background)
            .expect("cgocheck: cannot start the background sweeper thread");
    });
    *WAKE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
    WAKE_CV.notify_one();
}

/// Wake-ups asked for (the sweeper runs until it has seen them all).
static WAKE: Mutex<u64> = Mutex::new(0);
static WAKE_CV: Condvar = Condvar::new();

/// The background sweeper: sweeps everything after each cycle, then
/// scavenges; also scavenges every few seconds without cycles (free runs
/// are released after a while even when nothing allocates).
fn background() {
    let mut seen = 0;
    loop {
        let woken = {
            let w = WAKE.lock().unwrap_or_else(|e| e.into_inner());
            let period = std::time::Duration::from_millis(SCAVENGE_AFTER_MS);
            let (w, _) = WAKE_CV.wait_timeout_while(w, period, |w| *w == seen).unwrap_or_else(|e| e.into_inner());
            let woken = *w != seen;
            seen = *w;
            woken
        };
        if woken {
            finish_all();
        } else {
            scavenge::run();
        }
    }
}

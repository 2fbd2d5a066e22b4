//! Test hooks for the collector's heap side (`runtime/tests/gc_heap.rs`):
//! one mark-and-sweep from explicit roots, without stopping the world.
//! Not an API: the caller must make sure nothing else allocates or uses
//! unrooted managed memory meanwhile (the tests serialise themselves and
//! run inside one task).

use crate::gc::{mark, sweep};
use crate::sched::nopreempt::NoPreempt;

/// What one [`collect_from`] found and freed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    /// Bytes marked live.
    pub live_bytes: usize,
    /// Objects marked live.
    pub live_objects: usize,
    /// Threads that marked.
    pub workers: usize,
    /// Time the mark phase took (roots and drain), nanoseconds.
    pub mark_ns: u64,
}

/// Runs a cycle whose roots are `words`, scanned conservatively (as stack
/// words), and `precise`: `(addr, bits)` pairs scanned precisely (bit `i`:
/// the word at `addr + 8 i`). Checks `is_marked` on `probe` between mark
/// and sweep and returns the answers. The previous sweep is finished
/// first; this one is finished before returning (so dead objects are
/// freed).
pub fn collect_from(
    words: &[usize],
    precise: &[(usize, &bitvec::slice::BitSlice<u64, bitvec::order::Lsb0>)],
    pinned_roots: bool,
    workers: usize,
    probe: &[usize],
) -> (Collected, Vec<bool>) {
    sweep::finish_all();
    mark::ensure_workers(workers);
    let mut answers = vec![false; probe.len()];
    let (marked, mark_ns) = {
        // No preemption between mark and sweep setup (mark_cycle holds
        // the cycle until begin_cycle).
        let _np = NoPreempt::new();
        let roots = |m: &mut mark::Marker| {
            for &w in words {
                m.mark_word(w);
            }
            for &(addr, bits) in precise {
                // SAFETY: the test passes addresses of live memory with as
                // many readable words as its bits.
                unsafe { m.scan_with_bits(addr, bits) };
            }
            if pinned_roots {
                mark::mark_pinned(m);
            }
        };
        let start = std::time::Instant::now();
        let marked = mark::mark_cycle(&roots, workers);
        let mark_ns = start.elapsed().as_nanos() as u64;
        for (a, &p) in answers.iter_mut().zip(probe) {
            *a = mark::is_marked(p);
        }
        sweep::begin_cycle();
        (marked, mark_ns)
    };
    sweep::finish_all();
    let c = Collected {
        live_bytes: marked.live_bytes,
        live_objects: marked.live_objects,
        workers: marked.workers,
        mark_ns,
    };
    (c, answers)
}

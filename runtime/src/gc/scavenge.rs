//! Scavenging: giving free pages back to the kernel, so that resident
//! memory follows the live heap.
//!
//! The heap's free page runs (`heap/runs.rs`) come from small spans found
//! all free and from freed large objects. A large object's pages are given
//! back at once when it is freed; a small span's stay resident at first,
//! since the next allocations likely reuse them. A run still free two
//! cycles (sweep generations) and one second, or five seconds, after it
//! became free (the background sweeper looks every five seconds) is given
//! back with
//! `MADV_DONTNEED` (its pages read as zero when touched again, which is
//! what a reused run must hold), and a freed large object's span that
//! still owns its run (so that dangling pointers answered `Freed`) is
//! retired then, letting the run merge with its neighbours.
//!
//! The runs are taken off the free lists under the heap lock, released
//! without it, and filed back as released (`heap_released` in the heap's
//! counters). Runs after the sweep: the background sweeper and
//! `sweep::finish_all` call [`run`].

use crate::heap::heap;
use crate::heap::sizeclass::PAGE;

/// Releases the free runs that stayed free for two cycles.
pub(crate) fn run() {
    let h = heap();
    let Some(arena) = h.arena_if_reserved() else { return };
    let runs = h.central().take_scavengeable(arena);
    if runs.is_empty() {
        return;
    }
    for &(base, pages, released) in &runs {
        if !released {
            arena.discard(base, pages * PAGE);
        }
    }
    h.central().scavenged(arena, &runs);
}

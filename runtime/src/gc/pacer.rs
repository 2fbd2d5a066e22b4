//! Pacing: GOGC, GOMEMLIMIT. (Owner: control helper. Interface fixed; body to be written.)

/// Whether the heap reached the goal: a cycle should start.
#[inline]
pub(crate) fn over_goal() -> bool {
    false
}

/// Bytes of the heap in use now (estimate: live at the last mark plus
/// allocated since).
pub(crate) fn heap_live() -> usize {
    0
}

/// Threads to mark with (`GOMAXPROCS`, at most the CPUs).
pub(crate) fn mark_workers() -> usize {
    1
}

/// Marking found `live` bytes: sets the next goal and returns it.
pub(crate) fn end_cycle(live: usize) -> usize {
    live * 2
}

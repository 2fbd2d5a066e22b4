//! Sweeping. (Owner: heap-gc helper. Interface fixed; body to be written.)

/// World stopped, marking done: records in each span which slots died
/// (allocated, unmarked, unpinned) and resets the mark bits. The slots are
/// freed later, by the background sweeper or by allocation.
pub(crate) fn begin_cycle() {}

/// Sweeps every span still unswept (world running); returns when none is
/// left.
pub(crate) fn finish_all() {}

/// Wakes the background sweeper after the world restarted.
pub(crate) fn wake_background() {}

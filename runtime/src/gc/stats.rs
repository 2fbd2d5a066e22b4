//! Statistics and GODEBUG=gctrace. (Owner: control helper. Interface fixed; body to be written.)

use super::Trigger;
use std::time::{Duration, Instant};

/// One finished cycle, as the driver saw it.
#[allow(dead_code)]
pub(crate) struct Cycle {
    pub trigger: Trigger,
    pub start: Instant,
    pub stop: Duration,
    pub mark: Duration,
    pub restart: Duration,
    pub heap_before: usize,
    pub live: usize,
    pub live_objects: usize,
    pub goal: usize,
    pub workers: usize,
}

pub(crate) fn record_cycle(c: Cycle) {
    let _ = c;
}

/// The heap's and the collector's figures (Go's `runtime.MemStats`).
#[derive(Debug, Clone, Default)]
pub struct MemStats {
    /// Collections completed.
    pub num_gc: u64,
}

/// The current figures.
pub fn mem_stats() -> MemStats {
    MemStats::default()
}

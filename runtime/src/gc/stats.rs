//! The collector's figures: [`mem_stats`] (Go's `runtime.ReadMemStats`)
//! and the `GODEBUG=gctrace=1` line (decision 11).
//!
//! The driver hands every finished cycle to [`record_cycle`] after the
//! world has restarted; it is counted here, under a lock no one takes while
//! the world is stopped, and traced. [`mem_stats`] combines these counts
//! with the heap's own counters into a [`MemStats`] snapshot.
//!
//! ## The trace line
//!
//! With `GODEBUG=gctrace=1` each cycle prints one line on stderr, written
//! whole (one `write`) after the world has restarted — never while it is
//! stopped, when a stopped task may hold the stderr lock. In the spirit of
//! Go's (`runtime/extern.go` documents Go's; ours has no CPU breakdown
//! and no stack/globals sizes, and adds the mark workers):
//!
//! ```text
//! gc 3 @1.204s 1%: 0.012+1.8+0.004 ms clock, 48->50->21 MB, 42 MB goal, 2 P, 2 workers (forced)
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `gc 3` | the cycle number (1 for the first) |
//! | `@1.204s` | seconds since the runtime started |
//! | `1%` | the share of time since the start spent with the world stopped for the collector (every P stopped, so the share of the CPU given to it: `gc_cpu_fraction`) |
//! | `0.012+1.8+0.004 ms clock` | wall-clock milliseconds of stopping the world, marking (roots, heap, queueing cleanups, setting up the sweep), and restarting it; their sum is the pause |
//! | `48->50->21 MB` | the heap (live at the last cycle plus allocated since) when the cycle started, when marking ended, and the live heap marking found (MiB, rounded down as Go's) |
//! | `42 MB goal` | the heap size at which the next cycle starts (`GOGC`, `GOMEMLIMIT`); `no goal` when only `gc()` collects |
//! | `2 P` | `GOMAXPROCS` |
//! | `2 workers` | the threads that marked (`1 worker`) |
//! | `(forced)` | the cycle was requested by `cgocheck::gc()` |

use super::{pacer, Trigger};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One finished cycle, as the driver saw it.
pub(crate) struct Cycle {
    /// What started it.
    pub trigger: Trigger,
    /// When the collector began it (before stopping the world).
    pub start: Instant,
    /// Stopping the world.
    pub stop: Duration,
    /// Marking, queueing cleanups, setting up the sweep, pacing.
    pub mark: Duration,
    /// Restarting the world.
    pub restart: Duration,
    /// The heap estimate before the world stopped.
    pub heap_before: usize,
    /// Bytes marking found live.
    pub live: usize,
    /// Objects marking found live.
    pub live_objects: usize,
    /// The next goal.
    pub goal: usize,
    /// Threads that marked.
    pub workers: usize,
}

/// How many recent pauses [`MemStats::pause_ns`] keeps (Go's 256).
pub const PAUSES: usize = 256;

/// The collector's counts since the start.
struct Counts {
    num_gc: u64,
    num_forced_gc: u64,
    pause_total_ns: u64,
    max_pause_ns: u64,
    pause_ns: [u64; PAUSES],
    pause_end: [u64; PAUSES],
    last_gc: u64,
    live_objects: u64,
}

static COUNTS: Mutex<Counts> = Mutex::new(Counts {
    num_gc: 0,
    num_forced_gc: 0,
    pause_total_ns: 0,
    max_pause_ns: 0,
    pause_ns: [0; PAUSES],
    pause_end: [0; PAUSES],
    last_gc: 0,
    live_objects: 0,
});

/// The counts, locked. Never taken while the world is stopped, and nothing
/// panics while holding it (a poisoned lock is still consistent).
fn counts() -> MutexGuard<'static, Counts> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Nanoseconds since the Unix epoch (Go's `LastGC`, `PauseEnd` unit).
fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Counts a finished cycle and prints its trace line (world running).
pub(crate) fn record_cycle(c: Cycle) {
    let pause = c.stop + c.mark + c.restart;
    let pause_ns = pause.as_nanos() as u64;
    let (n, fraction) = {
        let mut k = counts();
        let i = k.num_gc as usize % PAUSES;
        k.pause_ns[i] = pause_ns;
        let end = unix_ns(SystemTime::now());
        k.pause_end[i] = end;
        k.last_gc = end;
        k.num_gc += 1;
        if c.trigger == Trigger::Forced {
            k.num_forced_gc += 1;
        }
        k.pause_total_ns += pause_ns;
        k.max_pause_ns = k.max_pause_ns.max(pause_ns);
        k.live_objects = c.live_objects as u64;
        (k.num_gc, cpu_fraction(k.pause_total_ns))
    };
    if crate::sched::config::config().gctrace {
        let line = trace_line(n, &c, since_start(c.start), fraction, pacer::heap_at_mark(), crate::sched::gomaxprocs());
        use std::io::Write;
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Time from the runtime's start to `t`.
fn since_start(t: Instant) -> Duration {
    t.saturating_duration_since(crate::sched::config::config().started)
}

/// The share of the time since the start spent stopped for the collector.
fn cpu_fraction(pause_total_ns: u64) -> f64 {
    let total = since_start(Instant::now()).as_nanos() as f64;
    if total == 0.0 {
        0.0
    } else {
        (pause_total_ns as f64 / total).min(1.0)
    }
}

/// Milliseconds, with three significant digits for short times (Go's
/// style: `0.012`, `1.80`, `24.5`, `310`).
fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 10.0 {
        format!("{ms:.2}")
    } else if ms < 100.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// The trace line of cycle `n` (module comment), newline included.
fn trace_line(n: u64, c: &Cycle, at: Duration, fraction: f64, heap_at_mark: usize, procs: usize) -> String {
    let mb = |b: usize| b >> 20;
    let goal = if c.goal == usize::MAX { "no".to_owned() } else { format!("{} MB", mb(c.goal)) };
    format!(
        "gc {n} @{:.3}s {}%: {}+{}+{} ms clock, {}->{}->{} MB, {goal} goal, {procs} P, {} worker{}{}\n",
        at.as_secs_f64(),
        (fraction * 100.0).round() as u64,
        ms(c.stop),
        ms(c.mark),
        ms(c.restart),
        mb(c.heap_before),
        mb(heap_at_mark),
        mb(c.live),
        c.workers,
        if c.workers == 1 { "" } else { "s" },
        if c.trigger == Trigger::Forced { " (forced)" } else { "" },
    )
}

/// The heap's and the collector's figures: Go's `runtime.MemStats`, the
/// fields the collector has (each named with Go's field).
#[derive(Debug, Clone)]
pub struct MemStats {
    /// `HeapAlloc`: bytes of allocated heap objects — live ones and dead
    /// ones not swept yet (`total_alloc` minus the bytes freed).
    pub heap_alloc: u64,
    /// `HeapSys`: bytes of the heap's object range obtained from the OS
    /// (handed out to spans so far, whether in use, idle or released).
    pub heap_sys: u64,
    /// `HeapIdle`: bytes of `heap_sys` in free page runs (Go also counts
    /// the free slots inside spans in use; these are not).
    pub heap_idle: u64,
    /// `HeapReleased`: bytes of `heap_idle` given back to the OS.
    pub heap_released: u64,
    /// `HeapObjects`: objects allocated and not yet freed (`mallocs`
    /// minus `frees`).
    pub heap_objects: u64,
    /// `TotalAlloc`: bytes allocated since the start (never decreases).
    pub total_alloc: u64,
    /// `Mallocs`: objects allocated since the start.
    pub mallocs: u64,
    /// `Frees`: objects freed since the start.
    pub frees: u64,
    /// `NumGC`: completed collections (Go's is 32 bits).
    pub num_gc: u64,
    /// `NumForcedGC`: completed collections requested by
    /// [`gc`](crate::gc()).
    pub num_forced_gc: u64,
    /// `PauseTotalNs`: nanoseconds the world was stopped for collections
    /// since the start.
    pub pause_total_ns: u64,
    /// `PauseNs`: recent pauses (stop + mark + restart) in nanoseconds, a
    /// ring: the latest is `pause_ns[(num_gc + 255) % 256]`.
    pub pause_ns: [u64; PAUSES],
    /// `PauseEnd`: when each pause of `pause_ns` ended, nanoseconds since
    /// the Unix epoch (same ring).
    pub pause_end: [u64; PAUSES],
    /// Not in Go: the longest pause since the start, in nanoseconds (the
    /// benchmarks' `*_max_pause_us`).
    pub max_pause_ns: u64,
    /// Not in Go: the objects the last collection found live (0: none
    /// yet).
    pub last_gc_live_objects: u64,
    /// Not in Go: allocations that waited for a collection because the
    /// heap was past its goal by more than a tenth (the pacer's assist:
    /// allocation outran the collector).
    pub assist_waits: u64,
    /// `LastGC`: when the last collection ended, nanoseconds since the Unix
    /// epoch (0: none yet).
    pub last_gc: u64,
    /// `NextGC`: the heap size at which the next collection starts
    /// (`u64::MAX` when only `gc()` collects: `GOGC=off`, no limit).
    pub next_gc: u64,
    /// `GCCPUFraction`: the share of the time since the start spent with
    /// the world stopped for the collector, between 0 and 1. Every P is
    /// stopped then, so it is also the share of the available CPU (the
    /// background sweeper's time is not counted).
    pub gc_cpu_fraction: f64,
    /// Not in Go: the `CGOCHECK=2` quarantine (all zero at levels 0 and 1).
    pub quarantine: super::QuarantineStats,
}

impl Default for MemStats {
    /// All zero (the figures of a runtime that has allocated nothing).
    fn default() -> MemStats {
        MemStats {
            heap_alloc: 0,
            heap_sys: 0,
            heap_idle: 0,
            heap_released: 0,
            heap_objects: 0,
            total_alloc: 0,
            mallocs: 0,
            frees: 0,
            num_gc: 0,
            num_forced_gc: 0,
            pause_total_ns: 0,
            pause_ns: [0; PAUSES],
            pause_end: [0; PAUSES],
            max_pause_ns: 0,
            last_gc_live_objects: 0,
            assist_waits: 0,
            last_gc: 0,
            next_gc: 0,
            gc_cpu_fraction: 0.0,
            quarantine: super::QuarantineStats::default(),
        }
    }
}

/// The current figures. Counters are read one by one while the program
/// runs, so a snapshot taken while tasks allocate is only approximately
/// consistent (Go's `ReadMemStats` stops the world instead). The heap's
/// running totals count allocations per span a thread cache gives back
/// (and per large object); the objects taken from spans still in caches
/// are added here, from every such span's bitmaps (a walk of the spans,
/// as Go's `ReadMemStats` flushes every cache).
pub fn mem_stats() -> MemStats {
    let k = counts();
    let mut s = MemStats {
        num_gc: k.num_gc,
        num_forced_gc: k.num_forced_gc,
        pause_total_ns: k.pause_total_ns,
        pause_ns: k.pause_ns,
        pause_end: k.pause_end,
        max_pause_ns: k.max_pause_ns,
        last_gc_live_objects: k.live_objects,
        assist_waits: super::ASSISTS.load(std::sync::atomic::Ordering::Relaxed),
        last_gc: k.last_gc,
        gc_cpu_fraction: cpu_fraction(k.pause_total_ns),
        quarantine: super::quarantine::stats(),
        ..MemStats::default()
    };
    drop(k);
    let goal = pacer::goal();
    s.next_gc = if goal == usize::MAX { u64::MAX } else { goal as u64 };
    let h = crate::heap::counters();
    // Objects taken from spans still in thread caches, which the running
    // totals count only when the span is given back.
    let (cached_objects, cached_bytes) = crate::heap::counters::cached_allocations();
    let (total_alloc, mallocs) = (h.total_alloc + cached_bytes, h.mallocs + cached_objects);
    s.heap_alloc = total_alloc.saturating_sub(h.freed);
    s.heap_sys = h.heap_sys;
    s.heap_idle = h.heap_idle;
    s.heap_released = h.heap_released;
    s.heap_objects = mallocs.saturating_sub(h.frees);
    s.total_alloc = total_alloc;
    s.mallocs = mallocs;
    s.frees = h.frees;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(trigger: Trigger, goal: usize) -> Cycle {
        Cycle {
            trigger,
            start: Instant::now(),
            stop: Duration::from_micros(12),
            mark: Duration::from_micros(1800),
            restart: Duration::from_micros(4),
            heap_before: 48 << 20,
            live: (21 << 20) + 5,
            live_objects: 1000,
            goal,
            workers: 2,
        }
    }

    #[test]
    fn the_trace_line_has_gos_shape() {
        let c = cycle(Trigger::Forced, 42 << 20);
        let line = trace_line(3, &c, Duration::from_millis(1204), 0.012, 50 << 20, 2);
        assert_eq!(
            line,
            "gc 3 @1.204s 1%: 0.012+1.80+0.004 ms clock, 48->50->21 MB, 42 MB goal, 2 P, 2 workers (forced)\n"
        );
        let mut c = cycle(Trigger::Heap, usize::MAX);
        c.workers = 1;
        let line = trace_line(4, &c, Duration::from_secs(2), 0.0, 50 << 20, 1);
        assert_eq!(line, "gc 4 @2.000s 0%: 0.012+1.80+0.004 ms clock, 48->50->21 MB, no goal, 1 P, 1 worker\n");
    }

    #[test]
    fn milliseconds_keep_three_significant_digits() {
        let f = |us: u64| ms(Duration::from_micros(us));
        assert_eq!(f(4), "0.004");
        assert_eq!(f(250), "0.250");
        assert_eq!(f(1800), "1.80");
        assert_eq!(f(24_510), "24.5");
        assert_eq!(f(310_400), "310");
    }
}

//! Pacing: when the next collection starts (`GOGC`, `GOMEMLIMIT`), how
//! many threads mark, and the fatal out-of-memory report (decision 10).
//!
//! After each cycle the pacer sets the **goal**, the heap size at which the
//! next cycle starts, from what marking found live (Go's
//! `gcControllerState.heapGoal`, without the concurrent-mark slack: our
//! mark stops the world, so the trigger is the goal itself):
//!
//! ```text
//! goal = max(live × (1 + GOGC/100), 4 MiB × GOGC/100)     (GOGC off: no goal)
//! goal = min(goal, GOMEMLIMIT)                              (with a limit)
//! ```
//!
//! The 4 MiB floor (scaled by `GOGC`, as Go's `heapMinimum`) keeps a small
//! program from collecting constantly; `GOGC=0` has no floor and collects
//! whenever the heap grows (Go's meaning). With `GOGC=off` and a limit, the
//! collector runs only when the heap reaches the limit (Go's "memory limit
//! only" mode); with neither, only `gc()` collects.
//!
//! `GOMEMLIMIT` here counts the bytes of heap objects (live, and dead but
//! not yet swept), not task stacks nor the runtime's own memory as Go's
//! does, and it is hard: Go's limit is soft (it collects harder, at most
//! half the CPU, and lets the heap pass the limit), but a heap whose live
//! objects alone exceed the limit after a full collection cannot meet it,
//! and that is a fatal report ([`out_of_memory`]'s, decision 10), as is an
//! allocation the heap cannot serve even after a forced collection.
//!
//! The heap's size between cycles is an estimate, Go's `heapLive`: what the
//! last mark found live plus everything allocated since (the heap's
//! running count of bytes handed out, [`allocated`]; it lags by at most
//! the unused part of one span per thread cache entry). Objects that die
//! meanwhile are counted until the next mark.
//!
//! Past the goal by a tenth of it ([`over_hard_goal`]), an allocating task
//! waits for the cycle it asked for: the world stop and its sweep take
//! time, and many allocating tasks would otherwise take the heap far past
//! its goal meanwhile (Go's mutator assists do this job for its concurrent
//! mark).
//!
//! Cost on the allocation path: [`over_goal`] reads the heap's counters
//! (relaxed loads, no lock) and the cached trigger (the counter value at
//! which the heap reaches the goal), and compares; it is called only from
//! the heap's slow paths, never on the fast path.

use crate::sched::config::config;
use cgocheck_traceback::{write_fd, FixedBuf};
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Go's `defaultHeapMinimum`: the smallest goal at `GOGC=100` (scaled by
/// `GOGC/100` for other values).
pub(crate) const HEAP_MINIMUM: usize = 4 << 20;

/// What the last mark found live, in bytes.
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// [`allocated`] when the last mark ended.
static BASE: AtomicUsize = AtomicUsize::new(0);
/// The goal set by the last cycle (before any cycle: the first goal).
static GOAL: AtomicUsize = AtomicUsize::new(HEAP_MINIMUM);
/// The value of [`allocated`] at which the heap reaches the goal:
/// `BASE + GOAL - LIVE`; `usize::MAX` when the collector is off. Until
/// [`settings`] are first read it is the default first goal; the first
/// time it is passed, [`over_goal`] reads them and sets it for real.
static TRIGGER: AtomicUsize = AtomicUsize::new(HEAP_MINIMUM);
/// The value of [`allocated`] past which an allocating task waits for the
/// cycle it asked for ([`over_hard_goal`]): the trigger plus a tenth of
/// the goal (at least [`ASSIST_SLACK_MIN`]); `usize::MAX` with no goal.
static HARD_TRIGGER: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The least slack past the goal before allocation waits: what a few
/// thread caches may hold in spans not yet counted.
const ASSIST_SLACK_MIN: usize = 1 << 20;
/// The heap estimate when the last mark ended (before it was replaced by
/// the live size): gctrace's middle figure.
static HEAP_AT_MARK: AtomicUsize = AtomicUsize::new(0);

/// Bytes the heap has handed out since the process started (never
/// decreases; Go's `TotalAlloc`), from its counters (`heap/counters.rs`:
/// counted per span a thread cache gives back and per large object, as Go
/// counts `heapLive` per span at `mcache.refill`).
#[inline]
pub(crate) fn allocated() -> usize {
    crate::heap::counters().total_alloc as usize
}

/// The pacing settings, read once.
struct Settings {
    gogc: Option<u32>,
    limit: Option<usize>,
}

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let c = config();
        let limit = c.memory_limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
        let s = Settings { gogc: c.gogc, limit };
        // The first goal (no live heap yet).
        let goal = goal_for(0, s.gogc, s.limit);
        GOAL.store(goal, Ordering::Relaxed);
        TRIGGER.store(goal, Ordering::Relaxed);
        HARD_TRIGGER.store(hard_trigger_for(goal, goal), Ordering::Relaxed);
        s
    })
}

/// The goal for a live heap of `live` bytes (module comment): `usize::MAX`
/// when nothing but `gc()` collects.
pub(crate) fn goal_for(live: usize, gogc: Option<u32>, limit: Option<usize>) -> usize {
    let by_gogc = match gogc {
        None => usize::MAX,
        Some(pct) => {
            let grown = live as u128 * (100 + pct as u128) / 100;
            let floor = HEAP_MINIMUM as u128 * pct as u128 / 100;
            usize::try_from(grown.max(floor)).unwrap_or(usize::MAX)
        }
    };
    match limit {
        Some(l) => by_gogc.min(l),
        None => by_gogc,
    }
}

/// Whether the heap reached the goal: a cycle should start.
#[inline]
pub(crate) fn over_goal() -> bool {
    allocated() >= TRIGGER.load(Ordering::Relaxed) && over_goal_configured()
}

/// [`over_goal`] past the cached trigger: the first time, the trigger was
/// only the default; read the configuration and compare again.
#[cold]
fn over_goal_configured() -> bool {
    settings();
    allocated() >= TRIGGER.load(Ordering::Relaxed)
}

/// Bytes of the heap in use now (estimate: live at the last mark plus
/// allocated since).
pub(crate) fn heap_live() -> usize {
    let since = allocated().saturating_sub(BASE.load(Ordering::Relaxed));
    LIVE.load(Ordering::Relaxed).saturating_add(since)
}

/// The goal the last cycle set (Go's `NextGC`); `usize::MAX` when only
/// `gc()` collects.
pub(crate) fn goal() -> usize {
    settings();
    GOAL.load(Ordering::Relaxed)
}

/// The heap estimate when the last mark ended.
pub(crate) fn heap_at_mark() -> usize {
    HEAP_AT_MARK.load(Ordering::Relaxed)
}

/// The CPUs this process may use.
fn cpus() -> usize {
    static CPUS: OnceLock<usize> = OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Threads to mark with (`GOMAXPROCS`, at most the CPUs).
pub(crate) fn mark_workers() -> usize {
    crate::sched::gomaxprocs().min(cpus()).max(1)
}

/// Marking found `live` bytes: sets the next goal and returns it. World
/// stopped (nothing allocates): the counter read here is the one the
/// estimate restarts from. A live heap above `GOMEMLIMIT` cannot meet it:
/// fatal ([`out_of_memory`]'s report; it neither allocates nor locks).
pub(crate) fn end_cycle(live: usize) -> usize {
    let s = settings();
    HEAP_AT_MARK.store(heap_live(), Ordering::Relaxed);
    if let Some(limit) = s.limit {
        if live > limit {
            fatal(None, live);
        }
    }
    let goal = goal_for(live, s.gogc, s.limit);
    let base = allocated();
    LIVE.store(live, Ordering::Relaxed);
    BASE.store(base, Ordering::Relaxed);
    GOAL.store(goal, Ordering::Relaxed);
    let trigger = trigger_for(base, live, goal);
    TRIGGER.store(trigger, Ordering::Relaxed);
    HARD_TRIGGER.store(hard_trigger_for(trigger, goal), Ordering::Relaxed);
    goal
}

/// [`HARD_TRIGGER`] for a trigger and its goal.
fn hard_trigger_for(trigger: usize, goal: usize) -> usize {
    if trigger == usize::MAX {
        usize::MAX
    } else {
        trigger.saturating_add((goal / 10).max(ASSIST_SLACK_MIN))
    }
}

/// Whether the heap is past its goal by more than the slack: the cycle
/// that should have started at the goal has not finished, and allocation
/// outruns it (a stopping of the world waits for a sweep to finish and for
/// every task to reach a safepoint, and other tasks allocate meanwhile).
/// The allocating task then waits for that cycle (`gc::alloc_slow_path`),
/// as Go's mutator assists hold allocation back: the heap stays within
/// about a tenth over its goal instead of growing without bound under
/// many allocating tasks.
#[inline]
pub(crate) fn over_hard_goal() -> bool {
    allocated() >= HARD_TRIGGER.load(Ordering::Relaxed)
}

/// The value of the heap's allocation counter at which the heap reaches
/// `goal`, when the counter read `base` at a mark that found `live` bytes
/// (the estimate is `live + counter - base`); never for no goal.
fn trigger_for(base: usize, live: usize, goal: usize) -> usize {
    if goal == usize::MAX {
        usize::MAX
    } else {
        base.saturating_add(goal.saturating_sub(live))
    }
}

/// The heap cannot serve a request of `requested` bytes even after a
/// forced collection (its range is exhausted, or the request would take it
/// past `GOMEMLIMIT`): prints `fatal error: out of memory: ...` naming the
/// request, the heap's size, the live size and the limit, and exits with
/// status 2. Neither allocates nor takes a lock, so it may be called
/// anywhere, with the world stopped too.
pub(crate) fn out_of_memory(requested: usize) -> ! {
    fatal(Some(requested), LIVE.load(Ordering::Relaxed))
}

/// The report of [`out_of_memory`] (`requested`: an allocation) or of a
/// live heap above the limit (`None`).
fn fatal(requested: Option<usize>, live: usize) -> ! {
    let mut b = FixedBuf::<512>::new();
    let _ = match requested {
        Some(n) => write!(b, "fatal error: out of memory: cannot allocate {n} bytes"),
        None => write!(b, "fatal error: out of memory: the live heap does not fit under GOMEMLIMIT"),
    };
    let _ = write!(b, " (heap {} bytes in use, {live} bytes live after the last collection, GOMEMLIMIT ", heap_live());
    let _ = match settings().limit {
        Some(l) => write!(b, "{l} bytes)"),
        None => write!(b, "off)"),
    };
    let _ = match requested {
        Some(_) => writeln!(b, "; keep fewer objects alive, or raise GOMEMLIMIT if it is set"),
        None => writeln!(b, "; keep fewer objects alive or raise GOMEMLIMIT"),
    };
    write_fd(2, b.as_bytes());
    // SAFETY: _exit ends the process at once; nothing is required of the
    // caller (no destructors or atexit handlers run, which is the point: a
    // stopped task may hold the locks they would take).
    unsafe { libc::_exit(2) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    #[test]
    fn goal_is_live_grown_by_gogc_with_a_scaled_floor() {
        assert_eq!(goal_for(0, Some(100), None), 4 * MIB, "the floor");
        assert_eq!(goal_for(3 * MIB, Some(100), None), 6 * MIB);
        assert_eq!(goal_for(10 * MIB, Some(100), None), 20 * MIB);
        assert_eq!(goal_for(10 * MIB, Some(50), None), 15 * MIB);
        assert_eq!(goal_for(10 * MIB, Some(300), None), 40 * MIB);
        assert_eq!(goal_for(MIB, Some(200), None), 8 * MIB, "floor scales with GOGC, as Go's heapMinimum");
        assert_eq!(goal_for(MIB, Some(50), None), 2 * MIB);
        assert_eq!(goal_for(5 * MIB, Some(0), None), 5 * MIB, "GOGC=0: no floor, collect on any growth");
        assert_eq!(goal_for(0, Some(0), None), 0);
    }

    #[test]
    fn goal_saturates_instead_of_overflowing() {
        assert_eq!(goal_for(usize::MAX / 2, Some(i32::MAX as u32), None), usize::MAX);
        assert_eq!(goal_for(usize::MAX, Some(100), Some(64 * MIB)), 64 * MIB);
    }

    #[test]
    fn off_means_no_goal_unless_a_limit() {
        assert_eq!(goal_for(100 * MIB, None, None), usize::MAX);
        assert_eq!(goal_for(100 * MIB, None, Some(512 * MIB)), 512 * MIB, "memory-limit-only mode");
    }

    #[test]
    fn the_trigger_is_where_the_estimate_reaches_the_goal() {
        // 10 MiB live when the counter read 100 MiB; goal 20 MiB: the
        // estimate reaches it after 10 MiB more.
        assert_eq!(trigger_for(100 * MIB, 10 * MIB, 20 * MIB), 110 * MIB);
        assert_eq!(trigger_for(100 * MIB, 10 * MIB, 10 * MIB), 100 * MIB, "GOGC=0: at once");
        assert_eq!(trigger_for(5, 0, usize::MAX), usize::MAX, "no goal, no trigger");
        assert_eq!(trigger_for(usize::MAX - 1, 0, 10), usize::MAX, "saturates");
    }

    #[test]
    fn the_limit_lowers_the_goal() {
        assert_eq!(goal_for(40 * MIB, Some(100), Some(64 * MIB)), 64 * MIB);
        assert_eq!(goal_for(20 * MIB, Some(100), Some(64 * MIB)), 40 * MIB, "below the limit: GOGC's goal");
        assert_eq!(goal_for(0, Some(100), Some(MIB)), MIB, "the floor too");
    }
}

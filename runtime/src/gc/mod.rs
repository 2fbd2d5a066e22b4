//! The collector: a non-moving, stop-the-world mark-sweep over the managed
//! heap, Go's `runtime/mgc.go` rebuilt for this runtime.
//!
//! One cycle, in order (the driver is [`collect`], run by the collector
//! thread, `cgocheck-gc`, never by a task):
//!
//! 1. **Finish the last sweep** (`sweep.rs`) while the world runs: every
//!    span freed by the previous cycle is swept before its mark bits are
//!    reused.
//! 2. **Stop the world** (`stw.rs`): every P is stopped. A task running
//!    managed code stops at its next safepoint (allocation slow path,
//!    yield/park/sleep/channel, spawn, C call entry and exit) or is
//!    preempted by a signal (`preempt.rs`); a task in C is stopped already —
//!    the collector never waits for C, and a C call that returns (or a
//!    callback that arrives) meanwhile waits in exitsyscall's slow path.
//! 3. **Mark** (`mark.rs`): from the roots (`roots.rs`: task stacks and
//!    saved registers, conservatively; managed globals, precisely; pinned
//!    objects; live Handles; what the runtime keeps in Rust memory for
//!    tasks — unstarted closures, join results, channel buffers, task
//!    locals; [`Root`]s; cleanup arguments), then through the heap
//!    precisely, from each span's pointer bitmap, on up to `GOMAXPROCS`
//!    threads.
//! 4. **Cleanups** (`cleanup.rs`) of objects found unreachable are queued.
//! 5. **Set up the sweep**: each span learns which of its slots died
//!    (allocated, not marked, not pinned); the slots are freed later (at
//!    `CGOCHECK=2` poisoned and held in the quarantine first,
//!    `quarantine.rs`).
//! 6. **Pace** (`pacer.rs`): the next cycle starts when the heap reaches
//!    `live × (1 + GOGC/100)`, or earlier under `GOMEMLIMIT`.
//! 7. **Start the world**, then count the cycle (`stats.rs`, `GODEBUG=gctrace=1`),
//!    wake the background sweeper and the cleanup task.
//!
//! Collections are requested by allocation (the heap's slow paths call
//! [`alloc_slow_path`]) and by [`gc`]. The rule the collector lives by: nothing reachable
//! from a root is ever freed. Rust memory the user owns (a `Box`, a `Vec`,
//! a plain `static`, a thread that is not running a task) is not a root; a
//! `Gc` kept there needs a [`Root`].
//!
//! Nothing the collector does while the world is stopped may take a lock
//! that a stopped task can hold: runtime locks are never held across a
//! safepoint, and code holding one is not preempted (`NoPreempt`,
//! `sched/nopreempt.rs`); the collector does not allocate Rust memory or
//! print while the world is stopped.

mod cleanup;
pub(crate) mod mark;
pub(crate) mod pacer;
pub(crate) mod preempt;
pub(crate) mod quarantine;
mod root;
pub(crate) mod roots;
mod scavenge;
mod stats;
pub(crate) mod stw;
pub(crate) mod sweep;

pub use cleanup::{add_cleanup, Cleanup};
#[doc(hidden)]
pub use preempt::{preempt_running_for_test, with_no_preempt};
pub use preempt::{preempt_stats, PreemptStats};
pub use quarantine::QuarantineStats;
pub use root::Root;
pub use stats::{mem_stats, MemStats};
#[doc(hidden)]
pub use stw::{with_world_stopped, StoppedWorld};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

/// Why a cycle ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// The heap reached the pacer's goal.
    Heap,
    /// [`gc`] was called.
    Forced,
}

/// Requests and completions, under one lock.
struct Requests {
    /// Cycles requested so far (a request for cycle `n` is satisfied when
    /// `done >= n`).
    wanted: u64,
    /// Cycles the collector has taken up: cycle `started` may be marking
    /// already, or done marking, so it cannot answer a new request.
    started: u64,
    /// Cycles completed.
    done: u64,
    /// The trigger of the cycle `wanted` names.
    trigger: Trigger,
}

static REQUESTS: Mutex<Requests> = Mutex::new(Requests { wanted: 0, started: 0, done: 0, trigger: Trigger::Heap });
/// Signalled when `wanted` grows (the collector waits on it) and when
/// `done` grows (callers of `gc` wait on it).
static REQUESTS_CV: Condvar = Condvar::new();
static COLLECTOR: OnceLock<()> = OnceLock::new();

fn requests() -> MutexGuard<'static, Requests> {
    REQUESTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Asks for a cycle; returns the number that satisfies the request.
///
/// For the heap's trigger, any cycle not yet finished serves: it collects,
/// which is all the goal asks for. For [`gc`] a cycle requested and not yet
/// taken up by the collector serves too, but one already taken up does not
/// (its mark may be over, and what became unreachable since would survive
/// it): the request is for the next.
fn request(trigger: Trigger) -> u64 {
    COLLECTOR.get_or_init(|| {
        std::thread::Builder::new()
            .name("cgocheck-gc".into())
            .spawn(collector)
            .expect("cgocheck: cannot start the collector thread");
    });
    let mut r = requests();
    if trigger == Trigger::Heap && r.wanted > r.done {
        return r.wanted;
    }
    if r.wanted <= r.started {
        r.wanted = r.started + 1;
        r.trigger = trigger;
        REQUESTS_CV.notify_all();
    } else if trigger == Trigger::Forced {
        r.trigger = Trigger::Forced;
    }
    r.wanted
}

/// Waits until cycle `n` has completed. From a task this is a blocking
/// call made like a C call (its P can be stopped meanwhile); elsewhere it
/// blocks the thread.
fn wait_for(n: u64) {
    stw::blocking(|| {
        let mut r = requests();
        while r.done < n {
            r = REQUESTS_CV.wait(r).unwrap_or_else(|e| e.into_inner());
        }
    });
}

/// Runs a full collection and returns when it is complete, like Go's
/// `runtime.GC()`: every object unreachable when it started is freed by
/// the time it returns (swept), and the cleanups of those objects are
/// queued. Callable from a task or from any thread.
pub fn gc() {
    crate::sched::schedule::ensure_started();
    let n = request(Trigger::Forced);
    wait_for(n);
    stw::blocking(sweep::finish_all);
    if quarantine::active() {
        // What this cycle quarantined in this thread's cached spans can be
        // protected once the thread lets them go.
        quarantine::let_cached_spans_go();
    }
}

/// Called by the heap's allocation slow paths (a span refill, a large
/// object) on a task: starts a cycle when the heap reached its goal, and is
/// a safepoint.
pub(crate) fn alloc_slow_path() {
    if pacer::over_goal() {
        let n = request(Trigger::Heap);
        if pacer::over_hard_goal() {
            // Past the goal by more than the slack: wait for the cycle
            // (`pacer::over_hard_goal`).
            ASSISTS.fetch_add(1, Ordering::Relaxed);
            wait_for(n);
        }
    }
    stw::safepoint();
}

/// Allocations that waited for a cycle because the heap was past its goal
/// by more than the slack ([`MemStats::assist_waits`]).
pub(crate) static ASSISTS: AtomicU64 = AtomicU64::new(0);

/// The collector thread: one cycle per request, for ever.
fn collector() {
    loop {
        let (n, trigger) = {
            let mut r = requests();
            while r.wanted <= r.done {
                r = REQUESTS_CV.wait(r).unwrap_or_else(|e| e.into_inner());
            }
            // Requests from now on are for the cycle after this one.
            r.started = r.wanted;
            (r.wanted, r.trigger)
        };
        collect(trigger);
        let mut r = requests();
        r.done = n;
        REQUESTS_CV.notify_all();
    }
}

/// One cycle (module comment).
fn collect(trigger: Trigger) {
    sweep::finish_all();
    let start = Instant::now();
    let heap_before = pacer::heap_live();
    stw::stop_the_world();
    let stopped = Instant::now();
    let marked = mark::mark_cycle(&roots::mark_roots, pacer::mark_workers());
    cleanup::after_mark();
    sweep::begin_cycle();
    let goal = pacer::end_cycle(marked.live_bytes);
    let marked_at = Instant::now();
    stw::start_the_world();
    let end = Instant::now();
    stats::record_cycle(stats::Cycle {
        trigger,
        start,
        stop: stopped - start,
        mark: marked_at - stopped,
        restart: end - marked_at,
        heap_before,
        live: marked.live_bytes,
        live_objects: marked.live_objects,
        goal,
        workers: marked.workers,
    });
    sweep::wake_background();
    cleanup::wake_runner();
}

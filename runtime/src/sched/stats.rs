//! A snapshot of the scheduler's counters, for tests and tools: per M the
//! C-call counters (Go's `ncgocall` and `ncgo`), and the global picture
//! (tasks, queued tasks, idle Ps, Ps in C, retakes, the crossing
//! protocol's barrier).
//!
//! Counters are read one by one without stopping anything, so a snapshot
//! taken while tasks run is only approximately consistent; at rest (all
//! tasks finished) it is exact.

use super::m::{current_m, for_each_m};
use super::p;
use super::schedule::SCHED;
use super::task;
use std::sync::atomic::Ordering;

/// One M's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MStats {
    /// The M's id (1-based).
    pub id: u64,
    /// C calls this M has made (Go's `m.ncgocall`).
    pub ncgocall: u64,
    /// C calls in progress on this M (Go's `m.ncgo`): 0 or 1 without
    /// callbacks.
    pub ncgo: u32,
    /// The C call in progress was declared `nocallback`.
    pub nocallback: bool,
    /// Its task is in C right now (Go's `m.incgo`): false while a callback
    /// from that C call runs managed code.
    pub incgo: bool,
    /// The top of its g0 scratch area (Go's `m.g0.sched.sp`): constant for
    /// the M's life except while callbacks from C run on it, which lower it
    /// below their C frames and restore it on return or panic.
    pub g0_sp: usize,
    /// The task running on it, if any.
    pub task: Option<u64>,
    /// It holds a P.
    pub has_p: bool,
    /// It is the M of a `run` call (the caller's thread).
    pub run_thread: bool,
    /// Its thread has ended.
    pub dead: bool,
    /// An extra M: one lent to threads C created, for their callbacks.
    pub extra: bool,
}

/// The scheduler's counters.
#[derive(Debug, Clone)]
pub struct Stats {
    /// `GOMAXPROCS`.
    pub gomaxprocs: usize,
    /// Tasks started and not finished.
    pub tasks: usize,
    /// Runnable tasks waiting for their turn (new ones, and started ones
    /// waiting for their thread).
    pub runnable: usize,
    /// Idle Ps.
    pub idle_ps: usize,
    /// Ps whose M is in C.
    pub ps_in_c: usize,
    /// Ps the monitor has taken from Ms in C, ever.
    pub retakes: u64,
    /// Extra Ms bound to a thread C created right now (one per such thread
    /// that has called managed code and not yet exited); 0 at rest.
    pub extra_ms_bound: usize,
    /// The crossing protocol's barrier (`CGOCHECK_BARRIER`): `membarrier`,
    /// or a fence on every return from C where the kernel refuses it.
    pub barrier: super::crossing::Barrier,
    /// Process-wide barriers issued by the collector, the monitor and
    /// `set_gomaxprocs` to take or stop Ps whose M was in C.
    pub barriers: u64,
    /// Every M, newest first.
    pub ms: Vec<MStats>,
}

impl Stats {
    /// C calls made by all Ms.
    pub fn cgocalls(&self) -> u64 {
        self.ms.iter().map(|m| m.ncgocall).sum()
    }

    /// C calls in progress on all Ms.
    pub fn in_c(&self) -> u32 {
        self.ms.iter().map(|m| m.ncgo).sum()
    }

    /// Extra Ms ever created (bound or waiting in the free list for the
    /// next thread C creates): at most the number of such threads alive at
    /// once.
    pub fn extra_ms(&self) -> usize {
        self.ms.iter().filter(|m| m.extra).count()
    }
}

fn m_stats(m: &super::m::M) -> MStats {
    MStats {
        id: m.id,
        ncgocall: m.ncgocall.load(Ordering::Relaxed).wrapping_sub(m.uncounted.load(Ordering::Relaxed)),
        ncgo: m.ncallback.load(Ordering::Relaxed) + u32::from(m.incgo.load(Ordering::Relaxed)),
        nocallback: !m.nocallback.load(Ordering::Relaxed).is_null(),
        incgo: m.incgo.load(Ordering::Relaxed),
        g0_sp: m.g0_sp.load(Ordering::Relaxed),
        task: m.curg().map(|g| g.id()),
        has_p: m.p().is_some(),
        run_thread: m.run_thread,
        dead: m.dead.load(Ordering::Relaxed),
        extra: m.extra,
    }
}

/// A snapshot of the scheduler's counters (starts the runtime if needed).
pub fn stats() -> Stats {
    super::schedule::ensure_started();
    let mut ms = Vec::new();
    for_each_m(|m| ms.push(m_stats(m)));
    let gomaxprocs = SCHED.gomaxprocs.load(Ordering::SeqCst);
    let ps_in_c = (0..gomaxprocs).filter_map(p::allp).filter(|&p| super::crossing::in_c(p).is_some()).count();
    Stats {
        gomaxprocs,
        tasks: task::LIVE.load(Ordering::Relaxed) + extra_callbacks_running(),
        runnable: SCHED.nrunnable.load(Ordering::Relaxed),
        idle_ps: SCHED.npidle.load(Ordering::SeqCst),
        ps_in_c,
        retakes: SCHED.retakes.load(Ordering::Relaxed),
        extra_ms_bound: super::m::EXTRA_BOUND.load(Ordering::SeqCst),
        barrier: super::crossing::barrier_kind(),
        barriers: super::crossing::barriers_issued(),
        ms,
    }
}

/// Callbacks running on extra Ms (threads C created): their tasks are not
/// counted in `task::LIVE` (`callback.rs`), but are live while not `DEAD`.
fn extra_callbacks_running() -> usize {
    let mut n = 0;
    for_each_m(|m| {
        if m.extra
            && m.curg()
                .is_some_and(|g| !matches!(g.status.load(Ordering::Relaxed), task::status::DEAD | task::status::FREE))
        {
            n += 1;
        }
    });
    n
}

/// The counters of the M running the caller (None on a thread that is not
/// an M). From a task, the M can change at any yield or C call.
pub fn current_m_stats() -> Option<MStats> {
    // SAFETY: Ms are never freed.
    unsafe { current_m().as_ref() }.map(m_stats)
}

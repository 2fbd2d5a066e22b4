//! The monitor thread (Go's `sysmon`) and the timers behind `sleep`.
//!
//! The C-call fast path never gives its P away, nor changes its word: the
//! M says "in C" in its own `cstate` (`cgocall.rs`, the crossing
//! protocol). The monitor is what keeps a long C call from holding the P
//! while other tasks wait. Every period it looks at each P whose M is in
//! C; when it shows the same word and the same M call count (`ncgocall`,
//! Go's `syscalltick`) as one period earlier (the same C call is still
//! running, for at least one period) and the global run queue is not empty
//! — new tasks, or Ms whose bound tasks are runnable and that wait for a P
//! (`schedule.rs`) — it takes the P by the protocol (the M's `trap`
//! counted, one `membarrier` for all the Ps of the period, then a
//! compare-and-swap to `IDLE`) and hands it to another M. The M in C finds
//! its `trap` moved when the call returns, and takes the slow path. A P
//! beyond `GOMAXPROCS` whose M is in C is taken the same way and retired
//! by the hand-off (`DEAD`, decided under the scheduler lock against the
//! current count).
//!
//! The monitor also keeps a task from holding its P for ever without
//! reaching a safepoint (Go's `preemptone` from `sysmon`): for each P in
//! `RUNNING` it remembers the `schedtick` it showed and since when. When a
//! P has run the same task for more than [`TIME_SLICE`] (10 ms, Go's
//! `forcePreemptNS`) while work waits for a P — the global run queue is
//! not empty (new tasks, or Ms whose bound tasks wait for a P) and no P is
//! idle — it asks that P's M for a turn (`gc::preempt::request_turn`: a
//! SIGURG that makes the task hand its P on and wait for one, its thread
//! running nothing else meanwhile). A request the task could not honour
//! (it was in the C library, or short of stack) is repeated at most every
//! millisecond while the condition lasts. A task running a callback from C
//! is not asked (callbacks take no turns: `gc/preempt.rs`). With
//! `GODEBUG=asyncpreemptoff=1` the monitor asks for no turns at all: such a
//! task keeps its P until it reaches a safepoint (`gc/preempt.rs`).
//!
//! The period starts at 20 µs, doubles after 50 quiet periods up to 10 ms,
//! and drops back to 20 µs when the monitor retakes a P or wakes from idle.
//! When every P is idle the monitor sleeps until a P is taken (`poke`) or a
//! timer is due: an idle process costs nothing.
//!
//! Timers are a heap of (deadline, task): `sleep` adds one and parks; the
//! monitor unparks the task when the deadline passes.

use super::config::MAX_PROCS;
use super::crossing::{self, Suspect};
use super::p;
use super::schedule::{handoffp, SCHED};
use super::task::{current_g, park_current, unpark_g, TaskRef, WaitReason};
use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shortest monitor period.
const MIN_PERIOD: Duration = Duration::from_micros(20);
/// Longest monitor period.
const MAX_PERIOD: Duration = Duration::from_millis(10);
/// Quiet periods before the period starts doubling.
const QUIET_BEFORE_BACKOFF: u32 = 50;
/// How long a task may keep its P while work waits for one, before it is
/// preempted (Go's `forcePreemptNS`).
pub(crate) const TIME_SLICE: Duration = Duration::from_millis(10);
/// Retakes the monitor tries back to back per period under the stress
/// test's knob (`crossing::set_eager_retake_for_test`).
const EAGER_ROUNDS: usize = 1000;
/// Looks that found Ps in C under that knob (every 16th is held up).
static EAGER_LOOKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Least time between two turn requests to the same P's M.
const REASK: Duration = Duration::from_millis(1);

/// What the monitor last saw of a P in `RUNNING`.
#[derive(Clone, Copy)]
struct Running {
    /// Its `schedtick`: a new value means a new task (or the same one
    /// again after a switch).
    tick: u32,
    /// When the monitor first saw that tick.
    since: Instant,
    /// When the monitor last asked its M for a turn, if it did.
    asked: Option<Instant>,
}

struct Timer {
    deadline: Instant,
    seq: u64,
    task: TaskRef,
}

impl PartialEq for Timer {
    fn eq(&self, other: &Timer) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, other: &Timer) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Timer {
    /// Reversed: `BinaryHeap` is a max-heap, the earliest deadline must top.
    fn cmp(&self, other: &Timer) -> CmpOrdering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct MonState {
    timers: BinaryHeap<Timer>,
    seq: u64,
}

static MON: Mutex<MonState> = Mutex::new(MonState { timers: BinaryHeap::new(), seq: 0 });
static MON_CV: Condvar = Condvar::new();
/// The monitor sleeps because every P is idle.
static MON_IDLE: AtomicBool = AtomicBool::new(false);

fn mon() -> MutexGuard<'static, MonState> {
    MON.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the monitor thread (once, from `ensure_started`).
pub(crate) fn start() {
    let r = std::thread::Builder::new().name("cgocheck-monitor".into()).stack_size(256 << 10).spawn(monitor);
    if let Err(e) = r {
        eprintln!("cgocheck: cannot start the monitor thread: {e}");
        std::process::abort();
    }
}

/// A P just left the idle list: wake the monitor if it sleeps because all
/// were idle. One atomic load when it does not.
pub(crate) fn poke() {
    if MON_IDLE.load(Ordering::SeqCst) {
        let _st = mon();
        MON_CV.notify_one();
    }
}

/// Wakes the task of every timer that is due.
fn fire_timers(st: &mut MonState, now: Instant) {
    while st.timers.peek().is_some_and(|t| t.deadline <= now) {
        let t = st.timers.pop().expect("peeked");
        unpark_g(t.task.g());
    }
}

fn monitor() {
    // What each P whose M was in C showed last period: (its word, its M's
    // C call count).
    let mut seen: Vec<Option<(u64, u64)>> = vec![None; MAX_PROCS];
    // What each P in RUNNING showed (preempt_long_runners).
    let mut running: Vec<Option<Running>> = vec![None; MAX_PROCS];
    // GODEBUG=asyncpreemptoff=1: no turns (gc/preempt.rs).
    let turns = crate::gc::preempt::enabled();
    let mut period = MIN_PERIOD;
    let mut quiet = 0u32;
    let mut eager = false;
    let mut st = mon();
    loop {
        if eager != crossing::eager_retake() {
            eager = !eager;
            // The stress test's attacker should not starve behind the tasks
            // it attacks: a higher priority while it lasts (if allowed).
            // SAFETY: setpriority changes this thread's nice value only.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, if eager { -15 } else { 0 }) };
        }
        fire_timers(&mut st, Instant::now());
        drop(st);
        if eager {
            // The stress test's attacker: look again and again, without
            // the rest of a period's work, for a while.
            for _ in 0..EAGER_ROUNDS {
                retake(&mut seen);
            }
        }
        if retake(&mut seen) > 0 {
            quiet = 0;
            period = MIN_PERIOD;
        } else {
            quiet += 1;
            if quiet > QUIET_BEFORE_BACKOFF {
                period = (period * 2).min(MAX_PERIOD);
            }
        }
        if turns {
            preempt_long_runners(&mut running, Instant::now());
        }
        st = mon();
        let now = Instant::now();
        let next = st.timers.peek().map(|t| t.deadline.saturating_duration_since(now));
        MON_IDLE.store(true, Ordering::SeqCst);
        let all_idle = super::schedule::all_ps_idle();
        if all_idle {
            // Nothing runs, so nothing can be in C: sleep until a P is taken
            // (poke, which takes MON after seeing MON_IDLE) or a timer is due.
            st = match next {
                Some(d) => MON_CV.wait_timeout(st, d).unwrap_or_else(|e| e.into_inner()).0,
                None => MON_CV.wait(st).unwrap_or_else(|e| e.into_inner()),
            };
            MON_IDLE.store(false, Ordering::SeqCst);
            quiet = 0;
            period = MIN_PERIOD;
        } else {
            MON_IDLE.store(false, Ordering::SeqCst);
            // The stress test's knob: no pause at all.
            let period = if crossing::eager_retake() { Duration::ZERO } else { period };
            let wait = next.map_or(period, |d| d.min(period));
            st = MON_CV.wait_timeout(st, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// Takes Ps from Ms that have been in C for a whole period while tasks are
/// waiting to run (Go's `retake`), and retires Ps beyond `GOMAXPROCS`
/// whose M is in C. Returns how many it took. With the stress test's knob
/// (`crossing::set_eager_retake_for_test`) it takes every P in C.
fn retake(seen: &mut [Option<(u64, u64)>]) -> usize {
    let eager = crossing::eager_retake();
    let procs = SCHED.gomaxprocs.load(Ordering::Relaxed);
    let mut suspects = Vec::new();
    for (id, last) in seen.iter_mut().enumerate().take(p::created()) {
        let Some(p) = p::allp(id) else { continue };
        let Some((m, s)) = crossing::in_c(p) else {
            *last = None;
            continue;
        };
        if id >= procs {
            // Retired by a smaller GOMAXPROCS after its M entered C (or
            // while it ran and then entered C): retire it now; the M finds
            // out when the call returns.
            *last = None;
            suspects.push(Suspect::counted(p, m, s));
            continue;
        }
        let now = (s, m.ncgocall.load(Ordering::Relaxed));
        if !eager {
            if *last != Some(now) {
                // A new call since last period (or a first look): give it
                // a period.
                *last = Some(now);
                continue;
            }
            if SCHED.runq_len.load(Ordering::SeqCst) == 0 {
                // Nothing else could use it (tasks bound to this M's thread
                // cannot run while the thread is in C): the P may stay with
                // the C call.
                continue;
            }
        }
        *last = None;
        suspects.push(Suspect::counted(p, m, s));
    }
    if suspects.is_empty() {
        return 0;
    }
    if eager && EAGER_LOOKS.fetch_add(1, Ordering::Relaxed) % 16 == 15 {
        // The stress test's attacker is also held up now and then between
        // counting itself in and its barrier, as the OS may deschedule the
        // monitor there: the owners meanwhile come back from C, stop,
        // restart, and go into C again (`crossing.rs`, the held-up rare
        // side).
        std::thread::sleep(Duration::from_micros(500));
    }
    let mut taken = 0;
    // Taken to IDLE and handed on either way: `handoffp` decides under the
    // scheduler lock whether the P is beyond `GOMAXPROCS` (retired: DEAD)
    // or not. A `set_gomaxprocs` that grew the count since `procs` was read
    // would otherwise not see this P (its M was in C), and a P retired
    // after the growth would be lost for good.
    for c in crossing::take_all(suspects, |_| p::IDLE) {
        if c.p.id < procs {
            taken += 1;
            SCHED.retakes.fetch_add(1, Ordering::Relaxed);
        }
        handoffp(c.p);
    }
    taken
}

/// Asks the M of every P that has run the same task for more than
/// [`TIME_SLICE`] while work waits for a P to hand it on (module comment).
/// Returns how many it asked.
fn preempt_long_runners(seen: &mut [Option<Running>], now: Instant) -> usize {
    let mut asked = 0;
    for (id, last) in seen.iter_mut().enumerate().take(p::created()) {
        let Some(p) = p::allp(id) else { continue };
        let s = p.status.load(Ordering::Acquire);
        if p::state_of(s) != p::RUNNING {
            *last = None;
            continue;
        }
        let tick = p.schedtick.load(Ordering::Relaxed);
        let Some(run) = last.as_mut().filter(|r| r.tick == tick) else {
            *last = Some(Running { tick, since: now, asked: None });
            continue;
        };
        if now.duration_since(run.since) < TIME_SLICE
            || run.asked.is_some_and(|t| now.duration_since(t) < REASK)
            || SCHED.runq_len.load(Ordering::SeqCst) == 0
            || SCHED.npidle.load(Ordering::SeqCst) > 0
        {
            continue;
        }
        // SAFETY: Ms are never freed; `p.m` is written before the status
        // word that names its owner (acquirep), which we check.
        let Some(m) = (unsafe { p.m.load(Ordering::Relaxed).as_ref() }) else { continue };
        if !p::is_running_by(s, m.id) || m.in_callback() || m.incgo.load(Ordering::Relaxed) {
            // Another owner by now, a callback from C (callbacks take no
            // turns: gc/preempt.rs), or in C (`retake`'s business: the
            // word says RUNNING there too).
            continue;
        }
        crate::gc::preempt::request_turn(m);
        run.asked = Some(now);
        asked += 1;
    }
    asked
}

/// Blocks the calling task for at least `d` (other tasks run meanwhile). On
/// a thread that is not running a task, it is `std::thread::sleep`. A zero
/// duration yields.
pub fn sleep(d: Duration) {
    let Some(g) = current_g() else { return std::thread::sleep(d) };
    if d.is_zero() {
        return super::yield_now();
    }
    let deadline = Instant::now() + d;
    {
        // Not preempted holding the timers' lock: an M taking a P pokes
        // the monitor under it, on g0, where it cannot stop for the
        // collector until it gets the lock.
        let _np = crate::sched::nopreempt::NoPreempt::new();
        let mut st = mon();
        st.seq += 1;
        let seq = st.seq;
        let earliest = st.timers.peek().is_none_or(|t| deadline < t.deadline);
        st.timers.push(Timer { deadline, seq, task: TaskRef::from_live(g) });
        if earliest {
            MON_CV.notify_one();
        }
    }
    while Instant::now() < deadline {
        park_current(WaitReason::Sleep);
    }
}

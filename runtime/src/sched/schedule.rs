//! The scheduler proper: the global run queue, each M's own run queue,
//! idle Ps and Ms, the loop every M runs on its g0 stack, and the
//! transitions that lead into it (yield, park, exit, a C call that lost its
//! P).
//!
//! Everything here that runs on g0 is reached through `arch::mcall` or
//! `arch::g0_enter` and never returns: it ends by resuming a task with
//! `execute` (→ `gogo`), or by leaving the M (`gogo(exit_sp)`). Because those
//! frames are abandoned, not unwound, no function here holds a value that
//! needs dropping (a lock guard, a counted reference) across `execute`,
//! `schedule` or `gogo`: each guard is dropped by hand first.
//!
//! One mutex (`SCHED.inner`) guards the run queues and the idle lists; the
//! counts the fast paths and the monitor read without it (`runq_len`,
//! `npidle`, `nmspinning`, `gomaxprocs`, `M::nlocal`) are atomics updated
//! under it.
//!
//! ## A started task stays on its thread
//!
//! The compiler may compute a thread-local's address once and keep it
//! across a call; a task that resumed on another thread after that call
//! would read and write the first thread's value, from safe code. So a task
//! is **bound** to the M that first runs it (`G::boundm`, set by
//! `execute`) and runs only there until it ends. Anything else tied to
//! "this thread" stays right across a yield, a blocking call or a C call
//! too: an `Rc` cloned from a thread-local, `std::thread::current()`, a
//! `std` lock guard (though holding one across a switch blocks the other
//! tasks of the thread that want it: they share the OS thread).
//!
//! Two kinds of runnable work follow:
//!
//! - tasks that have not started: the **global queue**; any M that may
//!   start tasks takes them, and they are then bound to it;
//! - started tasks: the **local queue** of their M (`Local::runq`), which
//!   only that M runs.
//!
//! An M that may not start tasks is **exclusive**: a task is locked to it
//! (`lock_os_thread`, `run`'s main task, a callback from C, a task
//! unwinding), or it is tainted (a task ended while locked to it: it ends
//! its thread after the last task bound to it). Which of its bound tasks a
//! locked M runs is [`may_run`]'s rule: after `lock_os_thread`, and while
//! the locked task is blocked unwinding a panic, only that task; while the
//! locked task is blocked inside a callback from C, the M's other bound
//! tasks too — they run below the callback's C frames on the thread's
//! stack, and one that is itself called back from C locks the M in turn
//! (`M::pins` keeps the outer one), so the inner callback returns to C
//! before the outer one continues (last in, first out, like the frames).
//!
//! ## Liveness: every runnable task gets its M, and its M gets a P
//!
//! Each M is, as far as waking it goes (`Local::state`, under the lock):
//! `Busy` (it holds a P, or is running, in C, or in this file, and will
//! look at its local queue before it sleeps), `Idle` (asleep, no P,
//! nothing to run; on the idle list unless exclusive), or `NeedP` (asleep,
//! no P, a runnable bound task waiting; a `Work::Wake` entry for it is in
//! the global queue). The rules:
//!
//! 1. `ready` of a started task puts it on its M's local queue. A `Busy` M
//!    finds it itself. An `Idle` M is woken: with an idle P at once if
//!    there is one, else it becomes `NeedP` and its `Wake` entry is queued.
//! 2. An M without a P that finds runnable bound work takes an idle P, or
//!    becomes `NeedP` (so does an M whose C call returns after its P was
//!    retaken, and an M whose P was retired by a smaller `GOMAXPROCS`).
//! 3. A `Wake` entry is served like a task: the M that takes it from the
//!    global queue gives its P to the waiting M and looks for a P itself
//!    if it still has work; a P that goes idle or is retaken goes to the
//!    entry at the head of the queue first (`startm`).
//! 4. `Wake` entries count in `runq_len`, so the monitor retakes the P of
//!    a long C call for them as for unstarted tasks, and `yield_now` gives
//!    the P away to them; growing `GOMAXPROCS` wakes them with the new Ps.
//! 5. Fairness between the queues: an M runs its local queue first, but
//!    takes the global queue's head after a yield and every 61st task (Go's
//!    rule), so neither a busy thread nor a stream of new tasks starves the
//!    other. An M just handed a P for its own tasks runs one of them before
//!    anything else, so a P cannot go round the waiting Ms without running
//!    a task.
//!
//! The price of soundness is written in the README: a task's bound
//! runnable tasks wait while its M is busy. While the M runs a task that
//! does not yield, they wait as on a single P; while the M is in a long C
//! call they wait until the call returns (the monitor may take the P, but
//! the P is no use to a task bound to the thread stuck in C); after
//! `lock_os_thread` they wait until the lock is undone, so a task locked
//! that way must not wait for a task that started on its own thread, and a
//! task in a callback from C must not wait for an outer callback on its
//! thread to continue. Tasks do not spread over the Ms after they start: a
//! thread with many bound tasks runs them one at a time.
//!
//! Waking idle Ms for new tasks follows Go's "spinning" rule: when work
//! appears and a P is idle, at most one idle M is woken (with that P) unless
//! one is already looking for work; an M that finds work while spinning
//! wakes the next one if more work is queued. So a burst of `ready`s costs
//! a few wakeups, not one per task.
//!
//! ## Stopping the world
//!
//! The collector stops every P (`gc/stw.rs`). Here that means three
//! things: the loop below stops its P (`STOP_RUNNING`) before it runs a
//! task while a stop is requested, and waits for the restart; `pidleput`
//! stops a P given back meanwhile (`STOP_IDLE`) instead of listing it, and
//! the collector takes the listed ones (`stop_idle_ps`), so no M finds an
//! idle P until the restart (`restart_idle_ps`); a task at a safepoint
//! `mcall`s to `safepoint_m`, which stops its P and resumes the same task
//! after the restart. The scheduler lock is taken under a `NoPreempt`
//! guard (`SchedLock`): the collector takes it while the world is stopped,
//! so no task may be stopped holding it. `set_gomaxprocs` takes the world
//! lock, so the set of Ps does not change while the world is stopped.

use super::config::{config, MAX_PROCS};
use super::crossing;
use super::m::{self, current_m, set_current_m, M};
use super::monitor;
use super::nopreempt::NoPreempt;
use super::p::{self, P};
use super::task::{self, current_g, new_task, status, Entry, G};
use super::task_local;
use crate::arch;
use crate::gc::stw;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The scheduler's shared state.
pub(crate) struct Sched {
    inner: Mutex<Inner>,
    /// `inner.runq.len()`: unstarted tasks and Ms waiting for a P.
    pub runq_len: AtomicUsize,
    /// Runnable tasks in all queues (unstarted ones and every M's own).
    pub nrunnable: AtomicUsize,
    /// `inner.pidle.len()`.
    pub npidle: AtomicUsize,
    /// Ms woken to look for work that have not found any yet.
    pub nmspinning: AtomicUsize,
    /// The current `GOMAXPROCS`.
    pub gomaxprocs: AtomicUsize,
    /// Ps the monitor took from Ms in C.
    pub retakes: AtomicU64,
    started: OnceLock<()>,
}

/// An entry of the global run queue.
#[derive(Clone, Copy)]
enum Work {
    /// A task that has not started: any non-exclusive M may run it.
    Start(&'static G),
    /// An M with runnable bound tasks and no P (`NeedP`): whoever takes the
    /// entry gives it a P.
    Wake(&'static M),
}

/// An M as far as waking it goes (module comment).
#[derive(Clone, Copy, PartialEq, Eq)]
enum MState {
    Busy,
    Idle,
    NeedP,
}

/// An M's part of the scheduler state.
struct Local {
    /// Runnable tasks bound to the M, oldest first.
    runq: VecDeque<&'static G>,
    state: MState,
}

struct Inner {
    /// Unstarted tasks and Ms waiting for a P, oldest first.
    runq: VecDeque<Work>,
    /// Idle Ps.
    pidle: Vec<&'static P>,
    /// Idle Ms that may start tasks (parked, holding no P).
    midle: Vec<&'static M>,
    /// Per M, by `id - 1`.
    locals: Vec<Local>,
}

pub(crate) static SCHED: Sched = Sched {
    inner: Mutex::new(Inner { runq: VecDeque::new(), pidle: Vec::new(), midle: Vec::new(), locals: Vec::new() }),
    runq_len: AtomicUsize::new(0),
    nrunnable: AtomicUsize::new(0),
    npidle: AtomicUsize::new(0),
    nmspinning: AtomicUsize::new(0),
    gomaxprocs: AtomicUsize::new(0),
    retakes: AtomicU64::new(0),
    started: OnceLock::new(),
};

impl Inner {
    /// `m`'s part (made on first use: Ms are created without the lock).
    fn local(&mut self, m: &M) -> &mut Local {
        let i = (m.id - 1) as usize;
        if self.locals.len() <= i {
            self.locals.resize_with(i + 1, || Local { runq: VecDeque::new(), state: MState::Busy });
        }
        &mut self.locals[i]
    }

    fn push_global(&mut self, w: Work) {
        if let Work::Start(_) = w {
            SCHED.nrunnable.fetch_add(1, Ordering::Relaxed);
        }
        self.runq.push_back(w);
        SCHED.runq_len.fetch_add(1, Ordering::SeqCst);
    }

    fn pop_global(&mut self) -> Option<Work> {
        let w = self.runq.pop_front()?;
        SCHED.runq_len.fetch_sub(1, Ordering::SeqCst);
        if let Work::Start(_) = w {
            SCHED.nrunnable.fetch_sub(1, Ordering::Relaxed);
        }
        Some(w)
    }

    /// Queues `g`, bound to `m`, on `m`'s local queue.
    fn push_local(&mut self, m: &M, g: &'static G, front: bool) {
        let q = &mut self.local(m).runq;
        if front {
            q.push_front(g);
        } else {
            q.push_back(g);
        }
        m.nlocal.store(q.len(), Ordering::SeqCst);
        SCHED.nrunnable.fetch_add(1, Ordering::Relaxed);
    }

    /// The position of the first task of `m`'s local queue that `m` may run
    /// now ([`may_run`]).
    fn next_local(&mut self, m: &M) -> Option<usize> {
        self.local(m).runq.iter().position(|g| may_run(m, g))
    }

    fn take_local(&mut self, m: &M, at: usize) -> &'static G {
        let q = &mut self.local(m).runq;
        let g = q.remove(at).expect("a queued position");
        m.nlocal.store(q.len(), Ordering::SeqCst);
        SCHED.nrunnable.fetch_sub(1, Ordering::Relaxed);
        g
    }
}

/// The scheduler lock's guard. The collector takes the lock while the world
/// is stopped (the stopped idle Ps), so a task holding it must not be
/// preempted: the guard holds a [`NoPreempt`] too, taken before the lock
/// and dropped after it (fields drop in order).
struct SchedLock {
    inner: MutexGuard<'static, Inner>,
    _np: NoPreempt,
}

impl SchedLock {
    /// Releases the lock but keeps the task unpreemptible until the
    /// returned guard goes: for a P taken off the idle list (or out of a
    /// hand-off) and not yet in its new M's hands. A task stopped there
    /// would leave the P idle and off the list, which the collector waits
    /// for as "being handed" (`gc/stw.rs`), while the hand-off it waits for
    /// is stopped with the task: the world would never stop.
    fn unlock_keeping_no_preempt(self) -> NoPreempt {
        let SchedLock { inner, _np } = self;
        drop(inner);
        _np
    }
}

impl Deref for SchedLock {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

impl DerefMut for SchedLock {
    fn deref_mut(&mut self) -> &mut Inner {
        &mut self.inner
    }
}

/// The scheduler lock. Nothing panics while holding it, but a poisoned lock
/// (a bug elsewhere) is still consistent state and is taken over.
fn lock() -> SchedLock {
    let np = NoPreempt::new();
    SchedLock { inner: SCHED.inner.lock().unwrap_or_else(|e| e.into_inner()), _np: np }
}

/// Starts the runtime once: reads the environment, creates `GOMAXPROCS`
/// idle Ps and the monitor thread. Ms are created when there is work.
pub(crate) fn ensure_started() {
    SCHED.started.get_or_init(|| {
        let n = config().gomaxprocs;
        let mut inner = lock();
        SCHED.gomaxprocs.store(n, Ordering::SeqCst);
        for id in (0..n).rev() {
            pidleput(&mut inner, p::get_or_create(id));
        }
        drop(inner);
        super::view::register();
        monitor::start();
    });
}

/// The M running this code. Panics when there is none (a scheduler bug:
/// every caller runs on an M).
#[inline]
fn this_m() -> &'static M {
    // SAFETY: Ms are never freed.
    unsafe { current_m().as_ref() }.expect("cgocheck: scheduler code running on a thread that is not an M")
}

/// The M `g` must run on: the one it is locked to, else the one it is
/// bound to; `None` for a task that has not started.
fn home(g: &G) -> Option<&'static M> {
    // SAFETY: Ms are never freed.
    g.lockedm().or_else(|| unsafe { g.boundm.load(Ordering::Relaxed).as_ref() })
}

/// `m` may run its bound task `g` now. Yes without a locked task. With one:
/// that task, always; another only if the locked task is merely blocked in
/// a callback from C (not locked by `lock_os_thread`, not unwinding) and
/// `g` is not an outer locked task — C frames on the thread's stack are
/// last in, first out, so the task that locked itself last must return to
/// C first. Read without the M's cooperation only while the M is idle, when
/// none of it changes (only the M's running task changes it).
fn may_run(m: &M, g: &G) -> bool {
    match m.lockedg() {
        None => true,
        Some(l) if std::ptr::eq(l, g) => true,
        Some(l) => {
            l.locked_ext.load(Ordering::Relaxed) == 0 && !m.solo.load(Ordering::Relaxed) && g.lockedm().is_none()
        }
    }
}

/// `m` starts no new tasks (module comment).
fn exclusive(m: &M) -> bool {
    m.lockedg().is_some() || m.tainted.load(Ordering::Relaxed)
}

/// Puts `p` on the idle list, or retires it if it is beyond `GOMAXPROCS`.
/// While a stop of the world is requested it stops the P instead
/// (`STOP_IDLE`: the restart lists it; `gc/stw.rs`): the flag is read
/// under the scheduler lock, which the collector takes after raising it.
fn pidleput(inner: &mut Inner, p: &'static P) {
    p.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    if p.id >= SCHED.gomaxprocs.load(Ordering::Relaxed) {
        p.status.store(p::DEAD, Ordering::Release);
        return;
    }
    if stw::stop_requested() {
        p.status.store(p::STOP_IDLE, Ordering::Release);
        stw::notify_stopped();
        return;
    }
    p.status.store(p::IDLE, Ordering::Release);
    inner.pidle.push(p);
    SCHED.npidle.fetch_add(1, Ordering::SeqCst);
}

/// Takes an idle P.
fn pidleget(inner: &mut Inner) -> Option<&'static P> {
    let p = inner.pidle.pop()?;
    SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
    Some(p)
}

/// For `stw::stop_the_world`: takes every idle P off the idle list and
/// stops it (`STOP_IDLE`). The stop flag is up, so a P given back later
/// is stopped by `pidleput` itself.
pub(crate) fn stop_idle_ps() {
    let mut inner = lock();
    while let Some(p) = pidleget(&mut inner) {
        p.status.store(p::STOP_IDLE, Ordering::Release);
    }
}

/// For `stw::start_the_world` (the flag is down): every stopped idle P goes
/// to queued work or back on the idle list, as a P given back does.
pub(crate) fn restart_idle_ps() {
    for id in 0..p::created() {
        if let Some(p) = p::allp(id) {
            if p.status.load(Ordering::Acquire) == p::STOP_IDLE {
                handoffp(p);
            }
        }
    }
}

/// `m` now holds `p` (taken off the idle list or handed over).
pub(crate) fn acquirep(m: &'static M, p: &'static P) {
    m.p.store(p as *const P as *mut P, Ordering::Relaxed);
    p.m.store(m as *const M as *mut M, Ordering::Relaxed);
    p.status.store(p.running_for(m.id), Ordering::Release);
    monitor::poke();
}

/// `m` gives up its P, which the caller then places.
fn releasep(m: &'static M) -> Option<&'static P> {
    let p = m.p();
    m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
    p
}

/// Gives `p` to the sleeping M `m` (marked `Busy` by the caller, under the
/// lock) and wakes it.
fn hand(m: &'static M, p: &'static P) {
    p.status.store(p::IDLE, Ordering::Release);
    m.nextp.store(p as *const P as *mut P, Ordering::Relaxed);
    m.wake();
}

/// Makes `g` runnable (it must be parked or new, its context saved): a
/// started task on its M's local queue (waking that M if it sleeps), a new
/// one on the global queue (waking an M if a P is idle). Callable from any
/// thread.
pub(crate) fn ready(g: &'static G) {
    g.status.store(status::RUNNABLE, Ordering::Relaxed);
    let mut inner = lock();
    match home(g) {
        None => {
            inner.push_global(Work::Start(g));
            drop(inner);
            wakep();
        }
        Some(m) => {
            inner.push_local(m, g, false);
            if may_run(m, g) && inner.local(m).state == MState::Idle {
                wake_idle_m(inner, m);
            }
        }
    }
}

/// `m` sleeps `Idle` and now has a runnable bound task: give it an idle P,
/// or queue its `Wake` entry for the next P that frees up.
fn wake_idle_m(mut inner: SchedLock, m: &'static M) {
    if let Some(i) = inner.midle.iter().position(|x| std::ptr::eq(*x, m)) {
        inner.midle.swap_remove(i);
    }
    match pidleget(&mut inner) {
        Some(p) => {
            inner.local(m).state = MState::Busy;
            let _np = inner.unlock_keeping_no_preempt();
            hand(m, p);
        }
        None => {
            inner.local(m).state = MState::NeedP;
            inner.push_global(Work::Wake(m));
        }
    }
}

/// Wakes an idle M with an idle P, if a P is idle and no M is already
/// looking for work.
pub(crate) fn wakep() {
    if SCHED.npidle.load(Ordering::SeqCst) == 0 {
        return;
    }
    if SCHED.nmspinning.compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed).is_err() {
        return;
    }
    let mut inner = lock();
    match pidleget(&mut inner) {
        Some(p) => startm(inner, p, true),
        None => {
            drop(inner);
            SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Runs `p` on an M: the M at the head of the global queue if one waits
/// for a P, else an idle M, else a new one. `spinning`: the caller counted
/// an M in `nmspinning` for this.
fn startm(mut inner: SchedLock, p: &'static P, spinning: bool) {
    if let Some(&Work::Wake(w)) = inner.runq.front() {
        inner.pop_global();
        inner.local(w).state = MState::Busy;
        let np = inner.unlock_keeping_no_preempt();
        hand(w, p);
        drop(np);
        if spinning {
            // That M was not looking for new tasks: let another do it.
            SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
            if SCHED.runq_len.load(Ordering::SeqCst) > 0 {
                wakep();
            }
        }
        return;
    }
    match inner.midle.pop() {
        Some(m) => {
            inner.local(m).state = MState::Busy;
            let _np = inner.unlock_keeping_no_preempt();
            m.spinning.store(spinning, Ordering::Relaxed);
            hand(m, p);
        }
        None => {
            let _np = inner.unlock_keeping_no_preempt();
            p.status.store(p::IDLE, Ordering::Release);
            m::start_worker(p, spinning);
        }
    }
}

/// Finds a home for a P whose M stops using it (Go's `handoffp`): an M if
/// there is queued work, else the idle list.
pub(crate) fn handoffp(p: &'static P) {
    let mut inner = lock();
    if !inner.runq.is_empty() && p.id < SCHED.gomaxprocs.load(Ordering::Relaxed) {
        startm(inner, p, false);
    } else {
        pidleput(&mut inner, p);
    }
}

/// An M that was spinning found work or gave up.
fn stop_spinning(m: &'static M) {
    if m.spinning.swap(false, Ordering::Relaxed) {
        SCHED.nmspinning.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `m` found work: if it was the spinning M, another one looks for the
/// rest of the queue.
fn found_work(m: &'static M) {
    if m.spinning.load(Ordering::Relaxed) {
        stop_spinning(m);
        if SCHED.runq_len.load(Ordering::SeqCst) > 0 {
            wakep();
        }
    }
}

/// Sleeps `m` (holding no P) until it is handed one, then holds it.
fn sleep_for_p(m: &'static M) {
    m.sleep();
    let p = m.nextp.swap(std::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: a waker stored a P (never freed) before waking us.
    let p = unsafe { p.as_ref() }.expect("cgocheck: M woken without a P");
    acquirep(m, p);
}

/// Runs `g` on `m` (which holds a P): never returns. A task that has not
/// started is bound to `m` here.
fn execute(m: &'static M, g: &'static G) -> ! {
    let bound = g.boundm.load(Ordering::Relaxed);
    if bound.is_null() {
        g.boundm.store(m as *const M as *mut M, Ordering::Relaxed);
        m.nbound.store(m.nbound.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    } else if !std::ptr::eq(bound, m) {
        misrouted(m, g);
    }
    m.curg.store(g as *const G as *mut G, Ordering::Relaxed);
    g.m.store(m as *const M as *mut M, Ordering::Relaxed);
    g.status.store(status::RUNNING, Ordering::Relaxed);
    if let Some(p) = m.p() {
        p.schedtick.store(p.schedtick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    }
    // Acquire: pairs with the Release that made `g` runnable after its
    // context was saved.
    let sp = g.sched_sp.load(Ordering::Acquire);
    // SAFETY: `g` is runnable, so its context is saved and nobody else
    // resumes it (it was taken off a run queue, or handed to this M); we
    // are on g0 and hold nothing that needs dropping.
    unsafe { arch::gogo(sp) }
}

/// A scheduler bug that would let a task change threads: stop before it
/// can do harm (on g0, where a panic cannot unwind).
#[cold]
#[inline(never)]
fn misrouted(m: &M, g: &G) -> ! {
    eprintln!("fatal error: cgocheck: task {} is bound to another M but was scheduled on M {}", g.id(), m.id);
    std::process::abort()
}

/// The scheduler loop of `m`, on its g0 stack: find a runnable task and run
/// it, sleeping when there is none. Never returns.
pub(crate) fn schedule(m: &'static M) -> ! {
    schedule_from(m, false)
}

/// [`schedule`]; `yielded`: the task that left did so to let others run, so
/// the global queue goes first this time.
fn schedule_from(m: &'static M, mut yielded: bool) -> ! {
    // Woken with a P for our own runnable tasks: run one before looking at
    // the global queue. (Otherwise, at a tick multiple of 61, each M handed
    // the P would hand it on to the next waiting M without running anything,
    // for ever: the tick only advances when a task runs.)
    let mut woken_for_local = false;
    loop {
        // A stop of the world is requested: stop the P here, before running
        // a task (an M that just took or was handed a P comes back here
        // first too).
        if let Some(p) = m.p() {
            if stw::stop_requested() {
                stw::stop_here(m, p);
            }
        }
        let mut inner = lock();
        if let Some(p) = m.p() {
            if p.id >= SCHED.gomaxprocs.load(Ordering::Relaxed) {
                // Retired by a smaller GOMAXPROCS (pidleput marks it dead).
                releasep(m);
                pidleput(&mut inner, p);
            }
        }
        let local = inner.next_local(m);
        let Some(p) = m.p() else {
            // No P: take an idle one for our bound work, or wait for one.
            if local.is_some() {
                if let Some(p) = pidleget(&mut inner) {
                    drop(inner);
                    acquirep(m, p);
                    woken_for_local = true;
                    continue;
                }
                inner.local(m).state = MState::NeedP;
                inner.push_global(Work::Wake(m));
                drop(inner);
                stop_spinning(m);
            } else {
                inner.local(m).state = MState::Idle;
                if !exclusive(m) {
                    inner.midle.push(m);
                }
                let queued = !inner.runq.is_empty();
                drop(inner);
                stop_spinning(m);
                if queued {
                    // Our P was retired with work queued (a task that
                    // yielded on it): another M with an idle P must take it.
                    wakep();
                }
            }
            woken_for_local = local.is_some();
            sleep_for_p(m);
            continue;
        };
        let global_first = !inner.runq.is_empty()
            && (local.is_none() || (!woken_for_local && (yielded || p.schedtick.load(Ordering::Relaxed) % 61 == 0)));
        yielded = false;
        woken_for_local = false;
        if !global_first {
            if let Some(at) = local {
                let g = inner.take_local(m, at);
                drop(inner);
                found_work(m);
                execute(m, g);
            }
            // Nothing at all: the P goes idle.
            let p = releasep(m).expect("P held above");
            pidleput(&mut inner, p);
            continue;
        }
        if exclusive(m) {
            // We may not start the head task (nor hand over our P and keep
            // it): the P goes to whoever runs the head of the queue.
            let p = releasep(m).expect("P held above");
            startm(inner, p, false);
            continue;
        }
        match inner.pop_global().expect("the global queue is not empty") {
            Work::Start(g) => {
                drop(inner);
                found_work(m);
                execute(m, g);
            }
            Work::Wake(w) => {
                inner.local(w).state = MState::Busy;
                let p = releasep(m).expect("P held above");
                drop(inner);
                hand(w, p);
            }
        }
    }
}

/// First code of a worker M on its g0 stack: take the P it was started
/// for, then schedule.
pub(crate) unsafe extern "C" fn mstart(arg: *mut c_void) -> ! {
    // SAFETY: start_worker passes its (never freed) M.
    let m: &'static M = unsafe { &*(arg as *const M) };
    let p = m.nextp.swap(std::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: start_worker stored the P (never freed).
    acquirep(m, unsafe { p.as_ref() }.expect("cgocheck: worker M started without a P"));
    schedule(m)
}

/// Stops the running task at a safepoint (`gc::stw::safepoint`, on its own
/// stack, holding its P): `mcall` saves its context on its stack, and on g0
/// its P becomes `STOP_RUNNING` until the world restarts; then the same
/// task resumes on the same M with the same P.
pub(crate) fn stop_at_safepoint() {
    mcall(safepoint_m);
}

unsafe extern "C" fn safepoint_m(arg: *mut c_void) -> ! {
    // SAFETY: mcall passes the stopping task.
    let g = unsafe { g_of(arg) };
    let m = this_m();
    if let Some(p) = m.p() {
        stw::stop_here(m, p);
    }
    // SAFETY: `g` is this M's running task, whose context mcall just saved;
    // nobody else resumes it (it is on no queue); nothing here needs
    // dropping.
    unsafe { arch::gogo(g.sched_sp.load(Ordering::Acquire)) }
}

/// The task pointer an mcall passes to its g0 function.
#[inline]
unsafe fn g_of(arg: *mut c_void) -> &'static G {
    // SAFETY: callers pass a task record, never freed.
    unsafe { &*(arg as *const G) }
}

/// Switches from the current task to g0 and runs `f(task)` there.
fn mcall(f: arch::G0Fn) {
    let m = this_m();
    let g = m.curg().expect("cgocheck: mcall outside a task");
    if m.incgo.load(Ordering::Relaxed) {
        // A defensive check: the callback path clears `incgo` before
        // managed code runs (on the task stack), so this means managed code
        // running on g0 below live C frames, where g0 work would start above
        // them, at g0_sp.
        blocked_on_g0();
    }
    // SAFETY: we run on `g`'s stack on M `m`; its g0 scratch area is free
    // (only mcall and asmcgocall use it, never both at once); every `f`
    // passed here ends in `execute`/`schedule`/`gogo`, and `g` is resumed
    // once, by whoever makes it runnable.
    unsafe { arch::mcall(g as *const G as *mut c_void, f, g.sched_sp.as_ptr(), m.g0_sp.load(Ordering::Relaxed)) }
}

#[cold]
#[inline(never)]
fn blocked_on_g0() -> ! {
    panic!(
        "cgocheck: a task tried to block (yield, park, join, sleep, a channel) in managed code called from C \
         that is still running on the thread's C stack; blocking there needs the callback path to switch back \
         to the task's stack first (cgocheck::callback::cgocallback does)"
    )
}

/// Suspends the running task `g` of `m`: switches to g0 to run `f`, which
/// parks, queues or hands the task on, and returns when some M resumes it.
/// A task that is unwinding a panic is locked to its M meanwhile, so that
/// the M runs no other task: the standard library keeps the panic count in
/// a thread-local, and another task of this thread would believe it is
/// panicking (a panic of its own would then abort the process, and its
/// `std` lock guards would poison their locks).
fn suspend(m: &'static M, g: &'static G, f: arch::G0Fn) {
    let unwinding = std::thread::panicking();
    if unwinding {
        pin(m, g);
        m.solo.store(true, Ordering::Relaxed);
    }
    mcall(f);
    if unwinding {
        m.solo.store(false, Ordering::Relaxed);
        unpin(g);
    }
}

/// Locks `g` to `m` (one runtime-internal lock): while a callback from C
/// runs, because C frames of that M's thread are live on its g0 stack, and
/// while a task unwinds. Undone by [`unpin`].
pub(crate) fn pin(m: &'static M, g: &'static G) {
    // Only the task itself changes its lock counts (on its M), so a load
    // and a store suffice: no read-modify-write on the callback path.
    g.locked_int.store(g.locked_int.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    lock_to(m, g);
}

/// Makes `g`, running on `m`, the task locked to `m`. If another task was
/// (blocked in a callback from C while `g` ran), it waits under `g` until
/// `g`'s lock is undone ([`may_run`]).
#[inline]
fn lock_to(m: &'static M, g: &'static G) {
    if let Some(l) = m.lockedg() {
        if std::ptr::eq(l, g) {
            return;
        }
        push_pin(m, l);
    }
    g.lockedm.store(m as *const M as *mut M, Ordering::Relaxed);
    m.lockedg.store(g as *const G as *mut G, Ordering::Relaxed);
}

/// Keeps `l`, the task locked to `m` so far, under a new one.
#[cold]
#[inline(never)]
fn push_pin(m: &'static M, l: &'static G) {
    let mut pins = m.pins.lock().unwrap_or_else(|e| e.into_inner());
    pins.push(l);
    m.npins.store(pins.len(), Ordering::Relaxed);
}

/// The outer locked task that [`push_pin`] kept.
#[cold]
#[inline(never)]
fn pop_pin(m: &'static M) -> Option<&'static G> {
    let mut pins = m.pins.lock().unwrap_or_else(|e| e.into_inner());
    let l = pins.pop();
    m.npins.store(pins.len(), Ordering::Relaxed);
    l
}

/// Undoes [`pin`] (on the same M).
pub(crate) fn unpin(g: &'static G) {
    // As in `pin`: only the task itself writes the count.
    let n = g.locked_int.load(Ordering::Relaxed);
    g.locked_int.store(n - 1, Ordering::Relaxed);
    if n == 1 && g.locked_ext.load(Ordering::Relaxed) == 0 {
        unlock_task(g);
    }
}

/// Clears `g`'s lock to its M (it is the innermost one: only it runs); an
/// outer locked task, if any, is the locked one again.
fn unlock_task(g: &'static G) {
    if let Some(m) = g.lockedm() {
        let outer = if m.npins.load(Ordering::Relaxed) == 0 { None } else { pop_pin(m) };
        m.lockedg.store(outer.map_or(std::ptr::null_mut(), |l| l as *const G as *mut G), Ordering::Relaxed);
    }
    g.lockedm.store(std::ptr::null_mut(), Ordering::Relaxed);
}

/// Blocks the current task (its token is empty) until `unpark`.
pub(crate) fn park_current() {
    let m = this_m();
    let g = m.curg().expect("park outside a task");
    suspend(m, g, park_m);
}

unsafe extern "C" fn park_m(arg: *mut c_void) -> ! {
    // SAFETY: mcall passes the parking task.
    let g = unsafe { g_of(arg) };
    let m = this_m();
    g.status.store(status::WAITING, Ordering::Relaxed);
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
    if g.try_park() {
        // From here an unpark may already have made it runnable elsewhere.
        schedule(m)
    }
    // Its token was set meanwhile: keep running it.
    execute(m, g)
}

/// Lets other tasks run: the caller goes to the back of its thread's run
/// queue, and the thread takes the next new task or hands its processor to
/// a thread waiting for one first (Go's `Gosched`; the caller stays on its
/// thread). Returns at once when nothing else is runnable here. On a thread
/// that is not running a task, it is `std::thread::yield_now`.
pub fn yield_now() {
    // SAFETY: Ms are never freed.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return std::thread::yield_now() };
    let Some(g) = m.curg() else { return std::thread::yield_now() };
    let retired = m.p().is_some_and(|p| p.id >= SCHED.gomaxprocs.load(Ordering::Relaxed));
    if SCHED.runq_len.load(Ordering::SeqCst) == 0 && m.nlocal.load(Ordering::SeqCst) == 0 && !retired {
        // Nothing else to run here; still a safepoint.
        return stw::safepoint();
    }
    suspend(m, g, yield_m);
}

unsafe extern "C" fn yield_m(arg: *mut c_void) -> ! {
    // SAFETY: mcall passes the yielding task.
    let g = unsafe { g_of(arg) };
    let m = this_m();
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.status.store(status::RUNNABLE, Ordering::Relaxed);
    let mut inner = lock();
    inner.push_local(m, g, false);
    drop(inner);
    schedule_from(m, true)
}

/// Ends the current task (after its body returned): drops what is left of
/// its task-locals (on its stack, where their destructors may block), then
/// leaves it for good.
pub(crate) fn exit_current() -> ! {
    if let Err(payload) = task_local::drop_all_into(Ok(())) {
        task::fatal_task_panic(current_g().map_or(0, G::id), &*payload);
    }
    mcall(goexit0);
    unreachable!("cgocheck: a finished task was resumed")
}

unsafe extern "C" fn goexit0(arg: *mut c_void) -> ! {
    // SAFETY: mcall passes the finishing task.
    let g = unsafe { g_of(arg) };
    let m = this_m();
    m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.status.store(status::DEAD, Ordering::Relaxed);
    task::LIVE.fetch_sub(1, Ordering::Relaxed);
    // SAFETY: we are on g0; nothing runs on the task's stack any more and
    // nothing refers into it (the task's frames are finished).
    unsafe { crate::heap().free_stack(g.stack()) };
    let was_main = std::ptr::eq(m.main_g.load(Ordering::Relaxed), g);
    // A task that exits while locked (lock_os_thread not undone) may have
    // changed its thread's state: like Go, end the thread with it — once
    // the other tasks bound to it have ended (they cannot move); until then
    // it starts no new task.
    if g.locked_ext.load(Ordering::Relaxed) > 0 && !m.run_thread {
        m.tainted.store(true, Ordering::Relaxed);
    }
    if g.lockedm().is_some() {
        unlock_task(g);
    }
    g.boundm.store(std::ptr::null_mut(), Ordering::Relaxed);
    let nbound = m.nbound.load(Ordering::Relaxed) - 1;
    m.nbound.store(nbound, Ordering::Relaxed);
    // The scheduler's reference.
    task::release(g);
    if was_main || (m.tainted.load(Ordering::Relaxed) && nbound == 0) {
        m.main_g.store(std::ptr::null_mut(), Ordering::Relaxed);
        if let Some(p) = releasep(m) {
            handoffp(p);
        }
        // SAFETY: exit_sp is this M's own g0_enter context, on this thread.
        unsafe { arch::gogo(m.exit_sp.load(Ordering::Relaxed)) }
    }
    schedule(m)
}

/// `exitsyscall`'s slow path: the P the task's M held during its C call was
/// retaken (or retired). Takes an idle P if there is one; otherwise the task
/// goes to the front of this M's own queue and the M waits for a P
/// (`NeedP`), then resumes it.
pub(crate) fn exitsyscall_slow(m: &'static M, g: &'static G) {
    // The P is no longer ours; whoever took it owns it.
    m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
    let mut inner = lock();
    if let Some(p) = pidleget(&mut inner) {
        drop(inner);
        acquirep(m, p);
        return;
    }
    drop(inner);
    suspend(m, g, exitsyscall_nop);
}

unsafe extern "C" fn exitsyscall_nop(arg: *mut c_void) -> ! {
    // SAFETY: mcall passes the task returning from C.
    let g = unsafe { g_of(arg) };
    let m = this_m();
    let mut inner = lock();
    if let Some(p) = pidleget(&mut inner) {
        drop(inner);
        acquirep(m, p);
        execute(m, g);
    }
    m.curg.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.status.store(status::RUNNABLE, Ordering::Relaxed);
    inner.push_local(m, g, true);
    drop(inner);
    // No P: schedule queues this M for one and sleeps until it is handed
    // one.
    schedule(m)
}

/// Wires the calling task to its current thread: until as many
/// [`unlock_os_thread`] calls, no other task runs on this thread. (Every
/// task stays on the thread it started on anyway; the lock is about the
/// thread being the task's alone, e.g. for thread state it changes.) Other
/// tasks that started on this thread wait until the lock is undone, so a
/// locked task must not wait for one of them. If the task ends while
/// locked, the thread ends too (as in Go), after the tasks that started on
/// it.
///
/// # Panics
/// Outside a task.
pub fn lock_os_thread() {
    let m = this_m_in_task("lock_os_thread");
    let g = m.curg().expect("checked by this_m_in_task");
    let n = g.locked_ext.load(Ordering::Relaxed);
    assert!(n < u32::MAX, "cgocheck::lock_os_thread: too many nested locks");
    g.locked_ext.store(n + 1, Ordering::Relaxed);
    lock_to(m, g);
}

/// Undoes one [`lock_os_thread`]; with none outstanding it does nothing.
///
/// # Panics
/// Outside a task.
pub fn unlock_os_thread() {
    let m = this_m_in_task("unlock_os_thread");
    let g = m.curg().expect("checked by this_m_in_task");
    let n = g.locked_ext.load(Ordering::Relaxed);
    if n == 0 {
        return;
    }
    g.locked_ext.store(n - 1, Ordering::Relaxed);
    if n == 1 && g.locked_int.load(Ordering::Relaxed) == 0 {
        unlock_task(g);
    }
}

fn this_m_in_task(what: &str) -> &'static M {
    // SAFETY: Ms are never freed.
    match unsafe { current_m().as_ref() } {
        Some(m) if m.curg().is_some() => m,
        _ => panic!("cgocheck::{what} called outside a task; start the runtime with cgocheck::run"),
    }
}

/// Starts the runtime if needed and runs `f` as the main task on the calling
/// thread, which becomes an M (its "M0") until `f` returns; returns `f`'s
/// result. Other tasks run on worker threads, never on this one: the main
/// task is locked to this thread, so `f` may borrow from the caller and need
/// not be `Send`. Its task-locals are dropped before `run` returns.
///
/// Tasks still running when `f` returns keep running on the worker threads,
/// like detached threads. `run` may be called again later, and from several
/// threads at once (each gets its own main task).
///
/// If `f` panics, the process reports it and exits with status 2 (Go's
/// unrecovered panic in `main`). Under `cargo test`, use [`run_test`]
/// instead: it hands the panic back to the test.
///
/// # Panics
/// When called from inside a task (use [`spawn`](super::spawn)).
pub fn run<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    match run_main(f, OnPanic::Exit) {
        Ok(v) => v,
        Err(_) => unreachable!("cgocheck: run's main task panicked and the process did not end"),
    }
}

/// [`run`] for a test: a panic of `f` (a failed check, a failed
/// assertion) is not fatal; it is printed as `panic: <message>` to the
/// test's captured output and then continues in the caller
/// (`resume_unwind`), after the main task has ended. So the test fails
/// alone, with the checker's message, while the other tests of the binary
/// go on, and `#[should_panic(expected = "...")]` sees the original
/// payload. Go has no such mode: it is what `go test` gives by running
/// each test in its own goroutine and recovering there.
///
/// Only the main task's panic comes back: a panic in a task `f` spawned
/// reaches the test through [`JoinHandle::join`](super::JoinHandle::join),
/// and one in a task nobody joins still ends the process (Go's rule).
///
/// ```
/// let r = std::panic::catch_unwind(|| cgocheck::run_test(|| panic!("failed check")));
/// assert_eq!(*r.unwrap_err().downcast::<&str>().unwrap(), "failed check");
/// assert_eq!(cgocheck::run_test(|| 7), 7);
/// ```
///
/// # Panics
/// With `f`'s panic; when called from inside a task, as [`run`].
#[track_caller]
pub fn run_test<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    match run_main(f, OnPanic::Return) {
        Ok(v) => v,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            // `eprintln!` goes to the test harness's capture of this thread.
            eprintln!("panic: {msg}\n(in the main task of cgocheck::run_test at {})", std::panic::Location::caller());
            std::panic::resume_unwind(payload)
        }
    }
}

/// What `run_main` does with a panic of the main task.
#[derive(Clone, Copy, PartialEq)]
enum OnPanic {
    /// Report it and end the process (`run`).
    Exit,
    /// Return it (`run_test`).
    Return,
}

/// `run` and `run_test`: runs `f` as the main task on this thread.
fn run_main<F, R>(f: F, on_panic: OnPanic) -> std::thread::Result<R>
where
    F: FnOnce() -> R,
{
    if current_g().is_some() {
        panic!("cgocheck::run called from inside a task; use cgocheck::spawn to start another task");
    }
    ensure_started();
    m::ensure_signal_stack();
    let m = m::run_m();
    let mut result: Option<std::thread::Result<R>> = None;
    let slot: *mut Option<std::thread::Result<R>> = &mut result;
    let body = move || {
        let r = catch_unwind(AssertUnwindSafe(f));
        if let (Err(payload), OnPanic::Exit) = (&r, on_panic) {
            task::fatal_task_panic(current_g().map_or(0, G::id), &**payload);
        }
        // SAFETY: `result` outlives the main task (run waits for it), and
        // only the main task writes it, before it ends.
        unsafe { *slot = Some(r) }
    };
    // SAFETY: the main task is locked to this thread, and `run` does not
    // return before it has ended, so the body runs here, while its borrows
    // live.
    let t = new_task(config().stack_size, unsafe { Entry::local(body) });
    let g = t.g();
    g.locked_int.store(1, Ordering::Relaxed);
    g.lockedm.store(m as *const M as *mut M, Ordering::Relaxed);
    m.lockedg.store(g as *const G as *mut G, Ordering::Relaxed);
    m.main_g.store(g as *const G as *mut G, Ordering::Relaxed);
    set_current_m(m);
    // SAFETY: this thread is M `m` until g0_enter returns; m0_start ends
    // every path in gogo, and the M leaves by resuming exit_sp here (when
    // the main task ends).
    unsafe { arch::g0_enter(m as *const M as *mut c_void, m0_start, m.exit_sp.as_ptr(), m.g0_sp.as_ptr()) };
    set_current_m(std::ptr::null());
    drop(t);
    result.expect("cgocheck: the main task ended without a result")
}

/// First code of `run`'s M on its g0 stack: run the main task, on an idle P
/// if there is one, else once another M hands one over.
unsafe extern "C" fn m0_start(arg: *mut c_void) -> ! {
    // SAFETY: run passes its (never freed) M.
    let m: &'static M = unsafe { &*(arg as *const M) };
    // SAFETY: run stored the main task's record.
    let g: &'static G = unsafe { &*m.main_g.load(Ordering::Relaxed) };
    let mut inner = lock();
    if let Some(p) = pidleget(&mut inner) {
        drop(inner);
        acquirep(m, p);
        execute(m, g);
    }
    // It is this M's alone (locked to it): it waits here for a P.
    inner.push_local(m, g, false);
    drop(inner);
    schedule(m)
}

/// The current `GOMAXPROCS` (starts the runtime if needed).
pub fn gomaxprocs() -> usize {
    ensure_started();
    SCHED.gomaxprocs.load(Ordering::SeqCst)
}

/// Sets `GOMAXPROCS` to `n` and returns the previous value; `0` changes
/// nothing (Go's `runtime.GOMAXPROCS(0)`). Growing makes new Ps idle at once
/// (and wakes Ms if work is queued). Shrinking retires the extra Ps: idle
/// ones at once, ones in a C call when the call returns (the caller then
/// looks for another P), running ones when their task next yields, blocks
/// or ends.
///
/// # Panics
/// If `n` is above 1024.
pub fn set_gomaxprocs(n: usize) -> usize {
    ensure_started();
    assert!(n <= MAX_PROCS, "cgocheck::set_gomaxprocs({n}): accepted values are 1 to {MAX_PROCS} (0 reads it)");
    if n == 0 {
        return gomaxprocs();
    }
    // Not while the world is stopped: the world lock keeps the set of Ps
    // still from stop to restart. When it is held, from a task it is waited
    // for as a blocking call, so the task's P can be stopped meanwhile.
    //
    // Not preempted from taking the world lock to releasing it: a turn
    // would leave this task waiting for a P with the lock held, while the
    // tasks that could give it one wait for the lock (and no collection
    // could start). The blocking wait is a C call: its P can be stopped or
    // retaken meanwhile whatever the guard says.
    let np = NoPreempt::new();
    if !stw::try_lock_world() {
        stw::blocking(stw::lock_world);
    }
    let old = set_procs(n);
    stw::unlock_world();
    drop(np);
    old
}

/// Whether every P is idle, for the monitor deciding to sleep until a P
/// is taken. A yes is confirmed under the scheduler lock, where
/// `set_gomaxprocs` changes the count and the idle list together (a count
/// from before a shrink beside an idle list from after would read as all
/// idle with Ps in C and work queued); a no, the busy case, takes no lock.
pub(crate) fn all_ps_idle() -> bool {
    let idle = || SCHED.npidle.load(Ordering::SeqCst) >= SCHED.gomaxprocs.load(Ordering::SeqCst);
    idle() && {
        let _inner = lock();
        idle()
    }
}

/// `set_gomaxprocs` with the world lock held.
fn set_procs(n: usize) -> usize {
    let mut inner = lock();
    let old = SCHED.gomaxprocs.swap(n, Ordering::SeqCst);
    if n > old {
        for id in old..n {
            let p = p::get_or_create(id);
            if p::state_of(p.status.load(Ordering::Acquire)) == p::DEAD {
                pidleput(&mut inner, p);
            }
        }
    } else if n < old {
        inner.pidle.retain(|p| {
            let keep = p.id < n;
            if !keep {
                p.status.store(p::DEAD, Ordering::Release);
                SCHED.npidle.fetch_sub(1, Ordering::SeqCst);
            }
            keep
        });
        // Ps whose M is in C, by the crossing protocol: the M finds its
        // `trap` moved when the call returns, and looks for another P. (One
        // whose M entered C after this look is retired by the monitor.)
        let in_c = (n..old).filter_map(p::allp).filter_map(crossing::Suspect::of).collect();
        crossing::take_all(in_c, |_| p::DEAD);
    }
    let queued = inner.runq.len();
    drop(inner);
    if n > old {
        for _ in 0..queued.min(n - old) {
            wakep();
        }
    }
    old
}

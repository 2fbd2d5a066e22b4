//! Stopping and starting the world (Go's `stopTheWorldWithSema` and
//! `startTheWorldWithSema`), safepoints, blocking calls, and the list of
//! task stacks the collector scans while the world is stopped.
//!
//! ## What "stopped" means
//!
//! Managed code runs only on an M holding a P (`sched/p.rs`), so the world
//! is stopped when every P is in one of three stopped states, each keeping
//! its owner in the state word (decision 8 of the collector's design):
//!
//! - `STOP_RUNNING(m)`: M `m` held the P running managed code (or the
//!   scheduler) and stopped itself at a safepoint; it waits on its g0
//!   stack for the restart with its task's context saved by `mcall`;
//! - `STOP_SYSCALL(m)`: M `m` is in C; the collector stopped the P by the
//!   crossing protocol (`cgocall.rs`: a barrier, then one compare-and-swap
//!   `RUNNING(m, g)` → `STOP_SYSCALL(m)`), without waiting for C;
//! - `STOP_IDLE`: the collector took the P off the idle list (or
//!   `pidleput` stopped it instead of listing it).
//!
//! `DEAD` Ps (beyond `GOMAXPROCS`) are ignored.
//!
//! ## Stopping ([`stop_the_world`], on the collector thread `cgocheck-gc`)
//!
//! 1. Take the world lock (one stop at a time; `set_gomaxprocs` takes it
//!    too, so the set of Ps does not change while the world is stopped).
//! 2. Raise the stop flag ([`stop_requested`], one load, read by every
//!    safepoint and by the scheduler loop).
//! 3. Until every P is stopped, again and again: take the idle Ps off the
//!    idle list (`STOP_IDLE`, under the scheduler lock); stop every
//!    `RUNNING(m)` P whose M is in C by the crossing protocol (all of them
//!    behind one `membarrier` per round); ask the M of every other
//!    `RUNNING(m)` P to stop (`preempt::request`, a signal that reaches a
//!    task in a loop without safepoints), at most once a millisecond per
//!    round; wait for the owners, which stop themselves at their next
//!    safepoint (`STOP_RUNNING`), enter C (then the next round stops them)
//!    or give the P back (then `pidleput` stops it). A P that is `IDLE`
//!    but not on the list is being handed to an M, which takes it
//!    (`RUNNING`) and stops in its scheduler loop.
//!
//! ## Safepoints ([`safepoint`])
//!
//! Allocation slow paths, spawn, yield/park/sleep/channels (they go through
//! the scheduler loop, which stops its P), C call entry (`cstate` set:
//! stoppable by the collector) and a return from C on the slow path while
//! a stop is requested (the thread stops its own P as if caught in C:
//! below, and `crossing::reclaim`), and whatever
//! `preempt.rs` injects into a task that runs without reaching one. At a
//! safepoint with the flag up, the task `mcall`s to its g0 stack, which
//! saves its callee-saved registers and return address on the task's own
//! stack (so its stack from the saved SP up holds everything it keeps
//! live), stores `STOP_RUNNING(m)`, wakes the collector and waits; the
//! restart stores `RUNNING(m)` back and the task resumes where it stopped,
//! on the same M with the same P.
//!
//! ## C calls returning while the world is stopped (decision 7)
//!
//! The collector scans a task in C from `syscall_sp - 40` (the saved area
//! `asmcgocall` keeps below its frame record: the caller's `rbx`; its
//! `rbp` is in the record, and its caller keeps nothing live in `r12` to
//! `r15` across the call, `cgocall::call_c`) to the top of its stack,
//! while C may be returning. So `asmcgocall` itself
//! sets the M's `cstate` only after those registers and the syscall SP are
//! stored, and on the way back checks its `trap` before touching anything
//! at or above `syscall_sp - 40`; when it moved it calls the exit hook
//! (`cgocall::exitsyscall_hook`) with its stack pointer *below* the saved
//! registers. The hook waits ([`wait_while_stopped`], from the owner's slow
//! path `crossing::reclaim`) while the P is `STOP_SYSCALL(m)`, and takes it
//! back after the restart (or, if the P was lost to the monitor, takes the
//! scheduler's slow path, still below the saved registers). The callee-saved registers are never
//! lost: they sit in the scanned area from the call's entry to its exit.
//! A callback that arrives from C while the world is stopped waits the same
//! way, on the g0 stack, before it touches the task stack (`callback.rs`).
//!
//! ## Restarting ([`start_the_world`])
//!
//! Lower the flag, then (under the same lock the stoppers wait with) store
//! back `RUNNING(m)` for both stopped kinds (generation 0: an owner back
//! from C takes it by compare-and-swap) and wake every waiter; list the
//! stopped idle Ps again (or give them to queued work); release the world
//! lock. The flag goes down *before* the words are restored, and an owner
//! checks the flag under that lock before it stops: so no owner can stop
//! after the restore pass and wait for ever.
//!
//! ## Task stacks ([`for_each_task_stack`], decision 6)
//!
//! Once every P is stopped, every task that may hold live pointers is in
//! one of these states: suspended by `mcall` (its `sched_sp` is fresh:
//! parked, runnable, or stopped at a safepoint), in C (its `syscall_sp` is
//! fresh), or not started (its first context, built by `init_task_stack`).
//! A task running without a P (returning from C, a callback arriving)
//! writes only below `syscall_sp - 40` and holds no managed pointer there.
//! So `[min(sched_sp, syscall_sp - 40), stack_hi)` covers every live frame
//! and every saved register (decision 6); a stale value lower than the
//! truth only adds dead words, which a conservative scan tolerates. For a
//! task in C the range starts exactly at `syscall_sp - 40`: its `sched_sp`
//! is stale then, and below the syscall SP only dead frames lie, which a
//! returning C call or callback may be rewriting.

use crate::arch::CGOCALL_RESUME_SIZE;
use crate::sched::crossing;
use crate::sched::m::{current_m, M};
use crate::sched::p::{self, P};
use crate::sched::schedule;
use crate::sched::task::{self, status};
use core::ffi::c_void;
use std::mem::ManuallyDrop;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A stop is requested or in force.
static STOP: AtomicBool = AtomicBool::new(false);

/// The world lock: held (true) from `stop_the_world` to `start_the_world`,
/// and by `set_gomaxprocs`.
static WORLD: Mutex<bool> = Mutex::new(false);
static WORLD_CV: Condvar = Condvar::new();

/// The lock stopped owners wait with; the flag is checked, stopped words
/// stored and restored, under it.
static PARK: Mutex<()> = Mutex::new(());
/// Signalled at restart: stopped owners (and C calls or callbacks waiting
/// for their P) wait on it.
static RESTART_CV: Condvar = Condvar::new();
/// Signalled when an owner stopped its P: the collector waits on it.
static STOPPED_CV: Condvar = Condvar::new();

/// How long the collector waits between two looks at the Ps.
const POLL: Duration = Duration::from_micros(100);
/// How often a running M is asked again to stop.
const REQUEST_EVERY: Duration = Duration::from_millis(1);

fn park_lock() -> MutexGuard<'static, ()> {
    PARK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stop is requested (or the world is stopped): one load.
#[inline(always)]
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Acquire)
}

/// Takes the world lock (waiting while a collection or another
/// `set_gomaxprocs` holds it). Never from a task holding its P: a task
/// takes it inside [`blocking`], so the world can stop meanwhile.
pub(crate) fn lock_world() {
    let mut held = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    while *held {
        held = WORLD_CV.wait(held).unwrap_or_else(|e| e.into_inner());
    }
    *held = true;
}

/// Takes the world lock if it is free; false (not taken) when a collection
/// or another `set_gomaxprocs` holds it.
pub(crate) fn try_lock_world() -> bool {
    let mut held = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    !std::mem::replace(&mut *held, true)
}

/// Releases the world lock.
pub(crate) fn unlock_world() {
    let mut held = WORLD.lock().unwrap_or_else(|e| e.into_inner());
    *held = false;
    WORLD_CV.notify_one();
}

/// Stops every P (world running → stopped); returns when none runs managed
/// code. Called by the collector thread only (or by the test hook's own
/// thread), never by an M.
pub(crate) fn stop_the_world() {
    lock_world();
    STOP.store(true, Ordering::SeqCst);
    let mut last_request: Option<Instant> = None;
    loop {
        schedule::stop_idle_ps();
        let request = last_request.is_none_or(|t| t.elapsed() >= REQUEST_EVERY);
        let guard = park_lock();
        let mut running = false;
        // Ps whose M seems to be in C, counted in their Ms' traps: stopped
        // together behind one barrier (the crossing protocol's steps 1-4).
        let mut in_c = Vec::new();
        for id in 0..p::created() {
            let Some(pp) = p::allp(id) else { continue };
            let s = pp.status.load(Ordering::Acquire);
            match p::state_of(s) {
                p::DEAD | p::STOP_RUNNING | p::STOP_SYSCALL | p::STOP_IDLE => {}
                p::RUNNING => {
                    running = true;
                    if let Some(suspect) = crossing::Suspect::of(pp) {
                        in_c.push(suspect);
                    } else if request {
                        // SAFETY: Ms are never freed; `p.m` is set before
                        // the state word says RUNNING.
                        if let Some(m) = unsafe { pp.m.load(Ordering::Acquire).as_ref() } {
                            super::preempt::request(m);
                        }
                    }
                }
                // IDLE and off the list: being handed to an M, which
                // stops it in its scheduler loop.
                _ => running = true,
            }
        }
        if !in_c.is_empty() {
            // One not taken: its owner came back from C (or the monitor
            // took the P): the look below sees it, and the next round tries
            // again.
            crossing::take_all(in_c, |c| p::word(c.m.id, p::STOP_SYSCALL));
            running = (0..p::created()).filter_map(p::allp).any(|pp| !stopped_or_dead(pp));
        }
        if !running {
            return;
        }
        if request {
            last_request = Some(Instant::now());
        }
        drop(STOPPED_CV.wait_timeout(guard, POLL).unwrap_or_else(|e| e.into_inner()));
    }
}

/// Whether `p` is stopped (or retired): what [`stop_the_world`] waits for.
fn stopped_or_dead(p: &P) -> bool {
    matches!(p::state_of(p.status.load(Ordering::Acquire)), p::DEAD | p::STOP_RUNNING | p::STOP_SYSCALL | p::STOP_IDLE)
}

/// Restarts what [`stop_the_world`] stopped.
pub(crate) fn start_the_world() {
    {
        let _g = park_lock();
        STOP.store(false, Ordering::SeqCst);
        for id in 0..p::created() {
            let Some(pp) = p::allp(id) else { continue };
            let s = pp.status.load(Ordering::Acquire);
            if matches!(p::state_of(s), p::STOP_RUNNING | p::STOP_SYSCALL) {
                pp.status.store(pp.running_for(p::owner_of(s)), Ordering::Release);
            }
        }
        RESTART_CV.notify_all();
    }
    schedule::restart_idle_ps();
    unlock_world();
}

/// A P was stopped by `pidleput` (the collector polls, this only shortens
/// its wait).
pub(crate) fn notify_stopped() {
    STOPPED_CV.notify_one();
}

/// The owner `m` of the `RUNNING` P `p` stops it (on g0: the scheduler
/// loop, or a task at a safepoint after `mcall`) and waits for the restart,
/// which gives it back `RUNNING`. Returns at once if no stop is requested
/// (checked under the lock the restart takes, so it cannot stop after it).
pub(crate) fn stop_here(m: &M, p: &P) {
    let mut g = park_lock();
    if !stop_requested() {
        return;
    }
    let stopped = p::word(m.id, p::STOP_RUNNING);
    p.status.store(stopped, Ordering::Release);
    STOPPED_CV.notify_one();
    while p.status.load(Ordering::Acquire) == stopped {
        g = RESTART_CV.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// [`stop_here`] for a task stopped inside the preemption signal's handler
/// (`gc/preempt.rs`, "Stopped where it waits"): async-signal-safe, so no
/// lock. Stops `p` (`RUNNING` → `STOP_RUNNING`) if a stop is requested and
/// waits, polling, until the restart gives it back. A restart that came
/// between the request and the compare-and-swap (so it did not see this P
/// stopped) has lowered the stop flag first: then the P restarts itself.
pub(crate) fn stop_in_signal_handler(m: &M, p: &P) {
    /// How long the handler sleeps between two looks.
    const POLL: libc::timespec = libc::timespec { tv_sec: 0, tv_nsec: 20_000 };
    if !stop_requested() {
        return;
    }
    let stopped = p::word(m.id, p::STOP_RUNNING);
    let s = p.status.load(Ordering::Acquire);
    if !p::is_running_by(s, m.id) || p.status.compare_exchange(s, stopped, Ordering::AcqRel, Ordering::Relaxed).is_err()
    {
        return;
    }
    while p.status.load(Ordering::Acquire) == stopped {
        if !stop_requested() {
            // A failed exchange means the restart flipped it meanwhile.
            let _ = p.status.compare_exchange(stopped, p.running_for(m.id), Ordering::AcqRel, Ordering::Relaxed);
            return;
        }
        // SAFETY: nanosleep is async-signal-safe; POLL is a valid duration
        // and no remainder is asked for.
        unsafe { libc::nanosleep(&POLL, std::ptr::null_mut()) };
    }
}

/// The owner `m` of `p`, on its way back from C with the P still
/// `RUNNING` as `word` (`crossing::reclaim`), while a stop of the world is
/// requested: stops the P as the collector would have (`STOP_SYSCALL(m)`:
/// the task is still in C for the scan, its registers saved, this thread
/// below them) and waits for the restart. Checked under the lock the
/// restart takes, as [`stop_here`] does, so it cannot stop after the
/// restart. False (nothing done) if no stop is requested any more or the
/// word changed.
pub(crate) fn stop_returning_from_c(m: &M, p: &P, word: u64) -> bool {
    let g = park_lock();
    if !stop_requested() {
        return false;
    }
    let stopped = p::word(m.id, p::STOP_SYSCALL);
    if p.status.compare_exchange(word, stopped, Ordering::AcqRel, Ordering::Relaxed).is_err() {
        return false;
    }
    STOPPED_CV.notify_one();
    drop(g);
    wait_while_stopped(p, stopped);
    true
}

/// Blocks the calling thread while `p`'s word is `stopped` (an owner back
/// from C finding its P `STOP_SYSCALL`: `crossing::reclaim`), until the
/// restart stores another.
pub(crate) fn wait_while_stopped(p: &P, stopped: u64) {
    let mut g = park_lock();
    while p.status.load(Ordering::Acquire) == stopped {
        g = RESTART_CV.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// Waits, blocking the thread, while a stop is requested or in force: for
/// code about to look for a P that would only find stopped ones (a
/// callback arriving without its P waits here on g0, before touching the
/// task stack).
pub(crate) fn wait_until_running() {
    if !stop_requested() {
        return;
    }
    let mut g = park_lock();
    while stop_requested() {
        g = RESTART_CV.wait(g).unwrap_or_else(|e| e.into_inner());
    }
}

/// A safepoint: on a task while a stop is requested, stops here (context
/// saved) until the world restarts. Cheap otherwise (one load).
#[inline]
pub(crate) fn safepoint() {
    if stop_requested() {
        safepoint_slow();
    }
}

/// The approximate stack pointer of the caller.
#[inline(always)]
fn here() -> usize {
    let x = 0u8;
    std::hint::black_box(&x) as *const u8 as usize
}

/// [`safepoint`] with the flag up: stops only on a task's own stack, with
/// its P, outside C and outside runtime locks (those end with a safepoint
/// of their own: `NoPreempt`'s drop).
#[cold]
#[inline(never)]
fn safepoint_slow() {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return };
    if m.incgo.load(Ordering::Relaxed) || m.locks.load(Ordering::Relaxed) > 0 || m.p().is_none() {
        return;
    }
    let Some(g) = m.curg() else { return };
    let sp = here();
    if !(g.stack_lo.load(Ordering::Relaxed)..g.stack_hi.load(Ordering::Relaxed)).contains(&sp) {
        // On g0 (the scheduler's own code): it stops in its loop.
        return;
    }
    schedule::stop_at_safepoint();
}

/// Runs `f` as a blocking call: from a task, with its P in the C-call state
/// (so the world can stop meanwhile; `f` must not touch managed memory nor
/// block on a task); elsewhere, directly.
///
/// On a task `f` runs on the M's g0 stack through `cgocall`, like a C
/// function: its captures are read there (their bytes stay in the caller's
/// frame) and its result is written back to that frame, so neither may
/// hold a managed pointer. A panic in `f` is caught on g0 and continues in
/// the caller.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let m = unsafe { current_m().as_ref() };
    let sp = here();
    // On a task's own stack, holding its P, not in C: a C call is possible.
    let on_task = m.is_some_and(|m| {
        !m.incgo.load(Ordering::Relaxed)
            && m.p().is_some()
            && m.curg().is_some_and(|g| {
                let st = g.stack();
                (st.lo..st.hi).contains(&sp)
            })
    });
    if on_task {
        blocking_on_g0(f)
    } else {
        f()
    }
}

/// The frame [`blocking`] passes to its trampoline.
struct BlockingFrame<F, R> {
    /// The closure, read (not moved out) by the trampoline.
    f: ManuallyDrop<F>,
    result: Option<std::thread::Result<R>>,
}

/// Calls the closure of a [`BlockingFrame`] on g0 and stores its result;
/// never unwinds.
unsafe extern "C" fn blocking_trampoline<F: FnOnce() -> R, R>(frame: *mut c_void) {
    // SAFETY: `blocking_on_g0` passes its frame, live until cgocall returns.
    let frame = unsafe { &mut *frame.cast::<BlockingFrame<F, R>>() };
    // SAFETY: the closure is read once; the frame never drops it.
    let f = unsafe { ManuallyDrop::take(&mut frame.f) };
    frame.result = Some(catch_unwind(AssertUnwindSafe(f)));
}

fn blocking_on_g0<F: FnOnce() -> R, R>(f: F) -> R {
    let mut frame = BlockingFrame { f: ManuallyDrop::new(f), result: None };
    // SAFETY: the trampoline is safe to call with this frame on a thread
    // stack and does not unwind (it catches).
    unsafe {
        crate::cgocall::cgocall(blocking_trampoline::<F, R>, (&mut frame as *mut BlockingFrame<F, R>).cast(), None)
    };
    // Not a C call of the program's: `MStats::ncgocall` leaves it out
    // (`M::ncgocall` keeps it: the monitor's tick must only grow). The
    // task is on the same M (tasks never change threads).
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    if let Some(m) = unsafe { current_m().as_ref() } {
        m.uncounted.store(m.uncounted.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
    match frame.result.take().expect("cgocheck: a blocking call returned without running") {
        Ok(v) => v,
        Err(payload) => resume_unwind(payload),
    }
}

/// Calls `f(lo, hi)` for every task whose stack may hold live pointers:
/// `[lo, hi)` holds its frames and every register saved at its stop. World
/// stopped.
///
/// Every task record in use that is runnable, waiting or running (stopped
/// at a safepoint, in C, a callback's task, `run`'s main task), `hi` being
/// the top of its stack and `lo` (clamped into its stack):
///
/// - in C (its M's `incgo`, the M's current task): `syscall_sp - 40`, the
///   registers `asmcgocall` saved and everything above. Nothing below is
///   live: a callback's frames there are finished, or not started, or (in
///   a nested C call) above the nested call's syscall SP. In C with no
///   syscall SP (an extra M's task between its C thread's callbacks):
///   nothing on its stack is live, and it is skipped;
/// - otherwise the lower of its saved context (`sched_sp`: parked,
///   runnable, stopped at a safepoint) and, if set, `syscall_sp - 40` (a
///   task whose C call returned while it had lost its P: it waits for one
///   below those registers, or was suspended there);
/// - not started: its first context, the same rule.
///
/// Finished and free records are skipped.
pub(crate) fn for_each_task_stack(f: &mut dyn FnMut(usize, usize)) {
    task::for_each_g(|g| {
        match g.status.load(Ordering::Acquire) {
            status::RUNNABLE | status::WAITING | status::RUNNING => {}
            _ => return,
        }
        let (stack_lo, hi) = (g.stack_lo.load(Ordering::Relaxed), g.stack_hi.load(Ordering::Relaxed));
        if stack_lo >= hi {
            return;
        }
        let sys = g.syscall_sp.load(Ordering::Acquire);
        // SAFETY: Ms are never freed.
        let m = unsafe { g.m.load(Ordering::Acquire).as_ref() };
        let in_c =
            m.is_some_and(|m| m.incgo.load(Ordering::Acquire) && std::ptr::eq(m.curg.load(Ordering::Acquire), g));
        let lo = if in_c {
            if sys == 0 {
                return;
            }
            sys - CGOCALL_RESUME_SIZE
        } else {
            let sched = g.sched_sp.load(Ordering::Acquire);
            let sched = if sys != 0 { sched.min(sys.saturating_sub(CGOCALL_RESUME_SIZE)) } else { sched };
            // Stopped in the signal handler, blocked in a system call: its
            // live frames start at the interrupted stack pointer.
            let in_handler = m
                .filter(|m| std::ptr::eq(m.curg.load(Ordering::Acquire), g))
                .map_or(0, |m| m.signal_stop_sp.load(Ordering::Acquire));
            if in_handler != 0 {
                sched.min(in_handler)
            } else {
                sched
            }
        };
        f(lo.clamp(stack_lo, hi), hi);
    });
}

/// Calls `f(lo, hi)` for the registers of every task stopped in the
/// preemption signal's handler (`M::signal_regs`), which the collector
/// scans conservatively, as it scans the registers `async_preempt` saves on
/// a task's stack. World stopped.
pub(crate) fn for_each_signal_stop_registers(f: &mut dyn FnMut(usize, usize)) {
    crate::sched::m::for_each_m(|m| {
        if m.signal_stop_sp.load(Ordering::Acquire) != 0 {
            let lo = m.signal_regs.as_ptr() as usize;
            f(lo, lo + std::mem::size_of_val(&m.signal_regs));
        }
    });
}

/// The world as [`with_world_stopped`] hands it to its closure: stopped.
#[doc(hidden)]
pub struct StoppedWorld {
    _private: (),
}

impl StoppedWorld {
    /// Calls `f(lo, hi)` for each task stack range the collector scans
    /// (`for_each_task_stack`).
    pub fn for_each_task_stack(&self, mut f: impl FnMut(usize, usize)) {
        for_each_task_stack(&mut f);
    }
}

/// Runs `f` with the world stopped — every P stopped as for a collection —
/// and returns its result after restarting the world. For tests of the
/// stop (an invariant checked while nothing runs managed code); not for
/// programs. `f` runs on a thread of its own that is not an M: it must not
/// allocate managed memory, block on a task, or wait for anything a task
/// would have to do.
///
/// From a task it is a blocking call (the task's P is stopped with the
/// rest); elsewhere it blocks the thread. Starts the runtime if needed.
#[doc(hidden)]
pub fn with_world_stopped<R: Send>(f: impl FnOnce(&StoppedWorld) -> R + Send) -> R {
    schedule::ensure_started();
    blocking(|| {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .name("cgocheck-stw-test".into())
                .spawn_scoped(s, || {
                    stop_the_world();
                    let r = catch_unwind(AssertUnwindSafe(|| f(&StoppedWorld { _private: () })));
                    start_the_world();
                    r
                })
                .expect("cgocheck: cannot start the world-stop thread")
                .join()
                .expect("the world-stop thread does not panic")
        })
    })
    .unwrap_or_else(|payload| resume_unwind(payload))
}

//! The scheduler proper: the global run queue, idle Ps and Ms, the loop
//! every M runs on its g0 stack, and the transitions that lead into it
//! (yield, park, exit, a C call that lost its P).
//!
//! Everything here that runs on g0 is reached through `arch::mcall` or
//! `arch::g0_enter` and never returns: it ends by resuming a task with
//! `execute` (→ `gogo`), or by leaving the M (`gogo(exit_sp)`). Because those
//! frames are abandoned, not unwound, no function here holds a value that
//! needs dropping (a lock guard, a counted reference) across `execute`,
//! `schedule` or `gogo`: each guard is dropped by hand first.
//!
//! One mutex (`SCHED.inner`) guards the run queue and the idle lists; the
//! counts the fast paths and the monitor read without it (`runq_len`,
//! `npidle`, `nmspinning`, `gomaxprocs`) are atomics updated under it.
//!
//! Waking idle Ms follows Go's "spinning" rule: when work appears and a P is
//! idle, at most one idle M is woken (with that P) unless one is already
//! looking for work; an M that finds work while spinning wakes the next one
//! if more work is queued. So a burst of `ready`s costs a few wakeups, not
//! one per task.

use super::config::{config, MAX_PROCS};
use super::m::{self, current_m, set_current_m, M};
use super::monitor;
use super::p::{self, P};
use super::task::{self, current_g, new_task, status, Entry, G};
use crate::arch;
use std::collections::VecDeque;
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// The scheduler's shared state.
pub(crate) struct Sched {
    inner: Mutex<Inner>,
    /// `inner.runq.len()`.
    pub runq_len: AtomicUsize,
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

struct Inner {
    /// Runnable tasks, oldest first.
    runq: VecDeque<&'static G>,
    /// Idle Ps.
    pidle: Vec<&'static P>,
    /// Idle Ms (parked, holding no P).
    midle: Vec<&'static M>,
}

pub(crate) static SCHED: Sched = Sched {
    inner: Mutex::new(Inner { runq: VecDeque::new(), pidle: Vec::new(), midle: Vec::new() }),
    runq_len: AtomicUsize::new(0),
    npidle: AtomicUsize::new(0),
    nmspinning: AtomicUsize::new(0),
    gomaxprocs: AtomicUsize::new(0),
    retakes: AtomicU64::new(0),
    started: OnceLock::new(),
};

/// The scheduler lock. Nothing panics while holding it, but a poisoned lock
/// (a bug elsewhere) is still consistent state and is taken over.
fn lock() -> MutexGuard<'static, Inner> {
    SCHED.inner.lock().unwrap_or_else(|e| e.into_inner())
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

/// Puts `p` on the idle list, or retires it if it is beyond `GOMAXPROCS`.
fn pidleput(inner: &mut Inner, p: &'static P) {
    p.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    if p.id >= SCHED.gomaxprocs.load(Ordering::Relaxed) {
        p.status.store(p::DEAD, Ordering::Release);
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

/// `m` now holds `p` (taken off the idle list or handed over).
pub(crate) fn acquirep(m: &'static M, p: &'static P) {
    m.p.store(p as *const P as *mut P, Ordering::Relaxed);
    p.m.store(m as *const M as *mut M, Ordering::Relaxed);
    p.status.store(m.running_word, Ordering::Release);
    monitor::poke();
}

/// `m` gives up its P, which the caller then places.
fn releasep(m: &'static M) -> Option<&'static P> {
    let p = m.p();
    m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
    p
}

/// Makes `g` runnable (it must be parked or new, its context saved) and
/// wakes an M for it if a P is idle. Callable from any thread.
pub(crate) fn ready(g: &'static G) {
    g.status.store(status::RUNNABLE, Ordering::Relaxed);
    let mut inner = lock();
    inner.runq.push_back(g);
    SCHED.runq_len.fetch_add(1, Ordering::SeqCst);
    drop(inner);
    wakep();
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

/// Runs `p` on an idle M, or on a new one. `spinning`: the M is counted in
/// `nmspinning` already.
fn startm(mut inner: MutexGuard<'static, Inner>, p: &'static P, spinning: bool) {
    p.status.store(p::IDLE, Ordering::Release);
    match inner.midle.pop() {
        Some(m) => {
            drop(inner);
            m.spinning.store(spinning, Ordering::Relaxed);
            m.nextp.store(p as *const P as *mut P, Ordering::Relaxed);
            m.wake();
        }
        None => {
            drop(inner);
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

/// Sleeps `m` (holding no P) until it is handed one, then holds it.
fn sleep_for_p(m: &'static M) {
    m.sleep();
    let p = m.nextp.swap(std::ptr::null_mut(), Ordering::Relaxed);
    // SAFETY: a waker stored a P (never freed) before waking us.
    let p = unsafe { p.as_ref() }.expect("cgocheck: M woken without a P");
    acquirep(m, p);
}

/// Runs `g` on `m` (which holds a P): never returns.
fn execute(m: &'static M, g: &'static G) -> ! {
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
    // resumes it (it was taken off the run queue, or handed to this M); we
    // are on g0 and hold nothing that needs dropping.
    unsafe { arch::gogo(sp) }
}

/// The scheduler loop of `m`, on its g0 stack: find a runnable task and run
/// it, sleeping when there is none. Never returns.
pub(crate) fn schedule(m: &'static M) -> ! {
    loop {
        // A locked M runs only its task: give the P away and wait until the
        // task is runnable and a P is handed back with it.
        if let Some(lg) = m.lockedg() {
            if let Some(p) = releasep(m) {
                handoffp(p);
            }
            sleep_for_p(m);
            execute(m, lg);
        }
        let mut inner = lock();
        let p = match m.p() {
            Some(p) if p.id < SCHED.gomaxprocs.load(Ordering::Relaxed) => Some(p),
            // Retired by a smaller GOMAXPROCS (pidleput marks it dead).
            Some(p) => {
                releasep(m);
                pidleput(&mut inner, p);
                None
            }
            None => None,
        };
        if p.is_some() {
            if let Some(g) = inner.runq.pop_front() {
                SCHED.runq_len.fetch_sub(1, Ordering::SeqCst);
                drop(inner);
                if m.spinning.load(Ordering::Relaxed) {
                    stop_spinning(m);
                    if SCHED.runq_len.load(Ordering::SeqCst) > 0 {
                        wakep();
                    }
                }
                match g.lockedm() {
                    Some(lm) if !std::ptr::eq(lm, m) => {
                        // Hand our P to the M the task is locked to.
                        let p = releasep(m).expect("P held above");
                        lm.nextp.store(p as *const P as *mut P, Ordering::Relaxed);
                        lm.wake();
                        let mut inner = lock();
                        inner.midle.push(m);
                        drop(inner);
                        sleep_for_p(m);
                        continue;
                    }
                    _ => execute(m, g),
                }
            }
            // No work: the P goes idle.
            let p = releasep(m).expect("P held above");
            pidleput(&mut inner, p);
        }
        stop_spinning(m);
        inner.midle.push(m);
        let queued = !inner.runq.is_empty();
        drop(inner);
        if queued {
            // Our P was retired with work queued (a task that yielded on
            // it): another M with an idle P must take the work.
            wakep();
        }
        sleep_for_p(m);
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
/// A task that is unwinding a panic stays pinned to this thread meanwhile,
/// because the standard library keeps the panic count in a thread-local,
/// and a task resuming its unwinding on another thread would leave one
/// thread believing it is panicking forever.
fn suspend(m: &'static M, g: &'static G, f: arch::G0Fn) {
    let unwinding = std::thread::panicking();
    if unwinding {
        pin(m, g);
    }
    mcall(f);
    if unwinding {
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
    g.lockedm.store(m as *const M as *mut M, Ordering::Relaxed);
    m.lockedg.store(g as *const G as *mut G, Ordering::Relaxed);
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

/// Clears `g`'s lock to its M.
fn unlock_task(g: &'static G) {
    if let Some(m) = g.lockedm() {
        m.lockedg.store(std::ptr::null_mut(), Ordering::Relaxed);
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

/// Lets other tasks run: the caller goes to the back of the run queue (Go's
/// `Gosched`). Returns at once when nothing else is runnable. On a thread
/// that is not running a task, it is `std::thread::yield_now`.
pub fn yield_now() {
    // SAFETY: Ms are never freed.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return std::thread::yield_now() };
    let Some(g) = m.curg() else { return std::thread::yield_now() };
    let retired = m.p().is_some_and(|p| p.id >= SCHED.gomaxprocs.load(Ordering::Relaxed));
    if SCHED.runq_len.load(Ordering::SeqCst) == 0 && !retired {
        return;
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
    inner.runq.push_back(g);
    SCHED.runq_len.fetch_add(1, Ordering::SeqCst);
    drop(inner);
    schedule(m)
}

/// Ends the current task (after its body returned).
pub(crate) fn exit_current() -> ! {
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
    // changed its thread's state: like Go, end the thread with it.
    let tainted = g.locked_ext.load(Ordering::Relaxed) > 0 && !m.run_thread;
    if g.lockedm().is_some() {
        unlock_task(g);
    }
    // The scheduler's reference.
    task::release(g);
    if was_main || tainted {
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
/// is queued and this M stops, and the task continues when an M picks it up
/// (this one if the task is locked to it).
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
    inner.runq.push_back(g);
    SCHED.runq_len.fetch_add(1, Ordering::SeqCst);
    drop(inner);
    // No P: schedule sleeps this M until it is handed one (with the task,
    // if the task is locked to it).
    schedule(m)
}

/// Wires the calling task to its current thread: until as many
/// [`unlock_os_thread`] calls, it runs only on this thread, and no other
/// task runs on it. Thread-locals then stay put across yields and C calls.
/// If the task ends while locked, the thread ends too (as in Go).
///
/// # Panics
/// Outside a task.
pub fn lock_os_thread() {
    let m = this_m_in_task("lock_os_thread");
    let g = m.curg().expect("checked by this_m_in_task");
    let n = g.locked_ext.load(Ordering::Relaxed);
    assert!(n < u32::MAX, "cgocheck::lock_os_thread: too many nested locks");
    g.locked_ext.store(n + 1, Ordering::Relaxed);
    g.lockedm.store(m as *const M as *mut M, Ordering::Relaxed);
    m.lockedg.store(g as *const G as *mut G, Ordering::Relaxed);
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
/// result. Other tasks run on worker threads (and on this one while the main
/// task waits only if they are locked to it: the main task is always locked
/// to this thread, so `f` may borrow from the caller and need not be
/// `Send`).
///
/// Tasks still running when `f` returns keep running on the worker threads,
/// like detached threads. `run` may be called again later, and from several
/// threads at once (each gets its own main task).
///
/// If `f` panics, the process reports it and exits with status 2 (Go's
/// unrecovered panic in `main`).
///
/// # Panics
/// When called from inside a task (use [`spawn`](super::spawn)).
pub fn run<F, R>(f: F) -> R
where
    F: FnOnce() -> R,
{
    if current_g().is_some() {
        panic!("cgocheck::run called from inside a task; use cgocheck::spawn to start another task");
    }
    ensure_started();
    m::ensure_signal_stack();
    let m = m::run_m();
    let mut result: Option<R> = None;
    let slot: *mut Option<R> = &mut result;
    let body = move || match catch_unwind(AssertUnwindSafe(f)) {
        // SAFETY: `result` outlives the main task (run waits for it), and
        // only the main task writes it, before it ends.
        Ok(v) => unsafe { *slot = Some(v) },
        Err(payload) => task::fatal_task_panic(current_g().map_or(0, G::id), &*payload),
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
    inner.runq.push_back(g);
    SCHED.runq_len.fetch_add(1, Ordering::SeqCst);
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
        for id in n..old {
            if let Some(p) = p::allp(id) {
                let s = p.status.load(Ordering::Acquire);
                if p::state_of(s) == p::SYSCALL {
                    // Its M fails its exitsyscall compare-and-swap and looks
                    // for another P.
                    let _ = p.status.compare_exchange(s, p::DEAD, Ordering::AcqRel, Ordering::Relaxed);
                }
            }
        }
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

//! Being called by C: `cgocallback` (Go's `cgocallback` → `cgocallbackg`).
//!
//! C reaches managed code through a symbol made by [`export!`](crate::export!):
//! its `extern "C"` shim packs the C arguments into a frame, makes sure the
//! runtime has started, and calls [`cgocallback`] with the managed trampoline
//! that unpacks the frame, runs the managed function, checks its result and
//! stores it back (Go's `crosscall2` → `_cgoexp_…` → `cgocallback` →
//! `cgocallbackg`, seeds/002). This file is the middle of that chain.
//!
//! # A callback on an M whose task is in C
//!
//! The usual case: a task called C (`cgocall`: the M in C by the crossing
//! protocol, `M::incgo` set, its stack pointer saved as the task's
//! *syscall SP*), and
//! C calls back on the same thread, on the M's g0 stack below the C frames.
//! [`cgocallback`] then, still on g0:
//!
//! 1. if a stop of the world is requested or in force, takes the P back
//!    here, on g0 (waiting for the restart while the P is `STOP_SYSCALL`),
//!    before touching the task stack, whose part above the syscall SP the
//!    collector may be scanning (`gc/stw.rs`); without its P it waits for
//!    the restart too, as there is no P to find until then. (Otherwise
//!    step 3 takes the P back: one load here on the fast path.)
//! 2. saves the M's `g0_sp` and the task's syscall SP in its own frame
//!    (a [`Callback`] record), and calls `arch::cgocallback_switch`, which
//!    lowers `g0_sp` below its frame — so every g0 use during the callback
//!    (the scheduler through `mcall`, nested C calls through `asmcgocall`)
//!    lands below the live C frames: the rule of Go's `mcall` change,
//!    seeds/004 — and switches to the task's stack just below what
//!    `asmcgocall` keeps there;
//! 3. on the task stack, [`callbackg`] locks the task to this M (C frames of
//!    this thread are live: the task must come back to it), runs the
//!    exitsyscall half (`crossing::leave_c` unless step 1 did: `cstate`
//!    cleared and the `trap` compared, the slow path's compare-and-swap
//!    only if it moved — a stop requested meanwhile makes it wait there,
//!    below the syscall SP's saved registers; `incgo` cleared; without the
//!    P, the scheduler's slow path, which waits for a P: `GOMAXPROCS`
//!    holds), and runs
//!    `f(frame)` inside `catch_unwind`. Managed code there
//!    is an ordinary task: it may allocate, block, yield, spawn, join,
//!    sleep and call C, which goes through the normal `cgocall` path and may
//!    call back again, to any depth;
//! 4. then the entersyscall half (the syscall SP restored, `incgo` set,
//!    then `cstate`: `crossing::enter_c`), the lock undone, back to g0,
//!    `g0_sp` restored, and the shim returns to C.
//!
//! ```text
//!   task stack                            g0 stack (the thread's)
//!   | managed caller          |           | scheduler / thread entry  |
//!   | cgocall                 |           +---------------------------+ <- g0_sp (outer)
//!   | asmcgocall {rbp, ret}   | <- syscall SP ----------------------. | asmcgocall's record
//!   | 5 saved regs (resume)   |           | C frames                  |
//!   | {g0 record, ret} -------+---------> | export shim, cgocallback  |
//!   | callbackg (catch_unwind)|           |   (Callback: old g0_sp,   |
//!   | managed function        |           |    old syscall SP)        |
//!   | cgocall (nested)        |           | cgocallback_switch record |
//!   | asmcgocall {rbp, ret}   | <- syscall SP (inner)  ---------------+ <- g0_sp (inner)
//!   | ...                     |           | C frames of the nested call |
//! ```
//!
//! `M::ncallback` counts the callbacks in progress (the C depth, Go's
//! `m.ncgo`, is that plus `incgo`: `MStats::ncgo`). Unwinders walk the
//! whole chain: the managed frames
//! of a callback unwind into the C frames (`cgocallback_switch`'s CFI), the
//! C frames into the task's managed caller (`asmcgocall`'s).
//!
//! # A callback on a thread C created
//!
//! A thread the runtime never saw has no M. The first call from it binds an
//! **extra M** (Go's `needm`): one from the free list, or a new one with a
//! fresh task record and stack that it keeps for its life. The thread's own
//! stack is that M's g0; the M stays bound to the thread for later
//! callbacks (a thread-local) and is released when the thread exits, by a
//! pthread key destructor (Go's `dropm`): its P, if it kept one, goes back
//! to the scheduler and the M to the free list, so threads coming and going
//! do not leak Ms (`Stats::extra_ms_bound` counts bound ones). Binding
//! also gives the thread an alternate signal stack unless it has one
//! (Go's `minitSignalStack`), so that a stack overflow on it later —
//! in C or in a callback — is reported rather than a bare `SIGSEGV`; the
//! destructor frees it with the binding. The extra
//! M's task is always "in C" between callbacks (`incgo` set, no syscall
//! SP), so a callback there takes the same path as above, with the task
//! stack starting at its top; between callbacks the task's record reads as
//! finished, so crash reports do not list it. Like a task returning to C,
//! the M keeps its P, in C, after a callback: the next callback takes it
//! back with the owner's plain exit, and the monitor retakes it if the
//! thread stays in C while other tasks wait.
//!
//! # Panics
//!
//! A panic never unwinds into C (C frames have no landing pads, and the
//! shim is `extern "C"`). `callbackg` catches it at the base of the
//! callback on the task stack, runs the entersyscall half and undoes the
//! lock as a return would, restores `g0_sp` to its value before this
//! callback, and jumps (`arch::cgocall_resume`) to the resume point the
//! enclosing `asmcgocall` left below the task's syscall SP: `asmcgocall`
//! returns into `cgocall` with the boxed payload, `cgocall` finishes its
//! exitsyscall (the counters, `nocallback`, the P) as after any C call,
//! and resumes the unwinding in its managed caller ([`resume_panic`]),
//! where `catch_unwind` can catch it — or, if that caller is itself a
//! callback, the same happens one level out. Each level restores its own
//! `g0_sp` and syscall SP, so the M's state goes back in lock step.
//!
//! The C frames in between are discarded without running any more C code:
//! C has no destructors, so there is nothing to run, and the C function's
//! own state (locks it holds, memory it allocated) is abandoned, exactly as
//! in Go, whose `cgocallbackg` unwinds the same way (`unwindm`). Nothing on
//! the managed side is skipped: every managed frame between the panic and
//! the catch is unwound normally. The task stays on the same thread
//! throughout (it is locked to the M), so the standard library's
//! thread-local panic count stays right.
//!
//! With no managed caller — the outermost callback of a thread C created
//! (or of a C `main`), or an exported function called directly from Rust —
//! there is nowhere to carry the panic: it is fatal, and reported like any
//! unrecovered panic in a task (`signal::report_fatal_callback_panic`):
//! `panic: …` once, a `fatal error:` line saying why, the callback's task
//! with its managed frames and the C frames that called it, the other
//! tasks per `GOTRACEBACK`; then exit status 2 by `_exit` (no `atexit`
//! handler or C destructor runs in the dying process) or, at
//! `GOTRACEBACK=crash`, `SIGABRT`.
//!
//! Callbacks from C functions declared `nocallback` are refused by the
//! export trampoline itself (`export::refuse_if_nocallback`, reading the flag
//! `cgocall` records on the M), as the first managed code of the callback.

use crate::arch::{cgocall_resume, cgocallback_switch, CGOCALL_RESUME_SIZE};
use crate::gc::stw;
use crate::sched::config::config;
use crate::sched::crossing;
use crate::sched::m::{current_m, new_m, set_current_m, EXTRA_BOUND, M};
use crate::sched::schedule::{exitsyscall_slow, handoffp, pin, unpin, SCHED};
use crate::sched::task::{self, new_task, status, Entry, G};
use crate::signal::AltStack;
use core::ffi::c_void;
use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, OnceLock};

/// Runs `f(frame)` as managed code on behalf of C: called by an exported
/// function's `extern "C"` shim on whatever stack C is using.
///
/// `f` is the export's trampoline; `frame` holds the C arguments and
/// receives the result. Returns only if `f` returned (the export shim then
/// reads the result from `frame`). If `f` panics, the panic continues in the
/// managed caller of the enclosing C call, skipping the C frames, or is
/// fatal when there is none (see the module comment). It never unwinds into
/// its caller, the `extern "C"` shim.
///
/// # Safety
/// `f` must be safe to call with `frame`, and `frame` must stay valid for
/// the call.
pub unsafe fn cgocallback(f: unsafe fn(frame: *mut c_void), frame: *mut c_void) {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    match unsafe { current_m().as_ref() } {
        Some(m) if m.incgo.load(Ordering::Relaxed) => {
            let g = m.curg().expect("cgocheck: an M in C without a task");
            let resume = g.syscall_sp.load(Ordering::Relaxed);
            // SAFETY: we are on m's g0 stack, called by C that m's task
            // called through cgocall (incgo), whose asmcgocall saved `resume`;
            // the caller vouches for f(frame).
            unsafe { callback_on_m(m, g, f, frame, resume) }
        }
        // Managed code calling an exported function directly (on its own
        // stack, not through C): run it in place.
        Some(_) => in_place(f, frame),
        // SAFETY: the caller's contract.
        None => unsafe { callback_on_c_thread(f, frame) },
    }
}

/// One callback level, in the frame of [`callback_on_m`] on the g0 stack
/// (above the lowered g0 SP, so nothing overwrites it while the callback
/// runs); [`callbackg`] reads it from the task stack.
struct Callback {
    m: &'static M,
    g: &'static G,
    f: unsafe fn(*mut c_void),
    frame: *mut c_void,
    /// `M::g0_sp` before this callback: restored when it returns or panics.
    old_g0_sp: usize,
    /// The task's syscall SP before this callback: the enclosing
    /// `asmcgocall`'s resume point, restored when the callback ends; 0 for
    /// the outermost callback of a thread C created (no managed caller).
    syscall_sp: usize,
    /// Step 1 took the P back on g0 (`Some(true)`) or found it gone
    /// (`Some(false)`); `None`: `callbackg` takes it back.
    have_p: Option<bool>,
}

/// The callback path proper (module comment, steps 1–4): `resume` is `g`'s
/// syscall SP, or 0 on an extra M's outermost level, whose task stack is
/// then used from its top.
///
/// # Safety
/// Must run on `m`'s g0 stack with `g = m.curg` in C (`incgo`); a non-zero
/// `resume` must be the syscall SP of the C call in progress; `f(frame)` as
/// for [`cgocallback`].
#[inline(always)]
unsafe fn callback_on_m(m: &'static M, g: &'static G, f: unsafe fn(*mut c_void), frame: *mut c_void, resume: usize) {
    // Step 1, on g0, only while a stop is requested or in force: the P
    // back (waiting out the stop), or nothing to take back until the world
    // runs.
    let have_p = if stw::stop_requested() {
        let have = crossing::leave_c(m);
        if !have {
            stw::wait_until_running();
        }
        Some(have)
    } else {
        None
    };
    let mut cb = Callback { m, g, f, frame, old_g0_sp: m.g0_sp.load(Ordering::Relaxed), syscall_sp: resume, have_p };
    // Below asmcgocall's resume point, or the top of an unused task stack
    // (16 bytes kept free there, as a new task's null frame record).
    let task_sp = if resume != 0 { resume - CGOCALL_RESUME_SIZE } else { g.stack_hi.load(Ordering::Relaxed) - 16 };
    // SAFETY: we are on m's g0 stack; below `task_sp` the task stack is
    // unused while the task is in C; `callbackg` returns or leaves by
    // cgocall_resume; `cb` outlives the call.
    unsafe { cgocallback_switch((&mut cb as *mut Callback).cast(), callbackg, task_sp, m.g0_sp.as_ptr()) };
    m.g0_sp.store(cb.old_g0_sp, Ordering::Relaxed);
}

/// The task-stack half of a callback (Go's `cgocallbackg`), called by
/// `arch::cgocallback_switch` with the [`Callback`] record.
unsafe extern "C" fn callbackg(arg: *mut c_void) {
    // SAFETY: callback_on_m passes its record, live on g0 until this returns
    // (or jumps away, after the last read below).
    let cb = unsafe { &*(arg as *const Callback) };
    let (m, g) = (cb.m, cb.g);
    // C frames of this thread are live: the task must come back to this M
    // whenever it blocks. And no scheduling turns (`M::in_callback`).
    pin(m, g);
    m.ncallback.store(m.ncallback.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    // exitsyscall: the P back (one compare-and-swap, or waiting out a stop
    // that began since step 1, still "in C": only the saved registers above
    // are scanned), out of C, and without the P the slow path (it may wait
    // for one).
    let have_p = cb.have_p.unwrap_or_else(|| crossing::leave_c(m));
    m.incgo.store(false, Ordering::Relaxed);
    if !have_p {
        exitsyscall_slow(m, g);
    }
    // SAFETY: cgocallback's caller vouches for f(frame).
    let ran = catch_unwind(AssertUnwindSafe(|| unsafe { (cb.f)(cb.frame) }));
    // A callback on a thread C created is a task of its own: its
    // task-locals end with it (the M and its task serve the next thread).
    let ran = if cb.syscall_sp == 0 { crate::sched::task_local::end_c_thread_callback(g, ran) } else { ran };
    // entersyscall: back to C, keeping the P. A new C call count for the
    // monitor's tick: a callback ends the call it saw.
    let p = m.p().expect("cgocheck: a task running a callback without a P");
    m.ncgocall.store(m.ncgocall.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    m.uncounted.store(m.uncounted.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    g.syscall_sp.store(cb.syscall_sp, Ordering::Relaxed);
    m.incgo.store(true, Ordering::Relaxed);
    crossing::enter_c(m);
    m.ncallback.store(m.ncallback.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
    if cb.syscall_sp == 0 && SCHED.runq_len.load(Ordering::Relaxed) > 0 {
        // A thread C made keeps its P between callbacks, but work waits
        // for a P: give it on now, as the monitor's retake would. (The
        // monitor cannot: a thread calling back more often than its period
        // shows a new C-call count each time, and would keep the P from
        // the waiting tasks for ever.) Its next callback finds a P the
        // slow way.
        if crossing::give_up(m, p) {
            m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
            handoffp(p);
        }
    }
    unpin(g);
    if let Err(payload) = ran {
        // SAFETY: `cb` is this callback's record, the state is that of a C
        // call returning, and nothing on this stack needs dropping.
        unsafe { unwind_to_caller(cb, payload) }
    }
}

/// Ends a callback that panicked: restores the g0 SP and jumps to the
/// enclosing `asmcgocall`'s resume point with the payload, abandoning the
/// C frames between (module comment). Fatal with no managed caller.
///
/// # Safety
/// As [`cgocall_resume`]: called from `callbackg` after its entersyscall
/// half, with nothing left to drop on the task stack below the resume point.
#[cold]
#[inline(never)]
unsafe fn unwind_to_caller(cb: &Callback, payload: Box<dyn Any + Send>) -> ! {
    if cb.syscall_sp == 0 {
        crate::signal::report_fatal_callback_panic(Some(cb.g.id()), &*payload);
    }
    cb.m.g0_sp.store(cb.old_g0_sp, Ordering::Relaxed);
    let sp = cb.syscall_sp;
    let raw = Box::into_raw(Box::new(payload)) as usize;
    // SAFETY: `sp` is the syscall SP of this task's C call in progress on
    // this thread (the task is locked here); the counters and the M (in C,
    // leaving it in cgocall_resume) are those of a C call returning; the
    // payload is boxed and everything else on the abandoned frames is
    // plain data.
    unsafe { cgocall_resume(sp, raw, cb.m) }
}

/// Continues, in the managed caller of a C call, the panic of a callback
/// that C call made: `payload` is what [`unwind_to_caller`] boxed. Called by
/// `cgocall` once its exitsyscall is done.
///
/// # Safety
/// `payload` must come from `unwind_to_caller`, once.
#[cold]
#[inline(never)]
pub(crate) unsafe fn resume_panic(payload: usize) -> ! {
    // SAFETY: the caller's contract: a Box<Box<dyn Any + Send>> leaked once.
    let payload = unsafe { Box::from_raw(payload as *mut Box<dyn Any + Send>) };
    resume_unwind(*payload)
}

/// An exported function called from managed code on its own stack (not
/// through C): nothing to switch; a panic has no C frames to skip but
/// cannot leave the `extern "C"` shim either, so it is fatal.
fn in_place(f: unsafe fn(*mut c_void), frame: *mut c_void) {
    // SAFETY: cgocallback's caller vouches for f(frame).
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| unsafe { f(frame) })) {
        // SAFETY: Ms are never freed; a non-null current M is this thread's.
        let task = unsafe { current_m().as_ref() }.and_then(M::curg).map(G::id);
        crate::signal::report_fatal_callback_panic(task, &*payload);
    }
}

thread_local! {
    /// The extra M bound to this thread (a thread C created), or null.
    static EXTRA_M: Cell<*const M> = const { Cell::new(std::ptr::null()) };
}

/// Extra Ms released by exited threads, ready for the next one.
static EXTRA_FREE: Mutex<Vec<&'static M>> = Mutex::new(Vec::new());

/// What a thread C created holds while bound (the value of
/// [`EXTRA_KEY`]): its extra M and the alternate signal stack made for it.
struct Binding {
    m: &'static M,
    /// Dropped with the binding, on the thread itself, which turns it off
    /// and unmaps it (nothing when the thread had its own).
    _alt_stack: AltStack,
}

/// The pthread key whose destructor releases a thread's extra M.
static EXTRA_KEY: OnceLock<libc::pthread_key_t> = OnceLock::new();

/// A callback on a thread that is not an M: bind this thread's extra M for
/// the duration (making the thread that M), run the callback as its task.
///
/// # Safety
/// As [`cgocallback`].
unsafe fn callback_on_c_thread(f: unsafe fn(*mut c_void), frame: *mut c_void) {
    let mut m = EXTRA_M.with(Cell::get);
    if m.is_null() {
        m = needm();
    }
    // SAFETY: Ms are never freed.
    let m: &'static M = unsafe { &*m };
    let g = m.curg().expect("cgocheck: an extra M without its task");
    set_current_m(m);
    // While it runs, the callback is a live task: `stats().tasks` counts
    // the extra Ms whose task is not `DEAD` (plain stores here, not a
    // shared counter's locked increment and decrement per callback).
    g.status.store(status::RUNNING, Ordering::Relaxed);
    // SAFETY: the thread's stack is m's g0; m's task is in C with nothing
    // on its stack (resume 0: the task stack is used from its top).
    unsafe { callback_on_m(m, g, f, frame, 0) };
    g.status.store(status::DEAD, Ordering::Relaxed);
    set_current_m(std::ptr::null());
}

/// Binds an extra M to the calling thread (Go's `needm`): one from the free
/// list, or a new one, with its own task record and stack kept for its
/// life. Registers the thread-exit destructor that releases it.
#[cold]
#[inline(never)]
fn needm() -> *const M {
    let key = *EXTRA_KEY.get_or_init(|| {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is writable; `dropm` has the destructor's signature.
        let rc = unsafe { libc::pthread_key_create(&mut key, Some(dropm)) };
        assert_eq!(rc, 0, "cgocheck: pthread_key_create failed");
        key
    });
    let free = EXTRA_FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let m = free.unwrap_or_else(new_extra_m);
    m.set_thread(Some(std::thread::current()));
    EXTRA_M.with(|c| c.set(m));
    EXTRA_BOUND.fetch_add(1, Ordering::SeqCst);
    let binding = Box::new(Binding { m, _alt_stack: AltStack::for_this_thread() });
    // SAFETY: `key` was created above; the value is a leaked Binding that
    // `dropm` takes back.
    let rc = unsafe { libc::pthread_setspecific(key, Box::into_raw(binding).cast()) };
    assert_eq!(rc, 0, "cgocheck: pthread_setspecific failed");
    m
}

/// A new extra M and its task: the task never runs its own body; its stack
/// hosts the M's callbacks. It is locked to the M for good, counts as a
/// live task only while a callback runs on it, and reads as "in C" between
/// callbacks.
fn new_extra_m() -> &'static M {
    let m = new_m(false, true);
    let t = new_task(config().stack_size, Entry::new(|| {}));
    let g = t.g();
    // The M keeps the record for its whole life (Ms are never freed).
    std::mem::forget(t);
    task::LIVE.fetch_sub(1, Ordering::Relaxed);
    g.status.store(status::DEAD, Ordering::Relaxed);
    g.m.store(m as *const M as *mut M, Ordering::Relaxed);
    m.curg.store(g as *const G as *mut G, Ordering::Relaxed);
    pin(m, g);
    m.incgo.store(true, Ordering::Relaxed);
    m
}

/// The pthread key destructor of a thread with an extra M (Go's `dropm`):
/// runs as the thread exits, outside any callback. Gives the M's P back to
/// the scheduler if it still holds it (in C after its last callback) and
/// puts the M on the free list; frees the thread's
/// alternate signal stack. The pages its callbacks touched on the M's task
/// stack go back to the kernel (the stack itself stays the M's), so a C
/// thread that recursed deeply in a callback does not leave its memory
/// resident until another thread binds the M.
unsafe extern "C" fn dropm(arg: *mut c_void) {
    // SAFETY: needm stored a leaked Binding as this key's value; the
    // destructor runs once per thread, so it is taken back once.
    let binding = unsafe { Box::from_raw(arg.cast::<Binding>()) };
    let m = binding.m;
    let g = m.curg().expect("cgocheck: an extra M without its task");
    // SAFETY: the thread is exiting outside any callback: nothing runs on
    // the task stack (each callback starts at its top) until a thread
    // binds this M again, after it is on the free list below.
    unsafe { crate::heap().release_stack_pages(g.stack()) };
    if let Some(p) = m.p() {
        // Unless the monitor retook it meanwhile, it is ours to hand off
        // (after the restart, if the world is stopped: the thread waits).
        let ours = crossing::leave_c(m);
        m.p.store(std::ptr::null_mut(), Ordering::Relaxed);
        if ours {
            handoffp(p);
        }
    }
    m.set_thread(None);
    EXTRA_M.with(|c| c.set(std::ptr::null()));
    EXTRA_FREE.lock().unwrap_or_else(|e| e.into_inner()).push(m);
    EXTRA_BOUND.fetch_sub(1, Ordering::SeqCst);
}

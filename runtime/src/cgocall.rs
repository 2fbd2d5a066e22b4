//! Calling C from a task: `cgocall`.
//!
//! The typed call layer (`crate::ffi`) turns a call of a declared C function
//! into a frame holding the arguments and a slot for the result, and a small
//! `extern "C"` trampoline that unpacks the frame, calls the C function and
//! stores the result. It passes both to [`cgocall`], which does what Go's
//! `runtime.cgocall` does:
//!
//! 1. **entersyscall.** The task stays on its M and the M keeps its P, but
//!    the P's state word becomes `SYSCALL` (owner: this M), one plain
//!    release store, made by `asmcgocall` (step 2) once the task's
//!    registers and stack pointer are saved where the collector looks for
//!    them. The P's `syscalltick` is bumped so the monitor can tell
//!    one long call from many short ones. The M's counters go up:
//!    `ncgocall` (calls made) and `ncgo` (calls in progress, the C depth);
//!    `incgo` says its task is in C, and `nocallback` is recorded for the
//!    call. (The task's own status stays `RUNNING`: Go flips it too, but
//!    every field here sits on the M's one hot cache line and that saves a
//!    nanosecond per call; "in C" is `incgo` of the task's M.)
//!
//! 2. **asmcgocall** (`arch::asmcgocall`). Saves the task's stack pointer in
//!    the task record (its *syscall SP*: where the managed frames continue,
//!    for crash reports and the collector), switches to the M's g0 stack at
//!    `g0_sp`, calls the trampoline there, and switches back. C never runs on
//!    a task stack: it gets the thread's full-size stack, and a task stack
//!    can stay small. The CFI of that switch lets debuggers, `backtrace()`
//!    and crash reports walk from C frames into the managed caller.
//!
//! 3. **exitsyscall.** One compare-and-swap, `SYSCALL(this M)` →
//!    `RUNNING(this M)`, takes the P back, in `asmcgocall` before it writes
//!    anything on the task stack. It fails if, while the task was in C, the
//!    collector stopped the world (`STOP_SYSCALL(this M)`), or the monitor
//!    retook the P for waiting tasks (or `set_gomaxprocs` retired it). Then
//!    `asmcgocall` calls [`exitsyscall_hook`] below the registers it saved
//!    (the collector may be scanning them: decision 7 of the collector's
//!    design, `gc/stw.rs`), which waits for the world to restart and takes
//!    the P back, or takes the slow path
//!    (`sched::schedule::exitsyscall_slow`): an idle P if there is one, or
//!    the task is queued and the M sleeps; the task continues when an M
//!    with a P picks it up.
//!
//! The fast path (1–3 with the compare-and-swap succeeding) takes no lock,
//! allocates nothing and makes no system call; `tests/cgocall_alloc.rs`
//! counts allocations to keep it so.
//!
//! ## Callbacks
//!
//! A C function calling back into managed code arrives on this M's g0 stack,
//! below asmcgocall's frame; `crate::callback` lowers `M::g0_sp` below the
//! C frames, runs the managed function on the task stack below its syscall
//! SP with the P taken back, and returns to C. Managed code never runs on
//! g0, so a C call made from a callback takes the path above like any
//! other (`M::ncgo` counts the depth). A callback that panics abandons the
//! C frames and makes `asmcgocall` return the panic's payload
//! (`arch::cgocall_resume`); `cgocall` then finishes its exitsyscall and
//! resumes the unwinding in its caller.

use crate::sched::m::{current_m_inline, M};
use crate::sched::schedule::exitsyscall_slow;
use core::ffi::c_void;
use std::sync::atomic::{compiler_fence, Ordering};

/// Hides a value from the optimiser: a function pointer is non-null by
/// Rust's rules, so `f as usize == 0` would be folded to `false`; the check
/// must see the real register.
#[inline(always)]
fn opaque(mut x: usize) -> usize {
    // SAFETY: an empty asm block that claims to modify the register; it
    // touches no memory, stack or flags.
    unsafe { core::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags)) };
    x
}

#[cold]
#[inline(never)]
#[track_caller]
fn null_function() -> ! {
    panic!("cgocheck::cgocall: the C function pointer is null")
}

#[cold]
#[inline(never)]
#[track_caller]
fn not_in_task() -> ! {
    panic!(
        "cgocheck::cgocall called outside a task: start the runtime with cgocheck::run(|| ...) (in a test: \
         cgocheck::run_test(|| ...)) and call C from inside it (or from a task it spawns)"
    )
}

/// A C function declared `nocallback` (Go's `#cgo nocallback`), by name:
/// what `cgocall` records on the M so that a callback from it is refused with
/// a message naming it. The call layer passes a promoted constant
/// (`Some(&NoCallback("f"))`), so recording it is one pointer store.
#[derive(Debug)]
pub struct NoCallback(pub &'static str);

/// Calls `f(frame)` on the current M's g0 (system) stack with the calling task
/// in the syscall state: entersyscall, asmcgocall, exitsyscall. `f` is the
/// call layer's trampoline that unpacks the C arguments from `frame`, calls the
/// C function and stores its result there. `nocallback` names the C
/// function when it is declared `nocallback`: it is recorded on the M for
/// the duration of the call so the callback path can refuse a callback from
/// it and say which function made it.
///
/// # Panics
/// If `f` is null, or when called outside a task (start the runtime with
/// `cgocheck::run`). A panic in a callback the C function made continues
/// here, after the C frames were discarded (`crate::callback`).
///
/// Both panics name the caller's line (`#[track_caller]`, as the
/// `c_functions!` wrappers are): a C call made outside `run` points at the
/// user's call, not at this file.
///
/// # Safety
/// `f` must be safe to call with `frame` on a thread stack, and must not
/// unwind.
#[inline(never)]
#[track_caller]
pub unsafe fn cgocall(
    f: unsafe extern "C" fn(frame: *mut c_void),
    frame: *mut c_void,
    nocallback: Option<&'static NoCallback>,
) {
    if opaque(f as usize) == 0 {
        null_function();
    }
    // Read once, here, before anything can move the task to another thread;
    // cgocall is never inlined, so no caller can reuse the address (see
    // `sched/m.rs`).
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m_inline().as_ref() }) else { not_in_task() };
    let Some(g) = m.curg() else { not_in_task() };

    // entersyscall. `incgo` first: from here on the preemption signal
    // leaves this task alone (`gc/preempt.rs`), so the P read next is still
    // this M's when asmcgocall uses it. (A scheduling turn taken just before
    // may have changed the M's P: a P read earlier could be another M's.)
    m.incgo.store(true, Ordering::Relaxed);
    compiler_fence(Ordering::SeqCst);
    // A running task always holds a P.
    let Some(p) = m.p() else {
        m.incgo.store(false, Ordering::Relaxed);
        not_in_task()
    };
    m.ncgocall.store(m.ncgocall.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    let depth = m.ncgo.load(Ordering::Relaxed);
    m.ncgo.store(depth + 1, Ordering::Relaxed);
    let outer_nocallback = m.nocallback.load(Ordering::Relaxed);
    m.nocallback
        .store(nocallback.map_or(std::ptr::null_mut(), |n| (n as *const NoCallback).cast_mut()), Ordering::Relaxed);
    p.syscalltick.store(p.syscalltick.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);

    // SAFETY: we run on `g`'s stack on M `m`, which holds its P `RUNNING`
    // and whose g0 area below `g0_sp` is unused while a task runs managed
    // code; `syscall_sp` is the task's own field; the caller vouches for
    // `f(frame)`. asmcgocall makes the P SYSCALL and takes it back.
    let panicked =
        unsafe { crate::arch::asmcgocall(f, frame, m.g0_sp.load(Ordering::Relaxed), g.syscall_sp.as_ptr(), m, p) };

    // exitsyscall: the P is ours again.
    g.syscall_sp.store(0, Ordering::Relaxed);
    m.incgo.store(false, Ordering::Relaxed);
    m.nocallback.store(outer_nocallback, Ordering::Relaxed);
    m.ncgo.store(depth, Ordering::Relaxed);
    if panicked != 0 {
        // SAFETY: a non-zero result is the payload a callback of this call
        // boxed before `cgocall_resume` (callback.rs).
        unsafe { crate::callback::resume_panic(panicked) }
    }
}

/// `asmcgocall`'s exit when its compare-and-swap `SYSCALL(m)` → `RUNNING(m)`
/// failed, called on the task stack *below* the callee-saved registers
/// `asmcgocall` saved under the task's syscall SP (so nothing the collector
/// may be scanning is written): waits while the world is stopped
/// (`STOP_SYSCALL(m)`) and takes the P back after the restart; if the P is
/// gone (the monitor took it, `set_gomaxprocs` retired it) takes the
/// scheduler's slow path, which returns once this M holds a P again.
/// Returns `result` (what `asmcgocall` returns: 0, or a callback's panic
/// payload passed by `cgocall_resume`).
///
/// # Safety
/// Called only by `asmcgocall` and `cgocall_resume`, with the current M,
/// whose task is returning from C.
pub(crate) unsafe extern "C" fn exitsyscall_hook(m: *const M, result: usize) -> usize {
    // SAFETY: the caller passes the current M (never freed).
    let m: &'static M = unsafe { &*m };
    if !crate::gc::stw::reacquire_syscall_p(m) {
        let g = m.curg().expect("cgocheck: a C call returning without its task");
        // The task is out of C now: the slow path may switch it out.
        m.incgo.store(false, Ordering::Relaxed);
        exitsyscall_slow(m, g);
    }
    result
}

//! Being called by C: `cgocallback` (first version).
//!
//! C reaches managed code through a symbol made by [`export!`](crate::export!):
//! its `extern "C"` shim packs the C arguments into a frame, makes sure the
//! runtime has started, and calls [`cgocallback`] with the managed trampoline
//! that unpacks the frame, runs the managed function, checks its result and
//! stores it back (Go's `crosscall2` → `_cgoexp_…` → `cgocallback` →
//! `cgocallbackg`, seeds/002). This file is the middle of that chain.
//!
//! # What this first version does
//!
//! - It runs `f(frame)` directly, on whatever stack and thread C is using:
//!   the C thread's own stack for a thread the runtime never saw; for a C
//!   call a task made, the M's g0 stack below the C frames, with the task
//!   still in the syscall state. There is no stack switch, no
//!   `exitsyscall`/`entersyscall`, no M bound to foreign threads, so
//!   `GOMAXPROCS` is not respected by callbacks yet. Managed code in such a
//!   callback may allocate, use Handles and call C again (`cgocall` sees the
//!   syscall state and calls C right there), but must not block on the
//!   scheduler (`yield_now`, `park`, `join`, `Chan`, `sleep`): that would
//!   start g0 frames at the M's saved g0 SP, over the live C frames.
//! - A panic in `f` never unwinds into C (that would be undefined
//!   behaviour: C frames have no landing pads, and the shim is `extern "C"`).
//!   It is caught here and, since this version has no way to carry it past
//!   the C frames to a managed caller, it is fatal: the panic's own message
//!   (printed by the panic hook) is followed by a `fatal error:` line, and
//!   the process exits with status 2, as an unrecovered panic does in Go.
//! - Callbacks from C functions declared `nocallback` are refused by the
//!   export trampoline itself (`export::refuse_if_nocallback`, reading the
//!   flag `cgocall` records on the M), as the first managed code of the
//!   callback; that does not change with the full version.
//!
//! # What the full version does (same signature, new body)
//!
//! - Find the current M. On a thread in a C call made by a task: switch from
//!   the g0 stack to that task's stack below its saved syscall SP, save the
//!   g0 SP, `exitsyscall` (waiting for a P, so `GOMAXPROCS` holds), run
//!   `f(frame)`, `entersyscall`, restore the g0 SP, switch back. Nesting to
//!   any depth saves and restores the g0 SP at each level (seeds/004).
//! - On a C thread the runtime never saw: bind an extra M with a fresh task,
//!   keep it bound for later callbacks, release it at thread exit (pthread
//!   key destructor).
//! - A panic in `f` unwinds the managed frames, discards the C frames in
//!   between without running more C, restores the g0 stack in lock step,
//!   fixes the counters, and continues unwinding in the managed caller of the
//!   C call. Only with no managed caller (a foreign thread's outermost call)
//!   is it fatal, as here.

use core::ffi::c_void;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f(frame)` as managed code on behalf of C: called by an exported
/// function's `extern "C"` shim on whatever stack C is using.
///
/// `f` is the export's trampoline; `frame` holds the C arguments and
/// receives the result. Returns only if `f` returned (the export shim then
/// reads the result from `frame`: any version must keep this); if `f`
/// panics this version ends the process with a fatal report (see the module
/// comment). It never unwinds into its caller, the `extern "C"` shim.
///
/// # Safety
/// `f` must be safe to call with `frame`, and `frame` must stay valid for
/// the call.
pub unsafe fn cgocallback(f: unsafe fn(frame: *mut c_void), frame: *mut c_void) {
    // SAFETY: the caller's contract.
    let ran = catch_unwind(AssertUnwindSafe(|| unsafe { f(frame) }));
    if let Err(payload) = ran {
        fatal_panic(&*payload);
    }
}

/// The end of a callback that panicked, which this version cannot unwind
/// past the C frames. The panic hook has already printed the whole message and where the
/// panic happened; this names the panic again by its first line (a custom
/// hook may have printed nothing), says why the program stops, and exits
/// with status 2.
#[cold]
#[inline(never)]
fn fatal_panic(payload: &(dyn Any + Send)) -> ! {
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)");
    let first_line = msg.lines().next().unwrap_or("");
    eprintln!(
        "fatal error: unrecovered panic in a function called from C: {first_line}\n\
         (a panic may not unwind into C frames, and this version of the callback path cannot carry it past them)"
    );
    std::process::exit(2)
}

//! Calling C from a task: `cgocall`, `call_c`, and the crossing protocol.
//!
//! The typed call layer (`crate::ffi`) calls C in one of two ways, decided
//! at compile time per declared function:
//!
//! - **registers**: when every parameter (at most five) and the result are
//!   integers, `bool` or raw pointers (`ffi/regs.rs`), the wrapper puts the
//!   arguments in the registers the C function wants them in and calls
//!   [`call_c`] with the C function itself — inlined: the wrapper's own
//!   code calls `arch::asmcgocall`, nothing of the runtime's between;
//! - **frame**: otherwise (as cmd/cgo does for every call) it builds a
//!   frame holding the arguments and a slot for the result, and passes a
//!   small `extern "C"` trampoline that unpacks the frame, calls the C
//!   function and stores the result, with the frame, to [`cgocall`], which
//!   calls [`call_c`] with the trampoline and the frame's address.
//!
//! Either way `arch::asmcgocall` does what Go's `runtime.cgocall` does:
//!
//! 1. **entersyscall.** It finds the current M (a thread-local reached
//!    by its TLS descriptor: one load from `fs` in an executable,
//!    `sched/m.rs`) and its task. The task stays on its M and the M keeps
//!    its P. `incgo` (its task is in C: no scheduling turn from here) is
//!    set first; the call's `nocallback` declaration, if it has one, is
//!    recorded on the M (so a callback from it is refused, naming it);
//!    `cstate` (the protocol below) follows the saved registers. The
//!    task's status
//!    stays `RUNNING` (Go flips it too; "in C" is `incgo` of the task's
//!    M). That is all a call keeps on entry: the C depth (Go's `m.ncgo`) is
//!    counted by callbacks instead (`M::ncallback`), and the call count
//!    (`ncgocall`: statistics, and the monitor's tick that tells one long
//!    call from many short ones) goes up on the way out. Everything
//!    written sits on the M's one hot cache line and the task's syscall SP.
//!
//! 2. **the switch.** It saves the caller's `rbp` and `rbx` (the caller
//!    keeps nothing in `r12`–`r15` across the call: `call_c` declares them
//!    clobbered) and its stack pointer (the task's *syscall SP*: where the
//!    managed frames continue, for crash reports and the collector), sets
//!    `m.cstate`, switches to the M's g0 stack at `g0_sp`, calls the C
//!    function (or trampoline) there, and switches back. C never runs on a
//!    task stack: it gets the thread's full-size stack, and a task stack
//!    can stay small. The CFI of that switch lets debuggers, `backtrace()`
//!    and crash reports walk from C frames into the managed caller.
//!
//! 3. **exitsyscall**, before anything on the task stack is written:
//!    `m.cstate` cleared, `m.trap` compared with `m.trap_seen`. Equal, the
//!    P is still this M's: the bookkeeping is undone (`incgo`,
//!    `nocallback`, the syscall SP back to 0; `ncgocall` up) and the task
//!    goes on. Different, it calls [`exitsyscall_hook`] below the registers
//!    it saved (the collector may be scanning them: decision 7 of the
//!    collector's design, `gc/stw.rs`), which takes the P back, waiting out
//!    a stop of the world, or takes the scheduler's slow path
//!    (`sched::schedule::exitsyscall_slow`): an idle P if there is one, or
//!    the task is queued and the M sleeps; the task continues when an M
//!    with a P picks it up.
//!
//! The fast path (1–3 with `trap` unchanged) takes no lock, makes no
//! system call, allocates nothing (`tests/cgocall_alloc.rs` counts) and
//! executes no locked instruction and no fence: about 40 instructions
//! between the wrapper and C, and back.
//!
//! # The crossing protocol
//!
//! Go's C call writes the P's state twice (`_Psyscall` on entry, a
//! compare-and-swap back to `_Prunning` on exit), so that the monitor's
//! retake and the collector's stop, which compare-and-swap the same word,
//! cannot both win. The compare-and-swap is a locked instruction, the
//! largest single cost of a C call. Here, as in .NET's P/Invoke transition,
//! the owner uses plain stores and loads only and the rare sides pay with a
//! process-wide memory barrier (`sched/crossing.rs` has the code and the
//! fallback).
//!
//! **Words.** The P's state word is `RUNNING(m, gen)` while M `m` holds it,
//! in C or not (`sched/p.rs`). `m.cstate` (written by `m` only) is 1 while
//! `m`'s task is in C with its registers saved; `m.trap` is a counter the
//! rare sides increment and nobody resets; `m.trap_seen` (`m`'s own) is the
//! last `trap` `m` saw on its way back.
//!
//! **Owner, entering C:** `cstate = 1`, after the registers and the
//! syscall SP are stored. No fence: a rare side that reads a stale 0 takes
//! nothing (the collector looks again, the monitor waits a period).
//!
//! **Owner, leaving C (fast path):** `cstate = 0`; then load `trap`; equal
//! to `trap_seen`: the P is still `RUNNING(m, gen)`, and `m` goes on.
//!
//! **Owner, slow path** (`crossing::reclaim`): `trap_seen = trap`; then,
//! on the P's word: `RUNNING(m, g)` → compare-and-swap to `RUNNING(m, g +
//! 1)` and go on — unless a stop of the world is requested: then it
//! stops the P itself, `RUNNING(m, g)` → `STOP_SYSCALL(m)` under the
//! restart's lock (`gc/stw.rs`), as the stop would have, and waits; a
//! thread making C calls much shorter than the barrier would otherwise
//! slip out of every look of the stop's, and hold it up;
//! `STOP_SYSCALL(m)` → wait for the restart (which writes `RUNNING(m, 0)`)
//! and look again; anything else: the P is gone, take the scheduler's slow
//! path.
//!
//! **Rare side** (the collector stopping the world, the monitor retaking a
//! P from a long call, `set_gomaxprocs` retiring one):
//!
//! 1. read the P's word `S`; it must be `RUNNING(m, g)` (and `m.cstate`
//!    should read 1: only a hint, which saves the owner a slow path);
//! 2. `trap += 1` on `m` (a locked increment);
//! 3. the barrier: `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, one for
//!    any number of Ps (the collector does all of its Ps per round);
//! 4. read `m.cstate`; if 1, compare-and-swap the P's word `S` → `X`
//!    (`STOP_SYSCALL(m)`, `IDLE`, `DEAD`); if 0 or the exchange fails, the
//!    owner is running managed code (or taking the slow path), and the P
//!    is not taken.
//!
//! An M giving its own P up from C (a preemption turn, a thread C created
//! giving its P to waiting work) does 2 and a compare-and-swap from its
//! current word, and needs no barrier: it is the owner's own thread.
//!
//! **Why no P gets two owners, and no task runs during a stop.** A rare
//! side takes a P only by its step 4 exchange; the owner runs managed code
//! only after its exit. It suffices that whenever the exchange succeeds,
//! the owner is in C and its next exit takes the slow path (where its own
//! exchange fails, because the word changed, and it waits or gives up).
//!
//! `membarrier` returns only after every thread of the process running at
//! the time executed a full memory barrier (an interrupt) or was not
//! running, which is as good. Take the owner's exits in program order and
//! the point `B` where that barrier hit the owner's thread:
//!
//! - An exit whose `cstate = 0` came *before* `B` is visible to step 4
//!   (the barrier drained it). Step 4 reads 0 — unless the owner entered C
//!   again after it, then reads that entry's 1, and the owner is in C at
//!   that moment: the right answer. The exit's own `trap` load may have
//!   missed step 2: it does not matter, nothing was taken before it.
//! - An exit whose `cstate = 0` comes *after* `B` loads `trap` after `B`
//!   too (program order, and the interrupt is a full barrier), so it sees
//!   step 2's increment, which happened before the barrier: it takes the
//!   slow path. There its exchange and step 4's are on the same word: if
//!   step 4's came first the owner finds `X` and waits or gives up; if the
//!   owner's came first the word's generation changed and step 4's fails.
//!
//! So if step 4 reads `cstate = 1`, every exit after that read takes the
//! slow path, and the exchange either beats it (the owner waits) or fails.
//! Two details make this hold, and each was a bug in a draft:
//!
//! - `S` is read *before* step 2. Read after the barrier, it could be the
//!   word the owner's slow path just wrote (`g + 1`): the exchange would
//!   then succeed while the owner, back from C, runs managed code.
//! - `trap` is a counter, never cleared. With a flag that the owner clears
//!   on its slow path, a second rare side's flag could be cleared by an
//!   exit that only saw the first's, and its exchange then race a fast
//!   exit.
//!
//! The words the owner writes with plain stores outside C (`STOP_RUNNING`
//! at a safepoint, `IDLE` when it gives the P back in the scheduler) cannot
//! clobber a rare side's exchange: that exchange needs `cstate = 1` after
//! the barrier, so the owner was in C and reaches those stores only
//! through a slow-path exit, which fails against the taken word.
//! Generations start at 0 on every acquisition and restart; a word seen
//! before an acquisition and matched after it (the same M holding the P
//! again, in C again) is harmless, since what step 4 needs is only that the
//! owner is in C when it reads `cstate`.
//!
//! **Without `membarrier`** (older kernels, seccomp), chosen once at start
//! or asked for with `CGOCHECK_BARRIER=fence`: the owner's `cstate = 0`
//! is an `xchg` (a full fence) and step 3 is nothing (step 2's locked
//! increment is a full fence): Dekker's algorithm, with the same argument.
//!
//! **Tested** by `c-tests/tests/crossing_stress.rs`: the monitor retaking
//! every P in C without pause, `GOMAXPROCS` changing every millisecond, the
//! world stopped in a loop, tasks calling C and C threads calling back,
//! checked for a P with two owners and a task running during a stop, on
//! both barriers.
//!
//! ## Callbacks
//!
//! A C function calling back into managed code arrives on this M's g0 stack,
//! below asmcgocall's frame; `crate::callback` lowers `M::g0_sp` below the
//! C frames, leaves C with the owner's exit above (`crossing::leave_c`),
//! runs the managed function on the task stack below its syscall SP, and
//! enters C again before returning to C. Managed code never runs on g0, so
//! a C call made from a callback takes the path above like any other
//! (`MStats::ncgo` gives the depth). A callback that panics abandons the C
//! frames and makes `asmcgocall` return the panic's payload
//! (`arch::cgocall_resume`, after the same exitsyscall); the caller of
//! `call_c` resumes the unwinding ([`crossing_failed`]).

use crate::sched::m::M;
use crate::sched::schedule::exitsyscall_slow;
use core::ffi::c_void;
use std::sync::atomic::Ordering;

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
    // SAFETY: the caller vouches for `f(frame)`; a `NoCallback` here is a
    // promoted constant.
    let (word, what) = unsafe { call_c(f as usize, [frame as u64, 0, 0, 0, 0], nocallback_ptr(nocallback)) };
    if what != RETURNED {
        // SAFETY: what `call_c` returned.
        unsafe { crossing_failed(word, what) }
    }
}

/// A call's `nocallback` declaration as [`call_c`] takes it: null for none.
#[doc(hidden)]
#[inline(always)]
pub const fn nocallback_ptr(n: Option<&'static NoCallback>) -> *const NoCallback {
    match n {
        Some(n) => n,
        None => std::ptr::null(),
    }
}

/// What [`call_c`] says besides the result: the call returned.
pub const RETURNED: usize = 0;
/// What [`call_c`] says: a callback of the call panicked, and the result
/// word is the payload ([`crossing_failed`] resumes it).
pub const PANICKED: usize = 1;
/// What [`call_c`] says: there is no task to call from; nothing was done.
pub const NOT_IN_TASK: usize = 2;

/// Calls the C function `f` with up to five integer-register arguments
/// `args` (unused ones anything) on the current M's g0 stack: the crossing
/// itself, `asmcgocall` with its register convention (`arch/x86_64.rs`),
/// inlined into the caller. It is how [`cgocall`] calls a trampoline, and
/// how a declared function whose parameters and result all travel in
/// registers (`ffi/regs.rs`) calls C straight from its wrapper: no
/// argument frame, no trampoline, no function of the runtime's between.
/// `nocallback` is the call's `NoCallback` declaration or null. Returns C's
/// `rax` and [`RETURNED`], or a word and [`PANICKED`] or [`NOT_IN_TASK`],
/// which the caller hands to [`crossing_failed`] (with the caller's
/// location for the panic message).
///
/// The current M is read by `asmcgocall` itself, at the call, on the
/// thread that makes it (the rule of `sched/m.rs`: no compiled code keeps
/// it across anything that could move a task).
///
/// # Safety
/// `f` must be a non-null C function whose integer-register arguments are
/// `args` in order, safe to call with them on a thread stack, not
/// unwinding; `nocallback` null or a `NoCallback` that lives for ever.
#[doc(hidden)]
#[inline(always)]
pub unsafe fn call_c(f: usize, args: [u64; 5], nocallback: *const NoCallback) -> (u64, usize) {
    let (word, what): (u64, usize);
    // SAFETY: asmcgocall's convention (arch/x86_64.rs): it keeps rbx, rbp
    // and the stack pointer, and may change every register the C ABI lets
    // a callee change (flags included: clobber_abi) and r12-r15, declared
    // here so that nothing the collector must see stays in them across C.
    // It reads and writes memory (the M, the task, whatever C does).
    unsafe {
        core::arch::asm!(
            "call {asmcgocall}",
            asmcgocall = sym crate::arch::asmcgocall,
            inlateout("rdi") args[0] => _,
            inlateout("rsi") args[1] => _,
            inlateout("rdx") args[2] => what,
            inlateout("rcx") args[3] => _,
            inlateout("r8") args[4] => _,
            inlateout("r9") nocallback => _,
            inlateout("r11") f => _,
            lateout("rax") word,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        )
    };
    (word, what)
}

/// The rare ends of [`call_c`]: resumes a callback's panic, or panics
/// naming the caller's line for a call outside a task.
///
/// # Safety
/// `word` and `what` must be what `call_c` returned, `what` not
/// [`RETURNED`].
#[cold]
#[inline(never)]
#[track_caller]
pub unsafe fn crossing_failed(word: u64, what: usize) -> ! {
    if what == PANICKED {
        // SAFETY: the payload a callback of the call boxed before
        // `cgocall_resume` (callback.rs).
        unsafe { crate::callback::resume_panic(word as usize) }
    }
    not_in_task()
}

/// `asmcgocall`'s exit when `m.trap` moved (and `cgocall_resume`'s, always),
/// called on the task stack *below* the callee-saved registers
/// `asmcgocall` saved under the task's syscall SP (so nothing the collector
/// may be scanning is written): leaves C by the owner's slow path
/// (`crossing::leave_c`, which waits while the world is stopped and takes
/// the P back to its next generation); if the P is gone (the monitor took
/// it, `set_gomaxprocs` retired it, this M gave it up) takes the
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
    if !crate::sched::crossing::leave_c(m) {
        let g = m.curg().expect("cgocheck: a C call returning without its task");
        // The task is out of C now: the slow path may switch it out.
        m.incgo.store(false, Ordering::Relaxed);
        exitsyscall_slow(m, g);
    }
    result
}

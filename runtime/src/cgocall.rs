//! Calling C from a task: `cgocall`, and the crossing protocol.
//!
//! The typed call layer (`crate::ffi`) turns a call of a declared C function
//! into a frame holding the arguments and a slot for the result, and a small
//! `extern "C"` trampoline that unpacks the frame, calls the C function and
//! stores the result. It passes both to [`cgocall`], which does what Go's
//! `runtime.cgocall` does:
//!
//! 1. **entersyscall**, in `arch::asmcgocall` (in assembly, so that
//!    `cgocall` itself keeps nothing across the call). The task stays on
//!    its M and the M keeps its P. The M's `ncgocall` goes up (calls made:
//!    statistics, and the monitor's tick that tells one long call from
//!    many short ones), and `incgo` (its task is in C) is set together
//!    with `cstate` (the protocol below) by one store. Both sit on the M's
//!    one hot cache line. The task's status stays `RUNNING` (Go flips it
//!    too; "in C" is `incgo` of the task's M). That is all a C call keeps:
//!    the C depth (Go's `m.ncgo`) is counted by callbacks instead
//!    (`M::ncallback`), and only a function declared `nocallback` records
//!    itself (`M::nocallback`, here in `cgocall`, set back to null after:
//!    managed code runs only where it is null, since a `nocallback`
//!    function cannot call back, so no C call is made from inside one).
//!
//! 2. **asmcgocall** (`arch::asmcgocall`). Saves the task's callee-saved
//!    registers and stack pointer (its *syscall SP*: where the managed
//!    frames continue, for crash reports and the collector), sets
//!    `m.cstate` (the protocol below), switches to the M's g0 stack at
//!    `g0_sp`, calls the trampoline there, and switches back. C never runs
//!    on a task stack: it gets the thread's full-size stack, and a task
//!    stack can stay small. The CFI of that switch lets debuggers,
//!    `backtrace()` and crash reports walk from C frames into the managed
//!    caller.
//!
//! 3. **exitsyscall**, in `asmcgocall` before it writes anything on the
//!    task stack: `m.cstate` cleared, `m.trap` compared with
//!    `m.trap_seen`. Equal, the P is still this M's: the bookkeeping of
//!    step 1 is undone and the task goes on. Different, it
//!    calls [`exitsyscall_hook`] below the registers it saved (the
//!    collector may be scanning them: decision 7 of the collector's
//!    design, `gc/stw.rs`), which takes the P back, waiting out a stop of
//!    the world, or takes the scheduler's slow path
//!    (`sched::schedule::exitsyscall_slow`): an idle P if there is one, or
//!    the task is queued and the M sleeps; the task continues when an M
//!    with a P picks it up.
//!
//! The fast path (1–3 with `trap` unchanged) takes no lock, makes no
//! system call, allocates nothing (`tests/cgocall_alloc.rs` counts) and
//! executes no locked instruction and no fence.
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
//! **Owner, slow path** ([`crossing::reclaim`](crate::sched::crossing)):
//! `trap_seen = trap`; then, on the P's word: `RUNNING(m, g)` →
//! compare-and-swap to `RUNNING(m, g + 1)` and go on; `STOP_SYSCALL(m)` →
//! wait for the restart (which writes `RUNNING(m, 0)`) and look again;
//! anything else: the P is gone, take the scheduler's slow path.
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
//! (`arch::cgocall_resume`); `cgocall` then finishes its exitsyscall and
//! resumes the unwinding in its caller.

use crate::sched::m::{current_m_inline, M};
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
    // Read once, here, before anything can move the task to another thread;
    // cgocall is never inlined, so no caller can reuse the address (see
    // `sched/m.rs`).
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m_inline().as_ref() }) else { not_in_task() };
    let Some(g) = m.curg() else { not_in_task() };
    if let Some(n) = nocallback {
        m.nocallback.store((n as *const NoCallback).cast_mut(), Ordering::Relaxed);
    }
    // SAFETY: we run on `g`'s stack on M `m`, which holds its P; the caller
    // vouches for `f(frame)`.
    // asmcgocall sets `nocallback` back to null on its way out.
    let (payload, panicked) = unsafe { cross(m, g, f as usize, [frame as u64, 0, 0, 0, 0]) };
    if panicked != 0 {
        // SAFETY: the payload a callback of this call boxed before
        // `cgocall_resume` (callback.rs).
        unsafe { crate::callback::resume_panic(payload as usize) }
    }
}

/// What [`cgocall_regs`] says besides the result: the call returned.
pub const RETURNED: usize = 0;
/// What [`cgocall_regs`] says: a callback of the call panicked, and the
/// result word is the payload ([`crossing_failed`] resumes it).
pub const PANICKED: usize = 1;
/// What [`cgocall_regs`] says: there is no task to call from.
pub const NOT_IN_TASK: usize = 2;

/// Calls the C function `f` with up to five integer-register arguments
/// `a0`..`a4` (unused ones anything) on the current M's g0 stack, as
/// [`cgocall`] calls a trampoline: the fast path of a declared function
/// whose parameters and result all travel in registers (`ffi/regs.rs`),
/// which needs no argument frame and no trampoline. Returns C's `rax` and
/// [`RETURNED`], or a word and [`PANICKED`] or [`NOT_IN_TASK`], which the
/// caller hands to [`crossing_failed`] (it has the caller's location for
/// the panic message; this function takes none, so that every argument
/// stays in a register: `f` last, in `r9`).
///
/// # Safety
/// `f` must be a non-null C function whose integer-register arguments are
/// `a0`.. in order, safe to call with them on a thread stack.
#[inline(never)]
pub unsafe fn cgocall_regs(a0: u64, a1: u64, a2: u64, a3: u64, a4: u64, f: usize) -> (u64, usize) {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    // Read here, never inlined (see `cgocall`).
    let Some(m) = (unsafe { current_m_inline().as_ref() }) else { return (0, NOT_IN_TASK) };
    let Some(g) = m.curg() else { return (0, NOT_IN_TASK) };
    // SAFETY: we run on `g`'s stack on M `m`, which holds its P; the caller
    // vouches for `f` and its arguments.
    unsafe { cross(m, g, f, [a0, a1, a2, a3, a4]) }
}

/// [`cgocall_regs`] for a function declared `nocallback`, with at most four
/// arguments: records `nocallback` on the M for the call (as [`cgocall`]
/// does), and passes it in the fifth argument register, which the C
/// function does not read.
///
/// # Safety
/// As [`cgocall_regs`]; `f` takes at most four arguments.
#[inline(never)]
pub unsafe fn cgocall_regs_nocallback(
    a0: u64,
    a1: u64,
    a2: u64,
    a3: u64,
    nocallback: &'static NoCallback,
    f: usize,
) -> (u64, usize) {
    // SAFETY: as in cgocall_regs.
    let Some(m) = (unsafe { current_m_inline().as_ref() }) else { return (0, NOT_IN_TASK) };
    let Some(g) = m.curg() else { return (0, NOT_IN_TASK) };
    let n = nocallback as *const NoCallback;
    m.nocallback.store(n.cast_mut(), Ordering::Relaxed);
    // SAFETY: as in cgocall_regs. asmcgocall sets `nocallback` back to
    // null on its way out.
    unsafe { cross(m, g, f, [a0, a1, a2, a3, n as u64]) }
}

/// The rare ends of [`cgocall_regs`]: resumes a callback's panic, or
/// panics naming the caller's line for a call outside a task.
///
/// # Safety
/// `word` and `what` must be what `cgocall_regs` returned, `what` not
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

/// The crossing itself: `asmcgocall` with `f`, the arguments in `rdi`..`r8`,
/// `m` in `r10` and `g`'s syscall SP field in `r11` (its convention);
/// returns C's `rax` and 0, or a panic's payload and 1.
///
/// # Safety
/// On `g`'s stack, `g` running on the current M `m`, which holds its P;
/// `f` callable with those arguments (see `arch::asmcgocall`).
#[inline(always)]
unsafe fn cross(m: &M, g: &crate::sched::task::G, f: usize, a: [u64; 5]) -> (u64, usize) {
    let (ret, panicked): (u64, usize);
    // SAFETY: asmcgocall's convention (arch/x86_64.rs): it keeps rbx, rbp,
    // r12-r15 and the stack pointer, and may change every register the C
    // ABI lets a callee change, flags and the direction flag's state
    // included (clobber_abi). It reads and writes memory (the M, the
    // task, whatever C does).
    unsafe {
        core::arch::asm!(
            "call {asmcgocall}",
            asmcgocall = sym crate::arch::asmcgocall,
            inlateout("rdi") a[0] => _,
            inlateout("rsi") a[1] => _,
            inlateout("rdx") a[2] => panicked,
            inlateout("rcx") a[3] => _,
            inlateout("r8") a[4] => _,
            inlateout("rax") f => ret,
            in("r10") m as *const M,
            in("r11") g.syscall_sp.as_ptr(),
            clobber_abi("C"),
        )
    };
    (ret, panicked)
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

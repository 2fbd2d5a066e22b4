//! What a crash report says, written as wire records (see
//! `cgocheck_traceback::wire`) into the crash buffer, without allocating.
//!
//! The layout follows Go's `sighandler` → `fatalsignal` → traceback:
//!
//! ```text
//! SIGSEGV: segmentation violation
//! PC=0x55d0c8a1b2f3 m=0 sigcode=1 addr=0x0
//! signal arrived during cgo execution        (the thread was in C for a task)
//!
//! task 1 [syscall]:                          (or `thread 4242 [no task]:`)
//! deref(...)                                 C frames, from the signal context
//!     /…/csrc/crash.c:14 +0x4 fp=… sp=… pc=…
//! crash_in_c(...)
//!     /…/csrc/crash.c:20 +0x11 fp=… sp=… pc=…
//! crash::main(...)                           managed frames, from the task's
//!     /…/src/bin/crash.rs:60 +0x2a …         registers saved at `cgocall`
//!
//! task 2 [waiting]:                          GOTRACEBACK=all or crash
//! …
//! ```
//!
//! - `none` stops after the signal lines; `single` prints the crashing
//!   task's (or thread's) section; `all` and `crash` add every other task.
//! - A thread in C for a task has two stacks: the C frames run on the M's
//!   g0 stack and are walked from the signal's registers, up to the first
//!   frame on the task's own stack (if the walk gets that far); the
//!   managed frames are then walked from the registers the task saved when
//!   it entered `cgocall`. C frames first, then their managed callers: the
//!   order of the calls.
//! - A fault in the guard page of a task stack is a stack overflow, and is
//!   said first and in those words, with the task, its stack size and the
//!   knob that raises it; a fault just below the stack pointer of a thread
//!   that is not a task is said to be that thread's stack overflow.
//! - A walk goes through the whole stack (up to a million frames, so a
//!   corrupt or huge one stays bounded in time) and keeps both ends, as
//!   Go does since 1.21: a longer stack than 48 frames prints its
//!   innermost 32 (where it crashed or overflowed), `...N frames
//!   elided...`, and its outermost 16 (where a recursion started, down to
//!   the task's entry). A walk that hits the bound prints its innermost
//!   32 and Go's `...additional frames elided...`.

use super::level::Traceback;
use super::view::{crash_view, CurrentThread, SavedRegs, TaskInfo, TaskState};
use crate::heap::heap;
use crate::{ManagedMemory, Region};
use cgocheck_traceback::wire::Writer;
use cgocheck_traceback::{unwind_ends, Frame, Regs, BOTTOM_FRAMES};

/// How a user raises a task's stack size, named in a stack overflow report.
const STACK_SIZE_HINT: &str =
    "raise the task stack size with CGOCHECK_STACK_KB=<KiB> (environment) or the task builder's stack size";

/// The signal, as the handler received it.
pub(super) struct Fault {
    pub sig: i32,
    pub code: i32,
    pub addr: usize,
    pub regs: Regs,
    pub tid: i32,
}

/// Go's names for the fatal signals (runtime/sigtab_linux_generic.go).
fn signal_name(sig: i32) -> (&'static str, &'static str) {
    match sig {
        libc::SIGSEGV => ("SIGSEGV", "segmentation violation"),
        libc::SIGBUS => ("SIGBUS", "bus error"),
        libc::SIGFPE => ("SIGFPE", "floating-point exception"),
        libc::SIGILL => ("SIGILL", "illegal instruction"),
        libc::SIGABRT => ("SIGABRT", "abort"),
        libc::SIGTRAP => ("SIGTRAP", "trace trap"),
        libc::SIGQUIT => ("SIGQUIT", "quit"),
        libc::SIGSTKFLT => ("SIGSTKFLT", "stack fault"),
        libc::SIGSYS => ("SIGSYS", "bad system call"),
        _ => ("signal", "unexpected signal"),
    }
}

/// Writes the report of a fatal signal.
pub(super) fn signal_report(w: &mut Writer<'_>, fault: &Fault, level: Traceback) {
    if level.hides_runtime_frames() {
        w.hide_runtime_frames();
    }
    let current = crash_view().and_then(|v| v.current());
    let task = current.and_then(|c| c.task);

    stack_overflow_lines(w, fault);

    let (name, what) = signal_name(fault.sig);
    if name == "signal" {
        w.line(format_args!("signal {}: {what}", fault.sig));
    } else {
        w.line(format_args!("{name}: {what}"));
    }
    let m = MId(current);
    if fault.sig == libc::SIGSEGV || fault.sig == libc::SIGBUS {
        w.line(format_args!("PC={:#x} m={m} sigcode={} addr={:#x}", fault.regs.pc(), fault.code, fault.addr));
    } else {
        w.line(format_args!("PC={:#x} m={m} sigcode={}", fault.regs.pc(), fault.code));
    }
    if task.is_some_and(|t| t.state == TaskState::Syscall) {
        w.line(format_args!("signal arrived during cgo execution"));
    }
    w.line(format_args!(""));
    if level == Traceback::None {
        return;
    }

    match task {
        Some(t) => {
            task_header(w, &t);
            crashing_task_frames(w, &fault.regs, &t);
        }
        None => match task_of_stack(fault.regs.sp()) {
            // Running on a task stack the scheduler did not tell us about
            // (no view yet): the stack itself says whose it is.
            Some(id) => {
                w.line(format_args!("task {id} [running]:"));
                walk(w, &fault.regs, true, None);
                w.line(format_args!(""));
            }
            None => {
                w.line(format_args!("thread {} [no task]:", fault.tid));
                walk(w, &fault.regs, true, None);
                w.line(format_args!(""));
            }
        },
    }
    if level >= Traceback::All {
        other_tasks(w, task.map(|t| t.id));
    }
}

/// The task whose stack (or its guard page, after an overflow) holds
/// `sp`, from the heap's lock-free lookup.
fn task_of_stack(sp: usize) -> Option<u64> {
    match heap().region(sp) {
        Region::Stack { task, .. } => Some(task),
        _ => heap().stack_guard_hit(sp).map(|hit| hit.task),
    }
}

/// `m=N`, or `m=none` on a thread the scheduler does not know.
struct MId(Option<CurrentThread>);

impl core::fmt::Display for MId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(c) => write!(f, "{}", c.m),
            None => f.write_str("none"),
        }
    }
}

/// The stack-overflow preamble, when the fault says that is what happened.
fn stack_overflow_lines(w: &mut Writer<'_>, fault: &Fault) {
    if fault.sig != libc::SIGSEGV && fault.sig != libc::SIGBUS {
        return;
    }
    if let Some(hit) = heap().stack_guard_hit(fault.addr) {
        let size = hit.stack.hi - hit.stack.lo;
        w.line(format_args!(
            "runtime: task {} overflowed its {size}-byte stack [{:#x}, {:#x}): the fault at {:#x} is in the guard page below it",
            hit.task, hit.stack.lo, hit.stack.hi, fault.addr
        ));
        w.line(format_args!("runtime: {STACK_SIZE_HINT}"));
        w.line(format_args!("fatal error: stack overflow"));
        w.line(format_args!(""));
        return;
    }
    let sp = fault.regs.sp();
    if fault.addr != 0 && fault.addr < sp.saturating_add(256) && sp - fault.addr.min(sp) <= 1 << 20 {
        w.line(format_args!(
            "runtime: thread {} overflowed its stack: the fault at {:#x} is just below its stack pointer {sp:#x}",
            fault.tid, fault.addr
        ));
        w.line(format_args!("fatal error: stack overflow"));
        w.line(format_args!(""));
    }
}

/// `task N [state]:`, `task N [syscall, locked to thread]:`.
fn task_header(w: &mut Writer<'_>, t: &TaskInfo) {
    let locked = if t.locked { ", locked to thread" } else { "" };
    w.line(format_args!("task {} [{}{locked}]:", t.id, t.state.word()));
}

/// The crashing thread's task: its C frames (if it is in C), then its
/// managed frames.
fn crashing_task_frames(w: &mut Writer<'_>, regs: &Regs, t: &TaskInfo) {
    match (t.state, t.regs) {
        (TaskState::Syscall, Some(saved)) => {
            // C frames on the g0 stack, up to the task's stack.
            walk(w, regs, true, Some(t.stack));
            walk_saved(w, saved);
        }
        _ => walk(w, regs, true, None),
    }
    w.line(format_args!(""));
}

/// Every task but the current one, each with its frames.
pub(super) fn other_tasks(w: &mut Writer<'_>, current: Option<u64>) {
    let Some(view) = crash_view() else { return };
    view.for_each_task(&mut |t: &TaskInfo| {
        if Some(t.id) == current {
            return;
        }
        task_header(w, t);
        match t.regs {
            Some(saved) => walk_saved(w, saved),
            None => w.line(format_args!("\ttask running on another thread; stack unavailable")),
        }
        w.line(format_args!(""));
    });
}

/// Walks from a task's saved registers and writes the frames.
fn walk_saved(w: &mut Writer<'_>, saved: SavedRegs) {
    walk(w, &Regs::new(saved.pc, saved.sp, saved.fp), false, None);
}

/// Walks from `start` and writes the frames; with `stop_in`, only those
/// before the first frame whose stack pointer is in `lo..hi`.
///
/// The whole stack is walked (up to `MAX_WALK` frames), and a deep one is
/// written as Go writes it: the innermost `MAX_FRAMES`, then `...N frames
/// elided...`, then the outermost `BOTTOM_FRAMES` — where a recursion
/// overflowed and where it started, down to the task's entry.
fn walk(w: &mut Writer<'_>, start: &Regs, exact: bool, stop_in: Option<(usize, usize)>) {
    let ends = unwind_ends(start, exact, &mut |f: &Frame| stop_in.is_some_and(|(lo, hi)| f.sp >= lo && f.sp < hi));
    w.frames(ends.top());
    if ends.cut() {
        // The walk gave up before the outermost frame: its bottom is not
        // the stack's.
        w.line(format_args!("...additional frames elided..."));
        return;
    }
    if ends.elided() > 0 {
        w.line(format_args!("...{} frames elided...", ends.elided()));
    }
    let mut bottom = [Frame::default(); BOTTOM_FRAMES];
    let n = ends.bottom(&mut bottom);
    w.frames(&bottom[..n]);
}

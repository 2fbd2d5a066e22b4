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
    /// The general registers, by name (the quarantine looks for a poisoned
    /// word in them).
    pub gregs: [(&'static str, u64); GREGS],
    /// The page fault was a write (x86-64's error code, bit 1).
    pub write: bool,
}

/// General registers a fault records.
pub(super) const GREGS: usize = 15;

/// The general registers and the write bit of a signal's context.
///
/// # Safety
/// `ucontext` is the context the kernel passed to an `SA_SIGINFO` handler.
pub(super) unsafe fn general_registers(ucontext: *mut libc::c_void) -> ([(&'static str, u64); GREGS], bool) {
    // SAFETY: the caller's contract.
    let g = unsafe { &(*(ucontext as *const libc::ucontext_t)).uc_mcontext.gregs };
    let r = |name, i: libc::c_int| (name, g[i as usize] as u64);
    let regs = [
        r("rax", libc::REG_RAX),
        r("rbx", libc::REG_RBX),
        r("rcx", libc::REG_RCX),
        r("rdx", libc::REG_RDX),
        r("rsi", libc::REG_RSI),
        r("rdi", libc::REG_RDI),
        r("rbp", libc::REG_RBP),
        r("r8", libc::REG_R8),
        r("r9", libc::REG_R9),
        r("r10", libc::REG_R10),
        r("r11", libc::REG_R11),
        r("r12", libc::REG_R12),
        r("r13", libc::REG_R13),
        r("r14", libc::REG_R14),
        r("r15", libc::REG_R15),
    ];
    (regs, g[libc::REG_ERR as usize] & 2 != 0)
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

    let who = match task {
        Some(t) if t.state == TaskState::Syscall => Who::C,
        Some(_) => Who::Managed,
        None => Who::NoTask,
    };
    quarantine_lines(w, fault, who);
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

/// The `CGOCHECK=2` quarantine's preamble, when the fault touched freed
/// memory the quarantine holds: at the address itself (a protected span
/// or large object), or through a poisoned word some register holds (a
/// pointer loaded from a freed object and used: x86-64 faults on it with
/// no address). Says what happened, the object, who lent it to C, the fix.
fn quarantine_lines(w: &mut Writer<'_>, fault: &Fault, who: Who) {
    use crate::gc::quarantine::{describe_fault, POISON_TAG};
    if fault.sig != libc::SIGSEGV && fault.sig != libc::SIGBUS {
        return;
    }
    let direct = describe_fault(fault.addr).map(|site| (site, fault.addr, None));
    // A non-canonical address faults as a general protection fault, which
    // the kernel reports with code SI_KERNEL and no address: only then is a
    // poisoned register the likely cause.
    let general_protection = fault.code == SI_KERNEL && fault.addr == 0;
    let found = direct.or_else(|| {
        if !general_protection {
            return None;
        }
        fault.gregs.iter().find_map(|&(name, v)| {
            let src = (v & !(0xFFFF << 48)) as usize;
            if v & (0xFFFF << 48) != POISON_TAG {
                return None;
            }
            describe_fault(src).map(|site| (site, src, Some((name, v))))
        })
    });
    let Some((site, addr, register)) = found else { return };
    let span = site.span;
    let layout = span.layout();
    let (base, size) = match span.kind {
        crate::heap::span::SpanKind::Large => (span.base(), span.large_size()),
        _ => (span.base() + site.slot * span.slot_size, span.slot_size),
    };
    let lend = crate::ffi::lend::describe(span, site.slot);
    // The error code's write bit means something only for a page fault.
    let access = match (register, fault.write) {
        (Some(_), _) => "used",
        (None, true) => "wrote",
        (None, false) => "read",
    };
    match who {
        Who::C => {
            w.line(format_args!("cgocheck: C {access} a managed object the collector freed (CGOCHECK=2 quarantine)"))
        }
        Who::Managed => w.line(format_args!(
            "cgocheck: managed object used after the collector freed it: nothing the collector scans referred to it (CGOCHECK=2 quarantine)"
        )),
        Who::NoTask => w.line(format_args!(
            "cgocheck: a thread running no task (C code on a thread of its own, or a runtime thread) {access} a \
             managed object the collector freed (CGOCHECK=2 quarantine)"
        )),
    }
    if let Some((name, v)) = register {
        w.line(format_args!(
            "  register {name} holds {v:#x}, the poison of the word at {addr:#x}: the faulting code loaded a pointer \
             from freed memory and used it"
        ));
    }
    let at = At { register: register.is_some(), write: fault.write, addr, offset: addr - base };
    match (site.quarantined, site.cycle) {
        (true, Some(n)) => w.line(format_args!(
            "  {at} the {size}-byte object of type {} at {base:#x}, freed by collection {n} (gc {n} in \
             GODEBUG=gctrace=1)",
            layout.elem
        )),
        (true, None) => w.line(format_args!(
            "  {at} the {size}-byte object of type {} at {base:#x}, freed by the collector",
            layout.elem
        )),
        (false, _) => w.line(format_args!(
            "  {at} a free {size}-byte slot (objects of type {}) at {base:#x}, in a span of freed objects the \
             quarantine holds",
            layout.elem
        )),
    }
    match lend {
        Some(l) => {
            w.line(format_args!("  it was last handed to C by {l}"));
            if l.pinned() {
                w.line(format_args!(
                    "  fix: it was pinned then, but unpinned (or its Pinner dropped) while C still kept it. Keep it pinned for as long as C keeps the pointer, or give C a Handle (cgocheck::Handle) instead."
                ));
            } else {
                w.line(format_args!(
                    "  fix: C kept the pointer after the call returned. Pin the object with a Pinner for as long as C keeps it, or give C a Handle (cgocheck::Handle) instead of the pointer."
                ));
            }
        }
        None if who != Who::Managed => {
            w.line(format_args!(
                "  it was never handed to C by a declared C function: C found it some other way (a field of memory \
                 it was given, an address passed as an integer)"
            ));
            w.line(format_args!(
                "  fix: pin it with a Pinner for as long as C keeps it, or give C a Handle (cgocheck::Handle)."
            ));
        }
        None => w.line(format_args!(
            "  fix: keep it reachable while it is used: a Root, a field of managed memory, a managed static, or a Handle. A Gc kept only in a Box, a Vec, a plain static or C memory is invisible to the collector."
        )),
    }
    w.line(format_args!(""));
}

/// `si_code` of a fault the kernel raised itself (a general protection
/// fault: no address).
const SI_KERNEL: i32 = 0x80;

/// Whose code faulted, for the quarantine's first line.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Who {
    /// A task in a C call: C code.
    C,
    /// A task running managed code.
    Managed,
    /// A thread with no task: a C thread outside a callback, or a thread of
    /// the runtime's own.
    NoTask,
}

/// Where a quarantine fault touched: "the read at 0x… is 8 bytes into",
/// or for a poisoned register "that word is 16 bytes into".
struct At {
    register: bool,
    write: bool,
    addr: usize,
    offset: usize,
}

impl core::fmt::Display for At {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.register {
            write!(f, "that word is {} bytes into", self.offset)
        } else {
            let access = if self.write { "write" } else { "read" };
            write!(f, "the {access} at {:#x} is {} bytes into", self.addr, self.offset)
        }
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

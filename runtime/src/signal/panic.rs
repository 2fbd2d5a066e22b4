//! The report for a panic no one recovered in a task.
//!
//! Go prints an unrecovered panic like a crash — `panic: message`, then the
//! goroutine with the frames where it panicked — and exits with status 2.
//! So do we, in two steps, because by the time the task's trampoline learns
//! of the panic (`catch_unwind` returned `Err`) the frames that panicked
//! are gone:
//!
//! 1. [`install_panic_hook`] (the scheduler calls it when it starts) wraps
//!    the panic hook. On a thread running a task it walks the panicking
//!    stack from inside the hook and keeps up to 64 frames with the task's
//!    id (the last few panics are kept: a recovered panic's frames are
//!    simply never asked for), and prints nothing: as in Go, a panic that
//!    is recovered prints nothing, and one that is not is printed once, by
//!    the report. Elsewhere (a thread that runs no task) the hook in place
//!    before (std's default, or the program's) runs as usual, and so it
//!    does for a panic that aborts rather than unwinds (one that reaches a
//!    C frame, say), after `panic: …` for the task's panic that led there;
//! 2. the trampoline calls [`report_fatal_panic`] with the task id and the
//!    payload — also when the report is made by another task, such as the
//!    one that drops the `JoinHandle` of a task that already panicked: it
//!    prints `panic: …` and the task's section from those frames, skipping
//!    the hook and std's panicking functions at the top (so the first frame
//!    is the function that panicked), then the other tasks at
//!    `GOTRACEBACK=all`, and exits with status 2 by `_exit` (`crash`:
//!    `SIGABRT`). [`report_fatal_callback_panic`] is the same for a panic
//!    in a callback with no managed caller (`callback.rs`), whose frames
//!    run on into the C frames that called it.
//!
//! This is not a signal handler: the process is healthy, so the report is
//! symbolised here, in this process. For the same reason the same pieces
//! give [`stack_dump`], Go's `runtime.Stack`, to a running program.

use super::level::{traceback, Traceback};
use super::report::other_tasks;
use super::view::crash_view;
use cgocheck_traceback::wire::Writer;
use cgocheck_traceback::{render, unwind, write_fd, Frame, Regs, Symbolizer};
use std::any::Any;
use std::collections::VecDeque;
use std::sync::{Mutex, Once};

/// Frames kept from the panic hook: the hook and std's panic machinery
/// take about ten before the frame that panicked.
const PANIC_FRAMES: usize = 64;

/// How many recent panics in tasks keep their frames.
const KEPT: usize = 8;

/// The frames of a panic in task `task`.
struct Captured {
    task: u64,
    /// The panic's message and where it was raised, for a panic that ends
    /// up aborting instead (`print_unreported`).
    message: String,
    frames: [Frame; PANIC_FRAMES],
    n: usize,
    more: bool,
}

/// The last [`KEPT`] panics in tasks, oldest first.
static CAPTURED: Mutex<VecDeque<Captured>> = Mutex::new(VecDeque::new());

static HOOK: Once = Once::new();

/// Adds frame capture for panics in tasks to the process's panic hook,
/// once; the hook in place before (std's default, or the program's) runs
/// for every panic outside tasks, and for a panic that aborts instead of
/// unwinding (see [`aborts`]), after printing the message of the task's
/// unreported panic that led to it. Call when the scheduler starts. A
/// program that sets its own hook later replaces this one: its fatal
/// panic reports then show the frames from where the task's trampoline
/// reports the panic.
pub fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if aborts(info) {
                print_unreported();
            } else if capture_if_in_task(info) {
                return;
            }
            previous(info);
        }));
    });
}

/// Whether the panic will abort the process rather than unwind, so that
/// no report will print it: under `panic=abort`, and the panics std raises
/// without unwinding — a panic unwinding into an `extern "C"` function (a
/// C frame), one raised by a destructor during unwinding, a failed unsafe
/// precondition check. (std knows this as `PanicHookInfo::can_unwind`,
/// not stable yet; these are its cases.)
fn aborts(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let msg = message(info.payload());
    cfg!(panic = "abort")
        || msg == "panic in a function that cannot unwind"
        || msg == "panic in a destructor during cleanup"
        || msg.starts_with("unsafe precondition(s) violated")
}

/// Prints `panic: …` for the last panic captured in the calling task, the
/// one whose unwinding is now aborting: nothing else would print it.
fn print_unreported() {
    let Some(task) = crash_view().and_then(|v| v.current()).and_then(|c| c.task) else { return };
    let kept = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = kept.iter().rev().find(|c| c.task == task.id) {
        write_fd(2, format!("panic: {}\n", c.message).as_bytes());
    }
}

/// Walks the panicking stack and keeps it with the task's id and the
/// message, if the thread runs a task; says whether it did.
fn capture_if_in_task(info: &std::panic::PanicHookInfo<'_>) -> bool {
    let Some(task) = crash_view().and_then(|v| v.current()).and_then(|c| c.task) else { return false };
    let mut frames = [Frame::default(); PANIC_FRAMES];
    let (n, more) = walk_from_here(&mut frames);
    let message = match info.location() {
        Some(at) => format!("{} (at {at})", message(info.payload())),
        None => message(info.payload()).to_owned(),
    };
    let mut kept = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
    if kept.len() == KEPT {
        kept.pop_front();
    }
    kept.push_back(Captured { task: task.id, message, frames, n, more });
    true
}

/// Walks the calling stack into `out` (the first frames are this
/// function's callers inside the runtime and std, skipped when printed).
#[inline(never)]
fn walk_from_here(out: &mut [Frame]) -> (usize, bool) {
    let mut uc = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    // SAFETY: `uc` is writable storage for a ucontext_t.
    if unsafe { libc::getcontext(uc.as_mut_ptr()) } != 0 {
        return (0, false);
    }
    // SAFETY: getcontext filled `uc`.
    let regs = unsafe { Regs::from_ucontext(uc.as_ptr().cast()) };
    unwind(&regs, true, out)
}

/// The text of a panic payload, as std's hook prints it.
fn message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "Box<dyn Any>"
    }
}

/// Reports an unrecovered panic of task `task` with panic payload
/// `payload`, then ends the process: exit status 2, or `SIGABRT` at
/// `GOTRACEBACK=crash`. For the scheduler's task trampoline, after
/// `catch_unwind` returned the panic.
pub fn report_fatal_panic(task: u64, payload: &(dyn Any + Send)) -> ! {
    report(Some(task), payload, None)
}

/// Reports a panic in a callback that has no managed caller to carry it
/// to (the outermost callback of a thread C created, or an exported
/// function called directly), in task `task` (`None`: a thread with no
/// task), then ends the process as [`report_fatal_panic`] does.
pub fn report_fatal_callback_panic(task: Option<u64>, payload: &(dyn Any + Send)) -> ! {
    report(
        task,
        payload,
        Some(
            "fatal error: unrecovered panic in a function called from C: no managed caller to continue \
             unwinding in (a panic may not unwind into C frames)",
        ),
    )
}

/// The panic report: `panic: …`, `note` if any, the panicking task's
/// frames (captured by the hook), the other tasks; then the end.
fn report(task: Option<u64>, payload: &(dyn Any + Send), note: Option<&str>) -> ! {
    super::claim_crash();
    let level = traceback();
    let mut buf = vec![0u8; 1 << 20];
    let mut w = Writer::new(&mut buf, super::exe::path().to_bytes());
    if level.hides_runtime_frames() {
        w.hide_runtime_frames();
    }
    w.line(format_args!("panic: {}", message(payload)));
    if let Some(note) = note {
        w.line(format_args!("{note}"));
    }
    w.line(format_args!(""));
    if level > Traceback::None {
        running_header(&mut w, task);
        let captured = task.and_then(|task| {
            let mut kept = CAPTURED.lock().unwrap_or_else(|e| e.into_inner());
            kept.iter().rposition(|c| c.task == task).and_then(|i| kept.remove(i))
        });
        let (frames, n, more) = match captured {
            Some(c) => (c.frames, c.n, c.more),
            None => {
                // No frames from the hook (another hook replaced ours): the
                // reporting code's own frames, said to be that.
                w.line(format_args!("\t(where it panicked is unknown; the frames are where it was reported)"));
                let mut here = [Frame::default(); PANIC_FRAMES];
                let (n, more) = walk_from_here(&mut here);
                (here, n, more)
            }
        };
        w.skip_panic_machinery();
        w.frames(&frames[..n]);
        if more {
            w.line(format_args!("...additional frames elided..."));
        }
        w.line(format_args!(""));
        if level >= Traceback::All {
            other_tasks(&mut w, task);
        }
    }
    let report = w.finish();
    let mut out = String::new();
    render(report, &mut out, &mut Symbolizer::new());
    write_fd(2, out.as_bytes());
    super::die()
}

/// Go's `runtime.Stack`: the calling task's frames (or the calling
/// thread's, outside any task), C frames included, and with `all` every
/// other task's, in a crash report's layout, without stopping anything.
/// Runtime frames are hidden below `GOTRACEBACK=system`, as in a report.
///
/// Other tasks keep running meanwhile (Go stops the world; this does not):
/// a task running on another thread is listed without frames, and one that
/// starts running during the walk may show a torn stack; the walk reads
/// stack memory through the kernel, so a torn stack is cut short, never a
/// fault.
pub fn stack_dump(all: bool) -> String {
    let mut buf = vec![0u8; 1 << 20];
    let mut w = Writer::new(&mut buf, super::exe::path().to_bytes());
    if traceback().hides_runtime_frames() {
        w.hide_runtime_frames();
    }
    let task = crash_view().and_then(|v| v.current()).and_then(|c| c.task).map(|t| t.id);
    running_header(&mut w, task);
    let mut here = [Frame::default(); PANIC_FRAMES];
    let (n, more) = walk_from_here(&mut here);
    // The first frames are this function and the walk itself.
    w.skip_panic_machinery();
    w.frames(&here[..n]);
    if more {
        w.line(format_args!("...additional frames elided..."));
    }
    w.line(format_args!(""));
    if all {
        other_tasks(&mut w, task);
    }
    let report = w.finish();
    let mut out = String::new();
    render(report, &mut out, &mut Symbolizer::new());
    out
}

/// `task N [running]:` (`, locked to thread` when the calling thread runs
/// task `N` locked to it, as a callback's task is), or `thread T [no
/// task]:`.
fn running_header(w: &mut Writer<'_>, task: Option<u64>) {
    let Some(id) = task else {
        return w.line(format_args!("thread {} [no task]:", super::gettid()));
    };
    let here = crash_view().and_then(|v| v.current()).and_then(|c| c.task).filter(|t| t.id == id);
    let locked = if here.is_some_and(|t| t.locked) { ", locked to thread" } else { "" };
    w.line(format_args!("task {id} [running{locked}]:"));
}

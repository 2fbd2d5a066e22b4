//! What a crash report needs to know about tasks, and how the scheduler
//! tells it: the [`CrashView`] trait.
//!
//! The signal handler runs on whatever thread crashed, possibly while that
//! thread holds the scheduler's locks or is inside the allocator. So the
//! scheduler does not hand the report a snapshot; it registers, once, an
//! object the handler can *read* in place ([`set_crash_view`]): which M the
//! crashing thread is, which task it runs and whether that task is in C,
//! and every task's id, state and saved registers. The report walks each
//! task's stack from those registers itself.
//!
//! Without a registered view (no scheduler yet, or a program that never
//! starts it) a report has no task sections: it prints the crashing
//! thread's own frames under a `thread N [no task]:` header. The same
//! happens on a thread the view does not know (a foreign C thread):
//! [`CrashView::current`] answers `None` there.

use std::sync::OnceLock;

/// A task's state, in Go's words (`goroutine 1 [syscall]:`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Running managed code on an M (Go's `running`).
    Running,
    /// Ready to run, waiting for a P (`runnable`).
    Runnable,
    /// Inside a C call made through `cgocall` (`syscall`).
    Syscall,
    /// Blocked; the reason as Go words it (`"sleep"`, `"chan receive"`,
    /// `"semacquire"`...), printed as `waiting` alone when empty.
    Waiting(&'static str),
}

/// Registers to walk a stopped task's stack from.
///
/// `pc` is a return address: the instruction after the call that stopped
/// the task (into the context switch, or into `cgocall`'s switch to the g0
/// stack). `sp` is the stack pointer just after that call returned would be
/// (the value right above the pushed return address), `fp` the frame
/// pointer at that point (callee-saved, so the value the caller had). The
/// walk starts at `pc` in the calling function and unwinds by CFI, so `fp`
/// only matters where code lacks CFI; give 0 when it is not known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SavedRegs {
    /// Program counter: where the task resumes.
    pub pc: usize,
    /// Stack pointer.
    pub sp: usize,
    /// Frame pointer (`rbp`), where the frame-pointer walk starts.
    pub fp: usize,
}

/// One task, as the report shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskInfo {
    /// The task id (the one `Heap::alloc_stack` was given).
    pub id: u64,
    /// Its state.
    pub state: TaskState,
    /// Whether it is locked to its OS thread (`lock_os_thread`); printed as
    /// `[syscall, locked to thread]`.
    pub locked: bool,
    /// Where to walk its managed frames from: the registers saved when it
    /// last stopped running managed code — at a context switch, or at
    /// `cgocall`'s entry when it is in C. `None` while it runs managed code
    /// on an M (its registers are that thread's, not saved anywhere).
    pub regs: Option<SavedRegs>,
    /// Its stack's usable range `lo..hi` (from `Heap::alloc_stack`).
    pub stack: (usize, usize),
}

/// The crashing thread, as the scheduler knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CurrentThread {
    /// Its M id (`m=` in the report).
    pub m: u64,
    /// The task it runs — also while that task is in a C call on this M's
    /// g0 stack (then with state [`TaskState::Syscall`] and the `regs`
    /// saved at `cgocall`'s entry). `None` when the M runs no task.
    pub task: Option<TaskInfo>,
}

/// The scheduler's side of a crash report. Implemented by the scheduler,
/// registered once with [`set_crash_view`], called only by the fatal-signal
/// handler and the fatal-panic report.
///
/// # Contract (read this before implementing)
///
/// Every method may run inside a signal handler that interrupted *any*
/// code on the crashing thread, including the scheduler holding its own
/// locks, and the allocator in the middle of an allocation. So each method
/// must:
///
/// - take no lock (not even a spin lock the crashed thread might hold);
///   read shared state with atomic loads (`Relaxed`/`Acquire`);
/// - not allocate or free (no `Vec`, `Box`, `String`, `format!`), and not
///   touch a `thread_local!` that lazily allocates or registers a
///   destructor (a `const`-initialised `Cell` of plain data is fine);
/// - tolerate torn state: a task list being modified while it is walked
///   may be seen half-updated. Skipping a task, or reporting one with a
///   stale state, is fine; dereferencing freed memory is not — keep tasks'
///   metadata in memory that is never unmapped while the process lives
///   (the heap's spans are like this), or stop walking at anything that
///   looks inconsistent;
/// - not panic.
///
/// The report never calls these from two threads at once (crash handling
/// is serialised), and other threads keep running while it reads: a task
/// that another M is running is reported as such, without frames.
pub trait CrashView: Sync {
    /// The calling thread's M and the task it runs, or `None` on a thread
    /// the scheduler did not create or bind (a foreign C thread, or the
    /// main thread before the runtime started).
    fn current(&self) -> Option<CurrentThread>;

    /// Calls `visit` once per live task (including the current thread's,
    /// which the report skips), in any order. `visit` does not allocate.
    fn for_each_task(&self, visit: &mut dyn FnMut(&TaskInfo));
}

static VIEW: OnceLock<&'static dyn CrashView> = OnceLock::new();

/// Registers the scheduler's view for crash reports. The runtime's
/// scheduler calls it once, when it starts; it is public for an embedder
/// that runs tasks with a scheduler of its own. Later calls are ignored
/// (the first view stays).
pub fn set_crash_view(view: &'static dyn CrashView) {
    let _ = VIEW.set(view);
}

/// The registered view. A lock-free load, safe in a signal handler.
pub(crate) fn crash_view() -> Option<&'static dyn CrashView> {
    VIEW.get().copied()
}

impl TaskState {
    /// Go's word for the state.
    pub(crate) fn word(&self) -> &'static str {
        match self {
            TaskState::Running => "running",
            TaskState::Runnable => "runnable",
            TaskState::Syscall => "syscall",
            TaskState::Waiting("") => "waiting",
            TaskState::Waiting(reason) => reason,
        }
    }
}

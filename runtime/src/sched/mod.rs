//! Tasks, processors and threads: the M:N scheduler.
//!
//! Managed code runs in **tasks** (Go's goroutines), each on its own stack
//! carved from the managed heap with a guard page below it, so a pointer
//! into a task stack is managed memory to the checker (`Region::Stack`).
//! Tasks run on **Ms**, OS threads, each with its own thread stack, the
//! **g0** stack, where the scheduler and every C function run. To run a
//! task an M must hold a **P**; there are `GOMAXPROCS` of them.
//!
//! The whole picture, following one program:
//!
//! 1. `cgocheck::run(f)` starts the runtime once: it reads `GOMAXPROCS` and
//!    `CGOCHECK_STACK_KB` (`config.rs`), makes that many idle Ps, and starts
//!    the monitor thread (`monitor.rs`). The calling thread becomes an M
//!    (`arch::g0_enter` makes its stack the g0 stack) and runs `f` as the
//!    **main task**, locked to that thread (so `f` may borrow from the
//!    caller); `run` returns `f`'s result when the main task ends.
//!
//! 2. `spawn(f)` takes a task record (`task.rs`; records are never freed,
//!    only reused), gives it a stack whose first context starts `f`
//!    (`arch::init_task_stack`), and queues it (`schedule::ready`). If a P
//!    is idle, one idle M is woken with it (or a worker thread is created:
//!    `m.rs`).
//!
//! 3. Each M runs `schedule` on g0: take a task and `gogo` into it — one
//!    of its own (a task that started on this M stays bound to it for
//!    life: its **local queue**), or a new one from the **global queue**,
//!    which is then bound to this M. A task leaves the CPU by calling
//!    `arch::mcall`, which saves its registers on its own stack and calls a
//!    function on g0 — `yield_m` (back of its M's queue), `park_m` (wait
//!    for `unpark`), `goexit0` (free the stack, drop the record) — which
//!    then calls `schedule` again. g0 frames are never resumed, only
//!    started afresh at the M's `g0_sp` (the rule that makes callbacks safe
//!    later; see `arch/x86_64.rs`). An M with nothing to run gives its P
//!    back and sleeps; when one of its tasks becomes runnable it is woken
//!    with a P, or queues itself for the next free P (`schedule.rs` says
//!    how no task is left behind).
//!
//! 4. Blocking operations are built on park/unpark: [`JoinHandle::join`],
//!    [`Chan`] send/receive (`chan.rs`), [`sleep`] (a timer the monitor
//!    fires). The same calls block the thread when made outside a task.
//!
//! 5. A C call (`crate::cgocall`) does not give the P away, nor even change
//!    the P's state word: the M says "in C" with a plain store to its own
//!    `cstate`, the task's stack pointer is saved and C runs on g0
//!    (`arch::asmcgocall`), and on return a plain load of the M's `trap`
//!    counter says whether anyone came for the P meanwhile (the crossing
//!    protocol: `cgocall.rs`, `crossing.rs`). If the call lasted more than
//!    a monitor period while other tasks waited, the monitor took the P in
//!    between (`monitor.rs`: the protocol's barrier, then a
//!    compare-and-swap to `IDLE`, handed to another M); the returning task
//!    finds its `trap` moved, and takes an idle P, or its M sleeps until it
//!    is handed one.
//!
//! 6. `lock_os_thread` makes a task's M its alone: the M runs nothing else
//!    (it starts no new task, and its other bound tasks wait), and when the
//!    task blocks the M hands its P on and sleeps until the task is
//!    runnable again (Go's `stoplockedm`/`startlockedm`).
//!
//! 7. Scheduling is preemptive, as Go's since 1.14: a task that neither
//!    yields, blocks, nor calls C keeps its P only for a time slice (10
//!    ms) while other work waits for a P. Then the monitor sends its M a
//!    signal (`gc/preempt.rs`); the task, interrupted at whatever
//!    instruction of managed code it was, hands its P on and its thread
//!    waits — running no other task meanwhile, so a `std` lock the task
//!    holds cannot block its own thread — until a P comes back. The same
//!    signal stops such a task for the collector. Code holding a runtime
//!    lock is not interrupted (`nopreempt.rs`), nor are C, the C library
//!    and the scheduler itself; they reach a safepoint soon anyway.
//!
//! Thread-locals are per OS thread, and a task never changes threads once
//! it has started, so safe code cannot see a task move: the compiler may
//! keep a thread-local's address across a yield, a blocking call or a C
//! call, and it stays right; an `Rc` cloned from a thread-local, a `std`
//! lock guard or `std::thread::current()` held across them stay on their
//! thread too. But a thread-local is shared by every task bound to that
//! thread, so it is not per-task state: that is `task_local!`
//! (`task_local.rs`), each task's own values, dropped when it ends. The
//! runtime itself still reads its per-thread state only through a
//! never-inlined accessor (`m::current_m`). A task unwinding a panic is
//! locked to its M while it blocks, because the standard library's panic
//! count is thread-local and the thread's other tasks must not see it.

mod chan;
pub(crate) mod config;
pub mod crossing;
pub(crate) mod m;
mod monitor;
pub(crate) mod nopreempt;
pub(crate) mod p;
mod parking;
pub(crate) mod schedule;
mod stats;
pub(crate) mod task;
pub(crate) mod task_local;
mod view;

pub use chan::Chan;
pub use config::{DEFAULT_STACK_KB, MAX_PROCS, MAX_STACK_KB, MIN_STACK_KB};
pub use monitor::sleep;
pub use schedule::{gomaxprocs, lock_os_thread, run, run_test, set_gomaxprocs, unlock_os_thread, yield_now};
pub use stats::{current_m_stats, stats, MStats, Stats};
pub use task::{current_task, park, spawn, spawn_with_stack, JoinHandle, Task, WaitReason};
pub use task_local::{AccessError, LocalKey, DROP_ROUNDS};

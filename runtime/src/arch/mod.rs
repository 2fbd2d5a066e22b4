//! The machine-level pieces of the scheduler and of `cgocall`: switching
//! stacks. Everything else in `sched/` and `cgocall.rs` is portable Rust
//! written against the five operations here:
//!
//! - [`g0_enter`]: a thread turns into an M, its own stack into the g0
//!   stack, and it can come back out (`gogo(exit_sp)`);
//! - [`mcall`]: a task saves its context and continues on the g0 stack;
//! - [`gogo`]: resume a saved context (a task, or the thread that entered
//!   `g0_enter`);
//! - [`init_task_stack`]: a fresh task stack that `gogo` starts;
//! - [`asmcgocall`]: call a C trampoline on the g0 stack and come back.
//!
//! and, for asynchronous preemption (`gc/preempt.rs`), [`preempt`]: the
//! call a SIGURG handler injects into an interrupted task.
//!
//! Only x86_64 (System V ABI) is implemented.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::*;
#[cfg(target_arch = "x86_64")]
#[path = "preempt_x86_64.rs"]
pub(crate) mod preempt;

#[cfg(not(target_arch = "x86_64"))]
compile_error!("cgocheck's scheduler is implemented for x86_64 only (see runtime/src/arch/)");

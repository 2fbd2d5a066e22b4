//! The scheduler's side of crash reports: [`CrashView`] read in place.
//!
//! The fatal-signal handler may interrupt anything, including this
//! scheduler holding its lock, so the view reads only what is safe to read
//! from there: the thread's current M (a `const` thread-local `Cell`), and
//! the M and task records, which are never freed (see `m.rs`, `task.rs`),
//! through atomic loads. A task's saved registers are read from its stack:
//! stacks live in the heap's range and stay mapped after they are freed
//! (their pages read as zero), so a task that ends while it is being read
//! gives a stale or empty walk, never a fault. A saved stack pointer is
//! used only if it lies inside the task's stack.

use super::m::{current_m, M};
use super::task::{for_each_g, status, G};
use crate::arch::{self, CONTEXT_SIZE};
use crate::signal::{CrashView, CurrentThread, SavedRegs, TaskInfo, TaskState};
use std::sync::atomic::Ordering;

/// The view registered with `signal::set_crash_view` when the runtime starts.
pub(crate) struct SchedView;

pub(crate) static VIEW: SchedView = SchedView;

fn regs(r: arch::SavedRegs) -> SavedRegs {
    SavedRegs { pc: r.pc, sp: r.sp, fp: r.bp }
}

/// `g` as a report shows it; `None` for a free or finished record.
fn info(g: &G) -> Option<TaskInfo> {
    let id = g.id();
    let (lo, hi) = (g.stack_lo.load(Ordering::Relaxed), g.stack_hi.load(Ordering::Relaxed));
    let inside = |sp: usize, len: usize| sp >= lo && sp.checked_add(len).is_some_and(|end| end <= hi);
    let st = g.status.load(Ordering::Acquire);
    let suspended = || {
        let sp = g.sched_sp.load(Ordering::Acquire);
        // SAFETY: `sp` lies in the task's stack, which stays mapped.
        inside(sp, CONTEXT_SIZE).then(|| regs(unsafe { arch::suspended_regs(sp) }))
    };
    let (state, regs) = match st {
        status::RUNNABLE => (TaskState::Runnable, suspended()),
        status::WAITING => (TaskState::Waiting(g.wait_reason().as_str()), suspended()),
        status::RUNNING => {
            // SAFETY: Ms are never freed.
            let m = unsafe { g.m.load(Ordering::Acquire).as_ref() };
            let in_c =
                m.is_some_and(|m| m.incgo.load(Ordering::Acquire) && std::ptr::eq(m.curg.load(Ordering::Relaxed), g));
            if in_c {
                // 0 while the task is between entering C and the stack
                // switch (it is still running on its own stack).
                let sp = g.syscall_sp.load(Ordering::Acquire);
                // SAFETY: `sp` lies in the task's stack, which stays mapped.
                (TaskState::Syscall, inside(sp, 16).then(|| regs(unsafe { arch::syscall_regs(sp) })))
            } else {
                (TaskState::Running, None)
            }
        }
        _ => return None,
    };
    if id == 0 {
        return None;
    }
    Some(TaskInfo { id, state, locked: !g.lockedm.load(Ordering::Relaxed).is_null(), regs, stack: (lo, hi) })
}

impl CrashView for SchedView {
    fn current(&self) -> Option<CurrentThread> {
        // SAFETY: Ms are never freed.
        let m: &M = unsafe { current_m().as_ref() }?;
        Some(CurrentThread { m: m.id, task: m.curg().and_then(info) })
    }

    fn for_each_task(&self, visit: &mut dyn FnMut(&TaskInfo)) {
        for_each_g(|g| {
            if let Some(t) = info(g) {
                visit(&t);
            }
        });
    }
}

/// Registers the view and the panic hook (from `ensure_started`).
pub(crate) fn register() {
    crate::signal::set_crash_view(&VIEW);
    crate::signal::install_panic_hook();
}

//! `NoPreempt`: marks code that holds a runtime lock, so the task running it
//! is not preempted there (Go's `m.locks`).
//!
//! While the world is stopped the collector takes runtime locks (the
//! scheduler's, the Handle table, channel states, the root and cleanup
//! registries). A task stopped while holding one of them would deadlock
//! the collection. Tasks stop only at safepoints, which are never inside
//! such a lock, or by asynchronous preemption (`gc/preempt.rs`), which
//! declines while the interrupted M's `locks` is non-zero and leaves
//! `preempt_pending` instead; the guard that brings `locks` back to zero
//! honours it.
//!
//! Take the guard *before* the lock and drop it *after* the lock guard:
//!
//! ```ignore
//! let _np = NoPreempt::new();
//! let state = self.state.lock().unwrap();
//! ```
//!
//! On a thread that is not an M (a plain thread, the monitor, the
//! collector) it does nothing: those threads are never preempted.

use super::m::{current_m, M};
use std::sync::atomic::{compiler_fence, Ordering};

/// The guard (module comment). Not `Send`: it must be dropped on the thread
/// (the M) that took it.
pub(crate) struct NoPreempt {
    m: Option<&'static M>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl NoPreempt {
    /// Holds off preemption of the current task until dropped.
    #[inline]
    pub(crate) fn new() -> NoPreempt {
        // SAFETY: Ms are never freed; a non-null current M is this thread's.
        let m = unsafe { current_m().as_ref() };
        if let Some(m) = m {
            m.locks.store(m.locks.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            // The preemption signal handler runs on this thread: keep the
            // compiler from sinking the store into the locked section.
            compiler_fence(Ordering::SeqCst);
        }
        NoPreempt { m, _not_send: std::marker::PhantomData }
    }
}

impl Drop for NoPreempt {
    #[inline]
    fn drop(&mut self) {
        if let Some(m) = self.m {
            // Nor hoisting the release above the end of the locked section.
            compiler_fence(Ordering::SeqCst);
            let n = m.locks.load(Ordering::Relaxed) - 1;
            m.locks.store(n, Ordering::Relaxed);
            if n == 0 && m.preempt_pending.load(Ordering::Relaxed) {
                m.preempt_pending.store(false, Ordering::Relaxed);
                crate::gc::preempt::pending_preemption();
            }
        }
    }
}

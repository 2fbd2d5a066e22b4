//! Cleanups (Go 1.24's `runtime.AddCleanup`). (Owner: control helper. Interface fixed; body to be written.)

use crate::values::Gc;

/// A registered cleanup; [`Cleanup::stop`] cancels it.
pub struct Cleanup {
    _id: u64,
}

impl Cleanup {
    /// Cancels the cleanup if it has not run.
    pub fn stop(self) {}
}

/// Runs `f(arg)` on a runtime task some time after `obj` becomes unreachable.
pub fn add_cleanup<T, A: Send + 'static>(obj: Gc<T>, arg: A, f: impl FnOnce(A) + Send + 'static) -> Cleanup {
    let _ = (obj, arg, f);
    Cleanup { _id: 0 }
}

/// World stopped, marking done: queues the cleanups of unmarked objects.
pub(crate) fn after_mark() {}

/// Wakes the task that runs queued cleanups.
pub(crate) fn wake_runner() {}

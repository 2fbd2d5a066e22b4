//! Stopping and starting the world; safepoints. (Owner: stw helper.
//! Interface fixed; body to be written.)

/// Stops every P (world running → stopped); returns when none runs managed
/// code. Called by the collector thread only.
pub(crate) fn stop_the_world() {}

/// Restarts what `stop_the_world` stopped.
pub(crate) fn start_the_world() {}

/// A safepoint: on a task while a stop is requested, stops here (context
/// saved) until the world restarts. Cheap otherwise (one load).
#[inline]
pub(crate) fn safepoint() {}

/// Runs `f` as a blocking call: from a task, with its P in the C-call state
/// (so the world can stop meanwhile; `f` must not touch managed memory nor
/// block on a task); elsewhere, directly.
pub(crate) fn blocking<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Calls `f(lo, hi)` for every task whose stack may hold live pointers:
/// `[lo, hi)` holds its frames and every register saved at its stop. World
/// stopped.
pub(crate) fn for_each_task_stack(f: &mut dyn FnMut(usize, usize)) {
    let _ = f;
}

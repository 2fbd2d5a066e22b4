//! Asynchronous preemption. (Owner: preempt helper. Body to be written.)

/// A preemption requested while the task held runtime locks, honoured now
/// that it holds none (called on the task, in normal context).
pub(crate) fn pending_preemption() {
    super::stw::safepoint();
}

//! Ps: the `GOMAXPROCS` tokens an M must hold to run managed code.
//!
//! A P's state is one atomic word, `owner M id << 32 | state`:
//!
//! | state | meaning | who moves it out |
//! |---|---|---|
//! | `IDLE` | on the idle list (or being handed over), no owner | whoever takes it, under the scheduler lock |
//! | `RUNNING` | its owner M runs managed code or the scheduler | the owner only |
//! | `SYSCALL` | its owner M is in a C call; the P stays attached | the owner (exitsyscall), the monitor (retake) or `set_gomaxprocs` (retire), by compare-and-swap |
//! | `DEAD` | beyond `GOMAXPROCS`; never handed out | `set_gomaxprocs` growing again |
//! | `STOP_RUNNING` | the world is stopped; its owner M stopped at a safepoint (or in the scheduler) and waits | the collector, at restart (back to `RUNNING`, same owner) |
//! | `STOP_SYSCALL` | the world is stopped; its owner M is in C (the collector stopped it by compare-and-swap from `SYSCALL`) | the collector, at restart (back to `SYSCALL`, same owner) |
//! | `STOP_IDLE` | the world is stopped; the collector took it off the idle list (or `pidleput` stopped it instead of listing it) | the collector, at restart (back to the idle list, or to an M if work is queued) |
//!
//! The owner's id in the word is what makes exitsyscall's single
//! compare-and-swap safe: if the monitor retook the P while the M was in C,
//! gave it to another M that is now in C too, the word says `SYSCALL` again
//! but with the other owner, and the returning M's compare fails. (Go gets
//! the same guarantee from clearing `m.p` under the task's scan bit.)
//!
//! The three stopped states keep the owner in the word, so the owner's own
//! compare-and-swaps (exitsyscall's, a callback's) fail while the world is
//! stopped and succeed again once the collector restored the word; the
//! monitor's retake (`SYSCALL` → `IDLE`) fails on them too, so nothing but
//! the collector moves a stopped P (`gc/stw.rs` tells the whole story).
//!
//! Ps are created on demand and never freed, so a pointer to one (in an M,
//! in the monitor's table) is always valid; `ALLP[i]` is P `i`.

use super::config::MAX_PROCS;
use super::m::M;
use std::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// On the idle list, no owner.
pub(crate) const IDLE: u64 = 0;
/// Owned, running managed code.
pub(crate) const RUNNING: u64 = 1;
/// Owned by an M that is in C.
pub(crate) const SYSCALL: u64 = 2;
/// Retired by a smaller `GOMAXPROCS`.
pub(crate) const DEAD: u64 = 3;
/// World stopped: its owner stopped at a safepoint and waits for the restart.
pub(crate) const STOP_RUNNING: u64 = 4;
/// World stopped: its owner is in C; restored to `SYSCALL` at restart.
pub(crate) const STOP_SYSCALL: u64 = 5;
/// World stopped: taken off the idle list; listed again at restart.
pub(crate) const STOP_IDLE: u64 = 6;

/// The state word for `state` owned by M `m`.
#[inline]
pub(crate) const fn word(m: u64, state: u64) -> u64 {
    (m << 32) | state
}

/// The owner part of a state word (an M id; 0 for none).
#[inline]
pub(crate) const fn owner_of(word: u64) -> u64 {
    word >> 32
}

/// The state part of a state word.
#[inline]
pub(crate) const fn state_of(word: u64) -> u64 {
    word & 0xffff_ffff
}

/// A processor. Aligned to a cache line: Ps are written by different Ms
/// (and compared-and-swapped by the monitor), and must not share lines.
#[repr(C, align(64))]
pub(crate) struct P {
    /// 0-based; P `i` exists while `i < GOMAXPROCS`.
    pub id: usize,
    /// `owner << 32 | state` (module comment).
    pub status: AtomicU64,
    /// Incremented by every C call made while holding this P. The monitor
    /// retakes the P when it sees the same tick in `SYSCALL` twice, a
    /// monitor period apart.
    pub syscalltick: AtomicU32,
    /// Incremented each time a task is scheduled on this P.
    pub schedtick: AtomicU32,
    /// The M holding it, for reports (not authoritative: `status` is).
    pub m: AtomicPtr<M>,
}

/// Ps created so far (they are created in id order).
static CREATED: AtomicUsize = AtomicUsize::new(0);

/// Every P ever created, by id.
static ALLP: [AtomicPtr<P>; MAX_PROCS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; MAX_PROCS];

/// P `id`, if it was ever created.
#[inline]
pub(crate) fn allp(id: usize) -> Option<&'static P> {
    // SAFETY: a non-null entry is a leaked, never freed P.
    ALLP.get(id).and_then(|slot| unsafe { slot.load(Ordering::Acquire).as_ref() })
}

/// P `id`, created (in state `DEAD`) if needed. Called with the scheduler
/// lock held, which serialises creators.
pub(crate) fn get_or_create(id: usize) -> &'static P {
    if let Some(p) = allp(id) {
        return p;
    }
    let p: &'static P = Box::leak(Box::new(P {
        id,
        status: AtomicU64::new(DEAD),
        syscalltick: AtomicU32::new(0),
        schedtick: AtomicU32::new(0),
        m: AtomicPtr::new(std::ptr::null_mut()),
    }));
    ALLP[id].store(p as *const P as *mut P, Ordering::Release);
    CREATED.fetch_max(id + 1, Ordering::Release);
    p
}

/// One more than the highest P id ever created.
pub(crate) fn created() -> usize {
    CREATED.load(Ordering::Acquire)
}

//! Ps: the `GOMAXPROCS` tokens an M must hold to run managed code.
//!
//! A P's state is one atomic word, `owner M id << 32 | generation << 8 |
//! state`:
//!
//! | state | meaning | who moves it out |
//! |---|---|---|
//! | `IDLE` | on the idle list (or being handed over), no owner | whoever takes it, under the scheduler lock |
//! | `RUNNING` | its owner M runs managed code, the scheduler, or C (a C call does not change the word: `sched/crossing.rs`) | the owner; while the owner is in C, also the collector (`STOP_SYSCALL`), the monitor (`IDLE`, a retake) and `set_gomaxprocs` (`DEAD`), each by the crossing protocol's barrier and one compare-and-swap |
//! | `DEAD` | beyond `GOMAXPROCS`; never handed out | `set_gomaxprocs` growing again |
//! | `STOP_RUNNING` | the world is stopped; its owner M stopped at a safepoint (or in the scheduler) and waits | the collector, at restart (back to `RUNNING`, same owner) |
//! | `STOP_SYSCALL` | the world is stopped; its owner M is in C (the collector stopped it by the crossing protocol) | the collector, at restart (back to `RUNNING`, same owner; the owner, back from C, takes it by compare-and-swap) |
//! | `STOP_IDLE` | the world is stopped; the collector took it off the idle list (or `pidleput` stopped it instead of listing it) | the collector, at restart (back to the idle list, or to an M if work is queued) |
//!
//! The owner's id in the word is what makes every compare-and-swap of a
//! rare side safe: a word read while M 3 was in C cannot match once the P
//! went to M 4. The *generation* (24 bits, only in `RUNNING` words) is
//! what the owner changes, by compare-and-swap, when it comes back from C
//! on the slow path: a rare side that read the word before the owner came
//! back then fails its own compare-and-swap (`sched/crossing.rs` tells the
//! protocol and why it needs exactly this).
//!
//! The three stopped states keep the owner in the word, so the owner's own
//! compare-and-swaps (a C call's slow exit, a callback's) fail while the
//! world is stopped and succeed again once the collector restored the word;
//! the monitor's retake fails on them too, so nothing but the collector
//! moves a stopped P (`gc/stw.rs` tells the whole story).
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
/// Retired by a smaller `GOMAXPROCS`.
pub(crate) const DEAD: u64 = 3;
/// World stopped: its owner stopped at a safepoint and waits for the restart.
pub(crate) const STOP_RUNNING: u64 = 4;
/// World stopped: its owner is in C; restored to `SYSCALL` at restart.
pub(crate) const STOP_SYSCALL: u64 = 5;
/// World stopped: taken off the idle list; listed again at restart.
pub(crate) const STOP_IDLE: u64 = 6;

/// The state word for `state` owned by M `m` (generation 0).
#[inline]
pub(crate) const fn word(m: u64, state: u64) -> u64 {
    (m << 32) | state
}

/// The generation bits of a word (module comment).
const GENERATION: u64 = 0xffff_ff00;

/// Whether `word` says M `m` holds the P `RUNNING`, whatever its
/// generation.
#[inline]
pub(crate) const fn is_running_by(word: u64, m: u64) -> bool {
    word & !GENERATION == self::word(m, RUNNING)
}

/// `word` (a `RUNNING` word) with the next generation: the word an owner
/// back from C on the slow path swaps in (`sched/crossing.rs`).
#[inline]
pub(crate) const fn next_generation(word: u64) -> u64 {
    (word & !GENERATION) | (word.wrapping_add(1 << 8) & GENERATION)
}

/// The owner part of a state word (an M id; 0 for none).
#[inline]
pub(crate) const fn owner_of(word: u64) -> u64 {
    word >> 32
}

/// The state part of a state word.
#[inline]
pub(crate) const fn state_of(word: u64) -> u64 {
    word & 0xff
}

/// A processor. Aligned to a cache line: Ps are written by different Ms
/// (and compared-and-swapped by the monitor), and must not share lines.
#[repr(C, align(64))]
pub(crate) struct P {
    /// 0-based; P `i` exists while `i < GOMAXPROCS`.
    pub id: usize,
    /// `owner << 32 | state` (module comment).
    pub status: AtomicU64,
    /// Incremented each time a task is scheduled on this P.
    pub schedtick: AtomicU32,
    /// The M holding it, for reports (not authoritative: `status` is).
    pub m: AtomicPtr<M>,
}

impl P {
    /// P `id`, `DEAD`, in no table.
    pub(crate) fn new(id: usize) -> P {
        P { id, status: AtomicU64::new(DEAD), schedtick: AtomicU32::new(0), m: AtomicPtr::new(std::ptr::null_mut()) }
    }
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
    let p: &'static P = Box::leak(Box::new(P::new(id)));
    ALLP[id].store(p as *const P as *mut P, Ordering::Release);
    CREATED.fetch_max(id + 1, Ordering::Release);
    p
}

/// One more than the highest P id ever created.
pub(crate) fn created() -> usize {
    CREATED.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_change_only_their_bits_and_wrap() {
        let w = word(7, RUNNING);
        assert!(is_running_by(w, 7) && !is_running_by(w, 8));
        let n = next_generation(w);
        assert_ne!(n, w);
        assert!(is_running_by(n, 7));
        assert_eq!((owner_of(n), state_of(n)), (7, RUNNING));
        // 2^24 generations come back to the first, and never touch the
        // owner or the state on the way.
        let mut g = w;
        for _ in 0..(1 << 24) - 1 {
            g = next_generation(g);
            assert!(is_running_by(g, 7));
        }
        assert_eq!(next_generation(g), w);
        // Other states are not "running by".
        assert!(!is_running_by(word(7, STOP_SYSCALL), 7) && !is_running_by(IDLE, 0));
    }
}

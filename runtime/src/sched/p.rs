//! Ps: the `GOMAXPROCS` tokens an M must hold to run managed code.
//!
//! A P's state is one atomic word, `owner M id << 40 | generation << 8 |
//! state` (M ids below 2^24, a 32-bit generation):
//!
//! | state | meaning | who moves it out |
//! |---|---|---|
//! | `IDLE` | on the idle list (or being handed over), no owner | whoever takes it, under the scheduler lock |
//! | `RUNNING` | its owner M runs managed code, the scheduler, or C (a C call does not change the word: `sched/crossing.rs`) | the owner; while the owner is in C, also the collector (`STOP_SYSCALL`), the monitor (`IDLE`, a retake) and `set_gomaxprocs` (`DEAD`), each by the crossing protocol's barrier and one compare-and-swap |
//! | `DEAD` | beyond `GOMAXPROCS`; never handed out | `set_gomaxprocs` growing again |
//! | `STOP_RUNNING` | the world is stopped; its owner M stopped at a safepoint (or in the scheduler) and waits | the collector, at restart (back to `RUNNING`, same owner, a new generation) |
//! | `STOP_SYSCALL` | the world is stopped; its owner M is in C (the collector stopped it by the crossing protocol, or the owner itself, back from C while the stop was requested) | the collector, at restart (back to `RUNNING`, same owner, a new generation; the owner, back from C, takes it by compare-and-swap) |
//! | `STOP_IDLE` | the world is stopped; the collector took it off the idle list (or `pidleput` stopped it instead of listing it) | the collector, at restart (back to the idle list, or to an M if work is queued) |
//!
//! The owner's id in the word is what makes every compare-and-swap of a
//! rare side safe: a word read while M 3 was in C cannot match once the P
//! went to M 4. The *generation* (only in `RUNNING` words) makes it safe
//! against the same M: every `RUNNING` word ever written for a P carries a
//! generation of its own, from the P's counter ([`P::running_for`]) —
//! when an M takes the P, when the world restarts, and when the owner
//! comes back from C on the slow path (by compare-and-swap). A rare side
//! that read the word before any of these fails its compare-and-swap,
//! however long it was held up between its read and its exchange
//! (`cgocall.rs` tells the protocol and why it needs exactly this).
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

/// The state word for `state` owned by M `m` (generation 0: the stopped
/// states; a `RUNNING` word comes from [`P::running_for`]).
#[inline]
pub(crate) const fn word(m: u64, state: u64) -> u64 {
    (m << OWNER_SHIFT) | state
}

/// Where the owner's id starts in a word: ids are below 2^24.
const OWNER_SHIFT: u32 = 40;
/// The generation bits of a word (module comment): 32 of them.
const GENERATION: u64 = 0xff_ffff_ff00;
/// The largest M id a word can name.
pub(crate) const MAX_OWNER: u64 = (1 << (64 - OWNER_SHIFT)) - 1;

/// Whether `word` says M `m` holds the P `RUNNING`, whatever its
/// generation.
#[inline]
pub(crate) const fn is_running_by(word: u64, m: u64) -> bool {
    word & !GENERATION == self::word(m, RUNNING)
}

/// The owner part of a state word (an M id; 0 for none).
#[inline]
pub(crate) const fn owner_of(word: u64) -> u64 {
    word >> OWNER_SHIFT
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
    /// `owner << 40 | generation << 8 | state` (module comment).
    pub status: AtomicU64,
    /// The last generation given to a `RUNNING` word of this P.
    generation: AtomicU32,
    /// Incremented each time a task is scheduled on this P.
    pub schedtick: AtomicU32,
    /// The M holding it, for reports (not authoritative: `status` is).
    pub m: AtomicPtr<M>,
}

impl P {
    /// P `id`, `DEAD`, in no table.
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            status: AtomicU64::new(DEAD),
            generation: AtomicU32::new(0),
            schedtick: AtomicU32::new(0),
            m: AtomicPtr::new(std::ptr::null_mut()),
        }
    }

    /// A `RUNNING` word owned by M `m` with a generation no earlier word of
    /// this P had (until the 32-bit counter wraps): what every writer of a
    /// `RUNNING` word stores or swaps in.
    #[inline]
    pub(crate) fn running_for(&self, m: u64) -> u64 {
        let g = self.generation.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        word(m, RUNNING) | (g as u64) << 8
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
    fn every_running_word_is_new_and_keeps_its_owner_and_state() {
        let p = P::new(0);
        let mut seen = std::collections::HashSet::new();
        for m in [7, MAX_OWNER, 7, 1] {
            for _ in 0..1000 {
                let w = p.running_for(m);
                assert!(seen.insert(w), "{w:#x} again");
                assert!(is_running_by(w, m) && !is_running_by(w, m ^ 1));
                assert_eq!((owner_of(w), state_of(w)), (m, RUNNING));
            }
        }
        // The counter wraps within its bits, never into the owner's.
        p.generation.store(u32::MAX, Ordering::Relaxed);
        let w = p.running_for(5);
        assert_eq!((owner_of(w), state_of(w), w & GENERATION), (5, RUNNING, 0));
        // Other states are not "running by".
        assert!(!is_running_by(word(7, STOP_SYSCALL), 7) && !is_running_by(IDLE, 0));
    }
}

//! The crossing protocol's code: who holds a P while its M is in C.
//!
//! A C call does not change its P's state word: the P stays
//! `RUNNING(m, generation)`, and the M says "in C" with one plain store to
//! its own `cstate` (`asmcgocall`, after the registers the collector scans
//! are saved). Coming back it clears `cstate` and compares its `trap`
//! counter with the last value it saw — plain loads and stores, no locked
//! instruction. The rare sides that take a P from an M in C (the
//! collector stopping the world, the monitor retaking a P from a long
//! call, `set_gomaxprocs` retiring one, an M giving its own P up from C)
//! pay instead: they read the P's word, count themselves in the owner's
//! `trap`, issue one process-wide barrier (`membarrier`), and only then
//! read `cstate`; if the owner is in C they take the P by compare-and-swap
//! of the word they read first. An owner that finds its `trap` moved takes
//! the slow path ([`reclaim`]): a compare-and-swap to the word's next
//! generation, which makes every such rare side's compare-and-swap fail,
//! or, if one got there first, waits out a stop or gives the P up.
//!
//! The steps of each side, and why no interleaving leaves a P with two
//! owners or a task running managed code while the world is stopped, are
//! in `cgocall.rs`'s opening comment; this file is their code.
//!
//! ## The barrier, chosen once
//!
//! At start the runtime registers for `membarrier(PRIVATE_EXPEDITED)`
//! (Linux 4.14): the barrier then interrupts every CPU running a thread of
//! this process, which is a full fence on each, and the owner's side needs
//! none. Where that is unavailable (an older kernel, a seccomp filter that
//! refuses the call) or `CGOCHECK_BARRIER=fence` asks for it, the owner
//! fences instead: its store to `cstate` on the way back is an `xchg` (a
//! locked instruction, as the old protocol's compare-and-swap was), and the
//! rare side's barrier is the locked increment of `trap` itself: Dekker's
//! algorithm with a fence on both sides. `CGOCHECK_BARRIER=membarrier`
//! refuses to start without it. [`barrier_kind`] says which is in use.

use super::m::M;
use super::p::{self, P};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;

/// How the rare sides' barrier is made (module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    /// `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: the C-call path
    /// has no fence.
    Membarrier,
    /// No `membarrier`: the C-call path fences (an `xchg`) on the way
    /// back from C.
    Fence,
}

/// `membarrier`'s commands (`linux/membarrier.h`).
const MEMBARRIER_CMD_QUERY: libc::c_long = 0;
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: libc::c_long = 1 << 3;
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_long = 1 << 4;

/// The barrier in use, decided on first use (before the first M exists:
/// every M copies the answer into its `fence` field).
static BARRIER: OnceLock<Barrier> = OnceLock::new();

/// Process-wide barriers issued so far (statistics, tests).
static BARRIERS: AtomicU64 = AtomicU64::new(0);

/// The barrier in use: `membarrier` when the kernel allows it and
/// `CGOCHECK_BARRIER` does not say `fence`.
pub fn barrier_kind() -> Barrier {
    *BARRIER.get_or_init(|| {
        let wanted = super::config::config().barrier;
        if wanted == Some(Barrier::Fence) {
            return Barrier::Fence;
        }
        if register_membarrier() {
            return Barrier::Membarrier;
        }
        if wanted == Some(Barrier::Membarrier) {
            eprintln!(
                "cgocheck: CGOCHECK_BARRIER=membarrier, but this kernel refuses \
                 membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) (Linux 4.14 or later, not blocked by \
                 seccomp): unset it, or set CGOCHECK_BARRIER=fence"
            );
            std::process::exit(2);
        }
        Barrier::Fence
    })
}

/// Process-wide barriers the rare sides have issued so far (0 with
/// [`Barrier::Fence`], which needs none).
pub fn barriers_issued() -> u64 {
    BARRIERS.load(Ordering::Relaxed)
}

/// Whether a new M must fence on its way back from C.
pub(crate) fn owner_fences() -> bool {
    barrier_kind() == Barrier::Fence
}

/// Asks the kernel for expedited private barriers; true when granted.
fn register_membarrier() -> bool {
    // SAFETY: membarrier takes no pointers; QUERY returns a bit mask of
    // the supported commands, or -1.
    let supported = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) };
    if supported < 0 || supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED == 0 {
        return false;
    }
    // SAFETY: as above; registering changes no memory of ours.
    unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 }
}

/// The rare sides' step 3: one process-wide barrier, after counting
/// themselves in the `trap` of every owner they suspect, before reading
/// any `cstate`. With [`Barrier::Fence`] it is a fence on this thread only
/// (the locked increments were one already; the owners fence themselves).
fn barrier() {
    if SKIP_BARRIER.load(Ordering::Relaxed) {
        return;
    }
    if barrier_kind() == Barrier::Fence {
        fence(Ordering::SeqCst);
        return;
    }
    BARRIERS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: membarrier takes no pointers; this process registered for
    // the command at start (barrier_kind).
    let r = unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) };
    if r != 0 {
        // Registered, so it cannot fail; if it does, no rare side may go
        // on (it could take a P from an M running managed code).
        eprintln!("cgocheck: membarrier(PRIVATE_EXPEDITED) failed: {}", std::io::Error::last_os_error());
        std::process::abort();
    }
}

/// The owner of `p` and the word it read, when the word says `RUNNING`
/// and the owner's `cstate` says it is in C: a hint (a stale `cstate`
/// either way), which [`Suspect::take`] confirms after the barrier.
pub(crate) fn in_c(p: &'static P) -> Option<(&'static M, u64)> {
    let s = p.status.load(Ordering::SeqCst);
    if p::state_of(s) != p::RUNNING {
        return None;
    }
    // SAFETY: Ms are never freed; `p.m` is written before the word that
    // names its owner, which the id check confirms.
    let m = unsafe { p.m.load(Ordering::Acquire).as_ref() }?;
    (m.id == p::owner_of(s) && m.cstate.load(Ordering::Relaxed)).then_some((m, s))
}

/// A P whose owner seemed to be in C, counted in that owner's `trap`
/// (steps 1 and 2 of a rare side), waiting for the barrier.
pub(crate) struct Suspect {
    pub p: &'static P,
    pub m: &'static M,
    /// The P's word, read before the `trap` increment.
    word: u64,
}

impl Suspect {
    /// Steps 1 and 2 for `p`: its word and owner if [`in_c`] says so, the
    /// owner's `trap` counted.
    pub(crate) fn of(p: &'static P) -> Option<Suspect> {
        let (m, word) = in_c(p)?;
        Some(Suspect::counted(p, m, word))
    }

    /// Step 2 for `p`, whose word `word` and owner `m` [`in_c`] returned:
    /// the owner's `trap` counted.
    pub(crate) fn counted(p: &'static P, m: &'static M, word: u64) -> Suspect {
        m.trap.fetch_add(1, Ordering::SeqCst);
        Suspect { p, m, word }
    }

    /// Step 4, after [`barrier`]: if the owner is still in C, moves the P
    /// from the word read in step 1 to `to`. False when the owner left C
    /// (it runs managed code, or takes the slow path and changes the
    /// generation) or the word changed.
    fn take(&self, to: u64) -> bool {
        self.m.cstate.load(Ordering::SeqCst)
            && self.p.status.compare_exchange(self.word, to, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }
}

/// Steps 3 and 4 for every suspect at once: one barrier (none when there
/// are none), then each P moved to `to(suspect)`. Returns the suspects
/// whose P was taken; the others' owners had left C (the caller looks
/// again later, or not).
pub(crate) fn take_all(mut suspects: Vec<Suspect>, to: impl Fn(&Suspect) -> u64) -> Vec<Suspect> {
    if !suspects.is_empty() {
        barrier();
        suspects.retain(|c| c.take(to(c)));
    }
    suspects
}

/// M `m`, in C, gives its own P up (to `IDLE`; the caller hands it on).
/// Counted in its own `trap` first, so its way back from C takes the slow
/// path. False if a rare side took or stopped the P first.
pub(crate) fn give_up(m: &M, p: &P) -> bool {
    m.trap.fetch_add(1, Ordering::SeqCst);
    let s = p.status.load(Ordering::Acquire);
    p::is_running_by(s, m.id) && p.status.compare_exchange(s, p::IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
}

/// M `m` enters C from managed code on this thread (a callback returning
/// to C; `asmcgocall` does the same in assembly): `cstate` goes up, after
/// everything the collector scans of the task is in place.
#[inline]
pub(crate) fn enter_c(m: &M) {
    m.cstate.store(true, Ordering::Release);
}

/// M `m` comes back from C on this thread (a callback arriving, a thread
/// C created letting go of its M; `asmcgocall` does the same in assembly):
/// `cstate` goes down, then `trap` is compared with `trap_seen`. True when
/// `m` holds its P `RUNNING` again (at once, or after waiting out a stop of
/// the world); false when the P is gone (retaken, retired, given up, or
/// `m` held none): the caller takes the scheduler's slow path.
#[inline]
pub(crate) fn leave_c(m: &M) -> bool {
    if m.fence {
        // An `xchg`: the store and a full fence.
        m.cstate.swap(false, Ordering::SeqCst);
    } else {
        m.cstate.store(false, Ordering::Relaxed);
        // The order is the processor's (a store then a load); the compiler
        // must keep it too. The rare side's membarrier does the rest.
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    }
    let trap = m.trap.load(Ordering::Relaxed);
    if trap == m.trap_seen.load(Ordering::Relaxed) && !m.p.load(Ordering::Relaxed).is_null() {
        return true;
    }
    reclaim(m, trap)
}

/// The owner's slow path back from C (`cgocall.rs`, "The owner's slow
/// path"): `trap` (read after `cstate` went down) differs from
/// `trap_seen`. Records it, then takes the P back by compare-and-swap to
/// the next generation of its `RUNNING(m)` word, waiting while the world
/// is stopped (`STOP_SYSCALL(m)`), and stopping the P itself first when a
/// stop is requested; false when the P is no longer `m`'s.
#[cold]
#[inline(never)]
fn reclaim(m: &M, trap: u64) -> bool {
    m.trap_seen.store(trap, Ordering::Relaxed);
    let Some(p) = m.p() else { return false };
    let stopped = p::word(m.id, p::STOP_SYSCALL);
    loop {
        let s = p.status.load(Ordering::Acquire);
        if p::is_running_by(s, m.id) {
            // A stop of the world is under way and its last look found us
            // in C, or will: stop here as if it had caught us there. (A
            // thread making C calls shorter than the barrier would
            // otherwise slip out of every look, and the stop wait on it.)
            if crate::gc::stw::stop_requested() && crate::gc::stw::stop_returning_from_c(m, p, s) {
                continue;
            }
            if p.status.compare_exchange(s, p.running_for(m.id), Ordering::AcqRel, Ordering::Relaxed).is_ok() {
                return true;
            }
        } else if s == stopped {
            crate::gc::stw::wait_while_stopped(p, stopped);
        } else {
            return false;
        }
    }
}

/// The test-only knob of the crossing stress test: the monitor retakes
/// every P it finds in C, every time it looks, and looks without pause.
static EAGER_RETAKE: AtomicBool = AtomicBool::new(false);

/// Makes the monitor retake every P whose M is in C as often as it can
/// (true), or only from calls that outlast its period while work waits
/// (false, the default). For the crossing stress test; not for programs.
#[doc(hidden)]
pub fn set_eager_retake_for_test(on: bool) {
    EAGER_RETAKE.store(on, Ordering::SeqCst);
    super::monitor::poke();
}

/// The test-only knob that breaks the protocol on purpose.
static SKIP_BARRIER: AtomicBool = AtomicBool::new(false);

/// Makes the rare sides skip their barrier (true): with
/// [`Barrier::Membarrier`] nothing then orders an owner's way back from C
/// against a rare side's look at it, and a P can be taken from an M that
/// has just gone back to managed code. For the stress test's proof that
/// it sees exactly that; never for programs.
#[doc(hidden)]
pub fn skip_barrier_for_test(on: bool) {
    SKIP_BARRIER.store(on, Ordering::SeqCst);
}

/// [`set_eager_retake_for_test`]'s setting.
pub(crate) fn eager_retake() -> bool {
    EAGER_RETAKE.load(Ordering::Relaxed)
}

/// Whether the calling task's M holds its P `RUNNING` as the P's word
/// says (false outside a task). The crossing stress test's check that a P
/// has one owner: a task that came back from C believing its P is its own
/// while a rare side took it reads another owner or state here.
#[doc(hidden)]
pub fn current_task_owns_its_p() -> bool {
    // No scheduling turn between reading the M's P and its word: a turn
    // may end with another P, and the first one's word then names another
    // M rightly.
    let _np = super::nopreempt::NoPreempt::new();
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { super::m::current_m().as_ref() }) else { return false };
    m.p().is_some_and(|p| p::is_running_by(p.status.load(Ordering::SeqCst), m.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// What one run of [`litmus`] saw.
    #[derive(Debug)]
    struct Litmus {
        /// Times the owner, back from C on the fast path, found its P taken
        /// while it ran "managed code".
        violations: u64,
        /// Ps the rare side took from the owner in C.
        takes: u64,
        /// The owner's round trips into C.
        rounds: u64,
    }

    /// The protocol itself, with nothing else around it: a real M and P (in
    /// no table, so no scheduler sees them), the owner on this thread going
    /// into "C" and back as fast as it can and checking, between, that its
    /// P stays its own for 64 loads; a rare side on another thread taking
    /// the P whenever the owner seems to be in C (to `IDLE`; the owner then
    /// takes it back as an acquisition would). `barrier`: whether the rare
    /// side issues its barrier between steps 2 and 4. Runs for `budget`, or
    /// until the first violation when `until_violation`.
    fn litmus(barrier: bool, budget: Duration, until_violation: bool) -> Litmus {
        // One at a time: each wants both CPUs.
        static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
        let m: &'static M = Box::leak(Box::new(crate::sched::m::unlinked_m(false, false)));
        let p: &'static P = Box::leak(Box::new(P::new(usize::MAX)));
        p.m.store(m as *const M as *mut M, Ordering::Relaxed);
        p.status.store(p.running_for(m.id), Ordering::Release);
        m.p.store(p as *const P as *mut P, Ordering::Relaxed);
        let done = AtomicBool::new(false);
        let mut seen = Litmus { violations: 0, takes: 0, rounds: 0 };
        std::thread::scope(|s| {
            let rare = s.spawn(|| {
                let mut takes = 0u64;
                while !done.load(Ordering::Relaxed) {
                    if let Some(c) = Suspect::of(p) {
                        if barrier {
                            super::barrier();
                        }
                        takes += u64::from(c.take(p::IDLE));
                    }
                }
                takes
            });
            let start = Instant::now();
            while start.elapsed() < budget && !(until_violation && seen.violations > 0) {
                for _ in 0..1024 {
                    enter_c(m);
                    // "C": a moment in which the P may rightly be taken.
                    for _ in 0..32 {
                        std::hint::spin_loop();
                    }
                    if leave_c(m) {
                        if (0..64).any(|_| !p::is_running_by(p.status.load(Ordering::SeqCst), m.id)) {
                            seen.violations += 1;
                        }
                    } else {
                        // As an acquisition does: a new generation.
                        while p
                            .status
                            .compare_exchange(p::IDLE, p.running_for(m.id), Ordering::AcqRel, Ordering::Relaxed)
                            .is_err()
                        {
                            std::hint::spin_loop();
                        }
                    }
                }
                seen.rounds += 1024;
            }
            done.store(true, Ordering::Relaxed);
            seen.takes = rare.join().expect("the rare side does not panic");
        });
        seen
    }

    /// A rare side held up between its read of the word and its exchange —
    /// the OS descheduled it — while the owner came back from C on the
    /// slow path (using up the rare side's `trap` count), had its P
    /// stopped and restarted, and went into C again: the word it read must
    /// not come back. (With generations restarting at 0 it did: the
    /// exchange succeeded and the owner's next return took the fast path,
    /// two owners. Found by review.)
    #[test]
    fn a_held_up_rare_side_cannot_take_a_p_whose_word_came_back() {
        let m: &'static M = Box::leak(Box::new(crate::sched::m::unlinked_m(false, false)));
        let p: &'static P = Box::leak(Box::new(P::new(usize::MAX)));
        p.m.store(m as *const M as *mut M, Ordering::Relaxed);
        p.status.store(p.running_for(m.id), Ordering::Release);
        m.p.store(p as *const P as *mut P, Ordering::Relaxed);
        enter_c(m);
        // Steps 1 and 2, then the rare side is held up.
        let held_up = Suspect::of(p).expect("the owner is in C");
        // The owner comes back on the slow path (its trap moved)...
        assert!(leave_c(m));
        // ...stops at a safepoint, and the world restarts, as stw.rs does...
        p.status.store(p::word(m.id, p::STOP_RUNNING), Ordering::Release);
        p.status.store(p.running_for(m.id), Ordering::Release);
        // ...and goes into C again.
        enter_c(m);
        barrier();
        let taken = held_up.take(p::IDLE);
        let owner_kept_it = leave_c(m);
        assert!(!taken && owner_kept_it, "taken {taken}, owner kept it {owner_kept_it}: two owners");
    }

    #[test]
    fn with_the_barrier_no_p_is_taken_from_an_owner_back_from_c() {
        let seen = litmus(true, Duration::from_secs(2), false);
        eprintln!("{:?} barrier: {seen:?}", barrier_kind());
        assert_eq!(seen.violations, 0, "{seen:?}");
        // The rare side did take Ps, from an owner in C.
        assert!(seen.takes > 100, "{seen:?}");
    }

    #[test]
    fn without_the_barrier_the_litmus_test_sees_a_p_taken_from_an_owner_back_from_c() {
        if barrier_kind() == Barrier::Fence || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2 {
            // The owner fences itself; or one CPU, where every switch
            // between the two threads is a full barrier: nothing to see.
            return;
        }
        let seen = litmus(false, Duration::from_secs(20), true);
        eprintln!("without the barrier: {seen:?}");
        assert!(seen.violations > 0, "the race the barrier closes did not show in 20 s: {seen:?}");
    }
}

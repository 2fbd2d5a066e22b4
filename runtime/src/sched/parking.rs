//! The two wait/wake protocols everything that blocks is built on, written
//! once, generic over the atomic word, so that the runtime runs them on
//! std's atomics and the loom models (at the bottom) check the same code
//! exhaustively.
//!
//! ## Park token (a task's `park`/`unpark`)
//!
//! One word per task, `EMPTY`, `NOTIFIED` or `PARKED`:
//!
//! | who | from | to | how |
//! |---|---|---|---|
//! | waker ([`ParkToken::unpark`]) | any | `NOTIFIED` | `swap`, AcqRel; if it read `PARKED`, the waker makes the task runnable |
//! | parker, on its stack ([`ParkToken::park`]) | `NOTIFIED` | `EMPTY` | CAS, Acquire: returns at once |
//! | parker, on g0 with its context saved ([`ParkToken::try_park`]) | `EMPTY` | `PARKED` | CAS, Release: the task is off the CPU |
//! | parker, after the switch ([`ParkToken::park`]) | any but `PARKED` | `EMPTY` | `swap`, Acquire |
//!
//! What each side publishes: a waker's stores before `unpark` (the flag the
//! parker waits for) are released by its `swap`; the parker acquires them
//! in every way out of `park` — the fast-path CAS, or the `swap` after the
//! switch, which reads the newest token, so it synchronises with the last
//! waker even when several wakers raced. `PARKED` is released only after the
//! task's context is saved, and the waker that reads it acquires that
//! context before queueing the task, so no M can resume a half-saved task;
//! only the waker that read `PARKED` queues it (one `swap` reads it), so it
//! is queued once.
//!
//! ## The lost wakeup this replaced (issue 15)
//!
//! The old `unpark` returned after a plain load when it saw `NOTIFIED`
//! (a token left by an earlier, unconsumed unpark), and the old `try_park`
//! consumed a token it found with a relaxed store. Interleaving:
//!
//! 1. waker: `unpark` (token `NOTIFIED`); later `flag = 1`; `unpark` loads
//!    `NOTIFIED` and returns: it wrote nothing, so it released nothing;
//! 2. parker: consumes the first token (synchronising only with the first
//!    `unpark`, which came before `flag = 1`), reads `flag` — `0` is
//!    allowed, and on x86 the waker's store can still sit in its store
//!    buffer — and parks with the token `EMPTY`;
//! 3. nobody will unpark it again: it sleeps forever with the flag set.
//!
//! The same hole lost a channel hand-off: a waiter whose slot had been
//! completed before it blocked keeps a stale `NOTIFIED`, so the next
//! counterpart's `unpark` of it released nothing. Now every `unpark` is a
//! read-modify-write that releases, and every way out of `park` acquires
//! the newest token.
//!
//! ## Completion (a blocked channel operation)
//!
//! A channel waiter owns a slot in the channel's send or receive queue
//! (`chan.rs`). Its [`Completion`] word goes `WAITING` → `DONE` or
//! `CLOSED`, once, by the counterpart, which has already moved the value
//! into or out of the slot (under the channel lock) and then wakes the
//! waiter's park token. The waiter loops: load (Acquire); `WAITING` →
//! park; else done. The Release store publishes the value; a stray unpark
//! costs the waiter one more loop.

use std::sync::atomic::{AtomicU32, Ordering};

/// The atomic operations the protocols need: std's `AtomicU32` in the
/// runtime, loom's in the models.
pub(crate) trait Word {
    fn new(v: u32) -> Self;
    fn load(&self, o: Ordering) -> u32;
    fn store(&self, v: u32, o: Ordering);
    fn swap(&self, v: u32, o: Ordering) -> u32;
    fn compare_exchange(&self, current: u32, new: u32, success: Ordering, failure: Ordering) -> Result<u32, u32>;
}

impl Word for AtomicU32 {
    fn new(v: u32) -> Self {
        AtomicU32::new(v)
    }
    #[inline]
    fn load(&self, o: Ordering) -> u32 {
        AtomicU32::load(self, o)
    }
    #[inline]
    fn store(&self, v: u32, o: Ordering) {
        AtomicU32::store(self, v, o)
    }
    #[inline]
    fn swap(&self, v: u32, o: Ordering) -> u32 {
        AtomicU32::swap(self, v, o)
    }
    #[inline]
    fn compare_exchange(&self, current: u32, new: u32, success: Ordering, failure: Ordering) -> Result<u32, u32> {
        AtomicU32::compare_exchange(self, current, new, success, failure)
    }
}

const EMPTY: u32 = 0;
const NOTIFIED: u32 = 1;
const PARKED: u32 = 2;

/// A task's park token (see the module comment).
pub(crate) struct ParkToken<W: Word = AtomicU32>(W);

impl<W: Word> ParkToken<W> {
    pub(crate) fn new() -> Self {
        ParkToken(W::new(EMPTY))
    }

    /// Empties the token of a record being reused for a new task (nothing
    /// else refers to the record yet).
    pub(crate) fn reset(&self) {
        self.0.store(EMPTY, Ordering::Relaxed);
    }

    /// Waker: sets the token. Returns true when the task was parked: the
    /// caller (and nobody else) must then make it runnable.
    #[inline]
    pub(crate) fn unpark(&self) -> bool {
        self.0.swap(NOTIFIED, Ordering::AcqRel) == PARKED
    }

    /// Parker, on its own stack: returns at once if a token is set;
    /// otherwise calls `suspend`, which switches away and calls
    /// [`ParkToken::try_park`] once the context is saved, and returns when
    /// the task runs again. Either way the token is consumed with Acquire,
    /// so the caller's recheck of its condition sees what the last waker
    /// wrote before its `unpark`. May return spuriously.
    #[inline]
    pub(crate) fn park(&self, suspend: impl FnOnce()) {
        if self.0.compare_exchange(NOTIFIED, EMPTY, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        suspend();
        self.0.swap(EMPTY, Ordering::Acquire);
    }

    /// On the scheduler's side, with the task's context saved: parks it
    /// unless a token arrived meanwhile. True: parked (a waker will make it
    /// runnable; from here on another M may already be running it). False:
    /// keep running it (the token is consumed by [`ParkToken::park`]).
    #[inline]
    pub(crate) fn try_park(&self) -> bool {
        self.0.compare_exchange(EMPTY, PARKED, Ordering::Release, Ordering::Relaxed).is_ok()
    }
}

const WAITING: u32 = 0;
const DONE: u32 = 1;
const CLOSED: u32 = 2;

/// How a blocked channel operation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The counterpart took or gave the value.
    Done,
    /// The channel was closed.
    Closed,
}

/// The one-shot word of a blocked channel operation (see the module
/// comment).
pub(crate) struct Completion<W: Word = AtomicU32>(W);

impl<W: Word> Completion<W> {
    pub(crate) fn new() -> Self {
        Completion(W::new(WAITING))
    }

    /// Counterpart, after moving the value: publishes the outcome. The
    /// caller then wakes the waiter.
    pub(crate) fn finish(&self, outcome: Outcome) {
        let v = match outcome {
            Outcome::Done => DONE,
            Outcome::Closed => CLOSED,
        };
        self.0.store(v, Ordering::Release);
    }

    /// Waiter: blocks (`block` parks once) until [`Completion::finish`].
    pub(crate) fn wait(&self, mut block: impl FnMut()) -> Outcome {
        loop {
            match self.0.load(Ordering::Acquire) {
                WAITING => block(),
                DONE => return Outcome::Done,
                _ => return Outcome::Closed,
            }
        }
    }
}

/// The models: loom runs each closure under every interleaving (and every
/// value a weak load may return) up to its bounds. A task is a loom
/// thread; "switching to g0 and being made runnable" is `try_park`
/// followed by a wait until the waker that read `PARKED` marks it runnable,
/// as `schedule::ready` does. A lost wakeup shows up as
/// loom's deadlock report (every thread blocked).
#[cfg(test)]
mod model {
    use super::{Completion, Outcome, ParkToken, Word};
    use loom::sync::atomic::{AtomicU32, AtomicU64};
    use loom::sync::{Arc, Condvar, Mutex};
    use loom::thread;
    use std::collections::VecDeque;
    use std::sync::atomic::Ordering::{self, Relaxed};

    impl Word for AtomicU32 {
        fn new(v: u32) -> Self {
            AtomicU32::new(v)
        }
        fn load(&self, o: Ordering) -> u32 {
            AtomicU32::load(self, o)
        }
        fn store(&self, v: u32, o: Ordering) {
            AtomicU32::store(self, v, o)
        }
        fn swap(&self, v: u32, o: Ordering) -> u32 {
            AtomicU32::swap(self, v, o)
        }
        fn compare_exchange(&self, c: u32, n: u32, s: Ordering, f: Ordering) -> Result<u32, u32> {
            AtomicU32::compare_exchange(self, c, n, s, f)
        }
    }

    /// A modelled task: its token, and "runnable" as the scheduler sees
    /// it (a loom mutex and condvar: loom 0.7 can let a plain store race
    /// past a swap, so the scheduler's side is modelled with a lock, as the
    /// real run queue is).
    struct Task {
        token: ParkToken<AtomicU32>,
        runnable: Mutex<bool>,
        queued: Condvar,
    }

    impl Task {
        fn new() -> Arc<Task> {
            Arc::new(Task { token: ParkToken::new(), runnable: Mutex::new(false), queued: Condvar::new() })
        }

        /// `task::park_current`: the real token code, with the switch to
        /// g0 and the wait for `ready` modelled.
        fn park(&self) {
            self.token.park(|| {
                if self.token.try_park() {
                    let mut r = self.runnable.lock().unwrap();
                    while !*r {
                        r = self.queued.wait(r).unwrap();
                    }
                    *r = false;
                }
            });
        }

        /// `task::unpark_g`: the real token code, with `schedule::ready`
        /// modelled.
        fn unpark(&self) {
            if self.token.unpark() {
                *self.runnable.lock().unwrap() = true;
                self.queued.notify_one();
            }
        }
    }

    /// Shape A: the waker leaves a stale token, sets the flag (Relaxed: the
    /// protocol must order it), unparks. The waiter must see the flag.
    /// Fails (deadlock) with the old unpark that only loaded `NOTIFIED`.
    #[test]
    fn flag_then_unpark_over_a_stale_token_is_never_lost() {
        check(|| {
            let task = Task::new();
            let flag = Arc::new(AtomicU64::new(0));
            let (t, f) = (task.clone(), flag.clone());
            let waker = thread::spawn(move || {
                t.unpark();
                f.store(1, Relaxed);
                t.unpark();
            });
            while flag.load(Relaxed) == 0 {
                task.park();
            }
            waker.join().unwrap();
        });
    }

    /// Two wakers race, each with its own flag; the waiter waits for both.
    #[test]
    fn racing_wakers_are_both_seen() {
        check(|| {
            let task = Task::new();
            let flags = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
            let wakers: Vec<_> = (0..2)
                .map(|i| {
                    let (t, f) = (task.clone(), flags.clone());
                    thread::spawn(move || {
                        f[i].store(1, Relaxed);
                        t.unpark();
                    })
                })
                .collect();
            while flags[0].load(Relaxed) == 0 || flags[1].load(Relaxed) == 0 {
                task.park();
            }
            for w in wakers {
                w.join().unwrap();
            }
        });
    }

    /// Every model runs with a preemption bound of 3: exhaustive for the
    /// interleavings with up to three forced switches, which covers every
    /// schedule of these two- and three-thread protocols that differs in the
    /// order of the token and completion operations, in seconds.
    fn check(f: impl Fn() + Sync + Send + 'static) {
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(f);
    }

    /// A modelled unbuffered channel with the real [`Completion`]: the
    /// queue discipline of `chan.rs` (under the channel lock: pop a
    /// waiting counterpart or queue yourself; outside it: finish, then
    /// wake), one value word per slot written Relaxed by whoever fills it.
    struct Slot {
        value: AtomicU64,
        done: Completion<AtomicU32>,
        owner: Arc<Task>,
    }

    #[derive(Default)]
    struct Queues {
        recvq: VecDeque<Arc<Slot>>,
        sendq: VecDeque<Arc<Slot>>,
        closed: bool,
    }

    fn send(ch: &Mutex<Queues>, me: &Arc<Task>, v: u64) -> Outcome {
        let mut q = ch.lock().unwrap();
        if q.closed {
            return Outcome::Closed;
        }
        if let Some(r) = q.recvq.pop_front() {
            drop(q);
            r.value.store(v, Relaxed);
            r.done.finish(Outcome::Done);
            r.owner.unpark();
            return Outcome::Done;
        }
        let slot = Arc::new(Slot { value: AtomicU64::new(v), done: Completion::new(), owner: me.clone() });
        q.sendq.push_back(slot.clone());
        drop(q);
        slot.done.wait(|| me.park())
    }

    fn recv(ch: &Mutex<Queues>, me: &Arc<Task>) -> Option<u64> {
        let mut q = ch.lock().unwrap();
        if let Some(s) = q.sendq.pop_front() {
            drop(q);
            let v = s.value.load(Relaxed);
            s.done.finish(Outcome::Done);
            s.owner.unpark();
            return Some(v);
        }
        if q.closed {
            return None;
        }
        let slot = Arc::new(Slot { value: AtomicU64::new(0), done: Completion::new(), owner: me.clone() });
        q.recvq.push_back(slot.clone());
        drop(q);
        match slot.done.wait(|| me.park()) {
            Outcome::Done => Some(slot.value.load(Relaxed)),
            Outcome::Closed => None,
        }
    }

    fn close(ch: &Mutex<Queues>) {
        let mut q = ch.lock().unwrap();
        q.closed = true;
        let waiters: Vec<_> = {
            let q = &mut *q;
            q.recvq.drain(..).chain(q.sendq.drain(..)).collect()
        };
        drop(q);
        for w in waiters {
            w.done.finish(Outcome::Closed);
            w.owner.unpark();
        }
    }

    /// Shape B in small: two sends and two receives on an unbuffered
    /// channel, the receiver carrying a stale token from the first round.
    /// Every value arrives, in order, and nobody stays parked.
    #[test]
    fn unbuffered_hand_off_delivers_every_value() {
        check(|| {
            let ch = Arc::new(Mutex::new(Queues::default()));
            let (sender, receiver) = (Task::new(), Task::new());
            let (c, s) = (ch.clone(), sender.clone());
            let st = thread::spawn(move || {
                for v in [7, 8] {
                    assert_eq!(send(&c, &s, v), Outcome::Done);
                }
            });
            assert_eq!(recv(&ch, &receiver), Some(7));
            assert_eq!(recv(&ch, &receiver), Some(8));
            st.join().unwrap();
        });
    }

    /// Close while a receiver and a sender wait (or are about to): both end,
    /// the receiver with `None` or the value, the sender with `Closed` or
    /// `Done`, consistently.
    #[test]
    fn close_wakes_every_waiter() {
        check(|| {
            let ch = Arc::new(Mutex::new(Queues::default()));
            let (c1, c2) = (ch.clone(), ch.clone());
            let r = thread::spawn(move || {
                let me = Task::new();
                recv(&c1, &me)
            });
            let s = thread::spawn(move || {
                let me = Task::new();
                send(&c2, &me, 5)
            });
            close(&ch);
            let got = r.join().unwrap();
            let sent = s.join().unwrap();
            // The value moved exactly when both sides say so.
            assert_eq!(got == Some(5), sent == Outcome::Done, "recv {got:?}, send {sent:?}");
        });
    }
}

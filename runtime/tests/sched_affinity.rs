//! A started task never changes threads, and `task_local!` gives per-task
//! state (issue 15: `thread_local!` across a yield).
//!
//! The compiler may compute a thread-local's address once and keep it
//! across a call; if a task could resume on another thread after that call,
//! safe code would read the first thread's value (undefined behaviour the
//! type system cannot see). So the scheduler binds each task to the M that
//! first runs it. These tests check that from the outside: many tasks, at
//! `GOMAXPROCS` 2 and 8, read their thread's id and a thread-local's
//! address before and after yields, sleeps, channel operations, park/unpark,
//! joins and C calls long enough for the monitor to take their P, and
//! nothing may change. They also check that binding does not cost
//! liveness: a bound task whose M is idle gets a P back from a task in a
//! long C call (the monitor's retake), and changing `GOMAXPROCS` back and
//! forth strands nobody.
//!
//! Each scenario runs in a child process (its own `GOMAXPROCS`) under a
//! watchdog that raises SIGABRT after [`HANG`], so a deadlock prints the
//! runtime's report of every task instead of stalling CI.

mod sched_util;

use cgocheck::cgocall::cgocall;
use cgocheck::{current_task, park, run, set_gomaxprocs, sleep, spawn, task_local, yield_now, AccessError, Chan};
use sched_util::{at_procs, is_child, watched, HANG};
use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

thread_local! {
    static SLOT: Cell<u64> = const { Cell::new(0) };
    static SHARED: Rc<Cell<u64>> = Rc::new(Cell::new(0));
}

/// Where the caller runs: its thread's id and the address of this thread's
/// `SLOT`, both computed afresh (never inlined, so no caller can reuse a
/// value from before a switch).
#[inline(never)]
fn here() -> (ThreadId, usize) {
    let addr = SLOT.with(|c| c as *const Cell<u64> as usize);
    (std::thread::current().id(), std::hint::black_box(addr))
}

/// `usleep(us)` through `cgocall`, the way the call layer calls C.
fn c_usleep(us: u32) {
    unsafe extern "C" fn tramp(frame: *mut c_void) {
        // SAFETY: c_usleep passes a u32.
        let us = unsafe { *(frame as *const u32) };
        // SAFETY: usleep has no preconditions.
        unsafe { libc::usleep(us) };
    }
    let mut frame = us;
    // SAFETY: the trampoline takes the u32 frame it is given.
    unsafe { cgocall(tramp, &mut frame as *mut u32 as *mut c_void, None) }
}

/// One of the ways a task leaves the CPU, chosen by `round`. `ch` is the
/// channel pair shared with the task's partner (`even`: which side).
fn switch(round: usize, ch: &(Chan<u64>, Chan<u64>), even: bool) {
    match round % 7 {
        0 => yield_now(),
        1 => sleep(Duration::from_micros(50)),
        2 => {
            // Both partners are at the same round: a ping-pong.
            if even {
                ch.0.send(round as u64);
                assert_eq!(ch.1.recv(), Some(round as u64));
            } else {
                let v = ch.0.recv().expect("partner's ping");
                ch.1.send(v);
            }
        }
        // Long enough for the monitor to retake the P while others wait.
        3 => c_usleep(300),
        4 => {
            let flag = Arc::new(AtomicBool::new(false));
            let (f, me) = (flag.clone(), current_task());
            spawn(move || {
                f.store(true, Ordering::Release);
                me.unpark();
            });
            while !flag.load(Ordering::Acquire) {
                park();
            }
        }
        5 => spawn(yield_now).join(),
        _ => c_usleep(1),
    }
}

/// `tasks` tasks (in partner pairs) each switching `rounds` times; returns,
/// per task, how often it found itself on another thread than it started
/// on.
fn hop_counts(tasks: usize, rounds: usize) -> Vec<usize> {
    let chans: Vec<_> = (0..tasks / 2).map(|_| (Chan::new(0), Chan::new(0))).collect();
    let hs: Vec<_> = (0..tasks)
        .map(|i| {
            let ch = chans[i / 2].clone();
            spawn(move || {
                let start = here();
                // An `Rc` from a thread-local, held across every switch: its
                // count is not atomic, so it must stay on this thread.
                let shared = SHARED.with(Rc::clone);
                let mut hops = 0;
                for r in 0..rounds {
                    switch(r, &ch, i % 2 == 0);
                    if here() != start {
                        hops += 1;
                    }
                    shared.set(shared.get() + 1);
                }
                hops
            })
        })
        .collect();
    hs.into_iter().map(|h| h.join()).collect()
}

#[test]
fn a_started_task_never_changes_threads() {
    if !is_child() {
        return at_procs("a_started_task_never_changes_threads", &[2, 8]);
    }
    let hops = watched("48 tasks switching 140 times each", || run(|| hop_counts(48, 140)));
    let moved: Vec<_> = hops.iter().enumerate().filter(|(_, &h)| h > 0).collect();
    assert!(moved.is_empty(), "tasks resumed on another thread (task index, times): {moved:?}");
}

#[test]
fn changing_gomaxprocs_strands_no_bound_task() {
    if !is_child() {
        return at_procs("changing_gomaxprocs_strands_no_bound_task", &[4]);
    }
    // Tasks bound to up to four Ms keep switching while GOMAXPROCS goes
    // 1 → 4 → 2 → 1 ...: Ps retire under their Ms and come back, and each
    // bound task must still be resumed, on its own thread.
    let hops = watched("tasks while GOMAXPROCS changes", || {
        run(|| {
            let stop = Arc::new(AtomicBool::new(false));
            let s = stop.clone();
            let changer = spawn(move || {
                let mut n = 0;
                while !s.load(Ordering::Acquire) {
                    set_gomaxprocs([1, 4, 2, 3][n % 4]);
                    n += 1;
                    sleep(Duration::from_micros(300));
                }
                set_gomaxprocs(4);
                n
            });
            let hops = hop_counts(24, 140);
            stop.store(true, Ordering::Release);
            assert!(changer.join() > 2, "GOMAXPROCS changed only a few times");
            hops
        })
    });
    assert!(hops.iter().all(|&h| h == 0), "tasks resumed on another thread: {hops:?}");
}

#[test]
fn a_bound_task_gets_the_p_of_a_long_c_call() {
    if !is_child() {
        return at_procs("a_bound_task_gets_the_p_of_a_long_c_call", &[2]);
    }
    // A parks on its M; B, on another M, then holds the only P in a long C
    // call. When A is woken its M has no P: the monitor must take B's P
    // (which only helps because A's M is waiting for one) rather than leave
    // A waiting for the C call to return.
    watched("a bound task behind a long C call", || {
        let t0 = Instant::now();
        let (a_on, b_on) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (shrunk, in_c, a_parked) =
            (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let go = Arc::new(AtomicBool::new(false));
        let spin_until = |flag: &AtomicBool, what: &str| {
            let t = Instant::now();
            while !flag.load(Ordering::Acquire) {
                assert!(t.elapsed() < HANG / 2, "waited too long for {what}");
                std::hint::spin_loop();
            }
        };
        let a = {
            let (a_on, b_on, a_parked, go) = (a_on.clone(), b_on.clone(), a_parked.clone(), go.clone());
            spawn(move || {
                // Spin without yielding until B runs: then they run on two
                // Ms at once, so they are bound to different ones.
                a_on.store(true, Ordering::Release);
                spin_until(&b_on, "B to start");
                let start = here();
                a_parked.store(true, Ordering::Release);
                while !go.load(Ordering::Acquire) {
                    park();
                }
                assert_eq!(here(), start, "A resumed on another thread");
                t0.elapsed()
            })
        };
        let b = {
            let (a_on, b_on, shrunk, in_c) = (a_on.clone(), b_on.clone(), shrunk.clone(), in_c.clone());
            spawn(move || {
                b_on.store(true, Ordering::Release);
                spin_until(&a_on, "A to start");
                spin_until(&shrunk, "GOMAXPROCS 1");
                // Give up a P that GOMAXPROCS 1 retired, if ours was.
                yield_now();
                in_c.store(true, Ordering::Release);
                c_usleep(600_000);
                t0.elapsed()
            })
        };
        spin_until(&a_parked, "A to park");
        std::thread::sleep(Duration::from_millis(30));
        set_gomaxprocs(1);
        shrunk.store(true, Ordering::Release);
        spin_until(&in_c, "B to call C");
        std::thread::sleep(Duration::from_millis(30));
        go.store(true, Ordering::Release);
        a.task().unpark();
        let (a_done, b_done) = (a.join(), b.join());
        assert!(
            a_done < b_done,
            "A finished at {a_done:?}, after B's C call returned at {b_done:?}: it waited for a P held in C"
        );
    });
}

task_local! {
    static ID: Cell<u64> = Cell::new(0);
    static LOG: RefCell<Vec<u64>> = RefCell::new(Vec::new());
    static TRACKED: Tracked = Tracked::new();
}

/// Counts its drops, and records which task dropped it.
struct Tracked {
    /// Set by the first access of a task.
    owner: Cell<u64>,
}

static TRACKED_MADE: AtomicUsize = AtomicUsize::new(0);
static TRACKED_DROPPED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

impl Tracked {
    fn new() -> Tracked {
        TRACKED_MADE.fetch_add(1, Ordering::SeqCst);
        Tracked { owner: Cell::new(current_task().id()) }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // Dropped by the task that owns it, as it ends.
        assert_eq!(current_task().id(), self.owner.get(), "a task-local dropped by another task");
        TRACKED_DROPPED.lock().unwrap().push(self.owner.get());
    }
}

#[test]
fn task_locals_are_per_task_and_dropped_before_join_returns() {
    if !is_child() {
        return at_procs("task_locals_are_per_task_and_dropped_before_join_returns", &[2]);
    }
    let ids = watched("tasks with task-locals", || {
        run(|| {
            let chans: Vec<_> = (0..16).map(|_| (Chan::new(0), Chan::new(0))).collect();
            let hs: Vec<_> = (0..32)
                .map(|i| {
                    let ch = chans[i / 2].clone();
                    spawn(move || {
                        let me = current_task().id();
                        assert_eq!(ID.with(Cell::get), 0, "a new task starts with the initial value");
                        ID.with(|c| c.set(me));
                        TRACKED.with(|t| assert_eq!(t.owner.get(), me));
                        for r in 0..70 {
                            switch(r, &ch, i % 2 == 0);
                            LOG.with(|l| l.borrow_mut().push(r as u64));
                            assert_eq!(ID.with(Cell::get), me, "another task's value after a switch");
                        }
                        assert_eq!(LOG.with(|l| l.borrow().len()), 70);
                        me
                    })
                })
                .collect();
            let mut ids = Vec::new();
            for h in hs {
                let id = h.task().id();
                assert_eq!(h.join(), id);
                assert!(TRACKED_DROPPED.lock().unwrap().contains(&id), "task {id}'s task-local not dropped by join");
                ids.push(id);
            }
            // The main task has its own values too.
            assert_eq!(ID.with(Cell::get), 0);
            ids
        })
    });
    // 32 tasks, and the main task (dropped as run returns).
    assert_eq!(TRACKED_MADE.load(Ordering::SeqCst), 32);
    let mut dropped = TRACKED_DROPPED.lock().unwrap().clone();
    dropped.sort_unstable();
    let mut want = ids;
    want.sort_unstable();
    assert_eq!(dropped, want, "each task's value dropped once");
}

task_local! {
    static DROPS_INTO_OTHER: DropsInto = DropsInto;
    static LATE: Cell<u32> = Cell::new(0);
    static PANICS_ON_DROP: PanicOnDrop = PanicOnDrop;
    static RECURSIVE: u32 = RECURSIVE.with(|v| *v + 1);
}

static LATE_SEEN: AtomicU64 = AtomicU64::new(0);

/// Uses another task-local while being dropped.
struct DropsInto;
impl Drop for DropsInto {
    fn drop(&mut self) {
        LATE.with(|l| l.set(l.get() + 7));
        LATE_SEEN.store(LATE.with(Cell::get) as u64, Ordering::SeqCst);
    }
}

struct PanicOnDrop;
impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop dropped");
    }
}

#[test]
fn task_local_destructors_may_use_task_locals_and_their_panics_reach_join() {
    run(|| {
        spawn(|| DROPS_INTO_OTHER.with(|_| ())).join();
        // LATE was made during destruction, so it started at 0.
        assert_eq!(LATE_SEEN.load(Ordering::SeqCst), 7);
        let r = std::panic::catch_unwind(|| spawn(|| PANICS_ON_DROP.with(|_| 5)).join());
        let msg = r.expect_err("the destructor's panic reaches join");
        assert_eq!(msg.downcast_ref::<&str>(), Some(&"PanicOnDrop dropped"));
        let r = std::panic::catch_unwind(|| spawn(|| RECURSIVE.with(|v| *v)).join());
        let msg = r.expect_err("a recursive initialiser is refused");
        let msg = msg.downcast_ref::<String>().expect("a formatted message");
        assert!(msg.contains("task_local RECURSIVE") && msg.contains("recursive"), "{msg}");
    });
}

#[test]
fn task_locals_outside_a_task_are_refused_clearly() {
    assert_eq!(ID.try_with(Cell::get), Err(AccessError::OutsideTask));
    let r = std::panic::catch_unwind(|| ID.with(Cell::get));
    let msg = r.expect_err("with outside a task panics");
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("task_local ID") && msg.contains("outside a task") && msg.contains("thread_local!"), "{msg}");
    // Inside a task it works.
    assert_eq!(run(|| ID.try_with(Cell::get)), Ok(0));
}

task_local! {
    static CALLBACK_SEEN: Cell<u64> = Cell::new(0);
}

cgocheck::export! {
    /// Returns the task-local's value on entry, then adds `x` to it.
    fn CbTaskLocal(x: i64) -> i64 {
        let was = CALLBACK_SEEN.with(Cell::get);
        CALLBACK_SEEN.with(|c| c.set(was + x as u64));
        TRACKED.with(|_| ());
        was as i64
    }
}

#[test]
fn a_callback_sees_its_tasks_task_locals_and_a_c_threads_callback_has_its_own() {
    let f: extern "C" fn(i64) -> i64 = CbTaskLocal;
    // A plain thread calling the exported symbol is a thread C created: each
    // callback is a task of its own, its task-locals dropped as it returns.
    let made = TRACKED_MADE.load(Ordering::SeqCst);
    let seen = std::thread::spawn(move || (0..3).map(|_| f(5)).collect::<Vec<_>>()).join().unwrap();
    assert_eq!(seen, [0, 0, 0], "a C thread's callbacks do not share task-locals");
    assert_eq!(TRACKED_MADE.load(Ordering::SeqCst), made + 3);
    // Called from a task, the exported function runs as that task, so it
    // sees and keeps the task's values.
    run(|| {
        CALLBACK_SEEN.with(|c| c.set(40));
        assert_eq!(f(2), 40);
        assert_eq!(CALLBACK_SEEN.with(Cell::get), 42);
    });
}

/// The two channels between `CbAskPartner` and the partner task.
static PARTNER: Mutex<Option<(Chan<i64>, Chan<i64>)>> = Mutex::new(None);

cgocheck::export! {
    /// A `qsort` comparator that asks the partner task for each key (the
    /// partner doubles it) and blocks until it answers.
    fn CbAskPartner(a: *const c_void, b: *const c_void) -> i32 {
        let (ask, answer) = PARTNER.lock().unwrap().clone().expect("partner channels set");
        // SAFETY: qsort passes pointers to two elements of the i64 array.
        let (a, b) = unsafe { (*(a as *const i64), *(b as *const i64)) };
        ask.send(a);
        let a2 = answer.recv().expect("partner's answer");
        ask.send(b);
        let b2 = answer.recv().expect("partner's answer");
        a2.cmp(&b2) as i32
    }
}

/// `qsort(v, CbAskPartner)` through `cgocall`: C frames (glibc's qsort) sit
/// on the thread's stack under every callback.
fn qsort_asking_partner(v: &mut [i64]) {
    unsafe extern "C" fn tramp(frame: *mut c_void) {
        // SAFETY: qsort_asking_partner passes a (pointer, length) pair.
        let (p, n) = unsafe { *(frame as *const (*mut i64, usize)) };
        // SAFETY: p..p+n is the caller's array of i64; the comparator reads
        // two of its elements.
        unsafe { libc::qsort(p.cast(), n, 8, Some(CbAskPartner)) };
    }
    let mut frame = (v.as_mut_ptr(), v.len());
    // SAFETY: the trampoline takes the frame it is given.
    unsafe { cgocall(tramp, &mut frame as *mut (*mut i64, usize) as *mut c_void, None) }
}

#[test]
fn a_callback_blocked_on_a_task_of_its_own_thread_lets_that_task_run() {
    if !is_child() {
        return at_procs("a_callback_blocked_on_a_task_of_its_own_thread_lets_that_task_run", &[1]);
    }
    // Task A calls C (qsort), which calls back into managed code that waits
    // for task B; B started on A's thread, so only that thread can run it,
    // while the callback's C frames are live on it. The thread must run B
    // below them (and B must not need to unwind them).
    watched("a callback waiting for a task of its own thread", || {
        run(|| {
            spawn(|| {
                let (ask, answer) = (Chan::new(0), Chan::new(0));
                *PARTNER.lock().unwrap() = Some((ask.clone(), answer.clone()));
                let me = here();
                let partner = spawn(move || {
                    let mut answered = 0;
                    while let Some(k) = ask.recv() {
                        answer.send(k * 2);
                        answered += 1;
                    }
                    (here(), answered)
                });
                // At GOMAXPROCS 1 the partner starts here, on this thread,
                // and waits for the first question.
                yield_now();
                let mut v = [9i64, -3, 7, 0, 12, 5, -8, 1];
                qsort_asking_partner(&mut v);
                assert_eq!(v, [-8, -3, 0, 1, 5, 7, 9, 12]);
                let (ask, _) = PARTNER.lock().unwrap().take().unwrap();
                ask.close();
                let (partner_at, answered) = partner.join();
                assert_eq!(partner_at, me, "the partner did not share the caller's thread: the test proves nothing");
                assert!(answered >= 14, "{answered} answers for sorting 8 keys");
            })
            .join()
        })
    });
}

#[test]
fn a_thread_whose_locked_task_ended_runs_its_other_tasks_then_ends() {
    if !is_child() {
        return at_procs("a_thread_whose_locked_task_ended_runs_its_other_tasks_then_ends", &[1]);
    }
    // L and X start on one worker thread; L locks it and ends locked (its
    // thread may have changed state: Go ends such a thread). X, parked
    // meanwhile, cannot move: the thread must still run it, start nothing
    // new, and end once X has ended.
    watched("the tasks of a tainted thread", || {
        run(|| {
            let go = Arc::new(AtomicBool::new(false));
            let g2 = go.clone();
            let (m_id, x) = spawn(move || {
                let l_thread = here().0;
                let x = spawn(move || {
                    let start = here();
                    assert_eq!(start.0, l_thread, "X did not start on L's thread: the test proves nothing");
                    while !g2.load(Ordering::Acquire) {
                        park();
                    }
                    assert_eq!(here(), start, "X left its thread");
                    // Nothing new starts on this thread any more.
                    spawn(here).join().0 != start.0
                });
                // At GOMAXPROCS 1, X starts here, on this thread.
                yield_now();
                cgocheck::lock_os_thread();
                (cgocheck::sched::current_m_stats().expect("on an M").id, x)
            })
            .join();
            let m_alive = |id| cgocheck::sched::stats().ms.iter().any(|m| m.id == id && !m.dead);
            assert!(m_alive(m_id), "the thread ended while a task bound to it lived");
            go.store(true, Ordering::Release);
            x.task().unpark();
            assert!(x.join(), "a new task started on the tainted thread");
            let t = Instant::now();
            while m_alive(m_id) {
                assert!(t.elapsed() < HANG / 2, "the tainted thread did not end after its last task");
                sleep(Duration::from_millis(1));
            }
        })
    });
}

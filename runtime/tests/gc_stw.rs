//! Stopping and starting the world (`gc/stw.rs`), through its test hook
//! `cgocheck::gc::with_world_stopped`, which stops every P as a collection
//! does, runs a closure on a thread that is not an M, and restarts.
//!
//! The invariant checked during each stop: no managed code runs. Every
//! piece of managed code in these tests bumps `ACTIVE` (tasks in loops
//! that reach safepoints by yielding, spawning, joining, parking on
//! channels, sleeping, calling C; callbacks from C on task threads and on
//! threads C made), so `ACTIVE` must not move while the world is stopped,
//! and must move between stops. A C call that returns during a stop must
//! wait without writing the part of its task's stack the collector scans;
//! a callback arriving during a stop waits and runs after the restart;
//! `set_gomaxprocs` serialises with stops. Afterwards the scheduler is at
//! rest: every P idle, no extra M bound, nothing runnable.
//!
//! Each test runs in a child process (`sched_util`) at a fixed
//! `GOMAXPROCS`, under a watchdog: a stop that never completes, or a task
//! that never resumes, fails the test with a crash report instead of
//! stalling.

mod sched_util;

use cgocheck::cgocall::cgocall;
use cgocheck::gc::with_world_stopped;
use cgocheck::sched::stats;
use cgocheck::{gomaxprocs, run, set_gomaxprocs, sleep, spawn, yield_now, Chan};
use sched_util::{at_procs, is_child, watched};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Bumped by managed code only.
static ACTIVE: AtomicU64 = AtomicU64::new(0);
/// Tells the loops to end.
static DONE: AtomicBool = AtomicBool::new(false);

/// The line of this file that bumped `ACTIVE` last: when a bump lands
/// while the world is stopped, the failure names the kind of code that
/// ran (a loop, a C call's return, a callback...).
static LAST_BUMP: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[track_caller]
fn bump() {
    LAST_BUMP.store(std::panic::Location::caller().line(), Ordering::SeqCst);
    ACTIVE.fetch_add(1, Ordering::SeqCst);
}

fn done() -> bool {
    DONE.load(Ordering::SeqCst)
}

/// `n` tasks that bump the counter until [`done`], yielding between bumps
/// (their only safepoint).
fn yielding_loops(n: usize) -> Vec<cgocheck::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            spawn(|| {
                while !done() {
                    bump();
                    yield_now();
                }
            })
        })
        .collect()
}

cgocheck::export! {
    /// A `qsort` comparator: managed code called back by C on a task's
    /// thread.
    fn CbStwCmp(a: *const c_void, b: *const c_void) -> i32 {
        bump();
        // SAFETY: qsort passes pointers to two elements of the i64 array.
        let (a, b) = unsafe { (*(a as *const i64), *(b as *const i64)) };
        a.cmp(&b) as i32
    }

    /// Managed code called by a thread C made (an extra M's task).
    fn CbStwBump(x: i64) -> i64 {
        bump();
        x + 1
    }
}

/// `usleep(us)` in C, through `cgocall`.
fn c_usleep(us: u32) {
    unsafe extern "C" fn tramp(frame: *mut c_void) {
        // SAFETY: c_usleep passes a u32.
        let us = unsafe { *(frame as *const u32) };
        // SAFETY: usleep has no memory preconditions.
        unsafe { libc::usleep(us) };
    }
    let mut us = us;
    // SAFETY: the trampoline reads the u32 it is given.
    unsafe { cgocall(tramp, (&mut us as *mut u32).cast(), None) }
}

/// `qsort(v, CbStwCmp)` in C, through `cgocall`: C calls back into managed
/// code on this task's thread for each comparison.
fn c_qsort(v: &mut [i64]) {
    unsafe extern "C" fn tramp(frame: *mut c_void) {
        // SAFETY: c_qsort passes a (pointer, length) pair.
        let (p, n) = unsafe { *(frame as *const (*mut i64, usize)) };
        // SAFETY: p..p+n is the caller's i64 array; the comparator reads two
        // of its elements.
        unsafe { libc::qsort(p.cast(), n, 8, Some(CbStwCmp)) };
    }
    let mut frame = (v.as_mut_ptr(), v.len());
    // SAFETY: the trampoline takes the frame it is given.
    unsafe { cgocall(tramp, (&mut frame as *mut (*mut i64, usize)).cast(), None) }
}

/// Stops the world `rounds` times, each time holding it for `hold`, and
/// checks that `ACTIVE` stands still while it is stopped and moves between
/// stops (so the loops really run). Returns the number of stops.
fn stop_repeatedly(rounds: usize, hold: Duration) -> usize {
    let mut moved = 0;
    let mut before = ACTIVE.load(Ordering::SeqCst);
    for _ in 0..rounds {
        let (at_stop, at_end, line) = with_world_stopped(|_| {
            let a = ACTIVE.load(Ordering::SeqCst);
            std::thread::sleep(hold);
            (a, ACTIVE.load(Ordering::SeqCst), LAST_BUMP.load(Ordering::SeqCst))
        });
        assert_eq!(
            at_stop,
            at_end,
            "managed code ran while the world was stopped ({} bumps; the last at gc_stw.rs:{line})",
            at_end - at_stop
        );
        if at_stop > before {
            moved += 1;
        }
        before = at_end;
        // Let the world run a little.
        sleep(Duration::from_millis(2));
    }
    assert!(moved > rounds / 2, "the tasks hardly ran between stops ({moved} of {rounds} rounds)");
    rounds
}

/// Joins a plain thread from a task without blocking the task's thread
/// (and its P) meanwhile: the thread may need a P to finish (its callbacks
/// do), or may stop the world, which waits for every P.
fn join_thread<T>(h: std::thread::JoinHandle<T>) -> T {
    while !h.is_finished() {
        sleep(Duration::from_micros(200));
    }
    h.join().expect("the thread ends without panicking")
}

/// Waits (up to 10 s) until the scheduler is at rest: every P idle, no
/// extra M bound, nothing runnable; panics with the counts otherwise.
fn assert_at_rest() {
    let t0 = Instant::now();
    loop {
        let s = stats();
        if s.idle_ps == s.gomaxprocs && s.extra_ms_bound == 0 && s.runnable == 0 && s.tasks == 0 {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the scheduler is not at rest after the stops: {} of {} Ps idle, {} extra Ms bound, {} runnable, \
             {} tasks",
            s.idle_ps,
            s.gomaxprocs,
            s.extra_ms_bound,
            s.runnable,
            s.tasks
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn the_world_stops_while_tasks_loop_park_sleep_call_c_and_are_called_back() {
    if !is_child() {
        return at_procs("the_world_stops_while_tasks_loop_park_sleep_call_c_and_are_called_back", &[1, 2, 4]);
    }
    watched("stops of the world among busy tasks", || {
        run(|| {
            // Loops whose only safepoint is a yield.
            let mut hs = yielding_loops(3);
            // Spawning (a safepoint) and joining (a park).
            hs.push(spawn(|| {
                while !done() {
                    bump();
                    spawn(bump).join();
                }
            }));
            // A ping-pong on channels.
            let (ping, pong) = (Chan::new(0), Chan::new(0));
            let (ping2, pong2) = (ping.clone(), pong.clone());
            hs.push(spawn(move || {
                while let Some(x) = ping2.recv() {
                    bump();
                    pong2.send(x + 1);
                }
            }));
            hs.push(spawn(move || {
                let mut x = 0u64;
                while !done() {
                    ping.send(x);
                    x = pong.recv().expect("the partner answers");
                    bump();
                }
                ping.close();
            }));
            // Sleeping.
            hs.push(spawn(|| {
                while !done() {
                    bump();
                    sleep(Duration::from_micros(300));
                }
            }));
            // Long C calls, which return during stops.
            for _ in 0..2 {
                hs.push(spawn(|| {
                    while !done() {
                        c_usleep(700);
                        bump();
                        yield_now();
                    }
                }));
            }
            // C calling back into managed code on a task's thread.
            hs.push(spawn(|| {
                let mut v: Vec<i64> = (0..64).rev().collect();
                while !done() {
                    c_qsort(&mut v);
                    bump();
                    v.reverse();
                    // Each comparison takes the P back and returns it to C
                    // with a new C-call count, so the monitor never takes
                    // it: let the others run (at GOMAXPROCS=1 nothing else
                    // would, without preemption).
                    yield_now();
                }
                assert!(v.windows(2).all(|w| w[0] >= w[1]));
            }));
            // Threads C made (here: plain threads calling the exported
            // symbol), each with an extra M.
            let f: extern "C" fn(i64) -> i64 = CbStwBump;
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    std::thread::spawn(move || {
                        let mut n = 0i64;
                        while !done() {
                            n = f(n);
                            // Between callbacks the thread is in C, its P
                            // in the C-call state: long enough for the
                            // monitor to take it for waiting tasks (a C
                            // thread calling back without pause keeps the
                            // P from them at GOMAXPROCS=1).
                            std::thread::sleep(Duration::from_micros(50));
                        }
                        n
                    })
                })
                .collect();
            let stops = stop_repeatedly(40, Duration::from_millis(3));
            DONE.store(true, Ordering::SeqCst);
            for h in hs {
                h.join();
            }
            for t in threads {
                assert!(join_thread(t) > 0, "the C thread's callbacks ran");
            }
            assert_eq!(stops, 40);
        });
        assert_at_rest();
    });
}

/// The C call of the stack test has started (set in C, on the thread's
/// stack) and has returned to its trampoline (set in C, just before the
/// trampoline returns).
static IN_C: AtomicBool = AtomicBool::new(false);
static C_RETURNED: AtomicBool = AtomicBool::new(false);
/// Bumped by the task of the stack test after its C call returned.
static AFTER_C: AtomicUsize = AtomicUsize::new(0);
/// Addresses of locals of the stack test's tasks (parked, in C, stopped at
/// a safepoint): each must lie in a range the collector scans.
static LOCAL_PARKED: AtomicUsize = AtomicUsize::new(0);
static LOCAL_IN_C: AtomicUsize = AtomicUsize::new(0);
static LOCAL_SPINNING: AtomicUsize = AtomicUsize::new(0);
static SPIN_STOP: AtomicBool = AtomicBool::new(false);

#[test]
fn a_c_call_returning_while_the_world_is_stopped_waits_without_writing_the_scanned_stack() {
    if !is_child() {
        return at_procs(
            "a_c_call_returning_while_the_world_is_stopped_waits_without_writing_the_scanned_stack",
            &[1, 2],
        );
    }
    unsafe extern "C" fn long_call(_frame: *mut c_void) {
        IN_C.store(true, Ordering::SeqCst);
        // SAFETY: usleep has no memory preconditions.
        unsafe { libc::usleep(40_000) };
        C_RETURNED.store(true, Ordering::SeqCst);
    }
    watched("a C call returning during a stop", || {
        run(|| {
            // A parked task too: its saved context is in the scanned range.
            let tx = Chan::<u64>::new(0);
            let rx = tx.clone();
            let parked = spawn(move || {
                let mine = std::hint::black_box([7u64; 4]);
                LOCAL_PARKED.store(&mine as *const _ as usize, Ordering::SeqCst);
                rx.recv().unwrap_or(0) + std::hint::black_box(mine)[0] - 7
            });
            // A task that stops at a safepoint (a yield).
            let spinner = spawn(|| {
                let mine = std::hint::black_box([9u64; 4]);
                LOCAL_SPINNING.store(&mine as *const _ as usize, Ordering::SeqCst);
                while !SPIN_STOP.load(Ordering::SeqCst) {
                    yield_now();
                }
                std::hint::black_box(mine)[0]
            });
            let caller = spawn(move || {
                let keep = std::hint::black_box([0x5eed_u64; 8]);
                LOCAL_IN_C.store(&keep as *const _ as usize, Ordering::SeqCst);
                // SAFETY: the trampoline ignores its frame.
                unsafe { cgocall(long_call, std::ptr::null_mut(), None) };
                AFTER_C.fetch_add(1, Ordering::SeqCst);
                std::hint::black_box(keep)[3]
            });
            while !IN_C.load(Ordering::SeqCst)
                || LOCAL_PARKED.load(Ordering::SeqCst) == 0
                || LOCAL_SPINNING.load(Ordering::SeqCst) == 0
            {
                sleep(Duration::from_micros(100));
            }
            let (changed, after_c_in_stop, returned, uncovered) = with_world_stopped(|w| {
                let mut ranges = Vec::new();
                w.for_each_task_stack(|lo, hi| ranges.push((lo, hi)));
                // Every task's live locals are in a scanned range.
                let uncovered: Vec<(&str, usize)> = [
                    ("parked", LOCAL_PARKED.load(Ordering::SeqCst)),
                    ("in C", LOCAL_IN_C.load(Ordering::SeqCst)),
                    ("stopped at a yield", LOCAL_SPINNING.load(Ordering::SeqCst)),
                ]
                .into_iter()
                .filter(|&(_, a)| !ranges.iter().any(|&(lo, hi)| lo <= a && a + 32 <= hi))
                .collect();
                // SAFETY: each range lies in a live task's stack (mapped);
                // nothing writes it while the world is stopped, which is
                // what this test checks.
                let read = |&(lo, hi): &(usize, usize)| unsafe {
                    std::slice::from_raw_parts(lo as *const u8, hi - lo).to_vec()
                };
                let first: Vec<Vec<u8>> = ranges.iter().map(read).collect();
                // The C call returns meanwhile (40 ms after it started).
                let t0 = Instant::now();
                while !C_RETURNED.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                std::thread::sleep(Duration::from_millis(20));
                let changed: Vec<(usize, usize)> =
                    ranges.iter().zip(&first).filter(|(r, old)| read(r) != **old).map(|(r, _)| *r).collect();
                (changed, AFTER_C.load(Ordering::SeqCst), C_RETURNED.load(Ordering::SeqCst), uncovered)
            });
            assert!(uncovered.is_empty(), "live locals outside every scanned range: {uncovered:x?}");
            assert!(returned, "the C call returned while the world was stopped");
            assert_eq!(after_c_in_stop, 0, "the task ran managed code after its C call, during the stop");
            assert!(changed.is_empty(), "scanned task stack ranges were written during the stop: {changed:x?}");
            assert_eq!(caller.join(), 0x5eed);
            assert_eq!(AFTER_C.load(Ordering::SeqCst), 1);
            tx.send(7);
            assert_eq!(parked.join(), 7);
            SPIN_STOP.store(true, Ordering::SeqCst);
            assert_eq!(spinner.join(), 9);
        });
        assert_at_rest();
    });
}

#[test]
fn a_callback_arriving_while_the_world_is_stopped_runs_after_the_restart() {
    if !is_child() {
        return at_procs("a_callback_arriving_while_the_world_is_stopped_runs_after_the_restart", &[1, 2]);
    }
    watched("a callback arriving during a stop", || {
        run(|| {
            let f: extern "C" fn(i64) -> i64 = CbStwBump;
            // Two threads C made: one already bound to an extra M (it keeps
            // its P in the C-call state between callbacks), one new.
            let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
            let (go_tx2, go_rx2) = std::sync::mpsc::channel::<()>();
            let bound = std::thread::spawn(move || {
                assert_eq!(f(1), 2);
                go_rx.recv().unwrap();
                f(10)
            });
            let fresh = std::thread::spawn(move || {
                go_rx2.recv().unwrap();
                f(20)
            });
            while ACTIVE.load(Ordering::SeqCst) == 0 {
                sleep(Duration::from_micros(100));
            }
            let (before, after) = with_world_stopped(|_| {
                let before = ACTIVE.load(Ordering::SeqCst);
                go_tx.send(()).unwrap();
                go_tx2.send(()).unwrap();
                std::thread::sleep(Duration::from_millis(30));
                (before, ACTIVE.load(Ordering::SeqCst))
            });
            assert_eq!(before, after, "a callback ran while the world was stopped");
            assert_eq!(join_thread(bound), 11);
            assert_eq!(join_thread(fresh), 21);
            assert_eq!(ACTIVE.load(Ordering::SeqCst), before + 2);
        });
        assert_at_rest();
    });
}

#[test]
fn set_gomaxprocs_serialises_with_repeated_stops() {
    if !is_child() {
        return at_procs("set_gomaxprocs_serialises_with_repeated_stops", &[2]);
    }
    watched("set_gomaxprocs during stops", || {
        run(|| {
            let mut hs = yielding_loops(4);
            hs.push(spawn(|| {
                while !done() {
                    c_usleep(300);
                    bump();
                    // Short C calls in a row keep the P (each has a new C-call
                    // count, so the monitor does not take it): let the others
                    // run.
                    yield_now();
                }
            }));
            let changer = spawn(|| {
                let mut n = 0;
                while !done() {
                    set_gomaxprocs(1 + n % 4);
                    n += 1;
                    bump();
                    yield_now();
                }
                n
            });
            // A plain thread stops the world over and over; the number of
            // Ps must not change while it is stopped.
            let stopper = std::thread::spawn(|| {
                let mut stops = 0;
                for _ in 0..60 {
                    let (a, b, procs_a, procs_b) = with_world_stopped(|_| {
                        let (a, procs_a) = (ACTIVE.load(Ordering::SeqCst), gomaxprocs());
                        std::thread::sleep(Duration::from_millis(1));
                        (a, ACTIVE.load(Ordering::SeqCst), procs_a, gomaxprocs())
                    });
                    assert_eq!(a, b, "managed code ran while the world was stopped");
                    assert_eq!(procs_a, procs_b, "GOMAXPROCS changed while the world was stopped");
                    stops += 1;
                    std::thread::sleep(Duration::from_micros(500));
                }
                stops
            });
            // The main task stops the world too (a blocking call from a task).
            stop_repeatedly(20, Duration::from_millis(1));
            assert_eq!(join_thread(stopper), 60);
            DONE.store(true, Ordering::SeqCst);
            assert!(changer.join() > 0);
            for h in hs {
                h.join();
            }
            set_gomaxprocs(2);
        });
        assert_at_rest();
        assert_eq!(stats().gomaxprocs, 2);
    });
}

cgocheck::c_functions! {
    extern "C" {
        /// The C library's `labs`: a C call of a few nanoseconds, on the
        /// register path.
        #[link_name = "labs"]
        fn c_labs(x: i64) -> i64;
    }
}

/// A task that does nothing but call a tiny C function, with no safepoint
/// of its own and no preemption by signal (`GODEBUG=asyncpreemptoff=1`),
/// is stopped at its next return from C: each call lasts far less than
/// the barrier a stop issues, so the stop's look never finds it in C long
/// enough to take its P, and the returning thread stops itself
/// (`crossing::reclaim`). Without that, a stop waits for ever (the
/// watchdog's crash report).
#[test]
fn a_task_making_tiny_c_calls_in_a_loop_does_not_hold_up_a_stop() {
    if !is_child() {
        let out = sched_util::child(
            "a_task_making_tiny_c_calls_in_a_loop_does_not_hold_up_a_stop",
            &[("GOMAXPROCS", "2"), ("GODEBUG", "asyncpreemptoff=1"), ("GOTRACEBACK", "all")],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        return;
    }
    watched("stops against a loop of tiny C calls", || {
        run(|| {
            let looper = spawn(|| {
                let mut n = 0i64;
                while !done() {
                    // SAFETY: labs of an integer.
                    n = unsafe { c_labs(-n) } + 1;
                }
                n
            });
            // Let it start looping, holding the other P.
            sleep(Duration::from_millis(20));
            let mut slowest = Duration::ZERO;
            for _ in 0..50 {
                let t = Instant::now();
                with_world_stopped(|_| ());
                slowest = slowest.max(t.elapsed());
            }
            DONE.store(true, Ordering::SeqCst);
            assert!(looper.join() > 0, "the loop ran");
            eprintln!("slowest stop against the loop: {slowest:?}");
            // Tens of ms at worst here (a debug build); seconds without
            // the self-stop.
            assert!(slowest < Duration::from_millis(500), "a stop took {slowest:?}");
        })
    });
}

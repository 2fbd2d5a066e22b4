//! The crossing protocol under attack (`runtime/src/cgocall.rs`, "The
//! crossing protocol"): every rare side that takes a P from an M in C, as
//! often as it can, against C calls and callbacks that cross as fast as
//! they can, with checks that see a P with two owners or a task running
//! managed code while the world is stopped.
//!
//! In one process (a child per barrier: `CGOCHECK_BARRIER=membarrier` and
//! `=fence`):
//!
//! - the monitor retakes every P whose M is in C, a thousand looks back to
//!   back per period, at a raised priority, and every 16th time it is held
//!   up for 500 µs between counting itself in and its barrier, as an OS
//!   preemption would hold it up (the test-only knob
//!   `crossing::set_eager_retake_for_test`);
//! - one task changes `GOMAXPROCS` every millisecond, through 1..=8;
//! - one task stops the world in a loop (`with_world_stopped`) and, while
//!   it is stopped, checks that the managed-progress counter does not move
//!   for 100 µs;
//! - 8 tasks call C in a loop: `add` (the fast path), now and then a call
//!   that stays in C for 20 µs (long enough to be retaken or stopped
//!   mid-call), and a call that calls back twice on the task's thread;
//! - 8 threads created by C call back in a loop, each on an extra M.
//!
//! After every return from C and in every callback, managed code checks
//! that its M holds its P `RUNNING` as the P's word says
//! (`crossing::current_task_owns_its_p`): a return that missed a retake
//! or a stop reads another owner or a stopped word there. It also bumps
//! the progress counter the stopper watches. Afterwards the counters must
//! be at rest: no P in C, no C call in progress on any M, no extra M
//! bound, every P idle but the main task's, within a few seconds.
//!
//! The default test runs 30 s per barrier (60 s in all), watched (a hang
//! fails with every task listed). Two knobs, read by the child:
//! `XS_SECS=n` runs n seconds per barrier (a soak), and `XS_SKIP_BARRIER=1`
//! makes the rare sides skip their barrier (`crossing::skip_barrier_for_test`)
//! to show that the checks see what the barrier prevents:
//!
//! ```text
//! XS_SKIP_BARRIER=1 cargo test -p c-tests --test crossing_stress
//! ```
//!
//! fails with `membarrier`, where the owner has no fence of its own: on
//! its check that barriers were issued, and given two minutes
//! (`XS_SECS=120`: 4 of 323 million returns, measured) with "N returns
//! from C without their P". (`runtime/src/sched/crossing.rs`'s litmus
//! tests show the same race in a fraction of a second, with and without
//! the barrier, in every run of the suite.)

extern crate c_tests;

#[path = "../../runtime/tests/sched_util/mod.rs"]
mod sched_util;

use cgocheck::gc::with_world_stopped;
use cgocheck::sched::crossing::{self, Barrier};
use cgocheck::{run_test, set_gomaxprocs, spawn};
use core::ffi::c_int;
use sched_util::{child, is_child, watched_for};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

cgocheck::c_functions! {
    // csrc/crossing_stress.c
    extern "C" {
        /// a + b.
        fn ct_xs_add(a: i64, b: i64) -> i64;
        /// Stays in C, running, for `ns` nanoseconds.
        fn ct_xs_spin_ns(ns: i64) -> i64;
        /// Calls GoXsCallback(seed + i) for i in 0..n; the number that answered right.
        fn ct_xs_callback(seed: i64, n: c_int) -> i64;
        /// Starts `n` C threads calling GoXsCallback in a loop; 0, or -1.
        fn ct_xs_threads_start(n: c_int) -> c_int;
        /// Stops them; the number of calls they made (and the right answers at *ok), or -1.
        fn ct_xs_threads_stop(ok: *mut i64) -> i64;
    }
}

/// Managed code ran: bumped after every return from C and in every
/// callback. Must not move while the world is stopped.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// Times managed code found its P not its own (a P with two owners, or a
/// task running on a stopped P).
static NOT_OWNER: AtomicU64 = AtomicU64::new(0);
/// Times the progress counter moved while the world was stopped.
static RAN_DURING_STOP: AtomicU64 = AtomicU64::new(0);
/// The first violation, in words.
static FIRST: Mutex<Option<String>> = Mutex::new(None);
static STOP: AtomicBool = AtomicBool::new(false);

fn violation(counter: &AtomicU64, what: String) {
    counter.fetch_add(1, Ordering::SeqCst);
    FIRST.lock().unwrap().get_or_insert(what);
}

/// The checks managed code makes each time it comes back from C.
fn check_back_from_c(where_: &str) {
    PROGRESS.fetch_add(1, Ordering::SeqCst);
    if !crossing::current_task_owns_its_p() {
        violation(&NOT_OWNER, format!("{where_}: the task's M does not hold its P RUNNING"));
    }
}

cgocheck::export! {
    /// Called by C, from a task's thread or a C thread: checks and answers
    /// seed + 1.
    fn GoXsCallback(seed: i64) -> i64 {
        check_back_from_c("a callback");
        seed + 1
    }
}

/// A task calling C in a loop (module comment); returns its calls.
fn caller(k: i64) -> u64 {
    let mut calls = 0u64;
    while !STOP.load(Ordering::Relaxed) {
        for i in 0..64 {
            // SAFETY: adds two integers.
            let sum = unsafe { ct_xs_add(k, i) };
            check_back_from_c("a return from add");
            assert_eq!(sum, k + i, "C's add");
        }
        // SAFETY: spins in C for 20 µs.
        unsafe { ct_xs_spin_ns(20_000) };
        check_back_from_c("a return from a 20 µs call");
        // SAFETY: C calls GoXsCallback twice on this thread.
        let ok = unsafe { ct_xs_callback(k << 32 | calls as i64, 2) };
        check_back_from_c("a return from a call that called back");
        assert_eq!(ok, 2, "callbacks from C on a task's thread");
        calls += 66;
    }
    calls
}

/// What one run did, for the report and the liveness checks.
#[derive(Debug)]
struct Done {
    calls: u64,
    c_thread_callbacks: i64,
    gomaxprocs_changes: u64,
    stops: u64,
    retakes: u64,
    barriers: u64,
}

fn stress(duration: Duration, barrier: Barrier) -> Done {
    assert_eq!(cgocheck::sched::stats().barrier, barrier, "CGOCHECK_BARRIER chose the barrier");
    let start_procs = cgocheck::gomaxprocs();
    let before = cgocheck::sched::stats();
    crossing::set_eager_retake_for_test(true);
    crossing::skip_barrier_for_test(std::env::var_os("XS_SKIP_BARRIER").is_some());
    // SAFETY: starts 8 C threads that call GoXsCallback.
    assert_eq!(unsafe { ct_xs_threads_start(8) }, 0, "C could not start its 8 threads");
    let callers: Vec<_> = (1..=8).map(|k| spawn(move || caller(k))).collect();
    let procs = spawn(|| {
        let mut changes = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            set_gomaxprocs(1 + (changes * 5 % 8) as usize);
            changes += 1;
            cgocheck::sleep(Duration::from_millis(1));
        }
        changes
    });
    let stopper = spawn(|| {
        let mut stops = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            with_world_stopped(|_| {
                let a = PROGRESS.load(Ordering::SeqCst);
                let t = Instant::now();
                while t.elapsed() < Duration::from_micros(100) {
                    std::hint::spin_loop();
                }
                let b = PROGRESS.load(Ordering::SeqCst);
                if a != b {
                    violation(
                        &RAN_DURING_STOP,
                        format!("managed code ran {} times while the world was stopped", b - a),
                    );
                }
            });
            stops += 1;
            cgocheck::yield_now();
        }
        stops
    });
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        cgocheck::sleep(Duration::from_millis(20));
    }
    STOP.store(true, Ordering::SeqCst);
    let calls = callers.into_iter().map(|h| h.join()).sum();
    let gomaxprocs_changes = procs.join();
    let stops = stopper.join();
    let mut ok = 0i64;
    // SAFETY: stops and joins the C threads; `ok` is a local.
    let c_thread_callbacks = unsafe { ct_xs_threads_stop(&raw mut ok) };
    crossing::set_eager_retake_for_test(false);
    set_gomaxprocs(start_procs);
    assert!(
        c_thread_callbacks > 0 && ok == c_thread_callbacks,
        "C threads: {c_thread_callbacks} callbacks, {ok} right"
    );
    let after = cgocheck::sched::stats();
    Done {
        calls,
        c_thread_callbacks,
        gomaxprocs_changes,
        stops,
        retakes: after.retakes - before.retakes,
        barriers: after.barriers - before.barriers,
    }
}

/// Counters at rest: waits up to 5 s for them to settle.
fn at_rest() {
    let t0 = Instant::now();
    loop {
        let s = cgocheck::sched::stats();
        let in_c: Vec<_> = s.ms.iter().filter(|m| m.ncgo > 0 && !m.extra).map(|m| m.id).collect();
        let rest = s.ps_in_c == 0 && in_c.is_empty() && s.extra_ms_bound == 0 && s.idle_ps + 1 == s.gomaxprocs;
        if rest {
            return;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "not at rest 5 s after the stress: Ms in C {in_c:?}; {s:#?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// In the parent: runs this test in a child per barrier for `secs` each and
/// requires it to pass. In the child: runs the stress, watched, and checks.
fn per_barrier(name: &str, secs: u64) {
    if !is_child() {
        // This kernel's answer (the parent's environment has no
        // CGOCHECK_BARRIER: `child` drops it).
        let kernel_has_membarrier = crossing::barrier_kind() == Barrier::Membarrier
            || std::env::var("CGOCHECK_BARRIER").as_deref() == Ok("fence");
        for barrier in ["membarrier", "fence"] {
            if barrier == "membarrier" && !kernel_has_membarrier {
                eprintln!("this kernel refuses membarrier(PRIVATE_EXPEDITED): only the fence barrier is tested");
                continue;
            }
            let out = child(name, &[("CGOCHECK_BARRIER", barrier), ("GOMAXPROCS", "8"), ("GOTRACEBACK", "all")]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "CGOCHECK_BARRIER={barrier}: the child failed ({:?}):\n{stderr}", out.status);
            eprintln!(
                "CGOCHECK_BARRIER={barrier}: {}",
                stderr.lines().filter(|l| l.starts_with("crossing")).collect::<Vec<_>>().join("\n")
            );
        }
        return;
    }
    let barrier = match std::env::var("CGOCHECK_BARRIER").as_deref() {
        Ok("fence") => Barrier::Fence,
        _ => Barrier::Membarrier,
    };
    watched_for(name, Duration::from_secs(secs + 60), || {
        run_test(move || {
            let done = stress(Duration::from_secs(secs), barrier);
            eprintln!("crossing stress ({barrier:?}, {secs} s): {done:?}");
            let first = FIRST.lock().unwrap().clone();
            assert!(
                first.is_none(),
                "{} returns from C without their P, {} times managed code ran during a stop; the first: {}",
                NOT_OWNER.load(Ordering::SeqCst),
                RAN_DURING_STOP.load(Ordering::SeqCst),
                first.unwrap_or_default()
            );
            // The attack happened: every rare side ran, many times.
            assert!(done.calls > 10_000, "{done:?}");
            assert!(done.c_thread_callbacks > 1_000, "{done:?}");
            assert!(done.gomaxprocs_changes > secs * 5, "{done:?}");
            assert!(done.stops > secs * 5, "{done:?}");
            assert!(done.retakes > secs * 20, "{done:?}");
            match barrier {
                Barrier::Membarrier => assert!(done.barriers > done.retakes / 8, "{done:?}"),
                Barrier::Fence => assert_eq!(done.barriers, 0, "{done:?}"),
            }
            at_rest();
        })
    });
}

#[test]
fn the_crossing_protocol_holds_under_retakes_stops_and_gomaxprocs_changes() {
    let secs = std::env::var("XS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    per_barrier("the_crossing_protocol_holds_under_retakes_stops_and_gomaxprocs_changes", secs);
}

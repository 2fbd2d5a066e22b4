//! The monitor and the exitsyscall slow path: a long C call does not hold
//! the only P while other tasks wait, and many tasks calling C while
//! `GOMAXPROCS` changes under them (Go's `preemptduringcall`) finish with
//! every counter back at rest.
//!
//! Each test runs in a child process with its own `GOMAXPROCS`.

mod sched_util;

use cgocheck::cgocall::cgocall;
use cgocheck::sched::stats;
use cgocheck::{gomaxprocs, run, set_gomaxprocs, spawn, yield_now};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `frame` is a `u32` of microseconds to sleep in C.
unsafe extern "C" fn usleep_tramp(frame: *mut c_void) {
    // SAFETY: the caller passes a u32.
    let us = unsafe { *(frame as *const u32) };
    // SAFETY: usleep has no preconditions.
    unsafe { libc::usleep(us) };
}

/// An empty C function (Go's `f30`).
unsafe extern "C" fn nothing(_frame: *mut c_void) {}

#[test]
fn a_200ms_c_call_does_not_stop_other_tasks_with_one_p() {
    if !sched_util::is_child() {
        return sched_util::child_passes("a_200ms_c_call_does_not_stop_other_tasks_with_one_p", &[("GOMAXPROCS", "1")]);
    }
    run(|| {
        assert_eq!(gomaxprocs(), 1);
        let retakes_before = stats().retakes;
        let in_c = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let (in_c2, done2) = (in_c.clone(), done.clone());
        let sleeper = spawn(move || {
            in_c2.store(true, Ordering::SeqCst);
            let mut us = 200_000u32;
            // SAFETY: usleep_tramp takes a u32.
            unsafe { cgocall(usleep_tramp, &mut us as *mut u32 as *mut c_void, None) };
            done2.store(true, Ordering::SeqCst);
        });
        let worker = spawn(move || {
            // Wait (politely) until the sleeper is in C, then make progress.
            while !in_c.load(Ordering::SeqCst) {
                yield_now();
            }
            let t0 = Instant::now();
            let mut steps = 0u64;
            for _ in 0..1000 {
                steps += 1;
                yield_now();
            }
            (steps, done.load(Ordering::SeqCst), t0.elapsed())
        });
        let (steps, sleeper_done, took) = worker.join();
        assert_eq!(steps, 1000);
        assert!(!sleeper_done, "the other task only ran after the 200 ms C call returned");
        assert!(took < Duration::from_millis(150), "{took:?}");
        sleeper.join();
        assert!(stats().retakes > retakes_before, "the monitor retook the P");
    });
}

#[test]
fn without_waiting_tasks_a_long_c_call_keeps_its_p() {
    if !sched_util::is_child() {
        return sched_util::child_passes("without_waiting_tasks_a_long_c_call_keeps_its_p", &[("GOMAXPROCS", "1")]);
    }
    run(|| {
        let before = stats().retakes;
        let mut us = 50_000u32;
        // SAFETY: usleep_tramp takes a u32.
        unsafe { cgocall(usleep_tramp, &mut us as *mut u32 as *mut c_void, None) };
        assert_eq!(stats().retakes, before, "the P was retaken though nothing waited for it");
    });
}

fn preempt_during_call() {
    run(|| {
        let before = stats();
        let initial = gomaxprocs();
        let calls = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..100usize)
            .map(|i| {
                let calls = calls.clone();
                spawn(move || {
                    for _ in 0..100 {
                        // SAFETY: `nothing` ignores its frame.
                        unsafe { cgocall(nothing, std::ptr::null_mut(), None) };
                        calls.fetch_add(1, Ordering::Relaxed);
                        // Go's runtime.GOMAXPROCS(i): 0 reads it.
                        set_gomaxprocs(i);
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join());
        assert_eq!(calls.load(Ordering::Relaxed), 10_000);
        set_gomaxprocs(initial);
        // At rest: no C call in progress anywhere, no P in the syscall
        // state, nothing queued, only the main task alive, and exactly the
        // calls made counted. (A joined task may still be in its last
        // steps: join returns when its result is ready, just before it
        // exits. Give the last ones a moment.)
        let t0 = Instant::now();
        while stats().tasks > 1 && t0.elapsed() < Duration::from_secs(5) {
            cgocheck::sleep(Duration::from_millis(1));
        }
        let after = stats();
        assert_eq!(after.in_c(), 0, "{after:#?}");
        assert_eq!(after.ps_in_c, 0, "{after:#?}");
        assert_eq!(after.runnable, 0, "{after:#?}");
        assert_eq!(after.tasks, 1, "{after:#?}");
        assert_eq!(after.cgocalls() - before.cgocalls(), 10_000, "{after:#?}");
        assert_eq!(after.gomaxprocs, initial);
    });
}

#[test]
fn preemptduringcall_100_tasks_100_calls_changing_gomaxprocs() {
    if !sched_util::is_child() {
        for procs in ["1", "4"] {
            sched_util::child_passes(
                "preemptduringcall_100_tasks_100_calls_changing_gomaxprocs",
                &[("GOMAXPROCS", procs)],
            );
        }
        return;
    }
    preempt_during_call();
}

//! `GOMAXPROCS` and `CGOCHECK_STACK_KB`: read at start (bad values stop the
//! program with a clear message), changed while running (growing runs more
//! tasks at once, shrinking fewer), and the limit on live tasks.
//!
//! Every test runs in a child process with its own environment.

mod sched_util;

use cgocheck::sched::stats;
use cgocheck::{gomaxprocs, heap, run, set_gomaxprocs, spawn, yield_now, Chan, ManagedMemory, Region};
use sched_util::{child_fails, child_passes, is_child};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[test]
fn bad_gomaxprocs_values_stop_the_program_naming_the_accepted_ones() {
    if is_child() {
        run(|| ());
        unreachable!("started with a bad GOMAXPROCS");
    }
    for bad in ["garbage", "1025", "2.5", " 2", "4_0"] {
        child_fails(
            "bad_gomaxprocs_values_stop_the_program_naming_the_accepted_ones",
            &[("GOMAXPROCS", bad)],
            2,
            &[&format!("cgocheck: GOMAXPROCS: {bad:?} is not a number of processors"), "integers from 1 to 1024"],
        );
    }
}

#[test]
fn bad_stack_sizes_stop_the_program_naming_the_accepted_ones() {
    if is_child() {
        spawn(|| ()).join();
        unreachable!("started with a bad CGOCHECK_STACK_KB");
    }
    for bad in ["0", "8", "-64", "big", "64k"] {
        child_fails(
            "bad_stack_sizes_stop_the_program_naming_the_accepted_ones",
            &[("CGOCHECK_STACK_KB", bad)],
            2,
            &[&format!("cgocheck: CGOCHECK_STACK_KB: {bad:?} is not a task stack size"), "from 16 to 1048576"],
        );
    }
}

#[test]
fn good_values_are_used() {
    if !is_child() {
        return child_passes("good_values_are_used", &[("GOMAXPROCS", "3"), ("CGOCHECK_STACK_KB", "64")]);
    }
    run(|| {
        assert_eq!(gomaxprocs(), 3);
        let size = spawn(|| {
            let local = 0u8;
            match heap().region(&local as *const u8 as usize) {
                Region::Stack { lo, hi, .. } => hi - lo,
                other => panic!("{other:?}"),
            }
        })
        .join();
        assert_eq!(size, 64 << 10);
    });
}

#[test]
fn gos_number_forms_are_accepted() {
    if !is_child() {
        return child_passes("gos_number_forms_are_accepted", &[("GOMAXPROCS", "0003"), ("CGOCHECK_STACK_KB", "+64")]);
    }
    run(|| {
        assert_eq!(gomaxprocs(), 3);
        assert_eq!(stats().gomaxprocs, 3);
    });
}

#[test]
fn below_one_is_the_default_as_in_go() {
    if !is_child() {
        return child_passes("below_one_is_the_default_as_in_go", &[("GOMAXPROCS", "-2")]);
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(gomaxprocs(), cpus.min(1024));
}

#[test]
fn the_default_is_the_cpu_count() {
    if !is_child() {
        return child_passes("the_default_is_the_cpu_count", &[]);
    }
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(gomaxprocs(), cpus.min(1024));
}

/// The most tasks seen running at the same time, when `n` tasks each busy
/// for `busy` (without yielding) are started together. The busy loop holds
/// off asynchronous preemption (`with_no_preempt`): a task preempted
/// mid-loop hands its P on and would still count as running while
/// another runs.
fn max_parallel(n: usize, busy: Duration) -> usize {
    let running = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..n)
        .map(|_| {
            let (running, max) = (running.clone(), max.clone());
            spawn(move || {
                cgocheck::gc::with_no_preempt(|| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    max.fetch_max(now, Ordering::SeqCst);
                    let t0 = Instant::now();
                    while t0.elapsed() < busy {
                        std::hint::spin_loop();
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                });
            })
        })
        .collect();
    hs.into_iter().for_each(|h| h.join());
    max.load(Ordering::SeqCst)
}

#[test]
fn set_gomaxprocs_grows_and_shrinks_while_running() {
    if !is_child() {
        return child_passes("set_gomaxprocs_grows_and_shrinks_while_running", &[("GOMAXPROCS", "1")]);
    }
    run(|| {
        // One P: the busy tasks run one at a time.
        assert_eq!(max_parallel(3, Duration::from_millis(30)), 1);
        // Three Ps: they overlap (the machine may have fewer CPUs; the OS
        // still runs the three threads at once).
        assert_eq!(set_gomaxprocs(3), 1);
        assert_eq!(gomaxprocs(), 3);
        assert_eq!(stats().gomaxprocs, 3);
        let grown = max_parallel(3, Duration::from_millis(200));
        assert!(grown >= 2, "three Ps ran at most {grown} task at a time");
        // Back to one; 0 only reads.
        assert_eq!(set_gomaxprocs(1), 3);
        assert_eq!(set_gomaxprocs(0), 1);
        assert_eq!(max_parallel(3, Duration::from_millis(30)), 1);
        let e = std::panic::catch_unwind(|| set_gomaxprocs(1025)).unwrap_err();
        assert!(e.downcast_ref::<String>().unwrap().contains("accepted values are 1 to 1024"));
    });
}

#[test]
fn with_one_p_yield_alternates_in_queue_order() {
    if !is_child() {
        return child_passes("with_one_p_yield_alternates_in_queue_order", &[("GOMAXPROCS", "1")]);
    }
    run(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = ['a', 'b']
            .into_iter()
            .map(|name| {
                let log = log.clone();
                spawn(move || {
                    for i in 0..4 {
                        log.lock().unwrap().push(format!("{name}{i}"));
                        yield_now();
                    }
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join());
        assert_eq!(*log.lock().unwrap(), ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3"]);
    });
}

#[test]
fn too_many_live_tasks_are_refused_with_the_reason() {
    if is_child() {
        // Start tasks that wait until told to stop, more than the system
        // allows: spawn must refuse with a message, not crash. With 1 GiB
        // stacks (Go's largest) the heap's stack range (32 TiB) is full
        // after about 32,000 of them. (The limit of kernels without guard
        // regions, two mappings per stack, is task_stacks.rs.)
        run(|| {
            let stop = Chan::<()>::new(0);
            let mut hs = Vec::new();
            for _ in 0..1_000_000 {
                let stop = stop.clone();
                hs.push(spawn_with_huge_stack(move || {
                    stop.recv();
                }));
            }
            unreachable!("a million tasks alive at once");
        });
    }
    child_fails(
        "too_many_live_tasks_are_refused_with_the_reason",
        &[],
        2,
        &["cgocheck: cannot start another task", "tasks are alive", "stack range", "CGOCHECK_STACK_KB"],
    );
}

fn spawn_with_huge_stack(f: impl FnOnce() + Send + 'static) -> cgocheck::JoinHandle<()> {
    cgocheck::spawn_with_stack(1 << 30, f)
}

//! Tasks: spawn and join, panics, yield, sleep, park/unpark, channels,
//! lock_os_thread, thousands of tasks, task stacks as managed memory.
//!
//! These tests share one process and run in parallel, each in its own
//! `run` (so each test thread is an M with its own main task); none of them
//! changes `GOMAXPROCS` (that is `sched_procs.rs`, in child processes).

mod sched_util;

use cgocheck::{current_task, heap, park, run, sleep, spawn, spawn_with_stack, yield_now, Chan, ManagedMemory, Region};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

#[test]
fn spawn_and_join_return_the_value() {
    let r = run(|| {
        let hs: Vec<_> = (0..8u64).map(|i| spawn(move || i * i)).collect();
        hs.into_iter().map(|h| h.join()).sum::<u64>()
    });
    assert_eq!(r, (0..8).map(|i| i * i).sum());
}

#[test]
fn run_borrows_from_its_caller_and_can_run_again() {
    let mut seen = Vec::new();
    run(|| seen.push(1));
    run(|| seen.push(2));
    assert_eq!(seen, [1, 2]);
}

#[test]
fn the_main_task_stays_on_the_calling_thread() {
    let me = std::thread::current().id();
    let ids = run(|| {
        let mut ids = vec![std::thread::current().id()];
        for _ in 0..20 {
            yield_now();
            spawn(|| ()).join();
            sleep(Duration::from_millis(1));
            ids.push(std::thread::current().id());
        }
        ids
    });
    assert!(ids.iter().all(|&id| id == me), "main task moved: {ids:?} vs {me:?}");
}

#[test]
fn join_from_a_plain_thread_blocks_until_done() {
    // No run: spawn starts the runtime; join blocks this thread.
    let h = spawn(|| {
        sleep(Duration::from_millis(20));
        7
    });
    let t0 = Instant::now();
    assert_eq!(h.join(), 7);
    assert!(t0.elapsed() >= Duration::from_millis(15));
}

#[test]
fn a_panic_in_a_task_goes_to_join() {
    let caught = run(|| {
        let h = spawn(|| -> u32 { panic!("boom in a task") });
        catch_unwind(AssertUnwindSafe(|| h.join())).unwrap_err()
    });
    assert_eq!(caught.downcast_ref::<&str>(), Some(&"boom in a task"));
}

#[test]
fn a_task_that_unwinds_while_blocking_can_still_be_joined() {
    // The drop of `Guard` blocks on a channel while the task unwinds: it
    // must come back to the same thread (std's panic count is per thread).
    struct Guard(Chan<u32>);
    impl Drop for Guard {
        fn drop(&mut self) {
            let before = std::thread::current().id();
            self.0.recv();
            assert_eq!(before, std::thread::current().id(), "moved thread while unwinding");
        }
    }
    run(|| {
        let c = Chan::new(0);
        let c2 = c.clone();
        let h = spawn(move || {
            let _g = Guard(c2);
            panic!("unwinding with a blocking drop");
        });
        sleep(Duration::from_millis(10));
        c.send(1);
        let err = catch_unwind(AssertUnwindSafe(|| h.join())).unwrap_err();
        assert_eq!(err.downcast_ref::<&str>(), Some(&"unwinding with a blocking drop"));
    });
}

#[test]
fn ten_thousand_tasks_complete() {
    let n = 10_000;
    let done = Arc::new(AtomicUsize::new(0));
    run(|| {
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let done = done.clone();
                spawn(move || {
                    if i % 2 == 0 {
                        yield_now();
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    i
                })
            })
            .collect();
        let sum: usize = hs.into_iter().map(|h| h.join()).sum();
        assert_eq!(sum, n * (n - 1) / 2);
    });
    assert_eq!(done.load(Ordering::Relaxed), n);
}

#[test]
fn thousands_of_tasks_blocked_at_once_all_wake() {
    // 3000 tasks parked on one channel at the same time, then released.
    let n = 3000;
    run(|| {
        let gate = Chan::<()>::new(0);
        let out = Chan::new(n);
        let hs: Vec<_> = (0..n)
            .map(|i| {
                let (gate, out) = (gate.clone(), out.clone());
                spawn(move || {
                    assert_eq!(gate.recv(), None, "gate is only closed");
                    out.send(i);
                })
            })
            .collect();
        sleep(Duration::from_millis(20));
        gate.close();
        hs.into_iter().for_each(|h| h.join());
        let mut got: Vec<usize> = (0..n).map(|_| out.recv().unwrap()).collect();
        got.sort();
        assert_eq!(got, (0..n).collect::<Vec<_>>());
    });
}

#[test]
fn yield_lets_a_spinning_partner_finish() {
    // Two tasks, each waiting for the other's flag while yielding: with a
    // yield that did nothing (and few Ps) they would spin forever.
    run(|| {
        let a = Arc::new(AtomicBool::new(false));
        let b = Arc::new(AtomicBool::new(false));
        let (a2, b2) = (a.clone(), b.clone());
        let h = spawn(move || {
            a2.store(true, Ordering::SeqCst);
            while !b2.load(Ordering::SeqCst) {
                yield_now();
            }
        });
        while !a.load(Ordering::SeqCst) {
            yield_now();
        }
        b.store(true, Ordering::SeqCst);
        h.join();
    });
}

#[test]
fn sleep_waits_at_least_the_duration_and_sleepers_overlap() {
    run(|| {
        let t0 = Instant::now();
        sleep(Duration::from_millis(30));
        assert!(t0.elapsed() >= Duration::from_millis(30));
        // 200 tasks sleeping 50 ms each: together, not one after another.
        let t0 = Instant::now();
        let hs: Vec<_> = (0..200).map(|_| spawn(|| sleep(Duration::from_millis(50)))).collect();
        hs.into_iter().for_each(|h| h.join());
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(50) && took < Duration::from_secs(5),
            "one after another would take 10 s: {took:?}"
        );
    });
}

#[test]
fn park_blocks_until_unpark_and_tokens_do_not_accumulate() {
    run(|| {
        // An unpark before the park: the park returns at once.
        current_task().unpark();
        current_task().unpark();
        let t0 = Instant::now();
        park();
        assert!(t0.elapsed() < Duration::from_millis(500));

        let flag = Arc::new(AtomicBool::new(false));
        let f2 = flag.clone();
        let parked = spawn(move || {
            while !f2.load(Ordering::SeqCst) {
                park();
            }
            current_task().id()
        });
        sleep(Duration::from_millis(20));
        assert!(!parked.is_finished(), "a parked task ran to the end without an unpark");
        flag.store(true, Ordering::SeqCst);
        parked.task().unpark();
        let id = parked.task().id();
        assert_eq!(parked.join(), id);
    });
}

#[test]
fn channels_unbuffered_buffered_and_closed() {
    run(|| {
        // Unbuffered ping-pong.
        let (ping, pong) = (Chan::new(0), Chan::new(0));
        let (p2, q2) = (ping.clone(), pong.clone());
        let h = spawn(move || {
            while let Some(v) = p2.recv() {
                q2.send(v + 1);
            }
            "closed"
        });
        for i in 0..1000u64 {
            ping.send(i);
            assert_eq!(pong.recv(), Some(i + 1));
        }
        ping.close();
        assert_eq!(h.join(), "closed");

        // Buffered: order kept, a full buffer blocks the sender.
        let c = Chan::new(3);
        for i in 0..3 {
            c.send(i);
        }
        assert_eq!(c.len(), 3);
        let c2 = c.clone();
        let blocked = spawn(move || c2.send(3));
        sleep(Duration::from_millis(20));
        assert!(!blocked.is_finished(), "send into a full buffer did not wait");
        assert_eq!(c.recv(), Some(0));
        blocked.join();
        assert_eq!((c.recv(), c.recv(), c.recv()), (Some(1), Some(2), Some(3)));
        assert_eq!(c.try_recv(), None);

        // Closed: buffered values drain, then None; send and a second close
        // panic with Go's words.
        c.send(9);
        c.close();
        assert_eq!((c.recv(), c.recv()), (Some(9), None));
        let e = catch_unwind(AssertUnwindSafe(|| c.send(1))).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"send on closed channel"));
        let e = catch_unwind(AssertUnwindSafe(|| c.close())).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"close of closed channel"));

        // A sender blocked when the channel closes panics.
        let u = Chan::new(0);
        let u2 = u.clone();
        let h = spawn(move || u2.send(5u8));
        sleep(Duration::from_millis(20));
        u.close();
        let e = catch_unwind(AssertUnwindSafe(|| h.join())).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"send on closed channel"));
    });
}

#[test]
fn channels_carry_managed_values_between_tasks_and_threads() {
    let c: Chan<cgocheck::Gc<u64>> = Chan::new(0);
    let c2 = c.clone();
    // A plain thread receives what a task sends.
    let t = std::thread::spawn(move || *c2.recv().unwrap());
    run(|| c.send(cgocheck::new(77u64)));
    assert_eq!(t.join().unwrap(), 77);
}

#[test]
fn a_locked_task_keeps_its_thread_and_the_thread_runs_nothing_else() {
    run(|| {
        let (thread_out, same_out) = (Chan::new(1), Chan::new(1));
        let (locked_tx, locked_rx) = (thread_out.clone(), same_out.clone());
        let go = Chan::<()>::new(0);
        let go_in = go.clone();
        let locked = spawn(move || {
            cgocheck::lock_os_thread();
            let me = std::thread::current().id();
            locked_tx.send(me);
            let mut same = true;
            for _ in 0..50 {
                yield_now();
                sleep(Duration::from_micros(200));
                same &= std::thread::current().id() == me;
            }
            go_in.recv();
            same &= std::thread::current().id() == me;
            cgocheck::unlock_os_thread();
            locked_rx.send(same);
        });
        let locked_thread: ThreadId = thread_out.recv().unwrap();
        // While it is locked (and mostly blocked), 200 other tasks run.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = (0..200)
            .map(|_| {
                let seen = seen.clone();
                spawn(move || {
                    yield_now();
                    seen.lock().unwrap().push(std::thread::current().id());
                })
            })
            .collect();
        hs.into_iter().for_each(|h| h.join());
        go.send(());
        assert!(same_out.recv().unwrap(), "the locked task changed threads");
        locked.join();
        let main_thread = std::thread::current().id();
        let seen = seen.lock().unwrap();
        assert!(!seen.contains(&locked_thread), "another task ran on the locked thread");
        assert!(!seen.contains(&main_thread), "another task ran on the main task's thread");
    });
}

#[test]
fn a_task_stack_is_managed_memory_of_that_task() {
    run(|| {
        let check = || {
            let local = 5u64;
            let addr = &local as *const u64 as usize;
            let id = current_task().id();
            match heap().region(addr) {
                Region::Stack { task, lo, hi } => {
                    assert_eq!(task, id);
                    assert!(lo <= addr && addr < hi);
                    hi - lo
                }
                other => panic!("a task's local at {addr:#x} is {other:?}"),
            }
        };
        // The main task and a spawned one; the default size is 16 MiB.
        assert_eq!(check(), 16 << 20);
        assert_eq!(spawn(check).join(), 16 << 20);
        // spawn_with_stack gives at least what it was asked.
        let big = spawn_with_stack(4 << 20, check).join();
        assert!(big >= 4 << 20, "{big}");
    });
}

#[test]
fn a_bigger_stack_holds_a_deeper_recursion() {
    #[inline(never)]
    fn depth(n: u32, pad: &mut [u8; 1024]) -> u32 {
        pad[0] = n as u8;
        let mut next = [0u8; 1024];
        if n == 0 {
            return pad[0] as u32;
        }
        std::hint::black_box(&mut next);
        depth(n - 1, &mut next) + std::hint::black_box(1)
    }
    // About 2 MiB of frames, in a stack asked for by size.
    let h = spawn_with_stack(8 << 20, || depth(2000, &mut [0; 1024]));
    assert_eq!(h.join(), 2000);
}

#[test]
fn bad_stack_sizes_are_refused_clearly() {
    for bad in [0, 1000, (1 << 30) + 1] {
        let e = catch_unwind(|| spawn_with_stack(bad, || ())).unwrap_err();
        let msg = e.downcast_ref::<String>().unwrap();
        assert!(msg.contains("accepted sizes are 16 KiB to 1048576 KiB"), "{msg}");
    }
}

#[test]
fn run_inside_a_task_and_current_task_outside_one_are_refused() {
    let msg = run(|| {
        let e = catch_unwind(|| run(|| ())).unwrap_err();
        e.downcast_ref::<&str>().unwrap().to_string()
    });
    assert!(msg.contains("called from inside a task; use cgocheck::spawn"), "{msg}");
    let e = catch_unwind(current_task).unwrap_err();
    assert!(e.downcast_ref::<&str>().unwrap().contains("outside a task; start the runtime with cgocheck::run"));
    let e = catch_unwind(cgocheck::lock_os_thread).unwrap_err();
    assert!(e.downcast_ref::<String>().unwrap().contains("lock_os_thread called outside a task"));
    // On a plain thread these are the std versions.
    yield_now();
    sleep(Duration::from_millis(1));
}

#[test]
fn a_detached_task_that_panics_ends_the_process_with_a_report() {
    if sched_util::is_child() {
        run(|| {
            drop(spawn(|| panic!("nobody joins me")));
            sleep(Duration::from_secs(5));
        });
        return;
    }
    sched_util::child_fails(
        "a_detached_task_that_panics_ends_the_process_with_a_report",
        &[],
        2,
        &["nobody joins me", "panic: nobody joins me", "task "],
    );
}

#[test]
fn a_panic_in_the_main_task_ends_the_process_with_a_report() {
    if sched_util::is_child() {
        run(|| panic!("main task gives up"));
        unreachable!();
    }
    sched_util::child_fails(
        "a_panic_in_the_main_task_ends_the_process_with_a_report",
        &[],
        2,
        &["panic: main task gives up"],
    );
}

/// Overflows the task's stack on purpose (the overflow-report tests).
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(n: u64) -> u64 {
    let mut pad = [n; 64];
    std::hint::black_box(&mut pad);
    recurse_forever(n + 1) + pad[3]
}

#[test]
fn a_stack_overflow_in_a_worker_task_is_reported_as_such() {
    // Worker Ms have an alternate signal stack, so the report can run.
    if sched_util::is_child() {
        run(|| spawn_with_stack(32 << 10, || recurse_forever(0)).join());
        unreachable!();
    }
    sched_util::child_fails(
        "a_stack_overflow_in_a_worker_task_is_reported_as_such",
        &[],
        2,
        &["overflowed its 32768-byte stack", "CGOCHECK_STACK_KB"],
    );
}

#[test]
fn a_stack_overflow_in_the_main_task_is_reported_as_such() {
    // The thread that calls run (here a test harness thread, which has no
    // alternate signal stack of its own) gets one.
    if sched_util::is_child() {
        run(|| recurse_forever(0));
        unreachable!();
    }
    sched_util::child_fails(
        "a_stack_overflow_in_the_main_task_is_reported_as_such",
        &[("CGOCHECK_STACK_KB", "64")],
        2,
        &["overflowed its 65536-byte stack"],
    );
}

//! Callbacks on threads the runtime never saw (extra Ms), without C: plain
//! Rust threads call an exported function through its `extern "C"` symbol,
//! as a C thread would. Each thread gets an extra M bound for its life,
//! released when it exits; Ms are reused, not leaked. Managed code in such a
//! callback is a task: it may spawn, join and block.
//!
//! One test per process section: the counts are global, so the tests that
//! read them serialise on `LOCK`.

use cgocheck::sched::stats;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

static LOCK: Mutex<()> = Mutex::new(());
static CALLS: AtomicU64 = AtomicU64::new(0);

cgocheck::export! {
    /// Counts its calls and reports whether it ran as a task on an M.
    fn CbCount(x: i64) -> i64 {
        CALLS.fetch_add(1, Ordering::Relaxed);
        let m = cgocheck::sched::current_m_stats().expect("a callback runs on an M");
        assert!(m.extra, "a thread the runtime never saw runs on an extra M");
        assert!(m.task.is_some(), "as a task");
        x + 1
    }

    /// Spawns a task, joins it, and sleeps: a callback may block.
    fn CbSpawnJoin(x: i64) -> i64 {
        let h = cgocheck::spawn(move || x * 2);
        let v = h.join();
        cgocheck::sleep(std::time::Duration::from_millis(1));
        v
    }
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn threads_bind_extra_ms_and_release_them_at_exit() {
    let _l = lock();
    let f: extern "C" fn(i64) -> i64 = CbCount;
    let run_round = |threads: usize, calls: i64| {
        let hs: Vec<_> =
            (0..threads).map(|_| std::thread::spawn(move || (0..calls).map(|x| f(x)).sum::<i64>())).collect();
        let total: i64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, threads as i64 * (1..=calls).sum::<i64>());
    };
    let before = stats();
    run_round(4, 1000);
    let after = stats();
    assert_eq!(after.extra_ms_bound, before.extra_ms_bound, "extra Ms released when their threads exit");
    assert!(after.extra_ms() <= before.extra_ms() + 4, "at most one extra M per concurrent thread");
    for _ in 0..5 {
        run_round(4, 100);
    }
    let again = stats();
    assert_eq!(again.extra_ms_bound, before.extra_ms_bound);
    // 24 threads in all, never more than 4 at once: without reuse there
    // would be up to 24 extra Ms. (How many of the 4 a round needs depends
    // on how its threads overlap, so the count may grow up to 4, not past.)
    assert!(
        again.extra_ms() <= before.extra_ms() + 4,
        "threads coming and going reuse the extra Ms: {} made for 24 threads",
        again.extra_ms() - before.extra_ms()
    );
}

#[test]
fn a_callback_on_a_new_thread_may_spawn_join_and_sleep() {
    let _l = lock();
    let f: extern "C" fn(i64) -> i64 = CbSpawnJoin;
    let h = std::thread::spawn(move || (0..20).map(|x| f(x)).sum::<i64>());
    assert_eq!(h.join().unwrap(), (0..20).map(|x| x * 2).sum::<i64>());
    assert_eq!(stats().extra_ms_bound, 0);
}

#[test]
fn an_exported_function_called_from_a_task_runs_in_place() {
    let _l = lock();
    let f: extern "C" fn(i64) -> i64 = CbSpawnJoin;
    assert_eq!(cgocheck::run(|| f(21)), 42);
}

//! The callback case binary: `callbacks NAME` runs one case in which C calls
//! managed functions exported with `cgocheck::export!`, and exits.
//!
//! Each case runs as the main task of `cgocheck::run` (C is called from a
//! task, through the typed call layer). The C halves are in
//! csrc/callback.c. The suites under `tests/`
//! (callback_*.rs) run this binary as a child process per case and per
//! `CGOCHECK` level, like the `cases` binary (see `c_tests::harness`). A case
//! reports success by returning; it fails by panicking, or by what the
//! runtime does to a violating program: a failed result check is a panic in
//! the callback, which continues in the managed caller of the C call (the
//! case's main task, where it is unrecovered: exit status 2), and a panic in
//! a callback on a thread C created, with no managed caller, is fatal.
//! The `nested`, `work` and `block` cases exercise the callback path itself
//! (panics across C frames, allocation, spawning, blocking in callbacks).

// The C archive built from csrc/ is attached to the c_tests library; naming
// the crate links it into this binary.
use c_tests as _;
use cgocheck::Chan;
use cgocheck::{elem, new, new_slice, Gc, GcMap, Handle, Pinner};
use core::ffi::{c_int, c_long, c_void};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("export1", export1),
    ("exportok", exportok),
    ("exportpinned", exportpinned),
    ("retmap", retmap),
    ("handle", handle),
    ("handle_deleted", handle_deleted),
    ("cthread", cthread),
    ("cthread_lock", cthread_lock),
    ("qsort", qsort_managed_comparator),
    ("panic_on_c_thread", panic_on_c_thread),
    ("nocallback", nocallback),
    ("nested", nested),
    ("work", work),
    ("block", block),
];

fn main() {
    let (_, case) = c_tests::harness::chosen_case("callbacks", CASES);
    cgocheck::run(case);
}

cgocheck::c_functions! {
    // csrc/callback.c
    extern "C" {
        fn ct_call_gofn21() -> c_int;
        fn ct_call_gofn21_pinned() -> c_int;
        fn ct_call_gofn22() -> c_int;
        fn ct_call_gomap47() -> c_int;
        fn ct_cb_keep_handle(h: usize);
        fn ct_cb_use_kept_handle() -> i64;
        fn ct_cb_threads(nthreads: c_int, ncalls: c_long) -> i64;
        /// Row cthread_lock: C threads calling GoHoldLock.
        fn ct_cb_lock_threads(nthreads: c_int, ncalls: c_long) -> i64;
        fn ct_cb_panic_on_c_thread();
        /// Row nested: calls GoNest(depth), then counts a return.
        fn ct_nest(depth: i64) -> i64;
        /// How many times a GoNest call returned to ct_nest.
        fn ct_nest_after() -> c_long;
        fn ct_cb_work(n: i64) -> i64;
        fn ct_cb_block() -> i64;
        /// Row nocallback: a broken promise.
        #[nocallback]
        fn ct_nocallback_calls_go() -> c_int;
    }
    // libc
    extern "C" {
        fn qsort(base: *mut c_void, nmemb: usize, size: usize, compar: QsortCmp);
        /// `int (*)(const void *, const void *)`
        type QsortCmp = fn(a: *const c_void, b: *const c_void) -> c_int;
    }
}

/// The managed byte `GoFn21Pinned` returns; pinned by the case around the C
/// call.
static PINNED_BYTE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// How many times `GoCount` ran, and on which thread (`pthread_self`) each
/// C thread index called it.
static COUNT: AtomicU64 = AtomicU64::new(0);
static COUNT_THREADS: Mutex<Option<HashMap<i64, libc::pthread_t>>> = Mutex::new(None);
/// Row cthread_lock: the lock GoHoldLock holds for longer than a turn, and
/// how many calls held it.
static HELD: Mutex<u64> = Mutex::new(0);

/// Comparisons made by `GoCompareInt64`.
static COMPARISONS: AtomicU64 = AtomicU64::new(0);

/// Row nested: the innermost `GoNest` panics while this is set.
static NEST_PANIC: AtomicBool = AtomicBool::new(false);

/// The channel `GoBlock` receives from, and the steps the other task made
/// meanwhile.
static BLOCK_CHAN: OnceLock<Chan<i64>> = OnceLock::new();
static OTHER_STEPS: AtomicU64 = AtomicU64::new(0);

cgocheck::export! {
    /// Row export1: returns a new, unpinned managed byte to C.
    fn GoFn21() -> *mut u8 {
        new(42u8).as_ptr()
    }

    /// Row exportok: returns C memory.
    fn GoFn22() -> *mut c_void {
        // SAFETY: malloc has no preconditions; C frees the byte.
        let p = unsafe { libc::malloc(1) };
        assert!(!p.is_null(), "malloc(1) failed");
        // SAFETY: p is one writable byte.
        unsafe { p.cast::<u8>().write(22) };
        p
    }

    /// Returns a managed byte that the case pinned: allowed (rule 4).
    fn GoFn21Pinned() -> *mut u8 {
        PINNED_BYTE.load(Ordering::Acquire)
    }

    /// Row retmap: returns a managed map.
    fn GoMap47() -> GcMap<i64, i64> {
        let m = GcMap::new();
        m.insert(47, 47);
        m
    }

    /// Row handle: C hands back the Handle it kept; managed code resolves it.
    fn GoHandleValue(h: usize) -> i64 {
        *Handle::from_raw(h).value::<i64>()
    }

    /// Row cthread: counts calls and remembers which OS thread made the calls
    /// of each C thread index; returns 1.
    fn GoCount(thread: i64) -> i64 {
        COUNT.fetch_add(1, Ordering::Relaxed);
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let mut seen = COUNT_THREADS.lock().unwrap();
        let first = *seen.get_or_insert_with(HashMap::new).entry(thread).or_insert(me);
        assert_eq!(first, me, "the calls of C thread {thread} ran on two different OS threads");
        1
    }

    /// Row cthread_lock: holds a `std` mutex while computing for 25 ms
    /// (longer than the 10 ms a task may keep its P while work waits), then
    /// returns 1. A callback must never be given a scheduling turn there:
    /// the P would go to the next C thread's callback, which blocks its
    /// thread on this mutex while holding the only P, and the holder could
    /// never get a P back to release it.
    fn GoHoldLock(thread: i64) -> i64 {
        let _ = thread;
        let mut held = HELD.lock().unwrap();
        let until = std::time::Instant::now() + std::time::Duration::from_millis(25);
        let mut spins = 0u64;
        while std::time::Instant::now() < until {
            for _ in 0..1000 {
                spins = std::hint::black_box(spins + 1);
            }
        }
        *held += 1;
        1
    }

    /// qsort's comparator, called by libc with pointers into managed data.
    fn GoCompareInt64(a: *const c_void, b: *const c_void) -> c_int {
        COMPARISONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: qsort passes pointers to two elements of the i64 array it sorts.
        let (a, b) = unsafe { (*a.cast::<i64>(), *b.cast::<i64>()) };
        a.cmp(&b) as c_int
    }

    /// Panics, with no managed caller: C created the thread that calls it.
    fn GoPanic() {
        panic!("boom from a C thread");
    }

    /// Row nested: `depth` managed levels below this one, each through C
    /// (`ct_nest`); the innermost panics when `NEST_PANIC` is set. Returns
    /// 1 at depth 1, and 1000 + 1 more per level above.
    fn GoNest(depth: i64) -> i64 {
        if depth <= 1 {
            if NEST_PANIC.load(Ordering::Relaxed) {
                panic!("boom in the innermost callback");
            }
            return 1;
        }
        // SAFETY: integer argument and result; ct_nest calls back into GoNest.
        let r = unsafe { ct_nest(depth - 1) };
        r + 1
    }

    /// Works while its C caller waits: allocates `n` managed objects, spawns
    /// four tasks that allocate too, joins them; returns the sum of every
    /// value allocated.
    fn GoWork(n: i64) -> i64 {
        // Kept in managed slices, which the collector sees (a `Vec` is Rust
        // memory it does not scan).
        let objs = cgocheck::new_slice::<Gc<i64>>(n as usize);
        // SAFETY: `objs` is this call's alone.
        for (e, i) in unsafe { objs.as_mut_slice() }.iter_mut().zip(0..) {
            *e = new(i);
        }
        let mine: i64 = objs.as_slice().iter().map(|g| **g).sum();
        let handles: Vec<_> = (0..4i64)
            .map(|k| {
                cgocheck::spawn(move || {
                    let v = cgocheck::new_slice::<Gc<i64>>(10_000);
                    // SAFETY: `v` is this task's alone.
                    for (e, i) in unsafe { v.as_mut_slice() }.iter_mut().zip(0..) {
                        *e = new(i * k);
                    }
                    cgocheck::yield_now();
                    v.as_slice().iter().map(|g| **g).sum::<i64>()
                })
            })
            .collect();
        let spawned: i64 = handles.into_iter().map(|h| h.join()).sum();
        mine + spawned
    }

    /// Blocks on a channel until another task sends, then sleeps; returns
    /// the value received.
    fn GoBlock() -> i64 {
        let v = BLOCK_CHAN.get().expect("the block case made the channel").recv().expect("a value");
        cgocheck::sleep(std::time::Duration::from_millis(2));
        v
    }

    /// Called by a C function declared `#[nocallback]`: never runs.
    fn GoNoCallback() -> c_int {
        unreachable!("GoNoCallback ran although its C caller is declared nocallback")
    }
}

/// Row export1: C keeps an unpinned managed pointer returned by an exported
/// function. Level 0 lets it through; 1 and 2 stop it at the return.
fn export1() {
    // SAFETY: C reads the byte GoFn21 returns; it is live (no collector).
    assert_eq!(unsafe { ct_call_gofn21() }, 42);
}

/// Row exportok: returning C memory is always fine.
fn exportok() {
    // SAFETY: plain call; C frees what GoFn22 returns.
    assert_eq!(unsafe { ct_call_gofn22() }, 22);
}

/// A pinned managed pointer may be returned to C, and read there.
fn exportpinned() {
    let b: Gc<u8> = new(7u8);
    let mut pinner = Pinner::new();
    pinner.pin(b);
    PINNED_BYTE.store(b.as_ptr(), Ordering::Release);
    // SAFETY: C reads the pinned byte, which outlives the call.
    assert_eq!(unsafe { ct_call_gofn21_pinned() }, 7);
    pinner.unpin();
}

/// Row retmap: a managed map returned to C.
fn retmap() {
    // SAFETY: C only compares the result with NULL.
    assert_eq!(unsafe { ct_call_gomap47() }, 1);
}

/// Row handle: C keeps a Handle across calls, then calls back with it and
/// the managed side resolves the value.
fn handle() {
    let h = Handle::new(4242i64);
    // SAFETY: integer arguments and results; GoHandleValue is exported.
    unsafe { ct_cb_keep_handle(h.as_raw()) };
    // SAFETY: as above.
    assert_eq!(unsafe { ct_cb_use_kept_handle() }, 4242);
    // SAFETY: as above.
    assert_eq!(unsafe { ct_cb_use_kept_handle() }, 4242, "the handle stays valid across calls");
    h.delete();
}

/// Row handle, second half: C calls back with a Handle that managed code
/// deleted; resolving it panics with Go's words, never a stale value.
fn handle_deleted() {
    let h = Handle::new(7i64);
    // SAFETY: integer arguments and results.
    unsafe { ct_cb_keep_handle(h.as_raw()) };
    // SAFETY: as above.
    assert_eq!(unsafe { ct_cb_use_kept_handle() }, 7);
    h.delete();
    // SAFETY: as above; the callback panics.
    let v = unsafe { ct_cb_use_kept_handle() };
    panic!("a deleted Handle resolved to {v}");
}

/// Row cthread: 8 threads created by C each call an exported function
/// 10000 times. Every call runs, the calls of one C thread run on that
/// thread, and no two C threads share one.
fn cthread() {
    const THREADS: usize = 8;
    const CALLS: usize = 10_000;
    // SAFETY: plain arguments; GoCount is exported.
    let sum = unsafe { ct_cb_threads(THREADS as c_int, CALLS as c_long) };
    assert_eq!(sum, (THREADS * CALLS) as i64, "C's sum of GoCount's results");
    assert_eq!(COUNT.load(Ordering::Relaxed), (THREADS * CALLS) as u64);
    let seen = COUNT_THREADS.lock().unwrap().take().unwrap_or_default();
    assert_eq!(seen.len(), THREADS, "callbacks seen from {} C thread indices", seen.len());
    let mut threads: Vec<_> = seen.values().copied().collect();
    threads.sort_unstable();
    threads.dedup();
    assert_eq!(threads.len(), THREADS, "each C thread is its own OS thread");
    // SAFETY: pthread_self has no preconditions.
    assert!(!threads.contains(&unsafe { libc::pthread_self() }), "no callback ran on the main thread");
    // Each C thread had an extra M bound; the threads have exited (C joined
    // them), so their destructors released those Ms, for reuse.
    let st = cgocheck::sched::stats();
    assert_eq!(st.extra_ms_bound, 0, "extra Ms still bound after the C threads exited");
    assert!(st.extra_ms() <= THREADS, "{} extra Ms for {THREADS} threads", st.extra_ms());
    // A second round of threads reuses them: no M is leaked.
    COUNT.store(0, Ordering::Relaxed);
    // SAFETY: as above.
    let sum = unsafe { ct_cb_threads(THREADS as c_int, 100) };
    assert_eq!(sum, (THREADS * 100) as i64);
    let again = cgocheck::sched::stats();
    assert_eq!(again.extra_ms_bound, 0, "extra Ms still bound after the second round");
    // Twice THREADS threads in all, never more than THREADS at once: without
    // reuse the second round would add up to THREADS more. (The first round
    // may have overlapped less and needed fewer, so the count may grow up to
    // THREADS, not past it.)
    assert!(
        again.extra_ms() <= THREADS,
        "the second round made new extra Ms instead of reusing them: {} for {} threads",
        again.extra_ms(),
        2 * THREADS
    );
}

/// Row cthread_lock: at GOMAXPROCS=1, 3 C threads call GoHoldLock 4 times
/// each; each call holds a mutex for 25 ms while the others' callbacks wait
/// for the one P. Every call finishes (the harness's watchdog fails a
/// deadlock): callbacks take no scheduling turns.
fn cthread_lock() {
    const THREADS: usize = 3;
    const CALLS: usize = 4;
    cgocheck::set_gomaxprocs(1);
    // SAFETY: plain arguments; GoHoldLock is exported.
    let sum = unsafe { ct_cb_lock_threads(THREADS as c_int, CALLS as c_long) };
    assert_eq!(sum, (THREADS * CALLS) as i64, "C's sum of GoHoldLock's results");
    assert_eq!(*HELD.lock().unwrap(), (THREADS * CALLS) as u64);
}

/// libc's qsort sorts 10000 managed int64s with a managed comparator.
fn qsort_managed_comparator() {
    const N: usize = 10_000;
    let data = new_slice::<i64>(N);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    // SAFETY: no other reference to the fresh slice's elements exists.
    for v in unsafe { data.as_mut_slice() } {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *v = (x % 2001) as i64 - 1000;
    }
    let mut want = data.as_slice().to_vec();
    want.sort_unstable();
    // SAFETY: data holds N initialised i64s; the comparator reads two of them
    // at a time and returns their order.
    unsafe { qsort(elem(&data, 0).as_void(), N, size_of::<i64>(), QsortCmp::new(GoCompareInt64)) };
    assert_eq!(data.as_slice(), &want[..], "qsort with the managed comparator sorted the managed data");
    assert!(COMPARISONS.load(Ordering::Relaxed) >= (N - 1) as u64, "the comparator ran");
}

/// A panic in a callback on a thread C created has no managed caller to
/// unwind into: it ends the program with a report, never unwinds into C.
fn panic_on_c_thread() {
    // SAFETY: plain call; GoPanic is exported.
    unsafe { ct_cb_panic_on_c_thread() };
    panic!("the program continued after a callback panicked on a C thread");
}

/// Row nocallback: a C function declared `#[nocallback]` calls an exported
/// function. The callback is refused with a panic naming it, at every level
/// (a broken promise, not a pointer check).
fn nocallback() {
    // SAFETY: plain call; the callback it makes is refused.
    let r = unsafe { ct_nocallback_calls_go() };
    panic!("the nocallback C function's callback ran and returned {r}");
}

/// The C-call state of the calling task's M must be at rest: no C call in
/// progress, not in C, the g0 SP where it was before the callbacks, no
/// extra M bound (no C thread has called in).
fn assert_at_rest(rest: &cgocheck::sched::MStats) {
    let now = cgocheck::sched::current_m_stats().expect("the main task runs on an M");
    assert_eq!(now.id, rest.id, "the main task stays on its M");
    assert_eq!(now.ncgo, 0, "no C call in progress");
    assert!(!now.incgo, "not in C");
    assert_eq!(now.g0_sp, rest.g0_sp, "the g0 SP is back at its resting value");
    assert_eq!(cgocheck::sched::stats().extra_ms_bound, 0, "no extra M bound");
}

/// Row nested: managed → C → managed → C → managed. A panic in the
/// innermost managed frame skips both C frames (their code after the
/// callback never runs), passes through the middle managed level, and is
/// caught by the outermost managed caller; the M's state is back at rest,
/// and 10000 more nested calls (and a deeper one) run normally on it.
fn nested() {
    let rest = cgocheck::sched::current_m_stats().expect("the main task runs on an M");
    NEST_PANIC.store(true, Ordering::Relaxed);
    // SAFETY: integer argument and result; the innermost callback panics.
    let caught = std::panic::catch_unwind(|| unsafe { ct_nest(2) }).expect_err("the innermost panic reaches us");
    let msg = caught.downcast_ref::<&str>().copied().unwrap_or("");
    assert_eq!(msg, "boom in the innermost callback");
    // SAFETY: plain call.
    assert_eq!(unsafe { ct_nest_after() }, 0, "a C frame ran after the panic");
    assert_at_rest(&rest);
    // A deeper one, caught too.
    // SAFETY: as above.
    assert!(std::panic::catch_unwind(|| unsafe { ct_nest(8) }).is_err());
    // SAFETY: plain call.
    assert_eq!(unsafe { ct_nest_after() }, 0, "a C frame ran after the panic");
    assert_at_rest(&rest);
    NEST_PANIC.store(false, Ordering::Relaxed);
    for _ in 0..10_000 {
        // SAFETY: as above; nothing panics now.
        assert_eq!(unsafe { ct_nest(2) }, 2002);
    }
    // SAFETY: as above.
    assert_eq!(unsafe { ct_nest(8) }, 8 * 1001);
    // SAFETY: plain call.
    assert_eq!(unsafe { ct_nest_after() }, 2 * 10_000 + 8);
    assert_at_rest(&rest);
}

/// A callback that allocates 100000 objects and spawns and joins four tasks
/// while its C caller waits.
fn work() {
    const N: i64 = 100_000;
    let rest = cgocheck::sched::current_m_stats().expect("the main task runs on an M");
    // SAFETY: integer argument and result.
    let r = unsafe { ct_cb_work(N) };
    let per_task = (0..10_000i64).sum::<i64>();
    assert_eq!(r, (0..N).sum::<i64>() + (0..4).map(|k| k * per_task).sum::<i64>());
    assert_at_rest(&rest);
}

/// With GOMAXPROCS=1, a callback blocks on a channel and sleeps while
/// another task runs on the one P and sends to it.
fn block() {
    cgocheck::set_gomaxprocs(1);
    let rest = cgocheck::sched::current_m_stats().expect("the main task runs on an M");
    let ch = BLOCK_CHAN.get_or_init(|| Chan::new(0)).clone();
    let other = cgocheck::spawn(move || {
        for _ in 0..100 {
            OTHER_STEPS.fetch_add(1, Ordering::Relaxed);
            cgocheck::yield_now();
        }
        ch.send(77);
    });
    // SAFETY: integer result; GoBlock blocks until `other` sends.
    assert_eq!(unsafe { ct_cb_block() }, 77);
    assert_eq!(OTHER_STEPS.load(Ordering::Relaxed), 100, "the other task ran while the callback waited");
    other.join();
    assert_eq!(cgocheck::gomaxprocs(), 1);
    assert_at_rest(&rest);
}

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
//! the callback, and a panic in a callback that C made is fatal (exit
//! status 2) as long as the callback path cannot unwind through C frames.

// The C archive built from csrc/ is attached to the c_tests library; naming
// the crate links it into this binary.
use c_tests as _;
use cgocheck::{elem, new, new_slice, Gc, GcMap, Handle, Pinner};
use core::ffi::{c_int, c_long, c_void};
use std::collections::HashMap;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Mutex;

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("export1", export1),
    ("exportok", exportok),
    ("exportpinned", exportpinned),
    ("retmap", retmap),
    ("handle", handle),
    ("handle_deleted", handle_deleted),
    ("cthread", cthread),
    ("qsort", qsort_managed_comparator),
    ("panic_on_c_thread", panic_on_c_thread),
    ("nocallback", nocallback),
];

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    match CASES.iter().find(|(n, _)| *n == name) {
        Some((_, case)) => cgocheck::run(*case),
        None => {
            eprintln!("callbacks: unknown case {name:?}; the cases are:");
            for (n, _) in CASES {
                eprintln!("  {n}");
            }
            std::process::exit(3);
        }
    }
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
        fn ct_cb_panic_on_c_thread();
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

/// Comparisons made by `GoCompareInt64`.
static COMPARISONS: AtomicU64 = AtomicU64::new(0);

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

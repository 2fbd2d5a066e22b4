//! Liveness through C, one test per root kind that involves C (the others
//! are in runtime/tests/gc_roots.rs, which also tells the common story),
//! each at CGOCHECK=0, 1 and 2 in a child process of its own:
//!
//! - (b) the stack of a task blocked in a 200 ms C call while 1000 other
//!   tasks allocate: an `Obj` in the task's frame, and a `Leaf` whose only
//!   reference is a temporary of the call expression, passed to C — C
//!   hashes the leaf's words after sleeping, so a leaf freed and reused
//!   meanwhile changes the hash. A control task blocked in C with only a
//!   hidden address must see its object freed during its calls.
//! - (f) a Pinner: C keeps a pointer into a pinned object in a C global;
//!   after `unpin` that pointer alone (C memory is no root) does not keep
//!   the object: it is freed.
//! - (g) a Handle kept by C as an integer in a C global; `delete` frees it.
//! - (h) a callback task on a thread C created: the exported function
//!   holds an object on its stack across 100 collections, and sees a
//!   control object it does not hold freed meanwhile.
//!
//! The C half is csrc/gc_roots.c. These tests live in c-tests rather than
//! runtime/tests because this package's build script compiles real C.

extern crate c_tests;

#[path = "../../runtime/tests/gc_util/mod.rs"]
mod gc_util;
#[path = "../../runtime/tests/sched_util/mod.rs"]
mod sched_util;

use cgocheck::{elem, gc, run_test, spawn, Gc, Handle, Pinner};
use core::ffi::c_int;
use gc_util::*;
use sched_util::{child_passes, is_child, watched};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

cgocheck::c_functions! {
    // csrc/gc_roots.c
    extern "C" {
        /// Sleeps `ms` ms, then hashes the `n` words at `w`.
        fn ct_gc_hold_and_hash(w: *const u64, n: c_int, ms: c_int) -> u64;
        /// Sleeps `ms` ms.
        fn ct_gc_sleep_ms(ms: c_int);
        /// Keeps `w` in a C global.
        fn ct_gc_keep_words(w: *const u64);
        /// Hashes the first `n` words C kept.
        fn ct_gc_hash_kept(n: c_int) -> u64;
        /// Clears C's kept pointer.
        fn ct_gc_forget_words();
        /// Keeps a Handle's integer in a C global.
        fn ct_gc_keep_handle(h: usize);
        /// The integer C kept.
        fn ct_gc_kept_handle() -> usize;
        /// A thread C creates calls GoGcHold(seed); its result.
        fn ct_gc_callback_on_c_thread(seed: i64) -> i64;
    }
}

/// Collections each rooted object must survive.
const CYCLES: usize = 100;

/// csrc/gc_roots.c's hash of pattern words.
fn hash_words(w: &[u64]) -> u64 {
    w.iter().fold(0x1234_5678u64, |h, x| h.rotate_left(5) ^ x)
}

/// In the parent: runs this test in a child at each level and requires it
/// to pass. In the child: runs `body` as the main task, watched.
fn at_levels(name: &str, body: fn()) {
    if is_child() {
        watched(name, || run_test(body));
    } else {
        for level in ["0", "1", "2"] {
            child_passes(name, &[("CGOCHECK", level)]);
        }
    }
}

fn survive(t: &Tracked, what: &str, mut also: impl FnMut()) {
    for i in 0..CYCLES {
        gc();
        if i % 10 == 9 {
            t.assert_alive(&format!("{what}, after {} collections", i + 1));
            also();
        }
    }
}

// ---- (b) a task blocked in C while 1000 tasks allocate ----

static CHURN_STOP: AtomicBool = AtomicBool::new(false);
static DRIVER_STOP: AtomicBool = AtomicBool::new(false);
/// Collections the driver task completed.
static DRIVEN: AtomicU64 = AtomicU64::new(0);
static BLOCKED_TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

/// One of the 1000 allocating tasks: keeps 4 leaves, replaces one per
/// round, checks the one it replaces.
fn churn(k: u64) -> u64 {
    let mut ring = [Gc::<Leaf>::null(); 4];
    let mut n = 0u64;
    while !CHURN_STOP.load(Ordering::Relaxed) {
        let slot = (n % 4) as usize;
        if !ring[slot].is_null() {
            check_leaf(&ring[slot], (k << 32) | (n - 4), "a churning task's own leaf");
        }
        ring[slot] = make_leaf((k << 32) | n);
        n += 1;
        cgocheck::yield_now();
    }
    n
}

/// Control: blocked in C holding only a hidden address; the object must be
/// freed during the calls.
#[inline(never)]
fn make_hidden_tracked(seed: u64) -> Tracked {
    Tracked::new(make_obj(seed))
}

fn blocked_in_c() {
    CHURN_STOP.store(false, Ordering::SeqCst);
    let churners: Vec<_> = (0..1000).map(|k| spawn(move || churn(k))).collect();
    // A plain thread forces collections (gc() works from any thread), a
    // millisecond apart: back to back they would leave the world stopped
    // nearly all the time, and the allocating tasks would hardly run.
    let driver = std::thread::spawn(|| {
        while !DRIVER_STOP.load(Ordering::SeqCst) {
            gc();
            DRIVEN.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    });

    let control = spawn(|| {
        let t = make_hidden_tracked(0xB0);
        scrub_stack();
        let mut calls = 0;
        while !t.both_freed() {
            assert!(calls < 100, "(b) control: an object no stack holds was not freed during 20 s of C calls");
            // SAFETY: sleeps; no pointers.
            unsafe { ct_gc_sleep_ms(200) };
            calls += 1;
        }
    });

    let blocked = spawn(|| {
        let obj = make_obj(0xB1);
        *BLOCKED_TRACKED.lock().unwrap() = Some(Tracked::new(obj));
        let mut during = 0;
        let mut calls = 0u64;
        while during < CYCLES as u64 {
            let seed = 0xB100 + calls;
            let want = hash_words(&make_leaf(seed).words);
            let before = cgocheck::mem_stats().num_gc;
            // The leaf's only reference is this temporary: C hashes it
            // after 200 ms of collections.
            // SAFETY: C reads 16 words of a live leaf.
            let got = unsafe { ct_gc_hold_and_hash(make_leaf(seed).as_ptr().cast(), 16, 200) };
            assert_eq!(got, want, "(b) a leaf passed to C (a temporary of the call) changed during the call");
            // Collections that completed during the call, less one that
            // may have started before it.
            let after = cgocheck::mem_stats().num_gc;
            during += after.saturating_sub(before + 1);
            eprintln!("(b) call {calls}: {} collections completed during it", after - before);
            calls += 1;
            assert!(calls < 100, "(b) fewer than {CYCLES} collections in {calls} calls of 200 ms");
        }
        check_obj(obj, 0xB1, "(b) the object on the stack of a task blocked in C");
        calls
    });
    let calls = blocked.join();
    let t = BLOCKED_TRACKED.lock().unwrap().take().expect("the blocked task published its tracker");
    control.join();
    CHURN_STOP.store(true, Ordering::SeqCst);
    let allocated: u64 = churners.into_iter().map(|h| h.join()).sum();
    DRIVER_STOP.store(true, Ordering::SeqCst);
    // A task must not block its thread on the driver (a std join is no
    // blocking call the runtime knows of: the world could not stop for the
    // driver's gc(), which would wait for this task's P); it sleeps until
    // the driver is done.
    while !driver.is_finished() {
        cgocheck::sleep(std::time::Duration::from_millis(1));
    }
    driver.join().expect("the driver thread");
    eprintln!(
        "(b): {calls} calls of 200 ms, {} collections in all, {allocated} leaves allocated",
        DRIVEN.load(Ordering::SeqCst)
    );
    t.wait_freed("(b) the object after its task ended");
}

#[test]
fn root_stack_of_task_blocked_in_c() {
    at_levels("root_stack_of_task_blocked_in_c", blocked_in_c);
}

// ---- (f) a Pinner, with C keeping the pointer ----

static PINNER: Mutex<Option<Pinner>> = Mutex::new(None);

fn pinned_kept_by_c() {
    let t = in_task(|| {
        let obj = make_obj(0xF1);
        let mut p = Pinner::new();
        p.pin(obj);
        // SAFETY: C keeps a pointer into a pinned object.
        unsafe { ct_gc_keep_words(elem(&obj.words, 0)) };
        *PINNER.lock().unwrap() = Some(p);
        Tracked::new(obj)
    });
    let want = hash_words(&(0..31).map(|i| pattern(0xF1, 100 + i)).collect::<Vec<_>>());
    // SAFETY: C hashes the words it keeps, in a pinned object.
    let c_sees = || assert_eq!(unsafe { ct_gc_hash_kept(31) }, want, "(f) C's view of the pinned object changed");
    survive(&t, "(f) an object only a Pinner keeps (C holds a pointer into it)", c_sees);
    let h = t.hidden();
    // SAFETY: pinned until below.
    in_task(move || check_obj(unsafe { reveal(h) }, 0xF1, "(f) the pinned object"));
    // Unpinned on a task that ends: `unpin` handles the object's address.
    in_task(|| PINNER.lock().unwrap().take().expect("the Pinner").unpin());
    t.wait_freed("(f) the object after unpin: only C memory points to it");
    // SAFETY: C forgets the dangling pointer.
    unsafe { ct_gc_forget_words() };
}

#[test]
fn root_pinner_with_c_keeping_the_pointer() {
    at_levels("root_pinner_with_c_keeping_the_pointer", pinned_kept_by_c);
}

// ---- (g) a Handle held by C ----

fn handle_held_by_c() {
    let t = in_task(|| {
        let obj = make_obj(0x61);
        // SAFETY: C keeps an integer.
        unsafe { ct_gc_keep_handle(Handle::new(obj).as_raw()) };
        Tracked::new(obj)
    });
    survive(&t, "(g) an object only a Handle kept by C holds", || {});
    in_task(|| {
        // SAFETY: C returns the integer it kept.
        let h = Handle::from_raw(unsafe { ct_gc_kept_handle() });
        check_obj(*h.value::<Gc<Obj>>(), 0x61, "(g) the object behind the Handle");
    });
    // SAFETY: as above.
    in_task(|| Handle::from_raw(unsafe { ct_gc_kept_handle() }).delete());
    t.wait_freed("(g) the object after its Handle was deleted");
}

#[test]
fn root_handle_held_by_c() {
    at_levels("root_handle_held_by_c", handle_held_by_c);
}

// ---- (h) a callback task on a thread C created ----

static CALLBACK_TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

cgocheck::export! {
    /// Called by a thread csrc/gc_roots.c creates: holds an object across
    /// 100 collections; returns 1 when it and its child are intact and a
    /// control object it did not hold was freed meanwhile.
    fn GoGcHold(seed: i64) -> i64 {
        hold_in_callback(seed as u64)
    }
}

fn hold_in_callback(seed: u64) -> i64 {
    let control = make_hidden_tracked(seed ^ 0xC0);
    scrub_stack();
    let obj = make_obj(seed);
    let t = Tracked::new(obj);
    for i in 0..CYCLES {
        gc();
        if i % 10 == 9 {
            t.assert_alive(&format!("(h) an object on a callback's stack on a C thread, after {} collections", i + 1));
        }
    }
    control.wait_freed("(h) control: an object the callback does not hold");
    check_obj(obj, seed, "(h) the object on the callback's stack");
    *CALLBACK_TRACKED.lock().unwrap() = Some(t);
    1
}

fn callback_on_c_thread() {
    // Other tasks allocate meanwhile.
    CHURN_STOP.store(false, Ordering::SeqCst);
    let churners: Vec<_> = (0..8).map(|k| spawn(move || churn(k))).collect();
    // SAFETY: C creates a thread, which calls GoGcHold.
    let r = unsafe { ct_gc_callback_on_c_thread(0x81) };
    assert_eq!(r, 1, "(h) the callback's result");
    CHURN_STOP.store(true, Ordering::SeqCst);
    for h in churners {
        h.join();
    }
    let t = CALLBACK_TRACKED.lock().unwrap().take().expect("the callback published its tracker");
    t.wait_freed("(h) the object after the callback returned");
}

#[test]
fn root_callback_task_on_c_thread() {
    at_levels("root_callback_task_on_c_thread", callback_on_c_thread);
}

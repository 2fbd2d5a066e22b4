//! Liveness through the roots the runtime keeps in Rust memory for tasks
//! (`gc/roots.rs`'s registry and task tables), end to end with real
//! collections: an object whose only reference is
//!
//! - a task's result waiting for `join` (the join packet);
//! - the value of a sender blocked on a channel (its slot) — the sender is
//!   a plain thread, whose stack the collector does not scan, so only the
//!   slot can keep the object;
//! - the closure of a task that has not started (its entry record);
//! - a task-local value of a parked task;
//! - a live `Handle`'s value
//!
//! survives collections with its contents intact, and is freed once that
//! reference is gone. (The root kinds of the list (a)–(i) are
//! tests/gc_roots.rs and c-tests' gc_roots_c.rs.)
//!
//! As there, addresses are kept hidden (gc_util's `Tracked`), objects are
//! made and checked in short tasks, and freeing is observed through
//! cleanups. Each test runs in a child process of its own under a
//! watchdog.

mod gc_util;
mod sched_util;

use cgocheck::{gc, spawn, Chan, Gc, Handle, Root};
use gc_util::*;
use sched_util::in_child;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Makes a tracked object and returns its tracker; not inlined, so the
/// plain address stays in a dead frame (scrubbed by the caller).
#[inline(never)]
fn make_tracked(seed: u64) -> Tracked {
    Tracked::new(make_obj(seed))
}

// ---- a join result ----

static JOIN_TRACKED: Mutex<Option<Tracked>> = Mutex::new(None);

fn join_result() {
    let h = spawn(|| {
        let obj = make_obj(0x51);
        *JOIN_TRACKED.lock().unwrap() = Some(Tracked::new(obj));
        obj
    });
    while !h.is_finished() {
        cgocheck::sleep(Duration::from_millis(1));
    }
    let t = JOIN_TRACKED.lock().unwrap().take().expect("the task tracked its object");
    survive(&t, "an object only a join result holds");
    in_task(move || check_obj(h.join(), 0x51, "the joined result"));
    t.wait_freed("the object after its result was joined");
}

#[test]
fn root_join_result() {
    in_child("root_join_result", &[], join_result);
}

// ---- a blocked sender's value ----

static SENDING: AtomicBool = AtomicBool::new(false);

fn blocked_sender() {
    let ch: Chan<Gc<Obj>> = Chan::new(0);
    let (t, root) = in_task(|| {
        let obj = make_obj(0x52);
        (Tracked::new(obj), Root::new(obj))
    });
    // A plain thread (its stack is not scanned) takes the object out of
    // its Root and sends it: from then on only the sender's slot holds it.
    let tx = ch.clone();
    let sender = std::thread::spawn(move || {
        let obj = root.into_inner();
        SENDING.store(true, Ordering::SeqCst);
        tx.send(obj);
    });
    while !SENDING.load(Ordering::SeqCst) {
        cgocheck::sleep(Duration::from_millis(1));
    }
    // The send blocks within microseconds; collect after it has.
    cgocheck::sleep(Duration::from_millis(50));
    survive(&t, "an object only a blocked sender's slot holds");
    in_task(move || check_obj(ch.recv().expect("the sent object"), 0x52, "the object the blocked sender sent"));
    sender.join().expect("the sender thread");
    t.wait_freed("the object after it was received");
}

#[test]
fn root_blocked_sender() {
    in_child("root_blocked_sender", &[], blocked_sender);
}

// ---- the closure of a task not yet started ----

/// Collections completed when the task was spawned and when it started.
static SPAWNED_AT: AtomicU64 = AtomicU64::new(0);
static STARTED_AT: AtomicU64 = AtomicU64::new(0);

/// Spawns a task whose closure holds the object (revealed here, in a dead
/// frame once this returns).
#[inline(never)]
fn spawn_holding(hidden: usize, seed: u64) -> cgocheck::JoinHandle<()> {
    // SAFETY: the object is alive: its tracker's cleanup has not run, and
    // nothing collects between the reveal and the spawn (no safepoint).
    let obj = unsafe { reveal(hidden) };
    SPAWNED_AT.store(num_gc(), Ordering::SeqCst);
    spawn(move || {
        STARTED_AT.store(num_gc(), Ordering::SeqCst);
        assert!(is_live_object(obj.addr()), "an unstarted task's closure did not keep its object");
        check_obj(obj, seed, "the object an unstarted task's closure holds");
    })
}

fn unstarted_closure() {
    // GOMAXPROCS=1: the spawned task waits for the only P, which this
    // task holds until it collects.
    let mut collected_before_start = 0;
    for i in 0..20u64 {
        let seed = 0x5300 + i;
        let t = make_tracked(seed);
        scrub_stack();
        let h = spawn_holding(t.hidden(), seed);
        scrub_stack();
        gc();
        h.join();
        if STARTED_AT.load(Ordering::SeqCst) > SPAWNED_AT.load(Ordering::SeqCst) {
            collected_before_start += 1;
        }
        scrub_stack();
        t.wait_freed("the object after the task that held it ended");
    }
    assert!(
        collected_before_start > 0,
        "no task started after a collection: the test did not exercise unstarted closures"
    );
}

#[test]
fn root_unstarted_closure() {
    in_child("root_unstarted_closure", &[("GOMAXPROCS", "1")], unstarted_closure);
}

// ---- a task-local value ----

cgocheck::task_local! {
    static LOCAL: std::cell::Cell<Gc<Obj>> = std::cell::Cell::new(Gc::null());
}

/// Stores the object in the calling task's LOCAL (revealed in this frame,
/// dead once it returns).
#[inline(never)]
fn set_local(hidden: usize) {
    // SAFETY: alive: the caller's tracker has not seen it freed, and no
    // collection runs before it is stored (no safepoint).
    LOCAL.with(|l| l.set(unsafe { reveal(hidden) }));
}

static LOCAL_WAKE: AtomicBool = AtomicBool::new(false);
static LOCAL_HIDDEN: AtomicUsize = AtomicUsize::new(0);

fn task_local_value() {
    let t = in_task(|| make_tracked(0x54));
    LOCAL_HIDDEN.store(t.hidden(), Ordering::SeqCst);
    let ready: Chan<()> = Chan::new(1);
    let tx = ready.clone();
    let h = spawn(move || {
        set_local(LOCAL_HIDDEN.load(Ordering::SeqCst));
        scrub_stack();
        tx.send(());
        while !LOCAL_WAKE.load(Ordering::SeqCst) {
            cgocheck::park();
        }
        check_obj(LOCAL.with(|l| l.get()), 0x54, "the object in a task-local");
    });
    ready.recv();
    survive(&t, "an object only a parked task's task-local holds");
    LOCAL_WAKE.store(true, Ordering::SeqCst);
    h.task().unpark();
    h.join();
    scrub_stack();
    t.wait_freed("the object after the task (and its task-locals) ended");
}

#[test]
fn root_task_local() {
    in_child("root_task_local", &[], task_local_value);
}

// ---- a Handle's value ----

fn handle_value() {
    let (t, handle) = in_task(|| {
        let obj = make_obj(0x55);
        (Tracked::new(obj), Handle::new(obj))
    });
    survive(&t, "an object only a Handle holds");
    in_task(move || check_obj(*handle.value::<Gc<Obj>>(), 0x55, "the object behind the Handle"));
    handle.delete();
    t.wait_freed("the object after its Handle was deleted");
}

#[test]
fn root_handle() {
    in_child("root_handle", &[], handle_value);
}

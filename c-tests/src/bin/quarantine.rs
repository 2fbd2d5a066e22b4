//! The quarantine case binary: `quarantine NAME` runs one case of C (or
//! Rust) using a managed object after the collector freed it, and exits.
//!
//! At `CGOCHECK=2` the collector's frees go to a quarantine (poisoned, held
//! from reuse; `runtime/src/gc/quarantine.rs`), so each misuse below faults
//! or is found, and the report says what happened. At levels 0 and 1 the
//! same programs read or corrupt whatever the memory holds next: undefined
//! behaviour that `tests/quarantine.rs` does not judge (the spec's note ²),
//! except where a case must pass at every level.
//!
//! Each case runs as the main task of `cgocheck::run`; the C half is
//! csrc/quarantine.c, a library that keeps the pointer it is lent.

use c_tests::ffi::quarantine::*;
use cgocheck::{heap, new, new_slice, Gc, ManagedMemory, Pinner, Region};
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};

cgocheck::c_functions! {
    extern "C" {
        /// Calls `QMakeRecord(7)` and keeps the record it returns
        /// (csrc/quarantine_result.c).
        fn q_keep_result();
    }
}

/// The record `QMakeRecord` returns; pinned by the case around the C call
/// (a result must be pinned to pass the result check).
static RESULT: AtomicPtr<QRec> = AtomicPtr::new(std::ptr::null_mut());

cgocheck::export! {
    /// Returns the pinned record of the case keep_result to C.
    fn QMakeRecord(id: i64) -> *mut QRec {
        let r = RESULT.load(Ordering::Acquire);
        // SAFETY: the case made the record live and pinned before calling C.
        unsafe { (*r).id = id };
        r
    }
}

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("keep", keep),
    ("keep_pinned", keep_pinned),
    ("write_after_free", write_after_free),
    ("write_then_span_dies", write_then_span_dies),
    ("next_pointer", next_pointer),
    ("box_use", box_use),
    ("keep_result", keep_result),
    ("keep_other_thread", keep_other_thread),
    ("bound", bound),
];

fn main() {
    let (_, case) = c_tests::harness::chosen_case("quarantine", CASES);
    cgocheck::run(case);
}

/// An address kept where the conservative stack scan cannot see it.
fn hide(addr: usize) -> usize {
    addr ^ 0x5a5a_5a5a_5a5a_5a5a
}

/// Zeroes 64 KiB of the stack below the caller's frame, where finished
/// helpers may have left an object's address.
#[inline(never)]
fn scrub_stack() {
    let mut words = [0usize; 8192];
    std::hint::black_box(&mut words);
}

/// Collects until the object at `hide(hidden)` is no longer live (a stale
/// copy of its address in a register may survive one collection); panics
/// after 20.
/// The caller scrubs its stack first (with [`scrub_stack`]): this frame
/// lies where the helper that made the object had its own.
#[inline(never)]
fn wait_freed(hidden: usize) {
    for _ in 0..20 {
        scrub_stack();
        cgocheck::gc();
        if !matches!(heap().region(hide(hidden)), Region::Heap(_)) {
            return;
        }
    }
    panic!("the record at {:#x} is still live after 20 collections", hide(hidden));
}

/// A new record, lent to C (`q_keep`), which keeps it; returns its hidden
/// address. Nothing managed refers to it afterwards.
#[inline(never)]
fn lend_one(next: *mut QRec) -> usize {
    let r = new(QRec { id: 1, value: 42, next });
    // SAFETY: q_keep stores the pointer; the case decides what follows.
    unsafe { q_keep(r) };
    hide(r.as_ptr() as usize)
}

/// The spec's `quarantine` row: C keeps the pointer, managed code drops its
/// copy, collections run, and C reads through the pointer. At level 2 the
/// record's span has nothing live left, so its pages are inaccessible by
/// the time C runs again and the read faults in `q_read_kept`.
fn keep() {
    let hidden = lend_one(std::ptr::null_mut());
    scrub_stack();
    wait_freed(hidden);
    assert_eq!(q_kept_addr(), hide(hidden), "C kept the record's address");
    // SAFETY: the bug under test: the kept pointer is dangling.
    let v = unsafe { q_read_kept() };
    println!("C read {v} through the kept pointer");
}

/// The same, with the record pinned while C keeps it: it survives 100
/// collections and C reads what managed code wrote, at every level.
fn keep_pinned() {
    let mut pinner = Pinner::new();
    let hidden = {
        let r = new(QRec { id: 1, value: 42, next: std::ptr::null_mut() });
        pinner.pin(r);
        // SAFETY: q_keep stores the pointer; the record is pinned until
        // C is told to forget it below.
        unsafe { q_keep(r) };
        hide(r.as_ptr() as usize)
    };
    for i in 0..100 {
        scrub_stack();
        cgocheck::gc();
        // SAFETY: the kept record is pinned, so it is live.
        let v = unsafe { q_read_kept() };
        assert_eq!(v, 42 + i, "collection {i}: C read {v} through the kept, pinned pointer");
        // SAFETY: as above.
        unsafe { q_write_kept(v + 1) };
    }
    assert!(matches!(heap().region(hide(hidden)), Region::Heap(_)), "the pinned record is live");
    pinner.unpin();
}

/// C writes through the kept pointer after the collector freed the record,
/// when without the quarantine its slot would already hold a new record.
/// A live neighbour keeps the span readable, so the write lands in the
/// poison; it is found when the record leaves the quarantine (pushed out
/// by later frees, `CGOCHECK_QUARANTINE=256KiB`), reported with the offset.
fn write_after_free() {
    let neighbour = neighbour();
    let hidden = lend_one(std::ptr::null_mut());
    scrub_stack();
    wait_freed(hidden);
    // What would have reused the slot.
    let newer: Vec<Gc<QRec>> = (0..64).map(|i| new(QRec { id: i, value: i, next: std::ptr::null_mut() })).collect();
    // SAFETY: the bug under test: a write through a dangling pointer.
    unsafe { q_write_kept(99) };
    // Later frees push the record out of the quarantine.
    for _ in 0..200 {
        let _ = new_slice::<u8>(64 << 10);
        cgocheck::gc();
    }
    assert!(newer.iter().all(|r| r.value == r.id), "a newer record was overwritten");
    std::hint::black_box(neighbour);
    println!("the write after free went unnoticed");
}

/// A new record of the same type: a neighbour in the span of the records
/// the cases lend, alive for as long as the caller keeps it.
#[inline(never)]
fn neighbour() -> Gc<QRec> {
    new(QRec { id: 0, value: 0, next: std::ptr::null_mut() })
}

/// C writes into the freed record while a live neighbour keeps the span
/// readable; then the neighbour dies too, and the span is made
/// inaccessible. The write is found before the span is protected (its
/// release would only zero it), reported with the offset.
fn write_then_span_dies() {
    let (root, hidden_neighbour) = rooted_neighbour();
    let hidden = lend_one(std::ptr::null_mut());
    scrub_stack();
    wait_freed(hidden);
    // SAFETY: the bug under test: a write through a dangling pointer.
    unsafe { q_write_kept(99) };
    drop(root);
    scrub_stack();
    wait_freed(hidden_neighbour);
    // The span is held at the end of that sweep, or when this thread lets
    // it go at its next C call.
    // SAFETY: reads an integer C kept; no pointer is followed.
    let _ = q_kept_addr();
    cgocheck::gc();
    println!("the write after free went unnoticed");
}

/// A neighbour kept alive by a `Root` (no copy of its address stays on
/// the caller's stack), and its hidden address.
#[inline(never)]
fn rooted_neighbour() -> (cgocheck::Root<Gc<QRec>>, usize) {
    let n = neighbour();
    (cgocheck::Root::new(n), hide(n.as_ptr() as usize))
}

/// C follows a pointer it loads from the freed record: the poisoned word is
/// no address, the load through it faults, and the report finds the word
/// it came from in a register. A live neighbour keeps the span readable.
fn next_pointer() {
    let neighbour = neighbour();
    let hidden = lend_one(q_c_record(5));
    scrub_stack();
    wait_freed(hidden);
    // SAFETY: the bug under test.
    let id = unsafe { q_read_kept_next() };
    std::hint::black_box(neighbour);
    println!("C read id {id} through the freed record's next pointer");
}

/// An exported function returns a record, pinned, to C, which keeps it;
/// the program unpins it later, while C still holds it.
#[inline(never)]
fn return_pinned_record() -> usize {
    let r = new(QRec { id: 0, value: 42, next: std::ptr::null_mut() });
    let mut pinner = Pinner::new();
    pinner.pin(r);
    RESULT.store(r.as_ptr(), Ordering::Release);
    // SAFETY: q_keep_result calls QMakeRecord and keeps its result.
    unsafe { q_keep_result() };
    RESULT.store(std::ptr::null_mut(), Ordering::Release);
    pinner.unpin();
    hide(r.as_ptr() as usize)
}

/// C keeps an exported function's result; the program unpins it too early.
/// The report names the exported function and says the object was pinned
/// when C got it.
fn keep_result() {
    let hidden = return_pinned_record();
    scrub_stack();
    wait_freed(hidden);
    // SAFETY: the bug under test.
    let v = unsafe { q_read_kept() };
    println!("C read {v} through the kept result");
}

/// keep_other_thread: how far the lender got, and what it lent.
static PHASE: AtomicU64 = AtomicU64::new(0);
static LENT: AtomicUsize = AtomicUsize::new(0);

/// Waits (yielding to other tasks) until [`PHASE`] reaches `n`.
fn wait_phase(n: u64) {
    while PHASE.load(Ordering::Acquire) < n {
        cgocheck::sleep(std::time::Duration::from_millis(1));
    }
}

/// The record is made and lent on one thread and read by C on another:
/// the lender's thread caches the record's span, and neither its C calls
/// nor `gc()` come to let it go; its next span refill does, so by the time
/// C reads on the main thread the span is inaccessible.
fn keep_other_thread() {
    // Main keeps its thread: the lender starts on another.
    cgocheck::lock_os_thread();
    let main_thread = std::thread::current().id();
    let lender = cgocheck::spawn(move || {
        assert_ne!(std::thread::current().id(), main_thread, "the lender shares the main task's thread");
        LENT.store(lend_one(std::ptr::null_mut()), Ordering::Release);
        PHASE.store(1, Ordering::Release);
        wait_phase(2);
        // Another type's span: a refill, with no C call and no gc().
        for _ in 0..8 {
            let _ = new_slice::<u8>(4000);
        }
        PHASE.store(3, Ordering::Release);
    });
    wait_phase(1);
    scrub_stack();
    wait_freed(LENT.load(Ordering::Acquire));
    PHASE.store(2, Ordering::Release);
    wait_phase(3);
    lender.join();
    // SAFETY: the bug under test.
    let v = unsafe { q_read_kept() };
    println!("C read {v} through the pointer another thread lent");
}

/// A record boxed with the `Gc` built in place: the only copy of the address.
#[inline(never)]
fn boxed() -> (Box<Gc<QRec>>, usize) {
    let b = Box::new(new(QRec { id: 3, value: 33, next: std::ptr::null_mut() }));
    let hidden = hide(b.as_ptr() as usize);
    (b, hidden)
}

/// Rust-side misuse: a `Gc` kept in a `Box` (Rust memory the collector does
/// not scan) and used after its object was freed.
fn box_use() {
    let (b, hidden) = boxed();
    scrub_stack();
    wait_freed(hidden);
    let v = std::hint::black_box(&b).value;
    println!("read {v} through a Gc kept in a Box");
}

/// A churn program: about 256 MiB allocated with 4 MiB live. At level 2 the
/// quarantine holds no more than its bound (`CGOCHECK_QUARANTINE`, set by
/// the test) after every `gc()`, it did hold freed memory, and it released
/// some; at levels 0 and 1 it holds nothing.
fn bound() {
    let level2 = std::env::var("CGOCHECK").as_deref() == Ok("2");
    let root = cgocheck::Root::new(new_slice::<Gc<QRec>>(4096));
    let (mut max_bytes, mut max_objects) = (0, 0);
    for i in 0..(256 << 20) / 4096 {
        let r = new(QRec { id: i, value: i, next: std::ptr::null_mut() });
        // SAFETY: only this task touches the rooted slice.
        unsafe { root.get().as_mut_slice()[i as usize % 4096] = r };
        let _ = new_slice::<u8>(4000);
        if i % 16384 == 0 {
            // After a whole collection, swept: no sweeper is between
            // quarantining a span's slots and trimming to the bound.
            cgocheck::gc();
            let q = cgocheck::mem_stats().quarantine;
            max_bytes = max_bytes.max(q.bytes);
            max_objects = max_objects.max(q.objects);
            if level2 {
                assert!(
                    q.bytes <= q.bound,
                    "allocation {i}: the quarantine holds {} bytes, over its bound {}",
                    q.bytes,
                    q.bound
                );
            } else {
                assert_eq!(q, Default::default(), "allocation {i}: a quarantine at a level below 2");
            }
        }
    }
    let q = cgocheck::mem_stats().quarantine;
    if level2 {
        assert!(q.released_batches > 0, "the quarantine released nothing: {q:?}");
        // A bound of 0 lets everything go at once (after each sweep run).
        assert!(q.bound == 0 || max_objects > 0, "the quarantine held nothing: {q:?}");
    }
    println!("quarantine: at most {max_bytes} bytes and {max_objects} objects held; now {q:?}");
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let hwm = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM in /proc/self/status");
    println!("peak_rss_kb {}", hwm.trim().trim_end_matches(" kB"));
}

//! Helpers shared by the collector's end-to-end tests (runtime/tests/gc_*.rs
//! and, through `#[path]`, c-tests/tests/gc_*.rs).
//!
//! The story every liveness test tells: build an object whose only
//! reference sits in one kind of root, collect 100 times, check that its
//! bytes are still the pattern written into it (and its child's: the child
//! is reachable only through the parent, so it also proves the heap is
//! traced from that root), then remove the root and watch the same object be
//! freed.
//!
//! Two things make "watch it be freed" honest with a conservative stack
//! scan:
//!
//! - The tests never keep an object's address in plain form on a task
//!   stack when they expect it to die: [`Tracked`] keeps addresses XORed
//!   with [`KEY`] (a word that looks like no heap address), and the code
//!   that touches the object runs in short tasks that end (an ended task's
//!   stack is not scanned) or is followed by [`scrub_stack`], which zeroes
//!   the dead words below the current frame that a later call's frame could
//!   leave uninitialised and so expose to the scan.
//! - Freeing is observed through [`cgocheck::add_cleanup`] (the cleanup
//!   sets a flag that does not reach the object), which only fires when the
//!   collector found the object unreachable.

#![allow(dead_code)]

use cgocheck::{add_cleanup, gc, new, CType, Gc, ManagedMemory, Region};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// XORed into every address a test keeps while it expects the object to
/// die: the result has the top bit set, so it is no user-space address and
/// no conservative scan takes it for a pointer.
pub const KEY: usize = 0xA5A5_0000_0000_5A5A;

/// Hides an address from the conservative scan.
pub fn hide(addr: usize) -> usize {
    addr ^ KEY
}

/// The address [`hide`] hid.
pub fn unhide(x: usize) -> usize {
    x ^ KEY
}

/// A pointer-free object, reachable only through its parent [`Obj`].
#[derive(CType)]
#[repr(C)]
pub struct Leaf {
    /// Pattern words.
    pub words: [u64; 16],
}

/// The object each liveness test keeps alive: 256 bytes, a pointer to a
/// [`Leaf`] and pattern words over the rest.
#[derive(CType)]
#[repr(C)]
pub struct Obj {
    /// The child, reachable only from here.
    pub child: Gc<Leaf>,
    /// Pattern words.
    pub words: [u64; 31],
}

/// Word `i` of the pattern for `seed`: distinct per word and per seed, and
/// never zero (a freed, re-zeroed slot does not pass for a live one).
pub fn pattern(seed: u64, i: usize) -> u64 {
    (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)) | 1
}

/// Allocates a [`Leaf`] filled with the pattern for `seed`.
pub fn make_leaf(seed: u64) -> Gc<Leaf> {
    cgocheck::new_with(|l: &mut Leaf| {
        for (i, w) in l.words.iter_mut().enumerate() {
            *w = pattern(seed, i);
        }
    })
}

/// Allocates an [`Obj`] and its child, both filled with patterns for `seed`.
pub fn make_obj(seed: u64) -> Gc<Obj> {
    let child = make_leaf(seed ^ 0xC411D);
    let mut words = [0u64; 31];
    for (i, w) in words.iter_mut().enumerate() {
        *w = pattern(seed, 100 + i);
    }
    new(Obj { child, words })
}

/// Panics unless `leaf` holds the pattern for `seed`.
#[track_caller]
pub fn check_leaf(leaf: &Leaf, seed: u64, what: &str) {
    for (i, w) in leaf.words.iter().enumerate() {
        assert_eq!(*w, pattern(seed, i), "{what}: word {i} of the object was overwritten (freed and reused?)");
    }
}

/// Panics unless `obj` and its child hold the patterns [`make_obj`] wrote.
#[track_caller]
pub fn check_obj(obj: Gc<Obj>, seed: u64, what: &str) {
    assert!(!obj.is_null(), "{what}: the root lost its object");
    for (i, w) in obj.words.iter().enumerate() {
        assert_eq!(*w, pattern(seed, 100 + i), "{what}: word {i} of the object was overwritten (freed and reused?)");
    }
    assert!(!obj.child.is_null(), "{what}: the object's child pointer was overwritten");
    check_leaf(&obj.child, seed ^ 0xC411D, &format!("{what} (its child)"));
}

/// The object whose address [`hide`] hid, for code that knows it is alive
/// and whose use of it ends (its task ends, or it scrubs) before it
/// expects the object to die: the plain address is on its stack meanwhile.
///
/// # Safety
/// The object is alive (rooted) while the result is used.
pub unsafe fn reveal(hidden: usize) -> Gc<Obj> {
    // SAFETY: the caller guarantees the object is alive; the address is
    // the one `new` returned.
    unsafe { Gc::from_ptr(unhide(hidden) as *mut Obj) }
}

/// Whether `addr` is the base of a live heap object.
pub fn is_live_object(addr: usize) -> bool {
    matches!(cgocheck::heap().region(addr), Region::Heap(o) if o.base == addr)
}

/// An object (and its child) whose freeing the test watches, with their
/// addresses hidden ([`hide`]).
pub struct Tracked {
    obj: usize,
    child: usize,
    obj_freed: Arc<AtomicBool>,
    child_freed: Arc<AtomicBool>,
}

impl Tracked {
    /// Registers cleanups on `obj` and its child. The cleanups' argument is
    /// a flag: it does not reach the object.
    pub fn new(obj: Gc<Obj>) -> Tracked {
        let obj_freed = Arc::new(AtomicBool::new(false));
        let child_freed = Arc::new(AtomicBool::new(false));
        let set = |f: Arc<AtomicBool>| f.store(true, Ordering::SeqCst);
        add_cleanup(obj, obj_freed.clone(), set);
        add_cleanup(obj.child, child_freed.clone(), set);
        Tracked { obj: hide(obj.addr()), child: hide(obj.child.addr()), obj_freed, child_freed }
    }

    /// The hidden address of the object.
    pub fn hidden(&self) -> usize {
        self.obj
    }

    /// Whether either cleanup has run.
    pub fn any_freed(&self) -> bool {
        self.obj_freed.load(Ordering::SeqCst) || self.child_freed.load(Ordering::SeqCst)
    }

    /// Whether both cleanups have run.
    pub fn both_freed(&self) -> bool {
        self.obj_freed.load(Ordering::SeqCst) && self.child_freed.load(Ordering::SeqCst)
    }

    /// Panics if the collector freed the object or its child, or if the
    /// heap no longer has them as live objects. The heap is asked from a
    /// task of its own ([`in_task`]): the plain addresses never touch the
    /// caller's stack, where a later frame could expose them to the scan.
    #[track_caller]
    pub fn assert_alive(&self, what: &str) {
        assert!(
            !self.any_freed(),
            "{what}: the object (freed: {}) or its child (freed: {}) was collected while rooted",
            self.obj_freed.load(Ordering::SeqCst),
            self.child_freed.load(Ordering::SeqCst)
        );
        let (obj, child) = (self.obj, self.child);
        let (obj_live, child_live) = in_task(move || (is_live_object(unhide(obj)), is_live_object(unhide(child))));
        assert!(obj_live, "{what}: the heap has no live object at the rooted address");
        assert!(child_live, "{what}: the heap has no live object at the child's address");
    }

    /// Collects until the object's cleanup has run (its child's may wait:
    /// for a test whose own stale registers may still name the child, which
    /// a conservative scan rightly keeps); panics after 20 s.
    #[track_caller]
    pub fn wait_obj_freed(&self, what: &str) {
        wait_for_cleanups(&[&self.obj_freed], what);
    }

    /// Collects until both cleanups have run; panics after 20 s (a root
    /// not dropped, or an address left on a scanned stack).
    #[track_caller]
    pub fn wait_freed(&self, what: &str) {
        wait_for_cleanups(&[&self.obj_freed, &self.child_freed], what);
    }
}

/// Collects until every flag is set (its cleanup ran); panics after 20 s.
#[track_caller]
fn wait_for_cleanups(flags: &[&AtomicBool], what: &str) {
    let t0 = Instant::now();
    let mut cycles = 0;
    while !flags.iter().all(|f| f.load(Ordering::SeqCst)) {
        let state: Vec<bool> = flags.iter().map(|f| f.load(Ordering::SeqCst)).collect();
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{what}: the object was not freed after its root was dropped ({cycles} collections in 20 s; \
             cleanups run (object, child): {state:?})"
        );
        gc();
        cycles += 1;
        cgocheck::sleep(Duration::from_millis(2));
    }
}

/// Zeroes 64 KiB of the stack below the caller's frame, so words that
/// finished calls left there (an object's address among them) cannot show
/// up in an uninitialised slot of a later frame.
#[inline(never)]
pub fn scrub_stack() {
    let mut buf = [0usize; 8192];
    std::hint::black_box(&mut buf);
}

/// Runs `f` on a task of its own, then scrubs that task's stack, and
/// returns `f`'s result: what `f` leaves on its stack is not scanned after
/// the task ends, and `f`'s frames do not survive in a reused stack.
pub fn in_task<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    cgocheck::spawn(move || {
        let r = f();
        scrub_stack();
        r
    })
    .join()
}

/// Collections each rooted object must survive.
pub const CYCLES: usize = 100;

/// Collects [`CYCLES`] times, checking after every 10th that `t` lives.
#[track_caller]
pub fn survive(t: &Tracked, what: &str) {
    for i in 0..CYCLES {
        gc();
        if i % 10 == 9 {
            t.assert_alive(&format!("{what}, after {} collections", i + 1));
        }
    }
}

/// Collects `n` times.
pub fn collect(n: usize) {
    for _ in 0..n {
        gc();
    }
}

/// Collections completed so far.
pub fn num_gc() -> u64 {
    cgocheck::mem_stats().num_gc
}

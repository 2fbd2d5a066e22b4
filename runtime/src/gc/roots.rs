//! Roots: everything the collector marks from besides the heap itself.
//!
//! The collector marks from the roots (decision 2 of the collector's
//! design), with the world stopped, then traces the heap precisely. The
//! roots, in the order [`mark_roots`] feeds them to the [`Marker`]:
//!
//! 1. **Task stacks**, conservatively, with the registers saved at each
//!    task's stop (`stw::for_each_task_stack`), and the registers of tasks
//!    stopped in the preemption signal's handler while blocked in a system
//!    call (`stw::for_each_signal_stop_registers`).
//! 2. **Managed globals**, precisely: each `managed_static!` global's words
//!    chosen by its type's pointer mask (`globals::for_each`). The masks
//!    are the static ones the `CType` derive computed at compile time, so
//!    nothing is built (nor allocated) per cycle.
//! 3. **Pinned objects**: a pinned object and everything it reaches stay
//!    alive, since C may hold it (`pinner::for_each_pinned`).
//! 4. **Live Handles'** values, conservatively (`handle.rs`).
//! 5. **What the runtime keeps for tasks in Rust memory**: the task-local
//!    values of every task (`TaskLocals::scan`, over `task::for_each_g`),
//!    and, in the registry below, tasks' closures (`task::Entry`, from
//!    `spawn` until the task ends), join results not yet taken
//!    (`Packet`), channel buffers and the values of blocked senders and of
//!    receivers not yet woken (`chan.rs`).
//! 6. **[`Root`](super::Root)s**, also in the registry.
//! 7. **Cleanups'** closures and arguments (`cleanup::scan_roots`).
//!
//! Everything kept in Rust memory is scanned conservatively over the
//! value's own bytes: a `Gc` (or a struct of them) held in place is seen;
//! one behind a further Rust indirection (a `Box` or `Vec` inside a
//! channel's value) is not. A value whose alignment or size is below a
//! word holds no pointer word and is skipped.
//!
//! ## The registry
//!
//! Roots that come and go with Rust objects (a `Root`, a task's closure, a
//! channel, a blocked channel operation, a join result) put a [`Node`] at a fixed address
//! inside themselves — the first field of a `#[repr(C)]` record in a `Box`
//! or `Arc` — and link it into an intrusive list on creation, unlinking it
//! before they are freed. The collector walks the lists without allocating;
//! each node's `scan` function knows how to find and read its values.
//! There are [`SHARDS`] lists, each under its own lock, picked by the
//! node's address, so unrelated creations rarely contend.
//!
//! ## Locks (decision 5)
//!
//! The collector takes, while the world is stopped, a shard's lock and then
//! the lock of each node's owner (a channel's state, a slot's value, a
//! packet's state), one at a time; and the locks of the Handle table and
//! the pin table. Every other taker of those locks holds
//! a `NoPreempt` guard around them and reaches no safepoint inside, so no
//! stopped task holds one. A plain thread (never stopped) may hold one
//! briefly; the collector then waits for it. The order is always shard lock
//! before owner lock: code holding an owner's lock never registers or
//! unregisters a node (creations and drops happen outside those locks).
//!
//! Values leave a root before they are dropped only by moving to the stack
//! of the code dropping them (which the collector scans when that code is a
//! task): a destructor that reads a `Gc` field finds it alive.

use super::mark::Marker;
use crate::sched::nopreempt::NoPreempt;
use bitvec::prelude::*;
use cgocheck_checker::WORD;
use std::cell::UnsafeCell;
use std::sync::{Mutex, MutexGuard};

/// Where roots go: the collector's [`Marker`], or a test's list of words.
pub(crate) trait Sink {
    /// Scans `[lo, hi)` conservatively: every word in it may be a pointer.
    ///
    /// # Safety
    /// `lo` and `hi` are word-aligned and the range is mapped and readable
    /// for the duration of the call.
    unsafe fn range(&mut self, lo: usize, hi: usize);

    /// Scans the words at `addr` whose bits are set (bit `i`: the word at
    /// `addr + 8 i`), precisely.
    ///
    /// # Safety
    /// Those words are mapped and readable; `addr` is word-aligned.
    unsafe fn bits(&mut self, addr: usize, bits: &BitSlice<u64, Lsb0>);

    /// `w` may be a pointer to (or into) a heap object.
    fn word(&mut self, w: usize);
}

impl Sink for Marker {
    unsafe fn range(&mut self, lo: usize, hi: usize) {
        // SAFETY: the caller's guarantee is scan_range's requirement.
        unsafe { self.scan_range(lo, hi) }
    }

    unsafe fn bits(&mut self, addr: usize, bits: &BitSlice<u64, Lsb0>) {
        // SAFETY: the caller's guarantee is scan_with_bits's requirement.
        unsafe { self.scan_with_bits(addr, bits) }
    }

    fn word(&mut self, w: usize) {
        self.mark_word(w)
    }
}

/// Feeds every root to `m` (world stopped; see the module comment).
pub(crate) fn mark_roots(m: &mut Marker) {
    super::stw::for_each_task_stack(&mut |lo, hi| {
        // SAFETY: for_each_task_stack hands out the in-use part of stopped
        // tasks' stacks, which stay mapped while the world is stopped.
        unsafe { m.scan_range(lo.next_multiple_of(WORD), hi & !(WORD - 1)) }
    });
    super::stw::for_each_signal_stop_registers(&mut |lo, hi| {
        // SAFETY: the registers of Ms stopped in their signal handler, in
        // their (never freed) M records, unchanged while the world is
        // stopped.
        unsafe { m.scan_range(lo, hi) }
    });
    scan_non_stack_roots(m);
}

/// Every root but the task stacks (the stacks are the `stw` helper's
/// enumeration; everything else is found here).
pub(crate) fn scan_non_stack_roots(sink: &mut dyn Sink) {
    crate::globals::for_each(|addr, ty| scan_typed(sink, addr, ty));
    crate::pinner::for_each_pinned(|base| sink.word(base));
    crate::handle::scan_roots(sink);
    // SAFETY: the world is stopped (or, in tests, the tasks whose tables
    // are read are parked outside any change of them).
    crate::sched::task::for_each_g(|g| unsafe { g.locals.scan(sink) });
    scan_registered(sink);
    super::cleanup::scan_roots(sink);
}

/// Scans the value of type `ty` at `addr` precisely, with the type's own
/// (static) pointer mask: a repeated mask is scanned element by element,
/// so nothing is allocated.
pub(crate) fn scan_typed(sink: &mut dyn Sink, addr: usize, ty: &'static cgocheck_checker::Type) {
    use cgocheck_checker::PtrMask;
    if !ty.has_pointers() || !addr.is_multiple_of(WORD) {
        return;
    }
    match ty.ptrmask {
        PtrMask::None => {}
        PtrMask::Bits(mask) => {
            let words = ty.ptrdata.div_ceil(WORD).min(mask.len() * 64);
            // SAFETY: the caller hands a live value of type `ty` at `addr`,
            // whose first `ptrdata` bytes (the mask's words) are readable.
            unsafe { sink.bits(addr, &mask.view_bits::<Lsb0>()[..words]) }
        }
        PtrMask::Repeat { elem, len } => {
            if elem.size == 0 {
                return;
            }
            for k in 0..len {
                let off = k * elem.size;
                if off >= ty.ptrdata {
                    break;
                }
                scan_typed(sink, addr + off, elem);
            }
        }
    }
}

/// Scans `size` bytes at `addr` conservatively when they can hold a
/// word-aligned pointer (`align` and `size` at least a word); the rest of a
/// last partial word is skipped.
///
/// # Safety
/// The bytes are readable for the duration of the call.
pub(crate) unsafe fn scan_bytes(sink: &mut dyn Sink, addr: usize, size: usize, align: usize) {
    if align < WORD || size < WORD || !addr.is_multiple_of(WORD) {
        return;
    }
    // SAFETY: the caller's guarantee; both ends are word-aligned.
    unsafe { sink.range(addr, addr + size / WORD * WORD) }
}

/// [`scan_bytes`] over a value of type `T` at `p`.
///
/// # Safety
/// `p` points to a readable `T` (possibly moved-from or stale: it is read
/// as raw words).
pub(crate) unsafe fn scan_value<T>(sink: &mut dyn Sink, p: *const T) {
    // SAFETY: the caller's guarantee.
    unsafe { scan_bytes(sink, p as usize, size_of::<T>(), align_of::<T>()) }
}

/// [`scan_value`] over a slice of `T`s.
///
/// # Safety
/// The slice's elements are readable.
pub(crate) unsafe fn scan_slice<T>(sink: &mut dyn Sink, s: &[T]) {
    // SAFETY: the caller's guarantee (the elements are contiguous).
    unsafe { scan_bytes(sink, s.as_ptr() as usize, size_of_val(s), align_of::<T>()) }
}

/// Locks `m` ignoring poisoning: the registry's owners never leave their
/// state half-changed when a panic unwinds through a lock (they do not
/// panic while holding one).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How a registered record is scanned: called with its node (the first
/// field of the record), under the node's shard lock, world stopped.
///
/// # Safety
/// (For the implementer.) The node is the first field of the record the
/// function was registered for, and the record is alive: it unregisters
/// before it is freed.
pub(crate) type ScanFn = unsafe fn(*const Node, &mut dyn Sink);

/// The links of a registered record (module comment). Place it as the first
/// field of a `#[repr(C)]` record at a stable address.
pub(crate) struct Node {
    /// Previous and next nodes of the shard's list, changed and read only
    /// under the shard's lock.
    links: UnsafeCell<[*const Node; 2]>,
    scan: ScanFn,
}

// SAFETY: the links are only touched under the shard lock (see `links`);
// `scan` is a plain function pointer.
unsafe impl Send for Node {}
// SAFETY: as above.
unsafe impl Sync for Node {}

/// Lists in the registry.
pub(crate) const SHARDS: usize = 16;

/// A shard: its list's first node.
struct Head(*const Node);
// SAFETY: the list is read and changed only under the shard's Mutex.
unsafe impl Send for Head {}

static REGISTRY: [Mutex<Head>; SHARDS] = [const { Mutex::new(Head(std::ptr::null())) }; SHARDS];

fn shard(node: *const Node) -> &'static Mutex<Head> {
    // Fibonacci hashing of the address: its top bits pick the shard.
    let h = (node as usize as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    &REGISTRY[(h >> (64 - SHARDS.trailing_zeros())) as usize]
}

impl Node {
    /// A node not yet registered; `scan` reads its record.
    pub(crate) const fn new(scan: ScanFn) -> Node {
        Node { links: UnsafeCell::new([std::ptr::null(); 2]), scan }
    }

    /// Links the node into the registry: from now on the collector scans
    /// its record.
    ///
    /// # Safety
    /// The node does not move and is not freed until [`Node::unregister`];
    /// it is not registered already; `scan` may be called on it from now
    /// on. Call it holding no registry owner's lock (module comment).
    pub(crate) unsafe fn register(&self) {
        let me = self as *const Node;
        let _np = NoPreempt::new();
        let mut head = lock(shard(me));
        // SAFETY: under the shard lock; `head.0`, if any, is a registered
        // node of this shard (alive until it unregisters under this lock).
        unsafe {
            *self.links.get() = [std::ptr::null(), head.0];
            if let Some(next) = head.0.as_ref() {
                (*next.links.get())[0] = me;
            }
        }
        head.0 = me;
    }

    /// Unlinks the node: the collector no longer scans its record once
    /// this returns.
    ///
    /// # Safety
    /// The node was registered and not unregistered since. Call it holding
    /// no registry owner's lock (module comment).
    pub(crate) unsafe fn unregister(&self) {
        let me = self as *const Node;
        let _np = NoPreempt::new();
        let mut head = lock(shard(me));
        // SAFETY: under the shard lock; the neighbours are registered nodes
        // of this shard, alive while linked.
        unsafe {
            let [prev, next] = *self.links.get();
            match prev.as_ref() {
                Some(p) => (*p.links.get())[1] = next,
                None => head.0 = next,
            }
            if let Some(n) = next.as_ref() {
                (*n.links.get())[0] = prev;
            }
            *self.links.get() = [std::ptr::null(); 2];
        }
    }
}

/// Scans every registered record. Allocates nothing.
pub(crate) fn scan_registered(sink: &mut dyn Sink) {
    for s in &REGISTRY {
        let _np = NoPreempt::new();
        let head = lock(s);
        let mut n = head.0;
        // SAFETY (the three blocks): under the shard lock every linked
        // node is alive (records unregister before they are freed), is the
        // first field of the record its `scan` was registered for, and its
        // links are stable.
        while let Some(node) = unsafe { n.as_ref() } {
            // SAFETY: as above.
            unsafe { (node.scan)(n, sink) };
            // SAFETY: as above.
            n = unsafe { (*node.links.get())[1] };
        }
        drop(head);
    }
}

/// Test support: a [`Sink`] that records every word it is fed (the words
/// of conservative ranges, the pointer words of precise ones).
#[cfg(test)]
pub(crate) mod testing {
    use super::*;
    use crate::conservative::read_word;

    #[derive(Default)]
    pub(crate) struct Words(pub Vec<usize>);

    impl Sink for Words {
        unsafe fn range(&mut self, lo: usize, hi: usize) {
            for p in (lo..hi).step_by(WORD) {
                // SAFETY: the range is readable and aligned (Sink::range).
                self.0.push(unsafe { read_word(p as *const usize) });
            }
        }

        unsafe fn bits(&mut self, addr: usize, bits: &BitSlice<u64, Lsb0>) {
            for i in bits.iter_ones() {
                // SAFETY: the set words are readable (Sink::bits).
                self.0.push(unsafe { read_word((addr + i * WORD) as *const usize) });
            }
        }

        fn word(&mut self, w: usize) {
            self.0.push(w);
        }
    }

    /// The words of every root but the stacks.
    pub(crate) fn non_stack_words() -> Vec<usize> {
        let mut w = Words::default();
        scan_non_stack_roots(&mut w);
        w.0
    }
}

/// Each root source reaches the enumeration while its value is held, and
/// leaves it when the value is gone. (The collector's own liveness tests,
/// which collect for real, are `tests/gc_roots.rs`.)
#[cfg(test)]
mod tests {
    use super::testing::non_stack_words;
    use crate::sched::run_test;
    use crate::{new, spawn, Chan, Gc, Handle, Pinner, Root};

    /// A fresh object whose address no other root holds.
    fn obj(tag: u64) -> Gc<[u64; 2]> {
        new([tag, !tag])
    }

    /// Serialises the scans with the one test that changes task-local
    /// tables: the collector reads those only while their tasks are
    /// stopped (or, here, not changing them).
    static LOCALS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn seen(g: Gc<[u64; 2]>) -> bool {
        let _l = LOCALS.lock().unwrap_or_else(|e| e.into_inner());
        seen_unlocked(g)
    }

    fn seen_unlocked(g: Gc<[u64; 2]>) -> bool {
        non_stack_words().contains(&g.addr())
    }

    #[test]
    fn root_is_scanned_until_dropped() {
        run_test(|| {
            let g = obj(1);
            assert!(!seen(g));
            let mut r = Root::new((7u64, g));
            assert!(seen(g), "a Root's value is scanned");
            let h = obj(2);
            r.set((8, h));
            assert!(seen(h) && !seen(g), "set: the new value is scanned, not the old one");
            let pair = r.into_inner();
            assert_eq!(pair, (8, h));
            assert!(!seen(h), "into_inner: no longer rooted");
            let r = Root::new(g);
            drop(r);
            assert!(!seen(g), "a dropped Root is no root");
        });
    }

    #[test]
    fn handle_values_are_scanned_until_deleted() {
        run_test(|| {
            let g = obj(3);
            let h = Handle::new((1u32, g));
            assert!(seen(g));
            h.delete();
            assert!(!seen(g));
        });
    }

    #[test]
    fn pinned_objects_are_roots() {
        run_test(|| {
            let g = obj(4);
            let mut p = Pinner::new();
            p.pin(g);
            assert!(seen(g));
            p.unpin();
            assert!(!seen(g));
        });
    }

    crate::managed_static! {
        static GLOBAL_PTR: Gc<[u64; 2]> = Gc::null();
        static GLOBAL_INT: [usize; 2] = [0, 0];
    }

    #[test]
    fn globals_are_scanned_precisely() {
        run_test(|| {
            let (g, h) = (obj(5), obj(6));
            // SAFETY: only this test touches these globals.
            unsafe {
                GLOBAL_PTR.set(g);
                GLOBAL_INT.set([h.addr(), 0]);
            }
            assert!(seen(g), "a pointer-typed global is a root");
            assert!(!seen(h), "an integer global holding an address is not (precise scan)");
            // SAFETY: as above.
            unsafe { GLOBAL_PTR.set(Gc::null()) };
            assert!(!seen(g));
        });
    }

    #[test]
    fn channel_buffers_and_blocked_senders_are_scanned() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SENT: AtomicUsize = AtomicUsize::new(0);
        run_test(|| {
            let c = Chan::new(1);
            let g = obj(7);
            c.send(g);
            assert!(seen(g), "a buffered value is scanned");
            // A sender blocked on the full channel holds its object in its
            // slot (the object is made by the sender, so its closure does
            // not hold it).
            let tx = c.clone();
            let sender = spawn(move || {
                let h = obj(8);
                SENT.store(h.addr(), Ordering::Relaxed);
                tx.send(h)
            });
            let h = loop {
                let a = SENT.load(Ordering::Relaxed);
                let _l = LOCALS.lock().unwrap_or_else(|e| e.into_inner());
                if a != 0 && non_stack_words().contains(&a) {
                    break a;
                }
                crate::yield_now();
            };
            assert_eq!(c.recv(), Some(g));
            let h: Gc<[u64; 2]> = c.recv().filter(|r| r.addr() == h).expect("the blocked sender's object");
            sender.join();
            assert!(!seen(g) && !seen(h), "received values leave the channel");
            c.send(g);
            drop(c);
            assert!(!seen(g), "a dropped channel is no root");
        });
    }

    #[test]
    fn join_results_are_scanned_until_taken() {
        run_test(|| {
            let t = spawn(|| obj(9));
            while !t.is_finished() {
                crate::yield_now();
            }
            let words = {
                let _l = LOCALS.lock().unwrap_or_else(|e| e.into_inner());
                non_stack_words()
            };
            let g = t.join();
            assert!(words.contains(&g.addr()), "a result waiting for join is scanned");
            assert!(!seen(g), "a joined result is no longer in the packet");
        });
    }

    #[test]
    fn task_closures_are_scanned_until_the_task_ends() {
        run_test(|| {
            let g = obj(10);
            let e = crate::sched::task::Entry::new(move || assert_eq!(g[0], 10));
            assert!(seen(g), "an unstarted task's closure is scanned");
            drop(e);
            assert!(!seen(g));
        });
    }

    crate::task_local! {
        static LOCAL: std::cell::Cell<Gc<[u64; 2]>> = std::cell::Cell::new(Gc::null());
        static DYING: Dying = Dying(std::cell::Cell::new(Gc::null()));
    }

    /// A task-local value whose destructor checks that it is still a root.
    struct Dying(std::cell::Cell<Gc<[u64; 2]>>);
    impl Drop for Dying {
        fn drop(&mut self) {
            let g = self.0.get();
            if !g.is_null() {
                // The test holds LOCALS.
                assert!(seen_unlocked(g), "a task-local value is scanned while its destructor runs");
            }
        }
    }

    #[test]
    fn task_locals_are_scanned_while_the_task_lives() {
        // Held throughout: this task's and its child's tables change.
        let _l = LOCALS.lock().unwrap_or_else(|e| e.into_inner());
        run_test(|| {
            let (g, h) = (obj(11), obj(12));
            let (go, wait) = (Chan::new(0), Chan::<()>::new(0));
            let (go2, wait2) = (go.clone(), wait.clone());
            let t = spawn(move || {
                LOCAL.with(|l| l.set(g));
                DYING.with(|d| d.0.set(h));
                go2.send(());
                wait2.recv();
            });
            go.recv();
            assert!(seen_unlocked(g) && seen_unlocked(h), "a parked task's task-locals are scanned");
            wait.send(());
            t.join();
            assert!(!seen_unlocked(g) && !seen_unlocked(h), "an ended task's task-locals are gone");
        });
    }
}

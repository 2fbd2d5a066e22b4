//! Cleanups: Go 1.24's `runtime.AddCleanup`.
//!
//! [`add_cleanup`]`(obj, arg, f)` asks for `f(arg)` to run some time after
//! `obj` has become unreachable. The story of one cleanup:
//!
//! 1. **Registered.** The call checks `obj` (nil and memory outside the
//!    heap panic, as Go's `AddCleanup` does; see its documentation for the
//!    exact rules), boxes `arg` and `f` together as one job, and puts an
//!    entry in the registry: the job and the address of the object that
//!    holds `obj` (its base), stored XORed with [`HIDE`] so that no scan of
//!    the registry could ever read it as a pointer — the registry must not
//!    keep its objects alive. The job, on the other hand, *is* a root: its
//!    bytes (the argument and whatever the closure captured) are scanned
//!    conservatively every cycle ([`scan_roots`], called by the roots
//!    part), so what `arg` refers to lives until the cleanup has run. (As
//!    for every root kept in Rust memory, a `Gc` behind a further Rust
//!    indirection, in a `Box` or `Vec` inside `arg`, is not seen: keep such
//!    values in managed memory.) So `arg` must not reach `obj`: if it does,
//!    `obj` stays reachable and the cleanup never runs, as in Go.
//! 2. **Queued.** Each cycle, with the world stopped and marking done
//!    ([`after_mark`]), every entry whose object was not marked moves to
//!    the run queue. Nothing is allocated there (decision 5): entries live
//!    in slots that are emptied in place, and the free list and the queue
//!    were given room for every registered entry when it was added.
//! 3. **Run.** After the world restarts, [`wake_runner`] unparks the
//!    cleanup task (one runtime task, spawned by the first `add_cleanup`),
//!    which runs the queued jobs one by one, each `f(arg)` on its own stack.
//!    A cleanup that panics is reported on stderr with its message
//!    (`cgocheck: a cleanup panicked: ...`) and the task goes on with the
//!    next one; the program is not stopped. A cleanup that blocks delays
//!    the ones after it (Go's advice holds: spawn a task for long work).
//!
//! [`Cleanup::stop`] removes a registered entry: the cleanup will not run
//! (it is dropped unrun, with its argument). Once its object has been found
//! unreachable and the job queued, `stop` has no effect, as in Go.
//!
//! Go's exceptions, kept: a zero-sized object (every zero-sized allocation
//! shares one address) and a managed global (never freed) get a cleanup
//! that never runs — `f` and `arg` are dropped at once, unrun, and the
//! returned [`Cleanup`] does nothing. A cleanup is not guaranteed to run
//! before the program exits. Several cleanups may be attached to one
//! object, and to different addresses inside one object (an interior
//! pointer is accepted, as in Go; the entry is keyed by the object's base).
//! There is no order among the cleanups queued by one cycle.
//!
//! ## Rooting a job while it moves
//!
//! The collector must see a job's bytes at every instant: on the stack of
//! the task that calls `add_cleanup` (as its arguments), in the registry or
//! the queue (scanned), then on the stack of the task that runs or drops it
//! (scanned with that task). Between those places the job is only in a
//! box that nothing scans, so each move happens under a `NoPreempt` guard
//! with no safepoint inside (no managed allocation): `add_cleanup` boxes
//! and registers under one guard; the cleanup task pops a job and moves it
//! onto its stack ([`Job::run`]: the box is emptied and freed before `f`
//! is called) under another; [`Cleanup::stop`] takes the entry out and
//! moves it onto its stack before dropping it ([`Job::discard`]), so a
//! destructor in `arg` still finds the objects it refers to alive.
//!
//! ## Locks (decision 5)
//!
//! The registry's lock is taken by [`after_mark`] and [`scan_roots`] with
//! the world stopped. Every other taker holds a `NoPreempt` guard around it
//! and reaches no safepoint inside (they allocate only Rust memory there),
//! so no stopped task holds it.

use crate::heap::heap;
use crate::sched::nopreempt::NoPreempt;
use crate::values::Gc;
use cgocheck_checker::{ManagedMemory, Region, WORD};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// What an object's base address is XORed with in the registry: a value
/// with the top bit set, so the stored word is never an address in the
/// heap's range (user space is below 2^47 on x86_64).
const HIDE: usize = 0xA5A5_0000_0000_5A5A;

/// A registered cleanup; [`Cleanup::stop`] cancels it (Go's
/// `runtime.Cleanup`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cleanup {
    /// The entry's slot in the registry.
    slot: usize,
    /// The entry's id (ids are unique; slots are reused). 0: a cleanup
    /// that never runs (zero-sized object, global).
    id: u64,
}

impl Cleanup {
    /// Cancels the cleanup if it has not been queued to run yet: it will
    /// not run, and its function and argument are dropped. Once the object
    /// has been found unreachable (the cleanup is queued or has run), this
    /// does nothing, as Go's `Cleanup.Stop`.
    pub fn stop(self) {
        if self.id == 0 {
            return;
        }
        let np = NoPreempt::new();
        let entry = registry().take_if(self.slot, self.id);
        // Dropped on this stack, outside the lock and the guard (module
        // comment): the destructors are the user's code, may allocate,
        // and may read the managed objects the argument refers to.
        match entry {
            Some(e) => e.job.discard(np),
            None => drop(np),
        }
    }
}

/// A queued or registered call: `f(arg)`, type-erased.
trait Job: Send {
    /// Moves the call onto the caller's stack, frees the box, drops `np`
    /// (the caller's guard against being stopped meanwhile: module
    /// comment), then calls `f(arg)`.
    fn run(self: Box<Self>, np: NoPreempt);

    /// The same, but drops the call instead of making it (a stopped
    /// cleanup).
    fn discard(self: Box<Self>, np: NoPreempt);
}

/// `f(arg)`.
struct Call<A, F> {
    arg: A,
    f: F,
}

impl<A: Send, F: FnOnce(A) + Send> Job for Call<A, F> {
    fn run(self: Box<Self>, np: NoPreempt) {
        // The box is freed at the end of the block: from here on the call
        // lives only in this frame (and registers), which the collector
        // scans with the task's stack.
        let call = {
            let b = self;
            *b
        };
        drop(np);
        (call.f)(call.arg);
    }

    fn discard(self: Box<Self>, np: NoPreempt) {
        let call = {
            let b = self;
            *b
        };
        drop(np);
        drop(call);
    }
}

/// A registered cleanup.
struct Entry {
    /// The object's base address XOR [`HIDE`].
    hidden: usize,
    /// Its [`Cleanup`]'s id.
    id: u64,
    job: Box<dyn Job>,
}

/// Registered and queued cleanups.
struct Registry {
    /// Registered entries; `None` slots are listed in `free`.
    slots: Vec<Option<Entry>>,
    /// Empty slots. Capacity: at least `slots.len()`, so that
    /// [`after_mark`] can list every slot it empties without allocating.
    free: Vec<usize>,
    /// Registered entries (the `Some` slots).
    registered: usize,
    /// Jobs whose objects were found unreachable, oldest first. Capacity:
    /// at least `queue.len() + registered`, for the same reason.
    queue: VecDeque<Box<dyn Job>>,
    /// The next id (0 is never used).
    next_id: u64,
}

impl Registry {
    /// Removes and returns slot `slot`'s entry if it is the one with `id`.
    fn take_if(&mut self, slot: usize, id: u64) -> Option<Entry> {
        match self.slots.get(slot) {
            Some(Some(e)) if e.id == id => {}
            _ => return None,
        }
        let e = self.slots[slot].take();
        self.free.push(slot);
        self.registered -= 1;
        e
    }
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { slots: Vec::new(), free: Vec::new(), registered: 0, queue: VecDeque::new(), next_id: 1 });

/// The registry, locked. Nothing panics while holding it, but a poisoned
/// lock would still be consistent, and is taken over. Callers on a task
/// hold a `NoPreempt` guard (module comment).
fn registry() -> MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f(arg)` on a runtime task some time after `obj` becomes
/// unreachable (Go 1.24's `runtime.AddCleanup`; the module comment has the
/// whole story).
///
/// - `arg` is kept alive (scanned like a root) until the cleanup runs; it
///   must not reach `obj`, or `obj` never becomes unreachable and the
///   cleanup never runs. The same holds for what `f` captures.
/// - Several cleanups may be attached to one object, and to any address
///   inside it.
/// - A zero-sized object (all share one address) or a managed global
///   (never freed) gets a cleanup that never runs, as in Go: `f` and `arg`
///   are dropped unrun.
/// - Cleanups run one at a time on one task, in no promised order; one that
///   panics is reported on stderr and the others still run.
///
/// # Panics
/// When `obj` is nil, or is not the address of (or inside) a live managed
/// heap object.
pub fn add_cleanup<T, A: Send + 'static>(obj: Gc<T>, arg: A, f: impl FnOnce(A) + Send + 'static) -> Cleanup {
    if obj.is_null() {
        panic!("cgocheck::add_cleanup: ptr is nil (Gc<{}>::null())", std::any::type_name::<T>());
    }
    let base = match heap().region(obj.addr()) {
        Region::Heap(o) => o.base,
        Region::ZeroSized | Region::Global { .. } => return Cleanup { slot: 0, id: 0 },
        _ => panic!(
            "cgocheck::add_cleanup: ptr {:#x} (Gc<{}>) is not in an allocated heap object; \
             a cleanup is attached to an object made by cgocheck::new or its relatives",
            obj.addr(),
            std::any::type_name::<T>()
        ),
    };
    start_runner();
    // From the box's making to its registration, `arg` is in no scanned
    // place: the guard keeps the world from stopping in between (nothing
    // here is a safepoint; the box is Rust memory).
    let _np = NoPreempt::new();
    let job: Box<dyn Job> = Box::new(Call { arg, f });
    let mut reg = registry();
    let id = reg.next_id;
    reg.next_id += 1;
    let entry = Some(Entry { hidden: base ^ HIDE, id, job });
    let slot = match reg.free.pop() {
        Some(slot) => {
            reg.slots[slot] = entry;
            slot
        }
        None => {
            reg.slots.push(entry);
            let n = reg.slots.len();
            let more = n.saturating_sub(reg.free.len());
            reg.free.reserve(more);
            n - 1
        }
    };
    reg.registered += 1;
    let registered = reg.registered;
    reg.queue.reserve(registered);
    Cleanup { slot, id }
}

/// World stopped, marking done: queues the cleanups of unmarked objects
/// (without allocating: see [`Registry`]'s capacities).
pub(crate) fn after_mark() {
    let _np = NoPreempt::new();
    let mut reg = registry();
    let reg = &mut *reg;
    for (i, slot) in reg.slots.iter_mut().enumerate() {
        let Some(e) = slot else { continue };
        if super::mark::is_marked(e.hidden ^ HIDE) {
            continue;
        }
        let e = slot.take().expect("the slot was just seen full");
        debug_assert!(reg.queue.len() < reg.queue.capacity() && reg.free.len() < reg.free.capacity());
        reg.queue.push_back(e.job);
        reg.free.push(i);
        reg.registered -= 1;
    }
}

/// Feeds the bytes of every registered and queued job (argument and
/// captures) to `sink`, conservatively. World stopped.
pub(crate) fn scan_roots(sink: &mut dyn super::roots::Sink) {
    let _np = NoPreempt::new();
    let reg = registry();
    let registered = reg.slots.iter().flatten().map(|e| &e.job);
    for job in registered.chain(reg.queue.iter()) {
        let size = std::mem::size_of_val(&**job);
        let lo = (&**job as *const dyn Job).cast::<u8>() as usize;
        let (lo, hi) = (lo.next_multiple_of(WORD), (lo + size) & !(WORD - 1));
        if lo < hi {
            // SAFETY: [lo, hi) lies inside the job's live box (rounded
            // inwards to words), which cannot be freed while we hold the
            // registry lock.
            unsafe { sink.range(lo, hi) }
        }
    }
}

/// The cleanup task, once spawned.
static RUNNER: OnceLock<crate::Task> = OnceLock::new();
/// Set by the caller that spawns the cleanup task.
static RUNNER_STARTING: AtomicBool = AtomicBool::new(false);

/// Spawns the cleanup task the first time. (Not `OnceLock::get_or_init`
/// around the spawn: a second caller would block its thread inside it,
/// unstoppable, while the first is stopped at the spawn's safepoint.)
fn start_runner() {
    if RUNNER.get().is_some() || RUNNER_STARTING.swap(true, Ordering::AcqRel) {
        return;
    }
    let handle = crate::spawn(runner);
    let _ = RUNNER.set(handle.task().clone());
    // Dropping the handle detaches the task: it never ends.
}

/// Wakes the task that runs queued cleanups.
pub(crate) fn wake_runner() {
    let queued = {
        let _np = NoPreempt::new();
        !registry().queue.is_empty()
    };
    if queued {
        if let Some(t) = RUNNER.get() {
            t.unpark();
        }
    }
}

/// The cleanup task: runs queued jobs one by one, parks when there are
/// none (a job queued before it was first parked is found by the first
/// look; a wake-up between a look and the park leaves a token, so the park
/// returns at once).
fn runner() {
    loop {
        let np = NoPreempt::new();
        let job = registry().queue.pop_front();
        match job {
            Some(job) => {
                if let Err(payload) = catch_unwind(AssertUnwindSafe(move || job.run(np))) {
                    report_panic(&*payload);
                }
            }
            None => {
                drop(np);
                crate::park();
            }
        }
    }
}

/// `cgocheck: a cleanup panicked: <message>` on stderr, in one write.
fn report_panic(payload: &(dyn std::any::Any + Send)) {
    use std::io::Write;
    let msg = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)");
    let line = format!("cgocheck: a cleanup panicked: {msg}; the runtime goes on with the other cleanups\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

//! Task-local storage: [`task_local!`](crate::task_local) and [`LocalKey`].
//!
//! A `thread_local!` in a task belongs to the task's *thread*, and many
//! tasks share a thread: every task bound to the same M (`schedule.rs`)
//! sees the same value. It is sound to use (a started task never changes
//! threads), but it is not per-task state. A `task_local!` is: each task
//! has its own value of each key, made by the key's initialiser on the
//! task's first access, and dropped when the task ends, before
//! [`JoinHandle::join`](super::JoinHandle::join) returns (or, for `run`'s
//! main task, before `run` returns).
//!
//! ```
//! use std::cell::Cell;
//! cgocheck::task_local! {
//!     static DEPTH: Cell<u32> = Cell::new(0);
//! }
//! cgocheck::run(|| {
//!     DEPTH.with(|d| d.set(5));
//!     let other = cgocheck::spawn(|| DEPTH.with(Cell::get)).join();
//!     assert_eq!((DEPTH.with(Cell::get), other), (5, 0));
//! });
//! ```
//!
//! The values live in the task's record (`G::locals`), a table indexed by
//! key: a key takes its index from a global counter on first use. Only the
//! task itself reads or changes its table, on the thread it runs on — and
//! since a started task never leaves that thread, a value need not be
//! `Send`: an `Rc` in a task-local is as sound as one in a thread-local.
//! Each value is boxed, so its address stays put while the table grows
//! (one key's initialiser may use another key).
//!
//! At the end of the task the table is emptied and the values dropped in
//! key order. A destructor may use task-locals again; values made that way
//! are dropped in a further round, and a task whose destructors keep making
//! values for more than [`DROP_ROUNDS`] rounds panics (std's thread-locals
//! and pthread keys have the same rule). A panic in a destructor reaches
//! `join` like a panic of the task's body. A callback from a thread C
//! created (`callback.rs`) is a task of its own in this respect: its
//! task-locals are dropped when the callback returns to C.
//!
//! The values are roots of the collector: it scans every task's table
//! ([`TaskLocals::scan`]), conservatively over each value's own bytes,
//! while the world is stopped. So the table is changed only under a
//! `NoPreempt` guard (a task is never stopped with its table half-changed),
//! and the values being destroyed at the end of a task stay in the table's
//! `dying` list — scanned too — until each one's destructor has run, so a
//! destructor that reads a `Gc` field finds it alive.

use super::nopreempt::NoPreempt;
use super::task::{current_g, G};
use crate::gc::roots::{self, Sink};
use std::alloc::Layout;
use std::any::Any;
use std::cell::UnsafeCell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Rounds of destruction before giving up on destructors that keep making
/// new task-local values.
pub const DROP_ROUNDS: usize = 8;

/// Keys that have an index so far.
static NKEYS: AtomicUsize = AtomicUsize::new(0);

/// One key's place in a task's table.
#[derive(Clone, Copy)]
enum Slot {
    /// No value yet.
    Empty,
    /// The initialiser is running (a recursive access is refused).
    Initializing,
    /// A boxed value, owned by the table.
    Value(NonNull<dyn Any>),
}

/// A task's table of task-local values (the `locals` field of its record).
pub(crate) struct TaskLocals {
    slots: UnsafeCell<Vec<Slot>>,
    /// Values taken out of the table at the task's end, being destroyed in
    /// order: `values[next..]` are not yet freed (`values[next]` may be
    /// mid-destructor), each with its layout.
    dying: UnsafeCell<Dying>,
}

struct Dying {
    values: Vec<(NonNull<dyn Any>, Layout)>,
    next: usize,
}

// SAFETY: the table is changed only through the running task's own record
// (`current_g`), on the thread that task runs on, and a started task never
// changes threads (`schedule.rs`), so the table and its values — which may
// be `!Send` — are only ever used from one thread. Other threads see the
// record (it is shared for scheduling and crash reports); the only other
// reader of this field is the collector, which reads the values' bytes as
// raw words while the world is stopped, when the owner is stopped outside
// any change of the table (changes are made under `NoPreempt`, with no
// safepoint inside).
unsafe impl Sync for TaskLocals {}
// SAFETY: as above: the values never leave the task's thread; the record
// moving between owners (`&'static G` handed around) does not touch them.
unsafe impl Send for TaskLocals {}

impl TaskLocals {
    pub(crate) const fn new() -> TaskLocals {
        TaskLocals { slots: UnsafeCell::new(Vec::new()), dying: UnsafeCell::new(Dying { values: Vec::new(), next: 0 }) }
    }

    /// Feeds every value of the table, and the dying ones not yet freed,
    /// to the collector, conservatively. Allocates nothing.
    ///
    /// # Safety
    /// The world is stopped (the owner is not changing the table: it is
    /// stopped, and never inside a change).
    pub(crate) unsafe fn scan(&self, sink: &mut dyn Sink) {
        // SAFETY: the owner is stopped outside any change (caller), so the
        // vectors are consistent; the values are alive (table entries are
        // freed only after leaving it, dying ones from `next` on are not
        // freed yet) and read as raw words.
        unsafe {
            for s in &*self.slots.get() {
                if let Slot::Value(p) = *s {
                    let v = p.as_ref();
                    roots::scan_bytes(sink, p.as_ptr().cast::<u8>() as usize, size_of_val(v), align_of_val(v));
                }
            }
            let dying = &*self.dying.get();
            for &(p, layout) in dying.values.get(dying.next..).unwrap_or(&[]) {
                roots::scan_bytes(sink, p.as_ptr().cast::<u8>() as usize, layout.size(), layout.align());
            }
        }
    }

    /// The state of slot `i`, as a copy (no reference into the table
    /// outlives this call).
    ///
    /// # Safety
    /// Called by the task owning this table, on its thread.
    unsafe fn get(&self, i: usize) -> Slot {
        // SAFETY: the caller is the only one touching the table, and no
        // other reference into it is live (every access is a short call).
        let slots = unsafe { &*self.slots.get() };
        slots.get(i).copied().unwrap_or(Slot::Empty)
    }

    /// Sets slot `i`, growing the table.
    ///
    /// # Safety
    /// As [`TaskLocals::get`].
    unsafe fn set(&self, i: usize, slot: Slot) {
        // Not stopped for a collection with the vector half-changed.
        let _np = NoPreempt::new();
        // SAFETY: as in `get`: a short, exclusive access by the owner.
        let slots = unsafe { &mut *self.slots.get() };
        if slots.len() <= i {
            slots.resize_with(i + 1, || Slot::Empty);
        }
        slots[i] = slot;
    }

    /// No key has a slot yet.
    ///
    /// # Safety
    /// As [`TaskLocals::get`].
    unsafe fn is_empty(&self) -> bool {
        // SAFETY: as in `get`.
        unsafe { &*self.slots.get() }.is_empty()
    }

    /// Moves every value out of the table, in key order, to the dying
    /// list (which must be empty). Returns how many.
    ///
    /// # Safety
    /// As [`TaskLocals::get`].
    unsafe fn start_dying(&self) -> usize {
        let _np = NoPreempt::new();
        // SAFETY: as in `get`.
        let (slots, dying) = unsafe { (&mut *self.slots.get(), &mut *self.dying.get()) };
        debug_assert!(dying.next == dying.values.len());
        let values = slots
            .iter()
            .filter_map(|s| match *s {
                // SAFETY: a value in the table is alive.
                Slot::Value(p) => Some((p, Layout::for_value(unsafe { p.as_ref() }))),
                _ => None,
            })
            .collect();
        *dying = Dying { values, next: 0 };
        slots.clear();
        dying.values.len()
    }

    /// The next dying value to destroy, if any.
    ///
    /// # Safety
    /// As [`TaskLocals::get`].
    unsafe fn next_dying(&self) -> Option<NonNull<dyn Any>> {
        // SAFETY: as in `get`.
        let dying = unsafe { &*self.dying.get() };
        dying.values.get(dying.next).map(|&(p, _)| p)
    }

    /// Frees the next dying value, whose destructor has run: it leaves the
    /// scanned part of the list first.
    ///
    /// # Safety
    /// As [`TaskLocals::get`]; the value was dropped in place.
    unsafe fn free_next_dying(&self) {
        let _np = NoPreempt::new();
        // SAFETY: as in `get`.
        let dying = unsafe { &mut *self.dying.get() };
        let (p, layout) = dying.values[dying.next];
        dying.next += 1;
        if dying.next == dying.values.len() {
            *dying = Dying { values: Vec::new(), next: 0 };
        }
        if layout.size() != 0 {
            // SAFETY: `p` came from a `Box` of this layout (`initialize`),
            // its value was dropped in place, and it is freed once: it is
            // no longer in the list.
            unsafe { std::alloc::dealloc(p.as_ptr().cast::<u8>(), layout) };
        }
    }

    /// Empties the dying list without destroying or freeing its values
    /// (leaked: no longer roots, never used again).
    ///
    /// # Safety
    /// As [`TaskLocals::get`].
    unsafe fn leak_dying(&self) {
        let _np = NoPreempt::new();
        // SAFETY: as in `get`.
        unsafe { *self.dying.get() = Dying { values: Vec::new(), next: 0 } };
    }
}

/// Why [`LocalKey::try_with`] could not reach a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessError {
    /// The caller is not a task (a plain thread, or outside
    /// [`run`](super::run)).
    OutsideTask,
}

impl fmt::Display for AccessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessError::OutsideTask => f.write_str("task-local accessed outside a task"),
        }
    }
}

impl std::error::Error for AccessError {}

/// A task-local key, declared with [`task_local!`](crate::task_local):
/// each task has its own value, reached with [`LocalKey::with`].
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    name: &'static str,
    /// The key's index in every task's table, plus one (0: not yet given).
    index: AtomicUsize,
}

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T, name: &'static str) -> LocalKey<T> {
        LocalKey { init, name, index: AtomicUsize::new(0) }
    }

    fn index(&self) -> usize {
        let i = self.index.load(Ordering::Acquire);
        if i != 0 {
            return i - 1;
        }
        let fresh = NKEYS.fetch_add(1, Ordering::Relaxed) + 1;
        match self.index.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => fresh - 1,
            // Another thread gave it one first; `fresh` stays unused.
            Err(won) => won - 1,
        }
    }

    /// Calls `f` with the calling task's value of this key, made by the
    /// key's initialiser on the task's first access.
    ///
    /// # Panics
    /// Outside a task (a task-local has no value on a plain thread; use a
    /// `thread_local!` there), and when the key's initialiser itself uses
    /// the key.
    pub fn with<F, R>(&'static self, f: F) -> R
    where
        F: FnOnce(&T) -> R,
    {
        match self.try_with(f) {
            Ok(r) => r,
            Err(e) => panic!(
                "cgocheck: task_local {}: {e}; task-locals exist only in tasks (started by cgocheck::run or \
                 cgocheck::spawn); use a thread_local! on plain threads",
                self.name
            ),
        }
    }

    /// [`LocalKey::with`], or an error outside a task instead of a panic.
    ///
    /// # Panics
    /// When the key's initialiser itself uses the key.
    pub fn try_with<F, R>(&'static self, f: F) -> Result<R, AccessError>
    where
        F: FnOnce(&T) -> R,
    {
        let g = current_g().ok_or(AccessError::OutsideTask)?;
        let locals = &g.locals;
        let i = self.index();
        // SAFETY: `g` is the running task, on its own thread.
        let p = match unsafe { locals.get(i) } {
            Slot::Value(p) => p,
            Slot::Empty => self.initialize(locals, i),
            Slot::Initializing => panic!(
                "cgocheck: task_local {}: its initialiser used the key itself (a recursive initialisation)",
                self.name
            ),
        };
        // SAFETY: the box lives until the task's table is emptied at its
        // end, which only the task itself does, after its body (so not
        // during `f`); the slot for this key always holds a `T`.
        let v = unsafe { p.as_ref() }.downcast_ref::<T>().expect("cgocheck: a task-local slot of another type");
        Ok(f(v))
    }

    /// Runs the initialiser and stores its value in slot `i`.
    #[cold]
    fn initialize(&'static self, locals: &TaskLocals, i: usize) -> NonNull<dyn Any> {
        /// Resets the slot if the initialiser panics.
        struct Reset<'a>(&'a TaskLocals, usize);
        impl Drop for Reset<'_> {
            fn drop(&mut self) {
                // SAFETY: still the running task on its thread.
                unsafe { self.0.set(self.1, Slot::Empty) }
            }
        }
        // SAFETY: the running task on its thread.
        unsafe { locals.set(i, Slot::Initializing) };
        let reset = Reset(locals, i);
        let v = (self.init)();
        std::mem::forget(reset);
        // Not preempted (so not stopped for a collection) between the value
        // leaving this frame and the table having it.
        let np = NoPreempt::new();
        let b: Box<dyn Any> = Box::new(v);
        // SAFETY: Box::into_raw is never null.
        let p = unsafe { NonNull::new_unchecked(Box::into_raw(b)) };
        // SAFETY: the running task on its thread.
        unsafe { locals.set(i, Slot::Value(p)) };
        drop(np);
        p
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalKey({})", self.name)
    }
}

/// Drops the calling task's task-local values (in rounds, see the module
/// comment). Returns the first panic a destructor raised.
fn drop_all() -> std::thread::Result<()> {
    let Some(g) = current_g() else { return Ok(()) };
    let mut outcome = Ok(());
    for _ in 0..DROP_ROUNDS {
        // SAFETY: the running task on its thread.
        if unsafe { g.locals.start_dying() } == 0 {
            return outcome;
        }
        // SAFETY: the running task on its thread.
        while let Some(p) = unsafe { g.locals.next_dying() } {
            // SAFETY: `p` came from Box::into_raw in `initialize` and was
            // moved out of the table to the dying list, so it is dropped
            // once, then freed (still in the list, and scanned, meanwhile).
            let r = catch_unwind(AssertUnwindSafe(|| unsafe { std::ptr::drop_in_place(p.as_ptr()) }));
            // SAFETY: its destructor ran (or panicked: what it owned is
            // dropped or leaked, as with a Box).
            unsafe { g.locals.free_next_dying() };
            if outcome.is_ok() {
                outcome = r;
            }
        }
    }
    // SAFETY: the running task on its thread.
    let left = unsafe { g.locals.start_dying() };
    if left == 0 {
        return outcome;
    }
    // SAFETY: the running task on its thread.
    unsafe { g.locals.leak_dying() };
    // Leaking them is the only thing left to do; say so.
    panic!(
        "cgocheck: task {}: task-local destructors kept making new task-local values for {DROP_ROUNDS} rounds \
         ({left} left, leaked); a destructor must not keep using task-locals",
        g.id()
    )
}

/// The end of a callback on a thread C created (`callback.rs`): its
/// task-locals are dropped, as at the end of a task. One load when it made
/// none.
#[inline]
pub(crate) fn end_c_thread_callback<R>(g: &G, body: std::thread::Result<R>) -> std::thread::Result<R> {
    // SAFETY: `g` is the callback's task, running on this thread.
    if unsafe { g.locals.is_empty() } {
        return body;
    }
    drop_all_into(body)
}

/// Drops the calling task's task-local values at the end of its body: a
/// panic of a destructor becomes the task's outcome unless the body
/// panicked first.
pub(crate) fn drop_all_into<R>(body: std::thread::Result<R>) -> std::thread::Result<R> {
    let dropped = catch_unwind(drop_all).and_then(|r| r);
    body.and_then(|v| dropped.map(|()| v))
}

/// Declares task-local keys, each a `static` [`LocalKey`] whose value is
/// per task (see [`LocalKey::with`]):
///
/// ```
/// use std::cell::RefCell;
/// cgocheck::task_local! {
///     /// Lines this task has logged.
///     pub static LOG: RefCell<Vec<String>> = RefCell::new(Vec::new());
///     static HITS: std::cell::Cell<u64> = std::cell::Cell::new(0);
/// }
/// cgocheck::run(|| LOG.with(|l| l.borrow_mut().push("started".into())));
/// ```
#[macro_export]
macro_rules! task_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $crate::task_local!($(#[$attr])* $vis static $name: $t = $init);
        $crate::task_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])*
        $vis static $name: $crate::sched::LocalKey<$t> = {
            fn __init() -> $t {
                $init
            }
            $crate::sched::LocalKey::new(__init, stringify!($name))
        };
    };
}

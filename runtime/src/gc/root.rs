//! [`Root<T>`]: a value the collector scans, wherever its owner keeps it.
//!
//! The collector finds managed objects from its roots (`roots.rs`): task
//! stacks, managed globals, pinned objects, Handles, what the runtime keeps
//! for tasks. Rust memory the program owns — a `Box`, a `Vec`, a plain
//! `static`, the stack of a thread that is not running a task — is not
//! among them. A `Root` is the bridge: its value lives in a small heap
//! record registered with the collector (a node of the root registry,
//! `roots.rs`), so whatever `Gc` it holds stays alive however the `Root`
//! itself is kept. Creating one links the record into one of the
//! registry's lists (a short lock, sharded by address); dropping it unlinks
//! it.
//!
//! The value is scanned conservatively over its own bytes, like every
//! value the runtime keeps in Rust memory.

use super::roots::{self, Node, Sink};
use crate::sched::nopreempt::NoPreempt;
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// Keeps the managed objects a value refers to alive from memory the
/// collector does not scan.
///
/// **A `Gc` kept in Rust memory the collector does not scan is not a root;
/// wrap it in `Root`.** The collector scans task stacks, managed globals
/// ([`managed_static!`](crate::managed_static)), pinned objects, live
/// [`Handle`](crate::Handle)s' values and what the runtime itself keeps for
/// tasks (closures not yet started, join results, channel buffers,
/// task-locals). A `Gc` stored anywhere else — in a `Box`, a `Vec`, a
/// `HashMap`, a plain `static` (behind a `Mutex`), on a thread that is not
/// running a task — may be freed while still held, unless it is in a
/// `Root` (or reachable from a rooted object).
///
/// `T` is a `Gc`, a [`GcSlice`](crate::GcSlice), a
/// [`GcStr`](crate::GcStr), or a struct or tuple of them held in place. The
/// value's own bytes are scanned, word by word: a `Gc` behind a further
/// Rust indirection (a `Root<Vec<Gc<T>>>`) is not seen — keep collections
/// in managed memory (a `GcSlice`, a [`GcMap`](crate::GcMap)), or root
/// each element.
///
/// `Root` is `Send`/`Sync` when `T` is; creating and dropping one takes a
/// short, sharded lock.
///
/// ```
/// use cgocheck::{new, Gc, Root};
/// use std::sync::Mutex;
///
/// // A plain static is Rust memory: the Gc in it needs a Root.
/// static CACHE: Mutex<Vec<Root<Gc<u64>>>> = Mutex::new(Vec::new());
///
/// cgocheck::run(|| {
///     CACHE.lock().unwrap().push(Root::new(new(42u64)));
///     cgocheck::gc(); // the object is only referenced from CACHE's Vec
///     let cache = CACHE.lock().unwrap();
///     assert_eq!(**cache[0], 42);
/// });
///
/// // A plain thread may hold a Root too, and read through it.
/// let mut root = cgocheck::run(|| Root::new(new(7u64)));
/// std::thread::spawn(move || {
///     cgocheck::gc();
///     assert_eq!(**root, 7);
///     let old = root.replace(Gc::null());
///     assert_eq!(*old, 7);
/// })
/// .join()
/// .unwrap();
/// ```
pub struct Root<T> {
    record: NonNull<Record<T>>,
    _owns: PhantomData<T>,
}

/// The registered record: the registry's node first (`roots.rs` finds the
/// record from it), then the value.
#[repr(C)]
struct Record<T> {
    node: Node,
    value: T,
}

// SAFETY: a Root owns its value like a `Box<T>` does; the registry only
// reads the value's bytes while the world is stopped.
unsafe impl<T: Send> Send for Root<T> {}
// SAFETY: as above: `&Root<T>` gives only `&T`.
unsafe impl<T: Sync> Sync for Root<T> {}

/// The registry's scan function for a `Record<T>`.
///
/// # Safety
/// `node` is the node of a live `Record<T>` (roots::ScanFn).
unsafe fn scan_record<T>(node: *const Node, sink: &mut dyn Sink) {
    let record = node.cast::<Record<T>>();
    // SAFETY: the record is alive (it unregisters before it is freed) and
    // its value stays initialised while it is registered.
    unsafe { roots::scan_value(sink, &raw const (*record).value) }
}

impl<T> Root<T> {
    /// Roots `value`: from now until the `Root` is dropped (or
    /// [`Root::into_inner`]), the collector scans it.
    pub fn new(value: T) -> Root<T> {
        // Not preempted (so not stopped for a collection) between the value
        // leaving this frame and its record being registered.
        let np = NoPreempt::new();
        let record = Box::new(Record { node: Node::new(scan_record::<T>), value });
        let record = NonNull::from(Box::leak(record));
        // SAFETY: the record stays at this address until `Drop` or
        // `into_inner` unregisters it and frees it; no lock is held.
        unsafe { record.as_ref().node.register() };
        drop(np);
        Root { record, _owns: PhantomData }
    }

    /// A copy of the value.
    pub fn get(&self) -> T
    where
        T: Copy,
    {
        **self
    }

    /// Replaces the value; the old one is dropped.
    pub fn set(&mut self, value: T) {
        **self = value;
    }

    /// Replaces the value and returns the old one.
    pub fn replace(&mut self, value: T) -> T {
        std::mem::replace(&mut **self, value)
    }

    /// Takes the value out; it is no longer rooted (keep it on a task's
    /// stack, or root it again).
    pub fn into_inner(self) -> T {
        let record = self.record;
        std::mem::forget(self);
        // SAFETY: the record was leaked by `new` and is owned by the
        // forgotten Root; it is unregistered before being freed, and the
        // value moves out of it (read once, then the box is freed without
        // dropping the value again).
        unsafe {
            record.as_ref().node.unregister();
            let value = std::ptr::read(&raw const (*record.as_ptr()).value);
            drop(Box::from_raw(record.as_ptr().cast::<std::mem::ManuallyDrop<Record<T>>>()));
            value
        }
    }
}

impl<T> Drop for Root<T> {
    fn drop(&mut self) {
        // The value moves to this frame (scanned when this is a task) before
        // the record is unregistered, so its destructor finds what it
        // refers to alive.
        let record = self.record;
        // SAFETY: as in `into_inner`: the record is this Root's, dropped once.
        let value = unsafe {
            let value = std::ptr::read(&raw const (*record.as_ptr()).value);
            record.as_ref().node.unregister();
            drop(Box::from_raw(record.as_ptr().cast::<std::mem::ManuallyDrop<Record<T>>>()));
            value
        };
        drop(value);
    }
}

impl<T> std::ops::Deref for Root<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the record lives as long as the Root; the registry only
        // reads it (as raw words), so a shared borrow is sound.
        unsafe { &(*self.record.as_ptr()).value }
    }
}

impl<T> std::ops::DerefMut for Root<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only borrow. The
        // collector reads the words only while the world is stopped, and a
        // task is never stopped in the middle of storing one word.
        unsafe { &mut (*self.record.as_ptr()).value }
    }
}

impl<T: Clone> Clone for Root<T> {
    /// Another root holding a clone of the value.
    fn clone(&self) -> Root<T> {
        Root::new((**self).clone())
    }
}

impl<T: Default> Default for Root<T> {
    fn default() -> Root<T> {
        Root::new(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Root<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Root").field(&**self).finish()
    }
}

impl<T> From<T> for Root<T> {
    fn from(value: T) -> Root<T> {
        Root::new(value)
    }
}

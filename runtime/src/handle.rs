//! Handle: Go's `runtime/cgo.Handle`.
//!
//! C may not keep managed pointers, but it may keep an integer. A [`Handle`]
//! is an integer that names a value held by the runtime: create one from a
//! value, give the number to C, turn the number C gives back into the value,
//! delete it when done.
//!
//! The number packs a table index and a generation:
//! `raw = generation << 32 | (index + 1)`, so it is never 0. A slot's
//! generation changes when its handle is deleted, so a deleted handle, a
//! handle deleted twice, and a number C made up (index out of range, wrong
//! generation, empty slot) all fail the same check and panic with Go's
//! words, "misuse of an invalid Handle", and the number — never undefined
//! behaviour.
//!
//! Values are stored as `Arc<dyn Any + Send + Sync>`: [`Handle::value`]
//! hands out a clone of the `Arc`, so deleting a handle while someone still
//! uses its value is safe; asking for the wrong type is a panic naming both.
//!
//! Handles keep managed values alive: the collector scans every live
//! handle's value (`scan_roots`, fed to its marker by `gc/roots.rs`), and
//! [`Handle::roots`] lists the heap objects they refer to. A value is
//! scanned conservatively (conservative.rs), word by word, over its own
//! bytes: a `Gc`, `GcSlice`, `GcStr` or a struct of them held directly is a
//! root; a managed pointer behind a Rust heap indirection (a `Vec`, a `Box`)
//! is not seen — keep such collections in managed memory. The `Arc` that
//! [`Handle::value`] hands out is the caller's Rust memory: once the
//! handle is deleted, a value still held only through it is not a root.
//!
//! The collector reads the table while the world is stopped, so every
//! taker of its lock holds a `NoPreempt` guard (sched/nopreempt.rs) around
//! it, and nothing under the lock reaches a safepoint: a stopped task never
//! holds it. `Handle::new` holds the guard from the moment the value moves
//! into its `Arc` until the table has it, so the value is always either on
//! the caller's stack or in the table.

use crate::conservative::read_word;
use crate::gc::roots::{self, Sink};
use crate::heap::heap;
use crate::sched::nopreempt::NoPreempt;
use cgocheck_checker::{ManagedMemory, Region, WORD};
use std::any::{type_name, Any};
use std::num::NonZeroUsize;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// An integer C may keep that names a value (Go's `cgo.Handle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Handle(NonZeroUsize);

struct Slot {
    generation: u32,
    value: Option<Arc<dyn Any + Send + Sync>>,
    type_name: &'static str,
}

struct Table {
    slots: Vec<Slot>,
    /// Indices of empty slots.
    free: Vec<u32>,
}

static TABLE: RwLock<Table> = RwLock::new(Table { slots: Vec::new(), free: Vec::new() });

// The table is changed only by code that does not panic halfway (the Arc
// drop of a deleted value happens after the lock is released), so a
// poisoned lock still guards a consistent table. Callers hold a
// `NoPreempt` guard, taken before and dropped after the lock guard.
fn read(_np: &NoPreempt) -> RwLockReadGuard<'static, Table> {
    TABLE.read().unwrap_or_else(|e| e.into_inner())
}
fn write(_np: &NoPreempt) -> RwLockWriteGuard<'static, Table> {
    TABLE.write().unwrap_or_else(|e| e.into_inner())
}

fn invalid(raw: usize) -> ! {
    panic!("runtime/cgo: misuse of an invalid Handle {raw} ({raw:#x}): deleted, or never created by Handle::new")
}

impl Table {
    /// The index of the live slot `raw` names (`None`: an invalid handle;
    /// the caller releases the lock before panicking).
    fn live(&self, raw: usize) -> Option<usize> {
        let index = (raw & 0xffff_ffff).wrapping_sub(1);
        match self.slots.get(index) {
            Some(s) if s.value.is_some() && s.generation as usize == raw >> 32 => Some(index),
            _ => None,
        }
    }

    /// Calls `f(start, size, align)` on every live value.
    fn for_each_value(&self, mut f: impl FnMut(usize, usize, usize)) {
        for v in self.slots.iter().filter_map(|s| s.value.as_ref()) {
            f(Arc::as_ptr(v).cast::<u8>() as usize, std::mem::size_of_val(&**v), std::mem::align_of_val(&**v));
        }
    }
}

impl Handle {
    /// Stores `value` and returns its handle.
    pub fn new<T: Any + Send + Sync>(value: T) -> Handle {
        // Not preempted (so never stopped for a collection) while the value
        // is in the Arc and not yet in the table.
        let np = NoPreempt::new();
        let value: Arc<dyn Any + Send + Sync> = Arc::new(value);
        let mut t = write(&np);
        let index = match t.free.pop() {
            Some(i) => i as usize,
            None => {
                assert!(t.slots.len() < u32::MAX as usize - 1, "cgocheck: too many live Handles");
                t.slots.push(Slot { generation: 0, value: None, type_name: "" });
                t.slots.len() - 1
            }
        };
        let slot = &mut t.slots[index];
        slot.value = Some(value);
        slot.type_name = type_name::<T>();
        let raw = (slot.generation as usize) << 32 | (index + 1);
        drop(t);
        drop(np);
        Handle(NonZeroUsize::new(raw).expect("index + 1 is never 0"))
    }

    /// The number to give to C. Never 0.
    pub fn as_raw(self) -> usize {
        self.0.get()
    }

    /// The handle C gave back. Only 0 is refused here (it is never a
    /// handle); any other invalid number panics when used.
    pub fn from_raw(raw: usize) -> Handle {
        match NonZeroUsize::new(raw) {
            Some(n) => Handle(n),
            None => invalid(0),
        }
    }

    /// The value, as the `T` it was created with. Panics if the handle is
    /// invalid or holds another type.
    pub fn value<T: Any + Send + Sync>(self) -> Arc<T> {
        let raw = self.as_raw();
        let np = NoPreempt::new();
        let t = read(&np);
        let Some(index) = t.live(raw) else {
            drop(t);
            invalid(raw)
        };
        let slot = &t.slots[index];
        let value = slot.value.clone().expect("a live slot has a value");
        let stored = slot.type_name;
        drop(t);
        drop(np);
        value.downcast::<T>().unwrap_or_else(|_| {
            panic!("runtime/cgo: Handle {raw} ({raw:#x}) holds a value of type {stored}, not {}", type_name::<T>())
        })
    }

    /// Deletes the handle; its number becomes invalid. The value is dropped
    /// once no `Arc` from [`Handle::value`] is alive.
    pub fn delete(self) {
        let raw = self.as_raw();
        let np = NoPreempt::new();
        let mut t = write(&np);
        let Some(index) = t.live(raw) else {
            drop(t);
            invalid(raw)
        };
        let slot = &mut t.slots[index];
        let value = slot.value.take();
        slot.generation = slot.generation.wrapping_add(1);
        t.free.push(index as u32);
        drop(t);
        drop(np);
        // Dropped outside the lock: the value's destructor may use Handles.
        drop(value);
    }

    /// Base addresses of the heap objects that live handles' values refer
    /// to (what the collector marks from them; see the module comment for
    /// what is seen). One entry per reference found.
    pub fn roots() -> impl Iterator<Item = usize> {
        let mut roots = Vec::new();
        let np = NoPreempt::new();
        let t = read(&np);
        t.for_each_value(|start, size, _| {
            if start & (WORD - 1) != 0 {
                return; // less than word-aligned: holds no managed pointer
            }
            for p in (start..start + size / WORD * WORD).step_by(WORD) {
                // SAFETY: `p` is word-aligned and inside the value the Arc
                // keeps alive (the read lock keeps the Arc in the table).
                let w = unsafe { read_word(p as *const usize) };
                if let Region::Heap(obj) = heap().region(w) {
                    roots.push(obj.base);
                }
            }
        });
        drop(t);
        drop(np);
        roots.into_iter()
    }
}

/// Feeds every live handle's value to the collector, conservatively over
/// its own bytes. Allocates nothing.
pub(crate) fn scan_roots(sink: &mut dyn Sink) {
    let np = NoPreempt::new();
    let t = read(&np);
    t.for_each_value(|start, size, align| {
        // SAFETY: the value is alive: its Arc stays in the table while the
        // read lock is held.
        unsafe { roots::scan_bytes(sink, start, size, align) }
    });
}

//! Pinner: Go's `runtime.Pinner`.
//!
//! C may keep a managed pointer, or find one inside managed memory it was
//! passed, only if the object is pinned. A [`Pinner`] pins objects one by
//! one and unpins all of them at once. Pins are counted per object: two
//! Pinners pinning the same object leave it pinned until both unpin.
//!
//! The counts live in one table behind a lock (pinning is rare); each
//! object's slot also has a pin bit in its span, kept equal to "count > 0"
//! under that lock, so `is_pinned` — asked by the checker on every pointer
//! it inspects — is a lock-free bit test.
//!
//! What `pin` does with each kind of address (following Go, where it makes
//! sense, and failing loudly where Go could not tell):
//!
//! | address | effect |
//! |---|---|
//! | a heap object (any interior address) | the object's count goes up |
//! | C memory (not managed) | nothing: nothing to pin, as Go |
//! | a managed global, the zero-sized address | nothing: they never move nor die |
//! | null | panic: there is nothing to pin |
//! | a task stack | panic: a stack cannot be pinned; allocate with `new` |
//! | a freed object, a never-allocated slot, a span tail | panic naming the address |
//!
//! Pinned objects are roots of the collector: C may hold them, so they and
//! everything they reach stay alive (`for_each_pinned`, called by
//! `gc/roots.rs` with the world stopped). The table's lock is therefore
//! taken under a `NoPreempt` guard by everyone (a stopped task never holds
//! it), and nothing under it reaches a safepoint.
//!
//! Dropping a Pinner that still pins objects prints Go's leak warning and
//! unpins them (Go panics from a finalizer; a destructor that panics would
//! abort during unwinding, so we warn). A Pinner dropped while a panic
//! unwinds its frame unpins silently: the code that would have called
//! `unpin` is what the panic skipped, so the warning would blame the user
//! for the panic's doing and bury the panic's own message.

use crate::heap::heap;
use crate::sched::nopreempt::NoPreempt;
use crate::values::{Gc, GcSlice, GcStr};
use cgocheck_checker::{ManagedMemory, Region};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// Pin counts by object base address.
static PINS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// The pin table; the caller holds `_np`, taken before and dropped after
/// the guard (module comment).
fn pins(_np: &NoPreempt) -> MutexGuard<'static, BTreeMap<usize, usize>> {
    // Nothing panics while the lock is held, so poisoning cannot leave the
    // table inconsistent.
    PINS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `f(base)` for every pinned object. Allocates nothing.
pub(crate) fn for_each_pinned(mut f: impl FnMut(usize)) {
    let np = NoPreempt::new();
    let pins = pins(&np);
    for &base in pins.keys() {
        f(base);
    }
    drop(pins);
}

/// Anything that names a managed address: managed pointers, raw pointers,
/// references, slice and string headers (their backing array).
pub trait PinTarget {
    /// The address to pin.
    fn pin_addr(&self) -> usize;
}

impl<T> PinTarget for Gc<T> {
    fn pin_addr(&self) -> usize {
        self.addr()
    }
}
impl<T> PinTarget for GcSlice<T> {
    fn pin_addr(&self) -> usize {
        self.as_ptr() as usize
    }
}
impl PinTarget for GcStr {
    fn pin_addr(&self) -> usize {
        self.as_ptr() as usize
    }
}
impl<T: ?Sized> PinTarget for *const T {
    fn pin_addr(&self) -> usize {
        self.cast::<u8>() as usize
    }
}
impl<T: ?Sized> PinTarget for *mut T {
    fn pin_addr(&self) -> usize {
        self.cast::<u8>() as usize
    }
}
impl<T: ?Sized> PinTarget for &T {
    fn pin_addr(&self) -> usize {
        (*self as *const T).cast::<u8>() as usize
    }
}

/// A set of pinned objects (Go's `runtime.Pinner`).
#[derive(Default)]
pub struct Pinner {
    /// Base of every object this Pinner pinned, once per successful `pin`.
    pinned: Vec<usize>,
}

impl Pinner {
    /// A Pinner that pins nothing yet.
    pub const fn new() -> Pinner {
        Pinner { pinned: Vec::new() }
    }

    /// Pins the object `p` points into (see the module table for other
    /// addresses). Pinning an object twice counts twice; `unpin` undoes both.
    pub fn pin(&mut self, p: impl PinTarget) {
        let addr = p.pin_addr();
        if addr == 0 {
            panic!("runtime.Pinner: argument is nil");
        }
        match heap().region(addr) {
            Region::NotManaged | Region::ZeroSized | Region::Global { .. } => {}
            Region::Heap(obj) => {
                let (span, slot) = heap().slot_of(obj.base).expect("a heap object has a span");
                let np = NoPreempt::new();
                let mut pins = pins(&np);
                let n = pins.entry(obj.base).or_insert(0);
                *n += 1;
                if *n == 1 {
                    span.set_pinned(slot, true);
                }
                drop(pins);
                drop(np);
                self.pinned.push(obj.base);
            }
            Region::Stack { task, .. } => panic!(
                "runtime.Pinner: {addr:#x} is on the stack of task {task}: a stack cannot be pinned; \
                 allocate the value with cgocheck::new instead"
            ),
            Region::Freed(obj) => {
                panic!(
                    "runtime.Pinner: {addr:#x} points into a freed object (slot at {:#x} of type {})",
                    obj.base, obj.elem
                )
            }
            Region::Unallocated(obj) => {
                panic!(
                    "runtime.Pinner: {addr:#x} is not an allocated object (slot at {:#x}, never allocated)",
                    obj.base
                )
            }
            Region::SpanTail { span_base, .. } => {
                panic!("runtime.Pinner: {addr:#x} is not inside any object (unused tail of the span at {span_base:#x})")
            }
        }
    }

    /// Unpins everything this Pinner pinned. The Pinner can be reused.
    pub fn unpin(&mut self) {
        if self.pinned.is_empty() {
            return;
        }
        let np = NoPreempt::new();
        let mut pins = pins(&np);
        for base in self.pinned.drain(..) {
            let n = pins.get_mut(&base).expect("a pinned object has a pin count (free refuses pinned objects)");
            *n -= 1;
            if *n == 0 {
                pins.remove(&base);
                let (span, slot) = heap().slot_of(base).expect("a pinned object has a span");
                span.set_pinned(slot, false);
            }
        }
    }

    /// Number of pins this Pinner holds.
    pub fn len(&self) -> usize {
        self.pinned.len()
    }

    /// Whether it holds no pin.
    pub fn is_empty(&self) -> bool {
        self.pinned.is_empty()
    }
}

impl Drop for Pinner {
    fn drop(&mut self) {
        if self.pinned.is_empty() {
            return;
        }
        if std::thread::panicking() {
            self.unpin();
            return;
        }
        if let Some(first) = self.pinned.first() {
            eprintln!(
                "cgocheck: runtime.Pinner: found leaking pinned pointer; forgot to call Unpin()? \
                 ({} pin(s), first on the object at {first:#x}; unpinning them now)",
                self.pinned.len()
            );
            self.unpin();
        }
    }
}

/// Whether `p` is pinned: a heap object with a positive pin count, a
/// managed global, or C memory (nothing to pin). Task stacks and freed
/// objects are not.
pub fn is_pinned(p: impl PinTarget) -> bool {
    heap().is_pinned(p.pin_addr())
}

//! The questions the checker asks about memory, as a trait the runtime's heap
//! implements.
//!
//! Go's checks call `inheap`, `spanOf`, `findObject`, `isPinned`, the heap
//! bitmap and the module data/bss ranges directly. Here the checker sees only
//! [`ManagedMemory`]: one call classifies an address ([`Region`]), one says
//! whether a managed address is pinned, and one names the managed global an
//! address lies in ([`GlobalVar`]: its bounds and type, so that a pointer
//! into a global is checked over that global, as one into a heap object is
//! over the object). A heap object comes back as an
//! [`Object`] that carries its pointer bitmap, so the checker walks pointer
//! words a bitmap word at a time without calling back into the heap.
//!
//! "Managed memory" is the heap, task stacks, and managed globals. Everything
//! else is C memory, which the checker never inspects.

use crate::types::Type;
use bitvec::prelude::*;

/// A live (or freed) heap object, as the heap knows it.
#[derive(Debug, Clone, Copy)]
pub struct Object<'m> {
    /// Address of the object's first byte.
    pub base: usize,
    /// Bytes that belong to the object (its size-class slot, or the whole
    /// large object). Interior pointers are `base..base + size`.
    pub size: usize,
    /// Type of one element: the object's type for a single allocation, the
    /// element type for an array or slice backing array.
    pub elem: &'m Type,
    /// Number of `elem`s the allocation asked for (1 for a single value).
    pub count: usize,
    /// One bit per word of the object (`size / 8` bits): set where the word
    /// is a pointer word. Words beyond the requested elements are zero
    /// memory and not marked.
    pub ptr_bits: &'m BitSlice<u64, Lsb0>,
}

impl Object<'_> {
    /// Whether `addr` lies inside the object.
    pub fn contains(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base) < self.size
    }
}

/// Where an address points.
#[derive(Debug, Clone, Copy)]
pub enum Region<'m> {
    /// Not managed memory: C heap, C stack, C globals, mmap, null.
    NotManaged,
    /// Inside a live heap object (interior pointers included).
    Heap(Object<'m>),
    /// Inside a heap span slot that held an object which was freed: a
    /// dangling pointer. The checker reports it. (`count` is the freed
    /// object's; the slot may be handed out again later.)
    Freed(Object<'m>),
    /// Inside a heap span slot that has never held an object: not a pointer
    /// any allocation returned (bad arithmetic, a stale guess). Kept apart
    /// from [`Region::Freed`] so that "freed" means exactly that. `elem` is
    /// the type the span's slots are for (`count` says nothing).
    Unallocated(Object<'m>),
    /// In the address range of a heap span but past the last object slot
    /// (the span's tail that no object uses).
    SpanTail {
        /// The span's first byte.
        span_base: usize,
        /// One past its last byte.
        span_end: usize,
    },
    /// The address handed out for zero-sized allocations.
    ZeroSized,
    /// Inside a task stack (`lo..hi`, `lo` is the lowest usable address).
    Stack {
        /// The task running on it.
        task: u64,
        /// Its lowest usable address (above the guard page).
        lo: usize,
        /// One past its highest address.
        hi: usize,
    },
    /// Inside the managed globals section (`lo..hi`). Which global, with
    /// its bounds and type, is [`ManagedMemory::global`]'s answer (Go knows
    /// only the data/bss range and refuses any unknown pointer into it).
    Global {
        /// The section's first byte.
        lo: usize,
        /// One past its last byte.
        hi: usize,
    },
}

/// One managed global variable: where it is and what it holds. It is
/// checked like a heap object of type `ty`.
#[derive(Debug, Clone, Copy)]
pub struct GlobalVar<'m> {
    /// Address of the variable's first byte.
    pub base: usize,
    /// Its type; its size is `ty.size`.
    pub ty: &'m Type,
}

impl GlobalVar<'_> {
    /// Whether `addr` lies inside the variable.
    pub fn contains(&self, addr: usize) -> bool {
        addr.wrapping_sub(self.base) < self.ty.size
    }
}

impl Region<'_> {
    /// Whether the address is managed memory (Go's `cgoIsGoPointer`, widened
    /// to task stacks). Freed and tail slots still count: they are in the
    /// managed heap's address range.
    pub fn is_managed(&self) -> bool {
        !matches!(self, Region::NotManaged)
    }
}

/// `mem`'s answer for `addr`, except that an address one past the end of a
/// live heap object A that lands where no object has ever been — a heap
/// slot never allocated, a span's unused tail — is A's (its end pointer).
///
/// This is the one sound way out of the one-past-the-end ambiguity: no
/// allocation ever returned an address there, so no real pointer to
/// another object has that value; the only pointer that does is A's end
/// (`as_ptr_range().end`, zlib's `next_in` after the last byte of the last
/// object of a span). It is checked as a pointer into A, which C may walk
/// back from: below the top level A must be pinned, and an unknown pointer
/// checks all of A. A freed slot after A is not resolved this way: a
/// pointer to it may be a real, dangling one.
#[inline(always)]
pub(crate) fn region_of<M: ManagedMemory + ?Sized>(mem: &M, addr: usize) -> Region<'_> {
    let r = mem.region(addr);
    match r {
        Region::Unallocated(_) | Region::SpanTail { .. } => end_of_live(mem, addr).map_or(r, Region::Heap),
        _ => r,
    }
}

/// The live heap object that ends exactly at `addr`, if any.
#[cold]
pub(crate) fn end_of_live<M: ManagedMemory + ?Sized>(mem: &M, addr: usize) -> Option<Object<'_>> {
    match mem.region(addr.checked_sub(1)?) {
        Region::Heap(o) if o.base + o.size == addr => Some(o),
        _ => None,
    }
}

/// What the checker needs from a managed heap. Implemented by the runtime's
/// heap; every method must be O(1) and must not allocate (the checker runs on
/// every boundary crossing).
pub trait ManagedMemory {
    /// Classifies `addr`.
    fn region(&self, addr: usize) -> Region<'_>;

    /// The managed global variable that `addr` lies in (`None` when `addr`
    /// is not inside one: outside the globals section, or in padding
    /// between two variables). Asked only for addresses whose region is
    /// [`Region::Global`], so it may cost more than `region` (a binary
    /// search), but it must not allocate after its first call. The answer
    /// must be true: `ty` describes the value at `base`, which is readable
    /// and aligned for it (the checker reads the global's pointer words).
    fn global(&self, addr: usize) -> Option<GlobalVar<'_>>;

    /// Whether the managed memory at `addr` is pinned: a heap object with a
    /// positive pin count (a Pinner holds it). A Handle keeps its value alive
    /// but does not pin it, as in Go. Managed globals count as
    /// pinned (they never move or die, as Go treats data/bss); task stacks
    /// and freed slots do not; unmanaged addresses answer `true` (nothing to
    /// pin).
    fn is_pinned(&self, addr: usize) -> bool;
}

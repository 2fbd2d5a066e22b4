//! Task stacks: the hook the scheduler (a later issue) allocates them with.
//!
//! A task stack is managed memory: a pointer into it answers
//! `Region::Stack { task, lo, hi }`, and the checker refuses to let C keep
//! one. So stacks are carved from the heap's reserved range like everything
//! else, get a span of kind `Stack`, and their pages point to it in the page
//! table: `region()` stays one range test and one table load for them too.
//!
//! Layout of a stack span (addresses grow to the right):
//!
//! ```text
//! base          lo = base + 8 KiB                              hi = end
//! | guard page  | usable stack (grows down from hi)              |
//! | PROT_NONE   | read-write, zero when handed out               |
//! ```
//!
//! The guard page turns an overflow into a fault at a known address; it is
//! not managed memory (`region()` answers `NotManaged`), and
//! [`Heap::stack_guard_hit`] tells the crash report whose stack it guards.
//! A freed stack's pages are given back to the kernel, its run is kept
//! (guard still protected) for the next stack of a similar size.

use super::sizeclass::PAGE;
use super::span::SpanKind;
use super::Heap;
use std::sync::atomic::Ordering;

/// A task stack handed out by [`Heap::alloc_stack`]: usable memory is
/// `lo..hi`, with a guard page just below `lo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackRange {
    /// Lowest usable address (8 KiB aligned).
    pub lo: usize,
    /// One past the highest usable address: the initial stack pointer.
    pub hi: usize,
}

impl Heap {
    /// Allocates a stack of at least `size` usable bytes for task `task`,
    /// zero-filled, with a guard page below. `region()` of its addresses
    /// answers `Region::Stack { task, lo, hi }` until [`Heap::free_stack`].
    ///
    /// Panics, naming the request, when `size` is larger than the heap or
    /// does not fit in what is left of it.
    pub fn alloc_stack(&self, size: usize, task: u64) -> StackRange {
        let arena = self.arena();
        // Page 0 is the zero-sized address, one more is the guard page.
        let usable = arena.len - 2 * PAGE;
        if size > usable {
            panic!(
                "cgocheck: stack of {size} bytes is larger than the managed heap ({usable} bytes usable for a stack)"
            );
        }
        let npages = 1 + size.max(1).div_ceil(PAGE);
        let mut central = self.central();
        let Some(span) = central.take_stack(arena, npages) else {
            let used = central.in_use();
            drop(central);
            panic!(
                "cgocheck: managed heap exhausted: stack of {size} bytes does not fit, {used} of {} bytes in use",
                arena.len
            );
        };
        drop(central);
        span.task.store(task, Ordering::Relaxed);
        // Release: a reader that sees the stack live sees its task.
        span.take_slot(0, 1);
        StackRange { lo: span.base + PAGE, hi: span.end() }
    }

    /// Frees a stack from [`Heap::alloc_stack`]. Panics if `stack` is not a
    /// live stack.
    ///
    /// # Safety
    /// Nothing runs on the stack or uses memory in it any more.
    pub unsafe fn free_stack(&self, stack: StackRange) {
        let arena = self.arena();
        let span = stack
            .lo
            .checked_sub(arena.base)
            .filter(|&off| off < arena.len)
            .and_then(|off| arena.span_at(off / PAGE))
            .filter(|s| s.kind == SpanKind::Stack && s.base + PAGE == stack.lo && s.end() == stack.hi)
            .unwrap_or_else(|| panic!("cgocheck: free_stack of {stack:x?}, which is not a stack from alloc_stack"));
        assert!(span.clear_allocated(0), "cgocheck: free_stack of {stack:x?}: already freed");
        arena.discard(stack.lo, stack.hi - stack.lo);
        self.central().freed_stack(span);
    }
}

/// A fault address in the guard page of a live task stack: whose stack it
/// is (the crash report's stack-overflow diagnosis).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardHit {
    /// The task the stack was allocated for.
    pub task: u64,
    /// The stack's usable range; `hi - lo` is its size.
    pub stack: StackRange,
}

impl Heap {
    /// If `addr` is in the guard page of a live task stack, that stack and
    /// its task. Lock-free and allocation-free (one range test, one page
    /// table load), so the fatal-signal handler may call it.
    pub fn stack_guard_hit(&self, addr: usize) -> Option<GuardHit> {
        let arena = self.arena.get()?;
        let off = addr.checked_sub(arena.base).filter(|&off| off < arena.len)?;
        let span = arena.span_at(off / PAGE)?;
        let in_guard = span.kind == SpanKind::Stack && addr < span.base + PAGE && span.is_allocated(0);
        in_guard.then(|| GuardHit {
            task: span.task.load(Ordering::Acquire),
            stack: StackRange { lo: span.base + PAGE, hi: span.end() },
        })
    }
}

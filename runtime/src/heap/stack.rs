//! Task stacks: what the scheduler runs tasks (and C threads' callbacks) on.
//!
//! A task stack is managed memory: a pointer into it answers
//! `Region::Stack { task, lo, hi }`, and the checker refuses to let C keep
//! one. So stacks are carved from the heap's reserved range like everything
//! else (its stack range, arena.rs), get a span of kind `Stack`, and the
//! stack table maps their granules to it: `region()` stays one range test
//! and one table load for them too.
//!
//! A stack is a reservation, not memory: its pages are committed address
//! space that the kernel backs with 4 KiB pages (never huge pages) only
//! when the task touches them, so a stack costs what its task's deepest
//! call used, and a deep recursion simply touches more of it. The
//! scheduler's default is 16 MiB (sched/config.rs says why); a task that
//! waits touches one or two pages of it.
//!
//! Layout of a stack run (addresses grow to the right):
//!
//! ```text
//! run start      base          lo = base + 8 KiB                      hi = end
//! | rounding     | guard page  | usable stack (grows down from hi)    |
//! | guard too    |             | read-write, zero when handed out     |
//! ```
//!
//! The guard (`MADV_GUARD_INSTALL`, or `PROT_NONE` on kernels before 6.13,
//! arena.rs) turns an overflow into a fault at a known address; it is not
//! managed memory (`region()` answers `NotManaged`), and
//! [`Heap::stack_guard_hit`] tells the crash report whose stack it guards.
//! A freed stack's pages are given back to the kernel (`MADV_DONTNEED`:
//! resident memory follows live tasks), its run is kept (guard still in
//! place) for the next stack of a similar size.

use super::arena::StackGuards;
use super::sizeclass::PAGE;
use super::span::{Span, SpanKind};
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
    /// zero-filled, with a guard below. Only address space: pages become
    /// resident as they are touched. `region()` of its addresses
    /// answers `Region::Stack { task, lo, hi }` until [`Heap::free_stack`].
    ///
    /// Panics, naming the request, when `size` is larger than the heap's
    /// stack range or does not fit in what is left of it.
    pub fn alloc_stack(&self, size: usize, task: u64) -> StackRange {
        self.try_alloc_stack(size, task).unwrap_or_else(|why| panic!("cgocheck: {why}"))
    }

    /// [`Heap::alloc_stack`], answering why not instead of panicking (the
    /// scheduler's own message says which task could not start).
    pub(crate) fn try_alloc_stack(&self, size: usize, task: u64) -> Result<StackRange, String> {
        let arena = self.arena();
        // One page is the guard page.
        let stack_len = arena.reserved - arena.len;
        let usable = stack_len - PAGE;
        if size > usable {
            return Err(format!(
                "stack of {size} bytes is larger than the managed heap's stack range ({usable} bytes usable for a stack)"
            ));
        }
        let npages = 1 + size.max(1).div_ceil(PAGE);
        let mut central = self.central();
        let Some(span) = central.take_stack(arena, npages) else {
            let used = central.stacks_in_use();
            return Err(format!(
                "managed heap exhausted: stack of {size} bytes does not fit, {used} of the {stack_len} bytes of the \
                 heap's stack range in use (let tasks finish before starting more, or give them smaller stacks: \
                 CGOCHECK_STACK_KB or spawn_with_stack)"
            ));
        };
        drop(central);
        span.task.store(task, Ordering::Relaxed);
        // Release: a reader that sees the stack live sees its task.
        span.take_slot(0, 1);
        Ok(StackRange { lo: span.base() + PAGE, hi: span.end() })
    }

    /// Frees a stack from [`Heap::alloc_stack`], giving the pages its task
    /// touched back to the kernel. Panics if `stack` is not a live stack.
    ///
    /// # Safety
    /// Nothing runs on the stack or uses memory in it any more.
    pub unsafe fn free_stack(&self, stack: StackRange) {
        let arena = self.arena();
        let span = self.stack_span(stack, "free_stack");
        assert!(span.clear_allocated(0), "cgocheck: free_stack of {stack:x?}: already freed");
        arena.discard(stack.lo, stack.hi - stack.lo);
        self.central().freed_stack(span);
    }

    /// Gives the pages a live stack's task touched back to the kernel
    /// (`MADV_DONTNEED`), keeping the stack allocated: they read as zero
    /// and cost nothing until touched again. For a stack kept across idle
    /// periods, e.g. a C thread's callback stack after the thread exits.
    /// Panics if `stack` is not a live stack.
    ///
    /// # Safety
    /// Nothing runs on the stack or uses memory in it now.
    pub(crate) unsafe fn release_stack_pages(&self, stack: StackRange) {
        let arena = self.arena();
        let span = self.stack_span(stack, "release_stack_pages");
        assert!(span.is_allocated(0), "cgocheck: release_stack_pages of {stack:x?}: the stack was freed");
        arena.discard(stack.lo, stack.hi - stack.lo);
    }

    /// The span of `stack`, checking that `stack` is exactly a stack from
    /// [`Heap::alloc_stack`]; panics naming `what` otherwise.
    fn stack_span(&self, stack: StackRange, what: &str) -> &'static Span {
        let arena = self.arena();
        stack
            .lo
            .checked_sub(arena.base)
            .filter(|&off| off < arena.reserved)
            .and_then(|off| arena.span_at(off / PAGE))
            .filter(|s| s.kind == SpanKind::Stack && s.base() + PAGE == stack.lo && s.end() == stack.hi)
            .unwrap_or_else(|| panic!("cgocheck: {what} of {stack:x?}, which is not a stack from alloc_stack"))
    }

    /// The address range task stacks (and their guards) are carved from:
    /// just above [`Heap::reserved_range`]'s objects, inside the range
    /// `region()` answers for.
    pub fn stack_range(&self) -> (usize, usize) {
        let a = self.arena();
        (a.base + a.len, a.base + a.reserved)
    }

    /// Kernel mappings each task stack adds (`/proc/self/maps` lines,
    /// counted against `vm.max_map_count`): 0 with guard regions (Linux
    /// 6.13+), 2 with the `mprotect` guards of older kernels (the guard and
    /// the stack memory above it split the stacks' mapping).
    pub fn stack_mappings_per_task(&self) -> usize {
        match self.arena().guards {
            StackGuards::GuardRegions => 0,
            StackGuards::Mprotect => 2,
        }
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
    /// If `addr` is in the guard of a live task stack (its guard page or
    /// the run's slack below, all guarded), that stack and its task. Lock-free and allocation-free (one range test, one page
    /// table load), so the fatal-signal handler may call it.
    pub fn stack_guard_hit(&self, addr: usize) -> Option<GuardHit> {
        let arena = self.arena.get()?;
        let off = addr.checked_sub(arena.base).filter(|&off| off < arena.reserved)?;
        let span = arena.span_at(off / PAGE)?;
        let in_guard = span.kind == SpanKind::Stack && addr < span.base() + PAGE && span.is_allocated(0);
        in_guard.then(|| GuardHit {
            task: span.task.load(Ordering::Acquire),
            stack: StackRange { lo: span.base() + PAGE, hi: span.end() },
        })
    }
}

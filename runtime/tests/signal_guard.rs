//! The heap's guard-page lookup, which turns a fault address into "task N
//! overflowed its stack" in a crash report: exactly the guard of a live
//! stack (its guard page and the rest of its run below, all guarded)
//! answers, with the stack's task and bounds.

use cgocheck::heap;
use cgocheck::heap::sizeclass::PAGE;
use cgocheck::heap::GuardHit;

#[test]
fn the_guard_page_of_a_live_stack_names_its_task() {
    let s = heap().alloc_stack(64 * 1024, 41);
    let hit = GuardHit { task: 41, stack: s };
    assert_eq!(s.hi - s.lo, 64 * 1024);
    for addr in [s.lo - PAGE, s.lo - PAGE / 2, s.lo - 1] {
        assert_eq!(heap().stack_guard_hit(addr), Some(hit), "{addr:#x} in the guard of {s:x?}");
    }
    // The stack itself, and what lies below its 256 KiB-aligned run, are
    // not the guard.
    let run = (s.lo - PAGE) & !((256 << 10) - 1);
    assert_eq!(heap().stack_guard_hit(run), Some(hit), "{run:#x}: the run's start, below the guard page");
    for addr in [s.lo, s.lo + 100, s.hi - 1, run - 1] {
        assert_eq!(heap().stack_guard_hit(addr), None, "{addr:#x} vs {s:x?}");
    }
    // SAFETY: nothing runs on the stack.
    unsafe { heap().free_stack(s) };
    assert_eq!(heap().stack_guard_hit(s.lo - 1), None, "a freed stack guards no task");
}

#[test]
fn addresses_outside_the_heap_are_no_guard() {
    let local = 0u64;
    for addr in [0, 8, &local as *const u64 as usize, usize::MAX] {
        assert_eq!(heap().stack_guard_hit(addr), None);
    }
}

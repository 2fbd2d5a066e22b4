//! The task-stack hook: stacks come from the heap's range, answer
//! `Region::Stack` with their task and bounds, have a guard page below, and
//! are reusable after `free_stack`.

use cgocheck::{heap, ManagedMemory, Region, StackRange};
use std::process::Command;

#[track_caller]
fn stack_of(addr: usize) -> (u64, usize, usize) {
    match heap().region(addr) {
        Region::Stack { task, lo, hi } => (task, lo, hi),
        other => panic!("{addr:#x}: expected a stack, got {other:?}"),
    }
}

#[test]
fn stacks_answer_stack_with_task_and_bounds() {
    let st = heap().alloc_stack(64 << 10, 42);
    assert_eq!(st.hi - st.lo, 64 << 10);
    assert_eq!(st.lo % 8192, 0);
    for addr in [st.lo, st.lo + 1000, st.hi - 1] {
        assert_eq!(stack_of(addr), (42, st.lo, st.hi));
    }
    let (lo, hi) = heap().reserved_range();
    assert!(lo <= st.lo - 8192 && st.hi <= hi, "stacks come from the heap's range");
    // The guard page is not managed memory.
    assert!(matches!(heap().region(st.lo - 1), Region::NotManaged));
    assert!(matches!(heap().region(st.lo - 8192), Region::NotManaged));
    // The memory is usable and zero.
    let words = (st.hi - st.lo) / 8;
    // SAFETY: lo..hi is the stack's readable, writable memory, used by no
    // task.
    let mem = unsafe { std::slice::from_raw_parts_mut(st.lo as *mut u64, words) };
    assert!(mem.iter().all(|&w| w == 0));
    mem.fill(0x55);
    // SAFETY: nothing runs on it.
    unsafe { heap().free_stack(st) };
    assert!(matches!(heap().region(st.lo), Region::NotManaged));
    assert!(!matches!(heap().region(st.hi - 1), Region::Stack { .. }));
}

#[test]
fn freed_stacks_are_reused_zeroed() {
    // An odd size, so parallel tests do not take the freed run.
    let size = 200 << 10;
    let st = heap().alloc_stack(size, 1);
    // SAFETY: the stack's own memory.
    unsafe { (st.hi as *mut u64).sub(1).write(7) };
    // SAFETY: nothing runs on it.
    unsafe { heap().free_stack(st) };
    let again = heap().alloc_stack(size, 2);
    assert_eq!(again, st);
    assert_eq!(stack_of(again.lo).0, 2, "the new task");
    // SAFETY: the stack's own memory.
    assert_eq!(unsafe { (again.hi as *const u64).sub(1).read() }, 0);
}

#[test]
#[should_panic(expected = "not a stack from alloc_stack")]
fn freeing_a_non_stack_panics() {
    let g = cgocheck::new([0u64; 2]);
    // SAFETY: panics before touching anything.
    unsafe { heap().free_stack(StackRange { lo: g.addr(), hi: g.addr() + 16 }) };
}

/// Run as a child by `guard_page_faults`: writes just below a stack.
#[test]
fn child_write_guard_page() {
    if std::env::var_os("CGOCHECK_STACK_CHILD").is_none() {
        return;
    }
    let st = heap().alloc_stack(16 << 10, 3);
    // SAFETY: deliberately faults (the guard page is PROT_NONE); the parent
    // test expects the runtime's fatal-signal handler to report it as task
    // 3's stack overflow and exit with status 2.
    unsafe { ((st.lo - 8) as *mut u64).write_volatile(1) };
}

#[test]
fn guard_page_faults() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_write_guard_page", "--nocapture", "--test-threads=1"])
        .env("CGOCHECK_STACK_CHILD", "1")
        .env_remove("GOTRACEBACK")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(stderr.starts_with("runtime: task 3 overflowed its 16384-byte stack"), "{stderr}");
    assert!(stderr.contains("\nSIGSEGV: segmentation violation\n"), "{stderr}");
}

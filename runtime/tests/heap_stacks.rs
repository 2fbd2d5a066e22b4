//! Task stacks in the heap: they come from the heap's stack range, answer
//! `Region::Stack` with their task and bounds, have a guard below (the
//! guard page and the run's rounding below it), cost memory only for the
//! pages touched, give those back on `free_stack`, and are reusable after
//! it. (Tasks on them, deep recursion and a million idle tasks:
//! task_stacks.rs.)

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
    let (lo, hi) = heap().stack_range();
    assert!(lo <= st.lo - 8192 && st.hi <= hi, "stacks come from the heap's stack range");
    let (objects_lo, objects_hi) = heap().reserved_range();
    assert!(objects_lo < objects_hi && objects_hi <= lo, "objects lie below the stacks");
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
    cgocheck::run_test(|| {
        let g = cgocheck::new([0u64; 2]);
        // SAFETY: panics before touching anything.
        unsafe { heap().free_stack(StackRange { lo: g.addr(), hi: g.addr() + 16 }) };
    });
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

#[test]
fn the_guard_is_everything_below_the_stack_in_its_run() {
    // 64 KiB + the guard page round up to a 256 KiB run: 184 KiB of
    // rounding below the guard page, guarded too.
    let st = heap().alloc_stack(64 << 10, 44);
    let run = (st.lo - 8192) & !((256 << 10) - 1);
    assert_eq!(st.lo - run, 192 << 10, "{st:x?}");
    for addr in [run, run + 4096, st.lo - 8193, st.lo - 8192, st.lo - 1] {
        let hit = heap().stack_guard_hit(addr).unwrap_or_else(|| panic!("{addr:#x} below {st:x?}"));
        assert_eq!((hit.task, hit.stack), (44, st));
        assert!(matches!(heap().region(addr), Region::NotManaged), "{addr:#x}");
    }
    assert_eq!(heap().stack_guard_hit(st.lo), None);
    // SAFETY: nothing runs on it.
    unsafe { heap().free_stack(st) };
}

/// Resident memory of this process, KiB.
fn rss_kib() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix(" kB")?.parse().ok()).unwrap()
}

/// Run as a child by `stacks_cost_only_the_pages_touched`: its own process,
/// so no other test's memory moves its RSS.
#[test]
fn child_stack_residency() {
    if std::env::var_os("CGOCHECK_STACK_CHILD").is_none() {
        return;
    }
    let _ = heap().stack_range();
    let before = rss_kib();
    // 64 stacks of 8 MiB: 512 MiB reserved.
    let stacks: Vec<StackRange> = (0..64).map(|i| heap().alloc_stack(8 << 20, 100 + i)).collect();
    let reserved = rss_kib();
    assert!(reserved - before < 1024, "64 untouched 8 MiB stacks made {} KiB resident", reserved - before);
    // Touch the top 4 MiB of each, as a deep recursion would: 4 KiB pages,
    // never 2 MiB huge pages.
    for st in &stacks {
        // SAFETY: the stack's own memory, used by no task.
        unsafe { std::ptr::write_bytes((st.hi - (4 << 20)) as *mut u8, 1, 4 << 20) };
    }
    let touched = rss_kib();
    let want = (64 * 4) << 10;
    assert!(touched - reserved >= want && touched - reserved < want + 4096, "touched {} KiB", touched - reserved);
    let smaps = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    let huge = smaps.lines().find(|l| l.starts_with("AnonHugePages:")).unwrap();
    assert!(huge.split_whitespace().nth(1) == Some("0"), "stack memory in huge pages: {huge}");
    for st in stacks {
        // SAFETY: nothing runs on it.
        unsafe { heap().free_stack(st) };
    }
    let freed = rss_kib();
    // Within 1 MiB: the test harness allocates meanwhile.
    assert!(touched - freed + 1024 >= want, "freeing gave back only {} of {want} KiB", touched - freed);
    println!("CHILD OK: {before} -> {reserved} -> {touched} -> {freed} KiB");
}

#[test]
fn stacks_cost_only_the_pages_touched() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_stack_residency", "--nocapture", "--test-threads=1"])
        .env("CGOCHECK_STACK_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.contains("CHILD OK"), "{out:?}");
}

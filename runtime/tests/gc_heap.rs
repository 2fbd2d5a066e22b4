//! The collector's heap side: marking, sweeping, free page runs and
//! scavenging, driven directly from explicit roots.
//!
//! `cgocheck::heap::testing::collect_from` runs the same mark and sweep
//! steps as a collection (`gc/mark.rs`, `gc/sweep.rs`) with the roots a
//! test names instead of the world's, and without stopping the world. So
//! every test runs alone in a child process (`sched_util::child`) with
//! `GOGC=off` (no collection of the runtime's own starts meanwhile), in a
//! task (`run_test`). Objects the test does not name as roots are garbage
//! to these cycles even while the test holds them: the test only looks at
//! them through the heap's lookup (`region`) or raw reads of their
//! (committed, zeroed) memory afterwards.
//!
//! The last test, `gc_end_to_end`, runs real collections (`cgocheck::gc()`:
//! world stopped, roots from the task's stack).

#[path = "sched_util/mod.rs"]
mod sched_util;

use cgocheck::heap::sizeclass::{class_for, CLASSES};
use cgocheck::heap::testing::collect_from;
use cgocheck::{heap, new, new_slice, CType, Gc, ManagedMemory, Pinner, Region};

/// Runs test `name` in a child process with collections off (module
/// comment); in the child, runs `body` in a task.
fn alone(name: &str, body: impl FnOnce() + Send + 'static) {
    if sched_util::is_child() {
        cgocheck::run_test(body);
    } else {
        sched_util::child_passes(name, &[("GOGC", "off")]);
    }
}

/// 32 bytes, no pointers.
#[derive(CType, Clone, Copy)]
#[repr(C)]
struct Leaf {
    x: [u64; 4],
}

/// A pointer word, then a word holding an address as an integer.
#[derive(CType)]
#[repr(C)]
struct Holder {
    p: Gc<Leaf>,
    addr: u64,
}

/// A list node (32 bytes).
#[derive(CType)]
#[repr(C)]
struct Node {
    next: Gc<Node>,
    pad: [u64; 3],
}

/// 1 KiB, no pointers.
#[derive(CType)]
#[repr(C)]
struct Kilo {
    w: [u64; 128],
}

fn is_live(addr: usize) -> bool {
    matches!(heap().region(addr), Region::Heap(_))
}

/// The 8-byte words of `[addr, addr + len)`, read raw (the memory stays
/// committed after a free).
fn words(addr: usize, len: usize) -> Vec<u64> {
    // SAFETY: heap memory is never unmapped; the tests read only slots
    // they allocated, whose pages stay committed read-write.
    (0..len / 8).map(|i| unsafe { std::ptr::read_volatile((addr + 8 * i) as *const u64) }).collect()
}

/// Resident memory of this process (VmRSS), bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    line.split_whitespace().nth(1).expect("VmRSS value").parse::<usize>().expect("VmRSS number") * 1024
}

#[test]
fn precise_marking_follows_the_bitmap() {
    alone("precise_marking_follows_the_bitmap", || {
        let kept = new(Leaf { x: [1; 4] });
        let not_kept = new(Leaf { x: [2; 4] });
        let h = new(Holder { p: kept, addr: not_kept.addr() as u64 });
        let (c, marked) = collect_from(&[h.addr()], &[], false, 1, &[h.addr(), kept.addr(), not_kept.addr()]);
        // The pointer word keeps its target; the integer word holding an
        // address does not.
        assert_eq!(marked, [true, true, false]);
        // A Holder is 16 bytes (class 16), a Leaf 32.
        assert_eq!((c.live_objects, c.live_bytes), (2, 16 + 32));
        assert!(is_live(kept.addr()) && is_live(h.addr()));
        assert!(matches!(heap().region(not_kept.addr()), Region::Freed(_)), "{:?}", heap().region(not_kept.addr()));
        assert_eq!(kept.x, [1; 4]);
        assert_eq!(h.addr, not_kept.addr() as u64);
    });
}

#[test]
fn precise_roots_scan_only_their_bits() {
    alone("precise_roots_scan_only_their_bits", || {
        let a = new(Leaf { x: [3; 4] });
        let b = new(Leaf { x: [4; 4] });
        // A "global" of two words: bit 0 set (a pointer), bit 1 clear.
        let global = [a.addr(), b.addr()];
        let bits = bitvec::bitvec![u64, bitvec::order::Lsb0; 1, 0];
        let (_, marked) = collect_from(&[], &[(global.as_ptr() as usize, &bits)], false, 1, &[a.addr(), b.addr()]);
        assert_eq!(marked, [true, false]);
        assert!(is_live(a.addr()) && !is_live(b.addr()));
    });
}

#[test]
fn interior_pointers_keep_objects() {
    alone("interior_pointers_keep_objects", || {
        let small = new(Kilo { w: [7; 128] });
        let big = new_slice::<u64>(50_000);
        let big_dead = new_slice::<u64>(50_000);
        let roots = [small.addr() + 1000, big.as_ptr() as usize + 300_000 + 3];
        let (c, _) = collect_from(&roots, &[], false, 1, &[]);
        assert_eq!(c.live_objects, 2);
        assert!(is_live(small.addr()) && is_live(big.as_ptr() as usize));
        assert!(matches!(heap().region(big_dead.as_ptr() as usize), Region::Freed(_)));
        assert_eq!(small.w, [7; 128]);
    });
}

#[test]
fn words_that_are_not_objects_are_ignored() {
    alone("words_that_are_not_objects_are_ignored", || {
        // A freed slot, a never-allocated slot, a span's tail (class 48:
        // 170 slots and 32 bytes of tail in a page), a stack, the
        // zero-sized address, pages with no span, C memory, odd values.
        let freed = new(Leaf { x: [5; 4] });
        // SAFETY: not used again.
        unsafe { heap().free(freed.as_ptr().cast()) };
        let last = new(Leaf { x: [6; 4] });
        let never = last.addr() + 32;
        #[derive(CType)]
        #[repr(C)]
        struct Six {
            w: [u64; 6],
        }
        let six = new(Six { w: [1; 6] });
        let span_base = six.addr() & !8191;
        let tail = span_base + 170 * 48 + 8;
        assert!(matches!(heap().region(tail), Region::SpanTail { .. }), "{:?}", heap().region(tail));
        assert!(matches!(heap().region(never), Region::Unallocated(_)));
        let on_stack = 0u64;
        let c_mem = Box::new(0u64);
        let (lo, hi) = heap().reserved_range();
        let roots = [
            freed.addr(),
            never,
            tail,
            &on_stack as *const u64 as usize,
            heap().zero_sized_addr(),
            lo + 8,
            hi - 8,
            lo + (hi - lo) / 2,
            heap().stack_range().0 + 4096,
            &*c_mem as *const u64 as usize,
            0,
            1,
            usize::MAX,
            usize::MAX - 7,
        ];
        let (c, marked) = collect_from(&roots, &[], false, 2, &[freed.addr(), never]);
        assert_eq!((c.live_objects, c.live_bytes), (0, 0));
        assert_eq!(marked, [false, false]);
        // Unrooted, the live ones died too.
        assert!(!is_live(last.addr()) && !is_live(six.addr()));
    });
}

#[test]
fn sweep_frees_exactly_the_unmarked_and_zeroes_them() {
    alone("sweep_frees_exactly_the_unmarked_and_zeroes_them", || {
        let all: Vec<Gc<Leaf>> = (0..3000u64).map(|i| new(Leaf { x: [i + 1; 4] })).collect();
        let roots: Vec<usize> = all.iter().step_by(2).map(|g| g.addr()).collect();
        let before = cgocheck::heap::counters();
        let probe: Vec<usize> = all.iter().map(|g| g.addr()).collect();
        let (c, marked) = collect_from(&roots, &[], false, 2, &probe);
        assert_eq!((c.live_objects, c.live_bytes), (1500, 1500 * 32));
        let after = cgocheck::heap::counters();
        assert!(after.frees - before.frees >= 1500, "{before:?} -> {after:?}");
        for (i, g) in all.iter().enumerate() {
            assert_eq!(marked[i], i % 2 == 0, "object {i}");
            if i % 2 == 0 {
                assert!(is_live(g.addr()), "object {i} was marked and must live");
                assert_eq!(g.x, [i as u64 + 1; 4]);
            } else {
                assert!(!is_live(g.addr()), "object {i} was not marked and must be freed");
                assert_eq!(words(g.addr(), 32), [0; 4], "object {i} is zeroed when freed");
            }
        }
        // The freed slots are allocated again (zeroed).
        let again: Vec<Gc<Leaf>> = (0..3000).map(|_| new(Leaf { x: [9; 4] })).collect();
        let reused = again.iter().filter(|g| probe.contains(&g.addr())).count();
        assert!(reused >= 1000, "only {reused} freed slots reused");
    });
}

#[test]
fn pinned_unmarked_objects_survive() {
    alone("pinned_unmarked_objects_survive", || {
        let leaf = new(Leaf { x: [8; 4] });
        let pinned = new(Holder { p: leaf, addr: 0 });
        let mut pinner = Pinner::new();
        pinner.pin(pinned);
        // Not a root, but pinned: the sweep keeps it. Its referent is kept
        // only when the pinned objects are marked as roots.
        let (_, marked) = collect_from(&[], &[], false, 1, &[pinned.addr(), leaf.addr()]);
        assert_eq!(marked, [false, false]);
        assert!(is_live(pinned.addr()), "a pinned object is never swept");
        assert!(!is_live(leaf.addr()));
        let leaf2 = new(Leaf { x: [9; 4] });
        // SAFETY: the pinned object is ours; nobody else touches it.
        unsafe { (*pinned.as_ptr()).p = leaf2 };
        let (c, marked) = collect_from(&[], &[], true, 1, &[pinned.addr(), leaf2.addr()]);
        assert_eq!(marked, [true, true]);
        assert_eq!(c.live_objects, 2);
        assert!(is_live(leaf2.addr()));
        pinner.unpin();
        collect_from(&[], &[], false, 1, &[]);
        assert!(!is_live(pinned.addr()), "unpinned and unreachable: freed");
    });
}

#[test]
fn large_objects_are_freed_and_reused() {
    alone("large_objects_are_freed_and_reused", || {
        let a = new_slice::<u64>(40_000);
        // SAFETY: ours alone.
        unsafe { a.as_mut_slice().fill(0xABCD) };
        let base = a.as_ptr() as usize;
        let before = cgocheck::heap::counters();
        let (c, marked) = collect_from(&[], &[], false, 1, &[base]);
        assert_eq!((c.live_objects, marked[0]), (0, false));
        assert!(matches!(heap().region(base + 100), Region::Freed(o) if o.base == base));
        let after = cgocheck::heap::counters();
        assert_eq!(after.freed - before.freed, 320_000);
        let b = new_slice::<u64>(40_000);
        assert_eq!(b.as_ptr() as usize, base, "the freed run is reused");
        assert!(b.as_slice().iter().all(|&w| w == 0), "reused pages read as zero");
        // A smaller object of another type takes part of a freed run.
        let (_, _) = collect_from(&[], &[], false, 1, &[]);
        let sys = cgocheck::heap::counters().heap_sys;
        let c = new_slice::<u32>(20_000);
        assert_eq!(c.as_ptr() as usize, base, "a smaller request takes the run's first pages");
        assert_eq!(cgocheck::heap::counters().heap_sys, sys, "no fresh pages were taken");
    });
}

#[test]
fn a_fully_free_span_is_reused_by_another_size_class() {
    alone("a_fully_free_span_is_reused_by_another_size_class", || {
        let c16 = &CLASSES[class_for(32, 8).unwrap()];
        let c1k = &CLASSES[class_for(1024, 8).unwrap()];
        let leaves: Vec<usize> = (0..8 * c16.nslots).map(|_| new(Leaf { x: [1; 4] }).addr()).collect();
        let spans: std::collections::BTreeSet<usize> = leaves.iter().map(|a| a & !(c16.npages * 8192 - 1)).collect();
        collect_from(&[], &[], false, 1, &[]);
        let idle = cgocheck::heap::counters();
        assert!(idle.heap_idle >= 6 * 8192 * c16.npages as u64, "the all-free spans' pages are free runs: {idle:?}");
        let sys = idle.heap_sys;
        let kilos: Vec<usize> = (0..4 * c1k.nslots).map(|_| new(Kilo { w: [2; 128] }).addr()).collect();
        assert_eq!(cgocheck::heap::counters().heap_sys, sys, "1 KiB objects took the freed pages, no fresh ones");
        let inside = kilos.iter().filter(|&&a| spans.contains(&(a & !(c16.npages * 8192 - 1)))).count();
        assert!(inside > 0, "no 1 KiB object went into the 32-byte spans' pages");
        for &a in &kilos {
            assert_eq!(words(a, 1024), [2; 128]);
        }
    });
}

#[test]
fn scavenging_lowers_rss() {
    alone("scavenging_lowers_rss", || {
        const TOTAL: usize = 64 << 20;
        let keep = new(Leaf { x: [1; 4] });
        for _ in 0..TOTAL / 1024 {
            new(Kilo { w: [3; 128] });
        }
        let full = rss();
        // The sweep frees every object (their spans' pages become free runs,
        // still resident); two cycles and a second later the scavenger
        // releases them (heap/runs.rs).
        collect_from(&[keep.addr()], &[], false, 1, &[]);
        let c = cgocheck::heap::counters();
        assert!(c.heap_idle >= (TOTAL as u64) * 3 / 4, "the freed spans are free runs: {c:?}");
        for _ in 0..2 {
            collect_from(&[keep.addr()], &[], false, 1, &[]);
        }
        assert!(full.saturating_sub(rss()) < TOTAL / 4, "released before a second passed");
        std::thread::sleep(std::time::Duration::from_millis(1100));
        collect_from(&[keep.addr()], &[], false, 1, &[]);
        let low = rss();
        let c = cgocheck::heap::counters();
        assert!(c.heap_released >= (TOTAL as u64) * 3 / 4, "{c:?}");
        assert!(full.saturating_sub(low) >= TOTAL * 3 / 4, "RSS {full} -> {low}: scavenging gave back too little");
        assert!(is_live(keep.addr()));
        assert_eq!(keep.x, [1; 4]);
        // Released pages are reused, zero.
        let again = new(Kilo { w: [0; 128] });
        assert_eq!(again.w, [0; 128]);
    });
}

/// A binary tree of `depth`.
#[derive(CType)]
#[repr(C)]
struct Tree {
    l: Gc<Tree>,
    r: Gc<Tree>,
}

fn tree(depth: u32) -> Gc<Tree> {
    if depth == 0 {
        return new(Tree { l: Gc::null(), r: Gc::null() });
    }
    new(Tree { l: tree(depth - 1), r: tree(depth - 1) })
}

#[test]
fn parallel_marking_finds_the_same_objects() {
    alone("parallel_marking_finds_the_same_objects", || {
        let t = tree(15);
        let dead = tree(10);
        let (one, m) = collect_from(&[t.addr()], &[], false, 1, &[dead.addr()]);
        assert_eq!(one.live_objects, (1 << 16) - 1);
        assert_eq!(m, [false]);
        // Mark threads join as the OS schedules them: repeat until one did.
        let mut joined = false;
        for _ in 0..50 {
            let (four, _) = collect_from(&[t.addr()], &[], false, 4, &[]);
            assert_eq!((four.live_objects, four.live_bytes), (one.live_objects, one.live_bytes));
            joined |= four.workers >= 2;
        }
        assert!(joined, "no mark thread ever joined");
    });
}

/// Marking speed on a 64 MiB live list (`cargo test --release --test
/// gc_heap -- --ignored --nocapture marking_speed`).
#[test]
#[ignore]
fn marking_speed_64mib_list() {
    if !sched_util::is_child() {
        let out = sched_util::child("marking_speed_64mib_list", &[("GOGC", "off")]);
        println!("{}", sched_util::text(&out));
        assert!(out.status.success());
        return;
    }
    alone("marking_speed_64mib_list", || {
        let n = (64 << 20) / 32;
        let mut head = Gc::<Node>::null();
        for _ in 0..n {
            head = new(Node { next: head, pad: [0; 3] });
        }
        for workers in [1, 2] {
            let (c, _) = collect_from(&[head.addr()], &[], false, workers, &[]);
            assert_eq!(c.live_objects, n);
            println!(
                "list: {n} objects (64 MiB), {} marking threads: mark {:.1} ms, {:.1} ns/object",
                c.workers,
                c.mark_ns as f64 / 1e6,
                c.mark_ns as f64 / n as f64
            );
        }
        let t = tree(21);
        for workers in [1, 2] {
            let (c, _) = collect_from(&[t.addr()], &[], false, workers, &[]);
            assert_eq!(c.live_objects, (1 << 22) - 1);
            println!(
                "tree: {} objects ({} MiB), {} marking threads: mark {:.1} ms, {:.1} ns/object",
                c.live_objects,
                c.live_bytes >> 20,
                c.workers,
                c.mark_ns as f64 / 1e6,
                c.mark_ns as f64 / c.live_objects as f64
            );
        }
    });
}

/// Addresses are kept hidden (XOR) so that no stack word keeps them.
const HIDE: usize = 0x5555_0000_0000_5555;

/// Unreachable objects, in a frame of their own (a debug build leaves
/// temporaries in its frame, which the collector scans conservatively):
/// 2000 small ones and a large one, their addresses hidden.
#[inline(never)]
fn make_garbage() -> (Vec<usize>, usize) {
    let garbage: Vec<usize> = (0..2000).map(|_| new(Leaf { x: [5; 4] }).addr() ^ HIDE).collect();
    (garbage, new_slice::<u64>(100_000).as_ptr() as usize ^ HIDE)
}

#[test]
fn gc_end_to_end() {
    // In a process of its own: a `gc()` called while another test's cycle
    // runs may be served by that cycle, which began before this garbage
    // was made.
    if !sched_util::is_child() {
        sched_util::child_passes("gc_end_to_end", &[]);
        return;
    }
    cgocheck::run_test(|| {
        let keep = new(Holder { p: new(Leaf { x: [4; 4] }), addr: 0 });
        let (garbage, big) = make_garbage();
        cgocheck::gc();
        let garbage: Vec<usize> = garbage.iter().map(|a| a ^ HIDE).collect();
        let big = big ^ HIDE;
        assert!(is_live(keep.addr()) && is_live(keep.p.addr()));
        assert_eq!(keep.p.x, [4; 4]);
        let freed = garbage.iter().filter(|&&a| !is_live(a)).count();
        assert!(freed >= 1900, "only {freed} of 2000 unreachable objects freed");
        assert!(!is_live(big));
        std::hint::black_box(&keep);
    });
}

/// Sum of a tree's depths, read through its pointers.
fn check(t: Gc<Tree>, depth: u32) -> u64 {
    if t.l.is_null() {
        assert!(t.r.is_null() && depth == 0, "a leaf above the bottom: a node was freed and reused");
        return 1;
    }
    1 + check(t.l, depth - 1) + check(t.r, depth - 1)
}

#[test]
fn sweeping_while_tasks_allocate_keeps_live_data() {
    // Real collections (world stopped, stacks scanned) while four tasks
    // build trees, drop some and check the ones they keep: the sweep of
    // each cycle runs beside the allocation that reuses what it frees.
    sched_util::watched("sweeping_while_tasks_allocate_keeps_live_data", || {
        cgocheck::run_test(|| {
            let workers: Vec<_> = (0..4)
                .map(|_| {
                    cgocheck::spawn(|| {
                        let keep = tree(12);
                        for round in 0..40 {
                            let t = tree(8 + round % 4);
                            assert_eq!(check(t, 8 + round % 4), (1 << (9 + round % 4)) - 1);
                            assert_eq!(check(keep, 12), (1 << 13) - 1);
                        }
                    })
                })
                .collect();
            for _ in 0..20 {
                cgocheck::gc();
            }
            for w in workers {
                w.join();
            }
            let c = cgocheck::heap::counters();
            assert!(c.frees > 0, "the collections freed nothing: {c:?}");
        })
    });
}

#[test]
fn allocation_outside_a_task_panics_naming_the_fix() {
    // A plain thread: its first allocation reaches the heap's slow path
    // (its cache is empty), which refuses it. Zero-sized values are fine.
    let r = std::thread::spawn(|| {
        let z = new([0u64; 0]);
        assert_eq!(z.addr(), heap().zero_sized_addr());
        let e = new_slice::<u64>(0);
        assert_eq!(e.len(), 0);
        std::panic::catch_unwind(|| new(Leaf { x: [1; 4] })).map(|_| ())
    })
    .join()
    .expect("the thread itself does not panic");
    let payload = r.expect_err("allocating outside a task must panic");
    let msg = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    for phrase in ["cgocheck::new called outside a task", "cgocheck::run_test", "cgocheck::Root"] {
        assert!(msg.contains(phrase), "the message lacks {phrase:?}: {msg}");
    }
    // A large object too.
    let r = std::thread::spawn(|| std::panic::catch_unwind(|| new_slice::<u64>(100_000)).map(|_| ())).join().unwrap();
    assert!(r.is_err(), "a large allocation outside a task must panic");
}

//! The heap at its limits: sizes that overflow or cannot fit, alignments
//! above the heap page, pointer bitmaps of huge requests, and the memory the
//! heap's own bookkeeping takes over a long run.
//!
//! Each of these was undefined behaviour or a process abort reachable from
//! safe code: `new_slice::<u8>(usize::MAX)` wrapped its page count to 0 and
//! handed out overlapping memory, `#[repr(align(16384))]` values came back
//! misaligned, a slice of 2^40 pointers aborted building its bitmap, and
//! slices of ever-different lengths leaked one bitmap each. The rule they
//! check: a request the heap cannot serve is a panic naming the request,
//! anything else gets memory that is aligned and overlaps nothing.
//!
//! Cases that could end the process (or that must measure its memory, or
//! would use up the heap other tests share) run in a child process of their
//! own (`sched_util::child`, the same re-exec helper the scheduler tests
//! use); the rest run in-process and catch the panic.

#[path = "sched_util/mod.rs"]
mod sched_util;

use cgocheck::{heap, new, new_slice, CType, Gc, Kind, ManagedMemory, PtrMask, Region, Type};
use sched_util::{child, child_fails, child_passes, is_child, text};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// The message of the panic `f` ends with; fails the test if it returns.
fn panic_of<R>(f: impl FnOnce() -> R) -> String {
    let Err(p) = catch_unwind(AssertUnwindSafe(|| drop(f()))) else {
        panic!("expected a panic, the request was served");
    };
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<not a string>".into())
}

/// The object `addr` is the base of.
fn base_of(addr: usize) -> (usize, usize) {
    match heap().region(addr) {
        Region::Heap(o) => (o.base, o.size),
        r => panic!("{addr:#x} is not a live heap object: {r:?}"),
    }
}

/// Peak and current resident memory of this process, in KiB.
fn rss_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Two fresh objects of each kind do not overlap: after a refused request
/// the heap still hands out distinct memory.
fn heap_still_sound() {
    let a = new_slice::<u8>(64);
    let b = new_slice::<u8>(64);
    let c = new_slice::<u64>(10_000);
    let d = new_slice::<u64>(10_000);
    let spans = [
        (a.as_ptr() as usize, 64),
        (b.as_ptr() as usize, 64),
        (c.as_ptr() as usize, 80_000),
        (d.as_ptr() as usize, 80_000),
    ];
    for (i, &(x, xl)) in spans.iter().enumerate() {
        for &(y, yl) in &spans[i + 1..] {
            assert!(x + xl <= y || y + yl <= x, "objects overlap: {x:#x}+{xl} and {y:#x}+{yl}");
        }
    }
    // Writes through one never show in another.
    // SAFETY: the only references to these fresh elements.
    unsafe {
        a.as_mut_slice().fill(1);
        c.as_mut_slice().fill(2);
    }
    assert!(b.as_slice().iter().all(|&x| x == 0) && d.as_slice().iter().all(|&x| x == 0));
}

#[test]
fn byte_slice_of_usize_max_is_refused_by_name() {
    cgocheck::run_test(|| {
        let msg = panic_of(|| new_slice::<u8>(usize::MAX));
        assert!(msg.contains("18446744073709551615 values of uint8"), "{msg}");
        assert!(msg.contains("larger than the managed heap"), "{msg}");
        heap_still_sound();
    });
}

#[test]
fn word_slice_near_usize_max_is_refused_by_name() {
    cgocheck::run_test(|| {
        let n = usize::MAX / 8;
        let msg = panic_of(|| new_slice::<u64>(n));
        assert!(msg.contains(&format!("{n} values of uint64")), "{msg}");
        assert!(msg.contains("larger than the managed heap") && !msg.contains(" 0 more bytes"), "{msg}");
        // One past: the byte count itself overflows.
        let msg = panic_of(|| new_slice::<u64>(n + 1));
        assert!(msg.contains(&format!("{} values of uint64", n + 1)) && msg.contains("overflows"), "{msg}");
        heap_still_sound();
    });
}

#[test]
fn just_over_the_heap_is_refused_by_name() {
    cgocheck::run_test(|| {
        let (lo, hi) = heap().reserved_range();
        let n = (hi - lo) / 8 + 1;
        let msg = panic_of(|| new_slice::<Gc<u8>>(n));
        assert!(
            msg.contains(&format!("{n} values of *uint8")) && msg.contains("larger than the managed heap"),
            "{msg}"
        );
        heap_still_sound();
    });
}

#[test]
fn huge_stack_request_is_refused_by_name() {
    cgocheck::run_test(|| {
        let msg = panic_of(|| heap().alloc_stack(usize::MAX, 7));
        assert!(
            msg.contains("stack of 18446744073709551615 bytes") && msg.contains("larger than the managed heap"),
            "{msg}"
        );
        heap_still_sound();
    });
}

#[derive(CType)]
#[repr(C, align(16384))]
struct Page16 {
    x: u64,
    p: Gc<u64>,
}

#[derive(CType)]
#[repr(C, align(1048576))]
struct Mega {
    x: u8,
}

/// Rust's largest alignment, 2^29.
#[derive(CType)]
#[repr(C, align(536870912))]
struct HugeZst;

/// 512 MiB, aligned to 512 MiB (never touched: costs address space only).
#[derive(CType)]
#[repr(C, align(536870912))]
struct Giant {
    x: u8,
}

#[test]
fn alignment_above_the_page_is_honoured() {
    cgocheck::run_test(|| {
        for _ in 0..6 {
            let p = new(Page16 { x: 1, p: Gc::null() });
            assert_eq!(p.addr() % 16384, 0, "Page16 at {:#x}", p.addr());
            assert_eq!(base_of(p.addr()), (p.addr(), 16384));
            let s = new_slice::<Page16>(3);
            assert_eq!(s.as_ptr() as usize % 16384, 0, "[Page16] at {:p}", s.as_ptr());
            assert_eq!(base_of(s.as_ptr() as usize + 40000).0, s.as_ptr() as usize);
            // (A 1 MiB value is made in the heap, not passed by value: a debug
            // build would copy it across the test thread's stack.)
            let m = new_slice::<Mega>(2);
            assert_eq!(m.as_ptr() as usize % (1 << 20), 0, "[Mega] at {:p}", m.as_ptr());
            assert_eq!(base_of(m.as_ptr() as usize + (1 << 20) + 5), (m.as_ptr() as usize, 2 << 20));
        }
        // Freed aligned objects are reused only where the alignment holds.
        for _ in 0..4 {
            let m = new_slice::<Mega>(1);
            assert_eq!(m.as_ptr() as usize % (1 << 20), 0);
            let q = new(Page16 { x: 4, p: Gc::null() });
            assert_eq!(q.addr() % 16384, 0);
            // SAFETY: neither is used again.
            unsafe {
                heap().free(m.as_ptr() as *mut u8);
                heap().free(q.as_ptr() as *mut u8);
            }
        }
        // Rust's largest alignment, twice: each skips to the next 512 MiB.
        let g = new_slice::<Giant>(1);
        let h = new_slice::<Giant>(1);
        for s in [g, h] {
            assert_eq!(s.as_ptr() as usize % (1 << 29), 0, "[Giant] at {:p}", s.as_ptr());
            assert_eq!(base_of(s.as_ptr() as usize + (1 << 29) - 1), (s.as_ptr() as usize, 1 << 29));
        }
        // SAFETY: neither is used again.
        unsafe {
            heap().free(g.as_ptr() as *mut u8);
            heap().free(h.as_ptr() as *mut u8);
        }
        heap_still_sound();
    });
}

#[test]
fn zero_sized_values_of_any_alignment_are_aligned() {
    // Through the heap directly and through `new_slice`: a value of it
    // cannot be passed to `new`, whose stack frame would have to be aligned
    // to 2^29 (beyond any thread's stack).
    let z = heap().alloc(HugeZst::TYPE, 1) as usize;
    assert_eq!(z % (1 << 29), 0, "HugeZst at {z:#x}");
    let s = new_slice::<HugeZst>(5);
    assert_eq!(s.as_ptr() as usize % (1 << 29), 0);
    assert!(matches!(heap().region(z), Region::ZeroSized));
}

#[test]
fn impossible_alignment_of_a_run_time_type_is_refused() {
    cgocheck::run_test(|| {
        static ODD: Type = Type::scalar("odd", 24, 24, Kind::Struct { fields: &[] });
        let msg = panic_of(|| heap().alloc(&ODD, 1));
        assert!(msg.contains("type odd has alignment 24") && msg.contains("powers of two"), "{msg}");
        static HUGE: Type = Type::scalar("huge", 1 << 30, 1 << 30, Kind::Struct { fields: &[] });
        let msg = panic_of(|| heap().alloc(&HUGE, 1));
        assert!(msg.contains("type huge has alignment 1073741824") && msg.contains("at most 536870912"), "{msg}");
        // A pointerful type whose size is not whole words cannot be described.
        static RAGGED: Type = Type {
            name: "ragged",
            size: 12,
            align: 4,
            ptrdata: 8,
            kind: Kind::Struct { fields: &[] },
            ptrmask: PtrMask::Bits(&[1]),
        };
        let msg = panic_of(|| heap().alloc(&RAGGED, 100_000));
        assert!(msg.contains("type ragged holds pointers but its size 12"), "{msg}");
        heap_still_sound();
    });
}

/// Child: a slice of `CGOCHECK_LIMITS_COUNT` pointers is refused with a
/// clear panic, without building a bitmap for it first (peak memory stays
/// small).
#[test]
fn child_huge_pointer_slice() {
    if !is_child() {
        return;
    }
    cgocheck::run_test(|| {
        let n: usize = std::env::var("CGOCHECK_LIMITS_COUNT").unwrap().parse().unwrap();
        let before = rss_kib("VmHWM:");
        let msg = panic_of(|| new_slice::<Gc<u64>>(n));
        let peak = rss_kib("VmHWM:");
        eprintln!("peak RSS {before} KiB -> {peak} KiB: {msg}");
        assert!(msg.contains(&format!("{n} values of *uint64")), "{msg}");
        assert!(msg.contains("larger than the managed heap"), "{msg}");
        assert!(peak - before < 64 << 10, "refusing the request took {} KiB", peak - before);
        heap_still_sound();
    });
}

#[test]
fn huge_pointer_slices_are_refused_before_their_bitmap() {
    for n in [1usize << 40, 1 << 33] {
        let out = child("child_huge_pointer_slice", &[("CGOCHECK_LIMITS_COUNT", &n.to_string())]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "2^{} pointers:\n{}",
            n.trailing_zeros(),
            text(&out)
        );
    }
}

/// Child: fill half the heap, free it, fill it again (the freed run is
/// reused), then keep it and ask for more than is left: after a full
/// collection that frees nothing, that is a fatal out-of-memory report.
#[test]
fn child_exhaustion() {
    if !is_child() {
        return;
    }
    cgocheck::run_test(|| {
        let (lo, hi) = heap().reserved_range();
        let half = (hi - lo) / 2;
        let a = new_slice::<u8>(half);
        // SAFETY: `a` is not used again.
        unsafe { heap().free(a.as_ptr()) };
        let b = new_slice::<u8>(half);
        assert_eq!(b.len(), half);
        heap_still_sound();
        eprintln!("second half allocated");
        let c = new_slice::<u8>(half);
        std::hint::black_box((b, c));
        unreachable!("the heap served more than it holds");
    });
}

#[test]
fn exhaustion_is_a_fatal_report_naming_the_request() {
    let (lo, hi) = cgocheck::run(|| heap().reserved_range());
    let half = ((hi - lo) / 2).to_string();
    child_fails(
        "child_exhaustion",
        &[],
        2,
        &[
            "second half allocated",
            &format!("fatal error: out of memory: cannot allocate {half} bytes"),
            "bytes live after the last collection, GOMEMLIMIT off)",
        ],
    );
}

/// Child: slices of 2,000 different lengths around 100,000 pointers,
/// allocated and freed one after the other. Before, each length interned a
/// layout with its own 25 KB bitmap, forever: resident memory grew by about
/// 50 MB. Now large objects of one element type share one bitmap that grows
/// by doubling to the largest length seen.
#[test]
fn child_layouts_of_many_lengths() {
    if !is_child() {
        return;
    }
    cgocheck::run_test(|| {
        let round = |from: usize| {
            for i in 0..2000 {
                let s = new_slice::<Gc<u64>>(100_000 + i * 7 + from);
                assert_eq!(base_of(s.as_ptr() as usize).1, s.len() * 8);
                // SAFETY: `s` is not used again.
                unsafe { heap().free(s.as_ptr() as *mut u8) };
            }
        };
        // A first round for the heap's own one-time costs (commit, page table).
        round(0);
        let before = rss_kib("VmRSS:");
        round(1);
        round(2);
        let after = rss_kib("VmRSS:");
        eprintln!("RSS {before} KiB -> {after} KiB over 4,000 more lengths");
        assert!(after.saturating_sub(before) < 4 << 10, "RSS grew by {} KiB", after - before);
    });
}

#[test]
fn memory_of_many_slice_lengths_is_bounded() {
    child_passes("child_layouts_of_many_lengths", &[]);
}

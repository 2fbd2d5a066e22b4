//! The heap's edges, each checked against values computed here: first and
//! last byte of an object, one past its end, span edges and tails, large
//! objects, zero-sized values, a million small objects, a 65536-pointer
//! slice's bitmap, addresses just outside the reserved range, null, freed
//! slots and their reuse, alignment, and allocation from many tasks on
//! their threads. Every allocation runs in a task (`cgocheck::run_test`):
//! a plain thread's stack is invisible to the collector, so the heap
//! refuses to allocate there.

use cgocheck::heap::sizeclass::{class_for, CLASSES, MAX_SMALL, PAGE};
use cgocheck::{heap, new, new_slice, new_string, CType, Gc, GcSlice, ManagedMemory, Object, Region, Type};

/// Two pointer words around an integer: mask 0b101.
#[derive(CType)]
#[repr(C)]
struct Pair {
    a: Gc<u64>,
    x: i64,
    b: *mut u8,
}

/// 48 bytes, no pointers: class 48 has a tail (8192 = 170 * 48 + 32).
#[derive(CType)]
#[repr(C)]
struct Six {
    w: [u64; 6],
}

/// A large object with one pointer word followed by a long pointer-free
/// stretch.
#[derive(CType)]
#[repr(C)]
struct HeadAndPad {
    head: Gc<u64>,
    pad: [u64; 5000],
}

#[track_caller]
fn object(addr: usize) -> Object<'static> {
    match heap().region(addr) {
        Region::Heap(obj) => obj,
        other => panic!("{addr:#x}: expected a live object, got {other:?}"),
    }
}

/// The mask of `count` elements of `elem`, padded with zeros to `words`.
fn expected_bits(elem: &Type, count: usize, words: usize) -> Vec<bool> {
    let one = elem.ptr_bits();
    let mut v = Vec::with_capacity(words);
    for _ in 0..count {
        v.extend(one.iter().by_vals().take(elem.size / 8));
    }
    v.resize(words, false);
    v
}

#[test]
fn first_last_and_one_past_the_end() {
    cgocheck::run_test(|| {
        let p = new(Pair { a: Gc::null(), x: 7, b: std::ptr::null_mut() });
        let base = p.addr();
        for addr in [base, base + 1, base + 8, base + 23] {
            let obj = object(addr);
            assert_eq!(obj.base, base);
            assert_eq!(obj.size, 24, "Pair (24 bytes) sits in the 24-byte class");
            assert_eq!(obj.count, 1);
            assert!(std::ptr::eq(obj.elem, Pair::TYPE));
            assert_eq!(obj.ptr_bits.iter().by_vals().collect::<Vec<_>>(), [true, false, true]);
            assert!(obj.contains(addr));
        }
        // One past the end is the next slot (live, freed or never allocated) or
        // the span's tail, never this object.
        match heap().region(base + 24) {
            Region::Heap(o) | Region::Freed(o) | Region::Unallocated(o) => assert_eq!(o.base, base + 24),
            Region::SpanTail { span_base, span_end } => assert!(span_base <= base && base + 24 < span_end),
            other => panic!("one past the end: {other:?}"),
        }
    });
}

#[test]
fn span_edges_and_tail() {
    cgocheck::run_test(|| {
        let class = CLASSES[class_for(48, 8).unwrap()];
        assert_eq!((class.size, class.npages), (48, 1));
        let slots = PAGE / 48;
        assert_eq!(class.nslots, slots);
        // Allocate until some object is the last slot of its span. A
        // one-page span starts on an 8 KiB boundary (the heap is 2 MiB aligned).
        let mut last = None;
        for _ in 0..3 * slots {
            let s = new(Six { w: [1; 6] });
            let span_base = s.addr() & !(PAGE - 1);
            assert_eq!((s.addr() - span_base) % 48, 0, "slots are 48 bytes from the span start");
            assert_eq!(object(s.addr()).base, s.addr());
            if (s.addr() - span_base) / 48 == slots - 1 {
                last = Some((s.addr(), span_base));
                break;
            }
        }
        let (addr, span_base) = last.expect("some object fills the last slot of a span");
        let obj = object(addr + 47);
        assert_eq!(obj.base, addr);
        // The 32 bytes after the last slot are the span's tail.
        for t in [addr + 48, addr + 48 + 31] {
            match heap().region(t) {
                Region::SpanTail { span_base: b, span_end } => {
                    assert_eq!(b, span_base);
                    assert_eq!(span_end, span_base + PAGE);
                }
                other => panic!("tail {t:#x}: {other:?}"),
            }
        }
        // The span's first byte is slot 0.
        match heap().region(span_base) {
            Region::Heap(o) | Region::Freed(o) => assert_eq!((o.base, o.size), (span_base, 48)),
            other => panic!("span start: {other:?}"),
        }
    });
}

#[test]
fn large_objects() {
    cgocheck::run_test(|| {
        // Bigger than the largest class: its own span, tail after the object.
        let big = new(HeadAndPad { head: Gc::null(), pad: [0; 5000] });
        let size = std::mem::size_of::<HeadAndPad>();
        assert!(size > MAX_SMALL);
        let base = big.addr();
        assert_eq!(base % PAGE, 0, "large objects start on a heap page");
        for addr in [base, base + size / 2, base + size - 1] {
            let obj = object(addr);
            assert_eq!((obj.base, obj.size, obj.count), (base, size, 1));
            // One pointer word, then 5000 pointer-free words: iter_ones finds one.
            assert_eq!(obj.ptr_bits.len(), size / 8);
            assert_eq!(obj.ptr_bits.iter_ones().collect::<Vec<_>>(), [0]);
        }
        match heap().region(base + size) {
            Region::SpanTail { span_base, span_end } => {
                assert_eq!(span_base, base);
                assert_eq!(span_end, base + size.div_ceil(PAGE) * PAGE);
            }
            other => panic!("past a large object: {other:?}"),
        }

        // A multi-MiB pointer-free array.
        let n = (3 << 20) / 8 + 1;
        let s = new_slice::<u64>(n);
        let base = s.as_ptr() as usize;
        for addr in [base, base + 4 * n, base + 8 * n - 1] {
            let obj = object(addr);
            assert_eq!((obj.base, obj.size, obj.count), (base, 8 * n, n));
            assert!(std::ptr::eq(obj.elem, u64::TYPE) || obj.elem.size == 8);
            assert_eq!(obj.ptr_bits.len(), n);
            assert_eq!(obj.ptr_bits.first_one(), None);
        }
        assert!(s.as_slice().iter().all(|&w| w == 0), "large memory is zeroed");
    });
}

#[test]
fn zero_sized_values() {
    let z = heap().zero_sized_addr();
    let a = new::<[u64; 0]>([]);
    let b = new_slice::<Pair>(0);
    let c = heap().alloc(u64::TYPE, 0);
    assert_eq!(a.addr(), z);
    assert_eq!(b.as_ptr() as usize, z);
    assert_eq!(c as usize, z);
    assert!(matches!(heap().region(z), Region::ZeroSized));
    // Only that address: the rest of its page is nobody's.
    assert!(matches!(heap().region(z + 1), Region::NotManaged));
    assert!(heap().is_pinned(z));
    // Freeing it does nothing.
    // SAFETY: the zero-sized address holds no memory.
    unsafe { heap().free(z as *mut u8) };
    assert!(matches!(heap().region(z), Region::ZeroSized));
}

#[test]
fn a_million_small_objects() {
    cgocheck::run_test(|| {
        const N: usize = 1_000_000;
        // Kept in a managed slice, which the collector sees (a `Vec` is
        // Rust memory it does not scan).
        let objs = new_slice::<Gc<[u64; 2]>>(N);
        // SAFETY: `objs` is this test's alone.
        for (i, e) in unsafe { objs.as_mut_slice() }.iter_mut().enumerate() {
            *e = new([i as u64, !(i as u64)]);
        }
        let mut addrs: Vec<usize> = objs.as_slice().iter().map(|g| g.addr()).collect();
        for (i, g) in objs.as_slice().iter().enumerate() {
            assert_eq!(**g, [i as u64, !(i as u64)], "object {i} kept its value");
            let obj = object(g.addr() + 15);
            assert_eq!((obj.base, obj.size, obj.count), (g.addr(), 16, 1));
        }
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), N, "all addresses distinct");
        assert!(addrs.windows(2).all(|w| w[1] - w[0] >= 16), "no overlap");
    });
}

#[test]
fn bitmap_of_a_65536_pointer_slice() {
    cgocheck::run_test(|| {
        let s = new_slice::<Gc<u64>>(65536);
        let base = s.as_ptr() as usize;
        let a = object(base + 8 * 1000 + 3);
        let b = object(base + 8 * 65535);
        assert_eq!((a.base, a.size, a.count), (base, 512 * 1024, 65536));
        assert_eq!(a.ptr_bits.len(), 65536);
        assert_eq!(a.ptr_bits.count_ones(), 65536);
        // The same bits, not rebuilt per query.
        assert_eq!(a.ptr_bits.as_bitptr(), b.ptr_bits.as_bitptr());
    });
}

#[test]
fn small_arrays_carry_their_count_and_mask() {
    cgocheck::run_test(|| {
        for len in [1, 2, 3, 5, 13] {
            let s = new_slice::<Pair>(len);
            let obj = object(s.elem_ptr(len - 1) as usize);
            assert_eq!(obj.base, s.as_ptr() as usize);
            assert_eq!(obj.count, len);
            assert!(obj.size >= 24 * len);
            assert_eq!(
                obj.ptr_bits.iter().by_vals().collect::<Vec<_>>(),
                expected_bits(Pair::TYPE, len, obj.size / 8),
                "len {len}"
            );
        }
    });
}

#[test]
fn outside_the_reserved_range_and_null() {
    cgocheck::run_test(|| {
        let _ = new(1u64); // the range exists
        let (lo, hi) = heap().reserved_range();
        assert!(matches!(heap().region(lo - 1), Region::NotManaged));
        assert!(matches!(heap().region(hi), Region::NotManaged));
        assert!(matches!(heap().region(hi - 1), Region::NotManaged), "the end of the range is unused");
        assert!(matches!(heap().region(0), Region::NotManaged));
        assert!(matches!(heap().region(usize::MAX), Region::NotManaged));
        let c = Box::new(5u64);
        assert!(matches!(heap().region(&*c as *const u64 as usize), Region::NotManaged));
        assert!(heap().is_pinned(&*c as *const u64 as usize));
    });
}

#[test]
fn strings() {
    cgocheck::run_test(|| {
        let s = new_string("héllo, world");
        assert_eq!(s.as_str(), "héllo, world");
        let obj = object(s.as_ptr() as usize + s.len() - 1);
        assert_eq!(obj.base, s.as_ptr() as usize);
        assert_eq!(obj.count, s.len());
        assert!(std::ptr::eq(obj.elem, u8::TYPE) || obj.elem.size == 1);
        assert_eq!(obj.ptr_bits.first_one(), None);
        assert_eq!(new_string("").as_str(), "");
    });
}

#[test]
fn freed_slots_answer_freed_and_are_zero_on_reuse() {
    cgocheck::run_test(|| {
        // A type of its own, so its spans hold nothing else.
        #[derive(CType)]
        #[repr(C)]
        struct Mine {
            w: [u64; 5],
        }
        let class = CLASSES[class_for(40, 8).unwrap()];
        let slots = class.nslots;
        // Fill more than two spans: the first one is given back full.
        // Kept alive in a managed slice (the collector sees it).
        let objs = new_slice::<Gc<Mine>>(2 * slots + 1);
        // SAFETY: `objs` is this test's alone.
        let elems = unsafe { objs.as_mut_slice() };
        for e in elems.iter_mut() {
            *e = new(Mine { w: [0xAB; 5] });
        }
        let victim = std::mem::replace(&mut elems[3], Gc::null());
        // SAFETY: nothing uses `victim` after this.
        unsafe { heap().free(victim.as_ptr().cast()) };
        match heap().region(victim.addr() + 39) {
            Region::Freed(o) => assert_eq!((o.base, o.size), (victim.addr(), class.size)),
            other => panic!("freed object: {other:?}"),
        }
        assert!(!heap().is_pinned(victim.addr()));
        // Its span became allocatable again: allocation reaches the slot, zeroed.
        let reused = (0..3 * slots).map(|_| new(Mine { w: [0; 5] })).find(|g| g.addr() == victim.addr());
        let g = reused.expect("the freed slot is reused");
        assert_eq!(g.w, [0; 5]);
        assert_eq!(object(g.addr()).base, victim.addr());
    });
}

#[test]
fn freed_large_objects_answer_freed_and_are_zero_on_reuse() {
    cgocheck::run_test(|| {
        // 30 pages: no other test here asks for 15 to 30 pages, so no parallel
        // test takes the freed run first.
        let a = new_slice::<u64>(30_000);
        // SAFETY: we own the slice header; nothing else refers to it.
        unsafe { a.as_mut_slice().fill(0xFFFF) };
        let base = a.as_ptr() as usize;
        // SAFETY: nothing uses `a` after this.
        unsafe { heap().free(a.as_ptr().cast()) };
        assert!(matches!(heap().region(base + 100), Region::Freed(o) if o.base == base));
        let b = new_slice::<u64>(30_000);
        assert_eq!(b.as_ptr() as usize, base, "the freed run is reused");
        assert!(b.as_slice().iter().all(|&w| w == 0));
        assert!(matches!(heap().region(base + 100), Region::Heap(o) if o.base == base));
    });
}

#[test]
#[should_panic(expected = "already freed")]
fn double_free_panics() {
    cgocheck::run_test(|| {
        let g = new(3u64);
        // SAFETY: the test only checks the panic; nothing uses `g`.
        unsafe {
            heap().free(g.as_ptr().cast());
            heap().free(g.as_ptr().cast());
        }
    });
}

#[test]
#[should_panic(expected = "interior pointer")]
fn interior_free_panics() {
    cgocheck::run_test(|| {
        let g = new([1u64, 2]);
        // SAFETY: panics before freeing anything.
        unsafe { heap().free((g.addr() + 8) as *mut u8) };
    });
}

#[test]
#[should_panic(expected = "not a heap object")]
fn free_of_c_memory_panics() {
    let c = Box::new(1u64);
    // SAFETY: panics before freeing anything.
    unsafe { heap().free(&*c as *const u64 as *mut u8) };
}

#[test]
fn alignment_beyond_a_word() {
    cgocheck::run_test(|| {
        #[derive(CType)]
        #[repr(C, align(64))]
        struct Line {
            p: Gc<u64>,
            x: [u64; 3],
        }
        #[derive(CType)]
        #[repr(C, align(32))]
        struct Odd {
            w: [u64; 10], // 80 bytes, rounded to 96 by alignment
        }
        for _ in 0..300 {
            let l = new(Line { p: Gc::null(), x: [0; 3] });
            assert_eq!(l.addr() % 64, 0);
            let o = new(Odd { w: [0; 10] });
            assert_eq!(o.addr() % 32, 0);
            assert_eq!(object(o.addr()).size % 32, 0);
        }
    });
}

#[test]
fn values_survive_and_deref() {
    cgocheck::run_test(|| {
        let inner = new(41u64);
        let outer = new(Pair { a: inner, x: -1, b: std::ptr::null_mut() });
        assert_eq!(*outer.a, 41);
        // SAFETY: no other reference to `inner`'s value is alive.
        unsafe { *inner.as_mut() += 1 };
        assert_eq!(*outer.a, 42);
        let s = new_slice::<u32>(4);
        // SAFETY: the only reference to these elements.
        unsafe { s.as_mut_slice().copy_from_slice(&[1, 2, 3, 4]) };
        assert_eq!(s[2], 3);
        assert_eq!(s.elem_ptr(4) as usize, s.as_ptr() as usize + 16);
    });
}

#[test]
#[should_panic(expected = "nil pointer dereference")]
fn nil_deref_panics() {
    let g: Gc<u64> = Gc::null();
    let _ = *g;
}

#[test]
fn size_class_table() {
    assert_eq!(CLASSES.first().unwrap().size, 8);
    assert_eq!(CLASSES.last().unwrap().size, MAX_SMALL);
    for w in CLASSES.windows(2) {
        assert!(w[0].size < w[1].size);
        // At most 12.5% rounding waste above 128 bytes.
        assert!(w[0].size <= 128 || (w[1].size - w[0].size) * 8 <= w[0].size);
    }
    for c in &CLASSES {
        assert_eq!(c.size % 8, 0);
        assert_eq!(c.nslots, c.npages * PAGE / c.size);
        assert!((c.npages * PAGE - c.nslots * c.size) * 8 <= c.npages * PAGE, "tail of class {}", c.size);
    }
    // class_for picks the smallest fitting class.
    for size in 1..=MAX_SMALL {
        let c = class_for(size, 8).unwrap();
        assert!(CLASSES[c].size >= size);
        assert!(c == 0 || CLASSES[c - 1].size < size);
    }
}

#[test]
fn reciprocal_slot_index_is_exact() {
    for c in &CLASSES {
        for off in 0..c.npages * PAGE {
            assert_eq!(((off as u64 * c.div_magic) >> 32) as usize, off / c.size, "class {} offset {off}", c.size);
        }
    }
}

/// A slice of objects handed from one task to another, which then uses it
/// alone.
struct Handover(GcSlice<Gc<Pair>>);

// SAFETY: the slice moves between tasks; only one uses it at a time.
unsafe impl Send for Handover {}

impl Handover {
    /// The slice, taken by the receiving task (a method, so that a closure
    /// captures the whole `Handover`, not the field).
    fn take(self) -> GcSlice<Gc<Pair>> {
        self.0
    }
}

#[test]
fn many_threads_allocate_and_free() {
    cgocheck::run_test(|| {
        // Tasks on up to GOMAXPROCS threads. Each keeps its objects in a
        // managed slice (managed memory, so they stay reachable for the
        // collector), which its join result hands to the main task.
        let per_thread = 20_000;
        let handles: Vec<_> = (0..4)
            .map(|t| {
                cgocheck::spawn(move || {
                    let v = new_slice::<Gc<Pair>>(per_thread);
                    // SAFETY: `v` is this task's alone until it returns it.
                    for (i, e) in unsafe { v.as_mut_slice() }.iter_mut().enumerate() {
                        *e = new(Pair { a: Gc::null(), x: (t * per_thread + i) as i64, b: std::ptr::null_mut() });
                    }
                    Handover(v)
                })
            })
            .collect();
        let lists: Vec<GcSlice<Gc<Pair>>> = handles.into_iter().map(|h| h.join().take()).collect();
        // The main task's stack keeps the slices (the `Vec` above is Rust
        // memory the collector does not scan).
        let lists = lists.into_iter().map(cgocheck::Root::new).collect::<Vec<_>>();
        let mut all: Vec<usize> = lists.iter().flat_map(|l| l.as_slice().iter().map(|g| g.addr())).collect();
        for (t, l) in lists.iter().enumerate() {
            for (i, g) in l.as_slice().iter().enumerate() {
                let a = g.addr();
                let obj = object(a + 12);
                assert_eq!(obj.base, a);
                assert_eq!(g.x, (t * per_thread + i) as i64);
            }
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 4 * per_thread);
        // Free them from other tasks than the ones that allocated, clearing
        // each reference first.
        let frees: Vec<_> = lists
            .iter()
            .map(|l| {
                let l = Handover(**l);
                cgocheck::spawn(move || {
                    let l = l.take();
                    // SAFETY: this task is the only one using `l` now.
                    for e in unsafe { l.as_mut_slice() } {
                        let g = std::mem::replace(e, Gc::null());
                        // SAFETY: nothing uses these objects any more.
                        unsafe { heap().free(g.as_ptr().cast()) };
                    }
                })
            })
            .collect();
        for f in frees {
            f.join();
        }
        assert!(all.iter().all(|&a| matches!(heap().region(a), Region::Freed(_) | Region::Heap(_))));
    });
}

#[test]
fn an_exiting_thread_gives_its_spans_back() {
    cgocheck::run_test(|| {
        // A type of its own: only this test allocates it.
        #[derive(CType)]
        #[repr(C)]
        struct Solo {
            w: [u64; 3],
        }
        // A task that ends while locked to its thread ends the thread (as
        // in Go); wait until the kernel has seen it go, so the thread's
        // cache was destroyed.
        let (there, tid) = cgocheck::spawn(|| {
            cgocheck::lock_os_thread();
            // SAFETY: gettid has no preconditions.
            (new(Solo { w: [1; 3] }).addr(), unsafe { libc::gettid() })
        })
        .join();
        let gone = std::time::Instant::now();
        while std::path::Path::new(&format!("/proc/self/task/{tid}")).exists() {
            assert!(gone.elapsed() < std::time::Duration::from_secs(10), "thread {tid} did not end");
            cgocheck::sleep(std::time::Duration::from_millis(1));
        }
        // The thread's span went back to the central lists with free slots;
        // this thread's first allocation of the type takes it.
        let here = new(Solo { w: [2; 3] }).addr();
        assert_eq!(here & !(PAGE - 1), there & !(PAGE - 1), "same span");
        assert_ne!(here, there);
        assert_eq!(object(there).base, there);
    });
}

//! Randomised test of the heap against a model.
//!
//! Each case runs a random sequence of allocations (of a handful of types:
//! derived structs, hand-built run-time descriptors, arrays, pointer-free
//! and pointerful, small and large), frees, pins and unpins. The model is a
//! `BTreeMap` of live objects (base → type, count, requested bytes, pin
//! count, stamp) plus the set of freed bases. After every step, every live
//! object is looked up at its first byte, its last requested byte and a
//! pseudo-random interior byte, and one past its slot; freed objects must
//! answer `Freed`, or, once their span was all free and its pages reused,
//! never a live object the model does not know; pin state must match the model; stamps written into each
//! object's first and last byte must be intact (no overlap). On allocation
//! and on `Probe` steps, the object's `ptr_bits` is compared with the
//! element type's `Type::ptr_bits` repeated `count` times.
//!
//! Each case runs as the main task of `cgocheck::run_test` (the heap
//! allocates only for tasks); the live objects, known to the model by
//! address, are kept alive for the collector by a `Root` each.

use cgocheck::heap::sizeclass::{class_for, CLASSES, MAX_SMALL};
use cgocheck::{heap, CType, Gc, Kind, ManagedMemory, Object, Pinner, PtrMask, Region, Root, Type};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(CType)]
#[repr(C)]
struct Pair {
    a: Gc<u64>,
    x: i64,
    b: *mut u8,
}

/// A run-time type: 40 bytes, pointer words 1 and 4.
static RUNTIME_40: Type = Type {
    name: "rt40",
    size: 40,
    align: 8,
    ptrdata: 40,
    kind: Kind::Struct { fields: &[] },
    ptrmask: PtrMask::Bits(&[0b10010]),
};

/// Words 0, 100 and 4999 of a 40000-byte value are pointers: large.
static BIG_MASK: [u64; 79] = {
    let mut m = [0u64; 79];
    m[0] = 1;
    m[100 / 64] |= 1 << (100 % 64);
    m[4999 / 64] |= 1 << (4999 % 64);
    m
};
static RUNTIME_BIG: Type = Type {
    name: "rtbig",
    size: 40000,
    align: 8,
    ptrdata: 4999 * 8 + 8,
    kind: Kind::Struct { fields: &[] },
    ptrmask: PtrMask::Bits(&BIG_MASK),
};

/// The types the model allocates, with the largest count used for each.
fn types() -> [(&'static Type, usize); 7] {
    [
        (u8::TYPE, 40),
        (u64::TYPE, 9000), // up to 72000 bytes: small and large arrays
        (<Gc<u64>>::TYPE, 6),
        (Pair::TYPE, 6),
        (&RUNTIME_40, 6),
        (<[Gc<u64>; 700]>::TYPE, 2),
        (&RUNTIME_BIG, 2),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Alloc { ty: usize, count: usize },
    Free { pick: usize },
    Pin { pick: usize, off: usize, pinner: usize },
    Unpin { pinner: usize },
    Probe { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..7usize, 0..1000usize).prop_map(|(ty, c)| Op::Alloc { ty, count: c }),
        2 => any::<usize>().prop_map(|pick| Op::Free { pick }),
        2 => (any::<usize>(), any::<usize>(), 0..3usize).prop_map(|(pick, off, pinner)| Op::Pin { pick, off, pinner }),
        1 => (0..3usize).prop_map(|pinner| Op::Unpin { pinner }),
        1 => any::<usize>().prop_map(|pick| Op::Probe { pick }),
    ]
}

struct Live {
    ty: &'static Type,
    count: usize,
    /// Requested bytes.
    req: usize,
    pins: usize,
    stamp: u8,
    /// Keeps the object alive for the collector: the model is Rust memory,
    /// which the collector does not scan.
    _root: Root<usize>,
}

/// What the heap should report as an object's size.
fn slot_size(ty: &Type, req: usize) -> usize {
    if req <= MAX_SMALL {
        if let Some(c) = class_for(req, ty.align) {
            return CLASSES[c].size;
        }
    }
    req.next_multiple_of(8)
}

fn expected_bits(elem: &Type, count: usize, words: usize) -> Vec<bool> {
    let one = elem.ptr_bits();
    let mut v = Vec::with_capacity(words);
    for _ in 0..count {
        v.extend(one.iter().by_vals().take(elem.size.div_ceil(8)));
    }
    v.truncate(words);
    v.resize(words, false);
    v
}

fn lookup(addr: usize) -> Result<Object<'static>, TestCaseError> {
    match heap().region(addr) {
        Region::Heap(o) => Ok(o),
        other => Err(TestCaseError::fail(format!("{addr:#x}: expected a live object, got {other:?}"))),
    }
}

fn check_live(base: usize, l: &Live, salt: usize, full: bool) -> Result<(), TestCaseError> {
    let size = slot_size(l.ty, l.req);
    let interior = base + (base.wrapping_mul(31).wrapping_add(salt)) % l.req;
    for addr in [base, base + l.req - 1, interior] {
        let o = lookup(addr)?;
        prop_assert_eq!((o.base, o.size, o.count), (base, size, l.count), "at {:#x}", addr);
        prop_assert!(std::ptr::eq(o.elem, l.ty), "type of {:#x}: {}", base, o.elem);
        prop_assert_eq!(o.ptr_bits.len(), size / 8);
        prop_assert_eq!(heap().is_pinned(addr), l.pins > 0, "pin state at {:#x}", addr);
    }
    // One past the slot is never this object.
    match heap().region(base + size) {
        Region::Heap(o) | Region::Freed(o) => prop_assert_eq!(o.base, base + size),
        _ => {}
    }
    // SAFETY: base..base+req is a live object's memory.
    let (first, last) = unsafe { (*(base as *const u8), *((base + l.req - 1) as *const u8)) };
    prop_assert_eq!((first, last), (l.stamp, l.stamp), "stamps of {:#x}", base);
    if full {
        let o = lookup(base)?;
        let got: Vec<bool> = o.ptr_bits.iter().by_vals().collect();
        prop_assert_eq!(got, expected_bits(l.ty, l.count, size / 8), "ptr_bits of {:#x}", base);
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let types = types();
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    let mut freed: BTreeSet<usize> = BTreeSet::new();
    let mut pinners: Vec<(Pinner, Vec<usize>)> = (0..3).map(|_| (Pinner::new(), Vec::new())).collect();
    let mut stamp = 0u8;
    let result = (|| {
        for (step, op) in ops.into_iter().enumerate() {
            let pick = |p: usize| live.keys().nth(p % live.len().max(1)).copied();
            match op {
                Op::Alloc { ty, count } => {
                    let (t, max) = types[ty];
                    let count = count % (max + 1);
                    let req = t.size * count;
                    let addr = heap().alloc(t, count) as usize;
                    if req == 0 {
                        prop_assert_eq!(addr, heap().zero_sized_addr());
                        prop_assert!(matches!(heap().region(addr), Region::ZeroSized));
                        continue;
                    }
                    prop_assert_eq!(addr % t.align, 0);
                    // No overlap with any live object.
                    if let Some((&b, l)) = live.range(..=addr).next_back() {
                        prop_assert!(b + l.req <= addr, "{:#x} overlaps the object at {:#x}", addr, b);
                    }
                    if let Some((&b, _)) = live.range(addr..).next() {
                        prop_assert!(addr + req <= b, "{:#x}+{} overlaps the object at {:#x}", addr, req, b);
                    }
                    // SAFETY: addr..addr+req was just allocated for us.
                    let mem = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, req) };
                    prop_assert!(mem.iter().all(|&b| b == 0), "memory at {:#x} is not zeroed", addr);
                    stamp = stamp.wrapping_add(1).max(1);
                    mem[0] = stamp;
                    mem[req - 1] = stamp;
                    freed.remove(&addr);
                    let l = Live { ty: t, count, req, pins: 0, stamp, _root: Root::new(addr) };
                    check_live(addr, &l, step, true)?;
                    live.insert(addr, l);
                }
                Op::Free { pick: p } => {
                    let Some(base) = pick(p) else { continue };
                    if live[&base].pins > 0 {
                        // SAFETY: free refuses a pinned object before changing anything.
                        let r = std::panic::catch_unwind(|| unsafe { heap().free(base as *mut u8) });
                        prop_assert!(r.is_err(), "freeing a pinned object must panic");
                        continue;
                    }
                    // SAFETY: the model drops every use of the object.
                    unsafe { heap().free(base as *mut u8) };
                    live.remove(&base);
                    freed.insert(base);
                }
                Op::Pin { pick: p, off, pinner } => {
                    let Some(base) = pick(p) else { continue };
                    let l = live.get_mut(&base).unwrap();
                    pinners[pinner].0.pin((base + off % l.req) as *const u8);
                    pinners[pinner].1.push(base);
                    l.pins += 1;
                }
                Op::Unpin { pinner } => {
                    pinners[pinner].0.unpin();
                    for base in pinners[pinner].1.drain(..) {
                        live.get_mut(&base).unwrap().pins -= 1;
                    }
                }
                Op::Probe { pick: p } => {
                    if let Some(base) = pick(p) {
                        check_live(base, &live[&base], step, true)?;
                    }
                }
            }
            for (&base, l) in &live {
                check_live(base, l, step, false)?;
            }
            for &base in &freed {
                match heap().region(base) {
                    Region::Freed(o) if o.base == base => {}
                    // Its span was all free and its pages went back to the
                    // free runs, maybe taken by a span of another class
                    // (heap/runs.rs): what is there now, but never a live
                    // object the model does not know.
                    Region::NotManaged | Region::Unallocated(_) | Region::SpanTail { .. } | Region::Freed(_) => {}
                    // Inside a live object of the model: its pin state is
                    // that object's, which `check_live` compared above.
                    Region::Heap(o) => {
                        prop_assert!(live.contains_key(&o.base), "freed {:#x} in unknown {:?}", base, o);
                        continue;
                    }
                    other => prop_assert!(false, "freed {:#x}: {:?}", base, other),
                }
                prop_assert!(!heap().is_pinned(base), "freed {:#x} reads as pinned", base);
            }
        }
        Ok(())
    })();
    // Leave nothing pinned or allocated for the next case.
    for (p, _) in &mut pinners {
        p.unpin();
    }
    for &base in live.keys() {
        // SAFETY: the case is over; nothing uses its objects.
        unsafe { heap().free(base as *mut u8) };
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn heap_matches_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        cgocheck::run_test(|| run(ops))?;
    }
}

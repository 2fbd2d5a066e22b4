//! Bounded fuzzing of the heap and of the checker over it.
//!
//! The invariant, for inputs a program could really hand over: a clear
//! error or the right answer, never a crash, never an overlap.
//!
//! - `allocation_near_the_limits`: random run-time type descriptors (sizes
//!   from 0 to 40,000 bytes, alignments from 1 to 2^22 and some impossible
//!   ones, random pointer masks, sizes in whole words or not) and counts from 0 up to the ones whose byte
//!   size overflows or exceeds the heap. Each request either panics with a
//!   `cgocheck:` message naming its count and type, or returns memory that
//!   is aligned, zeroed, looks up as itself (base, count, type, pointer
//!   bitmap) from its first to its last byte, and overlaps no other live
//!   object (stamps written at both ends stay intact). Random addresses in
//!   and around the objects look up as the object that holds them, or as
//!   no object holding them. Random frees in between.
//! - `checker_on_random_objects`: objects of random pointerful descriptors
//!   whose pointer words hold null, C addresses or addresses of other live
//!   objects; `check_pointer` with `Hint::Unknown` (the whole object) must
//!   refuse exactly the objects that hold a managed pointer. Pointers at
//!   random offsets in and around the objects, and random words anywhere in
//!   the heap's range, must get an answer (ok or a refusal), never a panic.
//!
//! Each case runs as the main task of `cgocheck::run_test` (the heap
//! allocates only for tasks), and the cases' objects, known to the model by
//! address, are kept alive by a `Root` each.
//!
//! Fixed case counts keep it to a few seconds; successful allocations stay
//! far below the heap's size so that the cases leave the heap (shared by
//! the process) as they found it. Requests that would fill the heap are in
//! `heap_limits.rs`, in child processes.

use cgocheck::checker::{check_pointer, CallSite, Hint};
use cgocheck::{heap, Kind, ManagedMemory, PtrMask, Region, Root, Type};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A run-time descriptor for `size` bytes aligned to `align`, with the given
/// pointer words (indices below `size / 8`). Leaked: descriptors live
/// forever, and a case makes a handful.
fn leak_type(size: usize, align: usize, ptr_words: &[usize]) -> &'static Type {
    let words = size / 8;
    let mut mask = vec![0u64; words.div_ceil(64).max(1)];
    let mut ptrdata = 0;
    for &w in ptr_words.iter().filter(|&&w| w < words) {
        mask[w / 64] |= 1 << (w % 64);
        ptrdata = ptrdata.max(w * 8 + 8);
    }
    let name: &'static str = Box::leak(format!("fz{size}a{align}").into_boxed_str());
    let ptrmask = if ptrdata == 0 { PtrMask::None } else { PtrMask::Bits(Box::leak(mask.into_boxed_slice())) };
    Box::leak(Box::new(Type { name, size, align, ptrdata, kind: Kind::Struct { fields: &[] }, ptrmask }))
}

/// A descriptor: size, alignment (power of two up to 2^29, or an impossible
/// one), pointer words.
fn descriptor() -> impl Strategy<Value = (usize, usize, Vec<usize>)> {
    let size = prop_oneof![
        3 => 0usize..=64,
        3 => (1usize..=5000).prop_map(|w| w * 8),
        1 => Just(0usize),
        1 => Just(32768usize),
        1 => Just(32776usize),
    ];
    // Above the page, every object skips up to its alignment of address
    // space: kept to 4 MiB here (2^29 is in heap_limits.rs) so the cases
    // cannot use up the range.
    let align = prop_oneof![
        6 => (0u32..=3).prop_map(|s| 1usize << s),
        2 => (4u32..=16).prop_map(|s| 1usize << s),
        1 => (17u32..=22).prop_map(|s| 1usize << s),
        1 => prop_oneof![Just(3usize), Just(24), Just(1 << 30), Just(1 << 40)],
    ];
    (size, align, proptest::collection::vec(0usize..5000, 0..6))
}

/// A count for `size`-byte elements: small, moderate, or around the limits
/// (just over the heap, the last count whose bytes fit in `usize`, the first
/// that overflows, `usize::MAX`).
fn count_for(size: usize, pick: u8, small: usize) -> usize {
    let (lo, hi) = heap().reserved_range();
    let heap_len = hi - lo;
    let s = size.max(1);
    match pick % 8 {
        0..=3 => small % 40,
        4 => small % ((256 << 10) / s + 1),
        5 => heap_len / s + 1 + small % 3,
        6 => (usize::MAX / s - small % 2).saturating_add((small % 3 == 2) as usize),
        _ => usize::MAX - small % 2,
    }
}

/// What the heap's answer to a request must look like.
struct Live {
    ty: &'static Type,
    count: usize,
    /// Bytes requested (at least 1).
    req: usize,
    /// Bytes the heap says the object has.
    size: usize,
    stamp: u8,
    /// Keeps the object alive for the collector: the model's map is Rust
    /// memory, which the collector does not scan.
    _root: Root<usize>,
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<not a string>".into())
}

/// The set bits of the pointer bitmap of `count` elements of `ty` (the
/// element's pointer words, repeated every element).
fn expected_ones(ty: &Type, count: usize) -> Vec<usize> {
    let one: Vec<usize> = ty.ptr_bits().iter_ones().collect();
    (0..count).flat_map(|e| one.iter().map(move |w| e * ty.size / 8 + w)).collect()
}

/// Checks the answers about every address in and around `base`'s object.
fn check_object(base: usize, l: &Live, live: &BTreeMap<usize, Live>, salt: usize) -> Result<(), TestCaseError> {
    for off in [0, l.req - 1, salt % l.req, l.size - 1] {
        match heap().region(base + off) {
            Region::Heap(o) => {
                prop_assert_eq!((o.base, o.size, o.count), (base, l.size, l.count), "at {:#x}+{}", base, off);
                prop_assert!(std::ptr::eq(o.elem, l.ty), "type at {:#x}: {}", base, o.elem);
            }
            other => prop_assert!(false, "{:#x}+{} of a live object: {:?}", base, off, other),
        }
    }
    // Just around it: never this object; a live object there is the one
    // the model has there.
    for addr in [base.wrapping_sub(1 + salt % 64), base + l.size + salt % 64] {
        if let Region::Heap(o) = heap().region(addr) {
            prop_assert!(o.base != base, "{:#x}, outside the object at {:#x}, looks up as it", addr, base);
            prop_assert!(o.contains(addr), "{:#x} answers an object that does not hold it: {:?}", addr, o);
            if let Some((&b, m)) = live.range(..=addr).next_back() {
                if addr < b + m.size {
                    prop_assert_eq!(o.base, b, "{:#x}", addr);
                }
            }
        }
    }
    // SAFETY: base..base+req is this live object's memory.
    let (first, last) = unsafe { (*(base as *const u8), *((base + l.req - 1) as *const u8)) };
    prop_assert_eq!((first, last), (l.stamp, l.stamp), "stamps of {:#x} (an overlap wrote there)", base);
    Ok(())
}

#[derive(Debug, Clone)]
struct Request {
    ty: (usize, usize, Vec<usize>),
    pick: u8,
    small: usize,
    free: Option<usize>,
    salt: usize,
}

fn request() -> impl Strategy<Value = Request> {
    (descriptor(), any::<u8>(), any::<usize>(), proptest::option::weighted(0.3, any::<usize>()), any::<usize>())
        .prop_map(|(ty, pick, small, free, salt)| Request { ty, pick, small, free, salt })
}

fn run_requests(reqs: Vec<Request>) -> Result<(), TestCaseError> {
    let mut live: BTreeMap<usize, Live> = BTreeMap::new();
    let mut stamp = 0u8;
    let result = (|| {
        for r in reqs {
            let (size, align, ptrs) = &r.ty;
            let ty = leak_type(*size, *align, ptrs);
            let count = count_for(*size, r.pick, r.small);
            let got = catch_unwind(AssertUnwindSafe(|| heap().alloc(ty, count) as usize));
            let bytes = size.checked_mul(count);
            // A pointer in a size of no whole words cannot be described.
            let possible = align.is_power_of_two() && *align <= 1 << 29 && (ty.ptrdata == 0 || size % 8 == 0);
            let fits = bytes.is_some_and(|b| b <= 16 << 20);
            let addr = match got {
                Err(p) => {
                    let msg = panic_text(&*p);
                    prop_assert!(!(possible && fits), "{count} x {ty} ({bytes:?} bytes) refused: {msg}");
                    prop_assert!(msg.starts_with("cgocheck: "), "unclear refusal: {msg}");
                    prop_assert!(
                        msg.contains(&format!("type {ty}")) || msg.contains(&format!("{count} values of {ty}")),
                        "the refusal does not name the request ({count} x {ty}): {msg}"
                    );
                    continue;
                }
                Ok(addr) => addr,
            };
            prop_assert!(possible, "{ty} with alignment {align} was served");
            let req = bytes.expect("served, so its size fits");
            prop_assert!(req <= 16 << 20, "{count} x {ty} = {req} bytes, beyond every count drawn to fit");
            prop_assert_eq!(addr % align, 0, "{} x {} at {:#x}", count, ty, addr);
            if req == 0 {
                prop_assert_eq!(addr, heap().zero_sized_addr());
                prop_assert!(matches!(heap().region(addr), Region::ZeroSized));
                continue;
            }
            let Region::Heap(o) = heap().region(addr) else {
                return Err(TestCaseError::fail(format!("{addr:#x} is not a live object")));
            };
            prop_assert!(o.size >= req && o.base == addr && o.count == count, "{:?} for {} x {}", o, count, ty);
            prop_assert_eq!(o.ptr_bits.len(), o.size / 8, "bitmap length of {} x {}", count, ty);
            let got_ones: Vec<usize> = o.ptr_bits.iter_ones().collect();
            prop_assert_eq!(got_ones, expected_ones(ty, count), "bitmap of {} x {}", count, ty);
            if let Some((&b, m)) = live.range(..=addr).next_back() {
                prop_assert!(b + m.size <= addr, "{:#x} overlaps the object at {:#x}", addr, b);
            }
            if let Some((&b, _)) = live.range(addr..).next() {
                prop_assert!(addr + o.size <= b, "{:#x}+{} overlaps the object at {:#x}", addr, o.size, b);
            }
            // SAFETY: addr..addr+req was just allocated for us.
            let mem = unsafe { std::slice::from_raw_parts_mut(addr as *mut u8, req) };
            prop_assert!(mem[0] == 0 && mem[req - 1] == 0 && mem[req / 2] == 0, "memory at {:#x} is not zero", addr);
            stamp = stamp.wrapping_add(1).max(1);
            mem[0] = stamp;
            mem[req - 1] = stamp;
            live.insert(addr, Live { ty, count, req, size: o.size, stamp, _root: Root::new(addr) });
            if let Some(f) = r.free {
                let base = *live.keys().nth(f % live.len()).unwrap();
                live.remove(&base);
                // SAFETY: the model drops every use of the object.
                unsafe { heap().free(base as *mut u8) };
                prop_assert!(!matches!(heap().region(base), Region::Heap(_)), "freed {:#x} still live", base);
            }
            for (&base, l) in &live {
                check_object(base, l, &live, r.salt)?;
            }
        }
        Ok(())
    })();
    for &base in live.keys() {
        // SAFETY: the case is over; nothing uses its objects.
        unsafe { heap().free(base as *mut u8) };
    }
    result
}

/// What a pointer word of a checked object holds.
#[derive(Debug, Clone)]
enum Word {
    Null,
    /// An address in C memory (this test's own Box).
    C,
    /// An address inside live object `pick`, at `off`.
    Managed {
        pick: usize,
        off: usize,
    },
}

fn word() -> impl Strategy<Value = Word> {
    prop_oneof![
        2 => Just(Word::Null),
        2 => Just(Word::C),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(pick, off)| Word::Managed { pick, off }),
    ]
}

fn run_checks(
    tys: Vec<(usize, Vec<usize>, usize)>,
    words: Vec<Word>,
    probes: Vec<(usize, isize)>,
    stray: Vec<usize>,
) -> Result<(), TestCaseError> {
    let c_mem = Box::new([0u64; 4]);
    let c_addr = c_mem.as_ptr() as usize + 8;
    // Objects: (base, type, count, bytes).
    let mut objs: Vec<(usize, &'static Type, usize, usize)> = Vec::new();
    // The objects' roots: `objs` is Rust memory, which the collector does
    // not scan.
    let mut roots: Vec<Root<usize>> = Vec::new();
    for (words_n, ptrs, count) in &tys {
        // At least one pointer word, so every object can hold a pointer.
        let mut ptrs = ptrs.clone();
        ptrs.push(0);
        let ty = leak_type(words_n * 8, 8, &ptrs);
        let count = 1 + count % 6;
        let base = heap().alloc(ty, count) as usize;
        objs.push((base, ty, count, ty.size * count));
        roots.push(Root::new(base));
    }
    // Fill every pointer word; note which objects hold a managed pointer.
    let mut holds_managed = vec![false; objs.len()];
    let mut next = words.iter().cycle();
    for (i, &(base, ty, count, _)) in objs.iter().enumerate() {
        let bits = ty.ptr_bits();
        for e in 0..count {
            for w in bits.iter_ones() {
                let v = match next.next().unwrap() {
                    Word::Null => 0,
                    Word::C => c_addr,
                    Word::Managed { pick, off } => {
                        let (b, _, _, n) = objs[pick % objs.len()];
                        holds_managed[i] = true;
                        b + off % n
                    }
                };
                // SAFETY: word `w` of element `e` lies inside this live
                // object, which nothing else uses.
                unsafe { *((base + e * ty.size + w * 8) as *mut usize) = v };
            }
        }
    }
    let site = CallSite::new("fuzzed", 1);
    let result = (|| {
        for (i, &(base, ty, _, n)) in objs.iter().enumerate() {
            for off in [0, n - 1, n / 2] {
                // SAFETY: the heap answers truthfully; Unknown reads only
                // what it bounds through it.
                let r = unsafe { check_pointer(heap(), site, (base + off) as *const u8, None, Hint::Unknown) };
                prop_assert_eq!(r.is_err(), holds_managed[i], "object {} of {} at +{}: {:?}", i, ty, off, r);
                if let Err(e) = r {
                    let m = e.to_string();
                    prop_assert!(m.starts_with("cgo argument has Go pointer to unpinned Go "), "{}", m);
                }
            }
        }
        // Pointers in and around the objects, and stray words in the heap's
        // range: any answer but a panic.
        let (lo, hi) = heap().reserved_range();
        let around = probes.iter().map(|&(pick, d)| objs[pick % objs.len()].0.wrapping_add_signed(d));
        let anywhere = stray.iter().map(|&s| lo + s % (hi - lo));
        for p in around.chain(anywhere) {
            let r = catch_unwind(|| {
                // SAFETY: as above; the address may be anything.
                let _ = unsafe { check_pointer(heap(), site, p as *const u8, None, Hint::Unknown) };
            });
            prop_assert!(r.is_ok(), "checking {:#x} panicked: {}", p, panic_text(&*r.unwrap_err()));
        }
        Ok(())
    })();
    drop(roots);
    for &(base, ..) in &objs {
        // SAFETY: the case is over; nothing uses its objects.
        unsafe { heap().free(base as *mut u8) };
    }
    result
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn allocation_near_the_limits(reqs in proptest::collection::vec(request(), 1..24)) {
        cgocheck::run_test(|| run_requests(reqs))?;
    }

    #[test]
    fn checker_on_random_objects(
        tys in proptest::collection::vec((1usize..=700, proptest::collection::vec(0usize..700, 0..5), any::<usize>()), 1..6),
        words in proptest::collection::vec(word(), 1..16),
        probes in proptest::collection::vec((any::<usize>(), -300isize..70000), 0..16),
        stray in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        cgocheck::run_test(|| run_checks(tys, words, probes, stray))?;
    }
}

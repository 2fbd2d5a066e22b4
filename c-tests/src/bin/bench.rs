//! The benchmark program: ns per operation for the cases that
//! `shared/anchors/go/bench.go` measures for Go's cgo runtime, under the same
//! names, so `shared/anchors/compare.sh` can put both side by side.
//!
//! ```text
//! cargo run --release -q -p c-tests --bin bench [case...]
//! ```
//!
//! prints one `name<TAB>ns/op` line per case (only the named cases, when
//! names are given).
//!
//! How a case is timed: [`CASES`] lists each case as a name and a setup
//! function; the setup builds what the case needs and returns the loop body,
//! a closure that performs the operation `n` times. The timer first runs the
//! body with n = 1, 2, 4, … until one run takes at least 50 ms (warm-up and
//! calibration), then runs five batches sized to take about 100 ms each
//! (0.5 s in all) and prints the median batch's time per operation. Results
//! of every operation go through `std::hint::black_box` so the optimiser
//! cannot delete the work.
//!
//! To add a case, write its setup function and append one line to `CASES`.

use cgocheck::{CType, Gc, ManagedMemory, Region};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The loop body of a case: performs the operation `n` times.
type Body = Box<dyn FnMut(u64)>;

/// A case: its name (as in bench.go) and its setup, which returns the body.
type Case = (&'static str, fn() -> Body);

/// Every case, in output order.
const CASES: &[Case] = &[
    ("lookup_interior_pointer", lookup_interior_pointer),
    ("alloc_32B_pointerful", alloc_32b_pointerful),
    ("alloc_32B_pointerful_recycled", alloc_32b_pointerful_recycled),
    ("check_one_pointer", check_one_pointer),
    ("check_512KiB_ptr_array", check_512kib_ptr_array),
];

/// Warm-up ends once one run of the body takes this long.
const WARMUP: Duration = Duration::from_millis(50);
/// Target duration of one measured batch.
const BATCH: Duration = Duration::from_millis(100);
/// Measured batches; the median is reported.
const BATCHES: usize = 5;

/// ns per operation of `body`: the median of [`BATCHES`] batches.
fn time(body: &mut Body) -> f64 {
    let mut n = 1u64;
    let per_op = loop {
        let start = Instant::now();
        body(n);
        let took = start.elapsed();
        if took >= WARMUP {
            break took.as_secs_f64() / n as f64;
        }
        n *= 2;
    };
    let n = ((BATCH.as_secs_f64() / per_op) as u64).max(1);
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            body(n);
            start.elapsed().as_nanos() as f64 / n as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[BATCHES / 2]
}

fn main() {
    let only: Vec<String> = std::env::args().skip(1).collect();
    for &(name, setup) in CASES {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let mut body = setup();
        println!("{name}\t{:.1}", time(&mut body));
    }
}

/// Go's `node`: 32 bytes, the first word a pointer.
#[derive(CType)]
#[repr(C)]
struct Node {
    next: Gc<Node>,
    val: [i64; 3],
}

/// `region()` of an interior pointer (the `val[1]` field) of a live object,
/// cycling through a few objects so that one cached answer cannot serve
/// every query. This is the lookup every checked pointer pays.
fn lookup_interior_pointer() -> Body {
    let heap = cgocheck::heap();
    let addrs: Vec<usize> = (0..8).map(|_| cgocheck::new(Node { next: Gc::null(), val: [0; 3] }).addr() + 16).collect();
    Box::new(move |n| {
        for i in 0..n {
            let addr = black_box(addrs[(i % 8) as usize]);
            match heap.region(addr) {
                Region::Heap(obj) => {
                    black_box(obj.base);
                    black_box(obj.ptr_bits);
                }
                other => panic!("lookup_interior_pointer: {addr:#x} resolved to {other:?}"),
            }
        }
    })
}

/// Go's shape: allocate a 32-byte `Node`, link it to the previous one so a
/// short list stays alive, and drop the link every 1024th time.
///
/// There is no collector yet, so this is allocation only: every allocation
/// takes never-used memory, which includes the kernel's (and, in a virtual
/// machine, the hypervisor's) cost of first touching a page. Go's number
/// includes its collector reclaiming the dropped lists and reusing their
/// memory; `alloc_32B_pointerful_recycled` is the closer comparison until our
/// collector exists.
fn alloc_32b_pointerful() -> Body {
    let mut sink: Gc<Node> = Gc::null();
    Box::new(move |n| {
        for i in 0..n {
            let next = if i % 1024 == 0 { Gc::null() } else { sink };
            sink = black_box(cgocheck::new(Node { next, val: [0; 3] }));
        }
    })
}

/// `alloc_32B_pointerful` with memory reuse: each dropped list is freed
/// explicitly with `Heap::free` (walking it, as a sweeper would find those
/// objects unmarked), so the number is allocation plus that stand-in
/// reclamation. No Go twin.
fn alloc_32b_pointerful_recycled() -> Body {
    let mut sink: Gc<Node> = Gc::null();
    Box::new(move |n| {
        for i in 0..n {
            let mut next = sink;
            if i % 1024 == 0 {
                free_list(next);
                next = Gc::null();
            }
            sink = black_box(cgocheck::new(Node { next, val: [0; 3] }));
        }
    })
}

/// Frees every node of the list starting at `head`.
fn free_list(mut head: Gc<Node>) {
    while !head.is_null() {
        let next = head.next;
        // SAFETY: the list was just unlinked from `sink`, the only path to
        // it; nothing uses its nodes again.
        unsafe { cgocheck::heap().free(head.as_ptr().cast()) };
        head = next;
    }
}

/// bench.go's `obj64`: 64 bytes, one (nil) pointer word.
#[derive(CType)]
#[repr(C)]
struct Obj64 {
    p: *mut std::ffi::c_void,
    a: [i64; 7],
}

/// The check cmd/cgo generates for `C.take(o)` with `o` a variable: an
/// unknown pointer, so the whole 64-byte heap object is walked through its
/// pointer bitmap. Through the runtime's level gate, at the process's
/// `CGOCHECK`. The check alone: Go's `call_one_pointer_checked` also
/// includes the C call (compare with its `call_add_int`).
fn check_one_pointer() -> Body {
    use cgocheck::checker::{CallSite, Hint};
    let o = cgocheck::new(Obj64 { p: std::ptr::null_mut(), a: [0; 7] });
    let site = CallSite::new("take", 1);
    Box::new(move |n| {
        for _ in 0..n {
            // SAFETY: no `Hint::Whole`; `o` is a live object.
            let r = unsafe { cgocheck::check::pointer(site, black_box(o.as_ptr()), Hint::Unknown) };
            black_box(r).expect("check_one_pointer");
        }
    })
}

/// The check for `C.takebig(unsafe.Pointer(&big[0]))`: the address of
/// element 0 of a managed slice of 65536 nil `void*`, with the whole-array
/// hint, so all 512 KiB of pointer words are looked at. The check alone;
/// Go's `call_check_512KiB_ptr_array` adds one C call (~40 ns).
fn check_512kib_ptr_array() -> Body {
    use cgocheck::checker::{CallSite, Hint};
    use cgocheck::GcSlice;
    let big = cgocheck::new_slice::<*mut std::ffi::c_void>(1 << 16);
    let site = CallSite::new("takebig", 1);
    Box::new(move |n| {
        for _ in 0..n {
            let hint = Hint::Whole { ty: <GcSlice<*mut std::ffi::c_void>>::TYPE, value: (&big as *const GcSlice<_>).cast() };
            // SAFETY: `hint.value` points to the live slice header `big`.
            let r = unsafe { cgocheck::check::pointer(site, black_box(big.elem_ptr(0)), hint) };
            black_box(r).expect("check_512KiB_ptr_array");
        }
    })
}

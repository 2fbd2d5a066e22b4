//! The case binary: `cases NAME` runs one case in this process and exits.
//!
//! Each case is a small program against real C (csrc/). The suites under
//! `tests/` run this binary as a child process per case and per `CGOCHECK`
//! level and judge its exit status and stderr (see `c_tests::harness`).
//! A case reports success by returning; it fails by panicking (exit 101), or
//! by whatever the runtime does to a violating program. Each case runs as
//! the main task of `cgocheck::run`, as every program that allocates
//! managed memory does.

use c_tests::ffi::*;
use cgocheck::{heap, managed_static, new, new_slice, new_string, Gc, Handle, ManagedMemory, Pinner, Region};
use std::ffi::CString;

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("c_reads_managed_struct", c_reads_managed_struct),
    ("c_writes_managed_slice", c_writes_managed_slice),
    ("c_walks_managed_list", c_walks_managed_list),
    ("c_compares_managed_string", c_compares_managed_string),
    ("c_reads_managed_global", c_reads_managed_global),
    ("handle_kept_by_c", handle_kept_by_c),
    ("handle_deleted_then_used_by_c", handle_deleted_then_used_by_c),
    ("pinner_dropped_while_pinning", pinner_dropped_while_pinning),
];

fn main() {
    let (_, case) = c_tests::harness::chosen_case("cases", CASES);
    // As the main task: managed objects are made by tasks, whose stacks the
    // collector scans.
    cgocheck::run(case);
}

/// Asserts that `addr` is inside a live heap object whose element type is
/// named `ty`, so a case knows C really received managed memory.
fn assert_heap_object(addr: usize, ty: &str) {
    match heap().region(addr) {
        Region::Heap(o) => assert_eq!(o.elem.to_string(), ty, "object at {addr:#x}"),
        other => panic!("{addr:#x} should be a live heap object of type {ty}, is {other:?}"),
    }
}

/// C reads the fields of a managed struct through the pointer it is given.
fn c_reads_managed_struct() {
    let p = new(Point3 { x: 40, y: 2, z: -7 });
    assert_heap_object(p.addr(), "point3");
    // SAFETY: p points to a live, initialised point3; C only reads it.
    let sum = unsafe { ct_sum_point(p.as_ptr()) };
    assert_eq!(sum, 35);
}

/// C fills a managed byte slice; managed code reads what C wrote.
fn c_writes_managed_slice() {
    let s = new_slice::<u8>(5000);
    assert_heap_object(s.elem_ptr(0) as usize, "uint8");
    assert!(s.as_slice().iter().all(|&b| b == 0), "fresh managed memory is zeroed");
    // SAFETY: the backing array has s.len() writable bytes.
    unsafe { ct_fill_bytes(s.elem_ptr(0), s.len(), 7) };
    for (i, b) in s.as_slice().iter().enumerate() {
        assert_eq!(*b, (7 + i) as u8, "byte {i}");
    }
}

/// C walks a 1000-node managed linked list built by managed code.
fn c_walks_managed_list() {
    let mut head: Gc<Node> = Gc::null();
    for v in 1..=1000 {
        head = new(Node { next: head, value: v });
    }
    assert_heap_object(head.addr(), "node");
    // SAFETY: every node is live and its next is a node or null.
    let sum = unsafe { ct_sum_list(head.as_ptr()) };
    assert_eq!(sum, 1000 * 1001 / 2);
}

/// A managed string (pointer + length) compared by C.
fn c_compares_managed_string() {
    let s = new_string("hello, C");
    let want = CString::new("hello, C").unwrap();
    assert_heap_object(s.as_ptr() as usize, "uint8");
    // SAFETY: s points to s.len() bytes; want is NUL-terminated.
    let eq = unsafe { ct_string_equals(s.as_ptr().cast(), s.len(), want.as_ptr()) };
    assert_eq!(eq, 1);
}

managed_static! {
    static ORIGIN: Point3 = Point3 { x: 1, y: 10, z: 100 };
}

/// C reads a managed global; the runtime knows it is managed global memory.
fn c_reads_managed_global() {
    let addr = ORIGIN.as_ptr() as usize;
    assert!(matches!(heap().region(addr), Region::Global { .. }), "{:?}", heap().region(addr));
    // SAFETY: ORIGIN is an initialised point3 that lives for the whole program.
    let sum = unsafe { ct_sum_point(ORIGIN.as_ptr()) };
    assert_eq!(sum, 111);
}

/// C keeps a Handle (an integer) across calls; it resolves to the value.
fn handle_kept_by_c() {
    let h = Handle::new(String::from("kept by C"));
    // SAFETY: plain integer arguments and results.
    let back = unsafe {
        ct_keep_handle(h.as_raw());
        ct_kept_handle()
    };
    let h2 = Handle::from_raw(back);
    assert_eq!(h2.value::<String>().as_str(), "kept by C");
    h2.delete();
}

/// C keeps a Handle that managed code then deletes; using it again must be a
/// clear panic, not a stale value.
fn handle_deleted_then_used_by_c() {
    let h = Handle::new(42u64);
    // SAFETY: plain integer arguments and results.
    unsafe { ct_keep_handle(h.as_raw()) };
    h.delete();
    // SAFETY: as above.
    let back = unsafe { ct_kept_handle() };
    let v = Handle::from_raw(back).value::<u64>();
    println!("unreachable: resolved a deleted handle to {v}");
}

/// A Pinner dropped while it still pins prints Go's leak warning and unpins.
fn pinner_dropped_while_pinning() {
    let p = new(Point3::default());
    {
        let mut pinner = Pinner::new();
        pinner.pin(p.as_ptr());
        assert!(heap().is_pinned(p.addr()));
    }
    assert!(!heap().is_pinned(p.addr()), "dropping the Pinner unpins");
}

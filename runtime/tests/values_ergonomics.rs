//! Everyday managed values: a big value built in place (never on a task
//! stack), Go's `s[i:j]` and `append` on `GcSlice`, and Go's C string
//! helpers (`C.CString`, `C.CBytes`, `C.GoString`, `C.GoStringN`,
//! `C.GoBytes`) round-tripping through real C functions of the C library.

use cgocheck::ffi::{c_bytes, c_free, c_string, go_bytes, go_string, go_string_n};
use cgocheck::{new_slice, new_with, new_zeroed, CType, GcSlice};
use core::ffi::{c_char, c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

cgocheck::c_functions! {
    extern "C" {
        fn strlen(s: *const c_char) -> usize;
        fn memcmp(a: *const c_void, b: *const c_void, n: usize) -> c_int;
        fn memset(p: *mut c_void, c: c_int, n: usize) -> *mut c_void;
    }
}

/// 256 KiB and a bit: four times the stack of the task that makes it.
#[derive(CType)]
#[repr(C)]
struct Big {
    len: usize,
    bytes: [u8; 256 << 10],
}

fn panic_message(r: std::thread::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected a panic"),
        Err(p) => p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    }
}

#[test]
fn a_big_value_is_built_in_place_on_a_small_task_stack() {
    let h = cgocheck::spawn_with_stack(64 << 10, || {
        let z = new_zeroed::<Big>();
        assert_eq!(z.len, 0);
        assert!(z.bytes.iter().all(|&b| b == 0));
        let b = new_with(|b: &mut Big| {
            b.bytes.fill(7);
            b.len = b.bytes.len();
        });
        assert_eq!(b.len, 256 << 10);
        assert!(b.bytes.iter().all(|&x| x == 7));
        (z.addr(), b.addr())
    });
    let (z, b) = h.join();
    assert_ne!(z, b);
}

#[test]
fn slicing_is_go_s_i_j() {
    cgocheck::run_test(|| {
        let s = new_slice::<u32>(4);
        // SAFETY: the only reference to the new elements.
        unsafe { s.as_mut_slice() }.copy_from_slice(&[0, 1, 2, 3]);
        let t = s.slice(1..3);
        assert_eq!((t.as_slice(), t.len(), t.cap()), (&[1, 2][..], 2, 3));
        assert_eq!(t.as_ptr(), s.elem_ptr(1), "the same backing array");
        // Past `len` up to `cap`, as Go allows: `t[0:3]`.
        assert_eq!(t.slice(..3).as_slice(), &[1, 2, 3]);
        assert_eq!(s.slice(..).as_slice(), s.as_slice());
        assert_eq!(s.slice(4..).len(), 0);
        assert_eq!(s.slice(2..=3).as_slice(), &[2, 3]);
        assert!(GcSlice::<u32>::nil().slice(..).as_ptr().is_null());

        let msg = panic_message(catch_unwind(|| t.slice(..4)));
        assert_eq!(msg, "cgocheck: slice bounds out of range [:4] with capacity 3 (GcSlice::slice)");
        // A reversed range, on purpose: Go's `s[3:2]`.
        #[allow(clippy::reversed_empty_ranges)]
        let msg = panic_message(catch_unwind(|| s.slice(3..2)));
        assert_eq!(msg, "cgocheck: slice bounds out of range [3:2] (GcSlice::slice)");
    });
}

#[test]
fn append_writes_in_place_within_cap_and_grows_a_new_array_beyond() {
    cgocheck::run_test(|| {
        let s = new_slice::<i64>(4).slice(..2);
        // Within capacity: written into the shared backing array, as in Go.
        // SAFETY: nothing references elements 2.. of the array.
        let a = unsafe { s.append(&[5]) };
        assert_eq!((a.as_ptr(), a.len(), a.cap()), (s.as_ptr(), 3, 4));
        assert_eq!(s.slice(..3).as_slice(), &[0, 0, 5], "s sees it through its capacity");

        // Beyond capacity: a new array, doubled (Go's growth below 256).
        // SAFETY: as above (a new array is nobody else's).
        let b = unsafe { a.append(&[6, 7]) };
        assert_ne!(b.as_ptr(), a.as_ptr());
        assert_eq!((b.as_slice(), b.cap()), (&[0, 0, 5, 6, 7][..], 8));
        // SAFETY: `b`'s array is its own; `a`'s element 3 is not referenced.
        let c = unsafe { a.append(&[9]) };
        assert_eq!((c.as_slice(), b.as_slice()), (&[0, 0, 5, 9][..], &[0, 0, 5, 6, 7][..]), "b no longer shares");

        // To nil, and growth of 1.25x above 256 elements, or to what is asked.
        // SAFETY: new arrays.
        let d = unsafe { GcSlice::<i64>::nil().append(&[1, 2, 3]) };
        assert_eq!((d.as_slice(), d.cap()), (&[1, 2, 3][..], 3));
        // SAFETY: new arrays.
        let e = unsafe { new_slice::<i64>(400).append(&[1]) };
        assert_eq!((e.len(), e.cap(), e[400]), (401, 500, 1));
        // SAFETY: as above.
        let f = unsafe { new_slice::<i64>(2).append(&[1; 10]) };
        assert_eq!((f.len(), f.cap()), (12, 12));
    });
}

#[test]
fn c_strings_round_trip_through_c() {
    cgocheck::run_test(|| {
        let p = c_string("hello, C");
        // SAFETY: a NUL-terminated string from c_string.
        assert_eq!(unsafe { strlen(p) }, 8);
        // SAFETY: as above.
        let s = unsafe { go_string(p) };
        // SAFETY: from c_string; not used again.
        unsafe { c_free(p) };
        assert_eq!(s.as_str(), "hello, C");

        let bytes = [1u8, 0, 2, 255];
        let q = c_bytes(&bytes);
        // SAFETY: 4 bytes each.
        assert_eq!(unsafe { memcmp(q.cast_const(), cgocheck::slice_data(&bytes).as_void(), 4) }, 0);
        // SAFETY: 4 readable bytes at `q`.
        let g = unsafe { go_bytes(q, 4) };
        // The copy is the managed slice's own: C may reuse its buffer.
        // SAFETY: 4 writable bytes at `q`.
        unsafe { memset(q, 0, 4) };
        assert_eq!(g.as_slice(), &bytes);
        // SAFETY: from c_bytes; not used again.
        unsafe { c_free(q) };

        // GoStringN keeps a NUL inside its `n` bytes.
        let r = c_bytes(b"a\0\xc3\xa9");
        // SAFETY: 4 readable bytes at `r`.
        let n = unsafe { go_string_n(r.cast(), 4) };
        assert_eq!(n.as_str(), "a\0\u{e9}");
        // SAFETY: from c_bytes; not used again.
        unsafe { c_free(r) };
    });
}

#[test]
fn c_string_edge_cases_are_named() {
    // SAFETY: null gives the empty string; zero bytes read nothing.
    unsafe {
        assert_eq!(go_string(std::ptr::null()).as_str(), "");
        assert!(go_bytes(std::ptr::null(), 0).is_empty());
    }
    let msg = panic_message(catch_unwind(|| c_string("ab\0cd")));
    assert!(msg.starts_with("cgocheck::c_string: the string has a NUL byte at index 2 (of 5)"), "{msg}");

    let latin1 = c_bytes(b"caf\xe9\0");
    // SAFETY: a NUL-terminated buffer from c_bytes.
    let msg = panic_message(catch_unwind(AssertUnwindSafe(|| unsafe { go_string(latin1.cast()) })));
    assert!(msg.starts_with("cgocheck::go_string: the C bytes are not UTF-8 (invalid at byte 3 of 4)"), "{msg}");
    assert!(msg.contains("go_bytes"), "{msg}");
    // SAFETY: from c_bytes; not used again.
    unsafe { c_free(latin1) };

    // SAFETY: never reached past the check: a null pointer with a length.
    let msg = panic_message(catch_unwind(|| unsafe { go_bytes(std::ptr::null(), 3) }));
    assert_eq!(msg, "cgocheck: a null C pointer with a length of 3 bytes");
}

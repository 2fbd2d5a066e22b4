//! A checked C call allocates nothing: a counting global allocator around
//! 10000 calls through `c_functions!` wrappers — one with a pointer argument
//! the checker looks at (a managed object, whole), one with integers — sees
//! no allocation. The checks build their message (and allocate) only when
//! they fail.
//!
//! Alone in its binary (one global allocator per binary). Only allocations
//! by the thread making the calls count: the runtime's other threads (the
//! monitor, idle Ms) may allocate at any time for their own reasons; the
//! main task is locked to its thread, so every step of its calls runs there.

use cgocheck::{new, CType};
use core::ffi::{c_int, c_void};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Allocations by this thread since it started counting; `None` while
    /// not counting.
    static ALLOCS: Cell<Option<usize>> = const { Cell::new(None) };
}

fn count_one() {
    ALLOCS.with(|a| a.set(a.get().map(|n| n + 1)));
}

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

cgocheck::c_functions! {
    extern "C" {
        fn abs(x: c_int) -> c_int;
        fn memset(p: *mut c_void, c: c_int, n: usize) -> *mut c_void;
    }
}

/// 64 bytes, one pointer word (nil): bench.go's `obj64`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "obj64")]
struct Obj64 {
    p: *mut c_void,
    a: [i64; 7],
}

#[test]
fn ten_thousand_checked_calls_allocate_nothing() {
    let allocs = cgocheck::run(|| {
        let o = new(Obj64 { p: std::ptr::null_mut(), a: [1; 7] });
        let call = || {
            // SAFETY: the object's first 8 bytes (its nil pointer word); an
            // integer.
            unsafe {
                memset(o.as_ptr().cast(), 0, 8);
                abs(-1)
            }
        };
        // Warm up: first use of anything lazily allocated.
        for _ in 0..100 {
            call();
        }
        ALLOCS.with(|a| a.set(Some(0)));
        for _ in 0..10_000 {
            call();
        }
        ALLOCS.with(|a| a.take()).expect("counting")
    });
    assert_eq!(allocs, 0, "the checked call path allocated");
}

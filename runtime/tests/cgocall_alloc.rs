//! The C-call fast path allocates nothing: a counting global allocator
//! around 10000 `cgocall`s of a trivial function sees no allocation.
//!
//! Alone in its binary (one global allocator per binary). Only allocations
//! made on the calling thread count: `run`'s main task is locked to that
//! thread, so the fast path's work is all there, while the runtime's other
//! threads (the monitor, idle Ms) may allocate now and then for reasons of
//! their own and must not make the verdict flaky.

use cgocheck::cgocall::cgocall;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::c_void;

struct Counting;

thread_local! {
    /// Allocations made by this thread (const-initialised: reading it
    /// allocates nothing).
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCS.try_with(|a| a.set(a.get() + 1));
}

// SAFETY: forwards to the system allocator, counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// `frame` is an `i32` pair: stores their sum in the first (the shape of
/// Go's `call_add_int`).
unsafe extern "C" fn add(frame: *mut c_void) {
    // SAFETY: the caller passes [i32; 2].
    let f = unsafe { &mut *(frame as *mut [i32; 2]) };
    f[0] = f[0].wrapping_add(f[1]);
}

#[test]
fn ten_thousand_c_calls_allocate_nothing() {
    let (allocs, sum) = cgocheck::run(|| {
        let mut frame = [0i32, 1];
        let p = &mut frame as *mut [i32; 2] as *mut c_void;
        // Warm up: first use of anything lazily allocated.
        for _ in 0..100 {
            // SAFETY: `add` takes this frame.
            unsafe { cgocall(add, p, None) };
        }
        let before = ALLOCS.with(Cell::get);
        for _ in 0..10_000 {
            // SAFETY: as above.
            unsafe { cgocall(add, p, None) };
        }
        let after = ALLOCS.with(Cell::get);
        (after - before, frame[0])
    });
    assert_eq!(sum, 10_100, "every call ran");
    assert_eq!(allocs, 0, "the cgocall fast path allocated");
}

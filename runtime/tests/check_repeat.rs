//! The thread's last clean pointer check (`runtime/src/check.rs`): a loop
//! of calls passing one object skips the lookup, and each way the answer
//! could go stale takes the whole check again: a pointer word no longer
//! null, and a free anywhere (here, of the object itself: without the
//! count of frees the freed slot, zeroed, would pass as clean). Real C calls (the C
//! library's `memset` with a length of 0, which touches nothing), real heap
//! objects, in a task.

use cgocheck::{heap, new, run_test, CType, Gc};
use core::ffi::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A pointer-holding shape.
#[derive(CType)]
#[repr(C)]
struct First {
    p: *mut c_void,
    words: [u64; 3],
}

cgocheck::c_functions! {
    extern "C" {
        /// The C library's memset, called with n = 0.
        #[link_name = "memset"]
        fn touch_first(p: *mut First, c: c_int, n: usize) -> *mut c_void;
    }
}

/// The check's panic message, or None when the call went through.
fn outcome(f: impl FnOnce()) -> Option<String> {
    catch_unwind(AssertUnwindSafe(f)).err().map(|e| match e.downcast::<String>() {
        Ok(s) => *s,
        Err(e) => e.downcast::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    })
}

#[test]
fn a_pointer_word_set_after_a_clean_check_is_checked() {
    run_test(|| {
        let x: Gc<First> = new(First { p: core::ptr::null_mut(), words: [1, 2, 3] });
        for _ in 0..3 {
            // SAFETY: memset of 0 bytes.
            assert_eq!(
                outcome(|| unsafe {
                    touch_first(x, 0, 0);
                }),
                None
            );
        }
        // A managed pointer, not pinned, in the object C is given.
        let inner = new(7u64);
        // SAFETY: `x` is live and this task's alone.
        unsafe { (*x.as_ptr()).p = inner.as_ptr().cast() };
        let msg = outcome(|| unsafe {
            touch_first(x, 0, 0);
        })
        .expect("the repeated pointer is checked again");
        assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"), "{msg}");
        // SAFETY: as above.
        unsafe { (*x.as_ptr()).p = core::ptr::null_mut() };
        assert_eq!(
            outcome(|| unsafe {
                touch_first(x, 0, 0);
            }),
            None
        );
        drop(inner);
    });
}

#[test]
fn a_pointer_freed_after_a_clean_check_is_reported_freed() {
    run_test(|| {
        let x: Gc<First> = new(First { p: core::ptr::null_mut(), words: [0; 3] });
        let raw = x.as_ptr();
        // SAFETY: memset of 0 bytes.
        assert_eq!(
            outcome(|| unsafe {
                touch_first(raw, 0, 0);
            }),
            None
        );
        assert_eq!(
            outcome(|| unsafe {
                touch_first(raw, 0, 0);
            }),
            None
        );
        // SAFETY: nothing else holds `x`; its slot is zeroed, so every
        // pointer word the last clean check saw is still null.
        unsafe { heap().free(raw.cast()) };
        let msg = outcome(|| unsafe {
            touch_first(raw, 0, 0);
        })
        .expect("a freed object is never clean again");
        assert!(msg.starts_with("cgo argument points to freed Go memory"), "{msg}");
    });
}

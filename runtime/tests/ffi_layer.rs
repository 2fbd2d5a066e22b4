//! The typed call layer against real C (the C library: `abs`, `memset`,
//! `strlen`, …): what `c_functions!` generates, how each argument is
//! classified and checked, and what a violation does. Every call runs in a
//! task (`cgocheck::run`), as C calls must.
//!
//! The tests run at the process's `CGOCHECK` level (1 unless set) and
//! expect what that level does: `c-tests/tests/pointer_cases.rs` runs the
//! spec's rows at all three levels, each in its own process.

use cgocheck::checker::{Checks, Hint};
use cgocheck::ffi::Arg;
use cgocheck::{check, elem, extent, field, new, new_slice, new_string, pointee, slice_data, string_data, CType, Gc};
use core::ffi::{c_char, c_int, c_long, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};

cgocheck::c_functions! {
    extern "C" {
        /// `int abs(int)`.
        #[nocallback]
        fn abs(x: c_int) -> c_int;
        #[nocallback]
        #[noescape]
        fn labs(x: c_long) -> c_long;
        /// The parameter names are the generated code's own local names:
        /// they must not clash (the macro's locals are hygienic).
        fn memset(frame: *mut c_void, result: c_int, f: usize) -> *mut c_void;
        fn memcpy(dst: *mut c_void, src: *const c_void, n: usize) -> *mut c_void;
        fn strlen(s: *const c_char) -> usize;
        fn getpid() -> c_int;
        /// C's `int (*)(int)`.
        type IntFn = fn(x: c_int) -> c_int;
    }
    unsafe extern "C" {
        /// A safe wrapper: `llabs` has no preconditions.
        pub safe fn llabs(x: i64) -> i64;
    }
}

/// Runs `f` as the main task of the runtime.
fn in_task(f: impl FnOnce() + Send + 'static) {
    cgocheck::run(f)
}

fn checks_args() -> bool {
    check::level().runs(Checks::Args)
}

/// The panic message of `f`, which must panic.
fn panic_of(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("the call should have panicked");
    err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap()
}

/// A managed object holding an unpinned managed pointer, and bytes.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "holder")]
struct Holder {
    p: *mut i32,
    a: [u8; 16],
}

fn holder() -> Gc<Holder> {
    new(Holder { p: new(7i32).as_ptr(), a: [1; 16] })
}

#[test]
fn values_in_and_out() {
    in_task(|| {
        // SAFETY: no preconditions.
        unsafe {
            assert_eq!(abs(-5), 5, "an integer literal takes the parameter's type");
            assert_eq!(labs(-6), 6);
            assert_eq!(getpid() as u32, std::process::id(), "a function without arguments");
        }
        assert_eq!(llabs(-7), 7, "declared `safe`: no unsafe block");
    });
}

#[test]
fn each_argument_is_evaluated_once_in_order() {
    in_task(|| {
        let buf = new_slice::<u8>(8);
        let mut order = Vec::new();
        let mut note = |what: &'static str| order.push(what);
        // SAFETY: 8 writable bytes.
        unsafe {
            memset(
                {
                    note("p");
                    slice_data(&buf).as_void()
                },
                {
                    note("c");
                    3
                },
                {
                    note("n");
                    8
                },
            )
        };
        assert_eq!(order, ["p", "c", "n"]);
        assert_eq!(buf.as_slice(), [3; 8]);
    });
}

#[test]
fn unknown_pointer_checks_the_whole_object() {
    in_task(|| {
        let h = holder();
        let call = move || {
            // SAFETY: 16 writable bytes inside the object.
            unsafe { memset(h.a.as_ptr().cast_mut().cast(), 0, 16) };
        };
        if checks_args() {
            let msg = panic_of(call);
            assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go pointer"), "{msg}");
            assert!(msg.contains("call:     memset, argument 1"), "{msg}");
            assert_eq!(h.a, [1; 16], "C was not called");
        } else {
            call();
            assert_eq!(h.a, [0; 16]);
        }
    });
}

#[test]
fn unknown_pointer_finds_the_last_element_of_a_small_array() {
    if !checks_args() {
        return;
    }
    in_task(|| {
        // Three pointers in a larger size-class slot: the object's bitmap
        // is a window that does not start on a bitmap word, and the
        // unpinned pointer is its last bit.
        for len in [3, 5, 7, 60] {
            let s = new_slice::<*mut c_void>(len);
            // SAFETY: `s` is new; nothing else refers to it.
            unsafe { s.as_mut_slice()[len - 1] = new(1u64).as_ptr().cast() };
            let p = s.as_ptr().cast::<c_void>();
            // SAFETY: never reached: the check fails first.
            let msg = panic_of(|| unsafe {
                memset(p, 0, 0);
            });
            assert!(msg.contains(&format!("path:     arg 1 → [{}]", len - 1)), "len {len}: {msg}");
        }
    });
}

#[test]
fn field_checks_only_the_field() {
    in_task(|| {
        let h = holder();
        // SAFETY: 16 writable bytes: the field `a`.
        unsafe { memset(field(&h.a).as_void(), 0, 16) };
        assert_eq!(h.a, [0; 16]);
    });
}

#[test]
fn extent_and_pointee_check_what_they_say() {
    in_task(|| {
        let h = holder();
        let a = h.a.as_ptr().cast_mut().cast::<c_void>();
        // SAFETY: 16 writable bytes: the field `a`.
        unsafe { memset(extent(a, 16), 2, 16) };
        assert_eq!(h.a, [2; 16]);
        // SAFETY: as above.
        unsafe { memset(pointee::<[u8; 16]>(a), 3, 16) };
        assert_eq!(h.a, [3; 16]);
        // The extent reaching back over `p` is caught.
        let base = h.as_ptr().cast::<c_void>();
        if checks_args() {
            // SAFETY: never reached: the check fails first.
            let msg = panic_of(|| unsafe {
                memset(extent(base, 24), 0, 0);
            });
            assert!(msg.contains("memset, argument 1") && msg.contains("not pinned"), "{msg}");
        }
    });
}

#[test]
fn the_first_bad_argument_is_reported() {
    if !checks_args() {
        return;
    }
    in_task(|| {
        let (a, b) = (holder(), holder());
        let (pa, pb) = (a.as_ptr().cast::<c_void>(), b.as_ptr().cast::<c_void>());
        // SAFETY: never reached: the checks fail first.
        let msg = panic_of(|| unsafe {
            memcpy(pa, pb, 0);
        });
        assert!(msg.contains("memcpy, argument 1"), "{msg}");
        let ok = new_slice::<u8>(8);
        // SAFETY: as above.
        let msg = panic_of(|| unsafe {
            memcpy(slice_data(&ok).as_void(), pb, 0);
        });
        assert!(msg.contains("memcpy, argument 2"), "{msg}");
    });
}

#[test]
fn pointer_to_pointer_free_type_is_not_checked() {
    in_task(|| {
        /// `"hi"` and an unpinned pointer in one object.
        #[derive(CType)]
        #[repr(C)]
        #[ctype(name = "cstr_holder")]
        struct CStrHolder {
            s: [c_char; 8],
            p: *mut i32,
        }
        let h = new(CStrHolder { s: [b'h' as c_char, b'i' as c_char, 0, 0, 0, 0, 0, 0], p: new(1).as_ptr() });
        // `const char *` points to a type without pointers: cmd/cgo's
        // needsPointerCheck is false, whatever the object around it holds.
        // SAFETY: a NUL-terminated string.
        assert_eq!(unsafe { strlen(h.s.as_ptr()) }, 2);
    });
}

#[test]
fn hints_are_the_ones_cmd_cgo_chooses() {
    cgocheck::run_test(|| {
        let h = holder();
        assert!(matches!(field(&h.a).hint(), Hint::Element));
        assert!(matches!(field(h).hint(), Hint::Element));
        assert!(matches!(field(&h.a).as_void().hint(), Hint::Element), "a conversion keeps the hint");
        let s = new_slice::<*mut c_void>(4);
        let e = elem(&s, 2);
        assert!(matches!(e.hint(), Hint::Whole { .. }));
        assert_eq!(e.as_ptr(), s.elem_ptr(2));
        assert!(matches!(slice_data(&s).hint(), Hint::Whole { .. }));
        let arr = [0u64; 3];
        assert!(matches!(elem(&arr, 1).hint(), Hint::Whole { .. }));
        assert!(matches!(elem(&new([0u8; 4]), 3).hint(), Hint::Whole { .. }));
        assert!(matches!(elem(&h.a[..], 0).hint(), Hint::Extent(16)), "a Rust slice view has no header");
        assert!(matches!(string_data(&new_string("abc")).hint(), Hint::Extent(3)));
        assert!(matches!(string_data("abcd").hint(), Hint::Extent(4)));
        assert!(matches!(pointee::<u64>(std::ptr::null_mut()).hint(), Hint::Pointee(_)));
        assert!(matches!(extent(std::ptr::null_mut::<c_void>(), 5).hint(), Hint::Extent(5)));
    });
}

#[test]
fn out_of_range_element_panics_like_go() {
    cgocheck::run_test(|| {
        let s = new_slice::<u8>(2);
        assert!(panic_of(|| {
            let _ = elem(&s, 2);
        })
        .contains("index out of range [2] with length 2"));
    });
}

#[test]
fn which_parameters_are_checked() {
    use cgocheck::ffi::param_needs_check;
    assert!(!param_needs_check::<c_int>());
    assert!(!param_needs_check::<*mut c_int>(), "pointer to a pointer-free type");
    assert!(param_needs_check::<*mut c_void>());
    assert!(param_needs_check::<*mut *mut c_int>());
    assert!(param_needs_check::<*mut Holder>());
    assert!(param_needs_check::<cgocheck::GcStr>(), "a string by value");
    // A by-value integer argument needs no heap lookup: the check is Ok
    // without the runtime.
    assert!(Arg::<c_int>::check(&5, cgocheck::checker::CallSite::new("abs", 1)).is_ok());
}

#[test]
fn c_function_pointers() {
    in_task(|| {
        extern "C" {
            #[link_name = "abs"]
            fn c_abs(x: c_int) -> c_int;
        }
        let f = IntFn::new(c_abs);
        assert!(!f.is_null());
        // SAFETY: abs has no preconditions.
        assert_eq!(unsafe { f.call(-9) }, 9);
        // SAFETY: the address of abs, which has this prototype.
        let g = unsafe { IntFn::from_addr(c_abs as *const c_void) };
        // SAFETY: as above.
        assert_eq!(unsafe { g.call(-3) }, 3);
        let null = IntFn::null();
        // SAFETY: never reached: a null pointer is refused first.
        let msg = panic_of(|| unsafe {
            null.call(1);
        });
        assert!(msg.contains("call through a null C function pointer (IntFn)"), "{msg}");
        assert_eq!(format!("{null:?}"), "IntFn(null)");
        // One word, described as a function value.
        assert_eq!(std::mem::size_of::<IntFn>(), 8);
        assert_eq!(IntFn::TYPE.to_string(), "IntFn");
    });
}

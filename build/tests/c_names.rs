//! C's names, as bindgen writes them and as users copy them from headers,
//! compile without naming warnings inside `c_functions!`: this file denies
//! the naming lints, so a wrapper, parameter, frame field or pointer type
//! that trips one fails the build of this test. (Doc-tests cannot show
//! it: rustdoc does not report these lints there.) It also calls through
//! the attributes a declaration may carry: `#[link(..)]` on the block,
//! `#[link_name]`, `#[allow]` and doc comments on a function, and a C
//! function pointer parameter spelled as bindgen does,
//! `Option<unsafe extern "C" fn(..)>`.
#![deny(non_snake_case, non_camel_case_types, warnings)]

use core::ffi::{c_int, c_void};

cgocheck::c_functions! {
    #[link(name = "c")]
    extern "C" {
        /// C's `abs`, under an Xlib-style name.
        #[link_name = "abs"]
        #[allow(clippy::doc_markdown)]
        fn C_Abs(X: c_int) -> c_int;
        /// C's `qsort`, whose comparator bindgen writes as an `Option`.
        fn qsort(
            pBase: *mut c_void,
            nMemb: usize,
            Size: usize,
            xCompar: Option<unsafe extern "C" fn(*const c_void, *const c_void) -> c_int>,
        );
        type compar_fn = fn(pA: *const c_void, pB: *const c_void) -> c_int;
    }
}

unsafe extern "C" fn by_value(a: *const c_void, b: *const c_void) -> c_int {
    // SAFETY: qsort passes pointers to two elements of the i32 array.
    let (a, b) = unsafe { (*a.cast::<i32>(), *b.cast::<i32>()) };
    a.cmp(&b) as c_int
}

#[test]
fn c_names_and_attributes() {
    cgocheck::run(|| {
        assert!(compar_fn::null().is_null());
        // SAFETY: abs has no preconditions.
        assert_eq!(unsafe { C_Abs(-9) }, 9);
        let v = cgocheck::new([3i32, 1, 2]);
        // SAFETY: three i32s and a comparator of i32s.
        unsafe { qsort(cgocheck::field(v).as_void(), 3, 4, Some(by_value as unsafe extern "C" fn(_, _) -> _)) };
        assert_eq!(*v, [1, 2, 3]);
    });
}

//! The tour: a short program against real C (csrc/) that shows what the
//! runtime does today. Run it with
//!
//! ```sh
//! cargo run --release -p c-tests --example tour
//! CGOCHECK=2 cargo run --release -p c-tests --example tour
//! ```
//!
//! It hands managed memory to C, keeps a Handle in C, pins, and then shows
//! the checker catching each class of violation with its message. The typed
//! call layer that runs these checks at every C call comes with the
//! tasks-and-calls issue; until then the tour calls the checks exactly as
//! that layer will (`cgocheck::check::*`, gated by `CGOCHECK`), and prints
//! what they return instead of panicking, so one run shows every class.

use c_tests::ffi::{ct_keep_handle, ct_kept_handle, ct_sum_list, Node};
use cgocheck::checker::{CallSite, Hint};
use cgocheck::{check, new, new_slice, CType, Gc, Handle, Pinner};
use std::ffi::c_void;

/// Go's `struct s1 { int *p; }` (rows ptr1, message).
#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    p: *mut i32,
}

/// An object with a pointer field and a byte array (rows extent-known,
/// extent-unknown).
#[derive(CType)]
#[repr(C)]
#[ctype(name = "withbuf")]
struct WithBuf {
    p: *mut i32,
    a: [u8; 8],
}

fn main() {
    println!("cgocheck tour, CGOCHECK={}", check::level() as u8);

    section("1. Managed memory handed to C");
    let mut head: Gc<Node> = Gc::null();
    for v in 1..=100 {
        head = new(Node { next: head, value: v });
    }
    // SAFETY: every node is live; C only reads them.
    let sum = unsafe { ct_sum_list(head.as_ptr()) };
    println!("C walked a 100-node managed list and summed it: {sum}");

    section("2. A Handle kept by C");
    let h = Handle::new(String::from("a value C must not see"));
    // SAFETY: integers only.
    let back = unsafe {
        ct_keep_handle(h.as_raw());
        ct_kept_handle()
    };
    println!("C kept handle {back:#x}; it resolves to {:?}", Handle::from_raw(back).value::<String>());
    h.delete();

    section("3. The checker (what the call layer will run at each C call)");
    let int = new(5i32);
    let s1 = new(S1 { p: int.as_ptr() });
    show(
        "ptr1: f1(&s1) where s1.p is an unpinned managed pointer",
        // SAFETY: `s1` is a live S1.
        unsafe { check::pointer(CallSite::new("f1", 1), s1.as_ptr(), Hint::Element) },
    );

    let mut pinner = Pinner::new();
    pinner.pin(int);
    show(
        "ptr1 pinned: the same call after pinning s1.p",
        // SAFETY: as above.
        unsafe { check::pointer(CallSite::new("f1", 1), s1.as_ptr(), Hint::Element) },
    );
    pinner.unpin();

    let wb = new(WithBuf { p: new(7i32).as_ptr(), a: [0; 8] });
    // SAFETY: `a` is a field of the live object `wb`.
    let a = unsafe { std::ptr::addr_of!((*wb.as_ptr()).a) } as *const c_void;
    show(
        "extent-unknown: void* to the byte array, nothing known (Go checks the whole object)",
        // SAFETY: no `Whole` hint.
        unsafe { check::pointer(CallSite::new("f10", 1), a, Hint::Unknown) },
    );
    show(
        "extent-known: the same void* passed with its extent, 8 bytes (no false positive)",
        // SAFETY: no `Whole` hint.
        unsafe { check::pointer(CallSite::new("f10", 1), a, Hint::Extent(8)) },
    );

    show("export1: an exported function returns a new managed byte", check::result("GoFn21", &new(1u8)));

    section("4. Store checks (CGOCHECK=2 only)");
    // SAFETY: malloc of one pointer; freed below.
    let cmem = unsafe { libc::malloc(8) } as *mut *mut u8;
    // SAFETY: `cmem` is 8 writable, aligned bytes.
    show("barrier: store a new managed pointer into malloc'd memory", unsafe { check::write(cmem, new(1u8).as_ptr()) });
    let slice = new_slice::<*mut u8>(1);
    // SAFETY: as above.
    show("barrier, nil: store a null pointer there", unsafe { check::write(cmem, slice[0]) });
    // SAFETY: from malloc above.
    unsafe { libc::free(cmem.cast()) };
    if (check::level() as u8) < 2 {
        println!("\n(the store checks are off below CGOCHECK=2, so both said ok; run the tour with CGOCHECK=2 to see the first one caught)");
    }
}

fn section(title: &str) {
    println!("\n== {title}");
}

/// Prints one check's verdict: `ok`, or the message a user would read.
fn show(what: &str, verdict: Result<(), cgocheck::checker::CheckError>) {
    match verdict {
        Ok(()) => println!("\n-- {what}\nok"),
        Err(e) => println!("\n-- {what}\ncaught:\n{e}"),
    }
}

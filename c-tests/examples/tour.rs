//! The tour: a short program against real C (csrc/) that shows what the
//! runtime does. Run it with
//!
//! ```sh
//! cargo run --release -p c-tests --example tour
//! ```
//!
//! First, correct calls through the checked call layer: C reads a managed
//! struct, walks a pinned managed list, keeps a Handle. Then one violation
//! of each class — an argument, a map, a result, a store — each in a child
//! process (the tour runs itself again with the demo's name), so that the
//! panic ends the child and the tour goes on to print what it said. Last, a
//! child crashes inside C, and the tour prints its crash report: the C
//! frames with file:line, then the managed callers.

use c_tests::ffi::{Node, Point3};
use cgocheck::{check, extent, field, new, CType, Gc, GcMap, Handle, Pinner};
use core::ffi::{c_int, c_void};
use std::process::Command;

cgocheck::c_functions! {
    extern "C" {
        // csrc/heap.c
        fn ct_sum_point(p: *const Point3) -> i64;
        fn ct_sum_list(n: *const Node) -> i64;
        fn ct_keep_handle(h: usize);
        fn ct_kept_handle() -> usize;
        // csrc/ptr.c, Go's names
        fn f1(p: *mut S1);
        fn f10(p: *mut c_void);
        fn f46(p: *mut c_void);
        fn f14a() -> cgocheck::CPtr<*mut u8>;
        fn f14b(p: *mut *mut u8);
        // csrc/tour.c
        fn ct_tour_read_exported() -> c_int;
        // csrc/crash.c: a NULL dereference two C frames deep
        fn crash_in_c() -> c_int;
    }
}

/// Go's `struct s1 { int *p; }`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    p: *mut i32,
}

/// An object with a pointer field and a byte array.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "withbuf")]
struct WithBuf {
    p: *mut i32,
    a: [u8; 8],
}

cgocheck::export! {
    /// Returns a new managed byte to C, unpinned: Go's `GoFn21`.
    fn TourNewByte() -> *mut u8 {
        new(7u8).as_ptr()
    }
}

/// The violations, each run in a child: name, what it does, the level the
/// child runs at (`None`: the tour's own).
const DEMOS: &[(&str, &str, Option<&str>)] = &[
    ("arg", "f1(field(s1)) where s1.p is an unpinned managed pointer (Go's ptr1)", None),
    ("list", "C walks the same list, unpinned this time", None),
    (
        "extent_unknown",
        "f10(void*) with the address of `a`, nothing known: the whole object is checked (what Go does)",
        None,
    ),
    ("extent_known", "the same pointer passed as extent(a, 8): only those 8 bytes (no false positive)", None),
    ("map", "f46(field(&m)) with m a managed map", None),
    ("result", "C calls the exported TourNewByte, which returns an unpinned managed pointer", None),
    ("store", "managed code stores a new managed pointer into malloc'd memory (store checks: CGOCHECK=2)", Some("2")),
];

fn main() {
    if let Some(demo) = std::env::args().nth(1) {
        cgocheck::run(|| child(&demo));
        return;
    }
    println!("cgocheck tour, CGOCHECK={}", check::level() as u8);
    cgocheck::run(correct_calls);
    section("2. Violations, each caught in a child process with its message");
    for (name, what, level) in DEMOS {
        show(name, what, *level);
    }
    section("3. A crash inside C, reported with the C frames and the managed callers");
    show("crash", "C dereferences NULL two frames deep (Go's `./crash c`, where Go shows no C frame)", None);
}

fn section(title: &str) {
    println!("\n== {title}");
}

fn correct_calls() {
    section("1. Correct calls through the checked layer");
    let p = new(Point3 { x: 40, y: 2, z: -7 });
    // SAFETY: C reads the point.
    let sum = unsafe { ct_sum_point(field(p)) };
    println!("C read a managed struct: ct_sum_point(field(p)) = {sum}");

    let head = list(100);
    let mut pinner = Pinner::new();
    let mut n = head;
    while !n.is_null() {
        pinner.pin(n);
        n = n.next;
    }
    // SAFETY: every node is live and pinned; C only reads them.
    let sum = unsafe { ct_sum_list(head) };
    println!("C walked a 100-node managed list, every node pinned: {sum}");
    pinner.unpin();

    let h = Handle::new(String::from("a value C must not see"));
    // SAFETY: integers only.
    let back = unsafe {
        ct_keep_handle(h.as_raw());
        ct_kept_handle()
    };
    println!("C kept handle {back:#x}; it resolves to {:?}", Handle::from_raw(back).value::<String>());
    h.delete();
}

/// A managed list of `n` nodes, values 1..=n.
fn list(n: i64) -> Gc<Node> {
    (1..=n).fold(Gc::null(), |next, value| new(Node { next, value }))
}

/// One demo, run in this child process.
fn child(demo: &str) {
    match demo {
        // SAFETY (all): the C functions ignore or only read their arguments.
        "arg" => unsafe { f1(field(new(S1 { p: new(5).as_ptr() }))) },
        "list" => {
            // SAFETY: as above.
            let sum = unsafe { ct_sum_list(list(100)) };
            println!("{sum}");
        }
        "extent_unknown" | "extent_known" => {
            let o = new(WithBuf { p: new(7).as_ptr(), a: [0; 8] });
            let a = (o.addr() + std::mem::offset_of!(WithBuf, a)) as *mut c_void;
            if demo == "extent_known" {
                // SAFETY: as above.
                unsafe { f10(extent(a, 8)) }
            } else {
                // SAFETY: as above.
                unsafe { f10(a) }
            }
        }
        "map" => {
            let m = GcMap::<i64, i64>::new();
            m.insert(1, 2);
            // SAFETY: as above.
            unsafe { f46(field(&m).as_void()) }
        }
        // SAFETY: as above; C reads the byte it is returned.
        "result" => println!("{}", unsafe { ct_tour_read_exported() }),
        // SAFETY: f14a returns room for one pointer, f14b frees it.
        "store" => unsafe {
            let p = f14a();
            p.write(new(1u8).as_ptr());
            f14b(p);
        },
        "crash" => println!("{}", tour_calls_crashing_c()),
        other => panic!("the tour has no demo {other:?}"),
    }
}

/// The managed caller the crash report shows below the C frames.
#[inline(never)]
fn tour_calls_crashing_c() -> c_int {
    // SAFETY: crash_in_c takes nothing; it crashes by design.
    std::hint::black_box(unsafe { crash_in_c() })
}

/// Runs `demo` in a child and prints what happened: "ok", or the panic's
/// message (what follows it — the runtime's report and task traceback — is
/// left out).
fn show(demo: &str, what: &str, level: Option<&str>) {
    println!("\n-- {what}");
    let mut cmd = Command::new(std::env::current_exe().expect("the tour's own path"));
    cmd.arg(demo).env("RUST_BACKTRACE", "0");
    if let Some(level) = level {
        cmd.env("CGOCHECK", level).env_remove("GODEBUG");
    }
    let out = cmd.output().expect("run the tour's child");
    if out.status.success() {
        println!("ok");
        return;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut lines = stderr.lines();
    let message: Vec<&str> = match lines.position(|l| l.contains(" panicked at ")) {
        Some(_) => lines.take_while(|l| !l.is_empty() && !l.starts_with("note: run with")).collect(),
        None => stderr.lines().collect(),
    };
    println!("caught (the child exited with {}):", out.status);
    // A crash report goes on through the runtime's own frames below the
    // tour's `main`; its head is what matters here.
    const SHOWN: usize = 26;
    for line in message.iter().take(SHOWN) {
        println!("  {line}");
    }
    if message.len() > SHOWN {
        println!("  ... ({} more lines: the frames below, down to the task's start)", message.len() - SHOWN);
    }
}

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
//! Everything runs as the main task of one `cgocheck::run`, as a Go
//! program's `main` runs as a goroutine: managed objects are made by tasks,
//! and C is called from them. A `Gc` a setup keeps for its body lives in
//! the body's closure, which is Rust memory the collector does not scan, so
//! it is kept in a [`Root`]; the body copies it to its stack before its
//! loop, so the loop pays nothing for the root.
//!
//! To add a case, write its setup function and append one line to `CASES`.

use cgocheck::{CType, Gc, ManagedMemory, Region, Root};
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
    ("check_one_pointer", check_one_pointer),
    ("check_512KiB_ptr_array", check_512kib_ptr_array),
    ("callback_c_to_go", callback_c_to_go),
    ("callback_from_c_thread", callback_from_c_thread),
    ("crash_report_ms", crash_report_ms),
    ("call_plain_c_baseline", call_plain_c_baseline),
    ("call_add_int", call_add_int),
    ("call_one_pointer_checked", call_one_pointer_checked),
    ("call_check_512KiB_ptr_array", call_check_512kib_ptr_array),
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
    cgocheck::run(|| {
        for &(name, setup) in CASES {
            if !only.is_empty() && !only.iter().any(|o| o == name) {
                continue;
            }
            let mut body = setup();
            println!("{name}\t{:.1}", time(&mut body));
        }
    });
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
    let objs: Vec<Root<Gc<Node>>> =
        (0..8).map(|_| Root::new(cgocheck::new(Node { next: Gc::null(), val: [0; 3] }))).collect();
    let addrs: Vec<usize> = objs.iter().map(|o| o.addr() + 16).collect();
    Box::new(move |n| {
        let _alive = &objs;
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

cgocheck::managed_static! {
    /// bench.go's `sink`: the head of the short list `alloc_32B_pointerful`
    /// keeps alive (a managed global, so a root of the collector).
    static SINK: Gc<Node> = Gc::null();
}

/// Go's shape: allocate a 32-byte `Node`, link it to the previous one so a
/// short list stays alive through the global `SINK`, and drop the link
/// every 1024th time. As in Go, the number includes the collector's work:
/// its cycles reclaim the dropped lists, and the sweep hands their memory
/// back to the allocation.
fn alloc_32b_pointerful() -> Body {
    Box::new(move |n| {
        for i in 0..n {
            let next = if i % 1024 == 0 { Gc::null() } else { SINK.get() };
            // SAFETY: only this task touches SINK, and no reference to it
            // is alive.
            unsafe { SINK.set(black_box(cgocheck::new(Node { next, val: [0; 3] }))) };
        }
    })
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
    let root = Root::new(cgocheck::new(Obj64 { p: std::ptr::null_mut(), a: [0; 7] }));
    let site = CallSite::new("take", 1);
    Box::new(move |n| {
        let o = *root;
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
    let root = Root::new(cgocheck::new_slice::<*mut std::ffi::c_void>(1 << 16));
    let site = CallSite::new("takebig", 1);
    Box::new(move |n| {
        let big = *root;
        for _ in 0..n {
            let hint =
                Hint::Whole { ty: <GcSlice<*mut std::ffi::c_void>>::TYPE, value: (&big as *const GcSlice<_>).cast() };
            // SAFETY: `hint.value` points to the live slice header `big`.
            let r = unsafe { cgocheck::check::pointer(site, black_box(big.elem_ptr(0)), hint) };
            black_box(r).expect("check_512KiB_ptr_array");
        }
    })
}

// ---- callbacks from C ----------------------------------------------------------
//
// bench.go's two C → managed cases (csrc/callback_bench.c: its `callGo` and
// `callGoFromThread`), calling the exported `goCallback` below. The C call
// that starts each operation goes through the call layer, from the main
// task, as for the calls into C.

cgocheck::c_functions! {
    extern "C" {
        /// Calls `goCallback` once.
        fn ct_bench_call_go();
        /// One new C thread calls `goCallback` `n` times; 0 when it ran.
        fn ct_bench_call_go_from_thread(n: core::ffi::c_long) -> core::ffi::c_int;
    }
}

/// Calls of `goCallback`.
static CALLBACKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

cgocheck::export! {
    /// bench.go's `goCallback`: `counter++` (a plain increment, as in Go:
    /// only one thread calls it at a time).
    fn goCallback() {
        use std::sync::atomic::Ordering::Relaxed;
        CALLBACKS.store(CALLBACKS.load(Relaxed) + 1, Relaxed);
    }
}

/// Asserts that `goCallback` ran `n` times since `before`.
fn assert_callbacks(before: u64, n: u64) {
    let ran = CALLBACKS.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert_eq!(ran, n, "goCallback ran {ran} times for {n} operations");
}

/// Managed → C → managed and back, once per operation: the call layer's
/// `cgocall` into `ct_bench_call_go`, which calls the exported `goCallback`
/// (export shim, start check, `cgocallback`, the managed body).
fn callback_c_to_go() -> Body {
    Box::new(|n| {
        let before = CALLBACKS.load(std::sync::atomic::Ordering::Relaxed);
        for _ in 0..n {
            // SAFETY: no arguments; goCallback is exported.
            unsafe { ct_bench_call_go() };
        }
        assert_callbacks(before, n);
    })
}

/// A thread created by C calls the exported `goCallback` `n` times; thread
/// creation and join are amortised over `n`, as in bench.go.
fn callback_from_c_thread() -> Body {
    Box::new(|n| {
        let before = CALLBACKS.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: a plain integer argument; goCallback is exported.
        let rc = unsafe { ct_bench_call_go_from_thread(n as core::ffi::c_long) };
        assert_eq!(rc, 0, "pthread_create or pthread_join failed");
        assert_callbacks(before, n);
    })
}

// ---- crash_report_ms ---------------------------------------------------------
//
// The time a crash report takes: from the fatal signal to the complete
// report, for the anchor crash (a NULL dereference in `deref` ←
// `crash_in_c`, csrc/crash.c). One operation is one crash of a separate
// process; the goal is under 100 ms.
//
// The crashing process is this benchmark binary itself, started with
// `CGOCHECK_BENCH_CRASH_CHILD=1`: it links the runtime (so its fatal-signal
// handler) and the C of csrc/. Process start-up is kept out of the
// measurement: the setup starts a pool of such children and waits until
// each has started and is blocked reading one byte from stdin. An
// operation writes that byte to one of them — the child calls `crash_in_c`
// at once — and waits for the child to exit: collection in the handler,
// the symboliser process (exec, DWARF loading, lookup), the whole report
// written (to /dev/null), and the exit. Should the pool run dry, a child
// is started inside the operation, which only makes the number worse.
//
// Printed like every case, in ns per operation (one report), so that the
// `name<TAB>ns/op` output stays uniform for compare.sh; divide by 10^6 for
// milliseconds.

/// Children started ahead of the measured operations (the timer runs
/// about 25 operations at tens of ms each).
const CRASH_POOL: usize = 40;

extern "C" {
    /// csrc/crash.c: NULL dereference two C frames deep.
    fn crash_in_c() -> core::ffi::c_int;
}

fn crash_report_ms() -> Body {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Child, Command, Stdio};
    if std::env::var_os("CGOCHECK_BENCH_CRASH_CHILD").is_some() {
        // The child: say ready, wait for the byte, crash (EOF: just leave).
        println!("ready");
        let _ = std::io::stdout().flush();
        let mut byte = [0u8; 1];
        if std::io::stdin().read(&mut byte).unwrap_or(0) == 1 {
            // SAFETY: no arguments; crashes by design.
            black_box(unsafe { crash_in_c() });
        }
        std::process::exit(0);
    }
    let exe = std::env::current_exe().expect("the benchmark's own path");
    let start = move || -> Child {
        let mut child = Command::new(&exe)
            .arg("crash_report_ms")
            .env("CGOCHECK_BENCH_CRASH_CHILD", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a crashing child");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n", "crash child did not start");
        child
    };
    let mut pool: Vec<Child> = (0..CRASH_POOL).map(|_| start()).collect();
    Box::new(move |n| {
        for _ in 0..n {
            let mut child = pool.pop().unwrap_or_else(&start);
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(b"x").unwrap();
            drop(stdin);
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(2), "the crash report ends with exit status 2");
        }
    })
}

// ---- calls into C -------------------------------------------------------------
//
// bench.go's three managed → C cases, through the typed call layer
// (`c_tests::ffi::call`, csrc/call.c): the wrapper's argument checks, then
// `cgocall` (entersyscall, the switch to the M's g0 stack, the C call,
// exitsyscall), made from the main task, as a C call must be.

/// bench.go's `call_add_int`: `C.add(2, 3)`, nothing to check.
/// Not in bench.go: the physical limit of `call_add_int`. The same C
/// `ct_add`, called straight from Rust through a function pointer (kept
/// opaque, so the call is not inlined or folded): no runtime, no checks, no
/// stack switch. What a crossing costs beyond this is the runtime's.
fn call_plain_c_baseline() -> Body {
    extern "C" {
        #[link_name = "ct_add"]
        fn raw_ct_add(a: core::ffi::c_int, b: core::ffi::c_int) -> core::ffi::c_int;
    }
    Box::new(|n| {
        let f: unsafe extern "C" fn(core::ffi::c_int, core::ffi::c_int) -> core::ffi::c_int = black_box(raw_ct_add);
        for _ in 0..n {
            // SAFETY: ct_add takes two ints and returns their sum.
            black_box(unsafe { f(black_box(2), black_box(3)) });
        }
    })
}

fn call_add_int() -> Body {
    use c_tests::ffi::call::ct_add;
    Box::new(|n| {
        for _ in 0..n {
            // SAFETY: integers in, an integer out.
            black_box(unsafe { ct_add(black_box(2), black_box(3)) });
        }
    })
}

/// bench.go's `call_one_pointer_checked`: `C.take(o)` with `o :=
/// new(C.obj64)`, a pointer variable: an unknown pointer, so the whole
/// 64-byte object is checked (its one pointer word is nil) before the call.
fn call_one_pointer_checked() -> Body {
    use c_tests::ffi::call::{ct_take, Obj64 as CObj64};
    let root = Root::new(cgocheck::new(CObj64 { p: std::ptr::null_mut(), a: [0; 7] }));
    Box::new(move |n| {
        let o = *root;
        for _ in 0..n {
            // SAFETY: `take` ignores its argument.
            unsafe { ct_take(black_box(o)) };
        }
    })
}

/// bench.go's `call_check_512KiB_ptr_array`: `C.takebig(unsafe.Pointer(&big[0]))`
/// with `big` a managed slice of 65536 nil `void*`: `&big[0]` gives C the
/// whole backing array, all 512 KiB of it checked before the call.
fn call_check_512kib_ptr_array() -> Body {
    use c_tests::ffi::call::ct_takebig;
    use std::ffi::c_void;
    let root = Root::new(cgocheck::new_slice::<*mut c_void>(1 << 16));
    Box::new(move |n| {
        let big = *root;
        for _ in 0..n {
            // SAFETY: `takebig` ignores its argument.
            unsafe { ct_takebig(cgocheck::elem(black_box(&big), 0).as_void()) };
        }
    })
}

//! The collector's benchmark program: the twin of
//! `shared/anchors/go/gc/gcbench.go`, the same cases under the same names,
//! so `shared/anchors/compare-gc.sh` can put both side by side.
//!
//! ```text
//! cargo run --release -q -p c-tests --bin gcbench [DEPTH]
//! ```
//!
//! prints `name<TAB>value` lines, the unit part of the name:
//!
//! - `binarytrees_<D>_ms`: wall time of the binary-trees program (the
//!   Computer Language Benchmarks Game algorithm, one task) at depth `D`
//!   (default 21); `binarytrees_<D>_max_pause_us`: the longest pause of
//!   the world so far;
//! - `churn_64MiB_live_ns_per_alloc`: 64-byte pointerful allocations
//!   (2^25 of them, 2 GiB) while a 64 MiB linked list stays live;
//!   `churn_64MiB_live_max_pause_us`: the longest pause so far;
//! - `cgo_calls_during_gc_ns`: a C call (`add` of two ints, through the
//!   typed call layer) made in a loop by the main task while another task
//!   allocates garbage as fast as it can, so collections keep running.
//!
//! With `GCBENCH_VERBOSE` set (not empty), binary-trees' checksum lines go
//! to stderr, as Go's program prints them.
//!
//! The whole program is the main task of `cgocheck::run` (Go's `main`
//! runs as a goroutine); `cgocheck::gc()` stands where Go calls
//! `runtime.GC()`. A "max pause" is, as Go's `PauseQuantiles[4]` from
//! `debug.ReadGCStats`, the longest of the recent pauses `mem_stats` keeps
//! (the last 256 collections, forced ones included); a pause here is the
//! world's whole stop: stopping, marking and restarting.

use c_tests::ffi::call::ct_add;
use cgocheck::{CType, Gc};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// Go's `tree`: two pointers.
#[derive(CType)]
#[repr(C)]
struct Tree {
    left: Gc<Tree>,
    right: Gc<Tree>,
}

/// Go's `bottomUp`: a complete tree of depth `d`.
fn bottom_up(d: u32) -> Gc<Tree> {
    if d == 0 {
        return cgocheck::new(Tree { left: Gc::null(), right: Gc::null() });
    }
    cgocheck::new(Tree { left: bottom_up(d - 1), right: bottom_up(d - 1) })
}

/// Go's `check`: the number of nodes.
fn check(t: Gc<Tree>) -> u64 {
    if t.left.is_null() {
        return 1;
    }
    1 + check(t.left) + check(t.right)
}

/// Go's `binaryTrees`: runs the benchmark and returns the checksum lines
/// it would print.
fn binary_trees(n: u32) -> Vec<String> {
    const MIN_DEPTH: u32 = 4;
    let max_depth = n.max(MIN_DEPTH + 2);
    let mut out = Vec::new();
    let stretch = max_depth + 1;
    out.push(format!("stretch tree of depth {stretch}\t check: {}", check(bottom_up(stretch))));
    let long = bottom_up(max_depth);
    for d in (MIN_DEPTH..=max_depth).step_by(2) {
        let iters = 1u64 << (max_depth - d + MIN_DEPTH);
        let chk: u64 = (0..iters).map(|_| check(bottom_up(d))).sum();
        out.push(format!("{iters}\t trees of depth {d}\t check: {chk}"));
    }
    out.push(format!("long lived tree of depth {max_depth}\t check: {}", check(long)));
    out
}

/// The longest of the recent pauses (the last 256 collections), in
/// microseconds: Go's `PauseQuantiles[4]`.
fn max_pause_us() -> f64 {
    let s = cgocheck::mem_stats();
    let recent = (s.num_gc as usize).min(s.pause_ns.len());
    let max = s.pause_ns.iter().take(recent).copied().max().unwrap_or(0);
    max as f64 / 1000.0
}

/// gcbench.go's `obj64`: 64 bytes, the first word a pointer.
#[derive(CType)]
#[repr(C)]
struct Obj64 {
    next: Gc<Obj64>,
    pad: [i64; 7],
}

cgocheck::managed_static! {
    /// gcbench.go's `sink`: where the garbage is linked (a managed global,
    /// so a root of the collector, as a Go global is).
    static SINK: Gc<Obj64> = Gc::null();
}

/// `sink = &obj64{next: sink}`.
#[inline]
fn link_to_sink() {
    let o = cgocheck::new(Obj64 { next: SINK.get(), pad: [0; 7] });
    // SAFETY: one task at a time writes SINK (the churn loop, then the
    // allocating task of `cgo_calls_during_gc_ns`), and no reference to it
    // is alive.
    unsafe { SINK.set(o) };
}

/// `sink = nil`.
fn clear_sink() {
    // SAFETY: as in `link_to_sink`.
    unsafe { SINK.set(Gc::null()) };
}

/// Tells the allocating task of `cgo_calls_during_gc_ns` to stop.
static STOP: AtomicBool = AtomicBool::new(false);

/// Go's churn phase: 2 GiB of 64-byte garbage while a 64 MiB list stays
/// live. The list lives in this function's frame only: once it returns,
/// the list is garbage, as it is in Go after `runtime.KeepAlive(live)`
/// (Go's liveness is precise; our stack scan is conservative, so the
/// frame must be gone and the slot cleared, or every later cycle would
/// mark the list).
#[inline(never)]
fn churn_with_64mib_live() {
    // 64 MiB live: a list of 1 Mi 64-byte objects, on this task's stack.
    cgocheck::gc();
    let mut live: Gc<Obj64> = Gc::null();
    for _ in 0..1 << 20 {
        live = cgocheck::new(Obj64 { next: live, pad: [0; 7] });
    }
    cgocheck::gc();
    const CHURN: u64 = 1 << 25; // 2 GiB of garbage
    let start = Instant::now();
    for i in 0..CHURN {
        link_to_sink();
        if i & 1023 == 0 {
            clear_sink();
        }
    }
    let el = start.elapsed();
    black_box(live);
    live = Gc::null();
    black_box(&mut live);
    println!("churn_64MiB_live_ns_per_alloc\t{:.1}", el.as_nanos() as f64 / CHURN as f64);
    println!("churn_64MiB_live_max_pause_us\t{:.1}", max_pause_us());
}

fn main() {
    let depth: u32 = match std::env::args().nth(1) {
        None => 21,
        Some(a) => a.parse().unwrap_or_else(|_| {
            eprintln!("gcbench: the binary-trees depth must be a whole number from 0 up (default 21), not {a:?}");
            std::process::exit(2)
        }),
    };
    cgocheck::run(|| {
        cgocheck::gc();
        let start = Instant::now();
        let lines = binary_trees(depth);
        let el = start.elapsed();
        if std::env::var_os("GCBENCH_VERBOSE").is_some_and(|v| !v.is_empty()) {
            for l in &lines {
                eprintln!("{l}");
            }
        }
        println!("binarytrees_{depth}_ms\t{:.1}", el.as_micros() as f64 / 1000.0);
        println!("binarytrees_{depth}_max_pause_us\t{:.1}", max_pause_us());

        churn_with_64mib_live();

        // C calls while another task keeps the collector busy.
        let garbage = cgocheck::spawn(|| {
            while !STOP.load(Ordering::Relaxed) {
                for i in 0..4096 {
                    link_to_sink();
                    if i & 63 == 0 {
                        clear_sink();
                    }
                }
            }
        });
        const CALLS: u64 = 5_000_000;
        let start = Instant::now();
        for _ in 0..CALLS {
            // SAFETY: integers in, an integer out.
            black_box(unsafe { ct_add(black_box(2), black_box(3)) });
        }
        let el = start.elapsed();
        STOP.store(true, Ordering::Relaxed);
        garbage.join();
        println!("cgo_calls_during_gc_ns\t{:.1}", el.as_nanos() as f64 / CALLS as f64);
    });
}

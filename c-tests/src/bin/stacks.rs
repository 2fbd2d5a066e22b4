//! The deep-stack case binary: `stacks CASE` runs one case in which fresh C
//! threads (csrc/callback_deep.c) call exported managed functions that
//! recurse deep, and exits. tests/callback_deep_stacks.rs runs it.
//!
//! - `deep_callbacks`: 100 C threads, 10 at a time, each calling back once
//!   into `GoRecurse(10000)`: 10,000 frames with a 16-word array each on the
//!   callback task's stack (megabytes deep, past the 256 KiB stacks used to
//!   have). Prints how deep the deepest frame was.
//! - `callback_overflow`: a C thread's callback recurses without end; the
//!   runtime reports the overflow of the callback task's stack.

// The C archive built from csrc/ is attached to the c_tests library; naming
// the crate links it into this binary.
use c_tests as _;
use cgocheck::{heap, ManagedMemory, Region};
use core::ffi::c_int;
use std::sync::atomic::{AtomicUsize, Ordering};

const CASES: &[(&str, fn())] = &[("deep_callbacks", deep_callbacks), ("callback_overflow", callback_overflow)];

fn main() {
    let (_, case) = c_tests::harness::chosen_case("stacks", CASES);
    cgocheck::run(case);
}

cgocheck::c_functions! {
    // csrc/callback_deep.c
    extern "C" {
        fn ct_deep_callbacks(nthreads: c_int, batch: c_int, depth: i64) -> i64;
        fn ct_deep_overflow();
    }
}

/// The deepest frame of a [`recurse`] so far: bytes below the top of its
/// task's stack.
static DEEPEST: AtomicUsize = AtomicUsize::new(0);

#[inline(never)]
fn note_depth(addr: usize) {
    let Region::Stack { hi, .. } = heap().region(addr) else {
        panic!("the deepest frame {addr:#x} is not on a task stack: {:?}", heap().region(addr))
    };
    DEEPEST.fetch_max(hi - addr, Ordering::Relaxed);
}

/// Recurses `n` frames below this one, each with a 16-word array the
/// optimizer must keep (it escapes to `black_box`) and work after the call
/// (no tail call); returns the sum of `0..=n`.
#[inline(never)]
fn recurse(n: u64) -> u64 {
    let mut pad = [n; 16];
    std::hint::black_box(&mut pad);
    if n == 0 {
        note_depth(pad.as_ptr() as usize);
        return pad[0];
    }
    recurse(n - 1) + pad[5]
}

/// Overflows the stack on purpose.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(n: u64) -> u64 {
    let mut pad = [n; 16];
    std::hint::black_box(&mut pad);
    recurse_forever(n + 1) + pad[3]
}

cgocheck::export! {
    /// `depth` frames of recursion on the calling C thread's callback task.
    fn GoRecurse(depth: i64) -> i64 {
        recurse(depth as u64) as i64
    }

    /// Recursion without end.
    fn GoRecurseForever() -> i64 {
        recurse_forever(0) as i64
    }
}

const DEPTH: i64 = 10_000;
const THREADS: c_int = 100;

fn deep_callbacks() {
    // SAFETY: plain arguments; GoRecurse is exported.
    let total = unsafe { ct_deep_callbacks(THREADS, 10, DEPTH) };
    assert_eq!(total, THREADS as i64 * (DEPTH * (DEPTH + 1) / 2), "C's sum of GoRecurse's results");
    let deepest = DEEPEST.load(Ordering::Relaxed);
    println!("deepest frame: {deepest} bytes below the top of a callback task's stack");
    assert!(deepest > 1 << 20, "10,000 frames took only {deepest} bytes");
}

fn callback_overflow() {
    // SAFETY: no arguments; GoRecurseForever is exported.
    unsafe { ct_deep_overflow() };
    unreachable!("the callback's recursion has no end");
}

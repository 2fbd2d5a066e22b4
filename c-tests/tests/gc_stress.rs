//! Collector stress: everything at once, for a while, with checks that see
//! corruption and a watchdog that sees a hang.
//!
//! In one process (a child per `CGOCHECK` level):
//!
//! - 64 worker tasks build binary trees of `Node`s (each with a pointer-free
//!   `Leaf` payload), verify every word of them against the pattern their
//!   seed gives, keep one long-lived tree each (verified every round,
//!   rebuilt every 16), and hand trees to each other through a channel;
//! - the workers call C throughout: C sums a payload's words (the argument
//!   checked at the level), C blocks for a few hundred µs (the collector
//!   must not wait for it), and C calls back into managed code that builds
//!   and verifies a tree of its own (csrc/gc_stress.c);
//! - 8 threads created by C call back the same way in a loop, each on an
//!   extra M;
//! - one task changes `GOMAXPROCS` every 20 ms, through 1..=8;
//! - one task forces a collection every 50 ms; the allocation triggers
//!   the others (the test requires some of each).
//!
//! Any mismatch panics (a worker's panic reaches the join; a callback's on
//! a C thread is fatal); a hang trips the watchdog (`watched`), whose report
//! lists every task. The default test runs 6 s per level (~20 s); the
//! #[ignore]d `stress_two_minutes` runs 40 s per level, the issue's 2
//! minutes in total: `cargo test -p c-tests --test gc_stress -- --ignored`.

extern crate c_tests;

#[path = "../../runtime/tests/sched_util/mod.rs"]
mod sched_util;

use cgocheck::{elem, gc, mem_stats, new, run_test, set_gomaxprocs, spawn, CType, Chan, Gc};
use core::ffi::{c_int, c_long};
use sched_util::{child_passes, is_child, watched};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

cgocheck::c_functions! {
    // csrc/gc_stress.c
    extern "C" {
        /// Sums `n` words.
        fn ct_gcs_sum(w: *const u64, n: c_long) -> u64;
        /// Blocks for `us` µs.
        fn ct_gcs_sleep_us(us: c_long);
        /// Calls GoGcsBuild(seed + i) for i in 0..n; the number that succeeded.
        fn ct_gcs_callback(seed: i64, n: c_int) -> i64;
        /// Starts `n` C threads calling GoGcsBuild in a loop; 0, or -1.
        fn ct_gcs_threads_start(n: c_int) -> c_int;
        /// Stops them; the number of calls they made, or -1.
        fn ct_gcs_threads_stop() -> i64;
        /// How many of those calls succeeded.
        fn ct_gcs_threads_ok() -> i64;
    }
}

/// A pointer-free payload C may read.
#[derive(CType)]
#[repr(C)]
struct Leaf {
    words: [u64; 8],
}

/// A tree node.
#[derive(CType)]
#[repr(C)]
struct Node {
    left: Gc<Node>,
    right: Gc<Node>,
    payload: Gc<Leaf>,
    seed: u64,
    check: u64,
}

fn mix(seed: u64, i: u64) -> u64 {
    let x = seed.wrapping_add(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x ^ (x >> 29)) | 1
}

fn build(seed: u64, depth: u32) -> Gc<Node> {
    if depth == 0 {
        return Gc::null();
    }
    let left = build(mix(seed, 1), depth - 1);
    let right = build(mix(seed, 2), depth - 1);
    let payload = cgocheck::new_with(|l: &mut Leaf| {
        for (i, w) in l.words.iter_mut().enumerate() {
            *w = mix(seed, 10 + i as u64);
        }
    });
    new(Node { left, right, payload, seed, check: mix(seed, 0) })
}

/// Checks every word of the tree; returns its node count.
fn verify(n: Gc<Node>, seed: u64, depth: u32, what: &str) -> u64 {
    if depth == 0 {
        assert!(n.is_null(), "{what}: a leaf position holds a node");
        return 0;
    }
    assert!(!n.is_null(), "{what}: a node at depth {depth} is missing (a pointer was overwritten)");
    assert!(n.seed == seed && n.check == mix(seed, 0), "{what}: node {seed:#x} overwritten (freed and reused?)");
    for (i, w) in n.payload.words.iter().enumerate() {
        assert_eq!(*w, mix(seed, 10 + i as u64), "{what}: payload word {i} of node {seed:#x} overwritten");
    }
    1 + verify(n.left, mix(seed, 1), depth - 1, what) + verify(n.right, mix(seed, 2), depth - 1, what)
}

cgocheck::export! {
    /// Called by C (from a worker's thread or a C thread): builds a tree,
    /// lets others run, verifies it; returns 1.
    fn GoGcsBuild(seed: i64) -> i64 {
        let seed = seed as u64;
        let t = build(seed, 6);
        cgocheck::yield_now();
        verify(t, seed, 6, "a tree built in a callback");
        1
    }
}

static STOP: AtomicBool = AtomicBool::new(false);
static C_SUMS: AtomicU64 = AtomicU64::new(0);
static C_BLOCKS: AtomicU64 = AtomicU64::new(0);
static CALLBACKS: AtomicU64 = AtomicU64::new(0);

/// A tree handed between workers: the tree, its seed and depth.
type Shared = (Gc<Node>, u64, u32);

fn worker(k: u64, ch: Chan<Shared>) -> u64 {
    let mut rounds = 0u64;
    let mut long_seed = mix(k, 1 << 40);
    let mut long_lived = build(long_seed, 8);
    while !STOP.load(Ordering::Relaxed) {
        let seed = mix(k << 32, rounds);
        let depth = 3 + (seed % 7) as u32;
        let t = build(seed, depth);
        verify(t, seed, depth, "a worker's fresh tree");
        match rounds % 8 {
            0 => {
                let leaf = t.payload;
                let want = leaf.words.iter().fold(0u64, |s, w| s.wrapping_add(*w));
                // SAFETY: C reads 8 words of a live, pointer-free leaf.
                let got = unsafe { ct_gcs_sum(elem(&leaf.words, 0), 8) };
                assert_eq!(got, want, "C summed a payload that changed");
                C_SUMS.fetch_add(1, Ordering::Relaxed);
            }
            1 => {
                // SAFETY: sleeps.
                unsafe { ct_gcs_sleep_us(100 + (seed % 400) as c_long) };
                C_BLOCKS.fetch_add(1, Ordering::Relaxed);
            }
            2 => {
                // SAFETY: C calls GoGcsBuild twice on this thread.
                let ok = unsafe { ct_gcs_callback((seed >> 2) as i64, 2) };
                assert_eq!(ok, 2, "callbacks from C on a worker's thread");
                CALLBACKS.fetch_add(2, Ordering::Relaxed);
            }
            // At most 64 senders race past the test: the send never blocks.
            3 if ch.len() < 64 => ch.send((t, seed, depth)),
            _ => {}
        }
        if let Some((other, s, d)) = ch.try_recv() {
            verify(other, s, d, "a tree received from another worker");
        }
        verify(long_lived, long_seed, 8, "a worker's long-lived tree");
        if rounds % 16 == 15 {
            long_seed = mix(long_seed, rounds);
            long_lived = build(long_seed, 8);
        }
        verify(t, seed, depth, "a worker's tree, again");
        rounds += 1;
        cgocheck::yield_now();
    }
    rounds
}

fn stress(duration: Duration) {
    STOP.store(false, Ordering::SeqCst);
    let before = mem_stats();
    let start_procs = cgocheck::gomaxprocs();
    // SAFETY: starts 8 C threads that call GoGcsBuild.
    assert_eq!(unsafe { ct_gcs_threads_start(8) }, 0, "C could not start its 8 threads");
    let ch: Chan<Shared> = Chan::new(1024);
    let workers: Vec<_> = (0..64)
        .map(|k| {
            let ch = ch.clone();
            spawn(move || worker(k, ch))
        })
        .collect();
    let procs = spawn(|| {
        let mut changes = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            set_gomaxprocs(1 + (changes % 8) as usize);
            changes += 1;
            cgocheck::sleep(Duration::from_millis(20));
        }
        changes
    });
    let forcer = spawn(|| {
        let mut forced = 0u64;
        while !STOP.load(Ordering::Relaxed) {
            gc();
            forced += 1;
            cgocheck::sleep(Duration::from_millis(50));
        }
        forced
    });
    let t0 = Instant::now();
    while t0.elapsed() < duration {
        cgocheck::sleep(Duration::from_millis(50));
    }
    STOP.store(true, Ordering::SeqCst);
    let rounds: Vec<u64> = workers.into_iter().map(|h| h.join()).collect();
    let changes = procs.join();
    let forced = forcer.join();
    // SAFETY: stops and joins the C threads.
    let c_calls = unsafe { ct_gcs_threads_stop() };
    // SAFETY: reads a C counter.
    let c_ok = unsafe { ct_gcs_threads_ok() };
    set_gomaxprocs(start_procs);
    while let Some((t, s, d)) = ch.try_recv() {
        verify(t, s, d, "a tree left in the channel");
    }
    let after = mem_stats();
    eprintln!(
        "stress: {:?}; worker rounds {}..{} (total {}); {} GOMAXPROCS changes; {forced} forced and {} collections in all ({} forced by anyone); \
         C: {} sums, {} blocking calls, {} callbacks from workers, {c_calls} callbacks from C threads",
        t0.elapsed(),
        rounds.iter().min().unwrap(),
        rounds.iter().max().unwrap(),
        rounds.iter().sum::<u64>(),
        changes,
        after.num_gc - before.num_gc,
        after.num_forced_gc - before.num_forced_gc,
        C_SUMS.load(Ordering::Relaxed),
        C_BLOCKS.load(Ordering::Relaxed),
        CALLBACKS.load(Ordering::Relaxed),
    );
    assert!(rounds.iter().all(|r| *r > 0), "a worker made no progress: {rounds:?}");
    assert!(c_calls > 0 && c_calls == c_ok, "C threads: {c_calls} callbacks, {c_ok} verified");
    assert!(changes >= 8, "GOMAXPROCS went through 1..=8 ({changes} changes)");
    let cycles = after.num_gc - before.num_gc;
    let triggered = cycles - (after.num_forced_gc - before.num_forced_gc);
    assert!(forced > 0 && cycles >= forced, "collections: {forced} forced, mem_stats says {cycles}");
    assert!(triggered > 0, "no collection was triggered by allocation ({cycles} in all, all forced)");
}

/// In the parent: runs this test in a child at each level for `secs` each
/// and requires it to pass. In the child: runs the stress, watched.
fn at_levels(name: &str, secs: u64) {
    if is_child() {
        watched(name, || run_test(move || stress(Duration::from_secs(secs))));
    } else {
        for level in ["0", "1", "2"] {
            child_passes(name, &[("CGOCHECK", level), ("GOTRACEBACK", "all")]);
        }
    }
}

#[test]
fn stress_collector_with_c_calls_callbacks_and_gomaxprocs_changes() {
    at_levels("stress_collector_with_c_calls_callbacks_and_gomaxprocs_changes", 6);
}

#[test]
#[ignore = "soak: 40 s per CGOCHECK level, 2 minutes in all: cargo test -p c-tests --test gc_stress -- --ignored"]
fn stress_two_minutes() {
    at_levels("stress_two_minutes", 40);
}

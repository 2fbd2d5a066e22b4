//! Reclamation: a program that allocates far more than it keeps runs in
//! memory that follows what it keeps, not what it allocated.
//!
//! The loop keeps ~20 MiB live in three rings, replacing entries as it
//! goes (each replaced entry is garbage at once):
//!
//! | ring | entries | each | live |
//! |---|---|---|---|
//! | small pairs (two linked 64-byte objects) | 65536 | 128 B | 8 MiB |
//! | pages (4 KiB objects) | 2048 | 4 KiB | 8 MiB |
//! | large arrays (1 MiB, past every size class) | 4 | 1 MiB | 4 MiB |
//!
//! plus the rings' own arrays (~0.6 MiB). One round replaces 64 pairs, 2
//! pages and, every 32nd round, one large array: ~48 KiB per round, half
//! of it in small and page-sized objects. Before an entry is replaced its
//! pattern words are checked, so a live object freed by mistake (and
//! reused) fails the test.
//!
//! The bound, checked on VmRSS (/proc/self/status) every 256 rounds: the
//! RSS once the rings are built (the runtime, the test harness and the
//! 20 MiB live set: ~27 MiB measured) plus 150 MiB, so ~175 MiB in all.
//! Why 150 MiB: with GOGC=100 the pacer lets the heap grow to twice the
//! live heap before the next cycle (20 MiB live → a 40 MiB goal, 20 MiB of
//! it garbage); size-class fragmentation and spans not yet swept (sweeping
//! is lazy and in the background) can hold up to about that much again
//! (40 MiB); freed pages stay resident until the scavenger returns them
//! (after two cycles or 5 s), and a fast allocator runs ahead of it —
//! freed large arrays' runs and emptied spans (~60 MiB); task stacks, mark
//! stacks and the collector's metadata take the rest. Measured over the
//! base: ~12 MiB unoptimised, up to 96 MiB in release (50 GiB). A heap that
//! never frees passes the bound after ~150 MiB of allocation — within the
//! first second of the loop; `the_bound_fails_a_heap_that_keeps_its_garbage`
//! runs the loop with GOGC=off and requires exactly that failure.
//!
//! `mem_stats` must agree: the number of collections grew (at least one
//! per 160 MiB allocated — the goal is 40 MiB, so a cycle is due every
//! ~20 MiB), and after a final `gc()` the heap in use is near the live set
//! (between the live bytes and 1.5× them plus 4 MiB), and its object count
//! within 10% of the live objects (the counts of objects handed out from a
//! processor's cached span reach the totals when the span goes back).
//!
//! Sizes: the issue asks for 50 GiB in total. `cargo test` runs the
//! integration tests unoptimised, where 50 GiB takes about 90 s, so the
//! default test allocates 4 GiB (about 7 s unoptimised on a loaded 2-core
//! machine) and `reclaim_50_gib_soak` (#[ignore]d) is the full run,
//! for `cargo test --release -p cgocheck --test gc_reclaim -- --ignored`.
//! Both run in a child process of their own (GOGC=100, nothing else
//! allocating) under a watchdog per GiB.

mod sched_util;

use cgocheck::{gc, mem_stats, new_slice, new_with, run_test, CType, Gc, GcSlice};
use sched_util::{child_passes, is_child, watched};
use std::time::Instant;

/// A 64-byte object; the head of a pair points to its tail.
#[derive(CType)]
#[repr(C)]
struct Small {
    next: Gc<Small>,
    seed: u64,
    words: [u64; 6],
}

/// A 4 KiB object.
#[derive(CType)]
#[repr(C)]
struct Page {
    seed: u64,
    words: [u64; 511],
}

const PAIRS: usize = 65536;
const PAGES: usize = 2048;
const LARGES: usize = 4;
const LARGE_WORDS: usize = (1 << 20) / 8;
const MIB: usize = 1 << 20;
/// What the loop keeps live, in bytes (the rings' entries).
const LIVE: usize = PAIRS * 128 + PAGES * 4096 + LARGES * MIB;
/// The RSS the loop may add to what the process had before it (module
/// comment).
const RSS_HEADROOM: usize = 150 * MIB;

fn word(seed: u64, i: usize) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i as u64) | 1
}

fn new_small(seed: u64, next: Gc<Small>) -> Gc<Small> {
    new_with(|s: &mut Small| {
        s.next = next;
        s.seed = seed;
        s.words[0] = word(seed, 0);
        s.words[5] = word(seed, 5);
    })
}

fn check_small(s: Gc<Small>, seed: u64) {
    assert!(!s.is_null(), "a live small pair lost its tail: its head was freed and reused as a tail (next is null)");
    assert!(
        s.seed == seed && s.words[0] == word(seed, 0) && s.words[5] == word(seed, 5),
        "a live small object at {:#x} was overwritten (freed and reused?): seed {:#x}, want {seed:#x}",
        s.addr(),
        s.seed
    );
}

fn new_page(seed: u64) -> Gc<Page> {
    new_with(|p: &mut Page| {
        p.seed = seed;
        p.words[0] = word(seed, 0);
        p.words[510] = word(seed, 510);
    })
}

fn new_large(seed: u64) -> GcSlice<u64> {
    let s = new_slice::<u64>(LARGE_WORDS);
    // SAFETY: only this task sees the new array.
    let w = unsafe { s.as_mut_slice() };
    for i in (0..LARGE_WORDS).step_by(4096) {
        w[i] = word(seed, i);
    }
    w[LARGE_WORDS - 1] = seed;
    s
}

fn check_large(s: GcSlice<u64>, seed: u64) {
    let w = s.as_slice();
    assert!(w[LARGE_WORDS - 1] == seed, "a live large array was overwritten");
    for i in (0..LARGE_WORDS).step_by(4096) {
        assert!(w[i] == word(seed, i), "a live large array was overwritten at word {i}");
    }
}

/// VmRSS of this process, in bytes.
fn rss() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kb: usize = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS in kB");
    kb * 1024
}

/// The rings and the loop's position.
struct Rings {
    heads: GcSlice<Gc<Small>>,
    pages: GcSlice<Gc<Page>>,
    larges: GcSlice<GcSlice<u64>>,
    round: u64,
}

impl Rings {
    fn new() -> Rings {
        let r = Rings { heads: new_slice(PAIRS), pages: new_slice(PAGES), larges: new_slice(LARGES), round: 0 };
        // SAFETY (all three): only this task sees the rings.
        let heads = unsafe { r.heads.as_mut_slice() };
        for (i, h) in heads.iter_mut().enumerate() {
            *h = new_small(i as u64, new_small(!(i as u64), Gc::null()));
        }
        let pages = unsafe { r.pages.as_mut_slice() };
        for (i, p) in pages.iter_mut().enumerate() {
            *p = new_page(i as u64);
        }
        let larges = unsafe { r.larges.as_mut_slice() };
        for (i, l) in larges.iter_mut().enumerate() {
            *l = new_large(i as u64);
        }
        r
    }

    /// One round; returns the bytes it allocated.
    fn round(&mut self) -> usize {
        let n = self.round;
        self.round += 1;
        let mut bytes = 0;
        // SAFETY (all three): only this task sees the rings.
        let heads = unsafe { self.heads.as_mut_slice() };
        for k in 0..64u64 {
            let i = ((n * 64 + k) as usize * 7919) % PAIRS;
            let old = heads[i];
            assert!(
                old.seed >> 63 == 1 || old.seed < PAIRS as u64,
                "ring entry {i} holds a tail (seed {:#x}): the head was freed and reused",
                old.seed
            );
            check_small(old, old.seed);
            check_small(old.next, !old.seed);
            let seed = (n << 16) | k | (1 << 63);
            heads[i] = new_small(seed, new_small(!seed, Gc::null()));
            bytes += 128;
        }
        let pages = unsafe { self.pages.as_mut_slice() };
        for k in 0..2u64 {
            let i = ((n * 2 + k) as usize * 613) % PAGES;
            let old = pages[i];
            assert!(
                old.words[0] == word(old.seed, 0) && old.words[510] == word(old.seed, 510),
                "a live page was overwritten"
            );
            pages[i] = new_page((n << 8) | k | (1 << 62));
            bytes += 4096;
        }
        if n % 32 == 31 {
            let larges = unsafe { self.larges.as_mut_slice() };
            let i = (n / 32) as usize % LARGES;
            let old = larges[i];
            check_large(old, old.as_slice()[LARGE_WORDS - 1]);
            larges[i] = new_large(n | (1 << 61));
            bytes += MIB;
        }
        bytes
    }
}

/// Allocates `gib` GiB through the rings, checking the RSS bound and,
/// at the end, what `mem_stats` says.
fn reclaim(gib: usize) {
    let before = mem_stats();
    let mut rings = Rings::new();
    let base = rss();
    let bound = base + RSS_HEADROOM;
    let t0 = Instant::now();
    let mut allocated = 0usize;
    let mut max_rss = base;
    let mut at_max = mem_stats();
    for g in 0..gib {
        watched(&format!("reclaim: GiB {g} of {gib}"), || {
            let target = (g + 1) << 30;
            while allocated < target {
                allocated += rings.round();
                if rings.round.is_multiple_of(256) {
                    let now = rss();
                    if now > max_rss {
                        max_rss = now;
                        at_max = mem_stats();
                    }
                    if now > bound {
                        let s = mem_stats();
                        panic!(
                            "VmRSS {} MiB after {} MiB allocated is over the bound {} MiB (RSS before the loop {} MiB \
                             + {} MiB; live ~{} MiB); mem_stats: {s:?}",
                            now / MIB,
                            allocated / MIB,
                            bound / MIB,
                            base / MIB,
                            RSS_HEADROOM / MIB,
                            LIVE / MIB
                        );
                    }
                }
            }
        });
    }
    let elapsed = t0.elapsed();
    gc();
    let after = mem_stats();
    eprintln!(
        "reclaim: {} MiB allocated in {elapsed:?}, {} collections, max VmRSS {} MiB (before the loop {} MiB, bound {} MiB; \
         then heap_alloc {} MiB, heap_sys {} MiB, heap_released {} MiB, next_gc {} MiB); \
         after gc(): heap_alloc {} MiB, heap_objects {}, live ~{} MiB",
        allocated / MIB,
        after.num_gc - before.num_gc,
        max_rss / MIB,
        base / MIB,
        bound / MIB,
        at_max.heap_alloc >> 20,
        at_max.heap_sys >> 20,
        at_max.heap_released >> 20,
        at_max.next_gc >> 20,
        after.heap_alloc / MIB as u64,
        after.heap_objects,
        LIVE / MIB
    );
    let cycles = after.num_gc - before.num_gc;
    assert!(
        cycles as usize >= allocated / (160 * MIB),
        "only {cycles} collections for {} MiB allocated with ~{} MiB live: the pacer does not trigger cycles",
        allocated / MIB,
        LIVE / MIB
    );
    assert!(
        after.total_alloc - before.total_alloc >= allocated as u64,
        "mem_stats total_alloc grew by {} bytes, less than the {allocated} the loop allocated",
        after.total_alloc - before.total_alloc
    );
    let live = LIVE as u64;
    assert!(
        after.heap_alloc >= live && after.heap_alloc <= live + live / 2 + 4 * MIB as u64,
        "after gc(), heap_alloc is {} MiB, but ~{} MiB is live: it should be between the live bytes and 1.5x + 4 MiB",
        after.heap_alloc / MIB as u64,
        LIVE / MIB
    );
    let live_objects = (2 * PAIRS + PAGES + LARGES) as u64;
    assert!(
        after.heap_objects.abs_diff(live_objects) <= live_objects / 10,
        "after gc(), heap_objects is {}, but {live_objects} objects are live (10% allowed for cached spans)",
        after.heap_objects
    );
    assert_eq!(after.mallocs - after.frees, after.heap_objects, "mallocs - frees is the number of live objects");
    // The rings are intact at the end.
    for i in 0..PAIRS {
        let h = rings.heads[i];
        check_small(h, h.seed);
        check_small(h.next, !h.seed);
    }
    std::hint::black_box(&rings);
}

#[test]
fn reclaim_4_gib_with_20_mib_live() {
    if is_child() {
        run_test(|| reclaim(4));
    } else {
        child_passes("reclaim_4_gib_with_20_mib_live", &[("GOGC", "100")]);
    }
}

#[test]
#[ignore = "soak: 50 GiB, run in release: cargo test --release -p cgocheck --test gc_reclaim -- --ignored"]
fn reclaim_50_gib_soak() {
    if is_child() {
        run_test(|| reclaim(50));
    } else {
        child_passes("reclaim_50_gib_soak", &[("GOGC", "100")]);
    }
}

/// The bound does see a heap that keeps its garbage: with the collector
/// off (GOGC=off: no cycle until the final `gc()`), the same loop fails on
/// VmRSS within its first few hundred MiB.
#[test]
fn the_bound_fails_a_heap_that_keeps_its_garbage() {
    if is_child() {
        return;
    }
    sched_util::child_fails("reclaim_4_gib_with_20_mib_live", &[("GOGC", "off")], 101, &["is over the bound"]);
}

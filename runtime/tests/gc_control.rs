//! The collector's controls, end to end: `GOGC`, `GOMEMLIMIT` and
//! `GODEBUG=gctrace` read at start (bad values stop the program with a
//! clear message, good ones set the pace), the gctrace line, `mem_stats`,
//! the out-of-memory report under `GOMEMLIMIT`, and cleanups
//! (`add_cleanup`: run once after their object dies, kept alive arguments,
//! `stop`, panics reported, zero-sized and refused objects), and `gc()`
//! answered only by a cycle that started after it was called.
//!
//! Every test runs in a child process of its own (tests/sched_util
//! `child`) with the three variables set explicitly (empty is unset, so a
//! value exported in the parent's environment does not leak in), the
//! runtime under a watchdog (`watched`) so a hung collection fails.

mod gc_util;
mod sched_util;

use cgocheck::{add_cleanup, gc, mem_stats, new, new_slice, run_test, Gc};
use gc_util::*;
use sched_util::{child, child_fails, is_child, text, watched};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The collector's variables, unset, then `env` over them.
fn gc_env<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("GOGC", ""), ("GOMEMLIMIT", ""), ("GODEBUG", "")];
    all.extend_from_slice(env);
    all
}

/// In the child: runs `body` as the main task, watched. In the parent:
/// runs this test in a child with `env` and returns its output after
/// checking that it passed.
fn in_child(name: &str, env: &[(&str, &str)], body: fn()) -> Option<std::process::Output> {
    if is_child() {
        watched(name, || run_test(body));
        return None;
    }
    let out = child(name, &gc_env(env));
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child {name} failed:\n{}",
        text(&out)
    );
    Some(out)
}

/// Collects and sleeps until `done()`, at most 20 s (cleanups run on their
/// own task after the collection that queued them).
#[track_caller]
fn collect_until(what: &str, done: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < Duration::from_secs(20), "{what}: not after 20 s of collections");
        gc();
        cgocheck::sleep(Duration::from_millis(2));
    }
}

// ---- the variables at start ----

#[test]
fn bad_gogc_values_stop_the_program_naming_the_accepted_ones() {
    let name = "bad_gogc_values_stop_the_program_naming_the_accepted_ones";
    if is_child() {
        run_test(|| ());
        unreachable!("started with a bad GOGC");
    }
    for bad in ["OFF", "200%", "1e3", " 100", "2147483648", "1.5"] {
        child_fails(
            name,
            &gc_env(&[("GOGC", bad)]),
            2,
            &[
                &format!("cgocheck: GOGC: {bad:?} is not a GC percentage; accepted values are `off`"),
                "integer percentage",
            ],
        );
    }
}

#[test]
fn bad_gomemlimit_values_stop_the_program_naming_the_accepted_ones() {
    let name = "bad_gomemlimit_values_stop_the_program_naming_the_accepted_ones";
    if is_child() {
        run_test(|| ());
        unreachable!("started with a bad GOMEMLIMIT");
    }
    for bad in ["512MB", "1.5GiB", "-1", "8 MiB", "lots", "8mib"] {
        child_fails(
            name,
            &gc_env(&[("GOMEMLIMIT", bad)]),
            2,
            &[&format!("cgocheck: GOMEMLIMIT: {bad:?} is not a memory limit"), "`B`, `KiB`, `MiB`, `GiB`, `TiB`"],
        );
    }
}

#[test]
fn bad_gctrace_values_stop_the_program_naming_the_accepted_ones() {
    let name = "bad_gctrace_values_stop_the_program_naming_the_accepted_ones";
    if is_child() {
        run_test(|| ());
        unreachable!("started with a bad GODEBUG=gctrace");
    }
    for bad in ["gctrace=yes", "cgocheck=1,gctrace=1,gctrace=on"] {
        let value = bad.rsplit('=').next().unwrap();
        child_fails(
            name,
            &gc_env(&[("GODEBUG", bad)]),
            2,
            &[&format!("cgocheck: GODEBUG=gctrace: {value:?} is not a gctrace setting"), "`gctrace=1`"],
        );
    }
}

#[test]
fn gogc_and_gomemlimit_set_the_first_goal() {
    let name = "gogc_and_gomemlimit_set_the_first_goal";
    if is_child() {
        let want: u64 = std::env::var("WANT_NEXT_GC").unwrap().parse().unwrap();
        run_test(|| assert_eq!(mem_stats().next_gc, want));
        return;
    }
    for (gogc, limit, want) in [
        ("", "", 4u64 << 20),
        ("100", "off", 4 << 20),
        ("+200", "", 8 << 20),
        ("50", "", 2 << 20),
        ("off", "", u64::MAX),
        ("-1", "", u64::MAX),
        ("off", "1GiB", 1 << 30),
        ("100", "1MiB", 1 << 20),
        ("100", "3000000", 3_000_000),
        ("100", "9223372036854775807", 4 << 20),
    ] {
        let want = want.to_string();
        let out = child(name, &gc_env(&[("GOGC", gogc), ("GOMEMLIMIT", limit), ("WANT_NEXT_GC", &want)]));
        assert!(out.status.success(), "GOGC={gogc:?} GOMEMLIMIT={limit:?}:\n{}", text(&out));
    }
}

// ---- gctrace and mem_stats ----

fn two_forced_cycles() {
    gc();
    gc();
}

#[test]
fn gctrace_prints_one_line_per_cycle() {
    let name = "gctrace_prints_one_line_per_cycle";
    let Some(out) = in_child(name, &[("GODEBUG", "cgocheck=1,gctrace=1")], two_forced_cycles) else { return };
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("gc ")).collect();
    assert!(lines.len() >= 2, "two forced cycles, two lines at least:\n{err}");
    for (i, l) in lines.iter().enumerate() {
        assert!(l.starts_with(&format!("gc {} @", i + 1)), "cycles are numbered from 1: {l:?}");
        let (head, rest) = l.split_once(": ").unwrap_or_else(|| panic!("no ': ' in {l:?}"));
        assert!(head.ends_with('%') && head.contains("s "), "{l:?}");
        let phases = rest.split(' ').next().unwrap();
        assert_eq!(phases.split('+').count(), 3, "stop+mark+restart: {l:?}");
        for p in phases.split('+') {
            p.parse::<f64>().unwrap_or_else(|_| panic!("{p:?} in {l:?} is not a number of ms"));
        }
        for part in [" ms clock, ", " MB, ", " MB goal, ", " P, ", " worker"] {
            assert!(l.contains(part), "{part:?} missing from {l:?}");
        }
    }
    assert!(lines.iter().filter(|l| l.ends_with("(forced)")).count() >= 2, "gc() cycles say (forced):\n{err}");

    // gctrace=0 (and unset): no line.
    for godebug in ["gctrace=0", ""] {
        let out = child(name, &gc_env(&[("GODEBUG", godebug)]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}", text(&out));
        assert!(!err.lines().any(|l| l.starts_with("gc ")), "GODEBUG={godebug:?} traces nothing:\n{err}");
    }
}

fn forced_cycles_are_counted() {
    let before = mem_stats();
    let t0 = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    for _ in 0..3 {
        gc();
    }
    let s = mem_stats();
    assert_eq!(s.num_gc, before.num_gc + 3, "{s:?}");
    assert_eq!(s.num_forced_gc, before.num_forced_gc + 3, "{s:?}");
    assert!(s.pause_total_ns > before.pause_total_ns, "pauses add up: {s:?}");
    let ring = |k: u64| ((k + 255) % 256) as usize;
    let last = s.pause_ns[ring(s.num_gc)];
    assert!(last > 0 && last <= s.max_pause_ns, "the last pause is in the ring: {last} (max {})", s.max_pause_ns);
    let recent: u64 = (0..3).map(|i| s.pause_ns[ring(s.num_gc - i)]).sum();
    assert!(recent <= s.pause_total_ns, "the ring's last three pauses are part of the total");
    assert!(s.last_gc >= t0 && s.pause_end[ring(s.num_gc)] == s.last_gc, "last_gc is the last pause's end");
    assert!((0.0..=1.0).contains(&s.gc_cpu_fraction), "{s:?}");
    assert!(s.next_gc >= 4 << 20, "GOGC=100: the goal is 4 MiB at least");
}

#[test]
fn mem_stats_counts_forced_cycles_and_their_pauses() {
    in_child("mem_stats_counts_forced_cycles_and_their_pauses", &[], forced_cycles_are_counted);
}

/// `gc()` frees what was unreachable when it was called, even when a cycle
/// is already under way (another thread calls `gc()` back to back): a
/// cycle that started before the call, whose mark may be over, does not
/// answer it.
fn frees_what_was_dropped_while_cycles_run() {
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                gc();
            }
        })
    };
    for i in 0..300 {
        let (root, hidden) = in_task(move || {
            let obj = make_obj(i);
            (Box::new(cgocheck::Root::new(obj)), hide(obj.addr()))
        });
        scrub_stack();
        drop(root);
        gc();
        let survived = in_task(move || is_live_object(unhide(hidden)));
        assert!(
            !survived,
            "round {i}: an object whose only root was dropped before gc() was called survived that gc()"
        );
    }
    stop.store(true, Ordering::SeqCst);
    // A task never blocks its thread in a std join: it sleeps until the
    // thread has ended.
    while !busy.is_finished() {
        cgocheck::sleep(Duration::from_millis(1));
    }
    busy.join().unwrap();
}

#[test]
fn gc_frees_what_was_dropped_before_it_while_another_cycle_runs() {
    in_child(
        "gc_frees_what_was_dropped_before_it_while_another_cycle_runs",
        &[],
        frees_what_was_dropped_while_cycles_run,
    );
}

/// Eight tasks allocate 384 MiB of garbage in all beside 24 MiB kept live
/// (goal 48 MiB at GOGC=100): no cycle starts with the heap more than an
/// eighth over the goal the previous one set (each gctrace line's first
/// figure against the previous line's goal, whole MB; the pacer lets it go
/// a tenth over): allocation that outruns the collector waits for it
/// (`assist_waits`). Without the wait, cycles started up to 61 MB here.
fn many_allocators_stay_near_the_goal() {
    let live: Vec<cgocheck::Root<cgocheck::GcSlice<u8>>> =
        (0..24).map(|_| cgocheck::Root::new(new_slice::<u8>(1 << 20))).collect();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            cgocheck::spawn(|| {
                for _ in 0..(48 << 20) / 4096 {
                    std::hint::black_box(new_slice::<u8>(4096));
                }
            })
        })
        .collect();
    for t in tasks {
        t.join();
    }
    std::hint::black_box(&live);
    println!("assist waits: {}", mem_stats().assist_waits);
}

#[test]
fn many_allocating_tasks_keep_the_heap_near_its_goal() {
    let name = "many_allocating_tasks_keep_the_heap_near_its_goal";
    let Some(out) = in_child(name, &[("GODEBUG", "gctrace=1"), ("GOGC", "100")], many_allocators_stay_near_the_goal)
    else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let mut prev_goal: Option<u64> = None;
    let mut checked = 0;
    for line in err.lines().filter(|l| l.starts_with("gc ")) {
        // "..., 48->50->21 MB, 42 MB goal, ..."
        let figures = line.split(", ").nth(1).expect("heap figures");
        let before: u64 = figures.split("->").next().unwrap().parse().expect("heap before");
        let goal: u64 =
            line.split(", ").nth(2).and_then(|g| g.strip_suffix(" MB goal")).map_or(0, |g| g.parse().unwrap());
        if let Some(prev) = prev_goal.filter(|_| !line.ends_with("(forced)")) {
            assert!(
                before <= prev + prev / 8 + 1,
                "a cycle started at {before} MB, past the goal of {prev} MB by more than an eighth:\n{err}"
            );
            checked += 1;
        }
        prev_goal = Some(goal);
    }
    assert!(checked >= 5, "only {checked} cycles to check:\n{err}");
}

/// Ten objects just allocated, in a span still in this thread's cache,
/// show in `mem_stats` at once (the heap's running totals count a span's
/// objects only when the cache gives it back).
fn counts_objects_in_cached_spans() {
    let s0 = mem_stats();
    let objs: Vec<Gc<[u64; 8]>> = (0..10).map(|i| new([i; 8])).collect();
    let s1 = mem_stats();
    std::hint::black_box(&objs);
    assert_eq!(s1.num_gc, s0.num_gc, "no collection in between: {s1:?}");
    assert!(s1.mallocs >= s0.mallocs + 10, "mallocs {} -> {}", s0.mallocs, s1.mallocs);
    assert!(s1.heap_objects >= s0.heap_objects + 10, "heap_objects {} -> {}", s0.heap_objects, s1.heap_objects);
    assert!(s1.heap_alloc >= s0.heap_alloc + 640, "heap_alloc {} -> {}", s0.heap_alloc, s1.heap_alloc);
    assert!(s1.total_alloc >= s0.total_alloc + 640, "total_alloc {} -> {}", s0.total_alloc, s1.total_alloc);
}

#[test]
fn mem_stats_counts_objects_still_in_a_thread_cache() {
    in_child("mem_stats_counts_objects_still_in_a_thread_cache", &[], counts_objects_in_cached_spans);
}

/// Allocates 256 MiB of garbage in 4 KiB arrays, keeping none.
fn allocate_garbage() {
    for i in 0..(256 << 10) / 4 {
        let s = new_slice::<u8>(4096);
        std::hint::black_box(s);
        if i % 4096 == 0 {
            cgocheck::yield_now();
        }
    }
}

fn garbage_starts_cycles_at_the_goal() {
    let n0 = mem_stats().num_gc;
    allocate_garbage();
    let s = mem_stats();
    let cycles = s.num_gc - n0;
    // 256 MiB with (nearly) nothing live and a 4 MiB goal: a cycle every
    // 4 MiB or so. Allow a wide margin for the counting granularity.
    assert!(cycles >= 16, "256 MiB of garbage at GOGC=100 ran {cycles} cycles: {s:?}");
    assert_eq!(s.num_forced_gc, 0, "none was forced");
    // The heap counts a span's allocations when its cache gives it back:
    // the span still cached is not counted yet.
    assert!(s.total_alloc >= 255 << 20, "total_alloc counts the garbage: {s:?}");
    assert!(s.mallocs >= 65_000 && s.frees > 0 && s.heap_objects == s.mallocs - s.frees, "{s:?}");
}

#[test]
fn allocation_starts_cycles_when_the_heap_reaches_the_goal() {
    in_child("allocation_starts_cycles_when_the_heap_reaches_the_goal", &[], garbage_starts_cycles_at_the_goal);
}

fn garbage_starts_no_cycle() {
    let n0 = mem_stats().num_gc;
    allocate_garbage();
    assert_eq!(mem_stats().num_gc, n0, "GOGC=off: allocation never starts a cycle");
    assert_eq!(mem_stats().next_gc, u64::MAX);
    gc();
    assert_eq!(mem_stats().num_gc, n0 + 1, "gc() still collects");
}

#[test]
fn gogc_off_collects_only_on_request() {
    in_child("gogc_off_collects_only_on_request", &[("GOGC", "off")], garbage_starts_no_cycle);
}

// ---- out of memory ----

fn keep_more_than_the_limit() {
    // 24 MiB live under a 16 MiB limit: no collection can meet it.
    let big = new_slice::<u64>(3 << 20);
    gc();
    std::hint::black_box(big);
    unreachable!("the live heap exceeds GOMEMLIMIT");
}

#[test]
fn a_live_heap_over_gomemlimit_is_a_fatal_out_of_memory() {
    let name = "a_live_heap_over_gomemlimit_is_a_fatal_out_of_memory";
    if is_child() {
        watched(name, || run_test(keep_more_than_the_limit));
        return;
    }
    child_fails(
        name,
        &gc_env(&[("GOMEMLIMIT", "16MiB")]),
        2,
        &[
            "fatal error: out of memory: the live heap does not fit under GOMEMLIMIT",
            "bytes live after the last collection",
            "GOMEMLIMIT 16777216 bytes",
        ],
    );
}

// ---- cleanups ----

fn refused_objects() {
    let nil = catch_unwind(|| add_cleanup(Gc::<u64>::null(), (), |_| ()));
    let msg = *nil.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.starts_with("cgocheck::add_cleanup: ptr is nil"), "{msg}");
    let local = 7u64;
    // SAFETY: the Gc is only handed to add_cleanup, which must refuse it
    // without dereferencing it.
    let not_heap = unsafe { Gc::from_ptr(&local as *const u64 as *mut u64) };
    let r = catch_unwind(AssertUnwindSafe(|| add_cleanup(not_heap, (), |_| ())));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("is not in an allocated heap object"), "{msg}");
}

#[test]
fn add_cleanup_refuses_nil_and_memory_outside_the_heap() {
    in_child("add_cleanup_refuses_nil_and_memory_outside_the_heap", &[], refused_objects);
}

fn zero_sized_cleanups_never_run() {
    let ran = Arc::new(AtomicBool::new(false));
    let arg = ran.clone();
    let c = add_cleanup(new([0u64; 0]), arg, |f| f.store(true, Ordering::SeqCst));
    assert_eq!(Arc::strong_count(&ran), 1, "the unrun cleanup's argument is dropped at once");
    c.stop();
    // A cleanup that does run, to show the collections below queue them.
    let t = in_task(|| Tracked::new(make_obj(1)));
    t.wait_freed("a tracked object");
    for _ in 0..10 {
        gc();
    }
    assert!(!ran.load(Ordering::SeqCst), "a zero-sized object's cleanup never runs (as Go)");
}

#[test]
fn zero_sized_objects_get_a_cleanup_that_never_runs() {
    in_child("zero_sized_objects_get_a_cleanup_that_never_runs", &[], zero_sized_cleanups_never_run);
}

/// What a cleanup saw of the object its argument kept alive.
static SEEN_SUM: AtomicUsize = AtomicUsize::new(0);

fn runs_once_after_death_with_its_argument_alive() {
    let ran = Arc::new(AtomicUsize::new(0));
    {
        let ran = ran.clone();
        in_task(move || {
            let obj = make_obj(7);
            // The argument: another object, reachable only from the
            // cleanup's argument (a Gc in the closure's value).
            let kept = make_leaf(99);
            add_cleanup(obj, (kept, ran), |(kept, ran): (Gc<Leaf>, Arc<AtomicUsize>)| {
                check_leaf(&kept, 99, "the argument of a cleanup");
                SEEN_SUM.store(kept.words.iter().map(|&w| w as usize).fold(0, usize::wrapping_add), Ordering::SeqCst);
                ran.fetch_add(1, Ordering::SeqCst);
            });
        })
    }
    scrub_stack();
    collect_until("the cleanup of an unreachable object", || ran.load(Ordering::SeqCst) > 0);
    assert_eq!(SEEN_SUM.load(Ordering::SeqCst), (0..16).map(|i| pattern(99, i) as usize).fold(0, usize::wrapping_add));
    // It ran once, and its argument then became garbage.
    for _ in 0..5 {
        gc();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 1, "a cleanup runs once");
}

#[test]
fn a_cleanup_runs_once_after_its_object_dies_with_its_argument_kept_alive() {
    in_child(
        "a_cleanup_runs_once_after_its_object_dies_with_its_argument_kept_alive",
        &[],
        runs_once_after_death_with_its_argument_alive,
    );
}

/// Checks the rooted object's patterns in a frame of its own (dead, and
/// scrubbed, once it returns: the object's address stays off the stack).
#[inline(never)]
fn check_rooted(root: &cgocheck::Root<Gc<Obj>>) {
    check_obj(root.get(), 11, "a rooted object with a cleanup");
}

fn waits_while_reachable() {
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    // The object's only reference: a Root kept in a Box (Rust memory).
    let root = in_task(move || {
        let obj = make_obj(11);
        add_cleanup(obj, flag, |f| f.store(true, Ordering::SeqCst));
        Box::new(cgocheck::Root::new(obj))
    });
    scrub_stack();
    for i in 0..20 {
        gc();
        cgocheck::sleep(Duration::from_millis(1));
        assert!(!ran.load(Ordering::SeqCst), "the cleanup ran after {} collections while its object was rooted", i + 1);
    }
    check_rooted(&root);
    scrub_stack();
    drop(root);
    collect_until("the cleanup after the root was dropped", || ran.load(Ordering::SeqCst));
}

#[test]
fn a_cleanup_does_not_run_while_its_object_is_reachable() {
    in_child("a_cleanup_does_not_run_while_its_object_is_reachable", &[], waits_while_reachable);
}

fn stopped_cleanups_do_not_run() {
    let stopped_ran = Arc::new(AtomicBool::new(false));
    let flag = stopped_ran.clone();
    let t = in_task(move || {
        let doomed = make_obj(3);
        let c = add_cleanup(doomed, flag, |f| f.store(true, Ordering::SeqCst));
        // Another cleanup on the same object (and one on its child):
        // they still run.
        let t = Tracked::new(doomed);
        c.stop();
        c.stop();
        t
    });
    assert_eq!(Arc::strong_count(&stopped_ran), 1, "stop drops the cleanup's argument");
    t.wait_freed("an object whose other cleanup was stopped");
    for _ in 0..5 {
        gc();
    }
    assert!(!stopped_ran.load(Ordering::SeqCst), "a stopped cleanup never runs");
}

#[test]
fn a_stopped_cleanup_never_runs() {
    in_child("a_stopped_cleanup_never_runs", &[], stopped_cleanups_do_not_run);
}

/// Objects and cleanups per object in the many-cleanups test.
const MANY: usize = 2000;

fn many_cleanups_run_once_each() {
    let counts: Arc<Vec<AtomicUsize>> = Arc::new((0..MANY).map(|_| AtomicUsize::new(0)).collect());
    let c = counts.clone();
    in_task(move || {
        for i in 0..MANY {
            let s = new_slice::<u64>(8);
            // One cleanup through the base, one through an interior
            // element (Go allows any address inside the object).
            // SAFETY: element 5 of an 8-element live array.
            let inner = unsafe { Gc::from_ptr(s.as_ptr().add(5)) };
            // SAFETY: the array's first element.
            let base = unsafe { Gc::from_ptr(s.as_ptr()) };
            add_cleanup(base, (c.clone(), i), |(c, i)| {
                c[i].fetch_add(1, Ordering::SeqCst);
            });
            add_cleanup(inner, (c.clone(), i), |(c, i)| {
                c[i].fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    scrub_stack();
    let total = || counts.iter().map(|c| c.load(Ordering::SeqCst)).sum::<usize>();
    collect_until("every cleanup of many dead objects", || total() == 2 * MANY);
    for _ in 0..5 {
        gc();
    }
    cgocheck::sleep(Duration::from_millis(20));
    for (i, c) in counts.iter().enumerate() {
        assert_eq!(c.load(Ordering::SeqCst), 2, "object {i}: each of its two cleanups runs once");
    }
}

#[test]
fn every_cleanup_of_many_objects_runs_once() {
    in_child("every_cleanup_of_many_objects_runs_once", &[], many_cleanups_run_once_each);
}

fn panics_are_reported_and_the_others_run() {
    let after = Arc::new(AtomicUsize::new(0));
    let a = after.clone();
    in_task(move || {
        for i in 0..3 {
            add_cleanup(make_leaf(i), a.clone(), move |a| {
                if i == 1 {
                    panic!("cleanup {i} fails on purpose");
                }
                a.fetch_add(1, Ordering::SeqCst);
            });
        }
    });
    scrub_stack();
    collect_until("the cleanups around a panicking one", || after.load(Ordering::SeqCst) == 2);
    let t = in_task(|| Tracked::new(make_obj(5)));
    t.wait_freed("an object whose cleanup comes after a panicking one");
}

#[test]
fn a_panicking_cleanup_is_reported_with_its_message_and_the_others_run() {
    let name = "a_panicking_cleanup_is_reported_with_its_message_and_the_others_run";
    let Some(out) = in_child(name, &[], panics_are_reported_and_the_others_run) else { return };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cgocheck: a cleanup panicked: cleanup 1 fails on purpose; the runtime goes on"),
        "the report names the panic:\n{err}"
    );
    assert_eq!(err.matches("a cleanup panicked").count(), 1, "reported once:\n{err}");
}

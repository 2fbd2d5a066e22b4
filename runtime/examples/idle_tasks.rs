//! The idle-task benchmark: how much memory N live, idle tasks cost.
//!
//! `cargo run --release -p cgocheck --example idle_tasks -- [N]` (default
//! 1,000,000) starts N tasks that each wait on one channel, and once all of
//! them are parked prints the process's resident memory (`VmRSS`), the
//! kernel page tables (`VmPTE`), its mappings (lines of `/proc/self/maps`)
//! and transparent huge pages (`AnonHugePages`), before and with the tasks,
//! per task; then closes the channel, joins every task, and prints the
//! resident memory again (stack memory follows live tasks). The README's
//! figures come from this program.

use cgocheck::{run, sleep, spawn, yield_now, Chan};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `field` of /proc/self/status in KiB (`VmRSS`, `VmPTE`).
fn status_kb(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Transparent huge pages in use, in KiB.
fn huge_kb() -> usize {
    let s = std::fs::read_to_string("/proc/self/smaps_rollup").expect("read /proc/self/smaps_rollup");
    s.lines().find_map(|l| l.strip_prefix("AnonHugePages:")?.trim().strip_suffix(" kB")?.parse().ok()).unwrap_or(0)
}

fn maps() -> usize {
    std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count()
}

fn snapshot(what: &str) -> [usize; 4] {
    let s = [status_kb("VmRSS"), status_kb("VmPTE"), maps(), huge_kb()];
    println!("{what}: VmRSS {} KiB, VmPTE {} KiB, {} mappings, AnonHugePages {} KiB", s[0], s[1], s[2], s[3]);
    s
}

fn main() {
    let n: usize = match std::env::args().nth(1) {
        None => 1_000_000,
        Some(a) => a.parse().unwrap_or_else(|_| panic!("idle_tasks: {a:?} is not a task count (a whole number)")),
    };
    run(|| {
        let before = snapshot("before");
        let done: Chan<()> = Chan::new(0);
        let parked = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let (done, parked) = (done.clone(), parked.clone());
                spawn(move || {
                    parked.fetch_add(1, Ordering::Relaxed);
                    done.recv();
                })
            })
            .collect();
        while parked.load(Ordering::Relaxed) < n {
            yield_now();
        }
        // Let the last ones reach the channel's queue.
        sleep(Duration::from_millis(200));
        let spawned = t0.elapsed();
        let with = snapshot(&format!("{n} idle tasks (started in {spawned:.2?})"));
        println!(
            "per task: {:.2} KiB resident, {:.2} KiB kernel page tables, {:.3} mappings",
            (with[0] - before[0]) as f64 / n as f64,
            (with[1] - before[1]) as f64 / n as f64,
            (with[2] as f64 - before[2] as f64) / n as f64
        );
        let t1 = Instant::now();
        done.close();
        for h in handles {
            h.join();
        }
        println!("ended and joined in {:.2?}", t1.elapsed());
        snapshot("after they ended");
    });
}

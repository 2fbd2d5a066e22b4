//! Task stacks as tasks use them: deep recursion just works, idle tasks
//! cost a few KiB, overflow at the reservation is still a clear report, and
//! on kernels without guard regions the `mprotect` fallback still guards
//! (and its task limit is said). A thread the runtime did not start that
//! recursed deeply in a callback gives those stack pages back when it exits.
//!
//! Every case runs in a child process of its own (this binary re-run on
//! one test, with `TASK_STACKS_CHILD=1`): memory figures must be this
//! program's alone, a stack overflow ends the process, and a seccomp filter
//! cannot be taken back. Each child has a watchdog: past its time limit it
//! is killed and the test fails with what it printed.
//!
//! The deep recursion of callbacks from fresh C threads is in c-tests
//! (tests/callback_deep_stacks.rs); the million-task measurement is the
//! `idle_tasks` example (a benchmark: it needs about 10 GB).

use cgocheck::{heap, run, sleep, spawn, spawn_with_stack, yield_now, Chan, ManagedMemory, Region};
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn is_child() -> bool {
    std::env::var_os("TASK_STACKS_CHILD").is_some()
}

/// What a child did: exit code (None: killed by a signal), stdout, stderr.
struct Child {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Child {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }
}

/// Runs test `name` of this binary as a child with `env` added (the stack
/// and processor variables removed unless given); kills it and fails after
/// `limit`.
fn child(name: &str, env: &[(&str, &str)], limit: Duration) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("TASK_STACKS_CHILD", "1")
        .env("RUST_BACKTRACE", "0")
        .env_remove("CGOCHECK_STACK_KB")
        .env_remove("GOMAXPROCS")
        .env_remove("GOTRACEBACK")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut c = cmd.spawn().expect("start the child test process");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = drain(Box::new(c.stdout.take().unwrap()));
    let err = drain(Box::new(c.stderr.take().unwrap()));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = c.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            c.kill().unwrap();
            c.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let got = Child { code: status.and_then(|s| s.code()), stdout: out.join().unwrap(), stderr: err.join().unwrap() };
    assert!(status.is_some(), "watchdog: child {name} still running after {limit:?}, killed:\n{got}");
    got
}

#[track_caller]
fn child_passes(name: &str, env: &[(&str, &str)], limit: Duration) -> Child {
    let c = child(name, env, limit);
    assert!(c.code == Some(0) && c.stdout.contains("1 passed"), "child {name} failed:\n{c}");
    c
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
/// optimizer must keep (it escapes to `black_box`) and work after the
/// call (no tail call); returns the sum of `0..=n`.
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

/// Overflows the task's stack on purpose.
#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse_forever(n: u64) -> u64 {
    let mut pad = [n; 16];
    std::hint::black_box(&mut pad);
    recurse_forever(n + 1) + pad[3]
}

const DEPTH: u64 = 10_000;

#[test]
fn child_hundred_deep_tasks() {
    if !is_child() {
        return;
    }
    run(|| {
        let hs: Vec<_> = (0..100).map(|_| spawn(|| recurse(DEPTH))).collect();
        for h in hs {
            assert_eq!(h.join(), DEPTH * (DEPTH + 1) / 2);
        }
    });
    let deepest = DEEPEST.load(Ordering::Relaxed);
    println!("deepest frame: {deepest} bytes below the stack top");
    // Far past the 256 KiB the stacks used to have.
    assert!(deepest > 1 << 20, "10,000 frames took only {deepest} bytes");
}

#[test]
fn a_hundred_tasks_recurse_ten_thousand_frames_deep() {
    child_passes("child_hundred_deep_tasks", &[], Duration::from_secs(120));
}

/// `field` of /proc/self/status, KiB.
fn status_kib(field: &str) -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

fn mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps").unwrap().lines().count()
}

/// The most tasks the `mprotect` fallback allows, as sched/task.rs computes
/// it.
fn fallback_limit() -> usize {
    let max: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count").unwrap().trim().parse().unwrap();
    max.saturating_sub(8192) / 2
}

/// Starts `n` tasks that wait on `done`; returns once all are parked (or
/// about to).
fn idle_tasks(n: usize, done: &Chan<()>) -> Vec<cgocheck::JoinHandle<()>> {
    let parked = Arc::new(AtomicUsize::new(0));
    let hs = (0..n)
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
    sleep(Duration::from_millis(100));
    hs
}

#[test]
fn child_idle_tasks() {
    if !is_child() {
        return;
    }
    // 200,000, far past the 28,669 the old two-mappings-per-stack allowed;
    // where the kernel has no guard regions that is still the limit.
    let n = match heap().stack_mappings_per_task() {
        0 => 200_000,
        _ => 200_000.min(fallback_limit() - 100),
    };
    run(|| {
        let (rss0, maps0) = (status_kib("VmRSS"), mappings());
        let done = Chan::new(0);
        let hs = idle_tasks(n, &done);
        let (rss, maps) = (status_kib("VmRSS"), mappings());
        let per_task = (rss - rss0) as f64 / n as f64;
        println!("{n} idle tasks: VmRSS {rss0} -> {rss} KiB ({per_task:.2} KiB each), {maps0} -> {maps} mappings");
        assert!(per_task <= 16.0, "an idle task costs {per_task:.2} KiB of RSS, the goal is at most 16");
        let per_stack = heap().stack_mappings_per_task();
        assert!(
            maps <= maps0 + n * per_stack + 64,
            "{n} tasks took {} mappings ({per_stack} per stack expected)",
            maps - maps0
        );
        done.close();
        for h in hs {
            h.join();
        }
        let after = status_kib("VmRSS");
        println!("after they ended: VmRSS {after} KiB");
        // Each task touched at least the top 4 KiB page of its stack; the
        // end of the task gives it back.
        assert!(rss - after >= n * 4 * 9 / 10, "ending {n} tasks gave back only {} KiB", rss - after);
    });
}

#[test]
fn two_hundred_thousand_idle_tasks_cost_at_most_16_kib_each() {
    let c = child_passes("child_idle_tasks", &[], Duration::from_secs(240));
    eprintln!("{}", c.stdout.lines().filter(|l| l.contains("VmRSS")).collect::<Vec<_>>().join("\n"));
}

#[test]
fn child_overflow_default() {
    if !is_child() {
        return;
    }
    run(|| spawn(|| recurse_forever(0)).join());
    unreachable!("the recursion has no end");
}

#[test]
fn overflow_at_the_default_reservation_is_reported() {
    let c = child("child_overflow_default", &[], Duration::from_secs(60));
    assert_eq!(c.code, Some(2), "{c}");
    assert!(c.stderr.contains("overflowed its 16777216-byte stack"), "{c}");
    assert!(c.stderr.contains("fatal error: stack overflow") && c.stderr.contains("CGOCHECK_STACK_KB"), "{c}");
    // Both ends of the recursion (about 87,000 frames): the innermost
    // frames where it overflowed, Go's elision line with the count, then
    // the outermost ones down to where it started, the spawned closure.
    let names: Vec<&str> = c.stderr.lines().filter(|l| !l.starts_with('\t')).collect();
    let task = names.iter().position(|l| l.starts_with("task ") && l.ends_with("[running]:")).expect("a task section");
    let section: Vec<&str> = names[task + 1..].iter().take_while(|l| !l.is_empty()).copied().collect();
    assert!(section[..32].iter().all(|l| *l == "task_stacks::recurse_forever(...)"), "the top:\n{c}");
    let elided =
        section.iter().position(|l| l.starts_with("...") && l.ends_with(" frames elided...")).expect("elision");
    let count: u64 = section[elided].trim_start_matches("...").split(' ').next().unwrap().parse().unwrap();
    assert!(elided == 32 && count > 10_000, "the middle is elided and counted:\n{c}");
    let bottom = &section[elided + 1..];
    assert!(bottom.first() == Some(&"task_stacks::recurse_forever(...)"), "the bottom:\n{c}");
    assert!(
        bottom.last().is_some_and(|l| l.starts_with("task_stacks::child_overflow_default::{{closure}}")),
        "the bottom ends at the task's entry, the spawned closure:\n{c}"
    );
}

#[test]
fn child_stack_range_full() {
    if !is_child() {
        return;
    }
    run(|| {
        // CGOCHECK_STACK_KB=1048576: 1 GiB stacks, Go's largest; about
        // 32,000 fill the 32 TiB stack range.
        let done = Chan::<()>::new(0);
        let mut hs = Vec::new();
        let msg = loop {
            let done = done.clone();
            match catch_unwind(AssertUnwindSafe(|| {
                spawn(move || {
                    done.recv();
                })
            })) {
                Ok(h) => hs.push(h),
                Err(e) => break e.downcast::<String>().map(|s| *s).unwrap_or_default(),
            }
            assert!(hs.len() <= 1 << 20, "no limit after {} tasks with 1 GiB stacks", hs.len());
        };
        let alive = hs.len() + 1;
        println!("refused at {alive}: {msg}");
        assert!(msg.contains(&format!("cannot start another task: {alive} tasks are alive")), "{msg}");
        assert!(msg.contains("stack range") && msg.contains("CGOCHECK_STACK_KB"), "{msg}");
        assert_eq!(cgocheck::sched::stats().tasks, alive, "the refused task is not counted");
        done.close();
        hs.into_iter().for_each(|h| h.join());
        // Their stacks are reused: as many start again.
        let hs: Vec<_> = (1..alive).map(|i| spawn(move || i)).collect();
        assert_eq!(hs.into_iter().map(|h| h.join()).sum::<usize>(), alive * (alive - 1) / 2);
    });
}

#[test]
fn a_full_stack_range_refuses_the_next_task_clearly_and_recovers() {
    child_passes("child_stack_range_full", &[("CGOCHECK_STACK_KB", "1048576")], Duration::from_secs(120));
}

/// Makes this process's `madvise(MADV_GUARD_INSTALL)` fail with EINVAL, as
/// a kernel before 6.13 answers (a seccomp filter: this thread and the
/// threads it starts from now on). Must run before the heap is first used.
fn refuse_guard_regions() {
    use libc::{
        sock_filter, sock_fprog, BPF_ABS, BPF_JEQ, BPF_JMP, BPF_JUMP, BPF_K, BPF_LD, BPF_RET, BPF_STMT, BPF_W,
        SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO,
    };
    // struct seccomp_data: nr at 0, args[2] at 32 (its low half on a
    // little-endian machine).
    let ld = (BPF_LD | BPF_W | BPF_ABS) as u16;
    let jeq = (BPF_JMP | BPF_JEQ | BPF_K) as u16;
    let ret = (BPF_RET | BPF_K) as u16;
    // SAFETY: BPF_STMT and BPF_JUMP only build structs.
    let filter: [sock_filter; 6] = unsafe {
        [
            BPF_STMT(ld, 0),
            BPF_JUMP(jeq, libc::SYS_madvise as u32, 0, 3),
            BPF_STMT(ld, 32),
            BPF_JUMP(jeq, 102, 0, 1),
            BPF_STMT(ret, SECCOMP_RET_ERRNO | libc::EINVAL as u32),
            BPF_STMT(ret, SECCOMP_RET_ALLOW),
        ]
    };
    let prog = sock_fprog { len: filter.len() as u16, filter: filter.as_ptr() as *mut sock_filter };
    // SAFETY: plain prctl calls; `prog` and `filter` outlive them (the
    // kernel copies the program).
    unsafe {
        assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "{}", std::io::Error::last_os_error());
        assert_eq!(
            libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog as *const sock_fprog),
            0,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

#[test]
fn child_fallback_limit() {
    if !is_child() {
        return;
    }
    refuse_guard_regions();
    assert_eq!(heap().stack_mappings_per_task(), 2, "the filter hides guard regions");
    let limit = fallback_limit();
    run(|| {
        let maps0 = mappings();
        let done = Chan::new(0);
        let mut hs = idle_tasks(1000, &done);
        let added = mappings() - maps0;
        assert!((2000..2064).contains(&added), "1000 mprotect-guarded stacks added {added} mappings");
        // Up to the limit (the main task is alive too), then a clear no.
        if limit <= 100_000 {
            hs.extend(idle_tasks(limit - 1001, &done));
            let refused = catch_unwind(AssertUnwindSafe(|| spawn(|| ())));
            let msg = match refused {
                Ok(_) => panic!("task {} of at most {limit} was started", limit + 1),
                Err(e) => e.downcast::<String>().map(|s| *s).unwrap_or_default(),
            };
            assert!(msg.contains(&format!("{limit} tasks are alive")), "{msg}");
            assert!(msg.contains("no guard regions") && msg.contains("vm.max_map_count"), "{msg}");
            println!("refused at {limit}: {msg}");
        }
        done.close();
        for h in hs {
            h.join();
        }
    });
}

#[test]
fn without_guard_regions_stacks_are_mprotect_guarded_and_limited() {
    child_passes("child_fallback_limit", &[], Duration::from_secs(120));
}

#[test]
fn child_fallback_overflow() {
    if !is_child() {
        return;
    }
    refuse_guard_regions();
    assert_eq!(heap().stack_mappings_per_task(), 2, "the filter hides guard regions");
    run(|| spawn_with_stack(64 << 10, || recurse_forever(0)).join());
    unreachable!("the recursion has no end");
}

#[test]
fn without_guard_regions_overflow_is_still_reported() {
    let c = child("child_fallback_overflow", &[], Duration::from_secs(60));
    assert_eq!(c.code, Some(2), "{c}");
    assert!(c.stderr.contains("overflowed its 65536-byte stack"), "{c}");
    assert!(c.stderr.contains("fatal error: stack overflow"), "{c}");
}

/// Bytes of stack one [`deep_in_callback`] frame touches, at least.
const CALLBACK_FRAME: usize = 1024;

/// Touches `frames` frames of at least [`CALLBACK_FRAME`] bytes each.
#[inline(never)]
fn deep_in_callback(frames: u64) -> u64 {
    let mut pad = [frames as u8; CALLBACK_FRAME];
    std::hint::black_box(&mut pad);
    if frames == 0 {
        return pad[7] as u64;
    }
    deep_in_callback(frames - 1) + pad[3] as u64
}

cgocheck::export! {
    /// A callback that recurses `frames` deep on its task stack.
    fn TaskStacksDeepCallback(frames: u64) -> u64 {
        deep_in_callback(frames)
    }
}

#[test]
fn child_callback_stacks_released() {
    if !is_child() {
        return;
    }
    // Threads the runtime did not start (std's, here: to the runtime the
    // same as C's pthreads) call back, each binding its own extra M, and
    // recurse 4 MiB deep on that M's task stack. All are alive at once,
    // so each has its own M; then they exit.
    const THREADS: usize = 16;
    const FRAMES: u64 = 4096;
    let f: extern "C" fn(u64) -> u64 = TaskStacksDeepCallback;
    let rss0 = status_kib("VmRSS");
    let (called, exit) =
        (Arc::new(std::sync::Barrier::new(THREADS + 1)), Arc::new(std::sync::Barrier::new(THREADS + 1)));
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let (called, exit) = (called.clone(), exit.clone());
            std::thread::spawn(move || {
                std::hint::black_box(f(FRAMES));
                called.wait();
                exit.wait();
            })
        })
        .collect();
    called.wait();
    let rss = status_kib("VmRSS");
    exit.wait();
    for h in hs {
        h.join().unwrap();
    }
    // Joined: each thread's key destructor (`dropm`) has run.
    let after = status_kib("VmRSS");
    let touched = THREADS * FRAMES as usize * CALLBACK_FRAME / 1024;
    println!("{THREADS} callback threads {FRAMES} frames deep: VmRSS {rss0} -> {rss} -> {after} KiB after they exited");
    assert!(rss - rss0 >= touched * 9 / 10, "the callbacks touched {touched} KiB, RSS grew by {} KiB", rss - rss0);
    assert!(
        after.saturating_sub(rss0) <= touched / 10,
        "{} KiB of the {touched} KiB the exited threads' callbacks touched are still resident",
        after.saturating_sub(rss0)
    );
}

#[test]
fn a_c_thread_gives_its_callback_stack_pages_back_when_it_exits() {
    let c = child_passes("child_callback_stacks_released", &[], Duration::from_secs(60));
    eprintln!("{}", c.stdout.lines().filter(|l| l.contains("VmRSS")).collect::<Vec<_>>().join("\n"));
}

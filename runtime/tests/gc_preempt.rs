//! Asynchronous preemption (`gc/preempt.rs`, `arch/preempt_x86_64.rs`):
//! a task in a loop without safepoints neither keeps other tasks from
//! running nor blocks a collection, its registers and FP/SIMD state come
//! through every preemption intact, and code holding a runtime lock
//! (`NoPreempt`) is not interrupted; a callback from C is stopped for the
//! collector but takes no scheduling turn.
//!
//! Each scenario runs in a child process (its own `GOMAXPROCS`) under a
//! watchdog (`sched_util::watched`), so a hang fails instead of stalling.
//! A SIGURG handler the program installed before the runtime still gets
//! every SIGURG but the runtime's own requests, and a backtrace of a
//! preempted task walks through the injected call into the interrupted
//! function (the CFI of `async_preempt`).
//! The spinning tasks also have a safety net: a plain thread that stops
//! them after [`NET`], so that without preemption a test ends with a clear
//! assertion failure rather than a watchdog abort.
//! With `GODEBUG=asyncpreemptoff=1` no signal is sent and a spinning task
//! keeps the only P until it stops; a malformed value stops the program.

mod sched_util;

use cgocheck::cgocall::cgocall;
use cgocheck::gc::{preempt_running_for_test, preempt_stats, with_no_preempt};
use cgocheck::{run, sleep, spawn};
use sched_util::{at_procs, child, child_fails, is_child, text, watched};
use std::ffi::c_void;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// SIGURGs that reached the handler this program installed before the
/// runtime started ([`INSTALL_PRIOR`]).
static PRIOR_HITS: AtomicU64 = AtomicU64::new(0);

extern "C" fn prior_sigurg(_sig: libc::c_int) {
    PRIOR_HITS.fetch_add(1, Ordering::Relaxed);
}

/// A SIGURG handler of the program's own, installed before the runtime's
/// start-up code: `.init_array.NNNNN` sections run before the plain
/// `.init_array` the runtime uses (the linker sorts them first).
#[used]
#[link_section = ".init_array.00200"]
static INSTALL_PRIOR: extern "C" fn() = {
    extern "C" fn install() {
        // SAFETY: installing a plain handler with a zeroed sigaction.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = prior_sigurg as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut act.sa_mask);
            libc::sigaction(libc::SIGURG, &act, std::ptr::null_mut());
        }
    }
    install
};

/// How long the safety net lets spinning tasks spin.
const NET: Duration = Duration::from_secs(10);

/// A flag that a plain thread raises after [`NET`] at the latest.
fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while t0.elapsed() < NET && !s.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
        s.store(true, Ordering::Relaxed);
    });
    stop
}

/// Spins without a safepoint until `stop`: no allocation, no call into the
/// runtime, no C call. Returns the rounds made.
fn spin(stop: &AtomicBool) -> u64 {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n = black_box(n.wrapping_add(1));
    }
    n
}

#[test]
fn a_spinning_task_does_not_keep_others_from_running() {
    if !is_child() {
        return at_procs("a_spinning_task_does_not_keep_others_from_running", &[1]);
    }
    watched("a spinning task and others at GOMAXPROCS=1", || {
        run(|| {
            let stop = stop_flag();
            let s = stop.clone();
            let spinner = spawn(move || spin(&s));
            let before = preempt_stats();
            // The spinner has the only P; the main task gets it back only
            // if the spinner is preempted.
            let t0 = Instant::now();
            sleep(Duration::from_millis(30));
            let slept = t0.elapsed();
            // A new task, too.
            let t1 = Instant::now();
            let other = spawn(move || t1.elapsed());
            let waited = other.join();
            // Measure: signals sent and turns taken while the spinner
            // competes with a second spinner for one P for a second.
            let s2 = stop.clone();
            let rival = spawn(move || spin(&s2));
            let mid = preempt_stats();
            let t2 = Instant::now();
            sleep(Duration::from_secs(1));
            let secs = t2.elapsed().as_secs_f64();
            let after = preempt_stats();
            let net_fired = stop.swap(true, Ordering::Relaxed);
            let (a, b) = (spinner.join(), rival.join());
            println!(
                "slept 30 ms in {slept:?}; a new task started after {waited:?}; with two spinners: {:.0} signals/s, \
                 {:.0} turns/s; spinners made {a} and {b} rounds; {after:?}",
                (after.sent - mid.sent) as f64 / secs,
                (after.turns - mid.turns) as f64 / secs,
            );
            assert!(!net_fired, "the spinning task kept the only P until the safety net stopped it: not preempted");
            assert!(slept < Duration::from_secs(1), "a 30 ms sleep took {slept:?} beside a spinning task");
            assert!(waited < Duration::from_secs(1), "a new task waited {waited:?} for a spinning task's P");
            assert!(after.turns > before.turns, "no turn was taken: {before:?} -> {after:?}");
            assert!(a > 0 && b > 0, "both spinners ran ({a}, {b})");
            // Turns come every 10 ms or so, one signal each (a few more
            // when a signal finds the task where it cannot stop).
            let rate = (after.sent - mid.sent) as f64 / secs;
            assert!(rate < 2000.0, "{rate:.0} preemption signals per second for one spinning task");
        })
    });
}

#[test]
fn a_spinning_task_does_not_block_a_collection() {
    if !is_child() {
        return at_procs("a_spinning_task_does_not_block_a_collection", &[1, 2]);
    }
    let procs = cgocheck::gomaxprocs();
    watched("gc() beside a spinning task", || {
        run(|| {
            let stop = stop_flag();
            let s = stop.clone();
            let spinner = spawn(move || spin(&s));
            sleep(Duration::from_millis(20));
            let before = preempt_stats();
            let t0 = Instant::now();
            for _ in 0..3 {
                cgocheck::gc();
            }
            let took = t0.elapsed();
            let after = preempt_stats();
            let net_fired = stop.swap(true, Ordering::Relaxed);
            spinner.join();
            println!("GOMAXPROCS={procs}: three collections in {took:?}; {before:?} -> {after:?}");
            assert!(!net_fired, "gc() waited for the safety net to stop the spinning task");
            assert!(took < Duration::from_secs(3), "three collections took {took:?} beside a spinning task");
            if procs > 1 {
                // The spinner kept its own P: each collection had to stop
                // it by a signal (at one P it may be waiting for its turn
                // already, and is then stopped without one).
                assert!(after.stops >= before.stops + 3, "the spinning task was not stopped by preemption: {after:?}");
            }
        })
    });
}

/// One task holds a `std` mutex and, holding it, collects (`gc()`), while
/// as many other tasks as there are Ps block their threads on that mutex
/// (in the kernel, outside the runtime's code, each holding a P). The
/// world can stop only if the blocked threads are stopped where they wait
/// (in the signal handler): each keeps a running P, and the mutex they
/// wait for is held by a task that cannot let go until the collection is
/// over. Then the holder, back from the collection (a blocking call, whose
/// P the monitor may have given away), may need a P: the blocked tasks
/// give theirs by a turn injected at their `futex` call (how often depends
/// on timing: the stops are checked, the turns printed). Without either,
/// a round deadlocks (the watchdog fails it).
#[test]
fn tasks_blocked_on_a_std_mutex_do_not_block_a_collection() {
    if !is_child() {
        return at_procs("tasks_blocked_on_a_std_mutex_do_not_block_a_collection", &[2, 3]);
    }
    watched("gc() while tasks block on a std mutex its caller holds", || {
        run(|| {
            const ROUNDS: u64 = 20;
            let lock = Arc::new(std::sync::Mutex::new(0u64));
            let done = Arc::new(AtomicBool::new(false));
            let contenders: Vec<_> = (0..cgocheck::gomaxprocs())
                .map(|_| {
                    let (lock, done) = (lock.clone(), done.clone());
                    spawn(move || {
                        let mut n = 0u64;
                        while !done.load(Ordering::Relaxed) {
                            *lock.lock().unwrap() += 1;
                            n += 1;
                            cgocheck::yield_now();
                        }
                        n
                    })
                })
                .collect();
            let before = preempt_stats();
            for _ in 0..ROUNDS {
                let held = lock.lock().unwrap();
                // Long enough for the contenders to spin out and block in
                // the kernel: a busy wait (a sleep would give the P away).
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_millis(3) {
                    std::hint::spin_loop();
                }
                cgocheck::gc();
                drop(held);
                cgocheck::yield_now();
            }
            done.store(true, Ordering::Relaxed);
            let taken: u64 = contenders.into_iter().map(|t| t.join()).sum();
            let after = preempt_stats();
            println!("{ROUNDS} collections under the mutex, {taken} locks by the contenders; {before:?} -> {after:?}");
            assert_eq!(*lock.lock().unwrap(), taken);
            assert!(
                after.stopped_in_syscall > before.stopped_in_syscall,
                "no task was stopped while blocked on the mutex: the test did not test it ({after:?})"
            );
        })
    });
}

/// At `GOMAXPROCS=1`, a task holds a `std` mutex while it computes for
/// 30 ms: after 10 ms it is given a turn (another task waits for the P),
/// and that task blocks its thread on the mutex, holding the only P. The
/// P comes back to the holder because the blocked task is given a turn in
/// turn, injected at its `futex` call; without that, this deadlocks.
#[test]
fn a_task_blocked_on_a_std_mutex_gives_the_only_p_back_to_its_holder() {
    if !is_child() {
        return at_procs("a_task_blocked_on_a_std_mutex_gives_the_only_p_back_to_its_holder", &[1]);
    }
    watched("a std mutex contended at one P", || {
        run(|| {
            let lock = Arc::new(std::sync::Mutex::new(0u64));
            let before = preempt_stats();
            for _ in 0..3 {
                let holder = {
                    let lock = lock.clone();
                    spawn(move || {
                        let mut n = lock.lock().unwrap();
                        let t0 = Instant::now();
                        while t0.elapsed() < Duration::from_millis(30) {
                            std::hint::spin_loop();
                        }
                        *n += 1;
                    })
                };
                let contender = {
                    let lock = lock.clone();
                    spawn(move || {
                        // Let the holder take the lock first.
                        sleep(Duration::from_millis(2));
                        *lock.lock().unwrap() += 1;
                    })
                };
                holder.join();
                contender.join();
            }
            let after = preempt_stats();
            println!("{before:?} -> {after:?}");
            assert_eq!(*lock.lock().unwrap(), 6);
        })
    });
}

/// How long the task in [`asyncpreemptoff_lets_a_spinning_task_keep_the_only_p`]
/// spins.
const SPIN: Duration = Duration::from_millis(300);

#[test]
fn asyncpreemptoff_lets_a_spinning_task_keep_the_only_p() {
    let name = "asyncpreemptoff_lets_a_spinning_task_keep_the_only_p";
    if !is_child() {
        let env = [("GOMAXPROCS", "1"), ("GOTRACEBACK", "all"), ("GODEBUG", "gctrace=0,asyncpreemptoff=1")];
        let out = child(name, &env);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{name} with {env:?}:\n{}",
            text(&out)
        );
        return;
    }
    watched("a spinning task with asyncpreemptoff=1 at GOMAXPROCS=1", || {
        run(|| {
            // Spins for SPIN from its start without a safepoint (reading the
            // clock is a vdso call, not the runtime); returns when it
            // started and when it stopped.
            let spinner = spawn(|| {
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < SPIN {
                    n = black_box(n.wrapping_add(1));
                }
                (start, Instant::now(), n)
            });
            // The main task parks; the spinner takes the only P. The timer
            // wakes the main task after 20 ms, and it waits for the P: with
            // preemption by signal a turn would hand it over after ~10 ms.
            let t0 = Instant::now();
            sleep(Duration::from_millis(20));
            let woke = Instant::now();
            let (start, end, n) = spinner.join();
            let stats = preempt_stats();
            println!(
                "the spinner ran {:?} to {:?} after the sleep began ({n} rounds); the main task woke at {:?}; {stats:?}",
                start - t0,
                end - t0,
                woke - t0
            );
            assert!(
                woke > end,
                "the main task ran again {:?} after its sleep began, before the spinner stopped at {:?}: it was \
                 preempted although GODEBUG=asyncpreemptoff=1",
                woke - t0,
                end - t0
            );
            assert!(end - start >= SPIN && woke - t0 >= SPIN, "the spinner stopped early");
            assert_eq!(stats.sent, 0, "preemption signals were sent with asyncpreemptoff=1: {stats:?}");
            assert_eq!((stats.injected, stats.turns, stats.stops), (0, 0, 0), "{stats:?}");
        })
    });
}

#[test]
fn bad_asyncpreemptoff_values_stop_the_program_naming_the_accepted_ones() {
    let name = "bad_asyncpreemptoff_values_stop_the_program_naming_the_accepted_ones";
    if is_child() {
        run(|| ());
        unreachable!("started with a bad GODEBUG=asyncpreemptoff");
    }
    for bad in ["asyncpreemptoff=x", "asyncpreemptoff=1,gctrace=0,asyncpreemptoff=on", "asyncpreemptoff= 1"] {
        let value = bad.rsplit('=').next().unwrap();
        child_fails(
            name,
            &[("GODEBUG", bad)],
            2,
            &[
                &format!("cgocheck: GODEBUG=asyncpreemptoff: {value:?} is not an asyncpreemptoff setting"),
                "`asyncpreemptoff=1` (no preemption by signal",
            ],
        );
    }
}

/// CPU time thread `tid` of this process has used, in nanoseconds (the
/// first field of its `schedstat`).
fn cpu_ns(tid: u64) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).expect("the thread's schedstat");
    s.split_whitespace().next().and_then(|f| f.parse().ok()).expect("schedstat's first field")
}

/// The table the register check reads: patterns, then its state.
#[repr(C, align(16))]
struct Table {
    /// 0..11: rax, rdx, rsi, rdi, r8-r14; 16..46: xmm0-14 (low, high);
    /// 48..78: ymm0-14 upper halves (low, high); 80: rounds left; 81:
    /// AVX available; 82: the check running, -1 when all passed.
    words: [u64; 83],
}

/// Fills registers (general-purpose, xmm0-14, with AVX the ymm upper
/// halves, the direction flag) with patterns and checks them `rounds`
/// times in a loop that never calls anything, so that only a preemption
/// can change them. Returns -1 when every check passed, else the failing
/// check: 0-10 a general-purpose register, 11 the direction flag, 100 +
/// i xmm i, 200 + i ymm i's upper half.
fn check_registers(seed: u64, rounds: u64, avx: bool) -> i64 {
    let mut t = Table { words: [0; 83] };
    for (i, w) in t.words.iter_mut().enumerate().take(80) {
        *w = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).wrapping_add(i as u64).rotate_left(i as u32);
    }
    t.words[80] = rounds;
    t.words[81] = u64::from(avx);
    // SAFETY: the asm reads and writes only `t` through r15, writes the
    // registers it declares (r12-r14 explicitly, the caller-saved ones by
    // clobber_abi), uses no stack, and leaves the direction flag clear.
    unsafe {
        core::arch::asm!(
            // Set the direction flag: it must survive too.
            "std",
            // Rax = its pattern.
            "mov rax, qword ptr [r15 + 0]",
            "mov rdx, qword ptr [r15 + 8]",
            "mov rsi, qword ptr [r15 + 16]",
            "mov rdi, qword ptr [r15 + 24]",
            "mov r8, qword ptr [r15 + 32]",
            "mov r9, qword ptr [r15 + 40]",
            "mov r10, qword ptr [r15 + 48]",
            "mov r11, qword ptr [r15 + 56]",
            "mov r12, qword ptr [r15 + 64]",
            "mov r13, qword ptr [r15 + 72]",
            "mov r14, qword ptr [r15 + 80]",
            // Xmm0-14 = their patterns.
            "movdqu xmm0, xmmword ptr [r15 + 128]",
            "movdqu xmm1, xmmword ptr [r15 + 144]",
            "movdqu xmm2, xmmword ptr [r15 + 160]",
            "movdqu xmm3, xmmword ptr [r15 + 176]",
            "movdqu xmm4, xmmword ptr [r15 + 192]",
            "movdqu xmm5, xmmword ptr [r15 + 208]",
            "movdqu xmm6, xmmword ptr [r15 + 224]",
            "movdqu xmm7, xmmword ptr [r15 + 240]",
            "movdqu xmm8, xmmword ptr [r15 + 256]",
            "movdqu xmm9, xmmword ptr [r15 + 272]",
            "movdqu xmm10, xmmword ptr [r15 + 288]",
            "movdqu xmm11, xmmword ptr [r15 + 304]",
            "movdqu xmm12, xmmword ptr [r15 + 320]",
            "movdqu xmm13, xmmword ptr [r15 + 336]",
            "movdqu xmm14, xmmword ptr [r15 + 352]",
            // With AVX: the ymm upper halves too.
            "cmp qword ptr [r15 + 648], 0",
            "je 3f",
            "vinsertf128 ymm0, ymm0, xmmword ptr [r15 + 384], 1",
            "vinsertf128 ymm1, ymm1, xmmword ptr [r15 + 400], 1",
            "vinsertf128 ymm2, ymm2, xmmword ptr [r15 + 416], 1",
            "vinsertf128 ymm3, ymm3, xmmword ptr [r15 + 432], 1",
            "vinsertf128 ymm4, ymm4, xmmword ptr [r15 + 448], 1",
            "vinsertf128 ymm5, ymm5, xmmword ptr [r15 + 464], 1",
            "vinsertf128 ymm6, ymm6, xmmword ptr [r15 + 480], 1",
            "vinsertf128 ymm7, ymm7, xmmword ptr [r15 + 496], 1",
            "vinsertf128 ymm8, ymm8, xmmword ptr [r15 + 512], 1",
            "vinsertf128 ymm9, ymm9, xmmword ptr [r15 + 528], 1",
            "vinsertf128 ymm10, ymm10, xmmword ptr [r15 + 544], 1",
            "vinsertf128 ymm11, ymm11, xmmword ptr [r15 + 560], 1",
            "vinsertf128 ymm12, ymm12, xmmword ptr [r15 + 576], 1",
            "vinsertf128 ymm13, ymm13, xmmword ptr [r15 + 592], 1",
            "vinsertf128 ymm14, ymm14, xmmword ptr [r15 + 608], 1",
            "3:",
            // One round of checks.
            "2:",
            // The check about to run, for the failure message.
            "mov qword ptr [r15 + 656], 0",
            "cmp rax, qword ptr [r15 + 0]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 1",
            "cmp rdx, qword ptr [r15 + 8]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 2",
            "cmp rsi, qword ptr [r15 + 16]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 3",
            "cmp rdi, qword ptr [r15 + 24]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 4",
            "cmp r8, qword ptr [r15 + 32]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 5",
            "cmp r9, qword ptr [r15 + 40]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 6",
            "cmp r10, qword ptr [r15 + 48]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 7",
            "cmp r11, qword ptr [r15 + 56]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 8",
            "cmp r12, qword ptr [r15 + 64]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 9",
            "cmp r13, qword ptr [r15 + 72]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 10",
            "cmp r14, qword ptr [r15 + 80]",
            "jne 8f",
            // The direction flag.
            "mov qword ptr [r15 + 656], 11",
            "pushfq",
            "pop rcx",
            "bt rcx, 10",
            "jnc 8f",
            // Xmm i: low and high quadwords, through xmm15.
            "mov qword ptr [r15 + 656], 100",
            "movq rcx, xmm0",
            "cmp rcx, qword ptr [r15 + 128]",
            "jne 8f",
            "pshufd xmm15, xmm0, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 136]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 101",
            "movq rcx, xmm1",
            "cmp rcx, qword ptr [r15 + 144]",
            "jne 8f",
            "pshufd xmm15, xmm1, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 152]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 102",
            "movq rcx, xmm2",
            "cmp rcx, qword ptr [r15 + 160]",
            "jne 8f",
            "pshufd xmm15, xmm2, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 168]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 103",
            "movq rcx, xmm3",
            "cmp rcx, qword ptr [r15 + 176]",
            "jne 8f",
            "pshufd xmm15, xmm3, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 184]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 104",
            "movq rcx, xmm4",
            "cmp rcx, qword ptr [r15 + 192]",
            "jne 8f",
            "pshufd xmm15, xmm4, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 200]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 105",
            "movq rcx, xmm5",
            "cmp rcx, qword ptr [r15 + 208]",
            "jne 8f",
            "pshufd xmm15, xmm5, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 216]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 106",
            "movq rcx, xmm6",
            "cmp rcx, qword ptr [r15 + 224]",
            "jne 8f",
            "pshufd xmm15, xmm6, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 232]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 107",
            "movq rcx, xmm7",
            "cmp rcx, qword ptr [r15 + 240]",
            "jne 8f",
            "pshufd xmm15, xmm7, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 248]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 108",
            "movq rcx, xmm8",
            "cmp rcx, qword ptr [r15 + 256]",
            "jne 8f",
            "pshufd xmm15, xmm8, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 264]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 109",
            "movq rcx, xmm9",
            "cmp rcx, qword ptr [r15 + 272]",
            "jne 8f",
            "pshufd xmm15, xmm9, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 280]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 110",
            "movq rcx, xmm10",
            "cmp rcx, qword ptr [r15 + 288]",
            "jne 8f",
            "pshufd xmm15, xmm10, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 296]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 111",
            "movq rcx, xmm11",
            "cmp rcx, qword ptr [r15 + 304]",
            "jne 8f",
            "pshufd xmm15, xmm11, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 312]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 112",
            "movq rcx, xmm12",
            "cmp rcx, qword ptr [r15 + 320]",
            "jne 8f",
            "pshufd xmm15, xmm12, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 328]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 113",
            "movq rcx, xmm13",
            "cmp rcx, qword ptr [r15 + 336]",
            "jne 8f",
            "pshufd xmm15, xmm13, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 344]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 114",
            "movq rcx, xmm14",
            "cmp rcx, qword ptr [r15 + 352]",
            "jne 8f",
            "pshufd xmm15, xmm14, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 360]",
            "jne 8f",
            "cmp qword ptr [r15 + 648], 0",
            "je 4f",
            // Ymm i upper half, through xmm15.
            "mov qword ptr [r15 + 656], 200",
            "vextractf128 xmm15, ymm0, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 384]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 392]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 201",
            "vextractf128 xmm15, ymm1, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 400]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 408]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 202",
            "vextractf128 xmm15, ymm2, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 416]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 424]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 203",
            "vextractf128 xmm15, ymm3, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 432]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 440]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 204",
            "vextractf128 xmm15, ymm4, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 448]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 456]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 205",
            "vextractf128 xmm15, ymm5, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 464]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 472]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 206",
            "vextractf128 xmm15, ymm6, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 480]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 488]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 207",
            "vextractf128 xmm15, ymm7, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 496]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 504]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 208",
            "vextractf128 xmm15, ymm8, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 512]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 520]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 209",
            "vextractf128 xmm15, ymm9, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 528]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 536]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 210",
            "vextractf128 xmm15, ymm10, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 544]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 552]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 211",
            "vextractf128 xmm15, ymm11, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 560]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 568]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 212",
            "vextractf128 xmm15, ymm12, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 576]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 584]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 213",
            "vextractf128 xmm15, ymm13, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 592]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 600]",
            "jne 8f",
            "mov qword ptr [r15 + 656], 214",
            "vextractf128 xmm15, ymm14, 1",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 608]",
            "jne 8f",
            "pshufd xmm15, xmm15, 0xEE",
            "movq rcx, xmm15",
            "cmp rcx, qword ptr [r15 + 616]",
            "jne 8f",
            "4:",
            // Next round.
            "dec qword ptr [r15 + 640]",
            "jnz 2b",
            // Every round passed.
            "mov qword ptr [r15 + 656], -1",
            "8:",
            // The ABI's direction flag again.
            "cld",
            inout("r15") t.words.as_mut_ptr() => _,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            clobber_abi("C"),
        )
    };
    t.words[82] as i64
}

#[test]
fn registers_and_fp_state_survive_preemption() {
    if !is_child() {
        return at_procs("registers_and_fp_state_survive_preemption", &[1]);
    }
    let avx = std::arch::is_x86_feature_detected!("avx");
    watched("register checks under preemption", || {
        run(|| {
            let stop = stop_flag();
            let done = Arc::new(AtomicBool::new(false));
            let before = preempt_stats();
            // Two checking tasks share one P: each is preempted for the
            // other (turns); a plain thread adds stop requests, thousands
            // of them, with the registers scrambled at every preemption.
            let mut checkers = Vec::new();
            for seed in 1..=2u64 {
                let (stop, done) = (stop.clone(), done.clone());
                checkers.push(spawn(move || {
                    let mut chunks = 0u64;
                    while !done.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        let r = check_registers(seed, 200_000, avx);
                        assert_eq!(r, -1, "check {r} failed after a preemption (seed {seed})");
                        chunks += 1;
                    }
                    chunks
                }));
            }
            let sent = Arc::new(AtomicU64::new(0));
            let (d, n) = (done.clone(), sent.clone());
            let storm = std::thread::spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    n.fetch_add(preempt_running_for_test(true) as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_micros(200));
                }
                preempt_running_for_test(false);
            });
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(8) && preempt_stats().injected - before.injected < 3000 {
                sleep(Duration::from_millis(50));
            }
            done.store(true, Ordering::Relaxed);
            storm.join().expect("the request thread");
            let chunks: Vec<u64> = checkers.into_iter().map(|c| c.join()).collect();
            let after = preempt_stats();
            println!(
                "avx: {avx}; chunks {chunks:?}; {} requests; {before:?} -> {after:?}",
                sent.load(Ordering::Relaxed)
            );
            assert!(!stop.load(Ordering::Relaxed), "the safety net fired: the checkers were not preempted");
            assert!(after.injected - before.injected >= 500, "too few preemptions to mean anything: {after:?}");
            assert!(after.turns > before.turns, "the checkers took no turns: {after:?}");
            assert!(chunks.iter().all(|&c| c > 0), "both checkers ran: {chunks:?}");
        })
    });
}

#[test]
fn code_holding_a_runtime_lock_is_not_preempted() {
    if !is_child() {
        return at_procs("code_holding_a_runtime_lock_is_not_preempted", &[2]);
    }
    watched("preemption requests inside NoPreempt", || {
        run(|| {
            let inside = Arc::new(AtomicBool::new(false));
            let leave = Arc::new(AtomicBool::new(false));
            let stop = stop_flag();
            let (i, l, s) = (inside.clone(), leave.clone(), stop.clone());
            let task = spawn(move || {
                with_no_preempt(|| {
                    i.store(true, Ordering::Release);
                    while !l.load(Ordering::Relaxed) && !s.load(Ordering::Relaxed) {
                        black_box(0);
                    }
                });
                // The guard's drop honoured the deferred request; spin a
                // little more outside it, preemptible again.
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_millis(100) {
                    black_box(0);
                }
            });
            while !inside.load(Ordering::Acquire) {
                sleep(Duration::from_millis(1));
            }
            let before = preempt_stats();
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(200) {
                preempt_running_for_test(false);
                std::thread::sleep(Duration::from_micros(500));
            }
            let during = preempt_stats();
            leave.store(true, Ordering::Relaxed);
            task.join();
            let after = preempt_stats();
            println!("{before:?}\n{during:?}\n{after:?}");
            assert!(during.sent > before.sent + 50, "requests were sent: {during:?}");
            assert_eq!(during.injected, before.injected, "a task holding a runtime lock was interrupted");
            assert!(during.deferred > before.deferred, "the requests were not deferred to the lock's release");
            assert!(after.stops > before.stops, "the deferred request was not honoured when the guard dropped");
        })
    });
}

#[test]
fn measure_the_cost_of_a_preemption() {
    if !is_child() {
        return at_procs("measure_the_cost_of_a_preemption", &[2]);
    }
    watched("preemption round trips", || {
        run(|| {
            let stop = stop_flag();
            let rounds = Arc::new(AtomicU64::new(0));
            let tid = Arc::new(AtomicU64::new(0));
            let (s, r, t) = (stop.clone(), rounds.clone(), tid.clone());
            // Counts its rounds where a plain thread can see them.
            let spinner = spawn(move || {
                // SAFETY: gettid has no preconditions.
                t.store(unsafe { libc::syscall(libc::SYS_gettid) } as u64, Ordering::Relaxed);
                while !s.load(Ordering::Relaxed) {
                    r.fetch_add(1, Ordering::Relaxed);
                }
            });
            sleep(Duration::from_millis(10));
            let done = Arc::new(AtomicBool::new(false));
            let (d, r, s) = (done.clone(), rounds.clone(), stop.clone());
            let tid = tid.load(Ordering::Relaxed);
            // A plain thread measures, so that the only M running managed
            // code is the spinner's (the main task sleeps, its P idle).
            let meter = std::thread::spawn(move || {
                let phase = Duration::from_millis(300);
                // Quiet: the spinner's rounds per second of its own CPU time
                // alone (CPU time, not wall time: the machine is shared).
                let (r0, c0, t0) = (r.load(Ordering::Relaxed), cpu_ns(tid), Instant::now());
                std::thread::sleep(phase);
                let quiet = (r.load(Ordering::Relaxed) - r0) as f64 / (cpu_ns(tid) - c0) as f64;
                let _ = t0;
                // Stormy: one request at a time, each waited for (request
                // to the task's return from async_preempt2).
                let before = preempt_stats();
                let (r1, c1, t1) = (r.load(Ordering::Relaxed), cpu_ns(tid), Instant::now());
                let mut n = 0u64;
                while t1.elapsed() < phase && !s.load(Ordering::Relaxed) {
                    // A request the handler declined (the spinner was
                    // outside its loop's code at that instant) is sent
                    // again, as the collector does, every millisecond.
                    let target = before.stops + n + 1;
                    let mut sent: Option<Instant> = None;
                    while preempt_stats().stops < target && !s.load(Ordering::Relaxed) {
                        if sent.is_none_or(|t| t.elapsed() > Duration::from_millis(1)) {
                            preempt_running_for_test(false);
                            sent = Some(Instant::now());
                        }
                        std::hint::spin_loop();
                    }
                    if preempt_stats().stops >= target {
                        n += 1;
                    }
                }
                let secs = t1.elapsed().as_secs_f64();
                let (dr, dc) = (r.load(Ordering::Relaxed) - r1, cpu_ns(tid) - c1);
                // CPU time the spinner spent on preemptions: its CPU time
                // less what its rounds cost at the quiet rate.
                let lost_ns = (dc as f64 - dr as f64 / quiet).max(0.0);
                d.store(true, Ordering::Relaxed);
                (n, secs, quiet, lost_ns, before, preempt_stats())
            });
            while !done.load(Ordering::Relaxed) {
                sleep(Duration::from_millis(10));
            }
            let (n, secs, quiet, lost_ns, before, after) = meter.join().expect("the meter thread");
            stop.store(true, Ordering::Relaxed);
            spinner.join();
            println!(
                "{n} preemptions in {secs:.3} s: {:.1} µs each from request to return (wall); each cost the \
                 preempted thread {:.2} µs of CPU (signal delivery, handler, injected call, save and restore; \
                 {:.2} rounds/ns alone); FP state: {} bytes with {}; {after:?}",
                secs * 1e6 / n as f64,
                lost_ns / n as f64 / 1e3,
                quiet,
                after.fp_area,
                if after.xsave { "xsave" } else { "fxsave" },
            );
            assert!(after.stops - before.stops >= n, "every request was honoured: {before:?} -> {after:?}");
            assert!(n > 0, "no preemption in {secs:.3} s");
        })
    });
}

#[test]
fn other_sigurgs_reach_the_handler_installed_before_the_runtime() {
    if !is_child() {
        return at_procs("other_sigurgs_reach_the_handler_installed_before_the_runtime", &[2]);
    }
    // The runtime claimed SIGURG: the disposition is its handler now.
    // SAFETY: reading a disposition.
    let installed = unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(libc::SIGURG, std::ptr::null(), &mut old);
        old.sa_sigaction
    };
    assert_ne!(installed, prior_sigurg as *const () as libc::sighandler_t, "the runtime did not claim SIGURG");
    watched("SIGURG forwarding", || {
        run(|| {
            // A SIGURG the program raises goes to its own handler.
            // SAFETY: raising a signal whose handlers only count.
            unsafe { libc::raise(libc::SIGURG) };
            assert_eq!(PRIOR_HITS.load(Ordering::Relaxed), 1, "a raised SIGURG was not forwarded");
            // The runtime's requests do not.
            let stop = stop_flag();
            let s = stop.clone();
            let spinner = spawn(move || spin(&s));
            sleep(Duration::from_millis(10));
            let before = preempt_stats();
            for _ in 0..200 {
                preempt_running_for_test(false);
                sleep(Duration::from_micros(500));
            }
            let after = preempt_stats();
            stop.store(true, Ordering::Relaxed);
            spinner.join();
            assert!(after.injected > before.injected, "no preemption happened: {after:?}");
            assert_eq!(PRIOR_HITS.load(Ordering::Relaxed), 1, "the runtime's requests reached the program's handler");
            // One sent to the process by kill, too.
            // SAFETY: as above.
            unsafe { libc::kill(libc::getpid(), libc::SIGURG) };
            let t0 = Instant::now();
            while PRIOR_HITS.load(Ordering::Relaxed) < 2 && t0.elapsed() < Duration::from_secs(5) {
                sleep(Duration::from_millis(1));
            }
            assert_eq!(PRIOR_HITS.load(Ordering::Relaxed), 2, "a SIGURG from kill was not forwarded");
        })
    });
}

/// Spins until `stop`, in a frame of its own with a name to look for.
#[inline(never)]
fn spin_for_the_dump(stop: &AtomicBool) -> u64 {
    spin(stop)
}

#[test]
fn a_preempted_task_backtrace_walks_through_the_injected_call() {
    if !is_child() {
        return at_procs("a_preempted_task_backtrace_walks_through_the_injected_call", &[1]);
    }
    watched("stack_dump of a preempted task", || {
        run(|| {
            let stop = stop_flag();
            let s = stop.clone();
            let spinner = spawn(move || spin_for_the_dump(&s));
            // The main task runs again only after the spinner was
            // preempted; the spinner then waits for the P, its context
            // saved inside the injected call.
            sleep(Duration::from_millis(30));
            let dump = cgocheck::stack_dump(true);
            let id = spinner.task().id();
            stop.store(true, Ordering::Relaxed);
            spinner.join();
            let spinner_part = dump
                .split("\n\n")
                .find(|t| t.starts_with(&format!("task {id} ")))
                .unwrap_or_else(|| panic!("the spinner is not in the dump:\n{dump}"));
            assert!(
                spinner_part.contains("spin_for_the_dump"),
                "the preempted task's frames do not reach the interrupted function:\n{dump}"
            );
            assert!(
                spinner_part.contains("a_preempted_task_backtrace_walks_through_the_injected_call::{{closure}}"),
                "the walk stops in the interrupted function:\n{dump}"
            );
        })
    });
}

/// When the spinning callback of the test below ended (µs since
/// [`CALLBACK_EPOCH`]), 0 before.
static CALLBACK_END: AtomicU64 = AtomicU64::new(0);
static CALLBACK_EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
/// The callback's first call spins; later ones only compare.
static CALLBACK_SPUN: AtomicBool = AtomicBool::new(false);

fn micros_since_epoch() -> u64 {
    CALLBACK_EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

cgocheck::export! {
    /// A `qsort` comparator whose first call spins for 200 ms without a
    /// safepoint: managed code in a callback from C.
    fn CbSpinCompare(a: *const c_void, b: *const c_void) -> i32 {
        if !CALLBACK_SPUN.swap(true, Ordering::Relaxed) {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(200) {
                black_box(0);
            }
            CALLBACK_END.store(micros_since_epoch(), Ordering::Relaxed);
        }
        // SAFETY: qsort passes pointers to two elements of the i64 array.
        let (a, b) = unsafe { (*(a as *const i64), *(b as *const i64)) };
        a.cmp(&b) as i32
    }
}

/// glibc's `qsort` of `v` with [`CbSpinCompare`], through `cgocall`.
fn qsort_spinning(v: &mut [i64]) {
    unsafe extern "C" fn tramp(frame: *mut c_void) {
        // SAFETY: qsort_spinning passes a (pointer, length) pair.
        let (p, n) = unsafe { *(frame as *const (*mut i64, usize)) };
        // SAFETY: p..p+n is the caller's array of i64; the comparator reads
        // two of its elements.
        unsafe { libc::qsort(p.cast(), n, 8, Some(CbSpinCompare)) };
    }
    let mut frame = (v.as_mut_ptr(), v.len());
    // SAFETY: the trampoline takes the frame it is given.
    unsafe { cgocall(tramp, (&mut frame as *mut (*mut i64, usize)).cast(), None) }
}

#[test]
fn a_callback_from_c_is_stopped_but_takes_no_turns() {
    if !is_child() {
        return at_procs("a_callback_from_c_is_stopped_but_takes_no_turns", &[1]);
    }
    micros_since_epoch();
    watched("a spinning callback at GOMAXPROCS=1", || {
        run(|| {
            let done = Arc::new(AtomicBool::new(false));
            let d = done.clone();
            // Stop requests, as the collector sends them, all along.
            let requester = std::thread::spawn(move || {
                while !d.load(Ordering::Relaxed) {
                    preempt_running_for_test(false);
                    std::thread::sleep(Duration::from_millis(1));
                }
            });
            let before = preempt_stats();
            let a = spawn(|| {
                let mut v = vec![2i64, 1];
                qsort_spinning(&mut v);
                v
            });
            // Waits in the queue while the callback spins: a turn there
            // could end on another P, which the callback path cannot take.
            let b = spawn(micros_since_epoch);
            let sorted = a.join();
            let b_started = b.join();
            done.store(true, Ordering::Relaxed);
            requester.join().expect("the request thread");
            let after = preempt_stats();
            let ended = CALLBACK_END.load(Ordering::Relaxed);
            println!(
                "callback ended at {ended} µs, the waiting task started at {b_started} µs; {before:?} -> {after:?}"
            );
            assert_eq!(sorted, [1, 2]);
            assert!(ended > 0, "the comparator did not spin");
            assert!(after.stops > before.stops, "the spinning callback was never stopped: {after:?}");
            assert_eq!(after.turns, before.turns, "a callback from C took a turn");
            assert!(b_started >= ended, "the waiting task ran while the callback held the only P");
        })
    });
}

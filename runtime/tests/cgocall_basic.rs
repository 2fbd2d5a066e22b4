//! `cgocall`: real libc functions called through it, the state a C call
//! runs in (g0 stack, P in the syscall state, counters, `nocallback`),
//! backtraces from inside C that reach the managed callers, and bad input.
//!
//! Each C function is reached the way the call layer reaches it: an
//! `extern "C"` trampoline that unpacks a frame, calls C, stores the result.

mod sched_util;

use cgocheck::cgocall::{cgocall, NoCallback};
use cgocheck::sched::{current_m_stats, stats};
use cgocheck::{current_task, heap, lock_os_thread, run, spawn, unlock_os_thread, ManagedMemory, Region};
use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Calls `tramp` with `frame` through cgocall, as if the C function were
/// declared `#[nocallback]` when `nocallback` is true.
fn call<T>(tramp: unsafe extern "C" fn(*mut c_void), frame: &mut T, nocallback: bool) {
    static NAMED: NoCallback = NoCallback("probe");
    // SAFETY: each trampoline below takes a frame of the type it is given.
    unsafe { cgocall(tramp, frame as *mut T as *mut c_void, nocallback.then_some(&NAMED)) }
}

/// What a trampoline saw from inside the C call.
#[derive(Default)]
struct Probe {
    ncgo: u32,
    nocallback: bool,
    task: Option<u64>,
    local: usize,
    ps_in_c: usize,
    pid: i32,
}

unsafe extern "C" fn probe(frame: *mut c_void) {
    // SAFETY: the caller passes a Probe.
    let p = unsafe { &mut *(frame as *mut Probe) };
    let m = current_m_stats().expect("a C call runs on an M");
    p.ncgo = m.ncgo;
    p.nocallback = m.nocallback;
    p.task = m.task;
    let local = 0u8;
    p.local = std::hint::black_box(&local) as *const u8 as usize;
    p.ps_in_c = stats().ps_in_c;
    // SAFETY: getpid has no preconditions.
    p.pid = unsafe { libc::getpid() };
}

#[test]
fn a_c_call_runs_on_the_thread_stack_with_the_p_in_syscall_and_counters_up() {
    run(|| {
        lock_os_thread(); // same M throughout, so its counters are ours
        let before = current_m_stats().unwrap();
        let mut p = Probe::default();
        call(probe, &mut p, true);
        assert_eq!(p.pid, std::process::id() as i32);
        assert_eq!(p.ncgo, 1, "C depth inside the call");
        assert!(p.nocallback, "nocallback recorded for the call");
        assert_eq!(p.task, Some(current_task().id()), "the M still names its task");
        assert!(p.ps_in_c >= 1, "our P is in the syscall state during the call");
        assert!(
            matches!(heap().region(p.local), Region::NotManaged),
            "C ran on a task stack: local at {:#x} is {:?}",
            p.local,
            heap().region(p.local)
        );
        let after = current_m_stats().unwrap();
        assert_eq!((after.ncgo, after.nocallback), (0, false), "counters back at rest");
        assert_eq!(after.ncgocall, before.ncgocall + 1);
        call(probe, &mut p, false);
        assert!(!p.nocallback);
        for _ in 0..1000 {
            call(probe, &mut p, false);
        }
        assert_eq!(current_m_stats().unwrap().ncgocall, before.ncgocall + 1002);
        unlock_os_thread();
    });
}

/// qsort: C that calls a C-ABI comparator, on the g0 stack.
struct Sort {
    items: Vec<i64>,
}

extern "C" fn cmp_i64(a: *const c_void, b: *const c_void) -> i32 {
    // SAFETY: qsort passes pointers to two elements of the i64 array.
    let (a, b) = unsafe { (*(a as *const i64), *(b as *const i64)) };
    a.cmp(&b) as i32
}

unsafe extern "C" fn sort_tramp(frame: *mut c_void) {
    // SAFETY: the caller passes a Sort.
    let s = unsafe { &mut *(frame as *mut Sort) };
    // SAFETY: a valid array of `len` i64s and a matching comparator.
    unsafe { libc::qsort(s.items.as_mut_ptr().cast(), s.items.len(), 8, Some(cmp_i64)) };
}

#[test]
fn libc_functions_work_through_cgocall_from_many_tasks() {
    run(|| {
        let hs: Vec<_> = (0..64i64)
            .map(|t| {
                spawn(move || {
                    let mut s = Sort { items: (0..500).map(|i| (i * 7919 + t) % 1009).collect() };
                    call(sort_tramp, &mut s, true);
                    s.items.windows(2).all(|w| w[0] <= w[1])
                })
            })
            .collect();
        assert!(hs.into_iter().all(|h| h.join()));
    });
}

#[test]
fn cgocall_outside_a_task_is_refused_clearly() {
    // This test's thread never entered run.
    let mut p = Probe::default();
    let e = catch_unwind(AssertUnwindSafe(|| call(probe, &mut p, false))).unwrap_err();
    let msg = e.downcast_ref::<&str>().unwrap();
    assert!(msg.contains("called outside a task: start the runtime with cgocheck::run"), "{msg}");
    assert_eq!(p.pid, 0, "the C function must not have run");
}

#[test]
fn cgocall_before_the_runtime_started_is_refused_clearly() {
    if sched_util::is_child() {
        let mut p = Probe::default();
        call(probe, &mut p, false);
        unreachable!("cgocall ran outside the runtime");
    }
    sched_util::child_fails(
        "cgocall_before_the_runtime_started_is_refused_clearly",
        &[],
        101,
        &["called outside a task: start the runtime with cgocheck::run"],
    );
}

#[test]
fn a_null_function_pointer_is_refused_clearly() {
    run(|| {
        // Rust cannot make a null fn pointer soundly; C can hand one over
        // (an unresolved weak symbol, a failed dlsym). Reproduce that.
        // SAFETY: only to test the check; the value is never called.
        let null: unsafe extern "C" fn(*mut c_void) = unsafe { std::mem::transmute(std::hint::black_box(0usize)) };
        let mut p = Probe::default();
        let e = catch_unwind(AssertUnwindSafe(|| call(null, &mut p, false))).unwrap_err();
        assert_eq!(e.downcast_ref::<&str>(), Some(&"cgocheck::cgocall: the C function pointer is null"));
        // The runtime is unharmed: the next call works.
        call(probe, &mut p, false);
        assert_eq!(p.pid, std::process::id() as i32);
    });
}

/// What a backtrace from inside C saw.
struct Trace {
    std: String,
    pcs: [usize; 64],
    n: usize,
}

unsafe extern "C" fn trace_from_c(frame: *mut c_void) {
    // SAFETY: the caller passes a Trace.
    let t = unsafe { &mut *(frame as *mut Trace) };
    // The unwinder panics use (libgcc's), with names from the DWARF.
    t.std = format!("{:?}", std::backtrace::Backtrace::force_capture());
    // glibc's backtrace(): return addresses only.
    // SAFETY: `pcs` has room for 64 entries.
    t.n = unsafe { libc::backtrace(t.pcs.as_mut_ptr().cast(), 64) } as usize;
}

#[inline(never)]
fn managed_caller_of_c() -> (Trace, [usize; 64], usize) {
    let mut here = [0usize; 64];
    // SAFETY: `here` has room for 64 entries.
    let n_here = unsafe { libc::backtrace(here.as_mut_ptr().cast(), 64) } as usize;
    let mut t = Trace { std: String::new(), pcs: [0; 64], n: 0 };
    call(trace_from_c, &mut t, false);
    std::hint::black_box(&mut t);
    (t, here, n_here)
}

#[test]
fn a_backtrace_inside_c_shows_the_managed_callers() {
    run(|| {
        let (t, here, n_here) = spawn(managed_caller_of_c).join();
        // Names: C frame, the switch, then the managed frames on the task
        // stack down to the task's first frame.
        let order = ["trace_from_c", "asmcgocall", "cgocall", "managed_caller_of_c", "task_main", "task_bootstrap"];
        let mut at = 0;
        for name in order {
            match t.std[at..].find(name) {
                Some(i) => at += i + name.len(),
                None => panic!("{name} missing (or out of order) in the backtrace from C:\n{}", t.std),
            }
        }
        // glibc's walk: it must end exactly like the walk made on the task
        // stack before the call (the callers of managed_caller_of_c), so it
        // crossed from the g0 stack into the task stack and went all the
        // way down.
        let theirs = &here[1..n_here];
        assert!(theirs.len() >= 3, "too short a walk on the task stack: {theirs:x?}");
        assert!(t.n > theirs.len() + 3, "glibc's walk from C stopped early: {:x?}", &t.pcs[..t.n]);
        assert_eq!(&t.pcs[t.n - theirs.len()..t.n], theirs, "glibc's walk from C did not reach the task's frames");
    });
}

#[test]
fn gdb_walks_from_c_into_the_task_stack() {
    if sched_util::is_child() {
        run(|| spawn(gdb_managed_caller).join());
        return;
    }
    if std::process::Command::new("gdb").arg("--version").output().is_err() {
        // CI installs gdb (.ci/run): there, a missing gdb is a failure, not a skip.
        assert!(std::env::var_os("CI").is_none(), "gdb is missing under CI; .ci/run installs it");
        eprintln!("gdb is not installed: skipping the gdb walk (the backtrace tests still run)");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new("gdb")
        .args([
            "-nx",
            "-batch",
            "-ex",
            "set debuginfod enabled off",
            "-ex",
            "break cgocheck_test_gdb_probe",
            "-ex",
            "run",
            "-ex",
            "bt",
            "-ex",
            "kill",
            "--args",
        ])
        .arg(&exe)
        .args(["gdb_walks_from_c_into_the_task_stack", "--exact", "--nocapture", "--test-threads=1"])
        .env("SCHED_TEST_CHILD", "1")
        .output()
        .expect("run gdb");
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let bt = &text[text.find("#0").unwrap_or_else(|| panic!("no backtrace from gdb:\n{text}"))..];
    // asmcgocall is marked as a signal frame (so that gdb accepts the jump
    // between stacks), which gdb prints as "<signal handler called>".
    let order = [
        "cgocheck_test_gdb_probe",
        "<signal handler called>",
        "cgocall",
        "gdb_managed_caller",
        "task_main",
        "task_bootstrap",
    ];
    let mut at = 0;
    for name in order {
        match bt[at..].find(name) {
            Some(i) => at += i + name.len(),
            None => panic!("gdb's backtrace lacks {name} (or has it out of order):\n{bt}"),
        }
    }
    assert!(!bt.contains("corrupt stack") && !bt.contains("Backtrace stopped"), "gdb gave up:\n{bt}");
}

/// The "C function" gdb stops in: a named, unmangled symbol.
///
/// # Safety
/// None needed: it only looks at its argument.
#[no_mangle]
#[inline(never)]
pub unsafe extern "C" fn cgocheck_test_gdb_probe(frame: *mut c_void) {
    std::hint::black_box(frame);
}

#[inline(never)]
fn gdb_managed_caller() {
    let mut x = 0u8;
    call(cgocheck_test_gdb_probe, &mut x, false);
    std::hint::black_box(&mut x);
}

unsafe extern "C" fn park_inside_c(_frame: *mut c_void) {
    // Managed code reached from C without a callback switching stacks: it
    // must not block here (the scheduler would run over the C frames).
    cgocheck::park();
}

#[test]
fn blocking_on_the_c_stack_is_refused_clearly() {
    if sched_util::is_child() {
        run(|| call(park_inside_c, &mut 0u8, false));
        unreachable!();
    }
    let out = sched_util::child("blocking_on_the_c_stack_is_refused_clearly", &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{}", sched_util::text(&out));
    assert!(err.contains("tried to block"), "{}", sched_util::text(&out));
}

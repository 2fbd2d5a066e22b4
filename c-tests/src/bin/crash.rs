//! The crash binary: `crash CASE` crashes in one particular way, so that the
//! suites under `tests/crash_*.rs` can run it as a child process and read
//! the report it prints (stderr) and its exit status.
//!
//! Every case ends the process: a fatal signal, handled by the runtime's
//! crash handler (exit status 2, or SIGABRT at `GOTRACEBACK=crash`), or a
//! fatal panic; except `signal_storm`, a busy program that ends normally
//! once its stdin is closed, and `stack_dump` and `callback_tasks`, which
//! print what they saw and exit with status 0. The fatal-path cases call
//! csrc/crash_fatal.c.
//!
//! The binary's global allocator is [`NoAllocAfterCrash`]: once the runtime
//! has begun handling a fatal signal on a thread
//! (`cgocheck::signal::crash_in_progress`), any allocation on that thread
//! prints `crash: allocation during crash handling` and exits
//! with status 99. So every crash case doubles as the proof that the
//! handler allocates nothing; the symboliser it starts is a fresh process
//! (this binary again) where the flag is clear.
//!
//! The C half is csrc/crash.c: `deref` ← `crash_in_c`, as in Go's anchor
//! program (shared/anchors/go/crash.go.txt). It is called two ways: plainly
//! (`extern "C"`, from the main thread, as a C program would) and through
//! the runtime's checked call layer from tasks (`checked::crash_in_c`:
//! `cgocall`, so the C frames run on the M's g0 stack and the report
//! continues with the task's managed frames).

// The c-tests library carries the static library of csrc/ (build.rs).
use c_tests as _;
use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_int;
use std::hint::black_box;

/// The system allocator, refusing to serve anyone once crash handling has
/// begun.
struct NoAllocAfterCrash;

impl NoAllocAfterCrash {
    fn refuse_during_crash() {
        if cgocheck::signal::crash_in_progress() {
            let msg = b"crash: allocation during crash handling\n";
            // SAFETY: writing a static message to stderr, then ending the
            // process: plain system calls.
            unsafe {
                libc::write(2, msg.as_ptr().cast(), msg.len());
                libc::_exit(99);
            }
        }
    }
}

// SAFETY: every method defers to `System` after the check, which never
// returns when it refuses.
unsafe impl GlobalAlloc for NoAllocAfterCrash {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::refuse_during_crash();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::refuse_during_crash();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::refuse_during_crash();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::refuse_during_crash();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: NoAllocAfterCrash = NoAllocAfterCrash;

// csrc/crash.c
extern "C" {
    fn crash_in_c() -> c_int;
    fn crash_on_c_thread() -> c_int;
    fn abort_in_c();
    // csrc/crash_thread_overflow.c
    fn overflow_on_c_thread_after_callback() -> c_int;
    fn call_back_on_c_threads(n: c_int) -> c_int;
    fn divide_in_c(a: c_int, b: c_int) -> c_int;
    // csrc/crash_fatal.c
    fn crash_fatal_register_atexit();
    fn crash_fatal_call_panicking_export();
    fn crash_fatal_catch_abort(returns: c_int);
    fn crash_fatal_abort_handler_is_ours() -> c_int;
    fn crash_fatal_profs() -> c_int;
}

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("c", c),
    ("c_thread", c_thread),
    ("c_thread_overflow", c_thread_overflow),
    ("c_thread_overflow_after_many", c_thread_overflow_after_many),
    ("abort", abort),
    ("divide", divide),
    ("task_stack_overflow", task_stack_overflow),
    ("timed", timed),
    ("alloc_in_handler", alloc_in_handler),
    ("c_in_task", c_in_task),
    ("c_in_spawned_task", c_in_spawned_task),
    ("nested", nested),
    ("panic_in_task", panic_in_task),
    ("task_overflow", task_overflow),
    ("callback_panic_main_thread", callback_panic_main_thread),
    ("callback_panic_c_thread", callback_panic_c_thread),
    ("export_body", export_body),
    ("abort_caught_late", abort_caught_late),
    ("abort_caught_late_returns", abort_caught_late_returns),
    ("abort_caught_early", abort_caught_early),
    ("signal_storm", signal_storm),
    ("stack_dump", stack_dump),
    ("callback_tasks", callback_tasks),
    ("panic_into_c", panic_into_c),
];

fn main() {
    let (name, case) = c_tests::harness::chosen_case("crash", CASES);
    case();
    eprintln!("crash: case {name} returned instead of crashing");
    std::process::exit(4);
}

/// The managed caller of the crashing C function, kept out of line so the
/// report shows it by name between the C frames and `main`.
#[inline(never)]
fn call_crash_in_c() -> c_int {
    // SAFETY: crash_in_c takes no arguments; it crashes by design.
    black_box(unsafe { crash_in_c() })
}

/// Go's `./crash c`: a NULL dereference in `deref` ← `crash_in_c`, called
/// from the main thread.
fn c() {
    println!("{}", call_crash_in_c());
}

/// The same crash on a pthread the C code creates: a thread the runtime
/// never saw, with no task and no alternate signal stack.
fn c_thread() {
    // SAFETY: no arguments; crashes by design.
    unsafe { crash_on_c_thread() };
}

/// A pthread the C code creates calls back into managed code once
/// (`crashCallbackNoop`, binding it an extra M), then overflows its stack
/// in C. The report says so, with the thread's C frames, rather than the
/// process dying of a bare SIGSEGV for want of an alternate signal stack.
fn c_thread_overflow() {
    // SAFETY: no arguments; overflows by design.
    unsafe { overflow_on_c_thread_after_callback() };
}

/// 100 C threads call back once and exit, one after another; then the
/// same overflow as `c_thread_overflow`, on a thread that gets a reused
/// extra M. Prints on stdout how many more mappings the process has after
/// the 100 than after the first one: each thread's alternate stack is
/// mapped when it binds its M and must be unmapped when it releases it.
fn c_thread_overflow_after_many() {
    let mappings = || std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps").lines().count();
    // SAFETY: plain integer argument; the threads call crashCallbackNoop.
    assert_eq!(unsafe { call_back_on_c_threads(1) }, 0, "pthread_create");
    let before = mappings();
    // SAFETY: as above.
    assert_eq!(unsafe { call_back_on_c_threads(100) }, 0, "pthread_create");
    println!("mappings grew by {}", mappings() as i64 - before as i64);
    c_thread_overflow();
}

cgocheck::export! {
    /// Called once by the overflowing C thread, so that it has bound an
    /// extra M before it overflows.
    fn crashCallbackNoop() {
        black_box(0);
    }
}

/// `abort()` in C: SIGABRT.
fn abort() {
    // SAFETY: no arguments; aborts by design.
    unsafe { abort_in_c() };
}

/// An integer division by zero in C: SIGFPE.
fn divide() {
    // SAFETY: plain integers; faults by design.
    black_box(unsafe { divide_in_c(black_box(1), black_box(0)) });
}

/// A real overflow of a task stack from the heap's stack hook: run a
/// recursive function on a 64 KiB stack from `Heap::alloc_stack` (task id
/// 7), switched to with `makecontext`/`swapcontext` as a stand-in for the
/// scheduler's context switch, until it runs into the guard page.
fn task_stack_overflow() {
    let stack = cgocheck::heap().alloc_stack(64 * 1024, 7);
    let mut here = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    let mut task = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    // SAFETY: `task` is initialised by getcontext, pointed at the task
    // stack (live: never freed) and given an entry that takes no
    // arguments; swapcontext saves here and runs it.
    unsafe {
        libc::getcontext(task.as_mut_ptr());
        let t = &mut *task.as_mut_ptr();
        t.uc_stack.ss_sp = stack.lo as *mut libc::c_void;
        t.uc_stack.ss_size = stack.hi - stack.lo;
        t.uc_link = here.as_mut_ptr();
        libc::makecontext(task.as_mut_ptr(), recurse_entry, 0);
        libc::swapcontext(here.as_mut_ptr(), task.as_ptr());
    }
}

extern "C" fn recurse_entry() {
    black_box(recurse(black_box(0)));
}

/// Uses 1 KiB of stack per call, until the stack runs out.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    let mut pad = [0u8; 1024];
    pad[depth as usize % 1024] = depth as u8;
    black_box(&mut pad);
    recurse(depth + 1) + pad[0] as u64
}

/// For the `crash_report_ms` benchmark: prints CLOCK_MONOTONIC in ns on
/// stdout (flushed) just before the crash, so the parent can measure from
/// the signal to the end of the report.
fn timed() {
    use std::io::Write;
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is writable.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", ts.tv_sec as u128 * 1_000_000_000 + ts.tv_nsec as u128);
    let _ = out.flush();
    drop(out);
    call_crash_in_c();
}

/// The control for the allocator proof: a crash view whose `current()`
/// allocates (breaking the `CrashView` contract), so the handler's path
/// does allocate once. The allocator must catch it (exit 99), which shows
/// that the other cases' clean exits mean something.
fn alloc_in_handler() {
    use cgocheck::signal::{set_crash_view, CrashView, CurrentThread, TaskInfo};
    struct AllocatingView;
    impl CrashView for AllocatingView {
        fn current(&self) -> Option<CurrentThread> {
            black_box(Box::new(0u64));
            None
        }
        fn for_each_task(&self, _visit: &mut dyn FnMut(&TaskInfo)) {}
    }
    static VIEW: AllocatingView = AllocatingView;
    set_crash_view(&VIEW);
    call_crash_in_c();
}

/// The C functions called through the runtime's call layer (`cgocall`).
mod checked {
    use std::ffi::c_int;
    cgocheck::c_functions! {
        extern "C" {
            pub fn crash_in_c() -> c_int;
            pub fn callback_then_crash();
            pub fn crash_fatal_panic_on_c_thread() -> c_int;
            pub fn crash_fatal_call_crashing_export();
            pub fn crash_fatal_dump_from_c();
            pub fn crash_fatal_count_on_c_thread() -> c_int;
        }
    }
}

cgocheck::export! {
    /// Go's `goBack`: called by C (`callback_then_crash`), calls the
    /// crashing C function.
    fn goBack() {
        task_calls_c();
    }
}

/// Go's `./crash nested`: task → C → exported `goBack` → C crash.
fn nested() {
    cgocheck::run(|| {
        // SAFETY: callback_then_crash takes nothing; it calls goBack.
        unsafe { checked::callback_then_crash() };
    });
}

/// A task's managed caller of the crashing C function.
#[inline(never)]
fn task_calls_c() -> c_int {
    // SAFETY: crash_in_c takes no arguments; it crashes by design.
    black_box(unsafe { checked::crash_in_c() })
}

/// Go's `./crash c` from the main task of `cgocheck::run`.
fn c_in_task() {
    cgocheck::run(|| {
        task_calls_c();
    });
}

/// The crash from a spawned task, while another task sleeps and the main
/// task waits in `join` (both shown at `GOTRACEBACK=all`). The crashing
/// task first sleeps 200 ms so that the other two have parked by then.
fn c_in_spawned_task() {
    cgocheck::run(|| {
        let _sleeper = cgocheck::spawn(|| cgocheck::sleep(std::time::Duration::from_secs(60)));
        cgocheck::spawn(|| {
            cgocheck::sleep(std::time::Duration::from_millis(200));
            task_calls_c();
        })
        .join();
    });
}

/// An unrecovered panic in a detached task.
fn panic_in_task() {
    cgocheck::run(|| {
        drop(cgocheck::spawn(task_panics));
        cgocheck::sleep(std::time::Duration::from_secs(60));
    });
}

#[inline(never)]
fn task_panics() {
    let tries = black_box(3);
    if tries > 2 {
        panic!("the task gave up after {tries} tries");
    }
}

/// A real task of the scheduler overflows its stack (16 KiB, the
/// smallest `CGOCHECK_STACK_KB`).
fn task_overflow() {
    cgocheck::run(|| {
        cgocheck::spawn_with_stack(16 * 1024, || {
            black_box(recurse(black_box(0)));
        })
        .join();
    });
}

cgocheck::export! {
    /// Panics; called by C with no managed caller (csrc/crash_fatal.c).
    fn GoPanicNoCaller() {
        let tries = black_box(3);
        panic!("the callback gave up after {tries} tries"); // crash_fatal: the panicking line
    }

    /// Dereferences NULL in its own body; called by C from a task.
    fn GoCrashInBody() {
        let p: *const c_int = black_box(std::ptr::null());
        // SAFETY: none: it crashes by design.
        black_box(unsafe { std::ptr::read_volatile(p) }); // crash_fatal: the faulting line
    }
}

/// The panicking export called from the main thread before anything
/// started the runtime, as from a C `main`. An `atexit` handler is
/// registered first: a dying process must not run it.
fn callback_panic_main_thread() {
    // SAFETY: no arguments; the export panics by design.
    unsafe {
        crash_fatal_register_atexit();
        crash_fatal_call_panicking_export();
    }
}

/// The panicking export called on a C thread, while the main task waits
/// in C for that thread and another task sleeps (shown at `all`).
fn callback_panic_c_thread() {
    // SAFETY: no arguments.
    unsafe { crash_fatal_register_atexit() };
    cgocheck::run(|| {
        let _sleeper = cgocheck::spawn(|| cgocheck::sleep(std::time::Duration::from_secs(60)));
        cgocheck::sleep(std::time::Duration::from_millis(100));
        // SAFETY: no arguments; the thread's callback panics by design.
        unsafe { checked::crash_fatal_panic_on_c_thread() };
    });
}

/// A task calls C, which calls the export whose body dereferences NULL.
fn export_body() {
    cgocheck::run(|| {
        // SAFETY: no arguments; crashes by design.
        unsafe { checked::crash_fatal_call_crashing_export() };
    });
}

/// A C handler catches SIGABRT (and exits 0), installed after the runtime
/// started; then the anchor crash.
fn abort_caught_late() {
    // SAFETY: installs a C signal handler.
    unsafe { crash_fatal_catch_abort(0) };
    call_crash_in_c();
}

/// As `abort_caught_late`, with a handler that returns.
fn abort_caught_late_returns() {
    // SAFETY: installs a C signal handler.
    unsafe { crash_fatal_catch_abort(1) };
    call_crash_in_c();
}

/// The C handler was installed before the runtime started
/// (`CRASH_FATAL_EARLY_SIGABRT=1`): the runtime left it in place.
fn abort_caught_early() {
    // SAFETY: reads the SIGABRT disposition.
    if unsafe { crash_fatal_abort_handler_is_ours() } != 1 {
        eprintln!("crash: the C SIGABRT handler installed before the runtime is not in place");
        std::process::exit(5);
    }
    call_crash_in_c();
}

/// A busy program for a storm of signals the runtime does not handle
/// (SIGPROF, SIGURG...): prints `ready`, then two tasks compute and
/// print numbered lines, one of them through C calls, until stdin is
/// closed; then `done <lines> <SIGPROFs counted by a C handler installed
/// before the runtime, if any>`, and exit status 0.
fn signal_storm() {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    static STOP: AtomicBool = AtomicBool::new(false);
    /// Workers that have done one round: `ready` waits for both, so that a
    /// signal sent after it finds them started (their closures on their
    /// stacks), however loaded the machine.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    cgocheck::run(|| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                cgocheck::spawn(move || {
                    let mut n = 0u64;
                    while !STOP.load(Ordering::Relaxed) {
                        let sum: u64 = (0..20_000u64).map(|i| black_box(i * w)).sum();
                        // SAFETY: plain integer arguments.
                        let q = unsafe { divide_in_c(black_box(84), 2) };
                        println!("w{w} {n} {sum} {q}");
                        if n == 0 {
                            STARTED.fetch_add(1, Ordering::SeqCst);
                        }
                        n += 1;
                        cgocheck::sleep(std::time::Duration::from_micros(200));
                    }
                    n
                })
            })
            .collect();
        while STARTED.load(Ordering::SeqCst) < 2 {
            cgocheck::sleep(std::time::Duration::from_millis(1));
        }
        println!("ready");
        std::io::stdout().flush().expect("flush stdout");
        let mut rest = Vec::new();
        std::io::stdin().read_to_end(&mut rest).expect("read stdin to its end");
        STOP.store(true, Ordering::Relaxed);
        let lines: u64 = workers.into_iter().map(|h| h.join()).sum();
        // SAFETY: reads a counter.
        println!("done {lines} {}", unsafe { crash_fatal_profs() });
    });
    std::process::exit(0);
}

/// What `GoCountTasks` saw (`stats().tasks` inside a C thread's callback).
static TASKS_IN_CALLBACK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

cgocheck::export! {
    /// Prints `cgocheck::stack_dump` for this task, then for all.
    fn GoDumpStacks() {
        println!("{}=== all", cgocheck::stack_dump(false));
        println!("{}=== end", cgocheck::stack_dump(true));
    }

    /// Records `stats().tasks` as a callback on a C thread sees it.
    fn GoCountTasks() {
        TASKS_IN_CALLBACK.store(cgocheck::sched::stats().tasks, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `stack_dump` from a callback (task → C → export) while another task
/// sleeps; the program goes on afterwards and exits with status 0.
fn stack_dump() {
    cgocheck::run(|| {
        let _sleeper = cgocheck::spawn(|| cgocheck::sleep(std::time::Duration::from_secs(60)));
        cgocheck::sleep(std::time::Duration::from_millis(100));
        // SAFETY: no arguments; calls GoDumpStacks.
        unsafe { checked::crash_fatal_dump_from_c() };
        println!("still running");
    });
    std::process::exit(0);
}

/// `stats().tasks` before, during (from a callback on a C thread) and
/// after that callback, printed as `tasks BEFORE DURING AFTER`.
fn callback_tasks() {
    cgocheck::run(|| {
        let _sleeper = cgocheck::spawn(|| cgocheck::sleep(std::time::Duration::from_secs(60)));
        cgocheck::sleep(std::time::Duration::from_millis(50));
        let before = cgocheck::sched::stats().tasks;
        // SAFETY: no arguments; the thread calls GoCountTasks.
        assert_eq!(unsafe { checked::crash_fatal_count_on_c_thread() }, 0, "pthread_create");
        let during = TASKS_IN_CALLBACK.load(std::sync::atomic::Ordering::SeqCst);
        println!("tasks {before} {during} {}", cgocheck::sched::stats().tasks);
    });
    std::process::exit(0);
}

/// A task's panic reaches an `extern "C"` function, which it may not
/// unwind out of: std aborts the process (SIGABRT, reported).
fn panic_into_c() {
    cgocheck::run(|| panics_in_extern_c());
}

extern "C" fn panics_in_extern_c() {
    let n = black_box(7);
    panic!("no unwinding through C, {n}"); // crash_fatal: the aborting panic
}

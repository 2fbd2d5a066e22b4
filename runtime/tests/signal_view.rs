//! The crash report's task sections, driven through a stand-in scheduler.
//!
//! The real scheduler will register a `CrashView`; until then (and to pin
//! the contract down) this suite registers a fake one and makes the shapes
//! the scheduler will produce, with real stacks and real signals:
//!
//! - a "task" that entered C: its registers are saved with `getcontext`
//!   (as `cgocall` saves them), then the crashing "C" code runs on another
//!   stack (a `makecontext` stack standing in for the M's g0 stack, as
//!   `asmcgocall` switches to it). The report must print the frames on
//!   that stack, then the task's managed frames walked from the saved
//!   registers, with `signal arrived during cgo execution`;
//! - a waiting task parked on another thread (its registers saved the same
//!   way), shown only at `GOTRACEBACK=all`, and a running one, shown
//!   without frames;
//! - an unrecovered panic in a task, reported by `report_fatal_panic` from
//!   the frames the panic hook captured.
//!
//! Each scenario runs in a child process (this test binary started again
//! with `SIGNAL_SCENARIO` set and only the `child` test selected), because
//! it ends the process.

use cgocheck::signal::{self, CrashView, CurrentThread, SavedRegs, TaskInfo, TaskState};
use std::hint::black_box;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

/// Runs `scenario` in a child process and returns what it did.
fn run(scenario: &str, gotraceback: &str) -> (Output, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env("SIGNAL_SCENARIO", scenario)
        .env("GOTRACEBACK", gotraceback)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, stderr)
}

/// The lines of `text` from the first starting with `from` up to the next
/// blank line.
fn section<'a>(text: &'a str, from: &str) -> Vec<&'a str> {
    text.lines().skip_while(|l| !l.starts_with(from)).take_while(|l| !l.is_empty()).collect()
}

/// Function lines (not location lines) of a section, in order.
fn functions<'a>(section: &[&'a str]) -> Vec<&'a str> {
    section.iter().skip(1).filter(|l| !l.starts_with('\t')).copied().collect()
}

fn position(fns: &[&str], name: &str) -> usize {
    fns.iter().position(|f| f.contains(name)).unwrap_or_else(|| panic!("no frame {name} in {fns:#?}"))
}

#[test]
fn a_task_in_c_shows_its_c_frames_then_its_managed_callers() {
    let (out, err) = run("in_c", "single");
    assert_eq!(out.status.code(), Some(2), "{err}");
    let head: Vec<&str> = err.lines().take(3).collect();
    assert_eq!(head[0], "SIGSEGV: segmentation violation", "{err}");
    assert!(head[1].starts_with("PC=0x") && head[1].contains(" m=3 sigcode=1 addr=0x0"), "{err}");
    assert_eq!(head[2], "signal arrived during cgo execution", "{err}");
    let task = section(&err, "task 1 ");
    assert_eq!(task[0], "task 1 [syscall, locked to thread]:", "{err}");
    let fns = functions(&task);
    // The "C" frames on the g0 stand-in stack first, then the managed
    // frames from the registers saved at the call, in call order.
    let deref = position(&fns, "signal_view::deref_null");
    let c = position(&fns, "signal_view::crash_on_g0");
    let caller = position(&fns, "signal_view::enter_c");
    let scenario = position(&fns, "signal_view::child");
    assert!(deref < c && c < caller && caller < scenario, "{fns:#?}");
    // Every frame has its source line.
    assert!(task[1..].iter().filter(|l| l.starts_with('\t')).all(|l| l.contains(".rs:") || l.contains("+0x")), "{err}");
    // Single: no other task.
    assert!(!err.contains("task 2 "), "{err}");
}

#[test]
fn gotraceback_all_adds_the_other_tasks() {
    let (out, err) = run("in_c", "all");
    assert_eq!(out.status.code(), Some(2), "{err}");
    let waiting = section(&err, "task 2 ");
    assert_eq!(waiting[0], "task 2 [sleep]:", "{err}");
    let fns = functions(&waiting);
    position(&fns, "signal_view::park_here");
    let running = section(&err, "task 3 ");
    assert_eq!(running, ["task 3 [running]:", "\ttask running on another thread; stack unavailable"], "{err}");
}

#[test]
fn gotraceback_none_prints_the_signal_only() {
    let (out, err) = run("in_c", "none");
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.starts_with("SIGSEGV: segmentation violation\nPC="), "{err}");
    assert!(err.contains("signal arrived during cgo execution") && !err.contains("task 1"), "{err}");
}

#[test]
fn an_unrecovered_panic_in_a_task_is_reported_from_where_it_panicked() {
    let (out, err) = run("panic", "single");
    assert_eq!(out.status.code(), Some(2), "{err}");
    let at = err.find("panic: the task gave up").unwrap_or_else(|| panic!("{err}"));
    let task = section(&err[at..], "task 1 ");
    assert_eq!(task[0], "task 1 [running]:", "{err}");
    let fns = functions(&task);
    // The hook and std's panicking functions are skipped: the first frame
    // is the function that panicked.
    assert!(fns[0].contains("signal_view::give_up"), "{fns:#?}");
    position(&fns, "signal_view::task_body");
}

// ---- the child side ------------------------------------------------------

/// The thread the fake scheduler runs task 1 on.
static TASK_THREAD: AtomicI32 = AtomicI32::new(0);
/// The tasks, set up before the crash.
static TASKS: OnceLock<[TaskInfo; 3]> = OnceLock::new();

fn gettid() -> i32 {
    // SAFETY: no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// The stand-in scheduler's view: task 1 runs on `TASK_THREAD` as M 3.
struct FakeView;

impl CrashView for FakeView {
    fn current(&self) -> Option<CurrentThread> {
        if gettid() != TASK_THREAD.load(Ordering::Relaxed) {
            return None;
        }
        Some(CurrentThread { m: 3, task: TASKS.get().map(|t| t[0]) })
    }
    fn for_each_task(&self, visit: &mut dyn FnMut(&TaskInfo)) {
        for t in TASKS.get().into_iter().flatten() {
            visit(t);
        }
    }
}

static VIEW: FakeView = FakeView;

/// Registers captured with getcontext: the pc is getcontext's return
/// address in the caller, as the view's contract asks.
fn saved_regs(uc: &libc::ucontext_t) -> SavedRegs {
    let g = &uc.uc_mcontext.gregs;
    SavedRegs {
        pc: g[libc::REG_RIP as usize] as usize,
        sp: g[libc::REG_RSP as usize] as usize,
        fp: g[libc::REG_RBP as usize] as usize,
    }
}

/// The usable range of the calling thread's stack.
fn this_thread_stack() -> (usize, usize) {
    // SAFETY: pthread_getattr_np fills `attr` for the calling thread;
    // getstack reads it; destroy frees it.
    unsafe {
        let mut attr = std::mem::zeroed::<libc::pthread_attr_t>();
        assert_eq!(libc::pthread_getattr_np(libc::pthread_self(), &mut attr), 0);
        let mut addr = std::ptr::null_mut();
        let mut size = 0;
        libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        (addr as usize, addr as usize + size)
    }
}

#[test]
fn child() {
    let Ok(scenario) = std::env::var("SIGNAL_SCENARIO") else { return };
    signal::set_crash_view(&VIEW);
    match scenario.as_str() {
        "in_c" => enter_c(),
        "panic" => panic_in_task(),
        other => panic!("unknown scenario {other}"),
    }
}

/// Parks forever after saving its registers for task 2.
#[inline(never)]
fn park_here(slot: &OnceLock<SavedRegs>) {
    let mut uc = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    // SAFETY: `uc` is writable storage for a ucontext_t.
    unsafe { libc::getcontext(uc.as_mut_ptr()) };
    // SAFETY: filled by getcontext.
    let _ = slot.set(saved_regs(unsafe { uc.assume_init_ref() }));
    loop {
        std::thread::park();
    }
}

/// Task 1: save registers as cgocall would, then run the "C" function on
/// another stack (the g0 stand-in) with the task marked as in C.
#[inline(never)]
fn enter_c() {
    static PARKED: OnceLock<SavedRegs> = OnceLock::new();
    std::thread::spawn(|| park_here(&PARKED));
    while PARKED.get().is_none() {
        std::thread::yield_now();
    }

    let g0 = vec![0u8; 256 * 1024].leak();
    let mut here = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    let mut c = std::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
    // SAFETY: getcontext saves this frame's registers (the task's
    // registers at "cgocall"); `c` is pointed at the leaked g0 stand-in
    // and an entry without arguments, and swapcontext runs it.
    unsafe {
        libc::getcontext(here.as_mut_ptr());
        let saved = saved_regs(here.assume_init_ref());
        let stack = this_thread_stack();
        let task = |id, state, regs, locked| TaskInfo { id, state, locked, regs, stack };
        let _ = TASKS.set([
            task(1, TaskState::Syscall, Some(saved), true),
            task(2, TaskState::Waiting("sleep"), PARKED.get().copied(), false),
            task(3, TaskState::Running, None, false),
        ]);
        TASK_THREAD.store(gettid(), Ordering::Relaxed);
        libc::getcontext(c.as_mut_ptr());
        let cref = &mut *c.as_mut_ptr();
        cref.uc_stack.ss_sp = g0.as_mut_ptr().cast();
        cref.uc_stack.ss_size = g0.len();
        cref.uc_link = here.as_mut_ptr();
        libc::makecontext(c.as_mut_ptr(), crash_on_g0, 0);
        libc::swapcontext(here.as_mut_ptr(), c.as_ptr());
    }
}

extern "C" fn crash_on_g0() {
    black_box(deref_null(black_box(std::ptr::null())));
}

#[inline(never)]
fn deref_null(p: *const i32) -> i32 {
    // SAFETY: not safe at all: the NULL read is the crash under test.
    unsafe { p.read_volatile() }
}

/// Task 1 panics; its trampoline catches it and reports it.
fn panic_in_task() {
    signal::install_panic_hook();
    TASK_THREAD.store(gettid(), Ordering::Relaxed);
    let stack = this_thread_stack();
    let _ = TASKS.set([
        TaskInfo { id: 1, state: TaskState::Running, locked: false, regs: None, stack },
        TaskInfo { id: 2, state: TaskState::Runnable, locked: false, regs: None, stack: (0, 0) },
        TaskInfo { id: 3, state: TaskState::Runnable, locked: false, regs: None, stack: (0, 0) },
    ]);
    if let Err(payload) = std::panic::catch_unwind(task_body) {
        signal::report_fatal_panic(1, &*payload);
    }
}

#[inline(never)]
fn task_body() {
    black_box(give_up(black_box(3)));
}

#[inline(never)]
fn give_up(n: u32) -> u32 {
    if n > 2 {
        panic!("the task gave up after {n} tries");
    }
    n
}

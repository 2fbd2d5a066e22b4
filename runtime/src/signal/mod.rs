//! Fatal signals and crash reports.
//!
//! When C code called from a task dereferences NULL, Go prints the signal,
//! `signal arrived during cgo execution`, and the goroutine's Go frames —
//! but no C frame, unless the program registers a symboliser. We print the
//! C frames too, with file and line, in call order before their managed
//! callers. The whole story of a crash:
//!
//! 1. **At start** (an `.init_array` constructor, before `main` and before
//!    a C `main` calls in, like `check.rs` reads `CGOCHECK`): if this
//!    process is a symboliser (below), do that and exit; read
//!    `GOTRACEBACK` (`level.rs`; a bad value is an error naming the
//!    accepted ones, exit status 2); look up the loader's lock-free module
//!    finder (`cgocheck_traceback::init`); find the main executable's path
//!    (`exe.rs`: `/proc/self/exe`, or without `/proc` the loader's
//!    `AT_EXECFN`); install [`on_fatal_signal`] for
//!    the signals Go's table makes fatal (SIGSEGV, SIGBUS, SIGFPE, SIGILL,
//!    SIGABRT, SIGTRAP, SIGQUIT, SIGSTKFLT, SIGSYS) and a handler that
//!    returns for the ones it ignores (SIGPROF, SIGPIPE...,
//!    `table.rs`) wherever their disposition is still the default, with
//!    `SA_ONSTACK`; claim SIGURG for asynchronous preemption (forwarding
//!    any other SIGURG to the disposition that was there before,
//!    `table.rs` and `gc/preempt.rs`); and give the
//!    main thread an alternate signal stack (`altstack.rs`; the
//!    scheduler gives its worker threads one when it starts them, and
//!    [`AltStack::for_this_thread`] does it for any other thread).
//! 2. **The signal** arrives on the crashing thread. The handler first
//!    records that this thread is handling a fatal signal
//!    ([`crash_in_progress`]: a test's allocator aborts if the thread
//!    allocates from then on), then claims the crash: the first thread to
//!    crash reports, a second one waits to be ended with the process, and
//!    a fault inside the handler itself ends the process at once.
//! 3. **Collection** (`report.rs`), async-signal-safe: the signal lines,
//!    then per task (from the scheduler's [`CrashView`], `view.rs`) or for
//!    the bare thread, the frames walked from the signal's registers and
//!    from tasks' saved registers (both ends of a deep stack: the
//!    innermost 32 and the outermost 16), each with its module and load bias,
//!    as wire records in a static 1 MiB buffer. No lock, no allocation.
//! 4. **Symbolisation** (`symbolizer.rs`): a child process — this same
//!    executable, started again — reads the records from a pipe, finds
//!    each frame's function, file:line and inlined calls in the DWARF, and
//!    prints the report. If it cannot, the handler prints the frames as
//!    module+offset itself.
//! 5. **The end**: exit status 2 by `_exit`, as Go (no exit handler runs);
//!    at `GOTRACEBACK=crash`, `SIGABRT` instead, with whatever handler is
//!    installed then (a C crash reporter's), else its default action, for
//!    a core file ([`die`]).
//!
//! An unrecovered panic in a task, or in a callback with no managed
//! caller, gets the same report (`panic.rs`), made and symbolised in the
//! process itself: there is no signal, so nothing forbids allocating. The
//! same pieces give [`stack_dump`] (Go's `runtime.Stack`) to a running
//! program.
//!
//! What the handler calls is limited to system calls, atomics, `core::fmt`
//! into fixed buffers, the traceback crate's collection half, the heap's
//! lock-free guard-page lookup, and the scheduler's [`CrashView`] (whose
//! contract says the same).

mod altstack;
mod exe;
mod level;
mod panic;
mod report;
mod symbolizer;
mod table;
mod view;

pub use altstack::AltStack;
pub use level::{traceback, Traceback};
pub use panic::{install_panic_hook, report_fatal_callback_panic, report_fatal_panic, stack_dump};
pub use view::{set_crash_view, CrashView, CurrentThread, SavedRegs, TaskInfo, TaskState};

use cgocheck_traceback::wire::Writer;
use cgocheck_traceback::Regs;
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicI32, Ordering};

/// The thread id of the first thread to enter the fatal-signal handler
/// (0: none), set first thing.
static SIGNAL_TID: AtomicI32 = AtomicI32::new(0);

/// The thread id reporting a crash (0: none).
static OWNER: AtomicI32 = AtomicI32::new(0);

/// Whether the calling thread is handling a fatal signal. Nothing may
/// allocate there (other threads go on allocating until the process
/// ends). A test binary's global allocator asks this on every allocation
/// to prove that the handler does not allocate. (A fatal panic's report is
/// made outside any signal handler and may allocate; it does not count.)
pub fn crash_in_progress() -> bool {
    let tid = SIGNAL_TID.load(Ordering::SeqCst);
    tid != 0 && tid == gettid()
}

/// Runs at program start; see the file comment, step 1.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[used]
#[link_section = ".init_array"]
static AT_START: extern "C" fn() = {
    extern "C" fn at_start() {
        symbolizer::run_if_symbolizer();
        level::read_at_start();
        cgocheck_traceback::init();
        exe::find_at_start();
        symbolizer::read_wait_at_start();
        install_handlers();
        AltStack::for_this_thread().keep();
    }
    at_start
};

/// Installs [`on_fatal_signal`] for every fatal signal whose disposition
/// is still the default (a handler someone else installed first is left
/// in place), the ignoring handler for the signals Go ignores, and the
/// preemption handler for SIGURG (`table.rs`).
fn install_handlers() {
    // SA_NODEFER: a fault inside the handler re-enters it (and is
    // recognised as such) instead of killing the process silently.
    let flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
    for sig in table::FATAL {
        table::install_if_default(sig, on_fatal_signal as *const () as libc::sighandler_t, flags);
    }
    table::install_ignored();
    table::install_preempt();
}

/// The buffer the crash owner writes the report into: a static, because
/// the handler may not allocate and the alternate stack is small.
struct CrashBuffers {
    report: UnsafeCell<[u8; 1 << 20]>,
}

// SAFETY: only the thread that won `claim` touches them.
unsafe impl Sync for CrashBuffers {}

static BUFFERS: CrashBuffers = CrashBuffers { report: UnsafeCell::new([0; 1 << 20]) };

fn gettid() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// Makes the calling thread the one reporting the crash, or never returns:
/// a second crashing thread waits for the first to end the process, and a
/// crash of the reporting thread itself (inside the handler) ends it now.
fn claim_crash() {
    let tid = gettid();
    match OWNER.compare_exchange(0, tid, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => {}
        Err(owner) if owner == tid => {
            cgocheck_traceback::write_fd(2, b"fatal error: unexpected signal while printing a crash report\n");
            die()
        }
        Err(_) => loop {
            // SAFETY: sleeping until the reporting thread ends the process.
            unsafe { libc::pause() };
        },
    }
}

/// Ends the process after a report: `SIGABRT` at `GOTRACEBACK=crash`,
/// exit status 2 otherwise (`_exit`: no `atexit` handler or destructor
/// runs in a dying process).
///
/// `SIGABRT` is raised with the handler installed at that moment left in
/// place, as Go's `dieFromSignal` does: a C crash reporter or a test
/// harness that catches it gets control. Only when that handler is ours
/// (it would report again) or returns does the default action take over,
/// for a core file where the system writes one.
fn die() -> ! {
    if traceback() == Traceback::Crash {
        // SAFETY: reading and setting SIGABRT's disposition, unblocking it
        // and sending it to this thread: plain system calls.
        unsafe {
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
            libc::sigemptyset(set.as_mut_ptr());
            libc::sigaddset(set.as_mut_ptr(), libc::SIGABRT);
            libc::sigprocmask(libc::SIG_UNBLOCK, set.as_ptr(), std::ptr::null_mut());
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(libc::SIGABRT, std::ptr::null(), &mut old);
            let foreign = old.sa_sigaction != libc::SIG_DFL
                && old.sa_sigaction != libc::SIG_IGN
                && old.sa_sigaction != on_fatal_signal as *const () as libc::sighandler_t;
            if foreign {
                // The handler runs on this thread before tgkill returns;
                // if it returns, the default action follows.
                libc::syscall(libc::SYS_tgkill, libc::getpid(), gettid(), libc::SIGABRT);
            }
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGABRT, &act, std::ptr::null_mut());
            libc::syscall(libc::SYS_tgkill, libc::getpid(), gettid(), libc::SIGABRT);
        }
    }
    // SAFETY: ends the process without running atexit handlers or
    // destructors, which may need what crashed.
    unsafe { libc::_exit(2) }
}

/// The fatal-signal handler (see the file comment, steps 2–5).
extern "C" fn on_fatal_signal(sig: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    let _ = SIGNAL_TID.compare_exchange(0, gettid(), Ordering::SeqCst, Ordering::SeqCst);
    claim_crash();
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler.
    let (code, addr, regs) = unsafe { ((*info).si_code, (*info).si_addr() as usize, Regs::from_ucontext(ucontext)) };
    // SAFETY: as above: a valid ucontext.
    let (gregs, write) = unsafe { report::general_registers(ucontext) };
    let fault = report::Fault { sig, code, addr, regs, tid: gettid(), gregs, write };
    // SAFETY: this thread owns the crash (`claim_crash`), so it alone
    // uses the buffer, once.
    let report_buf = unsafe { &mut *BUFFERS.report.get() };
    let mut w = Writer::new(report_buf, exe::path().to_bytes());
    report::signal_report(&mut w, &fault, traceback());
    symbolizer::print(w.finish());
    die()
}

//! What the runtime does with each signal: Go's table
//! (`runtime/sigtab_linux_generic.go`), less what Go does only for
//! `os/signal` (there is no `signal.Notify` here).
//!
//! | Go's flags | signals | here |
//! |---|---|---|
//! | `_SigPanic`, `_SigThrow` | SEGV, BUS, FPE, ILL, TRAP, ABRT, QUIT, STKFLT, SYS | a crash report ([`super::on_fatal_signal`]) |
//! | `_SigNotify` alone | USR1, USR2, PIPE, ALRM, XCPU, XFSZ, VTALRM, PROF, IO, PWR, 35–64 | ignored: Go's handler returns when no one asked to be notified, where the default action would kill the process |
//! | `_SigIgn` | CHLD, WINCH | ignored (their default action already is) |
//! | `_SigNotify`, `_SigIgn`, Go's `sigPreempt` | URG | asynchronous preemption ([`on_sigurg`], `gc/preempt.rs`); any other SIGURG goes to the handler that was there before, else is ignored |
//! | `_SigKill` | HUP, INT, TERM | left at the default action: the process dies of the signal |
//! | `_SigDefault`, none | CONT, TSTP, TTIN, TTOU, KILL, STOP, 32–34 (the C library's own) | left alone |
//!
//! "Ignored" is a handler that returns, installed with `SA_RESTART` (so a
//! system call it interrupts goes on instead of failing with `EINTR`) and
//! `SA_ONSTACK`, never `SIG_IGN`: an ignored disposition would be
//! inherited by the programs this one starts, a handler is reset to the
//! default by `exec`, as in Go.
//!
//! A handler installed before the runtime starts (by a C constructor, or
//! a disposition inherited as `SIG_IGN`) is left in place for every
//! signal but SIGURG (below), so it gets its signals directly: the effect of Go's `sigfwd`,
//! which forwards a signal to the handler that was there before Go's. One
//! installed after the runtime replaces the runtime's, as in Go.
//!
//! `SIGURG` is the runtime's own, as Go's `sigPreempt`: the collector and
//! the monitor send it to preempt a task that runs without reaching a
//! safepoint (`gc/preempt.rs`). Its handler is installed whatever was
//! there before; the previous disposition is kept, and every SIGURG that
//! is not one of the runtime's requests (out-of-band socket data, a
//! `kill`, a `raise`) is forwarded to it: a handler the program installed
//! before the runtime is called from the runtime's (so with the runtime's
//! flags and signal mask, on the alternate stack where the thread has
//! one), and an ignored or default disposition (both ignore SIGURG)
//! ignores it. The runtime's
//! requests are told apart by what only it sends: `SI_QUEUE` from this
//! process with the runtime's cookie as the value. A handler installed
//! *after* the runtime replaces its own, as in Go: tasks are then no
//! longer preempted asynchronously, and a collection waits for a task in
//! a loop without safepoints to leave it.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// The signals whose default action ends the process with a core file
/// and that Go's runtime turns into a crash report (`_SigPanic`,
/// `_SigThrow`).
pub(super) const FATAL: [i32; 9] = [
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGQUIT,
    libc::SIGSTKFLT,
    libc::SIGSYS,
];

/// The signals Go ignores unless the program asked to be notified
/// (`_SigNotify` alone, or `_SigIgn`), the real-time ones and SIGURG
/// (preemption's) aside.
const IGNORED: [i32; 12] = [
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGPIPE,
    libc::SIGALRM,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
    libc::SIGCHLD,
    libc::SIGWINCH,
];

/// The real-time signals Go ignores (35 to 64; 32 to 34 are the C
/// library's).
const IGNORED_RT: std::ops::RangeInclusive<i32> = 35..=64;

/// Installs `handler` for `sig` with `flags` if its disposition is still
/// the default; says whether it did.
pub(super) fn install_if_default(sig: i32, handler: libc::sighandler_t, flags: i32) -> bool {
    // SAFETY: sigaction with a zeroed (then filled) struct; querying
    // first, replacing only the default disposition.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 || old.sa_sigaction != libc::SIG_DFL {
            return false;
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = handler;
        act.sa_flags = flags;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut()) == 0
    }
}

/// Installs the ignoring handler for every signal Go ignores, where the
/// disposition is still the default. At start.
pub(super) fn install_ignored() {
    let flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    for sig in IGNORED.into_iter().chain(IGNORED_RT) {
        install_if_default(sig, on_ignored_signal as *const () as libc::sighandler_t, flags);
    }
}

/// The handler of an ignored signal: returns at once (touching nothing,
/// so `errno` is as it was).
extern "C" fn on_ignored_signal(_sig: libc::c_int, _info: *mut libc::siginfo_t, _ucontext: *mut libc::c_void) {}

/// SIGURG's disposition before the runtime claimed it: the handler
/// (or `SIG_DFL`/`SIG_IGN`), written once at start before ours is
/// installed.
static URG_PREVIOUS: AtomicUsize = AtomicUsize::new(libc::SIG_DFL);
/// The previous handler's `sa_flags` (whether it takes a `siginfo_t`).
static URG_PREVIOUS_FLAGS: AtomicI32 = AtomicI32::new(0);

/// Claims SIGURG for preemption (module comment), keeping the previous
/// disposition to forward to. At start.
pub(super) fn install_preempt() {
    crate::gc::preempt::init();
    // SAFETY: sigaction with zeroed (then filled) structs: read the old
    // disposition, then install ours.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGURG, std::ptr::null(), &mut old) != 0 {
            return;
        }
        URG_PREVIOUS.store(old.sa_sigaction, Ordering::Relaxed);
        URG_PREVIOUS_FLAGS.store(old.sa_flags, Ordering::Relaxed);
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_sigurg as *const () as libc::sighandler_t;
        act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(libc::SIGURG, &act, std::ptr::null_mut());
    }
}

/// The SIGURG handler: a preemption request of the runtime's is handled by
/// `gc/preempt.rs`; any other SIGURG is forwarded to the disposition that
/// was there before (module comment). Async-signal-safe: atomics, the
/// M's state, `getpid`, and an edit of the signal context.
extern "C" fn on_sigurg(sig: libc::c_int, info: *mut libc::siginfo_t, ucontext: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo and ucontext to an
    // SA_SIGINFO handler, and this is the SIGURG handler.
    if unsafe { crate::gc::preempt::on_signal(info, ucontext) } {
        return;
    }
    let previous = URG_PREVIOUS.load(Ordering::Relaxed);
    if previous == libc::SIG_DFL || previous == libc::SIG_IGN {
        // SIGURG's default action is to ignore it.
        return;
    }
    if URG_PREVIOUS_FLAGS.load(Ordering::Relaxed) & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous disposition was installed with SA_SIGINFO,
        // so it is a three-argument handler; we pass what we were given.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(previous) };
        f(sig, info, ucontext);
    } else {
        // SAFETY: without SA_SIGINFO the previous disposition is a
        // one-argument handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(previous) };
        f(sig);
    }
}

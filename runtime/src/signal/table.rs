//! What the runtime does with each signal: Go's table
//! (`runtime/sigtab_linux_generic.go`), less what Go does only for
//! `os/signal` (there is no `signal.Notify` here).
//!
//! | Go's flags | signals | here |
//! |---|---|---|
//! | `_SigPanic`, `_SigThrow` | SEGV, BUS, FPE, ILL, TRAP, ABRT, QUIT, STKFLT, SYS | a crash report ([`super::on_fatal_signal`]) |
//! | `_SigNotify` alone | USR1, USR2, PIPE, ALRM, XCPU, XFSZ, VTALRM, PROF, IO, PWR, 35–64 | ignored: Go's handler returns when no one asked to be notified, where the default action would kill the process |
//! | `_SigIgn` | CHLD, URG, WINCH | ignored (their default action already is) |
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
//! signal, so it gets its signals directly: the effect of Go's `sigfwd`,
//! which forwards a signal to the handler that was there before Go's. One
//! installed after the runtime replaces the runtime's, as in Go.
//!
//! `SIGURG` is ignorable and forwardable for now; a collector that
//! preempts tasks asynchronously will claim it, as Go's does (`sigPreempt`).

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
/// (`_SigNotify` alone, or `_SigIgn`), the real-time ones aside.
const IGNORED: [i32; 13] = [
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
    // Asynchronous preemption will claim this one.
    libc::SIGURG,
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

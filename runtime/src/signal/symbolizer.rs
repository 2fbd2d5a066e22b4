//! Symbolising a crash report in a fresh process.
//!
//! Turning addresses into function names and lines means reading DWARF,
//! which allocates; the crashed process's allocator may be the thing that
//! crashed, or be locked by the thread that did. So the handler only
//! collects addresses (async-signal-safe) and hands them to a new process:
//!
//! 1. `socketpair`, then a raw `clone(SIGCHLD)` system call — not glibc's
//!    `fork()`, which runs `pthread_atfork` handlers and takes the
//!    allocator's locks in the parent;
//! 2. the child, using only system calls, puts its end of the socket on
//!    its stdin, unblocks all signals and `execve`s the executable
//!    (`exe.rs`: found at start, so `/proc` is not needed now) — this
//!    very program — with the parent's environment plus
//!    `CGOCHECK_SYMBOLIZER=1`;
//! 3. in the new image the runtime's start-up constructor sees the marker
//!    before anything else ([`run_if_symbolizer`]), reads the report from
//!    stdin, symbolises and formats it (`cgocheck_traceback::render`),
//!    then sends one byte back on stdin — "I am printing it now" — and
//!    writes the report to stderr (inherited from the crashed process) and
//!    exits 0 — before `main`, and before any of the runtime's other
//!    start-up work;
//! 4. meanwhile the handler writes the report into the socket, shuts its
//!    sending side and waits for that byte, at most 10 s. Once it has come
//!    the child owns the printing: the handler waits for it to exit however
//!    long stderr takes to drain (a slow reader, a full pipe), and never
//!    prints the report itself.
//!
//! If the byte does not come — the executable is gone, the child crashes
//! or hangs while symbolising — the handler kills the child and prints the
//! report itself with no symbols (`render_raw`: module+offset per frame,
//! async-signal-safe). So each report is printed exactly once: by the
//! child after its byte, or by the handler when there was none. (Waiting a
//! fixed time for the child to *finish*, as this did before, printed the
//! report twice when stderr drained slowly: the symbolised start, then the
//! whole report raw.) A report with no frames at all (`GOTRACEBACK=none`)
//! is printed raw directly.
//!
//! `CGOCHECK_SYMBOLIZER_WAIT_MS` (internal, a test hook) shortens the 10 s
//! wait for the byte, so that a test can show a slow reader does not
//! cause a second print.
//!
//! Caveat for C programs linking the runtime: the symboliser is the whole
//! program started again, so the program's own start-up constructors run
//! in it too before ours exits.

use cgocheck_checker::env::{self, Var};
use cgocheck_traceback::wire::{records, Record};
use cgocheck_traceback::{render, render_raw, write_fd, Symbolizer};
use core::ffi::c_char;
use std::cell::UnsafeCell;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment entry that makes a process the symboliser.
const MARKER: &str = "CGOCHECK_SYMBOLIZER";

/// How long the crashed process waits for the symboliser to say it is
/// printing, unless the test hook says otherwise.
const WAIT_MS: u64 = 10_000;

/// The test hook that shortens [`WAIT_MS`].
const WAIT_HOOK: Var = Var {
    name: "CGOCHECK_SYMBOLIZER_WAIT_MS",
    expected: "a wait in milliseconds",
    accepted: "integers from 1 to 600000 (an internal test hook; unset: 10000)",
};

/// The wait in force, read at start.
static WAIT: AtomicU64 = AtomicU64::new(WAIT_MS);

/// The byte the symboliser sends when it starts printing.
const PRINTING: u8 = b'!';

/// Entries of the child's environment (including the marker and the
/// terminating null); a larger environment is cut.
const ENV_MAX: usize = 1024;

/// If this process was started as a symboliser, does that job and exits;
/// otherwise returns at once. First thing at start.
pub(super) fn run_if_symbolizer() {
    if std::env::var_os(MARKER).is_none_or(|v| v != "1") {
        return;
    }
    let mut input = Vec::new();
    let _ = std::io::stdin().lock().read_to_end(&mut input);
    let mut out = String::new();
    render(&input, &mut out, &mut Symbolizer::new());
    // From here on the report is ours to print; the crashed process waits
    // for us however long stderr takes.
    write_fd(0, &[PRINTING]);
    write_fd(2, out.as_bytes());
    // SAFETY: ends this process, which has done its only job; nothing of
    // `main` has run.
    unsafe { libc::_exit(0) }
}

/// The child's argument and environment vectors, built at crash time
/// without allocating. Only the thread that owns the crash touches it.
struct ChildVectors(UnsafeCell<[*const c_char; ENV_MAX]>);

// SAFETY: used only by the one thread that won the crash claim
// (`super::claim`), never concurrently.
unsafe impl Sync for ChildVectors {}

static ENVP: ChildVectors = ChildVectors(UnsafeCell::new([std::ptr::null(); ENV_MAX]));

extern "C" {
    /// The process environment (POSIX `environ`).
    static environ: *const *const c_char;
}

/// Reads the test hook [`WAIT_HOOK`]; a bad value prints the error and
/// exits with status 2. Called once, at start.
pub(super) fn read_wait_at_start() {
    let read = || -> Result<Option<i32>, env::EnvError> {
        env::read(&WAIT_HOOK)?.map(|v| env::int_in(&WAIT_HOOK, &v, 1..=600_000)).transpose()
    };
    match read() {
        Ok(ms) => WAIT.store(ms.map_or(WAIT_MS, |ms| ms as u64), Ordering::Relaxed),
        Err(e) => {
            eprintln!("cgocheck: {e}");
            std::process::exit(2)
        }
    }
}

/// Prints the report `report` (wire text) on stderr, once: symbolised by a
/// child process when it has frames, raw otherwise. Async-signal-safe;
/// called by the crash owner only.
pub(super) fn print(report: &[u8]) {
    let has_frames = records(report).any(|r| matches!(r, Record::Frame(_)));
    if !has_frames || !symbolize_in_child(report) {
        render_raw(report, 2);
    }
}

/// Runs the symboliser on `report`; true when the child took over the
/// printing (whether or not it finished: it may have printed part).
fn symbolize_in_child(report: &[u8]) -> bool {
    let exe = super::exe::path();
    if exe.is_empty() {
        return false;
    }
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0 {
        return false;
    }
    let [ours, childs] = fds;
    let envp = child_environment();
    let argv: [*const c_char; 2] = [c"cgocheck-symbolizer".as_ptr(), std::ptr::null()];
    // SAFETY: a raw clone with only SIGCHLD is fork without glibc's atfork
    // handlers; the child below makes only system calls until execve.
    let pid = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_long, 0, 0, 0, 0) };
    if pid == 0 {
        // SAFETY: in the child: system calls on our own descriptors and
        // mask, then execve with NUL-terminated vectors that live in this
        // (copied) address space; `_exit` if the exec fails.
        unsafe {
            libc::dup2(childs, 0);
            let mut none = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
            libc::sigemptyset(none.as_mut_ptr());
            libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
            libc::execve(exe.as_ptr(), argv.as_ptr(), envp);
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the child's end.
    unsafe { libc::close(childs) };
    if pid < 0 {
        // SAFETY: our descriptor.
        unsafe { libc::close(ours) };
        return false;
    }
    ignore_sigpipe();
    write_fd(ours, report);
    // SAFETY: our descriptor; shutting its sending side is the child's
    // end of input (the socket stays open for the child's byte).
    unsafe { libc::shutdown(ours, libc::SHUT_WR) };
    let printing = wait_for_printing(pid as libc::pid_t, ours);
    // SAFETY: our descriptor.
    unsafe { libc::close(ours) };
    printing
}

/// `environ` with the marker put first, in the static vector.
fn child_environment() -> *const *const c_char {
    // SAFETY: only the crash owner runs this (see `ChildVectors`).
    let envp = unsafe { &mut *ENVP.0.get() };
    envp[0] = c"CGOCHECK_SYMBOLIZER=1".as_ptr();
    let mut n = 1;
    // SAFETY: `environ` is the C library's null-terminated array of
    // NUL-terminated strings; it is read, not changed.
    unsafe {
        let mut p = environ;
        while !p.is_null() && !(*p).is_null() && n < ENV_MAX - 1 {
            let entry = *p;
            if !starts_with(entry, MARKER.as_bytes()) {
                envp[n] = entry;
                n += 1;
            }
            p = p.add(1);
        }
    }
    envp[n] = std::ptr::null();
    envp.as_ptr()
}

/// Whether the C string `s` starts with `prefix`.
///
/// # Safety
/// `s` is a NUL-terminated string.
unsafe fn starts_with(s: *const c_char, prefix: &[u8]) -> bool {
    for (i, &b) in prefix.iter().enumerate() {
        // SAFETY: stops at the first mismatch, the NUL included, so no read
        // goes past the string's end.
        if unsafe { *s.add(i) } as u8 != b {
            return false;
        }
    }
    true
}

/// A symboliser that stops reading would turn our write into SIGPIPE;
/// ignore it so the write fails instead (we exit soon anyway).
fn ignore_sigpipe() {
    // SAFETY: a zeroed sigaction with SIG_IGN is a valid disposition.
    unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_IGN;
        libc::sigaction(libc::SIGPIPE, &act, std::ptr::null_mut());
    }
}

/// Waits up to the wait in force for the symboliser `pid` to send
/// [`PRINTING`] on `sock`. When it does, waits for it to exit, however
/// long that takes, and returns true (a child that then fails has printed
/// part of the report: that is said in one line, the report is not
/// printed again). When it exits, closes the socket or runs out of time
/// without sending it, it is reaped (killed first if need be) and the
/// result is false.
fn wait_for_printing(pid: libc::pid_t, sock: i32) -> bool {
    let mut sock_open = true;
    for _ in 0..WAIT.load(Ordering::Relaxed) {
        if sock_open {
            let mut pfd = libc::pollfd { fd: sock, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd; waits at most 1 ms.
            if unsafe { libc::poll(&mut pfd, 1, 1) } > 0 {
                let mut byte = 0u8;
                // SAFETY: reading one byte into `byte`.
                let n = unsafe { libc::read(sock, (&mut byte as *mut u8).cast(), 1) };
                if n == 1 && byte == PRINTING {
                    if !reap(pid, 0).unwrap_or(true) {
                        write_fd(2, b"\nfatal error: the crash report's symboliser failed while printing it\n");
                    }
                    return true;
                }
                if n == 0 {
                    sock_open = false;
                }
            }
        } else {
            // SAFETY: sleeping with a valid timespec; an early wake-up is fine.
            unsafe { libc::nanosleep(&libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 }, std::ptr::null_mut()) };
        }
        if reap(pid, libc::WNOHANG).is_some() {
            return false;
        }
    }
    // SAFETY: our own child, which has not been reaped.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    reap(pid, 0);
    false
}

/// `waitpid(pid, flags)`: `Some(exited with status 0)` once the child is
/// reaped (`Some(true)` if someone else reaped it: a process that ignores
/// SIGCHLD), `None` while it runs (with `WNOHANG`) or on an error.
fn reap(pid: libc::pid_t, flags: i32) -> Option<bool> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is writable; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            return Some(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
        }
        if r < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ECHILD) => return Some(true),
                _ => return None,
            }
        }
        return None;
    }
}

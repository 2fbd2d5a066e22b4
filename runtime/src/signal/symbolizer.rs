//! Symbolising a crash report in a fresh process.
//!
//! Turning addresses into function names and lines means reading DWARF,
//! which allocates; the crashed process's allocator may be the thing that
//! crashed, or be locked by the thread that did. So the handler only
//! collects addresses (async-signal-safe) and hands them to a new process:
//!
//! 1. `pipe2`, then a raw `clone(SIGCHLD)` system call — not glibc's
//!    `fork()`, which runs `pthread_atfork` handlers and takes the
//!    allocator's locks in the parent;
//! 2. the child, using only system calls, puts the pipe on its stdin,
//!    unblocks all signals and `execve`s `/proc/self/exe` — this very
//!    program — with the parent's environment plus
//!    `CGOCHECK_SYMBOLIZER=1`;
//! 3. in the new image the runtime's start-up constructor sees the marker
//!    before anything else ([`run_if_symbolizer`]), reads the report from
//!    stdin, symbolises and formats it (`cgocheck_traceback::render`),
//!    writes it to stderr (inherited from the crashed process) in one go,
//!    and exits 0 — before `main`, and before any of the runtime's other
//!    start-up work;
//! 4. meanwhile the handler writes the report into the pipe, closes it and
//!    waits for the child (polling `waitpid`, at most 10 s).
//!
//! If any of this fails — no `/proc`, the executable is gone, the child
//! crashes or hangs — the handler prints the report itself with no symbols
//! (`render_raw`: module+offset per frame, async-signal-safe). A report
//! with no frames at all (`GOTRACEBACK=none`) is printed that way directly.
//!
//! Caveat for C programs linking the runtime: the symboliser is the whole
//! program started again, so the program's own start-up constructors run
//! in it too before ours exits.

use cgocheck_traceback::wire::{records, Record};
use cgocheck_traceback::{render, render_raw, write_fd, Symbolizer};
use core::ffi::c_char;
use std::cell::UnsafeCell;
use std::io::Read;

/// The environment entry that makes a process the symboliser.
const MARKER: &str = "CGOCHECK_SYMBOLIZER";

/// How long the crashed process waits for the symboliser.
const WAIT_MS: u64 = 10_000;

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

/// Prints the report `report` (wire text) on stderr, symbolised by a child
/// process when it has frames, raw otherwise. Async-signal-safe; called by
/// the crash owner only.
pub(super) fn print(report: &[u8]) {
    let has_frames = records(report).any(|r| matches!(r, Record::Frame(_)));
    if !has_frames || !symbolize_in_child(report) {
        render_raw(report, 2);
    }
}

/// Runs the symboliser on `report`; true when it ran to completion.
fn symbolize_in_child(report: &[u8]) -> bool {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return false;
    }
    let [read_end, write_end] = fds;
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
            libc::dup2(read_end, 0);
            let mut none = std::mem::MaybeUninit::<libc::sigset_t>::zeroed();
            libc::sigemptyset(none.as_mut_ptr());
            libc::sigprocmask(libc::SIG_SETMASK, none.as_ptr(), std::ptr::null_mut());
            libc::execve(c"/proc/self/exe".as_ptr(), argv.as_ptr(), envp);
            libc::_exit(127);
        }
    }
    // SAFETY: closing our copy of the child's end.
    unsafe { libc::close(read_end) };
    if pid < 0 {
        // SAFETY: our descriptor.
        unsafe { libc::close(write_end) };
        return false;
    }
    ignore_sigpipe();
    write_fd(write_end, report);
    // SAFETY: our descriptor; closing it is the child's end of input.
    unsafe { libc::close(write_end) };
    wait_ok(pid as libc::pid_t)
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

/// Waits for `pid` up to [`WAIT_MS`]; true if it exited with status 0 (or
/// was reaped by someone else: a process that ignores SIGCHLD).
fn wait_ok(pid: libc::pid_t) -> bool {
    let tick = libc::timespec { tv_sec: 0, tv_nsec: 1_000_000 };
    for _ in 0..WAIT_MS {
        let mut status = 0;
        // SAFETY: `status` is writable; `pid` is our child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if r < 0 {
            let err = std::io::Error::last_os_error().raw_os_error();
            if err == Some(libc::ECHILD) {
                return true;
            }
            if err != Some(libc::EINTR) {
                return false;
            }
        }
        // SAFETY: sleeping with a valid timespec; an early wake-up is fine.
        unsafe { libc::nanosleep(&tick, std::ptr::null_mut()) };
    }
    // SAFETY: our own child, which has not been reaped.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut status = 0;
        libc::waitpid(pid, &mut status, 0);
    }
    false
}

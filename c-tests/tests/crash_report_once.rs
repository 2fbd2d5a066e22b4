//! How a report reaches stderr, in two unfriendly settings:
//!
//! - a reader that drains stderr slowly: the symboliser blocks writing the
//!   report into a full pipe, longer than the crashed process waits for
//!   it. The report must still be printed once, symbolised — not its
//!   symbolised start and then the whole report again raw;
//! - no `/proc` (a mount namespace where `/proc` is an empty tmpfs, made
//!   with `unshare`): the main executable's path comes from the loader's
//!   `AT_EXECFN`, so frames keep their module and the symboliser (the
//!   executable started again) still runs.

use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A pipe whose capacity is one page, the smallest Linux allows: a report
/// of a few KiB fills it.
fn small_pipe() -> (std::fs::File, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    // SAFETY: shrinking our own new pipe.
    let size = unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 4096) };
    assert!(size > 0 && size <= 8192, "F_SETPIPE_SZ gave {size}");
    // SAFETY: both descriptors are new and owned by nothing else.
    unsafe { (std::fs::File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Kills the process `pid` if it is still there after `secs` seconds, so a
/// hang fails the test instead of stalling it.
fn watchdog(pid: u32, secs: u64, what: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(secs));
        // SAFETY: a signal to our own child (if it is gone, nothing happens
        // or the test is already over).
        if unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0 {
            eprintln!("watchdog: {what} still running after {secs} s, killed");
        }
    });
}

#[test]
fn a_slow_reader_gets_the_report_once() {
    let (mut read_end, write_end) = small_pipe();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash"))
        .arg("c_in_spawned_task")
        // `system`: every task with the runtime's frames, a report of
        // several KiB.
        .env("GOTRACEBACK", "system")
        .env("CGOCHECK_SYMBOLIZER_WAIT_MS", "300")
        .env_remove("CGOCHECK")
        .env_remove("GODEBUG")
        .stdout(Stdio::null())
        .stderr(Stdio::from(write_end))
        .spawn()
        .expect("run the crash binary");
    watchdog(child.id(), 60, "crash c_in_spawned_task");
    // Read nothing for well over the crashed process's 300 ms wait: the
    // symboliser is stuck on the full pipe meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let mut err = String::new();
    read_end.read_to_string(&mut err).expect("read the report");
    let status = child.wait().unwrap();
    assert!(err.len() > 4096, "the report must overflow the pipe for this test to mean anything:\n{err}");
    assert_eq!(status.code(), Some(2), "{err}");
    assert_eq!(err.matches("SIGSEGV: segmentation violation").count(), 1, "printed more than once:\n{err}");
    assert!(err.contains("\nderef(...)\n") && err.contains("csrc/crash.c:"), "symbolised:\n{err}");
    assert!(!err.contains("symboliser failed"), "{err}");
}

#[test]
fn without_proc_frames_keep_their_module_and_symbols() {
    let probe =
        Command::new("unshare").args(["-rm", "sh", "-c", "mount -t tmpfs none /proc && ! test -e /proc/self"]).status();
    assert!(
        probe.as_ref().is_ok_and(|s| s.success()),
        "this test needs `unshare -rm` (util-linux, user namespaces) to hide /proc: {probe:?}"
    );
    let mut child = Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs none /proc && exec \"$0\" c"])
        .arg(env!("CARGO_BIN_EXE_crash"))
        .env_remove("GOTRACEBACK")
        .env_remove("CGOCHECK")
        .env_remove("GODEBUG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare");
    watchdog(child.id(), 60, "crash c without /proc");
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.starts_with("SIGSEGV: segmentation violation\nPC=0x"), "{err}");
    // Symbolised: the symboliser found the executable without /proc.
    assert!(err.contains("\nderef(...)\n") && err.contains("csrc/crash.c:"), "{err}");
    // No frame lost its module (an empty module prints as a bare `+0x…`).
    assert!(!err.lines().any(|l| l.starts_with("\t+0x")), "{err}");
}

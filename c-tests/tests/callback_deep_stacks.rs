//! Deep recursion in callbacks from fresh C threads (the `stacks` binary,
//! C half in csrc/callback_deep.c): 100 threads each recursing 10,000
//! frames in their callback run to the end, as in Go; a callback that
//! recurses without end is reported as its task's stack overflow. Each run
//! has a watchdog: past its limit the child is killed and the test fails
//! with what it printed.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `stacks CASE`; returns (exit code, stdout, stderr).
fn run(case: &str, limit: Duration) -> (Option<i32>, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stacks"))
        .arg(case)
        .env_remove("CGOCHECK")
        .env_remove("CGOCHECK_STACK_KB")
        .env_remove("GODEBUG")
        .env_remove("GOTRACEBACK")
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the stacks binary");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (drain(Box::new(c.stdout.take().unwrap())), drain(Box::new(c.stderr.take().unwrap())));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            c.kill().unwrap();
            c.wait().unwrap();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.is_some(), "watchdog: `stacks {case}` still running after {limit:?}, killed\n{out}\n{err}");
    (status.unwrap().code(), out, err)
}

#[test]
fn a_hundred_fresh_c_threads_recurse_ten_thousand_frames_in_callbacks() {
    let (code, out, err) = run("deep_callbacks", Duration::from_secs(120));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("deepest frame: "), "{out}");
}

#[test]
fn a_callback_recursing_without_end_is_a_stack_overflow_report() {
    let (code, out, err) = run("callback_overflow", Duration::from_secs(60));
    assert_eq!(code, Some(2), "{out}\n{err}");
    assert!(err.contains("overflowed its 16777216-byte stack"), "{err}");
    assert!(err.contains("fatal error: stack overflow") && err.contains("CGOCHECK_STACK_KB"), "{err}");
    assert!(err.contains("stacks::recurse_forever"), "the frames are shown:\n{err}");
}

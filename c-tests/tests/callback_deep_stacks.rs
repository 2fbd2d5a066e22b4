//! Deep recursion in callbacks from fresh C threads (the `stacks` binary,
//! C half in csrc/callback_deep.c): 100 threads each recursing 10,000
//! frames in their callback run to the end, as in Go; a callback that
//! recurses without end is reported as its task's stack overflow. Each run
//! has a watchdog: past its limit the child is killed and the test fails
//! with what it printed.

use std::process::Command;
use std::time::Duration;

/// Runs `stacks CASE` under the harness's watchdog with `limit`; returns
/// (exit code, stdout, stderr).
fn run(case: &str, limit: Duration) -> (Option<i32>, String, String) {
    let out = c_tests::harness::output_within(
        Command::new(env!("CARGO_BIN_EXE_stacks"))
            .arg(case)
            .env_remove("CGOCHECK")
            .env_remove("CGOCHECK_STACK_KB")
            .env_remove("GODEBUG")
            .env_remove("GOTRACEBACK")
            .env("RUST_BACKTRACE", "0"),
        limit,
    );
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
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

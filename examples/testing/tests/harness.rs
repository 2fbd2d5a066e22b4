//! Checked C calls under `cargo test`'s default parallel harness.
//!
//! `demo` holds tests as a user writes them, with `cgocheck::run_test`:
//! some pass, one expects a failed check with `#[should_panic]`, and two
//! fail on purpose (`#[ignore]`d, so the workspace's `cargo test` stays
//! green): a check that fails in a test, and a C call made outside the
//! runtime. The parent test, `each_failure_fails_its_test_only`, runs this
//! same test binary again as a child on the `demo` tests, ignored ones
//! included, and reads the harness's report: the two failing tests failed
//! with the checker's message (and the caller's line for the call outside
//! the runtime), every other test passed, and the child ended as a test
//! binary with failures does (status 101), not as a fatal panic (status
//! 2, what `cgocheck::run` does).

use cgocheck_example_testing::{pair_get, sum_ints, Pair};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod demo {
    use super::*;

    /// A managed `Pair` whose `p` points to a managed int.
    fn managed_pair() -> cgocheck::Gc<Pair> {
        let x = cgocheck::new(40);
        cgocheck::new(Pair { p: x.as_ptr(), n: 2 })
    }

    #[test]
    fn sum_of_a_managed_slice() {
        cgocheck::run_test(|| {
            let s = cgocheck::new_slice::<i32>(0);
            // SAFETY: nothing else references the new elements.
            let s = unsafe { s.append(&[1, 2, 3, 4]) };
            // SAFETY: 4 ints.
            assert_eq!(unsafe { sum_ints(cgocheck::slice_data(&s), s.len()) }, 10);
        });
    }

    #[test]
    fn pinned_pair_passes() {
        cgocheck::run_test(|| {
            let pair = managed_pair();
            let mut pinner = cgocheck::Pinner::new();
            pinner.pin(pair.p);
            // SAFETY: `p` points to a live int.
            assert_eq!(unsafe { pair_get(pair) }, 42);
            pinner.unpin();
        });
    }

    #[test]
    #[should_panic(expected = "cgo argument has Go pointer")]
    fn unpinned_pair_should_panic() {
        cgocheck::run_test(|| {
            // SAFETY: never reached: the check panics first.
            unsafe { pair_get(managed_pair()) };
        });
    }

    #[test]
    #[ignore = "fails on purpose: run by each_failure_fails_its_test_only"]
    fn unpinned_pair_fails() {
        cgocheck::run_test(|| {
            // SAFETY: never reached: the check panics first.
            unsafe { pair_get(managed_pair()) };
        });
    }

    /// The line the call below is on, for the parent's assertion.
    pub const OUTSIDE_LINE: u32 = line!() + 7;

    #[test]
    #[ignore = "fails on purpose: run by each_failure_fails_its_test_only"]
    fn c_call_outside_the_runtime_fails() {
        let xs = [1, 2];
        // SAFETY: never reached: there is no task to call C from.
        let n = unsafe { sum_ints(xs.as_ptr(), 2) };
        assert_eq!(n, 3);
    }

    #[test]
    fn tasks_after_failures() {
        cgocheck::run_test(|| {
            let hs: Vec<_> = (0..4).map(|i| cgocheck::spawn(move || i * 2)).collect();
            assert_eq!(hs.into_iter().map(|h| h.join()).sum::<i32>(), 12);
        });
    }
}

/// Runs this binary's `demo` tests (ignored ones included) as a child with
/// the default harness, and checks the report. A watchdog kills a child
/// that hangs and fails with what it printed so far.
#[test]
fn each_failure_fails_its_test_only() {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args(["demo::", "--include-ignored"])
        .env("CGOCHECK", "1")
        .env_remove("RUST_TEST_THREADS")
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running the test binary again");
    let start = Instant::now();
    while child.try_wait().expect("waiting for the child").is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().expect("killing the hung child");
            let out = child.wait_with_output().expect("the hung child's output");
            panic!(
                "watchdog: the demo tests did not finish in 60 s\n--- stdout\n{}\n--- stderr\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the child's output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("--- stdout\n{stdout}\n--- stderr\n{}", String::from_utf8_lossy(&out.stderr));

    assert_eq!(out.status.code(), Some(101), "a test binary with failed tests exits with 101\n{report}");
    for ok in ["sum_of_a_managed_slice", "pinned_pair_passes", "tasks_after_failures"] {
        assert!(stdout.contains(&format!("test demo::{ok} ... ok")), "{ok} passed\n{report}");
    }
    assert!(stdout.contains("test demo::unpinned_pair_should_panic - should panic ... ok"), "{report}");
    for failed in ["unpinned_pair_fails", "c_call_outside_the_runtime_fails"] {
        assert!(stdout.contains(&format!("test demo::{failed} ... FAILED")), "{failed} failed\n{report}");
    }
    assert!(stdout.contains("test result: FAILED. 4 passed; 2 failed"), "{report}");

    // Each failure's captured output, as the harness prints it.
    let section = |name: &str| {
        let head = format!("---- demo::{name} stdout ----");
        let at = stdout.find(&head).unwrap_or_else(|| panic!("no output section for {name}\n{report}"));
        let rest = &stdout[at + head.len()..];
        rest[..rest.find("\n---- ").or_else(|| rest.find("\nfailures:")).unwrap_or(rest.len())].to_owned()
    };
    let check = section("unpinned_pair_fails");
    assert!(check.contains("panic: cgo argument has Go pointer to unpinned Go pointer"), "{report}");
    assert!(check.contains("call:     pair_get, argument 1"), "{report}");
    assert!(check.contains("in the main task of cgocheck::run_test at examples/testing/tests/harness.rs:"), "{report}");

    let outside = section("c_call_outside_the_runtime_fails");
    let line = format!("examples/testing/tests/harness.rs:{}:", demo::OUTSIDE_LINE);
    let panicked_at = outside.lines().find(|l| l.contains("panicked at")).unwrap_or_default();
    assert!(
        panicked_at.contains(&format!("panicked at {line}")),
        "the panic names the caller's line ({line})\n{report}"
    );
    assert!(outside.contains("called outside a task"), "{report}");
    assert!(outside.contains("(in a test: cgocheck::run_test(|| ...))"), "{report}");
}

//! Helpers shared by the scheduler and cgocall tests.
//!
//! Some tests need a process of their own: a `GOMAXPROCS` that no other test
//! changes, a bad environment variable that ends the process, a panic that is
//! fatal by design. [`child`] re-runs the current test binary on one test
//! (`--exact`), with `SCHED_TEST_CHILD=1` and the given environment; the test
//! checks [`is_child`] to know which side it is on. A child that runs past
//! [`CHILD_LIMIT`] is killed and the test fails saying it hung.

#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// This process is a child started by [`child`].
pub fn is_child() -> bool {
    std::env::var_os("SCHED_TEST_CHILD").is_some()
}

/// Runs test `name` of this binary (ignored or not: the parent decided to
/// run it) in a child process with `env` added
/// (the runtime's settings removed unless given: `GOMAXPROCS`,
/// `CGOCHECK_STACK_KB`, and `CGOCHECK`, `GODEBUG`, `CGOCHECK_QUARANTINE`
/// and `CGOCHECK_BARRIER`, so that a run of the suite under `CGOCHECK=2`
/// does not put the quarantine under tests of level-1 reuse).
pub fn child(name: &str, env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut cmd = Command::new(exe);
    cmd.args([name, "--exact", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env("SCHED_TEST_CHILD", "1")
        .env("RUST_BACKTRACE", "0");
    for var in ["GOMAXPROCS", "CGOCHECK_STACK_KB", "CGOCHECK", "GODEBUG", "CGOCHECK_QUARANTINE", "CGOCHECK_BARRIER"] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    output_within(&mut cmd, CHILD_LIMIT, name)
}

/// How long a child test process may run before it is called hung: past
/// the longest soak's minutes (a normal child takes seconds), so a hang
/// without a watchdog of its own inside the child still fails the test.
pub const CHILD_LIMIT: Duration = Duration::from_secs(600);

/// `cmd.output()`, but kills the child and panics, with what it printed so
/// far, once it has run for `limit`.
fn output_within(cmd: &mut Command, limit: Duration, name: &str) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child test process");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let err = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let t0 = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child test process") {
            break status;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
            panic!(
                "child test {name} hung: still running after {limit:?}, killed\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// The child's stdout and stderr, for messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// In the child process: runs `body` as the runtime's main task
/// (`run_test`), watched. In the parent: runs test `name` in a child with
/// `env` added and asserts that it passed.
#[track_caller]
pub fn in_child(name: &str, env: &[(&str, &str)], body: fn()) {
    if is_child() {
        watched(name, || cgocheck::run_test(body));
    } else {
        child_passes(name, env);
    }
}

/// Runs test `name` in a child and asserts that it passed.
#[track_caller]
pub fn child_passes(name: &str, env: &[(&str, &str)]) {
    let out = child(name, env);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "child {name} failed:\n{}",
        text(&out)
    );
}

/// Runs test `name` in a child and asserts that it exited with `code` and
/// that its stderr contains every phrase.
#[track_caller]
pub fn child_fails(name: &str, env: &[(&str, &str)], code: i32, phrases: &[&str]) {
    let out = child(name, env);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "child {name}:\n{}", text(&out));
    for p in phrases {
        assert!(err.contains(p), "child {name}: stderr lacks {p:?}:\n{}", text(&out));
    }
}

/// How long a watched piece of work may take before its watchdog declares
/// a hang: each one takes seconds at most on a loaded machine.
pub const HANG: Duration = Duration::from_secs(60);

/// Runs `work` with a watchdog thread that raises SIGABRT if it has not
/// finished within [`HANG`]: the runtime's crash report then prints every
/// task with its state and frames (with `GOTRACEBACK=all`, as [`at_procs`]
/// sets), so a hang fails the test instead of stalling CI.
pub fn watched<R>(what: &str, work: impl FnOnce() -> R) -> R {
    watched_for(what, HANG, work)
}

/// [`watched`] with a limit of its own, for work that runs for a set time
/// longer than [`HANG`] (a soak): the limit is that time plus slack.
pub fn watched_for<R>(what: &str, limit: Duration, work: impl FnOnce() -> R) -> R {
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let what = what.to_string();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        while !flag.load(Ordering::Acquire) {
            if t0.elapsed() > limit {
                eprintln!("watchdog: {what} did not finish in {limit:?}: a lost wakeup, a stranded task or a deadlock");
                // SAFETY: raising a signal the runtime handles (its crash
                // report); nothing else is touched.
                unsafe { libc::raise(libc::SIGABRT) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let r = work();
    done.store(true, Ordering::Release);
    r
}

/// Runs test `name` in a child at each `GOMAXPROCS` in `procs` (with
/// `GOTRACEBACK=all`, for the watchdog's report) and asserts that each
/// passes.
#[track_caller]
pub fn at_procs(name: &str, procs: &[usize]) {
    for p in procs {
        let p = p.to_string();
        let out = child(name, &[("GOMAXPROCS", &p), ("GOTRACEBACK", "all")]);
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "{name} at GOMAXPROCS={p}:\n{}",
            text(&out)
        );
    }
}

//! The per-process case harness.
//!
//! A case is one small program: a function in the `cases` binary that calls
//! real C. Violations end a process (a panic, a fatal report, a signal), so
//! every case runs as its own child process, once per `CGOCHECK` level, and
//! the harness compares what happened with the expectation for that level:
//!
//! - [`Outcome::Ok`]: the child exits 0;
//! - [`Outcome::OkSaying`]: it exits 0 and its stderr contains every phrase
//!   (a warning that must be printed, for example);
//! - [`Outcome::Fail`]: the child exits non-zero (any status, or a signal) and
//!   its stderr contains every one of the given phrases.
//!
//! The child's environment is the parent's with `CGOCHECK` set to the level
//! and `GODEBUG` removed, so a developer's shell cannot change a verdict; a
//! case may add variables (for example a bad `CGOCHECK` value).
//!
//! A mismatch panics with the level, the status and the child's whole output,
//! which is what one needs to see to understand it.
//!
//! Every child runs under a watchdog ([`watched_output`]): one that has not
//! ended after [`WATCHDOG`] is killed and the test fails saying it hung,
//! with what it printed so far, instead of stalling the suite.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long a child may run before the harness calls it hung. A case takes
/// at most a few seconds (the longest, gc_stress, about 6 s per level in a
/// debug build); the margin is for a loaded 2-core CI machine.
pub const WATCHDOG: Duration = Duration::from_secs(120);

/// Runs `cmd` to its end, capturing stdout and stderr, like
/// `Command::output`, but kills it and panics, naming the command and
/// showing its output so far, when it runs past [`WATCHDOG`].
pub fn watched_output(cmd: &mut Command) -> Output {
    output_within(cmd, WATCHDOG)
}

/// [`watched_output`] with a limit of the caller's.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
                panic!(
                    "{what} hung: still running after {limit:?}, killed by the harness's watchdog\n--- stdout ---\n{}--- stderr ---\n{}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&err)
                );
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    Output { status, stdout: out.join().unwrap_or_default(), stderr: err.join().unwrap_or_default() }
}

/// What one level of a case must do.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// Exit status 0.
    Ok,
    /// Exit status 0, and stderr contains all of these phrases.
    OkSaying(&'static [&'static str]),
    /// A non-zero exit (or death by signal) whose stderr contains all of
    /// these phrases.
    Fail(&'static [&'static str]),
}

/// Expectations at `CGOCHECK=0`, `1` and `2`, in that order.
pub type Levels = [Outcome; 3];

/// The same outcome at every level.
pub const fn all(o: Outcome) -> Levels {
    [o, o, o]
}

/// Runs `case` of the case binary `exe` at each level and checks it against
/// `expect`. `env` adds variables to the child's environment.
pub fn check_case(exe: &Path, case: &str, env: &[(&str, &str)], expect: Levels) {
    for (level, outcome) in expect.iter().enumerate() {
        let out = run_case(exe, case, &level.to_string(), env);
        verify(case, &format!("CGOCHECK={level}"), &out, *outcome);
    }
}

/// Runs one case once with `CGOCHECK` set to `cgocheck` (any string, so that
/// malformed values can be tested) and returns what it did.
pub fn run_case(exe: &Path, case: &str, cgocheck: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(exe);
    cmd.arg(case).env("CGOCHECK", cgocheck).env_remove("GODEBUG").env("RUST_BACKTRACE", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    watched_output(&mut cmd)
}

/// Compares one run with its expected outcome; panics with the whole story
/// on a mismatch.
pub fn verify(case: &str, how: &str, out: &Output, expect: Outcome) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let story = || {
        format!(
            "case `{case}` at {how}: expected {expect:?}, got {status}\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
            status = describe_status(out)
        )
    };
    match expect {
        Outcome::Ok => assert!(out.status.success(), "{}", story()),
        Outcome::OkSaying(phrases) => {
            assert!(out.status.success(), "{}", story());
            assert_phrases(phrases, &stderr, &story);
        }
        Outcome::Fail(phrases) => {
            assert!(!out.status.success(), "{}", story());
            assert_phrases(phrases, &stderr, &story);
        }
    }
}

fn assert_phrases(phrases: &[&str], stderr: &str, story: &dyn Fn() -> String) {
    for p in phrases {
        assert!(stderr.contains(p), "missing phrase {p:?}\n{}", story());
    }
}

fn describe_status(out: &Output) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (out.status.code(), out.status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("death by signal {s}"),
        (None, None) => "an unknown end".to_string(),
    }
}

/// Declares one `#[test]` per case row: `case_rows! { name => [l0, l1, l2], … }`
/// runs the case binary's case `name` at each level (see [`check_case`]).
/// A row may add environment variables: `name (env: [("K", "V")]) => …`.
/// The case binary is `cases` unless the rows start with `bin: "other";`
/// (a `[[bin]]` of this package).
#[macro_export]
macro_rules! case_rows {
    (bin: $bin:literal; $($name:ident $((env: $env:expr))? => $expect:expr),* $(,)?) => {$(
        #[test]
        fn $name() {
            let env: &[(&str, &str)] = &[$($env)?];
            $crate::harness::check_case(
                ::std::path::Path::new(env!(concat!("CARGO_BIN_EXE_", $bin))),
                stringify!($name),
                env,
                $expect,
            );
        }
    )*};
    ($($rows:tt)*) => {
        $crate::case_rows! { bin: "cases"; $($rows)* }
    };
}

/// The case a case binary was asked to run: `bin NAME` picks `NAME` from
/// `cases`. An unknown or missing name prints the cases and exits with
/// status 3, which the harness's own test relies on (a table row naming a
/// case that does not exist must fail, not pass by running nothing).
pub fn chosen_case(bin: &str, cases: &'static [(&'static str, fn())]) -> (&'static str, fn()) {
    let name = std::env::args().nth(1).unwrap_or_default();
    if let Some(&case) = cases.iter().find(|(n, _)| *n == name) {
        return case;
    }
    eprintln!("{bin}: unknown case {name:?}; the cases are:");
    for (n, _) in cases {
        eprintln!("  {n}");
    }
    std::process::exit(3)
}

//! The fatal paths end to end, each in a child process (`crash CASE`, C
//! half in csrc/crash_fatal.c), checked for its exit status and its
//! report's lines at every `GOTRACEBACK` value:
//!
//! - a panic in a callback with no managed caller (on the main thread
//!   before the runtime ran anything, as from a C `main`, and on a thread
//!   C created): the full report, its message once, and no `atexit`
//!   handler run by the dying process;
//! - the runtime's own frames hidden at `single` and `all`, shown at
//!   `system` and `crash`;
//! - a panic in a task that aborts (it reaches a C frame): its message is
//!   printed, though the report will not;
//! - a crash in the body of an exported function, attributed to the
//!   body's line in the user's file;
//! - `GOTRACEBACK=crash` with a C `SIGABRT` handler installed before or
//!   after the runtime started: it gets control (exit 0), and the default
//!   action follows only when it returns (status 134);
//! - a storm of signals the runtime does not handle (1000 `SIGPROF`, and
//!   `SIGURG`, `SIGPIPE`, `SIGUSR1`...) on a busy program: it keeps running
//!   and its output is intact; a profiler's `SIGPROF` handler installed
//!   before the runtime keeps getting them; `SIGQUIT` is a report, as in
//!   Go.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `crash case` with `GOTRACEBACK=level` (and `env`), without a core
/// file.
fn crash(case: &str, level: &str, env: &[(&str, &str)]) -> (Output, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash"));
    cmd.arg(case).env("GOTRACEBACK", level).env_remove("CGOCHECK").env_remove("GODEBUG");
    cmd.env_remove("CRASH_FATAL_EARLY_SIGABRT").envs(env.iter().copied());
    // SAFETY: between fork and exec only setrlimit runs (no allocation,
    // no locks): no core file from the `crash` level in the test tree.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    let out = c_tests::harness::watched_output(&mut cmd);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out, err)
}

/// The function lines of a report section (`name(...)`), in order.
fn functions(section: &str) -> Vec<&str> {
    section.lines().filter(|l| l.ends_with("(...)")).collect()
}

/// The line in crash.rs that carries `marker` (1-based).
fn line_of(marker: &str) -> usize {
    let src = include_str!("../src/bin/crash.rs");
    1 + src.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker:?} in crash.rs"))
}

/// Whether a function line is the runtime's own (hidden below `system`).
fn is_runtime(f: &str) -> bool {
    ["cgocheck::", "std::panicking::", "std::panic::", "__rust_try", "core::ops::function::"]
        .iter()
        .any(|p| f.starts_with(p))
        || f.contains("__cgocheck_trampoline")
}

const MESSAGE: &str = "panic: the callback gave up after 3 tries";
const NOTE: &str = "fatal error: unrecovered panic in a function called from C";

/// Checks a no-managed-caller panic report at `level`; returns stderr.
fn check_callback_panic(case: &str, level: &str) -> String {
    let (out, err) = crash(case, level, &[]);
    if matches!(level, "crash" | "wer") {
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{case} at {level}: {:?}\n{err}", out.status);
    } else {
        assert_eq!(out.status.code(), Some(2), "{case} at {level}:\n{err}");
    }
    assert!(err.starts_with(&format!("{MESSAGE}\n{NOTE}")), "{case} at {level}: the report first:\n{err}");
    assert_eq!(err.matches("gave up after 3 tries").count(), 1, "{case} at {level}: the message once:\n{err}");
    assert!(!err.contains("panicked at"), "{case} at {level}: std's hook printed too:\n{err}");
    assert!(!err.contains("atexit handler ran"), "{case} at {level}: exit handlers ran:\n{err}");
    let fns = functions(&err);
    if level == "none" {
        assert!(fns.is_empty() && !err.contains("\ntask "), "{case} at none: no frames:\n{err}");
        return err;
    }
    // The callback's task (locked to its thread, as in Go): the panicking
    // body at its line, the export, then the C frames that called it.
    assert!(err.contains(" [running, locked to thread]:\n"), "{case} at {level}:\n{err}");
    let body = fns.iter().position(|f| *f == "crash::GoPanicNoCaller::__cgocheck_managed(...)");
    let body = body.unwrap_or_else(|| panic!("{case} at {level}: no body frame:\n{err}"));
    assert_eq!(body, 0, "{case} at {level}: the panicking function first:\n{err}");
    let at = err.lines().skip_while(|l| !l.starts_with("crash::GoPanicNoCaller::__cgocheck_managed")).nth(1).unwrap();
    let want = format!("src/bin/crash.rs:{}", line_of("crash_fatal: the panicking line"));
    assert!(at.split_whitespace().next().is_some_and(|l| l.ends_with(&want)), "want {want}: {at}\n{err}");
    let c_caller = fns.iter().position(|f| *f == "crash_fatal_call_panicking_export(...)");
    assert!(c_caller.is_some_and(|c| c > body), "{case} at {level}: the C caller after the body:\n{err}");
    let hidden = matches!(level, "single" | "all" | "1");
    assert_eq!(
        fns.iter().any(|f| is_runtime(f)),
        !hidden,
        "{case} at {level}: runtime frames {}:\n{err}",
        if hidden { "hidden" } else { "shown" }
    );
    if hidden {
        assert_eq!(fns[1], "GoPanicNoCaller(...)", "{case} at {level}: the export right after its body:\n{err}");
    }
    err
}

#[test]
fn a_callback_panic_with_no_managed_caller_from_the_main_thread() {
    for level in ["none", "single", "all", "1", "system", "2", "crash", "wer"] {
        let err = check_callback_panic("callback_panic_main_thread", level);
        if level != "none" {
            assert!(err.contains("\ncrash::callback_panic_main_thread(...)\n"), "{level}:\n{err}");
        }
    }
}

#[test]
fn a_callback_panic_on_a_c_thread() {
    for level in ["none", "single", "all", "system", "crash"] {
        let err = check_callback_panic("callback_panic_c_thread", level);
        if level == "none" {
            continue;
        }
        assert!(err.contains("\npanic_thread(...)\n"), "{level}: the C thread's frames:\n{err}");
        let others = err.matches("\ntask ").count();
        // The callback's task, then the main task (in C, waiting for the
        // thread) and the sleeper at `all` and above.
        let want = if level == "single" { 1 } else { 3 };
        assert_eq!(others, want, "{level}: task sections:\n{err}");
        if level != "single" {
            assert!(err.contains(" [syscall, locked to thread]:\n"), "{level}:\n{err}");
            assert!(err.contains(" [sleep]:\n"), "{level}:\n{err}");
        }
    }
}

#[test]
fn runtime_frames_are_hidden_below_system_in_a_signal_report() {
    for level in ["single", "all", "system", "crash"] {
        let (out, err) = crash("export_body", level, &[]);
        if level == "crash" {
            assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{err}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{level}:\n{err}");
        }
        let fns = functions(&err);
        let hidden = matches!(level, "single" | "all");
        assert_eq!(fns.iter().any(|f| is_runtime(f)), !hidden, "{level}:\n{err}");
        // C frames and the user's remain, in call order.
        let order = [
            "crash::GoCrashInBody::__cgocheck_managed(...)",
            "GoCrashInBody(...)",
            "crash_fatal_call_crashing_export(...)",
            "crash::checked::crash_fatal_call_crashing_export(...)",
            "crash::export_body::{{closure}}(...)",
        ];
        let at: Vec<_> = order
            .iter()
            .map(|f| fns.iter().position(|g| g == f).unwrap_or_else(|| panic!("{level}: no {f}:\n{err}")))
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{level}: order {at:?}:\n{err}");
        if hidden {
            assert_eq!(at[1], at[0] + 1, "{level}: nothing between the body and its export:\n{err}");
        }
    }
}

#[test]
fn a_panic_that_aborts_in_a_task_is_still_printed() {
    // A panic in a task prints nothing until it is known unrecovered; one
    // that reaches a C frame aborts instead, and its message must not be
    // lost.
    let (out, err) = crash("panic_into_c", "single", &[]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    let want =
        format!("panic: no unwinding through C, 7 (at c-tests/src/bin/crash.rs:{}:", line_of("the aborting panic"));
    assert!(err.starts_with(&want), "want {want}:\n{err}");
    assert!(err.contains("panic in a function that cannot unwind"), "{err}");
    assert!(err.contains("\nSIGABRT: abort\n"), "{err}");
}

#[test]
fn a_crash_in_an_export_body_is_the_users_line() {
    let (_, err) = crash("export_body", "single", &[]);
    let want = format!("src/bin/crash.rs:{}", line_of("crash_fatal: the faulting line"));
    let at = err.lines().skip_while(|l| !l.starts_with("crash::GoCrashInBody::__cgocheck_managed(...)")).nth(1);
    assert!(at.and_then(|l| l.split_whitespace().next()).is_some_and(|l| l.ends_with(&want)), "want {want}:\n{err}");
}

#[test]
fn a_c_sigabrt_handler_installed_after_the_runtime_gets_control() {
    let (out, err) = crash("abort_caught_late", "crash", &[]);
    assert_eq!(out.status.code(), Some(0), "{:?}\n{err}", out.status);
    assert!(err.contains("\nderef(...)\n"), "the report first:\n{err}");
    assert!(err.ends_with("crash_fatal: C handler caught SIGABRT, exiting 0\n"), "{err}");
    // Below `crash`, no SIGABRT at all.
    let (out, err) = crash("abort_caught_late", "all", &[]);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("caught SIGABRT"), "{err}");
}

#[test]
fn a_c_sigabrt_handler_that_returns_is_followed_by_the_default_action() {
    let (out, err) = crash("abort_caught_late_returns", "crash", &[]);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}\n{err}", out.status);
    assert!(err.ends_with("crash_fatal: C handler caught SIGABRT, returning\n"), "{err}");
}

#[test]
fn a_c_sigabrt_handler_installed_before_the_runtime_gets_control() {
    let (out, err) = crash("abort_caught_early", "crash", &[("CRASH_FATAL_EARLY_SIGABRT", "1")]);
    assert_eq!(out.status.code(), Some(0), "{:?}\n{err}", out.status);
    assert!(err.contains("\nderef(...)\n"), "the report first:\n{err}");
    assert!(err.ends_with("crash_fatal: C handler caught SIGABRT, exiting 0\n"), "{err}");
}

/// The busy program (`crash signal_storm`) with `env`, once it printed
/// `ready`; its stdout lines so far; and a thread reading the rest.
struct Busy {
    child: std::process::Child,
    lines: Vec<String>,
    reader: std::thread::JoinHandle<String>,
}

impl Busy {
    fn start(env: &[(&str, &str)]) -> Busy {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crash"))
            .arg("signal_storm")
            .env_remove("CGOCHECK")
            .env_remove("GODEBUG")
            .env_remove("GOTRACEBACK")
            .env_remove("CRASH_FATAL_EARLY_SIGPROF")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the crash binary");
        let pid = child.id() as i32;
        // Watchdog: a hang fails the test instead of stalling it.
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(60));
            // SAFETY: a signal to our own child (gone already, if all went well).
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                eprintln!("watchdog: signal_storm still running after 60 s, killed");
            }
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // Worker lines may come before `ready`: read until it.
        let mut lines: Vec<String> = Vec::new();
        while lines.last().map(String::as_str) != Some("ready") {
            let mut l = String::new();
            assert!(stdout.read_line(&mut l).unwrap() > 0, "no `ready` before the end: {lines:?}");
            lines.push(l.trim_end().to_owned());
        }
        let reader = std::thread::spawn(move || {
            let mut rest = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
            rest
        });
        Busy { child, lines, reader }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, sig) }, 0, "signal {sig}: the program is gone");
    }

    /// Closes its stdin and waits: exit status, stdout lines, stderr.
    fn finish(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        drop(self.child.stdin.take());
        self.wait()
    }

    /// Waits with its stdin open (the program never ends by itself): for a
    /// signal that must end it. Closing stdin would let it exit normally
    /// while the signal's report is still being written.
    fn wait(mut self) -> (std::process::ExitStatus, Vec<String>, String) {
        // `Child::wait` closes stdin first: keep our end open across it.
        let stdin = self.child.stdin.take();
        let status = self.child.wait().unwrap();
        drop(stdin);
        let rest = self.reader.join().unwrap();
        let mut err = String::new();
        std::io::Read::read_to_string(&mut self.child.stderr.take().unwrap(), &mut err).unwrap();
        self.lines.extend(rest.lines().map(str::to_owned));
        (status, self.lines, err)
    }
}

/// Sends 1000 SIGPROFs, 100 µs apart, and every 100th time the other
/// signals Go ignores.
fn storm(busy: &Busy) {
    let others = [libc::SIGURG, libc::SIGPIPE, libc::SIGUSR1, libc::SIGUSR2, libc::SIGALRM, libc::SIGWINCH, 40];
    for i in 0..1000 {
        busy.signal(libc::SIGPROF);
        if i % 100 == 0 {
            for sig in others {
                busy.signal(sig);
            }
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Checks the busy program's output: every worker line whole and in
/// sequence, and `done <lines> <profs>`; returns `profs`.
fn check_output(status: std::process::ExitStatus, lines: &[String], err: &str) -> u64 {
    assert!(status.success(), "{status:?}\nstderr:\n{err}");
    let done = lines.iter().find_map(|l| l.strip_prefix("done ")).unwrap_or_else(|| panic!("no `done`:\n{err}"));
    let (total, profs) = done.split_once(' ').unwrap();
    let total: usize = total.parse().unwrap();
    for w in 0..2u64 {
        let mine: Vec<_> = lines.iter().filter(|l| l.starts_with(&format!("w{w} "))).collect();
        let want_sum: u64 = (0..20_000u64).map(|i| i * w).sum();
        for (n, l) in mine.iter().enumerate() {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f, [format!("w{w}"), n.to_string(), want_sum.to_string(), "42".to_owned()], "line {l:?}");
        }
    }
    assert_eq!(lines.iter().filter(|l| l.starts_with('w')).count(), total, "{lines:?}");
    assert!(total > 0, "the workers printed nothing");
    profs.parse().unwrap()
}

#[test]
fn a_storm_of_unhandled_signals_does_not_stop_a_busy_program() {
    let busy = Busy::start(&[]);
    storm(&busy);
    let (status, lines, err) = busy.finish();
    assert_eq!(check_output(status, &lines, &err), 0);
}

#[test]
fn a_profilers_handler_installed_before_the_runtime_keeps_its_signals() {
    let busy = Busy::start(&[("CRASH_FATAL_EARLY_SIGPROF", "1")]);
    storm(&busy);
    let (status, lines, err) = busy.finish();
    // Signals of one kind sent faster than they are handled merge: most,
    // not necessarily all, arrive.
    let profs = check_output(status, &lines, &err);
    assert!(profs > 100, "the C handler counted {profs} SIGPROFs of 1000");
}

#[test]
fn sigquit_is_a_report_of_every_task_as_in_go() {
    // `all`: the signal may reach any thread; every task is shown.
    let busy = Busy::start(&[("GOTRACEBACK", "all")]);
    busy.signal(libc::SIGQUIT);
    let (status, _, err) = busy.wait();
    assert_eq!(status.code(), Some(2), "{status:?}\n{err}");
    assert!(err.starts_with("SIGQUIT: quit\nPC="), "{err}");
    assert!(err.contains("crash::signal_storm::{{closure}}"), "{err}");
}

//! `GOTRACEBACK` end to end on the anchor crash (`crash c`): each level's
//! report and ending, and a bad value stopped at start.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Output};

fn crash_with(gotraceback: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crash"));
    cmd.arg("c").env_remove("CGOCHECK").env_remove("GODEBUG");
    match gotraceback {
        Some(v) => cmd.env("GOTRACEBACK", v),
        None => cmd.env_remove("GOTRACEBACK"),
    };
    // SAFETY: between fork and exec only setrlimit runs (no allocation,
    // no locks): no core file from the `crash` level in the test tree.
    unsafe {
        cmd.pre_exec(|| {
            let none = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            libc::setrlimit(libc::RLIMIT_CORE, &none);
            Ok(())
        });
    }
    c_tests::harness::watched_output(&mut cmd)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn single_is_the_default() {
    let (unset, single) = (crash_with(None), crash_with(Some("single")));
    for out in [&unset, &single] {
        assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
        assert!(stderr(out).contains("\nthread ") && stderr(out).contains("\nderef(...)\n"), "{}", stderr(out));
    }
}

#[test]
fn none_prints_the_signal_lines_only() {
    let out = crash_with(Some("none"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(lines[0], "SIGSEGV: segmentation violation");
    assert!(lines[1].starts_with("PC=0x") && lines[2].is_empty(), "{err}");
}

#[test]
fn all_prints_the_crashing_thread_and_every_task() {
    // Without tasks (no scheduler running), `all` is the crashing thread.
    let out = crash_with(Some("all"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("\nderef(...)\n"), "{}", stderr(&out));
}

#[test]
fn crash_prints_the_report_then_dies_of_sigabrt() {
    let out = crash_with(Some("crash"));
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "status {:?}\n{}", out.status, stderr(&out));
    assert!(
        stderr(&out).contains("\nderef(...)\n") && stderr(&out).contains("\ncrash_in_c(...)\n"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn gos_other_values_have_gos_meaning() {
    // Empty is unset; 0 is none; 1, 2 (and system) print everything; `wer`
    // is `crash`.
    assert_eq!(crash_with(Some("")).status.code(), Some(2));
    assert!(stderr(&crash_with(Some(""))).contains("\nderef(...)\n"));
    assert_eq!(stderr(&crash_with(Some("0"))).lines().count(), 3, "{}", stderr(&crash_with(Some("0"))));
    for all in ["1", "02", "system"] {
        let out = crash_with(Some(all));
        assert_eq!(out.status.code(), Some(2), "GOTRACEBACK={all}: {}", stderr(&out));
        assert!(stderr(&out).contains("\nderef(...)\n"), "GOTRACEBACK={all}: {}", stderr(&out));
    }
    let wer = crash_with(Some("wer"));
    assert_eq!(wer.status.signal(), Some(libc::SIGABRT), "GOTRACEBACK=wer: {}", stderr(&wer));
}

#[test]
fn a_bad_value_stops_the_program_at_start() {
    for bad in ["bogus", "-1", "ALL", "WER"] {
        let out = crash_with(Some(bad));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "GOTRACEBACK={bad:?}: {err}");
        assert!(err.contains(&format!("GOTRACEBACK: {bad:?} is not a traceback level")), "{err}");
        assert!(err.contains("none, single (the default), all, system, crash"), "{err}");
        // Stopped before main: no crash, no report.
        assert!(!err.contains("SIGSEGV"), "{err}");
    }
}

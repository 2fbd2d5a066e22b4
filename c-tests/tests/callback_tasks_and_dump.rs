//! A running program looking at its own tasks, from callbacks (`crash
//! CASE`, C half in csrc/crash_fatal.c):
//!
//! - `stats().tasks` counts a callback running on a thread C created as a
//!   live task while it runs, and not before or after;
//! - `cgocheck::stack_dump` is Go's `runtime.Stack`: called from a
//!   callback (task → C → exported function), the caller's section has the
//!   managed frames on both sides of the C frame; with `all`, every other
//!   task too; and the program goes on running afterwards.

use std::process::{Command, Output};

fn run(case: &str) -> (Output, String) {
    let out = c_tests::harness::watched_output(
        Command::new(env!("CARGO_BIN_EXE_crash"))
            .arg(case)
            .env_remove("CGOCHECK")
            .env_remove("GODEBUG")
            .env_remove("GOTRACEBACK"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{case}: {:?}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    (out, stdout)
}

#[test]
fn a_callback_on_a_c_thread_is_a_live_task_while_it_runs() {
    let (_, stdout) = run("callback_tasks");
    // The main task and a sleeper; the callback's task while it runs.
    assert_eq!(stdout.trim_end(), "tasks 2 3 2", "{stdout}");
}

#[test]
fn stack_dump_is_runtime_stack_with_c_frames() {
    let (_, stdout) = run("stack_dump");
    let (mine, rest) = stdout.split_once("=== all\n").unwrap_or_else(|| panic!("{stdout}"));
    let (all, after) = rest.split_once("=== end\n").unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(after, "still running\n", "the program goes on:\n{stdout}");
    let fns = |s: &str| s.lines().filter(|l| l.ends_with("(...)")).map(str::to_owned).collect::<Vec<_>>();
    let want = [
        "crash::GoDumpStacks::__cgocheck_managed(...)",
        "GoDumpStacks(...)",
        "crash_fatal_dump_from_c(...)",
        "crash::checked::crash_fatal_dump_from_c(...)",
        "crash::stack_dump::{{closure}}(...)",
    ];
    assert!(mine.starts_with("task 1 [running, locked to thread]:\n"), "{mine}");
    assert_eq!(fns(mine), want, "the caller's frames, C included, runtime frames hidden:\n{mine}");
    assert!(mine.contains("csrc/crash_fatal.c:"), "{mine}");
    assert_eq!(mine.matches("\ntask ").count(), 0, "only the caller:\n{mine}");
    // With `all`: the caller first, then the sleeper with its frames.
    assert!(all.starts_with("task 1 [running, locked to thread]:\n"), "{all}");
    assert_eq!(fns(all)[..5], want, "{all}");
    let sleeper = all.split_once(" [sleep]:\n").unwrap_or_else(|| panic!("no sleeping task:\n{all}")).1;
    assert_eq!(fns(sleeper), ["crash::stack_dump::{{closure}}::{{closure}}(...)"], "{all}");
}

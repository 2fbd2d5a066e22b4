//! Crash reports with the scheduler running: the crash binary's task cases.
//!
//! - Go's nested anchor crash (task → C → exported `goBack` → C crash): both
//!   C calls' frames and the managed frames between them, in call order;
//! - Go's anchor crash from a task, through the checked call layer
//!   (`cgocall`: the C frames run on the M's g0 stack): `signal arrived
//!   during cgo execution`, the task's section `[syscall]`, the C frames
//!   with file:line, then the task's managed callers in call order;
//! - `GOTRACEBACK=all` adds the other tasks, each walked from its saved
//!   registers (one joining, one sleeping); `single` does not;
//! - an unrecovered panic in a task: `panic: …` once and the task's frames
//!   from the function that panicked;
//! - the runtime's own frames hidden at `single` and `all`, shown at
//!   `system`;
//! - a scheduler task overflowing its stack: named, with its size.

use std::process::Command;

fn crash(case: &str, gotraceback: &str) -> (Option<i32>, String) {
    let out = c_tests::harness::watched_output(
        Command::new(env!("CARGO_BIN_EXE_crash"))
            .arg(case)
            .env("GOTRACEBACK", gotraceback)
            .env("RUST_BACKTRACE", "0")
            .env_remove("CGOCHECK")
            .env_remove("GODEBUG")
            .env_remove("CGOCHECK_STACK_KB"),
    );
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The function lines of the section whose header starts with `header`.
fn functions<'a>(report: &'a str, header: &str) -> Vec<&'a str> {
    report
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with('\t'))
        .collect()
}

fn index_of(fns: &[&str], name: &str) -> usize {
    fns.iter().position(|f| *f == name).unwrap_or_else(|| panic!("no frame {name} in {fns:#?}"))
}

fn crash_c_line(text: &str) -> usize {
    1 + include_str!("../csrc/crash.c").lines().position(|l| l.contains(text)).unwrap()
}

#[test]
fn null_dereference_in_c_from_a_task() {
    let (code, err) = crash("c_in_task", "single");
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines[0], "SIGSEGV: segmentation violation", "{err}");
    let m = lines[1].split(" m=").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("");
    assert!(m.parse::<u64>().is_ok() && lines[1].ends_with(" sigcode=1 addr=0x0"), "{err}");
    assert_eq!(lines[2], "signal arrived during cgo execution", "{err}");
    assert_eq!(lines[4], "task 1 [syscall, locked to thread]:", "{err}");

    let fns = functions(&err, "task 1 ");
    assert_eq!(&fns[..2], ["deref(...)", "crash_in_c(...)"], "{err}");
    assert!(err.contains(&format!("\nderef(...)\n\t{}", env!("CARGO_MANIFEST_DIR"))), "{err}");
    assert!(err.contains(&format!("csrc/crash.c:{} +0x", crash_c_line("return *p;"))), "{err}");
    assert!(err.contains(&format!("csrc/crash.c:{} +0x", crash_c_line("return deref(p) + 1;"))), "{err}");
    // Then the task's managed callers; the call layer's switch back to the
    // task (`cgocall`) is the runtime's, hidden below `system`.
    assert_eq!(&fns[2..4], ["crash::checked::crash_in_c(...)", "crash::task_calls_c(...)"], "{err}");
    assert!(!fns.iter().any(|f| f.starts_with("cgocheck::")), "{err}");
    let (code, err) = crash("c_in_task", "system");
    assert_eq!(code, Some(2), "{err}");
    let fns = functions(&err, "task 1 ");
    // The switch to the C stack (the register path: `crash_in_c` takes one
    // pointer, and the wrapper calls asmcgocall itself).
    let cgocall = index_of(&fns, "cgocheck::arch::x86_64::asmcgocall(...)");
    let caller = index_of(&fns, "crash::task_calls_c(...)");
    let body = index_of(&fns, "crash::c_in_task::{{closure}}(...)");
    assert!(1 < cgocall && cgocall < caller && caller < body, "{fns:#?}");
    // Walked once: the C walk and the task's own walk do not overlap.
    assert_eq!(fns.iter().filter(|f| **f == "crash::task_calls_c(...)").count(), 1, "{fns:#?}");
}

#[test]
fn nested_crash_shows_both_c_calls_in_call_order() {
    let (code, err) = crash("nested", "single");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.starts_with("SIGSEGV: segmentation violation\n"), "{err}");
    assert!(err.contains("\nsignal arrived during cgo execution\n"), "{err}");
    let fns = functions(&err, "task 1 ");
    assert_eq!(&fns[..2], ["deref(...)", "crash_in_c(...)"], "{err}");
    // Innermost first: the crashing C call, its managed caller, the export
    // path from C, the outer C function with its file:line, the outer call
    // layer, and the task's body.
    let inner_caller = index_of(&fns, "crash::task_calls_c(...)");
    let go_back =
        fns.iter().position(|f| f.contains("goBack")).unwrap_or_else(|| panic!("no goBack frame in {fns:#?}"));
    let outer_c = index_of(&fns, "callback_then_crash(...)");
    let body = index_of(&fns, "crash::nested::{{closure}}(...)");
    assert!(1 < inner_caller && inner_caller < go_back && go_back < outer_c && outer_c < body, "{fns:#?}");
    let line = 1 + include_str!("../csrc/crash_nested.c").lines().position(|l| l.contains("goBack();")).unwrap();
    assert!(err.contains(&format!("csrc/crash_nested.c:{line} +0x")), "{err}");
    assert_eq!(fns.iter().filter(|f| f.starts_with("deref")).count(), 1, "walked once: {fns:#?}");
}

#[test]
fn single_shows_only_the_crashing_task() {
    let (code, err) = crash("c_in_spawned_task", "single");
    assert_eq!(code, Some(2), "{err}");
    let headers: Vec<&str> = err.lines().filter(|l| l.starts_with("task ")).collect();
    assert_eq!(headers.len(), 1, "{err}");
    assert!(headers[0].ends_with(" [syscall]:"), "{err}");
}

#[test]
fn all_shows_every_task_from_its_saved_registers() {
    let (code, err) = crash("c_in_spawned_task", "all");
    assert_eq!(code, Some(2), "{err}");
    let headers: Vec<&str> = err.lines().filter(|l| l.starts_with("task ")).collect();
    assert!(headers[0].ends_with(" [syscall]:"), "{err}");
    // The main task waits in join; the sleeper in sleep.
    let join = functions(&err, "task 1 [join, locked to thread]:");
    assert_eq!(join, ["crash::c_in_spawned_task::{{closure}}(...)"], "the runtime's frames hidden:\n{err}");
    let sleeper =
        headers.iter().find(|h| h.ends_with(" [sleep]:")).unwrap_or_else(|| panic!("no sleeping task:\n{err}"));
    let sleep = functions(&err, sleeper);
    assert_eq!(sleep, ["crash::c_in_spawned_task::{{closure}}::{{closure}}(...)"], "{err}");
    // `system` shows where in the runtime they wait.
    let (code, err) = crash("c_in_spawned_task", "system");
    assert_eq!(code, Some(2), "{err}");
    let join = functions(&err, "task 1 [join, locked to thread]:");
    index_of(&join, "cgocheck::sched::task::JoinHandle<R>::join(...)");
    index_of(&join, "crash::c_in_spawned_task::{{closure}}(...)");
    let sleeper = err.lines().find(|h| h.starts_with("task ") && h.ends_with(" [sleep]:")).unwrap();
    index_of(&functions(&err, sleeper), "cgocheck::sched::monitor::sleep(...)");
}

#[test]
fn an_unrecovered_panic_in_a_task() {
    let (code, err) = crash("panic_in_task", "single");
    assert_eq!(code, Some(2), "{err}");
    // The report alone: the message once (std's hook prints nothing in a
    // task), at the start.
    assert!(err.starts_with("panic: the task gave up after 3 tries\n\ntask "), "{err}");
    assert_eq!(err.matches("gave up after").count(), 1, "{err}");
    let report = &err[..];
    let header = report.lines().nth(2).unwrap();
    assert!(header.starts_with("task ") && header.ends_with(" [running]:"), "{err}");
    let fns = functions(report, header);
    assert_eq!(fns[0], "crash::task_panics(...)", "{err}");
    assert!(report.contains("src/bin/crash.rs:"), "{err}");
    assert!(!report.contains("core::panicking::"), "the panic machinery is skipped:\n{err}");
}

#[test]
fn a_task_overflowing_its_stack() {
    let (code, err) = crash("task_overflow", "single");
    assert_eq!(code, Some(2), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("runtime: task ") && lines[0].contains(" overflowed its 16384-byte stack ["), "{err}");
    assert!(lines[1].contains("CGOCHECK_STACK_KB"), "{err}");
    assert_eq!(lines[2], "fatal error: stack overflow", "{err}");
    let task = lines[0].split(' ').nth(2).unwrap();
    let fns = functions(&err, &format!("task {task} [running]:"));
    assert!(fns.iter().take(10).all(|f| *f == "crash::recurse(...)"), "{err}");
}

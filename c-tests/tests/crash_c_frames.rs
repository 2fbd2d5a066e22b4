//! Crash reports of real C crashes: the `crash` binary is run as a child
//! process and its report (stderr) and exit status are checked.
//!
//! - Go's anchor crash (`deref` ← `crash_in_c`, a NULL dereference) called
//!   from the main thread: both C functions by name with their file:line
//!   in csrc/crash.c, then the managed callers, in call order;
//! - the same crash on a pthread the C code made itself: a thread section
//!   with C frames only;
//! - SIGABRT and SIGFPE from C;
//! - a real overflow of a task stack: reported as a stack overflow of that
//!   task, with its size and the knob that raises it;
//! - a real overflow of a C thread's stack after it called back (so it has
//!   an extra M and, with it, an alternate signal stack): a stack overflow
//!   report with the thread's C frames, not a bare SIGSEGV (exit 139);
//! - the allocator proof: the binary's allocator exits 99 on any
//!   allocation once crash handling has begun, so each exit status 2 above
//!   says the handler allocated nothing; and a crash view that allocates
//!   (a broken contract) is caught by it.

use std::process::Command;

struct Crash {
    code: Option<i32>,
    stderr: String,
}

fn crash(case: &str, env: &[(&str, &str)]) -> Crash {
    let out = c_tests::harness::watched_output(
        Command::new(env!("CARGO_BIN_EXE_crash"))
            .arg(case)
            .env_remove("GOTRACEBACK")
            .env_remove("CGOCHECK")
            .env_remove("GODEBUG")
            .envs(env.iter().copied()),
    );
    Crash { code: out.status.code(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

/// The line number of the first line of csrc/crash.c containing `text`.
fn crash_c_line(text: &str) -> usize {
    let src = include_str!("../csrc/crash.c");
    1 + src.lines().position(|l| l.contains(text)).unwrap_or_else(|| panic!("{text:?} not in crash.c"))
}

/// The (function, location) line pairs of the section starting with a line
/// that starts with `header`.
fn frames<'a>(report: &'a str, header: &str) -> Vec<(&'a str, &'a str)> {
    // An elision line (`...N frames elided...`) is one line, not a frame.
    let lines: Vec<&str> = report
        .lines()
        .skip_while(|l| !l.starts_with(header))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with("..."))
        .collect();
    lines.chunks(2).filter(|c| c.len() == 2).map(|c| (c[0], c[1])).collect()
}

fn index_of(frames: &[(&str, &str)], function: &str) -> usize {
    frames.iter().position(|(f, _)| *f == function).unwrap_or_else(|| panic!("no frame {function} in {frames:#?}"))
}

#[test]
fn null_dereference_in_c_from_the_main_thread() {
    let c = crash("c", &[]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    let lines: Vec<&str> = c.stderr.lines().collect();
    assert_eq!(lines[0], "SIGSEGV: segmentation violation", "{}", c.stderr);
    assert!(lines[1].starts_with("PC=0x") && lines[1].ends_with(" m=none sigcode=1 addr=0x0"), "{}", c.stderr);
    assert_eq!(lines[2], "", "no task, so no `signal arrived during cgo execution`:\n{}", c.stderr);
    assert!(lines[3].starts_with("thread ") && lines[3].ends_with(" [no task]:"), "{}", c.stderr);

    let f = frames(&c.stderr, "thread ");
    let (deref, crash_in_c) = (index_of(&f, "deref(...)"), index_of(&f, "crash_in_c(...)"));
    assert_eq!((deref, crash_in_c), (0, 1), "{}", c.stderr);
    let deref_at = format!("csrc/crash.c:{} +0x", crash_c_line("return *p;"));
    let crash_in_c_at = format!("csrc/crash.c:{} +0x", crash_c_line("return deref(p) + 1;"));
    assert!(f[0].1.starts_with('\t') && f[0].1.contains(&deref_at), "{}", c.stderr);
    assert!(f[1].1.contains(&crash_in_c_at), "{}", c.stderr);
    // The managed callers follow, in call order, with their lines.
    let callers = ["crash::call_crash_in_c(...)", "crash::c(...)", "crash::main(...)"];
    let at: Vec<usize> = callers.iter().map(|name| index_of(&f, name)).collect();
    assert_eq!(at, [2, 3, 4], "{}", c.stderr);
    assert!(f[2].1.contains("src/bin/crash.rs:"), "{}", c.stderr);
    // Go's fields on every outermost frame.
    assert!(f[0].1.contains(" fp=0x") && f[0].1.contains(" sp=0x") && f[0].1.contains(" pc=0x"), "{}", c.stderr);
    // The frame pc of `deref` is the PC of the signal line.
    let pc = lines[1].split_whitespace().next().unwrap().trim_start_matches("PC=");
    assert!(f[0].1.ends_with(&format!("pc={pc}")), "{}", c.stderr);
}

#[test]
fn crash_on_a_c_thread_the_runtime_never_saw() {
    let c = crash("c_thread", &[]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.starts_with("SIGSEGV: segmentation violation\nPC="), "{}", c.stderr);
    assert!(!c.stderr.contains("task "), "no task section:\n{}", c.stderr);
    let f = frames(&c.stderr, "thread ");
    assert_eq!(
        &f[..3].iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        &["deref(...)", "crash_in_c(...)", "crash_thread_main(...)"],
        "{}",
        c.stderr
    );
    assert!(f[2].1.contains(&format!("csrc/crash.c:{}", crash_c_line("crash_in_c();"))), "{}", c.stderr);
    // C frames only: no managed caller on that thread.
    assert!(f.iter().all(|(name, _)| !name.starts_with("crash::")), "{}", c.stderr);
}

#[test]
fn abort_in_c_is_a_sigabrt_report() {
    let c = crash("abort", &[]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.starts_with("SIGABRT: abort\nPC=0x"), "{}", c.stderr);
    let f = frames(&c.stderr, "thread ");
    let abort_in_c = index_of(&f, "abort_in_c(...)");
    assert_eq!(f[abort_in_c + 1].0, "crash::abort(...)", "{}", c.stderr);
}

#[test]
fn division_by_zero_in_c_is_a_sigfpe_report() {
    let c = crash("divide", &[]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    assert!(c.stderr.starts_with("SIGFPE: floating-point exception\nPC=0x"), "{}", c.stderr);
    let f = frames(&c.stderr, "thread ");
    assert_eq!(f[0].0, "divide_in_c(...)", "{}", c.stderr);
    assert!(f[0].1.contains(&format!("csrc/crash.c:{}", crash_c_line("return a / b;"))), "{}", c.stderr);
}

#[test]
fn task_stack_overflow_names_the_task_its_size_and_the_knob() {
    let c = crash("task_stack_overflow", &[]);
    assert_eq!(c.code, Some(2), "{}", c.stderr);
    let lines: Vec<&str> = c.stderr.lines().collect();
    assert!(lines[0].starts_with("runtime: task 7 overflowed its 65536-byte stack ["), "{}", c.stderr);
    assert!(lines[0].contains("is in the guard page below it"), "{}", c.stderr);
    assert!(lines[1].contains("CGOCHECK_STACK_KB"), "{}", c.stderr);
    assert_eq!(lines[2], "fatal error: stack overflow", "{}", c.stderr);
    // The section is the task's, its frames the recursion: the innermost
    // 32, the count of those elided (the 64 KiB stack holds about 60),
    // then the outermost down to the entry function that started it.
    let f = frames(&c.stderr, "task 7 [running]:");
    assert!(f.len() >= 32 && f.iter().take(32).all(|(name, _)| *name == "crash::recurse(...)"), "{}", c.stderr);
    let elided = c.stderr.lines().find(|l| l.ends_with(" frames elided...")).expect("an elision line");
    let count: usize = elided.trim_start_matches("...").split(' ').next().unwrap().parse().unwrap();
    assert!(count > 0, "{}", c.stderr);
    let entry = index_of(&f, "crash::recurse_entry(...)");
    assert!(entry > 32 && f[entry - 1].0 == "crash::recurse(...)", "{}", c.stderr);
}

#[test]
fn stack_overflow_on_a_c_thread_that_called_back_is_reported() {
    let c = crash("c_thread_overflow", &[]);
    assert_eq!(c.code, Some(2), "a report, not a bare SIGSEGV:\n{}", c.stderr);
    let lines: Vec<&str> = c.stderr.lines().collect();
    assert!(lines[0].starts_with("runtime: thread ") && lines[0].contains(" overflowed its stack"), "{}", c.stderr);
    assert_eq!(lines[1], "fatal error: stack overflow", "{}", c.stderr);
    assert!(c.stderr.contains("\nSIGSEGV: segmentation violation\nPC=0x"), "{}", c.stderr);
    let f = frames(&c.stderr, "thread ");
    assert!(f.len() >= 31 && f.iter().take(31).all(|(name, _)| *name == "c_recurse(...)"), "{}", c.stderr);
    assert!(f[0].1.contains("csrc/crash_thread_overflow.c:"), "{}", c.stderr);
}

#[test]
fn c_threads_give_their_alternate_stacks_back() {
    let out = c_tests::harness::watched_output(
        Command::new(env!("CARGO_BIN_EXE_crash")).arg("c_thread_overflow_after_many").env_remove("GOTRACEBACK"),
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // A reused extra M still comes with an alternate stack.
    assert!(stderr.starts_with("runtime: thread ") && stderr.contains("fatal error: stack overflow"), "{stderr}");
    // 100 threads came and went: without the unmapping, 100 or 200 more.
    let grew: i64 = stdout.trim().strip_prefix("mappings grew by ").and_then(|n| n.parse().ok()).expect(&stdout);
    assert!(grew < 10, "100 C threads that called back left {grew} more mappings behind");
}

#[test]
fn an_allocation_during_crash_handling_is_caught() {
    let c = crash("alloc_in_handler", &[]);
    assert_eq!(c.code, Some(99), "{}", c.stderr);
    assert!(c.stderr.contains("crash: allocation during crash handling"), "{}", c.stderr);
}

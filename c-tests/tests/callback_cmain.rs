//! A C program with its own `main` (c-tests/cmain/main.c) linking a static
//! library that contains the runtime and managed functions exported with
//! `cgocheck::export!` (the crate c-tests/cmain), the way a C library author
//! tests C code against the runtime.
//!
//! The first test to need the programs builds them, once per test run:
//!
//! 1. `cargo build -p cgocheck-capi -p cgocheck-cmain` into this run's own
//!    target directory and profile (read from where Cargo put the
//!    `callbacks` binary), which makes `libcgocheck_capi.a` (the runtime
//!    alone) and `libcgocheck_cmain.a`;
//! 2. `cc -std=c11 -Wall -Wextra -Werror -pthread -I runtime/include main.c
//!    libcgocheck_cmain.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc`
//!    (`$CC` if set), into Cargo's scratch directory for tests; the same for
//!    runtime_only.c with `libcgocheck_capi.a`.
//!
//! Then each scenario of main.c runs as its own process (see main.c for
//! what each one checks): exported functions called from main and from C
//! threads, at every `CGOCHECK` level; the first call into the runtime raced
//! by 8 threads, repeated in fresh processes; and a result violation
//! reported from inside a C program; the scheduler started by the first
//! call (a bad `GOMAXPROCS` stops the program there). runtime_only.c shows that the
//! runtime's own library and header work alone, and that a bad `CGOCHECK`
//! stops a C program too.

use c_tests::harness::{run_case, verify, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The two linked C programs, built on first use.
struct Programs {
    /// main.c with libcgocheck_cmain.a.
    cmain: PathBuf,
    /// runtime_only.c with libcgocheck_capi.a.
    runtime_only: PathBuf,
}

fn programs() -> &'static Programs {
    static PROGRAMS: OnceLock<Programs> = OnceLock::new();
    PROGRAMS.get_or_init(build)
}

fn program() -> &'static Path {
    &programs().cmain
}

fn build() -> Programs {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("c-tests is inside the workspace");

    // Where this test run's artifacts are: <target>[/<triple>]/<profile>/callbacks.
    let profile_dir = Path::new(env!("CARGO_BIN_EXE_callbacks")).parent().expect("a binary is in a profile directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => panic!("unexpected artifact directory {}", profile_dir.display()),
    };
    let above = profile_dir.parent().expect("a profile directory is inside the target directory");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace).args([
        "build",
        "--quiet",
        "-p",
        "cgocheck-capi",
        "-p",
        "cgocheck-cmain",
        "--profile",
        profile,
    ]);
    if above.join("CACHEDIR.TAG").exists() {
        cmd.arg("--target-dir").arg(above);
    } else {
        // <target>/<triple>/<profile>: a cross-target build.
        let triple = above.file_name().and_then(|n| n.to_str()).expect("a target triple directory");
        cmd.arg("--target-dir").arg(above.parent().expect("target directory")).args(["--target", triple]);
    }
    let status = cmd.status().expect("cannot run cargo");
    assert!(status.success(), "building the static libraries failed: {cmd:?}");

    let link = |source: &str, lib: &str, out: &str| -> PathBuf {
        let lib = profile_dir.join(lib);
        assert!(lib.exists(), "{} was not built", lib.display());
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(out);
        let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
        let mut cmd = Command::new(cc);
        cmd.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pthread", "-g"])
            .arg("-I")
            .arg(workspace.join("runtime/include"))
            .arg(workspace.join(source))
            .arg(&lib)
            .args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"])
            .arg("-o")
            .arg(&out);
        let output = cmd.output().expect("cannot run the C compiler");
        assert!(
            output.status.success(),
            "compiling and linking {source} failed: {cmd:?}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    };
    Programs {
        cmain: link("c-tests/cmain/main.c", "libcgocheck_cmain.a", "cmain"),
        runtime_only: link("c-tests/cmain/runtime_only.c", "libcgocheck_capi.a", "runtime_only"),
    }
}

/// Runs `scenario` at `CGOCHECK=level` and checks the outcome; `Ok` also
/// requires main.c's closing "ok" line.
fn scenario(name: &str, level: &str, expect: Outcome) -> std::process::Output {
    let out = run_case(program(), name, level, &[]);
    verify(name, &format!("CGOCHECK={level}"), &out, expect);
    if let Outcome::Ok = expect {
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.ends_with("ok\n"), "scenario {name}: main.c's last line should be ok:\n{stdout}");
    }
    out
}

#[test]
fn calls_from_main_and_from_c_threads_at_every_level() {
    for level in ["0", "1", "2"] {
        scenario("basic", level, Outcome::Ok);
    }
}

#[test]
fn racing_first_calls_start_the_runtime_once() {
    for _ in 0..20 {
        scenario("race", "1", Outcome::Ok);
    }
}

#[test]
fn racing_cgocheck_init_starts_the_runtime_once() {
    for _ in 0..20 {
        scenario("race-init", "1", Outcome::Ok);
    }
}

#[test]
fn result_violation_is_reported_from_a_c_program() {
    let out = scenario("leak", "0", Outcome::Ok);
    assert!(String::from_utf8_lossy(&out.stdout).contains("C kept a managed pointer"), "level 0 checks nothing");
    for level in ["1", "2"] {
        let out = scenario(
            "leak",
            level,
            Outcome::Fail(&[
                "cgo result has Go pointer to unpinned Go pointer",
                "exported function GoLeak",
                "fatal error",
            ]),
        );
        assert_eq!(out.status.code(), Some(2), "a failed check ends the C program with exit status 2");
        assert!(out.stdout.is_empty(), "C never received the pointer");
    }
}

/// The runtime's own library and header, with no exported function: the
/// level a C program runs under is the one its environment sets.
#[test]
fn runtime_library_alone_reports_its_level() {
    for level in ["0", "1", "2"] {
        let out = run_case(&programs().runtime_only, "", level, &[]);
        verify("runtime_only", &format!("CGOCHECK={level}"), &out, Outcome::Ok);
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("main\nlevel {level}\nok\n"));
    }
}

/// A malformed `CGOCHECK` stops a C program with the message naming the
/// variable and exit status 2, before its `main` runs.
#[test]
fn bad_cgocheck_stops_a_c_program_before_main() {
    let out = run_case(&programs().runtime_only, "", "banana", &[]);
    verify("runtime_only", "CGOCHECK=banana", &out, Outcome::Fail(&["CGOCHECK", "banana"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "main ran: {}", String::from_utf8_lossy(&out.stdout));
}

/// The first exported call starts the scheduler as `cgocheck::run` does: it
/// reads `GOMAXPROCS`, and a bad value stops the C program there.
#[test]
fn first_call_starts_the_scheduler_too() {
    let out = run_case(program(), "basic", "1", &[("GOMAXPROCS", "zero")]);
    verify("basic", "GOMAXPROCS=zero", &out, Outcome::Fail(&["GOMAXPROCS", "\"zero\""]));
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

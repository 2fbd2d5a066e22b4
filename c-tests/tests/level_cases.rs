//! `CGOCHECK` and `GODEBUG=cgocheck` as a user sets them, end to end: a
//! malformed value stops the program before `main` with a message naming the
//! variable and the accepted values; good values run it.

use c_tests::harness::{run_case, verify, Outcome};
use std::path::Path;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_cases"))
}

/// Runs a case that passes at every good level with `CGOCHECK=value`.
fn with_cgocheck(value: &str, env: &[(&str, &str)]) -> std::process::Output {
    run_case(exe(), "c_reads_managed_struct", value, env)
}

#[test]
fn malformed_cgocheck_stops_the_program_at_start() {
    for bad in ["3", "banana", "-1", "1 ", "01x", "0x1"] {
        let out = with_cgocheck(bad, &[]);
        verify(
            "c_reads_managed_struct",
            &format!("CGOCHECK={bad:?}"),
            &out,
            Outcome::Fail(&["CGOCHECK", "0", "1", "2"]),
        );
        assert_eq!(out.status.code(), Some(2), "CGOCHECK={bad:?}: exit status 2, like Go's fatal errors");
    }
}

#[test]
fn malformed_godebug_cgocheck_names_godebug() {
    let mut cmd = std::process::Command::new(exe());
    cmd.arg("c_reads_managed_struct").env_remove("CGOCHECK").env("GODEBUG", "cgocheck=9");
    let out = c_tests::harness::watched_output(&mut cmd);
    verify("c_reads_managed_struct", "GODEBUG=cgocheck=9", &out, Outcome::Fail(&["GODEBUG", "cgocheck"]));
}

#[test]
fn godebug_malformed_last_cgocheck_stops_the_program() {
    // Go would skip `x` and keep 2; here the last word must be a level.
    let mut cmd = std::process::Command::new(exe());
    cmd.arg("c_reads_managed_struct").env_remove("CGOCHECK").env("GODEBUG", "cgocheck=2,cgocheck=x");
    let out = c_tests::harness::watched_output(&mut cmd);
    verify(
        "c_reads_managed_struct",
        "GODEBUG=cgocheck=2,cgocheck=x",
        &out,
        Outcome::Fail(&["GODEBUG=cgocheck", "\"x\""]),
    );
    // Go skips the malformed item and honours the later one: so do we.
    let mut cmd = std::process::Command::new(exe());
    cmd.arg("c_reads_managed_struct").env_remove("CGOCHECK").env("GODEBUG", "cgocheck=x,cgocheck=1");
    verify(
        "c_reads_managed_struct",
        "GODEBUG=cgocheck=x,cgocheck=1",
        &c_tests::harness::watched_output(&mut cmd),
        Outcome::Ok,
    );
}

#[test]
fn good_levels_run() {
    // Go's number syntax (`01`, `+2`) and empty as unset, as for every variable.
    for good in ["0", "1", "2", "01", "+2", ""] {
        verify("c_reads_managed_struct", &format!("CGOCHECK={good}"), &with_cgocheck(good, &[]), Outcome::Ok);
    }
}

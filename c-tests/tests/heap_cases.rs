//! The heap cases of the `cases` binary, each as its own process at
//! CGOCHECK=0, 1 and 2. Heap behaviour does not depend on the level, so
//! every row expects the same at all three; the rows still run all three so
//! that a level-dependent regression shows.

use c_tests::case_rows;
use c_tests::harness::{all, Outcome::*};

case_rows! {
    c_reads_managed_struct => all(Ok),
    c_writes_managed_slice => all(Ok),
    c_walks_managed_list => all(Ok),
    c_compares_managed_string => all(Ok),
    c_reads_managed_global => all(Ok),
    handle_kept_by_c => all(Ok),
    handle_deleted_then_used_by_c => all(Fail(&["invalid Handle"])),
    pinner_dropped_while_pinning => all(OkSaying(&["Pinner", "Unpin"])),
}

/// The harness must fail on a case that does not exist (exit 3), or every
/// row above could pass by running nothing.
#[test]
fn unknown_case_fails() {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_cases"));
    let out = c_tests::harness::run_case(exe, "no_such_case", "1", &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("c_reads_managed_struct"));
}

//! The `CGOCHECK=2` quarantine end to end: the `quarantine` binary's cases
//! (C keeping a pointer it was lent, Rust keeping a `Gc` in a `Box`), each
//! run as its own process, judged by exit status and report.
//!
//! At levels 0 and 1 a use after free reads or corrupts whatever the
//! memory holds next (the spec's note ²): those runs are not judged, except
//! for the cases that must pass at every level.

use c_tests::harness::{all, check_case, run_case, verify, Outcome::*};
use std::path::Path;

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_quarantine"))
}

/// Runs `case` at level 2 only.
fn at_level_2(case: &str, env: &[(&str, &str)], phrases: &'static [&'static str]) {
    let out = run_case(exe(), case, "2", env);
    verify(case, "CGOCHECK=2", &out, Fail(phrases));
}

/// The spec's `quarantine` row: the report names what happened, the
/// object and its type, the collection, the C call that kept it, the fix,
/// and the C frame that read it, with file:line, then its managed callers.
#[test]
fn c_reading_a_kept_pointer_after_collection_faults_with_the_story() {
    at_level_2(
        "keep",
        &[],
        &[
            "cgocheck: C read a managed object the collector freed (CGOCHECK=2 quarantine)",
            "is 8 bytes into the 24-byte object of type qrec at 0x",
            "freed by collection ",
            "it was last handed to C by the call q_keep(argument 1) from task 1 (not pinned)",
            "fix: C kept the pointer after the call returned. Pin the object with a Pinner",
            "Handle",
            "SIGSEGV: segmentation violation",
            "signal arrived during cgo execution",
            "q_read_kept(...)",
            "csrc/quarantine.c:28",
            "quarantine::keep(...)",
        ],
    );
}

/// Lent on one thread, read by C on another: the lender's cached span is
/// let go at its next refill, so it is inaccessible when C reads.
#[test]
fn a_record_lent_by_another_thread_faults_too() {
    at_level_2(
        "keep_other_thread",
        &[("GOMAXPROCS", "2")],
        &[
            "cgocheck: C read a managed object the collector freed (CGOCHECK=2 quarantine)",
            "the 24-byte object of type qrec",
            "it was last handed to C by the call q_keep(argument 1) from task 2 (not pinned)",
            "q_read_kept(...)",
        ],
    );
}

/// Pinned while C keeps it: no report at any level over 100 collections,
/// and C reads what the program wrote.
#[test]
fn a_pinned_kept_object_survives_100_collections_at_every_level() {
    check_case(exe(), "keep_pinned", &[], all(Ok));
}

/// A C write into the freed object, when its slot would have been reused:
/// found when the object leaves the quarantine, reported as a write with
/// the offset and the call that lent it.
#[test]
fn a_c_write_after_free_is_reported_with_its_offset() {
    at_level_2(
        "write_after_free",
        &[("CGOCHECK_QUARANTINE", "256KiB")],
        &[
            "cgocheck: C wrote into a managed object freed by the collector (CGOCHECK=2 quarantine)",
            "the 24-byte object of type qrec at 0x",
            "the word at offset 8 (0x",
            "was overwritten with 0x63",
            "it was last handed to C by the call q_keep(argument 1)",
            "fatal error: write into freed managed memory",
        ],
    );
}

/// The same write, then the span's last live object dies and the span is
/// made inaccessible: the write is found before the protection hides it.
#[test]
fn a_c_write_is_found_before_its_span_is_protected() {
    at_level_2(
        "write_then_span_dies",
        &[],
        &[
            "cgocheck: C wrote into a managed object freed by the collector (CGOCHECK=2 quarantine)",
            "the word at offset 8 (0x",
            "was overwritten with 0x63",
            "it was last handed to C by the call q_keep(argument 1)",
            "fatal error: write into freed managed memory",
        ],
    );
}

/// C loads a pointer field of the freed object and follows it: the poison
/// is no address, and the report finds the word it came from in a register.
#[test]
fn a_pointer_loaded_from_a_freed_object_is_traced_to_its_word() {
    at_level_2(
        "next_pointer",
        &[],
        &[
            "cgocheck: C used a managed object the collector freed (CGOCHECK=2 quarantine)",
            "holds 0xfdfd",
            "the faulting code loaded a pointer from freed memory and used it",
            "that word is 16 bytes into the 24-byte object of type qrec",
            "it was last handed to C by the call q_keep(argument 1)",
            "q_read_kept_next(...)",
            "csrc/quarantine.c:39",
        ],
    );
}

/// Rust-side misuse: a `Gc` kept in a `Box` and used after the collector
/// freed its object (no C frame involved).
#[test]
fn a_gc_kept_in_a_box_and_used_after_collection_is_reported() {
    at_level_2(
        "box_use",
        &[],
        &[
            "cgocheck: managed object used after the collector freed it: nothing the collector scans referred to it",
            "the 24-byte object of type qrec",
            "a Root",
            "quarantine::box_use(...)",
        ],
    );
}

/// C keeps what an exported function returned, pinned then and unpinned
/// too early: the report names the exported function and the fix for a pin
/// that ended while C kept the pointer.
#[test]
fn a_kept_result_unpinned_too_early_names_the_exported_function() {
    at_level_2(
        "keep_result",
        &[],
        &[
            "cgocheck: C read a managed object the collector freed (CGOCHECK=2 quarantine)",
            "the 24-byte object of type qrec",
            "it was last handed to C by the result of the exported function QMakeRecord, returned to C by task 1 \
             (pinned then)",
            "fix: it was pinned then, but unpinned (or its Pinner dropped) while C still kept it",
            "q_read_kept(...)",
        ],
    );
}

/// The bound holds under churn, and the quarantine costs about its bound
/// in memory: the level-2 run's peak RSS is within the bound, plus 8 MiB
/// of slack, of the level-1 run's. The slack covers what is not yet under
/// the bound: a sweeper's candidates waiting to be held together (up to
/// 256 spans) and, under load, a sweep lagging behind allocation (measured
/// on 2 loaded cores: 13 MiB over level 1 with the 8 MiB bound).
#[test]
fn the_quarantine_stays_within_its_bound_under_churn() {
    const BOUND_MIB: u64 = 8;
    let env = [("CGOCHECK_QUARANTINE", "8MiB")];
    let peak = |level: &str| -> u64 {
        let out = run_case(exe(), "bound", level, &env);
        verify("bound", &format!("CGOCHECK={level}"), &out, Ok);
        let stdout = String::from_utf8_lossy(&out.stdout);
        stdout
            .lines()
            .find_map(|l| l.strip_prefix("peak_rss_kb "))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("bound printed no peak RSS:\n{stdout}"))
    };
    let (one, two) = (peak("1"), peak("2"));
    assert!(
        two <= one + (BOUND_MIB + 8) * 1024,
        "peak RSS {two} KiB at level 2, {one} KiB at level 1: more than the {BOUND_MIB} MiB bound and 8 MiB of slack apart"
    );
}

/// A bound of 0 releases everything as soon as it is listed, and never
/// waits for what a sweeper has not listed yet (it would spin for ever).
#[test]
fn a_zero_bound_releases_at_once_and_churn_completes() {
    let out = run_case(exe(), "bound", "2", &[("CGOCHECK_QUARANTINE", "0")]);
    verify("bound", "CGOCHECK=2 CGOCHECK_QUARANTINE=0", &out, Ok);
}

/// A malformed bound is refused at start, naming what is accepted.
#[test]
fn a_malformed_bound_is_refused_with_the_accepted_values() {
    for bad in ["lots", "10%%", "64MB", "2000%"] {
        let out = run_case(exe(), "keep_pinned", "2", &[("CGOCHECK_QUARANTINE", bad)]);
        verify(
            "keep_pinned",
            &format!("CGOCHECK_QUARANTINE={bad}"),
            &out,
            Fail(&["cgocheck: CGOCHECK_QUARANTINE:", "is not a quarantine size", "percentage of the live heap"]),
        );
    }
}

//! The callback rows of shared/spec/pointer-cases.md end to end: real C
//! (csrc/callback.c) calls managed functions exported with
//! `cgocheck::export!`, each case in its own process at `CGOCHECK=0`, 1 and
//! 2 (the `callbacks` binary; see `c_tests::harness`).
//!
//! Only results are checked, as in Go: an exported function returning an
//! unpinned managed pointer (export1) or a managed map (retmap) fails at 1
//! and 2 with the checker's message naming the function; C memory
//! (exportok) and pinned managed memory (exportpinned) pass everywhere.
//!
//! The spec's handle row is two cases: `handle` (C keeps a Handle across
//! calls and calls back with it; it resolves) and `handle_deleted` (the
//! deleted Handle used again: a panic with Go's words at every level).
//! `nocallback` fails at every level, as in Go (the spec's footnote: it is
//! not a pointer check). `cthread` checks that all 8 × 10000 calls from C-created threads run,
//! each C thread's on that thread; `panic_on_c_thread` that a panic with no
//! managed caller is a fatal report, never an unwind into C; `cthread` also
//! that the extra Ms bound to the C threads are released when the threads
//! exit, and reused by the next ones. `cthread_lock`: callbacks on C
//! threads holding a `std` mutex longer than a scheduling turn at
//! GOMAXPROCS=1 all finish (a callback is never given a turn). `nested`: a panic three managed
//! levels down, below two C frames, is caught by the outermost managed
//! caller without running any more C, with the M's counters and g0 SP back
//! at rest, then 10000 nested calls run normally. `work` and `block`: a
//! callback allocates, spawns and joins, and blocks with GOMAXPROCS=1 while
//! another task runs.

use c_tests::case_rows;
use c_tests::harness::{all, Outcome::*};

const RES: &[&str] =
    &["cgo result has Go pointer to unpinned Go pointer", "exported function GoFn21, result returned to C"];
const RES_MAP: &[&str] = &["cgo result has Go pointer to unpinned Go map", "exported function GoMap47"];

case_rows! {
    bin: "callbacks";
    export1 => [Ok, Fail(RES), Fail(RES)],
    exportok => all(Ok),
    exportpinned => all(Ok),
    retmap => [Ok, Fail(RES_MAP), Fail(RES_MAP)],
    handle => all(Ok),
    handle_deleted => all(Fail(&["misuse of an invalid Handle"])),
    cthread => all(Ok),
    cthread_lock => all(Ok),
    qsort => all(Ok),
    panic_on_c_thread => all(Fail(&["boom from a C thread", "fatal error"])),
    nocallback => all(Fail(&["function marked nocallback called back", "C function ct_nocallback_calls_go", "exported function GoNoCallback"])),
    nested => all(Ok),
    work => all(Ok),
    block => all(Ok),
}

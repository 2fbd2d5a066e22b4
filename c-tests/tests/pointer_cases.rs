//! The managed → C rows of the pointer-passing table (Go's `ptr_test.go`
//! and this project's own rows, listed in the README's pointer rules), end
//! to end: each row is a case of the `ptrcases` binary, run as its own
//! process at `CGOCHECK=0`, `1` and `2`, with the outcome each level must
//! have and the message class phrase (plus the call it names) on a
//! failure.
//!
//! The rows that need C to call managed code (export1, exportok, retmap,
//! nocallback, handle, nested, cthread) are in `callback_rows.rs`; the
//! quarantine row is in `quarantine.rs`.

use c_tests::case_rows;
use c_tests::harness::{all, run_case, verify, Outcome, Outcome::*};
use std::path::Path;

/// The `arg` class, naming the call.
macro_rules! arg {
    ($call:literal) => {
        Fail(&["cgo argument has Go pointer to unpinned Go pointer", concat!("call:     ", $call)])
    };
}

/// The `store` class, naming the store API.
macro_rules! store {
    ($op:literal) => {
        Fail(&["unpinned Go pointer stored into non-Go memory", concat!("store:    ", $op)])
    };
}

const STACK_EXTENT: Outcome = Fail(&[
    "cgo argument points into a task stack without saying how much of it C may use",
    "call:     ct_sum_bytes, argument 1",
    "field(&x)",
    "elem(&a, i)",
    "pointee::<T>(p)",
    "extent(p, n)",
]);
const FIELD_OF_ELEM: Outcome = Fail(&[
    "cgo argument has Go pointer to unpinned Go pointer",
    "call:     f8, argument 1",
    "path:     arg 1 → (its array)[1]",
]);
const END_FIELD: Outcome = Fail(&[
    "cgo argument has Go pointer to unpinned Go pointer",
    "call:     ct_stream_last, argument 1",
    "path:     arg 1 → .next_in",
    "end of:   this pointer (0x",
    "is the end of object A (Go object 0x",
    "4096 bytes, [4096]uint8), pinned); the check looked at the object after it, B (Go object 0x",
    "extent(p, 0)",
    "one spare byte",
]);
const END_ARG: Outcome = Fail(&[
    "cgo argument has Go pointer to unpinned Go pointer",
    "call:     ct_sum_bytes, argument 1",
    "path:     arg 1 → [7]",
    "end of:   the argument (0x",
    "is the end of object A (Go object 0x",
    "extent(p, 0)",
]);
const UNALLOCATED: Outcome = Fail(&[
    "cgo argument points to Go memory that is not an allocated object",
    "call:     f10, argument 1",
    "a Go heap slot that was never allocated",
    "in a span of lonely",
]);

case_rows! {
    bin: "ptrcases";
    ptr1 => [Ok, arg!("f1, argument 1"), arg!("f1, argument 1")],
    ptr2 => [Ok, arg!("f1, argument 1"), arg!("f1, argument 1")],
    ok1 => all(Ok),
    ptrfield => [Ok, arg!("f4, argument 1"), arg!("f4, argument 1")],
    ptrfieldok => all(Ok),
    sliceok1 => all(Ok),
    sliceptr1 => [Ok, arg!("f7, argument 1"), arg!("f7, argument 1")],
    sliceptr2 => [Ok, arg!("f8, argument 1"), arg!("f8, argument 1")],
    sliceok2 => all(Ok),
    sliceok3 => all(Ok),
    varok => all(Ok),
    barrier => [Ok, Ok, store!("pointer write")],
    barrierpinnedok => all(Ok),
    barrierslice => [Ok, Ok, store!("slice copy of [1]*int8")],
    barriergcprogarray => [Ok, Ok, store!("typed memmove of [32769]*int8")],
    barriergcprogstruct => [Ok, Ok, store!("typed memmove of s19a")],
    passstring => all(Ok),
    ptrdata1 => all(Ok),
    defer1 => [Ok, arg!("f28, argument 1"), arg!("f28, argument 1")],
    union2 => all(Ok),
    preemptduringcall => all(Ok),
    chanrecv => all(Ok),
    structfield => all(Ok),
    buffer => all(Ok),
    finalizer => all(Ok),
    stringdata => all(Ok),
    slicedata2 => all(Ok),
    arraypointer => all(Ok),
    argmap => [
        Ok,
        Fail(&["cgo argument has Go pointer to unpinned Go map", "call:     f46, argument 1"]),
        Fail(&["cgo argument has Go pointer to unpinned Go map", "call:     f46, argument 1"]),
    ],
    // Beyond Go.
    extent_known => all(Ok),
    extent_unknown => [Ok, arg!("f10, argument 1"), arg!("f10, argument 1")],
    // Former silent passes: an unknown pointer into a task stack is refused
    // (naming the wrappers); into a managed global, the whole global is
    // checked; `field(&s[i])` checks the whole backing array, as Go's &s[i].
    stack_unknown => [Ok, STACK_EXTENT, STACK_EXTENT],
    stack_buffer_hinted => all(Ok),
    global_unknown => [Ok, arg!("f7, argument 1"), arg!("f7, argument 1")],
    global_nil => all(Ok),
    field_of_slice_elem => [Ok, FIELD_OF_ELEM, FIELD_OF_ELEM],
    field_of_slice_elem_pinned => all(Ok),
    // Messages: an end pointer names both objects; a never-allocated slot
    // is not called freed.
    end_pointer_field => [Ok, END_FIELD, END_FIELD],
    end_pointer_spare_byte => all(Ok),
    end_pointer_arg => [Ok, END_ARG, END_ARG],
    end_pointer_extent0 => all(Ok),
    end_pointer_before_nothing => all(Ok),
    unallocated_slot => [Ok, UNALLOCATED, UNALLOCATED],
    allocated_slot => all(Ok),
    // A backtrace taken inside C shows the managed caller.
    backtrace_from_c => all(Ok),
    // Bad input.
    null_function_pointer => all(Fail(&["call through a null C function pointer (BinOp)"])),
}

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ptrcases"))
}

/// The spec's `message` row: ptr1's message names the C function, the
/// argument, the field path, the managed type, both addresses (printed by
/// the case on stdout before the call) and the fix.
#[test]
fn message() {
    verify("message", "CGOCHECK=0", &run_case(exe(), "message", "0", &[]), Outcome::Ok);
    for level in ["1", "2"] {
        let out = run_case(exe(), "message", level, &[]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let (s1, p) = stdout
            .trim()
            .split_once(' ')
            .and_then(|(a, b)| Some((a.strip_prefix("s1=")?.to_string(), b.strip_prefix("p=")?.to_string())))
            .unwrap_or_else(|| panic!("the case prints the addresses first; stdout: {stdout:?}"));
        let phrases = [
            "cgo argument has Go pointer to unpinned Go pointer".to_string(),
            "call:     f1, argument 1".to_string(),
            "path:     arg 1 → .p".to_string(),
            format!("pointer:  {p}, into Go object {p} (8 bytes, int32), not pinned"),
            format!("found at: {s1}, in Go object {s1} (8 bytes, s1)"),
            "fix:      pin it with a Pinner, or pass a Handle".to_string(),
        ];
        let leaked: Vec<&'static str> = phrases.into_iter().map(|s| &*s.leak()).collect();
        verify("message", &format!("CGOCHECK={level}"), &out, Outcome::Fail(leaked.leak()));
    }
}

/// Calling C before `cgocheck::run` started the runtime is refused clearly
/// at every level (it is not a pointer check).
#[test]
fn before_run() {
    for level in ["0", "1", "2"] {
        let out = run_case(exe(), "before_run", level, &[]);
        verify("before_run", &format!("CGOCHECK={level}"), &out, Outcome::Fail(&["cgocheck::run"]));
    }
}

/// The harness must fail on a case that does not exist (exit 3), or every
/// row above could pass by running nothing.
#[test]
fn unknown_case_fails() {
    let out = run_case(exe(), "no_such_case", "1", &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("ptr1"));
}

/// A never-allocated slot is not called freed: "freed" is reserved for
/// what was freed (the row above checks the words it must say).
#[test]
fn unallocated_is_not_called_freed() {
    let out = run_case(exe(), "unallocated_slot", "1", &[]);
    verify("unallocated_slot", "CGOCHECK=1", &out, UNALLOCATED);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("freed") && !stderr.contains("dangles"), "{stderr}");
}

/// A Pinner dropped while a panic unwinds unpins silently: no "forgot to
/// call Unpin()" warning burying the panic (the case asserts the unpin).
/// Its twin, a Pinner dropped without a panic, warns: `heap_cases.rs`'s
/// `pinner_dropped_while_pinning`.
#[test]
fn pinner_dropped_while_panicking() {
    for level in ["0", "1", "2"] {
        let out = run_case(exe(), "pinner_dropped_while_panicking", level, &[]);
        verify("pinner_dropped_while_panicking", &format!("CGOCHECK={level}"), &out, Outcome::Ok);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("forgot to call Unpin"), "no leak warning while unwinding: {stderr}");
    }
}

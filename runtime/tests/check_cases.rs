//! Every row of `shared/spec/pointer-cases.md` that does not need the call
//! layer or threads, as direct calls to the checker with real heap objects,
//! asserted at CGOCHECK=0, 1 and 2 through the runtime's level gate.
//!
//! Each test says how cmd/cgo would check the Go version of the row (which
//! hint it passes), and passes the same hint. Rows left to the call layer's
//! end-to-end suite: preemptduringcall, chanrecv, nocallback, cthread,
//! nested, quarantine (c-tests' `quarantine.rs`), and the GC part of
//! finalizer.
//!
//! The `unsafe` blocks call the checker on values this test just built:
//! live heap objects, stack slots and C memory, each of the type the call
//! describes. That is their safety argument, stated once here.

mod check_util;

use cgocheck::checker::{check_arg, check_pointer, check_result, Checks, Hint};
use cgocheck::checker::{check_memmove, check_ptr_write, check_slice_copy, Class, GoKind};
use cgocheck::{new, new_slice, new_string, CType, Gc, GcSlice, GcStr, Handle, Pinner};
use check_util::*;
use core::ffi::{c_char, c_void};

const ARGS: Checks = Checks::Args;
const STORES: Checks = Checks::Stores;

fn ptr<T>(p: *const T) -> *const u8 {
    p.cast()
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    p: Gc<i32>,
}

#[test]
fn ptr1() {
    cgocheck::run_test(|| {
        // C.f1(&C.s1{new(C.int)}): `&x` → the element hint.
        let s = new(S1 { p: new(0) });
        row(
            "ptr1",
            ARGS,
            || unsafe { check_pointer(mem(), site("f1", 1), ptr(s.as_ptr()), Some(S1::TYPE), Hint::Element) },
            FAIL_ARG,
        );
    });
}

#[test]
fn ptr2() {
    cgocheck::run_test(|| {
        // p := &C.s2{new(C.int)}; C.f2(p): a variable → unknown pointer.
        let s = new(S1 { p: new(0) });
        row(
            "ptr2",
            ARGS,
            || unsafe { check_pointer(mem(), site("f2", 1), ptr(s.as_ptr()), Some(S1::TYPE), Hint::Unknown) },
            FAIL_ARG,
        );
        // The same through check_arg on the pointer value.
        row("ptr2/arg", ARGS, || unsafe { check_arg(mem(), site("f2", 1), <Gc<S1>>::TYPE, ptr(&s)) }, FAIL_ARG);
    });
}

#[derive(CType)]
#[repr(C)]
struct S3 {
    i: i32,
    p: Gc<i32>,
}

#[test]
fn ok1() {
    cgocheck::run_test(|| {
        let s = new(S3 { i: 0, p: new(0) });
        let pi = &s.i as *const i32;
        row(
            "ok1",
            ARGS,
            || unsafe { check_pointer(mem(), site("f3", 1), ptr(pi), Some(i32::TYPE), Hint::Element) },
            OK,
        );
    });
}

#[test]
fn ptrfield() {
    cgocheck::run_test(|| {
        let s = new(S3 { i: 0, p: new(0) });
        let pp = &s.p as *const Gc<i32>;
        row(
            "ptrfield",
            ARGS,
            || unsafe { check_pointer(mem(), site("f4", 1), ptr(pp), Some(<Gc<i32>>::TYPE), Hint::Element) },
            FAIL_ARG,
        );
    });
}

#[derive(CType)]
#[repr(C)]
struct S5 {
    p1: Gc<i32>,
    p2: Gc<i32>,
}

#[test]
fn ptrfieldok() {
    cgocheck::run_test(|| {
        let s = new(S5 { p1: Gc::null(), p2: new(0) });
        let pp = &s.p1 as *const Gc<i32>;
        row(
            "ptrfieldok",
            ARGS,
            || unsafe { check_pointer(mem(), site("f5", 1), ptr(pp), Some(<Gc<i32>>::TYPE), Hint::Element) },
            OK,
        );
    });
}

/// `&s[0]` of a managed slice: the whole-array hint over the slice.
fn whole_slice<T: CType>(func: &'static str, s: &GcSlice<T>) -> Result<(), cgocheck::checker::CheckError> {
    let hint = Hint::Whole { ty: <GcSlice<T>>::TYPE, value: ptr(s) };
    unsafe { check_pointer(mem(), site(func, 1), ptr(s.elem_ptr(0)), Some(T::TYPE), hint) }
}

#[test]
fn sliceok1() {
    cgocheck::run_test(|| {
        let s = new_slice::<*mut c_void>(1);
        row("sliceok1", ARGS, || whole_slice("f6", &s), OK);
    });
}

#[test]
fn sliceptr1() {
    cgocheck::run_test(|| {
        let s = new_slice::<*mut c_void>(1);
        unsafe { s.as_mut_slice()[0] = new(0i64).as_ptr().cast() };
        row("sliceptr1", ARGS, || whole_slice("f7", &s), FAIL_ARG);
    });
}

#[test]
fn sliceptr2() {
    cgocheck::run_test(|| {
        let s = new_slice::<*mut c_void>(2);
        unsafe { s.as_mut_slice()[1] = new(0i64).as_ptr().cast() };
        row("sliceptr2", ARGS, || whole_slice("f8", &s), FAIL_ARG);
        let e = whole_slice("f8", &s).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → (its slice)[1]");
    });
}

#[derive(CType)]
#[repr(C)]
struct S9 {
    p: Gc<i64>,
    s: GcSlice<*mut c_void>,
}

#[test]
fn sliceok2() {
    cgocheck::run_test(|| {
        let o = new(S9 { p: new(0), s: new_slice(1) });
        row("sliceok2", ARGS, || whole_slice("f9", &o.s), OK);
    });
}

#[derive(CType)]
#[repr(C)]
struct S10 {
    p: Gc<i64>,
    a: [u8; 4],
}

/// A slice header `{ ptr, len, cap }` over memory the test points at.
fn header(p: *const u8, len: usize) -> [usize; 3] {
    [p as usize, len, len]
}

#[test]
fn sliceok3() {
    cgocheck::run_test(|| {
        // s := p.a[:]; C.f10(unsafe.Pointer(&s[0]))
        let o = new(S10 { p: new(0), a: [0; 4] });
        let s = header(o.a.as_ptr(), 4);
        let hint = Hint::Whole { ty: <GcSlice<u8>>::TYPE, value: ptr(&s) };
        row("sliceok3", ARGS, || unsafe { check_pointer(mem(), site("f10", 1), o.a.as_ptr(), None, hint) }, OK);
    });
}

cgocheck::managed_static! {
    static HELLO12: [c_char; 5] = [b'h' as c_char, b'e' as c_char, b'l' as c_char, b'l' as c_char, b'o' as c_char];
}

#[test]
fn varok() {
    // parg := [1]*C.char{&hello12[0]}; C.f12(&parg[0]) — the local array on
    // a task stack, its element a pointer into a pointer-free managed global.
    let mut stack = TaskStack::new(12);
    let parg = stack.push([HELLO12.as_ptr() as *const c_char]);
    let hint = Hint::Whole { ty: <[*const c_char; 1]>::TYPE, value: ptr(parg) };
    row(
        "varok",
        ARGS,
        || unsafe { check_pointer(mem(), site("f12", 1), ptr(parg), Some(<*const c_char>::TYPE), hint) },
        OK,
    );
}

#[test]
fn barrier() {
    cgocheck::run_test(|| {
        // p := C.f14a(); *p = new(C.char) — through the store API.
        let c = CMem::new(8);
        let x = new(0 as c_char);
        row("barrier", STORES, || check_ptr_write(mem(), c.ptr, ptr(x.as_ptr())), FAIL_STORE);
        let msg = check_ptr_write(mem(), c.ptr, ptr(x.as_ptr())).unwrap_err().to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[1], format!("    store:    pointer write to non-Go memory at {:#x}", c.ptr as usize));
        assert!(lines[3].starts_with(&format!("    pointer:  {:#x}, into Go object", x.addr())), "{msg}");
        assert_eq!(lines.last().unwrap(), &"    fix:      pin it with a Pinner before storing it, or store a Handle");
    });
}

#[test]
fn barrierpinnedok() {
    cgocheck::run_test(|| {
        let c = CMem::new(8);
        let x = new(0 as c_char);
        let mut pinner = Pinner::new();
        pinner.pin(x);
        row("barrierpinnedok", STORES, || check_ptr_write(mem(), c.ptr, ptr(x.as_ptr())), OK);
        pinner.unpin();
    });
}

#[derive(CType)]
#[repr(C)]
struct S16 {
    a: [*mut c_char; 10],
}

#[test]
fn barrierslice() {
    cgocheck::run_test(|| {
        // copy(p.a[:], []*C.char{new(C.char)})
        let c = CMem::new(core::mem::size_of::<S16>());
        let s = new_slice::<*mut c_char>(1);
        unsafe { s.as_mut_slice()[0] = new(0 as c_char).as_ptr() };
        let dst = unsafe { (*c.cast::<S16>()).a.as_mut_ptr() };
        row(
            "barrierslice",
            STORES,
            || unsafe { check_slice_copy(mem(), <*mut c_char>::TYPE, ptr(dst), ptr(s.as_ptr()), 1) },
            FAIL_STORE,
        );
    });
}

type Big = [*mut c_char; 32769];

#[test]
fn barriergcprogarray() {
    cgocheck::run_test(|| {
        // p.a = [32769]*C.char{new(C.char)}: a typed memmove of the whole array.
        let c = CMem::new(core::mem::size_of::<Big>());
        let src = cgocheck::heap().alloc(Big::TYPE, 1) as *mut Big;
        unsafe { (*src)[0] = new(0 as c_char).as_ptr() };
        row("barriergcprogarray", STORES, || unsafe { check_memmove(mem(), Big::TYPE, c.ptr, ptr(src)) }, FAIL_STORE);
    });
}

#[derive(CType)]
#[repr(C)]
struct S19a {
    a: Big,
}

#[derive(CType)]
#[repr(C)]
struct S19b {
    f: S19a,
}

#[test]
fn barriergcprogstruct() {
    cgocheck::run_test(|| {
        // p.f = C.struct_s19a{[32769]*C.char{new(C.char)}}
        let c = CMem::new(core::mem::size_of::<S19b>());
        let src = cgocheck::heap().alloc(S19a::TYPE, 1) as *mut S19a;
        unsafe { (*src).a[0] = new(0 as c_char).as_ptr() };
        let dst = unsafe { &raw mut (*c.cast::<S19b>()).f };
        row(
            "barriergcprogstruct",
            STORES,
            || unsafe { check_memmove(mem(), S19a::TYPE, ptr(dst), ptr(src)) },
            FAIL_STORE,
        );
        let e = unsafe { check_memmove(mem(), S19a::TYPE, ptr(dst), ptr(src)) }.unwrap_err();
        assert_eq!(e.report().path.to_string(), "value.a[0]");
    });
}

#[test]
fn export1() {
    cgocheck::run_test(|| {
        // func GoFn21() *byte { return new(byte) }
        let r = new(0u8);
        row("export1", ARGS, || unsafe { check_result(mem(), "GoFn21", <Gc<u8>>::TYPE, ptr(&r)) }, FAIL_RES);
    });
}

#[test]
fn exportok() {
    let c = CMem::new(1);
    let r = c.ptr;
    row("exportok", ARGS, || unsafe { check_result(mem(), "GoFn22", <*mut u8>::TYPE, ptr(&r)) }, OK);
}

#[test]
fn passstring() {
    cgocheck::run_test(|| {
        let s = new_string("a");
        row("passstring", ARGS, || unsafe { check_arg(mem(), site("f23", 1), GcStr::TYPE, ptr(&s)) }, OK);
        assert_eq!(s.as_str(), "a");
    });
}

#[derive(CType)]
#[repr(C)]
struct S26 {
    p: Gc<i64>,
    a: [u8; 64],
    u: usize,
}

#[test]
fn ptrdata1() {
    cgocheck::run_test(|| {
        // A uintptr holding a managed address, copied into malloc'd memory.
        let i = new(0i64);
        let c = CMem::new(core::mem::size_of::<S26>());
        unsafe { c.cast::<S26>().write(S26 { p: Gc::null(), a: [0; 64], u: i.addr() }) };
        row("ptrdata1", ARGS, || unsafe { check_pointer(mem(), site("f26", 1), c.ptr, None, Hint::Unknown) }, OK);
        // Beyond the row: the same object in the heap, whole-object walk; `u`
        // is not a pointer word, so it is not looked at.
        let h = new(S26 { p: Gc::null(), a: [0; 64], u: i.addr() });
        row(
            "ptrdata1/heap",
            ARGS,
            || unsafe { check_pointer(mem(), site("f26", 1), ptr(h.as_ptr()), None, Hint::Unknown) },
            OK,
        );
    });
}

#[test]
fn defer1() {
    cgocheck::run_test(|| {
        // p := &C.s28{}; defer C.f28(p); p.p = new(C.int): checked when it runs.
        let s = new(S1 { p: Gc::null() });
        let deferred =
            move || unsafe { check_pointer(mem(), site("f28", 1), ptr(s.as_ptr()), Some(S1::TYPE), Hint::Unknown) };
        unsafe { s.as_mut().p = new(0) };
        row("defer1", ARGS, deferred, FAIL_ARG);
    });
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "u39")]
union U39 {
    i: u64,
}

#[test]
fn union2() {
    cgocheck::run_test(|| {
        // var b C.char; p := &b; C.f39((*C.u39)(unsafe.Pointer(&p))): `p` is a
        // local (on a task stack) holding a managed pointer; u39 has no
        // pointer fields, so nothing is checked.
        let b = new(0 as c_char);
        let mut stack = TaskStack::new(39);
        let p = stack.push(b);
        assert!(!U39::TYPE.has_pointers());
        row(
            "union2",
            ARGS,
            || unsafe { check_pointer(mem(), site("f39", 1), ptr(p), Some(U39::TYPE), Hint::Element) },
            OK,
        );
        let _ = U39 { i: 0 };
    });
}

#[derive(CType)]
#[repr(C)]
struct S33 {
    p: Gc<i64>,
    a: [u8; 8],
    u: usize,
}

#[test]
fn structfield() {
    cgocheck::run_test(|| {
        // C.f33(unsafe.Pointer(&s.a)): `&x.f` → element hint with type [8]byte.
        let s = new(S33 { p: new(0), a: [0; 8], u: 0 });
        let pa = &s.a as *const [u8; 8];
        row(
            "structfield",
            ARGS,
            || unsafe { check_pointer(mem(), site("f33", 1), ptr(pa), Some(<[u8; 8]>::TYPE), Hint::Element) },
            OK,
        );
    });
}

#[derive(CType)]
#[repr(C)]
struct Buffer {
    buf: GcSlice<u8>,
    off: usize,
    last: Gc<i64>,
}

#[test]
fn buffer() {
    cgocheck::run_test(|| {
        // C.f36(unsafe.Pointer(&b.Bytes()[0])): the slice indexed is checked.
        let b = new(Buffer { buf: new_slice(16), off: 0, last: new(0) });
        row("buffer", ARGS, || whole_slice("f36", &b.buf), OK);
    });
}

#[test]
fn finalizer() {
    cgocheck::run_test(|| {
        // 10000 allocations of 4 KiB kept in a growing managed list, dropped
        // every 100, with a collection and a checked C call in between. (The
        // collector's half, what it frees and keeps, is checked end to end by
        // c-tests' ptrcases `finalizer`.)
        let mut list = GcSlice::<GcSlice<u8>>::nil();
        for i in 0..10000 {
            // SAFETY: no reference to the list's elements past its length.
            list = unsafe { list.append(&[new_slice(4096)]) };
            if i % 100 == 0 {
                list = GcSlice::nil();
                cgocheck::gc();
                let o = new(S33 { p: Gc::null(), a: [0; 8], u: 0 });
                row(
                    "finalizer",
                    ARGS,
                    || unsafe { check_pointer(mem(), site("f37", 1), ptr(o.as_ptr()), None, Hint::Unknown) },
                    OK,
                );
            }
        }
    });
}

#[derive(CType)]
#[repr(C)]
struct S41 {
    a: [u8; 4],
    p: Gc<i64>,
}

#[test]
fn stringdata() {
    cgocheck::run_test(|| {
        // str := unsafe.String(&s.a[0], 4); C.f41(unsafe.Pointer(unsafe.StringData(str))):
        // Go skips the check; we pass the string's extent.
        let s = new(S41 { a: *b"abcd", p: new(0) });
        let data = s.a.as_ptr();
        row("stringdata", ARGS, || unsafe { check_pointer(mem(), site("f41", 1), data, None, Hint::Extent(4)) }, OK);
    });
}

#[test]
fn slicedata2() {
    cgocheck::run_test(|| {
        // C.f43(unsafe.Pointer(unsafe.SliceData(s.a[:]))): the slice is checked.
        let s = new(S41 { a: *b"abcd", p: new(0) });
        let h = header(s.a.as_ptr(), 4);
        let hint = Hint::Whole { ty: <GcSlice<u8>>::TYPE, value: ptr(&h) };
        row("slicedata2", ARGS, || unsafe { check_pointer(mem(), site("f43", 1), s.a.as_ptr(), None, hint) }, OK);
    });
}

#[test]
fn arraypointer() {
    cgocheck::run_test(|| {
        // a := new([10]byte); C.f44(unsafe.Pointer(&a[0])): the array is checked.
        let a = new([0u8; 10]);
        let hint = Hint::Whole { ty: <[u8; 10]>::TYPE, value: ptr(a.as_ptr()) };
        row("arraypointer", ARGS, || unsafe { check_pointer(mem(), site("f44", 1), ptr(a.as_ptr()), None, hint) }, OK);
    });
}

#[test]
fn argmap() {
    cgocheck::run_test(|| {
        // m := map[int]int{0: 1}; C.f46(unsafe.Pointer(&m)): `&x` → the element
        // hint with type *map: a map is always refused.
        let hmap = new([0u64; 6]);
        let mut stack = TaskStack::new(46);
        let m = stack.push(hmap.addr());
        let check = || unsafe { check_pointer(mem(), site("f46", 1), ptr(m), Some(&MAP), Hint::Element) };
        row("argmap", ARGS, check, FAIL_ARG);
        let e = check().unwrap_err();
        assert_eq!(e.kind(), Some(GoKind::Map));
        assert!(e.to_string().starts_with("cgo argument has Go pointer to unpinned Go map\n"), "{e}");
    });
}

#[test]
fn retmap() {
    cgocheck::run_test(|| {
        let m = new([0u64; 6]).addr();
        let check = || unsafe { check_result(mem(), "GoMap47", &MAP, ptr(&m)) };
        row("retmap", ARGS, check, FAIL_RES);
        let e = check().unwrap_err();
        assert!(e.to_string().starts_with("cgo result has Go pointer to unpinned Go map\n"), "{e}");
        assert!(e.to_string().contains("exported function GoMap47"), "{e}");
        assert!(!e.to_string().contains("argument:"), "a result by value is not an argument: {e}");
    });
}

// ---------------------------------------------------------------------------
// Beyond Go

#[derive(CType)]
#[repr(C)]
struct Ext {
    p: Gc<i64>,
    a: [u8; 8],
}

/// A pointer to `a` computed so the call site cannot see it is a field.
fn opaque_field(o: Gc<Ext>) -> *const u8 {
    (o.addr() + core::hint::black_box(8)) as *const u8
}

#[test]
fn extent_known() {
    cgocheck::run_test(|| {
        let o = new(Ext { p: new(0), a: [0; 8] });
        let pa = opaque_field(o);
        row("extent-known", ARGS, || unsafe { check_pointer(mem(), site("f", 1), pa, None, Hint::Extent(8)) }, OK);
        // The known pointee type passed as void* does the same (Go issue 28606).
        let t = <[u8; 8]>::TYPE;
        row(
            "extent-known/pointee",
            ARGS,
            || unsafe { check_pointer(mem(), site("f", 1), pa, None, Hint::Pointee(t)) },
            OK,
        );
    });
}

#[test]
fn extent_unknown() {
    cgocheck::run_test(|| {
        let o = new(Ext { p: new(0), a: [0; 8] });
        let pa = opaque_field(o);
        let check = || unsafe { check_pointer(mem(), site("f", 1), pa, None, Hint::Unknown) };
        row("extent-unknown", ARGS, check, FAIL_ARG);
        assert_eq!(check().unwrap_err().report().path.to_string(), "arg 1 → (its object).p");
    });
}

#[test]
fn message() {
    cgocheck::run_test(|| {
        let s = new(S1 { p: new(0) });
        let e =
            unsafe { check_pointer(mem(), site("f1", 1), ptr(s.as_ptr()), Some(S1::TYPE), Hint::Element) }.unwrap_err();
        assert_eq!(e.class(), Class::Arg);
        let msg = e.to_string();
        let lines: Vec<&str> = msg.lines().collect();
        assert_eq!(lines[0], "cgo argument has Go pointer to unpinned Go pointer");
        assert_eq!(lines[1], "    call:     f1, argument 1");
        assert_eq!(lines[2], "    path:     arg 1 → .p");
        let int_obj = s.p.addr();
        assert!(lines[3].starts_with(&format!("    pointer:  {int_obj:#x}, into Go object {int_obj:#x} (")), "{msg}");
        assert!(lines[3].ends_with(", int32), not pinned"), "{msg}");
        let s_obj = s.addr();
        assert!(lines[4].starts_with(&format!("    found at: {s_obj:#x}, in Go object {s_obj:#x} (")), "{msg}");
        assert!(lines[4].ends_with(", s1)"), "{msg}");
        assert!(lines[5].starts_with(&format!("    argument: {s_obj:#x}, in Go object {s_obj:#x} (")), "{msg}");
        assert_eq!(lines[6], "    fix:      pin it with a Pinner, or pass a Handle");
        assert_eq!(lines.len(), 7, "{msg}");
        println!("{msg}");
    });
}

#[test]
fn handle() {
    // C keeps a Handle (an integer) across calls: nothing to check; it
    // resolves; a deleted Handle used again panics clearly.
    let h = Handle::new(String::from("kept"));
    let raw = h.as_raw();
    row("handle", ARGS, || unsafe { check_arg(mem(), site("keep", 1), usize::TYPE, ptr(&raw)) }, OK);
    assert_eq!(*Handle::from_raw(raw).value::<String>(), "kept");
    Handle::from_raw(raw).delete();
    assert!(std::panic::catch_unwind(|| Handle::from_raw(raw).value::<String>()).is_err());
}

//! The pointer-passing case binary: `ptrcases NAME` runs one row of the
//! pointer-passing table that calls from managed code into C, and exits.
//!
//! Every row is Go's (`cmd/cgo/internal/testerrors/ptr_test.go`) or one of
//! this project's own (listed in the README's pointer rules), written the way a Rust program says what the
//! Go program says: C is called through the checked layer
//! (`c_tests::ffi::ptr`, declared with `cgocheck::c_functions!`), and the
//! call site states what cmd/cgo reads from the syntax — `field(&x.f)` for
//! `&x.f`, `elem(&s, i)` for `&s[i]`, a bare pointer for anything else. Each
//! case runs as the main task of `cgocheck::run`, except `before_run`, which
//! shows what calling C before the runtime started does.
//!
//! `tests/pointer_cases.rs` runs each case as its own process at
//! `CGOCHECK=0`, `1` and `2` and judges exit status and stderr. A case
//! passes by returning; a violation panics with the checker's message.

use c_tests::ffi::call::{ct_get_null, BinOp};
use c_tests::ffi::ptr::*;
use cgocheck::{
    elem, extent, field, heap, managed_static, new, new_slice, new_string, pointee, slice_data, string_data, CPtr,
    CType, Gc, GcMap, GcSlice, ManagedMemory, Pinner, Region,
};
use core::ffi::{c_char, c_int, c_void};
use std::ptr::null_mut;

/// Every case, by name.
const CASES: &[(&str, fn())] = &[
    ("ptr1", ptr1),
    ("ptr2", ptr2),
    ("ok1", ok1),
    ("ptrfield", ptrfield),
    ("ptrfieldok", ptrfieldok),
    ("sliceok1", sliceok1),
    ("sliceptr1", sliceptr1),
    ("sliceptr2", sliceptr2),
    ("sliceok2", sliceok2),
    ("sliceok3", sliceok3),
    ("varok", varok),
    ("barrier", barrier),
    ("barrierpinnedok", barrierpinnedok),
    ("barrierslice", barrierslice),
    ("barriergcprogarray", barriergcprogarray),
    ("barriergcprogstruct", barriergcprogstruct),
    ("passstring", passstring),
    ("ptrdata1", ptrdata1),
    ("defer1", defer1),
    ("union2", union2),
    ("preemptduringcall", preemptduringcall),
    ("chanrecv", chanrecv),
    ("structfield", structfield),
    ("buffer", buffer),
    ("finalizer", finalizer),
    ("stringdata", stringdata),
    ("slicedata2", slicedata2),
    ("arraypointer", arraypointer),
    ("argmap", argmap),
    ("extent_known", extent_known),
    ("extent_unknown", extent_unknown),
    ("stack_unknown", stack_unknown),
    ("stack_buffer_hinted", stack_buffer_hinted),
    ("global_unknown", global_unknown),
    ("global_nil", global_nil),
    ("field_of_slice_elem", field_of_slice_elem),
    ("field_of_slice_elem_pinned", field_of_slice_elem_pinned),
    ("end_pointer_field", end_pointer_field),
    ("end_pointer_spare_byte", end_pointer_spare_byte),
    ("end_pointer_arg", end_pointer_arg),
    ("end_pointer_extent0", end_pointer_extent0),
    ("end_pointer_before_nothing", end_pointer_before_nothing),
    ("unallocated_slot", unallocated_slot),
    ("allocated_slot", allocated_slot),
    ("pinner_dropped_while_panicking", pinner_dropped_while_panicking),
    ("message", message),
    ("backtrace_from_c", backtrace_from_c),
    ("null_function_pointer", null_function_pointer),
    ("before_run", before_run),
];

fn main() {
    let (name, case) = c_tests::harness::chosen_case("ptrcases", CASES);
    // `before_run` shows what calling C outside the runtime does.
    if name == "before_run" {
        case();
    } else {
        cgocheck::run(case);
    }
}

/// A new managed `int`: Go's `new(C.int)`.
fn new_int() -> *mut c_int {
    new::<c_int>(0).as_ptr()
}

/// Go's `C.f1(&C.s1{new(C.int)})`: the address of a new struct literal is
/// `&x`, so only the struct is checked — and its `p` is unpinned.
fn ptr1() {
    // SAFETY: f1 ignores its argument.
    unsafe { f1(field(new(S1 { p: new_int() }))) }
}

/// Go's `p := &C.s2{new(C.int)}; C.f2(p)`: a pointer variable, unknown
/// extent, the whole object is checked.
fn ptr2() {
    let p = new(S1 { p: new_int() });
    // SAFETY: as above.
    unsafe { f1(p) }
}

/// Go's `C.f3(&p.i)`: an `int*` parameter is not checked at all (its pointee
/// has no pointers), whatever the struct around `i` holds.
fn ok1() {
    let p = new(S3 { i: 0, p: new_int() });
    // SAFETY: f3 ignores its argument.
    unsafe { f3(field(&p.i)) }
}

/// Go's `C.f4(&p.p)`: the field itself is an unpinned managed pointer.
fn ptrfield() {
    let p = new(S4 { i: 0, p: new_int() });
    // SAFETY: f4 ignores its argument.
    unsafe { f4(field(&p.p)) }
}

/// Go's `C.f5(&p.p1)`: `p1` is null; the other field is not looked at.
fn ptrfieldok() {
    let p = new(S5 { p1: null_mut(), p2: new_int() });
    // SAFETY: f5 ignores its argument.
    unsafe { f5(field(&p.p1)) }
}

/// A managed slice of `void*` holding `ptrs`.
fn pointer_slice(ptrs: &[*mut c_void]) -> GcSlice<*mut c_void> {
    let s = new_slice::<*mut c_void>(ptrs.len());
    // SAFETY: `s` is new; nothing else refers to its elements.
    unsafe { s.as_mut_slice() }.copy_from_slice(ptrs);
    s
}

/// Go's `s := []unsafe.Pointer{nil}; C.f6(&s[0])`.
fn sliceok1() {
    let s = pointer_slice(&[null_mut()]);
    // SAFETY: f6 ignores its argument.
    unsafe { f6(elem(&s, 0)) }
}

/// Go's `s := []unsafe.Pointer{unsafe.Pointer(&i)}; C.f7(&s[0])`.
fn sliceptr1() {
    let s = pointer_slice(&[new_int().cast()]);
    // SAFETY: f7 ignores its argument.
    unsafe { f7(elem(&s, 0)) }
}

/// Go's `s := []unsafe.Pointer{nil, unsafe.Pointer(&i)}; C.f8(&s[0])`: the
/// element passed is null, but `&s[0]` gives C the whole backing array.
fn sliceptr2() {
    let s = pointer_slice(&[null_mut(), new_int().cast()]);
    // SAFETY: f8 ignores its argument.
    unsafe { f8(elem(&s, 0)) }
}

/// Go's `type S9 struct { p *int; s []unsafe.Pointer }`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "S9")]
struct S9 {
    p: *mut c_int,
    s: GcSlice<*mut c_void>,
}

/// Go's `p := &S9{p: &i, s: []unsafe.Pointer{nil}}; C.f9(&p.s[0])`: only the
/// slice is checked, not the struct holding it (and its `p`).
fn sliceok2() {
    let p = new(S9 { p: new_int(), s: pointer_slice(&[null_mut()]) });
    // SAFETY: f9 ignores its argument.
    unsafe { f9(elem(&p.s, 0)) }
}

/// Go's `type S10 struct { p *int; a [4]byte }`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "S10")]
struct S10 {
    p: *mut c_int,
    a: [u8; 4],
}

/// Go's `s := p.a[:]; C.f10(unsafe.Pointer(&s[0]))`: the slice over `a` is
/// what is checked, not the object around it.
fn sliceok3() {
    let p = new(S10 { p: new_int(), a: [0; 4] });
    let s: &[u8] = &p.a[..];
    // SAFETY: f10 ignores its argument.
    unsafe { f10(elem(s, 0).as_void()) }
}

managed_static! {
    /// Go's `var hello12 = [...]C.char{'h', 'e', 'l', 'l', 'o'}`.
    static HELLO12: [c_char; 5] = [b'h' as c_char, b'e' as c_char, b'l' as c_char, b'l' as c_char, b'o' as c_char];
}

/// Go's `parg := [1]*C.char{&hello12[0]}; C.f12(&parg[0])`: a local array
/// (on the task stack) holding a pointer into managed globals, which never
/// move and count as pinned.
fn varok() {
    let parg: [*mut c_char; 1] = [HELLO12.as_ptr().cast()];
    // SAFETY: f12 ignores its argument.
    unsafe { f12(elem(&parg, 0)) }
}

/// Go's `p := C.f14a(); *p = new(C.char); C.f14b(p)`: storing an unpinned
/// managed pointer into C memory (level 2).
fn barrier() {
    // SAFETY: f14a returns malloc'd room for one pointer; f14b frees it.
    unsafe {
        let p = f14a();
        p.write(new::<c_char>(0).as_ptr());
        f14b(p);
    }
}

/// The same with the pointee pinned while C holds it.
fn barrierpinnedok() {
    let x = new::<c_char>(0);
    let mut pinner = Pinner::new();
    pinner.pin(x);
    // SAFETY: as in `barrier`.
    unsafe {
        let p = f14a();
        p.write(x.as_ptr());
        f14b(p);
    }
    pinner.unpin();
}

/// Go's `copy(p.a[:], []*C.char{new(C.char)})` into a malloc'd `struct s16`.
fn barrierslice() {
    let src = [new::<c_char>(0).as_ptr()];
    // SAFETY: f16 returns a malloc'd s16, whose `a` has room for 10
    // pointers; f16b frees it.
    unsafe {
        let p = f16();
        cgocheck::cptr_field!(p, a).elem(0).copy_from(&src);
        f16b(p);
    }
}

/// A zeroed value on the Rust heap: for the 256 KiB arrays below, which
/// would not fit a task stack by value.
fn boxed_zeroed<T: CType>() -> Box<T> {
    // SAFETY: all-zero is a valid `T` (a `CType` promise).
    unsafe { Box::<T>::new_zeroed().assume_init() }
}

/// Go's `p.a = [32769]*C.char{new(C.char)}`: a whole array value, element 0
/// managed, assigned into C memory (a typed memmove of a type Go describes
/// with a GC program).
fn barriergcprogarray() {
    let mut v = boxed_zeroed::<[*mut c_char; 32769]>();
    v[0] = new::<c_char>(0).as_ptr();
    // SAFETY: f17 returns a malloc'd s17; f17b frees it.
    unsafe {
        let p = f17();
        cgocheck::cptr_field!(p, a).memmove(&v);
        f17b(p);
    }
}

/// Go's `p.f = C.struct_s19a{[32769]*C.char{new(C.char)}}`: a struct field
/// assigned from a value whose `a[0]` is managed.
fn barriergcprogstruct() {
    let mut v = boxed_zeroed::<S19a>();
    v.a[0] = new::<c_char>(0).as_ptr();
    // SAFETY: f19 returns a malloc'd s19b; f19b frees it.
    unsafe {
        let p = f19();
        cgocheck::cptr_field!(p, f).memmove(&v);
        f19b(p);
    }
}

/// Go's `r := C.f23(s)` with `s` a string: a managed string passed by value
/// (its data pointer at the top level is fine), and returned.
fn passstring() {
    let s = new_string("a");
    // SAFETY: f23 returns its argument.
    let r = unsafe { f23(s) };
    assert_eq!((r.as_str(), r.as_ptr()), ("a", s.as_ptr()));
}

/// Go's `type S26 struct { p *int; a [8*8]byte; u uintptr }`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "S26")]
struct S26 {
    p: *mut c_int,
    a: [u8; 64],
    u: usize,
}

/// Go's `p := &S26{u: uintptr(unsafe.Pointer(&i))}; q := malloc(...); *q =
/// *p; C.f26(unsafe.Pointer(q))`: a `uintptr` holding an address is an
/// integer, never a pointer, in the copy (level 2) and in the call.
fn ptrdata1() {
    let p = new(S26 { p: null_mut(), a: [0; 64], u: new_int() as usize });
    // SAFETY: malloc'd room for one S26, written whole, then freed.
    unsafe {
        let q = CPtr::new(libc::malloc(std::mem::size_of::<S26>()).cast::<S26>());
        q.memmove(&p);
        f26(q.as_ptr().cast());
        libc::free(q.as_ptr().cast());
    }
}

/// Go's `defer f()`: runs a closure when the scope ends.
struct Defer<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> Drop for Defer<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// Go's `p := &C.s28{}; defer C.f28(p); p.p = new(C.int)`: the pointer is
/// checked when the deferred call runs, after `p.p` was set.
fn defer1() {
    let p = new(S28 { p: null_mut() });
    // SAFETY: f28 ignores its argument.
    let _deferred = Defer(Some(move || unsafe { f28(p) }));
    // SAFETY: nothing else refers to `*p` now.
    unsafe { p.as_mut().p = new_int() };
}

/// Go's `var b C.char; p := &b; C.f39((*C.u39)(unsafe.Pointer(&p)))`: a
/// pointer to a union without pointer fields is not checked, whatever it
/// really points to (here a stack slot holding a stack address).
fn union2() {
    let b: c_char = 0;
    let p: *const c_char = &b;
    // SAFETY: f39 ignores its argument.
    unsafe { f39(field(&p).cast::<U39>()) }
}

/// Go's issue 21306: 100 tasks each call C 100 times and change GOMAXPROCS
/// between calls.
fn preemptduringcall() {
    let tasks: Vec<_> = (0..100usize)
        .map(|i| {
            cgocheck::spawn(move || {
                for _ in 0..100 {
                    // SAFETY: f30 does nothing.
                    unsafe { f30() };
                    // Go's GOMAXPROCS(0) only asks; here 0 is refused, so
                    // task 0 asks.
                    if i > 0 {
                        cgocheck::set_gomaxprocs(i);
                    } else {
                        let _ = cgocheck::gomaxprocs();
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.join();
    }
}

/// Go's `C.f32(&(<-c)[0])`: the argument receives from a channel; the
/// receive happens once (a second one would block forever: the channel is
/// empty after the first, and the watchdog task would fail the case).
fn chanrecv() {
    let c = cgocheck::Chan::<CharPtrs>::new(2);
    c.send(CharPtrs(new_slice::<*mut c_char>(1)));
    cgocheck::spawn(|| {
        cgocheck::sleep(std::time::Duration::from_secs(10));
        panic!("received twice from chan");
    });
    // SAFETY: f32 ignores its argument.
    unsafe { f32(elem(&c.recv().expect("a value was sent").0, 0)) };
    assert!(c.is_empty());
}

/// Go's `[]*C.char` as a channel element.
struct CharPtrs(GcSlice<*mut c_char>);

// SAFETY: the slice's elements are C pointers nobody dereferences; sending
// the header to another task shares nothing that is not already shared.
unsafe impl Send for CharPtrs {}

/// Go's `type S33 struct { p *int; a [8]byte; u uintptr }`.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "S33")]
struct S33 {
    p: *mut c_int,
    a: [u8; 8],
    u: usize,
}

/// Go's `s := &S33{p: new(int)}; C.f33(unsafe.Pointer(&s.a))`: converted to
/// `void*`, still only the field is checked (Go issue 25941).
fn structfield() {
    let s = new(S33 { p: new_int(), a: [0; 8], u: 0 });
    // SAFETY: f33 ignores its argument.
    unsafe { f33(field(&s.a).as_void()) }
}

/// A managed byte buffer, the shape of Go's `bytes.Buffer`: a slice and
/// other fields.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "Buffer")]
struct Buffer {
    buf: GcSlice<u8>,
    off: usize,
    last_read: i8,
}

impl Buffer {
    fn write_string(&mut self, s: &str) {
        let grown = new_slice::<u8>(self.buf.len() + s.len());
        // SAFETY: `grown` is new; nothing else refers to it.
        let dst = unsafe { grown.as_mut_slice() };
        dst[..self.buf.len()].copy_from_slice(self.buf.as_slice());
        dst[self.buf.len()..].copy_from_slice(s.as_bytes());
        self.buf = grown;
    }

    /// Go's `b.Bytes()`: the unread part, a new slice header.
    fn bytes(&self) -> GcSlice<u8> {
        self.buf
    }
}

/// Go's `var b bytes.Buffer; b.WriteString("a"); C.f36(unsafe.Pointer(&b.Bytes()[0]))`:
/// indexing the result of a call still checks only the slice indexed.
fn buffer() {
    let b = new(Buffer { buf: GcSlice::nil(), off: 0, last_read: 0 });
    // SAFETY: nothing else refers to `*b` now.
    unsafe { b.as_mut() }.write_string("a");
    // SAFETY: f36 ignores its argument.
    unsafe { f36(elem(&b.bytes(), 0).as_void()) }
}

managed_static! {
    /// Go's `var G37 [][]byte`.
    static G37: GcSlice<GcSlice<u8>> = GcSlice::nil();
}

/// Go's `append(s, v)` for a slice of slices.
fn append(s: GcSlice<GcSlice<u8>>, v: GcSlice<u8>) -> GcSlice<GcSlice<u8>> {
    let grown = new_slice::<GcSlice<u8>>(s.len() + 1);
    // SAFETY: `grown` is new; nothing else refers to it.
    let dst = unsafe { grown.as_mut_slice() };
    dst[..s.len()].copy_from_slice(s.as_slice());
    dst[s.len()] = v;
    grown
}

/// Go's finalizer row: 10000 allocations of 4 KiB kept in a growing managed
/// list (`G37`), dropped every 100, with a collection and a C call in
/// between (Go opens a file, whose finalizer the collector later runs).
///
/// The collector's half is checked too. Half-way between drops, a forced
/// collection must keep the list whole: every slice still holds its fill
/// pattern (its number, then bytes derived from it), and the numbers run
/// on without a gap. After each drop and C call, a forced collection must
/// free every dropped slice (none answers as a live heap object any more)
/// and `mem_stats` must count at least as many frees. (Its byte figures
/// count a thread's small allocations only when its cached span goes
/// back, so they are not compared here.)
///
/// Everything that touches the list runs in helpers that are not inlined,
/// so this frame holds no copy of it, and the dead frames below the stack
/// pointer are zeroed before a collection: the collector scans stacks
/// conservatively, and a stale copy of the list's header there would keep
/// the whole list alive. A collection is retried (three at most) before
/// the check fails, for stale words this cannot reach (registers).
fn finalizer() {
    for i in 0..10000u32 {
        push_filled(i);
        if i % 100 == 50 {
            scrub_stack();
            cgocheck::gc();
            check_kept();
        }
        if i % 100 == 0 {
            let (dropped, before) = drop_list();
            // SAFETY: f30 does nothing.
            unsafe { f30() };
            let mut tries = 0;
            let live = loop {
                scrub_stack();
                cgocheck::gc();
                tries += 1;
                let live: Vec<usize> =
                    dropped.iter().copied().filter(|&a| matches!(heap().region(a), Region::Heap(_))).collect();
                if live.is_empty() || tries == 3 {
                    break live;
                }
            };
            assert!(
                live.is_empty(),
                "finalizer, i = {i}: {} of the {} dropped slices are still live after {tries} collections (first at {:#x})",
                live.len(),
                dropped.len(),
                live[0]
            );
            let after = cgocheck::mem_stats();
            let n = dropped.len() as u64;
            assert!(
                after.frees >= before.frees + n,
                "finalizer, i = {i}: dropping {n} slices of 4 KiB counted only {} frees",
                after.frees - before.frees
            );
            assert!(after.num_gc > before.num_gc, "finalizer, i = {i}: no collection counted");
        }
    }
}

/// Byte `j` of slice number `i` of the finalizer row (its first four bytes
/// hold `i`).
fn fill_byte(i: u32, j: usize) -> u8 {
    (i as usize * 131 + j * 7) as u8
}

/// Appends slice number `i`, filled, to `G37`.
#[inline(never)]
fn push_filled(i: u32) {
    let s = new_slice::<u8>(4096);
    // SAFETY: `s` is new; nothing else refers to it.
    let bytes = unsafe { s.as_mut_slice() };
    bytes[..4].copy_from_slice(&i.to_le_bytes());
    for (j, b) in bytes.iter_mut().enumerate().skip(4) {
        *b = fill_byte(i, j);
    }
    // SAFETY: only this task touches G37.
    unsafe { G37.set(append(G37.get(), s)) };
}

/// Asserts that every slice of `G37` holds its pattern and that their
/// numbers follow each other.
#[inline(never)]
fn check_kept() {
    let list = G37.get();
    let mut want = None;
    for (k, s) in list.as_slice().iter().enumerate() {
        let b = s.as_slice();
        assert_eq!(b.len(), 4096, "finalizer: kept slice {k} has length {}", b.len());
        let i = u32::from_le_bytes(b[..4].try_into().unwrap());
        assert_eq!(want.unwrap_or(i), i, "finalizer: kept slice {k} is number {i}, out of sequence");
        want = Some(i + 1);
        if let Some(j) = (4..4096).find(|&j| b[j] != fill_byte(i, j)) {
            panic!(
                "finalizer: kept slice {k} (number {i}, at {:#x}) was overwritten at byte {j}: {:#x}, not {:#x}",
                s.as_ptr() as usize,
                b[j],
                fill_byte(i, j)
            );
        }
    }
}

/// Checks the list, then drops it (`G37 = nil`); returns the addresses of
/// the dropped slices and the heap's figures just before the drop.
#[inline(never)]
fn drop_list() -> (Vec<usize>, cgocheck::MemStats) {
    check_kept();
    let dropped = G37.get().as_slice().iter().map(|s| s.as_ptr() as usize).collect();
    let before = cgocheck::mem_stats();
    // SAFETY: only this task touches G37.
    unsafe { G37.set(GcSlice::nil()) };
    (dropped, before)
}

/// Zeroes 32 KiB of the stack below this frame's caller, where dead frames
/// of the helpers above may have left copies of the list's header.
#[inline(never)]
fn scrub_stack() {
    let mut words = [0usize; 4096];
    std::hint::black_box(&mut words);
}

/// Go's `s := struct { a [4]byte; p *int }{p: new(int)}`, rows stringdata
/// and slicedata2.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "S41")]
struct S41 {
    a: [u8; 4],
    p: *mut c_int,
}

/// Go's `str := unsafe.String(&s.a[0], 4); C.f41(unsafe.Pointer(unsafe.StringData(str)))`.
fn stringdata() {
    let s = new(S41 { a: *b"abcd", p: new_int() });
    let str = std::str::from_utf8(&s.a).expect("ascii");
    // SAFETY: f41 ignores its argument.
    unsafe { f41(string_data(str).as_void()) }
}

/// Go's `C.f43(unsafe.Pointer(unsafe.SliceData(s.a[:])))`.
fn slicedata2() {
    let s = new(S41 { a: *b"abcd", p: new_int() });
    // SAFETY: f43 ignores its argument.
    unsafe { f43(slice_data(&s.a[..]).as_void()) }
}

/// Go's `a := new([10]byte); C.f44(unsafe.Pointer(&a[0]))`.
fn arraypointer() {
    let a = new([0u8; 10]);
    // SAFETY: f44 ignores its argument.
    unsafe { f44(elem(&a, 0).as_void()) }
}

/// Go's `m := map[int]int{0: 1}; C.f46(unsafe.Pointer(&m))`: a map may never
/// be shared with C.
fn argmap() {
    let m = GcMap::<isize, isize>::new();
    m.insert(0, 1);
    assert_eq!(m.get(0), Some(1));
    // SAFETY: f46 ignores its argument.
    unsafe { f46(field(&m).as_void()) }
}

/// An object with a pointer field and a byte array (the extent rows).
#[derive(CType)]
#[repr(C)]
#[ctype(name = "withbuf")]
struct WithBuf {
    p: *mut c_int,
    a: [u8; 8],
}

/// The address of `o.a`, computed so that nothing says it is a field.
fn buf_of(o: Gc<WithBuf>) -> *mut c_void {
    (o.addr() + std::mem::offset_of!(WithBuf, a)) as *mut c_void
}

/// Beyond Go: the computed pointer with its extent, 8 bytes: only `a`.
fn extent_known() {
    let o = new(WithBuf { p: new_int(), a: [0; 8] });
    // SAFETY: f10 ignores its argument.
    unsafe { f10(extent(buf_of(o), 8)) }
}

/// The same pointer with nothing known: the whole object, `p` included
/// (what Go does).
fn extent_unknown() {
    let o = new(WithBuf { p: new_int(), a: [0; 8] });
    // SAFETY: f10 ignores its argument.
    unsafe { f10(buf_of(o)) }
}

/// ptr1 with the addresses printed first, so the test can find both in the
/// message.
fn message() {
    let int = new_int();
    let s1 = new(S1 { p: int });
    println!("s1={:#x} p={:#x}", s1.addr(), int as usize);
    // SAFETY: f1 ignores its argument.
    unsafe { f1(field(s1)) }
}

/// glibc's `backtrace()` inside C sees the managed caller: the unwinder
/// walks from the C frame through the call layer and the switch to the M's
/// g0 stack back into this function's frame on the task stack.
#[inline(never)]
fn backtrace_from_c() {
    let mut pcs = [null_mut::<c_void>(); 64];
    // SAFETY: `pcs` has room for 64 return addresses, which C writes. It is
    // on the task stack, so the call says how much of it C gets (`extent`).
    let n = unsafe { ct_backtrace(extent(pcs.as_mut_ptr(), size_of_val(&pcs)), 64) };
    assert!(n > 0, "backtrace() found no frame");
    let mut names = Vec::new();
    for &pc in &pcs[..n as usize] {
        backtrace::resolve(pc, |sym| {
            if let Some(name) = sym.name() {
                names.push(name.to_string());
            }
        });
    }
    println!("{}", names.join("\n"));
    for want in ["ct_backtrace", "ptrcases::backtrace_from_c"] {
        assert!(names.iter().any(|n| n.contains(want)), "{want} is not among the frames:\n{}", names.join("\n"));
    }
}

/// A C library hands out a null function pointer; calling it through the
/// layer panics clearly instead of jumping to address 0.
fn null_function_pointer() {
    // SAFETY: ct_get_null returns a null `int (*)(int, int)`.
    let f: BinOp = unsafe { ct_get_null() };
    assert!(f.is_null());
    // SAFETY: never reached: a null pointer is refused before any call.
    let _ = unsafe { f.call(1, 2) };
}

/// Calling C before `cgocheck::run` started the runtime: no task, so no M
/// to run C on; the call layer refuses clearly.
fn before_run() {
    // SAFETY: f30 does nothing.
    unsafe { f30() }
}

// --- The checker's former silent passes and confusing messages -------------
//
// Each failing row has a correct twin; the C functions really read what
// they are given (csrc/ptr.c, the end of the file).

/// `struct ct_stream` of csrc/ptr.c: zlib's input cursor.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "ct_stream")]
struct CtStream {
    next_in: *const u8,
    avail_in: u32,
    total_in: u32,
}

cgocheck::c_functions! {
    extern "C" {
        /// `long ct_sum_bytes(const void *p, size_t n)`: sums `n` bytes at `p`.
        fn ct_sum_bytes(p: *const c_void, n: usize) -> core::ffi::c_long;
        /// Reads the whole input, leaving `next_in` one past its end.
        fn ct_stream_consume(s: *mut CtStream) -> core::ffi::c_long;
        /// The byte before `next_in`.
        fn ct_stream_last(s: *mut CtStream) -> c_int;
    }
}

/// A struct on the task stack holding an unpinned managed pointer, passed
/// as a bare `void*`: Go moves it to the heap and checks the whole object;
/// here a stack has no object bounds, so the pointer is refused and the
/// message names the wrappers that say what C gets.
fn stack_unknown() {
    let mut s = S1 { p: new_int() };
    assert!(matches!(heap().region(&raw mut s as usize), Region::Stack { .. }), "s is on the task stack");
    // SAFETY: C reads the 8 bytes of `s`.
    unsafe { ct_sum_bytes((&raw mut s).cast(), size_of::<S1>()) };
}

/// Twin: a byte buffer on the task stack, passed with what C gets —
/// `extent`, `elem`, `pointee` — is checked and passes.
fn stack_buffer_hinted() {
    let mut buf = [1u8; 64];
    assert!(matches!(heap().region(buf.as_ptr() as usize), Region::Stack { .. }), "buf is on the task stack");
    let p = buf.as_mut_ptr().cast::<c_void>();
    // SAFETY: C reads the 64 bytes of `buf`.
    let sums = unsafe {
        [
            ct_sum_bytes(extent(p, 64), 64),
            ct_sum_bytes(elem(&buf, 0).as_void(), 64),
            ct_sum_bytes(pointee::<[u8; 64]>(p), 64),
        ]
    };
    assert_eq!(sums, [64; 3]);
}

managed_static! {
    /// A managed global array whose element 1 gets an unpinned pointer.
    static G_PAIR: [Gc<c_int>; 2] = [Gc::null(); 2];
    /// A managed global holding only nil.
    static G_NIL: [Gc<c_int>; 2] = [Gc::null(); 2];
}

/// A typed pointer to element 0 of a managed global array whose element 1
/// is unpinned: the whole global is checked, as a heap object is.
fn global_unknown() {
    // SAFETY: only this task touches G_PAIR.
    unsafe { G_PAIR.set([Gc::null(), new(0)]) };
    // SAFETY: f7 ignores its argument.
    unsafe { f7(G_PAIR.as_ptr().cast::<*mut c_void>()) }
}

/// Twin: a global holding only nil passes, even as a bare `void*` (Go
/// refuses every unknown pointer into data/bss).
fn global_nil() {
    // SAFETY: C reads the 16 bytes of the global.
    assert_eq!(unsafe { ct_sum_bytes(G_NIL.as_ptr().cast(), 16) }, 0);
}

/// `field(&s[0])` on a managed slice: checked as Go checks `&s[0]`, the
/// whole backing array, whose element 1 is unpinned.
fn field_of_slice_elem() {
    let s = pointer_slice(&[null_mut(), new_int().cast()]);
    // SAFETY: f8 ignores its argument.
    unsafe { f8(field(&s.as_slice()[0])) }
}

/// Twin: the same with element 1 pinned.
fn field_of_slice_elem_pinned() {
    let i = new_int();
    let mut pinner = Pinner::new();
    pinner.pin(i);
    let s = pointer_slice(&[null_mut(), i.cast()]);
    // SAFETY: f8 ignores its argument.
    unsafe { f8(field(&s.as_slice()[0])) };
    pinner.unpin();
}

/// Two managed byte arrays of `n` bytes, B right after A in memory.
fn adjacent_buffers(n: usize) -> (GcSlice<u8>, GcSlice<u8>) {
    (0..64)
        .map(|_| (new_slice::<u8>(n), new_slice::<u8>(n)))
        .find(|(a, b)| a.as_ptr() as usize + n == b.as_ptr() as usize)
        .expect("two adjacent slots of the size class")
}

/// zlib's case: C consumes a pinned input buffer A and leaves `next_in`
/// one past its end, which is the first byte of the next object B
/// (unpinned). The next call is refused; the message says that the pointer
/// is the end of A and that the check looked at B, with the fix.
fn end_pointer_field() {
    let (a, b) = adjacent_buffers(4096);
    // SAFETY: `a` is new; nothing else refers to it.
    unsafe { a.as_mut_slice().fill(1) };
    let mut pinner = Pinner::new();
    pinner.pin(a);
    let strm = new(CtStream { next_in: a.as_ptr(), avail_in: 4096, total_in: 0 });
    // SAFETY: C reads the 4096 bytes of the pinned `a` and updates `strm`.
    assert_eq!(unsafe { ct_stream_consume(field(strm)) }, 4096);
    assert_eq!(strm.next_in as usize, b.as_ptr() as usize, "next_in is A's end, B's start");
    // SAFETY: C reads the byte before next_in (the last byte of `a`).
    unsafe { ct_stream_last(field(strm)) };
    pinner.unpin();
}

/// Twin: A with one spare byte, so its end pointer stays inside it.
fn end_pointer_spare_byte() {
    let a = new_slice::<u8>(4097);
    // SAFETY: `a` is new; nothing else refers to it.
    unsafe { a.as_mut_slice()[..4096].fill(1) };
    let mut pinner = Pinner::new();
    pinner.pin(a);
    let strm = new(CtStream { next_in: a.as_ptr(), avail_in: 4096, total_in: 0 });
    // SAFETY: as above.
    assert_eq!(unsafe { ct_stream_consume(field(strm)) }, 4096);
    // SAFETY: as above.
    assert_eq!(unsafe { ct_stream_last(field(strm)) }, 1);
    pinner.unpin();
}

/// Two managed arrays of 512 pointers, B right after A, B holding an
/// unpinned pointer; A pinned.
fn end_of_pinned_before_unpinned() -> (GcSlice<*mut c_int>, Pinner) {
    let (a, b) = (0..64)
        .map(|_| (new_slice::<*mut c_int>(512), new_slice::<*mut c_int>(512)))
        .find(|(a, b)| a.as_ptr() as usize + 4096 == b.as_ptr() as usize)
        .expect("two adjacent slots of the size class");
    // SAFETY: `b` is new; nothing else refers to it.
    unsafe { b.as_mut_slice()[7] = new_int() };
    let mut pinner = Pinner::new();
    pinner.pin(a);
    (a, pinner)
}

/// The end pointer of A as a bare `void*` argument: checked as B, whose
/// element 7 is unpinned; the message says the argument is A's end.
fn end_pointer_arg() {
    let (a, _pinner) = end_of_pinned_before_unpinned();
    let end = a.as_slice().as_ptr_range().end;
    // SAFETY: C reads no byte (n = 0).
    unsafe { ct_sum_bytes(end.cast(), 0) };
}

/// Twin: the same pointer passed as `extent(end, 0)`: C gets no bytes,
/// nothing is checked.
fn end_pointer_extent0() {
    let (a, mut pinner) = end_of_pinned_before_unpinned();
    let end = a.as_slice().as_ptr_range().end.cast_mut();
    // SAFETY: as above.
    assert_eq!(unsafe { ct_sum_bytes(extent(end.cast::<c_void>(), 0), 0) }, 0);
    pinner.unpin();
}

/// A 64-byte type of its own (its size class has no slack), so its first
/// allocation starts a fresh span and is followed by a slot never used.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "first_of_its_kind")]
struct FirstOfItsKind {
    bytes: [u8; 64],
}

/// The end pointer of an object followed by nothing that was ever
/// allocated (a never-used slot, or a span's tail) is that object's end
/// pointer, with no other reading: checked as pointing into it, and passes
/// bare. (Before, it was refused as "not an allocated object".)
fn end_pointer_before_nothing() {
    let a = new(FirstOfItsKind { bytes: [1; 64] });
    let end = a.addr() + 64;
    assert!(matches!(heap().region(end), Region::Unallocated(_)), "{:?}", heap().region(end));
    // SAFETY: C reads no byte (n = 0).
    assert_eq!(unsafe { ct_sum_bytes(end as *const c_void, 0) }, 0);
}

/// A type of its own, so its first allocation starts a fresh span.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "lonely")]
struct Lonely {
    p: *mut c_int,
    pad: [u64; 3],
}

/// A pointer into a heap slot that no allocation ever returned: "not an
/// allocated object", not "freed".
fn unallocated_slot() {
    let x = new(Lonely { p: null_mut(), pad: [0; 3] });
    let slot2 = x.addr() + 2 * size_of::<Lonely>();
    assert!(matches!(heap().region(slot2), Region::Unallocated(_)), "{:?}", heap().region(slot2));
    // SAFETY: f10 ignores its argument.
    unsafe { f10(slot2 as *mut c_void) }
}

/// Twin: the same slot once allocated.
fn allocated_slot() {
    // On the task's stack (an array, not a `Vec`), where the collector sees them.
    let xs: [Gc<Lonely>; 3] = std::array::from_fn(|_| new(Lonely { p: null_mut(), pad: [0; 3] }));
    assert_eq!(xs[2].addr(), xs[0].addr() + 2 * size_of::<Lonely>());
    // SAFETY: f10 ignores its argument.
    unsafe { f10(xs[2].as_ptr().cast()) }
}

/// A Pinner dropped while a panic unwinds its frame unpins without Go's
/// "forgot to call Unpin()" warning (the test checks stderr).
fn pinner_dropped_while_panicking() {
    let x = new::<c_int>(0);
    let caught = std::panic::catch_unwind(|| {
        let mut pinner = Pinner::new();
        pinner.pin(x);
        assert!(cgocheck::pinner::is_pinned(x));
        panic!("a panic while pinning");
    });
    assert!(caught.is_err());
    assert!(!cgocheck::pinner::is_pinned(x), "the pin was dropped during unwinding");
}

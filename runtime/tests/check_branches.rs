//! One test per rule of the checker, with real heap objects: each fails if
//! the branch that implements its rule is removed. Grouped by the kind or
//! region the rule is about.
//!
//! The `unsafe` blocks call the checker on values this test just built:
//! live heap objects, stack slots and C memory, each of the type the call
//! describes. That is their safety argument, stated once here.

mod check_util;

use cgocheck::checker::{
    check_arg, check_memmove, check_pointer, check_ptr_write, check_result, check_slice_copy, check_typed_block,
    CheckError, Class, GoKind, Hint, Place,
};
use cgocheck::{
    heap, new, new_slice, new_string, CType, Gc, GcSlice, GcStr, Kind, ManagedMemory, Pinner, Region, Type,
};
use check_util::*;
use core::ffi::{c_char, c_void};

fn ptr<T>(p: *const T) -> *const u8 {
    p.cast()
}

fn class(r: Result<(), CheckError>) -> Option<Class> {
    r.err().map(|e| e.class())
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "s1")]
struct S1 {
    p: Gc<i32>,
}

#[derive(CType)]
#[repr(C)]
struct Outer {
    q: Gc<S1>,
}

fn element<T: CType>(p: *const T) -> Result<(), CheckError> {
    unsafe { check_pointer(mem(), site("f", 1), ptr(p), Some(T::TYPE), Hint::Element) }
}

fn unknown(p: *const u8) -> Result<(), CheckError> {
    unsafe { check_pointer(mem(), site("f", 1), p, None, Hint::Unknown) }
}

fn arg<T: CType>(v: &T) -> Result<(), CheckError> {
    unsafe { check_arg(mem(), site("f", 1), T::TYPE, ptr(v)) }
}

fn result<T: CType>(v: &T) -> Result<(), CheckError> {
    unsafe { check_result(mem(), "Exported", T::TYPE, ptr(v)) }
}

// --- pinning and the top level ------------------------------------------

#[test]
fn pinned_below_top_is_allowed_and_unpinning_refuses_again() {
    cgocheck::run_test(|| {
        let s = new(S1 { p: new(0) });
        assert_eq!(class(element(s.as_ptr())), Some(Class::Arg));
        let mut pinner = Pinner::new();
        pinner.pin(s.p);
        assert_eq!(class(element(s.as_ptr())), None);
        pinner.unpin();
        assert_eq!(class(element(s.as_ptr())), Some(Class::Arg));
    });
}

#[test]
fn a_pinned_pointer_s_target_is_walked() {
    cgocheck::run_test(|| {
        // Outer → (pinned) s1 → (unpinned) int: the s1 object is checked.
        let s = new(S1 { p: new(0) });
        let o = new(Outer { q: s });
        let mut pinner = Pinner::new();
        pinner.pin(s);
        let e = element(o.as_ptr()).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → .q → .p");
        pinner.pin(s.p);
        assert!(element(o.as_ptr()).is_ok());
    });
}

#[test]
fn top_level_pointers_need_no_pin() {
    cgocheck::run_test(|| {
        let i = new(0i32);
        assert!(arg(&i).is_ok(), "a managed pointer argument itself");
        assert!(arg(&S1 { p: i }).is_ok(), "fields of a struct passed by value are top level");
        // ...but what they point to is checked as a whole object.
        let s = new(S1 { p: new(0) });
        let e = arg(&Outer { q: s }).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1.q → .p");
    });
}

#[test]
fn results_are_below_the_top_level() {
    cgocheck::run_test(|| {
        let i = new(0i32);
        assert_eq!(class(result(&i)), Some(Class::Result));
        assert_eq!(result(&i).unwrap_err().report().path.to_string(), "result");
        let mut pinner = Pinner::new();
        pinner.pin(i);
        assert!(result(&i).is_ok());
    });
}

// --- maps, channels, funcs, interfaces ----------------------------------

#[test]
fn map_and_chan_are_refused_naming_the_kind_nil_passes() {
    cgocheck::run_test(|| {
        let m = new([0u64; 4]).addr();
        let e = unsafe { check_arg(mem(), site("f", 1), &MAP, ptr(&m)) }.unwrap_err();
        assert_eq!((e.class(), e.kind()), (Class::Arg, Some(GoKind::Map)));
        let e = unsafe { check_arg(mem(), site("f", 1), &CHAN, ptr(&m)) }.unwrap_err();
        assert_eq!(e.kind(), Some(GoKind::Chan));
        assert!(e.to_string().starts_with("cgo argument has Go pointer to unpinned Go chan\n"));
        // Pinning does not help: maps and channels are never allowed.
        let mut pinner = Pinner::new();
        pinner.pin(m as *const u8);
        assert!(unsafe { check_arg(mem(), site("f", 1), &MAP, ptr(&m)) }.is_err());
        // A nil map or channel shares nothing (Go refuses it; we do not).
        let nil = 0usize;
        assert!(unsafe { check_arg(mem(), site("f", 1), &MAP, ptr(&nil)) }.is_ok());
        assert!(unsafe { check_arg(mem(), site("f", 1), &CHAN, ptr(&nil)) }.is_ok());
    });
}

#[test]
fn managed_closures_are_refused_c_functions_pass() {
    cgocheck::run_test(|| {
        let closure = new([0u64; 2]).addr();
        let e = unsafe { check_arg(mem(), site("f", 1), &FUNC, ptr(&closure)) }.unwrap_err();
        assert_eq!(e.kind(), Some(GoKind::Func));
        let cfn = libc::malloc as *const () as usize;
        assert!(unsafe { check_arg(mem(), site("f", 1), &FUNC, ptr(&cfn)) }.is_ok());
    });
}

fn iface(v: &Iface) -> Result<(), CheckError> {
    unsafe { check_arg(mem(), site("f", 1), &IFACE, ptr(v)) }
}

#[test]
fn interface_with_a_run_time_type_in_the_heap_is_refused() {
    cgocheck::run_test(|| {
        let words = core::mem::size_of::<Type>().div_ceil(8);
        let t = new_slice::<u64>(words);
        let heap_type = t.as_ptr() as *mut Type;
        unsafe { heap_type.write(Type::scalar("MyInt", 8, 8, Kind::Int64)) };
        let e = iface(&Iface { ty: heap_type, data: 7 }).unwrap_err();
        assert_eq!(e.kind(), Some(GoKind::Interface));
        assert!(e.report().note.unwrap().contains("built at run time"));
        // The same type from a static is fine.
        assert!(iface(&Iface { ty: <i64 as CType>::TYPE, data: new(7i64).addr() }).is_ok());
    });
}

#[derive(CType)]
#[repr(C)]
struct Pair {
    n: i64,
    p: Gc<i32>,
}

#[test]
fn interface_data_is_checked_as_its_dynamic_type() {
    cgocheck::run_test(|| {
        assert!(iface(&Iface { ty: core::ptr::null(), data: 0 }).is_ok(), "nil interface");
        // Indirect: data points to a value whose p is unpinned.
        let v = new(Pair { n: 1, p: new(0) });
        assert!(!Pair::TYPE.is_direct_iface());
        let e = iface(&Iface { ty: Pair::TYPE, data: v.addr() }).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → .p");
        // Below the top level the data pointer itself must be pinned.
        let i = new(5i64);
        let v = Iface { ty: <i64 as CType>::TYPE, data: i.addr() };
        assert_eq!(class(unsafe { check_result(mem(), "F", &IFACE, ptr(&v)) }), Some(Class::Result));
        let mut pinner = Pinner::new();
        pinner.pin(i);
        assert!(unsafe { check_result(mem(), "F", &IFACE, ptr(&v)) }.is_ok());
    });
}

#[test]
fn direct_interfaces_hold_the_pointer_in_the_data_word() {
    cgocheck::run_test(|| {
        // *int32 and struct{ p *int32 } are direct: the data word is the value,
        // and it is below the top level even in a top-level interface.
        let i = new(0i32);
        assert!(<Gc<i32>>::TYPE.is_direct_iface() && S1::TYPE.is_direct_iface());
        assert_eq!(class(iface(&Iface { ty: <Gc<i32>>::TYPE, data: i.addr() })), Some(Class::Arg));
        assert_eq!(class(iface(&Iface { ty: S1::TYPE, data: i.addr() })), Some(Class::Arg));
        let c = CMem::new(8);
        assert!(iface(&Iface { ty: S1::TYPE, data: c.ptr as usize }).is_ok());
    });
}

// --- unions --------------------------------------------------------------

#[derive(CType)]
#[repr(C)]
#[ctype(name = "u29")]
union U29 {
    p: *mut *mut c_char,
    i: u64,
}

#[test]
fn union_with_pointer_fields_is_checked_over_its_pointer_words() {
    cgocheck::run_test(|| {
        // union1 of Go's table: the address of a local holding a managed pointer.
        let b = new(0 as c_char);
        let mut stack = TaskStack::new(29);
        let p = stack.push(b);
        let e = element(p as *const U29).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → .p");
        let mut pinner = Pinner::new();
        pinner.pin(b);
        assert!(element(p as *const U29).is_ok());
        let _ = U29 { i: 0 };
    });
}

// --- slices and strings --------------------------------------------------

#[derive(CType)]
#[repr(C)]
struct HasSlice {
    s: GcSlice<*mut c_void>,
}

#[test]
fn slice_below_top_needs_pinned_data_then_all_cap_elements_are_checked() {
    cgocheck::run_test(|| {
        let s = new_slice::<*mut c_void>(2);
        let o = new(HasSlice { s });
        let e = element(o.as_ptr()).unwrap_err();
        assert_eq!(e.report().pointer, s.as_ptr() as usize);
        let mut pinner = Pinner::new();
        pinner.pin(s);
        assert!(element(o.as_ptr()).is_ok());
        unsafe { s.as_mut_slice()[1] = new(0i64).as_ptr().cast() };
        assert_eq!(element(o.as_ptr()).unwrap_err().report().path.to_string(), "arg 1 → .s[1]");
        // Elements between len and cap are C's too.
        let hidden = [s.as_ptr() as usize, 1, 2];
        let e = unsafe { check_arg(mem(), site("f", 1), <GcSlice<*mut c_void>>::TYPE, ptr(&hidden)) }.unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1[1]");
    });
}

#[derive(CType)]
#[repr(C)]
struct HasStr {
    s: GcStr,
}

#[test]
fn string_data_must_be_pinned_below_top_only() {
    cgocheck::run_test(|| {
        let s = new_string("hello");
        assert!(arg(&s).is_ok());
        let o = new(HasStr { s });
        assert_eq!(class(element(o.as_ptr())), Some(Class::Arg));
        let mut pinner = Pinner::new();
        pinner.pin(s);
        assert!(element(o.as_ptr()).is_ok());
    });
}

#[test]
fn whole_array_through_a_pointer_to_it() {
    cgocheck::run_test(|| {
        // Go's arraypointer2: a := &[2]unsafe.Pointer{nil, &i}; C.f45(&a[0]).
        let a = new([core::ptr::null_mut::<c_void>(); 2]);
        unsafe { a.as_mut()[1] = new(0i64).as_ptr().cast() };
        let hint = Hint::Whole { ty: <[*mut c_void; 2]>::TYPE, value: ptr(a.as_ptr()) };
        let e = unsafe { check_pointer(mem(), site("f45", 1), ptr(a.as_ptr()), Some(<*mut c_void>::TYPE), hint) }
            .unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → (its array)[1]");
        // A pointer that is not managed: nothing is checked (as Go).
        let c = CMem::new(16);
        assert!(unsafe { check_pointer(mem(), site("f45", 1), c.ptr, None, hint) }.is_ok());
    });
}

// --- hints -----------------------------------------------------------------

#[derive(CType)]
#[repr(C)]
struct Ext {
    p: Gc<i64>,
    a: [u8; 8],
    b: Gc<i64>,
}

#[test]
fn element_hint_on_void_pointer_is_an_unknown_pointer() {
    cgocheck::run_test(|| {
        let o = new(Ext { p: new(0), a: [0; 8], b: Gc::null() });
        let pa = ptr(&o.a);
        assert!(unsafe { check_pointer(mem(), site("f", 1), pa, Some(<[u8; 8]>::TYPE), Hint::Element) }.is_ok());
        assert!(unsafe { check_pointer(mem(), site("f", 1), pa, None, Hint::Element) }.is_err());
    });
}

#[test]
fn extent_checks_only_the_bytes_given() {
    cgocheck::run_test(|| {
        let o = new(Ext { p: Gc::null(), a: [0; 8], b: new(0) });
        let base = o.addr();
        let ext = |p: usize, n| unsafe { check_pointer(mem(), site("f", 1), p as *const u8, None, Hint::Extent(n)) };
        assert!(ext(base, 16).is_ok());
        let e = ext(base + 8, 16).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → (its object).b");
        assert_eq!(e.report().found_at.as_ref().unwrap().0, base + 16);
        assert_eq!(class(ext(base, 4096)), Some(Class::PastEnd));
        assert!(ext(base + 16, 0).is_ok(), "a zero extent gives C nothing");
    });
}

#[test]
fn pointee_type_hint_checks_that_type() {
    cgocheck::run_test(|| {
        let o = new(Ext { p: new(0), a: [0; 8], b: Gc::null() });
        let pb = ptr(&o.b);
        assert!(unsafe { check_pointer(mem(), site("f", 1), pb, None, Hint::Pointee(<Gc<i64>>::TYPE)) }.is_ok());
        assert!(unsafe { check_pointer(mem(), site("f", 1), pb, None, Hint::Unknown) }.is_err());
    });
}

// --- bad input -------------------------------------------------------------

#[test]
fn null_passes_everywhere() {
    let null = core::ptr::null::<u8>();
    for hint in [Hint::Element, Hint::Unknown, Hint::Extent(8), Hint::Pointee(S1::TYPE)] {
        assert!(unsafe { check_pointer(mem(), site("f", 1), null, Some(S1::TYPE), hint) }.is_ok());
    }
    assert!(arg(&Gc::<S1>::null()).is_ok());
    assert!(result(&Gc::<S1>::null()).is_ok());
    let c = CMem::new(8);
    assert!(check_ptr_write(mem(), c.ptr, null).is_ok());
}

#[test]
fn freed_objects_are_reported() {
    cgocheck::run_test(|| {
        let s = new(S1 { p: Gc::null() });
        unsafe { heap().free(s.as_ptr().cast()) };
        assert!(matches!(heap().region(s.addr()), Region::Freed(_)));
        let e = unknown(ptr(s.as_ptr())).unwrap_err();
        assert_eq!(e.class(), Class::Freed);
        assert!(e.to_string().starts_with("cgo argument points to freed Go memory\n"), "{e}");
        assert!(matches!(e.report().pointer_place, Place::Freed { .. }));
        assert_eq!(class(element(s.as_ptr())), Some(Class::Freed));
        // Found inside a live object.
        let holder = new(Outer { q: s });
        let e = unknown(ptr(holder.as_ptr())).unwrap_err();
        assert_eq!((e.class(), e.report().found_at.as_ref().unwrap().0), (Class::Freed, holder.addr()));
        // And stored into C memory.
        let c = CMem::new(8);
        assert_eq!(class(check_ptr_write(mem(), c.ptr, ptr(s.as_ptr()))), Some(Class::Freed));
    });
}

#[test]
fn misaligned_for_the_pointee_type() {
    cgocheck::run_test(|| {
        let o = new([0u64; 4]);
        let e = element((o.addr() + 4) as *const S1).unwrap_err();
        assert!(matches!(e, CheckError::Misaligned { align: 8, .. }), "{e}");
    });
}

#[test]
fn pointee_type_larger_than_the_object() {
    cgocheck::run_test(|| {
        let o = new(0i64);
        let e = element(o.as_ptr() as *const Ext).unwrap_err();
        assert!(matches!(e, CheckError::PastEnd { need: 24, .. }), "{e}");
    });
}

/// The first address past the last slot of the span holding `addr`.
fn span_tail_after(addr: usize) -> usize {
    (addr..addr + 64 * 8192)
        .step_by(8)
        .find(|&a| matches!(heap().region(a), Region::SpanTail { .. }))
        .expect("a span with a tail")
}

#[test]
fn span_tails_are_reported() {
    cgocheck::run_test(|| {
        // A 40000-byte object gets a 5-page span with a 960-byte tail.
        let o = heap().alloc(<[u8; 40000]>::TYPE, 1) as usize;
        // The tail's first byte is the object's end: its end pointer, checked
        // as the object's (nothing was ever allocated there). Past it, nothing.
        assert_eq!(span_tail_after(o), o + 40000);
        assert!(unknown((o + 40000) as *const u8).is_ok());
        let tail = span_tail_after(o) + 8;
        let e = unknown(tail as *const u8).unwrap_err();
        assert_eq!(e.class(), Class::SpanTail);
        assert!(matches!(e.report().pointer_place, Place::SpanTail { .. }));
        let holder = new(Outer { q: unsafe { Gc::from_ptr(tail as *mut S1) } });
        assert_eq!(class(unknown(ptr(holder.as_ptr()))), Some(Class::SpanTail));
        // A zero extent reads nothing, wherever it points.
        assert!(unsafe { check_pointer(mem(), site("f", 1), tail as *const u8, None, Hint::Extent(0)) }.is_ok());
    });
}

#[test]
fn zero_sized_allocations_have_nothing_to_check() {
    cgocheck::run_test(|| {
        let z = new([0u8; 0]);
        assert!(matches!(heap().region(z.addr()), Region::ZeroSized));
        assert!(unknown(ptr(z.as_ptr())).is_ok());
        assert!(element(z.as_ptr()).is_ok());
        let holder = new(Outer { q: unsafe { Gc::from_ptr(z.as_ptr() as *mut S1) } });
        assert!(element(holder.as_ptr()).is_ok(), "below the top level too");
        let c = CMem::new(8);
        assert!(check_ptr_write(mem(), c.ptr, ptr(z.as_ptr())).is_ok());
    });
}

#[test]
fn one_past_the_end_designates_what_follows() {
    cgocheck::run_test(|| {
        // Two adjacent objects: A's end is B's base.
        let (a, b) = (0..64)
            .map(|_| (new(S1 { p: Gc::null() }), new(S1 { p: new(0) })))
            .find(|(a, b)| match heap().region(a.addr()) {
                Region::Heap(o) => o.base + o.size == b.addr(),
                _ => false,
            })
            .expect("two adjacent slots");
        let end = match heap().region(a.addr()) {
            Region::Heap(o) => o.base + o.size,
            _ => unreachable!(),
        };
        // With no extent the pointer is B's, and B holds an unpinned pointer.
        let e = unknown(end as *const u8).unwrap_err();
        assert_eq!(e.report().argument.as_ref().unwrap().1, Place::Object { base: b.addr(), size: 8, ty: "s1".into() });
        // A zero-length extent gives C no bytes: nothing is checked.
        assert!(unsafe { check_pointer(mem(), site("f", 1), end as *const u8, None, Hint::Extent(0)) }.is_ok());
    });
}

// --- stacks and globals ----------------------------------------------------

#[test]
fn stack_pointers() {
    cgocheck::run_test(|| {
        let mut stack = TaskStack::new(7);
        let local = stack.push(S1 { p: new(0) });
        // An unknown pointer into a stack, void* or typed: refused, its extent
        // unknown (Go would have moved the value to the heap), naming the
        // wrappers that say it.
        let e = unknown(ptr(local)).unwrap_err();
        assert_eq!(e.class(), Class::UnknownExtent);
        assert!(e.to_string().starts_with("cgo argument points into a task stack without saying how much"), "{e}");
        for wrapper in ["field(&x)", "elem(&a, i)", "pointee::<T>(p)", "extent(p, n)"] {
            assert!(e.report().fix.contains(wrapper), "{e}");
        }
        let typed = unsafe { check_pointer(mem(), site("f", 1), ptr(local), Some(S1::TYPE), Hint::Unknown) };
        assert_eq!(class(typed), Some(Class::UnknownExtent));
        // With its type stated (`field`), it is checked over the type.
        let e = element(local).unwrap_err();
        assert_eq!((e.class(), e.report().path.to_string()), (Class::Arg, "arg 1 → .p".to_string()));
        // A pointer to a stack below the top level: stacks cannot be pinned.
        let holder = new(Outer { q: unsafe { Gc::from_ptr(local) } });
        let e = element(holder.as_ptr()).unwrap_err();
        assert!(matches!(e.report().pointer_place, Place::Stack { task: 7, .. }), "{e}");
        assert!(e.report().fix.contains("task stacks cannot be pinned"), "{e}");
        // An explicit extent on a stack: every word is a possible pointer.
        let words = stack.push([0usize, new(0i64).addr()]);
        let ext = |n| unsafe { check_pointer(mem(), site("f", 1), ptr(words), None, Hint::Extent(n)) };
        assert!(ext(8).is_ok());
        assert_eq!(ext(16).unwrap_err().report().path.to_string(), "arg 1 → +8");
        // Stored into C memory.
        let c = CMem::new(8);
        assert_eq!(class(check_ptr_write(mem(), c.ptr, ptr(local))), Some(Class::Store));
    });
}

cgocheck::managed_static! {
    static HELLO13: [Gc<c_char>; 1] = [Gc::null()];
    static PLAIN: [u8; 16] = [0; 16];
}

#[test]
fn globals_count_as_pinned_and_are_checked_whole() {
    cgocheck::run_test(|| {
        // Go's var1: a global holding an unpinned pointer, reached through a
        // local array of pointers to it.
        unsafe { HELLO13.set([new(0 as c_char)]) };
        let mut stack = TaskStack::new(13);
        let parg = stack.push([HELLO13.as_ptr() as *mut Gc<c_char>]);
        let hint = Hint::Whole { ty: <[*mut Gc<c_char>; 1]>::TYPE, value: ptr(parg) };
        let e = unsafe { check_pointer(mem(), site("f13", 1), ptr(parg), Some(<*mut Gc<c_char>>::TYPE), hint) }
            .unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → (its array)[0] → [0]");
        assert!(matches!(e.report().found_at, Some((_, Place::Global { var: Some(_), .. }))));
        // void* into globals: the whole global is checked (Go refuses them all).
        assert!(unknown(ptr(PLAIN.as_ptr())).is_ok());
        assert!(unknown((PLAIN.addr() + 5) as *const u8).is_ok());
        let e = unknown(ptr(HELLO13.as_ptr())).unwrap_err();
        assert_eq!(e.report().path.to_string(), "arg 1 → [0]");
        // The type or the extent may be given too.
        let t = <[u8; 16]>::TYPE;
        assert!(unsafe { check_pointer(mem(), site("f", 1), ptr(PLAIN.as_ptr()), None, Hint::Pointee(t)) }.is_ok());
        assert!(unsafe { check_pointer(mem(), site("f", 1), ptr(PLAIN.as_ptr()), None, Hint::Extent(16)) }.is_ok());
        // A pointer to a global stored in a heap object needs no pin.
        let holder = new([PLAIN.as_ptr() as *mut u8]);
        assert!(unsafe { check_arg(mem(), site("f", 1), <Gc<[*mut u8; 1]>>::TYPE, ptr(&holder)) }.is_ok());
        let c = CMem::new(8);
        assert!(check_ptr_write(mem(), c.ptr, ptr(PLAIN.as_ptr())).is_ok());
    });
}

// --- store checks ------------------------------------------------------------

type Big = [*mut c_char; 32769];

#[test]
fn stores_of_32769_element_arrays_by_mask_repeat() {
    cgocheck::run_test(|| {
        let c = CMem::new(core::mem::size_of::<Big>());
        let src = heap().alloc(Big::TYPE, 1) as *mut Big;
        let dst = c.ptr;
        let memmove = move || unsafe { check_memmove(mem(), Big::TYPE, dst, ptr(src)) };
        assert!(memmove().is_ok(), "all null");
        let x = new(0 as c_char);
        unsafe { (*src)[32768] = x.as_ptr() };
        let e = memmove().unwrap_err();
        assert_eq!(e.report().path.to_string(), "value[32768]");
        assert_eq!(e.report().found_at.as_ref().unwrap().0, src as usize + 32768 * 8);
        // A typed block that stops before the last element does not see it.
        assert!(unsafe { check_typed_block(mem(), Big::TYPE, ptr(src), 0, 32768 * 8) }.is_ok());
        assert!(unsafe { check_typed_block(mem(), Big::TYPE, ptr(src), 32768 * 8, 8) }.is_err());
        let mut pinner = Pinner::new();
        pinner.pin(x);
        assert!(memmove().is_ok(), "pinned");
    });
}

#[test]
fn stores_into_managed_memory_are_fine() {
    cgocheck::run_test(|| {
        let x = new(0 as c_char);
        let dst = new([core::ptr::null_mut::<c_char>(); 1]);
        assert!(check_ptr_write(mem(), ptr(dst.as_ptr()), ptr(x.as_ptr())).is_ok());
        let src = [x.as_ptr()];
        assert!(unsafe { check_memmove(mem(), <[*mut c_char; 1]>::TYPE, ptr(dst.as_ptr()), ptr(&src)) }.is_ok());
        // C pointers may go anywhere.
        let c = CMem::new(16);
        assert!(check_ptr_write(mem(), c.ptr, c.ptr.wrapping_add(8)).is_ok());
    });
}

#[test]
fn store_sources_are_checked_wherever_they_live() {
    cgocheck::run_test(|| {
        // Beyond Go: a source outside managed memory (a Box) holding a managed
        // pointer is still checked.
        let c = CMem::new(8);
        let boxed = Box::new([new(0 as c_char).as_ptr()]);
        let e = unsafe { check_memmove(mem(), <[*mut c_char; 1]>::TYPE, c.ptr, ptr(&*boxed)) }.unwrap_err();
        assert_eq!(e.class(), Class::Store);
    });
}

#[test]
fn slice_copies_of_structs_name_the_element_and_field() {
    cgocheck::run_test(|| {
        let c = CMem::new(3 * 8);
        let src = [S1 { p: Gc::null() }, S1 { p: new(0) }, S1 { p: Gc::null() }];
        let e = unsafe { check_slice_copy(mem(), S1::TYPE, c.ptr, ptr(&src), 3) }.unwrap_err();
        assert_eq!(e.report().path.to_string(), "value[1].p");
        assert!(e.to_string().contains("slice copy of [3]s1"), "{e}");
        assert!(unsafe { check_slice_copy(mem(), S1::TYPE, c.ptr, ptr(&src), 1) }.is_ok());
    });
}

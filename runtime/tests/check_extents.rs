//! How far a pointer reaches, where the call site did not say it all: the
//! rules that replaced the checker's silent passes (an element of an array
//! said with `field`, an unknown pointer into a managed global), the
//! end-pointer story in messages, and never-allocated heap slots. Each test
//! fails without its rule; the end-to-end rows with real C are in
//! `c-tests/tests/pointer_cases.rs`.
//!
//! The `unsafe` blocks call the checker on values this test just built
//! (live heap objects, managed globals), each of the type the call
//! describes: their safety argument, stated once here.

mod check_util;

use cgocheck::checker::{check_pointer, CheckError, Class, Hint, Place};
use cgocheck::{heap, new, new_slice, CType, Gc, ManagedMemory, Pinner, Region};
use check_util::*;

#[derive(CType)]
#[repr(C)]
#[ctype(name = "holder")]
struct Holder {
    n: i64,
    items: [Gc<i64>; 3],
    grid: [[Gc<i64>; 2]; 2],
}

fn field<T: CType>(p: *const T) -> Result<(), CheckError> {
    unsafe { check_pointer(mem(), site("f", 1), p.cast(), Some(T::TYPE), Hint::Element) }
}

fn unknown<T>(p: *const T) -> Result<(), CheckError> {
    unsafe { check_pointer(mem(), site("f", 1), p.cast(), None, Hint::Unknown) }
}

fn path(r: Result<(), CheckError>) -> String {
    r.unwrap_err().report().path.to_string()
}

#[test]
fn field_of_an_array_element_checks_the_array() {
    cgocheck::run_test(|| {
        // A managed slice's backing array (an array object).
        let s = new_slice::<Gc<i64>>(3);
        unsafe { s.as_mut_slice()[2] = new(1) };
        assert_eq!(path(field(&s.as_slice()[0])), "arg 1 → (its array)[2]");
        // A managed array (`Gc<[T; N]>`: one value of an array type).
        let a = new([Gc::<i64>::null(), new(2)]);
        assert_eq!(path(field(&a[0])), "arg 1 → (its array)[1]");
        // An array field: Go's `&x.items[i]` checks `x.items`, not `x`.
        let h = new(Holder { n: 0, items: [Gc::null(), Gc::null(), new(3)], grid: [[Gc::null(); 2]; 2] });
        assert_eq!(path(field(&h.items[0])), "arg 1 → (its array)[2]");
        // The innermost array of the pointee's type: `&grid[1][0]` checks
        // `grid[1]`; `&grid[0]` (a `[2]*T`) checks `grid`.
        unsafe { h.as_mut().grid[1][1] = new(4) };
        assert_eq!(path(field(&h.grid[1][0])), "arg 1 → (its array)[1]");
        assert_eq!(path(field(&h.grid[0])), "arg 1 → (its array)[1][1]");
        assert!(field(&h.grid[0][0]).is_ok(), "grid[0] holds only nil");
        // Not an array element: one value, as before.
        assert!(field(&h.n).is_ok());
        let single = new(Gc::<i64>::null());
        assert!(field(single.as_ptr()).is_ok());
        // Pinned elements pass; `pointee` still gives C exactly one element.
        let mut pinner = Pinner::new();
        pinner.pin(s.as_slice()[2]);
        assert!(field(&s.as_slice()[0]).is_ok());
        pinner.unpin();
        let one =
            unsafe { check_pointer(mem(), site("f", 1), s.as_ptr().cast(), None, Hint::Pointee(<Gc<i64>>::TYPE)) };
        assert!(one.is_ok());
    });
}

cgocheck::managed_static! {
    static PAIR: [Gc<i64>; 2] = [Gc::null(); 2];
    static QUIET: [Gc<i64>; 4] = [Gc::null(); 4];
    static NUMBER: u64 = 7;
}

#[test]
fn unknown_pointers_into_globals_check_the_whole_global() {
    cgocheck::run_test(|| {
        unsafe { PAIR.set([Gc::null(), new(5)]) };
        // Element 0 is nil; the global's element 1 is not pinned.
        let e = unknown(PAIR.as_ptr()).unwrap_err();
        assert_eq!((e.class(), e.report().path.to_string()), (Class::Arg, "arg 1 → [1]".to_string()));
        match &e.report().found_at {
            Some((_, Place::Global { var: Some((base, 16, ty)), .. })) => {
                assert_eq!((*base, ty.as_str()), (PAIR.addr(), "[2]*int64"));
            }
            other => panic!("{other:?}"),
        }
        // An interior pointer to element 1 reaches the same global.
        assert_eq!(path(unknown((PAIR.addr() + 8) as *const u8)), "arg 1 → (its global)[1]");
        // Globals holding nil or no pointers at all pass, wherever pointed.
        assert!(unknown(QUIET.as_ptr()).is_ok());
        assert!(unknown((QUIET.addr() + 24) as *const u8).is_ok());
        assert!(unknown(NUMBER.as_ptr()).is_ok());
        // `field(&PAIR[0])`: an element of a global array, so the array.
        assert_eq!(path(field(PAIR.as_ptr() as *const Gc<i64>)), "arg 1 → (its array)[1]");
        // The heap knows each global's bounds and type.
        let g = heap().global(PAIR.addr() + 15).expect("inside PAIR");
        assert_eq!((g.base, g.ty.size), (PAIR.addr(), 16));
        assert!(heap().global(PAIR.addr() + 16).is_none_or(|g| g.base == PAIR.addr() + 16));
        // A typed pointer reading past the end of its global is refused.
        let e = field(NUMBER.as_ptr() as *const [u64; 2]).unwrap_err();
        assert_eq!(e.class(), Class::PastEnd);
    });
}

/// Two adjacent slots of 8-byte `Gc<i64>` objects: A then B.
fn adjacent() -> (Gc<Gc<i64>>, Gc<Gc<i64>>) {
    (0..64)
        .map(|_| (new(Gc::<i64>::null()), new(Gc::<i64>::null())))
        .find(|(a, b)| a.addr() + 8 == b.addr())
        .expect("two adjacent slots")
}

#[test]
fn end_pointers_name_both_objects_when_likelier_an_end() {
    cgocheck::run_test(|| {
        // B holds an unpinned pointer; the argument is A's end = B's base.
        let (a, b) = adjacent();
        unsafe { b.as_mut() }.clone_from(&new(6));
        // A not pinned: every base is some slot's end, so nothing is said.
        let e = unknown(b.as_ptr()).unwrap_err();
        assert!(e.report().end_pointer.is_none(), "{e}");
        assert!(!e.to_string().contains("end of:"), "{e}");
        // A pinned: the argument is likelier A's end.
        let mut pinner = Pinner::new();
        pinner.pin(a);
        let e = unknown(b.as_ptr()).unwrap_err();
        let end = e.report().end_pointer.as_ref().expect("the end-pointer story");
        assert_eq!((end.addr, end.is_argument, end.ends_pinned), (b.addr(), true, Some(true)));
        assert!(matches!(end.ends, Place::Object { base, .. } if base == a.addr()), "{e}");
        assert!(matches!(end.next, Place::Object { base, .. } if base == b.addr()), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("    end of:   the argument ("), "{msg}");
        assert!(msg.contains("is the end of object A (Go object"), "{msg}");
        assert!(msg.contains("the check looked at the object after it, B (Go object"), "{msg}");
        assert!(e.report().fix.contains("extent(p, 0)") && e.report().fix.contains("spare byte"), "{msg}");
        pinner.unpin();
    });
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "only_here")]
struct OnlyHere {
    p: Gc<i64>,
    pad: [u64; 5],
}

#[test]
fn never_allocated_slots_are_not_called_freed() {
    cgocheck::run_test(|| {
        // A type of its own: its first object starts a fresh span.
        let x = new(OnlyHere { p: Gc::null(), pad: [0; 5] });
        let size = match heap().region(x.addr()) {
            Region::Heap(o) => o.size,
            other => panic!("{other:?}"),
        };
        let never = x.addr() + 3 * size;
        assert!(matches!(heap().region(never), Region::Unallocated(o) if o.base == never && o.size == size));
        let e = unknown(never as *const u8).unwrap_err();
        assert_eq!(e.class(), Class::Unallocated);
        assert!(e.to_string().starts_with("cgo argument points to Go memory that is not an allocated object\n"), "{e}");
        assert!(!e.to_string().contains("freed") && !e.report().fix.contains("dangles"), "{e}");
        // Found in memory, and stored into C memory: the same words.
        let holder = new(Gc::<OnlyHere>::null());
        unsafe { *holder.as_mut() = Gc::from_ptr(never as *mut OnlyHere) };
        assert_eq!(unknown(holder.as_ptr()).unwrap_err().class(), Class::Unallocated);
        // A slot that was allocated and freed is freed, also once its span
        // reclaimed it for reuse (its freed bit is cleared then, and until the
        // slot is taken again only the reused bit remembers it held an object):
        // free three neighbours, then allocate until each is taken again,
        // looking at the others every time one is.
        let mut freed: Vec<usize> = (0..3).map(|_| new(OnlyHere { p: Gc::null(), pad: [0; 5] }).addr()).collect();
        for &a in &freed {
            unsafe { heap().free(a as *mut u8) };
            assert!(matches!(heap().region(a), Region::Freed(_)));
        }
        assert_eq!(unknown(freed[0] as *const u8).unwrap_err().class(), Class::Freed);
        let mut allocations = 0;
        while !freed.is_empty() {
            let z = new(OnlyHere { p: Gc::null(), pad: [0; 5] });
            allocations += 1;
            assert!(allocations < 100_000, "freed slots {freed:x?} were never reused");
            if let Some(i) = freed.iter().position(|&a| a == z.addr()) {
                freed.swap_remove(i);
                for &a in &freed {
                    assert!(matches!(heap().region(a), Region::Freed(_)), "{a:#x}: {:?}", heap().region(a));
                }
            }
        }
    });
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "last_one")]
struct LastOne {
    p: Gc<i64>,
    pad: [u64; 7],
}

/// A pointer one past the end of a live object, where no object has ever
/// been (a never-allocated slot, a span tail), is that object's end pointer:
/// checked as a pointer into it, never as "not an allocated object". A
/// freed slot there stays suspect (see the previous test's neighbours).
#[test]
fn end_pointers_before_nothing_are_their_objects() {
    cgocheck::run_test(|| {
        // A type of its own: its first object is followed by a slot never used.
        let a = new(LastOne { p: Gc::null(), pad: [0; 7] });
        let end = a.addr() + size_of::<LastOne>();
        assert!(matches!(heap().region(a.addr()), Region::Heap(o) if o.size == 64), "a 64-byte class, no slack");
        assert!(matches!(heap().region(end), Region::Unallocated(_)));
        // As an argument: A is checked whole (C may walk back from its end).
        assert!(unknown(end as *const u8).is_ok());
        unsafe { a.as_mut().p = new(8) };
        let e = unknown(end as *const u8).unwrap_err();
        assert_eq!((e.class(), e.report().path.to_string()), (Class::Arg, "arg 1 → (its object).p".to_string()));
        // Below the top level: A must be pinned, like any pointer into A.
        let holder = new(end as *const u8);
        let e = unknown(holder.as_ptr()).unwrap_err();
        assert_eq!(e.class(), Class::Arg);
        let msg = e.to_string();
        assert!(msg.contains(&format!("into Go object {:#x} (64 bytes, last_one), not pinned", a.addr())), "{msg}");
        assert!(msg.contains("one past the end of that object"), "{msg}");
        assert!(!msg.contains("not an allocated object"), "{msg}");
        let mut pinner = Pinner::new();
        pinner.pin(a);
        unsafe { a.as_mut().p = Gc::null() };
        assert!(unknown(holder.as_ptr()).is_ok());
        pinner.unpin();
        // Read as a type, nothing of A is left: memory smaller than the type.
        assert_eq!(field(end as *const u64).unwrap_err().class(), Class::PastEnd);
        // One byte further is no end pointer.
        assert_eq!(unknown((end + 8) as *const u8).unwrap_err().class(), Class::Unallocated);
    });
}

#[derive(CType)]
#[repr(C)]
#[ctype(name = "never_freed")]
struct NeverFreed {
    w: [u64; 9],
}

/// `free` of a slot that never held an object says so, not "already freed".
#[test]
#[should_panic(expected = "which is not an allocated object (a heap slot never allocated)")]
fn free_of_a_never_allocated_slot_names_it() {
    cgocheck::run_test(|| {
        let x = new(NeverFreed { w: [0; 9] });
        let size = match heap().region(x.addr()) {
            Region::Heap(o) => o.size,
            other => panic!("{other:?}"),
        };
        // SAFETY: the slot two after `x` holds no object; `free` refuses it.
        unsafe { heap().free((x.addr() + 2 * size) as *mut u8) };
    });
}

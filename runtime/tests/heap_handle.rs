//! Handle: value → integer → value, deletion, and every misuse a clear
//! panic; live handles' managed values are roots.

use cgocheck::{new, CType, Gc, Handle};
use std::sync::Arc;

#[derive(CType)]
#[repr(C)]
struct Rec {
    p: Gc<u64>,
    n: u64,
}

#[test]
fn round_trip() {
    let h = Handle::new(String::from("hello"));
    let raw = h.as_raw();
    assert_ne!(raw, 0);
    let back = Handle::from_raw(raw);
    assert_eq!(back, h);
    assert_eq!(*back.value::<String>(), "hello");
    let h2 = Handle::new(5u32);
    assert_ne!(h2.as_raw(), raw);
    assert_eq!(*h2.value::<u32>(), 5);
    h.delete();
    h2.delete();
}

#[test]
fn value_outlives_delete() {
    let h = Handle::new(vec![1, 2, 3]);
    let v: Arc<Vec<i32>> = h.value();
    h.delete();
    assert_eq!(*v, [1, 2, 3]);
}

#[test]
fn a_reused_slot_does_not_revive_an_old_handle() {
    let old = Handle::new(1u8);
    let raw = old.as_raw();
    old.delete();
    let new_handles: Vec<Handle> = (0..64).map(|i| Handle::new(i as u8)).collect();
    assert!(new_handles.iter().all(|h| h.as_raw() != raw));
    let r = std::panic::catch_unwind(|| Handle::from_raw(raw).value::<u8>());
    assert!(r.is_err());
    for h in new_handles {
        h.delete();
    }
}

#[test]
#[should_panic(expected = "holds a value of type alloc::string::String, not u64")]
fn wrong_type_panics_naming_both() {
    let h = Handle::new(String::from("x"));
    h.value::<u64>();
}

#[test]
#[should_panic(expected = "misuse of an invalid Handle")]
fn deleted_handle_panics() {
    let h = Handle::new(1i32);
    h.delete();
    h.value::<i32>();
}

#[test]
#[should_panic(expected = "misuse of an invalid Handle")]
fn double_delete_panics() {
    let h = Handle::new(1i32);
    h.delete();
    h.delete();
}

#[test]
#[should_panic(expected = "misuse of an invalid Handle 12345 (0x3039)")]
fn forged_handle_panics_with_its_number() {
    Handle::from_raw(12345).value::<i32>();
}

#[test]
#[should_panic(expected = "misuse of an invalid Handle 0")]
fn zero_is_never_a_handle() {
    Handle::from_raw(0);
}

#[test]
fn managed_values_are_roots() {
    cgocheck::run_test(|| {
        let g = new(Rec { p: Gc::null(), n: 1 });
        let inner = new(77u64);
        let holder = new(Rec { p: inner, n: 2 });
        let h1 = Handle::new(g);
        // A struct holding a managed pointer by value, beside plain data.
        let h2 = Handle::new((5u64, holder.p, 6u64));
        let h3 = Handle::new(String::from("no managed pointers"));
        let roots: Vec<usize> = Handle::roots().collect();
        assert!(roots.contains(&g.addr()), "{roots:x?}");
        assert!(roots.contains(&inner.addr()), "{roots:x?}");
        assert!(!roots.contains(&holder.addr()), "holder is not referenced by a handle");
        h1.delete();
        let roots: Vec<usize> = Handle::roots().collect();
        assert!(!roots.contains(&g.addr()), "a deleted handle is no root");
        assert!(roots.contains(&inner.addr()));
        h2.delete();
        h3.delete();
    });
}

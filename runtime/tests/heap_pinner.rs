//! Pinner: counted pins per object, interior pointers, unpin on drop with
//! Go's leak warning, and the addresses that cannot or need not be pinned.

use cgocheck::pinner::is_pinned;
use cgocheck::{heap, new, new_slice, CType, Gc, ManagedMemory, Pinner};
use std::process::Command;

#[derive(CType)]
#[repr(C)]
struct Rec {
    p: Gc<u64>,
    vals: [u64; 7],
}

fn rec() -> Gc<Rec> {
    new(Rec { p: Gc::null(), vals: [0; 7] })
}

#[test]
fn pin_and_unpin_any_interior_pointer() {
    cgocheck::run_test(|| {
        let r = rec();
        let other = rec();
        assert!(!is_pinned(r));
        let mut p = Pinner::new();
        // An interior pointer (the last field word) pins the whole object.
        p.pin((r.addr() + 63) as *const u8);
        assert_eq!(p.len(), 1);
        for off in [0, 8, 31, 63] {
            assert!(heap().is_pinned(r.addr() + off), "offset {off}");
        }
        assert!(!is_pinned(other), "a neighbour is not pinned");
        p.unpin();
        assert!(p.is_empty());
        assert!(!is_pinned(r));
        // Reusable after unpin.
        p.pin(other);
        assert!(is_pinned(other));
        p.unpin();
        assert!(!is_pinned(other));
    });
}

#[test]
fn slice_elements_and_references_pin_the_backing_array() {
    cgocheck::run_test(|| {
        let s = new_slice::<u64>(100);
        let mut p = Pinner::new();
        p.pin(s.elem_ptr(57));
        assert!(is_pinned(s));
        assert!(heap().is_pinned(s.elem_ptr(99) as usize));
        p.unpin();
        assert!(!is_pinned(s));
        p.pin(&s[3]);
        assert!(is_pinned(s.elem_ptr(0)));
        p.unpin();
        assert!(!is_pinned(s));
    });
}

#[test]
fn pins_are_counted_per_object() {
    cgocheck::run_test(|| {
        let r = rec();
        let mut a = Pinner::new();
        let mut b = Pinner::new();
        a.pin(r);
        b.pin((r.addr() + 8) as *mut u8);
        a.pin(r); // twice in one Pinner
        a.unpin();
        assert!(is_pinned(r), "b still pins it");
        b.unpin();
        assert!(!is_pinned(r));
    });
}

#[test]
fn large_objects_pin_too() {
    cgocheck::run_test(|| {
        let s = new_slice::<Gc<u64>>(10_000);
        let mut p = Pinner::new();
        p.pin(s.elem_ptr(9_999));
        assert!(heap().is_pinned(s.as_ptr() as usize));
        p.unpin();
        assert!(!heap().is_pinned(s.as_ptr() as usize));
    });
}

#[test]
fn drop_unpins() {
    cgocheck::run_test(|| {
        let r = rec();
        {
            let mut p = Pinner::new();
            p.pin(r);
            assert!(is_pinned(r));
        }
        assert!(!is_pinned(r));
    });
}

/// Run as a child by `drop_warns_like_go`: drops a Pinner with pins.
#[test]
fn child_drop_with_pins() {
    if std::env::var_os("CGOCHECK_PINNER_CHILD").is_none() {
        return;
    }
    cgocheck::run_test(|| {
        let mut p = Pinner::new();
        p.pin(rec());
        p.pin(rec());
        drop(p);
    });
}

#[test]
fn drop_warns_like_go() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_drop_with_pins", "--nocapture", "--test-threads=1"])
        .env("CGOCHECK_PINNER_CHILD", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("runtime.Pinner: found leaking pinned pointer; forgot to call Unpin()?"),
        "stderr: {stderr}"
    );
    assert!(stderr.contains("2 pin(s)"), "stderr: {stderr}");
}

#[test]
fn c_memory_globals_and_zero_sized_are_not_pinned_by_pin() {
    let c = Box::new(7u64);
    cgocheck::managed_static! { static G: u64 = 1; }
    let mut p = Pinner::new();
    p.pin(&*c);
    p.pin(G.as_ptr());
    p.pin(new::<[u64; 0]>([]));
    assert!(p.is_empty(), "nothing to pin: no pins recorded");
    // The checker's view: they count as pinned.
    assert!(heap().is_pinned(&*c as *const u64 as usize));
    assert!(heap().is_pinned(G.addr()));
}

#[test]
#[should_panic(expected = "runtime.Pinner: argument is nil")]
fn pinning_null_panics() {
    Pinner::new().pin(Gc::<u64>::null());
}

#[test]
#[should_panic(expected = "a stack cannot be pinned; allocate the value with cgocheck::new instead")]
fn pinning_a_task_stack_panics() {
    let st = heap().alloc_stack(16 << 10, 9);
    Pinner::new().pin((st.hi - 8) as *const u8);
}

#[test]
fn task_stacks_are_not_pinned() {
    let st = heap().alloc_stack(16 << 10, 10);
    assert!(!heap().is_pinned(st.lo));
    assert!(!heap().is_pinned(st.hi - 1));
}

#[test]
fn freed_objects_are_not_pinned_and_cannot_be() {
    cgocheck::run_test(|| {
        let r = rec();
        // SAFETY: nothing uses `r` after this but address queries.
        unsafe { heap().free(r.as_ptr().cast()) };
        assert!(!heap().is_pinned(r.addr()));
        let msg = std::panic::catch_unwind(|| Pinner::new().pin(r)).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains(&format!("{:#x} points into a freed object", r.addr())), "{msg}");
    });
}

#[test]
#[should_panic(expected = "is pinned")]
fn freeing_a_pinned_object_panics() {
    cgocheck::run_test(|| {
        let r = rec();
        let mut p = Pinner::new();
        p.pin(r);
        // SAFETY: panics before freeing.
        unsafe { heap().free(r.as_ptr().cast()) };
    });
}

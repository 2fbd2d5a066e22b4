//! Managed globals: statics declared with `managed_static!` in different
//! modules all land in the `cgocheck_globals` section, which is writable and
//! survives `--gc-sections` (test binaries are linked with it, in debug and
//! release); ordinary statics are not in it.

use cgocheck::{heap, managed_static, Gc, ManagedMemory, Region};

mod a {
    cgocheck::managed_static! {
        pub static COUNTER: i64 = 5;
    }
}

mod b {
    cgocheck::managed_static! {
        pub static TABLE: [u32; 4] = [1, 2, 3, 4];
        pub static PTR: cgocheck::Gc<u64> = cgocheck::Gc::null();
    }
}

managed_static! {
    /// Never named anywhere but by address through the section range.
    static UNNAMED: u64 = 0xfeed;
}

static ORDINARY: u64 = 9;
static mut ORDINARY_MUT: u64 = 9;

#[track_caller]
fn global_range(addr: usize) -> (usize, usize) {
    match heap().region(addr) {
        Region::Global { lo, hi } => (lo, hi),
        other => panic!("{addr:#x}: expected a managed global, got {other:?}"),
    }
}

#[test]
fn globals_from_different_modules_are_in_range() {
    let r1 = global_range(a::COUNTER.addr());
    let r2 = global_range(b::TABLE.addr() + 15);
    let r3 = global_range(b::PTR.addr());
    assert_eq!(r1, r2);
    assert_eq!(r1, r3);
    assert_eq!(r1, cgocheck::globals::range());
    let (lo, hi) = r1;
    for (addr, size) in [(a::COUNTER.addr(), 8), (b::TABLE.addr(), 16), (b::PTR.addr(), 8), (UNNAMED.addr(), 8)] {
        assert!(lo <= addr && addr + size <= hi);
    }
    assert!(heap().is_pinned(a::COUNTER.addr()));
}

#[test]
fn ordinary_statics_are_not_managed() {
    assert!(matches!(heap().region(&ORDINARY as *const u64 as usize), Region::NotManaged));
    assert!(matches!(heap().region(&raw const ORDINARY_MUT as usize), Region::NotManaged));
    let (lo, hi) = cgocheck::globals::range();
    assert!(matches!(heap().region(lo.wrapping_sub(1)), Region::NotManaged));
    assert!(matches!(heap().region(hi), Region::NotManaged));
}

#[test]
fn globals_are_writable_and_keep_their_values() {
    cgocheck::run_test(|| {
        assert_eq!(a::COUNTER.get(), 5);
        assert_eq!(b::TABLE.get(), [1, 2, 3, 4]);
        // SAFETY: no other test touches PTR.
        unsafe { b::PTR.set(cgocheck::new(3u64)) };
        let p: Gc<u64> = b::PTR.get();
        assert_eq!(*p, 3);
        // Written through the raw pointer, as C would.
        // SAFETY: no other test reads or writes UNNAMED.
        unsafe { *UNNAMED.as_ptr() += 1 };
        assert_eq!(UNNAMED.get(), 0xfeee);
    });
}

//! The store API (`CPtr`) and the managed map (`GcMap`), at every level.
//!
//! The level is read once per process, so `stores_at_each_level` runs this
//! test binary again as a child per level (`CGOCHECK=0`, `1`, `2`), each
//! running only `store_child`, which asserts what its level must do: plain
//! stores below 2, the checker's message and no store at 2.

use cgocheck::checker::Checks;
use cgocheck::{check, cptr_field, new, CPtr, CType, GcMap, ManagedMemory, Pinner};
use core::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;

const CHILD: &str = "CGOCHECK_FFI_STORE_CHILD";

#[test]
fn stores_at_each_level() {
    for level in ["0", "1", "2"] {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("CGOCHECK", level)
            .env_remove("GODEBUG")
            .output()
            .unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "CGOCHECK={level}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The panic message of `f`, which must panic.
fn panic_of(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("the store should have panicked");
    err.downcast_ref::<String>().cloned().or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string())).unwrap()
}

/// C memory for `n` `T`s, zeroed.
fn c_alloc<T>(n: usize) -> CPtr<T> {
    // SAFETY: calloc returns zeroed, aligned memory or null (checked).
    let p = unsafe { libc::calloc(n, std::mem::size_of::<T>()) }.cast::<T>();
    assert!(!p.is_null());
    CPtr::new(p)
}

/// `struct { char *a[4]; long n; }` in C memory.
#[derive(CType)]
#[repr(C)]
#[ctype(name = "table")]
struct Table {
    a: [*mut u8; 4],
    n: i64,
}

#[test]
fn store_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    cgocheck::run_test(|| {
        let stores = check::level().runs(Checks::Stores);
        let x = new(1u8).as_ptr();

        // One pointer: Go's write barrier.
        let c = c_alloc::<*mut u8>(1);
        // SAFETY: `c` is one writable pointer slot.
        let store = || unsafe { c.write(x) };
        if stores {
            let msg = panic_of(store);
            assert!(msg.starts_with("unpinned Go pointer stored into non-Go memory"), "{msg}");
            assert!(msg.contains("store:    pointer write to non-Go memory at"), "{msg}");
            // SAFETY: readable.
            assert!(unsafe { c.read() }.is_null(), "nothing was written");
        } else {
            store();
            // SAFETY: readable.
            assert_eq!(unsafe { c.read() }, x);
        }

        // Pinned, it is fine at every level; so is null, and C memory.
        let mut pinner = Pinner::new();
        pinner.pin(x);
        // SAFETY: as above.
        unsafe { c.write(x) };
        pinner.unpin();
        // SAFETY: as above.
        unsafe { c.write(std::ptr::null_mut()) };

        // Into managed memory, never a violation: the collector sees it.
        let m = new(std::ptr::null_mut::<u8>());
        // SAFETY: `m` is a live managed pointer slot nothing else refers to.
        unsafe { CPtr::from(m).write(x) };
        assert_eq!(*m, x);

        // A struct field through `cptr_field!`, a slice copy into it, and a
        // typed memmove of the whole struct.
        let t = c_alloc::<Table>(1);
        // SAFETY: `t` points to a zeroed, writable table.
        let copy = || unsafe { cptr_field!(t, a).elem(1).copy_from(&[std::ptr::null_mut(), x]) };
        let value = Table { a: [x, std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()], n: 5 };
        // SAFETY: as above.
        let memmove = || unsafe { t.memmove(&value) };
        if stores {
            let msg = panic_of(copy);
            assert!(msg.contains("store:    slice copy of [2]*uint8"), "{msg}");
            assert!(msg.contains("path:     value[1]"), "{msg}");
            let msg = panic_of(memmove);
            assert!(msg.contains("store:    typed memmove of table"), "{msg}");
            // SAFETY: readable.
            assert_eq!(unsafe { t.read() }.n, 0, "nothing was written");
        } else {
            copy();
            memmove();
            // SAFETY: readable.
            let back = unsafe { t.read() };
            assert_eq!((back.a[0], back.n), (x, 5));
        }

        // The address of a managed map (a local of a task: its stack is
        // managed memory) is refused at levels 1 and 2; a nil map passes.
        {
            let map = GcMap::<i64, i64>::new();
            map.insert(1, 2);
            let site = cgocheck::checker::CallSite::new("f46", 1);
            let r = cgocheck::ffi::Arg::<*mut c_void>::check(&cgocheck::field(&map).as_void(), site);
            if check::level().runs(Checks::Args) {
                let msg = r.unwrap_err().to_string();
                assert!(msg.starts_with("cgo argument has Go pointer to unpinned Go map"), "{msg}");
            } else {
                assert!(r.is_ok());
            }
            let nil = GcMap::<i64, i64>::nil();
            assert!(cgocheck::ffi::Arg::<*mut c_void>::check(&cgocheck::field(&nil).as_void(), site).is_ok());
        }

        // SAFETY: from calloc above.
        unsafe {
            libc::free(c.as_ptr().cast());
            libc::free(t.as_ptr().cast());
        }
    });
}

#[test]
fn cptr_is_a_raw_pointer_to_c() {
    assert!(std::ptr::eq(<CPtr<u64> as CType>::TYPE, <*mut u64 as CType>::TYPE));
    assert!(std::ptr::eq(<CPtr<c_void> as CType>::TYPE, <*mut c_void as CType>::TYPE));
    assert_eq!(std::mem::size_of::<CPtr<Table>>(), 8);
    let a = c_alloc::<[u32; 3]>(1);
    // SAFETY: `a` points to 3 zeroed u32s.
    unsafe { a.elem(2).write(7) };
    // SAFETY: readable.
    assert_eq!(unsafe { a.read() }, [0, 0, 7]);
    let msg = panic_of(|| {
        let _ = a.elem(3);
    });
    assert!(msg.contains("index out of range [3] with length 3"), "{msg}");
    // SAFETY: from calloc.
    unsafe { libc::free(a.as_ptr().cast()) };
}

#[test]
fn gcmap_is_a_small_real_map() {
    cgocheck::run_test(|| {
        let m = GcMap::<u32, u64>::new();
        assert!(m.is_empty() && !m.is_nil());
        for k in 0..100u32 {
            m.insert(k, u64::from(k) * 3);
        }
        m.insert(7, 1);
        assert_eq!((m.len(), m.get(7), m.get(99), m.get(100)), (100, Some(1), Some(297), None));
        let copy = m;
        copy.insert(500, 5);
        assert_eq!(m.get(500), Some(5), "copies share the table, like Go map values");
        let nil = GcMap::<u32, u64>::nil();
        assert_eq!((nil.len(), nil.get(1)), (0, None));
        assert!(panic_of(|| nil.insert(1, 1)).contains("assignment to entry in nil map"));
        // One word, a map to the checker.
        assert_eq!(<GcMap<u32, u64> as CType>::TYPE.to_string(), "map[uint32]uint64");
        assert!(matches!(cgocheck::heap().region(m.addr()), cgocheck::Region::Heap(_)));
    });
}

//! Helpers shared by the `check_*` tests: the real heap, a task stack to
//! put "locals" on, C memory from malloc, hand-built descriptors for kinds
//! the runtime has no types for yet (map, chan, func, interface), and the
//! level table a spec row is asserted against.
#![allow(dead_code)] // each test crate uses a different subset

use cgocheck::checker::types::ONE_POINTER;
use cgocheck::checker::{CallSite, CheckError, Checks, Class, Level, TypeRef};
use cgocheck::{heap, Heap, Kind, PtrMask, Type, WORD};

pub fn mem() -> &'static Heap {
    heap()
}

pub fn site(func: &'static str, arg: u32) -> CallSite {
    CallSite::new(func, arg)
}

/// The outcome of a row at one level: `None` = ok, `Some(class)` = FAIL.
pub type Outcome = Option<Class>;

/// Asserts a spec row at levels 0, 1 and 2: the check of family `checks`
/// runs through the runtime's level gate, as the call layer will run it.
#[track_caller]
pub fn row(name: &str, checks: Checks, check: impl Fn() -> Result<(), CheckError>, expected: [Outcome; 3]) {
    for (level, want) in [Level::Off, Level::Check, Level::Full].into_iter().zip(expected) {
        let got = cgocheck::check::gated(level, checks, &check);
        assert_eq!(got.as_ref().err().map(CheckError::class), want, "{name} at CGOCHECK={}: {got:?}", level as u8);
        if let Err(e) = got {
            // Every failure's message starts with the class's phrase.
            let first = e.to_string().lines().next().unwrap().to_owned();
            match e.class() {
                Class::Arg => assert!(first.starts_with("cgo argument has Go pointer to unpinned Go "), "{first}"),
                Class::Result => assert!(first.starts_with("cgo result has Go pointer to unpinned Go "), "{first}"),
                Class::Store => assert_eq!(first, "unpinned Go pointer stored into non-Go memory"),
                _ => {}
            }
        }
    }
}

pub const OK: [Outcome; 3] = [None, None, None];
pub const FAIL_ARG: [Outcome; 3] = [None, Some(Class::Arg), Some(Class::Arg)];
pub const FAIL_RES: [Outcome; 3] = [None, Some(Class::Result), Some(Class::Result)];
pub const FAIL_STORE: [Outcome; 3] = [None, None, Some(Class::Store)];

/// `n` zeroed bytes of C memory (malloc), freed on drop.
pub struct CMem {
    pub ptr: *mut u8,
}

impl CMem {
    pub fn new(n: usize) -> CMem {
        // SAFETY: plain malloc; the result is checked and zeroed.
        let ptr = unsafe { libc::calloc(1, n) } as *mut u8;
        assert!(!ptr.is_null());
        CMem { ptr }
    }
    pub fn cast<T>(&self) -> *mut T {
        self.ptr.cast()
    }
}

impl Drop for CMem {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from calloc and is freed once.
        unsafe { libc::free(self.ptr.cast()) }
    }
}

/// A task stack from the heap, standing in for a running task's stack:
/// `push` places a value on it (from the top) and returns its address.
pub struct TaskStack {
    pub range: cgocheck::StackRange,
    top: usize,
}

impl TaskStack {
    pub fn new(task: u64) -> TaskStack {
        let range = mem().alloc_stack(64 * 1024, task);
        TaskStack { range, top: range.hi }
    }
    pub fn push<T>(&mut self, value: T) -> *mut T {
        let size = core::mem::size_of::<T>().max(1);
        self.top = (self.top - size) & !(core::mem::align_of::<T>().max(WORD) - 1);
        assert!(self.top >= self.range.lo);
        let p = self.top as *mut T;
        // SAFETY: `p` is inside the stack's usable range, aligned for T.
        unsafe { p.write(value) };
        p
    }
}

impl Drop for TaskStack {
    fn drop(&mut self) {
        // SAFETY: nothing runs on this stack; the test is done with it.
        unsafe { mem().free_stack(self.range) }
    }
}

/// Allocates one zeroed value described by `ty` (a hand-built descriptor).
pub fn alloc_typed(ty: &'static Type) -> usize {
    mem().alloc(ty, 1) as usize
}

/// Writes a word at `addr`.
pub fn poke(addr: usize, v: usize) {
    // SAFETY: tests poke only words of objects they allocated.
    unsafe { (addr as *mut usize).write(v) }
}

const I64: TypeRef = TypeRef::of::<i64>();

/// `map[int64]int64`: one pointer word.
pub static MAP: Type = Type {
    name: "",
    size: WORD,
    align: WORD,
    ptrdata: WORD,
    kind: Kind::Map { key: I64, value: I64 },
    ptrmask: ONE_POINTER,
};
/// `chan int64`: one pointer word.
pub static CHAN: Type =
    Type { name: "", size: WORD, align: WORD, ptrdata: WORD, kind: Kind::Chan { elem: I64 }, ptrmask: ONE_POINTER };
/// `func()`: one pointer word.
pub static FUNC: Type =
    Type { name: "", size: WORD, align: WORD, ptrdata: WORD, kind: Kind::Func, ptrmask: ONE_POINTER };
/// `interface {}`: `{ type, data }`.
pub static IFACE: Type = Type {
    name: "",
    size: 2 * WORD,
    align: WORD,
    ptrdata: 2 * WORD,
    kind: Kind::Interface,
    ptrmask: PtrMask::Bits(&[0b11]),
};

/// An interface value `{ type, data }`.
#[repr(C)]
pub struct Iface {
    pub ty: *const Type,
    pub data: usize,
}

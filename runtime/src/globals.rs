//! Managed globals: statics the runtime knows the address range of.
//!
//! A Go module's data and bss sections are Go memory: a pointer into them is
//! a Go pointer that never moves and is always "pinned". Rust statics are
//! scattered among the program's own and its C libraries' data, so managed
//! globals are declared with [`managed_static!`], which places them in one
//! dedicated linker section, `cgocheck_globals`. Because that name is a C
//! identifier, the linker (GNU ld, gold, lld) defines
//! `__start_cgocheck_globals` and `__stop_cgocheck_globals` around it, and
//! "points into managed globals" is one range test.
//!
//! Keeping the section: each static is `#[used]`, so rustc emits it even
//! when nothing names it, and rustc's linker-visible symbol list keeps it
//! from being dropped with its object file; the `__start_`/`__stop_`
//! references keep the section through `--gc-sections` (linkers retain
//! C-identifier sections that such symbols reference). The runtime declares
//! one global of its own, so the section (and the two symbols) exist even in
//! a program that declares none. Every value is a [`Global`], which holds an
//! `UnsafeCell`, so the section is writable (as data/bss is in Go).

use cgocheck_checker::Region;
use std::cell::UnsafeCell;

/// A managed global's storage: a value Go-style code and C may both write.
///
/// Reading through `Deref`/[`Global::get`] is safe; writing is through
/// [`Global::set`] (unsafe: the caller rules out concurrent access, as Go
/// code must synchronise access to its globals) or through the value's own
/// interior mutability (atomics).
#[repr(transparent)]
pub struct Global<T> {
    value: UnsafeCell<T>,
}

// SAFETY: shared access hands out `&T` (needs `T: Sync`); writes go through
// the unsafe `set`/`as_ptr`, whose callers promise no concurrent access.
unsafe impl<T: Sync> Sync for Global<T> {}

impl<T> Global<T> {
    /// A global holding `value`. Used by [`managed_static!`].
    pub const fn new(value: T) -> Global<T> {
        Global { value: UnsafeCell::new(value) }
    }

    /// The address of the value (in the managed globals section when
    /// declared with [`managed_static!`]).
    pub const fn as_ptr(&self) -> *mut T {
        self.value.get()
    }

    /// The address as an integer.
    pub fn addr(&self) -> usize {
        self.as_ptr() as usize
    }

    /// A copy of the value.
    pub fn get(&self) -> T
    where
        T: Copy,
    {
        **self
    }

    /// Replaces the value.
    ///
    /// # Safety
    /// No other thread (nor C code) reads or writes the global concurrently,
    /// and no reference from `Deref` is alive.
    pub unsafe fn set(&self, value: T) {
        // SAFETY: the caller guarantees exclusive access for the duration.
        unsafe { *self.value.get() = value }
    }
}

impl<T> std::ops::Deref for Global<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: writes happen only through `set` or a raw `as_ptr` write,
        // whose callers guarantee no reference is alive meanwhile.
        unsafe { &*self.value.get() }
    }
}

/// Declares managed globals: statics placed in the `cgocheck_globals`
/// section, so a pointer to them answers `Region::Global`.
///
/// ```
/// cgocheck::managed_static! {
///     /// A counter C may be handed a pointer to.
///     pub static COUNTER: i64 = 0;
///     static TABLE: [u32; 4] = [1, 2, 3, 4];
/// }
/// assert_eq!(TABLE.get()[2], 3);
/// assert!(matches!(
///     cgocheck::heap().region(COUNTER.addr()),
///     cgocheck::Region::Global { .. }
/// ));
/// # use cgocheck::ManagedMemory;
/// ```
///
/// Each `static NAME: T = expr;` becomes `static NAME: Global<T>`.
#[macro_export]
macro_rules! managed_static {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $ty:ty = $init:expr;)*) => {$(
        $(#[$attr])*
        #[used]
        #[link_section = "cgocheck_globals"]
        $vis static $name: $crate::Global<$ty> = $crate::Global::new($init);
    )*};
}

managed_static! {
    /// The runtime's own managed global: guarantees the section exists.
    static SECTION_ANCHOR: u64 = 0;
}

extern "C" {
    /// First byte of the `cgocheck_globals` section (defined by the linker).
    #[link_name = "__start_cgocheck_globals"]
    static SECTION_START: u8;
    /// One past the last byte of the section (defined by the linker).
    #[link_name = "__stop_cgocheck_globals"]
    static SECTION_STOP: u8;
}

/// The address range `(lo, hi)` of all managed globals.
#[inline]
pub fn range() -> (usize, usize) {
    // Only the symbols' addresses are taken (never their bytes); they exist
    // because `SECTION_ANCHOR` puts the section in every program that links
    // the runtime.
    (&raw const SECTION_START as usize, &raw const SECTION_STOP as usize)
}

/// `Global` if `addr` is in the managed globals section, else `NotManaged`.
#[inline]
pub(crate) fn region(addr: usize) -> Region<'static> {
    let (lo, hi) = range();
    if addr.wrapping_sub(lo) < hi - lo {
        Region::Global { lo, hi }
    } else {
        Region::NotManaged
    }
}

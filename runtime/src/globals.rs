//! Managed globals: statics the runtime knows the address range of.
//!
//! A Go module's data and bss sections are Go memory: a pointer into them is
//! a Go pointer that never moves and is always "pinned". Rust statics are
//! scattered among the program's own and its C libraries' data, so managed
//! globals are declared with [`managed_static!`](crate::managed_static),
//! which places them in one dedicated linker section, `cgocheck_globals`. Because that name is a C
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
//!
//! Each global's bounds and type: beside every global, the macro puts a
//! [`GlobalDesc`] (its address and its `CType` descriptor) in a second
//! section, `cgocheck_global_descs`, kept and delimited the same way. On
//! the first question about a managed global (`var`, the heap's
//! `ManagedMemory::global`), the descriptors are copied into a table
//! sorted by address, once; then an address is found with a binary search.
//! So an unknown pointer into a global is checked over the whole global,
//! as one into a heap object is over the whole object (Go knows only the
//! data/bss range, and refuses). The same mechanism as the globals'
//! section, rather than a distributed-slice crate: one linker technique,
//! in one file.
//!
//! The collector scans every managed global precisely (`for_each`, read
//! straight from the descriptor section: nothing is built or allocated
//! while the world is stopped), with the pointer mask of its type.

use cgocheck_checker::memory::GlobalVar;
use cgocheck_checker::{CType, Region, Type};
use std::cell::UnsafeCell;
use std::sync::OnceLock;

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
    /// A global holding `value`. Used by [`managed_static!`](crate::managed_static).
    pub const fn new(value: T) -> Global<T> {
        Global { value: UnsafeCell::new(value) }
    }

    /// The address of the value (in the managed globals section when
    /// declared with [`managed_static!`](crate::managed_static)).
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
/// section, so a pointer to them answers `Region::Global`, each with its
/// descriptor in `cgocheck_global_descs` (so the type must be a
/// [`CType`](crate::CType), as everything C may see is).
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
        const _: () = {
            #[used]
            #[link_section = "cgocheck_global_descs"]
            static DESC: $crate::globals::GlobalDesc = $crate::globals::GlobalDesc::of(&$name);
        };
    )*};
}

/// Where one managed global is and what it holds: what
/// [`managed_static!`](crate::managed_static) records for it in the
/// `cgocheck_global_descs` section.
#[derive(Debug)]
#[repr(C)]
pub struct GlobalDesc {
    /// The global's address.
    addr: *const u8,
    /// Its type's descriptor (a raw pointer, not a reference, so that the
    /// section may be read whole even if a linker padded it with zeros).
    ty: *const Type,
}

// SAFETY: the address is only compared, never dereferenced through the
// descriptor; the type descriptor is a `&'static Type`, immutable.
unsafe impl Sync for GlobalDesc {}

impl GlobalDesc {
    /// The descriptor of `global`. Used by [`managed_static!`](crate::managed_static).
    pub const fn of<T: CType>(global: &'static Global<T>) -> GlobalDesc {
        GlobalDesc { addr: global.as_ptr() as *const u8, ty: T::TYPE }
    }
}

managed_static! {
    /// The runtime's own managed global: guarantees the section exists.
    static SECTION_ANCHOR: u64 = 0;
}

extern "C" {
    /// First descriptor of the `cgocheck_global_descs` section.
    #[link_name = "__start_cgocheck_global_descs"]
    static DESCS_START: u8;
    /// One past the last descriptor.
    #[link_name = "__stop_cgocheck_global_descs"]
    static DESCS_STOP: u8;
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

/// The descriptor section, as written by the linker.
fn descs() -> &'static [GlobalDesc] {
    let start = (&raw const DESCS_START).cast::<GlobalDesc>();
    let len = (&raw const DESCS_STOP as usize - start as usize) / size_of::<GlobalDesc>();
    // SAFETY: the linker delimits the section with these two symbols (the
    // runtime's own global puts one descriptor there, so both exist); it
    // holds only `GlobalDesc`s, each 16 bytes and 8-aligned, laid end to end
    // (a linker aligning them more strictly pads with zeros: whole all-zero
    // descriptors, which callers skip), initialised statically and never
    // written.
    unsafe { std::slice::from_raw_parts(start, len) }
}

/// Calls `f(base, type)` for every managed global, in section order, read
/// straight from the descriptors: no allocation, no lock (the collector
/// calls it while the world is stopped).
pub(crate) fn for_each(mut f: impl FnMut(usize, &'static Type)) {
    for d in descs() {
        if !d.addr.is_null() && !d.ty.is_null() {
            // SAFETY: a non-null `ty` is the `T::TYPE` that `GlobalDesc::of`
            // stored: a `&'static Type`.
            f(d.addr as usize, unsafe { &*d.ty });
        }
    }
}

/// Every managed global as `(base, type)`, sorted by address: built from
/// the descriptor section on first use.
fn table() -> &'static [(usize, &'static Type)] {
    static TABLE: OnceLock<Box<[(usize, &'static Type)]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let (lo, hi) = range();
        let mut table: Vec<(usize, &'static Type)> = Vec::new();
        for_each(|base, ty| table.push((base, ty)));
        table.sort_unstable_by_key(|&(base, _)| base);
        for &(base, ty) in &table {
            assert!(
                lo <= base && base + ty.size <= hi,
                "cgocheck: managed global at {base:#x} ({ty}) is outside the globals section {lo:#x}..{hi:#x}"
            );
        }
        table.into_boxed_slice()
    })
}

/// The managed global `addr` lies in: its base and type (`None` outside
/// every global, e.g. in the padding between two).
pub(crate) fn var(addr: usize) -> Option<GlobalVar<'static>> {
    let table = table();
    let i = table.partition_point(|&(base, _)| base <= addr).checked_sub(1)?;
    let (base, ty) = table[i];
    let g = GlobalVar { base, ty };
    g.contains(addr).then_some(g)
}

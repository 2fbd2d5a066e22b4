//! `GcMap<K, V>`: a managed map, the minimum Go's `map[K]V` needs to be
//! here so that the checker's map rule can be exercised end to end.
//!
//! A Go map value is one pointer to a runtime-owned table (`*hmap`), and
//! cgo refuses to let C see one at all (`cgo argument has Go pointer to
//! unpinned Go map`): the table's layout is the runtime's business and it
//! moves its buckets as it grows. `GcMap<K, V>` is the same shape: one
//! word, a [`Gc`] to a managed table, described to the checker as
//! [`Kind::Map`]. A nil map is the null word (which the checker lets
//! through, unlike Go: a nil map shares nothing).
//!
//! The table is deliberately simple — keys and values in two managed
//! arrays, searched linearly, doubled when full — because nothing here
//! needs a fast map; it exists to be a real managed map value that code can
//! build, read and try to pass to C.
//!
//! A `GcMap` is `Copy` like a Go map value (copies share the table) and,
//! like Go's maps, not safe for concurrent use: it is neither `Send` nor
//! `Sync`.

use crate::values::{new, new_slice, Gc};
use cgocheck_checker::types::ONE_POINTER;
use cgocheck_checker::{CType, Kind, Type, TypeRef, WORD};
use core::ffi::c_void;
use core::marker::PhantomData;

/// The managed table behind a map value: `len` entries in use of `cap`;
/// `keys` and `values` are the backing arrays of a `GcSlice<K>` and a
/// `GcSlice<V>` of length `cap` (type-erased, so that one descriptor serves
/// every `K`, `V`; they are pointer words all the same).
#[derive(crate::CType)]
#[repr(C)]
#[ctype(name = "hmap")]
struct Table {
    len: usize,
    cap: usize,
    keys: *mut c_void,
    values: *mut c_void,
}

/// A managed map: Go's `map[K]V`.
#[repr(transparent)]
pub struct GcMap<K, V> {
    table: Gc<Table>,
    /// Not `Send`/`Sync` (a raw pointer), as Go maps are not safe for
    /// concurrent use.
    _kv: PhantomData<*mut (K, V)>,
}

impl<K, V> Clone for GcMap<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for GcMap<K, V> {}

impl<K: CType + Copy + PartialEq, V: CType + Copy> GcMap<K, V> {
    /// The nil map.
    pub const fn nil() -> Self {
        GcMap { table: Gc::null(), _kv: PhantomData }
    }

    /// An empty map: Go's `make(map[K]V)`.
    pub fn new() -> Self {
        GcMap {
            table: new(Table { len: 0, cap: 0, keys: core::ptr::null_mut(), values: core::ptr::null_mut() }),
            _kv: PhantomData,
        }
    }

    /// Whether this is the nil map (no table).
    pub fn is_nil(self) -> bool {
        self.table.is_null()
    }

    /// Number of entries (0 for the nil map).
    pub fn len(self) -> usize {
        if self.is_nil() {
            0
        } else {
            self.table.len
        }
    }

    /// Whether it has no entries.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// The address of the table, for messages and tests.
    pub fn addr(self) -> usize {
        self.table.addr()
    }

    fn keys(&self) -> *mut K {
        self.table.keys.cast()
    }

    fn values(&self) -> *mut V {
        self.table.values.cast()
    }

    fn find(&self, key: &K) -> Option<usize> {
        let t = &*self.table;
        // SAFETY: `keys` holds `cap >= len` initialised `K`s (a managed
        // array from `new_slice`, zeroed, valid per `CType`).
        (0..t.len).find(|&i| unsafe { *self.keys().add(i) } == *key)
    }

    /// The value for `key` (Go's `m[k]`, `v, ok := m[k]`).
    pub fn get(self, key: K) -> Option<V> {
        if self.is_nil() {
            return None;
        }
        // SAFETY: `values` holds `cap >= len` initialised `V`s.
        self.find(&key).map(|i| unsafe { *self.values().add(i) })
    }

    /// Sets `m[key] = value`. Panics on the nil map, as Go does.
    pub fn insert(self, key: K, value: V) {
        assert!(!self.is_nil(), "cgocheck: assignment to entry in nil map");
        if let Some(i) = self.find(&key) {
            // SAFETY: `i < len <= cap`: an initialised slot of `values`.
            unsafe { self.values().add(i).write(value) };
            return;
        }
        // SAFETY: the table is reached only through map values, which stay
        // on one thread, and no reference into it outlives a method call:
        // this is the only reference to it now.
        let t = unsafe { self.table.as_mut() };
        if t.len == t.cap {
            let cap = (t.cap * 2).max(8);
            let (keys, values) = (new_slice::<K>(cap), new_slice::<V>(cap));
            if t.len > 0 {
                // SAFETY: the old arrays hold `len` initialised entries; the
                // new ones have room for `cap > len`; they are distinct
                // allocations.
                unsafe {
                    core::ptr::copy_nonoverlapping(t.keys.cast::<K>(), keys.as_ptr(), t.len);
                    core::ptr::copy_nonoverlapping(t.values.cast::<V>(), values.as_ptr(), t.len);
                }
            }
            t.keys = keys.as_ptr().cast();
            t.values = values.as_ptr().cast();
            t.cap = cap;
        }
        // SAFETY: `len < cap`: a slot of both arrays.
        unsafe {
            t.keys.cast::<K>().add(t.len).write(key);
            t.values.cast::<V>().add(t.len).write(value);
        }
        t.len += 1;
    }
}

impl<K: CType + Copy + PartialEq, V: CType + Copy> Default for GcMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, V> core::fmt::Debug for GcMap<K, V> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "GcMap({:#x})", self.table.addr())
    }
}

// SAFETY: `repr(transparent)` over one `Gc` (a pointer word); all zero is
// the nil map.
unsafe impl<K: CType, V: CType> CType for GcMap<K, V> {
    const TYPE: &'static Type = &Type {
        name: "",
        size: WORD,
        align: WORD,
        ptrdata: WORD,
        kind: Kind::Map { key: TypeRef::of::<K>(), value: TypeRef::of::<V>() },
        ptrmask: ONE_POINTER,
    };
}

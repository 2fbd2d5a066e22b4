//! cgocheck: a managed heap that calls C and is called back by C, with Go's
//! cgo pointer checks on the boundary.
//!
//! This crate is the front door. It holds:
//!
//! - the managed heap ([`heap()`], [`Heap`]): typed, size-classed, never
//!   moving, every object's pointer words known; it answers the checker's
//!   questions through [`ManagedMemory`];
//! - managed values: [`Gc<T>`] (Go's `*T`), [`GcSlice<T>`] (`[]T`),
//!   [`GcStr`] (`string`), allocated with [`new`], [`new_zeroed`],
//!   [`new_with`], [`new_slice`], [`new_string`]; managed globals ([`managed_static!`], [`Global`]);
//! - [`Pinner`] (Go's `runtime.Pinner`) and [`Handle`] (Go's
//!   `runtime/cgo.Handle`);
//! - the checker's type model, re-exported: `#[derive(cgocheck::CType)]`
//!   describes a `#[repr(C)]` struct for the heap and the checks; the
//!   level-gated checks against this heap are [`check`];
//! - tasks over `GOMAXPROCS` processors ([`run`], [`run_test`] under
//!   `cargo test`, [`spawn`], [`Chan`], and
//!   [`sched`] for the rest) and [`cgocall`](mod@cgocall), the call into C
//!   on the thread's g0 stack;
//! - the typed call layer ([`c_functions!`], [`ffi`]) and its store API
//!   ([`CPtr`]); C calling managed code ([`export!`], [`callback`], the C
//!   ABI of `include/cgocheck.h`);
//! - fatal signals and crash reports (`signal/`, using the
//!   `cgocheck-traceback` crate).
//!
//! ```
//! use cgocheck::{CType, Gc, ManagedMemory, Region};
//!
//! #[derive(CType)]
//! #[repr(C)]
//! struct Node {
//!     next: Gc<Node>,
//!     val: [i64; 3],
//! }
//!
//! // Managed objects are made by tasks (the collector scans their stacks).
//! cgocheck::run(|| {
//!     let a = cgocheck::new(Node { next: Gc::null(), val: [1, 2, 3] });
//!     let b = cgocheck::new(Node { next: a, val: [4, 5, 6] });
//!     assert_eq!(b.next.val[2], 3);
//!     match cgocheck::heap().region(b.addr() + 8) {
//!         Region::Heap(obj) => {
//!             assert_eq!(obj.base, b.addr());
//!             assert_eq!(obj.ptr_bits.iter_ones().collect::<Vec<_>>(), [0]); // `next`
//!         }
//!         other => panic!("{other:?}"),
//!     }
//! });
//! ```

// Every public item is documented; the build fails otherwise.
#![deny(missing_docs)]
// Module comments tell the story of private internals too, linking them for
// readers of `cargo doc --document-private-items`.
#![allow(rustdoc::private_intra_doc_links)]

mod arch;
pub mod callback;
pub mod cgocall;
pub mod check;
mod conservative;
pub mod export;
pub mod ffi;
pub mod gc;
pub mod globals;
pub mod handle;
pub mod heap;
pub mod pinner;
pub mod sched;
pub mod signal;
pub mod values;

pub use cgocheck_checker::{self as checker, CType, Field, Kind, ManagedMemory, Object, PtrMask, Region, Type, WORD};
pub use ffi::{elem, extent, field, pointee, slice_data, string_data, CPtr, GcMap};
pub use gc::{add_cleanup, gc, mem_stats, Cleanup, MemStats, Root};
pub use globals::Global;
pub use handle::Handle;
pub use heap::{heap, Heap, StackRange};
pub use pinner::Pinner;
pub use sched::{
    current_task, gomaxprocs, lock_os_thread, park, run, run_test, set_gomaxprocs, sleep, spawn, spawn_with_stack,
    unlock_os_thread, yield_now, AccessError, Chan, JoinHandle, LocalKey, Task,
};
pub use signal::stack_dump;
pub use values::{new, new_slice, new_string, new_with, new_zeroed, Gc, GcSlice, GcStr};

/// The README's Rust examples, compiled and run as doc tests so the front
/// door stays true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

//! cgocheck's pointer rules, independent of any particular heap.
//!
//! - [`types`]: type descriptors ([`Type`], [`CType`], `#[derive(CType)]`).
//! - [`memory`]: the [`ManagedMemory`] trait the runtime's heap implements.

// The derive names this crate by path; let it do so from inside too.
extern crate self as cgocheck_checker;

pub mod memory;
pub mod types;

pub use cgocheck_derive::CType;
pub use memory::{ManagedMemory, Object, Region};
pub use types::{CType, Complex128, Complex64, Field, Kind, PtrMask, Type, WORD};

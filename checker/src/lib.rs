//! cgocheck's pointer rules, independent of any particular heap.
//!
//! - [`types`]: type descriptors ([`Type`], [`CType`], `#[derive(CType)]`).
//! - [`memory`]: the [`ManagedMemory`] trait the runtime's heap implements.
//! - [`env`](mod@env): the one parser of every environment variable, with their table.
//! - [`level`]: `CGOCHECK` / `GODEBUG=cgocheck` and which checks each level runs.
//! - The checks, pure functions of a [`ManagedMemory`] (ungated; the
//!   runtime's glue consults the level): [`check_arg`] (Go's `cgoCheckArg`,
//!   `arg.rs`), [`check_pointer`] with a [`Hint`] (`cgoCheckPointer`,
//!   `pointer.rs`; the whole-object walk of `cgoCheckUnknownPointer` is in
//!   `unknown.rs`), [`check_result`] (`cgoCheckResult`), and the level-2
//!   store checks of `store.rs`. Pointer words are found by `words.rs`.
//! - [`error`]: [`CheckError`] and its message; [`path`]: `arg 1 → .p`.

// Every public item is documented; the build fails otherwise.
#![deny(missing_docs)]

// The derive names this crate by path; let it do so from inside too.
extern crate self as cgocheck_checker;

mod arg;
pub mod env;
pub mod error;
pub mod level;
pub mod memory;
pub mod path;
mod pointer;
mod result;
mod store;
pub mod types;
mod unknown;
mod words;

pub use arg::check_arg;
pub use cgocheck_derive::CType;
pub use env::EnvError;
pub use error::{CallSite, CheckError, Class, GoKind, Place, Report, Site, StoreOp};
pub use level::{Checks, Level};
pub use memory::{ManagedMemory, Object, Region};
pub use pointer::{check_pointer, Hint};
pub use result::check_result;
pub use store::{check_memmove, check_memmove_partial, check_ptr_write, check_slice_copy, check_typed_block};
pub use types::{CType, Complex128, Complex64, Field, Kind, PtrMask, Type, TypeRef, WORD};

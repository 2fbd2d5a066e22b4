//! `cgocheck-build`: what a build script calls so that a crate uses a C
//! library through checked wrappers without typing its declarations again,
//! and so that C code calls the crate's exported functions through a
//! generated header.
//!
//! cmd/cgo reads the C preamble of a Go file with the C compiler, and writes
//! both directions of the boundary itself: a Go wrapper for every `C.f`
//! called, and `_cgo_export.h` declaring every `//export` function for C.
//! This crate does the same two jobs at build time:
//!
//! - [`Bindings`] (`bindings.rs`) runs `bindgen` (libclang) on a header,
//!   keeps the functions, types and constants the allowlist names, and
//!   writes Rust in which every function is declared inside
//!   `cgocheck::c_functions!` (so each is a checked wrapper) and every
//!   struct and union derives `cgocheck::CType` (so the checker knows its
//!   layout and pointer words); enums become integer constants and C
//!   function pointer types `Option<unsafe extern "C" fn(..)>`, both of
//!   which the checker already describes. The crate `include!`s the file.
//! - [`ExportHeader`] (`header.rs`) reads the crate's own sources with
//!   `syn`, finds every `export!` block, and writes a C header with one
//!   prototype per exported function, cmd/cgo's `_cgo_export.h`.
//!
//! ```no_run
//! // build.rs
//! let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
//! cgocheck_build::Bindings::new("wrapper.h")
//!     .allowlist_function("deflate.*|inflate.*")
//!     .allowlist_type("z_stream")
//!     .generate(out.join("zlib.rs"));
//! cgocheck_build::ExportHeader::new()
//!     .source("src/lib.rs")
//!     .write(out.join("exports.h"));
//! ```

#![deny(missing_docs)]

mod bindings;
mod header;

pub use bindings::Bindings;
pub use header::ExportHeader;

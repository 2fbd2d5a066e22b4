//! The typed call layer: checked calls from managed code into C, and
//! checked stores through C pointers.
//!
//! Go programs call C as `C.f(args)`; cmd/cgo turns each call into a wrapper
//! that evaluates the arguments once, checks the pointer arguments
//! (`_cgoCheckPointer`) and calls `runtime.cgocall` with a trampoline and an
//! argument frame. Here [`c_functions!`](crate::c_functions) generates the
//! same wrapper from an `extern "C"` declaration (`declare.rs`; its
//! documentation has a runnable example):
//!
//! ```text
//! cgocheck::c_functions! { extern "C" { fn f1(p: *mut S1); } }
//! unsafe { f1(field(s1)) }      // Go: C.f1(&s1)
//!   └─ f1 (the wrapper)         evaluate the arguments (once, by Rust), check
//!        │                      each at the CGOCHECK level, fill the frame
//!        └─ cgocall(trampoline, &mut frame, nocallback)       cgocall.rs
//!             └─ on the M's g0 stack: trampoline(frame) → C's f1(p)
//! ```
//!
//! `c-tests` has one case per row of the pointer-passing table
//! (`src/bin/ptrcases.rs`) and the tour (`examples/tour.rs`).
//!
//! # How much a pointer argument is checked
//!
//! cmd/cgo decides from the argument's syntax (`checkIndex`, `checkAddr`,
//! `checkSlice` in `cmd/cgo/gcc.go`); Rust code says it with a wrapper
//! (`args.rs`):
//!
//! | Go call site | here | [`Hint`](crate::checker::Hint) | what is checked |
//! |---|---|---|---|
//! | `C.f(&x)`, `C.f(&x.f)`, `C.f(&T{…})` | `f(field(&x.f))`, `f(field(gc))` | `Element` | the pointee, as its type |
//! | `C.f(&s[i])`, `C.f(&a[i])`, `C.f(&pa[i])` | `f(elem(&s, i))` | `Whole` | the whole slice (all `cap` elements) or array |
//! | `C.f(unsafe.SliceData(s[i:j]))` | `f(slice_data(&s))` | `Whole` | as `elem`, also when empty |
//! | `C.f(&view[i])`, `view` a Rust `&[T]` | `f(elem(view, i))` | `Extent` | the view's bytes |
//! | `C.f(p)`: anything else | `f(p)`: a raw pointer, a `Gc`, a `CPtr` | `Unknown` | the whole heap object |
//! | `C.f(unsafe.Pointer(x))` | `f(x.as_void())`, `x.cast::<U>()` | as for `x` | as for `x` (issue 25941) |
//! | `C.f(unsafe.StringData(s))` | `f(string_data(&s))` | `Extent(len)` | Go: nothing; here the bytes |
//! | (beyond Go) a `void*` to a known type | `f(pointee::<T>(p))` | `Pointee` | one `T` |
//! | (beyond Go) a pointer and its length | `f(extent(p, n))` | `Extent(n)` | those `n` bytes |
//! | a value (struct, string, slice) | `f(v)` | — | `check::value`: Go's top-level rules |
//!
//! As in cmd/cgo (`needsPointerCheck`), the parameter type decides whether
//! an argument is checked at all: a pointer to a pointer-free type (`int*`)
//! never is; `void*` and pointers to types with pointers are.
//!
//! # The parts
//!
//! - `declare.rs`: [`c_functions!`](crate::c_functions) — wrappers, frames,
//!   trampolines, C function pointer types, `#[nocallback]`/`#[noescape]`;
//!   [`c_call!`](crate::c_call) and [`foreign`] for a `-sys` crate's
//!   functions and types.
//! - `args.rs`: [`Arg`] (what a wrapper accepts for a parameter type and how
//!   it is checked) and the hint wrappers.
//! - `store.rs`: [`CPtr`], the store API checked at `CGOCHECK=2`.
//! - `lend.rs`: at `CGOCHECK=2`, the record of which call last handed each
//!   object to C, for the quarantine's reports.
//! - `map.rs`: [`GcMap`], a managed map value (refused at the boundary).
//! - `cstr.rs`: Go's `C.CString`, `C.CBytes`, `C.GoString`, `C.GoStringN`,
//!   `C.GoBytes` ([`c_string`], [`c_bytes`], [`go_string`], [`go_string_n`],
//!   [`go_bytes`]; [`c_free`]).
//!
//! A violation panics with the checker's whole message (its `Display`),
//! from the caller's line.

mod args;
mod cstr;
mod declare;
#[doc(hidden)]
pub mod lend;
mod map;
#[doc(hidden)]
pub mod regs;
mod store;

pub use args::{
    elem, extent, field, param_needs_check, pointee, slice_data, string_data, Address, Arg, Hinted, Indexed, StrData,
};
pub use cstr::{c_bytes, c_free, c_string, go_bytes, go_string, go_string_n};
pub use declare::{c_name, foreign, CCall, Foreign};
pub use map::GcMap;
pub use store::CPtr;

use cgocheck_checker::CheckError;

/// Panics with the checker's message: what a failed check does.
#[cold]
#[inline(never)]
#[track_caller]
pub fn fail(e: CheckError) -> ! {
    panic!("{e}")
}

/// Panics for a call through a null C function pointer of type `name`.
#[cold]
#[inline(never)]
#[track_caller]
pub fn null_function(name: &str) -> ! {
    panic!("cgocheck: call through a null C function pointer ({name}); nothing was called")
}

//! Crash-report tracebacks: collect return addresses in a signal handler,
//! symbolise them somewhere safe, print them the way Go prints goroutines.
//!
//! A crash report is made in two halves, because the half that must run in
//! a signal handler may not allocate or take locks, and the half that turns
//! addresses into names must do both:
//!
//! 1. **Collection** (async-signal-safe, in the crashed process):
//!    [`Regs::from_ucontext`] reads the interrupted registers from a
//!    signal's `ucontext`; [`unwind`] walks up to [`MAX_FRAMES`] frames
//!    (Go's 32-entry `cgoCallers` buffer) from there, and [`unwind_ends`]
//!    the whole stack (bounded by [`MAX_WALK`]), keeping its innermost
//!    [`MAX_FRAMES`] and, in a ring, its outermost [`BOTTOM_FRAMES`] (the
//!    two ends of a deep recursion), by the `.eh_frame` CFI
//!    of each code address's module (found with glibc's lock-free
//!    `_dl_find_object`, see `module.rs`), falling back to the frame-pointer
//!    chain where a module has no CFI for an address. Stack memory is read
//!    with `process_vm_readv` on our own pid (`memory.rs`), so a corrupt
//!    stack ends the walk instead of faulting inside the handler. The
//!    frames, each with its module's path and load bias, and the report's
//!    text lines go into a [`wire::Writer`] over a caller-provided buffer.
//! 2. **Symbolisation and printing** (an ordinary process that may allocate):
//!    [`render`] reads that wire text, looks every frame up in the DWARF of
//!    its module — function, file:line, inlined frames — and in its symbol
//!    table (for the `+0xoff` function offset), and prints Go's layout:
//!
//!    ```text
//!    deref(...)
//!        /src/crash.c:7 +0x4 fp=0x7ffd… sp=0x7ffd… pc=0x55d1…
//!    ```
//!
//!    Each section stops at std's `__rust_begin_short_backtrace`, the frame
//!    through which Rust's start-up calls `main`, as Rust's own short
//!    backtraces do. A module without DWARF or symbols (a stripped binary)
//!    prints the module and the address inside it instead (`??` then
//!    `/path/to/module+0x1a2b3`), which `addr2line -e` accepts as is.
//!    [`render_raw`] prints the same report with no symbols at all and is
//!    async-signal-safe: the fallback when no symboliser could run.
//!
//! How the two halves meet is the runtime's business (it runs the second
//! half in a fresh process fed through a pipe); this crate depends on
//! neither the runtime nor the checker.
//!
//! Why gimli's unwind tables rather than framehop: framehop wants every
//! module registered up front (enumerating modules takes the loader's lock,
//! and a library `dlopen`ed later would be missing) and allocates its
//! caches on the heap; gimli's `UnwindContext` with a fixed-size storage
//! (`unwind.rs`) lives on the signal stack, and `_dl_find_object` finds the
//! `.eh_frame_hdr` of any loaded module per address without a lock.

// Every public item is documented; the build fails otherwise.
#![deny(missing_docs)]

mod buf;
mod memory;
mod module;
mod regs;
mod render;
mod symbolize;
mod unwind;
pub mod wire;

pub use buf::{write_fd, FixedBuf};
pub use module::{init, module_of, ModuleInfo};
pub use regs::Regs;
pub use render::{render, render_raw};
pub use symbolize::{Symbol, Symbolizer};
pub use unwind::{unwind, unwind_ends, Ends, Frame, BOTTOM_FRAMES, MAX_FRAMES, MAX_WALK};

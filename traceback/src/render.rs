//! Printing a report the way Go prints a traceback.
//!
//! Go prints each frame as its function, then a tab, the file and line, and
//! the offset of the pc from the function's entry, with the frame's
//! pointers when the traceback level asks for them:
//!
//! ```text
//! main.main()
//!     /src/main.go:23 +0x4d fp=0xc000049f58 sp=0xc000049f10 pc=0x49bdad
//! ```
//!
//! and an inlined call as the function with `(...)` and its call site only.
//! Our frames read the same, for C and Rust alike (`(...)`: arguments are
//! not known), innermost first:
//!
//! ```text
//! deref(...)
//!     /work/c-tests/csrc/crash.c:14 +0x4 fp=0x7ffc… sp=0x7ffc… pc=0x55e0…
//! crash_in_c(...)
//!     /work/c-tests/csrc/crash.c:20 +0x11 fp=… sp=… pc=…
//! ```
//!
//! A frame whose module has no DWARF line for it prints the module and the
//! pc's address in that module (`/lib/x86_64-linux-gnu/libc.so.6+0x271ca`,
//! what `addr2line -e` takes) in place of file:line, under the symbol's
//! name when there is one and `??` when there is not — the form a stripped
//! binary gets.
//!
//! Below `GOTRACEBACK=system` a report hides the runtime's own frames, as
//! Go hides `runtime.*` ones: the call layer, callback switching, the
//! scheduler, `catch_unwind` and std's panic machinery ([`RUNTIME_FRAMES`]),
//! one function of an inline chain at a time, so a user's function inlined
//! into a hidden trampoline still shows. What remains is C frames and the
//! user's. The crashed process asks for it with a wire record (`R`).
//!
//! [`render`] symbolises and allocates (the symboliser process);
//! [`render_raw`] prints every frame in the no-symbols form and is
//! async-signal-safe (the crashed process's fallback).

use crate::buf::{write_fd, FixedBuf};
use crate::symbolize::{Symbol, Symbolizer};
use crate::wire::{records, FrameRecord, ModuleRef, Record};
use core::fmt::{self, Write};
use std::path::Path;

/// Functions of the panic machinery, skipped at the top of a panic's
/// frames (after a `P` record) up to the first frame that is not one.
const PANIC_MACHINERY: &[&str] = &[
    "std::panicking::",
    "core::panicking::",
    "std::panic::",
    "std::sys::backtrace::",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
    "<alloc::boxed::Box<",
    "cgocheck::signal::",
];

/// The runtime's own functions (name prefixes, and the parts every
/// `c_functions!` wrapper generates by their suffix: the trampoline, the
/// call proper, inlined into the wrapper, and the level-2 lending path),
/// hidden below `GOTRACEBACK=system`.
const RUNTIME_FRAMES: &[&str] = &[
    "cgocheck::arch::",
    "cgocheck::cgocall::",
    "cgocheck::callback::",
    "cgocheck::export::",
    "cgocheck::sched::",
    "cgocheck::signal::",
    "std::panicking::",
    "std::panic::",
    "core::panicking::",
    "core::panic::",
    "core::ops::function::",
    "<core::panic::unwind_safe::AssertUnwindSafe<",
    "<alloc::boxed::Box<",
    "std::sys::backtrace::",
    "__rust_try",
    "rust_begin_unwind",
    "__rustc::",
];

/// Whether `name` is one of the runtime's own functions.
fn is_runtime_frame(name: &str) -> bool {
    RUNTIME_FRAMES.iter().any(|m| name.starts_with(m)) || GENERATED.iter().any(|g| name.ends_with(g))
}

/// The generated parts of a wrapper (see [`RUNTIME_FRAMES`]).
const GENERATED: &[&str] = &["::__cgocheck_trampoline", "::__cgocheck_call", "::__cgocheck_lend_and_call"];

#[cfg(test)]
#[test]
fn a_wrappers_generated_parts_are_runtime_frames() {
    for name in
        ["app::ffi::f::__cgocheck_trampoline", "app::ffi::f::__cgocheck_call", "app::f::__cgocheck_lend_and_call"]
    {
        assert!(is_runtime_frame(name), "{name}");
    }
    assert!(!is_runtime_frame("app::ffi::f") && !is_runtime_frame("app::__cgocheck_callx"));
}

/// Rust's start-up code calls `main` through this function; like Rust's
/// short backtraces (and Go, which stops at `runtime.main`), a section ends
/// at it: what lies below is std's and libc's start-up, the same in every
/// report.
const BELOW_MAIN: &str = "std::sys::backtrace::__rust_begin_short_backtrace";

/// Symbolises and formats the report `report` (wire text) into `out`.
pub fn render(report: &[u8], out: &mut String, symbolizer: &mut Symbolizer) {
    let mut skipping = false;
    let mut below_main = false;
    let mut hide_runtime = false;
    for rec in records(report) {
        match rec {
            Record::Magic => {}
            Record::Line(text) => {
                skipping = false;
                below_main = false;
                out.push_str(text);
                out.push('\n');
            }
            Record::SkipPanicMachinery => skipping = true,
            Record::HideRuntimeFrames => hide_runtime = true,
            Record::Frame(f) => {
                if below_main {
                    continue;
                }
                let sym = match f.module {
                    ModuleRef::Main(p) => {
                        symbolizer.symbolize(Path::new(p), Some(Path::new("/proc/self/exe")), f.module_addr() as u64)
                    }
                    ModuleRef::Shared(p) => symbolizer.symbolize(Path::new(p), None, f.module_addr() as u64),
                    ModuleRef::Unknown => Symbol::default(),
                };
                let name = sym
                    .frames
                    .last()
                    .and_then(|fr| fr.function.as_deref())
                    .or(sym.symbol.as_ref().map(|s| s.0.as_str()));
                if name.is_some_and(|n| n.starts_with(BELOW_MAIN)) {
                    below_main = true;
                    continue;
                }
                if skipping {
                    if name.is_some_and(|n| PANIC_MACHINERY.iter().any(|m| n.starts_with(m))) {
                        continue;
                    }
                    skipping = false;
                }
                let _ = write_frame(out, &f, &sym, hide_runtime);
            }
        }
    }
}

/// Formats the report `report` with no symbols at all onto `fd`:
/// lines as they are, frames as module+offset. Async-signal-safe.
pub fn render_raw(report: &[u8], fd: i32) {
    for rec in records(report) {
        let mut buf = FixedBuf::<1024>::new();
        let _ = match rec {
            Record::Magic | Record::SkipPanicMachinery | Record::HideRuntimeFrames => continue,
            Record::Line(text) => writeln!(buf, "{text}"),
            Record::Frame(f) => write_frame(&mut buf, &f, &Symbol::default(), false),
        };
        write_fd(fd, buf.as_bytes());
    }
}

/// One frame in Go's layout: a function line and a location line per
/// function of the inline chain, the last one printed with the offset and
/// the frame's pointers. With `hide_runtime`, the runtime's own functions
/// of the chain are left out (all of them: nothing is printed).
fn write_frame(w: &mut impl Write, f: &FrameRecord<'_>, sym: &Symbol, hide_runtime: bool) -> fmt::Result {
    let n = sym.frames.len();
    let name_of = |i: usize| {
        let fr = &sym.frames[i];
        fr.function.as_deref().or(if i + 1 == n { sym.symbol.as_ref().map(|s| s.0.as_str()) } else { None })
    };
    let shown = |i: usize| !(hide_runtime && name_of(i).is_some_and(is_runtime_frame));
    let last_shown = (0..n).rev().find(|&i| shown(i));
    for (i, fr) in sym.frames.iter().enumerate() {
        if !shown(i) {
            continue;
        }
        match name_of(i) {
            Some(name) => writeln!(w, "{name}(...)")?,
            None => writeln!(w, "??")?,
        }
        w.write_char('\t')?;
        match (&fr.file, fr.line) {
            (Some(file), Some(line)) => write!(w, "{file}:{line}")?,
            (Some(file), None) => write!(w, "{file}")?,
            _ => write_module_addr(w, f)?,
        }
        if Some(i) == last_shown {
            write_tail(w, f, sym)?;
        }
        w.write_char('\n')?;
    }
    if n == 0 {
        let name = sym.symbol.as_ref().map(|s| s.0.as_str());
        if hide_runtime && name.is_some_and(is_runtime_frame) {
            return Ok(());
        }
        match name {
            Some(name) => writeln!(w, "{name}(...)")?,
            None => writeln!(w, "??")?,
        }
        w.write_char('\t')?;
        write_module_addr(w, f)?;
        write_tail(w, f, sym)?;
        w.write_char('\n')?;
    }
    Ok(())
}

/// `/path/to/module+0x1a2b3`, or `??` when the module is unknown.
fn write_module_addr(w: &mut impl Write, f: &FrameRecord<'_>) -> fmt::Result {
    match f.module.path() {
        Some(p) => write!(w, "{p}+{:#x}", f.module_pc()),
        None => write!(w, "??"),
    }
}

/// ` +0xoff fp=0x… sp=0x… pc=0x…` (the offset only with a symbol, fp only
/// when known).
fn write_tail(w: &mut impl Write, f: &FrameRecord<'_>, sym: &Symbol) -> fmt::Result {
    if let Some((_, start)) = sym.symbol {
        write!(w, " +{:#x}", (f.module_pc() as u64).wrapping_sub(start))?;
    }
    if f.frame.fp != 0 {
        write!(w, " fp={:#x}", f.frame.fp)?;
    }
    write!(w, " sp={:#x} pc={:#x}", f.frame.sp, f.frame.pc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unwind::Frame;
    use crate::wire::Writer;

    #[inline(never)]
    fn a_frame_in_this_file() -> usize {
        std::hint::black_box(1)
    }

    fn report(frames: &[Frame], exe: &[u8]) -> Vec<u8> {
        crate::init();
        let mut buf = vec![0u8; 8192];
        let mut w = Writer::new(&mut buf, exe);
        w.line(format_args!("SIGSEGV: segmentation violation"));
        w.frames(frames);
        w.finish().to_vec()
    }

    #[test]
    fn a_symbolised_frame_reads_like_go() {
        let pc = a_frame_in_this_file as *const () as usize + 4;
        let bytes = report(&[Frame { pc, sp: 0x1000, fp: 0x1010, exact: true }], b"/proc/self/exe");
        let mut out = String::new();
        render(&bytes, &mut out, &mut Symbolizer::new());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "SIGSEGV: segmentation violation");
        assert!(lines[1].ends_with("a_frame_in_this_file(...)"), "{out}");
        assert!(lines[2].starts_with('\t') && lines[2].contains("render.rs:"), "{out}");
        assert!(lines[2].ends_with(&format!(" +0x4 fp=0x1010 sp=0x1000 pc={pc:#x}")), "{out}");
    }

    #[test]
    fn without_symbols_a_frame_is_its_module_and_offset() {
        let pc = a_frame_in_this_file as *const () as usize + 4;
        // A main executable path that does not exist and no fallback for a
        // shared module: nothing can be read.
        let bytes = report(&[Frame { pc, sp: 0x1000, fp: 0, exact: true }], b"/nonexistent/exe");
        let m = crate::module_of(pc).unwrap();
        let want = format!("??\n\t/nonexistent/exe+{:#x} sp=0x1000 pc={pc:#x}\n", pc - m.bias);
        // The raw renderer, through a pipe.
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        render_raw(&bytes, fds[1]);
        // SAFETY: closing our own write end.
        unsafe { libc::close(fds[1]) };
        let mut got = vec![0u8; 4096];
        // SAFETY: reading into `got`, writable for its length.
        let n = unsafe { libc::read(fds[0], got.as_mut_ptr().cast(), got.len()) };
        // SAFETY: closing our own read end.
        unsafe { libc::close(fds[0]) };
        let got = String::from_utf8_lossy(&got[..n as usize]).into_owned();
        assert_eq!(got, format!("SIGSEGV: segmentation violation\n{want}"));
    }

    #[test]
    fn panic_machinery_is_skipped_up_to_the_panicking_frame() {
        let mut buf = vec![0u8; 8192];
        crate::init();
        let mut w = Writer::new(&mut buf, b"/proc/self/exe");
        w.skip_panic_machinery();
        // A frame of std's panicking code, then ours.
        let std_frame = std::panic::take_hook as fn() -> _ as usize;
        let ours = a_frame_in_this_file as *const () as usize + 4;
        w.frames(&[
            Frame { pc: std_frame + 1, sp: 0, fp: 0, exact: true },
            Frame { pc: ours, sp: 0, fp: 0, exact: true },
        ]);
        let bytes = w.finish().to_vec();
        let mut out = String::new();
        render(&bytes, &mut out, &mut Symbolizer::new());
        assert!(out.starts_with("cgocheck_traceback::render::tests::a_frame_in_this_file(...)"), "{out}");
    }

    #[test]
    fn hidden_runtime_frames_leave_the_others() {
        crate::init();
        let std_frame = std::panic::take_hook as fn() -> _ as usize;
        let ours = a_frame_in_this_file as *const () as usize + 4;
        let frames =
            [Frame { pc: std_frame + 1, sp: 0, fp: 0, exact: true }, Frame { pc: ours, sp: 0, fp: 0, exact: true }];
        for hide in [false, true] {
            let mut buf = vec![0u8; 8192];
            let mut w = Writer::new(&mut buf, b"/proc/self/exe");
            if hide {
                w.hide_runtime_frames();
            }
            w.frames(&frames);
            let bytes = w.finish().to_vec();
            let mut out = String::new();
            render(&bytes, &mut out, &mut Symbolizer::new());
            assert_eq!(out.contains("std::panicking::"), !hide, "{out}");
            assert!(out.contains("a_frame_in_this_file(...)"), "{out}");
        }
    }
}

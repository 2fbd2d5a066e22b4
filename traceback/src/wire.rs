//! The report as it travels from the crashed process to the symboliser:
//! plain text, one record per line, written without allocating.
//!
//! ```text
//! cgocheck-report 1
//! L SIGSEGV: segmentation violation          a line printed as is
//! L
//! R                                          hide the runtime's own frames
//! P                                          panic machinery follows: skip it
//! F e 55d1c0a1b2f3 7ffd1000 7ffd1010 55d1c0a00000 x /path/to/exe
//! F r 7f2a4c0271ca 7ffd1100 7ffd1180 7f2a4c000000 l /lib/x86_64-linux-gnu/libc.so.6
//! ```
//!
//! A frame record (`F`) is: `e` (exact pc) or `r` (return address); pc,
//! sp, fp (CFA) and the module's load bias in hex; the module kind — `x`
//! the main executable, `l` a shared object, `-` unknown — and its path,
//! last, so that it may contain spaces. A record that does not fit the
//! buffer is dropped and the report ends with a line saying it was cut.
//!
//! [`Writer`] is the async-signal-safe producer; [`parse_line`] reads one
//! record back without allocating, so both the symboliser ([`crate::render`])
//! and the no-symbols fallback ([`crate::render_raw`]) use it.

use crate::module::module_of;
use crate::unwind::Frame;
use core::fmt::{self, Write};

/// The first line of every report.
pub const MAGIC: &str = "cgocheck-report 1";

/// Bytes kept free for the line that says the report was cut.
const RESERVE: usize = 96;

/// Writes a report into a caller-provided buffer. Async-signal-safe.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
    full: bool,
    exe: &'a [u8],
}

impl<'a> Writer<'a> {
    /// Starts a report in `buf`. `exe` is the main executable's path (for
    /// its frames, whose link map has no name).
    pub fn new(buf: &'a mut [u8], exe: &'a [u8]) -> Writer<'a> {
        let mut w = Writer { buf, len: 0, full: false, exe };
        w.put(MAGIC.as_bytes());
        w.put(b"\n");
        w
    }

    /// Appends the text lines of `args` (a newline in the text starts a
    /// new line record).
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        let mark = self.len;
        self.put(b"L ");
        let ok = LineText(self).write_fmt(args).is_ok();
        self.put(b"\n");
        if !ok || self.full {
            self.len = mark;
            self.full = true;
        }
    }

    /// Marks that the frames which follow begin with the panic machinery
    /// (the panic hook and std's panicking functions), for the symboliser
    /// to skip up to the frame that panicked.
    pub fn skip_panic_machinery(&mut self) {
        self.put(b"P\n");
    }

    /// Marks that the rest of the report hides the runtime's own frames
    /// (`GOTRACEBACK` below `system`; the list is [`crate::render`]'s).
    pub fn hide_runtime_frames(&mut self) {
        self.put(b"R\n");
    }

    /// Appends frame records, with each frame's module looked up now.
    pub fn frames(&mut self, frames: &[Frame]) {
        for f in frames {
            let mark = self.len;
            let module = module_of(f.lookup_pc());
            let (kind, bias, path): (&str, usize, &[u8]) = match module {
                Some(m) if m.main => ("x", m.bias, self.exe),
                Some(m) => ("l", m.bias, m.name()),
                None => ("-", 0, b""),
            };
            let _ = write!(
                RawText(self),
                "F {} {:x} {:x} {:x} {:x} {} ",
                if f.exact { "e" } else { "r" },
                f.pc,
                f.sp,
                f.fp,
                bias,
                kind
            );
            // Newlines would split the record; a path with one is printed
            // with `?` in its place.
            let mut path_buf = [0u8; 512];
            let n = path.len().min(path_buf.len());
            path_buf[..n].copy_from_slice(&path[..n]);
            for b in &mut path_buf[..n] {
                if *b == b'\n' {
                    *b = b'?';
                }
            }
            self.put(&path_buf[..n]);
            self.put(b"\n");
            if self.full {
                self.len = mark;
                return;
            }
        }
    }

    /// Ends the report and returns its bytes.
    pub fn finish(self) -> &'a [u8] {
        let Writer { buf, mut len, full, .. } = self;
        if full {
            let note = b"L ...report cut: it did not fit the crash buffer...\n";
            let n = note.len().min(buf.len() - len);
            buf[len..len + n].copy_from_slice(&note[..n]);
            len += n;
        }
        &buf[..len]
    }

    fn put(&mut self, bytes: &[u8]) {
        if self.full || bytes.len() > self.buf.len().saturating_sub(RESERVE).saturating_sub(self.len) {
            self.full = true;
            return;
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

/// `fmt::Write` into a writer, turning newlines into new `L` records.
struct LineText<'w, 'a>(&'w mut Writer<'a>);

impl Write for LineText<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for (i, part) in s.split('\n').enumerate() {
            if i > 0 {
                self.0.put(b"\nL ");
            }
            self.0.put(part.as_bytes());
        }
        if self.0.full {
            Err(fmt::Error)
        } else {
            Ok(())
        }
    }
}

/// `fmt::Write` into a writer, as is.
struct RawText<'w, 'a>(&'w mut Writer<'a>);

impl Write for RawText<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put(s.as_bytes());
        Ok(())
    }
}

/// The module a frame's pc lies in, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleRef<'a> {
    /// The main executable, at this path.
    Main(&'a str),
    /// A shared object, at this path (or the loader's name, e.g. the vDSO's).
    Shared(&'a str),
    /// Not found (no `_dl_find_object`, or code outside every module).
    Unknown,
}

impl<'a> ModuleRef<'a> {
    /// The path, if known.
    pub fn path(&self) -> Option<&'a str> {
        match *self {
            ModuleRef::Main(p) | ModuleRef::Shared(p) => Some(p),
            ModuleRef::Unknown => None,
        }
    }
}

/// A frame record read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRecord<'a> {
    /// The frame as collected.
    pub frame: Frame,
    /// Its module's load bias.
    pub bias: usize,
    /// Its module.
    pub module: ModuleRef<'a>,
}

impl FrameRecord<'_> {
    /// The frame's lookup address in its module's own address space (what
    /// the DWARF and `addr2line -e` use).
    pub fn module_addr(&self) -> usize {
        self.frame.lookup_pc().wrapping_sub(self.bias)
    }

    /// The frame's pc in its module's own address space.
    pub fn module_pc(&self) -> usize {
        self.frame.pc.wrapping_sub(self.bias)
    }
}

/// One record of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// The report's first line.
    Magic,
    /// A line of text.
    Line(&'a str),
    /// The frames that follow start with panic machinery.
    SkipPanicMachinery,
    /// The rest of the report hides the runtime's own frames.
    HideRuntimeFrames,
    /// A frame.
    Frame(FrameRecord<'a>),
}

/// Parses one line of a report (without its newline). `None` for a line
/// that is not a record (a truncated last line). Does not allocate.
pub fn parse_line(line: &[u8]) -> Option<Record<'_>> {
    let line = core::str::from_utf8(line).ok()?;
    if line == MAGIC {
        return Some(Record::Magic);
    }
    if line == "P" {
        return Some(Record::SkipPanicMachinery);
    }
    if line == "R" {
        return Some(Record::HideRuntimeFrames);
    }
    if let Some(text) = line.strip_prefix("L ") {
        return Some(Record::Line(text));
    }
    let rest = line.strip_prefix("F ")?;
    let mut fields = rest.splitn(7, ' ');
    let exact = match fields.next()? {
        "e" => true,
        "r" => false,
        _ => return None,
    };
    let mut hex = || usize::from_str_radix(fields.next()?, 16).ok();
    let (pc, sp, fp, bias) = (hex()?, hex()?, hex()?, hex()?);
    let kind = fields.next()?;
    let path = fields.next().unwrap_or("");
    let module = match kind {
        "x" => ModuleRef::Main(path),
        "l" => ModuleRef::Shared(path),
        _ => ModuleRef::Unknown,
    };
    Some(Record::Frame(FrameRecord { frame: Frame { pc, sp, fp, exact }, bias, module }))
}

/// The records of a whole report, in order, skipping lines that are not
/// records. Does not allocate.
pub fn records(report: &[u8]) -> impl Iterator<Item = Record<'_>> {
    report.split(|&b| b == b'\n').filter_map(parse_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_frames_round_trip() {
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf, b"/bin/exe with space");
        w.line(format_args!("SIGSEGV: {}", "segmentation violation"));
        w.line(format_args!("two\nlines"));
        w.hide_runtime_frames();
        w.skip_panic_machinery();
        // An address in no module.
        w.frames(&[Frame { pc: 0x10, sp: 0x20, fp: 0x30, exact: true }]);
        let bytes = w.finish();
        let recs: Vec<_> = records(bytes).collect();
        assert_eq!(
            recs,
            [
                Record::Magic,
                Record::Line("SIGSEGV: segmentation violation"),
                Record::Line("two"),
                Record::Line("lines"),
                Record::HideRuntimeFrames,
                Record::SkipPanicMachinery,
                Record::Frame(FrameRecord {
                    frame: Frame { pc: 0x10, sp: 0x20, fp: 0x30, exact: true },
                    bias: 0,
                    module: ModuleRef::Unknown
                }),
            ]
        );
    }

    #[test]
    fn main_executable_frames_carry_its_path() {
        crate::init();
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf, b"/bin/exe with space");
        let pc = main_executable_frames_carry_its_path as *const () as usize + 1;
        w.frames(&[Frame { pc, sp: 0, fp: 0, exact: false }]);
        let bytes = w.finish();
        let Some(Record::Frame(f)) = records(bytes).nth(1) else { panic!("{}", String::from_utf8_lossy(bytes)) };
        assert_eq!(f.module, ModuleRef::Main("/bin/exe with space"));
        assert_eq!(f.module_pc() + f.bias, pc);
    }

    #[test]
    fn a_full_buffer_cuts_whole_records_and_says_so() {
        let mut buf = [0u8; 200];
        let mut w = Writer::new(&mut buf, b"");
        for i in 0..100 {
            w.line(format_args!("line {i}"));
        }
        let text = String::from_utf8(w.finish().to_vec()).unwrap();
        assert!(text.ends_with("L ...report cut: it did not fit the crash buffer...\n"), "{text}");
        assert!(
            records(text.as_bytes()).all(|r| !matches!(r, Record::Line(l) if l.starts_with("line ") && l.len() < 6))
        );
    }
}

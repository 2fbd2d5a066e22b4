//! Addresses to names: DWARF (addr2line over gimli) and ELF symbol tables
//! (object), per module file, loaded once per module.
//!
//! This half allocates freely and is meant for the symboliser process the
//! runtime starts after a crash (or for ordinary code, such as tests). A
//! module file is memory-mapped and its mapping, and any section that had
//! to be decompressed, is kept for the life of the process (leaked): the
//! symboliser is a short-lived process that looks up a few dozen
//! addresses, and the DWARF readers borrow from those bytes.
//!
//! For an address in a module's own address space (the runtime address
//! minus the load bias, see `module.rs`) [`Symbolizer::symbolize`] gives:
//!
//! - the chain of functions at that address, innermost inlined function
//!   first, each with its file and line (from `.debug_info`/`.debug_line`);
//! - the enclosing symbol (from `.symtab`, else `.dynsym`) whose range
//!   covers the address, for the `+0xoff` offset from the function's entry
//!   and as the name when there is no DWARF.
//!
//! A module that cannot be read (deleted, the vDSO, permissions) or has
//! neither gives an empty [`Symbol`]; the caller prints the module and
//! offset instead.

use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

type Reader = gimli::EndianSlice<'static, gimli::RunTimeEndian>;

/// One function in an address's inline chain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineFrame {
    /// The demangled function name.
    pub function: Option<String>,
    /// The source file.
    pub file: Option<String>,
    /// The line in it.
    pub line: Option<u32>,
}

/// What is known about one address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Symbol {
    /// From DWARF: the innermost inlined function first, the function the
    /// code belongs to last. Empty without DWARF.
    pub frames: Vec<InlineFrame>,
    /// The enclosing symbol's demangled name and start address (module
    /// address space).
    pub symbol: Option<(String, u64)>,
}

impl Symbol {
    /// Whether nothing at all is known.
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty() && self.symbol.is_none()
    }
}

/// A loaded module's lookup structures.
struct Module {
    dwarf: Option<addr2line::Context<Reader>>,
    /// Function symbols sorted by start: (start, end, name).
    symbols: Vec<(u64, u64, &'static str)>,
}

/// Looks addresses up in module files, caching each file's DWARF and
/// symbols.
#[derive(Default)]
pub struct Symbolizer {
    modules: HashMap<PathBuf, Option<Module>>,
}

impl Symbolizer {
    /// An empty cache.
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    /// What the module file at `path` knows about `addr` (an address in
    /// its own address space). `fallback` is tried when `path` cannot be
    /// opened (the runtime passes `/proc/self/exe` for the main
    /// executable of a process that re-executed itself).
    pub fn symbolize(&mut self, path: &Path, fallback: Option<&Path>, addr: u64) -> Symbol {
        let module = self
            .modules
            .entry(path.to_path_buf())
            .or_insert_with(|| Module::load(path).or_else(|| fallback.and_then(Module::load)));
        match module {
            Some(m) => m.lookup(addr),
            None => Symbol::default(),
        }
    }
}

impl Module {
    fn load(path: &Path) -> Option<Module> {
        let file = std::fs::File::open(path).ok()?;
        // SAFETY: the mapping is read-only and private; a module file being
        // rewritten while we read it would give wrong names, not unsafety
        // in this process's own memory (the bytes are only parsed).
        let map = unsafe { memmap2::Mmap::map(&file) }.ok()?;
        let bytes: &'static [u8] = Box::leak(Box::new(map));
        let obj = object::File::parse(bytes).ok()?;
        let endian = if obj.is_little_endian() { gimli::RunTimeEndian::Little } else { gimli::RunTimeEndian::Big };
        let dwarf = if obj.section_by_name(".debug_info").is_some() {
            let load = |id: gimli::SectionId| -> Result<Reader, gimli::Error> {
                let data: &'static [u8] = match obj.section_by_name(id.name()).map(|s| s.uncompressed_data()) {
                    Some(Ok(Cow::Borrowed(b))) => b,
                    Some(Ok(Cow::Owned(v))) => Vec::leak(v),
                    _ => &[],
                };
                Ok(gimli::EndianSlice::new(data, endian))
            };
            gimli::Dwarf::load(load).ok().and_then(|d| addr2line::Context::from_dwarf(d).ok())
        } else {
            None
        };
        Some(Module { dwarf, symbols: function_symbols(&obj) })
    }

    fn lookup(&self, addr: u64) -> Symbol {
        let mut sym = Symbol::default();
        if let Some(ctx) = &self.dwarf {
            if let Ok(mut frames) = ctx.find_frames(addr).skip_all_loads() {
                while let Ok(Some(f)) = frames.next() {
                    let function = f.function.as_ref().and_then(|n| n.demangle().ok()).map(|n| n.into_owned());
                    let (file, line) = match f.location {
                        Some(l) => (l.file.map(str::to_owned), l.line),
                        None => (None, None),
                    };
                    sym.frames.push(InlineFrame { function, file, line });
                }
            }
            // A location with no function still leaves an empty chain out.
            if sym.frames.iter().all(|f| *f == InlineFrame::default()) {
                sym.frames.clear();
            }
        }
        let i = self.symbols.partition_point(|&(start, _, _)| start <= addr);
        if i > 0 {
            let (start, end, name) = self.symbols[i - 1];
            if addr < end {
                sym.symbol = Some((addr2line::demangle_auto(Cow::Borrowed(name), None).into_owned(), start));
            }
        }
        sym
    }
}

/// The defined function symbols of `obj` with a size, sorted by address:
/// `.symtab`, or `.dynsym` when the file was stripped of `.symtab`.
fn function_symbols(obj: &object::File<'static>) -> Vec<(u64, u64, &'static str)> {
    let collect = |syms: &mut dyn Iterator<Item = object::Symbol<'static, '_>>| {
        syms.filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.size() > 0)
            .filter_map(|s| Some((s.address(), s.address() + s.size(), s.name().ok()?)))
            .collect::<Vec<_>>()
    };
    let mut v = collect(&mut obj.symbols());
    if v.is_empty() {
        v = collect(&mut obj.dynamic_symbols());
    }
    v.sort_unstable_by_key(|&(start, _, _)| start);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_named_function() -> usize {
        std::hint::black_box(7)
    }

    #[test]
    fn finds_this_function_with_file_and_line() {
        crate::init();
        let pc = a_named_function as *const () as usize + 1;
        let m = crate::module_of(pc).expect("the test binary is a module");
        let mut s = Symbolizer::new();
        let sym = s.symbolize(Path::new("/proc/self/exe"), None, (pc - m.bias) as u64);
        let outer = sym.frames.last().expect("DWARF frames");
        assert!(outer.function.as_deref().unwrap_or("").ends_with("a_named_function"), "{sym:?}");
        assert!(outer.file.as_deref().unwrap_or("").ends_with("symbolize.rs"), "{sym:?}");
        let (name, start) = sym.symbol.expect("a symbol");
        assert!(name.ends_with("a_named_function"), "{name}");
        assert_eq!(start as usize + m.bias, a_named_function as *const () as usize);
    }

    #[test]
    fn an_unreadable_module_is_empty_not_an_error() {
        let mut s = Symbolizer::new();
        assert!(s.symbolize(Path::new("/nonexistent/module.so"), None, 0x1000).is_empty());
    }
}

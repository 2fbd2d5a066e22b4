//! What a failed check says.
//!
//! Go's message is one line: `argument of cgo function has Go pointer to
//! unpinned Go pointer`. Ours starts with the same words (the spec's classes:
//! `cgo argument has Go pointer to unpinned Go pointer`, `cgo result has …`,
//! `unpinned Go pointer stored into non-Go memory`, and the map / chan /
//! func / interface variants naming the kind), then says what Go does not,
//! one item per line:
//!
//! ```text
//! cgo argument has Go pointer to unpinned Go pointer
//!     call:     f1, argument 1
//!     path:     arg 1 → .p
//!     pointer:  0x7f0a1c001010, into Go object 0x7f0a1c001010 (8 bytes, int32), not pinned
//!     found at: 0x7f0a1c000ff0, in Go object 0x7f0a1c000ff0 (8 bytes, s1)
//!     argument: 0x7f0a1c000ff0, in Go object 0x7f0a1c000ff0 (8 bytes, s1)
//!     fix:      pin it with a Pinner, or pass a Handle
//! ```
//!
//! Bad input gets its own variants: a pointer into a freed object, into a
//! heap slot that never held one or padding between managed globals ("not
//! an allocated object": "freed" means only what was freed), into the
//! unused tail of a span, misaligned for its type, or to memory smaller than
//! its type; and a pointer into a task stack whose extent the call site did
//! not state (`unknown.rs` says why that is refused).
//!
//! One past the end: an address one past the end of object A is also the
//! first address of whatever follows A (object B). The checks look at B (as
//! Go does; only where nothing was ever allocated after A is it A's, see
//! `pointer.rs`), so when a check fails on such an address, and it is
//! likelier A's end than B's start (B is a freed slot or padding, or A is
//! pinned: see `end_pointer`), the message says both, in an `end of:` line — "this pointer is the end of object A
//! (…); the check looked at the object after it, B (…)" — and its fix names
//! `extent(p, 0)` and a spare byte ([`EndPointer`]).
//!
//! Zero cost on success: the walks carry only a `Fault` box on the error
//! path (see `path.rs`), and `Fault::into_error` describes addresses and
//! types (allocating strings) only then.

use crate::memory::{region_of, ManagedMemory, Object, Region};

const NOTE_END_OF_OBJECT: &str = "the pointer is one past the end of that object, where no object has ever been, \
     so it is that object's end pointer and is checked as pointing into it";
use crate::path::{Path, Root, Step};
use core::fmt;
use thiserror::Error;

/// The C function and argument position of an argument check. Two words;
/// the message is built from it only when a check fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallSite {
    /// The C function's name.
    pub func: &'static str,
    /// 1-based position of the argument.
    pub arg: u32,
}

impl CallSite {
    /// Argument `arg` (1-based) of the C function `func`.
    pub const fn new(func: &'static str, arg: u32) -> CallSite {
        CallSite { func, arg }
    }
}

/// Which store API found the pointer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOp {
    /// `check_ptr_write`: one pointer written through a pointer.
    Write,
    /// `check_memmove`: a typed value copied.
    Memmove,
    /// `check_slice_copy`: slice elements copied.
    SliceCopy,
    /// `check_typed_block`: part of a typed value copied.
    TypedBlock,
}

/// Where a check ran: the context the message names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Site {
    /// An argument of a call into C.
    Arg(CallSite),
    /// The result of an exported function returned to C.
    Result {
        /// The exported function's name.
        func: &'static str,
    },
    /// A store into memory (level 2).
    Store {
        /// The store API.
        op: StoreOp,
        /// The type of what was stored.
        ty: String,
        /// Where to (0 when the API was not told).
        dst: usize,
        /// Where from.
        src: usize,
    },
}

/// The kind of Go value that is refused, named in the first line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoKind {
    /// A pointer (also a slice's or string's data pointer).
    Pointer,
    /// A managed map: never allowed across the boundary.
    Map,
    /// A managed channel: never allowed across the boundary.
    Chan,
    /// A managed closure.
    Func,
    /// An interface whose dynamic type was built at run time.
    Interface,
}

/// What memory an address is in, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Place {
    /// C memory (or null).
    NotManaged,
    /// A live heap object.
    Object {
        /// Its first byte.
        base: usize,
        /// Its bytes (the slot).
        size: usize,
        /// Its type, Go-spelled (`[8]s1` for an array object).
        ty: String,
    },
    /// A heap slot whose object was freed.
    Freed {
        /// The slot's first byte.
        base: usize,
        /// The slot's bytes.
        size: usize,
        /// The type the slot last held.
        ty: String,
    },
    /// A heap slot that never held an object.
    Unallocated {
        /// The slot's first byte.
        base: usize,
        /// The slot's bytes.
        size: usize,
        /// What the span's slots are for.
        ty: String,
    },
    /// The unused tail of a heap span.
    SpanTail {
        /// The span's first byte.
        span_base: usize,
        /// One past its last byte.
        span_end: usize,
    },
    /// The zero-sized allocation.
    ZeroSized,
    /// A task stack.
    Stack {
        /// The task running on it.
        task: u64,
        /// Its lowest usable address.
        lo: usize,
        /// One past its highest address.
        hi: usize,
    },
    /// The managed globals section.
    Global {
        /// The section's first byte.
        lo: usize,
        /// One past its last byte.
        hi: usize,
        /// The variable the address is in, if any: base, size, type.
        var: Option<(usize, usize, String)>,
    },
}

/// An address that is one past the end of one object and the start of
/// what follows it, where a check failed: the message says both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndPointer {
    /// The address (the offending pointer, or the argument).
    pub addr: usize,
    /// Whether it is the argument itself (else a pointer found in memory).
    pub is_argument: bool,
    /// The object it is the end of (A).
    pub ends: Place,
    /// Whether A is pinned (heap objects; `None` for globals).
    pub ends_pinned: Option<bool>,
    /// What the check looked at instead (B).
    pub next: Place,
}

/// Everything a message says after its first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Where the check ran.
    pub site: Site,
    /// From the argument (or result, or stored value) to the offending
    /// pointer.
    pub path: Path,
    /// The offending pointer's value.
    pub pointer: usize,
    /// What it points into.
    pub pointer_place: Place,
    /// Whether a heap object it points into is pinned (`None` elsewhere).
    pub pinned: Option<bool>,
    /// Address of the word holding the offending pointer, and its memory
    /// (`None` when the pointer is the argument or result itself).
    pub found_at: Option<(usize, Place)>,
    /// The address the argument (or a pointer result) designates: a
    /// pointer's target, else the value itself; and its memory. `None` for
    /// stores and for results passed by value.
    pub argument: Option<(usize, Place)>,
    /// Why, when the first line does not say it all.
    pub note: Option<&'static str>,
    /// When the failing address is one past the end of an object: which
    /// object it ends, and what the check looked at instead.
    pub end_pointer: Option<EndPointer>,
    /// What to do about it.
    pub fix: &'static str,
}

/// A failed check.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CheckError {
    /// Class `arg` (and `map`/`chan` naming the kind).
    #[error("cgo argument has Go pointer to unpinned Go {kind}\n{report}")]
    Arg {
        /// What was refused.
        kind: GoKind,
        /// The details.
        report: Box<Report>,
    },
    /// Class `res`.
    #[error("cgo result has Go pointer to unpinned Go {kind}\n{report}")]
    Result {
        /// What was refused.
        kind: GoKind,
        /// The details.
        report: Box<Report>,
    },
    /// Class `store`.
    #[error("unpinned Go pointer stored into non-Go memory\n{report}")]
    Store {
        /// The details.
        report: Box<Report>,
    },
    /// A pointer into a heap slot whose object was freed.
    #[error("{} points to freed Go memory\n{report}", subject(&report.site))]
    Freed {
        /// The details.
        report: Box<Report>,
    },
    /// A pointer into managed memory that is not an allocated object: a
    /// heap slot that never held one, or padding between managed globals.
    #[error("{} points to Go memory that is not an allocated object\n{report}", subject(&report.site))]
    Unallocated {
        /// The details.
        report: Box<Report>,
    },
    /// A pointer into a task stack passed with nothing saying how much of
    /// the stack C may use.
    #[error("{} points into a task stack without saying how much of it C may use\n{report}", subject(&report.site))]
    UnknownExtent {
        /// The details.
        report: Box<Report>,
    },
    /// A pointer into the part of a heap span that no object uses.
    #[error("{} points into the unused tail of a Go heap span\n{report}", subject(&report.site))]
    SpanTail {
        /// The details.
        report: Box<Report>,
    },
    /// A pointer not aligned for the type it is read as.
    #[error("{} has a pointer misaligned for its type (needs {align}-byte alignment)\n{report}", subject(&report.site))]
    Misaligned {
        /// The alignment the type needs.
        align: usize,
        /// The details.
        report: Box<Report>,
    },
    /// A pointer whose type extends past the end of the memory it points
    /// into.
    #[error("{} points to Go memory smaller than its type ({need} bytes needed)\n{report}", subject(&report.site))]
    PastEnd {
        /// The bytes the type needs.
        need: usize,
        /// The details.
        report: Box<Report>,
    },
}

/// The variants of [`CheckError`] without their data, for matching in tests
/// and in the call layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// [`CheckError::Arg`].
    Arg,
    /// [`CheckError::Result`].
    Result,
    /// [`CheckError::Store`].
    Store,
    /// [`CheckError::Freed`].
    Freed,
    /// [`CheckError::Unallocated`].
    Unallocated,
    /// [`CheckError::UnknownExtent`].
    UnknownExtent,
    /// [`CheckError::SpanTail`].
    SpanTail,
    /// [`CheckError::Misaligned`].
    Misaligned,
    /// [`CheckError::PastEnd`].
    PastEnd,
}

impl CheckError {
    /// The variant, without its data.
    pub fn class(&self) -> Class {
        match self {
            CheckError::Arg { .. } => Class::Arg,
            CheckError::Result { .. } => Class::Result,
            CheckError::Store { .. } => Class::Store,
            CheckError::Freed { .. } => Class::Freed,
            CheckError::Unallocated { .. } => Class::Unallocated,
            CheckError::UnknownExtent { .. } => Class::UnknownExtent,
            CheckError::SpanTail { .. } => Class::SpanTail,
            CheckError::Misaligned { .. } => Class::Misaligned,
            CheckError::PastEnd { .. } => Class::PastEnd,
        }
    }

    /// The refused kind, for the `arg` and `res` classes.
    pub fn kind(&self) -> Option<GoKind> {
        match self {
            CheckError::Arg { kind, .. } | CheckError::Result { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// Everything the message says after its first line.
    pub fn report(&self) -> &Report {
        match self {
            CheckError::Arg { report, .. }
            | CheckError::Result { report, .. }
            | CheckError::Store { report }
            | CheckError::Freed { report }
            | CheckError::Unallocated { report }
            | CheckError::UnknownExtent { report }
            | CheckError::SpanTail { report }
            | CheckError::Misaligned { report, .. }
            | CheckError::PastEnd { report, .. } => report,
        }
    }
}

fn subject(site: &Site) -> &'static str {
    match site {
        Site::Arg(_) => "cgo argument",
        Site::Result { .. } => "cgo result",
        Site::Store { .. } => "stored Go pointer",
    }
}

impl fmt::Display for GoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GoKind::Pointer => "pointer",
            GoKind::Map => "map",
            GoKind::Chan => "chan",
            GoKind::Func => "func",
            GoKind::Interface => "interface",
        })
    }
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::NotManaged => f.write_str("non-Go memory"),
            Place::Object { base, size, ty } => write!(f, "Go object {base:#x} ({size} bytes, {ty})"),
            Place::Freed { base, size, ty } => {
                write!(f, "freed Go memory (slot {base:#x}, {size} bytes, last typed {ty})")
            }
            Place::Unallocated { base, size, ty } => {
                write!(f, "a Go heap slot that was never allocated (slot {base:#x}, {size} bytes, in a span of {ty})")
            }
            Place::SpanTail { span_base, span_end } => {
                write!(f, "the unused tail of Go heap span {span_base:#x}..{span_end:#x}")
            }
            Place::ZeroSized => f.write_str("the zero-sized allocation"),
            Place::Stack { task, lo, hi } => write!(f, "the stack of task {task} ({lo:#x}..{hi:#x})"),
            Place::Global { var: Some((base, size, ty)), .. } => {
                write!(f, "managed global {base:#x} ({size} bytes, {ty})")
            }
            Place::Global { lo, hi, var: None } => write!(f, "managed globals ({lo:#x}..{hi:#x}), in no variable"),
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.site {
            Site::Arg(cs) => writeln!(f, "    call:     {}, argument {}", cs.func, cs.arg)?,
            Site::Result { func } => writeln!(f, "    call:     exported function {func}, result returned to C")?,
            Site::Store { op, ty, dst, src } => {
                let what = match op {
                    StoreOp::Write => "pointer write",
                    StoreOp::Memmove => "typed memmove",
                    StoreOp::SliceCopy => "slice copy",
                    StoreOp::TypedBlock => "typed block copy",
                };
                match op {
                    // The pointer line below shows what was written.
                    StoreOp::Write => write!(f, "    store:    {what}")?,
                    _ => write!(f, "    store:    {what} of {ty} from {src:#x}")?,
                }
                if *dst != 0 {
                    write!(f, " to non-Go memory at {dst:#x}")?;
                }
                writeln!(f)?;
            }
        }
        writeln!(f, "    path:     {}", self.path)?;
        write!(f, "    pointer:  {:#x}, into {}", self.pointer, self.pointer_place)?;
        match self.pinned {
            Some(true) => writeln!(f, ", pinned")?,
            Some(false) => writeln!(f, ", not pinned")?,
            None => writeln!(f)?,
        }
        if let Some((at, place)) = &self.found_at {
            writeln!(f, "    found at: {at:#x}, in {place}")?;
        }
        if let Some((addr, place)) = &self.argument {
            let what = if matches!(self.site, Site::Result { .. }) { "result:  " } else { "argument:" };
            writeln!(f, "    {what} {addr:#x}, in {place}")?;
        }
        if let Some(note) = self.note {
            writeln!(f, "    note:     {note}")?;
        }
        if let Some(e) = &self.end_pointer {
            writeln!(f, "    end of:   {e}")?;
        }
        write!(f, "    fix:      {}", self.fix)
    }
}

impl fmt::Display for EndPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let which = if self.is_argument { "the argument" } else { "this pointer" };
        let pinned = match self.ends_pinned {
            Some(true) => ", pinned",
            Some(false) => ", not pinned",
            None => "",
        };
        write!(
            f,
            "{which} ({:#x}) is the end of object A ({}{pinned}); the check looked at the object after it, B ({}), \
             which starts at the same address",
            self.addr, self.ends, self.next
        )
    }
}

/// Describes an address for a message (an end pointer that the checks
/// took as its object's, `region_of`, as that object).
pub(crate) fn place<M: ManagedMemory + ?Sized>(mem: &M, addr: usize) -> Place {
    match region_of(mem, addr) {
        Region::NotManaged => Place::NotManaged,
        Region::Heap(o) => Place::Object { base: o.base, size: o.size, ty: object_type(&o) },
        Region::Freed(o) => Place::Freed { base: o.base, size: o.size, ty: object_type(&o) },
        Region::Unallocated(o) => Place::Unallocated { base: o.base, size: o.size, ty: o.elem.to_string() },
        Region::SpanTail { span_base, span_end } => Place::SpanTail { span_base, span_end },
        Region::ZeroSized => Place::ZeroSized,
        Region::Stack { task, lo, hi } => Place::Stack { task, lo, hi },
        Region::Global { lo, hi } => {
            Place::Global { lo, hi, var: mem.global(addr).map(|g| (g.base, g.ty.size, g.ty.to_string())) }
        }
    }
}

/// The end-pointer story for `addr` if it is one past the end of a live
/// heap object or managed global A, and so also the first byte of whatever
/// follows A (heap slots and globals are laid end to end, so nothing else
/// can start between them) — when that reading is the likelier one.
///
/// Every pointer to an object's base is also the end of the slot before
/// it, so saying so on every failure would bury the message; the story is
/// told when the address is more likely A's end than B's start: B is no
/// object (`bad_memory`: a freed or never-allocated slot, a span tail, the
/// padding after a global), or A is a pinned heap object (pinned because
/// it was handed to C, whose end pointer C then keeps: zlib's `next_in`).
fn end_pointer<M: ManagedMemory + ?Sized>(
    mem: &M,
    addr: usize,
    is_argument: bool,
    bad_memory: bool,
) -> Option<EndPointer> {
    if addr == 0 {
        return None;
    }
    let before = addr - 1;
    if matches!(mem.region(addr), Region::Unallocated(_) | Region::SpanTail { .. })
        && matches!(region_of(mem, addr), Region::Heap(_))
    {
        // The checks took it as A's end pointer already (`region_of`).
        return None;
    }
    let (ends_pinned, ends_here) = match mem.region(before) {
        Region::Heap(o) => (Some(mem.is_pinned(before)), o.base + o.size == addr),
        Region::Global { .. } => (None, mem.global(before).is_some_and(|g| g.base + g.ty.size == addr)),
        _ => return None,
    };
    (ends_here && (bad_memory || ends_pinned == Some(true))).then(|| EndPointer {
        addr,
        is_argument,
        ends: place(mem, before),
        ends_pinned,
        next: place(mem, addr),
    })
}

/// `s1` for one value, `[8]s1` for an array object.
fn object_type(o: &Object<'_>) -> String {
    if o.count == 1 {
        o.elem.to_string()
    } else {
        format!("[{}]{}", o.count, o.elem)
    }
}

// ---------------------------------------------------------------------------
// Faults: what the walks return on failure, before the site is known.

/// What went wrong, before it is attached to a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum What {
    /// A managed pointer that must be pinned is not (or cannot be: maps,
    /// channels, closures, run-time types, stacks).
    Unpinned(GoKind),
    Freed,
    /// Managed memory that is no allocated object (a never-used heap slot,
    /// padding between globals).
    Unallocated,
    /// A task-stack pointer with no stated extent.
    UnknownExtent,
    SpanTail,
    Misaligned(usize),
    PastEnd(usize),
}

/// A failed walk. `steps` is innermost first: each level of the walk pushes
/// its step as the fault travels up.
#[derive(Debug)]
pub(crate) struct Fault {
    pub what: What,
    pub pointer: usize,
    pub at: Option<usize>,
    pub note: Option<&'static str>,
    pub steps: Vec<Step>,
}

/// The result of a walk: one word on success and failure alike.
pub(crate) type Walk = Result<(), Box<Fault>>;

impl Fault {
    #[cold]
    #[inline(never)]
    pub fn new(what: What, pointer: usize, at: Option<usize>) -> Box<Fault> {
        Box::new(Fault { what, pointer, at, note: None, steps: Vec::new() })
    }

    #[cold]
    #[inline(never)]
    pub fn noted(what: What, pointer: usize, at: Option<usize>, note: &'static str) -> Box<Fault> {
        Box::new(Fault { what, pointer, at, note: Some(note), steps: Vec::new() })
    }

    /// Adds a step on the way out.
    #[cold]
    pub fn step(mut self: Box<Fault>, step: Step) -> Box<Fault> {
        self.steps.push(step);
        self
    }

    /// Adds several steps (given outermost first) on the way out.
    #[cold]
    pub fn steps(mut self: Box<Fault>, steps: Vec<Step>) -> Box<Fault> {
        self.steps.extend(steps.into_iter().rev());
        self
    }

    /// Turns the fault into the error for `site`. `argument` is the address
    /// the argument designates, when there is one.
    #[cold]
    #[inline(never)]
    pub fn into_error<M: ManagedMemory + ?Sized>(self, mem: &M, site: Site, argument: Option<usize>) -> CheckError {
        let root = match site {
            Site::Arg(cs) => Root::Arg(cs.arg),
            Site::Result { .. } => Root::Result,
            Site::Store { .. } => Root::Value,
        };
        let Fault { what, pointer, at, note, mut steps } = self;
        steps.reverse();
        let pointer_place = place(mem, pointer);
        let pinned = match pointer_place {
            Place::Object { base, .. } => Some(mem.is_pinned(base)),
            _ => None,
        };
        // An end pointer the checks took as its object's says so.
        let note = match pointer_place {
            Place::Object { base, size, .. } if pointer == base + size => note.or(Some(NOTE_END_OF_OBJECT)),
            _ => note,
        };
        let store = matches!(site, Site::Store { .. });
        // An address one past the end of an object: the offending pointer
        // itself, or else the argument whose target was checked.
        let bad_memory = matches!(what, What::Freed | What::Unallocated | What::SpanTail);
        let end_pointer = end_pointer(mem, pointer, argument == Some(pointer), bad_memory)
            .or_else(|| argument.and_then(|a| end_pointer(mem, a, true, bad_memory && a == pointer)));
        let fix = match what {
            _ if end_pointer.is_some() => {
                "if the pointer is meant as the end of A, pass it with extent(p, 0) (nothing is checked), or \
                 give A one spare byte so that its end stays inside it; if it is meant to point at B, fix B \
                 as the first line says"
            }
            What::Unpinned(GoKind::Map | GoKind::Chan | GoKind::Func | GoKind::Interface) => {
                "maps, channels, closures and run-time types cannot be shared with C; pass a Handle instead"
            }
            What::Unpinned(GoKind::Pointer) if matches!(pointer_place, Place::Stack { .. }) => {
                "task stacks cannot be pinned; move the value to the heap and pin it with a Pinner, or pass a Handle"
            }
            What::Unpinned(GoKind::Pointer) if store => "pin it with a Pinner before storing it, or store a Handle",
            What::Unpinned(GoKind::Pointer) => "pin it with a Pinner, or pass a Handle",
            What::Freed => {
                "the pointer dangles; keep the object alive (reachable, pinned or in a Handle) while C uses it"
            }
            What::Unallocated => {
                "the pointer does not point into any object: no allocation returned it; check the pointer \
                 arithmetic that made it"
            }
            What::UnknownExtent => {
                "say what C gets: field(&x) for one value of its type, elem(&a, i) for a whole array, \
                 pointee::<T>(p) for a void* to one T, extent(p, n) for n bytes; or allocate the value with \
                 cgocheck::new"
            }
            What::SpanTail => "the pointer does not point into any object; check the pointer arithmetic that made it",
            What::Misaligned(_) | What::PastEnd(_) => {
                "the pointer's type does not fit the memory it points to; check the cast or the pointer arithmetic"
            }
        };
        let report = Box::new(Report {
            path: Path { root, steps },
            pointer,
            pointer_place,
            pinned,
            found_at: at.map(|at| (at, place(mem, at))),
            argument: argument.map(|a| (a, place(mem, a))),
            note,
            end_pointer,
            fix,
            site,
        });
        match (what, &report.site) {
            (What::Unpinned(kind), Site::Arg(_)) => CheckError::Arg { kind, report },
            (What::Unpinned(kind), Site::Result { .. }) => CheckError::Result { kind, report },
            (What::Unpinned(_), Site::Store { .. }) => CheckError::Store { report },
            (What::Freed, _) => CheckError::Freed { report },
            (What::Unallocated, _) => CheckError::Unallocated { report },
            (What::UnknownExtent, _) => CheckError::UnknownExtent { report },
            (What::SpanTail, _) => CheckError::SpanTail { report },
            (What::Misaligned(align), _) => CheckError::Misaligned { align, report },
            (What::PastEnd(need), _) => CheckError::PastEnd { need, report },
        }
    }
}

//! Walking the stack from a set of registers, async-signal-safely.
//!
//! Each step asks which module holds the frame's pc (`module.rs`), finds
//! the FDE for it through that module's `.eh_frame_hdr` search table, and
//! runs the CFI program with gimli into an [`UnwindContext`] whose storage
//! is fixed-size arrays ([`FixedStorage`]), so the context lives on the
//! (signal) stack and nothing is allocated. The row gives the canonical
//! frame address (CFA, the caller's stack pointer) and where the
//! callee-saved registers and the return address were saved; the saved
//! words are read through `memory.rs`, which turns a bad address into
//! "stop" rather than a fault.
//!
//! CFA and register rules given as DWARF expressions (stack-switching
//! trampolines describe the other stack that way, e.g. `CFA = *(rsp) +
//! 16`) are evaluated by gimli's expression evaluator, also with
//! fixed-size storage, reading registers from the frame and memory through
//! `memory.rs`.
//!
//! A frame whose CIE is marked as a signal frame (`.cfi_signal_frame`: the
//! kernel's signal trampoline, or a stack switch such as the runtime's
//! `asmcgocall`) may hand over to a caller on another stack, above or
//! below: the stack pointer is allowed not to grow across it, and the
//! caller's pc is an exact address there (libgcc's convention), not a
//! return address.
//!
//! When a pc has no CFI (code from a module without `.eh_frame`, a rule we
//! cannot follow, or no `_dl_find_object`),
//! the step falls back to the frame-pointer chain: `[fp]` is the caller's
//! frame pointer and `[fp + 8]` the return address. The C in c-tests is
//! built with frame pointers for this reason; Rust code is not, and is
//! walked by its CFI.
//!
//! Frame 0 of a signal is "exact": its pc is the interrupted instruction.
//! Every other pc is a return address, which may already belong to the next
//! function or line, so lookups use `pc - 1` for those (as Go's traceback
//! does with `tracepc`).
//!
//! The walk stops at an undefined return address (the outermost frame,
//! `_start` or a thread's start routine), a zero pc, a stack pointer that
//! does not move up outside a signal frame (a corrupt stack, or a switch
//! to another stack the CFI does not describe — the runtime then continues
//! a task's walk from its saved registers), an unreadable saved word, or a
//! full output buffer.

use crate::memory::read_word;
use crate::module::module_of;
use crate::regs::{Regs, CALLEE_SAVED, FP, RA, SP};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, EndianSlice, Evaluation, EvaluationResult, EvaluationStorage,
    Expression, Location, NativeEndian, Piece, Pointer, Register, RegisterRule, UnwindContext, UnwindContextStorage,
    UnwindSection, UnwindTableRow, Value,
};

/// Go's `cgoCallers` holds 32 return addresses; a report shows at most
/// this many of a stack's innermost frames (see [`unwind_ends`]).
pub const MAX_FRAMES: usize = 32;

/// One frame of a walk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// The interrupted instruction (when `exact`) or a return address.
    pub pc: usize,
    /// The stack pointer in this frame.
    pub sp: usize,
    /// The frame's CFA — the caller's stack pointer at the call, Go's
    /// `fp=` — or 0 when the walk could not compute it.
    pub fp: usize,
    /// Whether `pc` is the interrupted instruction rather than a return
    /// address.
    pub exact: bool,
}

impl Frame {
    /// The address to look up for this frame's function and line: `pc`
    /// itself when exact, else `pc - 1` (inside the call instruction).
    pub fn lookup_pc(&self) -> usize {
        if self.exact {
            self.pc
        } else {
            self.pc.saturating_sub(1)
        }
    }
}

/// gimli unwind-context storage in fixed arrays: up to 48 register rules
/// per row and 4 remembered rows (`DW_CFA_remember_state` nesting), enough
/// for compiler-generated CFI on both targets; a row needing more fails and
/// the frame-pointer fallback takes over.
struct FixedStorage;

impl<T: gimli::ReaderOffset> UnwindContextStorage<T> for FixedStorage {
    type Rules = [(Register, RegisterRule<T>); 48];
    type Stack = [UnwindTableRow<T, Self>; 4];
}

type Ctx = UnwindContext<usize, FixedStorage>;

type Bytes = EndianSlice<'static, NativeEndian>;

/// gimli expression-evaluation storage in fixed arrays: CFI expressions
/// are a handful of operations producing one value.
struct FixedEval;

impl EvaluationStorage<Bytes> for FixedEval {
    type Stack = [Value; 16];
    type ExpressionStack = [(Bytes, Bytes); 2];
    type Result = [Piece<Bytes>; 1];
}

/// Walks the stack from `start` into `out`. `exact` says whether
/// `start.pc()` is an interrupted instruction (a signal's context) rather
/// than a return address (a saved task context). Returns the number of
/// frames stored and whether the walk was cut short by `out`'s size.
/// Async-signal-safe: no allocation, no lock.
pub fn unwind(start: &Regs, exact: bool, out: &mut [Frame]) -> (usize, bool) {
    let mut n = 0;
    let more = walk(start, exact, &mut |f| {
        if n == out.len() {
            return false;
        }
        out[n] = f;
        n += 1;
        true
    });
    (n, more)
}

/// How many of a long walk's outermost frames [`unwind_ends`] keeps: the
/// bottom of a deep recursion, down to the function that started it and
/// the thread's or task's entry.
pub const BOTTOM_FRAMES: usize = 16;

/// The most frames [`unwind_ends`] steps through looking for the
/// outermost one. A step costs a few microseconds (an FDE lookup and a
/// handful of `process_vm_readv` reads: a walk of 87,000 frames and the
/// whole report took under a second), so this bounds a walk to a few
/// seconds; it holds every
/// frame of the default 16 MiB task stack overflowed by recursive frames
/// of 64 bytes or more.
pub const MAX_WALK: usize = 1 << 18;

/// Both ends of a walk: its first [`MAX_FRAMES`] frames and, when the
/// stack is deeper, its last [`BOTTOM_FRAMES`], with the count of those
/// in between. Fixed-size, to live on a signal stack.
pub struct Ends {
    top: [Frame; MAX_FRAMES],
    n_top: usize,
    /// A ring of the frames after the top: frame `i` (counted from the
    /// first frame after the top) is at `i % BOTTOM_FRAMES`.
    ring: [Frame; BOTTOM_FRAMES],
    after_top: usize,
    cut: bool,
}

impl Ends {
    /// The innermost frames, in walk order.
    pub fn top(&self) -> &[Frame] {
        &self.top[..self.n_top]
    }

    /// How many frames lie between [`Ends::top`] and [`Ends::bottom`].
    pub fn elided(&self) -> usize {
        self.after_top.saturating_sub(BOTTOM_FRAMES)
    }

    /// The outermost frames, in walk order, into `out` (which must hold
    /// [`BOTTOM_FRAMES`]); returns how many.
    pub fn bottom(&self, out: &mut [Frame; BOTTOM_FRAMES]) -> usize {
        let n = self.after_top.min(BOTTOM_FRAMES);
        let first = self.after_top - n;
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.ring[(first + i) % BOTTOM_FRAMES];
        }
        n
    }

    /// Whether the walk gave up after [`MAX_WALK`] frames, so that
    /// [`Ends::bottom`] is not the outermost end of the stack.
    pub fn cut(&self) -> bool {
        self.cut
    }
}

/// Walks the whole stack from `start` (see [`unwind`] for `exact`), up to
/// [`MAX_WALK`] frames, keeping both ends of it; `stop` ends the walk
/// before the first frame it accepts (that frame is not kept).
/// Async-signal-safe: no allocation, no lock.
pub fn unwind_ends(start: &Regs, exact: bool, stop: &mut dyn FnMut(&Frame) -> bool) -> Ends {
    let mut ends = Ends {
        top: [Frame::default(); MAX_FRAMES],
        n_top: 0,
        ring: [Frame::default(); BOTTOM_FRAMES],
        after_top: 0,
        cut: false,
    };
    let mut seen = 0;
    let mut stopped = false;
    let more = walk(start, exact, &mut |f| {
        if stop(&f) {
            stopped = true;
            return false;
        }
        if seen == MAX_WALK {
            return false;
        }
        seen += 1;
        if ends.n_top < MAX_FRAMES {
            ends.top[ends.n_top] = f;
            ends.n_top += 1;
        } else {
            ends.ring[ends.after_top % BOTTOM_FRAMES] = f;
            ends.after_top += 1;
        }
        true
    });
    ends.cut = more && !stopped;
    ends
}

/// Walks the stack from `start`, handing each frame, innermost first, to
/// `visit`, until the outermost frame or until `visit` returns false.
/// Returns whether `visit` ended the walk with a frame still to come.
fn walk(start: &Regs, exact: bool, visit: &mut dyn FnMut(Frame) -> bool) -> bool {
    let mut ctx = Ctx::new_in();
    let mut regs = *start;
    let mut exact = exact;
    let mut first = true;
    loop {
        if regs.pc == 0 && !(exact && first) {
            return false;
        }
        first = false;
        let step = cfi_step(&regs, exact, &mut ctx).or_else(|| null_call_step(&regs, exact)).or_else(|| fp_step(&regs));
        let (next, cfa, signal) = match step {
            Some(Step::Caller { regs, cfa, signal }) => (Some(regs), cfa, signal),
            Some(Step::Outermost(cfa)) => (None, cfa, false),
            None => (None, 0, false),
        };
        if !visit(Frame { pc: regs.pc, sp: regs.sp(), fp: cfa, exact }) {
            return true;
        }
        match next {
            Some(next) if next.sp() > regs.sp() || (signal && next.sp() != regs.sp()) => {
                regs = next;
                exact = signal;
            }
            _ => return false,
        }
    }
}

/// The outcome of one unwinding step. The size difference between the
/// variants is fine: a step lives briefly on the stack, and boxing it
/// would allocate.
#[allow(clippy::large_enum_variant)]
enum Step {
    /// The caller's registers and this frame's CFA; `signal` when this is
    /// a signal frame (the caller may be on another stack, at an exact pc).
    Caller { regs: Regs, cfa: usize, signal: bool },
    /// This is the outermost frame (its return address is undefined).
    Outermost(usize),
}

/// One step by the CFI of the module holding the pc; `None` when there is
/// none or a rule cannot be followed.
fn cfi_step(regs: &Regs, exact: bool, ctx: &mut Ctx) -> Option<Step> {
    let probe = if exact { regs.pc } else { regs.pc.checked_sub(1)? };
    let m = module_of(probe)?;
    if m.eh_frame_hdr == 0 || m.map_end <= m.eh_frame_hdr {
        return None;
    }
    // SAFETY: `_dl_find_object` reported the module's PT_GNU_EH_FRAME
    // segment at `eh_frame_hdr`, inside its mapping that ends at `map_end`.
    // gimli reads only the header and the search-table entries it
    // bisects, which lie in that loaded segment.
    let hdr_bytes = unsafe { core::slice::from_raw_parts(m.eh_frame_hdr as *const u8, m.map_end - m.eh_frame_hdr) };
    let bases = BaseAddresses::default().set_eh_frame_hdr(m.eh_frame_hdr as u64);
    let hdr = EhFrameHdr::new(hdr_bytes, NativeEndian).parse(&bases, core::mem::size_of::<usize>() as u8).ok()?;
    let eh_frame = match hdr.eh_frame_ptr() {
        Pointer::Direct(a) => a as usize,
        Pointer::Indirect(p) => read_word(p as usize)?,
    };
    if eh_frame == 0 || eh_frame >= m.map_end {
        return None;
    }
    // SAFETY: `.eh_frame` of the same loaded module, found through its
    // header; gimli reads only the CIE and FDE the table points it to.
    let eh_bytes = unsafe { core::slice::from_raw_parts(eh_frame as *const u8, m.map_end - eh_frame) };
    let eh = EhFrame::new(eh_bytes, NativeEndian);
    let bases = bases.set_eh_frame(eh_frame as u64);
    let table = hdr.table()?;
    let fde = table.fde_for_address(&eh, &bases, probe as u64, |s, b, o| s.cie_from_offset(b, o)).ok()?;
    let signal = fde.cie().is_signal_trampoline();
    let row = fde.unwind_info_for_address(&eh, &bases, ctx, probe as u64).ok()?;

    let cfa = match row.cfa() {
        CfaRule::RegisterAndOffset { register, offset } => regs.get(register.0)?.wrapping_add_signed(*offset as isize),
        CfaRule::Expression(e) => evaluate(e.get(&eh).ok()?, regs, None)?,
    };
    let mut caller = *regs;
    for &r in CALLEE_SAVED {
        match restore(row.register(Register(r)), r, regs, cfa, &eh) {
            Restored::Value(v) => caller.set(r, v),
            Restored::Same => {}
            Restored::Unknown => caller.clear(r),
        }
    }
    let ra = match restore(row.register(Register(RA)), RA, regs, cfa, &eh) {
        Restored::Value(v) => v,
        // aarch64: the return address is still in lr (a leaf function).
        Restored::Same => match regs.get(RA) {
            Some(v) => v,
            None => return Some(Step::Outermost(cfa)),
        },
        Restored::Unknown => return Some(Step::Outermost(cfa)),
    };
    caller.set(SP, cfa);
    caller.pc = ra;
    Some(Step::Caller { regs: caller, cfa, signal })
}

/// What a register rule gives.
enum Restored {
    Value(usize),
    /// Unchanged from this frame (no rule, or `SameValue`).
    Same,
    /// Undefined, unreadable, or a rule we do not evaluate.
    Unknown,
}

fn restore(rule: Option<RegisterRule<usize>>, reg: u16, regs: &Regs, cfa: usize, eh: &EhFrame<Bytes>) -> Restored {
    let value = |v: Option<usize>| v.map_or(Restored::Unknown, Restored::Value);
    match rule {
        None | Some(RegisterRule::SameValue) => {
            if reg == RA && regs.get(RA).is_none() {
                Restored::Unknown
            } else {
                Restored::Same
            }
        }
        Some(RegisterRule::Offset(off)) => value(read_word(cfa.wrapping_add_signed(off as isize))),
        Some(RegisterRule::ValOffset(off)) => Restored::Value(cfa.wrapping_add_signed(off as isize)),
        Some(RegisterRule::Register(other)) => value(regs.get(other.0)),
        Some(RegisterRule::Expression(e)) => {
            value(e.get(eh).ok().and_then(|e| evaluate(e, regs, Some(cfa))).and_then(read_word))
        }
        Some(RegisterRule::ValExpression(e)) => value(e.get(eh).ok().and_then(|e| evaluate(e, regs, Some(cfa)))),
        Some(_) => Restored::Unknown,
    }
}

/// Evaluates a CFI DWARF expression: registers come from `regs`, memory
/// through `read_word`; a register rule's expression starts with the CFA
/// on the stack (`initial`). Returns the address (or value) it computes.
fn evaluate(expr: Expression<Bytes>, regs: &Regs, initial: Option<usize>) -> Option<usize> {
    let encoding = gimli::Encoding {
        address_size: core::mem::size_of::<usize>() as u8,
        format: gimli::Format::Dwarf32,
        version: 4,
    };
    let mut eval = Evaluation::<Bytes, FixedEval>::new_in(expr.0, encoding);
    eval.set_max_iterations(64);
    if let Some(v) = initial {
        eval.set_initial_value(v as u64);
    }
    let mut state = eval.evaluate().ok()?;
    loop {
        state = match state {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresRegister { register, .. } => {
                eval.resume_with_register(Value::Generic(regs.get(register.0)? as u64)).ok()?
            }
            EvaluationResult::RequiresMemory { address, size, .. }
                if size as usize == core::mem::size_of::<usize>() =>
            {
                eval.resume_with_memory(Value::Generic(read_word(address as usize)? as u64)).ok()?
            }
            _ => return None,
        };
    }
    match eval.as_result() {
        [Piece { location: Location::Address { address }, .. }] => Some(*address as usize),
        [Piece { location: Location::Value { value }, .. }] => value.to_u64(!0).ok().map(|v| v as usize),
        _ => None,
    }
}

/// A signal at pc 0 (or any address outside every module) is most often a
/// call through a null or wild function pointer: on x86_64 the call pushed
/// the return address at `[sp]`, so the caller is one word up.
fn null_call_step(regs: &Regs, exact: bool) -> Option<Step> {
    if !exact || !cfg!(target_arch = "x86_64") || module_of(regs.pc).is_some() {
        return None;
    }
    let ra = read_word(regs.sp())?;
    module_of(ra)?;
    let mut caller = *regs;
    caller.set(SP, regs.sp() + core::mem::size_of::<usize>());
    caller.pc = ra;
    Some(Step::Caller { regs: caller, cfa: regs.sp() + core::mem::size_of::<usize>(), signal: false })
}

/// One step along the frame-pointer chain: `[fp]` is the caller's frame
/// pointer, `[fp + 8]` the return address, the caller's stack pointer is
/// `fp + 16`. Same layout on x86_64 (`push rbp; mov rbp, rsp`) and aarch64
/// (`stp x29, x30, [sp, #-16]!; mov x29, sp`).
fn fp_step(regs: &Regs) -> Option<Step> {
    let fp = regs.get(FP)?;
    if fp == 0 || fp < regs.sp() {
        return None;
    }
    let word = core::mem::size_of::<usize>();
    let saved_fp = read_word(fp)?;
    let ra = read_word(fp + word)?;
    let caller = Regs::new(ra, fp + 2 * word, saved_fp);
    Some(Step::Caller { regs: caller, cfa: fp + 2 * word, signal: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn walk_here(out: &mut [Frame]) -> (usize, bool) {
        crate::init();
        let mut uc = core::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
        // SAFETY: `uc` is writable storage for a ucontext_t.
        assert_eq!(unsafe { libc::getcontext(uc.as_mut_ptr()) }, 0);
        // SAFETY: getcontext filled `uc`.
        let regs = unsafe { Regs::from_ucontext(uc.as_ptr().cast()) };
        unwind(&regs, true, out)
    }

    #[test]
    fn walks_out_of_a_rust_function_by_cfi() {
        let mut frames = [Frame::default(); MAX_FRAMES];
        let (n, _) = walk_here(&mut frames);
        assert!(n >= 3, "only {n} frames: {:x?}", &frames[..n]);
        // Stack pointers grow toward the caller, and every pc is in a module.
        for w in frames[..n].windows(2) {
            assert!(w[1].sp > w[0].sp, "{:x?}", &frames[..n]);
        }
        for f in &frames[1..n] {
            assert!(module_of(f.pc - 1).is_some(), "pc {:#x} in no module", f.pc);
        }
        // This test function is one of the callers.
        let me = walks_out_of_a_rust_function_by_cfi as *const () as usize;
        assert!(frames[..n].iter().any(|f| f.pc > me && f.pc < me + 4096), "{:x?} vs {me:#x}", &frames[..n]);
    }

    // A stack switch described the way the runtime's `asmcgocall` does it:
    // `switch_and_call(f, top)` saves its entry rsp at the top of another
    // stack, moves there, and calls `f`. Its CFI gives the CFA as a DWARF
    // expression reading that saved word (`CFA = *(rsp) + 8`), and marks
    // the frame as a signal frame so the walk may jump between stacks.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.cgocheck_tb_switch_and_call,\"ax\",@progbits",
        ".globl cgocheck_tb_switch_and_call",
        ".type cgocheck_tb_switch_and_call,@function",
        "cgocheck_tb_switch_and_call:",
        ".cfi_startproc",
        ".cfi_signal_frame",
        // Save the entry rsp (pointing at our return address) on the new stack.
        "mov [rsi - 16], rsp",
        // Move to the new stack; the saved word is now at [rsp].
        "lea rsp, [rsi - 16]",
        // DW_CFA_def_cfa_expression, 5 bytes: DW_OP_breg7 (rsp) 0,
        // DW_OP_deref, DW_OP_plus_uconst 8: CFA = *(rsp) + 8.
        ".cfi_escape 0x0f, 0x05, 0x77, 0x00, 0x06, 0x23, 0x08",
        // Call the function on the new stack (rsp is 16-byte aligned).
        "call rdi",
        // Back to the entry rsp; the CFA is the plain rsp + 8 again.
        "mov rsp, [rsp]",
        ".cfi_def_cfa rsp, 8",
        // Return to the caller on the original stack.
        "ret",
        ".cfi_endproc",
        ".size cgocheck_tb_switch_and_call, . - cgocheck_tb_switch_and_call",
        ".popsection",
    );

    #[cfg(target_arch = "x86_64")]
    extern "C" {
        fn cgocheck_tb_switch_and_call(f: extern "C" fn(), top: *mut u8);
    }

    #[cfg(target_arch = "x86_64")]
    static SWITCHED_WALK: std::sync::Mutex<Vec<Frame>> = std::sync::Mutex::new(Vec::new());

    #[cfg(target_arch = "x86_64")]
    extern "C" fn walk_on_other_stack() {
        let mut frames = [Frame::default(); MAX_FRAMES];
        let (n, _) = walk_here(&mut frames);
        SWITCHED_WALK.lock().unwrap().extend_from_slice(&frames[..n]);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn a_cfa_expression_and_a_signal_frame_lead_across_a_stack_switch() {
        let mut stack = vec![0u8; 64 * 1024];
        // SAFETY: the top of a live, writable buffer, aligned down to 16.
        let top = unsafe { stack.as_mut_ptr().add(stack.len()) }.map_addr(|a| a & !15);
        // SAFETY: the asm calls `walk_on_other_stack` on `stack` and comes back.
        unsafe { cgocheck_tb_switch_and_call(walk_on_other_stack, top) };
        let frames = std::mem::take(&mut *SWITCHED_WALK.lock().unwrap());
        let on_new = |f: &Frame| (stack.as_ptr() as usize..top as usize).contains(&f.sp);
        // The walk starts on the new stack and continues on this thread's.
        assert!(on_new(&frames[0]), "{frames:x?}");
        let back = frames.iter().position(|f| !on_new(f)).expect("the walk crossed back");
        // The caller's pc is exact after a signal frame.
        assert!(frames[back].exact, "{frames:x?}");
        let me = a_cfa_expression_and_a_signal_frame_lead_across_a_stack_switch as *const () as usize;
        assert!(frames[back..].iter().any(|f| f.pc > me && f.pc < me + 4096), "{frames:x?} vs {me:#x}");
    }

    /// Recurses `depth` frames, then walks both ends of the stack from
    /// the innermost one, up to the outermost call of the recursion (what
    /// is below it depends on the test harness). Returns the ends and the
    /// number of frames walked.
    #[inline(never)]
    fn ends_below(depth: usize, stop_at: Option<usize>) -> (Ends, usize) {
        // The outermost call's local: its own frame's sp is below it, its
        // caller's above.
        let here = 0u8;
        let stop_at = stop_at.unwrap_or(core::hint::black_box(&here) as *const u8 as usize);
        if depth > 0 {
            let r = ends_below(depth - 1, Some(stop_at));
            return core::hint::black_box(r);
        }
        crate::init();
        let mut uc = core::mem::MaybeUninit::<libc::ucontext_t>::zeroed();
        // SAFETY: `uc` is writable storage for a ucontext_t.
        assert_eq!(unsafe { libc::getcontext(uc.as_mut_ptr()) }, 0);
        // SAFETY: getcontext filled `uc`.
        let regs = unsafe { Regs::from_ucontext(uc.as_ptr().cast()) };
        let ends = unwind_ends(&regs, true, &mut |f: &Frame| f.sp >= stop_at);
        // The same walk, counted frame by frame.
        let mut all = 0;
        walk(&regs, true, &mut |f| {
            all += (f.sp < stop_at) as usize;
            f.sp < stop_at
        });
        (ends, all)
    }

    #[test]
    fn both_ends_of_a_deep_stack_are_kept_and_the_middle_counted() {
        let (ends, all) = ends_below(200, None);
        let me = ends_below as *const () as usize;
        let in_me = |f: &Frame| f.pc > me && f.pc < me + 4096;
        assert!(!ends.cut());
        // The 201 calls of ends_below (getcontext's context is in the last).
        assert_eq!(all, 201);
        assert_eq!(ends.top().len() + ends.elided() + BOTTOM_FRAMES, all);
        assert_eq!(ends.top().len(), MAX_FRAMES);
        assert!(ends.top().iter().all(in_me), "{:x?}", ends.top());
        let mut bottom = [Frame::default(); BOTTOM_FRAMES];
        assert_eq!(ends.bottom(&mut bottom), BOTTOM_FRAMES);
        assert!(bottom.iter().all(in_me), "{bottom:x?}");
        assert!(bottom.windows(2).all(|w| w[1].sp > w[0].sp) && bottom[0].sp > ends.top()[MAX_FRAMES - 1].sp);
    }

    #[test]
    fn a_small_buffer_reports_more() {
        let mut frames = [Frame::default(); 2];
        let (n, more) = walk_here(&mut frames);
        assert_eq!((n, more), (2, true));
    }

    #[test]
    fn a_bad_frame_pointer_ends_the_walk_without_faulting() {
        // pc in no module, sp and fp pointing at unmapped memory.
        let regs = Regs::new(0x10, 0x8, 0x18);
        let mut frames = [Frame::default(); 4];
        let (n, more) = unwind(&regs, false, &mut frames);
        assert_eq!((n, more), (1, false));
    }
}

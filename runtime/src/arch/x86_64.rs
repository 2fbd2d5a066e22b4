//! Stack switching on x86_64 (System V ABI): the only assembly in the
//! runtime.
//!
//! ## Two kinds of stack
//!
//! - A **task stack** (Go's goroutine stack) is carved from the managed heap
//!   (`heap().alloc_stack`), has a guard page below it, and runs managed
//!   code only.
//! - The **g0 stack** of an M is the OS thread's own stack. The scheduler
//!   runs there, and so does every C function a task calls: C expects a
//!   large, OS-provided stack, and it must not be able to tell whether a task
//!   stack is small.
//!
//! The M records one address on its g0 stack, `g0_sp` (Go's
//! `m.g0.sched.sp`): everything *below* it is free scratch space. `mcall`
//! and `asmcgocall` both start their g0 work exactly there, so g0 never
//! keeps frames between uses: each switch to g0 starts over at `g0_sp`.
//! This is the rule of Go's 2011 `mcall` change (see `shared/seeds/004`):
//! the scheduler is never *resumed* in an old frame, it is *called* afresh,
//! so it cannot overwrite frames that live below an old frame. The callback
//! path (C → managed on this M, `callback.rs`) relies on it: it lowers
//! `g0_sp` below the C frames for the duration of the callback and restores
//! it afterwards, and every g0 use in between lands below those C frames.
//!
//! ## A suspended context
//!
//! A task that is not running (and the thread that entered [`g0_enter`])
//! is one saved stack pointer. The six callee-saved registers and the return
//! address are on its own stack:
//!
//! ```text
//!             +------------------+  higher addresses
//!             | return address   |  sp + 48   (where `gogo` resumes)
//!             | rbp              |  sp + 40
//!             | rbx              |  sp + 32
//!             | r12              |  sp + 24
//!             | r13              |  sp + 16
//!             | r14              |  sp + 8
//!   saved sp→ | r15              |  sp + 0
//!             +------------------+
//! ```
//!
//! Caller-saved registers need no saving: every switch is a function call.
//! MXCSR and the x87 control word are not switched; managed code does not
//! change them (a C function that does must restore them, as the ABI
//! requires of it anyway).
//!
//! ## Unwinding (CFI)
//!
//! Debuggers, `backtrace()`, panics and the crash reports walk stacks with
//! the DWARF call frame information (CFI) of each function. Rustc emits no
//! CFI for a naked function, so each one below writes its own, line by line:
//!
//! - a task's first frame (`task_bootstrap`) and the g0 side of `mcall` and
//!   `g0_enter` say `.cfi_undefined rip`: "there is no caller", so a walk
//!   ends there cleanly instead of wandering into garbage;
//! - `asmcgocall` runs C on g0 and tells the unwinder, with a DWARF
//!   expression, where the task's stack pointer was saved, so a walk from C
//!   continues into the managed caller on the task stack (diagram at
//!   [`asmcgocall`]);
//! - `cgocallback_switch` does the reverse for a callback from C: managed
//!   frames on the task stack unwind into the C frames on g0 (diagram
//!   there); `cgocall_resume` ends a panicking callback by returning from
//!   the enclosing `asmcgocall` without running the C frames between.

use crate::sched::m::M;
use core::arch::naked_asm;
use core::ffi::c_void;

/// A function that runs on the g0 stack after a switch and never returns:
/// it ends by resuming some context with [`gogo`].
pub(crate) type G0Fn = unsafe extern "C" fn(arg: *mut c_void) -> !;

/// Bytes of a suspended context (six registers and a return address).
pub(crate) const CONTEXT_SIZE: usize = 56;

/// Registers of a suspended or syscall-state task, as a stack walker needs
/// them: the stack pointer of the frame that will continue, its frame
/// pointer and its program counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SavedRegs {
    /// Stack pointer after the switch function returns.
    pub sp: usize,
    /// Program counter the task resumes at (a return address).
    pub pc: usize,
    /// Frame pointer of the resuming frame.
    pub bp: usize,
}

/// Registers of a task suspended by [`mcall`] (or new, not started), read
/// from its saved stack pointer.
///
/// # Safety
/// `sp` must be a suspended context's saved stack pointer whose stack is
/// still mapped.
pub(crate) unsafe fn suspended_regs(sp: usize) -> SavedRegs {
    let word = |off: usize| {
        // SAFETY: the caller promises a context lies at sp..sp + 56.
        unsafe { core::ptr::read_volatile((sp + off) as *const usize) }
    };
    SavedRegs { sp: sp + CONTEXT_SIZE, pc: word(48), bp: word(40) }
}

/// Registers of a task inside [`asmcgocall`], read from the task stack
/// pointer it saved: `sp` points at the pushed `rbp`, above it is the return
/// address into `cgocall`.
///
/// # Safety
/// `sp` must be the value `asmcgocall` stored for a call still in progress.
pub(crate) unsafe fn syscall_regs(sp: usize) -> SavedRegs {
    let word = |off: usize| {
        // SAFETY: the caller promises asmcgocall's two words are at sp.
        unsafe { core::ptr::read_volatile((sp + off) as *const usize) }
    };
    SavedRegs { sp: sp + 16, pc: word(8), bp: word(0) }
}

/// Turns the current thread into an M: saves the caller's context on this
/// stack, stores its stack pointer at `*exit_sp`, records the 16-byte
/// aligned address just below it at `*g0_sp`, and calls `f(arg)` there.
///
/// `f` never returns; `g0_enter` returns when some g0 code later calls
/// `gogo(*exit_sp)` on this thread (the M leaves: `run` returns, or a worker
/// thread ends).
///
/// ```text
///   caller's frame (run(), or the worker thread's entry)
///   +----------------------+
///   | return address       |
///   | rbp rbx r12 r13 r14  |
///   | r15                  | <- *exit_sp
///   | (alignment, 0 or 8)  |
///   +----------------------+ <- *g0_sp: everything below is g0 scratch
///   | f's frames ...       |
/// ```
///
/// # Safety
/// `exit_sp` and `g0_sp` must be valid for writes; `f(arg)` must end with
/// `gogo` of a valid context and resume `*exit_sp` only on this thread.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn g0_enter(arg: *mut c_void, f: G0Fn, exit_sp: *mut usize, g0_sp: *mut usize) {
    // Arguments: rdi = arg, rsi = f, rdx = exit_sp, rcx = g0_sp.
    naked_asm!(
        ".cfi_startproc",
        // Save the caller's callee-saved registers: together with our return
        // address they form a suspended context (layout in the file comment).
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -24",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r12, -32",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r13, -40",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r14, -48",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r15, -56",
        // *exit_sp = the context: gogo(*exit_sp) returns from g0_enter.
        "mov [rdx], rsp",
        // g0_sp = rsp rounded down to 16 bytes, so that the `call` below and
        // every later g0 entry (mcall, asmcgocall) meet the ABI's alignment.
        "mov rax, rsp",
        "and rax, -16",
        "mov [rcx], rax",
        "mov rsp, rax",
        // From here on this frame is the bottom of the g0 stack for the
        // unwinder: g0 code is never unwound into the caller (it leaves by
        // gogo, not by returning).
        ".cfi_undefined rip",
        // End the frame-pointer chain too.
        "xor ebp, ebp",
        // f(arg); rdi still holds arg.
        "call rsi",
        // f never returns.
        "ud2",
        ".cfi_endproc",
    )
}

/// Saves the running task's context on its own stack, stores the stack
/// pointer at `*save_sp`, switches to the g0 stack at `g0_sp` and calls
/// `f(arg)` there (Go's `mcall`). Returns when some M later resumes the
/// saved context with `gogo(*save_sp)`, possibly on another thread.
///
/// ```text
///   task stack                         g0 stack
///   | caller of mcall  |               +------------------+ <- g0_sp
///   | return address   |               | return address   |  (into mcall's
///   | rbp ... r15      | <- *save_sp   | f's frames ...   |   ud2; f never
///   +------------------+               |                  |   returns)
/// ```
///
/// # Safety
/// Must run on a task stack of the current M; `g0_sp` must be that M's
/// 16-byte aligned g0 stack pointer with nothing live below it; `f(arg)`
/// must never return, and whoever resumes `*save_sp` must do so once.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn mcall(arg: *mut c_void, f: G0Fn, save_sp: *mut usize, g0_sp: usize) {
    // Arguments: rdi = arg, rsi = f, rdx = save_sp, rcx = g0_sp.
    naked_asm!(
        ".cfi_startproc",
        // Push the callee-saved registers: the suspended-context layout.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        "push rbx",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbx, -24",
        "push r12",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r12, -32",
        "push r13",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r13, -40",
        "push r14",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r14, -48",
        "push r15",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset r15, -56",
        // Publish the context. Before this store completes nobody may resume
        // the task; the caller of mcall orders that (f runs after it).
        "mov [rdx], rsp",
        // Switch to the g0 stack.
        "mov rsp, rcx",
        // g0 frames have no caller to unwind into.
        ".cfi_undefined rip",
        "xor ebp, ebp",
        // f(arg); rdi still holds arg.
        "call rsi",
        // f never returns.
        "ud2",
        ".cfi_endproc",
    )
}

/// Resumes a suspended context: loads its stack pointer, pops the six
/// callee-saved registers and returns to its return address (Go's `gogo`).
///
/// # Safety
/// `sp` must be a suspended context nobody else resumes, and whatever ran on
/// the current stack must be finished with it (its frames are abandoned).
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn gogo(sp: usize) -> ! {
    // Argument: rdi = sp.
    naked_asm!(
        ".cfi_startproc",
        // Switch to the saved stack.
        "mov rsp, rdi",
        // Describe the context for the unwinder while it is popped: the
        // frame that continues has its CFA just above the return address.
        ".cfi_def_cfa rsp, 56",
        ".cfi_offset rbp, -16",
        ".cfi_offset rbx, -24",
        ".cfi_offset r12, -32",
        ".cfi_offset r13, -40",
        ".cfi_offset r14, -48",
        ".cfi_offset r15, -56",
        // Restore the callee-saved registers in reverse order of the pushes.
        "pop r15",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r15",
        "pop r14",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r14",
        "pop r13",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r13",
        "pop r12",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore r12",
        "pop rbx",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbx",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        // Return into the resumed code: after its call to mcall (or
        // g0_enter), or into task_bootstrap for a new task.
        "ret",
        ".cfi_endproc",
    )
}

/// The first code a new task runs, reached by `gogo`'s `ret` from the
/// context [`init_task_stack`] builds. It calls `entry(task)` with the two
/// values that context put in r13 and r12; `entry` never returns (a task
/// ends with an `mcall` to the scheduler).
///
/// It is the outermost frame of every task stack: `.cfi_undefined rip` tells
/// unwinders (and panics) that the walk ends here, and rbp is 0 for
/// frame-pointer walkers.
#[unsafe(naked)]
unsafe extern "C" fn task_bootstrap() {
    naked_asm!(
        ".cfi_startproc",
        // No caller: the bottom of the task stack.
        ".cfi_undefined rip",
        // rsp is 16-byte aligned here (init_task_stack arranged it), so the
        // call below gives entry the alignment the ABI promises.
        // First argument: the task, from r12.
        "mov rdi, r12",
        // entry(task), from r13.
        "call r13",
        // entry never returns.
        "ud2",
        ".cfi_endproc",
    )
}

/// Builds the first context of a task stack whose highest address is `hi`:
/// resuming it with `gogo` runs `entry(task)` on that stack. Returns the
/// context's stack pointer.
///
/// ```text
///   hi      +------------------+
///           | 0, 0             |  a null frame record: FP walks end here
///   hi - 16 +------------------+
///           | task_bootstrap   |  return address popped by gogo's `ret`
///           | rbp = 0          |
///           | rbx = 0          |
///           | r12 = task       |
///           | r13 = entry      |
///           | r14 = 0          |
///   hi - 72 | r15 = 0          |  <- returned sp
///           +------------------+
/// ```
///
/// # Safety
/// `hi` must be 16-byte aligned and the 72 bytes below it writable memory of
/// a stack nothing runs on.
pub(crate) unsafe fn init_task_stack(hi: usize, task: *const c_void, entry: G0Fn) -> usize {
    debug_assert!(hi.is_multiple_of(16));
    let sp = hi - 72;
    let words: [usize; 9] = [
        0,                                    // r15
        0,                                    // r14
        entry as usize,                       // r13
        task as usize,                        // r12
        0,                                    // rbx
        0,                                    // rbp
        task_bootstrap as *const () as usize, // return address
        0,                                    // null frame record: saved rbp
        0,                                    // null frame record: return address
    ];
    // SAFETY: the caller promises hi - 72 .. hi is writable and unused;
    // `sp` is 8-byte aligned.
    unsafe { core::ptr::copy_nonoverlapping(words.as_ptr(), sp as *mut usize, words.len()) };
    // After gogo pops six registers and the return address, rsp is
    // hi - 16: 16-byte aligned at task_bootstrap, as it requires.
    sp
}

/// Calls the C function `f` on the g0 stack of the current M with its
/// integer arguments in the ABI's registers and returns its integer result
/// on the task stack (Go's `asmcgocall`), doing the owner's two halves of
/// the crossing protocol (`cgocall.rs`) exactly where the collector needs
/// them: the M says "in C" only once everything the collector scans is in
/// place, and on the way back it checks that its P is still its own before
/// anything the collector scans is written.
///
/// A convention of its own, for the `asm!` of `cgocall::call_c` (inlined
/// into every declared function's wrapper): the C function's arguments
/// arrive in `rdi`, `rsi`, `rdx`, `rcx` and `r8` (as the C function wants
/// them: they are passed through untouched; `r9` is not passed), `f` in
/// `r11`, and in `r9` the call's `NoCallback` declaration or null. It
/// returns the C function's `rax` in `rax`, and in `rdx` 0 — or 1 when a
/// callback of the call panicked and [`cgocall_resume`] returned here
/// instead, with the panic's payload in `rax`, or 2 when the thread is not
/// running a task (no M, or an M on its scheduler stack), having done
/// nothing. Every register the C ABI lets a callee change may change, and
/// `r12`–`r15` too: the caller keeps nothing live in them across the call,
/// so that the only callee-saved registers whose values the collector must
/// find in the saved area are `rbx` and `rbp`. `rbx`, `rbp` and the stack
/// pointer are kept. A call through a trampoline (arguments that do not
/// travel in integer registers) is the same call with the trampoline as
/// `f` and the frame's address in `rdi`.
///
/// It finds the current M itself, in the thread-local `cgocheck_current_m`
/// (`sched/m.rs`, by its TLS descriptor): read here, at the call, on the
/// thread that makes it. `m.g0_sp` (16-byte aligned) is where the g0
/// frames start; `m.cstate`, `m.fence`, `m.trap` and `m.trap_seen` are the
/// protocol's words. The C-call bookkeeping is here too: first `m.incgo`
/// (from here the preemption signal leaves the task alone, so no
/// scheduling turn runs a nested call between here and C), then
/// `m.nocallback` recorded, the caller's `rbp` and `rbx` pushed (and 32
/// bytes where `r12`–`r15` would be, keeping the saved area's size), the
/// task's stack pointer stored in its syscall SP field (where its managed
/// frames continue, for crash reports and the collector); then `m.cstate`
/// becomes 1, one plain store: from then on a rare side may stop the P
/// (`STOP_SYSCALL(m)`) and the collector scan the task's stack from
/// `syscall SP - 40`, with every register the managed caller keeps live in
/// that range.
///
/// ```text
///   task stack                                g0 stack
///   |                     |                   +---------------------+ <- m.g0_sp
///   | caller's frame      |                   | return address (2:) |  \ a frame record:
///   | return to caller    |<---.              | task sp  ---------------> rbp chain and
///   | saved rbp           |    |  syscall SP  +---------------------+  / CFA slot
///   +---------------------+ <--+--- task sp   | f's frame (C)       | <- rbp points at the
///   | rbx, 32 bytes unused|  scanned by the   | ... C frames ...    |    record above
///   +---------------------+  collector; the
///   | (8 bytes unused)    |  resume point of
///   +---------------------+  a callback panic
///   | exit hook's frames  |  only on the slow path
/// ```
///
/// Across C, three callee-saved registers carry what the way back needs
/// (C preserves them): `r14` the task sp, `r12` the M, `r13` the syscall
/// SP field — registers the caller keeps nothing in. `rbx` is saved for
/// the collector and otherwise left alone.
///
/// Back from `f`, still without writing the task stack: `m.cstate` goes
/// back to 0 (a plain store; with `m.fence`, an `xchg`), then `m.trap` is
/// compared with `m.trap_seen`. Equal: no rare side came near the P since
/// the last slow path, it is still `RUNNING(m)`; the syscall SP,
/// `m.incgo` and `m.nocallback` go back to 0, `m.ncgocall` counts the
/// call, and the function returns — no locked instruction on the whole
/// path. Different: it calls `cgocall::exitsyscall_hook(m, result)` with
/// the stack pointer 48 bytes below the syscall SP: the hook's frames (the
/// compare-and-swap to the next generation, the wait for a restart, or the
/// scheduler's slow path) lie below the saved registers, which stay intact
/// for the collector; then the same bookkeeping and return, with the
/// result the hook hands back.
///
/// A callback (`crate::callback`) that panics while this call is in
/// progress abandons the C frames and returns through [`cgocall_resume`]
/// instead, which leaves C through the hook and returns the panic's
/// payload from here, with `rbx` restored from below the task sp.
///
/// Unwinding from C: the C frames' CFI leads to the return address `2:` in
/// this function, with rsp pointing at the record. The CFI there is
/// `CFA = *(rsp) + 16` (a DWARF expression read from the g0 stack), with the
/// return address at CFA - 8 and the caller's rbp at CFA - 16: exactly the
/// two words pushed on the task stack. The walk continues in the caller on
/// the task stack, then through the managed frames down to the task's
/// `task_bootstrap`. Frame-pointer walkers follow the same path through the
/// record (`rbp` → record → task sp → saved rbp). From the exit hook the
/// CFA is rsp + 64 (the record is 48 bytes above), then as after a return.
///
/// The function is marked as a signal frame (`.cfi_signal_frame`, like
/// corosensei's trampolines): GDB refuses a walk whose frame addresses do not
/// grow from callee to caller unless a signal frame sits between, and a task
/// stack may lie below or above the g0 stack. The one side effect is that
/// unwinders look up the caller's return address as is, not minus one, so a
/// call to `asmcgocall` must not be the last instruction of its caller (it
/// never is: the caller tests `rdx`).
///
/// # Safety
/// Called only by `cgocall::call_c`'s `asm!`, with the registers above, on
/// a task stack of the current M, which holds its P, with nothing live on
/// g0 below `m.g0_sp`; `f` must be safe to call with those arguments;
/// `r9` null or a `NoCallback` that lives for ever.
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn asmcgocall() {
    naked_asm!(
        ".cfi_startproc",
        // See above: lets GDB follow the switch between stacks.
        ".cfi_signal_frame",
        // r10 = the current M, from the thread-local by its TLS descriptor
        // (the descriptor's function returns the offset from the thread
        // pointer in rax and changes no other register; in an executable
        // the linker makes the pair a constant).
        "lea rax, [rip + {tls}@TLSDESC]",
        "call qword ptr [rax + {tls}@TLSCALL]",
        "mov r10, qword ptr fs:[rax]",
        "test r10, r10",
        "jz 7f",
        // rax = its task's syscall SP field.
        "mov rax, [r10 + {m_curg}]",
        "test rax, rax",
        "jnz 9f",
        "7:",
        // Not running a task: nothing done, rdx = NOT_IN_TASK.
        "mov edx, {not_in_task}",
        "ret",
        "9:",
        "add rax, {g_syscall_sp}",
        // In C for the preemption signal from here on (it declines a task
        // whose M is incgo): no scheduling turn may run a nested call of
        // this task's between here and C, whose exit would clear the
        // syscall SP and nocallback this call is about to set.
        "mov byte ptr [r10 + {m_incgo}], 1",
        // The call's nocallback declaration, if it has one (null outside
        // C otherwise: the way back clears it).
        "test r9, r9",
        "jz 8f",
        "mov [r10 + {m_nocallback}], r9",
        "8:",
        // A frame record on the task stack: {caller's rbp, return address}.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        // rbp = the task sp; the CFA is now rbp + 16 while rsp moves.
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        // The caller's rbx, below the record: what the collector scans of
        // the callee-saved registers while the P is stopped in C (rbp is
        // in the record; r12-r15 hold nothing of the caller's), and with
        // the 32 bytes below it, the resume point of a callback panic
        // (`cgocall_resume`). rbx itself is left alone.
        "push rbx",
        ".cfi_offset rbx, -24",
        // The g0 stack pointer, loaded early: its latency hides behind the
        // stores.
        "mov r14, [r10 + {m_g0_sp}]",
        "sub rsp, 32",
        // The syscall SP = task sp (the record, not the saved area).
        "mov [rax], rbp",
        // m and the syscall SP field across C (and the hook) in r12 and
        // r13.
        "mov r12, r10",
        "mov r13, rax",
        // The owner's entry: m.cstate = 1, one plain store. A store is a
        // release on x86: a rare side that reads cstate 1 (after its
        // barrier) sees the stores above too.
        "mov byte ptr [r10 + {m_cstate}], 1",
        // Switch to the g0 stack at m.g0_sp (CFA still rbp + 16); r14
        // keeps the task sp for the way back.
        "mov rsp, r14",
        "mov r14, rbp",
        // Build the g0 frame record, upper word first: the address f returns
        // to, so FP walkers name this function...
        "lea r10, [rip + 2f]",
        "push r10",
        // ...then the task sp: the record's link and the slot the unwinder
        // reads.
        "push rbp",
        // From here until we leave g0: CFA = *(rsp + 0) + 16.
        //   0x0f       DW_CFA_def_cfa_expression
        //   5          length of the expression in bytes
        //   0x77 0x00  DW_OP_breg7 (rsp) + 0
        //   0x06       DW_OP_deref
        //   0x23 0x10  DW_OP_plus_uconst 16
        // The rbp and rip rules (CFA - 16, CFA - 8) still hold.
        ".cfi_escape 0x0f, 5, 0x77, 0x00, 0x06, 0x23, 0x10",
        // rbp points at the record: the frame-pointer chain of the C code
        // continues into the task stack.
        "mov rbp, rsp",
        // rsp is 16-byte aligned (g0_sp is, and we pushed two words): the
        // ABI's alignment at a call. f(rdi, rsi, rdx, rcx, r8), its
        // arguments untouched since our caller set them.
        "call r11",
        "2:",
        // rsp points at the record again (f popped its return address);
        // rax holds f's result. Back to the task stack (r14, kept by C);
        // m and the syscall SP field are in r12 and r13.
        "mov rsp, r14",
        ".cfi_def_cfa rsp, 16",
        // The owner's exit, step 1: m.cstate = 0. Nothing on the task
        // stack has been written since C returned.
        "cmp byte ptr [r12 + {m_fence}], 0",
        "jne 4f",
        // A plain store; the rare side's membarrier orders it against the
        // load below.
        "mov byte ptr [r12 + {m_cstate}], 0",
        "5:",
        // Step 2: m.trap against m.trap_seen.
        "mov rcx, [r12 + {m_trap}]",
        "cmp rcx, [r12 + {m_trap_seen}]",
        // Different: a rare side may have taken or stopped the P.
        "jne 3f",
        "6:",
        // exitsyscall's bookkeeping: no syscall SP, out of C (the P is
        // ours: from here the preemption signal may interrupt the task).
        "mov qword ptr [r13], 0",
        "mov byte ptr [r12 + {m_incgo}], 0",
        // One more call made (the monitor's tick, the statistics): counted
        // on the way out, where the store does not delay the call.
        "inc qword ptr [r12 + {m_ncgocall}]",
        // No `nocallback` declaration outside C.
        "mov qword ptr [r12 + {m_nocallback}], 0",
        // Returned.
        "xor edx, edx",
        // Restore the caller's rbp from the task-stack record.
        ".cfi_remember_state",
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        // Back to the caller with f's result.
        "ret",
        "4:",
        ".cfi_restore_state",
        // No membarrier (m.fence): the store is an xchg, which is a full
        // fence as well.
        "xor ecx, ecx",
        "xchg byte ptr [r12 + {m_cstate}], cl",
        "jmp 5b",
        "3:",
        // Below the saved area, 16-byte aligned (the record is).
        // (Absolute offsets from here: the assembler's running offset is
        // not rewound by .cfi_restore_state, so an adjustment would count
        // from the popped state's 8 and misplace the CFA.)
        "lea rsp, [rsp - 48]",
        ".cfi_def_cfa_offset 64",
        // m and the syscall SP field survive the hook in r12 and r13,
        // which it preserves. exitsyscall_hook(m, result): takes the P back
        // (or waits out a stop of the world first), or takes the slow path;
        // returns its second argument.
        "mov rdi, r12",
        "mov rsi, rax",
        "call {hook}",
        // Back at the record; rax = f's result.
        "lea rsp, [rsp + 48]",
        ".cfi_def_cfa_offset 16",
        "jmp 6b",
        ".cfi_endproc",
        tls = sym crate::sched::m::cgocheck_current_m,
        not_in_task = const crate::cgocall::NOT_IN_TASK,
        m_curg = const core::mem::offset_of!(M, curg),
        g_syscall_sp = const core::mem::offset_of!(crate::sched::task::G, syscall_sp),
        m_ncgocall = const core::mem::offset_of!(M, ncgocall),
        m_incgo = const core::mem::offset_of!(M, incgo),
        m_nocallback = const core::mem::offset_of!(M, nocallback),
        m_cstate = const core::mem::offset_of!(M, cstate),
        m_fence = const core::mem::offset_of!(M, fence),
        m_trap = const core::mem::offset_of!(M, trap),
        m_trap_seen = const core::mem::offset_of!(M, trap_seen),
        m_g0_sp = const core::mem::offset_of!(M, g0_sp),
        hook = sym crate::cgocall::exitsyscall_hook,
    )
}

/// Bytes `asmcgocall` keeps on the task stack below the task's syscall SP:
/// the caller's `rbx` and 32 bytes, the resume point of a callback panic.
/// A callback's frames start below them.
pub(crate) const CGOCALL_RESUME_SIZE: usize = 40;

/// Ends a callback that panicked: abandons every frame on both stacks below
/// the C call whose task syscall SP is `task_sp` (the callback's managed
/// frames on the task stack, the C frames and the callback's entry on g0)
/// and returns from that call's [`asmcgocall`] into its caller with the
/// panic's `payload` (`rax`, and `rdx` = 1), as if the C function had
/// returned — including
/// `asmcgocall`'s exit, taken here always on its slow path (a panic is
/// rare): `cgocall::exitsyscall_hook(m, payload)`, below the saved
/// registers, leaves C and takes the P back before anything at or above
/// `task_sp - 40` is written; then `asmcgocall`'s exit bookkeeping.
///
/// ```text
///   task stack at a C call's syscall SP (what asmcgocall pushed)
///   | return into caller   |  task_sp + 8
///   | caller's rbp         |  task_sp        <- syscall SP
///   | rbx                  |  task_sp - 8
///   | (32 bytes unused)    |  task_sp - 40
///   | (unused)             |
///   | exit hook's frames   |  task_sp - 48 and below
/// ```
///
/// Popping `rbx` and `rbp` gives the caller of `asmcgocall` the registers
/// it keeps across the call, as a normal return does (C preserves them).
/// No C code runs: C frames have no destructors, and the C function's
/// state is abandoned, as in Go.
///
/// # Safety
/// `task_sp` must be the syscall SP of a C call of the current task still in
/// progress on this thread, with everything below it on the task stack
/// finished with (nothing left to drop), the M's state (g0 SP, counters)
/// already that of a C call returning, and `m` the current M, in C
/// (`cstate` set by the callback's return half).
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn cgocall_resume(task_sp: usize, payload: usize, m: *const M) -> ! {
    // Arguments: rdi = task_sp, rsi = payload, rdx = m.
    naked_asm!(
        ".cfi_startproc",
        // Nothing to unwind into from here: the stack is being replaced.
        ".cfi_undefined rip",
        // Below the saved registers, 16-byte aligned (task_sp is): the
        // hook's frames go there, and nothing at or above task_sp - 40 is
        // written.
        "lea rsp, [rdi - 48]",
        // m survives the hook in rbx (restored from the saved area below).
        "mov rbx, rdx",
        // exitsyscall_hook(m, payload): leaves C, takes the P back (or the
        // slow path), returns the payload in rax.
        "mov rdi, rdx",
        "call {hook}",
        // asmcgocall's exit bookkeeping: no syscall SP (the field of m's
        // task), out of C, one more call made, no nocallback declaration.
        "mov rcx, [rbx + {m_curg}]",
        "mov qword ptr [rcx + {g_syscall_sp}], 0",
        "mov byte ptr [rbx + {m_incgo}], 0",
        "inc qword ptr [rbx + {m_ncgocall}]",
        "mov qword ptr [rbx + {m_nocallback}], 0",
        // The saved rbx (the 32 bytes below it hold nothing: the caller
        // of asmcgocall keeps nothing in r12-r15 across it).
        "lea rsp, [rsp + 40]",
        "pop rbx",
        // A panic: rdx = PANICKED, the payload in rax (asmcgocall's
        // convention).
        "mov edx, {panicked}",
        // rsp = task_sp: the record {rbp, return address}. The caller's rbp.
        "pop rbp",
        // Return into the caller of asmcgocall, after its call, with the
        // payload.
        "ret",
        ".cfi_endproc",
        panicked = const crate::cgocall::PANICKED,
        m_curg = const core::mem::offset_of!(M, curg),
        g_syscall_sp = const core::mem::offset_of!(crate::sched::task::G, syscall_sp),
        m_incgo = const core::mem::offset_of!(M, incgo),
        m_ncgocall = const core::mem::offset_of!(M, ncgocall),
        m_nocallback = const core::mem::offset_of!(M, nocallback),
        hook = sym crate::cgocall::exitsyscall_hook,
    )
}

/// Runs `f(arg)` on a task stack at `task_sp`, called on the g0 stack by the
/// callback path (Go's `cgocallback`): lowers the M's g0 SP (`*g0_sp`) to
/// just below this function's own frame, so that g0 work during the
/// callback (the scheduler through `mcall`, nested C calls through
/// `asmcgocall`) lands below the C frames, switches to the task stack, calls
/// `f(arg)`, and switches back. The caller saves and restores the old g0 SP
/// (it is in its frame, above).
///
/// ```text
///   g0 stack (the thread's)                  task stack
///   | C frames (the C call)    |             | managed caller, cgocall        |
///   | export shim, cgocallback |             | asmcgocall {rbp, ret}          | <- syscall SP
///   | return into cgocallback  |             | 5 callee-saved regs (resume)   |
///   | caller's rbp             | <- record --+----------------------------+   |
///   +--------------------------+ <- new g0_sp | return address (2:)     | \  | <- task_sp
///   | g0 scratch: mcall,       |    (16-byte  | g0 record address  -----+-+-'   (aligned)
///   | nested asmcgocall, ...   |     aligned) +-------------------------+
///                                             | f's frames: callbackg, the |
///                                             | managed function, nested   |
///                                             | cgocalls ...               |
/// ```
///
/// Unwinding from the managed frames: `f`'s CFI leads to `2:` here with rsp
/// at the task-stack record, whose first word is the g0 frame record's
/// address; the CFI there is `CFA = *(rsp) + 16`, so the walk continues in
/// `cgocallback` on g0, through the export shim and the C frames, into
/// `asmcgocall` (whose CFI leads back to the task stack, into `cgocall`).
/// The rbp chain follows the same path. Marked a signal frame as
/// [`asmcgocall`] is, for the same reason.
///
/// # Safety
/// Must run on the current M's g0 stack with `task_sp` free memory of the
/// task stack (below anything live there) and `g0_sp` that M's g0 SP; `f`
/// must be safe to call with `arg` there, and must either return or leave by
/// [`cgocall_resume`].
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn cgocallback_switch(
    arg: *mut c_void,
    f: unsafe extern "C" fn(*mut c_void),
    task_sp: usize,
    g0_sp: *mut usize,
) {
    // Arguments: rdi = arg, rsi = f, rdx = task_sp, rcx = g0_sp.
    naked_asm!(
        ".cfi_startproc",
        // The stacks cross here (see asmcgocall).
        ".cfi_signal_frame",
        // A frame record on g0: {caller's rbp, return address}.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -16",
        // rbp = the record; the CFA is rbp + 16 while rsp moves.
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        // The new g0 SP: the record, rounded down to 16 bytes. g0 users
        // write only below it, so the record and the C frames stay intact.
        "mov rax, rsp",
        "and rax, -16",
        "mov [rcx], rax",
        // Switch to the task stack, 16-byte aligned.
        "and rdx, -16",
        "mov rsp, rdx",
        // A frame record on the task stack, upper word first: the address f
        // returns to, so FP walkers name this function...
        "lea rcx, [rip + 2f]",
        "push rcx",
        // ...then the g0 record's address: the rbp link and the slot the
        // unwinder reads.
        "push rbp",
        // From here until we leave the task stack: CFA = *(rsp + 0) + 16
        // (the same DWARF expression as asmcgocall's).
        ".cfi_escape 0x0f, 5, 0x77, 0x00, 0x06, 0x23, 0x10",
        // rbp points at the task-stack record: managed frames chain into g0.
        "mov rbp, rsp",
        // rsp is 16-byte aligned (rdx was, two pushes): f(arg).
        "call rsi",
        "2:",
        // rsp is at the task-stack record; its first word is the g0 record:
        // switch back.
        "mov rsp, [rsp]",
        ".cfi_def_cfa rsp, 16",
        // The caller's rbp.
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        // Back to cgocallback on g0.
        "ret",
        ".cfi_endproc",
    )
}

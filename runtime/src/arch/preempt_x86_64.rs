//! The injected call of asynchronous preemption on x86_64: [`async_preempt`]
//! and the two things the SIGURG handler needs to know about the machine —
//! where the interrupted code was ([`interrupted`]) and how to make it call
//! `async_preempt` when the handler returns ([`inject_call`]).
//!
//! ## The story
//!
//! A task that loops without reaching a safepoint is stopped by a signal
//! (`gc/preempt.rs`). The handler runs on the thread's alternate signal
//! stack; it cannot stop the task there (a signal handler may only do
//! async-signal-safe things, and the kernel's signal frame is not on the
//! task stack, where the collector looks). Instead it edits the saved
//! registers the kernel will restore on `sigreturn`, so that the task,
//! instead of resuming where it was, resumes as if it had *called*
//! `async_preempt` from there:
//!
//! ```text
//!   task stack before the signal        after inject_call (what sigreturn restores)
//!   | caller frames        |            | caller frames              |
//!   | interrupted frame    |            | interrupted frame          |
//!   +----------------------+ <- sp      +----------------------------+ <- old sp
//!   | red zone, 128 bytes  |            | red zone, 128 bytes: kept  |
//!   |   (leaf data may     |            |   intact                   |
//!   |    live here)        |            +----------------------------+
//!                                       | interrupted pc (a "return  | <- new sp
//!                                       |   address")                |
//!                                         rip = async_preempt
//! ```
//!
//! `async_preempt` then saves *every* register the interrupted code may be
//! using — it was interrupted at an arbitrary instruction, not at a call,
//! so caller-saved registers are live too — calls the Rust function
//! `gc::preempt::async_preempt2` in a normal context on the task stack
//! (which may stop the task for the collector or hand its P on), restores
//! everything and returns to the interrupted instruction.
//!
//! ## What is saved, and why xsave
//!
//! The general-purpose registers (all but rsp, which the frame itself
//! restores), rflags, and the floating-point/SIMD state. For the last,
//! [`init_fp_state`] reads CPUID once at start:
//!
//! - where the OS enabled `XSAVE` (CPUID.1:ECX.OSXSAVE), `xsave64`/`xrstor64`
//!   with the components x87, SSE, AVX and AVX-512 (XCR0 bits 0, 1, 2, 5,
//!   6, 7, those XCR0 enables), in an area of the size CPUID leaf 0xD gives
//!   for them (832 bytes with AVX, 2,688 with AVX-512). Rust compiled for
//!   the x86-64 baseline uses only SSE, but the C library the Rust code
//!   below calls (memcpy, string functions) uses AVX2 and the AVX-512
//!   registers ymm16–31, and code built with target features (or C code
//!   compiled into the program) may keep live values in ymm/zmm upper
//!   halves or opmask registers: `fxsave` alone would lose them.
//! - otherwise `fxsave64`/`fxrstor64` (512 bytes: x87, MMX, SSE and MXCSR),
//!   which is all such a machine has.
//!
//! Left out on purpose: MPX bounds (gone from current CPUs and compilers),
//! PKRU (nothing in the runtime changes protection keys), AMX tiles
//! (8 KiB; a program using them must arrange its own permission, and
//! nothing in the runtime touches them). The area is 64-byte aligned, as
//! `xsave` requires, and its 64-byte header is zeroed first (`xrstor`
//! faults on a header with reserved bits set, and `xsave` writes only its
//! first word).
//!
//! The direction flag is cleared after rflags is saved: the ABI requires it
//! clear at every call, and the interrupted code may have set it.
//!
//! ## The frame
//!
//! ```text
//!             +----------------------------+  higher addresses
//!             | interrupted frame          |
//!   CFA ----> +----------------------------+ <- the interrupted sp
//!             | red zone, 128 bytes        |
//!             +----------------------------+
//!             | interrupted pc             |  CFA - 136  (return address)
//!             | rbp                        |  CFA - 144  <- rbp: a frame record
//!             | rflags                     |  CFA - 152
//!             | rax rbx rcx rdx            |  CFA - 160 .. CFA - 184
//!             | rsi rdi                    |  CFA - 192, CFA - 200
//!             | r8 .. r15                  |  CFA - 208 .. CFA - 264
//!             +----------------------------+
//!             | (alignment, 0 to 63 bytes) |
//!             +----------------------------+ <- 64-byte aligned
//!             | FP/SIMD state: xsave area  |
//!             | or fxsave area             |
//!   rsp at -> +----------------------------+    call async_preempt2
//! ```
//!
//! The return is `ret 128`: it pops the interrupted pc and then skips the
//! red zone, so the interrupted code continues with exactly its own stack
//! pointer. For the same reason the CFI's CFA is the interrupted stack
//! pointer (not, as for a real call, the word above the return address):
//! an unwinder then recovers the interrupted frame's true stack pointer.
//!
//! Every saved register sits above the stack pointer at the call, so a
//! collector scanning the task's stack from its lowest saved stack pointer
//! (the `mcall` context `async_preempt2` leaves when it stops) sees them
//! all, the FP area included (a conservative scan of it only finds
//! pointer-looking words, which is harmless).
//!
//! ## Unwinding (CFI)
//!
//! The CFI below says where each register was saved, so a debugger shows
//! the interrupted frame's registers and a backtrace walks from
//! `async_preempt2` through `async_preempt` into the interrupted function.
//! The function is a signal frame (`.cfi_signal_frame`, as the kernel's
//! `__restore_rt` is): the "return address" is the interrupted
//! instruction itself, not the instruction after a call, so unwinders must
//! look it up as is rather than minus one. Frame-pointer walkers follow the
//! record `{rbp, interrupted pc}` at CFA - 144.

use core::arch::naked_asm;
use core::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// Bytes below the interrupted stack pointer that the ABI lets a leaf
/// function use without moving it (the red zone): the injected frame goes
/// below them.
pub(crate) const RED_ZONE: usize = 128;

/// Bytes of general-purpose state `async_preempt` pushes: the interrupted
/// pc, rbp, rflags and 14 more registers.
const GPR_BYTES: usize = 17 * 8;

/// Use `xsave64` (true) or `fxsave64` (false); set once by [`init_fp_state`].
static FP_XSAVE: AtomicBool = AtomicBool::new(false);
/// The `xsave` component mask (edx:eax).
static FP_MASK: AtomicU64 = AtomicU64::new(0);
/// Bytes of the FP/SIMD save area; 0 until [`init_fp_state`] ran (no
/// preemption before that).
static FP_SIZE: AtomicUsize = AtomicUsize::new(0);

/// XCR0 components saved: x87 (0), SSE (1), AVX (2), AVX-512 opmask (5),
/// ZMM_Hi256 (6), Hi16_ZMM (7). See the file comment for what is left out.
const SAVED_COMPONENTS: u64 = 0b1110_0111;

/// Reads the CPU's FP/SIMD state layout (file comment): chooses `xsave`
/// or `fxsave` and the area's size. At start, before SIGURG is handled.
pub(crate) fn init_fp_state() {
    use core::arch::x86_64::__cpuid_count;
    // CPUID is available on every x86_64 CPU; leaf 1 always exists.
    #[allow(unused_unsafe)]
    // SAFETY: cpuid has no side effects.
    let leaf1 = unsafe { __cpuid_count(1, 0) };
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    if !osxsave {
        FP_XSAVE.store(false, Ordering::Relaxed);
        FP_SIZE.store(512, Ordering::Release);
        return;
    }
    let (lo, hi): (u32, u32);
    // SAFETY: xgetbv with ecx = 0 reads XCR0; it is allowed in user mode
    // when CR4.OSXSAVE is set, which CPUID.1:ECX.OSXSAVE reports.
    unsafe {
        core::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    let xcr0 = (u64::from(hi) << 32) | u64::from(lo);
    let mask = xcr0 & SAVED_COMPONENTS;
    // The legacy area (512 bytes) and the header (64) always come first.
    let mut size = 576usize;
    for i in 2..64 {
        if mask & (1 << i) != 0 {
            #[allow(unused_unsafe)]
            // SAFETY: cpuid has no side effects; leaf 0xD sub-leaf i
            // exists for every component XCR0 enables.
            let c = unsafe { __cpuid_count(0xD, i) };
            // eax: the component's size; ebx: its offset in the standard
            // (non-compacted) layout that xsave64 uses.
            size = size.max(c.ebx as usize + c.eax as usize);
        }
    }
    FP_MASK.store(mask, Ordering::Relaxed);
    FP_XSAVE.store(true, Ordering::Relaxed);
    FP_SIZE.store(size.next_multiple_of(64), Ordering::Release);
}

/// What the FP/SIMD save uses: `(xsave, area bytes)`; `(false, 0)` before
/// [`init_fp_state`].
pub(crate) fn fp_state() -> (bool, usize) {
    (FP_XSAVE.load(Ordering::Relaxed), FP_SIZE.load(Ordering::Acquire))
}

/// Stack bytes an injected `async_preempt` takes below the interrupted
/// stack pointer before it calls `async_preempt2`: the red zone, the saved
/// registers, the alignment and the FP area. 0 before [`init_fp_state`].
pub(crate) fn injected_frame_bytes() -> usize {
    let fp = FP_SIZE.load(Ordering::Acquire);
    if fp == 0 {
        return 0;
    }
    RED_ZONE + GPR_BYTES + 63 + fp
}

/// The interrupted program counter and stack pointer, from a signal's
/// ucontext.
///
/// # Safety
/// `uc` must be the ucontext the kernel passed to an `SA_SIGINFO` handler
/// running now.
pub(crate) unsafe fn interrupted(uc: *const c_void) -> (usize, usize) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the caller promises a live ucontext.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    (g[libc::REG_RIP as usize] as usize, g[libc::REG_RSP as usize] as usize)
}

/// Whether the interrupted thread was blocked in the kernel, in a system
/// call made from code outside the runtime (`futex` under a `std` lock,
/// `nanosleep`, `read`...): the kernel interrupts such a call for the
/// handler and either restarts it afterwards — the saved pc is rewound to
/// the `syscall` instruction and `rax` holds the call's number again — or
/// returns `-EINTR` — the pc is just past `syscall` and `rax` is `-EINTR`.
/// Either way no user instruction of the call's is half done.
///
/// # Safety
/// `uc` as for [`interrupted`].
pub(crate) unsafe fn blocked_in_syscall(uc: *const c_void) -> bool {
    // SAFETY: the caller's promise is ours.
    if unsafe { syscall_to_restart(uc) }.is_some() {
        return true;
    }
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the caller promises a live ucontext.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    let (pc, rax) = (g[libc::REG_RIP as usize] as usize, g[libc::REG_RAX as usize]);
    if rax != -i64::from(libc::EINTR) || pc % 4096 < 2 {
        // Not EINTR, or the two bytes before would be on another page,
        // which this check does not read (it answers no: not stopped here).
        return false;
    }
    // SAFETY: the two bytes before `pc`, on its page, which is mapped.
    unsafe { *((pc - 2) as *const [u8; 2]) == SYSCALL }
}

/// The number of the system call the kernel will restart when the handler
/// returns — the interrupted thread was blocked in it, and its saved pc is
/// the `syscall` instruction again — or None.
///
/// # Safety
/// `uc` as for [`interrupted`].
pub(crate) unsafe fn syscall_to_restart(uc: *const c_void) -> Option<i64> {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the caller promises a live ucontext.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    let (pc, rax) = (g[libc::REG_RIP as usize] as usize, g[libc::REG_RAX as usize]);
    // SAFETY: `pc` is where the interrupted thread executes next: mapped,
    // readable text; an instruction that starts with 0x0f has a second
    // byte, mapped like the first.
    let syscall = unsafe { *(pc as *const u8) == SYSCALL[0] && *((pc + 1) as *const u8) == SYSCALL[1] };
    (syscall && rax >= 0).then_some(rax)
}

/// The `syscall` instruction.
const SYSCALL: [u8; 2] = [0x0f, 0x05];

/// Copies the interrupted general-purpose registers (the 16 of them and
/// the pc) from a signal's ucontext into `out`, for the collector to scan.
///
/// # Safety
/// `uc` as for [`interrupted`].
pub(crate) unsafe fn copy_registers(uc: *const c_void, out: &[AtomicUsize; SIGNAL_REGS]) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the caller promises a live ucontext.
    let g = unsafe { &(*uc).uc_mcontext.gregs };
    for (slot, &v) in out.iter().zip(g[..SIGNAL_REGS].iter()) {
        slot.store(v as usize, Ordering::Relaxed);
    }
}

/// How many words [`copy_registers`] writes: `gregs[0..17]` of the x86-64
/// Linux ucontext, R8–R15, RDI, RSI, RBP, RBX, RDX, RAX, RCX, RSP, RIP.
pub(crate) const SIGNAL_REGS: usize = 17;

/// Rewrites the signal's saved registers so that, when the handler returns,
/// the interrupted code calls [`async_preempt`]: the interrupted pc is
/// written as a return address below the red zone and becomes the stack
/// pointer's target (file comment, first diagram).
///
/// # Safety
/// `uc` as for [`interrupted`]; the interrupted stack pointer must be
/// 8-byte aligned with at least [`injected_frame_bytes`] plus what
/// `async_preempt2` needs of writable, unused task stack below it.
pub(crate) unsafe fn inject_call(uc: *mut c_void) {
    let uc = uc.cast::<libc::ucontext_t>();
    // SAFETY: the caller promises a live ucontext.
    let g = unsafe { &mut (*uc).uc_mcontext.gregs };
    let pc = g[libc::REG_RIP as usize] as usize;
    let sp = g[libc::REG_RSP as usize] as usize - RED_ZONE - 8;
    // SAFETY: the caller promises this word of the task stack is free
    // (below the red zone, above the stack's low end).
    unsafe { (sp as *mut usize).write(pc) };
    g[libc::REG_RSP as usize] = sp as i64;
    g[libc::REG_RIP as usize] = async_preempt as *const () as usize as i64;
}

/// The start of [`async_preempt`]'s code, so that the handler can tell a
/// task interrupted inside it.
pub(crate) fn async_preempt_addr() -> usize {
    async_preempt as *const () as usize
}

/// The injected call (file comment): saves every register and the FP/SIMD
/// state on the task stack, calls `gc::preempt::async_preempt2`, restores
/// everything and returns to the interrupted instruction. Never called by
/// code: reached only through [`inject_call`], with the interrupted pc as
/// its return address.
///
/// # Safety
/// Only as set up by [`inject_call`].
#[unsafe(naked)]
pub(crate) unsafe extern "C" fn async_preempt() {
    naked_asm!(
        ".cfi_startproc",
        // The return address is an interrupted instruction, not a call's
        // return point: look it up as is (file comment).
        ".cfi_signal_frame",
        // The CFA is the interrupted stack pointer, 136 bytes up (the
        // return address and the red zone); the return address is at its
        // bottom.
        ".cfi_def_cfa rsp, 136",
        ".cfi_offset rip, -136",
        // Nothing below may change the flags before pushfq.
        // Save rbp and make {rbp, interrupted pc} a frame record.
        "push rbp",
        ".cfi_adjust_cfa_offset 8",
        ".cfi_offset rbp, -144",
        // rbp = the record; the CFA is rbp + 144 from here on, while rsp
        // moves to an alignment only known at run time.
        "mov rbp, rsp",
        ".cfi_def_cfa_register rbp",
        // rflags (DWARF register 49), before anything changes them.
        "pushfq",
        ".cfi_offset 49, -152",
        // The other general-purpose registers, caller-saved ones included:
        // the interrupted code may have a live value in any of them.
        "push rax",
        ".cfi_offset rax, -160",
        "push rbx",
        ".cfi_offset rbx, -168",
        "push rcx",
        ".cfi_offset rcx, -176",
        "push rdx",
        ".cfi_offset rdx, -184",
        "push rsi",
        ".cfi_offset rsi, -192",
        "push rdi",
        ".cfi_offset rdi, -200",
        "push r8",
        ".cfi_offset r8, -208",
        "push r9",
        ".cfi_offset r9, -216",
        "push r10",
        ".cfi_offset r10, -224",
        "push r11",
        ".cfi_offset r11, -232",
        "push r12",
        ".cfi_offset r12, -240",
        "push r13",
        ".cfi_offset r13, -248",
        "push r14",
        ".cfi_offset r14, -256",
        "push r15",
        ".cfi_offset r15, -264",
        // The ABI wants the direction flag clear at calls (saved above).
        "cld",
        // Room for the FP/SIMD area, 64-byte aligned (xsave's requirement;
        // fxsave needs 16).
        "sub rsp, qword ptr [rip + {fp_size}]",
        "and rsp, -64",
        // xsave or fxsave, as init_fp_state chose.
        "cmp byte ptr [rip + {fp_xsave}], 0",
        "je 2f",
        // Zero the xsave header (bytes 512..576): xrstor faults on
        // reserved bits, and xsave writes only the first word.
        "xor eax, eax",
        "mov qword ptr [rsp + 512], rax",
        "mov qword ptr [rsp + 520], rax",
        "mov qword ptr [rsp + 528], rax",
        "mov qword ptr [rsp + 536], rax",
        "mov qword ptr [rsp + 544], rax",
        "mov qword ptr [rsp + 552], rax",
        "mov qword ptr [rsp + 560], rax",
        "mov qword ptr [rsp + 568], rax",
        // The components to save, in edx:eax.
        "mov eax, dword ptr [rip + {fp_mask}]",
        "mov edx, dword ptr [rip + {fp_mask} + 4]",
        // Save them (64-bit form: full x87 instruction/data pointers).
        "xsave64 [rsp]",
        "jmp 3f",
        "2:",
        // No xsave: x87, MMX, SSE and MXCSR.
        "fxsave64 [rsp]",
        "3:",
        // rsp is 64-byte aligned, so 16-byte aligned at the call as the
        // ABI requires. The Rust side: stop for the collector, or give
        // the P a turn elsewhere, then come back.
        "call {preempt2}",
        // Restore the FP/SIMD state the same way it was saved.
        "cmp byte ptr [rip + {fp_xsave}], 0",
        "je 4f",
        "mov eax, dword ptr [rip + {fp_mask}]",
        "mov edx, dword ptr [rip + {fp_mask} + 4]",
        "xrstor64 [rsp]",
        "jmp 5f",
        "4:",
        "fxrstor64 [rsp]",
        "5:",
        // Back to the saved general-purpose registers (r15 is at
        // rbp - 120), popped in reverse order of the pushes.
        "lea rsp, [rbp - 120]",
        "pop r15",
        ".cfi_restore r15",
        "pop r14",
        ".cfi_restore r14",
        "pop r13",
        ".cfi_restore r13",
        "pop r12",
        ".cfi_restore r12",
        "pop r11",
        ".cfi_restore r11",
        "pop r10",
        ".cfi_restore r10",
        "pop r9",
        ".cfi_restore r9",
        "pop r8",
        ".cfi_restore r8",
        "pop rdi",
        ".cfi_restore rdi",
        "pop rsi",
        ".cfi_restore rsi",
        "pop rdx",
        ".cfi_restore rdx",
        "pop rcx",
        ".cfi_restore rcx",
        "pop rbx",
        ".cfi_restore rbx",
        "pop rax",
        ".cfi_restore rax",
        // The interrupted flags, direction flag included.
        "popfq",
        ".cfi_restore 49",
        // rsp = the record: the CFA is rsp + 144 again.
        ".cfi_def_cfa rsp, 144",
        // The interrupted rbp (pop changes no flag).
        "pop rbp",
        ".cfi_adjust_cfa_offset -8",
        ".cfi_restore rbp",
        // Resume the interrupted instruction: pop the return address, then
        // skip the red zone, back to the interrupted stack pointer.
        "ret 128",
        ".cfi_endproc",
        fp_size = sym FP_SIZE,
        fp_xsave = sym FP_XSAVE,
        fp_mask = sym FP_MASK,
        preempt2 = sym crate::gc::preempt::async_preempt2,
    )
}

/// Test support (`gc/preempt.rs`, `CLOBBER`): overwrites every register
/// the interrupted code may hold a value in and a normal call may change —
/// the caller-saved general-purpose registers and all vector registers
/// (`vzeroall` where there is AVX, so the upper halves too).
pub(crate) fn clobber_for_test() {
    let avx = std::arch::is_x86_feature_detected!("avx");
    // SAFETY: only caller-saved registers are written, and the compiler is
    // told (clobber_abi("C")); `vzeroall` runs only where AVX exists.
    unsafe {
        core::arch::asm!(
            // Vector registers first (the flag's register is still intact).
            "test {avx}, {avx}",
            "jz 2f",
            // All of ymm0-15, upper halves included.
            "vzeroall",
            "2:",
            // Without AVX (or as well): the xmm registers, by hand.
            "pcmpeqd xmm0, xmm0",
            "pcmpeqd xmm1, xmm1",
            "pcmpeqd xmm7, xmm7",
            "pcmpeqd xmm8, xmm8",
            "pcmpeqd xmm14, xmm14",
            "pcmpeqd xmm15, xmm15",
            // The caller-saved general-purpose registers.
            "mov rax, -1",
            "mov rcx, -1",
            "mov rdx, -1",
            "mov rsi, -1",
            "mov rdi, -1",
            "mov r8, -1",
            "mov r9, -1",
            "mov r10, -1",
            "mov r11, -1",
            avx = in(reg_byte) u8::from(avx),
            clobber_abi("C"),
        )
    };
}

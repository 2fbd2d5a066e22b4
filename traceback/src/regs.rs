//! The registers an unwinder needs, by DWARF register number.
//!
//! A frame is described by its program counter, stack pointer and the
//! callee-saved registers that CFI rules may refer to (the frame pointer
//! among them). Registers whose value is unknown (a task's saved context
//! records only pc, sp and fp) are marked invalid; a CFI rule that needs one
//! fails and the unwinder falls back to the frame-pointer chain.
//!
//! DWARF numbers: x86_64 — rbx 3, rbp 6, rsp 7, r12–r15 12–15, return
//! address 16; aarch64 — x19–x28 19–28, fp (x29) 29, lr (x30) 30, sp 31.

/// Registers tracked, indexed by DWARF number (0..=31 covers both targets).
pub(crate) const NREGS: usize = 32;

#[cfg(target_arch = "x86_64")]
mod arch {
    pub const SP: u16 = 7;
    pub const FP: u16 = 6;
    /// The CFI column of the return address (a pseudo-register on x86_64).
    pub const RA: u16 = 16;
    /// Callee-saved registers a CFI row may restore.
    pub const CALLEE_SAVED: &[u16] = &[3, 6, 12, 13, 14, 15];
}

#[cfg(target_arch = "aarch64")]
mod arch {
    pub const SP: u16 = 31;
    pub const FP: u16 = 29;
    pub const RA: u16 = 30;
    pub const CALLEE_SAVED: &[u16] = &[19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30];
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("cgocheck-traceback supports x86_64 and aarch64 Linux");

pub(crate) use arch::{CALLEE_SAVED, FP, RA, SP};

/// A frame's registers: pc plus DWARF-numbered registers with a validity
/// mask.
#[derive(Clone, Copy, Debug)]
pub struct Regs {
    pub(crate) pc: usize,
    vals: [usize; NREGS],
    valid: u64,
}

impl Regs {
    /// A frame known only by its pc, stack pointer and frame pointer (a
    /// task's saved context).
    pub fn new(pc: usize, sp: usize, fp: usize) -> Regs {
        let mut r = Regs { pc, vals: [0; NREGS], valid: 0 };
        r.set(SP, sp);
        r.set(FP, fp);
        r
    }

    /// The registers interrupted by a signal, from the handler's third
    /// argument.
    ///
    /// # Safety
    /// `ucontext` must point to the `ucontext_t` the kernel passed to an
    /// `SA_SIGINFO` handler (or one filled by `getcontext`).
    pub unsafe fn from_ucontext(ucontext: *const libc::c_void) -> Regs {
        // SAFETY: the caller's contract.
        let uc = unsafe { &*(ucontext as *const libc::ucontext_t) };
        #[cfg(target_arch = "x86_64")]
        {
            let g = &uc.uc_mcontext.gregs;
            let mut r = Regs::new(
                g[libc::REG_RIP as usize] as usize,
                g[libc::REG_RSP as usize] as usize,
                g[libc::REG_RBP as usize] as usize,
            );
            for (dwarf, greg) in
                [(3, libc::REG_RBX), (12, libc::REG_R12), (13, libc::REG_R13), (14, libc::REG_R14), (15, libc::REG_R15)]
            {
                r.set(dwarf, g[greg as usize] as usize);
            }
            r
        }
        #[cfg(target_arch = "aarch64")]
        {
            let m = &uc.uc_mcontext;
            let mut r = Regs::new(m.pc as usize, m.sp as usize, m.regs[29] as usize);
            for n in 19..=30u16 {
                r.set(n, m.regs[n as usize] as usize);
            }
            r
        }
    }

    /// The program counter.
    pub fn pc(&self) -> usize {
        self.pc
    }

    /// The stack pointer.
    pub fn sp(&self) -> usize {
        self.vals[SP as usize]
    }

    /// The frame pointer (0 if unknown).
    pub fn fp(&self) -> usize {
        self.get(FP).unwrap_or(0)
    }

    /// Register `n` (DWARF number), if known.
    pub(crate) fn get(&self, n: u16) -> Option<usize> {
        ((n as usize) < NREGS && self.valid & (1 << n) != 0).then(|| self.vals[n as usize])
    }

    /// Sets register `n` (DWARF number); numbers past the tracked ones are
    /// ignored.
    pub(crate) fn set(&mut self, n: u16, v: usize) {
        if (n as usize) < NREGS {
            self.vals[n as usize] = v;
            self.valid |= 1 << n;
        }
    }

    /// Forgets register `n`.
    pub(crate) fn clear(&mut self, n: u16) {
        if (n as usize) < NREGS {
            self.valid &= !(1 << n);
        }
    }
}

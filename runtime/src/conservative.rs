//! Conservative reads: loading a word whose type we do not know.
//!
//! Roots the runtime does not have a descriptor for (the values behind
//! Handles today, task stacks and saved registers when the collector comes)
//! are scanned conservatively: every aligned word is read and, if it lands
//! in a managed object, that object counts as referenced. Reading such words
//! with an ordinary Rust load would be undefined behaviour when they are
//! padding or otherwise uninitialised bytes; an `asm!` load is outside the
//! Rust abstract machine and simply returns whatever bits are in memory.

/// The 8 bytes at `p`, whatever they hold.
///
/// # Safety
/// `p` is 8-byte aligned and the 8 bytes at it are mapped and readable.
#[inline]
pub(crate) unsafe fn read_word(p: *const usize) -> usize {
    let v: usize;
    // SAFETY: the caller guarantees the address is aligned and readable;
    // the asm only loads from it (readonly, nostack) and returns the bits.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::asm!("mov {v}, qword ptr [{p}]", p = in(reg) p, v = lateout(reg) v, options(readonly, nostack, preserves_flags));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        std::arch::asm!("ldr {v}, [{p}]", p = in(reg) p, v = lateout(reg) v, options(readonly, nostack, preserves_flags));
    }
    v
}

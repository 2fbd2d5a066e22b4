//! Reading stack words that may not be there.
//!
//! An unwinder follows saved frame pointers and CFA offsets into memory it
//! only believes is stack. After a crash that belief can be wrong, and a
//! fault inside the signal handler would end the report. So words are read
//! with `process_vm_readv(2)` on our own pid: the kernel copies them, and
//! an unmapped address comes back as `EFAULT` instead of a signal. It is a
//! plain system call (async-signal-safe), about a microsecond per word,
//! and a 32-frame walk reads at most a few hundred words.
//!
//! Where the call is refused (`ENOSYS`, or `EPERM` under a seccomp profile
//! that forbids it), the word is read directly: that is what every
//! frame-pointer unwinder does, and the walk's other checks (alignment,
//! stack growing upward) keep it on plausible addresses.

use std::sync::atomic::{AtomicBool, Ordering};

/// Set once `process_vm_readv` has been refused: read directly from then on.
static DIRECT: AtomicBool = AtomicBool::new(false);

/// The machine word at `addr`, or `None` if it is misaligned or unreadable.
pub(crate) fn read_word(addr: usize) -> Option<usize> {
    if addr == 0 || !addr.is_multiple_of(core::mem::align_of::<usize>()) {
        return None;
    }
    if DIRECT.load(Ordering::Relaxed) {
        // SAFETY: aligned and non-null; the kernel refused to check it for
        // us, so this is the frame-pointer unwinder's usual trust in a
        // stack address reached from the interrupted registers.
        return Some(unsafe { (addr as *const usize).read_volatile() });
    }
    let mut word = 0usize;
    let local = libc::iovec { iov_base: (&mut word as *mut usize).cast(), iov_len: core::mem::size_of::<usize>() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: core::mem::size_of::<usize>() };
    // SAFETY: `local` describes `word`, writable for its size; `remote` is
    // only read by the kernel, which reports a bad address as EFAULT.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    if n == core::mem::size_of::<usize>() as isize {
        return Some(word);
    }
    let err = std::io::Error::last_os_error().raw_os_error();
    if err == Some(libc::ENOSYS) || err == Some(libc::EPERM) {
        DIRECT.store(true, Ordering::Relaxed);
        return read_word(addr);
    }
    None
}

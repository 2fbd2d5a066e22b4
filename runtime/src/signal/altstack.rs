//! Alternate signal stacks, one per thread the runtime runs on.
//!
//! A stack overflow faults with the stack pointer already at the guard
//! page: the kernel can deliver the signal only if the handler runs
//! elsewhere. `sigaltstack(2)` gives each thread such an elsewhere, and the
//! fatal-signal handler is installed with `SA_ONSTACK` to use it.
//!
//! - The main thread gets one at program start (from the same constructor
//!   that installs the handler).
//! - Threads the runtime creates (the scheduler's Ms) get one when they
//!   start (today `sched/m.rs` makes its own, `ensure_signal_stack`; 64 KiB
//!   is enough for the handler). [`AltStack::for_this_thread`] does the
//!   same for any thread: call it first thing and keep the value until the
//!   thread ends; dropping it turns the stack off and unmaps it.
//! - Threads the runtime never saw (a C library's `pthread_create`) get
//!   one when they first call back into managed code and bind an extra M
//!   (`callback.rs`, Go's `needm`), kept until the thread exits. One that
//!   never calls back has none unless its creator made one: a crash there
//!   is still reported, on the thread's own stack, but a stack overflow
//!   there cannot be — the kernel finds no room for the signal frame and
//!   the process dies of `SIGSEGV` with no report.
//! - Threads made with `std::thread` have none either: Rust's std makes
//!   them only when it installs its own overflow handler, which it skips
//!   because ours is installed first. Their overflows end like a foreign
//!   thread's.
//!
//! Each stack is `SIZE` bytes of fresh anonymous memory with a
//! `PROT_NONE` guard page below it, so a handler that overflows its
//! alternate stack faults instead of writing over other memory.

/// Usable size: the handler's frames, gimli's fixed unwind context (a few
/// KiB) and the frame arrays fit with room to spare.
const SIZE: usize = 128 * 1024;

/// A thread's alternate signal stack; dropping it removes it.
pub struct AltStack {
    /// Our mapping (guard page included), or null when the thread already
    /// had an alternate stack that is not ours.
    base: *mut libc::c_void,
    len: usize,
}

impl AltStack {
    /// Gives the calling thread an alternate signal stack, unless it
    /// already has one (which is then left alone).
    pub fn for_this_thread() -> AltStack {
        let mut old = std::mem::MaybeUninit::<libc::stack_t>::zeroed();
        // SAFETY: querying only (null new stack); `old` is writable.
        let queried = unsafe { libc::sigaltstack(std::ptr::null(), old.as_mut_ptr()) } == 0;
        // SAFETY: sigaltstack filled `old` when it returned 0.
        if queried && unsafe { old.assume_init() }.ss_flags & libc::SS_DISABLE == 0 {
            return AltStack { base: std::ptr::null_mut(), len: 0 };
        }
        // SAFETY: page size query has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let len = SIZE + page;
        // SAFETY: a fresh private anonymous mapping; no existing memory is
        // affected.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return AltStack { base: std::ptr::null_mut(), len: 0 };
        }
        // SAFETY: the first page of our own mapping becomes the guard.
        unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
        // SAFETY: `base + page` starts `SIZE` bytes of our mapping.
        let stack = libc::stack_t { ss_sp: unsafe { base.cast::<u8>().add(page) }.cast(), ss_flags: 0, ss_size: SIZE };
        // SAFETY: `stack` describes memory that lives until `drop`, which
        // disables it before unmapping.
        if unsafe { libc::sigaltstack(&stack, std::ptr::null_mut()) } != 0 {
            // SAFETY: our mapping, unused.
            unsafe { libc::munmap(base, len) };
            return AltStack { base: std::ptr::null_mut(), len: 0 };
        }
        AltStack { base, len }
    }

    /// Keeps the stack for the rest of the thread's life (the main thread's).
    pub(crate) fn keep(self) {
        std::mem::forget(self);
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if self.base.is_null() {
            return;
        }
        let off = libc::stack_t { ss_sp: std::ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
        // SAFETY: turning the calling thread's alternate stack off; it is
        // ours (created by `for_this_thread` on this thread).
        unsafe { libc::sigaltstack(&off, std::ptr::null_mut()) };
        // SAFETY: no handler can run on it any more; the mapping is ours.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

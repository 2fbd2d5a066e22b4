//! Ms: the OS threads that run tasks.
//!
//! An M is a thread plus its g0 stack (the thread's own stack, where the
//! scheduler and every C call run). Worker Ms are threads the runtime
//! creates when a P has work and no M is idle; they live for the rest of the
//! process, parked when idle. The thread that calls `run` becomes an M for
//! the duration of the call (its "M0"), dedicated to the main task.
//!
//! Ms are never freed (like Go's `allm`): a pointer to an M stays valid, so
//! Ps, tasks and the crash report may keep one, and [`for_each_m`] walks the
//! list without a lock.
//!
//! ## Finding the current M
//!
//! The current M is a thread-local. A started task never changes threads
//! (`schedule.rs`), so a thread-local address the compiler keeps across a
//! switch is still right. The runtime nevertheless reads its per-thread
//! state only through [`current_m`], which is `#[inline(never)]`, so that
//! nothing in it depends on that rule holding at every switch (the
//! scheduler's own code runs on g0, and an extra M's task stack serves
//! whichever C thread the M is bound to): each call computes the address
//! afresh on the thread that is running. The exceptions are `cgocall` and
//! the `CGOCHECK=2` lend record (`ffi/lend.rs`), both never inlined, which
//! read it inline once on entry ([`current_m_inline`]).

use super::p::{self, P};
use super::task::G;
use crate::cgocall::NoCallback;
use crate::signal::AltStack;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread::Thread;

/// Usable size of a worker M's thread stack: its g0 stack, where C code
/// runs, so the size C code expects of a thread (glibc's usual default).
pub(crate) const M_STACK_SIZE: usize = 8 << 20;

/// An M. Fields are atomics because other threads read them (the monitor,
/// handoffs, stats, crash reports); each is written by the M's own thread
/// unless its comment says otherwise. The fields the C-call fast path
/// touches come first and share one cache line.
#[repr(C, align(64))]
pub(crate) struct M {
    /// Set while this M's task is in C with everything the collector scans
    /// in place (set by `asmcgocall` after it saved the registers, cleared
    /// first thing on the way back, and by callbacks around managed code):
    /// the owner's half of the crossing protocol (`sched/crossing.rs`).
    /// Written by the M's own thread only, with plain stores.
    pub cstate: AtomicBool,
    /// `curg` is in C right now, on this M's g0 stack (Go's `m.incgo`).
    /// This, not the task's status, is what says a task is in C: the fast
    /// path writes only this cache line and the task's syscall SP. Set
    /// first thing in `asmcgocall`, before `cstate`, and cleared after the
    /// way back's check, so it covers the edges of a call where `cstate`
    /// is 0 (no scheduling turn may run a nested call there). A callback
    /// clears it while managed code runs and sets it again before
    /// returning to C.
    pub incgo: AtomicBool,
    /// The owner must fence after clearing `cstate` (no `membarrier`:
    /// `sched/crossing.rs`); fixed when the M is made.
    pub fence: bool,
    /// Callbacks from C in progress on this M (`callback.rs`): its
    /// managed code runs inside one (no scheduling turns), and the C depth
    /// Go's `m.ncgo` counts is this plus `incgo`. Touched by callbacks
    /// only, so the C-call path has one counter less to keep.
    pub ncallback: AtomicU32,
    /// The last `trap` this M saw on its way back from C (own thread only).
    pub trap_seen: AtomicU64,
    /// Counts the rare sides that may have taken or stopped this M's P
    /// while it was in C (or are about to): the collector, the monitor,
    /// `set_gomaxprocs`, the M itself giving its P up. Never reset: a C
    /// call returning compares it with `trap_seen`, and a difference sends
    /// it down the slow path (`sched/crossing.rs`).
    pub trap: AtomicU64,
    /// Top of the g0 scratch area (Go's `m.g0.sched.sp`). `mcall` and
    /// `asmcgocall` start their g0 frames here. A callback from C
    /// (`callback.rs`) saves this value on the g0 stack, sets it below the C
    /// frames it arrived on (16-byte aligned), and restores it when the
    /// callback returns *or unwinds*, so that g0 frames pushed during the
    /// callback cannot overwrite the C frames (`shared/seeds/004`).
    pub g0_sp: AtomicUsize,
    /// The task running on this M (null on g0 between tasks). It stays set
    /// while that task is in C.
    pub curg: AtomicPtr<G>,
    /// C calls made by this M (Go's `m.ncgocall`), with some ticks that
    /// are not (`uncounted` says how many): the monitor's tick, which
    /// tells one long call from many short ones.
    pub ncgocall: AtomicU64,
    /// The C function being called, when it was declared `nocallback`
    /// (null otherwise): a callback arriving on this M must be refused, and
    /// the refusal names it. Written and read by this M's thread only;
    /// atomic so that statistics may read it from elsewhere.
    pub nocallback: AtomicPtr<NoCallback>,
    /// The P held (null when none).
    pub p: AtomicPtr<P>,
    /// Runtime locks held by this M's running task (Go's `m.locks`): while
    /// non-zero the task is not preempted (`sched/nopreempt.rs`). Written by
    /// the M's own thread only.
    pub locks: AtomicU32,
    /// A preemption was requested while `locks` was non-zero: the last
    /// [`NoPreempt`](super::nopreempt::NoPreempt) guard to go honours it.
    pub preempt_pending: AtomicBool,
    /// Asynchronous preemption requested of this M's task and not yet
    /// honoured: `gc/preempt.rs`'s request bits (a world stop, a scheduling
    /// turn) and its "being preempted" bit. Set by requesters (the monitor,
    /// the collector), taken by the M's own thread.
    pub preempt: AtomicU32,
    /// Non-zero while this M's task is stopped for the collector inside
    /// the preemption signal's handler (it was blocked in a system call
    /// outside the runtime: `gc/preempt.rs`, "Stopped where it waits"):
    /// the lowest address of its stack that may be live (the interrupted
    /// stack pointer less the red zone). Written by the M's own thread.
    pub signal_stop_sp: AtomicUsize,
    /// The interrupted registers of that stop, scanned as roots while
    /// `signal_stop_sp` is set.
    pub signal_regs: [AtomicUsize; crate::arch::preempt::SIGNAL_REGS],
    /// The kernel thread id of this M's thread (0 while it has none: an
    /// unbound extra M), where preemption requests are sent
    /// (`gc::preempt::request`). Written by the thread itself.
    pub tid: AtomicI32,
    /// 1-based, in creation order.
    pub id: u64,
    /// The context `g0_enter` saved: resuming it makes the M leave.
    pub exit_sp: AtomicUsize,
    /// A P handed to this M while it slept; written by the waker before
    /// [`M::wake`].
    pub nextp: AtomicPtr<P>,
    /// The task locked to this M (`lock_os_thread`, `run`'s main task, a
    /// callback from C, a task unwinding): the innermost one, when a second
    /// task locked itself while the first was blocked in a callback.
    pub lockedg: AtomicPtr<G>,
    /// The outer locked tasks under `lockedg`, innermost last
    /// (`schedule::lock_to`); touched by this M's thread only, and only when
    /// `npins` says it is not empty.
    pub pins: Mutex<Vec<&'static G>>,
    /// `pins.len()`, read without the lock.
    pub npins: AtomicUsize,
    /// Of `ncgocall`, the ticks that are not the program's C calls, which
    /// statistics leave out: the runtime's own blocking calls
    /// (`stw::blocking`), and callbacks returning to C (a new call, for
    /// the monitor's tick).
    pub uncounted: AtomicU64,
    /// The locked task is blocked while unwinding a panic: the thread's
    /// other tasks must not run (they would see `std::thread::panicking()`).
    pub solo: AtomicBool,
    /// Runnable tasks waiting in this M's own run queue (tasks bound to it,
    /// `schedule.rs`); written under the scheduler lock, read without it
    /// by `yield_now`.
    pub nlocal: AtomicUsize,
    /// Live tasks bound to this M (started here and not yet ended).
    pub nbound: AtomicUsize,
    /// A task ended while locked to this M (it may have changed the
    /// thread's state): the M starts no new task, and its thread ends once
    /// the tasks bound to it have ended.
    pub tainted: AtomicBool,
    /// Looking for work after a wakeup; counted in the scheduler's
    /// `nmspinning`.
    pub spinning: AtomicBool,
    /// Set by a waker; the M sleeps until it sees it.
    wakeup: AtomicBool,
    /// This M's thread, to unpark it. Set once for worker and `run` Ms; an
    /// extra M (below) gets the thread it is bound to, each time.
    thread: Mutex<Option<Thread>>,
    /// The M of a `run` call: it returns to `run` when its main task ends.
    pub run_thread: bool,
    /// An extra M (Go's `needm`): bound to a thread C created while that
    /// thread calls managed code, its g0 stack being that thread's stack
    /// (see `callback.rs`).
    pub extra: bool,
    /// `run`'s main task on this M (null otherwise).
    pub main_g: AtomicPtr<G>,
    /// The thread ended (a task exited while locked to it).
    pub dead: AtomicBool,
    /// The last pointer argument this thread's checks found clean as a
    /// whole object (`check.rs`).
    pub clean: crate::check::CleanPointer,
    /// Next in the list of all Ms.
    next_all: AtomicPtr<M>,
}

// The C-call fast path's fields share the M's first cache line.
const _: () = assert!(std::mem::offset_of!(M, nocallback) + 8 <= 64);

/// Head of the list of all Ms (newest first).
static ALLM: AtomicPtr<M> = AtomicPtr::new(std::ptr::null_mut());
/// Ms created so far.
static NM: AtomicU64 = AtomicU64::new(0);
/// Extra Ms bound to a thread C created right now (`callback.rs`); back to
/// its resting value once those threads have exited.
pub(crate) static EXTRA_BOUND: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" {
    /// The M running on this thread (null on a thread that is not an M):
    /// a C `__thread` variable (`csrc/current_m.c`), read and written only
    /// by the assembly of [`current_m_inline`], [`set_current_m`] and
    /// `arch::asmcgocall` (Rust cannot name a foreign thread-local),
    /// through its TLS descriptor (`@TLSDESC`): in an executable the linker
    /// makes that a constant offset from the thread pointer, one load and
    /// no call; in a library loaded with `dlopen`, a call to the
    /// descriptor's function, which changes no register but the result.
    /// (Rust's own `thread_local!` in a library costs a call that the
    /// compiler saves every argument register around.)
    pub(crate) static cgocheck_current_m: *const core::ffi::c_void;
}

thread_local! {
    /// The M that `run` on this thread uses, kept for the next `run`.
    static RUN_M: Cell<*const M> = const { Cell::new(std::ptr::null()) };
    /// A `run` thread's alternate signal stack, removed when the thread
    /// ends.
    static RUN_ALTSTACK: RefCell<Option<AltStack>> = const { RefCell::new(None) };
}

/// The M running on the calling thread, or null on a thread that is not an
/// M. Never inlined: see the module comment.
#[inline(never)]
pub(crate) fn current_m() -> *const M {
    current_m_inline()
}

/// [`current_m`] without the call, for the C-call fast path only. Sound
/// only in a function that is itself `#[inline(never)]` and reads it before
/// anything that can move the task to another thread, never after: then
/// the thread-local's address is computed on the thread that uses it, and
/// no caller can carry it across a switch.
#[inline(always)]
pub(crate) fn current_m_inline() -> *const M {
    let m: *const M;
    // SAFETY: reads this thread's `cgocheck_current_m` by its TLS
    // descriptor: the descriptor's function returns the variable's offset
    // from the thread pointer in rax, changing no other register (the
    // TLSDESC convention), and `fs:` is the thread pointer. The linker
    // turns the pair into a constant in an executable. Not `pure`: two
    // reads are never merged.
    unsafe {
        core::arch::asm!(
            "lea rax, [rip + {tls}@TLSDESC]",
            "call qword ptr [rax + {tls}@TLSCALL]",
            "mov rax, qword ptr fs:[rax]",
            tls = sym cgocheck_current_m,
            out("rax") m,
            options(readonly),
        )
    };
    m
}

/// Makes the calling thread M `m` (or no M, with null).
#[inline(never)]
pub(crate) fn set_current_m(m: *const M) {
    // SAFETY: writes this thread's `cgocheck_current_m` (as above).
    unsafe {
        core::arch::asm!(
            "lea rax, [rip + {tls}@TLSDESC]",
            "call qword ptr [rax + {tls}@TLSCALL]",
            "mov qword ptr fs:[rax], {m}",
            tls = sym cgocheck_current_m,
            m = in(reg) m,
            out("rax") _,
        )
    };
}

/// The `run` M of the calling thread, created on first use.
pub(crate) fn run_m() -> &'static M {
    let m = RUN_M.with(|c| c.get());
    if !m.is_null() {
        // SAFETY: Ms are never freed.
        return unsafe { &*m };
    }
    let m = new_m(true, false);
    m.set_thread(Some(std::thread::current()));
    RUN_M.with(|c| c.set(m));
    m
}

/// A new M, linked into the list of all Ms.
pub(crate) fn new_m(run_thread: bool, extra: bool) -> &'static M {
    let m: &'static M = Box::leak(Box::new(unlinked_m(run_thread, extra)));
    let mut head = ALLM.load(Ordering::Relaxed);
    loop {
        m.next_all.store(head, Ordering::Relaxed);
        match ALLM.compare_exchange_weak(head, m as *const M as *mut M, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return m,
            Err(h) => head = h,
        }
    }
}

/// A new M with the next id, not (yet) in the list of all Ms.
pub(crate) fn unlinked_m(run_thread: bool, extra: bool) -> M {
    let id = NM.fetch_add(1, Ordering::Relaxed) + 1;
    // A P's state word has 24 bits for its owner (`sched/p.rs`); Ms are
    // threads, never freed: a process does not make 16 million of them.
    assert!(id <= p::MAX_OWNER, "cgocheck: more than {} threads became Ms", p::MAX_OWNER);
    M {
        id,
        locks: AtomicU32::new(0),
        preempt_pending: AtomicBool::new(false),
        preempt: AtomicU32::new(0),
        tid: AtomicI32::new(0),
        signal_stop_sp: AtomicUsize::new(0),
        signal_regs: [const { AtomicUsize::new(0) }; crate::arch::preempt::SIGNAL_REGS],
        cstate: AtomicBool::new(false),
        fence: super::crossing::owner_fences(),
        trap_seen: AtomicU64::new(0),
        trap: AtomicU64::new(0),
        uncounted: AtomicU64::new(0),
        g0_sp: AtomicUsize::new(0),
        exit_sp: AtomicUsize::new(0),
        curg: AtomicPtr::new(std::ptr::null_mut()),
        p: AtomicPtr::new(std::ptr::null_mut()),
        nextp: AtomicPtr::new(std::ptr::null_mut()),
        lockedg: AtomicPtr::new(std::ptr::null_mut()),
        pins: Mutex::new(Vec::new()),
        npins: AtomicUsize::new(0),
        solo: AtomicBool::new(false),
        nlocal: AtomicUsize::new(0),
        nbound: AtomicUsize::new(0),
        tainted: AtomicBool::new(false),
        ncgocall: AtomicU64::new(0),
        ncallback: AtomicU32::new(0),
        incgo: AtomicBool::new(false),
        nocallback: AtomicPtr::new(std::ptr::null_mut()),
        spinning: AtomicBool::new(false),
        wakeup: AtomicBool::new(false),
        thread: Mutex::new(None),
        run_thread,
        extra,
        main_g: AtomicPtr::new(std::ptr::null_mut()),
        dead: AtomicBool::new(false),
        clean: Default::default(),
        next_all: AtomicPtr::new(std::ptr::null_mut()),
    }
}

/// Calls `f` on every M ever created, newest first, without locking or
/// allocating (usable from a signal handler).
pub(crate) fn for_each_m(mut f: impl FnMut(&'static M)) {
    let mut m = ALLM.load(Ordering::Acquire);
    // SAFETY: Ms are leaked and never freed; `next_all` is written before
    // the M is published with Release.
    while let Some(mm) = unsafe { m.as_ref() } {
        f(mm);
        m = mm.next_all.load(Ordering::Acquire);
    }
}

impl M {
    /// The task running on this M.
    #[inline]
    pub(crate) fn curg(&self) -> Option<&'static G> {
        // SAFETY: task records are never freed.
        unsafe { self.curg.load(Ordering::Relaxed).as_ref() }
    }

    /// The P this M holds.
    #[inline]
    pub(crate) fn p(&self) -> Option<&'static P> {
        // SAFETY: Ps are never freed.
        unsafe { self.p.load(Ordering::Relaxed).as_ref() }
    }

    /// Managed code on this M runs inside a callback from C: it is an
    /// extra M (every task it runs is a callback on a thread C created), or
    /// a C call of its task called back. Such code keeps a P
    /// pointer across instructions where it may be interrupted, so it takes
    /// no scheduling turns (`gc/preempt.rs`).
    #[inline]
    pub(crate) fn in_callback(&self) -> bool {
        self.extra || self.ncallback.load(Ordering::Relaxed) > 0
    }

    /// The task locked to this M.
    #[inline]
    pub(crate) fn lockedg(&self) -> Option<&'static G> {
        // SAFETY: task records are never freed.
        unsafe { self.lockedg.load(Ordering::Relaxed).as_ref() }
    }

    /// Sleeps the calling thread (this M's) until [`M::wake`].
    pub(crate) fn sleep(&self) {
        while !self.wakeup.swap(false, Ordering::Acquire) {
            std::thread::park();
        }
    }

    /// Wakes this M from [`M::sleep`] (or makes its next sleep return).
    pub(crate) fn wake(&self) {
        self.wakeup.store(true, Ordering::Release);
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(t) = t {
            t.unpark();
        }
    }

    /// Records the thread this M runs on (None: no thread, an unbound
    /// extra M). Called on that thread (with `Some`), which also records
    /// its kernel thread id for preemption requests.
    pub(crate) fn set_thread(&self, t: Option<Thread>) {
        // SAFETY: gettid has no preconditions.
        let tid = if t.is_some() { unsafe { libc::syscall(libc::SYS_gettid) as i32 } } else { 0 };
        self.tid.store(tid, Ordering::Relaxed);
        *self.thread.lock().unwrap_or_else(|e| e.into_inner()) = t;
    }
}

/// Starts a worker M that begins by acquiring `p`; `spinning`: it is
/// counted in the scheduler's `nmspinning`.
pub(crate) fn start_worker(p: &'static P, spinning: bool) {
    let m = new_m(false, false);
    m.spinning.store(spinning, Ordering::Relaxed);
    m.nextp.store(p as *const P as *mut P, Ordering::Relaxed);
    let r = std::thread::Builder::new().name(format!("cgocheck-m{}", m.id)).stack_size(M_STACK_SIZE).spawn(move || {
        m.set_thread(Some(std::thread::current()));
        // A signal stack for this thread's whole life (see ensure_signal_stack).
        let _altstack = AltStack::for_this_thread();
        set_current_m(m);
        // SAFETY: this thread is M `m` from here on; `mstart` ends every
        // path with gogo of a valid context, and leaves by resuming
        // `exit_sp` on this thread only.
        unsafe {
            crate::arch::g0_enter(
                m as *const M as *mut _,
                super::schedule::mstart,
                m.exit_sp.as_ptr(),
                m.g0_sp.as_ptr(),
            )
        };
        m.dead.store(true, Ordering::Relaxed);
        set_current_m(std::ptr::null());
    });
    if let Err(e) = r {
        eprintln!("cgocheck: cannot start a worker thread (M {}): {e}", m.id);
        std::process::abort();
    }
}

/// Gives a `run` thread an alternate signal stack (if it has none) for as
/// long as the thread lives, so that a task overflowing its stack on this M
/// can still be reported: the handler cannot run on the overflowed stack.
/// Worker Ms make theirs when they start.
pub(crate) fn ensure_signal_stack() {
    RUN_ALTSTACK.with_borrow_mut(|alt| {
        if alt.is_none() {
            *alt = Some(AltStack::for_this_thread());
        }
    });
}

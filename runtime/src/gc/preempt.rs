//! Asynchronous preemption: stopping a task that runs managed code without
//! reaching a safepoint, by a signal (Go's `preempt.go` and
//! `doSigPreempt`; decision 9 of the collector's design).
//!
//! A task stops for the collector at safepoints (allocation slow paths,
//! yield/park/sleep/channels, spawn, C calls), and gives its P to other
//! tasks when it blocks, yields or stays in C. A task in a loop that does
//! none of these — `loop { black_box(x) }`, a long computation — would keep
//! the world from stopping and, at a small `GOMAXPROCS`, keep every other
//! task from running. So two kinds of request interrupt it:
//!
//! - **stop** ([`request`]): the collector wants the world stopped; `stw.rs`
//!   asks each M still running managed code, again and again until it has
//!   stopped;
//! - **turn** ([`request_turn`]): the monitor (`sched/monitor.rs`) saw the
//!   task keep its P for more than 10 ms while work waits for a P.
//!
//! ## The path of a request
//!
//! 1. The requester sets the request's bit in the target M's `preempt`
//!    word and sends SIGURG to its thread with `rt_tgsigqueueinfo`, with a
//!    cookie in the signal's value, so the handler can tell our requests
//!    from a SIGURG anyone else sends (those go to the handler the program
//!    had installed before the runtime, as before: `signal/table.rs`).
//! 2. The handler (`signal/table.rs` calls [`on_signal`]), on the M's
//!    alternate signal stack, decides from the M's state alone, with
//!    atomics and no lock, whether the interrupted code is a task's managed
//!    code at an instruction where a call may be injected:
//!    - the thread is an M with a current task, not in C (`incgo`, which
//!      also covers a C call's entry and exit), holding its P `RUNNING`;
//!    - the interrupted stack pointer is inside the task's stack with room
//!      below it for the injected frame and what runs on it, and the
//!      handler itself is not running on that stack;
//!    - the interrupted stack pointer is not the task's saved context
//!      (`sched_sp`): that is `mcall` between publishing the context and
//!      leaving the stack, the one instruction where a nested switch would
//!      overwrite a context about to be used;
//!    - the interrupted pc lies in the executable text of the module that
//!      contains the runtime (found once at start with `dl_iterate_phdr`),
//!      so never in the C library, the dynamic loader or the vdso — never
//!      inside `malloc` or a lock's slow path — except a task blocked in
//!      a system call there: a stop stops it in the handler, and a turn
//!      is injected when the call is a `futex` or sleep the kernel
//!      restarts ("Stopped where it waits", below);
//!    - no request of this M is being honoured already.
//!
//!    If all hold and the M holds no runtime lock (`M::locks == 0`), it
//!    rewrites the signal context so that the task calls `async_preempt`
//!    when the handler returns (`arch/preempt_x86_64.rs`). If the M holds a
//!    runtime lock (a `NoPreempt` guard, `sched/nopreempt.rs`), it sets
//!    `M::preempt_pending` instead: the guard that brings `locks` back to
//!    zero calls [`pending_preemption`]. Otherwise it does nothing: the
//!    requester asks again (the collector until the P is stopped, the
//!    monitor every millisecond while the task keeps its P).
//! 3. `async_preempt` saves every register and the FP/SIMD state on the
//!    task stack and calls [`async_preempt2`], an ordinary function on the
//!    task: for a stop it calls `stw::safepoint()` (which saves the task's
//!    context with `mcall` *below* the registers just pushed, so the
//!    collector's scan from the lowest saved stack pointer covers them);
//!    for a turn it hands the P on (below). Then `async_preempt` restores
//!    everything and returns to the interrupted instruction.
//!
//! ## Stopped where it waits: a task blocked in a system call
//!
//! A task can block its thread outside the runtime's code: on a `std`
//! mutex held by another task (`futex`), in `std::thread::sleep`, in a
//! `read`. Its P stays `RUNNING` and no call can be injected there (the pc
//! is in the C library). If the task holding that mutex is stopped for a
//! collection — at an allocation, say — the blocked thread would keep the
//! world from ever stopping. So for a *stop* request, when the interrupted
//! thread is blocked in (or at) a system call — the pc is at a `syscall`
//! instruction the kernel will restart, or just past one that returned
//! `EINTR` (`arch::blocked_in_syscall`) — and holds no runtime lock, the
//! handler stops the task right there, without returning: it copies the
//! interrupted registers into the M (`M::signal_regs`, scanned as roots),
//! publishes the interrupted stack pointer less the red zone
//! (`M::signal_stop_sp`, where the scan of its stack starts), turns the P
//! `STOP_RUNNING` with a compare-and-swap and polls (20 µs sleeps, no lock:
//! a signal handler may take none) until the restart gives it back
//! (`stw::stop_in_signal_handler`). Then the handler returns and the
//! kernel restarts the system call. Nothing of the task runs meanwhile,
//! and at a system call no user instruction is half done; the only state
//! it holds is what its code holds across the call, on its stack and in
//! the registers the scan reads. [`PreemptStats::stopped_in_syscall`]
//! counts these stops.
//!
//! A *turn* cannot be taken in the handler (the task would go on without
//! a P when the call returns), but a task blocked in `futex` (a `std`
//! mutex, condition variable or park) or in a sleep the kernel will
//! resume with `restart_syscall` gets one by injection as usual: the
//! kernel rewinds its pc to the `syscall` instruction with the call's
//! number and arguments in the registers, so the injected call hands the
//! P on, waits for one, restores every register and returns to that
//! instruction, which waits again. So tasks blocked on a `std` mutex hand
//! their Ps to the task that holds it when it waits for one (it took a
//! turn, or came back from C).
//!
//! ## A turn: the P goes, the thread waits
//!
//! A preempted task must never have another task run *on its thread* while
//! it is suspended: it may hold a `std` lock, and a task of the same thread
//! taking it would block the very thread that must release it. So a turn
//! does not reschedule the thread; it makes the rest of the turn a C call
//! that gives its own P away: `stw::blocking`, built on `cgocall` (the M
//! in C), and on the g0 stack `crossing::give_up` (the M's own `trap`
//! counted, then a compare-and-swap `RUNNING(this M)` → `IDLE`: the
//! monitor's retake, done at once) and `handoffp`, which gives the P to the
//! work at the head of the global queue. The C call's exit then finds its
//! `trap` moved and takes the slow path every C call that lost its P
//! takes (`exitsyscall_slow`): this M waits, running nothing, until a P is
//! handed to it, and resumes the preempted task first (it is at the front
//! of the M's own queue). Racing the collector is the crossing protocol's
//! business: if a stop already took the P (→ `STOP_SYSCALL`), the
//! hand-off's compare-and-swap fails and the exit waits for the restart.
//!
//! ## Turning it off: `GODEBUG=asyncpreemptoff=1`
//!
//! As in Go, `asyncpreemptoff=` with a number above 0 in `GODEBUG` (read at
//! start by `sched/config.rs`, parsed by `cgocheck_checker::env`) turns
//! preemption by signal off: [`request`] and [`request_turn`] send no
//! SIGURG and set no request bit, and the monitor asks for no turns. The
//! collector still asks for its stop, and waits until every task running
//! managed code reaches a safepoint of its own (allocation slow path,
//! yield, park, sleep, channel, spawn, C call); a task in a loop without
//! one keeps its P until it leaves the loop, so at `GOMAXPROCS=1` every
//! other task — and a collection asked for meanwhile — waits for it.
//! [`preempt_stats`] then counts no signals. The SIGURG handler stays
//! installed: it receives no request of ours, and passes every other
//! SIGURG on as before. This is the way out of the first limit below: no
//! task is suspended at an arbitrary instruction, so one holding a `std`
//! lock gives its P away only where it chooses to (a yield, a C call).
//!
//! ## Limits
//!
//! - Code holding a `std` lock can be preempted like any managed code.
//!   Tasks that block on the lock meanwhile are stopped where they wait
//!   for a collection and give their P back by a turn when the holder
//!   waits for one (above). Callbacks from C take no turns; a callback
//!   blocked on a `std` lock keeps its P until it gets the lock. A lock
//!   implementation that spins in the C library without a system call,
//!   or waits in another one, is not turned out of its P.
//! - A global allocator compiled into the executable (jemalloc, mimalloc)
//!   is preempted like managed code; one that takes locks can deadlock the
//!   preempted thread's turn. The C library's `malloc` is never
//!   interrupted.
//! - A turn may end with the M holding another P than before, so code
//!   that keeps a P pointer across instructions where it may be interrupted
//!   must not be given turns: a callback from C is not (its entry and exit
//!   halves keep one; `M::in_callback`: a C call in progress on the M, or
//!   an extra M bound to a thread C created), and runtime code on a task stack reads
//!   `m.p()` only after `incgo` is set or under `NoPreempt`. Stops keep the
//!   P and reach callbacks too.
//! - A task whose stack has less than about 12 KiB free below its stack
//!   pointer (the injected frame and `async_preempt2`'s callees) is not
//!   preempted there; it is again once it has returned from deep frames.
//! - SIGURG must stay unblocked in Ms and handled by the runtime: a handler
//!   installed *after* the runtime's replaces it, and tasks in loops then
//!   are not preempted (as in Go).

use crate::arch::preempt as arch;
use crate::sched::m::{current_m, M};
use crate::sched::p;
use crate::sched::schedule::{handoffp, SCHED};
use core::ffi::c_void;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// `M::preempt` bit: the collector wants this M's task stopped.
const STOP: u32 = 1;
/// `M::preempt` bit: the task should let others have its P.
const TURN: u32 = 2;
/// `M::preempt` bit: a preemption is being honoured on this M right now
/// (from injection to the end of [`async_preempt2`], or inside
/// [`pending_preemption`]); further signals are ignored meanwhile.
const ACTIVE: u32 = 4;

/// The value our requests carry, to tell them from other SIGURGs.
const COOKIE: usize = 0x6367_6f63_6865_636b;

/// Free task stack the handler requires below the injected frame: room for
/// `async_preempt2` and what it calls on the task stack (`cgocall`,
/// `exitsyscall_slow`, `mcall`'s context; the stop path's frames) in an
/// unoptimised build, with margin.
const SLACK: usize = 8 << 10;

/// At most this many executable segments of the runtime's module.
const MAX_TEXT: usize = 8;
/// The runtime's module's executable segments `[start, end)`, found at
/// start (written before the SIGURG handler is installed, read by it).
static TEXT: [(AtomicUsize, AtomicUsize); MAX_TEXT] = [const { (AtomicUsize::new(0), AtomicUsize::new(0)) }; MAX_TEXT];
/// How many entries of [`TEXT`] are set.
static NTEXT: AtomicUsize = AtomicUsize::new(0);

static SENT: AtomicU64 = AtomicU64::new(0);
static INJECTED: AtomicU64 = AtomicU64::new(0);
static DEFERRED: AtomicU64 = AtomicU64::new(0);
static DECLINED: AtomicU64 = AtomicU64::new(0);
static STOPS: AtomicU64 = AtomicU64::new(0);
static TURNS: AtomicU64 = AtomicU64::new(0);
static STOPPED_IN_SYSCALL: AtomicU64 = AtomicU64::new(0);

/// Counters of asynchronous preemption since the process started (for
/// tests and tools; read one by one, so only approximately consistent
/// while tasks run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreemptStats {
    /// Preemption signals sent (stop and turn requests).
    pub sent: u64,
    /// Signals that interrupted managed code and injected a call.
    pub injected: u64,
    /// Signals that found the task holding a runtime lock: the request was
    /// left for the lock's release.
    pub deferred: u64,
    /// Signals that found nothing to preempt (the thread in C, in the C
    /// library, in the scheduler, short of stack...) or a request already
    /// honoured; the requester asks again if it still needs to.
    pub declined: u64,
    /// Stop requests honoured (the task reached `stw::safepoint` through a
    /// preemption).
    pub stops: u64,
    /// Turns taken: a preempted task handed its P on.
    pub turns: u64,
    /// Stop requests honoured in the signal handler by a task blocked in a
    /// system call outside the runtime (a `std` lock, a sleep, a read).
    pub stopped_in_syscall: u64,
    /// The FP/SIMD state is saved with `xsave` (else `fxsave`).
    pub xsave: bool,
    /// Bytes of the FP/SIMD save area on the task stack.
    pub fp_area: usize,
}

/// The counters of asynchronous preemption ([`PreemptStats`]).
pub fn preempt_stats() -> PreemptStats {
    PreemptStats {
        sent: SENT.load(Ordering::Relaxed),
        injected: INJECTED.load(Ordering::Relaxed),
        deferred: DEFERRED.load(Ordering::Relaxed),
        declined: DECLINED.load(Ordering::Relaxed),
        stops: STOPS.load(Ordering::Relaxed),
        turns: TURNS.load(Ordering::Relaxed),
        stopped_in_syscall: STOPPED_IN_SYSCALL.load(Ordering::Relaxed),
        xsave: arch::fp_state().0,
        fp_area: arch::fp_state().1,
    }
}

/// Runs `f` as the runtime's own lock-holding code runs: with the calling
/// task's M marked as holding a runtime lock (a `NoPreempt` guard), so a
/// preemption signal arriving meanwhile is deferred to the end of `f`.
/// For the tests of that rule; not for programs.
#[doc(hidden)]
pub fn with_no_preempt<R>(f: impl FnOnce() -> R) -> R {
    let _np = crate::sched::nopreempt::NoPreempt::new();
    f()
}

/// Test support: while set, every preemption clobbers the registers an
/// interrupted task may hold values in (caller-saved general-purpose
/// registers, every xmm/ymm register), so that a test of register preservation fails if `async_preempt` missed
/// one, whatever `async_preempt2`'s own code happens to use.
static CLOBBER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends a stop request, as the collector does, to the M of every P
/// running managed code right now; returns how many. Without a world stop
/// in progress the interrupted task goes on at once (`stw::safepoint` has
/// nothing to do): the whole injected call, save and restore included,
/// runs and nothing else. With `clobber`, every preemption from now on
/// scrambles the registers (see [`CLOBBER`]). With
/// `GODEBUG=asyncpreemptoff=1` it sends none and returns 0. For tests and
/// measurements; not for programs.
#[doc(hidden)]
pub fn preempt_running_for_test(clobber: bool) -> usize {
    CLOBBER.store(clobber, Ordering::Relaxed);
    if !enabled() {
        return 0;
    }
    let mut n = 0;
    crate::sched::m::for_each_m(|m| {
        if m.p().is_some_and(|p| p::is_running_by(p.status.load(Ordering::Relaxed), m.id))
            && !m.incgo.load(Ordering::Relaxed)
        {
            request(m);
            n += 1;
        }
    });
    n
}

/// At start, before SIGURG is handled: the FP/SIMD save area's layout and
/// the runtime's executable text.
pub(crate) fn init() {
    arch::init_fp_state();
    find_text();
}

/// Records the executable `PT_LOAD` segments of the module that contains
/// this code (the program, or the shared library the runtime is linked
/// into), where managed code lives.
fn find_text() {
    unsafe extern "C" fn each(info: *mut libc::dl_phdr_info, _size: usize, data: *mut c_void) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info and our `data`.
        let (info, target) = unsafe { (&*info, *(data as *const usize)) };
        if info.dlpi_phdr.is_null() {
            return 0;
        }
        // SAFETY: dlpi_phdr points at dlpi_phnum program headers.
        let phdrs = unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) };
        let base = info.dlpi_addr as usize;
        let range = |ph: &libc::Elf64_Phdr| {
            let lo = base + ph.p_vaddr as usize;
            lo..lo + ph.p_memsz as usize
        };
        let exec = |ph: &&libc::Elf64_Phdr| ph.p_type == libc::PT_LOAD && ph.p_flags & libc::PF_X != 0;
        if !phdrs.iter().filter(exec).any(|ph| range(ph).contains(&target)) {
            return 0;
        }
        let mut n = 0;
        for ph in phdrs.iter().filter(exec).take(MAX_TEXT) {
            let r = range(ph);
            TEXT[n].0.store(r.start, Ordering::Relaxed);
            TEXT[n].1.store(r.end, Ordering::Relaxed);
            n += 1;
        }
        NTEXT.store(n, Ordering::Release);
        1
    }
    let mut target = arch::async_preempt_addr();
    // SAFETY: the callback only reads what the loader passes and writes
    // our statics; `target` outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), (&mut target as *mut usize).cast()) };
}

/// Whether `pc` lies in the runtime's module's executable text.
fn in_text(pc: usize) -> bool {
    let n = NTEXT.load(Ordering::Acquire);
    TEXT[..n].iter().any(|(lo, hi)| (lo.load(Ordering::Relaxed)..hi.load(Ordering::Relaxed)).contains(&pc))
}

/// The `siginfo_t` of an `rt_tgsigqueueinfo` request on 64-bit Linux:
/// code `SI_QUEUE`, the sender's pid and uid, then the value.
#[repr(C)]
struct QueueInfo {
    signo: i32,
    errno: i32,
    code: i32,
    _pad: i32,
    pid: i32,
    uid: u32,
    value: usize,
    _rest: [u64; 12],
}

const _: () = assert!(std::mem::size_of::<QueueInfo>() == std::mem::size_of::<libc::siginfo_t>());

/// Whether preemption by signal is on: `GODEBUG=asyncpreemptoff` is unset
/// or 0 (module comment, "Turning it off").
pub(crate) fn enabled() -> bool {
    !crate::sched::config::config().async_preempt_off
}

/// Asks M `m` to stop its task for the collector (`stw.rs` calls it, as
/// often as needed, until the P is stopped). Callable from any thread.
/// Does nothing when preemption by signal is off ([`enabled`]).
pub(crate) fn request(m: &M) {
    send(m, STOP);
}

/// Asks M `m`'s task to hand its P to waiting work (the monitor calls it
/// for a task that kept its P too long). Does nothing when preemption by
/// signal is off ([`enabled`]).
pub(crate) fn request_turn(m: &M) {
    send(m, TURN);
}

fn send(m: &M, bit: u32) {
    if !enabled() {
        return;
    }
    m.preempt.fetch_or(bit, Ordering::Release);
    let tid = m.tid.load(Ordering::Relaxed);
    if tid == 0 {
        return;
    }
    // SAFETY: getpid and getuid have no preconditions.
    let (pid, uid) = unsafe { (libc::getpid(), libc::getuid()) };
    let info = QueueInfo {
        signo: libc::SIGURG,
        errno: 0,
        code: libc::SI_QUEUE,
        _pad: 0,
        pid,
        uid,
        value: COOKIE,
        _rest: [0; 12],
    };
    // SAFETY: a signal to a thread of this process with a siginfo we
    // built; a thread that has ended makes the call fail, harmlessly.
    unsafe { libc::syscall(libc::SYS_rt_tgsigqueueinfo, pid, tid, libc::SIGURG, &info as *const QueueInfo) };
    SENT.fetch_add(1, Ordering::Relaxed);
}

/// What the handler does with a request.
enum Verdict {
    Inject,
    /// A stop request, the task blocked in a system call outside the
    /// runtime: stop it in the handler (module comment, "Stopped where it
    /// waits").
    StopInSyscall,
    Defer,
    Decline,
}

/// The SIGURG handler's part (module comment, step 2). Returns whether the
/// signal was one of our requests (consumed); any other SIGURG is the
/// caller's to forward.
///
/// # Safety
/// Only from the SIGURG handler, with the `siginfo` and `ucontext` the
/// kernel passed it.
pub(crate) unsafe fn on_signal(info: *const libc::siginfo_t, uc: *mut c_void) -> bool {
    // SAFETY: the kernel's siginfo is a full siginfo_t, QueueInfo's size.
    let q = unsafe { &*info.cast::<QueueInfo>() };
    // SAFETY: getpid has no preconditions.
    if q.code != libc::SI_QUEUE || q.value != COOKIE || q.pid != unsafe { libc::getpid() } {
        return false;
    }
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return true };
    let bits = m.preempt.load(Ordering::Acquire);
    if bits & (STOP | TURN) == 0 || bits & ACTIVE != 0 {
        DECLINED.fetch_add(1, Ordering::Relaxed);
        return true;
    }
    // SAFETY: our caller's ucontext.
    match unsafe { verdict(m, uc) } {
        Verdict::Inject => {
            m.preempt.fetch_or(ACTIVE, Ordering::Relaxed);
            // SAFETY: `verdict` checked that the stack has room below the
            // interrupted stack pointer and that the code there may be
            // interrupted by a call.
            unsafe { arch::inject_call(uc) };
            INJECTED.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::StopInSyscall => {
            m.preempt.fetch_and(!STOP, Ordering::AcqRel);
            m.preempt.fetch_or(ACTIVE, Ordering::Relaxed);
            // SAFETY: our caller's ucontext; `verdict` checked that this is
            // a task blocked in a system call on its own stack.
            unsafe { stop_in_syscall(m, uc) };
            m.preempt.fetch_and(!ACTIVE, Ordering::Release);
            STOPPED_IN_SYSCALL.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Defer => {
            m.preempt_pending.store(true, Ordering::Relaxed);
            DEFERRED.fetch_add(1, Ordering::Relaxed);
        }
        Verdict::Decline => {
            DECLINED.fetch_add(1, Ordering::Relaxed);
        }
    }
    true
}

/// The checks of step 2 (module comment), on the thread that was
/// interrupted.
///
/// # Safety
/// `uc` as for [`on_signal`].
unsafe fn verdict(m: &M, uc: *mut c_void) -> Verdict {
    let Some(g) = m.curg() else { return Verdict::Decline };
    if m.incgo.load(Ordering::Relaxed) {
        return Verdict::Decline;
    }
    let Some(p) = m.p() else { return Verdict::Decline };
    if !p::is_running_by(p.status.load(Ordering::Relaxed), m.id) {
        return Verdict::Decline;
    }
    // SAFETY: our caller's ucontext.
    let (pc, sp) = unsafe { arch::interrupted(uc) };
    let (lo, hi) = (g.stack_lo.load(Ordering::Relaxed), g.stack_hi.load(Ordering::Relaxed));
    if !(lo < sp && sp <= hi) {
        return Verdict::Decline;
    }
    let here = 0u8;
    if (lo..hi).contains(&(std::ptr::addr_of!(here) as usize)) {
        // No alternate signal stack: the handler's own frames lie where the
        // injected frame would go.
        return Verdict::Decline;
    }
    if m.locks.load(Ordering::Relaxed) > 0 {
        return Verdict::Defer;
    }
    if m.preempt.load(Ordering::Relaxed) & STOP == 0 && m.in_callback() {
        // Only a turn is asked for, and callbacks take none (`take_turn`).
        return Verdict::Decline;
    }
    let foreign = !in_text(pc);
    // SAFETY: our caller's ucontext.
    if foreign && m.preempt.load(Ordering::Relaxed) & STOP != 0 && unsafe { arch::blocked_in_syscall(uc) } {
        return Verdict::StopInSyscall;
    }
    let frame = arch::injected_frame_bytes();
    if frame == 0 || !sp.is_multiple_of(8) || sp - lo < frame + SLACK {
        return Verdict::Decline;
    }
    if sp == g.sched_sp.load(Ordering::Relaxed) {
        return Verdict::Decline;
    }
    // SAFETY: our caller's ucontext.
    if foreign && !unsafe { waiting_in_kernel_for_a_turn(m, uc) } {
        return Verdict::Decline;
    }
    Verdict::Inject
}

/// Outside our text, a turn is given only to a task blocked in `futex` (a
/// `std` lock, condition variable or park) or in a sleep the kernel
/// resumes with `restart_syscall`, which the kernel restarts after the
/// handler: the injected call returns to the `syscall` instruction with
/// every register as it was, and the wait starts again (module comment,
/// "Stopped where it waits"). Such a thread holds no lock of the
/// C library's; the call it waits in is made again once it has a P.
///
/// # Safety
/// `uc` as for [`on_signal`].
unsafe fn waiting_in_kernel_for_a_turn(m: &M, uc: *mut c_void) -> bool {
    if m.preempt.load(Ordering::Relaxed) & TURN == 0 {
        return false;
    }
    // SAFETY: our caller's ucontext.
    matches!(unsafe { arch::syscall_to_restart(uc) }, Some(n) if n == libc::SYS_futex || n == libc::SYS_restart_syscall)
}

/// Stops `m`'s task, blocked in a system call, for the collector without
/// leaving the signal handler (module comment, "Stopped where it waits"):
/// publishes the interrupted registers and stack pointer for the scan,
/// stops the P, waits in the handler for the restart, and withdraws them.
///
/// # Safety
/// From [`on_signal`] only, with its ucontext, on `m`'s thread, when
/// `verdict` said [`Verdict::StopInSyscall`].
unsafe fn stop_in_syscall(m: &M, uc: *mut c_void) {
    let Some(p) = m.p() else { return };
    // SAFETY: our caller's ucontext.
    let (_, sp) = unsafe { arch::interrupted(uc) };
    // SAFETY: as above.
    unsafe { arch::copy_registers(uc, &m.signal_regs) };
    m.signal_stop_sp.store(sp - arch::RED_ZONE, Ordering::Release);
    super::stw::stop_in_signal_handler(m, p);
    m.signal_stop_sp.store(0, Ordering::Release);
}

/// Called by `async_preempt` (`arch/preempt_x86_64.rs`) on the interrupted
/// task's stack, every register saved: honours this M's requests, then
/// returns to let `async_preempt` resume the interrupted code.
pub(crate) extern "C" fn async_preempt2() {
    // SAFETY: Ms are never freed; the handler injected this call only on
    // an M's running task.
    let m = unsafe { &*current_m() };
    honour(m);
    m.preempt.fetch_and(!ACTIVE, Ordering::Release);
}

/// A preemption requested while the task held runtime locks, honoured now
/// that it holds none (called on the task, in normal context, by the last
/// `NoPreempt` guard's drop).
pub(crate) fn pending_preemption() {
    // SAFETY: Ms are never freed; a non-null current M is this thread's.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return };
    let Some(g) = m.curg() else { return };
    let here = 0u8;
    let on_task = (g.stack_lo.load(Ordering::Relaxed)..g.stack_hi.load(Ordering::Relaxed))
        .contains(&(std::ptr::addr_of!(here) as usize));
    let running = m.p().is_some_and(|p| p::is_running_by(p.status.load(Ordering::Relaxed), m.id));
    if !on_task || !running || m.incgo.load(Ordering::Relaxed) {
        // Scheduler code on g0, or a C call's edge: not a place to stop.
        // The requester asks again.
        return;
    }
    if m.preempt.fetch_or(ACTIVE, Ordering::Acquire) & ACTIVE != 0 {
        // Inside async_preempt2 already (a guard taken while honouring).
        return;
    }
    honour(m);
    m.preempt.fetch_and(!ACTIVE, Ordering::Release);
}

/// Honours the requests of `m` (this thread's M, its task running on its
/// stack with `ACTIVE` set) until none is left.
fn honour(m: &M) {
    loop {
        let bits = m.preempt.fetch_and(ACTIVE, Ordering::AcqRel) & (STOP | TURN);
        if bits == 0 {
            return;
        }
        if CLOBBER.load(Ordering::Relaxed) {
            arch::clobber_for_test();
        }
        if bits & STOP != 0 {
            STOPS.fetch_add(1, Ordering::Relaxed);
            super::stw::safepoint();
        }
        if bits & TURN != 0 {
            take_turn(m);
        }
    }
}

/// Hands `m`'s P to waiting work and waits for a P again (module comment,
/// "A turn"), if work still waits and no P is idle.
fn take_turn(m: &M) {
    if SCHED.runq_len.load(Ordering::SeqCst) == 0 || SCHED.npidle.load(Ordering::SeqCst) > 0 {
        return;
    }
    if m.in_callback() {
        // A callback from C (a C call's entry and exit are `incgo`, which
        // the signal's verdict declines before this): the callback
        // path keeps a P pointer across instructions where it may be
        // interrupted, and a turn may end with another P. Not given turns.
        return;
    }
    if m.p().is_none_or(|p| !p::is_running_by(p.status.load(Ordering::Relaxed), m.id)) {
        return;
    }
    TURNS.fetch_add(1, Ordering::Relaxed);
    // A blocking call is a C call of the runtime's own (not counted as the
    // program's): the M goes into C, `give_p_away` runs on g0, and the
    // return takes the slow path of a C call whose P was taken.
    super::stw::blocking(give_p_away);
}

/// The C-call part of a turn, on the g0 stack with the M in C: gives our
/// own P up as the monitor's retake would (`crossing::give_up`), and hands
/// it on.
fn give_p_away() {
    // SAFETY: Ms are never freed; cgocall runs this on its M's thread.
    let Some(m) = (unsafe { current_m().as_ref() }) else { return };
    let Some(p) = m.p() else { return };
    if crate::sched::crossing::give_up(m, p) {
        handoffp(p);
    }
}

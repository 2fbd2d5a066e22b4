//! Tasks (Go's goroutines): their records, `spawn`, `JoinHandle`, and the
//! park/unpark token everything that blocks is built on.
//!
//! ## Records
//!
//! A task's scheduler state lives in a [`G`] record. Records are allocated
//! in chunks that are never freed and reused after a task ends (Go's `allgs`
//! and free-G list): the scheduler passes plain `&'static G` around, and the
//! crash report can visit every record without a lock and without reading
//! freed memory. A record is reused only when nothing refers to it any more:
//! the scheduler holds one reference while the task lives, and every
//! [`Task`] handle (and [`JoinHandle`]) holds one.
//!
//! ## Parking
//!
//! Each task has a park token, like `std::thread::park`: [`Task::unpark`]
//! sets it, [`park`] consumes it or blocks until it is set. Joins, channels
//! and sleeps park in a loop that rechecks their condition, so an `unpark`
//! from elsewhere only costs them a spurious wakeup. The token's protocol —
//! its states, who moves it, what each side publishes, and the lost wakeup
//! it once had — is `parking.rs`, model-checked there with loom.

use super::config::{MAX_STACK_KB, MIN_STACK_KB};
use super::m::{current_m, M};
use super::nopreempt::NoPreempt;
use super::parking::ParkToken;
use super::schedule;
use super::task_local::{self, TaskLocals};
use crate::gc::roots::{self, Node, Sink};
use crate::heap::{heap, StackRange};
use std::any::Any;
use std::ffi::c_void;
use std::fmt;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Task states (`G::status`).
pub(crate) mod status {
    /// The record is free.
    pub const FREE: u32 = 0;
    /// On a run queue.
    pub const RUNNABLE: u32 = 1;
    /// On an M: running managed code, or in a C call when that M's
    /// `incgo` is set.
    pub const RUNNING: u32 = 2;
    /// Parked.
    pub const WAITING: u32 = 3;
    /// Finished; the record is released when the last handle goes.
    pub const DEAD: u32 = 4;
}

/// Why a parked task waits (`G::wait_reason`), for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum WaitReason {
    /// Not waiting.
    None = 0,
    /// [`park`].
    Park = 1,
    /// [`sleep`](super::sleep).
    Sleep = 2,
    /// [`JoinHandle::join`].
    Join = 3,
    /// Sending on a channel.
    ChanSend = 4,
    /// Receiving from a channel.
    ChanRecv = 5,
}

impl WaitReason {
    fn from_u8(v: u8) -> WaitReason {
        match v {
            1 => WaitReason::Park,
            2 => WaitReason::Sleep,
            3 => WaitReason::Join,
            4 => WaitReason::ChanSend,
            5 => WaitReason::ChanRecv,
            _ => WaitReason::None,
        }
    }

    /// Go's words for it ("chan receive", "sleep", ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "",
            WaitReason::Park => "park",
            WaitReason::Sleep => "sleep",
            WaitReason::Join => "join",
            WaitReason::ChanSend => "chan send",
            WaitReason::ChanRecv => "chan receive",
        }
    }
}

/// The body of a task, type-erased, in a record the collector scans.
///
/// A task's closure holds what it captured, managed pointers included, in
/// Rust memory (a `Box`) from the moment `spawn` boxes it until the task
/// ends. The record is registered with the collector's root registry
/// (`gc/roots.rs`) for that whole time, so its bytes are scanned,
/// conservatively: before the task starts, and while it runs — the body
/// is called through a reference into the record, so whether the compiled
/// code reads its captures from the record or from a copy on the task's
/// stack, both are scanned. Captures stay alive until the task ends.
pub(crate) struct Entry(Box<EntryRecord<dyn FnMut()>>);

/// An entry's registered record: the registry's node first, then the
/// body, an `FnMut` that runs the closure the first time it is called.
#[repr(C)]
struct EntryRecord<F: ?Sized> {
    node: Node,
    body: F,
}

/// The registry's scan function for an `EntryRecord<F>`: the body's bytes.
///
/// # Safety
/// `node` is the node of a live `EntryRecord<F>` (roots::ScanFn).
unsafe fn scan_entry<F>(node: *const Node, sink: &mut dyn Sink) {
    // SAFETY: the record is alive while registered; the body's bytes are
    // read as raw words (its owner may be running it: the world is
    // stopped, and a task never stops mid-store of a word).
    unsafe { roots::scan_value(sink, &raw const (*node.cast::<EntryRecord<F>>()).body) }
}

// SAFETY: an Entry is built either from a `Send` closure (`Entry::new`) or
// by `Entry::local`, whose caller guarantees that it runs on the thread that
// built it.
unsafe impl Send for Entry {}

impl Entry {
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> Entry {
        Entry(Entry::record(f))
    }

    /// # Safety
    /// The entry must run on the calling thread, and before anything `f`
    /// borrows goes away.
    pub(crate) unsafe fn local<'a>(f: impl FnOnce() + 'a) -> Entry {
        let b = Entry::record(f);
        // SAFETY: only the lifetime changes; the caller keeps the borrows
        // alive until the entry has run.
        Entry(unsafe { std::mem::transmute::<Box<EntryRecord<dyn FnMut() + 'a>>, Box<EntryRecord<dyn FnMut()>>>(b) })
    }

    /// Boxes `f` in a registered record (an `Entry` owns it from then on
    /// and unregisters it when dropped).
    fn record<'a, F: FnOnce() + 'a>(f: F) -> Box<EntryRecord<dyn FnMut() + 'a>> {
        // Not preempted (so not stopped for a collection) between `f`
        // leaving the caller's frame and its record being registered.
        let np = NoPreempt::new();
        /// The record of `body`, whose concrete type the scan function
        /// is made for.
        fn boxed<'a, C: FnMut() + 'a>(body: C) -> Box<EntryRecord<dyn FnMut() + 'a>> {
            Box::new(EntryRecord { node: Node::new(scan_entry::<C>), body })
        }
        let mut once = Some(f);
        let record = boxed(move || {
            if let Some(f) = once.take() {
                f()
            }
        });
        // SAFETY: the record is boxed (it does not move) and stays
        // registered until `Drop` unregisters it, before it is freed; no
        // lock is held; its scan function was made for its body's type.
        unsafe { record.node.register() };
        drop(np);
        record
    }

    /// Runs the body (once; later calls do nothing). The record stays
    /// registered meanwhile.
    fn run(&mut self) {
        (self.0.body)()
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        // SAFETY: registered by `record`, unregistered only here, before
        // the box is freed.
        unsafe { self.0.node.unregister() }
    }
}

/// A task's scheduler record (Go's `g`).
pub(crate) struct G {
    /// Task id, 1-based; 0 while the record is free.
    pub id: AtomicU64,
    /// One of [`status`].
    pub status: AtomicU32,
    /// Saved context (stack pointer) while not running.
    pub sched_sp: AtomicUsize,
    /// The task stack pointer `asmcgocall` saved: valid while the task's M
    /// is `incgo` (it is stored before `incgo` is set); 0 between calls.
    pub syscall_sp: AtomicUsize,
    /// Usable stack `lo..hi`.
    pub stack_lo: AtomicUsize,
    pub stack_hi: AtomicUsize,
    /// The park token (`parking.rs`).
    park: ParkToken,
    /// References: the scheduler's while the task lives, plus handles.
    refs: AtomicUsize,
    /// The M this task is locked to (null: none).
    pub lockedm: AtomicPtr<M>,
    /// `lock_os_thread` calls not yet undone.
    pub locked_ext: AtomicU32,
    /// Runtime-internal locks (run's main task, unwinding).
    pub locked_int: AtomicU32,
    /// The M running it (null when not running).
    pub m: AtomicPtr<M>,
    /// The M that first ran it, where it runs until it ends (null before
    /// it starts); set and cleared by the scheduler (`schedule.rs`).
    pub boundm: AtomicPtr<M>,
    /// Its `task_local!` values (`task_local.rs`).
    pub locals: TaskLocals,
    /// A [`WaitReason`] while waiting.
    pub wait_reason: AtomicU8,
    /// The body, taken when the task starts (under a `NoPreempt` guard,
    /// like every lock the collector may meet taken).
    entry: Mutex<Option<Entry>>,
}

impl G {
    fn empty() -> G {
        G {
            id: AtomicU64::new(0),
            status: AtomicU32::new(status::FREE),
            sched_sp: AtomicUsize::new(0),
            syscall_sp: AtomicUsize::new(0),
            stack_lo: AtomicUsize::new(0),
            stack_hi: AtomicUsize::new(0),
            park: ParkToken::new(),
            refs: AtomicUsize::new(0),
            lockedm: AtomicPtr::new(std::ptr::null_mut()),
            locked_ext: AtomicU32::new(0),
            locked_int: AtomicU32::new(0),
            m: AtomicPtr::new(std::ptr::null_mut()),
            boundm: AtomicPtr::new(std::ptr::null_mut()),
            locals: TaskLocals::new(),
            wait_reason: AtomicU8::new(0),
            entry: Mutex::new(None),
        }
    }

    /// The task's id.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id.load(Ordering::Relaxed)
    }

    /// The M this task is locked to.
    #[inline]
    pub(crate) fn lockedm(&self) -> Option<&'static M> {
        // SAFETY: Ms are never freed.
        unsafe { self.lockedm.load(Ordering::Relaxed).as_ref() }
    }

    /// Why it waits.
    pub(crate) fn wait_reason(&self) -> WaitReason {
        WaitReason::from_u8(self.wait_reason.load(Ordering::Relaxed))
    }

    /// Its stack.
    pub(crate) fn stack(&self) -> StackRange {
        StackRange { lo: self.stack_lo.load(Ordering::Relaxed), hi: self.stack_hi.load(Ordering::Relaxed) }
    }

    /// On g0, with this task's context saved: parks it unless its token is
    /// set. Returns false when it must keep running.
    pub(crate) fn try_park(&self) -> bool {
        self.park.try_park()
    }
}

/// Records per chunk.
const CHUNK: usize = 256;
/// Most chunks: 1 Mi task records.
const NCHUNKS: usize = 4096;
/// The chunks of records; entries below `NCHUNK_USED` are set.
static ALLG: [AtomicPtr<G>; NCHUNKS] = [const { AtomicPtr::new(std::ptr::null_mut()) }; NCHUNKS];
static NCHUNK_USED: AtomicUsize = AtomicUsize::new(0);
/// Free records.
static GFREE: Mutex<Vec<&'static G>> = Mutex::new(Vec::new());
/// Next task id.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);
/// Tasks started and not yet finished.
pub(crate) static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Calls `f` on every task record in use, without locking or allocating
/// (usable from a signal handler). Records may change while being read.
pub(crate) fn for_each_g(mut f: impl FnMut(&'static G)) {
    let n = NCHUNK_USED.load(Ordering::Acquire);
    for chunk in &ALLG[..n] {
        let base = chunk.load(Ordering::Acquire);
        for i in 0..CHUNK {
            // SAFETY: a published chunk is CHUNK leaked records.
            let g = unsafe { &*base.add(i) };
            if g.id.load(Ordering::Relaxed) != 0 {
                f(g);
            }
        }
    }
}

/// The free records, locked. The task taking the lock is not preempted
/// while it holds it: a task stopped for the collector with the list
/// locked would block every M that ends a task (on g0, holding a running
/// P) in `release`, and the world would never stop. Drop the pair whole
/// (the guard goes first).
fn free_records() -> (std::sync::MutexGuard<'static, Vec<&'static G>>, NoPreempt) {
    let np = NoPreempt::new();
    (GFREE.lock().unwrap_or_else(|e| e.into_inner()), np)
}

/// A free record.
fn take_record() -> &'static G {
    // Dropped whole: the lock first, then the NoPreempt (tuple order).
    let mut locked = free_records();
    let free = &mut locked.0;
    if let Some(g) = free.pop() {
        return g;
    }
    let n = NCHUNK_USED.load(Ordering::Relaxed);
    assert!(n < NCHUNKS, "cgocheck: more than {} tasks alive", NCHUNKS * CHUNK);
    let chunk: &'static [G] = Box::leak((0..CHUNK).map(|_| G::empty()).collect::<Vec<_>>().into_boxed_slice());
    ALLG[n].store(chunk.as_ptr() as *mut G, Ordering::Release);
    NCHUNK_USED.store(n + 1, Ordering::Release);
    free.extend(chunk[1..].iter().rev());
    &chunk[0]
}

/// Most tasks alive at once as far as kernel mappings go, and
/// `vm.max_map_count`; None when stacks add no mappings (guard regions,
/// Linux 6.13+: then the task records and the stack range are the limits).
/// With the `mprotect` guards of older kernels each task stack is two
/// mappings, and the kernel limits a process's mappings to
/// `vm.max_map_count` (65530 by default: 28,669 tasks); past that, stacks
/// cannot be made.
fn task_limit() -> Option<(usize, usize)> {
    static LIMIT: OnceLock<Option<(usize, usize)>> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let per_task = heap().stack_mappings_per_task();
        (per_task > 0).then(|| {
            let max_maps = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .unwrap_or(65530);
            // Leave room for the program's own mappings and the Ms' threads.
            (max_maps.saturating_sub(8192) / per_task, max_maps)
        })
    })
}

/// A counted reference to a task record.
pub(crate) struct TaskRef(&'static G);

impl TaskRef {
    /// Takes one more reference to `g`, which must be alive (referenced).
    pub(crate) fn from_live(g: &'static G) -> TaskRef {
        g.refs.fetch_add(1, Ordering::Relaxed);
        TaskRef(g)
    }

    #[inline]
    pub(crate) fn g(&self) -> &'static G {
        self.0
    }
}

impl Clone for TaskRef {
    fn clone(&self) -> TaskRef {
        TaskRef::from_live(self.0)
    }
}

impl Drop for TaskRef {
    fn drop(&mut self) {
        release(self.0);
    }
}

/// Drops one reference to `g`; the last one frees the record.
pub(crate) fn release(g: &'static G) {
    if g.refs.fetch_sub(1, Ordering::Release) == 1 {
        fence(Ordering::Acquire);
        g.id.store(0, Ordering::Relaxed);
        g.status.store(status::FREE, Ordering::Relaxed);
        free_records().0.push(g);
    }
}

/// Creates a runnable (not yet queued) task with a stack of `stack_size`
/// bytes running `entry`. Returns a handle; the scheduler's own reference is
/// the second one.
pub(crate) fn new_task(stack_size: usize, entry: Entry) -> TaskRef {
    let live = LIVE.fetch_add(1, Ordering::Relaxed);
    if let Some((_, max_maps)) = task_limit().filter(|&(limit, _)| live >= limit) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
        panic!(
            "cgocheck: cannot start another task: {live} tasks are alive, the most this system allows \
             (this kernel has no guard regions, Linux 6.13+, so each task stack is two mappings and \
             vm.max_map_count is {max_maps}); let tasks finish before starting more, or raise vm.max_map_count"
        );
    }
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let g = take_record();
    let stack = heap().try_alloc_stack(stack_size, id).unwrap_or_else(|why| {
        free_records().0.push(g);
        LIVE.fetch_sub(1, Ordering::Relaxed);
        panic!("cgocheck: cannot start another task: {live} tasks are alive, and {why}")
    });
    g.stack_lo.store(stack.lo, Ordering::Relaxed);
    g.stack_hi.store(stack.hi, Ordering::Relaxed);
    {
        let _np = NoPreempt::new();
        *g.entry.lock().unwrap_or_else(|e| e.into_inner()) = Some(entry);
    }
    // SAFETY: the stack is fresh, 8 KiB aligned, and nothing runs on it.
    let sp = unsafe { crate::arch::init_task_stack(stack.hi, g as *const G as *const c_void, task_main) };
    g.sched_sp.store(sp, Ordering::Relaxed);
    g.syscall_sp.store(0, Ordering::Relaxed);
    g.park.reset();
    g.lockedm.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.locked_ext.store(0, Ordering::Relaxed);
    g.locked_int.store(0, Ordering::Relaxed);
    g.m.store(std::ptr::null_mut(), Ordering::Relaxed);
    g.wait_reason.store(0, Ordering::Relaxed);
    g.status.store(status::RUNNABLE, Ordering::Relaxed);
    g.refs.store(2, Ordering::Relaxed);
    // Release: whoever finds the record by its id sees it initialised.
    g.id.store(id, Ordering::Release);
    TaskRef(g)
}

/// The first Rust code of every task, called by `task_bootstrap` on the
/// task's stack: runs the body, then ends the task.
unsafe extern "C" fn task_main(arg: *mut c_void) -> ! {
    // SAFETY: init_task_stack was given the task's record, never freed.
    let g: &'static G = unsafe { &*(arg as *const G) };
    let np = NoPreempt::new();
    let entry = g.entry.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(np);
    if let Some(mut entry) = entry {
        // The body catches its own panics (spawn and run wrap it). The
        // entry (still registered) is dropped when it returns.
        entry.run();
    }
    schedule::exit_current()
}

/// The task running on this thread, if any.
pub(crate) fn current_g() -> Option<&'static G> {
    // SAFETY: Ms are never freed.
    unsafe { current_m().as_ref() }.and_then(M::curg)
}

/// Blocks the current task until its token is set, recording `reason`.
pub(crate) fn park_current(reason: WaitReason) {
    let g = current_g().expect("park_current outside a task");
    g.park.park(|| {
        g.wait_reason.store(reason as u8, Ordering::Relaxed);
        schedule::park_current();
        g.wait_reason.store(0, Ordering::Relaxed);
    });
}

/// Sets `g`'s token; makes it runnable if it was parked.
pub(crate) fn unpark_g(g: &'static G) {
    if g.park.unpark() {
        schedule::ready(g);
    }
}

/// A handle to a task: its id, and a way to wake it from [`park`].
#[derive(Clone)]
pub struct Task(pub(crate) TaskRef);

impl Task {
    /// The task's id (1-based, unique in the process).
    pub fn id(&self) -> u64 {
        self.0.g().id()
    }

    /// Makes the task's next (or current) [`park`] return. Tokens do not
    /// accumulate: several unparks before a park release one park.
    pub fn unpark(&self) {
        unpark_g(self.0.g());
    }
}

impl PartialEq for Task {
    fn eq(&self, other: &Task) -> bool {
        std::ptr::eq(self.0.g(), other.0.g())
    }
}
impl Eq for Task {}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Task({})", self.id())
    }
}

/// The task calling this.
///
/// # Panics
/// Outside a task (on a thread that is not running one).
pub fn current_task() -> Task {
    match current_g() {
        Some(g) => Task(TaskRef::from_live(g)),
        None => panic!("cgocheck::current_task called outside a task; start the runtime with cgocheck::run"),
    }
}

/// Blocks the calling task until [`Task::unpark`] is called for it (or
/// returns at once if it was called since the last park). Like
/// `std::thread::park`, it may also return spuriously: park in a loop that
/// checks a condition. On a thread that is not running a task, it is
/// `std::thread::park`.
pub fn park() {
    if current_g().is_some() {
        park_current(WaitReason::Park);
    } else {
        std::thread::park();
    }
}

/// Who to wake: a task, or a plain thread blocked on a task's result or a
/// channel.
pub(crate) enum Waiter {
    Task(TaskRef),
    Thread(std::thread::Thread),
}

impl Waiter {
    /// The caller.
    pub(crate) fn current() -> Waiter {
        match current_g() {
            Some(g) => Waiter::Task(TaskRef::from_live(g)),
            None => Waiter::Thread(std::thread::current()),
        }
    }

    pub(crate) fn wake(&self) {
        match self {
            Waiter::Task(t) => unpark_g(t.g()),
            Waiter::Thread(t) => t.unpark(),
        }
    }
}

/// Blocks the caller (task or thread) once; callers loop on their
/// condition.
pub(crate) fn block(reason: WaitReason) {
    if current_g().is_some() {
        park_current(reason);
    } else {
        std::thread::park();
    }
}

/// Where a task's result waits for `join`.
///
/// The result sits in Rust memory from the task's end until `join` takes
/// it, so the packet is a record of the collector's root registry
/// (`gc/roots.rs`): registered when made, unregistered when freed; while
/// it holds a result, the result's bytes are scanned (conservatively). Its
/// lock is taken under a `NoPreempt` guard (the collector takes it with the
/// world stopped).
#[repr(C)]
struct Packet<R> {
    node: Node,
    state: Mutex<PacketState<R>>,
}

struct PacketState<R> {
    result: Option<std::thread::Result<R>>,
    waiter: Option<Waiter>,
    /// The JoinHandle was dropped without joining.
    detached: bool,
}

/// The registry's scan function for a `Packet<R>`: its result, if any.
///
/// # Safety
/// `node` is the node of a live `Packet<R>` (roots::ScanFn).
unsafe fn scan_packet<R>(node: *const Node, sink: &mut dyn Sink) {
    // SAFETY: the packet is alive while registered.
    let packet = unsafe { &*node.cast::<Packet<R>>() };
    let st = roots::lock(&packet.state);
    if st.result.is_some() {
        // SAFETY: the result is alive while the lock is held.
        unsafe { roots::scan_value(sink, &raw const st.result) };
    }
}

impl<R> Packet<R> {
    /// A registered packet (in an `Arc`, so it does not move).
    fn new() -> Arc<Packet<R>> {
        let packet = Arc::new(Packet {
            node: Node::new(scan_packet::<R>),
            state: Mutex::new(PacketState { result: None, waiter: None, detached: false }),
        });
        // SAFETY: the Arc's contents do not move, and `Drop` unregisters
        // before they are freed; no lock is held.
        unsafe { packet.node.register() };
        packet
    }

    /// The state; the caller holds `_np` (taken before, dropped after).
    fn lock(&self, _np: &NoPreempt) -> std::sync::MutexGuard<'_, PacketState<R>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The task finished with `r`.
    fn complete(&self, id: u64, r: std::thread::Result<R>) {
        let np = NoPreempt::new();
        let mut st = self.lock(&np);
        if st.detached {
            drop(st);
            drop(np);
            if let Err(payload) = r {
                fatal_task_panic(id, &*payload);
            }
            return;
        }
        st.result = Some(r);
        let w = st.waiter.take();
        drop(st);
        drop(np);
        if let Some(w) = w {
            w.wake();
        }
    }
}

impl<R> Drop for Packet<R> {
    fn drop(&mut self) {
        // A result never joined moves to this frame before the packet
        // leaves the registry, so its destructor finds what it refers to
        // alive.
        // Locked, not `get_mut`: the collector may be reading the packet (a
        // plain thread can drop one while the world is stopped).
        let np = NoPreempt::new();
        let result = self.lock(&np).result.take();
        drop(np);
        // SAFETY: registered by `new`, unregistered only here.
        unsafe { self.node.unregister() };
        drop(result);
    }
}

/// An unrecovered panic in a task nobody joins (or in `run`'s main task):
/// the crash report prints it with the task's frames, and the process exits
/// with status 2, as Go does for a panic that reaches the top of a
/// goroutine.
pub(crate) fn fatal_task_panic(id: u64, payload: &(dyn Any + Send)) -> ! {
    crate::signal::report_fatal_panic(id, payload)
}

/// An owned permission to wait for a task and take its result
/// (`std::thread::JoinHandle`'s counterpart).
///
/// Dropping it without joining detaches the task; a detached task that
/// panics ends the process with a report (exit status 2), as an unrecovered
/// panic does in Go.
pub struct JoinHandle<R> {
    task: Task,
    packet: Arc<Packet<R>>,
    joined: bool,
}

impl<R> JoinHandle<R> {
    /// The task.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The task has finished (join will not block).
    pub fn is_finished(&self) -> bool {
        let np = NoPreempt::new();
        let done = self.packet.lock(&np).result.is_some();
        drop(np);
        done
    }

    /// Waits for the task to finish and returns its result. If the task
    /// panicked, the panic continues in the caller (`resume_unwind`). From a
    /// task it parks; from a plain thread it blocks the thread.
    pub fn join(mut self) -> R {
        self.joined = true;
        let r = loop {
            let waiter = Waiter::current();
            let np = NoPreempt::new();
            let mut st = self.packet.lock(&np);
            if let Some(r) = st.result.take() {
                drop(st);
                drop(np);
                break r;
            }
            let old = st.waiter.replace(waiter);
            drop(st);
            drop(np);
            drop(old);
            block(WaitReason::Join);
        };
        match r {
            Ok(v) => v,
            Err(payload) => resume_unwind(payload),
        }
    }
}

impl<R> Drop for JoinHandle<R> {
    fn drop(&mut self) {
        if self.joined {
            return;
        }
        let np = NoPreempt::new();
        let mut st = self.packet.lock(&np);
        st.detached = true;
        if let Some(Err(_)) = st.result {
            let Some(Err(payload)) = st.result.take() else { unreachable!() };
            drop(st);
            drop(np);
            fatal_task_panic(self.task.id(), &*payload);
        }
    }
}

impl<R> fmt::Debug for JoinHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JoinHandle({})", self.task.id())
    }
}

/// Starts a task running `f` on a stack of the default size
/// (`CGOCHECK_STACK_KB`, 16 MiB unless set; reserved, resident only as
/// used). Starts the runtime if needed (without a main task: callable from
/// any thread).
///
/// # Panics
/// When no more tasks can be created (the message says why).
pub fn spawn<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    spawn_with_stack(super::config::config().stack_size, f)
}

/// [`spawn`] with a stack of at least `stack_size` usable bytes.
///
/// # Panics
/// If `stack_size` is below 16 KiB or above 1 GiB, or as [`spawn`].
pub fn spawn_with_stack<F, R>(stack_size: usize, f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    assert!(
        ((MIN_STACK_KB << 10)..=(MAX_STACK_KB << 10)).contains(&stack_size),
        "cgocheck::spawn_with_stack: a stack of {stack_size} bytes; accepted sizes are {} KiB to {} KiB",
        MIN_STACK_KB,
        MAX_STACK_KB
    );
    schedule::ensure_started();
    let packet = Packet::new();
    let their = packet.clone();
    let body = move || {
        let r = task_local::drop_all_into(catch_unwind(AssertUnwindSafe(f)));
        their.complete(current_g().map_or(0, G::id), r);
    };
    // Two references: this handle's, and the scheduler's (dropped when the
    // task ends).
    let t = new_task(stack_size, Entry::new(body));
    let g = t.g();
    let task = Task(t);
    schedule::ready(g);
    // Spawning is a safepoint (the collector's stop waits for none longer).
    crate::gc::stw::safepoint();
    JoinHandle { task, packet, joined: false }
}

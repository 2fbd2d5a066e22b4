//! Marking: finding every object reachable from the roots, world stopped.
//!
//! Each span has one mark bit per slot (slot 0 for a large object; stacks
//! have none: they are freed when their task ends). A [`Marker`] is one
//! marking thread's state: a mark stack of objects marked but not yet
//! scanned, and the live bytes and objects it marked.
//!
//! - [`Marker::mark_word`] takes any word. If it points into a live object
//!   of the object range (interior pointers count), that object's mark bit
//!   is set with an atomic OR (several markers run at once; the one that
//!   flips the bit counts the object and, if its layout holds pointers,
//!   pushes it). Anything else — null, a small integer, the zero-sized
//!   address, a free or never-allocated slot, a span's tail, a page with
//!   no span, a task stack, C memory — is ignored: the lookup is a range
//!   test, one page-table load and the slot's bits, and never faults.
//! - Draining pops an object and scans it *precisely*: only the words its
//!   layout's pointer bitmap names (`Layout::ptr_bits`, the bits the
//!   checker reads), each given to `mark_word`. A word holding an address
//!   in a non-pointer field keeps nothing alive. A large object is scanned
//!   in 128 KiB pieces, the rest pushed back, so other markers can take
//!   part of a big array.
//! - Roots come through [`Marker::scan_range`] (conservative: every aligned
//!   word, read with `conservative::read_word` since stack words may be
//!   uninitialised) and [`Marker::scan_with_bits`] (precise: globals).
//!
//! Nothing here allocates Rust memory (the world is stopped and a stopped
//! task may hold the allocator's lock): mark stacks are chunks of mapped
//! memory (256 KiB each), taken from a pool that grows by mapping more and
//! never shrinks (its size is the deepest mark stack ever needed).
//!
//! Parallel marking ([`mark_cycle`]): the roots are fed to one marker on
//! the collector thread, and it and up to `workers - 1` mark threads drain
//! together. The mark threads are plain threads (never Ms), started once,
//! outside a stop ([`ensure_workers`]), woken per cycle (before the roots
//! are scanned) and counted as they join: a thread the OS has not
//! scheduled by the time the work is done is not waited for. Work is
//! shared through one list of full chunks under a spin lock: a marker
//! whose chunk fills publishes it, and while some marker waits for work and
//! the list is empty, a busy marker hands over half of its chunk. A marker
//! with nothing left waits; marking ends when no marker is active (an
//! idle marker never publishes, and a marker goes idle only after seeing
//! the list empty, so then the list stays empty).

use crate::conservative::read_word;
use crate::heap::arena::Arena;
use crate::heap::heap;
use crate::heap::sizeclass::PAGE_SHIFT;
use crate::heap::span::{for_each_span, Span, SpanKind};
use bitvec::prelude::*;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering::*};
use std::sync::{Condvar, Mutex};

/// What a mark phase found.
pub(crate) struct Marked {
    pub live_bytes: usize,
    pub live_objects: usize,
    /// Threads that marked.
    pub workers: usize,
}

/// Bytes of one mark-stack chunk.
const CHUNK_BYTES: usize = 256 << 10;
/// Entries per chunk (after the header).
const CHUNK_CAP: usize = (CHUNK_BYTES - 16) / std::mem::size_of::<Work>();
/// A large object is scanned this many bytes at a time.
const LARGE_PIECE: usize = 128 << 10;
/// Most mark threads besides the collector thread.
const MAX_WORKERS: usize = 63;

/// One object (or, for a large object, the piece starting at `addr`) to
/// scan.
#[derive(Clone, Copy)]
struct Work {
    addr: usize,
    span: *const Span,
}

/// A mark-stack chunk in mapped memory.
#[repr(C)]
struct Chunk {
    next: *mut Chunk,
    len: usize,
    work: [Work; CHUNK_CAP],
}

/// A stack of chunks under a spin lock (the pool of empty chunks, the list
/// of full ones). Spinning is fine: it is held for a few instructions.
struct ChunkList {
    locked: AtomicBool,
    head: AtomicPtr<Chunk>,
    /// Chunks on the list (a lock-free emptiness test).
    len: AtomicUsize,
}

impl ChunkList {
    const fn new() -> ChunkList {
        ChunkList { locked: AtomicBool::new(false), head: AtomicPtr::new(ptr::null_mut()), len: AtomicUsize::new(0) }
    }

    fn lock(&self) {
        while self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::hint::spin_loop();
        }
    }

    fn push(&self, c: *mut Chunk) {
        self.lock();
        // SAFETY: `c` is a mapped chunk owned by the caller until now; the
        // lock makes this the only writer of the list.
        unsafe { (*c).next = self.head.load(Relaxed) };
        self.head.store(c, Relaxed);
        self.len.fetch_add(1, SeqCst);
        self.locked.store(false, Release);
    }

    fn pop(&self) -> Option<*mut Chunk> {
        if self.len.load(SeqCst) == 0 {
            return None;
        }
        self.lock();
        let c = self.head.load(Relaxed);
        if !c.is_null() {
            // SAFETY: chunks on the list are mapped and owned by the list;
            // the lock makes this the only reader of `next`.
            self.head.store(unsafe { (*c).next }, Relaxed);
            self.len.fetch_sub(1, SeqCst);
        }
        self.locked.store(false, Release);
        (!c.is_null()).then_some(c)
    }
}

/// Empty chunks.
static POOL: ChunkList = ChunkList::new();
/// Full chunks waiting for a marker.
static SHARED: ChunkList = ChunkList::new();
/// Markers draining now (termination, module comment).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// Markers waiting for work (a busy marker then shares).
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// An empty chunk: from the pool, else freshly mapped.
fn empty_chunk() -> *mut Chunk {
    if let Some(c) = POOL.pop() {
        // SAFETY: a pooled chunk is mapped and ours now.
        unsafe { (*c).len = 0 };
        return c;
    }
    // SAFETY: an anonymous private mapping at an address the kernel picks;
    // it overlaps nothing. On failure it returns MAP_FAILED, checked.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            CHUNK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        // No allocation, no formatting with the world stopped: a fixed
        // message, then abort.
        const MSG: &[u8] = b"cgocheck: fatal: cannot map memory for the collector's mark stack\n";
        // SAFETY: writing a static buffer to stderr.
        unsafe { libc::write(2, MSG.as_ptr().cast(), MSG.len()) };
        std::process::abort();
    }
    // A fresh mapping is zero: `len` 0, `next` null.
    p as *mut Chunk
}

/// One marking thread's state (module comment).
pub(crate) struct Marker {
    /// The chunk being pushed to and popped from (never null).
    cur: *mut Chunk,
    /// The object range `[base, base + len)` (0, 0 before the heap exists:
    /// then nothing is a heap object).
    base: usize,
    len: usize,
    arena: Option<&'static Arena>,
    live_bytes: usize,
    live_objects: usize,
    /// No other marker runs this cycle: mark bits are set without a
    /// locked instruction.
    alone: bool,
}

impl Marker {
    fn new(alone: bool) -> Marker {
        let arena = heap().arena_if_reserved();
        Marker {
            alone,
            cur: empty_chunk(),
            base: arena.map_or(0, |a| a.base),
            len: arena.map_or(0, |a| a.len),
            arena,
            live_bytes: 0,
            live_objects: 0,
        }
    }

    /// `word` may be a pointer: if it points anywhere into a live heap
    /// object, marks that object (and queues it for scanning if it holds
    /// pointers). Any other value is ignored.
    #[inline(always)]
    pub fn mark_word(&mut self, word: usize) {
        let off = word.wrapping_sub(self.base);
        if off >= self.len {
            return;
        }
        let Some(arena) = self.arena else { return };
        let Some(span) = arena.object_span_at(off >> PAGE_SHIFT) else { return };
        match span.kind {
            SpanKind::Small { .. } => {
                let slot = span.slot_of(word);
                if slot < span.nslots && span.is_allocated(slot) {
                    self.mark_slot(span, slot);
                }
            }
            SpanKind::Large => {
                if span.is_allocated(0) && word - span.base() < span.large_size() {
                    self.mark_slot(span, 0);
                }
            }
            SpanKind::Stack => {}
        }
    }

    /// Marks live slot `slot` of `span`; counts and queues it if this
    /// marker set the bit.
    #[inline(always)]
    fn mark_slot(&mut self, span: &'static Span, slot: usize) {
        let first = if self.alone { span.try_mark_alone(slot) } else { span.try_mark(slot) };
        if !first {
            return;
        }
        let large = span.kind == SpanKind::Large;
        self.live_bytes += if large { span.large_size() } else { span.slot_size };
        self.live_objects += 1;
        if span.layout().has_pointers() {
            self.push(Work { addr: span.base() + slot * span.slot_size, span });
        }
    }

    #[inline(always)]
    fn push(&mut self, w: Work) {
        // SAFETY: `cur` is a mapped chunk this marker owns.
        if unsafe { (*self.cur).len } == CHUNK_CAP {
            SHARED.push(self.cur);
            self.cur = empty_chunk();
        }
        // SAFETY: as above (possibly the fresh chunk, which has room).
        let c = unsafe { &mut *self.cur };
        c.work[c.len] = w;
        c.len += 1;
        // A plain load of a line that is written only when a marker goes
        // idle or busy again: almost free while nobody waits.
        if WAITING.load(Relaxed) > 0 && c.len >= 4 && SHARED.len.load(Relaxed) == 0 {
            self.share_half();
        }
    }

    /// Someone waits and the list is empty: hands over the older half of
    /// this marker's chunk.
    #[cold]
    fn share_half(&mut self) {
        let half = empty_chunk();
        // SAFETY: both chunks are mapped and owned by this marker; they
        // are distinct, so the two references do not alias.
        let (c, h) = unsafe { (&mut *self.cur, &mut *half) };
        let n = c.len / 2;
        h.work[..n].copy_from_slice(&c.work[..n]);
        h.len = n;
        c.work.copy_within(n..c.len, 0);
        c.len -= n;
        SHARED.push(half);
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Work> {
        // SAFETY: `cur` is a mapped chunk this marker owns.
        if unsafe { (*self.cur).len } == 0 {
            let full = SHARED.pop()?;
            POOL.push(self.cur);
            self.cur = full;
        }
        // SAFETY: as above; a chunk from the shared list is never empty
        // (full, or half of one of at least 4 entries).
        let c = unsafe { &mut *self.cur };
        c.len -= 1;
        Some(c.work[c.len])
    }

    /// Scans what `w` names: an object, or a piece of a large one.
    #[inline]
    fn scan(&mut self, w: Work) {
        // SAFETY: `w.span` came from the page table: spans are never freed.
        let span = unsafe { &*w.span };
        let Some(arena) = self.arena else { return };
        let layout = span.layout();
        match span.kind {
            SpanKind::Large => {
                let size = span.large_size();
                let count = span.count(layout, 0);
                let bits = layout.ptr_bits(count, size, arena.zero);
                let base = span.base();
                let from = w.addr - base;
                let to = size.min(from + LARGE_PIECE);
                if to < size {
                    self.push(Work { addr: base + to, span });
                }
                let words = bits.len().min(to / 8);
                // SAFETY: the object is live and lies in committed pages;
                // its pointer words are initialised pointer values or null.
                unsafe { self.scan_with_bits(w.addr, &bits[(from / 8).min(words)..words]) };
            }
            _ if layout.has_mask => {
                // SAFETY: as above, for a small slot; the mask names its
                // pointer words.
                unsafe { self.scan_mask(w.addr, layout.slot_mask) };
            }
            _ => {
                let slot = span.slot_of(w.addr);
                let count = span.count(layout, slot);
                let bits = layout.ptr_bits(count, span.slot_size, arena.zero);
                // SAFETY: as above, for a small slot.
                unsafe { self.scan_with_bits(w.addr, bits) };
            }
        }
    }

    /// Scans `[lo, hi)` conservatively: every 8-byte aligned word in it.
    ///
    /// # Safety
    /// The range is mapped and readable for the duration of the call.
    pub unsafe fn scan_range(&mut self, lo: usize, hi: usize) {
        let mut p = lo.next_multiple_of(8);
        while p + 8 <= hi {
            // SAFETY: aligned, inside the range the caller vouches for.
            let w = unsafe { read_word(p as *const usize) };
            self.mark_word(w);
            p += 8;
        }
    }

    /// Scans the words at `addr` whose bits are set in `bits` (bit `i`:
    /// the word at `addr + 8 i`), precisely.
    ///
    /// # Safety
    /// Those words are mapped and readable.
    pub unsafe fn scan_with_bits(&mut self, addr: usize, bits: &BitSlice<u64, Lsb0>) {
        // 64 bits at a time (a window of the layout's bits may start
        // anywhere in a word; `load_le` shifts it into place).
        for (i, chunk) in bits.chunks(64).enumerate() {
            // SAFETY: the caller vouches for the words the bits name.
            unsafe { self.scan_mask(addr + 512 * i, chunk.load_le::<u64>()) };
        }
    }

    /// Scans the words at `addr` whose bits are set in `mask` (bit `i`:
    /// the word at `addr + 8 i`), precisely.
    ///
    /// # Safety
    /// Those words are mapped and readable.
    #[inline(always)]
    unsafe fn scan_mask(&mut self, addr: usize, mut mask: u64) {
        while mask != 0 {
            let i = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            // SAFETY: the caller vouches for the words the bits name;
            // `addr` is word-aligned (objects and globals are).
            let w = unsafe { read_word((addr + 8 * i) as *const usize) };
            self.mark_word(w);
        }
    }

    /// Drains with the other markers until no marker has work (module
    /// comment). The caller counted itself in `ACTIVE`.
    fn drain(&mut self) {
        loop {
            while let Some(w) = self.pop() {
                self.scan(w);
            }
            WAITING.fetch_add(1, SeqCst);
            ACTIVE.fetch_sub(1, SeqCst);
            let mut spins = 0u32;
            loop {
                if SHARED.len.load(SeqCst) > 0 {
                    ACTIVE.fetch_add(1, SeqCst);
                    WAITING.fetch_sub(1, SeqCst);
                    break;
                }
                if ACTIVE.load(SeqCst) == 0 {
                    WAITING.fetch_sub(1, SeqCst);
                    return;
                }
                // Spin a little, then give the CPU to the markers that
                // have work (there may be fewer free cores than markers):
                // a few yields, then short sleeps (one of them is the most
                // this marker adds to the end of the mark phase).
                spins += 1;
                if spins < 100 {
                    std::hint::spin_loop();
                } else if spins < 110 {
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        POOL.push(self.cur);
    }
}

/// The mark threads and the collector's handshake with them.
struct Workers {
    /// Threads started.
    started: usize,
    /// Cycle number the threads are asked to join (incremented per cycle).
    round: u64,
    /// Threads wanted this round.
    wanted: usize,
    /// Whether threads may still join this round (closed when the
    /// collector thread has drained: a thread that arrives later would find
    /// nothing, and the pause does not wait for it to be scheduled).
    open: bool,
    /// Threads that joined this round.
    joined: usize,
    /// Threads that finished this round.
    done: usize,
    live_bytes: usize,
    live_objects: usize,
}

static WORKERS: Mutex<Workers> = Mutex::new(Workers {
    started: 0,
    round: 0,
    wanted: 0,
    open: false,
    joined: 0,
    done: 0,
    live_bytes: 0,
    live_objects: 0,
});
static WORKERS_CV: Condvar = Condvar::new();

fn workers_lock() -> std::sync::MutexGuard<'static, Workers> {
    WORKERS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts mark threads until `n - 1` run beside the collector thread (at
/// most 63). Call with the world running: starting a thread allocates.
pub(crate) fn ensure_workers(n: usize) {
    let want = n.saturating_sub(1).min(MAX_WORKERS);
    let mut w = workers_lock();
    while w.started < want {
        let round = w.round;
        std::thread::Builder::new()
            .name("cgocheck-mark".into())
            .spawn(move || worker(round))
            .expect("cgocheck: cannot start a mark thread");
        w.started += 1;
    }
}

/// A mark thread: waits for a round it is wanted in, drains, reports.
fn worker(mut seen: u64) {
    loop {
        {
            let mut w = workers_lock();
            loop {
                if w.round != seen {
                    seen = w.round;
                    if w.open && w.joined < w.wanted {
                        w.joined += 1;
                        // Counted active before it can take work (module
                        // comment: termination).
                        ACTIVE.fetch_add(1, SeqCst);
                        break;
                    }
                }
                w = WORKERS_CV.wait(w).unwrap_or_else(|e| e.into_inner());
            }
        }
        let mut m = Marker::new(false);
        m.drain();
        let mut w = workers_lock();
        w.live_bytes += m.live_bytes;
        w.live_objects += m.live_objects;
        w.done += 1;
        WORKERS_CV.notify_all();
    }
}

/// Only one mark-and-sweep setup at a time: taken by [`mark_cycle`],
/// released by `sweep::begin_cycle` (the collector's cycles are serial
/// anyway; the test hooks in `heap::testing` run the same two steps).
static CYCLE_BUSY: AtomicBool = AtomicBool::new(false);

/// Releases what [`mark_cycle`] took (`sweep::begin_cycle` calls it).
pub(crate) fn end_cycle() {
    CYCLE_BUSY.store(false, Release);
}

/// Marks everything reachable from `roots` (called once, on one marker),
/// draining on up to `workers` threads. The world is stopped.
pub(crate) fn mark_cycle(roots: &(dyn Fn(&mut Marker) + Sync), workers: usize) -> Marked {
    while CYCLE_BUSY.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
        std::thread::yield_now();
    }
    // Mark threads join only if started (never started here: the world
    // is stopped). They are woken before the roots are scanned, so that
    // they are running by the time there is work to share, and join as
    // they come: the collector thread does not wait for one that is not
    // scheduled yet.
    let helpers = workers.saturating_sub(1).min(workers_lock().started);
    let mut m = Marker::new(helpers == 0);
    {
        let mut w = workers_lock();
        ACTIVE.store(1, SeqCst);
        w.round += 1;
        w.wanted = helpers;
        w.open = true;
        w.joined = 0;
        w.done = 0;
        w.live_bytes = 0;
        w.live_objects = 0;
        WORKERS_CV.notify_all();
    }
    roots(&mut m);
    m.drain();
    let (bytes, objects, joined) = {
        let mut w = workers_lock();
        w.open = false;
        while w.done < w.joined {
            w = WORKERS_CV.wait(w).unwrap_or_else(|e| e.into_inner());
        }
        (w.live_bytes, w.live_objects, w.joined)
    };
    Marked { live_bytes: m.live_bytes + bytes, live_objects: m.live_objects + objects, workers: 1 + joined }
}

/// Marks every pinned live object (a root: its referents must live, and
/// it must not be freed). World stopped; lock-free.
pub(crate) fn mark_pinned(m: &mut Marker) {
    for_each_span(|span| {
        span.for_each_pinned(|slot| {
            if slot < span.nslots && span.is_allocated(slot) {
                m.mark_slot(span, slot);
            }
        })
    });
}

/// Whether the object at `addr` (any address inside it) was marked by the
/// cycle whose mark phase just ended (valid between `mark_cycle` and
/// `sweep::begin_cycle`). Addresses that are no heap object (C memory,
/// globals, stacks, the zero-sized address) are never collected: true. A
/// free slot: false.
pub(crate) fn is_marked(addr: usize) -> bool {
    let Some(arena) = heap().arena_if_reserved() else { return true };
    let off = addr.wrapping_sub(arena.base);
    if off >= arena.len {
        return true;
    }
    let Some(span) = arena.object_span_at(off >> PAGE_SHIFT) else { return off == 0 };
    match span.kind {
        SpanKind::Small { .. } => {
            let slot = span.slot_of(addr);
            slot < span.nslots && span.is_allocated(slot) && span.is_marked(slot)
        }
        SpanKind::Large => span.is_allocated(0) && span.is_marked(0),
        SpanKind::Stack => true,
    }
}

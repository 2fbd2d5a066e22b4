//! The heap's address range: one reservation, its page tables, its zero bits.
//!
//! At first use the heap reserves one contiguous range of address space
//! with `PROT_NONE` and `MAP_NORESERVE`: no memory, no commit charge,
//! nothing else can be mapped there. Because everything the heap hands out —
//! small spans, large objects, task stacks, and the zero-sized-allocation
//! address — lies in this one range, "is this address managed heap?" is a
//! single subtract and compare, the first thing `region()` does.
//!
//! The range has two parts: the object range (64 GiB, `len` bytes from
//! `base`), then the stack range (32 TiB, up to `base + reserved`), or less
//! of both if the system refuses. Objects are placed from the bottom of
//! theirs up, stacks from the top of theirs down (central.rs). 32 TiB holds
//! the 1,048,576 task records' worth of default 16 MiB stacks (16.25 TiB
//! with their guards) and room for larger ones, in a quarter of x86_64's
//! 128 TiB of user address space. Pages are made readable and writable
//! ("committed") in chunks as each part fills; untouched committed pages
//! still cost no physical memory until written. The two parts are advised
//! differently:
//!
//! - object chunks (64 MiB) are advised `MADV_HUGEPAGE` (the range is 2 MiB
//!   aligned for that): a heap is filled front to back, and one fault per
//!   2 MiB instead of per 4 KiB is most of the cost of allocating from fresh
//!   memory.
//! - stack chunks (1 GiB) are advised `MADV_NOHUGEPAGE`: a stack is touched
//!   at its top only, and a huge page there would make 2 MiB resident for a
//!   few KiB used. (Measured before stacks had their own range: 10,000 idle
//!   tasks on 256 KiB stacks held 257 KiB of RSS each, every stack fully
//!   resident, no huge page left in `AnonHugePages` — the huge pages faulted
//!   in were split by the guard pages' `mprotect` into resident 4 KiB
//!   pages; without the advice the same tasks held 4.9 KiB each.)
//!
//! A stack's guard (below its lowest usable page) is made with
//! `madvise(MADV_GUARD_INSTALL)` where the kernel has it (Linux 6.13+):
//! a guard region is a marker in the page table, not a mapping, so stacks
//! add no mappings (a million live tasks: 53 mappings in all). Where it is missing (detected once,
//! when the range is reserved) the guard is `mprotect(PROT_NONE)`, which
//! splits the stack chunk: two mappings per stack, against the kernel's
//! `vm.max_map_count` (sched/task.rs turns that into a task limit).
//!
//! The range is in fact aligned to [`MAX_ALIGN`], 2^29, the largest
//! alignment Rust allows (`#[repr(align(N))]`): the zero-sized address (its
//! base) is then aligned for every type, and a span is aligned to any
//! alignment its page index is (central.rs). The slack this costs is
//! reserved address space, never memory.
//!
//! Beside the range live three more `MAP_NORESERVE` mappings, of which only
//! the entries of used pages are ever touched:
//!
//! - the page table: one `AtomicPtr<Span>` per 8 KiB page of the object
//!   range (64 MiB of address space for 64 GiB). Null means "no span here".
//! - the stack table: one `AtomicPtr<Span>` per [`STACK_GRANULE`] (256 KiB)
//!   of the stack range (1 GiB for 32 TiB). Stack runs are whole granules,
//!   so a 16 MiB stack writes 65 entries (520 bytes), where one entry per
//!   page would write 16 KiB — resident memory for every task.
//! - the zero region: `len / 64` read-only bytes, one bit per word of the
//!   object range, never written. It is the pointer bitmap of every
//!   pointer-free object: a window of it serves any object up to the size of the heap
//!   without allocating, and reading it maps only the kernel's zero page.
//!
//! Page 0 of the range is never given to a span: its first byte is the
//! address of every zero-sized allocation.

use super::sizeclass::{PAGE, PAGE_SHIFT};
use super::span::Span;
use bitvec::prelude::*;
use std::sync::atomic::{AtomicPtr, Ordering};

/// Transparent huge page size (x86_64 and aarch64 with 4 KiB base pages).
const HUGE_PAGE: usize = 2 << 20;

/// The largest alignment the heap serves: Rust's largest (2^29). The
/// range's base is aligned to it.
pub const MAX_ALIGN: usize = 1 << 29;
const _: () = assert!(MAX_ALIGN >= HUGE_PAGE && MAX_ALIGN.is_power_of_two());

/// Stack runs are whole granules, granule-aligned: one stack-table entry
/// per granule (256 KiB).
pub const STACK_GRANULE: usize = 256 << 10;
/// log2 of [`STACK_GRANULE`] in pages.
const GRANULE_PAGE_SHIFT: u32 = STACK_GRANULE.trailing_zeros() - PAGE_SHIFT;
const _: () =
    assert!(STACK_GRANULE.is_power_of_two() && STACK_GRANULE > PAGE && MAX_ALIGN.is_multiple_of(STACK_GRANULE));

/// Sizes tried for the reservation, (object range, stack range), largest
/// first (the file comment says why these).
const RESERVE_SIZES: [(usize, usize); 6] = [
    (64 << 30, 32 << 40),
    (64 << 30, 4 << 40),
    (64 << 30, 256 << 30),
    (16 << 30, 64 << 30),
    (4 << 30, 16 << 30),
    (1 << 30, 1 << 30),
];

/// `madvise` advice installing guard regions (Linux 6.13+, `MADV_GUARD_INSTALL`
/// in <linux/mman.h>; not in the `libc` crate yet).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// How stack guards are made on this kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackGuards {
    /// `madvise(MADV_GUARD_INSTALL)`: no mapping per stack.
    GuardRegions,
    /// `mprotect(PROT_NONE)` (kernels before 6.13): each stack splits its
    /// chunk, two mappings per stack.
    Mprotect,
}

/// The reserved range and its side tables. Immutable once built.
pub(crate) struct Arena {
    /// First address of the range (8 KiB aligned); also the zero-sized
    /// allocation address.
    pub base: usize,
    /// Bytes in the object range, `[base, base + len)`.
    pub len: usize,
    /// Bytes in the whole range: the stack range is `[base + len, base +
    /// reserved)`.
    pub reserved: usize,
    /// One entry per page of the object range.
    pages: &'static [AtomicPtr<Span>],
    /// One entry per [`STACK_GRANULE`] of the stack range.
    stacks: &'static [AtomicPtr<Span>],
    /// `len / 8` zero bits.
    pub zero: &'static BitSlice<u64, Lsb0>,
    /// How stack guards are made here.
    pub guards: StackGuards,
}

/// Maps `len` bytes of fresh anonymous memory with `prot`, reserving no swap.
fn map(len: usize, prot: libc::c_int) -> Option<usize> {
    // SAFETY: an anonymous private mapping at an address the kernel picks
    // (no MAP_FIXED) cannot overlap anything that exists; on failure mmap
    // returns MAP_FAILED and touches nothing.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    (p != libc::MAP_FAILED).then_some(p as usize)
}

/// A leaked, zero-filled table of `n` null span pointers in a fresh mapping.
fn span_table(n: usize, what: &str) -> &'static [AtomicPtr<Span>] {
    let table = map(n * std::mem::size_of::<AtomicPtr<Span>>(), libc::PROT_READ | libc::PROT_WRITE)
        .unwrap_or_else(|| panic!("cgocheck: cannot map the heap {what}"));
    // SAFETY: `table` is a fresh read-write mapping of exactly `n`
    // AtomicPtr-sized, page-aligned entries, zero-filled by the kernel
    // (all-zero is a valid null AtomicPtr); it is never unmapped, so
    // 'static holds, and only atomics access it.
    unsafe { std::slice::from_raw_parts(table as *const AtomicPtr<Span>, n) }
}

/// Whether this kernel installs guard regions: tried once on a scratch
/// page (an old kernel answers EINVAL to the unknown advice).
fn detect_guards() -> StackGuards {
    let page = map(2 * PAGE, libc::PROT_READ | libc::PROT_WRITE).expect("cgocheck: cannot map a scratch page");
    // SAFETY: our own fresh scratch mapping; a guard region in it changes
    // nothing else, and the mapping is unmapped right after, used by nobody.
    let r = unsafe { libc::madvise(page as *mut libc::c_void, PAGE, MADV_GUARD_INSTALL) };
    // SAFETY: as above; nothing refers to the scratch mapping.
    unsafe { libc::munmap(page as *mut libc::c_void, 2 * PAGE) };
    if r == 0 {
        StackGuards::GuardRegions
    } else {
        StackGuards::Mprotect
    }
}

impl Arena {
    /// Reserves the range, maps the side tables and finds out how stack
    /// guards are made.
    pub fn reserve() -> Arena {
        let (raw, len, stack_len) = RESERVE_SIZES
            .iter()
            .find_map(|&(len, stack_len)| {
                map(len + stack_len + MAX_ALIGN, libc::PROT_NONE).map(|p| (p, len, stack_len))
            })
            .expect("cgocheck: cannot reserve address space for the managed heap (tried 32 TiB down to 2 GiB)");
        // mmap aligns to the OS page (4 KiB); round up to MAX_ALIGN, which
        // is also a multiple of the huge page (so that committed chunks can
        // be backed by huge pages), of the stack granule and of the heap
        // page. The slack below `base` stays reserved, unused.
        let base = raw.next_multiple_of(MAX_ALIGN);
        let pages = span_table(len >> PAGE_SHIFT, "page table");
        let stacks = span_table(stack_len / STACK_GRANULE, "stack table");
        let zero_words = len / 8 / 64;
        let zero = map(zero_words * 8, libc::PROT_READ).expect("cgocheck: cannot map the heap zero bitmap");
        // SAFETY: `zero` is a fresh readable mapping of `zero_words` u64s,
        // all zero, never written (PROT_READ) nor unmapped.
        let zero_words = unsafe { std::slice::from_raw_parts(zero as *const u64, zero_words) };
        let reserved = len + stack_len;
        Arena { base, len, reserved, pages, stacks, zero: zero_words.view_bits(), guards: detect_guards() }
    }

    /// The span owning page `page` (an index into the whole range), if
    /// any: the page table's entry, or in the stack range the stack
    /// table's.
    #[inline]
    pub fn span_at(&self, page: usize) -> Option<&'static Span> {
        let p = match self.pages.get(page) {
            Some(e) => e.load(Ordering::Acquire),
            None => self.stacks[(page - self.pages.len()) >> GRANULE_PAGE_SHIFT].load(Ordering::Acquire),
        };
        // SAFETY: entries are null or point to a leaked `Span` that is never
        // freed (span.rs); the Acquire loads pair with the Release stores
        // in `publish` and `publish_stack`, so the span's fields are
        // initialised.
        unsafe { p.as_ref() }
    }

    /// The span owning page `page` of the object range (None past it or
    /// for no span): the collector's lookup, one load.
    #[inline(always)]
    pub fn object_span_at(&self, page: usize) -> Option<&'static Span> {
        // SAFETY: as `span_at`.
        unsafe { self.pages.get(page)?.load(Ordering::Acquire).as_ref() }
    }

    /// Makes the pages of `span` (small or large) resolve to it. Spans are
    /// published whole before their first object is handed out.
    pub fn publish(&self, span: &'static Span) {
        let first = (span.base() - self.base) >> PAGE_SHIFT;
        for e in &self.pages[first..first + span.npages()] {
            e.store(span as *const Span as *mut Span, Ordering::Release);
        }
    }

    /// Makes the `npages` pages at `base` resolve to no span (a retired
    /// span's, central.rs).
    pub fn unpublish(&self, base: usize, npages: usize) {
        let first = (base - self.base) >> PAGE_SHIFT;
        for e in &self.pages[first..first + npages] {
            e.store(std::ptr::null_mut(), Ordering::Release);
        }
    }

    /// Makes the granules of stack `span` resolve to it: from the granule
    /// holding its base (the guard below it starts there) to its end, a
    /// granule boundary.
    pub fn publish_stack(&self, span: &'static Span) {
        let stack_base = self.base + self.len;
        debug_assert_eq!((span.end() - stack_base) % STACK_GRANULE, 0);
        let first = (span.base() - stack_base) / STACK_GRANULE;
        let end = (span.end() - stack_base) / STACK_GRANULE;
        for e in &self.stacks[first..end] {
            e.store(span as *const Span as *mut Span, Ordering::Release);
        }
    }

    /// Makes `[addr, addr + len)` of the range readable and writable, for
    /// objects.
    pub fn commit(&self, addr: usize, len: usize) {
        self.protect_rw(addr, len);
        // Ask for huge pages: a fresh heap is written front to back, and a
        // fault per 4 KiB page (each zeroing its page) would otherwise cost
        // more than the allocations themselves. Advice only: if the kernel
        // has THP disabled this fails or is ignored, and 4 KiB pages work.
        // SAFETY: a part of our own reservation (checked by protect_rw);
        // MADV_HUGEPAGE changes no contents.
        unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }

    /// Makes `[addr, addr + len)` of the range readable and writable, for
    /// stacks: 4 KiB pages only, faulted in as a stack grows into them.
    pub fn commit_stacks(&self, addr: usize, len: usize) {
        self.protect_rw(addr, len);
        // SAFETY: a part of our own reservation (checked by protect_rw);
        // MADV_NOHUGEPAGE changes no contents. Advice only: on a kernel
        // without THP it fails, and there are no huge pages to avoid.
        unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_NOHUGEPAGE) };
    }

    fn protect_rw(&self, addr: usize, len: usize) {
        assert!(addr >= self.base && addr + len <= self.base + self.reserved);
        // SAFETY: a page-aligned part of our own reservation (checked
        // above); changing its protection affects no memory outside the heap.
        let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE) };
        assert!(r == 0, "cgocheck: cannot commit {len} bytes of managed heap: {}", std::io::Error::last_os_error());
    }

    /// Gives the memory of `[addr, addr + len)` back to the kernel; the
    /// pages read as zero when next touched.
    pub fn discard(&self, addr: usize, len: usize) {
        assert!(addr >= self.base && addr + len <= self.base + self.reserved);
        // SAFETY: a page-aligned part of our own private anonymous
        // reservation; MADV_DONTNEED on it only drops its contents, which
        // the caller (freeing the object that lived there) no longer needs.
        // A guard region next to it stays (the kernel keeps guard markers
        // across MADV_DONTNEED, and this range holds none).
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        assert!(r == 0, "cgocheck: madvise(DONTNEED) failed: {}", std::io::Error::last_os_error());
    }

    /// Makes `[addr, addr + len)`, committed stack memory below a stack,
    /// its guard: any access faults (SIGSEGV at the address touched).
    pub fn guard(&self, addr: usize, len: usize) {
        assert!(addr >= self.base && addr + len <= self.base + self.reserved);
        let r = match self.guards {
            // SAFETY: pages of our own reservation that belong to a fresh
            // stack run and are never handed out as memory; a guard
            // region only makes access fault.
            StackGuards::GuardRegions => unsafe { libc::madvise(addr as *mut libc::c_void, len, MADV_GUARD_INSTALL) },
            // SAFETY: as above.
            StackGuards::Mprotect => unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_NONE) },
        };
        assert!(r == 0, "cgocheck: cannot make a stack guard ({:?}): {}", self.guards, std::io::Error::last_os_error());
    }
}

//! The heap's address range: one reservation, its page table, its zero bits.
//!
//! At first use the heap reserves one contiguous range of address space
//! (64 GiB, or less if the system refuses) with `PROT_NONE` and
//! `MAP_NORESERVE`: no memory, no commit charge, nothing else can be mapped
//! there. Because everything the heap hands out — small spans, large
//! objects, task stacks, and the zero-sized-allocation address — lies in this
//! one range, "is this address managed heap?" is a single subtract and
//! compare, the first thing `region()` does.
//!
//! Pages are made readable and writable ("committed") in chunks as the heap
//! grows, by the page allocator in `central.rs`; untouched committed pages
//! still cost no physical memory until written. Committed chunks are
//! advised `MADV_HUGEPAGE` (the range is 2 MiB aligned for that): a heap is
//! filled front to back, and one fault per 2 MiB instead of per 4 KiB is
//! most of the cost of allocating from fresh memory.
//!
//! The range is in fact aligned to [`MAX_ALIGN`], 2^29, the largest
//! alignment Rust allows (`#[repr(align(N))]`): the zero-sized address (its
//! base) is then aligned for every type, and a span is aligned to any
//! alignment its page index is (central.rs). The slack this costs is
//! reserved address space, never memory.
//!
//! Beside the range live two more `MAP_NORESERVE` mappings:
//!
//! - the page table: one `AtomicPtr<Span>` per 8 KiB page of the range
//!   (64 MiB of address space for 64 GiB; only entries of used pages are
//!   ever touched). Null means "no span here".
//! - the zero region: `len / 64` read-only bytes, one bit per word of the
//!   range, never written. It is the pointer bitmap of every pointer-free
//!   object: a window of it serves any object up to the size of the heap
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

/// Sizes tried for the reservation, largest first.
const RESERVE_SIZES: [usize; 4] = [64 << 30, 16 << 30, 4 << 30, 1 << 30];

/// The reserved range and its side tables. Immutable once built.
pub(crate) struct Arena {
    /// First address of the range (8 KiB aligned); also the zero-sized
    /// allocation address.
    pub base: usize,
    /// Bytes in the range.
    pub len: usize,
    /// One entry per page of the range.
    pub pages: &'static [AtomicPtr<Span>],
    /// `len / 8` zero bits.
    pub zero: &'static BitSlice<u64, Lsb0>,
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

impl Arena {
    /// Reserves the range and maps the side tables.
    pub fn reserve() -> Arena {
        let (raw, len) = RESERVE_SIZES
            .iter()
            .find_map(|&len| map(len + MAX_ALIGN, libc::PROT_NONE).map(|p| (p, len)))
            .expect("cgocheck: cannot reserve address space for the managed heap (tried 64 GiB down to 1 GiB)");
        // mmap aligns to the OS page (4 KiB); round up to MAX_ALIGN, which
        // is also a multiple of the huge page (so that committed chunks can
        // be backed by huge pages) and of the heap page. The slack below
        // `base` stays reserved, unused.
        let base = raw.next_multiple_of(MAX_ALIGN);
        let npages = len >> PAGE_SHIFT;
        let table = map(npages * std::mem::size_of::<AtomicPtr<Span>>(), libc::PROT_READ | libc::PROT_WRITE)
            .expect("cgocheck: cannot map the heap page table");
        let zero_words = len / 8 / 64;
        let zero = map(zero_words * 8, libc::PROT_READ).expect("cgocheck: cannot map the heap zero bitmap");
        // SAFETY: `table` is a fresh read-write mapping of exactly `npages`
        // AtomicPtr-sized, page-aligned entries, zero-filled by the kernel
        // (all-zero is a valid null AtomicPtr); it is never unmapped, so
        // 'static holds, and only atomics access it.
        let pages = unsafe { std::slice::from_raw_parts(table as *const AtomicPtr<Span>, npages) };
        // SAFETY: `zero` is a fresh readable mapping of `zero_words` u64s,
        // all zero, never written (PROT_READ) nor unmapped.
        let zero_words = unsafe { std::slice::from_raw_parts(zero as *const u64, zero_words) };
        Arena { base, len, pages, zero: zero_words.view_bits() }
    }

    /// The span owning page `page` (an index into the range), if any.
    #[inline]
    pub fn span_at(&self, page: usize) -> Option<&'static Span> {
        let p = self.pages[page].load(Ordering::Acquire);
        // SAFETY: entries are null or point to a leaked `Span` that is never
        // freed (span.rs); the Acquire load pairs with the Release store
        // in `publish`, so the span's fields are initialised.
        unsafe { p.as_ref() }
    }

    /// Makes the pages of `span` resolve to it. Spans are published whole
    /// before their first object is handed out.
    pub fn publish(&self, span: &'static Span) {
        let first = (span.base - self.base) >> PAGE_SHIFT;
        for e in &self.pages[first..first + span.npages] {
            e.store(span as *const Span as *mut Span, Ordering::Release);
        }
    }

    /// Makes `[addr, addr + len)` of the range readable and writable.
    pub fn commit(&self, addr: usize, len: usize) {
        assert!(addr >= self.base && addr + len <= self.base + self.len);
        // SAFETY: a page-aligned part of our own reservation (checked
        // above); changing its protection affects no memory outside the heap.
        let r = unsafe { libc::mprotect(addr as *mut libc::c_void, len, libc::PROT_READ | libc::PROT_WRITE) };
        assert!(r == 0, "cgocheck: cannot commit {len} bytes of managed heap: {}", std::io::Error::last_os_error());
        // Ask for huge pages: a fresh heap is written front to back, and a
        // fault per 4 KiB page (each zeroing its page) would otherwise cost
        // more than the allocations themselves. Advice only: if the kernel
        // has THP disabled this fails or is ignored, and 4 KiB pages work.
        // SAFETY: as above; MADV_HUGEPAGE changes no contents.
        unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }

    /// Gives the memory of `[addr, addr + len)` back to the kernel; the
    /// pages read as zero when next touched.
    pub fn discard(&self, addr: usize, len: usize) {
        assert!(addr >= self.base && addr + len <= self.base + self.len);
        // SAFETY: a page-aligned part of our own private anonymous
        // reservation; MADV_DONTNEED on it only drops its contents, which
        // the caller (freeing the object that lived there) no longer needs.
        let r = unsafe { libc::madvise(addr as *mut libc::c_void, len, libc::MADV_DONTNEED) };
        assert!(r == 0, "cgocheck: madvise(DONTNEED) failed: {}", std::io::Error::last_os_error());
    }

    /// Sets the protection of a stack guard page: `PROT_NONE`.
    pub fn guard(&self, addr: usize) {
        assert!(addr >= self.base && addr + PAGE <= self.base + self.len);
        // SAFETY: one page of our own reservation that belongs to a stack
        // span and is never handed out as memory.
        let r = unsafe { libc::mprotect(addr as *mut libc::c_void, PAGE, libc::PROT_NONE) };
        assert!(r == 0, "cgocheck: cannot protect a stack guard page: {}", std::io::Error::last_os_error());
    }
}

//! Size classes: the fixed slot sizes small objects are rounded up to.
//!
//! A small request (at most [`MAX_SMALL`] bytes) is served from a span whose
//! slots all have one class size. The table is computed at compile time:
//!
//! - 8, 16, 24, 32, then steps of 16 up to 128 (24 is there because three
//!   words — a slice header, a short struct — is a very common shape);
//! - above 128, eight classes per doubling (step = 1/8 of the power of two
//!   below), so rounding
//!   wastes at most 12.5% of a slot;
//! - each class gets the smallest span of 1..=16 pages that holds at least
//!   two slots (one for the 32 KiB class, which already fills four pages
//!   exactly) and leaves a tail of at most 1/8 of the span.
//!
//! Finding the slot of an interior address needs `offset / size`. Division
//! is slow on the lookup path, so every class carries `div_magic =
//! ceil(2^32 / size)` and the slot index is `(offset * div_magic) >> 32`.
//! That is exact for every offset inside a span: with
//! `e = div_magic * size - 2^32 < size`, the error term is
//! `offset * e / 2^32 < 2^17 * 2^15 / 2^32 = 1`, which never carries the
//! fractional part of `offset / size` (at most `(size-1)/size`) over the
//! next integer. A test checks every offset of every class.
//!
//! Request size → class is one table load: sizes up to 1024 are indexed in
//! 8-byte steps, sizes above in 128-byte steps.

/// Bytes in a heap page; spans are whole pages and the page table has one
/// entry per page.
pub const PAGE: usize = 8192;
/// log2 of [`PAGE`].
pub const PAGE_SHIFT: u32 = 13;
/// Largest small object; bigger requests get a span of their own.
pub const MAX_SMALL: usize = 32768;
/// Largest span of a small class, in pages.
const MAX_SPAN_PAGES: usize = 16;

/// One size class.
#[derive(Debug, Clone, Copy)]
pub struct Class {
    /// Slot size in bytes.
    pub size: usize,
    /// Pages per span.
    pub npages: usize,
    /// Slots per span.
    pub nslots: usize,
    /// `ceil(2^32 / size)`: `(offset * div_magic) >> 32 == offset / size`
    /// for every offset inside a span of this class.
    pub div_magic: u64,
}

const fn count_classes() -> usize {
    let mut n = 0;
    let mut s = 0;
    while s < MAX_SMALL {
        s = next_size(s);
        n += 1;
    }
    n
}

/// The class size after `s` (0 gives the first class).
const fn next_size(s: usize) -> usize {
    if s < 32 {
        if s < 24 {
            s + 8
        } else {
            32
        }
    } else if s < 128 {
        s + 16
    } else {
        // Eight steps per doubling: a step is 1/8 of the power of two at or
        // below `s`, so each doubling ends exactly on the next power of two.
        let pow2 = 1 << (usize::BITS - 1 - s.leading_zeros());
        s + pow2 / 8
    }
}

/// Number of size classes.
pub const NUM_CLASSES: usize = count_classes();

const fn make_class(size: usize) -> Class {
    let mut npages = 1;
    loop {
        let bytes = npages * PAGE;
        let nslots = bytes / size;
        let tail = bytes - nslots * size;
        let enough = nslots >= 2 || size * 2 > MAX_SPAN_PAGES * PAGE;
        if (enough && tail * 8 <= bytes) || npages == MAX_SPAN_PAGES {
            // Spans are read by the page-indexed lookup with a 32-bit reciprocal:
            // keep offsets below 2^17 (see the file comment).
            assert!(bytes <= 1 << 17);
            let div_magic = (1u64 << 32).div_ceil(size as u64);
            return Class { size, npages, nslots, div_magic };
        }
        npages += 1;
    }
}

const fn make_classes() -> [Class; NUM_CLASSES] {
    let mut out = [Class { size: 0, npages: 0, nslots: 0, div_magic: 0 }; NUM_CLASSES];
    let mut s = 0;
    let mut i = 0;
    while i < NUM_CLASSES {
        s = next_size(s);
        out[i] = make_class(s);
        i += 1;
    }
    out
}

/// All classes, smallest first.
pub static CLASSES: [Class; NUM_CLASSES] = make_classes();

const SMALL_STEPS: usize = 1024 / 8 + 1;
const LARGE_STEPS: usize = (MAX_SMALL - 1024) / 128 + 1;

/// Class index for sizes up to 1024, by `size.div_ceil(8)`.
static CLASS_BY_8: [u8; SMALL_STEPS] = class_table::<SMALL_STEPS>(0, 8);
/// Class index for sizes above 1024, by `(size - 1024).div_ceil(128)`.
static CLASS_BY_128: [u8; LARGE_STEPS] = class_table::<LARGE_STEPS>(1024, 128);

const fn class_table<const N: usize>(from: usize, step: usize) -> [u8; N] {
    let classes = make_classes();
    let mut out = [0u8; N];
    let mut i = 0;
    let mut c = 0;
    while i < N {
        let size = from + i * step;
        while classes[c].size < size {
            c += 1;
        }
        out[i] = c as u8;
        i += 1;
    }
    out
}

/// The smallest class whose slots hold `size` bytes with the given
/// alignment (`size` in `1..=MAX_SMALL`, `align` a power of two); `None`
/// when no class size is a multiple of `align`.
#[inline]
pub fn class_for(size: usize, align: usize) -> Option<usize> {
    debug_assert!(size > 0 && size <= MAX_SMALL);
    let mut c = if size <= 1024 {
        CLASS_BY_8[size.div_ceil(8)] as usize
    } else {
        CLASS_BY_128[(size - 1024).div_ceil(128)] as usize
    };
    // Every class is a multiple of 8; stricter alignments (rare: a
    // `#[repr(align(N))]` type) move up to the next class that is a
    // multiple of `align`, so every slot of the span is aligned.
    while CLASSES[c].size & (align - 1) != 0 {
        c += 1;
        if c == NUM_CLASSES {
            return None;
        }
    }
    Some(c)
}

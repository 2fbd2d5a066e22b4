//! Finding pointer words fast.
//!
//! Every check ends in the same inner loop: here is a stretch of memory and a
//! description of which of its words are pointer words; look at the pointer
//! words that are not null. Two things make it cheap:
//!
//! - Pointer words come as *runs* (maximal stretches of consecutive pointer
//!   words), found from a mask a `u64` at a time with `trailing_zeros` /
//!   `trailing_ones`: a pointer-free stretch costs nothing per word.
//!   [`type_runs`] takes them from a [`Type`]'s mask, expanding
//!   [`PtrMask::Repeat`] arithmetically (a `[*mut u8; 32769]` is one run, no
//!   32769-bit bitmap is built); [`bitmap_runs`] takes them from a heap
//!   object's bitmap.
//! - Inside a run, [`scan_run`] ORs 16 words at a time and looks at single
//!   words only when the OR is non-zero: null words cost about one vector
//!   OR per 16, and nothing is classified until a word is non-zero.
//!
//! The words are read with plain loads: they are the values C is about to
//! receive. Another task writing them at the same moment is a data race in
//! the checked program, exactly as it is in Go.

use crate::types::{PtrMask, Type, WORD};
use bitvec::prelude::*;

/// Reads the machine word at `addr`.
///
/// # Safety
/// `addr` must be 8-aligned and the 8 bytes at it readable.
#[inline(always)]
pub(crate) unsafe fn word(addr: usize) -> usize {
    // SAFETY: the caller guarantees alignment and readability.
    unsafe { (addr as *const usize).read() }
}

/// Calls `f(i, value)` for every non-zero word among the `n` words at
/// `addr` (word `i` is at `addr + 8 * i`), in order, stopping at the first
/// error.
///
/// # Safety
/// `addr` must be 8-aligned and `n * 8` bytes at it readable.
#[inline]
pub(crate) unsafe fn scan_run<E>(
    addr: usize,
    n: usize,
    mut f: impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    const CHUNK: usize = 16;
    // SAFETY: the caller guarantees `n` aligned, readable words at `addr`.
    let words = unsafe { core::slice::from_raw_parts(addr as *const usize, n) };
    let mut chunks = words.chunks_exact(CHUNK);
    let mut base = 0;
    for chunk in &mut chunks {
        if chunk.iter().fold(0, |acc, &w| acc | w) != 0 {
            for (j, &w) in chunk.iter().enumerate() {
                if w != 0 {
                    f(base + j, w)?;
                }
            }
        }
        base += CHUNK;
    }
    for (j, &w) in chunks.remainder().iter().enumerate() {
        if w != 0 {
            f(base + j, w)?;
        }
    }
    Ok(())
}

/// Calls `f(offset, n)` for each run of `n` pointer words of a value of
/// type `ty` that starts at byte `offset`, for the words starting in
/// `lo..hi` (`lo` is rounded down to its word). Offsets count from the
/// start of the value plus `base`. Runs come in increasing order.
pub(crate) fn type_runs<E>(
    ty: &Type,
    base: usize,
    lo: usize,
    hi: usize,
    f: &mut impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let hi = hi.min(ty.ptrdata);
    let lo = lo / WORD * WORD;
    if lo >= hi {
        return Ok(());
    }
    match ty.ptrmask {
        PtrMask::None => Ok(()),
        PtrMask::Bits(bits) => mask_runs(bits, lo / WORD, hi.div_ceil(WORD), |w, n| f(base + w * WORD, n)),
        PtrMask::Repeat { elem, len } => {
            if elem.size == 0 || !elem.has_pointers() {
                return Ok(());
            }
            if elem.size == WORD {
                // Every element is one pointer word: the whole range is one run.
                let end = hi.div_ceil(WORD).min(len);
                let start = lo / WORD;
                return if start < end { f(base + lo, end - start) } else { Ok(()) };
            }
            let last = hi.div_ceil(elem.size).min(len);
            for k in lo / elem.size..last {
                let at = k * elem.size;
                type_runs(elem, base + at, lo.saturating_sub(at), hi - at, f)?;
            }
            Ok(())
        }
    }
}

/// Runs of set bits among bits `from..to` of `mask` (LSB first), as
/// `f(first_bit, count)`. Runs do not cross `u64` boundaries.
#[inline]
fn mask_runs<E>(
    mask: &[u64],
    from: usize,
    to: usize,
    mut f: impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let to = to.min(mask.len() * 64);
    let mut w = from;
    while w < to {
        let m = mask[w / 64] >> (w % 64);
        if m == 0 {
            w = (w / 64 + 1) * 64;
            continue;
        }
        w += m.trailing_zeros() as usize;
        if w >= to {
            break;
        }
        let ones = (mask[w / 64] >> (w % 64)).trailing_ones() as usize;
        let end = (w + ones).min(to);
        f(w, end - w)?;
        w = end;
    }
    Ok(())
}

/// Runs of set bits of a heap object's bitmap (one bit per word), as
/// `f(first_word, count)`, a `u64` of the bitmap at a time: 64 bits are
/// loaded from the bitmap's storage at once (two elements shifted together
/// when the slice does not start on an element boundary), never bit by bit.
#[inline]
pub(crate) fn bitmap_runs<E>(
    bits: &BitSlice<u64, Lsb0>,
    mut f: impl FnMut(usize, usize) -> Result<(), E>,
) -> Result<(), E> {
    let len = bits.len();
    let mut k = 0;
    while k < len {
        let m = bits_u64(bits, k);
        if m != 0 {
            mask_runs(&[m], 0, (len - k).min(64), |w, c| f(k + w, c))?;
        }
        k += 64;
    }
    Ok(())
}

/// Bits `k..k + 64` of `bits` (fewer at its end, the rest zero) as one
/// `u64`, LSB first: loaded from the bitmap's storage at once (two
/// elements shifted together when the window does not start on an element
/// boundary), never bit by bit. `k < bits.len()`.
#[inline(always)]
pub(crate) fn bits_u64(bits: &BitSlice<u64, Lsb0>, k: usize) -> u64 {
    let start = bits.as_bitptr();
    let storage = start.pointer();
    let head = start.bit().into_inner() as usize;
    let n = (bits.len() - k).min(64);
    let (i, shift) = ((head + k) / 64, (head + k) % 64);
    // SAFETY: bits `k..k + n` of the slice are bits `shift..shift + n`
    // counted from storage element `i`, so element `i` belongs to the
    // slice, and element `i + 1` does too when they run past bit 64. The
    // storage is plain `u64`s the slice borrows immutably.
    let mut m = unsafe { *storage.add(i) } >> shift;
    if shift != 0 && shift + n > 64 {
        // SAFETY: as above.
        m |= unsafe { *storage.add(i + 1) } << (64 - shift);
    }
    if n < 64 {
        m &= (1u64 << n) - 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CType;

    fn runs_of(ty: &Type, lo: usize, hi: usize) -> Vec<(usize, usize)> {
        let mut v = Vec::new();
        type_runs::<()>(ty, 0, lo, hi, &mut |o, n| {
            v.push((o, n));
            Ok(())
        })
        .unwrap();
        v
    }

    #[test]
    fn repeat_of_pointers_is_one_run_without_a_bitmap() {
        let t = <[*mut u8; 32769] as CType>::TYPE;
        assert_eq!(runs_of(t, 0, t.size), [(0, 32769)]);
        assert_eq!(runs_of(t, 8 * 100, 8 * 200), [(800, 100)]);
        assert_eq!(runs_of(t, 8 * 32768, usize::MAX), [(8 * 32768, 1)]);
        assert_eq!(runs_of(t, 3, 9), [(0, 2)], "lo rounds down to its word");
    }

    #[test]
    fn bits_masks_give_runs() {
        static T: Type = Type {
            name: "t",
            size: 8 * 70,
            align: 8,
            ptrdata: 8 * 70,
            kind: crate::Kind::Struct { fields: &[] },
            ptrmask: PtrMask::Bits(&[0b1110_0101 | (1 << 63), 0b11 << 4]),
        };
        assert_eq!(runs_of(&T, 0, T.size), [(0, 1), (16, 1), (40, 3), (8 * 63, 1), (8 * 68, 2)]);
        assert_eq!(runs_of(&T, 48, 8 * 69), [(48, 2), (8 * 63, 1), (8 * 68, 1)]);
    }

    #[test]
    fn repeat_of_structs_recurses_per_element() {
        // { a: i64, p: *mut u8 }
        static PAIR: Type = Type {
            name: "pair",
            size: 16,
            align: 8,
            ptrdata: 16,
            kind: crate::Kind::Struct { fields: &[] },
            ptrmask: PtrMask::Bits(&[0b10]),
        };
        static ARR: Type = Type {
            name: "",
            size: 48,
            align: 8,
            ptrdata: 48,
            kind: crate::Kind::Array { elem: &PAIR, len: 3 },
            ptrmask: PtrMask::Repeat { elem: &PAIR, len: 3 },
        };
        assert_eq!(runs_of(&ARR, 0, 48), [(8, 1), (24, 1), (40, 1)]);
        assert_eq!(runs_of(&ARR, 16, 40), [(24, 1)]);
    }

    #[test]
    fn scan_run_sees_only_non_zero_words() {
        let mut v = vec![0usize; 100];
        v[0] = 1;
        v[17] = 2;
        v[99] = 3;
        let mut seen = Vec::new();
        // SAFETY: `v` is 100 aligned, readable words.
        unsafe {
            scan_run::<()>(v.as_ptr() as usize, 100, |i, w| {
                seen.push((i, w));
                Ok(())
            })
        }
        .unwrap();
        assert_eq!(seen, [(0, 1), (17, 2), (99, 3)]);
    }

    #[test]
    fn bits_u64_reads_any_window() {
        let mut bits = bitvec![u64, Lsb0; 0; 200];
        for i in [0, 5, 63, 64, 70, 130, 199] {
            bits.set(i, true);
        }
        let ones = |m: u64| (0..64).filter(|i| m >> i & 1 == 1).collect::<Vec<_>>();
        assert_eq!(ones(bits_u64(&bits, 0)), [0, 5, 63]);
        assert_eq!(ones(bits_u64(&bits, 64)), [0, 6]);
        assert_eq!(ones(bits_u64(&bits[5..], 0)), [0, 58, 59], "a window starting inside an element");
        assert_eq!(ones(bits_u64(&bits[60..70], 0)), [3, 4], "a window shorter than 64 inside two elements");
        assert_eq!(ones(bits_u64(&bits[130..], 64)), [5], "the tail, shorter than 64");
    }

    #[test]
    fn bitmap_runs_span_chunks() {
        let mut bits = bitvec![u64, Lsb0; 0; 200];
        bits[3..5].fill(true);
        bits[60..130].fill(true);
        bits.set(199, true);
        let runs = |b: &BitSlice<u64, Lsb0>| {
            let mut v = Vec::new();
            bitmap_runs::<()>(b, |w, n| {
                v.push((w, n));
                Ok(())
            })
            .unwrap();
            v
        };
        assert_eq!(runs(&bits), [(3, 2), (60, 4), (64, 64), (128, 2), (199, 1)]);
        // Unaligned windows (chunks of 64 counted from the window's start),
        // and windows inside one u64.
        assert_eq!(runs(&bits[4..140]), [(0, 1), (56, 8), (64, 62)]);
        assert_eq!(runs(&bits[2..6]), [(1, 2)]);
        assert_eq!(runs(&bits[128..199]), [(0, 2)]);
    }
}

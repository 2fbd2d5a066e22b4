//! Which C call last received each managed object, at `CGOCHECK=2`.
//!
//! Go's rule 2 — C may not keep a Go pointer after the call returns unless
//! the memory is pinned — is not checked by Go at all. Here the quarantine
//! (`gc/quarantine.rs`) makes a use of a freed object fault, and this
//! record lets the report say who gave C the pointer: every declared C
//! function's wrapper (`c_functions!`; `c_call!`, whose parameter types
//! are undescribed, for each word-sized argument) records, for each pointer
//! word of each argument that points at a live heap object, the function,
//! the argument's position, the calling task and whether the object was
//! pinned then; an exported function records its result the same way.
//! The record lives in the object's span, one per slot
//! (`heap/span.rs`, [`LentRecord`]), made on the first record for that
//! span and cleared when the quarantine releases the slot.
//!
//! The cost is at level 2 only: levels 0 and 1 pay one load and compare
//! of the level per call (the wrappers already read it for the checks).
//! At level 2, a pointer argument costs a heap lookup and three plain
//! stores.
//!
//! A record is three words. One writer at a time: a writer claims the
//! record by a compare-and-swap of `meta` (the name's length, the
//! position, the flags) to its `WRITING` bit, writes the name's address
//! and the task, and publishes `meta` last (Release); a second writer
//! finding the record claimed leaves it to the first (two calls lending
//! one object at once: either is the last). The crash handler, which may
//! read a record while it is written, takes the name only when `meta` is
//! valid, not being written, and the same before and after it read the
//! name's address, so a name and a length always come from one call.
//! A lend that would not change the record writes nothing; and a thread
//! remembers its last lend (object, call site, task), so the same lend
//! again, with no collection and no pin or unpin anywhere since, costs a
//! few loads and no lookup (a loop of calls passing one buffer).

use crate::check;
use crate::heap::heap;
use crate::heap::span::{LentRecord, Span, PIN_CHANGES};
use cgocheck_checker::{CType, Kind, Type, WORD};
use std::sync::atomic::Ordering::*;

/// `meta` flags.
const VALID: u64 = 1;
const PINNED: u64 = 2;
const RESULT: u64 = 4;
/// A writer holds the record.
const WRITING: u64 = 8;

/// Whether calls record what they lend: `CGOCHECK=2`.
#[inline(always)]
pub fn recording() -> bool {
    check::full()
}

/// A declared C function's wrapper at level 2, the argument frame built:
/// records argument `arg` (from 1) of `func`, as C receives it.
#[doc(hidden)]
#[inline(always)]
pub fn lend_arg<T: CType>(func: &'static str, arg: u32, value: &T) {
    match T::TYPE.kind {
        // A pointer (the common case, folded at compile time): its one word.
        Kind::Pointer { .. } | Kind::UnsafePointer => {
            // SAFETY: `T`'s descriptor says it is one pointer word (a
            // `CType` promise).
            record(func, arg, 0, unsafe { std::mem::transmute_copy::<T, usize>(value) });
        }
        _ if T::TYPE.has_pointers() => lend_value(func, arg, 0, T::TYPE, value as *const T as *const u8),
        _ => {}
    }
}

/// [`c_call!`](crate::c_call) at level 2: records argument `arg` of `func`,
/// whose type (a `-sys` crate's, maybe not a [`CType`]) is not described:
/// a word-sized argument is taken for a pointer, and recorded if it points
/// at a live heap object.
#[doc(hidden)]
#[inline(always)]
pub fn lend_untyped_arg<T>(func: &'static str, arg: u32, value: &T) {
    if std::mem::size_of::<T>() == WORD {
        // SAFETY: `T` is one word; any bit pattern is a `usize`.
        let word = unsafe { std::mem::transmute_copy::<T, usize>(value) };
        record(func, arg, 0, word);
    }
}

/// The wrapper, after recording its arguments, before C runs: the
/// quarantine's chance to protect what this thread's cache held
/// ([`let_cached_spans_go`](crate::gc::quarantine::let_cached_spans_go)).
#[doc(hidden)]
#[inline]
pub fn before_c_call() {
    crate::gc::quarantine::let_cached_spans_go();
}

/// An exported function's result going back to C (level 2 only).
#[inline]
pub(crate) fn lend_result<T: CType>(func: &'static str, value: &T) {
    if T::TYPE.has_pointers() && recording() {
        lend_value(func, 0, RESULT, T::TYPE, value as *const T as *const u8);
    }
}

/// Records every pointer word of the value of type `ty` at `value` that
/// points at a live heap object.
#[inline(never)]
fn lend_value(func: &'static str, arg: u32, flags: u64, ty: &Type, value: *const u8) {
    for offset in (0..ty.size).step_by(WORD) {
        if ty.is_ptr_word(offset) {
            // SAFETY: `value` points to a valid `ty`, whose pointer words
            // are word-aligned words inside it.
            let word = unsafe { value.add(offset).cast::<usize>().read_unaligned() };
            record(func, arg, flags, word);
        }
    }
}

/// The last lend this thread recorded, as [`LendKey`]: the same lend again
/// (a loop of calls passing one buffer) needs no lookup at all.
type LendKey = [usize; 5];
thread_local! {
    static LAST: std::cell::Cell<LendKey> = const { std::cell::Cell::new([0; 5]) };
}

#[inline(never)]
fn record(func: &'static str, arg: u32, flags: u64, addr: usize) {
    // The same object, call site and task as this thread's last record,
    // with no collection (which may have freed and reused the object) and
    // no pin or unpin anywhere since: the record is as it was written.
    // Read inline, first thing in a function never inlined (the rule of
    // `current_m_inline`: nothing here can move the task to another
    // thread). SAFETY: Ms are never freed; a non-null current M is this
    // thread's.
    let g = unsafe { crate::sched::m::current_m_inline().as_ref() }.map_or(0, |m| m.curg.load(Relaxed) as usize);
    let epoch = (crate::gc::sweep::current_gen() as usize) << 32 ^ PIN_CHANGES.load(Relaxed) as usize;
    let key: LendKey = [addr, func.as_ptr() as usize, (arg as usize) << 8 | flags as usize, epoch, g];
    // Word by word (an array compare is a call to memcmp).
    let same = |last: LendKey| (0..key.len()).fold(true, |eq, i| eq & (last[i] == key[i]));
    if LAST.try_with(|l| same(l.get())).unwrap_or(false) {
        return;
    }
    write_record(func, arg, flags, addr);
    let _ = LAST.try_with(|l| l.set(key));
}

/// [`record`] after the last-lend check: the lookup and the record itself.
fn write_record(func: &'static str, arg: u32, flags: u64, addr: usize) {
    let Some((span, slot)) = heap().slot_of(addr) else { return };
    if !span.is_allocated(slot) {
        return;
    }
    let Some(r) = span.lent_record(slot) else { return };
    let pinned = if span.is_pinned(slot) { PINNED } else { 0 };
    let task = crate::sched::task::current_g().map_or(0, |g| g.id());
    let meta = (func.len() as u64) << 32 | (arg as u64 & 0xffff) << 16 | flags | pinned | VALID;
    if r.meta.load(Relaxed) == meta && r.func.load(Relaxed) == func.as_ptr() as usize && r.task.load(Relaxed) == task {
        // The same call lent it last time: nothing to write (a loop of
        // calls with one object does not rewrite its record).
        return;
    }
    let old = r.meta.load(Relaxed);
    if old & WRITING != 0 || r.meta.compare_exchange(old, WRITING, Acquire, Relaxed).is_err() {
        // Another call is writing it: that one is the last lend.
        return;
    }
    r.func.store(func.as_ptr() as usize, Relaxed);
    r.task.store(task, Relaxed);
    r.meta.store(meta, Release);
}

/// Clears a record (the quarantine releasing its slot).
pub(crate) fn forget(r: &LentRecord) {
    r.meta.store(0, Relaxed);
}

/// What a record says, for a report.
#[derive(Clone, Copy)]
pub(crate) struct Lend {
    func: &'static str,
    arg: u32,
    task: u64,
    pinned: bool,
    result: bool,
}

/// The record of slot `slot` of `span`, if there is a whole one. Allocates
/// nothing: the crash handler calls it.
pub(crate) fn describe(span: &Span, slot: usize) -> Option<Lend> {
    let r = span.lent_record_if_any(slot)?;
    let meta = r.meta.load(Acquire);
    let func = r.func.load(Acquire);
    let task = r.task.load(Relaxed);
    if meta & VALID == 0 || meta & WRITING != 0 || r.meta.load(Acquire) != meta {
        return None;
    }
    let len = (meta >> 32) as usize;
    // SAFETY: `func` and `len` came from one `&'static str` (the reads of
    // `meta` on both sides say no other record was written meanwhile).
    let bytes = unsafe { std::slice::from_raw_parts(func as *const u8, len) };
    Some(Lend {
        func: std::str::from_utf8(bytes).ok()?,
        arg: ((meta >> 16) & 0xffff) as u32,
        task,
        pinned: meta & PINNED != 0,
        result: meta & RESULT != 0,
    })
}

impl Lend {
    /// Whether the object was pinned when C received it.
    pub fn pinned(&self) -> bool {
        self.pinned
    }
}

impl core::fmt::Display for Lend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let pinned = if self.pinned { "pinned then" } else { "not pinned" };
        let task = |f: &mut core::fmt::Formatter<'_>| {
            if self.task == 0 {
                f.write_str("a thread that was not running a task")
            } else {
                write!(f, "task {}", self.task)
            }
        };
        if self.result {
            write!(f, "the result of the exported function {}, returned to C by ", self.func)?;
        } else {
            write!(f, "the call {}(argument {}) from ", self.func, self.arg)?;
        }
        task(f)?;
        write!(f, " ({pinned})")
    }
}

//! Channels (Go's `chan T`): bounded or unbuffered, closable, usable from
//! tasks (which park) and from plain threads (which block).
//!
//! Semantics are Go's:
//! - `send` on an unbuffered channel waits for a receiver and hands the
//!   value over directly; on a buffered one it waits only while the buffer
//!   is full;
//! - `recv` takes buffered values first, then a waiting sender's; on a
//!   closed, drained channel it returns `None`;
//! - `close` wakes every waiter: receivers get `None`, blocked senders
//!   panic, as does a later `send` or a second `close`.
//!
//! A blocked operation is a [`Slot`] in the channel's send or receive
//! queue: the counterpart pops it and fills or empties it under the channel
//! lock, then (outside the lock) publishes the outcome in the slot's
//! [`Completion`] and wakes the waiter, which loops on it (so a stray
//! `unpark` is harmless). The waiter's states, who moves them and what each
//! side publishes are in `parking.rs`, whose loom models check this
//! hand-off with the same `Completion` and park-token code.
//!
//! ## Channels and the collector
//!
//! The buffer and the slots are Rust memory, so channels and blocked
//! operations are records of the collector's root registry
//! (`gc/roots.rs`): a channel is registered while it exists and its
//! buffered values are scanned; a blocked send's or receive's slot is
//! registered while it exists and the value it holds (a blocked sender's
//! value, or the value handed to a receiver not yet woken) is scanned.
//! Values are scanned conservatively over their own bytes: a `Gc`,
//! `GcSlice`, `GcStr` or a struct of them sent by value stays alive while
//! in the channel, but **a `Gc` behind a further Rust indirection (a
//! `Box<Gc<T>>`, a `Vec<Gc<T>>` sent as the value) is not seen** — send the
//! managed values themselves, or a managed collection (`GcSlice`).
//!
//! The collector takes the channel's lock and each slot's lock while the
//! world is stopped, so every other taker holds a `NoPreempt` guard (no
//! stopped task holds them). Registering and unregistering take the
//! registry's lock, which comes first in the order (the collector holds it
//! while taking the others): so slots are made before the channel lock is
//! taken (the would-block path makes one, then takes the lock again and
//! looks again), and slots and channels are dropped outside those locks.

use super::nopreempt::NoPreempt;
use super::parking::{Completion, Outcome};
use super::task::{block, WaitReason, Waiter};
use crate::gc::roots::{self, Node, Sink};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// A channel carrying `T`s. Cloning gives another handle to the same
/// channel (like copying a Go channel value).
///
/// Managed values sent by value stay alive while buffered or held by a
/// blocked sender; one behind a `Box` or `Vec` inside the value is not
/// seen by the collector (see the [module documentation](self)).
pub struct Chan<T> {
    inner: Arc<Inner<T>>,
}

/// The channel, a registered record (node first).
#[repr(C)]
struct Inner<T> {
    node: Node,
    cap: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    closed: bool,
    recvq: VecDeque<Arc<Slot<T>>>,
    sendq: VecDeque<Arc<Slot<T>>>,
}

/// One blocked send or receive, a registered record (node first).
#[repr(C)]
struct Slot<T> {
    node: Node,
    value: Mutex<Option<T>>,
    done: Completion,
    waiter: Waiter,
}

/// The registry's scan function for a channel: its buffered values.
///
/// # Safety
/// `node` is the node of a live `Inner<T>` (roots::ScanFn).
unsafe fn scan_chan<T>(node: *const Node, sink: &mut dyn Sink) {
    // SAFETY: the channel is alive while registered.
    let inner = unsafe { &*node.cast::<Inner<T>>() };
    let st = roots::lock(&inner.state);
    let (a, b) = st.buf.as_slices();
    // SAFETY: the buffered values are alive while the lock is held.
    unsafe {
        roots::scan_slice(sink, a);
        roots::scan_slice(sink, b);
    }
}

/// The registry's scan function for a slot: its value, if any.
///
/// # Safety
/// `node` is the node of a live `Slot<T>` (roots::ScanFn).
unsafe fn scan_slot<T>(node: *const Node, sink: &mut dyn Sink) {
    // SAFETY: the slot is alive while registered.
    let slot = unsafe { &*node.cast::<Slot<T>>() };
    let v = roots::lock(&slot.value);
    if v.is_some() {
        // SAFETY: the value is alive while the lock is held.
        unsafe { roots::scan_value(sink, &raw const *v) };
    }
}

impl<T> Slot<T> {
    /// A registered slot. Call it without the channel lock (module comment).
    fn new(value: Option<T>) -> Arc<Slot<T>> {
        let waiter = Waiter::current();
        // Not preempted (so not stopped for a collection) between the value
        // leaving the caller's frame and the slot being registered.
        let np = NoPreempt::new();
        let slot = Arc::new(Slot {
            node: Node::new(scan_slot::<T>),
            value: Mutex::new(value),
            done: Completion::new(),
            waiter,
        });
        // SAFETY: the Arc's contents do not move and `Drop` unregisters
        // before they are freed; no lock is held.
        unsafe { slot.node.register() };
        drop(np);
        slot
    }

    /// Takes the value.
    fn take(&self) -> Option<T> {
        let np = NoPreempt::new();
        let v = roots::lock(&self.value).take();
        drop(np);
        v
    }

    /// Puts a value in (for a receiver).
    fn put(&self, v: T) {
        let np = NoPreempt::new();
        *roots::lock(&self.value) = Some(v);
        drop(np);
    }

    /// The counterpart is done with this slot: wake its owner.
    fn finish(&self, outcome: Outcome) {
        self.done.finish(outcome);
        self.waiter.wake();
    }

    /// Waits until [`Slot::finish`].
    fn wait(&self, reason: WaitReason) -> Outcome {
        self.done.wait(|| block(reason))
    }
}

impl<T> Drop for Slot<T> {
    fn drop(&mut self) {
        // A value still here (a sender's, on close) moves to this frame
        // before the slot leaves the registry.
        // Locked, not `get_mut`: the collector may be reading the slot (a
        // plain thread can drop one while the world is stopped).
        let v = self.take();
        // SAFETY: registered by `new`, unregistered only here.
        unsafe { self.node.unregister() };
        drop(v);
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        // Buffered values move to this frame one at a time, each dropped
        // while the rest are still scanned; then the channel leaves the
        // registry. (The lock: the collector may be reading the buffer.)
        loop {
            let np = NoPreempt::new();
            let v = roots::lock(&self.state).buf.pop_front();
            drop(np);
            match v {
                Some(v) => drop(v),
                None => break,
            }
        }
        // SAFETY: registered by `Chan::new`, unregistered only here.
        unsafe { self.node.unregister() };
    }
}

impl<T> Clone for Chan<T> {
    fn clone(&self) -> Chan<T> {
        Chan { inner: self.inner.clone() }
    }
}

impl<T> fmt::Debug for Chan<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Chan(cap {}, len {})", self.inner.cap, self.len())
    }
}

impl<T: Send> Chan<T> {
    /// A channel holding up to `cap` values; `0` makes it unbuffered (each
    /// send meets a receive).
    pub fn new(cap: usize) -> Chan<T> {
        let inner = Arc::new(Inner {
            node: Node::new(scan_chan::<T>),
            cap,
            state: Mutex::new(State {
                buf: VecDeque::with_capacity(cap.min(1024)),
                closed: false,
                recvq: VecDeque::new(),
                sendq: VecDeque::new(),
            }),
        });
        // SAFETY: the Arc's contents do not move and `Drop` unregisters
        // before they are freed; no lock is held.
        unsafe { inner.node.register() };
        Chan { inner }
    }

    /// Sends `v`, waiting while the channel is full (unbuffered: until a
    /// receiver takes it).
    ///
    /// # Panics
    /// If the channel is closed, or closed while waiting ("send on closed
    /// channel").
    pub fn send(&self, v: T) {
        // The value is here, on this stack, until it must wait; then in a
        // registered slot.
        let mut here = Some(v);
        let mut slot: Option<Arc<Slot<T>>> = None;
        let take = |here: &mut Option<T>, slot: &Option<Arc<Slot<T>>>| match here.take() {
            Some(v) => v,
            None => slot.as_ref().and_then(|s| s.take()).expect("a sender holds its value"),
        };
        loop {
            let np = NoPreempt::new();
            let mut st = self.inner.lock(&np);
            if st.closed {
                drop(st);
                drop(np);
                panic!("send on closed channel");
            }
            if let Some(r) = st.recvq.pop_front() {
                let v = take(&mut here, &slot);
                drop(st);
                drop(np);
                r.put(v);
                r.finish(Outcome::Done);
                return;
            }
            if st.buf.len() < self.inner.cap {
                let v = take(&mut here, &slot);
                st.buf.push_back(v);
                return;
            }
            match &slot {
                Some(s) => {
                    st.sendq.push_back(s.clone());
                    break;
                }
                None => {
                    drop(st);
                    drop(np);
                    // It must wait: a registered slot, made outside the
                    // channel lock; then look again.
                    slot = Some(Slot::new(here.take()));
                }
            }
        }
        let slot = slot.expect("a waiting sender has a slot");
        if slot.wait(WaitReason::ChanSend) == Outcome::Closed {
            panic!("send on closed channel");
        }
    }

    /// Takes a value that is ready without waiting, and the blocked sender
    /// to wake (whose value moved into the buffer, or was the value).
    fn take_ready(st: &mut State<T>) -> Option<(T, Option<Arc<Slot<T>>>)> {
        if let Some(v) = st.buf.pop_front() {
            // Room in the buffer: the oldest blocked sender's value moves in.
            let s = st.sendq.pop_front();
            if let Some(s) = &s {
                let sv = s.take().expect("a blocked sender holds its value");
                st.buf.push_back(sv);
            }
            return Some((v, s));
        }
        let s = st.sendq.pop_front()?;
        let v = s.take().expect("a blocked sender holds its value");
        Some((v, Some(s)))
    }

    /// Receives a value, waiting until one is sent; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> Option<T> {
        let mut slot: Option<Arc<Slot<T>>> = None;
        loop {
            let np = NoPreempt::new();
            let mut st = self.inner.lock(&np);
            if let Some((v, sender)) = Self::take_ready(&mut st) {
                drop(st);
                drop(np);
                if let Some(s) = sender {
                    s.finish(Outcome::Done);
                }
                return Some(v);
            }
            if st.closed {
                return None;
            }
            match &slot {
                Some(s) => {
                    st.recvq.push_back(s.clone());
                    break;
                }
                None => {
                    drop(st);
                    drop(np);
                    // It must wait: a registered slot (the value a sender
                    // hands over waits there), made outside the channel
                    // lock; then look again.
                    slot = Some(Slot::new(None));
                }
            }
        }
        let slot = slot.expect("a waiting receiver has a slot");
        slot.wait(WaitReason::ChanRecv);
        slot.take()
    }

    /// Receives without waiting: `None` if no value is ready (or the channel
    /// is closed and drained).
    pub fn try_recv(&self) -> Option<T> {
        let np = NoPreempt::new();
        let mut st = self.inner.lock(&np);
        let (v, sender) = Self::take_ready(&mut st)?;
        drop(st);
        drop(np);
        if let Some(s) = sender {
            s.finish(Outcome::Done);
        }
        Some(v)
    }

    /// Closes the channel: waiting receivers get `None` (after the buffer
    /// drains), waiting senders panic.
    ///
    /// # Panics
    /// If it is already closed ("close of closed channel").
    pub fn close(&self) {
        let np = NoPreempt::new();
        let mut st = self.inner.lock(&np);
        if st.closed {
            drop(st);
            drop(np);
            panic!("close of closed channel");
        }
        st.closed = true;
        let recvs = std::mem::take(&mut st.recvq);
        let sends = std::mem::take(&mut st.sendq);
        drop(st);
        drop(np);
        for r in recvs {
            r.finish(Outcome::Closed);
        }
        for s in sends {
            s.finish(Outcome::Closed);
        }
    }
}

impl<T> Inner<T> {
    /// The state; the caller holds `_np` (taken before, dropped after).
    fn lock(&self, _np: &NoPreempt) -> MutexGuard<'_, State<T>> {
        roots::lock(&self.state)
    }
}

impl<T> Chan<T> {
    /// Values in the buffer.
    pub fn len(&self) -> usize {
        let np = NoPreempt::new();
        let n = self.inner.lock(&np).buf.len();
        drop(np);
        n
    }

    /// The buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The buffer's capacity (0: unbuffered).
    pub fn capacity(&self) -> usize {
        self.inner.cap
    }

    /// The channel was closed.
    pub fn is_closed(&self) -> bool {
        let np = NoPreempt::new();
        let closed = self.inner.lock(&np).closed;
        drop(np);
        closed
    }
}

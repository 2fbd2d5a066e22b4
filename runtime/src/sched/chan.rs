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
//! The buffer is ordinary Rust memory. Managed values (`Gc<T>` and
//! friends) travel fine, but a collector (a later issue) must treat
//! buffered values as roots.

use super::parking::{Completion, Outcome};
use super::task::{block, WaitReason, Waiter};
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// A channel carrying `T`s. Cloning gives another handle to the same
/// channel (like copying a Go channel value).
pub struct Chan<T> {
    inner: Arc<Inner<T>>,
}

struct Inner<T> {
    cap: usize,
    state: Mutex<State<T>>,
}

struct State<T> {
    buf: VecDeque<T>,
    closed: bool,
    recvq: VecDeque<Arc<Slot<T>>>,
    sendq: VecDeque<Arc<Slot<T>>>,
}

/// One blocked send or receive.
struct Slot<T> {
    value: Mutex<Option<T>>,
    done: Completion,
    waiter: Waiter,
}

impl<T> Slot<T> {
    fn new(value: Option<T>) -> Arc<Slot<T>> {
        Arc::new(Slot { value: Mutex::new(value), done: Completion::new(), waiter: Waiter::current() })
    }

    fn value(&self) -> MutexGuard<'_, Option<T>> {
        self.value.lock().unwrap_or_else(|e| e.into_inner())
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
        Chan {
            inner: Arc::new(Inner {
                cap,
                state: Mutex::new(State {
                    buf: VecDeque::with_capacity(cap.min(1024)),
                    closed: false,
                    recvq: VecDeque::new(),
                    sendq: VecDeque::new(),
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends `v`, waiting while the channel is full (unbuffered: until a
    /// receiver takes it).
    ///
    /// # Panics
    /// If the channel is closed, or closed while waiting ("send on closed
    /// channel").
    pub fn send(&self, v: T) {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            panic!("send on closed channel");
        }
        if let Some(r) = st.recvq.pop_front() {
            drop(st);
            *r.value() = Some(v);
            r.finish(Outcome::Done);
            return;
        }
        if st.buf.len() < self.inner.cap {
            st.buf.push_back(v);
            return;
        }
        let slot = Slot::new(Some(v));
        st.sendq.push_back(slot.clone());
        drop(st);
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
                let sv = s.value().take().expect("a blocked sender holds its value");
                st.buf.push_back(sv);
            }
            return Some((v, s));
        }
        let s = st.sendq.pop_front()?;
        let v = s.value().take().expect("a blocked sender holds its value");
        Some((v, Some(s)))
    }

    /// Receives a value, waiting until one is sent; `None` once the channel
    /// is closed and drained.
    pub fn recv(&self) -> Option<T> {
        let mut st = self.lock();
        if let Some((v, sender)) = Self::take_ready(&mut st) {
            drop(st);
            if let Some(s) = sender {
                s.finish(Outcome::Done);
            }
            return Some(v);
        }
        if st.closed {
            return None;
        }
        let slot = Slot::new(None);
        st.recvq.push_back(slot.clone());
        drop(st);
        slot.wait(WaitReason::ChanRecv);
        let v = slot.value().take();
        v
    }

    /// Receives without waiting: `None` if no value is ready (or the channel
    /// is closed and drained).
    pub fn try_recv(&self) -> Option<T> {
        let mut st = self.lock();
        let (v, sender) = Self::take_ready(&mut st)?;
        drop(st);
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
        let mut st = self.lock();
        if st.closed {
            drop(st);
            panic!("close of closed channel");
        }
        st.closed = true;
        let recvs = std::mem::take(&mut st.recvq);
        let sends = std::mem::take(&mut st.sendq);
        drop(st);
        for r in recvs {
            r.finish(Outcome::Closed);
        }
        for s in sends {
            s.finish(Outcome::Closed);
        }
    }
}

impl<T> Chan<T> {
    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner()).buf.len()
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
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner()).closed
    }
}

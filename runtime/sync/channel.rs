//! Multi-producer multi-consumer memory channels: [`channel`] (bounded, including
//! capacity 0 = rendezvous) and [`unbounded`].
//!
//! # State
//!
//! One `parking_lot::Mutex<Chan<T>>` behind an `Arc`, shared by every handle:
//!
//! * `buf` — messages accepted by the channel, oldest first.
//! * `recv_waiters` — receivers blocked on an empty channel; a node's state is the
//!   message handed to it (`None` until served).
//! * `send_waiters` — senders blocked on a full channel; a node's state is the message
//!   it offers (`Some` until a receiver takes it, then `None`).
//!
//! Invariants (outside the lock), for waiters that are not cancelled: if a receiver is
//! queued, `buf` is empty and no sender is queued; if a sender is queued, `buf` holds
//! `cap` messages (one more at most, see below). A message therefore never waits in
//! `buf` while a receiver waits, and moves **directly** into the first waiter's node
//! (hand-off), which is what lets rule R10 hold: a receiver whose node was filled
//! returns that message even if it is cancelled before it runs again. Waiters already
//! cancelled are skipped by hand-offs (see `wait_list`) and stay queued until they
//! run; a skipped waiter whose cancel was withdrawn meanwhile takes what is there.
//!
//! A receive future dropped after being served puts its message back at the *front*
//! (or hands it to the next waiting receiver), so it stays the oldest; this may hold
//! `cap + 1` messages in `buf` for a moment.
//!
//! A receiver polled as a `Stream` has no future to own its node between polls, so
//! the node of a pending `poll_next` is kept in the `Receiver` (`stream_node`). It
//! follows the same life as a receive future's node, with one addition: any other
//! receive on that receiver (`recv`, `try_recv`) first takes the node over — returning
//! a message handed to it, or removing it unserved — so an abandoned `next()` neither
//! hides a message from its own receiver nor keeps catching messages meant for the
//! receive made now. Dropping the receiver passes a handed message on.
//!
//! # Locking and wakes
//!
//! Wakers are collected under the lock and woken after it is released, and messages
//! are never dropped under the lock (a message may own a handle of the same channel).
//! `check_cancelled` only reads the runtime's thread-local state.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use parking_lot::Mutex;

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::{BoxError, CancelError, Cancelled};
use crate::runtime::observe::SyncKind;

struct Chan<T> {
    buf: VecDeque<T>,
    /// `usize::MAX` for unbounded channels.
    cap: usize,
    senders: usize,
    receivers: usize,
    /// `close()` was called: no send is accepted any more; receivers drain `buf`.
    closed: bool,
    recv_waiters: WaitList<Option<T>>,
    send_waiters: WaitList<Option<T>>,
}

struct Shared<T> {
    chan: Mutex<Chan<T>>,
}

impl<T> Shared<T> {
    fn new(cap: usize) -> Arc<Shared<T>> {
        Arc::new(Shared {
            chan: Mutex::new(Chan {
                buf: VecDeque::with_capacity(cap.min(64)),
                cap,
                senders: 1,
                receivers: 1,
                closed: false,
                recv_waiters: WaitList::new(SyncKind::Recv),
                send_waiters: WaitList::new(SyncKind::Send),
            }),
        })
    }
}

impl<T> Chan<T> {
    /// Sends fail: every receiver is gone, or the channel was closed.
    fn send_closed(&self) -> bool {
        self.receivers == 0 || self.closed
    }

    /// Receives end once `buf` is drained: every sender is gone, or it was closed.
    fn recv_closed(&self) -> bool {
        self.senders == 0 || self.closed
    }

    /// Offers `v` to the first waiting receiver or the buffer. Returns the receiver's
    /// waker to wake, or gives `v` back if the channel is full.
    fn offer(&mut self, v: T) -> Result<Option<std::task::Waker>, T> {
        if let Some(node) = self.recv_waiters.pop_front_ready() {
            node.state = Some(v);
            return Ok(node.take_waker());
        }
        if self.buf.len() < self.cap {
            self.buf.push_back(v);
            return Ok(None);
        }
        Err(v)
    }

    /// Takes the oldest message, refilling the buffer from the first blocked sender.
    /// Returns the message and the sender's waker to wake.
    fn take(&mut self) -> Option<(T, Option<std::task::Waker>)> {
        if let Some(v) = self.buf.pop_front() {
            let mut waker = None;
            // After `close()` blocked senders are not admitted: they fail with `Closed`.
            if self.buf.len() < self.cap && !self.closed {
                if let Some(node) = self.send_waiters.pop_front_ready() {
                    let offered = node
                        .state
                        .take()
                        .expect("a queued sender holds its message");
                    waker = node.take_waker();
                    self.buf.push_back(offered);
                }
            }
            return Some((v, waker));
        }
        // Rendezvous (capacity 0): take straight from a blocked sender.
        if self.closed {
            return None;
        }
        let node = self.send_waiters.pop_front_ready()?;
        let v = node
            .state
            .take()
            .expect("a queued sender holds its message");
        Some((v, node.take_waker()))
    }

    /// A served receive node was abandoned: give its message to the next receiver, or
    /// back to the front of the buffer.
    fn put_back(&mut self, v: T) -> Option<std::task::Waker> {
        if let Some(node) = self.recv_waiters.pop_front_ready() {
            node.state = Some(v);
            return node.take_waker();
        }
        self.buf.push_front(v);
        None
    }
}

/// Creates a bounded multi-producer multi-consumer channel holding up to `capacity`
/// messages. With `capacity == 0` it is a rendezvous channel: a send completes only
/// when a receiver takes the message.
///
/// [`Sender`] and [`Receiver`] are clonable, `Send` and `Sync` (for `T: Send`), so they
/// can be used from other threads (a send from a plain thread wakes the runtime).
///
/// ```
/// use scope_runtime::sync::channel;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = channel(2);
///     tx.send(1).await.unwrap();
///     tx.send(2).await.unwrap();
///     drop(tx); // last sender gone: the receiver drains, then sees the end
///     assert_eq!(rx.recv().await, Ok(Some(1)));
///     assert_eq!(rx.recv().await, Ok(Some(2)));
///     assert_eq!(rx.recv().await, Ok(None));
/// });
/// ```
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        capacity < usize::MAX,
        "use `unbounded()` for an unbounded channel"
    );
    let shared = Shared::new(capacity);
    (
        Sender::from_shared(shared.clone()),
        Receiver::from_shared(shared),
    )
}

/// Creates an unbounded multi-producer multi-consumer channel. Sending never waits
/// (and so is not a checkpoint); receiving is the same as for [`channel`].
///
/// ```
/// use scope_runtime::sync::unbounded;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = unbounded();
///     for i in 0..1000 {
///         tx.send(i).unwrap();
///     }
///     assert_eq!(rx.len(), 1000);
///     assert_eq!(rx.recv().await, Ok(Some(0)));
/// });
/// ```
pub fn unbounded<T>() -> (UnboundedSender<T>, Receiver<T>) {
    let shared = Shared::new(usize::MAX);
    (
        UnboundedSender::from_shared(shared.clone()),
        Receiver::from_shared(shared),
    )
}

/// The sending half of a bounded [`channel`]. Clone it for more producers; the
/// channel closes for receivers when the last sender is dropped.
///
/// ```
/// use scope_runtime::sync::channel;
///
/// let (tx, rx) = channel::<u8>(1);
/// let tx2 = tx.clone();
/// tx.try_send(1).unwrap();
/// assert!(tx2.try_send(2).unwrap_err().is_full());
/// drop(rx);
/// assert!(tx.is_closed());
/// ```
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The sending half of an [`unbounded`] channel. Clonable; `send` never waits.
///
/// ```
/// use scope_runtime::sync::unbounded;
///
/// let (tx, rx) = unbounded();
/// std::thread::spawn(move || tx.send("from a thread").unwrap()).join().unwrap();
/// assert_eq!(rx.try_recv(), Ok("from a thread"));
/// ```
pub struct UnboundedSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half of a [`channel`] or [`unbounded`] channel. Clone it for more
/// consumers (each message goes to exactly one of them); senders fail once the last
/// receiver is dropped, and the messages still buffered are dropped then.
///
/// ```
/// use scope_runtime::sync::channel;
///
/// let (tx, rx) = channel(4);
/// let rx2 = rx.clone();
/// tx.try_send('a').unwrap();
/// tx.try_send('b').unwrap();
/// assert_eq!(rx2.try_recv(), Ok('a'));
/// assert_eq!(rx.try_recv(), Ok('b'));
/// ```
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    /// The node in `recv_waiters` of a receive made through [`Stream::poll_next`] that
    /// returned `Pending` (`NO_NODE`: none). It lives in the receiver, not in a future,
    /// because the stream's `next()` futures are short-lived: a message handed to this
    /// node is kept here for the receiver's next receive of any kind (see
    /// `reclaim_stream_node`), or passed on when the receiver is dropped.
    ///
    /// Atomic only so that `&self` receives (`recv`, `try_recv`, possibly on several
    /// threads) can take it over with one `swap`; `poll_next` has `&mut self`.
    stream_node: AtomicUsize,
    /// The last `poll_next` returned `None` (for `FusedStream::is_terminated`).
    stream_ended: bool,
}

/// `Receiver::stream_node` when there is none (slab keys never get this large).
const NO_NODE: usize = usize::MAX;

impl<T> Sender<T> {
    fn from_shared(shared: Arc<Shared<T>>) -> Sender<T> {
        Sender { shared }
    }
}

impl<T> UnboundedSender<T> {
    fn from_shared(shared: Arc<Shared<T>>) -> UnboundedSender<T> {
        UnboundedSender { shared }
    }
}

impl<T> Receiver<T> {
    fn from_shared(shared: Arc<Shared<T>>) -> Receiver<T> {
        Receiver {
            shared,
            stream_node: AtomicUsize::new(NO_NODE),
            stream_ended: false,
        }
    }

    /// Takes over the node a pending `poll_next` left queued, if any: a message handed
    /// to it is returned (it is the oldest one this receiver was given); an unserved
    /// node is removed, so that it does not catch messages meant for the receive being
    /// made now (which queues its own node if it has to wait).
    fn reclaim_stream_node(&self) -> Option<T> {
        if self.stream_node.load(Ordering::Relaxed) == NO_NODE {
            return None;
        }
        let key = self.stream_node.swap(NO_NODE, Ordering::AcqRel);
        if key == NO_NODE {
            return None; // another thread's receive took it over first
        }
        self.shared.chan.lock().recv_waiters.remove(key)
    }
}

macro_rules! common_handle_impls {
    ($ty:ident, $count:ident) => {
        impl<T> Clone for $ty<T> {
            fn clone(&self) -> Self {
                self.shared.chan.lock().$count += 1;
                $ty::from_shared(self.shared.clone())
            }
        }

        impl<T> fmt::Debug for $ty<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let ch = self.shared.chan.lock();
                f.debug_struct(stringify!($ty))
                    .field("len", &ch.buf.len())
                    .field("capacity", &CapDebug(ch.cap))
                    .field("senders", &ch.senders)
                    .field("receivers", &ch.receivers)
                    .finish()
            }
        }

        impl<T> $ty<T> {
            /// Closes the channel for everyone, from any handle: from now on every send
            /// fails with `Closed` (blocked senders are woken and get their message
            /// back), and receivers get the messages already in the channel, then the
            /// end (`Ok(None)`). Returns `false` if it was already closed. Not async,
            /// not a checkpoint. Messages already accepted are never dropped by it.
            ///
            /// ```
            /// use scope_runtime::sync::{channel, TrySendError};
            ///
            /// scope_runtime::Runtime::new().unwrap().block_on(async {
            ///     let (tx, rx) = channel(4);
            ///     tx.try_send(1).unwrap();
            ///     assert!(rx.close());
            ///     assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
            ///     assert_eq!(rx.recv().await, Ok(Some(1))); // what was accepted stays
            ///     assert_eq!(rx.recv().await, Ok(None));
            ///     assert!(!tx.close());
            /// });
            /// ```
            pub fn close(&self) -> bool {
                close(&self.shared)
            }

            /// The number of messages in the channel's buffer.
            ///
            /// ```
            /// use scope_runtime::sync::{channel, unbounded};
            ///
            /// let (tx, rx) = channel::<u8>(2);
            /// let (utx, urx) = unbounded::<u8>();
            /// tx.try_send(1).unwrap();
            /// utx.send(1).unwrap();
            /// assert_eq!((tx.len(), rx.len(), utx.len(), urx.len()), (1, 1, 1, 1));
            /// assert!(!tx.is_empty() && !urx.is_empty());
            /// assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
            /// assert_eq!((utx.capacity(), urx.capacity()), (None, None));
            /// assert!(rx.same_channel(&rx.clone()) && !tx.same_channel(&channel(2).0));
            /// ```
            pub fn len(&self) -> usize {
                self.shared.chan.lock().buf.len()
            }

            /// Whether the channel's buffer is empty.
            ///
            /// ```
            /// use scope_runtime::sync::{channel, unbounded};
            ///
            /// let (tx, rx) = channel::<u8>(2);
            /// let (utx, urx) = unbounded::<u8>();
            /// tx.try_send(1).unwrap();
            /// utx.send(1).unwrap();
            /// assert_eq!((tx.len(), rx.len(), utx.len(), urx.len()), (1, 1, 1, 1));
            /// assert!(!tx.is_empty() && !urx.is_empty());
            /// assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
            /// assert_eq!((utx.capacity(), urx.capacity()), (None, None));
            /// assert!(rx.same_channel(&rx.clone()) && !tx.same_channel(&channel(2).0));
            /// ```
            pub fn is_empty(&self) -> bool {
                self.shared.chan.lock().buf.is_empty()
            }

            /// The channel's capacity; `None` for an unbounded channel.
            ///
            /// ```
            /// use scope_runtime::sync::{channel, unbounded};
            ///
            /// let (tx, rx) = channel::<u8>(2);
            /// let (utx, urx) = unbounded::<u8>();
            /// tx.try_send(1).unwrap();
            /// utx.send(1).unwrap();
            /// assert_eq!((tx.len(), rx.len(), utx.len(), urx.len()), (1, 1, 1, 1));
            /// assert!(!tx.is_empty() && !urx.is_empty());
            /// assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
            /// assert_eq!((utx.capacity(), urx.capacity()), (None, None));
            /// assert!(rx.same_channel(&rx.clone()) && !tx.same_channel(&channel(2).0));
            /// ```
            pub fn capacity(&self) -> Option<usize> {
                let cap = self.shared.chan.lock().cap;
                (cap != usize::MAX).then_some(cap)
            }

            /// Whether `self` and `other` are handles of the same channel.
            ///
            /// ```
            /// use scope_runtime::sync::{channel, unbounded};
            ///
            /// let (tx, rx) = channel::<u8>(2);
            /// let (utx, urx) = unbounded::<u8>();
            /// tx.try_send(1).unwrap();
            /// utx.send(1).unwrap();
            /// assert_eq!((tx.len(), rx.len(), utx.len(), urx.len()), (1, 1, 1, 1));
            /// assert!(!tx.is_empty() && !urx.is_empty());
            /// assert_eq!((tx.capacity(), rx.capacity()), (Some(2), Some(2)));
            /// assert_eq!((utx.capacity(), urx.capacity()), (None, None));
            /// assert!(rx.same_channel(&rx.clone()) && !tx.same_channel(&channel(2).0));
            /// ```
            pub fn same_channel(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.shared, &other.shared)
            }
        }
    };
}

struct CapDebug(usize);
impl fmt::Debug for CapDebug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == usize::MAX {
            f.write_str("unbounded")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

common_handle_impls!(Sender, senders);
common_handle_impls!(UnboundedSender, senders);
common_handle_impls!(Receiver, receivers);

/// Closes the channel (see `Sender::close`): wakes every blocked sender (they fail with
/// `Closed`, getting their message back) and every waiting receiver (they drain the
/// buffer, then see the end).
fn close<T>(shared: &Shared<T>) -> bool {
    let mut wakes = WakeList::default();
    let first = {
        let mut ch = shared.chan.lock();
        let first = !ch.closed;
        ch.closed = true;
        ch.send_waiters.take_all_wakers(&mut wakes);
        ch.recv_waiters.take_all_wakers(&mut wakes);
        first
    };
    wakes.wake_all();
    first
}

fn drop_sender<T>(shared: &Shared<T>) {
    let mut wakes = WakeList::default();
    {
        let mut ch = shared.chan.lock();
        ch.senders -= 1;
        if ch.senders == 0 {
            // Receivers waiting on an empty channel now see its end.
            ch.recv_waiters.take_all_wakers(&mut wakes);
        }
    }
    wakes.wake_all();
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        drop_sender(&self.shared);
    }
}

impl<T> Drop for UnboundedSender<T> {
    fn drop(&mut self) {
        drop_sender(&self.shared);
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let key = *self.stream_node.get_mut();
        if key != NO_NODE {
            // A message handed to a pending stream poll goes to the next receiver.
            abandon_recv_node(&self.shared, key);
        }
        let mut wakes = WakeList::default();
        let dropped = {
            let mut ch = self.shared.chan.lock();
            ch.receivers -= 1;
            if ch.receivers > 0 {
                return;
            }
            // Blocked senders now fail with `Closed`, getting their message back.
            ch.send_waiters.take_all_wakers(&mut wakes);
            std::mem::take(&mut ch.buf)
        };
        wakes.wake_all();
        drop(dropped); // outside the lock
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full. A checkpoint.
    ///
    /// * `Ok(())`: the message is in the channel (or handed to a receiver).
    /// * `Err(SendError::Cancelled(value, c))`: the calling code was cancelled before
    ///   the message was accepted; nothing was sent, and the value comes back. If
    ///   a receiver took the message from this blocked sender before the cancel, the
    ///   send returns `Ok(())` and the *next* checkpoint fails.
    /// * `Err(SendError::Closed(value))`: every receiver is gone, or the channel was
    ///   [closed](Self::close).
    ///
    /// Senders blocked on a full channel are served in FIFO order. Dropping the future
    /// while it waits sends nothing (the value is dropped with the future).
    ///
    /// ```
    /// use scope_runtime::sync::{channel, SendError};
    /// use scope_runtime::{CancelScope, Cancelled};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (tx, rx) = channel(1);
    ///     tx.send("first").await.unwrap();
    ///     let scope = CancelScope::new();
    ///     scope.cancel();
    ///     let res = scope.run(async { Ok::<_, Cancelled>(tx.send("second").await) }).await;
    ///     // Cancelled: nothing was sent, and "second" came back.
    ///     let err = res.unwrap().unwrap().unwrap_err();
    ///     assert!(matches!(err, SendError::Cancelled("second", _)));
    ///     assert_eq!(rx.try_recv(), Ok("first"));
    ///     assert!(rx.try_recv().is_err());
    /// });
    /// ```
    pub fn send(&self, value: T) -> SendFuture<'_, T> {
        SendFuture {
            shared: &self.shared,
            value: Some(value),
            node: None,
        }
    }

    /// Sends without waiting (not a checkpoint): fails with `Full` or `Closed`,
    /// returning the value.
    ///
    /// ```
    /// use scope_runtime::sync::{channel, TrySendError};
    ///
    /// let (tx, rx) = channel(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// drop(rx);
    /// assert_eq!(tx.try_send(3), Err(TrySendError::Closed(3)));
    /// ```
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let waker = {
            let mut ch = self.shared.chan.lock();
            if ch.send_closed() {
                return Err(TrySendError::Closed(value));
            }
            ch.offer(value).map_err(TrySendError::Full)?
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether sends fail: every receiver is gone, or the channel was closed.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::channel::<()>(1);
    /// assert!(!tx.is_closed());
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.chan.lock().send_closed()
    }
}

impl<T> UnboundedSender<T> {
    /// Sends `value` at once. Never waits, so it is **not** a checkpoint. Fails only
    /// with [`SendError::Closed`] (every receiver is gone, or the channel was
    /// closed), returning the value.
    ///
    /// ```
    /// use scope_runtime::sync::{unbounded, SendError};
    ///
    /// let (tx, rx) = unbounded();
    /// tx.send(1).unwrap();
    /// drop(rx);
    /// assert!(matches!(tx.send(2), Err(SendError::Closed(2))));
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        let waker = {
            let mut ch = self.shared.chan.lock();
            if ch.send_closed() {
                return Err(SendError::Closed(value));
            }
            match ch.offer(value) {
                Ok(w) => w,
                Err(_) => unreachable!("an unbounded channel is never full"),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether sends fail: every receiver is gone, or the channel was closed.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::unbounded::<()>();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.chan.lock().send_closed()
    }
}

impl<T> Receiver<T> {
    /// Receives the oldest message, waiting while the channel is empty. A checkpoint.
    ///
    /// * `Ok(Some(message))`.
    /// * `Ok(None)`: every sender is gone (or the channel was closed) and the channel
    ///   is drained.
    /// * `Err(Cancelled)`: the calling code was cancelled; nothing was taken. A
    ///   message handed to this waiting receiver before the cancel is returned
    ///   instead; the next checkpoint fails.
    ///
    /// Receivers waiting on an empty channel are served in FIFO order; one that is
    /// cancelled or dropped before being served leaves its place to the next one. A
    /// receive future dropped after a message was handed to it passes the message on.
    ///
    /// ```
    /// use scope_runtime::sync::{channel, SendError};
    /// use scope_runtime::{move_on_after, spawn};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let (tx, rx) = channel(1);
    ///     // Nothing arrives within 1 s: the receive is cancelled and takes nothing.
    ///     let got = move_on_after(Duration::from_secs(1), rx.recv()).await;
    ///     assert_eq!(got, Ok(None));
    ///     spawn(async move { tx.send(7).await.map_err(SendError::into_error) });
    ///     assert_eq!(rx.recv().await, Ok(Some(7)));
    ///     assert_eq!(rx.recv().await, Ok(None)); // the sender task ended
    /// });
    /// ```
    pub fn recv(&self) -> RecvFuture<'_, T> {
        RecvFuture {
            rx: self,
            node: None,
        }
    }

    /// Receives without waiting (not a checkpoint).
    ///
    /// ```
    /// use scope_runtime::sync::{channel, TryRecvError};
    ///
    /// let (tx, rx) = channel(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.try_send(5).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(5));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        if let Some(v) = self.reclaim_stream_node() {
            return Ok(v);
        }
        let (v, waker) = {
            let mut ch = self.shared.chan.lock();
            match ch.take() {
                Some(x) => x,
                None if ch.recv_closed() => return Err(TryRecvError::Closed),
                None => return Err(TryRecvError::Empty),
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(v)
    }

    /// Whether every sender is gone or the channel was closed (it ends once drained).
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::channel::<()>(1);
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.shared.chan.lock().recv_closed()
    }
}

/// The future of [`Sender::send`]. See there.
///
/// ```
/// use scope_runtime::sync::channel;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = channel(1);
///     let send = tx.send('x'); // nothing happens until it is awaited
///     assert!(rx.is_empty());
///     send.await.unwrap();
///     assert_eq!(rx.len(), 1);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct SendFuture<'a, T> {
    shared: &'a Shared<T>,
    /// The message, until it is offered to the channel.
    value: Option<T>,
    /// Our node in `send_waiters` while blocked on a full channel.
    node: Option<usize>,
}

// The message is never pinned: it is moved in and out by value.
impl<T> Unpin for SendFuture<'_, T> {}

impl<T> fmt::Debug for SendFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("waiting", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Future for SendFuture<'_, T> {
    type Output = Result<(), SendError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut ch = this.shared.chan.lock();
        if let Some(key) = this.node {
            if !ch.send_waiters.is_linked(key) {
                // A receiver took the message (R10: kept even if we are cancelled now).
                ch.send_waiters.remove(key);
                this.node = None;
                return Poll::Ready(Ok(()));
            }
        }
        let site = checkpoint();
        if site.is_err() || ch.send_closed() {
            let value = match this.node.take() {
                Some(key) => ch.send_waiters.remove(key),
                None => this.value.take(),
            }
            .expect("`SendFuture` polled after completion");
            drop(ch);
            return Poll::Ready(Err(match site {
                Err(c) => SendError::Cancelled(value, c),
                Ok(_) => SendError::Closed(value),
            }));
        }
        let value = match this.node {
            // Still queued. Room can only have been made past us while we were
            // cancelled (and skipped); then we take it now.
            Some(key) => {
                if ch.recv_waiters.front_ready().is_none() && ch.buf.len() >= ch.cap {
                    ch.send_waiters.update(key, cx.waker());
                    return Poll::Pending;
                }
                this.node = None;
                ch.send_waiters.remove(key)
            }
            None => this.value.take(),
        }
        .expect("`SendFuture` polled after completion");
        match ch.offer(value) {
            Ok(waker) => {
                drop(ch);
                if let Some(w) = waker {
                    w.wake();
                }
                Poll::Ready(Ok(()))
            }
            Err(value) => {
                this.node = Some(ch.send_waiters.push_back(Some(value), cx.waker()));
                Poll::Pending
            }
        }
    }
}

impl<T> Drop for SendFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            // Not taken yet: withdraw the message (dropped outside the lock). Taken:
            // it is already in the channel.
            let unsent = self.shared.chan.lock().send_waiters.remove(key);
            drop(unsent);
        }
    }
}

/// The future of [`Receiver::recv`]. See there.
///
/// ```
/// use scope_runtime::sync::channel;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = channel(1);
///     let recv = rx.recv();
///     tx.try_send(1).unwrap();
///     assert_eq!(recv.await, Ok(Some(1)));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct RecvFuture<'a, T> {
    rx: &'a Receiver<T>,
    /// Our node in `recv_waiters` while blocked on an empty channel.
    node: Option<usize>,
}

impl<T> fmt::Debug for RecvFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecvFuture")
            .field("waiting", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl<T> Future for RecvFuture<'_, T> {
    type Output = Result<Option<T>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.node.is_none() {
            // A message already handed to this receiver's pending stream poll is the
            // oldest it was given (and kept even if we are cancelled now).
            if let Some(v) = this.rx.reclaim_stream_node() {
                return Poll::Ready(Ok(Some(v)));
            }
        }
        poll_recv_node(&this.rx.shared, &mut this.node, cx)
    }
}

impl<T> Drop for RecvFuture<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            abandon_recv_node(&self.rx.shared, key);
        }
    }
}

/// One poll of a receive whose node in `recv_waiters` (if queued) is `node`: what
/// [`RecvFuture`] and the [`Stream`] of a [`Receiver`] both do. `node` is `None` again
/// once the poll returns `Ready`.
fn poll_recv_node<T>(
    shared: &Shared<T>,
    node: &mut Option<usize>,
    cx: &mut Context<'_>,
) -> Poll<Result<Option<T>, Cancelled>> {
    let mut ch = shared.chan.lock();
    if let Some(key) = *node {
        if !ch.recv_waiters.is_linked(key) {
            // A message was handed to us (R10: kept even if we are cancelled now).
            let v = ch.recv_waiters.remove(key);
            *node = None;
            return Poll::Ready(Ok(Some(v.expect("a served receiver holds a message"))));
        }
    }
    if let Err(c) = checkpoint() {
        if let Some(key) = node.take() {
            ch.recv_waiters.remove(key); // unserved: nothing to pass on
        }
        return Poll::Ready(Err(c));
    }
    // Queued or not, take what is there: while a receiver is queued and not
    // cancelled, messages go to it rather than to the buffer, so a message can only
    // be waiting here if it skipped us while we were cancelled.
    if let Some((v, waker)) = ch.take() {
        if let Some(key) = node.take() {
            ch.recv_waiters.remove(key);
        }
        drop(ch);
        if let Some(w) = waker {
            w.wake();
        }
        return Poll::Ready(Ok(Some(v)));
    }
    if ch.recv_closed() {
        if let Some(key) = node.take() {
            ch.recv_waiters.remove(key);
        }
        return Poll::Ready(Ok(None));
    }
    match *node {
        Some(key) => ch.recv_waiters.update(key, cx.waker()),
        None => *node = Some(ch.recv_waiters.push_back(None, cx.waker())),
    }
    Poll::Pending
}

/// A receive gave up its node `key` (dropped while waiting): a message already handed
/// to it goes to the next waiting receiver or back to the front of the buffer.
fn abandon_recv_node<T>(shared: &Shared<T>, key: usize) {
    let waker = {
        let mut ch = shared.chan.lock();
        match ch.recv_waiters.remove(key) {
            // Served but never returned: pass the message on.
            Some(v) => ch.put_back(v),
            None => None,
        }
    };
    if let Some(w) = waker {
        w.wake();
    }
}

/// A [`Receiver`] is a stream of the channel's messages: `next()` is
/// [`recv`](Receiver::recv) with the result turned around.
///
/// * `Some(Ok(message))` for each message, oldest first;
/// * `None` once every sender is gone (or the channel was closed) and it is drained — the stream has
///   ended, and stays ended;
/// * `Some(Err(Cancelled))` when the code polling it is cancelled: nothing was taken.
///   Cancellation stays in force until control leaves the cancelled scope, so every
///   further poll there yields `Some(Err(Cancelled))` again (it does not end the
///   stream: the receiver is still good once outside the scope). A loop that stops at
///   errors — `while let Some(msg) = rx.next().await { let msg = msg?; .. }`, or
///   `try_next()` with `?` — therefore leaves at the first cancellation; a loop that
///   ignores the errors spins.
///
/// A message handed to a receiver waiting in `next()` before the cancellation came is
/// returned, not lost; the poll after it reports the cancellation. A cancellation
/// wakes a waiting `next()` itself, also inside `futures` combinators (`select`,
/// `take_until`, `buffer_unordered`, ...).
///
/// While a poll is pending the receiver keeps its place in the queue of waiting
/// receivers, between polls too: if a `next()` is abandoned (say, the other branch of a
/// `select` won), a message handed to the receiver meanwhile is kept for its next
/// receive of any kind (`next`, `recv`, `try_recv`), or given to the other receivers
/// when it is dropped.
///
/// ```
/// use futures::StreamExt;
/// use scope_runtime::sync::channel;
/// use scope_runtime::{Cancelled, move_on_after, spawn};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let (tx, mut rx) = channel(8);
///     spawn(async move {
///         for i in 1..=3 {
///             tx.send(i).await.map_err(|e| e.into_error())?;
///         }
///         Ok::<_, scope_runtime::BoxError>(()) // drops `tx`: the stream ends
///     });
///     let mut sum = 0;
///     while let Some(msg) = rx.next().await {
///         sum += msg?;
///     }
///     assert_eq!(sum, 6);
///
///     // Cancelled while waiting: the loop stops at the error, the scope absorbs it.
///     let (_tx, mut rx) = channel::<u32>(8);
///     let r = move_on_after(Duration::from_secs(1), async {
///         while let Some(msg) = rx.next().await {
///             msg?;
///         }
///         Ok::<_, Cancelled>(())
///     })
///     .await;
///     assert_eq!(r, Ok(None));
/// # Ok::<(), Cancelled>(())
/// }).unwrap();
/// ```
impl<T> Stream for Receiver<T> {
    type Item = Result<T, Cancelled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let slot = this.stream_node.get_mut();
        let mut node = (*slot != NO_NODE).then_some(*slot);
        let res = poll_recv_node(&this.shared, &mut node, cx);
        *slot = node.unwrap_or(NO_NODE);
        let item = ready!(res).transpose();
        this.stream_ended = item.is_none();
        Poll::Ready(item)
    }
}

/// Terminated once `next()` returned `None` (every sender gone, nothing left), so
/// `futures::select!` can take `rx.next()` directly and stops polling it after the
/// end.
///
/// ```
/// use futures::stream::{FusedStream, StreamExt};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, mut rx) = scope_runtime::sync::unbounded();
///     tx.send(1).unwrap();
///     drop(tx);
///     assert_eq!(rx.next().await, Some(Ok(1)));
///     assert!(!rx.is_terminated(), "the end was not seen yet");
///     assert_eq!(rx.next().await, None);
///     assert!(rx.is_terminated());
/// });
/// ```
impl<T> FusedStream for Receiver<T> {
    fn is_terminated(&self) -> bool {
        self.stream_ended
    }
}

/// Why [`Sender::send`] (or [`UnboundedSender::send`]) failed. The unsent message
/// comes back in both cases.
///
/// `SendError` converts with `?` into [`std::io::Error`] and [`BoxError`] (and
/// `Box<dyn Error>`): the `Cancelled` case becomes the `Cancelled` itself, which scopes
/// and task groups recognise and absorb; the `Closed` case becomes a [`Closed`] error
/// (`io::ErrorKind::BrokenPipe`). The message is dropped by the conversion.
///
/// It deliberately does not implement `std::error::Error`: if it did, `?` into a
/// `BoxError` would box the `SendError` itself and hide the cancellation from the
/// scopes. Use [`into_error`](Self::into_error) where an `Error` is needed.
///
/// ```
/// use scope_runtime::sync::channel;
/// use scope_runtime::{task_group, BoxError};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, _rx) = channel::<u32>(0); // rendezvous: nobody receives
///     let res = task_group(|tg| async move {
///         tg.spawn(async move {
///             tx.send(1).await?; // cancelled by the group: `?` gives a BoxError
///             Ok(())
///         });
///         tg.cancel();
///         Ok::<_, BoxError>(())
///     })
///     .await;
///     assert!(res.is_ok(), "the group recognised and absorbed its cancellation");
/// });
/// ```
pub enum SendError<T> {
    /// Every receiver is gone.
    Closed(T),
    /// The calling code was cancelled before the message was accepted.
    Cancelled(T, Cancelled),
}

impl<T> SendError<T> {
    /// The message that was not sent.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::unbounded();
    /// drop(rx);
    /// assert_eq!(tx.send(3).unwrap_err().into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            SendError::Closed(v) | SendError::Cancelled(v, _) => v,
        }
    }

    /// Whether every receiver was gone.
    ///
    /// ```
    /// let e = scope_runtime::sync::SendError::Closed(1);
    /// assert!(e.is_closed() && !e.is_cancelled());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, SendError::Closed(_))
    }

    /// Whether the send was cancelled.
    ///
    /// ```
    /// use scope_runtime::{sync::channel, CancelScope, Cancelled};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (tx, _rx) = channel(1);
    ///     let scope = CancelScope::new();
    ///     scope.cancel();
    ///     let r = scope.run(async { Ok::<_, Cancelled>(tx.send(1).await) }).await;
    ///     let e = r.unwrap().unwrap().unwrap_err();
    ///     assert!(e.is_cancelled() && !e.is_closed());
    ///     assert!(e.into_cancelled().is_some());
    /// });
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SendError::Cancelled(..))
    }

    /// The cancellation, dropping the message; `None` for `Closed`.
    ///
    /// ```
    /// assert!(scope_runtime::sync::SendError::Closed(1).into_cancelled().is_none());
    /// ```
    pub fn into_cancelled(self) -> Option<Cancelled> {
        match self {
            SendError::Cancelled(_, c) => Some(c),
            SendError::Closed(_) => None,
        }
    }

    /// The error without the message: the `Cancelled`, or a [`Closed`] error.
    ///
    /// ```
    /// use scope_runtime::CancelError;
    /// let (tx, rx) = scope_runtime::sync::unbounded();
    /// drop(rx);
    /// let e = tx.send(1).unwrap_err().into_error();
    /// assert!(e.as_cancelled().is_none());
    /// assert!(e.is::<scope_runtime::sync::Closed>());
    /// ```
    pub fn into_error(self) -> BoxError {
        match self {
            SendError::Closed(_) => Box::new(Closed(())),
            SendError::Cancelled(_, c) => Box::new(c),
        }
    }
}

impl<T> CancelError for SendError<T> {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            SendError::Cancelled(_, c) => Some(c),
            SendError::Closed(_) => None,
        }
    }
}

impl<T> fmt::Debug for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => f.write_str("Closed(..)"),
            SendError::Cancelled(_, c) => f.debug_tuple("Cancelled").field(&"..").field(c).finish(),
        }
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Closed(_) => fmt::Display::fmt(&Closed(()), f),
            SendError::Cancelled(_, c) => write!(f, "send {c}"),
        }
    }
}

impl<T> From<SendError<T>> for io::Error {
    fn from(e: SendError<T>) -> io::Error {
        match e {
            SendError::Closed(_) => Closed(()).into(),
            SendError::Cancelled(_, c) => c.into(),
        }
    }
}

impl<T> From<SendError<T>> for BoxError {
    fn from(e: SendError<T>) -> BoxError {
        e.into_error()
    }
}

impl<T> From<SendError<T>> for Box<dyn Error + 'static> {
    fn from(e: SendError<T>) -> Box<dyn Error + 'static> {
        e.into_error()
    }
}

/// The channel is closed: every receiver is gone, or `close()` was called. What a [`SendError::Closed`] turns
/// into when converted to an error without its message.
///
/// ```
/// let e: std::io::Error = scope_runtime::sync::SendError::Closed(1).into();
/// assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed(());

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed channel (closed, or every receiver was dropped)")
    }
}

impl Error for Closed {}

impl From<Closed> for io::Error {
    fn from(e: Closed) -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, e)
    }
}

/// Why [`Sender::try_send`] failed; the message comes back.
///
/// ```
/// use scope_runtime::sync::{channel, TrySendError};
/// let (tx, _rx) = channel(0);
/// let e = tx.try_send("x").unwrap_err();
/// assert!(e.is_full());
/// assert_eq!(e.into_inner(), "x");
/// ```
#[derive(PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The channel is full (for capacity 0: no receiver is waiting).
    Full(T),
    /// Every receiver is gone.
    Closed(T),
}

impl<T> TrySendError<T> {
    /// The message that was not sent.
    ///
    /// ```
    /// assert_eq!(scope_runtime::sync::TrySendError::Full(4).into_inner(), 4);
    /// ```
    pub fn into_inner(self) -> T {
        match self {
            TrySendError::Full(v) | TrySendError::Closed(v) => v,
        }
    }

    /// Whether the channel was full.
    ///
    /// ```
    /// assert!(scope_runtime::sync::TrySendError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, TrySendError::Full(_))
    }

    /// Whether every receiver was gone.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::channel(1);
    /// drop(rx);
    /// assert!(tx.try_send(0).unwrap_err().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        matches!(self, TrySendError::Closed(_))
    }
}

impl<T> fmt::Debug for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("Full(..)"),
            TrySendError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> fmt::Display for TrySendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySendError::Full(_) => f.write_str("the channel is full"),
            TrySendError::Closed(_) => fmt::Display::fmt(&Closed(()), f),
        }
    }
}

impl<T> Error for TrySendError<T> {}

/// Why a non-waiting receive failed (channels and [`oneshot`](super::oneshot)).
///
/// ```
/// use scope_runtime::sync::{channel, TryRecvError};
/// let (tx, rx) = channel::<u8>(1);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
/// drop(tx);
/// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing to receive right now.
    Empty,
    /// Nothing to receive, ever: every sender is gone.
    Closed,
}

impl fmt::Display for TryRecvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryRecvError::Empty => f.write_str("the channel is empty"),
            TryRecvError::Closed => {
                f.write_str("the channel is empty and every sender was dropped")
            }
        }
    }
}

impl Error for TryRecvError {}

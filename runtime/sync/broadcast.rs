//! A multi-consumer channel where every receiver gets every message: [`broadcast`].
//!
//! The last `capacity` messages sit in a ring (`VecDeque<Arc<T>>`) under a
//! `parking_lot::Mutex`, numbered by a sequence counter; each receiver keeps the number
//! of the next message it wants. A send never waits: when the ring is full the oldest
//! message is pushed out, and a receiver that had not read it yet is told how many it
//! missed ([`BroadcastError::Lagged`]) on its next receive, then goes on from the oldest
//! message still kept.
//!
//! Nothing is handed over to a waiting receiver: a receive only moves its cursor when
//! it returns a message, so a cancelled receive loses nothing. Messages are stored as
//! `Arc<T>` so that no user code (`T::clone`, `T::drop`) runs under the lock.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::{CancelError, Cancelled};
use crate::runtime::observe::SyncKind;

struct State<T> {
    /// The kept messages; `ring[0]` has sequence number `first`.
    ring: VecDeque<Arc<T>>,
    first: u64,
    capacity: usize,
    senders: usize,
    receivers: usize,
    waiters: WaitList<()>,
}

impl<T> State<T> {
    /// The sequence number the next message will get.
    fn next(&self) -> u64 {
        self.first + self.ring.len() as u64
    }
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

/// Creates a broadcast channel that keeps the last `capacity` messages: every receiver
/// gets every message sent after it subscribed, as long as it keeps up.
///
/// A slow receiver does not hold the senders back: once it is more than `capacity`
/// messages behind, the oldest ones are dropped for it and its next
/// [`recv`](BroadcastReceiver::recv) reports how many it missed. Both ends are `Send`
/// and `Sync` for `T: Send + Sync`.
///
/// # Panics
///
/// If `capacity` is 0.
///
/// ```
/// use scope_runtime::sync::broadcast;
/// use scope_runtime::task_group;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = broadcast::<&str>(16);
///     task_group(|tg| async move {
///         for _ in 0..2 {
///             let rx = rx.clone();
///             tg.spawn(async move {
///                 let mut got = Vec::new();
///                 while let Some(msg) = rx.recv().await? {
///                     got.push(msg);
///                 }
///                 assert_eq!(got, ["config changed", "shutting down"]);
///                 Ok(())
///             });
///         }
///         tx.send("config changed").unwrap();
///         tx.send("shutting down").unwrap();
///         Ok(()) // the sender is dropped: the receivers' loops end
///     })
///     .await
///     .unwrap();
/// });
/// ```
pub fn broadcast<T>(capacity: usize) -> (BroadcastSender<T>, BroadcastReceiver<T>) {
    assert!(
        capacity > 0,
        "scope_runtime::sync::broadcast: the capacity must be at least 1"
    );
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ring: VecDeque::with_capacity(capacity.min(1024)),
            first: 0,
            capacity,
            senders: 1,
            receivers: 1,
            waiters: WaitList::new(SyncKind::Broadcast),
        }),
    });
    let rx = BroadcastReceiver {
        shared: shared.clone(),
        next: std::sync::atomic::AtomicU64::new(0),
    };
    (BroadcastSender { shared }, rx)
}

/// The sending half of a [`broadcast`] channel; clone it for more senders. When the
/// last one is dropped, receivers get the messages still kept, then `Ok(None)`.
pub struct BroadcastSender<T> {
    shared: Arc<Shared<T>>,
}

/// [`BroadcastSender::send`] found no receiver; the message is given back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BroadcastClosed<T>(pub T);

impl<T> fmt::Display for BroadcastClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed broadcast channel (every receiver was dropped)")
    }
}

impl<T: fmt::Debug> Error for BroadcastClosed<T> {}

impl<T> BroadcastSender<T> {
    /// Sends a message to every receiver; returns how many receivers there are. Never
    /// waits (not a checkpoint): when the channel already keeps `capacity` messages, the
    /// oldest is dropped. Fails, giving the message back, if there is no receiver.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::broadcast(4);
    /// assert_eq!(tx.send(1), Ok(1));
    /// drop(rx);
    /// assert_eq!(tx.send(2), Err(scope_runtime::sync::BroadcastClosed(2)));
    /// ```
    pub fn send(&self, msg: T) -> Result<usize, BroadcastClosed<T>> {
        let mut wakes = WakeList::default();
        let (receivers, pushed_out) = {
            let mut st = self.shared.state.lock();
            if st.receivers == 0 {
                return Err(BroadcastClosed(msg));
            }
            let pushed_out = if st.ring.len() == st.capacity {
                st.first += 1;
                st.ring.pop_front()
            } else {
                None
            };
            st.ring.push_back(Arc::new(msg));
            st.waiters.take_all_wakers(&mut wakes);
            (st.receivers, pushed_out)
        };
        drop(pushed_out);
        wakes.wake_all();
        Ok(receivers)
    }

    /// A new receiver that gets the messages sent from now on.
    ///
    /// ```
    /// let (tx, early) = scope_runtime::sync::broadcast(8);
    /// tx.send("before").unwrap();
    /// let late = tx.subscribe();
    /// tx.send("after").unwrap();
    /// assert_eq!(tx.receiver_count(), 2);
    /// assert_eq!(early.try_recv().unwrap(), Some("before"));
    /// assert_eq!(late.try_recv().unwrap(), Some("after")); // never saw "before"
    /// ```
    pub fn subscribe(&self) -> BroadcastReceiver<T> {
        let mut st = self.shared.state.lock();
        st.receivers += 1;
        BroadcastReceiver {
            shared: self.shared.clone(),
            next: std::sync::atomic::AtomicU64::new(st.next()),
        }
    }

    /// How many receivers are alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.state.lock().receivers
    }
}

impl<T> Clone for BroadcastSender<T> {
    fn clone(&self) -> BroadcastSender<T> {
        self.shared.state.lock().senders += 1;
        BroadcastSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for BroadcastSender<T> {
    fn drop(&mut self) {
        let mut wakes = WakeList::default();
        {
            let mut st = self.shared.state.lock();
            st.senders -= 1;
            if st.senders == 0 {
                st.waiters.take_all_wakers(&mut wakes);
            }
        }
        wakes.wake_all();
    }
}

impl<T> fmt::Debug for BroadcastSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("BroadcastSender")
            .field("kept", &st.ring.len())
            .field("capacity", &st.capacity)
            .field("receivers", &st.receivers)
            .finish()
    }
}

/// The receiving half of a [`broadcast`] channel. A clone starts where this receiver
/// is; [`BroadcastSender::subscribe`] starts at the next message sent.
pub struct BroadcastReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The sequence number of the next message this receiver wants. Atomic so that
    /// `recv` can take `&self` (only this receiver's own futures move it).
    next: std::sync::atomic::AtomicU64,
}

/// Why a [`BroadcastReceiver::recv`] returned no message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BroadcastError {
    /// The calling code was cancelled; the receiver's position is unchanged.
    Cancelled(Cancelled),
    /// The receiver fell behind: this many messages were dropped before it read them.
    /// The next receive returns the oldest message still kept.
    Lagged(u64),
}

impl fmt::Display for BroadcastError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BroadcastError::Cancelled(c) => c.fmt(f),
            BroadcastError::Lagged(n) => {
                write!(f, "the receiver fell behind and missed {n} message(s)")
            }
        }
    }
}

impl Error for BroadcastError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // So `find_cancelled` sees it through a `BoxError`.
            BroadcastError::Cancelled(c) => Some(c),
            BroadcastError::Lagged(_) => None,
        }
    }
}

impl From<Cancelled> for BroadcastError {
    fn from(c: Cancelled) -> BroadcastError {
        BroadcastError::Cancelled(c)
    }
}

impl CancelError for BroadcastError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            BroadcastError::Cancelled(c) => Some(c),
            BroadcastError::Lagged(_) => None,
        }
    }
}

impl<T: Clone> BroadcastReceiver<T> {
    /// Receives the next message, waiting until one is sent. A checkpoint.
    ///
    /// * `Ok(Some(message))` — a clone of it; every receiver gets its own.
    /// * `Ok(None)`: every sender is gone and this receiver has read everything kept.
    /// * `Err(Lagged(n))`: `n` messages were dropped before this receiver read them;
    ///   the next receive returns the oldest one still kept.
    /// * `Err(Cancelled(_))`: the calling code was cancelled; nothing was taken, the
    ///   next receive returns the same message.
    ///
    /// ```
    /// use scope_runtime::sync::{BroadcastError, broadcast};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (tx, rx) = broadcast(2);
    ///     for i in 1..=5 {
    ///         tx.send(i).unwrap();
    ///     }
    ///     // Only the last two are kept: three were missed.
    ///     assert_eq!(rx.recv().await, Err(BroadcastError::Lagged(3)));
    ///     assert_eq!(rx.recv().await, Ok(Some(4)));
    ///     assert_eq!(rx.recv().await, Ok(Some(5)));
    ///     drop(tx);
    ///     assert_eq!(rx.recv().await, Ok(None));
    /// });
    /// ```
    pub fn recv(&self) -> BroadcastRecv<'_, T> {
        BroadcastRecv {
            rx: self,
            node: None,
        }
    }

    /// Receives without waiting (not a checkpoint): `Ok(None)` when there is nothing
    /// new yet or the channel is closed and read (see [`is_closed`](Self::is_closed)).
    /// A receiver that fell more than the capacity behind gets
    /// `Err(BroadcastError::Lagged(n))` once, then the oldest message kept.
    ///
    /// ```
    /// use scope_runtime::sync::{BroadcastError, broadcast};
    ///
    /// let (tx, rx) = broadcast(2);
    /// for i in 0..5 {
    ///     tx.send(i).unwrap(); // keeps the last 2
    /// }
    /// assert!(matches!(rx.try_recv(), Err(BroadcastError::Lagged(3))));
    /// assert_eq!(rx.try_recv().unwrap(), Some(3));
    /// assert_eq!(rx.try_recv().unwrap(), Some(4));
    /// assert_eq!(rx.try_recv().unwrap(), None); // nothing new
    /// drop(tx);
    /// assert!(rx.is_closed());
    /// ```
    pub fn try_recv(&self) -> Result<Option<T>, BroadcastError> {
        let mut st = self.shared.state.lock();
        self.take(&mut st).map(|m| m.map(|m| (*m).clone()))
    }
}

impl<T> BroadcastReceiver<T> {
    /// The next message for this receiver, moving its cursor; `Ok(None)` if there is
    /// none yet (whether or not senders are left).
    fn take(&self, st: &mut State<T>) -> Result<Option<Arc<T>>, BroadcastError> {
        use std::sync::atomic::Ordering::Relaxed;
        let next = self.next.load(Relaxed);
        if next < st.first {
            self.next.store(st.first, Relaxed);
            return Err(BroadcastError::Lagged(st.first - next));
        }
        let i = (next - st.first) as usize;
        match st.ring.get(i) {
            Some(m) => {
                self.next.store(next + 1, Relaxed);
                Ok(Some(m.clone()))
            }
            None => Ok(None),
        }
    }

    /// Whether every sender is gone and this receiver has read every message kept.
    pub fn is_closed(&self) -> bool {
        let st = self.shared.state.lock();
        st.senders == 0 && self.next.load(std::sync::atomic::Ordering::Relaxed) >= st.next()
    }
}

impl<T> Clone for BroadcastReceiver<T> {
    fn clone(&self) -> BroadcastReceiver<T> {
        self.shared.state.lock().receivers += 1;
        BroadcastReceiver {
            shared: self.shared.clone(),
            next: std::sync::atomic::AtomicU64::new(
                self.next.load(std::sync::atomic::Ordering::Relaxed),
            ),
        }
    }
}

impl<T> Drop for BroadcastReceiver<T> {
    fn drop(&mut self) {
        self.shared.state.lock().receivers -= 1;
    }
}

impl<T> fmt::Debug for BroadcastReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastReceiver")
            .field(
                "next",
                &self.next.load(std::sync::atomic::Ordering::Relaxed),
            )
            .finish()
    }
}

/// The future of [`BroadcastReceiver::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct BroadcastRecv<'a, T> {
    rx: &'a BroadcastReceiver<T>,
    node: Option<usize>,
}

impl<T> fmt::Debug for BroadcastRecv<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastRecv")
            .field("waiting", &self.node.is_some())
            .finish()
    }
}

impl<T: Clone> Future for BroadcastRecv<'_, T> {
    type Output = Result<Option<T>, BroadcastError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.rx.shared.state.lock();
        let leave = |st: &mut State<T>, node: &mut Option<usize>| {
            if let Some(key) = node.take() {
                st.waiters.remove(key);
            }
        };
        if let Err(c) = checkpoint() {
            leave(&mut st, &mut this.node);
            return Poll::Ready(Err(c.into()));
        }
        match this.rx.take(&mut st) {
            Ok(Some(m)) => {
                leave(&mut st, &mut this.node);
                drop(st);
                return Poll::Ready(Ok(Some((*m).clone())));
            }
            Err(e) => {
                leave(&mut st, &mut this.node);
                return Poll::Ready(Err(e));
            }
            Ok(None) if st.senders == 0 => {
                leave(&mut st, &mut this.node);
                return Poll::Ready(Ok(None));
            }
            Ok(None) => {}
        }
        match this.node {
            Some(key) => st.waiters.update(key, cx.waker()),
            None => this.node = Some(st.waiters.push_back((), cx.waker())),
        }
        Poll::Pending
    }
}

impl<T> Drop for BroadcastRecv<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            self.rx.shared.state.lock().waiters.remove(key);
        }
    }
}

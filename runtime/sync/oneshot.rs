//! A channel for one value: [`oneshot`].
//!
//! One `parking_lot::Mutex<State<T>>` behind an `Arc`. The value moves into the shared
//! cell on `send` and out of it when the receiver returns it. If the receiver was
//! *waiting* (and not already cancelled, see `wait_list`) when the value arrived, the
//! value counts as handed over and is returned even if the receiver is cancelled
//! before it runs; otherwise a cancelled receiver leaves the value in place.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::channel::TryRecvError;
use crate::runtime::cancel::{CancelWait, Cancelled, Site, site_cancelled};
use crate::runtime::observe::WaitingOn;

struct State<T> {
    value: Option<T>,
    sender_alive: bool,
    receiver_alive: bool,
    /// The receiver's waker while it waits.
    waker: Option<Waker>,
    /// Where the receiver waits (its registration with the status tree), while it
    /// waits.
    rx_site: Option<Site>,
    /// The value was sent while the receiver waited, not cancelled: it is handed over.
    handed: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
}

/// Creates a channel for a single value. The sender is not async (sending never
/// waits); awaiting the receiver is a checkpoint. Both halves are `Send` (for
/// `T: Send`), so the value can come from another thread.
///
/// ```
/// use scope_runtime::sync::oneshot;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, rx) = oneshot();
///     std::thread::spawn(move || tx.send(6 * 7).unwrap());
///     assert_eq!(rx.await, Ok(Some(42)));
/// });
/// ```
pub fn oneshot<T>() -> (OneshotSender<T>, OneshotReceiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            sender_alive: true,
            receiver_alive: true,
            waker: None,
            rx_site: None,
            handed: false,
        }),
    });
    (
        OneshotSender {
            shared: shared.clone(),
        },
        OneshotReceiver {
            shared,
            waiting: false,
            wait: CancelWait::new(),
        },
    )
}

/// The sending half of a [`oneshot`] channel. Dropping it without sending makes the
/// receiver return `Ok(None)`.
///
/// ```
/// use scope_runtime::sync::oneshot;
///
/// let (tx, rx) = oneshot::<u8>();
/// assert!(!tx.is_closed());
/// drop(rx);
/// assert!(tx.is_closed());
/// assert_eq!(tx.send(1), Err(1)); // nobody to receive it: the value comes back
/// ```
pub struct OneshotSender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half of a [`oneshot`] channel; a future.
///
/// Awaiting it is a checkpoint:
/// * `Ok(Some(value))`: the value.
/// * `Ok(None)`: the sender was dropped without sending.
/// * `Err(Cancelled)`: the calling code was cancelled; the value (if any) stays in the
///   channel — await `&mut receiver` to keep the receiver and try again later. A
///   value sent while the receiver was already waiting is returned instead.
///
/// ```
/// use scope_runtime::sync::oneshot;
/// use scope_runtime::{CancelScope, Cancelled};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (tx, mut rx) = oneshot();
///     tx.send("hello").unwrap();
///     let scope = CancelScope::new();
///     scope.cancel();
///     // Cancelled before it ran: the value stays in the channel.
///     let r = scope.run(async { Ok::<_, Cancelled>((&mut rx).await) }).await;
///     assert!(r.unwrap().unwrap().is_err());
///     assert_eq!(rx.await, Ok(Some("hello")));
/// });
/// ```
pub struct OneshotReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The previous poll registered the waker (and was not cancelled).
    waiting: bool,
    /// Wakes a waiting receiver when its code is cancelled (R13).
    wait: CancelWait,
}

impl<T> OneshotSender<T> {
    /// Sends the value; never waits (not a checkpoint). Fails, giving the value back,
    /// if the receiver was dropped.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::oneshot();
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    pub fn send(self, value: T) -> Result<(), T> {
        let waker = {
            let mut st = self.shared.state.lock();
            if !st.receiver_alive {
                return Err(value);
            }
            st.value = Some(value);
            st.handed = st.rx_site.is_some() && !site_cancelled(st.rx_site);
            st.waker.take()
        };
        // `self` drops here and finds the value in place: no second wake.
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Whether the receiver was dropped.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::oneshot::<()>();
    /// drop(rx);
    /// assert!(tx.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        !self.shared.state.lock().receiver_alive
    }
}

impl<T> Drop for OneshotSender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut st = self.shared.state.lock();
            st.sender_alive = false;
            if st.value.is_some() {
                None
            } else {
                st.waker.take()
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T> OneshotReceiver<T> {
    /// Takes the value if it is there, without waiting (not a checkpoint).
    ///
    /// ```
    /// use scope_runtime::sync::{oneshot, TryRecvError};
    ///
    /// let (tx, rx) = oneshot::<u8>();
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// drop(tx);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    /// ```
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut st = self.shared.state.lock();
        match st.value.take() {
            Some(v) => Ok(v),
            None if st.sender_alive => Err(TryRecvError::Empty),
            None => Err(TryRecvError::Closed),
        }
    }
}

impl<T> Unpin for OneshotReceiver<T> {}

impl<T> Future for OneshotReceiver<T> {
    type Output = Result<Option<T>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let was_waiting = std::mem::replace(&mut this.waiting, false);
        let mut st = this.shared.state.lock();
        st.rx_site = None;
        if was_waiting && st.handed {
            if let Some(v) = st.value.take() {
                drop(st);
                this.wait.disarm();
                return Poll::Ready(Ok(Some(v))); // handed over while we waited (R10)
            }
        }
        if let Err(c) = this.wait.check() {
            st.waker = None;
            return Poll::Ready(Err(c));
        }
        if let Some(v) = st.value.take() {
            drop(st);
            this.wait.disarm();
            return Poll::Ready(Ok(Some(v)));
        }
        if !st.sender_alive {
            drop(st);
            this.wait.disarm();
            return Poll::Ready(Ok(None));
        }
        match &mut st.waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        st.rx_site = this.wait.arm(cx.waker(), WaitingOn::Oneshot);
        drop(st);
        this.waiting = true;
        Poll::Pending
    }
}

impl<T> Drop for OneshotReceiver<T> {
    fn drop(&mut self) {
        let value = {
            let mut st = self.shared.state.lock();
            st.receiver_alive = false;
            st.waker = None;
            st.value.take()
        };
        drop(value); // outside the lock
    }
}

impl<T> fmt::Debug for OneshotSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneshotSender")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<T> fmt::Debug for OneshotReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.state.lock();
        f.debug_struct("OneshotReceiver")
            .field("has_value", &st.value.is_some())
            .field("sender_alive", &st.sender_alive)
            .field("waiting", &self.waiting)
            .finish()
    }
}

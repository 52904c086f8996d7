//! A channel that holds one value, the latest: [`watch`].
//!
//! The value sits in a `parking_lot::RwLock` with a version number beside it; each
//! receiver remembers the version it has seen. [`WatchReceiver::changed`] waits (in the
//! shared [`WaitList`]) until the version moves past the one it has seen, or the sender
//! is gone. Nothing is handed over to a waiter, so nothing can be lost to a cancel: a
//! cancelled `changed()` leaves the receiver's seen version as it was, and the next
//! `changed()` reports the change at once.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

struct Shared<T> {
    value: RwLock<T>,
    /// Bumped by every send (under the value's write lock).
    version: AtomicU64,
    /// Live receivers (a send with none fails).
    receivers: AtomicUsize,
    /// Receivers waiting in `changed()`, and whether the sender is alive.
    state: Mutex<State>,
}

struct State {
    waiters: WaitList<()>,
    sender_alive: bool,
}

impl<T> Shared<T> {
    /// Wakes every waiting receiver (each re-checks the version when it runs).
    fn wake_all(&self) {
        let mut wakes = WakeList::default();
        self.state.lock().waiters.take_all_wakers(&mut wakes);
        wakes.wake_all();
    }
}

/// Creates a watch channel holding `init`: one sender that replaces the value, any
/// number of receivers that read the latest value and wait for changes.
///
/// Use it for state many tasks follow — a configuration, a "shutting down" flag, a
/// progress figure — where only the latest value matters. For a stream of messages
/// where each one counts, use [`channel`](super::channel).
///
/// Both ends are `Send` and `Sync` for `T: Send + Sync`: a plain thread can
/// [`send`](WatchSender::send), which wakes the runtime.
///
/// ```
/// use scope_runtime::sync::watch;
/// use scope_runtime::{sleep, task_group};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let (tx, mut rx) = watch("starting");
///     task_group(|tg| async move {
///         tg.spawn(async move {
///             let mut seen = vec![*rx.borrow_and_update()];
///             while rx.changed().await? {
///                 seen.push(*rx.borrow_and_update());
///             }
///             assert_eq!(seen, ["starting", "ready", "stopping"]);
///             Ok(())
///         });
///         sleep(Duration::from_secs(1)).await?;
///         tx.send("ready").unwrap();
///         sleep(Duration::from_secs(1)).await?;
///         tx.send("stopping").unwrap();
///         Ok(()) // `tx` dropped: the receiver's `changed()` returns `Ok(false)`
///     })
///     .await
///     .unwrap();
/// });
/// ```
pub fn watch<T>(init: T) -> (WatchSender<T>, WatchReceiver<T>) {
    let shared = Arc::new(Shared {
        value: RwLock::new(init),
        version: AtomicU64::new(0),
        receivers: AtomicUsize::new(1),
        state: Mutex::new(State {
            waiters: WaitList::new(SyncKind::Watch),
            sender_alive: true,
        }),
    });
    let rx = WatchReceiver {
        shared: shared.clone(),
        seen: 0,
    };
    (WatchSender { shared }, rx)
}

/// The sending half of a [`watch`] channel. Dropping it ends the channel: waiting
/// receivers' [`changed`](WatchReceiver::changed) returns `Ok(false)` (the last value
/// stays readable).
pub struct WatchSender<T> {
    shared: Arc<Shared<T>>,
}

/// The error of [`WatchSender::send`] when every receiver is gone; it gives the value
/// back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchClosed<T>(pub T);

impl<T> fmt::Display for WatchClosed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sending on a closed watch channel (every receiver was dropped)")
    }
}

impl<T: fmt::Debug> std::error::Error for WatchClosed<T> {}

impl<T> WatchSender<T> {
    /// Replaces the value and wakes every receiver waiting in `changed()`. Fails, giving
    /// the value back, if every receiver is gone. Not async, not a checkpoint.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::watch(1);
    /// tx.send(2).unwrap();
    /// assert_eq!(*rx.borrow(), 2);
    /// drop(rx);
    /// assert_eq!(tx.send(3), Err(scope_runtime::sync::WatchClosed(3)));
    /// ```
    pub fn send(&self, value: T) -> Result<(), WatchClosed<T>> {
        if self.shared.receivers.load(Ordering::Acquire) == 0 {
            return Err(WatchClosed(value));
        }
        drop(self.send_replace(value));
        Ok(())
    }

    /// Replaces the value whether or not a receiver is left, and returns the old one.
    /// The old value is dropped by the caller, outside every lock.
    ///
    /// ```
    /// let (tx, _rx) = scope_runtime::sync::watch(String::from("a"));
    /// assert_eq!(tx.send_replace("b".into()), "a");
    /// ```
    pub fn send_replace(&self, value: T) -> T {
        let old = {
            let mut v = self.shared.value.write();
            self.shared.version.fetch_add(1, Ordering::AcqRel);
            std::mem::replace(&mut *v, value)
        };
        self.shared.wake_all();
        old
    }

    /// Reads the current value (holds a read lock: keep the guard short, and never
    /// across an `await`).
    pub fn borrow(&self) -> WatchRef<'_, T> {
        WatchRef(self.shared.value.read())
    }

    /// A new receiver that has seen the current value.
    ///
    /// ```
    /// let (tx, rx) = scope_runtime::sync::watch(0);
    /// drop(rx);
    /// let rx = tx.subscribe();
    /// tx.send(1).unwrap();
    /// assert!(rx.has_changed());
    /// ```
    pub fn subscribe(&self) -> WatchReceiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.shared.version.load(Ordering::Acquire),
        }
    }

    /// How many receivers are alive.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::Acquire)
    }
}

impl<T> Drop for WatchSender<T> {
    fn drop(&mut self) {
        self.shared.state.lock().sender_alive = false;
        self.shared.wake_all();
    }
}

impl<T: fmt::Debug> fmt::Debug for WatchSender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchSender")
            .field("value", &*self.shared.value.read())
            .field("receivers", &self.receiver_count())
            .finish()
    }
}

/// The receiving half of a [`watch`] channel. Cloning it gives a receiver that has
/// seen what this one has seen.
pub struct WatchReceiver<T> {
    shared: Arc<Shared<T>>,
    /// The version this receiver has seen.
    seen: u64,
}

impl<T> WatchReceiver<T> {
    /// Reads the current value without marking it seen (holds a read lock: keep the
    /// guard short, and never across an `await`).
    pub fn borrow(&self) -> WatchRef<'_, T> {
        WatchRef(self.shared.value.read())
    }

    /// Reads the current value and marks it seen: the next [`changed`](Self::changed)
    /// waits for a newer one.
    pub fn borrow_and_update(&mut self) -> WatchRef<'_, T> {
        let guard = self.shared.value.read();
        // Read under the read lock: a send bumps the version under the write lock.
        self.seen = self.shared.version.load(Ordering::Acquire);
        WatchRef(guard)
    }

    /// Whether a value newer than the one this receiver has seen was sent.
    ///
    /// ```
    /// let (tx, mut rx) = scope_runtime::sync::watch("idle");
    /// assert!(!rx.has_changed()); // the initial value counts as seen
    /// tx.send("busy").unwrap();
    /// assert!(rx.has_changed());
    /// assert_eq!(*rx.borrow(), "busy"); // reading alone does not mark it seen
    /// assert!(rx.has_changed());
    /// assert_eq!(*rx.borrow_and_update(), "busy");
    /// assert!(!rx.has_changed());
    /// ```
    pub fn has_changed(&self) -> bool {
        self.shared.version.load(Ordering::Acquire) != self.seen
    }

    /// Waits until a value newer than the one seen is sent, and marks it seen.
    /// A checkpoint.
    ///
    /// * `Ok(true)`: there is a newer value; read it with [`borrow`](Self::borrow).
    /// * `Ok(false)`: the sender is gone and there is nothing newer (the last value
    ///   stays readable).
    /// * `Err(Cancelled)`: the calling code was cancelled. The receiver's state is
    ///   unchanged, so a change that happened meanwhile is reported by the next
    ///   `changed()`.
    ///
    /// ```
    /// use scope_runtime::sync::watch;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let (tx, mut rx) = watch(0);
    ///     // Nothing changes within 1 s.
    ///     assert_eq!(move_on_after(Duration::from_secs(1), rx.changed()).await, Ok(None));
    ///     tx.send(1).unwrap();
    ///     assert_eq!(rx.changed().await, Ok(true));
    ///     drop(tx);
    ///     assert_eq!(rx.changed().await, Ok(false));
    ///     assert_eq!(*rx.borrow(), 1);
    /// });
    /// ```
    pub fn changed(&mut self) -> Changed<'_, T> {
        Changed {
            rx: self,
            node: None,
        }
    }
}

impl<T> Clone for WatchReceiver<T> {
    fn clone(&self) -> WatchReceiver<T> {
        self.shared.receivers.fetch_add(1, Ordering::AcqRel);
        WatchReceiver {
            shared: self.shared.clone(),
            seen: self.seen,
        }
    }
}

impl<T> Drop for WatchReceiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<T: fmt::Debug> fmt::Debug for WatchReceiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WatchReceiver")
            .field("value", &*self.shared.value.read())
            .field("has_changed", &self.has_changed())
            .finish()
    }
}

/// A read guard on a [`watch`] channel's value.
pub struct WatchRef<'a, T>(RwLockReadGuard<'a, T>);

impl<T> Deref for WatchRef<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for WatchRef<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

/// The future of [`WatchReceiver::changed`].
#[must_use = "futures do nothing unless awaited"]
pub struct Changed<'a, T> {
    rx: &'a mut WatchReceiver<T>,
    node: Option<usize>,
}

impl<T> fmt::Debug for Changed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Changed")
            .field("waiting", &self.node.is_some())
            .finish()
    }
}

impl<T> Changed<'_, T> {
    fn unregister(&mut self, state: &mut State) {
        if let Some(key) = self.node.take() {
            state.waiters.remove(key);
        }
    }
}

impl<T> Future for Changed<'_, T> {
    type Output = Result<bool, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let shared = this.rx.shared.clone();
        let mut state = shared.state.lock();
        if let Err(c) = checkpoint() {
            this.unregister(&mut state);
            return Poll::Ready(Err(c));
        }
        // Checked under the state lock: `send` bumps the version before it takes the
        // lock to wake, and the sender's drop clears `sender_alive` under it.
        let version = shared.version.load(Ordering::Acquire);
        if version != this.rx.seen {
            this.unregister(&mut state);
            this.rx.seen = version;
            return Poll::Ready(Ok(true));
        }
        if !state.sender_alive {
            this.unregister(&mut state);
            return Poll::Ready(Ok(false));
        }
        match this.node {
            Some(key) if state.waiters.is_linked(key) => state.waiters.update(key, cx.waker()),
            _ => {
                this.unregister(&mut state);
                this.node = Some(state.waiters.push_back((), cx.waker()));
            }
        }
        Poll::Pending
    }
}

impl<T> Drop for Changed<'_, T> {
    fn drop(&mut self) {
        if self.node.is_some() {
            let shared = self.rx.shared.clone();
            let mut state = shared.state.lock();
            self.unregister(&mut state);
        }
    }
}

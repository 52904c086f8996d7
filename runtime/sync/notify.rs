//! [`Notify`]: wake one waiter or all of them, the building block for condition
//! variables.
//!
//! State under one `parking_lot::Mutex`: a stored permit (a `notify_one` with nobody
//! waiting), a FIFO [`WaitList`] of waiters, and a generation counter bumped by
//! `notify_waiters` (mirrored in an atomic so a new [`Notified`] can read it without
//! the lock). A waiter's node records how it was served: by `notify_one` (a
//! notification that must not be lost: passed on if the waiter is dropped) or by
//! `notify_waiters` (a broadcast: nothing to pass on).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Served {
    Waiting,
    One,
    All,
}

struct NotifyState {
    permit: bool,
    waiters: WaitList<Served>,
}

impl NotifyState {
    fn notify_one(&mut self) -> Option<std::task::Waker> {
        match self.waiters.pop_front_ready() {
            Some(node) => {
                node.state = Served::One;
                node.take_waker()
            }
            None => {
                self.permit = true;
                None
            }
        }
    }
}

/// Notifies tasks: [`notify_one`](Notify::notify_one) wakes the first waiter (or, if
/// none waits, lets the next [`notified`](Notify::notified) complete at once);
/// [`notify_waiters`](Notify::notify_waiters) wakes every current waiter.
///
/// Waiting is a checkpoint. A waiter cancelled before it was notified consumes no
/// notification; a `notify_one` already handed to a waiter is returned to it, or
/// passed to the next waiter if the wait is dropped. `Notify` is `Sync`: notify from
/// any thread.
///
/// A condition variable is a [`Mutex`](super::Mutex) plus a `Notify`: create the
/// `notified()` future *before* releasing the lock and re-check the condition after
/// waking, as with any condition variable.
///
/// ```
/// use scope_runtime::sync::Notify;
/// use scope_runtime::spawn;
/// use std::rc::Rc;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let notify = Rc::new(Notify::new());
///     let n2 = notify.clone();
///     let waiter = spawn(async move { n2.notified().await.map(|()| "woken") });
///     notify.notify_one();
///     assert_eq!(waiter.await.unwrap().unwrap(), "woken");
/// });
/// ```
pub struct Notify {
    state: Mutex<NotifyState>,
    /// Number of `notify_waiters` calls (written under `state`'s lock).
    generation: AtomicU64,
}

impl Notify {
    /// A `Notify` with no stored permit.
    ///
    /// ```
    /// static WAKE: scope_runtime::sync::Notify = scope_runtime::sync::Notify::new();
    /// WAKE.notify_one();
    /// ```
    pub const fn new() -> Notify {
        Notify {
            state: Mutex::new(NotifyState {
                permit: false,
                waiters: WaitList::new(SyncKind::Notified),
            }),
            generation: AtomicU64::new(0),
        }
    }

    /// Wakes the first waiter; if none waits, stores one permit (several calls store
    /// one) that the next `notified()` consumes at once.
    ///
    /// ```
    /// use scope_runtime::sync::Notify;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let n = Notify::new();
    ///     n.notify_one(); // nobody waits yet: stored
    ///     assert_eq!(n.notified().await, Ok(()));
    /// });
    /// ```
    pub fn notify_one(&self) {
        let waker = self.state.lock().notify_one();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Wakes every task waiting now, and every [`Notified`] future created before this
    /// call even if it has not been polled yet. Stores no permit.
    ///
    /// ```
    /// use scope_runtime::sync::Notify;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let n = Notify::new();
    ///     let early = n.notified(); // created before the broadcast
    ///     n.notify_waiters();
    ///     assert_eq!(early.await, Ok(()));
    ///     assert!(scope_runtime::move_on_after(std::time::Duration::from_millis(1), n.notified())
    ///         .await
    ///         .unwrap()
    ///         .is_none()); // no permit was stored
    /// });
    /// ```
    pub fn notify_waiters(&self) {
        let mut wakes = WakeList::default();
        {
            let mut st = self.state.lock();
            self.generation.fetch_add(1, Ordering::AcqRel);
            st.waiters.drain_ready(|node| {
                node.state = Served::All;
                wakes.push_opt(node.take_waker());
            });
        }
        wakes.wake_all();
    }

    /// Waits for a notification. A checkpoint (see the type's doc).
    ///
    /// ```
    /// use scope_runtime::sync::Notify;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let n = Notify::new();
    ///     assert!(move_on_after(Duration::from_secs(1), n.notified()).await.unwrap().is_none());
    ///     n.notify_one(); // the cancelled waiter did not take it
    ///     assert_eq!(n.notified().await, Ok(()));
    /// });
    /// ```
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            notify: self,
            generation: self.generation.load(Ordering::Acquire),
            node: None,
        }
    }
}

impl Default for Notify {
    fn default() -> Notify {
        Notify::new()
    }
}

impl fmt::Debug for Notify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Notify")
            .field("permit", &st.permit)
            .field("waiting", &!st.waiters.is_empty())
            .finish()
    }
}

/// The future of [`Notify::notified`].
///
/// ```
/// use scope_runtime::sync::Notify;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let n = Notify::new();
///     let notified = n.notified();
///     n.notify_one();
///     assert_eq!(notified.await, Ok(()));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Notified<'a> {
    notify: &'a Notify,
    /// `notify.generation` when this future was created.
    generation: u64,
    node: Option<usize>,
}

impl fmt::Debug for Notified<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notified")
            .field("waiting", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl Future for Notified<'_> {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let notify = this.notify;
        let mut st = notify.state.lock();
        if let Some(key) = this.node {
            if st.waiters.node(key).state != Served::Waiting {
                // Notified while we waited (R10: kept even if we are cancelled now).
                st.waiters.remove(key);
                this.node = None;
                return Poll::Ready(Ok(()));
            }
        }
        if let Err(c) = checkpoint() {
            if let Some(key) = this.node.take() {
                st.waiters.remove(key); // not notified: nothing to pass on
            }
            return Poll::Ready(Err(c));
        }
        // A broadcast since we were created, or a stored permit (left by a
        // `notify_one` that found nobody ready, possibly skipping us while we were
        // cancelled).
        let broadcast = notify.generation.load(Ordering::Acquire) != this.generation;
        if broadcast || std::mem::take(&mut st.permit) {
            if let Some(key) = this.node.take() {
                st.waiters.remove(key);
            }
            return Poll::Ready(Ok(()));
        }
        match this.node {
            Some(key) => st.waiters.update(key, cx.waker()),
            None => this.node = Some(st.waiters.push_back(Served::Waiting, cx.waker())),
        }
        Poll::Pending
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            let waker = {
                let mut st = self.notify.state.lock();
                match st.waiters.remove(key) {
                    Served::One => st.notify_one(), // pass the notification on
                    Served::Waiting | Served::All => None,
                }
            };
            if let Some(w) = waker {
                w.wake();
            }
        }
    }
}

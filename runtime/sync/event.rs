//! [`Event`]: a flag set once, awaited by any number of tasks.
//!
//! The flag is an `AtomicBool` (the fast path of `is_set` and of a wait on a set
//! event); the waiters are a [`WaitList`] under a `parking_lot::Mutex`. `set` flips the
//! flag, then takes every queued node off the list (marking it served) and wakes it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

/// An event: set once, waited on by many. `Sync`: [`set`](Event::set) may be called
/// from any thread (share it with `Arc`) and wakes the runtime.
///
/// Waiting is a checkpoint, like every wait of this module: a cancelled wait fails with
/// `Cancelled` even if the event is already set (Trio's rule), except that a waiter
/// woken by `set` before it was cancelled returns `Ok`.
///
/// ```
/// use scope_runtime::sync::Event;
/// use scope_runtime::{sleep, spawn, Cancelled};
/// use std::{rc::Rc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let ready = Rc::new(Event::new());
///     let waiters: Vec<_> = (0..3)
///         .map(|_| {
///             let ready = ready.clone();
///             spawn(async move { ready.wait().await })
///         })
///         .collect();
///     sleep(Duration::from_secs(1)).await.unwrap();
///     assert!(!ready.is_set());
///     ready.set();
///     for w in waiters {
///         assert!(matches!(w.await.unwrap(), scope_runtime::Outcome::Ok(())));
///     }
/// });
/// ```
pub struct Event {
    set: AtomicBool,
    waiters: Mutex<WaitList<()>>,
}

impl Event {
    /// An event that is not set.
    ///
    /// ```
    /// static SHUTDOWN: scope_runtime::sync::Event = scope_runtime::sync::Event::new();
    /// assert!(!SHUTDOWN.is_set());
    /// ```
    pub const fn new() -> Event {
        Event {
            set: AtomicBool::new(false),
            waiters: Mutex::new(WaitList::new(SyncKind::Event)),
        }
    }

    /// Sets the event and wakes every waiter. Returns `false` if it was already set.
    /// Not async, not a checkpoint; callable from any thread.
    ///
    /// ```
    /// let ev = scope_runtime::sync::Event::new();
    /// assert!(ev.set());
    /// assert!(!ev.set());
    /// assert!(ev.is_set());
    /// ```
    pub fn set(&self) -> bool {
        if self.set.swap(true, Ordering::AcqRel) {
            return false;
        }
        let mut wakes = WakeList::default();
        // Waiters already cancelled stay queued: they fail when they run (their task
        // was woken by the cancel), like a waiter that left before the `set`.
        self.waiters
            .lock()
            .drain_ready(|node| wakes.push_opt(node.take_waker()));
        wakes.wake_all();
        true
    }

    /// Whether the event is set.
    ///
    /// ```
    /// let ev = scope_runtime::sync::Event::new();
    /// assert!(!ev.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Waits until the event is set. A checkpoint (see the type's doc).
    ///
    /// ```
    /// use scope_runtime::sync::Event;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let ev = Event::new();
    ///     // Never set: the wait is cancelled by the timeout.
    ///     assert_eq!(move_on_after(Duration::from_secs(5), ev.wait()).await, Ok(None));
    ///     ev.set();
    ///     assert_eq!(ev.wait().await, Ok(()));
    /// });
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            node: None,
        }
    }
}

impl Default for Event {
    fn default() -> Event {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}

/// The future of [`Event::wait`].
///
/// ```
/// use scope_runtime::sync::Event;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let ev = Event::new();
///     let wait = ev.wait();
///     ev.set(); // set after the future was created, before it was polled
///     assert_eq!(wait.await, Ok(()));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct EventWait<'a> {
    event: &'a Event,
    node: Option<usize>,
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("event", self.event)
            .field("waiting", &self.node.is_some())
            .finish()
    }
}

impl EventWait<'_> {
    fn unregister(&mut self) {
        if let Some(key) = self.node.take() {
            self.event.waiters.lock().remove(key);
        }
    }
}

impl Future for EventWait<'_> {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(key) = this.node {
            let mut list = this.event.waiters.lock();
            if !list.is_linked(key) {
                list.remove(key); // woken by `set` while waiting (R10)
                this.node = None;
                return Poll::Ready(Ok(()));
            }
        }
        if let Err(c) = checkpoint() {
            this.unregister();
            return Poll::Ready(Err(c));
        }
        if this.event.is_set() {
            this.unregister();
            return Poll::Ready(Ok(()));
        }
        let mut list = this.event.waiters.lock();
        // Checked again under the lock: `set` flips the flag before it takes the lock.
        if this.event.is_set() {
            if let Some(key) = this.node.take() {
                list.remove(key);
            }
            return Poll::Ready(Ok(()));
        }
        match this.node {
            Some(key) => list.update(key, cx.waker()),
            None => this.node = Some(list.push_back((), cx.waker())),
        }
        Poll::Pending
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        self.unregister();
    }
}

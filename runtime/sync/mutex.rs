//! [`Mutex`]: a fair (FIFO) async lock.
//!
//! Two locks inside, never held at the same time by the same code:
//!
//! * `state` (a `parking_lot::Mutex<LockState>`): the `locked` flag and the queue of
//!   waiters. Unlocking with waiters queued does not clear `locked`: ownership passes
//!   **directly** to the first waiter (its node is marked served), so a newcomer can
//!   never barge in ahead of it, and a waiter granted the lock keeps it even if it is
//!   cancelled before it runs again.
//! * `data` (a `parking_lot::Mutex<T>`): the value. Only the owner of the async lock
//!   takes it, with `try_lock`, which therefore always succeeds; the guard holds it.
//!   This keeps the module free of `unsafe` at the cost of one uncontended atomic
//!   pair per lock, and makes [`MutexGuard`] `!Send` (fine on this single-threaded
//!   runtime).
//!
//! Waiters are queued only while `locked` is true, except waiters that were already
//! cancelled when the lock was released: a release skips them (see `wait_list`), and
//! they leave the queue when they run.

use std::fmt;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::wait_list::{WaitList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

struct LockState {
    locked: bool,
    waiters: WaitList<()>,
}

/// A fair async mutex: waiters get the lock in the order they asked for it.
///
/// Locking is a checkpoint: a cancelled waiter fails with `Cancelled` and never holds
/// the lock (its place goes to the next waiter); a waiter that was granted the lock
/// before it was cancelled gets the guard. `Mutex<T>` is `Sync` for
/// `T: Send`.
///
/// ```
/// use scope_runtime::sync::Mutex;
/// use scope_runtime::{task_group, sleep};
/// use std::{rc::Rc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let log = Rc::new(Mutex::new(Vec::new()));
///     task_group(|tg| {
///         let log = log.clone();
///         async move {
///             for i in 0..3 {
///                 let log = log.clone();
///                 tg.spawn(async move {
///                     let mut g = log.lock().await?;
///                     sleep(Duration::from_millis(10)).await?; // others queue up meanwhile
///                     g.push(i);
///                     Ok(())
///                 });
///             }
///             Ok(())
///         }
///     })
///     .await
///     .unwrap();
///     assert_eq!(*log.lock().await.unwrap(), [0, 1, 2]); // FIFO
/// });
/// ```
pub struct Mutex<T: ?Sized> {
    state: parking_lot::Mutex<LockState>,
    data: parking_lot::Mutex<T>,
}

impl<T> Mutex<T> {
    /// A mutex holding `value`, unlocked.
    ///
    /// ```
    /// static COUNTER: scope_runtime::sync::Mutex<u32> = scope_runtime::sync::Mutex::new(0);
    /// assert_eq!(*COUNTER.try_lock().unwrap(), 0);
    /// ```
    pub const fn new(value: T) -> Mutex<T> {
        Mutex {
            state: parking_lot::Mutex::new(LockState {
                locked: false,
                waiters: WaitList::new(SyncKind::Lock),
            }),
            data: parking_lot::Mutex::new(value),
        }
    }

    /// The value (no locking needed: the mutex is consumed).
    ///
    /// ```
    /// let m = scope_runtime::sync::Mutex::new(5);
    /// assert_eq!(m.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Locks the mutex, waiting in FIFO order. A checkpoint (see the type's doc).
    ///
    /// ```
    /// use scope_runtime::sync::Mutex;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let m = Mutex::new(0);
    ///     let held = m.lock().await.unwrap();
    ///     // Cannot get it while it is held: the timeout cancels the wait.
    ///     assert!(move_on_after(Duration::from_secs(1), m.lock()).await.unwrap().is_none());
    ///     drop(held);
    ///     *m.lock().await.unwrap() += 1;
    ///     assert_eq!(*m.lock().await.unwrap(), 1);
    /// });
    /// ```
    pub fn lock(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            node: None,
            shielded: false,
        }
    }

    /// Like [`lock`](Self::lock), but no cancellation stops it: not a checkpoint, and
    /// its place in the queue is kept when the code around it is cancelled. For a
    /// `Condition` re-taking the lock after it was notified.
    pub(crate) fn lock_shielded(&self) -> Lock<'_, T> {
        Lock {
            mutex: self,
            node: None,
            shielded: true,
        }
    }

    /// Locks the mutex if it is free and nobody is waiting; never waits (not a
    /// checkpoint).
    ///
    /// ```
    /// let m = scope_runtime::sync::Mutex::new(());
    /// let g = m.try_lock().unwrap();
    /// assert!(m.try_lock().is_none());
    /// drop(g);
    /// assert!(m.try_lock().is_some());
    /// ```
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let mut st = self.state.lock();
        if st.locked {
            return None;
        }
        st.locked = true;
        drop(st);
        Some(self.guard())
    }

    /// Whether the mutex is held (or being handed to a waiter).
    ///
    /// ```
    /// let m = scope_runtime::sync::Mutex::new(1);
    /// let _g = m.try_lock();
    /// assert!(m.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.state.lock().locked
    }

    /// Mutable access without locking (the borrow proves exclusivity).
    ///
    /// ```
    /// let mut m = scope_runtime::sync::Mutex::new(1);
    /// *m.get_mut() = 2;
    /// assert_eq!(*m.try_lock().unwrap(), 2);
    /// ```
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    /// Builds the guard of the owner of the async lock.
    fn guard(&self) -> MutexGuard<'_, T> {
        let data = self
            .data
            .try_lock()
            .expect("scope_runtime::sync::Mutex: the owner of the lock finds the data free");
        MutexGuard {
            mutex: self,
            data: Some(data),
        }
    }

    /// Gives up ownership: to the first waiter, or unlocks.
    fn release(&self) {
        let waker = {
            let mut st = self.state.lock();
            match st.waiters.pop_front_ready() {
                Some(node) => node.take_waker(), // `locked` stays true: handed over
                None => {
                    st.locked = false;
                    None
                }
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Mutex")
            .field("locked", &st.locked)
            .field("waiting", &!st.waiters.is_empty())
            .finish_non_exhaustive()
    }
}

/// The future of [`Mutex::lock`].
///
/// ```
/// use scope_runtime::sync::Mutex;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let m = Mutex::new(1);
///     let lock = m.lock();
///     assert!(!m.is_locked(), "nothing happens until it is awaited");
///     assert_eq!(*lock.await.unwrap(), 1);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Lock<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    node: Option<usize>,
    /// Not a checkpoint, not registered with the status tree (`lock_shielded`).
    shielded: bool,
}

impl<T: ?Sized> fmt::Debug for Lock<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("waiting", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized> Future for Lock<'a, T> {
    type Output = Result<MutexGuard<'a, T>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mutex = this.mutex;
        let mut st = mutex.state.lock();
        if let Some(key) = this.node {
            if !st.waiters.is_linked(key) {
                // Granted while we waited (R10: kept even if we are cancelled now).
                st.waiters.remove(key);
                this.node = None;
                drop(st);
                return Poll::Ready(Ok(mutex.guard()));
            }
        }
        if !this.shielded {
            if let Err(c) = checkpoint() {
                if let Some(key) = this.node.take() {
                    st.waiters.remove(key); // not granted: nothing to pass on
                }
                return Poll::Ready(Err(c));
            }
        }
        if !st.locked {
            // Free. A queued waiter finds it free only if it was released past us
            // while we were cancelled (and skipped).
            st.locked = true;
            if let Some(key) = this.node.take() {
                st.waiters.remove(key);
            }
            drop(st);
            return Poll::Ready(Ok(mutex.guard()));
        }
        match (this.node, this.shielded) {
            (Some(key), false) => st.waiters.update(key, cx.waker()),
            (Some(key), true) => st.waiters.update_unarmed(key, cx.waker()),
            (None, false) => this.node = Some(st.waiters.push_back((), cx.waker())),
            (None, true) => this.node = Some(st.waiters.push_back_unarmed((), cx.waker())),
        }
        Poll::Pending
    }
}

impl<T: ?Sized> Drop for Lock<'_, T> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            let granted = {
                let mut st = self.mutex.state.lock();
                let granted = !st.waiters.is_linked(key);
                st.waiters.remove(key);
                granted
            };
            if granted {
                self.mutex.release(); // pass the lock on
            }
        }
    }
}

/// Access to the value of a locked [`Mutex`]; unlocks (handing the lock to the next
/// waiter, if any) when dropped.
///
/// ```
/// use scope_runtime::sync::Mutex;
///
/// let m = Mutex::new(String::from("a"));
/// {
///     let mut g = m.try_lock().unwrap();
///     g.push('b');
/// } // unlocked here
/// assert_eq!(m.try_lock().unwrap().as_str(), "ab");
/// ```
pub struct MutexGuard<'a, T: ?Sized> {
    mutex: &'a Mutex<T>,
    /// Released before the async lock is handed on (taken in `drop`).
    data: Option<parking_lot::MutexGuard<'a, T>>,
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_deref().expect("guard data present until drop")
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data
            .as_deref_mut()
            .expect("guard data present until drop")
    }
}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard locks.
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.mutex
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.data.take());
        self.mutex.release();
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

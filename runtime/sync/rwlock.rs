//! [`RwLock`]: a fair async reader-writer lock.
//!
//! Like [`Mutex`](super::Mutex), two locks inside, never held at once by the same code:
//!
//! * `state` (a `parking_lot::Mutex<LockState>`): how many readers hold the lock,
//!   whether a writer does, and one FIFO queue of waiting readers and writers.
//!   Releasing serves the queue **in order**: a waiting writer is granted the lock once
//!   no one holds it; readers at the front are granted it together until the first
//!   writer. A newcomer never overtakes a queued waiter, so writers are not starved by
//!   a stream of readers ("writer-preferring": once a writer waits, later readers queue
//!   behind it). A grant is a direct hand-off: the waiter keeps the lock even if it is
//!   cancelled before it runs again.
//! * `data` (a `parking_lot::RwLock<T>`): the value. Only the holders of the async lock
//!   take it, with `try_read` / `try_write`, which therefore always succeed.
//!
//! A queued waiter that leaves without being served (cancelled, dropped) re-runs the
//! grant, since it may have been what held the waiters behind it back.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

/// What a queued waiter wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Read,
    Write,
}

struct LockState {
    readers: usize,
    writer: bool,
    waiters: WaitList<Want>,
}

impl LockState {
    fn can_read(&self) -> bool {
        !self.writer
    }

    fn can_write(&self) -> bool {
        !self.writer && self.readers == 0
    }

    /// Serves the queue in order, as far as the lock allows; collects the wakers.
    fn grant(&mut self, wakes: &mut WakeList) {
        while let Some(key) = self.waiters.front_ready() {
            let want = self.waiters.node(key).state;
            match want {
                Want::Write if self.can_write() => self.writer = true,
                Want::Read if self.can_read() => self.readers += 1,
                _ => return,
            }
            let node = self
                .waiters
                .pop_front_ready()
                .expect("the front waiter is ready");
            wakes.push_opt(node.take_waker());
            if want == Want::Write {
                return;
            }
        }
    }

    /// Gives back what `want` held and serves the queue.
    fn release(&mut self, want: Want, wakes: &mut WakeList) {
        match want {
            Want::Read => self.readers -= 1,
            Want::Write => self.writer = false,
        }
        self.grant(wakes);
    }
}

/// A fair async reader-writer lock: any number of readers, or one writer.
///
/// Waiters are served in arrival order (see the module doc of this type's source for
/// the exact rule): a writer waiting behind readers gets the lock as soon as they are
/// done, and readers that arrive after it wait behind it. Acquiring is a checkpoint: a
/// cancelled waiter never holds the lock (its place goes to those behind it); a
/// waiter that was granted the lock before it was cancelled gets the guard.
/// `RwLock<T>` is `Sync` for `T: Send + Sync`; the guards are `!Send` (keep them within
/// one task).
///
/// ```
/// use scope_runtime::sync::RwLock;
/// use scope_runtime::{sleep, task_group};
/// use std::{rc::Rc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let config = Rc::new(RwLock::new(String::from("v1")));
///     task_group(|tg| async move {
///         for _ in 0..3 {
///             let config = config.clone();
///             tg.spawn(async move {
///                 let c = config.read().await?; // readers share the lock
///                 assert!(c.starts_with('v'));
///                 sleep(Duration::from_secs(1)).await?;
///                 Ok(())
///             });
///         }
///         *config.write().await? = String::from("v2"); // after the three readers
///         assert_eq!(*config.read().await?, "v2");
///         Ok(())
///     })
///     .await
///     .unwrap();
/// });
/// ```
pub struct RwLock<T: ?Sized> {
    state: parking_lot::Mutex<LockState>,
    data: parking_lot::RwLock<T>,
}

impl<T> RwLock<T> {
    /// An unlocked lock holding `value`.
    ///
    /// ```
    /// static TABLE: scope_runtime::sync::RwLock<Vec<u32>> =
    ///     scope_runtime::sync::RwLock::new(Vec::new());
    /// ```
    pub const fn new(value: T) -> RwLock<T> {
        RwLock {
            state: parking_lot::Mutex::new(LockState {
                readers: 0,
                writer: false,
                waiters: WaitList::new(SyncKind::RwLock),
            }),
            data: parking_lot::RwLock::new(value),
        }
    }

    /// Consumes the lock, returning the value.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T: ?Sized> RwLock<T> {
    /// Waits for shared access. A checkpoint (see the type's doc). Readers share the
    /// lock, but a reader that arrives while a writer waits queues behind the writer
    /// (writer-preferring, so a stream of readers cannot starve a writer).
    ///
    /// ```
    /// use scope_runtime::sync::RwLock;
    /// use scope_runtime::testing::wait_all_tasks_blocked;
    /// use scope_runtime::{Cancelled, Outcome, spawn};
    /// use std::rc::Rc;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let lock = Rc::new(RwLock::new(0));
    ///     let first = lock.read().await.unwrap();
    ///     let second = lock.read().await.unwrap(); // readers share
    ///     let l = lock.clone();
    ///     let writer = spawn(async move {
    ///         *l.write().await? += 1;
    ///         Ok::<_, Cancelled>(())
    ///     });
    ///     wait_all_tasks_blocked().await.unwrap(); // the writer waits
    ///     assert!(lock.try_read().is_none()); // so a new reader would wait too
    ///     drop((first, second));
    ///     assert!(matches!(writer.await.unwrap(), Outcome::Ok(())));
    ///     assert_eq!(*lock.read().await.unwrap(), 1);
    /// });
    /// ```
    pub fn read(&self) -> Acquire<'_, T, Read> {
        Acquire {
            lock: self,
            node: None,
            want: PhantomData,
        }
    }

    /// Waits for exclusive access. A checkpoint (see the type's doc).
    ///
    /// ```
    /// use scope_runtime::sync::RwLock;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let lock = RwLock::new(0);
    ///     let reader = lock.read().await.unwrap();
    ///     // The reader holds it for good: the writer gives up after 1 s, holding nothing.
    ///     assert!(move_on_after(Duration::from_secs(1), lock.write()).await.unwrap().is_none());
    ///     drop(reader);
    ///     *lock.write().await.unwrap() += 1;
    ///     assert_eq!(*lock.read().await.unwrap(), 1);
    /// });
    /// ```
    pub fn write(&self) -> Acquire<'_, T, Write> {
        Acquire {
            lock: self,
            node: None,
            want: PhantomData,
        }
    }

    /// Shared access if it is free now and no one waits (not a checkpoint); see
    /// [`read`](Self::read) for an example.
    pub fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let mut st = self.state.lock();
        if !st.can_read() || st.waiters.front_ready().is_some() {
            return None;
        }
        st.readers += 1;
        drop(st);
        Some(Read::guard(self))
    }

    /// Exclusive access if it is free now and no one waits (not a checkpoint).
    ///
    /// ```
    /// let lock = scope_runtime::sync::RwLock::new(1);
    /// let r = lock.try_read().unwrap();
    /// assert!(lock.try_write().is_none());
    /// drop(r);
    /// assert!(lock.try_write().is_some());
    /// ```
    pub fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let mut st = self.state.lock();
        if !st.can_write() || st.waiters.front_ready().is_some() {
            return None;
        }
        st.writer = true;
        drop(st);
        Some(Write::guard(self))
    }

    /// Exclusive access through `&mut self` (no locking needed).
    pub fn get_mut(&mut self) -> &mut T {
        self.data.get_mut()
    }

    fn release(&self, want: Want) {
        let mut wakes = WakeList::default();
        self.state.lock().release(want, &mut wakes);
        wakes.wake_all();
    }
}

impl<T: Default> Default for RwLock<T> {
    fn default() -> RwLock<T> {
        RwLock::new(T::default())
    }
}

impl<T: ?Sized> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("RwLock")
            .field("readers", &st.readers)
            .field("writer", &st.writer)
            .field("waiting", &!st.waiters.is_empty())
            .finish_non_exhaustive()
    }
}

/// Marks an [`Acquire`] for shared access ([`RwLock::read`]).
#[derive(Debug, Clone, Copy)]
pub struct Read;

/// Marks an [`Acquire`] for exclusive access ([`RwLock::write`]).
#[derive(Debug, Clone, Copy)]
pub struct Write;

/// The kind of access an [`Acquire`] waits for: [`Read`] or [`Write`].
pub trait Access: sealed::Sealed {
    /// The guard the access gives.
    type Guard<'a, T: ?Sized + 'a>;
    /// Whether this is exclusive access.
    #[doc(hidden)]
    fn is_write() -> bool;
    #[doc(hidden)]
    fn guard<T: ?Sized>(lock: &RwLock<T>) -> Self::Guard<'_, T>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Read {}
    impl Sealed for super::Write {}
}

impl Access for Read {
    type Guard<'a, T: ?Sized + 'a> = RwLockReadGuard<'a, T>;
    fn is_write() -> bool {
        false
    }
    fn guard<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
        let data = lock
            .data
            .try_read()
            .expect("scope_runtime::sync::RwLock: a granted reader finds the data free");
        RwLockReadGuard {
            lock,
            data: Some(data),
        }
    }
}

impl Access for Write {
    type Guard<'a, T: ?Sized + 'a> = RwLockWriteGuard<'a, T>;
    fn is_write() -> bool {
        true
    }
    fn guard<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
        let data = lock
            .data
            .try_write()
            .expect("scope_runtime::sync::RwLock: a granted writer finds the data free");
        RwLockWriteGuard {
            lock,
            data: Some(data),
        }
    }
}

/// The future of [`RwLock::read`] and [`RwLock::write`].
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a, T: ?Sized, A> {
    lock: &'a RwLock<T>,
    node: Option<usize>,
    want: PhantomData<A>,
}

// Nothing in it is pinned (the marker is only a type).
impl<T: ?Sized, A> Unpin for Acquire<'_, T, A> {}

impl<T: ?Sized, A: Access> fmt::Debug for Acquire<'_, T, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("write", &A::is_write())
            .field("waiting", &self.node.is_some())
            .finish_non_exhaustive()
    }
}

impl<'a, T: ?Sized, A: Access> Future for Acquire<'a, T, A> {
    type Output = Result<A::Guard<'a, T>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let lock = this.lock;
        let want = if A::is_write() {
            Want::Write
        } else {
            Want::Read
        };
        let mut st = lock.state.lock();
        if let Some(key) = this.node {
            if !st.waiters.is_linked(key) {
                // Granted while we waited: kept even if we are cancelled now.
                st.waiters.remove(key);
                this.node = None;
                drop(st);
                return Poll::Ready(Ok(A::guard(lock)));
            }
        }
        if let Err(c) = checkpoint() {
            if let Some(key) = this.node.take() {
                st.waiters.remove(key);
                // We may have held back the waiters behind us.
                let mut wakes = WakeList::default();
                st.grant(&mut wakes);
                drop(st);
                wakes.wake_all();
            }
            return Poll::Ready(Err(c));
        }
        if let Some(key) = this.node {
            st.waiters.update(key, cx.waker());
            return Poll::Pending;
        }
        let free = match want {
            Want::Read => st.can_read(),
            Want::Write => st.can_write(),
        };
        if free && st.waiters.front_ready().is_none() {
            match want {
                Want::Read => st.readers += 1,
                Want::Write => st.writer = true,
            }
            drop(st);
            return Poll::Ready(Ok(A::guard(lock)));
        }
        this.node = Some(st.waiters.push_back(want, cx.waker()));
        Poll::Pending
    }
}

impl<T: ?Sized, A> Drop for Acquire<'_, T, A> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            let mut wakes = WakeList::default();
            {
                let mut st = self.lock.state.lock();
                let granted = !st.waiters.is_linked(key);
                let want = st.waiters.remove(key);
                if granted {
                    st.release(want, &mut wakes); // pass the grant on
                } else {
                    st.grant(&mut wakes);
                }
            }
            wakes.wake_all();
        }
    }
}

/// Shared access to an [`RwLock`]'s value; releases it when dropped.
pub struct RwLockReadGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    data: Option<parking_lot::RwLockReadGuard<'a, T>>,
}

impl<T: ?Sized> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_deref().expect("guard data present until drop")
    }
}

impl<T: ?Sized> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.data.take());
        self.lock.release(Want::Read);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// Exclusive access to an [`RwLock`]'s value; releases it when dropped.
pub struct RwLockWriteGuard<'a, T: ?Sized> {
    lock: &'a RwLock<T>,
    data: Option<parking_lot::RwLockWriteGuard<'a, T>>,
}

impl<T: ?Sized> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.data.as_deref().expect("guard data present until drop")
    }
}

impl<T: ?Sized> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.data
            .as_deref_mut()
            .expect("guard data present until drop")
    }
}

impl<T: ?Sized> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.data.take());
        self.lock.release(Want::Write);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

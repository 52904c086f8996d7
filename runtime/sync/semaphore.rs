//! [`Semaphore`]: a fair counting semaphore whose permits are guards.
//!
//! State under one `parking_lot::Mutex`: the number of free permits and a FIFO
//! [`WaitList`] of waiters, each with the number of permits it asks for (its node's
//! state). A waiter is served only by being given its permits, so a node no longer
//! linked in the queue is a granted one: no flag of its own (8 bytes less per waiter,
//! benchmark B9).
//!
//! Fairness: a waiter is served only from the front of the queue, so a big request
//! at the front holds back smaller ones behind it (no starvation), and a newcomer
//! takes permits directly only when nobody is queued. Serving a waiter moves the
//! permits into its node (`granted`): it returns them as a guard even if cancelled
//! meanwhile, and passes them on if dropped. A queued waiter that leaves (cancel
//! or drop) may unblock the ones behind it, so the queue is re-examined.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::wait_list::{Link, WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

struct SemState {
    permits: usize,
    /// The permits wanted, per waiter; granted once its node is unlinked (served).
    waiters: WaitList<usize>,
}

impl SemState {
    /// Serves waiters from the front (skipping those already cancelled) while the
    /// free permits cover their request: each served node is unlinked, which grants it.
    fn serve(&mut self, wakes: &mut WakeList) {
        while let Some(key) = self.waiters.front_ready() {
            let wanted = self.waiters.node(key).state;
            if wanted > self.permits {
                break;
            }
            self.permits -= wanted;
            let node = self.waiters.pop_front_ready().expect("front exists");
            wakes.push_opt(node.take_waker());
        }
    }

    fn add(&mut self, n: usize, wakes: &mut WakeList) {
        self.permits = self
            .permits
            .checked_add(n)
            .expect("scope_runtime::sync::Semaphore: permit count overflow");
        self.serve(wakes);
    }
}

/// A counting semaphore. Acquiring waits (FIFO) until enough permits are free and
/// returns them as a [`SemaphorePermit`] guard that gives them back when dropped.
///
/// Acquiring is a checkpoint: a cancelled waiter takes no permit and leaves its place
/// to the next waiter; permits already granted to a waiter are returned to it even if
/// it was cancelled meanwhile. `Semaphore` is `Sync`: permits can be added from
/// any thread.
///
/// ```
/// use scope_runtime::sync::Semaphore;
/// use scope_runtime::{task_group, sleep, now};
/// use std::{sync::Arc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let sem = Arc::new(Semaphore::new(2)); // at most two jobs at a time
///     let t0 = now();
///     task_group(|tg| async move {
///         for _ in 0..6 {
///             let sem = sem.clone();
///             tg.spawn(async move {
///                 let _permit = sem.acquire().await?;
///                 sleep(Duration::from_secs(1)).await?;
///                 Ok(())
///             });
///         }
///         Ok(())
///     })
///     .await
///     .unwrap();
///     assert_eq!(now() - t0, Duration::from_secs(3));
/// });
/// ```
pub struct Semaphore {
    state: Mutex<SemState>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// ```
    /// static POOL: scope_runtime::sync::Semaphore = scope_runtime::sync::Semaphore::new(3);
    /// assert_eq!(POOL.available_permits(), 3);
    /// ```
    pub const fn new(permits: usize) -> Semaphore {
        Semaphore {
            state: Mutex::new(SemState {
                permits,
                waiters: WaitList::new(SyncKind::Acquire),
            }),
        }
    }

    /// Acquires one permit. See [`acquire_many`](Self::acquire_many).
    ///
    /// ```
    /// use scope_runtime::sync::Semaphore;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let sem = Semaphore::new(1);
    ///     let p = sem.acquire().await.unwrap();
    ///     assert_eq!(sem.available_permits(), 0);
    ///     drop(p);
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    pub fn acquire(&self) -> Acquire<'_> {
        self.acquire_many(1)
    }

    /// Acquires `n` permits at once, waiting in FIFO order. A checkpoint.
    ///
    /// `n` is a `u32` (as in tokio): an acquiring future stays two words, and no
    /// program waits for more than four billion permits at once. The count of free
    /// permits ([`available_permits`](Self::available_permits), `add_permits`) is a
    /// `usize`.
    ///
    /// ```
    /// use scope_runtime::sync::Semaphore;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let sem = Semaphore::new(2);
    ///     // 3 permits never become free: cancelled by the timeout, taking nothing.
    ///     assert!(move_on_after(Duration::from_secs(1), sem.acquire_many(3)).await.unwrap().is_none());
    ///     assert_eq!(sem.available_permits(), 2);
    ///     let p = sem.acquire_many(2).await.unwrap();
    ///     assert_eq!(p.permits(), 2);
    /// });
    /// ```
    pub fn acquire_many(&self, n: u32) -> Acquire<'_> {
        Acquire {
            sem: self,
            wait: Waiting::new(n),
        }
    }

    /// Like [`acquire_many`](Self::acquire_many), for a semaphore in an `Arc`: the
    /// permit keeps the semaphore alive and is `'static` (handy for spawned tasks).
    ///
    /// ```
    /// use scope_runtime::sync::Semaphore;
    /// use std::sync::Arc;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let sem = Arc::new(Semaphore::new(1));
    ///     let permit = sem.clone().acquire_owned(1).await.unwrap();
    ///     assert_eq!(sem.available_permits(), 0);
    ///     drop(permit);
    ///     assert_eq!(sem.available_permits(), 1);
    /// });
    /// ```
    pub fn acquire_owned(self: Arc<Self>, n: u32) -> AcquireOwned {
        AcquireOwned {
            sem: self,
            wait: Waiting::new(n),
        }
    }

    /// Takes `n` permits if they are free and nobody is waiting; never waits (not a
    /// checkpoint).
    ///
    /// ```
    /// let sem = scope_runtime::sync::Semaphore::new(1);
    /// let p = sem.try_acquire_many(1).unwrap();
    /// assert!(sem.try_acquire_many(1).is_none());
    /// drop(p);
    /// assert!(sem.try_acquire_many(1).is_some());
    /// ```
    pub fn try_acquire_many(&self, n: u32) -> Option<SemaphorePermit<'_>> {
        let n = n as usize;
        let mut st = self.state.lock();
        if st.permits < n || st.waiters.front_ready().is_some() {
            return None;
        }
        st.permits -= n;
        Some(SemaphorePermit { sem: self, n })
    }

    /// Adds `n` permits (serving waiters that can now proceed). Callable from any
    /// thread.
    ///
    /// # Panics
    ///
    /// If the count overflows `usize`.
    ///
    /// ```
    /// let sem = scope_runtime::sync::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        let mut wakes = WakeList::default();
        self.state.lock().add(n, &mut wakes);
        wakes.wake_all();
    }

    /// The number of free permits.
    ///
    /// ```
    /// let sem = scope_runtime::sync::Semaphore::new(4);
    /// let _p = sem.try_acquire_many(3);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.state.lock().permits
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.state.lock();
        f.debug_struct("Semaphore")
            .field("permits", &st.permits)
            .field("waiting", &!st.waiters.is_empty())
            .finish()
    }
}

/// What an acquire keeps between polls: the permits it wants and, while queued, the
/// key of its waiter node, 4 bytes each (an [`Acquire`] is 16 bytes: a task blocked
/// in `acquire()` keeps it in its cell, benchmark B9). Both futures run the same code
/// with the semaphore at hand.
#[derive(Debug)]
struct Waiting {
    wanted: u32,
    node: Option<Link>,
}

impl Waiting {
    fn new(wanted: u32) -> Waiting {
        Waiting { wanted, node: None }
    }

    /// `Ok(())` once the permits are ours (the caller builds the guard).
    fn poll(&mut self, sem: &Semaphore, cx: &mut Context<'_>) -> Poll<Result<(), Cancelled>> {
        let mut st = sem.state.lock();
        if let Some(key) = self.node.map(Link::key) {
            if !st.waiters.is_linked(key) {
                // Granted while we waited (R10: kept even if we are cancelled now).
                st.waiters.remove(key);
                self.node = None;
                return Poll::Ready(Ok(()));
            }
        }
        if let Err(c) = checkpoint() {
            if let Some(key) = self.node.take().map(Link::key) {
                let mut wakes = WakeList::default();
                st.waiters.remove(key);
                st.serve(&mut wakes); // we may have been holding others back
                drop(st);
                wakes.wake_all();
            }
            return Poll::Ready(Err(c));
        }
        let wanted = self.wanted as usize;
        if self.node.is_none() && st.waiters.is_empty() && st.permits >= wanted {
            st.permits -= wanted; // fast path: nobody queued
            return Poll::Ready(Ok(()));
        }
        let key = match self.node.map(Link::key) {
            Some(key) => {
                st.waiters.update(key, cx.waker());
                key
            }
            None => {
                let key = st.waiters.push_back(wanted, cx.waker());
                self.node = Link::to(key);
                key
            }
        };
        // Serve the queue with us in it: we get the permits now if every waiter ahead
        // of us is cancelled (skipped) and enough are free. Our own waker is kept aside
        // so that being served here does not wake us for nothing.
        let ours = st.waiters.node_mut(key).take_waker();
        let mut wakes = WakeList::default();
        st.serve(&mut wakes);
        let granted = !st.waiters.is_linked(key);
        if granted {
            st.waiters.remove(key);
            self.node = None;
        } else {
            st.waiters.node_mut(key).put_waker(ours);
        }
        drop(st);
        wakes.wake_all();
        if granted {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    /// The future's drop: leaves the queue, passing on permits granted meanwhile.
    fn leave(&mut self, sem: &Semaphore) {
        if let Some(key) = self.node.take().map(Link::key) {
            let mut wakes = WakeList::default();
            {
                let mut st = sem.state.lock();
                let granted = !st.waiters.is_linked(key);
                let wanted = st.waiters.remove(key);
                if granted {
                    st.add(wanted, &mut wakes); // pass the permits on
                } else {
                    st.serve(&mut wakes);
                }
            }
            wakes.wake_all();
        }
    }
}

/// The future of [`Semaphore::acquire`] and [`Semaphore::acquire_many`].
///
/// ```
/// use scope_runtime::sync::Semaphore;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let sem = Semaphore::new(2);
///     let acquire = sem.acquire_many(2);
///     assert_eq!(sem.available_permits(), 2, "nothing taken until it is awaited");
///     let p = acquire.await.unwrap();
///     assert_eq!((p.permits(), sem.available_permits()), (2, 0));
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Acquire<'a> {
    sem: &'a Semaphore,
    wait: Waiting,
}

impl fmt::Debug for Acquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acquire")
            .field("wanted", &self.wait.wanted)
            .field("waiting", &self.wait.node.is_some())
            .finish()
    }
}

impl<'a> Future for Acquire<'a> {
    type Output = Result<SemaphorePermit<'a>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let sem = this.sem;
        this.wait.poll(sem, cx).map_ok(|()| SemaphorePermit {
            sem,
            n: this.wait.wanted as usize,
        })
    }
}

impl Drop for Acquire<'_> {
    fn drop(&mut self) {
        self.wait.leave(self.sem);
    }
}

/// The future of [`Semaphore::acquire_owned`].
///
/// ```
/// use scope_runtime::sync::Semaphore;
/// use std::sync::Arc;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let sem = Arc::new(Semaphore::new(1));
///     let acquire = sem.clone().acquire_owned(1);
///     let permit = acquire.await.unwrap();
///     assert_eq!(Arc::strong_count(&sem), 2, "the permit keeps the semaphore");
///     drop(permit);
///     assert_eq!(sem.available_permits(), 1);
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct AcquireOwned {
    sem: Arc<Semaphore>,
    wait: Waiting,
}

impl fmt::Debug for AcquireOwned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AcquireOwned")
            .field("wanted", &self.wait.wanted)
            .field("waiting", &self.wait.node.is_some())
            .finish()
    }
}

impl Future for AcquireOwned {
    type Output = Result<OwnedSemaphorePermit, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.wait
            .poll(&this.sem, cx)
            .map_ok(|()| OwnedSemaphorePermit {
                sem: this.sem.clone(),
                n: this.wait.wanted as usize,
            })
    }
}

impl Drop for AcquireOwned {
    fn drop(&mut self) {
        self.wait.leave(&self.sem);
    }
}

/// Permits taken from a [`Semaphore`]; they go back when the guard is dropped.
///
/// ```
/// let sem = scope_runtime::sync::Semaphore::new(2);
/// let p = sem.try_acquire_many(2).unwrap();
/// assert_eq!(p.permits(), 2);
/// p.forget(); // never given back
/// assert_eq!(sem.available_permits(), 0);
/// ```
#[must_use = "the permits go back as soon as the guard is dropped"]
pub struct SemaphorePermit<'a> {
    sem: &'a Semaphore,
    n: usize,
}

impl SemaphorePermit<'_> {
    /// How many permits this guard holds.
    ///
    /// ```
    /// let sem = scope_runtime::sync::Semaphore::new(3);
    /// assert_eq!(sem.try_acquire_many(2).unwrap().permits(), 2);
    /// ```
    pub fn permits(&self) -> usize {
        self.n
    }

    /// Drops the guard without giving the permits back.
    ///
    /// ```
    /// let sem = scope_runtime::sync::Semaphore::new(3);
    /// sem.try_acquire_many(2).unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.add_permits(self.n);
        }
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("permits", &self.n)
            .finish()
    }
}

/// Permits taken from a [`Semaphore`] in an `Arc` ([`Semaphore::acquire_owned`]);
/// they go back when the guard is dropped.
///
/// ```
/// use scope_runtime::sync::Semaphore;
/// use std::sync::Arc;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let sem = Arc::new(Semaphore::new(3));
///     let p = sem.clone().acquire_owned(2).await.unwrap();
///     assert_eq!(p.permits(), 2);
///     std::thread::spawn(move || drop(p)).join().unwrap(); // released on another thread
///     assert_eq!(sem.available_permits(), 3);
/// });
/// ```
#[must_use = "the permits go back as soon as the guard is dropped"]
pub struct OwnedSemaphorePermit {
    sem: Arc<Semaphore>,
    n: usize,
}

impl OwnedSemaphorePermit {
    /// How many permits this guard holds.
    ///
    /// ```
    /// use std::sync::Arc;
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let sem = Arc::new(scope_runtime::sync::Semaphore::new(3));
    ///     assert_eq!(sem.acquire_owned(3).await.unwrap().permits(), 3);
    /// });
    /// ```
    pub fn permits(&self) -> usize {
        self.n
    }

    /// Drops the guard without giving the permits back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let sem = Arc::new(scope_runtime::sync::Semaphore::new(3));
    ///     sem.clone().acquire_owned(1).await.unwrap().forget();
    ///     assert_eq!(sem.available_permits(), 2);
    /// });
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.n > 0 {
            self.sem.add_permits(self.n);
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .field("permits", &self.n)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Per-waiter memory (benchmark B9): the acquire futures keep the semaphore, the
    /// count and a 4-byte node key, nothing more.
    #[test]
    fn acquire_futures_are_16_bytes() {
        assert_eq!(size_of::<Acquire<'_>>(), 16);
        assert_eq!(size_of::<AcquireOwned>(), 16);
    }
}

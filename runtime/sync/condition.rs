//! [`Condition`]: wait for a notification while giving up a [`Mutex`], Trio-style.
//!
//! The waiters are a [`WaitList`]. [`Condition::wait`] queues its node **before** it
//! releases the mutex, so a notification sent by whoever takes the mutex next cannot
//! slip between the two. A notification serves waiters in FIFO order (it skips waiters
//! already cancelled). A served waiter then re-takes the mutex with a wait no
//! cancellation can stop (`Mutex::lock_shielded`): it was notified, so it returns the
//! guard, and a cancel shows at its next checkpoint. A waiter dropped after it was
//! served passes its notification on.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use parking_lot::Mutex as PlMutex;

use super::mutex::{Lock, Mutex, MutexGuard};
use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

/// A condition variable for the runtime's [`Mutex`]: a task holding the lock waits
/// until another task notifies it, releasing the lock while it waits and holding it
/// again when it returns.
///
/// As always with condition variables, re-check the condition in a loop after each
/// wake-up. Waiting is a checkpoint: a wait cancelled before it was notified returns
/// `Err(Cancelled)` **without** the lock (the guard it was given is released); a wait
/// notified before the cancel arrived returns the guard, and the cancel fails the next
/// checkpoint. `Condition` is `Sync`.
///
/// ```
/// use scope_runtime::sync::{Condition, Mutex};
/// use scope_runtime::{sleep, task_group};
/// use std::{rc::Rc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let queue = Rc::new((Mutex::new(Vec::new()), Condition::new()));
///     let q = queue.clone();
///     task_group(|tg| async move {
///         tg.spawn(async move {
///             let (jobs, ready) = &*q;
///             let mut jobs_g = jobs.lock().await?;
///             while jobs_g.is_empty() {
///                 jobs_g = ready.wait(jobs_g).await?;
///             }
///             assert_eq!(jobs_g.pop(), Some("job 1"));
///             Ok(())
///         });
///         sleep(Duration::from_secs(1)).await?;
///         let (jobs, ready) = &*queue;
///         jobs.lock().await?.push("job 1");
///         ready.notify_one();
///         Ok(())
///     })
///     .await
///     .unwrap();
/// });
/// ```
pub struct Condition {
    waiters: PlMutex<WaitList<()>>,
}

impl Condition {
    /// A condition with no waiters.
    pub const fn new() -> Condition {
        Condition {
            waiters: PlMutex::new(WaitList::new(SyncKind::Condition)),
        }
    }

    /// Releases the lock `guard` holds, waits until notified, and takes the lock
    /// again. A checkpoint (see the type's doc for what a cancel does).
    pub fn wait<'a, T: ?Sized>(&'a self, guard: MutexGuard<'a, T>) -> Wait<'a, T> {
        Wait {
            cond: self,
            stage: Stage::Start(Some(guard)),
        }
    }

    /// Wakes the first `n` waiters (in the order they started waiting); returns how
    /// many were woken. Not async, not a checkpoint; callable from any thread. A
    /// notification with nobody waiting is not remembered.
    ///
    /// ```
    /// use scope_runtime::sync::{Condition, Mutex};
    /// use scope_runtime::testing::wait_all_tasks_blocked;
    /// use scope_runtime::{BoxError, task_group};
    /// use std::rc::Rc;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let shared = Rc::new((Mutex::new(()), Condition::new()));
    ///     assert_eq!(shared.1.notify(2), 0); // nobody waits yet
    ///     let s = shared.clone();
    ///     task_group(|tg| async move {
    ///         for _ in 0..3 {
    ///             let s = s.clone();
    ///             tg.spawn(async move {
    ///                 let guard = s.0.lock().await?;
    ///                 let _guard = s.1.wait(guard).await?;
    ///                 Ok(())
    ///             });
    ///         }
    ///         wait_all_tasks_blocked().await?; // all three wait
    ///         assert_eq!(s.1.notify(2), 2); // the first two go on
    ///         wait_all_tasks_blocked().await?;
    ///         assert_eq!(s.1.notify_all(), 1); // the last one
    ///         Ok::<_, BoxError>(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// });
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        let mut wakes = WakeList::default();
        let mut woken = 0;
        {
            let mut list = self.waiters.lock();
            while woken < n {
                match list.pop_front_ready() {
                    Some(node) => {
                        wakes.push_opt(node.take_waker());
                        woken += 1;
                    }
                    None => break,
                }
            }
        }
        wakes.wake_all();
        woken
    }

    /// Wakes the first waiter; returns whether there was one.
    pub fn notify_one(&self) -> bool {
        self.notify(1) == 1
    }

    /// Wakes every waiter; returns how many.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }
}

impl Default for Condition {
    fn default() -> Condition {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("waiting", &!self.waiters.lock().is_empty())
            .finish()
    }
}

enum Stage<'a, T: ?Sized> {
    /// Not polled yet: still holding the lock.
    Start(Option<MutexGuard<'a, T>>),
    /// Queued for a notification; the lock is released.
    Waiting {
        mutex: &'a Mutex<T>,
        node: usize,
    },
    /// Notified; taking the lock again (no cancellation stops this).
    Relocking(Lock<'a, T>),
    Done,
}

/// The future of [`Condition::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct Wait<'a, T: ?Sized> {
    cond: &'a Condition,
    stage: Stage<'a, T>,
}

impl<T: ?Sized> fmt::Debug for Wait<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            Stage::Start(_) => "start",
            Stage::Waiting { .. } => "waiting",
            Stage::Relocking(_) => "relocking",
            Stage::Done => "done",
        };
        f.debug_struct("Wait").field("stage", &stage).finish()
    }
}

// Nothing in it is pinned: the inner `Lock` is `Unpin`.
impl<T: ?Sized> Unpin for Wait<'_, T> {}

impl<'a, T: ?Sized> Future for Wait<'a, T> {
    type Output = Result<MutexGuard<'a, T>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.stage {
                Stage::Start(guard) => {
                    let guard = guard.take().expect("a started wait has its guard");
                    if let Err(c) = checkpoint() {
                        this.stage = Stage::Done;
                        drop(guard);
                        return Poll::Ready(Err(c));
                    }
                    let mutex = guard.mutex();
                    // Queued first, then the lock released: no notification can be
                    // sent in between.
                    let node = this.cond.waiters.lock().push_back((), cx.waker());
                    this.stage = Stage::Waiting { mutex, node };
                    drop(guard);
                    return Poll::Pending;
                }
                Stage::Waiting { mutex, node } => {
                    let (mutex, key) = (*mutex, *node);
                    let mut list = this.cond.waiters.lock();
                    if !list.is_linked(key) {
                        // Notified (kept even if cancelled since).
                        list.remove(key);
                        drop(list);
                        this.stage = Stage::Relocking(mutex.lock_shielded());
                        continue;
                    }
                    if let Err(c) = checkpoint() {
                        list.remove(key);
                        this.stage = Stage::Done;
                        return Poll::Ready(Err(c));
                    }
                    list.update(key, cx.waker());
                    return Poll::Pending;
                }
                Stage::Relocking(lock) => {
                    let guard = match Pin::new(lock).poll(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(g) => g.expect("a shielded lock is never cancelled"),
                    };
                    this.stage = Stage::Done;
                    return Poll::Ready(Ok(guard));
                }
                Stage::Done => panic!("Condition::wait polled after it completed"),
            }
        }
    }
}

impl<T: ?Sized> Drop for Wait<'_, T> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Waiting { node, .. } => {
                let served = {
                    let mut list = self.cond.waiters.lock();
                    let served = !list.is_linked(node);
                    list.remove(node);
                    served
                };
                if served {
                    self.cond.notify(1); // pass the notification on
                }
            }
            Stage::Relocking(lock) => {
                drop(lock); // passes the lock on if it was granted
                self.cond.notify(1); // and the notification
            }
            Stage::Start(_) | Stage::Done => {}
        }
    }
}

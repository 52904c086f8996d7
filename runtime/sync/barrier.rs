//! [`Barrier`]: `n` tasks wait until all of them have arrived.
//!
//! The waiting tasks are a [`WaitList`] under a `parking_lot::Mutex`. An arrival that
//! completes the count serves every queued waiter that is not cancelled (each node's
//! state says it was released) and returns as the leader; the barrier is then empty
//! and ready for the next round. A waiter cancelled before the release leaves and does
//! not count; one released before it was cancelled still returns `Ok`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use parking_lot::Mutex;

use super::wait_list::{WaitList, WakeList, checkpoint};
use crate::runtime::cancel::Cancelled;
use crate::runtime::observe::SyncKind;

/// A barrier for `n` tasks: each [`wait`](Barrier::wait) blocks until `n` waits are in
/// progress at once, then all of them return and the barrier starts a new round.
///
/// Waiting is a checkpoint: a cancelled wait fails with `Cancelled` and does not count
/// as an arrival (the others keep waiting for a replacement); a wait that was released
/// before it was cancelled returns `Ok`. `Barrier` is `Sync`.
///
/// ```
/// use scope_runtime::sync::Barrier;
/// use scope_runtime::{sleep, now, task_group};
/// use std::{rc::Rc, time::Duration};
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let barrier = Rc::new(Barrier::new(3));
///     let t0 = now();
///     task_group(|tg| async move {
///         for i in 1..=3u64 {
///             let barrier = barrier.clone();
///             tg.spawn(async move {
///                 sleep(Duration::from_secs(i)).await?; // arrive at 1 s, 2 s, 3 s
///                 barrier.wait().await?;
///                 assert_eq!(now() - t0, Duration::from_secs(3)); // all leave together
///                 Ok(())
///             });
///         }
///         Ok(())
///     })
///     .await
///     .unwrap();
/// });
/// ```
pub struct Barrier {
    n: usize,
    state: Mutex<State>,
}

struct State {
    /// Waiting tasks; a node's state is set to `true` when the round releases it.
    waiters: WaitList<bool>,
    /// Nodes still queued (including cancelled ones that have not left yet).
    queued: usize,
}

impl Barrier {
    /// A barrier for `n` tasks. `n == 0` behaves like `n == 1`: every wait returns at
    /// once, as the leader.
    ///
    /// ```
    /// static START: scope_runtime::sync::Barrier = scope_runtime::sync::Barrier::new(4);
    /// ```
    pub const fn new(n: usize) -> Barrier {
        Barrier {
            n: if n == 0 { 1 } else { n },
            state: Mutex::new(State {
                waiters: WaitList::new(SyncKind::Barrier),
                queued: 0,
            }),
        }
    }

    /// Waits until `n` tasks are waiting. A checkpoint (see the type's doc). Exactly one
    /// wait of each round — the one that completed it — reports
    /// [`is_leader`](BarrierWaitResult::is_leader).
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            node: None,
        }
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("n", &self.n)
            .field("waiting", &self.state.lock().queued)
            .finish()
    }
}

/// What a [`Barrier::wait`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    leader: bool,
}

impl BarrierWaitResult {
    /// Whether this wait completed its round (one per round).
    pub fn is_leader(&self) -> bool {
        self.leader
    }
}

/// The future of [`Barrier::wait`].
#[must_use = "futures do nothing unless awaited"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    node: Option<usize>,
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait")
            .field("waiting", &self.node.is_some())
            .finish()
    }
}

impl State {
    /// Removes `key`; returns whether the round released it.
    fn remove(&mut self, key: usize) -> bool {
        if self.waiters.is_linked(key) {
            self.queued -= 1;
        }
        self.waiters.remove(key)
    }
}

impl Future for BarrierWait<'_> {
    type Output = Result<BarrierWaitResult, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut state = this.barrier.state.lock();
        if let Some(key) = this.node {
            if !state.waiters.is_linked(key) {
                // Released by the round (before any cancel): it counts.
                this.node = None;
                let released = state.remove(key);
                debug_assert!(released);
                return Poll::Ready(Ok(BarrierWaitResult { leader: false }));
            }
        }
        if let Err(c) = checkpoint() {
            if let Some(key) = this.node.take() {
                state.remove(key);
            }
            return Poll::Ready(Err(c));
        }
        if let Some(key) = this.node {
            state.waiters.update(key, cx.waker());
            return Poll::Pending;
        }
        // A new arrival: does it complete the round? Only then is the exact count of
        // live waiters needed.
        if state.queued + 1 >= this.barrier.n && state.waiters.count_ready() + 1 >= this.barrier.n {
            let mut wakes = WakeList::default();
            let State { waiters, queued } = &mut *state;
            waiters.drain_ready(|node| {
                node.state = true;
                *queued -= 1;
                wakes.push_opt(node.take_waker());
            });
            drop(state);
            wakes.wake_all();
            return Poll::Ready(Ok(BarrierWaitResult { leader: true }));
        }
        this.node = Some(state.waiters.push_back(false, cx.waker()));
        state.queued += 1;
        Poll::Pending
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.node.take() {
            // A waiter dropped after its release does not undo the round.
            self.barrier.state.lock().remove(key);
        }
    }
}

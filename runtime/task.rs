//! Tasks: how they are stored, identified and woken.
//!
//! # Storage
//!
//! Every task lives in one slot of the runtime's `Slab<TaskSlot>`. A slot holds the
//! task's boxed future (type-erased to `Future<Output = ()>`: the wrapper built by
//! `spawn` writes the real outcome somewhere else, e.g. into a `JoinHandle`'s cell or
//! into its task group), its waker, the key of its *root node* in the scope tree, and
//! its name.
//!
//! While a task is polled its future is **taken out** of the slot and put back after
//! the poll. No `RefCell` borrow of the slab is held while user code runs, so a task may
//! spawn, cancel or drop other tasks freely. A slot with no future is either being
//! polled or is the `block_on` main task, whose future lives on `block_on`'s stack.
//!
//! # Identity
//!
//! A [`TaskId`] is the slab key plus a sequence number unique for the runtime's
//! lifetime. Slab keys are reused; sequence numbers are not. Every lookup compares
//! both, so a stale id (a waker or handle outliving its task) finds nothing.
//!
//! # Wakers
//!
//! A task's waker is an `Arc<TaskWaker>` behind `std::task::Wake`, created once at
//! spawn. It is `Send + Sync`:
//!
//! * `scheduled` (an `AtomicBool`) deduplicates wakes: only the wake that flips it from
//!   `false` to `true` enqueues the task. The run loop clears it just before each poll,
//!   so a wake during a poll schedules one more poll.
//! * On the runtime's own thread the id goes straight to the local ready queue.
//! * On any other thread it goes to the lock-free injector (`crossbeam_queue::SegQueue`)
//!   and the `mio::Waker` interrupts the reactor's poll.
//! * When the task ends, `scheduled` is set for good: a stale waker never enqueues.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Wake, Waker};

use crossbeam_queue::SegQueue;

use crate::scope::tree::NodeKey;

/// Identifies a task: its slab key plus a never-reused sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TaskId {
    pub(crate) key: usize,
    pub(crate) seq: u64,
}

/// State shared with other threads: how to reach this runtime from outside.
pub(crate) struct Shared {
    /// Tasks woken from other threads, drained by the run loop.
    pub(crate) injector: SegQueue<TaskId>,
    /// Interrupts the reactor's blocking poll.
    pub(crate) mio_waker: mio::Waker,
    /// Cancel requests from [`CancelHandle`](crate::CancelHandle)s: (scope's remote
    /// id, reason). Drained by the run loop.
    pub(crate) remote_cancels: SegQueue<(u64, Option<Arc<str>>)>,
}

/// The waker of one task.
pub(crate) struct TaskWaker {
    pub(crate) id: TaskId,
    /// Set when the task is in a ready queue (or has ended); see the module doc.
    pub(crate) scheduled: AtomicBool,
    pub(crate) shared: Arc<Shared>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let pushed_locally = crate::runtime::try_with_core(|core| {
            if Arc::ptr_eq(&core.shared, &self.shared) {
                core.ready.borrow_mut().push_back(self.id);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
        if !pushed_locally {
            self.shared.injector.push(self.id);
            // A failed wake means the poll is gone (runtime dropped): nothing to do.
            let _ = self.shared.mio_waker.wake();
        }
    }
}

/// The type-erased future of a spawned task.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

/// One task of the runtime.
pub(crate) struct TaskSlot {
    pub(crate) id: TaskId,
    /// `None` while the task is being polled, and always for the `block_on` task.
    pub(crate) future: Option<BoxFuture>,
    pub(crate) handle: Arc<TaskWaker>,
    pub(crate) waker: Waker,
    /// The task's root node in the scope tree (holds its `cancelling` count).
    pub(crate) root: NodeKey,
    pub(crate) name: Option<Arc<str>>,
}

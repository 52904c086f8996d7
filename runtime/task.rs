//! Tasks: how they are stored, identified and woken.
//!
//! # Storage
//!
//! Every task lives in one slot of the runtime's `Slab<TaskSlot>`. A slot holds an
//! `Rc<dyn Runnable>` — the task's single allocation, holding its future and, for
//! `spawn`, the outcome its `JoinHandle` reads — its waker, the key of its *root node*
//! in the scope tree (if it has one yet), and its name.
//!
//! To poll a task the run loop clones the `Rc` out of the slot and releases the slab
//! borrow: no `RefCell` borrow of the slab is held while user code runs, so a task may
//! spawn, cancel or drop other tasks freely. The `block_on` main task has no
//! `Runnable`: its future lives on `block_on`'s stack.
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
//! * A finished task's `Arc<TaskWaker>` that nobody else holds (no stale waker can
//!   exist) is kept in a small free list and reused by the next spawn.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Wake};

use crossbeam_queue::SegQueue;

use super::cancel::NodeKey;
use super::core::RuntimeId;
use super::ignored_cancel::IgnoredCancelWatch;
use super::observe::dump::DumpReply;

/// Identifies a task: its runtime, its slab key, and a sequence number that runtime
/// never reuses. Comparing whole ids (as every lookup does) makes an id of another
/// runtime, or of a finished task whose slot was reused, a miss. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TaskId {
    key: u32,
    pub(crate) runtime: RuntimeId,
    pub(crate) seq: u64,
}

impl TaskId {
    pub(crate) fn new(runtime: RuntimeId, key: usize, seq: u64) -> TaskId {
        TaskId {
            key: u32::try_from(key).expect("scope_runtime: more than 4 billion live tasks"),
            runtime,
            seq,
        }
    }

    /// The task's slot in its runtime's slab.
    pub(crate) fn slot(self) -> usize {
        self.key as usize
    }
}

/// State shared with other threads: how to reach this runtime from outside.
pub(crate) struct Shared {
    /// Tasks woken from other threads, drained by the run loop.
    injector: SegQueue<TaskId>,
    /// Interrupts the reactor's blocking poll.
    mio_waker: mio::Waker,
    /// Cancel requests from [`CancelHandle`](crate::CancelHandle)s: (scope's remote
    /// id, reason). Drained by the run loop.
    remote_cancels: SegQueue<(u64, Option<Arc<str>>)>,
    /// The runtime has shut down: nothing is queued any more (a `CancelHandle` or a
    /// waker that outlives its runtime costs nothing per call).
    closed: AtomicBool,
    /// Dumps asked for by [`DumpHandle`](crate::DumpHandle)s, answered by the run loop.
    dump_requests: SegQueue<Arc<DumpReply>>,
    /// Wakes from other threads (a metrics counter).
    pub(crate) remote_wakes: AtomicU64,
    /// Work sent by [`RemoteHandle`](crate::RemoteHandle)s, run by the run loop
    /// between polls.
    remote_jobs: SegQueue<RemoteJob>,
}

/// A closure another thread asked the runtime to run (see `runtime/remote.rs`).
pub(crate) type RemoteJob = Box<dyn FnOnce() + Send>;

impl Shared {
    pub(crate) fn new(mio_waker: mio::Waker) -> Shared {
        Shared {
            injector: SegQueue::new(),
            mio_waker,
            remote_cancels: SegQueue::new(),
            closed: AtomicBool::new(false),
            dump_requests: SegQueue::new(),
            remote_wakes: AtomicU64::new(0),
            remote_jobs: SegQueue::new(),
        }
    }

    /// Marks the runtime gone (at shutdown, before the queues are drained).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Queues a wake from another thread and interrupts the reactor.
    fn inject(&self, id: TaskId) {
        if self.is_closed() {
            return;
        }
        self.injector.push(id);
        self.remote_wakes.fetch_add(1, Ordering::Relaxed);
        // A failed wake means the poll is gone (runtime dropped): nothing to do.
        let _ = self.mio_waker.wake();
    }

    pub(crate) fn pop_injected(&self) -> Option<TaskId> {
        self.injector.pop()
    }

    /// Queues a cancel request for the scope with remote id `remote`.
    pub(crate) fn push_remote_cancel(&self, remote: u64, reason: Option<Arc<str>>) {
        if self.is_closed() {
            return;
        }
        self.remote_cancels.push((remote, reason));
        // A failed wake means the runtime is gone; the scope is gone with it.
        let _ = self.mio_waker.wake();
    }

    pub(crate) fn pop_remote_cancel(&self) -> Option<(u64, Option<Arc<str>>)> {
        self.remote_cancels.pop()
    }

    /// Queues a dump request and interrupts the reactor; `false` if the runtime is
    /// gone.
    pub(crate) fn push_dump_request(&self, reply: Arc<DumpReply>) -> bool {
        if self.is_closed() {
            return false;
        }
        self.dump_requests.push(reply);
        let _ = self.mio_waker.wake();
        // Closed meanwhile: the shutdown may have drained the queue already.
        !self.is_closed()
    }

    pub(crate) fn pop_dump_request(&self) -> Option<Arc<DumpReply>> {
        self.dump_requests.pop()
    }

    /// Queues a job for the run loop and interrupts the reactor. A job that can no
    /// longer run (the runtime is gone) is dropped here, which tells its caller.
    pub(crate) fn push_job(&self, job: RemoteJob) {
        if self.is_closed() {
            drop(job);
            return;
        }
        self.remote_jobs.push(job);
        let _ = self.mio_waker.wake();
        if self.is_closed() {
            // The shutdown may have drained the queue before this push.
            self.drop_jobs();
        }
    }

    pub(crate) fn pop_job(&self) -> Option<RemoteJob> {
        self.remote_jobs.pop()
    }

    /// Drops every queued job unrun (at shutdown).
    pub(crate) fn drop_jobs(&self) {
        while let Some(job) = self.remote_jobs.pop() {
            drop(job);
        }
    }
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
            if Arc::ptr_eq(core.shared(), &self.shared) {
                core.push_ready(self.id);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
        if !pushed_locally {
            self.shared.inject(self.id);
        }
    }
}

/// A spawned task as the run loop sees it: something to poll in place.
///
/// Each task is **one allocation**: an `Rc` holding its future (and, for `spawn`, the
/// outcome slot its `JoinHandle` reads). The run loop holds one `Rc<dyn Runnable>`;
/// a `JoinHandle` holds another to the same allocation.
pub(crate) trait Runnable {
    /// Polls the task's future once, in place. `Ready` when the task has finished
    /// (its future is then already dropped).
    fn run(&self, cx: &mut Context<'_>) -> Poll<()>;

    /// Drops the future in place without finishing it (a task dropped by its group or
    /// by runtime shutdown).
    fn drop_future(&self);
}

/// A task that hands its result to a callback (task-group children, `start`).
///
/// The future is stored once, polled in place under `catch_unwind`, and dropped in
/// place when it completes; then `done` gets its output, or the panic of its poll or
/// of its destructor. Dropped unfinished (`drop_future`), `done` is dropped uncalled.
pub(crate) struct ChildTask<F, D> {
    fut: RefCell<Option<F>>,
    done: Cell<Option<D>>,
}

impl<F, D> ChildTask<F, D>
where
    F: Future + 'static,
    D: FnOnce(std::thread::Result<F::Output>) + 'static,
{
    pub(crate) fn new_task(fut: F, done: D) -> Rc<dyn Runnable> {
        Rc::new(ChildTask {
            fut: RefCell::new(Some(fut)),
            done: Cell::new(Some(done)),
        })
    }
}

impl<F, D> Runnable for ChildTask<F, D>
where
    F: Future,
    D: FnOnce(std::thread::Result<F::Output>),
{
    fn run(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut slot = self.fut.borrow_mut();
        let Some(fut) = slot.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: the future lives inside an `Rc` allocation that is never moved out
        // of (no `Rc::try_unwrap` / `into_inner` on task cells); it is only dropped in
        // place, by assigning `None` below or in `drop_future`. So it stays pinned.
        let fut = unsafe { Pin::new_unchecked(fut) };
        let mut out = match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(v)) => Ok(v),
            Err(panic) => Err(panic),
        };
        // Drop the finished future in place; a panic in its destructor is the task's
        // panic (the first one wins). The slot is `None` afterwards either way.
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| *slot = None)) {
            if out.is_ok() {
                out = Err(panic);
            }
        }
        drop(slot);
        if let Some(done) = self.done.take() {
            done(out);
        }
        Poll::Ready(())
    }

    fn drop_future(&self) {
        // Assignment drops the pinned future in place (it must not be moved out). Its
        // destructor may use the runtime, but never this cell. If it panics, the slot
        // is still `None` afterwards (assignment completes on unwind).
        drop(self.done.take());
        if let Ok(mut slot) = self.fut.try_borrow_mut() {
            *slot = None;
        }
    }
}

/// One task of the runtime (56 bytes: this is per-task memory, see benchmark B9).
pub(crate) struct TaskSlot {
    pub(crate) id: TaskId,
    /// `None` for the `block_on` task, whose future lives on `block_on`'s stack.
    pub(crate) task: Option<Rc<dyn Runnable>>,
    pub(crate) handle: Arc<TaskWaker>,
    /// The task's root node in the scope tree, or `NO_NODE` until it needs one (a
    /// scope entered, a cancel requested, a wait recorded); group children get theirs
    /// at spawn. (Names live in `Core::names`, since few tasks have one.)
    pub(crate) root: NodeKey,
    /// Where the task was spawned (`#[track_caller]` of `spawn` and friends): shown by
    /// the task dump and by the ignored-cancel warning. 8 bytes in every build.
    pub(crate) spawned_at: &'static Location<'static>,
    /// The ignored-cancel diagnostic (zero-sized in release builds).
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) watch: IgnoredCancelWatch,
}

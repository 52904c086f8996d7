//! Tasks as users see them: [`spawn`], [`JoinHandle`], [`Outcome`], [`TaskRef`], and
//! the crate-internal spawning of task-group children ([`spawn_child`]).

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use super::cancel::{self, CancelError, CancelWait, Cancelled, NodeKey, TaskInfo};
use super::core::{Core, try_with_core, with_core};
use super::observe::WaitingOn;
use super::task::{ChildDone, Completion, Reader, TaskId, new_cell};

/// Polls `fut`, turning a panic into `Err(payload)`.
pub(crate) async fn catch_unwind<F: Future>(fut: F) -> std::thread::Result<F::Output> {
    let mut fut = pin!(fut);
    poll_fn(
        |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(p)),
        },
    )
    .await
}

/// How a task ended.
pub enum Outcome<T, E> {
    /// It returned `Ok(value)`.
    Ok(T),
    /// It returned an error that is not a cancellation.
    Err(E),
    /// It was cancelled: it returned a `Cancelled` (through its error type).
    Cancelled(Cancelled),
    /// It panicked; the payload is kept for `resume_unwind`.
    Panicked(Box<dyn Any + Send>),
}

impl<T, E> Outcome<T, E> {
    /// Whether the task was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Outcome::Cancelled(_))
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, Outcome::Panicked(_))
    }

    /// The value, or a panic describing what happened instead (a task panic resumes).
    #[track_caller]
    pub fn unwrap(self) -> T
    where
        E: fmt::Debug,
    {
        match self {
            Outcome::Ok(v) => v,
            Outcome::Err(e) => panic!("called `Outcome::unwrap` on a task that failed: {e:?}"),
            Outcome::Cancelled(c) => panic!("called `Outcome::unwrap` on a cancelled task: {c}"),
            Outcome::Panicked(p) => std::panic::resume_unwind(p),
        }
    }

    /// `Ok(value)`; an error or a cancellation as `Err` (a panic resumes).
    pub fn into_result(self) -> Result<T, E>
    where
        E: From<Cancelled>,
    {
        match self {
            Outcome::Ok(v) => Ok(v),
            Outcome::Err(e) => Err(e),
            Outcome::Cancelled(c) => Err(E::from(c)),
            Outcome::Panicked(p) => std::panic::resume_unwind(p),
        }
    }
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for Outcome<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok(v) => f.debug_tuple("Ok").field(v).finish(),
            Outcome::Err(e) => f.debug_tuple("Err").field(e).finish(),
            Outcome::Cancelled(c) => f.debug_tuple("Cancelled").field(c).finish(),
            Outcome::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

/// The completion of a task started with [`spawn`]: the task's result becomes an
/// [`Outcome`], kept in the task's cell for its [`JoinHandle`] (whose waker, while it
/// waits, is in the thread's reader table: `runtime/readers.rs`).
struct JoinDone<T, E> {
    _out: PhantomData<fn() -> (T, E)>,
}

impl<T, E> Completion<Result<T, E>> for JoinDone<T, E>
where
    T: 'static,
    E: CancelError + 'static,
{
    type Kept = Outcome<T, E>;

    fn finish(&self, out: std::thread::Result<Result<T, E>>) -> Option<Outcome<T, E>> {
        Some(match out {
            Ok(Ok(v)) => Outcome::Ok(v),
            Ok(Err(e)) => match e.as_cancelled() {
                Some(c) => Outcome::Cancelled(c.clone()),
                None => Outcome::Err(e),
            },
            Err(p) => Outcome::Panicked(p),
        })
    }

    fn abandon(&self) {}
}

/// A handle to a spawned task; awaiting it gives the task's [`Outcome`].
///
/// Awaiting is a checkpoint: if the *waiting* code is cancelled the await fails with
/// `Err(Cancelled)` and the outcome stays in the handle. Await `&mut handle` to keep
/// the handle across such a failure. Dropping the handle detaches the task (it keeps
/// running); [`cancel`](TaskRef::cancel) cancels it.
///
/// ```
/// use scope_runtime::{spawn, sleep, Cancelled, Outcome};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let h = spawn(async {
///         sleep(Duration::from_secs(60)).await?;
///         Ok::<_, Cancelled>("slept")
///     });
///     assert!(h.cancel());
///     assert_eq!(h.cancelling(), 1);
///     assert!(h.await.unwrap().is_cancelled());
/// });
/// ```
pub struct JoinHandle<T, E> {
    task: TaskRef,
    /// A reference to the task's cell, to read the outcome kept there.
    cell: Reader<Outcome<T, E>>,
    /// Wakes a waiting `await` when the waiting code is cancelled (R13).
    wait: CancelWait,
}

impl<T, E> JoinDone<T, E> {
    fn new() -> JoinDone<T, E> {
        JoinDone { _out: PhantomData }
    }
}

impl<T, E> fmt::Debug for JoinHandle<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("task", &self.task)
            .field("finished", &self.cell.is_done())
            .finish()
    }
}

impl<T, E> std::ops::Deref for JoinHandle<T, E> {
    type Target = TaskRef;
    fn deref(&self) -> &TaskRef {
        &self.task
    }
}

impl<T, E> Unpin for JoinHandle<T, E> {}

impl<T, E> Future for JoinHandle<T, E> {
    type Output = Result<Outcome<T, E>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.wait.check()?;
        match this.cell.poll_read(cx.waker()) {
            Poll::Ready(Some(o)) => {
                this.wait.disarm();
                Poll::Ready(Ok(o))
            }
            Poll::Ready(None) => panic!(
                "JoinHandle polled after it returned the task's outcome (or its task was dropped)"
            ),
            Poll::Pending => {
                this.wait.arm(
                    cx.waker(),
                    WaitingOn::Join {
                        task: this.task.id.seq,
                    },
                );
                Poll::Pending
            }
        }
    }
}

/// Spawns a top-level task on the current runtime. Its outcome comes through the
/// returned [`JoinHandle`].
///
/// A top-level task is not inside any scope of its spawner: cancelling the spawner
/// does not cancel it. (Spawn into a [`TaskGroup`](crate::TaskGroup) for that.)
///
/// The task returns a `Result` whose error type implements [`CancelError`], so the
/// runtime can tell a cancelled task from a failed one: [`BoxError`](crate::BoxError),
/// `std::io::Error`, [`Cancelled`], or your own type. A function returning
/// `std::io::Result<T>` is spawned as it is. When nothing in the task names its error
/// type — `spawn(async { Ok(()) })` — the compiler cannot pick one ("type annotations
/// needed ... cannot satisfy `_: CancelError`"): name it at the end,
/// `Ok::<_, BoxError>(())`, or on the handle, `let h: JoinHandle<(), BoxError> = ...`.
///
/// ```
/// use scope_runtime::{BoxError, Cancelled, JoinHandle, sleep, spawn};
/// use std::time::Duration;
///
/// async fn fetch() -> std::io::Result<u32> {
///     sleep(Duration::from_secs(1)).await?;
///     Ok(7)
/// }
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let io_task = spawn(fetch()); // JoinHandle<u32, std::io::Error>
///     let named = spawn(async { Ok::<_, BoxError>(()) });
///     let typed: JoinHandle<(), Cancelled> = spawn(async {
///         sleep(Duration::from_secs(2)).await?;
///         Ok(())
///     });
///     assert_eq!(io_task.await?.unwrap(), 7);
///     named.await?.unwrap();
///     typed.await?.unwrap();
///     Ok::<_, Cancelled>(())
/// })
/// .unwrap();
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn spawn<F, T, E>(fut: F) -> JoinHandle<T, E>
where
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: CancelError + 'static, // for `Ok(())` name the error: `Ok::<_, BoxError>(())`
{
    spawn_inner(None, fut)
}

/// Like [`spawn`], with a name that shows up in [`TaskInfo`] and reports.
#[track_caller]
pub fn spawn_named<F, T, E>(name: impl Into<Arc<str>>, fut: F) -> JoinHandle<T, E>
where
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: CancelError + 'static, // for `Ok(())` name the error: `Ok::<_, BoxError>(())`
{
    spawn_inner(Some(name.into()), fut)
}

#[track_caller]
fn spawn_inner<F, T, E>(name: Option<Arc<str>>, fut: F) -> JoinHandle<T, E>
where
    F: Future<Output = Result<T, E>> + 'static,
    T: 'static,
    E: CancelError + 'static,
{
    let at = Location::caller();
    let (id, cell) = with_core(|core| {
        let id = core.next_task_id();
        let (cell, reader) = new_cell(core.shared(), id, at, fut, JoinDone::new(), true);
        core.spawn_cell(cell, None, name);
        (id, reader.expect("made with a reader"))
    });
    JoinHandle {
        task: TaskRef { id },
        cell,
        wait: CancelWait::new(),
    }
}

/// Spawns a task (a task-group child, a `start()` task) with its root node under
/// `parent`; when it ends, `done` gets its output or its panic, on the task itself
/// (its root node still in place).
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub(crate) fn spawn_child<F, D>(fut: F, parent: NodeKey, name: Option<Arc<str>>, done: D) -> TaskRef
where
    F: Future + 'static,
    D: FnOnce(std::thread::Result<F::Output>) + 'static,
{
    let at = Location::caller();
    let id = with_core(|core| {
        let id = core.next_task_id();
        let (cell, _) = new_cell(core.shared(), id, at, fut, ChildDone::new(done), false);
        core.spawn_cell(cell, Some(parent), name)
    });
    TaskRef { id }
}

/// Drops unfinished tasks in place (a task group dropped before its end, R11); every
/// one is dropped even if a destructor panics. Returns the first such panic.
pub(crate) fn drop_tasks(tasks: Vec<TaskRef>) -> Option<Box<dyn Any + Send>> {
    try_with_core(|core| core.drop_tasks(tasks.into_iter().map(|t| t.id))).flatten()
}

/// A reference to a task: its cancel count and identity.
///
/// Obtained from [`current_task`], a [`JoinHandle`] or a [`TaskHandle`](crate::TaskHandle).
/// It is `Copy` and `Send`, but it is used on the thread of the task's runtime.
/// Operations on a finished task are no-ops; outside any runtime they are no-ops too
/// (`is_alive()` is `false`, `cancel()` returns `false`).
///
/// # Panics
///
/// Every method panics when called inside a *different* runtime than the task's (a
/// `TaskRef` names a task of one runtime only; it never touches another's tasks).
///
/// ```should_panic
/// use scope_runtime::{Runtime, current_task};
/// let a = Runtime::new().unwrap().block_on(async { current_task() });
/// Runtime::new().unwrap().block_on(async move {
///     a.cancel(); // panics: `a` belongs to the first runtime
/// });
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TaskRef {
    pub(crate) id: TaskId,
}

impl fmt::Debug for TaskRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskRef(#{})", self.id.seq)
    }
}

impl TaskRef {
    pub(crate) fn current_in(core: &Core) -> TaskRef {
        TaskRef {
            id: core
                .current_task()
                .expect("no task is running: call this from inside a task"),
        }
    }

    pub(crate) fn info_in(&self, core: &Core) -> TaskInfo {
        TaskInfo::new(self.id.seq, core.task_name(self.id))
    }

    /// Runs `f` with the task's runtime: `None` outside any runtime; a panic (at the
    /// caller) inside another one.
    #[track_caller]
    fn with_own_core<R>(&self, f: impl FnOnce(&Core) -> R) -> Option<R> {
        let r = try_with_core(|core| (core.id() == self.id.runtime).then(|| f(core)))?;
        if r.is_none() {
            panic!(
                "TaskRef(#{}) belongs to another scope_runtime runtime than the one running \
                 here; a task can only be inspected or cancelled from its own runtime",
                self.id.seq
            );
        }
        r
    }

    /// The task's number and name.
    ///
    /// # Panics
    ///
    /// Outside the task's runtime.
    #[track_caller]
    pub fn info(&self) -> TaskInfo {
        match self.with_own_core(|core| self.info_in(core)) {
            Some(info) => info,
            None => with_core(|core| self.info_in(core)), // panics: no runtime
        }
    }

    /// Whether the task has not finished yet.
    #[track_caller]
    pub fn is_alive(&self) -> bool {
        self.with_own_core(|core| core.task_alive(self.id))
            .unwrap_or(false)
    }

    /// Adds one cancel request: while `cancelling() > 0` the task's root scope is
    /// cancelled and its checkpoints fail. Returns `false` (and does nothing) if
    /// the task has finished.
    #[track_caller]
    pub fn cancel(&self) -> bool {
        self.add_cancelling(1).is_some()
    }

    /// Withdraws one cancel request; returns how many remain. At zero the task runs on.
    #[track_caller]
    pub fn uncancel(&self) -> u32 {
        self.add_cancelling(-1).unwrap_or(0)
    }

    /// The number of cancel requests not withdrawn.
    #[track_caller]
    pub fn cancelling(&self) -> u32 {
        self.with_own_core(|core| cancel::cancelling(core, self.id))
            .unwrap_or(0)
    }

    #[track_caller]
    fn add_cancelling(&self, delta: i64) -> Option<u32> {
        self.with_own_core(|core| cancel::add_cancelling(core, self.id, delta))
            .flatten()
    }
}

/// The task running the calling code.
///
/// # Panics
///
/// Outside a task.
pub fn current_task() -> TaskRef {
    with_core(|core| TaskRef::current_in(core))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_join_completion_keeps_nothing_in_the_cell() {
        // The waiting reader's waker is in `runtime/readers.rs`, not in every cell.
        assert_eq!(size_of::<super::JoinDone<u64, crate::Cancelled>>(), 0);
    }
}

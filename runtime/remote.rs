//! Entering a runtime from other threads: [`RemoteHandle`] (Trio's `from_thread`).
//!
//! A handle holds the runtime's `Shared` (what other threads may touch). Each request
//! is a boxed `Send` closure queued on `Shared::push_job` and run by the run loop
//! between polls (`Core::drain_injector`), outside any task; the answer comes back
//! through a [`Reply`]: a `parking_lot` mutex and condvar the calling thread blocks on.
//! The sending half, [`Responder`], is owned by the queued job and then by the task it
//! spawns, so when the runtime drops either unrun or unfinished (shutdown), dropping
//! the responder answers "the runtime is gone": a waiting thread never hangs on a
//! runtime that no longer exists.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::cancel::{CancelError, Cancelled};
use super::core::try_with_core;
use super::join::{Outcome, TaskRef, spawn};
use super::task::{Shared, TaskId};

/// A `Send + Sync` handle that other threads use to run code on a runtime and get
/// its result: [`run_sync`](Self::run_sync) for a closure,
/// [`spawn`](Self::spawn) / [`run`](Self::run) for a task. Get one with
/// [`Runtime::remote`](crate::Runtime::remote); clone it freely.
///
/// Requests are served while the runtime runs (inside `block_on`), between two polls.
/// Once the runtime is dropped, every request fails with [`RemoteError::RuntimeGone`],
/// also the ones already waiting.
///
/// ```
/// use scope_runtime::{Runtime, sleep, Cancelled};
/// use std::time::Duration;
///
/// let rt = Runtime::new()?;
/// let remote = rt.remote();
/// let worker = std::thread::spawn(move || {
///     // Runs on the runtime's thread; the future need not be `Send`.
///     let sum = remote.run(|| async {
///         let local = std::rc::Rc::new(40);
///         sleep(Duration::from_millis(1)).await?;
///         Ok::<_, Cancelled>(*local + 2)
///     });
///     sum.unwrap().unwrap()
/// });
/// rt.block_on(async {
///     // The runtime runs while the worker waits.
///     while !worker.is_finished() {
///         sleep(Duration::from_millis(1)).await.unwrap();
///     }
/// });
/// assert_eq!(worker.join().unwrap(), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct RemoteHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for RemoteHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteHandle").finish_non_exhaustive()
    }
}

/// Why a [`RemoteHandle`] request gave no result.
#[non_exhaustive]
pub enum RemoteError {
    /// The runtime was dropped before the request was served or finished.
    RuntimeGone,
    /// The call was made on the runtime's own thread, where waiting would block the
    /// very runtime that has to answer. Call the code directly, or spawn it.
    OnRuntimeThread,
    /// The closure given to [`RemoteHandle::run_sync`] panicked; the payload is kept
    /// for `std::panic::resume_unwind`.
    Panicked(Box<dyn Any + Send>),
}

impl fmt::Debug for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemoteError::RuntimeGone => f.write_str("RuntimeGone"),
            RemoteError::OnRuntimeThread => f.write_str("OnRuntimeThread"),
            RemoteError::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RemoteError::RuntimeGone => "the runtime was dropped before it answered",
            RemoteError::OnRuntimeThread => {
                "a remote call was made on the runtime's own thread (it would wait forever); \
                 call the code directly or spawn it"
            }
            RemoteError::Panicked(_) => "the closure run on the runtime panicked",
        })
    }
}

impl std::error::Error for RemoteError {}

impl RemoteHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> RemoteHandle {
        RemoteHandle { shared }
    }

    /// Whether the calling thread is this runtime's own (where waiting would hang).
    fn on_runtime_thread(&self) -> bool {
        try_with_core(|core| Arc::ptr_eq(core.shared(), &self.shared)).unwrap_or(false)
    }

    /// Runs `f` on the runtime's thread, between two polls and outside any task, and
    /// blocks the calling thread until it returned. `f` may spawn tasks (they are
    /// top-level tasks of the runtime) and use everything that needs the runtime except
    /// waiting: it is not async.
    ///
    /// ```
    /// use scope_runtime::{Runtime, sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new()?;
    /// let remote = rt.remote();
    /// let t = std::thread::spawn(move || remote.run_sync(scope_runtime::now).is_ok());
    /// rt.block_on(async {
    ///     while !t.is_finished() {
    ///         sleep(Duration::from_millis(1)).await.unwrap();
    ///     }
    /// });
    /// assert!(t.join().unwrap());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run_sync<F, R>(&self, f: F) -> Result<R, RemoteError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        if self.on_runtime_thread() {
            return Err(RemoteError::OnRuntimeThread);
        }
        let (responder, reply) = Reply::<R>::pair();
        self.shared.push_job(Box::new(move || {
            match std::panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => responder.answer(Ok(v)),
                Err(p) => responder.answer(Err(RemoteError::Panicked(p))),
            }
        }));
        reply
            .wait(None)
            .expect("a wait without a timeout ends with an answer")
    }

    /// Spawns the future `make` builds as a top-level task of the runtime, and returns
    /// a [`RemoteCall`] the calling thread can wait on (or cancel the task through).
    /// `make` runs on the runtime's thread, so the future need not be `Send`; only
    /// its result must be.
    ///
    /// ```
    /// use scope_runtime::{Cancelled, Outcome, Runtime, sleep};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::new()?;
    /// let remote = rt.remote();
    /// let worker = std::thread::spawn(move || {
    ///     let call = remote.spawn(|| async {
    ///         sleep(Duration::from_secs(3600)).await?; // cancelled long before
    ///         Ok::<_, Cancelled>("finished")
    ///     });
    ///     // Not done within 10 ms: give up waiting, then stop the task.
    ///     assert!(call.wait_timeout(Duration::from_millis(10)).is_none());
    ///     assert!(!call.is_done());
    ///     call.cancel();
    ///     call.wait().unwrap()
    /// });
    /// rt.block_on(async {
    ///     while !worker.is_finished() {
    ///         sleep(Duration::from_millis(1)).await.unwrap();
    ///     }
    /// });
    /// assert!(matches!(worker.join().unwrap(), Outcome::Cancelled(_)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn spawn<M, Fut, T, E>(&self, make: M) -> RemoteCall<T, E>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
        T: Send + 'static,
        E: CancelError + Send + 'static,
    {
        let (responder, reply) = Reply::<Outcome<T, E>>::pair();
        let call = RemoteCall {
            reply: reply.clone(),
            shared: self.shared.clone(),
        };
        self.shared.push_job(Box::new(move || {
            let fut = match std::panic::catch_unwind(AssertUnwindSafe(make)) {
                Ok(fut) => fut,
                Err(p) => return responder.answer(Ok(Outcome::Panicked(p))),
            };
            let handle = spawn(fut);
            responder.set_task(handle.id);
            // A second task hands the outcome over; the responder it owns answers
            // "gone" if the runtime drops it unfinished.
            drop(spawn(async move {
                match handle.await {
                    Ok(outcome) => responder.answer(Ok(outcome)),
                    Err(_) => unreachable!("nothing can cancel the hand-over task"),
                }
                Ok::<(), Cancelled>(())
            }));
        }));
        call
    }

    /// [`spawn`](Self::spawn), then waits for the task's outcome (see the example on
    /// [`RemoteHandle`]). On the runtime's own thread it returns
    /// `Err(RemoteError::OnRuntimeThread)` instead of waiting for itself.
    pub fn run<M, Fut, T, E>(&self, make: M) -> Result<Outcome<T, E>, RemoteError>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + 'static,
        T: Send + 'static,
        E: CancelError + Send + 'static,
    {
        if self.on_runtime_thread() {
            return Err(RemoteError::OnRuntimeThread);
        }
        self.spawn(make).wait()
    }
}

/// A task started by [`RemoteHandle::spawn`], seen from the thread that started it.
///
/// Dropping it does not stop the task (it keeps running on the runtime, detached).
/// [`cancel`](Self::cancel) is the way to stop it: the task's checkpoints fail with
/// `Cancelled` from then on, and [`wait`](Self::wait) returns
/// `Ok(Outcome::Cancelled(_))` once it has wound down (its cleanup code runs first).
pub struct RemoteCall<T, E> {
    reply: Arc<Reply<Outcome<T, E>>>,
    shared: Arc<Shared>,
}

impl<T, E> fmt::Debug for RemoteCall<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteCall")
            .field("done", &self.reply.state.lock().value.is_some())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, E: Send + 'static> RemoteCall<T, E> {
    /// Blocks the calling thread until the task has finished, and returns its outcome.
    /// `Err(OnRuntimeThread)` on the runtime's own thread; `Err(RuntimeGone)` if the
    /// runtime is dropped first:
    ///
    /// ```
    /// use scope_runtime::{Cancelled, RemoteError, Runtime};
    ///
    /// let rt = Runtime::new()?;
    /// let call = rt.remote().spawn(|| async { Ok::<_, Cancelled>(1) });
    /// drop(rt); // never ran
    /// assert!(matches!(call.wait(), Err(RemoteError::RuntimeGone)));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn wait(self) -> Result<Outcome<T, E>, RemoteError> {
        if try_with_core(|core| Arc::ptr_eq(core.shared(), &self.shared)).unwrap_or(false) {
            return Err(RemoteError::OnRuntimeThread);
        }
        self.reply
            .wait(None)
            .expect("a wait without a timeout ends with an answer")
    }

    /// Like [`wait`](Self::wait), giving up after `timeout`: `None` then, and the call
    /// can be waited on (or cancelled) again. Does not cancel the task.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<Outcome<T, E>, RemoteError>> {
        if try_with_core(|core| Arc::ptr_eq(core.shared(), &self.shared)).unwrap_or(false) {
            return Some(Err(RemoteError::OnRuntimeThread));
        }
        self.reply.wait(Some(timeout))
    }

    /// Cancels the task (as [`TaskRef::cancel`] does, from this thread); returns at
    /// once. Wait afterwards to know when it has wound down: its checkpoints fail with
    /// `Cancelled` and its cleanup runs first. See the example on
    /// [`RemoteHandle::spawn`].
    pub fn cancel(&self) {
        let reply = self.reply.clone();
        self.shared.push_job(Box::new(move || {
            if let Some(id) = reply.task() {
                TaskRef { id }.cancel();
            }
        }));
    }

    /// Whether the outcome is there (the task finished, or the runtime is gone).
    pub fn is_done(&self) -> bool {
        self.reply.state.lock().value.is_some()
    }
}

/// Where an answer is left for the thread that waits for it.
struct Reply<T> {
    state: Mutex<ReplyState<T>>,
    ready: Condvar,
}

struct ReplyState<T> {
    value: Option<Result<T, RemoteError>>,
    /// The task `RemoteHandle::spawn` started (for `RemoteCall::cancel`).
    task: Option<TaskId>,
}

impl<T> Reply<T> {
    fn pair() -> (Responder<T>, Arc<Reply<T>>) {
        let reply = Arc::new(Reply {
            state: Mutex::new(ReplyState {
                value: None,
                task: None,
            }),
            ready: Condvar::new(),
        });
        (
            Responder {
                reply: Some(reply.clone()),
            },
            reply,
        )
    }

    fn task(&self) -> Option<TaskId> {
        self.state.lock().task
    }

    /// Waits for the answer (and takes it); `None` at the timeout.
    fn wait(&self, timeout: Option<Duration>) -> Option<Result<T, RemoteError>> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut st = self.state.lock();
        loop {
            if let Some(v) = st.value.take() {
                return Some(v);
            }
            match deadline {
                None => self.ready.wait(&mut st),
                Some(d) => {
                    if self.ready.wait_until(&mut st, d).timed_out() && st.value.is_none() {
                        return None;
                    }
                }
            }
        }
    }
}

/// The runtime's side of a [`Reply`]. Dropped without answering (the runtime dropped
/// the job or the task), it answers `RuntimeGone`.
struct Responder<T> {
    reply: Option<Arc<Reply<T>>>,
}

impl<T> Responder<T> {
    fn set_task(&self, id: TaskId) {
        if let Some(r) = &self.reply {
            r.state.lock().task = Some(id);
        }
    }

    fn answer(mut self, value: Result<T, RemoteError>) {
        if let Some(r) = self.reply.take() {
            r.state.lock().value = Some(value);
            r.ready.notify_all();
        }
    }
}

impl<T> Drop for Responder<T> {
    fn drop(&mut self) {
        if let Some(r) = self.reply.take() {
            let mut st = r.state.lock();
            if st.value.is_none() {
                st.value = Some(Err(RemoteError::RuntimeGone));
            }
            drop(st);
            r.ready.notify_all();
        }
    }
}

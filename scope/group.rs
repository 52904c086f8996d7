//! Task groups: a cancel scope plus the tasks spawned inside its block (rule R7).
//!
//! The group's scope is entered like any [`CancelScope`]: its node sits under the code
//! that runs the group, the body runs inside it, and every child task's root node is
//! linked under it. Cancelling the group is therefore one walk of the status tree
//! that reaches the body and every child.
//!
//! Lifecycle of [`TaskGroup::run`]:
//! 1. **Enter**: the scope node is created; the group opens for spawning.
//! 2. **Body**: polled inside the group's scope. Its error cancels the group.
//! 3. **Wait**: the body's future is dropped, then the group waits until every child
//!    has finished (children may still spawn more children meanwhile).
//! 4. **Exit**: the group closes, the status tree decides whether the group absorbs
//!    the `Cancelled`s that left its body and children (the same rule as for any
//!    scope, decided now: the group is cancelled and no cancelled scope around it is
//!    visible), the node is removed, and the result is decided: a child panic resumes;
//!    else collected errors; else a cancellation the group does not absorb propagates.
//!
//! A child's `Cancelled` that its own root absorbs (the child was cancelled through
//! its own cancel count, `TaskHandle::cancel`) is the child's business and never
//! reaches the group.
//!
//! Dropping the group's future before it finished (R11) closes the group and drops
//! every child task in place — every one, even if a destructor panics (the first such
//! panic resumes once all are dropped).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use slab::Slab;

use super::CancelScope;
use crate::runtime::cancel::{
    self, BoxError, CancelError, CancelReason, Cancelled, Entered, NodeKey, TaskFailure,
    TaskGroupError, TaskInfo,
};
use crate::runtime::{TaskRef, catch_unwind, drop_tasks, spawn_child};

/// A group's state (see the struct for why its real name is long).
type GroupInner = TaskGroupIsNotSend_UseCancelHandleOnOtherThreads;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Created, not yet entered: spawning is refused.
    Idle,
    /// Body running or waiting for children: spawning allowed. `node` is the group's
    /// node in the status tree.
    Open { node: NodeKey },
    /// The block has ended.
    Closed,
}

/// The shared state behind every [`TaskGroup`] handle; the code calls it `GroupInner`.
///
/// Its long name is what the compiler prints when a `TaskGroup` (or a `TaskStatus`) is
/// moved or shared to another thread: "`Rc<...::TaskGroupIsNotSend_UseCancelHandleOnOtherThreads>`
/// cannot be sent between threads safely" (`Send` is not a trait of this crate, so
/// `#[diagnostic::on_unimplemented]` cannot word that error; the type name can).
/// `tests/ui/task_group_to_thread.stderr` pins the message.
#[allow(non_camel_case_types)]
struct TaskGroupIsNotSend_UseCancelHandleOnOtherThreads {
    scope: CancelScope,
    state: Cell<State>,
    /// Live children (and `start()` tasks not yet started).
    children: RefCell<Slab<TaskRef>>,
    host: RefCell<Option<Waker>>,
    failures: RefCell<Vec<TaskFailure>>,
    panic: RefCell<Option<Box<dyn Any + Send>>>,
    /// The first `Cancelled` that left the body or a child (and was not a child's own
    /// business): at exit the group absorbs it or passes it on.
    cancel_out: RefCell<Option<Cancelled>>,
}

/// A task group: spawn tasks inside its block; leaving the block waits for all of them.
///
/// A child's error (or panic) cancels the group: the body and the other children see
/// `Cancelled` at their next checkpoint; the group then returns every error it
/// collected. [`cancel`](Self::cancel) cancels the group as a unit; the group absorbs
/// its own cancellation and returns normally.
///
/// `TaskGroup` is a cheap handle (`Rc`): clone it into children so they can spawn
/// siblings or cancel the group. It is `!Send`; to cancel the group from another
/// thread, use [`cancel_handle`](Self::cancel_handle). (Moving a `TaskGroup` to a
/// thread fails to compile with "`Rc<...TaskGroupIsNotSend_UseCancelHandleOnOtherThreads>`
/// cannot be sent between threads safely".)
///
/// ```
/// use scope_runtime::{sleep, task_group};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     task_group(|tg| async move {
///         let handle = tg.cancel_handle(); // `Send + Sync`: this one may go to a thread
///         let t = std::thread::spawn(move || handle.cancel_with("stop"));
///         let slept = sleep(Duration::from_secs(3600)).await; // cancelled by the thread
///         t.join().unwrap();
///         assert!(slept.is_err());
///         slept?; // the group absorbs its own cancellation
///         Ok(())
///     })
///     .await
///     .unwrap();
/// });
/// ```
///
/// Cancelling the group reaches every runtime operation its body and children wait
/// in (checkpoints). A future of another crate does not notice a cancellation, so a
/// child awaiting one would keep the group waiting: wrap such awaits in
/// [`cancellable`](crate::cancellable).
///
/// ```
/// use scope_runtime::{task_group, sleep};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let res = task_group(|tg| async move {
///         let tg2 = tg.clone();
///         tg.spawn(async move {
///             sleep(Duration::from_secs(1)).await?;
///             tg2.cancel(); // stop everything
///             Ok(())
///         });
///         tg.spawn(async {
///             sleep(Duration::from_secs(3600)).await?; // cancelled after 1 s
///             unreachable!()
///         });
///         Ok(())
///     })
///     .await;
///     assert!(res.is_ok());
/// });
/// ```
#[derive(Clone)]
pub struct TaskGroup {
    inner: Rc<GroupInner>,
}

impl fmt::Debug for TaskGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("state", &self.inner.state.get())
            .field("children", &self.inner.children.borrow().len())
            .field("scope", &self.inner.scope)
            .finish()
    }
}

impl Default for TaskGroup {
    fn default() -> Self {
        TaskGroup::new()
    }
}

/// Runs `body` in a new task group; shorthand for `TaskGroup::new().run(body)`. See
/// [`TaskGroup::run`] for the result, and for bodies with another error type or that
/// never return.
pub fn task_group<B, Fut, T>(body: B) -> impl Future<Output = Result<Option<T>, TaskGroupError>>
where
    B: FnOnce(TaskGroup) -> Fut,
    Fut: Future<Output = Result<T, BoxError>>, // fix: async move { Ok(body(tg).await?) }
{
    TaskGroup::new().run(body)
}

/// Why a task could not be spawned into a group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SpawnError {
    /// The group has not been entered yet (`run` was not polled).
    NotEntered,
    /// The group's block has ended.
    Closed,
}

impl fmt::Display for SpawnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SpawnError::NotEntered => f.write_str(
                "cannot spawn into a task group that has not been entered yet (spawn from inside its body)",
            ),
            SpawnError::Closed => f.write_str(
                "cannot spawn into a task group whose block has ended (the group is closed)",
            ),
        }
    }
}

impl std::error::Error for SpawnError {}

impl TaskGroup {
    /// A group not yet entered. [`cancel`](Self::cancel) before entry takes effect on
    /// entry; use [`cancel_scope`](Self::cancel_scope) to set a deadline or shield.
    pub fn new() -> TaskGroup {
        let scope = CancelScope::new();
        scope.state.mark_group(); // shown as a task group by the task dump
        TaskGroup {
            inner: Rc::new(GroupInner {
                scope,
                state: Cell::new(State::Idle),
                children: RefCell::new(spare_children()),
                host: RefCell::new(None),
                failures: RefCell::new(Vec::new()),
                panic: RefCell::new(None),
                cancel_out: RefCell::new(None),
            }),
        }
    }

    /// The group's own cancel scope (deadline, shield, flags).
    pub fn cancel_scope(&self) -> &CancelScope {
        &self.inner.scope
    }

    /// Cancels the group: its body and every child. It only marks them cancelled and wakes what they wait on; each sees the
    /// cancellation at its next checkpoint.
    pub fn cancel(&self) {
        self.inner.scope.cancel();
    }

    /// A `Send + Sync` handle that cancels the group from any thread.
    pub fn cancel_handle(&self) -> super::CancelHandle {
        self.inner.scope.cancel_handle()
    }

    /// Cancels the group with a reason (the first reason wins).
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        self.inner.scope.cancel_with(reason);
    }

    /// Whether the group was cancelled (by `cancel`, its deadline, or a failing child).
    pub fn cancel_called(&self) -> bool {
        self.inner.scope.cancel_called()
    }

    /// Whether the group absorbed its own cancellation.
    pub fn cancelled_caught(&self) -> bool {
        self.inner.scope.cancelled_caught()
    }

    /// Whether the group's block has ended.
    pub fn is_closed(&self) -> bool {
        self.inner.state.get() == State::Closed
    }

    /// Spawns a child task into the group.
    ///
    /// A child returns `Result<(), BoxError>`: end it with `Ok(())` (no annotation
    /// needed) and use `?` on any error that converts into a [`BoxError`]. A function
    /// with its own error type — a connection handler returning `std::io::Result<()>`,
    /// say — is spawned through `?`:
    ///
    /// ```text
    /// tg.spawn(async move { Ok(handler(conn).await?) });
    /// ```
    ///
    /// (`tg.spawn(handler(conn))` itself does not compile: the compiler could no longer
    /// infer the error type of `Ok(())` in every other child.) A cancellation inside
    /// such an error is still a cancellation to the group: the group looks for a
    /// [`Cancelled`] in the whole error chain — inside `io::Error`s and through
    /// [`source`](std::error::Error::source) — so an `io::Error` made from a
    /// `Cancelled`, or your own error type whose `source()` leads to one, is absorbed
    /// exactly like a bare `Cancelled`.
    ///
    /// ```
    /// use scope_runtime::{sleep, task_group};
    /// use std::time::Duration;
    ///
    /// async fn handler(secs: u64) -> std::io::Result<()> {
    ///     sleep(Duration::from_secs(secs)).await?; // a `Cancelled` becomes an `io::Error`
    ///     Ok(())
    /// }
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let out = task_group(|tg| async move {
    ///         tg.spawn(async move { Ok(handler(3600).await?) }); // cancelled after 1 s
    ///         let tg2 = tg.clone();
    ///         tg.spawn(async move {
    ///             handler(1).await?;
    ///             tg2.cancel();
    ///             Ok(())
    ///         });
    ///         Ok(())
    ///     })
    ///     .await;
    ///     assert!(matches!(out, Ok(Some(()))), "the group absorbed its own cancellation");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If the group is not open (see [`try_spawn`](Self::try_spawn)).
    #[track_caller]
    pub fn spawn<F>(&self, fut: F) -> TaskHandle
    where
        F: Future<Output = Result<(), BoxError>> + 'static, // fix: async move { Ok(f.await?) }
    {
        self.try_spawn_named(None, fut)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns a named child task (the name appears in errors and cancel reasons). The
    /// child is written as for [`spawn`](Self::spawn).
    ///
    /// # Panics
    ///
    /// If the group is not open (see [`try_spawn`](Self::try_spawn)).
    #[track_caller]
    pub fn spawn_named<F>(&self, name: impl Into<Arc<str>>, fut: F) -> TaskHandle
    where
        F: Future<Output = Result<(), BoxError>> + 'static, // fix: async move { Ok(f.await?) }
    {
        self.try_spawn_named(Some(name.into()), fut)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns a child task, or says why the group cannot take one. The child is
    /// written as for [`spawn`](Self::spawn).
    #[track_caller]
    pub fn try_spawn<F>(&self, fut: F) -> Result<TaskHandle, SpawnError>
    where
        F: Future<Output = Result<(), BoxError>> + 'static, // fix: async move { Ok(f.await?) }
    {
        self.try_spawn_named(None, fut)
    }

    fn open_node(&self) -> Result<NodeKey, SpawnError> {
        match self.inner.state.get() {
            State::Idle => Err(SpawnError::NotEntered),
            State::Closed => Err(SpawnError::Closed),
            State::Open { node } => Ok(node),
        }
    }

    /// Spawns a child whose only error is a cancellation: it returns
    /// `Result<(), Cancelled>` instead of `Result<(), BoxError>`.
    ///
    /// Such a child behaves exactly like one given to [`spawn`](Self::spawn) — a
    /// `Cancelled` of the group's own cancel ends it quietly, one of an enclosing scope
    /// travels out of the group — but its `Cancelled` reaches the group as it is,
    /// where `?` into a `BoxError` would first put it in a new heap box. Cancelling a
    /// group of many such children and collecting their ends allocates nothing per
    /// child. It suits workers whose awaits can only fail with `Cancelled` (sleeps,
    /// `sync` waits, channel receives, [`checkpoint`](crate::checkpoint)); a child
    /// that does I/O, whose errors are `io::Error`s, goes through `spawn`.
    ///
    /// ```
    /// use scope_runtime::{sleep, task_group};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let out = task_group(|tg| async move {
    ///         for _ in 0..100 {
    ///             tg.spawn_cancel_only(async {
    ///                 loop {
    ///                     sleep(Duration::from_secs(1)).await?; // `Cancelled`, not boxed
    ///                 }
    ///             });
    ///         }
    ///         sleep(Duration::from_secs(5)).await?;
    ///         tg.cancel(); // stops the 100 workers
    ///         Ok(())
    ///     })
    ///     .await;
    ///     assert!(matches!(out, Ok(Some(()))), "the group absorbed its own cancellation");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// If the group is not open (see [`try_spawn`](Self::try_spawn)).
    #[track_caller]
    pub fn spawn_cancel_only<F>(&self, fut: F) -> TaskHandle
    where
        F: Future<Output = Result<(), Cancelled>> + 'static,
    {
        self.try_spawn_named(None, fut)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[track_caller]
    fn try_spawn_named<F>(&self, name: Option<Arc<str>>, fut: F) -> Result<TaskHandle, SpawnError>
    where
        F: Future + 'static,
        F::Output: IntoChildEnd,
    {
        let node = self.open_node()?;
        let key = self.inner.children.borrow_mut().vacant_key();
        let group = self.inner.clone();
        let task = spawn_child(
            fut,
            node,
            name,
            move |out: std::thread::Result<F::Output>| {
                group.child_done(key, out.map(IntoChildEnd::into_child_end))
            },
        );
        let inserted = self.inner.children.borrow_mut().insert(task);
        debug_assert_eq!(inserted, key);
        Ok(TaskHandle(task))
    }

    /// Starts a child and waits until it reports readiness with
    /// [`TaskStatus::started`]; returns the value it reported.
    ///
    /// Until `started`, the child runs under the caller's scopes: if the caller is
    /// cancelled, so is the child, and its error (or cancellation) comes back here.
    /// After `started` it is an ordinary child of the group. The child returns
    /// `Result<(), BoxError>`, as for [`spawn`](Self::spawn).
    ///
    /// ```
    /// use scope_runtime::{task_group, sleep};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     task_group(|tg| async move {
    ///         let port = tg
    ///             .start(|status| async move {
    ///                 status.started(8080u16); // "listening"
    ///                 sleep(Duration::from_secs(1)).await?;
    ///                 Ok(())
    ///             })
    ///             .await?;
    ///         assert_eq!(port, 8080);
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// });
    /// ```
    pub async fn start<F, Fut, V>(&self, f: F) -> Result<V, BoxError>
    where
        F: FnOnce(TaskStatus<V>) -> Fut,
        Fut: Future<Output = Result<(), BoxError>> + 'static, // fix: async move { Ok(f.await?) }
        V: 'static,
    {
        self.open_node()?;
        let state = Rc::new(StartState {
            value: RefCell::new(None),
            started: Cell::new(false),
            finished: RefCell::new(None),
            caller: RefCell::new(None),
            child: Cell::new(None),
            deferred: RefCell::new(None),
        });
        let status = TaskStatus {
            state: state.clone(),
            group: self.inner.clone(),
        };
        let fut = f(status);
        let key = self.inner.children.borrow_mut().vacant_key();
        let group = self.inner.clone();
        let st = state.clone();
        let done = move |out: std::thread::Result<Result<(), BoxError>>| {
            if st.started.get() {
                group.child_done(key, out.map(IntoChildEnd::into_child_end));
            } else {
                group.children.borrow_mut().try_remove(key);
                group.wake_host_if_empty();
                *st.finished.borrow_mut() = Some(out);
                if let Some(w) = st.caller.borrow_mut().take() {
                    w.wake();
                }
            }
        };
        let task = spawn_child(fut, cancel::current_node(), None, done);
        self.inner.children.borrow_mut().insert(task);
        state.child.set(Some(task));

        struct Abandon<V>(Rc<StartState<V>>, Rc<GroupInner>);
        impl<V> Drop for Abandon<V> {
            fn drop(&mut self) {
                // The caller stopped waiting before `started`: cancel the child and
                // hand it to the group, which will collect it.
                let st = &self.0;
                if st.started.get() || st.finished.borrow().is_some() {
                    return;
                }
                if let Some(task) = st.child.get() {
                    st.started.set(true);
                    task.cancel();
                    self.1.adopt(task);
                }
            }
        }
        let guard = Abandon(state.clone(), self.inner.clone());
        let res = poll_fn(|cx| {
            if let Some(v) = state.value.borrow_mut().take() {
                return Poll::Ready(Ok(v));
            }
            if let Some(out) = state.finished.borrow_mut().take() {
                return Poll::Ready(Err(out));
            }
            *state.caller.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await;
        drop(guard);
        match res {
            Ok(v) => Ok(v),
            Err(Ok(Ok(()))) => match state.deferred.borrow_mut().take() {
                // `started` was called while the caller was cancelled (see there).
                Some(v) => Ok(v),
                None => Err(
                    "the task passed to TaskGroup::start returned without calling \
                             TaskStatus::started"
                        .into(),
                ),
            },
            Err(Ok(Err(e))) => Err(e),
            Err(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs `body` as the group's block: the body runs inside the group's scope, then
    /// the group waits for every child.
    ///
    /// The body returns `Result<T, BoxError>`; as for children, other error types go
    /// through `?` (`|tg| async move { Ok(serve(tg).await?) }`). A body that never
    /// returns (an accept loop) leaves `T` with nothing to infer it from ("type
    /// annotations needed"): write the loop as an `async fn` that names its result,
    /// or name `T` where the group is run, as in
    /// `let out: Result<Option<()>, _> = task_group(...).await;` — no
    /// `#[allow(unreachable_code)] Ok(())` needed:
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    /// use scope_runtime::{BoxError, TaskGroup, task_group};
    ///
    /// async fn serve(tg: TaskGroup, listener: TcpListener) -> Result<(), BoxError> {
    ///     loop {
    ///         let (conn, _) = listener.accept().await?;
    ///         tg.spawn(async move {
    ///             drop(conn); // handle the connection
    ///             Ok(())
    ///         });
    ///     }
    /// }
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let group = TaskGroup::new();
    ///     group.cancel(); // stops the loop at its first accept, for this example
    ///     assert!(matches!(group.run(|tg| serve(tg, listener)).await, Ok(None)));
    ///
    ///     // Inline: the annotation names `T`.
    ///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let group = TaskGroup::new();
    ///     group.cancel();
    ///     let out: Result<Option<()>, _> = group
    ///         .run(|tg| async move {
    ///             loop {
    ///                 let (conn, _) = listener.accept().await?;
    ///                 tg.spawn(async move {
    ///                     drop(conn);
    ///                     Ok(())
    ///                 });
    ///             }
    ///         })
    ///         .await;
    ///     assert!(matches!(out, Ok(None)));
    /// });
    /// ```
    ///
    /// The result is `Ok(Some(value))` when the body finished with a value, `Ok(None)`
    /// when the group absorbed its own cancellation before the body produced one, and
    /// `Err(TaskGroupError)` when children or the body failed, or when a cancellation
    /// of an enclosing scope travels through the group. A child's panic resumes here
    /// once every other child has finished.
    ///
    /// # Panics
    ///
    /// When the group is run twice, and as [`CancelScope::run`].
    pub fn run<B, Fut, T>(
        &self,
        body: B,
    ) -> impl Future<Output = Result<Option<T>, TaskGroupError>> + use<B, Fut, T>
    where
        B: FnOnce(TaskGroup) -> Fut,
        Fut: Future<Output = Result<T, BoxError>>, // fix: async move { Ok(body(tg).await?) }
    {
        let group = self.clone();
        async move {
            let inner = group.inner.clone();
            if inner.state.get() != State::Idle {
                panic!("TaskGroup::run called twice: a task group runs one block");
            }
            let entered = Entered::enter(inner.scope.state.clone());
            inner.state.set(State::Open {
                node: entered.node(),
            });
            let guard = DropChildren(inner.clone());

            let mut value = None;
            let body_out = {
                let mut body = pin!(catch_unwind(body(group)));
                poll_fn(|cx| entered.poll_inside(body.as_mut(), cx)).await
            };
            let host = || crate::current_task().info();
            match body_out {
                Ok(Ok(v)) => value = Some(v),
                Ok(Err(e)) => match e.as_cancelled() {
                    Some(c) => inner.cancelled_out(c, host),
                    None => inner.record_failure(TaskFailure {
                        task: host(),
                        body: true,
                        error: e,
                    }),
                },
                // A panicking body is treated like a panicking child: the group is
                // cancelled, the children finish, then the panic resumes (R7).
                Err(panic) => {
                    inner.panic.borrow_mut().get_or_insert(panic);
                    cancel::cancel(&inner.scope.state, CancelReason::TaskPanicked(host()));
                }
            }

            // Leaving the group is a schedule point, as in Trio and AnyIO (G39): with
            // no child left to wait for, yield once anyway (not a cancellation point).
            let mut yielded = false;
            poll_fn(|cx| {
                if inner.children.borrow().is_empty() {
                    if yielded {
                        return Poll::Ready(());
                    }
                    cx.waker().wake_by_ref();
                } else {
                    *inner.host.borrow_mut() = Some(cx.waker().clone());
                }
                yielded = true;
                Poll::Pending
            })
            .await;

            inner.state.set(State::Closed);
            drop(guard); // no children left: closes the group, drops nothing
            // A cancellation leaving the group: one that left a child or the body, or
            // one travelling beside the errors of a nested group (X20's split).
            let cancel_out = inner.cancel_out.borrow_mut().take().or_else(|| {
                let failures = inner.failures.borrow();
                failures
                    .iter()
                    .find_map(|f| cancel::find_cancelled_part(&*f.error))
                    .cloned()
            });
            // The one absorption rule, decided now (R4): a cancel of an enclosing scope
            // or of the task that arrived while we waited comes out of the group.
            let absorbed = entered.exit(cancel_out.is_some());
            if absorbed {
                // Ours now: the nested errors no longer carry it outward.
                for f in inner.failures.borrow_mut().iter_mut() {
                    cancel::strip_cancelled_parts(&mut *f.error);
                }
            }
            let outward = if absorbed { None } else { cancel_out };
            let panic = inner.panic.borrow_mut().take();
            if let Some(p) = panic {
                std::panic::resume_unwind(p);
            }
            let failures = std::mem::take(&mut *inner.failures.borrow_mut());
            if !failures.is_empty() {
                // Errors win over any cancellation (G09); a cancellation the group did
                // not absorb travels beside them, for the scope it belongs to.
                return Err(TaskGroupError {
                    cancelled: outward,
                    failures,
                });
            }
            match outward {
                Some(c) => Err(TaskGroupError {
                    cancelled: Some(c),
                    failures: Vec::new(),
                }),
                None => Ok(value),
            }
        }
    }
}

/// How a child ended, as the group reads it. A child of
/// [`spawn_cancel_only`](TaskGroup::spawn_cancel_only) hands its `Cancelled` over as it
/// is; a `BoxError` is looked into (`as_cancelled`) where it is, never re-boxed.
enum ChildEnd {
    Done,
    Cancelled(Cancelled),
    Error(BoxError),
}

/// The results a child may end with.
trait IntoChildEnd {
    fn into_child_end(self) -> ChildEnd;
}

impl IntoChildEnd for Result<(), BoxError> {
    fn into_child_end(self) -> ChildEnd {
        match self {
            Ok(()) => ChildEnd::Done,
            Err(e) => ChildEnd::Error(e),
        }
    }
}

impl IntoChildEnd for Result<(), Cancelled> {
    fn into_child_end(self) -> ChildEnd {
        match self {
            Ok(()) => ChildEnd::Done,
            Err(c) => ChildEnd::Cancelled(c),
        }
    }
}

/// Most child slots a closed group's emptied slab keeps for the next group on its
/// thread (a few hundred KB at most): a program that runs group after group of up to this many
/// children grows the slab once.
const SPARE_CHILDREN: usize = 16_384;

thread_local! {
    /// The emptied children slab of the last group closed on this thread.
    static SPARE_SLAB: Cell<Slab<TaskRef>> = const { Cell::new(Slab::new()) };
}

fn spare_children() -> Slab<TaskRef> {
    SPARE_SLAB.try_with(Cell::take).unwrap_or_default()
}

fn keep_spare_children(slab: Slab<TaskRef>) {
    debug_assert!(slab.is_empty());
    if slab.is_empty() && slab.capacity() <= SPARE_CHILDREN {
        let _ = SPARE_SLAB.try_with(|s| {
            let other = s.take();
            s.set(if other.capacity() > slab.capacity() {
                other
            } else {
                slab
            });
        });
    }
}

/// Drops the children of a group whose future is dropped before it finished (R11).
struct DropChildren(Rc<GroupInner>);

impl Drop for DropChildren {
    fn drop(&mut self) {
        self.0.state.set(State::Closed);
        let tasks: Vec<TaskRef> = self.0.children.borrow_mut().drain().collect();
        // Emptied: its capacity serves the next group on this thread.
        keep_spare_children(std::mem::take(&mut *self.0.children.borrow_mut()));
        // Every child is dropped, even if one's destructor panics; then the first
        // panic is reported once (not while this thread is already unwinding).
        if let Some(panic) = drop_tasks(tasks) {
            if !std::thread::panicking() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

impl GroupInner {
    /// A `Cancelled` (not a child's own business) left the body or a child: keep it for
    /// the decision at exit, and cancel the group, as a Trio nursery cancels itself for
    /// any exception leaving a child (`cancel_called()` becomes true).
    ///
    /// `task` names the task it left, looked up only if the group is not cancelled
    /// yet: the first reason wins, so for every later child (all of them, when the
    /// group's own cancel ends N blocked children) this is one flag test.
    fn cancelled_out(&self, c: &Cancelled, task: impl FnOnce() -> TaskInfo) {
        {
            let mut out = self.cancel_out.borrow_mut();
            if out.is_none() {
                *out = Some(c.clone());
            }
        }
        if !self.scope.state.cancel_called() {
            cancel::cancel(&self.scope.state, CancelReason::ChildCancelled(task()));
        }
    }

    /// A child ended with a `Cancelled` (bare or found in its error's chain).
    fn child_cancelled(&self, c: &Cancelled) {
        // Cancelled through its own cancel count: the child's business.
        if !cancel::current_task_absorbs() {
            self.cancelled_out(c, || crate::current_task().info());
        }
    }

    fn record_failure(&self, failure: TaskFailure) {
        #[cfg(feature = "tracing")]
        crate::runtime::observe::tracing::child_failed(&failure.task, &failure.error);
        let reason = CancelReason::TaskFailed(failure.task.clone());
        self.failures.borrow_mut().push(failure);
        cancel::cancel(&self.scope.state, reason);
    }

    fn wake_host_if_empty(&self) {
        if self.children.borrow().is_empty() {
            if let Some(w) = self.host.borrow_mut().take() {
                w.wake();
            }
        }
    }

    /// Moves a `start()` child under the group's node.
    fn adopt(&self, task: TaskRef) {
        if let State::Open { node } = self.state.get() {
            cancel::move_task_under(task.id, node);
        }
    }

    /// Called by a child's wrapper (on the child's task) when it finishes.
    fn child_done(&self, key: usize, out: std::thread::Result<ChildEnd>) {
        // Looked up only when needed: most children end with `Ok` or a cancellation.
        let me = || crate::current_task().info();
        match out {
            Ok(ChildEnd::Done) => {}
            Ok(ChildEnd::Cancelled(c)) => self.child_cancelled(&c),
            Ok(ChildEnd::Error(e)) => match e.as_cancelled() {
                Some(c) => self.child_cancelled(c),
                None => self.record_failure(TaskFailure {
                    task: me(),
                    body: false,
                    error: e,
                }),
            },
            Err(panic) => {
                self.panic.borrow_mut().get_or_insert(panic);
                cancel::cancel(&self.scope.state, CancelReason::TaskPanicked(me()));
            }
        }
        self.children.borrow_mut().try_remove(key);
        self.wake_host_if_empty();
    }
}

/// Given to the function run by [`TaskGroup::start`]: report readiness with
/// [`started`](Self::started).
pub struct TaskStatus<V> {
    state: Rc<StartState<V>>,
    group: Rc<GroupInner>,
}

struct StartState<V> {
    value: RefCell<Option<V>>,
    started: Cell<bool>,
    finished: RefCell<Option<std::thread::Result<Result<(), BoxError>>>>,
    caller: RefCell<Option<Waker>>,
    child: Cell<Option<TaskRef>>,
    /// The value of a `started` called while the caller was cancelled (not moved).
    deferred: RefCell<Option<V>>,
}

impl<V> TaskStatus<V> {
    /// Reports readiness: `value` goes to the caller of `start`, and the task becomes
    /// an ordinary child of the group (its errors go to the group from now on).
    pub fn started(self, value: V) {
        if self.state.started.get() || self.state.deferred.borrow().is_some() {
            return;
        }
        // The caller's code is cancelled already: moving the child into the group would
        // let it escape that cancellation. As in Trio, the child stays where it is (it
        // meets the cancellation at its next checkpoint); `start` returns the value only
        // if the child then ends normally.
        if self
            .state
            .child
            .get()
            .is_some_and(|t| cancel::task_cancelled(t.id))
        {
            *self.state.deferred.borrow_mut() = Some(value);
            return;
        }
        self.state.started.set(true);
        *self.state.value.borrow_mut() = Some(value);
        if let Some(task) = self.state.child.get() {
            self.group.adopt(task);
        }
        if let Some(w) = self.state.caller.borrow_mut().take() {
            w.wake();
        }
    }
}

impl<V> fmt::Debug for TaskStatus<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskStatus")
            .field("started", &self.state.started.get())
            .finish()
    }
}

/// A handle to a child of a task group: cancel it individually, or inspect it.
/// Dropping it does nothing (the group owns the task).
#[derive(Debug, Clone)]
pub struct TaskHandle(pub(crate) TaskRef);

impl std::ops::Deref for TaskHandle {
    type Target = TaskRef;
    fn deref(&self) -> &TaskRef {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    /// Group children blocked at their top level have a task link at the group's node,
    /// not a root node each. A cancel of the group still reaches every one; a child
    /// that enters a scope, and one cancelled by its handle, get a root under the group
    /// (their link goes); nothing is left behind.
    #[test]
    fn group_children_are_linked_without_a_root_until_they_need_one() {
        let rt = crate::Runtime::builder()
            .paused_clock(true)
            .build()
            .unwrap();
        rt.block_on(async {
            let core = crate::runtime::core::with_core(|c| c.clone());
            let before = core.cancel().node_count();
            let t0 = crate::now();
            let out = crate::task_group(|tg| async move {
                let mut plain = Vec::new();
                for _ in 0..3 {
                    plain.push(tg.spawn(async {
                        crate::sleep(Duration::from_secs(3600)).await?;
                        Ok(())
                    }));
                }
                let scoped = tg.spawn(async {
                    crate::move_on_after(
                        Duration::from_secs(7200),
                        crate::sleep(Duration::from_secs(3600)),
                    )
                    .await?;
                    Ok(())
                });
                let handled = tg.spawn(async {
                    crate::sleep(Duration::from_secs(3600)).await?;
                    Ok(())
                });
                crate::yield_now().await;
                let core = crate::runtime::core::with_core(|c| c.clone());
                // The main task's root (the group's parent), the group's node, the
                // scoped child's root and its scope.
                assert_eq!(core.cancel().node_count(), before + 4);
                assert_eq!(core.cancel().task_link_count(), 4);
                assert!(handled.cancel());
                assert_eq!(core.cancel().task_link_count(), 3, "the cancel made a root");
                assert_eq!(core.cancel().node_count(), before + 5);
                crate::yield_now().await;
                assert!(!handled.is_alive(), "the cancelled child ended");
                assert!(plain.iter().chain([&scoped]).all(|c| c.is_alive()));
                tg.cancel();
                Ok(())
            })
            .await;
            assert!(out.is_ok(), "{out:?}");
            assert_eq!(
                crate::now(),
                t0,
                "the cancel woke the children (no sleep ended)"
            );
            assert_eq!(
                core.cancel().node_count(),
                before + 1,
                "the main task's root"
            );
            assert_eq!(core.cancel().task_link_count(), 0);
        });
        assert_eq!(rt.resources().cancel_registrations, 0, "a wait leaked");
    }
}

//! Cancel scopes: the user-facing half of cancellation.
//!
//! A [`CancelScope`] is a handle (cheap to clone, `!Send`) to the flags of one scope:
//! `cancel_called`, `cancelled_caught`, its deadline, its shield and its cancel reason.
//! [`CancelScope::run`] enters the scope for one body: on the first poll it adds a node
//! to the runtime's status tree ([`tree`]) under the node of the code that polls it,
//! and on completion or drop it removes it. While the body is polled, that node is the
//! task's *current node*, which every checkpoint consults.
//!
//! The rules this module implements are R1–R6 and R12 of `docs/semantics.md`; the
//! status tree does the propagation (R5's shield, R6's deadline) in one walk.

pub(crate) mod error;
pub(crate) mod group;
pub(crate) mod tree;

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

pub use error::{BoxError, CancelError, CancelReason, Cancelled, TaskInfo, TimedOut};

use crate::runtime::core::{Core, with_core};
use crate::runtime::task::TaskId;
use crate::runtime::timer::{TimerEntry, TimerKey};
use tree::{NodeKey, NodeKind};

/// A scope's deadline as configured: absolute, or relative to the moment of entry.
#[derive(Debug, Clone, Copy, Default)]
enum Deadline {
    #[default]
    None,
    At(Instant),
    /// Resolved into `At` when the scope is entered (a relative timeout counts from
    /// entry, not from construction).
    After(Duration),
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Phase {
    #[default]
    Idle,
    Active {
        node: NodeKey,
    },
    Exited,
}

/// The shared state of one cancel scope (see the module doc).
#[derive(Default)]
pub(crate) struct ScopeInner {
    pub(crate) phase: Cell<Phase>,
    /// A cancel was requested (explicitly or by the deadline). Never reset.
    pub(crate) cancel_called: Cell<bool>,
    /// The first reason given; `None` until cancelled.
    pub(crate) reason: RefCell<Option<CancelReason>>,
    /// The scope absorbed a `Cancelled` addressed to it.
    pub(crate) caught: Cell<bool>,
    pub(crate) shield: Cell<bool>,
    deadline: Cell<Deadline>,
    /// The pending deadline timer while active.
    timer: Cell<Option<TimerKey>>,
    /// Set once a `CancelHandle` was handed out: the key in `Core::remote_scopes`.
    remote: Cell<Option<u64>>,
}

impl Drop for ScopeInner {
    fn drop(&mut self) {
        if let Some(id) = self.remote.get() {
            crate::runtime::core::try_with_core(|core| core.remote_scopes.borrow_mut().remove(&id));
        }
    }
}

impl ScopeInner {
    pub(crate) fn deadline_at(&self) -> Option<Instant> {
        match self.deadline.get() {
            Deadline::At(t) => Some(t),
            Deadline::None | Deadline::After(_) => None,
        }
    }

    fn active_node(&self) -> Option<NodeKey> {
        match self.phase.get() {
            Phase::Active { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Requests cancellation with `reason` (first reason wins; no-op after exit).
    pub(crate) fn cancel(self: &Rc<Self>, reason: CancelReason) {
        if matches!(self.phase.get(), Phase::Exited) || self.cancel_called.get() {
            return;
        }
        self.cancel_called.set(true);
        *self.reason.borrow_mut() = Some(reason);
        if let Some(node) = self.active_node() {
            crate::runtime::core::try_with_core(|core| {
                self.disarm(core);
                recompute_and_wake(core, node);
            });
        }
    }

    fn disarm(&self, core: &Core) {
        if let Some(key) = self.timer.take() {
            core.timers.borrow_mut().remove(key);
        }
    }

    /// (Re)arms the deadline timer of an active scope, or cancels it at once if the
    /// deadline has already passed.
    fn arm(self: &Rc<Self>, core: &Core) {
        self.disarm(core);
        if self.cancel_called.get() {
            return;
        }
        if let Some(at) = self.deadline_at() {
            if at <= core.now() {
                self.cancel(CancelReason::Deadline);
            } else {
                let key = core
                    .timers
                    .borrow_mut()
                    .insert(at, TimerEntry::Deadline(self.clone()));
                self.timer.set(Some(key));
            }
        }
    }
}

/// Recomputes the tree below `node` and wakes the tasks blocked in what became cancelled.
pub(crate) fn recompute_and_wake(core: &Core, node: NodeKey) {
    let mut wake = Vec::new();
    core.tree.borrow_mut().recompute(node, &mut wake);
    for t in wake {
        core.schedule(t);
    }
}

/// Called by the run loop when a scope's deadline timer fires.
pub(crate) fn deadline_reached(_core: &Core, scope: &Rc<ScopeInner>) {
    scope.timer.set(None);
    scope.cancel(CancelReason::Deadline);
}

/// A cancel scope: a region of code that can be cancelled as a unit, given a deadline,
/// or shielded from the cancellation of the code around it.
///
/// Build one, configure it, then run a body inside it with [`run`](Self::run). The
/// handle stays usable during and after the body: `cancel()` from anywhere on the
/// runtime's thread, read [`cancel_called`](Self::cancel_called) and
/// [`cancelled_caught`](Self::cancelled_caught) afterwards.
///
/// ```
/// use scope_runtime::{CancelScope, Cancelled, sleep};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let scope = CancelScope::new().with_timeout(Duration::from_secs(1));
///     let out = scope
///         .run(async {
///             sleep(Duration::from_secs(10)).await?; // cancelled after 1 s
///             Ok::<_, Cancelled>("finished")
///         })
///         .await;
///     assert_eq!(out, Ok(None)); // the scope absorbed its own deadline
///     assert!(scope.cancel_called() && scope.cancelled_caught());
/// });
/// ```
#[derive(Clone, Default)]
pub struct CancelScope {
    pub(crate) inner: Rc<ScopeInner>,
}

impl std::fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelScope")
            .field("phase", &self.inner.phase.get())
            .field("cancel_called", &self.cancel_called())
            .field("cancelled_caught", &self.cancelled_caught())
            .field("shield", &self.shield())
            .field("deadline", &self.inner.deadline.get())
            .finish()
    }
}

impl CancelScope {
    /// A scope with no deadline and no shield.
    pub fn new() -> CancelScope {
        CancelScope::default()
    }

    /// Sets an absolute deadline (builder style).
    pub fn with_deadline(self, deadline: Instant) -> CancelScope {
        self.inner.deadline.set(Deadline::At(deadline));
        self
    }

    /// Sets a deadline `timeout` after the moment the scope is **entered** (builder
    /// style). `Duration::MAX` and other unrepresentable deadlines mean "never".
    pub fn with_timeout(self, timeout: Duration) -> CancelScope {
        self.inner.deadline.set(Deadline::After(timeout));
        self
    }

    /// Sets the shield (builder style): a shielded scope hides the cancellation of
    /// the scopes around it from its body. Its own cancel and deadline still apply.
    pub fn with_shield(self, shield: bool) -> CancelScope {
        self.inner.shield.set(shield);
        self
    }

    /// Requests cancellation. The code after the call keeps running until its next
    /// checkpoint. Idempotent; a no-op once the scope has exited. Before the scope is
    /// entered, it takes effect on entry.
    pub fn cancel(&self) {
        self.inner.cancel(CancelReason::Explicit(None));
    }

    /// Like [`cancel`](Self::cancel), recording why. The first reason wins.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, CancelReason};
    /// let scope = CancelScope::new();
    /// scope.cancel_with("shutting down");
    /// scope.cancel_with("too late");
    /// assert_eq!(scope.cancel_reason(), Some(CancelReason::Explicit(Some("shutting down".into()))));
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        self.inner
            .cancel(CancelReason::Explicit(Some(reason.into())));
    }

    /// A `Send + Sync` handle that cancels this scope from any thread (for example
    /// from a signal handler thread or a thread pool). The request is delivered through
    /// the runtime's injector and applied by its run loop, as if `cancel_with` were
    /// called there; once the scope has exited it is a no-op.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, sleep};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let scope = CancelScope::new();
    ///     let handle = scope.cancel_handle();
    ///     let t = std::thread::spawn(move || handle.cancel_with("from a thread"));
    ///     let r = scope.run(sleep(Duration::from_secs(3600))).await;
    ///     assert_eq!(r, Ok(None));
    ///     t.join().unwrap();
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn cancel_handle(&self) -> CancelHandle {
        with_core(|core| {
            let remote = match self.inner.remote.get() {
                Some(id) => id,
                None => {
                    let id = core.register_remote(&self.inner);
                    self.inner.remote.set(Some(id));
                    id
                }
            };
            CancelHandle {
                shared: core.shared.clone(),
                remote,
            }
        })
    }

    /// Whether a cancel was requested (explicitly or by reaching the deadline).
    pub fn cancel_called(&self) -> bool {
        self.inner.cancel_called.get()
    }

    /// Whether the scope absorbed a cancellation: a `Cancelled` addressed to this scope
    /// came out of its body.
    pub fn cancelled_caught(&self) -> bool {
        self.inner.caught.get()
    }

    /// Why the scope was cancelled, if it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.inner.reason.borrow().clone()
    }

    /// The absolute deadline, if any. A relative timeout not yet entered reports `None`.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline_at()
    }

    /// Moves the deadline, earlier or later, or removes it (`None`). A task blocked
    /// inside is woken or re-timed accordingly; a deadline already past cancels the
    /// (active) scope at once.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.inner
            .deadline
            .set(deadline.map_or(Deadline::None, Deadline::At));
        if self.inner.active_node().is_some() {
            crate::runtime::core::try_with_core(|core| self.inner.arm(core));
        }
    }

    /// Whether the scope is shielded.
    pub fn shield(&self) -> bool {
        self.inner.shield.get()
    }

    /// Turns the shield on or off. Turning it off while a task is blocked inside lets
    /// an outer cancellation through at once (the task is woken).
    pub fn set_shield(&self, shield: bool) {
        if self.inner.shield.replace(shield) == shield {
            return;
        }
        if let Some(node) = self.inner.active_node() {
            crate::runtime::core::try_with_core(|core| recompute_and_wake(core, node));
        }
    }

    /// Runs `body` inside this scope.
    ///
    /// * `Ok(Some(value))`: the body finished with a value.
    /// * `Ok(None)`: the body failed with a `Cancelled` addressed to this scope (its
    ///   own cancel or deadline), and the scope absorbed it.
    /// * `Err(e)`: the body's error, including a `Cancelled` addressed to an enclosing
    ///   scope, which keeps travelling outward.
    ///
    /// # Panics
    ///
    /// When the scope is entered a second time, when polled outside a task, or when the
    /// future is moved to another task or out of the scope it was entered in.
    pub fn run<F, T, E>(&self, body: F) -> impl Future<Output = Result<Option<T>, E>> + use<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: CancelError,
    {
        let inner = self.inner.clone();
        async move {
            let active = ActiveScope::enter(inner);
            let out = {
                let mut body = pin!(body);
                poll_fn(|cx| active.poll_inside(body.as_mut(), cx)).await
            };
            let serial = active.serial;
            let scope = active.exit();
            match out {
                Ok(v) => Ok(Some(v)),
                Err(e) => match e.as_cancelled() {
                    Some(c) if c.target == serial => {
                        scope.caught.set(true);
                        Ok(None)
                    }
                    _ => Err(e),
                },
            }
        }
    }

    /// Like [`run`](Self::run), but an absorbed cancellation becomes `Err(TimedOut)`:
    /// the body had to finish. This is [`fail_after`] for a scope you configured
    /// yourself (e.g. shielded).
    pub fn run_or_timeout<F, T, E>(
        &self,
        body: F,
    ) -> impl Future<Output = Result<T, E>> + use<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: CancelError + From<TimedOut>,
    {
        let run = self.run(body);
        let inner = self.inner.clone();
        async move {
            match run.await? {
                Some(v) => Ok(v),
                None => Err(E::from(TimedOut {
                    reason: inner
                        .reason
                        .borrow()
                        .clone()
                        .unwrap_or(CancelReason::Deadline),
                })),
            }
        }
    }
}

/// Cancels a [`CancelScope`] (or task group) from any thread; see
/// [`CancelScope::cancel_handle`]. Cheap to clone.
#[derive(Clone)]
pub struct CancelHandle {
    shared: Arc<crate::runtime::task::Shared>,
    remote: u64,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("scope", &self.remote)
            .finish()
    }
}

impl CancelHandle {
    /// Requests cancellation of the scope (applied by the runtime's thread).
    pub fn cancel(&self) {
        self.send(None);
    }

    /// Requests cancellation with a reason (the first reason the scope gets wins).
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        self.send(Some(reason.into()));
    }

    fn send(&self, reason: Option<Arc<str>>) {
        self.shared.remote_cancels.push((self.remote, reason));
        // A failed wake means the runtime is gone; the scope is gone with it.
        let _ = self.shared.mio_waker.wake();
    }
}

/// An entered scope: owns its tree node until [`exit`](ActiveScope::exit) or drop.
pub(crate) struct ActiveScope {
    scope: Option<Rc<ScopeInner>>,
    pub(crate) node: NodeKey,
    pub(crate) serial: u64,
    owner: TaskId,
    parent: NodeKey,
}

impl ActiveScope {
    /// Enters `scope` under the current node of the current task.
    #[track_caller]
    pub(crate) fn enter(scope: Rc<ScopeInner>) -> ActiveScope {
        if !matches!(scope.phase.get(), Phase::Idle) {
            panic!(
                "CancelScope entered twice: a scope runs one body; create a new CancelScope \
                 (or clone the handle only to cancel or inspect it)"
            );
        }
        with_core(|core| {
            let owner = core
                .current_task
                .get()
                .expect("a cancel scope must be entered from inside a task");
            let parent = core.ensure_current_node();
            if let Deadline::After(d) = scope.deadline.get() {
                scope.deadline.set(
                    crate::runtime::clock::deadline_after(core.now(), d)
                        .map_or(Deadline::None, Deadline::At),
                );
            }
            let node =
                core.tree
                    .borrow_mut()
                    .insert(Some(parent), owner, NodeKind::Scope(scope.clone()));
            let serial = core.tree.borrow().node(node).serial;
            scope.phase.set(Phase::Active { node });
            scope.arm(core);
            ActiveScope {
                scope: Some(scope),
                node,
                serial,
                owner,
                parent,
            }
        })
    }

    /// Polls `fut` with this scope as the current node.
    pub(crate) fn poll_inside<T>(
        &self,
        fut: Pin<&mut impl Future<Output = T>>,
        cx: &mut Context<'_>,
    ) -> Poll<T> {
        let core = with_core(Rc::clone);
        if core.current_task.get() != Some(self.owner) {
            panic!(
                "a cancel scope's future was polled by a different task than the one that \
                 entered it; scopes belong to one task (spawn the work into a task group instead)"
            );
        }
        if core.current_node.get() != self.parent {
            panic!(
                "cancel scopes exited out of order: a scope's future was polled outside the \
                 scope it was entered in (was it moved out of, or kept after, its parent scope?)"
            );
        }
        struct Restore<'a>(&'a Core, NodeKey);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.current_node.set(self.1);
            }
        }
        core.current_node.set(self.node);
        let _restore = Restore(&core, self.parent);
        fut.poll(cx)
    }

    /// Leaves the scope: removes its node and timer. Returns the scope's state.
    pub(crate) fn exit(mut self) -> Rc<ScopeInner> {
        let scope = self.scope.take().expect("exit once");
        leave(&scope, self.node);
        scope
    }
}

fn leave(scope: &Rc<ScopeInner>, node: NodeKey) {
    scope.phase.set(Phase::Exited);
    crate::runtime::core::try_with_core(|core| {
        scope.disarm(core);
        let wake = core.tree.borrow_mut().remove(node);
        for t in wake {
            core.schedule(t);
        }
    });
}

impl Drop for ActiveScope {
    fn drop(&mut self) {
        if let Some(scope) = self.scope.take() {
            leave(&scope, self.node);
        }
    }
}

/// Runs `body` with a deadline `timeout` from now; on expiry the body is cancelled and
/// the result is `Ok(None)`. See [`CancelScope::run`] for the result.
///
/// ```
/// use scope_runtime::{move_on_after, sleep, Cancelled};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let r = move_on_after(Duration::from_secs(1), async {
///         sleep(Duration::from_secs(5)).await?;
///         Ok::<_, Cancelled>(5)
///     })
///     .await;
///     assert_eq!(r, Ok(None));
/// });
/// ```
pub fn move_on_after<F, T, E>(
    timeout: Duration,
    body: F,
) -> impl Future<Output = Result<Option<T>, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError,
{
    CancelScope::new().with_timeout(timeout).run(body)
}

/// Like [`move_on_after`] with an absolute deadline.
pub fn move_on_at<F, T, E>(deadline: Instant, body: F) -> impl Future<Output = Result<Option<T>, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError,
{
    CancelScope::new().with_deadline(deadline).run(body)
}

/// Runs `body` with a deadline `timeout` from now; on expiry the body is cancelled and
/// the result is `Err(TimedOut.into())` — an error, not a cancellation.
///
/// ```
/// use scope_runtime::{fail_after, sleep};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let r: std::io::Result<()> = fail_after(Duration::from_secs(1), async {
///         sleep(Duration::from_secs(5)).await?;
///         Ok(())
///     })
///     .await;
///     assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
pub fn fail_after<F, T, E>(timeout: Duration, body: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError + From<TimedOut>,
{
    CancelScope::new()
        .with_timeout(timeout)
        .run_or_timeout(body)
}

/// Like [`fail_after`] with an absolute deadline.
pub fn fail_at<F, T, E>(deadline: Instant, body: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError + From<TimedOut>,
{
    CancelScope::new()
        .with_deadline(deadline)
        .run_or_timeout(body)
}

/// The earliest deadline visible from the calling code: the minimum over the enclosing
/// scopes up to the first shield. `None` means no deadline. Outside a task, `None`.
pub fn current_effective_deadline() -> Option<Instant> {
    crate::runtime::core::try_with_core(|core| {
        core.current_task.get()?;
        core.tree
            .borrow()
            .effective_deadline(core.current_node.get())
    })
    .flatten()
}

impl Core {
    /// "Is the current code cancelled here?" — one lookup in the common case.
    pub(crate) fn check_cancelled(&self) -> Result<(), Cancelled> {
        if self.current_task.get().is_none() {
            return Ok(());
        }
        let tree = self.tree.borrow();
        let node = self.current_node.get();
        if !tree.is_effectively_cancelled(node) {
            tree.note_checkpoint(node);
            return Ok(());
        }
        match tree.checkpoint_target(node) {
            Some(t) => Err(Cancelled {
                target: t.serial,
                reason: t.reason,
            }),
            None => Ok(()),
        }
    }
}

/// Fails with `Cancelled` if the calling code is cancelled, without yielding. The
/// building block for writing your own checkpoints (call it at the start of `poll`).
/// Outside a runtime it always succeeds.
pub fn check_cancelled() -> Result<(), Cancelled> {
    crate::runtime::core::try_with_core(|core| core.check_cancelled()).unwrap_or(Ok(()))
}

/// A checkpoint: fails with `Cancelled` if the calling code is cancelled; otherwise
/// yields once to the other ready tasks, then checks again.
///
/// ```
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     assert!(scope_runtime::checkpoint().await.is_ok());
/// });
/// ```
pub async fn checkpoint() -> Result<(), Cancelled> {
    check_cancelled()?;
    crate::runtime::yield_now().await;
    check_cancelled()
}

pub use group::{
    SpawnError, TaskFailure, TaskGroup, TaskGroupError, TaskHandle, TaskStatus, task_group,
};

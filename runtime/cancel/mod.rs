//! Cancellation, owned by the scheduler: the status tree and every operation on it.
//!
//! This module is the only place that decides anything about cancellation. The rest
//! of the crate asks it questions and hands it requests:
//!
//! | who | asks / requests | through |
//! |---|---|---|
//! | every checkpoint (`sleep`, I/O, sync waits, join, `checkpoint()`) | "is the code here cancelled?" | [`check_cancelled`] / [`CancelWait::check`] |
//! | every blocking operation | "wake *this* waker if the code here is cancelled" | [`CancelWait::arm`] |
//! | hand-offs in `sync` | "is that waiter cancelled?" | [`site_cancelled`] |
//! | `CancelScope` / `TaskGroup` (`scope/`) | enter, exit (absorb?), cancel, shield, deadline | [`Entered`], [`cancel`], [`set_shield`], [`set_deadline`] |
//! | `TaskRef` | cancel counts (R9) | [`add_cancelling`], [`cancelling`] |
//! | `CancelHandle` (any thread) | cancel from outside | [`apply_remote`], drained by the run loop |
//! | the run loop | a deadline timer fired | [`deadline_fired`] |
//!
//! The state itself lives in [`tree`] (read its module doc first): nodes for task roots
//! and entered scopes, with the invariant `effective = own || (!shield &&
//! parent.effective)`, and the registrations of blocked operations. Every mutation
//! there returns the wakes it causes; the functions here release the borrow, then wake.
//!
//! Rules implemented here: R1–R6, R9, R13 of `docs/semantics.md` (R4's absorption in
//! [`tree::CancelTree::absorbs`]), and R14's [`cancellable`] for foreign futures.

mod cancellable;
pub(crate) mod error;
mod shielded;
pub(crate) mod tree;
mod wait;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

pub use cancellable::{Cancellable, cancellable};
pub use error::{
    BoxError, CancelError, CancelReason, Cancelled, TaskFailure, TaskGroupError, TaskInfo,
    find_cancelled,
};
pub(crate) use error::{find_cancelled_part, strip_cancelled_parts};
pub(crate) use shielded::shielded;
pub(crate) use tree::{Deadline, NO_LINK, NO_NODE, NodeKey, Phase, ScopeState, Wakes};
pub(crate) use wait::{CancelWait, Site, site_cancelled};

use super::core::{Core, try_with_core, with_core};
use super::task::{Shared, TaskId};
use super::timer::TimerEntry;
use tree::CancelTree;

/// Source of `CancelHandle` ids, unique in the process (so a stale id can never name
/// a scope of another runtime).
static NEXT_REMOTE: AtomicU64 = AtomicU64::new(1);

/// The cancellation state of one runtime: the tree, the node of the code being
/// polled, and the scopes reachable through a [`CancelHandle`].
#[derive(Default)]
pub(crate) struct Cancellation {
    tree: RefCell<CancelTree>,
    /// The innermost node of the code being polled (`NO_NODE`: a task at its top
    /// level without a root node yet, or no task).
    current: Cell<NodeKey>,
    /// The task link of the task being polled (`NO_LINK`: none), where its code at its
    /// top level answers "am I cancelled?" while `current` is `NO_NODE` (a task-group
    /// child before it has a root: see `tree::TaskLink`).
    top_link: Cell<u32>,
    remote: RefCell<HashMap<u64, Weak<ScopeState>>>,
}

impl Cancellation {
    pub(crate) fn new() -> Cancellation {
        Cancellation {
            current: Cell::new(NO_NODE),
            top_link: Cell::new(NO_LINK),
            ..Default::default()
        }
    }

    /// Makes `node` the current node; returns the previous one.
    pub(crate) fn replace_current(&self, node: NodeKey) -> NodeKey {
        self.current.replace(node)
    }

    /// The current node.
    pub(crate) fn current(&self) -> NodeKey {
        self.current.get()
    }

    /// Makes `link` the running task's link; returns the previous one.
    pub(crate) fn replace_top_link(&self, link: u32) -> u32 {
        self.top_link.replace(link)
    }

    /// Adds the root node of `task` under `parent` (`NO_NODE`: a top-level task).
    pub(crate) fn insert_root(&self, parent: NodeKey, task: TaskId) -> NodeKey {
        self.tree.borrow_mut().insert_root(parent, Some(task))
    }

    /// Links `task`, which has no root node, at `node` (a task-group child at its
    /// group's node); returns the link.
    pub(crate) fn link_task(&self, node: NodeKey, task: TaskId) -> u32 {
        self.tree.borrow_mut().link_new_task(node, task)
    }

    /// Removes a task link; returns the node it was at.
    pub(crate) fn remove_task_link(&self, link: u32) -> NodeKey {
        self.tree.borrow_mut().remove_task_link(link)
    }

    /// The node a task's code answers to at its top level: its root, else the node
    /// its link is at, else `NO_NODE` (also while the tree is borrowed: only the dump
    /// and hand-offs ask, as for [`is_cancelled`](Self::is_cancelled)).
    pub(crate) fn task_node(&self, root: NodeKey, link: u32) -> NodeKey {
        if root != NO_NODE || link == NO_LINK {
            return root; // no borrow on the common paths
        }
        self.tree
            .try_borrow()
            .map_or(NO_NODE, |t| t.node_or_link(root, link))
    }

    /// Removes a finished task's root node; returns the wakes (only after misuse:
    /// nodes left under it move up).
    pub(crate) fn remove_root(&self, root: NodeKey) -> Wakes {
        let (wakes, scope) = self.tree.borrow_mut().remove(root);
        drop(scope);
        wakes
    }

    /// Whether the code at `node` is cancelled (`false` while the tree is borrowed:
    /// only a hand-off asks, and then any order of two events is valid).
    pub(crate) fn is_cancelled(&self, node: NodeKey) -> bool {
        self.tree.try_borrow().is_ok_and(|t| t.is_cancelled(node))
    }

    /// Live registrations of blocked operations (for tests of the wake rule).
    pub(crate) fn waiter_count(&self) -> usize {
        self.tree.borrow().waiter_count()
    }

    /// Live nodes of the status tree.
    pub(crate) fn node_count(&self) -> usize {
        self.tree.borrow().len()
    }

    /// Live task links (group children without a root node).
    pub(crate) fn task_link_count(&self) -> usize {
        self.tree.borrow().task_link_count()
    }

    /// One node as the task dump reads it (`None` for a stale key, or while the tree
    /// is borrowed: the dump then shows less rather than panicking).
    pub(crate) fn view(&self, key: NodeKey) -> Option<tree::NodeView> {
        self.tree.try_borrow().ok()?.view(key)
    }

    /// Entered scopes that became cancelled so far (a metrics counter).
    pub(crate) fn scopes_cancelled(&self) -> u64 {
        self.tree.try_borrow().map_or(0, |t| t.scopes_cancelled())
    }

    /// Scopes reachable through a `CancelHandle`.
    pub(crate) fn remote_count(&self) -> usize {
        self.remote.borrow().len()
    }
}

// ---- checkpoints ------------------------------------------------------------------

/// "Is the code being polled on `core` cancelled?" (rule R1): the tree's one answer,
/// for the current node.
#[inline]
pub(crate) fn check_in(core: &Core) -> Result<(), Cancelled> {
    let c = core.cancel();
    let (node, link) = (c.current.get(), c.top_link.get());
    if (node == NO_NODE && link == NO_LINK) || core.current_task().is_none() {
        return Ok(());
    }
    let tree = c.tree.borrow();
    let node = tree.node_or_link(node, link);
    if !tree.is_cancelled(node) {
        return Ok(());
    }
    drop(tree);
    cancelled_at(core, node)
}

/// The `Cancelled` of a checkpoint that failed at `node`. Out of line: building the
/// reason is rare, and inlined it made every checkpoint save and restore registers
/// for it (benchmark B3 polls 680,000 checkpoints; B10y's children one each).
#[cold]
#[inline(never)]
fn cancelled_at(core: &Core, node: NodeKey) -> Result<(), Cancelled> {
    let tree = core.cancel().tree.borrow();
    let r = tree.cancelled_at(node).map_or(Ok(()), Err);
    #[cfg(debug_assertions)]
    if r.is_err() {
        let serial = tree.origin_serial(node).unwrap_or(0);
        drop(tree);
        core.note_failed_checkpoint(serial);
    }
    r
}

/// The current node, creating the current task's root node if the task runs at its
/// top level without one. `NO_NODE` outside a task.
pub(crate) fn ensure_current_node(core: &Core) -> NodeKey {
    let c = &core.cancel().current;
    if c.get() != NO_NODE {
        return c.get();
    }
    let Some(task) = core.current_task() else {
        return NO_NODE;
    };
    let root = core.ensure_root(task).unwrap_or(NO_NODE);
    c.set(root);
    root
}

/// Fails with `Cancelled` if the calling code is cancelled, without yielding.
///
/// Only runtime operations are checkpoints. Call this at the start of your own
/// future's `poll` to make it one; to be *woken* when a cancel arrives while your
/// future waits on something else, wrap the wait in [`cancellable`]. Outside a runtime
/// it always succeeds.
///
/// ```
/// use scope_runtime::{CancelScope, Cancelled, check_cancelled};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let scope = CancelScope::new();
///     let r = scope
///         .run(async {
///             assert!(check_cancelled().is_ok());
///             scope.cancel();
///             check_cancelled()?; // fails now: the scope absorbs it
///             Ok::<_, Cancelled>("not reached")
///         })
///         .await;
///     assert_eq!(r, Ok(None));
/// });
/// ```
pub fn check_cancelled() -> Result<(), Cancelled> {
    try_with_core(|core| check_in(core)).unwrap_or(Ok(()))
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

/// The earliest deadline visible from the calling code: the minimum over the enclosing
/// scopes up to the first shield. `None` means no deadline. Outside a task, `None`.
///
/// If the calling code is **already cancelled** (explicitly, by a passed deadline, or
/// through its task's cancel count), the answer is "out of time": an instant no later
/// than now — the one at which that cancellation took effect — so `deadline - now` is
/// zero and `deadline <= now` holds. (Trio returns `-inf` there.)
///
/// ```
/// use scope_runtime::{current_effective_deadline, move_on_after, now};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     assert_eq!(current_effective_deadline(), None);
///     let start = now();
///     move_on_after(Duration::from_secs(5), async {
///         assert_eq!(current_effective_deadline(), Some(start + Duration::from_secs(5)));
///         Ok::<_, scope_runtime::Cancelled>(())
///     })
///     .await
///     .unwrap();
///     // Already cancelled: out of time, whatever deadlines are further out.
///     let scope = scope_runtime::CancelScope::new().with_timeout(Duration::from_secs(60));
///     scope
///         .run(async {
///             scope.cancel();
///             assert_eq!(current_effective_deadline(), Some(now()));
///             Ok::<_, scope_runtime::Cancelled>(())
///         })
///         .await
///         .unwrap();
/// });
/// ```
pub fn current_effective_deadline() -> Option<Instant> {
    try_with_core(|core| {
        core.current_task()?;
        let c = core.cancel();
        let tree = c.tree.borrow();
        tree.effective_deadline(tree.node_or_link(c.current.get(), c.top_link.get()))
    })
    .flatten()
}

// ---- scopes -----------------------------------------------------------------------

/// The node and runtime of an entered scope (`None` if idle, exited, or its runtime
/// is gone).
fn active_core(scope: &ScopeState) -> Option<(NodeKey, Rc<Core>)> {
    match scope.phase() {
        Phase::Active { node } => scope.core().map(|core| (node, core)),
        Phase::Idle | Phase::Exited => None,
    }
}

/// Whether a cancel was requested for `scope`. As in Trio, a deadline that has passed
/// counts even before the run loop noticed it, and even if the scope was never entered
/// (reading it then records the cancel, reason `Deadline`).
pub(crate) fn cancel_called(scope: &Rc<ScopeState>) -> bool {
    if scope.cancel_called() {
        return true;
    }
    let Some(at) = scope.deadline_at() else {
        return false;
    };
    let now = match (scope.phase(), active_core(scope)) {
        (_, Some((_, core))) => core.now(),
        (Phase::Idle, None) => try_with_core(|core| core.now()).unwrap_or_else(Instant::now),
        _ => return false,
    };
    if at <= now {
        cancel(scope, CancelReason::Deadline);
    }
    scope.cancel_called()
}

/// Requests cancellation of `scope` with `reason` (first reason wins; no-op after
/// exit; before entry it takes effect on entry). Works from any task of the scope's
/// runtime, and between `block_on` calls: an entered scope knows its runtime.
pub(crate) fn cancel(scope: &Rc<ScopeState>, reason: CancelReason) {
    match active_core(scope) {
        Some((node, core)) => {
            disarm_deadline(&core, scope);
            let now = core.now();
            let wanted = core.instrument().is_some() || cfg!(feature = "tracing");
            let hook = wanted.then(|| reason.clone());
            let before = core.cancel().scopes_cancelled();
            let wakes = core
                .cancel()
                .tree
                .borrow_mut()
                .cancel_scope(node, reason, now);
            core.run_wakes(wakes);
            note_cancelled(&core, before, hook);
        }
        _ => scope.cancel_idle(reason, try_with_core(|core| core.now())),
    }
}

/// Turns the shield on or off (R5). Turning it off while a task is blocked inside
/// lets an outer cancellation through at once.
pub(crate) fn set_shield(scope: &Rc<ScopeState>, shield: bool) {
    match active_core(scope) {
        Some((node, core)) => {
            let wakes = core.cancel().tree.borrow_mut().set_shield(node, shield);
            core.run_wakes(wakes);
        }
        _ => scope.set_shield_idle(shield),
    }
}

/// Sets the deadline (R6). For an entered scope a relative deadline counts from now,
/// the timer is re-armed, and a deadline already past cancels at once.
pub(crate) fn set_deadline(scope: &Rc<ScopeState>, deadline: Deadline) {
    match active_core(scope) {
        Some((_, core)) => {
            scope.set_deadline_field(resolve(&core, deadline));
            arm_deadline(&core, scope, None);
        }
        _ => scope.set_deadline_field(deadline),
    }
}

fn resolve(core: &Core, deadline: Deadline) -> Deadline {
    match deadline {
        Deadline::After(d) => crate::runtime::clock::deadline_after(core.now(), d)
            .map_or(Deadline::None, Deadline::At),
        d => d,
    }
}

fn disarm_deadline(core: &Core, scope: &ScopeState) {
    if let Some(key) = scope.take_timer() {
        core.remove_timer(key);
    }
}

/// (Re)arms the deadline timer of an active scope, or cancels it at once if the
/// deadline has already passed. `serial` is the scope's node serial, if known.
fn arm_deadline(core: &Core, scope: &Rc<ScopeState>, serial: Option<u64>) {
    disarm_deadline(core, scope);
    let Phase::Active { node } = scope.phase() else {
        return;
    };
    if scope.cancel_called() {
        return;
    }
    let Some(at) = scope.deadline_at() else {
        return;
    };
    if at <= core.now() {
        let before = core.cancel().scopes_cancelled();
        let wakes = core
            .cancel()
            .tree
            .borrow_mut()
            .cancel_scope(node, CancelReason::Deadline, at);
        core.run_wakes(wakes);
        note_cancelled(core, before, Some(CancelReason::Deadline));
    } else {
        let serial = serial.or_else(|| core.cancel().tree.borrow().serial(node));
        if let Some(serial) = serial {
            scope.set_timer(core.insert_timer(at, TimerEntry::Deadline { node, serial }));
        }
    }
}

/// Called by the run loop when a scope's deadline timer fires.
pub(crate) fn deadline_fired(core: &Core, node: NodeKey, serial: u64) {
    #[cfg(feature = "tracing")]
    crate::runtime::observe::tracing::deadline_fired();
    let before = core.cancel().scopes_cancelled();
    let wakes = core.cancel().tree.borrow_mut().deadline_fired(node, serial);
    core.run_wakes(wakes);
    note_cancelled(core, before, Some(CancelReason::Deadline));
}

/// Tells the instrument (and the `tracing` feature) that a scope became cancelled, if
/// the counter moved past `before`.
fn note_cancelled(core: &Core, before: u64, reason: Option<CancelReason>) {
    if core.cancel().scopes_cancelled() == before {
        return;
    }
    if let (Some(i), Some(r)) = (core.instrument(), &reason) {
        i.scope_cancelled(r);
    }
    #[cfg(feature = "tracing")]
    crate::runtime::observe::tracing::scope_cancelled(reason.as_ref());
}

/// An entered scope: owns its tree node until [`exit`](Entered::exit) or drop.
pub(crate) struct Entered {
    scope: Option<Rc<ScopeState>>,
    /// The runtime it was entered on (its node is in that tree).
    core: Rc<Core>,
    node: NodeKey,
    owner: TaskId,
    parent: NodeKey,
    /// The scope's span, entered while its body is polled (feature `tracing`).
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Entered {
    /// Enters `scope` under the current node of the current task (R12: once only).
    #[track_caller]
    pub(crate) fn enter(scope: Rc<ScopeState>) -> Entered {
        if scope.phase() != Phase::Idle {
            panic!(
                "CancelScope entered twice: a scope runs one body; create a new CancelScope \
                 (or clone the handle only to cancel or inspect it)"
            );
        }
        with_core(|core| {
            let owner = core
                .current_task()
                .expect("a cancel scope must be entered from inside a task");
            let parent = ensure_current_node(core);
            scope.set_deadline_field(resolve(core, scope.configured_deadline()));
            let (node, serial) = core.cancel().tree.borrow_mut().enter_scope(
                parent,
                &scope,
                Rc::downgrade(core),
                core.now(),
            );
            arm_deadline(core, &scope, Some(serial));
            Entered {
                #[cfg(feature = "tracing")]
                span: crate::runtime::observe::tracing::scope_span(scope.is_group()),
                scope: Some(scope),
                core: core.clone(),
                node,
                owner,
                parent,
            }
        })
    }

    /// The scope's node (task-group children are linked, or hang their roots, under it).
    pub(crate) fn node(&self) -> NodeKey {
        self.node
    }

    /// Polls `fut` with this scope as the current node.
    ///
    /// # Panics
    ///
    /// When polled by another task than the one that entered the scope (also: on
    /// another runtime, or outside any task), or outside the scope it was entered in
    /// (R12).
    pub(crate) fn poll_inside<T>(
        &self,
        fut: Pin<&mut impl Future<Output = T>>,
        cx: &mut Context<'_>,
    ) -> Poll<T> {
        // The runtime it was entered on runs `owner` only while polling that task on
        // this very thread (`Rc<Core>` cannot leave it).
        let core = &*self.core;
        if core.current_task() != Some(self.owner) {
            panic!(
                "a cancel scope's future was polled by a different task than the one that \
                 entered it; scopes belong to one task (spawn the work into a task group instead)"
            );
        }
        if core.cancel().current.get() != self.parent {
            panic!(
                "cancel scopes exited out of order: a scope's future was polled outside the \
                 scope it was entered in (was it moved out of, or kept after, its parent scope?)"
            );
        }
        struct Restore<'a>(&'a Core, NodeKey);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                self.0.cancel().current.set(self.1);
            }
        }
        core.cancel().current.set(self.node);
        let _restore = Restore(core, self.parent);
        #[cfg(feature = "tracing")]
        let _span = self.span.enter();
        fut.poll(cx)
    }

    /// Leaves the scope. `cancelled_out` says whether a `Cancelled` is leaving the body;
    /// returns whether the scope absorbs it (rule R4, [`tree::CancelTree::absorbs`]).
    pub(crate) fn exit(mut self, cancelled_out: bool) -> bool {
        self.leave(cancelled_out)
    }

    fn leave(&mut self, cancelled_out: bool) -> bool {
        let Some(scope) = self.scope.take() else {
            return false;
        };
        let core = &*self.core;
        disarm_deadline(core, &scope);
        let (absorbed, wakes, state) = core
            .cancel()
            .tree
            .borrow_mut()
            .exit_scope(self.node, cancelled_out);
        drop(state);
        core.run_wakes(wakes);
        #[cfg(feature = "tracing")]
        if absorbed {
            let _span = self.span.enter();
            crate::runtime::observe::tracing::absorbed();
        }
        absorbed
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.leave(false);
    }
}

// ---- tasks ------------------------------------------------------------------------

/// Adds `delta` to a task's cancel count (R9); `None` if the task has finished.
pub(crate) fn add_cancelling(core: &Core, task: TaskId, delta: i64) -> Option<u32> {
    // A task cancelling itself at its top level before it had a root: `ensure_root`
    // makes the new root the current node, so its next checkpoint sees it.
    let root = core.ensure_root(task)?;
    let now = core.now();
    let (n, wakes) = core
        .cancel()
        .tree
        .borrow_mut()
        .add_cancelling(root, delta, now);
    core.run_wakes(wakes);
    Some(n)
}

/// A task's cancel count (0 for a finished task).
pub(crate) fn cancelling(core: &Core, task: TaskId) -> u32 {
    core.task_root(task)
        .map_or(0, |r| core.cancel().tree.borrow().cancelling(r))
}

/// Whether a `Cancelled` ending the current task is the task's own business: its root
/// absorbs it (its cancel count, with no cancelled scope visible above it).
pub(crate) fn current_task_absorbs() -> bool {
    try_with_core(|core| {
        if !core.cancel().tree.borrow().any_root_cancelled() {
            return Some(false); // no task has a cancel count: the common case
        }
        let task = core.current_task()?;
        let root = core.task_root(task)?;
        Some(core.cancel().tree.borrow().absorbs(root))
    })
    .flatten()
    .unwrap_or(false)
}

/// Whether the code at a task's root is cancelled (its own count, or a cancelled
/// scope above it).
pub(crate) fn task_cancelled(task: TaskId) -> bool {
    try_with_core(|core| core.top_level_cancelled(task)).unwrap_or(false)
}

/// Moves a task's root node (made now if the task is still only linked) under `node`
/// (the `start()` handshake: the child leaves the caller's scopes for the group's).
pub(crate) fn move_task_under(task: TaskId, node: NodeKey) {
    try_with_core(|core| {
        if let Some(root) = core.ensure_root(task) {
            let wakes = core.cancel().tree.borrow_mut().reparent(root, node);
            core.run_wakes(wakes);
        }
    });
}

/// The current node, created if needed (the parent for a `start()` child's root).
pub(crate) fn current_node() -> NodeKey {
    with_core(|core| ensure_current_node(core))
}

// ---- cancelling from other threads -------------------------------------------------

/// Cancels a [`CancelScope`](crate::CancelScope) (or task group) from any thread; see
/// [`CancelScope::cancel_handle`](crate::CancelScope::cancel_handle). Cheap to clone.
#[derive(Clone)]
pub struct CancelHandle {
    shared: Arc<Shared>,
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
        self.shared.push_remote_cancel(self.remote, reason);
    }
}

/// A `CancelHandle` for `scope`, registering it with the current runtime on first use.
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub(crate) fn cancel_handle(scope: &Rc<ScopeState>) -> CancelHandle {
    with_core(|core| {
        let remote = match scope.remote() {
            Some(id) => id,
            None => {
                let id = NEXT_REMOTE.fetch_add(1, Ordering::Relaxed);
                core.cancel()
                    .remote
                    .borrow_mut()
                    .insert(id, Rc::downgrade(scope));
                scope.set_remote(id, Rc::downgrade(core));
                id
            }
        };
        CancelHandle {
            shared: core.shared().clone(),
            remote,
        }
    })
}

/// Applies a cancel request that came through a `CancelHandle` (called by the run loop).
pub(crate) fn apply_remote(core: &Core, remote: u64, reason: Option<Arc<str>>) {
    let scope = core
        .cancel()
        .remote
        .borrow()
        .get(&remote)
        .and_then(Weak::upgrade);
    if let Some(scope) = scope {
        cancel(&scope, CancelReason::Explicit(reason));
    }
}

/// Forgets a scope's `CancelHandle` id in the map of the runtime it was registered
/// with (its state is being dropped: on that runtime's thread, `ScopeState` is not
/// `Send`, whichever runtime, if any, is running there now).
pub(crate) fn forget_remote(core: &Weak<Core>, remote: u64) {
    if let Some(core) = core.upgrade() {
        if let Ok(mut map) = core.cancel().remote.try_borrow_mut() {
            map.remove(&remote);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::time::Duration;

    use futures::stream::{FuturesUnordered, StreamExt};

    use crate::sync::{Mutex, Semaphore, channel};
    use crate::{BoxError, Outcome, Runtime, cancellable, move_on_after, sleep};

    /// Tree registrations and top-level waits kept in tasks.
    fn waits(rt: &Runtime) -> usize {
        rt.core.resources().cancel_registrations
    }

    /// Every registration made by a blocked operation is gone once the operations
    /// are: after a cancel inside a combinator, after completion, after a drop.
    #[test]
    fn registrations_do_not_outlive_their_operations() {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        rt.block_on(async {
            let sem = Semaphore::new(0);
            let mutex = Mutex::new(());
            let held = mutex.lock().await.unwrap();
            let (tx, rx) = channel::<u8>(1);
            let r = move_on_after(Duration::from_secs(1), async {
                let mut all: FuturesUnordered<futures::future::LocalBoxFuture<'_, _>> =
                    FuturesUnordered::new();
                for _ in 0..8 {
                    all.push(Box::pin(async {
                        sleep(Duration::from_secs(60)).await?;
                        Ok::<_, BoxError>(())
                    }));
                    all.push(Box::pin(async {
                        let _permit = sem.acquire().await?;
                        Ok(())
                    }));
                    all.push(Box::pin(async {
                        let _guard = mutex.lock().await?;
                        Ok(())
                    }));
                    all.push(Box::pin(async {
                        rx.recv().await?;
                        Ok(())
                    }));
                    all.push(Box::pin(async {
                        cancellable(std::future::pending::<()>()).await?;
                        Ok(())
                    }));
                }
                while let Some(r) = all.next().await {
                    r?;
                }
                Ok::<_, BoxError>(())
            })
            .await;
            assert!(matches!(r, Ok(None)));
            drop(held);
            // Completed waits release theirs too.
            sem.add_permits(1);
            drop(sem.acquire().await.unwrap());
            tx.try_send(1).unwrap();
            assert_eq!(rx.recv().await, Ok(Some(1)));
            sleep(Duration::from_millis(1)).await.unwrap();
            // A wait dropped while registered releases its registration.
            let mut pending = Box::pin(sleep(Duration::from_secs(60)));
            std::future::poll_fn(|cx| {
                assert!(pending.as_mut().poll(cx).is_pending());
                std::task::Poll::Ready(())
            })
            .await;
            drop(pending);
        });
        assert_eq!(waits(&rt), 0, "a registration leaked");
    }

    /// A top-level task blocked with its own waker keeps its wait in the task: no
    /// tree node, no registration. A cancel of the task still wakes it (its new root
    /// node schedules it), the dump still says what it waits on, and a hand-off skips
    /// it once it is cancelled.
    #[test]
    fn a_top_level_wait_needs_no_tree_node_and_is_still_cancelled() {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        rt.block_on(async {
            let sem = std::rc::Rc::new(Semaphore::new(0));
            let (s1, s2) = (sem.clone(), sem.clone());
            let sleeper = crate::spawn(async { sleep(Duration::from_secs(3600)).await });
            let first = crate::spawn(async move { s1.acquire().await.map(drop) });
            let second = crate::spawn(async move { s2.acquire().await.map(drop) });
            crate::yield_now().await;
            let core = crate::runtime::core::with_core(|c| c.clone());
            let nodes = core.cancel().node_count();
            assert_eq!(core.cancel().waiter_count(), 0, "tree registrations made");
            assert_eq!(core.resources().cancel_registrations, 3);
            let text = crate::dump().to_string();
            assert!(text.contains("waiting on sleep"), "{text}");
            assert!(text.contains("waiting on acquire"), "{text}");
            // Cancel the first waiter, then hand out one permit: it must go to the
            // second waiter, not to the cancelled one.
            assert!(first.cancel());
            assert_eq!(
                core.cancel().node_count(),
                nodes + 1,
                "the cancel made a root"
            );
            sem.add_permits(1);
            assert!(sleeper.cancel());
            assert!(matches!(first.await, Ok(Outcome::Cancelled(_))));
            assert!(matches!(second.await, Ok(Outcome::Ok(()))));
            assert!(matches!(sleeper.await, Ok(Outcome::Cancelled(_))));
        });
        assert_eq!(waits(&rt), 0, "a wait leaked");
    }

    /// Two waits of one task at its top level, both with the task's waker (`join!`):
    /// the first is kept in the task, the second in the tree; both are cancelled.
    #[test]
    fn a_second_top_level_wait_goes_to_the_tree() {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        rt.block_on(async {
            let task = crate::spawn(async {
                let (a, b) = futures::join!(
                    sleep(Duration::from_secs(3600)),
                    sleep(Duration::from_secs(7200))
                );
                Ok::<_, BoxError>((a.is_err(), b.is_err()))
            });
            crate::yield_now().await;
            let core = crate::runtime::core::with_core(|c| c.clone());
            assert_eq!(core.cancel().waiter_count(), 1);
            assert_eq!(core.resources().cancel_registrations, 2);
            assert!(task.cancel());
            assert!(matches!(task.await, Ok(Outcome::Ok((true, true)))));
        });
        assert_eq!(waits(&rt), 0, "a wait leaked");
    }

    /// A `CancelHandle` that outlives its runtime queues nothing.
    #[test]
    fn a_handle_of_a_dropped_runtime_holds_nothing() {
        let rt = Runtime::new().unwrap();
        let scope = std::rc::Rc::new(super::ScopeState::default());
        let handle = rt.block_on(async { super::cancel_handle(&scope) });
        drop(rt);
        for _ in 0..1000 {
            handle.cancel();
        }
        assert!(handle.shared.pop_remote_cancel().is_none());
    }

    /// Scopes with a `CancelHandle` dropped outside `block_on` remove their entry all
    /// the same (they know their runtime).
    #[test]
    fn remote_entries_of_scopes_dropped_outside_do_not_accumulate() {
        let rt = Runtime::new().unwrap();
        let kept = std::rc::Rc::new(super::ScopeState::default());
        let kept_handle = rt.block_on(async { super::cancel_handle(&kept) });
        for _ in 0..500 {
            let scope = std::rc::Rc::new(super::ScopeState::default());
            rt.block_on(async { drop(super::cancel_handle(&scope)) });
            drop(scope); // no runtime current
        }
        let n = rt.core.cancel().remote.borrow().len();
        assert_eq!(n, 1, "remote entries for 1 live scope");
        kept_handle.cancel();
        // The run loop applies remote cancels when it turns; yielding makes it turn
        // (a sleep could end before it does, under Miri's slow clock).
        rt.block_on(async {
            for _ in 0..1000 {
                if kept.cancel_called() {
                    break;
                }
                crate::yield_now().await;
            }
        });
        assert!(kept.cancel_called(), "the kept scope's handle still works");
    }
}

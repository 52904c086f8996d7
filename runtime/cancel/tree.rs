//! The cancel-status tree: every piece of cancellation state, and the only code that
//! writes it.
//!
//! Users hold [`CancelScope`](crate::CancelScope)s and task groups; the scheduler holds
//! this tree. It mirrors the nesting of everything that can be cancelled:
//!
//! * a **root node** per task (`Kind::Root`), carrying the task's `cancelling` count
//!   (rule R9). A top-level task's root has no parent; a task-group child's root hangs
//!   under its group's node, so the group's cancellation reaches it. A task gets its
//!   root only when something needs it (a scope entered, a cancel of the task, a wait
//!   that cannot be kept in its header): until then a top-level task has nothing here,
//!   and a group child has a **task link** at its group's node instead (a
//!   [`TaskLink`], 16 bytes in a slab against a whole node): the code at the child's
//!   top level is cancelled exactly when that node is, and the node's becoming
//!   cancelled schedules the child as its root would.
//! * a **scope node** (`Kind::Scope`) per entered cancel scope or task group, under the
//!   node that was innermost for the task when the scope was entered. Its flags live in
//!   a [`ScopeState`], shared with the user's handle so that they can be read (and set
//!   before entry) while the scope is not in the tree. Only this module writes them.
//! * **waiters**: one registration per blocked runtime operation (a sleep, a socket
//!   readiness wait, a lock, a channel receive, a join...), holding that operation's
//!   own waker, in a list at the node it waits in (rule R13).
//!
//! # Invariants
//!
//! * `effective` of every node equals `own || (!shield && parent.effective)`, where
//!   `own` is "this scope was cancelled or reached its deadline" (for a root: its
//!   `cancelling` count is above zero). Every method that changes `own`, `shield` or a
//!   parent link ends with [`CancelTree::recompute`], which walks down from the changed
//!   node and stops wherever `effective` did not change: cancelling a group of N
//!   blocked children is one walk of N + 1 nodes. No other code can change them: the
//!   fields are private to this file.
//! * **The wake rule.** When a node becomes effectively cancelled, the waker of every
//!   operation registered at it is woken — the operation's own waker, not its task's,
//!   so an operation polled inside a combinator that keeps per-future wakers
//!   (`FuturesUnordered`, `buffered`, `select_all`) is polled again and fails with
//!   `Cancelled` at once. A task's root node that becomes cancelled also schedules
//!   its task, for the one wait the task may keep at its top level without a
//!   registration (see `CancelWait`); so do the task links at a node that becomes
//!   cancelled. Operations waiting under a shield are not woken. A fired
//!   registration stays in place (without its waker) until its owner removes it, so
//!   "is the waiter at this registration cancelled?" keeps an answer for hand-offs
//!   ([`CancelTree::waiter_cancelled`]).
//! * **Every mutation returns the wakes it causes** (a [`Wakes`]); the caller wakes
//!   them after releasing its borrow of the tree. Values the tree drops (a scope's
//!   shared state, a replaced waker) are handed back too, so no user code runs while
//!   the tree is borrowed.
//! * One function answers "is the code at this node cancelled, and why"
//!   ([`CancelTree::cancelled_at`]) and one answers "does this scope absorb a
//!   `Cancelled` leaving it" ([`CancelTree::absorbs`]).
//! * Node keys and waiter slots are reused; `serial` (per node) and `seq` (per
//!   registration) are not, so a stale key finds nothing.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::{Duration, Instant};

use slab::Slab;

use super::error::{CancelReason, Cancelled};
use crate::runtime::core::Core;
use crate::runtime::observe::WaitingOn;
use crate::runtime::task::TaskId;
use crate::runtime::timer::TimerKey;
use crate::runtime::wake_list::{Target, WakeBy};

/// A node's key in the tree.
pub(crate) type NodeKey = u32;

/// "No node": the parent of a top-level root, the current node of code that runs at
/// a task's top level before it needed a root node, and of code outside any task.
pub(crate) const NO_NODE: NodeKey = u32::MAX;

/// "No entry" in the intrusive lists (children, waiters).
const NIL: u32 = u32::MAX;

/// No task link (see [`TaskLink`]).
pub(crate) const NO_LINK: u32 = u32::MAX;

/// A scope's deadline as configured: absolute, or relative to the moment of entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Deadline {
    #[default]
    None,
    At(Instant),
    /// Resolved into `At` when the scope is entered (a relative timeout counts from
    /// entry, not from construction).
    After(Duration),
}

/// Where a scope is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Built, not entered: flags can be set; they take effect on entry.
    #[default]
    Idle,
    /// Its body runs: the scope is the node `node` of its runtime's tree.
    Active { node: NodeKey },
    /// The body ended. Flags are frozen (cancel is a no-op).
    Exited,
}

/// The state of one cancel scope (or task group), shared by the user's handle and, while
/// the scope is entered, its tree node. Fields are private to this file: reading is
/// free, writing goes through [`CancelTree`] (entered scopes) or the `*_idle` methods
/// (scopes not entered, which no tree sees yet).
#[derive(Default)]
pub(crate) struct ScopeState {
    phase: Cell<Phase>,
    /// The runtime of an entered scope (so a cancel from outside `block_on`, or from
    /// another task, finds the right tree).
    core: RefCell<Weak<Core>>,
    /// A cancel was requested (explicitly or by the deadline). Never reset.
    cancel_called: Cell<bool>,
    /// The first reason given; `None` until cancelled.
    reason: RefCell<Option<CancelReason>>,
    /// When the cancellation took effect (a deadline: the deadline; a scope cancelled
    /// before entry: its entry).
    cancelled_at: Cell<Option<Instant>>,
    /// The scope absorbed a `Cancelled` leaving its body.
    caught: Cell<bool>,
    shield: Cell<bool>,
    deadline: Cell<Deadline>,
    /// The pending deadline timer while active.
    timer: Cell<Option<TimerKey>>,
    /// Set once a `CancelHandle` was handed out: the scope's id in the remote map of
    /// that runtime (so dropping the scope removes the entry, wherever it is dropped).
    remote: RefCell<Option<(u64, Weak<Core>)>>,
    /// The scope is a task group's (a label for the task dump; no rule reads it).
    group: Cell<bool>,
}

impl std::fmt::Debug for ScopeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopeState")
            .field("phase", &self.phase.get())
            .field("cancel_called", &self.cancel_called.get())
            .field("cancelled_caught", &self.caught.get())
            .field("shield", &self.shield.get())
            .field("deadline", &self.deadline.get())
            .finish()
    }
}

impl ScopeState {
    /// Labels the scope as a task group's, for the task dump.
    pub(crate) fn mark_group(&self) {
        self.group.set(true);
    }

    pub(crate) fn is_group(&self) -> bool {
        self.group.get()
    }

    pub(crate) fn phase(&self) -> Phase {
        self.phase.get()
    }

    pub(crate) fn cancel_called(&self) -> bool {
        self.cancel_called.get()
    }

    pub(crate) fn cancelled_caught(&self) -> bool {
        self.caught.get()
    }

    pub(crate) fn reason(&self) -> Option<CancelReason> {
        self.reason.borrow().clone()
    }

    pub(crate) fn shield(&self) -> bool {
        self.shield.get()
    }

    /// The configured deadline (relative until entry).
    pub(crate) fn configured_deadline(&self) -> Deadline {
        self.deadline.get()
    }

    /// The absolute deadline, if any (a relative timeout not yet entered has none).
    pub(crate) fn deadline_at(&self) -> Option<Instant> {
        match self.deadline.get() {
            Deadline::At(t) => Some(t),
            Deadline::None | Deadline::After(_) => None,
        }
    }

    pub(crate) fn remote(&self) -> Option<u64> {
        self.remote.borrow().as_ref().map(|(id, _)| *id)
    }

    pub(super) fn set_remote(&self, id: u64, core: Weak<Core>) {
        *self.remote.borrow_mut() = Some((id, core));
    }

    /// The runtime of an entered scope, if it is still alive.
    pub(super) fn core(&self) -> Option<Rc<Core>> {
        match self.phase.get() {
            Phase::Active { .. } => self.core.borrow().upgrade(),
            Phase::Idle | Phase::Exited => None,
        }
    }

    pub(super) fn take_timer(&self) -> Option<TimerKey> {
        self.timer.take()
    }

    pub(super) fn set_timer(&self, key: TimerKey) {
        self.timer.set(Some(key));
    }

    /// Records a cancel request made at `at` (if known); `false` if one was already
    /// made (first reason wins) or the scope has exited.
    fn mark_cancelled(&self, reason: CancelReason, at: Option<Instant>) -> bool {
        if self.phase.get() == Phase::Exited || self.cancel_called.get() {
            return false;
        }
        self.cancel_called.set(true);
        *self.reason.borrow_mut() = Some(reason);
        self.cancelled_at.set(at);
        true
    }

    /// Cancels a scope that is not in any tree (idle; a no-op once exited). `at` is
    /// the time, if a clock is at hand (otherwise the entry counts).
    pub(super) fn cancel_idle(&self, reason: CancelReason, at: Option<Instant>) {
        if self.phase.get() == Phase::Idle {
            self.mark_cancelled(reason, at);
        }
    }

    /// Sets the shield of a scope that is not in any tree.
    pub(super) fn set_shield_idle(&self, shield: bool) {
        if !matches!(self.phase.get(), Phase::Active { .. }) {
            self.shield.set(shield);
        }
    }

    /// Sets the deadline. Only the field: an active scope's timer is re-armed by the
    /// caller (`cancel::arm_deadline`), which also cancels at once if it has passed.
    pub(super) fn set_deadline_field(&self, deadline: Deadline) {
        self.deadline.set(deadline);
    }
}

impl Drop for ScopeState {
    fn drop(&mut self) {
        if let Some((id, core)) = self.remote.get_mut().take() {
            super::forget_remote(&core, id);
        }
    }
}

/// What a node stands for.
enum Kind {
    /// A task's root node: cancelled while `cancelling > 0`, since `since`. `task`
    /// is scheduled when the node becomes cancelled (for the wait it may keep in its
    /// header instead of a registration); `None` only in this file's tests.
    Root {
        cancelling: u32,
        since: Option<Instant>,
        task: Option<TaskId>,
    },
    /// An entered cancel scope (or task group).
    Scope(Rc<ScopeState>),
}

/// The first operation registered at a node, kept in the node itself: nearly every
/// node has at most one (a task blocked in one sleep, read or wait), and then the
/// registration costs no slab entry and no list links.
#[derive(Debug, Default)]
enum Inline {
    #[default]
    Free,
    /// Held by the registration numbered `seq` (never reused, as for [`Waiter`]s),
    /// of an operation waiting on `on`.
    Armed {
        seq: u64,
        target: Target,
        on: WaitingOn,
    },
    /// Woken by a cancel; held until its owner removes it (like a fired [`Waiter`]).
    Fired { seq: u64, on: WaitingOn },
}

impl Inline {
    fn seq(&self) -> Option<u64> {
        match self {
            Inline::Free => None,
            Inline::Armed { seq, .. } | Inline::Fired { seq, .. } => Some(*seq),
        }
    }

    /// Frees the slot; returns the target if it had not fired.
    fn take(&mut self) -> Option<Target> {
        match std::mem::take(self) {
            Inline::Armed { target, .. } => Some(target),
            _ => None,
        }
    }
}

/// Set in a [`WaiterKey`]'s `seq` for an inline registration: then `slot` is the node
/// key and the rest of `seq` the registration's number.
const INLINE: u64 = 1 << 63;

struct Node {
    parent: NodeKey,
    first_child: NodeKey,
    prev: NodeKey,
    next: NodeKey,
    /// Head of the list of further operations waiting at this node.
    first_waiter: u32,
    /// Head of the list of the tasks linked here without a root node ([`TaskLink`]).
    first_task: u32,
    inline: Inline,
    effective: bool,
    serial: u64,
    kind: Kind,
}

impl Node {
    fn own(&self) -> bool {
        match &self.kind {
            Kind::Root { cancelling, .. } => *cancelling > 0,
            Kind::Scope(s) => s.cancel_called.get(),
        }
    }

    fn shield(&self) -> bool {
        match &self.kind {
            Kind::Root { .. } => false,
            Kind::Scope(s) => s.shield.get(),
        }
    }

    fn reason(&self) -> CancelReason {
        match &self.kind {
            Kind::Root { .. } => CancelReason::TaskCancelled,
            Kind::Scope(s) => s
                .reason
                .borrow()
                .clone()
                .unwrap_or(CancelReason::Explicit(None)),
        }
    }
}

/// The wakes a mutation of the tree causes: tasks to schedule and wakers to wake,
/// after the borrow of the tree is released.
#[derive(Debug, Default)]
#[must_use = "the wakes must be run (`Wakes::run`)"]
pub(crate) struct Wakes {
    /// In the order the tree met them.
    wake: Vec<Target>,
    /// Targets the tree let go of without waking (registrations orphaned by a node's
    /// removal): dropped with the `Wakes`, after the borrow.
    dropped: Vec<Target>,
}

/// Most entries a [`Wakes`] buffer keeps for the next mutation on its thread (a few
/// hundred KB at most): cancelling a group of that many blocked children again allocates nothing.
const SPARE_WAKES: usize = 16_384;

thread_local! {
    /// The buffer of the last [`Wakes`] run on this thread, emptied, for the next one:
    /// a cancel that wakes N operations then costs no allocation (the first one that
    /// large grows it once).
    static SPARE: std::cell::Cell<Vec<Target>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Wakes {
    pub(crate) fn push(&mut self, target: Target) {
        if self.wake.capacity() == 0 {
            // `try_with`: during the thread's teardown there is no spare, only `new`.
            self.wake = SPARE.try_with(|s| s.take()).unwrap_or_default();
        }
        self.wake.push(target);
    }

    /// Hands every target to `wake` (`Core::wake_target`), in the order the tree met
    /// them.
    #[inline]
    pub(crate) fn run(self, mut wake: impl FnMut(Target)) {
        if self.wake.is_empty() {
            return; // the common case (`dropped` goes here, after the borrow)
        }
        let mut list = self.wake;
        for t in list.drain(..) {
            wake(t);
        }
        // Kept for the next mutation, unless a wake above left a larger spare (it may
        // run code that mutates the tree) or it is too large to keep.
        if list.capacity() <= SPARE_WAKES {
            let _ = SPARE.try_with(|s| {
                let other = s.take();
                s.set(if other.capacity() > list.capacity() {
                    other
                } else {
                    list
                });
            });
        }
    }
}

/// A blocked operation's registration.
struct Waiter {
    /// The node it waits at; `NO_NODE` once that node is gone.
    node: NodeKey,
    prev: u32,
    next: u32,
    seq: u64,
    /// Taken when the node is cancelled (the registration stays until its owner
    /// removes it).
    target: Option<Target>,
    /// What the operation waits on (for the task dump).
    on: WaitingOn,
}

/// A task without a root node of its own, at a node (a task-group child at its
/// group's node, until it needs a root): the code at the task's top level is cancelled
/// exactly when the node is, and the node's becoming cancelled schedules the task (for
/// its top-level wait), as the task's root would. Cheaper than a root node to create
/// and remove, which every group child does once.
struct TaskLink {
    /// The node; `NO_NODE` once it is gone with no parent to move to.
    node: NodeKey,
    prev: u32,
    next: u32,
    task: TaskId,
}

/// One node as the task dump reads it ([`CancelTree::view`]).
pub(crate) struct NodeView {
    pub(crate) parent: NodeKey,
    /// The scope's state; `None` for a task's root node.
    pub(crate) scope: Option<Rc<ScopeState>>,
    /// A root's cancel count (0 for a scope).
    pub(crate) cancelling: u32,
    pub(crate) effective: bool,
    pub(crate) children: Vec<NodeKey>,
    /// The operations registered here: what each waits on, and whether a cancel
    /// already woke it.
    pub(crate) waits: Vec<(WaitingOn, bool)>,
    /// The tasks linked here without a root node, in the order they were linked.
    pub(crate) tasks: Vec<TaskId>,
}

/// A registration's identity: its slot and its never-reused sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WaiterKey {
    pub(super) slot: u32,
    pub(super) seq: u64,
}

/// The status tree of one runtime. See the module doc.
#[derive(Default)]
pub(crate) struct CancelTree {
    nodes: Slab<Node>,
    waiters: Slab<Waiter>,
    /// Tasks linked at a node without a root ([`TaskLink`]).
    links: Slab<TaskLink>,
    next_serial: u64,
    next_seq: u64,
    /// Inline registrations held (see [`Inline`]).
    inline_count: usize,
    /// How many root nodes have `cancelling > 0` (when none, no root can absorb: the
    /// common case is answered without a lookup).
    roots_cancelled: u32,
    /// Scratch stack of [`recompute`](Self::recompute), kept to avoid an allocation
    /// per cancel.
    stack: Vec<NodeKey>,
    /// Entered scopes that became cancelled (a metrics counter).
    scopes_cancelled: u64,
}

fn key_of(k: usize) -> u32 {
    u32::try_from(k)
        .ok()
        .filter(|&k| k != NIL)
        .expect("scope_runtime: more than 4 billion live cancel nodes or waits")
}

impl CancelTree {
    fn node(&self, key: NodeKey) -> Option<&Node> {
        self.nodes.get(key as usize)
    }

    fn n(&self, key: NodeKey) -> &Node {
        &self.nodes[key as usize]
    }

    fn n_mut(&mut self, key: NodeKey) -> &mut Node {
        &mut self.nodes[key as usize]
    }

    /// Live nodes (scopes entered, task roots).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Live registrations (fired or not).
    pub(crate) fn waiter_count(&self) -> usize {
        self.waiters.len() + self.inline_count
    }

    pub(crate) fn serial(&self, key: NodeKey) -> Option<u64> {
        self.node(key).map(|n| n.serial)
    }

    // ---- building the tree ------------------------------------------------------

    fn insert(&mut self, parent: NodeKey, kind: Kind) -> NodeKey {
        self.next_serial += 1;
        let key = key_of(self.nodes.insert(Node {
            parent: NO_NODE,
            first_child: NIL,
            prev: NIL,
            next: NIL,
            first_waiter: NIL,
            first_task: NIL,
            inline: Inline::Free,
            effective: false,
            serial: self.next_serial,
            kind,
        }));
        self.link(key, parent);
        let eff = self.compute(key);
        self.n_mut(key).effective = eff;
        key
    }

    /// Adds the root node of `task` under `parent` (`NO_NODE` for a top-level task).
    /// Its `effective` state is computed; nobody is woken (the caller decides: a task
    /// spawned into a cancelled group runs anyway and finds out at its first
    /// checkpoint).
    pub(crate) fn insert_root(&mut self, parent: NodeKey, task: Option<TaskId>) -> NodeKey {
        self.insert(
            parent,
            Kind::Root {
                cancelling: 0,
                since: None,
                task,
            },
        )
    }

    /// Enters `scope` under `parent`: the scope becomes active in this tree. Nobody is
    /// woken (the task entering is running and finds out at its next checkpoint).
    /// Returns the node and its serial. `now` is the time of entry.
    pub(crate) fn enter_scope(
        &mut self,
        parent: NodeKey,
        scope: &Rc<ScopeState>,
        core: Weak<Core>,
        now: Instant,
    ) -> (NodeKey, u64) {
        if scope.cancel_called.get() && scope.cancelled_at.get().is_none() {
            scope.cancelled_at.set(Some(now)); // cancelled before entry: from now on
        }
        let key = self.insert(parent, Kind::Scope(scope.clone()));
        scope.phase.set(Phase::Active { node: key });
        *scope.core.borrow_mut() = core;
        (key, self.n(key).serial)
    }

    fn compute(&self, key: NodeKey) -> bool {
        let n = self.n(key);
        n.own() || (!n.shield() && n.parent != NO_NODE && self.n(n.parent).effective)
    }

    fn link(&mut self, key: NodeKey, parent: NodeKey) {
        self.n_mut(key).parent = parent;
        if parent == NO_NODE {
            return;
        }
        let old_first = self.n(parent).first_child;
        {
            let n = self.n_mut(key);
            n.next = old_first;
            n.prev = NIL;
        }
        if old_first != NIL {
            self.n_mut(old_first).prev = key;
        }
        self.n_mut(parent).first_child = key;
    }

    fn unlink(&mut self, key: NodeKey) {
        let (parent, prev, next) = {
            let n = self.n(key);
            (n.parent, n.prev, n.next)
        };
        if parent == NO_NODE {
            return;
        }
        if prev != NIL {
            self.n_mut(prev).next = next;
        } else {
            self.n_mut(parent).first_child = next;
        }
        if next != NIL {
            self.n_mut(next).prev = prev;
        }
        let n = self.n_mut(key);
        n.parent = NO_NODE;
        n.prev = NIL;
        n.next = NIL;
    }

    /// Removes a node. Children it still has (only possible after misuse, e.g. a scope
    /// future leaked with `mem::forget`) move to its parent so the tree stays whole;
    /// operations still registered at it are orphaned (never woken, never cancelled).
    /// Returns the wakes and the scope state the node held (drop it after the borrow).
    pub(crate) fn remove(&mut self, key: NodeKey) -> (Wakes, Option<Rc<ScopeState>>) {
        let mut wakes = Wakes::default();
        let parent = self.n(key).parent;
        loop {
            let child = self.n(key).first_child;
            if child == NIL {
                break;
            }
            self.unlink(child);
            self.link(child, parent);
            self.recompute_into(child, &mut wakes);
        }
        // Its task links move up too, oldest first, so they keep their order.
        let mut last = self.n(key).first_task;
        while last != NIL && self.links[last as usize].next != NIL {
            last = self.links[last as usize].next;
        }
        while last != NIL {
            let link = last;
            last = self.links[link as usize].prev;
            unlink(&mut self.links, &mut self.nodes, link);
            push_front(&mut self.links, &mut self.nodes, link, parent);
            if self.is_cancelled(parent) {
                wakes.push(Target::TopWait(self.links[link as usize].task));
            }
        }
        if self.n(key).inline.seq().is_some() {
            self.inline_count -= 1; // orphaned: its owner's key no longer matches
            wakes.dropped.extend(self.n_mut(key).inline.take());
        }
        let mut w = self.n(key).first_waiter;
        while w != NIL {
            let waiter = &mut self.waiters[w as usize];
            waiter.node = NO_NODE;
            waiter.prev = NIL;
            w = std::mem::replace(&mut waiter.next, NIL);
        }
        self.unlink(key);
        let scope = match self.nodes.remove(key as usize).kind {
            Kind::Scope(s) => Some(s),
            Kind::Root { cancelling, .. } => {
                if cancelling > 0 {
                    self.roots_cancelled -= 1;
                }
                None
            }
        };
        (wakes, scope)
    }

    /// Moves `key` under `new_parent` (the `start()` handshake).
    pub(crate) fn reparent(&mut self, key: NodeKey, new_parent: NodeKey) -> Wakes {
        self.unlink(key);
        self.link(key, new_parent);
        self.recompute(key)
    }

    // ---- the rules --------------------------------------------------------------

    /// Re-derives `effective` from `key` downwards after its own flags or its parent
    /// changed, and collects the wakers of every operation waiting at a node that
    /// became effectively cancelled. One walk; it descends only where something
    /// changed.
    fn recompute(&mut self, key: NodeKey) -> Wakes {
        let mut wakes = Wakes::default();
        self.recompute_into(key, &mut wakes);
        wakes
    }

    fn recompute_into(&mut self, key: NodeKey, wakes: &mut Wakes) {
        let mut stack = std::mem::take(&mut self.stack);
        stack.push(key);
        while let Some(k) = stack.pop() {
            let eff = self.compute(k);
            let n = self.n_mut(k);
            if n.effective == eff {
                continue;
            }
            n.effective = eff;
            let mut child = n.first_child;
            if eff {
                // The task's top-level wait (kept in its header, not registered here)
                // is reached by scheduling the task.
                if let Kind::Root { task: Some(t), .. } = n.kind {
                    wakes.push(Target::TopWait(t));
                }
                let first_task = n.first_task;
                if let Inline::Armed { seq, on, .. } = n.inline {
                    if let Some(t) =
                        std::mem::replace(&mut n.inline, Inline::Fired { seq, on }).take()
                    {
                        wakes.push(t);
                    }
                }
                let mut w = n.first_waiter;
                while w != NIL {
                    let waiter = &mut self.waiters[w as usize];
                    if let Some(t) = waiter.target.take() {
                        wakes.push(t);
                    }
                    w = waiter.next;
                }
                // The tasks linked here, after the node's own registrations and in the
                // order they were linked (the list is newest first), as their roots
                // would have been met.
                let from = wakes.wake.len();
                for task in self.linked_tasks(first_task) {
                    wakes.push(Target::TopWait(task));
                }
                wakes.wake[from..].reverse();
            }
            while child != NIL {
                stack.push(child);
                child = self.n(child).next;
            }
        }
        self.stack = stack;
    }

    /// **The one answer to "is the code at `key` cancelled?"**: `None` if not, else the
    /// `Cancelled` a checkpoint there returns, carrying the reason of the outermost
    /// cancelled node visible from `key` (up to the first shield).
    pub(crate) fn cancelled_at(&self, key: NodeKey) -> Option<Cancelled> {
        self.origin(key).map(|n| Cancelled { reason: n.reason() })
    }

    /// The serial of the scope a checkpoint at `key` is cancelled by (the outermost
    /// cancelled one it can see), if any. Only the debug-build ignored-cancel watch asks.
    #[cfg(debug_assertions)]
    pub(crate) fn origin_serial(&self, key: NodeKey) -> Option<u64> {
        self.origin(key).map(|n| n.serial)
    }

    /// The outermost cancelled node visible from `key` (not through a shield).
    fn origin(&self, key: NodeKey) -> Option<&Node> {
        let mut k = key;
        let mut found = None;
        loop {
            let n = self.node(k)?;
            if !n.effective {
                break;
            }
            if n.own() {
                found = Some(n);
            }
            if n.shield() || n.parent == NO_NODE {
                break;
            }
            k = n.parent;
        }
        found
    }

    /// Whether any task's own cancel count is above zero (if not, no root node can
    /// absorb anything).
    pub(crate) fn any_root_cancelled(&self) -> bool {
        self.roots_cancelled > 0
    }

    /// Whether the code at `key` is cancelled (the cheap form of
    /// [`cancelled_at`](Self::cancelled_at)).
    #[inline]
    pub(crate) fn is_cancelled(&self, key: NodeKey) -> bool {
        self.node(key).is_some_and(|n| n.effective)
    }

    /// **The one answer to "does this scope absorb a `Cancelled` leaving it?"** (rule
    /// R4, decided when the error leaves, as in Trio): yes iff the scope (or a task's
    /// root, for its own cancel count) is itself cancelled and no cancelled ancestor is
    /// visible through it. Otherwise the `Cancelled` goes on outward, to the outermost
    /// cancelled scope that can see it.
    pub(crate) fn absorbs(&self, key: NodeKey) -> bool {
        let Some(n) = self.node(key) else {
            return false;
        };
        let parent_visible = !n.shield() && n.parent != NO_NODE && self.n(n.parent).effective;
        n.own() && !parent_visible
    }

    /// Leaves an entered scope: decides absorption ([`absorbs`](Self::absorbs)) for a
    /// `Cancelled` leaving the body (`cancelled_out`), records `cancelled_caught`, and
    /// removes the node. Returns whether the scope absorbed it.
    pub(crate) fn exit_scope(
        &mut self,
        key: NodeKey,
        cancelled_out: bool,
    ) -> (bool, Wakes, Option<Rc<ScopeState>>) {
        let absorbed = cancelled_out && self.absorbs(key);
        if let Kind::Scope(s) = &self.n(key).kind {
            if absorbed {
                s.caught.set(true);
            }
            s.phase.set(Phase::Exited);
        }
        let (wakes, scope) = self.remove(key);
        (absorbed, wakes, scope)
    }

    /// Requests cancellation of the entered scope at `key`, at time `at` (first reason
    /// wins).
    pub(crate) fn cancel_scope(
        &mut self,
        key: NodeKey,
        reason: CancelReason,
        at: Instant,
    ) -> Wakes {
        let changed = match &self.n(key).kind {
            Kind::Scope(s) => s.mark_cancelled(reason, Some(at)),
            Kind::Root { .. } => false,
        };
        if changed {
            self.scopes_cancelled += 1;
            self.recompute(key)
        } else {
            Wakes::default()
        }
    }

    /// Entered scopes that became cancelled so far.
    pub(crate) fn scopes_cancelled(&self) -> u64 {
        self.scopes_cancelled
    }

    /// The deadline timer of the scope at `key` fired (if `serial` still names it).
    pub(crate) fn deadline_fired(&mut self, key: NodeKey, serial: u64) -> Wakes {
        match self.node(key) {
            Some(n) if n.serial == serial => {
                let Kind::Scope(s) = &n.kind else {
                    return Wakes::default();
                };
                s.timer.set(None);
                let Some(at) = s.deadline_at() else {
                    return Wakes::default();
                };
                self.cancel_scope(key, CancelReason::Deadline, at)
            }
            _ => Wakes::default(),
        }
    }

    /// Turns the shield of the entered scope at `key` on or off.
    pub(crate) fn set_shield(&mut self, key: NodeKey, shield: bool) -> Wakes {
        let changed = match &self.n(key).kind {
            Kind::Scope(s) => s.shield.replace(shield) != shield,
            Kind::Root { .. } => false,
        };
        if changed {
            self.recompute(key)
        } else {
            Wakes::default()
        }
    }

    /// Adds `delta` to a root node's `cancelling` count (saturating at zero and at
    /// `u32::MAX`) at time `now`, and returns the new count (rule R9).
    pub(crate) fn add_cancelling(
        &mut self,
        root: NodeKey,
        delta: i64,
        now: Instant,
    ) -> (u32, Wakes) {
        let (before, count) = match &mut self.n_mut(root).kind {
            Kind::Root {
                cancelling, since, ..
            } => {
                let before = *cancelling;
                *cancelling = (i64::from(before) + delta).clamp(0, i64::from(u32::MAX)) as u32;
                match (before > 0, *cancelling > 0) {
                    (false, true) => *since = Some(now),
                    (true, false) => *since = None,
                    _ => {}
                }
                (before, *cancelling)
            }
            Kind::Scope(_) => unreachable!("task cancel counts live on root nodes"),
        };
        match (before > 0, count > 0) {
            (false, true) => self.roots_cancelled += 1,
            (true, false) => self.roots_cancelled -= 1,
            _ => {}
        }
        (count, self.recompute(root))
    }

    pub(crate) fn cancelling(&self, root: NodeKey) -> u32 {
        match self.node(root).map(|n| &n.kind) {
            Some(Kind::Root { cancelling, .. }) => *cancelling,
            _ => 0,
        }
    }

    /// The earliest deadline of the scopes visible from `key` (up to the first shield).
    /// If the code at `key` is cancelled, the time left is zero: the result is then no
    /// later than the instant the cancellation of a visible node took effect (Trio
    /// returns `-inf` there).
    pub(crate) fn effective_deadline(&self, key: NodeKey) -> Option<Instant> {
        let cancelled = self.is_cancelled(key);
        let mut k = key;
        let mut best: Option<Instant> = None;
        let mut earliest = |d: Instant| best = Some(best.map_or(d, |b: Instant| b.min(d)));
        while let Some(n) = self.node(k) {
            match &n.kind {
                Kind::Scope(s) => {
                    if let Some(d) = s.deadline_at() {
                        earliest(d);
                    }
                    if cancelled && n.own() {
                        if let Some(at) = s.cancelled_at.get() {
                            earliest(at);
                        }
                    }
                    if s.shield.get() {
                        break;
                    }
                }
                Kind::Root { since, .. } => {
                    if let (true, Some(at)) = (cancelled, since) {
                        earliest(*at);
                    }
                }
            }
            k = n.parent;
        }
        best
    }

    // ---- reading the tree for the task dump ------------------------------------

    /// What the task dump reads of one node (`None` for a stale key). Children and
    /// registrations come oldest first.
    pub(crate) fn view(&self, key: NodeKey) -> Option<NodeView> {
        let n = self.node(key)?;
        let mut children = Vec::new();
        let mut c = n.first_child;
        while c != NIL {
            children.push(c);
            c = self.n(c).next;
        }
        children.reverse();
        let mut waits = Vec::new();
        let mut w = n.first_waiter;
        while w != NIL {
            let waiter = &self.waiters[w as usize];
            waits.push((waiter.on, waiter.target.is_none()));
            w = waiter.next;
        }
        match &n.inline {
            Inline::Armed { on, .. } => waits.push((*on, false)),
            Inline::Fired { on, .. } => waits.push((*on, true)),
            Inline::Free => {}
        }
        waits.reverse();
        let mut tasks: Vec<TaskId> = self.linked_tasks(n.first_task).collect();
        tasks.reverse();
        let (scope, cancelling) = match &n.kind {
            Kind::Root { cancelling, .. } => (None, *cancelling),
            Kind::Scope(s) => (Some(s.clone()), 0),
        };
        Some(NodeView {
            parent: n.parent,
            scope,
            cancelling,
            effective: n.effective,
            children,
            waits,
            tasks,
        })
    }

    // ---- registrations of blocked operations (R13) ------------------------------

    /// Registers `target` as an operation waiting at `node`, or updates the
    /// registration `key` (moving it if the operation now waits at another node).
    /// Returns the registration and a replaced target for the caller to drop after its
    /// borrow. `on` says what the operation waits on (read only by the task dump).
    pub(crate) fn arm(
        &mut self,
        key: Option<WaiterKey>,
        node: NodeKey,
        target: WakeBy<'_>,
        on: WaitingOn,
    ) -> (WaiterKey, Option<Target>) {
        let mut replaced = None;
        if let Some(key) = key {
            if key.seq & INLINE != 0 {
                if let Some(n) = self.inline_node_mut(key) {
                    if key.slot == node {
                        let old = match &mut n.inline {
                            Inline::Armed {
                                target: t, on: o, ..
                            } if t.same(target) => {
                                *o = on;
                                None
                            }
                            slot => std::mem::replace(
                                slot,
                                Inline::Armed {
                                    seq: key.seq & !INLINE,
                                    target: target.to_target(),
                                    on,
                                },
                            )
                            .take(),
                        };
                        return (key, old);
                    }
                    // Moved to another node: free this slot, register afresh below.
                    replaced = n.inline.take();
                    self.inline_count -= 1;
                }
            } else if let Some(w) = self.waiters.get_mut(key.slot as usize) {
                if w.seq == key.seq {
                    w.on = on;
                    let old = match &w.target {
                        Some(old) if old.same(target) => None,
                        _ => w.target.replace(target.to_target()),
                    };
                    if w.node != node {
                        unlink(&mut self.waiters, &mut self.nodes, key.slot);
                        push_front(&mut self.waiters, &mut self.nodes, key.slot, node);
                    }
                    return (key, old);
                }
            }
        }
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Some(n) = self.nodes.get_mut(node as usize) {
            if matches!(n.inline, Inline::Free) {
                n.inline = Inline::Armed {
                    seq,
                    target: target.to_target(),
                    on,
                };
                self.inline_count += 1;
                let key = WaiterKey {
                    slot: node,
                    seq: seq | INLINE,
                };
                return (key, replaced);
            }
        }
        let slot = key_of(self.waiters.insert(Waiter {
            node: NO_NODE,
            prev: NIL,
            next: NIL,
            seq,
            target: Some(target.to_target()),
            on,
        }));
        push_front(&mut self.waiters, &mut self.nodes, slot, node);
        (WaiterKey { slot, seq }, replaced)
    }

    /// The node holding the inline registration `key`, if it still does.
    fn inline_node_mut(&mut self, key: WaiterKey) -> Option<&mut Node> {
        self.nodes
            .get_mut(key.slot as usize)
            .filter(|n| n.inline.seq() == Some(key.seq & !INLINE))
    }

    /// Removes a registration; returns its target (if not fired) to drop after the
    /// borrow. A stale key does nothing.
    pub(crate) fn disarm(&mut self, key: WaiterKey) -> Option<Target> {
        if key.seq & INLINE != 0 {
            let old = self.inline_node_mut(key)?.inline.take();
            self.inline_count -= 1;
            return old;
        }
        match self.waiters.get(key.slot as usize) {
            Some(w) if w.seq == key.seq => {
                unlink(&mut self.waiters, &mut self.nodes, key.slot);
                self.waiters.remove(key.slot as usize).target
            }
            _ => None,
        }
    }

    /// Whether the operation registered as `key` waits at a node that is cancelled
    /// now (a stale or orphaned registration is not).
    pub(crate) fn waiter_cancelled(&self, key: WaiterKey) -> bool {
        if key.seq & INLINE != 0 {
            return self
                .nodes
                .get(key.slot as usize)
                .is_some_and(|n| n.inline.seq() == Some(key.seq & !INLINE) && n.effective);
        }
        match self.waiters.get(key.slot as usize) {
            Some(w) if w.seq == key.seq => self.is_cancelled(w.node),
            _ => false,
        }
    }

    // ---- task links -------------------------------------------------------------

    /// Links `task`, which has no root node, at `node` (see [`TaskLink`]); returns the
    /// link's key. Nobody is woken (as for a new root: the task finds out at its next
    /// checkpoint).
    pub(crate) fn link_new_task(&mut self, node: NodeKey, task: TaskId) -> u32 {
        let key = key_of(self.links.insert(TaskLink {
            node: NO_NODE,
            prev: NIL,
            next: NIL,
            task,
        }));
        push_front(&mut self.links, &mut self.nodes, key, node);
        key
    }

    /// Removes a task link (its task ended, or got a root node under the link's node,
    /// which this returns).
    pub(crate) fn remove_task_link(&mut self, key: u32) -> NodeKey {
        let node = self.links[key as usize].node;
        unlink(&mut self.links, &mut self.nodes, key);
        self.links.remove(key as usize);
        node
    }

    /// The node a task link is at (`NO_NODE` if it is gone).
    pub(crate) fn task_link_node(&self, key: u32) -> NodeKey {
        self.links.get(key as usize).map_or(NO_NODE, |l| l.node)
    }

    /// The node a task's code answers to: `node` (its current node, or its root), else
    /// the node of its task `link`, else `NO_NODE`.
    pub(crate) fn node_or_link(&self, node: NodeKey, link: u32) -> NodeKey {
        if node != NO_NODE || link == NO_LINK {
            node
        } else {
            self.task_link_node(link)
        }
    }

    /// The tasks of a node's list of task links, from its head `first`: newest
    /// first, the list's order.
    fn linked_tasks(&self, first: u32) -> impl Iterator<Item = TaskId> + '_ {
        std::iter::successors((first != NIL).then_some(first), |&l| {
            let next = self.links[l as usize].next;
            (next != NIL).then_some(next)
        })
        .map(|l| self.links[l as usize].task)
    }

    /// Live task links.
    pub(crate) fn task_link_count(&self) -> usize {
        self.links.len()
    }
}

/// An entry of one of a node's lists (its waiters, its task links): the node it is at
/// (`NO_NODE`: none), its neighbours (`NIL`: none), and which head of a node starts
/// its kind of list.
trait Listed {
    fn place(&mut self) -> (&mut NodeKey, &mut u32, &mut u32);
    fn head(n: &mut Node) -> &mut u32;
}

impl Listed for Waiter {
    fn place(&mut self) -> (&mut NodeKey, &mut u32, &mut u32) {
        (&mut self.node, &mut self.prev, &mut self.next)
    }
    fn head(n: &mut Node) -> &mut u32 {
        &mut n.first_waiter
    }
}

impl Listed for TaskLink {
    fn place(&mut self) -> (&mut NodeKey, &mut u32, &mut u32) {
        (&mut self.node, &mut self.prev, &mut self.next)
    }
    fn head(n: &mut Node) -> &mut u32 {
        &mut n.first_task
    }
}

/// Puts entry `key` of `entries` first in its list at `node` (or at no node, if `node`
/// is gone).
fn push_front<T: Listed>(entries: &mut Slab<T>, nodes: &mut Slab<Node>, key: u32, node: NodeKey) {
    let Some(n) = nodes.get_mut(node as usize) else {
        *entries[key as usize].place().0 = NO_NODE;
        return;
    };
    let old = std::mem::replace(T::head(n), key);
    if old != NIL {
        *entries[old as usize].place().1 = key;
    }
    let (at, prev, next) = entries[key as usize].place();
    (*at, *prev, *next) = (node, NIL, old);
}

/// Takes entry `key` of `entries` out of its node's list.
fn unlink<T: Listed>(entries: &mut Slab<T>, nodes: &mut Slab<Node>, key: u32) {
    let (node, prev, next) = {
        let (at, prev, next) = entries[key as usize].place();
        let out = (*at, *prev, *next);
        (*at, *prev, *next) = (NO_NODE, NIL, NIL);
        out
    };
    if node == NO_NODE {
        return;
    }
    if prev != NIL {
        *entries[prev as usize].place().2 = next;
    } else {
        *T::head(&mut nodes[node as usize]) = next;
    }
    if next != NIL {
        *entries[next as usize].place().1 = prev;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    /// A waker that counts its wakes.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    fn counter() -> (Arc<Counter>, Waker) {
        let c = Arc::new(Counter(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }
    fn count(c: &Counter) -> usize {
        c.0.load(Ordering::SeqCst)
    }

    fn no_tasks(t: Target) {
        match t {
            Target::Waker(w) => w.wake(),
            Target::Task(_) | Target::TopWait(_) => {
                panic!("these tests register wakers, not tasks")
            }
        }
    }

    fn scope(t: &mut CancelTree, parent: NodeKey) -> (Rc<ScopeState>, NodeKey) {
        let s = Rc::new(ScopeState::default());
        let (k, _) = t.enter_scope(parent, &s, Weak::new(), Instant::now());
        (s, k)
    }

    #[test]
    fn cancel_propagates_down_and_wakes_the_waiters_below() {
        let mut t = CancelTree::default();
        let host = t.insert_root(NO_NODE, None);
        let (_, group) = scope(&mut t, host);
        let c1 = t.insert_root(group, None);
        let c2 = t.insert_root(group, None);
        let (_, inner) = scope(&mut t, c2);
        let (w1, k1) = counter();
        let (w2, k2) = counter();
        let (wh, kh) = counter();
        t.arm(None, c1, WakeBy::Waker(&k1), WaitingOn::Unknown);
        t.arm(None, inner, WakeBy::Waker(&k2), WaitingOn::Unknown);
        t.arm(None, host, WakeBy::Waker(&kh), WaitingOn::Unknown);
        t.cancel_scope(group, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert_eq!((count(&w1), count(&w2), count(&wh)), (1, 1, 0));
        assert!(t.is_cancelled(c1) && t.is_cancelled(inner) && !t.is_cancelled(host));
        assert_eq!(
            t.cancelled_at(inner).map(|c| c.reason),
            Some(CancelReason::Explicit(None))
        );
        // A second cancel changes nothing and wakes nobody.
        t.cancel_scope(group, CancelReason::Deadline, Instant::now())
            .run(no_tasks);
        assert_eq!((count(&w1), count(&w2)), (1, 1));
    }

    #[test]
    fn shield_hides_and_unhides_parent_cancellation() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (_, o) = scope(&mut t, root);
        let (shielded, s) = scope(&mut t, o);
        t.set_shield(s, true).run(no_tasks);
        assert!(shielded.shield());
        let (wo, ko) = counter();
        let (ws, ks) = counter();
        t.arm(None, o, WakeBy::Waker(&ko), WaitingOn::Unknown);
        let (key_s, _) = t.arm(None, s, WakeBy::Waker(&ks), WaitingOn::Unknown);
        t.cancel_scope(o, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert_eq!(
            (count(&wo), count(&ws)),
            (1, 0),
            "the shielded wait sleeps on"
        );
        assert!(!t.is_cancelled(s) && !t.waiter_cancelled(key_s));
        t.set_shield(s, false).run(no_tasks);
        assert_eq!(count(&ws), 1, "unshielding lets the outer cancel through");
        assert!(t.waiter_cancelled(key_s));
        assert!(t.cancelled_at(s).is_some());
    }

    #[test]
    fn absorption_is_decided_at_exit() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (outer, o) = scope(&mut t, root);
        let (inner, i) = scope(&mut t, o);
        t.cancel_scope(i, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert!(t.absorbs(i), "own cancel, nothing outside");
        t.cancel_scope(o, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert!(
            !t.absorbs(i),
            "the outer cancel is visible: it goes on outward"
        );
        t.set_shield(i, true).run(no_tasks);
        assert!(t.absorbs(i), "a shield hides the outer cancel again");
        let (absorbed, _, _) = t.exit_scope(i, true);
        assert!(absorbed && inner.cancelled_caught());
        assert_eq!(inner.phase(), Phase::Exited);
        let (absorbed, _, _) = t.exit_scope(o, false);
        assert!(
            !absorbed && !outer.cancelled_caught(),
            "nothing left the body"
        );
    }

    #[test]
    fn a_scope_only_cancelled_through_its_parent_never_absorbs() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (_, o) = scope(&mut t, root);
        let (_, i) = scope(&mut t, o);
        t.cancel_scope(o, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert!(t.is_cancelled(i) && !t.absorbs(i));
        t.set_shield(i, true).run(no_tasks);
        assert!(!t.is_cancelled(i) && !t.absorbs(i), "Trio #1175");
    }

    #[test]
    fn root_cancel_count_and_removal() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (w, k) = counter();
        t.arm(None, root, WakeBy::Waker(&k), WaitingOn::Unknown);
        let (n, wakes) = t.add_cancelling(root, 1, Instant::now());
        wakes.run(no_tasks);
        assert_eq!((n, count(&w)), (1, 1));
        let (n, wakes) = t.add_cancelling(root, 1, Instant::now());
        wakes.run(no_tasks);
        assert_eq!((n, count(&w)), (2, 1), "the second cancel changes nothing");
        assert!(t.absorbs(root) && t.any_root_cancelled());
        assert_eq!(t.add_cancelling(root, -1, Instant::now()).0, 1);
        assert!(t.is_cancelled(root));
        assert_eq!(t.add_cancelling(root, -1, Instant::now()).0, 0);
        assert!(!t.is_cancelled(root) && !t.any_root_cancelled());
        assert_eq!(t.add_cancelling(root, -1, Instant::now()).0, 0);
        assert!(
            !t.any_root_cancelled(),
            "saturating at zero does not count twice"
        );
        // A root removed while cancelled is no longer counted.
        let other = t.insert_root(NO_NODE, None);
        let _ = t.add_cancelling(other, 3, Instant::now());
        assert!(t.any_root_cancelled());
        t.remove(other).0.run(no_tasks);
        assert!(!t.any_root_cancelled());
        let (_, child) = scope(&mut t, root);
        t.remove(child).0.run(no_tasks);
        t.remove(root).0.run(no_tasks);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn removing_a_node_with_children_reparents_them() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (_, a) = scope(&mut t, root);
        let (_, b) = scope(&mut t, a);
        t.cancel_scope(a, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        assert!(t.is_cancelled(b));
        t.remove(a).0.run(no_tasks);
        assert_eq!(t.n(b).parent, root);
        assert!(!t.is_cancelled(b));
    }

    /// Tasks linked at a node (group children without a root) are scheduled when the
    /// node becomes cancelled: after the node's own registrations, in the order they
    /// were linked. A removed link is not; links of a removed node move to its parent.
    #[test]
    fn task_links_are_woken_in_order_and_move_up_with_their_node() {
        let rt = crate::runtime::core::RuntimeId::next();
        let task = |n: u64| TaskId::new(rt, n as usize, n);
        let mut t = CancelTree::default();
        let host = t.insert_root(NO_NODE, None);
        let (_, outer) = scope(&mut t, host);
        let (_, group) = scope(&mut t, outer);
        let (w, k) = counter();
        let (_key, _) = t.arm(None, group, WakeBy::Waker(&k), WaitingOn::Unknown);
        let links: Vec<u32> = (1..=4).map(|n| t.link_new_task(group, task(n))).collect();
        assert_eq!(t.remove_task_link(links[1]), group);
        assert_eq!(t.task_link_count(), 3);
        assert_eq!(t.view(group).unwrap().tasks, [task(1), task(3), task(4)]);
        // The group goes (after misuse): its links move to `outer`.
        t.remove(group).0.run(no_tasks);
        assert_eq!(t.task_link_node(links[0]), outer);
        assert_eq!(t.view(outer).unwrap().tasks, [task(1), task(3), task(4)]);
        let mut met = Vec::new();
        t.cancel_scope(outer, CancelReason::Explicit(None), Instant::now())
            .run(|target| match target {
                Target::TopWait(id) => met.push(id),
                other => no_tasks(other),
            });
        assert_eq!(met, [task(1), task(3), task(4)]);
        assert_eq!(count(&w), 0, "its registration went with the group's node");
        // A node that is cancelled already wakes a link moved to it at once.
        let (_, inner) = scope(&mut t, outer);
        let l = t.link_new_task(inner, task(5));
        let mut met = Vec::new();
        t.remove(inner).0.run(|target| match target {
            Target::TopWait(id) => met.push(id),
            other => no_tasks(other),
        });
        assert_eq!(met, [task(5)]);
        assert_eq!(t.task_link_node(l), outer);
        // Without a parent to move to, a link stays, at no node.
        for l in links.iter().filter(|&&l| l != links[1]).chain([&l]) {
            t.remove_task_link(*l);
        }
        let lone = t.link_new_task(host, task(6));
        t.remove(host).0.run(no_tasks);
        assert_eq!(t.task_link_node(lone), NO_NODE);
        assert_eq!(t.remove_task_link(lone), NO_NODE);
        assert_eq!(t.task_link_count(), 0);
    }

    #[test]
    fn registrations_move_update_and_go_stale() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (_, a) = scope(&mut t, root);
        let (w, k) = counter();
        let (key, old) = t.arm(None, root, WakeBy::Waker(&k), WaitingOn::Unknown);
        assert!(old.is_none());
        // Polled again inside `a`: the registration moves there (a new key; the
        // replaced waker comes back to be dropped outside the borrow).
        let (key2, old) = t.arm(Some(key), a, WakeBy::Waker(&k), WaitingOn::Unknown);
        assert!(key2 != key && old.is_some());
        assert!(t.disarm(key).is_none(), "the old key is stale now");
        let key = key2;
        // `a` is under the root: it is cancelled too, and the wait is woken once.
        let (_, wakes) = t.add_cancelling(root, 1, Instant::now());
        assert_eq!(count(&w), 0, "wakes are returned, not run");
        wakes.run(no_tasks);
        assert_eq!(count(&w), 1);
        assert!(t.waiter_cancelled(key));
        assert!(t.disarm(key).is_none(), "fired: its waker was taken");
        assert!(t.disarm(key).is_none(), "a stale key does nothing");
        let (fresh, _) = t.arm(Some(key), a, WakeBy::Waker(&k), WaitingOn::Unknown);
        assert_ne!(fresh, key, "a stale key is never revived");
        assert_eq!(t.waiter_count(), 1);
        t.remove(a).0.run(no_tasks);
        assert!(!t.waiter_cancelled(fresh), "orphaned by its node's removal");
        assert!(t.disarm(fresh).is_none(), "it went with the node");
        assert_eq!(t.waiter_count(), 0);
    }

    #[test]
    fn deadline_timers_name_their_node_by_serial() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (s, a) = scope(&mut t, root);
        s.set_deadline_field(Deadline::At(Instant::now()));
        let serial = t.serial(a).unwrap();
        t.deadline_fired(a, serial + 1).run(no_tasks);
        assert!(!s.cancel_called(), "a stale timer does nothing");
        t.deadline_fired(a, serial).run(no_tasks);
        assert_eq!(s.reason(), Some(CancelReason::Deadline));
    }

    #[test]
    fn several_waits_at_one_node_inline_and_listed() {
        let mut t = CancelTree::default();
        let root = t.insert_root(NO_NODE, None);
        let (_, a) = scope(&mut t, root);
        let counters: Vec<_> = (0..3).map(|_| counter()).collect();
        let keys: Vec<_> = counters
            .iter()
            .map(|(_, w)| t.arm(None, a, WakeBy::Waker(w), WaitingOn::Unknown).0)
            .collect();
        assert_eq!(t.waiter_count(), 3);
        assert_eq!(t.waiters.len(), 2, "the first is inline, the others listed");
        // Move the inline one to the root and back: it frees and takes slots.
        let (moved, old) = t.arm(
            Some(keys[0]),
            root,
            WakeBy::Waker(&counters[0].1),
            WaitingOn::Unknown,
        );
        assert!(
            old.is_some(),
            "the replaced registration's waker comes back"
        );
        assert_eq!(t.waiter_count(), 3);
        t.cancel_scope(a, CancelReason::Explicit(None), Instant::now())
            .run(no_tasks);
        let woken: Vec<_> = counters.iter().map(|(c, _)| count(c)).collect();
        assert_eq!(woken, [0, 1, 1], "only the waits at `a`");
        assert!(t.waiter_cancelled(keys[1]) && t.waiter_cancelled(keys[2]));
        assert!(!t.waiter_cancelled(moved));
        let (_, wakes) = t.add_cancelling(root, 1, Instant::now());
        wakes.run(no_tasks);
        assert_eq!(count(&counters[0].0), 1);
        for k in [moved, keys[1], keys[2]] {
            assert!(t.disarm(k).is_none(), "fired: no waker left");
        }
        assert_eq!(t.waiter_count(), 0);
        // An inline registration orphaned by its node's removal stays harmless.
        let (_, b) = scope(&mut t, root);
        let (k, _) = t.arm(None, b, WakeBy::Waker(&counters[0].1), WaitingOn::Unknown);
        t.remove(b).0.run(no_tasks);
        assert_eq!(t.waiter_count(), 0);
        assert!(!t.waiter_cancelled(k) && t.disarm(k).is_none());
    }
}

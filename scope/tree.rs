//! The cancel-status tree: the plumbing behind [`CancelScope`](crate::CancelScope).
//!
//! Users hold `CancelScope`s and task groups; the scheduler holds this tree. It mirrors
//! the nesting of everything that can be cancelled:
//!
//! * a **root node** per task (`NodeKind::Root`), carrying the task's `cancelling`
//!   count. A top-level task's root has no parent; a task-group child's root hangs
//!   under its group's node, so the group's cancellation reaches it.
//! * a **scope node** (`NodeKind::Scope`) per entered cancel scope or task group,
//!   under the node that was innermost for the task when the scope was entered.
//!
//! # Invariants
//!
//! * `effective` of every node equals `own || (!shield && parent.effective)`, where
//!   `own` is "this scope was cancelled or reached its deadline" (for a root: its
//!   `cancelling` count is above zero). Every change to `own`, `shield` or the parent
//!   link is followed by [`ScopeTree::recompute`], which walks down from the changed
//!   node and stops wherever `effective` did not change: cancelling a group of N
//!   blocked children is one walk of N + 1 nodes.
//! * A task is woken when a node it may be blocked in becomes effectively cancelled:
//!   a node with no children of its own task (`same_task_children == 0`, "a leaf of its
//!   task"), or a node where a checkpoint ran directly (`checkpointed`, set by
//!   `Core::check_cancelled`; needed when one task waits in a scope and, through
//!   `join!`-style combinators, also in a child scope of it). A task blocked only
//!   under a shield is not woken.
//! * Nodes are identified across reuse of slab keys by `serial`; a `Cancelled` value
//!   names the serial of the scope it is addressed to.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use slab::Slab;

use super::{CancelReason, ScopeInner};
use crate::runtime::task::TaskId;

pub(crate) type NodeKey = usize;

pub(crate) enum NodeKind {
    /// A task's root node: cancelled while `cancelling > 0`.
    Root { cancelling: u32 },
    /// An entered cancel scope (or task group); its flags live in the `ScopeInner`.
    Scope(Rc<ScopeInner>),
}

pub(crate) struct Node {
    pub(crate) parent: Option<NodeKey>,
    first_child: Option<NodeKey>,
    prev: Option<NodeKey>,
    next: Option<NodeKey>,
    /// The task whose code runs directly inside this node.
    pub(crate) owner: TaskId,
    pub(crate) serial: u64,
    pub(crate) kind: NodeKind,
    effective: bool,
    same_task_children: u32,
    /// A checkpoint ran with this node current (sticky: at worst a spurious wake).
    checkpointed: Cell<bool>,
}

impl Node {
    fn own(&self) -> bool {
        match &self.kind {
            NodeKind::Root { cancelling } => *cancelling > 0,
            NodeKind::Scope(s) => s.cancel_called.get(),
        }
    }

    fn shield(&self) -> bool {
        match &self.kind {
            NodeKind::Root { .. } => false,
            NodeKind::Scope(s) => s.shield.get(),
        }
    }

    fn reason(&self) -> CancelReason {
        match &self.kind {
            NodeKind::Root { .. } => CancelReason::TaskCancelled,
            NodeKind::Scope(s) => s
                .reason
                .borrow()
                .clone()
                .unwrap_or(CancelReason::Explicit(None)),
        }
    }
}

/// Where a checkpoint's `Cancelled` is addressed: the outermost cancelled scope that
/// can see the current code, and why it was cancelled.
pub(crate) struct Target {
    pub(crate) serial: u64,
    pub(crate) reason: CancelReason,
}

#[derive(Default)]
pub(crate) struct ScopeTree {
    nodes: Slab<Node>,
    next_serial: u64,
}

impl ScopeTree {
    pub(crate) fn node(&self, key: NodeKey) -> &Node {
        &self.nodes[key]
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Adds a node under `parent`. Its `effective` state is computed; nobody is woken
    /// (a task entering a cancelled scope is running, and finds out at its next
    /// checkpoint).
    pub(crate) fn insert(
        &mut self,
        parent: Option<NodeKey>,
        owner: TaskId,
        kind: NodeKind,
    ) -> NodeKey {
        self.next_serial += 1;
        let key = self.nodes.insert(Node {
            parent: None,
            first_child: None,
            prev: None,
            next: None,
            owner,
            serial: self.next_serial,
            kind,
            effective: false,
            same_task_children: 0,
            checkpointed: Cell::new(false),
        });
        self.link(key, parent);
        let eff = self.compute(key);
        self.nodes[key].effective = eff;
        key
    }

    fn compute(&self, key: NodeKey) -> bool {
        let n = &self.nodes[key];
        n.own() || (!n.shield() && n.parent.is_some_and(|p| self.nodes[p].effective))
    }

    fn link(&mut self, key: NodeKey, parent: Option<NodeKey>) {
        self.nodes[key].parent = parent;
        let Some(p) = parent else { return };
        let old_first = self.nodes[p].first_child;
        self.nodes[key].next = old_first;
        self.nodes[key].prev = None;
        if let Some(f) = old_first {
            self.nodes[f].prev = Some(key);
        }
        self.nodes[p].first_child = Some(key);
        if self.nodes[p].owner == self.nodes[key].owner {
            self.nodes[p].same_task_children += 1;
        }
    }

    fn unlink(&mut self, key: NodeKey) {
        let (parent, prev, next) = {
            let n = &self.nodes[key];
            (n.parent, n.prev, n.next)
        };
        let Some(p) = parent else { return };
        match prev {
            Some(pr) => self.nodes[pr].next = next,
            None => self.nodes[p].first_child = next,
        }
        if let Some(nx) = next {
            self.nodes[nx].prev = prev;
        }
        if self.nodes[p].owner == self.nodes[key].owner {
            self.nodes[p].same_task_children -= 1;
        }
        let n = &mut self.nodes[key];
        n.parent = None;
        n.prev = None;
        n.next = None;
    }

    /// Removes a node. Children it still has (only possible after misuse, e.g. a scope
    /// future leaked with `mem::forget`) are moved to its parent so the tree stays
    /// whole. Returns the tasks to wake.
    pub(crate) fn remove(&mut self, key: NodeKey) -> Vec<TaskId> {
        let parent = self.nodes[key].parent;
        let mut wake = Vec::new();
        while let Some(child) = self.nodes[key].first_child {
            self.unlink(child);
            self.link(child, parent);
            self.recompute(child, &mut wake);
        }
        self.unlink(key);
        self.nodes.remove(key);
        wake
    }

    /// Moves `key` under `new_parent` (the `start()` handshake). Returns tasks to wake.
    pub(crate) fn reparent(&mut self, key: NodeKey, new_parent: Option<NodeKey>) -> Vec<TaskId> {
        self.unlink(key);
        self.link(key, new_parent);
        let mut wake = Vec::new();
        self.recompute(key, &mut wake);
        wake
    }

    /// Re-derives `effective` from `key` downwards after its own flags or its parent
    /// changed, pushing onto `wake` every task that is blocked in a node that became
    /// effectively cancelled. One walk; it descends only where something changed.
    pub(crate) fn recompute(&mut self, key: NodeKey, wake: &mut Vec<TaskId>) {
        let mut stack = vec![key];
        while let Some(k) = stack.pop() {
            let eff = self.compute(k);
            let n = &mut self.nodes[k];
            if n.effective == eff {
                continue;
            }
            n.effective = eff;
            if eff && (n.same_task_children == 0 || n.checkpointed.get()) {
                wake.push(n.owner);
            }
            let mut child = n.first_child;
            while let Some(c) = child {
                stack.push(c);
                child = self.nodes[c].next;
            }
        }
    }

    /// Records that a checkpoint ran with `key` current (see the wake rule).
    pub(crate) fn note_checkpoint(&self, key: NodeKey) {
        if let Some(n) = self.nodes.get(key) {
            n.checkpointed.set(true);
        }
    }

    pub(crate) fn is_effectively_cancelled(&self, key: NodeKey) -> bool {
        self.nodes.get(key).is_some_and(|n| n.effective)
    }

    /// The outermost cancelled node visible from `key` (see [`Target`]), or `None` if
    /// `key` is not effectively cancelled.
    pub(crate) fn checkpoint_target(&self, key: NodeKey) -> Option<Target> {
        let mut k = key;
        let mut found = None;
        loop {
            let n = self.nodes.get(k)?;
            if !n.effective {
                break;
            }
            if n.own() {
                found = Some(k);
            }
            if n.shield() {
                break;
            }
            match n.parent {
                Some(p) => k = p,
                None => break,
            }
        }
        let n = &self.nodes[found?];
        Some(Target {
            serial: n.serial,
            reason: n.reason(),
        })
    }

    /// The earliest deadline of the scopes visible from `key` (up to the first shield).
    pub(crate) fn effective_deadline(&self, key: NodeKey) -> Option<Instant> {
        let mut k = Some(key);
        let mut best: Option<Instant> = None;
        while let Some(cur) = k {
            let Some(n) = self.nodes.get(cur) else { break };
            if let NodeKind::Scope(s) = &n.kind {
                if let Some(d) = s.deadline_at() {
                    best = Some(best.map_or(d, |b| b.min(d)));
                }
                if s.shield.get() {
                    break;
                }
            }
            k = n.parent;
        }
        best
    }

    /// Adds `delta` to a root node's `cancelling` count (saturating at zero) and
    /// returns the new count.
    pub(crate) fn add_cancelling(
        &mut self,
        root: NodeKey,
        delta: i64,
        wake: &mut Vec<TaskId>,
    ) -> u32 {
        let count = match &mut self.nodes[root].kind {
            NodeKind::Root { cancelling } => {
                *cancelling = (*cancelling as i64 + delta).clamp(0, u32::MAX as i64) as u32;
                *cancelling
            }
            NodeKind::Scope(_) => unreachable!("task cancel counts live on root nodes"),
        };
        self.recompute(root, wake);
        count
    }

    pub(crate) fn cancelling(&self, root: NodeKey) -> u32 {
        match &self.nodes[root].kind {
            NodeKind::Root { cancelling } => *cancelling,
            NodeKind::Scope(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tid(n: usize) -> TaskId {
        TaskId {
            key: n,
            seq: n as u64,
        }
    }

    fn scope_kind() -> (Rc<ScopeInner>, NodeKind) {
        let s = Rc::new(ScopeInner::default());
        (s.clone(), NodeKind::Scope(s))
    }

    #[test]
    fn cancel_propagates_down_and_wakes_leaf_owners_only() {
        let mut t = ScopeTree::default();
        let host = t.insert(None, tid(0), NodeKind::Root { cancelling: 0 });
        let (g, gk) = scope_kind();
        let group = t.insert(Some(host), tid(0), gk);
        let c1 = t.insert(Some(group), tid(1), NodeKind::Root { cancelling: 0 });
        let c2 = t.insert(Some(group), tid(2), NodeKind::Root { cancelling: 0 });
        let (_, ik) = scope_kind();
        let inner = t.insert(Some(c2), tid(2), ik);
        g.cancel_called.set(true);
        let mut wake = Vec::new();
        t.recompute(group, &mut wake);
        wake.sort_by_key(|t| t.key);
        // The host is blocked in `group` (a leaf of task 0), child 1 at its root,
        // child 2 inside `inner` (its root is not a leaf of task 2).
        assert_eq!(wake, vec![tid(0), tid(1), tid(2)]);
        assert!(t.is_effectively_cancelled(c1));
        assert!(t.is_effectively_cancelled(inner));
        assert!(!t.is_effectively_cancelled(host));
        let target = t.checkpoint_target(inner).unwrap();
        assert_eq!(target.serial, t.node(group).serial);
    }

    #[test]
    fn shield_hides_and_unhides_parent_cancellation() {
        let mut t = ScopeTree::default();
        let root = t.insert(None, tid(0), NodeKind::Root { cancelling: 0 });
        let (outer, ok) = scope_kind();
        let o = t.insert(Some(root), tid(0), ok);
        let (shielded, sk) = scope_kind();
        shielded.shield.set(true);
        let s = t.insert(Some(o), tid(0), sk);
        outer.cancel_called.set(true);
        let mut wake = Vec::new();
        t.recompute(o, &mut wake);
        assert!(wake.is_empty(), "the task is blocked under the shield");
        assert!(!t.is_effectively_cancelled(s));
        shielded.shield.set(false);
        t.recompute(s, &mut wake);
        assert_eq!(wake, vec![tid(0)]);
        assert_eq!(t.checkpoint_target(s).unwrap().serial, t.node(o).serial);
    }

    #[test]
    fn a_task_waiting_beside_a_shielded_child_scope_is_woken() {
        let mut t = ScopeTree::default();
        let root = t.insert(None, tid(0), NodeKind::Root { cancelling: 0 });
        let (outer, ok) = scope_kind();
        let o = t.insert(Some(root), tid(0), ok);
        let (shielded, sk) = scope_kind();
        shielded.shield.set(true);
        t.insert(Some(o), tid(0), sk);
        outer.cancel_called.set(true);
        let mut wake = Vec::new();
        t.recompute(o, &mut wake);
        assert!(wake.is_empty(), "blocked only under the shield: no wake");
        outer.cancel_called.set(false);
        t.recompute(o, &mut wake);
        t.note_checkpoint(o); // a join!-ed sleep waits directly in `o`
        outer.cancel_called.set(true);
        t.recompute(o, &mut wake);
        assert_eq!(wake, vec![tid(0)]);
    }

    #[test]
    fn root_cancel_count_and_removal() {
        let mut t = ScopeTree::default();
        let root = t.insert(None, tid(0), NodeKind::Root { cancelling: 0 });
        let mut wake = Vec::new();
        assert_eq!(t.add_cancelling(root, 1, &mut wake), 1);
        assert_eq!(t.add_cancelling(root, 1, &mut wake), 2);
        assert_eq!(
            wake,
            vec![tid(0)],
            "woken once: the second cancel changes nothing"
        );
        assert_eq!(t.add_cancelling(root, -1, &mut wake), 1);
        assert!(t.is_effectively_cancelled(root));
        assert_eq!(t.add_cancelling(root, -1, &mut wake), 0);
        assert!(!t.is_effectively_cancelled(root));
        assert_eq!(t.add_cancelling(root, -1, &mut wake), 0);
        let (_, k) = scope_kind();
        let child = t.insert(Some(root), tid(0), k);
        t.remove(child);
        t.remove(root);
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn removing_a_node_with_children_reparents_them() {
        let mut t = ScopeTree::default();
        let root = t.insert(None, tid(0), NodeKind::Root { cancelling: 0 });
        let (a, ak) = scope_kind();
        let a_key = t.insert(Some(root), tid(0), ak);
        let (_, bk) = scope_kind();
        let b_key = t.insert(Some(a_key), tid(0), bk);
        a.cancel_called.set(true);
        let mut wake = Vec::new();
        t.recompute(a_key, &mut wake);
        assert!(t.is_effectively_cancelled(b_key));
        t.remove(a_key);
        assert_eq!(t.node(b_key).parent, Some(root));
        assert!(!t.is_effectively_cancelled(b_key));
    }
}

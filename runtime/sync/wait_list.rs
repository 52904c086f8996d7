//! The FIFO queue of waiters shared by every primitive of this module.
//!
//! A [`WaitList`] is a doubly linked list threaded through a `Slab`: pushing, popping
//! the front and removing any waiter are O(1), and the nodes' memory is reused.
//!
//! # Life of a node
//!
//! 1. A waiting future **pushes** a node (its state + its waker) and keeps the key.
//! 2. The primitive **serves** the waiter: it pops the node off the front (the node is
//!    now *unlinked* but still allocated), writes the hand-off into `state` (a message,
//!    "lock granted", a permit count...) and wakes the waker.
//! 3. The future, on its next poll or in its `Drop`, **removes** the node and reads the
//!    state. Only the future that pushed a node ever frees it, so its key can never be
//!    reused under it.
//!
//! A node that is still linked has not been served; a cancelled future removes it and
//! has taken nothing (rule R1). A future that finds its node served returns the
//! hand-off even if it is cancelled meanwhile (rule R10); a future dropped with a
//! served node passes the hand-off on.
//!
//! # Cancelled waiters are skipped
//!
//! A cancel does not remove a waiter from the queue by itself: it wakes the waiter's
//! task, which removes its node when it runs. Until then the node is still queued, so
//! each node records its [`Site`] — the runtime and scope-tree node it waits in — and
//! the primitives serve with [`WaitList::pop_front_ready`], which skips (leaves queued)
//! every waiter that is already effectively cancelled. So the order of events on the
//! runtime's thread is the order that counts, as in Trio (where a cancel takes the task
//! off the wait queue at once): cancel-then-send gives the message to the next
//! waiter; send-then-cancel hands it to the waiter, which keeps it (R10). A hand-off
//! made from another thread cannot see the runtime's scope tree and serves the first
//! waiter; the two events are concurrent there, and either order is a valid one.

use std::cell::Ref;
use std::rc::Rc;
use std::task::Waker;

use slab::Slab;

use crate::runtime::core::try_with_core;
use crate::scope::Cancelled;
use crate::scope::tree::{NodeKey, ScopeTree};

/// Where a waiter waits: its runtime (by address, `0` outside any task) and the
/// scope-tree node that was innermost for it at its last poll.
///
/// The node stays valid while the waiter is queued: a scope exits only after the
/// future polled inside it is gone, and a dropped wait leaves the queue. (A future
/// leaked out of its scope could name a stale node; the worst outcome is that a
/// hand-off skips it or serves it, never that anything is lost.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    core: usize,
    node: NodeKey,
}

impl Site {
    /// A waiter outside any runtime task: never cancelled.
    pub(crate) const NOWHERE: Site = Site { core: 0, node: 0 };
}

/// The checkpoint of every wait (rule R1), run at the start of each poll: fails if the
/// calling code is cancelled, and otherwise says where it waits.
pub(crate) fn checkpoint() -> Result<Site, Cancelled> {
    try_with_core(|core| {
        core.check_cancelled()?;
        if core.current_task.get().is_none() {
            return Ok(Site::NOWHERE);
        }
        Ok(Site {
            core: Rc::as_ptr(core) as usize,
            node: core.ensure_current_node(),
        })
    })
    .unwrap_or(Ok(Site::NOWHERE))
}

/// Answers "is the waiter at this site cancelled?" for the runtime of this thread.
pub(crate) struct CancelView<'a> {
    core: usize,
    tree: Option<Ref<'a, ScopeTree>>,
}

impl CancelView<'_> {
    /// Runs `f` with a view of this thread's runtime (or of none).
    pub(crate) fn with<R>(f: impl FnOnce(&CancelView<'_>) -> R) -> R {
        let mut f = Some(f);
        let r = try_with_core(|core| {
            let view = CancelView {
                core: Rc::as_ptr(core) as usize,
                // Not borrowed elsewhere while user code runs (the runtime's borrow
                // discipline); if it ever is, we serve rather than skip.
                tree: core.tree.try_borrow().ok(),
            };
            (f.take().expect("called once"))(&view)
        });
        match r {
            Some(r) => r,
            None => (f.take().expect("called once"))(&CancelView {
                core: 0,
                tree: None,
            }),
        }
    }

    /// Whether a checkpoint at `site` would fail now. Sites of other runtimes (or of
    /// no runtime) are never seen as cancelled from here.
    pub(crate) fn is_cancelled(&self, site: Site) -> bool {
        site.core != 0
            && site.core == self.core
            && self.tree.as_ref().is_some_and(|t| {
                t.is_effectively_cancelled(site.node) && t.checkpoint_target(site.node).is_some()
            })
    }
}

/// One waiter.
#[derive(Debug)]
pub(crate) struct Node<S> {
    prev: Option<usize>,
    next: Option<usize>,
    /// In the queue (not yet served, not removed).
    linked: bool,
    /// Where the waiter waits (updated at each poll).
    site: Site,
    /// Woken when the node is served or the primitive closes.
    pub(crate) waker: Option<Waker>,
    /// What the primitive hands over; its meaning is the primitive's.
    pub(crate) state: S,
}

/// A FIFO of waiters with O(1) removal from the middle. See the module doc.
#[derive(Debug)]
pub(crate) struct WaitList<S> {
    nodes: Slab<Node<S>>,
    head: Option<usize>,
    tail: Option<usize>,
}

impl<S> WaitList<S> {
    pub(crate) const fn new() -> WaitList<S> {
        WaitList {
            nodes: Slab::new(),
            head: None,
            tail: None,
        }
    }

    /// No waiter is queued (served nodes not yet removed do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends a waiter; returns its key.
    pub(crate) fn push_back(&mut self, state: S, waker: &Waker, site: Site) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: None,
            linked: true,
            site,
            waker: Some(waker.clone()),
            state,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = Some(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// The first queued waiter that is not cancelled (see the module doc).
    pub(crate) fn front_ready(&self) -> Option<usize> {
        let head = self.head?;
        CancelView::with(|view| {
            let mut cur = head;
            loop {
                let node = &self.nodes[cur];
                if !view.is_cancelled(node.site) {
                    return Some(cur);
                }
                cur = node.next?;
            }
        })
    }

    /// Unlinks the first queued waiter that is not cancelled and returns its node
    /// (still allocated, for its owner to remove).
    pub(crate) fn pop_front_ready(&mut self) -> Option<&mut Node<S>> {
        let key = self.front_ready()?;
        self.unlink(key);
        Some(&mut self.nodes[key])
    }

    /// Unlinks every queued waiter that is not cancelled, passing each to `serve`.
    pub(crate) fn drain_ready(&mut self, mut serve: impl FnMut(&mut Node<S>)) {
        let mut ready = Vec::new();
        CancelView::with(|view| {
            let mut cur = self.head;
            while let Some(k) = cur {
                let node = &self.nodes[k];
                if !view.is_cancelled(node.site) {
                    ready.push(k);
                }
                cur = node.next;
            }
        });
        for k in ready {
            self.unlink(k);
            serve(&mut self.nodes[k]);
        }
    }

    fn unlink(&mut self, key: usize) {
        let node = &mut self.nodes[key];
        if !node.linked {
            return;
        }
        node.linked = false;
        let (prev, next) = (node.prev.take(), node.next.take());
        match prev {
            Some(p) => self.nodes[p].next = next,
            None => self.head = next,
        }
        match next {
            Some(n) => self.nodes[n].prev = prev,
            None => self.tail = prev,
        }
    }

    /// Whether the node is still queued (not served).
    pub(crate) fn is_linked(&self, key: usize) -> bool {
        self.nodes[key].linked
    }

    pub(crate) fn node(&self, key: usize) -> &Node<S> {
        &self.nodes[key]
    }

    pub(crate) fn node_mut(&mut self, key: usize) -> &mut Node<S> {
        &mut self.nodes[key]
    }

    /// Unlinks (if needed) and frees a node; returns its state.
    pub(crate) fn remove(&mut self, key: usize) -> S {
        self.unlink(key);
        self.nodes.remove(key).state
    }

    /// Records the waker and site of the latest poll (cloning the waker only if it
    /// changed).
    pub(crate) fn update(&mut self, key: usize, waker: &Waker, site: Site) {
        let node = &mut self.nodes[key];
        node.site = site;
        let slot = &mut node.waker;
        match slot {
            Some(w) if w.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    /// Takes the wakers of every queued waiter, leaving them queued (used on close:
    /// the waiters look at the primitive's state when they run).
    pub(crate) fn take_all_wakers(&mut self, out: &mut WakeList) {
        let mut cur = self.head;
        while let Some(k) = cur {
            let node = &mut self.nodes[k];
            if let Some(w) = node.waker.take() {
                out.push(w);
            }
            cur = node.next;
        }
    }

    /// Number of allocated nodes (queued or served-but-not-removed).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.nodes.len()
    }
}

/// Wakers collected under a lock, woken after it is released (a waker may run code
/// that takes the same lock, e.g. an executor on another thread). No allocation for
/// the common case of one waker.
#[derive(Default)]
pub(crate) struct WakeList {
    first: Option<Waker>,
    rest: Vec<Waker>,
}

impl WakeList {
    pub(crate) fn push(&mut self, w: Waker) {
        if self.first.is_none() {
            self.first = Some(w);
        } else {
            self.rest.push(w);
        }
    }

    pub(crate) fn push_opt(&mut self, w: Option<Waker>) {
        if let Some(w) = w {
            self.push(w);
        }
    }

    /// Wakes everything collected. Call with no lock held.
    pub(crate) fn wake_all(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.rest {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(l: &WaitList<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = l.head;
        while let Some(k) = cur {
            out.push(l.nodes[k].state);
            cur = l.nodes[k].next;
        }
        out
    }

    #[test]
    fn fifo_with_removal_from_the_middle() {
        let w = Waker::noop();
        let s = Site::NOWHERE;
        let mut l = WaitList::new();
        let a = l.push_back(1, w, s);
        let b = l.push_back(2, w, s);
        let c = l.push_back(3, w, s);
        assert_eq!(keys(&l), [1, 2, 3]);
        assert_eq!(l.remove(b), 2);
        assert_eq!(keys(&l), [1, 3]);
        assert_eq!(l.front_ready(), Some(a));
        assert_eq!(l.pop_front_ready().map(|n| n.state), Some(1));
        assert!(!l.is_linked(a) && l.is_linked(c));
        assert_eq!(keys(&l), [3]);
        // a served node stays allocated until its owner removes it
        assert_eq!(l.allocated(), 2);
        assert_eq!(l.remove(a), 1);
        assert_eq!(l.remove(c), 3);
        assert!(l.is_empty());
        assert_eq!(l.allocated(), 0);
        let d = l.push_back(4, w, s);
        assert_eq!(keys(&l), [4]);
        assert_eq!(l.front_ready(), Some(d));
    }

    #[test]
    fn take_all_wakers_leaves_nodes_queued() {
        let w = Waker::noop();
        let mut l = WaitList::new();
        l.push_back(1, w, Site::NOWHERE);
        l.push_back(2, w, Site::NOWHERE);
        let mut wl = WakeList::default();
        l.take_all_wakers(&mut wl);
        assert_eq!(keys(&l), [1, 2]);
        assert!(l.nodes.iter().all(|(_, n)| n.waker.is_none()));
        wl.wake_all();
    }
}

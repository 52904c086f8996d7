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

use std::task::Waker;

use slab::Slab;

/// One waiter.
#[derive(Debug)]
pub(crate) struct Node<S> {
    prev: Option<usize>,
    next: Option<usize>,
    /// In the queue (not yet served, not removed).
    linked: bool,
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
    pub(crate) fn push_back(&mut self, state: S, waker: &Waker) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail,
            next: None,
            linked: true,
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

    /// The first queued waiter.
    pub(crate) fn front(&self) -> Option<usize> {
        self.head
    }

    /// Unlinks the first queued waiter and returns its node (still allocated).
    pub(crate) fn pop_front(&mut self) -> Option<&mut Node<S>> {
        let key = self.head?;
        self.unlink(key);
        Some(&mut self.nodes[key])
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

    /// Unlinks (if needed) and frees a node; returns its state.
    pub(crate) fn remove(&mut self, key: usize) -> S {
        self.unlink(key);
        self.nodes.remove(key).state
    }

    /// Stores the waker of the latest poll (cloning only if it changed).
    pub(crate) fn set_waker(&mut self, key: usize, waker: &Waker) {
        let slot = &mut self.nodes[key].waker;
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
        let mut l = WaitList::new();
        let a = l.push_back(1, w);
        let b = l.push_back(2, w);
        let c = l.push_back(3, w);
        assert_eq!(keys(&l), [1, 2, 3]);
        assert_eq!(l.remove(b), 2);
        assert_eq!(keys(&l), [1, 3]);
        assert_eq!(l.front(), Some(a));
        assert_eq!(l.pop_front().map(|n| n.state), Some(1));
        assert!(!l.is_linked(a) && l.is_linked(c));
        assert_eq!(keys(&l), [3]);
        // a served node stays allocated until its owner removes it
        assert_eq!(l.allocated(), 2);
        assert_eq!(l.remove(a), 1);
        assert_eq!(l.remove(c), 3);
        assert!(l.is_empty());
        assert_eq!(l.allocated(), 0);
        let d = l.push_back(4, w);
        assert_eq!(keys(&l), [4]);
        assert_eq!(l.front(), Some(d));
    }

    #[test]
    fn take_all_wakers_leaves_nodes_queued() {
        let w = Waker::noop();
        let mut l = WaitList::new();
        l.push_back(1, w);
        l.push_back(2, w);
        let mut wl = WakeList::default();
        l.take_all_wakers(&mut wl);
        assert_eq!(keys(&l), [1, 2]);
        assert!(l.nodes.iter().all(|(_, n)| n.waker.is_none()));
        wl.wake_all();
    }
}

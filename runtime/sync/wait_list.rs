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
//! # Cancelled waiters are woken, and skipped
//!
//! Each queued node owns its [`CancelWait`]: pushing or updating a node registers its
//! waker with the status tree at the node the waiter's code runs in (R13), so a cancel
//! wakes the waiting future itself, even inside a combinator. Removing the node drops
//! the registration.
//!
//! A cancel does not remove a waiter from the queue by itself: it wakes the waiter,
//! which removes its node when it runs. Until then the node is still queued, so the
//! primitives serve with [`WaitList::pop_front_ready`], which skips (leaves queued)
//! every waiter that is already cancelled ([`site_cancelled`], the status tree's answer
//! for that registration). So the order of events on the runtime's thread is the
//! order that counts, as in Trio (where a cancel takes the task off the wait queue at
//! once): cancel-then-send gives the message to the next waiter; send-then-cancel
//! hands it to the waiter, which keeps it (R10). A hand-off made from another thread
//! cannot see the runtime's status tree and serves the first waiter; the two events
//! are concurrent there, and either order is a valid one.

use std::num::NonZeroU32;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::runtime::paged_slab::PagedSlab;

use crate::runtime::cancel::{CancelWait, Cancelled, check_cancelled, site_cancelled};
use crate::runtime::core::try_with_core;
use crate::runtime::observe::{SyncKind, WaitingOn};
pub(crate) use crate::runtime::wake_list::WakeList;

/// The checkpoint of every wait (rule R1), run at the start of each poll: fails if the
/// calling code is cancelled.
pub(crate) fn checkpoint() -> Result<(), Cancelled> {
    check_cancelled()
}

/// One waiter.
#[derive(Debug)]
pub(crate) struct Node<S> {
    // A node in the queue has a neighbour or is the queue's only node (the head); a
    // served one has neither link and is not the head (see `is_linked`): no flag of
    // its own (8 bytes less per waiter, benchmark B9).
    prev: Option<Link>,
    next: Option<Link>,
    /// The waiter's registration with the status tree (updated at each poll): wakes it
    /// on cancellation, and says whether it is cancelled.
    cancel: CancelWait,
    /// Woken when the node is served or the primitive closes; [`taken`] once
    /// taken. Not an `Option`: the `Waker`'s niche is what lets the slab tell a
    /// vacant entry from a node without a tag word (48 bytes per semaphore waiter
    /// instead of 56, benchmark B9). Reached through [`take_waker`](Node::take_waker)
    /// and [`put_waker`](Node::put_waker) only.
    waker: Waker,
    /// What the primitive hands over; its meaning is the primitive's.
    pub(crate) state: S,
}

/// The vtable of [`taken`]: every function does nothing. A `static`, so it has one
/// address, which is how [`is_taken`] knows it (`Waker::noop`'s vtable is a constant
/// and may exist in several copies).
static TAKEN: RawWakerVTable = RawWakerVTable::new(
    |_| RawWaker::new(std::ptr::null(), &TAKEN),
    |_| {},
    |_| {},
    |_| {},
);

/// What a node holds once its waker was taken: a waker that does nothing.
fn taken() -> Waker {
    // SAFETY: the `RawWaker` contract holds: every function of `TAKEN` ignores the
    // data pointer, owns nothing and is thread-safe, and `clone` returns the same
    // kind of waker.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &TAKEN)) }
}

fn is_taken(w: &Waker) -> bool {
    std::ptr::eq(w.vtable(), &TAKEN)
}

/// A node's key plus one, so that "no link" is a niche: `Option<Link>` is 4 bytes
/// instead of 16 (per-waiter memory, benchmark B9: two links per blocked waiter, and
/// the key a waiting future keeps, as the semaphore's `Acquire` does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Link(NonZeroU32);

impl Link {
    /// The link to the node with key `key` (always `Some`; an `Option` to store).
    pub(crate) fn to(key: usize) -> Option<Link> {
        let plus_one = u32::try_from(key + 1).expect("scope_runtime: over 4 billion waiters");
        NonZeroU32::new(plus_one).map(Link)
    }

    pub(crate) fn key(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl<S> Node<S> {
    /// Whether the node is in the queue, given whether it is the head: a queued node
    /// has a neighbour or is the queue's only node (see the field comment).
    fn is_queued(&self, is_head: bool) -> bool {
        self.prev.is_some() || self.next.is_some() || is_head
    }

    /// Takes the node's waker (`None` if it was taken already).
    pub(crate) fn take_waker(&mut self) -> Option<Waker> {
        let w = std::mem::replace(&mut self.waker, taken());
        (!is_taken(&w)).then_some(w)
    }

    /// Gives the node a waker back (or none).
    pub(crate) fn put_waker(&mut self, w: Option<Waker>) {
        self.waker = w.unwrap_or_else(taken);
    }

    /// The next node in the queue.
    fn next(&self) -> Option<usize> {
        self.next.map(Link::key)
    }
}

/// A FIFO of waiters with O(1) removal from the middle. See the module doc.
#[derive(Debug)]
pub(crate) struct WaitList<S> {
    nodes: PagedSlab<Node<S>>,
    head: Option<usize>,
    tail: Option<usize>,
    /// What its waiters wait on, for the task dump: the primitive's kind, and the
    /// queue's number (0 until it first makes a task wait, then one of its runtime's).
    kind: SyncKind,
    id: u64,
}

impl<S> WaitList<S> {
    /// An empty list of a primitive of kind `kind` (what its waiters show in the
    /// task dump).
    pub(crate) const fn new(kind: SyncKind) -> WaitList<S> {
        WaitList {
            nodes: PagedSlab::new(),
            head: None,
            tail: None,
            kind,
            id: 0,
        }
    }

    /// What a waiter of this list waits on (numbering the list on first use).
    fn waiting_on(&mut self) -> WaitingOn {
        if self.id == 0 {
            self.id = try_with_core(|core| core.next_object_id()).unwrap_or(0);
        }
        self.kind.waiting_on(self.id)
    }

    /// No waiter is queued (served nodes not yet removed do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.head.is_none()
    }

    /// Appends a waiter polled with `waker` by the code running now; returns its key.
    pub(crate) fn push_back(&mut self, state: S, waker: &Waker) -> usize {
        let on = self.waiting_on();
        // Armed before the node is stored: one slab lookup less per wait.
        let mut cancel = CancelWait::new();
        cancel.arm(waker, on);
        self.push_node(state, waker, cancel)
    }

    /// Appends a waiter that no cancellation can reach: it is not registered with the
    /// status tree, so a cancel neither wakes it nor makes a hand-off skip it. For waits
    /// that must finish once begun (a `Condition` re-taking its lock after it was
    /// notified). Keep it updated with [`update_unarmed`](Self::update_unarmed).
    pub(crate) fn push_back_unarmed(&mut self, state: S, waker: &Waker) -> usize {
        self.push_node(state, waker, CancelWait::new())
    }

    fn push_node(&mut self, state: S, waker: &Waker, cancel: CancelWait) -> usize {
        let key = self.nodes.insert(Node {
            prev: self.tail.and_then(Link::to),
            next: None,
            cancel,
            waker: waker.clone(),
            state,
        });
        match self.tail {
            Some(t) => self.nodes[t].next = Link::to(key),
            None => self.head = Some(key),
        }
        self.tail = Some(key);
        key
    }

    /// The first queued waiter that is not cancelled (see the module doc).
    pub(crate) fn front_ready(&self) -> Option<usize> {
        let mut cur = self.head?;
        loop {
            let node = &self.nodes[cur];
            if !site_cancelled(node.cancel.site()) {
                return Some(cur);
            }
            cur = node.next()?;
        }
    }

    /// How many queued waiters are not cancelled (a scan of the queue).
    pub(crate) fn count_ready(&self) -> usize {
        let mut n = 0;
        let mut cur = self.head;
        while let Some(k) = cur {
            let node = &self.nodes[k];
            if !site_cancelled(node.cancel.site()) {
                n += 1;
            }
            cur = node.next();
        }
        n
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
        let mut cur = self.head;
        while let Some(k) = cur {
            let node = &self.nodes[k];
            if !site_cancelled(node.cancel.site()) {
                ready.push(k);
            }
            cur = node.next();
        }
        for k in ready {
            self.unlink(k);
            serve(&mut self.nodes[k]);
        }
    }

    fn unlink(&mut self, key: usize) {
        let is_head = self.head == Some(key);
        let node = &mut self.nodes[key];
        if !node.is_queued(is_head) {
            return; // served already
        }
        let (prev, next) = (node.prev.take(), node.next.take());
        match prev {
            Some(p) => self.nodes[p.key()].next = next,
            None => self.head = next.map(Link::key),
        }
        match next {
            Some(n) => self.nodes[n.key()].prev = prev,
            None => self.tail = prev.map(Link::key),
        }
    }

    /// Whether the node is still queued (not served).
    pub(crate) fn is_linked(&self, key: usize) -> bool {
        self.nodes[key].is_queued(self.head == Some(key))
    }

    pub(crate) fn node(&self, key: usize) -> &Node<S> {
        &self.nodes[key]
    }

    pub(crate) fn node_mut(&mut self, key: usize) -> &mut Node<S> {
        &mut self.nodes[key]
    }

    /// Unlinks (if needed) and frees a node (and its registration); returns its state.
    pub(crate) fn remove(&mut self, key: usize) -> S {
        self.unlink(key);
        self.nodes.remove(key).state
    }

    /// Records the waker of the latest poll (cloning it only if it changed) and
    /// re-registers it where the code polling now runs.
    pub(crate) fn update(&mut self, key: usize, waker: &Waker) {
        let on = self.waiting_on();
        self.nodes[key].cancel.arm(waker, on);
        self.update_unarmed(key, waker);
    }

    /// Records the waker of the latest poll of a waiter pushed with
    /// [`push_back_unarmed`](Self::push_back_unarmed) (no registration).
    pub(crate) fn update_unarmed(&mut self, key: usize, waker: &Waker) {
        let slot = &mut self.nodes[key].waker;
        if !slot.will_wake(waker) {
            *slot = waker.clone();
        }
    }

    /// Takes the wakers of every queued waiter, leaving them queued (used on close:
    /// the waiters look at the primitive's state when they run).
    pub(crate) fn take_all_wakers(&mut self, out: &mut WakeList) {
        let mut cur = self.head;
        while let Some(k) = cur {
            let node = &mut self.nodes[k];
            if let Some(w) = node.take_waker() {
                out.push(w);
            }
            cur = node.next();
        }
    }

    /// Number of allocated nodes (queued or served-but-not-removed).
    #[cfg(test)]
    fn allocated(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_takes_48_bytes_of_slab() {
        // The waker's niche tags the place: no word beside the node (benchmark B9).
        assert_eq!(crate::runtime::paged_slab::place_size::<Node<usize>>(), 48);
    }

    #[test]
    fn links_are_four_bytes() {
        assert_eq!(size_of::<Option<Link>>(), 4);
        assert_eq!(Link::to(0).map(Link::key), Some(0));
        assert_eq!(Link::to(77).map(Link::key), Some(77));
    }

    /// Per-waiter memory (benchmark B9): a semaphore waiter's node (its state is the
    /// permit count only; "granted" is "no longer linked", and being linked is having
    /// a neighbour or being the head) fits in 48 bytes.
    #[test]
    fn a_semaphore_waiter_node_is_48_bytes() {
        assert_eq!(size_of::<Node<usize>>(), 48);
        // and so is its slab entry (the slab's `enum Entry { Vacant(usize),
        // Occupied(T) }`, private to it): the waker's niche tells vacant from occupied
        #[allow(dead_code)]
        enum Entry<T> {
            Vacant(usize),
            Occupied(T),
        }
        assert_eq!(size_of::<Entry<Node<usize>>>(), 48);
    }

    #[test]
    fn a_served_node_is_unlinked_whatever_its_place() {
        let w = Waker::noop();
        let mut l = WaitList::new(SyncKind::Event);
        let [a, b, c] = [1, 2, 3].map(|s| l.push_back(s, w));
        assert!([a, b, c].iter().all(|&k| l.is_linked(k)));
        l.unlink(b); // the middle one
        assert!(!l.is_linked(b) && l.is_linked(a) && l.is_linked(c));
        l.unlink(c); // the tail
        assert!(
            !l.is_linked(c) && l.is_linked(a),
            "the only node left is linked"
        );
        l.unlink(b); // unlinking twice does nothing
        assert_eq!(keys(&l), [1]);
        l.unlink(a); // the last one
        assert!(!l.is_linked(a) && l.is_empty());
        let d = l.push_back(4, w);
        assert!(l.is_linked(d) && !l.is_linked(a));
        for k in [a, b, c, d] {
            l.remove(k);
        }
        assert_eq!(l.allocated(), 0);
    }

    fn keys(l: &WaitList<u32>) -> Vec<u32> {
        let mut out = Vec::new();
        let mut cur = l.head;
        while let Some(k) = cur {
            out.push(l.nodes[k].state);
            cur = l.nodes[k].next();
        }
        out
    }

    #[test]
    fn fifo_with_removal_from_the_middle() {
        let w = Waker::noop();
        let mut l = WaitList::new(SyncKind::Event);
        let a = l.push_back(1, w);
        let b = l.push_back(2, w);
        let c = l.push_back(3, w);
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
        let d = l.push_back(4, w);
        assert_eq!(keys(&l), [4]);
        assert_eq!(l.front_ready(), Some(d));
    }

    #[test]
    fn take_all_wakers_leaves_nodes_queued() {
        let w = Waker::noop();
        let mut l = WaitList::new(SyncKind::Event);
        l.push_back(1, w);
        l.push_back(2, w);
        let mut wl = WakeList::default();
        l.take_all_wakers(&mut wl);
        assert_eq!(keys(&l), [1, 2]);
        assert!(l.nodes.iter_mut().all(|(_, n)| n.take_waker().is_none()));
        wl.wake_all();
    }
}

//! [`CancelWait`]: how a blocked runtime operation is woken by a cancellation (R13).
//!
//! Every runtime operation that can block owns a `CancelWait`. The protocol, in the
//! operation's `poll`:
//!
//! 1. [`check`](CancelWait::check) first: if the code polling is cancelled, the
//!    operation fails with `Cancelled` and does nothing else (R1).
//! 2. If it has to wait, [`arm`](CancelWait::arm) with the poll's waker before
//!    returning `Pending`: the status tree keeps that waker at the node the code waits
//!    in, and wakes it when that node becomes cancelled. It is the *operation's* waker,
//!    so a combinator that polls sub-futures with wakers of its own (`FuturesUnordered`,
//!    `buffered`, `select_all`) re-polls exactly this operation, which then fails at
//!    step 1.
//! 3. When the operation completes, [`disarm`](CancelWait::disarm) (dropping the
//!    `CancelWait` does it too).
//!
//! `arm` returns the operation's [`Site`], which `sync` stores with its waiters so a
//! hand-off can skip a waiter that is already cancelled ([`site_cancelled`]).
//!
//! # Top-level waits: no registration
//!
//! Most blocked operations are awaited by their task directly, at the task's top level
//! (no cancel scope entered around them inside the task), and are polled with the
//! task's own waker. Such a wait is cancelled exactly when the task's root node is,
//! and waking the task is what waking the operation means. So it is not registered in
//! the tree: `arm` records only what it waits on in the task's header (for the task
//! dump), and a task's root node schedules its task when it becomes cancelled
//! (`Target::TopWait`: only if the task still has such a wait). A top-level task then
//! needs no root node at all until something cancels it: the cancel creates the root,
//! which schedules the task. One task holds at most one top-level wait; a second one at
//! the same time (two sleeps in a `join!`) registers in the tree as any other wait.

use std::task::Waker;

use super::tree::{NO_NODE, WaiterKey};
use super::{Cancelled, check_in, ensure_current_node};
use crate::runtime::core::{Core, RuntimeId, try_with_core};
use crate::runtime::observe::WaitingOn;
use crate::runtime::task::TaskId;
use crate::runtime::wake_list::WakeBy;

/// Where a blocked operation waits: its registration in a runtime's status tree, or
/// the top-level wait of a task (see the module doc). Plain data (`Send`), compared
/// against the runtime of the thread that asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    runtime: RuntimeId,
    // A `WaiterKey`'s fields, flat, so the site is 16 bytes (no padding twice); for a
    // top-level wait, the task's slab key and its sequence number with `TOP` set.
    slot: u32,
    seq: u64,
}

/// Set in a [`Site`]'s `seq` for a task's top-level wait (task sequence numbers and
/// registration numbers never get near it; the tree's own marker is bit 63).
const TOP: u64 = 1 << 62;

impl Site {
    fn key(self) -> WaiterKey {
        WaiterKey {
            slot: self.slot,
            seq: self.seq,
        }
    }

    fn top(task: TaskId) -> Site {
        Site {
            runtime: task.runtime,
            slot: task.slot() as u32,
            seq: task.seq | TOP,
        }
    }

    /// The task whose top-level wait this is (`None` for a tree registration).
    fn top_task(self) -> Option<TaskId> {
        (self.seq & TOP != 0)
            .then(|| TaskId::new(self.runtime, self.slot as usize, self.seq & !TOP))
    }
}

/// A blocked operation's registration with the status tree. See the module doc.
#[derive(Debug, Default)]
pub(crate) struct CancelWait {
    site: Option<Site>,
}

impl CancelWait {
    pub(crate) const fn new() -> CancelWait {
        CancelWait { site: None }
    }

    /// The checkpoint (R1): fails if the calling code is cancelled, dropping the
    /// registration.
    pub(crate) fn check(&mut self) -> Result<(), Cancelled> {
        match try_with_core(|core| self.check_in(core)) {
            Some(r) => r,
            None => Ok(()),
        }
    }

    /// [`check`](Self::check) with the runtime at hand.
    pub(crate) fn check_in(&mut self, core: &Core) -> Result<(), Cancelled> {
        let r = check_in(core);
        if r.is_err() {
            self.disarm_in(core);
        }
        r
    }

    /// Makes a cancel of the code polling now wake `waker` (see the module doc).
    /// `on` says what the operation waits on; the task dump shows it. Returns the
    /// site, or `None` outside a runtime task.
    pub(crate) fn arm(&mut self, waker: &Waker, on: WaitingOn) -> Option<Site> {
        try_with_core(|core| self.arm_in(core, waker, on)).flatten()
    }

    /// [`arm`](Self::arm) with the runtime at hand.
    pub(crate) fn arm_in(&mut self, core: &Core, waker: &Waker, on: WaitingOn) -> Option<Site> {
        let task = core.current_task()?;
        // A registration made on another runtime (the future moved) cannot be reached
        // from here; it is left to that runtime (its node's removal orphans it, its
        // task's end drops the header).
        let prev = self.site.filter(|s| s.runtime == core.id());
        let by = core.wake_by(waker);
        if matches!(by, WakeBy::Task(t) if t == task) {
            let ours = prev.and_then(Site::top_task) == Some(task);
            if core.record_top_wait(task, core.cancel().current.get(), on, ours) {
                if !ours {
                    self.disarm_in(core);
                }
                let site = Site::top(task);
                self.site = Some(site);
                return Some(site);
            }
        }
        let node = ensure_current_node(core);
        if node == NO_NODE {
            return None;
        }
        if let Some(t) = prev.and_then(Site::top_task) {
            core.clear_top_wait(t);
        }
        let prev = prev.filter(|s| s.top_task().is_none()).map(Site::key);
        let (key, old) = core.cancel().tree.borrow_mut().arm(prev, node, by, on);
        drop(old);
        let site = Site {
            runtime: core.id(),
            slot: key.slot,
            seq: key.seq,
        };
        self.site = Some(site);
        Some(site)
    }

    /// Forgets the registration (the operation completed or gave up).
    pub(crate) fn disarm(&mut self) {
        if self.site.is_some() {
            try_with_core(|core| self.disarm_in(core));
            self.site = None;
        }
    }

    /// [`disarm`](Self::disarm) with the runtime at hand.
    pub(crate) fn disarm_in(&mut self, core: &Core) {
        let Some(site) = self.site.take() else {
            return;
        };
        if site.runtime != core.id() {
            return;
        }
        if let Some(task) = site.top_task() {
            core.clear_top_wait(task);
            return;
        }
        // Never fails on the runtime's thread (no borrow of the tree is held while a
        // future runs or drops); if it ever did, the node's removal cleans up.
        let old = match core.cancel().tree.try_borrow_mut() {
            Ok(mut tree) => tree.disarm(site.key()),
            Err(_) => None,
        };
        drop(old);
    }

    /// The site of the current registration, if armed.
    pub(crate) fn site(&self) -> Option<Site> {
        self.site
    }
}

impl Drop for CancelWait {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// Whether the waiter at `site` is cancelled now, as seen from this thread: only a
/// site of the runtime running here can be; a hand-off made elsewhere (another thread,
/// no runtime) sees every waiter as ready, which is one valid order of two concurrent
/// events.
pub(crate) fn site_cancelled(site: Option<Site>) -> bool {
    let Some(site) = site else {
        return false;
    };
    try_with_core(|core| {
        if core.id() != site.runtime {
            return false;
        }
        match site.top_task() {
            Some(task) => core.top_level_cancelled(task),
            None => core
                .cancel()
                .tree
                .try_borrow()
                .is_ok_and(|t| t.waiter_cancelled(site.key())),
        }
    })
    .unwrap_or(false)
}

//! The instrument hooks: a trait the user implements and installs with
//! [`Builder::instrument`](crate::Builder::instrument).

use std::panic::Location;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::cancel::CancelReason;

/// Hooks into a runtime's scheduler: a task spawned, scheduled, polled, exited; the
/// run loop about to wait for I/O and back; a scope cancelled. Install one with
/// [`Builder::instrument`](crate::Builder::instrument).
///
/// Every method has an empty default, so an instrument implements only what it
/// needs. The hooks run on the runtime's thread, synchronously, outside every internal
/// borrow: they may read [`metrics`](crate::metrics) or take a [`dump`](crate::dump).
/// Keep them quick, since the scheduler waits for them. (Spawning or cancelling from a
/// hook works, and calls the hooks again.) A hook must not panic: the panic unwinds
/// out of whichever runtime operation called it (a wake, a spawn, the run loop) and
/// may leave the rest of that operation undone.
///
/// Task ids are [`TaskInfo::id`](crate::TaskInfo)s.
///
/// With no instrument installed, each hook costs the scheduler one check of an
/// `Option`.
///
/// ```
/// use scope_runtime::{Instrument, Runtime, TaskMeta, spawn, Cancelled};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// #[derive(Default)]
/// struct CountPolls {
///     spawned: Cell<u32>,
///     polls: Cell<u32>,
/// }
///
/// impl Instrument for CountPolls {
///     fn task_spawned(&self, _task: &TaskMeta) {
///         self.spawned.set(self.spawned.get() + 1);
///     }
///     fn before_poll(&self, _task: u64) {
///         self.polls.set(self.polls.get() + 1);
///     }
/// }
///
/// let counts = Rc::new(CountPolls::default());
/// let rt = Runtime::builder().instrument(counts.clone()).build()?;
/// rt.block_on(async {
///     spawn(async { Ok::<_, Cancelled>(()) }).await.unwrap().unwrap();
/// });
/// assert_eq!(counts.spawned.get(), 2); // the block_on task and the spawned one
/// assert_eq!(counts.polls.get(), 3); // main twice (before and after the join), the task once
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Instrument {
    /// A task was created (also the `block_on` task, named `main`, at each
    /// `block_on`). Its first poll is scheduled right after (except `main`'s).
    fn task_spawned(&self, task: &TaskMeta) {
        let _ = task;
    }

    /// A task was put in the ready queue: woken on this thread or, after a wake from
    /// another thread, when the run loop takes it in. A wake of a task already queued
    /// does nothing and calls nothing.
    fn task_scheduled(&self, task: u64) {
        let _ = task;
    }

    /// The task is about to be polled.
    fn before_poll(&self, task: u64) {
        let _ = task;
    }

    /// The task's poll returned; `finished` when its future completed.
    fn after_poll(&self, task: u64, finished: bool) {
        let _ = (task, finished);
    }

    /// The task is gone: finished, or dropped (by its group, by
    /// [`JoinHandle`](crate::JoinHandle) cancellation, by the runtime's drop).
    fn task_exited(&self, task: u64) {
        let _ = task;
    }

    /// The run loop is about to ask the OS for I/O readiness, blocking for at most
    /// `timeout` (`None`: until an event; `Some(ZERO)`: only a look).
    fn before_io_wait(&self, timeout: Option<Duration>) {
        let _ = timeout;
    }

    /// The OS answered with `events` readiness events.
    fn after_io_wait(&self, events: usize) {
        let _ = events;
    }

    /// An entered cancel scope or task group became cancelled, for `reason` (cancel
    /// called, its deadline, a child's failure...).
    fn scope_cancelled(&self, reason: &CancelReason) {
        let _ = reason;
    }
}

/// A task as [`Instrument::task_spawned`] sees it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskMeta {
    /// Its id ([`TaskInfo::id`](crate::TaskInfo::id)).
    pub id: u64,
    /// Its name, if it has one.
    pub name: Option<Arc<str>>,
    /// Where it was spawned.
    pub spawned_at: &'static Location<'static>,
}

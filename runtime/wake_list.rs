//! [`WakeList`]: wakers collected while a borrow or lock is held, woken after it is
//! released; [`Target`]: whom a registration wakes (a task of this runtime, or any
//! waker).

use std::task::Waker;

use super::task::TaskId;

/// Wakes `w` for the run loop (a timer, the reactor, a cancellation, a finished task's
/// joiner). A `wake` that panics — a waker of other code than this runtime's — is
/// contained: the panic hook has reported it, and the run loop goes on with its other
/// wakes instead of unwinding out of `block_on`.
pub(crate) fn wake_contained(w: Waker) {
    if let Err(payload) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| w.wake())) {
        // A payload whose own destructor panics would unwind from here: drop it
        // contained too.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(payload)));
    }
}

/// Whom to wake for a blocked operation (a cancel registration, a sleep's timer).
///
/// An operation awaited directly by its task is polled with the task's own waker;
/// then only the task is recorded, and waking it is one push onto the ready queue (no
/// waker clone, no reference count). Any other waker (a combinator's per-future waker,
/// another executor's) is kept and woken as it is. `Core::wake_by` picks the form.
#[derive(Debug)]
pub(crate) enum Target {
    Task(TaskId),
    /// The task, if it has a top-level wait recorded (see `cancel::CancelWait`):
    /// what a task's root node wakes when it becomes cancelled.
    TopWait(TaskId),
    Waker(Waker),
}

/// A [`Target`] as given to the tree or the timers (a waker is cloned only if kept).
#[derive(Debug, Clone, Copy)]
pub(crate) enum WakeBy<'a> {
    Task(TaskId),
    Waker(&'a Waker),
}

impl Target {
    pub(crate) fn same(&self, other: WakeBy<'_>) -> bool {
        match (self, other) {
            (Target::Task(a), WakeBy::Task(b)) => *a == b,
            (Target::TopWait(_), _) => false,
            (Target::Waker(a), WakeBy::Waker(b)) => a.will_wake(b),
            _ => false,
        }
    }
}

impl WakeBy<'_> {
    pub(crate) fn to_target(self) -> Target {
        match self {
            WakeBy::Task(id) => Target::Task(id),
            WakeBy::Waker(w) => Target::Waker(w.clone()),
        }
    }
}

/// Wakers collected under a borrow or a lock and woken after it is released (a waker
/// may run code that takes the same lock or borrow, e.g. an executor on another
/// thread, or a runtime waker that touches the run queue). No allocation for the
/// common case of one waker.
#[derive(Default, Debug)]
#[must_use = "collected wakers must be woken (`wake_all`)"]
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

    /// Wakes everything collected, in the order collected. Call with no lock or
    /// borrow held.
    pub(crate) fn wake_all(self) {
        if let Some(w) = self.first {
            w.wake();
        }
        for w in self.rest {
            w.wake();
        }
    }
}

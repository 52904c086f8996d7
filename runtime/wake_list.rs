//! [`WakeList`]: wakers collected while a borrow or lock is held, woken after it is
//! released.

use std::task::Waker;

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

//! [`cancellable`]: a checkpoint around a future of another crate.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{CancelWait, Cancelled};
use crate::runtime::observe::WaitingOn;

/// Makes a future of another crate cancellable: it resolves `Ok(value)` when `fut`
/// completes, or `Err(Cancelled)` when the code awaiting it is cancelled, dropping
/// `fut` (dropping is the last resort).
///
/// **Only runtime operations are checkpoints.** `sleep`, socket I/O, the `sync`
/// primitives, `JoinHandle`, `checkpoint()` notice a cancellation by themselves; a
/// future from another crate (`async_channel`, `async_lock`, `hyper`, a
/// `futures::channel::oneshot` fed by a thread...) does not, so inside a cancelled scope
/// or task group it would keep waiting — and the group would wait for it. Wrap such
/// awaits in `cancellable`:
///
/// ```
/// use scope_runtime::{cancellable, move_on_after, now};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let t0 = now();
///     // `pending()` never completes and knows nothing of our scopes.
///     let r = move_on_after(Duration::from_secs(2), async {
///         cancellable(std::future::pending::<()>()).await
///     })
///     .await;
///     assert_eq!(r, Ok(None)); // the deadline cancelled it; the scope absorbed that
///     assert_eq!(now() - t0, Duration::from_secs(2));
/// });
/// ```
///
/// What happens when:
///
/// * **Cancelled before the first poll**: `fut` is never polled (no side effect).
/// * **Cancelled while it waits**: the wrapper is woken at once (also inside
///   combinators), polls `fut` one last time — so a value it already holds is returned
///   rather than lost — and otherwise drops it and returns `Err(Cancelled)`.
///   What dropping means is up to `fut`'s crate (for most, "stop and undo nothing").
/// * **Not cancelled**: it is `fut`, plus the cost of one registration while it waits.
///
/// The value `fut` produces is returned unchanged: `cancellable(rx.recv())` gives
/// `Result<Result<T, RecvError>, Cancelled>`.
pub fn cancellable<F: Future>(fut: F) -> Cancellable<F> {
    Cancellable {
        fut: Some(fut),
        polled: false,
        wait: CancelWait::new(),
    }
}

/// The future of [`cancellable`].
#[must_use = "futures do nothing unless awaited"]
pub struct Cancellable<F> {
    /// `None` once it completed or was dropped on cancellation.
    fut: Option<F>,
    /// `fut` was polled at least once (from then on a cancel polls it one last time).
    polled: bool,
    wait: CancelWait,
}

impl<F> fmt::Debug for Cancellable<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellable")
            .field("done", &self.fut.is_none())
            .field("polled", &self.polled)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = Result<F::Output, Cancelled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `fut` is structurally pinned: it is only reached through
        // `Pin::new_unchecked` below and dropped in place with `Pin::set`, never moved
        // out. `Cancellable` has no `Drop` impl of its own that could move it, and it is
        // `Unpin` only when `F` is. The other fields are never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: see above; `this.fut` stays where it is until dropped in place.
        let mut fut = unsafe { Pin::new_unchecked(&mut this.fut) };
        let Some(inner) = fut.as_mut().as_pin_mut() else {
            panic!("`Cancellable` polled after it completed");
        };
        let cancel = this.wait.check();
        if cancel.is_ok() || this.polled {
            this.polled = true;
            if let Poll::Ready(v) = inner.poll(cx) {
                fut.set(None);
                this.wait.disarm();
                return Poll::Ready(Ok(v));
            }
        }
        if let Err(c) = cancel {
            fut.set(None); // drop is the last resort (R11)
            return Poll::Ready(Err(c));
        }
        this.wait.arm(cx.waker(), WaitingOn::Foreign);
        Poll::Pending
    }
}

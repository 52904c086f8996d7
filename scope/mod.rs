//! Cancel scopes and task groups: the user-facing face of cancellation.
//!
//! A [`CancelScope`] is a handle (cheap to clone, `!Send`) to one scope's state, which
//! the scheduler owns (`runtime/cancel`): this module holds no flags of its own and
//! decides nothing. [`CancelScope::run`] enters the scope for one body (the status tree
//! gets a node under the node of the code that polls it), polls the body with that
//! node current, and on completion asks the tree whether the scope absorbs a
//! `Cancelled` leaving the body. [`TaskGroup`] (in `group.rs`) is a scope plus the
//! tasks spawned in its block.
//!
//! `scope/` imports only from `runtime/` (see `docs/ARCHITECTURE.md`).

pub(crate) mod error;
pub(crate) mod group;
#[cfg(feature = "hyper")]
mod hyper;
mod multi;
mod serve;
mod value;

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use error::TimedOut;
#[cfg(feature = "hyper")]
pub use hyper::GroupExecutor;
pub use multi::{CoreContext, CoreFailure, Cores, CoresError, MultiCancel};
pub use serve::{ServeError, ServeTcp, serve_tcp};
pub use value::{ChildError, ChildValue};

use crate::runtime::cancel::{
    self, CancelError, CancelHandle, CancelReason, Deadline, Entered, ScopeState,
};

/// A cancel scope: a region of code that can be cancelled as a unit, given a deadline,
/// or shielded from the cancellation of the code around it.
///
/// Build one, configure it, then run a body inside it with [`run`](Self::run). The
/// handle stays usable during and after the body: `cancel()` from anywhere on the
/// runtime's thread (any task, or between `block_on` calls), read
/// [`cancel_called`](Self::cancel_called) and [`cancelled_caught`](Self::cancelled_caught)
/// afterwards.
///
/// Cancellation arrives at **checkpoints** — the runtime's own operations that can
/// block (`sleep`, I/O, the `sync` primitives, `JoinHandle`, [`checkpoint`](crate::checkpoint)),
/// also when they are polled inside `futures` combinators. A future of another crate
/// is not a checkpoint: wrap it in [`cancellable`](crate::cancellable) so a cancel
/// stops it.
///
/// ```
/// use scope_runtime::{CancelScope, Cancelled, sleep};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let scope = CancelScope::new().with_timeout(Duration::from_secs(1));
///     let out = scope
///         .run(async {
///             sleep(Duration::from_secs(10)).await?; // cancelled after 1 s
///             Ok::<_, Cancelled>("finished")
///         })
///         .await;
///     assert_eq!(out, Ok(None)); // the scope absorbed its own deadline
///     assert!(scope.cancel_called() && scope.cancelled_caught());
/// });
/// ```
#[derive(Clone, Default)]
pub struct CancelScope {
    pub(crate) state: Rc<ScopeState>,
}

impl std::fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.state.fmt(f)
    }
}

impl CancelScope {
    /// A scope with no deadline and no shield.
    pub fn new() -> CancelScope {
        CancelScope::default()
    }

    /// Sets an absolute deadline (builder style).
    pub fn with_deadline(self, deadline: Instant) -> CancelScope {
        cancel::set_deadline(&self.state, Deadline::At(deadline));
        self
    }

    /// Sets a deadline `timeout` after the moment the scope is **entered** (builder
    /// style). `Duration::MAX` and other unrepresentable deadlines mean "never".
    pub fn with_timeout(self, timeout: Duration) -> CancelScope {
        cancel::set_deadline(&self.state, Deadline::After(timeout));
        self
    }

    /// Sets the shield (builder style): a shielded scope hides the cancellation of
    /// the scopes around it from its body. Its own cancel and deadline still apply.
    pub fn with_shield(self, shield: bool) -> CancelScope {
        cancel::set_shield(&self.state, shield);
        self
    }

    /// Requests cancellation. The code after the call keeps running until its next
    /// checkpoint. Idempotent; a no-op once the scope has exited. Before the scope is
    /// entered, it takes effect on entry.
    pub fn cancel(&self) {
        cancel::cancel(&self.state, CancelReason::Explicit(None));
    }

    /// Like [`cancel`](Self::cancel), recording why. The first reason wins.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, CancelReason};
    /// let scope = CancelScope::new();
    /// scope.cancel_with("shutting down");
    /// scope.cancel_with("too late");
    /// assert_eq!(scope.cancel_reason(), Some(CancelReason::Explicit(Some("shutting down".into()))));
    /// ```
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        cancel::cancel(&self.state, CancelReason::Explicit(Some(reason.into())));
    }

    /// A `Send + Sync` handle that cancels this scope from any thread (for example
    /// from a signal handler thread or a thread pool). The request is delivered through
    /// the runtime's injector and applied by its run loop, as if `cancel_with` were
    /// called there; once the scope has exited it is a no-op.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, sleep};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let scope = CancelScope::new();
    ///     let handle = scope.cancel_handle();
    ///     let t = std::thread::spawn(move || handle.cancel_with("from a thread"));
    ///     let r = scope.run(sleep(Duration::from_secs(3600))).await;
    ///     assert_eq!(r, Ok(None));
    ///     t.join().unwrap();
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn cancel_handle(&self) -> CancelHandle {
        cancel::cancel_handle(&self.state)
    }

    /// Whether a cancel was requested (explicitly or by reaching the deadline). A
    /// deadline that has passed counts at once — also before the scope is entered — as
    /// in Trio.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, now};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let late = CancelScope::new().with_deadline(now());
    ///     assert!(late.cancel_called(), "its deadline has passed: it is cancelled already");
    ///     let relative = CancelScope::new().with_timeout(Duration::ZERO);
    ///     assert!(!relative.cancel_called(), "a relative timeout starts at entry");
    /// });
    /// ```
    pub fn cancel_called(&self) -> bool {
        cancel::cancel_called(&self.state)
    }

    /// Whether the scope absorbed a cancellation: a `Cancelled` left its body while the
    /// scope itself was cancelled and no cancelled scope around it was visible.
    pub fn cancelled_caught(&self) -> bool {
        self.state.cancelled_caught()
    }

    /// Why the scope was cancelled, if it was.
    pub fn cancel_reason(&self) -> Option<CancelReason> {
        self.state.reason()
    }

    /// The absolute deadline, if any. A relative timeout not yet entered reports `None`.
    pub fn deadline(&self) -> Option<Instant> {
        self.state.deadline_at()
    }

    /// Moves the deadline, earlier or later, or removes it (`None`). A task blocked
    /// inside is woken or re-timed accordingly; a deadline already past cancels the
    /// (active) scope at once.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        cancel::set_deadline(&self.state, deadline.map_or(Deadline::None, Deadline::At));
    }

    /// Whether the scope is shielded.
    pub fn shield(&self) -> bool {
        self.state.shield()
    }

    /// Turns the shield on or off. Turning it off while a task is blocked inside lets
    /// an outer cancellation through at once (the blocked operation is woken).
    pub fn set_shield(&self, shield: bool) {
        cancel::set_shield(&self.state, shield);
    }

    /// Runs `body` inside this scope.
    ///
    /// * `Ok(Some(value))`: the body finished with a value.
    /// * `Ok(None)`: a `Cancelled` left the body and this scope absorbed it: when it
    ///   left, this scope was cancelled (its own cancel or deadline) and no cancelled
    ///   scope around it was visible (decided at that moment).
    /// * `Err(e)`: the body's error, including a `Cancelled` that belongs further out
    ///   (an enclosing scope is cancelled too, or this one is not), which keeps
    ///   travelling outward.
    ///
    /// Only runtime operations are checkpoints; see [`cancellable`](crate::cancellable)
    /// for futures of other crates.
    ///
    /// # Panics
    ///
    /// When the scope is entered a second time, when polled outside a task, or when the
    /// future is moved to another task or out of the scope it was entered in.
    pub fn run<F, T, E>(&self, body: F) -> impl Future<Output = Result<Option<T>, E>> + use<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: CancelError,
    {
        let state = self.state.clone();
        async move {
            let entered = Entered::enter(state);
            let mut out = {
                let mut body = pin!(body);
                poll_fn(|cx| entered.poll_inside(body.as_mut(), cx)).await
            };
            let (pure, part) = match &out {
                Ok(_) => (false, false),
                Err(e) => (e.as_cancelled().is_some(), e.cancelled_part().is_some()),
            };
            // The scope absorbs a `Cancelled` leaving the body (R4). One that travels
            // beside other errors (a task group's) is caught too, but the errors go on,
            // without it.
            if entered.exit(part) {
                if pure {
                    return Ok(None);
                }
                if let Err(e) = &mut out {
                    e.clear_cancelled_part();
                }
            }
            out.map(Some)
        }
    }

    /// Like [`run`](Self::run), but an absorbed cancellation becomes `Err(TimedOut)`:
    /// the body had to finish. This is [`fail_after`] for a scope you configured
    /// yourself (e.g. shielded).
    pub fn run_or_timeout<F, T, E>(
        &self,
        body: F,
    ) -> impl Future<Output = Result<T, E>> + use<F, T, E>
    where
        F: Future<Output = Result<T, E>>,
        E: CancelError + From<TimedOut>,
    {
        let run = self.run(body);
        let state = self.state.clone();
        async move {
            match run.await? {
                Some(v) => Ok(v),
                None => Err(E::from(TimedOut {
                    reason: state.reason().unwrap_or(CancelReason::Deadline),
                })),
            }
        }
    }
}

/// Runs `body` with a deadline `timeout` from now; on expiry the body is cancelled and
/// the result is `Ok(None)`. See [`CancelScope::run`] for the result.
///
/// The deadline reaches every runtime operation inside, also inside `futures`
/// combinators (`join_all`, `FuturesUnordered`, `buffered`...). A future of another
/// crate must be wrapped in [`cancellable`](crate::cancellable) to be stopped by it.
///
/// ```
/// use scope_runtime::{move_on_after, sleep, Cancelled};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let r = move_on_after(Duration::from_secs(1), async {
///         sleep(Duration::from_secs(5)).await?;
///         Ok::<_, Cancelled>(5)
///     })
///     .await;
///     assert_eq!(r, Ok(None));
/// });
/// ```
pub fn move_on_after<F, T, E>(
    timeout: Duration,
    body: F,
) -> impl Future<Output = Result<Option<T>, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError,
{
    CancelScope::new().with_timeout(timeout).run(body)
}

/// Like [`move_on_after`] with an absolute deadline.
pub fn move_on_at<F, T, E>(deadline: Instant, body: F) -> impl Future<Output = Result<Option<T>, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError,
{
    CancelScope::new().with_deadline(deadline).run(body)
}

/// Runs `body` with a deadline `timeout` from now; on expiry the body is cancelled and
/// the result is `Err(TimedOut.into())` — an error, not a cancellation.
///
/// ```
/// use scope_runtime::{fail_after, sleep};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let r: std::io::Result<()> = fail_after(Duration::from_secs(1), async {
///         sleep(Duration::from_secs(5)).await?;
///         Ok(())
///     })
///     .await;
///     assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// });
/// ```
pub fn fail_after<F, T, E>(timeout: Duration, body: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError + From<TimedOut>,
{
    CancelScope::new()
        .with_timeout(timeout)
        .run_or_timeout(body)
}

/// Like [`fail_after`] with an absolute deadline.
pub fn fail_at<F, T, E>(deadline: Instant, body: F) -> impl Future<Output = Result<T, E>>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError + From<TimedOut>,
{
    CancelScope::new()
        .with_deadline(deadline)
        .run_or_timeout(body)
}

pub use group::{SpawnError, TaskGroup, TaskHandle, TaskStatus, task_group};

//! Error values of cancellation: [`Cancelled`], [`TimedOut`], [`CancelReason`], and the
//! [`CancelError`] trait that lets scopes recognise a cancellation inside any error type.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// The boxed error type used by task groups and their children.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Identifies a task in reports: its runtime-unique number and its name, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskInfo {
    pub(crate) id: u64,
    pub(crate) name: Option<Arc<str>>,
}

impl TaskInfo {
    /// The task's number, unique within its runtime.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The task's name, if it was given one (`spawn_named`).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(n) => write!(f, "task `{n}` (#{})", self.id),
            None => write!(f, "task #{}", self.id),
        }
    }
}

/// Why a scope was cancelled. The first reason given to a scope wins.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// `cancel()` (no reason text) or `cancel_with(reason)`.
    Explicit(Option<Arc<str>>),
    /// The scope's deadline was reached.
    Deadline,
    /// A task of the group failed with an error; the group cancelled itself.
    TaskFailed(TaskInfo),
    /// A task of the group panicked; the group cancelled itself.
    TaskPanicked(TaskInfo),
    /// The task's own cancel count is above zero (`JoinHandle::cancel`,
    /// `TaskHandle::cancel`).
    TaskCancelled,
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Explicit(None) => f.write_str("cancelled explicitly"),
            CancelReason::Explicit(Some(r)) => write!(f, "cancelled: {r}"),
            CancelReason::Deadline => f.write_str("deadline reached"),
            CancelReason::TaskFailed(t) => write!(f, "{t} failed"),
            CancelReason::TaskPanicked(t) => write!(f, "{t} panicked"),
            CancelReason::TaskCancelled => f.write_str("the task was cancelled"),
        }
    }
}

/// The error a checkpoint returns when the code around it has been cancelled.
///
/// Only the runtime creates it (there is no public constructor and no `Default`), so a
/// `Cancelled` always means a real cancellation. It is addressed to one scope — the
/// outermost cancelled scope the checkpoint could see — and that scope absorbs it when
/// it comes out of the scope's body (see [`CancelScope::run`](crate::CancelScope::run)).
///
/// It converts into [`std::io::Error`] (kind `Other`, never `Interrupted`, which callers
/// retry) and into [`BoxError`], and [`CancelError`] finds it again in both.
///
/// ```
/// use scope_runtime::{CancelScope, CancelError, Cancelled, checkpoint};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let scope = CancelScope::new();
///     let out = scope
///         .run(async {
///             scope.cancel();
///             let err: std::io::Error = checkpoint().await.unwrap_err().into();
///             assert!(err.as_cancelled().is_some());
///             Err::<(), _>(err)
///         })
///         .await;
///     assert!(matches!(out, Ok(None)), "the scope absorbed its own cancellation");
///     assert!(scope.cancelled_caught());
/// });
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Cancelled {
    /// Serial of the scope-tree node this cancellation is addressed to.
    pub(crate) target: u64,
    pub(crate) reason: CancelReason,
}

impl Cancelled {
    /// Why the scope was cancelled.
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancelled")
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation cancelled ({})", self.reason)
    }
}

impl Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(c: Cancelled) -> io::Error {
        io::Error::other(c)
    }
}

/// The error of [`fail_after`](crate::fail_after) / [`fail_at`](crate::fail_at): the
/// deadline passed before the body finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    pub(crate) reason: CancelReason,
}

impl TimedOut {
    /// Why the scope ended early (normally [`CancelReason::Deadline`]).
    pub fn reason(&self) -> &CancelReason {
        &self.reason
    }
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason {
            CancelReason::Deadline => f.write_str("deadline reached before the operation finished"),
            ref r => write!(f, "operation did not finish ({r})"),
        }
    }
}

impl Error for TimedOut {}

impl From<TimedOut> for io::Error {
    fn from(t: TimedOut) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, t)
    }
}

/// Error types that may carry a [`Cancelled`]. Scopes use it to recognise a
/// cancellation coming out of their body, whatever error type the body returns.
///
/// Implemented for `Cancelled`, `std::io::Error`, [`BoxError`] (and `Box<dyn Error>`),
/// and [`TaskGroupError`](crate::TaskGroupError). For your own error enum, return the
/// `Cancelled` your variant wraps.
pub trait CancelError {
    /// The cancellation this error is, or carries; `None` for any other error.
    fn as_cancelled(&self) -> Option<&Cancelled>;
}

impl CancelError for Cancelled {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        Some(self)
    }
}

impl CancelError for io::Error {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        self.get_ref().and_then(|e| find_cancelled(e))
    }
}

impl CancelError for BoxError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(&**self)
    }
}

impl CancelError for Box<dyn Error + 'static> {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(&**self)
    }
}

/// Looks for a `Cancelled` in an error value: the value itself, an `io::Error`
/// wrapping one, or a propagating [`TaskGroupError`](crate::TaskGroupError). It does
/// not walk arbitrary `source()` chains: an error that merely *mentions* a
/// cancellation as its cause is a different error.
pub(crate) fn find_cancelled<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    if let Some(c) = e.downcast_ref::<Cancelled>() {
        return Some(c);
    }
    if let Some(io) = e.downcast_ref::<io::Error>() {
        return io.as_cancelled();
    }
    if let Some(g) = e.downcast_ref::<crate::TaskGroupError>() {
        return g.as_cancelled();
    }
    None
}

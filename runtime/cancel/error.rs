//! Error values of cancellation: [`Cancelled`], [`CancelReason`], [`TaskInfo`], and the
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
/// `Cancelled` always means a real cancellation. It travels outward through `?` until
/// it leaves the body of a scope that absorbs it: the first scope, going outward, that
/// is itself cancelled and sees no cancelled scope beyond it (see
/// [`CancelScope::run`](crate::CancelScope::run)). Which scope that is, is decided when
/// the error leaves each scope, not when the checkpoint failed.
///
/// It converts into [`std::io::Error`] (kind `Other`, never `Interrupted`, which callers
/// retry) and into [`BoxError`], and [`CancelError`] finds it again in both, also when
/// another library's error wraps it (through [`Error::source`]).
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
    pub(crate) reason: CancelReason,
}

impl Cancelled {
    /// Why the code was cancelled: the reason of the outermost cancelled scope the
    /// checkpoint could see.
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

/// Error types that may carry a [`Cancelled`]. Scopes use it to recognise a
/// cancellation coming out of their body, whatever error type the body returns.
///
/// Implemented for `Cancelled`, `std::io::Error`, [`BoxError`] (and `Box<dyn Error>`),
/// and [`TaskGroupError`](crate::TaskGroupError). The `io::Error` and boxed forms look
/// through the whole error chain: the error itself, what an `io::Error` wraps
/// ([`io::Error::get_ref`]), and every [`Error::source`] — so a library error that
/// wraps a `Cancelled` (hyper's `Error` around an `io::Error`, say) is still a
/// cancellation to the scope that absorbs it.
///
/// For your own error enum, return the `Cancelled` your variant wraps, or use
/// [`find_cancelled`] on the error you hold:
///
/// ```
/// use scope_runtime::{CancelError, Cancelled, find_cancelled};
///
/// #[derive(Debug)]
/// enum AppError {
///     Io(std::io::Error),
///     Parse(String),
/// }
///
/// impl CancelError for AppError {
///     fn as_cancelled(&self) -> Option<&Cancelled> {
///         match self {
///             AppError::Io(e) => find_cancelled(e),
///             AppError::Parse(_) => None,
///         }
///     }
/// }
/// # let _ = AppError::Parse(String::new()).as_cancelled();
/// ```
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
        find_cancelled(self)
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

/// How many links of an error chain [`find_cancelled`] follows before it gives up (a
/// badly written `source()` could form a cycle).
const MAX_CHAIN: usize = 64;

/// Looks for a [`Cancelled`] anywhere in an error's chain: the error itself, the error
/// an [`io::Error`] wraps, and each [`Error::source`] after it.
///
/// `io::Error::source` skips the error it wraps (it returns that error's *source*), so
/// every `io::Error` on the way is also opened with [`io::Error::get_ref`].
///
/// ```
/// use scope_runtime::{CancelScope, checkpoint, find_cancelled};
///
/// #[derive(Debug)]
/// struct Wrapper(std::io::Error); // a library error that keeps its cause
/// impl std::fmt::Display for Wrapper {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("request failed")
///     }
/// }
/// impl std::error::Error for Wrapper {
///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
///         Some(&self.0)
///     }
/// }
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let scope = CancelScope::new();
///     scope.cancel();
///     let c = scope.run(async { Ok::<_, scope_runtime::Cancelled>(checkpoint().await) }).await;
///     let cancelled = c.unwrap().unwrap().unwrap_err();
///     let wrapped = Wrapper(cancelled.into());
///     assert!(find_cancelled(&wrapped).is_some());
/// });
/// ```
pub fn find_cancelled<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    let mut cur = Some(e);
    for _ in 0..MAX_CHAIN {
        let err = cur?;
        if let Some(c) = err.downcast_ref::<Cancelled>() {
            return Some(c);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            // `io::Error::source` would skip `inner` itself: look at it here.
            let inner: &(dyn Error + 'static) = inner;
            if let Some(c) = inner.downcast_ref::<Cancelled>() {
                return Some(c);
            }
            cur = Some(inner);
            continue;
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Wrap(Option<Box<dyn Error + Send + Sync>>);
    impl fmt::Display for Wrap {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("wrapper")
        }
    }
    impl Error for Wrap {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.0.as_deref().map(|e| e as _)
        }
    }

    fn cancelled() -> Cancelled {
        Cancelled {
            reason: CancelReason::Deadline,
        }
    }

    #[test]
    fn finds_cancelled_through_sources_and_io_errors() {
        let io: io::Error = cancelled().into();
        let deep = Wrap(Some(Box::new(Wrap(Some(Box::new(io))))));
        assert_eq!(find_cancelled(&deep), Some(&cancelled()));
        let io_of_wrap = io::Error::other(Wrap(Some(Box::new(cancelled()))));
        assert!(io_of_wrap.as_cancelled().is_some());
        let boxed: BoxError = Box::new(deep);
        assert!(boxed.as_cancelled().is_some());
    }

    #[test]
    fn other_errors_are_not_cancellations() {
        let plain = Wrap(Some(Box::new(io::Error::other("refused"))));
        assert_eq!(find_cancelled(&plain), None);
        assert_eq!(
            io::Error::from(io::ErrorKind::TimedOut).as_cancelled(),
            None
        );
        assert_eq!(find_cancelled(&Wrap(None)), None);
    }

    /// An error whose source is itself never ends the search in a hang.
    #[test]
    fn a_cyclic_source_chain_ends() {
        #[derive(Debug)]
        struct Cycle;
        impl fmt::Display for Cycle {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cycle")
            }
        }
        impl Error for Cycle {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&Cycle)
            }
        }
        assert_eq!(find_cancelled(&Cycle), None);
    }
}

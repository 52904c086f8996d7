//! Error values of cancellation: [`Cancelled`], [`CancelReason`], [`TaskInfo`], and the
//! [`CancelError`] trait that lets scopes recognise a cancellation inside any error type.

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

/// The boxed error type used by task groups and their children.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Identifies a task in reports: its runtime-unique number and its name, if any.
///
/// One pointer wide (the number and name are shared behind it), so that the reasons
/// that carry one, and with them every [`Cancelled`] and `Result<_, Cancelled>`,
/// stay small: a task that ends with a `Cancelled` keeps it in its cell until its
/// handle reads it (benchmark B9).
#[derive(Clone, PartialEq, Eq)]
pub struct TaskInfo(Arc<TaskData>);

#[derive(PartialEq, Eq)]
struct TaskData {
    id: u64,
    name: Option<Arc<str>>,
}

impl TaskInfo {
    pub(crate) fn new(id: u64, name: Option<Arc<str>>) -> TaskInfo {
        TaskInfo(Arc::new(TaskData { id, name }))
    }

    /// The task's number, unique within its runtime.
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// The task's name, if it was given one (`spawn_named`).
    pub fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
}

impl fmt::Debug for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskInfo")
            .field("id", &self.0.id)
            .field("name", &self.0.name)
            .finish()
    }
}

impl fmt::Display for TaskInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "task `{n}` (#{})", self.id()),
            None => write!(f, "task #{}", self.id()),
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
    /// A `Cancelled` (of an enclosing scope, or a stale one) left a task of the group
    /// or its body; the group cancelled itself, as a Trio nursery does for any
    /// exception leaving a child.
    ChildCancelled(TaskInfo),
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
            CancelReason::ChildCancelled(t) => write!(f, "a cancellation left {t}"),
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
///
/// A scope body, a [`spawn`](crate::spawn)ed task or a `fail_after` body whose error
/// type implements none of this fails to compile with a message that says so: the
/// runtime has to tell a cancelled body from a failed one, and only this trait lets it
/// look inside the error.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry a cancellation: the runtime could not tell a cancelled body or task from a failed one",
    label = "`{Self}` does not implement `CancelError`",
    note = "use an error type that does (`scope_runtime::BoxError`, `std::io::Error`, `scope_runtime::Cancelled`), or implement `scope_runtime::CancelError` for `{Self}`: return the `Cancelled` it wraps (`scope_runtime::find_cancelled` looks through an error chain)"
)]
pub trait CancelError {
    /// The cancellation this error is, or carries; `None` for any other error.
    fn as_cancelled(&self) -> Option<&Cancelled>;

    /// A cancellation that travels *beside* other errors in this one — a
    /// [`TaskGroupError`](crate::TaskGroupError) whose children failed while a cancel
    /// of an enclosing scope was leaving it too — or, by default, [`as_cancelled`]'s.
    /// The scope it belongs to records `cancelled_caught()` while the error goes on.
    ///
    /// [`as_cancelled`]: CancelError::as_cancelled
    fn cancelled_part(&self) -> Option<&Cancelled> {
        self.as_cancelled()
    }

    /// Forgets the cancellation travelling beside the errors ([`cancelled_part`]):
    /// called by the scope that absorbed it, so no scope further out finds it again.
    /// The default does nothing (an error that only *is* a cancellation has no part
    /// beside anything).
    ///
    /// [`cancelled_part`]: CancelError::cancelled_part
    fn clear_cancelled_part(&mut self) {}
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

    fn cancelled_part(&self) -> Option<&Cancelled> {
        find_cancelled_part(self)
    }

    fn clear_cancelled_part(&mut self) {
        strip_cancelled_parts(self);
    }
}

impl CancelError for BoxError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(&**self)
    }

    fn cancelled_part(&self) -> Option<&Cancelled> {
        find_cancelled_part(&**self)
    }

    fn clear_cancelled_part(&mut self) {
        strip_cancelled_parts(&mut **self);
    }
}

impl CancelError for Box<dyn Error + 'static> {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(&**self)
    }

    fn cancelled_part(&self) -> Option<&Cancelled> {
        find_cancelled_part(&**self)
    }

    fn clear_cancelled_part(&mut self) {
        strip_cancelled_parts(&mut **self);
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

/// [`find_cancelled`], also finding a cancellation that travels beside errors inside
/// a [`TaskGroupError`] (see [`CancelError::cancelled_part`]).
pub(crate) fn find_cancelled_part<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    if let Some(c) = find_cancelled(e) {
        return Some(c);
    }
    let mut cur = Some(e);
    for _ in 0..MAX_CHAIN {
        let err = cur?;
        if let Some(g) = err.downcast_ref::<TaskGroupError>() {
            return g.cancelled_part();
        }
        cur = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
            Some(inner) => Some(inner as &(dyn Error + 'static)),
            None => err.source(),
        };
    }
    None
}

/// Removes every cancellation travelling beside errors inside `e` (nested
/// [`TaskGroupError`]s, also inside an `io::Error`): the scope it belonged to has
/// absorbed it, so it must not be found again further out.
pub(crate) fn strip_cancelled_parts(e: &mut (dyn Error + 'static)) {
    if let Some(g) = e.downcast_mut::<TaskGroupError>() {
        g.cancelled = None;
        for f in &mut g.failures {
            strip_cancelled_parts(&mut *f.error);
        }
    } else if let Some(inner) = e.downcast_mut::<io::Error>().and_then(io::Error::get_mut) {
        strip_cancelled_parts(inner);
    }
}

/// One failure collected by a task group.
#[derive(Debug)]
pub struct TaskFailure {
    pub(crate) task: TaskInfo,
    pub(crate) body: bool,
    pub(crate) error: BoxError,
}

impl TaskFailure {
    /// The task that failed (for the body: the task running the group).
    pub fn task(&self) -> &TaskInfo {
        &self.task
    }

    /// Whether the error came from the group's body rather than a child.
    pub fn is_body(&self) -> bool {
        self.body
    }

    /// The error.
    pub fn error(&self) -> &BoxError {
        &self.error
    }

    /// Takes the error out.
    pub fn into_error(self) -> BoxError {
        self.error
    }
}

impl fmt::Display for TaskFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.body {
            write!(f, "group body: {}", self.error)
        } else {
            write!(f, "{}: {}", self.task, self.error)
        }
    }
}

/// The error of a task group: the failures it collected, or a cancellation of an
/// enclosing scope that travels through it.
///
/// A propagating cancellation is recognised by [`CancelError`], so the enclosing scope
/// absorbs it even after `?` turned it into a [`BoxError`]. Failures never include a
/// `Cancelled`.
///
/// When failures and a cancellation leave the group together, the failures win: the
/// error is not a cancellation (`as_cancelled()` is `None`) and keeps travelling. The
/// cancellation travels beside it ([`CancelError::cancelled_part`]): the scope it
/// belongs to reports `cancelled_caught()`, as Trio's scope does when it strips the
/// `Cancelled` out of a nursery's exception group.
#[derive(Debug)]
pub struct TaskGroupError {
    pub(crate) cancelled: Option<Cancelled>,
    pub(crate) failures: Vec<TaskFailure>,
}

impl TaskGroupError {
    /// The failures, in the order they happened (empty for a propagating cancel).
    pub fn failures(&self) -> &[TaskFailure] {
        &self.failures
    }

    /// Takes the failures out.
    pub fn into_failures(self) -> Vec<TaskFailure> {
        self.failures
    }

    /// Finds the first failure whose error is an `E`.
    pub fn find<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.failures
            .iter()
            .find_map(|f| f.error.downcast_ref::<E>())
    }
}

impl CancelError for TaskGroupError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        if self.failures.is_empty() {
            self.cancelled.as_ref()
        } else {
            None
        }
    }

    fn cancelled_part(&self) -> Option<&Cancelled> {
        self.cancelled.as_ref().or_else(|| {
            self.failures
                .iter()
                .find_map(|f| find_cancelled_part(&*f.error))
        })
    }

    fn clear_cancelled_part(&mut self) {
        strip_cancelled_parts(self);
    }
}

impl From<Cancelled> for TaskGroupError {
    fn from(c: Cancelled) -> Self {
        TaskGroupError {
            cancelled: Some(c),
            failures: Vec::new(),
        }
    }
}

impl fmt::Display for TaskGroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.as_cancelled() {
            return write!(f, "task group {c}");
        }
        match self.failures.as_slice() {
            [one] => write!(f, "a task group failed: {one}"),
            many => {
                write!(f, "{} tasks of a task group failed", many.len())?;
                for (i, fl) in many.iter().enumerate() {
                    write!(f, "{} {fl}", if i == 0 { ":" } else { ";" })?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for TaskGroupError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self.failures.first() {
            Some(f) => Some(&*f.error),
            None => self.cancelled.as_ref().map(|c| c as _),
        }
    }
}

// Errors of groups cross threads inside `BoxError`s: they must stay `Send + Sync`.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<TaskGroupError>();
    send_sync::<Cancelled>();
};

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
    fn a_cancellation_stays_three_words() {
        // A task that ends cancelled keeps its `Outcome` in its cell (benchmark B9):
        // the `TaskInfo` reasons are one pointer, so the explicit reason's text is
        // the biggest payload.
        assert_eq!(size_of::<TaskInfo>(), 8);
        assert_eq!(size_of::<Cancelled>(), 24);
        assert_eq!(size_of::<Result<(), Cancelled>>(), 24);
        assert_eq!(size_of::<crate::Outcome<(), Cancelled>>(), 32);
        let t = TaskInfo::new(7, Some("worker".into()));
        assert_eq!((t.id(), t.name()), (7, Some("worker")));
        assert_eq!(t.to_string(), "task `worker` (#7)");
        assert_eq!(
            format!("{t:?}"),
            r#"TaskInfo { id: 7, name: Some("worker") }"#
        );
        assert_eq!(
            t,
            TaskInfo::new(7, Some("worker".into())),
            "compared by value"
        );
        assert_ne!(t, TaskInfo::new(7, None));
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

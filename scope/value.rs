//! Children that hand back a value: [`TaskGroup::spawn_with_value`] and [`ChildValue`].
//!
//! The child runs as an ordinary child of its group (the group's rules apply
//! unchanged: its error cancels the siblings and is reported by the group); beside it,
//! a `oneshot` channel carries its value to the [`ChildValue`] handle. The child's end
//! is sent as `Ok(value)` or as the way it ended without one; if the child is dropped
//! or panics, the sender is dropped and the handle reports [`ChildError::Lost`].
//! Awaiting the handle is the oneshot's receive: a checkpoint, and a value already
//! delivered is kept through a cancel.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::group::{SpawnError, TaskGroup, TaskHandle};
use crate::runtime::cancel::{BoxError, CancelError, Cancelled};
use crate::runtime::sync::{OneshotReceiver, oneshot};

/// How a child ended without a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NoValue {
    Failed,
    Cancelled,
}

impl TaskGroup {
    /// Spawns a child whose value can be awaited through the returned [`ChildValue`].
    ///
    /// The child is an ordinary child of the group: if it fails, its error cancels the
    /// group and is reported by the group (the handle only says
    /// [`ChildError::Failed`]); if it is cancelled, the handle says
    /// [`ChildError::ChildCancelled`]. The handle can be awaited inside the group's
    /// body, in another child, or after the group has ended; dropping it changes
    /// nothing for the child.
    ///
    /// ```
    /// use scope_runtime::{sleep, task_group};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
    ///     let total = task_group(|tg| async move {
    ///         let parts: Vec<_> = (1..=3u64)
    ///             .map(|i| {
    ///                 tg.spawn_with_value(async move {
    ///                     sleep(Duration::from_secs(i)).await?;
    ///                     Ok(i * 10)
    ///                 })
    ///             })
    ///             .collect();
    ///         let mut total = 0;
    ///         for part in parts {
    ///             total += part.await?;
    ///         }
    ///         Ok(total)
    ///     })
    ///     .await
    ///     .unwrap();
    ///     assert_eq!(total, Some(60));
    /// });
    /// ```
    ///
    /// To take values in the order the children finish, put the handles in a
    /// `futures::stream::FuturesUnordered`: each handle is a checkpoint, woken by a
    /// cancel also there.
    ///
    /// # Panics
    ///
    /// If the group is not open (see [`try_spawn_with_value`](Self::try_spawn_with_value)).
    #[track_caller]
    pub fn spawn_with_value<F, T>(&self, fut: F) -> ChildValue<T>
    where
        F: Future<Output = Result<T, BoxError>> + 'static, // fix: async move { Ok(f.await?) }
        T: 'static,
    {
        self.try_spawn_with_value(fut)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`spawn_with_value`](Self::spawn_with_value), or says why the group cannot
    /// take a child.
    #[track_caller]
    pub fn try_spawn_with_value<F, T>(&self, fut: F) -> Result<ChildValue<T>, SpawnError>
    where
        F: Future<Output = Result<T, BoxError>> + 'static,
        T: 'static,
    {
        let (tx, rx) = oneshot();
        let handle = self.try_spawn(async move {
            match fut.await {
                Ok(v) => {
                    // Nobody may be waiting: the value is then simply dropped.
                    let _ = tx.send(Ok(v));
                    Ok(())
                }
                Err(e) => {
                    let end = if e.as_cancelled().is_some() {
                        NoValue::Cancelled
                    } else {
                        NoValue::Failed
                    };
                    let _ = tx.send(Err(end));
                    Err(e)
                }
            }
        })?;
        Ok(ChildValue { rx, handle })
    }
}

/// The value of a child spawned with [`TaskGroup::spawn_with_value`]: await it.
///
/// Awaiting is a checkpoint: if the awaiting code is cancelled it returns
/// [`ChildError::Cancelled`] (the child keeps running, and awaiting the handle again
/// later still gives its value); a value that had arrived before the cancel is
/// returned instead.
#[must_use = "the child runs anyway; the handle is only needed for its value"]
pub struct ChildValue<T> {
    rx: OneshotReceiver<Result<T, NoValue>>,
    handle: TaskHandle,
}

impl<T> ChildValue<T> {
    /// The child's task handle (to cancel it alone, or ask whether it is alive).
    pub fn handle(&self) -> &TaskHandle {
        &self.handle
    }

    /// The value if the child has ended, without waiting (not a checkpoint).
    pub fn try_value(&mut self) -> Option<Result<T, ChildError>> {
        match self.rx.try_recv() {
            Ok(end) => Some(end.map_err(ChildError::from)),
            Err(crate::runtime::sync::TryRecvError::Empty) => None,
            Err(_) => Some(Err(ChildError::Lost)),
        }
    }
}

impl<T> Future for ChildValue<T> {
    type Output = Result<T, ChildError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let rx = Pin::new(&mut self.rx);
        Poll::Ready(match std::task::ready!(rx.poll(cx)) {
            Ok(Some(end)) => end.map_err(ChildError::from),
            Ok(None) => Err(ChildError::Lost),
            Err(c) => Err(ChildError::Cancelled(c)),
        })
    }
}

impl<T> fmt::Debug for ChildValue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildValue")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

/// Why awaiting a [`ChildValue`] gave no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChildError {
    /// The code awaiting the value was cancelled. The child is not affected by this.
    Cancelled(Cancelled),
    /// The child returned an error; its group reports the error itself.
    Failed,
    /// The child was cancelled (its error carried a `Cancelled`).
    ChildCancelled,
    /// The child ended without returning: it panicked, or it was dropped (its group's
    /// future was dropped before the end).
    Lost,
}

impl From<NoValue> for ChildError {
    fn from(n: NoValue) -> ChildError {
        match n {
            NoValue::Failed => ChildError::Failed,
            NoValue::Cancelled => ChildError::ChildCancelled,
        }
    }
}

impl fmt::Display for ChildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChildError::Cancelled(c) => c.fmt(f),
            ChildError::Failed => {
                f.write_str("the child failed (its task group reports the error)")
            }
            ChildError::ChildCancelled => {
                f.write_str("the child was cancelled before it returned a value")
            }
            ChildError::Lost => {
                f.write_str("the child ended without returning (it panicked or was dropped)")
            }
        }
    }
}

impl Error for ChildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            // So a group sees the cancellation through a `BoxError`.
            ChildError::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

impl CancelError for ChildError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            ChildError::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

//! [`TimedOut`]: the error of `fail_after` / `fail_at`.

use std::error::Error;
use std::fmt;
use std::io;

use crate::runtime::cancel::CancelReason;

/// The error of [`fail_after`](crate::fail_after) / [`fail_at`](crate::fail_at): the
/// deadline passed before the body finished.
///
/// ```
/// use scope_runtime::{fail_after, sleep, TimedOut, BoxError};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let r: Result<(), BoxError> = fail_after(Duration::from_secs(1), async {
///         sleep(Duration::from_secs(2)).await?;
///         Ok(())
///     })
///     .await;
///     assert!(r.unwrap_err().downcast_ref::<TimedOut>().is_some());
/// });
/// ```
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

//! [`shielded`]: run a future under a fresh shielded scope, optionally with its own
//! timeout — the "cleanup that must not be cut short by the cancellation that started
//! it, but must not hang forever either" building block (e.g. `io::process` waiting
//! for a terminated child to exit during its grace period).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use super::{CancelError, Deadline, Entered, ScopeState, set_deadline, set_shield};

/// Runs `fut` inside a new scope that is shielded from every cancellation around it
/// and, with `Some(timeout)`, cancelled by its own deadline `timeout` from now.
///
/// * `Ok(Some(value))`: `fut` finished.
/// * `Ok(None)`: the timeout cancelled `fut` and the scope absorbed that `Cancelled`.
/// * `Err(e)`: `fut`'s own error.
///
/// Cancellations of enclosing scopes stay pending (level-triggered): the caller's next
/// checkpoint after this returns sees them.
///
/// # Panics
///
/// Outside a task of a runtime (like entering any cancel scope).
pub(crate) async fn shielded<F, T, E>(timeout: Option<Duration>, fut: F) -> Result<Option<T>, E>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError,
{
    let state = Rc::new(ScopeState::default());
    set_shield(&state, true);
    if let Some(t) = timeout {
        set_deadline(&state, Deadline::After(t));
    }
    let entered = Entered::enter(state);
    let out = {
        let mut fut = pin!(fut);
        poll_fn(|cx| entered.poll_inside(fut.as_mut(), cx)).await
    };
    let cancelled = matches!(&out, Err(e) if e.as_cancelled().is_some());
    if entered.exit(cancelled) && cancelled {
        return Ok(None);
    }
    out.map(Some)
}

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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::shielded;
    use crate::Runtime;
    use crate::runtime::cancel::{Cancelled, check_cancelled};
    use crate::runtime::{current_task, now, sleep};

    /// The shield hides a cancellation already pending around it; only its own
    /// timeout stops the body; the outer cancellation is still there afterwards.
    #[test]
    fn only_the_own_timeout_cuts_a_shielded_body_short() {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        rt.block_on(async {
            current_task().cancel();
            assert!(check_cancelled().is_err());
            let t0 = now();
            let r = shielded(Some(Duration::from_secs(2)), async {
                sleep(Duration::from_secs(5)).await?;
                Ok::<_, Cancelled>(())
            })
            .await;
            assert_eq!(r, Ok(None), "the own timeout, absorbed");
            assert_eq!(now() - t0, Duration::from_secs(2));
            let r = shielded(None, async {
                sleep(Duration::from_secs(1)).await?;
                Ok::<_, Cancelled>(7)
            })
            .await;
            assert_eq!(r, Ok(Some(7)));
            assert!(
                check_cancelled().is_err(),
                "the outer cancel is still pending"
            );
            current_task().uncancel();
        });
        assert_eq!(rt.resources().timers, 0);
        assert_eq!(rt.resources().scope_nodes, 0);
    }
}

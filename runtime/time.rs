//! Time: [`sleep`], [`sleep_until`], [`now`], and [`yield_now`].

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::cancel::{CancelWait, Cancelled};
use super::clock;
use super::core::{Core, try_with_core, with_core};
use super::observe::WaitingOn;
use super::timer::{TimerEntry, TimerKey};

/// The current time of the runtime's clock (virtual when the clock is paused).
///
/// # Panics
///
/// Outside a runtime.
pub fn now() -> Instant {
    with_core(|core| core.now())
}

/// Waits until `duration` has passed. A checkpoint: fails with `Cancelled` (at once,
/// or when the cancel arrives) if the calling code is cancelled. `Duration::MAX`
/// sleeps forever.
///
/// ```
/// use std::time::Duration;
/// scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
///     let t0 = scope_runtime::now();
///     scope_runtime::sleep(Duration::from_secs(3600)).await.unwrap();
///     assert_eq!(scope_runtime::now() - t0, Duration::from_secs(3600));
/// });
/// ```
#[track_caller]
pub fn sleep(duration: Duration) -> Sleep {
    let deadline = with_core(|core| clock::deadline_after(core.now(), duration));
    Sleep {
        deadline,
        timer: None,
        wait: CancelWait::new(),
    }
}

/// Waits until `deadline`. A checkpoint, like [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline: Some(deadline),
        timer: None,
        wait: CancelWait::new(),
    }
}

/// The future of [`sleep`] / [`sleep_until`]. Dropping it removes its timer.
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Sleep {
    /// `None`: never.
    deadline: Option<Instant>,
    timer: Option<TimerKey>,
    /// Wakes this sleep (not only its task) when the code around it is cancelled.
    wait: CancelWait,
}

impl Sleep {
    /// When it fires (`None`: never).
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Forgets the timer and the cancel registration (of `core`: a timer of another
    /// runtime stays in that runtime's store until it fires, a stale wake).
    fn disarm(&mut self, core: &Core) {
        if let Some(k) = self.timer.take() {
            core.remove_timer(k);
        }
        self.wait.disarm_in(core);
    }
}

impl Future for Sleep {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        with_core(|core| {
            if let Err(c) = this.wait.check_in(core) {
                this.disarm(core);
                return Poll::Ready(Err(c));
            }
            // Our timer is gone from this runtime's store: it fired, which it does
            // only once its deadline has passed — done, without reading the clock.
            let pending = match this.timer {
                Some(k) if k.runtime() == core.id() => core.update_timer_waker(k, cx.waker()),
                _ => true,
            };
            if !pending {
                this.timer = None;
                this.disarm(core);
                return Poll::Ready(Ok(()));
            }
            // Passed by the clock's latest reading (`sleep(ZERO)`, a deadline in the
            // past): done now. One that passed since then is found by the timer at
            // the run loop's next turn, without a clock read here.
            if this.deadline.is_some_and(|d| core.known_passed(d)) {
                this.disarm(core);
                return Poll::Ready(Ok(()));
            }
            match (this.timer, this.deadline) {
                (Some(k), _) if k.runtime() == core.id() => {}
                // No timer yet, or one of another runtime this sleep was polled on
                // first (that store keeps it until it fires: a stale wake there).
                (_, Some(at)) => {
                    let target = core.wake_by(cx.waker()).to_target();
                    this.timer = Some(core.insert_timer(at, TimerEntry::Wake(target)));
                }
                (_, None) => {}
            }
            this.wait.arm_in(
                core,
                cx.waker(),
                WaitingOn::Sleep {
                    until: this.deadline,
                },
            );
            Poll::Pending
        })
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if self.timer.is_some() || self.wait.site().is_some() {
            try_with_core(|core| self.disarm(core));
        }
    }
}

/// Yields once to the other ready tasks. Not a cancellation point (see
/// [`checkpoint`](crate::checkpoint) for one).
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    /// On the real clock a sleep's first poll does not read the clock: a deadline that
    /// passed after the latest reading is found by its timer at the next turn.
    #[test]
    #[cfg_attr(miri, ignore)] // real time
    fn a_sleep_whose_deadline_passed_before_its_first_poll_still_ends() {
        use std::time::{Duration, Instant};
        let rt = crate::Runtime::new().unwrap();
        let late = rt.block_on(async {
            let s = super::sleep(Duration::from_millis(1));
            std::thread::sleep(Duration::from_millis(3)); // no reading meanwhile
            let t0 = Instant::now();
            s.await.unwrap();
            t0.elapsed()
        });
        assert!(
            late < Duration::from_secs(1),
            "ended {late:?} after its poll"
        );
    }

    /// Every sleeping task carries a `Sleep` in its future, and futures are copied when
    /// spawned: keep it small (deadline, timer key, cancel registration; 16 bytes each).
    #[test]
    fn sleep_stays_small() {
        assert!(std::mem::size_of::<super::Sleep>() <= 48);
    }
}

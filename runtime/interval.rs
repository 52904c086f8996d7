//! Periodic ticks: [`interval`], [`interval_at`], [`Interval`] and what to do with
//! ticks a slow consumer missed ([`MissedTickPolicy`]).
//!
//! An `Interval` is a schedule (the instant of its next tick, a period, a policy) plus
//! one [`Sleep`] for that next instant, so waiting for a tick is exactly a sleep: a
//! checkpoint, woken by a cancellation, virtual on the paused clock. The schedule only
//! moves when a tick is returned, so a cancelled or dropped wait loses no tick.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use futures_core::Stream;
use futures_core::stream::FusedStream;

use super::cancel::Cancelled;
use super::time::{Sleep, now, sleep_until};

/// What an [`Interval`] does when its consumer was so late that one or more ticks were
/// missed: the instant of the following tick had already passed when a tick was
/// taken.
///
/// A tick taken late by less than a period is not a missed tick: it is returned as
/// soon as it is asked for, and the next one keeps its instant on the original
/// schedule, whatever the policy. (So the small delay of every real timer never makes
/// the schedule drift.)
///
/// Take a period of 10 ms from `t0`, and a consumer that takes the tick of `t0`, then
/// is busy until `t0 + 35 ms`:
///
/// | policy | ticks returned at `t0 + 35` | following ticks |
/// |---|---|---|
/// | [`Burst`](Self::Burst) | those of `t0+10`, `t0+20`, `t0+30`, back to back | `t0+40`, `t0+50`, ... |
/// | [`Delay`](Self::Delay) | that of `t0+10` | `t0+45`, `t0+55`, ... |
/// | [`Skip`](Self::Skip) | that of `t0+10` | `t0+40`, `t0+50`, ... |
///
/// The instant a tick returns is always the one it was scheduled for (here `t0+10`
/// for the late tick), not the moment it was taken.
///
/// ```
/// use scope_runtime::{MissedTickPolicy, interval, now, sleep};
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let ms = Duration::from_millis;
///     let t0 = now();
///     let mut ticks = interval(ms(10)).with_missed_tick_policy(MissedTickPolicy::Skip);
///     assert_eq!(ticks.tick().await?, t0);
///     sleep(ms(35)).await?; // busy: the ticks of t0+20 and t0+30 are missed
///     assert_eq!(ticks.tick().await?, t0 + ms(10)); // returned at once, late
///     assert_eq!(ticks.tick().await?, t0 + ms(40)); // back on the grid
///     assert_eq!(now(), t0 + ms(40));
///     Ok::<_, scope_runtime::Cancelled>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MissedTickPolicy {
    /// Catch up: the missed ticks are returned back to back (without waiting, so
    /// without letting other tasks run in between), each with its own scheduled
    /// instant, until the schedule is in the future again: over a long run
    /// there is one tick per period of elapsed time, however late the consumer was.
    /// The default.
    #[default]
    Burst,
    /// Start again from now: the next tick comes one period after the late tick was
    /// taken, and the schedule continues from there. Ticks are never closer together
    /// than a period after a miss; the missed ones are dropped.
    Delay,
    /// Stay on the original grid: the missed ticks are dropped and the next tick is
    /// the first instant of the original schedule after the moment the late tick was
    /// taken.
    Skip,
}

/// Creates an [`Interval`] whose first tick is **now** (it completes at once) and the
/// next ones every `period` after it. Missed ticks are caught up
/// ([`MissedTickPolicy::Burst`]); see [`Interval::with_missed_tick_policy`].
///
/// Waiting for a tick is a checkpoint, like [`sleep`](crate::sleep).
///
/// ```
/// use scope_runtime::{interval, now};
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let t0 = now();
///     let mut every_second = interval(Duration::from_secs(1));
///     for i in 0..3 {
///         let at = every_second.tick().await?;
///         assert_eq!(at, t0 + Duration::from_secs(i)); // the first one at once
///         assert_eq!(now(), at);
///     }
///     Ok::<_, scope_runtime::Cancelled>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
///
/// If `period` is zero, and outside a runtime (it reads the runtime's clock).
#[track_caller]
pub fn interval(period: Duration) -> Interval {
    assert_period(period);
    interval_at(now(), period)
}

/// Creates an [`Interval`] whose first tick is at `start` and the next ones every
/// `period` after it. A `start` in the past makes the ticks since then late ones
/// (see [`MissedTickPolicy`]). A period too long for `Instant` to represent means
/// that the first tick is the only one.
///
/// ```
/// use scope_runtime::{interval_at, now};
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let start = now() + Duration::from_secs(5);
///     let mut ticks = interval_at(start, Duration::from_secs(1));
///     assert_eq!(ticks.tick().await?, start);
///     assert_eq!(now(), start);
///     Ok::<_, scope_runtime::Cancelled>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
///
/// If `period` is zero. (It can be created outside a runtime; it must be polled in
/// one.)
#[track_caller]
pub fn interval_at(start: Instant, period: Duration) -> Interval {
    assert_period(period);
    Interval {
        next: Some(start),
        period,
        policy: MissedTickPolicy::default(),
        sleep: None,
    }
}

#[track_caller]
fn assert_period(period: Duration) {
    assert!(
        !period.is_zero(),
        "scope_runtime::interval: the period must be longer than zero"
    );
}

/// Ticks at a fixed period: made by [`interval`] or [`interval_at`].
///
/// Take ticks with [`tick`](Self::tick), or use it as a [`Stream`] of
/// `Result<Instant, Cancelled>` that never ends. Each tick returns the instant it was
/// scheduled for.
///
/// # Cancellation
///
/// Waiting for a tick is a checkpoint with the runtime's usual rules. If the code
/// waiting is cancelled — before the wait, or while it waits (the cancellation wakes
/// the wait itself, also inside `futures` combinators) — it returns `Err(Cancelled)`
/// and **no tick is used up**: the tick that was due is returned by the first wait
/// that is not cancelled. The cancellation stays in force until control leaves the
/// cancelled scope, so every wait inside it fails again: a loop like
/// `loop { ticks.tick().await?; ... }` (or `while let Some(t) = ticks.next().await {
/// t?; ... }`) leaves at the first one, and a loop that ignores the error spins. A
/// tick future can be dropped at any time without losing a tick.
///
/// ```
/// use futures::StreamExt;
/// use scope_runtime::{Cancelled, interval, move_on_after, now};
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let t0 = now();
///     let mut ticks = interval(Duration::from_secs(1));
///     let mut seen = 0;
///     // The deadline cancels the wait for the tick of t0+3.5 s... (there is none)
///     let r = move_on_after(Duration::from_millis(3500), async {
///         while let Some(t) = ticks.next().await {
///             t?;
///             seen += 1;
///         }
///         Ok::<_, Cancelled>(())
///     })
///     .await;
///     assert_eq!(r, Ok(None)); // ...and the scope absorbed it
///     assert_eq!(seen, 4); // t0, t0+1, t0+2, t0+3
///     // Outside the scope the schedule goes on.
///     assert_eq!(ticks.tick().await?, t0 + Duration::from_secs(4));
///     Ok::<_, Cancelled>(())
/// })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Interval {
    /// The instant of the next tick; `None`: no more ticks (the schedule passed what
    /// `Instant` can hold).
    next: Option<Instant>,
    period: Duration,
    policy: MissedTickPolicy,
    /// The sleep until `next`, made at the first poll after the schedule moved.
    sleep: Option<Sleep>,
}

impl fmt::Debug for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interval")
            .field("next", &self.next)
            .field("period", &self.period)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Interval {
    /// Waits for the next tick and returns the instant it was scheduled for. A
    /// checkpoint: cancelled, it returns `Err(Cancelled)` and the tick stays due.
    /// Dropping the future before it completes loses no tick either.
    ///
    /// ```
    /// use scope_runtime::{CancelScope, Cancelled, interval, now};
    /// use std::time::Duration;
    ///
    /// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
    /// rt.block_on(async {
    ///     let t0 = now();
    ///     let mut ticks = interval(Duration::from_secs(1));
    ///     let scope = CancelScope::new();
    ///     scope.cancel();
    ///     // Cancelled: the tick of t0 is due, but not taken...
    ///     let r = scope.run(async { ticks.tick().await }).await;
    ///     assert_eq!(r, Ok(None));
    ///     // ...so it is still there.
    ///     assert_eq!(ticks.tick().await?, t0);
    ///     Ok::<_, Cancelled>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn tick(&mut self) -> Result<Instant, Cancelled> {
        poll_fn(|cx| self.poll_tick(cx)).await
    }

    /// The poll form of [`tick`](Self::tick), for hand-written futures and streams.
    ///
    /// ```
    /// use scope_runtime::interval;
    /// use std::future::{Future, poll_fn};
    /// use std::task::Poll;
    /// use std::time::Duration;
    ///
    /// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
    /// rt.block_on(async {
    ///     let mut ticks = interval(Duration::from_secs(1));
    ///     let (first, second) = poll_fn(|cx| {
    ///         let first = ticks.poll_tick(cx).is_ready(); // due now
    ///         let second = ticks.poll_tick(cx).is_ready(); // due in 1 s
    ///         Poll::Ready((first, second))
    ///     })
    ///     .await;
    ///     assert!(first && !second);
    /// });
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn poll_tick(&mut self, cx: &mut Context<'_>) -> Poll<Result<Instant, Cancelled>> {
        // No next tick: a sleep that never ends (still a checkpoint).
        let sleep = self.sleep.get_or_insert_with(|| match self.next {
            Some(at) => sleep_until(at),
            None => super::time::sleep(Duration::MAX),
        });
        ready!(Pin::new(sleep).poll(cx))?;
        self.sleep = None;
        let at = self.next.expect("a sleep with no deadline never completes");
        self.next = self.following(at, now());
        Poll::Ready(Ok(at))
    }

    /// The instant of the tick after the one scheduled at `at`, taken at `now`.
    fn following(&self, at: Instant, now: Instant) -> Option<Instant> {
        let on_grid = at.checked_add(self.period)?;
        if on_grid > now {
            return Some(on_grid); // on time, or late by less than a period
        }
        match self.policy {
            MissedTickPolicy::Burst => Some(on_grid),
            MissedTickPolicy::Delay => now.checked_add(self.period),
            MissedTickPolicy::Skip => {
                // The first instant `at + k * period` after `now` (k >= 2 here).
                let period = self.period.as_nanos();
                let ahead = ((now - at).as_nanos() / period + 1) * period;
                let secs = u64::try_from(ahead / 1_000_000_000).ok()?;
                let nanos = (ahead % 1_000_000_000) as u32; // < 10^9
                at.checked_add(Duration::new(secs, nanos))
            }
        }
    }

    /// The period between ticks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ticks = scope_runtime::interval_at(std::time::Instant::now(), Duration::from_secs(2));
    /// assert_eq!(ticks.period(), Duration::from_secs(2));
    /// ```
    pub fn period(&self) -> Duration {
        self.period
    }

    /// The instant of the next tick (due already if it is not in the future); `None`
    /// if there is none (the schedule went past what `Instant` can represent).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let ticks = scope_runtime::interval_at(start, Duration::from_secs(2));
    /// assert_eq!(ticks.next_tick(), Some(start));
    /// ```
    pub fn next_tick(&self) -> Option<Instant> {
        self.next
    }

    /// What the interval does with missed ticks.
    ///
    /// ```
    /// use scope_runtime::{MissedTickPolicy, interval_at};
    /// use std::time::{Duration, Instant};
    ///
    /// let ticks = interval_at(Instant::now(), Duration::from_secs(1));
    /// assert_eq!(ticks.missed_tick_policy(), MissedTickPolicy::Burst);
    /// ```
    pub fn missed_tick_policy(&self) -> MissedTickPolicy {
        self.policy
    }

    /// Sets what the interval does with missed ticks from now on.
    ///
    /// ```
    /// use scope_runtime::{MissedTickPolicy, interval_at};
    /// use std::time::{Duration, Instant};
    ///
    /// let mut ticks = interval_at(Instant::now(), Duration::from_secs(1));
    /// ticks.set_missed_tick_policy(MissedTickPolicy::Delay);
    /// assert_eq!(ticks.missed_tick_policy(), MissedTickPolicy::Delay);
    /// ```
    pub fn set_missed_tick_policy(&mut self, policy: MissedTickPolicy) {
        self.policy = policy;
    }

    /// [`set_missed_tick_policy`](Self::set_missed_tick_policy), in builder style.
    ///
    /// ```
    /// use scope_runtime::{MissedTickPolicy, interval_at};
    /// use std::time::{Duration, Instant};
    ///
    /// let ticks = interval_at(Instant::now(), Duration::from_secs(1))
    ///     .with_missed_tick_policy(MissedTickPolicy::Skip);
    /// assert_eq!(ticks.missed_tick_policy(), MissedTickPolicy::Skip);
    /// ```
    pub fn with_missed_tick_policy(mut self, policy: MissedTickPolicy) -> Interval {
        self.policy = policy;
        self
    }

    /// Starts the schedule again: the next tick is one period from now, the following
    /// ones every period after it.
    ///
    /// ```
    /// use scope_runtime::{interval, now, sleep};
    /// use std::time::Duration;
    ///
    /// let rt = scope_runtime::Runtime::builder().paused_clock(true).build()?;
    /// rt.block_on(async {
    ///     let s = Duration::from_secs;
    ///     let mut ticks = interval(s(10));
    ///     ticks.tick().await?;
    ///     sleep(s(3)).await?;
    ///     ticks.reset();
    ///     assert_eq!(ticks.next_tick(), Some(now() + s(10)));
    ///     Ok::<_, scope_runtime::Cancelled>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn reset(&mut self) {
        self.next = now().checked_add(self.period);
        self.sleep = None;
    }
}

/// An endless stream of ticks: each item is what [`Interval::tick`] returns, with the
/// same cancellation rules (see [`Interval`]).
impl Stream for Interval {
    type Item = Result<Instant, Cancelled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_tick(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Never terminated: an interval ticks for ever (so `futures::select!` can take
/// `ticks.next()` directly).
impl FusedStream for Interval {
    fn is_terminated(&self) -> bool {
        false
    }
}

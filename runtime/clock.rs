//! The runtime's clock: real, or paused (virtual) for deterministic tests, and the
//! test-clock controls ([`advance`], [`jump`], [`wait_all_tasks_blocked`]).
//!
//! A paused clock starts at the real `Instant::now()` of the moment the runtime was
//! built and only moves when the run loop finds every task idle: it then jumps to the
//! earliest pending timer — at once, or after the runtime has been idle for the
//! *autojump threshold* of real time (`Builder::paused_clock_autojump`). Code under
//! test sees ordinary `std::time::Instant`s, so the same deadlines work on both clocks.
//!
//! The run loop side (idle waiters, when to jump) is in `core.rs` (`Core::park`).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::cancel::{CancelWait, Cancelled};
use super::core::{Core, RuntimeId, try_with_core, with_core};
use super::observe::WaitingOn;

/// Where "now" comes from.
#[derive(Debug)]
pub(crate) struct Clock {
    /// `Some(t)`: paused, the current virtual time is `t`. `None`: real time.
    virtual_now: Option<Cell<Instant>>,
    /// Paused clock only: how long the runtime must have been idle, in real time,
    /// before the clock jumps to the next timer (zero: at once).
    autojump: Duration,
    /// Real clock: the latest time [`Clock::now`] read. Time never goes back, so a
    /// deadline at or before it has passed without a new read (see `known_passed`).
    last_read: Cell<Instant>,
}

impl Clock {
    pub(crate) fn new(paused: bool, autojump: Duration) -> Clock {
        let start = Instant::now();
        Clock {
            virtual_now: paused.then(|| Cell::new(start)),
            autojump: if paused { autojump } else { Duration::ZERO },
            last_read: Cell::new(start),
        }
    }

    /// The autojump threshold (zero on the real clock).
    pub(crate) fn autojump(&self) -> Duration {
        self.autojump
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.virtual_now.is_some()
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.virtual_now {
            Some(t) => t.get(),
            None => {
                let now = Instant::now();
                self.last_read.set(now);
                now
            }
        }
    }

    /// Whether `at` is known to have passed without reading the clock: at or before
    /// the latest reading on the real clock (the run loop reads it every turn to fire
    /// timers; [`Clock::now`] reads it too), at or before the virtual now on a paused
    /// one. A deadline between the latest reading and the real time answers `false`:
    /// its timer fires at the run loop's next turn, which is when a sleep learns it has
    /// passed (a clock read per sleep's first poll saved, benchmark B5s).
    pub(crate) fn known_passed(&self, at: Instant) -> bool {
        match &self.virtual_now {
            Some(t) => at <= t.get(),
            None => at <= self.last_read.get(),
        }
    }

    /// Moves a paused clock forward to `to` (never backwards). No-op on a real clock.
    pub(crate) fn advance_to(&self, to: Instant) {
        if let Some(t) = &self.virtual_now {
            if to > t.get() {
                t.set(to);
            }
        }
    }
}

/// Panics unless `core` runs on the paused clock; `what` names the caller.
#[track_caller]
fn require_paused(core: &Core, what: &str) {
    if !core.clock_paused() {
        panic!(
            "scope_runtime::testing::{what} needs the paused clock: build the runtime with \
             `Runtime::builder().paused_clock(true)` or use `#[scope_runtime::test(paused)]` \
             (the real clock cannot be moved)"
        );
    }
}

/// `now + d` for the test controls, with a clear panic past the last `Instant`.
#[track_caller]
fn target_after(core: &Core, d: Duration, what: &str) -> Instant {
    match core.now().checked_add(d) {
        Some(t) => t,
        None => panic!(
            "scope_runtime::testing::{what}({d:?}): the clock would pass the last \
             representable `Instant`"
        ),
    }
}

/// Moves the paused clock forward by `d` at once, like a machine waking from suspend.
///
/// Nothing runs at the instants in between: every timer that falls due in the jump
/// fires together at the new time, when the calling task next lets the run loop turn
/// (its next `await` that waits, or [`wait_all_tasks_blocked`]). A task woken then
/// sees [`now()`](crate::now) at the end of the jump, and a scope deadline that passed
/// during the jump cancels the code it guards even if a sleep inside it was due
/// earlier. That is what `jump` is for — testing code against a late wake-up, an
/// [`interval`](crate::interval) that missed ticks, timeouts that all expire at once.
/// To let each timer fire at its own instant instead, use [`advance`].
///
/// `jump` is not a checkpoint and does not block.
///
/// # Panics
///
/// Outside a runtime, on the real clock (it cannot be moved), and if the clock would
/// pass the last representable `Instant`.
///
/// ```
/// use scope_runtime::testing::jump;
/// use scope_runtime::{Runtime, now, sleep, spawn, Cancelled};
/// use std::time::Duration;
///
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let t0 = now();
///     let woke_at = spawn(async move {
///         sleep(Duration::from_secs(1)).await?;
///         Ok::<_, Cancelled>(now() - t0)
///     });
///     scope_runtime::yield_now().await; // the sleeper starts its 1 s sleep
///     jump(Duration::from_secs(10));
///     assert_eq!(now() - t0, Duration::from_secs(10));
///     // The 1 s timer fired late, at the end of the jump.
///     let woke_at = woke_at.await.unwrap().unwrap();
///     assert_eq!(woke_at, Duration::from_secs(10));
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn jump(d: Duration) {
    with_core(|core| {
        require_paused(core, "jump");
        let to = target_after(core, d, "jump");
        core.jump_clock_to(to);
    })
}

/// Moves the paused clock forward by `d`, firing every timer on the way at its own
/// instant, and returns once the tasks it woke have run to their next wait.
///
/// Step by step: first every task that is ready runs, at the current time, until all
/// are blocked (as [`wait_all_tasks_blocked`]); then the clock moves to the earliest
/// pending timer, if it falls within `d`, that timer (and every other one due at the
/// same instant) fires, and the tasks it woke run until all are blocked again; and so
/// on. Last, the clock is set to the end of `d`. A task woken by a timer at +1 s
/// therefore sees [`now()`](crate::now) = +1 s and runs before a timer at +2 s fires,
/// exactly as if the time had passed on its own. `advance(Duration::ZERO)` only lets
/// the other tasks run until they are blocked.
///
/// While `advance` runs, it alone moves the paused clock (the run loop does not jump
/// it). Drive the clock from one task at a time.
///
/// It is a checkpoint. In cancelled code it fails with `Cancelled` at once and the
/// clock does not move. If the calling code is cancelled on the way — a deadline
/// around it falls due within `d`, or a task it woke cancels it — it returns
/// `Err(Cancelled)` right then, with the clock at that instant, and the rest of `d`
/// does not pass.
///
/// Compared with [`jump`]: `advance` is time passing normally, only faster; `jump` is
/// time leaping, with everything due firing late, together.
///
/// # Panics
///
/// Outside a runtime and on the real clock, where it is called, and if the clock
/// would pass the last representable `Instant`.
///
/// ```
/// use scope_runtime::testing::advance;
/// use scope_runtime::{Runtime, now, sleep, spawn, Cancelled};
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let t0 = now();
///     let seen = Rc::new(RefCell::new(Vec::new()));
///     for secs in [2, 1] {
///         let seen = seen.clone();
///         spawn(async move {
///             sleep(Duration::from_secs(secs)).await?;
///             seen.borrow_mut().push(now() - t0);
///             Ok::<_, Cancelled>(())
///         });
///     }
///     advance(Duration::from_millis(1500)).await?;
///     // The 1 s sleeper ran, at its own instant; the 2 s one still sleeps.
///     assert_eq!(*seen.borrow(), [Duration::from_secs(1)]);
///     assert_eq!(now() - t0, Duration::from_millis(1500));
///     advance(Duration::from_secs(1)).await?;
///     assert_eq!(*seen.borrow(), [Duration::from_secs(1), Duration::from_secs(2)]);
///     Ok::<(), Cancelled>(())
/// })
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn advance(d: Duration) -> Advance {
    let until = with_core(|core| {
        require_paused(core, "advance");
        target_after(core, d, "advance")
    });
    Advance {
        until,
        idle: IdleWait::new(),
        wait: CancelWait::new(),
    }
}

/// The future of [`advance`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct Advance {
    /// Where the clock ends.
    until: Instant,
    idle: IdleWait,
    wait: CancelWait,
}

impl Future for Advance {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        with_core(|core| {
            if let Err(c) = this.wait.check_in(core) {
                this.idle.forget(core);
                return Poll::Ready(Err(c));
            }
            // Each time every other task is blocked: take the next step.
            while this.idle.settled(core) {
                match core.next_timer_deadline() {
                    Some(at) if at <= this.until => {
                        // The run loop fires the timers due at `at` before it finds the
                        // tasks blocked again.
                        core.jump_clock_to(at);
                    }
                    _ => {
                        core.jump_clock_to(this.until);
                        this.wait.disarm_in(core);
                        return Poll::Ready(Ok(()));
                    }
                }
            }
            this.idle.register(core, cx.waker());
            this.wait
                .arm_in(core, cx.waker(), WaitingOn::AllTasksBlocked);
            Poll::Pending
        })
    }
}

impl Drop for Advance {
    fn drop(&mut self) {
        self.idle.drop_in_place();
    }
}

/// Waits until every other task is blocked: none is ready to run, and the reactor,
/// polled without waiting, has nothing new. The clock does not move (paused or
/// real).
///
/// Use it in tests to let everything spawned so far reach its next wait before you
/// look at the result — a chain of tasks handing a value on, a server that must be
/// listening — without sleeping for a guessed while. Tasks waiting for a timer, for
/// I/O, for a blocking-pool job or for another thread count as blocked, so it can
/// return while a real socket's data is still in flight.
///
/// While a task waits here, the paused clock does not jump to the next timer: the
/// waiting task is woken first (also with an autojump threshold). Several tasks that
/// wait at once are all woken the first time every other task is blocked.
///
/// It is a checkpoint: in cancelled code it fails at once with `Cancelled`, and a
/// cancellation while it waits wakes it with `Cancelled` (its shielded scopes, as
/// for every checkpoint, hide outer cancellations).
///
/// # Panics
///
/// When polled outside a runtime.
///
/// ```
/// use scope_runtime::testing::wait_all_tasks_blocked;
/// use scope_runtime::{Runtime, spawn, Cancelled};
/// use std::cell::Cell;
/// use std::rc::Rc;
///
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let done = Rc::new(Cell::new(false));
///     let d = done.clone();
///     let _h = spawn(async move {
///         for _ in 0..10 {
///             scope_runtime::yield_now().await;
///         }
///         d.set(true);
///         Ok::<_, Cancelled>(())
///     });
///     wait_all_tasks_blocked().await?;
///     assert!(done.get());
///     Ok::<(), Cancelled>(())
/// })
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn wait_all_tasks_blocked() -> WaitAllTasksBlocked {
    WaitAllTasksBlocked {
        idle: IdleWait::new(),
        wait: CancelWait::new(),
    }
}

/// The future of [`wait_all_tasks_blocked`].
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct WaitAllTasksBlocked {
    idle: IdleWait,
    wait: CancelWait,
}

impl Future for WaitAllTasksBlocked {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        with_core(|core| {
            if let Err(c) = this.wait.check_in(core) {
                this.idle.forget(core);
                return Poll::Ready(Err(c));
            }
            if this.idle.settled(core) {
                this.wait.disarm_in(core);
                return Poll::Ready(Ok(()));
            }
            this.idle.register(core, cx.waker());
            this.wait
                .arm_in(core, cx.waker(), WaitingOn::AllTasksBlocked);
            Poll::Pending
        })
    }
}

impl Drop for WaitAllTasksBlocked {
    fn drop(&mut self) {
        self.idle.drop_in_place();
    }
}

/// One registration in the run loop's list of idle waiters (see `Core::park`).
///
/// The run loop wakes the whole list, and starts a new *idle epoch*, each time it finds
/// every task blocked. A waiter registered in epoch `e` has settled once the epoch is
/// past `e`; until then its key in the list is valid and it may update or remove it.
#[derive(Debug)]
struct IdleWait {
    /// `(runtime, key in its list, epoch it was registered in)`.
    reg: Option<(RuntimeId, usize, u64)>,
}

impl IdleWait {
    fn new() -> IdleWait {
        IdleWait { reg: None }
    }

    /// Whether the run loop has found every task blocked since `register`; the
    /// registration is gone if so.
    fn settled(&mut self, core: &Core) -> bool {
        match self.reg {
            Some((rt, _, epoch)) if rt == core.id() && core.idle_epoch() != epoch => {
                self.reg = None;
                true
            }
            _ => false,
        }
    }

    /// Registers (or re-targets) this waiter to be woken through `waker`.
    fn register(&mut self, core: &Core, waker: &std::task::Waker) {
        let prev = match self.reg {
            Some((rt, key, _)) if rt == core.id() => Some(key),
            _ => None,
        };
        let key = core.register_idle_waiter(prev, waker);
        self.reg = Some((core.id(), key, core.idle_epoch()));
    }

    /// Removes the registration, if still pending, from `core`'s list.
    fn forget(&mut self, core: &Core) {
        if let Some((rt, key, epoch)) = self.reg.take() {
            if rt == core.id() && core.idle_epoch() == epoch {
                core.remove_idle_waiter(key);
            }
        }
    }

    fn drop_in_place(&mut self) {
        if self.reg.is_some() {
            try_with_core(|core| self.forget(core));
        }
    }
}

/// `now + d`, or `None` ("never") when the sum does not fit in an `Instant`.
///
/// This is how `Duration::MAX` and other huge timeouts become "no deadline" instead of
/// an overflow panic.
pub(crate) fn deadline_after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_clock_only_moves_forward() {
        let c = Clock::new(true, Duration::ZERO);
        let t0 = c.now();
        c.advance_to(t0 + Duration::from_secs(5));
        assert_eq!(c.now(), t0 + Duration::from_secs(5));
        c.advance_to(t0);
        assert_eq!(c.now(), t0 + Duration::from_secs(5));
    }

    #[test]
    // A real-time spin of 2 ms: under Miri, 2 ms pass between any two lines.
    #[cfg_attr(miri, ignore)]
    fn known_passed_answers_from_the_latest_reading() {
        for paused in [true, false] {
            let c = Clock::new(paused, Duration::ZERO);
            let t0 = c.now();
            assert!(c.known_passed(t0), "paused: {paused}");
            assert!(
                c.known_passed(t0 - Duration::from_secs(1)),
                "paused: {paused}"
            );
            assert!(
                !c.known_passed(t0 + Duration::from_secs(3600)),
                "paused: {paused}"
            );
        }
        // The real clock answers from its latest reading only: a deadline that passed
        // after it is not known to have passed until the clock is read again.
        let c = Clock::new(false, Duration::ZERO);
        let t0 = c.now();
        let later = t0 + Duration::from_millis(2);
        while Instant::now() < later {
            std::hint::spin_loop();
        }
        assert!(!c.known_passed(later), "answered without a new reading");
        assert!(c.now() >= later);
        assert!(c.known_passed(later), "the new reading counts");
        // A paused clock moves only when told.
        let p = Clock::new(true, Duration::ZERO);
        let t = p.now() + Duration::from_secs(5);
        assert!(!p.known_passed(t));
        p.advance_to(t);
        assert!(p.known_passed(t));
    }

    #[test]
    fn huge_durations_mean_never() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::MAX), None);
        assert_eq!(deadline_after(now, Duration::ZERO), Some(now));
    }
}

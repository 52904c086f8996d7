//! The runtime's clock: real, or paused (virtual) for deterministic tests.
//!
//! A paused clock starts at the real `Instant::now()` of the moment the runtime was
//! built and only moves when the run loop finds every task idle: it then jumps to the
//! earliest pending timer. Code under test sees ordinary `std::time::Instant`s, so the
//! same deadlines work on both clocks.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// Where "now" comes from.
#[derive(Debug)]
pub(crate) struct Clock {
    /// `Some(t)`: paused, the current virtual time is `t`. `None`: real time.
    virtual_now: Option<Cell<Instant>>,
}

impl Clock {
    pub(crate) fn new(paused: bool) -> Clock {
        Clock {
            virtual_now: paused.then(|| Cell::new(Instant::now())),
        }
    }

    pub(crate) fn is_paused(&self) -> bool {
        self.virtual_now.is_some()
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.virtual_now {
            Some(t) => t.get(),
            None => Instant::now(),
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
        let c = Clock::new(true);
        let t0 = c.now();
        c.advance_to(t0 + Duration::from_secs(5));
        assert_eq!(c.now(), t0 + Duration::from_secs(5));
        c.advance_to(t0);
        assert_eq!(c.now(), t0 + Duration::from_secs(5));
    }

    #[test]
    fn huge_durations_mean_never() {
        let now = Instant::now();
        assert_eq!(deadline_after(now, Duration::MAX), None);
        assert_eq!(deadline_after(now, Duration::ZERO), Some(now));
    }
}

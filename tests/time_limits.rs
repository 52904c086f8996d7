//! Time at its limits (issue 16): deadlines far beyond any real wait, `Duration::MAX`,
//! and `Instant`s near the end of their range never saturate into an early (or a
//! never-ending busy) wake-up. All on the paused clock, so the jumps are exact.

use std::time::{Duration, Instant};

use scope_runtime::{
    CancelScope, Cancelled, Runtime, current_effective_deadline, move_on_after, now, sleep,
    sleep_until,
};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

/// 2^40 s is about 34,800 years: past the timer store's 584-year `u64` nanoseconds.
const FAR: Duration = Duration::from_secs(1 << 40);

#[test]
fn a_sleep_of_2_pow_40_seconds_ends_exactly_then() {
    paused().block_on(async {
        let t0 = now();
        sleep(FAR).await.unwrap();
        assert_eq!(now() - t0, FAR);
        // The runtime goes on working after the jump.
        sleep(Duration::from_secs(1)).await.unwrap();
        assert_eq!(now() - t0, FAR + Duration::from_secs(1));
    });
}

#[test]
fn a_scope_deadline_of_2_pow_40_seconds_fires_then_and_not_earlier() {
    paused().block_on(async {
        let t0 = now();
        let scope = CancelScope::new().with_timeout(FAR);
        let r = scope
            .run(async {
                // Wakes 584 years in (where a saturating timer would have fired
                // the deadline) and sees no cancellation yet.
                sleep(Duration::from_secs(1 << 35)).await?;
                assert_eq!(now() - t0, Duration::from_secs(1 << 35));
                assert!(scope_runtime::check_cancelled().is_ok());
                sleep(Duration::MAX).await?;
                Ok::<_, Cancelled>(())
            })
            .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, FAR);
        assert!(scope.cancel_called() && scope.cancelled_caught());
    });
}

#[test]
fn far_deadlines_are_ordered_among_themselves() {
    paused().block_on(async {
        let t0 = now();
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let l = log.clone();
        scope_runtime::task_group(|tg| async move {
            for (name, secs) in [("c", 3u64), ("a", 1), ("b", 2)] {
                let log = l.clone();
                tg.spawn(async move {
                    sleep(FAR + Duration::from_secs(secs)).await?;
                    log.borrow_mut().push((name, now() - t0));
                    Ok(())
                });
            }
            Ok(())
        })
        .await
        .unwrap();
        let s = Duration::from_secs;
        assert_eq!(
            *log.borrow(),
            [("a", FAR + s(1)), ("b", FAR + s(2)), ("c", FAR + s(3))]
        );
    });
}

#[test]
fn duration_max_means_never() {
    paused().block_on(async {
        let t0 = now();
        // No deadline at all: the effective deadline says "none", and the sleep
        // inside only ends by the outer one-second scope.
        let r = move_on_after(Duration::from_secs(1), async {
            move_on_after(Duration::MAX, async {
                assert_eq!(
                    current_effective_deadline(),
                    Some(t0 + Duration::from_secs(1)),
                    "Duration::MAX adds no deadline of its own"
                );
                sleep(Duration::MAX).await?;
                Ok::<_, Cancelled>(())
            })
            .await
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, Duration::from_secs(1));
        let scope = CancelScope::new().with_timeout(Duration::MAX);
        scope
            .run(async {
                assert_eq!(current_effective_deadline(), None);
                Ok::<_, Cancelled>(())
            })
            .await
            .unwrap();
        assert_eq!(scope.deadline(), None);
    });
}

/// The latest `Instant` this platform can represent from `t`: `Instant` has no MAX.
fn latest_instant(t: Instant) -> Instant {
    let mut step = Duration::MAX;
    let mut at = t;
    while step > Duration::ZERO {
        match at.checked_add(step) {
            Some(later) => at = later,
            None => step /= 2,
        }
    }
    at
}

#[test]
fn instants_near_the_end_of_their_range() {
    paused().block_on(async {
        let t0 = now();
        let last = latest_instant(t0);
        assert!(
            last - t0 > FAR,
            "Instant reaches beyond the test's far deadlines"
        );
        // A scope whose deadline is the last Instant: reported as set, never reached
        // by a one-second wait.
        let scope = CancelScope::new().with_deadline(last);
        let r = scope
            .run(async {
                assert_eq!(current_effective_deadline(), Some(last));
                sleep(Duration::from_secs(1)).await?;
                Ok::<_, Cancelled>(7)
            })
            .await;
        assert_eq!(r, Ok(Some(7)));
        assert!(!scope.cancel_called());
        // A sleep until it, cut short by a nearer deadline.
        let r = move_on_after(Duration::from_secs(2), async {
            sleep_until(last).await?;
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, Duration::from_secs(3));
        // And one that is reached: the paused clock jumps to the last Instant.
        sleep_until(last).await.unwrap();
        assert_eq!(now(), last);
        // From there every timeout overflows and so means "never".
        assert_eq!(sleep(Duration::from_nanos(1)).deadline(), None);
        let r = move_on_after(Duration::from_secs(1), async {
            assert_eq!(current_effective_deadline(), None);
            Ok::<_, Cancelled>(1)
        })
        .await;
        assert_eq!(r, Ok(Some(1)));
    });
}

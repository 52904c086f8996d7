//! Tests of `scope_runtime::sync::Barrier`: rounds, one leader per round, a cancelled
//! waiter does not count (the others wait for a replacement), a released waiter keeps
//! its release even if cancelled in the same turn, and drops.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::poll;
use scope_runtime::sync::Barrier;
use scope_runtime::{CancelScope, Runtime, move_on_after, now, sleep, task_group};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn rounds_release_together_with_one_leader_each() {
    paused().block_on(async {
        let barrier = Rc::new(Barrier::new(3));
        let log = Rc::new(RefCell::new(Vec::new()));
        let t0 = now();
        let (b, l) = (barrier.clone(), log.clone());
        task_group(|tg| async move {
            for i in 0..6u64 {
                let (b, l) = (b.clone(), l.clone());
                tg.spawn(async move {
                    sleep(Duration::from_secs(i + 1)).await?;
                    let r = b.wait().await?;
                    l.borrow_mut().push(((now() - t0).as_secs(), r.is_leader()));
                    Ok(())
                });
            }
            Ok(())
        })
        .await
        .unwrap();
        let mut log = log.take();
        log.sort();
        // Round 1 completes at 3 s, round 2 at 6 s; the last arrival leads.
        assert_eq!(
            log,
            [
                (3, false),
                (3, false),
                (3, true),
                (6, false),
                (6, false),
                (6, true)
            ]
        );
        drop(barrier);
    });
}

#[test]
fn zero_and_one_never_wait() {
    paused().block_on(async {
        for n in [0, 1] {
            let b = Barrier::new(n);
            assert!(b.wait().await.unwrap().is_leader());
            assert!(b.wait().await.unwrap().is_leader());
        }
    });
}

#[test]
fn a_cancelled_waiter_does_not_count() {
    paused().block_on(async {
        let b = Rc::new(Barrier::new(2));
        let t0 = now();
        // Waits 1 s, then gives up: no arrival is left behind.
        assert_eq!(
            move_on_after(Duration::from_secs(1), b.wait()).await,
            Ok(None)
        );
        let b2 = b.clone();
        task_group(|tg| async move {
            tg.spawn(async move {
                let r = b2.wait().await?;
                assert_eq!(
                    now() - t0,
                    Duration::from_secs(5),
                    "waited for a real partner"
                );
                assert!(!r.is_leader());
                Ok(())
            });
            sleep(Duration::from_secs(4)).await?;
            assert!(b.wait().await?.is_leader());
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_waiter_cancelled_in_the_same_turn_as_its_release_keeps_it() {
    paused().block_on(async {
        let b = Rc::new(Barrier::new(2));
        let scope = CancelScope::new();
        let (b2, s2) = (b.clone(), scope.clone());
        let r = task_group(|tg| async move {
            let released = Rc::new(RefCell::new(None));
            let rel = released.clone();
            tg.spawn(async move {
                let r = s2.run(b2.wait()).await;
                *rel.borrow_mut() = Some(r);
                Ok(())
            });
            sleep(Duration::from_secs(1)).await?;
            // Release the waiter, then cancel it before it runs again.
            assert!(b.wait().await?.is_leader());
            scope.cancel();
            sleep(Duration::from_secs(1)).await?;
            let r = released.borrow_mut().take().unwrap();
            assert!(matches!(r, Ok(Some(w)) if !w.is_leader()), "{r:?}");
            Ok(())
        })
        .await;
        r.unwrap();
    });
}

#[test]
fn a_waiter_cancelled_before_the_last_arrival_is_skipped() {
    paused().block_on(async {
        let b = Barrier::new(2);
        let scope = CancelScope::new();
        let mut first = Box::pin(scope.run(b.wait()));
        assert!(poll!(&mut first).is_pending());
        // Cancelled, but has not run since: still queued. The next arrival must not
        // pair with it.
        scope.cancel();
        let mut second = Box::pin(b.wait());
        assert!(
            poll!(&mut second).is_pending(),
            "paired with a cancelled waiter"
        );
        assert_eq!(first.await, Ok(None));
        let third = b.wait().await.unwrap();
        assert!(third.is_leader());
        assert!(!second.await.unwrap().is_leader());
    });
}

#[test]
fn a_dropped_waiter_leaves_its_place() {
    paused().block_on(async {
        let b = Barrier::new(2);
        let mut w = Box::pin(b.wait());
        assert!(poll!(&mut w).is_pending());
        drop(w);
        let mut w2 = Box::pin(b.wait());
        assert!(
            poll!(&mut w2).is_pending(),
            "the dropped waiter was counted"
        );
        assert!(b.wait().await.unwrap().is_leader());
        assert!(!w2.await.unwrap().is_leader());
    });
}

//! `TaskGroup::spawn_with_value` / `ChildValue`: values come back, the group's rules
//! are unchanged (a failure cancels the siblings and is reported by the group), a
//! cancelled wait leaves the child running and its value available, and a child that
//! panics or is dropped reports `Lost` instead of hanging.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use scope_runtime::{
    BoxError, CancelScope, ChildError, Runtime, move_on_after, now, sleep, task_group,
};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn values_come_back_in_completion_order_through_futures_unordered() {
    paused().block_on(async {
        let order = task_group(|tg| async move {
            let mut pending: FuturesUnordered<_> = [3u64, 1, 2]
                .into_iter()
                .map(|s| {
                    tg.spawn_with_value(async move {
                        sleep(Duration::from_secs(s)).await?;
                        Ok(s)
                    })
                })
                .collect();
            let mut order = Vec::new();
            while let Some(v) = pending.next().await {
                order.push(v?);
            }
            Ok(order)
        })
        .await
        .unwrap();
        assert_eq!(order, Some(vec![1, 2, 3]));
    });
}

#[test]
fn a_failing_child_cancels_its_siblings_and_the_group_reports_it() {
    paused().block_on(async {
        let t0 = now();
        let r = task_group(|tg| async move {
            let slow = tg.spawn_with_value(async {
                sleep(Duration::from_secs(60)).await?;
                Ok(1)
            });
            let bad = tg.spawn_with_value::<_, u32>(async {
                sleep(Duration::from_secs(1)).await?;
                Err("boom".into())
            });
            assert_eq!(bad.await, Err(ChildError::Failed));
            // The sibling was cancelled by the failure.
            let slow = CancelScope::new().with_shield(true).run(slow).await;
            assert_eq!(slow, Err(ChildError::ChildCancelled));
            Ok(())
        })
        .await;
        let err = r.unwrap_err();
        assert_eq!(err.failures().len(), 1);
        assert!(err.to_string().contains("boom"), "{err}");
        assert_eq!(now() - t0, Duration::from_secs(1));
    });
}

#[test]
fn a_cancelled_wait_leaves_the_child_running_and_its_value_available() {
    paused().block_on(async {
        let t0 = now();
        task_group(|tg| async move {
            let mut v = tg.spawn_with_value(async {
                sleep(Duration::from_secs(5)).await?;
                Ok("done")
            });
            let r = move_on_after(Duration::from_secs(1), &mut v).await;
            assert_eq!(r, Ok(None), "the wait gave up at 1 s");
            assert!(v.handle().is_alive(), "the child is not affected");
            assert_eq!(v.try_value(), None);
            assert_eq!((&mut v).await, Ok("done"));
            assert_eq!(now() - t0, Duration::from_secs(5));
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_value_can_be_awaited_after_the_group_ended() {
    paused().block_on(async {
        let mut kept = None;
        task_group(|tg| {
            kept = Some(tg.spawn_with_value(async { Ok(7u8) }));
            async { Ok(()) }
        })
        .await
        .unwrap();
        assert_eq!(kept.unwrap().await, Ok(7));
    });
}

#[test]
fn a_panicking_child_reports_lost() {
    paused().block_on(async {
        let mut kept = None;
        let r = task_group(|tg| {
            kept = Some(tg.spawn_with_value::<_, ()>(async { panic!("child panics") }));
            async { Ok(()) }
        });
        let r = std::panic::AssertUnwindSafe(r);
        let out = futures::FutureExt::catch_unwind(r).await;
        assert!(
            out.is_err() || out.unwrap().is_err(),
            "the group reports the panic"
        );
        assert_eq!(kept.unwrap().await, Err(ChildError::Lost));
    });
}

#[test]
fn a_cancelled_child_and_a_cancelled_waiter_are_told_apart() {
    paused().block_on(async {
        task_group(|tg| async move {
            let v = tg.spawn_with_value(async {
                sleep(Duration::from_secs(60)).await?;
                Ok(())
            });
            sleep(Duration::from_secs(1)).await?;
            v.handle().cancel();
            assert_eq!(v.await, Err(ChildError::ChildCancelled));
            Ok::<_, BoxError>(())
        })
        .await
        .unwrap();
        // The waiter's own cancellation is a `Cancelled` the scope absorbs.
        let scope = CancelScope::new();
        let r = task_group(|tg| async move {
            let v = tg.spawn_with_value(async { Ok(()) });
            let waited = scope.run(async {
                scope.cancel();
                v.await
            });
            assert_eq!(waited.await, Ok(None));
            Ok(())
        })
        .await;
        assert!(r.is_ok());
    });
}

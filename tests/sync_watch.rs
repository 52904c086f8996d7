//! Tests of `scope_runtime::sync::watch`: latest-value semantics, closing, cancellation
//! of a blocked `changed()` (woken by the cancel, nothing lost), several receivers, and
//! sends from a plain thread.

use std::sync::Arc;
use std::time::Duration;

use futures::poll;
use scope_runtime::sync::{WatchClosed, watch};
use scope_runtime::{CancelScope, Cancelled, Runtime, move_on_after, now, sleep, task_group};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn a_receiver_sees_only_the_latest_value() {
    paused().block_on(async {
        let (tx, mut rx) = watch(0);
        assert!(!rx.has_changed());
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert!(rx.has_changed());
        assert_eq!(rx.changed().await, Ok(true));
        assert_eq!(*rx.borrow(), 2);
        assert!(!rx.has_changed());
        // Nothing newer: changed() waits.
        let mut fut = Box::pin(rx.changed());
        assert!(poll!(&mut fut).is_pending());
        drop(fut);
        assert_eq!(tx.send_replace(3), 2);
        assert_eq!(*rx.borrow_and_update(), 3);
        assert!(!rx.has_changed());
    });
}

#[test]
fn dropping_the_sender_ends_waiting_receivers_and_keeps_the_value() {
    paused().block_on(async {
        let (tx, mut rx) = watch("a");
        let t0 = now();
        task_group(|tg| async move {
            tg.spawn(async move {
                assert_eq!(rx.changed().await, Ok(false));
                assert_eq!(now() - t0, Duration::from_secs(2));
                assert_eq!(*rx.borrow(), "a");
                assert_eq!(rx.changed().await, Ok(false), "stays closed");
                Ok(())
            });
            sleep(Duration::from_secs(2)).await?;
            drop(tx);
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_send_with_no_receiver_gives_the_value_back() {
    let (tx, rx) = watch(1);
    assert_eq!(tx.receiver_count(), 1);
    let rx2 = rx.clone();
    drop(rx);
    assert_eq!(tx.send(2), Ok(()));
    drop(rx2);
    assert_eq!(tx.receiver_count(), 0);
    assert_eq!(tx.send(3), Err(WatchClosed(3)));
    assert_eq!(*tx.borrow(), 2, "a failed send changes nothing");
}

#[test]
fn a_cancel_wakes_a_blocked_changed_and_loses_no_change() {
    paused().block_on(async {
        let (tx, mut rx) = watch(0);
        let scope = CancelScope::new();
        let s = scope.clone();
        let t0 = now();
        task_group(|tg| async move {
            tg.spawn(async move {
                sleep(Duration::from_secs(3)).await?;
                s.cancel();
                Ok(())
            });
            let r = scope.run(rx.changed()).await;
            // Woken by the cancel itself, at 3 s, not by a later send.
            assert_eq!(r, Ok(None));
            assert_eq!(now() - t0, Duration::from_secs(3));
            // A send in the same turn as a cancel: the change is still there afterwards.
            let inner = CancelScope::new();
            let r = inner
                .run(async {
                    tx.send(7).unwrap();
                    inner.cancel();
                    rx.changed().await
                })
                .await;
            assert_eq!(r, Ok(None), "cancelled before it could report the change");
            assert!(
                rx.has_changed(),
                "the change was not consumed by the cancelled wait"
            );
            assert_eq!(rx.changed().await, Ok(true));
            assert_eq!(*rx.borrow(), 7);
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_cancelled_changed_fails_even_when_a_change_is_ready() {
    paused().block_on(async {
        let (tx, mut rx) = watch(0);
        tx.send(1).unwrap();
        let scope = CancelScope::new();
        scope.cancel();
        let r: Result<Option<bool>, Cancelled> = scope.run(rx.changed()).await;
        assert_eq!(r, Ok(None));
        assert!(rx.has_changed());
    });
}

#[test]
fn every_receiver_is_woken_by_one_send() {
    paused().block_on(async {
        let (tx, rx) = watch(0u32);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        task_group(|tg| async move {
            for i in 0..5 {
                let mut rx = rx.clone();
                let seen = s.clone();
                tg.spawn(async move {
                    if rx.changed().await? {
                        seen.lock().unwrap().push((i, *rx.borrow()));
                    }
                    Ok(())
                });
            }
            drop(rx);
            sleep(Duration::from_secs(1)).await?;
            tx.send(42).unwrap();
            Ok(())
        })
        .await
        .unwrap();
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, (0..5).map(|i| (i, 42)).collect::<Vec<_>>());
    });
}

#[test]
fn a_plain_thread_can_send_and_wakes_the_runtime() {
    // Real clock: the thread's send must reach a runtime blocked in its reactor.
    Runtime::new().unwrap().block_on(async {
        let (tx, mut rx) = watch(0);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(5).unwrap();
            tx
        });
        let r = move_on_after(Duration::from_secs(10), rx.changed()).await;
        assert_eq!(r, Ok(Some(true)));
        assert_eq!(*rx.borrow(), 5);
        drop(t.join().unwrap());
        assert_eq!(rx.changed().await, Ok(false));
    });
}

#[test]
fn a_subscriber_starts_from_the_current_value() {
    let (tx, _rx) = watch(1);
    tx.send(2).unwrap();
    let mut late = tx.subscribe();
    assert!(!late.has_changed());
    assert_eq!(*late.borrow_and_update(), 2);
    tx.send(3).unwrap();
    assert!(late.has_changed());
}

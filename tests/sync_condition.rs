//! Tests of `scope_runtime::sync::Condition`: FIFO notifications, the lock released
//! while waiting and held again on return, a cancel before the notification (no lock,
//! nothing consumed), a notification kept through a cancel in the same turn, and a
//! dropped notified waiter passing its notification on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::poll;
use scope_runtime::sync::{Condition, Mutex};
use scope_runtime::{
    CancelScope, Cancelled, Runtime, checkpoint, move_on_after, now, sleep, task_group,
};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

type Shared = Rc<(Mutex<u32>, Condition)>;

#[test]
fn notify_one_wakes_waiters_in_order_and_they_hold_the_lock() {
    paused().block_on(async {
        let s: Shared = Rc::new((Mutex::new(0), Condition::new()));
        let order = Rc::new(RefCell::new(Vec::new()));
        let (s2, o2) = (s.clone(), order.clone());
        task_group(|tg| async move {
            for i in 0..3 {
                let (s, o) = (s2.clone(), o2.clone());
                tg.spawn(async move {
                    sleep(Duration::from_millis(i)).await?; // queue in order 0, 1, 2
                    let (m, c) = &*s;
                    let mut g = m.lock().await?;
                    g = c.wait(g).await?;
                    *g += 1;
                    o.borrow_mut().push((i, *g));
                    Ok(())
                });
            }
            sleep(Duration::from_secs(1)).await?;
            let (m, c) = &*s2;
            assert!(!m.is_locked(), "waiters released the lock while waiting");
            for _ in 0..3 {
                assert!(c.notify_one());
                sleep(Duration::from_secs(1)).await?;
            }
            assert!(!c.notify_one(), "no waiter left");
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(*order.borrow(), [(0, 1), (1, 2), (2, 3)]);
    });
}

#[test]
fn notify_all_wakes_everyone() {
    paused().block_on(async {
        let s: Shared = Rc::new((Mutex::new(0), Condition::new()));
        let s2 = s.clone();
        task_group(|tg| async move {
            for _ in 0..4 {
                let s = s2.clone();
                tg.spawn(async move {
                    let (m, c) = &*s;
                    let g = m.lock().await?;
                    let mut g = c.wait(g).await?;
                    *g += 1;
                    Ok(())
                });
            }
            sleep(Duration::from_secs(1)).await?;
            assert_eq!(s2.1.notify_all(), 4);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(*s.0.lock().await.unwrap(), 4);
    });
}

#[test]
fn a_wait_cancelled_before_its_notification_returns_without_the_lock() {
    paused().block_on(async {
        let (m, c) = (Mutex::new(()), Condition::new());
        let t0 = now();
        let r = move_on_after(Duration::from_secs(2), async {
            let g = m.lock().await?;
            let _g = c.wait(g).await?;
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(
            now() - t0,
            Duration::from_secs(2),
            "woken by the deadline itself"
        );
        assert!(!m.is_locked());
        assert!(!c.notify_one(), "the cancelled waiter left the queue");
    });
}

#[test]
fn a_notification_in_the_same_turn_as_a_cancel_is_kept() {
    paused().block_on(async {
        let s: Shared = Rc::new((Mutex::new(0), Condition::new()));
        let scope = CancelScope::new();
        let got = Rc::new(RefCell::new(None));
        let (s2, sc, g2) = (s.clone(), scope.clone(), got.clone());
        let s1 = s.clone();
        task_group(|tg| async move {
            let s = s1;
            tg.spawn(async move {
                let r = sc
                    .run(async {
                        let (m, c) = &*s2;
                        let g = m.lock().await?;
                        let mut g = c.wait(g).await?; // notified, then cancelled
                        *g = 5;
                        drop(g);
                        checkpoint().await // the cancel shows here
                    })
                    .await;
                *g2.borrow_mut() = Some(r);
                Ok(())
            });
            sleep(Duration::from_secs(1)).await?;
            // Hold the lock so the notified waiter also has to wait to re-take it.
            let held = s.0.lock().await?;
            assert!(s.1.notify_one());
            scope.cancel();
            sleep(Duration::from_secs(1)).await?;
            drop(held);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(got.borrow_mut().take(), Some(Ok(None)));
        assert_eq!(
            *s.0.lock().await.unwrap(),
            5,
            "the notified waiter got the lock"
        );
    });
}

#[test]
fn a_dropped_notified_waiter_passes_the_notification_on() {
    paused().block_on(async {
        let (m, c) = (Mutex::new(()), Condition::new());
        let mut first = Box::pin(c.wait(m.lock().await.unwrap()));
        assert!(poll!(&mut first).is_pending());
        let mut second = Box::pin(c.wait(m.lock().await.unwrap()));
        assert!(poll!(&mut second).is_pending());
        assert!(c.notify_one()); // goes to `first` ...
        drop(first); // ... which passes it on
        assert!(second.await.is_ok());
    });
}

#[test]
fn a_notifier_queued_on_the_mutex_finds_the_waiter_queued() {
    paused().block_on(async {
        let s: Shared = Rc::new((Mutex::new(0), Condition::new()));
        let s2 = s.clone();
        task_group(|tg| async move {
            let s3 = s2.clone();
            tg.spawn(async move {
                let (m, c) = &*s3;
                let g = m.lock().await?;
                // Meanwhile the body queues on the mutex: it gets it the moment this
                // wait releases it, and notifies at once.
                sleep(Duration::from_secs(1)).await?;
                let _g = c.wait(g).await?;
                Ok(())
            });
            sleep(Duration::from_millis(1)).await?; // the child holds the lock now
            let (m, c) = &*s2;
            let _g = m.lock().await?; // granted when the child's wait releases it
            assert!(
                c.notify_one(),
                "the waiter was queued when it released the lock"
            );
            Ok(())
        })
        .await
        .unwrap();
    });
}

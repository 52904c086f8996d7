//! Tests of `scope_runtime::sync::RwLock`: readers share, writers exclude, FIFO order
//! (a waiting writer holds later readers back), a cancelled waiter never holds the lock
//! and releases those behind it, a granted waiter keeps its grant, drops pass it on.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use futures::poll;
use scope_runtime::sync::RwLock;
use scope_runtime::{CancelScope, Runtime, move_on_after, now, sleep, task_group};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn readers_share_and_writers_wait_in_arrival_order() {
    paused().block_on(async {
        let lock = Rc::new(RwLock::new(0));
        let log = Rc::new(RefCell::new(Vec::new()));
        let t0 = now();
        let (l, lg) = (lock.clone(), log.clone());
        task_group(|tg| async move {
            // r1 at 0 s holds 2 s; w at 1 s; r2 at 1.5 s must wait behind w.
            let spawn = |name: &'static str, at: u64, write: bool| {
                let (l, lg) = (l.clone(), lg.clone());
                tg.spawn(async move {
                    sleep(Duration::from_millis(at)).await?;
                    if write {
                        let mut g = l.write().await?;
                        lg.borrow_mut().push((name, (now() - t0).as_millis()));
                        *g += 1;
                        sleep(Duration::from_secs(1)).await?;
                    } else {
                        let g = l.read().await?;
                        lg.borrow_mut().push((name, (now() - t0).as_millis()));
                        let _ = *g;
                        sleep(Duration::from_secs(2)).await?;
                    }
                    Ok(())
                });
            };
            spawn("r1", 0, false);
            spawn("w", 1000, true);
            spawn("r2", 1500, false);
            spawn("r3", 1600, false);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            *log.borrow(),
            [("r1", 0), ("w", 2000), ("r2", 3000), ("r3", 3000)]
        );
        assert_eq!(*lock.read().await.unwrap(), 1);
    });
}

#[test]
fn a_cancelled_writer_releases_the_readers_behind_it() {
    paused().block_on(async {
        let lock = Rc::new(RwLock::new(()));
        let reader = lock.read().await.unwrap();
        let t0 = now();
        let l = lock.clone();
        task_group(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                // Queued behind the reader, gives up at 1 s.
                assert!(
                    move_on_after(Duration::from_secs(1), l2.write())
                        .await?
                        .is_none()
                );
                Ok(())
            });
            tg.spawn(async move {
                sleep(Duration::from_millis(500)).await?;
                // Queued behind the writer; once it leaves, shares with the reader.
                let _g = l.read().await?;
                assert_eq!(now() - t0, Duration::from_secs(1));
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap();
        drop(reader);
        assert!(lock.try_write().is_some());
    });
}

#[test]
fn a_writer_granted_in_the_same_turn_as_its_cancel_keeps_the_lock() {
    paused().block_on(async {
        let lock = Rc::new(RwLock::new(0));
        let reader = lock.read().await.unwrap();
        let scope = CancelScope::new();
        let (l, s) = (lock.clone(), scope.clone());
        let got = Rc::new(RefCell::new(None));
        let g2 = got.clone();
        task_group(|tg| async move {
            tg.spawn(async move {
                let r = s
                    .run(async {
                        let mut w = l.write().await?;
                        *w = 7;
                        Ok::<_, scope_runtime::Cancelled>(())
                    })
                    .await;
                *g2.borrow_mut() = Some(r);
                Ok(())
            });
            sleep(Duration::from_secs(1)).await?;
            drop(reader); // grants the writer ...
            scope.cancel(); // ... which is cancelled before it runs
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(got.borrow_mut().take(), Some(Ok(Some(()))));
        assert_eq!(*lock.read().await.unwrap(), 7);
    });
}

#[test]
fn a_dropped_granted_waiter_passes_the_lock_on() {
    paused().block_on(async {
        let lock = RwLock::new(());
        let w = lock.write().await.unwrap();
        let mut a = Box::pin(lock.write());
        let mut b = Box::pin(lock.read());
        assert!(poll!(&mut a).is_pending());
        assert!(poll!(&mut b).is_pending());
        drop(w); // grants `a`
        drop(a); // never ran: passes the lock to `b`
        assert!(b.await.is_ok());
    });
}

#[test]
fn try_variants_never_overtake_a_queued_waiter() {
    paused().block_on(async {
        let lock = RwLock::new(());
        let r = lock.read().await.unwrap();
        let mut w = Box::pin(lock.write());
        assert!(poll!(&mut w).is_pending());
        assert!(
            lock.try_read().is_none(),
            "a reader overtook the waiting writer"
        );
        assert!(lock.try_write().is_none());
        drop(r);
        let g = w.await.unwrap();
        assert!(lock.try_read().is_none());
        drop(g);
        assert!(lock.try_read().is_some());
    });
}

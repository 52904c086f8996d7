//! Tests of `scope_runtime::sync::broadcast`: every receiver gets every message, a slow
//! one is told how many it missed, a cancelled receive takes nothing (and is woken by
//! the cancel), closing, subscribing, and sends from a plain thread.

use std::time::Duration;

use futures::poll;
use scope_runtime::sync::{BroadcastClosed, BroadcastError, broadcast};
use scope_runtime::{CancelScope, Runtime, move_on_after, now, sleep, task_group};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn every_receiver_gets_every_message_in_order() {
    paused().block_on(async {
        let (tx, rx) = broadcast(8);
        let rx2 = rx.clone();
        for i in 0..5 {
            assert_eq!(tx.send(i), Ok(2));
        }
        drop(tx);
        for r in [&rx, &rx2] {
            let mut got = Vec::new();
            while let Some(m) = r.recv().await.unwrap() {
                got.push(m);
            }
            assert_eq!(got, [0, 1, 2, 3, 4]);
            assert!(r.is_closed());
        }
    });
}

#[test]
fn a_slow_receiver_is_told_how_many_it_missed() {
    paused().block_on(async {
        let (tx, rx) = broadcast(3);
        let fast = rx.clone();
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        assert_eq!(fast.recv().await, Ok(Some(0)));
        for i in 3..10 {
            tx.send(i).unwrap();
        }
        // Kept: 7, 8, 9.
        assert_eq!(rx.recv().await, Err(BroadcastError::Lagged(7)));
        assert_eq!(rx.recv().await, Ok(Some(7)));
        assert_eq!(fast.recv().await, Err(BroadcastError::Lagged(6)));
        assert_eq!(fast.try_recv(), Ok(Some(7)));
        assert_eq!(fast.try_recv(), Ok(Some(8)));
    });
}

#[test]
fn a_cancel_wakes_a_blocked_receive_which_takes_nothing() {
    paused().block_on(async {
        let (tx, rx) = broadcast::<u32>(4);
        let t0 = now();
        assert_eq!(
            move_on_after(Duration::from_secs(2), rx.recv()).await,
            Ok(None)
        );
        assert_eq!(now() - t0, Duration::from_secs(2));
        // Sent and cancelled in the same turn: the message stays for the next receive.
        let scope = CancelScope::new();
        let r = scope
            .run(async {
                tx.send(9).unwrap();
                scope.cancel();
                rx.recv().await
            })
            .await;
        assert_eq!(r, Ok(None));
        assert_eq!(rx.recv().await, Ok(Some(9)));
    });
}

#[test]
fn a_cancel_inside_a_group_reaches_a_waiting_receiver() {
    paused().block_on(async {
        let (_tx, rx) = broadcast::<u32>(4);
        let t0 = now();
        let r = task_group(|tg| async move {
            tg.spawn(async move {
                rx.recv().await?;
                unreachable!("nothing is sent")
            });
            sleep(Duration::from_secs(1)).await?;
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(now() - t0, Duration::from_secs(1));
    });
}

#[test]
fn waiters_are_woken_by_a_send_and_by_the_last_sender_leaving() {
    paused().block_on(async {
        let (tx, rx) = broadcast::<u32>(4);
        let mut fut = Box::pin(rx.recv());
        assert!(poll!(&mut fut).is_pending());
        let tx2 = tx.clone();
        tx2.send(1).unwrap();
        assert_eq!(fut.await, Ok(Some(1)));
        let mut fut = Box::pin(rx.recv());
        assert!(poll!(&mut fut).is_pending());
        drop(tx);
        assert!(poll!(&mut fut).is_pending(), "a sender is left");
        drop(tx2);
        assert_eq!(fut.await, Ok(None));
    });
}

#[test]
fn no_receiver_means_the_message_comes_back_and_subscribers_start_now() {
    let (tx, rx) = broadcast(2);
    drop(rx);
    assert_eq!(tx.send(1), Err(BroadcastClosed(1)));
    let late = tx.subscribe();
    assert_eq!(tx.receiver_count(), 1);
    tx.send(2).unwrap();
    assert_eq!(late.try_recv(), Ok(Some(2)));
    assert_eq!(late.try_recv(), Ok(None));
}

#[test]
#[should_panic(expected = "capacity must be at least 1")]
fn zero_capacity_panics() {
    let _ = broadcast::<u8>(0);
}

#[test]
fn a_plain_thread_can_send() {
    Runtime::new().unwrap().block_on(async {
        let (tx, rx) = broadcast(4);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send("hi").unwrap();
        });
        let r = move_on_after(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(r, Ok(Some(Some("hi"))));
        t.join().unwrap();
        assert_eq!(rx.recv().await, Ok(None));
    });
}

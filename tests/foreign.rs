//! Futures of other crates inside cancelled scopes and groups (rule R14): only runtime
//! operations are checkpoints; `cancellable(fut)` makes any future one, dropping it on
//! cancellation. Tested with async-channel, async-lock, `future::pending`, and a
//! `futures::channel::oneshot` completed from a std thread.

use std::cell::Cell;
use std::future::{Future, pending, poll_fn};
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use scope_runtime::{
    BoxError, CancelScope, Cancelled, Runtime, TaskGroup, cancellable, move_on_after, now, sleep,
    task_group, yield_now,
};

fn run<F: Future>(f: F) -> F::Output {
    Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(f)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn async_channel_recv_in_a_cancelled_group_returns_cancelled() {
    run(async {
        let (tx, rx) = async_channel::unbounded::<u32>();
        let t0 = now();
        let out = Rc::new(Cell::new(None));
        let o = out.clone();
        let r = task_group(|tg| async move {
            tg.spawn(async move {
                let r = cancellable(rx.recv()).await;
                o.set(Some(r.is_err()));
                r?.map_err(|e| -> BoxError { e.into() })?;
                Ok(())
            });
            sleep(secs(3)).await?;
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(r.is_ok(), "{r:?}");
        assert_eq!(out.get(), Some(true), "the recv ended with Cancelled");
        assert_eq!(now() - t0, secs(3));
        // The receiver went with the child task: the channel is closed, and a sender
        // is told so (the message comes back) rather than losing it silently.
        assert!(tx.try_send(1).unwrap_err().is_closed());
    });
}

#[test]
fn async_lock_mutex_under_a_deadline() {
    run(async {
        let m = Arc::new(async_lock::Mutex::new(0u32));
        let held = m.lock().await;
        let t0 = now();
        let r = move_on_after(secs(2), async { cancellable(m.lock()).await }).await;
        assert!(
            matches!(r, Ok(None)),
            "the lock wait was cancelled at the deadline"
        );
        assert_eq!(now() - t0, secs(2));
        // The abandoned lock() left no trace: once released, the lock is free.
        drop(held);
        *cancellable(m.lock()).await.unwrap() += 1;
        assert_eq!(*m.lock().await, 1);
    });
}

#[test]
fn pending_forever_ends_on_tg_cancel_from_a_child() {
    run(async {
        let t0 = now();
        let group = TaskGroup::new();
        let r = group
            .run(|tg| async move {
                tg.spawn(async {
                    cancellable(pending::<()>()).await?;
                    unreachable!("pending() never completes")
                });
                let tg2 = tg.clone();
                tg.spawn(async move {
                    sleep(secs(5)).await?;
                    tg2.cancel();
                    Ok(())
                });
                Ok(())
            })
            .await;
        assert!(r.is_ok(), "{r:?}");
        assert!(group.cancelled_caught());
        assert_eq!(now() - t0, secs(5));
    });
}

/// A future completed from a std thread resolves normally when nothing is cancelled.
#[test]
fn a_future_completed_from_a_std_thread_passes_its_value_through() {
    run(async {
        let (tx, rx) = futures::channel::oneshot::channel::<&'static str>();
        let t = std::thread::spawn(move || tx.send("from the thread").unwrap());
        let v = cancellable(rx).await.unwrap().unwrap();
        assert_eq!(v, "from the thread");
        t.join().unwrap();
    });
}

/// Cancelled first: the foreign future is dropped, so a std thread that completes it
/// later finds the receiver gone (it is told, rather than the value vanishing unseen).
#[test]
fn a_cancelled_wait_drops_the_foreign_future() {
    run(async {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            go_rx.recv().unwrap();
            tx.send(7)
        });
        let scope = CancelScope::new();
        let s = scope.clone();
        let r = scope
            .run(async move {
                let wait = cancellable(rx);
                s.cancel();
                wait.await?.map_err(|e| -> BoxError { e.into() })
            })
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        go_tx.send(()).unwrap();
        assert_eq!(
            t.join().unwrap(),
            Err(7),
            "the value came back to the sender"
        );
    });
}

/// R1: cancelled before the first poll, the foreign future is never polled.
#[test]
fn cancelled_before_the_first_poll_never_polls_the_foreign_future() {
    run(async {
        let polls = Rc::new(Cell::new(0));
        let p = polls.clone();
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(cancellable(poll_fn(move |_| {
                p.set(p.get() + 1);
                Poll::Ready(())
            })))
            .await;
        assert_eq!(r, Ok(None));
        assert_eq!(polls.get(), 0);
    });
}

/// R10: a value the foreign future already holds when the cancel arrives is returned,
/// not dropped; the cancellation fails the next checkpoint instead.
#[test]
fn a_value_ready_at_the_cancel_is_kept() {
    run(async {
        let (tx, rx) = futures::channel::oneshot::channel::<u32>();
        let scope = CancelScope::new();
        let s = scope.clone();
        let got = scope
            .run(async move {
                let sender = scope_runtime::spawn(async move {
                    yield_now().await;
                    // Both in the same turn: the value, then the cancel.
                    tx.send(42).unwrap();
                    s.cancel();
                    Ok::<_, Cancelled>(())
                });
                let v = cancellable(rx).await?.unwrap();
                assert!(scope_runtime::checkpoint().await.is_err());
                sender.await.ok();
                Ok::<_, Cancelled>(v)
            })
            .await;
        // The value came out of the wait; the next checkpoint failed and the body
        // returned the value anyway (so the scope did not absorb anything).
        assert_eq!(got, Ok(Some(42)));
    });
}

//! Tests of `scope_runtime::sync` (issue 6): every primitive, the race cases R01–R03
//! and R05 of the conformance catalog (R04 is about sockets), cancellation and drop of
//! waiters, and use of the `Send` handles from plain threads.
//!
//! "In the same turn" below means: without the main task yielding in between, so the
//! other task has not run yet and sees both events at its next poll.
//! The randomized model test is in `tests/sync_model.rs`.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures::poll;
use scope_runtime::sync::{
    Event, Mutex, Notify, Semaphore, SendError, TryRecvError, TrySendError, channel, oneshot,
    unbounded,
};
use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, Outcome, checkpoint, move_on_after, now, sleep,
    spawn, task_group,
};

/// Lets every ready task run until all are idle (the paused clock then jumps 1 ms).
async fn settle() {
    sleep(Duration::from_millis(1)).await.unwrap();
}

fn is_cancelled<T, E>(o: Outcome<T, E>) -> bool {
    o.is_cancelled()
}

// ---------------------------------------------------------------------------------
// Race cases (conformance catalog, R)
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn r01_message_handed_to_waiting_receiver_before_cancel_is_returned() {
    let (tx, rx) = channel::<u32>(1);
    let kept = rx.clone();
    let receiver = spawn(async move {
        let got = rx.recv().await;
        let next = checkpoint().await;
        Ok::<_, Cancelled>((got, next.is_err()))
    });
    settle().await; // the receiver waits on the empty channel
    tx.send(7).await.unwrap(); // handed straight into its slot
    assert!(receiver.cancel()); // the cancel arrives before it runs again
    let (got, next_failed) = receiver.await.unwrap().unwrap();
    assert_eq!(got, Ok(Some(7)), "the message handed over is returned");
    assert!(next_failed, "the next checkpoint fails");
    tx.try_send(8).unwrap();
    assert_eq!(kept.try_recv(), Ok(8), "nothing else was consumed");
}

#[scope_runtime::test(paused)]
async fn r01_with_a_cancel_scope_inside_the_receiver() {
    let (tx, rx) = channel::<u32>(0);
    let scope = CancelScope::new();
    let s2 = scope.clone();
    let receiver = spawn(async move {
        let mut log = Vec::new();
        let out = s2
            .run(async {
                let v = rx.recv().await?;
                log.push(v);
                checkpoint().await?;
                log.push(None);
                Ok::<_, Cancelled>(())
            })
            .await;
        Ok::<_, Cancelled>((out, log))
    });
    settle().await;
    assert_eq!(
        tx.try_send(3),
        Ok(()),
        "rendezvous: the receiver is waiting"
    );
    scope.cancel();
    let (out, log) = receiver.await.unwrap().unwrap();
    assert_eq!(log, [Some(3)]);
    assert_eq!(
        out,
        Ok(None),
        "the scope absorbed the cancellation at the next checkpoint"
    );
    assert!(scope.cancelled_caught());
}

#[scope_runtime::test(paused)]
async fn r02_cancelled_receiver_consumes_nothing_and_the_next_receiver_gets_the_message() {
    let (tx, rx) = channel::<u32>(1);
    let first = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    let second = spawn(async move { rx.recv().await });
    settle().await; // both wait, `first` in front
    first.cancel();
    settle().await; // `first` runs, fails and leaves the queue
    tx.send(1).await.unwrap();
    assert!(is_cancelled(first.await.unwrap()));
    assert_eq!(second.await.unwrap().unwrap(), Some(1));
}

#[scope_runtime::test(paused)]
async fn r02_cancelled_receive_with_a_message_available_takes_nothing() {
    let (tx, rx) = channel::<u32>(2);
    tx.send(1).await.unwrap();
    let scope = CancelScope::new();
    scope.cancel();
    let r = scope
        .run(async { Ok::<_, Cancelled>(rx.recv().await) })
        .await;
    assert!(
        r.unwrap().unwrap().is_err(),
        "a cancelled receive fails (R1)"
    );
    assert_eq!(rx.try_recv(), Ok(1), "and the message is still there");
}

#[scope_runtime::test(paused)]
async fn r02_receiver_dropped_while_waiting_leaves_its_place() {
    let (tx, rx) = channel::<u32>(1);
    let mut first = Box::pin(rx.recv());
    assert!(poll!(first.as_mut()).is_pending());
    let second = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    settle().await;
    drop(first);
    tx.send(5).await.unwrap();
    assert_eq!(second.await.unwrap().unwrap(), Some(5));
}

#[scope_runtime::test(paused)]
async fn r03_sender_cancelled_while_blocked_on_a_full_channel_sent_nothing() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).await.unwrap(); // full
    let sender = spawn(async move {
        match tx.send(2).await {
            Err(SendError::Cancelled(v, c)) => Ok::<_, Cancelled>((v, c)),
            other => panic!("expected a cancelled send, got {other:?}"),
        }
    });
    settle().await; // blocked
    sender.cancel();
    let (back, c) = sender.await.unwrap().unwrap();
    assert_eq!(back, 2, "the message came back");
    assert!(c.as_cancelled().is_some());
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed), "2 was never sent");
}

#[scope_runtime::test(paused)]
async fn r03_sender_whose_message_was_taken_before_the_cancel_returns_ok() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).await.unwrap();
    let sender = spawn(async move {
        let r = tx.send(2).await.map_err(|e| e.is_cancelled());
        let next = checkpoint().await;
        Ok::<_, Cancelled>((r, next.is_err()))
    });
    settle().await; // blocked on the full channel
    assert_eq!(rx.try_recv(), Ok(1)); // takes 1 and moves 2 into the buffer
    sender.cancel(); // same turn
    let (r, next_failed) = sender.await.unwrap().unwrap();
    assert_eq!(
        r,
        Ok(()),
        "accepted before the cancel: the send succeeded (R10)"
    );
    assert!(next_failed);
    assert_eq!(rx.try_recv(), Ok(2));
}

#[scope_runtime::test(paused)]
async fn r03_rendezvous_sender_cancelled_before_a_receiver_came() {
    let (tx, rx) = channel::<&str>(0);
    let r = move_on_after(Duration::from_secs(1), tx.send("x")).await;
    assert!(
        r.is_ok_and(|v| v.is_none()),
        "the timeout cancelled the send"
    );
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[scope_runtime::test(paused)]
async fn r05_cancelled_lock_waiter_does_not_hold_the_lock_and_the_next_waiter_gets_it() {
    let m = Rc::new(Mutex::new(0));
    let held = m.lock().await.unwrap();
    let b = spawn({
        let m = m.clone();
        async move {
            let _g = m.lock().await?;
            unreachable!("a cancelled waiter never gets the lock")
        }
    });
    let c = spawn({
        let m = m.clone();
        async move {
            let mut g = m.lock().await?;
            *g += 1;
            Ok::<_, Cancelled>(*g)
        }
    });
    settle().await; // b, then c, queue up
    b.cancel();
    settle().await;
    let b_out: Outcome<(), Cancelled> = b.await.unwrap();
    assert!(b_out.is_cancelled());
    drop(held);
    assert_eq!(c.await.unwrap().unwrap(), 1, "c got the lock b gave up");
    assert!(!m.is_locked());
}

#[scope_runtime::test(paused)]
async fn r05_lock_granted_before_the_cancel_is_kept() {
    let m = Rc::new(Mutex::new(0));
    let held = m.lock().await.unwrap();
    let b = spawn({
        let m = m.clone();
        async move {
            let got = m.lock().await;
            let held_it = got.is_ok();
            let next = checkpoint().await;
            drop(got);
            Ok::<_, Cancelled>((held_it, next.is_err()))
        }
    });
    settle().await;
    drop(held); // the lock passes to b directly
    assert!(m.is_locked(), "handed over, not released");
    assert!(m.try_lock().is_none(), "no barging past the waiter");
    b.cancel(); // same turn
    assert_eq!(b.await.unwrap().unwrap(), (true, true));
    assert!(!m.is_locked(), "b released it");
}

#[scope_runtime::test(paused)]
async fn r05_lock_of_a_free_mutex_by_cancelled_code_fails_without_locking() {
    let m = Mutex::new(());
    let scope = CancelScope::new();
    scope.cancel();
    let r = scope
        .run(async { Ok::<_, Cancelled>(m.lock().await.is_err()) })
        .await;
    assert_eq!(r, Ok(Some(true)));
    assert!(!m.is_locked());
}

// ---------------------------------------------------------------------------------
// Same turn, the other order: cancel first, then the hand-off. The waiter was
// cancelled before it could be served, so it is skipped (it takes nothing) and the
// next waiter is served, as in Trio, where a cancel takes the task off the queue.
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn r02_receiver_cancelled_then_message_sent_in_the_same_turn_is_skipped() {
    let (tx, rx) = channel::<u32>(1);
    let first = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    let second = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    settle().await; // both wait, `first` in front
    first.cancel();
    tx.try_send(1).unwrap(); // same turn: `first` has not run yet
    assert!(is_cancelled(first.await.unwrap()));
    assert_eq!(second.await.unwrap().unwrap(), Some(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[scope_runtime::test(paused)]
async fn r03_sender_cancelled_then_room_made_in_the_same_turn_sends_nothing() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).await.unwrap();
    let sender = spawn({
        let tx = tx.clone();
        async move {
            match tx.send(2).await {
                Err(SendError::Cancelled(v, _)) => Ok::<_, Cancelled>(v),
                other => panic!("expected a cancelled send, got {other:?}"),
            }
        }
    });
    settle().await;
    sender.cancel();
    assert_eq!(rx.try_recv(), Ok(1)); // room made: the cancelled sender is skipped
    assert_eq!(sender.await.unwrap().unwrap(), 2, "the message came back");
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
}

#[scope_runtime::test(paused)]
async fn r05_waiter_cancelled_then_lock_released_in_the_same_turn_does_not_get_it() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let held = m.lock().await.unwrap();
    let first = spawn({
        let m = m.clone();
        async move {
            m.lock().await?.push("first");
            Ok::<_, Cancelled>(())
        }
    });
    let second = spawn({
        let m = m.clone();
        async move {
            m.lock().await?.push("second");
            Ok::<_, Cancelled>(())
        }
    });
    settle().await;
    first.cancel();
    drop(held); // same turn: `first` is skipped, `second` is granted
    assert!(first.await.unwrap().is_cancelled());
    second.await.unwrap().unwrap();
    assert_eq!(*m.lock().await.unwrap(), ["second"]);
}

#[scope_runtime::test(paused)]
async fn skipped_waiter_whose_cancel_was_withdrawn_takes_what_skipped_it() {
    // Channel: the message went to the buffer past the cancelled receiver; after
    // `uncancel` the receiver runs on and takes it.
    let (tx, rx) = channel::<u32>(1);
    let r = spawn(async move { rx.recv().await });
    settle().await;
    r.cancel();
    tx.try_send(1).unwrap();
    assert_eq!(r.uncancel(), 0);
    assert_eq!(r.await.unwrap().unwrap(), Some(1));
    // Mutex: released past the cancelled waiter; after `uncancel` it takes the lock.
    let m = Rc::new(Mutex::new(0));
    let held = m.lock().await.unwrap();
    let w = spawn({
        let m = m.clone();
        async move {
            *m.lock().await? += 1;
            Ok::<_, Cancelled>(())
        }
    });
    settle().await;
    w.cancel();
    drop(held);
    assert!(!m.is_locked(), "released, the only waiter being cancelled");
    w.uncancel();
    w.await.unwrap().unwrap();
    assert_eq!(*m.try_lock().unwrap(), 1);
    // Semaphore: the same with permits.
    let sem = Rc::new(Semaphore::new(0));
    let w = spawn({
        let sem = sem.clone();
        async move { sem.acquire().await.map(|p| p.forget()) }
    });
    settle().await;
    w.cancel();
    sem.add_permits(1);
    assert_eq!(
        sem.available_permits(),
        1,
        "not granted to a cancelled waiter"
    );
    w.uncancel();
    w.await.unwrap().unwrap();
    assert_eq!(sem.available_permits(), 0);
}

#[scope_runtime::test(paused)]
async fn semaphore_notify_event_oneshot_skip_a_waiter_cancelled_in_the_same_turn() {
    // Semaphore: the permit goes to the second waiter.
    let sem = Rc::new(Semaphore::new(0));
    let spawn_acquire = |sem: &Rc<Semaphore>| {
        let sem = sem.clone();
        spawn(async move { sem.acquire().await.map(|p| p.forget()) })
    };
    let a = spawn_acquire(&sem);
    let b = spawn_acquire(&sem);
    settle().await;
    a.cancel();
    sem.add_permits(1);
    assert!(a.await.unwrap().is_cancelled());
    b.await.unwrap().unwrap();
    assert_eq!(sem.available_permits(), 0);

    // Notify: the notification goes to the second waiter.
    let n = Rc::new(Notify::new());
    let spawn_wait = |n: &Rc<Notify>| {
        let n = n.clone();
        spawn(async move { n.notified().await })
    };
    let a = spawn_wait(&n);
    let b = spawn_wait(&n);
    settle().await;
    a.cancel();
    n.notify_one();
    assert!(a.await.unwrap().is_cancelled());
    b.await.unwrap().unwrap();

    // Event: a waiter cancelled before the `set` fails; the others succeed.
    let ev = Rc::new(Event::new());
    let spawn_ev = |ev: &Rc<Event>| {
        let ev = ev.clone();
        spawn(async move { ev.wait().await })
    };
    let a = spawn_ev(&ev);
    let b = spawn_ev(&ev);
    settle().await;
    a.cancel();
    ev.set();
    assert!(a.await.unwrap().is_cancelled());
    b.await.unwrap().unwrap();

    // Oneshot: the cancelled receiver fails and the value stays in the channel.
    let (tx, mut rx) = oneshot::<u8>();
    let scope = CancelScope::new();
    let first_try = spawn({
        let scope = scope.clone();
        async move {
            let r = scope
                .run(async { Ok::<_, Cancelled>((&mut rx).await) })
                .await;
            Ok::<_, Cancelled>((r, rx))
        }
    });
    settle().await;
    scope.cancel();
    tx.send(9).unwrap();
    let (r, rx) = first_try.await.unwrap().unwrap();
    assert!(
        r.unwrap().unwrap().is_err(),
        "cancelled before the value came"
    );
    assert_eq!(
        rx.await,
        Ok(Some(9)),
        "the value stayed for a later receive"
    );
}

// ---------------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn channel_is_fifo_and_ends_after_draining() {
    let (tx, rx) = channel(3);
    let producer = spawn(async move {
        for i in 0..100 {
            tx.send(i).await.map_err(SendError::into_error)?;
        }
        Ok::<_, BoxError>(())
    });
    let mut got = Vec::new();
    while let Some(v) = rx.recv().await.unwrap() {
        got.push(v);
    }
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert!(producer.await.unwrap().into_result().is_ok());
    assert_eq!(rx.recv().await, Ok(None), "stays ended");
}

#[scope_runtime::test(paused)]
async fn receivers_gone_wakes_blocked_senders_with_their_message() {
    let (tx, rx) = channel::<String>(1);
    tx.send("a".into()).await.unwrap();
    let sender = spawn(async move {
        match tx.send("b".into()).await {
            Err(SendError::Closed(v)) => Ok::<_, Cancelled>(v),
            other => panic!("expected Closed, got {other:?}"),
        }
    });
    settle().await;
    drop(rx); // drops "a" with the channel's buffer
    assert_eq!(sender.await.unwrap().unwrap(), "b");
}

#[scope_runtime::test(paused)]
async fn senders_gone_wakes_blocked_receivers() {
    let (tx, rx) = channel::<u8>(1);
    let rx2 = rx.clone();
    let a = spawn(async move { rx.recv().await });
    let b = spawn(async move { rx2.recv().await });
    settle().await;
    drop(tx);
    assert_eq!(a.await.unwrap().unwrap(), None);
    assert_eq!(b.await.unwrap().unwrap(), None);
}

#[scope_runtime::test(paused)]
async fn rendezvous_channel_hands_over_in_both_directions() {
    let (tx, rx) = channel::<u32>(0);
    assert!(tx.try_send(1).unwrap_err().is_full(), "nobody is receiving");
    // A blocked sender is taken by a receiver...
    let s = spawn({
        let tx = tx.clone();
        async move { tx.send(1).await.map_err(|e| e.into_cancelled().unwrap()) }
    });
    settle().await;
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(s.await.unwrap().into_result().is_ok());
    // ...and a waiting receiver takes a sender's message.
    let r = spawn(async move { rx.recv().await });
    settle().await;
    assert_eq!(tx.try_send(2), Ok(()));
    assert_eq!(r.await.unwrap().unwrap(), Some(2));
}

#[scope_runtime::test(paused)]
async fn blocked_senders_are_served_in_fifo_order() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(0).await.unwrap();
    let mut senders = Vec::new();
    for i in 1..=5 {
        let tx = tx.clone();
        senders.push(spawn(async move {
            tx.send(i).await.map_err(|e| e.into_cancelled().unwrap())
        }));
        settle().await;
    }
    drop(tx);
    let mut got = Vec::new();
    while let Some(v) = rx.recv().await.unwrap() {
        got.push(v);
    }
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}

#[scope_runtime::test(paused)]
async fn receive_future_dropped_after_the_handoff_passes_the_message_on() {
    let (tx, rx) = channel::<u32>(1);
    let mut first = Box::pin(rx.recv());
    assert!(poll!(first.as_mut()).is_pending()); // waiting, first in line
    let second = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    settle().await; // second waits behind it
    tx.try_send(1).unwrap(); // handed to `first`
    tx.try_send(2).unwrap(); // handed to `second`
    // `first` is dropped without looking: 1 must not be lost.
    drop(first);
    assert_eq!(second.await.unwrap().unwrap(), Some(2));
    assert_eq!(rx.try_recv(), Ok(1), "put back at the front");
}

#[scope_runtime::test(paused)]
async fn receive_future_dropped_after_the_handoff_gives_the_message_to_the_next_waiter() {
    let (tx, rx) = channel::<u32>(1);
    let mut first = Box::pin(rx.recv());
    assert!(poll!(first.as_mut()).is_pending());
    let second = spawn({
        let rx = rx.clone();
        async move { rx.recv().await }
    });
    settle().await;
    tx.try_send(1).unwrap(); // handed to `first`; `second` still waits
    drop(first);
    assert_eq!(second.await.unwrap().unwrap(), Some(1));
}

#[scope_runtime::test(paused)]
async fn send_future_dropped_while_blocked_sends_nothing() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).await.unwrap();
    let mut blocked = Box::pin(tx.send(2));
    assert!(poll!(blocked.as_mut()).is_pending());
    drop(blocked);
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

#[scope_runtime::test(paused)]
async fn send_future_dropped_after_its_message_was_taken_keeps_it_sent() {
    let (tx, rx) = channel::<u32>(1);
    tx.send(1).await.unwrap();
    let mut blocked = Box::pin(tx.send(2));
    assert!(poll!(blocked.as_mut()).is_pending());
    assert_eq!(rx.try_recv(), Ok(1)); // 2 moves into the buffer
    drop(blocked);
    assert_eq!(rx.try_recv(), Ok(2));
}

#[scope_runtime::test(paused)]
async fn s14_task_blocked_in_recv_or_send_is_woken_by_the_cancel() {
    let (tx, rx) = channel::<u32>(0);
    let t0 = now();
    let r = move_on_after(Duration::from_secs(3), rx.recv()).await;
    assert_eq!(r, Ok(None));
    let s = move_on_after(Duration::from_secs(3), tx.send(1)).await;
    assert!(matches!(s, Ok(None)));
    assert_eq!(now() - t0, Duration::from_secs(6));
}

#[scope_runtime::test(paused)]
async fn unbounded_send_never_waits_and_is_not_a_checkpoint() {
    let (tx, rx) = unbounded();
    let scope = CancelScope::new();
    scope.cancel();
    let out = scope
        .run(async {
            for i in 0..10_000 {
                tx.send(i).unwrap(); // cancelled code may still send: no checkpoint
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(Some(())));
    assert_eq!(rx.len(), 10_000);
    drop(tx);
    let mut n = 0;
    while let Some(v) = rx.recv().await.unwrap() {
        assert_eq!(v, n);
        n += 1;
    }
    assert_eq!(n, 10_000);
}

#[scope_runtime::test(paused)]
async fn send_error_through_question_mark_into_box_error_is_absorbed_by_the_group() {
    let (tx, _rx) = channel::<u32>(0); // nobody receives
    let (_tx, rx) = channel::<u32>(0); // nobody sends
    let res = task_group(|tg| async move {
        tg.spawn(async move {
            tx.send(1).await?;
            unreachable!()
        });
        tg.spawn(async move {
            rx.recv().await?; // nothing is sent: Cancelled through `?`
            unreachable!()
        });
        settle().await;
        tg.cancel();
        Ok(())
    })
    .await;
    assert!(matches!(res, Ok(Some(()))), "{res:?}");
}

#[scope_runtime::test(paused)]
async fn send_error_through_question_mark_into_io_error_is_recognised() {
    async fn io_code(tx: &scope_runtime::sync::Sender<u8>) -> io::Result<()> {
        tx.send(1).await?;
        Ok(())
    }
    let (tx, rx) = channel::<u8>(0);
    let scope = CancelScope::new();
    scope.cancel();
    assert_eq!(scope.run(io_code(&tx)).await.unwrap(), None, "absorbed");
    assert!(scope.cancelled_caught());
    drop(rx);
    let err = io_code(&tx).await.unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe);
    assert!(err.as_cancelled().is_none());
}

#[test]
fn send_error_accessors() {
    let (tx, rx) = unbounded::<u8>();
    drop(rx);
    let e = tx.send(9).unwrap_err();
    assert!(e.is_closed() && !e.is_cancelled());
    assert!(e.as_cancelled().is_none());
    assert_eq!(format!("{e:?}"), "Closed(..)");
    assert!(e.to_string().contains("closed"));
    assert_eq!(e.into_inner(), 9);
    let (tx, _rx) = channel::<u8>(1);
    tx.try_send(1).unwrap();
    assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
}

#[test]
fn handles_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<scope_runtime::sync::Sender<Vec<u8>>>();
    check::<scope_runtime::sync::UnboundedSender<Vec<u8>>>();
    check::<scope_runtime::sync::Receiver<Vec<u8>>>();
    check::<scope_runtime::sync::OneshotSender<Vec<u8>>>();
    check::<scope_runtime::sync::OneshotReceiver<Vec<u8>>>();
    check::<Event>();
    check::<Notify>();
    check::<Semaphore>();
    check::<Mutex<Vec<u8>>>();
    check::<scope_runtime::sync::OwnedSemaphorePermit>();
}

#[test]
fn handle_debug_output() {
    let (tx, rx) = channel::<u8>(2);
    tx.try_send(1).unwrap();
    let s = format!("{tx:?}");
    assert!(s.contains("len: 1") && s.contains("capacity: 2"), "{s}");
    let (utx, _urx) = unbounded::<u8>();
    assert!(format!("{utx:?}").contains("unbounded"));
    assert_eq!(rx.capacity(), Some(2));
    assert!(tx.same_channel(&tx.clone()));
}

// ---------------------------------------------------------------------------------
// Oneshot
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn oneshot_value_and_dropped_sender() {
    let (tx, rx) = oneshot();
    let waiter = spawn(rx);
    settle().await;
    tx.send(5u8).unwrap();
    assert_eq!(waiter.await.unwrap().unwrap(), Some(5));

    let (tx, rx) = oneshot::<u8>();
    drop(tx);
    assert_eq!(rx.await, Ok(None));
}

#[scope_runtime::test(paused)]
async fn oneshot_value_sent_to_a_waiting_receiver_before_the_cancel_is_returned() {
    let (tx, rx) = oneshot::<u8>();
    let waiter = spawn(async move {
        let v = rx.await;
        Ok::<_, Cancelled>((v, checkpoint().await.is_err()))
    });
    settle().await;
    tx.send(1).unwrap();
    waiter.cancel(); // same turn
    assert_eq!(waiter.await.unwrap().unwrap(), (Ok(Some(1)), true));
}

#[scope_runtime::test(paused)]
async fn oneshot_cancelled_receiver_leaves_the_value_and_sender_sees_the_drop() {
    let (tx, mut rx) = oneshot::<u8>();
    assert!(
        move_on_after(Duration::from_secs(1), &mut rx)
            .await
            .unwrap()
            .is_none()
    );
    tx.send(2).unwrap();
    assert_eq!(rx.try_recv(), Ok(2));

    let (tx, rx) = oneshot::<u8>();
    let h = spawn(rx);
    settle().await;
    h.cancel();
    assert!(h.await.unwrap().is_cancelled());
    assert!(tx.is_closed(), "the receiver was dropped with its task");
    assert_eq!(tx.send(3), Err(3));
}

// ---------------------------------------------------------------------------------
// Event
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn event_set_wakes_every_waiter() {
    let ev = Rc::new(Event::new());
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let ev = ev.clone();
            spawn(async move { ev.wait().await })
        })
        .collect();
    settle().await;
    assert!(ev.set());
    for h in handles {
        assert!(h.await.unwrap().into_result().is_ok());
    }
    assert_eq!(ev.wait().await, Ok(()), "stays set");
}

#[scope_runtime::test(paused)]
async fn event_wait_is_a_checkpoint_even_when_set() {
    let ev = Event::new();
    ev.set();
    let scope = CancelScope::new();
    scope.cancel();
    let r = scope
        .run(async { Ok::<_, Cancelled>(ev.wait().await.is_err()) })
        .await;
    assert_eq!(r, Ok(Some(true)));
}

#[scope_runtime::test(paused)]
async fn event_set_before_the_waiter_noticed_its_cancel_returns_ok() {
    let ev = Rc::new(Event::new());
    let waiter = spawn({
        let ev = ev.clone();
        async move { Ok::<_, Cancelled>((ev.wait().await, checkpoint().await.is_err())) }
    });
    settle().await;
    ev.set();
    waiter.cancel();
    assert_eq!(waiter.await.unwrap().unwrap(), (Ok(()), true));
}

#[scope_runtime::test(paused)]
async fn event_cancelled_waiter_leaves_the_queue() {
    let ev = Rc::new(Event::new());
    let a = spawn({
        let ev = ev.clone();
        async move { ev.wait().await }
    });
    let b = spawn({
        let ev = ev.clone();
        async move { ev.wait().await }
    });
    settle().await;
    a.cancel();
    settle().await;
    assert!(a.await.unwrap().is_cancelled());
    ev.set();
    assert!(b.await.unwrap().into_result().is_ok());
    assert!(format!("{ev:?}").contains("set: true"));
}

// ---------------------------------------------------------------------------------
// Mutex
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn mutex_is_fair_fifo_and_excludes() {
    let m = Rc::new(Mutex::new(Vec::new()));
    let inside = Rc::new(std::cell::Cell::new(0));
    task_group(|tg| {
        let m = m.clone();
        async move {
            for i in 0..20 {
                let m = m.clone();
                let inside = inside.clone();
                tg.spawn(async move {
                    let mut g = m.lock().await?;
                    inside.set(inside.get() + 1);
                    assert_eq!(inside.get(), 1, "mutual exclusion");
                    sleep(Duration::from_millis(1)).await?;
                    g.push(i);
                    inside.set(inside.get() - 1);
                    Ok(())
                });
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    assert_eq!(*m.lock().await.unwrap(), (0..20).collect::<Vec<_>>());
}

#[scope_runtime::test(paused)]
async fn lock_future_dropped_after_the_grant_passes_the_lock_on() {
    let m = Rc::new(Mutex::new(0));
    let held = m.lock().await.unwrap();
    let mut first = Box::pin(m.lock());
    assert!(poll!(first.as_mut()).is_pending());
    let second = spawn({
        let m = m.clone();
        async move {
            *m.lock().await? += 1;
            Ok::<_, Cancelled>(())
        }
    });
    settle().await;
    drop(held); // granted to `first`
    drop(first); // which never takes it: `second` must get it
    assert!(second.await.unwrap().into_result().is_ok());
    assert_eq!(*m.try_lock().unwrap(), 1);
}

#[test]
fn mutex_without_a_runtime_and_from_threads() {
    let m = Arc::new(Mutex::new(0u64));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..1000 {
                    *futures::executor::block_on(m.lock()).unwrap() += 1;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*m.try_lock().unwrap(), 4000);
}

// ---------------------------------------------------------------------------------
// Semaphore
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn semaphore_bounds_concurrency() {
    let sem = Arc::new(Semaphore::new(3));
    let active = Rc::new(RefCell::new((0, 0))); // (now, max)
    task_group(|tg| {
        let active = active.clone();
        async move {
            for _ in 0..12 {
                let sem = sem.clone();
                let active = active.clone();
                tg.spawn(async move {
                    let _p = sem.acquire().await?;
                    {
                        let mut a = active.borrow_mut();
                        a.0 += 1;
                        a.1 = a.1.max(a.0);
                    }
                    sleep(Duration::from_millis(5)).await?;
                    active.borrow_mut().0 -= 1;
                    Ok(())
                });
            }
            Ok(())
        }
    })
    .await
    .unwrap();
    assert_eq!(*active.borrow(), (0, 3));
}

#[scope_runtime::test(paused)]
async fn semaphore_big_request_in_front_holds_back_smaller_ones() {
    let sem = Rc::new(Semaphore::new(1));
    let order = Rc::new(RefCell::new(Vec::new()));
    let mk = |n: u32, tag: &'static str| {
        let sem = sem.clone();
        let order = order.clone();
        spawn(async move {
            let p = sem.acquire_many(n).await?;
            order.borrow_mut().push(tag);
            drop(p);
            Ok::<_, Cancelled>(())
        })
    };
    let held = sem.acquire().await.unwrap();
    let big = mk(2, "big");
    settle().await;
    let small = mk(1, "small");
    settle().await;
    assert!(sem.try_acquire_many(1).is_none());
    drop(held); // 1 free: not enough for `big`, and `small` may not pass it
    settle().await;
    assert!(order.borrow().is_empty());
    sem.add_permits(1);
    big.await.unwrap().unwrap();
    small.await.unwrap().unwrap();
    assert_eq!(*order.borrow(), ["big", "small"]);
    assert_eq!(sem.available_permits(), 2);
}

#[scope_runtime::test(paused)]
async fn semaphore_cancelled_waiter_takes_nothing_and_unblocks_the_ones_behind() {
    let sem = Rc::new(Semaphore::new(1));
    let big = spawn({
        let sem = sem.clone();
        async move { sem.acquire_many(5).await.map(|p| p.permits()) }
    });
    settle().await;
    let small = spawn({
        let sem = sem.clone();
        async move { sem.acquire().await.map(|p| p.permits()) }
    });
    settle().await;
    assert_eq!(sem.available_permits(), 1, "small waits behind big");
    big.cancel();
    assert!(big.await.unwrap().is_cancelled());
    assert_eq!(small.await.unwrap().unwrap(), 1);
    assert_eq!(sem.available_permits(), 1);
}

#[scope_runtime::test(paused)]
async fn semaphore_permits_granted_before_the_cancel_are_kept() {
    let sem = Rc::new(Semaphore::new(0));
    let w = spawn({
        let sem = sem.clone();
        async move {
            let p = sem.acquire_many(2).await;
            let n = p.as_ref().map(|p| p.permits()).ok();
            Ok::<_, Cancelled>((n, checkpoint().await.is_err()))
        }
    });
    settle().await;
    sem.add_permits(2); // granted to w
    w.cancel();
    assert_eq!(w.await.unwrap().unwrap(), (Some(2), true));
    assert_eq!(sem.available_permits(), 2, "released on drop");
}

#[scope_runtime::test(paused)]
async fn semaphore_acquire_dropped_after_the_grant_passes_permits_on() {
    let sem = Rc::new(Semaphore::new(0));
    let mut first = Box::pin(sem.acquire());
    assert!(poll!(first.as_mut()).is_pending());
    let second = spawn({
        let sem = sem.clone();
        async move { sem.acquire().await.map(|p| p.forget()) }
    });
    settle().await;
    sem.add_permits(1); // granted to `first`
    drop(first);
    assert!(second.await.unwrap().into_result().is_ok());
    assert_eq!(sem.available_permits(), 0, "second took it and forgot it");
}

// ---------------------------------------------------------------------------------
// Notify
// ---------------------------------------------------------------------------------

#[scope_runtime::test(paused)]
async fn notify_one_wakes_in_fifo_order_and_notify_waiters_wakes_all() {
    let n = Rc::new(Notify::new());
    let log = Rc::new(RefCell::new(Vec::new()));
    let hs: Vec<_> = (0..3)
        .map(|i| {
            let n = n.clone();
            let log = log.clone();
            spawn(async move {
                n.notified().await?;
                log.borrow_mut().push(i);
                Ok::<_, Cancelled>(())
            })
        })
        .collect();
    settle().await;
    n.notify_one();
    settle().await;
    assert_eq!(*log.borrow(), [0]);
    n.notify_waiters();
    for h in hs {
        h.await.unwrap().unwrap();
    }
    assert_eq!(*log.borrow(), [0, 1, 2]);
    // notify_waiters stored nothing:
    assert!(
        move_on_after(Duration::from_secs(1), n.notified())
            .await
            .unwrap()
            .is_none()
    );
}

#[scope_runtime::test(paused)]
async fn notify_cancelled_waiter_takes_no_notification() {
    let n = Rc::new(Notify::new());
    let a = spawn({
        let n = n.clone();
        async move { n.notified().await }
    });
    let b = spawn({
        let n = n.clone();
        async move { n.notified().await }
    });
    settle().await;
    a.cancel();
    settle().await;
    n.notify_one();
    assert!(a.await.unwrap().is_cancelled());
    assert!(b.await.unwrap().into_result().is_ok());
}

#[scope_runtime::test(paused)]
async fn notify_one_handed_over_is_kept_or_passed_on() {
    // Kept by a waiter cancelled after it was notified...
    let n = Rc::new(Notify::new());
    let a = spawn({
        let n = n.clone();
        async move { Ok::<_, Cancelled>(n.notified().await) }
    });
    settle().await;
    n.notify_one();
    a.cancel();
    assert_eq!(a.await.unwrap().unwrap(), Ok(()));
    // ...and passed on by a waiter dropped after it was notified.
    let mut first = Box::pin(n.notified());
    assert!(poll!(first.as_mut()).is_pending());
    n.notify_one();
    drop(first);
    assert_eq!(
        n.notified().await,
        Ok(()),
        "the notification became a permit"
    );
}

// ---------------------------------------------------------------------------------
// Other threads
// ---------------------------------------------------------------------------------

#[scope_runtime::test]
async fn std_thread_sends_into_a_bounded_channel_and_wakes_the_runtime() {
    let (tx, rx) = channel(2);
    let thread = std::thread::spawn(move || {
        for i in 0..2000u32 {
            // A plain thread drives `send` with any executor; it blocks while full
            // and is woken by the runtime's receives.
            futures::executor::block_on(tx.send(i)).unwrap();
        }
    });
    let mut got = Vec::new();
    while let Some(v) = rx.recv().await.unwrap() {
        got.push(v);
    }
    thread.join().unwrap();
    assert_eq!(got, (0..2000).collect::<Vec<_>>());
}

#[scope_runtime::test]
async fn std_thread_receives_what_the_runtime_sends() {
    let (tx, rx) = channel(1);
    let thread = std::thread::spawn(move || {
        let mut sum = 0u64;
        while let Some(v) = futures::executor::block_on(rx.recv()).unwrap() {
            sum += v;
        }
        sum
    });
    for i in 0..1000u64 {
        tx.send(i).await.unwrap();
    }
    drop(tx);
    assert_eq!(thread.join().unwrap(), 999 * 1000 / 2);
}

#[scope_runtime::test]
async fn std_threads_wake_event_notify_semaphore_oneshot_and_unbounded() {
    let ev = Arc::new(Event::new());
    let notify = Arc::new(Notify::new());
    let sem = Arc::new(Semaphore::new(0));
    let (otx, orx) = oneshot();
    let (utx, urx) = unbounded();
    let thread = std::thread::spawn({
        let (ev, notify, sem) = (ev.clone(), notify.clone(), sem.clone());
        move || {
            let pause = || std::thread::sleep(Duration::from_millis(5));
            pause();
            ev.set();
            pause();
            notify.notify_one();
            pause();
            sem.add_permits(1);
            pause();
            otx.send("oneshot").unwrap();
            pause();
            utx.send("unbounded").unwrap();
        }
    });
    assert_eq!(ev.wait().await, Ok(()));
    assert_eq!(notify.notified().await, Ok(()));
    sem.acquire().await.unwrap().forget();
    assert_eq!(orx.await, Ok(Some("oneshot")));
    assert_eq!(urx.recv().await, Ok(Some("unbounded")));
    assert_eq!(
        urx.recv().await,
        Ok(None),
        "the thread's sender was dropped"
    );
    thread.join().unwrap();
}

// ---- close() ----------------------------------------------------------------------

#[test]
fn close_wakes_a_blocked_sender_with_its_message_and_keeps_the_buffer() {
    scope_runtime::Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(async {
            let (tx, rx) = channel(1);
            tx.send(1).await.unwrap();
            let t0 = now();
            task_group(|tg| async move {
                let tx2 = tx.clone();
                tg.spawn(async move {
                    // Blocked on the full channel until the close at 1 s.
                    match tx2.send(2).await {
                        Err(SendError::Closed(v)) => assert_eq!(v, 2),
                        other => panic!("expected Closed(2), got {other:?}"),
                    }
                    assert_eq!(now() - t0, Duration::from_secs(1));
                    Ok(())
                });
                sleep(Duration::from_secs(1)).await?;
                assert!(rx.close());
                assert!(tx.is_closed() && rx.is_closed());
                assert_eq!(rx.recv().await?, Some(1), "accepted before the close");
                assert_eq!(rx.recv().await?, None);
                Ok(())
            })
            .await
            .unwrap();
        });
}

#[test]
fn close_from_a_sender_ends_a_waiting_receiver_and_the_stream() {
    use futures::StreamExt;
    scope_runtime::Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(async {
            let (tx, mut rx) = unbounded::<u32>();
            let t0 = now();
            task_group(|tg| async move {
                let rx2 = rx.clone();
                tg.spawn(async move {
                    assert_eq!(rx2.recv().await?, None);
                    assert_eq!(now() - t0, Duration::from_secs(2));
                    Ok(())
                });
                sleep(Duration::from_secs(2)).await?;
                assert!(tx.close());
                assert!(matches!(tx.send(5), Err(SendError::Closed(5))));
                assert!(rx.next().await.is_none());
                Ok(())
            })
            .await
            .unwrap();
        });
}

#[test]
fn close_from_another_thread_wakes_the_runtime() {
    scope_runtime::Runtime::new().unwrap().block_on(async {
        let (tx, rx) = channel::<u8>(1);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.close()
        });
        let r = move_on_after(Duration::from_secs(10), rx.recv()).await;
        assert_eq!(r, Ok(Some(None)));
        assert!(t.join().unwrap());
    });
}

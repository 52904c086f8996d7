//! R: races and data (rules R1, R10, R11), plus the channel and lock parts of S14.
//!
//! The channel and lock cases use `scope_runtime::sync`, the socket cases
//! `scope_runtime::io` (a Unix socket pair: no network needed).

use std::cell::RefCell;
use std::rc::Rc;

use scope_runtime::io::UnixStream;
use scope_runtime::sync::{Mutex, SendError, TryRecvError, channel};
use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, Outcome, TaskHandle, checkpoint, sleep, spawn,
    task_group,
};

use crate::{Log, assert_groups, secs};

/// S14 (I/O, channel and lock parts): a cancelled task blocked in a channel receive, a
/// channel send, a lock or a socket read (waiting for readiness) is woken and fails.
#[scope_runtime::test(paused)]
#[cfg_attr(
    miri,
    ignore = "real sockets: Miri's socket emulation is partial (ENOTSOCK)"
)]
async fn s14_cancel_wakes_blocked_io_channel_and_lock() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    let mutex = Rc::new(Mutex::new(0u32));
    let held = mutex.lock().await.unwrap();
    tx.try_send("fills the channel").unwrap();
    let scope = CancelScope::new();
    let s = scope.clone();
    let canceller = spawn(async move {
        sleep(secs(1)).await?;
        s.cancel();
        Ok::<_, Cancelled>(())
    });
    let (_peer, sock) = UnixStream::pair().unwrap();
    let (l, m, tx_body) = (log.clone(), mutex.clone(), tx.clone());
    let out = scope
        .run(async move {
            task_group(|tg| async move {
                let (keep_tx, rx2) = channel::<u8>(1);
                let l2 = l.clone();
                tg.spawn(async move {
                    let _sender_alive = keep_tx;
                    let r = rx2.recv().await;
                    l2.push(format!("recv -> {r:?}"));
                    r?;
                    Ok(())
                });
                let l2 = l.clone();
                let tx2 = tx_body.clone();
                tg.spawn(async move {
                    let r = tx2.send("blocked").await;
                    l2.push(format!(
                        "send -> cancelled={} value back={:?}",
                        matches!(r, Err(SendError::Cancelled(..))),
                        r.as_ref()
                            .err()
                            .map(|e| matches!(e, SendError::Cancelled("blocked", _)))
                    ));
                    r?;
                    Ok(())
                });
                let l2 = l.clone();
                tg.spawn(async move {
                    let res = sock.read(&mut [0u8; 8]).await;
                    l2.push(format!(
                        "socket read -> cancelled={}",
                        res.as_ref()
                            .err()
                            .is_some_and(|e| e.as_cancelled().is_some())
                    ));
                    res?;
                    Ok(())
                });
                let l2 = l.clone();
                tg.spawn(async move {
                    let r = m.lock().await;
                    l2.push(format!("lock -> cancelled={}", r.is_err()));
                    r?;
                    Ok(())
                });
                Ok(())
            })
            .await?;
            Ok::<_, BoxError>(())
        })
        .await;
    assert!(matches!(out, Ok(None)), "{out:?}");
    assert!(scope.cancelled_caught());
    canceller.await.unwrap().unwrap();
    // Nothing was taken, sent or held.
    assert_eq!(rx.try_recv(), Ok("fills the channel"));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    drop(held);
    assert!(!mutex.is_locked());
    assert_groups(
        &log.timed(),
        &[&[
            "1s recv -> Err(Cancelled { reason: Explicit(None), .. })",
            "1s send -> cancelled=true value back=Some(true)",
            "1s lock -> cancelled=true",
            "1s socket read -> cancelled=true",
        ]],
    );
}

/// R01 (seed footnote): a message handed to a waiting receiver before the cancel is
/// returned by that await; the next checkpoint fails.
#[scope_runtime::test(paused)]
async fn r01_handed_message_kept_next_checkpoint_fails() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let receiver = spawn(async move {
        s.run(async move {
            let r = rx.recv().await;
            l.push(format!("receiver: recv -> {r:?}"));
            if let Err(c) = checkpoint().await {
                l.push("receiver: next checkpoint failed");
                return Err(c);
            }
            r
        })
        .await
    });
    sleep(secs(1)).await.unwrap(); // the receiver is blocked in recv
    tx.try_send("msg").unwrap(); // put_nowait(foo)
    scope.cancel(); // immediately followed by tg.cancel()
    log.push("main: sent, then cancelled");
    match receiver.await.unwrap() {
        Outcome::Ok(v) => assert_eq!(v, None, "the scope absorbed the cancel"),
        other => panic!("{other:?}"),
    }
    assert!(scope.cancelled_caught());
    assert!(tx.is_empty(), "the message was not put back or duplicated");
    assert_eq!(
        log.timed(),
        [
            "1s main: sent, then cancelled",
            "1s receiver: recv -> Ok(Some(\"msg\"))",
            "1s receiver: next checkpoint failed"
        ]
    );
}

/// R02: a receiver cancelled before any message arrived consumes nothing: the message
/// goes to the next receiver.
#[scope_runtime::test(paused)]
async fn r02_cancelled_receiver_consumes_nothing() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    let (l, rx1) = (log.clone(), rx.clone());
    let first = spawn(async move {
        let r = CancelScope::new()
            .with_timeout(secs(1))
            .run(async { rx1.recv().await })
            .await;
        l.push(format!("first (queued first, timeout 1s): {r:?}"));
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let second = spawn(async move {
        let r = rx.recv().await;
        l.push(format!("second: {r:?}"));
        Ok::<_, Cancelled>(())
    });
    sleep(secs(2)).await.unwrap();
    tx.send("msg").await.unwrap();
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    assert_eq!(
        log.timed(),
        [
            "1s first (queued first, timeout 1s): Ok(None)",
            "2s second: Ok(Some(\"msg\"))"
        ]
    );
}

/// R02, same instant: the first receiver is cancelled and then, before it ran again,
/// a message is sent. It was cancelled before the message arrived, so it must take
/// nothing; the message goes to the second receiver (Trio: a cancelled task leaves the
/// wait queue at once).
#[scope_runtime::test(paused)]
async fn r02_receiver_cancelled_then_send_same_tick() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    let scope = CancelScope::new();
    let (l, s, rx1) = (log.clone(), scope.clone(), rx.clone());
    let first = spawn(async move {
        let r = s.run(async { rx1.recv().await }).await;
        l.push(format!("first: {r:?}"));
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let second = spawn(async move {
        let r = rx.recv().await;
        l.push(format!("second: {r:?}"));
        Ok::<_, Cancelled>(())
    });
    sleep(secs(1)).await.unwrap(); // both receivers are queued, `first` in front
    scope.cancel();
    tx.try_send("msg").unwrap();
    first.await.unwrap().unwrap();
    drop(tx); // ends the channel, so a starved `second` sees the end instead of hanging
    second.await.unwrap().unwrap();
    assert_groups(
        &log.timed(),
        &[&["1s first: Ok(None)", "1s second: Ok(Some(\"msg\"))"]],
    );
}

/// R03: a sender cancelled while blocked on a full channel has sent nothing; its value
/// comes back.
#[scope_runtime::test(paused)]
async fn r03_cancelled_blocked_sender_sent_nothing() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    tx.try_send("first").unwrap();
    let l = log.clone();
    let sender = spawn(async move {
        let r = CancelScope::new()
            .with_timeout(secs(1))
            .run(async {
                match tx.send("second").await {
                    Ok(()) => Ok("sent"),
                    Err(SendError::Cancelled(v, c)) => {
                        l.push(format!("sender: cancelled, got back {v:?}"));
                        Err(c)
                    }
                    Err(SendError::Closed(_)) => Ok("closed"),
                }
            })
            .await;
        l.push(format!("sender: scope returned {r:?}"));
        Ok::<_, Cancelled>(tx)
    });
    sleep(secs(2)).await.unwrap();
    let _tx = sender.await.unwrap().unwrap();
    let (a, b) = (rx.try_recv(), rx.try_recv());
    log.push(format!("main: try_recv -> {a:?}, then {b:?}"));
    assert_eq!(a, Ok("first"));
    assert_eq!(
        b,
        Err(TryRecvError::Empty),
        "the cancelled send got through"
    );
    assert_eq!(
        log.timed(),
        [
            "1s sender: cancelled, got back \"second\"",
            "1s sender: scope returned Ok(None)",
            "2s main: try_recv -> Ok(\"first\"), then Err(Empty)"
        ]
    );
}

/// R03, same instant: the blocked sender is cancelled and then, before it ran again,
/// room is made in the channel. It was cancelled before its message was accepted, so
/// nothing must be sent.
#[scope_runtime::test(paused)]
async fn r03_sender_cancelled_then_room_made_same_tick() {
    let log = Log::new();
    let (tx, rx) = channel::<&'static str>(1);
    tx.try_send("first").unwrap();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let sender = spawn(async move {
        let r = s
            .run(async {
                match tx.send("second").await {
                    Ok(()) => Ok("sent"),
                    Err(SendError::Cancelled(_, c)) => Err(c),
                    Err(SendError::Closed(_)) => Ok("closed"),
                }
            })
            .await;
        l.push(format!("sender: {r:?}"));
        Ok::<_, Cancelled>(tx)
    });
    sleep(secs(1)).await.unwrap(); // the sender is blocked on the full channel
    scope.cancel();
    let a = rx.try_recv();
    log.push(format!("main: cancelled, then try_recv -> {a:?}"));
    assert_eq!(a, Ok("first"));
    let _tx = sender.await.unwrap().unwrap();
    let b = rx.try_recv();
    log.push(format!("main: try_recv -> {b:?}"));
    assert_eq!(
        b,
        Err(TryRecvError::Empty),
        "the cancelled send got through"
    );
    assert_eq!(
        log.timed(),
        [
            "1s main: cancelled, then try_recv -> Ok(\"first\")",
            "1s sender: Ok(None)",
            "1s main: try_recv -> Err(Empty)"
        ]
    );
}

/// R04: a read cancelled before data arrived consumes no bytes from the socket: the
/// next read gets every byte (also when the data and the cancel arrive in the same
/// tick, before the reader runs again).
#[scope_runtime::test(paused)]
#[cfg_attr(
    miri,
    ignore = "real sockets: Miri's socket emulation is partial (ENOTSOCK)"
)]
async fn r04_cancelled_read_consumes_no_bytes() {
    let log = Log::new();
    let (writer, reader) = UnixStream::pair().unwrap();
    let reader = Rc::new(reader);

    // Cancelled (timeout) while blocked, before any data.
    let (l, r) = (log.clone(), reader.clone());
    let out = CancelScope::new()
        .with_timeout(secs(1))
        .run(async move {
            let mut buf = [0u8; 16];
            let res = r.read(&mut buf).await;
            l.push(format!(
                "read 1: cancelled={}",
                res.as_ref()
                    .err()
                    .is_some_and(|e| e.as_cancelled().is_some())
            ));
            res
        })
        .await;
    assert!(matches!(out, Ok(None)), "{out:?}");

    // Data and cancel arrive together, before the blocked reader runs again.
    let scope = CancelScope::new();
    let (l, r, s) = (log.clone(), reader.clone(), scope.clone());
    let blocked = spawn(async move {
        s.run(async move {
            let mut buf = [0u8; 16];
            let res = r.read(&mut buf).await;
            l.push(format!(
                "read 2: cancelled={}",
                res.as_ref()
                    .err()
                    .is_some_and(|e| e.as_cancelled().is_some())
            ));
            res
        })
        .await
    });
    sleep(secs(1)).await.unwrap(); // the reader waits for readiness
    assert_eq!(writer.write(b"hello").await.unwrap(), 5);
    scope.cancel();
    match blocked.await.unwrap() {
        Outcome::Ok(v) => assert_eq!(v, None),
        other => panic!("{other:?}"),
    }

    // Every byte is still there.
    let mut buf = [0u8; 16];
    let n = reader.read(&mut buf).await.unwrap();
    log.push(format!(
        "read 3: {:?}",
        std::str::from_utf8(&buf[..n]).unwrap()
    ));
    assert_eq!(
        log.timed(),
        [
            "1s read 1: cancelled=true",
            "2s read 2: cancelled=true",
            "2s read 3: \"hello\""
        ]
    );
    log.flags("read 2 scope", &scope);
}

/// R05: a lock waiter cancelled before the grant does not hold the lock (the next
/// waiter gets it); a grant already made is kept.
#[scope_runtime::test(paused)]
async fn r05_lock_waiter_cancel_vs_grant() {
    let log = Log::new();
    let mutex = Rc::new(Mutex::new(Vec::<&'static str>::new()));
    let held = mutex.lock().await.unwrap();

    // Cancelled before the grant (timeout 1s while the lock is held until 2s).
    let (l, m) = (log.clone(), mutex.clone());
    let early = spawn(async move {
        let r = CancelScope::new()
            .with_timeout(secs(1))
            .run(async {
                let mut g = m.lock().await?;
                g.push("early");
                Ok::<_, Cancelled>(())
            })
            .await;
        l.push(format!("early waiter: {r:?}"));
        Ok::<_, Cancelled>(())
    });
    // Queued behind it; gets the lock when it is released.
    let (l, m) = (log.clone(), mutex.clone());
    let next = spawn(async move {
        let mut g = m.lock().await?;
        l.push("next waiter: got the lock");
        g.push("next");
        Ok::<_, Cancelled>(())
    });
    sleep(secs(2)).await.unwrap();
    drop(held);
    early.await.unwrap().unwrap();
    next.await.unwrap().unwrap();
    log.push(format!("lock holds {:?}", *mutex.lock().await.unwrap()));
    assert_eq!(*mutex.lock().await.unwrap(), ["next"]);

    // Granted, then cancelled before it ran again: it keeps the lock; the next
    // checkpoint fails; the lock is released when the guard drops.
    let held = mutex.lock().await.unwrap();
    let scope = CancelScope::new();
    let (l, m, s) = (log.clone(), mutex.clone(), scope.clone());
    let granted = spawn(async move {
        s.run(async {
            let mut g = m.lock().await?;
            l.push("granted waiter: got the lock despite the cancel");
            g.push("granted");
            if let Err(c) = checkpoint().await {
                l.push("granted waiter: next checkpoint failed");
                return Err(c);
            }
            Ok(())
        })
        .await
    });
    sleep(secs(1)).await.unwrap();
    drop(held); // grants the lock to the waiter...
    scope.cancel(); // ...and then cancels it
    match granted.await.unwrap() {
        Outcome::Ok(v) => assert_eq!(v, None),
        other => panic!("{other:?}"),
    }
    assert!(!mutex.is_locked());
    log.push(format!(
        "locked={}, lock holds {:?}",
        mutex.is_locked(),
        *mutex.lock().await.unwrap()
    ));
    assert_eq!(*mutex.lock().await.unwrap(), ["next", "granted"]);
    assert_eq!(
        log.timed(),
        [
            "1s early waiter: Ok(None)",
            "2s next waiter: got the lock",
            "2s lock holds [\"next\"]",
            "3s granted waiter: got the lock despite the cancel",
            "3s granted waiter: next checkpoint failed",
            "3s locked=false, lock holds [\"next\", \"granted\"]"
        ]
    );
}

/// R05, same instant: the waiter is cancelled and then, before it ran again, the lock
/// is released. It was cancelled before the grant, so it must not hold the lock; the
/// next waiter gets it.
#[scope_runtime::test(paused)]
async fn r05_waiter_cancelled_then_release_same_tick() {
    let log = Log::new();
    let mutex = Rc::new(Mutex::new(Vec::<&'static str>::new()));
    let held = mutex.lock().await.unwrap();
    let scope = CancelScope::new();
    let (l, m, s) = (log.clone(), mutex.clone(), scope.clone());
    let first = spawn(async move {
        let r = s
            .run(async {
                let mut g = m.lock().await?;
                g.push("cancelled waiter");
                Ok::<_, Cancelled>(())
            })
            .await;
        l.push(format!("first waiter: {r:?}"));
        Ok::<_, Cancelled>(())
    });
    let (l, m) = (log.clone(), mutex.clone());
    let second = spawn(async move {
        let mut g = m.lock().await?;
        l.push("second waiter: got the lock");
        g.push("second");
        Ok::<_, Cancelled>(())
    });
    sleep(secs(1)).await.unwrap();
    scope.cancel();
    drop(held);
    first.await.unwrap().unwrap();
    second.await.unwrap().unwrap();
    log.push(format!("lock holds {:?}", *mutex.lock().await.unwrap()));
    assert_eq!(*mutex.lock().await.unwrap(), ["second"]);
    assert_groups(
        &log.timed(),
        &[
            &[
                "1s first waiter: Ok(None)",
                "1s second waiter: got the lock",
            ],
            &["1s lock holds [\"second\"]"],
        ],
    );
}

/// A value that logs when it is dropped.
struct DropLog(Log, &'static str);

impl Drop for DropLog {
    fn drop(&mut self) {
        self.0.push(format!("{} dropped", self.1));
    }
}

/// R06: dropping a running group future cancels and drops all its children in its own
/// drop; no task is left behind.
#[scope_runtime::test(paused)]
async fn r06_dropping_group_future_drops_children() {
    let log = Log::new();
    let handles: Rc<RefCell<Vec<TaskHandle>>> = Rc::default();
    let (l, h) = (log.clone(), handles.clone());
    let mut fut = Box::pin(task_group(|tg| async move {
        for name in ["child a", "child b"] {
            let l2 = l.clone();
            h.borrow_mut().push(tg.spawn(async move {
                let _guard = DropLog(l2.clone(), name);
                sleep(secs(100)).await?;
                l2.push(format!("{name}: not reached"));
                Ok(())
            }));
        }
        let _guard = DropLog(l.clone(), "body");
        sleep(secs(100)).await?;
        l.push("body: not reached");
        Ok(())
    }));
    assert!(futures::poll!(fut.as_mut()).is_pending());
    sleep(secs(1)).await.unwrap(); // the children run and block
    assert!(handles.borrow().iter().all(|h| h.is_alive()));
    log.push("dropping the group future");
    drop(fut);
    log.push("dropped");
    assert!(
        handles.borrow().iter().all(|h| !h.is_alive()),
        "a child is left behind"
    );
    sleep(secs(200)).await.unwrap(); // nothing wakes up later
    assert_groups(
        &log.timed(),
        &[
            &["1s dropping the group future"],
            &[
                "1s body dropped",
                "1s child a dropped",
                "1s child b dropped",
            ],
            &["1s dropped"],
        ],
    );
}

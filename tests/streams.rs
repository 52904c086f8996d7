//! `futures::Stream` for the runtime's multi-item sources — channel `Receiver`,
//! `TcpListener::incoming()`, `UnixListener::incoming()`, `Signal` — and `interval`.
//!
//! Each stream: yields its items, ends where it should, reports a cancellation that
//! arrives while it is blocked in `next()` (at the exact virtual instant where the clock
//! is paused), again at the following poll (level-triggered) and inside `futures`
//! combinators; nothing handed over is lost to a cancel. Interval: the three
//! missed-tick policies against a deliberately late consumer, with exact instants.
//!
//! Every test runs on its own thread under a real-time watchdog (`run`), which also
//! checks that the runtime holds nothing afterwards. Channel, interval and signal tests
//! use the paused clock; listener tests use real loopback sockets on the real clock,
//! each also bounded by a `fail_after` safety net. Signal tests
//! raise their own signal (one signal number per test, so that tests running in
//! parallel in this process do not see each other's deliveries).

use std::cell::RefCell;
use std::future::Future;
use std::future::pending;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use futures::future::{self, Either};
use futures::stream::{FuturesUnordered, StreamExt};
use scope_runtime::io::signal::{Signal, SignalKind};
use scope_runtime::io::{TcpListener, TcpStream, UnixListener, UnixStream};
use scope_runtime::sync::{Receiver, channel, unbounded};
use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, MissedTickPolicy, Resources, Runtime,
    fail_after, interval, interval_at, move_on_after, now, sleep, task_group,
};

const SAFETY_NET: Duration = Duration::from_secs(20);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const PAUSED: bool = true;
const REAL: bool = false;
/// How long a test may run in real time before it counts as hung.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `body` on a fresh runtime (paused clock or real) on its own thread, under a
/// real-time watchdog: a regression that leaves a stream blocked fails the test
/// instead of hanging the suite (a paused clock with nothing left to do would block
/// forever). Afterwards the runtime must hold nothing: no task, timer, cancel
/// registration or I/O source left behind by a stream.
fn run<F: Future<Output = ()>>(paused: bool, body: impl FnOnce() -> F + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let rt = Runtime::builder().paused_clock(paused).build().unwrap();
        rt.block_on(body());
        assert_eq!(rt.resources(), Resources::default(), "left behind");
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(WATCHDOG) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for {WATCHDOG:?}"),
    }
}

fn is_cancelled_io(r: &Option<io::Result<impl Sized>>) -> bool {
    matches!(r, Some(Err(e)) if e.as_cancelled().is_some())
}

// ---------------------------------------------------------------------------------
// Channel receiver
// ---------------------------------------------------------------------------------

#[test]
fn receiver_yields_every_message_then_ends_and_stays_ended() {
    run(PAUSED, || async {
        let (tx, mut rx) = channel(2);
        let producer = scope_runtime::spawn(async move {
            for i in 0..10u32 {
                tx.send(i).await.map_err(|e| e.into_error())?;
                sleep(ms(1)).await?;
            }
            Ok::<_, BoxError>(()) // drops `tx`
        });
        let mut got = Vec::new();
        while let Some(msg) = rx.next().await {
            got.push(msg.unwrap());
        }
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        assert!(rx.next().await.is_none(), "an ended channel stays ended");
        assert!(rx.next().await.is_none());
        producer.await.unwrap().unwrap();
    });
}

#[test]
fn unbounded_receiver_is_a_stream_too_and_leaves_nothing_behind() {
    run(PAUSED, || async {
        let (tx, rx) = unbounded();
        for i in 0..100u32 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let sum: u32 = rx
            .map(|m| m.unwrap())
            .fold(0, |a, b| async move { a + b })
            .await;
        assert_eq!(sum, (0..100).sum());
    });
}

/// When the cancel-while-blocked tests cancel.
const CANCEL_AT: Duration = Duration::from_millis(250);

#[test]
fn receiver_reports_a_cancel_while_blocked_in_next_and_again_after() {
    run(PAUSED, || async {
        let (tx, mut rx) = channel::<u32>(1);
        let t0 = now();
        let scope = CancelScope::new();
        let canceller = scope.clone();
        let r = task_group(|tg| async move {
            tg.spawn(async move {
                sleep(CANCEL_AT).await?;
                canceller.cancel();
                Ok(())
            });
            let mut items = Vec::new();
            let inner = scope
                .run(async {
                    // Blocked until the cancel wakes it.
                    let first = rx.next().await;
                    items.push((now() - t0, first.is_some_and(|r| r.is_err())));
                    // Level-triggered: the next poll reports it again, at once.
                    let second = rx.next().await.expect("a cancel does not end the stream");
                    items.push((now() - t0, second.is_err()));
                    second.map(drop)
                })
                .await;
            assert_eq!(inner, Ok(None), "the scope absorbed its cancellation");
            assert_eq!(items, [(CANCEL_AT, true), (CANCEL_AT, true)]);
            // Outside the scope the same receiver works again.
            tx.try_send(5).unwrap();
            assert_eq!(rx.next().await, Some(Ok(5)));
            Ok::<_, BoxError>(())
        })
        .await;
        assert!(r.is_ok(), "{r:?}");
    });
}

#[test]
fn while_let_with_question_mark_leaves_at_the_first_cancellation() {
    run(PAUSED, || async {
        let (tx, mut rx) = channel::<u32>(4);
        let t0 = now();
        let mut iterations = 0;
        let r = move_on_after(ms(100), async {
            tx.try_send(1).unwrap();
            tx.try_send(2).unwrap();
            while let Some(msg) = rx.next().await {
                msg?;
                iterations += 1;
            }
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(
            iterations, 2,
            "both messages, then the cancellation ends the loop"
        );
        assert_eq!(now() - t0, ms(100));
        // `try_next` with `?` behaves the same.
        let r = move_on_after(ms(100), async {
            use futures::TryStreamExt;
            while let Some(_msg) = rx.try_next().await? {}
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, ms(200));
    });
}

#[test]
fn receiver_in_combinators_is_woken_by_the_cancel_itself() {
    run(PAUSED, || async {
        let t0 = now();
        let (tx, rx) = channel::<u32>(1);
        // `select` against a foreign future that never completes.
        let mut rx1 = rx.clone();
        let r = move_on_after(ms(10), async {
            match future::select(rx1.next(), pending::<()>()).await {
                Either::Left((item, _)) => item.expect("not ended").map(drop),
                Either::Right(_) => unreachable!(),
            }
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, ms(10));

        // `take_until` a foreign future: the stream's cancellation comes out as an item.
        let mut rx2 = rx.clone();
        let r = move_on_after(ms(10), async {
            let mut s = (&mut rx2).take_until(pending::<()>());
            while let Some(item) = s.next().await {
                item?;
            }
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, ms(20));

        // `FuturesUnordered` keeps a waker per future: the cancel must wake each `next()`
        // itself, not the task. Twenty receivers of one empty channel.
        let mut rxs: Vec<Receiver<u32>> = (0..20).map(|_| rx.clone()).collect();
        let r = move_on_after(ms(10), async {
            let mut all: FuturesUnordered<_> = rxs.iter_mut().map(|r| r.next()).collect();
            let mut cancelled = 0;
            while let Some(item) = all.next().await {
                assert!(item.expect("not ended").is_err());
                cancelled += 1;
            }
            assert_eq!(cancelled, 20);
            Err::<(), _>(check_cancelled_now())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, ms(30));

        // A merged stream of two receivers, fed after the combinator started.
        let (tx2, rx_b) = channel::<u32>(1);
        let mut merged = futures::stream::select(rx.clone(), rx_b);
        tx.try_send(1).unwrap();
        tx2.try_send(2).unwrap();
        let mut got = [merged.next().await, merged.next().await]
            .map(|i| i.expect("not ended").expect("not cancelled"));
        got.sort();
        assert_eq!(got, [1, 2]);
        let r = move_on_after(ms(10), async {
            merged.next().await.expect("not ended").map(drop)
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, ms(40));
    });
}

/// The `Cancelled` of the code running now (it is cancelled).
fn check_cancelled_now() -> Cancelled {
    scope_runtime::check_cancelled().expect_err("the scope is cancelled")
}

/// Send, then cancel, in the same turn: the message was handed to the waiting
/// receiver before the cancel, so its `next()` returns it; the poll after it reports
/// the cancellation. Cancel, then send: the cancelled receiver is skipped and the
/// message goes to the next one. Repeated with both orders interleaved: every message
/// is received exactly once.
#[test]
fn a_send_racing_a_cancel_never_loses_the_message() {
    run(PAUSED, || async {
        let (tx, rx) = channel::<u32>(0); // rendezvous: only hand-offs, no buffer
        let received = Rc::new(RefCell::new(Vec::new()));
        for i in 0..200u32 {
            let send_first = i % 2 == 0;
            let scope = CancelScope::new();
            let canceller = scope.clone();
            let mut in_scope = rx.clone();
            let mut backup = rx.clone();
            let got = received.clone();
            let got2 = received.clone();
            let tx = tx.clone();
            let r = task_group(|tg| async move {
                tg.spawn(async move {
                    let r = scope
                        .run(async {
                            let item = in_scope.next().await.expect("not ended");
                            if let Ok(v) = item {
                                got.borrow_mut().push((v, "cancelled receiver"));
                                // The cancel fails the poll after the hand-off.
                                let again = in_scope.next().await.expect("not ended");
                                assert!(again.is_err(), "{again:?}");
                                return again.map(drop);
                            }
                            item.map(drop)
                        })
                        .await;
                    assert_eq!(r, Ok(None));
                    Ok(())
                });
                // A second receiver, not cancelled, queued behind the first.
                tg.spawn(async move {
                    let r = move_on_after(ms(1), async { backup.next().await.expect("not ended") })
                        .await;
                    if let Ok(Some(v)) = r {
                        got2.borrow_mut().push((v, "second receiver"));
                    }
                    Ok(())
                });
                scope_runtime::yield_now().await; // both receivers wait now
                if send_first {
                    assert!(tx.try_send(i).is_ok(), "a receiver was waiting");
                    canceller.cancel();
                } else {
                    canceller.cancel();
                    assert!(tx.try_send(i).is_ok(), "the second receiver was waiting");
                }
                Ok::<_, BoxError>(())
            })
            .await;
            assert!(r.is_ok(), "{r:?}");
            let who = if send_first {
                "cancelled receiver" // handed over before the cancel: kept
            } else {
                "second receiver" // the cancelled one was skipped
            };
            assert_eq!(received.borrow().last(), Some(&(i, who)));
        }
        assert_eq!(received.borrow().len(), 200, "each message exactly once");
    });
}

/// An OS thread sends while the runtime keeps cancelling the receiving stream (each
/// round is a short deadline). Every message is received exactly once, in order.
#[test]
fn messages_from_a_thread_survive_repeated_cancels() {
    const N: u32 = 5_000;
    const BATCH: u32 = 500;
    run(PAUSED, || async {
        let (tx, mut rx) = unbounded::<u32>();
        // Shared with the thread, which waits for a cancel of the receiving stream
        // after each batch: at least N / BATCH cancels happen while messages keep
        // coming, whatever the OS scheduling.
        let cancels = Arc::new(AtomicU32::new(0));
        let seen = cancels.clone();
        let sender = std::thread::spawn(move || {
            for i in 0..N {
                if i > 0 && i % BATCH == 0 {
                    let before = seen.load(Ordering::Acquire);
                    while seen.load(Ordering::Acquire) == before {
                        std::thread::yield_now();
                    }
                }
                tx.send(i).unwrap();
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut next = 0;
        loop {
            let r = move_on_after(Duration::from_micros(50), async {
                while let Some(msg) = rx.next().await {
                    assert_eq!(msg?, next, "in order, none lost or doubled");
                    next += 1;
                }
                Ok::<_, Cancelled>(())
            })
            .await;
            match r {
                Ok(Some(())) => break, // the stream ended: the thread is done
                Ok(None) => {
                    cancels.fetch_add(1, Ordering::Release);
                }
                Err(c) => panic!("not absorbed: {c:?}"),
            }
        }
        assert_eq!(next, N);
        sender.join().unwrap();
        assert!(cancels.load(Ordering::Relaxed) >= N / BATCH - 1);
    });
}

/// A `next()` abandoned while it waited (the other branch of a `select` won) leaves
/// the receiver in the queue; a message handed to it meanwhile is returned by the
/// receiver's next receive of any kind, or passed to another receiver when it is
/// dropped.
#[test]
fn an_abandoned_next_loses_nothing() {
    run(PAUSED, || async {
        let (tx, mut rx) = channel::<u32>(0);
        for (k, take) in ["next", "recv", "try_recv"].into_iter().enumerate() {
            let v = k as u32;
            let lost = future::select(rx.next(), Box::pin(sleep(ms(1)))).await;
            assert!(matches!(lost, Either::Right(_)), "nothing was sent yet");
            // The receiver is still waiting: a rendezvous send succeeds at once.
            assert!(tx.try_send(v).is_ok());
            let got = match take {
                "next" => {
                    move_on_after(ms(100), async { rx.next().await.expect("not ended") }).await
                }
                "recv" => move_on_after(ms(100), rx.recv()).await.map(Option::flatten),
                _ => Ok(rx.try_recv().ok()),
            };
            assert_eq!(got, Ok(Some(v)), "{take}");
        }
        // A fresh receive after an abandoned one does not queue behind it.
        let lost = future::select(rx.next(), Box::pin(sleep(ms(1)))).await;
        assert!(matches!(lost, Either::Right(_)));
        let waiting = rx.recv();
        let r = move_on_after(ms(1), waiting).await;
        assert_eq!(r, Ok(None), "the recv waited, and its cancel took nothing");
        assert!(tx.try_send(9).is_err(), "no receiver is waiting any more");

        // Dropped with a message handed to it: the message goes to another receiver.
        let mut rx1 = rx.clone();
        let lost = future::select(rx1.next(), Box::pin(sleep(ms(1)))).await;
        assert!(matches!(lost, Either::Right(_)));
        assert!(tx.try_send(7).is_ok());
        drop(rx1);
        assert_eq!(rx.try_recv(), Ok(7));
    });
}

// ---------------------------------------------------------------------------------
// Interval
// ---------------------------------------------------------------------------------

/// Takes `n` ticks; returns (scheduled instant, instant taken), both relative to `t0`.
async fn take_ticks(
    ticks: &mut scope_runtime::Interval,
    t0: Instant,
    n: usize,
) -> Vec<(Duration, Duration)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let at = ticks.tick().await.unwrap();
        out.push((at - t0, now() - t0));
    }
    out
}

/// Period 10 ms; the consumer takes the first tick, then is busy for 35 ms.
async fn late_consumer(policy: MissedTickPolicy) -> Vec<(Duration, Duration)> {
    let t0 = now();
    let mut ticks = interval(ms(10)).with_missed_tick_policy(policy);
    let mut seen = take_ticks(&mut ticks, t0, 1).await;
    sleep(ms(35)).await.unwrap();
    seen.extend(take_ticks(&mut ticks, t0, 5).await);
    seen
}

#[test]
fn the_first_tick_is_immediate() {
    run(PAUSED, || async {
        let t0 = now();
        let mut ticks = interval(ms(10));
        assert_eq!(ticks.tick().await, Ok(t0));
        assert_eq!(now(), t0);
        assert_eq!(ticks.tick().await, Ok(t0 + ms(10)));
        assert_eq!(now(), t0 + ms(10));
    });
}

#[test]
fn burst_catches_up_back_to_back() {
    run(PAUSED, || async {
        let d = ms;
        assert_eq!(
            late_consumer(MissedTickPolicy::Burst).await,
            [
                (d(0), d(0)),
                (d(10), d(35)),
                (d(20), d(35)),
                (d(30), d(35)),
                (d(40), d(40)),
                (d(50), d(50)),
            ]
        );
    });
}

#[test]
fn delay_restarts_one_period_after_the_late_tick() {
    run(PAUSED, || async {
        let d = ms;
        assert_eq!(
            late_consumer(MissedTickPolicy::Delay).await,
            [
                (d(0), d(0)),
                (d(10), d(35)),
                (d(45), d(45)),
                (d(55), d(55)),
                (d(65), d(65)),
                (d(75), d(75)),
            ]
        );
    });
}

#[test]
fn skip_stays_on_the_original_grid() {
    run(PAUSED, || async {
        let d = ms;
        assert_eq!(
            late_consumer(MissedTickPolicy::Skip).await,
            [
                (d(0), d(0)),
                (d(10), d(35)),
                (d(40), d(40)),
                (d(50), d(50)),
                (d(60), d(60)),
                (d(70), d(70)),
            ]
        );
        // Late exactly onto a grid instant: that instant counts as missed too.
        let t0 = now();
        let mut ticks = interval(ms(10)).with_missed_tick_policy(MissedTickPolicy::Skip);
        ticks.tick().await.unwrap();
        sleep(ms(40)).await.unwrap();
        assert_eq!(
            take_ticks(&mut ticks, t0, 2).await,
            [(d(10), d(40)), (d(50), d(50))]
        );
    });
}

#[test]
fn late_by_less_than_a_period_keeps_the_schedule_under_every_policy() {
    run(PAUSED, || async {
        for policy in [
            MissedTickPolicy::Burst,
            MissedTickPolicy::Delay,
            MissedTickPolicy::Skip,
        ] {
            let t0 = now();
            let mut ticks = interval(ms(10)).with_missed_tick_policy(policy);
            ticks.tick().await.unwrap();
            sleep(ms(15)).await.unwrap();
            assert_eq!(
                take_ticks(&mut ticks, t0, 3).await,
                [(ms(10), ms(15)), (ms(20), ms(20)), (ms(30), ms(30))],
                "{policy:?}"
            );
        }
    });
}

#[test]
fn a_start_in_the_past_is_caught_up_by_burst() {
    run(PAUSED, || async {
        let t0 = now();
        sleep(ms(100)).await.unwrap();
        let mut ticks = interval_at(t0, ms(30));
        let got = take_ticks(&mut ticks, t0, 5).await;
        assert_eq!(
            got,
            [
                (ms(0), ms(100)),
                (ms(30), ms(100)),
                (ms(60), ms(100)),
                (ms(90), ms(100)),
                (ms(120), ms(120)),
            ]
        );
        assert_eq!(ticks.next_tick(), Some(t0 + ms(150)));
    });
}

#[test]
fn interval_at_a_future_start_and_reset() {
    run(PAUSED, || async {
        let t0 = now();
        let mut ticks = interval_at(t0 + ms(500), ms(100));
        assert_eq!(ticks.tick().await, Ok(t0 + ms(500)));
        assert_eq!(now(), t0 + ms(500));
        sleep(ms(30)).await.unwrap();
        ticks.reset();
        assert_eq!(ticks.tick().await, Ok(t0 + ms(630)));
        assert_eq!(ticks.tick().await, Ok(t0 + ms(730)));
    });
}

#[test]
#[should_panic(expected = "the period must be longer than zero")]
fn a_zero_period_panics() {
    run(PAUSED, || async {
        let _ = interval(Duration::ZERO);
    });
}

#[test]
#[should_panic(expected = "the period must be longer than zero")]
fn a_zero_period_panics_in_interval_at() {
    let _ = interval_at(Instant::now(), Duration::ZERO);
}

#[test]
fn a_period_past_the_instant_range_ticks_once() {
    run(PAUSED, || async {
        let t0 = now();
        let mut ticks = interval(Duration::MAX);
        assert_eq!(ticks.tick().await, Ok(t0));
        assert_eq!(ticks.next_tick(), None);
        let r = move_on_after(Duration::from_secs(3600), ticks.tick()).await;
        assert_eq!(
            r,
            Ok(None),
            "no second tick, and the wait is still cancellable"
        );
        assert_eq!(now() - t0, Duration::from_secs(3600));
    });
}

#[test]
fn interval_cancelled_in_next_loses_no_tick() {
    run(PAUSED, || async {
        let t0 = now();
        let mut ticks = interval(ms(10));
        let mut seen = Vec::new();
        let r = move_on_after(ms(25), async {
            while let Some(t) = ticks.next().await {
                seen.push(t? - t0);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(seen, [ms(0), ms(10), ms(20)]);
        assert_eq!(now() - t0, ms(25));
        // Cancelled with a tick due: the tick is not used up.
        sleep(ms(10)).await.unwrap(); // t0+35: the tick of t0+30 is due
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async {
                let first = ticks.next().await.expect("endless");
                let second = ticks.next().await.expect("endless");
                assert!(first.is_err() && second.is_err(), "level-triggered");
                second.map(drop)
            })
            .await;
        assert_eq!(r, Ok(None));
        assert_eq!(ticks.tick().await, Ok(t0 + ms(30)));
        assert_eq!(now() - t0, ms(35));
    });
}

#[test]
fn interval_in_combinators() {
    run(PAUSED, || async {
        let t0 = now();
        // take_until a runtime sleep.
        let got: Vec<_> = interval(ms(10))
            .take_until(sleep(ms(35)))
            .map(|t| t.unwrap() - t0)
            .collect()
            .await;
        assert_eq!(got, [ms(0), ms(10), ms(20), ms(30)]);
        assert_eq!(now() - t0, ms(35));

        // Zipped with a channel: one message per tick.
        let (tx, rx) = unbounded();
        for i in 0..3u32 {
            tx.send(i).unwrap();
        }
        drop(tx);
        let t1 = now();
        let paced: Vec<_> = interval(ms(100))
            .zip(rx)
            .map(|(t, m)| (t.unwrap() - t1, m.unwrap()))
            .collect()
            .await;
        assert_eq!(paced, [(ms(0), 0), (ms(100), 1), (ms(200), 2)]);

        // Many intervals in a `FuturesUnordered` (a waker per future), cancelled by a
        // deadline while every one waits: each is woken by the cancel itself.
        let t2 = now();
        let mut all: Vec<_> = (0..10u64)
            .map(|i| interval_at(t2 + ms(1000 + i), ms(1)))
            .collect();
        let r = move_on_after(ms(50), async {
            let mut waits: FuturesUnordered<_> = all.iter_mut().map(|t| t.next()).collect();
            let mut cancelled = 0;
            while let Some(item) = waits.next().await {
                assert!(
                    item.expect("endless").is_err(),
                    "no tick is due before the deadline"
                );
                cancelled += 1;
            }
            assert_eq!(cancelled, 10, "every wait was woken by the cancel");
            Err::<(), _>(check_cancelled_now())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t2, ms(50));
    });
}

// ---------------------------------------------------------------------------------
// Listeners (real loopback sockets, real clock, bounded)
// ---------------------------------------------------------------------------------

#[test]
fn tcp_incoming_yields_connections() {
    run(REAL, || async {
        fail_after(SAFETY_NET, async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let addr = l.local_addr()?;
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(TcpStream::connect(addr).await?);
            }
            let mut want: Vec<_> = clients.iter().map(|c| c.local_addr().unwrap()).collect();
            let mut got = Vec::new();
            let mut incoming = l.incoming();
            for _ in 0..3 {
                let conn = incoming.next().await.expect("endless")?;
                got.push(conn.peer_addr()?);
            }
            want.sort();
            got.sort();
            assert_eq!(got, want);
            Ok::<_, io::Error>(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn tcp_incoming_reports_a_cancel_while_blocked_and_takes_nothing() {
    run(REAL, || async {
        fail_after(SAFETY_NET, async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let addr = l.local_addr()?;
            // Blocked in next(), inside a task group that is cancelled: the loop with `?`
            // stops at the cancellation and the group absorbs it.
            let ended_by = Rc::new(RefCell::new(None));
            let ended = ended_by.clone();
            let started = Instant::now();
            let r = task_group(|tg| async move {
                tg.spawn(async move {
                    let other = TcpListener::bind("127.0.0.1:0").await?;
                    let res = async {
                        let mut incoming = other.incoming();
                        let mut accepted = 0;
                        while let Some(conn) = incoming.next().await {
                            let _conn = conn?;
                            accepted += 1; // nobody connects
                        }
                        Ok::<_, io::Error>(if accepted == 0 {
                            "the end"
                        } else {
                            "connections"
                        })
                    }
                    .await;
                    *ended.borrow_mut() = Some(match &res {
                        Err(e) if e.as_cancelled().is_some() => "the cancellation",
                        Err(_) => "another error",
                        Ok(what) => what,
                    });
                    res?;
                    Ok(())
                });
                sleep(ms(20)).await?;
                tg.cancel();
                sleep(SAFETY_NET).await?; // cancelled too
                Ok::<_, BoxError>(())
            })
            .await;
            assert!(
                matches!(r, Ok(None)),
                "the group absorbed its cancel: {r:?}"
            );
            assert_eq!(*ended_by.borrow(), Some("the cancellation"));
            assert!(started.elapsed() < SAFETY_NET);

            // A connection waits in the backlog; cancelled polls (twice: level-triggered)
            // leave it there, and the first poll outside the scope takes it.
            let client = TcpStream::connect(addr).await?;
            let mut incoming = l.incoming();
            let scope = CancelScope::new();
            scope.cancel();
            let r = scope
                .run(async {
                    let first = incoming.next().await;
                    let second = incoming.next().await;
                    assert!(is_cancelled_io(&first), "{first:?}");
                    assert!(is_cancelled_io(&second), "{second:?}");
                    second.expect("endless").map(drop)
                })
                .await;
            assert!(matches!(r, Ok(None)), "{r:?}");
            let conn = incoming.next().await.expect("endless")?;
            assert_eq!(conn.peer_addr()?, client.local_addr()?);

            // Inside a combinator, cancelled by a (real) deadline while waiting.
            let r = move_on_after(ms(20), async {
                match future::select(incoming.next(), pending::<()>()).await {
                    Either::Left((item, _)) => item.expect("endless").map(drop),
                    Either::Right(_) => unreachable!(),
                }
            })
            .await;
            assert!(matches!(r, Ok(None)), "{r:?}");
            Ok::<_, io::Error>(())
        })
        .await
        .unwrap();
    });
}

fn socket_path(name: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("sr-streams-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn unix_incoming_yields_connections_and_reports_cancels() {
    run(REAL, || async {
        let path = socket_path("incoming");
        let res = fail_after(SAFETY_NET, async {
            let l = UnixListener::bind(&path)?;
            let mut incoming = l.incoming();
            // Two connections in the backlog.
            let c1 = UnixStream::connect(&path).await?;
            let c2 = UnixStream::connect(&path).await?;
            // Cancelled first: nothing taken.
            let scope = CancelScope::new();
            scope.cancel();
            let r = scope
                .run(async {
                    let item = incoming.next().await;
                    assert!(is_cancelled_io(&item), "{item:?}");
                    item.expect("endless").map(drop)
                })
                .await;
            assert!(matches!(r, Ok(None)), "{r:?}");
            // Then both, in order of arrival: each echoes what its client wrote.
            for (client, msg) in [(&c1, b"one"), (&c2, b"two")] {
                client.write(msg).await?;
                let conn = incoming.next().await.expect("endless")?;
                let mut buf = [0u8; 3];
                scope_runtime::io::read_exact(&mut &conn, &mut std::io::Cursor::new(&mut buf[..]))
                    .await?;
                assert_eq!(&buf, msg);
            }
            // Blocked in next() in a combinator, cancelled by a deadline.
            let r = move_on_after(ms(20), async {
                let mut s = (&mut incoming).take_until(pending::<()>());
                while let Some(conn) = s.next().await {
                    let _conn = conn?;
                }
                Ok::<_, io::Error>(())
            })
            .await;
            assert!(matches!(r, Ok(None)), "{r:?}");
            Ok::<_, io::Error>(())
        })
        .await;
        let _ = std::fs::remove_file(&path);
        res.unwrap();
    });
}

// ---------------------------------------------------------------------------------
// Signals
// ---------------------------------------------------------------------------------

/// Sends `kind` to this thread; returns after the handler ran (see tests/io_signal.rs).
fn raise(kind: SignalKind) {
    // SAFETY: `raise` with a valid signal number has no memory-safety preconditions;
    // every caller created a `Signal` for `kind` first, which installed the handler.
    let rc = unsafe { libc::raise(kind.as_raw()) };
    assert_eq!(rc, 0, "raise failed: {}", io::Error::last_os_error());
}

#[test]
fn signal_stream_yields_coalesced_deliveries() {
    run(PAUSED, || async {
        let kind = SignalKind::USER_DEFINED1;
        let mut sig = Signal::new(kind).unwrap();
        let t0 = now();
        let mut deliveries = 0;
        for round in 1..=3 {
            // `round` deliveries between two polls are one item.
            for _ in 0..round {
                raise(kind);
            }
            sig.next().await.expect("endless").unwrap();
            deliveries += 1;
            let r = move_on_after(ms(10), async { sig.next().await.expect("endless") }).await;
            assert!(matches!(r, Ok(None)), "nothing more was delivered: {r:?}");
        }
        assert_eq!(deliveries, 3);
        assert_eq!(now() - t0, ms(30));
    });
}

#[test]
fn signal_stream_reports_cancels_and_keeps_the_delivery_for_later() {
    run(PAUSED, || async {
        let kind = SignalKind::from_raw(libc::SIGURG);
        let mut sig = Signal::new(kind).unwrap();
        let t0 = now();
        // Blocked in next() inside a combinator, cancelled at the deadline.
        let r = move_on_after(ms(40), async {
            match future::select(sig.next(), pending::<()>()).await {
                Either::Left((item, _)) => item.expect("endless").map(drop),
                Either::Right(_) => unreachable!(),
            }
        })
        .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert_eq!(now() - t0, ms(40));
        // A delivery while cancelled is not consumed by the cancelled polls.
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async {
                raise(kind);
                let first = sig.next().await;
                let second = sig.next().await;
                assert!(is_cancelled_io(&first) && is_cancelled_io(&second));
                second.expect("endless")
            })
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        let r = move_on_after(ms(10), async { sig.next().await.expect("endless") }).await;
        assert!(matches!(r, Ok(Some(()))), "reported after the scope: {r:?}");
        assert_eq!(now() - t0, ms(40), "at once");
    });
}

#[test]
fn a_receiver_and_an_interval_in_one_select_loop() {
    run(PAUSED, || async {
        let (_tx, mut rx) = channel::<u8>(1);
        let mut ticks = interval(ms(5));
        let mut wakeups = 0;
        let r = move_on_after(ms(12), async {
            loop {
                match future::select(rx.next(), ticks.next()).await {
                    Either::Left((item, _)) => drop(item.expect("not ended")?),
                    Either::Right((item, _)) => drop(item.expect("endless")?),
                };
                wakeups += 1;
            }
            #[allow(unreachable_code)]
            Ok::<(), Cancelled>(())
        })
        .await;
        assert_eq!(r, Ok(None));
        assert_eq!(wakeups, 3, "ticks at 0, 5 and 10 ms");
    });
}

/// `futures::select!` takes `next()` of a receiver and of an interval directly (both
/// are `FusedStream`s); the receiver reports itself terminated once it ended.
#[test]
fn select_macro_over_a_receiver_and_an_interval() {
    use futures::stream::FusedStream;
    run(PAUSED, || async {
        let t0 = now();
        let (tx, mut rx) = channel::<u32>(1);
        let producer = scope_runtime::spawn(async move {
            for i in 0..3 {
                sleep(ms(15)).await?;
                tx.send(i).await.map_err(|e| e.into_error())?;
            }
            Ok::<_, BoxError>(())
        });
        let mut ticks = interval(ms(20));
        let mut log = Vec::new();
        loop {
            futures::select_biased! {
                msg = rx.next() => match msg {
                    Some(m) => log.push(format!("msg {} at {:?}", m.unwrap(), now() - t0)),
                    None => break,
                },
                t = ticks.next() => {
                    log.push(format!("tick {:?}", t.expect("endless").unwrap() - t0));
                }
            }
        }
        log.push(format!("end at {:?}", now() - t0));
        assert!(rx.is_terminated() && !ticks.is_terminated());
        assert_eq!(
            log,
            [
                "tick 0ns",
                "msg 0 at 15ms",
                "tick 20ms",
                "msg 1 at 30ms",
                "tick 40ms",
                "msg 2 at 45ms",
                "end at 45ms"
            ]
        );
        producer.await.unwrap().unwrap();
    });
}

/// A `next()` abandoned inside a scope leaves the receiver's place in the queue
/// registered where that scope was; the scope exits (normally, or after a cancel that
/// nothing noticed) and the receiver still gets the next message, outside.
#[test]
fn an_abandoned_next_outlives_its_scope() {
    run(PAUSED, || async {
        let (tx, mut rx) = channel::<u32>(0);
        for (v, cancel_scope) in [(1, false), (2, true)] {
            let scope = CancelScope::new();
            let r = scope
                .run(async {
                    let lost = future::select(rx.next(), Box::pin(sleep(ms(1)))).await;
                    assert!(matches!(lost, Either::Right(_)));
                    if cancel_scope {
                        scope.cancel(); // the queued place is cancelled with it
                    }
                    Ok::<_, Cancelled>(())
                })
                .await;
            assert_eq!(r, Ok(Some(())));
            let sent = tx.try_send(v);
            let got = move_on_after(ms(10), async { rx.next().await.expect("not ended") }).await;
            // Once the scope has exited, its cancellation no longer concerns the
            // place: the hand-off goes to it and the next poll returns it.
            assert!(
                sent.is_ok(),
                "handed to the waiting place (cancelled scope: {cancel_scope})"
            );
            assert_eq!(got, Ok(Some(v)), "and kept for the next poll");
        }
    });
}

//! Cancellation reaches runtime operations polled inside `futures` combinators (rule
//! R13): every combinator that keeps its own per-future wakers (`FuturesUnordered`,
//! `FuturesOrdered`, `buffer_unordered`, `buffered`, `try_join_all` and `join_all` with
//! more than 30 items, `select_all`) over every kind of wait (sleep, TCP read, channel
//! receive, mutex lock, semaphore acquire), cancelled by a deadline and by
//! `tg.cancel()`. Each case asserts the exact virtual time at which the scope exits.
//!
//! Before the status tree woke the blocked operation itself, the sleep cases ended at
//! the sleeps' own end and the others hung; every case runs under a real-time watchdog
//! so a regression fails instead of hanging the suite.

use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

use futures::future::{LocalBoxFuture, join_all, select_all, try_join_all};
use futures::stream::{self, FuturesOrdered, FuturesUnordered, StreamExt, TryStreamExt};
use scope_runtime::io::{TcpListener, TcpStream};
use scope_runtime::sync::{Mutex, Receiver, Semaphore, Sender, channel};
use scope_runtime::{BoxError, Runtime, move_on_after, now, sleep, task_group};

/// More than `futures`' small-input threshold (30), so `join_all` / `try_join_all`
/// take their `FuturesOrdered` path.
const N: usize = 40;
const CANCEL_AT: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
enum Wait {
    Sleep,
    TcpRead,
    Recv,
    Lock,
    Acquire,
}

#[derive(Debug, Clone, Copy)]
enum Combinator {
    FuturesUnordered,
    FuturesOrdered,
    BufferUnordered,
    Buffered,
    TryJoinAll,
    JoinAll,
    SelectAll,
}

const WAITS: [Wait; 5] = [
    Wait::Sleep,
    Wait::TcpRead,
    Wait::Recv,
    Wait::Lock,
    Wait::Acquire,
];
const COMBINATORS: [Combinator; 7] = [
    Combinator::FuturesUnordered,
    Combinator::FuturesOrdered,
    Combinator::BufferUnordered,
    Combinator::Buffered,
    Combinator::TryJoinAll,
    Combinator::JoinAll,
    Combinator::SelectAll,
];

/// Things to wait on that never become ready by themselves.
struct Fixture {
    /// Connected TCP streams whose peers never write.
    streams: Vec<TcpStream>,
    _peers: Vec<TcpStream>,
    /// A channel that stays empty (its sender is kept alive).
    rx: Receiver<u8>,
    _tx: Sender<u8>,
    /// Locked for good.
    mutex: Mutex<()>,
    /// No permits.
    sem: Semaphore,
}

impl Fixture {
    async fn new() -> Rc<Fixture> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut streams = Vec::new();
        let mut peers = Vec::new();
        for _ in 0..N {
            streams.push(TcpStream::connect(addr).await.unwrap());
            peers.push(listener.accept().await.unwrap().0);
        }
        let (tx, rx) = channel(1);
        let mutex = Mutex::new(());
        std::mem::forget(mutex.try_lock().expect("a new mutex is free"));
        Rc::new(Fixture {
            streams,
            _peers: peers,
            rx,
            _tx: tx,
            mutex,
            sem: Semaphore::new(0),
        })
    }

    /// One wait of kind `w` (the `i`th TCP stream for reads).
    fn wait(&self, w: Wait, i: usize) -> LocalBoxFuture<'_, Result<(), BoxError>> {
        Box::pin(async move {
            match w {
                Wait::Sleep => sleep(Duration::from_secs(3600)).await?,
                Wait::TcpRead => {
                    let mut buf = [0u8; 16];
                    self.streams[i].read(&mut buf).await?;
                }
                Wait::Recv => {
                    self.rx.recv().await?;
                }
                Wait::Lock => drop(self.mutex.lock().await?),
                Wait::Acquire => drop(self.sem.acquire().await?),
            }
            Err(format!("{w:?} #{i} completed, but nothing should make it ready").into())
        })
    }

    /// `N` waits of kind `w` run through combinator `c`.
    async fn run(&self, w: Wait, c: Combinator) -> Result<(), BoxError> {
        let waits = || (0..N).map(|i| self.wait(w, i));
        match c {
            Combinator::FuturesUnordered => {
                let mut all: FuturesUnordered<_> = waits().collect();
                while let Some(r) = all.next().await {
                    r?;
                }
                Ok(())
            }
            Combinator::FuturesOrdered => {
                let mut all: FuturesOrdered<_> = waits().collect();
                while let Some(r) = all.next().await {
                    r?;
                }
                Ok(())
            }
            Combinator::BufferUnordered => {
                stream::iter(waits())
                    .buffer_unordered(10)
                    .try_for_each(|()| async { Ok(()) })
                    .await
            }
            Combinator::Buffered => {
                stream::iter(waits())
                    .buffered(10)
                    .try_for_each(|()| async { Ok(()) })
                    .await
            }
            Combinator::TryJoinAll => try_join_all(waits()).await.map(drop),
            Combinator::JoinAll => join_all(waits()).await.into_iter().collect(),
            Combinator::SelectAll => select_all(waits()).await.0,
        }
    }
}

/// Runs `f` on a paused-clock runtime in its own thread; fails (instead of hanging)
/// if it takes more than 60 s of real time.
fn with_watchdog(name: &'static str, f: impl FnOnce(&Runtime) + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        f(&rt);
        done_tx.send(()).unwrap();
    });
    match done_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The worker panicked: show its message.
            if let Err(p) = worker.join() {
                std::panic::resume_unwind(p);
            }
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{name}: a cancelled combinator never returned (hung for 60 s)")
        }
    }
}

#[test]
fn a_deadline_reaches_waits_inside_every_combinator() {
    with_watchdog("deadline", |rt| {
        rt.block_on(async {
            let fx = Fixture::new().await;
            for w in WAITS {
                for c in COMBINATORS {
                    let t0 = now();
                    let r = move_on_after(CANCEL_AT, fx.run(w, c)).await;
                    assert!(matches!(r, Ok(None)), "{c:?} over {w:?}: {r:?}");
                    assert_eq!(now() - t0, CANCEL_AT, "{c:?} over {w:?}: exit time");
                }
            }
        });
    });
}

#[test]
fn a_group_cancel_reaches_waits_inside_every_combinator() {
    with_watchdog("tg.cancel()", |rt| {
        rt.block_on(async {
            let fx = Fixture::new().await;
            for w in WAITS {
                for c in COMBINATORS {
                    let t0 = now();
                    let child_fx = fx.clone();
                    let group = scope_runtime::TaskGroup::new();
                    let r = group
                        .run(|tg| async move {
                            tg.spawn(async move { child_fx.run(w, c).await });
                            sleep(CANCEL_AT).await?;
                            tg.cancel();
                            Ok(())
                        })
                        .await;
                    assert!(matches!(r, Ok(Some(()))), "{c:?} over {w:?}: {r:?}");
                    assert!(group.cancelled_caught(), "{c:?} over {w:?}");
                    assert_eq!(now() - t0, CANCEL_AT, "{c:?} over {w:?}: exit time");
                }
            }
        });
    });
}

/// The first case the issue reported: a group child waiting in a `FuturesUnordered` of
/// three TCP reads that never get data; `tg.cancel()` from a sibling.
#[test]
fn tg_cancel_ends_a_child_blocked_in_futures_unordered_of_tcp_reads() {
    with_watchdog("three reads", |rt| {
        rt.block_on(async {
            let fx = Fixture::new().await;
            let t0 = now();
            let r = task_group(|tg| async move {
                let f = fx.clone();
                tg.spawn(async move {
                    let mut reads: FuturesUnordered<_> =
                        (0..3).map(|i| f.wait(Wait::TcpRead, i)).collect();
                    while let Some(r) = reads.next().await {
                        r?;
                    }
                    Ok(())
                });
                let tg2 = tg.clone();
                tg.spawn(async move {
                    sleep(Duration::from_secs(2)).await?;
                    tg2.cancel();
                    Ok(())
                });
                Ok(())
            })
            .await;
            assert!(r.is_ok(), "{r:?}");
            assert_eq!(now() - t0, Duration::from_secs(2));
        });
    });
}

/// A wait that was cancelled and then left the cancelled scope works normally again:
/// nothing of the cancellation sticks to the combinator's sub-futures (the
/// registrations are per poll, at the node the code runs in).
#[test]
fn after_the_scope_the_same_kind_of_wait_completes() {
    with_watchdog("after", |rt| {
        rt.block_on(async {
            let t0 = now();
            let r = move_on_after(CANCEL_AT, async {
                let mut all: FuturesUnordered<_> =
                    (0..N).map(|_| sleep(Duration::from_secs(3600))).collect();
                while let Some(r) = all.next().await {
                    r?;
                }
                Ok::<_, BoxError>(())
            })
            .await;
            assert!(matches!(r, Ok(None)));
            let mut all: FuturesUnordered<_> = (1..=N as u64)
                .map(|i| sleep(Duration::from_millis(i)))
                .collect();
            let mut done = 0;
            while let Some(r) = all.next().await {
                r.unwrap();
                done += 1;
            }
            assert_eq!(done, N);
            assert_eq!(now() - t0, CANCEL_AT + Duration::from_millis(N as u64));
        });
    });
}

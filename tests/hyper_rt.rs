//! The `hyper` feature's pieces on their own: hyper's `Read` / `Write` on our streams
//! (cancellation as on the streams' own reads and writes), `HyperTimer` on the paused
//! clock, `GroupExecutor`'s tasks cancelled with their group, and a hyper connection in
//! a cancelled group ending as cancelled, not failed.
#![cfg(feature = "hyper")]

use std::cell::Cell;
use std::future::poll_fn;
use std::io::ErrorKind;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::rt::{Executor, Read, ReadBuf, Timer, Write};
use hyper::service::service_fn;
use scope_runtime::io::hyper::{HyperSleep, HyperTimer};
use scope_runtime::io::{TcpListener, TcpStream, UnixStream};
use scope_runtime::{
    BoxError, CancelError, CancelScope, GroupExecutor, TaskGroup, fail_after, move_on_after, now,
    sleep, task_group,
};

const SAFETY_NET: Duration = Duration::from_secs(30);

/// One hyper read into a fresh uninitialised buffer: the bytes read.
async fn hyper_read<R: Read + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    let mut storage = [MaybeUninit::<u8>::uninit(); 64];
    let mut buf = ReadBuf::uninit(&mut storage);
    poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, buf.unfilled())).await?;
    Ok(buf.filled().to_vec())
}

async fn hyper_write<W: Write + Unpin>(w: &mut W, data: &[u8]) -> std::io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, data)).await
}

async fn hyper_shutdown<W: Write + Unpin>(w: &mut W) -> std::io::Result<()> {
    poll_fn(|cx| Pin::new(&mut *w).poll_shutdown(cx)).await
}

fn paused() -> scope_runtime::Runtime {
    scope_runtime::Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
}

#[test]
fn hyper_reads_and_writes_move_bytes_on_every_stream_kind() {
    paused().block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        assert!(a.is_write_vectored());
        assert_eq!(hyper_write(&mut a, b"unix").await.unwrap(), 4);
        assert_eq!(hyper_read(&mut b).await.unwrap(), b"unix");

        let (br, mut bw) = b.into_split();
        let mut br = br;
        hyper_write(&mut bw, b"half").await.unwrap();
        assert_eq!(hyper_read(&mut a).await.unwrap(), b"half");
        hyper_write(&mut a, b"back").await.unwrap();
        assert_eq!(hyper_read(&mut br).await.unwrap(), b"back");
        hyper_shutdown(&mut bw).await.unwrap();
        assert_eq!(
            hyper_read(&mut a).await.unwrap(),
            b"",
            "EOF after the half's shutdown"
        );

        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let bufs = [std::io::IoSlice::new(b"tc"), std::io::IoSlice::new(b"p")];
        let n = poll_fn(|cx| Pin::new(&mut c).poll_write_vectored(cx, &bufs))
            .await
            .unwrap();
        assert_eq!(n, 3);
        let mut got = Vec::new();
        while got.len() < 3 {
            got.extend(hyper_read(&mut s).await.unwrap());
        }
        assert_eq!(got, b"tcp");
        hyper_shutdown(&mut c).await.unwrap();
        assert_eq!(hyper_read(&mut s).await.unwrap(), b"");
    });
}

/// In cancelled code a hyper read fails with the `io::Error` that wraps `Cancelled`
/// and consumes nothing; a hyper write writes nothing.
#[test]
fn cancelled_hyper_reads_and_writes_transfer_nothing() {
    paused().block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write(b"kept").await.unwrap();
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async {
                let err = hyper_read(&mut b).await.unwrap_err();
                assert!(err.as_cancelled().is_some(), "{err:?}");
                let err = hyper_write(&mut b, b"lost?").await.unwrap_err();
                assert!(err.as_cancelled().is_some(), "{err:?}");
                Err::<(), _>(err)
            })
            .await;
        assert!(matches!(r, Ok(None)), "the scope absorbed its cancellation");
        assert_eq!(hyper_read(&mut b).await.unwrap(), b"kept");
        // Nothing was written by the cancelled write: the next bytes are these.
        b.write(b"next").await.unwrap();
        assert_eq!(hyper_read(&mut a).await.unwrap(), b"next");
    });
}

/// A hyper read blocked on an empty socket is woken by the cancel (here the deadline of
/// the scope around it) and reports it at once.
#[test]
fn a_blocked_hyper_read_is_woken_by_the_cancel() {
    paused().block_on(async {
        let (_a, b) = UnixStream::pair().unwrap();
        let (mut r, _w) = b.into_split();
        let t0 = now();
        let res = move_on_after(Duration::from_secs(3), async {
            hyper_read(&mut r).await?;
            Ok::<_, std::io::Error>(())
        })
        .await;
        assert!(matches!(res, Ok(None)));
        assert_eq!(now() - t0, Duration::from_secs(3));
    });
}

/// hyper's shutdown after the peer reset the connection is done, not `NotConnected`.
#[test]
fn hyper_shutdown_after_a_peer_reset_is_ok() {
    scope_runtime::Runtime::new().unwrap().block_on(async {
        fail_after(SAFETY_NET, async {
            let l = TcpListener::bind("127.0.0.1:0").await?;
            let peer = std::net::TcpStream::connect(l.local_addr()?)?;
            let (s, _) = l.accept().await?;
            s.write(b"unread").await?;
            sleep(Duration::from_millis(20)).await.unwrap();
            drop(peer); // unread data: the peer's kernel answers with RST
            let mut buf = [0u8; 4];
            assert_eq!(
                s.read(&mut buf).await.unwrap_err().kind(),
                ErrorKind::ConnectionReset
            );
            let (_r, mut w) = s.into_split();
            hyper_shutdown(&mut w).await?;
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn hyper_timer_follows_the_paused_clock_and_resets_in_place() {
    paused().block_on(async {
        let t0 = now();
        assert_eq!(HyperTimer.now(), t0);
        HyperTimer.sleep(Duration::from_secs(7)).await;
        assert_eq!(now() - t0, Duration::from_secs(7));
        assert_eq!(HyperTimer.now(), now());

        let mut s = HyperTimer.sleep_until(now() + Duration::from_secs(100));
        let before: *const () = (&*s as *const dyn hyper::rt::Sleep).cast();
        HyperTimer.reset(&mut s, now() + Duration::from_secs(2));
        let after: *const () = (&*s as *const dyn hyper::rt::Sleep).cast();
        assert_eq!(before, after, "reset reused the allocation");
        let ours = s.as_mut().downcast_mut_pin::<HyperSleep>().unwrap();
        assert_eq!(ours.deadline(), Some(now() + Duration::from_secs(2)));
        let t1 = now();
        s.await;
        assert_eq!(now() - t1, Duration::from_secs(2));
    });
}

/// hyper resets its header timeout to a later deadline on every request: the sleep
/// keeps its earlier timer, and when that fires it waits on for the deadline hyper set
/// last. A reset to an earlier deadline takes effect too. A sleep polled by the same
/// task many times stays one timer.
#[test]
fn hyper_sleep_resets_later_and_earlier_fire_at_the_last_deadline() {
    let rt = paused();
    rt.block_on(async {
        let t0 = now();
        let mut s = HyperTimer.sleep(Duration::from_secs(2));
        for _ in 0..3 {
            assert!(
                poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx)))
                    .await
                    .is_pending()
            );
        }
        assert_eq!(rt.resources().timers, 1);
        for later in [5, 6, 7] {
            HyperTimer.reset(&mut s, t0 + Duration::from_secs(later));
            assert!(
                poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx)))
                    .await
                    .is_pending()
            );
            assert_eq!(
                rt.resources().timers,
                1,
                "a later reset keeps the one timer"
            );
        }
        s.as_mut().await;
        assert_eq!(now() - t0, Duration::from_secs(7), "the last reset wins");

        // Earlier than the armed timer: fires at the earlier deadline.
        let t1 = now();
        let mut s = HyperTimer.sleep(Duration::from_secs(60));
        assert!(
            poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx)))
                .await
                .is_pending()
        );
        HyperTimer.reset(&mut s, t1 + Duration::from_secs(1));
        s.as_mut().await;
        assert_eq!(now() - t1, Duration::from_secs(1));

        // A fired sleep reset to the future waits again.
        let t2 = now();
        HyperTimer.reset(&mut s, t2 + Duration::from_secs(3));
        s.await;
        assert_eq!(now() - t2, Duration::from_secs(3));
    });
}

/// In cancelled code a `HyperSleep` stays pending (it would otherwise turn the cancel
/// into a hyper timeout); polled again under a shield it fires at its deadline.
#[test]
fn a_hyper_sleep_does_not_fire_in_cancelled_code() {
    paused().block_on(async {
        let outer = CancelScope::new();
        outer.cancel();
        let t0 = now();
        let r = outer
            .run(async {
                let mut s = HyperTimer.sleep(Duration::from_secs(1));
                for _ in 0..3 {
                    let p = poll_fn(|cx| Poll::Ready(s.as_mut().poll(cx))).await;
                    assert!(p.is_pending());
                }
                let shield = CancelScope::new().with_shield(true);
                shield
                    .run(async {
                        s.await;
                        Ok::<_, BoxError>(())
                    })
                    .await?;
                Ok::<_, BoxError>(now() - t0)
            })
            .await
            .unwrap();
        assert_eq!(r, Some(Duration::from_secs(1)));
    });
}

/// A future given to `GroupExecutor` is a child of the group: the group waits for it,
/// and cancelling the group drops it even though it waits on nothing of ours.
#[test]
fn group_executor_tasks_are_children_cancelled_with_the_group() {
    paused().block_on(async {
        let ran = Rc::new(Cell::new(false));
        let dropped = Rc::new(Cell::new(false));
        struct Guard(Rc<Cell<bool>>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let (r, d) = (ran.clone(), dropped.clone());
        let t0 = now();
        let res = task_group(|tg| async move {
            let exec = GroupExecutor::from(tg.clone());
            exec.execute(async move {
                sleep(Duration::from_secs(1)).await.unwrap();
                r.set(true);
            });
            exec.execute(async move {
                let _g = Guard(d);
                std::future::pending::<()>().await; // a foreign wait
            });
            sleep(Duration::from_secs(2)).await?;
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(res.is_ok(), "{res:?}");
        assert!(ran.get(), "the group waited for the first task");
        assert!(dropped.get(), "the cancel dropped the second");
        assert_eq!(now() - t0, Duration::from_secs(2));

        // A closed group takes nothing: the future is dropped unpolled.
        let tg = TaskGroup::new();
        let polled = Rc::new(Cell::new(false));
        let p = polled.clone();
        GroupExecutor::new(&tg).execute(async move { p.set(true) });
        assert!(!polled.get());
    });
}

/// Hyper server connections in a cancelled group. An idle one: its blocked read is
/// woken, fails with `Cancelled`, and hyper, between requests, takes that as the end of
/// the connection (`Ok`, the socket closed). One with a request in flight: the handler's
/// `sleep` fails with `Cancelled`, hyper returns it inside its error, and `conn.await?`
/// ends the task as cancelled, so the group absorbs its own cancellation and returns
/// `Ok` instead of a failure.
#[test]
fn hyper_connections_in_a_cancelled_group_end_as_cancelled() {
    paused().block_on(async {
        let (idle_client, idle_server) = UnixStream::pair().unwrap();
        let (busy_client, busy_server) = UnixStream::pair().unwrap();
        let saw_cancelled = Rc::new(Cell::new(false));
        let seen = saw_cancelled.clone();
        let t0 = now();
        let res = task_group(|tg| async move {
            for (stream, seen) in [(idle_server, None), (busy_server, Some(seen))] {
                tg.spawn(async move {
                    let svc = service_fn(|_req| async {
                        sleep(Duration::from_secs(3600)).await?;
                        Ok::<_, BoxError>(hyper::Response::new(Full::new(Bytes::new())))
                    });
                    let res = hyper::server::conn::http1::Builder::new()
                        .timer(HyperTimer)
                        .header_read_timeout(Duration::from_secs(3600))
                        .serve_connection(stream, svc)
                        .await;
                    if let (Err(e), Some(seen)) = (&res, seen) {
                        seen.set(scope_runtime::find_cancelled(e).is_some());
                    }
                    res?;
                    Ok(())
                });
            }
            busy_client
                .write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                .await?;
            sleep(Duration::from_secs(5)).await?;
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(res.is_ok(), "{res:?}");
        assert!(saw_cancelled.get(), "hyper's error carries the Cancelled");
        assert_eq!(now() - t0, Duration::from_secs(5));
        let mut buf = [0u8; 16];
        assert_eq!(
            idle_client.read(&mut buf).await.unwrap(),
            0,
            "closed by hyper"
        );
    });
}

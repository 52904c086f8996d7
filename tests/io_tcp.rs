//! TCP on loopback: basics, cancellation of blocked reads / accepts / connects with no
//! bytes lost, partial writes, bad input, splitting, `futures-io` compatibility.
//!
//! Every test body runs under `fail_after` with a generous real-time bound: a safety
//! net against hangs, never a measurement.

use std::io::{Cursor, ErrorKind};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use scope_runtime::io::{
    BufReader, TcpListener, TcpStream, copy, read_exact, read_to_end, write_all,
};
use scope_runtime::{
    BoxError, CancelError, CancelScope, Runtime, fail_after, move_on_after, sleep, spawn,
    task_group,
};

const SAFETY_NET: Duration = Duration::from_secs(30);

async fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    let (s, _) = l.accept().await.unwrap();
    (c, s)
}

/// A listener whose accept queue is full: further connects are not answered (Linux
/// drops the SYN). Returns the listener and the connections that filled it.
async fn unanswering_listener() -> (TcpListener, Vec<TcpStream>) {
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 0)
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        match move_on_after(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Some(s)) => fillers.push(s),
            Ok(None) => return (l, fillers),
            Err(e) => panic!("filling the backlog failed: {e}"),
        }
    }
    panic!("the accept queue never filled up");
}

#[scope_runtime::test]
async fn echo_roundtrip_and_addresses() {
    fail_after(SAFETY_NET, async {
        let (c, s) = pair().await;
        assert_eq!(c.peer_addr()?, s.local_addr()?);
        assert_eq!(s.peer_addr()?, c.local_addr()?);
        c.set_nodelay(true)?;
        assert!(c.nodelay()?);
        for i in 0..100u32 {
            let msg = i.to_le_bytes();
            write_all(&mut &c, &mut Cursor::new(msg)).await?;
            let mut got = Cursor::new([0u8; 4]);
            read_exact(&mut &s, &mut got).await?;
            write_all(&mut &s, &mut Cursor::new(got.into_inner())).await?;
            let mut back = Cursor::new([0u8; 4]);
            read_exact(&mut &c, &mut back).await?;
            assert_eq!(back.into_inner(), msg);
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_read_cancelled_while_blocked_loses_no_bytes() {
    fail_after(SAFETY_NET, async {
        let (c, s) = pair().await;
        let scope = CancelScope::new();
        let canceller = scope.clone();
        let stopper = spawn(async move {
            sleep(Duration::from_millis(20)).await?;
            canceller.cancel();
            Ok::<_, scope_runtime::Cancelled>(())
        });
        let mut buf = [0u8; 16];
        let r = scope.run(async { s.read(&mut buf).await }).await;
        assert!(
            matches!(r, Ok(None)),
            "the scope absorbs the read's Cancelled: {r:?}"
        );
        assert!(scope.cancelled_caught());
        stopper.await.unwrap().unwrap();

        c.write(b"all of it").await?;
        let mut got = Cursor::new([0u8; 9]);
        read_exact(&mut &s, &mut got).await?;
        assert_eq!(&got.into_inner(), b"all of it");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_read_cancelled_with_data_waiting_consumes_nothing() {
    fail_after(SAFETY_NET, async {
        let (c, s) = pair().await;
        let s = std::rc::Rc::new(s);
        let scope = CancelScope::new();
        let s2 = s.clone();
        let sc = scope.clone();
        let reader = spawn(async move {
            let mut buf = [0u8; 16];
            let r = sc.run(async { s2.read(&mut buf).await }).await;
            Ok::<_, std::io::Error>(r?.is_none())
        });
        // Let the reader block, then make data ready AND cancel before it runs again
        // (the write completes without yielding: the socket is writable).
        sleep(Duration::from_millis(20)).await.unwrap();
        c.write(b"precious").await?;
        scope.cancel();
        // Both the readiness event and the cancellation wake the reader; the
        // checkpoint comes first, so it reports Cancelled and reads nothing.
        assert!(
            reader.await.unwrap().unwrap(),
            "the read reported Cancelled"
        );
        let mut got = Cursor::new([0u8; 8]);
        read_exact(&mut &*s, &mut got).await?;
        assert_eq!(&got.into_inner(), b"precious");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn an_already_cancelled_read_does_not_touch_the_socket() {
    let (c, s) = pair().await;
    c.write(b"x").await.unwrap();
    sleep(Duration::from_millis(10)).await.unwrap();
    let scope = CancelScope::new();
    scope.cancel();
    let mut buf = [0u8; 1];
    let r = scope
        .run(async {
            let e = s.read(&mut buf).await.unwrap_err();
            assert!(e.as_cancelled().is_some());
            assert_ne!(e.kind(), ErrorKind::Interrupted);
            // Level-triggered: it fails again.
            let e2 = s.read(&mut buf).await.unwrap_err();
            Err::<(), _>(e2)
        })
        .await;
    assert!(matches!(r, Ok(None)));
    assert_eq!(s.read(&mut buf).await.unwrap(), 1);
}

#[scope_runtime::test]
async fn a_cancelled_accept_leaves_the_connection_for_the_next_accept() {
    fail_after(SAFETY_NET, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let r = move_on_after(Duration::from_millis(20), l.accept()).await?;
        assert!(r.is_none());
        // A connection completed while nobody accepts, then a cancelled accept.
        let c = TcpStream::connect(addr).await?;
        let scope = CancelScope::new();
        scope.cancel();
        assert!(scope.run(l.accept()).await?.is_none());
        let (s, peer) = l.accept().await?;
        assert_eq!(peer, c.local_addr()?);
        drop(s);
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_cancelled_connect_returns_promptly() {
    fail_after(SAFETY_NET, async {
        let (l, _fillers) = unanswering_listener().await;
        let addr = l.local_addr()?;
        let t0 = std::time::Instant::now();
        let r = move_on_after(Duration::from_millis(100), TcpStream::connect(addr)).await?;
        assert!(r.is_none(), "the connect was cancelled by the deadline");
        assert!(t0.elapsed() < Duration::from_secs(5));
        // The same through an explicit cancel from another task.
        let scope = CancelScope::new();
        let sc = scope.clone();
        let h = spawn(async move {
            sleep(Duration::from_millis(30)).await?;
            sc.cancel();
            Ok::<_, scope_runtime::Cancelled>(())
        });
        assert!(scope.run(TcpStream::connect(addr)).await?.is_none());
        h.await.unwrap().unwrap();
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_cancelled_write_all_reports_exactly_what_went_out() {
    fail_after(SAFETY_NET, async {
        let (c, s) = pair().await;
        let data: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let mut out = Cursor::new(data.clone());
        // Nobody reads: the socket buffers fill up and the deadline cancels the write.
        let r = move_on_after(Duration::from_millis(200), write_all(&mut &c, &mut out)).await?;
        assert!(r.is_none());
        let sent = out.position() as usize;
        assert!(sent > 0 && sent < data.len(), "partial progress: {sent}");
        // Resume with the same cursor while the peer reads everything.
        let mut got = Vec::new();
        let reader = async {
            read_to_end(&mut &s, &mut got).await?;
            Ok::<_, std::io::Error>(())
        };
        let writer = async {
            write_all(&mut &c, &mut out).await?;
            c.shutdown(Shutdown::Write)?;
            Ok::<_, std::io::Error>(())
        };
        let (a, b) = futures::join!(reader, writer);
        a?;
        b?;
        assert_eq!(got.len(), data.len());
        assert!(got == data, "no byte lost or duplicated");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn binding_a_used_port_is_a_clear_error() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let err = TcpListener::bind(l.local_addr().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let err = TcpListener::bind("not an address").await.unwrap_err();
    assert!(err.as_cancelled().is_none());
}

#[scope_runtime::test]
async fn connecting_to_a_closed_port_is_refused() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
}

#[scope_runtime::test]
async fn a_peer_reset_is_a_clear_error() {
    fail_after(SAFETY_NET, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let peer = std::net::TcpStream::connect(l.local_addr()?)?;
        let (s, _) = l.accept().await?;
        s.write(b"unread").await?;
        sleep(Duration::from_millis(20)).await.unwrap();
        drop(peer); // closing with unread data sends RST
        let mut buf = [0u8; 8];
        let err = s.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConnectionReset);
        // Writing after the reset fails too (EPIPE or ECONNRESET), without SIGPIPE.
        let mut last = Ok(0);
        for _ in 0..3 {
            last = s.write(b"more").await;
            if last.is_err() {
                break;
            }
        }
        assert!(last.is_err());
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn reads_after_eof_and_writes_after_shutdown() {
    let (c, s) = pair().await;
    c.write(b"end").await.unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    read_to_end(&mut &s, &mut got).await.unwrap();
    assert_eq!(got, b"end");
    let mut buf = [0u8; 4];
    for _ in 0..3 {
        assert_eq!(s.read(&mut buf).await.unwrap(), 0);
    }
    let err = c.write(b"x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BrokenPipe);
    // The other direction still works.
    s.write(b"back").await.unwrap();
    assert_eq!(c.read(&mut buf).await.unwrap(), 4);
}

#[scope_runtime::test]
async fn split_halves_echo_in_separate_tasks() {
    fail_after(SAFETY_NET, async {
        let (c, s) = pair().await;
        let (sr, sw) = s.into_split();
        task_group(|tg| async move {
            // Server: copy what it reads back to the client until EOF.
            tg.spawn(async move {
                let mut sr = BufReader::new(sr);
                let mut sw = sw;
                copy(&mut sr, &mut sw).await?;
                Ok(())
            });
            let (cr, cw) = c.into_split();
            tg.spawn(async move {
                for i in 0..50u8 {
                    write_all(&mut &cw, &mut Cursor::new(vec![i; 100])).await?;
                }
                drop(cw); // shuts down the write side: the server's copy ends
                Ok(())
            });
            let mut got = Vec::new();
            read_to_end(&mut &cr, &mut got).await?;
            assert_eq!(got.len(), 5000);
            assert!(
                got.chunks(100)
                    .enumerate()
                    .all(|(i, ch)| ch.iter().all(|&b| b == i as u8))
            );
            Ok::<_, BoxError>(())
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn halves_reunite_only_with_their_own() {
    let (a, b) = pair().await;
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let err = ar.reunite(bw).unwrap_err();
    let scope_runtime::io::ReuniteError(ar, bw) = err;
    let a = ar.reunite(aw).unwrap();
    let b = br.reunite(bw).unwrap();
    // Reuniting did not shut anything down.
    a.write(b"ok").await.unwrap();
    let mut buf = [0u8; 2];
    assert_eq!(b.read(&mut buf).await.unwrap(), 2);
}

#[scope_runtime::test]
async fn the_futures_io_traits_work_with_futures_helpers() {
    use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    fail_after(SAFETY_NET, async {
        let (mut c, s) = pair().await;
        c.write_all(b"first line\nsecond line\n").await?;
        c.flush().await?;
        c.close().await?; // shutdown(Write)
        let mut r = BufReader::new(s);
        let mut lines = Vec::new();
        let mut line = String::new();
        while r.read_line(&mut line).await? > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines, ["first line\n", "second line\n"]);
        let mut rest = Vec::new();
        assert_eq!(r.read_to_end(&mut rest).await?, 0);
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn connect_resolves_host_names_on_the_blocking_pool() {
    fail_after(SAFETY_NET, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        // "localhost" may resolve to ::1 first (refused), then 127.0.0.1.
        let c = TcpStream::connect(format!("localhost:{port}")).await?;
        let c2 = TcpStream::connect(("localhost", port)).await?;
        let (_s, peer) = l.accept().await?;
        let (_s2, _) = l.accept().await?;
        assert_eq!(peer, c.local_addr()?);
        drop(c2);
        let bad = TcpStream::connect("no-such-host.invalid:80")
            .await
            .unwrap_err();
        assert!(bad.as_cancelled().is_none());
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn many_connections_served_by_a_task_group_then_cancelled() {
    fail_after(SAFETY_NET, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr: SocketAddr = l.local_addr()?;
        const N: usize = 40;
        let res = task_group(|tg| async move {
            let server = tg.clone();
            let stop = tg.clone();
            tg.spawn(async move {
                loop {
                    let (s, _) = l.accept().await?;
                    server.spawn(async move {
                        let mut buf = [0u8; 64];
                        loop {
                            let n = s.read(&mut buf).await?;
                            if n == 0 {
                                return Ok(());
                            }
                            write_all(&mut &s, &mut Cursor::new(&buf[..n])).await?;
                        }
                    });
                }
            });
            // Clients: all connect, each does a round trip and keeps the connection.
            let mut conns = Vec::new();
            for i in 0..N {
                let c = TcpStream::connect(addr).await?;
                write_all(&mut &c, &mut Cursor::new([i as u8; 10])).await?;
                let mut back = Cursor::new([0u8; 10]);
                read_exact(&mut &c, &mut back).await?;
                assert_eq!(back.into_inner(), [i as u8; 10]);
                conns.push(c);
            }
            // Every server task is now blocked in a read; cancel the group.
            stop.cancel();
            Ok::<_, BoxError>(conns.len())
        })
        .await;
        // The group absorbed its own cancellation (the body's value is discarded).
        assert!(res.is_ok(), "{res:?}");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[test]
fn using_a_socket_on_another_runtime_is_an_error_not_a_hang() {
    let rt1 = Runtime::new().unwrap();
    let (c, s) = rt1.block_on(pair());
    let rt2 = Runtime::new().unwrap();
    let err = rt2.block_on(async {
        let mut buf = [0u8; 1];
        s.read(&mut buf).await.unwrap_err()
    });
    assert!(err.to_string().contains("outside the runtime"), "{err}");
    drop(rt1);
    drop((c, s));
}

#[scope_runtime::test]
async fn end_of_file_arriving_with_the_data_is_not_missed() {
    // A short read clears the read readiness; the peer's FIN, reported in the same
    // event as the data, must still make the next read return 0 instead of waiting.
    fail_after(SAFETY_NET, async {
        for _ in 0..20 {
            let (c, s) = pair().await;
            c.write(b"last words").await?;
            c.shutdown(Shutdown::Write)?;
            sleep(Duration::from_millis(5)).await.unwrap(); // data + FIN are both in
            let mut buf = [0u8; 64];
            assert_eq!(s.read(&mut buf).await?, 10);
            assert_eq!(s.read(&mut buf).await?, 0);
        }
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

/// A server-side stream whose peer reset the connection: the reset has arrived (a read
/// reported it), so the kernel holds the socket as closed and `shutdown(2)` answers
/// `ENOTCONN`.
async fn stream_reset_by_peer() -> TcpStream {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().await.unwrap();
    s.write(b"unread").await.unwrap();
    // The peer holds unread data when it closes, so its kernel answers with RST.
    sleep(Duration::from_millis(20)).await.unwrap();
    drop(peer);
    let mut buf = [0u8; 8];
    let err = s.read(&mut buf).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    s
}

/// Closing a stream whose peer closed first is done, not an error (`ENOTCONN` is
/// mapped to `Ok`, as tokio does): hyper closes every connection this way, and an
/// error there would be logged or fail the connection task for nothing.
#[scope_runtime::test]
async fn closing_after_the_peer_closed_first_is_ok() {
    use futures::AsyncWriteExt;
    fail_after(SAFETY_NET, async {
        let s = stream_reset_by_peer().await;
        for how in [Shutdown::Write, Shutdown::Read, Shutdown::Both] {
            s.shutdown(how).unwrap();
        }
        let mut s = stream_reset_by_peer().await;
        s.close().await.unwrap();
        let s = stream_reset_by_peer().await;
        (&s).close().await.unwrap();
        let (_r, w) = stream_reset_by_peer().await.into_split();
        w.shutdown().unwrap();
        let (_r, mut w) = stream_reset_by_peer().await.into_split();
        w.close().await.unwrap();
        let (_r, w) = stream_reset_by_peer().await.into_split();
        (&w).close().await.unwrap();
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

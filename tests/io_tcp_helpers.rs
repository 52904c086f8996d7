//! The TCP helpers (issue 13, item 4): `open_tcp_stream` / `TcpConnect` (Happy
//! Eyeballs), `serve_tcp` / `ServeTcp`, and the `TcpSocket` builder.
//!
//! Real sockets on loopback, each test bounded by a deadline; the staggering and the
//! cancellation of the race are tested with an injected attempt on the paused clock,
//! where the timings are exact.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::{
    ConnectError, TcpConnect, TcpListener, TcpSocket, TcpStream, open_tcp_stream, read_to_end,
};
use scope_runtime::{
    BoxError, CancelError, CancelScope, ServeError, ServeTcp, fail_after, move_on_after, now,
    sleep, task_group,
};

const LIMIT: Duration = Duration::from_secs(10);

/// A loopback port with no listener (bound, then closed again).
async fn closed_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0").await?.local_addr()
}

// ---- open_tcp_stream / TcpConnect on real sockets ---------------------------------------

#[scope_runtime::test]
async fn open_tcp_stream_connects_to_an_address_that_answers() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let stream = open_tcp_stream("127.0.0.1", l.local_addr()?.port()).await?;
        let (server_side, peer) = l.accept().await?;
        assert_eq!(peer, stream.local_addr()?);
        server_side.write(b"hi").await?;
        drop(server_side);
        let mut got = Vec::new();
        let mut s = stream;
        read_to_end(&mut s, &mut got).await?;
        assert_eq!(got, b"hi");
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_refusing_address_is_reported_with_its_error() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let refused = closed_port().await?;
        let err = open_tcp_stream("127.0.0.1", refused.port())
            .await
            .expect_err("nobody listens there");
        assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        let report = ConnectError::from_io(&err).expect("a ConnectError inside");
        assert_eq!(report.attempts().len(), 1);
        assert_eq!(report.attempts()[0].0, refused);
        assert_eq!(report.attempts()[0].1.kind(), ErrorKind::ConnectionRefused);
        assert!(err.to_string().contains(&refused.to_string()), "{err}");
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn the_all_fail_error_lists_every_address_in_order() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let addrs = [
            closed_port().await?,
            closed_port().await?,
            closed_port().await?,
        ];
        let err = TcpConnect::addrs(addrs)
            .delay(Duration::from_secs(5)) // refusals start the next one at once
            .connect()
            .await
            .expect_err("every address refuses");
        let report = ConnectError::from_io(&err).expect("a ConnectError inside");
        let tried: Vec<SocketAddr> = report.attempts().iter().map(|(a, _)| *a).collect();
        assert_eq!(tried, addrs);
        for (addr, e) in report.attempts() {
            assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{addr}");
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
        }
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_refused_address_does_not_delay_the_next() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let good = TcpListener::bind("127.0.0.1:0").await?;
        let refused = closed_port().await?;
        let t0 = std::time::Instant::now();
        // With a one-minute delay, only a failure can start the second attempt in time.
        let s = TcpConnect::addrs([refused, good.local_addr()?])
            .delay(Duration::from_secs(60))
            .connect()
            .await?;
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert_eq!(s.peer_addr()?, good.local_addr()?);
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_host_name_resolves_and_connects() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        // `localhost` may resolve to ::1 as well; a v6 listener may be impossible here,
        // so listen on 127.0.0.1 and let the IPv6 attempt (first) fail or wait.
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let s = TcpConnect::new("localhost", port)
            .delay(Duration::from_millis(20))
            .connect()
            .await?;
        assert_eq!(s.peer_addr()?, l.local_addr()?);
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_cancelled_connect_sends_nothing() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let port = l.local_addr()?.port();
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope.run(open_tcp_stream("127.0.0.1", port)).await?;
        assert!(r.is_none(), "the scope absorbed the connect's Cancelled");
        // Nothing reached the listener.
        let accepted = move_on_after(Duration::from_millis(100), l.accept()).await?;
        assert!(accepted.is_none(), "a cancelled connect made a connection");
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn an_empty_address_list_is_invalid_input() {
    let err = TcpConnect::addrs([]).connect().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

// ---- the race on the paused clock, with an injected attempt ------------------------------

/// What the fake attempts did: start and end instants (ms since the test's start) per
/// address index, and how many are alive.
#[derive(Default)]
struct Log {
    started: RefCell<Vec<(usize, u128)>>,
    dropped: RefCell<Vec<(usize, u128)>>,
    live: Cell<usize>,
}

/// Marks an attempt dropped (finished or cancelled) when it goes away.
struct Alive {
    i: usize,
    log: Rc<Log>,
    t0: std::time::Instant,
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.log.live.set(self.log.live.get() - 1);
        let at = (now() - self.t0).as_millis();
        self.log.dropped.borrow_mut().push((self.i, at));
    }
}

/// Address `i` of the fake: `ports[i]` encodes its behaviour.
/// Port 1xxx: fails after xxx ms; 2xxx: succeeds after xxx ms; 9999: never answers.
fn fake_attempt(
    log: Rc<Log>,
    t0: std::time::Instant,
) -> impl FnMut(SocketAddr) -> std::pin::Pin<Box<dyn std::future::Future<Output = io::Result<u16>>>>
{
    move |addr: SocketAddr| {
        let log = log.clone();
        Box::pin(async move {
            let i = addr
                .ip()
                .to_string()
                .rsplit('.')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            log.started.borrow_mut().push((i, (now() - t0).as_millis()));
            log.live.set(log.live.get() + 1);
            let _alive = Alive {
                i,
                log: log.clone(),
                t0,
            };
            let port = addr.port();
            match port / 1000 {
                1 => {
                    sleep(Duration::from_millis(u64::from(port % 1000))).await?;
                    Err(io::Error::new(ErrorKind::ConnectionRefused, "fake refusal"))
                }
                2 => {
                    sleep(Duration::from_millis(u64::from(port % 1000))).await?;
                    Ok(port)
                }
                _ => {
                    sleep(Duration::MAX).await?;
                    unreachable!()
                }
            }
        })
    }
}

/// Fake address `i` (its index in the last octet) with behaviour `port`.
fn fake(i: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, i], port))
}

#[scope_runtime::test(paused)]
async fn attempts_start_staggered_and_at_once_after_a_failure() -> io::Result<()> {
    let log = Rc::new(Log::default());
    let t0 = now();
    // 0 never answers; 1 fails 10 ms after it starts; 2 answers after 50 ms; 3 would
    // answer after 1 ms but never gets its turn.
    let addrs = [fake(0, 9999), fake(1, 1010), fake(2, 2050), fake(3, 2001)];
    let won = TcpConnect::addrs(addrs)
        .delay(Duration::from_millis(250))
        .connect_with(fake_attempt(log.clone(), t0))
        .await?;
    assert_eq!(won, 2050);
    assert_eq!((now() - t0).as_millis(), 310);
    // 0 at once; 1 after the delay; 2 as soon as 1 failed (260 ms), not at 510 ms.
    assert_eq!(*log.started.borrow(), [(0, 0), (1, 250), (2, 260)]);
    // 1 ended by failing, then the winner and the hanging 0 went when it won.
    let dropped = log.dropped.borrow().clone();
    assert_eq!(dropped[0], (1, 260));
    let mut rest = dropped[1..].to_vec();
    rest.sort();
    assert_eq!(rest, [(0, 310), (2, 310)]);
    assert_eq!(log.live.get(), 0, "every loser was dropped");
    Ok(())
}

#[scope_runtime::test(paused)]
async fn the_delay_is_configurable_and_zero_starts_all_at_once() -> io::Result<()> {
    for (delay, want) in [
        (Duration::from_millis(100), vec![(0, 0), (1, 100), (2, 200)]),
        (Duration::ZERO, vec![(0, 0), (1, 0), (2, 0)]),
    ] {
        let log = Rc::new(Log::default());
        let t0 = now();
        let addrs = [fake(0, 9999), fake(1, 9999), fake(2, 2300)];
        let won = TcpConnect::addrs(addrs)
            .delay(delay)
            .connect_with(fake_attempt(log.clone(), t0))
            .await?;
        assert_eq!(won, 2300);
        assert_eq!(*log.started.borrow(), want, "delay {delay:?}");
        assert_eq!(log.live.get(), 0);
    }
    Ok(())
}

#[scope_runtime::test(paused)]
async fn every_attempt_failing_reports_each_in_address_order() {
    let log = Rc::new(Log::default());
    let t0 = now();
    // Later addresses fail sooner: the report still follows the address order.
    let addrs = [fake(0, 1300), fake(1, 1100), fake(2, 1001)];
    let err = TcpConnect::addrs(addrs)
        .delay(Duration::from_millis(50))
        .connect_with(fake_attempt(log.clone(), t0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let report = ConnectError::from_io(&err).unwrap();
    let tried: Vec<SocketAddr> = report.attempts().iter().map(|(a, _)| *a).collect();
    assert_eq!(tried, addrs);
    // 0 fails at 300, 1 (started at 50) at 150, 2 (started at 100) at 101.
    assert_eq!((now() - t0).as_millis(), 300);
    assert_eq!(log.live.get(), 0);
}

#[scope_runtime::test(paused)]
async fn a_cancelled_connect_leaves_no_attempt() -> io::Result<()> {
    let log = Rc::new(Log::default());
    let t0 = now();
    let addrs = [fake(0, 9999), fake(1, 9999), fake(2, 9999)];
    let r = move_on_after(
        Duration::from_millis(600),
        TcpConnect::addrs(addrs)
            .delay(Duration::from_millis(250))
            .connect_with(fake_attempt(log.clone(), t0)),
    )
    .await?;
    assert!(r.is_none(), "the deadline cancelled the connect");
    assert_eq!(*log.started.borrow(), [(0, 0), (1, 250), (2, 500)]);
    assert_eq!(
        log.live.get(),
        0,
        "an attempt outlived the cancelled connect"
    );
    let mut dropped = log.dropped.borrow().clone();
    dropped.sort();
    assert_eq!(dropped, [(0, 600), (1, 600), (2, 600)]);
    Ok(())
}

#[scope_runtime::test(paused)]
async fn a_cancel_while_waiting_for_the_delay_is_seen() -> io::Result<()> {
    // The only thing pending besides the attempt is the stagger timer: a cancel from
    // another task must still end the connect at once.
    let log = Rc::new(Log::default());
    let t0 = now();
    let scope = CancelScope::new();
    let canceller = scope.clone();
    let addrs = [fake(0, 9999), fake(1, 9999)];
    let (r, ()) = futures::join!(
        scope.run(
            TcpConnect::addrs(addrs)
                .delay(Duration::from_secs(3600))
                .connect_with(fake_attempt(log.clone(), t0)),
        ),
        async {
            let _ = sleep(Duration::from_millis(5)).await;
            canceller.cancel();
        }
    );
    let r = r?;
    assert!(r.is_none());
    assert_eq!((now() - t0).as_millis(), 5);
    assert_eq!(log.live.get(), 0);
    Ok(())
}

// ---- serve_tcp ---------------------------------------------------------------------------

/// Sends `byte`, returns what the server sent back before closing.
async fn client(addr: SocketAddr, byte: u8) -> io::Result<(SocketAddr, Vec<u8>)> {
    let mut c = TcpStream::connect(addr).await?;
    c.write(&[byte]).await?;
    let mut got = Vec::new();
    read_to_end(&mut c, &mut got).await?;
    Ok((c.local_addr()?, got))
}

#[scope_runtime::test]
async fn a_failing_connection_does_not_stop_the_server() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let errors: Rc<RefCell<Vec<(SocketAddr, String)>>> = Rc::default();
        let seen = errors.clone();
        let server_scope = CancelScope::new();
        let stop = server_scope.clone();
        let served = Rc::new(Cell::new(0));
        let count = served.clone();
        let server = ServeTcp::new(listener, move |s: TcpStream, _peer| {
            let count = count.clone();
            async move {
                let mut b = [0u8; 1];
                s.read(&mut b).await?;
                match b[0] {
                    b'x' => return Err(io::Error::other("the client sent x")),
                    b'p' => panic!("the client sent p"),
                    _ => {}
                }
                s.write(&b).await?;
                count.set(count.get() + 1);
                Ok(())
            }
        })
        .on_error(move |e| match e {
            ServeError::Handler { peer, error } => {
                seen.borrow_mut().push((peer, error.to_string()))
            }
            other => panic!("unexpected {other}"),
        });
        let (res, clients) = futures::join!(server_scope.run(server.run()), async {
            let a = client(addr, b'a').await?;
            let x = client(addr, b'x').await?;
            let p = client(addr, b'p').await?;
            let b = client(addr, b'b').await?;
            stop.cancel();
            Ok::<_, io::Error>((a, x, p, b))
        });
        let (a, x, p, b) = clients?;
        assert!(
            res?.is_none(),
            "the cancel stopped the server, and the scope absorbed it"
        );
        assert_eq!(a.1, b"a");
        assert_eq!(b.1, b"b");
        assert!(
            x.1.is_empty() && p.1.is_empty(),
            "failed connections are just closed"
        );
        assert_eq!(served.get(), 2);
        let errors = errors.borrow();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert_eq!(errors[0].0, x.0);
        assert!(errors[0].1.contains("the client sent x"), "{errors:?}");
        assert_eq!(errors[1].0, p.0);
        assert!(errors[1].1.contains("panicked") && errors[1].1.contains("the client sent p"));
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_cancel_stops_the_server_and_its_connections() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let handlers_cancelled = Rc::new(Cell::new(0));
        let hc = handlers_cancelled.clone();
        let reported = Rc::new(Cell::new(0));
        let rep = reported.clone();
        let server = ServeTcp::new(listener, move |s: TcpStream, _peer| {
            let hc = hc.clone();
            async move {
                s.write(b"ready").await?;
                let mut b = [0u8; 1];
                // Blocks until the server is cancelled.
                let r = s.read(&mut b).await;
                if r.as_ref().is_err_and(|e| e.as_cancelled().is_some()) {
                    hc.set(hc.get() + 1);
                }
                r.map(drop)
            }
        })
        .on_error(move |_| rep.set(rep.get() + 1));
        let result: Rc<RefCell<Option<io::Result<()>>>> = Rc::default();
        let out = result.clone();
        task_group(|tg| async move {
            tg.spawn(async move {
                // Not absorbed inside: `run` returns the Cancelled as an error.
                *out.borrow_mut() = Some(server.run().await);
                Ok(())
            });
            // Two open connections whose handlers wait.
            let mut conns = [
                TcpStream::connect(addr).await?,
                TcpStream::connect(addr).await?,
            ];
            for c in &mut conns {
                let mut cur = std::io::Cursor::new([0u8; 5]);
                scope_runtime::io::read_exact(c, &mut cur).await?;
            }
            tg.cancel();
            Ok::<_, BoxError>(())
        })
        .await?;
        let returned = result.borrow_mut().take().expect("run returned");
        let err = returned.expect_err("a server only returns errors");
        assert!(err.as_cancelled().is_some(), "{err}");
        assert_eq!(handlers_cancelled.get(), 2, "both handlers saw the cancel");
        assert_eq!(reported.get(), 0, "a cancelled handler is not a failure");
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_cancelled_server_returns_cancelled() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let scope = CancelScope::new();
        scope.cancel();
        let err = scope
            .run(async {
                let r = ServeTcp::new(listener, |_s: TcpStream, _p| async {
                    Ok::<_, io::Error>(())
                })
                .run()
                .await;
                let e = r.expect_err("a server only returns errors");
                assert!(e.as_cancelled().is_some(), "{e}");
                Err::<(), _>(e)
            })
            .await;
        assert!(err?.is_none());
        Ok(())
    })
    .await
}

// ---- TcpSocket ---------------------------------------------------------------------------

#[test]
fn socket_options_read_back() -> io::Result<()> {
    let s = TcpSocket::new_v4()?;
    assert!(!s.reuseaddr()? && !s.reuseport()? && !s.nodelay()?);
    s.set_reuseaddr(true)?;
    s.set_reuseport(true)?;
    s.set_nodelay(true)?;
    assert!(s.reuseaddr()? && s.reuseport()? && s.nodelay()?);
    s.set_nodelay(false)?;
    assert!(!s.nodelay()?);

    let before = s.recv_buffer_size()?;
    let want = before * 2 + 4096;
    s.set_recv_buffer_size(want)?;
    s.set_send_buffer_size(want)?;
    // The kernel may round up (Linux doubles) but not below what was asked, within
    // its maximum (`net.core.rmem_max`, usually 200 KiB or more).
    assert!(
        s.recv_buffer_size()? >= want.min(200 * 1024),
        "{}",
        s.recv_buffer_size()?
    );
    assert!(
        s.send_buffer_size()? >= want.min(200 * 1024),
        "{}",
        s.send_buffer_size()?
    );
    let err = s.set_send_buffer_size(u32::MAX).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    Ok(())
}

#[scope_runtime::test]
async fn options_stay_on_the_connected_stream_and_bind_is_kept() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let ls = TcpSocket::new_v4()?;
        ls.bind("127.0.0.1:0".parse()?)?;
        let l = ls.listen(8)?;
        // A client bound to a chosen local port first.
        let local = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
        let cs = TcpSocket::new_v4()?;
        cs.set_nodelay(true)?;
        cs.bind(local)?;
        let c = cs.connect(l.local_addr()?).await?;
        assert!(c.nodelay()?);
        assert_eq!(c.local_addr()?, local);
        let (_s, peer) = l.accept().await?;
        assert_eq!(peer, local);
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn reuseport_lets_two_listeners_bind_one_port() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let listen = |addr: SocketAddr, reuse: bool| -> io::Result<TcpListener> {
            let s = TcpSocket::new_v4()?;
            s.set_reuseport(reuse)?;
            s.bind(addr)?;
            s.listen(16)
        };
        let first = listen("127.0.0.1:0".parse()?, true)?;
        let addr = first.local_addr()?;
        let second = listen(addr, true)?;
        assert_eq!(second.local_addr()?, addr);
        // Without the option on the newcomer, the port is taken.
        let err = listen(addr, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AddrInUse);
        // Both accept: connect until each has had a connection (the kernel hashes).
        let (mut a, mut b) = (0, 0);
        let mut keep = Vec::new();
        for _ in 0..64 {
            keep.push(TcpStream::connect(addr).await?);
            if move_on_after(Duration::from_millis(20), first.accept())
                .await?
                .is_some()
            {
                a += 1;
            } else if move_on_after(Duration::from_millis(20), second.accept())
                .await?
                .is_some()
            {
                b += 1;
            }
            if a > 0 && b > 0 {
                break;
            }
        }
        assert!(a > 0 && b > 0, "connections spread: {a} / {b}");
        Ok(())
    })
    .await
}

#[scope_runtime::test]
async fn a_cancelled_socket_connect_sends_nothing() -> Result<(), BoxError> {
    fail_after(LIMIT, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let scope = CancelScope::new();
        scope.cancel();
        let socket = TcpSocket::new_v4()?;
        let addr = l.local_addr()?;
        assert!(scope.run(socket.connect(addr)).await?.is_none());
        let accepted = move_on_after(Duration::from_millis(100), l.accept()).await?;
        assert!(accepted.is_none());
        Ok(())
    })
    .await
}

#[test]
fn binding_the_wrong_family_is_an_error() -> io::Result<()> {
    let s = TcpSocket::new_v4()?;
    assert!(s.bind("[::1]:0".parse().unwrap()).is_err());
    Ok(())
}

#[cfg(target_os = "linux")]
#[scope_runtime::test]
async fn a_fatal_accept_error_ends_the_server_and_its_connections() -> Result<(), BoxError> {
    use std::os::fd::{AsFd, AsRawFd};
    fail_after(LIMIT, async {
        let socket = TcpSocket::new_v4()?;
        socket.bind("127.0.0.1:0".parse()?)?;
        // A second descriptor of the same socket, to break it under the server.
        let dup = socket.as_fd().try_clone_to_owned()?;
        let listener = socket.listen(8)?;
        let addr = listener.local_addr()?;
        let cancelled = Rc::new(Cell::new(0));
        let seen = cancelled.clone();
        let server = ServeTcp::new(listener, move |s: TcpStream, _peer| {
            let seen = seen.clone();
            async move {
                s.write(b"r").await?;
                let mut b = [0u8; 1];
                let r = s.read(&mut b).await; // waits until the server ends
                if r.as_ref().is_err_and(|e| e.as_cancelled().is_some()) {
                    seen.set(seen.get() + 1);
                }
                r.map(drop)
            }
        })
        .on_error(|e| panic!("nothing to report: {e}"));
        let (res, client) = futures::join!(server.run(), async {
            let c = TcpStream::connect(addr).await?;
            let mut b = [0u8; 1];
            assert_eq!(c.read(&mut b).await?, 1, "the handler runs");
            // On Linux, shutting a listening socket down makes accept fail (EINVAL).
            // SAFETY: `dup` is a live descriptor we own; `shutdown` takes integers.
            assert_eq!(unsafe { libc::shutdown(dup.as_raw_fd(), libc::SHUT_RD) }, 0);
            Ok::<_, io::Error>(c)
        });
        let _client = client?;
        let err = res.expect_err("a fatal accept error ends the server");
        assert!(err.as_cancelled().is_none(), "{err}");
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
        assert_eq!(cancelled.get(), 1, "the live connection was cancelled");
        Ok(())
    })
    .await
}

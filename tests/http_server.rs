//! `examples/http_server.rs` driven by real HTTP clients: hyper's client on this
//! runtime, raw sockets that misbehave, and `curl` where it is installed.
//!
//! These tests run on the real clock: the clients are real sockets (and, for curl,
//! another process), which a paused clock would not wait for. No assertion depends on
//! timing: the shutdown is triggered when the server reports the request in flight,
//! and every body is bounded by `fail_after(SAFETY_NET)` so nothing can hang.
#![cfg(feature = "hyper")]

#[allow(dead_code)]
#[path = "../examples/http_server.rs"]
mod server;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use scope_runtime::io::{TcpListener, TcpStream, spawn_blocking};
use scope_runtime::sync::Event;
use scope_runtime::{BoxError, GroupExecutor, TaskGroup, fail_after, sleep, task_group};
use server::{Config, Protocol, Stats, serve};

const SAFETY_NET: Duration = Duration::from_secs(30);

/// A running server: its address, its stats and the event that shuts it down.
struct Running {
    addr: SocketAddr,
    stats: Rc<Stats>,
    stop: Rc<Event>,
}

/// Starts the server as a task of `tg`; the task ends when the server has stopped.
async fn start(tg: &TaskGroup, config: Config, stopped: Rc<Event>) -> Result<Running, BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stats = Rc::new(Stats::default());
    let stop = Rc::new(Event::new());
    let (st, sp) = (stats.clone(), stop.clone());
    tg.spawn(async move {
        let shutdown = async move {
            let _ = sp.wait().await;
        };
        serve(listener, shutdown, config, st).await?;
        stopped.set();
        Ok(())
    });
    Ok(Running { addr, stats, stop })
}

/// An HTTP/1 client connection on this runtime; its driver runs in `tg`.
async fn h1_client(
    tg: &TaskGroup,
    addr: SocketAddr,
) -> Result<hyper::client::conn::http1::SendRequest<Empty<Bytes>>, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    let (sender, conn) = hyper::client::conn::http1::handshake(stream).await?;
    tg.spawn(async move {
        // The server closing a connection gracefully is a normal end here.
        let _ = conn.await;
        Ok(())
    });
    Ok(sender)
}

async fn get_h1(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
) -> Result<(StatusCode, Bytes), BoxError> {
    sender.ready().await?;
    let req = Request::get(path)
        .header("host", "test")
        .body(Empty::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Waits (polling, on the real clock) until `cond` holds.
async fn until(mut cond: impl FnMut() -> bool) -> Result<(), BoxError> {
    while !cond() {
        sleep(Duration::from_millis(2)).await?;
    }
    Ok(())
}

fn run(body: impl AsyncFnOnce() -> Result<(), BoxError>) {
    scope_runtime::Runtime::new()
        .unwrap()
        .block_on(fail_after(SAFETY_NET, body()))
        .unwrap();
}

#[test]
fn serves_keep_alive_requests_and_routes() {
    run(async || {
        task_group(|tg| async move {
            let stopped = Rc::new(Event::new());
            let srv = start(&tg, Config::default(), stopped.clone()).await?;
            let mut c = h1_client(&tg, srv.addr).await?;
            for _ in 0..3 {
                let (status, body) = get_h1(&mut c, "/").await?;
                assert_eq!(status, StatusCode::OK);
                assert_eq!(body, "hello, world\n");
            }
            let (status, _) = get_h1(&mut c, "/nope").await?;
            assert_eq!(status, StatusCode::NOT_FOUND);
            let (status, body) = get_h1(&mut c, "/slow/10").await?;
            assert_eq!(
                (status, &body[..]),
                (StatusCode::OK, &b"slow done after 10 ms\n"[..])
            );
            assert_eq!(srv.stats.accepted.get(), 1, "one keep-alive connection");
            assert_eq!(srv.stats.requests.get(), 5);
            drop(c);
            srv.stop.set();
            stopped.wait().await?;
            assert_eq!(srv.stats.errors.get(), 0);
            Ok(())
        })
        .await?;
        Ok(())
    });
}

/// Shutdown while a slow request is in flight: the request completes, an idle
/// keep-alive connection is closed at once, the server then exits (well before the
/// grace period), and later connections are refused.
#[test]
fn graceful_shutdown_mid_request_finishes_it_then_refuses_connections() {
    run(async || {
        task_group(|tg| async move {
            let stopped = Rc::new(Event::new());
            let config = Config {
                grace: Duration::from_secs(20),
                ..Config::default()
            };
            let srv = start(&tg, config, stopped.clone()).await?;
            // An idle keep-alive connection that graceful shutdown must close.
            let mut idle = h1_client(&tg, srv.addr).await?;
            get_h1(&mut idle, "/").await?;

            let mut slow = h1_client(&tg, srv.addr).await?;
            let in_flight = spawn_local(&tg, async move { get_h1(&mut slow, "/slow/300").await });
            until(|| srv.stats.in_flight.get() == 1).await?;
            let t0 = Instant::now();
            srv.stop.set();

            let (status, body) = in_flight.take().await?;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body, "slow done after 300 ms\n");
            stopped.wait().await?;
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the server waited for the grace period"
            );
            assert!(idle.is_closed() || get_h1(&mut idle, "/").await.is_err());
            let refused = TcpStream::connect(srv.addr).await.unwrap_err();
            assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
            assert_eq!(srv.stats.cut_by_grace.get(), 0);
            assert_eq!(srv.stats.errors.get(), 0);
            Ok(())
        })
        .await?;
        Ok(())
    });
}

/// A request longer than the grace period is cut: the group's deadline cancels its
/// handler, the client sees the connection end without a response, the server exits
/// soon after the grace period.
#[test]
fn the_grace_period_bounds_the_shutdown() {
    run(async || {
        task_group(|tg| async move {
            let stopped = Rc::new(Event::new());
            let config = Config {
                grace: Duration::from_millis(100),
                ..Config::default()
            };
            let srv = start(&tg, config, stopped.clone()).await?;
            let mut slow = h1_client(&tg, srv.addr).await?;
            let in_flight = spawn_local(&tg, async move { get_h1(&mut slow, "/slow/60000").await });
            until(|| srv.stats.in_flight.get() == 1).await?;
            let t0 = Instant::now();
            srv.stop.set();
            assert!(
                in_flight.take().await.is_err(),
                "the cut request has no response"
            );
            stopped.wait().await?;
            assert!(t0.elapsed() < Duration::from_secs(10));
            assert_eq!(srv.stats.cut_by_grace.get(), 1);
            assert_eq!(srv.stats.in_flight.get(), 0, "the handler was dropped");
            assert_eq!(srv.stats.errors.get(), 0);
            Ok(())
        })
        .await?;
        Ok(())
    });
}

/// Clients that go away early (before sending anything, mid-head, before reading the
/// response), one that sends garbage and a handler that panics: each ends its own
/// connection, none is counted as an error, and the server keeps serving.
#[test]
fn bad_and_early_closing_clients_do_not_take_the_server_down() {
    run(async || {
        task_group(|tg| async move {
            let stopped = Rc::new(Event::new());
            let srv = start(&tg, Config::default(), stopped.clone()).await?;
            let addr = srv.addr;
            let misbehave = spawn_blocking(move || -> std::io::Result<()> {
                drop(std::net::TcpStream::connect(addr)?);
                let mut s = std::net::TcpStream::connect(addr)?;
                s.write_all(b"GET / HTTP/1.1\r\nHo")?;
                drop(s);
                let mut s = std::net::TcpStream::connect(addr)?;
                s.write_all(b"GET /slow/50 HTTP/1.1\r\nHost: x\r\n\r\n")?;
                drop(s); // gone before the response
                let mut s = std::net::TcpStream::connect(addr)?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                s.write_all(b"this is not http\r\n\r\n")?;
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
                Ok(())
            });
            misbehave.await??;
            let mut c = h1_client(&tg, srv.addr).await?;
            assert!(get_h1(&mut c, "/panic").await.is_err());
            // Each connection has ended: the server counted all five.
            until(|| srv.stats.closed.get() == 5).await?;
            let mut c = h1_client(&tg, srv.addr).await?;
            let (status, body) = get_h1(&mut c, "/").await?;
            assert_eq!(
                (status, &body[..]),
                (StatusCode::OK, &b"hello, world\n"[..])
            );
            assert_eq!(srv.stats.errors.get(), 0, "early closes are not errors");
            // The cut-off head at least; the one that left before its response may
            // end either way (hyper may still write the response into the socket).
            assert!(srv.stats.client_gone.get() >= 1, "{:?}", srv.stats);
            assert_eq!(srv.stats.bad_requests.get(), 1);
            assert_eq!(srv.stats.panics.get(), 1);
            drop(c);
            srv.stop.set();
            stopped.wait().await?;
            Ok(())
        })
        .await?;
        Ok(())
    });
}

/// HTTP/2: streams run through `GroupExecutor` in the server's group; many requests
/// on one connection at once, then a graceful shutdown with one in flight.
#[test]
fn http2_streams_and_graceful_shutdown() {
    run(async || {
        task_group(|tg| async move {
            let stopped = Rc::new(Event::new());
            let config = Config {
                protocol: Protocol::Http2,
                ..Config::default()
            };
            let srv = start(&tg, config, stopped.clone()).await?;
            let stream = TcpStream::connect(srv.addr).await?;
            let (sender, conn) =
                hyper::client::conn::http2::handshake(GroupExecutor::new(&tg), stream).await?;
            tg.spawn(async move {
                let _ = conn.await;
                Ok(())
            });
            let mut pending = Vec::new();
            for i in 0..8 {
                let mut s = sender.clone();
                pending.push(spawn_local(&tg, async move {
                    let path = if i == 0 {
                        "/slow/200".to_string()
                    } else {
                        "/".to_string()
                    };
                    let req =
                        Request::get(format!("http://test{path}")).body(Empty::<Bytes>::new())?;
                    let resp = s.send_request(req).await?;
                    let status = resp.status();
                    Ok((status, resp.into_body().collect().await?.to_bytes()))
                }));
            }
            until(|| srv.stats.requests.get() == 8).await?;
            srv.stop.set();
            for p in pending {
                let (status, _) = p.take().await?;
                assert_eq!(status, StatusCode::OK);
            }
            drop(sender);
            stopped.wait().await?;
            assert_eq!(srv.stats.accepted.get(), 1);
            assert_eq!(srv.stats.errors.get(), 0);
            Ok(())
        })
        .await?;
        Ok(())
    });
}

/// The same server driven by curl (another process, on the blocking pool): a plain
/// request, HTTP/2, and a graceful shutdown mid-request.
#[test]
fn curl_gets_answers_and_a_slow_request_survives_shutdown() {
    let curl = "/usr/bin/curl";
    if !std::path::Path::new(curl).exists() {
        println!("note: {curl} not found; skipping the curl test");
        return;
    }
    fn curl_get(args: Vec<String>) -> std::io::Result<(bool, String)> {
        let out = std::process::Command::new("/usr/bin/curl")
            .args(["-sS", "--max-time", "20"])
            .args(args)
            .output()?;
        Ok((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        ))
    }
    run(async || {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            task_group(|tg| async move {
                let stopped = Rc::new(Event::new());
                let config = Config {
                    protocol,
                    ..Config::default()
                };
                let srv = start(&tg, config, stopped.clone()).await?;
                let url = format!("http://{}", srv.addr);
                let mut base = Vec::new();
                if protocol == Protocol::Http2 {
                    base.push("--http2-prior-knowledge".to_string());
                }
                let mut args = base.clone();
                args.push(format!("{url}/"));
                let (ok, body) = spawn_blocking(move || curl_get(args)).await??;
                assert!(ok, "curl failed ({protocol:?})");
                assert_eq!(body, "hello, world\n");

                let mut args = base.clone();
                args.push(format!("{url}/slow/300"));
                let slow = spawn_blocking(move || curl_get(args));
                until(|| srv.stats.in_flight.get() == 1).await?;
                srv.stop.set();
                let (ok, body) = slow.await??;
                assert!(ok, "the in-flight request failed ({protocol:?})");
                assert_eq!(body, "slow done after 300 ms\n");
                stopped.wait().await?;
                let mut args = base;
                args.push(format!("{url}/"));
                let (ok, _) = spawn_blocking(move || curl_get(args)).await??;
                assert!(!ok, "connections after the shutdown are refused");
                assert_eq!(srv.stats.errors.get(), 0);
                Ok(())
            })
            .await?;
        }
        Ok(())
    });
}

/// A child of `tg` whose result can be awaited: a oneshot carries it back.
fn spawn_local<T: 'static>(
    tg: &TaskGroup,
    fut: impl Future<Output = Result<T, BoxError>> + 'static,
) -> Result_<T> {
    let (tx, rx) = scope_runtime::sync::oneshot();
    tg.spawn(async move {
        let _ = tx.send(fut.await);
        Ok(())
    });
    Result_(rx)
}

/// The result of [`spawn_local`].
struct Result_<T>(scope_runtime::sync::OneshotReceiver<Result<T, BoxError>>);

impl<T> Result_<T> {
    async fn take(self) -> Result<T, BoxError> {
        self.0.await?.ok_or("the task ended without a result")?
    }
}

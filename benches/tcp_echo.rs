//! B8 `tcp_echo`: a loopback echo server on scope_runtime, tokio (current-thread),
//! smol (`LocalExecutor` + `async-io`, driven by `async_io::block_on`) and a
//! hand-written `mio` loop (the limit), driven by one fixed client.
//!
//! * The server runs on its own thread (one runtime per trial, single-threaded); it
//!   accepts the connections, echoes each with one task per connection (the mio loop:
//!   one slab entry per connection) until the client closes them, then exits.
//! * The client is the same for every server: one thread, blocking std sockets with
//!   `TCP_NODELAY`. A *round* writes a 1 KiB request on every connection, then reads
//!   the 1 KiB response of every connection. With 1 connection this is latency-bound
//!   ping-pong; with 64, the server handles 64 ready sockets per round.
//! * Servers are interleaved run by run (rotating which goes first) and the median
//!   wall time of the measured rounds is reported, with the ratios `peer / ours`
//!   (> 1: we are faster) and our fraction of the raw mio loop (`mio / ours`).
//!
//! ```text
//! cargo bench --bench tcp_echo                # full: 9 runs per server and case
//! BENCH_QUICK=1 cargo bench --bench tcp_echo  # quick: 5 runs, fewer rounds (~5 s)
//! BENCH_RUNS=15 cargo bench --bench tcp_echo  # any number of runs
//! BENCH_ONLY=ours cargo bench --bench tcp_echo  # one server alone (ours, tokio, smol,
//!                                              # mio), e.g. under a profiler
//! ```

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{env_usize, interleave, middle_by, ours_rt, quick, tokio_rt};

const MSG: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Ours,
    Tokio,
    Smol,
    Mio,
}

impl Server {
    const ALL: [Server; 4] = [Server::Ours, Server::Tokio, Server::Smol, Server::Mio];

    fn key(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Tokio => "tokio",
            Server::Smol => "smol",
            Server::Mio => "mio",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Ours => "scope_runtime",
            Server::Tokio => "tokio",
            Server::Smol => "smol",
            Server::Mio => "raw mio",
        }
    }
}

// ---------------------------------------------------------------------------------
// Servers: each serves exactly `conns` connections until they close, then returns.
// ---------------------------------------------------------------------------------

fn serve_ours(listener: std::net::TcpListener, conns: usize) {
    use scope_runtime::io::{TcpListener, write_all};
    ours_rt().block_on(async move {
        let l = TcpListener::from_std(listener).unwrap();
        scope_runtime::task_group(|tg| async move {
            for _ in 0..conns {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                tg.spawn(async move {
                    let mut buf = vec![0u8; 4 * MSG];
                    loop {
                        let n = s.read(&mut buf).await?;
                        if n == 0 {
                            return Ok(());
                        }
                        write_all(&mut &s, &mut std::io::Cursor::new(&buf[..n])).await?;
                    }
                });
            }
            Ok::<_, scope_runtime::BoxError>(())
        })
        .await
        .unwrap();
    });
}

fn serve_tokio(listener: std::net::TcpListener, conns: usize) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio_rt().block_on(async move {
        listener.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut handles = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            handles.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4 * MSG];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
}

fn serve_smol(listener: std::net::TcpListener, conns: usize) {
    use smol::io::{AsyncReadExt, AsyncWriteExt};
    let ex = smol::LocalExecutor::new();
    async_io::block_on(ex.run(async {
        let l = async_io::Async::new(listener).unwrap();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (mut s, _) = l.accept().await.unwrap();
            s.get_ref().set_nodelay(true).unwrap();
            tasks.push(ex.spawn(async move {
                let mut buf = vec![0u8; 4 * MSG];
                loop {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    s.write_all(&buf[..n]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await;
        }
    }));
}

/// The limit: an edge-triggered mio loop with no executor at all.
fn serve_mio(listener: std::net::TcpListener, conns: usize) {
    use mio::net::TcpStream;
    use mio::{Events, Interest, Poll, Token};
    struct Conn {
        s: TcpStream,
        /// Echo bytes not written yet (the socket was full).
        pending: Vec<u8>,
        open: bool,
    }
    const LISTENER: Token = Token(usize::MAX);
    listener.set_nonblocking(true).unwrap();
    let mut l = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new().unwrap();
    poll.registry()
        .register(&mut l, LISTENER, Interest::READABLE)
        .unwrap();
    let mut events = Events::with_capacity(1024);
    let mut slab: Vec<Conn> = Vec::new();
    let mut open = 0usize;
    let mut buf = vec![0u8; 4 * MSG];
    loop {
        poll.poll(&mut events, None).unwrap();
        for ev in events.iter() {
            if ev.token() == LISTENER {
                while slab.len() < conns {
                    match l.accept() {
                        Ok((mut s, _)) => {
                            s.set_nodelay(true).unwrap();
                            let t = Token(slab.len());
                            poll.registry()
                                .register(&mut s, t, Interest::READABLE | Interest::WRITABLE)
                                .unwrap();
                            slab.push(Conn {
                                s,
                                pending: Vec::new(),
                                open: true,
                            });
                            open += 1;
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            let c = &mut slab[ev.token().0];
            if !c.open {
                continue;
            }
            // Flush what is pending, then read and echo until the socket is drained.
            'conn: loop {
                while !c.pending.is_empty() {
                    match c.s.write(&c.pending) {
                        Ok(n) => {
                            c.pending.drain(..n);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break 'conn,
                        Err(e) => panic!("write: {e}"),
                    }
                }
                match c.s.read(&mut buf) {
                    Ok(0) => {
                        c.open = false;
                        open -= 1;
                        break;
                    }
                    Ok(n) => match c.s.write(&buf[..n]) {
                        Ok(w) if w == n => {}
                        Ok(w) => c.pending.extend_from_slice(&buf[w..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            c.pending.extend_from_slice(&buf[..n])
                        }
                        Err(e) => panic!("write: {e}"),
                    },
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read: {e}"),
                }
            }
        }
        if slab.len() == conns && open == 0 {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------
// The fixed client.
// ---------------------------------------------------------------------------------

/// Runs one trial: starts `server` on a fresh thread, connects `conns` clients, does
/// `warm` unmeasured rounds and `rounds` measured ones; returns the measured time.
fn trial(server: Server, conns: usize, warm: usize, rounds: usize) -> Duration {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || match server {
        Server::Ours => serve_ours(listener, conns),
        Server::Tokio => serve_tokio(listener, conns),
        Server::Smol => serve_smol(listener, conns),
        Server::Mio => serve_mio(listener, conns),
    });
    let mut clients: Vec<std::net::TcpStream> = (0..conns)
        .map(|_| {
            let c = std::net::TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            c
        })
        .collect();
    let request = [0xABu8; MSG];
    let mut response = [0u8; MSG];
    let mut round = |clients: &mut [std::net::TcpStream]| {
        for c in clients.iter_mut() {
            c.write_all(&request).unwrap();
        }
        for c in clients.iter_mut() {
            c.read_exact(&mut response).unwrap();
        }
    };
    for _ in 0..warm {
        round(&mut clients);
    }
    let t0 = Instant::now();
    for _ in 0..rounds {
        round(&mut clients);
    }
    let elapsed = t0.elapsed();
    assert_eq!(response, request);
    drop(clients);
    handle.join().unwrap();
    elapsed
}

/// The median of the runs (the upper one for an even count).
fn median(v: Vec<Duration>) -> Duration {
    middle_by(v, Duration::cmp)
}

fn main() {
    let quick = quick();
    let runs = env_usize("BENCH_RUNS").unwrap_or(if quick { 5 } else { 9 });
    // (connections, measured rounds): about the same number of messages per case.
    let cases: [(usize, usize); 2] = if quick {
        [(1, 5_000), (64, 150)]
    } else {
        [(1, 20_000), (64, 500)]
    };
    println!("B8 tcp_echo: 1 KiB request/response on loopback, {runs} runs per server (median)");
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        let server = Server::ALL
            .into_iter()
            .find(|s| s.key() == only)
            .expect("BENCH_ONLY: ours, tokio, smol or mio");
        for (conns, rounds) in cases {
            let warm = (rounds / 10).max(10);
            let t = median(
                (0..runs)
                    .map(|_| trial(server, conns, warm, rounds))
                    .collect(),
            );
            println!(
                "{conns} connection(s), {rounds} rounds: {} median {:.2} ms",
                server.name(),
                t.as_secs_f64() * 1e3
            );
        }
        return;
    }
    for (conns, rounds) in cases {
        let warm = (rounds / 10).max(10);
        let times = interleave(Server::ALL.len(), 0, runs, |i| {
            trial(Server::ALL[i], conns, warm, rounds)
        });
        let med: Vec<Duration> = times.into_iter().map(median).collect();
        let msgs = (conns * rounds) as f64;
        println!(
            "\n{conns} connection(s), {rounds} rounds ({} messages):",
            conns * rounds
        );
        for (i, s) in Server::ALL.iter().enumerate() {
            println!(
                "  {:<14} {:>9.2} ms  {:>8.1} µs/msg  {:>9.0} msg/s",
                s.name(),
                med[i].as_secs_f64() * 1e3,
                med[i].as_secs_f64() * 1e6 / msgs,
                msgs / med[i].as_secs_f64()
            );
        }
        let ours = med[0].as_secs_f64();
        println!(
            "  ratios (peer / ours, > 1: we are faster): tokio {:.2}x, smol {:.2}x; ours = {:.2} of raw mio",
            med[1].as_secs_f64() / ours,
            med[2].as_secs_f64() / ours,
            med[3].as_secs_f64() / ours
        );
    }
}

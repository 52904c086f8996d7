//! B11 `http`: the same hyper 1.x HTTP/1 hello-world server on scope_runtime (with the
//! `hyper` feature: our streams and `HyperTimer`, no adapter) and on tokio's
//! current-thread runtime (`hyper_util::rt::TokioIo` and `TokioTimer`), driven by one
//! fixed client.
//!
//! * The server runs on its own thread (one runtime per trial), accepts `conns`
//!   keep-alive connections, serves each with one hyper connection task until the
//!   client closes it, then exits. Each size runs twice: without a timer (hyper's
//!   hello-world) and with one (`HyperTimer` / `TokioTimer`: hyper then arms its
//!   30 s header-read timeout for every request, one sleep created and dropped per
//!   request).
//! * The client is the same for both: one thread, blocking std sockets with
//!   `TCP_NODELAY`. A *round* writes one `GET /` on every connection, then reads every
//!   response (head and the 13-byte body). So with 256 connections the server finds
//!   256 ready sockets per round.
//! * Servers are interleaved trial by trial (rotating which goes first); reported are
//!   the medians of the measured rounds: wall time, requests per second, the server
//!   thread's CPU time and the whole process's (server plus client), and the ratio
//!   ours / tokio in requests per second (> 1: we serve more).
//!
//! ```text
//! cargo bench --features hyper --bench http                # full: 9 trials per case
//! BENCH_QUICK=1 cargo bench --features hyper --bench http  # quick: 5 trials, fewer rounds
//! BENCH_RUNS=15 cargo bench --features hyper --bench http  # any number of trials
//! BENCH_ONLY=ours cargo bench --features hyper --bench http  # one server alone
//! ```

mod common;
#[path = "common/hello.rs"]
mod hello;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::thread::JoinHandleExt;
use std::time::{Duration, Instant};

use hyper::service::service_fn;

use common::{Stamp, env_usize, interleave, middle_by, ours_rt, quick, tokio_rt};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Ours,
    Tokio,
}

impl Server {
    const ALL: [Server; 2] = [Server::Ours, Server::Tokio];

    fn key(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Tokio => "tokio",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Ours => "scope_runtime",
            Server::Tokio => "tokio",
        }
    }
}

fn serve_ours(listener: std::net::TcpListener, conns: usize, timer: bool) {
    use scope_runtime::io::TcpListener;
    use scope_runtime::io::hyper::HyperTimer;
    ours_rt().block_on(async move {
        let l = TcpListener::from_std(listener).unwrap();
        scope_runtime::task_group(|tg| async move {
            for _ in 0..conns {
                let (s, _) = l.accept().await?;
                s.set_nodelay(true)?;
                tg.spawn(async move {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    if timer {
                        builder.timer(HyperTimer);
                    }
                    builder
                        .serve_connection(s, service_fn(hello::hello))
                        .await?;
                    Ok(())
                });
            }
            Ok::<_, scope_runtime::BoxError>(())
        })
        .await
        .unwrap();
    });
}

fn serve_tokio(listener: std::net::TcpListener, conns: usize, timer: bool) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    tokio_rt().block_on(async move {
        listener.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(listener).unwrap();
        let mut handles = Vec::new();
        for _ in 0..conns {
            let (s, _) = l.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            handles.push(tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                if timer {
                    builder.timer(TokioTimer::new());
                }
                builder
                    .serve_connection(TokioIo::new(s), service_fn(hello::hello))
                    .await
                    .unwrap();
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
    });
}

/// CPU time a thread has used so far (`pthread_getcpuclockid`).
fn thread_cpu(thread: libc::pthread_t) -> Duration {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: `thread` is a live thread (its `JoinHandle` is held by the caller, which
    // joins it only after the last call) and `clock` is a valid out-pointer.
    let rc = unsafe { libc::pthread_getcpuclockid(thread, &mut clock) };
    assert_eq!(rc, 0, "pthread_getcpuclockid failed");
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` and `clock` a clock id just obtained.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One measured trial.
#[derive(Clone, Copy, Debug)]
struct Trial {
    wall: Duration,
    /// The server thread's CPU time during the measured rounds.
    server_cpu: Duration,
    /// The whole process (server and client) during the measured rounds.
    process_cpu: Duration,
}

/// One client connection with its read buffer.
struct Client {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Reads one whole response (head, then a body of `hello::BODY.len()` bytes).
    fn read_response(&mut self) {
        loop {
            if hello::take_response(&mut self.buf) {
                return;
            }
            let mut chunk = [0u8; 1024];
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// Starts `server` on a fresh thread, connects `conns` clients, runs `warm` unmeasured
/// rounds and `rounds` measured ones.
fn trial(server: Server, conns: usize, timer: bool, warm: usize, rounds: usize) -> Trial {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || match server {
        Server::Ours => serve_ours(listener, conns, timer),
        Server::Tokio => serve_tokio(listener, conns, timer),
    });
    let mut clients: Vec<Client> = (0..conns)
        .map(|_| {
            let s = std::net::TcpStream::connect(addr).unwrap();
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            Client {
                s,
                buf: Vec::with_capacity(512),
            }
        })
        .collect();
    let round = |clients: &mut [Client]| {
        for c in clients.iter_mut() {
            c.s.write_all(hello::REQUEST).unwrap();
        }
        for c in clients.iter_mut() {
            c.read_response();
        }
    };
    for _ in 0..warm {
        round(&mut clients);
    }
    let thread = handle.as_pthread_t();
    let cpu0 = thread_cpu(thread);
    let stamp = Stamp::now();
    let t0 = Instant::now();
    for _ in 0..rounds {
        round(&mut clients);
    }
    let wall = t0.elapsed();
    let process_cpu = stamp.elapsed().cpu;
    let server_cpu = thread_cpu(thread).saturating_sub(cpu0);
    drop(clients);
    handle.join().unwrap();
    Trial {
        wall,
        server_cpu,
        process_cpu,
    }
}

fn median(v: Vec<Duration>) -> Duration {
    middle_by(v, Duration::cmp)
}

fn main() {
    let quick = quick();
    let runs = env_usize("BENCH_RUNS").unwrap_or(if quick { 5 } else { 9 });
    // (connections, measured rounds): about the same number of requests per case.
    let cases: [(usize, usize); 2] = if quick {
        [(50, 200), (256, 40)]
    } else {
        [(50, 800), (256, 160)]
    };
    println!(
        "B11 http: hyper HTTP/1 hello world, keep-alive, one client thread; {runs} trials per server (median)"
    );
    let only = std::env::var("BENCH_ONLY").ok();
    let servers: Vec<Server> = match &only {
        Some(k) => vec![
            Server::ALL
                .into_iter()
                .find(|s| s.key() == k)
                .expect("BENCH_ONLY: ours or tokio"),
        ],
        None => Server::ALL.to_vec(),
    };
    for (timer, (conns, rounds)) in [false, true]
        .into_iter()
        .flat_map(|t| cases.into_iter().map(move |c| (t, c)))
    {
        let warm = (rounds / 10).max(5);
        let trials = interleave(servers.len(), 0, runs, |i| {
            trial(servers[i], conns, timer, warm, rounds)
        });
        let requests = (conns * rounds) as f64;
        let label = if timer {
            "with hyper's timer (header-read timeout)"
        } else {
            "no timer"
        };
        println!(
            "\n{conns} connections, {rounds} rounds ({} requests), {label}:",
            conns * rounds
        );
        let mut walls = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let wall = median(trials[i].iter().map(|t| t.wall).collect());
            let server_cpu = median(trials[i].iter().map(|t| t.server_cpu).collect());
            let process_cpu = median(trials[i].iter().map(|t| t.process_cpu).collect());
            println!(
                "  {:<14} wall {:>9.2} ms  {:>9.0} req/s  server cpu {:>9.2} ms ({:.2} µs/req)  process cpu {:>9.2} ms",
                s.name(),
                wall.as_secs_f64() * 1e3,
                requests / wall.as_secs_f64(),
                server_cpu.as_secs_f64() * 1e3,
                server_cpu.as_secs_f64() * 1e6 / requests,
                process_cpu.as_secs_f64() * 1e3,
            );
            walls.push((wall, server_cpu));
        }
        if walls.len() == 2 {
            let (ours, ours_cpu) = walls[0];
            let (tokio, tokio_cpu) = walls[1];
            println!(
                "  ratio ours / tokio (requests per second, > 1: we serve more): {:.2}x; server cpu per request tokio / ours: {:.2}x",
                tokio.as_secs_f64() / ours.as_secs_f64(),
                tokio_cpu.as_secs_f64() / ours_cpu.as_secs_f64(),
            );
        }
    }
}

//! B8m / B11m `multi`: the B8 echo server and the B11 hyper hello-world server on two
//! cores — scope_runtime's `Cores::new(2)` (one single-threaded runtime per thread,
//! one `SO_REUSEPORT` listener per core from `CoreContext::bind_reuseport`) against
//! tokio's multi-thread runtime with 2 workers (one listener, work stealing) — driven
//! by one fixed client.
//!
//! * Each trial starts a fresh server: ours runs `Cores::new(2).run(..)`, where every
//!   core binds the shared port, accepts in a loop and serves each connection with one
//!   task of a task group; when the last of the `conns` connections has been closed by
//!   the client (on whichever core), that core calls `CoreContext::cancel_all`, every
//!   core's accept loop is cancelled, the groups absorb it and `run` returns `Ok`.
//!   Tokio's accept loop is a spawned task (so it runs on the workers, not on the
//!   `block_on` thread); it accepts `conns` connections, spawns one task each and
//!   waits for them. The client connects only after every listener is bound.
//! * The client is the same for both servers and the same as B8's / B11's: blocking std
//!   sockets with `TCP_NODELAY` on a thread of its own (`BENCH_CLIENTS=k`: `k`
//!   threads, the connections split among them). A round writes one request on
//!   every connection, then reads every response. B8m: 1 KiB echo, 1 and 64
//!   connections. B11m: `GET /` answered "Hello, World!" by hyper's HTTP/1 server
//!   (no timer), 50 and 256 keep-alive connections.
//! * **This machine has 2 cores and the load generator runs on them too**: the client
//!   thread competes with the two server threads, so neither server can use two whole
//!   cores and the wall times are bounded by the client as much as by the server.
//! * Two references run beside them, on one server thread each: ours with
//!   `Cores::new(1)` and tokio's current-thread runtime (B8's and B11's servers, but
//!   through the same code as the 2-thread variants). They answer whether the second
//!   server thread helps at all when the client shares the cores (`BENCH_REF=0`
//!   leaves them out).
//! * Servers are interleaved trial by trial (rotating which goes first). Reported are
//!   medians over the trials of the measured rounds' wall time, the whole process's CPU
//!   time (server and client), the server's share (process minus the client threads'
//!   own CPU time), and the ratio tokio / ours of the wall time (> 1: we are faster;
//!   for B11m this is also ours / tokio in requests per second).
//!
//! ```text
//! cargo bench --features hyper --bench multi                # full: 9 trials per case
//! BENCH_QUICK=1 cargo bench --features hyper --bench multi  # quick: 5 trials, 1/4 of the rounds
//! BENCH_RUNS=15 cargo bench --features hyper --bench multi  # any number of trials
//! BENCH_ONLY=ours cargo bench --features hyper --bench multi  # one server (ours, tokio,
//!                                                            # ours1, tokio1)
//! BENCH_CLIENTS=2 cargo bench --features hyper --bench multi  # two client threads
//! cargo bench --features hyper --bench multi -- B8m         # one row (B8m or B11m)
//! cargo test --features hyper --bench multi                 # smoke run: 1 short trial each
//! target/release/deps/multi-<hash> --bench B8m               # the binary itself (e.g. under
//!                                                            # strace): pass `--bench`
//! ```

#[allow(dead_code)]
mod common;
#[path = "common/hello.rs"]
mod hello;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use hyper::service::service_fn;

use common::{Stamp, env_usize, interleave, middle_by, quick, selected};

/// Server threads (cores / tokio workers).
const CORES: usize = 2;
/// B8m's request and response size.
const MSG: usize = 1024;

/// What the server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    /// B8: echo every byte until the client closes.
    Echo,
    /// B11: hyper's HTTP/1 server with the hello-world service.
    Http,
}

impl Work {
    fn id(self) -> &'static str {
        match self {
            Work::Echo => "B8m",
            Work::Http => "B11m",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Work::Echo => "tcp_echo_2cores",
            Work::Http => "http_2cores",
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Work::Echo => "msg",
            Work::Http => "req",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    /// `Cores::new(2)`.
    Ours,
    /// tokio's multi-thread runtime, 2 workers.
    Tokio,
    /// Reference: `Cores::new(1)` (one core, still through `bind_reuseport`).
    Ours1,
    /// Reference: tokio's current-thread runtime.
    Tokio1,
}

impl Server {
    const ALL: [Server; 4] = [Server::Ours, Server::Tokio, Server::Ours1, Server::Tokio1];

    fn key(self) -> &'static str {
        match self {
            Server::Ours => "ours",
            Server::Tokio => "tokio",
            Server::Ours1 => "ours1",
            Server::Tokio1 => "tokio1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Server::Ours => "ours 2 cores",
            Server::Tokio => "tokio mt 2 wk",
            Server::Ours1 => "ours 1 core",
            Server::Tokio1 => "tokio ct",
        }
    }

    /// Server threads that run tasks.
    fn threads(self) -> usize {
        match self {
            Server::Ours | Server::Tokio => CORES,
            Server::Ours1 | Server::Tokio1 => 1,
        }
    }
}

// ---------------------------------------------------------------------------------
// Servers: each serves exactly `conns` connections until the client closes them, then
// returns. Each sends its listening address on `ready` once per listener.
// ---------------------------------------------------------------------------------

/// Ours: `Cores::new(cores)`, a `SO_REUSEPORT` listener per core. Returns how many
/// connections each core accepted.
fn serve_ours(
    cores: usize,
    work: Work,
    conns: usize,
    ready: mpsc::Sender<SocketAddr>,
) -> Vec<usize> {
    use scope_runtime::io::write_all;
    use scope_runtime::{BoxError, Cores, task_group};
    let closed = Arc::new(AtomicUsize::new(0));
    let accepted: Arc<Vec<AtomicUsize>> =
        Arc::new((0..cores).map(|_| AtomicUsize::new(0)).collect());
    let counts = accepted.clone();
    Cores::new(cores)
        .run(move |core| {
            let (ready, closed, accepted) = (ready.clone(), closed.clone(), accepted.clone());
            async move {
                let l = core.bind_reuseport("127.0.0.1:0".parse()?)?;
                ready.send(l.local_addr()?)?;
                // `()`: the loop ends only by an error (`Cancelled` at the end).
                task_group::<_, _, ()>(|tg| async move {
                    loop {
                        // Cancelled by `cancel_all` once every connection has closed.
                        let (s, _) = l.accept().await?;
                        s.set_nodelay(true)?;
                        accepted[core.index()].fetch_add(1, Ordering::Relaxed);
                        let (core, closed) = (core.clone(), closed.clone());
                        tg.spawn(async move {
                            match work {
                                Work::Echo => {
                                    let mut buf = vec![0u8; 4 * MSG];
                                    loop {
                                        let n = s.read(&mut buf).await?;
                                        if n == 0 {
                                            break;
                                        }
                                        write_all(&mut &s, &mut std::io::Cursor::new(&buf[..n]))
                                            .await?;
                                    }
                                }
                                Work::Http => {
                                    hyper::server::conn::http1::Builder::new()
                                        .serve_connection(s, service_fn(hello::hello))
                                        .await?;
                                }
                            }
                            if closed.fetch_add(1, Ordering::AcqRel) + 1 == conns {
                                core.cancel_all();
                            }
                            Ok(())
                        });
                    }
                })
                .await?;
                Ok::<_, BoxError>(())
            }
        })
        .unwrap();
    counts.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Tokio: the multi-thread runtime with `workers` workers (`None`: the current-thread
/// runtime), one listener.
fn serve_tokio(workers: Option<usize>, work: Work, conns: usize, ready: mpsc::Sender<SocketAddr>) {
    use hyper_util::rt::TokioIo;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = match workers {
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()
            .expect("tokio multi-thread runtime"),
        None => common::tokio_rt(),
    };
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        ready.send(l.local_addr().unwrap()).unwrap();
        // The accept loop on a worker, not on this (`block_on`) thread (current-thread:
        // the same thread either way).
        tokio::spawn(async move {
            let mut handles = Vec::with_capacity(conns);
            for _ in 0..conns {
                let (mut s, _) = l.accept().await.unwrap();
                s.set_nodelay(true).unwrap();
                handles.push(tokio::spawn(async move {
                    match work {
                        Work::Echo => {
                            let mut buf = vec![0u8; 4 * MSG];
                            loop {
                                let n = s.read(&mut buf).await.unwrap();
                                if n == 0 {
                                    return;
                                }
                                s.write_all(&buf[..n]).await.unwrap();
                            }
                        }
                        Work::Http => hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(s), service_fn(hello::hello))
                            .await
                            .unwrap(),
                    }
                }));
            }
            for h in handles {
                h.await.unwrap();
            }
        })
        .await
        .unwrap();
    });
}

// ---------------------------------------------------------------------------------
// The fixed client.
// ---------------------------------------------------------------------------------

/// CPU time of the calling thread so far.
fn thread_cpu_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec`; the clock id is a constant.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime failed");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One client connection with its read buffer.
struct Client {
    s: std::net::TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = std::net::TcpStream::connect(addr).unwrap();
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Client {
            s,
            buf: Vec::with_capacity(4 * MSG),
        }
    }

    fn send(&mut self, work: Work) {
        let req: &[u8] = match work {
            Work::Echo => &[0xAB; MSG],
            Work::Http => hello::REQUEST,
        };
        self.s.write_all(req).unwrap();
    }

    /// Reads one whole response: `MSG` echoed bytes, or an HTTP head and the body.
    fn receive(&mut self, work: Work) {
        loop {
            match work {
                Work::Echo if self.buf.len() >= MSG => {
                    assert!(self.buf[..MSG].iter().all(|&b| b == 0xAB), "bad echo");
                    self.buf.drain(..MSG);
                    return;
                }
                Work::Http if hello::take_response(&mut self.buf) => return,
                Work::Http => {}
                Work::Echo => {}
            }
            let mut chunk = [0u8; 4096];
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "the server closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// One measured trial.
#[derive(Clone, Debug)]
struct Trial {
    wall: Duration,
    /// The whole process during the measured rounds.
    process_cpu: Duration,
    /// The client threads' own CPU time during the measured rounds.
    client_cpu: Duration,
    /// Connections accepted per core (ours only).
    split: Option<Vec<usize>>,
}

impl Trial {
    /// The process's CPU time minus the client's: the server threads (and the idle
    /// thread that waits for them).
    fn server_cpu(&self) -> Duration {
        self.process_cpu.saturating_sub(self.client_cpu)
    }
}

/// Starts `server` on a fresh thread, waits until it listens, connects `conns`
/// clients on `client_threads` threads, runs `warm` unmeasured rounds and `rounds`
/// measured ones, closes the connections and waits for the server to end.
fn trial(
    work: Work,
    server: Server,
    conns: usize,
    client_threads: usize,
    warm: usize,
    rounds: usize,
) -> Trial {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || match server {
        Server::Ours | Server::Ours1 => Some(serve_ours(server.threads(), work, conns, ready_tx)),
        Server::Tokio => {
            serve_tokio(Some(CORES), work, conns, ready_tx);
            None
        }
        Server::Tokio1 => {
            serve_tokio(None, work, conns, ready_tx);
            None
        }
    });
    let listeners = match server {
        Server::Ours | Server::Ours1 => server.threads(),
        Server::Tokio | Server::Tokio1 => 1,
    };
    let addrs: Vec<SocketAddr> = (0..listeners).map(|_| ready_rx.recv().unwrap()).collect();
    assert!(addrs.iter().all(|a| *a == addrs[0]), "one port: {addrs:?}");
    let addr = addrs[0];

    let k = client_threads.clamp(1, conns);
    // The client threads and this one: after the warm-up, and after the measured rounds.
    let barrier = Arc::new(Barrier::new(k + 1));
    let clients: Vec<_> = (0..k)
        .map(|t| {
            let share = conns / k + usize::from(t < conns % k);
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut cs: Vec<Client> = (0..share).map(|_| Client::connect(addr)).collect();
                let round = |cs: &mut [Client]| {
                    for c in cs.iter_mut() {
                        c.send(work);
                    }
                    for c in cs.iter_mut() {
                        c.receive(work);
                    }
                };
                for _ in 0..warm {
                    round(&mut cs);
                }
                barrier.wait();
                let cpu0 = thread_cpu_now();
                for _ in 0..rounds {
                    round(&mut cs);
                }
                let cpu = thread_cpu_now().saturating_sub(cpu0);
                barrier.wait();
                drop(cs);
                cpu
            })
        })
        .collect();
    barrier.wait();
    let stamp = Stamp::now();
    let t0 = Instant::now();
    barrier.wait();
    let wall = t0.elapsed();
    let process_cpu = stamp.elapsed().cpu;
    let client_cpu = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let split = handle.join().unwrap();
    Trial {
        wall,
        process_cpu,
        client_cpu,
        split,
    }
}

fn median(v: Vec<Duration>) -> Duration {
    middle_by(v, Duration::cmp)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` / `--all-targets` does not:
    // then one short trial per server and case, to show the bench still works (servers
    // start, serve, and shut down) without running for minutes.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let quick = quick();
    let runs = if smoke {
        1
    } else {
        env_usize("BENCH_RUNS").unwrap_or(if quick { 5 } else { 9 })
    };
    let client_threads = env_usize("BENCH_CLIENTS").unwrap_or(1).max(1);
    let only = std::env::var("BENCH_ONLY").ok();
    // `BENCH_REF=0`: without the one-thread references.
    let refs = std::env::var("BENCH_REF").map_or(true, |v| v != "0");
    let servers: Vec<Server> = match &only {
        Some(k) => vec![
            Server::ALL
                .into_iter()
                .find(|s| s.key() == k)
                .expect("BENCH_ONLY: ours, tokio, ours1 or tokio1"),
        ],
        None => Server::ALL
            .into_iter()
            .filter(|s| refs || s.threads() == CORES)
            .collect(),
    };
    // (work, connections, measured rounds): B8's and B11's cases.
    let cases: [(Work, usize, usize); 4] = if smoke {
        [
            (Work::Echo, 1, 20),
            (Work::Echo, 64, 5),
            (Work::Http, 50, 5),
            (Work::Http, 256, 2),
        ]
    } else if quick {
        [
            (Work::Echo, 1, 5_000),
            (Work::Echo, 64, 150),
            (Work::Http, 50, 200),
            (Work::Http, 256, 40),
        ]
    } else {
        [
            (Work::Echo, 1, 20_000),
            (Work::Echo, 64, 500),
            (Work::Http, 50, 800),
            (Work::Http, 256, 160),
        ]
    };
    println!(
        "B8m/B11m multi{}: {CORES} cores (scope_runtime Cores + SO_REUSEPORT) vs tokio multi-thread \
         ({CORES} workers){}; {client_threads} client thread(s) on the same machine; \
         {runs} trials per server (median)",
        if smoke {
            " (smoke run: not started by `cargo bench`, so 1 short trial)"
        } else {
            ""
        },
        if refs {
            ", references on one thread: ours Cores::new(1), tokio current-thread"
        } else {
            ""
        }
    );
    let mut rows = Vec::new();
    for (work, conns, rounds) in cases {
        if !selected(work.id(), work.name()) {
            continue;
        }
        let warm = (rounds / 10).max(5);
        let trials = interleave(servers.len(), 0, runs, |i| {
            trial(work, servers[i], conns, client_threads, warm, rounds)
        });
        let n = (conns * rounds) as f64;
        println!(
            "\n{} {}: {conns} connection(s), {rounds} rounds ({} {}s):",
            work.id(),
            work.name(),
            conns * rounds,
            work.unit()
        );
        let mut meds = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let t = &trials[i];
            let wall = median(t.iter().map(|t| t.wall).collect());
            let process = median(t.iter().map(|t| t.process_cpu).collect());
            let server = median(t.iter().map(|t| t.server_cpu()).collect());
            let mut sorted: Vec<Duration> = t.iter().map(|t| t.wall).collect();
            sorted.sort();
            println!(
                "  {:<14} wall {:>9.2} ms (min {:.2}, max {:.2})  {:>9.0} {}/s  process cpu {:>9.2} ms  server cpu {:>9.2} ms ({:.2} µs/{})",
                s.name(),
                ms(wall),
                ms(sorted[0]),
                ms(sorted[sorted.len() - 1]),
                n / wall.as_secs_f64(),
                work.unit(),
                ms(process),
                ms(server),
                server.as_secs_f64() * 1e6 / n,
                work.unit(),
            );
            let splits: Vec<String> = t
                .iter()
                .filter_map(|t| t.split.as_ref().map(|s| (s, t.wall)))
                .filter(|(s, _)| s.len() > 1)
                .map(|(s, wall)| {
                    let split = s.iter().map(|c| c.to_string()).collect::<Vec<_>>();
                    format!("{} ({:.0} ms)", split.join("/"), ms(wall))
                })
                .collect();
            if !splits.is_empty() {
                println!(
                    "    connections per core (core 0/core 1) and wall, by trial: {}",
                    splits.join(", ")
                );
            }
            meds.push((wall, process, server));
        }
        let med = |k: Server| servers.iter().position(|s| *s == k).map(|i| meds[i]);
        let r = |t: Duration, o: Duration| t.as_secs_f64() / o.as_secs_f64();
        if let (Some((ow, op, os)), Some((tw, tp, ts))) = (med(Server::Ours), med(Server::Tokio)) {
            println!(
                "  ratio tokio mt / ours 2 cores (> 1: we are faster): wall {:.2}x  process cpu {:.2}x  server cpu {:.2}x",
                r(tw, ow),
                r(tp, op),
                r(ts, os),
            );
            let one = |k: Server| med(k).map_or("-".to_string(), |m| format!("{:.2} ms", ms(m.0)));
            rows.push(format!(
                "| {} | {conns} | {:.2} ms | {:.2} ms | **{:.2}** | {:.2} / {:.2} ms | {:.2} | {:.2} / {:.2} µs | {:.2} | {} | {} |",
                work.id(),
                ms(ow),
                ms(tw),
                r(tw, ow),
                ms(op),
                ms(tp),
                r(tp, op),
                os.as_secs_f64() * 1e6 / n,
                ts.as_secs_f64() * 1e6 / n,
                r(ts, os),
                one(Server::Ours1),
                one(Server::Tokio1),
            ));
        }
        for (two, one, label) in [
            (Server::Ours, Server::Ours1, "ours"),
            (Server::Tokio, Server::Tokio1, "tokio"),
        ] {
            if let (Some(t), Some(o)) = (med(two), med(one)) {
                println!(
                    "  {label}: 2 threads vs 1 (wall 1 / wall 2, > 1: the second core helps): {:.2}x",
                    r(o.0, t.0)
                );
            }
        }
    }
    if !rows.is_empty() {
        println!(
            "\n| row | connections | ours 2 cores wall | tokio mt wall | **tokio / ours** (wall) | process CPU ours / tokio | tokio / ours | server CPU per msg/req ours / tokio | tokio / ours | ours 1 core wall | tokio ct wall |"
        );
        println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in rows {
            println!("{r}");
        }
    }
}

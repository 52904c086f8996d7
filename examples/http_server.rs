//! An HTTP server on hyper (cargo feature `hyper`): HTTP/1, or HTTP/2 without TLS
//! (`--h2`, "prior knowledge"), each connection a task in the server's task group.
//!
//! ```text
//! cargo run --features hyper --example http_server               # prints the port
//! cargo run --features hyper --example http_server -- 8080 --h2  # fixed port, HTTP/2
//! curl http://127.0.0.1:PORT/            # hello
//! curl http://127.0.0.1:PORT/slow/2000   # answers after 2 s
//! ```
//!
//! Ctrl-C stops the server gracefully:
//!
//! 1. the listener is closed: new connections are refused;
//! 2. every connection is asked to shut down gracefully (hyper's `graceful_shutdown`:
//!    an idle keep-alive connection closes now, one with a request in flight closes
//!    after its response);
//! 3. the server waits for them at most a grace period (`--grace SECS`, default 10);
//! 4. then the group's deadline cancels whatever still runs: a handler waiting in a
//!    `sleep` fails with `Cancelled`, hyper drops the connection, the group absorbs
//!    its own cancellation and `serve` returns `Ok`.
//!
//! Each connection is an error boundary: a client that goes away early, a malformed
//! request, an I/O error or even a panicking handler ends that connection only. Only
//! unexpected errors are logged (one line per connection); clients that leave early
//! are counted, not logged.
//!
//! The server is the function [`serve`], which takes a listener and a shutdown future,
//! so `tests/http_server.rs` drives it with a real client and a shutdown of its own.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::{Either, select};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use scope_runtime::io::hyper::HyperTimer;
use scope_runtime::io::{TcpListener, TcpStream, signal};
use scope_runtime::sync::Event;
use scope_runtime::{BoxError, GroupExecutor, TaskGroup, find_cancelled, now, sleep, task_group};

/// Which protocol the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (keep-alive).
    Http1,
    /// HTTP/2 over plain TCP ("prior knowledge", `curl --http2-prior-knowledge`).
    Http2,
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// HTTP/1 or HTTP/2.
    pub protocol: Protocol,
    /// After shutdown was asked for: how long in-flight requests may take before the
    /// connections are cancelled.
    pub grace: Duration,
    /// hyper's header-read timeout (HTTP/1): a client that sends no complete request
    /// head in this time is disconnected.
    pub header_timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            protocol: Protocol::Http1,
            grace: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// What the server did; shared with the caller, which may read it while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: Cell<u64>,
    /// Connections that ended (any way).
    pub closed: Cell<u64>,
    /// Requests that reached the handler.
    pub requests: Cell<u64>,
    /// Requests in the handler right now.
    pub in_flight: Cell<u64>,
    /// Connections whose client left early (closed or reset mid-request, timed out):
    /// counted, not logged.
    pub client_gone: Cell<u64>,
    /// Connections that sent something that is not HTTP (hyper answered 400).
    pub bad_requests: Cell<u64>,
    /// Connections cancelled because the grace period ran out.
    pub cut_by_grace: Cell<u64>,
    /// Handlers that panicked (their connection ended; the server went on).
    pub panics: Cell<u64>,
    /// Any other connection error (each logged once on stderr).
    pub errors: Cell<u64>,
}

fn bump(c: &Cell<u64>) {
    c.set(c.get() + 1);
}

/// Serves `listener` until `shutdown` completes, then shuts down gracefully (see the
/// file's doc). Returns when every connection has ended; `Ok` unless accepting failed
/// in a way that retrying cannot fix.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    config: Config,
    stats: Rc<Stats>,
) -> Result<(), BoxError> {
    let stopping = Rc::new(Event::new());
    task_group(|tg| async move {
        {
            let accept = pin!(accept_loop(&listener, &tg, &config, &stats, &stopping));
            let shutdown = pin!(shutdown);
            if let Either::Left((Err(e), _)) = select(accept, shutdown).await {
                return Err(e);
            }
        }
        drop(listener); // from now on connection attempts are refused
        stopping.set(); // each connection: graceful_shutdown()
        // The group now waits for its connections; this deadline cancels the ones
        // still running when the grace period is over.
        tg.cancel_scope().set_deadline(Some(now() + config.grace));
        Ok(())
    })
    .await?;
    Ok(())
}

/// Accepts connections, each served by a task of the group, until cancelled (or until
/// `serve` stops polling it). Errors of one accept (a connection reset while in the
/// backlog, the process out of file descriptors) are retried after a short pause.
async fn accept_loop(
    listener: &TcpListener,
    tg: &TaskGroup,
    config: &Config,
    stats: &Rc<Stats>,
    stopping: &Rc<Event>,
) -> Result<(), BoxError> {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                bump(&stats.accepted);
                let conn = connection(
                    stream,
                    peer,
                    config.clone(),
                    stats.clone(),
                    stopping.clone(),
                    GroupExecutor::new(tg),
                );
                tg.spawn(conn);
            }
            Err(e) if find_cancelled(&e).is_some() => return Err(e.into()),
            Err(e) => {
                eprintln!("accept failed (retrying): {e}");
                sleep(Duration::from_millis(50)).await?;
            }
        }
    }
}

/// One connection, behind its error boundary: whatever happens here ends this
/// connection only. Only a cancellation is passed on (the group absorbs its own).
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: Config,
    stats: Rc<Stats>,
    stopping: Rc<Event>,
    exec: GroupExecutor,
) -> Result<(), BoxError> {
    let _ = stream.set_nodelay(true);
    let st = stats.clone();
    let service = service_fn(move |req| handle(req, st.clone()));
    let served = AssertUnwindSafe(async {
        match config.protocol {
            Protocol::Http1 => {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(HyperTimer)
                    .header_read_timeout(config.header_timeout);
                let conn = builder.serve_connection(stream, service);
                until_stopping(conn, &stopping, |c| c.graceful_shutdown()).await
            }
            Protocol::Http2 => {
                let mut builder = hyper::server::conn::http2::Builder::new(exec);
                builder.timer(HyperTimer);
                let conn = builder.serve_connection(stream, service);
                until_stopping(conn, &stopping, |c| c.graceful_shutdown()).await
            }
        }
    })
    .catch_unwind()
    .await;
    bump(&stats.closed);
    let err = match served {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_panic) => {
            // The panic message was printed by the panic hook.
            bump(&stats.panics);
            return Ok(());
        }
    };
    if find_cancelled(&err).is_some() {
        if stopping.is_set() {
            bump(&stats.cut_by_grace);
        }
        return Err(err.into());
    }
    if client_went_away(&err) {
        bump(&stats.client_gone);
    } else if err.is_parse() {
        bump(&stats.bad_requests);
    } else {
        bump(&stats.errors);
        eprintln!("{peer}: connection error: {err}");
    }
    Ok(())
}

/// Drives `conn`; when the server starts stopping, asks it to shut down gracefully
/// and drives it to the end.
async fn until_stopping<C>(
    conn: C,
    stopping: &Event,
    graceful: impl FnOnce(Pin<&mut C>),
) -> Result<(), hyper::Error>
where
    C: Future<Output = Result<(), hyper::Error>>,
{
    let mut conn = pin!(conn);
    let stop = pin!(stopping.wait());
    match select(conn.as_mut(), stop).await {
        Either::Left((done, _)) => return done,
        // Stopping: finish the request in flight, then close.
        Either::Right((Ok(()), _)) => graceful(conn.as_mut()),
        // Cancelled: the connection's next socket operation reports it.
        Either::Right((Err(_cancelled), _)) => {}
    }
    conn.await
}

/// The client closed, reset or stalled the connection: its business, not an error of
/// the server.
fn client_went_away(err: &hyper::Error) -> bool {
    if err.is_incomplete_message() || err.is_timeout() || err.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected
            );
        }
        if let Some(h2) = e.downcast_ref::<hyper::Error>() {
            if h2.is_incomplete_message() {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// Counts a request as in flight while it lives (also when it is dropped).
struct InFlight(Rc<Stats>);

impl InFlight {
    fn new(stats: Rc<Stats>) -> InFlight {
        bump(&stats.requests);
        stats.in_flight.set(stats.in_flight.get() + 1);
        InFlight(stats)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get() - 1);
    }
}

/// The routes: `/` says hello, `/slow/MS` answers after MS milliseconds, `/panic`
/// panics (to show the error boundary), anything else is 404.
async fn handle(
    req: Request<Incoming>,
    stats: Rc<Stats>,
) -> Result<Response<Full<Bytes>>, BoxError> {
    let _in_flight = InFlight::new(stats);
    let path = req.uri().path();
    let (status, body) = if path == "/" {
        (StatusCode::OK, Bytes::from_static(b"hello, world\n"))
    } else if let Some(ms) = path
        .strip_prefix("/slow/")
        .and_then(|m| m.parse::<u64>().ok())
    {
        // A checkpoint: when the grace period is over this fails with `Cancelled`.
        sleep(Duration::from_millis(ms)).await?;
        (
            StatusCode::OK,
            Bytes::from(format!("slow done after {ms} ms\n")),
        )
    } else if path == "/panic" {
        panic!("the /panic handler panics on purpose");
    } else {
        (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"))
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    Ok(resp)
}

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::default();
    if args.iter().any(|a| a == "--h2") {
        config.protocol = Protocol::Http2;
    }
    if let Some(i) = args.iter().position(|a| a == "--grace") {
        let secs: f64 = args
            .get(i + 1)
            .ok_or("--grace needs a number of seconds")?
            .parse()?;
        config.grace = Duration::try_from_secs_f64(secs)?;
    }
    let port = args.iter().find_map(|a| a.parse::<u16>().ok()).unwrap_or(0);

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!(
        "listening on http://{addr}/ ({:?}, grace {:?}); Ctrl-C to stop",
        config.protocol, config.grace
    );

    // Installed now, before any request can make us wait: a Ctrl-C is never missed.
    let ctrl_c = signal::ctrl_c();
    let grace = config.grace;
    let shutdown = async move {
        match ctrl_c.await {
            Ok(()) => println!("Ctrl-C: no new connections; waiting up to {grace:?} for requests"),
            Err(e) if find_cancelled(&e).is_some() => {}
            Err(e) => {
                eprintln!("cannot wait for Ctrl-C ({e}); serving until killed");
                std::future::pending::<()>().await
            }
        }
    };
    let stats = Rc::new(Stats::default());
    serve(listener, shutdown, config, stats.clone()).await?;
    println!(
        "stopped: {} connections, {} requests, {} clients left early, {} cut by the grace period, {} errors",
        stats.accepted.get(),
        stats.requests.get(),
        stats.client_gone.get(),
        stats.cut_by_grace.get(),
        stats.errors.get()
    );
    Ok(())
}

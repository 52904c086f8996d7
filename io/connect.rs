//! [`open_tcp_stream`] and [`TcpConnect`]: connecting to a host with Happy Eyeballs
//! (RFC 8305), and [`ConnectError`], the report of an all-failed connect.
//!
//! The attempts are not tasks: one future owns them and polls them in turn, so the
//! loser attempts are dropped (their sockets closed) the moment a winner returns, the
//! whole connect fails, or the caller is cancelled. That needs no task group, which
//! `io/` may not use.

use std::error::Error;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::addr::lookup_host;
use super::tcp::TcpStream;
use crate::CancelError;

/// RFC 8305's recommended "Connection Attempt Delay": how long an attempt runs alone
/// before the next one starts beside it.
pub const DEFAULT_ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to `host` (a name or a numeric address) on `port` with Happy Eyeballs:
/// the same as `TcpConnect::new(host, port).connect()`, see [`TcpConnect`].
///
/// A checkpoint: a cancelled caller gets `Cancelled` (as an `io::Error`), and no
/// connection attempt is left behind.
///
/// # Panics
///
/// Outside a runtime.
///
/// ```
/// use scope_runtime::io::{TcpListener, open_tcp_stream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let l = TcpListener::bind("127.0.0.1:0").await?;
///     let port = l.local_addr()?.port();
///     let stream = open_tcp_stream("127.0.0.1", port).await?;
///     let (_server_side, peer) = l.accept().await?;
///     assert_eq!(peer, stream.local_addr()?);
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
pub async fn open_tcp_stream(host: &str, port: u16) -> io::Result<TcpStream> {
    TcpConnect::new(host, port).connect().await
}

/// A Happy Eyeballs connect (RFC 8305), configured before it runs.
///
/// [`connect`](Self::connect) resolves the host (on the blocking pool, through
/// [`lookup_host`]), orders the addresses IPv6 first when there are any, alternating
/// the families after that (each family keeps the resolver's order), and then:
///
/// * starts an attempt on the first address;
/// * starts the next one when the [`delay`](Self::delay) (250 ms unless set) has passed
///   since the last start, or at once when an attempt fails, so slow addresses cost at
///   most one delay each and refusing ones nothing;
/// * returns the first connection made; every other attempt is dropped at that moment,
///   closing its socket;
/// * when every address failed, returns one error carrying a [`ConnectError`] that
///   lists each address with its own error.
///
/// The whole connect is a checkpoint: if the calling code is cancelled before or
/// while it runs, it returns `Cancelled` (as an `io::Error`, recognised by
/// [`CancelError`]) and every attempt it started has been closed.
///
/// ```
/// use scope_runtime::io::{ConnectError, TcpConnect, TcpListener};
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let good = TcpListener::bind("127.0.0.1:0").await?;
///     // A port with no listener: refused at once, so the next address starts now.
///     let refused = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
///     let stream = TcpConnect::addrs([refused, good.local_addr()?])
///         .delay(Duration::from_millis(100))
///         .connect()
///         .await?;
///     assert_eq!(stream.peer_addr()?, good.local_addr()?);
///
///     // Every address refuses: the error lists them all.
///     let err = TcpConnect::addrs([refused]).connect().await.unwrap_err();
///     let report = ConnectError::from_io(&err).unwrap();
///     assert_eq!(report.attempts()[0].0, refused);
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[derive(Debug, Clone)]
#[must_use = "a TcpConnect does nothing until `connect` is awaited"]
pub struct TcpConnect {
    target: Target,
    delay: Duration,
}

#[derive(Debug, Clone)]
enum Target {
    Host(String, u16),
    Addrs(Vec<SocketAddr>),
}

impl TcpConnect {
    /// Connects to `host` (a name, or a numeric IPv4 / IPv6 address) on `port`.
    ///
    /// ```
    /// let c = scope_runtime::io::TcpConnect::new("localhost", 80);
    /// # drop(c);
    /// ```
    pub fn new(host: impl Into<String>, port: u16) -> TcpConnect {
        TcpConnect {
            target: Target::Host(host.into(), port),
            delay: DEFAULT_ATTEMPT_DELAY,
        }
    }

    /// Connects to the first of these addresses that answers, tried in the order
    /// given (no DNS, no reordering). An empty list fails with `InvalidInput`.
    ///
    /// ```
    /// let c = scope_runtime::io::TcpConnect::addrs(["127.0.0.1:80".parse().unwrap()]);
    /// # drop(c);
    /// ```
    pub fn addrs(addrs: impl IntoIterator<Item = SocketAddr>) -> TcpConnect {
        TcpConnect {
            target: Target::Addrs(addrs.into_iter().collect()),
            delay: DEFAULT_ATTEMPT_DELAY,
        }
    }

    /// How long an attempt runs before the next one starts beside it (the "Connection
    /// Attempt Delay"; 250 ms unless set). RFC 8305 recommends no less than 10 ms;
    /// `Duration::ZERO` starts every attempt at once, `Duration::MAX` one at a time.
    ///
    /// ```
    /// use std::time::Duration;
    /// let c = scope_runtime::io::TcpConnect::new("localhost", 80)
    ///     .delay(Duration::from_millis(100));
    /// # drop(c);
    /// ```
    pub fn delay(mut self, delay: Duration) -> TcpConnect {
        self.delay = delay;
        self
    }

    /// Runs the connect (see the type's documentation).
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// ```
    /// use scope_runtime::io::{TcpConnect, TcpListener};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await?;
    ///     let port = l.local_addr()?.port();
    ///     let s = TcpConnect::new("127.0.0.1", port).connect().await?;
    ///     assert_eq!(s.peer_addr()?.port(), port);
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn connect(self) -> io::Result<TcpStream> {
        self.connect_with(TcpStream::connect_one).await
    }

    /// Runs the connect with your own attempt: `attempt(addr)` is called for each
    /// address when its turn comes, and its future is raced, started, dropped and
    /// reported exactly as the plain [`connect`](Self::connect) does with its own. Use
    /// it to set socket options first (with [`TcpSocket`](super::TcpSocket)), or to
    /// finish a handshake above TCP inside the race.
    ///
    /// An attempt that returns a `Cancelled` error ends the whole connect with it (the
    /// caller is being cancelled); any other error counts as that address failing.
    ///
    /// ```
    /// use scope_runtime::io::{TcpConnect, TcpListener, TcpSocket};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await?;
    ///     let s = TcpConnect::addrs([l.local_addr()?])
    ///         .connect_with(|addr| async move {
    ///             let socket = TcpSocket::new_for(&addr)?;
    ///             socket.set_nodelay(true)?;
    ///             socket.connect(addr).await
    ///         })
    ///         .await?;
    ///     assert!(s.nodelay()?);
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn connect_with<F, Fut, T>(self, attempt: F) -> io::Result<T>
    where
        F: FnMut(SocketAddr) -> Fut,
        Fut: Future<Output = io::Result<T>>,
    {
        crate::check_cancelled()?;
        let addrs = match self.target {
            Target::Host(host, port) => interleave(lookup_host((host.as_str(), port)).await?),
            Target::Addrs(addrs) => addrs,
        };
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TcpConnect: no address to connect to",
            ));
        }
        race(addrs, self.delay, attempt).await
    }
}

/// IPv6 first (if any), then the families alternate; each keeps its order.
/// Duplicates are dropped.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let mut unique: Vec<SocketAddr> = Vec::with_capacity(addrs.len());
    for a in addrs {
        if !unique.contains(&a) {
            unique.push(a);
        }
    }
    let (v6, v4): (Vec<_>, Vec<_>) = unique.into_iter().partition(SocketAddr::is_ipv6);
    let mut out = Vec::with_capacity(v6.len() + v4.len());
    let (mut a, mut b) = (v6.into_iter(), v4.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// The staggered race over `addrs` (already in order, not empty).
async fn race<F, Fut, T>(addrs: Vec<SocketAddr>, delay: Duration, mut attempt: F) -> io::Result<T>
where
    F: FnMut(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>>,
{
    // Attempt `i` of `running` is for `addrs[i]`; `None` once it failed.
    let mut running: Vec<Option<Pin<Box<Fut>>>> = Vec::with_capacity(addrs.len());
    let mut live = 0usize;
    let mut failures: Vec<(usize, io::Error)> = Vec::new();
    // The delay since the latest start; `None` before the first start.
    let mut timer: Option<crate::Sleep> = None;
    // Set when the delay has passed or an attempt failed: start the next one now.
    let mut start_next = true;
    poll_fn(move |cx| {
        loop {
            if running.len() < addrs.len() && (start_next || live == 0) {
                let fut = attempt(addrs[running.len()]);
                running.push(Some(Box::pin(fut)));
                live += 1;
                start_next = false;
                timer = (running.len() < addrs.len()).then(|| crate::sleep(delay));
            }
            for (i, slot) in running.iter_mut().enumerate() {
                let Some(fut) = slot else { continue };
                match fut.as_mut().poll(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(won)) => return Poll::Ready(Ok(won)),
                    Poll::Ready(Err(e)) if e.as_cancelled().is_some() => {
                        return Poll::Ready(Err(e));
                    }
                    Poll::Ready(Err(e)) => {
                        *slot = None;
                        live -= 1;
                        failures.push((i, e));
                        start_next = true;
                    }
                }
            }
            if live == 0 && running.len() == addrs.len() {
                let mut failures = std::mem::take(&mut failures);
                failures.sort_by_key(|(i, _)| *i);
                let attempts = failures.into_iter().map(|(i, e)| (addrs[i], e)).collect();
                return Poll::Ready(Err(ConnectError { attempts }.into_io()));
            }
            if start_next && running.len() < addrs.len() {
                continue;
            }
            if let Some(t) = timer.as_mut() {
                match Pin::new(t).poll(cx) {
                    Poll::Pending => {}
                    Poll::Ready(Ok(())) => {
                        timer = None;
                        start_next = true;
                        continue;
                    }
                    Poll::Ready(Err(c)) => return Poll::Ready(Err(c.into())),
                }
            }
            return Poll::Pending;
        }
    })
    .await
}

/// Every address of a connect failed: each one with its own error, in the order they
/// were tried.
///
/// [`TcpConnect::connect`] and [`open_tcp_stream`] return it inside an `io::Error`
/// (get it back with [`from_io`](Self::from_io)); that error's kind is the attempts'
/// kind when they all agree (`ConnectionRefused`, say), `Other` otherwise, and its
/// message names every address.
///
/// ```
/// use scope_runtime::io::{ConnectError, TcpConnect, TcpListener};
/// use std::io::ErrorKind;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let a = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
///     let b = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
///     let err = TcpConnect::addrs([a, b]).connect().await.unwrap_err();
///     assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
///     let report = ConnectError::from_io(&err).expect("every address failed");
///     let tried: Vec<_> = report.attempts().iter().map(|(addr, _)| *addr).collect();
///     assert_eq!(tried, [a, b]);
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[derive(Debug)]
pub struct ConnectError {
    attempts: Vec<(SocketAddr, io::Error)>,
}

impl ConnectError {
    /// Each address tried, with the error it failed with.
    pub fn attempts(&self) -> &[(SocketAddr, io::Error)] {
        &self.attempts
    }

    /// The attempts, by value.
    pub fn into_attempts(self) -> Vec<(SocketAddr, io::Error)> {
        self.attempts
    }

    /// The `ConnectError` inside an `io::Error` returned by a connect, if it is one.
    pub fn from_io(e: &io::Error) -> Option<&ConnectError> {
        e.get_ref()?.downcast_ref::<ConnectError>()
    }

    fn into_io(self) -> io::Error {
        let first = self.attempts.first().map(|(_, e)| e.kind());
        let kind = match first {
            Some(k) if self.attempts.iter().all(|(_, e)| e.kind() == k) => k,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "could not connect to any of {} address{}",
            self.attempts.len(),
            if self.attempts.len() == 1 { "" } else { "es" }
        )?;
        for (i, (addr, e)) in self.attempts.iter().enumerate() {
            write!(f, "{} {addr}: {e}", if i == 0 { ":" } else { ";" })?;
        }
        Ok(())
    }
}

impl Error for ConnectError {
    /// The first address's error.
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.attempts.first().map(|(_, e)| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::interleave;
    use std::net::SocketAddr;

    #[test]
    fn families_alternate_ipv6_first() {
        let a = |s: &str| -> SocketAddr { s.parse().unwrap() };
        let input = vec![
            a("10.0.0.1:80"),
            a("10.0.0.2:80"),
            a("10.0.0.3:80"),
            a("[::1]:80"),
            a("10.0.0.1:80"),
            a("[::2]:80"),
        ];
        let want = vec![
            a("[::1]:80"),
            a("10.0.0.1:80"),
            a("[::2]:80"),
            a("10.0.0.2:80"),
            a("10.0.0.3:80"),
        ];
        assert_eq!(interleave(input), want);
        assert_eq!(interleave(vec![a("1.2.3.4:1")]), vec![a("1.2.3.4:1")]);
    }
}

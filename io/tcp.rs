//! TCP: [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use mio::Interest;

use super::addr::{ToSocketAddrs, lookup_host};
use super::source::IoSource;
use super::split::sealed::Stream as _;
use super::split::{self, ReadHalf, WriteHalf};
use super::sys;
use crate::CancelError;
use crate::runtime::reactor::Direction;

/// A TCP socket listening for connections, registered with the runtime's reactor.
///
/// [`accept`](Self::accept) is a checkpoint: a cancelled caller gets `Cancelled` (as an
/// `io::Error`) and no connection is taken from the backlog. Dropping the listener
/// closes it.
///
/// ```
/// use scope_runtime::io::{TcpListener, TcpStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let client = TcpStream::connect(addr).await.unwrap();
///     let (server_side, peer) = listener.accept().await.unwrap();
///     assert_eq!(peer, client.local_addr().unwrap());
///     assert_eq!(server_side.peer_addr().unwrap(), peer);
/// });
/// ```
pub struct TcpListener {
    io: IoSource<mio::net::TcpListener>,
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl TcpListener {
    /// Binds to `addr` (resolved through [`lookup_host`]; each address is tried in turn
    /// and the last error is returned if none works). `SO_REUSEADDR` is set, so a port
    /// in `TIME_WAIT` can be reused; a port with a live listener fails with
    /// `AddrInUse`.
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    /// use std::io::ErrorKind;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let taken = a.local_addr().unwrap();
    ///     let err = TcpListener::bind(taken).await.unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::AddrInUse);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        let addrs = lookup_host(addr).await?;
        let mut last = None;
        for a in addrs {
            match mio::net::TcpListener::bind(a) {
                Ok(l) => return TcpListener::from_mio(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("lookup_host returns at least one address"))
    }

    /// Like [`bind`](Self::bind) with a chosen `listen(2)` backlog: how many
    /// connections the kernel completes before [`accept`](Self::accept) takes them.
    /// When the queue is full (Linux) new connection attempts are not answered
    /// until there is room — useful to simulate a server that does not respond.
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind_with_backlog("127.0.0.1:0", 1).await.unwrap();
    ///     assert!(l.local_addr().unwrap().port() != 0);
    /// });
    /// ```
    pub async fn bind_with_backlog(
        addr: impl ToSocketAddrs,
        backlog: u32,
    ) -> io::Result<TcpListener> {
        let l = TcpListener::bind(addr).await?;
        sys::set_backlog(l.io.get_ref(), backlog)?;
        Ok(l)
    }

    /// Wraps a listener created with the standard library (it is switched to
    /// non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let addr = std_l.local_addr().unwrap();
    ///     let l = TcpListener::from_std(std_l).unwrap();
    ///     assert_eq!(l.local_addr().unwrap(), addr);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        TcpListener::from_mio(mio::net::TcpListener::from_std(listener))
    }

    fn from_mio(l: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: IoSource::new(l, Interest::READABLE)?,
        })
    }

    /// Waits for a connection and returns it with the peer's address. A checkpoint:
    /// cancelled, it returns `Cancelled` and leaves the backlog untouched.
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    /// use scope_runtime::{CancelError, move_on_after};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     // Nobody connects: the deadline cancels the accept.
    ///     let r = move_on_after(Duration::from_millis(10), l.accept()).await;
    ///     assert!(r.unwrap().is_none());
    /// });
    /// ```
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (s, addr) = self.io.io(Direction::Read, |l| l.accept()).await?;
        Ok((TcpStream::from_mio(s)?, addr))
    }

    /// The connections, as a [`Stream`]: each item is what [`accept`](Self::accept)
    /// returns, without the peer's address (ask the stream's
    /// [`peer_addr`](TcpStream::peer_addr)). See [`TcpIncoming`].
    ///
    /// ```
    /// use futures::StreamExt;
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await?;
    ///     let client = TcpStream::connect(l.local_addr()?).await?;
    ///     let mut incoming = l.incoming();
    ///     let conn = incoming.next().await.expect("never ends")?;
    ///     assert_eq!(conn.peer_addr()?, client.local_addr()?);
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub fn incoming(&self) -> TcpIncoming<'_> {
        TcpIncoming { listener: self }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let (s, _) = ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(TcpStream::from_mio(s))
    }

    /// The local address (with the port the OS chose for port 0).
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     assert!(l.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// Deregisters the listener and returns it as a standard-library listener (still in
    /// non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::TcpListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let addr = l.local_addr().unwrap();
    ///     let std_l = l.into_std();
    ///     assert_eq!(std_l.local_addr().unwrap(), addr);
    /// });
    /// ```
    pub fn into_std(self) -> std::net::TcpListener {
        self.io.into_inner().0.into()
    }
}

/// The connections of a [`TcpListener`], as an endless [`Stream`] of
/// `io::Result<TcpStream>`: made by [`TcpListener::incoming`].
///
/// Each poll is an [`accept`](TcpListener::accept), with its errors and its
/// cancellation:
///
/// * `Some(Ok(stream))` for each connection;
/// * `Some(Err(e))` when an accept fails (for instance `EMFILE`, out of file
///   descriptors): the stream goes on, and the next poll tries again at once — a loop
///   that keeps going after such an error should wait a little first (a
///   [`sleep`](crate::sleep)), or it spins while the condition lasts. The stream never
///   yields `None`.
/// * `Some(Err(e))` where `e` is the `Cancelled` (as an `io::Error`, recognised by
///   [`CancelError`]) when the code polling it is cancelled, before or while it waits
///   (the cancellation wakes the waiting poll, also inside `futures` combinators): no
///   connection is taken from the backlog. Cancellation stays in force until control
///   leaves the cancelled scope, so every poll there fails the same way; a loop that
///   stops at errors (`while let Some(c) = incoming.next().await { let c = c?; .. }`)
///   leaves at the first one.
///
/// ```
/// use futures::StreamExt;
/// use scope_runtime::io::TcpListener;
/// use scope_runtime::move_on_after;
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let l = TcpListener::bind("127.0.0.1:0").await?;
///     // Nobody connects: the deadline cancels the wait, the loop stops at the error,
///     // the scope absorbs it.
///     let r = move_on_after(Duration::from_millis(10), async {
///         let mut incoming = l.incoming();
///         while let Some(conn) = incoming.next().await {
///             let _conn = conn?;
///         }
///         Ok::<_, std::io::Error>(())
///     })
///     .await;
///     assert!(r?.is_none());
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct TcpIncoming<'a> {
    listener: &'a TcpListener,
}

impl fmt::Debug for TcpIncoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TcpIncoming").field(self.listener).finish()
    }
}

impl Stream for TcpIncoming<'_> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Never terminated: a listener's connections do not end.
impl FusedStream for TcpIncoming<'_> {
    fn is_terminated(&self) -> bool {
        false
    }
}

/// A TCP connection, registered with the runtime's reactor.
///
/// # Cancellation
///
/// Every operation that can block is a checkpoint: if the calling code
/// is cancelled, [`read`](Self::read) and [`write`](Self::write) return `Cancelled` (as
/// an `io::Error`, recognised by [`CancelError`]) **without** reading or writing
/// anything. A cancellation that arrives while the call waits wakes it, and it returns
/// `Cancelled` the same way. So a cancelled read followed by a new read loses no byte,
/// and a write returns `Ok(n)` for the `n` bytes that went out, never more or less.
///
/// `read`, `write` and the `futures-io` traits work on `&TcpStream` too: one task may
/// read and write at once (e.g. in two futures joined together), and several tasks may
/// wait on one stream. To move the halves into different tasks, use
/// [`into_split`](Self::into_split).
///
/// ```
/// use scope_runtime::io::{read_exact, write_all, TcpListener, TcpStream};
/// use std::io::Cursor;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
///     let (mut s, _) = l.accept().await.unwrap();
///     write_all(&mut c, &mut Cursor::new(b"ping")).await.unwrap();
///     let mut buf = Cursor::new([0u8; 4]);
///     read_exact(&mut s, &mut buf).await.unwrap();
///     assert_eq!(buf.get_ref(), b"ping");
/// });
/// ```
pub struct TcpStream {
    io: IoSource<mio::net::TcpStream>,
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl TcpStream {
    /// Connects to `addr`. A host name (`"example.com:80"`) is resolved on the blocking
    /// pool first; the addresses are tried one after the other and the last error is
    /// returned if none accepts. (To race them, use [`open_tcp_stream`](super::open_tcp_stream).)
    ///
    /// A checkpoint: a cancellation before or during the connect returns `Cancelled`
    /// and closes the half-open socket.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    /// use std::io::ErrorKind;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     // Find a free port, then close it: nobody listens there.
    ///     let addr = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    ///     let err = TcpStream::connect(addr).await.unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = lookup_host(addr).await?;
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_one(a).await {
                Ok(s) => return Ok(s),
                Err(e) if e.as_cancelled().is_some() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("lookup_host returns at least one address"))
    }

    pub(crate) async fn connect_one(addr: SocketAddr) -> io::Result<TcpStream> {
        crate::check_cancelled()?;
        TcpStream::finish_connect(mio::net::TcpStream::connect(addr)?).await
    }

    /// Registers a socket whose non-blocking connect was started and waits for the
    /// handshake's outcome (a checkpoint; cancelled, the socket is closed).
    pub(crate) async fn finish_connect(socket: mio::net::TcpStream) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(socket)?;
        // Writable means the handshake ended; `take_error` tells how.
        stream
            .io
            .io(Direction::Write, |s| {
                if let Some(e) = s.take_error()? {
                    return Err(e);
                }
                match s.peer_addr() {
                    Ok(_) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        Err(io::ErrorKind::WouldBlock.into())
                    }
                    Err(e) => Err(e),
                }
            })
            .await?;
        Ok(stream)
    }

    /// Wraps a connected standard-library stream (switched to non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::TcpStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ///     let std_s = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    ///     let s = TcpStream::from_std(std_s).unwrap();
    ///     assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    fn from_mio(s: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: IoSource::new(s, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Reads into `buf`, waiting until some data (or end-of-file, `Ok(0)`) is there.
    /// A checkpoint that consumes nothing when cancelled (see the type's doc). Reading
    /// again after end-of-file returns `Ok(0)` again.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     let (s, _) = l.accept().await.unwrap();
    ///     c.write(b"abc").await.unwrap();
    ///     drop(c);
    ///     let mut buf = [0u8; 8];
    ///     let mut got = Vec::new();
    ///     loop {
    ///         let n = s.read(&mut buf).await.unwrap();
    ///         if n == 0 { break; }
    ///         got.extend_from_slice(&buf[..n]);
    ///     }
    ///     assert_eq!(got, b"abc");
    ///     assert_eq!(s.read(&mut buf).await.unwrap(), 0);
    /// });
    /// ```
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_priv(cx, buf)).await
    }

    /// Writes some of `buf`, waiting until the socket has room; returns how many bytes
    /// went out. A checkpoint that writes nothing when cancelled.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     assert_eq!(c.write(b"hello").await.unwrap(), 5);
    /// });
    /// ```
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_write_priv(cx, buf)).await
    }

    /// Shuts down the read, write or both directions. Not a checkpoint (it never
    /// blocks, and cleanup must work in cancelled code). A connection the peer already
    /// closed or reset counts as shut down: the kernel's `NotConnected` is reported as
    /// `Ok(())`, here and in `poll_close` (as tokio does), so closing never fails just
    /// because the other side was quicker.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    /// use std::net::Shutdown;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     let (s, _) = l.accept().await.unwrap();
    ///     c.shutdown(Shutdown::Write).unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(s.read(&mut buf).await.unwrap(), 0);
    ///     // Writing after our own shutdown is an error, not a panic.
    ///     assert!(c.write(b"late").await.is_err());
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown_priv(how)
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm).
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     c.set_nodelay(true).unwrap();
    ///     assert!(c.nodelay().unwrap());
    /// });
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.get_ref().set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     c.set_nodelay(false).unwrap();
    ///     assert!(!c.nodelay().unwrap());
    /// });
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.get_ref().nodelay()
    }

    /// The local address.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     assert!(c.local_addr().unwrap().ip().is_loopback());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     assert_eq!(c.peer_addr().unwrap(), l.local_addr().unwrap());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Splits the stream into a read half and a write half that can move to different
    /// tasks. Dropping the write half shuts down the write direction;
    /// [`ReadHalf::reunite`] puts them back together.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     let (s, _) = l.accept().await.unwrap();
    ///     let (r, w) = s.into_split();
    ///     c.write(b"echo").await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     let n = r.read(&mut buf).await.unwrap();
    ///     w.write(&buf[..n]).await.unwrap();
    ///     assert_eq!(c.read(&mut buf).await.unwrap(), n);
    /// });
    /// ```
    pub fn into_split(self) -> (ReadHalf<TcpStream>, WriteHalf<TcpStream>) {
        split::split(self)
    }

    /// Deregisters the stream and returns it as a standard-library stream (still in
    /// non-blocking mode), e.g. to hand a connection to another core or thread, which
    /// adopts it with [`from_std`](Self::from_std). Nothing is lost: bytes not read
    /// yet stay in the socket's receive queue.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
    ///     let (s, _) = l.accept().await.unwrap();
    ///     c.write(b"hi").await.unwrap();
    ///     let std_s = s.into_std(); // `Send`: could go to another thread here
    ///     let s = TcpStream::from_std(std_s).unwrap();
    ///     let mut buf = [0u8; 2];
    ///     assert_eq!(s.read(&mut buf).await.unwrap(), 2);
    ///     assert_eq!(&buf, b"hi");
    /// });
    /// ```
    pub fn into_std(self) -> std::net::TcpStream {
        self.io.into_inner().0.into()
    }
}

/// The stream operations shared by [`TcpStream`] and `UnixStream`.
///
/// A read that returns fewer bytes than asked for (but not 0, which is end-of-file)
/// drained the socket's receive queue, and a short write filled its send queue; with
/// edge-triggered readiness any later change brings a new event, so the readiness is
/// cleared right away. This saves the `EAGAIN` syscall the next operation would
/// otherwise make (the same shortcut tokio takes).
macro_rules! stream_impls {
    ($t:ty) => {
        impl crate::io::split::sealed::Stream for $t {
            fn poll_read_priv(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                let len = buf.len();
                let res = self.io.poll_io(cx, Direction::Read, |mut s| s.read(buf));
                if let Poll::Ready(Ok(n)) = res {
                    if n > 0 && n < len {
                        self.io.clear_readiness(Direction::Read);
                    }
                }
                res
            }

            fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let len = buf.len();
                let res = self.io.poll_io(cx, Direction::Write, |mut s| s.write(buf));
                if let Poll::Ready(Ok(n)) = res {
                    if n < len {
                        self.io.clear_readiness(Direction::Write);
                    }
                }
                res
            }

            fn poll_write_vectored_priv(
                &self,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                let len: usize = bufs.iter().map(|b| b.len()).sum();
                let res = self
                    .io
                    .poll_io(cx, Direction::Write, |mut s| s.write_vectored(bufs));
                if let Poll::Ready(Ok(n)) = res {
                    if n < len {
                        self.io.clear_readiness(Direction::Write);
                    }
                }
                res
            }

            fn shutdown_priv(&self, how: Shutdown) -> io::Result<()> {
                crate::io::split::shutdown_done(self.io.get_ref().shutdown(how))
            }

            #[cfg(feature = "hyper")]
            fn poll_read_uninit_priv(
                &self,
                cx: &mut Context<'_>,
                buf: &mut [std::mem::MaybeUninit<u8>],
            ) -> Poll<io::Result<usize>> {
                let len = buf.len();
                let res = self.io.poll_io(cx, Direction::Read, |s| {
                    crate::io::sys::recv_uninit(s, &mut *buf)
                });
                if let Poll::Ready(Ok(n)) = res {
                    if n > 0 && n < len {
                        self.io.clear_readiness(Direction::Read);
                    }
                }
                res
            }
        }

        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_read_priv(&*self, cx, buf)
            }
        }

        impl futures_io::AsyncRead for &$t {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_read_priv(&**self, cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_write_priv(&*self, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_write_vectored_priv(&*self, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown_priv(Shutdown::Write))
            }
        }

        impl futures_io::AsyncWrite for &$t {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_write_priv(&**self, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                crate::io::split::sealed::Stream::poll_write_vectored_priv(&**self, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _cx: &mut Context<'_>,
            ) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown_priv(Shutdown::Write))
            }
        }
    };
}

pub(crate) use stream_impls;

stream_impls!(TcpStream);

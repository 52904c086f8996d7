//! Unix-domain sockets: [`UnixListener`], [`UnixStream`], [`UnixDatagram`].

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use futures_core::Stream;
use futures_core::stream::FusedStream;
use mio::Interest;

use super::source::IoSource;
use super::split::sealed::Stream as _;
use super::split::{self, ReadHalf, WriteHalf};
use super::tcp::stream_impls;
use crate::runtime::reactor::Direction;

/// A Unix-domain socket listening for connections.
///
/// [`accept`](Self::accept) is a checkpoint, like [`TcpListener::accept`](super::TcpListener::accept).
/// The socket file is **not** removed when the listener is dropped (as with the
/// standard library); remove it yourself.
///
/// ```
/// use scope_runtime::io::{UnixListener, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let dir = std::env::temp_dir().join(format!("sr-doc-ul-{}", std::process::id()));
///     std::fs::create_dir_all(&dir).unwrap();
///     let path = dir.join("sock");
///     let _ = std::fs::remove_file(&path);
///     let l = UnixListener::bind(&path).unwrap();
///     let c = UnixStream::connect(&path).await.unwrap();
///     let (s, _) = l.accept().await.unwrap();
///     c.write(b"hi").await.unwrap();
///     let mut buf = [0u8; 2];
///     assert_eq!(s.read(&mut buf).await.unwrap(), 2);
///     std::fs::remove_dir_all(&dir).unwrap();
/// });
/// ```
pub struct UnixListener {
    io: IoSource<mio::net::UnixListener>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl UnixListener {
    /// Creates the socket file at `path` and listens on it. A path that exists already
    /// fails with `AddrInUse`.
    ///
    /// ```
    /// use scope_runtime::io::UnixListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-bind-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let _l = UnixListener::bind(&path).unwrap();
    ///     let err = UnixListener::bind(&path).unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_mio(mio::net::UnixListener::bind(path)?)
    }

    /// Wraps a standard-library listener (switched to non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::UnixListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-ulstd-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let l = UnixListener::from_std(std::os::unix::net::UnixListener::bind(&path).unwrap()).unwrap();
    ///     assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        listener.set_nonblocking(true)?;
        UnixListener::from_mio(mio::net::UnixListener::from_std(listener))
    }

    fn from_mio(l: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: IoSource::new(l, Interest::READABLE)?,
        })
    }

    /// Waits for a connection. A checkpoint: cancelled, the backlog is untouched.
    ///
    /// ```
    /// use scope_runtime::io::UnixListener;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-acc-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let l = UnixListener::bind(&path).unwrap();
    ///     let r = move_on_after(Duration::from_millis(10), l.accept()).await;
    ///     assert!(r.unwrap().is_none());
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        let (s, addr) = self.io.io(Direction::Read, |l| l.accept()).await?;
        Ok((UnixStream::from_mio(s)?, addr))
    }

    /// The connections, as a [`Stream`]: each item is what [`accept`](Self::accept)
    /// returns, without the peer's address. See [`UnixIncoming`].
    ///
    /// ```
    /// use futures::StreamExt;
    /// use scope_runtime::io::{UnixListener, UnixStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-inc-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let l = UnixListener::bind(&path)?;
    ///     let client = UnixStream::connect(&path).await?;
    ///     let conn = l.incoming().next().await.expect("never ends")?;
    ///     client.write(b"hi").await?;
    ///     let mut buf = [0u8; 2];
    ///     assert_eq!(conn.read(&mut buf).await?, 2);
    ///     std::fs::remove_file(&path)?;
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub fn incoming(&self) -> UnixIncoming<'_> {
        UnixIncoming { listener: self }
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<UnixStream>> {
        let (s, _) = ready!(self.io.poll_io(cx, Direction::Read, |l| l.accept()))?;
        Poll::Ready(UnixStream::from_mio(s))
    }

    /// The address the listener is bound to.
    ///
    /// ```
    /// use scope_runtime::io::UnixListener;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-la-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let l = UnixListener::bind(&path).unwrap();
    ///     assert_eq!(l.local_addr().unwrap().as_pathname(), Some(path.as_path()));
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }
}

/// The connections of a [`UnixListener`], as an endless [`Stream`] of
/// `io::Result<UnixStream>`: made by [`UnixListener::incoming`].
///
/// It behaves as [`TcpIncoming`](super::TcpIncoming) does: each poll is an
/// [`accept`](UnixListener::accept); a failed accept yields `Some(Err(e))` and the
/// stream goes on (it never yields `None`; after an error such as `EMFILE`, wait a
/// little before polling again, or the loop spins while it lasts); polled in cancelled code it yields the
/// `Cancelled` as an `io::Error`, before or while it waits, without taking a
/// connection, and again at every poll until control leaves the cancelled scope.
///
/// ```
/// use futures::StreamExt;
/// use scope_runtime::io::UnixListener;
/// use scope_runtime::move_on_after;
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-uinc-{}", std::process::id()));
///     let _ = std::fs::remove_file(&path);
///     let l = UnixListener::bind(&path)?;
///     let r = move_on_after(Duration::from_millis(10), async {
///         let mut incoming = l.incoming();
///         while let Some(conn) = incoming.next().await {
///             let _conn = conn?;
///         }
///         Ok::<_, std::io::Error>(())
///     })
///     .await;
///     assert!(r?.is_none(), "nobody connected: cancelled by the deadline");
///     std::fs::remove_file(&path)?;
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct UnixIncoming<'a> {
    listener: &'a UnixListener,
}

impl fmt::Debug for UnixIncoming<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("UnixIncoming").field(self.listener).finish()
    }
}

impl Stream for UnixIncoming<'_> {
    type Item = io::Result<UnixStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.listener.poll_accept(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Never terminated: a listener's connections do not end.
impl FusedStream for UnixIncoming<'_> {
    fn is_terminated(&self) -> bool {
        false
    }
}

/// A Unix-domain stream socket. Same cancellation contract as
/// [`TcpStream`](super::TcpStream): reads and writes are checkpoints that transfer
/// nothing when cancelled.
///
/// ```
/// use scope_runtime::io::UnixStream;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     a.write(b"x").await.unwrap();
///     let mut buf = [0u8; 1];
///     assert_eq!(b.read(&mut buf).await.unwrap(), 1);
/// });
/// ```
pub struct UnixStream {
    io: IoSource<mio::net::UnixStream>,
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl UnixStream {
    /// Connects to the socket at `path`. A checkpoint. A missing path fails with
    /// `NotFound`, a path without a listener with `ConnectionRefused`. While the
    /// listener's backlog is full the connect is retried every few milliseconds
    /// (Unix sockets report a full backlog as `WouldBlock`).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let err = UnixStream::connect("/nonexistent/socket").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let path = path.as_ref();
        let mut backoff = Duration::from_millis(1);
        let s = loop {
            crate::check_cancelled()?;
            match mio::net::UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::sleep(backoff).await?;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(e) => return Err(e),
            }
        };
        let stream = UnixStream::from_mio(s)?;
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

    /// A connected pair of anonymous sockets.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     b.write(b"yo").await.unwrap();
    ///     let mut buf = [0u8; 2];
    ///     assert_eq!(a.read(&mut buf).await.unwrap(), 2);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    /// Wraps a connected standard-library stream (switched to non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    ///     let a = UnixStream::from_std(a).unwrap();
    ///     assert!(a.peer_addr().is_ok());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        stream.set_nonblocking(true)?;
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    fn from_mio(s: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: IoSource::new(s, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Reads into `buf`; `Ok(0)` is end-of-file. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     drop(b);
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(a.read(&mut buf).await.unwrap(), 0);
    /// });
    /// ```
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_read_priv(cx, buf)).await
    }

    /// Writes some of `buf`; returns how much went out. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     drop(b);
    ///     // The peer is gone: a clear error (EPIPE), no panic, no SIGPIPE.
    ///     assert!(a.write(b"x").await.is_err());
    /// });
    /// ```
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.poll_write_priv(cx, buf)).await
    }

    /// Shuts down one or both directions. Not a checkpoint. A peer that already closed
    /// counts as shut down: `NotConnected` is reported as `Ok(())` (see
    /// [`TcpStream::shutdown`](super::TcpStream::shutdown)).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    /// use std::net::Shutdown;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     a.shutdown(Shutdown::Write).unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(b.read(&mut buf).await.unwrap(), 0);
    /// });
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.shutdown_priv(how)
    }

    /// The local address (unnamed for a connecting or paired socket).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     assert!(a.local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The peer's address.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     assert!(a.peer_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Splits the stream into halves that can move to different tasks (see
    /// [`TcpStream::into_split`](super::TcpStream::into_split)).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let (r, w) = a.into_split();
    ///     w.write(b"z").await.unwrap();
    ///     b.write(b"y").await.unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(r.read(&mut buf).await.unwrap(), 1);
    ///     assert_eq!(&buf, b"y");
    /// });
    /// ```
    pub fn into_split(self) -> (ReadHalf<UnixStream>, WriteHalf<UnixStream>) {
        split::split(self)
    }

    /// Deregisters the stream and returns it as a standard-library stream (still in
    /// non-blocking mode); see [`TcpStream::into_std`](super::TcpStream::into_std).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     b.write(b"y").await.unwrap();
    ///     let a = UnixStream::from_std(a.into_std()).unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(a.read(&mut buf).await.unwrap(), 1);
    /// });
    /// ```
    pub fn into_std(self) -> std::os::unix::net::UnixStream {
        self.io.into_inner().0.into()
    }
}

stream_impls!(UnixStream);

/// A Unix-domain datagram socket. Sends and receives are checkpoints that transfer
/// nothing when cancelled.
///
/// ```
/// use scope_runtime::io::UnixDatagram;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixDatagram::pair().unwrap();
///     a.send(b"one").await.unwrap();
///     a.send(b"two").await.unwrap();
///     let mut buf = [0u8; 8];
///     assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
///     assert_eq!(&buf[..3], b"one");
/// });
/// ```
pub struct UnixDatagram {
    io: IoSource<mio::net::UnixDatagram>,
}

impl fmt::Debug for UnixDatagram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl UnixDatagram {
    /// Creates a socket bound to `path`.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-ud-{}", std::process::id()));
    ///     let _ = std::fs::remove_file(&path);
    ///     let a = UnixDatagram::bind(&path).unwrap();
    ///     let b = UnixDatagram::unbound().unwrap();
    ///     b.send_to(b"hi", &path).await.unwrap();
    ///     let mut buf = [0u8; 4];
    ///     let (n, _) = a.recv_from(&mut buf).await.unwrap();
    ///     assert_eq!(&buf[..n], b"hi");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::bind(path)?)
    }

    /// Creates a socket bound to no address.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = UnixDatagram::unbound().unwrap();
    ///     assert!(s.local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn unbound() -> io::Result<UnixDatagram> {
        UnixDatagram::from_mio(mio::net::UnixDatagram::unbound()?)
    }

    /// A connected pair of anonymous sockets.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     b.send(b"q").await.unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(a.recv(&mut buf).await.unwrap(), 1);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn pair() -> io::Result<(UnixDatagram, UnixDatagram)> {
        let (a, b) = mio::net::UnixDatagram::pair()?;
        Ok((UnixDatagram::from_mio(a)?, UnixDatagram::from_mio(b)?))
    }

    /// Wraps a standard-library socket (switched to non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
    ///     assert!(UnixDatagram::from_std(s).is_ok());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(socket: std::os::unix::net::UnixDatagram) -> io::Result<UnixDatagram> {
        socket.set_nonblocking(true)?;
        UnixDatagram::from_mio(mio::net::UnixDatagram::from_std(socket))
    }

    fn from_mio(s: mio::net::UnixDatagram) -> io::Result<UnixDatagram> {
        Ok(UnixDatagram {
            io: IoSource::new(s, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Sets the default peer for [`send`](Self::send) / [`recv`](Self::recv).
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = UnixDatagram::unbound().unwrap();
    ///     let err = s.connect("/nonexistent/socket").unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub fn connect(&self, path: impl AsRef<Path>) -> io::Result<()> {
        self.io.get_ref().connect(path)
    }

    /// Sends one datagram to the connected peer. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixDatagram::pair().unwrap();
    ///     assert_eq!(a.send(b"abc").await.unwrap(), 3);
    /// });
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     a.send(b"abc").await.unwrap();
    ///     let mut buf = [0u8; 2]; // too short: the rest is discarded
    ///     assert_eq!(b.recv(&mut buf).await.unwrap(), 2);
    /// });
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.io(Direction::Read, |s| s.recv(buf)).await
    }

    /// Sends one datagram to the socket at `path`. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = UnixDatagram::unbound().unwrap();
    ///     assert!(s.send_to(b"x", "/nonexistent/socket").await.is_err());
    /// });
    /// ```
    pub async fn send_to(&self, buf: &[u8], path: impl AsRef<Path>) -> io::Result<usize> {
        let path = path.as_ref();
        self.io.io(Direction::Write, |s| s.send_to(buf, path)).await
    }

    /// Receives one datagram and the sender's address. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixDatagram::pair().unwrap();
    ///     a.send(b"k").await.unwrap();
    ///     let mut buf = [0u8; 1];
    ///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
    ///     assert!(n == 1 && from.is_unnamed());
    /// });
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// The local address.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixDatagram::pair().unwrap();
    ///     assert!(a.local_addr().unwrap().is_unnamed());
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address.
    ///
    /// ```
    /// use scope_runtime::io::UnixDatagram;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = UnixDatagram::unbound().unwrap();
    ///     assert!(s.peer_addr().is_err());
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }
}

#[cfg(test)]
mod tests {
    use crate::Runtime;

    /// Sockets dropped outside `block_on` still release their reactor entries (a
    /// registration knows its runtime).
    #[test]
    #[cfg_attr(miri, ignore = "real sockets")]
    fn sockets_dropped_outside_block_on_do_not_accumulate() {
        let rt = Runtime::new().unwrap();
        let keep = rt.block_on(async { super::UnixDatagram::pair().unwrap() });
        for _ in 0..500 {
            let pair = rt.block_on(async { super::UnixDatagram::pair().unwrap() });
            drop(pair); // no runtime current: the reactor entries are orphaned
        }
        let count = rt.reactor_sources();
        assert_eq!(count, 2, "reactor entries for 2 live sockets");
        // The sockets kept across all of it still work.
        rt.block_on(async {
            keep.0.send(b"ok").await.unwrap();
            let mut buf = [0; 2];
            assert_eq!(keep.1.recv(&mut buf).await.unwrap(), 2);
        });
    }
}

//! [`TcpSocket`]: a TCP socket configured before it listens or connects.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::sys::{self, SockOpt};
use super::tcp::{TcpListener, TcpStream};

/// A TCP socket that is not connected or listening yet: set its options, optionally
/// [`bind`](Self::bind) it, then turn it into a [`TcpListener`] with
/// [`listen`](Self::listen) or into a [`TcpStream`] with [`connect`](Self::connect).
///
/// Use it for what [`TcpListener::bind`] and [`TcpStream::connect`] do not offer:
/// `SO_REUSEPORT` (several listeners on one port, the kernel spreads the connections),
/// a chosen backlog, buffer sizes, or a fixed local address for an outgoing connection.
/// Options are set with the `set_*` methods (each one system call, effective at once)
/// and read back with the getters of the same name.
///
/// The socket is non-blocking and close-on-exec from the start; dropping it closes it.
///
/// ```
/// use scope_runtime::io::{TcpSocket, TcpStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let socket = TcpSocket::new_v4()?;
///     socket.set_reuseaddr(true)?;
///     socket.bind("127.0.0.1:0".parse().unwrap())?;
///     let listener = socket.listen(128)?;
///
///     let client = TcpSocket::new_v4()?;
///     client.set_nodelay(true)?;
///     let stream = client.connect(listener.local_addr()?).await?;
///     assert!(stream.nodelay()?);
///     let (_server_side, peer) = listener.accept().await?;
///     assert_eq!(peer, stream.local_addr()?);
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
pub struct TcpSocket {
    fd: OwnedFd,
}

impl fmt::Debug for TcpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpSocket")
            .field("fd", &self.fd.as_raw_fd())
            .finish()
    }
}

impl TcpSocket {
    /// A new IPv4 socket.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// assert!(!s.reuseport().unwrap());
    /// ```
    pub fn new_v4() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            fd: sys::tcp_socket(false)?,
        })
    }

    /// A new IPv6 socket. Fails (`EAFNOSUPPORT`) on a system without IPv6.
    ///
    /// ```
    /// if let Ok(s) = scope_runtime::io::TcpSocket::new_v6() {
    ///     s.set_reuseaddr(true).unwrap();
    ///     assert!(s.reuseaddr().unwrap());
    /// }
    /// ```
    pub fn new_v6() -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            fd: sys::tcp_socket(true)?,
        })
    }

    /// A new socket of `addr`'s family ([`new_v4`](Self::new_v4) or
    /// [`new_v6`](Self::new_v6)).
    ///
    /// ```
    /// use scope_runtime::io::TcpSocket;
    ///
    /// let addr = "127.0.0.1:0".parse().unwrap();
    /// let s = TcpSocket::new_for(&addr).unwrap();
    /// s.bind(addr).unwrap();
    /// assert!(s.local_addr().unwrap().is_ipv4());
    /// ```
    pub fn new_for(addr: &SocketAddr) -> io::Result<TcpSocket> {
        Ok(TcpSocket {
            fd: sys::tcp_socket(addr.is_ipv6())?,
        })
    }

    /// Sets `SO_REUSEADDR`: bind to a port whose earlier connections are still in
    /// `TIME_WAIT` (what a restarting server wants). A port with a live listener still
    /// fails with `AddrInUse` on Linux.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.set_reuseaddr(true).unwrap();
    /// assert!(s.reuseaddr().unwrap());
    /// ```
    pub fn set_reuseaddr(&self, on: bool) -> io::Result<()> {
        sys::set_int_option(&self.fd, SockOpt::ReuseAddr, on.into())
    }

    /// Whether `SO_REUSEADDR` is set.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// assert!(!s.reuseaddr().unwrap());
    /// ```
    pub fn reuseaddr(&self) -> io::Result<bool> {
        Ok(sys::int_option(&self.fd, SockOpt::ReuseAddr)? != 0)
    }

    /// Sets `SO_REUSEPORT`: several sockets (each with the option set, of the same
    /// user) may bind the same address and port; for listeners, the kernel spreads the
    /// incoming connections among them.
    ///
    /// ```
    /// use scope_runtime::io::TcpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = TcpSocket::new_v4()?;
    ///     a.set_reuseport(true)?;
    ///     a.bind("127.0.0.1:0".parse().unwrap())?;
    ///     let first = a.listen(16)?;
    ///
    ///     let b = TcpSocket::new_v4()?;
    ///     b.set_reuseport(true)?;
    ///     b.bind(first.local_addr()?)?; // the same port
    ///     let second = b.listen(16)?;
    ///     assert_eq!(first.local_addr()?, second.local_addr()?);
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub fn set_reuseport(&self, on: bool) -> io::Result<()> {
        sys::set_int_option(&self.fd, SockOpt::ReusePort, on.into())
    }

    /// Whether `SO_REUSEPORT` is set.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.set_reuseport(true).unwrap();
    /// assert!(s.reuseport().unwrap());
    /// ```
    pub fn reuseport(&self) -> io::Result<bool> {
        Ok(sys::int_option(&self.fd, SockOpt::ReusePort)? != 0)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes); the option stays on the
    /// stream [`connect`](Self::connect) returns and, on Linux, is inherited by the
    /// connections a listener accepts.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        sys::set_int_option(&self.fd, SockOpt::NoDelay, on.into())
    }

    /// Whether `TCP_NODELAY` is set.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// assert!(!s.nodelay().unwrap());
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        Ok(sys::int_option(&self.fd, SockOpt::NoDelay)? != 0)
    }

    /// Sets `SO_RCVBUF`, the kernel's receive buffer in bytes. The kernel adjusts the
    /// value (Linux doubles it for its bookkeeping and applies a minimum and
    /// `net.core.rmem_max`), so [`recv_buffer_size`](Self::recv_buffer_size) may read
    /// back a different number. A size above `i32::MAX` fails with `InvalidInput`.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.set_recv_buffer_size(64 * 1024).unwrap();
    /// assert!(s.recv_buffer_size().unwrap() >= 64 * 1024);
    /// ```
    pub fn set_recv_buffer_size(&self, bytes: u32) -> io::Result<()> {
        sys::set_int_option(&self.fd, SockOpt::RecvBuffer, buffer_size(bytes)?)
    }

    /// The kernel's receive buffer size (`SO_RCVBUF`), in bytes.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// assert!(s.recv_buffer_size().unwrap() > 0);
    /// ```
    pub fn recv_buffer_size(&self) -> io::Result<u32> {
        Ok(u32::try_from(sys::int_option(&self.fd, SockOpt::RecvBuffer)?).unwrap_or(0))
    }

    /// Sets `SO_SNDBUF`, the kernel's send buffer in bytes (adjusted by the kernel as
    /// for [`set_recv_buffer_size`](Self::set_recv_buffer_size)). A size above
    /// `i32::MAX` fails with `InvalidInput`.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.set_send_buffer_size(64 * 1024).unwrap();
    /// assert!(s.send_buffer_size().unwrap() >= 64 * 1024);
    /// ```
    pub fn set_send_buffer_size(&self, bytes: u32) -> io::Result<()> {
        sys::set_int_option(&self.fd, SockOpt::SendBuffer, buffer_size(bytes)?)
    }

    /// The kernel's send buffer size (`SO_SNDBUF`), in bytes.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// assert!(s.send_buffer_size().unwrap() > 0);
    /// ```
    pub fn send_buffer_size(&self) -> io::Result<u32> {
        Ok(u32::try_from(sys::int_option(&self.fd, SockOpt::SendBuffer)?).unwrap_or(0))
    }

    /// Binds the socket to a local address (port 0: the system picks one). An address
    /// of the other family fails with `InvalidInput` (from the system).
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert_ne!(s.local_addr().unwrap().port(), 0);
    /// ```
    pub fn bind(&self, addr: SocketAddr) -> io::Result<()> {
        sys::bind_socket(&self.fd, &addr)
    }

    /// The local address: after [`bind`](Self::bind), with the port the system chose.
    ///
    /// ```
    /// let s = scope_runtime::io::TcpSocket::new_v4().unwrap();
    /// s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        // std reads `getsockname` for us through a borrowed socket; it is not closed.
        let fd = self.fd.try_clone()?;
        std::net::TcpListener::from(fd).local_addr()
    }

    /// Starts listening with a queue of `backlog` connections that the kernel has
    /// completed but [`accept`](TcpListener::accept) has not taken yet (the system caps
    /// it, on Linux at `net.core.somaxconn`). Without a [`bind`](Self::bind) first, the
    /// system picks a port on every address.
    ///
    /// # Panics
    ///
    /// Outside a runtime (the listener registers with the runtime's reactor).
    ///
    /// ```
    /// use scope_runtime::io::TcpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = TcpSocket::new_v4().unwrap();
    ///     s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    ///     let l = s.listen(1024).unwrap();
    ///     assert!(l.local_addr().unwrap().port() != 0);
    /// });
    /// ```
    pub fn listen(self, backlog: u32) -> io::Result<TcpListener> {
        sys::listen_socket(&self.fd, backlog)?;
        TcpListener::from_std(std::net::TcpListener::from(self.fd))
    }

    /// Connects to `addr`, with the options set so far. A checkpoint: if the calling
    /// code is cancelled it returns `Cancelled` (as an `io::Error`) before any packet
    /// is sent; a cancellation during the handshake also returns `Cancelled` and closes
    /// the socket, so no half-open connection is left.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    ///
    /// ```
    /// use scope_runtime::io::{TcpListener, TcpSocket};
    /// use std::io::ErrorKind;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     // A free port, closed again: nobody listens there.
    ///     let addr = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    ///     let err = TcpSocket::new_v4()?.connect(addr).await.unwrap_err();
    ///     assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    ///     Ok::<_, std::io::Error>(())
    /// }).unwrap();
    /// ```
    pub async fn connect(self, addr: SocketAddr) -> io::Result<TcpStream> {
        crate::check_cancelled()?;
        sys::start_connect(&self.fd, &addr)?;
        let std_stream = std::net::TcpStream::from(self.fd);
        TcpStream::finish_connect(mio::net::TcpStream::from_std(std_stream)).await
    }
}

fn buffer_size(bytes: u32) -> io::Result<i32> {
    i32::try_from(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("socket buffer size {bytes} is above i32::MAX"),
        )
    })
}

impl AsRawFd for TcpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for TcpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<TcpSocket> for OwnedFd {
    fn from(s: TcpSocket) -> OwnedFd {
        s.fd
    }
}

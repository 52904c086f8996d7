//! UDP: [`UdpSocket`].

use std::fmt;
use std::io;
use std::net::SocketAddr;

use mio::Interest;

use super::addr::{ToSocketAddrs, lookup_host};
use super::source::IoSource;
use crate::runtime::reactor::Direction;

/// A UDP socket, registered with the runtime's reactor.
///
/// Sends and receives are checkpoints: cancelled, they return `Cancelled` (as an
/// `io::Error`) without sending or taking a datagram. All methods take `&self`;
/// several tasks may wait on one socket (each datagram goes to one of them).
///
/// ```
/// use scope_runtime::io::UdpSocket;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0u8; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"ping");
///     assert_eq!(from, a.local_addr().unwrap());
/// });
/// ```
pub struct UdpSocket {
    io: IoSource<mio::net::UdpSocket>,
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.io.fmt(f)
    }
}

impl UdpSocket {
    /// Binds to `addr` (each resolved address is tried in turn).
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     // The same port twice is refused with a clear error.
    ///     let err = UdpSocket::bind(a.local_addr().unwrap()).await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let addrs = lookup_host(addr).await?;
        let mut last = None;
        for a in addrs {
            match mio::net::UdpSocket::bind(a) {
                Ok(s) => return UdpSocket::from_mio(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("lookup_host returns at least one address"))
    }

    /// Wraps a standard-library socket (switched to non-blocking mode).
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    ///     let addr = s.local_addr().unwrap();
    ///     assert_eq!(UdpSocket::from_std(s).unwrap().local_addr().unwrap(), addr);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        socket.set_nonblocking(true)?;
        UdpSocket::from_mio(mio::net::UdpSocket::from_std(socket))
    }

    fn from_mio(s: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: IoSource::new(s, Interest::READABLE | Interest::WRITABLE)?,
        })
    }

    /// Sets the default peer (the first resolved address) for [`send`](Self::send) and
    /// filters [`recv`](Self::recv) to datagrams from it.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.connect(b.local_addr().unwrap()).await.unwrap();
    ///     assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
    /// });
    /// ```
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        let addrs = lookup_host(addr).await?;
        self.io.get_ref().connect(addrs[0])
    }

    /// Sends `buf` to the connected peer; returns the bytes sent. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.connect(b.local_addr().unwrap()).await.unwrap();
    ///     b.connect(a.local_addr().unwrap()).await.unwrap();
    ///     assert_eq!(a.send(b"hey").await.unwrap(), 3);
    ///     let mut buf = [0u8; 8];
    ///     assert_eq!(b.recv(&mut buf).await.unwrap(), 3);
    /// });
    /// ```
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        self.io.io(Direction::Write, |s| s.send(buf)).await
    }

    /// Receives one datagram from the connected peer into `buf` (the excess of a
    /// longer datagram is discarded). A checkpoint: cancelled, no datagram is taken.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     let mut buf = [0u8; 8];
    ///     // Nothing arrives: the deadline cancels the receive.
    ///     let r = move_on_after(Duration::from_millis(10), a.recv_from(&mut buf)).await;
    ///     assert!(r.unwrap().is_none());
    /// });
    /// ```
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.io.io(Direction::Read, |s| s.recv(buf)).await
    }

    /// Sends `buf` to `target`. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     assert_eq!(a.send_to(b"x", b.local_addr().unwrap()).await.unwrap(), 1);
    /// });
    /// ```
    pub async fn send_to(&self, buf: &[u8], target: SocketAddr) -> io::Result<usize> {
        self.io
            .io(Direction::Write, |s| s.send_to(buf, target))
            .await
    }

    /// Receives one datagram and its sender's address. A checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.send_to(b"self", a.local_addr().unwrap()).await.unwrap();
    ///     let mut buf = [0u8; 8];
    ///     let (n, from) = a.recv_from(&mut buf).await.unwrap();
    ///     assert_eq!((&buf[..n], from), (&b"self"[..], a.local_addr().unwrap()));
    /// });
    /// ```
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.io.io(Direction::Read, |s| s.recv_from(buf)).await
    }

    /// The local address.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     assert_ne!(a.local_addr().unwrap().port(), 0);
    /// });
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
    }

    /// The connected peer's address (`NotConnected` if [`connect`](Self::connect) was
    /// not called).
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     assert_eq!(a.peer_addr().unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    /// });
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().peer_addr()
    }

    /// Sets `SO_BROADCAST`.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     a.set_broadcast(true).unwrap();
    ///     assert!(a.broadcast().unwrap());
    /// });
    /// ```
    pub fn set_broadcast(&self, on: bool) -> io::Result<()> {
        self.io.get_ref().set_broadcast(on)
    }

    /// Whether `SO_BROADCAST` is set.
    ///
    /// ```
    /// use scope_runtime::io::UdpSocket;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    ///     assert!(!a.broadcast().unwrap());
    /// });
    /// ```
    pub fn broadcast(&self) -> io::Result<bool> {
        self.io.get_ref().broadcast()
    }
}

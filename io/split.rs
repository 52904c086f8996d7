//! Owned read and write halves of a stream ([`TcpStream`](super::TcpStream),
//! [`UnixStream`](super::UnixStream)), so reading and writing can live in different
//! tasks.

use std::fmt;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

pub(crate) mod sealed {
    use std::io::{self, IoSlice};
    use std::net::Shutdown;
    use std::task::{Context, Poll};

    /// The operations a splittable stream provides to its halves.
    pub trait Stream {
        fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;
        fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
        fn poll_write_vectored_priv(
            &self,
            cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>>;
        fn shutdown_priv(&self, how: Shutdown) -> io::Result<()>;
        /// `poll_read_priv` into memory that may be uninitialised (hyper's read
        /// buffers): on `Ok(n)` the first `n` bytes of `buf` were written.
        #[cfg(feature = "hyper")]
        fn poll_read_uninit_priv(
            &self,
            cx: &mut Context<'_>,
            buf: &mut [std::mem::MaybeUninit<u8>],
        ) -> Poll<io::Result<usize>>;
    }
}

use sealed::Stream;

/// The outcome of `shutdown(2)` on a stream, with `NotConnected` counted as done: the
/// peer closed or reset the connection first, so there is nothing left to shut down.
/// Every shutdown and `poll_close` of the streams and their halves goes through here.
pub(crate) fn shutdown_done(res: io::Result<()>) -> io::Result<()> {
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        res => res,
    }
}

/// The reading half of a stream, from `into_split`. Reads are checkpoints exactly as
/// on the whole stream.
///
/// ```
/// use scope_runtime::io::{read_exact, UnixStream};
/// use std::io::Cursor;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (_a_read, a_write) = a.into_split();
///     a_write.write(b"hi").await.unwrap();
///     let (b_read, _b_write) = b.into_split();
///     let mut buf = Cursor::new([0u8; 2]);
///     read_exact(&mut &b_read, &mut buf).await.unwrap();
///     assert_eq!(buf.get_ref(), b"hi");
/// });
/// ```
pub struct ReadHalf<S> {
    pub(crate) inner: Rc<S>,
}

/// The writing half of a stream, from `into_split`. **Dropping it shuts down the write
/// direction** (the peer reads end-of-file), like closing a pipe's write end; the read
/// half keeps working.
///
/// ```
/// use scope_runtime::io::{read_to_end, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, mut b) = UnixStream::pair().unwrap();
///     let (_read, write) = a.into_split();
///     write.write(b"bye").await.unwrap();
///     drop(write); // the peer sees EOF
///     let mut got = Vec::new();
///     read_to_end(&mut b, &mut got).await.unwrap();
///     assert_eq!(got, b"bye");
/// });
/// ```
pub struct WriteHalf<S: Stream> {
    pub(crate) inner: Rc<S>,
    pub(crate) shutdown_on_drop: bool,
}

/// The error of [`ReadHalf::reunite`]: the halves came from different streams. Holds
/// them so nothing is lost.
///
/// ```
/// use scope_runtime::io::{ReuniteError, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (ar, aw) = a.into_split();
///     let (br, bw) = b.into_split();
///     let ReuniteError(ar, bw) = ar.reunite(bw).unwrap_err();
///     assert!(ar.reunite(aw).is_ok() && br.reunite(bw).is_ok());
/// });
/// ```
pub struct ReuniteError<S: Stream>(pub ReadHalf<S>, pub WriteHalf<S>);

impl<S: Stream> fmt::Debug for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ReuniteError(..)")
    }
}

impl<S: Stream> fmt::Display for ReuniteError<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tried to reunite halves that are not from the same stream")
    }
}

impl<S: Stream> std::error::Error for ReuniteError<S> {}

pub(crate) fn split<S: Stream>(stream: S) -> (ReadHalf<S>, WriteHalf<S>) {
    let inner = Rc::new(stream);
    (
        ReadHalf {
            inner: inner.clone(),
        },
        WriteHalf {
            inner,
            shutdown_on_drop: true,
        },
    )
}

impl<S: Stream> ReadHalf<S> {
    /// Reads into `buf`; `Ok(0)` is end-of-file. A checkpoint (see
    /// [`TcpStream::read`](super::TcpStream::read)).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     b.write(b"x").await.unwrap();
    ///     let (r, _w) = a.into_split();
    ///     let mut buf = [0u8; 4];
    ///     assert_eq!(r.read(&mut buf).await.unwrap(), 1);
    /// });
    /// ```
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.inner.poll_read_priv(cx, buf)).await
    }

    /// The whole stream, shared with the write half.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let (r, _w) = a.into_split();
    ///     assert!(r.as_ref().peer_addr().is_ok());
    /// });
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn as_ref(&self) -> &S {
        &self.inner
    }

    /// Puts the halves back together. Fails (returning both) if they come from
    /// different streams.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let (r, w) = a.into_split();
    ///     let a = r.reunite(w).unwrap();
    ///     assert!(a.peer_addr().is_ok());
    /// });
    /// ```
    pub fn reunite(self, mut write: WriteHalf<S>) -> Result<S, ReuniteError<S>> {
        if !Rc::ptr_eq(&self.inner, &write.inner) {
            return Err(ReuniteError(self, write));
        }
        write.shutdown_on_drop = false;
        drop(write);
        match Rc::try_unwrap(self.inner) {
            Ok(s) => Ok(s),
            Err(_) => unreachable!("a stream's halves are the only owners of it"),
        }
    }
}

impl<S: Stream> WriteHalf<S> {
    /// Writes some of `buf`; returns how much went out. A checkpoint (see
    /// [`TcpStream::write`](super::TcpStream::write)).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let (_r, w) = a.into_split();
    ///     assert_eq!(w.write(b"abc").await.unwrap(), 3);
    /// });
    /// ```
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        std::future::poll_fn(|cx| self.inner.poll_write_priv(cx, buf)).await
    }

    /// Shuts down the write direction now (the drop would do it later). A peer that
    /// already closed counts as shut down (`Ok(())`, not `NotConnected`).
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, b) = UnixStream::pair().unwrap();
    ///     let (_r, w) = a.into_split();
    ///     w.shutdown().unwrap();
    ///     let mut buf = [0u8; 1];
    ///     assert_eq!(b.read(&mut buf).await.unwrap(), 0); // EOF
    /// });
    /// ```
    pub fn shutdown(&self) -> io::Result<()> {
        self.inner.shutdown_priv(Shutdown::Write)
    }

    /// The whole stream, shared with the read half.
    ///
    /// ```
    /// use scope_runtime::io::UnixStream;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let (a, _b) = UnixStream::pair().unwrap();
    ///     let (_r, w) = a.into_split();
    ///     assert!(w.as_ref().local_addr().is_ok());
    /// });
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn as_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: Stream> Drop for WriteHalf<S> {
    fn drop(&mut self) {
        if self.shutdown_on_drop {
            let _ = self.inner.shutdown_priv(Shutdown::Write);
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadHalf").field(&self.inner).finish()
    }
}

impl<S: Stream + fmt::Debug> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteHalf").field(&self.inner).finish()
    }
}

impl<S: Stream> AsyncRead for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_priv(cx, buf)
    }
}

impl<S: Stream> AsyncRead for &ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_read_priv(cx, buf)
    }
}

impl<S: Stream> AsyncWrite for WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown_priv(Shutdown::Write))
    }
}

impl<S: Stream> AsyncWrite for &WriteHalf<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown_priv(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use super::shutdown_done;
    use std::io::{self, ErrorKind};

    /// Linux never answers `ENOTCONN` for a Unix stream (macOS does), so the mapping the
    /// Unix streams share with TCP is pinned here as well as by the TCP test.
    #[test]
    fn not_connected_counts_as_shut_down_and_other_errors_stay() {
        assert!(shutdown_done(Err(ErrorKind::NotConnected.into())).is_ok());
        assert!(shutdown_done(Ok(())).is_ok());
        let kept = shutdown_done(Err(io::Error::other("bad fd"))).unwrap_err();
        assert_eq!(kept.to_string(), "bad fd");
        let kept = shutdown_done(Err(ErrorKind::InvalidInput.into())).unwrap_err();
        assert_eq!(kept.kind(), ErrorKind::InvalidInput);
    }
}

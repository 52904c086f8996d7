//! Helpers over the `futures-io` traits: [`read`], [`write`], [`read_exact`],
//! [`write_all`], [`read_to_end`], [`copy`], and [`BufReader`].
//!
//! # Progress survives cancellation
//!
//! A helper that loops (`read_exact`, `write_all`, `read_to_end`, `copy`) may be
//! cancelled after it has already moved some bytes. None of them loses those bytes:
//!
//! * [`read_exact`] and [`write_all`] work on a [`Cursor`]: its position is how far
//!   they got, updated after every partial transfer. After an error (including
//!   `Cancelled`) the cursor says exactly which bytes were read or written; calling
//!   again with the same cursor resumes.
//! * [`read_to_end`] appends to a `Vec`: what was read stays in it.
//! * [`copy`] reads through an [`AsyncBufRead`] and consumes only what was written:
//!   bytes read but not yet written stay in the reader's buffer.
//!
//! Each underlying read or write is a checkpoint, so a cancelled caller stops at the
//! next one and transfers nothing more.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Cursor, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncBufRead, AsyncRead, AsyncWrite};

/// Reads into `buf` once; `Ok(0)` means end-of-file (or an empty `buf`).
///
/// ```
/// use scope_runtime::io::{read, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (mut a, b) = UnixStream::pair().unwrap();
///     b.write(b"abc").await.unwrap();
///     let mut buf = [0u8; 8];
///     assert_eq!(read(&mut a, &mut buf).await.unwrap(), 3);
/// });
/// ```
pub async fn read<R: AsyncRead + Unpin + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *r).poll_read(cx, buf)).await
}

/// Writes some of `buf` once; returns how much went out.
///
/// ```
/// use scope_runtime::io::{write, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (mut a, _b) = UnixStream::pair().unwrap();
///     assert_eq!(write(&mut a, b"abc").await.unwrap(), 3);
/// });
/// ```
pub async fn write<W: AsyncWrite + Unpin + ?Sized>(w: &mut W, buf: &[u8]) -> io::Result<usize> {
    poll_fn(|cx| Pin::new(&mut *w).poll_write(cx, buf)).await
}

/// Fills `buf` from its position to its end.
///
/// The cursor's position advances with every partial read, so after an error —
/// `UnexpectedEof` if the stream ends first, `Cancelled`, or an I/O error — it tells
/// exactly how many bytes arrived, and calling again resumes (see the module doc).
///
/// ```
/// use scope_runtime::io::{read_exact, UnixStream};
/// use std::io::Cursor;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (mut a, b) = UnixStream::pair().unwrap();
///     b.write(b"abc").await.unwrap();
///     drop(b);
///     let mut buf = Cursor::new([0u8; 5]);
///     let err = read_exact(&mut a, &mut buf).await.unwrap_err();
///     assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
///     assert_eq!(buf.position(), 3); // the 3 bytes that came are kept
///     assert_eq!(&buf.get_ref()[..3], b"abc");
/// });
/// ```
pub async fn read_exact<R, B>(r: &mut R, buf: &mut Cursor<B>) -> io::Result<()>
where
    R: AsyncRead + Unpin + ?Sized,
    B: AsMut<[u8]>,
{
    loop {
        let pos = usize::try_from(buf.position()).unwrap_or(usize::MAX);
        let rest = buf.get_mut().as_mut().get_mut(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        let n = read(r, rest).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "stream ended before the buffer was filled",
            ));
        }
        buf.set_position((pos + n) as u64);
    }
}

/// Writes `buf` from its position to its end.
///
/// The cursor's position advances with every partial write, so after an error —
/// `Cancelled`, `WriteZero`, or an I/O error such as a reset — it tells exactly how
/// many bytes went out, and calling again resumes with the rest (see the module doc).
///
/// ```
/// use scope_runtime::io::{read_to_end, write_all, UnixStream};
/// use std::io::Cursor;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     let mut out = Cursor::new(b"hello");
///     write_all(&mut a, &mut out).await.unwrap();
///     assert_eq!(out.position(), 5);
///     drop(a);
///     let mut got = Vec::new();
///     read_to_end(&mut b, &mut got).await.unwrap();
///     assert_eq!(got, b"hello");
/// });
/// ```
pub async fn write_all<W, B>(w: &mut W, buf: &mut Cursor<B>) -> io::Result<()>
where
    W: AsyncWrite + Unpin + ?Sized,
    B: AsRef<[u8]>,
{
    loop {
        let pos = usize::try_from(buf.position()).unwrap_or(usize::MAX);
        let rest = buf.get_ref().as_ref().get(pos..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(());
        }
        let n = write(w, rest).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the writer accepted no bytes",
            ));
        }
        buf.set_position((pos + n) as u64);
    }
}

/// Reads until end-of-file, appending to `buf`; returns how many bytes this call
/// appended. After an error (including `Cancelled`) the bytes read so far are in
/// `buf`.
///
/// ```
/// use scope_runtime::io::{read_to_end, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (mut a, b) = UnixStream::pair().unwrap();
///     b.write(b"all of it").await.unwrap();
///     drop(b);
///     let mut buf = b"> ".to_vec();
///     assert_eq!(read_to_end(&mut a, &mut buf).await.unwrap(), 9);
///     assert_eq!(buf, b"> all of it");
/// });
/// ```
pub async fn read_to_end<R>(r: &mut R, buf: &mut Vec<u8>) -> io::Result<usize>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let start = buf.len();
    let mut chunk = [0u8; 8 * 1024];
    loop {
        let n = read(r, &mut chunk).await?;
        if n == 0 {
            return Ok(buf.len() - start);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Copies everything from `r` to `w` until `r` ends, then flushes `w`; returns the
/// number of bytes copied.
///
/// `r` is an [`AsyncBufRead`] (wrap a plain reader in a [`BufReader`]): `copy` writes
/// straight from its buffer and consumes only what `w` accepted, so when it fails or
/// is cancelled halfway, the bytes read but not written are still in `r`'s buffer.
///
/// ```
/// use scope_runtime::io::{copy, read_to_end, BufReader, UnixStream};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     let (c, mut d) = UnixStream::pair().unwrap();
///     a.write(b"forward me").await.unwrap();
///     drop(a);
///     let mut from = BufReader::new(b);
///     let mut to = c;
///     assert_eq!(copy(&mut from, &mut to).await.unwrap(), 10);
///     drop(to);
///     let mut got = Vec::new();
///     read_to_end(&mut d, &mut got).await.unwrap();
///     assert_eq!(got, b"forward me");
/// });
/// ```
pub async fn copy<R, W>(r: &mut R, w: &mut W) -> io::Result<u64>
where
    R: AsyncBufRead + Unpin + ?Sized,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut total = 0u64;
    poll_fn(|cx| {
        loop {
            let buf = ready!(Pin::new(&mut *r).poll_fill_buf(cx))?;
            if buf.is_empty() {
                ready!(Pin::new(&mut *w).poll_flush(cx))?;
                return Poll::Ready(Ok(total));
            }
            let n = ready!(Pin::new(&mut *w).poll_write(cx, buf))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the writer accepted no bytes",
                )));
            }
            Pin::new(&mut *r).consume(n);
            total += n as u64;
        }
    })
    .await
}

/// Default capacity of a [`BufReader`].
const DEFAULT_BUF_SIZE: usize = 8 * 1024;

/// Adds a read buffer to a reader, providing [`AsyncBufRead`] (for [`copy`], and for
/// the `futures::io` line and codec helpers). Writes pass straight through when the
/// inner type is also a writer.
///
/// ```
/// use scope_runtime::io::{BufReader, UnixStream};
/// use futures::AsyncBufReadExt;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let (a, b) = UnixStream::pair().unwrap();
///     a.write(b"line one\nline two\n").await.unwrap();
///     let mut r = BufReader::new(b);
///     let mut line = String::new();
///     r.read_line(&mut line).await.unwrap();
///     assert_eq!(line, "line one\n");
///     assert_eq!(r.buffer(), b"line two\n");
/// });
/// ```
pub struct BufReader<R> {
    inner: R,
    buf: Box<[u8]>,
    pos: usize,
    filled: usize,
}

impl<R: fmt::Debug> fmt::Debug for BufReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufReader")
            .field("inner", &self.inner)
            .field("buffered", &(self.filled - self.pos))
            .field("capacity", &self.buf.len())
            .finish()
    }
}

impl<R> BufReader<R> {
    /// A buffer of 8 KiB.
    ///
    /// ```
    /// use scope_runtime::io::BufReader;
    /// let r = BufReader::new(&b"data"[..]);
    /// assert!(r.buffer().is_empty());
    /// ```
    pub fn new(inner: R) -> BufReader<R> {
        BufReader::with_capacity(DEFAULT_BUF_SIZE, inner)
    }

    /// A buffer of `capacity` bytes (at least 1).
    ///
    /// ```
    /// use scope_runtime::io::BufReader;
    /// let r = BufReader::with_capacity(16, &b"data"[..]);
    /// assert!(r.buffer().is_empty());
    /// ```
    pub fn with_capacity(capacity: usize, inner: R) -> BufReader<R> {
        BufReader {
            inner,
            buf: vec![0; capacity.max(1)].into_boxed_slice(),
            pos: 0,
            filled: 0,
        }
    }

    /// The bytes read from the inner reader and not consumed yet.
    ///
    /// ```
    /// use scope_runtime::io::{read, BufReader};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut r = BufReader::new(&b"abcdef"[..]);
    ///     let mut two = [0u8; 2];
    ///     read(&mut r, &mut two).await.unwrap();
    ///     assert_eq!(r.buffer(), b"cdef");
    /// });
    /// ```
    pub fn buffer(&self) -> &[u8] {
        &self.buf[self.pos..self.filled]
    }

    /// The inner reader.
    ///
    /// ```
    /// use scope_runtime::io::BufReader;
    /// let r = BufReader::new(&b"xy"[..]);
    /// assert_eq!(*r.get_ref(), b"xy");
    /// ```
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The inner reader, mutably (reading from it directly skips the buffer).
    ///
    /// ```
    /// use scope_runtime::io::BufReader;
    /// let mut r = BufReader::new(vec![1u8]);
    /// r.get_mut().push(2);
    /// assert_eq!(r.get_ref(), &[1, 2]);
    /// ```
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    /// The inner reader and the buffered bytes not consumed yet (so nothing is lost).
    ///
    /// ```
    /// use scope_runtime::io::{read, BufReader};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut r = BufReader::new(&b"abcdef"[..]);
    ///     let mut one = [0u8; 1];
    ///     read(&mut r, &mut one).await.unwrap();
    ///     let (_inner, rest) = r.into_parts();
    ///     assert_eq!(rest, b"bcdef");
    /// });
    /// ```
    pub fn into_parts(self) -> (R, Vec<u8>) {
        let rest = self.buf[self.pos..self.filled].to_vec();
        (self.inner, rest)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for BufReader<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Nothing buffered and a large read: skip the copy.
        if this.pos == this.filled && out.len() >= this.buf.len() {
            return Pin::new(&mut this.inner).poll_read(cx, out);
        }
        let avail = ready!(Pin::new(&mut *this).poll_fill_buf(cx))?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        this.pos += n;
        Poll::Ready(Ok(n))
    }
}

impl<R: AsyncRead + Unpin> AsyncBufRead for BufReader<R> {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        if this.pos >= this.filled {
            let n = ready!(Pin::new(&mut this.inner).poll_read(cx, &mut this.buf))?;
            this.pos = 0;
            this.filled = n;
        }
        Poll::Ready(Ok(&this.buf[this.pos..this.filled]))
    }

    fn consume(mut self: Pin<&mut Self>, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

impl<R: AsyncWrite + Unpin> AsyncWrite for BufReader<R> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

//! [`File`]: one operation at a time on the blocking pool, with a buffer that keeps
//! what a cancelled wait left behind.
//!
//! The file is in one of two states. **Idle**: the file's buffer is here (unread bytes
//! of an earlier read, or empty). **Busy**: one pool job owns the buffer and runs a
//! read, a write, a seek, a sync, `set_len` or `metadata`; its handle is here. Every
//! operation first waits until the file is idle, collecting the result of the job in
//! flight. A job whose caller stopped waiting (cancelled, or its future dropped) is
//! collected by the next operation, which keeps what matters of its result (see
//! [`File`]'s doc).

use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures_io::{AsyncRead, AsyncSeek, AsyncWrite};

use super::super::blocking::{BlockingHandle, run_to_completion, spawn_blocking};
use super::OpenOptions;

/// The most bytes one pool job reads or writes for the `futures-io` traits (a longer
/// write is accepted in pieces; [`File::write_all`] hands over its whole buffer).
pub(super) const MAX_CHUNK: usize = 1 << 20;

/// Bytes read ahead of the caller (`data[pos..]` is unread), or the bytes of a write
/// while a job has it.
#[derive(Default)]
struct Buf {
    data: Vec<u8>,
    pos: usize,
}

impl Buf {
    fn unread(&self) -> usize {
        self.data.len() - self.pos
    }

    /// Copies unread bytes into `dst`; returns how many.
    fn copy_to(&mut self, dst: &mut [u8]) -> usize {
        let n = self.unread().min(dst.len());
        dst[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        if self.pos == self.data.len() {
            self.clear();
        }
        n
    }

    fn clear(&mut self) {
        self.data.clear();
        self.pos = 0;
    }

    /// Reads once into the (empty) buffer, up to `len` bytes.
    fn read_from(&mut self, file: &std::fs::File, len: usize) -> io::Result<usize> {
        self.clear();
        self.data.resize(len, 0);
        let mut f = file;
        let r = loop {
            match f.read(&mut self.data) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        self.data.truncate(*r.as_ref().unwrap_or(&0));
        r
    }
}

/// What a finished job did.
enum Done {
    Read(io::Result<usize>),
    Write(io::Result<()>),
    Seek(io::Result<u64>),
    Metadata(io::Result<std::fs::Metadata>),
    /// `sync_all`, `sync_data`, `set_len`.
    Unit(io::Result<()>),
}

enum State {
    Idle(Buf),
    Busy(BlockingHandle<(Done, Buf)>),
}

/// An open file whose operations run on the blocking pool, one at a time.
///
/// Use it through the `futures-io` traits ([`AsyncRead`], [`AsyncWrite`],
/// [`AsyncSeek`]; e.g. with `futures::io::{AsyncReadExt, AsyncWriteExt,
/// AsyncSeekExt}`), the crate's [`io`](crate::io) helpers, or the inherent methods,
/// which need no trait import.
///
/// ```
/// use scope_runtime::io::fs::File;
/// use std::io::SeekFrom;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let path = std::env::temp_dir().join(format!("sr-doc-file-{}", std::process::id()));
///     let mut f = File::create(&path).await.unwrap();
///     f.write_all(b"hello world").await.unwrap();
///     f.seek(SeekFrom::Start(6)).await.unwrap();
///     let mut buf = [0u8; 5];
///     assert_eq!(f.read(&mut buf).await.unwrap(), 5);
///     assert_eq!(&buf, b"world");
///     std::fs::remove_file(&path).unwrap();
/// });
/// ```
///
/// # Writes are handed over, flushes wait
///
/// `poll_write` (so also `AsyncWriteExt::write` / `write_all` and the crate's
/// [`io::write_all`](crate::io::write_all)) copies up to 1 MiB of the caller's bytes
/// and hands them to a pool job, returning `Ok(n)` at once: the bytes are accepted
/// and will be written. [`poll_flush`] (and `flush()`,
/// `close()`) waits until every accepted byte has reached the operating system and
/// returns the error if a write failed. Dropping the file without flushing still
/// writes everything accepted, but then nobody learns of an error. `flush` does not
/// mean durable on disk: that is [`sync_all`](File::sync_all).
///
/// The inherent [`write`](File::write) and [`write_all`](File::write_all) wait for
/// the bytes to reach the OS, and report the write's own error.
///
/// # Cancellation
///
/// Every operation is a checkpoint: in cancelled code it fails with `Cancelled` (as an
/// `io::Error`) before doing anything. While it waits — for the job of an earlier
/// operation, or for its own — a cancellation wakes it and it fails with `Cancelled`
/// at once. A pool job cannot be interrupted, so what was already handed to the pool
/// still happens, and nothing of it is lost:
///
/// * **Read**: the bytes arrive in the file's buffer; the next read returns them
///   first. The file position is the caller's: as if the cancelled read had not
///   happened.
/// * **Write**: bytes the file accepted are written by the pool. A cancelled
///   `write_all` (inherent) either fails before handing anything over, or has handed
///   over all of its buffer, which is then written. The next operation of any kind
///   waits until the write is done, so a read, seek or `metadata` after it sees the
///   data.
/// * **Seek**: the seek still happens; the position is then the one asked for.
///   *Dropping* (not cancelling) a `poll_seek` caller while its seek is in flight is
///   the one ambiguous case: a new `poll_seek` to the *same* target is then taken as
///   the same request (re-polling with the same argument is how futures-io continues
///   a seek), so `SeekFrom::Current(n)` moves once, not twice.
/// * **`sync_all`, `sync_data`, `set_len`, `metadata`**: they still happen.
///
/// An error of a write, sync or `set_len` whose caller stopped waiting is not dropped:
/// the next operation on the file returns it (and does nothing else). A cancelled
/// read's or `metadata`'s error is dropped (the next read tries again).
///
/// [`poll_flush`]: AsyncWrite::poll_flush
pub struct File {
    std: Arc<std::fs::File>,
    state: State,
    /// An error of a job whose caller was gone, for the next operation.
    pending_err: Option<io::Error>,
    /// The target of the seek in flight, if `poll_seek` started it and still waits.
    seek_in_flight: Option<SeekFrom>,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("std", &self.std)
            .field("busy", &matches!(self.state, State::Busy(_)))
            .finish()
    }
}

impl File {
    /// Opens `path` for reading.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let err = File::open("/nonexistent/file").await.unwrap_err();
    ///     assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path).await
    }

    /// Creates (or truncates) `path` and opens it for writing and reading.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-create-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 0);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .await
    }

    /// Wraps an open standard-library file.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut f = File::from_std(std::fs::File::open("/dev/null").unwrap());
    ///     let mut buf = [0u8; 4];
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 0);
    /// });
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File {
            std: Arc::new(file),
            state: State::Idle(Buf::default()),
            pending_err: None,
            seek_in_flight: None,
        }
    }

    /// Reads into `buf` once; `Ok(0)` is end-of-file (or an empty `buf`). Bytes a
    /// cancelled read left in the file's buffer come first.
    ///
    /// ```
    /// use scope_runtime::io::fs::{self, File};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fread-{}", std::process::id()));
    ///     fs::write(&path, b"abc").await.unwrap();
    ///     let mut f = File::open(&path).await.unwrap();
    ///     let mut buf = [0u8; 8];
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 3);
    ///     assert_eq!(f.read(&mut buf).await.unwrap(), 0);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| Pin::new(&mut *self).poll_read(cx, buf)).await
    }

    /// Reads to end-of-file, appending to `buf`; returns how many bytes were appended.
    /// If it fails (or is cancelled) part way, the bytes read so far stay in `buf`.
    ///
    /// ```
    /// use scope_runtime::io::fs::{self, File};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-frte-{}", std::process::id()));
    ///     fs::write(&path, b"everything").await.unwrap();
    ///     let mut f = File::open(&path).await.unwrap();
    ///     let mut buf = Vec::new();
    ///     assert_eq!(f.read_to_end(&mut buf).await.unwrap(), 10);
    ///     assert_eq!(buf, b"everything");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let mut chunk = vec![0u8; 128 * 1024];
        let mut total = 0;
        loop {
            let n = self.read(&mut chunk).await?;
            if n == 0 {
                return Ok(total);
            }
            buf.extend_from_slice(&chunk[..n]);
            total += n;
        }
    }

    /// Writes up to 1 MiB of `buf` and waits until those bytes reached the OS; returns
    /// how many. If it is cancelled while waiting, the bytes already handed over are
    /// still written (see [Cancellation](File#cancellation)).
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fwrite-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     assert_eq!(f.write(b"data").await.unwrap(), 4);
    ///     assert_eq!(std::fs::read(&path).unwrap(), b"data");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = poll_fn(|cx| self.poll_hand_over(cx, buf, MAX_CHUNK)).await?;
        self.flush().await?;
        Ok(n)
    }

    /// Writes all of `buf`, handed to the pool as one piece, and waits until it
    /// reached the OS. Cancelled, it either did nothing (it was still waiting for an
    /// earlier operation) or the whole buffer is being written; the next operation
    /// waits for that.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-fwa-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(&[7u8; 100_000]).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 100_000);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if !buf.is_empty() {
            poll_fn(|cx| self.poll_hand_over(cx, buf, usize::MAX)).await?;
        }
        self.flush().await
    }

    /// Waits until every byte the file accepted has reached the OS; returns the error
    /// of a write that failed.
    ///
    /// ```
    /// use futures::io::AsyncWriteExt;
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-flush-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     // The trait's write returns once the pool has the bytes...
    ///     AsyncWriteExt::write(&mut f, b"later").await.unwrap();
    ///     // ...flush waits until they are written.
    ///     f.flush().await.unwrap();
    ///     assert_eq!(std::fs::read(&path).unwrap(), b"later");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| Pin::new(&mut *self).poll_flush(cx)).await
    }

    /// Moves the file position; returns the new position from the start.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    /// use std::io::SeekFrom;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-seek-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"0123456789").await.unwrap();
    ///     assert_eq!(f.seek(SeekFrom::End(-3)).await.unwrap(), 7);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        poll_fn(|cx| Pin::new(&mut *self).poll_seek(cx, pos)).await
    }

    /// Flushes data and metadata to the device (`fsync`), after every accepted write.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-sync-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"durable").await.unwrap();
    ///     f.sync_all().await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn sync_all(&mut self) -> io::Result<()> {
        match self.run(|f| Done::Unit(f.sync_all())).await? {
            Done::Unit(r) => r,
            _ => unreachable!("sync_all's job reports Unit"),
        }
    }

    /// Flushes the data (not necessarily the metadata) to the device (`fdatasync`).
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-sdata-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"data").await.unwrap();
    ///     f.sync_data().await.unwrap();
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn sync_data(&mut self) -> io::Result<()> {
        match self.run(|f| Done::Unit(f.sync_data())).await? {
            Done::Unit(r) => r,
            _ => unreachable!("sync_data's job reports Unit"),
        }
    }

    /// Truncates or extends the file to `size` bytes. The position does not move.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-setlen-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.set_len(42).await.unwrap();
    ///     assert_eq!(f.metadata().await.unwrap().len(), 42);
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn set_len(&mut self, size: u64) -> io::Result<()> {
        match self.run(move |f| Done::Unit(f.set_len(size))).await? {
            Done::Unit(r) => r,
            _ => unreachable!("set_len's job reports Unit"),
        }
    }

    /// The file's metadata, after every accepted write.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut f = File::open("/dev/null").await.unwrap();
    ///     assert!(!f.metadata().await.unwrap().is_dir());
    /// });
    /// ```
    pub async fn metadata(&mut self) -> io::Result<std::fs::Metadata> {
        match self.run(|f| Done::Metadata(f.metadata())).await? {
            Done::Metadata(r) => r,
            _ => unreachable!("metadata's job reports Metadata"),
        }
    }

    /// Waits for the operations in flight, then gives back the standard-library file
    /// (at the position this `File` was at). An error of a write in flight is
    /// returned instead, and the file is then closed.
    ///
    /// ```
    /// use scope_runtime::io::fs::File;
    /// use std::io::Read;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let path = std::env::temp_dir().join(format!("sr-doc-intostd-{}", std::process::id()));
    ///     let mut f = File::create(&path).await.unwrap();
    ///     f.write_all(b"abc").await.unwrap();
    ///     f.seek(std::io::SeekFrom::Start(1)).await.unwrap();
    ///     let mut rest = String::new();
    ///     f.into_std().await.unwrap().read_to_string(&mut rest).unwrap();
    ///     assert_eq!(rest, "bc");
    ///     std::fs::remove_file(&path).unwrap();
    /// });
    /// ```
    pub async fn into_std(mut self) -> io::Result<std::fs::File> {
        poll_fn(|cx| {
            crate::check_cancelled()?;
            self.poll_idle(cx)
        })
        .await?;
        if matches!(&self.state, State::Idle(buf) if buf.unread() > 0) {
            // Give back the bytes read ahead: move the position back over them.
            self.seek(SeekFrom::Current(0)).await?;
        }
        if let Some(e) = self.pending_err.take() {
            return Err(e);
        }
        // The finished job has dropped its clone (it drops before reporting).
        Arc::try_unwrap(self.std)
            .map_err(|_| io::Error::other("the file is still in use by a pool job"))
    }

    /// Runs one job on the file once it is idle, and waits for its result.
    async fn run(
        &mut self,
        op: impl FnOnce(&std::fs::File) -> Done + Send + 'static,
    ) -> io::Result<Done> {
        poll_fn(|cx| {
            crate::check_cancelled()?;
            self.poll_idle(cx)
        })
        .await?;
        if let Some(e) = self.pending_err.take() {
            return Err(e);
        }
        let buf = self.take_buf();
        let std = self.std.clone();
        self.state = State::Busy(spawn_blocking(move || {
            let done = op(&std);
            (done, buf)
        }));
        poll_fn(|cx| self.poll_busy(cx)).await
    }

    fn take_buf(&mut self) -> Buf {
        match &mut self.state {
            State::Idle(buf) => std::mem::take(buf),
            State::Busy(_) => unreachable!("taking the buffer of a busy file"),
        }
    }

    /// Waits for the job in flight and returns its result, the file idle again.
    /// `Err` only for a cancellation (the job then stays in flight).
    fn poll_busy(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Done>> {
        let State::Busy(handle) = &mut self.state else {
            unreachable!("polling the job of an idle file");
        };
        let (done, buf) = ready!(Pin::new(handle).poll(cx))?;
        self.state = State::Idle(buf);
        self.seek_in_flight = None;
        Poll::Ready(Ok(done))
    }

    /// Keeps what matters of a job whose caller is gone: read bytes are already in
    /// the buffer; a failed write, sync or `set_len` is reported by the next operation.
    fn absorb(&mut self, done: Done) {
        match done {
            Done::Write(Err(e)) | Done::Unit(Err(e)) => {
                if self.pending_err.is_none() {
                    self.pending_err = Some(e);
                }
            }
            Done::Read(_) | Done::Write(Ok(())) | Done::Unit(Ok(())) => {}
            Done::Seek(_) | Done::Metadata(_) => {}
        }
    }

    /// Waits until no job is in flight. `Err` only for a cancellation.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let State::Busy(_) = self.state {
            let done = ready!(self.poll_busy(cx))?;
            self.absorb(done);
        }
        Poll::Ready(Ok(()))
    }

    /// Hands up to `max` bytes of `src` to a write job once the file is idle.
    fn poll_hand_over(
        &mut self,
        cx: &mut Context<'_>,
        src: &[u8],
        max: usize,
    ) -> Poll<io::Result<usize>> {
        crate::check_cancelled()?;
        ready!(self.poll_idle(cx))?;
        if let Some(e) = self.pending_err.take() {
            return Poll::Ready(Err(e));
        }
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut buf = self.take_buf();
        let n = src.len().min(max);
        let data = src[..n].to_vec();
        let std = self.std.clone();
        self.state = State::Busy(spawn_blocking(move || {
            let mut f = &*std;
            // Bytes read ahead are not the caller's yet: write where the caller is,
            // giving them back to the file. A pipe has no position: there they stay
            // buffered for the next read, and the write goes ahead.
            let back = buf.unread();
            let mut r = Ok(());
            if back > 0 {
                match f.seek(SeekFrom::Current(-(back as i64))) {
                    Ok(_) => buf.clear(),
                    Err(e) if e.kind() == io::ErrorKind::NotSeekable => {}
                    Err(e) => r = Err(e),
                }
            }
            if r.is_ok() {
                r = f.write_all(&data);
            }
            (Done::Write(r), buf)
        }));
        Poll::Ready(Ok(n))
    }
}

impl AsyncRead for File {
    /// Returns buffered bytes first; otherwise reads up to `buf.len()` (at most 1 MiB)
    /// on the pool. Cancelled while waiting, the bytes land in the buffer for the
    /// next read.
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        crate::check_cancelled()?;
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Idle(buf) => {
                    if buf.unread() > 0 || dst.is_empty() {
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    if let Some(e) = this.pending_err.take() {
                        return Poll::Ready(Err(e));
                    }
                    let mut buf = std::mem::take(buf);
                    let len = dst.len().min(MAX_CHUNK);
                    let std = this.std.clone();
                    this.state = State::Busy(spawn_blocking(move || {
                        let r = buf.read_from(&std, len);
                        (Done::Read(r), buf)
                    }));
                }
                State::Busy(_) => match ready!(this.poll_busy(cx))? {
                    Done::Read(Ok(_)) => {
                        let State::Idle(buf) = &mut this.state else {
                            unreachable!()
                        };
                        return Poll::Ready(Ok(buf.copy_to(dst)));
                    }
                    Done::Read(Err(e)) => return Poll::Ready(Err(e)),
                    other => this.absorb(other),
                },
            }
        }
    }
}

impl AsyncWrite for File {
    /// Hands up to 1 MiB of `buf` to the pool (after the operation in flight) and
    /// returns how much it took; the bytes will be written. See [`File`].
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_hand_over(cx, buf, MAX_CHUNK)
    }

    /// Waits until every accepted byte reached the OS (not the disk: see
    /// [`File::sync_all`]); returns a failed write's error.
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        crate::check_cancelled()?;
        ready!(self.poll_idle(cx))?;
        match self.pending_err.take() {
            Some(e) => Poll::Ready(Err(e)),
            None => Poll::Ready(Ok(())),
        }
    }

    /// The same as `poll_flush`; the file descriptor is closed when the `File` is
    /// dropped.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl AsyncSeek for File {
    /// Seeks on the pool after the operation in flight. `SeekFrom::Current` counts
    /// from the caller's position (bytes read ahead into the buffer are given back).
    fn poll_seek(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = &mut *self;
        if let Err(cancelled) = crate::check_cancelled() {
            // The caller gives up on the seek it may have started; it still happens,
            // and a later seek to the same target is a new one.
            this.seek_in_flight = None;
            return Poll::Ready(Err(cancelled.into()));
        }
        loop {
            match &mut this.state {
                State::Busy(_) if this.seek_in_flight == Some(pos) => {
                    match ready!(this.poll_busy(cx)) {
                        Ok(Done::Seek(r)) => return Poll::Ready(r),
                        Ok(other) => this.absorb(other),
                        Err(cancelled) => {
                            // The caller gives up on this seek; it still happens.
                            this.seek_in_flight = None;
                            return Poll::Ready(Err(cancelled));
                        }
                    }
                }
                State::Busy(_) => {
                    let done = ready!(this.poll_busy(cx))?;
                    this.absorb(done);
                }
                State::Idle(buf) => {
                    if let Some(e) = this.pending_err.take() {
                        return Poll::Ready(Err(e));
                    }
                    let target = match pos {
                        SeekFrom::Current(off) => {
                            let back = i64::try_from(buf.unread()).unwrap_or(i64::MAX);
                            match off.checked_sub(back) {
                                Some(o) => SeekFrom::Current(o),
                                None => {
                                    return Poll::Ready(Err(io::Error::new(
                                        io::ErrorKind::InvalidInput,
                                        "seek offset out of range",
                                    )));
                                }
                            }
                        }
                        other => other,
                    };
                    let mut buf = std::mem::take(buf);
                    let std = this.std.clone();
                    this.state = State::Busy(spawn_blocking(move || {
                        let r = (&*std).seek(target);
                        // A failed seek moved nothing: the read-ahead stays valid.
                        if r.is_ok() {
                            buf.clear();
                        }
                        (Done::Seek(r), buf)
                    }));
                    this.seek_in_flight = Some(pos);
                }
            }
        }
    }
}

/// Opens a file with the options, on the pool (a checkpoint on entry; once started
/// the open finishes and its result is returned).
pub(super) async fn open_with(opts: std::fs::OpenOptions, path: &Path) -> io::Result<File> {
    let path = path.to_owned();
    let f = run_to_completion(move || opts.open(path)).await??;
    Ok(File::from_std(f))
}

//! The process's standard streams: [`stdin()`], [`stdout()`], [`stderr()`], with the
//! `futures-io` traits, through the blocking pool.
//!
//! The explanation users read is on [`Stdin`] (this module is private).

use std::fmt;
use std::io::{self, Read, Write};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_io::{AsyncRead, AsyncWrite};
use parking_lot::Mutex;

use super::blocking::spawn_blocking;
use crate::runtime::cancel::CancelWait;
use crate::runtime::observe::WaitingOn;

/// Bytes one pool job reads from stdin.
const READ_CHUNK: usize = 64 * 1024;
/// The most bytes one `poll_write` hands to the pool.
const WRITE_CHUNK: usize = 1 << 20;

fn add_waker(wakers: &mut Vec<Waker>, w: &Waker) {
    if !wakers.iter().any(|x| x.will_wake(w)) {
        wakers.push(w.clone());
    }
}

fn wake_all(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

fn panicked() -> io::Error {
    io::Error::other("a standard-stream operation panicked on the pool")
}

struct InState {
    buf: Vec<u8>,
    pos: usize,
    /// The end of the last read that moved no bytes: `Ok` is end-of-file. Returned
    /// once (a terminal can give more after an end-of-file).
    end: Option<io::Result<()>>,
    reading: bool,
    wakers: Vec<Waker>,
}

static STDIN: Mutex<InState> = Mutex::new(InState {
    buf: Vec::new(),
    pos: 0,
    end: None,
    reading: false,
    wakers: Vec::new(),
});

/// The process's standard input, read on the blocking pool.
///
/// Don't mix it with `std::io::stdin()` reads elsewhere in the program: bytes this
/// handle has buffered are not seen there.
///
/// ```no_run
/// use futures::io::AsyncBufReadExt;
/// use scope_runtime::io::{BufReader, stdin};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut lines = BufReader::new(stdin()).lines();
///     use futures::StreamExt;
///     while let Some(line) = lines.next().await {
///         println!("got {}", line.unwrap());
///     }
/// });
/// ```
///
/// # Why the pool, not non-blocking file descriptors
///
/// File descriptors 0, 1 and 2 are usually shared with other processes: the shell
/// that started the program, a pipeline's neighbours, a terminal. `O_NONBLOCK` is a
/// flag of the shared open file description, not of this process, so setting it
/// would make reads and writes fail with `EAGAIN` in the shell and every other
/// program on the same terminal — even after this one exits, if it dies before
/// restoring the flag. And a regular file redirected to stdin cannot be registered
/// with the reactor (epoll refuses regular files). So the streams stay blocking and each read or write runs on a
/// pool thread, through the standard library's own handles (`std::io::stdin()` and
/// friends), so output written here and with `println!` stays in order.
///
/// # One state per process
///
/// Every [`Stdin`] shares one buffer and at most one read in flight (the standard
/// input is one stream, whoever reads it), and every [`Stdout`] (or [`Stderr`]) one
/// write in flight. A handle is only a way in: dropping it loses nothing.
///
/// # Cancellation
///
/// Every read, write and flush is a checkpoint, and a cancel wakes it while it waits.
/// A read in flight cannot be interrupted (a terminal may wait for input forever); if
/// its caller is cancelled, the bytes it returns stay in the shared buffer for the
/// next read by any handle. A write returns once the pool has its bytes; they are
/// written even if the caller is cancelled or drops the handle. An error of a write
/// nobody waited for is returned by the next write or flush. Bytes still in flight
/// when the process exits are lost: flush before the program ends. A read whose
/// readers are all gone keeps one pool thread waiting until input or end-of-file
/// arrives (its bytes are kept for a later reader).
pub struct Stdin {
    wait: CancelWait,
}

/// A handle to the process's standard input (cheap; every handle shares one buffer).
///
/// ```
/// let _input = scope_runtime::io::stdin();
/// ```
pub fn stdin() -> Stdin {
    Stdin {
        wait: CancelWait::new(),
    }
}

impl fmt::Debug for Stdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Stdin")
    }
}

impl AsyncRead for Stdin {
    /// Returns buffered bytes first; otherwise waits for the read in flight (starting
    /// one if none is).
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        dst: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.wait.check()?;
        let mut st = STDIN.lock();
        if st.pos < st.buf.len() || dst.is_empty() {
            let n = (st.buf.len() - st.pos).min(dst.len());
            let start = st.pos;
            dst[..n].copy_from_slice(&st.buf[start..start + n]);
            st.pos += n;
            if st.pos == st.buf.len() {
                st.buf.clear();
                st.pos = 0;
            }
            drop(st);
            self.wait.disarm();
            return Poll::Ready(Ok(n));
        }
        if let Some(end) = st.end.take() {
            drop(st);
            self.wait.disarm();
            return Poll::Ready(end.map(|()| 0));
        }
        if !st.reading {
            st.reading = true;
            drop(spawn_blocking(read_job));
        }
        add_waker(&mut st.wakers, cx.waker());
        drop(st);
        self.wait.arm(cx.waker(), WaitingOn::BlockingJob);
        Poll::Pending
    }
}

/// The pool job behind every stdin read: one read into the shared buffer.
fn read_job() {
    let r = std::panic::catch_unwind(|| {
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut input = io::stdin().lock();
        loop {
            match input.read(&mut chunk) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r.map(|n| (chunk, n)),
            }
        }
    })
    .unwrap_or_else(|_| Err(panicked()));
    let wakers = {
        let mut st = STDIN.lock();
        st.reading = false;
        match r {
            Ok((_, 0)) => st.end = Some(Ok(())),
            Ok((chunk, n)) => st.buf.extend_from_slice(&chunk[..n]),
            Err(e) => st.end = Some(Err(e)),
        }
        std::mem::take(&mut st.wakers)
    };
    wake_all(wakers);
}

struct OutState {
    writing: bool,
    /// The error of a write nobody waited for.
    err: Option<io::Error>,
    wakers: Vec<Waker>,
}

impl OutState {
    const fn new() -> OutState {
        OutState {
            writing: false,
            err: None,
            wakers: Vec::new(),
        }
    }
}

static STDOUT: Mutex<OutState> = Mutex::new(OutState::new());
static STDERR: Mutex<OutState> = Mutex::new(OutState::new());

/// One of the output streams: its shared state and how the pool writes to it.
struct Out {
    state: &'static Mutex<OutState>,
    write: fn(&[u8]) -> io::Result<()>,
    wait: CancelWait,
}

fn write_stdout(data: &[u8]) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(data)?;
    out.flush()
}

fn write_stderr(data: &[u8]) -> io::Result<()> {
    io::stderr().lock().write_all(data)
}

impl Out {
    /// Waits until no write is in flight; then returns the pending error, if any.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.wait.check()?;
        let mut st = self.state.lock();
        if st.writing {
            add_waker(&mut st.wakers, cx.waker());
            drop(st);
            self.wait.arm(cx.waker(), WaitingOn::BlockingJob);
            return Poll::Pending;
        }
        let err = st.err.take();
        drop(st);
        self.wait.disarm();
        Poll::Ready(err.map_or(Ok(()), Err))
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, src: &[u8]) -> Poll<io::Result<usize>> {
        self.wait.check()?;
        // One lock from the check to `writing = true`: two handles (maybe on two
        // threads) never both start a write.
        let mut st = self.state.lock();
        if st.writing {
            add_waker(&mut st.wakers, cx.waker());
            drop(st);
            self.wait.arm(cx.waker(), WaitingOn::BlockingJob);
            return Poll::Pending;
        }
        let err = st.err.take();
        if err.is_none() && !src.is_empty() {
            st.writing = true;
        }
        drop(st);
        self.wait.disarm();
        if let Some(e) = err {
            return Poll::Ready(Err(e));
        }
        if src.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let n = src.len().min(WRITE_CHUNK);
        let data = src[..n].to_vec();
        let (state, write) = (self.state, self.write);
        drop(spawn_blocking(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| write(&data)))
                .unwrap_or_else(|_| Err(panicked()));
            let wakers = {
                let mut st = state.lock();
                st.writing = false;
                if let Err(e) = r {
                    st.err.get_or_insert(e);
                }
                std::mem::take(&mut st.wakers)
            };
            wake_all(wakers);
        }));
        Poll::Ready(Ok(n))
    }
}

/// The process's standard output, written on the blocking pool. `poll_write` returns
/// once the pool has the bytes (up to 1 MiB a call); `poll_flush` waits until they
/// were written and flushed. See [`Stdin`] for why the pool, and for cancellation.
///
/// ```
/// use futures::io::AsyncWriteExt;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut out = scope_runtime::io::stdout();
///     out.write_all(b"hello from the pool\n").await.unwrap();
///     out.flush().await.unwrap();
/// });
/// ```
pub struct Stdout(Out);

/// The process's standard error, written on the blocking pool, like [`Stdout`].
///
/// ```
/// use futures::io::AsyncWriteExt;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut err = scope_runtime::io::stderr();
///     err.write_all(b"a warning\n").await.unwrap();
///     err.flush().await.unwrap();
/// });
/// ```
pub struct Stderr(Out);

/// A handle to the process's standard output (every handle shares one write in
/// flight, so writes of several handles stay in order).
///
/// ```
/// let _out = scope_runtime::io::stdout();
/// ```
pub fn stdout() -> Stdout {
    Stdout(Out {
        state: &STDOUT,
        write: write_stdout,
        wait: CancelWait::new(),
    })
}

/// A handle to the process's standard error (every handle shares one write in
/// flight).
///
/// ```
/// let _err = scope_runtime::io::stderr();
/// ```
pub fn stderr() -> Stderr {
    Stderr(Out {
        state: &STDERR,
        write: write_stderr,
        wait: CancelWait::new(),
    })
}

/// `Debug` and `AsyncWrite` for the two output handles, which differ only in the
/// descriptor their `Output` writes to.
macro_rules! output_handle {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($name))
            }
        }

        impl AsyncWrite for $name {
            fn poll_write(
                mut self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.0.poll_write(cx, buf)
            }

            fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.0.poll_idle(cx)
            }

            /// The same as `poll_flush` (the stream itself stays open).
            fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                self.0.poll_idle(cx)
            }
        }
    )*};
}

output_handle!(Stdout, Stderr);

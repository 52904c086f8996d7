//! [`IoSource`]: a `mio` source registered with the current runtime's reactor, and the
//! one loop every readiness-based operation of `io/` goes through.

use std::future::poll_fn;
use std::io;
use std::os::fd::AsRawFd;
use std::task::{Context, Poll, ready};

use mio::Interest;
use mio::event::Source;

use crate::runtime::reactor::{Direction, Registration};

/// A registered `mio` source. Deregistered (then closed) on drop.
pub(crate) struct IoSource<S: Source> {
    reg: Registration,
    /// `None` only after `into_inner`.
    io: Option<S>,
}

impl<S: Source> IoSource<S> {
    /// Registers `io` for `interest` with the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub(crate) fn new(mut io: S, interest: Interest) -> io::Result<IoSource<S>>
    where
        S: AsRawFd,
    {
        let fd = io.as_raw_fd();
        // How the task dump names what a socket is (read only when a dump is taken).
        crate::runtime::observe::set_fd_describer(super::sys::describe_fd);
        let reg = Registration::new(&mut io, fd, interest)?;
        Ok(IoSource { reg, io: Some(io) })
    }

    pub(crate) fn get_ref(&self) -> &S {
        self.io.as_ref().expect("IoSource used after into_inner")
    }

    /// The checkpoint-then-syscall loop (design rule R1):
    ///
    /// 1. If the calling code is cancelled, fail with `Cancelled` (as an `io::Error`)
    ///    **before** touching the source: nothing is read, written or accepted.
    /// 2. While the reactor says `dir` is (or may be) ready, run `op`; `WouldBlock`
    ///    clears the readiness, `Interrupted` retries, anything else is the result.
    /// 3. Not ready: the poll's waker is stored with the reactor, which also registers
    ///    it with the status tree where the calling code runs (R13). A cancellation
    ///    wakes that waker (also inside a combinator), the future is polled again, and
    ///    step 1 reports it.
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        if let Err(c) = crate::check_cancelled() {
            return Poll::Ready(Err(c.into()));
        }
        let io = self.get_ref();
        loop {
            ready!(self.reg.poll_ready(cx, dir))?;
            match op(io) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.reg.clear(dir),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                res => return Poll::Ready(res),
            }
        }
    }

    /// Forgets the readiness for `dir`: the next operation waits for a new event
    /// instead of trying its syscall first. For stream sockets after a short read or
    /// write (see `stream_impls!`).
    pub(crate) fn clear_readiness(&self, dir: Direction) {
        self.reg.clear(dir);
    }

    /// [`poll_io`](Self::poll_io) as a future.
    pub(crate) async fn io<R>(
        &self,
        dir: Direction,
        mut op: impl FnMut(&S) -> io::Result<R>,
    ) -> io::Result<R> {
        poll_fn(|cx| self.poll_io(cx, dir, &mut op)).await
    }

    /// Deregisters and returns the source, with the outcome of the deregistration
    /// (an error when called outside the source's runtime; the source is returned
    /// anyway).
    pub(crate) fn into_inner(mut self) -> (S, io::Result<()>) {
        let mut io = self.io.take().expect("IoSource used after into_inner");
        let res = self.reg.deregister(&mut io);
        (io, res)
    }
}

impl<S: Source> Drop for IoSource<S> {
    fn drop(&mut self) {
        if let Some(mut io) = self.io.take() {
            // Errors are ignored: closing the fd (when `io` drops) removes it anyway.
            let _ = self.reg.deregister(&mut io);
        }
    }
}

impl<S: Source + std::fmt::Debug> std::fmt::Debug for IoSource<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.io {
            Some(io) => io.fmt(f),
            None => f.write_str("IoSource(<taken>)"),
        }
    }
}

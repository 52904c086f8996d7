//! Unix signals on the reactor: [`ctrl_c`] and [`Signal`].
//!
//! # How it works
//!
//! The first listener for a signal installs a process-wide handler (`sigaction`). The
//! handler increments a per-signal delivery counter, then writes one
//! byte to the wake-up pipe of every live listener. Each listener owns one pipe (taken
//! from a process-wide pool, returned on drop, never closed) whose read end is
//! registered with its runtime's reactor. A listener remembers the counter value it
//! last reported; [`Signal::recv`] returns when the counter has moved past it. To be
//! woken correctly it first drains its pipe, then compares the counter, and only then
//! waits for readiness (a delivery after the drain writes a new byte: a new edge).
//!
//! Pipes are not shared between listeners on purpose: `epoll` re-checks a file's
//! readiness before it reports an event, so a listener draining a shared pipe would
//! swallow the wake-up of every other listener (in this or another runtime).
//!
//! Consequences worth knowing:
//!
//! * Deliveries are **coalesced**: several signals between two `recv` calls are
//!   reported once. Deliveries before the listener was created are not reported.
//! * Once a handler is installed it stays for the life of the process; in particular,
//!   after the first `ctrl_c()` a Ctrl-C no longer terminates the process by default —
//!   the program decides (typically by cancelling its top task group).
//! * `SIGKILL`, `SIGSTOP` and the fault signals (`SIGSEGV`, `SIGBUS`, `SIGILL`,
//!   `SIGFPE`) are refused with `InvalidInput`.
//! * At most 256 listeners can exist at once (each holds a pipe); one more fails with
//!   an error. The pool keeps the pipes of dropped listeners for reuse.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;
use futures_core::stream::FusedStream;
use mio::Interest;
use mio::unix::pipe;

use super::source::IoSource;
use super::sys;
use crate::runtime::reactor::Direction;

/// A Unix signal number, with names for the common ones.
///
/// ```
/// use scope_runtime::io::signal::SignalKind;
/// assert_eq!(SignalKind::INTERRUPT.as_raw(), 2);
/// assert_eq!(SignalKind::from_raw(15), SignalKind::TERMINATE);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignalKind(i32);

impl SignalKind {
    /// `SIGINT` (Ctrl-C in a terminal).
    pub const INTERRUPT: SignalKind = SignalKind(libc::SIGINT);
    /// `SIGTERM` (polite termination request, e.g. from `kill` or a service manager).
    pub const TERMINATE: SignalKind = SignalKind(libc::SIGTERM);
    /// `SIGHUP` (terminal closed; by convention also "reload the configuration").
    pub const HANGUP: SignalKind = SignalKind(libc::SIGHUP);
    /// `SIGQUIT` (Ctrl-\ in a terminal).
    pub const QUIT: SignalKind = SignalKind(libc::SIGQUIT);
    /// `SIGUSR1`.
    pub const USER_DEFINED1: SignalKind = SignalKind(libc::SIGUSR1);
    /// `SIGUSR2`.
    pub const USER_DEFINED2: SignalKind = SignalKind(libc::SIGUSR2);
    /// `SIGCHLD` (a child process changed state).
    pub const CHILD: SignalKind = SignalKind(libc::SIGCHLD);
    /// `SIGWINCH` (the terminal was resized).
    pub const WINDOW_CHANGE: SignalKind = SignalKind(libc::SIGWINCH);

    /// Any signal number (checked when a [`Signal`] is created).
    ///
    /// ```
    /// use scope_runtime::io::signal::SignalKind;
    /// assert_eq!(SignalKind::from_raw(10).as_raw(), 10);
    /// ```
    pub const fn from_raw(signum: i32) -> SignalKind {
        SignalKind(signum)
    }

    /// The signal number.
    ///
    /// ```
    /// use scope_runtime::io::signal::SignalKind;
    /// assert_eq!(SignalKind::TERMINATE.as_raw(), 15);
    /// ```
    pub const fn as_raw(self) -> i32 {
        self.0
    }
}

/// The wake-up pipes of dropped listeners, kept for reuse: (slot, read end).
static FREE_PIPES: parking_lot::Mutex<Vec<(usize, OwnedFd)>> = parking_lot::Mutex::new(Vec::new());

/// The next never-used slot.
static NEXT_SLOT: parking_lot::Mutex<usize> = parking_lot::Mutex::new(0);

/// Takes a wake-up pipe (reused or new) and its slot; the slot is not active yet.
fn take_pipe() -> io::Result<(usize, OwnedFd)> {
    if let Some(p) = FREE_PIPES.lock().pop() {
        return Ok(p);
    }
    let mut next = NEXT_SLOT.lock();
    if *next >= sys::WAKE_SLOTS {
        return Err(io::Error::other(format!(
            "too many signal listeners at once (at most {})",
            sys::WAKE_SLOTS
        )));
    }
    let (tx, rx) = pipe::new()?;
    let slot = *next;
    *next += 1;
    sys::set_wake_slot(slot, OwnedFd::from(tx));
    Ok((slot, OwnedFd::from(rx)))
}

/// A listener for one Unix signal, registered with the current runtime's reactor.
///
/// Created with [`Signal::new`], which installs the handler right away: a signal
/// delivered after `new` returns is never missed, even before the first
/// [`recv`](Self::recv). See the [module doc](self) for the details.
///
/// ```
/// use scope_runtime::io::signal::{Signal, SignalKind};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut usr1 = Signal::new(SignalKind::USER_DEFINED1).unwrap();
///     // Deliver SIGUSR1 to ourselves (here via the `kill` command).
///     let pid = std::process::id().to_string();
///     std::process::Command::new("kill").args(["-USR1", &pid]).status().unwrap();
///     usr1.recv().await.unwrap();
/// });
/// ```
pub struct Signal {
    kind: SignalKind,
    /// This listener's wake-up pipe slot.
    slot: usize,
    /// The read end of the slot's pipe. `None` only while dropping.
    pipe: Option<IoSource<pipe::Receiver>>,
    /// The delivery counter value already reported.
    seen: u64,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("kind", &self.kind)
            .field("seen", &self.seen)
            .finish_non_exhaustive()
    }
}

impl Signal {
    /// Installs the handler for `kind` (once per process) and starts listening.
    ///
    /// ```
    /// use scope_runtime::io::signal::{Signal, SignalKind};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     assert!(Signal::new(SignalKind::HANGUP).is_ok());
    ///     let err = Signal::new(SignalKind::from_raw(9)).unwrap_err(); // SIGKILL
    ///     assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn new(kind: SignalKind) -> io::Result<Signal> {
        sys::check_signal(kind.0)?;
        let (slot, read_end) = take_pipe()?;
        // On failure the read end is closed and the slot is retired (rare: epoll_ctl
        // failing for a fresh pipe means the process is out of memory or fds).
        let pipe = IoSource::new(pipe::Receiver::from(read_end), Interest::READABLE)?;
        sys::set_wake_slot_active(slot, true);
        // Read the counter after activating the pipe and before installing: a
        // delivery in between is reported (at worst as a spurious extra wake-up).
        let seen = sys::signal_generation(kind.0);
        let signal = Signal {
            kind,
            slot,
            pipe: Some(pipe),
            seen,
        };
        sys::install_signal_handler(kind.0)?;
        Ok(signal)
    }

    /// Which signal this listens for.
    ///
    /// ```
    /// use scope_runtime::io::signal::{Signal, SignalKind};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let s = Signal::new(SignalKind::USER_DEFINED2).unwrap();
    ///     assert_eq!(s.kind(), SignalKind::USER_DEFINED2);
    /// });
    /// ```
    pub fn kind(&self) -> SignalKind {
        self.kind
    }

    /// Waits until the signal is delivered (at least once since the last `recv`, or
    /// since the listener was created). A checkpoint: cancelled, it returns
    /// `Cancelled` and a delivery in the meantime is still reported by the next call.
    ///
    /// ```
    /// use scope_runtime::io::signal::{Signal, SignalKind};
    /// use scope_runtime::move_on_after;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut s = Signal::new(SignalKind::WINDOW_CHANGE).unwrap();
    ///     // No delivery: the deadline cancels the wait.
    ///     let r = move_on_after(Duration::from_millis(10), s.recv()).await;
    ///     assert!(r.unwrap().is_none());
    /// });
    /// ```
    pub async fn recv(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The poll form of [`recv`](Self::recv).
    ///
    /// ```
    /// use scope_runtime::io::signal::{Signal, SignalKind};
    /// use std::task::Poll;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut s = Signal::new(SignalKind::WINDOW_CHANGE).unwrap();
    ///     let first = std::future::poll_fn(|cx| Poll::Ready(s.poll_recv(cx).is_pending())).await;
    ///     assert!(first, "nothing was delivered yet");
    /// });
    /// ```
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let signum = self.kind.0;
        let seen = &mut self.seen;
        let mut scratch = [0u8; 64];
        // `poll_io` checks for cancellation, then runs the closure while the pipe may
        // be readable: drain it (WouldBlock clears readiness), then compare counters.
        let pipe = self.pipe.as_ref().expect("Signal used while dropping");
        let res = pipe.poll_io(cx, Direction::Read, |mut rx| {
            loop {
                match rx.read(&mut scratch) {
                    Ok(0) => return Err(io::Error::other("the signal pipe was closed")),
                    Ok(_) => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => return Err(e),
                }
            }
            let now = sys::signal_generation(signum);
            if now != *seen {
                *seen = now;
                Ok(())
            } else {
                Err(io::ErrorKind::WouldBlock.into())
            }
        });
        ready!(res)?;
        Poll::Ready(Ok(()))
    }
}

impl Drop for Signal {
    fn drop(&mut self) {
        sys::set_wake_slot_active(self.slot, false);
        if let Some(pipe) = self.pipe.take() {
            // Deregister and keep the pipe for the next listener (stale bytes in it
            // only cause one spurious check there). Dropped outside its runtime, the
            // read end may still be in that runtime's epoll set: close it and retire
            // the slot instead (its write end stays open, inactive, as promised).
            let (rx, deregistered) = pipe.into_inner();
            if deregistered.is_ok() {
                FREE_PIPES.lock().push((self.slot, OwnedFd::from(rx)));
            }
        }
    }
}

/// A [`Signal`] is an endless stream of deliveries: each item is what
/// [`recv`](Signal::recv) returns, `Ok(())` for one or more deliveries since the
/// previous item (deliveries are coalesced), never `None`.
///
/// Polled in cancelled code — before or while it waits; the cancellation wakes the
/// waiting poll, also inside `futures` combinators — it yields the `Cancelled` as an
/// `io::Error` (recognised by [`CancelError`](crate::CancelError)), and a delivery in
/// the meantime is still reported by the first poll that is not cancelled.
/// Cancellation stays in force until control leaves the cancelled scope, so every poll
/// there yields it again: a loop that stops at errors (`while let Some(s) =
/// signals.next().await { s?; .. }`) leaves at the first one.
///
/// ```
/// use futures::StreamExt;
/// use scope_runtime::io::signal::{Signal, SignalKind};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut hangups = Signal::new(SignalKind::HANGUP)?;
///     let pid = std::process::id().to_string();
///     std::process::Command::new("kill").args(["-HUP", &pid]).status()?;
///     // A configuration-reload loop would be `while let Some(d) = hangups.next().await`.
///     let delivery = hangups.next().await.expect("the stream never ends");
///     assert!(delivery.is_ok());
///     Ok::<_, std::io::Error>(())
/// }).unwrap();
/// ```
impl Stream for Signal {
    type Item = io::Result<()>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

/// Never terminated: deliveries do not end.
impl FusedStream for Signal {
    fn is_terminated(&self) -> bool {
        false
    }
}

/// Completes when the process receives `SIGINT` (Ctrl-C). See [`ctrl_c`].
///
/// It completes once; for a stream of Ctrl-Cs, use
/// `Signal::new(SignalKind::INTERRUPT)`, which is a [`Stream`].
///
/// ```
/// use scope_runtime::io::signal;
/// use scope_runtime::move_on_after;
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     // No Ctrl-C arrives: the deadline cancels the wait.
///     let r = move_on_after(Duration::from_millis(10), signal::ctrl_c()).await;
///     assert!(r.unwrap().is_none());
/// });
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct CtrlC {
    signal: Option<io::Result<Signal>>,
}

impl fmt::Debug for CtrlC {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CtrlC").finish_non_exhaustive()
    }
}

/// Waits for Ctrl-C (`SIGINT`).
///
/// The handler is installed when `ctrl_c()` is **called**, not when the future is
/// first polled, so a Ctrl-C that arrives in between is not missed. Awaiting is a
/// checkpoint. The typical use cancels the program's top task group:
///
/// ```no_run
/// use scope_runtime::{task_group, io::signal};
///
/// # scope_runtime::Runtime::new().unwrap().block_on(async {
/// task_group(|tg| async move {
///     let stop = tg.clone();
///     tg.spawn(async move {
///         signal::ctrl_c().await?;
///         stop.cancel(); // every task of the group sees Cancelled
///         Ok(())
///     });
///     // ... spawn the real work here ...
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # });
/// ```
///
/// ```
/// // Testable without a terminal: send SIGINT to ourselves.
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let ctrl_c = scope_runtime::io::signal::ctrl_c(); // handler installed here
///     let pid = std::process::id().to_string();
///     std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
///     ctrl_c.await.unwrap();
/// });
/// ```
///
/// # Panics
///
/// Outside a runtime.
pub fn ctrl_c() -> CtrlC {
    CtrlC {
        signal: Some(Signal::new(SignalKind::INTERRUPT)),
    }
}

impl Future for CtrlC {
    type Output = io::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.signal {
            Some(Ok(s)) => s.poll_recv(cx),
            Some(Err(_)) => match self.signal.take() {
                Some(Err(e)) => Poll::Ready(Err(e)),
                _ => unreachable!(),
            },
            None => panic!("CtrlC polled after completion"),
        }
    }
}

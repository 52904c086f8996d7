//! hyper on this runtime, with no glue code (cargo feature `hyper`).
//!
//! With the feature on:
//!
//! * [`TcpStream`], [`UnixStream`] and their halves ([`ReadHalf`], [`WriteHalf`])
//!   implement hyper's [`Read`] / [`Write`]
//!   traits: pass a stream straight to `serve_connection` or `handshake`.
//! * [`HyperTimer`] implements [`hyper::rt::Timer`] on the
//!   runtime's clock (also the paused clock of tests): give it to a builder's
//!   `.timer(...)` to get hyper's timeouts (`header_read_timeout`, HTTP/2 keep-alive,
//!   the client pool's idle timer).
//! * [`GroupExecutor`](crate::GroupExecutor) implements
//!   [`hyper::rt::Executor`] by spawning into a
//!   [`TaskGroup`](crate::TaskGroup): the tasks hyper starts (HTTP/2 streams and
//!   connections) are children of your group and are cancelled with it.
//!
//! # What is a checkpoint, and how a connection is cancelled
//!
//! * **Reads and writes** through these traits are the stream's own reads and writes:
//!   checkpoints. In cancelled code they transfer nothing and fail with an
//!   [`io::Error`] that wraps `Cancelled`; a cancellation that arrives while hyper
//!   waits for the socket wakes that wait at once. With a request in flight, hyper
//!   hands the error back inside its own `hyper::Error`, and the scope or task group
//!   that was cancelled still recognises the `Cancelled` in it, so `conn.await?` in a
//!   cancelled connection task ends the task as *cancelled*, not *failed*. Between
//!   requests, hyper takes a failed read as the end of the connection: `conn.await`
//!   returns `Ok(())` and the socket is closed.
//! * **Shutting down** (`poll_shutdown`) is not a checkpoint: cleanup must work in
//!   cancelled code. A peer that already closed counts as done (`Ok`).
//! * **[`HyperSleep`]** is not a checkpoint. In cancelled code it does not fire: firing
//!   would make hyper report a timeout, hiding the cancellation. The connection learns
//!   of the cancellation from its socket instead (see above).
//! * **Tasks spawned through `GroupExecutor`** run as [`cancellable`](crate::cancellable)
//!   children of the group: cancelling the group drops them (hyper's HTTP/2 stream
//!   tasks wait on hyper's own state, which knows nothing of our scopes).
//!
//! So cancelling a server's task group stops everything: every connection task fails
//! its next socket operation with `Cancelled`, hyper drops the connection (closing the
//! socket), the group absorbs its own cancellation. For a *graceful* stop, call the
//! connection's `graceful_shutdown()` first and cancel only after a grace period
//! (`examples/http_server.rs` does both).
//!
//! # Example
//!
//! A server and a client on one runtime, each connection a task in one group:
//!
//! ```
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Empty, Full};
//! use hyper::{Request, Response, body::Incoming, service::service_fn};
//! use scope_runtime::io::hyper::HyperTimer;
//! use scope_runtime::io::{TcpListener, TcpStream};
//! use scope_runtime::{BoxError, task_group};
//! use std::convert::Infallible;
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from("hello"))))
//! }
//!
//! scope_runtime::Runtime::new()?.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     let addr = listener.local_addr()?;
//!     task_group(|tg| async move {
//!         tg.spawn(async move {
//!             let (stream, _) = listener.accept().await?;
//!             hyper::server::conn::http1::Builder::new()
//!                 .timer(HyperTimer)
//!                 .serve_connection(stream, service_fn(hello))
//!                 .await?;
//!             Ok(())
//!         });
//!         let stream = TcpStream::connect(addr).await?;
//!         let (mut sender, conn) = hyper::client::conn::http1::handshake(stream).await?;
//!         tg.spawn(async move { Ok(conn.await?) });
//!         let resp = sender.send_request(Request::new(Empty::<Bytes>::new())).await?;
//!         let body = resp.into_body().collect().await?.to_bytes();
//!         assert_eq!(body, "hello");
//!         Ok(()) // `sender` drops: both connections end, the group ends
//!     })
//!     .await?;
//!     Ok::<(), BoxError>(())
//! })?;
//! # Ok::<(), BoxError>(())
//! ```

use std::future::Future;
use std::io::{self, IoSlice};
use std::net::Shutdown;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};
use std::time::{Duration, Instant};

use ::hyper::rt::{Read, ReadBufCursor, Sleep as HyperSleepTrait, Timer, Write};

use super::split::sealed::Stream;
use super::split::{ReadHalf, WriteHalf};
use super::tcp::TcpStream;
use super::unix::UnixStream;
use crate::runtime::{Sleep, sleep, sleep_until, try_with_core};

/// Reads into the unfilled part of hyper's buffer, straight from the socket (no
/// zeroing, no copy).
fn read_into_cursor<S: Stream>(
    stream: &S,
    cx: &mut Context<'_>,
    mut buf: ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: the unfilled part goes to `recv(2)`, which only writes to it: no byte
    // that was initialised before is de-initialised.
    let dst = unsafe { buf.as_mut() };
    let n = ready!(stream.poll_read_uninit_priv(cx, dst))?;
    // SAFETY: `recv` initialised the first `n` bytes of the unfilled part, and `n` is
    // at most its length.
    unsafe { buf.advance(n) };
    Poll::Ready(Ok(()))
}

/// hyper's `Read` and `Write` for a whole stream type.
macro_rules! hyper_stream_impls {
    ($t:ty) => {
        /// hyper's reads are this stream's reads: checkpoints that consume nothing
        /// when cancelled (see the [`hyper` module](crate::io::hyper)).
        impl Read for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                read_into_cursor(&*self, cx, buf)
            }
        }

        /// hyper's writes are this stream's writes: checkpoints that write nothing
        /// when cancelled. Shutdown is not a checkpoint; a peer that already closed
        /// counts as done.
        impl Write for $t {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_priv(cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                self.poll_write_vectored_priv(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(self.shutdown_priv(Shutdown::Write))
            }
        }
    };
}

hyper_stream_impls!(TcpStream);
hyper_stream_impls!(UnixStream);

/// hyper's reads on the read half: checkpoints, as on the whole stream.
impl<S: Stream> Read for ReadHalf<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        read_into_cursor(&*self.inner, cx, buf)
    }
}

/// hyper's writes on the write half: checkpoints, as on the whole stream;
/// `poll_shutdown` shuts down the write direction (not a checkpoint).
impl<S: Stream> Write for WriteHalf<S> {
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

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.inner.shutdown_priv(Shutdown::Write))
    }
}

/// hyper's [`Timer`] on the runtime's clock.
///
/// Give it to a hyper builder (`.timer(HyperTimer)`) to enable hyper's timeouts. Its
/// [`now`](::hyper::rt::Timer::now) is the runtime's [`now`](crate::now), so hyper's
/// deadlines follow the paused clock in tests. The sleeps it makes are
/// [`HyperSleep`]s.
///
/// ```
/// use hyper::rt::Timer;
/// use scope_runtime::io::hyper::HyperTimer;
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build().unwrap();
/// rt.block_on(async {
///     let t0 = HyperTimer.now();
///     HyperTimer.sleep(Duration::from_secs(30)).await; // virtual time: returns at once
///     assert_eq!(scope_runtime::now() - t0, Duration::from_secs(30));
/// });
/// ```
///
/// A hyper server with a header timeout:
///
/// ```
/// use scope_runtime::io::hyper::HyperTimer;
/// use std::time::Duration;
///
/// let mut builder = hyper::server::conn::http1::Builder::new();
/// builder.timer(HyperTimer).header_read_timeout(Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HyperTimer;

impl Timer for HyperTimer {
    /// A sleep of `duration` from now.
    ///
    /// # Panics
    ///
    /// Outside a runtime (hyper calls it from the connection's future, which runs on
    /// one).
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn HyperSleepTrait>> {
        Box::pin(HyperSleep::new(sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn HyperSleepTrait>> {
        Box::pin(HyperSleep::new(sleep_until(deadline)))
    }

    /// The runtime's clock; outside a runtime, the system's.
    fn now(&self) -> Instant {
        try_with_core(|core| core.now()).unwrap_or_else(Instant::now)
    }

    /// Moves a [`HyperSleep`] to `new_deadline` in place (no allocation, and no timer
    /// work at all when the deadline moves later, see [`HyperSleep`]); any other sleep
    /// is replaced.
    fn reset(&self, sleep: &mut Pin<Box<dyn HyperSleepTrait>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(ours) => ours.get_mut().reset_to(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// The sleep of [`HyperTimer`]: the runtime's [`Sleep`] with hyper's output type `()`.
///
/// `Send + Sync` as hyper requires: the runtime's `Sleep` is plain data (its deadline,
/// a key of its timer, a key of its cancel registration), and each key names its
/// runtime, so a sleep that moved is only ever acted on by the runtime it was
/// registered with. Polling it outside a runtime panics, as any `Sleep` does.
///
/// **Not a checkpoint.** Polled in cancelled code it stays pending instead of firing
/// or failing (hyper's sleeps cannot fail, and firing would turn a cancellation into
/// a hyper timeout error). It fires normally when polled again outside the
/// cancellation (under a shield, say). A connection in cancelled code ends through its
/// socket, whose reads and writes are checkpoints.
///
/// ```
/// use hyper::rt::Timer;
/// use scope_runtime::io::hyper::HyperTimer;
/// use scope_runtime::{CancelScope, Cancelled};
/// use std::future::{Future, poll_fn};
/// use std::task::Poll;
/// use std::time::Duration;
///
/// let rt = scope_runtime::Runtime::builder().paused_clock(true).build().unwrap();
/// rt.block_on(async {
///     let t0 = scope_runtime::now();
///     HyperTimer.sleep(Duration::from_secs(5)).await;
///     assert_eq!(scope_runtime::now() - t0, Duration::from_secs(5));
///
///     // In cancelled code a due sleep neither fires nor fails.
///     let scope = CancelScope::new();
///     scope.cancel();
///     let mut due = HyperTimer.sleep(Duration::ZERO);
///     let polled = scope.run(async {
///         let first = poll_fn(|cx| Poll::Ready(due.as_mut().poll(cx))).await;
///         Ok::<_, Cancelled>(first)
///     });
///     assert!(polled.await.unwrap().unwrap().is_pending());
///     due.await; // outside the cancelled scope it fires
/// });
/// ```
#[derive(Debug)]
#[must_use = "futures do nothing unless awaited"]
pub struct HyperSleep {
    /// When hyper wants it to fire (`None`: never).
    deadline: Option<Instant>,
    /// The runtime's timer. Its deadline is at or before `deadline`: a reset to a
    /// later deadline keeps it, and when it fires early it is re-armed. hyper resets
    /// its header-read timeout on every request, always to a later deadline, so a busy
    /// keep-alive connection does no timer work per request.
    sleep: Sleep,
    /// The waker the armed timer wakes. Polling again with the same waker before the
    /// timer is due changes nothing, so such a poll returns at once.
    armed: Option<Waker>,
}

impl HyperSleep {
    fn new(sleep: Sleep) -> HyperSleep {
        HyperSleep {
            deadline: sleep.deadline(),
            sleep,
            armed: None,
        }
    }

    /// When it fires (`None`: never).
    ///
    /// ```
    /// use scope_runtime::io::hyper::HyperSleep;
    /// use hyper::rt::Timer;
    /// use std::time::Instant;
    ///
    /// let at = Instant::now();
    /// let s = scope_runtime::io::hyper::HyperTimer.sleep_until(at);
    /// let mut s = s;
    /// let ours = s.as_mut().downcast_mut_pin::<HyperSleep>().unwrap();
    /// assert_eq!(ours.deadline(), Some(at));
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn reset_to(&mut self, at: Instant) {
        self.deadline = Some(at);
        if self.sleep.deadline().is_none_or(|armed| armed > at) {
            // Earlier than the timer: a new one (the old one is removed as it drops).
            self.sleep = sleep_until(at);
            self.armed = None;
        }
    }

    fn due(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| d <= now)
    }

    /// A fresh runtime sleep for `deadline` (nothing registered until polled).
    fn rearm(&mut self) {
        self.sleep = match self.deadline {
            Some(at) => sleep_until(at),
            None => sleep(Duration::MAX),
        };
        self.armed = None;
    }
}

impl Future for HyperSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let timer_due = |s: &Sleep| s.deadline().is_some_and(|d| d <= crate::now());
        if this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) && !timer_due(&this.sleep) {
            return Poll::Pending;
        }
        loop {
            match Pin::new(&mut this.sleep).poll(cx) {
                Poll::Pending => {
                    if !this.armed.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                        this.armed = Some(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Ok(())) => {
                    if this.due(crate::now()) {
                        this.armed = None;
                        return Poll::Ready(());
                    }
                    // The timer fired for an earlier deadline than the one hyper set
                    // since: arm it for the real one.
                    this.rearm();
                }
                Poll::Ready(Err(_cancelled)) => {
                    // The code polling is cancelled. Stay pending without a
                    // registration (whatever cancelled us wakes the task's
                    // checkpoints), and start afresh at the next poll.
                    this.rearm();
                    return Poll::Pending;
                }
            }
        }
    }
}

// Compiles only because `HyperSleep` (so the runtime's `Sleep`) is `Send + Sync` by
// itself: no `unsafe impl` anywhere.
impl HyperSleepTrait for HyperSleep {}

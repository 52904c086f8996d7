//! I/O on the runtime's reactor: TCP, UDP, Unix sockets, signals, a blocking pool, and
//! file-system helpers — every operation cancellable.
//!
//! # Cancellation contract
//!
//! Every operation that can block is a **checkpoint** (see [`semantics`](crate::semantics)):
//!
//! 1. If the calling code is cancelled, the operation fails with `Cancelled` — as an
//!    [`std::io::Error`] that [`CancelError::as_cancelled`](crate::CancelError) recognises,
//!    so `?` carries it to the scope that absorbs it — **before** it touches the
//!    socket: nothing is read, written, accepted, sent or received.
//! 2. Otherwise the syscall is tried. If it would block, the task waits for readiness;
//!    a cancellation wakes it and step 1 reports it.
//! 3. A syscall that moved data returns what it moved: a partial write is `Ok(n)`.
//!
//! So a cancelled read followed by a new read loses no byte, and no write is silently
//! dropped.
//!
//! # Progress of the looping helpers survives cancellation
//!
//! A helper that loops may be cancelled after it already moved some bytes. None of
//! them loses those bytes:
//!
//! * [`read_exact`] and [`write_all`] work on a [`Cursor`](std::io::Cursor): its
//!   position is how far they got, updated after every partial transfer. After an
//!   error (including `Cancelled`) the cursor says exactly which bytes were read or
//!   written; calling again with the same cursor resumes.
//! * [`read_to_end`] appends to a `Vec`: what was read stays in it.
//! * [`copy`] reads through an [`AsyncBufRead`](futures_io::AsyncBufRead) (e.g. a
//!   [`BufReader`]) and consumes only what was written: bytes read but not yet written
//!   stay in the reader's buffer.
//!
//! Operations that run on the blocking pool differ in one documented way:
//! [`spawn_blocking`]'s handle and [`lookup_host`] return `Cancelled` at once and
//! detach the job; [`fs`] path functions, once started, finish and report their
//! result (their effect cannot be taken back); and a [`fs::File`], a
//! [`fs::ReadDir`] or a standard stream ([`stdin()`], [`stdout()`], [`stderr()`])
//! returns `Cancelled` at once while keeping the job's result for its next operation.
//!
//! ```
//! use scope_runtime::io::{TcpListener, TcpStream};
//! use scope_runtime::CancelScope;
//!
//! scope_runtime::Runtime::new().unwrap().block_on(async {
//!     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
//!     let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
//!     let (s, _) = l.accept().await.unwrap();
//!
//!     // A cancelled read consumes nothing...
//!     let scope = CancelScope::new();
//!     scope.cancel();
//!     c.write(b"kept").await.unwrap();
//!     let mut buf = [0u8; 4];
//!     let r = scope.run(async { s.read(&mut buf).await }).await;
//!     assert!(matches!(r, Ok(None))); // the scope absorbed its Cancelled
//!     // ...so the next read gets every byte.
//!     assert_eq!(s.read(&mut buf).await.unwrap(), 4);
//!     assert_eq!(&buf, b"kept");
//! });
//! ```
//!
//! # Map
//!
//! * [`TcpListener`], [`TcpStream`], [`UdpSocket`], [`UnixListener`], [`UnixStream`],
//!   [`UnixDatagram`] — sockets registered with the runtime's reactor. A listener's
//!   `incoming()` ([`TcpIncoming`], [`UnixIncoming`]) is a `futures` `Stream` of
//!   connections. Streams
//!   implement the `futures-io` [`AsyncRead`](futures_io::AsyncRead) /
//!   [`AsyncWrite`](futures_io::AsyncWrite) traits (also on `&TcpStream`), split into
//!   [`ReadHalf`] / [`WriteHalf`], and [`BufReader`] adds
//!   [`AsyncBufRead`](futures_io::AsyncBufRead).
//! * [`TcpSocket`] — a TCP socket configured before it listens or connects
//!   (`SO_REUSEADDR`, `SO_REUSEPORT`, backlog, `TCP_NODELAY`, buffer sizes).
//! * [`open_tcp_stream`] / [`TcpConnect`] — connect to a host name with Happy Eyeballs
//!   (staggered attempts over its addresses, the first connection wins, the others are
//!   closed); [`ConnectError`] lists each address's error when none answers. To serve
//!   connections, see [`serve_tcp`](crate::serve_tcp).
//! * [`read`], [`write()`], [`read_exact`], [`write_all`],
//!   [`read_to_end`], [`copy`] — helpers over the `futures-io` traits.
//! * [`spawn_blocking`] — the blocking pool; [`lookup_host`] / [`ToSocketAddrs`] — DNS
//!   through it; [`fs`] — files and directories through it ([`fs::File`] with the
//!   `futures-io` traits, [`fs::OpenOptions`], [`fs::read_dir`]).
//! * [`stdin()`], [`stdout()`], [`stderr()`] — the standard streams with the
//!   `futures-io` traits, through the pool (the shared descriptors stay blocking).
//! * [`signal`] — `ctrl_c()` and Unix signals through a self-pipe on the reactor (a
//!   [`Signal`](signal::Signal) is also a `Stream` of deliveries);
//!   [`dump_on_sigquit`] prints the task dump on `SIGQUIT`.
//! * `hyper` (cargo feature `hyper`) — hyper's `Read` / `Write` on the streams, a
//!   `Timer`; with `GroupExecutor` at the crate root, hyper runs with no glue code.
//! * [`process`] — child processes: [`Command`](process::Command) →
//!   [`Child`](process::Child), waits that terminate the child when cancelled, pipes
//!   with the `futures-io` traits.
//!
//! Internals: `source` (the checkpoint-then-syscall loop every socket operation uses),
//! `sys` (all platform code and `unsafe`: `sigaction`, `listen`, `pidfd_open`, `kill`).
//!
//! I/O objects belong to the runtime they were created on; waiting on one from another
//! runtime is an error. Only Unix is supported.

mod addr;
mod blocking;
mod connect;
mod dump_signal;
pub mod fs;
#[cfg(feature = "hyper")]
pub mod hyper;
pub mod process;
pub mod signal;
mod socket;
mod source;
mod split;
mod stdio;
pub(crate) mod sys;
mod tcp;
mod udp;
mod unix;
mod util;

pub use addr::{ToSocketAddrs, lookup_host};
pub use blocking::{
    BLOCKING_IDLE_TIMEOUT, BLOCKING_MAX_THREADS, BlockingHandle, blocking_threads, spawn_blocking,
};
pub use connect::{ConnectError, DEFAULT_ATTEMPT_DELAY, TcpConnect, open_tcp_stream};
pub use dump_signal::dump_on_sigquit;
pub(crate) use dump_signal::wanted_by_env as dump_on_sigquit_wanted;
pub use socket::TcpSocket;
pub use split::{ReadHalf, ReuniteError, WriteHalf};
pub use stdio::{Stderr, Stdin, Stdout, stderr, stdin, stdout};
/// For `serve_tcp` (`scope/serve.rs`): how an accept error is handled.
pub(crate) use sys::{AcceptErrorClass, classify_accept_error};
pub use tcp::{TcpIncoming, TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixDatagram, UnixIncoming, UnixListener, UnixStream};
pub use util::{BufReader, copy, read, read_exact, read_to_end, write, write_all};

//! [`serve_tcp`] / [`ServeTcp`]: an accept loop whose connections run as children of a
//! task group, each behind its own error boundary.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use super::TaskGroup;
use crate::io::{AcceptErrorClass, TcpListener, TcpStream, classify_accept_error};
use crate::runtime::cancel::{BoxError, CancelError, find_cancelled};
use crate::runtime::{catch_unwind, sleep};

/// How long [`ServeTcp`] waits before accepting again after the system ran out of a
/// resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`), unless set with
/// [`ServeTcp::accept_backoff`].
pub const DEFAULT_ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves every connection of `listener` with `handler`, each as a child task of one
/// task group; the same as `ServeTcp::new(listener, handler).run()`, which reports
/// errors on standard error. See [`ServeTcp`] for the rules.
///
/// ```
/// use scope_runtime::io::{TcpListener, TcpStream, read_to_end};
/// use scope_runtime::{BoxError, serve_tcp, task_group};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     task_group(|tg| async move {
///         let server = tg.clone();
///         tg.spawn(async move {
///             serve_tcp(listener, |stream: TcpStream, _peer| async move {
///                 stream.write(b"hello").await?;
///                 Ok::<_, std::io::Error>(())
///             })
///             .await?;
///             Ok(())
///         });
///         let mut client = TcpStream::connect(addr).await?;
///         let mut got = Vec::new();
///         read_to_end(&mut client, &mut got).await?;
///         assert_eq!(got, b"hello");
///         server.cancel(); // stops the server (and anything it still runs)
///         Ok::<_, BoxError>(())
///     })
///     .await?;
///     Ok::<_, BoxError>(())
/// }).unwrap();
/// ```
pub async fn serve_tcp<H, Fut, E>(listener: TcpListener, handler: H) -> io::Result<()>
where
    H: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = Result<(), E>> + 'static,
    E: Into<BoxError> + 'static,
{
    ServeTcp::new(listener, handler).run().await
}

/// A TCP server loop: accepts connections and runs `handler(stream, peer)` for each
/// one as a child task of a task group, until it is cancelled.
///
/// * **Per-connection error boundary.** A handler that returns an error, or panics,
///   ends only its own connection: the error goes to the [`on_error`](Self::on_error)
///   callback (by default it is printed on standard error) as a
///   [`ServeError::Handler`], and the server goes on. A handler that returns
///   `Cancelled` (because the server is being cancelled) is not an error.
/// * **Cancellation ends the server.** [`run`](Self::run) is a checkpoint: when the
///   code around it is cancelled, the accept loop stops, every live connection's
///   handler is cancelled at its next checkpoint, and `run` returns `Cancelled` (as an
///   `io::Error`) once they have all finished — so a scope around the server absorbs
///   it. Cancelling a scope around `run` is how a server is stopped.
/// * **Accept errors.** When the system runs out of a resource (`EMFILE`, `ENFILE`:
///   no file descriptor left; `ENOBUFS`, `ENOMEM`) the error is reported as
///   [`ServeError::Accept`] and the loop sleeps for the [backoff](Self::accept_backoff)
///   (100 ms unless set) before it accepts again: no spinning, no stopping — a
///   connection that ends frees a descriptor. An error about one pending connection
///   (`ECONNABORTED`, `ECONNRESET`, `EPROTO`, `EPERM`, and the network errors Linux
///   reports at accept: `ENETDOWN`, `ENETUNREACH`, `EHOSTDOWN`, `EHOSTUNREACH`,
///   `ENOPROTOOPT`, `EOPNOTSUPP`, `ETIMEDOUT`; and `EINTR`) is skipped: the loop accepts
///   the next one at once. Any other accept error (`EBADF`, `EINVAL`, ...: the listener
///   itself is broken) is **fatal**: the live connections are cancelled and `run`
///   returns that error once they finished.
///
/// `handler` itself is called in the accept loop, for each connection: keep it quick
/// (the work belongs in the future it returns, which runs as the connection's task),
/// and a panic in it (not in its future) is the server's own panic.
///
/// `run` never returns `Ok`.
///
/// ```
/// use scope_runtime::io::{TcpListener, TcpStream, read_to_end};
/// use scope_runtime::{BoxError, ServeError, ServeTcp, move_on_after};
/// use std::cell::RefCell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     let failures = Rc::new(RefCell::new(Vec::new()));
///     let seen = failures.clone();
///     let server = ServeTcp::new(listener, |stream: TcpStream, _peer| async move {
///         stream.write(b"bye").await?;
///         Err::<(), BoxError>("this handler always fails".into())
///     })
///     .on_error(move |e: ServeError| seen.borrow_mut().push(e.to_string()));
///
///     // Run the server for a while beside a client.
///     let client = async {
///         let mut c = TcpStream::connect(addr).await?;
///         let mut got = Vec::new();
///         read_to_end(&mut c, &mut got).await?;
///         assert_eq!(got, b"bye");
///         Ok::<_, std::io::Error>(())
///     };
///     let (served, client) = futures::join!(
///         move_on_after(Duration::from_millis(200), server.run()),
///         client,
///     );
///     client?;
///     assert!(served?.is_none()); // the deadline stopped it
///     assert_eq!(failures.borrow().len(), 1);
///     assert!(failures.borrow()[0].contains("this handler always fails"));
///     Ok::<_, BoxError>(())
/// }).unwrap();
/// ```
#[must_use = "a ServeTcp does nothing until `run` is awaited"]
pub struct ServeTcp<H> {
    listener: TcpListener,
    handler: H,
    on_error: Rc<RefCell<dyn FnMut(ServeError)>>,
    backoff: Duration,
}

impl<H> fmt::Debug for ServeTcp<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeTcp")
            .field("listener", &self.listener)
            .field("backoff", &self.backoff)
            .finish_non_exhaustive()
    }
}

impl<H, Fut, E> ServeTcp<H>
where
    H: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = Result<(), E>> + 'static,
    E: Into<BoxError> + 'static,
{
    /// A server of `listener`'s connections with `handler`; errors are printed on
    /// standard error until [`on_error`](Self::on_error) says otherwise.
    ///
    /// ```
    /// use scope_runtime::ServeTcp;
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let server = ServeTcp::new(l, |_s: TcpStream, _peer| async { Ok::<_, std::io::Error>(()) });
    ///     # drop(server);
    /// });
    /// ```
    pub fn new(listener: TcpListener, handler: H) -> ServeTcp<H> {
        ServeTcp {
            listener,
            handler,
            on_error: Rc::new(RefCell::new(|e: ServeError| eprintln!("serve_tcp: {e}"))),
            backoff: DEFAULT_ACCEPT_BACKOFF,
        }
    }

    /// Where the errors that do not stop the server go: a handler's error or panic,
    /// and the resource errors of accept. Called on the runtime's thread, one error
    /// at a time.
    ///
    /// ```
    /// use scope_runtime::{ServeError, ServeTcp};
    /// use scope_runtime::io::{TcpListener, TcpStream};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let server = ServeTcp::new(l, |_s: TcpStream, _peer| async { Ok::<_, std::io::Error>(()) })
    ///         .on_error(|e: ServeError| {
    ///             if let ServeError::Handler { peer, error } = &e {
    ///                 println!("connection from {peer} failed: {error}");
    ///             }
    ///         });
    ///     # drop(server);
    /// });
    /// ```
    pub fn on_error(mut self, on_error: impl FnMut(ServeError) + 'static) -> ServeTcp<H> {
        self.on_error = Rc::new(RefCell::new(on_error));
        self
    }

    /// How long to wait before accepting again after the system ran out of file
    /// descriptors or memory (100 ms unless set).
    ///
    /// ```
    /// use scope_runtime::ServeTcp;
    /// use scope_runtime::io::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    ///     let server = ServeTcp::new(l, |_s: TcpStream, _peer| async { Ok::<_, std::io::Error>(()) })
    ///         .accept_backoff(Duration::from_millis(20));
    ///     # drop(server);
    /// });
    /// ```
    pub fn accept_backoff(mut self, backoff: Duration) -> ServeTcp<H> {
        self.backoff = backoff;
        self
    }

    /// Runs the server until it is cancelled (then returns `Cancelled`) or accept
    /// fails fatally (then returns that error); see the type's documentation.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn run(self) -> io::Result<()> {
        let ServeTcp {
            listener,
            mut handler,
            on_error,
            backoff,
        } = self;
        let fatal: Rc<RefCell<Option<io::Error>>> = Rc::default();
        let fatal_in = fatal.clone();
        let res = TaskGroup::new()
            .run(|tg| async move {
                loop {
                    match listener.accept().await {
                        Ok((stream, peer)) => {
                            let fut = handler(stream, peer);
                            tg.spawn(connection(peer, fut, on_error.clone()));
                        }
                        Err(e) if e.as_cancelled().is_some() => return Err(e.into()),
                        Err(e) => match classify_accept_error(&e) {
                            AcceptErrorClass::Connection => {}
                            AcceptErrorClass::Capacity => {
                                report(&on_error, ServeError::Accept(e));
                                sleep(backoff).await?;
                            }
                            AcceptErrorClass::Fatal => {
                                *fatal_in.borrow_mut() = Some(e);
                                tg.cancel(); // the live connections end with the server
                                return Ok::<(), BoxError>(());
                            }
                        },
                    }
                }
            })
            .await;
        if let Some(e) = fatal.borrow_mut().take() {
            return Err(e);
        }
        match res {
            Err(e) => match e.as_cancelled() {
                Some(c) => Err(c.clone().into()),
                None => Err(io::Error::other(e)),
            },
            // Only a fatal error cancels the group from inside, and it returns above.
            Ok(_) => Err(io::Error::other("serve_tcp: the server stopped")),
        }
    }
}

/// One connection behind its error boundary.
async fn connection<Fut, E>(
    peer: SocketAddr,
    fut: Fut,
    on_error: Rc<RefCell<dyn FnMut(ServeError)>>,
) -> Result<(), BoxError>
where
    Fut: Future<Output = Result<(), E>>,
    E: Into<BoxError> + 'static,
{
    let error = match catch_unwind(fut).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => {
            let e: BoxError = e.into();
            if find_cancelled(&*e).is_some() {
                return Err(e); // the server is being cancelled: not this connection's fault
            }
            e
        }
        Err(panic) => format!("the handler panicked: {}", panic_message(&*panic)).into(),
    };
    report(&on_error, ServeError::Handler { peer, error });
    Ok(())
}

fn report(on_error: &Rc<RefCell<dyn FnMut(ServeError)>>, e: ServeError) {
    // A callback that (oddly) re-enters the server's reporting would find the cell
    // borrowed; it cannot, since it is synchronous and reports come one per poll.
    match on_error.try_borrow_mut() {
        Ok(mut f) => f(e),
        Err(_) => eprintln!("serve_tcp: {e}"),
    }
}

fn panic_message(p: &(dyn Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a non-string payload)")
}

/// An error that [`ServeTcp`] reports to its [`on_error`](ServeTcp::on_error) callback
/// and survives.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServeError {
    /// A connection's handler returned this error, or panicked (the error then says
    /// so, with the panic's message). Only that connection ended.
    Handler {
        /// The connection's peer.
        peer: SocketAddr,
        /// What the handler returned.
        error: BoxError,
    },
    /// Accept ran out of a resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`); the
    /// server waits for its backoff and accepts again.
    Accept(io::Error),
}

impl fmt::Display for ServeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServeError::Handler { peer, error } => {
                write!(f, "connection from {peer} failed: {error}")
            }
            ServeError::Accept(e) => write!(f, "accept failed, retrying after a pause: {e}"),
        }
    }
}

impl std::error::Error for ServeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServeError::Handler { error, .. } => Some(&**error),
            ServeError::Accept(e) => Some(e),
        }
    }
}

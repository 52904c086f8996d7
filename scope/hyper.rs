//! [`GroupExecutor`]: hyper's executor spawning into a task group (cargo feature
//! `hyper`; the stream and timer parts live in `io::hyper`).

use std::future::Future;

use super::group::TaskGroup;
use crate::runtime::cancel::{BoxError, cancellable};

/// hyper's [`Executor`](::hyper::rt::Executor) that spawns each future hyper hands it
/// as a child task of a [`TaskGroup`].
///
/// hyper spawns tasks for HTTP/2 (one per stream on a server, the connection itself
/// on a client). With this executor they belong to your group: the group waits for
/// them, and cancelling the group cancels them. They run wrapped in
/// [`cancellable`](crate::cancellable), because they mostly wait on hyper's own state
/// (which knows nothing of our scopes): cancelled, such a task is dropped at once (for
/// hyper, a dropped stream task resets that stream).
///
/// If the group can no longer take children (its block has ended), the future is
/// dropped without running, as hyper's own executors do when their runtime is shut
/// down. That cannot happen to futures spawned for a connection that runs inside the
/// group, since the group waits for it.
///
/// The executor is `!Send`, like the group; hyper's builders only need it to be
/// `Clone`.
///
/// ```
/// use bytes::Bytes;
/// use http_body_util::{BodyExt, Empty, Full};
/// use hyper::{Request, Response, body::Incoming, service::service_fn};
/// use scope_runtime::io::hyper::HyperTimer;
/// use scope_runtime::io::{TcpListener, TcpStream};
/// use scope_runtime::{BoxError, GroupExecutor, task_group};
/// use std::convert::Infallible;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from("hello over h2"))))
/// }
///
/// scope_runtime::Runtime::new()?.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await?;
///     let addr = listener.local_addr()?;
///     task_group(|tg| async move {
///         let exec = GroupExecutor::new(&tg);
///         let server_exec = exec.clone();
///         tg.spawn(async move {
///             let (stream, _) = listener.accept().await?;
///             hyper::server::conn::http2::Builder::new(server_exec)
///                 .timer(HyperTimer)
///                 .serve_connection(stream, service_fn(hello))
///                 .await?;
///             Ok(())
///         });
///         let stream = TcpStream::connect(addr).await?;
///         let (mut sender, conn) =
///             hyper::client::conn::http2::handshake(exec, stream).await?;
///         tg.spawn(async move { Ok(conn.await?) });
///         let resp = sender.send_request(Request::new(Empty::<Bytes>::new())).await?;
///         let body = resp.into_body().collect().await?.to_bytes();
///         assert_eq!(body, "hello over h2");
///         Ok(())
///     })
///     .await?;
///     Ok::<(), BoxError>(())
/// })?;
/// # Ok::<(), BoxError>(())
/// ```
#[derive(Clone, Debug)]
pub struct GroupExecutor {
    group: TaskGroup,
}

impl GroupExecutor {
    /// An executor spawning into `group` (it keeps a handle to the group).
    ///
    /// ```
    /// use scope_runtime::{GroupExecutor, task_group};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     task_group(|tg| async move {
    ///         let exec = GroupExecutor::new(&tg);
    ///         assert!(!exec.group().is_closed());
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// });
    /// ```
    pub fn new(group: &TaskGroup) -> GroupExecutor {
        GroupExecutor {
            group: group.clone(),
        }
    }

    /// The group it spawns into.
    pub fn group(&self) -> &TaskGroup {
        &self.group
    }
}

impl From<TaskGroup> for GroupExecutor {
    fn from(group: TaskGroup) -> GroupExecutor {
        GroupExecutor { group }
    }
}

impl<F> ::hyper::rt::Executor<F> for GroupExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        // A closed group refuses the task: it is dropped unpolled (see the type's doc).
        let _ = self.group.try_spawn(async move {
            cancellable(fut).await?;
            Ok::<(), BoxError>(())
        });
    }
}

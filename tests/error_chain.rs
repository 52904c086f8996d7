//! A `Cancelled` wrapped by another library's error is still a cancellation (rule
//! R14): `CancelError` for `io::Error` and `BoxError` looks through `source()` chains
//! and inside `io::Error`s, so the scope the cancellation belongs to absorbs it.
//!
//! `HyperLike` mirrors `hyper::Error`: a struct whose cause is a boxed error, here an
//! `io::Error` around our `Cancelled` — what hyper returns when the connection's I/O
//! was cancelled. `WsLike` mirrors `tungstenite::Error::Io(io::Error)`, an enum users
//! may return directly as the error type of a scope's body.

use std::error::Error;
use std::fmt;
use std::io;

use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, Runtime, TaskGroup, checkpoint, find_cancelled,
    move_on_after, sleep, task_group,
};
use std::time::Duration;

/// Like `hyper::Error`: a kind plus an optional boxed cause.
#[derive(Debug)]
struct HyperLike {
    kind: &'static str,
    cause: Option<Box<dyn Error + Send + Sync>>,
}

impl HyperLike {
    fn io(e: io::Error) -> HyperLike {
        HyperLike {
            kind: "io",
            cause: Some(Box::new(e)),
        }
    }
}

impl fmt::Display for HyperLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "connection error: {}", self.kind)
    }
}

impl Error for HyperLike {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.cause.as_deref().map(|e| e as _)
    }
}

/// Like `tungstenite::Error`: an enum with an `Io` variant.
#[derive(Debug)]
enum WsLike {
    Io(io::Error),
    Protocol,
}

impl fmt::Display for WsLike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsLike::Io(e) => write!(f, "io: {e}"),
            WsLike::Protocol => f.write_str("protocol error"),
        }
    }
}

impl Error for WsLike {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            WsLike::Io(e) => Some(e),
            WsLike::Protocol => None,
        }
    }
}

impl CancelError for WsLike {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(self)
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(f)
}

/// A library call whose I/O was cancelled, as hyper reports it.
async fn hyper_like_call() -> Result<(), HyperLike> {
    sleep(Duration::from_secs(3600))
        .await
        .map_err(|c| HyperLike::io(c.into()))
}

#[test]
fn a_wrapped_cancelled_is_absorbed_by_move_on_after() {
    run(async {
        let r = move_on_after(Duration::from_secs(1), async {
            hyper_like_call().await?;
            Ok::<_, BoxError>(())
        })
        .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
    });
}

#[test]
fn a_wrapped_cancelled_from_a_child_is_not_a_group_failure() {
    run(async {
        let group = TaskGroup::new();
        let r = group
            .run(|tg| async move {
                tg.spawn(async {
                    hyper_like_call().await?;
                    Ok(())
                });
                sleep(Duration::from_secs(1)).await?;
                tg.cancel();
                Ok(())
            })
            .await;
        assert!(matches!(r, Ok(Some(()))), "{r:?}");
        assert!(group.cancelled_caught());
    });
}

/// An outer scope's cancel wrapped by a library inside a group travels through the
/// group and is absorbed by the outer scope — like a server shutting down on Ctrl-C.
#[test]
fn a_wrapped_outer_cancel_travels_through_a_group() {
    run(async {
        let outer = CancelScope::new();
        let o = outer.clone();
        let r = outer
            .run(async move {
                task_group(|tg| async move {
                    tg.spawn(async {
                        hyper_like_call().await?;
                        Ok(())
                    });
                    sleep(Duration::from_secs(1)).await?;
                    o.cancel_with("ctrl-c");
                    Ok(())
                })
                .await?;
                Ok::<_, BoxError>(())
            })
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert!(outer.cancelled_caught());
    });
}

#[test]
fn a_user_error_enum_as_the_body_error_type() {
    run(async {
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async {
                checkpoint()
                    .await
                    .map_err(|c| WsLike::Io(io::Error::other(c)))?;
                Ok::<_, WsLike>(())
            })
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        // A different error of the same enum is not a cancellation.
        let r = CancelScope::new()
            .run(async { Err::<(), _>(WsLike::Protocol) })
            .await;
        assert!(matches!(r, Err(WsLike::Protocol)));
    });
}

/// An error chain with no `Cancelled` in it stays an error, also when a scope around
/// it is cancelled.
#[test]
fn a_wrapped_ordinary_error_is_not_absorbed() {
    run(async {
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async { Err::<(), BoxError>(Box::new(HyperLike::io(io::Error::other("reset")))) })
            .await;
        let e = r.unwrap_err();
        assert!(e.as_cancelled().is_none());
        assert_eq!(e.to_string(), "connection error: io");
    });
}

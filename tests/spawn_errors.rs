//! Tasks whose functions have their own error types: a cancellation inside such an
//! error is still recognised — by a task group when the error reaches it through `?`
//! (as a `BoxError`), and by a top-level task's handle through `CancelError` — and a
//! real failure keeps its type.
//!
//! The compile-time side (which forms compile, and the messages of the ones that do
//! not) is in `tests/trybuild.rs`.

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::io;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::{CancelError, CancelScope, Cancelled, Outcome, TaskGroup, sleep, spawn};

/// A connection handler as an application writes it: `io::Result`, and a `Cancelled`
/// from the runtime becomes an `io::Error` through `?`.
async fn io_handler(secs: u64) -> io::Result<()> {
    sleep(Duration::from_secs(secs)).await?;
    Ok(())
}

/// An application's error type that keeps its cause as its `source()`, as error
/// types written with `thiserror`'s `#[from]` do.
#[derive(Debug)]
enum AppError {
    Io(io::Error),
    Parse(&'static str),
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Io(_) => f.write_str("i/o failed"),
            AppError::Parse(what) => write!(f, "cannot parse {what}"),
        }
    }
}

impl Error for AppError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            AppError::Io(e) => Some(e),
            AppError::Parse(_) => None,
        }
    }
}

impl From<io::Error> for AppError {
    fn from(e: io::Error) -> Self {
        AppError::Io(e)
    }
}

impl From<Cancelled> for AppError {
    fn from(c: Cancelled) -> Self {
        AppError::Io(c.into())
    }
}

impl CancelError for AppError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            AppError::Io(e) => e.as_cancelled(),
            AppError::Parse(_) => None,
        }
    }
}

async fn app_handler(secs: u64, fail: bool) -> Result<(), AppError> {
    sleep(Duration::from_secs(secs)).await?;
    if fail {
        return Err(AppError::Parse("the request line"));
    }
    io_handler(0).await?;
    Ok(())
}

/// A child cancels the group after `secs` seconds.
fn cancel_after(tg: &TaskGroup, secs: u64) {
    let tg2 = tg.clone();
    tg.spawn(async move {
        sleep(Duration::from_secs(secs)).await?;
        tg2.cancel();
        Ok(())
    });
}

#[scope_runtime::test(paused)]
async fn an_io_error_made_from_a_cancellation_is_absorbed_by_the_group() {
    let start = scope_runtime::now();
    let seen = Rc::new(Cell::new(None));
    let seen2 = seen.clone();
    let group = TaskGroup::new();
    let out = group
        .run(|tg| async move {
            tg.spawn(async move {
                let r = io_handler(3600).await;
                seen2.set(r.as_ref().err().map(|e| e.as_cancelled().is_some()));
                Ok(r?)
            });
            cancel_after(&tg, 1);
            Ok(())
        })
        .await;
    assert_eq!(
        seen.get(),
        Some(true),
        "the handler failed with an io::Error that carries the cancellation"
    );
    assert!(
        matches!(out, Ok(Some(()))),
        "absorbed, not a failure: {out:?}"
    );
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_eq!(scope_runtime::now() - start, Duration::from_secs(1));
}

#[scope_runtime::test(paused)]
async fn a_custom_error_whose_source_is_the_cancellation_is_absorbed_by_the_group() {
    let start = scope_runtime::now();
    let group = TaskGroup::new();
    let out = group
        .run(|tg| async move {
            tg.spawn(async move { Ok(app_handler(3600, false).await?) });
            cancel_after(&tg, 2);
            Ok(())
        })
        .await;
    assert!(
        matches!(out, Ok(Some(()))),
        "absorbed, not a failure: {out:?}"
    );
    assert!(group.cancelled_caught());
    assert_eq!(scope_runtime::now() - start, Duration::from_secs(2));
}

#[scope_runtime::test(paused)]
async fn a_custom_error_that_is_a_failure_keeps_its_type_and_cancels_the_group() {
    let group = TaskGroup::new();
    let out = group
        .run(|tg| async move {
            tg.spawn_named("parser", async move { Ok(app_handler(1, true).await?) });
            tg.spawn(async move { Ok(io_handler(3600).await?) }); // cancelled by the failure
            Ok(())
        })
        .await;
    let err = out.expect_err("the parser failed");
    assert!(err.as_cancelled().is_none());
    assert_eq!(
        err.failures().len(),
        1,
        "the cancelled sibling is no failure"
    );
    assert!(matches!(err.find::<AppError>(), Some(AppError::Parse(_))));
    assert_eq!(err.failures()[0].task().name(), Some("parser"));
    assert!(group.cancel_called());
    // The sibling's cancellation (inside its io::Error) was the group's own: absorbed,
    // while the failure goes out.
    assert!(group.cancelled_caught());
}

#[scope_runtime::test(paused)]
async fn a_body_with_an_io_error_from_its_own_cancellation_is_absorbed() {
    let group = TaskGroup::new();
    let out = group
        .run(|tg| async move {
            cancel_after(&tg, 1);
            Ok(io_handler(3600).await?)
        })
        .await;
    assert!(
        matches!(out, Ok(None)),
        "absorbed before the body had a value: {out:?}"
    );
    assert!(group.cancelled_caught());
}

/// The cancellation inside the io::Error belongs to an enclosing scope: the group
/// passes it on and the enclosing scope absorbs it, exactly as for a bare `Cancelled`.
#[scope_runtime::test(paused)]
async fn an_enclosing_cancellation_inside_an_io_error_goes_through_the_group() {
    let outer = CancelScope::new().with_timeout(Duration::from_secs(3));
    let group = TaskGroup::new();
    let out = outer
        .run(async {
            group
                .run(|tg| async move {
                    tg.spawn(async move { Ok(io_handler(3600).await?) });
                    tg.spawn(async move { Ok(app_handler(3600, false).await?) });
                    Ok(())
                })
                .await
        })
        .await;
    assert!(
        matches!(out, Ok(None)),
        "the outer scope absorbed it: {out:?}"
    );
    assert!(outer.cancelled_caught());
    assert!(!group.cancelled_caught(), "not the group's cancellation");
}

#[scope_runtime::test(paused)]
async fn a_top_level_task_with_an_io_error_or_a_custom_error_reports_its_cancellation() {
    let io_task = spawn(io_handler(3600));
    let app_task = spawn(app_handler(3600, false));
    let failing = spawn(app_handler(1, true));
    assert!(io_task.cancel() && app_task.cancel());
    match io_task.await.unwrap() {
        Outcome::Cancelled(_) => {}
        other => panic!("expected a cancellation, got {other:?}"),
    }
    match app_task.await.unwrap() {
        Outcome::Cancelled(_) => {}
        other => panic!("expected a cancellation, got {other:?}"),
    }
    match failing.await.unwrap() {
        Outcome::Err(AppError::Parse(_)) => {}
        other => panic!("expected the parse failure, got {other:?}"),
    }
}

/// What the group sees is the `BoxError` that `?` made: an error type whose
/// `CancelError` finds a cancellation its `source()` does not lead to is a failure to
/// the group. (Top-level tasks and scopes ask the type itself and see the cancellation.)
#[scope_runtime::test(paused)]
async fn a_group_finds_the_cancellation_through_the_error_chain_only() {
    #[derive(Debug)]
    struct Opaque(Cancelled);
    impl fmt::Display for Opaque {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("opaque")
        }
    }
    impl Error for Opaque {} // no `source()`
    impl CancelError for Opaque {
        fn as_cancelled(&self) -> Option<&Cancelled> {
            Some(&self.0)
        }
    }
    async fn opaque_handler() -> Result<(), Opaque> {
        sleep(Duration::from_secs(3600)).await.map_err(Opaque)
    }

    let scope = CancelScope::new().with_timeout(Duration::from_secs(1));
    assert!(matches!(scope.run(opaque_handler()).await, Ok(None)));

    let group = TaskGroup::new();
    group
        .cancel_scope()
        .set_deadline(Some(scope_runtime::now() + Duration::from_secs(1)));
    let out = group
        .run(|tg| async move {
            tg.spawn(async move { Ok(opaque_handler().await?) });
            Ok(())
        })
        .await;
    let err = out.expect_err("the boxed Opaque hides its cancellation from the group");
    assert_eq!(err.failures().len(), 1);
    assert!(err.find::<Opaque>().is_some());
}

//! The forms the compile-fail cases in `tests/ui` point to compile, without type
//! annotations beyond the ones shown and without `#[allow]`s, and behave as
//! documented.
#![deny(warnings)]

use std::time::Duration;

use scope_runtime::io::TcpListener;
use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, JoinHandle, Runtime, TaskGroup, checkpoint,
    find_cancelled, sleep, spawn, task_group,
};

async fn handler() -> std::io::Result<()> {
    sleep(Duration::from_secs(3600)).await?;
    Ok(())
}

async fn fetch() -> std::io::Result<u32> {
    sleep(Duration::from_secs(1)).await?;
    Ok(7)
}

/// A never-returning group body, as an `async fn` that names its result.
async fn serve(tg: TaskGroup, listener: TcpListener) -> Result<(), BoxError> {
    loop {
        let (conn, _) = listener.accept().await?;
        tg.spawn(async move {
            drop(conn);
            Ok(())
        });
    }
}

/// An error type of the application that carries a cancellation.
#[derive(Debug)]
enum AppError {
    Cancelled(Cancelled),
    Parse,
}

impl From<Cancelled> for AppError {
    fn from(c: Cancelled) -> Self {
        AppError::Cancelled(c)
    }
}

impl CancelError for AppError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            AppError::Cancelled(c) => Some(c),
            AppError::Parse => None,
        }
    }
}

fn main() {
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    rt.block_on(async {
        // A child with its own error type goes through `?`; a daemon child loops.
        let out = task_group(|tg| async move {
            tg.spawn(async move { Ok(handler().await?) });
            tg.spawn(async { loop { sleep(Duration::from_secs(1)).await?; } });
            let tg2 = tg.clone();
            tg.spawn(async move {
                sleep(Duration::from_secs(5)).await?;
                tg2.cancel();
                Ok(())
            });
            Ok(())
        })
        .await;
        assert!(matches!(out, Ok(Some(()))));

        // Top-level tasks: an io::Result function as it is; `Ok(())` with its error named.
        let io_task = spawn(fetch());
        let named = spawn(async { Ok::<_, BoxError>(()) });
        let typed: JoinHandle<(), Cancelled> = spawn(async { Ok(()) });
        assert_eq!(io_task.await.unwrap().unwrap(), 7);
        named.await.unwrap().unwrap();
        typed.await.unwrap().unwrap();

        // A body that never returns: an `async fn`, or `T` named where the group runs.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let group = TaskGroup::new();
        group.cancel();
        assert!(matches!(group.run(|tg| serve(tg, listener)).await, Ok(None)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let group = TaskGroup::new();
        group.cancel();
        let out: Result<Option<()>, _> = group
            .run(|tg| async move {
                loop {
                    let (conn, _) = listener.accept().await?;
                    tg.spawn(async move {
                        drop(conn);
                        Ok(())
                    });
                }
            })
            .await;
        assert!(matches!(out, Ok(None)));

        // A scope body with an error type that implements `CancelError`.
        let scope = CancelScope::new();
        scope.cancel();
        let out = scope
            .run(async {
                checkpoint().await?;
                Err::<(), _>(AppError::Parse)
            })
            .await;
        assert!(matches!(out, Ok(None)));
        assert!(find_cancelled(&std::io::Error::other("plain")).is_none());
    });

    // The group's cancel handle goes to another thread (real clock: the paused one
    // would jump to the end of the sleep before the thread's cancel arrives).
    Runtime::new().unwrap().block_on(async {
        let out = task_group(|tg| async move {
            let handle = tg.cancel_handle();
            let t = std::thread::spawn(move || handle.cancel());
            let slept = sleep(Duration::from_secs(3600)).await;
            t.join().unwrap();
            slept?;
            Ok(())
        })
        .await;
        assert!(matches!(out, Ok(None)));
    });
}

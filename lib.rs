//! # scope_runtime
//!
//! A single-threaded async runtime whose cancellation model is **structured**: cancel
//! scopes, task groups, deadlines and shields are operations of the scheduler itself.
//!
//! * Cancellation is a value ([`Cancelled`]) that arrives at **checkpoints** and is
//!   level-triggered: it keeps failing checkpoints until control leaves the cancelled
//!   scope. So propagate it with `?`: code that throws it away and retries (`let _ =
//!   sleep(d).await;` in a loop) spins. Debug builds print one warning on stderr, naming
//!   the task and where it was spawned, when a task fails 10,000 checkpoints in a row in
//!   one cancelled scope.
//! * **Checkpoints are the runtime's own operations that can block**: [`sleep`],
//!   [`checkpoint`], awaiting a [`JoinHandle`], socket I/O ([`io`]), the [`sync`]
//!   primitives, blocking-pool results, signals, ticks of an [`interval`], and the
//!   `next()` of the runtime's streams (a channel `Receiver`, a listener's `incoming()`,
//!   a `Signal`). They notice a cancel also when polled
//!   inside `futures` combinators (`join_all`, `FuturesUnordered`, `buffered`,
//!   `select_all`...): the scheduler wakes the blocked operation itself.
//! * **A future of another crate is not a checkpoint**: inside a cancelled scope it
//!   keeps waiting. Wrap it in [`cancellable`], which drops it on cancellation and
//!   returns `Err(Cancelled)`.
//! * A [`CancelScope`] absorbs a cancellation leaving its body when it is itself
//!   cancelled and no cancelled scope around it is visible (Trio's rule, decided at that
//!   moment); a [`TaskGroup`] is a scope plus the children spawned inside its block, and
//!   `tg.cancel()` cancels the body and all children in one walk of the scheduler's
//!   scope tree. A `Cancelled` wrapped in another library's error still counts
//!   ([`find_cancelled`]).
//! * Tasks carry asyncio-style cancel counts: [`TaskRef::cancel`],
//!   [`TaskRef::cancelling`], [`TaskRef::uncancel`].
//!
//! ```
//! use scope_runtime::{task_group, sleep, Runtime};
//! use std::time::Duration;
//!
//! let rt = Runtime::builder().paused_clock(true).build()?;
//! rt.block_on(async {
//!     task_group(|tg| async move {
//!         for i in 0..3u64 {
//!             let tg2 = tg.clone();
//!             tg.spawn(async move {
//!                 sleep(Duration::from_secs(i + 1)).await?;
//!                 if i == 0 {
//!                     tg2.cancel(); // the first job to finish stops the others
//!                 }
//!                 Ok(())
//!             });
//!         }
//!         Ok(())
//!     })
//!     .await
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! New here? Read the [`guide`]: from a first program to a server with graceful
//! shutdown, interop with other crates, and a mapping from asyncio, Trio, tokio and
//! smol. The cancellation rules, one by one, are in [`semantics`].

extern crate self as scope_runtime;

pub mod io;
mod runtime;
mod scope;

pub use runtime::sync;

pub use scope::{ServeError, ServeTcp, serve_tcp};

pub use runtime::cancel::{
    BoxError, CancelError, CancelHandle, CancelReason, Cancellable, Cancelled, TaskFailure,
    TaskGroupError, TaskInfo, cancellable, check_cancelled, checkpoint, current_effective_deadline,
    find_cancelled,
};
pub use runtime::{
    Builder, Dump, DumpHandle, DumpNode, IO_POLL_INTERVAL, Instrument, JoinHandle, Metrics,
    Outcome, RemoteCall, RemoteError, RemoteHandle, Resources, Runtime, ScopeDump, Sleep, TaskDump,
    TaskMeta, TaskRef, TaskState, Wait, WaitingOn, current_task, dump, metrics, now, sleep,
    sleep_until, spawn, spawn_named, yield_now,
};
pub use runtime::{Interval, MissedTickPolicy, interval, interval_at};
pub use scope::{
    CancelScope, ChildError, ChildValue, CoreContext, CoreFailure, Cores, CoresError, MultiCancel,
    SpawnError, TaskGroup, TaskHandle, TaskStatus, TimedOut, fail_after, fail_at, move_on_after,
    move_on_at, task_group,
};
pub use scope_runtime_macros::{main, test};

/// Control of the paused clock for tests, and a way to let every task settle.
///
/// * [`wait_all_tasks_blocked`]: returns once every other task is blocked, without
///   moving the clock (on either clock).
/// * [`advance`]: moves the paused clock forward, firing each timer at its own
///   instant and letting the tasks it wakes run, as if the time had passed.
/// * [`jump`]: moves the paused clock forward at once; everything due fires late,
///   together.
/// * [`Builder::paused_clock_autojump`]: a paused clock that jumps only after the
///   runtime has been idle for a while in real time, for tests that do real I/O.
///
/// ```
/// use scope_runtime::testing::{advance, wait_all_tasks_blocked};
/// use scope_runtime::{now, sleep, spawn, Cancelled, Runtime};
/// use std::cell::Cell;
/// use std::rc::Rc;
/// use std::time::Duration;
///
/// // In a test crate: `#[scope_runtime::test(paused)] async fn ...`.
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let t0 = now();
///     let done = Rc::new(Cell::new(false));
///     let d = done.clone();
///     let _h = spawn(async move {
///         sleep(Duration::from_secs(5)).await?;
///         d.set(true);
///         Ok::<_, Cancelled>(())
///     });
///     wait_all_tasks_blocked().await?; // the task sleeps now
///     assert!(!done.get());
///     advance(Duration::from_secs(5)).await?;
///     assert!(done.get());
///     assert_eq!(now() - t0, Duration::from_secs(5));
///     Ok::<(), Cancelled>(())
/// })
/// .unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
pub mod testing {
    pub use crate::runtime::{Advance, WaitAllTasksBlocked, advance, jump, wait_all_tasks_blocked};
}

/// hyper's executor spawning into a task group (cargo feature `hyper`); the stream
/// traits and the timer are in [`io::hyper`].
#[cfg(feature = "hyper")]
pub use scope::GroupExecutor;

#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Used by `#[scope_runtime::main]`.
    #[track_caller]
    pub fn run_main<F: Future>(fut: F) -> F::Output {
        crate::Runtime::new()
            .expect("scope_runtime: failed to create the runtime")
            .block_on(with_env_dump(fut))
    }

    /// Used by `#[scope_runtime::test]`.
    #[track_caller]
    pub fn run_test<F: Future>(paused: bool, fut: F) -> F::Output {
        crate::Runtime::builder()
            .paused_clock(paused)
            .build()
            .expect("scope_runtime: failed to create the runtime")
            .block_on(with_env_dump(fut))
    }

    /// Used by `#[scope_runtime::test(paused, autojump = "...")]`.
    #[track_caller]
    pub fn run_test_autojump<F: Future>(threshold: std::time::Duration, fut: F) -> F::Output {
        crate::Runtime::builder()
            .paused_clock_autojump(threshold)
            .build()
            .expect("scope_runtime: failed to create the runtime")
            .block_on(with_env_dump(fut))
    }

    /// Used by `#[scope_runtime::main(cores = N)]`: `body` on `n` cores, all cancelled
    /// on the first Ctrl-C, each printing its dump on SIGQUIT when `SCOPE_RUNTIME_DUMP=sigquit`;
    /// `n == 0` is one per CPU, as in `Cores::new`.
    pub fn run_cores<F, Fut>(n: usize, body: F) -> Result<(), crate::CoresError>
    where
        F: Fn(crate::CoreContext) -> Fut + Send + Sync + 'static,
        Fut: Future + 'static,
        Fut::Output: CoreOutput,
    {
        crate::Cores::new(n)
            .cancel_on_ctrl_c(true)
            .run(move |core| {
                let fut = body(core);
                async move { with_env_dump(fut).await.into_core_result() }
            })
    }

    /// What the function under `#[scope_runtime::main(cores = N)]` may return.
    #[diagnostic::on_unimplemented(
        message = "a #[scope_runtime::main(cores = N)] function returns `()` or `Result<(), E>` with an error that converts into `BoxError`, not `{Self}`",
        label = "this is the output of the function run on every core"
    )]
    pub trait CoreOutput {
        /// The core body's result, as `Cores::run` takes it.
        fn into_core_result(self) -> Result<(), crate::BoxError>;
    }

    impl CoreOutput for () {
        fn into_core_result(self) -> Result<(), crate::BoxError> {
            Ok(())
        }
    }

    impl<E: Into<crate::BoxError>> CoreOutput for Result<(), E> {
        fn into_core_result(self) -> Result<(), crate::BoxError> {
            self.map_err(Into::into)
        }
    }

    /// `fut`, after starting the SIGQUIT dump printer when `SCOPE_RUNTIME_DUMP=sigquit`.
    async fn with_env_dump<F: Future>(fut: F) -> F::Output {
        if crate::io::dump_on_sigquit_wanted() {
            if let Err(e) = crate::io::dump_on_sigquit() {
                eprintln!("scope_runtime: SCOPE_RUNTIME_DUMP=sigquit: no SIGQUIT listener: {e}");
            }
        }
        fut.await
    }
}

#[cfg(doctest)]
#[doc = include_str!("macros/docs/main.md")]
mod main_macro_doctests {}

#[cfg(doctest)]
#[doc = include_str!("macros/docs/test.md")]
mod test_macro_doctests {}

#[cfg(doctest)]
#[doc = include_str!("README.md")]
mod readme_doctests {}

#[doc = include_str!("docs/guide.md")]
pub mod guide {}

#[doc = include_str!("docs/semantics.md")]
pub mod semantics {}

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
mod net;
mod runtime;
mod scope;

pub use runtime::sync;

pub use net::{ServeError, ServeTcp, serve_tcp};
pub use runtime::cancel::{
    BoxError, CancelError, CancelHandle, CancelReason, Cancellable, Cancelled, TaskFailure,
    TaskGroupError, TaskInfo, cancellable, check_cancelled, checkpoint, current_effective_deadline,
    find_cancelled,
};
pub use runtime::{
    Builder, IO_POLL_INTERVAL, JoinHandle, Outcome, Resources, Runtime, Sleep, TaskRef,
    current_task, now, sleep, sleep_until, spawn, spawn_named, yield_now,
};
pub use runtime::{Interval, MissedTickPolicy, interval, interval_at};
pub use scope::{
    CancelScope, SpawnError, TaskGroup, TaskHandle, TaskStatus, TimedOut, fail_after, fail_at,
    move_on_after, move_on_at, task_group,
};
pub use scope_runtime_macros::{main, test};

/// hyper's executor spawning into a task group (cargo feature `hyper`); the stream
/// traits and the timer are in [`io::hyper`].
#[cfg(feature = "hyper")]
pub use scope::GroupExecutor;

#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Used by `#[scope_runtime::main]`.
    pub fn run_main<F: Future>(fut: F) -> F::Output {
        crate::Runtime::new()
            .expect("scope_runtime: failed to create the runtime")
            .block_on(fut)
    }

    /// Used by `#[scope_runtime::test]`.
    pub fn run_test<F: Future>(paused: bool, fut: F) -> F::Output {
        crate::Runtime::builder()
            .paused_clock(paused)
            .build()
            .expect("scope_runtime: failed to create the runtime")
            .block_on(fut)
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

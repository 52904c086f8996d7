//! The executor: [`Runtime`], tasks, timers and the reactor.
//!
//! # Map
//!
//! * `core` — the per-runtime state and the run loop (`block_on`, the ready queue,
//!   when to poll I/O and timers, the paused clock's jumps); `ready_queue` — that
//!   queue, a `VecDeque` trimmed at each park once mostly empty; `paged_slab` — the
//!   slab of the task slots and the wait lists, grown by pages.
//! * `task` — the task cell (one allocation per task: header, future then output,
//!   completion), its `Send + Sync` waker (local queue vs injector), slots and ids;
//!   `readers` — the wakers of `JoinHandle`s waiting for a running task.
//! * `cancel/` — **all cancellation state and rules**: the status tree (task roots,
//!   entered scopes, the registrations of blocked operations), checkpoints, scope
//!   entry and exit, absorption, task cancel counts, cross-thread cancels,
//!   `cancellable`. `scope/` is the user-facing face of it.
//! * `join` — `spawn`, `JoinHandle`, `Outcome`, `TaskRef`, `current_task`.
//! * `time` — `sleep`, `sleep_until`, `yield_now`, `now`; `interval` — periodic
//!   ticks on top of `Sleep`, with the missed-tick policies; `timer` — pending timers
//!   ordered by deadline; `clock` — real or paused time.
//! * `reactor` — `mio::Poll` and per-source readiness, used by `io/`.
//! * `sync/` — the cancellation-aware primitives; `wake_list` — wakers collected under
//!   a borrow or lock, woken after it.
//! * `ignored_cancel` — debug builds: one warning for a task that keeps failing
//!   checkpoints in one cancelled scope.
//! * `observe/` — the task dump, metrics, instrument hooks, `tracing` (read-only).
//! * `remote` — `RemoteHandle`: other threads run code on this runtime.
//! * this file — `Runtime` and `Builder`.
//!
//! `runtime/` imports nothing from `scope/` or `io/` (checked by
//! `tests/architecture.rs`). Every blocking operation here is a checkpoint (rule R1)
//! that registers its own waker with the status tree (rule R13): see
//! `cancel/wait.rs`.

pub(crate) mod cancel;
pub(crate) mod clock;
pub(crate) mod core;
mod ignored_cancel;
mod interval;
mod join;
pub(crate) mod observe;
pub(crate) mod paged_slab;
pub(crate) mod reactor;
mod readers;
mod ready_queue;
mod remote;
pub mod sync;
pub(crate) mod task;
mod time;
pub(crate) mod timer;
pub(crate) mod wake_list;

use std::fmt;
use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::rc::Rc;

pub use clock::{Advance, WaitAllTasksBlocked, advance, jump, wait_all_tasks_blocked};
pub use core::IO_POLL_INTERVAL;
pub(crate) use core::{try_with_core, with_core};
pub use interval::{Interval, MissedTickPolicy, interval, interval_at};
pub use join::{JoinHandle, Outcome, TaskRef, current_task, spawn, spawn_named};
pub(crate) use join::{catch_unwind, drop_tasks, spawn_child};
pub use observe::{
    Dump, DumpHandle, DumpNode, Instrument, Metrics, ScopeDump, TaskDump, TaskMeta, TaskState,
    Wait, WaitingOn, dump,
};
pub use remote::{RemoteCall, RemoteError, RemoteHandle};
pub use time::{Sleep, now, sleep, sleep_until, yield_now};

/// A single-threaded runtime: an executor, a reactor on `mio`, timers, and the
/// cancel-scope tree.
///
/// `Runtime` is `!Send`: it runs on the thread that created it. Tasks left when it
/// is dropped are dropped with it (their destructors run).
///
/// ```
/// let rt = scope_runtime::Runtime::new()?;
/// let v = rt.block_on(async {
///     let h = scope_runtime::spawn(async { Ok::<_, scope_runtime::Cancelled>(21) });
///     h.await.unwrap().unwrap() * 2
/// });
/// assert_eq!(v, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Runtime {
    core: Rc<core::Core>,
    _not_send: PhantomData<Rc<()>>,
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("tasks", &self.core.live_tasks())
            .field("timers", &self.core.pending_timers())
            .field("cancel_waits", &self.core.cancel().waiter_count())
            .field("paused_clock", &self.core.clock_paused())
            .finish()
    }
}

/// Configures a [`Runtime`].
#[derive(Default, Clone)]
pub struct Builder {
    paused_clock: bool,
    autojump: std::time::Duration,
    instrument: Option<Rc<dyn observe::Instrument>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("paused_clock", &self.paused_clock)
            .field("autojump", &self.autojump)
            .field("instrument", &self.instrument.is_some())
            .finish()
    }
}

impl Builder {
    /// Starts the clock paused: time only moves when every task is idle, and then
    /// jumps straight to the next timer. Deadline tests run instantly and
    /// deterministically. (Tasks waiting for real I/O see the clock jump too; see
    /// [`paused_clock_autojump`](Self::paused_clock_autojump) for tests that do real
    /// I/O.) Tests can also move it by hand: [`testing::advance`](crate::testing::advance),
    /// [`testing::jump`](crate::testing::jump).
    pub fn paused_clock(mut self, paused: bool) -> Builder {
        self.paused_clock = paused;
        self
    }

    /// Starts the clock paused (as [`paused_clock(true)`](Self::paused_clock)), but
    /// jumps it to the next timer only once the runtime has been idle for `threshold`
    /// of **real** time — meanwhile it waits in the reactor for I/O and for other
    /// threads, as on the real clock. Anything that happens (a socket becomes
    /// readable, another thread wakes a task) starts the idle time again from zero.
    ///
    /// So a paused test can talk to a real socket, a child process or a thread and
    /// still give it a `fail_after` bound: the bound fires only if the other side has
    /// been silent for `threshold`, instead of at once. Pick the smallest threshold
    /// that the slowest answer of your test machine stays under; a test with no real
    /// I/O only gets slower with it (each jump of the clock costs `threshold`). A
    /// `threshold` of zero is [`paused_clock(true)`](Self::paused_clock). This is
    /// Trio's `MockClock(autojump_threshold=...)`; a task waiting in
    /// [`testing::wait_all_tasks_blocked`](crate::testing::wait_all_tasks_blocked)
    /// (or [`advance`](crate::testing::advance)) is woken instead of a jump, without
    /// the wait.
    ///
    /// ```
    /// use scope_runtime::{Runtime, fail_after, BoxError};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder()
    ///     .paused_clock_autojump(Duration::from_millis(500))
    ///     .build()?;
    /// let answer = rt.block_on(async {
    ///     // A thread that takes a little real time to answer.
    ///     let (tx, rx) = scope_runtime::sync::oneshot();
    ///     std::thread::spawn(move || {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         let _ = tx.send(42);
    ///     });
    ///     // With `paused_clock(true)` this 1 s bound would expire at once.
    ///     fail_after(Duration::from_secs(1), async { Ok::<_, BoxError>(rx.await?) }).await
    /// });
    /// assert_eq!(answer.unwrap(), Some(42));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// Calling [`paused_clock(false)`](Self::paused_clock) afterwards returns to the
    /// real clock (the threshold then has no effect).
    pub fn paused_clock_autojump(mut self, threshold: std::time::Duration) -> Builder {
        self.paused_clock = true;
        self.autojump = threshold;
        self
    }

    /// Installs hooks the scheduler calls as it works (see [`Instrument`]). One per
    /// runtime; a second call replaces the first.
    pub fn instrument(mut self, instrument: Rc<dyn observe::Instrument>) -> Builder {
        self.instrument = Some(instrument);
        self
    }

    /// Builds the runtime. Fails only if the OS refuses an epoll instance or eventfd.
    pub fn build(self) -> io::Result<Runtime> {
        Ok(Runtime {
            core: Rc::new(core::Core::new(
                self.paused_clock,
                self.autojump,
                self.instrument,
            )?),
            _not_send: PhantomData,
        })
    }
}

/// A snapshot of what a [`Runtime`] holds: [`Runtime::resources`].
///
/// Every field is a count of live entries; a finished program leaves all of them at
/// zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Resources {
    /// Tasks not finished (the `block_on` task included while it runs).
    pub tasks: usize,
    /// Pending timers (sleeps and scope deadlines).
    pub timers: usize,
    /// Nodes of the cancel-status tree (entered scopes and groups, task roots), and
    /// the links of task-group children that have no root of their own yet.
    pub scope_nodes: usize,
    /// Blocked operations registered to be woken by a cancellation.
    pub cancel_registrations: usize,
    /// Reactor sources (sockets, pipes, signal streams).
    pub io_sources: usize,
    /// Scopes reachable through a [`CancelHandle`](crate::CancelHandle).
    pub cancel_handles: usize,
}

impl Runtime {
    /// How many reactor sources are registered (tests outside `runtime/`).
    #[cfg(test)]
    pub(crate) fn reactor_sources(&self) -> usize {
        self.core.reactor().source_count()
    }

    /// A runtime on the real clock.
    pub fn new() -> io::Result<Runtime> {
        Builder::default().build()
    }

    /// A [`Builder`] for more options.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// Runs `fut` to completion on this thread, running spawned tasks meanwhile.
    /// `fut` runs as a task (named `main`), so checkpoints and scopes work in it.
    ///
    /// # Panics
    ///
    /// If called from inside a running runtime, and when `fut` panics (the panic
    /// resumes here).
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        core::block_on(&self.core, fut)
    }

    /// How many tasks have not finished: spawned tasks and group children still
    /// running or waiting to run, plus the `block_on` task while it runs.
    ///
    /// ```
    /// use scope_runtime::{Runtime, spawn, sleep, Cancelled};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().paused_clock(true).build()?;
    /// assert_eq!(rt.live_tasks(), 0);
    /// let h = rt.block_on(async {
    ///     spawn(async { sleep(Duration::from_secs(1)).await?; Ok::<_, Cancelled>(()) })
    /// });
    /// assert_eq!(rt.live_tasks(), 1, "the spawned task is still asleep");
    /// rt.block_on(h).unwrap().unwrap();
    /// assert_eq!(rt.live_tasks(), 0);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn live_tasks(&self) -> usize {
        self.core.live_tasks()
    }

    /// What the runtime holds right now (see [`Resources`]). Between `block_on` calls
    /// of a program that finished its work, everything is zero: a leak shows here.
    ///
    /// ```
    /// use scope_runtime::{Runtime, Resources, sleep, move_on_after, Cancelled};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().paused_clock(true).build()?;
    /// rt.block_on(async {
    ///     let r = move_on_after(Duration::from_secs(1), async {
    ///         sleep(Duration::from_secs(5)).await?;
    ///         Ok::<_, Cancelled>(())
    ///     })
    ///     .await;
    ///     assert_eq!(r, Ok(None));
    /// });
    /// assert_eq!(rt.resources(), Resources::default());
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn resources(&self) -> Resources {
        self.core.resources()
    }

    /// A [`Dump`] of the tree of tasks and scopes this runtime holds now: between
    /// `block_on` calls (the tasks left are frozen where they wait), or from inside
    /// (like [`dump`](crate::dump)).
    ///
    /// ```
    /// use scope_runtime::{Runtime, spawn_named, sleep, Cancelled};
    /// use std::time::Duration;
    ///
    /// let rt = Runtime::builder().paused_clock(true).build()?;
    /// let _h = rt.block_on(async {
    ///     spawn_named("sleeper", async {
    ///         sleep(Duration::from_secs(3)).await?;
    ///         Ok::<_, Cancelled>(())
    ///     })
    /// });
    /// rt.block_on(scope_runtime::yield_now()); // let it reach its sleep
    /// let text = rt.dump().to_string();
    /// assert!(text.contains("`sleeper`"));
    /// assert!(text.contains("waiting on sleep, 3.000s left"), "{text}");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn dump(&self) -> Dump {
        observe::dump::snapshot(&self.core)
    }

    /// A handle that other threads use to ask this runtime for a [`Dump`]
    /// ([`DumpHandle::request`]).
    pub fn dump_handle(&self) -> DumpHandle {
        DumpHandle::new(self.core.shared().clone())
    }

    /// A handle other threads use to run code on this runtime and get its result
    /// (see [`RemoteHandle`]).
    pub fn remote(&self) -> RemoteHandle {
        RemoteHandle::new(self.core.shared().clone())
    }

    /// The runtime's counters now (see [`Metrics`]).
    pub fn metrics(&self) -> Metrics {
        self.core.metrics()
    }
}

/// The counters of the runtime this code runs on (see [`Metrics`]).
///
/// # Panics
///
/// Outside a runtime (use [`Runtime::metrics`] there).
///
/// ```
/// # let rt = scope_runtime::Runtime::new()?;
/// rt.block_on(async {
///     assert_eq!(scope_runtime::metrics().live_tasks, 1); // this block_on task
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[track_caller]
pub fn metrics() -> Metrics {
    with_core(|core| core.metrics())
}

impl Drop for Runtime {
    /// Drops every task left (their destructors run, each with the runtime current).
    /// If destructors panic, every task is still dropped; then the first panic resumes
    /// (unless the thread is already unwinding).
    fn drop(&mut self) {
        if self.core.is_running() {
            return;
        }
        let _enter = core::EnterGuard::for_shutdown(&self.core);
        if let Some(panic) = self.core.shutdown() {
            if !std::thread::panicking() {
                std::panic::resume_unwind(panic);
            }
        }
    }
}

//! The metrics counters: plain `Cell<u64>`s bumped where the run loop already does the
//! thing counted, read by [`Runtime::metrics`](crate::Runtime::metrics).

use std::cell::Cell;
use std::sync::OnceLock;

/// Counters of one runtime, read at any time with
/// [`Runtime::metrics`](crate::Runtime::metrics) or [`metrics`](crate::metrics)
/// (inside it).
///
/// Counts (`u64`) only grow, from the runtime's creation; the other fields are the
/// value now. Reading them costs nothing while the runtime runs: each count is one
/// non-atomic increment where the runtime does the thing counted (the wakes from
/// other threads, one relaxed atomic increment).
///
/// ```
/// use scope_runtime::{Runtime, spawn, sleep, Cancelled};
/// use std::time::Duration;
///
/// let rt = Runtime::builder().paused_clock(true).build()?;
/// rt.block_on(async {
///     let h = spawn(async {
///         sleep(Duration::from_secs(1)).await?;
///         Ok::<_, Cancelled>(())
///     });
///     h.await.unwrap().unwrap();
/// });
/// let m = rt.metrics();
/// assert_eq!(m.tasks_spawned, 2); // the spawned task and the block_on task
/// assert_eq!(m.live_tasks, 0);
/// assert_eq!(m.timers_fired, 1);
/// assert!(m.polls >= 3);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Tasks not finished now (the `block_on` task included while it runs).
    pub live_tasks: usize,
    /// Tasks created: `spawn`, `spawn_named`, task-group children, `start`, and the
    /// `block_on` task of each `block_on` call.
    pub tasks_spawned: u64,
    /// Polls of tasks (the `block_on` task's included).
    pub polls: u64,
    /// Wakes on the runtime's own thread that put a task in the ready queue (a wake of
    /// a task already queued is not counted: it does nothing).
    pub local_wakes: u64,
    /// Wakes from other threads that put a task in the ready queue.
    pub remote_wakes: u64,
    /// Times the run loop asked the OS for I/O readiness (each may or may not block).
    pub reactor_turns: u64,
    /// Readiness events the OS reported for sockets, pipes and signal streams.
    pub io_events: u64,
    /// Timers armed: sleeps that had to wait, and scope deadlines.
    pub timers_armed: u64,
    /// Timers that fired (a sleep ended, or a deadline cancelled its scope).
    pub timers_fired: u64,
    /// Entered scopes and task groups that became cancelled (cancel called, their
    /// deadline passed, a child failed).
    pub scopes_cancelled: u64,
    /// Live threads of the process-wide blocking pool now (as
    /// [`io::blocking_threads`](crate::io::blocking_threads)).
    pub blocking_threads: usize,
}

/// The counters a runtime keeps (inside `Core`).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) spawned: Cell<u64>,
    pub(crate) polls: Cell<u64>,
    pub(crate) local_wakes: Cell<u64>,
    pub(crate) reactor_turns: Cell<u64>,
    pub(crate) io_events: Cell<u64>,
    pub(crate) timers_armed: Cell<u64>,
    pub(crate) timers_fired: Cell<u64>,
}

/// Adds `n` to a counter.
#[inline(always)]
pub(crate) fn bump(c: &Cell<u64>, n: u64) {
    c.set(c.get().wrapping_add(n));
}

/// How to read the blocking pool's thread count: set by `io/` when the process-wide
/// pool starts (before that, no thread exists).
static BLOCKING_THREADS: OnceLock<fn() -> usize> = OnceLock::new();

/// Called by `io/` when its pool starts.
pub(crate) fn set_blocking_threads(read: fn() -> usize) {
    let _ = BLOCKING_THREADS.set(read);
}

pub(crate) fn blocking_threads() -> usize {
    BLOCKING_THREADS.get().map_or(0, |read| read())
}

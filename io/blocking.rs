//! The blocking pool: [`spawn_blocking`] runs a closure on a helper thread and hands the
//! result back to the awaiting task.
//!
//! # Design
//!
//! * One pool per process, shared by every runtime (a closure needs no runtime, and
//!   threads are the scarce resource).
//! * At most [`BLOCKING_MAX_THREADS`] threads. A job submitted while every thread is
//!   busy and the limit is reached waits in a FIFO queue.
//! * A thread that finds no job for [`BLOCKING_IDLE_TIMEOUT`] exits; the pool starts
//!   threads again on demand.
//! * The result travels through a mutex-protected slot shared by the job and its
//!   [`BlockingHandle`]. The job stores the result, then wakes the waker stored by the
//!   last poll. A task waker woken from a pool thread goes through the runtime's
//!   injector and interrupts the reactor's poll (see `runtime::task`).
//! * Nothing ever kills a pool thread: cancelling (or dropping) the waiting side only
//!   detaches the result, which is dropped when the closure returns.
//!
//! Pool bookkeeping: `idle` counts waiting threads that have not been handed a wake-up;
//! `notified` counts wake-ups handed out and not yet consumed. A submit either hands a
//! wake-up to an idle thread, starts a thread, or (at the limit) leaves the job queued
//! for the next thread that finishes.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, poll_fn};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::Cancelled;
use crate::runtime::cancel::CancelWait;
use crate::runtime::observe::WaitingOn;

/// The most threads the blocking pool runs at once.
///
/// Blocking jobs are mostly waiting (disk, DNS), so the limit is well above the core
/// count, but bounded so a flood of jobs queues instead of exhausting the process.
///
/// ```
/// use scope_runtime::io::{blocking_threads, BLOCKING_MAX_THREADS};
/// assert!(blocking_threads() <= BLOCKING_MAX_THREADS);
/// ```
pub const BLOCKING_MAX_THREADS: usize = 64;

/// How long a pool thread waits for a new job before it exits.
///
/// ```
/// use scope_runtime::io::BLOCKING_IDLE_TIMEOUT;
/// assert!(BLOCKING_IDLE_TIMEOUT >= std::time::Duration::from_secs(1));
/// ```
pub const BLOCKING_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

type Job = Box<dyn FnOnce() + Send + 'static>;

struct PoolState {
    queue: VecDeque<Job>,
    threads: usize,
    /// Threads waiting for a job that have not been handed a wake-up.
    idle: usize,
    /// Wake-ups handed out and not yet consumed by a waiting thread.
    notified: usize,
}

/// A bounded pool of threads that retire when idle.
pub(crate) struct Pool {
    state: Mutex<PoolState>,
    cond: Condvar,
    max_threads: usize,
    idle_timeout: Duration,
}

impl Pool {
    pub(crate) fn new(max_threads: usize, idle_timeout: Duration) -> Arc<Pool> {
        assert!(max_threads > 0, "a blocking pool needs at least one thread");
        Arc::new(Pool {
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
            }),
            cond: Condvar::new(),
            max_threads,
            idle_timeout,
        })
    }

    /// The process-wide pool.
    fn global() -> &'static Arc<Pool> {
        static POOL: OnceLock<Arc<Pool>> = OnceLock::new();
        POOL.get_or_init(|| {
            crate::runtime::observe::metrics::set_blocking_threads(blocking_threads);
            Pool::new(BLOCKING_MAX_THREADS, BLOCKING_IDLE_TIMEOUT)
        })
    }

    /// Live threads (busy or idle).
    pub(crate) fn threads(&self) -> usize {
        self.state.lock().threads
    }

    pub(crate) fn submit(self: &Arc<Pool>, job: Job) {
        let mut st = self.state.lock();
        st.queue.push_back(job);
        if st.idle > 0 {
            st.idle -= 1;
            st.notified += 1;
            self.cond.notify_one();
            return;
        }
        if st.threads >= self.max_threads {
            return; // a busy thread picks it up when it finishes
        }
        st.threads += 1;
        drop(st);
        let pool = self.clone();
        let spawned = std::thread::Builder::new()
            .name("scope-runtime-blocking".into())
            .spawn(move || pool.work());
        if let Err(e) = spawned {
            let mut st = self.state.lock();
            st.threads -= 1;
            if st.threads == 0 {
                // No thread will ever run the queued job: fail loudly instead of hanging.
                panic!("scope_runtime: could not start a blocking-pool thread: {e}");
            }
        }
    }

    /// The loop of one pool thread.
    fn work(&self) {
        loop {
            let job = {
                let mut st = self.state.lock();
                loop {
                    if let Some(job) = st.queue.pop_front() {
                        break Some(job);
                    }
                    st.idle += 1;
                    let timed_out = self.cond.wait_for(&mut st, self.idle_timeout).timed_out();
                    if st.notified > 0 {
                        // Woken by a submit (which already took us off `idle`).
                        st.notified -= 1;
                        continue;
                    }
                    st.idle -= 1;
                    if timed_out && st.queue.is_empty() {
                        st.threads -= 1;
                        break None;
                    }
                }
            };
            match job {
                // Jobs catch the panics of their closure (see `spawn_on`); this also
                // contains what they cannot: a detached job's result whose destructor
                // panics (dropped here when the handle is gone). The thread lives on and
                // the pool's count stays true.
                Some(job) => {
                    if let Err(payload) = std::panic::catch_unwind(AssertUnwindSafe(job)) {
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(|| drop(payload)));
                    }
                }
                None => return,
            }
        }
    }
}

/// Where a job leaves its result for the handle.
struct Slot<T> {
    state: Mutex<SlotState<T>>,
}

struct SlotState<T> {
    result: Option<std::thread::Result<T>>,
    waker: Option<Waker>,
    /// The handle already returned the result.
    taken: bool,
}

/// Runs `f` on the blocking pool and returns a handle to await its result.
///
/// Use it for work that would stall the runtime's single thread: blocking syscalls,
/// file I/O, DNS, CPU-heavy computations.
///
/// * Awaiting the handle is a **checkpoint**: if the awaiting code is cancelled, the
///   await fails with `Err(Cancelled)` at once. The closure is **not** interrupted
///   (threads are never killed); its result stays in the handle (await `&mut handle`
///   to get it later) or, if the handle is dropped, is dropped when `f` returns.
/// * A panic in `f` is caught on the pool thread and resumed in the awaiting task.
/// * The closure starts even if nobody awaits the handle.
///
/// The pool is shared by the whole process, holds at most [`BLOCKING_MAX_THREADS`]
/// threads, and threads idle for [`BLOCKING_IDLE_TIMEOUT`] exit.
///
/// ```
/// use scope_runtime::io::spawn_blocking;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let sum = spawn_blocking(|| (1..=100u32).sum::<u32>()).await.unwrap();
///     assert_eq!(sum, 5050);
/// });
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    spawn_on(Pool::global(), f)
}

pub(crate) fn spawn_on<F, T>(pool: &Arc<Pool>, f: F) -> BlockingHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let slot = Arc::new(Slot {
        state: Mutex::new(SlotState {
            result: None,
            waker: None,
            taken: false,
        }),
    });
    let job_slot = slot.clone();
    pool.submit(Box::new(move || {
        let result = std::panic::catch_unwind(AssertUnwindSafe(f));
        let waker = {
            let mut st = job_slot.state.lock();
            st.result = Some(result);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }));
    BlockingHandle {
        slot,
        wait: CancelWait::new(),
    }
}

/// Live threads of the process-wide blocking pool (busy or idle), for monitoring.
///
/// ```
/// use scope_runtime::io::{blocking_threads, spawn_blocking, BLOCKING_MAX_THREADS};
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     spawn_blocking(|| ()).await.unwrap();
///     let n = blocking_threads();
///     assert!(n >= 1 && n <= BLOCKING_MAX_THREADS);
/// });
/// ```
pub fn blocking_threads() -> usize {
    Pool::global().threads()
}

/// The result of a [`spawn_blocking`] job, to be awaited.
///
/// Output: `Ok(value)`, or `Err(Cancelled)` when the awaiting code is cancelled (the
/// job keeps running; see [`spawn_blocking`]). Dropping the handle detaches the job.
///
/// ```
/// use scope_runtime::io::spawn_blocking;
/// use scope_runtime::move_on_after;
/// use std::time::Duration;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut slow = spawn_blocking(|| {
///         std::thread::sleep(Duration::from_millis(50));
///         "late"
///     });
///     // Cancelled while waiting: the job goes on and its result stays in the handle.
///     let r = move_on_after(Duration::from_millis(1), &mut slow).await;
///     assert!(r.unwrap().is_none());
///     assert_eq!(slow.await.unwrap(), "late");
/// });
/// ```
#[must_use = "dropping the handle detaches the job; await it to get the result"]
pub struct BlockingHandle<T> {
    slot: Arc<Slot<T>>,
    /// Wakes a waiting `await` when the waiting code is cancelled (R13).
    wait: CancelWait,
}

impl<T> fmt::Debug for BlockingHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingHandle")
            .field("finished", &self.is_finished())
            .finish()
    }
}

impl<T> BlockingHandle<T> {
    /// Whether the job has returned (or panicked).
    ///
    /// ```
    /// use scope_runtime::io::spawn_blocking;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut h = spawn_blocking(|| 7);
    ///     assert_eq!((&mut h).await.unwrap(), 7);
    ///     assert!(h.is_finished());
    /// });
    /// ```
    pub fn is_finished(&self) -> bool {
        let st = self.slot.state.lock();
        st.result.is_some() || st.taken
    }

    /// Polls for the result without the cancellation check.
    pub(crate) fn poll_result(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        let mut st = self.slot.state.lock();
        match st.result.take() {
            Some(res) => {
                st.taken = true;
                drop(st);
                match res {
                    Ok(v) => Poll::Ready(v),
                    Err(payload) => resume(payload),
                }
            }
            None => {
                if st.taken {
                    panic!("BlockingHandle polled after it returned its result");
                }
                match &mut st.waker {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    other => *other = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// Waits for the result, ignoring cancellation (for operations that must report
    /// what they did once started).
    pub(crate) async fn join_uncancellable(mut self) -> T {
        poll_fn(|cx| self.poll_result(cx)).await
    }
}

fn resume(payload: Box<dyn Any + Send>) -> ! {
    std::panic::resume_unwind(payload)
}

impl<T> Future for BlockingHandle<T> {
    type Output = Result<T, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.wait.check()?;
        match self.poll_result(cx) {
            Poll::Ready(v) => {
                self.wait.disarm();
                Poll::Ready(Ok(v))
            }
            Poll::Pending => {
                let waker = cx.waker();
                self.wait.arm(waker, WaitingOn::BlockingJob);
                Poll::Pending
            }
        }
    }
}

impl<T> Unpin for BlockingHandle<T> {}

/// Runs `f` on the pool and waits for it **without** honouring a cancellation that
/// arrives while it runs: the call is a checkpoint on entry only. For operations whose
/// effect cannot be taken back and must be reported (file reads and writes).
pub(crate) async fn run_to_completion<F, T>(f: F) -> Result<T, Cancelled>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    crate::check_cancelled()?;
    Ok(spawn_blocking(f).join_uncancellable().await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
        let t0 = Instant::now();
        while !cond() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "timed out waiting until {what}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "OS threads and real time")]
    fn threads_are_bounded_and_retire_when_idle() {
        let pool = Pool::new(3, Duration::from_millis(50));
        let running = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        for _ in 0..30 {
            let (running, max_seen, done) = (running.clone(), max_seen.clone(), done.clone());
            drop(spawn_on(&pool, move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_seen.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
                running.fetch_sub(1, Ordering::SeqCst);
                done.fetch_add(1, Ordering::SeqCst);
            }));
        }
        wait_until("all jobs ran", || done.load(Ordering::SeqCst) == 30);
        assert!(max_seen.load(Ordering::SeqCst) <= 3);
        assert!(pool.threads() <= 3);
        wait_until("idle threads retired", || pool.threads() == 0);
        // The pool starts threads again on demand.
        let h = spawn_on(&pool, || 5);
        wait_until("the job ran", || h.is_finished());
        assert!(pool.threads() <= 1);
    }

    #[test]
    #[cfg_attr(miri, ignore = "OS threads and real time")]
    fn a_panicking_job_does_not_kill_the_pool() {
        let pool = Pool::new(1, Duration::from_millis(50));
        let bad = spawn_on(&pool, || panic!("job panicked"));
        let good = spawn_on(&pool, || 1);
        wait_until("both jobs ran", || bad.is_finished() && good.is_finished());
        assert_eq!(pool.threads(), 1);
    }

    /// A detached job whose *result* panics when dropped (on the pool thread, as the
    /// handle is gone) neither kills the thread uncounted nor stops the pool.
    #[test]
    #[cfg_attr(miri, ignore = "OS threads and real time")]
    fn a_detached_result_that_panics_on_drop_does_not_kill_the_pool() {
        struct PanicsOnDrop;
        impl Drop for PanicsOnDrop {
            fn drop(&mut self) {
                panic!("result dropped");
            }
        }
        let pool = Pool::new(1, Duration::from_secs(60));
        let ran = Arc::new(AtomicUsize::new(0));
        // Each job finishes only after its handle is gone, so its result is dropped on
        // the pool thread (not here).
        let released = Arc::new(std::sync::atomic::AtomicBool::new(false));
        for _ in 0..3 {
            let (ran, released) = (ran.clone(), released.clone());
            drop(spawn_on(&pool, move || {
                wait_until("the handle is dropped", || released.load(Ordering::SeqCst));
                ran.fetch_add(1, Ordering::SeqCst);
                PanicsOnDrop
            }));
        }
        released.store(true, Ordering::SeqCst);
        wait_until("the jobs ran", || ran.load(Ordering::SeqCst) == 3);
        let good = spawn_on(&pool, || 1);
        wait_until("a later job ran", || good.is_finished());
        assert_eq!(pool.threads(), 1, "the one thread survived and is counted");
    }
}

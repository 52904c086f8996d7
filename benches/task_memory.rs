//! B9 `task_memory`: bytes allocated per idle task, side by side (see
//! `docs/benchmarks.md`); the headline row has the tasks blocked on each runtime's own
//! semaphore.
//!
//! A counting global allocator tracks the live heap bytes and the number of
//! allocations. For each runtime, on a fresh runtime, inside its `block_on`:
//!
//! 1. note the live bytes;
//! 2. spawn 100,000 detached tasks, each running the same never-completing future
//!    [`Hold`] (see below), and yield until every one of them has been polled once and
//!    is parked;
//! 3. note the live bytes again: `(after - before) / 100,000` is the per-task cost.
//!
//! **What the tasks block on**: [`Hold`], a hand-written future that on its first poll
//! stores a clone of its waker (as a semaphore or `Event` waiter would) and then stays
//! `Pending` forever. It allocates nothing itself (cloning any of the three runtimes'
//! wakers is a reference-count increment), and it is the very same type in all three
//! runtimes, so the difference is the runtimes' own per-task cost.
//!
//! Three figures are reported per runtime, the headline row first:
//!
//! * **semaphore, cold** (the headline row, `B9`, the one issue 11's target applies
//!   to) — a freshly built runtime; each task blocks in `acquire()` on its runtime's
//!   **own** semaphore (0 permits, shared through an `Arc`): task plus waiter storage,
//!   as a program that limits concurrency with a semaphore pays it. The futures differ
//!   per runtime here (each is that runtime's idiomatic acquire).
//! * **`Hold`, cold** (secondary) — a freshly built runtime: everything the runtime
//!   grows to hold 100,000 idle tasks counts, including containers (slabs, run queues)
//!   grown on the way and their spare capacity; the same future type in every runtime.
//! * **`Hold`, warm** (secondary) — the same runtime had already run 100,000 short
//!   tasks to completion, so containers that keep their capacity are already grown:
//!   only allocations made per task remain (boxes, `Arc`s, `Rc`s).
//!
//! Plus, for information, ours with the `Hold` tasks spawned into a `task_group` (the
//! structured way) instead of detached `spawn`. Each measurement also reports how long
//! dropping the runtime with its 100,000 idle tasks took.
//!
//! ```text
//! cargo bench --bench task_memory
//! BENCH_QUICK=1 cargo bench --bench task_memory   # same work, fewer repetitions
//! ```

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use common::{all_started, middle_by, ours_rt, reset_started, started, tokio_rt};

// ---------------------------------------------------------------------------------
// Counting allocator.
// ---------------------------------------------------------------------------------

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the same arguments and only adds
// relaxed counter updates, so the `GlobalAlloc` contract is `System`'s.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` was allocated by `System` with `layout`.
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded unchanged; the caller upholds `realloc`'s contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_BYTES.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Snapshot {
    bytes: isize,
    allocs: usize,
}

fn snapshot() -> Snapshot {
    Snapshot {
        bytes: LIVE_BYTES.load(Ordering::Relaxed),
        allocs: ALLOCS.load(Ordering::Relaxed),
    }
}

#[derive(Clone, Copy, Debug)]
struct PerTask {
    bytes: f64,
    allocs: f64,
    /// How long dropping the runtime (with its 100,000 idle tasks) took afterwards.
    drop_time: Duration,
}

fn per_task(before: Snapshot, after: Snapshot) -> PerTask {
    PerTask {
        bytes: (after.bytes - before.bytes) as f64 / TASKS as f64,
        allocs: (after.allocs - before.allocs) as f64 / TASKS as f64,
        drop_time: Duration::ZERO,
    }
}

// ---------------------------------------------------------------------------------
// The blocking point: the same future type in every runtime.
// ---------------------------------------------------------------------------------

const TASKS: usize = 100_000;

/// Never completes. On its first poll it counts itself as started and keeps a clone of
/// its waker, like the waiter of a semaphore that never gets a permit.
struct Hold<O> {
    waker: Option<Waker>,
    _out: PhantomData<fn() -> O>,
}

impl<O> Hold<O> {
    fn new() -> Self {
        Hold {
            waker: None,
            _out: PhantomData,
        }
    }
}

impl<O> Unpin for Hold<O> {}

impl<O> Future for Hold<O> {
    type Output = O;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
        if self.waker.is_none() {
            started();
            self.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// What the idle tasks wait on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Block {
    /// [`Hold`]: the same future type in every runtime (the table's row).
    Hold,
    /// `acquire()` on each runtime's own semaphore, created with 0 permits and shared
    /// through an `Arc` (ours: `scope_runtime::sync::Semaphore`; tokio:
    /// `tokio::sync::Semaphore`; smol: `smol::lock::Semaphore`, i.e. async-lock).
    /// Measures task + waiter storage together; the futures differ per runtime.
    Semaphore,
}

// ---------------------------------------------------------------------------------
// One measurement per runtime (fresh runtime each time).
// ---------------------------------------------------------------------------------

fn ours(warm: bool, group: bool, block: Block) -> PerTask {
    let rt = ours_rt();
    let r = rt.block_on(async {
        if warm {
            let hs: Vec<_> = (0..TASKS)
                .map(|_| {
                    scope_runtime::spawn(async {
                        scope_runtime::yield_now().await;
                        Ok::<_, scope_runtime::Cancelled>(())
                    })
                })
                .collect();
            for h in hs {
                h.await.unwrap().unwrap();
            }
        }
        reset_started();
        if group {
            // The children never reach a checkpoint, so the group would wait for them
            // forever: measure inside the body, then drop the group's future (which
            // drops its children in place).
            let out = std::rc::Rc::new(std::cell::Cell::new(None));
            let o = out.clone();
            let group = scope_runtime::task_group(|tg| async move {
                let before = snapshot();
                for _ in 0..TASKS {
                    tg.spawn(Hold::<Result<(), scope_runtime::BoxError>>::new());
                }
                while !all_started(TASKS) {
                    scope_runtime::yield_now().await;
                }
                scope_runtime::yield_now().await;
                o.set(Some(per_task(before, snapshot())));
                Ok(())
            });
            let measured = std::future::poll_fn(|_| match out.get() {
                Some(m) => Poll::Ready(m),
                None => Poll::Pending,
            });
            match futures::future::select(Box::pin(group), Box::pin(measured)).await {
                futures::future::Either::Right((m, _group)) => m,
                futures::future::Either::Left(_) => unreachable!("the group cannot finish"),
            }
        } else if block == Block::Semaphore {
            let sem = Arc::new(scope_runtime::sync::Semaphore::new(0));
            let before = snapshot();
            for _ in 0..TASKS {
                let sem = sem.clone();
                drop(scope_runtime::spawn::<_, (), scope_runtime::Cancelled>(
                    async move {
                        started();
                        let _permit = sem.acquire().await?;
                        unreachable!("the semaphore has no permits")
                    },
                ));
            }
            while !all_started(TASKS) {
                scope_runtime::yield_now().await;
            }
            scope_runtime::yield_now().await;
            per_task(before, snapshot())
        } else {
            let before = snapshot();
            for _ in 0..TASKS {
                drop(scope_runtime::spawn(Hold::<
                    Result<(), scope_runtime::Cancelled>,
                >::new()));
            }
            while !all_started(TASKS) {
                scope_runtime::yield_now().await;
            }
            scope_runtime::yield_now().await;
            per_task(before, snapshot())
        }
    });
    timed_drop(r, rt)
}

fn tokio(warm: bool, block: Block) -> PerTask {
    let rt = tokio_rt();
    let r = rt.block_on(async {
        if warm {
            let hs: Vec<_> = (0..TASKS)
                .map(|_| tokio::spawn(async { tokio::task::yield_now().await }))
                .collect();
            for h in hs {
                h.await.unwrap();
            }
        }
        reset_started();
        let sem = Arc::new(tokio::sync::Semaphore::new(0));
        let before = snapshot();
        for _ in 0..TASKS {
            if block == Block::Semaphore {
                let sem = sem.clone();
                drop(tokio::spawn(async move {
                    started();
                    let _permit = sem.acquire().await;
                    unreachable!("the semaphore has no permits")
                }));
            } else {
                drop(tokio::spawn(Hold::<()>::new()));
            }
        }
        while !all_started(TASKS) {
            tokio::task::yield_now().await;
        }
        tokio::task::yield_now().await;
        per_task(before, snapshot())
    });
    timed_drop(r, rt)
}

fn smol(warm: bool, block: Block) -> PerTask {
    let ex = smol::LocalExecutor::new();
    let r = async_io::block_on(ex.run(async {
        if warm {
            let hs: Vec<_> = (0..TASKS)
                .map(|_| ex.spawn(async { smol::future::yield_now().await }))
                .collect();
            for h in hs {
                h.await;
            }
        }
        reset_started();
        let sem = Arc::new(smol::lock::Semaphore::new(0));
        let before = snapshot();
        for _ in 0..TASKS {
            if block == Block::Semaphore {
                let sem = sem.clone();
                ex.spawn(async move {
                    started();
                    let _guard = sem.acquire().await;
                    unreachable!("the semaphore has no permits")
                })
                .detach();
            } else {
                ex.spawn(Hold::<()>::new()).detach();
            }
        }
        while !all_started(TASKS) {
            smol::future::yield_now().await;
        }
        smol::future::yield_now().await;
        per_task(before, snapshot())
    }));
    timed_drop(r, ex)
}

/// Drops the runtime (and with it the 100,000 idle tasks), recording how long it took.
fn timed_drop<R>(mut r: PerTask, rt: R) -> PerTask {
    let t = Instant::now();
    drop(rt);
    r.drop_time = t.elapsed();
    r
}

/// The median by bytes (the upper one for an even count).
fn median(v: Vec<PerTask>) -> PerTask {
    middle_by(v, |a, b| a.bytes.total_cmp(&b.bytes))
}

fn main() {
    let reps = if common::quick() { 1 } else { 3 };
    println!(
        "B9 task_memory: {TASKS} idle tasks; bytes = live-heap delta / {TASKS} (median of {reps}); mode: {}",
        common::mode()
    );
    // Start async-io's helper thread and any lazily allocated globals before measuring.
    let _ = smol(false, Block::Hold);
    let _ = tokio(false, Block::Hold);
    let _ = ours(false, false, Block::Hold);

    for (block, warm) in [
        (Block::Semaphore, false), // the headline row
        (Block::Hold, false),
        (Block::Hold, true),
    ] {
        let mut o = Vec::new();
        let mut t = Vec::new();
        let mut s = Vec::new();
        for _ in 0..reps {
            o.push(ours(warm, false, block));
            t.push(tokio(warm, block));
            s.push(smol(warm, block));
        }
        let (o, t, s) = (median(o), median(t), median(s));
        let (kind, id) = match (block, warm) {
            (Block::Semaphore, _) => ("own semaphore, cold", "B9"),
            (Block::Hold, false) => ("Hold, cold", "B9 (secondary)"),
            (Block::Hold, true) => ("Hold, warm", "B9 (secondary)"),
        };
        let headline = if id == "B9" { " (headline row)" } else { "" };
        println!("\n{kind}{headline}:");
        for (name, r) in [("ours", o), ("tokio", t), ("smol", s)] {
            println!(
                "  {name:<6} {:>8.1} B/task  {:.2} allocs/task   (dropping the runtime with the idle tasks: {:?})",
                r.bytes, r.allocs, r.drop_time
            );
        }
        println!(
            "  ours / smol = {:.2} (target ≤ 0.90)   ours / tokio = {:.2}",
            o.bytes / s.bytes,
            o.bytes / t.bytes
        );
        println!(
            "  | {id} | task_memory, bytes per idle task ({kind}) | {:.0} B | {:.0} B | {:.0} B | {:.2} | {:.2} | ≤ 0.9× smol's bytes |",
            o.bytes,
            t.bytes,
            s.bytes,
            t.bytes / o.bytes,
            s.bytes / o.bytes
        );
    }
    let g = ours(false, true, Block::Hold);
    println!(
        "\nours, Hold, children of a task_group (cold): {:.1} B/task  {:.2} allocs/task",
        g.bytes, g.allocs
    );
}

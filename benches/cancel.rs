//! Side-by-side cancellation benchmarks (see `docs/benchmarks.md`):
//!
//! * B5 `cancel_many`    — 10,000 tasks blocked in a 1 h sleep inside one group: spawn
//!   them, wait until all are blocked, cancel the group, wait until it exits (timed
//!   end to end). tokio: `JoinSet` + `abort_all` + drain; smol: `Task::cancel`.
//! * B6 `scope_overhead` — 1,000,000 × `move_on_after(60 s, checkpoint())` that does not
//!   fire. tokio: `timeout(60 s, yield_now())`; smol: `or(yield_now, Timer::after(60 s))`.
//! * B10 `cancel_latency` — same shape as B5, timed from the cancel call to the group's
//!   exit. tokio: `CancellationToken` + `TaskTracker`, tasks `select!` on
//!   `token.cancelled()` vs the sleep; smol: a closed channel as the token, raced with
//!   `or` against the `Timer`.
//!
//! Issue 11's shapes, beside them (both fair, a user sees both): the spawner does not
//! wait until every child reports that it is blocked (no shared counter), it yields
//! once — which runs every queued child up to its sleep — and cancels.
//!
//! * B5s `cancel_many_with_spawn` — spawn 10,000 children into one group, each blocks
//!   in a 1 h sleep, one `yield_now`, `tg.cancel()`, wait for the group; timed from
//!   before the first spawn to the group's exit. tokio: `JoinSet` + `abort_all` +
//!   drain; smol: `join_all` over `Task::cancel`.
//! * B10y `cancel_latency_after_yield` — the same children, timed from just before
//!   `tg.cancel()` to the group's exit. tokio and smol as in B10 (token + `TaskTracker`;
//!   a closed channel), after one `yield_now`.
//!
//! Both have a second row of ours, `ours/unboxed`: the children go through
//! `TaskGroup::spawn_cancel_only` (`Result<(), Cancelled>`), so a child's `Cancelled`
//! is not put in a `BoxError` box by its `?`; `ours` is the plain `spawn` every user
//! writes first. Each row reports wall-clock and process CPU time, medians of the
//! interleaved iterations, and the ratios `peer / ours`.
//!
//! ```text
//! cargo bench --bench cancel                  # full: 2 warm-up + 15 measured iterations
//! BENCH_QUICK=1 cargo bench --bench cancel    # quick: 1 warm-up + 5 measured iterations
//! BENCH_ITERS=31 cargo bench --bench cancel   # any number of measured iterations
//! cargo bench --bench cancel -- B10           # only the rows whose id or name contains "B10"
//! BENCH_ONLY=ours cargo bench --bench cancel   # one runtime alone (for a profiler)
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{
    Runner, Sample, Stamp, all_started, ours_rt, reset_started, smol_block_on, smol_ex, started,
    tokio_rt,
};

const HOUR: Duration = Duration::from_secs(3600);
const CANCEL_CHILDREN: usize = 10_000;

// ---------------------------------------------------------------------------------
// B5 cancel_many: the whole lifecycle — spawn 10,000 children that block in a 1 h
// sleep, wait until all are blocked, cancel them all, wait until all have exited.
// ---------------------------------------------------------------------------------

fn b5() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    reset_started();
                    let t = Stamp::now();
                    let r = scope_runtime::task_group(|tg| async move {
                        for _ in 0..CANCEL_CHILDREN {
                            tg.spawn(async {
                                started();
                                scope_runtime::sleep(HOUR).await?;
                                unreachable!("the 1 h sleep was not cancelled")
                            });
                        }
                        while !all_started(CANCEL_CHILDREN) {
                            scope_runtime::yield_now().await;
                        }
                        tg.cancel();
                        Ok(())
                    })
                    .await;
                    let s = t.elapsed();
                    assert!(r.is_ok(), "the group absorbs its own cancellation");
                    s
                })
            }),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    reset_started();
                    let t = Stamp::now();
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..CANCEL_CHILDREN {
                        set.spawn(async {
                            started();
                            tokio::time::sleep(HOUR).await;
                            unreachable!("the 1 h sleep was not cancelled")
                        });
                    }
                    while !all_started(CANCEL_CHILDREN) {
                        tokio::task::yield_now().await;
                    }
                    set.abort_all();
                    while let Some(r) = set.join_next().await {
                        assert!(r.unwrap_err().is_cancelled());
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    reset_started();
                    let t = Stamp::now();
                    let tasks: Vec<smol::Task<()>> = (0..CANCEL_CHILDREN)
                        .map(|_| {
                            ex.spawn(async {
                                started();
                                smol::Timer::after(HOUR).await;
                                unreachable!("the 1 h sleep was not cancelled")
                            })
                        })
                        .collect();
                    while !all_started(CANCEL_CHILDREN) {
                        smol::future::yield_now().await;
                    }
                    // `Task::cancel` is lazy: join_all first cancels every task, then
                    // waits for each (cancel all, then drain — like abort_all + drain).
                    let outs =
                        futures::future::join_all(tasks.into_iter().map(|t| t.cancel())).await;
                    assert!(outs.iter().all(Option::is_none));
                    t.elapsed()
                })
            }),
        ),
    ];
    common::run("B5", "cancel_many", "≥ 1.5× tokio", variants);
}

// ---------------------------------------------------------------------------------
// B10 cancel_latency: same shape, measured from the cancel call to the group's exit.
// ---------------------------------------------------------------------------------

fn b10() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    reset_started();
                    let stamp = std::rc::Rc::new(std::cell::Cell::new(None));
                    let st = stamp.clone();
                    let r = scope_runtime::task_group(|tg| async move {
                        for _ in 0..CANCEL_CHILDREN {
                            tg.spawn(async {
                                started();
                                scope_runtime::sleep(HOUR).await?;
                                unreachable!("the 1 h sleep was not cancelled")
                            });
                        }
                        while !all_started(CANCEL_CHILDREN) {
                            scope_runtime::yield_now().await;
                        }
                        st.set(Some(Stamp::now()));
                        tg.cancel();
                        Ok(())
                    })
                    .await;
                    let s = stamp.take().expect("cancel was called").elapsed();
                    assert!(r.is_ok(), "the group absorbs its own cancellation");
                    s
                })
            }),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    reset_started();
                    let token = tokio_util::sync::CancellationToken::new();
                    let tracker = tokio_util::task::TaskTracker::new();
                    for _ in 0..CANCEL_CHILDREN {
                        let token = token.clone();
                        tracker.spawn(async move {
                            started();
                            tokio::select! {
                                _ = token.cancelled() => {}
                                _ = tokio::time::sleep(HOUR) => unreachable!("the 1 h sleep was not cancelled"),
                            }
                        });
                    }
                    while !all_started(CANCEL_CHILDREN) {
                        tokio::task::yield_now().await;
                    }
                    let t = Stamp::now();
                    token.cancel();
                    tracker.close();
                    tracker.wait().await;
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    reset_started();
                    // smol has no cancellation token: a closed channel plays that part
                    // (closing wakes every receiver), raced against the sleep.
                    let (tx, rx) = smol::channel::bounded::<()>(1);
                    let tasks: Vec<smol::Task<()>> = (0..CANCEL_CHILDREN)
                        .map(|_| {
                            let rx = rx.clone();
                            ex.spawn(smol_child(rx, started))
                        })
                        .collect();
                    while !all_started(CANCEL_CHILDREN) {
                        smol::future::yield_now().await;
                    }
                    let t = Stamp::now();
                    tx.close();
                    for task in tasks {
                        task.await;
                    }
                    t.elapsed()
                })
            }),
        ),
    ];
    common::run("B10", "cancel_latency", "≥ 1.5× tokio", variants);
}

// ---------------------------------------------------------------------------------
// B5s cancel_many_with_spawn: the issue's shape of B5 — spawn 10,000 children that block
// in a 1 h sleep, one `yield_now` (no waiting until every child reports it blocked),
// cancel them all, wait until all have exited; timed end to end.
// ---------------------------------------------------------------------------------

/// Children of B5s / B10y that have reached their sleep: bumped right before it (the
/// same relaxed increment in every runtime), reset before each spawn loop.
static REACHED: AtomicUsize = AtomicUsize::new(0);

/// Per variant of B5s / B10y (in the order of the row), how many children had reached
/// their sleep when the cancel was called, in the last iteration. With one `yield_now`
/// tokio's current-thread scheduler resumes the spawner after a batch of tasks (its
/// event interval), so most of its children are still unpolled then; ours and smol run
/// every queued child first. The row prints it, as it explains part of the ratio.
static AT_CANCEL: [AtomicUsize; 4] = [const { AtomicUsize::new(0) }; 4];

/// A smol child of B10 / B10y: marks itself (`mark`), then waits until the channel
/// closes (smol's stand-in for a cancel token), raced against a 1 h timer.
async fn smol_child(rx: smol::channel::Receiver<()>, mark: fn()) {
    mark();
    let cancelled = smol::future::or(
        async move {
            let _ = rx.recv().await;
            true
        },
        async {
            smol::Timer::after(HOUR).await;
            false
        },
    )
    .await;
    assert!(cancelled, "the 1 h sleep was not cancelled");
}

fn reached() {
    REACHED.fetch_add(1, Ordering::Relaxed);
}

fn note_at_cancel(variant: usize) {
    AT_CANCEL[variant].store(REACHED.load(Ordering::Relaxed), Ordering::Relaxed);
}

fn print_at_cancel(id: &str, name: &str) {
    if !common::selected(id, name) {
        return;
    }
    let n = |i: usize| AT_CANCEL[i].load(Ordering::Relaxed);
    println!(
        "  children at their sleep when cancelled: ours {}, ours/unboxed {}, tokio {}, smol {} (of {CANCEL_CHILDREN})",
        n(0),
        n(1),
        n(2),
        n(3)
    );
}

/// A child blocked in a 1 h sleep, written as users write it: `?` boxes its `Cancelled`
/// into the `BoxError` every `spawn` child returns.
async fn boxed_sleeper() -> Result<(), scope_runtime::BoxError> {
    reached();
    scope_runtime::sleep(HOUR).await?;
    unreachable!("the 1 h sleep was not cancelled")
}

/// The same child for `spawn_cancel_only`: its `Cancelled` reaches the group unboxed.
async fn unboxed_sleeper() -> Result<(), scope_runtime::Cancelled> {
    reached();
    scope_runtime::sleep(HOUR).await?;
    unreachable!("the 1 h sleep was not cancelled")
}

/// Ours for B5s and B10y: spawns the children (boxed or `spawn_cancel_only`), yields
/// once, then cancels the group; `from_cancel` starts the clock just before
/// `tg.cancel()` (B10y) instead of before the first spawn (B5s).
fn ours_after_yield(rt: &scope_runtime::Runtime, unboxed: bool, from_cancel: bool) -> Sample {
    rt.block_on(async {
        REACHED.store(0, Ordering::Relaxed);
        let start = Stamp::now();
        let stamp = std::rc::Rc::new(std::cell::Cell::new(None));
        let st = stamp.clone();
        let r = scope_runtime::task_group(|tg| async move {
            for _ in 0..CANCEL_CHILDREN {
                if unboxed {
                    tg.spawn_cancel_only(unboxed_sleeper());
                } else {
                    tg.spawn(boxed_sleeper());
                }
            }
            scope_runtime::yield_now().await;
            note_at_cancel(usize::from(unboxed));
            st.set(Some(Stamp::now()));
            tg.cancel();
            Ok(())
        })
        .await;
        let at_cancel = stamp.take().expect("cancel was called");
        let s = if from_cancel { at_cancel } else { start }.elapsed();
        assert!(r.is_ok(), "the group absorbs its own cancellation");
        s
    })
}

fn b5s() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        ("ours", Box::new(|| ours_after_yield(&ours, false, false))),
        (
            "ours/unboxed",
            Box::new(|| ours_after_yield(&ours, true, false)),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    REACHED.store(0, Ordering::Relaxed);
                    let t = Stamp::now();
                    let mut set = tokio::task::JoinSet::new();
                    for _ in 0..CANCEL_CHILDREN {
                        set.spawn(async {
                            reached();
                            tokio::time::sleep(HOUR).await;
                            unreachable!("the 1 h sleep was not cancelled")
                        });
                    }
                    tokio::task::yield_now().await;
                    note_at_cancel(2);
                    set.abort_all();
                    while let Some(r) = set.join_next().await {
                        assert!(r.unwrap_err().is_cancelled());
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    REACHED.store(0, Ordering::Relaxed);
                    let t = Stamp::now();
                    let tasks: Vec<smol::Task<()>> = (0..CANCEL_CHILDREN)
                        .map(|_| {
                            ex.spawn(async {
                                reached();
                                smol::Timer::after(HOUR).await;
                                unreachable!("the 1 h sleep was not cancelled")
                            })
                        })
                        .collect();
                    smol::future::yield_now().await;
                    note_at_cancel(3);
                    let outs =
                        futures::future::join_all(tasks.into_iter().map(|t| t.cancel())).await;
                    assert!(outs.iter().all(Option::is_none));
                    t.elapsed()
                })
            }),
        ),
    ];
    common::run("B5s", "cancel_many_with_spawn", "≥ 1.5× tokio", variants);
    print_at_cancel("B5s", "cancel_many_with_spawn");
}

// ---------------------------------------------------------------------------------
// B10y cancel_latency_after_yield: the issue's shape of B10 — children blocked after one
// `yield_now`, timed from the cancel call to the group's exit.
// ---------------------------------------------------------------------------------

fn b10y() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        ("ours", Box::new(|| ours_after_yield(&ours, false, true))),
        (
            "ours/unboxed",
            Box::new(|| ours_after_yield(&ours, true, true)),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    REACHED.store(0, Ordering::Relaxed);
                    let token = tokio_util::sync::CancellationToken::new();
                    let tracker = tokio_util::task::TaskTracker::new();
                    for _ in 0..CANCEL_CHILDREN {
                        let token = token.clone();
                        tracker.spawn(async move {
                            reached();
                            tokio::select! {
                                _ = token.cancelled() => {}
                                _ = tokio::time::sleep(HOUR) => unreachable!("the 1 h sleep was not cancelled"),
                            }
                        });
                    }
                    tokio::task::yield_now().await;
                    note_at_cancel(2);
                    let t = Stamp::now();
                    token.cancel();
                    tracker.close();
                    tracker.wait().await;
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    REACHED.store(0, Ordering::Relaxed);
                    let (tx, rx) = smol::channel::bounded::<()>(1);
                    let tasks: Vec<smol::Task<()>> = (0..CANCEL_CHILDREN)
                        .map(|_| {
                            let rx = rx.clone();
                            ex.spawn(smol_child(rx, reached))
                        })
                        .collect();
                    smol::future::yield_now().await;
                    note_at_cancel(3);
                    let t = Stamp::now();
                    tx.close();
                    for task in tasks {
                        task.await;
                    }
                    t.elapsed()
                })
            }),
        ),
    ];
    common::run(
        "B10y",
        "cancel_latency_after_yield",
        "≥ 1.5× tokio",
        variants,
    );
    print_at_cancel("B10y", "cancel_latency_after_yield");
}

// ---------------------------------------------------------------------------------
// B6 scope_overhead: 1,000,000 timeouts around one yield that do not fire.
// ---------------------------------------------------------------------------------

const SCOPES: usize = 1_000_000;
const SIXTY_S: Duration = Duration::from_secs(60);

fn b6() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    for _ in 0..SCOPES {
                        let r = scope_runtime::move_on_after(SIXTY_S, scope_runtime::checkpoint())
                            .await;
                        assert!(matches!(r, Ok(Some(()))));
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    let t = Stamp::now();
                    for _ in 0..SCOPES {
                        let r = tokio::time::timeout(SIXTY_S, tokio::task::yield_now()).await;
                        assert!(r.is_ok());
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let t = Stamp::now();
                    for _ in 0..SCOPES {
                        let done = smol::future::or(
                            async {
                                smol::future::yield_now().await;
                                true
                            },
                            async {
                                smol::Timer::after(SIXTY_S).await;
                                false
                            },
                        )
                        .await;
                        assert!(done);
                    }
                    t.elapsed()
                })
            }),
        ),
    ];
    common::run("B6", "scope_overhead", "≥ 1.5× tokio", variants);
}

fn main() {
    println!(
        "cancel benchmarks: scope_runtime vs tokio (current_thread) vs smol (LocalExecutor); mode: {}",
        common::mode()
    );
    b5();
    b5s();
    b6();
    b10();
    b10y();
}

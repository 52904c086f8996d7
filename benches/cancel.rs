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
//! ```text
//! cargo bench --bench cancel                  # full: 2 warm-up + 15 measured iterations
//! BENCH_QUICK=1 cargo bench --bench cancel    # quick: 1 warm-up + 5 measured iterations
//! BENCH_ITERS=31 cargo bench --bench cancel   # any number of measured iterations
//! cargo bench --bench cancel -- B10           # only the rows whose id or name contains "B10"
//! BENCH_ONLY=ours cargo bench --bench cancel   # one runtime alone (for a profiler)
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smol::LocalExecutor;

// ---------------------------------------------------------------------------------
// Harness (same as benches/core.rs: bench targets cannot share a module without
// adding files).
// ---------------------------------------------------------------------------------

mod harness {
    use super::*;

    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    unsafe extern "C" {
        fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
    }

    /// `CLOCK_PROCESS_CPUTIME_ID` on Linux: CPU time of all threads of the process
    /// (includes helper threads such as async-io's, excludes time spent descheduled).
    const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;

    fn cpu_now() -> Duration {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit fields on
        // 64-bit Linux) and the clock id is a valid constant.
        let rc = unsafe { clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    /// One measurement: wall-clock and process CPU time.
    #[derive(Clone, Copy, Debug)]
    pub struct Sample {
        pub wall: Duration,
        pub cpu: Duration,
    }

    /// Started right before the measured work, inside the runtime's `block_on`.
    pub struct Stamp {
        wall: Instant,
        cpu: Duration,
    }

    impl Stamp {
        pub fn now() -> Stamp {
            Stamp {
                wall: Instant::now(),
                cpu: cpu_now(),
            }
        }
        pub fn elapsed(&self) -> Sample {
            let wall = self.wall.elapsed();
            Sample {
                wall,
                cpu: cpu_now().saturating_sub(self.cpu),
            }
        }
    }

    pub fn quick() -> bool {
        std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
    }

    fn iterations() -> (usize, usize) {
        let (warm, iters) = if quick() { (1, 5) } else { (2, 15) };
        let iters = std::env::var("BENCH_ITERS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(iters);
        (warm, iters)
    }

    /// Filters from the command line (`cargo bench --bench core -- B1 B7`); flags that
    /// cargo passes (`--bench`) are ignored.
    pub fn selected(id: &str, name: &str) -> bool {
        let filters: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| !a.starts_with('-'))
            .collect();
        filters.is_empty()
            || filters
                .iter()
                .any(|f| id.contains(f.as_str()) || name.contains(f.as_str()))
    }

    pub type Runner<'a> = Box<dyn FnMut() -> Sample + 'a>;

    fn median(mut v: Vec<Duration>) -> Duration {
        v.sort();
        let n = v.len();
        if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2
        }
    }

    fn fmt(d: Duration) -> String {
        let ns = d.as_nanos() as f64;
        if ns >= 1e9 {
            format!("{:.3} s", ns / 1e9)
        } else if ns >= 1e6 {
            format!("{:.2} ms", ns / 1e6)
        } else {
            format!("{:.1} µs", ns / 1e3)
        }
    }

    /// Runs every variant `warm + iters` times, rotating which variant goes first in
    /// each iteration, and prints medians and ratios. The first variant is ours; the
    /// ratios compare `tokio` and `smol` against it. Extra variants (e.g. ours via a
    /// task group) are printed with their own ratio to the best peer.
    pub fn run(id: &str, name: &str, target: &str, mut variants: Vec<(&'static str, Runner<'_>)>) {
        if !selected(id, name) {
            return;
        }
        let (warm, iters) = iterations();
        // `BENCH_ONLY=ours` (or `tokio`, `smol`, `ours/tg`) runs one variant alone, e.g.
        // under a profiler; no ratios are printed then.
        if let Ok(only) = std::env::var("BENCH_ONLY") {
            variants.retain(|(label, _)| *label == only);
            for (label, f) in &mut variants {
                let mut walls: Vec<Duration> =
                    (0..warm + iters).map(|_| f().wall).skip(warm).collect();
                walls.sort();
                println!(
                    "\n{id} {name} {label}: median wall {} over {iters} iterations",
                    fmt(walls[walls.len() / 2])
                );
            }
            return;
        }
        let n = variants.len();
        let mut walls: Vec<Vec<Duration>> = vec![Vec::new(); n];
        let mut cpus: Vec<Vec<Duration>> = vec![Vec::new(); n];
        for it in 0..warm + iters {
            for k in 0..n {
                let v = (it + k) % n;
                let s = (variants[v].1)();
                if it >= warm {
                    walls[v].push(s.wall);
                    cpus[v].push(s.cpu);
                }
            }
        }
        let mw: Vec<Duration> = walls.iter().map(|w| median(w.clone())).collect();
        let mc: Vec<Duration> = cpus.iter().map(|w| median(w.clone())).collect();
        let idx = |label: &str| variants.iter().position(|(l, _)| *l == label);
        let ours = mw[0].as_secs_f64();
        let ours_cpu = mc[0].as_secs_f64();
        println!("\n{id} {name}  ({iters} iterations, median)  target: {target}");
        for (i, (label, _)) in variants.iter().enumerate() {
            let mut sorted = walls[i].clone();
            sorted.sort();
            println!(
                "  {label:<14} wall {:>10}  (min {:>10}, max {:>10})  cpu {:>10}",
                fmt(mw[i]),
                fmt(sorted[0]),
                fmt(sorted[sorted.len() - 1]),
                fmt(mc[i]),
            );
        }
        let mut best: Option<(&str, f64, f64)> = None;
        for peer in ["tokio", "smol"] {
            if let Some(i) = idx(peer) {
                let r = mw[i].as_secs_f64() / ours;
                let rc = mc[i].as_secs_f64() / ours_cpu;
                println!("  ratio {peer}/ours: wall {r:.2}x  cpu {rc:.2}x");
                if best.is_none_or(|(_, b, _)| r < b) {
                    best = Some((peer, r, rc));
                }
            }
        }
        if let Some((peer, r, rc)) = best {
            println!("  best peer: {peer}; ratio best/ours: wall {r:.2}x  cpu {rc:.2}x");
            for (i, (label, _)) in variants.iter().enumerate().skip(1) {
                if *label != "tokio" && *label != "smol" {
                    let b = mw[idx(peer).unwrap()].as_secs_f64();
                    println!(
                        "  ratio {peer}/{label}: wall {:.2}x",
                        b / mw[i].as_secs_f64()
                    );
                }
            }
        }
        let t = |i: Option<usize>| i.map_or("-".to_string(), |i| fmt(mw[i]));
        let r = |i: Option<usize>| {
            i.map_or("-".to_string(), |i| {
                format!("{:.2}", mw[i].as_secs_f64() / ours)
            })
        };
        println!(
            "  | {id} | {name} | {} | {} | {} | {} | {} | {target} |",
            fmt(mw[0]),
            t(idx("tokio")),
            t(idx("smol")),
            r(idx("tokio")),
            r(idx("smol")),
        );
    }
}

use harness::{Runner, Stamp};

// ---------------------------------------------------------------------------------
// The three runtimes.
// ---------------------------------------------------------------------------------

fn ours_rt() -> scope_runtime::Runtime {
    scope_runtime::Runtime::new().expect("scope_runtime runtime")
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// smol's executor, leaked so it is `&'static` (tasks spawned on it may borrow it).
fn smol_ex() -> &'static LocalExecutor<'static> {
    thread_local! {
        static EX: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    }
    EX.with(|e| *e)
}

fn smol_block_on<T>(fut: impl Future<Output = T>) -> T {
    async_io::block_on(smol_ex().run(fut))
}

/// How many children have reached their blocking point (reset before each run).
/// A global so no runtime pays for a per-task `Arc`/`Rc` clone.
static STARTED: AtomicUsize = AtomicUsize::new(0);

fn started() {
    STARTED.fetch_add(1, Ordering::Relaxed);
}

fn all_started(n: usize) -> bool {
    STARTED.load(Ordering::Relaxed) >= n
}

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
                    STARTED.store(0, Ordering::Relaxed);
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
                    STARTED.store(0, Ordering::Relaxed);
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
                    STARTED.store(0, Ordering::Relaxed);
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
    harness::run("B5", "cancel_many", "≥ 1.5× tokio", variants);
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
                    STARTED.store(0, Ordering::Relaxed);
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
                    STARTED.store(0, Ordering::Relaxed);
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
                    STARTED.store(0, Ordering::Relaxed);
                    // smol has no cancellation token: a closed channel plays that part
                    // (closing wakes every receiver), raced against the sleep.
                    let (tx, rx) = smol::channel::bounded::<()>(1);
                    let tasks: Vec<smol::Task<()>> = (0..CANCEL_CHILDREN)
                        .map(|_| {
                            let rx = rx.clone();
                            ex.spawn(async move {
                                started();
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
                            })
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
    harness::run("B10", "cancel_latency", "≥ 1.5× tokio", variants);
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
    harness::run("B6", "scope_overhead", "≥ 1.5× tokio", variants);
}

fn main() {
    println!(
        "cancel benchmarks: scope_runtime vs tokio (current_thread) vs smol (LocalExecutor); mode: {}",
        if harness::quick() { "quick" } else { "full" }
    );
    b5();
    b6();
    b10();
}

//! Side-by-side core benchmarks (see `docs/benchmarks.md`):
//!
//! * B1 `spawn_many`    — spawn 10,000 tasks that return at once, await all.
//! * B2 `yield_many`    — 1,000 tasks each yield 200 times.
//! * B4 `chained_spawn` — each task spawns the next, depth 1,000.
//! * B7 `timers_fire`   — 100,000 sleeps with deadlines spread over 0–50 ms, all fire.
//!
//! Every row runs the same work on scope_runtime, tokio (current-thread, `enable_all`)
//! and smol (`LocalExecutor` driven by `async_io::block_on`), interleaved iteration by
//! iteration in this one process, and prints the median wall time (and process CPU
//! time) of each plus the ratios `peer / ours` (> 1: we are faster).
//!
//! A small hand-written harness (no criterion) keeps the quick mode quick:
//!
//! ```text
//! cargo bench --bench core                  # full: 2 warm-up + 15 measured iterations
//! BENCH_QUICK=1 cargo bench --bench core    # quick: 1 warm-up + 5 measured iterations
//! BENCH_ITERS=31 cargo bench --bench core   # any number of measured iterations
//! cargo bench --bench core -- B7            # only the rows whose id or name contains "B7"
//! BENCH_ONLY=ours cargo bench --bench core   # one runtime alone (for a profiler)
//! ```

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use scope_runtime::Cancelled;
use smol::LocalExecutor;

// ---------------------------------------------------------------------------------
// Harness (duplicated in benches/cancel.rs: bench targets cannot share a module
// without adding files).
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

use harness::{Runner, Sample, Stamp};

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

/// smol's executor, leaked so spawned tasks can spawn on it (`&'static`). One per
/// process; every smol run drives it with `async_io::block_on(ex.run(..))`.
fn smol_ex() -> &'static LocalExecutor<'static> {
    thread_local! {
        static EX: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    }
    EX.with(|e| *e)
}

fn smol_block_on<T>(fut: impl Future<Output = T>) -> T {
    async_io::block_on(smol_ex().run(fut))
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T>>>;

// ---------------------------------------------------------------------------------
// B1 spawn_many
// ---------------------------------------------------------------------------------

const SPAWN_MANY: usize = 10_000;

fn b1() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    let mut handles = Vec::with_capacity(SPAWN_MANY);
                    for i in 0..SPAWN_MANY {
                        handles.push(scope_runtime::spawn(async move { Ok::<_, Cancelled>(i) }));
                    }
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await.unwrap().unwrap();
                    }
                    assert_eq!(sum, SPAWN_MANY * (SPAWN_MANY - 1) / 2);
                    t.elapsed()
                })
            }),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    let t = Stamp::now();
                    let mut handles = Vec::with_capacity(SPAWN_MANY);
                    for i in 0..SPAWN_MANY {
                        handles.push(tokio::spawn(async move { i }));
                    }
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await.unwrap();
                    }
                    assert_eq!(sum, SPAWN_MANY * (SPAWN_MANY - 1) / 2);
                    t.elapsed()
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    let t = Stamp::now();
                    let mut handles = Vec::with_capacity(SPAWN_MANY);
                    for i in 0..SPAWN_MANY {
                        handles.push(ex.spawn(async move { i }));
                    }
                    let mut sum = 0;
                    for h in handles {
                        sum += h.await;
                    }
                    assert_eq!(sum, SPAWN_MANY * (SPAWN_MANY - 1) / 2);
                    t.elapsed()
                })
            }),
        ),
        (
            "ours/tg",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    scope_runtime::task_group(|tg| async move {
                        for _ in 0..SPAWN_MANY {
                            tg.spawn(async { Ok(()) });
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
                    t.elapsed()
                })
            }),
        ),
    ];
    harness::run("B1", "spawn_many", "≥ 1.2× smol", variants);
}

// ---------------------------------------------------------------------------------
// B2 yield_many
// ---------------------------------------------------------------------------------

const YIELD_TASKS: usize = 1_000;
const YIELDS: usize = 200;

fn b2() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    let handles: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            scope_runtime::spawn(async {
                                for _ in 0..YIELDS {
                                    scope_runtime::yield_now().await;
                                }
                                Ok::<_, Cancelled>(())
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap().unwrap();
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
                    let handles: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            tokio::spawn(async {
                                for _ in 0..YIELDS {
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap();
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
                    let t = Stamp::now();
                    let handles: Vec<_> = (0..YIELD_TASKS)
                        .map(|_| {
                            ex.spawn(async {
                                for _ in 0..YIELDS {
                                    smol::future::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await;
                    }
                    t.elapsed()
                })
            }),
        ),
        (
            "ours/tg",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    scope_runtime::task_group(|tg| async move {
                        for _ in 0..YIELD_TASKS {
                            tg.spawn(async {
                                for _ in 0..YIELDS {
                                    scope_runtime::yield_now().await;
                                }
                                Ok(())
                            });
                        }
                        Ok(())
                    })
                    .await
                    .unwrap();
                    t.elapsed()
                })
            }),
        ),
    ];
    harness::run("B2", "yield_many", "≥ 1.2× best", variants);
}

// ---------------------------------------------------------------------------------
// B4 chained_spawn: each task spawns the next (detached); the last one signals the
// root through a runtime-neutral `futures` oneshot.
// ---------------------------------------------------------------------------------

const CHAIN_DEPTH: usize = 1_000;

fn chain_ours(n: usize, done: futures::channel::oneshot::Sender<()>) {
    drop(scope_runtime::spawn(async move {
        if n == 0 {
            let _ = done.send(());
        } else {
            chain_ours(n - 1, done);
        }
        Ok::<_, Cancelled>(())
    }));
}

fn chain_tokio(n: usize, done: futures::channel::oneshot::Sender<()>) {
    drop(tokio::spawn(async move {
        if n == 0 {
            let _ = done.send(());
        } else {
            chain_tokio(n - 1, done);
        }
    }));
}

fn chain_smol(n: usize, done: futures::channel::oneshot::Sender<()>) {
    smol_ex()
        .spawn(async move {
            if n == 0 {
                let _ = done.send(());
            } else {
                chain_smol(n - 1, done);
            }
        })
        .detach();
}

fn b4() {
    let ours = ours_rt();
    let tokio = tokio_rt();
    fn chained(start: fn(usize, futures::channel::oneshot::Sender<()>)) -> LocalBoxFuture<Sample> {
        Box::pin(async move {
            let t = Stamp::now();
            let (tx, rx) = futures::channel::oneshot::channel();
            start(CHAIN_DEPTH - 1, tx);
            rx.await.unwrap();
            t.elapsed()
        })
    }
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        ("ours", Box::new(|| ours.block_on(chained(chain_ours)))),
        ("tokio", Box::new(|| tokio.block_on(chained(chain_tokio)))),
        ("smol", Box::new(|| smol_block_on(chained(chain_smol)))),
    ];
    harness::run("B4", "chained_spawn", "≥ 1.2× smol", variants);
}

// ---------------------------------------------------------------------------------
// B7 timers_fire: 100,000 tasks, each sleeps until `start + offset`, offsets spread
// over 0–50 ms in a scrambled (not monotonic) order; wait for all of them.
// ---------------------------------------------------------------------------------

const TIMERS: usize = 100_000;
const TIMER_SPREAD_NS: u64 = 50_000_000;

/// The spread of the deadlines: 50 ms. `BENCH_B7_SPREAD_MS` overrides it **for profiling
/// only** (under valgrind the program runs ~50× slower, so with 50 ms every deadline has
/// passed before its sleep is first polled and no timer is ever armed); the table
/// always uses 50 ms.
fn timer_spread_ns() -> u64 {
    std::env::var("BENCH_B7_SPREAD_MS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(TIMER_SPREAD_NS, |ms| ms * 1_000_000)
}

fn timer_offset(i: usize, spread_ns: u64) -> Duration {
    // A fixed permutation of 0..TIMERS (multiplier coprime with 100,000).
    let slot = (i as u64 * 7_919) % TIMERS as u64;
    Duration::from_nanos(slot * spread_ns / TIMERS as u64)
}

fn b7() {
    let spread = timer_spread_ns();
    if spread != TIMER_SPREAD_NS {
        println!(
            "\nB7: BENCH_B7_SPREAD_MS is set: deadlines spread over {} ms (profiling only, not the table's 50 ms)",
            spread / 1_000_000
        );
    }
    let ours = ours_rt();
    let tokio = tokio_rt();
    let variants: Vec<(&'static str, Runner<'_>)> = vec![
        (
            "ours",
            Box::new(|| {
                ours.block_on(async {
                    let t = Stamp::now();
                    let base = Instant::now();
                    let handles: Vec<_> = (0..TIMERS)
                        .map(|i| {
                            let at = base + timer_offset(i, spread);
                            scope_runtime::spawn(
                                async move { scope_runtime::sleep_until(at).await },
                            )
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap().unwrap();
                    }
                    let s = t.elapsed();
                    assert!(s.wall >= Duration::from_nanos(spread) - Duration::from_millis(1));
                    s
                })
            }),
        ),
        (
            "tokio",
            Box::new(|| {
                tokio.block_on(async {
                    let t = Stamp::now();
                    let base = tokio::time::Instant::now();
                    let handles: Vec<_> = (0..TIMERS)
                        .map(|i| {
                            let at = base + timer_offset(i, spread);
                            tokio::spawn(async move { tokio::time::sleep_until(at).await })
                        })
                        .collect();
                    for h in handles {
                        h.await.unwrap();
                    }
                    let s = t.elapsed();
                    assert!(s.wall >= Duration::from_nanos(spread) - Duration::from_millis(1));
                    s
                })
            }),
        ),
        (
            "smol",
            Box::new(|| {
                smol_block_on(async {
                    let ex = smol_ex();
                    let t = Stamp::now();
                    let base = Instant::now();
                    let handles: Vec<_> = (0..TIMERS)
                        .map(|i| {
                            let at = base + timer_offset(i, spread);
                            ex.spawn(async move {
                                smol::Timer::at(at).await;
                            })
                        })
                        .collect();
                    for h in handles {
                        h.await;
                    }
                    let s = t.elapsed();
                    assert!(s.wall >= Duration::from_nanos(spread) - Duration::from_millis(1));
                    s
                })
            }),
        ),
    ];
    harness::run("B7", "timers_fire", "≥ 1.1× best", variants);
}

fn main() {
    println!(
        "core benchmarks: scope_runtime vs tokio (current_thread) vs smol (LocalExecutor); mode: {}",
        if harness::quick() { "quick" } else { "full" }
    );
    b1();
    b2();
    b4();
    b7();
}

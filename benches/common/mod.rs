//! The hand-written harness shared by the side-by-side benches (see
//! `docs/benchmarks.md`). Each bench includes it with `mod common;`; cargo does not
//! build `benches/common/mod.rs` as a bench target of its own.
//!
//! * settings: `BENCH_QUICK`, `BENCH_ITERS` (and any other numeric variable), row
//!   filters from the command line;
//! * the three runtimes: scope_runtime, tokio (current-thread, `enable_all`) and smol
//!   (`LocalExecutor` driven by `async_io::block_on`);
//! * timing: wall clock plus process CPU time ([`Stamp`], [`Sample`]);
//! * interleaved rotation of the variants, medians, duration formatting;
//! * [`run`]: one row of `core`/`cancel`, with its report and markdown table row;
//! * the "wait until blocked" counter ([`started`], [`all_started`]).
//!
//! Items that only some benches use carry `#[allow(dead_code)]`.

use std::cmp::Ordering as CmpOrdering;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use smol::LocalExecutor;

// ---------------------------------------------------------------------------------
// Settings from the environment and the command line.
// ---------------------------------------------------------------------------------

/// `BENCH_QUICK` set to anything but `""` or `"0"`: fewer iterations.
pub fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty())
}

/// `"quick"` or `"full"`, for the bench's header line.
#[allow(dead_code)]
pub fn mode() -> &'static str {
    if quick() { "quick" } else { "full" }
}

/// The environment variable `name` parsed as a number; `None` if unset or not a number.
#[allow(dead_code)]
pub fn env_usize(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|s| s.parse().ok())
}

/// `(warm-up, measured)` iterations: `quick` or `full` depending on `BENCH_QUICK`; the
/// measured count is overridden by `BENCH_ITERS`.
#[allow(dead_code)]
pub fn iterations(quick: (usize, usize), full: (usize, usize)) -> (usize, usize) {
    let (warm, iters) = if self::quick() { quick } else { full };
    (warm, env_usize("BENCH_ITERS").unwrap_or(iters))
}

/// Filters from the command line (`cargo bench --bench core -- B1 B7`): a row runs if
/// a filter is its id exactly (`B5` is not `B5s`, `B1` not `B10`) or part of its name;
/// flags that cargo passes (`--bench`) are ignored.
#[allow(dead_code)]
pub fn selected(id: &str, name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty()
        || filters
            .iter()
            .any(|f| id == f.as_str() || name.contains(f.as_str()))
}

// ---------------------------------------------------------------------------------
// The three runtimes.
// ---------------------------------------------------------------------------------

/// A fresh scope_runtime runtime.
pub fn ours_rt() -> scope_runtime::Runtime {
    scope_runtime::Runtime::new().expect("scope_runtime runtime")
}

/// A fresh tokio current-thread runtime with I/O and time enabled.
pub fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// smol's executor, leaked so it is `&'static` (spawned tasks can spawn on it and may
/// borrow it). One per thread; every smol run drives it with
/// `async_io::block_on(ex.run(..))` ([`smol_block_on`]).
#[allow(dead_code)]
pub fn smol_ex() -> &'static LocalExecutor<'static> {
    thread_local! {
        static EX: &'static LocalExecutor<'static> = Box::leak(Box::new(LocalExecutor::new()));
    }
    EX.with(|e| *e)
}

/// Runs `fut` on [`smol_ex`], driven by `async_io::block_on`.
#[allow(dead_code)]
pub fn smol_block_on<T>(fut: impl Future<Output = T>) -> T {
    async_io::block_on(smol_ex().run(fut))
}

// ---------------------------------------------------------------------------------
// Timing: wall clock and process CPU time.
// ---------------------------------------------------------------------------------

#[repr(C)]
#[allow(dead_code)]
struct Timespec {
    tv_sec: i64,
    tv_nsec: i64,
}

unsafe extern "C" {
    #[allow(dead_code)]
    fn clock_gettime(clock: i32, tp: *mut Timespec) -> i32;
}

/// `CLOCK_PROCESS_CPUTIME_ID` on Linux: CPU time of all threads of the process
/// (includes helper threads such as async-io's, excludes time spent descheduled).
#[allow(dead_code)]
const CLOCK_PROCESS_CPUTIME_ID: i32 = 2;

#[allow(dead_code)]
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
#[allow(dead_code)]
pub struct Sample {
    /// Wall-clock time.
    pub wall: Duration,
    /// Process CPU time (all threads).
    pub cpu: Duration,
}

/// Started right before the measured work, inside the runtime's `block_on`.
#[allow(dead_code)]
pub struct Stamp {
    wall: Instant,
    cpu: Duration,
}

#[allow(dead_code)]
impl Stamp {
    /// Reads both clocks.
    pub fn now() -> Stamp {
        Stamp {
            wall: Instant::now(),
            cpu: cpu_now(),
        }
    }

    /// Wall and CPU time since [`Stamp::now`].
    pub fn elapsed(&self) -> Sample {
        let wall = self.wall.elapsed();
        Sample {
            wall,
            cpu: cpu_now().saturating_sub(self.cpu),
        }
    }
}

// ---------------------------------------------------------------------------------
// Rotation, medians, formatting.
// ---------------------------------------------------------------------------------

/// Calls `measure(v)` for each of the `n` variants `warm + iters` times, rotating which
/// variant goes first in each iteration (so none always runs on a cold cache), and
/// returns, per variant, the results of the `iters` measured iterations.
#[allow(dead_code)]
pub fn interleave<S>(
    n: usize,
    warm: usize,
    iters: usize,
    mut measure: impl FnMut(usize) -> S,
) -> Vec<Vec<S>> {
    let mut out: Vec<Vec<S>> = (0..n).map(|_| Vec::new()).collect();
    for it in 0..warm + iters {
        for k in 0..n {
            let v = (it + k) % n;
            let s = measure(v);
            if it >= warm {
                out[v].push(s);
            }
        }
    }
    out
}

/// The median; the mean of the two middle values for an even count.
#[allow(dead_code)]
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

/// The element at `len / 2` after sorting by `cmp` (the upper median for an even count:
/// no mean of the two middle values).
#[allow(dead_code)]
pub fn middle_by<T>(mut v: Vec<T>, cmp: impl FnMut(&T, &T) -> CmpOrdering) -> T {
    v.sort_by(cmp);
    v.swap_remove(v.len() / 2)
}

/// `1.234 s`, `12.34 ms` or `123.4 µs`.
#[allow(dead_code)]
pub fn fmt(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else {
        fmt_ms(d)
    }
}

/// `12.34 ms` or `123.4 µs` (milliseconds even above a second).
#[allow(dead_code)]
pub fn fmt_ms(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.1} µs", ns / 1e3)
    }
}

// ---------------------------------------------------------------------------------
// One row of the side-by-side table (benches `core` and `cancel`).
// ---------------------------------------------------------------------------------

/// One variant of a row: runs the work once and returns its [`Sample`].
#[allow(dead_code)]
pub type Runner<'a> = Box<dyn FnMut() -> Sample + 'a>;

/// Runs every variant `warm + iters` times, rotating which variant goes first in
/// each iteration, and prints medians and ratios. The first variant is ours; the
/// ratios compare `tokio` and `smol` against it. Extra variants (e.g. ours via a
/// task group) are printed with their own ratio to the best peer.
#[allow(dead_code)]
pub fn run(id: &str, name: &str, target: &str, mut variants: Vec<(&'static str, Runner<'_>)>) {
    if !selected(id, name) {
        return;
    }
    let (warm, iters) = iterations((1, 5), (2, 15));
    // `BENCH_ONLY=ours` (or `tokio`, `smol`, `ours/tg`) runs one variant alone, e.g.
    // under a profiler; no ratios are printed then.
    if let Ok(only) = std::env::var("BENCH_ONLY") {
        variants.retain(|(label, _)| *label == only);
        for (label, f) in &mut variants {
            let walls: Vec<Duration> = (0..warm + iters).map(|_| f().wall).skip(warm).collect();
            println!(
                "\n{id} {name} {label}: median wall {} over {iters} iterations",
                fmt(middle_by(walls, Duration::cmp))
            );
        }
        return;
    }
    let samples = interleave(variants.len(), warm, iters, |v| (variants[v].1)());
    let walls: Vec<Vec<Duration>> = samples
        .iter()
        .map(|s| s.iter().map(|s| s.wall).collect())
        .collect();
    let cpus: Vec<Vec<Duration>> = samples
        .iter()
        .map(|s| s.iter().map(|s| s.cpu).collect())
        .collect();
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

// ---------------------------------------------------------------------------------
// "Wait until blocked": every child bumps a global counter right before it blocks, and
// the spawner yields until the count is reached. A global, so no runtime pays for a
// per-task `Arc`/`Rc` clone.
// ---------------------------------------------------------------------------------

/// How many children have reached their blocking point (reset before each run).
#[allow(dead_code)]
static STARTED: AtomicUsize = AtomicUsize::new(0);

/// Resets the counter; call before spawning the children.
#[allow(dead_code)]
pub fn reset_started() {
    STARTED.store(0, Ordering::Relaxed);
}

/// Called by a child right before it blocks.
#[allow(dead_code)]
pub fn started() {
    STARTED.fetch_add(1, Ordering::Relaxed);
}

/// Whether `n` children have reached their blocking point.
#[allow(dead_code)]
pub fn all_started(n: usize) -> bool {
    STARTED.load(Ordering::Relaxed) >= n
}

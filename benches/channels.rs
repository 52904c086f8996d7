//! B3 `ping_pong` (see `docs/benchmarks.md`): two tasks bounce a message 10,000 times
//! over two bounded(1) channels.
//!
//! * ours:  `scope_runtime::sync::channel(1)` on `Runtime::new()` (real clock).
//! * tokio: `tokio::sync::mpsc::channel(1)` on a current-thread runtime (`enable_all`).
//! * smol:  `smol::channel::bounded(1)` (async-channel) on a `LocalExecutor` driven by
//!   `smol::block_on` (async-io). Driving it with `futures::executor::block_on`
//!   instead measured the same (within 2%).
//!
//! In each runtime both tasks are spawned and the main future joins them; a runtime is
//! built once and reused for every iteration; the channels are created per iteration.
//!
//! Two passes in one process:
//! 1. criterion (`ping_pong/{ours,tokio,smol}`) for per-runtime statistics;
//! 2. a side-by-side pass that runs the three in rotation, iteration by iteration,
//!    and prints the median wall times and the ratios `peer / ours` (> 1: we are
//!    faster), with a table row for `docs/benchmarks.md`.
//!
//! ```text
//! cargo bench --bench channels                   # full
//! BENCH_QUICK=1 cargo bench --bench channels     # quick: a few seconds
//! BENCH_ITERS=51 cargo bench --bench channels    # iterations of the side-by-side pass
//! ```

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{fmt_ms, interleave, iterations, median, ours_rt, quick, tokio_rt};
use criterion::Criterion;
use scope_runtime::{Cancelled, Runtime};

/// Round trips per iteration (B3).
const ROUND_TRIPS: u64 = 10_000;

// ---------------------------------------------------------------------------------
// The three implementations: same work, same shape.
// ---------------------------------------------------------------------------------

fn ours(rt: &Runtime) {
    use scope_runtime::sync::channel;
    rt.block_on(async {
        let (ping_tx, ping_rx) = channel::<u64>(1);
        let (pong_tx, pong_rx) = channel::<u64>(1);
        let pong = scope_runtime::spawn(async move {
            while let Some(v) = ping_rx.recv().await? {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
            Ok::<_, Cancelled>(())
        });
        let ping = scope_runtime::spawn(async move {
            for i in 0..ROUND_TRIPS {
                ping_tx.send(i).await.expect("pong is alive");
                let back = pong_rx.recv().await?;
                assert_eq!(back, Some(i));
            }
            Ok::<_, Cancelled>(())
        });
        ping.await.unwrap().unwrap();
        pong.await.unwrap().unwrap();
    });
}

fn tokio(rt: &tokio::runtime::Runtime) {
    use tokio::sync::mpsc::channel;
    rt.block_on(async {
        let (ping_tx, mut ping_rx) = channel::<u64>(1);
        let (pong_tx, mut pong_rx) = channel::<u64>(1);
        let pong = tokio::spawn(async move {
            while let Some(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let ping = tokio::spawn(async move {
            for i in 0..ROUND_TRIPS {
                ping_tx.send(i).await.expect("pong is alive");
                let back = pong_rx.recv().await;
                assert_eq!(back, Some(i));
            }
        });
        ping.await.unwrap();
        pong.await.unwrap();
    });
}

fn smol(ex: &smol::LocalExecutor<'static>) {
    use smol::channel::bounded;
    let work = ex.run(async {
        let (ping_tx, ping_rx) = bounded::<u64>(1);
        let (pong_tx, pong_rx) = bounded::<u64>(1);
        let pong = ex.spawn(async move {
            while let Ok(v) = ping_rx.recv().await {
                if pong_tx.send(v).await.is_err() {
                    break;
                }
            }
        });
        let ping = ex.spawn(async move {
            for i in 0..ROUND_TRIPS {
                ping_tx.send(i).await.expect("pong is alive");
                let back = pong_rx.recv().await.ok();
                assert_eq!(back, Some(i));
            }
        });
        ping.await;
        pong.await;
    });
    smol::block_on(work);
}

// ---------------------------------------------------------------------------------
// Side-by-side pass
// ---------------------------------------------------------------------------------

type Variant<'a> = (&'static str, Box<dyn FnMut() + 'a>);

fn side_by_side(mut variants: Vec<Variant<'_>>) {
    let (warm, iters) = iterations((3, 31), (5, 101));
    let n = variants.len();
    // Rotates which runtime goes first, so none always runs on a cold cache.
    let times: Vec<Vec<Duration>> = interleave(n, warm, iters, |v| {
        let t = Instant::now();
        (variants[v].1)();
        t.elapsed()
    });
    let med: Vec<Duration> = times.iter().map(|t| median(t.clone())).collect();
    let ours = med[0].as_secs_f64();
    println!("\nB3 ping_pong, side by side ({iters} iterations each, median wall time)");
    for (i, (label, _)) in variants.iter().enumerate() {
        let mut sorted = times[i].clone();
        sorted.sort();
        println!(
            "  {label:<6} {:>10}  (min {:>10}, max {:>10})  {:>6.1} ns per round trip",
            fmt_ms(med[i]),
            fmt_ms(sorted[0]),
            fmt_ms(sorted[sorted.len() - 1]),
            med[i].as_nanos() as f64 / ROUND_TRIPS as f64,
        );
    }
    let ratio = |i: usize| med[i].as_secs_f64() / ours;
    let min = |i: usize| times[i].iter().min().copied().unwrap_or_default();
    for (i, (label, _)) in variants.iter().enumerate().skip(1) {
        println!(
            "  ratio {label}/ours: {:.2}x  (of the minimums, less sensitive to a busy machine: {:.2}x)",
            ratio(i),
            min(i).as_secs_f64() / min(0).as_secs_f64(),
        );
    }
    let best = (1..n).min_by(|&a, &b| med[a].cmp(&med[b])).expect("peers");
    println!(
        "  best peer: {}; ratio best/ours: {:.2}x (target >= 1.2x smol)",
        variants[best].0,
        ratio(best)
    );
    println!(
        "  | B3 | ping_pong | {} | {} | {} | {:.2} | {:.2} | ≥ 1.2× smol |",
        fmt_ms(med[0]),
        fmt_ms(med[1]),
        fmt_ms(med[2]),
        ratio(1),
        ratio(2),
    );
}

fn main() {
    let ours_rt = ours_rt();
    let tokio_rt = tokio_rt();
    let smol_ex = smol::LocalExecutor::new();

    let mut c = Criterion::default().configure_from_args();
    c = if quick() {
        c.sample_size(10)
            .warm_up_time(Duration::from_millis(300))
            .measurement_time(Duration::from_secs(1))
    } else {
        c.sample_size(30)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(5))
    };
    {
        let mut g = c.benchmark_group("ping_pong");
        g.bench_function("ours", |b| b.iter(|| ours(black_box(&ours_rt))));
        g.bench_function("tokio", |b| b.iter(|| tokio(black_box(&tokio_rt))));
        g.bench_function("smol", |b| b.iter(|| smol(black_box(&smol_ex))));
        g.finish();
    }
    c.final_summary();

    side_by_side(vec![
        ("ours", Box::new(|| ours(&ours_rt))),
        ("tokio", Box::new(|| tokio(&tokio_rt))),
        ("smol", Box::new(|| smol(&smol_ex))),
    ]);
}

//! Stress with nothing lost (issue 16): many tasks exchange numbered messages over
//! bounded, unbounded and oneshot channels while groups are cancelled, deadlines fire,
//! tasks are cancelled and uncancelled, and (on the real clock) 8 OS threads send into
//! the runtime at the same time. Afterwards:
//!
//! * every message is accounted for exactly once: a send that returned `Ok` was
//!   received exactly once (by a task, or by the final drain); a send that failed
//!   returned its message (`SendError` / the oneshot's `Err(v)`), which was never
//!   received;
//! * every task finished, and the runtime holds nothing (`Runtime::resources()` is all
//!   zero);
//! * the process has as many file descriptors open as before.
//!
//! Sizes: `STRESS_TASKS` (default 100,000 on the paused clock, a fifth of it on the real
//! clock), `STRESS_SEED` (default fixed; the seed is printed). The long mode is
//! `STRESS_TASKS=1000000 cargo test --release --test stress -- --nocapture`.
//!
//! One `#[test]` only: the file-descriptor count is per process, and other tests of
//! this binary running in parallel would move it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use scope_runtime::sync::{
    OneshotReceiver, OneshotSender, Receiver, SendError, Sender, UnboundedSender, channel, oneshot,
    unbounded,
};
use scope_runtime::{
    BoxError, CancelScope, Cancelled, Resources, Runtime, TaskGroup, TaskHandle, move_on_after,
    sleep, task_group,
};

/// How long any one worker may take (virtual ms on the paused clock).
const GIVE_UP: Duration = Duration::from_millis(20);

/// xorshift64*: deterministic, no dependency.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn ms(&mut self, max: u64) -> Duration {
        Duration::from_millis(self.below(max + 1))
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The fate of every message, by id. Shared with the OS threads, hence the lock.
#[derive(Default)]
struct Ledger {
    /// 0: created, not settled yet; then one of the constants below.
    send: Vec<u8>,
    /// How many times each id was received.
    received: Vec<u8>,
}

const SENT: u8 = 1;
const RETURNED: u8 = 2;

impl Ledger {
    fn new_id(&mut self) -> u64 {
        self.send.push(0);
        self.received.push(0);
        (self.send.len() - 1) as u64
    }
    fn settle(&mut self, id: u64, how: u8) {
        let s = &mut self.send[id as usize];
        assert_eq!(*s, 0, "message {id} settled twice");
        *s = how;
    }
    fn receive(&mut self, id: u64) {
        self.received[id as usize] += 1;
    }

    /// Checks every message; returns (sent, returned).
    fn verify(&self) -> (usize, usize) {
        let (mut sent, mut returned) = (0, 0);
        for (id, (&s, &r)) in self.send.iter().zip(&self.received).enumerate() {
            match s {
                SENT => {
                    assert_eq!(r, 1, "message {id} was sent and received {r} times");
                    sent += 1;
                }
                RETURNED => {
                    assert_eq!(r, 0, "message {id} was returned and received {r} times");
                    returned += 1;
                }
                _ => panic!("message {id} was never settled (received {r} times)"),
            }
        }
        (sent, returned)
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// One channel of the run, with a receiver the test keeps to drain it at the end.
enum Chan {
    Bounded(Sender<u64>, Receiver<u64>),
    Unbounded(UnboundedSender<u64>, Receiver<u64>),
}

impl Chan {
    fn receiver(&self) -> &Receiver<u64> {
        match self {
            Chan::Bounded(_, rx) | Chan::Unbounded(_, rx) => rx,
        }
    }
}

async fn send(chan: &Chan, ledger: &Shared, id: u64) -> Result<(), Cancelled> {
    let r = match chan {
        Chan::Bounded(tx, _) => tx.send(id).await,
        Chan::Unbounded(tx, _) => tx.send(id),
    };
    match r {
        Ok(()) => {
            ledger.lock().settle(id, SENT);
            Ok(())
        }
        Err(e) => {
            let cancelled = match &e {
                SendError::Cancelled(_, c) => Some(c.clone()),
                SendError::Closed(_) => None,
            };
            let back = e.into_inner();
            assert_eq!(back, id, "the returned message is the one sent");
            ledger.lock().settle(id, RETURNED);
            cancelled.map_or(Ok(()), Err)
        }
    }
}

/// Counts of what the run did, printed at the end.
#[derive(Default, Debug)]
struct Stats {
    cells: Cell<usize>,
    group_cancels: Cell<usize>,
    task_cancels: Cell<usize>,
    uncancels: Cell<usize>,
    deadlines: Cell<usize>,
    cancelled_ops: Cell<usize>,
}

fn bump(c: &Cell<usize>) {
    c.set(c.get() + 1);
}

/// One worker: a few sends or receives (or a oneshot exchange) with sleeps between,
/// every one a checkpoint that a cancel may fail.
async fn worker(
    rng: Rng,
    chans: Rc<Vec<Chan>>,
    ledger: Shared,
    stats: Rc<Stats>,
) -> Result<(), BoxError> {
    // Every worker gives up after `GIVE_UP` (a receive nobody sends to would otherwise
    // wait forever, and the paused clock would have nowhere to jump).
    move_on_after(GIVE_UP, worker_body(rng, &chans, &ledger, &stats))
        .await
        .map(drop)
}

async fn worker_body(
    mut rng: Rng,
    chans: &[Chan],
    ledger: &Shared,
    stats: &Stats,
) -> Result<(), BoxError> {
    let chan = &chans[rng.below(chans.len() as u64) as usize];
    let n = 1 + rng.below(4);
    let sender = rng.chance(50);
    for _ in 0..n {
        sleep(rng.ms(3)).await?;
        if sender {
            let id = ledger.lock().new_id();
            if let Err(c) = send(chan, ledger, id).await {
                bump(&stats.cancelled_ops);
                return Err(c.into());
            }
        } else {
            match chan.receiver().recv().await {
                Ok(Some(id)) => ledger.lock().receive(id),
                Ok(None) => unreachable!("the test keeps a sender of every channel"),
                Err(e) => {
                    bump(&stats.cancelled_ops);
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}

/// A oneshot exchange: the receiver waits under the same cancellations; if it gives
/// up, it still takes what arrived (`try_recv`) before dropping its end, so a value
/// the sender handed over is never lost.
async fn oneshot_pair(tg: &TaskGroup, rng: &mut Rng, ledger: &Shared) {
    let (tx, rx): (OneshotSender<u64>, OneshotReceiver<u64>) = oneshot();
    let (l1, l2) = (ledger.clone(), ledger.clone());
    let wait = rng.ms(4);
    tg.spawn(async move {
        sleep(wait).await?;
        let id = l1.lock().new_id();
        match tx.send(id) {
            Ok(()) => l1.lock().settle(id, SENT),
            Err(back) => {
                assert_eq!(back, id);
                l1.lock().settle(id, RETURNED);
            }
        }
        Ok(())
    });
    tg.spawn(async move {
        let mut rx = rx;
        match (&mut rx).await {
            Ok(Some(id)) => l2.lock().receive(id),
            Ok(None) => {} // the sender gave up before sending
            Err(_) => {
                if let Ok(id) = rx.try_recv() {
                    l2.lock().receive(id);
                }
            }
        }
        Ok(())
    });
}

/// Builds and runs one cell: a task group (maybe inside a scope with a deadline, maybe
/// shielded) of workers, oneshot pairs, and agents that cancel things.
async fn cell(
    mut rng: Rng,
    tasks: usize,
    chans: Rc<Vec<Chan>>,
    ledger: Shared,
    stats: Rc<Stats>,
    groups: Rc<RefCell<Vec<TaskGroup>>>,
) -> Result<(), BoxError> {
    let scope = CancelScope::new();
    let scope = if rng.chance(30) {
        bump(&stats.deadlines);
        scope.with_timeout(rng.ms(8))
    } else {
        scope
    };
    let scope = scope.with_shield(rng.chance(10));
    let cells_done = stats.clone();
    let r = scope
        .run(async {
            task_group(|tg| async move {
                groups.borrow_mut().push(tg.clone());
                let mut handles: Vec<TaskHandle> = Vec::new();
                let mut spawned = 0;
                while spawned < tasks {
                    match rng.below(10) {
                        0 => {
                            oneshot_pair(&tg, &mut rng, &ledger).await;
                            spawned += 2;
                        }
                        1 => {
                            // An agent: after a while cancels a random group (this
                            // one or another cell's), or a task of this cell, or
                            // withdraws a task cancel.
                            let (mut r2, groups, stats) =
                                (Rng(rng.next() | 1), groups.clone(), stats.clone());
                            let victim = handles.last().map(|h| **h);
                            tg.spawn(async move {
                                sleep(r2.ms(6)).await?;
                                match (r2.below(3), victim) {
                                    (0, Some(t)) => {
                                        if t.cancel() {
                                            bump(&stats.task_cancels);
                                        }
                                    }
                                    (1, Some(t)) => {
                                        if t.cancelling() > 0 {
                                            t.uncancel();
                                            bump(&stats.uncancels);
                                        }
                                    }
                                    _ => {
                                        let gs = groups.borrow();
                                        let g = &gs[r2.below(gs.len() as u64) as usize];
                                        g.cancel();
                                        bump(&stats.group_cancels);
                                    }
                                }
                                Ok(())
                            });
                            spawned += 1;
                        }
                        _ => {
                            let h = tg.spawn(worker(
                                Rng(rng.next() | 1),
                                chans.clone(),
                                ledger.clone(),
                                stats.clone(),
                            ));
                            handles.push(h);
                            spawned += 1;
                        }
                    }
                }
                Ok(())
            })
            .await
        })
        .await;
    bump(&cells_done.cells);
    // Cancellations are expected; a failure of any other kind is not.
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            let others: Vec<String> = e
                .failures()
                .iter()
                .map(|f| f.to_string())
                .filter(|s| !s.contains("cancelled"))
                .collect();
            assert!(others.is_empty(), "unexpected failures: {others:?}");
            Ok(())
        }
    }
}

fn make_chans(rng: &mut Rng, n: usize) -> Vec<Chan> {
    (0..n)
        .map(|_| {
            if rng.chance(70) {
                let (tx, rx) = channel(rng.below(4) as usize);
                Chan::Bounded(tx, rx)
            } else {
                let (tx, rx) = unbounded();
                Chan::Unbounded(tx, rx)
            }
        })
        .collect()
}

/// Runs `tasks` tasks in cells of ~100 on `rt`; then drains and checks everything.
fn run(rt: &Runtime, seed: u64, tasks: usize, threads: usize) -> (usize, usize, Stats) {
    let ledger: Shared = Arc::default();
    let stats = Rc::new(Stats::default());
    let mut rng = Rng(seed);
    let chans = Rc::new(make_chans(&mut rng, 64));

    // OS threads sending into the unbounded channels while the runtime runs.
    let stop = Arc::new(AtomicBool::new(false));
    let thread_txs: Vec<UnboundedSender<u64>> = chans
        .iter()
        .filter_map(|c| match c {
            Chan::Unbounded(tx, _) => Some(tx.clone()),
            Chan::Bounded(..) => None,
        })
        .collect();
    let senders: Vec<_> = (0..threads)
        .map(|t| {
            let (ledger, stop, txs) = (ledger.clone(), stop.clone(), thread_txs.clone());
            std::thread::spawn(move || {
                let mut rng = Rng(seed ^ ((t as u64 + 1) * 0x9E37_79B9));
                while !stop.load(Ordering::Relaxed) {
                    let id = ledger.lock().new_id();
                    let tx = &txs[rng.below(txs.len() as u64) as usize];
                    match tx.send(id) {
                        Ok(()) => ledger.lock().settle(id, SENT),
                        Err(e) => {
                            assert_eq!(e.into_inner(), id);
                            ledger.lock().settle(id, RETURNED);
                        }
                    }
                    std::thread::sleep(Duration::from_micros(rng.below(200)));
                }
            })
        })
        .collect();

    let (c, l, st) = (chans.clone(), ledger.clone(), stats.clone());
    rt.block_on(async move {
        let groups: Rc<RefCell<Vec<TaskGroup>>> = Rc::default();
        let per_cell = 100;
        task_group(|top| async move {
            let mut left = tasks;
            while left > 0 {
                let n = left.min(per_cell);
                left -= n;
                top.spawn(cell(
                    Rng(rng.next() | 1),
                    n,
                    c.clone(),
                    l.clone(),
                    st.clone(),
                    groups.clone(),
                ));
                // Cells overlap in time, a few at once.
                if left % (per_cell * 8) == 0 {
                    sleep(Duration::from_millis(2)).await?;
                }
            }
            Ok(())
        })
        .await
        .expect("the top group absorbs nothing but cancellations");
    });
    stop.store(true, Ordering::Relaxed);
    for t in senders {
        t.join().unwrap();
    }
    drop(thread_txs);
    // The final drain: whatever is still in a channel was sent and is received now.
    for chan in chans.iter() {
        while let Ok(id) = chan.receiver().try_recv() {
            ledger.lock().receive(id);
        }
    }
    let (sent, returned) = ledger.lock().verify();
    drop(chans);
    let stats = Rc::try_unwrap(stats).expect("every task finished");
    (sent, returned, stats)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

#[test]
fn nothing_is_lost_under_random_cancellation() {
    let seed = env_usize("STRESS_SEED", 0x5EED_CAFE) as u64;
    let tasks = env_usize("STRESS_TASKS", 100_000);
    let fds_before = open_fds();

    for (clock, paused, n, threads) in [
        ("paused", true, tasks, 0),
        ("real", false, (tasks / 5).max(100), 8),
    ] {
        let rt = Runtime::builder().paused_clock(paused).build().unwrap();
        let t0 = std::time::Instant::now();
        let (sent, returned, stats) = run(&rt, seed, n, threads);
        println!(
            "{clock} clock, seed {seed:#x}: {n} tasks in {} cells, {sent} messages received \
             once, {returned} returned, lost 0; {} group cancels, {} task cancels, {} \
             uncancels, {} deadlines, {} operations cancelled; {:?}",
            stats.cells.get(),
            stats.group_cancels.get(),
            stats.task_cancels.get(),
            stats.uncancels.get(),
            stats.deadlines.get(),
            stats.cancelled_ops.get(),
            t0.elapsed()
        );
        assert!(
            sent > 0 && stats.cancelled_ops.get() > 0,
            "the run exercised both paths"
        );
        assert_eq!(rt.resources(), Resources::default(), "{clock} clock");
        drop(rt);
    }
    assert_eq!(open_fds(), fds_before, "file descriptors are back");
}

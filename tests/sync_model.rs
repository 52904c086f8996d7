//! Randomized interleavings of channel sends, receives, cancellations and drops,
//! checked against a simple model: no message is lost, none is duplicated, and a
//! message reported as not sent is never received (rules R1 and R10).
//!
//! Each case builds a channel (bounded with capacity 0..=3, or unbounded) and a few
//! actor tasks in one task group, on the paused clock. Every actor runs a script of
//! steps: wait a few ms, then one send (senders) or receive (receivers) that is either
//! left to finish, cancelled by a deadline (possibly already past at entry), or dropped
//! when a timer wins a race against it. Many timers share the same millisecond, so
//! cancels and hand-offs land in the same scheduler turn — the R10 window. Every
//! operation gives up after `GIVE_UP`, so a case always ends; the test then drains the
//! channel and compares what happened with the model. Some cases also `close()` the
//! channel at a random instant: what was accepted before is still delivered.
//!
//! The same scripts drive a `Semaphore` and a `Mutex`: permits are never over-granted
//! (at most one lock holder) and, once every actor is done, none leaked. And a `watch`
//! channel: receivers see versions in order, and no change is lost to a cancel or drop.
//! And a `Barrier`: every round lets out exactly `n` waits, cancelled ones never count.
//! And `broadcast`: each receiver accounts for every message once (received or lagged);
//! `RwLock`: never a writer beside anyone, nothing leaked; `Condition`: each
//! notification that found a waiter is delivered once.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{Either, select};
use proptest::prelude::*;
use scope_runtime::sync::{Receiver, SendError, TryRecvError, channel, unbounded};
use scope_runtime::{CancelScope, Cancelled, Runtime, sleep, task_group};

const GIVE_UP: Duration = Duration::from_millis(40);

/// How one operation ends (besides finishing by itself).
#[derive(Debug, Clone, Copy)]
enum Interrupt {
    /// Runs until done, or cancelled after `GIVE_UP`.
    None,
    /// Cancelled by a deadline after this many ms (0: cancelled before it starts).
    Cancel(u8),
    /// Raced against a timer of this many ms: the future is polled first, and
    /// dropped if still pending when the timer fires.
    Drop(u8),
    /// Like `Drop`, but the timer is polled first: the operation is dropped without
    /// seeing whether it was served meanwhile (a served receive must pass its message
    /// on; a served send stays sent).
    DropBlind(u8),
}

#[derive(Debug, Clone)]
struct Step {
    delay: u8,
    interrupt: Interrupt,
}

#[derive(Debug, Clone)]
struct Actor {
    sender: bool,
    steps: Vec<Step>,
}

#[derive(Debug, Default)]
struct Log {
    /// Sends that returned `Ok`.
    sent: Vec<u64>,
    /// Sends that returned the message (`Cancelled` or `Closed`): never delivered.
    returned: Vec<u64>,
    /// Send futures dropped after seeing they were still pending: never delivered.
    withdrawn: Vec<u64>,
    /// Send futures dropped blind: delivered or not.
    unknown: Vec<u64>,
    /// Messages returned by receives.
    received: Vec<u64>,
}

fn interrupt() -> impl Strategy<Value = Interrupt> {
    prop_oneof![
        3 => Just(Interrupt::None),
        3 => (0u8..6).prop_map(Interrupt::Cancel),
        2 => (0u8..6).prop_map(Interrupt::Drop),
        2 => (0u8..6).prop_map(Interrupt::DropBlind),
    ]
}

/// `actors` scripts of `steps` steps each, every step a delay and an `interrupt`.
fn scripts(
    interrupt: impl Strategy<Value = Interrupt>,
    steps: std::ops::Range<usize>,
    actors: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<Vec<Step>>> {
    prop::collection::vec(
        prop::collection::vec(
            ((0u8..4), interrupt).prop_map(|(delay, interrupt)| Step { delay, interrupt }),
            steps,
        ),
        actors,
    )
}

/// Only finishing or cancelled steps (no drops).
fn cancel_or_finish() -> impl Strategy<Value = Interrupt> {
    prop_oneof![Just(Interrupt::None), (0u8..6).prop_map(Interrupt::Cancel)]
}

fn actor() -> impl Strategy<Value = Actor> {
    (
        any::<bool>(),
        prop::collection::vec(
            ((0u8..4), interrupt()).prop_map(|(delay, interrupt)| Step { delay, interrupt }),
            1..8,
        ),
    )
        .prop_map(|(sender, steps)| Actor { sender, steps })
}

enum Ended<T> {
    Done(T),
    /// Dropped while pending, after polling it (`Drop`).
    Withdrawn,
    /// Dropped without polling it last (`DropBlind`).
    DroppedBlind,
}

/// Runs `op` under `interrupt`.
async fn run_op<T>(op: impl Future<Output = T>, interrupt: Interrupt) -> Ended<T> {
    let ms = |m: u8| Duration::from_millis(m.into());
    match interrupt {
        Interrupt::None | Interrupt::Cancel(_) => {
            let timeout = match interrupt {
                Interrupt::Cancel(m) => ms(m),
                _ => GIVE_UP,
            };
            // The body never fails, so the scope hands back the op's own result,
            // cancelled or not.
            let out = CancelScope::new()
                .with_timeout(timeout)
                .run(async { Ok::<_, Cancelled>(op.await) })
                .await;
            Ended::Done(out.expect("the body does not fail").expect("not absorbed"))
        }
        Interrupt::Drop(m) => match select(pin!(op), pin!(sleep(ms(m)))).await {
            Either::Left((v, _)) => Ended::Done(v),
            Either::Right(_) => Ended::Withdrawn,
        },
        Interrupt::DropBlind(m) => match select(pin!(sleep(ms(m))), pin!(op)).await {
            Either::Right((v, _)) => Ended::Done(v),
            Either::Left(_) => Ended::DroppedBlind,
        },
    }
}

enum Tx {
    Bounded(scope_runtime::sync::Sender<u64>),
    Unbounded(scope_runtime::sync::UnboundedSender<u64>),
}

async fn run_sender(tx: Tx, id: usize, steps: Vec<Step>, log: Rc<RefCell<Log>>) {
    for (i, step) in steps.into_iter().enumerate() {
        sleep(Duration::from_millis(step.delay.into())).await.ok();
        let msg = (id * 1000 + i) as u64;
        let out = match &tx {
            Tx::Bounded(tx) => run_op(tx.send(msg), step.interrupt).await,
            Tx::Unbounded(tx) => Ended::Done(tx.send(msg)),
        };
        let mut log = log.borrow_mut();
        match out {
            Ended::Done(Ok(())) => log.sent.push(msg),
            Ended::Done(Err(e)) => {
                let v = match e {
                    SendError::Closed(v) => v,
                    SendError::Cancelled(v, _) => v,
                };
                assert_eq!(v, msg, "the message comes back unchanged");
                log.returned.push(msg);
            }
            Ended::Withdrawn => log.withdrawn.push(msg),
            Ended::DroppedBlind => log.unknown.push(msg),
        }
    }
}

async fn run_receiver(rx: Receiver<u64>, steps: Vec<Step>, log: Rc<RefCell<Log>>) {
    for step in steps {
        sleep(Duration::from_millis(step.delay.into())).await.ok();
        if let Ended::Done(Ok(Some(v))) = run_op(rx.recv(), step.interrupt).await {
            log.borrow_mut().received.push(v);
        }
    }
}

/// `close_at`: a task closes the channel (`close()`) after that many ms.
fn check_case(
    capacity: Option<usize>,
    actors: Vec<Actor>,
    close_at: Option<u8>,
) -> Result<(), TestCaseError> {
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let log = Rc::new(RefCell::new(Log::default()));
    let drained = rt.block_on({
        let log = log.clone();
        async move {
            let (tx, rx) = match capacity {
                Some(c) => {
                    let (tx, rx) = channel(c);
                    (Tx::Bounded(tx), rx)
                }
                None => {
                    let (tx, rx) = unbounded();
                    (Tx::Unbounded(tx), rx)
                }
            };
            let keep = rx.clone(); // drains what is left at the end
            task_group(|tg| async move {
                if let Some(ms) = close_at {
                    let closer = rx.clone();
                    tg.spawn(async move {
                        sleep(Duration::from_millis(ms.into())).await?;
                        closer.close();
                        Ok(())
                    });
                }
                for (id, a) in actors.into_iter().enumerate() {
                    let log = log.clone();
                    if a.sender {
                        let tx = match &tx {
                            Tx::Bounded(t) => Tx::Bounded(t.clone()),
                            Tx::Unbounded(t) => Tx::Unbounded(t.clone()),
                        };
                        tg.spawn(async move {
                            run_sender(tx, id, a.steps, log).await;
                            Ok(())
                        });
                    } else {
                        let rx = rx.clone();
                        tg.spawn(async move {
                            run_receiver(rx, a.steps, log).await;
                            Ok(())
                        });
                    }
                }
                drop((tx, rx));
                Ok(())
            })
            .await
            .expect("actors do not fail");
            let mut drained = Vec::new();
            loop {
                match keep.try_recv() {
                    Ok(v) => drained.push(v),
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => panic!("every sender is gone by now"),
                }
            }
            drained
        }
    });
    let log = log.borrow();
    let mut delivered: Vec<u64> = log.received.clone();
    delivered.extend(&drained);
    let delivered_set: BTreeSet<u64> = delivered.iter().copied().collect();
    prop_assert_eq!(
        delivered_set.len(),
        delivered.len(),
        "a message was duplicated: {:?}",
        delivered
    );
    for m in &log.sent {
        prop_assert!(delivered_set.contains(m), "message {} was sent but lost", m);
    }
    for m in log.returned.iter().chain(&log.withdrawn) {
        prop_assert!(
            !delivered_set.contains(m),
            "message {} was reported unsent but delivered",
            m
        );
    }
    let allowed: BTreeSet<u64> = log.sent.iter().chain(&log.unknown).copied().collect();
    for m in &delivered_set {
        prop_assert!(
            allowed.contains(m),
            "message {} delivered but never offered",
            m
        );
    }
    Ok(())
}

/// `PROPTEST_CASES` overrides the default number of cases (e.g. for a long soak run).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn capacity() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![4 => (0usize..=3).prop_map(Some), 1 => Just(None)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), ..ProptestConfig::default() })]

    #[test]
    fn channel_never_loses_or_duplicates_a_message(
        capacity in capacity(),
        actors in prop::collection::vec(actor(), 1..7),
        close_at in prop::option::weighted(0.25, 0u8..20),
    ) {
        check_case(capacity, actors, close_at)?;
    }
}

/// A fixed case that exercises all paths at once: many actors, every interrupt.
#[test]
fn crowded_channel_with_every_kind_of_interrupt() {
    let mut actors = Vec::new();
    let kinds = [
        Interrupt::None,
        Interrupt::Cancel(0),
        Interrupt::Cancel(1),
        Interrupt::Drop(1),
        Interrupt::DropBlind(1),
        Interrupt::Cancel(2),
        Interrupt::DropBlind(0),
    ];
    for a in 0..12 {
        let steps = (0..20)
            .map(|i| Step {
                delay: ((a + i) % 3) as u8,
                interrupt: kinds[(a * 7 + i) % kinds.len()],
            })
            .collect();
        actors.push(Actor {
            sender: a % 2 == 0,
            steps,
        });
    }
    for cap in [Some(0), Some(1), Some(3), None] {
        check_case(cap, actors.clone(), None).unwrap();
        check_case(cap, actors.clone(), Some(3)).unwrap();
    }
}

// ---------------------------------------------------------------------------------
// Semaphore and mutex: permits are never over-granted and never leak.
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Acq {
    delay: u8,
    wanted: usize,
    hold: u8,
    interrupt: Interrupt,
}

fn acq() -> impl Strategy<Value = Acq> {
    (0u8..3, 1usize..=3, 0u8..4, interrupt()).prop_map(|(delay, wanted, hold, interrupt)| Acq {
        delay,
        wanted,
        hold,
        interrupt,
    })
}

fn check_semaphore(total: usize, scripts: Vec<Vec<Acq>>) -> Result<(), TestCaseError> {
    use scope_runtime::sync::Semaphore;
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let sem = Rc::new(Semaphore::new(total));
    let in_use = Rc::new(std::cell::Cell::new(0usize));
    rt.block_on({
        let (sem, in_use) = (sem.clone(), in_use.clone());
        async move {
            task_group(|tg| async move {
                for script in scripts {
                    let (sem, in_use) = (sem.clone(), in_use.clone());
                    tg.spawn(async move {
                        for step in script {
                            sleep(Duration::from_millis(step.delay.into())).await.ok();
                            let wanted = step.wanted.min(total);
                            if let Ended::Done(Ok(permit)) =
                                run_op(sem.acquire_many(wanted as u32), step.interrupt).await
                            {
                                in_use.set(in_use.get() + wanted);
                                assert!(in_use.get() <= total, "over-granted");
                                sleep(Duration::from_millis(step.hold.into())).await.ok();
                                in_use.set(in_use.get() - wanted);
                                drop(permit);
                            }
                        }
                        Ok(())
                    });
                }
                Ok(())
            })
            .await
            .expect("actors do not fail");
        }
    });
    prop_assert_eq!(sem.available_permits(), total, "permits leaked or minted");
    Ok(())
}

fn check_mutex(scripts: Vec<Vec<Acq>>) -> Result<(), TestCaseError> {
    use scope_runtime::sync::Mutex;
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let m = Rc::new(Mutex::new(0u32));
    let inside = Rc::new(std::cell::Cell::new(false));
    rt.block_on({
        let (m, inside) = (m.clone(), inside.clone());
        async move {
            task_group(|tg| async move {
                for script in scripts {
                    let (m, inside) = (m.clone(), inside.clone());
                    tg.spawn(async move {
                        for step in script {
                            sleep(Duration::from_millis(step.delay.into())).await.ok();
                            if let Ended::Done(Ok(mut g)) = run_op(m.lock(), step.interrupt).await {
                                assert!(!inside.replace(true), "two holders at once");
                                *g += 1;
                                sleep(Duration::from_millis(step.hold.into())).await.ok();
                                inside.set(false);
                            }
                        }
                        Ok(())
                    });
                }
                Ok(())
            })
            .await
            .expect("actors do not fail");
        }
    });
    prop_assert!(!m.is_locked(), "the lock leaked");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn semaphore_never_over_grants_or_leaks(
        total in 1usize..=4,
        scripts in prop::collection::vec(prop::collection::vec(acq(), 1..6), 1..6),
    ) {
        check_semaphore(total, scripts)?;
    }

    #[test]
    fn mutex_never_has_two_holders_or_leaks(
        scripts in prop::collection::vec(prop::collection::vec(acq(), 1..6), 1..6),
    ) {
        check_mutex(scripts)?;
    }
}

// ---------------------------------------------------------------------------------
// Watch: receivers see versions in order, never a change that did not happen, and no
// change is lost to a cancel or a drop — after the sender is gone, every receiver
// catches up to the last value.
// ---------------------------------------------------------------------------------

fn check_watch(sends: Vec<u8>, scripts: Vec<Vec<Step>>) -> Result<(), TestCaseError> {
    use scope_runtime::sync::watch;
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let last = sends.len() as u64;
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let f = failure.clone();
    rt.block_on(async move {
        let (tx, rx) = watch(0u64);
        task_group(|tg| async move {
            // The sender: values 1, 2, ... after the scripted delays, then drops.
            tg.spawn(async move {
                for (i, d) in sends.into_iter().enumerate() {
                    sleep(Duration::from_millis(d.into())).await?;
                    tx.send_replace(i as u64 + 1);
                }
                Ok(())
            });
            for steps in scripts {
                let mut rx = rx.clone();
                let f = f.clone();
                tg.spawn(async move {
                    let mut seen = *rx.borrow_and_update();
                    let fail = |msg: String| {
                        f.borrow_mut().get_or_insert(msg);
                    };
                    for step in steps {
                        sleep(Duration::from_millis(step.delay.into())).await?;
                        let had_change = rx.has_changed();
                        match run_op(rx.changed(), step.interrupt).await {
                            Ended::Done(Ok(true)) => {
                                let now = *rx.borrow_and_update();
                                if now <= seen {
                                    fail(format!("changed() reported {now} after {seen}"));
                                }
                                seen = now;
                            }
                            Ended::Done(Ok(false)) => {
                                if had_change {
                                    fail("a pending change was reported as closed".into());
                                }
                            }
                            Ended::Done(Err(Cancelled { .. }))
                            | Ended::Withdrawn
                            | Ended::DroppedBlind => {}
                        }
                    }
                    // The sender is gone (or will be): catch up.
                    while rx.changed().await? {
                        let now = *rx.borrow_and_update();
                        if now < seen {
                            fail(format!("went back from {seen} to {now}"));
                        }
                        seen = now;
                    }
                    if seen != last {
                        fail(format!("ended at {seen}, the last value sent was {last}"));
                    }
                    Ok(())
                });
            }
            drop(rx);
            Ok(())
        })
        .await
        .unwrap();
    });
    match failure.borrow_mut().take() {
        Some(msg) => Err(TestCaseError::fail(msg)),
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn watch_receivers_see_every_change_in_order(
        sends in prop::collection::vec(0u8..4, 0..6),
        scripts in scripts(interrupt(), 1..6, 1..5),
    ) {
        check_watch(sends, scripts)?;
    }
}

// ---------------------------------------------------------------------------------
// Barrier: a cancelled waiter never counts as an arrival, and a released waiter is
// never lost: every round lets out exactly `n` waits that all return `Ok`, one of them
// the leader. (Only finishing or cancelled waits here: a dropped wait that was
// released could not report it.)
// ---------------------------------------------------------------------------------

fn check_barrier(n: usize, scripts: Vec<Vec<Step>>) -> Result<(), TestCaseError> {
    use scope_runtime::sync::Barrier;
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let barrier = Rc::new(Barrier::new(n));
    let counts = Rc::new(RefCell::new((0usize, 0usize))); // (Ok waits, leaders)
    let c = counts.clone();
    rt.block_on(async move {
        task_group(|tg| async move {
            for steps in scripts {
                let (b, c) = (barrier.clone(), c.clone());
                tg.spawn(async move {
                    for step in steps {
                        sleep(Duration::from_millis(step.delay.into())).await?;
                        if let Ended::Done(Ok(r)) = run_op(b.wait(), step.interrupt).await {
                            let mut c = c.borrow_mut();
                            c.0 += 1;
                            c.1 += usize::from(r.is_leader());
                        }
                    }
                    Ok(())
                });
            }
            Ok(())
        })
        .await
        .unwrap();
    });
    let (oks, leaders) = *counts.borrow();
    prop_assert_eq!(
        oks,
        leaders * n,
        "{} Ok waits for {} rounds of {}",
        oks,
        leaders,
        n
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn barrier_rounds_release_exactly_n(
        n in 1usize..=4,
        scripts in scripts(cancel_or_finish(), 1..6, 1..7),
    ) {
        check_barrier(n, scripts)?;
    }
}

// ---------------------------------------------------------------------------------
// Broadcast: every receiver accounts for every message exactly once — received in
// order, or reported missed by a `Lagged(n)` at the point where it was missed — under
// cancels and drops of its receives.
// ---------------------------------------------------------------------------------

fn check_broadcast(
    capacity: usize,
    sends: Vec<u8>,
    scripts: Vec<Vec<Step>>,
) -> Result<(), TestCaseError> {
    use scope_runtime::sync::{BroadcastError, broadcast};
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let total = sends.len() as u64;
    let failure: Rc<RefCell<Option<String>>> = Rc::default();
    let f = failure.clone();
    rt.block_on(async move {
        let (tx, rx) = broadcast(capacity);
        task_group(|tg| async move {
            tg.spawn(async move {
                for (i, d) in sends.into_iter().enumerate() {
                    sleep(Duration::from_millis(d.into())).await?;
                    let _ = tx.send(i as u64 + 1);
                }
                Ok(())
            });
            for steps in scripts {
                let rx = rx.clone();
                let f = f.clone();
                tg.spawn(async move {
                    let mut expected = 1u64;
                    let mut account = |r: Result<Option<u64>, BroadcastError>| -> bool {
                        let msg = match r {
                            Ok(Some(v)) if v == expected => {
                                expected += 1;
                                return true;
                            }
                            Ok(Some(v)) => format!("got {v}, expected {expected}"),
                            Err(BroadcastError::Lagged(n)) => {
                                expected += n;
                                return true;
                            }
                            Ok(None) => return false,
                            Err(e) => format!("unexpected {e:?}"),
                        };
                        f.borrow_mut().get_or_insert(msg);
                        false
                    };
                    for step in steps {
                        sleep(Duration::from_millis(step.delay.into())).await?;
                        if let Ended::Done(r) = run_op(rx.recv(), step.interrupt).await {
                            if !matches!(r, Err(BroadcastError::Cancelled(_))) {
                                account(r);
                            }
                        }
                    }
                    loop {
                        let r = rx.recv().await;
                        if let Err(BroadcastError::Cancelled(c)) = r {
                            return Err(c.into());
                        }
                        if !account(r) {
                            break;
                        }
                    }
                    if expected != total + 1 {
                        f.borrow_mut().get_or_insert(format!(
                            "accounted for {} of {total} messages",
                            expected - 1
                        ));
                    }
                    Ok(())
                });
            }
            drop(rx);
            Ok(())
        })
        .await
        .unwrap();
    });
    match failure.borrow_mut().take() {
        Some(msg) => Err(TestCaseError::fail(msg)),
        None => Ok(()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn broadcast_receivers_account_for_every_message(
        capacity in 1usize..=4,
        sends in prop::collection::vec(0u8..3, 0..10),
        scripts in scripts(interrupt(), 1..6, 1..5),
    ) {
        check_broadcast(capacity, sends, scripts)?;
    }
}

// ---------------------------------------------------------------------------------
// RwLock: never a writer beside anyone else, and nothing leaks (the same scripts as
// the mutex; `wanted == 1` asks for write access, more asks for read access).
// ---------------------------------------------------------------------------------

fn check_rwlock(scripts: Vec<Vec<Acq>>) -> Result<(), TestCaseError> {
    use scope_runtime::sync::RwLock;
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let lock = Rc::new(RwLock::new(0u32));
    // (readers inside, writer inside)
    let inside = Rc::new(std::cell::Cell::new((0usize, false)));
    rt.block_on({
        let (lock, inside) = (lock.clone(), inside.clone());
        async move {
            task_group(|tg| async move {
                for script in scripts {
                    let (lock, inside) = (lock.clone(), inside.clone());
                    tg.spawn(async move {
                        for step in script {
                            let hold = Duration::from_millis(step.hold.into());
                            sleep(Duration::from_millis(step.delay.into())).await.ok();
                            if step.wanted == 1 {
                                if let Ended::Done(Ok(mut g)) =
                                    run_op(lock.write(), step.interrupt).await
                                {
                                    assert_eq!(
                                        inside.replace((0, true)),
                                        (0, false),
                                        "writer beside others"
                                    );
                                    *g += 1;
                                    sleep(hold).await.ok();
                                    inside.set((0, false));
                                }
                            } else if let Ended::Done(Ok(g)) =
                                run_op(lock.read(), step.interrupt).await
                            {
                                let (r, w) = inside.get();
                                assert!(!w, "reader beside a writer");
                                inside.set((r + 1, false));
                                let _ = *g;
                                sleep(hold).await.ok();
                                let (r, w) = inside.get();
                                inside.set((r - 1, w));
                            }
                        }
                        Ok(())
                    });
                }
                Ok(())
            })
            .await
            .expect("actors do not fail");
        }
    });
    prop_assert!(lock.try_write().is_some(), "the lock leaked");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn rwlock_never_mixes_a_writer_or_leaks(
        scripts in prop::collection::vec(prop::collection::vec(acq(), 1..6), 1..6),
    ) {
        check_rwlock(scripts)?;
    }
}

// ---------------------------------------------------------------------------------
// Condition: every notification that found a waiter (`notify_one` returned true) is
// delivered exactly once — one wait returns `Ok` with the lock — even when waits are
// cancelled around it; the lock is free at the end. (Finishing or cancelled waits
// only: a dropped notified waiter passes its notification on, possibly to no one.)
// ---------------------------------------------------------------------------------

fn check_condition(
    notifies: Vec<(u8, bool)>,
    scripts: Vec<Vec<Step>>,
) -> Result<(), TestCaseError> {
    use scope_runtime::sync::{Condition, Mutex};
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let shared = Rc::new((Mutex::new(()), Condition::new()));
    let counts = Rc::new(RefCell::new((0usize, 0usize))); // (delivered, sent to a waiter)
    let scopes: Rc<RefCell<Vec<CancelScope>>> = Rc::default();
    let (s, c, sc) = (shared.clone(), counts.clone(), scopes.clone());
    rt.block_on(async move {
        task_group(|tg| async move {
            for steps in scripts {
                let (s, c, sc) = (s.clone(), c.clone(), sc.clone());
                tg.spawn(async move {
                    for step in steps {
                        sleep(Duration::from_millis(step.delay.into())).await?;
                        let timeout = match step.interrupt {
                            Interrupt::Cancel(m) => Duration::from_millis(m.into()),
                            _ => GIVE_UP,
                        };
                        let scope = CancelScope::new().with_timeout(timeout);
                        sc.borrow_mut().push(scope.clone());
                        let (m, cond) = &*s;
                        let r = scope
                            .run(async {
                                let g = m.lock().await?;
                                cond.wait(g).await.map(drop)
                            })
                            .await;
                        if matches!(r, Ok(Some(()))) {
                            c.borrow_mut().0 += 1;
                        }
                    }
                    Ok(())
                });
            }
            for (d, cancel_all) in notifies {
                sleep(Duration::from_millis(d.into())).await?;
                if s.1.notify_one() {
                    c.borrow_mut().1 += 1;
                }
                if cancel_all {
                    // In the same turn as the notification, before the notified
                    // waiter runs: it must keep it.
                    for scope in sc.borrow().iter() {
                        scope.cancel();
                    }
                }
            }
            Ok(())
        })
        .await
        .unwrap();
    });
    let (delivered, sent) = *counts.borrow();
    prop_assert_eq!(
        delivered,
        sent,
        "notifications delivered vs sent to a waiter"
    );
    prop_assert!(!shared.0.is_locked(), "the lock leaked");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn condition_delivers_each_notification_once(
        notifies in prop::collection::vec((0u8..4, prop::bool::weighted(0.3)), 0..8),
        scripts in scripts(cancel_or_finish(), 1..5, 1..5),
    ) {
        check_condition(notifies, scripts)?;
    }
}

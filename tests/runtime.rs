//! Executor, timer and clock tests (issue 2). None needs real I/O, so all of them run
//! under Miri: `cargo +nightly miri test --test runtime`.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Poll, Waker};
use std::time::Duration;

use scope_runtime::{Cancelled, Outcome, Runtime, now, sleep, sleep_until, spawn, yield_now};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

/// Fewer iterations under Miri, which is ~1000x slower.
fn scale(n: usize) -> usize {
    if cfg!(miri) { n / 100 } else { n }
}

#[test]
fn spawn_and_join_many_tasks() {
    let n = scale(10_000);
    let sum = paused().block_on(async move {
        let handles: Vec<_> = (0..n)
            .map(|i| spawn(async move { Ok::<_, Cancelled>(i) }))
            .collect();
        let mut sum = 0;
        for h in handles {
            sum += h.await.unwrap().unwrap();
        }
        sum
    });
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn block_on_returns_the_value_and_may_borrow_locals() {
    let local = [1, 2, 3];
    let got = Runtime::new()
        .unwrap()
        .block_on(async { local.iter().sum::<i32>() });
    assert_eq!(got, 6);
}

#[test]
fn a_panicking_task_does_not_take_the_runtime_down() {
    let rt = paused();
    let out = rt.block_on(async {
        let bad = spawn(async {
            yield_now().await;
            if true {
                panic!("boom in a task");
            }
            Ok::<(), Cancelled>(())
        });
        let good = spawn(async {
            yield_now().await;
            Ok::<_, Cancelled>(7)
        });
        let bad = bad.await.unwrap();
        let payload = match bad {
            Outcome::Panicked(p) => p,
            other => panic!("expected a panic outcome, got {other:?}"),
        };
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom in a task"));
        good.await.unwrap().unwrap()
    });
    assert_eq!(out, 7);
    // The runtime is still usable afterwards.
    assert_eq!(rt.block_on(async { 1 }), 1);
}

#[test]
fn a_panic_in_block_on_resumes_in_the_caller() {
    let rt = paused();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { panic!("main failed") })
    }));
    assert!(r.is_err());
    assert_eq!(rt.block_on(async { 2 }), 2);
}

#[test]
fn a_std_thread_wakes_a_task() {
    let rt = Runtime::new().unwrap();
    let got = rt.block_on(async {
        let slot: Arc<parking::Slot> = Arc::default();
        let s2 = slot.clone();
        let waiter = spawn(async move {
            std::future::poll_fn(|cx| s2.poll(cx.waker())).await;
            Ok::<_, Cancelled>(s2.value())
        });
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            slot.set(99);
        });
        let v = waiter.await.unwrap().unwrap();
        t.join().unwrap();
        v
    });
    assert_eq!(got, 99);
}

/// A one-value cell a std::thread fills, waking the stored waker.
mod parking {
    use super::*;

    #[derive(Default)]
    pub struct Slot {
        inner: std::sync::Mutex<(Option<u32>, Option<Waker>)>,
    }

    impl Slot {
        pub fn set(&self, v: u32) {
            let w = {
                let mut g = self.inner.lock().unwrap();
                g.0 = Some(v);
                g.1.take()
            };
            if let Some(w) = w {
                w.wake();
            }
        }
        pub fn poll(&self, w: &Waker) -> Poll<()> {
            let mut g = self.inner.lock().unwrap();
            if g.0.is_some() {
                Poll::Ready(())
            } else {
                g.1 = Some(w.clone());
                Poll::Pending
            }
        }
        pub fn value(&self) -> u32 {
            self.inner.lock().unwrap().0.unwrap()
        }
    }
}

#[test]
fn a_stale_waker_after_task_exit_is_a_no_op() {
    let rt = paused();
    rt.block_on(async {
        let stash: Rc<RefCell<Option<Waker>>> = Rc::default();
        let s2 = stash.clone();
        let h = spawn(async move {
            std::future::poll_fn(|cx| {
                *s2.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            })
            .await;
            Ok::<_, Cancelled>(())
        });
        h.await.unwrap().unwrap();
        // The slot of the finished task is reused by a new task; the stale waker
        // must neither poll the new task nor crash.
        let polls = Rc::new(RefCell::new(0));
        let p2 = polls.clone();
        let newer = spawn(async move {
            std::future::poll_fn(|_| {
                *p2.borrow_mut() += 1;
                if *p2.borrow() >= 2 {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            Ok::<_, Cancelled>(())
        });
        yield_now().await;
        assert_eq!(*polls.borrow(), 1);
        let stale = stash.borrow_mut().take().unwrap();
        stale.wake_by_ref();
        std::thread::spawn(move || stale.wake()).join().unwrap();
        yield_now().await;
        yield_now().await;
        assert_eq!(*polls.borrow(), 1, "a stale waker polled another task");
        assert!(newer.is_alive());
        newer.cancel(); // finish it so block_on's caller does not leak it
    });
}

#[test]
fn timers_fire_in_deadline_order() {
    let order = paused().block_on(async {
        let order = Rc::new(RefCell::new(Vec::new()));
        let t0 = now();
        let mut handles = Vec::new();
        for (i, ms) in [50u64, 10, 40, 20, 30, 10].into_iter().enumerate() {
            let order = order.clone();
            handles.push(spawn(async move {
                sleep_until(t0 + Duration::from_millis(ms)).await?;
                order.borrow_mut().push((ms, i, now() - t0));
                Ok::<_, Cancelled>(())
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        Rc::try_unwrap(order).unwrap().into_inner()
    });
    let expect: Vec<(u64, usize, Duration)> =
        [(10, 1), (10, 5), (20, 3), (30, 4), (40, 2), (50, 0)]
            .into_iter()
            .map(|(ms, i)| (ms, i, Duration::from_millis(ms)))
            .collect();
    assert_eq!(order, expect);
}

#[test]
fn a_dropped_sleep_removes_its_timer() {
    let rt = paused();
    rt.block_on(async {
        let t0 = now();
        {
            let mut long = Box::pin(sleep(Duration::from_secs(3600)));
            // Poll once so the timer is registered, then drop it.
            std::future::poll_fn(|cx| {
                assert!(long.as_mut().poll(cx).is_pending());
                Poll::Ready(())
            })
            .await;
        }
        sleep(Duration::from_secs(1)).await.unwrap();
        // Had the 1 h timer stayed, the idle clock would still only jump to 1 s; so
        // check the timer count through the runtime's Debug output instead.
        assert_eq!(now() - t0, Duration::from_secs(1));
    });
    let dbg = format!("{rt:?}");
    assert!(dbg.contains("timers: 0"), "timers left behind: {dbg}");
}

#[test]
fn the_paused_clock_jumps_to_the_next_timer_only_when_idle() {
    paused().block_on(async {
        let t0 = now();
        let busy = spawn(async move {
            for _ in 0..100 {
                yield_now().await;
            }
            // The clock did not move while tasks were ready.
            Ok::<_, Cancelled>(now() - t0)
        });
        sleep(Duration::from_secs(5)).await.unwrap();
        assert_eq!(busy.await.unwrap().unwrap(), Duration::ZERO);
        assert_eq!(now() - t0, Duration::from_secs(5));
    });
}

#[test]
fn zero_and_past_sleeps_complete_at_once() {
    paused().block_on(async {
        let t0 = now();
        sleep(Duration::ZERO).await.unwrap();
        sleep_until(t0 - Duration::from_secs(1)).await.unwrap();
        assert_eq!(now(), t0);
    });
}

struct CountDrops(Arc<AtomicUsize>);
impl Drop for CountDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn dropping_the_runtime_drops_pending_tasks() {
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = paused();
    rt.block_on(async {
        for _ in 0..10 {
            let guard = CountDrops(drops.clone());
            spawn(async move {
                let _guard = guard;
                sleep(Duration::from_secs(3600)).await?;
                Ok::<_, Cancelled>(())
            });
        }
        // And one task whose destructor spawns and sleeps: shutdown must cope.
        spawn(async {
            struct SpawnOnDrop;
            impl Drop for SpawnOnDrop {
                fn drop(&mut self) {
                    drop(spawn(async { Ok::<_, Cancelled>(()) }));
                }
            }
            let _g = SpawnOnDrop;
            std::future::pending::<()>().await;
            Ok::<_, Cancelled>(())
        });
        yield_now().await;
    });
    assert_eq!(drops.load(Ordering::SeqCst), 0, "tasks outlive block_on");
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), 10);
}

#[test]
fn nested_block_on_is_refused_with_a_clear_panic() {
    let rt = paused();
    let inner = Runtime::new().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async { inner.block_on(async {}) })
    }));
    let msg = r.unwrap_err();
    let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("must not be nested"), "{msg}");
}

#[test]
fn spawn_outside_a_runtime_panics_with_a_clear_message() {
    let r = std::panic::catch_unwind(|| {
        drop(spawn(async { Ok::<_, Cancelled>(()) }));
    });
    let p = r.unwrap_err();
    let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("inside a scope_runtime runtime"), "{msg}");
}

#[test]
fn io_is_polled_even_while_tasks_stay_busy() {
    // A task that keeps yielding forever must not starve the timer of another task:
    // the loop turns the reactor every IO_POLL_INTERVAL polls.
    Runtime::new().unwrap().block_on(async {
        let spinner = spawn(async {
            loop {
                yield_now().await;
                scope_runtime::check_cancelled()?;
            }
            #[allow(unreachable_code)]
            Ok::<(), Cancelled>(())
        });
        sleep(Duration::from_millis(5)).await.unwrap();
        spinner.cancel();
        assert!(spinner.await.unwrap().is_cancelled());
    });
}

#[test]
fn a_runtime_can_be_dropped_inside_another_runtimes_task() {
    let drops = Arc::new(AtomicUsize::new(0));
    let d2 = drops.clone();
    let inner = paused();
    // Give the inner runtime a pending task, then drop it from inside ours.
    inner.block_on(async {
        let guard = CountDrops(d2);
        drop(spawn(async move {
            let _g = guard;
            std::future::pending::<()>().await;
            Ok::<_, Cancelled>(())
        }));
    });
    paused().block_on(async move {
        drop(inner);
        // Our own runtime is still current and working.
        sleep(Duration::from_secs(1)).await.unwrap();
    });
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}

#[test]
fn shutdown_of_many_idle_tasks_is_linear() {
    // 100,000 idle tasks used to take seconds to drop (quadratic slab scan); this is
    // a functional check that they all drop, the speed is in benches/task_memory.rs.
    let drops = Arc::new(AtomicUsize::new(0));
    let rt = paused();
    let n = scale(100_000);
    rt.block_on(async {
        for _ in 0..n {
            let g = CountDrops(drops.clone());
            drop(spawn(async move {
                let _g = g;
                std::future::pending::<()>().await;
                Ok::<_, Cancelled>(())
            }));
        }
        yield_now().await;
    });
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), n);
}

#[test]
fn stale_wakers_never_reach_a_later_task() {
    // A kept clone of a finished task's waker keeps that task's cell (not its slab
    // slot) alive: waking it must have no effect while later tasks reuse the slots.
    paused().block_on(async {
        let kept: Rc<RefCell<Vec<Waker>>> = Rc::default();
        for round in 0..3 {
            let mut handles = Vec::new();
            for i in 0..100 {
                let kept = kept.clone();
                handles.push(spawn(async move {
                    if i % 10 == 0 {
                        std::future::poll_fn(|cx| {
                            kept.borrow_mut().push(cx.waker().clone());
                            Poll::Ready(())
                        })
                        .await;
                    }
                    yield_now().await;
                    Ok::<_, Cancelled>(i)
                }));
            }
            for (i, h) in handles.into_iter().enumerate() {
                assert_eq!(h.await.unwrap().unwrap(), i, "round {round}");
            }
            // Waking every kept (stale) waker must not disturb anything.
            for w in kept.borrow().iter() {
                w.wake_by_ref();
            }
        }
        assert_eq!(kept.borrow().len(), 30);
    });
}

#[test]
fn a_million_pending_timers_insert_cancel_and_fire() {
    // The timer store must cope with 1,000,000 pending timers and with constant
    // insert/cancel churn; this checks it functionally (speed: benches B5, B7).
    let n = if cfg!(miri) { 1_000 } else { 1_000_000 };
    let rt = paused();
    rt.block_on(async {
        let t0 = now();
        let mut sleeps: Vec<_> = (0..n)
            .map(|i| Box::pin(sleep(Duration::from_millis(1 + (i % 1000) as u64))))
            .collect();
        // Register every timer (first poll), then cancel all but every 1000th.
        std::future::poll_fn(|cx| {
            for s in sleeps.iter_mut() {
                assert!(s.as_mut().poll(cx).is_pending());
            }
            Poll::Ready(())
        })
        .await;
        let mut kept = Vec::new();
        for (i, s) in sleeps.into_iter().enumerate() {
            if i % 1000 == 999 {
                kept.push(s);
            }
        }
        assert_eq!(kept.len(), n / 1000);
        for s in kept {
            s.await.unwrap();
        }
        assert_eq!(now() - t0, Duration::from_millis(1000));
    });
    let dbg = format!("{rt:?}");
    assert!(dbg.contains("timers: 0"), "timers left behind: {dbg}");
}

/// Objects of one runtime used while another runs (issue 16): they never change the
/// other runtime's state.
mod two_runtimes {
    use super::*;
    use scope_runtime::{check_cancelled, current_task, move_on_after};
    use std::future::Future;
    use std::pin::Pin;

    /// A sleep created on `rt` and polled once there (its timer is in `rt`'s store).
    fn armed_on(rt: &Runtime, d: Duration) -> Pin<Box<scope_runtime::Sleep>> {
        // `sleep` reads the runtime's clock, so it is created inside; handing the
        // future out unawaited is the point.
        #[allow(clippy::async_yields_async)]
        let mut s = rt.block_on(async { Box::pin(sleep(d)) });
        rt.block_on(std::future::poll_fn(|cx| {
            assert!(s.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        }));
        s
    }

    /// A's sleep, registered with A's timers, is dropped while B runs. B's own timer
    /// (same slot, same sequence number in B's store) must still fire.
    #[test]
    fn dropping_a_sleep_of_another_runtime_leaves_this_ones_timers() {
        let a = paused();
        let a_sleep = armed_on(&a, Duration::from_secs(10));
        let b = paused();
        let woke = b.block_on(async move {
            let t0 = now();
            let sleeper = spawn(async move {
                sleep(Duration::from_secs(1)).await?;
                Ok::<_, Cancelled>(now() - t0)
            });
            yield_now().await; // the sleeper arms B's first timer
            drop(a_sleep);
            move_on_after(Duration::from_secs(2), sleeper)
                .await
                .unwrap()
        });
        assert!(
            matches!(woke, Some(Outcome::Ok(d)) if d == Duration::from_secs(1)),
            "B's timer was removed by A's sleep: {woke:?}"
        );
        // A's store is unharmed too: its sleep's timer fires later as a stale wake.
        a.block_on(async { sleep(Duration::from_secs(20)).await.unwrap() });
    }

    /// A sleep first polled on A and then awaited on B arms a timer on B.
    #[test]
    fn a_sleep_moved_to_another_runtime_still_ends() {
        let a = paused();
        let s = armed_on(&a, Duration::from_secs(10));
        let b = paused();
        b.block_on(async move {
            let t0 = now();
            s.await.unwrap();
            assert!(now() > t0, "B's clock moved to the sleep's deadline");
        });
    }

    /// A `TaskRef` of A (the main task: key 0, sequence 1, like B's) used inside B
    /// panics and cancels nothing of B.
    #[test]
    fn a_task_ref_of_another_runtime_panics_and_cancels_nothing() {
        let a_main = paused().block_on(async { current_task() });
        paused().block_on(async move {
            let r = std::panic::catch_unwind(|| a_main.cancel());
            let msg = r.unwrap_err();
            let msg = msg.downcast_ref::<String>().unwrap();
            assert!(
                msg.contains("belongs to another scope_runtime runtime"),
                "{msg}"
            );
            assert!(std::panic::catch_unwind(|| a_main.is_alive()).is_err());
            assert_eq!(current_task().cancelling(), 0);
            assert!(check_cancelled().is_ok());
        });
        // Outside any runtime it is a no-op, as documented.
        assert!(!a_main.cancel());
        assert!(!a_main.is_alive());
    }
}

/// Panics at the runtime's boundaries stay contained (issue 16).
mod contained_panics {
    use super::*;
    use std::future::Future;
    use std::task::{Context, Wake};

    struct PanicsOnDrop;
    impl Drop for PanicsOnDrop {
        fn drop(&mut self) {
            panic!("future dropped");
        }
    }

    /// The task finished with `Ok`, then its future's destructor panicked: that is the
    /// task's panic (its outcome), not an unwind out of `block_on`.
    #[test]
    fn a_panic_dropping_a_finished_task_future_is_its_outcome() {
        /// Ready at once, and keeps its guard until the future itself is dropped
        /// (an `async` block would drop it inside the poll).
        struct Finishes(#[allow(dead_code)] PanicsOnDrop);
        impl Future for Finishes {
            type Output = Result<u32, Cancelled>;
            fn poll(self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
                Poll::Ready(Ok(5))
            }
        }
        let r = paused().block_on(async {
            let h = spawn(Finishes(PanicsOnDrop));
            let outcome = h.await.unwrap();
            let Outcome::Panicked(p) = outcome else {
                panic!("expected the destructor's panic as the outcome: {outcome:?}");
            };
            assert_eq!(p.downcast_ref::<&str>(), Some(&"future dropped"));
            sleep(Duration::from_secs(1)).await.unwrap();
            7
        });
        assert_eq!(r, 7);
    }

    struct PanickingWaker(AtomicUsize);
    impl Wake for PanickingWaker {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("wake panicked");
        }
    }

    /// A waker of other code whose `wake` panics, kept by a timer: the run loop calls
    /// it when the timer fires and goes on.
    #[test]
    fn a_panicking_waker_kept_by_a_timer_does_not_unwind_the_run_loop() {
        let calls = Arc::new(PanickingWaker(AtomicUsize::new(0)));
        let waker = Waker::from(calls.clone());
        let r = paused().block_on(async move {
            let mut s = Box::pin(sleep(Duration::from_secs(1)));
            let mut cx = Context::from_waker(&waker);
            assert!(s.as_mut().poll(&mut cx).is_pending());
            // The main task sleeps past the timer of `s`, which wakes `waker`.
            sleep(Duration::from_secs(2)).await.unwrap();
            drop(s);
            "went on"
        });
        assert_eq!(r, "went on");
        assert_eq!(calls.0.load(Ordering::SeqCst), 1);
    }
}

/// A `block_on` task that only yields still lets the run loop turn: a cancel sent
/// from another thread (and the reactor, and timers) gets in at `IO_POLL_INTERVAL`.
#[test]
fn a_main_task_that_keeps_yielding_does_not_starve_the_run_loop() {
    use scope_runtime::{CancelScope, check_cancelled};
    let rt = Runtime::new().unwrap();
    let polls = rt.block_on(async {
        let scope = CancelScope::new();
        let handle = scope.cancel_handle();
        std::thread::spawn(move || handle.cancel()).join().unwrap();
        let mut polls = 0usize;
        let r = scope
            .run(async {
                while polls < scale(100_000) {
                    check_cancelled()?;
                    yield_now().await;
                    polls += 1;
                }
                Ok::<_, Cancelled>(())
            })
            .await;
        assert_eq!(r, Ok(None), "the remote cancel arrived");
        polls
    });
    assert!(
        polls <= scope_runtime::IO_POLL_INTERVAL + 1,
        "{polls} yields before it got in"
    );
}

//! Test-clock control (issue 13, item 7): `testing::advance`, `testing::jump`,
//! `testing::wait_all_tasks_blocked` and the paused clock's autojump threshold.
//!
//! Everything runs on the paused clock except the tests that show the panics on the
//! real clock and the loopback TCP echo, which is bounded by a `fail_after` that the
//! autojump turns into a real-time bound.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use scope_runtime::io::TcpStream;
use scope_runtime::sync::{TryRecvError, channel};
use scope_runtime::testing::{advance, jump, wait_all_tasks_blocked};
use scope_runtime::{
    BoxError, CancelScope, Cancelled, Resources, Runtime, checkpoint, fail_after, move_on_after,
    now, sleep, spawn, yield_now,
};

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

const fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// What the tasks saw: `(label, virtual time since start)`, in the order they ran.
type Log = Rc<RefCell<Vec<(&'static str, Duration)>>>;

fn sleeper(log: &Log, t0: Instant, label: &'static str, d: Duration) {
    let log = log.clone();
    spawn(async move {
        sleep(d).await?;
        log.borrow_mut().push((label, now() - t0));
        Ok::<_, Cancelled>(())
    });
}

#[test]
fn advance_fires_each_timer_at_its_own_instant_in_order() {
    paused().block_on(async {
        let t0 = now();
        let log: Log = Rc::default();
        // Spawned out of order; one of them starts another timer when it wakes.
        sleeper(&log, t0, "3s", secs(3));
        sleeper(&log, t0, "2s", secs(2));
        {
            let log = log.clone();
            spawn(async move {
                sleep(secs(1)).await?;
                log.borrow_mut().push(("1s", now() - t0));
                // Started at +1 s, so due at +1.5 s: before the 2 s timer.
                sleep(ms(500)).await?;
                log.borrow_mut().push(("1s+500ms", now() - t0));
                Ok::<_, Cancelled>(())
            });
        }
        advance(ms(2500)).await.unwrap();
        assert_eq!(now() - t0, ms(2500));
        assert_eq!(
            *log.borrow(),
            [("1s", secs(1)), ("1s+500ms", ms(1500)), ("2s", secs(2))]
        );
        advance(secs(1)).await.unwrap();
        assert_eq!(now() - t0, ms(3500));
        assert_eq!(log.borrow().last(), Some(&("3s", secs(3))));
        assert_eq!(log.borrow().len(), 4);
    });
}

#[test]
fn advance_returns_after_the_woken_tasks_ran_to_their_next_wait() {
    let rt = paused();
    rt.block_on(async {
        let t0 = now();
        let (tx, rx) = channel::<Duration>(1);
        let (out_tx, out_rx) = channel::<Duration>(1);
        // Woken by its timer, it hands the time on to a task that takes a few turns.
        spawn(async move {
            sleep(secs(1)).await?;
            tx.send(now() - t0).await.map_err(|_| "closed")?;
            Ok::<_, BoxError>(())
        });
        spawn(async move {
            let t = rx.recv().await?.expect("sender sent");
            for _ in 0..10 {
                yield_now().await;
            }
            out_tx.send(t).await.map_err(|_| "closed")?;
            Ok::<_, BoxError>(())
        });
        advance(secs(1)).await.unwrap();
        assert_eq!(out_rx.try_recv(), Ok(secs(1)));
        assert_eq!(now() - t0, secs(1));
    });
    assert_eq!(rt.resources(), Resources::default());
}

#[test]
fn advance_lets_ready_tasks_start_their_timers_first() {
    paused().block_on(async {
        let t0 = now();
        let log: Log = Rc::default();
        // Not polled yet: its 1 s sleep starts only when it first runs, at +0.
        sleeper(&log, t0, "1s", secs(1));
        advance(secs(2)).await.unwrap();
        assert_eq!(*log.borrow(), [("1s", secs(1))]);
    });
}

#[test]
fn advance_of_zero_only_lets_the_others_settle() {
    paused().block_on(async {
        let t0 = now();
        let turns = Rc::new(Cell::new(0));
        let t = turns.clone();
        spawn(async move {
            for _ in 0..5 {
                yield_now().await;
                t.set(t.get() + 1);
            }
            sleep(secs(1)).await
        });
        advance(Duration::ZERO).await.unwrap();
        assert_eq!(turns.get(), 5);
        assert_eq!(now(), t0, "no timer was due, the clock stays");
    });
}

#[test]
fn advance_is_a_checkpoint_and_stops_where_it_is_cancelled() {
    paused().block_on(async {
        let t0 = now();
        // Already cancelled: fails at once, the clock does not move.
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope.run(advance(secs(5))).await;
        assert_eq!(r, Ok(None));
        assert_eq!(now(), t0);

        // A deadline within the advance: it stops there.
        let log: Log = Rc::default();
        sleeper(&log, t0, "3s", secs(3));
        let r = move_on_after(secs(2), advance(secs(5))).await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, secs(2));
        assert!(log.borrow().is_empty(), "the 3 s timer is after the cancel");

        // The rest of the time has not passed; the sleeper is still there.
        advance(secs(1)).await.unwrap();
        assert_eq!(*log.borrow(), [("3s", secs(3))]);
    });
}

#[test]
fn jump_fires_everything_due_together_at_the_new_time() {
    paused().block_on(async {
        let t0 = now();
        let log: Log = Rc::default();
        sleeper(&log, t0, "1s", secs(1));
        sleeper(&log, t0, "2s", secs(2));
        sleeper(&log, t0, "9s", secs(9));
        wait_all_tasks_blocked().await.unwrap();
        jump(secs(5));
        assert_eq!(now() - t0, secs(5), "jump moves the clock at once");
        assert!(log.borrow().is_empty(), "timers fire when the loop turns");
        wait_all_tasks_blocked().await.unwrap();
        // Both fired late, at the end of the jump, in deadline order.
        assert_eq!(*log.borrow(), [("1s", secs(5)), ("2s", secs(5))]);
        assert_eq!(now() - t0, secs(5));
    });
}

/// The difference between the two: a 2 s sleep guarded by a 3 s deadline. Advancing
/// 5 s lets the sleep end first; jumping 5 s makes both due at once, and the deadline
/// wins.
#[test]
fn jump_lets_a_passed_deadline_win_where_advance_does_not() {
    for use_jump in [false, true] {
        paused().block_on(async {
            let t0 = now();
            let h = spawn(async move {
                let r = move_on_after(secs(3), async {
                    sleep(secs(2)).await?;
                    Ok::<_, Cancelled>(now() - t0)
                })
                .await;
                Ok::<_, Cancelled>(r)
            });
            wait_all_tasks_blocked().await.unwrap();
            if use_jump {
                jump(secs(5));
                wait_all_tasks_blocked().await.unwrap();
            } else {
                advance(secs(5)).await.unwrap();
            }
            let r = h.await.unwrap().unwrap().unwrap();
            if use_jump {
                assert_eq!(r, None, "jump: the deadline cancelled the sleep");
            } else {
                assert_eq!(r, Some(secs(2)), "advance: the sleep ended at +2 s");
            }
        });
    }
}

#[test]
#[should_panic(expected = "advance needs the paused clock")]
fn advance_panics_on_the_real_clock() {
    Runtime::new().unwrap().block_on(async {
        let _ = advance(secs(1)).await;
    });
}

#[test]
#[should_panic(expected = "jump needs the paused clock")]
fn jump_panics_on_the_real_clock() {
    Runtime::new().unwrap().block_on(async {
        jump(secs(1));
    });
}

#[test]
#[should_panic(expected = "would pass the last representable `Instant`")]
fn jump_past_the_end_of_time_panics() {
    paused().block_on(async {
        jump(Duration::MAX);
    });
}

#[test]
#[should_panic(expected = "must be called from inside a scope_runtime runtime")]
fn jump_outside_a_runtime_panics() {
    jump(secs(1));
}

/// A chain of tasks, each taking a value from its channel, adding one and passing it
/// on: `wait_all_tasks_blocked` returns once it reached the end, without moving the
/// clock (a 1 h sleeper keeps a timer pending all along).
#[test]
fn wait_all_tasks_blocked_lets_a_chain_hand_a_value_down() {
    for paused_clock in [true, false] {
        let rt = Runtime::builder()
            .paused_clock(paused_clock)
            .build()
            .unwrap();
        rt.block_on(async {
            let t0 = now();
            let sleeper = spawn(async { sleep(secs(3600)).await });
            const LINKS: usize = 20;
            let (first_tx, mut rx) = channel::<u64>(1);
            for _ in 0..LINKS {
                let (tx, next_rx) = channel::<u64>(1);
                let my_rx = std::mem::replace(&mut rx, next_rx);
                spawn(async move {
                    let v = my_rx.recv().await?.expect("sender alive");
                    yield_now().await;
                    tx.send(v + 1).await.map_err(|_| "closed")?;
                    Ok::<_, BoxError>(())
                });
            }
            wait_all_tasks_blocked().await.unwrap();
            assert_eq!(rx.try_recv(), Err(TryRecvError::Empty), "nothing sent yet");
            first_tx.send(0).await.unwrap();
            wait_all_tasks_blocked().await.unwrap();
            assert_eq!(rx.try_recv(), Ok(LINKS as u64));
            if paused_clock {
                assert_eq!(now(), t0, "the paused clock did not move");
            }
            sleeper.cancel();
            assert!(sleeper.await.unwrap().is_cancelled());
        });
        assert_eq!(rt.resources(), Resources::default());
    }
}

#[test]
fn wait_all_tasks_blocked_is_a_checkpoint() {
    let rt = paused();
    rt.block_on(async {
        let t0 = now();
        let turns = Rc::new(Cell::new(0u32));

        // Already cancelled: fails at once, before the busy task got anywhere.
        let t = turns.clone();
        let busy = spawn(async move {
            for _ in 0..100 {
                yield_now().await;
                t.set(t.get() + 1);
            }
            Ok::<_, Cancelled>(())
        });
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope.run(wait_all_tasks_blocked()).await;
        assert_eq!(r, Ok(None));
        assert_eq!(turns.get(), 0);
        busy.await.unwrap().unwrap();

        // Cancelled while it waits (by a task that keeps the runtime busy): woken
        // with `Cancelled` then, not when the busy task is done.
        turns.set(0);
        let scope = CancelScope::new();
        let (t, handle) = (turns.clone(), scope.clone());
        let busy = spawn(async move {
            for i in 0..100 {
                if i == 50 {
                    handle.cancel();
                }
                yield_now().await;
                t.set(t.get() + 1);
            }
            Ok::<_, Cancelled>(())
        });
        let r = scope.run(wait_all_tasks_blocked()).await;
        assert_eq!(r, Ok(None));
        assert!(scope.cancelled_caught());
        assert!(turns.get() < 100, "returned at the cancel: {}", turns.get());
        busy.await.unwrap().unwrap();

        // Shielded, it does not see an outer cancel.
        let outer = CancelScope::new();
        let r = outer
            .run(async {
                outer.cancel();
                CancelScope::new()
                    .with_shield(true)
                    .run(wait_all_tasks_blocked())
                    .await?;
                checkpoint().await
            })
            .await;
        assert_eq!(r, Ok(None));

        // The waiter it left behind is gone: the clock jumps as before.
        sleep(secs(1)).await.unwrap();
        assert_eq!(now() - t0, secs(1));
    });
    assert_eq!(rt.resources(), Resources::default());
}

#[test]
fn several_waiters_are_woken_together() {
    paused().block_on(async {
        let woken = Rc::new(Cell::new(0));
        let mut handles = Vec::new();
        for _ in 0..3 {
            let w = woken.clone();
            handles.push(spawn(async move {
                wait_all_tasks_blocked().await?;
                w.set(w.get() + 1);
                Ok::<_, Cancelled>(())
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(woken.get(), 3);
    });
}

/// A thread that accepts one connection, reads `b"ping"`, waits `delay` of real time
/// and answers `b"pong"`. Returns its address.
fn slow_echo_server(delay: Duration) -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        // Never blocks the test forever: the client gives up after its timeout.
        s.set_read_timeout(Some(secs(10))).unwrap();
        let mut buf = [0u8; 4];
        if s.read_exact(&mut buf).is_ok() {
            std::thread::sleep(delay);
            let _ = s.write_all(b"pong");
        }
    });
    addr
}

/// Connects, sends `ping`, reads the answer, all under `fail_after(1 s)` on the
/// paused clock. Returns the answer (or the timeout) and the virtual time it took.
fn ping_under_one_second(
    rt: &Runtime,
    addr: std::net::SocketAddr,
) -> (std::io::Result<Vec<u8>>, Duration) {
    rt.block_on(async {
        let t0 = now();
        let r = fail_after(secs(1), async {
            let s = TcpStream::connect(addr).await?;
            let mut sent = 0;
            while sent < 4 {
                sent += s.write(&b"ping"[sent..]).await?;
            }
            let mut answer = Vec::new();
            let mut buf = [0u8; 4];
            while answer.len() < 4 {
                let n = s.read(&mut buf).await?;
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
            Ok::<_, std::io::Error>(answer)
        })
        .await;
        (r, now() - t0)
    })
}

#[test]
fn without_a_threshold_real_io_times_out_at_once() {
    // The answer takes 300 ms of real time; the paused clock does not wait for it.
    let addr = slow_echo_server(ms(300));
    let rt = paused();
    let (r, took) = ping_under_one_second(&rt, addr);
    let err = r.expect_err("the 1 s bound fired while the answer was in flight");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert_eq!(took, secs(1), "the clock jumped straight to the deadline");
}

#[test]
fn with_a_threshold_real_io_finishes_under_a_paused_timeout() {
    let addr = slow_echo_server(ms(50));
    let rt = Runtime::builder()
        .paused_clock_autojump(secs(3))
        .build()
        .unwrap();
    let (r, took) = ping_under_one_second(&rt, addr);
    assert_eq!(r.unwrap(), b"pong");
    assert_eq!(
        took,
        Duration::ZERO,
        "no virtual time passed while waiting for I/O"
    );
    assert_eq!(rt.resources(), Resources::default());
}

#[test]
fn the_autojump_waits_the_threshold_of_real_time_before_each_jump() {
    let threshold = ms(20);
    let rt = Runtime::builder()
        .paused_clock_autojump(threshold)
        .build()
        .unwrap();
    let real = Instant::now();
    rt.block_on(async {
        let t0 = now();
        for _ in 0..3 {
            sleep(secs(3600)).await.unwrap();
        }
        assert_eq!(now() - t0, secs(3 * 3600));
    });
    assert!(
        real.elapsed() >= threshold * 3,
        "three jumps, each after {threshold:?} idle: {:?}",
        real.elapsed()
    );
}

#[test]
fn idle_waiters_are_woken_without_waiting_the_threshold() {
    let threshold = secs(5);
    let rt = Runtime::builder()
        .paused_clock_autojump(threshold)
        .build()
        .unwrap();
    let real = Instant::now();
    rt.block_on(async {
        let t0 = now();
        let _sleeper = spawn(async { sleep(secs(1)).await });
        wait_all_tasks_blocked().await.unwrap();
        advance(secs(1)).await.unwrap();
        assert_eq!(now() - t0, secs(1));
    });
    assert!(real.elapsed() < threshold, "{:?}", real.elapsed());
}

#[test]
fn a_zero_threshold_is_the_plain_paused_clock() {
    let rt = Runtime::builder()
        .paused_clock_autojump(Duration::ZERO)
        .build()
        .unwrap();
    rt.block_on(async {
        let t0 = now();
        sleep(secs(3600)).await.unwrap();
        assert_eq!(now() - t0, secs(3600));
    });
    let real_rt = Runtime::builder()
        .paused_clock_autojump(secs(1))
        .paused_clock(false)
        .build()
        .unwrap();
    assert!(format!("{real_rt:?}").contains("paused_clock: false"));
}

/// The attribute option: the same threshold as `paused_clock_autojump`.
#[scope_runtime::test(paused, autojump = "20ms")]
async fn the_test_attribute_sets_the_threshold() {
    let real = Instant::now();
    let t0 = now();
    sleep(secs(3600)).await.unwrap();
    assert_eq!(now() - t0, secs(3600));
    assert!(real.elapsed() >= ms(20), "{:?}", real.elapsed());
}

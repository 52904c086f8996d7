//! D: deadlines and timeouts (rule R6), all on the paused clock.

use std::io;
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use scope_runtime::{
    BoxError, CancelError, CancelReason, CancelScope, Cancelled, TaskGroup, TimedOut, checkpoint,
    current_effective_deadline, fail_after, fail_at, move_on_after, move_on_at, now, sleep, spawn,
};

use crate::{Log, secs};

/// The current effective deadline relative to `t0`, for readable logs.
fn ced(t0: Instant) -> Option<Duration> {
    current_effective_deadline().map(|d| d - t0)
}

/// D01: `move_on_after` expires: the body fails at its checkpoint; the scope absorbs;
/// the result is "no value".
#[scope_runtime::test(paused)]
async fn d01_move_on_after_expires() {
    let log = Log::new();
    let l = log.clone();
    let r = move_on_after(secs(1), async move {
        l.push("body: sleeping 5s");
        if let Err(c) = sleep(secs(5)).await {
            l.push(format!("body: sleep failed ({})", c.reason()));
            return Err(c);
        }
        l.push("body: not reached");
        Ok::<_, Cancelled>(5)
    })
    .await;
    log.push("after move_on_after");
    log.push(format!("move_on_after returned {r:?}"));
    assert_eq!(r, Ok(None));

    // The same through a scope handle, to read its flags.
    let scope = CancelScope::new().with_timeout(secs(1));
    let r = scope
        .run(async {
            sleep(secs(5)).await?;
            Ok::<_, Cancelled>(5)
        })
        .await;
    log.push("after scope");
    assert_eq!(r, Ok(None));
    assert!(scope.cancel_called() && scope.cancelled_caught());
    assert_eq!(scope.cancel_reason(), Some(CancelReason::Deadline));
    assert_eq!(
        log.timed(),
        [
            "0ns body: sleeping 5s",
            "1s body: sleep failed (deadline reached)",
            "1s after move_on_after",
            "1s move_on_after returned Ok(None)",
            "2s after scope"
        ]
    );
    log.flags("scope", &scope);
}

/// D02: `move_on_after` not reached: the body's value is returned; no cancel, and none
/// later either.
#[scope_runtime::test(paused)]
async fn d02_move_on_after_not_reached() {
    let log = Log::new();
    let scope = CancelScope::new().with_timeout(secs(5));
    let r = scope
        .run(async {
            sleep(secs(1)).await?;
            Ok::<_, Cancelled>(7)
        })
        .await;
    log.push(format!("scope returned {r:?}"));
    assert_eq!(r, Ok(Some(7)));
    assert!(!scope.cancel_called() && !scope.cancelled_caught());
    let r = move_on_after(secs(5), async {
        sleep(secs(1)).await?;
        Ok::<_, Cancelled>(8)
    })
    .await;
    log.push(format!("move_on_after returned {r:?}"));
    // The deadlines (5s and 6s) pass while we sleep outside: nothing happens.
    sleep(secs(10)).await.unwrap();
    checkpoint().await.unwrap();
    log.push("slept past the old deadlines");
    assert!(!scope.cancel_called());
    assert_eq!(
        log.timed(),
        [
            "1s scope returned Ok(Some(7))",
            "2s move_on_after returned Ok(Some(8))",
            "12s slept past the old deadlines"
        ]
    );
    log.flags("scope", &scope);
}

/// D03: `fail_after` expires: the caller gets a `TimedOut` error, not `Cancelled`.
#[scope_runtime::test(paused)]
async fn d03_fail_after_reports_timed_out() {
    let log = Log::new();
    let r: io::Result<u32> = fail_after(secs(1), async {
        sleep(secs(5)).await?;
        Ok(5)
    })
    .await;
    let e = r.unwrap_err();
    log.push(format!(
        "io: kind={:?} cancelled={}",
        e.kind(),
        e.as_cancelled().is_some()
    ));
    let t = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<TimedOut>())
        .unwrap();
    assert_eq!(t.reason(), &CancelReason::Deadline);

    let r: Result<u32, BoxError> = fail_after(secs(1), async {
        sleep(secs(5)).await?;
        Ok(5)
    })
    .await;
    let e = r.unwrap_err();
    log.push(format!(
        "box: timed_out={} cancelled={}",
        e.downcast_ref::<TimedOut>().is_some(),
        e.as_cancelled().is_some()
    ));
    // The caller itself is not cancelled.
    checkpoint().await.unwrap();
    log.push("caller: checkpoint ok");
    assert_eq!(
        log.timed(),
        [
            "1s io: kind=TimedOut cancelled=false",
            "2s box: timed_out=true cancelled=false",
            "2s caller: checkpoint ok"
        ]
    );
}

/// D04: the deadline moved earlier while the task sleeps: it wakes at the new deadline.
#[scope_runtime::test(paused)]
async fn d04_deadline_moved_earlier_wakes_sleeper() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 + secs(10));
    let (s, l) = (scope.clone(), log.clone());
    let mover = spawn(async move {
        sleep(secs(1)).await?;
        l.push("mover: deadline -> 3s");
        s.set_deadline(Some(t0 + secs(3)));
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let r = scope
        .run(async move {
            if let Err(c) = sleep(secs(100)).await {
                l.push(format!("body: sleep failed ({})", c.reason()));
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    mover.await.unwrap().unwrap();
    assert_eq!(scope.deadline(), Some(t0 + secs(3)));
    assert!(scope.cancelled_caught());
    assert_eq!(
        log.timed(),
        [
            "1s mover: deadline -> 3s",
            "3s body: sleep failed (deadline reached)"
        ]
    );
    log.push(format!(
        "scope returned {r:?}; deadline at {:?}",
        scope.deadline().map(|d| d - t0)
    ));
    log.flags("scope", &scope);
}

/// D05: the deadline moved later while the task sleeps: it keeps sleeping; removing
/// the deadline removes the timeout.
#[scope_runtime::test(paused)]
async fn d05_deadline_moved_later_keeps_sleeping() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 + secs(2));
    let (s, l) = (scope.clone(), log.clone());
    let mover = spawn(async move {
        sleep(secs(1)).await?;
        l.push("mover: deadline -> 5s");
        s.set_deadline(Some(t0 + secs(5)));
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let r = scope
        .run(async move {
            sleep(secs(3)).await?;
            l.push("body: slept 3s");
            if let Err(c) = sleep(secs(100)).await {
                l.push(format!("body: sleep failed ({})", c.reason()));
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    let r1 = format!("{r:?}");
    mover.await.unwrap().unwrap();

    // Removed altogether.
    let t1 = now();
    let scope = CancelScope::new().with_deadline(t1 + secs(2));
    let (s, l) = (scope.clone(), log.clone());
    let remover = spawn(async move {
        sleep(secs(1)).await?;
        l.push("remover: deadline -> none");
        s.set_deadline(None);
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let r = scope
        .run(async move {
            sleep(secs(10)).await?;
            l.push("body: slept 10s");
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(Some(())));
    remover.await.unwrap().unwrap();
    assert!(!scope.cancel_called());
    assert_eq!(scope.deadline(), None);
    assert_eq!(
        log.timed(),
        [
            "1s mover: deadline -> 5s",
            "3s body: slept 3s",
            "5s body: sleep failed (deadline reached)",
            "6s remover: deadline -> none",
            "15s body: slept 10s"
        ]
    );
    log.push(format!(
        "scopes returned {r1} and {r:?}; deadline {:?}",
        scope.deadline().map(|d| d - t1)
    ));
    log.flags("scope", &scope);
}

/// D06: a deadline already past at entry: the first checkpoint fails.
#[scope_runtime::test(paused)]
async fn d06_deadline_in_past_fails_first_checkpoint() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 - secs(1));
    let l = log.clone();
    let r = scope
        .run(async move {
            l.push("body runs");
            if let Err(c) = checkpoint().await {
                l.push(format!("first checkpoint failed ({})", c.reason()));
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    assert!(scope.cancel_called() && scope.cancelled_caught());
    assert_eq!(scope.cancel_reason(), Some(CancelReason::Deadline));
    log.flags("scope", &scope);

    // A deadline exactly "now" has passed too.
    let r = move_on_at(now(), async {
        checkpoint().await?;
        Ok::<_, Cancelled>(1)
    })
    .await;
    assert_eq!(r, Ok(None));
    log.push(format!("move_on_at(now) returned {r:?}"));
    let r: io::Result<()> = fail_at(t0 - secs(1), async {
        checkpoint().await?;
        Ok(())
    })
    .await;
    let kind = r.unwrap_err().kind();
    assert_eq!(kind, io::ErrorKind::TimedOut);
    log.push(format!("fail_at(past) failed: kind={kind:?}"));
    assert_eq!(
        log.timed(),
        [
            "0ns body runs",
            "0ns first checkpoint failed (deadline reached)",
            "0ns scope: called=true caught=true",
            "0ns move_on_at(now) returned Ok(None)",
            "0ns fail_at(past) failed: kind=TimedOut"
        ]
    );
    assert_eq!(log.elapsed(), Duration::ZERO);
}

/// D07: `current_effective_deadline()` is the minimum visible deadline; a shield hides
/// the outer ones (its own still counts). Children of a group see the group's.
#[scope_runtime::test(paused)]
async fn d07_current_effective_deadline_min_and_shield() {
    let log = Log::new();
    let t0 = now();
    log.push(format!("task: {:?}", ced(t0)));
    let l = log.clone();
    CancelScope::new()
        .with_deadline(t0 + secs(10))
        .run(async move {
            l.push(format!("a(10): {:?}", ced(t0)));
            CancelScope::new()
                .with_deadline(t0 + secs(5))
                .run(async {
                    l.push(format!("a(10)/b(5): {:?}", ced(t0)));
                    CancelScope::new()
                        .with_deadline(t0 + secs(20))
                        .run(async {
                            l.push(format!("a/b/c(20): {:?}", ced(t0)));
                            CancelScope::new()
                                .with_shield(true)
                                .run(async {
                                    l.push(format!("a/b/c/shield: {:?}", ced(t0)));
                                    CancelScope::new()
                                        .with_timeout(secs(40))
                                        .run(async {
                                            l.push(format!("a/b/c/shield/d(40): {:?}", ced(t0)));
                                            Ok::<_, Cancelled>(())
                                        })
                                        .await
                                })
                                .await?;
                            CancelScope::new()
                                .with_shield(true)
                                .with_deadline(t0 + secs(30))
                                .run(async {
                                    l.push(format!("a/b/c/shield(30): {:?}", ced(t0)));
                                    Ok::<_, Cancelled>(())
                                })
                                .await?;
                            l.push(format!("a/b/c again: {:?}", ced(t0)));
                            Ok::<_, Cancelled>(())
                        })
                        .await?;
                    Ok::<_, Cancelled>(())
                })
                .await?;
            Ok::<_, Cancelled>(())
        })
        .await
        .unwrap();
    log.push(format!("task again: {:?}", ced(t0)));

    // Groups: a child sees its group's deadline and the deadlines around the group.
    let l = log.clone();
    CancelScope::new()
        .with_deadline(t0 + secs(8))
        .run(async move {
            let g = TaskGroup::new();
            g.cancel_scope().set_deadline(Some(t0 + secs(6)));
            g.run(|tg| {
                let l = l.clone();
                async move {
                    let l2 = l.clone();
                    tg.spawn(async move {
                        l2.push(format!("child of group(6) in scope(8): {:?}", ced(t0)));
                        Ok(())
                    });
                    l.push(format!("body of group(6): {:?}", ced(t0)));
                    Ok(())
                }
            })
            .await?;
            TaskGroup::new()
                .run(|tg| async move {
                    tg.spawn(async move {
                        l.push(format!("child of group() in scope(8): {:?}", ced(t0)));
                        Ok(())
                    });
                    Ok(())
                })
                .await?;
            Ok::<_, BoxError>(())
        })
        .await
        .unwrap();
    assert_eq!(
        log.events(),
        [
            "task: None",
            "a(10): Some(10s)",
            "a(10)/b(5): Some(5s)",
            "a/b/c(20): Some(5s)",
            "a/b/c/shield: None",
            "a/b/c/shield/d(40): Some(40s)",
            "a/b/c/shield(30): Some(30s)",
            "a/b/c again: Some(5s)",
            "task again: None",
            "body of group(6): Some(6s)",
            "child of group(6) in scope(8): Some(6s)",
            "child of group() in scope(8): Some(8s)"
        ]
    );
}

/// D08: an outer timeout fires while an inner one is pending: the outer absorbs, the
/// inner reports not caught (and not cancelled).
#[scope_runtime::test(paused)]
async fn d08_outer_timeout_fires_inner_pending() {
    let log = Log::new();
    let outer = CancelScope::new().with_timeout(secs(1));
    let inner = CancelScope::new().with_timeout(secs(5));
    let (l, i) = (log.clone(), inner.clone());
    let r = outer
        .run(async move {
            let l2 = l.clone();
            let r = i
                .run(async move {
                    if let Err(c) = sleep(secs(10)).await {
                        l2.push(format!("body: sleep failed ({})", c.reason()));
                        return Err(c);
                    }
                    Ok::<_, Cancelled>(())
                })
                .await;
            l.push(format!("inner returned Ok? {}", r.is_ok()));
            r?;
            l.push("outer: not reached");
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    assert!(outer.cancel_called() && outer.cancelled_caught());
    assert!(!inner.cancel_called() && !inner.cancelled_caught());

    // Nested move_on_after: same.
    let r = move_on_after(secs(1), async {
        let r = move_on_after(secs(5), async {
            sleep(secs(10)).await?;
            Ok::<_, Cancelled>(1)
        })
        .await?;
        Ok::<_, Cancelled>(r)
    })
    .await;
    assert_eq!(r, Ok(None));
    assert_eq!(
        log.timed(),
        [
            "1s body: sleep failed (deadline reached)",
            "1s inner returned Ok? false"
        ]
    );
    assert_eq!(log.elapsed(), secs(2));
    log.push(format!("nested move_on_after returned {r:?}"));
    log.flags("outer", &outer);
    log.flags("inner", &inner);
}

/// D09: a deadline that passes while the body runs without checkpoints is noticed at
/// the next checkpoint; the scope already reports `cancel_called`.
#[scope_runtime::test(paused)]
async fn d09_deadline_noticed_at_next_checkpoint() {
    let log = Log::new();
    let (tx, rx) = oneshot::channel::<&'static str>();
    let sender = spawn(async move {
        sleep(secs(2)).await?;
        tx.send("data").unwrap();
        Ok::<_, Cancelled>(())
    });
    let scope = CancelScope::new().with_timeout(secs(1));
    let (l, s) = (log.clone(), scope.clone());
    let r = scope
        .run(async move {
            // Not a runtime operation, so not a checkpoint: it waits past the deadline.
            let v = rx.await.unwrap();
            l.push(format!("got {v}; cancel_called={}", s.cancel_called()));
            if let Err(c) = checkpoint().await {
                l.push(format!("next checkpoint failed ({})", c.reason()));
                return Err(c);
            }
            Ok::<_, Cancelled>(v)
        })
        .await;
    assert_eq!(r, Ok(None));
    sender.await.unwrap().unwrap();
    assert!(scope.cancel_called() && scope.cancelled_caught());
    assert_eq!(
        log.timed(),
        [
            "2s got data; cancel_called=true",
            "2s next checkpoint failed (deadline reached)"
        ]
    );
    log.flags("scope", &scope);
}

/// D10: a shielded `move_on_after` still fires at its own deadline; a shielded
/// `fail_after` still reports `TimedOut`.
#[scope_runtime::test(paused)]
async fn d10_shielded_timeouts_still_fire() {
    let log = Log::new();
    let outer = CancelScope::new();
    let shielded = CancelScope::new().with_shield(true).with_timeout(secs(1));
    let (l, o, sh) = (log.clone(), outer.clone(), shielded.clone());
    let r = outer
        .run(async move {
            o.cancel();
            let r = sh
                .run(async {
                    sleep(secs(5)).await?;
                    Ok::<_, io::Error>(())
                })
                .await;
            l.push(format!("shielded move_on: {:?}", r.map_err(|e| e.kind())));
            let r: io::Result<()> = CancelScope::new()
                .with_shield(true)
                .with_timeout(secs(1))
                .run_or_timeout(async {
                    sleep(secs(5)).await?;
                    Ok(())
                })
                .await;
            l.push(format!(
                "shielded fail_after: {:?}",
                r.map_err(|e| e.kind())
            ));
            if let Err(c) = checkpoint().await {
                l.push("outer: checkpoint failed");
                return Err(c.into());
            }
            Ok::<_, io::Error>(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(shielded.cancelled_caught());
    assert_eq!(shielded.cancel_reason(), Some(CancelReason::Deadline));
    assert!(outer.cancelled_caught());
    assert_eq!(
        log.timed(),
        [
            "1s shielded move_on: Ok(None)",
            "2s shielded fail_after: Err(TimedOut)",
            "2s outer: checkpoint failed"
        ]
    );
    log.flags("shielded", &shielded);
    log.flags("outer", &outer);
}

/// D11: `fail_after` inside an outer scope that is cancelled first: the outer absorbs,
/// no `TimedOut` is reported (also when both expire at the same instant, in either
/// order of their timers).
#[scope_runtime::test(paused)]
async fn d11_fail_after_inside_cancelled_outer_no_timeout() {
    let log = Log::new();

    // Explicit outer cancel at 1s, fail_after(5s).
    let outer = CancelScope::new();
    let o = outer.clone();
    let canceller = spawn(async move {
        sleep(secs(1)).await?;
        o.cancel();
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let r: io::Result<Option<()>> = outer
        .run(async move {
            let r: io::Result<()> = fail_after(secs(5), async {
                sleep(secs(10)).await?;
                Ok(())
            })
            .await;
            if let Err(e) = &r {
                l.push(format!(
                    "explicit: fail_after err kind={:?} cancelled={}",
                    e.kind(),
                    e.as_cancelled().is_some()
                ));
            }
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(outer.cancelled_caught());
    log.flags("explicit outer", &outer);
    canceller.await.unwrap().unwrap();

    // Same instant; the outer's timer was armed first.
    let outer = CancelScope::new().with_timeout(secs(2));
    let l = log.clone();
    let r: io::Result<Option<()>> = outer
        .run(async move {
            let r: io::Result<()> = fail_after(secs(2), async {
                sleep(secs(10)).await?;
                Ok(())
            })
            .await;
            if let Err(e) = &r {
                l.push(format!(
                    "same instant, outer first: kind={:?} cancelled={}",
                    e.kind(),
                    e.as_cancelled().is_some()
                ));
            }
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(outer.cancelled_caught());
    log.flags("outer armed first", &outer);

    // Same instant; the inner's timer was armed first.
    let t = now() + secs(2);
    let outer = CancelScope::new();
    let (l, o) = (log.clone(), outer.clone());
    let r: io::Result<Option<()>> = outer
        .run(async move {
            let r: io::Result<()> = fail_at(t, async {
                o.set_deadline(Some(t));
                sleep(secs(10)).await?;
                Ok(())
            })
            .await;
            if let Err(e) = &r {
                l.push(format!(
                    "same instant, inner first: kind={:?} cancelled={}",
                    e.kind(),
                    e.as_cancelled().is_some()
                ));
            }
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(outer.cancelled_caught());
    log.flags("inner armed first", &outer);
    assert_eq!(
        log.timed(),
        [
            "1s explicit: fail_after err kind=Other cancelled=true",
            "1s explicit outer: called=true caught=true",
            "3s same instant, outer first: kind=Other cancelled=true",
            "3s outer armed first: called=true caught=true",
            "5s same instant, inner first: kind=Other cancelled=true",
            "5s inner armed first: called=true caught=true"
        ]
    );
}

/// D12: extreme durations: `Duration::MAX` never fires and never overflows; zero fires
/// at the first checkpoint.
#[scope_runtime::test(paused)]
async fn d12_extreme_durations() {
    let log = Log::new();
    let t0 = now();
    let l = log.clone();
    let r = move_on_after(Duration::MAX, async move {
        l.push(format!("MAX: effective deadline {:?}", ced(t0)));
        sleep(secs(1000 * 24 * 3600)).await?;
        Ok::<_, Cancelled>("slept 1000 days")
    })
    .await;
    assert_eq!(r, Ok(Some("slept 1000 days")));
    log.push(format!("MAX: move_on_after returned {r:?}"));
    let r: io::Result<u8> = fail_after(Duration::MAX, async {
        sleep(secs(1)).await?;
        Ok(1)
    })
    .await;
    let r = r.map_err(|e| e.kind());
    assert_eq!(r, Ok(1));
    log.push(format!("MAX: fail_after returned {r:?}"));
    let scope = CancelScope::new().with_timeout(Duration::MAX);
    let (s, l) = (scope.clone(), log.clone());
    let r = scope
        .run(async move {
            assert_eq!(s.deadline(), None);
            l.push(format!("MAX scope: deadline {:?}", s.deadline()));
            checkpoint().await?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(Some(())));
    assert!(!scope.cancel_called());
    log.flags("MAX scope", &scope);
    // sleep(MAX) is "forever" and still cancellable.
    let r = move_on_after(secs(1), async {
        sleep(Duration::MAX).await?;
        Ok::<_, Cancelled>(())
    })
    .await;
    assert_eq!(r, Ok(None));
    log.push(format!("sleep(MAX) in move_on_after(1s): {r:?}"));
    let t1 = now() - t0;

    // Zero.
    let l = log.clone();
    let r = move_on_after(Duration::ZERO, async move {
        l.push("ZERO: body runs");
        if let Err(c) = checkpoint().await {
            l.push(format!("ZERO: first checkpoint failed ({})", c.reason()));
            return Err(c);
        }
        Ok::<_, Cancelled>(())
    })
    .await;
    assert_eq!(r, Ok(None));
    log.push(format!("ZERO: move_on_after returned {r:?}"));
    // fail_after(0) with no checkpoint: the body's value (nothing was caught).
    let r: io::Result<u8> = fail_after(Duration::ZERO, async { Ok(5) }).await;
    let r = r.map_err(|e| e.kind());
    assert_eq!(r, Ok(5));
    log.push(format!(
        "ZERO: fail_after without checkpoint returned {r:?}"
    ));
    let r: io::Result<u8> = fail_after(Duration::ZERO, async {
        checkpoint().await?;
        Ok(5)
    })
    .await;
    let r = r.map_err(|e| e.kind());
    assert_eq!(r, Err(io::ErrorKind::TimedOut));
    log.push(format!("ZERO: fail_after with checkpoint returned {r:?}"));
    assert_eq!(now() - t0, t1, "zero timeouts take no time");
    assert_eq!(
        log.timed(),
        [
            "0ns MAX: effective deadline None",
            "86400000s MAX: move_on_after returned Ok(Some(\"slept 1000 days\"))",
            "86400001s MAX: fail_after returned Ok(1)",
            "86400001s MAX scope: deadline None",
            "86400001s MAX scope: called=false caught=false",
            "86400002s sleep(MAX) in move_on_after(1s): Ok(None)",
            "86400002s ZERO: body runs",
            "86400002s ZERO: first checkpoint failed (deadline reached)",
            "86400002s ZERO: move_on_after returned Ok(None)",
            "86400002s ZERO: fail_after without checkpoint returned Ok(5)",
            "86400002s ZERO: fail_after with checkpoint returned Err(TimedOut)"
        ]
    );
}

/// D13: a relative timeout counts from when the scope is entered, not when it was built.
#[scope_runtime::test(paused)]
async fn d13_relative_timeout_counts_from_entry() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_timeout(secs(2));
    assert_eq!(
        scope.deadline(),
        None,
        "not entered: no absolute deadline yet"
    );
    log.push(format!(
        "not entered: deadline {:?}",
        scope.deadline().map(|d| d - t0)
    ));
    sleep(secs(5)).await.unwrap();
    let (l, s) = (log.clone(), scope.clone());
    let r = scope
        .run(async move {
            l.push(format!(
                "entered; deadline at {:?}",
                s.deadline().map(|d| d - t0)
            ));
            if let Err(c) = sleep(secs(10)).await {
                l.push(format!("sleep failed ({})", c.reason()));
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));

    // move_on_after / fail_after futures built early and awaited later.
    let l = log.clone();
    let early = move_on_after(secs(2), async move {
        sleep(secs(10)).await?;
        Ok::<_, Cancelled>(())
    });
    let early_fail = fail_after(secs(2), async {
        sleep(secs(10)).await?;
        Ok::<_, io::Error>(())
    });
    sleep(secs(5)).await.unwrap();
    assert_eq!(early.await, Ok(None));
    l.push("move_on_after built 5s before entry fired");
    assert_eq!(
        early_fail.await.unwrap_err().kind(),
        io::ErrorKind::TimedOut
    );
    l.push("fail_after built 7s before entry fired");
    assert_eq!(
        log.timed(),
        [
            "0ns not entered: deadline None",
            "5s entered; deadline at Some(7s)",
            "7s sleep failed (deadline reached)",
            "14s move_on_after built 5s before entry fired",
            "16s fail_after built 7s before entry fired"
        ]
    );
}

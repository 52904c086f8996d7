//! S: cancel scopes (rules R1–R5, R12).

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;

use scope_runtime::{
    BoxError, CancelError, CancelReason, CancelScope, Cancelled, Outcome, TaskGroup, TaskRef,
    TimedOut, check_cancelled, checkpoint, sleep, spawn,
};

use crate::{Log, MyError, panic_message, secs};

/// S01: code after `cancel()` runs; the first checkpoint fails; the scope absorbs it.
#[scope_runtime::test(paused)]
async fn s01_cancel_before_first_checkpoint() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            l.push("before cancel");
            s.cancel();
            l.push("after cancel");
            if let Err(c) = checkpoint().await {
                l.push("checkpoint failed");
                return Err(c);
            }
            l.push("after checkpoint");
            Ok::<_, Cancelled>("value")
        })
        .await;
    log.push("after scope");
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.events(),
        [
            "before cancel",
            "after cancel",
            "checkpoint failed",
            "after scope"
        ]
    );
    assert!(scope.cancel_called());
    assert!(scope.cancelled_caught());
    // The task itself is not cancelled: checkpoints outside the scope succeed.
    assert_eq!(checkpoint().await, Ok(()));
    log.flags("scope", &scope);
}

/// S02: cancelled, but no checkpoint afterwards: the body completes normally.
#[scope_runtime::test(paused)]
async fn s02_cancel_without_checkpoint_completes_normally() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            s.cancel();
            l.push("after cancel");
            Ok::<_, Cancelled>(7)
        })
        .await;
    log.push("after scope");
    assert_eq!(out, Ok(Some(7)));
    assert_eq!(log.events(), ["after cancel", "after scope"]);
    assert!(scope.cancel_called());
    assert!(!scope.cancelled_caught());
    assert_eq!(checkpoint().await, Ok(()));
    log.flags("scope", &scope);
}

/// S03: ignoring one `Cancelled` does not help: the next checkpoint fails again.
#[scope_runtime::test(paused)]
async fn s03_cancel_is_level_triggered() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            s.cancel();
            if checkpoint().await.is_err() {
                l.push("1st checkpoint failed, ignored");
            }
            if checkpoint().await.is_err() {
                l.push("2nd checkpoint failed, ignored");
            }
            if check_cancelled().is_err() {
                l.push("check_cancelled failed, ignored");
            }
            let e = sleep(secs(3600)).await.unwrap_err();
            l.push("sleep failed at once");
            Err::<(), _>(e)
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.timed(),
        [
            "0ns 1st checkpoint failed, ignored",
            "0ns 2nd checkpoint failed, ignored",
            "0ns check_cancelled failed, ignored",
            "0ns sleep failed at once"
        ]
    );
    assert!(scope.cancel_called() && scope.cancelled_caught());
    log.flags("scope", &scope);
}

/// S04: cancelling the outer scope fails the inner's checkpoints; the inner does not
/// absorb; the outer does.
#[scope_runtime::test(paused)]
async fn s04_outer_cancel_passes_through_inner() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let l2 = l.clone();
            let r = i
                .run(async move {
                    o.cancel();
                    l2.push("inner: after outer.cancel()");
                    checkpoint().await?;
                    l2.push("inner: not reached");
                    Ok::<_, Cancelled>(1)
                })
                .await;
            match &r {
                Err(c) => l.push(format!("inner returned Err(Cancelled: {})", c.reason())),
                Ok(v) => l.push(format!("inner returned Ok({v:?})")),
            }
            r?;
            l.push("outer: not reached");
            Ok::<_, Cancelled>(2)
        })
        .await;
    log.push("after outer");
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.events(),
        [
            "inner: after outer.cancel()",
            "inner returned Err(Cancelled: cancelled explicitly)",
            "after outer"
        ]
    );
    assert!(!inner.cancel_called() && !inner.cancelled_caught());
    assert!(outer.cancel_called() && outer.cancelled_caught());
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S05: cancelling the inner scope leaves the outer untouched.
#[scope_runtime::test(paused)]
async fn s05_inner_cancel_leaves_outer_untouched() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, i) = (log.clone(), inner.clone());
    let out = outer
        .run(async move {
            let (l2, i2) = (l.clone(), i.clone());
            let r = i
                .run(async move {
                    i2.cancel();
                    checkpoint().await?;
                    l2.push("inner: not reached");
                    Ok::<_, Cancelled>(1)
                })
                .await;
            l.push(format!("inner returned {r:?}"));
            checkpoint().await?;
            l.push("outer: checkpoint after inner succeeded");
            sleep(secs(1)).await?;
            l.push("outer: slept 1s");
            Ok::<_, Cancelled>(2)
        })
        .await;
    assert_eq!(out, Ok(Some(2)));
    assert_eq!(
        log.timed(),
        [
            "0ns inner returned Ok(None)",
            "0ns outer: checkpoint after inner succeeded",
            "1s outer: slept 1s"
        ]
    );
    assert!(inner.cancel_called() && inner.cancelled_caught());
    assert!(!outer.cancel_called() && !outer.cancelled_caught());
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S06: both scopes cancelled (inner first): the `Cancelled` goes to the outermost.
#[scope_runtime::test(paused)]
async fn s06_both_cancelled_outermost_absorbs() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let (l2, i2) = (l.clone(), i.clone());
            let r = i
                .run(async move {
                    i2.cancel_with("inner");
                    o.cancel_with("outer");
                    let e = checkpoint().await.unwrap_err();
                    l2.push(format!("inner checkpoint: {}", e.reason()));
                    Err::<(), _>(e)
                })
                .await;
            l.push(format!("inner returned Ok? {}", r.is_ok()));
            r?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.events(),
        [
            "inner checkpoint: cancelled: outer",
            "inner returned Ok? false"
        ]
    );
    assert!(inner.cancel_called() && !inner.cancelled_caught());
    assert!(outer.cancel_called() && outer.cancelled_caught());
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S07: a shielded scope keeps checkpoints working while the outer is cancelled;
/// after it exits, the next checkpoint fails.
#[scope_runtime::test(paused)]
async fn s07_shield_blocks_outer_cancel() {
    let log = Log::new();
    let outer = CancelScope::new();
    let shielded = CancelScope::new().with_shield(true);
    let (l, o, sh) = (log.clone(), outer.clone(), shielded.clone());
    let out = outer
        .run(async move {
            o.cancel();
            let l2 = l.clone();
            let r = sh
                .run(async move {
                    checkpoint().await?;
                    l2.push("shielded: checkpoint ok");
                    sleep(secs(2)).await?;
                    l2.push("shielded: slept 2s");
                    Ok::<_, Cancelled>("cleanup done")
                })
                .await;
            l.push(format!("shielded returned {r:?}"));
            if let Err(c) = checkpoint().await {
                l.push("outer: checkpoint after shield failed");
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.timed(),
        [
            "0ns shielded: checkpoint ok",
            "2s shielded: slept 2s",
            "2s shielded returned Ok(Some(\"cleanup done\"))",
            "2s outer: checkpoint after shield failed"
        ]
    );
    assert!(!shielded.cancel_called() && !shielded.cancelled_caught());
    assert!(outer.cancel_called() && outer.cancelled_caught());
    log.flags("shielded", &shielded);
    log.flags("outer", &outer);
}

/// S08: turning the shield off while the task is blocked wakes it; it fails at once.
#[scope_runtime::test(paused)]
async fn s08_unshield_wakes_blocked_task() {
    let log = Log::new();
    let outer = CancelScope::new();
    let shielded = CancelScope::new().with_shield(true);
    let (l, sh) = (log.clone(), shielded.clone());
    let helper = spawn(async move {
        sleep(secs(1)).await?;
        l.push("helper: shield off");
        sh.set_shield(false);
        Ok::<_, Cancelled>(())
    });
    let (l, o, sh) = (log.clone(), outer.clone(), shielded.clone());
    let out = outer
        .run(async move {
            o.cancel();
            let l2 = l.clone();
            let r = sh
                .run(async move {
                    match sleep(secs(10)).await {
                        Ok(()) => l2.push("shielded: slept 10s"),
                        Err(c) => {
                            l2.push(format!("shielded: sleep failed ({})", c.reason()));
                            return Err(c);
                        }
                    }
                    Ok::<_, Cancelled>(())
                })
                .await;
            l.push(format!("shielded scope returned Ok? {}", r.is_ok()));
            r?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert!(helper.await.unwrap().into_result().is_ok());
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.timed(),
        [
            "1s helper: shield off",
            "1s shielded: sleep failed (cancelled explicitly)",
            "1s shielded scope returned Ok? false"
        ]
    );
    assert!(!shielded.shield());
    assert!(!shielded.cancelled_caught());
    assert!(outer.cancelled_caught());
    log.flags("shielded", &shielded);
    log.flags("outer", &outer);
}

/// S09: a shielded scope's own cancel still applies inside it.
#[scope_runtime::test(paused)]
async fn s09_shielded_scope_own_cancel_applies() {
    let log = Log::new();
    let outer = CancelScope::new();
    let shielded = CancelScope::new().with_shield(true);
    let (l, o, sh) = (log.clone(), outer.clone(), shielded.clone());
    let out = outer
        .run(async move {
            o.cancel_with("outer");
            let (l2, sh2) = (l.clone(), sh.clone());
            let r = sh
                .run(async move {
                    checkpoint().await?;
                    l2.push("shielded: outer cancel hidden");
                    sh2.cancel_with("own");
                    let c = checkpoint().await.unwrap_err();
                    l2.push(format!("shielded: checkpoint failed ({})", c.reason()));
                    Err::<(), _>(c)
                })
                .await;
            l.push(format!("shielded returned {r:?}"));
            let c = checkpoint().await.unwrap_err();
            l.push(format!("outer: checkpoint failed ({})", c.reason()));
            Err::<(), _>(c)
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.events(),
        [
            "shielded: outer cancel hidden",
            "shielded: checkpoint failed (cancelled: own)",
            "shielded returned Ok(None)",
            "outer: checkpoint failed (cancelled: outer)"
        ]
    );
    assert!(shielded.cancel_called() && shielded.cancelled_caught());
    assert!(outer.cancel_called() && outer.cancelled_caught());
    log.flags("shielded", &shielded);
    log.flags("outer", &outer);
}

/// S10: `cancel()` after the scope exited is a no-op with no later effect.
///
/// Differs from Trio in one detail on purpose: Trio still sets `cancel_called` on an
/// exited scope; here a no-op leaves every flag as it was (R3).
#[scope_runtime::test(paused)]
async fn s10_cancel_after_exit_is_noop() {
    let log = Log::new();
    let scope = CancelScope::new();
    let out = scope.run(sleep(secs(1))).await;
    assert_eq!(out, Ok(Some(())));
    log.push(format!("scope returned {out:?}"));
    scope.cancel();
    scope.cancel_with("late");
    assert!(!scope.cancel_called());
    assert!(!scope.cancelled_caught());
    assert_eq!(scope.cancel_reason(), None);
    log.flags("scope after late cancel", &scope);
    // The task that ran the scope is not affected.
    assert_eq!(checkpoint().await, Ok(()));
    sleep(secs(1)).await.unwrap();
    log.push("slept after late cancel");
    // Neither is a scope entered later in the same place.
    let later = CancelScope::new();
    let r = later.run(sleep(secs(1))).await;
    assert_eq!(r, Ok(Some(())));
    assert!(!later.cancel_called());
    log.push(format!("later returned {r:?}"));
    log.flags("later", &later);
    assert_eq!(
        log.timed(),
        [
            "1s scope returned Ok(Some(()))",
            "1s scope after late cancel: called=false caught=false",
            "2s slept after late cancel",
            "3s later returned Ok(Some(()))",
            "3s later: called=false caught=false"
        ]
    );
    assert_eq!(log.elapsed(), secs(3));
}

/// S11: two `cancel()` calls behave as one.
#[scope_runtime::test(paused)]
async fn s11_cancel_is_idempotent() {
    async fn run_with(cancels: usize) -> (Vec<String>, Result<Option<()>, Cancelled>, CancelScope) {
        let log = Log::new();
        let scope = CancelScope::new();
        let (l, s) = (log.clone(), scope.clone());
        let out = scope
            .run(async move {
                for _ in 0..cancels {
                    s.cancel();
                }
                l.push("after cancel");
                if let Err(c) = checkpoint().await {
                    l.push("1st checkpoint failed");
                    let _ = c;
                }
                let c = checkpoint().await.unwrap_err();
                l.push("2nd checkpoint failed");
                Err(c)
            })
            .await;
        log.push(format!("scope returned {out:?}"));
        log.flags("scope", &scope);
        (log.events(), out, scope)
    }
    let (once_log, once_out, once) = run_with(1).await;
    let (twice_log, twice_out, twice) = run_with(2).await;
    assert_eq!(
        once_log,
        [
            "after cancel",
            "1st checkpoint failed",
            "2nd checkpoint failed",
            "scope returned Ok(None)",
            "scope: called=true caught=true"
        ]
    );
    assert_eq!(twice_log, once_log);
    assert_eq!(twice_out, Ok(None));
    assert_eq!(once_out, twice_out);
    assert_eq!(
        (
            twice.cancel_called(),
            twice.cancelled_caught(),
            twice.cancel_reason()
        ),
        (
            once.cancel_called(),
            once.cancelled_caught(),
            once.cancel_reason()
        )
    );
    assert_eq!(twice.cancel_reason(), Some(CancelReason::Explicit(None)));
}

/// S12: a scope object cannot be entered twice (sequentially or nested): a clear panic.
#[scope_runtime::test(paused)]
async fn s12_scope_cannot_be_entered_twice() {
    let log = Log::new();
    let scope = CancelScope::new();
    let first = scope.run(async { Ok::<_, Cancelled>(1) }).await;
    assert_eq!(first, Ok(Some(1)));
    log.push(format!("first entry returned {first:?}"));

    let s = scope.clone();
    let again = spawn(async move { s.run(async { Ok::<_, Cancelled>(2) }).await });
    match again.await.unwrap() {
        Outcome::Panicked(p) => {
            let msg = panic_message(&*p);
            assert!(msg.contains("entered twice"), "unclear message: {msg}");
            log.push("second entry: misuse reported");
        }
        other => panic!("second entry was accepted: {other:?}"),
    }

    // Nested: entering the same scope again from inside its own body.
    let nested = CancelScope::new();
    let n = nested.clone();
    let inside = spawn(async move {
        let n2 = n.clone();
        n.run(async move { n2.run(async { Ok::<_, Cancelled>(3) }).await })
            .await
    });
    match inside.await.unwrap() {
        Outcome::Panicked(p) => {
            let msg = panic_message(&*p);
            assert!(msg.contains("entered twice"), "unclear message: {msg}");
            log.push("nested entry: misuse reported");
        }
        other => panic!("nested re-entry was accepted: {other:?}"),
    }
    // The runtime is unaffected.
    let after = checkpoint().await;
    assert_eq!(after, Ok(()));
    log.push(format!("then checkpoint -> {after:?}"));
    assert_eq!(
        log.events(),
        [
            "first entry returned Ok(Some(1))",
            "second entry: misuse reported",
            "nested entry: misuse reported",
            "then checkpoint -> Ok(())"
        ]
    );
}

/// S13: `checkpoint()` yields to other ready tasks even when not cancelled.
#[scope_runtime::test(paused)]
async fn s13_checkpoint_yields_when_not_cancelled() {
    let log = Log::new();
    let l = log.clone();
    let other = spawn(async move {
        l.push("other task runs");
        Ok::<_, Cancelled>(())
    });
    log.push("main: before check_cancelled");
    check_cancelled().unwrap(); // not a yield
    log.push("main: before checkpoint");
    checkpoint().await.unwrap();
    log.push("main: after checkpoint");
    assert_eq!(
        log.events(),
        [
            "main: before check_cancelled",
            "main: before checkpoint",
            "other task runs",
            "main: after checkpoint"
        ]
    );
    assert!(other.await.unwrap().into_result().is_ok());
}

/// S14: a cancelled task blocked in sleep or join is woken and fails.
///
/// The I/O-readiness, channel and lock parts are in `races::s14_cancel_wakes_blocked_io_channel_and_lock`
/// (they need `scope_runtime::io` / `scope_runtime::sync`).
#[scope_runtime::test(paused)]
async fn s14_cancel_wakes_blocked_sleep_and_join() {
    let log = Log::new();

    // Blocked in sleep.
    let scope = CancelScope::new();
    let s = scope.clone();
    let canceller = spawn(async move {
        sleep(secs(1)).await?;
        s.cancel();
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let out = scope
        .run(async move {
            let r = sleep(secs(3600)).await;
            l.push(format!(
                "sleep returned {:?}",
                r.as_ref().map_err(|c| c.reason())
            ));
            r
        })
        .await;
    assert_eq!(out, Ok(None));
    canceller.await.unwrap().unwrap();

    // Blocked in join.
    let sleeper = spawn(async {
        sleep(secs(3600)).await?;
        Ok::<_, Cancelled>("sleeper done")
    });
    let scope = CancelScope::new();
    let s = scope.clone();
    let canceller = spawn(async move {
        sleep(secs(1)).await?;
        s.cancel();
        Ok::<_, Cancelled>(())
    });
    let l = log.clone();
    let sleeper_ref: TaskRef = *sleeper;
    let out = scope
        .run(async move {
            let r = sleeper.await;
            l.push(format!("join returned cancelled? {}", r.is_err()));
            r.map(|_| ())
        })
        .await;
    assert_eq!(out, Ok(None));
    canceller.await.unwrap().unwrap();
    assert_eq!(
        log.timed(),
        [
            "1s sleep returned Err(Explicit(None))",
            "2s join returned cancelled? true"
        ]
    );
    // Cancelling the waiter does not cancel the task it waited for.
    assert!(sleeper_ref.is_alive());
    assert_eq!(sleeper_ref.cancelling(), 0);
    log.push(format!(
        "sleeper: alive={} cancelled={}",
        sleeper_ref.is_alive(),
        sleeper_ref.cancelling() > 0
    ));
    assert!(sleeper_ref.cancel());
    checkpoint().await.unwrap();
    assert!(!sleeper_ref.is_alive());
}

/// S15: a `Cancelled` converted into `io::Error` (and `BoxError`) is still recognised and
/// absorbed by its scope.
#[scope_runtime::test(paused)]
async fn s15_cancelled_through_io_error_is_absorbed() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out: io::Result<Option<()>> = scope
        .run(async move {
            s.cancel();
            let e: io::Error = checkpoint().await.unwrap_err().into();
            l.push(format!(
                "io::Error kind={:?} interrupted={} recognised={}",
                e.kind(),
                e.kind() == io::ErrorKind::Interrupted,
                e.as_cancelled().is_some()
            ));
            Err(e)
        })
        .await;
    assert!(matches!(out, Ok(None)), "not absorbed: {out:?}");
    assert!(scope.cancelled_caught());

    // `?` from Cancelled into io::Error, then into BoxError.
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out: Result<Option<()>, BoxError> = scope
        .run(async move {
            s.cancel();
            let io_step = async {
                checkpoint().await?;
                Ok::<(), io::Error>(())
            };
            let r = io_step.await;
            l.push("io step failed");
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(out, Ok(None)), "not absorbed: {out:?}");
    assert!(scope.cancelled_caught());
    assert_eq!(
        log.events(),
        [
            "io::Error kind=Other interrupted=false recognised=true",
            "io step failed"
        ]
    );
    // An unrelated io::Error is not mistaken for a cancellation.
    let other = io::Error::other(MyError("disk"));
    assert!(other.as_cancelled().is_none());
    // Nor is a TimedOut (it has no public constructor: take one from fail_after).
    let timed_out: io::Error = scope_runtime::fail_after(secs(0), async {
        checkpoint().await?;
        Ok::<(), io::Error>(())
    })
    .await
    .unwrap_err();
    assert_eq!(timed_out.kind(), io::ErrorKind::TimedOut);
    assert!(timed_out.as_cancelled().is_none());
}

/// S16: `cancel()` before the scope is entered takes effect on entry.
#[scope_runtime::test(paused)]
async fn s16_cancel_before_entry_applies_on_entry() {
    let log = Log::new();
    let scope = CancelScope::new();
    scope.cancel();
    assert!(scope.cancel_called() && !scope.cancelled_caught());
    log.flags("scope before entry", &scope);
    let l = log.clone();
    let out = scope
        .run(async move {
            l.push("body starts");
            if let Err(c) = checkpoint().await {
                l.push("first checkpoint failed");
                return Err(c);
            }
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(None));
    assert!(scope.cancelled_caught());

    // Same for a task group cancelled before `run` (asyncio 3.15 `TaskGroup.cancel`).
    let group = TaskGroup::new();
    group.cancel();
    let l = log.clone();
    let out = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                l2.push("child starts");
                if let Err(c) = checkpoint().await {
                    l2.push("child: first checkpoint failed");
                    return Err(c.into());
                }
                Ok(())
            });
            l.push("group body starts");
            if let Err(c) = checkpoint().await {
                l.push("group body: first checkpoint failed");
                return Err(c.into());
            }
            Ok(())
        })
        .await;
    assert!(matches!(out, Ok(None)), "{out:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_eq!(
        log.events(),
        [
            "scope before entry: called=true caught=false",
            "body starts",
            "first checkpoint failed",
            "group body starts",
            "group body: first checkpoint failed",
            "child starts",
            "child: first checkpoint failed"
        ]
    );
    log.flags("scope", &scope);
    log.group_flags("group", &group);
}

type ScopeFut = Pin<Box<dyn Future<Output = Result<Option<()>, Cancelled>>>>;

/// S17: misuse of scope nesting is a clear panic naming the misuse; other tasks go on.
#[scope_runtime::test(paused)]
async fn s17_misnested_scopes_are_reported() {
    let log = Log::new();

    // (a) A scope future entered by task A, then polled by task B.
    let slot: Rc<RefCell<Option<ScopeFut>>> = Rc::default();
    let (l, sl) = (log.clone(), slot.clone());
    let task_a = spawn(async move {
        let mut f: ScopeFut = Box::pin(CancelScope::new().run(async {
            sleep(secs(10)).await?;
            Ok::<_, Cancelled>(())
        }));
        assert!(futures::poll!(f.as_mut()).is_pending());
        *sl.borrow_mut() = Some(f);
        sleep(secs(2)).await?;
        checkpoint().await?;
        l.push("task A goes on");
        Ok::<_, Cancelled>("A done")
    });
    let sl = slot.clone();
    let task_b = spawn(async move {
        sleep(secs(1)).await?;
        let f = sl.borrow_mut().take().expect("task A stored the future");
        f.await
    });
    match task_b.await.unwrap() {
        Outcome::Panicked(p) => {
            let msg = panic_message(&*p);
            log.push("task B: misuse reported");
            assert!(msg.contains("different task"), "unclear message: {msg}");
        }
        other => panic!("moving a scope future to another task was accepted: {other:?}"),
    }
    assert_eq!(task_a.await.unwrap().unwrap(), "A done");

    // (b) An inner scope's future kept after its outer scope exited (out-of-order exit).
    let slot: Rc<RefCell<Option<ScopeFut>>> = Rc::default();
    let sl = slot.clone();
    let task_c = spawn(async move {
        let sl2 = sl.clone();
        CancelScope::new()
            .run(async move {
                let mut inner: ScopeFut = Box::pin(CancelScope::new().run(async {
                    sleep(secs(10)).await?;
                    Ok::<_, Cancelled>(())
                }));
                assert!(futures::poll!(inner.as_mut()).is_pending());
                *sl2.borrow_mut() = Some(inner);
                Ok::<_, Cancelled>(())
            })
            .await?;
        let inner = sl.borrow_mut().take().unwrap();
        inner.await
    });
    let l = log.clone();
    let bystander = spawn(async move {
        sleep(secs(1)).await?;
        l.push("bystander goes on");
        Ok::<_, Cancelled>(())
    });
    match task_c.await.unwrap() {
        Outcome::Panicked(p) => {
            let msg = panic_message(&*p);
            log.push("task C: misuse reported");
            assert!(msg.contains("out of order"), "unclear message: {msg}");
        }
        other => panic!("out-of-order scope exit was accepted: {other:?}"),
    }
    bystander.await.unwrap().unwrap();
    assert_eq!(
        log.timed(),
        [
            "1s task B: misuse reported",
            "2s task A goes on",
            "2s task C: misuse reported",
            "3s bystander goes on"
        ]
    );
}

/// S18: user code cannot make a `Cancelled` by accident: no `Default`, no `From`
/// conversion from ordinary values, no public fields. These are compile-time checks:
/// if `Cancelled` gains such an impl, this file stops compiling (ambiguous impl).
#[test]
fn s18_cancelled_has_no_public_constructor() {
    trait NotDefault<A> {
        fn check() {}
    }
    impl<T: ?Sized> NotDefault<()> for T {}
    impl<T: Default> NotDefault<u8> for T {}
    <Cancelled as NotDefault<_>>::check();

    trait NotFrom<X, A> {
        fn check() {}
    }
    impl<T, X> NotFrom<X, ()> for T {}
    impl<T: From<X>, X> NotFrom<X, u8> for T {}
    <Cancelled as NotFrom<(), _>>::check();
    <Cancelled as NotFrom<&'static str, _>>::check();
    <Cancelled as NotFrom<String, _>>::check();
    <Cancelled as NotFrom<u64, _>>::check();
    <Cancelled as NotFrom<CancelReason, _>>::check();
    <Cancelled as NotFrom<TimedOut, _>>::check();
    <Cancelled as NotFrom<io::Error, _>>::check();
    <Cancelled as NotFrom<BoxError, _>>::check();

    // At run time: outside any cancelled scope no checkpoint produces one.
    scope_runtime::Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(async {
            let log = Log::new();
            // Reached only if the checks above compile.
            log.push("Cancelled: no public constructor");
            let r = checkpoint().await;
            assert_eq!(r, Ok(()));
            log.push(format!("checkpoint -> {r:?}"));
            let r = check_cancelled();
            assert_eq!(r, Ok(()));
            log.push(format!("check_cancelled -> {r:?}"));
            let r = sleep(secs(1)).await;
            assert_eq!(r, Ok(()));
            log.push(format!("sleep(1s) -> {r:?}"));
            assert_eq!(
                log.timed(),
                [
                    "0ns Cancelled: no public constructor",
                    "0ns checkpoint -> Ok(())",
                    "0ns check_cancelled -> Ok(())",
                    "1s sleep(1s) -> Ok(())"
                ]
            );
        });
}

/// S19: cancel reasons: the first reason wins; the `Cancelled` seen at checkpoints and
/// the scope report it (explicit, deadline, child error with the task's name).
#[scope_runtime::test(paused)]
async fn s19_cancel_reason_first_wins_and_is_reported() {
    let log = Log::new();

    // Explicit.
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            s.cancel_with("first");
            s.cancel_with("second");
            s.cancel();
            let c = checkpoint().await.unwrap_err();
            l.push(format!("explicit: {}", c.reason()));
            assert_eq!(c.reason(), &CancelReason::Explicit(Some("first".into())));
            Err::<(), _>(c)
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        scope.cancel_reason(),
        Some(CancelReason::Explicit(Some("first".into())))
    );

    // Deadline; a later explicit reason does not replace it.
    let scope = CancelScope::new().with_timeout(secs(1));
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            let c = sleep(secs(10)).await.unwrap_err();
            s.cancel_with("too late");
            l.push(format!("deadline: {}", c.reason()));
            assert_eq!(c.reason(), &CancelReason::Deadline);
            Err::<(), _>(c)
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(scope.cancel_reason(), Some(CancelReason::Deadline));

    // A child's error, with the child's name.
    let group = TaskGroup::new();
    let l = log.clone();
    let out = group
        .run(|tg| async move {
            tg.spawn_named("failing worker", async {
                sleep(secs(1)).await?;
                Err(MyError("boom").into())
            });
            let c = sleep(secs(10)).await.unwrap_err();
            // The reason's text without the task's number (`#n`), which only this
            // runtime has.
            match c.reason() {
                CancelReason::TaskFailed(t) => {
                    assert_eq!(t.name(), Some("failing worker"));
                    let shown = c.reason().to_string();
                    assert!(
                        shown.starts_with("task `failing worker` (#")
                            && shown.ends_with(") failed"),
                        "{shown}"
                    );
                    l.push(format!(
                        "child error: task `{}` failed",
                        t.name().unwrap_or("?")
                    ));
                }
                r => panic!("wrong reason {r:?}"),
            }
            Err::<(), _>(c.into())
        })
        .await;
    let err = out.unwrap_err();
    assert_eq!(err.failures().len(), 1);
    log.push(format!("group failures: {}", err.failures().len()));
    assert_eq!(err.failures()[0].task().name(), Some("failing worker"));
    match group.cancel_scope().cancel_reason() {
        Some(CancelReason::TaskFailed(t)) => assert_eq!(t.name(), Some("failing worker")),
        r => panic!("wrong group reason {r:?}"),
    }
    assert_eq!(
        log.timed(),
        [
            "0ns explicit: cancelled: first",
            "1s deadline: deadline reached",
            "2s child error: task `failing worker` failed",
            "2s group failures: 1"
        ]
    );
}

/// S20: a shield set while a `Cancelled` of the outer scope is travelling outward does
/// not let the inner scope claim it (Trio #1175): the inner scope is not cancelled, so
/// it cannot absorb anything. Checked against Trio 0.35 (`inner.shield = True` in a
/// `finally:` after `outer.cancel()`: outer caught, inner not).
#[scope_runtime::test(paused)]
async fn s20_shield_set_while_cancel_travels_does_not_capture() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let (l2, i2) = (l.clone(), i.clone());
            let r = i
                .run(async move {
                    o.cancel_with("outer");
                    let c = checkpoint().await.unwrap_err();
                    l2.push("inner: checkpoint failed");
                    // While the Cancelled travels: shield the inner scope.
                    i2.set_shield(true);
                    Err::<(), _>(c)
                })
                .await;
            match &r {
                Ok(v) => l.push(format!("inner claimed it: {v:?}")),
                Err(c) => l.push(format!("inner passed it on ({})", c.reason())),
            }
            r?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(
        log.events(),
        [
            "inner: checkpoint failed",
            "inner passed it on (cancelled: outer)"
        ]
    );
    assert!(!inner.cancelled_caught());
    assert!(outer.cancelled_caught());
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S20b, where S20 meets the exit-time rule (R4): if the inner scope is shielded *and
/// cancelled* while the outer `Cancelled` travels, then when it leaves, the inner scope
/// is cancelled and sees no cancelled scope beyond its shield, so it absorbs it. Trio
/// 0.35 does the same (`inner.shield = True; inner.cancel()` in the `finally:`:
/// inner caught, outer not). The outer scope's cancel is not lost: it is level-triggered
/// and fails the next checkpoint after the inner scope.
#[scope_runtime::test(paused)]
async fn s20b_shielded_and_cancelled_while_travelling_absorbs() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let (l2, i2) = (l.clone(), i.clone());
            let r = i
                .run(async move {
                    o.cancel_with("outer");
                    let c = checkpoint().await.unwrap_err();
                    l2.push(format!("inner: checkpoint failed ({})", c.reason()));
                    i2.set_shield(true);
                    i2.cancel_with("inner");
                    Err::<(), _>(c)
                })
                .await;
            assert_eq!(r, Ok(None), "the inner scope absorbed it");
            l.push(format!("inner returned {r:?}"));
            let again = checkpoint().await.unwrap_err();
            assert_eq!(
                again.reason(),
                &CancelReason::Explicit(Some("outer".into()))
            );
            l.push(format!(
                "outer: next checkpoint failed ({})",
                again.reason()
            ));
            Err::<(), _>(again)
        })
        .await;
    assert_eq!(out, Ok(None));
    assert!(inner.cancelled_caught());
    assert!(outer.cancelled_caught());
    log.push(format!("outer returned {out:?}"));
    assert_eq!(
        log.events(),
        [
            "inner: checkpoint failed (cancelled: outer)",
            "inner returned Ok(None)",
            "outer: next checkpoint failed (cancelled: outer)",
            "outer returned Ok(None)"
        ]
    );
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

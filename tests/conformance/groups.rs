//! G: task groups (rules R7, R8), including the seed discussion's examples.

use std::cell::RefCell;
use std::panic::AssertUnwindSafe;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::{
    BoxError, CancelError, CancelReason, CancelScope, Cancelled, Outcome, SpawnError, TaskGroup,
    TaskGroupError, TaskHandle, TaskStatus, checkpoint, current_task, sleep, spawn, task_group,
};

use crate::{Log, MyError, assert_groups, ms, panic_message, secs};

/// A child that sleeps `d`, logging `"{name} done"`, or `"{name} cancelled"` and
/// returning the `Cancelled` if it is cancelled first.
async fn sleeper(log: Log, name: &'static str, d: Duration) -> Result<(), BoxError> {
    match sleep(d).await {
        Ok(()) => {
            log.push(format!("{name} done"));
            Ok(())
        }
        Err(c) => {
            log.push(format!("{name} cancelled"));
            Err(c.into())
        }
    }
}

/// G01: leaving the block waits for all children.
#[scope_runtime::test(paused)]
async fn g01_block_exit_waits_for_children() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        for (name, s) in [("child 1", 1), ("child 3", 3), ("child 2", 2)] {
            tg.spawn(sleeper(l.clone(), name, secs(s)));
        }
        l.push("body done");
        Ok(42)
    })
    .await;
    log.push("after group");
    assert!(matches!(r, Ok(Some(42))), "{r:?}");
    assert_eq!(
        log.timed(),
        [
            "0ns body done",
            "1s child 1 done",
            "2s child 2 done",
            "3s child 3 done",
            "3s after group"
        ]
    );
    log.push(format!("group returned {r:?}"));
}

/// G02 (seed): `group.cancel()` from the body: the code after it runs; the next
/// checkpoint fails; the group absorbs; the code after the group runs.
#[scope_runtime::test(paused)]
async fn g02_cancel_from_body_seed() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            tg.spawn(sleeper(l.clone(), "child", secs(3600)));
            tg.cancel();
            l.push("We DO reach here: tg.cancel() schedules, does not raise");
            if let Err(c) = checkpoint().await {
                l.push("the next checkpoint fails");
                return Err(c.into());
            }
            l.push("We do NOT reach here");
            Ok(())
        })
        .await;
    log.push("We DO reach here: after the group");
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_eq!(
        log.timed(),
        [
            "0ns We DO reach here: tg.cancel() schedules, does not raise",
            "0ns the next checkpoint fails",
            "0ns child cancelled",
            "0ns We DO reach here: after the group"
        ]
    );
    // The task running the group is not cancelled.
    assert_eq!(checkpoint().await, Ok(()));
}

/// G03: `group.cancel()` from a child cancels its siblings and the body; the group
/// returns normally.
#[scope_runtime::test(paused)]
async fn g03_cancel_from_child_cancels_siblings_and_body() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let (l2, tg2) = (l.clone(), tg.clone());
            tg.spawn(async move {
                sleep(secs(1)).await?;
                l2.push("canceller: tg.cancel()");
                tg2.cancel();
                l2.push("canceller: returns");
                Ok(())
            });
            tg.spawn(sleeper(l.clone(), "sibling", secs(100)));
            sleeper(l.clone(), "body", secs(100)).await?;
            Ok(())
        })
        .await;
    log.push("after group");
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_groups(
        &log.timed(),
        &[
            &["1s canceller: tg.cancel()", "1s canceller: returns"],
            &["1s body cancelled", "1s sibling cancelled"],
            &["1s after group"],
        ],
    );
    assert_eq!(checkpoint().await, Ok(()));
}

/// G04 (seed): outer/middle/inner groups; `middle.cancel()` inside inner: inner
/// propagates, middle completes normally, outer is unaffected.
#[scope_runtime::test(paused)]
async fn g04_seed_nested_groups() {
    let log = Log::new();
    let (outer, middle, inner) = (TaskGroup::new(), TaskGroup::new(), TaskGroup::new());
    let (l, m, i) = (log.clone(), middle.clone(), inner.clone());
    let r = outer
        .run(|_outer_tg| async move {
            let l2 = l.clone();
            m.run(|middle_tg| async move {
                let l3 = l2.clone();
                let r = i
                    .run(|_inner_tg| async move {
                        middle_tg.cancel();
                        l3.push(
                            "We DO reach here: tg.cancel() schedules CancelledError but does not raise it directly",
                        );
                        sleep(Duration::ZERO).await?;
                        l3.push("We do NOT reach here: sleep(0) raises CancelledError");
                        Ok(())
                    })
                    .await;
                if let Err(e) = &r {
                    l2.push(format!(
                        "inner group: Err, cancellation={} failures={}",
                        e.as_cancelled().is_some(),
                        e.failures().len()
                    ));
                }
                r?;
                l2.push("We do NOT reach here: inner_tg.__aexit__() propagates cancellation");
                Ok(())
            })
            .await?;
            l.push("We DO reach here: middle_tg was cancelled but is now complete");
            Ok(())
        })
        .await;
    log.push("We DO reach here: outer_tg is unaffected");
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert_eq!(
        log.events(),
        [
            "We DO reach here: tg.cancel() schedules CancelledError but does not raise it directly",
            "inner group: Err, cancellation=true failures=0",
            "We DO reach here: middle_tg was cancelled but is now complete",
            "We DO reach here: outer_tg is unaffected"
        ]
    );
    // A `Cancelled` left the inner group's body: the inner group cancels itself, as a
    // Trio nursery does for any exception leaving a child (it does not absorb it: the
    // middle group's cancel is visible through it).
    assert!(inner.cancel_called() && !inner.cancelled_caught());
    assert!(middle.cancel_called() && middle.cancelled_caught());
    assert!(!outer.cancel_called() && !outer.cancelled_caught());
    log.group_flags("inner", &inner);
    log.group_flags("middle", &middle);
    log.group_flags("outer", &outer);
}

/// G05: a child's error cancels its siblings and the body; the group returns that error.
#[scope_runtime::test(paused)]
async fn g05_child_error_cancels_siblings() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn_named("bad", async move {
                sleep(secs(1)).await?;
                l2.push("bad: fails");
                Err(MyError("bad").into())
            });
            tg.spawn_named("sibling", sleeper(l.clone(), "sibling", secs(100)));
            sleeper(l.clone(), "body", secs(100)).await?;
            Ok(())
        })
        .await;
    log.push("after group");
    let e = r.unwrap_err();
    assert_eq!(e.failures().len(), 1);
    let f = &e.failures()[0];
    assert_eq!(f.task().name(), Some("bad"));
    assert!(!f.is_body());
    assert_eq!(f.error().downcast_ref::<MyError>(), Some(&MyError("bad")));
    assert_eq!(e.find::<MyError>(), Some(&MyError("bad")));
    assert!(e.as_cancelled().is_none(), "an error is not a cancellation");
    assert!(
        e.to_string()
            .starts_with("a task group failed: task `bad` (#"),
        "{e}"
    );
    assert!(group.cancel_called());
    assert!(
        group.cancelled_caught(),
        "Trio: the group's scope caught its Cancelled"
    );
    assert!(matches!(
        group.cancel_scope().cancel_reason(),
        Some(CancelReason::TaskFailed(t)) if t.name() == Some("bad")
    ));
    assert_groups(
        &log.timed(),
        &[
            &["1s bad: fails"],
            &["1s body cancelled", "1s sibling cancelled"],
            &["1s after group"],
        ],
    );
    let errors: Vec<String> = e.failures().iter().map(|f| f.error().to_string()).collect();
    log.push(format!(
        "group failed: cancellation={} failures={errors:?}",
        e.as_cancelled().is_some()
    ));
}

/// G06: two children fail: both errors are returned (at once, or one during the other's
/// cancellation cleanup).
#[scope_runtime::test(paused)]
async fn g06_two_child_errors_both_returned() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        tg.spawn_named("a", async { Err(MyError("a").into()) });
        tg.spawn_named("b", async { Err(MyError("b").into()) });
        sleeper(l, "body", secs(100)).await?;
        Ok(())
    })
    .await;
    let e = r.unwrap_err();
    for f in e.failures() {
        log.push(format!("group 1 failure: {}", f.error()));
    }
    let got: Vec<_> = e
        .failures()
        .iter()
        .map(|f| {
            (
                f.task().name(),
                f.error().downcast_ref::<MyError>().cloned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("a"), Some(MyError("a"))),
            (Some("b"), Some(MyError("b")))
        ]
    );
    assert!(
        e.to_string()
            .starts_with("2 tasks of a task group failed: "),
        "{e}"
    );

    // The second error comes from the cleanup after the first one's cancellation.
    let l = log.clone();
    let r = task_group(|tg| async move {
        tg.spawn_named("first", async {
            sleep(secs(1)).await?;
            Err(MyError("first").into())
        });
        let l2 = l.clone();
        tg.spawn_named("second", async move {
            match sleep(secs(100)).await {
                Ok(()) => Ok(()),
                Err(_) => {
                    l2.push("second: cancelled, cleanup fails");
                    Err(MyError("second cleanup").into())
                }
            }
        });
        sleeper(l, "body", secs(100)).await?;
        Ok(())
    })
    .await;
    let e = r.unwrap_err();
    for f in e.failures() {
        log.push(format!("group 2 failure: {}", f.error()));
    }
    let got: Vec<_> = e
        .failures()
        .iter()
        .map(|f| {
            (
                f.task().name(),
                f.error().downcast_ref::<MyError>().cloned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (Some("first"), Some(MyError("first"))),
            (Some("second"), Some(MyError("second cleanup")))
        ]
    );
    assert_groups(
        &log.timed(),
        &[
            &["0ns body cancelled"],
            &["0ns group 1 failure: my error: a"],
            &["0ns group 1 failure: my error: b"],
            &["1s body cancelled", "1s second: cancelled, cleanup fails"],
            &["1s group 2 failure: my error: first"],
            &["1s group 2 failure: my error: second cleanup"],
        ],
    );
}

/// G07: a child panics: the siblings are cancelled and awaited (their cleanup runs to
/// the end), then the panic resumes in the parent.
#[scope_runtime::test(paused)]
async fn g07_child_panic_resumes_after_siblings() {
    let log = Log::new();
    let group = TaskGroup::new();
    let (l, g) = (log.clone(), group.clone());
    let host = spawn(async move {
        let l1 = l.clone();
        let r = g
            .run(|tg| async move {
                let l2 = l1.clone();
                tg.spawn_named("panicker", async move {
                    sleep(secs(1)).await?;
                    l2.push("panicker: panics");
                    panic!("boom");
                });
                let l3 = l1.clone();
                tg.spawn_named("sibling", async move {
                    let Err(c) = sleep(secs(100)).await else {
                        return Ok(());
                    };
                    l3.push("sibling cancelled");
                    CancelScope::new()
                        .with_shield(true)
                        .run(sleep(secs(1)))
                        .await?;
                    l3.push("sibling cleanup done");
                    Err(c.into())
                });
                sleeper(l1.clone(), "body", secs(100)).await?;
                Ok(())
            })
            .await;
        l.push("after group: not reached");
        r.map(|_| ())
    });
    match host.await.unwrap() {
        Outcome::Panicked(p) => log.push(format!("host panicked: {}", panic_message(&*p))),
        other => panic!("the panic did not resume: {other:?}"),
    }
    assert!(matches!(
        group.cancel_scope().cancel_reason(),
        Some(CancelReason::TaskPanicked(t)) if t.name() == Some("panicker")
    ));
    assert_groups(
        &log.timed(),
        &[
            &["1s panicker: panics"],
            &["1s body cancelled", "1s sibling cancelled"],
            &["2s sibling cleanup done"],
            &["2s host panicked: boom"],
        ],
    );
}

/// G08: an outer cancel while the group waits cancels the children; the `Cancelled`
/// propagates past the group to the outer scope.
#[scope_runtime::test(paused)]
async fn g08_outer_cancel_during_group_wait_propagates() {
    let log = Log::new();
    let outer = CancelScope::new();
    let group = TaskGroup::new();
    let o = outer.clone();
    let canceller = spawn(async move {
        sleep(secs(1)).await?;
        o.cancel_with("outer");
        Ok::<_, Cancelled>(())
    });
    let (l, g) = (log.clone(), group.clone());
    let r = outer
        .run(async move {
            let l2 = l.clone();
            let r = g
                .run(|tg| async move {
                    tg.spawn(sleeper(l2.clone(), "child 1", secs(100)));
                    tg.spawn(sleeper(l2.clone(), "child 2", secs(100)));
                    l2.push("body done");
                    Ok(())
                })
                .await;
            if let Err(e) = &r {
                l.push(format!(
                    "group: Err, cancellation={:?} failures={}",
                    e.as_cancelled().map(|c| c.reason().to_string()),
                    e.failures().len()
                ));
            }
            r?;
            l.push("outer body: not reached");
            Ok::<_, TaskGroupError>(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    canceller.await.unwrap().unwrap();
    assert!(outer.cancel_called() && outer.cancelled_caught());
    // The children's `Cancelled` left them: the group cancelled itself too (as a Trio
    // nursery does), and passed the cancellation on.
    assert!(group.cancel_called() && !group.cancelled_caught());
    assert_groups(
        &log.timed(),
        &[
            &["0ns body done"],
            &["1s child 1 cancelled", "1s child 2 cancelled"],
            &["1s group: Err, cancellation=Some(\"cancelled: outer\") failures=0"],
        ],
    );
    log.flags("outer", &outer);
    log.group_flags("group", &group);
}

/// G09: a child's error while the group is already cancelled by `cancel()`: the error
/// still wins over the absorbed cancel.
#[scope_runtime::test(paused)]
async fn g09_child_error_wins_over_group_cancel() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn_named("cleanup fails", async move {
                match sleep(secs(100)).await {
                    Ok(()) => Ok(()),
                    Err(_) => {
                        l2.push("child: cancelled, cleanup fails");
                        Err(MyError("cleanup").into())
                    }
                }
            });
            sleep(secs(1)).await?;
            tg.cancel();
            l.push("body: group cancelled");
            sleeper(l.clone(), "body", secs(100)).await?;
            Ok(())
        })
        .await;
    let e = r.unwrap_err();
    assert!(e.as_cancelled().is_none());
    assert_eq!(e.failures().len(), 1);
    assert_eq!(e.find::<MyError>(), Some(&MyError("cleanup")));
    assert!(group.cancel_called());
    assert_eq!(
        group.cancel_scope().cancel_reason(),
        Some(CancelReason::Explicit(None)),
        "the first reason stays"
    );
    assert_eq!(
        log.timed(),
        [
            "1s body: group cancelled",
            "1s body cancelled",
            "1s child: cancelled, cleanup fails"
        ]
    );
    log.group_flags("group", &group);
}

/// G10: `cancel_called()` / `cancelled_caught()` on a group, during and after the block.
#[scope_runtime::test(paused)]
async fn g10_group_flags_during_and_after() {
    let log = Log::new();
    let group = TaskGroup::new();
    let flags = |g: &TaskGroup| {
        format!(
            "called={} caught={}",
            g.cancel_called(),
            g.cancelled_caught()
        )
    };
    log.push(format!("before: {}", flags(&group)));
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            l.push(format!("body start: {}", flags(&tg)));
            sleep(secs(1)).await?;
            tg.cancel();
            l.push(format!("after cancel: {}", flags(&tg)));
            if let Err(c) = sleep(secs(1)).await {
                l.push(format!("body cancelled: {}", flags(&tg)));
                return Err(c.into());
            }
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)));
    log.push(format!("after: {}", flags(&group)));
    assert_eq!(
        log.timed(),
        [
            "0ns before: called=false caught=false",
            "0ns body start: called=false caught=false",
            "1s after cancel: called=true caught=false",
            "1s body cancelled: called=true caught=false",
            "1s after: called=true caught=true"
        ]
    );
    log.push(format!("group returned {r:?}"));

    // Cancelled but never reaching a checkpoint: called, not caught; the value is kept.
    let group = TaskGroup::new();
    let r = group
        .run(|tg| async move {
            tg.cancel();
            Ok(5)
        })
        .await;
    assert!(matches!(r, Ok(Some(5))));
    assert!(group.cancel_called() && !group.cancelled_caught());
    log.push(format!(
        "cancelled, no checkpoint: returned {r:?}, {}",
        flags(&group)
    ));

    // Never cancelled.
    let group = TaskGroup::new();
    let r = group
        .run(|tg| async move {
            tg.spawn(async { Ok(sleep(secs(1)).await?) });
            Ok(6)
        })
        .await;
    assert!(matches!(r, Ok(Some(6))));
    assert!(!group.cancel_called() && !group.cancelled_caught());
    log.push(format!(
        "never cancelled: returned {r:?}, {}",
        flags(&group)
    ));
}

/// G11: spawning into a group whose block has ended (or not begun) is a clear error;
/// running a group twice is a clear panic.
#[scope_runtime::test(paused)]
async fn g11_spawn_into_closed_group_is_error() {
    let log = Log::new();
    let group = TaskGroup::new();
    assert!(!group.is_closed());
    assert_eq!(
        group.try_spawn(async { Ok(()) }).err(),
        Some(SpawnError::NotEntered)
    );
    let r = group
        .run(|tg| async move {
            assert!(!tg.is_closed());
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(Some(()))));
    assert!(group.is_closed());
    let after = group.try_spawn(async { Ok(()) }).err();
    assert_eq!(after, Some(SpawnError::Closed));
    log.push(format!("after the block: try_spawn -> {after:?}"));
    let p = std::panic::catch_unwind(AssertUnwindSafe(|| group.spawn(async { Ok(()) })))
        .expect_err("spawn into a closed group must panic");
    let msg = panic_message(&*p);
    assert!(msg.contains("block has ended"), "unclear message: {msg}");
    let e = group
        .start(|status: TaskStatus<()>| async move {
            status.started(());
            Ok(())
        })
        .await
        .expect_err("start on a closed group must fail");
    assert_eq!(e.downcast_ref::<SpawnError>(), Some(&SpawnError::Closed));

    let g = group.clone();
    let again = spawn(async move { g.run(|_| async { Ok(()) }).await });
    match again.await.unwrap() {
        Outcome::Panicked(p) => {
            let msg = panic_message(&*p);
            assert!(msg.contains("twice"), "unclear message: {msg}");
        }
        other => panic!("running a group twice was accepted: {other:?}"),
    }
}

/// G12: a child spawned into a cancelled group starts cancelled: its code runs up to
/// its first checkpoint, which fails.
#[scope_runtime::test(paused)]
async fn g12_child_of_cancelled_group_starts_cancelled() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            tg.cancel();
            let l2 = l.clone();
            tg.spawn(async move {
                l2.push("child: starts");
                if let Err(c) = checkpoint().await {
                    l2.push("child: first checkpoint failed");
                    return Err(c.into());
                }
                l2.push("child: not reached");
                Ok(())
            });
            l.push("body: returns without a checkpoint");
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_eq!(
        log.events(),
        [
            "body: returns without a checkpoint",
            "child: starts",
            "child: first checkpoint failed"
        ]
    );
    log.push(format!("group returned {r:?}"));
    log.group_flags("group", &group);
}

/// G13: `start()` returns the started value; the child keeps running in the group
/// (and from then on belongs to the group, not to the caller's scope).
#[scope_runtime::test(paused)]
async fn g13_start_returns_value_child_keeps_running() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        let caller_scope = CancelScope::new();
        let (l2, cs, tg2) = (l.clone(), caller_scope.clone(), tg.clone());
        let v = caller_scope
            .run(async move {
                let l3 = l2.clone();
                let v = tg2
                    .start(|status| async move {
                        l3.push("child: setting up");
                        sleep(secs(1)).await?;
                        status.started(42u32);
                        l3.push("child: started");
                        sleep(secs(2)).await?;
                        l3.push("child: still running after start");
                        Ok(())
                    })
                    .await?;
                l2.push(format!("caller: start returned {v}"));
                // Cancelling the caller's scope now must not reach the started child,
                // even while that scope stays open (the caller waits shielded).
                cs.cancel();
                CancelScope::new()
                    .with_shield(true)
                    .run(sleep(secs(3)))
                    .await?;
                checkpoint().await?;
                Ok::<_, BoxError>(v)
            })
            .await?;
        l.push(format!("body: caller scope returned {v:?}"));
        Ok(v)
    })
    .await;
    log.push("after group");
    assert!(matches!(r, Ok(Some(None))), "{r:?}");
    assert_eq!(
        log.timed(),
        [
            "0ns child: setting up",
            "1s child: started",
            "1s caller: start returned 42",
            "3s child: still running after start",
            "4s body: caller scope returned None",
            "4s after group"
        ]
    );
}

/// G14: the caller of `start()` is cancelled before `started`: the child is cancelled
/// too; the group is unaffected.
#[scope_runtime::test(paused)]
async fn g14_start_caller_cancelled_cancels_child() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let scope = CancelScope::new().with_timeout(secs(1));
            let l2 = l.clone();
            let r = scope
                .run(tg.start(|status: TaskStatus<u32>| async move {
                    l2.push("child: setting up");
                    if let Err(c) = sleep(secs(5)).await {
                        l2.push(format!("child: cancelled before started ({})", c.reason()));
                        return Err(c.into());
                    }
                    status.started(1);
                    Ok(())
                }))
                .await;
            l.push(format!(
                "caller: {:?}, scope caught={}",
                r.map_err(|e| e.to_string()),
                scope.cancelled_caught()
            ));
            checkpoint().await?;
            l.push("body goes on");
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert!(!group.cancel_called());
    assert_eq!(
        log.timed(),
        [
            "0ns child: setting up",
            "1s child: cancelled before started (deadline reached)",
            "1s caller: Ok(None), scope caught=true",
            "1s body goes on"
        ]
    );
    log.group_flags("group", &group);
}

/// G15: the child fails before `started`: the error goes to the caller of `start()`,
/// not to the group.
#[scope_runtime::test(paused)]
async fn g15_start_child_error_goes_to_caller() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            let r = tg
                .start(|status: TaskStatus<u32>| async move {
                    sleep(secs(1)).await?;
                    l2.push("child: fails before started");
                    drop(status);
                    Err(MyError("setup failed").into())
                })
                .await;
            let e = r.unwrap_err();
            assert_eq!(e.downcast_ref::<MyError>(), Some(&MyError("setup failed")));
            l.push(format!("caller got: {e}"));
            // Returning without `started` is an error for the caller too.
            let e = tg
                .start(|_status: TaskStatus<u32>| async move { Ok(()) })
                .await
                .unwrap_err();
            l.push(format!("caller got: {e}"));
            checkpoint().await?;
            l.push("body goes on");
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert!(!group.cancel_called());
    assert_eq!(
        log.timed(),
        [
            "1s child: fails before started",
            "1s caller got: my error: setup failed",
            "1s caller got: the task passed to TaskGroup::start returned without calling TaskStatus::started",
            "1s body goes on"
        ]
    );
    log.group_flags("group", &group);
}

/// A job of the seed program: works in `period` steps; on its `done_after`-th step it
/// decides everything should stop and calls `tg.cancel()`.
async fn seed_job(
    log: Log,
    name: &'static str,
    period: Duration,
    done_after: Option<u32>,
    tg: TaskGroup,
) -> Result<(), BoxError> {
    let mut n = 0;
    loop {
        if let Err(c) = sleep(period).await {
            log.push(format!("{name}: cancelled"));
            return Err(c.into());
        }
        n += 1;
        if Some(n) == done_after {
            log.push(format!("{name}: done, cancelling the group"));
            tg.cancel();
            return Ok(());
        }
        log.push(format!("{name}: tick"));
    }
}

/// G16 (seed): two jobs and a daemon; the program finishes once one job calls
/// `cancel()`, with no task left running. (Periods differ so no two tasks wake at the
/// same instant as the cancelling job.)
#[scope_runtime::test(paused)]
async fn g16_seed_program_finishes_on_cancel() {
    let log = Log::new();
    let group = TaskGroup::new();
    let handles: Rc<RefCell<Vec<TaskHandle>>> = Rc::default();
    let (l, h) = (log.clone(), handles.clone());
    let r = group
        .run(|tg| async move {
            let mut h = h.borrow_mut();
            h.push(tg.spawn_named(
                "job 1",
                seed_job(l.clone(), "job 1", secs(1), Some(3), tg.clone()),
            ));
            h.push(tg.spawn_named(
                "job 2",
                seed_job(l.clone(), "job 2", ms(1300), Some(10), tg.clone()),
            ));
            h.push(tg.spawn_named(
                "daemon",
                seed_job(l.clone(), "daemon", ms(700), None, tg.clone()),
            ));
            Ok(())
        })
        .await;
    log.push("group finished");
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert!(
        handles.borrow().iter().all(|h| !h.is_alive()),
        "a task is left running"
    );
    sleep(secs(60)).await.unwrap();
    assert_groups(
        &log.timed(),
        &[
            &["700ms daemon: tick"],
            &["1s job 1: tick"],
            &["1.3s job 2: tick"],
            &["1.4s daemon: tick"],
            &["2s job 1: tick"],
            &["2.1s daemon: tick"],
            &["2.6s job 2: tick"],
            &["2.8s daemon: tick"],
            &["3s job 1: done, cancelling the group"],
            &["3s daemon: cancelled", "3s job 2: cancelled"],
            &["3s group finished"],
        ],
    );
}

/// Checks that no failure, at any depth, is a `Cancelled`.
fn assert_no_cancelled(e: &TaskGroupError) {
    assert!(e.as_cancelled().is_none());
    for f in e.failures() {
        assert!(
            f.error().downcast_ref::<Cancelled>().is_none(),
            "Cancelled among failures"
        );
        assert!(
            f.error().as_cancelled().is_none(),
            "Cancelled among failures"
        );
        if let Some(inner) = f.error().downcast_ref::<TaskGroupError>() {
            assert_no_cancelled(inner);
        }
    }
}

/// G17: nested groups: an error in an inner group's child comes out of the outer group
/// with the nesting visible; `Cancelled` never appears among the collected errors.
#[scope_runtime::test(paused)]
async fn g17_nested_group_errors_keep_nesting() {
    /// `group[...]` for each group error, the message for anything else.
    fn nesting(e: &TaskGroupError) -> String {
        let inner: Vec<String> = e
            .failures()
            .iter()
            .map(|f| match f.error().downcast_ref::<TaskGroupError>() {
                Some(g) => nesting(g),
                None => f.error().to_string(),
            })
            .collect();
        format!("group[{}]", inner.join(", "))
    }
    let log = Log::new();
    let l = log.clone();
    // The inner group runs in a child of the outer group.
    let r = task_group(|tg| async move {
        let l2 = l.clone();
        tg.spawn_named("inner host", async move {
            task_group(|itg| async move {
                itg.spawn_named("leaf", async {
                    sleep(secs(1)).await?;
                    Err(MyError("leaf").into())
                });
                itg.spawn_named(
                    "inner sibling",
                    sleeper(l2.clone(), "inner sibling", secs(100)),
                );
                sleeper(l2, "inner body", secs(100)).await?;
                Ok(())
            })
            .await?;
            Ok(())
        });
        tg.spawn_named(
            "outer sibling",
            sleeper(l.clone(), "outer sibling", secs(100)),
        );
        sleeper(l, "outer body", secs(100)).await?;
        Ok(())
    })
    .await;
    let e = r.unwrap_err();
    log.push(format!("child nesting: {}", nesting(&e)));
    assert_no_cancelled(&e);
    assert_eq!(e.failures().len(), 1);
    let f = &e.failures()[0];
    assert_eq!(f.task().name(), Some("inner host"));
    let inner = f
        .error()
        .downcast_ref::<TaskGroupError>()
        .expect("nesting visible");
    assert_eq!(inner.failures().len(), 1);
    assert_eq!(inner.failures()[0].task().name(), Some("leaf"));
    assert_eq!(inner.find::<MyError>(), Some(&MyError("leaf")));
    let text = e.to_string();
    assert!(
        text.contains("`inner host`") && text.contains("`leaf`") && text.contains("my error: leaf"),
        "{text}"
    );
    assert_groups(
        &log.timed(),
        &[
            &[
                "1s inner body cancelled",
                "1s inner sibling cancelled",
                "1s outer body cancelled",
                "1s outer sibling cancelled",
            ],
            &["1s child nesting: group[group[my error: leaf]]"],
        ],
    );

    // The inner group runs in the outer group's body.
    let r = task_group(|_tg| async move {
        task_group(|itg| async move {
            itg.spawn_named("leaf", async {
                sleep(secs(1)).await?;
                Err(MyError("leaf").into())
            });
            Ok(())
        })
        .await?;
        Ok(())
    })
    .await;
    let e = r.unwrap_err();
    log.push(format!("body nesting: {}", nesting(&e)));
    assert_no_cancelled(&e);
    assert_eq!(e.failures().len(), 1);
    assert!(e.failures()[0].is_body());
    let inner = e.failures()[0]
        .error()
        .downcast_ref::<TaskGroupError>()
        .expect("nesting visible");
    assert_eq!(inner.failures()[0].task().name(), Some("leaf"));
    assert_eq!(
        log.events().last().map(String::as_str),
        Some("body nesting: group[group[my error: leaf]]")
    );
}

/// G18: a child may spawn into its own group while the group waits at the end of its
/// block; after the group exited, spawning is an error.
#[scope_runtime::test(paused)]
async fn g18_spawn_while_waiting_then_closed() {
    let log = Log::new();
    let group = TaskGroup::new();
    let late: Rc<RefCell<Option<TaskGroup>>> = Rc::default();
    let (l, lt) = (log.clone(), late.clone());
    let r = group
        .run(|tg| async move {
            let (l2, tg2) = (l.clone(), tg.clone());
            *lt.borrow_mut() = Some(tg.clone());
            tg.spawn(async move {
                sleep(secs(1)).await?;
                l2.push("child A: spawning B");
                tg2.spawn(sleeper(l2.clone(), "child B", secs(1)));
                l2.push("child A done");
                Ok(())
            });
            l.push("body done");
            Ok(())
        })
        .await;
    log.push("group exited");
    assert!(matches!(r, Ok(Some(()))));
    // A task that kept the handle tries to spawn after the exit.
    let tg = late.borrow_mut().take().unwrap();
    let l = log.clone();
    let straggler = spawn(async move {
        sleep(secs(1)).await?;
        let r = tg.try_spawn(async { Ok(()) });
        l.push(format!("straggler: try_spawn -> {:?}", r.err()));
        Ok::<_, Cancelled>(())
    });
    straggler.await.unwrap().unwrap();
    assert_eq!(
        log.timed(),
        [
            "0ns body done",
            "1s child A: spawning B",
            "1s child A done",
            "2s child B done",
            "2s group exited",
            "3s straggler: try_spawn -> Some(Closed)"
        ]
    );
    log.push(format!("group returned {r:?}"));
    log.group_flags("group", &group);
}

/// G19: cancelling one child (its own root scope, or a scope inside it) does not cancel
/// the group or the host.
#[scope_runtime::test(paused)]
async fn g19_cancel_one_child_only() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            let a = tg.spawn_named("a", async move {
                match sleep(secs(100)).await {
                    Ok(()) => Ok(()),
                    Err(c) => {
                        l2.push(format!("a: cancelled ({})", c.reason()));
                        Err(c.into())
                    }
                }
            });
            tg.spawn_named("b", sleeper(l.clone(), "b", secs(2)));
            let l3 = l.clone();
            tg.spawn_named("c", async move {
                let own = CancelScope::new();
                let o = own.clone();
                let r = own
                    .run(async move {
                        sleep(secs(1)).await?;
                        o.cancel();
                        sleep(secs(100)).await?;
                        Ok::<_, Cancelled>(())
                    })
                    .await?;
                l3.push(format!("c: own scope returned {r:?}"));
                sleep(secs(2)).await?;
                l3.push("c done");
                Ok(())
            });
            sleep(secs(1)).await?;
            l.push("body: cancelling child a");
            assert!(a.cancel());
            assert_eq!(a.cancelling(), 1);
            sleep(secs(3)).await?;
            l.push(format!("body: still running, a alive={}", a.is_alive()));
            Ok(5)
        })
        .await;
    assert!(matches!(r, Ok(Some(5))), "{r:?}");
    assert!(!group.cancel_called() && !group.cancelled_caught());
    assert_eq!(current_task().cancelling(), 0);
    assert_groups(
        &log.timed(),
        &[
            &[
                "1s c: own scope returned None",
                "1s body: cancelling child a",
            ],
            &["1s a: cancelled (the task was cancelled)"],
            &["2s b done"],
            &["3s c done"],
            &["4s body: still running, a alive=false"],
        ],
    );
    log.push(format!("group returned {r:?}"));
    log.group_flags("group", &group);
}

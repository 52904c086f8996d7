//! New conformance cases taken from the anchors' own test suites (issue 10); see the
//! module doc of each test for the test it comes from.
//!
//! S21–S25, D14–D19, G20–G29: cases from Trio's `_core/_tests/test_run.py` and
//! `_tests/test_timeouts.py`. Each has a twin in `tests/oracle/cases/suite_trio.py`.

use std::io;
use std::time::Instant;

use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, TaskGroup, TaskGroupError, checkpoint,
    current_effective_deadline, now, sleep, task_group,
};

#[allow(unused_imports)]
use crate::{Log, MyError, assert_groups, ms, panic_message, secs};

/// Whether a checkpoint failed (the `Cancelled` is ignored, as the Trio tests do).
async fn cp_failed() -> bool {
    checkpoint().await.is_err()
}

/// "expired" when `d` leaves no time from now, else the time left ("none" without one).
fn budget(d: Option<Instant>) -> String {
    match d {
        None => "none".to_string(),
        Some(d) if d <= now() => "expired".to_string(),
        Some(d) => format!("{:?} left", d - now()),
    }
}

/// A child that sleeps "forever", logging `"{name} cancelled"` when it is cancelled and
/// returning the `Cancelled`.
async fn sleeper(log: Log, name: &'static str) -> Result<(), BoxError> {
    if let Err(c) = sleep(secs(1000)).await {
        log.push(format!("{name} cancelled"));
        return Err(c.into());
    }
    log.push(format!("{name} done"));
    Ok(())
}

/// What a group returned, in words.
fn group_result<T: std::fmt::Debug>(r: &Result<Option<T>, TaskGroupError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) if e.as_cancelled().is_some() => "Err(Cancelled)".to_string(),
        Err(e) => format!(
            "Err(failures=[{}])",
            e.failures()
                .iter()
                .map(|f| f.error().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

// ---- S: scopes and shields ---------------------------------------------------------

/// S21: a shield turned on, off and on again inside a scope whose outer scope is
/// cancelled: it hides the outer cancel only while on; a cancelled scope inside the
/// shield still applies (and absorbs its own); the shielded scope's own cancel applies
/// and is absorbed by it. From Trio `test_run.py::test_cancel_shielding`.
#[scope_runtime::test(paused)]
async fn s21_shield_toggled_inside_cancelled_outer() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let out = outer
        .run(async {
            let r = inner
                .run(async {
                    log.push(format!(
                        "before cancel: checkpoint failed={}",
                        cp_failed().await
                    ));
                    outer.cancel();
                    log.push(format!(
                        "outer cancelled: checkpoint failed={}",
                        cp_failed().await
                    ));
                    inner.set_shield(true);
                    log.push(format!(
                        "shield on: checkpoint failed={}",
                        cp_failed().await
                    ));
                    let innermost = CancelScope::new();
                    let r = innermost
                        .run(async {
                            innermost.cancel();
                            let r = checkpoint().await;
                            log.push(format!(
                                "innermost cancelled: checkpoint failed={}",
                                r.is_err()
                            ));
                            r
                        })
                        .await;
                    log.push(format!("innermost returned {r:?}"));
                    log.flags("innermost", &innermost);
                    log.push(format!(
                        "after innermost: checkpoint failed={}",
                        cp_failed().await
                    ));
                    inner.set_shield(false);
                    log.push(format!(
                        "shield off: checkpoint failed={}",
                        cp_failed().await
                    ));
                    inner.set_shield(true);
                    log.push(format!(
                        "shield on again: checkpoint failed={}",
                        cp_failed().await
                    ));
                    inner.cancel();
                    let r = checkpoint().await;
                    log.push(format!("inner cancelled: checkpoint failed={}", r.is_err()));
                    r
                })
                .await;
            log.push(format!("inner returned {r:?}"));
            r.map(drop)
        })
        .await;
    log.push(format!("outer returned {out:?}"));
    assert_eq!(out, Ok(Some(())));
    assert_eq!(
        log.events(),
        [
            "before cancel: checkpoint failed=false",
            "outer cancelled: checkpoint failed=true",
            "shield on: checkpoint failed=false",
            "innermost cancelled: checkpoint failed=true",
            "innermost returned Ok(None)",
            "innermost: called=true caught=true",
            "after innermost: checkpoint failed=false",
            "shield off: checkpoint failed=true",
            "shield on again: checkpoint failed=false",
            "inner cancelled: checkpoint failed=true",
            "inner returned Ok(None)",
            "outer returned Ok(Some(()))"
        ]
    );
    assert!(inner.cancel_called() && inner.cancelled_caught());
    assert!(outer.cancel_called() && !outer.cancelled_caught());
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S22: a task group's scope shielded inside a cancelled scope: its child gets to
/// sleep; turning the shield off wakes the child's sleep at that instant with the
/// outer cancel. From Trio `test_run.py::test_cancel_shield_abort`.
#[scope_runtime::test(paused)]
async fn s22_unshielding_a_group_wakes_its_sleeping_child() {
    let log = Log::new();
    let outer = CancelScope::new();
    let group = TaskGroup::new();
    let (o, lg) = (&outer, &log);
    let out = outer
        .run(async {
            group
                .run(|tg| async move {
                    let log = lg;
                    o.cancel();
                    tg.cancel_scope().set_shield(true);
                    let l = log.clone();
                    tg.spawn(async move {
                        l.push("child: sleeping");
                        if sleep(secs(1000)).await.is_err() {
                            l.push("child: cancelled");
                        }
                        Ok(())
                    });
                    sleep(secs(1)).await?;
                    log.push("body: slept 1s under the group's shield");
                    tg.cancel_scope().set_shield(false);
                    CancelScope::new()
                        .with_shield(true)
                        .run(sleep(secs(1)))
                        .await?;
                    log.push("body: waited 1s more in a shield");
                    Ok(())
                })
                .await?;
            Ok::<_, BoxError>(())
        })
        .await;
    log.push(format!("outer returned Ok? {}", out.is_ok()));
    assert!(matches!(out, Ok(Some(()))), "{out:?}");
    assert_eq!(
        log.timed(),
        [
            "0ns child: sleeping",
            "1s body: slept 1s under the group's shield",
            "1s child: cancelled",
            "2s body: waited 1s more in a shield",
            "2s outer returned Ok? true"
        ]
    );
    assert!(!group.cancel_called() && !group.cancelled_caught());
    assert!(outer.cancel_called() && !outer.cancelled_caught());
    log.group_flags("group", &group);
    log.flags("outer", &outer);
}

/// S23: three nested scopes, the two inner ones cancelled (innermost first): the middle
/// one absorbs, the outermost is untouched; then a scope shielded after its outer was
/// cancelled, and cancelled itself: its own cancel applies, it absorbs, and the outer
/// cancel fails the next checkpoint after it. From Trio
/// `test_run.py::test_cancel_scope_nesting`.
#[scope_runtime::test(paused)]
async fn s23_nesting_middle_absorbs_and_shielded_own_cancel() {
    let log = Log::new();
    let (s1, s2, s3) = (CancelScope::new(), CancelScope::new(), CancelScope::new());
    let r = s1
        .run(async {
            s2.run(async {
                s3.run(async {
                    s3.cancel();
                    s2.cancel();
                    let r = sleep(secs(1000)).await;
                    log.push(format!("sleep failed={}", r.is_err()));
                    r
                })
                .await
            })
            .await
        })
        .await;
    log.push(format!("scope1 returned {r:?}"));
    assert_eq!(r, Ok(Some(None)));
    log.flags("scope3", &s3);
    log.flags("scope2", &s2);
    log.flags("scope1", &s1);

    let (a, b) = (CancelScope::new(), CancelScope::new());
    let r = a
        .run(async {
            let r = b
                .run(async {
                    a.cancel();
                    log.push(format!(
                        "a cancelled: checkpoint failed={}",
                        cp_failed().await
                    ));
                    log.push(format!("again: checkpoint failed={}", cp_failed().await));
                    b.set_shield(true);
                    log.push(format!(
                        "b shielded: checkpoint failed={}",
                        cp_failed().await
                    ));
                    b.cancel();
                    let r = checkpoint().await;
                    log.push(format!("b cancelled: checkpoint failed={}", r.is_err()));
                    r
                })
                .await;
            log.push(format!("b returned {r:?}"));
            r?;
            let r = checkpoint().await;
            log.push(format!("after b: checkpoint failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("a returned {r:?}"));
    assert_eq!(r, Ok(None));
    log.flags("b", &b);
    log.flags("a", &a);
    assert_eq!(
        log.events(),
        [
            "sleep failed=true",
            "scope1 returned Ok(Some(None))",
            "scope3: called=true caught=false",
            "scope2: called=true caught=true",
            "scope1: called=false caught=false",
            "a cancelled: checkpoint failed=true",
            "again: checkpoint failed=true",
            "b shielded: checkpoint failed=false",
            "b cancelled: checkpoint failed=true",
            "b returned Ok(None)",
            "after b: checkpoint failed=true",
            "a returned Ok(None)",
            "b: called=true caught=true",
            "a: called=true caught=true"
        ]
    );
}

/// S24: a cancelled scope whose body fails with an error that is not a cancellation
/// (a plain error; errors of a task group's children that fail before any checkpoint)
/// passes it on and does not report `cancelled_caught`. From Trio
/// `test_run.py::test_cancel_scope_no_cancellederror`.
#[scope_runtime::test(paused)]
async fn s24_error_out_of_cancelled_scope_is_not_caught() {
    let log = Log::new();
    let scope = CancelScope::new();
    let r = scope
        .run(async {
            scope.cancel();
            Err::<(), BoxError>(MyError("test").into())
        })
        .await;
    log.push(format!(
        "scope returned {}",
        match &r {
            Ok(v) => format!("Ok({v:?})"),
            Err(e) => format!("Err({e})"),
        }
    ));
    log.flags("scope", &scope);

    let scope2 = CancelScope::new();
    let r = scope2
        .run(async {
            scope2.cancel();
            let r = task_group(|tg| async move {
                tg.spawn(async { Err(MyError("first").into()) });
                tg.spawn(async { Err(MyError("second").into()) });
                Ok(())
            })
            .await;
            // Two children failing at the same instant: Trio runs them in either order.
            let mut failed: Vec<String> = match &r {
                Err(e) => e.failures().iter().map(|f| f.error().to_string()).collect(),
                Ok(_) => Vec::new(),
            };
            failed.sort();
            log.push(format!(
                "group returned Err? {} failures (sorted)=[{}]",
                r.is_err(),
                failed.join(", ")
            ));
            r
        })
        .await;
    log.push(format!("scope2 returned Err? {}", r.is_err()));
    log.flags("scope2", &scope2);
    assert_eq!(
        log.events(),
        [
            "scope returned Err(my error: test)",
            "scope: called=true caught=false",
            "group returned Err? true failures (sorted)=[my error: first, my error: second]",
            "scope2 returned Err? true",
            "scope2: called=true caught=false"
        ]
    );
}

// ---- D: deadlines and timeouts -----------------------------------------------------

/// D14: a deadline set inside the body: the scope exits before it and is never
/// cancelled, also after that instant has passed; a deadline set, kept while a 5 s
/// sleep runs, then moved into the past fails the next checkpoints, and the scope
/// absorbs. From Trio `test_run.py::test_basic_timeout`.
#[scope_runtime::test(paused)]
async fn d14_deadline_set_in_body_then_moved_into_the_past() {
    let log = Log::new();
    let start = now();
    let scope = CancelScope::new();
    let r = scope
        .run(async {
            log.push(format!("deadline at entry: {:?}", scope.deadline()));
            scope.set_deadline(Some(start + secs(1)));
            log.push(format!(
                "deadline set: {:?}",
                scope.deadline().map(|d| d - start)
            ));
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(Some(())));
    sleep(secs(2)).await.unwrap();
    for _ in 0..3 {
        checkpoint().await.unwrap();
    }
    log.flags("exited before its deadline, 2s later", &scope);

    let start = now();
    let scope = CancelScope::new();
    let r = scope
        .run(async {
            log.push(format!("checkpoint failed={}", cp_failed().await));
            scope.set_deadline(Some(start + secs(10)));
            log.push(format!(
                "deadline +10s: checkpoint failed={}",
                cp_failed().await
            ));
            sleep(secs(5)).await?;
            log.push(format!("slept 5s: checkpoint failed={}", cp_failed().await));
            scope.set_deadline(Some(start + secs(1)));
            log.push(format!(
                "deadline moved to +1s: checkpoint failed={}",
                cp_failed().await
            ));
            let r = checkpoint().await;
            log.push(format!("again: checkpoint failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("scope returned {r:?}"));
    assert_eq!(r, Ok(None));
    log.flags("moved into the past", &scope);
    assert_eq!(
        log.timed(),
        [
            "0ns deadline at entry: None",
            "0ns deadline set: Some(1s)",
            "2s exited before its deadline, 2s later: called=false caught=false",
            "2s checkpoint failed=false",
            "2s deadline +10s: checkpoint failed=false",
            "7s slept 5s: checkpoint failed=false",
            "7s deadline moved to +1s: checkpoint failed=true",
            "7s again: checkpoint failed=true",
            "7s scope returned Ok(None)",
            "7s moved into the past: called=true caught=true"
        ]
    );
}

/// D15: a scope not yet entered whose deadline is moved to now reports
/// `cancel_called()`; moving the deadline back does not undo it ("never become
/// un-cancelled"), and on entry its first checkpoint fails. From Trio
/// `test_run.py::test_cancel_unbound`.
#[scope_runtime::test(paused)]
async fn d15_unentered_scope_deadline_moved_to_now_stays_cancelled() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 + secs(1));
    log.flags("deadline in 1s", &scope);
    scope.set_deadline(Some(t0));
    log.flags("deadline moved to now", &scope);
    scope.set_deadline(Some(t0 + secs(1)));
    log.flags("deadline moved back", &scope);
    let r = scope
        .run(async {
            let r = checkpoint().await;
            log.push(format!("entered: checkpoint failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("scope returned {r:?}"));
    assert_eq!(r, Ok(None));
    log.flags("after entry", &scope);
    assert_eq!(
        log.timed(),
        [
            "0ns deadline in 1s: called=false caught=false",
            "0ns deadline moved to now: called=true caught=false",
            "0ns deadline moved back: called=true caught=false",
            "0ns entered: checkpoint failed=true",
            "0ns scope returned Ok(None)",
            "0ns after entry: called=true caught=true"
        ]
    );
}

/// D16: `current_effective_deadline()` follows `set_deadline` and `set_shield` while
/// the body runs: inner deadline moved before and past the outer one, the inner scope
/// shielded and unshielded, the outer scope cancelled ("out of time", Trio `-inf`), a
/// shield hiding that again. From Trio `test_run.py::test_current_effective_deadline`.
#[scope_runtime::test(paused)]
async fn d16_effective_deadline_follows_deadline_and_shield_changes() {
    let log = Log::new();
    let t0 = now();
    log.push(format!("task: {}", budget(current_effective_deadline())));
    let s1 = CancelScope::new().with_deadline(t0 + secs(5));
    let s2 = CancelScope::new().with_deadline(t0 + secs(10));
    let ced = |what: &str| log.push(format!("{what}: {}", budget(current_effective_deadline())));
    let r = s1
        .run(async {
            s2.run(async {
                ced("scope1(5)/scope2(10)");
                s2.set_deadline(Some(t0 + secs(3)));
                ced("scope2 moved to 3");
                s2.set_deadline(Some(t0 + secs(10)));
                ced("scope2 moved to 10");
                s2.set_shield(true);
                ced("scope2 shielded");
                s2.set_shield(false);
                ced("scope2 unshielded");
                s1.cancel();
                ced("scope1 cancelled");
                s2.set_shield(true);
                ced("scope2 shielded again");
                Ok::<_, Cancelled>(())
            })
            .await?;
            ced("after scope2");
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(Some(())));
    ced("after scope1");
    assert_eq!(
        log.events(),
        [
            "task: none",
            "scope1(5)/scope2(10): 5s left",
            "scope2 moved to 3: 3s left",
            "scope2 moved to 10: 5s left",
            "scope2 shielded: 10s left",
            "scope2 unshielded: 5s left",
            "scope1 cancelled: expired",
            "scope2 shielded again: 10s left",
            "after scope2: expired",
            "after scope1: none"
        ]
    );
    log.flags("scope1", &s1);
    log.flags("scope2", &s2);
}

/// D17: a shielded `move_on_after` / `fail_after` scope inside a cancelled scope hides
/// the outer cancel; unshielded in its body, the next checkpoint fails with the outer
/// cancel, which the outer scope absorbs (no `TimedOut`). From Trio
/// `test_timeouts.py::test_context_shields_from_outer`.
#[scope_runtime::test(paused)]
async fn d17_unshielding_a_timeout_scope_lets_the_outer_cancel_in() {
    let log = Log::new();
    for kind in ["move_on_after", "fail_after"] {
        let outer = CancelScope::new();
        let inner = CancelScope::new().with_timeout(secs(1)).with_shield(true);
        let body = async {
            outer.cancel();
            log.push(format!(
                "{kind}: shielded checkpoint failed={}",
                cp_failed().await
            ));
            inner.set_shield(false);
            let r = checkpoint().await;
            log.push(format!(
                "{kind}: unshielded checkpoint failed={}",
                r.is_err()
            ));
            r?;
            Ok::<_, io::Error>(())
        };
        let r = outer
            .run(async {
                let r = if kind == "move_on_after" {
                    inner.run(body).await.map(|v| v.is_some())
                } else {
                    inner.run_or_timeout(body).await.map(|()| true)
                };
                log.push(format!(
                    "{kind}: inner returned {}",
                    match &r {
                        Ok(completed) => format!("Ok(completed={completed})"),
                        Err(e) if e.kind() == io::ErrorKind::TimedOut => "TimedOut".into(),
                        Err(e) if e.as_cancelled().is_some() => "Err(Cancelled)".into(),
                        Err(e) => format!("Err({e})"),
                    }
                ));
                r
            })
            .await;
        log.push(format!(
            "{kind}: outer returned Ok(None)? {}",
            matches!(r, Ok(None))
        ));
        log.flags(&format!("{kind}: inner"), &inner);
        log.flags(&format!("{kind}: outer"), &outer);
    }
    assert_eq!(
        log.timed(),
        [
            "0ns move_on_after: shielded checkpoint failed=false",
            "0ns move_on_after: unshielded checkpoint failed=true",
            "0ns move_on_after: inner returned Err(Cancelled)",
            "0ns move_on_after: outer returned Ok(None)? true",
            "0ns move_on_after: inner: called=false caught=false",
            "0ns move_on_after: outer: called=true caught=true",
            "0ns fail_after: shielded checkpoint failed=false",
            "0ns fail_after: unshielded checkpoint failed=true",
            "0ns fail_after: inner returned Err(Cancelled)",
            "0ns fail_after: outer returned Ok(None)? true",
            "0ns fail_after: inner: called=false caught=false",
            "0ns fail_after: outer: called=true caught=true"
        ]
    );
}

/// D18: a relative timeout (5 s) built 3 s before entry has its deadline 5 s after
/// entry; moving it in the body to entry + 3 s makes it fire then; a shield set on a
/// relative timeout before entry applies once it is entered. From Trio
/// `test_timeouts.py::test_timeout_deadline_on_entry`.
#[scope_runtime::test(paused)]
async fn d18_relative_timeout_deadline_set_on_entry_then_moved() {
    let log = Log::new();
    let rcs = CancelScope::new().with_timeout(secs(5));
    sleep(secs(3)).await.unwrap();
    let start = now();
    let r = rcs
        .run(async {
            log.push(format!(
                "entered: deadline {:?}",
                rcs.deadline().map(|d| d - start)
            ));
            rcs.set_deadline(Some(start + secs(3)));
            log.push(format!(
                "moved: deadline {:?}",
                rcs.deadline().map(|d| d - start)
            ));
            let r = sleep(secs(100)).await;
            log.push(format!("sleep failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("scope returned {r:?}"));
    assert_eq!(r, Ok(None));
    log.flags("moved", &rcs);

    let rcs = CancelScope::new().with_timeout(secs(5));
    log.push(format!("shield before: {}", rcs.shield()));
    rcs.set_shield(true);
    log.push(format!("shield set: {}", rcs.shield()));
    sleep(secs(3)).await.unwrap();
    let start = now();
    let outer = CancelScope::new();
    let r = outer
        .run(async {
            outer.cancel();
            rcs.run(async {
                log.push(format!(
                    "entered: deadline {:?}",
                    rcs.deadline().map(|d| d - start)
                ));
                log.push(format!("shielded: checkpoint failed={}", cp_failed().await));
                Ok::<_, Cancelled>(())
            })
            .await?;
            let r = checkpoint().await;
            log.push(format!("after it: checkpoint failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("outer returned {r:?}"));
    log.flags("shielded", &rcs);
    log.flags("outer", &outer);
    assert_eq!(
        log.timed(),
        [
            "3s entered: deadline Some(5s)",
            "3s moved: deadline Some(3s)",
            "6s sleep failed=true",
            "6s scope returned Ok(None)",
            "6s moved: called=true caught=true",
            "6s shield before: false",
            "6s shield set: true",
            "9s entered: deadline Some(5s)",
            "9s shielded: checkpoint failed=false",
            "9s after it: checkpoint failed=true",
            "9s outer returned Ok(None)",
            "9s shielded: called=false caught=false",
            "9s outer: called=true caught=true"
        ]
    );
}

// ---- G: task groups ----------------------------------------------------------------

/// A leaf of G20: sleeps until cancelled, logs it, and returns normally.
async fn leaf(log: Log, name: String) -> Result<(), BoxError> {
    if sleep(secs(1000)).await.is_err() {
        log.push(format!("{name} cancelled"));
    }
    Ok(())
}

/// G20: cancelling a group reaches at once every grandchild in the groups its children
/// opened (four leaves in two workers); each worker's group returns normally. From Trio
/// `test_run.py::test_cancel_inheritance`.
#[scope_runtime::test(paused)]
async fn g20_group_cancel_reaches_grandchildren() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            for w in ["w1", "w2"] {
                let l = l.clone();
                tg.spawn(async move {
                    let l2 = l.clone();
                    let r = task_group(|n| async move {
                        n.spawn(leaf(l2.clone(), format!("{w}-l1")));
                        n.spawn(leaf(l2, format!("{w}-l2")));
                        Ok(())
                    })
                    .await;
                    l.push(format!("{w}: group returned {}", group_result(&r)));
                    r?;
                    Ok(())
                });
            }
            tg.cancel();
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_groups(
        &log.events(),
        &[
            &[
                "w1-l1 cancelled",
                "w1-l2 cancelled",
                "w2-l1 cancelled",
                "w2-l2 cancelled",
            ],
            &[
                "w1: group returned Ok(Some(()))",
                "w2: group returned Ok(Some(()))",
            ],
            &["group returned Ok(Some(()))"],
        ],
    );
    log.group_flags("group", &group);
}

/// G21: entering and leaving a group inside a cancelled scope is not a checkpoint:
/// with an empty block, or with a child that makes no checkpoint, the scope catches
/// nothing; an error of the block still comes out. From Trio
/// `test_run.py::test_trivial_yields`.
#[scope_runtime::test(paused)]
async fn g21_group_enter_exit_is_not_a_checkpoint() {
    let log = Log::new();
    for variant in ["empty block", "child without checkpoint", "block fails"] {
        let cs = CancelScope::new();
        let r = cs
            .run(async {
                cs.cancel();
                let r = task_group(|tg| async move {
                    match variant {
                        "child without checkpoint" => {
                            tg.spawn(async { Ok(()) });
                        }
                        "block fails" => return Err(MyError("key").into()),
                        _ => {}
                    }
                    Ok(())
                })
                .await;
                log.push(format!("{variant}: group returned {}", group_result(&r)));
                r
            })
            .await;
        log.push(format!("{variant}: scope returned Err? {}", r.is_err()));
        log.flags(variant, &cs);
    }
    assert_eq!(
        log.events(),
        [
            "empty block: group returned Ok(Some(()))",
            "empty block: scope returned Err? false",
            "empty block: called=true caught=false",
            "child without checkpoint: group returned Ok(Some(()))",
            "child without checkpoint: scope returned Err? false",
            "child without checkpoint: called=true caught=false",
            "block fails: group returned Err(failures=[my error: key])",
            "block fails: scope returned Err? true",
            "block fails: called=true caught=false"
        ]
    );
}

/// What `start()` returned, in words.
fn start_result<V: std::fmt::Debug>(r: &Result<V, BoxError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) if e.as_cancelled().is_some() => "Cancelled".to_string(),
        Err(e) => format!("Err({e})"),
    }
}

/// G22: `start()` from cancelled code where the child calls `started()` and returns
/// without a checkpoint: `start()` returns the value; the caller's scope catches
/// nothing. From Trio `test_run.py::test_nursery_start`
/// (`started_with_no_checkpoint`).
#[scope_runtime::test(paused)]
async fn g22_start_from_cancelled_code_child_returns_without_checkpoint() {
    let log = Log::new();
    let group = TaskGroup::new();
    let cs = CancelScope::new();
    let (cs, log) = (&cs, &log);
    let r = group
        .run(|tg| async move {
            let r = cs
                .run(async {
                    cs.cancel();
                    let r = tg
                        .start(|status| async move {
                            status.started("hi");
                            Ok(())
                        })
                        .await;
                    log.push(format!("start returned {}", start_result(&r)));
                    r.map(drop)
                })
                .await;
            log.push(format!(
                "caller scope returned Ok(Some)? {}",
                matches!(r, Ok(Some(())))
            ));
            r.map(drop)
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.events(),
        [
            "start returned Ok(\"hi\")",
            "caller scope returned Ok(Some)? true",
            "group returned Ok(Some(()))"
        ]
    );
    log.flags("caller", cs);
    log.group_flags("group", &group);
}

/// G23: `start()` from cancelled code where the child calls `started()` and then
/// fails: since `started` did not move it, its error still comes out of `start()`; the
/// group is unaffected. From Trio `test_run.py::test_nursery_start`
/// (`raise_keyerror_after_started`).
#[scope_runtime::test(paused)]
async fn g23_start_from_cancelled_code_error_after_started_goes_to_caller() {
    let log = Log::new();
    let group = TaskGroup::new();
    let cs = CancelScope::new();
    let (cs, log) = (&cs, &log);
    let r = group
        .run(|tg| async move {
            cs.run(async {
                cs.cancel();
                let r = tg
                    .start(|status| async move {
                        status.started(());
                        Err(MyError("whoopsiedaisy").into())
                    })
                    .await;
                log.push(format!("start returned {}", start_result(&r)));
                Ok::<_, BoxError>(())
            })
            .await?;
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.events(),
        [
            "start returned Err(my error: whoopsiedaisy)",
            "group returned Ok(Some(()))"
        ]
    );
    log.flags("caller", cs);
    log.group_flags("group", &group);
}

/// G24: a `start()` child whose own children sleep calls `started()` into a target
/// group that was cancelled just before (by the child itself), or is cancelled just
/// after: the sleeping grandchildren are woken and cancelled; everything finishes.
/// From Trio `test_run.py::test_nursery_start_with_cancelled_nursery`.
#[scope_runtime::test(paused)]
async fn g24_started_into_a_cancelled_group_cancels_sleeping_grandchildren() {
    let log = Log::new();
    for before in [true, false] {
        let when = if before { "before" } else { "after" };
        let l = log.clone();
        let r = task_group(|tg| async move {
            let target: TaskGroup = tg
                .start(|status| async move {
                    task_group(|n| async move {
                        status.started(n.clone());
                        sleep(secs(1000)).await?;
                        Ok(())
                    })
                    .await?;
                    Ok(())
                })
                .await?;
            let (t2, l2) = (target.clone(), l.clone());
            target
                .start(move |status| async move {
                    task_group(|n| async move {
                        n.spawn(sleeper(
                            l2.clone(),
                            if before {
                                "before: sleeper 1"
                            } else {
                                "after: sleeper 1"
                            },
                        ));
                        n.spawn(sleeper(
                            l2.clone(),
                            if before {
                                "before: sleeper 2"
                            } else {
                                "after: sleeper 2"
                            },
                        ));
                        sleep(secs(1)).await?;
                        if before {
                            t2.cancel();
                        }
                        status.started(());
                        Ok(())
                    })
                    .await?;
                    Ok(())
                })
                .await?;
            l.push(format!("{when}: start returned"));
            if !before {
                target.cancel();
            }
            l.flags(&format!("{when}: target"), target.cancel_scope());
            Ok(())
        })
        .await;
        log.push(format!("{when}: group returned {}", group_result(&r)));
    }
    assert_eq!(
        log.timeline(),
        [
            "1s before: group returned Ok(Some(()))",
            "1s before: sleeper 1 cancelled",
            "1s before: sleeper 2 cancelled",
            "1s before: start returned",
            "1s before: target: called=true caught=false",
            "2s after: group returned Ok(Some(()))",
            "2s after: sleeper 1 cancelled",
            "2s after: sleeper 2 cancelled",
            "2s after: start returned",
            "2s after: target: called=true caught=false",
        ]
    );
}

/// G25: a group whose block has ended with no child yet, only `start()` calls made by
/// tasks of another group, stays open until those children (started at 2 s and 3 s)
/// have finished (6 s). From Trio `test_run.py::test_nursery_start_keeps_nursery_open`.
#[scope_runtime::test(paused)]
async fn g25_pending_start_keeps_group_open() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|n1| async move {
        let l2 = l.clone();
        let n2 = TaskGroup::new();
        let r = n2
            .run(|n2h| async move {
                for (i, name) in ["first", "second"].into_iter().enumerate() {
                    if i > 0 {
                        sleep(secs(1)).await?;
                    }
                    let (n2h, l) = (n2h.clone(), l2.clone());
                    n1.spawn(async move {
                        let l3 = l.clone();
                        n2h.start(|status| async move {
                            sleep(secs(2)).await?;
                            status.started(());
                            sleep(secs(3)).await?;
                            l3.push(format!("{name} done"));
                            Ok(())
                        })
                        .await?;
                        l.push(format!("{name}: start returned"));
                        Ok(())
                    });
                }
                l2.push("n2 block done");
                Ok(())
            })
            .await;
        l.push(format!("n2 returned {}", group_result(&r)));
        l.group_flags("n2", &n2);
        r?;
        Ok(())
    })
    .await;
    log.push(format!("n1 returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "1s n2 block done",
            "2s first: start returned",
            "3s second: start returned",
            "5s first done",
            "6s second done",
            "6s n2 returned Ok(Some(()))",
            "6s n2: called=false caught=false",
            "6s n1 returned Ok(Some(()))"
        ]
    );
}

/// G26: the same with a `start()` child that fails at 7 s before `started()`: the group
/// stays open until then; the error goes to the caller of `start()`, not to the group.
/// From Trio `test_run.py::test_nursery_start_keeps_nursery_open` (`sleep_then_crash`).
#[scope_runtime::test(paused)]
async fn g26_pending_start_that_fails_keeps_group_open_until_then() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|n1| async move {
        let l2 = l.clone();
        let n2 = TaskGroup::new();
        let r = n2
            .run(|n2h| async move {
                let l = l2.clone();
                n1.spawn(async move {
                    let r = n2h
                        .start(|_status: scope_runtime::TaskStatus<()>| async move {
                            sleep(secs(7)).await?;
                            Err(MyError("crash").into())
                        })
                        .await;
                    l.push(format!("start returned {}", start_result(&r)));
                    Ok(())
                });
                sleep(secs(1)).await?;
                l2.push("n2 block done");
                Ok(())
            })
            .await;
        l.push(format!("n2 returned {}", group_result(&r)));
        l.group_flags("n2", &n2);
        r?;
        Ok(())
    })
    .await;
    log.push(format!("n1 returned {}", group_result(&r)));
    // The caller of `start()` and the host of n2 are both woken at 7 s.
    assert_groups(
        &log.timed(),
        &[
            &["1s n2 block done"],
            &[
                "7s start returned Err(my error: crash)",
                "7s n2 returned Ok(Some(()))",
                "7s n2: called=false caught=false",
            ],
            &["7s n1 returned Ok(Some(()))"],
        ],
    );
}

/// G27: a group cancelled by its own `cancel()` (two children cancelled), then a child
/// spawned into it, then the enclosing scope cancelled and a failing child spawned:
/// the error comes out of the group and of the scope, which catches the cancellation
/// travelling beside it. From Trio `test_run.py::test_cancel_scope_exceptiongroup_filtering`.
#[scope_runtime::test(paused)]
async fn g27_group_and_outer_cancel_with_an_error_error_comes_out() {
    let log = Log::new();
    let outer = CancelScope::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = outer
        .run(async {
            let o = &outer;
            let r = group
                .run(|tg| async move {
                    tg.spawn(sleeper(l.clone(), "t1"));
                    tg.spawn(sleeper(l.clone(), "t2"));
                    tg.cancel();
                    CancelScope::new()
                        .with_shield(true)
                        .run(sleep(secs(1)))
                        .await?;
                    tg.spawn(sleeper(l.clone(), "t3"));
                    o.cancel();
                    tg.spawn(async { Err(MyError("crasher").into()) });
                    Ok(())
                })
                .await;
            log.push(format!("group returned {}", group_result(&r)));
            r
        })
        .await;
    log.push(format!(
        "outer returned {}",
        match &r {
            Ok(v) => format!("Ok({v:?})"),
            Err(e) => format!(
                "Err(failures=[{}])",
                e.failures()
                    .iter()
                    .map(|f| f.error().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    ));
    assert_groups(
        &log.timed(),
        &[
            &["0ns t1 cancelled", "0ns t2 cancelled"],
            &["1s t3 cancelled"],
            &["1s group returned Err(failures=[my error: crasher])"],
            &["1s outer returned Err(failures=[my error: crasher])"],
        ],
    );
    log.flags("outer", &outer);
    log.group_flags("group", &group);
}

/// G28: the block and a child both fail: the group returns both errors, the block's
/// first. From Trio `test_run.py::test_main_and_task_both_crash`.
#[scope_runtime::test(paused)]
async fn g28_block_and_child_both_fail() {
    let log = Log::new();
    let group = TaskGroup::new();
    let r = group
        .run(|tg| async move {
            tg.spawn(async { Err(MyError("child").into()) });
            Err::<(), _>(MyError("block").into())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.events(),
        ["group returned Err(failures=[my error: block, my error: child])"]
    );
    log.group_flags("group", &group);
}

/// G29: `start()` waits until the child calls `started(seconds)` after sleeping
/// `seconds`, returns that value, and the group then waits for the child (another
/// `seconds`): for 1 s and 2 s. From Trio `test_run.py::test_nursery_start`.
#[scope_runtime::test(paused)]
async fn g29_start_waits_for_started_then_group_waits_for_child() {
    let log = Log::new();
    for seconds in [1u64, 2] {
        let l = log.clone();
        let r = task_group(|tg| async move {
            let v = tg
                .start(|status| async move {
                    sleep(secs(seconds)).await?;
                    status.started(seconds);
                    sleep(secs(seconds)).await?;
                    Ok(())
                })
                .await?;
            l.push(format!("start returned {v}"));
            Ok(())
        })
        .await;
        log.push(format!("group returned {}", group_result(&r)));
    }
    assert_eq!(
        log.timed(),
        [
            "1s start returned 1",
            "2s group returned Ok(Some(()))",
            "4s start returned 2",
            "6s group returned Ok(Some(()))"
        ]
    );
}

/// The child of S25: enters `scope` with a `fail_after(1 s)` inside and sleeps.
async fn sleep_until_cancelled(
    log: Log,
    name: &'static str,
    scope: CancelScope,
) -> Result<(), BoxError> {
    let r = scope
        .run(scope_runtime::fail_after(secs(1), async {
            sleep(secs(1000)).await?;
            Ok::<_, BoxError>(())
        }))
        .await;
    log.push(format!(
        "{name}: scope returned {}",
        match &r {
            Ok(None) => "Ok(None)".to_string(),
            Ok(Some(())) => "Ok(Some(()))".to_string(),
            Err(e) if e.is::<scope_runtime::TimedOut>() => "TimedOut".to_string(),
            Err(e) => format!("Err({e})"),
        }
    ));
    log.flags(name, &scope);
    r.map(drop)
}

/// S25: a scope cancelled before it is entered (by a child, with a `fail_after(1 s)`
/// inside), or while the child sleeps in it (at 0.5 s): the scope absorbs, no timeout;
/// a shield set before entry applies on entry, and turning it off lets the outer cancel
/// in. From Trio `test_run.py::test_cancel_unbound`.
#[scope_runtime::test(paused)]
async fn s25_unbound_scope_cancel_and_shield_before_entry() {
    let log = Log::new();
    let scope = CancelScope::new();
    scope.cancel();
    let (l, s) = (log.clone(), scope.clone());
    task_group(|tg| async move {
        tg.spawn(sleep_until_cancelled(l, "cancelled before entry", s));
        Ok(())
    })
    .await
    .unwrap();

    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    task_group(|tg| async move {
        tg.spawn(sleep_until_cancelled(l, "cancelled after entry", s.clone()));
        sleep(ms(500)).await?;
        s.cancel();
        Ok(())
    })
    .await
    .unwrap();

    let scope = CancelScope::new();
    scope.set_shield(true);
    let outer = CancelScope::new();
    let r = outer
        .run(async {
            scope
                .run(async {
                    outer.cancel();
                    log.push(format!("shielded: checkpoint failed={}", cp_failed().await));
                    scope.set_shield(false);
                    let r = checkpoint().await;
                    log.push(format!("unshielded: checkpoint failed={}", r.is_err()));
                    r
                })
                .await
        })
        .await;
    log.push(format!("outer returned {r:?}"));
    log.flags("shield before entry", &scope);
    log.flags("outer", &outer);
    assert_eq!(
        log.timed(),
        [
            "0ns cancelled before entry: scope returned Ok(None)",
            "0ns cancelled before entry: called=true caught=true",
            "500ms cancelled after entry: scope returned Ok(None)",
            "500ms cancelled after entry: called=true caught=true",
            "500ms shielded: checkpoint failed=false",
            "500ms unshielded: checkpoint failed=true",
            "500ms outer returned Ok(None)",
            "500ms shield before entry: called=false caught=false",
            "500ms outer: called=true caught=true"
        ]
    );
}

/// D19: a never-entered scope whose deadline is moved to now and back before anything
/// reads `cancel_called()` is not cancelled (nothing observed the passed deadline);
/// entered, it runs its body with the new deadline. Variant of Trio
/// `test_run.py::test_cancel_unbound` (its last part).
#[scope_runtime::test(paused)]
async fn d19_unentered_deadline_moved_to_now_and_back_unobserved() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 + secs(1));
    scope.set_deadline(Some(t0));
    scope.set_deadline(Some(t0 + secs(1)));
    log.flags("moved to now and back", &scope);
    let r = scope
        .run(async {
            log.push(format!("entered: checkpoint failed={}", cp_failed().await));
            let r = sleep(secs(10)).await;
            log.push(format!("sleep failed={}", r.is_err()));
            r
        })
        .await;
    log.push(format!("scope returned {r:?}"));
    log.flags("after", &scope);
    assert_eq!(
        log.timed(),
        [
            "0ns moved to now and back: called=false caught=false",
            "0ns entered: checkpoint failed=false",
            "1s sleep failed=true",
            "1s scope returned Ok(None)",
            "1s after: called=true caught=true"
        ]
    );
}

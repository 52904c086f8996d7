//! New conformance cases taken from the anchors' own test suites (issue 10): AnyIO's
//! `tests/test_taskgroups.py` (twins on both AnyIO backends) and CPython 3.11's
//! `test_asyncio/test_taskgroups.py` and `test_timeouts.py`. Each test's doc comment
//! names the test it comes from; the twins are in `tests/oracle/cases/suite_libs.py`.
//! "Wait until every task is blocked" (`wait_all_tasks_blocked`) becomes a short sleep
//! on the paused clock, on both sides.

use std::rc::Rc;
use std::time::Instant;

#[allow(unused_imports)]
use crate::{Log, MyError, assert_groups, ms, panic_message, secs};
use scope_runtime::sync::Event;
use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, TaskGroup, TaskGroupError, TaskStatus, TimedOut,
    checkpoint, current_effective_deadline, fail_after, now, sleep, task_group,
};

/// A group's failures as `[e1, e2]`, nested groups in brackets, a `TimedOut` as
/// `TimedOut` (the twins print an `ExceptionGroup` the same way).
fn failures(e: &TaskGroupError) -> String {
    let parts: Vec<String> = e.failures().iter().map(|f| error_text(f.error())).collect();
    format!("[{}]", parts.join(", "))
}

fn error_text(e: &BoxError) -> String {
    if let Some(g) = e.downcast_ref::<TaskGroupError>() {
        if g.as_cancelled().is_some() {
            return "Cancelled".to_string();
        }
        return failures(g);
    }
    if e.downcast_ref::<TimedOut>().is_some() {
        return "TimedOut".to_string();
    }
    if e.as_cancelled().is_some() {
        return "Cancelled".to_string();
    }
    e.to_string()
}

/// What a group returned: `Ok(Some(..))` (the body's value), `Ok(None)` (absorbed), a
/// cancellation going on, or its failures.
fn group_result<T: std::fmt::Debug>(r: &Result<Option<T>, TaskGroupError>) -> String {
    match r {
        Ok(v) => format!("{v:?}"),
        Err(e) if e.as_cancelled().is_some() => "Err(Cancelled)".to_string(),
        Err(e) => format!("Err(failures={})", failures(e)),
    }
}

/// What `start()` returned.
fn start_result<V: std::fmt::Debug>(r: &Result<V, BoxError>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({})", error_text(e)),
    }
}

/// What a scope returned, a `Cancelled` without its details.
fn scope_result<T: std::fmt::Debug>(r: &Result<Option<T>, Cancelled>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(_) => "Err(Cancelled)".to_string(),
    }
}

/// "expired" when `d` leaves no time from now, "none" without a deadline, else the
/// time left (as in `found_by_oracle.rs`).
fn budget(d: Option<Instant>) -> String {
    match d {
        None => "none".to_string(),
        Some(d) if d <= now() => "expired".to_string(),
        Some(d) => format!("{:?} left", d - now()),
    }
}

// ---- AnyIO tests/test_taskgroups.py ------------------------------------------------

/// G30: AnyIO `tests/test_taskgroups.py::test_start_crash_after_started_call` — the
/// child fails right after `started(2)`: `start()` returns 2 and the error goes to the
/// group, which fails with it alone.
#[scope_runtime::test(paused)]
async fn g30_start_child_fails_after_started() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        let r = tg
            .start(|status: TaskStatus<u32>| async move {
                status.started(2);
                Err(MyError("foo").into())
            })
            .await;
        l.push(format!("start returned {}", start_result(&r)));
        r?;
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "0ns start returned Ok(2)",
            "0ns group returned Err(failures=[my error: foo])"
        ]
    );
}

/// G31: AnyIO `tests/test_taskgroups.py::test_cancel_exiting_task_group` — a group is
/// cancelled while a child waits at the end of its own inner group: the inner group's
/// child is cancelled too, and the code after the inner group never runs.
#[scope_runtime::test(paused)]
async fn g31_cancel_reaches_a_child_group_waiting_at_exit() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                let l3 = l2.clone();
                let r = task_group(|tg2| async move {
                    tg2.spawn(async move {
                        let r = sleep(secs(5)).await;
                        l3.push(format!("waiter: sleep cancelled={}", r.is_err()));
                        r?;
                        Ok(())
                    });
                    Ok(())
                })
                .await;
                l2.push(format!(
                    "subgroup: inner group returned {}",
                    group_result(&r)
                ));
                r?;
                l2.push("subgroup: after the inner group");
                Ok(())
            });
            sleep(secs(1)).await?;
            tg.cancel();
            l.push("body: cancelled the group");
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "1s body: cancelled the group",
            "1s waiter: sleep cancelled=true",
            "1s subgroup: inner group returned Err(Cancelled)",
            "1s group returned Some(())"
        ]
    );
    log.group_flags("group", &group);
}

/// G32: AnyIO `tests/test_taskgroups.py::test_start_cancelled` — `start()` in a group
/// already cancelled: the child runs up to its first checkpoint, which fails; `start()`
/// fails with the cancellation and the group absorbs it.
#[scope_runtime::test(paused)]
async fn g32_start_in_cancelled_group() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            tg.cancel();
            let l2 = l.clone();
            let r = tg
                .start(|_status: TaskStatus<()>| async move {
                    l2.push("child: started running");
                    let r = sleep(secs(2)).await;
                    l2.push(format!("child: sleep cancelled={}", r.is_err()));
                    r?;
                    l2.push("child: finished");
                    Ok(())
                })
                .await;
            l.push(format!("start returned {}", start_result(&r)));
            r?;
            l.push("body: after start");
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "0ns child: started running",
            "0ns child: sleep cancelled=true",
            "0ns start returned Err(Cancelled)",
            "0ns group returned None"
        ]
    );
    log.group_flags("group", &group);
}

/// G33: AnyIO `tests/test_taskgroups.py::test_start_not_cancelled_before_started_by_tg`
/// — a task outside group B calls `B.start(f)`, then B is cancelled: before `started`
/// the child runs under its caller (B's cancel does not reach it, its checkpoint
/// passes); once started it belongs to B and its next checkpoint fails; `start()`
/// returns the value.
#[scope_runtime::test(paused)]
async fn g33_start_child_not_cancelled_by_target_group_before_started() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        let l2 = l.clone();
        let inner: TaskGroup = tg
            .start(|status: TaskStatus<TaskGroup>| async move {
                let r = task_group(|b| async move {
                    status.started(b.clone());
                    sleep(secs(1000)).await?;
                    Ok(())
                })
                .await;
                l2.push(format!("group B returned {}", group_result(&r)));
                r?;
                Ok(())
            })
            .await?;
        let ev = Rc::new(Event::new());
        let (l3, b, e) = (l.clone(), inner.clone(), ev.clone());
        tg.spawn(async move {
            let l4 = l3.clone();
            let r = b
                .start(|status: TaskStatus<&'static str>| async move {
                    e.wait().await?;
                    let r = checkpoint().await;
                    l4.push(format!(
                        "child: checkpoint before started failed={}",
                        r.is_err()
                    ));
                    r?;
                    status.started("started");
                    let r = checkpoint().await;
                    l4.push(format!(
                        "child: checkpoint after started failed={}",
                        r.is_err()
                    ));
                    r?;
                    l4.push("child: not reached");
                    Ok(())
                })
                .await;
            l3.push(format!("outside task: start returned {}", start_result(&r)));
            r?;
            Ok(())
        });
        sleep(secs(1)).await?;
        inner.cancel();
        ev.set();
        l.push("body: cancelled group B, set the event");
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "1s body: cancelled group B, set the event",
            "1s child: checkpoint before started failed=false",
            "1s child: checkpoint after started failed=true",
            "1s outside task: start returned Ok(\"started\")",
            "1s group B returned None",
            "1s group returned Some(())"
        ]
    );
}

/// G34: AnyIO `tests/test_taskgroups.py::test_cancel_shielding_start` — the child of a
/// `start()` waits inside a shield when the scope around the group is cancelled: the
/// shielded wait completes, the first checkpoint after the shield fails.
#[scope_runtime::test(paused)]
async fn g34_shield_in_start_child_holds_off_outer_cancel() {
    let log = Log::new();
    let outer = CancelScope::new();
    let (l, o) = (log.clone(), outer.clone());
    let ev = Rc::new(Event::new());
    let out = outer
        .run(async move {
            let l1 = l.clone();
            let r = task_group(|tg| async move {
                let (tg2, l2, e) = (tg.clone(), l1.clone(), ev.clone());
                tg.spawn(async move {
                    let l3 = l2.clone();
                    let r = tg2
                        .start(|_status: TaskStatus<()>| async move {
                            let r = CancelScope::new()
                                .with_shield(true)
                                .run(async { e.wait().await })
                                .await;
                            l3.push(format!("child: shielded wait failed={}", r.is_err()));
                            r?;
                            let r = checkpoint().await;
                            l3.push(format!(
                                "child: checkpoint after shield failed={}",
                                r.is_err()
                            ));
                            r?;
                            Ok(())
                        })
                        .await;
                    l2.push(format!("helper: start returned {}", start_result(&r)));
                    r?;
                    Ok(())
                });
                sleep(secs(1)).await?;
                o.cancel();
                ev.set();
                l1.push("body: cancelled the outer scope, set the event");
                Ok(())
            })
            .await;
            l.push(format!("group returned {}", group_result(&r)));
            r?;
            l.push("after the group");
            Ok::<_, BoxError>(())
        })
        .await;
    log.push(format!(
        "outer returned {}",
        match &out {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("Err({})", error_text(e)),
        }
    ));
    assert_eq!(
        log.timed(),
        [
            "1s body: cancelled the outer scope, set the event",
            "1s child: shielded wait failed=false",
            "1s child: checkpoint after shield failed=true",
            "1s helper: start returned Err(Cancelled)",
            "1s group returned Err(Cancelled)",
            "1s outer returned None"
        ]
    );
    log.flags("outer", &outer);
}

/// G35: AnyIO `tests/test_taskgroups.py::test_start_cancel_after_error` — the body of an
/// inner group waits in `outer.start(f)` when a child of the inner group fails: the
/// inner group's cancel reaches `f` (it runs under the caller until `started`), `f`
/// never completes, and the error comes out nested.
#[scope_runtime::test(paused)]
async fn g35_start_child_cancelled_by_callers_group_error() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|outer_tg| async move {
        let l1 = l.clone();
        task_group(|inner_tg| async move {
            let l2 = l1.clone();
            inner_tg.spawn(async move {
                sleep(secs(1)).await?;
                l2.push("child: fails");
                Err(MyError("boom").into())
            });
            let l3 = l1.clone();
            let r = outer_tg
                .start(|status: TaskStatus<()>| async move {
                    let r = sleep(secs(2)).await;
                    l3.push(format!("start child: sleep cancelled={}", r.is_err()));
                    r?;
                    l3.push("start child: sleep completed");
                    status.started(());
                    Ok(())
                })
                .await;
            l1.push(format!("inner body: start returned {}", start_result(&r)));
            r?;
            Ok(())
        })
        .await?;
        l.push("outer body: after the inner group");
        Ok(())
    })
    .await;
    log.push(format!("outer group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "1s child: fails",
            "1s start child: sleep cancelled=true",
            "1s inner body: start returned Err(Cancelled)",
            "1s outer group returned Err(failures=[[my error: boom]])"
        ]
    );
}

/// G36: AnyIO `tests/test_taskgroups.py::test_cancel_child_task_when_host_is_shielded`
/// — the host cancels the scope around its group from inside a shield (with a 1 s
/// `fail_after`) and waits there for the child to report its cancellation: the child
/// is cancelled although its host is shielded.
#[scope_runtime::test(paused)]
async fn g36_cancel_reaches_child_while_host_is_shielded() {
    let log = Log::new();
    let parent = CancelScope::new();
    let (l, p) = (log.clone(), parent.clone());
    let out = parent
        .run(async move {
            let l1 = l.clone();
            let r = task_group(|tg| async move {
                let cancelled = Rc::new(Event::new());
                let (l2, c) = (l1.clone(), cancelled.clone());
                tg.spawn(async move {
                    let r = sleep(secs(1000)).await;
                    if r.is_err() {
                        l2.push("child: cancelled");
                        c.set();
                    }
                    r?;
                    Ok(())
                });
                sleep(secs(1)).await?;
                let l3 = l1.clone();
                let r = CancelScope::new()
                    .with_shield(true)
                    .run(fail_after(secs(1), async move {
                        p.cancel();
                        cancelled.wait().await?;
                        l3.push("host: saw the child's cancellation");
                        Ok::<_, BoxError>(())
                    }))
                    .await;
                l1.push(format!(
                    "host: shielded block returned {}",
                    match &r {
                        Ok(v) => format!("{v:?}"),
                        Err(e) => format!("Err({})", error_text(e)),
                    }
                ));
                r?;
                Ok(())
            })
            .await;
            l.push(format!("group returned {}", group_result(&r)));
            r?;
            Ok::<_, BoxError>(())
        })
        .await;
    log.push(format!(
        "parent returned {}",
        match &out {
            Ok(v) => format!("Ok({v:?})"),
            Err(e) => format!("Err({})", error_text(e)),
        }
    ));
    assert_eq!(
        log.timed(),
        [
            "1s child: cancelled",
            "1s host: saw the child's cancellation",
            "1s host: shielded block returned Some(())",
            "1s group returned Err(Cancelled)",
            "1s parent returned Ok(None)"
        ]
    );
    log.flags("parent", &parent);
}

/// S41: AnyIO `tests/test_taskgroups.py::test_cancelled_raises_beyond_origin_shielded` —
/// a shielded inner scope is cancelled, and the outer one too while the inner's
/// `Cancelled` is on its way out: the inner scope absorbs it (its shield hides the
/// outer cancel), the code between the scopes runs, the outer scope reports not caught.
#[scope_runtime::test(paused)]
async fn s41_shielded_inner_absorbs_with_outer_cancelled_behind_it() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new().with_shield(true);
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let l2 = l.clone();
            let i2 = i.clone();
            let r = i
                .run(async move {
                    i2.cancel();
                    let r = checkpoint().await;
                    o.cancel();
                    l2.push(format!("inner: checkpoint failed={}", r.is_err()));
                    r?;
                    l2.push("inner: not reached");
                    Ok::<_, Cancelled>(())
                })
                .await;
            l.push(format!(
                "between the scopes: inner returned {}",
                scope_result(&r)
            ));
            Ok::<_, Cancelled>(())
        })
        .await;
    log.push(format!("outer returned {}", scope_result(&out)));
    assert_eq!(
        log.timed(),
        [
            "0ns inner: checkpoint failed=true",
            "0ns between the scopes: inner returned Ok(None)",
            "0ns outer returned Ok(Some(()))"
        ]
    );
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// S42: AnyIO `tests/test_taskgroups.py::test_shielding_mutate` — a `start()` child turns
/// the shield of its scope on after 100 ms, reports started, and the group is then
/// cancelled: its next sleep completes; turning the shield off makes the following
/// sleep fail at once; the scope does not absorb the group's cancel.
#[scope_runtime::test(paused)]
async fn s42_shield_turned_on_then_off_in_started_child() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.start(|status: TaskStatus<()>| async move {
                let scope = CancelScope::new();
                let (s, l3) = (scope.clone(), l2.clone());
                let r = scope
                    .run(async move {
                        sleep(ms(100)).await?;
                        s.set_shield(true);
                        status.started(());
                        sleep(ms(100)).await?;
                        l3.push("child: shielded sleep completed");
                        s.set_shield(false);
                        let r = sleep(secs(1)).await;
                        l3.push(format!("child: unshielded sleep failed={}", r.is_err()));
                        r?;
                        l3.push("child: not reached");
                        Ok::<_, Cancelled>(())
                    })
                    .await;
                l2.push(format!("child: scope returned {}", scope_result(&r)));
                l2.flags("child scope", &scope);
                r?;
                Ok(())
            })
            .await?;
            tg.cancel();
            l.push("body: started, cancelled the group");
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "100ms body: started, cancelled the group",
            "200ms child: shielded sleep completed",
            "200ms child: unshielded sleep failed=true",
            "200ms child: scope returned Err(Cancelled)",
            "200ms child scope: called=false caught=false",
            "200ms group returned Some(())"
        ]
    );
    log.group_flags("group", &group);
}

/// S43: AnyIO `tests/test_taskgroups.py::test_cancel_from_shielded_scope` — the body
/// cancels its group from inside a shielded scope: inside, no deadline and a checkpoint
/// passes; after the shield the effective deadline says "expired" and every sleep fails.
#[scope_runtime::test(paused)]
async fn s43_group_cancelled_from_inside_a_shield() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            CancelScope::new()
                .with_shield(true)
                .run(async move {
                    tg.cancel();
                    l2.push(format!(
                        "shielded: {}",
                        budget(current_effective_deadline())
                    ));
                    let r = checkpoint().await;
                    l2.push(format!("shielded: checkpoint failed={}", r.is_err()));
                    Ok::<_, Cancelled>(())
                })
                .await?;
            l.push(format!(
                "after the shield: {}",
                budget(current_effective_deadline())
            ));
            let r = sleep(ms(10)).await;
            l.push(format!("after the shield: 1st sleep failed={}", r.is_err()));
            let r = sleep(ms(10)).await;
            l.push(format!("after the shield: 2nd sleep failed={}", r.is_err()));
            r?;
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "0ns shielded: none",
            "0ns shielded: checkpoint failed=false",
            "0ns after the shield: expired",
            "0ns after the shield: 1st sleep failed=true",
            "0ns after the shield: 2nd sleep failed=true",
            "0ns group returned None"
        ]
    );
    log.group_flags("group", &group);
}

/// D30: AnyIO `tests/test_taskgroups.py::test_nested_shield` — inside a scope that a
/// sibling cancels, a shielded `fail_after(200 ms)` still times out; the `TimedOut` is
/// not a cancellation, so it passes the cancelled scope and the group fails with it.
#[scope_runtime::test(paused)]
async fn d30_shielded_fail_after_error_passes_cancelled_scope() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, sc) = (log.clone(), scope.clone());
    let r = task_group(|tg| async move {
        let s2 = sc.clone();
        let l2 = l.clone();
        let out = sc
            .run(async move {
                CancelScope::new()
                    .with_shield(true)
                    .run(async move {
                        tg.spawn(async move {
                            sleep(ms(100)).await?;
                            s2.cancel();
                            l2.push("killer: cancelled the scope");
                            Ok(())
                        });
                        fail_after(ms(200), async {
                            sleep(secs(2)).await?;
                            Ok::<_, BoxError>(())
                        })
                        .await
                    })
                    .await
            })
            .await;
        l.push(format!(
            "scope returned {}",
            match &out {
                Ok(v) => format!("{v:?}"),
                Err(e) => format!("Err({})", error_text(e)),
            }
        ));
        out?;
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "100ms killer: cancelled the scope",
            "200ms scope returned Err(TimedOut)",
            "200ms group returned Err(failures=[TimedOut])"
        ]
    );
    log.flags("scope", &scope);
}

/// D31: AnyIO `tests/test_taskgroups.py::test_timeout_error_with_multiple_cancellations`
/// — `fail_after(100 ms)` around a group whose body and child both sleep 2 s: the
/// deadline cancels both, and what comes out is the `TimedOut` alone.
#[scope_runtime::test(paused)]
async fn d31_fail_after_around_group_gives_timed_out() {
    let log = Log::new();
    let l = log.clone();
    let r: Result<(), BoxError> = fail_after(ms(100), async move {
        let l2 = l.clone();
        task_group(|tg| async move {
            tg.spawn(async move {
                let r = sleep(secs(2)).await;
                l2.push(format!("child: sleep failed={}", r.is_err()));
                r?;
                Ok(())
            });
            sleep(secs(2)).await?;
            Ok(())
        })
        .await?;
        Ok(())
    })
    .await;
    log.push(format!(
        "fail_after returned {}",
        match &r {
            Ok(()) => "Ok(())".to_string(),
            Err(e) => format!("Err({})", error_text(e)),
        }
    ));
    assert_eq!(
        log.timed(),
        [
            "100ms child: sleep failed=true",
            "100ms fail_after returned Err(TimedOut)"
        ]
    );
}

/// D32: AnyIO `tests/test_taskgroups.py::test_fail_after_after_cancellation` — after a
/// group cancelled and absorbed its own cancel, a new `fail_after(100 ms)` in the same
/// task times out normally.
#[scope_runtime::test(paused)]
async fn d32_fail_after_works_after_an_absorbed_cancel() {
    let log = Log::new();
    let ev = Rc::new(Event::new());
    let r = task_group(|tg| async move {
        tg.cancel();
        ev.wait().await?;
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    let l = log.clone();
    let r: Result<(), BoxError> = fail_after(ms(100), async move {
        sleep(ms(500)).await?;
        l.push("block complete");
        Ok(())
    })
    .await;
    log.push(format!(
        "fail_after returned {}",
        match &r {
            Ok(()) => "Ok(())".to_string(),
            Err(e) => format!("Err({})", error_text(e)),
        }
    ));
    assert_eq!(
        log.timed(),
        [
            "0ns group returned None",
            "100ms fail_after returned Err(TimedOut)"
        ]
    );
}

/// D33: AnyIO `tests/test_taskgroups.py::test_fail_after_cancelled_before_deadline` — a
/// `fail_after` scope cancelled explicitly before its deadline: AnyIO raises no
/// `TimeoutError` (its deadline has not passed); here, as in Trio, the absorbed
/// cancellation becomes `TimedOut` (reason: cancelled explicitly).
#[scope_runtime::test(paused)]
async fn d33_fail_after_cancelled_explicitly_before_deadline() {
    let log = Log::new();
    let scope = CancelScope::new().with_timeout(secs(1));
    let s = scope.clone();
    let r: Result<(), BoxError> = scope
        .run_or_timeout(async move {
            s.cancel();
            checkpoint().await?;
            Ok(())
        })
        .await;
    log.push(format!(
        "fail_after returned {}",
        match &r {
            Ok(()) => "Ok(())".to_string(),
            Err(e) => format!("Err({})", error_text(e)),
        }
    ));
    assert_eq!(log.timed(), ["0ns fail_after returned Err(TimedOut)"]);
    log.flags("scope", &scope);
}

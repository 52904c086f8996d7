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
    BoxError, CancelError, CancelScope, Cancelled, Outcome, TaskGroup, TaskGroupError, TaskStatus,
    TimedOut, checkpoint, current_effective_deadline, current_task, fail_after, now, sleep, spawn,
    task_group,
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

/// How a task ended (its error in the words of [`error_text`]).
fn outcome<T: std::fmt::Debug>(o: &Outcome<T, BoxError>) -> String {
    match o {
        Outcome::Ok(v) => format!("Ok({v:?})"),
        Outcome::Err(e) => format!("Err({})", error_text(e)),
        Outcome::Cancelled(_) => "Cancelled".to_string(),
        Outcome::Panicked(p) => format!("Panicked({})", panic_message(&**p)),
    }
}

/// A `Result<(), BoxError>` in the words of [`error_text`].
fn result(r: &Result<(), BoxError>) -> String {
    match r {
        Ok(()) => "Ok(())".to_string(),
        Err(e) => format!("Err({})", error_text(e)),
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

// ---- CPython 3.11 test_asyncio/test_timeouts.py ---------------------------------------

/// D34: CPython `test_timeouts.py::TimeoutTests::test_nested_timeouts` — two nested
/// timeouts with the same deadline: the inner one lets the cancellation pass (it is not
/// the outermost), only the outer one reports the timeout; both expired.
#[scope_runtime::test(paused)]
async fn d34_nested_timeouts_same_deadline_outer_reports() {
    let log = Log::new();
    let deadline = now() + ms(10);
    let outer = CancelScope::new().with_deadline(deadline);
    let inner = CancelScope::new().with_deadline(deadline);
    let (l, i) = (log.clone(), inner.clone());
    let r: Result<(), BoxError> = outer
        .run_or_timeout(async move {
            let r: Result<(), BoxError> = i
                .run_or_timeout(async {
                    sleep(secs(10)).await?;
                    Ok(())
                })
                .await;
            l.push(format!("inner returned {}", result(&r)));
            r
        })
        .await;
    log.push(format!("outer returned {}", result(&r)));
    log.push(format!(
        "inner expired={} outer expired={}",
        inner.cancel_called(),
        outer.cancel_called()
    ));
    assert_eq!(
        log.timed(),
        [
            "10ms inner returned Err(Cancelled)",
            "10ms outer returned Err(TimedOut)",
            "10ms inner expired=true outer expired=true"
        ]
    );
}

/// D35: CPython `test_timeouts.py::TimeoutTests::test_foreign_exception_on_timeout` —
/// the body's cleanup fails after the timeout cancelled it: the error comes out, not
/// the timeout.
#[scope_runtime::test(paused)]
async fn d35_error_in_cleanup_after_timeout_wins() {
    let log = Log::new();
    let l = log.clone();
    let r: Result<(), BoxError> = fail_after(ms(10), async move {
        let r = sleep(secs(1)).await;
        l.push(format!("crash: sleep failed={}", r.is_err()));
        Err(MyError("crash").into())
    })
    .await;
    log.push(format!("timeout returned {}", result(&r)));
    assert_eq!(
        log.timed(),
        [
            "10ms crash: sleep failed=true",
            "10ms timeout returned Err(my error: crash)"
        ]
    );
}

/// D36: CPython `test_timeouts.py::TimeoutTests::test_foreign_cancel_doesnt_timeout_if_not_expired`
/// — a task cancels itself inside a 10 s timeout: the cancellation comes out (no
/// timeout), the timeout has not expired, the task ends cancelled.
#[scope_runtime::test(paused)]
async fn d36_task_cancel_inside_timeout_is_not_a_timeout() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let scope = CancelScope::new().with_timeout(secs(10));
        let r: Result<(), BoxError> = scope
            .run_or_timeout(async {
                current_task().cancel();
                sleep(secs(10)).await?;
                Ok(())
            })
            .await;
        l.push(format!("timeout returned {}", result(&r)));
        l.push(format!("timeout expired={}", scope.cancel_called()));
        r
    });
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "0ns timeout returned Err(Cancelled)",
            "0ns timeout expired=false",
            "0ns task ended Cancelled"
        ]
    );
}

/// D37: CPython `test_timeouts.py::TimeoutTests::test_reschedule` — another task moves a
/// running timeout's deadline (10 s → 30 s) and then removes it (`reschedule(None)`,
/// here `set_deadline(None)`): at 35 s the task still sleeps; cancelled, it ends
/// cancelled and the timeout never expired.
#[scope_runtime::test(paused)]
async fn d37_deadline_moved_then_removed_from_another_task() {
    let log = Log::new();
    let t0 = now();
    let scope = CancelScope::new().with_deadline(t0 + secs(10));
    let when = |s: &CancelScope| match s.deadline() {
        Some(d) => format!("{:?}", d - t0),
        None => "None".to_string(),
    };
    let (l, s) = (log.clone(), scope.clone());
    let h = spawn(async move {
        let r: Result<(), BoxError> = s
            .run_or_timeout(async {
                sleep(secs(50)).await?;
                Ok(())
            })
            .await;
        l.push(format!("task: timeout returned {}", result(&r)));
        r
    });
    sleep(secs(1)).await.unwrap();
    log.push(format!("when={}", when(&scope)));
    scope.set_deadline(Some(t0 + secs(30)));
    log.push(format!("when={}", when(&scope)));
    scope.set_deadline(None);
    log.push(format!("when={}", when(&scope)));
    sleep(secs(34)).await.unwrap();
    log.push(format!("task running={}", h.is_alive()));
    h.cancel();
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    log.push(format!("expired={}", scope.cancel_called()));
    assert_eq!(
        log.timed(),
        [
            "1s when=10s",
            "1s when=30s",
            "1s when=None",
            "35s task running=true",
            "35s task: timeout returned Err(Cancelled)",
            "35s task ended Cancelled",
            "35s expired=false"
        ]
    );
}

/// D38: CPython `test_timeouts.py::TimeoutTests::test_nested_timeout_in_finally` — a new
/// 10 ms timeout in the cleanup of a body whose own 10 ms timeout fired. asyncio's
/// cancel is delivered once, so the cleanup's sleep runs and its own timeout fires
/// 10 ms later; here the outer cancel is level-triggered (R2): the cleanup's sleep fails
/// at once and the cancellation passes the inner timeout.
#[scope_runtime::test(paused)]
async fn d38_timeout_in_cleanup_after_timeout() {
    let log = Log::new();
    let l = log.clone();
    let r: Result<(), BoxError> = fail_after(ms(10), async move {
        let r = sleep(secs(1)).await;
        l.push(format!("body: sleep failed={}", r.is_err()));
        let inner: Result<(), BoxError> = fail_after(ms(10), async {
            sleep(secs(10)).await?;
            Ok(())
        })
        .await;
        l.push(format!(
            "cleanup: inner timeout returned {}",
            result(&inner)
        ));
        r?;
        Ok(())
    })
    .await;
    log.push(format!("outer timeout returned {}", result(&r)));
    assert_eq!(
        log.timed(),
        [
            "10ms body: sleep failed=true",
            "10ms cleanup: inner timeout returned Err(Cancelled)",
            "10ms outer timeout returned Err(TimedOut)"
        ]
    );
}

/// C09: CPython `test_timeouts.py::TimeoutTests::test_timeout_after_cancellation` — a
/// task cancels itself, swallows the `Cancelled`, then runs `timeout(0)` around a sleep
/// in its cleanup. asyncio raises `TimeoutError` (the cancel was delivered once and the
/// timeout compares cancel counts); here the task's cancel request stays in force (R2,
/// R9: `cancelling() == 1` until `uncancel()`), so the sleep fails with it and it passes
/// the timeout.
#[scope_runtime::test(paused)]
async fn c09_timeout_after_swallowed_task_cancel() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        current_task().cancel();
        let r = sleep(secs(1)).await;
        l.push(format!(
            "work: sleep failed={}, swallowed; cancelling={}",
            r.is_err(),
            current_task().cancelling()
        ));
        let r: Result<(), BoxError> = fail_after(secs(0), async {
            sleep(secs(1)).await?;
            Ok(())
        })
        .await;
        l.push(format!("cleanup: timeout(0) returned {}", result(&r)));
        Ok::<_, BoxError>(())
    });
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "0ns work: sleep failed=true, swallowed; cancelling=1",
            "0ns cleanup: timeout(0) returned Err(Cancelled)",
            "0ns task ended Ok(())"
        ]
    );
}

/// C10: CPython `test_timeouts.py::TimeoutTests::test_cancel_in_timeout_after_cancellation`
/// — after a swallowed self-cancel, the task cancels itself again inside a 1 s timeout:
/// the sleep fails, the cancellation comes out of the timeout (no timeout), the counts
/// go 1 → 2.
#[scope_runtime::test(paused)]
async fn c10_cancel_inside_timeout_after_swallowed_cancel() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        current_task().cancel();
        let r = sleep(secs(1)).await;
        l.push(format!(
            "work: sleep failed={}, swallowed; cancelling={}",
            r.is_err(),
            current_task().cancelling()
        ));
        let l2 = l.clone();
        let r: Result<(), BoxError> = fail_after(secs(1), async move {
            current_task().cancel();
            l2.push(format!(
                "cleanup: cancelled again; cancelling={}",
                current_task().cancelling()
            ));
            sleep(secs(2)).await?;
            Ok(())
        })
        .await;
        l.push(format!(
            "cleanup: timeout returned {}; cancelling={}",
            result(&r),
            current_task().cancelling()
        ));
        r
    });
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "0ns work: sleep failed=true, swallowed; cancelling=1",
            "0ns cleanup: cancelled again; cancelling=2",
            "0ns cleanup: timeout returned Err(Cancelled); cancelling=2",
            "0ns task ended Cancelled"
        ]
    );
}

// ---- CPython 3.11 test_asyncio/test_taskgroups.py -------------------------------------

/// C11: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_07` — the task is
/// cancelled while its group's body sleeps: the body and both children are cancelled,
/// the cancellation comes out of the group, the task ends cancelled with
/// `cancelling() == 1`.
#[scope_runtime::test(paused)]
async fn c11_task_cancel_while_group_body_sleeps() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let l1 = l.clone();
        let r = task_group(|tg| async move {
            for name in ["child 1", "child 2"] {
                let l2 = l1.clone();
                tg.spawn(async move {
                    let r = sleep(secs(5)).await;
                    if r.is_err() {
                        l2.push(format!("{name}: cancelled"));
                    }
                    r?;
                    Ok(())
                });
            }
            let r = sleep(secs(10)).await;
            if r.is_err() {
                l1.push("body: cancelled");
            }
            r?;
            Ok(())
        })
        .await;
        l.push(format!(
            "group returned {}; cancelling={}",
            group_result(&r),
            current_task().cancelling()
        ));
        r?;
        Ok::<_, BoxError>(())
    });
    sleep(ms(100)).await.unwrap();
    h.cancel();
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "100ms body: cancelled",
            "100ms child 1: cancelled",
            "100ms child 2: cancelled",
            "100ms group returned Err(Cancelled); cancelling=1",
            "100ms task ended Cancelled"
        ]
    );
}

/// C12: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_08` — the task is
/// cancelled while its group runs; both children fail in their cleanup: the group
/// returns the failures (errors win over the cancellation) and the task ends with them,
/// not cancelled. (The two failures come at the same instant, in an order neither
/// runtime fixes: each is its own event, and the end is recorded as a count.)
#[scope_runtime::test(paused)]
async fn c12_task_cancel_children_fail_in_cleanup() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let r = task_group(|tg| async move {
            for name in ["a", "b"] {
                tg.spawn(async move {
                    let _ = sleep(secs(10)).await;
                    Err(MyError(name).into())
                });
            }
            sleep(secs(10)).await?;
            Ok(())
        })
        .await;
        match &r {
            Err(e) if e.as_cancelled().is_none() => {
                for f in e.failures() {
                    l.push(format!("group failure: {}", error_text(f.error())));
                }
            }
            other => l.push(format!("group returned {}", group_result(other))),
        }
        r?;
        Ok::<_, BoxError>(())
    });
    sleep(ms(100)).await.unwrap();
    h.cancel();
    let o = h.await.unwrap();
    let failed = match &o {
        Outcome::Err(e) => e
            .downcast_ref::<TaskGroupError>()
            .map(|g| g.failures().len()),
        _ => None,
    };
    match failed {
        Some(n) => log.push(format!("task ended Err({n} failures)")),
        None => log.push(format!("task ended {}", outcome(&o))),
    }
    assert_eq!(
        log.timed(),
        [
            "100ms group failure: my error: a",
            "100ms group failure: my error: b",
            "100ms task ended Err(2 failures)"
        ]
    );
}

/// C13: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_18` — the task is
/// cancelled while its group's body sleeps, and the body turns the cancellation into an
/// error: the group fails with that error, the task ends with it.
#[scope_runtime::test(paused)]
async fn c13_body_turns_task_cancel_into_error() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let l1 = l.clone();
        let r = task_group(|_tg| async move {
            if sleep(secs(10)).await.is_err() {
                l1.push("body: cancelled, fails instead");
                return Err(MyError("body").into());
            }
            Ok(())
        })
        .await;
        l.push(format!("group returned {}", group_result(&r)));
        r?;
        Ok::<_, BoxError>(())
    });
    sleep(ms(100)).await.unwrap();
    h.cancel();
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "100ms body: cancelled, fails instead",
            "100ms group returned Err(failures=[my error: body])",
            "100ms task ended Err([my error: body])"
        ]
    );
}

/// C14: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_15` — the task is
/// cancelled at 100 ms while the group's body sleeps; the body's cleanup sleeps 500 ms
/// and a child would fail at 300 ms. asyncio delivers the cancel once, to the body: the
/// cleanup sleeps, the child fails at 300 ms during it, the group raises that error. Here the
/// task's cancel stays in force (R2) and reaches the children: the cleanup's sleep and
/// the child's fail at once, and the task ends cancelled at 100 ms.
#[scope_runtime::test(paused)]
async fn c14_body_cleanup_sleep_after_task_cancel() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let l1 = l.clone();
        let r = task_group(|tg| async move {
            let l2 = l1.clone();
            tg.spawn(async move {
                let r = sleep(ms(300)).await;
                l2.push(format!("crash_soon: sleep failed={}", r.is_err()));
                r?;
                Err(MyError("crash").into())
            });
            if let Err(c) = sleep(secs(10)).await {
                let r = sleep(ms(500)).await;
                l1.push(format!(
                    "body: cancelled; cleanup sleep failed={}",
                    r.is_err()
                ));
                return Err(c.into());
            }
            Ok(())
        })
        .await;
        l.push(format!("group returned {}", group_result(&r)));
        r?;
        Ok::<_, BoxError>(())
    });
    sleep(ms(100)).await.unwrap();
    h.cancel();
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "100ms body: cancelled; cleanup sleep failed=true",
            "100ms crash_soon: sleep failed=true",
            "100ms group returned Err(Cancelled)",
            "100ms task ended Cancelled"
        ]
    );
}

/// G37: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_13` — a child of the
/// outer group fails at 100 ms while the body waits in an inner group: the inner group
/// is cancelled (its child too), and the outer group fails with the one error — the
/// inner group's cancellation is not a failure.
#[scope_runtime::test(paused)]
async fn g37_outer_child_error_cancels_inner_group() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|g1| async move {
        g1.spawn(async {
            sleep(ms(100)).await?;
            Err(MyError("0.1").into())
        });
        let l2 = l.clone();
        let r = task_group(|g2| async move {
            g2.spawn(async move {
                let r = sleep(secs(10)).await;
                l2.push(format!("inner child: sleep failed={}", r.is_err()));
                r?;
                Err(MyError("10").into())
            });
            Ok(())
        })
        .await;
        l.push(format!("inner group returned {}", group_result(&r)));
        r?;
        Ok(())
    })
    .await;
    log.push(format!("outer group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "100ms inner child: sleep failed=true",
            "100ms inner group returned Err(Cancelled)",
            "100ms outer group returned Err(failures=[my error: 0.1])"
        ]
    );
}

/// G38: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_19` — a child fails
/// at 100 ms, and the body, cancelled by it, fails in its cleanup: the group returns
/// both errors, the child's first.
#[scope_runtime::test(paused)]
async fn g38_child_error_then_body_cleanup_error() {
    let log = Log::new();
    let r = task_group(|tg| async move {
        tg.spawn(async {
            sleep(ms(100)).await?;
            Err(MyError("crash_soon").into())
        });
        let _ = sleep(secs(10)).await;
        Err::<(), _>(MyError("nested").into())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        ["100ms group returned Err(failures=[my error: crash_soon, my error: nested])"]
    );
}

// ---- more from AnyIO tests/test_taskgroups.py -----------------------------------------

/// S44: AnyIO `tests/test_taskgroups.py::test_triple_nested_shield_checkpoint_in_outer` —
/// scopes 1 ⊃ 2 ⊃ shield; both 1 and 2 are cancelled from inside the shield: the
/// shielded checkpoint passes, the `Cancelled` at the next checkpoint (in scope 1) is
/// absorbed by scope 1; the code after it never runs.
#[scope_runtime::test(paused)]
async fn s44_two_scopes_cancelled_from_inside_a_shield() {
    let log = Log::new();
    let s1 = CancelScope::new();
    let s2 = CancelScope::new();
    let (l, a, b) = (log.clone(), s1.clone(), s2.clone());
    let b2 = b.clone();
    let out = s1
        .run(async move {
            let l2 = l.clone();
            let r = b
                .run(async move {
                    CancelScope::new()
                        .with_shield(true)
                        .run(async {
                            a.cancel();
                            b2.cancel();
                            let r = checkpoint().await;
                            l2.push(format!("shielded: checkpoint failed={}", r.is_err()));
                            r
                        })
                        .await?;
                    l2.push("scope 2: after the shield");
                    Ok::<_, Cancelled>(())
                })
                .await;
            l.push(format!("scope 2 returned {}", scope_result(&r)));
            let r = checkpoint().await;
            l.push(format!("scope 1: checkpoint failed={}", r.is_err()));
            r?;
            l.push("scope 1: got past the checkpoint");
            Ok::<_, Cancelled>(())
        })
        .await;
    log.push(format!("scope 1 returned {}", scope_result(&out)));
    assert_eq!(
        log.timed(),
        [
            "0ns shielded: checkpoint failed=false",
            "0ns scope 2: after the shield",
            "0ns scope 2 returned Ok(Some(()))",
            "0ns scope 1: checkpoint failed=true",
            "0ns scope 1 returned Ok(None)"
        ]
    );
    log.flags("scope 1", &s1);
    log.flags("scope 2", &s2);
}

/// S45: AnyIO `tests/test_taskgroups.py::test_triple_nested_shield_checkpoint_in_middle`
/// — scopes 1 ⊃ 2 ⊃ shield; only scope 1 is cancelled, from inside the shield: the
/// checkpoint in scope 2 (after the shield) fails, scope 2 passes the `Cancelled` on,
/// scope 1 absorbs it.
#[scope_runtime::test(paused)]
async fn s45_outer_scope_cancelled_from_inside_a_shield() {
    let log = Log::new();
    let s1 = CancelScope::new();
    let s2 = CancelScope::new();
    let (l, a, b) = (log.clone(), s1.clone(), s2.clone());
    let out = s1
        .run(async move {
            let l2 = l.clone();
            let r = b
                .run(async move {
                    CancelScope::new()
                        .with_shield(true)
                        .run(async {
                            a.cancel();
                            let r = checkpoint().await;
                            l2.push(format!("shielded: checkpoint failed={}", r.is_err()));
                            r
                        })
                        .await?;
                    let r = checkpoint().await;
                    l2.push(format!("scope 2: checkpoint failed={}", r.is_err()));
                    r?;
                    l2.push("scope 2: got past the checkpoint");
                    Ok::<_, Cancelled>(())
                })
                .await;
            l.push(format!("scope 2 returned {}", scope_result(&r)));
            r?;
            Ok::<_, Cancelled>(())
        })
        .await;
    log.push(format!("scope 1 returned {}", scope_result(&out)));
    assert_eq!(
        log.timed(),
        [
            "0ns shielded: checkpoint failed=false",
            "0ns scope 2: checkpoint failed=true",
            "0ns scope 2 returned Err(Cancelled)",
            "0ns scope 1 returned Ok(None)"
        ]
    );
    log.flags("scope 1", &s1);
    log.flags("scope 2", &s2);
}

/// S46: AnyIO `tests/test_taskgroups.py::test_escaping_cancelled_error_from_cancelled_task`
/// — inside a scope, a `move_on_after(100 ms)` expires around a 1 s sleep, then the
/// scope is cancelled with no checkpoint after it: nothing escapes, the outer scope
/// reports called but not caught.
#[scope_runtime::test(paused)]
async fn s46_cancel_after_expired_inner_timeout_escapes_nothing() {
    let log = Log::new();
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let out = scope
        .run(async move {
            let inner = CancelScope::new().with_timeout(ms(100));
            let r = inner.run(sleep(secs(1))).await;
            l.push(format!("move_on_after returned {}", scope_result(&r)));
            l.flags("move_on_after", &inner);
            s.cancel();
            Ok::<_, Cancelled>(())
        })
        .await;
    log.push(format!("scope returned {}", scope_result(&out)));
    assert_eq!(
        log.timed(),
        [
            "100ms move_on_after returned Ok(None)",
            "100ms move_on_after: called=true caught=true",
            "100ms scope returned Ok(Some(()))"
        ]
    );
    log.flags("scope", &scope);
}

/// G39: AnyIO `tests/test_taskgroups.py::test_empty_taskgroup_contains_yield_point` —
/// leaving an inner group with no children still lets another ready task run: a task
/// spawned into the outer group from inside two empty inner groups has run by the time
/// the body checks.
#[scope_runtime::test(paused)]
async fn g39_leaving_an_empty_group_yields() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|outer| async move {
        let ran = Rc::new(std::cell::Cell::new(false));
        for _ in 0..2 {
            let (o, r2) = (outer.clone(), ran.clone());
            task_group(|_inner| async move {
                o.spawn(async move {
                    r2.set(true);
                    Ok(())
                });
                Ok(())
            })
            .await?;
        }
        l.push(format!("outer task ran={}", ran.get()));
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        ["0ns outer task ran=true", "0ns group returned Some(())"]
    );
}

/// G40: AnyIO `tests/test_taskgroups.py::test_cancelled_parent` — the group is cancelled
/// at once; a child spawns another child into it after a moment: that child's own
/// (uncancelled) scope does not absorb the group's cancel, so the error after it is
/// never raised; the group absorbs, no failure.
#[scope_runtime::test(paused)]
async fn g40_child_spawned_into_cancelled_group_scope_does_not_absorb() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let (tg2, l2) = (tg.clone(), l.clone());
            tg.spawn(async move {
                let r = CancelScope::new()
                    .with_shield(true)
                    .run(sleep(ms(100)))
                    .await;
                l2.push(format!(
                    "parent: shielded wait returned {}",
                    scope_result(&r)
                ));
                let l3 = l2.clone();
                tg2.spawn(async move {
                    let r = CancelScope::new().run(sleep(secs(1))).await;
                    l3.push(format!("child: scope returned {}", scope_result(&r)));
                    r?;
                    l3.push("child: fails");
                    Err(MyError("foo").into())
                });
                Ok(())
            });
            tg.cancel();
            Ok(())
        })
        .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "100ms parent: shielded wait returned Ok(Some(()))",
            "100ms child: scope returned Err(Cancelled)",
            "100ms group returned Some(())"
        ]
    );
    log.group_flags("group", &group);
}

// ---- more from CPython 3.11 test_asyncio/test_taskgroups.py ----------------------------

/// G41: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_03` — one child is
/// cancelled through its handle at 150 ms; the body spawns another child afterwards: the
/// group goes on, the new child completes, the group ends normally.
#[scope_runtime::test(paused)]
async fn g41_cancel_one_child_then_spawn_another() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|g| async move {
        let l1 = l.clone();
        let t1 = g.spawn(async move {
            let r = sleep(secs(1)).await;
            l1.push(format!("foo1: sleep failed={}", r.is_err()));
            r?;
            Ok(())
        });
        sleep(ms(150)).await?;
        t1.cancel();
        let l2 = l.clone();
        g.spawn(async move {
            sleep(ms(200)).await?;
            l2.push("foo2: returns 11");
            Ok(())
        });
        l.push("body: done");
        Ok(())
    })
    .await;
    log.push(format!("group returned {}", group_result(&r)));
    assert_eq!(
        log.timed(),
        [
            "150ms body: done",
            "150ms foo1: sleep failed=true",
            "350ms foo2: returns 11",
            "350ms group returned Some(())"
        ]
    );
}

/// C15: CPython `test_taskgroups.py::TestTaskGroup::test_taskgroup_11` — the task is
/// cancelled while the body waits in an inner group whose children fail in their
/// cleanup: the inner group's errors come out nested in the outer group's, and the task
/// ends with them, not cancelled.
#[scope_runtime::test(paused)]
async fn c15_task_cancel_nested_groups_children_fail_in_cleanup() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let r = task_group(|_g1| async move {
            task_group(|g2| async move {
                g2.spawn(async {
                    let _ = sleep(secs(10)).await;
                    Err(MyError("cleanup").into())
                });
                sleep(secs(10)).await?;
                Ok(())
            })
            .await?;
            Ok(())
        })
        .await;
        l.push(format!("outer group returned {}", group_result(&r)));
        r?;
        Ok::<_, BoxError>(())
    });
    sleep(ms(100)).await.unwrap();
    h.cancel();
    let o = h.await.unwrap();
    log.push(format!("task ended {}", outcome(&o)));
    assert_eq!(
        log.timed(),
        [
            "100ms outer group returned Err(failures=[[my error: cleanup]])",
            "100ms task ended Err([[my error: cleanup]])"
        ]
    );
}

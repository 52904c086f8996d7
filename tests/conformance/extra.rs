//! X: cases the catalog misses, found while building the suite.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use scope_runtime::sync::Event;
use scope_runtime::{
    BoxError, CancelError, CancelReason, CancelScope, Cancelled, SpawnError, TaskGroup,
    check_cancelled, checkpoint, current_effective_deadline, current_task, now, sleep, spawn,
    task_group, yield_now,
};

use crate::{Log, MyError, assert_groups, ms, secs};

/// A scope's or group's result for the log: `Ok(..)` with its value, or `Err(..)`.
fn result_text<T: std::fmt::Debug, E>(r: &Result<T, E>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(_) => "Err(..)".to_string(),
    }
}

/// Runs `f` when dropped.
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}

/// X01: a `Drop` impl may cancel: a child holding a "cancel the group when I end"
/// guard cancels its siblings and the body when it returns.
#[scope_runtime::test(paused)]
async fn x01_cancel_from_drop_guard() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let (l2, tg2) = (l.clone(), tg.clone());
            tg.spawn_named("guarded", async move {
                let l3 = l2.clone();
                let _cancel_on_exit = OnDrop(move || {
                    l3.push("guard: cancelling the group from Drop");
                    tg2.cancel();
                });
                sleep(secs(1)).await?;
                l2.push("guarded: returns");
                Ok(())
            });
            let l2 = l.clone();
            tg.spawn(async move {
                let r = sleep(secs(100)).await;
                l2.push(format!("sibling: cancelled={}", r.is_err()));
                Ok(r?)
            });
            let r = sleep(secs(100)).await;
            l.push(format!("body: cancelled={}", r.is_err()));
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_groups(
        &log.timed(),
        &[
            &["1s guarded: returns"],
            &["1s guard: cancelling the group from Drop"],
            &["1s body: cancelled=true", "1s sibling: cancelled=true"],
        ],
    );
}

type ScopeFut = Pin<Box<dyn Future<Output = Result<Option<()>, Cancelled>>>>;

/// X02: dropping a scope's future in the middle of its body exits the scope: a `Drop`
/// inside the body runs (and may call `check_cancelled`), the scope's deadline no
/// longer applies, a later `cancel()` is a no-op, and the surrounding state is restored.
#[scope_runtime::test(paused)]
async fn x02_dropping_scope_future_mid_body() {
    let log = Log::new();
    let t0 = now();
    let outer = CancelScope::new().with_deadline(t0 + secs(10));
    let inner = CancelScope::new()
        .with_deadline(t0 + secs(1))
        .with_shield(true);
    let (l, i) = (log.clone(), inner.clone());
    let r = outer
        .run(async move {
            let l2 = l.clone();
            let mut f: ScopeFut = Box::pin(i.run(async move {
                let l3 = l2.clone();
                let _g = OnDrop(move || {
                    l3.push(format!(
                        "inner body dropped; check_cancelled ok={}",
                        check_cancelled().is_ok()
                    ));
                });
                sleep(secs(100)).await?;
                Ok(())
            }));
            assert!(futures::poll!(f.as_mut()).is_pending());
            let d = current_effective_deadline().map(|d| d - t0);
            l.push(format!("outer, inner pending: deadline {d:?}"));
            drop(f);
            i.cancel();
            sleep(secs(2)).await?; // past the inner's old deadline
            checkpoint().await?;
            l.push("outer: 2s later, nothing fired");
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(Some(())));
    assert!(!inner.cancel_called() && !inner.cancelled_caught());
    assert!(!outer.cancel_called());
    assert_eq!(
        log.timed(),
        [
            "0ns outer, inner pending: deadline Some(10s)",
            "0ns inner body dropped; check_cancelled ok=true",
            "2s outer: 2s later, nothing fired"
        ]
    );
}

/// X03: while a dropped group drops its children (R11), their `Drop` impls may use the
/// runtime: spawning into the closed group is a clean error, spawning a top-level task
/// works, cancelling another scope works.
#[scope_runtime::test(paused)]
async fn x03_drop_guards_use_runtime_during_group_drop() {
    let log = Log::new();
    let other = CancelScope::new();
    let o = other.clone();
    let other_task = spawn(async move {
        let l = Log::new();
        let r = o.run(sleep(secs(100))).await;
        Ok::<_, Cancelled>((r, l.elapsed()))
    });
    let (l, o) = (log.clone(), other.clone());
    let mut fut = Box::pin(task_group(|tg| async move {
        let tg2 = tg.clone();
        tg.spawn(async move {
            let l2 = l.clone();
            let _g = OnDrop(move || {
                let r = tg2.try_spawn(async { Ok(()) });
                l2.push(format!("child drop: try_spawn -> {:?}", r.err()));
                let l3 = l2.clone();
                spawn(async move {
                    sleep(secs(1)).await?;
                    l3.push("task spawned from Drop ran");
                    Ok::<_, Cancelled>(())
                });
                o.cancel_with("from Drop");
            });
            sleep(secs(100)).await?;
            Ok(())
        });
        sleep(secs(100)).await?;
        Ok(())
    }));
    assert!(futures::poll!(fut.as_mut()).is_pending());
    sleep(secs(1)).await.unwrap();
    drop(fut);
    let (r, took) = other_task.await.unwrap().unwrap();
    assert_eq!(r, Ok(None));
    assert_eq!(took, secs(1));
    assert_eq!(
        other.cancel_reason(),
        Some(CancelReason::Explicit(Some("from Drop".into())))
    );
    sleep(secs(5)).await.unwrap();
    assert_eq!(
        log.timed(),
        [
            format!("1s child drop: try_spawn -> {:?}", Some(SpawnError::Closed)),
            "2s task spawned from Drop ran".to_string()
        ]
    );
}

/// X04: a group inside a shielded scope inside a cancelled group runs to completion;
/// after the shield, the next checkpoint fails and the outer group absorbs.
#[scope_runtime::test(paused)]
async fn x04_group_in_shield_in_cancelled_group() {
    let log = Log::new();
    let outer = TaskGroup::new();
    let inner = TaskGroup::new();
    let (l, ig) = (log.clone(), inner.clone());
    let r = outer
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                let r = sleep(secs(100)).await;
                l2.push(format!("outer child: cancelled={}", r.is_err()));
                Ok(r?)
            });
            tg.cancel();
            let l2 = l.clone();
            CancelScope::new()
                .with_shield(true)
                .run(async move {
                    let l3 = l2.clone();
                    ig.run(|itg| async move {
                        let l4 = l3.clone();
                        itg.spawn(async move {
                            sleep(secs(1)).await?;
                            l4.push("inner child: slept 1s");
                            Ok(())
                        });
                        checkpoint().await?;
                        l3.push("inner body: checkpoint ok");
                        Ok(())
                    })
                    .await?;
                    l2.push("shielded: inner group done");
                    Ok::<_, BoxError>(())
                })
                .await?;
            if let Err(c) = checkpoint().await {
                l.push("outer body: checkpoint after the shield failed");
                return Err(c.into());
            }
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(outer.cancel_called() && outer.cancelled_caught());
    assert!(!inner.cancel_called() && !inner.cancelled_caught());
    assert_groups(
        &log.timed(),
        &[
            &[
                "0ns inner body: checkpoint ok",
                "0ns outer child: cancelled=true",
            ],
            &["1s inner child: slept 1s"],
            &["1s shielded: inner group done"],
            &["1s outer body: checkpoint after the shield failed"],
        ],
    );
    log.push(format!("outer returned {}", result_text(&r)));
    log.group_flags("outer", &outer);
    log.group_flags("inner", &inner);
}

/// X05: deadlines and shields combined: a shield hides the outer deadline but not its
/// own; once outside, the passed outer deadline fails the next checkpoint; turning the
/// shield off after the outer deadline passed wakes the task at once.
#[scope_runtime::test(paused)]
async fn x05_deadlines_and_shields_combined() {
    let log = Log::new();
    let t0 = now();
    let outer = CancelScope::new().with_timeout(secs(1));
    let shielded = CancelScope::new().with_shield(true).with_timeout(secs(3));
    let (l, sh) = (log.clone(), shielded.clone());
    let r = outer
        .run(async move {
            let l2 = l.clone();
            let r = sh
                .run(async move {
                    let d = current_effective_deadline().map(|d| d - t0);
                    l2.push(format!("shielded: effective deadline {d:?}"));
                    if let Err(c) = sleep(secs(10)).await {
                        l2.push(format!("shielded: sleep failed ({})", c.reason()));
                        return Err(c);
                    }
                    Ok(())
                })
                .await;
            l.push(format!("shielded returned {r:?}"));
            if let Err(c) = checkpoint().await {
                l.push(format!("outer: checkpoint failed ({})", c.reason()));
                return Err(c);
            }
            Ok(())
        })
        .await;
    assert_eq!(r, Ok(None));
    assert!(shielded.cancelled_caught() && outer.cancelled_caught());
    log.push(format!("outer returned {r:?}"));
    log.flags("shielded", &shielded);
    log.flags("outer", &outer);

    // Unshield after the outer deadline passed.
    let t1 = now();
    let outer = CancelScope::new().with_deadline(t1 + secs(1));
    let shielded = CancelScope::new()
        .with_shield(true)
        .with_deadline(t1 + secs(5));
    let sh = shielded.clone();
    let helper = spawn(async move {
        sleep(secs(2)).await?;
        sh.set_shield(false);
        Ok::<_, Cancelled>(())
    });
    let (l, sh) = (log.clone(), shielded.clone());
    let r = outer
        .run(async move {
            let r = sh.run(sleep(secs(10))).await;
            l.push(format!("unshielded: scope returned Ok? {}", r.is_ok()));
            r?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    helper.await.unwrap().unwrap();
    assert!(!shielded.cancel_called() && !shielded.cancelled_caught());
    assert!(outer.cancelled_caught());
    assert_eq!(
        log.timed(),
        [
            "0ns shielded: effective deadline Some(3s)",
            "3s shielded: sleep failed (deadline reached)",
            "3s shielded returned Ok(None)",
            "3s outer: checkpoint failed (deadline reached)",
            "3s outer returned Ok(None)",
            "3s shielded: called=true caught=true",
            "3s outer: called=true caught=true",
            "5s unshielded: scope returned Ok? false"
        ]
    );
    log.push(format!("outer returned {r:?}"));
    log.flags("unshielded", &shielded);
    log.flags("outer", &outer);
}

/// X06: a shield turned on while the task is blocked protects it from an outer cancel
/// that comes later.
#[scope_runtime::test(paused)]
async fn x06_shield_turned_on_while_blocked() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (o, i) = (outer.clone(), inner.clone());
    let helper = spawn(async move {
        sleep(secs(1)).await?;
        i.set_shield(true);
        sleep(secs(1)).await?;
        o.cancel();
        Ok::<_, Cancelled>(())
    });
    let (l, i) = (log.clone(), inner.clone());
    let r = outer
        .run(async move {
            let l2 = l.clone();
            i.run(async move {
                sleep(secs(5)).await?;
                l2.push("inner: slept 5s undisturbed");
                Ok::<_, Cancelled>(())
            })
            .await?;
            if let Err(c) = checkpoint().await {
                l.push("outer: checkpoint failed");
                return Err(c);
            }
            Ok(())
        })
        .await;
    assert_eq!(r, Ok(None));
    helper.await.unwrap().unwrap();
    assert_eq!(
        log.timed(),
        [
            "5s inner: slept 5s undisturbed",
            "5s outer: checkpoint failed"
        ]
    );
    log.push(format!("outer returned {r:?}"));
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// X07: after a child's error, the group reports `cancelled_caught()` when the body
/// absorbed the group's own `Cancelled` — the same as when a sibling absorbed it
/// (Trio: the nursery's scope caught the `Cancelled` and then raised the errors).
#[scope_runtime::test(paused)]
async fn x07_group_caught_flag_after_error_body_only() {
    let log = Log::new();
    let group = TaskGroup::new();
    let r = group
        .run(|tg| async move {
            tg.spawn(async {
                sleep(secs(1)).await?;
                Err(MyError("bad").into())
            });
            sleep(secs(100)).await?;
            Ok(())
        })
        .await;
    let e = r.unwrap_err();
    assert_eq!(e.find::<MyError>(), Some(&MyError("bad")));
    assert!(group.cancel_called());
    assert!(
        group.cancelled_caught(),
        "the body's Cancelled was absorbed by the group"
    );
    let errors: Vec<String> = e.failures().iter().map(|f| f.error().to_string()).collect();
    log.push(format!(
        "group failed: cancellation={} failures={errors:?}",
        e.as_cancelled().is_some()
    ));
    log.group_flags("group", &group);
}

/// X08: dropping a `JoinHandle` detaches the task: it keeps running (R11).
#[scope_runtime::test(paused)]
async fn x08_dropping_join_handle_detaches() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        sleep(secs(1)).await?;
        l.push("detached task finished");
        Ok::<_, Cancelled>(())
    });
    let task = *h;
    drop(h);
    assert!(task.is_alive());
    assert_eq!(task.cancelling(), 0);
    sleep(secs(2)).await.unwrap();
    assert!(!task.is_alive());
    assert_eq!(log.timed(), ["1s detached task finished"]);
}

/// X09: `yield_now()` is not a cancellation point and `check_cancelled()` does not
/// yield; `checkpoint()` does both.
#[scope_runtime::test(paused)]
async fn x09_yield_now_is_not_a_checkpoint() {
    let log = Log::new();
    let l = log.clone();
    let other = spawn(async move {
        l.push("other task ran");
        Ok::<_, Cancelled>(())
    });
    let scope = CancelScope::new();
    let (l, s) = (log.clone(), scope.clone());
    let r = scope
        .run(async move {
            s.cancel();
            l.push(format!(
                "check_cancelled failed={}",
                check_cancelled().is_err()
            ));
            yield_now().await;
            l.push("yield_now returned");
            checkpoint().await?;
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(r, Ok(None));
    other.await.unwrap().unwrap();
    assert_eq!(
        log.events(),
        [
            "check_cancelled failed=true",
            "other task ran",
            "yield_now returned"
        ]
    );
}

/// X10: absorption is decided when a `Cancelled` leaves a scope, not where it was
/// raised (Trio): one carried out of its (exited) scope and returned from another
/// scope is absorbed there if that scope is cancelled, and passes through a scope that
/// is not. Checked against Trio 0.35: `raise stale_cancelled` inside a cancelled
/// `CancelScope` sets its `cancelled_caught`; inside an uncancelled one it propagates.
#[scope_runtime::test(paused)]
async fn x10_cancelled_absorbed_by_the_cancelled_scope_it_leaves() {
    let log = Log::new();
    let stash: Rc<RefCell<Option<Cancelled>>> = Rc::default();
    let first = CancelScope::new();
    let (f, st) = (first.clone(), stash.clone());
    let r = first
        .run(async move {
            f.cancel();
            let c = checkpoint().await.unwrap_err();
            *st.borrow_mut() = Some(c.clone());
            Err::<(), _>(c)
        })
        .await;
    assert_eq!(r, Ok(None));
    log.push(format!("first returned {r:?}"));
    let stale = stash.borrow_mut().take().unwrap();
    let second = CancelScope::new();
    second.cancel();
    let s2 = stale.clone();
    let r = second.run(async move { Err::<(), _>(s2) }).await;
    assert_eq!(
        r,
        Ok(None),
        "a cancelled scope absorbs the Cancelled leaving it"
    );
    assert!(second.cancel_called() && second.cancelled_caught());
    log.push(format!("second returned {r:?}"));
    log.flags("second", &second);
    let third = CancelScope::new();
    let s3 = stale.clone();
    let r = third.run(async move { Err::<(), _>(s3) }).await;
    assert_eq!(r, Err(stale), "an uncancelled scope passes it on");
    assert!(!third.cancelled_caught());
    log.push(format!(
        "third returned {}",
        r.as_ref()
            .map_or("Err(Cancelled)".to_string(), |v| format!("Ok({v:?})"))
    ));
    log.flags("third", &third);
}

/// X11: a task group's own deadline cancels the body and the children; the group
/// absorbs it (reason `Deadline`).
#[scope_runtime::test(paused)]
async fn x11_group_deadline() {
    let log = Log::new();
    let group = TaskGroup::new();
    group.cancel_scope().set_deadline(Some(now() + secs(2)));
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                let r = sleep(secs(100)).await;
                l2.push(format!("child: {:?}", r.as_ref().map_err(|c| c.reason())));
                Ok(r?)
            });
            let r = sleep(secs(100)).await;
            l.push(format!("body: {:?}", r.as_ref().map_err(|c| c.reason())));
            r?;
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(group.cancelled_caught());
    assert_eq!(
        group.cancel_scope().cancel_reason(),
        Some(CancelReason::Deadline)
    );
    assert_groups(
        &log.timed(),
        &[&["2s body: Err(Deadline)", "2s child: Err(Deadline)"]],
    );
    log.push(format!("group returned {}", result_text(&r)));
    log.group_flags("group", &group);
}

/// X12: a task cancel (`JoinHandle::cancel`) is hidden by a shield inside the task, like
/// any enclosing cancellation; after the shield, the next checkpoint fails.
#[scope_runtime::test(paused)]
async fn x12_task_cancel_hidden_by_shield() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let l2 = l.clone();
        CancelScope::new()
            .with_shield(true)
            .run(async move {
                sleep(secs(3)).await?;
                l2.push(format!(
                    "shielded: slept 3s, cancelling={}",
                    current_task().cancelling()
                ));
                Ok::<_, Cancelled>(())
            })
            .await?;
        let r = checkpoint().await;
        l.push(format!("after shield: checkpoint failed={}", r.is_err()));
        r?;
        Ok::<_, Cancelled>(())
    });
    sleep(secs(1)).await.unwrap();
    assert!(h.cancel());
    let outcome = h.await.unwrap();
    assert!(outcome.is_cancelled());
    log.push(format!("task ended cancelled={}", outcome.is_cancelled()));
    assert_eq!(
        log.timed(),
        [
            "3s shielded: slept 3s, cancelling=1",
            "3s after shield: checkpoint failed=true",
            "3s task ended cancelled=true"
        ]
    );
}

/// X13: `uncancel()` withdraws task cancel requests only: it cannot lift a group's
/// cancellation, which stays level-triggered.
#[scope_runtime::test(paused)]
async fn x13_uncancel_cannot_lift_scope_cancel() {
    let log = Log::new();
    let l = log.clone();
    let r = task_group(|tg| async move {
        let l2 = l.clone();
        tg.spawn(async move {
            let Err(_) = sleep(secs(100)).await else {
                return Ok(());
            };
            let left = current_task().uncancel();
            let again = checkpoint().await;
            l2.push(format!(
                "child: uncancel -> {left}, checkpoint failed={}",
                again.is_err()
            ));
            Ok(again?)
        });
        sleep(ms(10)).await?;
        tg.cancel();
        Ok(())
    })
    .await;
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    log.push(format!("group returned {}", result_text(&r)));
    assert_eq!(
        log.timed(),
        [
            "10ms child: uncancel -> 0, checkpoint failed=true",
            "10ms group returned Ok(Some(()))"
        ]
    );
}

/// X14: cancel from another thread through the `Send` handle (`cancel_handle()`): the
/// blocked task is woken, the scope absorbs, and the reason arrives; the same for a
/// task group.
#[scope_runtime::test(paused)]
async fn x14_cancel_from_another_thread() {
    let log = Log::new();
    let scope = CancelScope::new();
    let handle = scope.cancel_handle();
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        blocked_rx.recv().unwrap(); // the task is about to block
        handle.cancel_with("from a thread");
    });
    let never = Event::new();
    let l = log.clone();
    let r = scope
        .run(async {
            l.push("body: blocking on an event nobody sets");
            blocked_tx.send(()).unwrap();
            if let Err(c) = never.wait().await {
                l.push(format!("body: woken ({})", c.reason()));
                return Err(c);
            }
            Ok(())
        })
        .await;
    thread.join().unwrap();
    assert_eq!(r, Ok(None));
    assert!(scope.cancelled_caught());
    assert_eq!(
        scope.cancel_reason(),
        Some(CancelReason::Explicit(Some("from a thread".into())))
    );

    // A task group, cancelled from a thread while its children wait.
    let group = TaskGroup::new();
    let handle = group.cancel_handle();
    let (blocked_tx, blocked_rx) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        blocked_rx.recv().unwrap();
        handle.cancel();
    });
    let l = log.clone();
    let never = Rc::new(Event::new());
    let r = group
        .run(|tg| async move {
            for name in ["child 1", "child 2"] {
                let (l2, ev) = (l.clone(), never.clone());
                tg.spawn(async move {
                    let r = ev.wait().await;
                    l2.push(format!("{name}: cancelled={}", r.is_err()));
                    Ok(r?)
                });
            }
            checkpoint().await?; // let the children block
            blocked_tx.send(()).unwrap();
            let r = never.wait().await;
            l.push(format!("body: cancelled={}", r.is_err()));
            r?;
            Ok(())
        })
        .await;
    thread.join().unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(group.cancel_called() && group.cancelled_caught());
    assert_groups(
        &log.timed(),
        &[
            &["0ns body: blocking on an event nobody sets"],
            &["0ns body: woken (cancelled: from a thread)"],
            &[
                "0ns body: cancelled=true",
                "0ns child 1: cancelled=true",
                "0ns child 2: cancelled=true",
            ],
        ],
    );
}

/// X15: a panic in a group's *body* is handled like a child's panic (R7: "if a child
/// (or the body) ... panics, the group cancels itself; siblings ... see `Cancelled` at
/// their next checkpoint"): the children are cancelled and awaited (their cleanup runs
/// to the end), then the panic resumes in the parent.
#[scope_runtime::test(paused)]
async fn x15_body_panic_cancels_and_awaits_children() {
    let log = Log::new();
    let l = log.clone();
    let host = spawn(async move {
        task_group(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                let l3 = l2.clone();
                let _g = OnDrop(move || l3.push("child dropped"));
                let Err(c) = sleep(secs(100)).await else {
                    return Ok(());
                };
                l2.push("child: cancelled");
                CancelScope::new()
                    .with_shield(true)
                    .run(sleep(secs(1)))
                    .await?;
                l2.push("child: cleanup done");
                Err(c.into())
            });
            sleep(secs(1)).await?;
            l.push("body: panics");
            panic!("body boom");
            #[allow(unreachable_code)]
            Ok(())
        })
        .await
    });
    match host.await.unwrap() {
        scope_runtime::Outcome::Panicked(p) => {
            log.push(format!("host panicked: {}", crate::panic_message(&*p)))
        }
        other => panic!("the panic did not resume: {other:?}"),
    }
    assert_eq!(
        log.timed(),
        [
            "1s body: panics",
            "1s child: cancelled",
            "2s child: cleanup done",
            "2s child dropped",
            "2s host panicked: body boom"
        ]
    );
}

/// X16 (R4, decided at exit): the inner scope is cancelled and its `Cancelled` is on its
/// way out when the outer scope is cancelled too (before the inner scope exits). The
/// outer cancel must come out of the inner scope: the outer scope absorbs it, the inner
/// does not. Checked against Trio 0.35 (`outer.cancel()` in a `finally:` of the inner
/// scope: outer caught, inner not).
#[scope_runtime::test(paused)]
async fn x16_outer_cancel_while_inner_cancel_travels_comes_out() {
    let log = Log::new();
    let outer = CancelScope::new();
    let inner = CancelScope::new();
    let (l, o, i) = (log.clone(), outer.clone(), inner.clone());
    let out = outer
        .run(async move {
            let (o2, i2) = (o.clone(), i.clone());
            let r = i
                .run(async move {
                    i2.cancel_with("inner");
                    let c = checkpoint().await.unwrap_err();
                    o2.cancel_with("outer"); // while the inner Cancelled travels
                    Err::<(), _>(c)
                })
                .await;
            l.push(format!(
                "inner returned {:?}",
                r.as_ref().map_err(|_| "Cancelled")
            ));
            r?;
            l.push("after the inner scope (must not run)");
            Ok::<_, Cancelled>(())
        })
        .await;
    assert_eq!(out, Ok(None));
    assert_eq!(log.events(), [r#"inner returned Err("Cancelled")"#]);
    assert!(outer.cancelled_caught());
    assert!(!inner.cancelled_caught());
    log.push(format!("outer returned {out:?}"));
    log.flags("inner", &inner);
    log.flags("outer", &outer);
}

/// X17 (R4, R7): a group absorbing its own cancel waits for a child's (shielded)
/// cleanup; during that wait the enclosing scope is cancelled. The group must not
/// swallow that cancel: it comes out of the group and the outer scope absorbs it.
/// Checked against Trio 0.35 (nursery cancelled, child's shielded cleanup cancels the
/// outer scope: outer caught, nursery not).
#[scope_runtime::test(paused)]
async fn x17_outer_cancel_while_group_waits_comes_out() {
    let log = Log::new();
    let outer = CancelScope::new();
    let group = TaskGroup::new();
    let (l, o, g) = (log.clone(), outer.clone(), group.clone());
    let out = outer
        .run(async move {
            let l2 = l.clone();
            let r = g
                .run(|tg| async move {
                    tg.spawn(async move {
                        let r = sleep(secs(10)).await;
                        l2.push(format!("child: sleep cancelled={}", r.is_err()));
                        CancelScope::new()
                            .with_shield(true)
                            .run(async {
                                sleep(secs(1)).await?;
                                o.cancel_with("outer");
                                Ok::<_, Cancelled>(())
                            })
                            .await?;
                        r?;
                        Ok(())
                    });
                    yield_now().await;
                    tg.cancel();
                    Ok(())
                })
                .await;
            l.push(format!("group: propagates={}", r.is_err()));
            r?;
            l.push("after the group (must not run)");
            Ok::<_, BoxError>(())
        })
        .await;
    assert!(matches!(out, Ok(None)), "{out:?}");
    assert_eq!(
        log.timed(),
        [
            "0ns child: sleep cancelled=true",
            "1s group: propagates=true"
        ]
    );
    assert!(outer.cancelled_caught());
    assert!(!group.cancelled_caught());
    assert!(group.cancel_called());
    log.push(format!("outer returned {}", result_text(&out)));
    log.flags("outer", &outer);
    log.group_flags("group", &group);
}

/// X18 (R4, R9): the same with a cancel of the task itself. A group absorbing its own
/// cancel waits for a child's cleanup; meanwhile another task cancels the group's host
/// task. The task cancel comes out of the group, and the task ends cancelled with its
/// count still 1. (asyncio: a task cancel during `TaskGroup.__aexit__` propagates and
/// stays counted, checked on CPython 3.11; it has no group cancel to combine it with.)
#[scope_runtime::test(paused)]
async fn x18_task_cancel_while_group_waits_comes_out() {
    let log = Log::new();
    let group = TaskGroup::new();
    let (l, g) = (log.clone(), group.clone());
    let host = spawn(async move {
        let r = g
            .run(|tg| async move {
                tg.spawn(async move {
                    let r = sleep(secs(10)).await;
                    CancelScope::new()
                        .with_shield(true)
                        .run(sleep(secs(1)))
                        .await?;
                    r?;
                    Ok(())
                });
                yield_now().await;
                tg.cancel();
                Ok(())
            })
            .await;
        l.push(format!(
            "group: propagates={} cancelling={}",
            r.is_err(),
            current_task().cancelling()
        ));
        r?;
        l.push("after the group (must not run)");
        Ok::<_, BoxError>(())
    });
    sleep(ms(500)).await.unwrap();
    assert!(host.cancel());
    let outcome = host.await.unwrap();
    assert!(outcome.is_cancelled(), "{outcome:?}");
    log.push(format!("host ended cancelled={}", outcome.is_cancelled()));
    assert_eq!(
        log.timed(),
        [
            "1s group: propagates=true cancelling=1",
            "1s host ended cancelled=true"
        ]
    );
    assert!(!group.cancelled_caught());
}

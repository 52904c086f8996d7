//! X19–X22: the differences from Trio (and AnyIO) that the oracle's first comparison
//! found, now fixed to match (issue 10). Each has a twin in
//! `tests/oracle/cases/found_by_oracle.py`.

use std::time::Instant;

use scope_runtime::{
    BoxError, CancelError, CancelScope, Cancelled, TaskGroup, TaskGroupError, checkpoint,
    current_effective_deadline, move_on_after, now, sleep, task_group,
};

use crate::{Log, MyError, secs};

/// "expired" when `d` leaves no time from now, else the time left.
fn budget(d: Option<Instant>) -> String {
    match d {
        None => "none".to_string(),
        Some(d) if d <= now() => "expired".to_string(),
        Some(d) => format!("{:?} left", d - now()),
    }
}

/// X19: `current_effective_deadline()` inside code that is already cancelled —
/// explicitly, or because its deadline fired — says "out of time" (Trio: `-inf`),
/// whatever deadline is further out; a shield hides the cancel again.
#[scope_runtime::test(paused)]
async fn x19_effective_deadline_in_cancelled_code_is_expired() {
    let log = Log::new();
    let outer = CancelScope::new().with_timeout(secs(60));
    let o = outer.clone();
    let (l, _) = (log.clone(), ());
    let out = outer
        .run(async move {
            l.push(format!(
                "before cancel: {}",
                budget(current_effective_deadline())
            ));
            o.cancel();
            l.push(format!(
                "after cancel: {}",
                budget(current_effective_deadline())
            ));
            let shielded = CancelScope::new().with_shield(true);
            shielded
                .run(async {
                    l.push(format!(
                        "shielded: {}",
                        budget(current_effective_deadline())
                    ));
                    Ok::<_, Cancelled>(())
                })
                .await?;
            checkpoint().await
        })
        .await;
    assert_eq!(out, Ok(None));
    let l = log.clone();
    let r = move_on_after(secs(2), async move {
        let r = sleep(secs(10)).await;
        l.push(format!(
            "deadline fired (sleep failed={}): {}",
            r.is_err(),
            budget(current_effective_deadline())
        ));
        r
    })
    .await;
    assert_eq!(r, Ok(None));
    assert_eq!(
        log.timed(),
        [
            "0ns before cancel: 60s left",
            "0ns after cancel: expired",
            "0ns shielded: none",
            "2s deadline fired (sleep failed=true): expired"
        ]
    );
    log.flags("outer", &outer);
}

/// X20: a `Cancelled` and another error leave a task group together, inside a scope
/// that is cancelled: the error comes out (errors win), and the enclosing scope reports
/// `cancelled_caught()` — Trio splits the `Cancelled` out of the nursery's exception
/// group at that scope.
#[scope_runtime::test(paused)]
async fn x20_cancelled_beside_an_error_is_caught_by_its_scope() {
    let log = Log::new();
    let outer = CancelScope::new();
    let (l, o) = (log.clone(), outer.clone());
    let out = outer
        .run(async move {
            let l2 = l.clone();
            let r = task_group(|tg| async move {
                tg.spawn(async {
                    // Cleanup that fails after the cancel reached it.
                    let r = sleep(secs(10)).await;
                    CancelScope::new()
                        .with_shield(true)
                        .run(sleep(secs(1)))
                        .await?;
                    r?;
                    Ok(())
                });
                tg.spawn(async move {
                    if sleep(secs(10)).await.is_err() {
                        return Err(MyError("cleanup failed").into());
                    }
                    Ok(())
                });
                sleep(secs(1)).await?;
                o.cancel();
                Ok(())
            })
            .await;
            match &r {
                Err(e) => l2.push(format!(
                    "group: failures={} cancellation={}",
                    e.failures().len(),
                    e.as_cancelled().is_some()
                )),
                Ok(_) => l2.push("group: ok"),
            }
            r?;
            Ok::<_, BoxError>(())
        })
        .await;
    let err = out.expect_err("the child's error comes out");
    let group_err = err.downcast_ref::<TaskGroupError>().expect("a group error");
    log.push(format!(
        "outer returned: {}",
        group_err.failures()[0].error()
    ));
    assert_eq!(
        log.timed(),
        [
            "2s group: failures=1 cancellation=false",
            "2s outer returned: my error: cleanup failed"
        ]
    );
    assert!(outer.cancel_called() && outer.cancelled_caught());
    log.flags("outer", &outer);
}

/// X21: `tg.start(f)` called from code that is already cancelled, where `f` calls
/// `started(v)` before any checkpoint: the child is not moved into the group (it would
/// escape the cancellation), it meets the cancellation at its next checkpoint, and
/// `start()` fails with the `Cancelled` (Trio; AnyIO on both backends).
#[scope_runtime::test(paused)]
async fn x21_start_from_cancelled_code_does_not_escape() {
    let log = Log::new();
    let group = TaskGroup::new();
    let l = log.clone();
    let r = group
        .run(|tg| async move {
            let caller = CancelScope::new();
            caller.cancel();
            let l2 = l.clone();
            let r = caller
                .run(async {
                    let started = tg
                        .start(|status| async move {
                            status.started(7);
                            l2.push("child: started");
                            let r = sleep(secs(5)).await;
                            l2.push(format!("child: sleep cancelled={}", r.is_err()));
                            r?;
                            Ok(())
                        })
                        .await;
                    l.push(format!(
                        "start returned {}",
                        match &started {
                            Ok(v) => format!("Ok({v})"),
                            Err(e) if e.as_cancelled().is_some() => "Cancelled".to_string(),
                            Err(e) => format!("Err({e})"),
                        }
                    ));
                    started.map(drop)
                })
                .await;
            l.push(format!("caller scope absorbed={}", matches!(r, Ok(None))));
            l.flags("caller", &caller);
            Ok(())
        })
        .await;
    assert!(matches!(r, Ok(Some(()))), "{r:?}");
    assert_eq!(
        log.timed(),
        [
            "0ns child: started",
            "0ns child: sleep cancelled=true",
            "0ns start returned Cancelled",
            "0ns caller scope absorbed=true",
            "0ns caller: called=true caught=true"
        ]
    );
    log.group_flags("group", &group);
}

/// X22: a scope that was never entered and whose deadline has passed reports
/// `cancel_called()` (Trio); a relative timeout has no deadline before entry.
#[scope_runtime::test(paused)]
async fn x22_unentered_scope_past_its_deadline_is_cancel_called() {
    let log = Log::new();
    let t0 = now();
    let late = CancelScope::new().with_deadline(t0 + secs(1));
    log.flags("before the deadline", &late);
    sleep(secs(2)).await.unwrap();
    log.flags("after the deadline", &late);
    let relative = CancelScope::new().with_timeout(secs(0));
    log.flags("relative, not entered", &relative);
    assert_eq!(
        log.timed(),
        [
            "0ns before the deadline: called=false caught=false",
            "2s after the deadline: called=true caught=false",
            "2s relative, not entered: called=false caught=false"
        ]
    );
}

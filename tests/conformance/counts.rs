//! C: task cancel counts (rule R9), asyncio's `cancel()` / `cancelling()` / `uncancel()`.

use std::fmt;
use std::io;

use scope_runtime::{
    CancelError, CancelReason, CancelScope, Cancelled, Outcome, TaskGroupError, checkpoint,
    current_task, move_on_after, sleep, spawn, task_group,
};

use crate::{Log, MyError, ms, secs};

/// A task's outcome in words the oracle's twins write too: `Ok(<value:?>)`,
/// `Err(<error>)`, `Cancelled(<reason>)`, `Panicked`.
fn outcome<T: fmt::Debug, E: fmt::Display>(o: &Outcome<T, E>) -> String {
    match o {
        Outcome::Ok(v) => format!("Ok({v:?})"),
        Outcome::Err(e) => format!("Err({e})"),
        Outcome::Cancelled(c) => format!("Cancelled({})", c.reason()),
        Outcome::Panicked(_) => "Panicked".to_string(),
    }
}

/// C01: `cancel()` on a task: `cancelling() == 1`; its next checkpoint fails.
#[scope_runtime::test(paused)]
async fn c01_task_cancel_counts_one_and_fails_checkpoint() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        l.push("task: started");
        let r = sleep(secs(100)).await;
        l.push(format!(
            "task: sleep -> {:?}, cancelling={}",
            r.as_ref().map_err(|c| c.reason()),
            current_task().cancelling()
        ));
        r?;
        Ok::<_, Cancelled>(1)
    });
    assert_eq!(h.cancelling(), 0);
    log.push(format!("main: cancelling={}", h.cancelling()));
    sleep(secs(1)).await.unwrap();
    assert!(h.cancel());
    assert_eq!(h.cancelling(), 1);
    log.push("main: cancelled the task");
    log.push(format!("main: cancelling={}", h.cancelling()));
    let o = h.await.unwrap();
    log.push(format!("main: outcome {}", outcome(&o)));
    match o {
        Outcome::Cancelled(c) => assert_eq!(c.reason(), &CancelReason::TaskCancelled),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        log.timed(),
        [
            "0ns main: cancelling=0",
            "0ns task: started",
            "1s main: cancelled the task",
            "1s main: cancelling=1",
            "1s task: sleep -> Err(TaskCancelled), cancelling=1",
            "1s main: outcome Cancelled(the task was cancelled)"
        ]
    );
}

/// C02: two `cancel()` calls: `cancelling() == 2`; `uncancel()` returns 1; the task is
/// still cancelled.
#[scope_runtime::test(paused)]
async fn c02_two_cancels_uncancel_once_still_cancelled() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let r = sleep(secs(100)).await;
        l.push(format!(
            "task: sleep failed={} cancelling={}",
            r.is_err(),
            current_task().cancelling()
        ));
        let r = checkpoint().await;
        l.push(format!("task: next checkpoint failed={}", r.is_err()));
        r?;
        Ok::<_, Cancelled>(())
    });
    sleep(secs(1)).await.unwrap();
    let (first, second) = (h.cancel(), h.cancel());
    assert!(first && second);
    let two = h.cancelling();
    assert_eq!(two, 2);
    let left = h.uncancel();
    assert_eq!(left, 1);
    assert_eq!(h.cancelling(), 1);
    log.push(format!(
        "main: cancel() -> {first} {second}, cancelling={two}, uncancel -> {left}, cancelling={}",
        h.cancelling()
    ));
    let o = h.await.unwrap();
    log.push(format!("main: outcome cancelled={}", o.is_cancelled()));
    assert!(o.is_cancelled());
    assert_eq!(
        log.timed(),
        [
            "1s main: cancel() -> true true, cancelling=2, uncancel -> 1, cancelling=1",
            "1s task: sleep failed=true cancelling=1",
            "1s task: next checkpoint failed=true",
            "1s main: outcome cancelled=true"
        ]
    );
}

/// C03: `uncancel()` down to zero: the task runs on and its checkpoints succeed
/// (withdrawn from outside before the task noticed, or inside after it noticed).
#[scope_runtime::test(paused)]
async fn c03_uncancel_to_zero_runs_on() {
    let log = Log::new();
    let l = log.clone();
    let outside = spawn(async move {
        sleep(secs(5)).await?;
        l.push("outside: slept 5s undisturbed");
        Ok::<_, Cancelled>("outside done")
    });
    sleep(secs(1)).await.unwrap();
    let cancelled = outside.cancel();
    assert!(cancelled);
    let left = outside.uncancel();
    assert_eq!(left, 0);
    log.push(format!(
        "main: outside cancel() -> {cancelled}, uncancel -> {left}"
    ));
    let o = outside.await.unwrap();
    log.push(format!("main: outside outcome {}", outcome(&o)));
    assert_eq!(o.unwrap(), "outside done");

    let l = log.clone();
    let inside = spawn(async move {
        let Err(c) = sleep(secs(100)).await else {
            return Ok("not cancelled");
        };
        l.push(format!("inside: cancelled ({})", c.reason()));
        let left = current_task().uncancel();
        l.push(format!("inside: uncancel -> {left}"));
        checkpoint().await?;
        sleep(secs(1)).await?;
        l.push("inside: runs on");
        Ok::<_, Cancelled>("recovered")
    });
    sleep(secs(1)).await.unwrap();
    assert!(inside.cancel());
    let o = inside.await.unwrap();
    log.push(format!("main: inside outcome {}", outcome(&o)));
    assert_eq!(o.unwrap(), "recovered");
    assert_eq!(
        log.timed(),
        [
            "1s main: outside cancel() -> true, uncancel -> 0",
            "5s outside: slept 5s undisturbed",
            "5s main: outside outcome Ok(\"outside done\")",
            "6s inside: cancelled (the task was cancelled)",
            "6s inside: uncancel -> 0",
            "7s inside: runs on",
            "7s main: inside outcome Ok(\"recovered\")"
        ]
    );
}

/// C04: a group's own cancel (or a scope's, or a timeout) does not change the enclosing
/// task's `cancelling()`, nor the children's.
#[scope_runtime::test(paused)]
async fn c04_group_cancel_leaves_task_count_alone() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let me = current_task();
        let l2 = l.clone();
        task_group(|tg| async move {
            let l3 = l2.clone();
            tg.spawn(async move {
                let r = sleep(secs(100)).await;
                l3.push(format!(
                    "child: cancelled={} own cancelling={}",
                    r.is_err(),
                    current_task().cancelling()
                ));
                Ok(r?)
            });
            sleep(secs(1)).await?;
            tg.cancel();
            l2.push(format!(
                "body: after tg.cancel() task cancelling={}",
                me.cancelling()
            ));
            checkpoint().await?;
            Ok(())
        })
        .await
        .unwrap();
        l.push(format!("after group: task cancelling={}", me.cancelling()));
        let s = CancelScope::new();
        let s2 = s.clone();
        s.run(async move {
            s2.cancel();
            checkpoint().await
        })
        .await?;
        move_on_after(secs(1), sleep(secs(5))).await?;
        l.push(format!(
            "after scope and timeout: task cancelling={}",
            me.cancelling()
        ));
        sleep(secs(1)).await?;
        Ok::<_, Cancelled>(())
    });
    sleep(ms(500)).await.unwrap();
    log.push(format!("main: task cancelling={}", h.cancelling()));
    let o = h.await.unwrap();
    log.push(format!("main: outcome {}", outcome(&o)));
    assert!(o.into_result().is_ok());
    assert_eq!(current_task().cancelling(), 0);
    log.push(format!(
        "main: own cancelling={}",
        current_task().cancelling()
    ));
    assert_eq!(
        log.timed(),
        [
            "500ms main: task cancelling=0",
            "1s body: after tg.cancel() task cancelling=0",
            "1s child: cancelled=true own cancelling=0",
            "1s after group: task cancelling=0",
            "2s after scope and timeout: task cancelling=0",
            "3s main: outcome Ok(())",
            "3s main: own cancelling=0"
        ]
    );
}

/// C05: a task cancel arriving while a group waits for its children propagates out of
/// the group, with `cancelling()` still counted.
#[scope_runtime::test(paused)]
async fn c05_task_cancel_during_group_exit_propagates() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let l2 = l.clone();
        let r = task_group(|tg| async move {
            let l3 = l2.clone();
            tg.spawn(async move {
                match sleep(secs(100)).await {
                    Ok(()) => Ok(()),
                    Err(c) => {
                        l3.push(format!("child: cancelled ({})", c.reason()));
                        Err(c.into())
                    }
                }
            });
            l2.push("body done, group waiting");
            Ok(())
        })
        .await;
        l.push(format!(
            "group returned: cancellation={} failures={} task cancelling={}",
            r.as_ref().err().and_then(|e| e.as_cancelled()).is_some(),
            r.as_ref().err().map_or(0, |e| e.failures().len()),
            current_task().cancelling()
        ));
        r?;
        l.push("not reached");
        Ok::<_, TaskGroupError>(())
    });
    sleep(secs(1)).await.unwrap();
    assert!(h.cancel());
    let o = h.await.unwrap();
    log.push(format!("main: outcome {}", outcome(&o)));
    match o {
        Outcome::Cancelled(c) => assert_eq!(c.reason(), &CancelReason::TaskCancelled),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        log.timed(),
        [
            "0ns body done, group waiting",
            "1s child: cancelled (the task was cancelled)",
            "1s group returned: cancellation=true failures=0 task cancelling=1",
            "1s main: outcome Cancelled(the task was cancelled)"
        ]
    );
}

/// C06: cancelling a finished task is a no-op and reports `false`.
#[scope_runtime::test(paused)]
async fn c06_cancel_finished_task_is_noop() {
    let log = Log::new();
    let mut h = spawn(async { Ok::<_, Cancelled>(5) });
    let o = (&mut h).await.unwrap();
    log.push(format!("awaited: outcome {}", outcome(&o)));
    assert_eq!(o.unwrap(), 5);
    let alive = h.is_alive();
    assert!(!alive);
    let cancelled = h.cancel();
    assert!(!cancelled);
    let cancelling = h.cancelling();
    assert_eq!(cancelling, 0);
    let left = h.uncancel();
    assert_eq!(left, 0);
    log.push(format!(
        "finished: alive={alive} cancel() -> {cancelled}, cancelling={cancelling}, uncancel -> {left}"
    ));

    // Finished but not yet awaited: the outcome stays what it was.
    let h = spawn(async { Ok::<_, Cancelled>(6) });
    checkpoint().await.unwrap();
    let alive = h.is_alive();
    assert!(!alive);
    let cancelled = h.cancel();
    assert!(!cancelled);
    log.push(format!(
        "finished, not awaited: alive={alive} cancel() -> {cancelled}"
    ));
    let o = h.await.unwrap();
    log.push(format!("then awaited: outcome {}", outcome(&o)));
    match o {
        Outcome::Ok(v) => assert_eq!(v, 6),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        log.events(),
        [
            "awaited: outcome Ok(5)",
            "finished: alive=false cancel() -> false, cancelling=0, uncancel -> 0",
            "finished, not awaited: alive=false cancel() -> false",
            "then awaited: outcome Ok(6)"
        ]
    );
}

/// C07: awaiting the `JoinHandle` of a cancelled task gives a "cancelled" outcome,
/// distinct from an error (also when the `Cancelled` travelled inside an `io::Error`).
#[scope_runtime::test(paused)]
async fn c07_join_cancelled_task_outcome_is_distinct() {
    let log = Log::new();
    let cancelled = spawn(async {
        sleep(secs(100)).await?;
        Ok::<u8, io::Error>(1)
    });
    let failed = spawn(async { Err::<u8, io::Error>(io::Error::other(MyError("x"))) });
    let fine = spawn(async { Ok::<u8, io::Error>(3) });
    checkpoint().await.unwrap();
    let c = cancelled.cancel();
    assert!(c);
    log.push(format!("cancelled: cancel() -> {c}"));
    let o = cancelled.await.unwrap();
    assert!(o.is_cancelled() && !o.is_panic());
    log.push(format!(
        "cancelled: outcome {} is_cancelled={}",
        outcome(&o),
        o.is_cancelled()
    ));
    match o {
        Outcome::Cancelled(c) => assert_eq!(c.reason(), &CancelReason::TaskCancelled),
        other => panic!("{other:?}"),
    }
    let o = failed.await.unwrap();
    assert!(!o.is_cancelled());
    log.push(format!(
        "failed: outcome {} is_cancelled={}",
        outcome(&o),
        o.is_cancelled()
    ));
    match o {
        Outcome::Err(e) => {
            assert!(e.as_cancelled().is_none());
            assert_eq!(e.to_string(), "my error: x");
        }
        other => panic!("{other:?}"),
    }
    let o = fine.await.unwrap();
    log.push(format!("fine: outcome {}", outcome(&o)));
    assert!(matches!(o, Outcome::Ok(3)));
    assert_eq!(
        log.events(),
        [
            "cancelled: cancel() -> true",
            "cancelled: outcome Cancelled(the task was cancelled) is_cancelled=true",
            "failed: outcome Err(my error: x) is_cancelled=false",
            "fine: outcome Ok(3)"
        ]
    );
}

/// C08: a task that cancels itself and returns without another checkpoint ends as it
/// returned (level rule: no checkpoint, no `Cancelled`). asyncio differs: there the task
/// ends cancelled.
#[scope_runtime::test(paused)]
async fn c08_self_cancel_then_return_keeps_result() {
    let log = Log::new();
    let l = log.clone();
    let h = spawn(async move {
        let me = current_task();
        assert!(me.cancel());
        l.push(format!(
            "task: cancelled itself, cancelling={}",
            me.cancelling()
        ));
        Ok::<_, Cancelled>("returned anyway")
    });
    match h.await.unwrap() {
        Outcome::Ok(v) => log.push(format!("outcome: Ok({v})")),
        other => panic!("{other:?}"),
    }
    // With a checkpoint after the self-cancel, it ends cancelled.
    let h = spawn(async {
        current_task().cancel();
        checkpoint().await?;
        Ok::<_, Cancelled>("not reached")
    });
    let o = h.await.unwrap();
    log.push(format!("with a checkpoint: outcome {}", outcome(&o)));
    assert!(o.is_cancelled());
    assert_eq!(
        log.events(),
        [
            "task: cancelled itself, cancelling=1",
            "outcome: Ok(returned anyway)",
            "with a checkpoint: outcome Cancelled(the task was cancelled)"
        ]
    );
}

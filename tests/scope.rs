//! Cancel scopes and task groups as scheduler primitives (issue 3). These tests look
//! at the scheduler's side: who is woken, how often, what the tree does on misuse.
//! The rule-by-rule cases live in `tests/conformance/`. No real I/O: Miri runs these.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use scope_runtime::{
    BoxError, CancelError, CancelReason, CancelScope, Cancelled, Runtime, SpawnError, TaskGroup,
    checkpoint, current_effective_deadline, now, sleep, spawn, task_group, yield_now,
};

fn run<F: std::future::Future>(f: F) -> F::Output {
    Runtime::builder()
        .paused_clock(true)
        .build()
        .unwrap()
        .block_on(f)
}

fn n(full: usize) -> usize {
    if cfg!(miri) { full / 50 } else { full }
}

/// A future that counts its polls and waits until it is cancelled: a foreign-style
/// wait made cancellable (only registered waits are woken by a cancel, rule R13).
async fn counted_wait(polls: Rc<Cell<usize>>) -> Result<(), BoxError> {
    scope_runtime::cancellable(poll_fn(|_| {
        polls.set(polls.get() + 1);
        Poll::<()>::Pending
    }))
    .await?;
    Ok(())
}

#[test]
fn cancelling_a_group_wakes_exactly_its_blocked_children_once() {
    let count = n(1000);
    run(async move {
        let polls: Vec<Rc<Cell<usize>>> = (0..count).map(|_| Rc::default()).collect();
        let outsider = Rc::new(Cell::new(0));
        let shielded = Rc::new(Cell::new(0));
        let o2 = outsider.clone();
        let outside_task =
            spawn(async move { counted_wait(o2).await.map_err(|_| Cancelled::never()) });
        let ps = polls.clone();
        let sh = shielded.clone();
        let res = task_group(|tg| async move {
            for p in ps {
                tg.spawn(counted_wait(p));
            }
            let sh2 = sh.clone();
            tg.spawn(async move {
                CancelScope::new()
                    .with_shield(true)
                    .run(async {
                        // Blocked under a shield: must not be woken by the group's cancel.
                        sleep(Duration::from_secs(10)).await?;
                        sh2.set(sh2.get() + 1);
                        Ok::<_, Cancelled>(())
                    })
                    .await?;
                Ok(())
            });
            yield_now().await; // let every child block once
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(res.is_ok());
        for p in &polls {
            assert_eq!(p.get(), 2, "each child: first poll, then exactly one wake");
        }
        assert_eq!(outsider.get(), 1, "a task outside the group was woken");
        assert_eq!(shielded.get(), 1, "the shielded child ran to its own end");
        outside_task.cancel();
    });
}

trait Never {
    fn never() -> Self;
}
impl Never for Cancelled {
    fn never() -> Self {
        unreachable!("the outsider is never cancelled in this test")
    }
}

#[test]
fn turning_a_shield_off_wakes_the_blocked_task_at_once() {
    run(async {
        let t0 = now();
        let outer = CancelScope::new();
        let inner = CancelScope::new().with_shield(true);
        let (o, i, inner2) = (outer.clone(), inner.clone(), inner.clone());
        let r = outer
            .run(async move {
                let lifter = spawn(async move {
                    sleep(Duration::from_secs(1)).await?;
                    o.cancel(); // hidden by the shield
                    sleep(Duration::from_secs(1)).await?;
                    i.set_shield(false); // now it gets through
                    Ok::<_, Cancelled>(())
                });
                let r = inner2.run(sleep(Duration::from_secs(100))).await;
                assert!(r.unwrap_err().reason() == &CancelReason::Explicit(None));
                assert_eq!(now() - t0, Duration::from_secs(2));
                lifter.await?.unwrap();
                Ok::<_, Cancelled>(())
            })
            .await;
        assert_eq!(r, Ok(None));
        assert!(outer.cancelled_caught());
        assert!(!inner.cancelled_caught());
    });
}

#[test]
fn deadlines_move_earlier_and_later_while_blocked() {
    run(async {
        let t0 = now();
        let scope = CancelScope::new().with_timeout(Duration::from_secs(10));
        let s2 = scope.clone();
        let mover = spawn(async move {
            sleep(Duration::from_secs(1)).await?;
            s2.set_deadline(Some(t0 + Duration::from_secs(30))); // later
            sleep(Duration::from_secs(19)).await?; // t = 20 s: past the old deadline
            s2.set_deadline(Some(t0 + Duration::from_secs(25))); // earlier again
            Ok::<_, Cancelled>(())
        });
        let r = scope.run(sleep(Duration::from_secs(3600))).await;
        assert_eq!(r, Ok(None));
        assert_eq!(now() - t0, Duration::from_secs(25));
        assert_eq!(scope.cancel_reason(), Some(CancelReason::Deadline));
        mover.await.unwrap().unwrap();
    });
}

#[test]
fn effective_deadline_is_the_nearest_visible_one() {
    run(async {
        let t0 = now();
        assert_eq!(current_effective_deadline(), None);
        let r = CancelScope::new()
            .with_deadline(t0 + Duration::from_secs(5))
            .run(async {
                CancelScope::new()
                    .with_deadline(t0 + Duration::from_secs(9))
                    .run(async {
                        assert_eq!(
                            current_effective_deadline(),
                            Some(t0 + Duration::from_secs(5))
                        );
                        CancelScope::new()
                            .with_shield(true)
                            .run(async {
                                assert_eq!(current_effective_deadline(), None);
                                Ok::<_, Cancelled>(())
                            })
                            .await
                    })
                    .await
            })
            .await;
        assert_eq!(r, Ok(Some(Some(Some(())))));
    });
}

#[test]
fn entering_a_scope_twice_panics_with_a_clear_message() {
    run(async {
        let scope = CancelScope::new();
        scope.run(async { Ok::<_, Cancelled>(()) }).await.unwrap();
        let h = spawn(async move {
            scope.run(async { Ok::<_, Cancelled>(()) }).await?;
            Ok::<_, Cancelled>(())
        });
        match h.await.unwrap() {
            scope_runtime::Outcome::Panicked(p) => {
                let msg = p.downcast_ref::<&str>().copied().unwrap_or_default();
                assert!(msg.contains("entered twice"), "{msg}");
            }
            other => panic!("expected a panic, got {other:?}"),
        }
    });
}

#[test]
fn a_scope_future_moved_to_another_task_panics_there_only() {
    run(async {
        let scope = CancelScope::new();
        let mut fut = Box::pin(scope.run(async {
            sleep(Duration::from_secs(1)).await?;
            Ok::<_, Cancelled>(())
        }));
        // First poll in this task enters the scope here.
        poll_fn(|cx| {
            assert!(fut.as_mut().poll(cx).is_pending());
            Poll::Ready(())
        })
        .await;
        let h = spawn(async move { fut.await.map(|_| ()) });
        let out = h.await.unwrap();
        assert!(out.is_panic(), "expected a misuse panic, got {out:?}");
        // This task is unaffected.
        checkpoint().await.unwrap();
    });
}

#[test]
fn spawning_into_a_group_before_entry_or_after_exit_is_an_error() {
    run(async {
        let g = TaskGroup::new();
        assert_eq!(
            g.try_spawn(async { Ok(()) }).unwrap_err(),
            SpawnError::NotEntered
        );
        g.run(|_| async { Ok(()) }).await.unwrap();
        assert!(g.is_closed());
        let err = g.try_spawn(async { Ok(()) }).unwrap_err();
        assert_eq!(err, SpawnError::Closed);
        assert!(err.to_string().contains("block has ended"));
        let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            g.spawn(async { Ok(()) });
        }));
        assert!(again.is_err());
    });
}

/// Polls a group future once (its body spawns children and blocks), then yields so
/// every child runs and blocks too.
async fn start_and_let_children_block<F: std::future::Future>(mut group: std::pin::Pin<&mut F>) {
    poll_fn(|cx| {
        assert!(group.as_mut().poll(cx).is_pending());
        Poll::Ready(())
    })
    .await;
    yield_now().await;
}

#[test]
fn dropping_a_running_group_future_drops_its_children() {
    run(async {
        let dropped = Rc::new(Cell::new(0));
        let d2 = dropped.clone();
        let mut group = Box::pin(task_group(move |tg| async move {
            for _ in 0..5 {
                let probe = DropProbe {
                    count: d2.clone(),
                    bomb: false,
                };
                tg.spawn(async move {
                    let _probe = probe;
                    std::future::pending::<()>().await;
                    Ok(())
                });
            }
            std::future::pending::<()>().await;
            Ok(())
        }));
        start_and_let_children_block(group.as_mut()).await;
        assert_eq!(dropped.get(), 0);
        drop(group);
        assert_eq!(dropped.get(), 5, "children dropped in the group's drop");
    });
}

#[test]
fn cancelled_survives_conversion_into_io_error_and_box() {
    run(async {
        let scope = CancelScope::new();
        let s = scope.clone();
        let r: Result<Option<()>, std::io::Error> = scope
            .run(async move {
                s.cancel_with("stop");
                checkpoint().await?; // Cancelled -> io::Error via `?`
                unreachable!()
            })
            .await;
        assert!(matches!(r, Ok(None)));
        assert!(scope.cancelled_caught());

        let io: std::io::Error = {
            let s2 = CancelScope::new();
            let s3 = s2.clone();
            let mut err = None;
            let _ = s2
                .run(async {
                    s3.cancel();
                    let e: std::io::Error = checkpoint().await.unwrap_err().into();
                    assert_ne!(e.kind(), std::io::ErrorKind::Interrupted);
                    err = Some(e);
                    Ok::<_, Cancelled>(())
                })
                .await;
            err.unwrap()
        };
        assert!(io.as_cancelled().is_some());
        let boxed: BoxError = Box::new(io);
        assert!(boxed.as_cancelled().is_some());
        let other: BoxError = "plain error".into();
        assert!(other.as_cancelled().is_none());
    });
}

#[test]
fn start_returns_the_value_and_the_child_keeps_running() {
    run(async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let l2 = log.clone();
        task_group(|tg| async move {
            let l3 = l2.clone();
            let v = tg
                .start(|status| async move {
                    l3.borrow_mut().push("child: ready");
                    status.started(42);
                    sleep(Duration::from_secs(1)).await?;
                    l3.borrow_mut().push("child: still running after start");
                    Ok(())
                })
                .await?;
            l2.borrow_mut().push("caller: got value");
            assert_eq!(v, 42);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(
            *log.borrow(),
            [
                "child: ready",
                "caller: got value",
                "child: still running after start"
            ]
        );
    });
}

#[test]
fn a_child_error_names_the_child_in_the_cancel_reason() {
    run(async {
        let g = TaskGroup::new();
        let seen = Rc::new(RefCell::new(None));
        let s2 = seen.clone();
        let err = g
            .run(|tg| async move {
                tg.spawn_named("worker", async { Err("disk full".into()) });
                match sleep(Duration::from_secs(5)).await {
                    Err(c) => {
                        *s2.borrow_mut() = Some(c.reason().clone());
                        Err(c.into())
                    }
                    Ok(()) => Ok(()),
                }
            })
            .await
            .unwrap_err();
        let reason = seen.borrow().clone().unwrap();
        match reason {
            CancelReason::TaskFailed(t) => assert_eq!(t.name(), Some("worker")),
            other => panic!("unexpected reason {other:?}"),
        }
        assert_eq!(err.failures().len(), 1);
        assert_eq!(err.failures()[0].task().name(), Some("worker"));
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(g.cancel_called());
    });
}

#[test]
fn a_wait_beside_a_shielded_child_scope_is_woken_by_the_outer_cancel() {
    run(async {
        let t0 = now();
        let outer = CancelScope::new().with_timeout(Duration::from_secs(1));
        let r = outer
            .run(async {
                let shielded = CancelScope::new().with_shield(true);
                let ((a, failed_at), b) = futures::join!(
                    async {
                        let r = sleep(Duration::from_secs(1000)).await;
                        (r, now() - t0)
                    },
                    shielded.run(async {
                        sleep(Duration::from_secs(100)).await?;
                        Ok::<_, Cancelled>(now() - t0)
                    }),
                );
                assert!(a.is_err());
                assert_eq!(
                    failed_at,
                    Duration::from_secs(1),
                    "woken at the outer deadline"
                );
                assert_eq!(b, Ok(Some(Duration::from_secs(100))));
                a
            })
            .await;
        assert_eq!(r, Ok(None));
        // The unshielded sleep failed at 1 s even though the task also waited under
        // the shield; the shielded part then ran to its own end.
        assert_eq!(now() - t0, Duration::from_secs(100));
    });
}

/// Counts its drops; panics in `drop` when `bomb` is set.
struct DropProbe {
    count: Rc<Cell<u32>>,
    bomb: bool,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.count.set(self.count.get() + 1);
        if self.bomb {
            panic!("DropProbe exploded");
        }
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

/// R11 with panicking destructors: every child is dropped even if some panic in
/// `Drop`; the first panic is reported once, after all are dropped; no task is left.
#[test]
fn a_group_drop_survives_panicking_child_destructors() {
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let dropped = Rc::new(Cell::new(0));
    let d = dropped.clone();
    rt.block_on(async move {
        let d2 = d.clone();
        let mut group = Box::pin(task_group(move |tg| async move {
            for i in 0..6 {
                let probe = DropProbe {
                    count: d2.clone(),
                    bomb: i % 3 == 1, // children 1 and 4 panic when dropped
                };
                tg.spawn(async move {
                    let _probe = probe;
                    sleep(Duration::from_secs(3600)).await?;
                    Ok(())
                });
            }
            std::future::pending::<()>().await;
            Ok(())
        }));
        start_and_let_children_block(group.as_mut()).await;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(group)));
        let panic = r.expect_err("a child's destructor panicked: the drop reports it");
        assert_eq!(panic_text(&*panic), "DropProbe exploded");
        assert_eq!(d.get(), 6, "every child was dropped, panics or not");
    });
    assert_eq!(dropped.get(), 6);
    assert_eq!(rt.live_tasks(), 0, "no child is left running or counted");
}

/// The same for the runtime's shutdown: tasks left when the runtime is dropped are all
/// dropped, then the first destructor panic resumes once.
#[test]
fn shutdown_drops_every_task_even_if_destructors_panic() {
    let dropped = Rc::new(Cell::new(0));
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let d = dropped.clone();
    rt.block_on(async move {
        for i in 0..5 {
            let probe = DropProbe {
                count: d.clone(),
                bomb: i == 2,
            };
            drop(spawn(async move {
                let _probe = probe;
                sleep(Duration::from_secs(3600)).await?;
                Ok::<_, Cancelled>(())
            }));
        }
        yield_now().await;
    });
    assert_eq!(rt.live_tasks(), 5);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(rt)));
    let panic = r.expect_err("the panicking destructor is reported");
    assert_eq!(panic_text(&*panic), "DropProbe exploded");
    assert_eq!(dropped.get(), 5, "every task was dropped");
}

/// An entered scope knows its runtime: a cancel made on the runtime's thread while no
/// `block_on` runs reaches the task blocked inside when the runtime runs again.
#[test]
fn a_cancel_between_block_on_calls_is_not_lost() {
    let rt = Runtime::builder().paused_clock(true).build().unwrap();
    let scope = CancelScope::new();
    let s = scope.clone();
    // The handle is returned un-awaited on purpose: the next `block_on` awaits it.
    #[allow(clippy::async_yields_async)]
    let task = rt.block_on(async move {
        let h = spawn(async move {
            let r = s.run(sleep(Duration::from_secs(3600))).await;
            Ok::<_, Cancelled>(r)
        });
        yield_now().await; // the task enters the scope and blocks in its sleep
        h
    });
    scope.cancel(); // no runtime is running here
    let out = rt.block_on(task).unwrap().unwrap();
    assert_eq!(out, Ok(None), "the sleep was cancelled, not slept through");
    assert!(scope.cancelled_caught());
}

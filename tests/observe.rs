//! Observability (issue 14): the task dump's text and JSON against a known tree, the
//! `DumpHandle` from another thread, the metrics counters and the instrument hooks
//! with exact counts. All on the paused clock. (SIGQUIT printing is in
//! `tests/observe_sigquit.rs`: it needs a child process.)

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::sync::{Mutex, channel};
use scope_runtime::{
    CancelReason, CancelScope, Cancelled, Instrument, JoinHandle, Resources, Runtime, TaskGroup,
    TaskMeta, TaskState, WaitingOn, sleep, spawn, spawn_named, task_group,
};

fn runtime() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

/// Replaces every "spawned at FILE:LINE:COL" with "spawned at *" (the locations are
/// checked on their own, against `line!()`).
fn without_locations(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("spawned at ") {
        let (head, tail) = rest.split_at(i + "spawned at ".len());
        out.push_str(head);
        out.push('*');
        let end = tail.find(')').expect("a location ends with ')'");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// The known tree: a `server` task running a task group with a shielded cleanup, a
/// sleeping child, a child blocked on a channel, and a nested scope with a deadline.
/// Returns the server's handle, the group (to cancel it from outside), the channel's
/// sender (kept alive so the receiver stays blocked) and the line of the first spawn.
#[allow(clippy::type_complexity)]
fn known_tree(
    rt: &Runtime,
) -> (
    JoinHandle<Option<()>, scope_runtime::TaskGroupError>,
    TaskGroup,
    scope_runtime::sync::Sender<u32>,
    u32,
) {
    let (tx, rx) = channel::<u32>(1);
    let group = TaskGroup::new();
    let g = group.clone();
    let line = line!() + 2;
    let server = rt.block_on(async move {
        let server = spawn_named("server", async move {
            g.run(|tg| async move {
                tg.spawn_named("cleanup", async {
                    CancelScope::new()
                        .with_shield(true)
                        .run(async {
                            sleep(Duration::from_secs(10)).await?;
                            Ok::<_, Cancelled>(())
                        })
                        .await?;
                    Ok(())
                });
                tg.spawn_named("sleeper", async {
                    sleep(Duration::from_millis(2500)).await?;
                    Ok(())
                });
                tg.spawn_named("receiver", async move {
                    let _ = rx.recv().await?;
                    Ok(())
                });
                tg.spawn_named("deadline", async {
                    CancelScope::new()
                        .with_timeout(Duration::from_secs(4))
                        .run(async {
                            sleep(Duration::from_secs(60)).await?;
                            Ok::<_, Cancelled>(())
                        })
                        .await?;
                    Ok(())
                });
                Ok(())
            })
            .await
        });
        sleep(Duration::from_secs(1)).await.unwrap();
        Some(server) // (a handle returned bare from an async block reads as a mistake)
    });
    (server.unwrap(), group, tx, line)
}

#[test]
fn the_dump_of_a_known_tree_reads_as_a_tree() {
    let rt = runtime();
    let (server, group, tx, line) = known_tree(&rt);
    let dump = rt.dump();
    assert_eq!(
        without_locations(&dump.to_string()),
        "\
scope_runtime dump: 5 tasks (paused clock)
└─ task #2 `server` (spawned at *): waiting for its task group's children
   └─ task group
      ├─ task #3 `cleanup` (spawned at *): waiting on sleep, 9.000s left
      │  └─ cancel scope: shielded
      ├─ task #4 `sleeper` (spawned at *): waiting on sleep, 1.500s left
      ├─ task #5 `receiver` (spawned at *): waiting on recv on channel #1
      └─ task #6 `deadline` (spawned at *): waiting on sleep, 59.000s left
         └─ cancel scope: deadline in 3.000s
"
    );
    // The spawn locations are the real ones.
    let text = dump.to_string();
    assert!(
        text.contains(&format!("`server` (spawned at tests/observe.rs:{line}:")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "`cleanup` (spawned at tests/observe.rs:{}:",
            line + 2
        )),
        "{text}"
    );

    // Cancel the group from outside: every child but the shielded cleanup is woken.
    group.cancel_scope().cancel_with("shutdown");
    assert_eq!(
        without_locations(&rt.dump().to_string()),
        "\
scope_runtime dump: 5 tasks (paused clock)
└─ task #2 `server` (spawned at *): waiting for its task group's children
   └─ task group: cancelled (cancelled: shutdown)
      ├─ task #3 `cleanup` (spawned at *): waiting on sleep, 9.000s left
      │  └─ cancel scope: shielded
      ├─ task #4 `sleeper` (spawned at *): ready to run (a cancel woke it from: sleep, 1.500s left)
      ├─ task #5 `receiver` (spawned at *): ready to run (a cancel woke it from: recv on channel #1)
      └─ task #6 `deadline` (spawned at *): ready to run (a cancel woke it from: sleep, 59.000s left)
         └─ cancel scope: deadline in 3.000s, cancelled by an enclosing scope
"
    );
    // The cleanup finishes under its shield; then the group absorbs its cancel.
    let out = rt.block_on(server).unwrap();
    assert_eq!(out.unwrap(), Some(()));
    assert_eq!(rt.dump().task_count(), 0);
    assert_eq!(
        rt.dump().to_string(),
        "scope_runtime dump: 0 tasks (paused clock)\n"
    );
    drop(tx);
    assert_eq!(rt.resources(), Resources::default());
}

#[test]
fn the_dump_as_values_and_as_json() {
    let rt = runtime();
    let (_server, _group, _tx, line) = known_tree(&rt);
    let dump = rt.dump();
    let tasks = dump.tasks();
    let ids: Vec<u64> = tasks.iter().map(|t| t.id).collect();
    assert_eq!(ids, [2, 3, 4, 5, 6]);
    let receiver = tasks.iter().find(|t| t.id == 5).unwrap();
    assert_eq!(receiver.name.as_deref(), Some("receiver"));
    assert_eq!(receiver.state, TaskState::Waiting);
    assert_eq!(receiver.waits.len(), 1);
    assert_eq!(receiver.waits[0].on, WaitingOn::Recv { channel: 1 });
    assert!(!receiver.waits[0].woken_by_cancel);
    let sleeper = tasks.iter().find(|t| t.id == 4).unwrap();
    assert_eq!(
        sleeper.waits[0].on,
        WaitingOn::Sleep {
            until: Some(dump.now() + Duration::from_millis(1500))
        }
    );

    let json = dump.to_json();
    let v: serde_json::Value = serde_json::from_str(&json).expect("the dump is valid JSON");
    assert_eq!(v["version"], 1);
    assert_eq!(v["tasks"], 5);
    assert_eq!(v["paused_clock"], true);
    let server = &v["roots"][0];
    assert_eq!(server["type"], "task");
    assert_eq!(server["id"], 2);
    assert_eq!(server["name"], "server");
    assert_eq!(
        server["spawned_at"]
            .as_str()
            .unwrap()
            .rsplit_once(':')
            .unwrap()
            .0,
        format!("tests/observe.rs:{line}")
    );
    assert_eq!(server["state"], "waiting");
    let group = &server["children"][0];
    assert_eq!(group["type"], "group");
    assert_eq!(group["cancel_called"], false);
    assert_eq!(group["deadline_in"], serde_json::Value::Null);
    let children = group["children"].as_array().unwrap();
    assert_eq!(children.len(), 4);
    assert_eq!(children[0]["children"][0]["shield"], true);
    assert_eq!(children[0]["waits"][0]["on"], "sleep");
    assert_eq!(children[0]["waits"][0]["ends_in"], 9.0);
    assert_eq!(children[2]["waits"][0]["on"], "recv");
    assert_eq!(children[2]["waits"][0]["channel"], 1);
    let deadline_scope = &children[3]["children"][0];
    assert_eq!(deadline_scope["type"], "scope");
    assert_eq!(deadline_scope["deadline_in"], 3.0);
    // A wait inside a scope is listed at the scope too (and on its task's line).
    assert_eq!(deadline_scope["waits"][0]["ends_in"], 59.0);
}

#[test]
fn every_kind_of_wait_says_what_it_waits_on() {
    let rt = runtime();
    rt.block_on(async {
        let lock = Rc::new(Mutex::new(()));
        let (tx, rx) = channel::<u32>(1);
        tx.send(1).await.unwrap(); // full: the next send waits
        task_group(|tg| async move {
            let guard = lock.lock().await?;
            let l2 = lock.clone();
            tg.spawn_named("locker", async move {
                let _g = l2.lock().await?;
                Ok(())
            });
            tg.spawn_named("sender", async move {
                // Fails with the cancel at the end (the value comes back in the error).
                let _ = tx.send(2).await;
                Ok(())
            });
            let sleeper = spawn(async {
                sleep(Duration::from_secs(5)).await?;
                Ok::<_, Cancelled>(())
            });
            let id = sleeper.info().id();
            tg.spawn_named("joiner", async move {
                let _ = sleeper.await?;
                Ok(())
            });
            tg.spawn_named("blocking", async {
                scope_runtime::io::spawn_blocking(|| {
                    std::thread::sleep(Duration::from_millis(200))
                })
                .await?;
                Ok(())
            });
            tg.spawn_named("forever", async {
                sleep(Duration::MAX).await?;
                Ok(())
            });
            for _ in 0..3 {
                scope_runtime::yield_now().await;
            }
            let dump = scope_runtime::dump();
            let on = |name: &str| {
                let t = dump
                    .tasks()
                    .into_iter()
                    .find(|t| t.name.as_deref() == Some(name))
                    .unwrap_or_else(|| panic!("no task {name}"))
                    .clone();
                t.waits.iter().map(|w| w.on).collect::<Vec<_>>()
            };
            assert_eq!(on("locker"), [WaitingOn::Lock { mutex: 1 }]);
            assert_eq!(on("sender"), [WaitingOn::Send { channel: 2 }]);
            assert_eq!(on("joiner"), [WaitingOn::Join { task: id }]);
            assert_eq!(on("blocking"), [WaitingOn::BlockingJob]);
            assert_eq!(on("forever"), [WaitingOn::Sleep { until: None }]);
            let main = dump
                .tasks()
                .into_iter()
                .find(|t| t.id == 1)
                .unwrap()
                .clone();
            assert_eq!(main.state, TaskState::Running);
            let text = dump.to_string();
            assert!(text.contains("waiting on lock on Mutex #1"), "{text}");
            assert!(text.contains("waiting on join task #"), "{text}");
            assert!(text.contains("waiting on blocking-pool job"), "{text}");
            assert!(text.contains("waiting on sleep forever"), "{text}");
            drop(guard);
            tg.cancel();
            drop(rx);
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_socket_wait_names_its_fd_and_address() {
    let rt = runtime();
    rt.block_on(async {
        let listener = scope_runtime::io::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A client that connects and then waits for a reply that never comes.
        let client = scope_runtime::io::TcpStream::connect(addr).await.unwrap();
        let (conn, _) = listener.accept().await.unwrap();
        task_group(|tg| async move {
            tg.spawn_named("acceptor", async move {
                let _ = listener.accept().await?;
                Ok(())
            });
            tg.spawn_named("client", async move {
                let mut buf = [0u8; 8];
                let _ = client.read(&mut buf).await?;
                Ok(())
            });
            scope_runtime::yield_now().await;
            let dump = scope_runtime::dump();
            let waits = |name: &str| {
                dump.tasks()
                    .into_iter()
                    .find(|t| t.name.as_deref() == Some(name))
                    .unwrap()
                    .waits
                    .clone()
            };
            let acceptor = waits("acceptor");
            assert!(
                matches!(acceptor[..], [scope_runtime::Wait { on: WaitingOn::Readable { fd }, .. }] if fd >= 0),
                "{acceptor:?}"
            );
            assert_eq!(acceptor[0].detail.as_deref(), Some(&*format!("local {addr}")));
            let client = waits("client");
            assert_eq!(client[0].detail.as_deref(), Some(&*format!("peer {addr}")));
            let text = dump.to_string();
            assert!(text.contains(&format!("(local {addr})")), "{text}");
            let json = dump.to_json();
            assert!(json.contains(&format!(r#""detail":"peer {addr}""#)), "{json}");
            tg.cancel();
            drop(conn);
            Ok(())
        })
        .await
        .unwrap();
    });
}

#[test]
fn a_dump_handle_asks_from_another_thread() {
    let rt = Runtime::new().unwrap(); // real clock: the other thread's request is real
    let handle = rt.dump_handle();
    let asker = std::thread::spawn(move || handle.request(Duration::from_secs(20)));
    let dump = rt.block_on(async {
        let (_tx, rx) = channel::<()>(1);
        let blocked = spawn_named("blocked", async move {
            rx.recv().await?;
            Ok::<_, Cancelled>(())
        });
        // Sleeps of real time, bounded: the asker is answered at the next turn.
        for _ in 0..2000 {
            if asker.is_finished() {
                break;
            }
            sleep(Duration::from_millis(5)).await.unwrap();
        }
        blocked.cancel();
        asker.join().unwrap()
    });
    let dump = dump.expect("the runtime answered within 10 s");
    let text = dump.to_string();
    assert!(text.contains("task #2 `blocked`"), "{text}");
    assert!(text.contains("waiting on recv on channel #1"), "{text}");
    assert!(text.contains("`main`"), "{text}");

    // A runtime that is gone answers at once with None.
    let handle = rt.dump_handle();
    drop(rt);
    assert!(handle.request(Duration::from_secs(60)).is_none());
}

#[test]
fn metrics_count_exactly() {
    let rt = runtime();
    let m = rt.metrics();
    assert_eq!((m.tasks_spawned, m.polls, m.timers_armed), (0, 0, 0));
    rt.block_on(async {
        task_group(|tg| async move {
            for i in 0..3u64 {
                tg.spawn(async move {
                    sleep(Duration::from_secs(i + 1)).await?;
                    Ok(())
                });
            }
            Ok(())
        })
        .await
        .unwrap();
        // One scope cancelled by its deadline.
        let r = CancelScope::new()
            .with_timeout(Duration::from_secs(1))
            .run(async { sleep(Duration::from_secs(10)).await })
            .await;
        assert_eq!(r, Ok(None));
    });
    let m = rt.metrics();
    assert_eq!(m.live_tasks, 0);
    assert_eq!(m.tasks_spawned, 4, "3 children + the block_on task");
    // Children: the first poll and the one after their sleep. Main: the first poll
    // (the body spawns and returns; the group waits), the one after the last child
    // left (the group closes, the scope's sleep waits), the one after the deadline.
    assert_eq!(m.polls, 3 * 2 + 3, "{m:?}");
    assert_eq!(
        m.timers_armed,
        3 + 2,
        "three sleeps, the scope's sleep and its deadline"
    );
    assert_eq!(
        m.timers_fired, 4,
        "three sleeps and the deadline (the scope's sleep was removed)"
    );
    assert_eq!(m.scopes_cancelled, 1);
    assert_eq!(m.remote_wakes, 0);
    assert_eq!(m.io_events, 0);
    assert!(m.reactor_turns >= 4, "{m:?}");
    // Three spawns, three sleeps ending, the last child waking the group's host, the
    // deadline waking main: every poll but main's first follows one.
    assert_eq!(m.local_wakes, 8, "{m:?}");
}

/// Records every hook call as a line.
#[derive(Default)]
struct Recorder(RefCell<Vec<String>>);

impl Instrument for Recorder {
    fn task_spawned(&self, task: &TaskMeta) {
        let name = task.name.as_deref().unwrap_or("-");
        self.0
            .borrow_mut()
            .push(format!("spawned {} {name}", task.id));
    }
    fn task_scheduled(&self, task: u64) {
        self.0.borrow_mut().push(format!("scheduled {task}"));
    }
    fn before_poll(&self, task: u64) {
        self.0.borrow_mut().push(format!("poll {task}"));
    }
    fn after_poll(&self, task: u64, finished: bool) {
        self.0
            .borrow_mut()
            .push(format!("polled {task} {finished}"));
    }
    fn task_exited(&self, task: u64) {
        self.0.borrow_mut().push(format!("exited {task}"));
    }
    fn scope_cancelled(&self, reason: &CancelReason) {
        self.0.borrow_mut().push(format!("cancelled: {reason}"));
    }
}

#[test]
fn instrument_hooks_see_each_step_in_order() {
    let rec = Rc::new(Recorder::default());
    let rt = Runtime::builder()
        .paused_clock(true)
        .instrument(rec.clone())
        .build()
        .unwrap();
    rt.block_on(async {
        let h = spawn_named("child", async {
            sleep(Duration::from_secs(1)).await?;
            Ok::<_, Cancelled>(())
        });
        h.await.unwrap().unwrap();
        let scope = CancelScope::new();
        let _ = scope
            .run(async {
                scope.cancel_with("enough");
                Ok::<_, Cancelled>(())
            })
            .await;
    });
    let log = rec.0.borrow().join("\n");
    assert_eq!(
        log,
        "\
spawned 1 main
poll 1
spawned 2 child
scheduled 2
polled 1 false
poll 2
polled 2 false
scheduled 2
poll 2
scheduled 1
polled 2 true
exited 2
poll 1
cancelled: cancelled: enough
polled 1 true
exited 1"
    );
}

#[test]
fn io_waits_are_instrumented_and_counted() {
    #[derive(Default)]
    struct Waits(RefCell<Vec<(Option<Duration>, usize)>>);
    impl Instrument for Waits {
        fn before_io_wait(&self, timeout: Option<Duration>) {
            self.0.borrow_mut().push((timeout, usize::MAX));
        }
        fn after_io_wait(&self, events: usize) {
            self.0.borrow_mut().last_mut().unwrap().1 = events;
        }
    }
    let w = Rc::new(Waits::default());
    let rt = Runtime::builder()
        .paused_clock(true)
        .instrument(w.clone())
        .build()
        .unwrap();
    rt.block_on(async { sleep(Duration::from_secs(1)).await.unwrap() });
    // Paused clock: one look (timeout zero, no event), then the clock jumps.
    assert_eq!(*w.0.borrow(), [(Some(Duration::ZERO), 0)]);
    assert_eq!(rt.metrics().reactor_turns, 1);
}

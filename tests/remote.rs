//! `RemoteHandle`: running code on a runtime from other threads (Trio's
//! `from_thread`), getting results back, cancelling the task a thread started, and
//! never hanging when the runtime is gone or the call is made on its own thread.

use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::spawn_blocking;
use scope_runtime::sync::channel;
use scope_runtime::{Cancelled, Outcome, RemoteError, Runtime, sleep};

/// Runs `main` on `rt` while `thread` runs, until the thread is done; returns its result.
fn with_thread<R: Send + 'static>(rt: &Runtime, thread: impl FnOnce() -> R + Send + 'static) -> R {
    rt.block_on(async move {
        spawn_blocking(thread)
            .await
            .expect("the thread's work finishes")
    })
}

#[test]
fn run_sync_runs_on_the_runtime_thread() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    let runtime_thread = std::thread::current().id();
    let (tx, rx) = channel::<u32>(1);
    let got = with_thread(&rt, move || {
        remote
            .run_sync(move || {
                tx.try_send(7).unwrap();
                std::thread::current().id()
            })
            .unwrap()
    });
    assert_eq!(got, runtime_thread);
    assert_eq!(rx.try_recv(), Ok(7));
}

#[test]
fn run_returns_the_outcome_of_a_non_send_future() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    let out = with_thread(&rt, move || {
        remote.run(|| async {
            let local = Rc::new(20); // not Send: built on the runtime's thread
            sleep(Duration::from_millis(5)).await?;
            Ok::<_, Cancelled>(*local * 2)
        })
    });
    assert!(matches!(out, Ok(Outcome::Ok(40))), "{out:?}");
}

#[test]
fn cancel_from_the_thread_winds_the_task_down_with_its_cleanup() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    let (tx, rx) = channel::<&'static str>(1);
    let out = with_thread(&rt, move || {
        let call = remote.spawn(move || async move {
            let r = sleep(Duration::from_secs(3600)).await;
            tx.try_send("cleanup ran").unwrap();
            r
        });
        assert!(
            call.wait_timeout(Duration::from_millis(50)).is_none(),
            "still sleeping"
        );
        call.cancel();
        call.wait()
    });
    assert!(matches!(out, Ok(Outcome::Cancelled(_))), "{out:?}");
    assert_eq!(rx.try_recv(), Ok("cleanup ran"));
}

#[test]
fn a_panicking_closure_is_reported_and_the_runtime_goes_on() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    let (first, second) = with_thread(&rt, move || {
        let first = remote.run_sync(|| -> u8 { panic!("remote closure panics") });
        let second = remote.run_sync(|| 5u8);
        (first, second)
    });
    assert!(matches!(first, Err(RemoteError::Panicked(_))), "{first:?}");
    assert!(matches!(second, Ok(5)), "{second:?}");
}

#[test]
fn waiting_on_the_runtime_thread_is_an_error_not_a_hang() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    rt.block_on(async move {
        assert!(matches!(
            remote.run_sync(|| ()),
            Err(RemoteError::OnRuntimeThread)
        ));
        let call = remote.spawn(|| async { Ok::<_, Cancelled>(1) });
        assert!(matches!(call.wait(), Err(RemoteError::OnRuntimeThread)));
    });
}

#[test]
fn a_dropped_runtime_answers_every_waiting_call() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    // Not running (no block_on): the requests queue up.
    let waiter = std::thread::spawn(move || {
        let call = remote.spawn(|| async { Ok::<_, Cancelled>(1) });
        let sync = remote.run_sync(|| 2);
        (call.wait(), sync, remote.run_sync(|| 3))
    });
    std::thread::sleep(Duration::from_millis(50));
    drop(rt);
    let (call, sync, late) = waiter.join().unwrap();
    assert!(matches!(call, Err(RemoteError::RuntimeGone)), "{call:?}");
    assert!(matches!(sync, Err(RemoteError::RuntimeGone)), "{sync:?}");
    assert!(matches!(late, Err(RemoteError::RuntimeGone)), "{late:?}");
}

#[test]
fn a_task_dropped_unfinished_at_shutdown_answers_gone() {
    let rt = Runtime::new().unwrap();
    let remote = rt.remote();
    let call = remote.spawn(|| async {
        sleep(Duration::from_secs(3600)).await?;
        Ok::<_, Cancelled>(())
    });
    // Run once so the task starts, then drop the runtime with it sleeping.
    rt.block_on(async {
        sleep(Duration::from_millis(10)).await.unwrap();
    });
    drop(rt);
    assert!(matches!(call.wait(), Err(RemoteError::RuntimeGone)));
}

#[test]
fn the_handles_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<scope_runtime::RemoteHandle>();
    send::<scope_runtime::RemoteCall<u8, Cancelled>>();
}

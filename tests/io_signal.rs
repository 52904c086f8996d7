//! Signals on the reactor: Ctrl-C (SIGINT sent to ourselves) cancelling a task group,
//! other signals, coalescing, cancellation of a pending `recv`.
//!
//! Every listener is created (which installs the handler) **before** the signal is
//! raised, so the default action (terminating this test process) never runs.

use std::time::Duration;

use scope_runtime::io::signal::{self, Signal, SignalKind};
use scope_runtime::io::{TcpListener, TcpStream};
use scope_runtime::{BoxError, Runtime, fail_after, move_on_after, sleep, task_group};

const SAFETY_NET: Duration = Duration::from_secs(30);

/// Sends `kind` to this thread: `raise` returns only after the handler has run, so
/// the delivery is counted before the next line (unlike `kill`, which may deliver it
/// to another thread a moment later).
fn raise(kind: SignalKind) {
    // SAFETY: `raise` with a valid signal number has no memory-safety preconditions;
    // every test installs the crate's handler before calling this.
    let rc = unsafe { libc::raise(kind.as_raw()) };
    assert_eq!(rc, 0, "raise failed: {}", std::io::Error::last_os_error());
}

#[scope_runtime::test]
async fn ctrl_c_cancels_a_task_group_that_drains_cleanly() {
    fail_after(SAFETY_NET, async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        let ctrl_c = signal::ctrl_c(); // the handler is installed here
        let res = task_group(|tg| async move {
            let stop = tg.clone();
            tg.spawn(async move {
                ctrl_c.await?;
                stop.cancel();
                Ok(())
            });
            // A server blocked in accept, and a connection blocked in read.
            tg.spawn(async move {
                loop {
                    let (s, _) = l.accept().await?;
                    let mut buf = [0u8; 8];
                    while s.read(&mut buf).await? > 0 {}
                }
            });
            let _client = TcpStream::connect(addr).await?;
            sleep(Duration::from_millis(20)).await?;
            raise(SignalKind::INTERRUPT);
            // The body waits here until the group is cancelled.
            sleep(Duration::from_secs(3600)).await?;
            Ok::<_, BoxError>(())
        })
        .await;
        assert!(
            matches!(res, Ok(None)),
            "the group absorbed its own cancel: {res:?}"
        );
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn signals_are_delivered_and_coalesced() {
    fail_after(SAFETY_NET, async {
        let mut usr1 = Signal::new(SignalKind::USER_DEFINED1)?;
        let mut usr1_again = Signal::new(SignalKind::USER_DEFINED1)?;
        raise(SignalKind::USER_DEFINED1);
        raise(SignalKind::USER_DEFINED1);
        usr1.recv().await?;
        // Both deliveries happened before this second recv: coalesced into the first.
        assert!(
            move_on_after(Duration::from_millis(50), usr1.recv())
                .await?
                .is_none()
        );
        // Every listener sees the delivery.
        usr1_again.recv().await?;
        raise(SignalKind::USER_DEFINED1);
        usr1.recv().await?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_cancelled_recv_does_not_lose_the_delivery() {
    fail_after(SAFETY_NET, async {
        let mut usr2 = Signal::new(SignalKind::USER_DEFINED2)?;
        assert!(
            move_on_after(Duration::from_millis(20), usr2.recv())
                .await?
                .is_none()
        );
        raise(SignalKind::USER_DEFINED2);
        let scope = scope_runtime::CancelScope::new();
        scope.cancel();
        assert!(scope.run(usr2.recv()).await?.is_none());
        usr2.recv().await?; // still reported
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[test]
fn listeners_on_two_runtimes_both_hear_a_signal() {
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = std::sync::Arc::new(std::sync::Barrier::new(2));
    let r2 = ready.clone();
    let other = std::thread::spawn(move || {
        Runtime::new().unwrap().block_on(async {
            let mut s = Signal::new(SignalKind::HANGUP).unwrap();
            r2.wait();
            fail_after(SAFETY_NET, s.recv()).await.unwrap();
            tx.send(()).unwrap();
        })
    });
    Runtime::new().unwrap().block_on(async {
        let mut s = Signal::new(SignalKind::HANGUP).unwrap();
        ready.wait();
        raise(SignalKind::HANGUP);
        fail_after(SAFETY_NET, s.recv()).await.unwrap();
    });
    rx.recv_timeout(SAFETY_NET).unwrap();
    other.join().unwrap();
}

#[scope_runtime::test]
async fn uncatchable_signals_are_refused() {
    for raw in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, 0, 1000] {
        let err = Signal::new(SignalKind::from_raw(raw)).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "signal {raw}");
    }
}

#[scope_runtime::test]
async fn listener_pipes_are_reused_after_drop() {
    fail_after(SAFETY_NET, async {
        // More listeners over time than there are pipe slots at once.
        for _ in 0..300 {
            let s = Signal::new(SignalKind::WINDOW_CHANGE)?;
            drop(s);
        }
        let mut s = Signal::new(SignalKind::WINDOW_CHANGE)?;
        raise(SignalKind::WINDOW_CHANGE);
        s.recv().await?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

//! Faults on real I/O (issue 16): a peer that resets the connection (`SO_LINGER` 0)
//! while we read or write, and a signal storm from several threads. Each operation
//! ends with a clear error or its value — never a hang, never a crash (SIGPIPE).

use std::io::Write;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use scope_runtime::io::signal::{Signal, SignalKind};
use scope_runtime::io::{TcpListener, TcpStream};
use scope_runtime::{BoxError, fail_after, sleep};

const SAFETY_NET: Duration = Duration::from_secs(30);

/// Makes closing `s` send a RST instead of a FIN.
fn set_linger_zero(s: &std::net::TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd, a pointer to a live `linger` and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt: {}", std::io::Error::last_os_error());
}

/// Our stream and the peer's (a plain blocking std socket).
async fn pair() -> std::io::Result<(TcpStream, std::net::TcpStream)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let peer = std::net::TcpStream::connect(l.local_addr()?)?;
    let (ours, _) = l.accept().await?;
    Ok((ours, peer))
}

#[scope_runtime::test]
async fn a_peer_reset_during_a_blocked_read_fails_it() {
    fail_after(SAFETY_NET, async {
        let (ours, mut peer) = pair().await?;
        peer.write_all(b"hello")?;
        let mut buf = [0; 5];
        let mut got = 0;
        while got < 5 {
            got += ours.read(&mut buf[got..]).await?;
        }
        assert_eq!(&buf, b"hello", "what arrived before the reset is kept");
        set_linger_zero(&peer);
        let resetter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50)); // the read below blocks first
            drop(peer);
        });
        let r = ours.read(&mut buf).await;
        resetter.join().unwrap();
        let e = r.expect_err("a reset is an error, not a clean end");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_peer_reset_during_writes_fails_them_without_sigpipe() {
    fail_after(SAFETY_NET, async {
        let (ours, peer) = pair().await?;
        set_linger_zero(&peer);
        drop(peer);
        sleep(Duration::from_millis(20)).await?; // let the RST arrive
        let chunk = vec![7u8; 64 * 1024];
        // The first writes may still be accepted by the kernel; within a few the reset
        // (or the broken pipe after it) is reported, and the process is not killed.
        let mut err = None;
        for _ in 0..64 {
            match ours.write(&chunk).await {
                Ok(_) => continue,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        let e = err.expect("writing to a reset connection fails");
        assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
            ),
            "{e}"
        );
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// Four threads send SIGUSR2 to the process as fast as they can while a task keeps
/// receiving: deliveries coalesce, the task is never stuck, and once the storm is over
/// a further signal is still delivered.
#[scope_runtime::test]
async fn a_signal_storm_is_coalesced_and_delivery_goes_on() {
    fail_after(SAFETY_NET, async {
        let mut sig = Signal::new(SignalKind::USER_DEFINED2)?;
        let stop = Arc::new(AtomicBool::new(false));
        let storm: Vec<_> = (0..4)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut sent = 0u32;
                    while !stop.load(Ordering::Relaxed) && sent < 20_000 {
                        // SAFETY: `kill` of our own pid with a valid signal whose
                        // handler is installed (the `Signal` above).
                        unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
                        sent += 1;
                    }
                    sent
                })
            })
            .collect();
        let mut deliveries = 0u32;
        while deliveries < 50 {
            sig.recv().await?;
            deliveries += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let sent: u32 = storm.into_iter().map(|t| t.join().unwrap()).sum();
        assert!(
            deliveries <= sent,
            "coalesced: {deliveries} deliveries of {sent} signals"
        );
        // Whatever was pending is consumed by at most one more recv; then a new
        // signal is delivered again.
        let _ = scope_runtime::move_on_after(Duration::from_millis(20), sig.recv()).await;
        // SAFETY: as above.
        unsafe { libc::kill(libc::getpid(), libc::SIGUSR2) };
        sig.recv().await?;
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

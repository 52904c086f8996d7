//! UDP and Unix-domain sockets on loopback / anonymous pairs / temporary paths:
//! round trips, cancellation with nothing consumed, bad input.

use std::io::{Cursor, ErrorKind};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::{
    UdpSocket, UnixDatagram, UnixListener, UnixStream, read_exact, read_to_end, write_all,
};
use scope_runtime::{CancelError, CancelScope, fail_after, move_on_after, sleep, spawn};

const SAFETY_NET: Duration = Duration::from_secs(30);

/// A fresh temporary directory for socket files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("sr-io-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[scope_runtime::test]
async fn udp_round_trip_connected_and_not() {
    fail_after(SAFETY_NET, async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = UdpSocket::bind("127.0.0.1:0").await?;
        let (aa, ba) = (a.local_addr()?, b.local_addr()?);
        for i in 0..20u8 {
            a.send_to(&[i; 32], ba).await?;
            let mut buf = [0u8; 64];
            let (n, from) = b.recv_from(&mut buf).await?;
            assert_eq!((n, from, buf[0]), (32, aa, i));
        }
        a.connect(ba).await?;
        b.connect(aa).await?;
        a.send(b"connected").await?;
        let mut buf = [0u8; 64];
        let n = b.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"connected");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn a_cancelled_udp_receive_takes_no_datagram() {
    fail_after(SAFETY_NET, async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = Rc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let scope = CancelScope::new();
        let (sc, b2) = (scope.clone(), b.clone());
        let receiver = spawn(async move {
            let mut buf = [0u8; 16];
            let r = sc.run(async { b2.recv_from(&mut buf).await }).await?;
            Ok::<_, std::io::Error>(r.is_none())
        });
        sleep(Duration::from_millis(20)).await.unwrap(); // the receiver blocks
        a.send_to(b"dgram", b.local_addr()?).await?;
        scope.cancel(); // before the receiver runs again
        assert!(
            receiver.await.unwrap().unwrap(),
            "the receive was cancelled"
        );
        let mut buf = [0u8; 16];
        let (n, _) = b.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"dgram", "the datagram was still there");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn two_tasks_can_wait_on_one_udp_socket() {
    fail_after(SAFETY_NET, async {
        let a = UdpSocket::bind("127.0.0.1:0").await?;
        let b = Rc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let mut handles = Vec::new();
        for _ in 0..2 {
            let b = b.clone();
            handles.push(spawn(async move {
                let mut buf = [0u8; 8];
                let (n, _) = b.recv_from(&mut buf).await?;
                Ok::<_, std::io::Error>(buf[..n].to_vec())
            }));
        }
        sleep(Duration::from_millis(20)).await.unwrap(); // both wait
        a.send_to(b"one", b.local_addr()?).await?;
        a.send_to(b"two", b.local_addr()?).await?;
        let mut got = Vec::new();
        for h in handles {
            got.push(h.await.unwrap().unwrap());
        }
        got.sort();
        assert_eq!(got, [b"one".to_vec(), b"two".to_vec()]);
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn udp_bad_input() {
    let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    assert_eq!(
        UdpSocket::bind(a.local_addr().unwrap())
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AddrInUse
    );
    // send on an unconnected socket: a clear error.
    assert!(a.send(b"x").await.is_err());
    // A datagram to a closed port, then a receive on the connected socket: refused.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    a.connect(closed).await.unwrap();
    a.send(b"x").await.unwrap();
    let mut buf = [0u8; 4];
    let r = move_on_after(Duration::from_secs(5), a.recv(&mut buf)).await;
    assert_eq!(r.unwrap_err().kind(), ErrorKind::ConnectionRefused);
}

#[scope_runtime::test]
async fn unix_stream_listener_round_trip() {
    fail_after(SAFETY_NET, async {
        let dir = TempDir::new("uds");
        let path = dir.path("s");
        let l = UnixListener::bind(&path)?;
        assert_eq!(l.local_addr()?.as_pathname(), Some(path.as_path()));
        assert_eq!(
            UnixListener::bind(&path).unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        let c = UnixStream::connect(&path).await?;
        let (s, _) = l.accept().await?;
        write_all(&mut &c, &mut Cursor::new(b"over unix")).await?;
        let mut got = Cursor::new([0u8; 9]);
        read_exact(&mut &s, &mut got).await?;
        assert_eq!(&got.into_inner(), b"over unix");
        drop(c);
        let mut rest = Vec::new();
        assert_eq!(read_to_end(&mut &s, &mut rest).await?, 0);
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn unix_cancellation_of_accept_and_read_loses_nothing() {
    fail_after(SAFETY_NET, async {
        let dir = TempDir::new("udsc");
        let path = dir.path("s");
        let l = UnixListener::bind(&path)?;
        assert!(
            move_on_after(Duration::from_millis(20), l.accept())
                .await?
                .is_none()
        );
        let c = UnixStream::connect(&path).await?;
        let (s, _) = l.accept().await?;
        let mut buf = [0u8; 4];
        assert!(
            move_on_after(Duration::from_millis(20), s.read(&mut buf))
                .await?
                .is_none()
        );
        c.write(b"data").await?;
        let scope = CancelScope::new();
        scope.cancel();
        assert!(scope.run(s.read(&mut buf)).await?.is_none());
        assert_eq!(s.read(&mut buf).await?, 4);
        assert_eq!(&buf, b"data");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn unix_bad_input() {
    let dir = TempDir::new("udsb");
    let err = UnixStream::connect(dir.path("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // A socket file with no listener behind it: refused.
    let path = dir.path("stale");
    drop(UnixListener::bind(&path).unwrap());
    let err = UnixStream::connect(&path).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(err.as_cancelled().is_none());
    // Peer gone: read is EOF, write is EPIPE.
    let (a, b) = UnixStream::pair().unwrap();
    drop(b);
    let mut buf = [0u8; 1];
    assert_eq!(a.read(&mut buf).await.unwrap(), 0);
    assert_eq!(
        a.write(b"x").await.unwrap_err().kind(),
        ErrorKind::BrokenPipe
    );
}

#[scope_runtime::test]
async fn unix_datagrams_by_path_and_pair() {
    fail_after(SAFETY_NET, async {
        let dir = TempDir::new("udg");
        let path = dir.path("d");
        let server = UnixDatagram::bind(&path)?;
        let client = UnixDatagram::unbound()?;
        client.send_to(b"to path", &path).await?;
        let mut buf = [0u8; 16];
        let (n, from) = server.recv_from(&mut buf).await?;
        assert_eq!(&buf[..n], b"to path");
        assert!(from.is_unnamed());
        client.connect(&path)?;
        client.send(b"connected").await?;
        let n = server.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"connected");

        let (a, b) = UnixDatagram::pair()?;
        assert!(
            move_on_after(Duration::from_millis(20), b.recv(&mut buf))
                .await?
                .is_none()
        );
        a.send(b"after cancel").await?;
        let n = b.recv(&mut buf).await?;
        assert_eq!(&buf[..n], b"after cancel");
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

/// Closing a Unix stream (or its write half) after the peer closed first is `Ok`:
/// where the kernel answers `NotConnected` (macOS), it is mapped, as for TCP.
#[scope_runtime::test]
async fn unix_close_after_the_peer_closed_first_is_ok() {
    use futures::AsyncWriteExt;
    fail_after(SAFETY_NET, async {
        let (mut a, b) = UnixStream::pair()?;
        drop(b);
        a.shutdown(std::net::Shutdown::Both)?;
        a.close().await?;
        let (a, b) = UnixStream::pair()?;
        drop(b);
        let (_r, mut w) = a.into_split();
        w.shutdown()?;
        w.close().await?;
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

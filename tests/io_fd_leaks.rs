//! No file descriptor leaks: success paths, error paths (bind to a used port, connect
//! refused, peer reset, failed Unix connect), cancelled operations, dropped futures,
//! split halves, the TCP helpers (a cancelled Happy Eyeballs race, `TcpSocket`), and the
//! runtime itself. Counts the entries of `/proc/self/fd`.
//!
//! One `#[test]` only: tests of one binary run on parallel threads, and another
//! test's sockets would disturb the count.

use std::io::Cursor;
use std::net::Shutdown;
use std::time::Duration;

use scope_runtime::io::{
    TcpConnect, TcpListener, TcpSocket, TcpStream, UdpSocket, UnixDatagram, UnixListener,
    UnixStream, fs, lookup_host, read_exact, spawn_blocking, write_all,
};
use scope_runtime::{CancelScope, Runtime, fail_after, move_on_after, sleep};

fn open_fds() -> usize {
    fd_list().len()
}

/// The open fds and what they point to (for the failure message).
fn fd_list() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(|e| e.ok())
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!("{}->{target}", e.file_name().to_string_lossy())
        })
        .collect();
    v.sort();
    v
}

async fn scenarios() -> std::io::Result<()> {
    // TCP success path with split halves.
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    let c = TcpStream::connect(addr).await?;
    let (s, _) = l.accept().await?;
    let (r, w) = s.into_split();
    write_all(&mut &c, &mut Cursor::new(b"ping")).await?;
    let mut got = Cursor::new([0u8; 4]);
    read_exact(&mut &r, &mut got).await?;
    w.write(b"pong").await?;
    drop((r, w, c));

    // Errors: used port, refused connect, unresolvable name.
    assert!(TcpListener::bind(addr).await.is_err());
    let closed = TcpListener::bind("127.0.0.1:0").await?.local_addr()?;
    assert!(TcpStream::connect(closed).await.is_err());
    assert!(TcpStream::connect("no-such-host.invalid:1").await.is_err());

    // Peer reset.
    let peer = std::net::TcpStream::connect(addr)?;
    let (s, _) = l.accept().await?;
    s.write(b"unread").await?;
    sleep(Duration::from_millis(10)).await.unwrap();
    drop(peer);
    let mut buf = [0u8; 8];
    assert!(s.read(&mut buf).await.is_err());
    drop(s);

    // Cancelled accept, read, connect; a connect future dropped half-way.
    assert!(
        move_on_after(Duration::from_millis(5), l.accept())
            .await?
            .is_none()
    );
    let c = TcpStream::connect(addr).await?;
    let (s, _) = l.accept().await?;
    assert!(
        move_on_after(Duration::from_millis(5), s.read(&mut buf))
            .await?
            .is_none()
    );
    c.shutdown(Shutdown::Both)?;
    drop((c, s));
    let full = TcpListener::bind_with_backlog("127.0.0.1:0", 0).await?;
    let full_addr = full.local_addr()?;
    let mut fillers = Vec::new();
    while let Some(c) =
        move_on_after(Duration::from_millis(200), TcpStream::connect(full_addr)).await?
    {
        fillers.push(c);
        assert!(fillers.len() < 16, "the accept queue never filled up");
    }
    let scope = CancelScope::new();
    scope.cancel();
    assert!(scope.run(TcpStream::connect(full_addr)).await?.is_none());
    drop((fillers, full, l));

    // UDP.
    let a = UdpSocket::bind("127.0.0.1:0").await?;
    assert!(UdpSocket::bind(a.local_addr()?).await.is_err());
    assert!(
        move_on_after(Duration::from_millis(5), a.recv_from(&mut buf))
            .await?
            .is_none()
    );
    drop(a);

    // Unix.
    let dir = std::env::temp_dir().join(format!("sr-io-fd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("s");
    let ul = UnixListener::bind(&path)?;
    assert!(UnixListener::bind(&path).is_err());
    let uc = UnixStream::connect(&path).await?;
    let (us, _) = ul.accept().await?;
    let (ur, uw) = uc.into_split();
    uw.write(b"x").await?;
    assert_eq!(us.read(&mut buf).await?, 1);
    drop((ur, uw, us, ul));
    assert!(UnixStream::connect(dir.join("missing")).await.is_err());
    assert!(
        UnixStream::connect(&path).await.is_err(),
        "stale socket file: refused"
    );
    let (d1, d2) = UnixDatagram::pair()?;
    d1.send(b"d").await?;
    assert_eq!(d2.recv(&mut buf).await?, 1);
    drop((d1, d2));
    let (p1, p2) = UnixStream::pair()?;
    drop(p2);
    assert!(p1.write(b"x").await.is_err());
    drop(p1);

    // Files on the pool.
    let f = dir.join("f");
    fs::write(&f, b"abc").await?;
    let mut file = fs::File::open(&f).await?;
    assert_eq!(file.read(&mut buf).await?, 3);
    drop(file);
    assert!(fs::File::open(dir.join("missing")).await.is_err());
    std::fs::remove_dir_all(&dir)?;

    // TCP helpers: Happy Eyeballs cancelled with its attempts half-open (a full accept
    // queue does not answer), winning beside a silent address, failing everywhere;
    // TcpSocket's error paths.
    let silent = TcpListener::bind_with_backlog("127.0.0.1:0", 0).await?;
    let sa = silent.local_addr()?;
    let mut fillers = Vec::new();
    while let Some(c) = move_on_after(Duration::from_millis(100), TcpStream::connect(sa)).await? {
        fillers.push(c);
        if fillers.len() > 16 {
            break;
        }
    }
    let race = TcpConnect::addrs([sa, sa]).delay(Duration::from_millis(5));
    drop(move_on_after(Duration::from_millis(30), race.connect()).await?);
    let good = TcpListener::bind("127.0.0.1:0").await?;
    let won = TcpConnect::addrs([sa, good.local_addr()?])
        .delay(Duration::from_millis(5))
        .connect()
        .await?;
    drop((won, good.accept().await?, good));
    assert!(TcpConnect::addrs([closed, closed]).connect().await.is_err());
    drop((fillers, silent));
    let taken = TcpListener::bind("127.0.0.1:0").await?;
    let ts = TcpSocket::new_v4()?;
    assert!(ts.bind(taken.local_addr()?).is_err(), "the port is taken");
    drop(taken);
    assert!(ts.connect(closed).await.is_err());
    let ts = TcpSocket::new_v4()?;
    ts.bind("127.0.0.1:0".parse().unwrap())?;
    drop(ts.listen(4)?);
    Ok(())
}

/// Waits (up to 2 s) for the count to come back to `expected`, and returns it. Pool
/// threads drop a waker (and with it, possibly the last reference to a finished
/// runtime's eventfd) a moment after they hand over a result, and may still be
/// closing a file a job opened.
fn settled_count(expected: usize) -> usize {
    let mut now = open_fds();
    for _ in 0..200 {
        if now == expected {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
        now = open_fds();
    }
    now
}

#[test]
fn no_file_descriptor_leaks() {
    // Warm up what lives for the whole process (resolver configuration, pool threads)
    // so it is part of the baseline.
    Runtime::new().unwrap().block_on(async {
        let _ = lookup_host("localhost:1").await;
        let _ = lookup_host("no-such-host.invalid:1").await;
        spawn_blocking(|| ()).await.unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    let baseline = open_fds();
    for round in 0..3 {
        let rt = Runtime::new().unwrap();
        let with_runtime = open_fds();
        let before = fd_list();
        rt.block_on(async {
            fail_after(Duration::from_secs(60), scenarios())
                .await
                .unwrap();
        });
        let now = settled_count(with_runtime);
        assert_eq!(
            now,
            with_runtime,
            "round {round}: fds leaked by the I/O scenarios: before {before:?}, after {:?}",
            fd_list()
        );
        drop(rt);
        assert_eq!(
            settled_count(baseline),
            baseline,
            "round {round}: the runtime leaked fds: {:?}",
            fd_list()
        );
    }
}

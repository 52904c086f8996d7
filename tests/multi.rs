//! `Cores`: one runtime per thread under one cancel tree. A cancel from one core
//! reaches all, a failing (or panicking) core cancels the others and every failure is
//! reported, a `MultiCancel` works from any thread, and `remote(k)` runs code on core k.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use scope_runtime::{CoreFailure, Cores, sleep};

const HOUR: Duration = Duration::from_secs(3600);

/// Counts the cores whose hour-long sleep was cancelled.
fn sleeper(
    cancelled: Arc<AtomicUsize>,
) -> impl std::future::Future<Output = Result<(), scope_runtime::BoxError>> + 'static {
    let cancelled = cancelled.clone();
    async move {
        let r = sleep(HOUR).await;
        if r.is_err() {
            cancelled.fetch_add(1, Ordering::SeqCst);
        }
        r?;
        Ok(())
    }
}

#[test]
fn a_cancel_from_one_core_reaches_every_core() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    let t0 = Instant::now();
    Cores::new(3)
        .run(move |core| {
            let c = c.clone();
            async move {
                assert_eq!(core.count(), 3);
                if core.index() == 2 {
                    sleep(Duration::from_millis(20)).await?;
                    core.cancel_all();
                }
                sleeper(c.clone()).await
            }
        })
        .expect("a cancelled multi-core group ends cleanly");
    assert_eq!(cancelled.load(Ordering::SeqCst), 3);
    assert!(t0.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_failing_core_cancels_the_others_and_is_reported() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    let err = Cores::new(2)
        .run(move |core| {
            let c = c.clone();
            async move {
                if core.index() == 1 {
                    sleep(Duration::from_millis(20)).await?;
                    return Err("core 1 broke".into());
                }
                sleeper(c.clone()).await
            }
        })
        .unwrap_err();
    assert_eq!(cancelled.load(Ordering::SeqCst), 1, "core 0 was cancelled");
    let failures = err.failures();
    assert_eq!(failures.len(), 1, "{err}");
    assert_eq!(failures[0].0, 1);
    assert!(matches!(failures[0].1, CoreFailure::Group(_)));
    assert!(err.to_string().contains("core 1 broke"), "{err}");
}

#[test]
fn a_panicking_core_cancels_the_others() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    let err = Cores::new(2)
        .run(move |core| {
            let c = c.clone();
            async move {
                if core.index() == 0 {
                    sleep(Duration::from_millis(20)).await?;
                    panic!("core 0 panics");
                }
                sleeper(c.clone()).await
            }
        })
        .unwrap_err();
    assert_eq!(cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(err.failures().len(), 1);
    assert_eq!(err.failures()[0].0, 0);
}

#[test]
fn a_multi_cancel_from_another_thread_stops_every_core() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    let mut supervisor = None;
    Cores::new(2)
        .run_with(
            move |_core| sleeper(c.clone()),
            |cancel| {
                supervisor = Some(std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(20));
                    cancel.cancel_with("supervisor");
                }));
            },
        )
        .unwrap();
    supervisor.unwrap().join().unwrap();
    assert_eq!(cancelled.load(Ordering::SeqCst), 2);
}

#[test]
fn remote_runs_code_on_the_named_core() {
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    Cores::new(2)
        .run(move |core| {
            let s = s.clone();
            async move {
                if core.index() == 0 {
                    let other = core.remote(1);
                    let name = scope_runtime::io::spawn_blocking(move || {
                        other.run_sync(|| std::thread::current().name().map(str::to_owned))
                    })
                    .await?
                    .map_err(|e| e.to_string())?;
                    s.lock().push(name);
                    core.cancel_all();
                }
                sleep(HOUR).await?;
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(*seen.lock(), [Some("scope_runtime core 1".to_string())]);
}

/// Two cores bind one `SO_REUSEPORT` port each (port 0: the second reuses the first
/// one's); 200 loopback connections from distinct source ports are split by the
/// kernel's hash, within ±25 % of an even split.
#[test]
fn reuseport_listeners_share_the_connections() {
    const CONNS: usize = 200;
    let counts = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let ports = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let bound = Arc::new(std::sync::Barrier::new(3));
    let (c, p, b) = (counts.clone(), ports.clone(), bound.clone());
    let client = std::thread::spawn({
        let (ports, bound) = (ports.clone(), bound.clone());
        move || {
            bound.wait(); // both cores listen
            let port = ports.lock()[0];
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            // Kept open until all are made: every one has its own source port.
            let conns: Vec<_> = (0..CONNS)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            conns
        }
    });
    Cores::new(2)
        .run(move |core| {
            let (c, p, b) = (c.clone(), p.clone(), b.clone());
            async move {
                let listener = core.bind_reuseport("127.0.0.1:0".parse()?)?;
                p.lock().push(listener.local_addr()?.port());
                // Blocking here is fine: nothing else runs on this core yet.
                b.wait();
                let mine = &c[core.index()];
                let mut held = Vec::new();
                loop {
                    let accepted =
                        scope_runtime::move_on_after(Duration::from_secs(30), listener.accept())
                            .await?;
                    let Some(accepted) = accepted else {
                        return Err("no connection for 30 s".into());
                    };
                    held.push(accepted.0);
                    mine.fetch_add(1, Ordering::SeqCst);
                    if c[0].load(Ordering::SeqCst) + c[1].load(Ordering::SeqCst) == CONNS {
                        core.cancel_all();
                    }
                }
            }
        })
        .unwrap();
    let conns = client.join().unwrap();
    assert_eq!(conns.len(), CONNS);
    let ports = ports.lock();
    assert_eq!(ports[0], ports[1], "one port for both cores");
    let split = [
        counts[0].load(Ordering::SeqCst),
        counts[1].load(Ordering::SeqCst),
    ];
    eprintln!("accepted per core: {split:?}");
    assert_eq!(split[0] + split[1], CONNS);
    for n in split {
        assert!((75..=125).contains(&n), "uneven split {split:?}");
    }
}

#[test]
fn zero_cores_means_one_per_cpu() {
    // `#[scope_runtime::main(cores = 0)]` passes 0 to `Cores::new` too (not run here:
    // it would leave this test process's Ctrl-C handler installed).
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(Cores::new(0).count(), cpus);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    Cores::new(0)
        .run(move |core| {
            assert_eq!(core.count(), cpus);
            r.fetch_add(1, Ordering::SeqCst);
            async { Ok(()) }
        })
        .unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), cpus);
}

/// The one-acceptor alternative: core 0 accepts, reads part of the request, and hands
/// the connection to core 1 (`into_std`, a channel, `from_std`), which reads the rest
/// and answers: no byte is lost in the hand-off.
#[test]
fn a_connection_handed_to_another_core_loses_nothing() {
    let (tx, rx) = scope_runtime::sync::channel::<(std::net::TcpStream, Vec<u8>)>(1);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let client = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let port: u16 = port_rx.recv().unwrap();
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"hello, core 1").unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        answer
    });
    Cores::new(2)
        .run(move |core| {
            let (tx, rx, port_tx) = (tx.clone(), rx.clone(), port_tx.clone());
            async move {
                if core.index() == 0 {
                    let l = scope_runtime::io::TcpListener::bind("127.0.0.1:0").await?;
                    port_tx.send(l.local_addr()?.port())?;
                    let (s, _) = l.accept().await?;
                    let mut head = [0u8; 5];
                    let mut got = 0;
                    while got < head.len() {
                        got += s.read(&mut head[got..]).await?;
                    }
                    tx.send((s.into_std(), head.to_vec()))
                        .await
                        .map_err(|e| e.to_string())?;
                } else {
                    let (s, mut request) = rx.recv().await?.ok_or("no connection came")?;
                    let s = scope_runtime::io::TcpStream::from_std(s)?;
                    let mut buf = [0u8; 64];
                    while request.len() < b"hello, core 1".len() {
                        let n = s.read(&mut buf).await?;
                        if n == 0 {
                            return Err("end of file before the whole request".into());
                        }
                        request.extend_from_slice(&buf[..n]);
                    }
                    let answer = format!(
                        "core {} got {:?}",
                        core.index(),
                        String::from_utf8(request)?
                    );
                    let mut sent = 0;
                    while sent < answer.len() {
                        sent += s.write(&answer.as_bytes()[sent..]).await?;
                    }
                }
                Ok(())
            }
        })
        .unwrap();
    assert_eq!(client.join().unwrap(), "core 1 got \"hello, core 1\"");
}

/// The CPUs the calling thread may run on.
#[cfg(target_os = "linux")]
fn my_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain bits; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a live set of the size given; pid 0 is this thread.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn pinned_cores_run_on_one_cpu_each_in_mask_order() {
    let allowed = my_cpus();
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let s = seen.clone();
    // One more core than CPUs: the last one wraps around to the first CPU.
    let n = allowed.len() + 1;
    Cores::new(n)
        .pin_to_cpus(true)
        .run(move |core| {
            s.lock().push((core.index(), my_cpus()));
            async { Ok(()) }
        })
        .unwrap();
    let mut seen = seen.lock().clone();
    seen.sort();
    let want: Vec<(usize, Vec<usize>)> = (0..n)
        .map(|k| (k, vec![allowed[k % allowed.len()]]))
        .collect();
    assert_eq!(seen, want);
    // Unpinned cores keep the whole mask.
    let whole = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let w = whole.clone();
    Cores::new(2)
        .run(move |_core| {
            w.lock().push(my_cpus());
            async { Ok(()) }
        })
        .unwrap();
    assert!(whole.lock().iter().all(|cpus| *cpus == allowed));
}

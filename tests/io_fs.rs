//! Files, directories and the standard streams (issue 13, item 3): every path
//! function against the standard library's answer, `File` through the `futures-io`
//! traits, what a cancelled read or write leaves behind (nothing lost), `read_dir`'s
//! batches, and stdin / stdout / stderr in a child process (this test binary again).
//!
//! Operations that are *in flight* when cancelled are made so deterministically with
//! a FIFO: a read of an empty FIFO, or a write to a full one, blocks on the pool until
//! the test feeds or drains it.

use std::collections::BTreeSet;
use std::io::{Read, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use futures::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use futures::{StreamExt, TryStreamExt};
use scope_runtime::io::fs::{self, File, OpenOptions};
use scope_runtime::io::{stderr, stdin, stdout};
use scope_runtime::{CancelError, CancelScope, Runtime, fail_after, move_on_after, yield_now};

/// Bounds every test doing real I/O on the real clock.
const SAFETY_NET: Duration = Duration::from_secs(30);

/// A fresh directory under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sr-io-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn kind<T, E: std::borrow::Borrow<std::io::Error>>(r: Result<T, E>) -> Option<std::io::ErrorKind> {
    r.err().map(|e| e.borrow().kind())
}

fn mkfifo(path: &Path) {
    let st = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(st.success(), "mkfifo failed");
}

#[scope_runtime::test]
async fn path_functions_agree_with_std() {
    let d = TempDir::new("paths");
    let (a, b) = (d.join("a"), d.join("b"));

    // create_dir / create_dir_all, also on bad input.
    fs::create_dir(d.join("one")).await.unwrap();
    assert_eq!(
        kind(fs::create_dir(d.join("one")).await),
        kind(std::fs::create_dir(d.join("one")))
    );
    assert_eq!(
        kind(fs::create_dir(d.join("no/parent")).await),
        kind(std::fs::create_dir(d.join("no/parent")))
    );
    fs::create_dir_all(d.join("x/y/z")).await.unwrap();
    fs::create_dir_all(d.join("x/y/z")).await.unwrap();
    assert!(std::fs::metadata(d.join("x/y/z")).unwrap().is_dir());

    // metadata / symlink_metadata against std's.
    std::fs::write(&a, b"0123456789").unwrap();
    std::os::unix::fs::symlink(&a, d.join("link")).unwrap();
    std::os::unix::fs::symlink(d.join("missing"), d.join("dangling")).unwrap();
    for p in [&a, &d.join("link"), &d.join("dangling"), &d.join("one")] {
        let (ours, std) = (fs::metadata(p).await, std::fs::metadata(p));
        assert_eq!(
            kind(ours.as_ref().map(|_| ())),
            kind(std.as_ref().map(|_| ()))
        );
        if let (Ok(o), Ok(s)) = (ours, std) {
            assert_eq!(
                (o.len(), o.is_dir(), o.file_type()),
                (s.len(), s.is_dir(), s.file_type())
            );
        }
        let (o, s) = (
            fs::symlink_metadata(p).await.unwrap(),
            std::fs::symlink_metadata(p).unwrap(),
        );
        assert_eq!((o.len(), o.file_type()), (s.len(), s.file_type()));
    }
    assert!(
        fs::symlink_metadata(d.join("dangling"))
            .await
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // read_link, canonicalize.
    assert_eq!(
        fs::read_link(d.join("link")).await.unwrap(),
        std::fs::read_link(d.join("link")).unwrap()
    );
    assert_eq!(kind(fs::read_link(&a).await), kind(std::fs::read_link(&a)));
    let odd = d.0.join("x/./y/../y/z/..");
    assert_eq!(
        fs::canonicalize(&odd).await.unwrap(),
        std::fs::canonicalize(&odd).unwrap()
    );
    assert_eq!(
        kind(fs::canonicalize(d.join("dangling")).await),
        kind(std::fs::canonicalize(d.join("dangling")))
    );

    // copy, hard_link, rename, read_to_string.
    assert_eq!(fs::copy(&a, &b).await.unwrap(), 10);
    assert_eq!(std::fs::read(&b).unwrap(), b"0123456789");
    assert_eq!(
        kind(fs::copy(d.join("missing"), &b).await),
        kind(std::fs::copy(d.join("missing"), &b))
    );
    fs::hard_link(&a, d.join("hard")).await.unwrap();
    assert_eq!(std::fs::metadata(&a).unwrap().len(), 10);
    assert_eq!(
        kind(fs::hard_link(&a, d.join("hard")).await),
        kind(std::fs::hard_link(&a, d.join("hard")))
    );
    fs::rename(&b, d.join("moved")).await.unwrap();
    assert!(!b.exists());
    assert_eq!(
        fs::read_to_string(d.join("moved")).await.unwrap(),
        "0123456789"
    );
    assert_eq!(
        kind(fs::rename(&b, d.join("again")).await),
        kind(std::fs::rename(&b, d.join("again")))
    );

    // remove_file / remove_dir / remove_dir_all.
    fs::remove_file(d.join("hard")).await.unwrap();
    assert_eq!(
        kind(fs::remove_file(d.join("hard")).await),
        kind(std::fs::remove_file(d.join("hard")))
    );
    assert_eq!(
        kind(fs::remove_file(d.join("one")).await),
        kind(std::fs::remove_file(d.join("one")))
    );
    assert_eq!(
        kind(fs::remove_dir(d.join("x")).await),
        kind(std::fs::remove_dir(d.join("x")))
    );
    fs::remove_dir(d.join("one")).await.unwrap();
    fs::remove_dir_all(d.join("x")).await.unwrap();
    assert!(!d.join("x").exists());
    assert_eq!(
        kind(fs::remove_dir_all(d.join("x")).await),
        kind(std::fs::remove_dir_all(d.join("x")))
    );
}

#[scope_runtime::test]
async fn a_cancelled_path_function_does_nothing() {
    let d = TempDir::new("cancelled-paths");
    std::fs::write(d.join("f"), b"x").unwrap();
    let scope = CancelScope::new();
    scope.cancel();
    let r = scope
        .run(async {
            let e = fs::create_dir(d.join("new")).await.unwrap_err();
            assert!(e.as_cancelled().is_some());
            fs::remove_file(d.join("f")).await?;
            Ok::<_, std::io::Error>(())
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(!d.join("new").exists());
    assert!(d.join("f").exists());
}

#[scope_runtime::test]
async fn open_options_mirror_std() {
    let d = TempDir::new("openopts");
    let p = d.join("f");
    // Every combination of the flags: our error kind (or success) is std's.
    for bits in 0u32..64 {
        let set = |o: &mut std::fs::OpenOptions| {
            o.read(bits & 1 != 0)
                .write(bits & 2 != 0)
                .append(bits & 4 != 0)
                .truncate(bits & 8 != 0)
                .create(bits & 16 != 0)
                .create_new(bits & 32 != 0);
        };
        let _ = std::fs::remove_file(&p);
        let mut std_opts = std::fs::OpenOptions::new();
        set(&mut std_opts);
        let std_kind = kind(std_opts.open(&p));
        let _ = std::fs::remove_file(&p);
        let mut ours = OpenOptions::new();
        ours.read(bits & 1 != 0)
            .write(bits & 2 != 0)
            .append(bits & 4 != 0)
            .truncate(bits & 8 != 0)
            .create(bits & 16 != 0)
            .create_new(bits & 32 != 0);
        assert_eq!(kind(ours.open(&p).await), std_kind, "flags {bits:#b}");
    }
    // Append and truncate do what they say.
    std::fs::write(&p, b"abc").unwrap();
    let mut f = OpenOptions::new().append(true).open(&p).await.unwrap();
    f.write_all(b"def").await.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"abcdef");
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&p)
        .await
        .unwrap();
    assert_eq!(f.metadata().await.unwrap().len(), 0);
}

/// Every handle can move to another thread (e.g. inside `spawn_blocking` results or
/// a `Send` future for another runtime).
#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<File>();
    send_sync::<fs::ReadDir>();
    send_sync::<fs::DirEntry>();
    send_sync::<OpenOptions>();
    send_sync::<scope_runtime::io::Stdin>();
    send_sync::<scope_runtime::io::Stdout>();
    send_sync::<scope_runtime::io::Stderr>();
}

#[scope_runtime::test]
async fn file_round_trips_through_the_futures_io_traits() {
    let d = TempDir::new("traits");
    let p = d.join("f");
    let mut f = File::create(&p).await.unwrap();
    // Bigger than one 1 MiB chunk, with a pattern so misplaced bytes show.
    let data: Vec<u8> = (0..3_000_001u32).map(|i| (i % 251) as u8).collect();
    AsyncWriteExt::write_all(&mut f, &data).await.unwrap();
    AsyncWriteExt::flush(&mut f).await.unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), data, "flush means on the OS");

    assert_eq!(
        AsyncSeekExt::seek(&mut f, SeekFrom::Start(10))
            .await
            .unwrap(),
        10
    );
    let mut buf = [0u8; 5];
    AsyncReadExt::read_exact(&mut f, &mut buf).await.unwrap();
    assert_eq!(buf, data[10..15]);
    // Current counts from the caller's position, not the pool's read-ahead.
    assert_eq!(
        AsyncSeekExt::seek(&mut f, SeekFrom::Current(0))
            .await
            .unwrap(),
        15
    );
    assert_eq!(
        AsyncSeekExt::seek(&mut f, SeekFrom::Current(-5))
            .await
            .unwrap(),
        10
    );
    assert_eq!(
        AsyncSeekExt::seek(&mut f, SeekFrom::End(-1)).await.unwrap(),
        3_000_000
    );
    assert!(
        AsyncSeekExt::seek(&mut f, SeekFrom::Current(-10_000_000))
            .await
            .is_err()
    );

    // A small read leaves read-ahead in the buffer; a write after it lands where the
    // caller is, not after the read-ahead.
    AsyncSeekExt::seek(&mut f, SeekFrom::Start(0))
        .await
        .unwrap();
    let mut two = [0u8; 2];
    AsyncReadExt::read_exact(&mut f, &mut two).await.unwrap();
    AsyncWriteExt::write_all(&mut f, b"XY").await.unwrap();
    AsyncWriteExt::flush(&mut f).await.unwrap();
    let on_disk = std::fs::read(&p).unwrap();
    assert_eq!(
        &on_disk[..6],
        &[data[0], data[1], b'X', b'Y', data[4], data[5]]
    );

    let mut all = Vec::new();
    AsyncSeekExt::seek(&mut f, SeekFrom::Start(0))
        .await
        .unwrap();
    AsyncReadExt::read_to_end(&mut f, &mut all).await.unwrap();
    assert_eq!(all, on_disk);

    // sync_data, set_len, metadata see every accepted write.
    AsyncWriteExt::write_all(&mut f, b"tail").await.unwrap();
    assert_eq!(f.metadata().await.unwrap().len(), data.len() as u64 + 4);
    f.sync_data().await.unwrap();
    f.set_len(7).await.unwrap();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), 7);
    AsyncWriteExt::close(&mut f).await.unwrap();
    let std_file = f.into_std().await.unwrap();
    assert_eq!(std_file.metadata().unwrap().len(), 7);
}

#[scope_runtime::test]
async fn a_failed_background_write_is_reported_by_the_next_operation() {
    let d = TempDir::new("writeerr");
    let p = d.join("ro");
    std::fs::write(&p, b"read only").unwrap();
    let mut f = File::open(&p).await.unwrap();
    // The trait's write hands the bytes over; the failure comes with the flush.
    assert_eq!(AsyncWriteExt::write(&mut f, b"x").await.unwrap(), 1);
    assert!(AsyncWriteExt::flush(&mut f).await.is_err());
    assert!(AsyncWriteExt::flush(&mut f).await.is_ok(), "reported once");
    // A read after a failed write reports it first, then reads.
    assert_eq!(AsyncWriteExt::write(&mut f, b"x").await.unwrap(), 1);
    let mut buf = [0u8; 4];
    assert!(AsyncReadExt::read(&mut f, &mut buf).await.is_err());
    assert_eq!(AsyncReadExt::read(&mut f, &mut buf).await.unwrap(), 4);
    // The inherent write waits for the OS and reports its own error.
    assert!(f.write(b"x").await.is_err());
    assert!(f.write_all(b"x").await.is_err());
}

/// A read of an empty FIFO is in flight on the pool; the cancel wakes the reader at
/// once, and the bytes the read returns later come out of the next read.
#[scope_runtime::test]
async fn a_read_cancelled_in_flight_loses_no_bytes() {
    fail_after(SAFETY_NET, async {
        let d = TempDir::new("fiforead");
        let p = d.join("fifo");
        mkfifo(&p);
        // Read and write: opening does not wait for a writer.
        let mut f = OpenOptions::new().read(true).write(true).open(&p).await?;
        let scope = CancelScope::new();
        let mut buf = [0u8; 64];
        let started = Instant::now();
        let r = scope
            .run(async {
                let read = AsyncReadExt::read(&mut f, &mut buf);
                let cancel = async {
                    yield_now().await;
                    scope.cancel();
                    Ok::<_, std::io::Error>(())
                };
                let (read, _) = futures::join!(read, cancel);
                read
            })
            .await;
        assert!(matches!(r, Ok(None)), "the read was cancelled: {r:?}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken by the cancel"
        );
        // Now the in-flight read gets its bytes.
        let mut w = std::fs::OpenOptions::new().write(true).open(&p)?;
        w.write_all(b"after the cancel")?;
        let mut five = [0u8; 5];
        assert_eq!(f.read(&mut five).await?, 5);
        assert_eq!(&five, b"after");
        // The rest is read ahead. A write on a pipe (no position to give it back to)
        // keeps it for the next read, and a failed seek does not drop it either.
        AsyncWriteExt::write_all(&mut f, b"!").await?;
        AsyncWriteExt::flush(&mut f).await?;
        assert!(
            f.seek(SeekFrom::Current(0)).await.is_err(),
            "a FIFO cannot seek"
        );
        let n = f.read(&mut buf).await?;
        assert_eq!(&buf[..n], b" the cancel");
        assert_eq!(f.read(&mut buf).await?, 1);
        assert_eq!(buf[0], b'!');
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

/// The same on a regular file, cancelled at whatever point the paused clock's jump
/// hits: every byte comes out exactly once, in order, and the position agrees.
#[scope_runtime::test(paused)]
async fn reads_cancelled_at_any_point_lose_and_repeat_nothing() {
    let d = TempDir::new("regread");
    let p = d.join("f");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&p, &data).unwrap();
    let mut f = File::open(&p).await.unwrap();
    let mut got = Vec::new();
    let mut cancelled = 0;
    for round in 0..10_000 {
        let mut buf = vec![0u8; 1 + round % 5000];
        match move_on_after(Duration::from_millis(1), f.read(&mut buf)).await {
            Ok(None) => cancelled += 1,
            Ok(Some(0)) => break,
            Ok(Some(n)) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("{e}"),
        }
        if round % 7 == 0 {
            assert_eq!(
                f.seek(SeekFrom::Current(0)).await.unwrap(),
                got.len() as u64
            );
        }
    }
    assert_eq!(got, data);
    eprintln!("{cancelled} reads were cancelled");
}

/// A write to a full FIFO is in flight on the pool; the cancel wakes the flush at once;
/// every byte handed over still arrives, and the next flush waits for it.
#[scope_runtime::test]
async fn a_write_cancelled_in_flight_still_arrives() {
    fail_after(SAFETY_NET, async {
        let d = TempDir::new("fifowrite");
        let p = d.join("fifo");
        mkfifo(&p);
        let mut f = OpenOptions::new().read(true).write(true).open(&p).await?;
        // Several times the pipe's capacity: the job blocks until someone drains.
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        let scope = CancelScope::new();
        let r = scope
            .run(async {
                let write = async {
                    let n = AsyncWriteExt::write(&mut f, &data).await?;
                    assert_eq!(n, data.len(), "handed over whole");
                    AsyncWriteExt::flush(&mut f).await
                };
                let cancel = async {
                    yield_now().await;
                    yield_now().await;
                    scope.cancel();
                    Ok::<_, std::io::Error>(())
                };
                let (write, _) = futures::join!(write, cancel);
                write
            })
            .await;
        assert!(matches!(r, Ok(None)), "the flush was cancelled: {r:?}");
        // Drain the FIFO from a thread; the background write completes.
        let reader = std::fs::OpenOptions::new().read(true).open(&p)?;
        let len = data.len();
        let drained = std::thread::spawn(move || {
            let mut got = vec![0u8; len];
            (&reader).read_exact(&mut got).map(|()| got)
        });
        AsyncWriteExt::flush(&mut f).await?;
        assert!(
            drained.join().unwrap()? == data,
            "every byte arrived, in order"
        );
        Ok::<_, std::io::Error>(())
    })
    .await
    .unwrap();
}

/// On a regular file: a write handed over and then cancelled is on disk for the next
/// operation.
#[scope_runtime::test]
async fn a_cancelled_file_write_is_on_disk_for_the_next_operation() {
    let d = TempDir::new("regwrite");
    let p = d.join("big");
    let mut f = File::create(&p).await.unwrap();
    let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 249) as u8).collect();
    // Deterministic: the bytes are handed over, then the flush is cancelled.
    let scope = CancelScope::new();
    let r = scope
        .run(async {
            let mut sent = 0;
            while sent < data.len() {
                sent += AsyncWriteExt::write(&mut f, &data[sent..]).await?;
            }
            scope.cancel();
            AsyncWriteExt::flush(&mut f).await
        })
        .await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_eq!(
        f.metadata().await.unwrap().len(),
        data.len() as u64,
        "the next op waits"
    );
    assert_eq!(std::fs::read(&p).unwrap(), data);

    // The inherent write_all, cancelled while it waits (or just after it finished, if
    // the pool is that fast): either way every byte is there for the next operation.
    let mut g = File::create(&p).await.unwrap();
    let scope = CancelScope::new();
    let r = scope
        .run(async {
            let w = g.write_all(&data);
            let cancel = async {
                yield_now().await;
                scope.cancel();
            };
            let (res, ()) = futures::join!(w, cancel);
            res
        })
        .await;
    assert!(matches!(r, Ok(None) | Ok(Some(()))), "{r:?}");
    assert_eq!(g.metadata().await.unwrap().len(), data.len() as u64);
    assert_eq!(std::fs::read(&p).unwrap(), data);
}

/// Dropping the file (or the future) does not lose an accepted write either.
#[scope_runtime::test]
async fn a_dropped_file_still_writes_what_it_accepted() {
    let d = TempDir::new("dropwrite");
    let p = d.join("f");
    let mut f = File::create(&p).await.unwrap();
    AsyncWriteExt::write_all(&mut f, &[5u8; 300_000])
        .await
        .unwrap();
    drop(f);
    // Nothing to wait on but the file system: poll it (bounded).
    let t0 = Instant::now();
    while std::fs::metadata(&p).unwrap().len() < 300_000 {
        assert!(t0.elapsed() < SAFETY_NET, "the write never arrived");
        scope_runtime::sleep(Duration::from_millis(2))
            .await
            .unwrap();
    }
    assert_eq!(std::fs::read(&p).unwrap(), vec![5u8; 300_000]);
}

#[scope_runtime::test(paused)]
async fn read_dir_lists_what_std_lists_across_batches_and_cancels() {
    let d = TempDir::new("readdir");
    for i in 0..150 {
        std::fs::write(d.join(&format!("f{i}")), b"").unwrap();
    }
    std::fs::create_dir(d.join("sub")).unwrap();
    let want: BTreeSet<_> = std::fs::read_dir(&d.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();

    // As a stream.
    let got: BTreeSet<_> = fs::read_dir(&d.0)
        .await
        .unwrap()
        .map_ok(|e| e.file_name())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(got, want);

    // next_entry, cancelled over and over by the clock's jumps: nothing skipped or
    // repeated.
    let mut rd = fs::read_dir(&d.0).await.unwrap();
    let mut seen = Vec::new();
    let mut cancels = 0;
    loop {
        match move_on_after(Duration::from_millis(1), rd.next_entry()).await {
            Ok(None) => cancels += 1,
            Ok(Some(Some(e))) => {
                let is_dir = e.file_type().await.unwrap().is_dir();
                assert_eq!(is_dir, e.file_name() == "sub");
                assert_eq!(e.path(), d.0.join(e.file_name()));
                seen.push(e.file_name());
            }
            Ok(Some(None)) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(cancels < 10_000);
    }
    assert_eq!(seen.len(), want.len(), "no entry repeated");
    assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), want);
    assert!(rd.next_entry().await.unwrap().is_none(), "stays ended");

    // In cancelled code the stream yields the cancellation, and does not end.
    let mut rd = fs::read_dir(&d.0).await.unwrap();
    let scope = CancelScope::new();
    scope.cancel();
    scope
        .run(async {
            for _ in 0..3 {
                let item = rd.next().await.expect("a cancelled stream does not end");
                assert!(item.unwrap_err().as_cancelled().is_some());
            }
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap();
    assert_eq!(rd.count().await, want.len(), "nothing was consumed");

    assert_eq!(
        kind(fs::read_dir(d.join("missing")).await),
        kind(std::fs::read_dir(d.join("missing")))
    );
    assert_eq!(
        kind(fs::read_dir(d.join("f1")).await),
        kind(std::fs::read_dir(d.join("f1")))
    );
}

// ---- The standard streams, in a child process ------------------------------------

const CHILD: &str = "SR_IO_FS_CHILD";

/// Runs this test binary again with just `test` and `CHILD=role`, feeding `input`
/// to its stdin; returns (status ok, stdout, stderr). Bounded by the safety net.
fn run_child(test: &str, role: &str, input: Vec<u8>) -> (bool, Vec<u8>, Vec<u8>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        let _ = sin.write_all(&input);
    });
    let mut sout = child.stdout.take().unwrap();
    let mut serr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = sout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = serr.read_to_end(&mut v);
        v
    });
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > SAFETY_NET {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the child process did not finish");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    feeder.join().unwrap();
    (status.success(), out.join().unwrap(), err.join().unwrap())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn paused() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

#[test]
fn stdout_and_stderr_reach_the_process_streams() {
    const NAME: &str = "stdout_and_stderr_reach_the_process_streams";
    let big: Vec<u8> = (0..2_500_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    if std::env::var(CHILD).as_deref() == Ok("write") {
        paused().block_on(async {
            let mut out = stdout();
            out.write_all(b"<OUT>").await.unwrap();
            out.write_all(&big).await.unwrap();
            out.write_all(b"</OUT>").await.unwrap();
            // Another handle: same stream, after the first one's bytes.
            stdout().write_all(b"<SECOND/>").await.unwrap();
            let mut err = stderr();
            err.write_all(b"<ERR>to stderr</ERR>").await.unwrap();
            // Cancelled before it starts: writes nothing.
            let scope = CancelScope::new();
            scope.cancel();
            let r = scope
                .run(async { stdout().write_all(b"<NEVER/>").await })
                .await;
            assert!(matches!(r, Ok(None)));
            out.flush().await.unwrap();
            err.close().await.unwrap();
        });
        return;
    }
    let (ok, out, err) = run_child(NAME, "write", Vec::new());
    assert!(ok, "child failed: {}", String::from_utf8_lossy(&err));
    let mut want = b"<OUT>".to_vec();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"</OUT><SECOND/>");
    assert!(contains(&out, &want), "stdout holds the bytes in order");
    assert!(!contains(&out, b"<NEVER/>"));
    assert!(contains(&err, b"<ERR>to stderr</ERR>"));
    assert!(!contains(&out, b"<ERR>"));
}

#[test]
fn stdin_from_a_pipe_arrives_whole_through_cancelled_reads() {
    const NAME: &str = "stdin_from_a_pipe_arrives_whole_through_cancelled_reads";
    if std::env::var(CHILD).as_deref() == Ok("read") {
        paused().block_on(async {
            let mut input = stdin();
            let mut got = Vec::new();
            let mut cancelled = 0u32;
            for round in 0usize.. {
                let mut buf = vec![0u8; 1 + round % 40_000];
                // Every other read under a timeout that the paused clock fires at
                // once: some are cancelled while the pool's read is in flight.
                let n = if round % 2 == 0 {
                    match move_on_after(Duration::from_millis(1), input.read(&mut buf)).await {
                        Ok(Some(n)) => n,
                        Ok(None) => {
                            cancelled += 1;
                            continue;
                        }
                        Err(e) => panic!("{e}"),
                    }
                } else {
                    // A new handle each time: the buffer is the process's.
                    stdin().read(&mut buf).await.unwrap()
                };
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            let mut out = stdout();
            let line = format!("<GOT len={} sum={}/>", got.len(), checksum(&got));
            out.write_all(line.as_bytes()).await.unwrap();
            out.flush().await.unwrap();
            eprintln!("{cancelled} stdin reads cancelled");
        });
        return;
    }
    let input: Vec<u8> = (0..500_000u32).map(|i| (i * 31 % 256) as u8).collect();
    let want = format!("<GOT len={} sum={}/>", input.len(), checksum(&input));
    let (ok, out, err) = run_child(NAME, "read", input);
    assert!(ok, "child failed: {}", String::from_utf8_lossy(&err));
    assert!(
        contains(&out, want.as_bytes()),
        "want {want} in {}",
        String::from_utf8_lossy(&out)
    );
}

/// Order-sensitive (FNV-1a), so reordered or repeated bytes show.
fn checksum(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

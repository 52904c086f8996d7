//! Child processes (`io::process`) with real programs (`sh`, `sleep`, `cat`, `true`):
//! exit statuses and output, pipes, cancelled waits that terminate the child (SIGTERM,
//! then SIGKILL after the grace) and leave no zombie, task groups, `kill_on_drop`,
//! the orphan list, and the SIGCHLD path (the whole file again, in a child process
//! with `SCOPE_RUNTIME_NO_PIDFD` set).
//!
//! Real clock (the children run in real time); every test is bounded by `SAFETY_NET`.
//! No test calls `waitpid(-1)`: tests run in parallel and it would reap the children
//! of the others.

use std::cell::Cell;
use std::io::Cursor;
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

use scope_runtime::io::process::{Child, Command, Stdio};
use scope_runtime::io::{read, read_exact, read_to_end, write_all};
use scope_runtime::{
    BoxError, CancelScope, Runtime, fail_after, find_cancelled, move_on_after, sleep, task_group,
};

const SAFETY_NET: Duration = Duration::from_secs(20);

/// The state letter of `/proc/<pid>/stat` (`Z` for a zombie), `None` once the process
/// is gone (reaped).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Whether `pid` is still a child of this process that nobody reaped. `WNOWAIT`: the
/// check itself reaps nothing.
fn unreaped_child(pid: u32) -> bool {
    // SAFETY: an all-zero `siginfo_t` is a valid value for `waitid` to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: `info` is a valid, writable `siginfo_t`; the flags only query.
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if rc == 0 {
        return true; // running, or exited and waiting to be reaped
    }
    let e = std::io::Error::last_os_error();
    assert_eq!(e.raw_os_error(), Some(libc::ECHILD), "waitid: {e}");
    false
}

fn assert_reaped(pid: u32) {
    assert!(
        !unreaped_child(pid),
        "pid {pid} is still our unreaped child"
    );
    assert_eq!(proc_state(pid), None, "pid {pid} still exists");
}

/// Spawns a child that exits at once and waits for it: reaps the orphan list.
async fn spawn_and_wait_one() {
    assert!(Command::new("true").status().await.unwrap().success());
}

#[scope_runtime::test]
async fn exit_status_and_output() {
    fail_after(SAFETY_NET, async {
        let st = Command::new("sh").args(["-c", "exit 42"]).status().await?;
        assert_eq!(st.code(), Some(42));
        assert!(!st.success());

        let out = Command::new("sh")
            .args([
                "-c",
                "printf '%s|%s' \"$A\" \"$(pwd)\"; printf oops >&2; exit 3",
            ])
            .env("A", "from env")
            .current_dir("/tmp")
            .output()
            .await?;
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from env|/tmp");
        assert_eq!(out.stderr, b"oops");

        // `output` gives the child an empty stdin: `cat` ends at once.
        let out = Command::new("cat").output().await?;
        assert!(out.status.success() && out.stdout.is_empty());

        let e = Command::new("/definitely/not/here").spawn().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let e = Command::new("true")
            .current_dir("/definitely/not/here")
            .spawn()
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn stdin_to_stdout_through_cat() {
    fail_after(SAFETY_NET, async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        // Far more than a pipe holds: writing without reading would block for ever.
        let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = async {
            write_all(&mut stdin, &mut Cursor::new(&data[..])).await?;
            futures::AsyncWriteExt::close(&mut stdin).await?; // cat sees end-of-file
            Ok::<_, std::io::Error>(())
        };
        let mut got = Vec::new();
        let (w, r) = futures::join!(writer, read_to_end(&mut stdout, &mut got));
        w?;
        r?;
        assert!(
            got == data,
            "cat gave back {} bytes, not the same",
            got.len()
        );
        assert!(child.wait().await?.success());
        // A closed stdin refuses further writes with an error, not a hang.
        let e = write_all(&mut stdin, &mut Cursor::new(b"x"))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// Pipe operations are checkpoints: cancelled, they move no byte, and the next call
/// gets everything.
#[scope_runtime::test]
async fn cancelled_pipe_operations_move_nothing() {
    fail_after(SAFETY_NET, async {
        let mut child = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let cancelled = CancelScope::new();
        cancelled.cancel();
        let r = cancelled
            .run(write_all(&mut stdin, &mut Cursor::new(b"lost?")))
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        write_all(&mut stdin, &mut Cursor::new(b"kept")).await?;
        // Wait until cat has echoed it, then a cancelled read must leave it there.
        let mut first = [0u8; 1];
        assert_eq!(read(&mut stdout, &mut first).await?, 1);
        let mut buf = [0u8; 16];
        let cancelled = CancelScope::new();
        cancelled.cancel();
        let r = cancelled.run(read(&mut stdout, &mut buf)).await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        drop(stdin);
        let mut rest = Vec::new();
        read_to_end(&mut stdout, &mut rest).await?;
        assert_eq!(
            rest, b"ept",
            "the cancelled read took nothing, nothing else came"
        );
        // A read blocked on an empty pipe is woken by a deadline and reads nothing.
        let mut cat2 = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out2 = cat2.stdout.take().unwrap();
        let r = move_on_after(Duration::from_millis(20), read(&mut out2, &mut buf)).await;
        assert!(matches!(r, Ok(None)), "woken by the deadline: {r:?}");
        drop(cat2.stdin.take());
        assert_eq!(read(&mut out2, &mut buf).await?, 0);
        assert!(cat2.wait().await?.success());
        assert!(child.wait().await?.success());
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// `output` reads stdout and stderr at once: a child that fills stderr (far past a
/// pipe's buffer) before writing stdout does not deadlock, and nothing is lost.
#[scope_runtime::test]
async fn a_child_that_fills_stderr() {
    fail_after(SAFETY_NET, async {
        let out = Command::new("sh")
            .args([
                "-c",
                "head -c 1000000 /dev/zero | tr '\\0' e >&2; head -c 300000 /dev/zero | tr '\\0' o",
            ])
            .output()
            .await?;
        assert!(out.status.success(), "{:?}", out.status);
        assert_eq!(out.stderr.len(), 1_000_000);
        assert!(out.stderr.iter().all(|&b| b == b'e'));
        assert_eq!(out.stdout.len(), 300_000);
        assert!(out.stdout.iter().all(|&b| b == b'o'));
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// A cancelled wait sends SIGTERM, and the child is reaped before the wait returns.
#[scope_runtime::test]
async fn a_cancelled_wait_terminates_the_child_and_leaves_no_zombie() {
    fail_after(SAFETY_NET, async {
        let mut child = Command::new("sleep").arg("30").spawn()?;
        let pid = child.id().unwrap();
        assert!(unreaped_child(pid));
        let start = Instant::now();
        let r = move_on_after(Duration::from_millis(50), child.wait()).await;
        assert!(
            matches!(r, Ok(None)),
            "the scope absorbed its deadline: {r:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "SIGTERM sufficed; the 5 s grace was not used up"
        );
        assert_reaped(pid);
        assert_eq!(child.id(), None);
        let status = child.try_wait()?.expect("the status is kept");
        assert_eq!(status.signal(), Some(libc::SIGTERM));

        // The error itself, seen from inside the scope: a `Cancelled` in an io::Error.
        let mut child = Command::new("sleep").arg("30").spawn()?;
        let pid = child.id().unwrap();
        let scope = CancelScope::new();
        let seen = scope
            .run(async {
                scope.cancel();
                let e = child.wait().await.unwrap_err();
                assert!(find_cancelled(&e).is_some(), "{e:?}");
                assert_reaped(pid); // already, when the error arrives
                Err::<(), _>(e)
            })
            .await;
        assert!(matches!(seen, Ok(None)), "{seen:?}");
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// On the paused clock the grace passes as soon as the runtime is idle (virtual time
/// jumps), so the child may get SIGKILL right after SIGTERM; either way it is reaped
/// before the wait returns. (No `fail_after` here: on the paused clock its deadline
/// would pass at once too. `sleep 30` bounds the test.)
#[scope_runtime::test(paused)]
async fn on_the_paused_clock_a_cancelled_wait_still_reaps() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id().unwrap();
    let r = move_on_after(Duration::from_secs(1), child.wait()).await;
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert_reaped(pid);
    let signal = child.try_wait().unwrap().unwrap().signal();
    assert!(
        matches!(signal, Some(libc::SIGTERM | libc::SIGKILL)),
        "{signal:?}"
    );
}

/// A child that ignores SIGTERM is SIGKILLed once the configured grace is over; the
/// grace is not cut short by the cancellation that started it.
#[scope_runtime::test]
async fn a_child_that_ignores_sigterm_is_killed_after_the_grace() {
    fail_after(SAFETY_NET, async {
        let grace = Duration::from_millis(300);
        let mut child = Command::new("sh")
            .args(["-c", "trap '' TERM; echo ready; exec sleep 30"])
            .stdout(Stdio::piped())
            .cancel_grace(grace)
            .spawn()?;
        let pid = child.id().unwrap();
        // Wait until the trap is set, so SIGTERM cannot arrive before it.
        let mut ready = Cursor::new([0u8; 6]);
        read_exact(child.stdout.as_mut().unwrap(), &mut ready).await?;
        assert_eq!(&ready.get_ref()[..], b"ready\n");
        let start = Instant::now();
        let r = move_on_after(Duration::from_millis(20), child.wait()).await;
        let took = start.elapsed();
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert!(
            took >= grace,
            "SIGKILL came after {took:?}, before the grace"
        );
        assert!(took < grace + Duration::from_secs(3), "{took:?}");
        assert_reaped(pid);
        assert_eq!(child.try_wait()?.unwrap().signal(), Some(libc::SIGKILL));
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// A failing sibling cancels the task group; the task waiting for its child
/// terminates it before the group finishes.
#[scope_runtime::test]
async fn cancel_inside_a_task_group() {
    fail_after(SAFETY_NET, async {
        let pid = Rc::new(Cell::new(0u32));
        let signal = Rc::new(Cell::new(None));
        let (p, s) = (pid.clone(), signal.clone());
        let r = task_group(|tg| async move {
            tg.spawn(async move {
                let mut child = Command::new("sleep").arg("30").spawn()?;
                p.set(child.id().unwrap());
                let r = child.wait().await;
                s.set(child.try_wait()?.and_then(|st| st.signal()));
                r?;
                Ok(())
            });
            tg.spawn(async {
                sleep(Duration::from_millis(50)).await?;
                Err::<(), BoxError>("boom".into())
            });
            Ok(())
        })
        .await;
        let e = r.unwrap_err();
        assert!(e.to_string().contains("boom"), "{e}");
        assert_ne!(pid.get(), 0);
        assert_reaped(pid.get());
        assert_eq!(signal.get(), Some(libc::SIGTERM));
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// A cancelled `wait_with_output` terminates the child as well.
#[scope_runtime::test]
async fn a_cancelled_output_terminates_the_child() {
    fail_after(SAFETY_NET, async {
        let child = Command::new("sh")
            .args(["-c", "echo partial; exec sleep 30"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let pid = child.id().unwrap();
        let r = move_on_after(Duration::from_millis(50), child.wait_with_output()).await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert_reaped(pid);
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

#[scope_runtime::test]
async fn kill_start_kill_and_signal() {
    fail_after(SAFETY_NET, async {
        let mut child = Command::new("sleep").arg("30").spawn()?;
        let pid = child.id().unwrap();
        child.kill().await?;
        assert_reaped(pid);
        assert_eq!(child.try_wait()?.unwrap().signal(), Some(libc::SIGKILL));
        child.kill().await?; // reaped: a no-op, not a signal to a reused pid
        child.start_kill()?;

        let mut child = Command::new("sleep").arg("30").spawn()?;
        child.start_kill()?;
        assert_eq!(child.wait().await?.signal(), Some(libc::SIGKILL));

        // `kill` is not cut short by a cancellation: the child is reaped anyway.
        let mut child = Command::new("sleep").arg("30").spawn()?;
        let pid = child.id().unwrap();
        let scope = CancelScope::new();
        scope.cancel();
        let r = scope
            .run(async {
                child.kill().await?;
                scope_runtime::checkpoint().await?;
                Ok::<_, BoxError>(())
            })
            .await;
        assert!(matches!(r, Ok(None)), "{r:?}");
        assert_reaped(pid);
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// Waits (bounded) until `pid` is gone, spawning and waiting for a child each turn
/// (which reaps the orphan list). Returns whether it went.
async fn reaped_by_later_spawns(pid: u32) -> bool {
    for _ in 0..500 {
        spawn_and_wait_one().await;
        if proc_state(pid).is_none() {
            return true;
        }
        sleep(Duration::from_millis(10)).await.unwrap();
    }
    false
}

#[scope_runtime::test]
async fn kill_on_drop_kills_and_a_later_spawn_reaps() {
    fail_after(SAFETY_NET, async {
        let child = Command::new("sleep").arg("30").kill_on_drop(true).spawn()?;
        let pid = child.id().unwrap();
        drop(child);
        assert!(reaped_by_later_spawns(pid).await, "pid {pid} left behind");
        assert!(!unreaped_child(pid));
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// Without `kill_on_drop` a dropped child keeps running; once it exits, the next
/// spawn reaps it: no zombie stays.
#[scope_runtime::test]
async fn a_dropped_child_keeps_running_and_is_reaped_later() {
    fail_after(SAFETY_NET, async {
        let child = Command::new("sleep").arg("0.5").spawn()?;
        let pid = child.id().unwrap();
        drop(child);
        sleep(Duration::from_millis(50)).await?;
        spawn_and_wait_one().await;
        let st = proc_state(pid);
        assert!(
            matches!(st, Some('S' | 'R')),
            "still running, not killed: {st:?}"
        );
        // It exits by itself and becomes a zombie until a spawn (maybe another test's:
        // the orphan list is process-wide) reaps it.
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(proc_state(pid), Some(c) if c != 'Z') && Instant::now() < until {
            sleep(Duration::from_millis(10)).await?;
        }
        assert!(
            reaped_by_later_spawns(pid).await,
            "zombie {pid} left behind"
        );
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

/// A child waited for on another runtime than its own is an error, not a hang.
#[test]
fn waiting_on_another_runtime_is_an_error() {
    let rt1 = Runtime::new().unwrap();
    let rt2 = Runtime::new().unwrap();
    let mut child: Child = rt1.block_on(async {
        Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    });
    let r = rt2.block_on(async { fail_after(Duration::from_millis(200), child.wait()).await });
    // On the pidfd path the reactor refuses; on the SIGCHLD path the wait works
    // through signals (any runtime sees them) until the timeout, which terminates it.
    match r {
        Err(e) => assert!(find_cancelled(&e).is_none(), "{e:?}"),
        Ok(st) => panic!("sleep 30 finished early: {st:?}"),
    }
    rt1.block_on(async { child.kill().await.unwrap() });
}

/// `SCOPE_RUNTIME_NO_PIDFD` really selects the SIGCHLD path (which installs the
/// crate's SIGCHLD handler), and without it the pidfd path installs none.
#[scope_runtime::test]
async fn the_environment_selects_the_exit_watch() {
    spawn_and_wait_one().await;
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let caught = status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    let sigchld_caught = caught & (1 << (libc::SIGCHLD - 1)) != 0;
    if std::env::var_os("SCOPE_RUNTIME_NO_PIDFD").is_some() {
        assert!(sigchld_caught, "the SIGCHLD path was not taken");
    } else if kernel_has_pidfd() {
        assert!(
            !sigchld_caught,
            "the pidfd path installed a SIGCHLD handler"
        );
    }
}

fn kernel_has_pidfd() -> bool {
    // SAFETY: `pidfd_open` on our own pid only returns a new fd (closed right away)
    // or -1; it touches no memory of ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id(), 0) };
    if fd >= 0 {
        // SAFETY: `fd` is the fd just opened, owned by nobody else.
        unsafe { libc::close(fd as libc::c_int) };
    }
    fd >= 0
}

/// Every test of this file again, in a child process forced onto the SIGCHLD path.
#[test]
fn the_sigchld_path_passes_this_whole_file() {
    if std::env::var_os("SCOPE_RUNTIME_NO_PIDFD").is_some() {
        return; // already the inner run
    }
    let rt = Runtime::new().unwrap();
    let out = rt.block_on(async {
        fail_after(
            Duration::from_secs(60),
            Command::new(std::env::current_exe().unwrap())
                .args(["--test-threads", "4", "--skip", "the_sigchld_path_passes"])
                .env("SCOPE_RUNTIME_NO_PIDFD", "1")
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SIGCHLD run failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("test result: ok"), "{text}");
    assert!(!text.contains(" 0 passed"), "{text}");
}

/// Children, their pipes, the grace timers and the shielded scopes leave nothing
/// behind in the runtime: no reactor source, timer, scope node or registration.
#[test]
fn nothing_is_left_in_the_runtime() {
    let rt = Runtime::new().unwrap();
    rt.block_on(async {
        fail_after(SAFETY_NET, async {
            for _ in 0..3 {
                let mut child = Command::new("sh")
                    .args(["-c", "trap '' TERM; echo ready; exec cat"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .cancel_grace(Duration::from_millis(30))
                    .spawn()?;
                let mut ready = Cursor::new([0u8; 6]);
                read_exact(child.stdout.as_mut().unwrap(), &mut ready).await?;
                let stdin = child.stdin.take(); // keep cat reading: wait must cancel
                let r = move_on_after(Duration::from_millis(10), child.wait()).await;
                assert!(matches!(r, Ok(None)), "{r:?}");
                drop(stdin);
                let out = Command::new("echo").arg("x").output().await?;
                assert_eq!(out.stdout, b"x\n");
            }
            Ok::<_, BoxError>(())
        })
        .await
        .unwrap();
    });
    let res = rt.resources();
    assert_eq!(res.io_sources, 0, "{res:?}");
    assert_eq!(res.timers, 0, "{res:?}");
    assert_eq!(res.scope_nodes, 0, "{res:?}");
    assert_eq!(res.cancel_registrations, 0, "{res:?}");
}

/// Bad input: spawning outside a runtime is a documented panic (before any child
/// starts); an invalid signal number is an error.
#[test]
#[should_panic(expected = "inside a scope_runtime runtime")]
fn spawning_outside_a_runtime_panics() {
    let _ = Command::new("true").spawn();
}

#[scope_runtime::test]
async fn an_invalid_signal_is_an_error() {
    use scope_runtime::io::signal::SignalKind;
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let e = child.signal(SignalKind::from_raw(12345)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EINVAL), "{e:?}");
    child.kill().await.unwrap();
    // Reaped: signalling is a no-op now, whatever the number.
    child.signal(SignalKind::from_raw(12345)).unwrap();
}

//! No file descriptor leaks from child processes: pidfds and pipes of children that
//! exit, are waited for, are cancelled, killed, dropped, or fail to spawn. Counts the
//! entries of `/proc/self/fd`.
//!
//! One `#[test]` only (its own binary): tests of one binary run on parallel threads,
//! and another test's children and pipes would disturb the count.

use std::io::Cursor;
use std::time::{Duration, Instant};

use scope_runtime::io::process::{Command, Stdio};
use scope_runtime::io::{read_to_end, write_all};
use scope_runtime::{BoxError, Runtime, fail_after, move_on_after};

fn open_fds() -> Vec<String> {
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

async fn scenarios() -> Result<(), BoxError> {
    // Waited for, with all three pipes.
    let mut c = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    write_all(c.stdin.as_mut().unwrap(), &mut Cursor::new(b"x")).await?;
    drop(c.stdin.take());
    let mut out = Vec::new();
    read_to_end(c.stdout.as_mut().unwrap(), &mut out).await?;
    assert_eq!(out, b"x");
    assert!(c.wait().await?.success());
    drop(c);
    // output(), status().
    Command::new("sh")
        .args(["-c", "echo a; echo b >&2"])
        .output()
        .await?;
    Command::new("true").status().await?;
    // Cancelled wait (terminated), cancelled output.
    let mut c = Command::new("sleep")
        .arg("30")
        .stdout(Stdio::piped())
        .spawn()?;
    assert!(
        move_on_after(Duration::from_millis(10), c.wait())
            .await?
            .is_none()
    );
    drop(c);
    let mut sleep = Command::new("sleep");
    sleep.arg("30");
    assert!(
        move_on_after(Duration::from_millis(10), sleep.output())
            .await?
            .is_none()
    );
    // Killed; dropped with kill_on_drop; dropped while running with pipes.
    let mut c = Command::new("sleep").arg("30").spawn()?;
    c.kill().await?;
    drop(c);
    drop(
        Command::new("sleep")
            .arg("30")
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .spawn()?,
    );
    // Failing spawns.
    assert!(
        Command::new("/no/such/program")
            .stdout(Stdio::piped())
            .spawn()
            .is_err()
    );
    assert!(
        Command::new("true")
            .current_dir("/no/such/dir")
            .spawn()
            .is_err()
    );
    Ok(())
}

#[test]
fn no_file_descriptor_leaks() {
    Runtime::new().unwrap().block_on(async {
        fail_after(Duration::from_secs(20), scenarios())
            .await
            .unwrap();
    });
    let baseline = open_fds();
    for round in 0..3 {
        Runtime::new().unwrap().block_on(async {
            fail_after(Duration::from_secs(20), scenarios())
                .await
                .unwrap();
        });
        // Nothing closes late (no thread is involved), but allow a moment anyway.
        let until = Instant::now() + Duration::from_secs(2);
        while open_fds() != baseline && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(open_fds(), baseline, "round {round}: fds leaked");
    }
}

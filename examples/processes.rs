//! Child processes under structured cancellation: a pipeline of two commands fed
//! through the runtime, and a slow command given a deadline — when it runs out, the
//! child is sent SIGTERM, given its grace period, and reaped before the program goes on.
//!
//! Run: `cargo run --example processes`

use std::io::Cursor;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use scope_runtime::io::process::{Command, Stdio};
use scope_runtime::io::{BufReader, copy, read_to_end, write_all};
use scope_runtime::{BoxError, move_on_after, task_group};

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    // `printf | tr a-z A-Z`, with the runtime copying between the two.
    let mut producer = Command::new("printf")
        .arg("hello from a child process\n")
        .stdout(Stdio::piped())
        .spawn()?;
    let mut upper = Command::new("tr")
        .args(["a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let from = producer.stdout.take().expect("piped");
    let mut to = upper.stdin.take().expect("piped");
    let mut result = Vec::new();
    let mut out = upper.stdout.take().expect("piped");
    task_group(|tg| async move {
        tg.spawn(async move {
            copy(&mut BufReader::new(from), &mut to).await?;
            drop(to); // tr sees end-of-file
            Ok(())
        });
        read_to_end(&mut out, &mut result).await?;
        print!("pipeline: {}", String::from_utf8_lossy(&result));
        Ok(())
    })
    .await?;
    producer.wait().await?;
    upper.wait().await?;

    // Input through stdin, output collected: `output()` reads stdout and stderr at once.
    let mut sort = Command::new("sort")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let mut stdin = sort.stdin.take().expect("piped");
    write_all(&mut stdin, &mut Cursor::new(b"pear\napple\nfig\n")).await?;
    drop(stdin);
    let sorted = sort.wait_with_output().await?;
    print!("sorted:\n{}", String::from_utf8_lossy(&sorted.stdout));

    // A command that takes too long: the deadline cancels the wait, which terminates
    // the child (SIGTERM; SIGKILL after 1 s if it ignored that) and reaps it.
    let mut slow = Command::new("sleep")
        .arg("60")
        .cancel_grace(Duration::from_secs(1))
        .spawn()?;
    let started = Instant::now();
    let finished = move_on_after(Duration::from_millis(200), slow.wait()).await?;
    assert!(finished.is_none());
    let status = slow.try_wait()?.expect("reaped before the wait returned");
    println!(
        "slow command stopped after {:?} by signal {:?}",
        started.elapsed(),
        status.signal()
    );
    Ok(())
}

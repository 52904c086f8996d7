//! `#[scope_runtime::main(cores = 2)]` and Ctrl-C: this binary re-executes itself as a
//! child whose `main` is a two-core function; the parent waits until both cores are
//! blocked, sends `SIGINT`, and checks that every core's body saw the cancellation
//! and that the child exits with status 0 (a Ctrl-C is a graceful stop: the groups
//! absorb the cancel and `main` returns `Ok(())`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use scope_runtime::{BoxError, CoreContext, CoresError, sleep};

const CHILD: &str = "SCOPE_RUNTIME_MULTI_CTRL_C_CHILD";

#[scope_runtime::main(cores = 2)]
async fn child(core: CoreContext) -> Result<(), BoxError> {
    println!("core {} waiting", core.index());
    let r = sleep(Duration::from_secs(3600)).await;
    if r.is_err() {
        println!("core {} cancelled", core.index());
    }
    r?;
    Ok(())
}

fn main() -> Result<(), CoresError> {
    if std::env::var_os(CHILD).is_some() {
        return child();
    }
    parent();
    println!("multi_ctrl_c: ok");
    Ok(())
}

fn parent() {
    let mut c = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = c.id();
    let out = c.stdout.take().unwrap();
    // Lines arrive through a thread, so the parent can bound every wait.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut lines: Vec<String> = Vec::new();
    let next = |lines: &mut Vec<String>| {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                lines.push(l);
                true
            }
            Err(_) => false,
        }
    };
    while lines.iter().filter(|l| l.ends_with("waiting")).count() < 2 {
        if !next(&mut lines) {
            let _ = c.kill();
            panic!("the cores did not start: {lines:?}");
        }
    }
    // Both bodies run, so core 0's handler is installed (before any body starts).
    // Give both a moment to block in their sleep; a signal before that still cancels.
    std::thread::sleep(Duration::from_millis(50));
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    while lines.iter().filter(|l| l.ends_with("cancelled")).count() < 2 {
        if !next(&mut lines) {
            let _ = c.kill();
            panic!("not every core saw the cancel: {lines:?}");
        }
    }
    let status = loop {
        if let Some(s) = c.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = c.kill();
            panic!("the child did not exit after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0), "{status:?} {lines:?}");
    for k in 0..2 {
        assert!(lines.contains(&format!("core {k} cancelled")), "{lines:?}");
    }
}

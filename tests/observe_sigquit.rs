//! SIGQUIT prints the task dump: with `io::dump_on_sigquit()`, and with
//! `SCOPE_RUNTIME_DUMP=sigquit` under the macros' runtime (`__private::run_main`, what
//! `#[scope_runtime::main]` expands to).
//!
//! The dump goes to the process's stderr and the signal to the whole process, so each
//! scenario runs in a child process (this binary again, with `SCENARIO` set): it
//! builds a small tree, prints `ready` on stdout, and the parent sends it `SIGQUIT`
//! with `kill`. Every wait is bounded (the child gives up after 20 s). This file has its
//! own `main` (`harness = false` in `Cargo.toml`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use scope_runtime::io::signal::{Signal, SignalKind};
use scope_runtime::sync::channel;
use scope_runtime::{move_on_after, sleep, task_group};

const SCENARIO: &str = "OBSERVE_SIGQUIT_SCENARIO";

/// The child's program: a group with a child blocked on a channel; waits for one
/// SIGQUIT (its own listener, beside the dump printer's), gives the printer a moment,
/// and ends.
async fn child_program() {
    let (_tx, rx) = channel::<u32>(1);
    let mut quit = Signal::new(SignalKind::QUIT).unwrap();
    let r = move_on_after(Duration::from_secs(20), async move {
        task_group(|tg| async move {
            tg.spawn_named("stuck", async move {
                rx.recv().await?;
                Ok(())
            });
            sleep(Duration::from_millis(10)).await?;
            println!("ready");
            quit.recv().await?;
            // The printer was woken by the same delivery: let it run.
            sleep(Duration::from_millis(200)).await?;
            tg.cancel();
            Ok(())
        })
        .await
    })
    .await;
    assert!(matches!(r, Ok(Some(_))), "no SIGQUIT within 20 s: {r:?}");
}

fn with_function() {
    scope_runtime::Runtime::new().unwrap().block_on(async {
        let _printer = scope_runtime::io::dump_on_sigquit().unwrap();
        child_program().await;
    });
}

fn with_env() {
    scope_runtime::__private::run_main(child_program());
}

/// Two cores under `#[main(cores = 2)]`'s runtime: each prints its own dump.
fn with_cores() {
    let started = std::sync::Arc::new(std::sync::Barrier::new(2));
    scope_runtime::__private::run_cores(2, move |core| {
        let started = started.clone();
        async move {
            let (_tx, rx) = channel::<u32>(1);
            let mut quit = Signal::new(SignalKind::QUIT).unwrap();
            task_group(|tg| async move {
                tg.spawn_named("stuck", async move {
                    rx.recv().await?;
                    Ok(())
                });
                sleep(Duration::from_millis(10)).await?;
                // Blocking for a moment: both cores listen before `ready`.
                started.wait();
                if core.index() == 0 {
                    println!("ready");
                }
                move_on_after(Duration::from_secs(20), quit.recv())
                    .await?
                    .ok_or("no SIGQUIT within 20 s")?;
                sleep(Duration::from_millis(200)).await?;
                tg.cancel();
                Ok(())
            })
            .await
            .map(drop) // Ok(None): the group absorbed its own cancel
        }
    })
    .unwrap();
}

/// Runs a scenario, sends SIGQUIT once it is ready; returns its stderr.
fn run_scenario(name: &str, env: Option<(&str, &str)>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(SCENARIO, name)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start the scenario");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "scenario {name} did not start");
    let killed = Command::new("kill")
        .args(["-QUIT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "scenario {name} failed:\n{stderr}");
    stderr
}

fn check(stderr: &str) {
    assert!(
        stderr.contains("scope_runtime dump: 3 tasks (real clock)"),
        "{stderr}"
    );
    assert!(stderr.contains("task #1 `main`"), "{stderr}");
    assert!(stderr.contains("`sigquit dump`"), "{stderr}");
    assert!(stderr.contains("└─ task group"), "{stderr}");
    assert!(
        stderr.contains("`stuck` (spawned at tests/observe_sigquit.rs:"),
        "{stderr}"
    );
    assert!(stderr.contains("waiting on recv on channel #1"), "{stderr}");
    assert_eq!(stderr.matches("scope_runtime dump:").count(), 1, "{stderr}");
}

fn main() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("function") => with_function(),
        Ok("env") => with_env(),
        Ok("cores") => with_cores(),
        Ok(other) => panic!("unknown scenario {other}"),
        Err(_) => {
            check(&run_scenario("function", None));
            check(&run_scenario(
                "env",
                Some(("SCOPE_RUNTIME_DUMP", "sigquit")),
            ));
            let cores = run_scenario("cores", Some(("SCOPE_RUNTIME_DUMP", "sigquit")));
            assert_eq!(cores.matches("scope_runtime dump:").count(), 2, "{cores}");
            for k in 0..2 {
                assert!(
                    cores.contains(&format!(
                        "[thread `scope_runtime core {k}`] scope_runtime dump:"
                    )),
                    "{cores}"
                );
            }
            assert_eq!(cores.matches("`stuck` (spawned at").count(), 2, "{cores}");
            // Without the variable nothing is printed (the child's own listener still
            // takes the signal, so the process does not die of it).
            let quiet = run_scenario("env", Some(("SCOPE_RUNTIME_DUMP", "")));
            assert!(!quiet.contains("scope_runtime dump:"), "{quiet}");
            println!("observe_sigquit: 4 scenarios passed");
        }
    }
}

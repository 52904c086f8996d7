//! The ignored-cancel diagnostic: in debug builds a task that keeps failing
//! checkpoints with `Cancelled` without leaving its cancelled scope gets one warning on
//! stderr, naming the task and where it was spawned.
//!
//! The warning goes to the process's stderr, so each scenario runs in a child process
//! (this binary again, with `SCENARIO` set) and the parent reads what it printed. This
//! file has its own `main` (`harness = false` in `Cargo.toml`).

use std::process::Command;
use std::time::Duration;

use scope_runtime::{CancelScope, Runtime, move_on_after, sleep, task_group};

const SCENARIO: &str = "IGNORED_CANCEL_SCENARIO";
const WARNING: &str = "scope_runtime warning: ";

fn runtime() -> Runtime {
    Runtime::builder().paused_clock(true).build().unwrap()
}

/// A group child that throws its `Cancelled` away 25,000 times. Prints the line of
/// its spawn on stdout.
fn child_spins() {
    runtime().block_on(async {
        task_group(|tg| async move {
            tg.cancel();
            println!("spawn line {}", line!() + 1);
            tg.spawn_named("spinner", async {
                for _ in 0..25_000 {
                    let _ = sleep(Duration::from_secs(1)).await;
                }
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap();
    });
}

/// The `block_on` task itself ignores its cancel.
fn main_spins() {
    let rt = runtime();
    println!("spawn line {}", line!() + 1);
    rt.block_on(async {
        let scope = CancelScope::new();
        scope
            .run(async {
                scope.cancel();
                for _ in 0..12_000 {
                    let _ = scope_runtime::checkpoint().await;
                }
                Ok::<_, scope_runtime::Cancelled>(())
            })
            .await
            .unwrap();
    });
}

/// Ignores its cancel through a fresh inner scope each time round: still one scope
/// (the cancelled outer one) that it never leaves.
fn inner_scopes_spin() {
    runtime().block_on(async {
        task_group(|tg| async move {
            tg.cancel();
            tg.spawn_named("retry", async {
                for _ in 0..11_000 {
                    let _ =
                        move_on_after(Duration::from_secs(5), sleep(Duration::from_secs(1))).await;
                }
                Ok(())
            });
            Ok(())
        })
        .await
        .unwrap();
    });
}

/// Fails fewer checkpoints than the threshold in each of several cancelled scopes,
/// and a child that propagates its cancel: nothing to report.
fn below_threshold() {
    runtime().block_on(async {
        for _ in 0..3 {
            let scope = CancelScope::new();
            let r = scope
                .run(async {
                    scope.cancel();
                    for _ in 0..9_000 {
                        let _ = sleep(Duration::from_secs(1)).await;
                    }
                    Ok::<_, scope_runtime::Cancelled>(())
                })
                .await;
            assert_eq!(r, Ok(Some(())));
        }
        task_group(|tg| async move {
            tg.spawn(async {
                loop {
                    sleep(Duration::from_secs(1)).await?;
                }
            });
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
    });
}

fn run_scenario(name: &str) -> (String, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(SCENARIO, name)
        .output()
        .expect("run the scenario in a child process");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "scenario {name} failed:\n{stdout}\n{stderr}"
    );
    (stdout, stderr)
}

fn spawn_line(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("spawn line "))
        .expect("the scenario prints its spawn line");
    format!("tests/ignored_cancel.rs:{line}:")
}

fn check_child_spins() {
    let (stdout, stderr) = run_scenario("child_spins");
    assert_eq!(
        stderr.matches(WARNING).count(),
        1,
        "one warning, not one per failure:\n{stderr}"
    );
    assert!(
        stderr.contains("task `spinner`"),
        "names the task:\n{stderr}"
    );
    assert!(
        stderr.contains(&spawn_line(&stdout)),
        "names the spawn location:\n{stderr}"
    );
    assert!(stderr.contains("10000 checkpoints"), "{stderr}");
}

fn check_main_spins() {
    let (stdout, stderr) = run_scenario("main_spins");
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
    assert!(stderr.contains("task `main`"), "{stderr}");
    assert!(stderr.contains(&spawn_line(&stdout)), "{stderr}");
}

fn check_inner_scopes_spin() {
    let (_, stderr) = run_scenario("inner_scopes_spin");
    assert_eq!(stderr.matches(WARNING).count(), 1, "{stderr}");
    assert!(stderr.contains("task `retry`"), "{stderr}");
}

fn check_below_threshold() {
    let (_, stderr) = run_scenario("below_threshold");
    assert!(!stderr.contains(WARNING), "no warning expected:\n{stderr}");
}

fn main() {
    match std::env::var(SCENARIO).as_deref() {
        Ok("child_spins") => child_spins(),
        Ok("main_spins") => main_spins(),
        Ok("inner_scopes_spin") => inner_scopes_spin(),
        Ok("below_threshold") => below_threshold(),
        Ok(other) => panic!("unknown scenario {other}"),
        Err(_) if cfg!(debug_assertions) => {
            check_child_spins();
            check_main_spins();
            check_inner_scopes_spin();
            check_below_threshold();
            println!("ignored_cancel: 4 scenarios passed");
        }
        Err(_) => {
            // Release builds have no diagnostic: a spinning task prints nothing.
            let (_, stderr) = run_scenario("child_spins");
            assert!(!stderr.contains(WARNING), "{stderr}");
            println!("ignored_cancel: release build prints nothing");
        }
    }
}

//! `Cores` when a core cannot create its runtime (out of file descriptors): the run
//! fails with that core's `CoreFailure::Runtime`, no core runs the body (so a body's
//! `CoreContext` always names every core), and nothing hangs.
//!
//! Its own test binary, with one test: it lowers the process's fd limit.

#[path = "support/fd_exhaustion.rs"]
mod fd_exhaustion;
use fd_exhaustion::FdExhaustion;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use scope_runtime::{CoreFailure, Cores, Runtime};

/// How many descriptors one runtime holds.
fn fds_per_runtime() -> usize {
    let open = || std::fs::read_dir("/proc/self/fd").unwrap().count();
    let before = open();
    let rt = Runtime::new().unwrap();
    let with = open();
    drop(rt);
    with - before
}

#[test]
fn a_core_without_a_runtime_fails_the_run_and_no_body_runs() {
    let per_runtime = fds_per_runtime();
    assert!(per_runtime > 0);
    let mut partial_runs = 0;
    for _ in 0..50 {
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let result = {
            let mut exhaustion = FdExhaustion::start().unwrap();
            // Room for one runtime: of two cores at least one fails; often exactly one.
            exhaustion.free(per_runtime);
            Cores::new(2).run(move |_core| {
                r.fetch_add(1, Ordering::SeqCst);
                async { Ok(()) }
            })
        };
        let err = result.expect_err("at most one of the two cores has a runtime");
        let failed: Vec<usize> = err.failures().iter().map(|(i, _)| *i).collect();
        assert!(
            err.failures()
                .iter()
                .all(|(_, f)| matches!(f, CoreFailure::Runtime(_))),
            "{err}"
        );
        assert!(
            err.to_string().contains("could not create its runtime"),
            "{err}"
        );
        assert_eq!(ran.load(Ordering::SeqCst), 0, "a body ran: {err}");
        if failed.len() == 1 {
            partial_runs += 1;
            if partial_runs == 3 {
                return;
            }
        }
    }
    panic!("no run had exactly one core without a runtime ({partial_runs} of 50)");
}

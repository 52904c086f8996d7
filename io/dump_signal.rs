//! [`dump_on_sigquit`]: print the task dump on `SIGQUIT`, like a JVM thread dump.

use std::io::{self, Write};

use super::signal::{Signal, SignalKind};
use crate::runtime::{JoinHandle, dump, spawn_named};

/// Prints the runtime's [`Dump`](crate::Dump) on stderr every time the process gets
/// `SIGQUIT` (Ctrl-\ in a terminal, or `kill -QUIT <pid>`), for as long as the
/// returned task runs: until it is cancelled, or the runtime is dropped.
///
/// It spawns a top-level task named `sigquit dump` on the current runtime: it shows in
/// the dump itself (running), and counts in [`Runtime::live_tasks`](crate::Runtime::live_tasks)
/// and [`Metrics`](crate::Metrics). Once called, `SIGQUIT` no longer ends the process
/// with a core dump: the process goes on after printing. Every runtime that called it
/// prints its own tree; a runtime on a named thread other than `main` (each core of
/// [`Cores`](crate::Cores) is one) starts its dump with ``[thread `NAME`]``.
///
/// `#[scope_runtime::main]` and `#[scope_runtime::test]` call it for you when the
/// environment variable `SCOPE_RUNTIME_DUMP` is `sigquit`:
///
/// ```text
/// $ SCOPE_RUNTIME_DUMP=sigquit cargo run --example dump &
/// $ kill -QUIT %1
/// ```
///
/// ```
/// use scope_runtime::io::dump_on_sigquit;
///
/// scope_runtime::Runtime::new()?.block_on(async {
///     let printer = dump_on_sigquit()?;
///     // ... the program; a SIGQUIT now prints where every task waits ...
///     printer.cancel(); // stop printing (or let the runtime's drop end it)
///     Ok::<(), std::io::Error>(())
/// })?;
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// When the signal listener cannot be created (see
/// [`Signal::new`](super::signal::Signal::new)).
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn dump_on_sigquit() -> io::Result<JoinHandle<(), io::Error>> {
    let mut quit = Signal::new(SignalKind::QUIT)?;
    Ok(spawn_named("sigquit dump", async move {
        loop {
            quit.recv().await?;
            let mut text = dump().to_string();
            // Several runtimes (one per core) print one dump each: say whose it is.
            if let Some(name) = std::thread::current().name().filter(|n| *n != "main") {
                text.insert_str(0, &format!("[thread `{name}`] "));
            }
            let mut err = io::stderr().lock();
            // Nowhere to report a failed write to stderr: the next signal tries again.
            let _ = err.write_all(text.as_bytes());
            let _ = err.flush();
        }
    }))
}

/// `SCOPE_RUNTIME_DUMP=sigquit` asks the macros' runtimes to print dumps on `SIGQUIT`.
pub(crate) fn wanted_by_env() -> bool {
    std::env::var_os("SCOPE_RUNTIME_DUMP").is_some_and(|v| v == "sigquit")
}

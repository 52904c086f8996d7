//! Conformance suite: one test per case of `../shared/conformance-cases.md`
//! (ids S, D, G, C, R) plus extra cases (X), each named after its id.
//!
//! Every test drives the runtime through its public API only, on the paused clock,
//! and asserts the exact observable sequence: which lines ran (recorded in a [`Log`]),
//! which checkpoint failed and why, what every scope reports, and what the scope or
//! group returned. `docs/conformance.md` maps each id to its anchor (Trio, asyncio,
//! AnyIO, the seed discussion, or this project).
//!
//! Run with `cargo test --test conformance`.

mod counts;
mod deadlines;
mod extra;
mod found_by_oracle;
mod groups;
mod races;
mod scopes;
mod suite_libs;
mod suite_trio;

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::rc::Rc;
use std::time::{Duration, Instant};

use scope_runtime::{CancelScope, TaskGroup};

/// Records what happened, in order, with the virtual time of each event.
///
/// **Traces for the oracle.** When `CONFORMANCE_TRACE_DIR` is set, every log, when its
/// last clone is dropped, appends its events as one JSON line to
/// `$CONFORMANCE_TRACE_DIR/<test name>.jsonl` (the test thread's name, e.g.
/// `scopes::s01_cancel_before_first_checkpoint`): `{"log": 0, "events": [[ns, "text"],
/// ...]}`, `log` numbering the logs of a test in creation order. `tests/oracle/oracle.py`
/// compares these traces with the same scenario run on Trio, AnyIO or asyncio.
#[derive(Clone)]
pub struct Log {
    t0: Instant,
    events: Rc<Trace>,
}

/// The events of one log; written out when the last `Log` clone goes.
struct Trace {
    index: usize,
    events: RefCell<Vec<(Duration, String)>>,
}

thread_local! {
    static NEXT_LOG: Cell<usize> = const { Cell::new(0) };
}

impl std::ops::Deref for Trace {
    type Target = RefCell<Vec<(Duration, String)>>;
    fn deref(&self) -> &Self::Target {
        &self.events
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let Some(dir) = std::env::var_os("CONFORMANCE_TRACE_DIR") else {
            return;
        };
        let thread = std::thread::current();
        let Some(test) = thread.name() else { return };
        let mut line = format!("{{\"log\": {}, \"events\": [", self.index);
        for (i, (t, e)) in self.events.borrow().iter().enumerate() {
            if i > 0 {
                line.push_str(", ");
            }
            line.push_str(&format!("[{}, {}]", t.as_nanos(), json_string(e)));
        }
        line.push_str("]}\n");
        let path = std::path::Path::new(&dir).join(format!("{test}.jsonl"));
        let written = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?
                .write_all(line.as_bytes())
        });
        if let Err(e) = written {
            eprintln!(
                "conformance: cannot write the trace {}: {e}",
                path.display()
            );
        }
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Default for Log {
    fn default() -> Log {
        Log::new()
    }
}

impl Log {
    /// A new log; times are measured from now (call inside the runtime).
    pub fn new() -> Log {
        let index = NEXT_LOG.with(|n| n.replace(n.get() + 1));
        Log {
            t0: scope_runtime::now(),
            events: Rc::new(Trace {
                index,
                events: RefCell::default(),
            }),
        }
    }

    /// Records a scope's flags: `"<name>: called=<bool> caught=<bool>"` (so the oracle
    /// compares them too).
    pub fn flags(&self, name: &str, scope: &CancelScope) {
        self.push(format!(
            "{name}: called={} caught={}",
            scope.cancel_called(),
            scope.cancelled_caught()
        ));
    }

    /// [`flags`](Self::flags) for a task group.
    pub fn group_flags(&self, name: &str, group: &TaskGroup) {
        self.flags(name, group.cancel_scope());
    }

    /// Records one event at the current virtual time.
    pub fn push(&self, event: impl Into<String>) {
        let at = scope_runtime::now() - self.t0;
        self.events.borrow_mut().push((at, event.into()));
    }

    /// The events in the exact order they happened.
    pub fn events(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The events in the exact order they happened, each prefixed with its time
    /// (`"1s job 1 tick"`).
    pub fn timed(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .map(|(t, e)| format!("{t:?} {e}"))
            .collect()
    }

    /// Like [`timed`](Self::timed), but events of the same instant are sorted by
    /// text: for concurrent tasks whose relative order the rules do not fix.
    pub fn timeline(&self) -> Vec<String> {
        let mut ev = self.events.borrow().clone();
        ev.sort();
        ev.into_iter().map(|(t, e)| format!("{t:?} {e}")).collect()
    }

    /// Time elapsed since the log was created.
    pub fn elapsed(&self) -> Duration {
        scope_runtime::now() - self.t0
    }
}

/// Shorthand for whole seconds.
pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Shorthand for milliseconds.
pub fn ms(m: u64) -> Duration {
    Duration::from_millis(m)
}

/// A plain application error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MyError(pub &'static str);

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error: {}", self.0)
    }
}

impl std::error::Error for MyError {}

/// The message of a panic payload.
pub fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_string()
    }
}

/// Asserts that `events` is the concatenation of `groups`, in order, where the events
/// inside one group may come in any order (concurrent tasks woken by the same event,
/// whose relative order the rules do not fix).
#[track_caller]
pub fn assert_groups(events: &[String], groups: &[&[&str]]) {
    let mut expected: Vec<String> = Vec::new();
    let mut actual: Vec<String> = events.to_vec();
    let mut at = 0;
    for g in groups {
        let mut want: Vec<String> = g.iter().map(|s| s.to_string()).collect();
        want.sort();
        expected.extend(want);
        let end = (at + g.len()).min(actual.len());
        actual[at..end].sort();
        at = end;
    }
    assert_eq!(actual, expected, "events (in order): {events:#?}");
}

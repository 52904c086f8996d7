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
mod groups;
mod races;
mod scopes;

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Records what happened, in order, with the virtual time of each event.
#[derive(Clone)]
pub struct Log {
    t0: Instant,
    events: Rc<RefCell<Vec<(Duration, String)>>>,
}

impl Default for Log {
    fn default() -> Log {
        Log::new()
    }
}

impl Log {
    /// A new log; times are measured from now (call inside the runtime).
    pub fn new() -> Log {
        Log {
            t0: scope_runtime::now(),
            events: Rc::default(),
        }
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

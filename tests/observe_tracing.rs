//! The `tracing` feature: spans per task and per scope / task group, events for
//! cancellations (with the reason), deadlines, child failures and absorptions,
//! recorded by a small collecting subscriber of this file. Run with
//! `cargo test --features tracing --test observe_tracing`.
#![cfg(feature = "tracing")]

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use scope_runtime::{Runtime, move_on_after, sleep, task_group};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Spans by id (name and fields), the stack of entered spans, and one line per event:
/// `span > span: message {fields}`.
#[derive(Default)]
struct Collector {
    next: AtomicU64,
    spans: Mutex<Vec<String>>,
    stack: Mutex<Vec<u64>>,
    events: Mutex<Vec<String>>,
}

struct Fields(String, String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.1, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.1, " {}={value}", field.name());
    }
}

/// The subscriber: a handle to the shared collector.
struct Sub(Arc<Collector>);

impl Subscriber for Sub {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut f = Fields(String::new(), String::new());
        span.record(&mut f);
        // Locations vary with the source: keep the spawn's file only.
        let fields = f.1.split(" spawned_at=").next().unwrap().to_string();
        let mut spans = self.0.spans.lock().unwrap();
        spans.push(format!("{}{}", span.metadata().name(), fields));
        self.0.next.fetch_add(1, Ordering::Relaxed);
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut f = Fields(String::new(), String::new());
        event.record(&mut f);
        let spans = self.0.spans.lock().unwrap();
        let path: Vec<&str> = self
            .0
            .stack
            .lock()
            .unwrap()
            .iter()
            .map(|&i| spans[i as usize - 1].as_str())
            .collect();
        self.0
            .events
            .lock()
            .unwrap()
            .push(format!("[{}] {}{}", path.join(" > "), f.0, f.1));
    }
    fn enter(&self, span: &Id) {
        self.0.stack.lock().unwrap().push(span.into_u64());
    }
    fn exit(&self, span: &Id) {
        let mut stack = self.0.stack.lock().unwrap();
        let pos = stack.iter().rposition(|&s| s == span.into_u64()).unwrap();
        stack.remove(pos);
    }
}

fn collect(f: impl FnOnce()) -> (Vec<String>, Vec<String>) {
    let c = Arc::new(Collector::default());
    tracing::subscriber::with_default(Sub(c.clone()), f);
    let spans = c.spans.lock().unwrap().clone();
    let events = c.events.lock().unwrap().clone();
    (spans, events)
}

#[test]
fn a_deadline_is_traced_from_firing_to_absorption() {
    let (spans, events) = collect(|| {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        rt.block_on(async {
            let r = move_on_after(Duration::from_secs(1), sleep(Duration::from_secs(5))).await;
            assert_eq!(r, Ok(None));
        });
    });
    assert_eq!(spans, ["task id=1 name=main", "scope group=false"]);
    assert_eq!(
        events,
        [
            "[] deadline fired",
            "[] scope cancelled reason=deadline reached",
            "[task id=1 name=main > scope group=false] cancellation absorbed",
        ]
    );
}

#[test]
fn a_failing_child_is_traced_inside_its_task_span() {
    let (spans, events) = collect(|| {
        let rt = Runtime::builder().paused_clock(true).build().unwrap();
        let r = rt.block_on(task_group(|tg| async move {
            tg.spawn_named("bad", async { Err("boom".into()) });
            tg.spawn_named("waiter", async {
                sleep(Duration::from_secs(5)).await?;
                Ok(())
            });
            Ok(())
        }));
        assert!(r.is_err());
    });
    assert_eq!(
        spans,
        [
            "task id=1 name=main",
            "scope group=true",
            "task id=2 name=bad",
            "task id=3 name=waiter",
        ]
    );
    assert_eq!(
        events,
        [
            "[task id=2 name=bad] child failed task=task `bad` (#2) error=boom",
            "[task id=2 name=bad] scope cancelled reason=task `bad` (#2) failed",
            // The waiter's `Cancelled` leaves the group, which absorbs it (its own).
            "[task id=1 name=main > scope group=true] cancellation absorbed",
        ]
    );
}

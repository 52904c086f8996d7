//! The `tracing` feature: the scheduler's events as `tracing` spans and events.
//!
//! * a span `task` per task (fields `id`, `name`, `spawned_at`), entered while the task
//!   is polled (kept in `Core`'s map by task id, so `TaskSlot` does not grow);
//! * a span `scope` (field `group`) per entered cancel scope or task group, entered
//!   while its body is polled, inside its task's span;
//! * events (target `scope_runtime`): `scope cancelled` (with the reason), `deadline
//!   fired`, `child failed` (the task and its error), `cancellation absorbed`.
//!
//! Without the feature this file is not compiled, and no call site exists.

use std::panic::Location;

use tracing::{Level, Span, event, span};

use crate::runtime::cancel::CancelReason;

/// The span of a new task.
pub(crate) fn task_span(id: u64, name: Option<&str>, spawned_at: &Location<'_>) -> Span {
    span!(
        target: "scope_runtime",
        Level::INFO,
        "task",
        id,
        name = name.unwrap_or(""),
        spawned_at = %spawned_at
    )
}

/// The span of an entered scope or group (a child of the current span: its task's).
pub(crate) fn scope_span(group: bool) -> Span {
    span!(target: "scope_runtime", Level::INFO, "scope", group)
}

/// An entered scope became cancelled.
pub(crate) fn scope_cancelled(reason: Option<&CancelReason>) {
    match reason {
        Some(r) => event!(target: "scope_runtime", Level::INFO, reason = %r, "scope cancelled"),
        None => event!(target: "scope_runtime", Level::INFO, "scope cancelled"),
    }
}

/// A scope's deadline timer fired.
pub(crate) fn deadline_fired() {
    event!(target: "scope_runtime", Level::INFO, "deadline fired");
}

/// A task of a group failed (the group cancels itself next).
pub(crate) fn child_failed(task: &dyn std::fmt::Display, error: &dyn std::fmt::Display) {
    event!(target: "scope_runtime", Level::WARN, task = %task, error = %error, "child failed");
}

/// A scope absorbed the `Cancelled` leaving its body.
pub(crate) fn absorbed() {
    event!(target: "scope_runtime", Level::INFO, "cancellation absorbed");
}

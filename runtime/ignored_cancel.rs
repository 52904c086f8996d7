//! The ignored-cancel diagnostic (debug builds only).
//!
//! Cancellation is level-triggered: inside a cancelled scope every checkpoint fails at
//! once, without waiting. Code that throws the `Cancelled` away and tries again —
//! `let _ = sleep(d).await;` in a loop — therefore spins at full speed and never
//! leaves the scope. Each task slot carries an [`IgnoredCancelWatch`] that counts how
//! many checkpoints in a row failed because of the same cancelled scope (the outermost
//! one the checkpoint sees, named by its node's serial: node keys are reused, serials
//! are not), wherever inside it the task is; at
//! [`WARN_AFTER`] it prints one warning on stderr naming the task and where it was
//! spawned (the cell header's `spawned_at`, which the task dump shows too). It is fed from
//! the one place where checkpoints fail (`cancel::check_in`).
//!
//! In release builds the watch is a zero-sized type and every call compiles to
//! nothing.

#[cfg(debug_assertions)]
use std::panic::Location;

/// Failed checkpoints in a row in one scope after which a task is reported.
#[cfg(debug_assertions)]
pub(crate) const WARN_AFTER: u32 = 10_000;

/// Per-task state of the diagnostic (empty in release builds).
#[derive(Debug, Default)]
pub(crate) struct IgnoredCancelWatch {
    /// The serial of the scope that cancelled the last failed checkpoint.
    #[cfg(debug_assertions)]
    serial: u64,
    /// Failed checkpoints in a row because of that scope; `u32::MAX` once reported.
    #[cfg(debug_assertions)]
    streak: u32,
}

impl IgnoredCancelWatch {
    /// Records a checkpoint that failed because of the scope whose serial is `serial`.
    /// Returns `true` when this failure completes a streak worth reporting (once per
    /// task and scope).
    #[cfg(debug_assertions)]
    pub(crate) fn failed_at(&mut self, serial: u64) -> bool {
        if serial != self.serial {
            self.serial = serial;
            self.streak = 0;
        }
        if self.streak == u32::MAX {
            return false;
        }
        self.streak += 1;
        if self.streak < WARN_AFTER {
            return false;
        }
        self.streak = u32::MAX;
        true
    }
}

/// The warning, one line per fact, for a person reading stderr.
#[cfg(debug_assertions)]
pub(crate) fn warning(task: &str, spawned_at: &Location<'_>) -> String {
    format!(
        "scope_runtime warning: {task} (spawned at {spawned_at}) failed {WARN_AFTER} \
         checkpoints in a row with `Cancelled` without leaving its cancelled scope.\n  \
         Cancellation is level-triggered: in a cancelled scope every checkpoint fails at \
         once, so code that ignores the error (e.g. `let _ = sleep(d).await;` in a loop) \
         spins.\n  Propagate the `Cancelled` with `?` or leave the loop when a checkpoint \
         fails. (This check runs in debug builds only.)"
    )
}

//! Observability: the task dump, the metrics counters, the instrument hooks, and the
//! optional `tracing` glue.
//!
//! One mechanism: nothing here keeps a copy of the runtime's state.
//!
//! * `dump.rs` reads the status tree (task roots, entered scopes and their flags, the
//!   registrations of blocked operations) and the task slab at the moment it is asked.
//!   What a blocked task waits on is the [`WaitingOn`] each blocked operation hands
//!   to its cancel registration (`CancelWait::arm`) — the registration every blocking
//!   operation makes anyway, so no operation has a call of its own for the dump.
//! * `metrics.rs` holds plain `Cell<u64>` counters bumped where the run loop already
//!   does the thing counted (one increment each, no branch).
//! * `instrument.rs` is the user's hook trait, called at the same places behind one
//!   `Option` check.
//! * `tracing.rs` (feature `tracing`) turns the same places into spans and events.

pub(crate) mod dump;
pub(crate) mod instrument;
pub(crate) mod metrics;
#[cfg(feature = "tracing")]
pub(crate) mod tracing;

use std::fmt;
use std::sync::OnceLock;
use std::time::Instant;

pub use dump::{Dump, DumpHandle, DumpNode, ScopeDump, TaskDump, TaskState, Wait, dump};
pub use instrument::{Instrument, TaskMeta};
pub use metrics::Metrics;

/// What a blocked operation waits on, as the task dump shows it ([`Wait::on`]).
///
/// Every operation of the runtime that can block says what it waits on when it
/// registers to be woken by a cancellation; a future of another crate does not (wrap
/// it in [`cancellable`](crate::cancellable): it then shows as
/// [`WaitingOn::Foreign`]).
///
/// Numbers such as the `3` in "recv on channel #3" name a primitive's queue of
/// waiters; they are handed out, per runtime, in the order the queues first made a
/// task wait (a channel's senders and receivers are two queues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitingOn {
    /// The operation did not say.
    Unknown,
    /// [`sleep`](crate::sleep) / [`sleep_until`](crate::sleep_until), until `until`
    /// (`None`: a sleep that never ends).
    Sleep {
        /// When the sleep ends.
        until: Option<Instant>,
    },
    /// Awaiting a [`JoinHandle`](crate::JoinHandle): the task with this id
    /// ([`TaskInfo::id`](crate::TaskInfo::id)).
    Join {
        /// The joined task's id.
        task: u64,
    },
    /// Receiving from a [`sync`](crate::sync) channel.
    Recv {
        /// The channel's receive queue.
        channel: u64,
    },
    /// Sending into a full bounded channel.
    Send {
        /// The channel's send queue.
        channel: u64,
    },
    /// Locking a [`Mutex`](crate::sync::Mutex).
    Lock {
        /// The mutex.
        mutex: u64,
    },
    /// Acquiring permits of a [`Semaphore`](crate::sync::Semaphore).
    Acquire {
        /// The semaphore.
        semaphore: u64,
    },
    /// Waiting for a [`Notify`](crate::sync::Notify).
    Notified {
        /// The notify.
        notify: u64,
    },
    /// Waiting for an [`Event`](crate::sync::Event).
    Event {
        /// The event.
        event: u64,
    },
    /// Receiving from a [`oneshot`](crate::sync::oneshot) channel.
    Oneshot,
    /// Waiting for a change of a [`watch`](crate::sync::watch) channel.
    Watch {
        /// The channel.
        channel: u64,
    },
    /// Receiving from a [`broadcast`](crate::sync::broadcast) channel.
    Broadcast {
        /// The channel.
        channel: u64,
    },
    /// Waiting at a [`Barrier`](crate::sync::Barrier).
    Barrier {
        /// The barrier.
        barrier: u64,
    },
    /// Waiting for a [`Condition`](crate::sync::Condition) notification.
    Condition {
        /// The condition.
        condition: u64,
    },
    /// Taking an [`RwLock`](crate::sync::RwLock), for reading or writing.
    RwLock {
        /// The lock.
        rwlock: u64,
    },
    /// A socket, pipe or signal stream to become readable.
    Readable {
        /// Its file descriptor.
        fd: i32,
    },
    /// A socket or pipe to become writable.
    Writable {
        /// Its file descriptor.
        fd: i32,
    },
    /// The result of a job on the blocking thread pool
    /// ([`spawn_blocking`](crate::io::spawn_blocking), `fs`, DNS).
    BlockingJob,
    /// A future of another crate, inside [`cancellable`](crate::cancellable).
    Foreign,
    /// Every other task to be blocked
    /// ([`wait_all_tasks_blocked`](crate::testing::wait_all_tasks_blocked),
    /// [`advance`](crate::testing::advance)).
    AllTasksBlocked,
}

impl WaitingOn {
    /// A short name of the kind of wait, as in the dump's JSON form (`"sleep"`,
    /// `"join"`, `"recv"`, `"send"`, `"lock"`, `"acquire"`, `"notified"`, `"event"`,
    /// `"oneshot"`, `"watch"`, `"broadcast"`, `"barrier"`, `"condition"`, `"rwlock"`,
    /// `"readable"`, `"writable"`, `"blocking_job"`, `"foreign"`,
    /// `"all_tasks_blocked"`, `"unknown"`).
    ///
    /// ```
    /// use scope_runtime::WaitingOn;
    /// assert_eq!(WaitingOn::Join { task: 9 }.kind(), "join");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            WaitingOn::Unknown => "unknown",
            WaitingOn::Sleep { .. } => "sleep",
            WaitingOn::Join { .. } => "join",
            WaitingOn::Recv { .. } => "recv",
            WaitingOn::Send { .. } => "send",
            WaitingOn::Lock { .. } => "lock",
            WaitingOn::Acquire { .. } => "acquire",
            WaitingOn::Notified { .. } => "notified",
            WaitingOn::Event { .. } => "event",
            WaitingOn::Oneshot => "oneshot",
            WaitingOn::Watch { .. } => "watch",
            WaitingOn::Broadcast { .. } => "broadcast",
            WaitingOn::Barrier { .. } => "barrier",
            WaitingOn::Condition { .. } => "condition",
            WaitingOn::RwLock { .. } => "rwlock",
            WaitingOn::Readable { .. } => "readable",
            WaitingOn::Writable { .. } => "writable",
            WaitingOn::BlockingJob => "blocking_job",
            WaitingOn::Foreign => "foreign",
            WaitingOn::AllTasksBlocked => "all_tasks_blocked",
        }
    }

    /// Writes the wait for a person; a sleep's end is given as the time left after
    /// `now` (the clock of the runtime that waits).
    pub(crate) fn write(&self, f: &mut impl fmt::Write, now: Instant) -> fmt::Result {
        match *self {
            WaitingOn::Unknown => f.write_str("an operation that did not say"),
            WaitingOn::Sleep { until: None } => f.write_str("sleep forever"),
            WaitingOn::Sleep { until: Some(t) } => {
                f.write_str("sleep, ")?;
                write_until(f, t, now)
            }
            WaitingOn::Join { task } => write!(f, "join task #{task}"),
            WaitingOn::Recv { channel } => write!(f, "recv on channel #{channel}"),
            WaitingOn::Send { channel } => write!(f, "send on channel #{channel}"),
            WaitingOn::Lock { mutex } => write!(f, "lock on Mutex #{mutex}"),
            WaitingOn::Acquire { semaphore } => write!(f, "acquire on Semaphore #{semaphore}"),
            WaitingOn::Notified { notify } => write!(f, "Notify #{notify}"),
            WaitingOn::Event { event } => write!(f, "Event #{event}"),
            WaitingOn::Oneshot => f.write_str("oneshot receive"),
            WaitingOn::Watch { channel } => write!(f, "change on watch #{channel}"),
            WaitingOn::Broadcast { channel } => write!(f, "recv on broadcast #{channel}"),
            WaitingOn::Barrier { barrier } => write!(f, "Barrier #{barrier}"),
            WaitingOn::Condition { condition } => write!(f, "Condition #{condition}"),
            WaitingOn::RwLock { rwlock } => write!(f, "lock on RwLock #{rwlock}"),
            WaitingOn::Readable { fd } => write!(f, "readable fd {fd}"),
            WaitingOn::Writable { fd } => write!(f, "writable fd {fd}"),
            WaitingOn::BlockingJob => f.write_str("blocking-pool job"),
            WaitingOn::Foreign => f.write_str("a foreign future (cancellable)"),
            WaitingOn::AllTasksBlocked => f.write_str("all other tasks to block"),
        }
    }
}

/// "2.500s left" or "due 0.100s ago".
pub(crate) fn write_until(f: &mut impl fmt::Write, t: Instant, now: Instant) -> fmt::Result {
    if t >= now {
        write!(f, "{:.3}s left", (t - now).as_secs_f64())
    } else {
        write!(f, "due {:.3}s ago", (now - t).as_secs_f64())
    }
}

/// Signed seconds from `now` to `t` (negative: in the past).
pub(crate) fn secs_from(now: Instant, t: Instant) -> f64 {
    if t >= now {
        (t - now).as_secs_f64()
    } else {
        -(now - t).as_secs_f64()
    }
}

/// How the dump says what a file descriptor is (set by `io/`, which has the platform
/// calls; read only when a dump is taken).
/// A [`WaitingOn`] in 9 bytes instead of 16, as a task's header keeps its top-level
/// wait (8 bytes less per task, benchmark B9): a kind byte (`0`: no wait) and one
/// word. A sleep's end is kept as signed nanoseconds from a process-wide base instant
/// (`None` is `i64::MIN`), exact within ±292 years of it; farther ends are clamped
/// there (the dump then shows "292 years" for a sleep of 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PackedWait {
    pub(crate) kind: u8,
    pub(crate) data: u64,
}

/// The instant a packed sleep's end counts from.
fn pack_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn clamp_nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl PackedWait {
    pub(crate) const NONE: PackedWait = PackedWait { kind: 0, data: 0 };

    pub(crate) fn pack(on: Option<WaitingOn>) -> PackedWait {
        let (kind, data) = match on {
            None => (0, 0),
            Some(on) => match on {
                WaitingOn::Unknown => (1, 0),
                WaitingOn::Sleep { until } => {
                    let nanos = match until {
                        None => i64::MIN,
                        Some(t) => match t.checked_duration_since(pack_base()) {
                            Some(after) => clamp_nanos(after),
                            None => -clamp_nanos(pack_base() - t),
                        },
                    };
                    (2, nanos as u64)
                }
                WaitingOn::Join { task } => (3, task),
                WaitingOn::Recv { channel } => (4, channel),
                WaitingOn::Send { channel } => (5, channel),
                WaitingOn::Lock { mutex } => (6, mutex),
                WaitingOn::Acquire { semaphore } => (7, semaphore),
                WaitingOn::Notified { notify } => (8, notify),
                WaitingOn::Event { event } => (9, event),
                WaitingOn::Oneshot => (10, 0),
                WaitingOn::Watch { channel } => (11, channel),
                WaitingOn::Broadcast { channel } => (12, channel),
                WaitingOn::Barrier { barrier } => (13, barrier),
                WaitingOn::Condition { condition } => (14, condition),
                WaitingOn::RwLock { rwlock } => (15, rwlock),
                WaitingOn::Readable { fd } => (16, fd as u32 as u64),
                WaitingOn::Writable { fd } => (17, fd as u32 as u64),
                WaitingOn::BlockingJob => (18, 0),
                WaitingOn::Foreign => (19, 0),
                WaitingOn::AllTasksBlocked => (20, 0),
            },
        };
        PackedWait { kind, data }
    }

    pub(crate) fn is_some(self) -> bool {
        self.kind != 0
    }

    pub(crate) fn unpack(self) -> Option<WaitingOn> {
        let d = self.data;
        Some(match self.kind {
            0 => return None,
            2 => WaitingOn::Sleep {
                until: match d as i64 {
                    i64::MIN => None,
                    n if n >= 0 => {
                        pack_base().checked_add(std::time::Duration::from_nanos(n as u64))
                    }
                    n => pack_base().checked_sub(std::time::Duration::from_nanos(n.unsigned_abs())),
                },
            },
            3 => WaitingOn::Join { task: d },
            4 => WaitingOn::Recv { channel: d },
            5 => WaitingOn::Send { channel: d },
            6 => WaitingOn::Lock { mutex: d },
            7 => WaitingOn::Acquire { semaphore: d },
            8 => WaitingOn::Notified { notify: d },
            9 => WaitingOn::Event { event: d },
            10 => WaitingOn::Oneshot,
            11 => WaitingOn::Watch { channel: d },
            12 => WaitingOn::Broadcast { channel: d },
            13 => WaitingOn::Barrier { barrier: d },
            14 => WaitingOn::Condition { condition: d },
            15 => WaitingOn::RwLock { rwlock: d },
            16 => WaitingOn::Readable {
                fd: d as u32 as i32,
            },
            17 => WaitingOn::Writable {
                fd: d as u32 as i32,
            },
            18 => WaitingOn::BlockingJob,
            19 => WaitingOn::Foreign,
            20 => WaitingOn::AllTasksBlocked,
            _ => WaitingOn::Unknown,
        })
    }
}

static FD_DESCRIBER: OnceLock<fn(i32) -> Option<String>> = OnceLock::new();

/// Called by `io/` when it registers a source.
pub(crate) fn set_fd_describer(describe: fn(i32) -> Option<String>) {
    if FD_DESCRIBER.get().is_none() {
        let _ = FD_DESCRIBER.set(describe);
    }
}

/// What `fd` is ("peer 127.0.0.1:5000"), if `io/` can tell.
pub(crate) fn describe_fd(fd: i32) -> Option<String> {
    FD_DESCRIBER.get().and_then(|d| d(fd))
}

/// Which primitive a `sync` wait list belongs to (its waiters' [`WaitingOn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SyncKind {
    Recv,
    Send,
    Lock,
    Acquire,
    Notified,
    Event,
    Watch,
    Broadcast,
    Barrier,
    Condition,
    RwLock,
}

impl SyncKind {
    pub(crate) fn waiting_on(self, id: u64) -> WaitingOn {
        match self {
            SyncKind::Recv => WaitingOn::Recv { channel: id },
            SyncKind::Send => WaitingOn::Send { channel: id },
            SyncKind::Lock => WaitingOn::Lock { mutex: id },
            SyncKind::Acquire => WaitingOn::Acquire { semaphore: id },
            SyncKind::Notified => WaitingOn::Notified { notify: id },
            SyncKind::Event => WaitingOn::Event { event: id },
            SyncKind::Watch => WaitingOn::Watch { channel: id },
            SyncKind::Broadcast => WaitingOn::Broadcast { channel: id },
            SyncKind::Barrier => WaitingOn::Barrier { barrier: id },
            SyncKind::Condition => WaitingOn::Condition { condition: id },
            SyncKind::RwLock => WaitingOn::RwLock { rwlock: id },
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_of_what_every_task_and_wait_carries() {
        // What the dump costs in memory: a wait's description rides in its
        // registration (16 bytes), a task's spawn location in its cell's header (8
        // bytes; the slab slot is 16 bytes in release builds, plus the 16-byte
        // ignored-cancel watch in debug builds).
        assert_eq!(size_of::<super::WaitingOn>(), 16);
        let slot = if cfg!(debug_assertions) { 32 } else { 16 };
        assert_eq!(size_of::<crate::runtime::task::TaskSlot>(), slot);
    }

    #[test]
    fn a_packed_wait_gives_back_what_was_packed() {
        use super::{PackedWait, WaitingOn, pack_base};
        use std::time::Duration;
        let base = pack_base();
        let hour = Duration::from_secs(3600);
        let mut all = vec![
            None,
            Some(WaitingOn::Unknown),
            Some(WaitingOn::Sleep { until: None }),
            Some(WaitingOn::Sleep { until: Some(base) }),
            Some(WaitingOn::Sleep {
                until: Some(base + hour + Duration::from_nanos(7)),
            }),
            Some(WaitingOn::Sleep {
                until: Some(base - Duration::from_nanos(1)),
            }),
            Some(WaitingOn::Join { task: u64::MAX }),
            Some(WaitingOn::Readable { fd: -1 }),
            Some(WaitingOn::Writable { fd: i32::MAX }),
        ];
        for n in [0, 1, u64::MAX] {
            all.extend(
                [
                    WaitingOn::Recv { channel: n },
                    WaitingOn::Send { channel: n },
                    WaitingOn::Lock { mutex: n },
                    WaitingOn::Acquire { semaphore: n },
                    WaitingOn::Notified { notify: n },
                    WaitingOn::Event { event: n },
                    WaitingOn::Watch { channel: n },
                    WaitingOn::Broadcast { channel: n },
                    WaitingOn::Barrier { barrier: n },
                    WaitingOn::Condition { condition: n },
                    WaitingOn::RwLock { rwlock: n },
                ]
                .map(Some),
            );
        }
        all.extend(
            [
                WaitingOn::Oneshot,
                WaitingOn::BlockingJob,
                WaitingOn::Foreign,
                WaitingOn::AllTasksBlocked,
            ]
            .map(Some),
        );
        let mut kinds = std::collections::HashSet::new();
        for on in all {
            let packed = PackedWait::pack(on);
            assert_eq!(packed.unpack(), on, "{packed:?}");
            assert_eq!(packed.is_some(), on.is_some());
            kinds.insert((packed.kind, on.map(|o| o.kind())));
        }
        // one kind byte per variant, and no two variants share one
        let bytes: std::collections::HashSet<u8> = kinds.iter().map(|k| k.0).collect();
        assert_eq!((kinds.len(), bytes.len()), (21, 21));
        // an end past the packed range is clamped, not turned into "never"
        let far = base + Duration::from_secs(400 * 365 * 86_400);
        let back = PackedWait::pack(Some(WaitingOn::Sleep { until: Some(far) })).unpack();
        assert!(
            matches!(back, Some(WaitingOn::Sleep { until: Some(t) }) if t < far && t > base + hour)
        );
    }
}

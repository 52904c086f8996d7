//! The per-runtime state (`Core`) and the run loop.
//!
//! There is one `Core` per [`Runtime`](crate::Runtime), shared through an `Rc` and
//! reachable from the thread that runs it through a thread-local (`with_core`). Every
//! field is a `Cell` / `RefCell`: the runtime is single-threaded, and the only state
//! other threads touch is in [`Shared`] (behind an `Arc`).
//!
//! Every field is private. The other files of `runtime/` use the methods below; the
//! cancellation state is the [`Cancellation`] of `runtime/cancel`, reached through
//! [`Core::cancel`] and changed only by that module.
//!
//! # Borrow discipline
//!
//! No `RefCell` borrow of `Core` is held across a call into user code (polling a
//! future, waking a waker, dropping a future). Functions that must do both first
//! collect what they need, release the borrow, then call out.
//!
//! # Panics in destructors
//!
//! Dropping a task's future runs user code that may panic. [`Core::drop_task`] catches
//! such a panic and removes the task anyway, so a group dropping its children and the
//! runtime's shutdown drop *every* task and then report the first panic once.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::num::NonZeroU32;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, RawWakerVTable, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::cancel::{self, Cancellation, NO_LINK, NO_NODE, NodeKey};
use super::clock::Clock;
use super::ignored_cancel::IgnoredCancelWatch;
use super::observe::metrics::{Counters, bump};
use super::observe::{Instrument, Metrics, TaskMeta, WaitingOn};
use super::paged_slab::PagedSlab;
use super::reactor::Reactor;
use super::ready_queue::ReadyQueue;
use super::task::{CellRef, Dropped, QueuedId, Shared, TaskId, TaskSlot};
use super::timer::{TimerEntry, TimerKey, Timers};
use super::wake_list::{Target, WakeBy};

/// How many task polls the run loop makes before it checks I/O and timers again, even
/// if tasks are still ready. Bounds how long a busy task set can delay I/O readiness
/// and timers (tokio uses the same figure for its `event_interval`).
pub const IO_POLL_INTERVAL: usize = 61;

/// Identifies a runtime for as long as the process lives (objects that belong to one
/// runtime carry it, so another runtime can tell they are not its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct RuntimeId(NonZeroU32);

static NEXT_RUNTIME: AtomicU32 = AtomicU32::new(1);

impl RuntimeId {
    pub(crate) fn next() -> RuntimeId {
        let n = NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed);
        RuntimeId(NonZeroU32::new(n).expect("scope_runtime: more than 4 billion runtimes"))
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<Core>>> = const { RefCell::new(None) };
}

/// Runs `f` with the runtime of this thread. Panics with a clear message outside one.
#[track_caller]
pub(crate) fn with_core<R>(f: impl FnOnce(&Rc<Core>) -> R) -> R {
    match try_with_core(f) {
        Some(r) => r,
        None => panic!(
            "this operation must be called from inside a scope_runtime runtime \
             (inside `Runtime::block_on`, `#[scope_runtime::main]` or `#[scope_runtime::test]`)"
        ),
    }
}

/// Runs `f` with the runtime of this thread, or returns `None` when there is none.
///
/// Holds a shared borrow of the thread-local slot while `f` runs (nested calls are
/// fine); only [`EnterGuard`] replaces the slot, and never while a task runs.
pub(crate) fn try_with_core<R>(f: impl FnOnce(&Rc<Core>) -> R) -> Option<R> {
    CURRENT
        .try_with(|c| match c.try_borrow() {
            Ok(slot) => slot.as_ref().map(f),
            Err(_) => None,
        })
        .ok()
        .flatten()
}

/// Makes `core` the runtime of this thread until dropped.
pub(crate) struct EnterGuard {
    prev: Option<Rc<Core>>,
}

impl EnterGuard {
    pub(crate) fn enter(core: &Rc<Core>) -> EnterGuard {
        CURRENT.with(|c| {
            // A failed borrow means we are inside `try_with_core`: inside a runtime.
            let Ok(mut c) = c.try_borrow_mut() else {
                panic!(
                    "cannot start a scope_runtime runtime from inside a running one: \
                     `block_on` must not be nested (spawn a task or await the future instead)"
                );
            };
            if let Some(existing) = &*c {
                if !Rc::ptr_eq(existing, core) || core.running.get() {
                    panic!(
                        "cannot start a scope_runtime runtime from inside a running one: \
                         `block_on` must not be nested (spawn a task or await the future instead)"
                    );
                }
            }
            EnterGuard {
                prev: c.replace(core.clone()),
            }
        })
    }
}

impl EnterGuard {
    /// Makes `core` current for its shutdown, whatever runtime is current now (a
    /// `Runtime` may be dropped inside another runtime's task). `None` if the slot is
    /// borrowed.
    pub(crate) fn for_shutdown(core: &Rc<Core>) -> Option<EnterGuard> {
        CURRENT
            .try_with(|c| {
                let mut c = c.try_borrow_mut().ok()?;
                Some(EnterGuard {
                    prev: c.replace(core.clone()),
                })
            })
            .ok()
            .flatten()
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = CURRENT.try_with(|c| *c.borrow_mut() = prev);
    }
}

/// Makes `task` (at `node`) the code being run until dropped, then restores what was
/// current before — also when the poll or drop in between unwinds.
struct TaskContext<'a> {
    core: &'a Core,
    prev_task: Option<TaskId>,
    prev_node: NodeKey,
    prev_link: u32,
    prev_waker: Option<WakerId>,
}

impl<'a> TaskContext<'a> {
    /// `node` and `link` are the task's root and task link (see `TaskSlot`); `waker`
    /// is the one the task is polled with (`None` when it is only dropped).
    fn enter(
        core: &'a Core,
        task: TaskId,
        (node, link): (NodeKey, u32),
        waker: Option<&Waker>,
    ) -> TaskContext<'a> {
        TaskContext {
            core,
            prev_task: core.current_task.replace(Some(task)),
            prev_node: core.cancel.replace_current(node),
            prev_link: core.cancel.replace_top_link(link),
            prev_waker: core.current_waker.replace(waker.map(WakerId::of)),
        }
    }
}

impl Drop for TaskContext<'_> {
    fn drop(&mut self) {
        self.core.current_task.set(self.prev_task);
        self.core.cancel.replace_current(self.prev_node);
        self.core.cancel.replace_top_link(self.prev_link);
        self.core.current_waker.set(self.prev_waker);
    }
}

/// Identifies a waker by its data pointer and vtable (compared, never dereferenced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct WakerId {
    data: *const (),
    vtable: *const RawWakerVTable,
}

impl WakerId {
    fn of(w: &Waker) -> WakerId {
        WakerId {
            data: w.data(),
            vtable: w.vtable(),
        }
    }
}

/// One live task, as the task dump reads it ([`Core::task_rows`]).
pub(crate) struct TaskRow {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) root: NodeKey,
    /// The node of its task link (`NO_NODE`: none; see `tree::TaskLink`).
    pub(crate) parent: NodeKey,
    pub(crate) spawned_at: &'static Location<'static>,
    /// In the ready queue (or being polled after a wake during its poll).
    pub(crate) scheduled: bool,
    /// Its top-level wait (kept in the task, not in the status tree).
    pub(crate) wait: Option<WaitingOn>,
}

/// The state of one runtime.
pub(crate) struct Core {
    id: RuntimeId,
    tasks: RefCell<PagedSlab<TaskSlot>>,
    /// Ids of tasks to poll, in order. May hold stale ids; they are skipped.
    ready: RefCell<ReadyQueue>,
    /// All cancellation state (owned and changed by `runtime/cancel` only).
    cancel: Cancellation,
    timers: RefCell<Timers>,
    clock: Clock,
    shared: Arc<Shared>,
    reactor: Reactor,
    next_seq: Cell<u64>,
    /// The task being polled, if any.
    current_task: Cell<Option<TaskId>>,
    /// The waker that task is polled with.
    current_waker: Cell<Option<WakerId>>,
    /// `block_on` is active.
    running: Cell<bool>,
    /// Task polls (the `block_on` task's included) since the reactor last turned.
    polls_since_park: Cell<usize>,
    /// Names of the tasks that have one, by task sequence number.
    names: RefCell<HashMap<u64, Arc<str>, BuildHasherDefault<KeyHasher>>>,
    /// The name of every `block_on` task, made once (a `block_on` call clones it).
    main_name: Arc<str>,
    /// The last number handed to a `sync` wait queue (what the task dump calls it).
    last_object_id: Cell<u64>,
    /// The metrics counters.
    counters: Counters,
    /// The user's hooks, if any.
    instrument: Option<Rc<dyn Instrument>>,
    /// Whom to wake the next time every task is blocked (`wait_all_tasks_blocked`,
    /// `advance`); see [`Core::park`].
    idle_waiters: RefCell<Slab<Target>>,
    /// How many times the run loop has woken the idle waiters.
    idle_epoch: Cell<u64>,
    /// Each task's span, by task sequence number (feature `tracing`).
    #[cfg(feature = "tracing")]
    spans: RefCell<HashMap<u64, tracing::Span>>,
}

/// Hashes keys the runtime makes itself and users never choose (task sequence
/// numbers for `Core::names`, cell addresses for the reader table): one multiply by a
/// large odd constant (Fibonacci hashing) spreads them well enough, with no flooding
/// to defend against. SipHash on every finished task's removal was about 5 % of
/// cancelling a group of 10,000 children (now only named tasks look the map up at
/// their end: the cell's `NAMED` flag).
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

impl Core {
    pub(crate) fn new(
        paused: bool,
        autojump: Duration,
        instrument: Option<Rc<dyn Instrument>>,
    ) -> std::io::Result<Core> {
        let (reactor, mio_waker) = Reactor::new()?;
        let clock = Clock::new(paused, autojump);
        let id = RuntimeId::next();
        Ok(Core {
            id,
            tasks: RefCell::new(PagedSlab::new()),
            ready: RefCell::new(ReadyQueue::new()),
            cancel: Cancellation::new(),
            timers: RefCell::new(Timers::new(clock.now(), id)),
            clock,
            shared: Arc::new(Shared::new(id, mio_waker)),
            reactor,
            next_seq: Cell::new(0),
            current_task: Cell::new(None),
            current_waker: Cell::new(None),
            running: Cell::new(false),
            polls_since_park: Cell::new(0),
            names: RefCell::new(HashMap::default()),
            main_name: Arc::from("main"),
            last_object_id: Cell::new(0),
            counters: Counters::default(),
            instrument,
            idle_waiters: RefCell::new(Slab::new()),
            idle_epoch: Cell::new(0),
            #[cfg(feature = "tracing")]
            spans: RefCell::new(HashMap::new()),
        })
    }

    pub(crate) fn id(&self) -> RuntimeId {
        self.id
    }

    pub(crate) fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Whether `at <= now()` is known without reading the real clock (see
    /// `Clock::known_passed`).
    pub(crate) fn known_passed(&self, at: Instant) -> bool {
        self.clock.known_passed(at)
    }

    pub(crate) fn clock_paused(&self) -> bool {
        self.clock.is_paused()
    }

    /// Moves the paused clock forward to `to` (`jump`, `advance`); the timers due fire
    /// at the run loop's next turn. No-op on the real clock or for an earlier `to`.
    pub(crate) fn jump_clock_to(&self, to: Instant) {
        self.clock.advance_to(to);
    }

    /// When the earliest pending timer is due.
    pub(crate) fn next_timer_deadline(&self) -> Option<Instant> {
        self.timers.borrow_mut().next_deadline()
    }

    /// How many times the run loop has found every task blocked and woken the idle
    /// waiters.
    pub(crate) fn idle_epoch(&self) -> u64 {
        self.idle_epoch.get()
    }

    /// Registers `waker` to be woken the next time every task is blocked, or re-targets
    /// the registration `prev` (a key of the current epoch). Returns its key.
    pub(crate) fn register_idle_waiter(&self, prev: Option<usize>, waker: &Waker) -> usize {
        let by = self.wake_by(waker);
        let mut list = self.idle_waiters.borrow_mut();
        match prev.and_then(|k| list.get_mut(k).map(|t| (k, t))) {
            Some((key, target)) => {
                if target.same(by) {
                    return key;
                }
                let old = std::mem::replace(target, by.to_target());
                drop(list);
                drop(old);
                key
            }
            None => list.insert(by.to_target()),
        }
    }

    /// Removes an idle waiter of the current epoch.
    pub(crate) fn remove_idle_waiter(&self, key: usize) {
        let old = self.idle_waiters.borrow_mut().try_remove(key);
        drop(old);
    }

    /// Wakes every idle waiter and starts a new epoch.
    fn wake_idle_waiters(&self) {
        let waiters = std::mem::take(&mut *self.idle_waiters.borrow_mut());
        self.idle_epoch.set(self.idle_epoch.get() + 1);
        for (_, target) in waiters {
            self.wake_target(target);
        }
    }

    /// The cancellation state (see `runtime/cancel`).
    pub(crate) fn cancel(&self) -> &Cancellation {
        &self.cancel
    }

    /// What other threads use to reach this runtime.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// The task being polled, if any.
    pub(crate) fn current_task(&self) -> Option<TaskId> {
        self.current_task.get()
    }

    /// The current task, if `waker` is the very waker it is being polled with (an
    /// operation awaited directly by the task rather than inside a combinator).
    pub(crate) fn task_of_waker(&self, waker: &Waker) -> Option<TaskId> {
        let current = self.current_waker.get()?;
        if current == WakerId::of(waker) {
            self.current_task.get()
        } else {
            None
        }
    }

    /// A fresh number for a `sync` wait queue (1, 2, ... per runtime).
    pub(crate) fn next_object_id(&self) -> u64 {
        let id = self.last_object_id.get() + 1;
        self.last_object_id.set(id);
        id
    }

    /// Whether `block_on` is running.
    pub(crate) fn is_running(&self) -> bool {
        self.running.get()
    }

    /// Tasks that have not finished (the `block_on` task included while it runs).
    pub(crate) fn live_tasks(&self) -> usize {
        self.tasks.borrow().len()
    }

    pub(crate) fn pending_timers(&self) -> usize {
        self.timers.borrow().len()
    }

    pub(crate) fn resources(&self) -> super::Resources {
        super::Resources {
            tasks: self.live_tasks(),
            timers: self.pending_timers(),
            scope_nodes: self.cancel.node_count() + self.cancel.task_link_count(),
            cancel_registrations: self.cancel.waiter_count() + self.top_waits(),
            io_sources: self.reactor.source_count(),
            cancel_handles: self.cancel.remote_count(),
        }
    }

    pub(crate) fn insert_timer(&self, at: Instant, entry: TimerEntry) -> TimerKey {
        bump(&self.counters.timers_armed, 1);
        self.timers.borrow_mut().insert(at, entry)
    }

    /// The metrics counters, now.
    pub(crate) fn metrics(&self) -> Metrics {
        let c = &self.counters;
        Metrics {
            live_tasks: self.tasks.try_borrow().map_or(0, |t| t.len()),
            tasks_spawned: c.spawned.get(),
            polls: c.polls.get(),
            local_wakes: c.local_wakes.get(),
            remote_wakes: self.shared.remote_wakes.load(Ordering::Relaxed),
            reactor_turns: c.reactor_turns.get(),
            io_events: c.io_events.get(),
            timers_armed: c.timers_armed.get(),
            timers_fired: c.timers_fired.get(),
            scopes_cancelled: self.cancel.scopes_cancelled(),
            blocking_threads: super::observe::metrics::blocking_threads(),
        }
    }

    /// The user's hooks, if installed.
    #[inline(always)]
    pub(crate) fn instrument(&self) -> Option<&dyn Instrument> {
        self.instrument.as_deref()
    }

    /// Removes a timer; its entry (a waker) is dropped after the borrow.
    pub(crate) fn remove_timer(&self, key: TimerKey) {
        let entry = self.timers.borrow_mut().remove(key);
        drop(entry);
    }

    /// Makes a pending sleep's timer wake whoever `waker` stands for. Returns `false`
    /// if the timer is no longer pending (it fired, or was removed).
    pub(crate) fn update_timer_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        let old = self
            .timers
            .borrow_mut()
            .update_target(key, self.wake_by(waker));
        old.is_some()
    }

    /// How to record `waker`: as the current task when it is that task's own waker
    /// (see [`Target`]), otherwise as itself.
    pub(crate) fn wake_by<'w>(&self, waker: &'w Waker) -> WakeBy<'w> {
        match self.task_of_waker(waker) {
            Some(task) => WakeBy::Task(task),
            None => WakeBy::Waker(waker),
        }
    }

    /// Wakes a target (outside every borrow).
    pub(crate) fn wake_target(&self, target: Target) {
        match target {
            Target::Task(id) => self.schedule(id),
            Target::TopWait(id) => self.schedule_top_wait(id),
            Target::Waker(w) => super::wake_list::wake_contained(w),
        }
    }

    /// Runs the wakes of a change to the status tree (outside its borrow).
    pub(crate) fn run_wakes(&self, wakes: cancel::Wakes) {
        wakes.run(|t| self.wake_target(t));
    }

    /// Puts a task on the local ready queue (its waker already deduplicated the wake).
    pub(crate) fn push_ready(&self, id: TaskId) {
        self.ready.borrow_mut().push_back(id.queued());
        bump(&self.counters.local_wakes, 1);
        if let Some(i) = self.instrument() {
            i.task_scheduled(id.seq);
        }
    }

    /// The id the next inserted task will have (its cell is made with it before it is
    /// inserted; nothing may insert a task in between).
    pub(crate) fn next_task_id(&self) -> TaskId {
        let seq = self.next_seq.get() + 1;
        self.next_seq.set(seq);
        TaskId::new(self.id, self.tasks.borrow().vacant_key(), seq)
    }

    /// Puts a task's cell (made with the id [`Core::next_task_id`] just gave) into the
    /// slab, without scheduling it. A task with a `parent` (a group child) is linked at
    /// that node (`tree::TaskLink`); its root node, like every task's, is created on
    /// first need ([`Core::ensure_root`]).
    pub(crate) fn insert_task(
        &self,
        cell: CellRef,
        parent: Option<NodeKey>,
        name: Option<Arc<str>>,
    ) -> TaskId {
        let id = cell.header().id();
        let spawned_at = cell.header().spawned_at();
        let seq = id.seq;
        let mut tasks = self.tasks.borrow_mut();
        assert!(
            tasks.vacant_key() == id.slot() && seq == self.next_seq.get() && id.runtime == self.id,
            "scope_runtime: a task cell inserted with a stale id"
        );
        let link = parent.map_or(NO_LINK, |p| self.cancel.link_task(p, id));
        let hook_name = self.instrument.as_ref().and_then(|_| name.clone());
        #[cfg(feature = "tracing")]
        let span_name = name.clone();
        if let Some(name) = name {
            self.names.borrow_mut().insert(seq, name);
            cell.header().set_named();
        }
        tasks.insert(TaskSlot {
            cell,
            root: NO_NODE,
            link,
            watch: IgnoredCancelWatch::default(),
        });
        drop(tasks);
        #[cfg(feature = "tracing")]
        {
            // Made outside the borrow (a subscriber is user code). Kept only when a
            // subscriber wants it: with none, tasks cost no map entry.
            let span = super::observe::tracing::task_span(seq, span_name.as_deref(), spawned_at);
            if !span.is_disabled() {
                self.spans.borrow_mut().insert(seq, span);
            }
        }
        bump(&self.counters.spawned, 1);
        if let Some(i) = self.instrument() {
            i.task_spawned(&TaskMeta {
                id: seq,
                name: hook_name,
                spawned_at,
            });
        }
        id
    }

    /// Inserts a spawned task's cell (made `SCHEDULED`, see `task::new_cell`) and
    /// queues its first poll.
    pub(crate) fn spawn_cell(
        &self,
        cell: CellRef,
        parent: Option<NodeKey>,
        name: Option<Arc<str>>,
    ) -> TaskId {
        debug_assert!(cell.header().is_scheduled());
        let id = self.insert_task(cell, parent, name);
        self.push_ready(id);
        id
    }

    /// Wakes a task by id (no-op for a stale id).
    pub(crate) fn schedule(&self, id: TaskId) {
        let tasks = self.tasks.borrow();
        let Some(slot) = tasks.get(id.slot()).filter(|s| s.is(id)) else {
            return;
        };
        if slot.cell.header().set_scheduled() {
            drop(tasks);
            self.push_ready(id);
        }
    }

    /// Wakes a task by id if it has a top-level wait (its root node just became
    /// cancelled; a task blocked deeper is woken by its own registration, or not at
    /// all under a shield).
    fn schedule_top_wait(&self, id: TaskId) {
        let tasks = self.tasks.borrow();
        let Some(slot) = tasks.get(id.slot()).filter(|s| s.is(id)) else {
            return;
        };
        let header = slot.cell.header();
        if header.has_wait() && header.set_scheduled() {
            drop(tasks);
            self.push_ready(id);
        }
    }

    /// Whether the task `id` has not finished.
    pub(crate) fn task_alive(&self, id: TaskId) -> bool {
        self.tasks.borrow().get(id.slot()).is_some_and(|s| s.is(id))
    }

    /// The task's root node, if it has one yet.
    pub(crate) fn task_root(&self, id: TaskId) -> Option<NodeKey> {
        let tasks = self.tasks.borrow();
        tasks
            .get(id.slot())
            .filter(|s| s.is(id) && s.root != NO_NODE)
            .map(|s| s.root)
    }

    /// The task's root node, created now if it has none (under the node of its task
    /// link, which it replaces). `None` for a finished task. For the task running now,
    /// at its top level, the root becomes the current node.
    pub(crate) fn ensure_root(&self, id: TaskId) -> Option<NodeKey> {
        let mut tasks = self.tasks.borrow_mut();
        let slot = tasks.get_mut(id.slot()).filter(|s| s.is(id))?;
        if slot.root == NO_NODE {
            let parent = match std::mem::replace(&mut slot.link, NO_LINK) {
                NO_LINK => NO_NODE,
                link => self.cancel.remove_task_link(link),
            };
            slot.root = self.cancel.insert_root(parent, id);
            if self.current_task.get() == Some(id) {
                self.cancel.replace_top_link(NO_LINK);
                if self.cancel.current() == NO_NODE {
                    self.cancel.replace_current(slot.root);
                }
            }
        }
        Some(slot.root)
    }

    /// Records `on` as the top-level wait of `task` (see `cancel::CancelWait`), if the
    /// code polling runs at the task's top level (`node` is the task's root, or
    /// `NO_NODE` before it has one) and the task's header is free for it (`ours`: the
    /// caller already holds it). `false`: the caller registers in the tree instead.
    pub(crate) fn record_top_wait(
        &self,
        task: TaskId,
        node: NodeKey,
        on: WaitingOn,
        ours: bool,
    ) -> bool {
        let Ok(tasks) = self.tasks.try_borrow() else {
            return false;
        };
        let Some(slot) = tasks.get(task.slot()).filter(|s| s.is(task)) else {
            return false;
        };
        let header = slot.cell.header();
        if node != slot.root || (!ours && header.has_wait()) {
            return false;
        }
        header.set_wait(Some(on));
        true
    }

    /// Forgets the top-level wait of `task` (its holder completed, gave up or moved).
    pub(crate) fn clear_top_wait(&self, task: TaskId) {
        if let Ok(tasks) = self.tasks.try_borrow() {
            if let Some(slot) = tasks.get(task.slot()).filter(|s| s.is(task)) {
                slot.cell.header().set_wait(None);
            }
        }
    }

    /// Whether the code at the top level of `task` is cancelled (its top-level wait
    /// would fail at its next poll). `false` for a finished task.
    pub(crate) fn top_level_cancelled(&self, task: TaskId) -> bool {
        let node = match self.tasks.try_borrow() {
            Ok(tasks) => match tasks.get(task.slot()).filter(|s| s.is(task)) {
                Some(slot) => self.cancel.task_node(slot.root, slot.link),
                None => return false,
            },
            Err(_) => return false,
        };
        node != NO_NODE && self.cancel.is_cancelled(node)
    }

    /// How many tasks have a top-level wait recorded (for [`Core::resources`]).
    fn top_waits(&self) -> usize {
        self.tasks.try_borrow().map_or(0, |t| {
            t.iter().filter(|(_, s)| s.cell.header().has_wait()).count()
        })
    }

    /// Feeds the ignored-cancel diagnostic: a checkpoint of the current task failed
    /// because of the scope whose node has this `serial`. Prints the warning once when the task keeps
    /// failing there.
    #[cfg(debug_assertions)]
    pub(crate) fn note_failed_checkpoint(&self, serial: u64) {
        let Some(id) = self.current_task() else {
            return;
        };
        let spawned_at = {
            let Ok(mut tasks) = self.tasks.try_borrow_mut() else {
                return;
            };
            let Some(slot) = tasks.get_mut(id.slot()).filter(|s| s.is(id)) else {
                return;
            };
            if !slot.watch.failed_at(serial) {
                return;
            }
            slot.cell.header().spawned_at()
        };
        let task = cancel::TaskInfo::new(id.seq, self.task_name(id));
        eprintln!(
            "{}",
            super::ignored_cancel::warning(&task.to_string(), spawned_at)
        );
    }

    /// Every live task as the task dump reads it (empty while the slab is borrowed).
    pub(crate) fn task_rows(&self) -> Vec<TaskRow> {
        let Ok(tasks) = self.tasks.try_borrow() else {
            return Vec::new();
        };
        let names = self.names.try_borrow().ok();
        tasks
            .iter()
            .map(|(_, s)| {
                let header = s.cell.header();
                let id = header.id();
                TaskRow {
                    id,
                    name: names.as_ref().and_then(|n| n.get(&id.seq).cloned()),
                    root: s.root,
                    parent: self.cancel.task_node(NO_NODE, s.link),
                    spawned_at: header.spawned_at(),
                    scheduled: header.is_scheduled(),
                    wait: header.wait(),
                }
            })
            .collect()
    }

    /// The task's span (feature `tracing`; a disabled span if it has none).
    #[cfg(feature = "tracing")]
    fn task_span(&self, id: TaskId) -> tracing::Span {
        let spans = self.spans.borrow();
        if spans.is_empty() {
            return tracing::Span::none();
        }
        spans
            .get(&id.seq)
            .cloned()
            .unwrap_or_else(tracing::Span::none)
    }

    pub(crate) fn task_name(&self, id: TaskId) -> Option<Arc<str>> {
        self.names.borrow().get(&id.seq).cloned()
    }

    /// Polls the task of the ready-queue entry `q` once, if it is still alive and not
    /// the `block_on` task. Returns `true` if the task finished.
    fn poll_task(&self, q: QueuedId) -> bool {
        let (raw, root, id) = {
            let tasks = self.tasks.borrow();
            let Some(slot) = tasks.get(q.slot()).filter(|s| s.cell.header().is_queued(q)) else {
                return false;
            };
            let header = slot.cell.header();
            (slot.cell.raw(), (slot.root, slot.link), header.id())
        };
        // SAFETY: the slot's reference keeps the cell alive until `finish_task(id)`,
        // and nothing calls that while this poll runs: `drop_task` of a task in its
        // own poll answers `Dropped::Later` and leaves the slot to this function
        // (`runtime/task.rs`, module doc). The header and the borrowed waker are not
        // used after the poll.
        let waker = unsafe {
            raw.header().clear_scheduled();
            raw.borrowed_waker()
        };
        bump(&self.counters.polls, 1);
        if let Some(i) = self.instrument() {
            i.before_poll(id.seq);
        }
        #[cfg(feature = "tracing")]
        let span = self.task_span(id);
        #[cfg(feature = "tracing")]
        let _span = span.enter();
        let in_task = TaskContext::enter(self, id, root, Some(&waker));
        // The cell catches the panics of user code, so this poll does not unwind
        // except for bugs in the runtime itself.
        // SAFETY: this is the runtime's thread, and the slot's reference is held
        // throughout (above).
        let res = unsafe { raw.poll(&mut Context::from_waker(&waker)) };
        drop(in_task);
        if let Some(i) = self.instrument() {
            i.after_poll(id.seq, res.is_ready());
        }
        match res {
            Poll::Ready(()) => {
                self.finish_task(id);
                true
            }
            Poll::Pending => false,
        }
    }

    /// Removes a task's slot and root node and marks its cell ended (its future is
    /// already gone); the slot's reference to the cell goes last.
    pub(crate) fn finish_task(&self, id: TaskId) {
        let Some(slot) = self.tasks.borrow_mut().remove_if(id.slot(), |s| s.is(id)) else {
            return;
        };
        let TaskSlot {
            cell, root, link, ..
        } = slot;
        if root != NO_NODE {
            self.run_wakes(self.cancel.remove_root(root));
        }
        if link != NO_LINK {
            self.cancel.remove_task_link(link);
        }
        if cell.header().is_named() {
            self.names.borrow_mut().remove(&id.seq);
        }
        #[cfg(feature = "tracing")]
        if !self.spans.borrow().is_empty() {
            let span = self.spans.borrow_mut().remove(&id.seq);
            drop(span);
        }
        // Ended (a stale waker never queues it again) and the slot's reference given
        // up, outside every borrow (freeing the cell runs no user code, but be plain).
        cell.end();
        if let Some(i) = self.instrument() {
            i.task_exited(id.seq);
        }
    }

    /// Drops a task that has not finished: its future is dropped first (so the scopes
    /// inside it exit in order), then its slot and root node are removed — also when
    /// the future's destructor panics. Returns that panic, for the caller to report
    /// once it has dropped everything it had to.
    ///
    /// A task dropped while it is itself being polled (or dropped) further up the
    /// stack is only marked: that poll drops its future and removes it when it returns.
    #[must_use = "a destructor's panic must be reported"]
    pub(crate) fn drop_task(&self, id: TaskId) -> Option<Box<dyn Any + Send>> {
        let (raw, root) = {
            let tasks = self.tasks.borrow();
            match tasks.get(id.slot()) {
                Some(s) if s.is(id) => (s.cell.raw(), (s.root, s.link)),
                _ => return None,
            }
        };
        let dropped = {
            let _in_task = TaskContext::enter(self, id, root, None);
            // SAFETY: the runtime's thread. The slot keeps the cell alive across the
            // call: only `finish_task(id)` removes it, and a re-entrant `drop_task(id)`
            // from the destructor answers `Later` (the cell is `BUSY`) and leaves it.
            unsafe { raw.drop_future() }
        };
        match dropped {
            Dropped::Later => None,
            Dropped::Now(panic) => {
                self.finish_task(id);
                panic
            }
        }
    }

    /// Drops every task of `ids` (see [`drop_task`](Self::drop_task)) and returns the
    /// first destructor panic; later ones are dropped.
    #[must_use = "a destructor's panic must be reported"]
    pub(crate) fn drop_tasks(
        &self,
        ids: impl IntoIterator<Item = TaskId>,
    ) -> Option<Box<dyn Any + Send>> {
        let mut first = None;
        for id in ids {
            if let Some(p) = self.drop_task(id) {
                first.get_or_insert(p);
            }
        }
        first
    }

    /// Moves tasks woken from other threads into the ready queue and applies cancel
    /// requests that came through `CancelHandle`s.
    fn drain_injector(&self) {
        while let Some(id) = self.shared.pop_injected() {
            self.ready.borrow_mut().push_back(id.queued());
            if let Some(i) = self.instrument() {
                i.task_scheduled(id.seq);
            }
        }
        while let Some((remote, reason)) = self.shared.pop_remote_cancel() {
            cancel::apply_remote(self, remote, reason);
        }
        while let Some(reply) = self.shared.pop_dump_request() {
            reply.fulfil(super::observe::dump::snapshot(self));
        }
        // Remote jobs run outside any task; each catches its own panics (see
        // `runtime/remote.rs`), so one job cannot stop the loop.
        while let Some(job) = self.shared.pop_job() {
            job();
        }
    }

    /// Fires every timer due at the current time. Returns how many fired.
    fn fire_timers(&self) -> usize {
        let now = self.now();
        let mut fired = 0;
        loop {
            let entry = self.timers.borrow_mut().pop_expired(now);
            match entry {
                None => return fired,
                Some(TimerEntry::Wake(t)) => self.wake_target(t),
                Some(TimerEntry::Deadline { node, serial }) => {
                    cancel::deadline_fired(self, node, serial)
                }
            }
            fired += 1;
            bump(&self.counters.timers_fired, 1);
        }
    }

    /// Asks the reactor for events (blocking at most `timeout`), counting the turn.
    fn turn_reactor(&self, timeout: Option<std::time::Duration>) -> usize {
        if let Some(i) = self.instrument() {
            i.before_io_wait(timeout);
        }
        // A turn that may not wait and has no source to report on can only see the
        // `mio::Waker`, whose wakes are all in queues `drain_injector` reads anyway:
        // the system call is skipped (a busy loop of short tasks made one per
        // `IO_POLL_INTERVAL` polls, ~15 % of benchmark B1).
        let events = if timeout == Some(Duration::ZERO) && self.reactor.source_count() == 0 {
            0
        } else {
            self.reactor
                .turn(self, timeout)
                .expect("scope_runtime: polling the OS for I/O readiness failed")
        };
        bump(&self.counters.reactor_turns, 1);
        bump(&self.counters.io_events, events as u64);
        if let Some(i) = self.instrument() {
            i.after_io_wait(events);
        }
        events
    }

    /// One turn of the reactor: I/O events, cross-thread wakes, timers. Blocks only
    /// when no task is ready.
    ///
    /// When every task is blocked — nothing ready, the reactor polled without waiting
    /// had nothing, no timer fired — the idle waiters (`wait_all_tasks_blocked`,
    /// `advance`) are woken first; only with none does the paused clock move: after
    /// [`Core::wait_autojump_threshold`], to the next timer.
    fn park(&self) {
        self.drain_injector();
        let idle = {
            let mut ready = self.ready.borrow_mut();
            ready.trim();
            ready.is_empty()
        };
        let timeout = if !idle || self.clock.is_paused() || !self.idle_waiters.borrow().is_empty() {
            Some(Duration::ZERO)
        } else {
            // A lower bound is enough here (and cheaper than the exact deadline): an
            // early wake only cascades the wheel and waits again.
            self.timers
                .borrow_mut()
                .next_wake()
                .map(|d| d.saturating_duration_since(self.now()))
        };
        let events = self.turn_reactor(timeout);
        self.drain_injector();
        let fired = self.fire_timers();
        let all_blocked = self.ready.borrow().is_empty() && events == 0 && fired == 0;
        if all_blocked && !self.idle_waiters.borrow().is_empty() {
            self.wake_idle_waiters();
            return;
        }
        if self.clock.is_paused() && all_blocked {
            if !self.wait_autojump_threshold() {
                return;
            }
            // Everything is idle: jump the virtual clock to the next timer, or wait
            // for the outside world (I/O, other threads) if there is none.
            let next = self.timers.borrow_mut().next_deadline();
            match next {
                Some(at) => {
                    self.clock.advance_to(at);
                    self.fire_timers();
                }
                None => {
                    self.turn_reactor(None);
                    self.drain_injector();
                }
            }
        }
    }

    /// Paused clock, every task blocked: waits in the reactor until the runtime has
    /// been idle for the autojump threshold of real time. Returns `false` if anything
    /// happened meanwhile (I/O, a wake from another thread): the loop runs it, and the
    /// idle time starts again from zero the next time every task is blocked.
    fn wait_autojump_threshold(&self) -> bool {
        let threshold = self.clock.autojump();
        if threshold.is_zero() {
            return true;
        }
        let start = Instant::now();
        loop {
            // Measured, not assumed: an interrupted poll or a wake that brought no task
            // (a dump request) returns early.
            let left = threshold.saturating_sub(start.elapsed());
            if left.is_zero() {
                return true;
            }
            let events = self.turn_reactor(Some(left));
            self.drain_injector();
            if events > 0 || !self.ready.borrow().is_empty() {
                return false;
            }
        }
    }

    /// Runs tasks until `main` (the `block_on` task) has been woken, then returns so
    /// `block_on` can poll it. `is_done` tells whether the main future finished.
    ///
    /// Every poll counts towards [`IO_POLL_INTERVAL`], the `block_on` task's too: a main
    /// task that keeps yielding still lets the reactor, the timers and the cancels of
    /// other threads in at that interval.
    pub(crate) fn run_until_main_woken(&self, main: TaskId) {
        let main_queued = main.queued();
        loop {
            while self.polls_since_park.get() < IO_POLL_INTERVAL {
                let next = self.ready.borrow_mut().pop_front();
                match next {
                    None => break,
                    Some(q) if q == main_queued => {
                        let slot_ok = self
                            .tasks
                            .borrow()
                            .get(main.slot())
                            .is_some_and(|s| s.is(main));
                        if slot_ok {
                            self.polls_since_park.set(self.polls_since_park.get() + 1);
                            return;
                        }
                    }
                    Some(q) => {
                        self.polls_since_park.set(self.polls_since_park.get() + 1);
                        self.poll_task(q);
                    }
                }
            }
            self.polls_since_park.set(0);
            self.park();
        }
    }

    /// Drops every remaining task and timer. Futures are dropped one at a time with no
    /// borrow held, so their destructors may use the runtime (spawn, cancel, drop).
    /// Returns the first panic of a task's destructor (every task is dropped anyway).
    #[must_use = "a destructor's panic must be reported"]
    pub(crate) fn shutdown(&self) -> Option<Box<dyn Any + Send>> {
        // Collect the ids once (iterating the slab anew after every drop would make
        // shutdown quadratic); tasks spawned by destructors meanwhile are picked up
        // by the next round.
        let mut first = None;
        loop {
            let ids: Vec<TaskId> = self
                .tasks
                .borrow()
                .iter()
                .map(|(_, s)| s.cell.header().id())
                .collect();
            if ids.is_empty() {
                break;
            }
            if let Some(p) = self.drop_tasks(ids) {
                first.get_or_insert(p);
            }
        }
        let timers = self.timers.borrow_mut().take_all();
        drop(timers);
        self.ready.borrow_mut().clear();
        // From now on wakes and `CancelHandle`s of other threads queue nothing.
        self.shared.close();
        while self.shared.pop_injected().is_some() {}
        while self.shared.pop_remote_cancel().is_some() {}
        while let Some(reply) = self.shared.pop_dump_request() {
            reply.abandon();
        }
        // Unrun remote jobs are dropped: their callers learn the runtime is gone.
        self.shared.drop_jobs();
        first
    }
}

/// Polls `fut` as the `block_on` main task of `core` until it completes.
#[track_caller]
pub(crate) fn block_on<F: Future>(core: &Rc<Core>, fut: F) -> F::Output {
    let _enter = EnterGuard::enter(core);
    struct Running<'a>(&'a Core);
    impl Drop for Running<'_> {
        fn drop(&mut self) {
            self.0.running.set(false);
        }
    }
    core.running.set(true);
    let _running = Running(core);

    let main_cell =
        super::task::new_main_cell(core.shared(), core.next_task_id(), Location::caller());
    // The waker keeps the cell alive for all of `block_on` (`main_raw` is used
    // under it).
    let waker = main_cell.waker();
    let main_raw = main_cell.raw();
    let main = core.insert_task(main_cell, None, Some(core.main_name.clone()));
    struct MainTask<'a>(&'a Core, TaskId);
    impl Drop for MainTask<'_> {
        fn drop(&mut self) {
            self.0.finish_task(self.1);
        }
    }
    let _main_guard = MainTask(core, main);
    let mut fut = std::pin::pin!(fut);
    loop {
        // SAFETY: `waker` holds the cell (above); the main task is alive until
        // `_main_guard` ends it, after this loop.
        unsafe { main_raw.header() }.clear_scheduled();
        let root = (core.task_root(main).unwrap_or(NO_NODE), NO_LINK);
        bump(&core.counters.polls, 1);
        if let Some(i) = core.instrument() {
            i.before_poll(main.seq);
        }
        #[cfg(feature = "tracing")]
        let span = core.task_span(main);
        #[cfg(feature = "tracing")]
        let span_guard = span.enter();
        let in_task = TaskContext::enter(core, main, root, Some(&waker));
        let res = fut.as_mut().poll(&mut Context::from_waker(&waker));
        drop(in_task);
        #[cfg(feature = "tracing")]
        drop(span_guard);
        if let Some(i) = core.instrument() {
            i.after_poll(main.seq, res.is_ready());
        }
        if let Poll::Ready(out) = res {
            return out;
        }
        core.run_until_main_woken(main);
    }
}

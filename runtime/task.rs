//! Tasks: how they are stored, identified and woken.
//!
//! # Storage: one cell per task
//!
//! Every task is **one heap allocation**, its *cell*: a [`Header`] followed by the
//! task's body. For a spawned task the body is its future, later replaced in place by
//! what the future's end leaves for a reader (the [`JoinHandle`](crate::JoinHandle)'s
//! `Outcome`), plus the completion's own state (a task-group child's completion
//! callback; nothing for a `JoinHandle`'s task: a handle that waits while the task
//! runs leaves its waker in the thread's reader table, `runtime/readers.rs`, and the
//! `READER` flag says it did). The header holds:
//!
//! * `state` — the one word other threads touch (below);
//! * `vtable` — four functions of the body's concrete type: `poll`, `drop_future`,
//!   `free`, and (for readers, in [`ReadFns`]) `poll_read` / `detach` / `is_done`;
//! * `shared` — a pointer to the runtime's [`Shared`], so a waker on any thread can
//!   reach its runtime, and the pieces of the task's [`TaskId`] (slab key, sequence
//!   number);
//! * `spawned_at` — where the task was spawned (the dump, the ignored-cancel warning);
//! * `wait_data` / `wait_kind` — what the task's top-level wait waits on, for the
//!   task dump (a wait at the task's top level, polled with the task's own waker, is
//!   recorded here instead of in the status tree: see `cancel::CancelWait`), packed
//!   into a word and a byte (`observe::PackedWait`), runtime thread only;
//! * `flags` — the body's phase, read and written on the runtime's thread only.
//!
//! The runtime's `PagedSlab<TaskSlot>` (`runtime/paged_slab.rs`) keeps, per task,
//! the slot's ownership of the cell ([`CellRef`]), the task's root node in the scope
//! tree and a group child's task link (16 bytes in release builds). The
//! task's [`Waker`] *is* a pointer to the cell: there is no other allocation per task.
//! The `block_on` main task has a cell too, with a header and no body (its future
//! lives on `block_on`'s stack).
//!
//! # The state word
//!
//! `state` is an `AtomicUsize`:
//!
//! | bits | name | meaning |
//! |---|---|---|
//! | 0 | `SCHEDULED` | the task's id is in a ready queue (local or the injector), or the task has ended. Set by the wake that finds it clear (that wake queues the id); cleared by the run loop just before each poll, so a wake during a poll queues one more poll. |
//! | 1 | `ENDED` | the task has ended and its slab slot is gone. Set once, together with `SCHEDULED`, and never cleared: a waker that outlives its task finds `SCHEDULED` set and does nothing. |
//! | 2 | `HANDLE` | the task's reader (its `JoinHandle`, a [`Reader`]) holds the cell. Set at spawn for `spawn`ed tasks, cleared when the handle drops. |
//! | 3 | `SHARED` | the cell holds one strong count of its `Shared`. Taken at the task's end if wakers of it still exist, given back when the cell is freed. |
//! | 4.. | wakers | how many [`Waker`]s of the task exist (the run loop's poll waker is borrowed and not counted). |
//!
//! The cell has three kinds of holders: the slot (while `ENDED` is clear), the reader
//! (`HANDLE`) and the wakers (the count). Whoever leaves it with none — `ENDED` set,
//! `HANDLE` clear, no waker — frees it. The slot gives up its hold and sets `ENDED` in
//! one compare-and-swap (`CellRef::end`). `ENDED` without `SCHEDULED` never happens.
//! While a task is alive (`ENDED` clear), `SCHEDULED` is set exactly when one copy of
//! its id is queued.
//!
//! `Shared` is not counted per task: while the task lives its runtime's `Core` holds
//! the `Arc` (and a `Core` drops its tasks before its `Shared`); only a task that ends
//! while wakers of it exist takes a count (`SHARED`), so those wakers can still reach
//! the queues (and find the runtime closed). A task whose waker was never cloned, like
//! most short tasks, costs no atomic operation on `Shared` at all.
//!
//! # The body's phase (`flags`, runtime thread only)
//!
//! `RUNNING` (the stage holds the future), `DONE` (the stage holds the kept output),
//! neither (gone: finished with nothing kept, dropped, or read). The stage is an
//! untagged union: these flags are its only tag, so the code that clears `RUNNING` or
//! `DONE` is the code that drops or takes the value (`drop_stage_future`,
//! `take_kept`), and a freed cell drops nothing of its stage. Plus `BUSY` (the
//! cell's `poll` or `drop_future` is on the stack), `DROP_LATER` (the task was dropped
//! during its own poll) and `KEEP` (a reader exists: a `JoinHandle` will read the
//! output). The stage is touched only under these rules: `poll` and `drop_future`
//! touch it with `BUSY` set, so a re-entrant call (a future that drops its own task, a
//! handle polled by its own task) sees `BUSY` and stays away; `poll_read` touches it
//! only when `DONE`.
//!
//! # Thread safety
//!
//! The cell is not `Send`: its future and output are not. Its waker is `Send + Sync`,
//! and that is sound because code holding only a waker (on any thread) touches nothing
//! but the header's `state` (atomics), `shared` (`Send + Sync`) and the immutable
//! `key`, `seq` and `vtable` — never `flags`, `wait` or the body. The body is polled, dropped
//! and read only on the runtime's thread: by the run loop, by `Core::drop_task` and
//! shutdown, and by the `JoinHandle` (which is `!Send`).
//!
//! The last holder may go on another thread (a waker dropped there). That is sound
//! because by then the body holds nothing: the runtime thread empties it before it
//! lets go of its own holds. The slot's hold is released only after the future was
//! dropped (it finished, or `drop_task` / shutdown dropped it), and the kept output
//! exists only while `KEEP` is set, i.e. while the `JoinHandle` (a runtime-thread
//! holder) lives; its `Drop` takes the output out (and its waker out of the reader
//! table) first. So
//! freeing a cell anywhere gives back at most a count of `Shared` and drops an empty
//! stage: no user code runs off its thread.
//!
//! The waker count follows `Arc`: a clone adds one with `Relaxed` ordering (and
//! aborts past `isize::MAX`), a drop subtracts with `Release` and a drop that leaves
//! the cell unheld fences with `Acquire` before freeing; the slot's and the reader's
//! releases are `AcqRel` updates. A wake sets `SCHEDULED` with `AcqRel`, the run loop
//! clears it with `AcqRel`, so whatever the waking thread wrote before waking is
//! visible to the poll that follows.
//!
//! While a task is being polled (or dropped), the run loop uses the slot's hold
//! without taking one of its own (the poll's waker is borrowed too): nothing removes
//! the slot during that poll, because `drop_task` of a task in its own poll only marks it
//! (`DROP_LATER`) and the poll's end drops and removes it.
//!
//! # Identity
//!
//! A [`TaskId`] is the runtime's id, the slab key and a sequence number unique for
//! the runtime's lifetime. Slab keys are reused; sequence numbers are not. Every lookup
//! compares all three (the header holds the key and number, its `Shared` the runtime),
//! so a stale id (a waker or handle outliving its task) finds nothing.
//!
//! # Wakers
//!
//! A wake sets `SCHEDULED`; only the wake that flips it from clear to set queues the
//! task. On the runtime's own thread the id goes straight to the local ready queue; on
//! any other thread it goes to the lock-free injector (`crossbeam_queue::SegQueue`)
//! and the `mio::Waker` interrupts the reactor's poll. Waker identity (`will_wake`,
//! `Core::task_of_waker`) is the cell's address plus the one static vtable.

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use crossbeam_queue::SegQueue;

use super::cancel::NodeKey;
use super::core::RuntimeId;
use super::ignored_cancel::IgnoredCancelWatch;
use super::observe::dump::DumpReply;
use super::observe::{PackedWait, WaitingOn};

/// Identifies a task: its runtime, its slab key, and a sequence number that runtime
/// never reuses. Comparing whole ids (as every lookup does) makes an id of another
/// runtime, or of a finished task whose slot was reused, a miss. 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct TaskId {
    key: u32,
    pub(crate) runtime: RuntimeId,
    pub(crate) seq: u64,
}

impl TaskId {
    pub(crate) fn new(runtime: RuntimeId, key: usize, seq: u64) -> TaskId {
        TaskId {
            key: u32::try_from(key).expect("scope_runtime: more than 4 billion live tasks"),
            runtime,
            seq,
        }
    }

    /// The task's slot in its runtime's slab.
    pub(crate) fn slot(self) -> usize {
        self.key as usize
    }
}

/// A task as its runtime's local ready queue holds it: the slab key and the low 32
/// bits of the sequence number, 8 bytes instead of a [`TaskId`]'s 16 (a queue holds as
/// many as there are ready tasks: benchmark B9 spawns 100,000 at once). The
/// runtime is the queue's own. A stale entry (its task ended while queued) matches a
/// later task of the same slot only after 2³² spawns while it waits; even then it
/// costs that task one spurious poll, which every future tolerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueuedId {
    key: u32,
    seq: u32,
}

impl QueuedId {
    /// The task's slot in its runtime's slab.
    pub(crate) fn slot(self) -> usize {
        self.key as usize
    }
}

impl TaskId {
    /// This id as the local ready queue holds it.
    pub(crate) fn queued(self) -> QueuedId {
        QueuedId {
            key: self.key,
            seq: self.seq as u32, // the low bits: see `QueuedId`
        }
    }
}

/// State shared with other threads: how to reach this runtime from outside.
pub(crate) struct Shared {
    /// The runtime these queues belong to (part of every [`TaskId`] it makes).
    pub(crate) runtime: RuntimeId,
    /// Tasks woken from other threads, drained by the run loop.
    injector: SegQueue<TaskId>,
    /// Interrupts the reactor's blocking poll.
    mio_waker: mio::Waker,
    /// Cancel requests from [`CancelHandle`](crate::CancelHandle)s: (scope's remote
    /// id, reason). Drained by the run loop.
    remote_cancels: SegQueue<(u64, Option<Arc<str>>)>,
    /// The runtime has shut down: nothing is queued any more (a `CancelHandle` or a
    /// waker that outlives its runtime costs nothing per call).
    closed: AtomicBool,
    /// Dumps asked for by [`DumpHandle`](crate::DumpHandle)s, answered by the run loop.
    dump_requests: SegQueue<Arc<DumpReply>>,
    /// Wakes from other threads (a metrics counter).
    pub(crate) remote_wakes: AtomicU64,
    /// Work sent by [`RemoteHandle`](crate::RemoteHandle)s, run by the run loop
    /// between polls.
    remote_jobs: SegQueue<RemoteJob>,
}

/// A closure another thread asked the runtime to run (see `runtime/remote.rs`).
pub(crate) type RemoteJob = Box<dyn FnOnce() + Send>;

impl Shared {
    pub(crate) fn new(runtime: RuntimeId, mio_waker: mio::Waker) -> Shared {
        Shared {
            runtime,
            injector: SegQueue::new(),
            mio_waker,
            remote_cancels: SegQueue::new(),
            closed: AtomicBool::new(false),
            dump_requests: SegQueue::new(),
            remote_wakes: AtomicU64::new(0),
            remote_jobs: SegQueue::new(),
        }
    }

    /// Marks the runtime gone (at shutdown, before the queues are drained).
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Queues a wake from another thread and interrupts the reactor.
    fn inject(&self, id: TaskId) {
        if self.is_closed() {
            return;
        }
        self.injector.push(id);
        self.remote_wakes.fetch_add(1, Ordering::Relaxed);
        // A failed wake means the poll is gone (runtime dropped): nothing to do.
        let _ = self.mio_waker.wake();
    }

    pub(crate) fn pop_injected(&self) -> Option<TaskId> {
        self.injector.pop()
    }

    /// Queues a cancel request for the scope with remote id `remote`.
    pub(crate) fn push_remote_cancel(&self, remote: u64, reason: Option<Arc<str>>) {
        if self.is_closed() {
            return;
        }
        self.remote_cancels.push((remote, reason));
        // A failed wake means the runtime is gone; the scope is gone with it.
        let _ = self.mio_waker.wake();
    }

    pub(crate) fn pop_remote_cancel(&self) -> Option<(u64, Option<Arc<str>>)> {
        self.remote_cancels.pop()
    }

    /// Queues a dump request and interrupts the reactor; `false` if the runtime is
    /// gone.
    pub(crate) fn push_dump_request(&self, reply: Arc<DumpReply>) -> bool {
        if self.is_closed() {
            return false;
        }
        self.dump_requests.push(reply);
        let _ = self.mio_waker.wake();
        // Closed meanwhile: the shutdown may have drained the queue already.
        !self.is_closed()
    }

    pub(crate) fn pop_dump_request(&self) -> Option<Arc<DumpReply>> {
        self.dump_requests.pop()
    }

    /// Queues a job for the run loop and interrupts the reactor. A job that can no
    /// longer run (the runtime is gone) is dropped here, which tells its caller.
    pub(crate) fn push_job(&self, job: RemoteJob) {
        if self.is_closed() {
            drop(job);
            return;
        }
        self.remote_jobs.push(job);
        let _ = self.mio_waker.wake();
        if self.is_closed() {
            // The shutdown may have drained the queue before this push.
            self.drop_jobs();
        }
    }

    pub(crate) fn pop_job(&self) -> Option<RemoteJob> {
        self.remote_jobs.pop()
    }

    /// Drops every queued job unrun (at shutdown).
    pub(crate) fn drop_jobs(&self) {
        while let Some(job) = self.remote_jobs.pop() {
            drop(job);
        }
    }
}

// ---- the state word ---------------------------------------------------------------

/// In a ready queue, or ended (see the module doc's table).
const SCHEDULED: usize = 1 << 0;
/// Ended: the slab slot (and its ownership of the cell) is gone. Always set together
/// with `SCHEDULED`.
const ENDED: usize = 1 << 1;
/// A reader (the task's `JoinHandle`) holds the cell.
const HANDLE: usize = 1 << 2;
/// The cell holds one strong count of its `Shared` (taken when the task ends while
/// wakers of it exist, so they can still reach their runtime's queues).
const SHARED: usize = 1 << 3;
/// One waker, in the upper bits of the state word.
const REF_ONE: usize = 1 << 4;
/// Past this many wakers a clone aborts (as `Arc` does) rather than overflow.
const MAX_REFS: usize = (isize::MAX as usize) / REF_ONE;

/// Whether a cell in state `s` has no owner left: ended, no reader, no waker.
fn unowned(s: usize) -> bool {
    s & (ENDED | HANDLE) == ENDED && s < REF_ONE
}

// ---- the body's phase (runtime thread only) ---------------------------------------

/// The stage holds the future.
const RUNNING: u8 = 1 << 0;
/// The stage holds the output kept for the reader.
const DONE: u8 = 1 << 1;
/// The cell's `poll` or `drop_future` is running: nothing else touches the stage.
const BUSY: u8 = 1 << 2;
/// `drop_future` was called during the task's own poll: that poll drops the future
/// when it returns.
const DROP_LATER: u8 = 1 << 3;
/// A reader (a `JoinHandle`) exists: the output is kept for it. Without one it is
/// dropped as soon as the future ends.
const KEEP: u8 = 1 << 4;
/// The task has a name in `Core::names` (so only named tasks pay its removal).
const NAMED: u8 = 1 << 5;
/// A reader waits: its waker is in this thread's reader table (`runtime/readers.rs`),
/// so only a task someone waits for pays a lookup at its end.
const READER: u8 = 1 << 6;

/// The first part of every task cell (see the module doc). `repr(C)`: a cell pointer
/// is a header pointer.
#[repr(C)]
pub(crate) struct Header {
    /// `SCHEDULED`, `ENDED`, `HANDLE`, `SHARED` and the waker count; the only field
    /// written off the runtime's thread.
    state: AtomicUsize,
    /// The functions of the body's concrete type.
    vtable: &'static CellVtable,
    /// How to reach the runtime from any thread; holds the runtime's id. Uncounted
    /// while the task lives (its runtime's `Core` holds the `Arc`, and a `Core` drops
    /// its tasks before its `Shared`); counted (`SHARED`) after the task's end while
    /// wakers of it exist. So whoever holds a waker or the slot can reach it.
    shared: NonNull<Shared>,
    /// Where the task was spawned.
    spawned_at: &'static Location<'static>,
    /// The task's sequence number (immutable).
    seq: u64,
    /// What the task's *top-level wait* waits on: an operation blocked at the task's
    /// top level with the task's own waker keeps this instead of a registration in
    /// the status tree (see `cancel::CancelWait`); the task dump reads it. Runtime
    /// thread only. Packed (`PackedWait`): the word here, the kind byte in
    /// `wait_kind` (`0`: none), which fits beside `key` and `flags` in the header's
    /// last word.
    wait_data: Cell<u64>,
    /// The task's slab key (immutable).
    key: u32,
    /// The body's phase (`RUNNING`, `DONE`, ...): runtime thread only.
    flags: Cell<u8>,
    /// The kind byte of the top-level wait (see `wait_data`).
    wait_kind: Cell<u8>,
}

impl Header {
    fn new(
        vtable: &'static CellVtable,
        shared: &Arc<Shared>,
        id: TaskId,
        spawned_at: &'static Location<'static>,
        handle: bool,
        scheduled: bool,
        flags: u8,
    ) -> Header {
        debug_assert_eq!(id.runtime, shared.runtime);
        Header {
            state: AtomicUsize::new(
                (if handle { HANDLE } else { 0 }) | if scheduled { SCHEDULED } else { 0 },
            ),
            vtable,
            // From `Arc::as_ptr`, not a reference: the pointer must carry the whole
            // `Arc` allocation's provenance (its counts too), for
            // `increment_strong_count` / `decrement_strong_count` (Miri checks it).
            shared: NonNull::new(Arc::as_ptr(shared).cast_mut()).expect("an Arc is never null"),
            spawned_at,
            seq: id.seq,
            wait_data: Cell::new(PackedWait::NONE.data),
            key: id.key,
            flags: Cell::new(flags),
            wait_kind: Cell::new(PackedWait::NONE.kind),
        }
    }

    /// The runtime's `Shared`.
    fn shared(&self) -> &Shared {
        // SAFETY: callers hold the slot, a reader or a waker (whoever reaches a
        // header does); see the field's comment for why `Shared` is alive then. A
        // reader after its runtime is gone never calls this.
        unsafe { self.shared.as_ref() }
    }

    pub(crate) fn id(&self) -> TaskId {
        TaskId {
            key: self.key,
            runtime: self.shared().runtime,
            seq: self.seq,
        }
    }

    /// Whether this is the cell of task `id` (the check every slab lookup makes).
    #[inline]
    pub(crate) fn is(&self, id: TaskId) -> bool {
        self.seq == id.seq && self.key == id.key && self.shared().runtime == id.runtime
    }

    /// Whether a ready-queue entry names this task (see [`QueuedId`]).
    pub(crate) fn is_queued(&self, q: QueuedId) -> bool {
        self.key == q.key && self.seq as u32 == q.seq
    }

    pub(crate) fn spawned_at(&self) -> &'static Location<'static> {
        self.spawned_at
    }

    pub(crate) fn is_scheduled(&self) -> bool {
        self.state.load(Ordering::Acquire) & SCHEDULED != 0
    }

    /// Sets `SCHEDULED`. `true` if this call set it: the caller must queue the task.
    #[inline]
    pub(crate) fn set_scheduled(&self) -> bool {
        self.state.fetch_or(SCHEDULED, Ordering::AcqRel) & SCHEDULED == 0
    }

    /// Clears `SCHEDULED` before a poll (run loop only, task alive).
    #[inline]
    pub(crate) fn clear_scheduled(&self) {
        let prev = self.state.fetch_and(!SCHEDULED, Ordering::AcqRel);
        debug_assert_eq!(prev & ENDED, 0, "a task polled after it ended");
    }

    /// Records that the task has a name in `Core::names` (runtime thread).
    pub(crate) fn set_named(&self) {
        self.flags.set(self.flags.get() | NAMED);
    }

    /// Whether the task has a name in `Core::names` (runtime thread).
    pub(crate) fn is_named(&self) -> bool {
        self.flags.get() & NAMED != 0
    }

    /// What the task's top-level wait waits on, if one is recorded (runtime thread).
    pub(crate) fn wait(&self) -> Option<WaitingOn> {
        self.packed_wait().unpack()
    }

    /// Whether a top-level wait is recorded (runtime thread).
    pub(crate) fn has_wait(&self) -> bool {
        self.packed_wait().is_some()
    }

    fn packed_wait(&self) -> PackedWait {
        PackedWait {
            kind: self.wait_kind.get(),
            data: self.wait_data.get(),
        }
    }

    /// Records (or, with `None`, forgets) the task's top-level wait (runtime thread).
    pub(crate) fn set_wait(&self, on: Option<WaitingOn>) {
        let p = PackedWait::pack(on);
        self.wait_kind.set(p.kind);
        self.wait_data.set(p.data);
    }

    /// What a wake does, from any thread (see the module doc).
    fn wake(&self) {
        if !self.set_scheduled() {
            return;
        }
        let id = self.id();
        let pushed_locally = crate::runtime::try_with_core(|core| {
            if std::ptr::eq(Arc::as_ptr(core.shared()), self.shared.as_ptr()) {
                core.push_ready(id);
                true
            } else {
                false
            }
        })
        .unwrap_or(false);
        if !pushed_locally {
            self.shared().inject(id);
        }
    }

    fn add_ref(&self) {
        let prev = self.state.fetch_add(REF_ONE, Ordering::Relaxed);
        if prev / REF_ONE >= MAX_REFS {
            std::process::abort();
        }
    }
}

impl fmt::Debug for Header {
    /// Decodes the state word (and, on the runtime's thread, the phase).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.state.load(Ordering::Acquire);
        f.debug_struct("Header")
            .field("seq", &self.seq)
            .field("key", &self.key)
            .field("scheduled", &(s & SCHEDULED != 0))
            .field("ended", &(s & ENDED != 0))
            .field("handle", &(s & HANDLE != 0))
            .field("holds_shared", &(s & SHARED != 0))
            .field("wakers", &(s / REF_ONE))
            .finish_non_exhaustive()
    }
}

/// The functions of one concrete cell type. Each takes the cell's header pointer.
struct CellVtable {
    /// Polls the future once (runtime thread). `Ready` when the task is over: its
    /// future is gone and its output handed on (or it was dropped during this poll).
    poll: unsafe fn(NonNull<Header>, &mut Context<'_>) -> Poll<()>,
    /// Drops the future unfinished (runtime thread).
    drop_future: unsafe fn(NonNull<Header>) -> Dropped,
    /// Frees the cell (the last reference went; any thread; the body is empty).
    free: unsafe fn(NonNull<Header>),
}

/// What [`RawTask::drop_future`] did.
#[must_use = "a destructor's panic must be reported, a `Now` task removed"]
pub(crate) enum Dropped {
    /// The future is gone (or was already): remove the task now. Carries the panic of
    /// the future's destructor, if any.
    Now(Option<Box<dyn Any + Send>>),
    /// The task is being polled (or dropped) further up the stack: that call drops it
    /// and ends it.
    Later,
}

// ---- ownership --------------------------------------------------------------------

/// The slab slot's ownership of a task cell (one per task, held from spawn until the
/// slot is removed). Not `Send`: it may reach the body, which lives on the runtime's
/// thread. Dropping it ends the task ([`CellRef::end`]).
pub(crate) struct CellRef {
    ptr: NonNull<Header>,
}

impl CellRef {
    pub(crate) fn header(&self) -> &Header {
        // SAFETY: the slot's ownership keeps the cell allocated; the header is only
        // ever shared (its mutable parts are atomics and a `Cell`).
        unsafe { self.ptr.as_ref() }
    }

    /// The uncounted pointer, for use while this ownership is known to be held.
    pub(crate) fn raw(&self) -> RawTask {
        RawTask(self.ptr)
    }

    /// A new waker for the task (one more waker in the count).
    pub(crate) fn waker(&self) -> Waker {
        self.header().add_ref();
        // SAFETY: the data pointer is a live cell with the waker just counted, and
        // `WAKER_VTABLE`'s functions uphold `RawWaker`'s contract for such pointers
        // (see their comments).
        unsafe { Waker::from_raw(RawWaker::new(self.ptr.as_ptr().cast(), &WAKER_VTABLE)) }
    }

    /// Marks the task ended (no wake queues it any more) and gives up the slot's
    /// ownership, in one atomic update; frees the cell if nobody else holds it. If
    /// wakers remain, the cell takes a strong count of its `Shared` for them.
    pub(crate) fn end(self) {
        let ptr = ManuallyDrop::new(self).ptr;
        // SAFETY: the slot's ownership is given up exactly once, here.
        unsafe { end(ptr) }
    }
}

impl Drop for CellRef {
    fn drop(&mut self) {
        // SAFETY: the slot's ownership is given up exactly once, here (`end` does not
        // run this `Drop`).
        unsafe { end(self.ptr) }
    }
}

impl fmt::Debug for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.header().fmt(f)
    }
}

/// See [`CellRef::end`].
///
/// # Safety
///
/// The caller gives up the slot's ownership of the live cell `ptr`.
unsafe fn end(ptr: NonNull<Header>) {
    // SAFETY: the slot's ownership keeps the cell alive until the update below.
    let header = unsafe { ptr.as_ref() };
    let shared = header.shared;
    let mut took_shared = false;
    let mut cur = header.state.load(Ordering::Relaxed);
    let new = loop {
        debug_assert_eq!(cur & (ENDED | SHARED), 0, "a task ended twice");
        let wakers = cur >= REF_ONE;
        if wakers && !took_shared {
            // SAFETY: the task is alive, so its `Core` still holds the `Arc` this
            // pointer came from.
            unsafe { Arc::increment_strong_count(shared.as_ptr()) };
            took_shared = true;
        }
        let new = cur | SCHEDULED | ENDED | if wakers { SHARED } else { 0 };
        match header
            .state
            .compare_exchange_weak(cur, new, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => break new,
            Err(actual) => cur = actual,
        }
    };
    if took_shared && new & SHARED == 0 {
        // The last waker went meanwhile: the count taken is not needed.
        // SAFETY: the count taken above, given back; the `Core` still holds one.
        unsafe { Arc::decrement_strong_count(shared.as_ptr()) };
    }
    if unowned(new) {
        // SAFETY: nobody else holds the cell (the `AcqRel` update ordered the uses of
        // those who held it before it).
        unsafe { free(ptr, new) }
    }
}

/// Gives up one waker; frees the cell if nobody else holds it.
///
/// # Safety
///
/// The caller owns one counted waker of the live cell `ptr` and does not use it
/// afterwards.
unsafe fn release(ptr: NonNull<Header>) {
    // SAFETY: the caller's waker keeps the cell alive until the subtraction.
    let header = unsafe { ptr.as_ref() };
    let prev = header.state.fetch_sub(REF_ONE, Ordering::Release);
    debug_assert!(prev >= REF_ONE, "task cell waker count underflow");
    let now = prev - REF_ONE;
    if unowned(now) {
        // Every other holder's uses happen before this free.
        fence(Ordering::Acquire);
        // SAFETY: that was the last holder: nobody else can reach the cell.
        unsafe { free(ptr, now) }
    }
}

/// Gives up the reader's hold; frees the cell if nobody else holds it.
///
/// # Safety
///
/// The caller is the cell's reader, on the runtime's thread, and does not use it
/// afterwards.
unsafe fn release_handle(ptr: NonNull<Header>) {
    // SAFETY: the reader's hold keeps the cell alive until the update.
    let header = unsafe { ptr.as_ref() };
    let prev = header.state.fetch_and(!HANDLE, Ordering::AcqRel);
    debug_assert!(prev & HANDLE != 0, "a reader released twice");
    let now = prev & !HANDLE;
    if unowned(now) {
        // SAFETY: that was the last holder (`AcqRel` ordered the others' uses).
        unsafe { free(ptr, now) }
    }
}

/// Frees a cell nobody holds; `state` is its final state word.
///
/// # Safety
///
/// Nobody else can reach the cell, and its body is empty (module doc, "Thread
/// safety"), so freeing it runs no user code, on whatever thread.
unsafe fn free(ptr: NonNull<Header>, state: usize) {
    // SAFETY: (caller) still allocated.
    let (free, shared) = unsafe { (ptr.as_ref().vtable.free, ptr.as_ref().shared) };
    // SAFETY: (caller) the last holder frees it, with the function of its own type.
    unsafe { free(ptr) };
    if state & SHARED != 0 {
        // SAFETY: the count `end` took for the wakers, given back by the last one.
        unsafe { Arc::decrement_strong_count(shared.as_ptr()) };
    }
}

/// An uncounted pointer to a cell: valid only while someone holds a reference. Used
/// by the run loop around a poll or a drop while the slot's reference is held.
#[derive(Clone, Copy)]
pub(crate) struct RawTask(NonNull<Header>);

impl RawTask {
    /// # Safety
    ///
    /// A reference to the cell is held for as long as the returned one is used.
    pub(crate) unsafe fn header<'a>(self) -> &'a Header {
        // SAFETY: the caller keeps the cell alive for `'a`.
        unsafe { self.0.as_ref() }
    }

    /// A waker that borrows the caller's reference: no count changes; a clone of it
    /// is an ordinary counted waker.
    ///
    /// # Safety
    ///
    /// A reference to the cell is held for as long as the returned waker is used.
    pub(crate) unsafe fn borrowed_waker(self) -> ManuallyDrop<Waker> {
        // SAFETY: never dropped (`ManuallyDrop`), so it consumes no reference; the
        // caller keeps the cell alive while it is used.
        ManuallyDrop::new(unsafe {
            Waker::from_raw(RawWaker::new(self.0.as_ptr().cast(), &WAKER_VTABLE))
        })
    }

    /// Polls the task once.
    ///
    /// # Safety
    ///
    /// On the runtime's thread, with a reference held that nothing releases before
    /// this returns (the slot's: see the module doc). The cell may be freed once this
    /// returns `Ready` and the slot is removed.
    pub(crate) unsafe fn poll(self, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `header` is valid (caller); `poll` is the vtable's entry for this
        // very cell, called under the caller's guarantees.
        unsafe { (self.header().vtable.poll)(self.0, cx) }
    }

    /// Drops the task's future unfinished, in place.
    ///
    /// # Safety
    ///
    /// On the runtime's thread, with a reference held across the call.
    pub(crate) unsafe fn drop_future(self) -> Dropped {
        // SAFETY: as for `poll`.
        unsafe { (self.header().vtable.drop_future)(self.0) }
    }
}

// ---- the waker --------------------------------------------------------------------

/// The one vtable of every task waker (a `static`: one address, so `will_wake` and
/// `Core::task_of_waker` can compare it). The data pointer is a cell's header.
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

/// # Safety
///
/// `data` is a live cell header, kept alive by the waker being cloned.
unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: (caller) live; only the atomic state is touched, which is fine from
    // any thread.
    let header = unsafe { &*data.cast::<Header>() };
    header.add_ref();
    RawWaker::new(data, &WAKER_VTABLE)
}

/// # Safety
///
/// `data` is a live cell header; this call consumes the waker's reference.
unsafe fn waker_wake(data: *const ()) {
    // SAFETY: the waker's reference keeps the cell alive during the wake, then is
    // given up exactly once.
    unsafe {
        waker_wake_by_ref(data);
        waker_drop(data);
    }
}

/// # Safety
///
/// `data` is a live cell header, kept alive by the waker.
unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: (caller) live. `wake` touches only the state word, the `Shared` and
    // the immutable id fields: allowed from any thread.
    let header = unsafe { &*data.cast::<Header>() };
    header.wake();
}

/// # Safety
///
/// `data` is a live cell header; this call consumes the waker's reference.
unsafe fn waker_drop(data: *const ()) {
    // SAFETY: a waker's data pointer is a non-null cell pointer it holds one counted
    // reference to, given up here.
    unsafe { release(NonNull::new_unchecked(data.cast_mut().cast::<Header>())) }
}

// ---- spawned cells ----------------------------------------------------------------

/// What happens at a task's end (the cell's completion part): the task-group child's
/// callback ([`ChildDone`]), or the outcome kept for a `JoinHandle`.
pub(crate) trait Completion<O>: 'static {
    /// What the cell keeps for its reader (`()` if it never has one).
    type Kept: 'static;

    /// The future ended with `out` (its output, or the panic of its poll or of its
    /// destructor) and has been dropped. Returns what to keep for the reader; it is
    /// dropped at once if there is no reader (`KEEP` clear).
    fn finish(&self, out: std::thread::Result<O>) -> Option<Self::Kept>;

    /// The future was dropped unfinished: drop what `finish` would have consumed.
    fn abandon(&self);
}

/// A spawned task's cell: header, phase-guarded stage, completion.
#[repr(C)]
struct TaskCell<F: Future, C: Completion<F::Output>> {
    header: Header,
    /// Touched only as the phase flags allow (module doc).
    stage: UnsafeCell<Stage<F, C::Kept>>,
    completion: C,
}

/// The future, then what its end left for the reader, then nothing. Which one the
/// stage holds is the phase flags' to say (`RUNNING`, `DONE`, neither), so the stage
/// carries no tag of its own (8 bytes less per task, benchmark B9) and never drops
/// anything by itself: the code that clears a phase's flag drops or takes its value.
union Stage<F, K> {
    running: ManuallyDrop<F>,
    done: ManuallyDrop<K>,
}

/// The reading side of a cell whose completion keeps a value (what a `JoinHandle`
/// calls); typed by the kept value only, so the handle need not name the future.
pub(crate) struct ReadFns<K> {
    poll_read: unsafe fn(NonNull<Header>, &Waker) -> Poll<Option<K>>,
    is_done: unsafe fn(NonNull<Header>) -> bool,
    detach: unsafe fn(NonNull<Header>),
}

/// A reader's hold on a cell (the `HANDLE` bit) plus the typed functions to read it.
/// Runtime thread only (not `Send`).
pub(crate) struct Reader<K> {
    ptr: NonNull<Header>,
    /// The cell type's `READ_FNS`, a promoted constant (a pointer rather than a
    /// `&'static` so that `K` need not be `'static` in every type that holds one).
    fns: NonNull<ReadFns<K>>,
}

impl<K> Reader<K> {
    fn fns(&self) -> &ReadFns<K> {
        // SAFETY: `fns` points to a promoted `static` (`new_cell`), valid forever.
        unsafe { self.fns.as_ref() }
    }

    /// The kept value if the task has finished (`Some` once; `None` afterwards, or if
    /// the task was dropped unfinished); otherwise records `waker` and is `Pending`.
    pub(crate) fn poll_read(&self, waker: &Waker) -> Poll<Option<K>> {
        // SAFETY: `fns` belong to this cell's type (`new_cell` pairs them); the
        // reference is held; a `Reader` is `!Send`, so this is the runtime's thread.
        unsafe { (self.fns().poll_read)(self.ptr, waker) }
    }

    /// Whether the output is there, not yet read.
    pub(crate) fn is_done(&self) -> bool {
        // SAFETY: as in `poll_read`.
        unsafe { (self.fns().is_done)(self.ptr) }
    }
}

impl<K> Drop for Reader<K> {
    fn drop(&mut self) {
        // SAFETY: as in `poll_read`; then the hold is given up, once.
        unsafe {
            (self.fns().detach)(self.ptr);
            release_handle(self.ptr);
        }
    }
}

impl<F, C> TaskCell<F, C>
where
    F: Future + 'static,
    C: Completion<F::Output>,
{
    const VTABLE: CellVtable = CellVtable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        free: Self::free,
    };

    const READ_FNS: ReadFns<C::Kept> = ReadFns {
        poll_read: Self::poll_read,
        is_done: Self::is_done,
        detach: Self::detach,
    };

    /// # Safety
    ///
    /// `ptr` is a live cell of exactly this type, and the caller is on the runtime's
    /// thread (the body is reached).
    unsafe fn get<'a>(ptr: NonNull<Header>) -> &'a Self {
        // SAFETY: (caller) the header pointer is the cell pointer (`repr(C)`, header
        // first) and carries the whole allocation's provenance (`Box::into_raw`).
        unsafe { ptr.cast::<Self>().as_ref() }
    }

    fn flags(&self) -> u8 {
        self.header.flags.get()
    }

    fn set_flags(&self, f: u8) {
        self.header.flags.set(f);
    }

    /// Records `waker` as the reader's (in the thread's reader table), unless the one
    /// recorded already wakes the same task.
    fn set_reader(&self, waker: &Waker) {
        let cell = NonNull::from(&self.header);
        if self.flags() & READER != 0 && super::readers::wakes_as(cell, waker) {
            return;
        }
        match super::readers::set(cell, waker.clone()) {
            Ok(replaced) => {
                self.set_flags(self.flags() | READER);
                drop(replaced);
            }
            // The thread is exiting: nothing will finish the task to wake it.
            Err(unrecorded) => drop(unrecorded),
        }
    }

    /// Takes the waiting reader's waker, if one waits.
    fn take_reader(&self) -> Option<Waker> {
        if self.flags() & READER == 0 {
            return None;
        }
        self.set_flags(self.flags() & !READER);
        super::readers::take(NonNull::from(&self.header))
    }

    /// Drops the future in place and clears `RUNNING`, also if the destructor
    /// panics (the future is gone either way). Returns that panic.
    ///
    /// # Safety
    ///
    /// Runtime thread, `RUNNING` and `BUSY` set by the caller: the stage holds the
    /// future and nothing else references it.
    unsafe fn drop_stage_future(&self) -> Result<(), Box<dyn Any + Send>> {
        debug_assert_eq!(self.flags() & (RUNNING | BUSY), RUNNING | BUSY);
        let stage = self.stage.get();
        // SAFETY: (caller) `RUNNING`: `running` is the live field, and `BUSY` makes
        // this the only access. It is dropped in place (a pinned future is never
        // moved), once: `RUNNING` is cleared below whether or not the drop unwinds.
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            ManuallyDrop::drop(&mut (*stage).running)
        }));
        self.set_flags(self.flags() & !RUNNING);
        r
    }

    /// Takes the kept value out and clears `DONE`.
    ///
    /// # Safety
    ///
    /// Runtime thread, `DONE` set: the stage holds the kept value, and nothing
    /// references it (no poll or drop runs on a finished task).
    unsafe fn take_kept(&self) -> C::Kept {
        debug_assert!(self.flags() & DONE != 0);
        self.set_flags(self.flags() & !DONE);
        // SAFETY: (caller) `done` is the live field, read once: `DONE` is now clear.
        unsafe { ManuallyDrop::take(&mut (*self.stage.get()).done) }
    }

    /// # Safety
    ///
    /// See [`RawTask::poll`]; `ptr` is a cell of this type.
    unsafe fn poll(ptr: NonNull<Header>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: (caller) live, this type, runtime thread.
        let this = unsafe { Self::get(ptr) };
        let flags = this.flags();
        if flags & BUSY != 0 {
            return Poll::Pending;
        }
        if flags & RUNNING == 0 {
            return Poll::Ready(());
        }
        this.set_flags(flags | BUSY);
        // SAFETY: `RUNNING`: the stage holds the future. `BUSY` keeps every other
        // path away from the stage until it is cleared, so this is the only
        // reference into it. The cell never moves and the future is only dropped in
        // place (`drop_stage_future`): it is pinned.
        let fut = unsafe { Pin::new_unchecked(&mut *(*this.stage.get()).running) };
        let out = match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => {
                let flags = this.flags() & !BUSY;
                this.set_flags(flags);
                if flags & DROP_LATER == 0 {
                    return Poll::Pending;
                }
                // Dropped during its own poll: drop it now. Its destructor's panic has
                // nobody to go to (the dropper returned long ago); it is contained.
                this.set_flags(flags | BUSY);
                // SAFETY: `RUNNING` and `BUSY` set again, nothing references the stage.
                if let Err(p) = unsafe { this.drop_stage_future() } {
                    drop_contained(p);
                }
                this.set_flags(this.flags() & !(RUNNING | BUSY | DROP_LATER));
                let reader = this.take_reader();
                this.completion.abandon();
                drop(reader);
                return Poll::Ready(());
            }
            Ok(Poll::Ready(v)) => Ok(v),
            Err(p) => Err(p),
        };
        // Drop the finished future in place; a panic there is the task's panic unless
        // its poll panicked first (the value it returned is dropped, contained).
        // SAFETY: still `RUNNING` and `BUSY`; the poll's borrow of the stage has ended.
        let out = match unsafe { this.drop_stage_future() } {
            Ok(()) => out,
            Err(p) => match out {
                Err(first) => {
                    drop_contained(p);
                    Err(first)
                }
                Ok(v) => {
                    drop_contained(v);
                    Err(p)
                }
            },
        };
        // `BUSY` stays set while the completion runs (a group's callback may drop
        // tasks): a re-entrant `drop_future` of this task leaves it to this poll.
        let kept = this.completion.finish(out);
        let keep = this.flags() & KEEP != 0;
        let mut done = 0;
        match kept {
            Some(k) if keep => {
                // SAFETY: `BUSY`, and the stage is empty (`RUNNING` clear): writing a
                // union field drops nothing. `DONE` is set below, with `BUSY` cleared.
                unsafe { (*this.stage.get()).done = ManuallyDrop::new(k) };
                done = DONE;
            }
            Some(k) => drop_contained(k),
            None => {}
        }
        let reader = this.take_reader();
        this.set_flags((this.flags() & !(RUNNING | BUSY | DROP_LATER)) | done);
        // Woken last, after the cell's phase is final: nothing below touches the cell.
        if let Some(w) = reader {
            super::wake_list::wake_contained(w);
        }
        Poll::Ready(())
    }

    /// # Safety
    ///
    /// See [`RawTask::drop_future`]; `ptr` is a cell of this type.
    unsafe fn drop_future(ptr: NonNull<Header>) -> Dropped {
        // SAFETY: (caller) live, this type, runtime thread.
        let this = unsafe { Self::get(ptr) };
        let flags = this.flags();
        if flags & BUSY != 0 {
            this.set_flags(flags | DROP_LATER);
            return Dropped::Later;
        }
        if flags & RUNNING == 0 {
            return Dropped::Now(None);
        }
        this.set_flags(flags | BUSY);
        // SAFETY: `RUNNING` and `BUSY` set, nothing references the stage.
        let mut panic = unsafe { this.drop_stage_future() }.err();
        this.set_flags(this.flags() & !(RUNNING | BUSY | DROP_LATER));
        let reader = this.take_reader();
        let rest = std::panic::catch_unwind(AssertUnwindSafe(|| {
            this.completion.abandon();
            drop(reader);
        }));
        if let Err(p) = rest {
            match panic {
                None => panic = Some(p),
                Some(_) => drop_contained(p),
            }
        }
        Dropped::Now(panic)
    }

    /// # Safety
    ///
    /// The last reference to the cell `ptr` of this type is gone.
    unsafe fn free(ptr: NonNull<Header>) {
        // SAFETY: (caller) nobody else can reach the cell; it was made by
        // `Box::into_raw` in `new_cell` with exactly this type. Its body is empty
        // (module doc): dropping it runs no user code, whatever the thread.
        let cell = unsafe { Box::from_raw(ptr.cast::<Self>().as_ptr()) };
        debug_assert_eq!(cell.flags() & (RUNNING | DONE), 0, "freed a full task cell");
        drop(cell);
    }

    /// # Safety
    ///
    /// Runtime thread, a reference held, `ptr` of this type.
    unsafe fn poll_read(ptr: NonNull<Header>, waker: &Waker) -> Poll<Option<C::Kept>> {
        // SAFETY: (caller) live, this type, runtime thread.
        let this = unsafe { Self::get(ptr) };
        let flags = this.flags();
        if flags & DONE != 0 {
            // SAFETY: `DONE`, runtime thread (caller).
            return Poll::Ready(Some(unsafe { this.take_kept() }));
        }
        if flags & RUNNING == 0 {
            return Poll::Ready(None);
        }
        // Not finished (maybe being polled: the task awaits its own handle). Only the
        // reader's entry is touched, never the stage.
        this.set_reader(waker);
        Poll::Pending
    }

    /// # Safety
    ///
    /// As for `poll_read`.
    unsafe fn is_done(ptr: NonNull<Header>) -> bool {
        // SAFETY: (caller) live, this type, runtime thread.
        unsafe { Self::get(ptr) }.flags() & DONE != 0
    }

    /// The reader goes: nothing is kept for it any more.
    ///
    /// # Safety
    ///
    /// As for `poll_read`.
    unsafe fn detach(ptr: NonNull<Header>) {
        // SAFETY: (caller) live, this type, runtime thread.
        let this = unsafe { Self::get(ptr) };
        let flags = this.flags();
        // SAFETY: `DONE`, as in `poll_read`.
        let kept = (flags & DONE != 0).then(|| unsafe { this.take_kept() });
        this.set_flags(this.flags() & !KEEP);
        let reader = this.take_reader();
        // User code (the output's destructor) runs after the cell's phase is final.
        drop(reader);
        drop(kept);
    }
}

/// Allocates the cell of a spawned task: held by the slab slot (the returned
/// [`CellRef`]) and, if `with_reader`, by a [`Reader`] (`HANDLE`). The task starts `SCHEDULED` (its caller queues
/// its id).
pub(crate) fn new_cell<F, C>(
    shared: &Arc<Shared>,
    id: TaskId,
    spawned_at: &'static Location<'static>,
    fut: F,
    completion: C,
    with_reader: bool,
) -> (CellRef, Option<Reader<C::Kept>>)
where
    F: Future + 'static,
    C: Completion<F::Output>,
{
    let flags = RUNNING | if with_reader { KEEP } else { 0 };
    let cell = Box::new(TaskCell::<F, C> {
        header: Header::new(
            &TaskCell::<F, C>::VTABLE,
            shared,
            id,
            spawned_at,
            with_reader,
            true,
            flags,
        ),
        stage: UnsafeCell::new(Stage {
            running: ManuallyDrop::new(fut),
        }),
        completion,
    });
    // SAFETY: `Box::into_raw` is never null.
    let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(cell)) }.cast::<Header>();
    // A `'static` borrow: the compiler checks that the constant is promoted.
    let fns: &'static ReadFns<C::Kept> = &TaskCell::<F, C>::READ_FNS;
    let reader = with_reader.then(|| Reader {
        ptr,
        fns: NonNull::from(fns),
    });
    (CellRef { ptr }, reader)
}

/// The completion of a task-group child or `start` task: a callback that gets the
/// output, or the panic of its poll or destructor. Dropped uncalled if the task is.
pub(crate) struct ChildDone<D>(Cell<Option<D>>);

impl<D> ChildDone<D> {
    pub(crate) fn new(done: D) -> ChildDone<D> {
        ChildDone(Cell::new(Some(done)))
    }
}

impl<O, D> Completion<O> for ChildDone<D>
where
    D: FnOnce(std::thread::Result<O>) + 'static,
{
    type Kept = ();

    fn finish(&self, out: std::thread::Result<O>) -> Option<()> {
        if let Some(done) = self.0.take() {
            done(out);
        }
        None
    }

    fn abandon(&self) {
        drop(self.0.take());
    }
}

// ---- the main task's cell ---------------------------------------------------------

/// The `block_on` task's cell: a header only (its future lives on `block_on`'s stack).
#[repr(C)]
struct MainCell {
    header: Header,
}

impl MainCell {
    const VTABLE: CellVtable = CellVtable {
        poll: Self::poll,
        drop_future: Self::drop_future,
        free: Self::free,
    };

    /// `block_on` polls the main future itself; the run loop never does.
    unsafe fn poll(_: NonNull<Header>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }

    unsafe fn drop_future(_: NonNull<Header>) -> Dropped {
        Dropped::Now(None)
    }

    /// # Safety
    ///
    /// The last reference to the main cell `ptr` is gone.
    unsafe fn free(ptr: NonNull<Header>) {
        // SAFETY: (caller) nobody can reach it; made by `Box::into_raw` in
        // `new_main_cell` with this type; no body.
        drop(unsafe { Box::from_raw(ptr.cast::<MainCell>().as_ptr()) });
    }
}

/// Allocates the `block_on` task's cell (held by the slot only, not scheduled).
pub(crate) fn new_main_cell(
    shared: &Arc<Shared>,
    id: TaskId,
    spawned_at: &'static Location<'static>,
) -> CellRef {
    let cell = Box::new(MainCell {
        header: Header::new(&MainCell::VTABLE, shared, id, spawned_at, false, false, 0),
    });
    // SAFETY: `Box::into_raw` is never null.
    let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(cell)) }.cast::<Header>();
    CellRef { ptr }
}

/// Drops a panic payload (or any value) whose destructor may itself panic.
fn drop_contained<T>(v: T) {
    if let Err(p) = std::panic::catch_unwind(AssertUnwindSafe(|| drop(v))) {
        // A payload whose destructor panics again is leaked rather than unwound.
        std::mem::forget(p);
    }
}

// ---- the slab slot ----------------------------------------------------------------

/// One task of the runtime, as its slab holds it: 16 bytes in release builds (this is
/// per-task memory, see benchmark B9). Everything else is in the cell.
pub(crate) struct TaskSlot {
    /// The slot's hold on the task's cell.
    pub(crate) cell: CellRef,
    /// The task's root node in the scope tree, or `NO_NODE` until it needs one (a
    /// scope entered, a cancel requested, a wait that cannot be kept in the header);
    /// group children too. (Names live in `Core::names`, since few tasks have one.)
    pub(crate) root: NodeKey,
    /// A group child's task link at its group's node until it has a root
    /// (`tree::TaskLink`), else `NO_LINK`.
    pub(crate) link: u32,
    /// The ignored-cancel diagnostic (zero-sized in release builds).
    #[cfg_attr(not(debug_assertions), allow(dead_code))]
    pub(crate) watch: IgnoredCancelWatch,
}

impl TaskSlot {
    /// Whether this slot holds task `id`.
    #[inline]
    pub(crate) fn is(&self, id: TaskId) -> bool {
        self.cell.header().is(id)
    }
}

#[cfg(test)]
mod tests {
    //! The cell's life cycle: references, wakes from anywhere, readers, drops and
    //! panics. Run under Miri too (it reports leaks and use after free).

    use std::cell::{Cell, RefCell};
    use std::future::{Future, poll_fn};
    use std::rc::Rc;
    use std::sync::{Arc, Mutex};
    use std::task::{Poll, Waker};

    use crate::Cancelled;
    use crate::runtime::{Outcome, Runtime, current_task, spawn, yield_now};

    /// Counts its drops.
    struct Counted(Rc<Cell<u32>>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    /// Pending forever; keeps a clone of its waker in `out`.
    fn park_forever(out: Rc<RefCell<Option<Waker>>>) -> impl Future<Output = ()> {
        poll_fn(move |cx| {
            *out.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
    }

    fn rt() -> Runtime {
        Runtime::new().unwrap()
    }

    #[test]
    fn the_slot_and_the_header_stay_small() {
        let slot = if cfg!(debug_assertions) { 32 } else { 16 };
        assert_eq!(size_of::<super::TaskSlot>(), slot);
        assert_eq!(size_of::<super::Header>(), 56);
        // The stage is as big as the bigger of the future and the kept output: the
        // phase flags are its tag (an enum would add a word to both).
        assert_eq!(size_of::<super::Stage<[u64; 5], Box<u8>>>(), 40);
        assert_eq!(size_of::<super::Stage<Option<Waker>, [u64; 3]>>(), 24);
        // A completion without state (a `JoinHandle`'s: its waiting reader is in the
        // thread's table) adds nothing to the cell.
        struct NoState;
        impl super::Completion<()> for NoState {
            type Kept = ();
            fn finish(&self, _: std::thread::Result<()>) -> Option<()> {
                None
            }
            fn abandon(&self) {}
        }
        assert_eq!(
            size_of::<super::TaskCell<std::future::Pending<()>, NoState>>(),
            56
        );
    }

    #[test]
    fn a_waker_outliving_its_task_wakes_nothing_and_frees_the_cell_last() {
        let rt = rt();
        let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
        let k = kept.clone();
        let stale = rt.block_on(async move {
            let h = spawn(async move {
                let w = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
                *k.borrow_mut() = Some(w.clone());
                Ok::<_, Cancelled>(w)
            });
            let w = h.await.unwrap().unwrap();
            // The task is gone: its waker's wakes and clones are no-ops for the runtime.
            let before = crate::runtime::metrics().local_wakes;
            w.wake_by_ref();
            let w3 = w.clone();
            w3.wake();
            let w2 = w.clone();
            assert!(w2.will_wake(&w));
            let after = crate::runtime::metrics().local_wakes;
            assert_eq!(before, after, "a finished task's waker queued it");
            drop(w2);
            w
        });
        assert_eq!(rt.resources().tasks, 0);
        // Dropped after the runtime's end, and on another thread: the last reference
        // frees the (empty) cell there.
        let other = kept.borrow_mut().take().unwrap();
        std::thread::spawn(move || {
            other.wake_by_ref();
            drop(other);
        })
        .join()
        .unwrap();
        drop(rt);
        stale.wake();
    }

    #[test]
    fn a_wake_from_another_thread_reaches_the_task() {
        let rt = rt();
        rt.block_on(async {
            let slot: Arc<Mutex<Option<Waker>>> = Arc::default();
            let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let (s, f) = (slot.clone(), flag.clone());
            let h = spawn(async move {
                poll_fn(|cx| {
                    if f.load(std::sync::atomic::Ordering::Acquire) {
                        return Poll::Ready(());
                    }
                    *s.lock().unwrap() = Some(cx.waker().clone());
                    Poll::Pending
                })
                .await;
                Ok::<_, Cancelled>(7)
            });
            // Let it block.
            while slot.lock().unwrap().is_none() {
                yield_now().await;
            }
            let t = std::thread::spawn(move || {
                flag.store(true, std::sync::atomic::Ordering::Release);
                let w = slot.lock().unwrap().take().unwrap();
                w.wake_by_ref();
                w.wake(); // deduplicated: the task is already scheduled
            });
            t.join().unwrap();
            assert_eq!(h.await.unwrap().unwrap(), 7);
            assert!(crate::runtime::metrics().remote_wakes >= 1);
        });
        assert_eq!(rt.resources().tasks, 0);
    }

    #[test]
    fn a_handle_dropped_before_the_end_drops_the_output_at_the_end() {
        let rt = rt();
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let h = spawn(async move {
                yield_now().await;
                Ok::<_, Cancelled>(Counted(d))
            });
            drop(h);
            assert_eq!(drops.get(), 0);
            for _ in 0..3 {
                yield_now().await;
            }
            assert_eq!(
                drops.get(),
                1,
                "the unread output is dropped when the task ends"
            );
        });
    }

    #[test]
    fn a_handle_dropped_after_the_end_drops_the_output_then() {
        let rt = rt();
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let h = spawn(async move { Ok::<_, Cancelled>(Counted(d)) });
            for _ in 0..3 {
                yield_now().await;
            }
            assert!(!h.is_alive());
            assert!(format!("{h:?}").contains("finished: true"));
            assert_eq!(drops.get(), 0, "kept for the handle");
            drop(h);
            assert_eq!(drops.get(), 1);
        });
    }

    #[test]
    fn a_handle_read_after_the_end_gets_the_output_once() {
        let rt = rt();
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            let mut h = spawn(async move { Ok::<_, Cancelled>(Counted(d)) });
            yield_now().await;
            let out = (&mut h).await.unwrap().unwrap();
            assert_eq!(drops.get(), 0);
            drop(out);
            assert_eq!(drops.get(), 1);
            assert!(format!("{h:?}").contains("finished: false"));
            drop(h);
            assert_eq!(drops.get(), 1);
        });
    }

    #[test]
    fn pending_tasks_are_dropped_and_freed_with_the_runtime() {
        let rt = rt();
        let drops = Rc::new(Cell::new(0));
        let wakers: Vec<Rc<RefCell<Option<Waker>>>> = (0..5).map(|_| Rc::default()).collect();
        let handles = rt.block_on(async {
            let mut handles = Vec::new();
            for w in &wakers {
                let (c, w) = (Counted(drops.clone()), w.clone());
                // Each future keeps its own waker: a reference cycle that the drop of
                // the future must break (Miri reports the cell as leaked otherwise).
                handles.push(spawn(async move {
                    let _c = c;
                    park_forever(w).await;
                    Ok::<(), Cancelled>(())
                }));
            }
            // A detached one too, and one that keeps its waker inside itself only.
            let c = Counted(drops.clone());
            drop(spawn(async move {
                let _c = c;
                let mut own = None;
                poll_fn(|cx| {
                    own = Some(cx.waker().clone());
                    Poll::<()>::Pending
                })
                .await;
                Ok::<(), Cancelled>(())
            }));
            yield_now().await;
            handles
        });
        assert_eq!(rt.resources().tasks, 6);
        assert_eq!(drops.get(), 0);
        drop(rt);
        assert_eq!(
            drops.get(),
            6,
            "every pending future dropped with the runtime"
        );
        // The handles outlive the runtime; their tasks are gone.
        for h in &handles {
            assert!(!h.is_alive());
        }
        drop(handles);
        // The wakers kept outside are stale now; dropping them frees the last cells.
        for w in wakers {
            let w = w.borrow_mut().take().unwrap();
            w.wake_by_ref();
        }
    }

    #[test]
    fn a_panic_in_poll_or_in_the_futures_drop_is_the_tasks_panic() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("drop boom");
            }
        }
        let rt = rt();
        rt.block_on(async {
            let h = spawn(async {
                yield_now().await;
                if true {
                    panic!("poll boom");
                }
                Ok::<(), Cancelled>(())
            });
            match h.await.unwrap() {
                Outcome::Panicked(p) => assert_eq!(p.downcast_ref::<&str>(), Some(&"poll boom")),
                o => panic!("{o:?}"),
            }
            let h = spawn(async {
                let _p = PanicOnDrop;
                yield_now().await;
                Ok::<u8, Cancelled>(1)
            });
            match h.await.unwrap() {
                Outcome::Panicked(p) => assert_eq!(p.downcast_ref::<&str>(), Some(&"drop boom")),
                o => panic!("{o:?}"),
            }
        });
        // A pending future whose destructor panics at shutdown: every task is still
        // dropped, and the panic comes out of the runtime's drop.
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        rt.block_on(async move {
            drop(spawn(async move {
                let _p = PanicOnDrop;
                std::future::pending::<()>().await;
                Ok::<(), Cancelled>(())
            }));
            drop(spawn(async move {
                let _c = Counted(d);
                std::future::pending::<()>().await;
                Ok::<(), Cancelled>(())
            }));
            yield_now().await;
        });
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(rt)));
        assert!(r.is_err(), "the destructor's panic is reported");
        assert_eq!(drops.get(), 1, "the other task was dropped too");
    }

    #[test]
    fn a_task_dropped_during_its_own_poll_is_dropped_when_the_poll_returns() {
        let rt = rt();
        let drops = Rc::new(Cell::new(0));
        let d = drops.clone();
        let seen = Rc::new(Cell::new(false));
        let s = seen.clone();
        rt.block_on(async move {
            let h = spawn(async move {
                let _c = Counted(d);
                let me = current_task();
                poll_fn(|_| {
                    // Dropping the running task only marks it: its future is still here.
                    assert!(crate::runtime::drop_tasks(vec![me]).is_none());
                    s.set(true);
                    Poll::<()>::Pending
                })
                .await;
                Ok::<(), Cancelled>(())
            });
            yield_now().await;
            assert!(seen.get());
            assert!(!h.is_alive(), "removed when its poll returned");
            assert_eq!(drops.get(), 1, "its future dropped then");
        });
        assert_eq!(rt.resources().tasks, 0);
    }
}

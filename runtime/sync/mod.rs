//! Cancellation-aware synchronisation: [`Event`], [`Mutex`], [`RwLock`], [`Semaphore`],
//! [`Notify`], [`Barrier`], [`Condition`],
//! memory channels ([`channel`], [`unbounded`], [`broadcast`]), [`oneshot`] and [`watch`].
//!
//! # Every wait is a checkpoint
//!
//! Awaiting any of these primitives follows two of the runtime's rules (see
//! [`semantics`](crate::semantics), R1 and R10):
//!
//! * **Cancelled means no side effect.** If the calling code is cancelled, the
//!   await fails with `Err(Cancelled)` (at once, or when the cancel arrives while it
//!   waits) and has done nothing: no message taken or sent, no lock or permit held.
//!   A waiter that leaves the queue — cancelled or dropped — leaves its place to the
//!   next waiter. This holds even when the operation could complete without waiting
//!   (Trio's rule: a cancelled `lock()` of a free mutex fails too).
//! * **What was handed over is kept.** Waiters are served by **direct hand-off**:
//!   a message moves into the waiting receiver's slot, a lock or permits are granted
//!   to the waiting task, a `notify_one` is given to the first waiter. If the waiter's
//!   task is cancelled after that but before it ran again, its await still returns
//!   what it was given; the cancellation fails its *next* checkpoint (level-triggered,
//!   so nothing can block forever). A waiter *dropped* after being served passes the
//!   value, lock, permits or notification on — nothing is lost or duplicated.
//! * **A cancel wakes the waiting future itself** (not only its task), so a wait
//!   polled inside a `futures` combinator fails at once too.
//! * **The order of events decides.** A cancelled waiter stays queued until it is
//!   polled again, but a hand-off skips it: *cancel, then send* in the same turn gives
//!   the message to the next waiter (the cancelled one takes nothing); *send, then
//!   cancel* hands it to the waiter, which keeps it. This is Trio's behaviour, where a
//!   cancel takes the task off the wait queue at once. (A hand-off made from another
//!   thread cannot look at the runtime's scopes and serves the first waiter: the two
//!   events are concurrent there, and that is one valid order.)
//!
//! The non-waiting forms (`try_send`, `try_recv`, `try_lock`, `try_acquire_many`,
//! `Event::set`, `OneshotSender::send`, `UnboundedSender::send`) are not checkpoints.
//!
//! ```
//! use scope_runtime::sync::channel;
//! use scope_runtime::{move_on_after, task_group, sleep};
//! use std::time::Duration;
//!
//! scope_runtime::Runtime::builder().paused_clock(true).build().unwrap().block_on(async {
//!     let (tx, rx) = channel(1);
//!     task_group(|tg| async move {
//!         let rx2 = rx.clone();
//!         // First in line, but gives up after 1 s: takes nothing.
//!         tg.spawn(async move {
//!             assert_eq!(move_on_after(Duration::from_secs(1), rx2.recv()).await?, None);
//!             Ok(())
//!         });
//!         tg.spawn(async move {
//!             assert_eq!(rx.recv().await?, Some("hello")); // served next
//!             Ok(())
//!         });
//!         sleep(Duration::from_secs(2)).await?;
//!         tx.send("hello").await?;
//!         Ok(())
//!     })
//!     .await
//!     .unwrap();
//! });
//! ```
//!
//! # Errors
//!
//! Waits return `Result<_, Cancelled>` so `?` works everywhere; "closed" is a value:
//! `recv()` returns `Ok(None)` at the end of a channel. A [`Receiver`] is also a
//! `futures` `Stream` of `Result<T, Cancelled>` that ends (`None`) there. The one compound error is
//! [`SendError`], which gives the unsent message back; it implements
//! [`CancelError`](crate::CancelError) and converts into `io::Error` and
//! [`BoxError`](crate::BoxError) so that scopes and task groups still recognise a
//! cancellation that went through `?`.
//!
//! # Threads
//!
//! The runtime is single-threaded, but these primitives are not tied to it: each keeps
//! its state under a `parking_lot::Mutex` (never held while waking or dropping user
//! values) and wakes through the task's `Waker`, which reaches the runtime from any
//! thread. So:
//!
//! | type | `Send` / `Sync` |
//! |------|-----------------|
//! | [`Sender`], [`UnboundedSender`], [`Receiver`], [`OneshotSender`], [`OneshotReceiver`] | both, for `T: Send` |
//! | [`Event`], [`Notify`], [`Semaphore`], [`OwnedSemaphorePermit`], [`Barrier`], [`Condition`] | both |
//! | [`Mutex<T>`] | both, for `T: Send` |
//! | [`WatchSender`], [`WatchReceiver`], [`BroadcastSender`], [`BroadcastReceiver`] | both, for `T: Send + Sync` |
//! | [`RwLock<T>`] | both, for `T: Send + Sync` |
//! | [`MutexGuard`], [`RwLockReadGuard`], [`RwLockWriteGuard`] | `!Send` (they hold the inner data lock; keep them within one task) |
//!
//! A plain thread can send into a channel (`try_send`, `UnboundedSender::send`, or any
//! executor for `send().await`), set an [`Event`], add permits, or notify; the task
//! waiting on the runtime is woken. Outside a runtime the checkpoint check always
//! succeeds, so the waits also work under other executors.
//!
//! # Map
//!
//! `wait_list` (the FIFO of waiters all primitives share, with the hand-off protocol),
//! `channel`, `oneshot`, `event`, `mutex`, `semaphore`, `notify`.

mod barrier;
mod broadcast;
mod channel;
mod condition;
mod event;
mod mutex;
mod notify;
mod oneshot;
mod rwlock;
mod semaphore;
mod wait_list;
mod watch;

pub use barrier::{Barrier, BarrierWait, BarrierWaitResult};
pub use broadcast::{
    BroadcastClosed, BroadcastError, BroadcastReceiver, BroadcastRecv, BroadcastSender, broadcast,
};
pub use channel::{
    Closed, Receiver, RecvFuture, SendError, SendFuture, Sender, TryRecvError, TrySendError,
    UnboundedSender, channel, unbounded,
};
pub use condition::{Condition, Wait as ConditionWait};
pub use event::{Event, EventWait};
pub use mutex::{Lock, Mutex, MutexGuard};
pub use notify::{Notified, Notify};
pub use oneshot::{OneshotReceiver, OneshotSender, oneshot};
pub use rwlock::Acquire as RwLockAcquire;
pub use rwlock::{Access, Read, RwLock, RwLockReadGuard, RwLockWriteGuard, Write};
pub use semaphore::{Acquire, AcquireOwned, OwnedSemaphorePermit, Semaphore, SemaphorePermit};
pub use watch::{Changed, WatchClosed, WatchReceiver, WatchRef, WatchSender, watch};

//! The reactor: one `mio::Poll` per runtime, and the readiness state of every
//! registered I/O source.
//!
//! A source is registered under a `mio::Token` equal to its key in a slab of
//! [`IoState`]s. When `mio` reports an event the reactor records the readiness bits
//! and wakes every waker stored for that direction. Readiness is edge-triggered in
//! `mio`; the reactor keeps it level-like by remembering it until the I/O type calls
//! [`Registration::clear`] after a `WouldBlock`.
//!
//! # Readiness protocol (used by `io/`)
//!
//! * A new registration starts **assumed ready** in both directions, so the first
//!   operation tries its syscall at once (a fresh socket is usually writable; a read
//!   that finds nothing costs one `EAGAIN`, then waits for the first edge).
//! * An operation that gets `WouldBlock` calls [`Registration::clear`] and then
//!   [`Registration::poll_ready`], which stores the task's waker. Nothing can slip in
//!   between: events are only recorded by [`Reactor::turn`], which never runs while a
//!   task is being polled, and an edge that happens after the syscall is reported by
//!   the next `epoll_wait`.
//! * "Read closed" (the peer's FIN or a hang-up) is sticky: it keeps the read side
//!   ready after a `clear`, because reads will never block again and the event will
//!   not come back. (Streams clear the read readiness after a *short* read — see
//!   `io/tcp.rs` — and must still see an end-of-file that arrived with the data.)
//! * Each direction keeps a list of waiting wakers (deduplicated with `will_wake`), so
//!   several tasks may wait on one socket (e.g. two receivers on a `UdpSocket`); an
//!   event wakes them all and the losers of the race wait again.
//! * **Cancellation reaches the wait (R13).** Each waiting waker is also registered
//!   with the status tree at the node its code waits in ([`CancelWait`]), so
//!   cancelling that code wakes this very waker — also when the I/O future is polled
//!   inside a combinator with wakers of its own. The registration goes when readiness
//!   drains the waker (or with the source). The I/O types check for cancellation
//!   before every syscall (`io/source.rs`), so the woken future fails at once.
//!
//! A registration belongs to the runtime it was created on. Waiting on it from another
//! runtime (or after its runtime is gone) is an error, not a silent hang.
//!
//! The token [`WAKE_TOKEN`] belongs to the `mio::Waker` through which other threads
//! interrupt a blocking poll (see `runtime::task`, "Wakers").

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::{Rc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

use super::cancel::CancelWait;
use super::core::Core;
use super::observe::WaitingOn;

/// Token reserved for the cross-thread `mio::Waker`.
pub(crate) const WAKE_TOKEN: Token = Token(usize::MAX);

/// How many events one poll of `mio` can return.
const EVENTS_CAPACITY: usize = 1024;

/// Source of reactor ids (unique for the process lifetime).
static NEXT_REACTOR_ID: AtomicU64 = AtomicU64::new(1);

/// Which side of a source an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

const READABLE: u8 = 0b001;
const WRITABLE: u8 = 0b010;
/// The peer closed its write side (or the connection is gone): reads will never block
/// again. Sticky: [`Registration::clear`] keeps it.
const READ_CLOSED: u8 = 0b100;

impl Direction {
    fn bit(self) -> u8 {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }

    /// The bits that make `self` ready.
    fn ready_mask(self) -> u8 {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE,
        }
    }
}

/// One waiting waker and its registration with the status tree.
struct Waiter {
    waker: Waker,
    cancel: CancelWait,
}

/// The wakers waiting for one direction of one source. The first waiter needs no
/// allocation; more distinct waiters (several tasks on one socket) go to `more`.
#[derive(Default)]
struct Waiters {
    first: Option<Waiter>,
    more: Vec<Waiter>,
}

impl Waiters {
    /// Adds `waker` (or finds it already there) and (re)registers it with the status
    /// tree at the node of the code polling now.
    fn add(&mut self, core: &Core, waker: &Waker, on: WaitingOn) {
        let found = match &mut self.first {
            Some(w) if w.waker.will_wake(waker) => Some(w),
            Some(_) => self.more.iter_mut().find(|w| w.waker.will_wake(waker)),
            None => None,
        };
        let w = match found {
            Some(w) => w,
            None => {
                let new = Waiter {
                    waker: waker.clone(),
                    cancel: CancelWait::new(),
                };
                if self.first.is_none() {
                    self.first.insert(new)
                } else {
                    self.more.push(new);
                    self.more.last_mut().expect("just pushed")
                }
            }
        };
        w.cancel.arm_in(core, waker, on);
    }

    /// Moves the wakers out and drops their registrations.
    fn drain_into(&mut self, core: &Core, out: &mut Vec<Waker>) {
        for mut w in self.first.take().into_iter().chain(self.more.drain(..)) {
            w.cancel.disarm_in(core);
            out.push(w.waker);
        }
    }
}

/// Readiness and waiting wakers of one registered source.
pub(crate) struct IoState {
    /// `READABLE` / `WRITABLE` bits seen and not yet cleared. Starts with both set
    /// (see "Readiness protocol" in the module doc).
    ready: Cell<u8>,
    reader: RefCell<Waiters>,
    writer: RefCell<Waiters>,
    /// The source's file descriptor (what the task dump shows a wait on).
    fd: i32,
}

impl IoState {
    fn new(fd: i32) -> IoState {
        IoState {
            fd,
            ready: Cell::new(READABLE | WRITABLE),
            reader: RefCell::default(),
            writer: RefCell::default(),
        }
    }

    fn waiters(&self, dir: Direction) -> &RefCell<Waiters> {
        match dir {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }
}

pub(crate) struct Reactor {
    /// Identifies this reactor in its registrations.
    id: u64,
    poll: RefCell<mio::Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Rc<IoState>>>,
    /// Reused buffer of wakers to wake after a poll (no borrow is held while waking).
    to_wake: RefCell<Vec<Waker>>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<(Reactor, mio::Waker)> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
        Ok((
            Reactor {
                id: NEXT_REACTOR_ID.fetch_add(1, Ordering::Relaxed),
                poll: RefCell::new(poll),
                events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
                sources: RefCell::new(Slab::new()),
                to_wake: RefCell::new(Vec::new()),
            },
            waker,
        ))
    }

    /// How many sources are registered.
    pub(crate) fn source_count(&self) -> usize {
        self.sources.borrow().len()
    }

    /// Waits for events for at most `timeout` (`None`: until one arrives) and wakes the
    /// tasks waiting on them. Returns how many source events were delivered. `core` is
    /// the runtime this reactor belongs to.
    pub(crate) fn turn(&self, core: &Core, timeout: Option<Duration>) -> io::Result<usize> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut delivered = 0;
        // Taken out of the cell so a waker that re-enters the reactor finds it free.
        let mut to_wake = std::mem::take(&mut *self.to_wake.borrow_mut());
        {
            let sources = self.sources.borrow();
            for event in events.iter() {
                if event.token() == WAKE_TOKEN {
                    continue;
                }
                let Some(state) = sources.get(event.token().0) else {
                    continue;
                };
                delivered += 1;
                let mut bits = 0;
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    bits |= READABLE;
                }
                if event.is_read_closed() {
                    bits |= READ_CLOSED;
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    bits |= WRITABLE;
                }
                state.ready.set(state.ready.get() | bits);
                for dir in [Direction::Read, Direction::Write] {
                    if bits & dir.bit() != 0 {
                        state
                            .waiters(dir)
                            .borrow_mut()
                            .drain_into(core, &mut to_wake);
                    }
                }
            }
        }
        drop(events);
        for w in to_wake.drain(..) {
            super::wake_list::wake_contained(w);
        }
        *self.to_wake.borrow_mut() = to_wake;
        Ok(delivered)
    }
}

/// A source registered with the current runtime's reactor.
///
/// The I/O types call [`deregister`](Registration::deregister) before they close
/// their source (a `dup`ed fd would otherwise stay in the epoll set); dropping the
/// registration frees its slot.
pub(crate) struct Registration {
    key: usize,
    reactor: u64,
    state: Rc<IoState>,
    /// The runtime whose reactor holds the entry: dropping the registration removes
    /// it there, whichever runtime (if any) is current (a registration is not `Send`,
    /// so the drop is on that runtime's thread).
    core: Weak<Core>,
}

impl Registration {
    /// Registers `source` (whose file descriptor is `fd`, shown by the task dump) with
    /// the reactor of the runtime running on this thread.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub(crate) fn new(
        source: &mut impl Source,
        fd: i32,
        interest: Interest,
    ) -> io::Result<Registration> {
        crate::runtime::with_core(|core| {
            let reactor = core.reactor();
            let state = Rc::new(IoState::new(fd));
            let key = reactor.sources.borrow_mut().insert(state.clone());
            let res = reactor
                .poll
                .borrow()
                .registry()
                .register(source, Token(key), interest);
            match res {
                Ok(()) => Ok(Registration {
                    key,
                    reactor: reactor.id,
                    state,
                    core: Rc::downgrade(core),
                }),
                Err(e) => {
                    reactor.sources.borrow_mut().remove(key);
                    Err(e)
                }
            }
        })
    }

    /// Whether the source was reported ready for `dir` since the last
    /// [`clear`](Self::clear) (or is still assumed ready after registration).
    pub(crate) fn is_ready(&self, dir: Direction) -> bool {
        self.state.ready.get() & dir.ready_mask() != 0
    }

    /// Ready when the source was reported ready for `dir` since the last
    /// [`clear`](Self::clear); otherwise stores the waker and returns `Pending`.
    ///
    /// Fails when called on a thread whose current runtime is not the one the source
    /// was registered with (its events would never arrive).
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<io::Result<()>> {
        if self.is_ready(dir) {
            return Poll::Ready(Ok(()));
        }
        let added = crate::runtime::try_with_core(|core| {
            if core.reactor().id != self.reactor {
                return false;
            }
            let fd = self.state.fd;
            let on = match dir {
                Direction::Read => WaitingOn::Readable { fd },
                Direction::Write => WaitingOn::Writable { fd },
            };
            self.state
                .waiters(dir)
                .borrow_mut()
                .add(core, cx.waker(), on);
            true
        });
        if added != Some(true) {
            return Poll::Ready(Err(io::Error::other(
                "scope_runtime: I/O object used outside the runtime it was created on \
                 (sockets, signals and other reactor sources belong to one runtime)",
            )));
        }
        Poll::Pending
    }

    /// Forgets readiness for `dir` (after the operation returned `WouldBlock`, or after
    /// a short read or write on a stream). A "read closed" event is kept: a stream
    /// whose peer closed never blocks a read again, and its event will not repeat.
    pub(crate) fn clear(&self, dir: Direction) {
        self.state.ready.set(self.state.ready.get() & !dir.bit());
    }

    /// Removes `source` from the reactor. Fails (doing nothing) when the registration's
    /// runtime is not the current one: then its epoll set is either gone with it, or
    /// unreachable from here (the source stays registered there until it is closed).
    pub(crate) fn deregister(&self, source: &mut impl Source) -> io::Result<()> {
        crate::runtime::try_with_core(|core| {
            if core.reactor().id == self.reactor {
                Some(core.reactor().poll.borrow().registry().deregister(source))
            } else {
                None
            }
        })
        .flatten()
        .unwrap_or_else(|| {
            Err(io::Error::other(
                "scope_runtime: cannot deregister an I/O source outside the runtime it was created on",
            ))
        })
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Some(core) = self.core.upgrade() else {
            return; // the runtime is gone, and its reactor with it
        };
        let key = self.key;
        let removed = match core.reactor().sources.try_borrow_mut() {
            Ok(mut sources) if sources.get(key).is_some_and(|s| Rc::ptr_eq(s, &self.state)) => {
                Some(sources.remove(key))
            }
            _ => None,
        };
        // Its waiters' registrations go with it, outside the borrow.
        drop(removed);
    }
}

//! The reactor: one `mio::Poll` per runtime, and the readiness state of every
//! registered I/O source.
//!
//! A source is registered under a `mio::Token` equal to its key in a slab of
//! [`IoState`]s. When `mio` reports an event the reactor records the readiness bits
//! and wakes the waker stored for that direction. Readiness is edge-triggered in
//! `mio`; the reactor keeps it level-like by remembering it until the I/O type calls
//! [`Registration::clear`] after a `WouldBlock`.
//!
//! The token [`WAKE_TOKEN`] belongs to the `mio::Waker` through which other threads
//! interrupt a blocking poll (see `runtime::task::TaskWaker`).

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Token};
use slab::Slab;

/// Token reserved for the cross-thread `mio::Waker`.
pub(crate) const WAKE_TOKEN: Token = Token(usize::MAX);

/// How many events one poll of `mio` can return.
const EVENTS_CAPACITY: usize = 1024;

/// Which side of a source an operation waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    Read,
    Write,
}

const READABLE: u8 = 0b01;
const WRITABLE: u8 = 0b10;

impl Direction {
    fn bit(self) -> u8 {
        match self {
            Direction::Read => READABLE,
            Direction::Write => WRITABLE,
        }
    }
}

/// Readiness and waiting wakers of one registered source.
#[derive(Default)]
pub(crate) struct IoState {
    /// `READABLE` / `WRITABLE` bits seen and not yet cleared.
    ready: Cell<u8>,
    reader: RefCell<Option<Waker>>,
    writer: RefCell<Option<Waker>>,
}

impl IoState {
    fn waker_slot(&self, dir: Direction) -> &RefCell<Option<Waker>> {
        match dir {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }
}

pub(crate) struct Reactor {
    poll: RefCell<mio::Poll>,
    events: RefCell<Events>,
    sources: RefCell<Slab<Rc<IoState>>>,
}

impl Reactor {
    pub(crate) fn new() -> io::Result<(Reactor, mio::Waker)> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
        Ok((
            Reactor {
                poll: RefCell::new(poll),
                events: RefCell::new(Events::with_capacity(EVENTS_CAPACITY)),
                sources: RefCell::new(Slab::new()),
            },
            waker,
        ))
    }

    /// Number of registered sources.
    pub(crate) fn registered(&self) -> usize {
        self.sources.borrow().len()
    }

    /// Waits for events for at most `timeout` (`None`: until one arrives) and wakes the
    /// tasks waiting on them. Returns how many source events were delivered.
    pub(crate) fn turn(&self, timeout: Option<Duration>) -> io::Result<usize> {
        let mut events = self.events.borrow_mut();
        match self.poll.borrow_mut().poll(&mut events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(0),
            Err(e) => return Err(e),
        }
        let mut delivered = 0;
        let mut to_wake = Vec::new();
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
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    bits |= WRITABLE;
                }
                state.ready.set(state.ready.get() | bits);
                for dir in [Direction::Read, Direction::Write] {
                    if bits & dir.bit() != 0 {
                        if let Some(w) = state.waker_slot(dir).borrow_mut().take() {
                            to_wake.push(w);
                        }
                    }
                }
            }
        }
        drop(events);
        for w in to_wake {
            w.wake();
        }
        Ok(delivered)
    }
}

/// A source registered with the current runtime's reactor. Deregistered by
/// [`Registration::deregister`]; dropping it without that only frees the slot (the
/// source's own drop closes the fd, which removes it from epoll).
pub(crate) struct Registration {
    key: usize,
    state: Rc<IoState>,
}

impl Registration {
    /// Registers `source` with the reactor of the runtime running on this thread.
    pub(crate) fn new(source: &mut impl Source, interest: Interest) -> io::Result<Registration> {
        crate::runtime::with_core(|core| {
            let reactor = &core.reactor;
            let state = Rc::new(IoState::default());
            let key = reactor.sources.borrow_mut().insert(state.clone());
            let res = reactor
                .poll
                .borrow()
                .registry()
                .register(source, Token(key), interest);
            match res {
                Ok(()) => Ok(Registration { key, state }),
                Err(e) => {
                    reactor.sources.borrow_mut().remove(key);
                    Err(e)
                }
            }
        })
    }

    /// Ready when the source was reported ready for `dir` since the last
    /// [`clear`](Self::clear); otherwise stores the waker and returns `Pending`.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>, dir: Direction) -> Poll<()> {
        if self.state.ready.get() & dir.bit() != 0 {
            return Poll::Ready(());
        }
        let mut slot = self.state.waker_slot(dir).borrow_mut();
        match &mut *slot {
            Some(w) if w.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Forgets readiness for `dir` (after the operation returned `WouldBlock`).
    pub(crate) fn clear(&self, dir: Direction) {
        self.state.ready.set(self.state.ready.get() & !dir.bit());
    }

    /// Removes `source` from the reactor.
    pub(crate) fn deregister(self, source: &mut impl Source) -> io::Result<()> {
        crate::runtime::with_core(|core| core.reactor.poll.borrow().registry().deregister(source))
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let key = self.key;
        let _ = crate::runtime::try_with_core(|core| {
            let mut sources = core.reactor.sources.borrow_mut();
            if sources
                .get(key)
                .is_some_and(|s| Rc::ptr_eq(s, &self.state))
            {
                sources.remove(key);
            }
        });
    }
}

//! Thread-per-core: [`Cores`] runs one single-threaded runtime per OS thread, each
//! running the same body, all inside one cancel tree.
//!
//! Each core's body runs inside a [`TaskGroup`] of its own runtime. Before any body
//! starts, every core registers its group's `CancelHandle` (the `Send` cancel path)
//! and its runtime's [`RemoteHandle`] in a shared table, and waits at a barrier until
//! all have: from then on any core, or [`MultiCancel`] from any thread, can cancel every
//! core's group, and [`CoreContext::remote`] reaches any core. A core whose body fails
//! (or panics) cancels the others, with a reason naming it; [`Cores::run`] joins every
//! thread and reports every core's failure, as a task group reports its children's.
//!
//! With [`Cores::cancel_on_ctrl_c`], core 0 creates a `SIGINT` listener before the
//! start barrier (so the handler is installed before any body runs) and keeps it in a
//! top-level task until every core's group has ended; the first Ctrl-C cancels all.
//! [`CoreContext::bind_reuseport`] binds one `SO_REUSEPORT` listener per core; for
//! port 0 the table remembers the port the first core got, and the others bind it.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use parking_lot::Mutex;

use super::group::TaskGroup;
use crate::io::signal::{Signal, SignalKind};
use crate::io::{TcpListener, TcpSocket};
use crate::runtime::cancel::{BoxError, CancelHandle, TaskGroupError};
use crate::runtime::sync::Event;
use crate::runtime::{RemoteHandle, Runtime, catch_unwind, spawn_named};

/// The backlog of the listeners [`CoreContext::bind_reuseport`] creates.
const REUSEPORT_BACKLOG: u32 = 1024;

/// What every core shares.
struct Table {
    cancels: Vec<CancelHandle>,
    remotes: Vec<RemoteHandle>,
    /// `(address asked for with port 0, address the first core got)`, so the other
    /// cores bind the same port.
    reuseport: Mutex<Vec<(SocketAddr, SocketAddr)>>,
}

/// Each core's registration, filled in before the bodies start.
type Slots = Mutex<Vec<Option<(CancelHandle, RemoteHandle)>>>;

struct Shared {
    table: Mutex<Option<Arc<Table>>>,
    /// Every core has registered (or given up): the table can be built.
    registered: Barrier,
    /// The table is published: the bodies can start.
    start: Barrier,
    /// Cores whose group has not ended yet.
    running: AtomicUsize,
    /// Set by the last core whose group ends (core 0's Ctrl-C watch waits for it).
    all_ended: Event,
}

/// Runs one single-threaded runtime per core (OS thread), each running the same
/// body inside a task group, with one cancel tree over all of them.
///
/// * Cancelling ([`MultiCancel::cancel`], [`CoreContext::cancel_all`]) cancels every
///   core's group; each absorbs it, and [`run`](Self::run) returns `Ok` once all have
///   wound down.
/// * A core whose body (or a task of its group) fails, or whose thread panics, cancels
///   every other core; `run` returns every core's failure in a [`CoresError`].
/// * Tasks are not moved between cores: what a core spawns stays there. Cores talk
///   through the `Send` channels of [`sync`](crate::sync) or run code on each other
///   with [`CoreContext::remote`].
///
/// ```
/// use scope_runtime::{Cores, sleep};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let s = started.clone();
/// Cores::new(2).run(move |core| {
///     let s = s.clone();
///     async move {
///         s.fetch_add(1, Ordering::SeqCst);
///         if core.index() == 0 {
///             sleep(Duration::from_millis(10)).await?;
///             core.cancel_all(); // stops both cores
///         }
///         sleep(Duration::from_secs(3600)).await?;
///         Ok(())
///     }
/// })?;
/// assert_eq!(started.load(Ordering::SeqCst), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cores {
    n: usize,
    paused_clock: bool,
    ctrl_c: bool,
    pin: bool,
}

impl Cores {
    /// `n` cores (threads), each with its own runtime. `0` means one per CPU the
    /// process may use (`std::thread::available_parallelism`).
    pub fn new(n: usize) -> Cores {
        let n = if n == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            n
        };
        Cores {
            n,
            paused_clock: false,
            ctrl_c: false,
            pin: false,
        }
    }

    /// How many cores [`run`](Self::run) starts.
    pub fn count(&self) -> usize {
        self.n
    }

    /// Gives every core's runtime the paused clock (for tests; each core has its own
    /// virtual clock).
    pub fn paused_clock(mut self, paused: bool) -> Cores {
        self.paused_clock = paused;
        self
    }

    /// Pins core `k`'s thread to one CPU: the `k`-th of the CPUs the process may run
    /// on (its affinity mask, read when [`run`](Self::run) starts; with more cores
    /// than CPUs they wrap around). A pinned core's cache stays warm and the kernel
    /// does not move its thread, at the price of not moving it away from a busy CPU
    /// either. Off by default.
    ///
    /// Linux only: elsewhere, and when the mask cannot be read or set, every core
    /// that could not be pinned fails with [`CoreFailure::Pin`] and no body runs.
    ///
    /// ```
    /// use scope_runtime::Cores;
    ///
    /// # #[cfg(target_os = "linux")]
    /// Cores::new(2).pin_to_cpus(true).run(|core| async move {
    ///     println!("core {} runs pinned", core.index());
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pin_to_cpus(mut self, pin: bool) -> Cores {
        self.pin = pin;
        self
    }

    /// Cancels every core on the first Ctrl-C (`SIGINT`) of the run, with the reason
    /// `"Ctrl-C"`; the groups absorb it, so [`run`](Self::run) returns `Ok(())` once
    /// every core has wound down (unless a core failed on the way).
    /// `#[scope_runtime::main(cores = N)]` turns it on.
    ///
    /// Core 0 listens for the signal. Its handler is installed before any body starts
    /// and stays installed for the rest of the process (see
    /// [`io::signal`](crate::io::signal)): only the first Ctrl-C of a run cancels, a
    /// second one while the cores wind down does nothing, and after the run Ctrl-C no
    /// longer ends the process by default. Core 0 keeps listening until every core
    /// has ended, even if its own body ends first.
    ///
    /// ```no_run
    /// use scope_runtime::{Cores, sleep};
    /// use std::time::Duration;
    ///
    /// // Serves until Ctrl-C, then every core's body sees `Cancelled`.
    /// Cores::new(2).cancel_on_ctrl_c(true).run(|core| async move {
    ///     loop {
    ///         sleep(Duration::from_secs(1)).await?;
    ///         println!("core {} alive", core.index());
    ///     }
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn cancel_on_ctrl_c(mut self, on: bool) -> Cores {
        self.ctrl_c = on;
        self
    }

    /// Runs `body` on every core and waits until all have ended. See the type's doc.
    ///
    /// Returns `Err` with every core's failure if any core failed. A runtime that could
    /// not be created (e.g. the process is out of file descriptors) is that core's
    /// failure, [`CoreFailure::Runtime`] (likewise a thread that could not be pinned,
    /// [`CoreFailure::Pin`]); then no core runs the body at all.
    pub fn run<F, Fut>(&self, body: F) -> Result<(), CoresError>
    where
        F: Fn(CoreContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + 'static,
    {
        self.run_with(body, |_| {})
    }

    /// [`run`](Self::run), handing a [`MultiCancel`] to `on_start` (on the calling
    /// thread, once every core is ready) — e.g. to cancel all cores on Ctrl-C or from a
    /// supervisor thread.
    pub fn run_with<F, Fut>(
        &self,
        body: F,
        on_start: impl FnOnce(MultiCancel),
    ) -> Result<(), CoresError>
    where
        F: Fn(CoreContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + 'static,
    {
        let n = self.n;
        let shared = Arc::new(Shared {
            table: Mutex::new(None),
            // The n cores and the calling thread.
            registered: Barrier::new(n + 1),
            start: Barrier::new(n + 1),
            running: AtomicUsize::new(n),
            all_ended: Event::new(),
        });
        let slots: Arc<Slots> = Arc::new(Mutex::new((0..n).map(|_| None).collect()));
        let body = Arc::new(body);
        let paused = self.paused_clock;
        let ctrl_c = self.ctrl_c;
        let cpus = self.pin.then(crate::io::sys::allowed_cpus);
        let mut threads = Vec::with_capacity(n);
        for index in 0..n {
            let (shared, slots, body) = (shared.clone(), slots.clone(), body.clone());
            let cpu = cpus.as_ref().map(|cpus| match cpus {
                Ok(list) if !list.is_empty() => Ok(list[index % list.len()]),
                Ok(_) => Err(io::Error::other("the process may run on no CPU")),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            });
            let spawned = std::thread::Builder::new()
                .name(format!("scope_runtime core {index}"))
                .spawn(move || {
                    let setup = Setup {
                        index,
                        count: n,
                        paused,
                        ctrl_c: ctrl_c && index == 0,
                        cpu,
                    };
                    core_main(setup, &shared, &slots, &*body)
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // The cores already started wait at the barrier for all n: they
                    // cannot be released without the missing ones. Not recoverable.
                    panic!("scope_runtime::Cores: could not start the thread of core {index}: {e}")
                }
            }
        }
        // Every core has registered (or failed to build its runtime): publish the table.
        shared.registered.wait();
        let table = {
            let slots = slots.lock();
            let mut cancels = Vec::new();
            let mut remotes = Vec::new();
            for s in slots.iter().flatten() {
                cancels.push(s.0.clone());
                remotes.push(s.1.clone());
            }
            Arc::new(Table {
                cancels,
                remotes,
                reuseport: Mutex::new(Vec::new()),
            })
        };
        *shared.table.lock() = Some(table.clone());
        shared.start.wait();
        on_start(MultiCancel { table });
        let mut failures = Vec::new();
        for (index, t) in threads.into_iter().enumerate() {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(f)) => failures.push((index, f)),
                Err(panic) => failures.push((index, CoreFailure::Panicked(panic))),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(CoresError { failures })
        }
    }
}

/// What one core's thread is told.
struct Setup {
    index: usize,
    count: usize,
    paused: bool,
    /// This core listens for Ctrl-C.
    ctrl_c: bool,
    /// The CPU to pin this core's thread to (`None`: not pinned).
    cpu: Option<io::Result<usize>>,
}

/// One core's thread: build its runtime, register, wait for all, run the body.
fn core_main<F, Fut>(
    setup: Setup,
    shared: &Shared,
    slots: &Slots,
    body: &F,
) -> Result<(), CoreFailure>
where
    F: Fn(CoreContext) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let Setup {
        index,
        count,
        paused,
        ctrl_c,
        cpu,
    } = setup;
    // A core that cannot start registers nothing: the table is incomplete and no body
    // runs (below, after the start barrier).
    let fail = |failure| {
        shared.registered.wait();
        shared.start.wait();
        core_ended(shared);
        Err(failure)
    };
    if let Some(Err(e)) = cpu.map(|cpu| cpu.and_then(crate::io::sys::pin_current_thread)) {
        return fail(CoreFailure::Pin(e));
    }
    let rt = match Runtime::builder().paused_clock(paused).build() {
        Ok(rt) => rt,
        Err(e) => return fail(CoreFailure::Runtime(e)),
    };
    let remote = rt.remote();
    rt.block_on(async {
        let tg = TaskGroup::new();
        // Before the barrier: the handler is installed before any body starts.
        let interrupt = ctrl_c.then(|| Signal::new(SignalKind::INTERRUPT));
        slots.lock()[index] = Some((tg.cancel_handle(), remote));
        // Blocking this thread here is fine: nothing runs on this runtime yet.
        shared.registered.wait();
        shared.start.wait();
        let table = shared
            .table
            .lock()
            .clone()
            .expect("the table is published before the start barrier");
        if table.cancels.len() != count {
            // A core could not start: the run fails with its error and no body runs, so
            // a `CoreContext` always sees all cores (`remote(k)` is core `k`).
            core_ended(shared);
            return Ok(());
        }
        let watch = match interrupt {
            None => None,
            Some(Ok(mut signal)) => {
                let cancel = MultiCancel {
                    table: table.clone(),
                };
                Some(spawn_named("ctrl-c watch", async move {
                    signal.recv().await?;
                    cancel.cancel_with("Ctrl-C");
                    Ok::<_, io::Error>(())
                }))
            }
            Some(Err(e)) => {
                MultiCancel { table }.cancel_with("core 0 could not listen for Ctrl-C");
                core_ended(shared);
                shared.all_ended.wait().await.ok();
                return Err(CoreFailure::CtrlC(e));
            }
        };
        let ctx = CoreContext {
            index,
            count,
            table: table.clone(),
        };
        let out = catch_unwind(tg.run(|_tg| body(ctx))).await;
        let failure = match out {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(CoreFailure::Group(e)),
            Err(panic) => Some(CoreFailure::Panicked(panic)),
        };
        if failure.is_some() {
            // This core failed: cancel the others (ours has ended already).
            MultiCancel { table }.cancel_with(format!("core {index} failed"));
        }
        core_ended(shared);
        if let Some(watch) = watch {
            // A Ctrl-C still cancels the cores that run on; then stop listening.
            // Nothing cancels this code: only an `Err` if the watch was cancelled.
            shared.all_ended.wait().await.ok();
            watch.cancel();
            watch.await.ok();
        }
        failure.map_or(Ok(()), Err)
    })
}

/// One more core's group has ended; the last one sets `all_ended`.
fn core_ended(shared: &Shared) {
    if shared.running.fetch_sub(1, Ordering::AcqRel) == 1 {
        shared.all_ended.set();
    }
}

/// What a core's body gets: which core it is, and the ways to reach the others.
#[derive(Clone)]
pub struct CoreContext {
    index: usize,
    count: usize,
    table: Arc<Table>,
}

impl fmt::Debug for CoreContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoreContext")
            .field("index", &self.index)
            .field("count", &self.count)
            .finish()
    }
}

impl CoreContext {
    /// This core's number, `0..count()`.
    pub fn index(&self) -> usize {
        self.index
    }

    /// How many cores run.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Cancels every core's group (this one's too).
    pub fn cancel_all(&self) {
        self.cancel_handle().cancel();
    }

    /// A `Send` handle that cancels every core (for another thread).
    pub fn cancel_handle(&self) -> MultiCancel {
        MultiCancel {
            table: self.table.clone(),
        }
    }

    /// The [`RemoteHandle`] of core `k`, to run code there ("run this on core k").
    /// Waiting on it from core `k` itself is refused ([`RemoteError::OnRuntimeThread`](crate::RemoteError)).
    ///
    /// # Panics
    ///
    /// If `k >= count()`.
    pub fn remote(&self, k: usize) -> RemoteHandle {
        match self.table.remotes.get(k) {
            Some(r) => r.clone(),
            None => panic!(
                "CoreContext::remote({k}): there are only {} cores",
                self.table.remotes.len()
            ),
        }
    }

    /// Binds a TCP listener on `addr` with `SO_REUSEPORT`, for this core: when every
    /// core calls it with the same address, each gets its own listener on one port
    /// and the kernel spreads the incoming connections among them (by a hash of each
    /// connection's addresses and ports), so every core accepts its share without
    /// any hand-off between threads.
    ///
    /// With port 0, the first core to call it gets a port from the system and the
    /// others bind that same port: compare [`TcpListener::local_addr`]. Call it once
    /// per core and address (a second call on one core adds a listener the kernel
    /// also feeds). The listener has a backlog of 1024.
    ///
    /// ```
    /// use scope_runtime::Cores;
    ///
    /// let ports = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    /// let p = ports.clone();
    /// Cores::new(2).run(move |core| {
    ///     let p = p.clone();
    ///     async move {
    ///         let listener = core.bind_reuseport("127.0.0.1:0".parse()?)?;
    ///         p.lock().push(listener.local_addr()?.port());
    ///         // ... accept connections here: `listener.accept().await?` ...
    ///         Ok(())
    ///     }
    /// })?;
    /// let ports = ports.lock();
    /// assert_eq!(ports.len(), 2);
    /// assert_eq!(ports[0], ports[1], "both cores listen on one port");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// Things to know:
    ///
    /// * The split is by hash, not by load: a core that is busy (or stops
    ///   accepting) still gets its share, which waits in its backlog. Connections
    ///   that arrive before every core has bound go to the listeners that exist.
    /// * When a listener is closed, the connections waiting in its backlog (not
    ///   accepted yet) are reset, not moved to the other listeners.
    /// * Any socket of the same user that sets `SO_REUSEPORT` may join the port, also
    ///   from another process.
    ///
    /// The alternative, when connections should go to the least busy core or the
    /// system has no `SO_REUSEPORT`: one acceptor (core 0, or a thread of its own with
    /// a blocking `std::net::TcpListener`) receives every connection and sends each
    /// as a `std::net::TcpStream` (which is `Send`; core 0 gets one from its own
    /// stream with [`TcpStream::into_std`](crate::io::TcpStream::into_std)) through a
    /// [`sync`](crate::sync) channel to the core it picks, which adopts it with
    /// [`TcpStream::from_std`](crate::io::TcpStream::from_std). That costs one
    /// hand-off per connection and makes the acceptor a single point every
    /// connection passes through.
    ///
    /// # Errors
    ///
    /// The system's: `AddrInUse` when a socket without `SO_REUSEPORT` (or of another
    /// user) holds the port, `AddrNotAvailable` for an address not of this host.
    ///
    /// # Panics
    ///
    /// Outside the core's runtime (the listener registers with it).
    pub fn bind_reuseport(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        // Held across the bind: the first core's port is known before a second binds.
        let mut bound = self.table.reuseport.lock();
        let first = addr.port() == 0;
        let target = if first {
            bound
                .iter()
                .find(|(asked, _)| *asked == addr)
                .map_or(addr, |&(_, got)| got)
        } else {
            addr
        };
        let socket = TcpSocket::new_for(&target)?;
        socket.set_reuseport(true)?;
        socket.bind(target)?;
        let listener = socket.listen(REUSEPORT_BACKLOG)?;
        if first && target == addr {
            bound.push((addr, listener.local_addr()?));
        }
        Ok(listener)
    }
}

/// Cancels every core of a [`Cores::run`]; `Send + Sync`, cheap to clone.
#[derive(Clone)]
pub struct MultiCancel {
    table: Arc<Table>,
}

impl fmt::Debug for MultiCancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MultiCancel")
            .field("cores", &self.table.cancels.len())
            .finish()
    }
}

impl MultiCancel {
    /// Cancels every core's group.
    pub fn cancel(&self) {
        for c in &self.table.cancels {
            c.cancel();
        }
    }

    /// Cancels every core's group with a reason (the first reason a group gets wins).
    pub fn cancel_with(&self, reason: impl Into<Arc<str>>) {
        let reason = reason.into();
        for c in &self.table.cancels {
            c.cancel_with(reason.clone());
        }
    }
}

/// How one core failed.
#[non_exhaustive]
pub enum CoreFailure {
    /// Its task group reported failures (its body's or its children's errors).
    Group(TaskGroupError),
    /// Its runtime could not be created.
    Runtime(std::io::Error),
    /// It could not listen for Ctrl-C ([`Cores::cancel_on_ctrl_c`]; core 0 only).
    CtrlC(std::io::Error),
    /// Its thread could not be pinned to its CPU ([`Cores::pin_to_cpus`]).
    Pin(std::io::Error),
    /// Its body or one of its tasks panicked (the payload is kept).
    Panicked(Box<dyn std::any::Any + Send>),
}

impl fmt::Debug for CoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreFailure::Group(e) => f.debug_tuple("Group").field(e).finish(),
            CoreFailure::Runtime(e) => f.debug_tuple("Runtime").field(e).finish(),
            CoreFailure::CtrlC(e) => f.debug_tuple("CtrlC").field(e).finish(),
            CoreFailure::Pin(e) => f.debug_tuple("Pin").field(e).finish(),
            CoreFailure::Panicked(_) => f.write_str("Panicked(..)"),
        }
    }
}

impl fmt::Display for CoreFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreFailure::Group(e) => e.fmt(f),
            CoreFailure::Runtime(e) => write!(f, "could not create its runtime: {e}"),
            CoreFailure::CtrlC(e) => write!(f, "could not listen for Ctrl-C: {e}"),
            CoreFailure::Pin(e) => write!(f, "could not pin its thread to a CPU: {e}"),
            CoreFailure::Panicked(_) => f.write_str("its thread panicked"),
        }
    }
}

/// Every core's failure from a [`Cores::run`].
#[derive(Debug)]
pub struct CoresError {
    failures: Vec<(usize, CoreFailure)>,
}

impl CoresError {
    /// `(core index, failure)` for every core that failed, in core order.
    pub fn failures(&self) -> &[(usize, CoreFailure)] {
        &self.failures
    }
}

impl fmt::Display for CoresError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} core(s) failed", self.failures.len())?;
        for (i, e) in &self.failures {
            write!(f, "; core {i}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for CoresError {}

//! Child processes on the reactor: [`Command`] → [`Child`], with pipes that implement
//! the `futures-io` traits, and waits that are cancellable.
//!
//! [`Command`] wraps [`std::process::Command`] (program, arguments, environment,
//! working directory, [`Stdio`]) and spawns a [`Child`] whose exit is watched by the
//! runtime's reactor instead of a blocked thread.
//!
//! # Cancelling a wait terminates the child
//!
//! [`Child::wait`], [`Child::wait_with_output`], [`Command::status`] and
//! [`Command::output`] are **checkpoints**. When the code waiting is cancelled (a
//! deadline, a `cancel()`, its task group failing), the child is not left behind: as
//! Trio's `run_process` does it, it is sent `SIGTERM`, given a grace period to exit
//! (5 seconds unless [`Command::cancel_grace`] says otherwise), then sent `SIGKILL`,
//! and reaped. Only then does the wait return its `Err` carrying
//! [`Cancelled`](crate::Cancelled) (as an [`io::Error`], which `?` carries to the
//! scope that absorbs it). The grace wait is shielded: the cancellation that started
//! it does not cut it short, only its own timeout does.
//!
//! The grace is measured on the runtime's clock. On a **paused** clock, time jumps to
//! the next timer as soon as every task is idle, so the grace passes at once and the
//! child is usually `SIGKILL`ed right after its `SIGTERM`; it is still reaped before
//! the wait returns.
//!
//! ```
//! use scope_runtime::io::process::Command;
//! use scope_runtime::move_on_after;
//! use std::os::unix::process::ExitStatusExt;
//! use std::time::Duration;
//!
//! scope_runtime::Runtime::new().unwrap().block_on(async {
//!     let mut child = Command::new("sleep").arg("30").spawn().unwrap();
//!     // Give up after 50 ms: the child gets SIGTERM and is reaped before this returns.
//!     let r = move_on_after(Duration::from_millis(50), child.wait()).await;
//!     assert!(r.unwrap().is_none(), "the scope absorbed its own deadline");
//!     let status = child.try_wait().unwrap().expect("already reaped");
//!     assert_eq!(status.signal(), Some(libc::SIGTERM));
//! });
//! ```
//!
//! # How an exit is noticed
//!
//! On Linux ≥ 5.3 each child gets a **pidfd** (`pidfd_open`), registered with the
//! reactor: it becomes readable when the child exits, and the waiting task reaps it.
//! Where pidfds are unavailable (older kernels, other systems, a seccomp filter that
//! refuses the call), a wait listens for `SIGCHLD` through
//! [`Signal`] and re-checks the child after each delivery
//! and once right after the listener is installed, so an exit in between is not
//! missed. That path installs the crate's `SIGCHLD` handler for the life of the process
//! and, while waiting, holds one of the 256 signal listeners that can exist at once.
//! Setting the environment variable `SCOPE_RUNTIME_NO_PIDFD` (to anything) before the
//! first spawn forces it.
//!
//! # Zombies
//!
//! A child is reaped by the wait that sees it exit (or by [`Child::try_wait`]). A
//! [`Child`] dropped before that — with [`kill_on_drop`](Command::kill_on_drop) it is
//! sent `SIGKILL` first — goes to a process-wide list of orphans, which is reaped
//! (without blocking) at every later [`Command::spawn`], [`Child::try_wait`] and exit
//! of a waited child, in any runtime of the process. A dropped child that is still
//! running when the program spawns or waits for nothing ever again stays a zombie
//! until the program exits.
//!
//! # Pipes
//!
//! With [`Stdio::piped`], [`Child::stdin`] is a [`ChildStdin`] (`AsyncWrite`), and
//! [`Child::stdout`] / [`Child::stderr`] are a [`ChildStdout`] / [`ChildStderr`]
//! (`AsyncRead`): non-blocking pipes on the reactor, checkpoints like socket I/O (a
//! cancelled read reads nothing). [`Command::output`] reads both at once, so a child
//! that fills one pipe while the other is being read cannot deadlock.
//!
//! ```
//! use scope_runtime::io::process::{Command, Stdio};
//! use scope_runtime::io::{read_to_end, write_all};
//! use std::io::Cursor;
//!
//! scope_runtime::Runtime::new().unwrap().block_on(async {
//!     let mut child = Command::new("cat")
//!         .stdin(Stdio::piped())
//!         .stdout(Stdio::piped())
//!         .spawn()
//!         .unwrap();
//!     let mut stdin = child.stdin.take().unwrap();
//!     write_all(&mut stdin, &mut Cursor::new(b"hello")).await.unwrap();
//!     drop(stdin); // cat sees end-of-file
//!     let mut out = Vec::new();
//!     read_to_end(child.stdout.as_mut().unwrap(), &mut out).await.unwrap();
//!     assert_eq!(out, b"hello");
//!     assert!(child.wait().await.unwrap().success());
//! });
//! ```
//!
//! Like every reactor object, a [`Child`] and its pipes belong to the runtime they
//! were spawned on. Only Unix is supported.

use std::ffi::OsStr;
use std::fmt;
use std::future::poll_fn;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::pin::Pin;
use std::process::{ExitStatus, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::unix::pipe;
use mio::{Interest, Registry, Token};

pub use std::process::Stdio;

use super::signal::{Signal, SignalKind};
use super::source::IoSource;
use super::sys;
use crate::runtime::cancel::{self, find_cancelled};
use crate::runtime::reactor::Direction;

/// The grace period a cancelled wait gives a child between `SIGTERM` and `SIGKILL`
/// when the [`Command`] does not set one: 5 seconds, as in Trio's `run_process`.
pub const DEFAULT_CANCEL_GRACE: Duration = Duration::from_secs(5);

/// Whether `SCOPE_RUNTIME_NO_PIDFD` forces the `SIGCHLD` path (read once).
fn pidfd_disabled_by_env() -> bool {
    static DISABLED: OnceLock<bool> = OnceLock::new();
    *DISABLED.get_or_init(|| std::env::var_os("SCOPE_RUNTIME_NO_PIDFD").is_some())
}

/// Set once `pidfd_open` said the kernel has no such call: later spawns skip it.
static PIDFD_UNSUPPORTED: AtomicBool = AtomicBool::new(false);

/// Dropped children not reaped yet (see "Zombies" in the module doc).
static ORPHANS: parking_lot::Mutex<Vec<std::process::Child>> = parking_lot::Mutex::new(Vec::new());

/// Reaps every orphan that has exited; keeps the others. Never blocks.
fn reap_orphans() {
    let mut orphans = ORPHANS.lock();
    if !orphans.is_empty() {
        // An error (ECHILD: someone else reaped it) also means there is nothing left.
        orphans.retain_mut(|c| matches!(c.try_wait(), Ok(None)));
    }
}

/// A process builder, like [`std::process::Command`], whose children are waited for
/// on the runtime's reactor.
///
/// The configuration methods return `&mut Command` for chaining; the same `Command`
/// can spawn several children. [`spawn`](Self::spawn) inherits the three standard
/// streams by default; [`output`](Self::output) captures stdout and stderr and closes
/// stdin, unless this `Command` set them.
///
/// ```
/// use scope_runtime::io::process::Command;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let out = Command::new("sh")
///         .args(["-c", "echo $GREETING from $(pwd)"])
///         .env("GREETING", "hi")
///         .current_dir("/")
///         .output()
///         .await
///         .unwrap();
///     assert!(out.status.success());
///     assert_eq!(out.stdout, b"hi from /\n");
/// });
/// ```
pub struct Command {
    std: std::process::Command,
    kill_on_drop: bool,
    grace: Duration,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
    /// Watch the exit through `SIGCHLD` even where pidfds work (tests of that path).
    force_sigchld: bool,
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Command")
            .field("command", &self.std)
            .field("kill_on_drop", &self.kill_on_drop)
            .field("cancel_grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl From<std::process::Command> for Command {
    /// Wraps a configured [`std::process::Command`]. Its standard streams count as not
    /// set: [`output`](Command::output) captures stdout and stderr all the same.
    fn from(std: std::process::Command) -> Command {
        Command {
            std,
            kill_on_drop: false,
            grace: DEFAULT_CANCEL_GRACE,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
            force_sigchld: pidfd_disabled_by_env(),
        }
    }
}

impl Command {
    /// A command that runs `program` (looked up in `PATH` when it has no `/`), with no
    /// arguments, the parent's environment and working directory, no
    /// [`kill_on_drop`](Self::kill_on_drop), and a 5-second
    /// [`cancel_grace`](Self::cancel_grace).
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     assert!(Command::new("true").status().await.unwrap().success());
    ///     let missing = Command::new("/no/such/program").spawn().unwrap_err();
    ///     assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);
    /// });
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Adds one argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.std.arg(arg);
        self
    }

    /// Adds several arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.std.args(args);
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.std.env(key, val);
        self
    }

    /// Sets several environment variables for the child.
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.std.envs(vars);
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.std.env_remove(key);
        self
    }

    /// Starts the child with an empty environment (plus what [`env`](Self::env) adds).
    pub fn env_clear(&mut self) -> &mut Command {
        self.std.env_clear();
        self
    }

    /// Sets the child's working directory.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.std.current_dir(dir);
        self
    }

    /// Configures the child's stdin ([`Stdio::piped`] gives a [`ChildStdin`]).
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// Configures the child's stdout ([`Stdio::piped`] gives a [`ChildStdout`]).
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// Configures the child's stderr ([`Stdio::piped`] gives a [`ChildStderr`]).
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.std.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Whether dropping the [`Child`] before it was reaped sends it `SIGKILL`
    /// (default: `false`, the child keeps running). Either way the dropped child is
    /// reaped later (see "Zombies" in the [module doc](self)).
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let child = Command::new("sleep").arg("30").kill_on_drop(true).spawn().unwrap();
    ///     drop(child); // SIGKILL now; reaped at a later spawn or wait
    /// });
    /// ```
    pub fn kill_on_drop(&mut self, kill_on_drop: bool) -> &mut Command {
        self.kill_on_drop = kill_on_drop;
        self
    }

    /// How long a cancelled wait lets the child handle `SIGTERM` before it sends
    /// `SIGKILL` (default [`DEFAULT_CANCEL_GRACE`], 5 s). `Duration::ZERO` skips
    /// `SIGTERM`: the child is killed at once.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    /// use scope_runtime::move_on_after;
    /// use std::os::unix::process::ExitStatusExt;
    /// use std::time::Duration;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("sleep")
    ///         .arg("30")
    ///         .cancel_grace(Duration::ZERO)
    ///         .spawn()
    ///         .unwrap();
    ///     move_on_after(Duration::from_millis(10), child.wait()).await.unwrap();
    ///     assert_eq!(child.try_wait().unwrap().unwrap().signal(), Some(libc::SIGKILL));
    /// });
    /// ```
    pub fn cancel_grace(&mut self, grace: Duration) -> &mut Command {
        self.grace = grace;
        self
    }

    /// The wrapped [`std::process::Command`], for what this type does not forward
    /// (`std::os::unix::process::CommandExt`: `uid`, `process_group`, `pre_exec`...).
    /// Standard streams set through it count as not set for [`output`](Self::output).
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.std
    }

    /// The wrapped [`std::process::Command`], to read its program, arguments and
    /// environment.
    pub fn as_std(&self) -> &std::process::Command {
        &self.std
    }

    /// Starts the child. Its stdin, stdout and stderr are inherited unless configured.
    /// Not a checkpoint (it does not wait); it also reaps dropped children that have
    /// exited since.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    ///     assert!(child.id().is_some());
    ///     assert_eq!(child.wait().await.unwrap().code(), Some(3));
    ///     assert_eq!(child.id(), None, "reaped: the pid may name another process now");
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// The program cannot be started (not found, not executable, bad working
    /// directory...), or the pipes cannot be registered with the reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    #[track_caller]
    pub fn spawn(&mut self) -> io::Result<Child> {
        // Fail outside a runtime before anything starts.
        crate::runtime::with_core(|_| ());
        reap_orphans();
        let child = self.std.spawn()?;
        Child::new(child, self.kill_on_drop, self.grace, self.force_sigchld)
    }

    /// Runs the command to completion and returns its exit status; its standard
    /// streams are inherited unless configured. A checkpoint: cancelled, the child is
    /// terminated (see the [module doc](self)) and the result is `Err` carrying
    /// `Cancelled`.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let status = Command::new("sh").args(["-c", "exit 7"]).status().await.unwrap();
    ///     assert_eq!(status.code(), Some(7));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn status(&mut self) -> io::Result<ExitStatus> {
        let mut child = self.spawn()?;
        child.wait().await
    }

    /// Runs the command to completion and collects its exit status, stdout and stderr.
    /// Unless this `Command` set them, stdout and stderr are piped and stdin reads
    /// nothing (`/dev/null`). Both pipes are read at once, so a child that writes a lot
    /// to either cannot block. A checkpoint: cancelled, the child is terminated (see
    /// the [module doc](self)); the output read so far is discarded.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let out = Command::new("sh")
    ///         .args(["-c", "echo out; echo err >&2; exit 1"])
    ///         .output()
    ///         .await
    ///         .unwrap();
    ///     assert_eq!(out.status.code(), Some(1));
    ///     assert_eq!(out.stdout, b"out\n");
    ///     assert_eq!(out.stderr, b"err\n");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub async fn output(&mut self) -> io::Result<Output> {
        // Apply `output`'s defaults for this spawn only, then restore `spawn`'s
        // (inherit), so the `Command` stays as the caller configured it.
        let (i, o, e) = (self.stdin_set, self.stdout_set, self.stderr_set);
        if !i {
            self.std.stdin(Stdio::null());
        }
        if !o {
            self.std.stdout(Stdio::piped());
        }
        if !e {
            self.std.stderr(Stdio::piped());
        }
        let child = self.spawn();
        if !i {
            self.std.stdin(Stdio::inherit());
        }
        if !o {
            self.std.stdout(Stdio::inherit());
        }
        if !e {
            self.std.stderr(Stdio::inherit());
        }
        child?.wait_with_output().await
    }
}

/// A pidfd as a `mio` source (readable once the process has exited).
#[derive(Debug)]
struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl mio::event::Source for PidFd {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

/// How a child's exit is noticed.
enum ExitWatch {
    /// Readable when the child exits.
    PidFd(IoSource<PidFd>),
    /// A `SIGCHLD` listener per wait.
    Sigchld,
}

/// A running (or exited, not yet reaped) child process, spawned by
/// [`Command::spawn`].
///
/// Waiting is cancellable and terminates the child when cancelled (see the
/// [module doc](self)). Dropping a `Child` does not wait: the process keeps running
/// (or is killed, with [`Command::kill_on_drop`]) and is reaped later.
///
/// ```
/// use scope_runtime::io::process::{Command, Stdio};
/// use scope_runtime::io::read_to_end;
///
/// scope_runtime::Runtime::new().unwrap().block_on(async {
///     let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn().unwrap();
///     let mut out = Vec::new();
///     read_to_end(child.stdout.as_mut().unwrap(), &mut out).await.unwrap();
///     assert_eq!(out, b"hi\n");
///     assert!(child.wait().await.unwrap().success());
/// });
/// ```
pub struct Child {
    /// The child's stdin, if it was [`Stdio::piped`].
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was [`Stdio::piped`].
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was [`Stdio::piped`].
    pub stderr: Option<ChildStderr>,
    /// `None` only while dropping.
    child: Option<std::process::Child>,
    pid: u32,
    /// Known once reaped.
    status: Option<ExitStatus>,
    watch: ExitWatch,
    kill_on_drop: bool,
    grace: Duration,
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.pid)
            .field("status", &self.status)
            .field(
                "watch",
                &match self.watch {
                    ExitWatch::PidFd(_) => "pidfd",
                    ExitWatch::Sigchld => "SIGCHLD",
                },
            )
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish_non_exhaustive()
    }
}

impl Child {
    fn new(
        mut child: std::process::Child,
        kill_on_drop: bool,
        grace: Duration,
        force_sigchld: bool,
    ) -> io::Result<Child> {
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let watch = if force_sigchld || PIDFD_UNSUPPORTED.load(Ordering::Relaxed) {
            ExitWatch::Sigchld
        } else {
            // The child is not reaped yet, so `pid` still names it.
            match sys::pidfd_open(pid) {
                Ok(fd) => match IoSource::new(PidFd(fd), Interest::READABLE) {
                    Ok(src) => ExitWatch::PidFd(src),
                    Err(_) => ExitWatch::Sigchld,
                },
                Err(e) => {
                    if matches!(e.raw_os_error(), Some(libc::ENOSYS))
                        || e.kind() == io::ErrorKind::Unsupported
                    {
                        PIDFD_UNSUPPORTED.store(true, Ordering::Relaxed);
                    }
                    ExitWatch::Sigchld
                }
            }
        };
        // If a pipe cannot be registered, `spawn` fails and nobody holds the child:
        // dropping `this` kills it (and the orphan list reaps it).
        let mut this = Child {
            stdin: None,
            stdout: None,
            stderr: None,
            child: Some(child),
            pid,
            status: None,
            watch,
            kill_on_drop: true,
            grace,
        };
        this.stdin = stdin.map(ChildStdin::from_std).transpose()?;
        this.stdout = stdout.map(ChildStdout::from_std).transpose()?;
        this.stderr = stderr.map(ChildStderr::from_std).transpose()?;
        this.kill_on_drop = kill_on_drop;
        Ok(this)
    }

    /// The child's process id, or `None` once it has been reaped (the number may
    /// then name another process).
    pub fn id(&self) -> Option<u32> {
        self.status.is_none().then_some(self.pid)
    }

    /// The exit status if the child has exited (reaping it), `None` if it is still
    /// running. Never blocks and is not a checkpoint. Once reaped, every call returns
    /// the same status.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    ///     assert!(child.try_wait().unwrap().is_none());
    ///     child.kill().await.unwrap();
    ///     assert!(child.try_wait().unwrap().is_some());
    /// });
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        let r = self.reap();
        reap_orphans();
        r
    }

    fn reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let child = self.child.as_mut().expect("Child used while dropping");
        let s = child.try_wait()?;
        self.status = s;
        Ok(s)
    }

    /// Sends `signal` to the child if it has not been reaped yet (a no-op after: its
    /// pid may name another process by then). Not a checkpoint. The child inherits
    /// the signals this process ignores (`nohup` ignores `SIGHUP`, for one): such a
    /// signal does nothing to it unless it installs a handler.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    /// use scope_runtime::io::signal::SignalKind;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    ///     child.signal(SignalKind::TERMINATE).unwrap();
    ///     assert_eq!(child.wait().await.unwrap().signal(), Some(libc::SIGTERM));
    /// });
    /// ```
    ///
    /// # Errors
    ///
    /// The signal number is invalid, or the kernel refused.
    pub fn signal(&mut self, signal: SignalKind) -> io::Result<()> {
        if self.reap()?.is_some() {
            return Ok(());
        }
        let signum = signal.as_raw();
        let r = match &self.watch {
            ExitWatch::PidFd(src) => sys::pidfd_send_signal(&src.get_ref().0, signum),
            ExitWatch::Sigchld => sys::send_signal(self.pid, signum),
        };
        match r {
            // Exited and not reaped yet: ESRCH is only possible for a zombie here.
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        }
    }

    /// Sends `SIGKILL` without waiting (see [`kill`](Self::kill) to also reap). A no-op
    /// once the child has been reaped. Not a checkpoint.
    pub fn start_kill(&mut self) -> io::Result<()> {
        self.signal(SignalKind::from_raw(libc::SIGKILL))
    }

    /// Sends `SIGKILL` and waits until the child is reaped. The wait is short (the
    /// kernel tears the process down) and is shielded: it is not a checkpoint, so a
    /// cancellation of the caller does not leave the child unreaped; it is seen at the
    /// caller's next checkpoint.
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    /// use std::os::unix::process::ExitStatusExt;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    ///     child.kill().await.unwrap();
    ///     assert_eq!(child.try_wait().unwrap().unwrap().signal(), Some(libc::SIGKILL));
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a task. (On another runtime than the child's, the wait may fail with
    /// an error instead: a child belongs to the runtime it was spawned on.)
    pub async fn kill(&mut self) -> io::Result<()> {
        self.start_kill()?;
        cancel::shielded(None, self.wait_exit()).await?;
        Ok(())
    }

    /// Waits for the child to exit and reaps it. Closes [`stdin`](Self::stdin) first
    /// (if still here), so a child reading it sees end-of-file.
    ///
    /// A checkpoint. If the calling code is cancelled (before or during the wait), the
    /// child is terminated — `SIGTERM`, the [grace period](Command::cancel_grace), then
    /// `SIGKILL` — and reaped, and only then is `Err` carrying `Cancelled` returned; the
    /// exit status stays available through [`try_wait`](Self::try_wait).
    ///
    /// ```
    /// use scope_runtime::io::process::Command;
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let mut child = Command::new("true").spawn().unwrap();
    ///     assert!(child.wait().await.unwrap().success());
    ///     // Reaped once; later waits give the same status.
    ///     assert!(child.wait().await.unwrap().success());
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a task. (On another runtime than the child's, the wait may fail with
    /// an error instead: a child belongs to the runtime it was spawned on.)
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        let r = self.wait_exit().await;
        self.after_wait(r).await
    }

    /// Closes stdin, reads stdout and stderr to their end (both at once), then waits
    /// for the child like [`wait`](Self::wait) and returns everything. A checkpoint: a
    /// cancellation terminates the child as [`wait`](Self::wait) does and discards the
    /// output read so far.
    ///
    /// ```
    /// use scope_runtime::io::process::{Command, Stdio};
    ///
    /// scope_runtime::Runtime::new().unwrap().block_on(async {
    ///     let child = Command::new("sh")
    ///         .args(["-c", "echo to stderr >&2"])
    ///         .stderr(Stdio::piped())
    ///         .spawn()
    ///         .unwrap();
    ///     let out = child.wait_with_output().await.unwrap();
    ///     assert_eq!(out.stderr, b"to stderr\n");
    ///     assert!(out.stdout.is_empty(), "stdout was not piped");
    /// });
    /// ```
    ///
    /// # Panics
    ///
    /// Outside a task. (On another runtime than the child's, the wait may fail with
    /// an error instead: a child belongs to the runtime it was spawned on.)
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let mut out_pipe = self.stdout.take();
        let mut err_pipe = self.stderr.take();
        let read = poll_fn(|cx| {
            let a = drain(cx, out_pipe.as_mut(), &mut stdout);
            let b = drain(cx, err_pipe.as_mut(), &mut stderr);
            match (a, b) {
                (Poll::Ready(Err(e)), _) | (_, Poll::Ready(Err(e))) => Poll::Ready(Err(e)),
                (Poll::Ready(Ok(())), Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
                _ => Poll::Pending,
            }
        })
        .await;
        drop((out_pipe, err_pipe));
        let r = match read {
            Ok(()) => self.wait_exit().await,
            Err(e) => Err(e),
        };
        let status = self.after_wait(r).await?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Passes `r` on; if it is a cancellation, terminates and reaps the child first.
    async fn after_wait(&mut self, r: io::Result<ExitStatus>) -> io::Result<ExitStatus> {
        match r {
            Err(e) if find_cancelled(&e).is_some() => {
                // The `Cancelled` is what the caller must see, whatever happens while
                // terminating (a failure there leaves the child to `Drop`).
                let _ = self.terminate().await;
                Err(e)
            }
            r => r,
        }
    }

    /// `SIGTERM`, up to `grace` for the child to exit, `SIGKILL`, reap; every wait
    /// shielded from the caller's cancellation. A failure of the polite step (the
    /// signal, or watching the exit) goes straight to `SIGKILL`.
    async fn terminate(&mut self) -> io::Result<()> {
        if self.reap()?.is_some() {
            return Ok(());
        }
        if !self.grace.is_zero() && self.signal(SignalKind::TERMINATE).is_ok() {
            let waited = cancel::shielded(Some(self.grace), self.wait_exit()).await;
            if matches!(waited, Ok(Some(_))) {
                return Ok(());
            }
        }
        self.kill().await
    }

    /// Waits until the child has exited and reaps it. A checkpoint (fails with
    /// `Cancelled` before anything else); does not terminate the child.
    async fn wait_exit(&mut self) -> io::Result<ExitStatus> {
        crate::check_cancelled()?;
        if let Some(s) = self.reap()? {
            reap_orphans();
            return Ok(s);
        }
        let status = match &self.watch {
            ExitWatch::PidFd(src) => {
                let (child, status) = (&mut self.child, &mut self.status);
                src.io(Direction::Read, |_| {
                    let c = child.as_mut().expect("Child used while dropping");
                    match c.try_wait()? {
                        Some(s) => {
                            *status = Some(s);
                            Ok(s)
                        }
                        None => Err(io::ErrorKind::WouldBlock.into()),
                    }
                })
                .await?
            }
            ExitWatch::Sigchld => {
                // Installed first, then checked: an exit before the listener existed
                // is seen by the check, one after it by the listener.
                let mut sigchld = Signal::new(SignalKind::CHILD)?;
                loop {
                    if let Some(s) = self.reap()? {
                        break s;
                    }
                    sigchld.recv().await?;
                }
            }
        };
        reap_orphans();
        Ok(status)
    }

    /// Whether this child's exit is watched through a pidfd (tests of both paths).
    #[cfg(test)]
    pub(crate) fn uses_pidfd(&self) -> bool {
        matches!(self.watch, ExitWatch::PidFd(_))
    }
}

/// Reads `pipe` (if any, until end-of-file) into `buf`.
fn drain<R: futures_io::AsyncRead + Unpin>(
    cx: &mut Context<'_>,
    pipe: Option<&mut R>,
    buf: &mut Vec<u8>,
) -> Poll<io::Result<()>> {
    let Some(pipe) = pipe else {
        return Poll::Ready(Ok(()));
    };
    let mut chunk = [0u8; 8192];
    loop {
        match Pin::new(&mut *pipe).poll_read(cx, &mut chunk) {
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
            Poll::Ready(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.status.is_some() {
            return;
        }
        if matches!(child.try_wait(), Ok(None)) {
            if self.kill_on_drop {
                // Through the pidfd if there is one (still the same process).
                let _ = match &self.watch {
                    ExitWatch::PidFd(src) => {
                        sys::pidfd_send_signal(&src.get_ref().0, libc::SIGKILL)
                    }
                    ExitWatch::Sigchld => sys::send_signal(self.pid, libc::SIGKILL),
                };
            }
            if matches!(child.try_wait(), Ok(None)) {
                ORPHANS.lock().push(child);
            }
        }
    }
}

/// The writing end of a child's stdin pipe; `AsyncWrite` on the reactor. Writes are
/// checkpoints (a cancelled write writes nothing). Dropping it, or
/// [`poll_close`](futures_io::AsyncWrite::poll_close) (`close()` in `futures`' extension
/// trait), closes the pipe: the child reads end-of-file.
pub struct ChildStdin {
    /// `None` once closed.
    io: Option<IoSource<pipe::Sender>>,
}

/// The reading end of a child's stdout pipe; `AsyncRead` on the reactor. Reads are
/// checkpoints (a cancelled read reads nothing, so no byte is lost).
pub struct ChildStdout {
    io: IoSource<pipe::Receiver>,
}

/// The reading end of a child's stderr pipe; `AsyncRead` on the reactor. Reads are
/// checkpoints (a cancelled read reads nothing, so no byte is lost).
pub struct ChildStderr {
    io: IoSource<pipe::Receiver>,
}

impl ChildStdin {
    /// Wraps a [`std::process::ChildStdin`]: made non-blocking and registered with the
    /// current runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(pipe: std::process::ChildStdin) -> io::Result<ChildStdin> {
        let tx = pipe::Sender::from(pipe);
        tx.set_nonblocking(true)?;
        Ok(ChildStdin {
            io: Some(IoSource::new(tx, Interest::WRITABLE)?),
        })
    }

    fn closed() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "the child's stdin was closed")
    }
}

impl ChildStdout {
    /// Wraps a [`std::process::ChildStdout`]: made non-blocking and registered with the
    /// current runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(pipe: std::process::ChildStdout) -> io::Result<ChildStdout> {
        let rx = pipe::Receiver::from(pipe);
        rx.set_nonblocking(true)?;
        Ok(ChildStdout {
            io: IoSource::new(rx, Interest::READABLE)?,
        })
    }
}

impl ChildStderr {
    /// Wraps a [`std::process::ChildStderr`]: made non-blocking and registered with the
    /// current runtime's reactor.
    ///
    /// # Panics
    ///
    /// Outside a runtime.
    pub fn from_std(pipe: std::process::ChildStderr) -> io::Result<ChildStderr> {
        let rx = pipe::Receiver::from(pipe);
        rx.set_nonblocking(true)?;
        Ok(ChildStderr {
            io: IoSource::new(rx, Interest::READABLE)?,
        })
    }
}

impl futures_io::AsyncWrite for ChildStdin {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &self.io {
            Some(io) => io.poll_io(cx, Direction::Write, |mut tx| tx.write(buf)),
            None => Poll::Ready(Err(ChildStdin::closed())),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &self.io {
            Some(io) => io.poll_io(cx, Direction::Write, |mut tx| tx.write_vectored(bufs)),
            None => Poll::Ready(Err(ChildStdin::closed())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        drop(self.io.take());
        Poll::Ready(Ok(()))
    }
}

macro_rules! read_impls {
    ($t:ty) => {
        impl futures_io::AsyncRead for $t {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut [u8],
            ) -> Poll<io::Result<usize>> {
                self.io.poll_io(cx, Direction::Read, |mut rx| rx.read(buf))
            }
        }

        impl AsFd for $t {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.io.get_ref().as_fd()
            }
        }

        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.io.get_ref().as_raw_fd()
            }
        }

        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_tuple(stringify!($t))
                    .field(&self.as_raw_fd())
                    .finish()
            }
        }
    };
}

read_impls!(ChildStdout);
read_impls!(ChildStderr);

impl fmt::Debug for ChildStdin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.io {
            Some(io) => f
                .debug_tuple("ChildStdin")
                .field(&io.get_ref().as_raw_fd())
                .finish(),
            None => f.write_str("ChildStdin(<closed>)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::time::Duration;

    use super::*;
    use crate::Runtime;

    // `scope/` is out of reach from `io/`: a (shielded) scope with a timeout plays
    // `move_on_after` here.

    fn forced(program: &str, args: &[&str]) -> Command {
        let mut c = Command::new(program);
        c.args(args);
        c.force_sigchld = true;
        c
    }

    /// The `SIGCHLD` path: a normal exit, an exit that happened before the wait
    /// installed its listener, and a cancelled wait that terminates the child.
    #[test]
    #[cfg(target_os = "linux")]
    #[cfg_attr(miri, ignore = "spawns processes")]
    fn the_sigchld_path_sees_every_exit() {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let safety_net = cancel::shielded(Some(Duration::from_secs(20)), async {
                let mut c = forced("sh", &["-c", "sleep 0.05; exit 4"]).spawn()?;
                assert!(!c.uses_pidfd());
                assert_eq!(c.wait().await?.code(), Some(4));

                // Exits before any listener exists: the check after installing sees it.
                let mut c = forced("true", &[]).spawn()?;
                let pid = c.id().unwrap();
                while !is_zombie(pid) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(c.wait().await?.success());

                let mut c = forced("sleep", &["30"]).spawn()?;
                let r = cancel::shielded(Some(Duration::from_millis(30)), c.wait()).await;
                assert!(matches!(r, Ok(None)), "{r:?}");
                assert_eq!(c.try_wait()?.unwrap().signal(), Some(libc::SIGTERM));
                Ok::<_, io::Error>(())
            });
            assert!(safety_net.await.unwrap().is_some(), "timed out");
        });
    }

    #[test]
    #[cfg_attr(miri, ignore = "spawns processes")]
    fn pidfds_are_used_where_the_kernel_has_them() {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let mut c = Command::new("true").spawn().unwrap();
            let have = sys::pidfd_open(std::process::id()).is_ok();
            assert_eq!(c.uses_pidfd(), have && !pidfd_disabled_by_env());
            assert!(c.wait().await.unwrap().success());
        });
    }

    #[cfg(target_os = "linux")]
    fn is_zombie(pid: u32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
            })
            .unwrap_or(false)
    }
}

//! Platform code of `io/`: everything that needs `libc` (and `unsafe`) lives here.
//!
//! The rest of `io/` sees these safe functions, with these contracts:
//!
//! * [`install_signal_handler`] — from the first successful call for a signal number on,
//!   every delivery of that signal to the process increments
//!   [`signal_generation`]`(signum)` and **then** writes one byte to every active
//!   wake-up pipe (see below). A full pipe drops the byte, which is harmless: a
//!   non-empty pipe already means a pending wake-up. The handler stays installed for
//!   the life of the process and never chains to the previous disposition.
//! * [`signal_generation`] — the delivery counter read by listeners (`Acquire`).
//! * Wake-up pipe slots: [`set_wake_slot`] stores the write end of a pipe in a slot of
//!   a fixed table ([`WAKE_SLOTS`] entries) and [`set_wake_slot_active`] turns it on or
//!   off. The handler writes to every active slot. A write end stored in the table is
//!   **never closed** (slots are reused with their pipe), so the handler can never
//!   write into an fd number that was closed and reused for something else.
//!   Each signal listener owns one slot: pipes are not shared between readers, because
//!   `epoll` re-checks readiness before reporting an event, and one reader draining a
//!   shared pipe would swallow the wake-up of the others.
//! * [`set_backlog`] — `listen(2)` again on a listening socket to change its backlog.
//! * `recv_uninit` (with the `hyper` feature) — `recv(2)` into memory that may be
//!   uninitialised; on `Ok(n)` exactly the first `n` bytes were written.
//! * [`describe_fd`] — a socket's peer or local address as text, for the task dump.
//! * Processes: [`pidfd_open`] (Linux ≥ 5.3; `Unsupported` elsewhere or on older
//!   kernels), [`pidfd_send_signal`] and [`send_signal`] (`kill(2)` on one positive pid,
//!   never a process group), for `io/process.rs`.
//!
//! Only Unix is supported (the crate's reactor is `mio` on epoll/kqueue).

use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};

/// Signal numbers we can track: 1..=64 covers the standard and real-time signals on
/// Linux (`SIGRTMAX` is 64) and every BSD.
pub(crate) const SIGNAL_SLOTS: usize = 65;

/// Deliveries seen by the handler, per signal number.
static GENERATIONS: [AtomicU64; SIGNAL_SLOTS] = [const { AtomicU64::new(0) }; SIGNAL_SLOTS];

/// Whether our handler is installed for a signal number.
static INSTALLED: [AtomicBool; SIGNAL_SLOTS] = [const { AtomicBool::new(false) }; SIGNAL_SLOTS];

/// Serialises `sigaction` calls (two threads installing the same signal at once).
static INSTALL_LOCK: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// How many signal listeners can exist at once (each owns one wake-up pipe).
pub(crate) const WAKE_SLOTS: usize = 256;

/// Write ends of the wake-up pipes (non-blocking), or -1 for a slot never used.
static WAKE_FDS: [AtomicI32; WAKE_SLOTS] = [const { AtomicI32::new(-1) }; WAKE_SLOTS];

/// Whether the handler writes to a slot's pipe.
static WAKE_ACTIVE: [AtomicBool; WAKE_SLOTS] = [const { AtomicBool::new(false) }; WAKE_SLOTS];

/// One past the highest slot ever used (bounds the handler's loop).
static WAKE_USED: AtomicUsize = AtomicUsize::new(0);

/// Signals whose handlers cannot be replaced, or whose replacement would turn a crash
/// into a hang (the faulting instruction would run again).
const FORBIDDEN: &[libc::c_int] = &[
    libc::SIGKILL,
    libc::SIGSTOP,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

/// The signal handler. Async-signal-safe: atomics, `write(2)` and `errno` only.
extern "C" fn on_signal(signum: libc::c_int) {
    // `write` may clobber errno in the middle of the interrupted code's own syscall
    // handling; save and restore it.
    let saved = io::Error::last_os_error().raw_os_error();
    if let Some(slot) = usize::try_from(signum)
        .ok()
        .and_then(|s| GENERATIONS.get(s))
    {
        slot.fetch_add(1, Ordering::Release);
    }
    let byte = [signum as u8];
    let used = WAKE_USED.load(Ordering::Acquire).min(WAKE_SLOTS);
    for slot in 0..used {
        if !WAKE_ACTIVE[slot].load(Ordering::Acquire) {
            continue;
        }
        let fd = WAKE_FDS[slot].load(Ordering::Acquire);
        if fd >= 0 {
            // SAFETY: `fd` is the write end of a wake-up pipe; once stored in
            // `WAKE_FDS` it is never closed (see the module doc), so it is open and
            // still that pipe. `byte` is a valid 1-byte buffer and `write` is
            // async-signal-safe. A failure (pipe full) is fine, see the module doc.
            unsafe {
                libc::write(fd, byte.as_ptr().cast(), 1);
            }
        }
    }
    if let Some(e) = saved {
        set_errno(e);
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_errno(e: libc::c_int) {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() = e };
}

#[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
fn set_errno(e: libc::c_int) {
    // SAFETY: `__error` returns a valid pointer to this thread's errno.
    unsafe { *libc::__error() = e };
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "ios",
    target_os = "freebsd"
)))]
fn set_errno(_e: libc::c_int) {}

/// Stores the write end of a wake-up pipe in `slot` (inactive until
/// [`set_wake_slot_active`]). The caller gives up ownership: the fd is never closed.
///
/// # Panics
///
/// If `slot >= WAKE_SLOTS` or the slot already holds a pipe.
pub(crate) fn set_wake_slot(slot: usize, write_end: OwnedFd) {
    let fd = write_end.into_raw_fd();
    let prev = WAKE_FDS[slot].swap(fd, Ordering::AcqRel);
    assert_eq!(prev, -1, "wake-up slot {slot} reused with a new pipe");
    WAKE_USED.fetch_max(slot + 1, Ordering::AcqRel);
}

/// Turns the handler's writes to `slot`'s pipe on or off.
pub(crate) fn set_wake_slot_active(slot: usize, active: bool) {
    WAKE_ACTIVE[slot].store(active, Ordering::Release);
}

/// Deliveries of `signum` seen so far (0 for an untracked number).
pub(crate) fn signal_generation(signum: i32) -> u64 {
    usize::try_from(signum)
        .ok()
        .and_then(|s| GENERATIONS.get(s))
        .map_or(0, |g| g.load(Ordering::Acquire))
}

/// Checks that `signum` is a signal we can listen for.
pub(crate) fn check_signal(signum: i32) -> io::Result<()> {
    let in_range = usize::try_from(signum).is_ok_and(|s| (1..SIGNAL_SLOTS).contains(&s));
    if !in_range {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid signal number {signum}"),
        ));
    }
    if FORBIDDEN.contains(&signum) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "signal {signum} cannot be handled (SIGKILL, SIGSTOP and fault signals are refused)"
            ),
        ));
    }
    Ok(())
}

/// Installs the crate's handler for `signum` (once; later calls are no-ops).
pub(crate) fn install_signal_handler(signum: i32) -> io::Result<()> {
    check_signal(signum)?;
    let idx = signum as usize; // in 1..SIGNAL_SLOTS, checked above
    if INSTALLED[idx].load(Ordering::Acquire) {
        return Ok(());
    }
    let _guard = INSTALL_LOCK.lock();
    if INSTALLED[idx].load(Ordering::Acquire) {
        return Ok(());
    }
    // SAFETY: an all-zero `sigaction` is a valid value (empty mask, no flags, SIG_DFL);
    // we fill in the fields we use below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SA_RESTART: syscalls interrupted in other threads (e.g. blocking-pool jobs) are
    // restarted instead of failing with EINTR.
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action.sa_mask` is a valid, writable `sigset_t`.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: `signum` is a valid, catchable signal (checked above), `action` is fully
    // initialised and `on_signal` is async-signal-safe; a null old-action pointer is
    // allowed.
    let rc = unsafe { libc::sigaction(signum, &action, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    INSTALLED[idx].store(true, Ordering::Release);
    Ok(())
}

/// Calls `listen(2)` on an already listening socket to set its backlog (Linux and the
/// BSDs update the backlog of a listening socket in place).
pub(crate) fn set_backlog(socket: &impl AsRawFd, backlog: u32) -> io::Result<()> {
    let backlog = libc::c_int::try_from(backlog).unwrap_or(libc::c_int::MAX);
    // SAFETY: `listen` only reads its integer arguments; the fd is borrowed from a live
    // socket for the duration of the call.
    let rc = unsafe { libc::listen(socket.as_raw_fd(), backlog) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Turns a child's pid into the positive `pid_t` the process calls need. Refuses 0 and
/// values that would turn negative: `kill` would read those as "my process group" or
/// "every process I may signal".
fn checked_pid(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid process id {pid}"),
        )),
    }
}

/// Opens a pidfd for the process `pid` (`pidfd_open(2)`, Linux ≥ 5.3). The fd becomes
/// readable when the process exits; it is close-on-exec. Fails with the kernel's error
/// (`ENOSYS` on older kernels, `EPERM` under some seccomp filters), and with
/// `Unsupported` on other systems.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let pid = checked_pid(pid)?;
    // SAFETY: `pidfd_open` takes a pid and a flags word (0) and returns a new fd or -1;
    // it reads and writes no memory of ours.
    let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = libc::c_int::try_from(rc).map_err(|_| io::Error::other("pidfd out of range"))?;
    // SAFETY: `fd` was just returned by the kernel, is open, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// See the Linux version: other systems have no pidfd.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pidfd_open(_pid: u32) -> io::Result<OwnedFd> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Sends `signum` to the process behind `pidfd` (`pidfd_send_signal(2)`, Linux ≥ 5.1).
/// Unlike `kill`, it can never hit another process that reused the pid.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pidfd_send_signal(pidfd: &impl AsRawFd, signum: i32) -> io::Result<()> {
    // SAFETY: the fd is borrowed from a live pidfd for the call; a null `siginfo`
    // pointer is allowed (the kernel fills in a default one) and flags must be 0.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signum,
            std::ptr::null::<libc::siginfo_t>(),
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// See the Linux version: other systems have no pidfd.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pidfd_send_signal(_pidfd: &impl AsRawFd, _signum: i32) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Sends `signum` to the single process `pid` (`kill(2)`). The caller must know the
/// pid still names its child (not yet reaped), so it cannot have been reused.
pub(crate) fn send_signal(pid: u32, signum: i32) -> io::Result<()> {
    let pid = checked_pid(pid)?;
    // SAFETY: `kill` only reads its integer arguments; `pid` is positive (one process,
    // never a group).
    let rc = unsafe { libc::kill(pid, signum) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The CPUs the calling thread may run on, in ascending order (`sched_getaffinity`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is plain bits; all zeros is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a pointer to a live `cpu_set_t` of `size` bytes; pid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let max = libc::CPU_SETSIZE as usize;
    // SAFETY: every `cpu` is below `CPU_SETSIZE`, the set's capacity.
    Ok((0..max)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Pins the calling thread to `cpu` (`sched_setaffinity`).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn pin_current_thread(cpu: usize) -> io::Result<()> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "CPU {cpu} is beyond the affinity mask's {} CPUs",
                libc::CPU_SETSIZE
            ),
        ));
    }
    // SAFETY: as in `allowed_cpus`.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `cpu` is below `CPU_SETSIZE` (checked above).
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: a pointer to a live `cpu_set_t` of `size` bytes; pid 0 is this thread.
    if unsafe { libc::sched_setaffinity(0, size, &set) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn allowed_cpus() -> io::Result<Vec<usize>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "pinning threads to CPUs is only implemented on Linux",
    ))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn pin_current_thread(_cpu: usize) -> io::Result<()> {
    allowed_cpus().map(drop)
}

/// Reads from a connected socket into `buf`, which may be uninitialised: the kernel
/// only writes to it. On `Ok(n)` the first `n` bytes of `buf` are initialised (`n <=
/// buf.len()`); errors come from `errno` (`WouldBlock`, `Interrupted`... for the caller
/// to handle).
#[cfg(feature = "hyper")]
pub(crate) fn recv_uninit(
    socket: &impl AsRawFd,
    buf: &mut [std::mem::MaybeUninit<u8>],
) -> io::Result<usize> {
    // SAFETY: the pointer and length describe one live allocation that we borrow
    // mutably for the duration of the call; `recv` writes at most `buf.len()` bytes
    // into it and never reads it, so uninitialised bytes are fine. `MaybeUninit<u8>`
    // has the layout of `u8`. The fd is borrowed from a live socket.
    let n = unsafe { libc::recv(socket.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    // A negative result is exactly -1 with `errno` set; any other fits in `usize`.
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// What the socket `fd` is, for the task dump: `peer ADDR` when it is connected,
/// `local ADDR` otherwise (a listener, an unconnected UDP socket), `unix socket PATH`
/// for a named Unix socket; `None` for anything else (a pipe, a closed fd). Called
/// only when a dump is taken, never on an I/O path.
pub(crate) fn describe_fd(fd: i32) -> Option<String> {
    if let Some(peer) = socket_address(fd, libc::getpeername) {
        return Some(format!("peer {peer}"));
    }
    socket_address(fd, libc::getsockname).map(|local| format!("local {local}"))
}

type AddrCall =
    unsafe extern "C" fn(libc::c_int, *mut libc::sockaddr, *mut libc::socklen_t) -> libc::c_int;

/// `getpeername` / `getsockname` of `fd`, as text.
fn socket_address(fd: i32, call: AddrCall) -> Option<String> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
    // SAFETY: `sockaddr_storage` is plain old data, for which all zeroes is a value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: `storage` is writable for `len` bytes, and the call writes at most `len`
    // bytes into it (updating `len`). Any fd number is allowed: a bad one fails with
    // `EBADF` or `ENOTSOCK`, which we report as "nothing to say".
    let r = unsafe {
        call(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return None;
    }
    match libc::c_int::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`, and
            // `sockaddr_storage` is large and aligned enough for every address type.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>()
            };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(a.sin_port))).to_string())
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for `sockaddr_in6`.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>()
            };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::from((ip, u16::from_be(a.sin6_port))).to_string())
        }
        libc::AF_UNIX => {
            // SAFETY: as above, for `sockaddr_un`.
            let a = unsafe {
                &*(&storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_un>()
            };
            let path: Vec<u8> = a
                .sun_path
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            if path.is_empty() {
                None // unnamed (a socketpair, a client): nothing worth saying
            } else {
                Some(format!("unix socket {}", String::from_utf8_lossy(&path)))
            }
        }
        _ => None,
    }
}

// ---- TCP socket options and setup (`TcpSocket`, `io/socket.rs`) -------------------
//
// Contracts: [`tcp_socket`] returns a new, non-blocking, close-on-exec TCP socket of the
// address family asked for; [`set_int_option`] / [`int_option`] set and read one
// integer socket option (`setsockopt` / `getsockopt`); [`bind_socket`],
// [`listen_socket`] and [`start_connect`] are `bind(2)`, `listen(2)` and a
// non-blocking `connect(2)` (whose `EINPROGRESS` is success: the handshake goes on).

/// The option names `TcpSocket` uses, so that no code outside this file needs `libc`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SockOpt {
    ReuseAddr,
    ReusePort,
    NoDelay,
    RecvBuffer,
    SendBuffer,
}

impl SockOpt {
    fn level_name(self) -> (libc::c_int, libc::c_int) {
        match self {
            SockOpt::ReuseAddr => (libc::SOL_SOCKET, libc::SO_REUSEADDR),
            SockOpt::ReusePort => (libc::SOL_SOCKET, libc::SO_REUSEPORT),
            SockOpt::NoDelay => (libc::IPPROTO_TCP, libc::TCP_NODELAY),
            SockOpt::RecvBuffer => (libc::SOL_SOCKET, libc::SO_RCVBUF),
            SockOpt::SendBuffer => (libc::SOL_SOCKET, libc::SO_SNDBUF),
        }
    }
}

/// A new TCP socket (`ipv6`: `AF_INET6`, else `AF_INET`), non-blocking and
/// close-on-exec from the start.
pub(crate) fn tcp_socket(ipv6: bool) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let domain = if ipv6 { libc::AF_INET6 } else { libc::AF_INET };
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    ))]
    let fd = {
        let ty = libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: `socket` takes integers only and returns a new fd or -1.
        unsafe { libc::socket(domain, ty, 0) }
    };
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    let fd = {
        // SAFETY: `socket` takes integers only and returns a new fd or -1.
        unsafe { libc::socket(domain, libc::SOCK_STREAM, 0) }
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by `socket` and is owned by nobody else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )))]
    {
        // SAFETY: `fcntl` with these commands only reads and sets the flags of a live
        // fd that we own.
        let ok = unsafe {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
                && libc::fcntl(
                    fd,
                    libc::F_SETFL,
                    libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
                ) == 0
        };
        if !ok {
            return Err(io::Error::last_os_error());
        }
        // No SIGPIPE on writes to a closed peer (Linux passes MSG_NOSIGNAL instead),
        // as on the sockets mio creates.
        #[cfg(any(target_os = "macos", target_os = "ios"))]
        {
            let one: libc::c_int = 1;
            // SAFETY: the pointer and length describe `one`, a live `c_int` that
            // `setsockopt` only reads; `fd` is the live socket owned by `owned`.
            let rc = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_NOSIGPIPE,
                    (&raw const one).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(owned)
}

/// Sets an integer socket option.
pub(crate) fn set_int_option(socket: &impl AsRawFd, opt: SockOpt, value: i32) -> io::Result<()> {
    let (level, name) = opt.level_name();
    let value: libc::c_int = value;
    // SAFETY: the pointer and length describe `value`, a live `c_int` that
    // `setsockopt` only reads; the fd is borrowed from a live socket.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads an integer socket option.
pub(crate) fn int_option(socket: &impl AsRawFd, opt: SockOpt) -> io::Result<i32> {
    let (level, name) = opt.level_name();
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live locals; `getsockopt` writes at most `len`
    // bytes into `value` and the new length into `len`. The fd is borrowed from a
    // live socket.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A `sockaddr_in` / `sockaddr_in6` for `addr`, in storage big enough for either.
fn raw_sockaddr(addr: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero `sockaddr_storage` is a valid value (plain integers).
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        std::net::SocketAddr::V4(a) => {
            // SAFETY: `sockaddr_storage` is larger than and aligned at least like
            // `sockaddr_in` (that is its purpose), so the cast pointer is valid for
            // writes of one `sockaddr_in`.
            let sin = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in>() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            // SAFETY: as above, for `sockaddr_in6`.
            let sin6 = unsafe { &mut *(&raw mut storage).cast::<libc::sockaddr_in6>() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_flowinfo = a.flowinfo();
            sin6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            sin6.sin6_scope_id = a.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

/// `bind(2)`.
pub(crate) fn bind_socket(socket: &impl AsRawFd, addr: &std::net::SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_sockaddr(addr);
    // SAFETY: `storage` holds a valid socket address of `len` bytes, which `bind`
    // only reads; the fd is borrowed from a live socket.
    let rc = unsafe { libc::bind(socket.as_raw_fd(), (&raw const storage).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `listen(2)` with `backlog` (clamped to `c_int`).
pub(crate) fn listen_socket(socket: &impl AsRawFd, backlog: u32) -> io::Result<()> {
    set_backlog(socket, backlog)
}

/// Starts a non-blocking `connect(2)`: `Ok` when the connection is made or in
/// progress (`EINPROGRESS`); the caller waits for writability and reads `SO_ERROR`.
pub(crate) fn start_connect(socket: &impl AsRawFd, addr: &std::net::SocketAddr) -> io::Result<()> {
    let (storage, len) = raw_sockaddr(addr);
    // SAFETY: `storage` holds a valid socket address of `len` bytes, which `connect`
    // only reads; the fd is borrowed from a live socket.
    let rc = unsafe { libc::connect(socket.as_raw_fd(), (&raw const storage).cast(), len) };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // In progress, or interrupted (the connect goes on in the kernel): writability
        // reports the outcome.
        Some(libc::EINPROGRESS | libc::EINTR) => Ok(()),
        _ => Err(e),
    }
}

/// What an `accept(2)` error means for a server loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AcceptErrorClass {
    /// Out of a resource (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`): wait a little, then
    /// accept again.
    Capacity,
    /// That one connection failed before it was taken (`ECONNABORTED`, `EPROTO`,
    /// `EPERM`, and the network errors Linux reports early): accept the next one now.
    Connection,
    /// Anything else (e.g. `EBADF`, `EINVAL`: the listener itself is broken).
    Fatal,
}

/// Sorts an error of `accept(2)` into [`AcceptErrorClass`].
pub(crate) fn classify_accept_error(e: &io::Error) -> AcceptErrorClass {
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
            AcceptErrorClass::Capacity
        }
        Some(
            libc::ECONNABORTED
            | libc::ECONNRESET
            | libc::EPROTO
            | libc::EPERM
            | libc::EINTR
            | libc::ENETDOWN
            | libc::ENETUNREACH
            | libc::EHOSTDOWN
            | libc::EHOSTUNREACH
            | libc::ENOPROTOOPT
            | libc::EOPNOTSUPP
            | libc::ETIMEDOUT,
        ) => AcceptErrorClass::Connection,
        _ => match e.kind() {
            io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted => AcceptErrorClass::Connection,
            _ => AcceptErrorClass::Fatal,
        },
    }
}

// ---- end of the TCP socket block ------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "calls into libc")]
    fn signal_numbers_are_checked() {
        assert!(check_signal(0).is_err());
        assert!(check_signal(-3).is_err());
        assert!(check_signal(SIGNAL_SLOTS as i32).is_err());
        assert!(check_signal(libc::SIGKILL).is_err());
        assert!(check_signal(libc::SIGSEGV).is_err());
        assert!(check_signal(libc::SIGUSR2).is_ok());
        assert_eq!(signal_generation(-1), 0);
        assert_eq!(signal_generation(1000), 0);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls into libc")]
    fn process_ids_are_checked() {
        for bad in [0, u32::MAX, 1 << 31] {
            let e = send_signal(bad, 0).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "pid {bad}");
            #[cfg(target_os = "linux")]
            {
                let e = pidfd_open(bad).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "pid {bad}");
            }
        }
        // Signal 0 only checks that the process exists: we do.
        send_signal(std::process::id(), 0).unwrap();
    }
}

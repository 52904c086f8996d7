//! Running the process out of file descriptors, for the `EMFILE` tests. The limit is
//! process-wide, so each test that uses this is alone in its own test binary.

/// While alive: the soft `RLIMIT_NOFILE` is a little above what was open, and the rest
/// is taken by `/dev/null` handles, so the next `open`, `socket` or `accept` fails with
/// `EMFILE`. Dropping it closes the handles and restores the limits.
pub struct FdExhaustion {
    old: libc::rlimit,
    hogs: Vec<std::fs::File>,
}

impl FdExhaustion {
    pub fn start() -> std::io::Result<FdExhaustion> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a pointer to a live `rlimit`.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        let old = lim;
        let open = std::fs::read_dir("/proc/self/fd")?.count() as libc::rlim_t;
        lim.rlim_cur = open + 16;
        // SAFETY: as above; a soft limit below the hard one.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
        let mut exhaustion = FdExhaustion {
            old,
            hogs: Vec::new(),
        };
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => exhaustion.hogs.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => return Ok(exhaustion),
                Err(e) => return Err(e), // the drop restores the limit
            }
        }
    }
}

impl FdExhaustion {
    /// Closes `n` of the handles, so exactly `n` more descriptors can be opened.
    #[allow(dead_code)] // not every test binary that includes this file uses it
    pub fn free(&mut self, n: usize) {
        let keep = self.hogs.len().saturating_sub(n);
        self.hogs.truncate(keep);
    }
}

impl Drop for FdExhaustion {
    fn drop(&mut self) {
        self.hogs.clear();
        // SAFETY: a pointer to a live `rlimit`; restores the limits read in `start`.
        let restored = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &self.old) };
        assert_eq!(restored, 0, "restoring RLIMIT_NOFILE");
    }
}

//! Accept under file-descriptor exhaustion (issue 16): with the process out of fds,
//! `accept` fails with a clear `EMFILE` error (no hang, no busy loop); once fds are
//! free again the same listener accepts the connection that waited in its backlog.
//!
//! Its own test binary, with one test: it lowers the process's fd limit.

use std::time::Duration;

use scope_runtime::io::TcpListener;
use scope_runtime::{BoxError, fail_after};

#[scope_runtime::test]
async fn accept_fails_clearly_at_emfile_and_recovers() {
    fail_after(Duration::from_secs(30), async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let client = std::net::TcpStream::connect(l.local_addr()?)?;

        // Lower the soft limit to a little above what is open, then use up the rest.
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
        let mut hogs = Vec::new();
        loop {
            match std::fs::File::open("/dev/null") {
                Ok(f) => hogs.push(f),
                Err(e) if e.raw_os_error() == Some(libc::EMFILE) => break,
                Err(e) => return Err(e.into()),
            }
        }

        let Err(e) = l.accept().await else {
            panic!("no fd left: accept must fail");
        };
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");

        drop(hogs);
        // SAFETY: as above; restores the previous limits.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &old) }, 0);
        let (s, peer) = l.accept().await?;
        assert_eq!(
            peer,
            client.local_addr()?,
            "the waiting connection is accepted"
        );
        drop(s);
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

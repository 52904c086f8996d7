//! Accept under file-descriptor exhaustion (issue 16): with the process out of fds,
//! `accept` fails with a clear `EMFILE` error (no hang, no busy loop); once fds are
//! free again the same listener accepts the connection that waited in its backlog.
//!
//! Its own test binary, with one test: it lowers the process's fd limit.

#[path = "support/fd_exhaustion.rs"]
mod fd_exhaustion;
use fd_exhaustion::FdExhaustion;

use std::time::Duration;

use scope_runtime::io::TcpListener;
use scope_runtime::{BoxError, fail_after};

#[scope_runtime::test]
async fn accept_fails_clearly_at_emfile_and_recovers() {
    fail_after(Duration::from_secs(30), async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let client = std::net::TcpStream::connect(l.local_addr()?)?;

        let exhausted = FdExhaustion::start()?;

        let Err(e) = l.accept().await else {
            panic!("no fd left: accept must fail");
        };
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");

        drop(exhausted); // fds are free again
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

//! `serve_tcp` out of file descriptors: accept's `EMFILE` is reported and retried after
//! the backoff — not a busy loop, not the end of the server — and the connection that
//! waited in the backlog is served once descriptors are free again.
//!
//! Its own test binary, with one test: it lowers the process's fd limit.

#[path = "support/fd_exhaustion.rs"]
mod fd_exhaustion;
use fd_exhaustion::FdExhaustion;

use std::cell::{Cell, RefCell};
use std::io::Cursor;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::{TcpListener, TcpStream, read_exact};
use scope_runtime::{BoxError, CancelScope, ServeError, ServeTcp, fail_after, sleep};

#[scope_runtime::test]
async fn serve_tcp_backs_off_at_emfile_and_recovers() {
    fail_after(Duration::from_secs(30), async {
        let l = TcpListener::bind("127.0.0.1:0").await?;
        let addr = l.local_addr()?;
        // Connected (in the backlog) before the fds run out; the byte waits there too.
        let client = TcpStream::connect(addr).await?;
        client.write(b"a").await?;

        let accept_errors = Rc::new(Cell::new(0u32));
        let other_errors: Rc<RefCell<Vec<String>>> = Rc::default();
        let (ae, oe) = (accept_errors.clone(), other_errors.clone());
        let server = ServeTcp::new(l, |s: TcpStream, _peer| async move {
            let mut b = Cursor::new([0u8; 1]);
            read_exact(&mut &s, &mut b).await?;
            s.write(b.get_ref()).await?;
            Ok::<_, std::io::Error>(())
        })
        .accept_backoff(Duration::from_millis(50))
        .on_error(move |e| match e {
            ServeError::Accept(e) if e.raw_os_error() == Some(libc::EMFILE) => ae.set(ae.get() + 1),
            other => oe.borrow_mut().push(other.to_string()),
        });

        let exhausted = FdExhaustion::start()?;

        let scope = CancelScope::new();
        let stop = scope.clone();
        let (served, checked) = futures::join!(scope.run(server.run()), async {
            sleep(Duration::from_millis(400)).await?;
            // About 400 / 50 retries: reported, paced, and the server still runs.
            let n = accept_errors.get();
            assert!((2..=20).contains(&n), "{n} EMFILE reports in 400 ms");
            drop(exhausted); // fds are free again
            let mut echo = Cursor::new([0u8; 1]);
            read_exact(&mut &client, &mut echo).await?;
            assert_eq!(echo.get_ref(), b"a", "the waiting connection was served");
            stop.cancel();
            Ok::<_, BoxError>(())
        });
        checked?;
        assert!(served?.is_none(), "the cancel stopped the server");
        assert!(
            other_errors.borrow().is_empty(),
            "{:?}",
            other_errors.borrow()
        );
        Ok::<_, BoxError>(())
    })
    .await
    .unwrap();
}

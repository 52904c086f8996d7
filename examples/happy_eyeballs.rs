//! Happy Eyeballs (RFC 8305 §5): connect to the first of several addresses that
//! answers, starting the attempts one after the other with a delay, all inside one
//! task group. The first success cancels every other attempt — the classic
//! structured-concurrency showcase (after Trio's `open_tcp_stream`).
//!
//! ```text
//! cargo run --example happy_eyeballs
//! ```
//!
//! Offline and bounded: the demo builds its own three addresses on 127.0.0.1:
//!
//! 1. a listener whose accept queue is full — connects to it are never answered,
//! 2. a closed port — refused at once,
//! 3. a listener that answers and greets.
//!
//! Expected timeline: attempt 1 starts and hangs; after the 250 ms delay attempt 2
//! starts and is refused at once, so attempt 3 starts right away (a failure does not
//! wait for the delay), connects, and cancels attempt 1.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use scope_runtime::io::{TcpListener, TcpStream, read_to_end};
use scope_runtime::{
    BoxError, CancelError, CancelScope, TaskGroup, move_on_after, sleep, task_group,
};

/// RFC 8305's recommended "Connection Attempt Delay".
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Connects to the first address that answers. Attempt `i + 1` starts when attempt
/// `i` failed or after `delay`, whichever comes first; the first connection wins and
/// cancels the rest. Returns the winner's index and stream, or every error.
async fn happy_eyeballs(
    addrs: &[SocketAddr],
    delay: Duration,
    t0: Instant,
) -> io::Result<(usize, TcpStream)> {
    let winner: Rc<RefCell<Option<(usize, TcpStream)>>> = Rc::default();
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let (w, errs) = (winner.clone(), errors.clone());
    task_group(|tg| async move {
        for (i, &addr) in addrs.iter().enumerate() {
            // The spawner waits in this scope until the delay passes, or until the
            // attempt cancels it to say "I failed, start the next one now".
            let wait = CancelScope::new().with_timeout(delay);
            tg.spawn(attempt(
                i,
                addr,
                tg.clone(),
                wait.clone(),
                w.clone(),
                errs.clone(),
                t0,
            ));
            wait.run(sleep(Duration::MAX)).await?;
        }
        Ok::<_, BoxError>(())
    })
    .await
    .map_err(io::Error::other)?;
    let won = winner.borrow_mut().take();
    won.ok_or_else(|| {
        io::Error::other(format!(
            "every attempt failed: {}",
            errors.borrow().join("; ")
        ))
    })
}

/// One connection attempt, a child of the group.
async fn attempt(
    i: usize,
    addr: SocketAddr,
    tg: TaskGroup,
    failed: CancelScope,
    winner: Rc<RefCell<Option<(usize, TcpStream)>>>,
    errors: Rc<RefCell<Vec<String>>>,
    t0: Instant,
) -> Result<(), BoxError> {
    println!(
        "{:>5} ms  attempt {} -> {addr}: started",
        t0.elapsed().as_millis(),
        i + 1
    );
    match TcpStream::connect(addr).await {
        Ok(stream) => {
            println!(
                "{:>5} ms  attempt {}: connected, cancelling the others",
                t0.elapsed().as_millis(),
                i + 1
            );
            *winner.borrow_mut() = Some((i, stream));
            tg.cancel();
            Ok(())
        }
        Err(e) if e.as_cancelled().is_some() => {
            println!(
                "{:>5} ms  attempt {}: cancelled",
                t0.elapsed().as_millis(),
                i + 1
            );
            Err(e.into())
        }
        Err(e) => {
            println!(
                "{:>5} ms  attempt {}: failed: {e}",
                t0.elapsed().as_millis(),
                i + 1
            );
            errors.borrow_mut().push(format!("{addr}: {e}"));
            failed.cancel(); // start the next attempt now
            Ok(())
        }
    }
}

/// A listener whose accept queue is full, so it never answers new connects; returns
/// it with the connections that fill it (kept open).
async fn unanswering_listener() -> io::Result<(TcpListener, Vec<TcpStream>)> {
    let l = TcpListener::bind_with_backlog("127.0.0.1:0", 0).await?;
    let addr = l.local_addr()?;
    let mut fillers = Vec::new();
    while let Some(c) = move_on_after(Duration::from_millis(200), TcpStream::connect(addr)).await? {
        fillers.push(c);
        if fillers.len() > 16 {
            return Err(io::Error::other("the accept queue never filled up"));
        }
    }
    Ok((l, fillers))
}

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    let (silent, _fillers) = unanswering_listener().await?;
    let refused = TcpListener::bind("127.0.0.1:0").await?.local_addr()?; // closed again
    let good = TcpListener::bind("127.0.0.1:0").await?;
    let addrs = [silent.local_addr()?, refused, good.local_addr()?];
    println!("addresses: {addrs:?}");

    task_group(|tg| async move {
        let server = tg.clone();
        tg.spawn(async move {
            let (s, _) = good.accept().await?;
            s.write(b"hello from the address that answered").await?;
            Ok(())
        });
        let t0 = Instant::now();
        let (i, mut stream) = happy_eyeballs(&addrs, ATTEMPT_DELAY, t0).await?;
        let mut greeting = Vec::new();
        read_to_end(&mut stream, &mut greeting).await?;
        println!(
            "{:>5} ms  winner: attempt {} ({}), got {:?}",
            t0.elapsed().as_millis(),
            i + 1,
            addrs[i],
            String::from_utf8_lossy(&greeting)
        );
        assert_eq!(i, 2, "the answering address wins");
        server.cancel();
        Ok::<_, BoxError>(())
    })
    .await?;
    Ok(())
}

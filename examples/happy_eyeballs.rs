//! Happy Eyeballs (RFC 8305) with the library's `TcpConnect`: connect to the first of
//! several addresses that answers, starting the attempts one after the other with a
//! delay; the first connection wins and every other attempt is closed. The greeting
//! server is a `serve_tcp`.
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
//! wait for the delay), connects, and attempt 1 is dropped.
//!
//! With a host name, `open_tcp_stream(host, port)` does the same over the addresses
//! the resolver returns (IPv6 first, the families alternating).

use std::io;
use std::time::{Duration, Instant};

use scope_runtime::io::{DEFAULT_ATTEMPT_DELAY, TcpConnect, TcpListener, TcpStream, read_to_end};
use scope_runtime::{BoxError, move_on_after, serve_tcp, task_group};

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
            serve_tcp(good, |s: TcpStream, _peer| async move {
                s.write(b"hello from the address that answered").await?;
                Ok::<_, io::Error>(())
            })
            .await?;
            Ok(())
        });

        let t0 = Instant::now();
        let ms = move || t0.elapsed().as_millis();
        // The plain `.connect()` does this; `connect_with` lets us print each attempt.
        let mut stream = TcpConnect::addrs(addrs)
            .delay(DEFAULT_ATTEMPT_DELAY)
            .connect_with(|addr| async move {
                let i = addrs.iter().position(|a| *a == addr).unwrap() + 1;
                println!("{:>5} ms  attempt {i} -> {addr}: started", ms());
                let r = TcpStream::connect(addr).await;
                match &r {
                    Ok(_) => println!("{:>5} ms  attempt {i}: connected", ms()),
                    Err(e) => println!("{:>5} ms  attempt {i}: failed: {e}", ms()),
                }
                r
            })
            .await?;
        let mut greeting = Vec::new();
        read_to_end(&mut stream, &mut greeting).await?;
        println!(
            "{:>5} ms  winner: {}, got {:?} (the other attempts were closed)",
            ms(),
            stream.peer_addr()?,
            String::from_utf8_lossy(&greeting)
        );
        assert_eq!(stream.peer_addr()?, addrs[2], "the answering address wins");
        server.cancel();
        Ok::<_, BoxError>(())
    })
    .await?;
    Ok(())
}

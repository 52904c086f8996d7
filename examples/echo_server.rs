//! An echo server: one task per connection inside a task group; Ctrl-C cancels the
//! group, and every connection drains cleanly (it says goodbye, shielded from the
//! cancellation for at most a second) before the program exits.
//!
//! ```text
//! cargo run --example echo_server            # prints the port; try `nc 127.0.0.1 PORT`
//! cargo run --example echo_server -- 7000    # a fixed port
//! cargo run --example echo_server -- --demo  # self-contained: 3 clients, then SIGINT
//! ```
//!
//! With `--demo`, a plain thread connects three blocking clients, checks the echo,
//! sends SIGINT to this process, and prints the goodbye each client receives.

use std::cell::Cell;
use std::io::{BufRead, Cursor, Write};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::{TcpListener, TcpStream, signal, write_all};
use scope_runtime::{BoxError, CancelError, CancelScope, TaskGroup, task_group};

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let demo = args.iter().any(|a| a == "--demo");
    let port = args.iter().find_map(|a| a.parse::<u16>().ok()).unwrap_or(0);

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!(
        "echo server listening on {addr} (port {}); Ctrl-C to stop",
        addr.port()
    );

    // Installed now, before any client can make us wait: a Ctrl-C is never missed.
    let ctrl_c = signal::ctrl_c();
    let drained = Rc::new(Cell::new(0usize));
    let demo_thread = demo.then(|| std::thread::spawn(move || demo_clients(addr)));

    let d = drained.clone();
    task_group(|tg| async move {
        let stop = tg.clone();
        tg.spawn(async move {
            ctrl_c.await?;
            println!("Ctrl-C: cancelling the server's task group");
            stop.cancel();
            Ok(())
        });
        accept_loop(listener, tg, d).await
    })
    .await?;

    println!(
        "server stopped; {} connection(s) drained cleanly",
        drained.get()
    );
    if let Some(t) = demo_thread {
        t.join().expect("demo client thread panicked")?;
    }
    Ok(())
}

/// Accepts connections until cancelled, each served by a task of the group.
async fn accept_loop(
    listener: TcpListener,
    tg: TaskGroup,
    drained: Rc<Cell<usize>>,
) -> Result<(), BoxError> {
    loop {
        let (stream, peer) = listener.accept().await?;
        println!("{peer}: connected");
        tg.spawn(serve(stream, peer, drained.clone()));
    }
}

/// Echoes until the peer closes. I/O errors of one connection (a reset peer, ...)
/// end that connection only; a cancellation ends it with a goodbye.
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    drained: Rc<Cell<usize>>,
) -> Result<(), BoxError> {
    let mut buf = [0u8; 4096];
    let res: std::io::Result<()> = async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            write_all(&mut &stream, &mut Cursor::new(&buf[..n])).await?;
        }
    }
    .await;
    match res {
        Ok(()) => {
            println!("{peer}: closed by the peer");
            Ok(())
        }
        Err(e) if e.as_cancelled().is_some() => {
            // Drain: a shielded scope lets this last write run although the group is
            // cancelled; its own deadline bounds it.
            let bye = CancelScope::new()
                .with_shield(true)
                .with_timeout(Duration::from_secs(1))
                .run(write_all(
                    &mut &stream,
                    &mut Cursor::new(b"server shutting down, bye\n"),
                ))
                .await;
            if matches!(bye, Ok(Some(()))) {
                drained.set(drained.get() + 1);
            }
            println!("{peer}: drained");
            Err(e.into()) // the group absorbs its own cancellation
        }
        Err(e) => {
            println!("{peer}: connection error: {e}");
            Ok(())
        }
    }
}

/// The `--demo` clients: plain blocking sockets on another thread.
fn demo_clients(addr: SocketAddr) -> Result<(), BoxError> {
    let mut clients = Vec::new();
    for i in 0..3 {
        let mut c = std::net::TcpStream::connect(addr)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        let msg = format!("hello from client {i}\n");
        c.write_all(msg.as_bytes())?;
        let mut r = std::io::BufReader::new(c.try_clone()?);
        let mut line = String::new();
        r.read_line(&mut line)?;
        assert_eq!(line, msg, "echoed");
        clients.push(r);
    }
    println!("demo: 3 clients echoed; sending SIGINT to ourselves");
    std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()?;
    for (i, r) in clients.iter_mut().enumerate() {
        let mut line = String::new();
        r.read_line(&mut line)?;
        println!("demo: client {i} got {:?}", line.trim_end());
    }
    Ok(())
}

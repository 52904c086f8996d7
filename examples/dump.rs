//! Finding a hang with the task dump: a small server whose request handler gets stuck.
//!
//! The server answers each connection with a line from a shared cache. A "refresher"
//! task takes the cache's lock and then waits for an upstream that never answers —
//! the bug. Every handler now waits for that lock, and the client waits for its answer.
//! After half a second the program prints the runtime's dump, which shows exactly that:
//!
//! ```text
//! cargo run --example dump             # prints the dump by itself, then exits
//! cargo run --example dump -- --wait   # keeps hanging: `kill -QUIT <pid>` prints it
//! ```
//!
//! In your own program, `SCOPE_RUNTIME_DUMP=sigquit` does the same for
//! `#[scope_runtime::main]`, or call `scope_runtime::io::dump_on_sigquit()`.

use std::io::Cursor;
use std::rc::Rc;
use std::time::Duration;

use scope_runtime::io::{TcpListener, TcpStream, dump_on_sigquit, write_all};
use scope_runtime::sync::Mutex;
use scope_runtime::{BoxError, cancellable, sleep, task_group};

#[scope_runtime::main]
async fn main() -> Result<(), BoxError> {
    let wait = std::env::args().any(|a| a == "--wait");
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let _printer = dump_on_sigquit()?;
    println!(
        "listening on {addr}; `kill -QUIT {}` prints the task dump",
        std::process::id()
    );
    let cache = Rc::new(Mutex::new(String::from("hello\n")));

    task_group(|tg| async move {
        // The bug: the lock is held across a wait that never ends.
        let c = cache.clone();
        tg.spawn_named("refresher", async move {
            let mut line = c.lock().await?;
            let fresh = cancellable(std::future::pending::<String>()).await?;
            *line = fresh;
            Ok(())
        });

        let server = tg.clone();
        tg.spawn_named("acceptor", async move {
            loop {
                let (stream, peer) = listener.accept().await?;
                let c = cache.clone();
                server.spawn_named(format!("connection {peer}"), async move {
                    let line = c.lock().await?.clone();
                    let mut out = Cursor::new(line.into_bytes());
                    write_all(&mut &stream, &mut out).await?;
                    Ok(())
                });
            }
        });

        tg.spawn_named("client", async move {
            let stream = TcpStream::connect(addr).await?;
            let mut buf = [0u8; 64];
            let n = stream.read(&mut buf).await?;
            println!("client got {:?}", String::from_utf8_lossy(&buf[..n]));
            Ok(())
        });

        if wait {
            std::future::pending::<()>().await;
        }
        sleep(Duration::from_millis(500)).await?;
        println!("{}", scope_runtime::dump());
        tg.cancel();
        Ok(())
    })
    .await?;
    Ok(())
}

//! A group body that never returns (an accept loop).
use scope_runtime::io::TcpListener;
use scope_runtime::task_group;

#[scope_runtime::main]
async fn main() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _ = task_group(|tg| async move {
        loop {
            let (stream, _) = listener.accept().await?;
            tg.spawn(async move {
                drop(stream);
                Ok(())
            });
        }
    })
    .await;
}

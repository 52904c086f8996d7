//! A child whose error type is `io::Error` (a typical connection handler).
use scope_runtime::task_group;

async fn handler() -> std::io::Result<()> {
    scope_runtime::checkpoint().await?;
    Ok(())
}

#[scope_runtime::main]
async fn main() {
    let _ = task_group(|tg| async move {
        tg.spawn(handler());
        Ok(())
    })
    .await;
}

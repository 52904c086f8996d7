//! A task group handle moved to another thread to cancel the group from there.
use scope_runtime::task_group;

#[scope_runtime::main]
async fn main() {
    let _ = task_group(|tg| async move {
        std::thread::spawn(move || tg.cancel());
        Ok(())
    })
    .await;
}

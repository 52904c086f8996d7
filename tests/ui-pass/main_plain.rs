use std::time::Duration;

#[scope_runtime::main]
async fn main() {
    let start = scope_runtime::now();
    let slept = scope_runtime::sleep(Duration::from_millis(1)).await;
    assert!(slept.is_ok());
    assert!(scope_runtime::now() - start >= Duration::from_millis(1));
}

//! A top-level task whose error type nothing names.
#[scope_runtime::main]
async fn main() {
    let h = scope_runtime::spawn(async { Ok(()) });
    let _ = h.await;
}

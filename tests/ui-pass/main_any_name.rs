//! `#[scope_runtime::main]` can be applied to a function not called `main`:
//! the result is an ordinary synchronous function.

#[scope_runtime::main]
pub async fn compute() -> u32 {
    async { 6 * 7 }.await
}

#[scope_runtime::main]
async fn nothing() {}

fn main() {
    assert_eq!(compute(), 42);
    nothing();
}

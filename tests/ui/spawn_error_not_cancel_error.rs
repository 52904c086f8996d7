//! A top-level task whose error type cannot carry a cancellation: its handle could
//! not tell a cancelled task from a failed one.

#[derive(Debug)]
struct ParseError;

#[scope_runtime::main]
async fn main() {
    let _ = scope_runtime::spawn(async { Err::<(), _>(ParseError) });
}

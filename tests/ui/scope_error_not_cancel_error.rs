//! A scope body whose error type cannot carry a cancellation: the scope could not
//! tell a cancelled body from a failed one.
use scope_runtime::{CancelScope, Cancelled, checkpoint};

#[derive(Debug)]
enum AppError {
    Cancelled(Cancelled),
    Parse,
}

impl From<Cancelled> for AppError {
    fn from(c: Cancelled) -> Self {
        AppError::Cancelled(c)
    }
}

#[scope_runtime::main]
async fn main() {
    let body = async {
        checkpoint().await?;
        Err::<(), _>(AppError::Parse)
    };
    let _ = CancelScope::new().run(body);
}

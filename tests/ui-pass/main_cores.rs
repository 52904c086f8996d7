//! `#[scope_runtime::main(cores = N)]`: the function runs on every core with its
//! `CoreContext`; the generated function takes no arguments and returns
//! `Result<(), CoresError>`. `N` is any `usize` expression; the body may return
//! `()` or a `Result` of any error type that converts into `BoxError`.

use std::sync::atomic::{AtomicUsize, Ordering};

use scope_runtime::{BoxError, CoreContext, CoresError};

static RAN: AtomicUsize = AtomicUsize::new(0);

fn two() -> usize {
    2
}

#[scope_runtime::main(cores = two())]
async fn every_core(core: CoreContext) -> Result<(), BoxError> {
    assert_eq!(core.count(), 2);
    scope_runtime::sleep(std::time::Duration::from_millis(1)).await?;
    RAN.fetch_or(1 << core.index(), Ordering::SeqCst);
    Ok(())
}

#[scope_runtime::main(cores = 1)]
async fn io_error(_core: CoreContext) -> Result<(), std::io::Error> {
    Err(std::io::Error::other("core failed"))
}

#[scope_runtime::main(cores = 1)]
async fn unit(core: CoreContext) {
    assert_eq!(core.index(), 0);
}

fn main() -> Result<(), CoresError> {
    every_core()?;
    assert_eq!(RAN.load(Ordering::SeqCst), 0b11, "both cores ran");
    let err = io_error().unwrap_err();
    assert!(err.to_string().contains("core failed"), "{err}");
    unit()
}

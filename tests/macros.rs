//! Tests of the `#[scope_runtime::main]` and `#[scope_runtime::test]`
//! attributes, as seen from a user crate.

use std::error::Error;
use std::fmt;
use std::time::{Duration, Instant};

#[scope_runtime::test]
async fn runs_the_body() {
    let mut steps = Vec::new();
    steps.push(1);
    async { steps.push(2) }.await;
    steps.push(3);
    assert_eq!(steps, [1, 2, 3]);
}

#[scope_runtime::test]
async fn real_clock_sleeps_for_real() {
    let wall = Instant::now();
    let start = scope_runtime::now();
    let slept = scope_runtime::sleep(Duration::from_millis(20)).await;
    assert!(slept.is_ok());
    assert!(scope_runtime::now() - start >= Duration::from_millis(20));
    assert!(wall.elapsed() >= Duration::from_millis(20));
}

#[scope_runtime::test(paused)]
async fn paused_clock_skips_an_hour_instantly() {
    let wall = Instant::now();
    let start = scope_runtime::now();
    let slept = scope_runtime::sleep(Duration::from_secs(3600)).await;
    assert!(slept.is_ok());
    assert_eq!(scope_runtime::now() - start, Duration::from_secs(3600));
    // "Instantly": far less than the hour, with a generous margin for slow CI.
    assert!(wall.elapsed() < Duration::from_secs(10));
}

#[scope_runtime::test(paused)]
async fn paused_clock_accumulates_sleeps() {
    let start = scope_runtime::now();
    for _ in 0..3 {
        let slept = scope_runtime::sleep(Duration::from_secs(60)).await;
        assert!(slept.is_ok());
    }
    assert_eq!(scope_runtime::now() - start, Duration::from_secs(180));
}

#[derive(Debug)]
struct MyError;

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl Error for MyError {}

async fn parse(input: &str) -> Result<u32, std::num::ParseIntError> {
    input.parse()
}

#[scope_runtime::test]
async fn returns_result_with_question_mark() -> Result<(), Box<dyn Error>> {
    let n: u32 = "42".parse()?;
    let m = parse("58").await?;
    scope_runtime::sleep(Duration::from_millis(1)).await?;
    if n + m != 100 {
        // Coerces `Box<MyError>` to `Box<dyn Error>` as in a plain `async fn`.
        return Err(Box::new(MyError));
    }
    Ok(())
}

#[scope_runtime::test(paused)]
async fn paused_returns_result() -> Result<(), Box<dyn Error>> {
    let start = scope_runtime::now();
    scope_runtime::sleep(Duration::from_secs(1)).await?;
    assert_eq!(scope_runtime::now() - start, Duration::from_secs(1));
    Ok(())
}

#[scope_runtime::test]
#[should_panic(expected = "boom")]
async fn should_panic_is_kept() {
    async {}.await;
    panic!("boom");
}

#[scope_runtime::test]
#[ignore = "checks that #[ignore] is kept: this test must never run"]
async fn ignore_is_kept() {
    panic!("an #[ignore]d test ran");
}

/// Attributes after the macro stay on the generated function: this `#[cfg]`
/// removes the test, so its body is never compiled.
#[scope_runtime::test]
#[cfg(any())]
async fn cfg_is_kept() {
    compile_error!("the #[cfg] attribute was dropped by #[scope_runtime::test]");
}

/// Lint attributes apply to the body, as they would without the macro.
#[scope_runtime::test]
#[deny(unused_variables)]
#[allow(unused_variables)]
async fn lint_attributes_apply_to_the_body() {
    let unused = 1;
}

#[scope_runtime::test]
async fn early_return_leaves_the_body() {
    if scope_runtime::now() <= scope_runtime::now() {
        return;
    }
    unreachable!("`return` must leave the test body");
}

#[scope_runtime::test]
async fn name_refers_to_the_async_fn_inside_the_body() -> Result<(), Box<dyn Error>> {
    // Inside the body the test's own name still denotes the `async fn` (its
    // call returns a future), as it would without the attribute.
    fn is_future<F: std::future::Future>(_: &F) {}
    let future = name_refers_to_the_async_fn_inside_the_body();
    is_future(&future);
    drop(future);
    Ok(())
}

/// `#[scope_runtime::main]` on a function that is not `main`: an ordinary
/// synchronous function that runs its body on a new runtime.
#[scope_runtime::main]
async fn compute(/* no arguments */) -> Result<u32, Box<dyn Error>> {
    let start = scope_runtime::now();
    let slept = scope_runtime::sleep(Duration::from_millis(1)).await;
    assert!(slept.is_ok());
    assert!(scope_runtime::now() > start);
    Ok("42".parse()?)
}

#[test]
fn main_attribute_makes_a_sync_function() {
    assert_eq!(compute().unwrap(), 42);
}

#[test]
fn main_attribute_builds_a_runtime_per_call() {
    assert_eq!(compute().unwrap(), 42);
    assert_eq!(compute().unwrap(), 42);
}

//! Compile-time tests of the `#[scope_runtime::main]` and
//! `#[scope_runtime::test]` attributes: misuse must be rejected with a clear
//! error pointing at the offending tokens (`tests/ui`), and valid uses must
//! compile and run (`tests/ui-pass`).
//!
//! The same for the traps of spawning and error types: a child or a body with
//! another error type than `BoxError`, `spawn(async { Ok(()) })`, a group body
//! that never returns, a `TaskGroup` moved to a thread, an error type that cannot
//! carry a cancellation. Each `.stderr` pins a message that names the fix, and
//! `tests/ui-pass/spawn_forms.rs` proves the fixed forms compile and work.
//!
//! The expected compiler output lives in `tests/ui/*.stderr`; regenerate it
//! with `TRYBUILD=overwrite cargo test --test trybuild` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}

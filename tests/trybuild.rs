//! Compile-time tests of the `#[scope_runtime::main]` and
//! `#[scope_runtime::test]` attributes: misuse must be rejected with a clear
//! error pointing at the offending tokens (`tests/ui`), and valid uses must
//! compile and run (`tests/ui-pass`).
//!
//! The expected compiler output lives in `tests/ui/*.stderr`; regenerate it
//! with `TRYBUILD=overwrite cargo test --test trybuild` and review the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui-pass/*.rs");
}

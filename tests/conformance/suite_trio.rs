//! New conformance cases taken from the anchors' own test suites (issue 10); see the
//! module doc of each test for the test it comes from.

#[allow(unused_imports)]
use crate::{Log, MyError, assert_groups, ms, panic_message, secs};

#[scope_runtime::test(flavor = "x")]
async fn unknown_name_value() {}

#[scope_runtime::test(start_paused)]
async fn unknown_flag() {}

#[scope_runtime::test(paused = true)]
async fn paused_with_value() {}

#[scope_runtime::test(paused, paused)]
async fn paused_twice() {}

#[scope_runtime::test("paused")]
async fn literal() {}

fn main() {}

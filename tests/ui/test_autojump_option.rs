#[scope_runtime::test(autojump = "10ms")]
async fn autojump_without_paused() {}

#[scope_runtime::test(paused, autojump = "10 minutes")]
async fn bad_unit() {}

#[scope_runtime::test(paused, autojump = 10)]
async fn not_a_string() {}

#[scope_runtime::test(paused, autojump = "1ms", autojump = "2ms")]
async fn twice() {}

fn main() {}

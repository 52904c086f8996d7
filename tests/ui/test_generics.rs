#[scope_runtime::test]
async fn generic<T>() {}

#[scope_runtime::test(paused)]
async fn const_generic<const N: usize>() {}

fn main() {}

#[scope_runtime::test]
async fn with_args(input: &str) {
    let _ = input;
}

#[scope_runtime::test(paused)]
async fn with_self(self) {}

fn main() {}

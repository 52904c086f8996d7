#[scope_runtime::main]
fn main() {}

#[scope_runtime::main(paused)]
async fn main() {}

mod other {
    #[scope_runtime::main(flavor = "current_thread")]
    pub async fn run() {}
}

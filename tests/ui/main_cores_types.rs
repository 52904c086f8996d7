use scope_runtime::CoreContext;

// `N` must be a `usize`.
#[scope_runtime::main(cores = "2")]
async fn main(core: CoreContext) {
    let _ = core;
}

mod other {
    use scope_runtime::CoreContext;

    // The argument is the core's context.
    #[scope_runtime::main(cores = 2)]
    pub async fn wrong_arg(n: u32) {
        let _ = n;
    }

    // The body returns `()` or `Result<(), E>`.
    #[scope_runtime::main(cores = 2)]
    pub async fn returns_number(core: CoreContext) -> u32 {
        let _ = core;
        7
    }
}

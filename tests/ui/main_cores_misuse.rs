use scope_runtime::CoreContext;

// `cores = N` without the core's context.
#[scope_runtime::main(cores = 2)]
async fn main() {}

mod other {
    use scope_runtime::CoreContext;

    // The context but no `cores`.
    #[scope_runtime::main]
    pub async fn no_cores(core: CoreContext) {
        let _ = core;
    }

    // Two arguments.
    #[scope_runtime::main(cores = 2)]
    pub async fn two_args(core: CoreContext, n: u32) {
        let _ = (core, n);
    }

    // No value, and a duplicate.
    #[scope_runtime::main(cores)]
    pub async fn no_value(core: CoreContext) {
        let _ = core;
    }

    #[scope_runtime::main(cores = 1, cores = 2)]
    pub async fn twice(core: CoreContext) {
        let _ = core;
    }
}

fn _unused(_: CoreContext) {}

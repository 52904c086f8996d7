#[scope_runtime::main]
async unsafe fn main() {}

#[scope_runtime::main]
async extern "C" fn run() {}

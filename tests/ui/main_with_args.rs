#[scope_runtime::main]
async fn main(verbose: bool, level: u8) {
    let _ = (verbose, level);
}

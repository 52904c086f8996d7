use std::error::Error;
use std::fmt;

#[derive(Debug)]
struct MyError;

impl fmt::Display for MyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("my error")
    }
}

impl Error for MyError {}

/// Doc comments and attributes are kept on the generated `main`.
#[scope_runtime::main]
#[allow(clippy::needless_return)]
async fn main() -> Result<(), Box<dyn Error>> {
    let answer: u32 = "42".parse()?;
    if answer != 42 {
        // Coerced to `Box<dyn Error>`, exactly as in a plain `async fn`.
        return Err(Box::new(MyError));
    }
    return Ok(());
}

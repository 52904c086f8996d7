//! Helpers that combine the two user-facing folders: a server loop needs a task group
//! (`scope/`) and sockets (`io/`), which may not use each other. This folder may use
//! `runtime/`, `scope/` and `io/`; none of them may use it (`tests/architecture.rs`).

mod serve;

pub use serve::{ServeError, ServeTcp, serve_tcp};

//! The folder rules of `docs/ARCHITECTURE.md`, checked on the source tree:
//!
//! | folder | may use |
//! |---|---|
//! | `runtime/` | nothing else of the crate (it owns the scheduler and all cancellation state) |
//! | `scope/` | `runtime/`, `io/` (the user-facing layer: `serve_tcp` needs a task group and sockets) |
//! | `io/` | `runtime/` |
//!
//! So there is no import circle between them. A path counts as a use of a folder
//! when code (not a comment) names `crate::<folder>`, `scope_runtime::<folder>`, a
//! crate-root item that `lib.rs` re-exports from that folder (`crate::CancelScope`), or
//! reaches it through `super::` from the folder's top.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const FOLDERS: [&str; 3] = ["runtime", "scope", "io"];

fn allowed(from: &str) -> &'static [&'static str] {
    match from {
        "runtime" => &[],
        "scope" => &["runtime", "io"],
        "io" => &["runtime"],
        _ => unreachable!(),
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without comments (line comments, doc comments and `/* */`),
/// and without string literals (their text is not a path).
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            while i < b.len() && !b[i..].starts_with(b"*/") {
                i += 1;
            }
            i += 2;
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i] == b'\'' && i + 2 < b.len() && (b[i + 1] == b'\\' || b[i + 2] == b'\'') {
            // A char literal ('"', '\n'); lifetimes ('a) are left alone.
            i += 1;
            while i < b.len() && b[i] != b'\'' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

/// Root-level names `lib.rs` re-exports, by the folder they come from.
fn root_exports() -> BTreeMap<String, &'static str> {
    let lib = code_only(&fs::read_to_string(root().join("lib.rs")).unwrap());
    let mut map = BTreeMap::new();
    for stmt in lib.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some(folder) = FOLDERS.iter().find(|f| rest.starts_with(&format!("{f}::"))) else {
            continue;
        };
        let names = match (rest.find('{'), rest.rfind('}')) {
            (Some(a), Some(z)) => &rest[a + 1..z],
            _ => rest.rsplit("::").next().unwrap(),
        };
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let name = name.rsplit(" as ").next().unwrap().trim();
            map.insert(name.to_string(), *folder);
        }
    }
    map
}

/// The folders named by the paths in `code`, a file at module depth `depth` below its
/// folder's top (`runtime/mod.rs`: 0, `runtime/core.rs`: 1, `runtime/cancel/tree.rs`: 2).
fn uses(code: &str, depth: usize, exports: &BTreeMap<String, &'static str>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut record = |first: &str| {
        if FOLDERS.contains(&first) {
            found.insert(first.to_string());
        } else if let Some(f) = exports.get(first) {
            found.insert(f.to_string());
        }
    };
    for prefix in ["crate::", "scope_runtime::"] {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            record(&ident(&code[at + prefix.len()..]));
        }
    }
    // `super::` chains that climb above the folder reach the crate root.
    for (at, _) in code.match_indices("super::") {
        if code[..at].ends_with("super::") {
            continue; // counted from the first `super::` of the chain
        }
        let mut rest = &code[at..];
        let mut ups = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            ups += 1;
            rest = r;
        }
        if ups > depth {
            record(&ident(rest));
        }
    }
    found
}

fn module_depth(rel: &Path) -> usize {
    let parts: Vec<_> = rel.components().collect();
    let file = rel.file_name().unwrap().to_str().unwrap();
    // runtime/mod.rs -> 0; runtime/x.rs -> 1; runtime/sub/mod.rs -> 1; runtime/sub/x.rs -> 2
    let dirs = parts.len() - 2; // below the top folder
    if file == "mod.rs" { dirs } else { dirs + 1 }
}

#[test]
fn folders_import_only_what_the_architecture_allows() {
    let exports = root_exports();
    assert!(
        exports.get("CancelScope") == Some(&"scope") && exports.get("spawn") == Some(&"runtime"),
        "lib.rs re-exports were not understood: {exports:?}"
    );
    let mut violations = Vec::new();
    for folder in FOLDERS {
        let mut files = Vec::new();
        rust_files(&root().join(folder), &mut files);
        assert!(!files.is_empty(), "no sources under {folder}/");
        for file in files {
            let rel = file.strip_prefix(root()).unwrap();
            let code = code_only(&fs::read_to_string(&file).unwrap());
            for used in uses(&code, module_depth(rel), &exports) {
                if used != folder && !allowed(folder).contains(&used.as_str()) {
                    violations.push(format!("{} uses {used}/", rel.display()));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports the architecture forbids (see docs/ARCHITECTURE.md):\n{}",
        violations.join("\n")
    );
}

/// The checker itself must be able to fail: it sees the kinds of path it looks for.
#[test]
fn the_checker_recognises_forbidden_paths() {
    let exports = root_exports();
    let seen = |code: &str, depth| uses(&code_only(code), depth, &exports);
    assert!(seen("use crate::scope::CancelScope;", 1).contains("scope"));
    assert!(seen("let s = crate::CancelScope::new();", 1).contains("scope"));
    assert!(seen("use super::super::io::TcpStream;", 1).contains("io"));
    assert!(seen("fn f() { scope_runtime::task_group(f) }", 2).contains("scope"));
    assert!(seen("use super::cancel::Cancelled;", 1).is_empty());
    assert!(seen("let s = crate::serve_tcp(l, h);", 1).contains("scope"));
    assert!(seen("// crate::scope in a comment\n/// [`x`](crate::io)", 0).is_empty());
    assert!(seen(r#"panic!("crate::scope is not code")"#, 0).is_empty());
}

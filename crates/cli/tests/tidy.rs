//! Keeps the house tidy: every Rust file of the workspace opens with a `//!` saying what it
//! is, and library and binary code (outside test modules) never calls `.unwrap()` or
//! `.expect(...)`: input, disk and network failures are errors, not panics.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn workspace_crates() -> Vec<PathBuf> {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&crates)
        .expect("the crates directory")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 10, "found only {dirs:?}");
    dirs
}

#[test]
fn every_rust_file_opens_with_a_module_comment() {
    let mut bare = Vec::new();
    for krate in workspace_crates() {
        for part in ["src", "tests", "benches"] {
            for file in rust_files(&krate.join(part)) {
                let text = std::fs::read_to_string(&file).expect("a readable source file");
                if !text.trim_start().starts_with("//!") {
                    bare.push(file);
                }
            }
        }
    }
    assert!(bare.is_empty(), "files without a `//!` comment: {bare:#?}");
}

#[test]
fn no_unwrap_or_expect_outside_tests() {
    let mut found = Vec::new();
    for krate in workspace_crates() {
        for file in rust_files(&krate.join("src")) {
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            // Test modules close each file.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (number, line) in code.lines().enumerate() {
                let line = line.trim();
                if line.starts_with("//") {
                    continue;
                }
                if line.contains(".unwrap()") || line.contains(".expect(") {
                    found.push(format!("{}:{}: {line}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "unwrap/expect outside tests:\n{}",
        found.join("\n")
    );
}

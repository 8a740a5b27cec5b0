//! Records the git commit the binary is built from, for `bacalhau --version` and
//! `bacalhau version`. A build outside a git checkout may set `BACALHAU_GIT_COMMIT` itself;
//! otherwise the commit reads `unknown`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=BACALHAU_GIT_COMMIT");
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) {
        // A new commit moves HEAD or the branch it names; watch both (and packed refs).
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        println!(
            "cargo:rerun-if-changed={}",
            git_dir.join("packed-refs").display()
        );
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", git_dir.join(branch).display());
        }
    }
    let commit = std::env::var("BACALHAU_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=BACALHAU_GIT_COMMIT={commit}");
    let short: String = commit.chars().take(12).collect();
    println!(
        "cargo:rustc-env=BACALHAU_LONG_VERSION={} (commit {short})",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}

//! Upstream's published Python client (`bacalhau-apiclient==1.4.1`), unchanged, against our
//! server: submit, get, list, executions, history, stop, and a 400 for a bad spec.
//! The client lives in `.venv`, which `scripts/test.sh` creates.

mod common;

use common::Server;
use std::path::PathBuf;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_python_client_works_unchanged() {
    let root = repo_root();
    let pytest = root.join(".venv/bin/pytest");
    assert!(
        pytest.exists(),
        "{} is missing: run ./scripts/test.sh (it creates the venv with bacalhau-apiclient)",
        pytest.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;
    let output = tokio::process::Command::new(&pytest)
        .args(["-q", "-p", "no:cacheprovider", "tests/python"])
        .current_dir(&root)
        .env("BACALHAU_API_HOST", "127.0.0.1")
        .env("BACALHAU_API_PORT", server.port.to_string())
        .output()
        .await
        .expect("cannot run pytest");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "pytest failed:\n{text}");
    assert!(text.contains(" passed"), "pytest ran no test:\n{text}");
}

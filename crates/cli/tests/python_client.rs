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
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;
    run_pytest(&server, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_python_client_works_with_an_api_key_in_the_authorization_header() {
    const KEY: &str = "python-client-key-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("users.yaml");
    std::fs::write(
        &config,
        format!(
            "API:\n  Auth:\n    Users:\n      - Alias: py\n        APIKey: {KEY}\n        Capabilities: [{{Actions: ['*']}}]\n"
        ),
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("node"),
        common::free_port(),
        &["serve", "--orchestrator", "-c", config.to_str().unwrap()],
    )
    .await;
    let text = run_pytest(&server, &[("BACALHAU_API_KEY", KEY)]).await;
    assert!(
        !text.contains(" skipped"),
        "the 401 check did not run:\n{text}"
    );
}

/// Runs the Python suite against `server`; returns its output.
async fn run_pytest(server: &Server, env: &[(&str, &str)]) -> String {
    let root = repo_root();
    let pytest = root.join(".venv/bin/pytest");
    assert!(
        pytest.exists(),
        "{} is missing: run ./scripts/test.sh (it creates the venv with bacalhau-apiclient)",
        pytest.display()
    );
    let output = tokio::process::Command::new(&pytest)
        .args(["-q", "-p", "no:cacheprovider", "tests/python"])
        .current_dir(&root)
        .env("BACALHAU_API_HOST", "127.0.0.1")
        .env("BACALHAU_API_PORT", server.port.to_string())
        .env_remove("BACALHAU_API_KEY")
        .envs(env.iter().copied())
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
    text
}

//! Bad input from outside: schemathesis (from the test venv) generates requests from our
//! OpenAPI document, served by the server itself, and sends them to a real orchestrator with
//! API users; any 5xx, non-conforming answer, panic in the server's log, crash or runaway
//! memory fails the test. Bounded: a fixed seed, 25 examples per operation, under 2 minutes.

mod common;

use common::{Server, free_port};
use std::path::PathBuf;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_in_the_whole_api() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = root.join("tests/python/fuzz_api.sh");
    assert!(
        root.join(".venv/bin/schemathesis").exists(),
        "schemathesis is missing: run scripts/setup-test-env.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.yaml");
    std::fs::write(
        &users,
        "API:\n  Auth:\n    Users:\n      - Alias: fuzzer\n        APIKey: fuzz-key-0123456789abcdef\n        Capabilities: [{Actions: ['*']}]\n",
    )
    .unwrap();
    let server = Server::start_with(
        &dir.path().join("node"),
        free_port(),
        &["serve", "--orchestrator", "-c", users.to_str().unwrap()],
    )
    .await;
    let output = tokio::process::Command::new("bash")
        .arg(&script)
        .arg(format!("http://127.0.0.1:{}", server.port))
        .env("FUZZ_TOKEN", "fuzz-key-0123456789abcdef")
        .env("FUZZ_SERVER_PID", server.child.id().to_string())
        .env("FUZZ_SERVER_LOG", &server.log)
        .output()
        .await
        .expect("cannot run the fuzz script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "the fuzz run failed:\n{text}");
    assert!(
        !text.contains("fuzz_api: WARNING"),
        "operations were left out:\n{text}"
    );
    assert!(
        text.contains("generated"),
        "schemathesis ran no case:\n{text}"
    );
}

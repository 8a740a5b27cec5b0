//! The CLI against a real server: job run/describe/list/stop, node list, config, exit codes.

mod common;

use common::{Server, stderr, stdout};

const QUEUED_JOB: &str = "Name: queued\nType: batch\nTasks:\n - Name: main\n   Engine: {Type: docker, Params: {Image: busybox:1.37.0}}\n   Timeouts: {QueueTimeout: 3600}\n";

#[tokio::test]
async fn job_lifecycle_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;

    let run = server.cli_with_stdin(
        &["job", "run", "-", "--wait=false", "--id-only"],
        Some(QUEUED_JOB),
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let id = stdout(&run).trim().to_string();
    assert!(id.starts_with("j-"), "{id}");

    let describe = server.cli(&["job", "describe", &id[..10]]);
    assert!(describe.status.success(), "{}", stderr(&describe));
    let text = stdout(&describe);
    assert!(text.contains(&format!("ID            = {id}")), "{text}");
    assert!(text.contains("Job submitted"), "{text}");

    let list = server.cli(&["job", "list", "--output", "json"]);
    let jobs: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    assert!(jobs.iter().any(|j| j["ID"] == id.as_str()));

    let table = stdout(&server.cli(&["job", "list"]));
    assert!(table.starts_with("CREATED"), "{table}");
    assert!(table.contains(&id[..10]), "{table}");
    let queued = stdout(&server.cli(&["job", "list", "--state", "queued,pending"]));
    assert!(queued.contains(&id[..10]), "{queued}");
    let failed = stdout(&server.cli(&["job", "list", "--state", "Failed"]));
    assert!(!failed.contains(&id[..10]), "{failed}");
    let unknown = server.cli(&["job", "list", "--state", "sleeping"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("unknown job state"),
        "{}",
        stderr(&unknown)
    );

    let stop = server.cli(&["job", "stop", &id, "--reason", "done here"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    let history = stdout(&server.cli(&["job", "history", &id]));
    assert!(
        history.contains("Job requested to stop before completion"),
        "{history}"
    );
}

#[tokio::test]
async fn a_job_that_cannot_be_placed_exits_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;
    let spec = QUEUED_JOB.replace("QueueTimeout: 3600", "QueueTimeout: 0");
    let run = server.cli_with_stdin(&["job", "run", "-"], Some(&spec));
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("not enough nodes to run job"),
        "{}",
        stderr(&run)
    );
}

#[tokio::test]
async fn bad_specs_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;
    let bad = QUEUED_JOB.replace("Type: docker", "Type: flibble");
    let run = server.cli_with_stdin(&["job", "run", "-"], Some(&bad));
    assert_eq!(run.status.code(), Some(1));
    assert!(
        stderr(&run).contains("Tasks[0].Engine.Type: unknown engine \"flibble\""),
        "{}",
        stderr(&run)
    );
    let garbage = server.cli_with_stdin(&["job", "run", "-"], Some("Tasks: ["));
    assert_eq!(garbage.status.code(), Some(1));
    assert!(
        stderr(&garbage).contains("invalid job spec"),
        "{}",
        stderr(&garbage)
    );
    let missing = server.cli(&["job", "describe", "j-does-not-exist"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        stderr(&missing).contains("not found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test]
async fn dry_run_needs_no_server_and_prints_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("job.yaml");
    std::fs::write(&spec, QUEUED_JOB).unwrap();
    let output = std::process::Command::new(common::binary())
        .args(["job", "run", "--dry-run"])
        .arg(&spec)
        .env("BACALHAU_API_PORT", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("Image: busybox:1.37.0"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn nodes_agent_and_config_commands() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("node")).await;
    let nodes = server.cli(&["node", "list"]);
    assert!(nodes.status.success(), "{}", stderr(&nodes));
    assert!(stdout(&nodes).starts_with("ID"), "{}", stdout(&nodes));
    let approve = server.cli(&["node", "approve", "n-nope"]);
    assert_eq!(approve.status.code(), Some(1));
    assert!(
        stderr(&approve).contains("node not found"),
        "{}",
        stderr(&approve)
    );

    let alive = server.cli(&["agent", "alive"]);
    assert!(stdout(&alive).contains("Status: OK"), "{}", stdout(&alive));
    let node = server.cli(&["agent", "node", "--output", "json"]);
    let info: serde_json::Value = serde_json::from_slice(&node.stdout).unwrap();
    assert_eq!(info["NodeType"], "Requester");
    let version = server.cli(&["version"]);
    assert!(stdout(&version).contains("v0."), "{}", stdout(&version));

    let set = server.cli(&["config", "set", "api.port", "4321"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let show = server.cli(&["config", "show", "--output", "json"]);
    let config: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    // The environment names the test server's port, and environment beats the file.
    assert_eq!(config["API"]["Port"], server.port);
    let file_only = std::process::Command::new(common::binary())
        .args(["config", "show", "--output", "json"])
        .env("HOME", &server.data_dir)
        .env_remove("BACALHAU_API_PORT")
        .output()
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&file_only.stdout).unwrap();
    assert_eq!(config["API"]["Port"], 4321);
    let bad_key = server.cli(&["config", "set", "API.Prot", "1"]);
    assert_eq!(bad_key.status.code(), Some(1));
    assert!(
        stderr(&bad_key).contains("unknown config key API.Prot"),
        "{}",
        stderr(&bad_key)
    );
}

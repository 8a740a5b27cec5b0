//! The `docker` engine through the `Executor` trait, against the real Docker engine: output
//! and exit codes of a busybox container, read-only input mounts, cancel, and that no
//! container is left behind. Needs the busybox test image (`scripts/build-test-images.sh`,
//! run by `scripts/test.sh`), as `crates/cli/tests/docker.rs` does.

mod common;

use bacalhau_compute::{Executor, ExecutorError};
use bacalhau_executors::docker::DockerExecutor;
use bacalhau_models::{RunCommandResult, SpecConfig};
use common::Run;
use std::process::Command;
use std::time::Duration;

const IMAGE: &str = "busybox:1.37.0";

/// The engine, as a node named `node_id` would have it; fails loudly without Docker or the
/// test image.
async fn engine(node_id: &str) -> DockerExecutor {
    assert!(
        Command::new("docker")
            .args(["image", "inspect", IMAGE])
            .output()
            .is_ok_and(|o| o.status.success()),
        "{IMAGE} is missing: run scripts/build-test-images.sh"
    );
    DockerExecutor::connect(node_id)
        .await
        .expect("a Docker engine answers")
}

/// A run of `command` in busybox, without a network.
fn busybox(command: &[&str]) -> Run {
    let mut engine = SpecConfig::of_type("docker");
    engine.params.insert("Image".into(), IMAGE.into());
    engine
        .params
        .insert("Entrypoint".into(), command.to_vec().into());
    let mut run = Run::new(engine);
    run.task().network.r#type = bacalhau_models::task::NetworkType::None;
    run
}

async fn run(engine: &DockerExecutor, run: &Run) -> Result<RunCommandResult, ExecutorError> {
    let output = tokio::time::timeout(Duration::from_secs(120), engine.run(run.context()))
        .await
        .expect("the container ends within 120s");
    // Removed after the run answers: waited for, so no test leaves a container behind.
    assert_removed(run).await;
    output
}

/// The IDs of the containers, running or not, labelled with the run's execution ID.
fn containers_of(run: &Run) -> String {
    let label = format!("label=bacalhau.org/execution-id={}", run.execution.id);
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", &label])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Waits for the run's container to be gone: it is removed after the run answers. Fails
/// after 30 s.
async fn assert_removed(run: &Run) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !containers_of(run).is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the container was not removed within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdout_and_exit_code_0_and_the_container_is_removed() {
    let engine = engine("engine-test-hello").await;
    assert_eq!(engine.engine(), "docker");
    let hello = busybox(&["echo", "Hello World"]);
    let output = run(&engine, &hello).await.expect("the container runs");
    assert_eq!(output.exit_code, 0);
    assert_eq!(output.stdout, "Hello World\n");
    assert_eq!(output.stderr, "");
    assert_eq!(hello.log("stdout"), "Hello World\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_tag_is_resolved_to_the_id_the_engine_ran() {
    let engine = engine("engine-test-image-id").await;
    let hello = busybox(&["true"]);
    let context = hello.context();
    let resolved = std::sync::Arc::clone(&context.resolved_image);
    engine.run(context).await.expect("the container runs");
    assert_removed(&hello).await;
    let inspect = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", IMAGE])
        .output()
        .expect("docker image inspect");
    let id = String::from_utf8_lossy(&inspect.stdout).trim().to_string();
    assert_eq!(
        resolved.get().map(|i| i.to_string()),
        Some(format!("image:{id}")),
        "the content key sees the image's ID, not its tag"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_zero_exit_code_is_the_result_with_stderr() {
    let engine = engine("engine-test-exit").await;
    let failing = busybox(&["sh", "-c", "echo oops >&2; exit 3"]);
    let output = run(&engine, &failing).await.expect("the container runs");
    assert_eq!(output.exit_code, 3);
    assert_eq!(output.stderr, "oops\n");
    assert_eq!(failing.log("stderr"), "oops\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_read_only_inputs_reach_the_container() {
    let engine = engine("engine-test-inputs").await;
    let reader = busybox(&[
        "sh",
        "-c",
        "cat /inputs/greeting.txt; echo \"$GREETING\"; echo x > /inputs/greeting.txt || echo read-only",
    ])
    .env("GREETING", "hola")
    .input("/inputs/greeting.txt", b"from the input mount\n");
    let output = run(&engine, &reader).await.expect("the container runs");
    assert_eq!(output.exit_code, 0, "{}", output.stderr);
    assert_eq!(output.stdout, "from the input mount\nhola\nread-only\n");
    let host = bacalhau_compute::inputs::root(&reader.work_dir).join("inputs/greeting.txt");
    assert_eq!(
        std::fs::read_to_string(host).ok().as_deref(),
        Some("from the input mount\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_kills_the_container_and_removes_it() {
    let engine = engine("engine-test-cancel").await;
    let sleeper = busybox(&["sleep", "300"]);
    let pending = engine.run(sleeper.context());
    let cancel = sleeper.cancel.clone();
    let id = sleeper.execution.id.clone();
    tokio::spawn(async move {
        // Wait until the container runs, so the cancel meets a live one.
        let label = format!("label=bacalhau.org/execution-id={id}");
        for _ in 0..600 {
            let running = Command::new("docker")
                .args(["ps", "-q", "--filter", &label])
                .output()
                .is_ok_and(|o| !o.stdout.is_empty());
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel.send_replace(true);
    });
    let output = tokio::time::timeout(Duration::from_secs(120), pending)
        .await
        .expect("the cancel ends the run well before the sleep");
    assert!(
        matches!(output, Err(ExecutorError::Cancelled)),
        "{output:?}"
    );
    assert_removed(&sleeper).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_and_host_mounts_are_invalid_specs() {
    let engine = engine("engine-test-invalid").await;
    // A registry on a closed local port: the pull fails at once, with no traffic out.
    let mut absent = busybox(&["true"]);
    absent
        .task()
        .engine
        .params
        .insert("Image".into(), "127.0.0.1:1/absent:never".into());
    let mut binds = busybox(&["true"]);
    binds
        .task()
        .engine
        .params
        .insert("Binds".into(), vec!["/:/host"].into());
    for (case, reason) in [
        (absent, "image not available"),
        (binds, "Engine.Params.Binds is not allowed"),
    ] {
        match run(&engine, &case).await {
            Err(ExecutorError::InvalidSpec(message)) => {
                assert!(message.contains(reason), "{message}")
            }
            other => panic!("expected {reason:?}, got {other:?}"),
        }
        assert!(containers_of(&case).is_empty());
    }
}

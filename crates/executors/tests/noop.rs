//! The `noop` engine through the `Executor` trait: it succeeds, waits its `Duration`, stops
//! waiting on a cancel, and refuses a `Duration` it cannot read.

mod common;

use bacalhau_compute::{Executor, ExecutorError};
use bacalhau_executors::noop::NoopExecutor;
use bacalhau_models::{RunCommandResult, SpecConfig};
use common::Run;
use std::time::{Duration, Instant};

fn noop(duration: Option<&str>) -> Run {
    let mut engine = SpecConfig::of_type("noop");
    if let Some(duration) = duration {
        engine
            .params
            .insert("Duration".into(), serde_json::Value::from(duration));
    }
    Run::new(engine)
}

#[tokio::test]
async fn runs_nothing_and_succeeds() {
    let run = noop(None);
    assert_eq!(NoopExecutor.engine(), "noop");
    let output = NoopExecutor.run(run.context()).await;
    assert_eq!(output.ok(), Some(RunCommandResult::default()));
}

#[tokio::test]
async fn waits_its_duration_first() {
    let run = noop(Some("300ms"));
    let started = Instant::now();
    let output = NoopExecutor.run(run.context()).await;
    assert!(output.is_ok(), "{output:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn a_cancel_ends_the_wait() {
    let run = noop(Some("1h"));
    let pending = NoopExecutor.run(run.context());
    let cancel = run.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.send_replace(true);
    });
    let output = tokio::time::timeout(Duration::from_secs(10), pending)
        .await
        .expect("the cancel ends the run within 10s");
    assert!(
        matches!(output, Err(ExecutorError::Cancelled)),
        "{output:?}"
    );
}

#[tokio::test]
async fn a_cancel_before_the_start_runs_nothing() {
    let run = noop(None);
    run.cancel.send_replace(true);
    let output = NoopExecutor.run(run.context()).await;
    assert!(
        matches!(output, Err(ExecutorError::Cancelled)),
        "{output:?}"
    );
}

#[tokio::test]
async fn an_unreadable_duration_is_an_invalid_spec() {
    let run = noop(Some("soon"));
    match NoopExecutor.run(run.context()).await {
        Err(ExecutorError::InvalidSpec(reason)) => {
            assert!(reason.starts_with(r#"Duration "soon""#), "{reason}")
        }
        other => panic!("expected an invalid spec, got {other:?}"),
    }
}

//! A burst of placements at one node: thousands of jobs submitted at once, straight into the
//! orchestrator, beside an in-process compute node. The node acknowledges every message, so
//! while the orchestrator sends a long outbox the node's side of the link fills; an
//! orchestrator that sends without reading meanwhile stalled both ends for good (found by the
//! retention bench: the node went silent, was lost, and the jobs failed "not enough nodes").
//! Every job must complete.

#[path = "../benches/common/mod.rs"]
mod common;

use bacalhau_models::{JobStateType, parse_job_spec};
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: usize = 3_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_placements_at_one_node_completes() {
    let cluster = common::start(vec![("node-0".into(), bacalhau_executors::builtin())])
        .await
        .expect("cluster");
    let orchestrator = Arc::clone(&cluster.orchestrator);
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")
        .expect("spec");
    let mut submitters = Vec::new();
    for _ in 0..32 {
        let (orchestrator, job) = (Arc::clone(&orchestrator), job.clone());
        submitters.push(tokio::spawn(async move {
            for _ in 0..JOBS / 32 {
                orchestrator.submit(job.clone(), false, "test").await?;
            }
            Ok::<_, bacalhau_orchestrator::OrchestratorError>(())
        }));
    }
    for submitter in submitters {
        submitter.await.expect("submitter").expect("submit");
    }
    let want = (JOBS / 32 * 32) as u64;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let figures = orchestrator.figures().expect("figures");
        let completed = figures.jobs_in(JobStateType::Completed);
        let failed = figures.jobs_in(JobStateType::Failed);
        assert_eq!(failed, 0, "jobs failed ({completed} of {want} completed)");
        if completed == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {completed} of {want} jobs completed in 5 min"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

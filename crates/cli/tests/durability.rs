//! kill -9 of the orchestrator loses no acknowledged job: IDs, states and history survive, and
//! evaluations that were pending at the kill are finished after the restart.

mod common;

use bacalhau_client::ApiClient;
use bacalhau_models::{Job, JobStateType, parse_job_spec};
use common::Server;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

fn spec(name: &str, queue_timeout: i64) -> Job {
    parse_job_spec(&format!(
        "Name: {name}\nType: batch\nTasks:\n - Name: main\n   Engine: {{Type: noop}}\n   Timeouts: {{QueueTimeout: {queue_timeout}}}\n"
    ))
    .expect("spec")
}

/// Waits until the job leaves Pending (the scheduler has seen it).
async fn settled(client: &ApiClient, id: &str) -> Job {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let job = client.get_job(id, "").await.expect("get job").job;
        if job.state.state_type != JobStateType::Pending {
            return job;
        }
        assert!(Instant::now() < deadline, "job {id} never left Pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_keeps_every_acknowledged_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("node");
    let mut server = Server::start(&data).await;
    let client = server.client();

    // Phase 1: jobs that reached a steady state before the kill.
    let mut before = BTreeMap::new();
    for i in 0..40 {
        let queue_timeout = if i % 2 == 0 { 3600 } else { 0 };
        let put = client
            .put_job(&spec(&format!("steady-{i}"), queue_timeout), false)
            .await
            .expect("submit");
        let job = settled(&client, &put.job_id).await;
        let history = client
            .job_history(&put.job_id, "", "", "")
            .await
            .expect("history")
            .items;
        before.insert(put.job_id, (job.state.state_type, history));
    }

    // Phase 2: submissions in flight while the server is killed; keep what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let mut submitters = Vec::new();
    for worker in 0..4 {
        let client = client.clone();
        let stop = Arc::clone(&stop);
        submitters.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                match client
                    .put_job(&spec(&format!("inflight-{worker}-{i}"), 3600), false)
                    .await
                {
                    Ok(put) => acked.push(put.job_id),
                    Err(_) => break,
                }
                i += 1;
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    let mut acked = Vec::new();
    for submitter in submitters {
        acked.extend(submitter.await.expect("submitter"));
    }
    assert!(
        !acked.is_empty(),
        "no submission was acknowledged before the kill"
    );

    let server = Server::start_on(&data, server.port).await;
    let client = server.client();
    for (id, (state, history)) in &before {
        let job = client.get_job(id, "").await.expect("job lost").job;
        assert_eq!(&job.state.state_type, state, "job {id} changed state");
        let after = client
            .job_history(id, "", "", "")
            .await
            .expect("history")
            .items;
        assert_eq!(&after, history, "job {id} history changed");
    }
    for id in &acked {
        let job = settled(&client, id).await;
        assert_eq!(
            job.state.state_type,
            JobStateType::Queued,
            "acknowledged job {id} was not scheduled after the restart"
        );
    }
    eprintln!(
        "{} steady jobs and {} in-flight acknowledged jobs survived kill -9",
        before.len(),
        acked.len()
    );
}

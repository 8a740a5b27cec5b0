//! Submission benchmark: an in-process orchestrator behind the real HTTP server on loopback.
//! Prints submit latency (sequential, p50/p99), submits/s with concurrent clients, the time
//! until every job was scheduled, and the store's size per 10 000 jobs.
//!
//! `cargo bench -p bacalhau-api --bench submit [-- JOBS CONCURRENCY]`

mod common;

use bacalhau_models::{JobStateType, parse_job_spec};
use bacalhau_orchestrator::JobQuery;
use common::{BoxError, arg, percentile};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n_jobs = arg(1, 10_000);
    let concurrency = arg(2, 64);
    let cluster = common::start(Vec::new()).await?;
    let (client, orchestrator) = (cluster.client.clone(), cluster.orchestrator.clone());
    // No compute node: each job is stored, evaluated and failed by the scheduler, so the
    // whole orchestrator path runs (submit transaction, broker, plan, plan transaction).
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;

    let mut latencies = Vec::with_capacity(500);
    for _ in 0..500 {
        let started = Instant::now();
        client.put_job(&job, false).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let job = job.clone();
        let share = n_jobs / concurrency + usize::from(worker < n_jobs % concurrency);
        tasks.push(tokio::spawn(async move {
            for _ in 0..share {
                client.put_job(&job, false).await?;
            }
            Ok::<_, bacalhau_client::ClientError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let submit_elapsed = started.elapsed();
    // Wait until the scheduler has seen every job.
    while !orchestrator.broker().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let newest = orchestrator
        .list_jobs(&JobQuery {
            reverse: true,
            limit: 1,
            ..Default::default()
        })?
        .0;
    let settled_elapsed = started.elapsed();
    let store_bytes = orchestrator.store_size()?;
    let total_jobs = orchestrator.job_count()?;

    println!(
        "| submit latency p50 (sequential) | {:.2} ms | | |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "| submit latency p99 (sequential) | {:.2} ms | | |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| submits/s ({n_jobs} jobs, {concurrency} clients) | {:.0} | | |",
        n_jobs as f64 / submit_elapsed.as_secs_f64()
    );
    println!(
        "| submitted and scheduled (Failed: no nodes) /s | {:.0} | | |",
        n_jobs as f64 / settled_elapsed.as_secs_f64()
    );
    println!(
        "| store size per 10 000 jobs | {:.1} MiB | | |",
        store_bytes as f64 / total_jobs as f64 * 10_000.0 / (1024.0 * 1024.0)
    );
    if newest.first().map(|j| j.state.state_type) != Some(JobStateType::Failed) {
        eprintln!("warning: the newest job was not scheduled yet");
    }
    Ok(())
}

//! Cluster benchmark: an orchestrator and N in-process compute nodes (the real node protocol
//! over channels) behind the HTTP API on loopback. Prints noop submit → Completed latency
//! (p50/p99, one job at a time) and jobs/s driven to Completed with concurrent clients.
//!
//! `cargo bench -p bacalhau-api --bench cluster [-- NODES LATENCY_JOBS THROUGHPUT_JOBS]`

mod common;

use bacalhau_models::parse_job_spec;
use common::{BoxError, arg, percentile};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n_nodes = arg(1, 3);
    let latency_jobs = arg(2, 1000);
    let throughput_jobs = arg(3, 2000);
    let nodes = (0..n_nodes)
        .map(|i| (format!("node-{i}"), bacalhau_executors::builtin()))
        .collect();
    let cluster = common::start(nodes).await?;
    let client = cluster.client.clone();
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;

    let mut latencies = Vec::with_capacity(latency_jobs);
    for _ in 0..latency_jobs {
        let started = Instant::now();
        let put = client.put_job(&job, false).await?;
        common::wait_completed(&client, &put.job_id).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();

    let concurrency = 32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..concurrency {
        let client = client.clone();
        let job = job.clone();
        let share =
            throughput_jobs / concurrency + usize::from(worker < throughput_jobs % concurrency);
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(share);
            for _ in 0..share {
                ids.push(client.put_job(&job, false).await?.job_id);
            }
            for id in ids {
                common::wait_completed(&client, &id).await?;
            }
            Ok::<_, BoxError>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();

    // Rows of the suite's table (bench/run.sh prints the header): metric | ours | peer or
    // floor | ratio. The throughput also goes to stderr for the script to set beside Slurm's.
    let jobs_per_s = throughput_jobs as f64 / elapsed.as_secs_f64();
    println!(
        "| noop submit → Completed p50 ({n_nodes} nodes, {latency_jobs} jobs one at a time) | {:.2} ms | | |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "| noop submit → Completed p99 | {:.2} ms | | |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    eprintln!("throughput_jobs_per_s={jobs_per_s:.0}");
    eprintln!(
        "throughput_label=noop jobs/s submitted → Completed ({n_nodes} nodes, {throughput_jobs} jobs, {concurrency} clients)"
    );
    Ok(())
}

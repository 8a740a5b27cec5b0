//! The web UI's cost: the size of its assets in the binary, and the time to render the Jobs
//! page (50 rows, newest first) with N jobs in the store, plus a state filter that matches
//! nothing and so reads every job.
//!
//! `cargo bench -p bacalhau-api --bench ui [-- JOBS]`

mod common;

use bacalhau_models::parse_job_spec;
use common::{BoxError, arg, ms, percentile};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n_jobs = arg(1, 10_000);
    let cluster = common::start(Vec::new()).await?;
    let job = parse_job_spec(
        "Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n   Timeouts: {QueueTimeout: 3600}\n",
    )?;
    let mut tasks = Vec::new();
    for worker in 0..32 {
        let client = cluster.client.clone();
        let job = job.clone();
        let share = n_jobs / 32 + usize::from(worker < n_jobs % 32);
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
    let base = cluster.client.base_url().to_string();
    let http = reqwest::Client::new();
    let assets = bacalhau_api::ui::STYLE.len() + bacalhau_api::ui::SCRIPT.len();
    println!(
        "| web UI assets compiled into the binary (CSS + JS; pages are Rust code) | {:.1} KiB | | |",
        assets as f64 / 1024.0
    );
    for (label, path) in [
        ("Jobs page", "/ui/jobs"),
        (
            "Jobs page, filter matching none",
            "/ui/jobs?state=Completed",
        ),
    ] {
        let url = format!("{base}{path}");
        let mut bytes = 0;
        for _ in 0..5 {
            bytes = http
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?
                .len();
        }
        let mut latencies = Vec::with_capacity(100);
        for _ in 0..100 {
            let started = Instant::now();
            http.get(&url)
                .send()
                .await?
                .error_for_status()?
                .bytes()
                .await?;
            latencies.push(started.elapsed());
        }
        latencies.sort();
        println!(
            "| {label}, {n_jobs} jobs in the store: p50 / p99 render + fetch (ms) | {:.2} / {:.2} | {:.1} KiB page | |",
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            bytes as f64 / 1024.0
        );
    }
    Ok(())
}

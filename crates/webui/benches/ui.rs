//! The web UI's cost: the size of its assets in the binary, and the time to render the Jobs
//! page (50 rows, newest first) with N jobs in the store, plus a state filter that matches
//! nothing and so reads every job.
//!
//! `cargo bench -p bacalhau-webui --bench ui [-- JOBS]`

use bacalhau_api::server::{AppState, serve};
use bacalhau_client::ApiClient;
use bacalhau_models::parse_job_spec;
use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Any error, across tasks.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `index`th positional argument after `--`, or `default`.
fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0..=1.0) of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A running orchestrator with no compute nodes, serving the API and the UI on loopback.
struct Cluster {
    /// A client of its API.
    client: ApiClient,
    _dir: tempfile::TempDir,
}

/// Starts the orchestrator and serves the API with the UI's routes, as `bacalhau serve` does.
async fn start() -> Result<Cluster, BoxError> {
    let dir = tempfile::tempdir()?;
    let orchestrator = Arc::new(
        Orchestrator::start(OrchestratorConfig {
            data_dir: dir.path().join("orchestrator"),
            job_defaults: Default::default(),
            workers: 64,
            nodes: Default::default(),
            cluster: None,
        })
        .await?,
    );
    let state = Arc::new(AppState {
        orchestrator,
        node_info: Default::default(),
        config: serde_json::json!({}),
        version: Default::default(),
        auth: Default::default(),
        cluster: None,
        forwarder: reqwest::Client::new(),
        telemetry: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let pages = bacalhau_webui::routes(Arc::clone(&state));
    tokio::spawn(serve(listener, state, pages, std::future::pending()));
    Ok(Cluster {
        client: ApiClient::new(&base)?,
        _dir: dir,
    })
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n_jobs = arg(1, 10_000);
    let cluster = start().await?;
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
    let assets = bacalhau_webui::STYLE.len() + bacalhau_webui::SCRIPT.len();
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

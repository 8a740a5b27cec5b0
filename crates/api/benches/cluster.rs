//! Cluster benchmark: an orchestrator and N in-process compute nodes (the real node protocol
//! over channels) behind the HTTP API on loopback. Prints noop submit → Completed latency
//! (p50/p99, one job at a time) and jobs/s driven to Completed with concurrent clients.
//!
//! `cargo bench -p bacalhau-api --bench cluster [-- NODES LATENCY_JOBS THROUGHPUT_JOBS]`

use bacalhau_api::ApiClient;
use bacalhau_api::node_channel::in_process_connector;
use bacalhau_api::server::{AppState, serve};
use bacalhau_compute::{ComputeConfig, ComputeNode};
use bacalhau_models::{JobStateType, NodeId, Resources, parse_job_spec};
use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

async fn wait_completed(
    client: &ApiClient,
    id: &str,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    loop {
        let state = client.get_job(id, "").await?.job.state.state_type;
        match state {
            JobStateType::Completed => return Ok(()),
            JobStateType::Failed | JobStateType::Stopped => {
                return Err(format!("job {id} ended {state}").into());
            }
            _ => tokio::time::sleep(Duration::from_micros(200)).await,
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let n_nodes: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(3);
    let latency_jobs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let throughput_jobs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(2000);

    let dir = tempfile::tempdir()?;
    let orchestrator = Arc::new(
        Orchestrator::start(OrchestratorConfig {
            data_dir: dir.path().join("orchestrator"),
            job_defaults: Default::default(),
            workers: 4,
            nodes: Default::default(),
        })
        .await?,
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    for i in 0..n_nodes {
        let node = ComputeNode::start(
            ComputeConfig {
                node_id: NodeId::from(format!("node-{i}")),
                labels: Default::default(),
                data_dir: dir.path().join(format!("node-{i}")),
                token: String::new(),
                capacity: Resources {
                    cpu: 64.0,
                    memory: 256 << 30,
                    disk: 1 << 40,
                    gpu: 0,
                    gpus: vec![],
                },
                publishers: vec!["noop".into()],
                storage_sources: vec![],
                accept_networked_jobs: false,
                allowed_local_paths: Default::default(),
            },
            bacalhau_executors::builtin(),
        )
        .await?;
        let connector = in_process_connector(Arc::clone(orchestrator.node_manager()));
        tokio::spawn(node.run(connector, stopped.clone()));
    }
    let state = Arc::new(AppState {
        orchestrator: Arc::clone(&orchestrator),
        node_info: Default::default(),
        config: serde_json::json!({}),
        version: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, state, std::future::pending()));
    let client = ApiClient::new(&base)?;
    while client.list_nodes().await?.nodes.len() < n_nodes {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let job = parse_job_spec("Type: batch\nTasks:\n - Name: main\n   Engine: {Type: noop}\n")?;

    let mut latencies = Vec::with_capacity(latency_jobs);
    for _ in 0..latency_jobs {
        let started = Instant::now();
        let put = client.put_job(&job, false).await?;
        wait_completed(&client, &put.job_id).await?;
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
                wait_completed(&client, &id).await?;
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let elapsed = started.elapsed();

    println!("| metric ({n_nodes} in-process compute nodes) | value |");
    println!("|---|---|");
    println!(
        "| noop submit → Completed p50 ({latency_jobs} jobs, one at a time) | {:.2} ms |",
        percentile(&latencies, 0.5).as_secs_f64() * 1e3
    );
    println!(
        "| noop submit → Completed p99 | {:.2} ms |",
        percentile(&latencies, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| noop jobs/s submitted → Completed ({throughput_jobs} jobs, {concurrency} clients) | {:.0} |",
        throughput_jobs as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

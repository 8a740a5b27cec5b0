//! What the benchmarks share: an in-process cluster (orchestrator, compute nodes speaking the
//! real node protocol over channels, the HTTP API on loopback) and small statistics helpers.

#![allow(dead_code)]

use bacalhau_api::node_channel::in_process_connector;
use bacalhau_api::server::{AppState, serve};
use bacalhau_client::ApiClient;
use bacalhau_compute::{ComputeConfig, ComputeNode, Executor, Providers, Publishers, Storages};
use bacalhau_models::{NodeId, Resources};
use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig};
use std::sync::Arc;
use std::time::Duration;

/// Any error, across tasks.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The `index`th positional argument after `--`, or `default`.
pub fn arg(index: usize, default: usize) -> usize {
    std::env::args()
        .filter(|a| !a.starts_with("--"))
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0.0..=1.0) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The median of samples.
pub fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The `bacalhau` binary the process benches start: `BACALHAU_BENCH_BINARY`, else the
/// workspace's release build.
pub fn release_binary() -> Result<std::path::PathBuf, BoxError> {
    let binary = std::env::var_os("BACALHAU_BENCH_BINARY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/release/bacalhau")
        });
    if !binary.exists() {
        return Err(format!(
            "{} is missing: cargo build --release -p bacalhau",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

/// A child process killed when dropped, so a bench that fails half-way leaves none behind.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `binary` as an orchestrator on loopback `port` with its data under `data_dir`; its
/// log goes to the file `BACALHAU_BENCH_LOG` names (appended), else nowhere.
pub fn spawn_orchestrator(
    binary: &std::path::Path,
    port: u16,
    data_dir: &std::path::Path,
    extra: &[&str],
) -> std::io::Result<Killed> {
    let log = match std::env::var_os("BACALHAU_BENCH_LOG") {
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?
            .into(),
        None => std::process::Stdio::null(),
    };
    std::process::Command::new(binary)
        .args(["serve", "--orchestrator", "--api-host", "127.0.0.1"])
        .arg("--api-port")
        .arg(port.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .map(Killed)
}

/// Waits until job `id` is Completed, told by the orchestrator as soon as its end is stored
/// (`wait`, asked again while it answers the job unended); an error when it ended otherwise.
/// No polling: a client that polls takes CPU from the orchestrator it measures.
pub async fn wait_completed(client: &ApiClient, id: &str) -> Result<(), BoxError> {
    loop {
        let job = client.wait_job(id, "", None, 60).await?.job;
        match job.state.state_type {
            bacalhau_models::JobStateType::Completed => return Ok(()),
            state if state.is_terminal() => {
                return Err(format!("job {id} ended {state}: {}", job.state.message).into());
            }
            _ => {}
        }
    }
}

/// A process's resident memory in MiB (0 when it cannot be read).
pub fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// A running in-process cluster; dropping it stops everything and removes its data.
pub struct Cluster {
    /// A client of its API.
    pub client: ApiClient,
    /// The orchestrator.
    pub orchestrator: Arc<Orchestrator>,
    _stop: tokio::sync::watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    /// Where the orchestrator keeps its store (`orchestrator/orchestrator.redb` below it).
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }
}

/// Starts an orchestrator and one compute node per entry of `nodes` (its name and engines),
/// and waits until every node is connected.
pub async fn start(nodes: Vec<(String, Vec<Arc<dyn Executor>>)>) -> Result<Cluster, BoxError> {
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
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let n_nodes = nodes.len();
    for (name, executors) in nodes {
        let node = ComputeNode::start(
            ComputeConfig {
                node_id: NodeId::from(name.as_str()),
                labels: Default::default(),
                data_dir: dir.path().join(&name),
                token: String::new(),
                capacity: Resources {
                    cpu: 64.0,
                    memory: 256 << 30,
                    disk: 1 << 40,
                    gpu: 0,
                    gpus: vec![],
                },
                reject_networked_jobs: false,
                ports: std::sync::Arc::new(
                    bacalhau_compute::ports::PortAllocator::new(20000, 32000)
                        .expect("the default port range"),
                ),
                version: Default::default(),
                address: String::new(),
                blocks: None,
                ipfs_addresses: Vec::new(),
                ipfs_network: None,
                max_result_bytes: 0,
                data_locality: Default::default(),
                env_allow_list: Default::default(),
            },
            Providers {
                executors,
                storages: Storages::new(vec![Arc::new(bacalhau_storage::InlineStorage)]),
                publishers: Publishers::new(vec![Arc::new(bacalhau_publishers::NoopPublisher)]),
                metrics: Default::default(),
            },
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
        auth: Default::default(),
        cluster: None,
        forwarder: reqwest::Client::new(),
        telemetry: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(
        listener,
        state,
        axum::Router::new(),
        std::future::pending(),
    ));
    let client = ApiClient::new(&base)?;
    while client.list_nodes().await?.nodes.len() < n_nodes {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(Cluster {
        client,
        orchestrator,
        _stop: stop,
        _dir: dir,
    })
}

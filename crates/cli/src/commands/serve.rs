//! `bacalhau serve`: starts the node's roles and the API server until interrupted.

use super::Global;
use crate::config::{Config, set_path};
use anyhow::{Context, Result, bail};
use bacalhau_api::server::{self, AppState};
use bacalhau_models::{NodeId, NodeInfo};
use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig};
use clap::Args;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run the orchestrator role: the API, the job store and the schedulers.
    #[arg(long)]
    orchestrator: bool,
    /// Run the compute role: execute jobs for an orchestrator.
    #[arg(long)]
    compute: bool,
    /// The node's name; by default a generated `n-<uuid>` kept in the data directory.
    #[arg(long)]
    name: Option<String>,
    /// Same as --api-port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Orchestrators a compute node connects to, `host:port` (same as
    /// `-c Compute.Orchestrators=...`).
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT")]
    orchestrators: Vec<String>,
    /// Labels of this node, `key=value`, comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    labels: Vec<String>,
}

pub async fn run(global: &Global, args: ServeArgs) -> Result<ExitCode> {
    let mut config = global.config()?;
    if let Some(port) = args.port {
        set_path(&mut config.tree, "API.Port", &port.to_string())?;
    }
    if !args.orchestrators.is_empty() {
        set_path(
            &mut config.tree,
            "Compute.Orchestrators",
            &args.orchestrators.join(","),
        )?;
    }
    let orchestrator = args.orchestrator || config.flag("Orchestrator.Enabled");
    let compute = args.compute || config.flag("Compute.Enabled");
    if compute {
        bail!(
            "the compute role is not available in this build yet: `serve --orchestrator` runs \
             an orchestrator, which stores, schedules and queues jobs, but no node runs them"
        );
    }
    if !orchestrator {
        tracing::warn!(
            "no role given: starting the orchestrator role only (compute nodes are not available in this build yet)"
        );
    }

    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let name = node_name(&data_dir, args.name.as_deref())?;
    let labels = parse_labels(&config, &args.labels)?;
    let workers = config.number("Orchestrator.Scheduler.WorkerCount")?.max(1) as usize;

    let orchestrator = Orchestrator::start(OrchestratorConfig {
        data_dir: data_dir.join("orchestrator"),
        job_defaults: config.job_defaults()?,
        workers,
        nodes: Default::default(),
    })
    .await
    .context("cannot start the orchestrator")?;

    let version = super::agent::client_version();
    let node_info = NodeInfo {
        node_id: NodeId::from(name.as_str()),
        node_type: "Requester".into(),
        labels,
        supported_protocols: vec!["ws/v1".into()],
        bacalhau_version: version.clone(),
        ..Default::default()
    };
    let host = config.string("API.Host");
    let port = config.number("API.Port")?;
    let address = format!("{}:{port}", if host.is_empty() { "0.0.0.0" } else { &host });
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let local = listener.local_addr()?;
    let orchestrator = Arc::new(orchestrator);
    let state = Arc::new(AppState {
        orchestrator: Arc::clone(&orchestrator),
        node_info,
        config: config.redacted(),
        version,
    });

    println!(
        "Bacalhau orchestrator {name} is listening on {local} (data in {})",
        data_dir.display()
    );
    println!(
        "To connect to this node from the client, run:\n\texport BACALHAU_API_HOST={}\n\texport BACALHAU_API_PORT={}",
        client_host(&host),
        local.port()
    );
    server::serve(listener, state, shutdown_signal())
        .await
        .context("API server failed")?;
    tracing::info!("shutting down");
    match Arc::try_unwrap(orchestrator) {
        Ok(orchestrator) => orchestrator.shutdown().await,
        Err(_) => tracing::warn!("API connections still open at shutdown"),
    }
    Ok(ExitCode::SUCCESS)
}

fn client_host(host: &str) -> &str {
    match host {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        other => other,
    }
}

/// The node's name: the flag, else the one kept in the data directory, else a new one.
fn node_name(data_dir: &Path, flag: Option<&str>) -> Result<String> {
    let file = data_dir.join("node-name");
    if let Some(name) = flag {
        if name.trim().is_empty() || name.contains(char::is_whitespace) {
            bail!("invalid --name {name:?}: a node name has no spaces");
        }
        return Ok(name.to_string());
    }
    if let Ok(saved) = std::fs::read_to_string(&file) {
        let saved = saved.trim();
        if !saved.is_empty() {
            return Ok(saved.to_string());
        }
    }
    let name = NodeId::generate().to_string();
    std::fs::write(&file, &name).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(name)
}

fn parse_labels(
    config: &Config,
    flags: &[String],
) -> Result<std::collections::BTreeMap<String, String>> {
    let mut labels = std::collections::BTreeMap::new();
    if let Some(serde_json::Value::Object(configured)) = config.get("Labels") {
        for (k, v) in configured {
            labels.insert(k.clone(), v.as_str().unwrap_or_default().to_string());
        }
    }
    for flag in flags.iter().filter(|f| !f.is_empty()) {
        let (key, value) = flag.split_once('=').unwrap_or((flag.as_str(), ""));
        bacalhau_models::selector::validate_label_key(key).map_err(anyhow::Error::msg)?;
        bacalhau_models::selector::validate_label_value(value).map_err(anyhow::Error::msg)?;
        labels.insert(key.to_string(), value.to_string());
    }
    Ok(labels)
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}

//! `bacalhau serve` and `bacalhau devstack`: start the node's roles until interrupted.

use super::Global;
use crate::config::{Config, set_path};
use anyhow::{Context, Result, bail};
use bacalhau_api::node_channel::{in_process_connector, websocket_connector};
use bacalhau_api::server::auth::Authenticator;
use bacalhau_api::server::{self, AppState};
use bacalhau_compute::{ComputeConfig, ComputeNode, Connector, Providers, Publishers, Storages};
use bacalhau_models::job::JobDefaults;
use bacalhau_models::node::DataLocality;
use bacalhau_models::{NodeId, NodeInfo};
use bacalhau_orchestrator::nodes::NodeManagerConfig;
use bacalhau_orchestrator::{Orchestrator, OrchestratorConfig};
use bacalhau_publishers::PublisherConfig;
use bacalhau_storage::StorageConfig;
use clap::Args;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Run the orchestrator role: the API, the job store and the schedulers. With neither
    /// role given, the node runs both (hybrid).
    #[arg(long)]
    orchestrator: bool,
    /// Run the compute role: execute jobs for the orchestrators in `--orchestrators`.
    #[arg(long)]
    compute: bool,
    /// The node's name; by default a generated `n-<uuid>` kept in the data directory.
    #[arg(long)]
    name: Option<String>,
    /// Same as --api-port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Orchestrators a compute node connects to, `host:port` of their API (same as
    /// `-c Compute.Orchestrators=...`).
    #[arg(long, value_delimiter = ',', value_name = "HOST:PORT")]
    orchestrators: Vec<String>,
    /// Labels of this node, `key=value`, comma-separated or repeated.
    #[arg(long, value_delimiter = ',', value_name = "KEY=VALUE")]
    labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DevstackArgs {
    /// How many compute-only nodes to start beside the orchestrator.
    #[arg(long, alias = "compute-nodes", default_value_t = 3)]
    computes: usize,
    /// How many orchestrator-only nodes: 1, or 0 with `--hybrids 1` (one orchestrator per
    /// devstack until orchestrators form a cluster).
    #[arg(long, alias = "requester-nodes", default_value_t = 1)]
    orchestrators: usize,
    /// How many hybrid nodes (orchestrator + compute): 0, or 1 with `--orchestrators 0`.
    #[arg(long, alias = "hybrid-nodes", default_value_t = 0)]
    hybrids: usize,
    /// Same as --api-port.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
}

/// One warning naming the configured keys this binary accepts but does not act on.
fn warn_unused_keys(config: &Config) {
    let unused = config.unused_keys();
    if unused.is_empty() {
        return;
    }
    let list: Vec<String> = unused
        .iter()
        .map(|(key, why)| format!("{key} ({why})"))
        .collect();
    tracing::warn!(
        "these configured keys are accepted but not used by this node: {}",
        list.join("; ")
    );
}

pub async fn run(global: &Global, args: ServeArgs) -> Result<ExitCode> {
    let mut config = global.config()?;
    warn_unused_keys(&config);
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
    let mut orchestrator = args.orchestrator || config.flag("Orchestrator.Enabled");
    let mut compute = args.compute || config.flag("Compute.Enabled");
    if !orchestrator && !compute {
        orchestrator = true;
        compute = true;
    }
    let data_dir = config.data_dir();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let name = node_name(
        &data_dir,
        args.name.as_deref(),
        &config.string("NameProvider"),
    )?;
    let mut labels = parse_labels(&config, &args.labels)?;
    labels.extend(crate::host::automatic_labels(&name));
    let (stop, stopped) = watch::channel(false);

    let mut cluster = Cluster {
        otel: crate::otel::Otel::from_env(&name)?,
        ..Default::default()
    };
    if orchestrator {
        cluster
            .start_orchestrator(&config, &data_dir, &name, &labels)
            .await?;
    }
    if compute {
        let connector = match &cluster.orchestrator {
            Some(o) => in_process_connector(Arc::clone(o.node_manager())),
            None => remote_connector(&config)?,
        };
        let node = start_compute(
            &config,
            &data_dir.join("compute"),
            &name,
            labels.clone(),
            None,
            Metrics {
                telemetry: &cluster.telemetry,
                // A compute-only node has no API: its results server serves `/metrics`.
                serve: !orchestrator,
            },
        )
        .await?;
        cluster.otel.observe_compute(&node, &name);
        cluster
            .nodes
            .push(tokio::spawn(node.run(connector, stopped.clone())));
    }
    let roles = match (orchestrator, compute) {
        (true, true) => "hybrid node (orchestrator + compute)",
        (true, false) => "orchestrator",
        _ => "compute node",
    };
    outln!(
        "Bacalhau {roles} {name} started (data in {})",
        data_dir.display()
    );
    cluster.serve_until_signal(&config, stop).await
}

pub async fn devstack(global: &Global, args: DevstackArgs) -> Result<ExitCode> {
    if args.orchestrators + args.hybrids != 1 {
        bail!(
            "a devstack runs exactly one orchestrator (start an orchestrator cluster with `serve` and Orchestrator.Cluster.Peers): use --orchestrators 1, or --orchestrators 0 --hybrids 1"
        );
    }
    let mut config = global.config()?;
    warn_unused_keys(&config);
    if let Some(port) = args.port {
        set_path(&mut config.tree, "API.Port", &port.to_string())?;
    }
    let data_dir = config.data_dir().join("devstack");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let (stop, stopped) = watch::channel(false);
    let mut cluster = Cluster {
        otel: crate::otel::Otel::from_env("devstack")?,
        ..Default::default()
    };
    let orchestrator_name = if args.hybrids == 1 {
        "hybrid-0"
    } else {
        "orchestrator"
    };
    cluster
        .start_orchestrator(&config, &data_dir, orchestrator_name, &BTreeMap::new())
        .await?;
    let manager = cluster
        .orchestrator
        .as_ref()
        .map(|o| Arc::clone(o.node_manager()))
        .context("orchestrator did not start")?;
    // A hybrid's compute role is one more in-process compute node under its name.
    let names = (0..args.hybrids)
        .map(|i| format!("hybrid-{i}"))
        .chain((0..args.computes).map(|i| format!("node-{i}")));
    for name in names {
        let mut labels = parse_labels(&config, &[])?;
        labels.extend(crate::host::automatic_labels(&name));
        // Many nodes in one process: each serves its results on a port of its own.
        let node = start_compute(
            &config,
            &data_dir.join(&name),
            &name,
            labels,
            Some(0),
            Metrics {
                telemetry: &cluster.telemetry,
                serve: false,
            },
        )
        .await?;
        cluster.otel.observe_compute(&node, &name);
        let connector = in_process_connector(Arc::clone(&manager));
        cluster
            .nodes
            .push(tokio::spawn(node.run(connector, stopped.clone())));
    }
    outln!(
        "Devstack: 1 orchestrator and {} compute nodes (data in {})",
        args.computes + args.hybrids,
        data_dir.display()
    );
    cluster.serve_until_signal(&config, stop).await
}

/// The roles running in this process.
#[derive(Default)]
struct Cluster {
    orchestrator: Option<Arc<Orchestrator>>,
    node_info: NodeInfo,
    nodes: Vec<tokio::task::JoinHandle<()>>,
    /// The orchestrator cluster to join once the API listens (`Orchestrator.Cluster.Peers`).
    raft: Option<bacalhau_cluster::Pending>,
    /// Every role's metrics, served at `/metrics` (on the API, or on a compute-only node's
    /// results server).
    telemetry: Arc<bacalhau_api::telemetry::Telemetry>,
    /// The OpenTelemetry exporters, when `OTEL_EXPORTER_OTLP_*` asks for them.
    otel: crate::otel::Otel,
}

impl Cluster {
    async fn start_orchestrator(
        &mut self,
        config: &Config,
        data_dir: &Path,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<()> {
        // With peers, this orchestrator is a member of a Raft group; without, it stands
        // alone as before.
        let link = if config.strings("Orchestrator.Cluster.Peers").is_empty() {
            None
        } else {
            let (pending, link) = bacalhau_cluster::Pending::new();
            self.raft = Some(pending);
            Some(link)
        };
        if config.flag("Orchestrator.CompactOnStart") {
            let path = data_dir
                .join("orchestrator")
                .join(bacalhau_orchestrator::STORE_FILE);
            if let Some((before, after)) = bacalhau_orchestrator::store::Store::compact(&path)
                .context("Orchestrator.CompactOnStart")?
            {
                tracing::info!(before, after, "compacted the orchestrator's store");
            }
        }
        let orchestrator = Orchestrator::start(OrchestratorConfig {
            data_dir: data_dir.join("orchestrator"),
            job_defaults: JobDefaults {
                cache_by_default: config.flag("Orchestrator.ResultCacheDefault"),
                ..config.job_defaults()?
            },
            workers: config.number("Orchestrator.Scheduler.WorkerCount")?.max(1) as usize,
            nodes: NodeManagerConfig {
                token: config.string("Orchestrator.Auth.Token"),
                manual_approval: config.flag("Orchestrator.NodeManager.ManualApproval"),
                heartbeat_interval: config.duration("Compute.Heartbeat.Interval")?,
                disconnect_timeout: config
                    .duration("Orchestrator.NodeManager.DisconnectTimeout")?,
                reschedule_grace: config
                    .duration("Orchestrator.NodeManager.RescheduleGracePeriod")?,
            },
            cluster: link,
        })
        .await
        .context("cannot start the orchestrator")?;
        self.node_info = NodeInfo {
            node_id: NodeId::from(name),
            node_type: bacalhau_models::node::NodeType::Requester,
            labels: labels.clone(),
            supported_protocols: vec![bacalhau_protocol::PROTOCOL.into()],
            bacalhau_version: super::agent::client_version(),
            ..Default::default()
        };
        let orchestrator = Arc::new(orchestrator);
        let interval = config.duration("WebUI.ChartInterval")?;
        if interval.is_zero() {
            bail!("WebUI.ChartInterval must be more than 0");
        }
        Orchestrator::record_timeline(&orchestrator, interval);
        let retention = config.duration("Orchestrator.JobRetention")?;
        if !retention.is_zero() {
            Orchestrator::keep_jobs_for(&orchestrator, retention);
        }
        self.otel.observe_orchestrator(&orchestrator);
        self.telemetry
            .register(|registry| orchestrator.metrics().register(registry));
        // Weak: the orchestrator is shut down by whoever holds it last.
        let watched = Arc::downgrade(&orchestrator);
        self.telemetry.on_scrape(move || {
            if let Some(orchestrator) = watched.upgrade()
                && let Err(e) = orchestrator.refresh_metrics()
            {
                tracing::warn!(error = %e, "cannot read the orchestrator's figures");
            }
        });
        self.orchestrator = Some(orchestrator);
        Ok(())
    }

    /// Serves the API (when this process orchestrates) until SIGINT/SIGTERM, then stops
    /// every role.
    async fn serve_until_signal(
        mut self,
        config: &Config,
        stop: watch::Sender<bool>,
    ) -> Result<ExitCode> {
        let mut raft_member = None;
        match &self.orchestrator {
            Some(orchestrator) => {
                let host = config.string("API.Host");
                let port = config.number("API.Port")?;
                let address = format!("{}:{port}", if host.is_empty() { "0.0.0.0" } else { &host });
                let listener = tokio::net::TcpListener::bind(&address)
                    .await
                    .with_context(|| format!("cannot listen on {address}"))?;
                let local = listener.local_addr()?;
                let tls = api_tls(config, &host)?;
                if config.flag("Orchestrator.QUIC.Enabled") {
                    node_quic_listener(orchestrator, local, tls.as_deref(), &host)?;
                }
                let raft = match self.raft.take() {
                    Some(pending) => {
                        let scheme = if tls.is_some() { "https" } else { "http" };
                        Some(
                            start_raft(
                                pending,
                                config,
                                orchestrator,
                                &self.node_info,
                                scheme,
                                local.port(),
                            )
                            .await?,
                        )
                    }
                    None => None,
                };
                raft_member = raft.clone();
                let auth = Authenticator::from_config(
                    config
                        .get("API.Auth.Users")
                        .unwrap_or(&serde_json::Value::Null),
                )?;
                if !auth.enabled() && !local.ip().is_loopback() {
                    tracing::warn!(
                        address = %local,
                        "the API listens beyond loopback with no users configured: anyone who can reach it can run jobs; set API.Auth.Users"
                    );
                }
                let state = Arc::new(AppState {
                    orchestrator: Arc::clone(orchestrator),
                    node_info: self.node_info.clone(),
                    config: config.redacted(),
                    version: super::agent::client_version(),
                    auth,
                    cluster: raft,
                    forwarder: reqwest::Client::new(),
                    telemetry: Arc::clone(&self.telemetry),
                });
                let scheme = if tls.is_some() { "https" } else { "http" };
                outln!("API listening on {scheme}://{local}");
                outln!(
                    "To connect to this node from the client, run:\n\texport BACALHAU_API_HOST={}\n\texport BACALHAU_API_PORT={}",
                    client_host(&host),
                    local.port()
                );
                outln!(
                    "Web UI at {scheme}://{}:{}/ui",
                    client_host(&host),
                    local.port()
                );
                if config.flag("WebUI.Enabled") {
                    let listen = config.string("WebUI.Listen");
                    let ui_listener = tokio::net::TcpListener::bind(&listen)
                        .await
                        .with_context(|| format!("cannot listen on WebUI.Listen {listen}"))?;
                    let ui_local = ui_listener.local_addr()?;
                    outln!("Web UI also at {scheme}://{ui_local}/ui");
                    let ui_state = Arc::clone(&state);
                    let ui_pages = bacalhau_webui::routes(Arc::clone(&state));
                    let ui_tls = tls.clone();
                    tokio::spawn(async move {
                        let served = match ui_tls {
                            Some(tls) => {
                                match bacalhau_api::tls::TlsListener::new(ui_listener, tls) {
                                    Ok(listener) => {
                                        server::serve(
                                            listener,
                                            ui_state,
                                            ui_pages,
                                            shutdown_signal(),
                                        )
                                        .await
                                    }
                                    Err(e) => Err(e),
                                }
                            }
                            None => {
                                server::serve(ui_listener, ui_state, ui_pages, shutdown_signal())
                                    .await
                            }
                        };
                        if let Err(e) = served {
                            tracing::error!(error = %e, "the web UI listener stopped");
                        }
                    });
                }
                // The web UI's pages ride on the API's listener, behind the API's auth.
                let pages = bacalhau_webui::routes(Arc::clone(&state));
                match tls {
                    Some(tls) => {
                        let listener = bacalhau_api::tls::TlsListener::new(listener, tls)?;
                        server::serve(listener, state, pages, shutdown_signal()).await
                    }
                    None => server::serve(listener, state, pages, shutdown_signal()).await,
                }
                .context("API server failed")?;
            }
            None => shutdown_signal().await,
        }
        tracing::info!("shutting down");
        let _ = stop.send(true);
        for node in self.nodes {
            let _ = node.await;
        }
        if let Some(raft) = raft_member {
            raft.shutdown().await;
        }
        // The exporters flush what they still hold; they block, so not on a runtime thread.
        let otel = std::mem::take(&mut self.otel);
        let _ = tokio::task::spawn_blocking(move || otel.shutdown()).await;
        if let Some(orchestrator) = self.orchestrator {
            match Arc::try_unwrap(orchestrator) {
                Ok(orchestrator) => orchestrator.shutdown().await,
                Err(_) => tracing::debug!("orchestrator still referenced at shutdown"),
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Where a compute node's figures go: the process's registry, and whether its results
/// server also serves `/metrics`.
struct Metrics<'a> {
    telemetry: &'a Arc<bacalhau_api::telemetry::Telemetry>,
    serve: bool,
}

/// Starts a compute node with every engine, storage and publisher this host can offer;
/// `results_port` overrides `Publishers.Types.Local.Port`.
async fn start_compute(
    config: &Config,
    data_dir: &Path,
    name: &str,
    labels: BTreeMap<String, String>,
    results_port: Option<u16>,
    metrics: Metrics<'_>,
) -> Result<Arc<ComputeNode>> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let host = crate::host::detect(data_dir);
    let capacity = crate::host::allocate(
        &host,
        &config.string("Compute.AllocatedCapacity.CPU"),
        &config.string("Compute.AllocatedCapacity.Memory"),
        &config.string("Compute.AllocatedCapacity.Disk"),
        &config.string("Compute.AllocatedCapacity.GPU"),
    )?;
    let mut labels = labels;
    labels.extend(crate::host::gpu::labels(&capacity.gpus));
    // The node's content: blocks of `ipfs` results and inputs, served beside local results,
    // and exchanged with other nodes over bitswap.
    let blocks = bacalhau_content::BlockStore::open(&data_dir.join("ipfs"))?
        .with_cap(config.bytes("Compute.IPFS.MaxStoreSize")?);
    let listen = config
        .strings("Compute.IPFS.Listen")
        .iter()
        .map(|address| {
            address
                .parse::<bacalhau_content::Multiaddr>()
                .with_context(|| format!("Compute.IPFS.Listen: {address:?} is not a multiaddr"))
        })
        .collect::<Result<Vec<_>>>()?;
    let network = Arc::new(bacalhau_content::Network::start(blocks.clone(), &listen).await?);
    let ipfs_addresses: Vec<String> = network
        .addresses()
        .iter()
        .map(|address| address.to_string())
        .collect();
    tracing::info!(peer = %network.peer_id(), addresses = ?ipfs_addresses, "IPFS node listening");
    let storages = bacalhau_storage::builtin(&StorageConfig {
        allowed_local_paths: config.strings("Compute.AllowListedLocalPaths"),
        max_input_bytes: config.bytes("InputSources.MaxSize")?,
        read_timeout: config.duration("InputSources.ReadTimeout")?,
        max_retries: u32::try_from(config.number("InputSources.MaxRetryCount")?).unwrap_or(3),
        blocks: Some(blocks.clone()),
        ipfs_network: Some(Arc::clone(&network)),
        ipfs_peers: config.strings("Compute.IPFS.Peers"),
        ipfs_fetch_timeout: config.duration("Compute.IPFS.FetchTimeout")?,
    });
    let results_dir = data_dir.join("results").join("local-publisher");
    let local_base_url =
        serve_local_results(config, results_port, &results_dir, blocks.clone(), &metrics).await?;
    let node_blocks = blocks.clone();
    let publishers = bacalhau_publishers::builtin(&PublisherConfig {
        local_dir: results_dir,
        local_base_url: local_base_url.clone(),
        blocks,
    });
    // `Engines.Disabled`, `InputSources.Disabled` and `Publishers.Disabled` name types this node
    // neither offers nor bids for (any case, as upstream).
    let disabled = |key: &str| -> Vec<String> {
        config
            .strings(key)
            .iter()
            .map(|t| t.to_ascii_lowercase())
            .collect()
    };
    let (no_engines, no_inputs, no_publishers) = (
        disabled("Engines.Disabled"),
        disabled("InputSources.Disabled"),
        disabled("Publishers.Disabled"),
    );
    let node_metrics = bacalhau_compute::metrics::ComputeMetrics::default();
    let executors: Vec<_> = bacalhau_executors::available(name, &node_metrics)
        .await
        .into_iter()
        .filter(|e| !no_engines.contains(&e.engine().to_ascii_lowercase()))
        .collect();
    let storages: Vec<_> = storages
        .into_iter()
        .filter(|s| {
            !s.types()
                .iter()
                .any(|t| no_inputs.contains(&t.to_ascii_lowercase()))
        })
        .collect();
    let publishers: Vec<_> = publishers
        .into_iter()
        .filter(|p| !no_publishers.contains(&p.publisher_type().to_ascii_lowercase()))
        .collect();
    let node = ComputeNode::start(
        ComputeConfig {
            node_id: NodeId::from(name),
            labels,
            data_dir: data_dir.to_path_buf(),
            token: config.string("Compute.Auth.Token"),
            capacity,
            reject_networked_jobs: config.flag("JobAdmissionControl.RejectNetworkedJobs"),
            max_result_bytes: config.bytes("Publishers.MaxResultSize")?,
            data_locality: DataLocality {
                local_paths: config.strings("Compute.AllowListedLocalPaths"),
                s3: config.strings("Compute.DataLocality.S3"),
                // Filled from the block store's pins whenever the node describes itself.
                ipfs: Vec::new(),
            },
            env_allow_list: bacalhau_compute::EnvAllowList::new(
                config.strings("Compute.Env.AllowList"),
            ),
            ports: Arc::new(port_allocator(config)?),
            version: super::agent::client_version(),
            address: local_base_url,
            blocks: Some(node_blocks),
            ipfs_addresses,
            ipfs_network: Some(network),
        },
        Providers {
            executors,
            storages: Storages::new(storages),
            publishers: Publishers::new(publishers),
            metrics: node_metrics.clone(),
        },
    )
    .await
    .context("cannot start the compute node")?;
    // Several nodes may share a process (devstack): each one's series carry its name.
    metrics.telemetry.register(|registry| {
        node_metrics
            .register(registry.sub_registry_with_label(("node".into(), name.to_string().into())))
    });
    let watched = Arc::downgrade(&node);
    metrics.telemetry.on_scrape(move || {
        if let Some(node) = watched.upgrade() {
            node.refresh_metrics();
        }
    });
    Ok(node)
}

/// The host ports jobs may publish, `Compute.Network.PortRangeStart..=PortRangeEnd`.
fn port_allocator(config: &Config) -> Result<bacalhau_compute::ports::PortAllocator> {
    let port = |key: &str| -> Result<u16> {
        u16::try_from(config.number(key)?).with_context(|| format!("{key} must be a port number"))
    };
    bacalhau_compute::ports::PortAllocator::new(
        port("Compute.Network.PortRangeStart")?,
        port("Compute.Network.PortRangeEnd")?,
    )
    .map_err(|e| anyhow::anyhow!("Compute.Network: {e}"))
}

/// Starts the server of the local publisher's archives; returns the URL they are served at.
/// It listens on `Publishers.Types.Local.Address` when that is an IP (loopback by default,
/// so results do not leave the host unless asked), else on every interface.
async fn serve_local_results(
    config: &Config,
    port: Option<u16>,
    dir: &Path,
    blocks: bacalhau_content::BlockStore,
    metrics: &Metrics<'_>,
) -> Result<String> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let address = config.string("Publishers.Types.Local.Address");
    let port = match port {
        Some(port) => port,
        None => u16::try_from(config.number("Publishers.Types.Local.Port")?)
            .context("Publishers.Types.Local.Port must be a port number")?,
    };
    let listen_ip: std::net::IpAddr = address
        .parse()
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let listener = match tokio::net::TcpListener::bind((listen_ip, port)).await {
        Ok(listener) => listener,
        // Another node on this host holds the port: take the one this node had before (its
        // published URLs keep working across restarts), else any free one, and say so.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 => {
            let remembered = dir.with_extension("port");
            let previous = std::fs::read_to_string(&remembered)
                .ok()
                .and_then(|text| text.trim().parse::<u16>().ok());
            let listener = match previous {
                Some(previous) if previous != port => {
                    match tokio::net::TcpListener::bind((listen_ip, previous)).await {
                        Ok(listener) => listener,
                        Err(_) => tokio::net::TcpListener::bind((listen_ip, 0)).await?,
                    }
                }
                _ => tokio::net::TcpListener::bind((listen_ip, 0)).await?,
            };
            let bound = listener.local_addr()?.port();
            std::fs::write(&remembered, bound.to_string())
                .with_context(|| format!("cannot write {}", remembered.display()))?;
            tracing::warn!(
                "port {port} of the local publisher is taken (another node on this host?): serving local results on {listen_ip}:{bound} instead; set Publishers.Types.Local.Port to choose"
            );
            listener
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot serve local results on {listen_ip}:{port}: set Publishers.Types.Local.Port to a free port (0 picks one)"
                )
            });
        }
    };
    let bound = listener.local_addr()?.port();
    let served = dir.to_path_buf();
    let telemetry = Arc::clone(metrics.telemetry);
    let serve_metrics = metrics.serve;
    tokio::spawn(async move {
        if let Err(e) =
            bacalhau_api::results::serve(listener, served, Some(blocks), telemetry, serve_metrics)
                .await
        {
            tracing::error!(error = %e, "the local results server stopped");
        }
    });
    let host = if address.is_empty() || address == "0.0.0.0" {
        "127.0.0.1"
    } else {
        address.as_str()
    };
    Ok(format!("http://{host}:{bound}"))
}

/// Joins this orchestrator to its Raft group (`Orchestrator.Cluster.*`): the cluster
/// listener on `Host:Port` (upstream's default port 6222), advertised as `Advertise`, with
/// this member's API at `api_scheme://<API.Host, or the advertised host>:api_port` for
/// followers to forward writes to.
async fn start_raft(
    pending: bacalhau_cluster::Pending,
    config: &Config,
    orchestrator: &Orchestrator,
    node_info: &NodeInfo,
    api_scheme: &str,
    api_port: u16,
) -> Result<bacalhau_cluster::Cluster> {
    let host = config.string("Orchestrator.Cluster.Host");
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    let port = match config.number("Orchestrator.Cluster.Port")? {
        0 => 6222,
        port => port,
    };
    let listen = format!("{host}:{port}");
    let advertise = match config.string("Orchestrator.Cluster.Advertise") {
        given if !given.is_empty() => given,
        _ => format!("{}:{port}", client_host(&host)),
    };
    // The API is reached where it listens when that is a specific address; on every address
    // (0.0.0.0), at the host the cluster address advertises.
    let api_host = config.string("API.Host");
    let advertised_host = if !api_host.is_empty() && api_host != "0.0.0.0" && api_host != "::" {
        api_host
    } else {
        advertise
            .split_once("://")
            .map_or(advertise.as_str(), |(_, rest)| rest)
            .rsplit_once(':')
            .map_or(advertise.as_str(), |(host, _)| host)
            .to_string()
    };
    let cluster_name = match config.string("Orchestrator.Cluster.Name") {
        name if name.is_empty() => "bacalhau".to_string(),
        name => name,
    };
    let cluster = pending
        .start(
            bacalhau_cluster::ClusterConfig {
                cluster_name,
                node_name: node_info.node_id.to_string(),
                listen: listen.clone(),
                advertise,
                api: format!("{api_scheme}://{advertised_host}:{api_port}"),
                peers: config.strings("Orchestrator.Cluster.Peers"),
                token: config.string("Orchestrator.Auth.Token"),
                data_dir: orchestrator.data_dir().to_path_buf(),
            },
            orchestrator.store(),
        )
        .await
        .context("cannot join the orchestrator cluster")?;
    outln!("Orchestrator cluster listener on {listen}");
    Ok(cluster)
}

/// Serves the node channel over QUIC on the API's port number (UDP) beside the WebSocket,
/// with the API's TLS, or without it a certificate made now (nodes then dial without
/// checking it, as they would over `ws://`).
fn node_quic_listener(
    orchestrator: &Arc<Orchestrator>,
    api: std::net::SocketAddr,
    tls: Option<&bacalhau_api::tls::ServerConfig>,
    host: &str,
) -> Result<()> {
    use bacalhau_api::node_quic;
    let made;
    let tls = match tls {
        Some(tls) => tls,
        None => {
            made = bacalhau_api::tls::self_signed(&certificate_names(host))?.server_config()?;
            &made
        }
    };
    let key_file = orchestrator.data_dir().join("quic-reset.key");
    let endpoint = node_quic::listen(api, tls, node_quic::reset_key(&key_file)?)?;
    outln!(
        "Compute nodes may also connect over QUIC at quic://{}:{} (UDP)",
        client_host(host),
        api.port()
    );
    tokio::spawn(node_quic::serve(
        endpoint,
        Arc::clone(orchestrator.node_manager()),
    ));
    Ok(())
}

/// Where a compute node dials one orchestrator's node channel.
enum ChannelTarget {
    /// A `ws://` or `wss://` URL.
    WebSocket(String),
    /// A `host:port` reached over QUIC (UDP).
    Quic(String),
}

/// Dials the configured orchestrators in turn, one per session.
fn remote_connector(config: &Config) -> Result<Connector> {
    let orchestrators = config.strings("Compute.Orchestrators");
    if orchestrators.is_empty() {
        bail!("a compute node needs an orchestrator: --orchestrators HOST:PORT");
    }
    let ca_cert = config.string("Compute.TLS.CACert");
    let ca = (!ca_cert.is_empty()).then(|| Path::new(&ca_cert));
    let require_tls = config.flag("Compute.TLS.RequireTLS");
    let use_tls = require_tls || ca.is_some();
    let mut targets = Vec::with_capacity(orchestrators.len());
    for orchestrator in &orchestrators {
        if let Some(host_port) = orchestrator.strip_prefix("quic://") {
            let host_port = host_port.split('/').next().unwrap_or(host_port);
            // As for a WebSocket: the API's default port when none is given.
            let host_port = if host_port.contains(':') {
                host_port.to_string()
            } else {
                format!("{host_port}:1234")
            };
            targets.push(ChannelTarget::Quic(host_port));
            continue;
        }
        if orchestrator.starts_with("nats://") {
            tracing::warn!(
                "Compute.Orchestrators {orchestrator}: compute nodes reach an orchestrator through its API (port 1234 by default), not NATS; give HOST:API_PORT"
            );
        }
        let url = channel_url(orchestrator, use_tls);
        if require_tls && !url.starts_with("wss://") {
            bail!(
                "Compute.TLS.RequireTLS is set but orchestrator {orchestrator} is given as a plain-text URL"
            );
        }
        targets.push(ChannelTarget::WebSocket(url));
    }
    let tls = if targets
        .iter()
        .any(|t| matches!(t, ChannelTarget::WebSocket(url) if url.starts_with("wss://")))
    {
        Some(bacalhau_api::tls::client_config(ca, false)?)
    } else {
        None
    };
    let quic = if targets.iter().any(|t| matches!(t, ChannelTarget::Quic(_))) {
        // The orchestrator's certificate is checked (against the CA and the web's roots) when
        // the node asks for TLS, as for `wss://`; otherwise the channel is encrypted but the
        // orchestrator unchecked, as `ws://` is plain.
        let trust = bacalhau_api::tls::client_config(ca, !use_tls)?;
        Some(bacalhau_api::node_quic::QuicDialer::new(&trust)?)
    } else {
        None
    };
    let connectors: Vec<Connector> = targets
        .into_iter()
        .filter_map(|target| match target {
            ChannelTarget::WebSocket(url) => Some(websocket_connector(url, tls.clone())),
            ChannelTarget::Quic(host_port) => {
                quic.as_ref().map(|dialer| dialer.connector(host_port))
            }
        })
        .collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Ok(Arc::new(move || {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % connectors.len();
        connectors[i]()
    }))
}

/// The names a certificate made here carries: loopback's, and the listening host unless it
/// is a wildcard.
fn certificate_names(host: &str) -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !host.is_empty() && !names.iter().any(|n| n == host) && host != "0.0.0.0" && host != "::" {
        names.push(host.to_string());
    }
    names
}

/// The API's TLS from `API.TLS`: a certificate and key from files, or with `SelfSigned` a CA
/// and certificate made now, the CA written to `<data dir>/tls/ca.pem` for clients to trust.
fn api_tls(config: &Config, host: &str) -> Result<Option<Arc<bacalhau_api::tls::ServerConfig>>> {
    let cert_file = config.string("API.TLS.CertFile");
    let key_file = config.string("API.TLS.KeyFile");
    if !cert_file.is_empty() || !key_file.is_empty() {
        if cert_file.is_empty() || key_file.is_empty() {
            bail!("API.TLS needs both CertFile and KeyFile");
        }
        return Ok(Some(bacalhau_api::tls::server_config_from_files(
            Path::new(&cert_file),
            Path::new(&key_file),
        )?));
    }
    if !config.flag("API.TLS.SelfSigned") {
        return Ok(None);
    }
    let made = bacalhau_api::tls::self_signed(&certificate_names(host))?;
    let dir = config.data_dir().join("tls");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &made.ca_pem)
        .with_context(|| format!("cannot write {}", ca_file.display()))?;
    outln!(
        "Serving TLS with a self-signed certificate; clients trust it with -c API.TLS.CAFile={}",
        ca_file.display()
    );
    Ok(Some(made.server_config()?))
}

/// The node channel's URL on an orchestrator given as `host:port` or a URL; `tls` picks
/// `wss://` for a bare `host:port`.
fn channel_url(orchestrator: &str, tls: bool) -> String {
    let (scheme, rest) = match orchestrator.split_once("://") {
        Some(("https" | "wss", rest)) => ("wss", rest),
        Some((_, rest)) => ("ws", rest),
        None if tls => ("wss", orchestrator),
        None => ("ws", orchestrator),
    };
    let host_port = rest.split('/').next().unwrap_or(rest);
    let host_port = if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:1234")
    };
    format!("{scheme}://{host_port}{}", bacalhau_protocol::CONNECT_PATH)
}

fn client_host(host: &str) -> &str {
    match host {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        other => other,
    }
}

/// The node's name: `--name`, else the one kept in the data directory, else a new one from
/// `NameProvider` (upstream's `puuid`: `n-<uuid>`; `uuid`; `hostname`), kept for next time.
fn node_name(data_dir: &Path, flag: Option<&str>, provider: &str) -> Result<String> {
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
    let name = match provider.to_ascii_lowercase().as_str() {
        "" | "puuid" => NodeId::generate().to_string(),
        "uuid" => NodeId::generate()
            .as_str()
            .trim_start_matches("n-")
            .to_string(),
        "hostname" => {
            let uname = rustix::system::uname();
            let host = uname.nodename().to_string_lossy().into_owned();
            // Upstream keeps the first label of a fully qualified name.
            host.split('.').next().unwrap_or_default().to_string()
        }
        other => bail!(
            "NameProvider {other:?} is not supported here: use puuid, uuid or hostname, or --name"
        ),
    };
    if name.is_empty() {
        bail!("NameProvider {provider:?} gave an empty name: use --name");
    }
    std::fs::write(&file, &name).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(name)
}

/// Configured labels, then `--labels`, then upstream's automatic ones (which win).
fn parse_labels(config: &Config, flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_urls_from_upstream_style_addresses() {
        assert_eq!(
            channel_url("10.0.0.1:1234", false),
            "ws://10.0.0.1:1234/api/v1/compute/connect"
        );
        assert_eq!(
            channel_url("nats://h:4222", true),
            "ws://h:4222/api/v1/compute/connect"
        );
        assert_eq!(
            channel_url("https://h", false),
            "wss://h:1234/api/v1/compute/connect"
        );
        assert_eq!(
            channel_url("h:99", true),
            "wss://h:99/api/v1/compute/connect"
        );
    }
}

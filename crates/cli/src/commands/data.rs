//! `bacalhau data add PATH [--node ID]` (ours; upstream users ask for uploads from the client):
//! the file or directory is added here as UnixFS (the CID Kubo's `ipfs add` would give), a
//! short-lived IPFS node of the client's own offers its blocks, and a compute node, asked
//! through the orchestrator, fetches them over bitswap, checks each against its CID and pins
//! the root. Prints the CID, for jobs to read with `-i ipfs://CID`.

use super::Global;
use anyhow::{Context, Result, bail};
use bacalhau_client::apimodels::PinDataRequest;
use bacalhau_content::{BlockStore, CidVersion, Multiaddr, Network};
use bacalhau_models::NodeState;
use bacalhau_models::node::{ConnectionStatus, Membership};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Add a local file or directory to the cluster: pinned on a compute node, known by its
    /// CID from then on.
    Add(AddArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The file or directory to add.
    path: PathBuf,
    /// The compute node that should hold it (ID or unique prefix); default: the connected
    /// compute node with the most free disk.
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// CID version: 0 (Kubo's default for `ipfs add`) or 1 (raw leaves, as `--cid-version 1`).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    cid_version: u8,
    /// How long the node may take to fetch the data (e.g. 90s, 10m).
    #[arg(long, default_value = "10m", value_parser = crate::config::parse_duration)]
    timeout: Duration,
    /// Where this client's IPFS node listens while the node fetches (a multiaddr). The client
    /// also dials the node, so the node need not reach this address.
    #[arg(long, default_value = "/ip4/127.0.0.1/tcp/0", value_name = "MULTIADDR")]
    listen: Multiaddr,
}

pub async fn run(global: &Global, command: DataCommand) -> Result<ExitCode> {
    match command {
        DataCommand::Add(args) => add(global, args).await,
    }
}

/// A directory removed when dropped, however the command ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message(message);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

async fn add(global: &Global, args: AddArgs) -> Result<ExitCode> {
    let path = args.path.clone();
    let metadata = std::fs::symlink_metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !(metadata.is_file() || metadata.is_dir()) {
        bail!(
            "{} is neither a file nor a directory: only those can be added",
            path.display()
        );
    }
    let client = global.client()?;
    let node = choose_node(&client, args.node.as_deref()).await?;
    let node_id = node.info.node_id.to_string();

    // The blocks live in a scratch store of the client's until the node has them.
    let scratch = Scratch(std::env::temp_dir().join(format!(
        "bacalhau-data-add-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    )));
    let store = BlockStore::open(&scratch.0)?;
    let version = if args.cid_version == 1 {
        CidVersion::V1
    } else {
        CidVersion::V0
    };
    let bar = spinner(format!("adding {}", path.display()));
    let import_store = store.clone();
    let import_path = path.clone();
    let added = tokio::task::spawn_blocking(move || {
        bacalhau_content::import(&import_store, &import_path, version)
    })
    .await
    .context("the import stopped")?
    .with_context(|| format!("cannot add {}", path.display()))?;
    bar.finish_and_clear();
    let root = added.root.to_string();

    let network = Network::start(store, std::slice::from_ref(&args.listen))
        .await
        .with_context(|| format!("cannot start an IPFS node on {}", args.listen))?;
    let node_addresses: Vec<Multiaddr> = node
        .info
        .compute_node_info
        .ipfs_addresses
        .iter()
        .filter_map(|address| address.parse().ok())
        .collect();
    network.connect(&node_addresses).await?;
    let bar = spinner(format!("node {node_id} is fetching {root}"));
    let pinned = client
        .pin_data(&PinDataRequest {
            cid: root.clone(),
            node_id: node_id.clone(),
            peers: network
                .addresses()
                .iter()
                .map(|address| address.to_string())
                .collect(),
            timeout_seconds: args.timeout.as_secs().max(1),
        })
        .await;
    bar.finish_and_clear();
    let pinned = pinned.with_context(|| format!("node {node_id} could not add {root}"))?;
    eprintln!(
        "{} pinned on node {} ({}, {} fetched)",
        path.display(),
        pinned.node_id,
        human_bytes(added.bytes),
        human_bytes(pinned.bytes_fetched)
    );
    outln!("{root}");
    Ok(ExitCode::SUCCESS)
}

/// The node named (it must be a connected compute node with an IPFS node), or the connected
/// one with the most free disk.
async fn choose_node(
    client: &bacalhau_client::ApiClient,
    wanted: Option<&str>,
) -> Result<NodeState> {
    let usable = |node: &NodeState| -> Result<(), String> {
        let info = &node.info.compute_node_info;
        if node.info.node_type != bacalhau_models::node::NodeType::Compute {
            return Err("it is not a compute node".into());
        }
        if node.membership != Membership::Approved {
            return Err(format!("its membership is {}", node.membership));
        }
        if node.connection_state.status != ConnectionStatus::Connected {
            return Err(format!("it is {}", node.connection_state.status));
        }
        if info.ipfs_addresses.is_empty()
            || !info
                .storage_sources
                .iter()
                .any(|s| s.eq_ignore_ascii_case("ipfs"))
        {
            return Err("it runs no IPFS node".into());
        }
        Ok(())
    };
    if let Some(wanted) = wanted {
        let node = client.get_node(wanted).await?.node;
        usable(&node)
            .map_err(|why| anyhow::anyhow!("node {} cannot hold data: {why}", node.info.node_id))?;
        return Ok(node);
    }
    client
        .list_nodes()
        .await?
        .nodes
        .into_iter()
        .filter(|node| usable(node).is_ok())
        .max_by(|a, b| {
            let free = |n: &NodeState| n.info.compute_node_info.available_capacity.disk;
            free(a)
                .cmp(&free(b))
                .then_with(|| b.info.node_id.as_str().cmp(a.info.node_id.as_str()))
        })
        .context("no connected compute node with an IPFS node to hold the data")
}

fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

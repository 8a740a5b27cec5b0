//! Input sources a compute node fetches before a run, each an [`InputStorage`] of the
//! `compute` crate: `inline` (data URLs), `local` (allow-listed host paths, mounted in place),
//! `urlDownload` (http/https), `s3` (any S3-compatible endpoint, with upstream's
//! partitioning of objects across a job's executions) and `ipfs` (CIDs from the node's block
//! store).
//!
//! Credentials come from the node's environment (`AWS_ACCESS_KEY_ID`...), never from a spec.

mod inline;
mod ipfs;
mod local;
mod partition;
pub mod s3;
mod url;

pub use inline::{InlineStorage, decode_data_url};
pub use ipfs::IpfsStorage;
pub use local::{AllowList, LocalStorage};
pub use partition::{PartitionSpec, partition_objects};
pub use s3::S3Storage;
pub use url::UrlStorage;

use bacalhau_compute::InputStorage;
use std::sync::Arc;
use std::time::Duration;

/// How a node fetches inputs.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// Host paths jobs may mount (`Compute.AllowListedLocalPaths`).
    pub allowed_local_paths: Vec<String>,
    /// The most bytes one input may bring onto the node (0: no limit).
    pub max_input_bytes: u64,
    /// How long a download may stall before it is given up.
    pub read_timeout: Duration,
    /// How many times a failed download is retried.
    pub max_retries: u32,
    /// The node's block store, for `ipfs` inputs (none: no `ipfs` inputs).
    pub blocks: Option<bacalhau_content::BlockStore>,
    /// The node's IPFS node, to fetch CIDs it does not hold (none: only held CIDs).
    pub ipfs_network: Option<std::sync::Arc<bacalhau_content::Network>>,
    /// IPFS nodes to ask besides the holders the orchestrator names (e.g. a Kubo).
    pub ipfs_peers: Vec<String>,
    /// How long fetching a CID may take before the input fails naming it.
    pub ipfs_fetch_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            allowed_local_paths: Vec::new(),
            max_input_bytes: 0,
            read_timeout: Duration::from_secs(60),
            max_retries: 3,
            blocks: None,
            ipfs_network: None,
            ipfs_peers: Vec::new(),
            ipfs_fetch_timeout: Duration::from_secs(60),
        }
    }
}

/// Every storage this crate has, set up from `config`.
pub fn builtin(config: &StorageConfig) -> Vec<Arc<dyn InputStorage>> {
    let mut storages: Vec<Arc<dyn InputStorage>> = vec![
        Arc::new(InlineStorage),
        Arc::new(LocalStorage::new(AllowList::new(
            &config.allowed_local_paths,
        ))),
        Arc::new(UrlStorage::new(config)),
        Arc::new(S3Storage::new(config)),
    ];
    if let Some(blocks) = &config.blocks {
        storages.push(Arc::new(IpfsStorage::new(
            blocks.clone(),
            config.max_input_bytes,
            config.ipfs_network.clone().map(|network| ipfs::Fetching {
                network,
                peers: config.ipfs_peers.clone(),
                timeout: config.ipfs_fetch_timeout,
            }),
        )));
    }
    storages
}

/// An input larger than the node accepts.
fn too_large(
    input: &bacalhau_models::InputSource,
    size: u64,
    limit: u64,
) -> bacalhau_compute::InputError {
    bacalhau_compute::InputError::Invalid(format!(
        "input {} is {size} bytes, more than this node accepts ({limit} bytes; see InputSources.MaxSize)",
        input.target
    ))
}

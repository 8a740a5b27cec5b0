//! Where a compute node puts an execution's results, each a [`Publisher`] of the `compute`
//! crate: `local` (a gzip'd tar under the node's data dir, served over HTTP by the node),
//! `s3` (any S3-compatible endpoint, one archive or plain files), `ipfs` (a UnixFS directory
//! pinned in the node's block store, named by its CID) and `noop`.
//!
//! [`fetch`] is the client side (`job get`): download, unpack and merge results.
//! [`archive`] packs and safely unpacks the tar.gz layout the local and s3 publishers share
//! with upstream (entries relative to the results directory, no top-level folder).

pub mod archive;
pub mod fetch;
mod ipfs;
mod local;
mod noop;
mod s3;

pub use ipfs::IpfsPublisher;
pub use local::LocalPublisher;
pub use noop::NoopPublisher;
pub use s3::S3Publisher;

use bacalhau_compute::Publisher;
use std::path::PathBuf;
use std::sync::Arc;

/// How a node publishes.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Where the local publisher keeps archives.
    pub local_dir: PathBuf,
    /// The URL the local publisher's archives are served under, e.g. `http://10.0.0.5:6001`.
    pub local_base_url: String,
    /// The node's block store, for `ipfs`.
    pub blocks: bacalhau_content::BlockStore,
}

/// Every publisher this crate has, set up from `config`.
pub fn builtin(config: &PublisherConfig) -> Vec<Arc<dyn Publisher>> {
    vec![
        Arc::new(NoopPublisher),
        Arc::new(LocalPublisher::new(
            config.local_dir.clone(),
            config.local_base_url.clone(),
        )),
        Arc::new(S3Publisher),
        Arc::new(IpfsPublisher::new(config.blocks.clone())),
    ]
}

//! Content-addressed data for compute nodes and the CLI: data known by its CID.
//!
//! [`BlockStore`] keeps blocks as files under a directory, checks every block against its hash
//! when it is written and when it is read, pins roots and collects unpinned blocks under a size
//! cap. [`import`] adds a file or a directory as UnixFS with Kubo's defaults (256 KiB chunks,
//! balanced layout with 174 links per node; CIDv0 dag-pb leaves by default, CIDv1 with raw
//! leaves when asked), so the CIDs equal what `ipfs add` prints. [`export`] writes a CID back
//! as a file or a directory, never leaving half-written output. [`Network`] exchanges blocks
//! with peers over bitswap (libp2p), dialling only the addresses it is given. The UnixFS
//! encoding comes from `rust-unixfs`, bitswap from `beetswap`: this crate owns no wire format.

mod export;
mod import;
mod network;
mod store;

pub use cid::Cid;
pub use export::{Exported, export};
pub use import::{Added, CidVersion, hash_file, import, import_bytes};
pub use libp2p::Multiaddr;
pub use network::{Network, resolve_path};
pub use store::{BlockStore, Hold, links, verify};

/// What can go wrong with content.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("{0} is not a valid CID")]
    BadCid(String),
    #[error("block {cid} does not match its hash: the data is corrupt")]
    Corrupt { cid: String },
    #[error("block {cid} of {root} is not available")]
    Missing { root: String, cid: String },
    #[error("{cid} is not UnixFS data this node can export: {reason}")]
    Unsupported { cid: String, reason: String },
    #[error("cannot add {path}: {reason}")]
    Import { path: String, reason: String },
    #[error("{root} has no {path}")]
    NoSuchPath { root: String, path: String },
    #[error("no peer provided {cid} within {seconds}s")]
    Unavailable { cid: String, seconds: u64 },
    #[error("IPFS network: {0}")]
    Network(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl ContentError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}

/// Parses a CID as users write it (`Qm...`, `bafy...`).
pub fn parse_cid(text: &str) -> Result<Cid, ContentError> {
    text.trim()
        .parse()
        .map_err(|_| ContentError::BadCid(text.to_string()))
}

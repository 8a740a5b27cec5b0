//! `ipfs` inputs: a CID (optionally `CID/sub/path`, resolved by reading only the directory
//! blocks on the way) written at the target as a file or a directory, every block checked
//! against its hash. Blocks the node's store lacks come over
//! bitswap from the holders the orchestrator names (and any configured peers) within a
//! timeout that names the CID; a node without an IPFS node bids only for CIDs it holds.

use bacalhau_compute::executor::BoxFuture;
use bacalhau_compute::{InputError, InputRequest, InputStorage, PreparedInput};
use bacalhau_content::{BlockStore, Cid};
use bacalhau_models::InputSource;

/// How missing blocks are fetched.
pub struct Fetching {
    pub network: std::sync::Arc<bacalhau_content::Network>,
    /// Peers asked for every CID, beside the holders named with the execution.
    pub peers: Vec<String>,
    pub timeout: std::time::Duration,
}

/// Reads CIDs from the node's block store, fetching what it lacks.
pub struct IpfsStorage {
    store: BlockStore,
    max_bytes: u64,
    fetching: Option<Fetching>,
}

impl IpfsStorage {
    /// Inputs of at most `max_bytes` (0: no limit) from `store`, fetched with `fetching` when
    /// the store lacks them.
    pub fn new(store: BlockStore, max_bytes: u64, fetching: Option<Fetching>) -> Self {
        Self {
            store,
            max_bytes,
            fetching,
        }
    }
}

/// The root CID and the path under it of an input's `CID` param.
fn cid_of(input: &InputSource) -> Result<(Cid, String), InputError> {
    let text = input
        .source
        .param_str("CID")
        .ok_or_else(|| InputError::Invalid(format!("ipfs input {} has no CID", input.target)))?;
    let text = text.trim().trim_start_matches("/ipfs/");
    let (root, path) = text.split_once('/').unwrap_or((text, ""));
    let cid = bacalhau_content::parse_cid(root)
        .map_err(|e| InputError::Invalid(format!("ipfs input {}: {e}", input.target)))?;
    if path.split('/').any(|part| part == "..") {
        return Err(InputError::Invalid(format!(
            "ipfs input {}: {text:?} leaves the CID's tree",
            input.target
        )));
    }
    Ok((cid, path.trim_matches('/').to_string()))
}

impl InputStorage for IpfsStorage {
    fn types(&self) -> &'static [&'static str] {
        &["ipfs"]
    }

    fn check(&self, input: &InputSource) -> Result<(), InputError> {
        let (cid, _) = cid_of(input)?;
        if self.store.has(&cid) || self.fetching.is_some() {
            Ok(())
        } else {
            Err(InputError::Unavailable {
                target: input.target.clone(),
                reason: format!(
                    "this node does not hold {cid} (fetching CIDs from other nodes is not built yet)"
                ),
            })
        }
    }

    fn prepare<'a>(
        &'a self,
        request: InputRequest<'a>,
    ) -> BoxFuture<'a, Result<PreparedInput, InputError>> {
        Box::pin(async move {
            let input = request.input;
            let (root, path) = cid_of(input)?;
            let peers: Vec<bacalhau_content::Multiaddr> = match &self.fetching {
                Some(fetching) => request
                    .peers
                    .iter()
                    .chain(&fetching.peers)
                    .filter_map(|peer| match peer.parse() {
                        Ok(address) => Some(address),
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "not an IPFS peer address");
                            None
                        }
                    })
                    .collect(),
                None => Vec::new(),
            };
            // Not pinned here: kept from collection until exported.
            let _root_hold = self.store.hold(&root);
            // A path under the root: only the blocks on the way to it are read, then its DAG.
            let cid = if path.is_empty() {
                root
            } else {
                let timeout = self
                    .fetching
                    .as_ref()
                    .map_or(std::time::Duration::ZERO, |f| f.timeout);
                bacalhau_content::resolve_path(
                    &self.store,
                    self.fetching.as_ref().map(|f| f.network.as_ref()),
                    &root,
                    &path,
                    &peers,
                    timeout,
                )
                .await
                .map_err(|e| InputError::unavailable(input, e))?
            };
            let hold = self.store.hold(&cid);
            // Bytes that came from peers: 0 when the node held every block.
            let mut fetched = 0;
            if let Some(fetching) = &self.fetching {
                fetched = fetching
                    .network
                    .fetch(&cid, &peers, fetching.timeout)
                    .await
                    .map_err(|e| InputError::unavailable(input, e))?;
                if fetched > 0 {
                    tracing::info!(%cid, bytes = fetched, "fetched over bitswap");
                }
            }
            let store = self.store.clone();
            let dest = request.dest.clone();
            let max_bytes = self.max_bytes;
            let exported = tokio::task::spawn_blocking(move || {
                bacalhau_content::export(&store, &cid, &dest).map(|exported| exported.bytes)
            })
            .await
            .map_err(|e| InputError::unavailable(input, e))?
            .map_err(|e| InputError::unavailable(input, e))?;
            drop(hold);
            if fetched > 0 {
                // What came in may push the store over its cap: make room for the next job.
                self.store.tidy_in_background();
            }
            if max_bytes > 0 && exported > max_bytes {
                let _ = tokio::fs::remove_dir_all(&request.dest).await;
                let _ = tokio::fs::remove_file(&request.dest).await;
                return Err(crate::too_large(input, exported, max_bytes));
            }
            Ok(PreparedInput {
                host_path: request.dest,
                target: request.target,
                read_write: false,
                in_tree: true,
                bytes_read: fetched,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bacalhau_models::SpecConfig;

    fn input(cid: &str) -> InputSource {
        let mut source = SpecConfig::of_type("ipfs");
        source.params.insert("CID".into(), cid.into());
        InputSource {
            source,
            alias: String::new(),
            target: "/inputs".into(),
        }
    }

    #[test]
    fn a_node_bids_only_for_cids_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlockStore::open(dir.path()).unwrap();
        std::fs::write(dir.path().join("f"), b"held").unwrap();
        let added =
            bacalhau_content::import(&store, &dir.path().join("f"), Default::default()).unwrap();
        let storage = IpfsStorage::new(store, 0, None);
        storage.check(&input(&added.root.to_string())).unwrap();
        let absent = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH";
        let refused = storage.check(&input(absent)).unwrap_err().to_string();
        assert!(refused.contains(absent), "{refused}");
        assert!(storage.check(&input("not-a-cid")).is_err());
        assert!(
            storage
                .check(&input(&format!("{}/../etc", added.root)))
                .is_err()
        );
    }
}

//! Pinning for `bacalhau data add`: the node brings a CID's blocks over bitswap into its
//! block store and pins them, answering the orchestrator's `PinRequest`.

use super::ComputeNode;

impl ComputeNode {
    /// Brings every block of a CID into the node's store (from the request's peers and any
    /// connected one) and pins it: `bacalhau data add`.
    pub async fn pin(&self, request: bacalhau_protocol::PinRequest) -> bacalhau_protocol::PinReply {
        let request_id = request.request_id;
        let reply = |bytes_fetched: u64, error: String| bacalhau_protocol::PinReply {
            request_id,
            bytes_fetched,
            error,
        };
        let (Some(blocks), Some(network)) = (&self.config.blocks, &self.config.ipfs_network) else {
            return reply(0, "this node has no IPFS node".into());
        };
        let cid = match bacalhau_content::parse_cid(&request.cid) {
            Ok(cid) => cid,
            Err(e) => return reply(0, e.to_string()),
        };
        let peers: Vec<bacalhau_content::Multiaddr> = request
            .peers
            .iter()
            .filter_map(|peer| peer.parse().ok())
            .collect();
        let hold = blocks.hold(&cid);
        let timeout = std::time::Duration::from_millis(request.timeout_ms);
        let fetched = match network.fetch(&cid, &peers, timeout).await {
            Ok(bytes) => bytes,
            Err(e) => return reply(0, e.to_string()),
        };
        let store = blocks.clone();
        let pinned = tokio::task::spawn_blocking(move || store.pin(&cid))
            .await
            .map_err(|e| e.to_string())
            .and_then(|pinned| pinned.map_err(|e| e.to_string()));
        drop(hold);
        match pinned {
            Ok(()) => {
                tracing::info!(%cid, bytes = fetched, "pinned");
                // Pinned data counts against the cap too: make room among the unpinned.
                blocks.tidy_in_background();
                reply(fetched, String::new())
            }
            Err(e) => reply(fetched, e),
        }
    }
}

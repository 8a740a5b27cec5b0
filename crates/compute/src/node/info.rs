//! What the node tells the orchestrator about itself: its node info at each handshake and
//! its load (and pinned roots, when they changed) in each heartbeat.

use super::ComputeNode;
use super::queue::needs;
use bacalhau_models::node::ComputeNodeInfo;
use bacalhau_models::{NodeInfo, Resources};
use bacalhau_protocol::Heartbeat;

impl ComputeNode {
    /// The root CIDs pinned in the node's block store, sorted.
    fn pinned_roots(&self) -> Vec<String> {
        let Some(blocks) = &self.config.blocks else {
            return Vec::new();
        };
        match blocks.pins() {
            Ok(pins) => pins.iter().map(|cid| cid.to_string()).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the pinned CIDs");
                Vec::new()
            }
        }
    }

    /// The block store's pin generation (0 without a store).
    fn pin_generation(&self) -> u64 {
        self.config
            .blocks
            .as_ref()
            .map_or(0, |b| b.pin_generation())
    }

    /// What the node tells the orchestrator about itself.
    pub fn node_info(&self) -> NodeInfo {
        let mut data_locality = self.config.data_locality.clone();
        // Read before listing: a pin in between is listed again at the next heartbeat.
        let generation = self.pin_generation();
        data_locality.ipfs = self.pinned_roots();
        *self
            .advertised_roots
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(generation);
        let capacity = self.lock_capacity();
        let mut engines: Vec<String> = self.executors.keys().map(|e| e.to_string()).collect();
        engines.sort();
        NodeInfo {
            node_id: self.config.node_id.clone(),
            node_type: bacalhau_models::node::NodeType::Compute,
            labels: self.config.labels.clone(),
            supported_protocols: vec![bacalhau_protocol::PROTOCOL.into()],
            compute_node_info: ComputeNodeInfo {
                execution_engines: engines,
                publishers: self.publishers.types(),
                storage_sources: self.storages.types(),
                max_capacity: capacity.total().clone(),
                available_capacity: capacity.available(),
                max_job_requirements: capacity.total().clone(),
                data_locality,
                address: self.config.address.clone(),
                ipfs_addresses: self.config.ipfs_addresses.clone(),
                ..Default::default()
            },
            bacalhau_version: self.config.version.clone(),
        }
    }

    /// The node's current load.
    pub fn heartbeat(&self) -> Heartbeat {
        let queue = self.lock_queue();
        let mut queued = Resources::default();
        for execution in queue.waiting() {
            queued.add(&needs(execution));
        }
        let (running, enqueued) = (queue.n_running() as u64, queue.n_waiting() as u64);
        drop(queue);
        // Roots travel only when pins changed (published results add them between beats); the
        // store is listed only then, not on every beat.
        let generation = self.pin_generation();
        let mut advertised = self
            .advertised_roots
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let ipfs_roots = (*advertised != Some(generation)).then(|| self.pinned_roots());
        *advertised = Some(generation);
        drop(advertised);
        Heartbeat {
            available: self.lock_capacity().available(),
            queued,
            running,
            enqueued,
            ipfs_roots,
        }
    }
}

//! The compute node: [`ComputeNode`], its configuration, start and recovery after a restart,
//! and the wiring from the orchestrator's messages to the concerns below.
//!
//! Each concern adds its own `impl ComputeNode` block in `node/`: `admission.rs` (whether the
//! node takes an execution: the checks and `accept`), `queue.rs` (the wait queue, capacity and
//! cancelling: what runs next when capacity frees), `runner.rs` (running one execution: inputs,
//! executor, timeout, publish, its final report), `report.rs` (a state change and its report in
//! one transaction), `info.rs` (node info and heartbeats) and `pin.rs` (`bacalhau data add`).

mod admission;
mod info;
mod pin;
mod queue;
mod report;
mod runner;

use crate::capacity::CapacityTracker;
use crate::executor::Executor;
use crate::inputs::Storages;
use crate::publisher::Publishers;
use crate::store::{NodeStore, StoreError};
use bacalhau_channel::reliable::{Delivery, delivery};
use bacalhau_models::node::DataLocality;
use bacalhau_models::{ExecutionId, ExecutionStateType, NodeId, Resources};
use bacalhau_protocol::Message;
use queue::Queue;
use report::Report;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, watch};

pub use bacalhau_channel::{Connector, Link};

/// How the compute node is set up.
#[derive(Debug, Clone)]
pub struct ComputeConfig {
    /// The node's ID.
    pub node_id: NodeId,
    /// Labels jobs select the node by.
    pub labels: BTreeMap<String, String>,
    /// Where the node keeps its store.
    pub data_dir: PathBuf,
    /// The join token.
    pub token: String,
    /// Resources the node offers to jobs.
    pub capacity: Resources,
    /// Whether jobs that ask for network access are refused and `Default` networking means
    /// none (`JobAdmissionControl.RejectNetworkedJobs`, as upstream v1.7+).
    pub reject_networked_jobs: bool,
    /// The largest result an execution may publish, in bytes (0: no limit).
    pub max_result_bytes: u64,
    /// The data the node holds, advertised so the scheduler can place jobs next to it.
    pub data_locality: DataLocality,
    /// Host variables jobs may read with `env:NAME` (`Compute.Env.AllowList`).
    pub env_allow_list: crate::env::EnvAllowList,
    /// Host ports for jobs that publish ports (`Compute.Network.PortRangeStart/End`).
    pub ports: Arc<crate::ports::PortAllocator>,
    /// The build the node runs, reported in its node info.
    pub version: bacalhau_models::node::BuildVersionInfo,
    /// Where the node serves its results and blocks (`http://host:port`), for clients.
    pub address: String,
    /// The node's block store: its pinned roots are advertised for placement by CID.
    pub blocks: Option<bacalhau_content::BlockStore>,
    /// Where the node's IPFS node takes bitswap connections.
    pub ipfs_addresses: Vec<String>,
    /// The node's IPFS node, which brings the CIDs it is asked to pin.
    pub ipfs_network: Option<Arc<bacalhau_content::Network>>,
}

/// What a node runs executions with: engines, input storages and publishers.
#[derive(Clone, Default)]
pub struct Providers {
    /// The engines.
    pub executors: Vec<Arc<dyn Executor>>,
    /// The input sources.
    pub storages: Storages,
    /// The publishers.
    pub publishers: Publishers,
    /// Where the node counts its work (shared with engines that count their own, such as
    /// Docker's image pulls).
    pub metrics: crate::metrics::ComputeMetrics,
}

/// A compute node.
pub struct ComputeNode {
    config: ComputeConfig,
    store: NodeStore,
    executors: HashMap<&'static str, Arc<dyn Executor>>,
    storages: Storages,
    publishers: Publishers,
    capacity: Mutex<CapacityTracker>,
    queue: Mutex<Queue>,
    /// Wakes the session when the outbox has new messages.
    pub(crate) outbox_wake: Notify,
    runner_wake: Notify,
    /// The block store's pin generation when the roots were last told to the orchestrator.
    advertised_roots: Mutex<Option<u64>>,
    /// IPFS holders of each accepted execution's CIDs, until it runs.
    ipfs_peers: Mutex<HashMap<ExecutionId, Vec<String>>>,
    /// The node's figures.
    metrics: crate::metrics::ComputeMetrics,
}

impl ComputeNode {
    /// Opens the node's store and recovers executions interrupted by a restart.
    pub async fn start(
        config: ComputeConfig,
        providers: Providers,
    ) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StoreError::Db(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = NodeStore::open(&config.data_dir.join("compute.redb"))?;
        let node = Arc::new(Self {
            capacity: Mutex::new(CapacityTracker::new(config.capacity.clone())),
            executors: providers
                .executors
                .into_iter()
                .map(|e| (e.engine(), e))
                .collect(),
            storages: providers.storages,
            publishers: providers.publishers,
            config,
            store,
            queue: Mutex::new(Queue::default()),
            outbox_wake: Notify::new(),
            runner_wake: Notify::new(),
            advertised_roots: Mutex::new(None),
            ipfs_peers: Mutex::new(HashMap::new()),
            metrics: providers.metrics,
        });
        node.recover().await?;
        Ok(node)
    }

    /// Accepted executions wait again; ones that were running when the node died have lost
    /// their process, so they are reported failed and the orchestrator decides on a retry.
    async fn recover(&self) -> Result<(), StoreError> {
        for local in self.store.executions()? {
            match local.state {
                ExecutionStateType::BidAccepted => self.lock_queue().push(local.execution),
                ExecutionStateType::Running | ExecutionStateType::Publishing => {
                    self.report(
                        &local.execution,
                        ExecutionStateType::Failed,
                        Report::message(
                            "the compute node restarted while the execution was running",
                        ),
                    )
                    .await?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_capacity(&self) -> std::sync::MutexGuard<'_, CapacityTracker> {
        self.capacity.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Vec<String>>> {
        self.ipfs_peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node's figures (counters and histograms are current; call
    /// [`ComputeNode::refresh_metrics`] before reading the gauges).
    pub fn metrics(&self) -> &crate::metrics::ComputeMetrics {
        &self.metrics
    }

    /// Sets the gauges from the queue and the capacity tracker (before they are scraped).
    pub fn refresh_metrics(&self) {
        let (running, queued) = {
            let queue = self.lock_queue();
            (queue.n_running(), queue.n_waiting())
        };
        self.metrics
            .running
            .set(i64::try_from(running).unwrap_or(i64::MAX));
        self.metrics
            .queued
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        let capacity = self.lock_capacity();
        self.metrics
            .set_capacity(capacity.total(), &capacity.available());
    }

    /// The node's store.
    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    /// Where an execution's files (logs, results) live on this node.
    pub fn execution_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("executions").join(id)
    }

    /// Whether an execution is over, so its log will not grow any more; `None` while this
    /// node has not heard of it (or cannot read its store).
    pub fn execution_finished(&self, id: &str) -> Option<bool> {
        match self.store.state(id) {
            Ok(Some(state)) => Some(state.is_terminal()),
            _ => None,
        }
    }

    /// The join token.
    pub(crate) fn token(&self) -> &str {
        &self.config.token
    }

    /// Connects to the orchestrator and serves it until `stop` turns true, reconnecting
    /// whenever the connection drops.
    pub async fn run(self: Arc<Self>, connector: Connector, stop: watch::Receiver<bool>) {
        let runner = tokio::spawn(Arc::clone(&self).run_queue(stop.clone()));
        crate::session::run_sessions(&self, connector, stop).await;
        runner.abort();
    }

    /// Applies one message from the orchestrator with its sequence number, in one
    /// transaction; a replayed message (at or below the applied sequence) changes nothing.
    /// Returns the message that should have come first when one is missing (nothing applied:
    /// the session drops the connection and the handshake resumes from the last applied).
    pub(crate) async fn handle_message(
        self: &Arc<Self>,
        seq: u64,
        message: Message,
    ) -> Result<Option<u64>, StoreError> {
        // Decided before any effect in memory (stopping a run, leaving the queue): a replay or
        // a message after a gap must change nothing. The session hands over one message at a
        // time, and `NodeStore::apply` checks again in the transaction.
        match delivery(self.store.applied_in()?, seq) {
            Delivery::Replay => return Ok(None),
            Delivery::Gap { expected } => return Ok(Some(expected)),
            Delivery::Apply => {}
        }
        match message {
            Message::RunExecution {
                execution,
                ipfs_peers,
            } => {
                if !ipfs_peers.is_empty() {
                    self.lock_peers().insert(execution.id.clone(), ipfs_peers);
                }
                self.accept(seq, *execution).await
            }
            Message::CancelExecution {
                execution_id,
                reason,
            } => self.cancel(seq, execution_id, reason).await,
            Message::ExecutionUpdate(_) => {
                tracing::warn!("the orchestrator sent an execution update; ignored");
                Ok(self.store.apply(seq, |_| Ok(())).await?.missing())
            }
        }
    }
}

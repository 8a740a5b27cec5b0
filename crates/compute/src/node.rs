//! The compute node: accepts executions, queues them by capacity, runs them, reports back.

use crate::capacity::CapacityTracker;
use crate::executor::{BoxFuture, ExecutionContext, Executor, ExecutorError};
use crate::inputs::{InputError, Partition, Storages};
use crate::publisher::{PublishError, PublishRequest, Published, Publishers};
use crate::store::{LocalExecution, NodeStore, StoreError};
use bacalhau_channel::reliable::{Delivery, delivery};
use bacalhau_models::node::{ComputeNodeInfo, DataLocality};
use bacalhau_models::task::NetworkType;
use bacalhau_models::{
    Execution, ExecutionId, ExecutionStateType, NodeId, NodeInfo, Resources, RunCommandResult,
    SpecConfig, Task,
};
use bacalhau_protocol::{ExecutionUpdate, Heartbeat, Message, RETRYABLE};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
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
}

/// How an execution that ran to an exit code ended.
struct Finished {
    output: RunCommandResult,
    published: Option<Published>,
    input_bytes: Vec<(String, u64)>,
}

/// What a state change reports besides the state.
#[derive(Default)]
struct Report {
    message: String,
    run_output: Option<RunCommandResult>,
    published_result: Option<SpecConfig>,
    details: BTreeMap<String, String>,
}

impl Report {
    fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Default::default()
        }
    }
}

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Execution>,
    running: HashMap<ExecutionId, watch::Sender<bool>>,
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
}

fn needs(execution: &Execution) -> Resources {
    let mut total = Resources::default();
    for resources in execution.allocated_resources.tasks.values() {
        total.add(resources);
    }
    total
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
        });
        node.recover().await?;
        Ok(node)
    }

    /// Accepted executions wait again; ones that were running when the node died have lost
    /// their process, so they are reported failed and the orchestrator decides on a retry.
    async fn recover(&self) -> Result<(), StoreError> {
        for local in self.store.executions()? {
            match local.state {
                ExecutionStateType::BidAccepted => {
                    self.lock_queue().waiting.push_back(local.execution)
                }
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

    /// The node's store.
    pub fn store(&self) -> &NodeStore {
        &self.store
    }

    fn lock_peers(&self) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, Vec<String>>> {
        self.ipfs_peers.lock().unwrap_or_else(|e| e.into_inner())
    }

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
        for execution in &queue.waiting {
            queued.add(&needs(execution));
        }
        let (running, enqueued) = (queue.running.len() as u64, queue.waiting.len() as u64);
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

    /// Where an execution's files (logs, results) live on this node.
    pub fn execution_dir(&self, id: &str) -> PathBuf {
        self.config.data_dir.join("executions").join(id)
    }

    /// Whether an execution is over (or unknown here): its log will not grow any more.
    pub fn execution_finished(&self, id: &str) -> bool {
        match self.store.state(id) {
            Ok(Some(state)) => state.is_terminal(),
            _ => true,
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
        &self,
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

    /// Decides whether this node runs `execution`: the engine must exist, the node must be
    /// able to fetch the inputs and publish the results, and the job must fit.
    fn bid(&self, execution: &Execution) -> Result<(), String> {
        let Some(task) = execution.job.as_ref().and_then(|j| j.task()) else {
            return Err("the execution carries no task".into());
        };
        let engine = &task.engine.r#type;
        if !self.executors.contains_key(engine.as_str()) {
            return Err(format!("this node does not support engine {engine:?}"));
        }
        self.storages.check(task).map_err(|e| e.to_string())?;
        self.publishers.check(task).map_err(|e| e.to_string())?;
        self.config.env_allow_list.check(task)?;
        let network = task.network.r#type;
        if !matches!(network, NetworkType::Default | NetworkType::None)
            && self.config.reject_networked_jobs
        {
            return Err(format!(
                "this node rejects networked jobs (network {network}); see JobAdmissionControl.RejectNetworkedJobs"
            ));
        }
        if !self.lock_capacity().could_fit(&needs(execution)) {
            return Err("this node does not have enough capacity to ever run the job".into());
        }
        Ok(())
    }

    async fn accept(&self, seq: u64, execution: Execution) -> Result<Option<u64>, StoreError> {
        let verdict = self.bid(&execution);
        let accepted = verdict.is_ok();
        if !accepted {
            self.lock_peers().remove(&execution.id);
        }
        let queued = execution.clone();
        let fresh = self
            .store
            .apply(seq, move |t| {
                // Already here under another message (the orchestrator resent it).
                if t.execution(execution.id.as_str())?.is_some() {
                    return Ok(false);
                }
                let (state, message) = match verdict {
                    Ok(()) => (ExecutionStateType::BidAccepted, String::new()),
                    Err(reason) => (ExecutionStateType::AskForBidRejected, reason),
                };
                t.put_execution(&LocalExecution {
                    execution: execution.clone(),
                    state,
                    message: message.clone(),
                })?;
                t.enqueue(&update(&execution, state, Report::message(message)))?;
                Ok(true)
            })
            .await?;
        let missing = fresh.missing();
        if fresh.done().unwrap_or(false) {
            self.outbox_wake.notify_waiters();
            if accepted {
                self.lock_queue().waiting.push_back(queued);
                self.runner_wake.notify_one();
            }
        }
        Ok(missing)
    }

    async fn cancel(
        &self,
        seq: u64,
        id: ExecutionId,
        reason: String,
    ) -> Result<Option<u64>, StoreError> {
        // A running execution stops through its executor, which reports the end itself.
        if let Some(stop) = self.lock_queue().running.get(&id) {
            let _ = stop.send(true);
        }
        let was_waiting = {
            let mut queue = self.lock_queue();
            let before = queue.waiting.len();
            queue.waiting.retain(|e| e.id != id);
            queue.waiting.len() != before
        };
        let cancelled = self
            .store
            .apply(seq, move |t| {
                let Some(local) = t.execution(id.as_str())? else {
                    return Ok(false);
                };
                if local.state.is_terminal() || !was_waiting {
                    return Ok(false);
                }
                t.put_state(id.as_str(), ExecutionStateType::Cancelled, &reason)?;
                t.enqueue(&update(
                    &local.execution,
                    ExecutionStateType::Cancelled,
                    Report::message(reason),
                ))?;
                Ok(true)
            })
            .await?;
        let missing = cancelled.missing();
        if cancelled.done().unwrap_or(false) {
            self.outbox_wake.notify_waiters();
        }
        Ok(missing)
    }

    /// Records a state change of an execution and queues its report, in one transaction.
    async fn report(
        &self,
        execution: &Execution,
        state: ExecutionStateType,
        report: Report,
    ) -> Result<(), StoreError> {
        let execution = execution.clone();
        self.store
            .write(move |t| {
                match t.state(execution.id.as_str())? {
                    Some((current, _)) if current.is_terminal() => return Ok(()),
                    Some(_) => t.put_state(execution.id.as_str(), state, &report.message)?,
                    None => t.put_execution(&LocalExecution {
                        execution: execution.clone(),
                        state,
                        message: report.message.clone(),
                    })?,
                }
                t.enqueue(&update(&execution, state, report))?;
                Ok(())
            })
            .await?;
        self.outbox_wake.notify_waiters();
        Ok(())
    }

    /// The queue runner: starts waiting executions in order as capacity allows.
    async fn run_queue(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let notified = self.runner_wake.notified();
            loop {
                let next = {
                    let mut queue = self.lock_queue();
                    let Some(front) = queue.waiting.front() else {
                        break;
                    };
                    // First come, first served: a large job at the head waits for room rather
                    // than being overtaken forever by small ones.
                    if !self.lock_capacity().try_reserve(&needs(front)) {
                        break;
                    }
                    let execution = queue.waiting.pop_front();
                    if let Some(execution) = &execution {
                        let (cancel, _) = watch::channel(false);
                        queue.running.insert(execution.id.clone(), cancel);
                    }
                    execution
                };
                let Some(execution) = next else { break };
                tokio::spawn(Arc::clone(&self).execute(execution));
            }
            tokio::select! {
                _ = notified => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn execute(self: Arc<Self>, execution: Execution) {
        let cancel = self
            .lock_queue()
            .running
            .get(&execution.id)
            .map(|sender| sender.subscribe());
        let outcome = match cancel {
            Some(cancel) => self.run_execution(&execution, cancel).await,
            None => Err(ExecutorError::Cancelled),
        };
        let (state, report) = match outcome {
            Ok(finished) => {
                let mut report = Report::default();
                for (target, bytes) in &finished.input_bytes {
                    report
                        .details
                        .insert(format!("InputBytes:{target}"), bytes.to_string());
                }
                if let Some(published) = finished.published {
                    report
                        .details
                        .insert("PublishedBytes".into(), published.bytes.to_string());
                    report.published_result = published.result;
                }
                let exit_code = finished.output.exit_code;
                report.run_output = Some(finished.output);
                if exit_code == 0 {
                    (ExecutionStateType::Completed, report)
                } else {
                    // The program itself failed: another attempt would fail the same way.
                    report.details.insert(RETRYABLE.into(), "false".into());
                    report.message = format!("exited with code {exit_code}");
                    (ExecutionStateType::Failed, report)
                }
            }
            Err(ExecutorError::Cancelled) => (
                ExecutionStateType::Cancelled,
                Report::message("execution cancelled"),
            ),
            Err(e) => {
                let mut report = Report::message(e.to_string());
                report
                    .details
                    .insert(RETRYABLE.into(), e.retryable().to_string());
                report.run_output = Some(RunCommandResult {
                    error_msg: report.message.clone(),
                    ..Default::default()
                });
                (ExecutionStateType::Failed, report)
            }
        };
        if let Err(e) = self.report(&execution, state, report).await {
            tracing::error!(execution = %execution.id, error = %e, "cannot record the end of an execution");
        }
        self.lock_queue().running.remove(&execution.id);
        self.lock_capacity().release(&needs(&execution));
        self.runner_wake.notify_one();
    }

    async fn run_execution(
        &self,
        execution: &Execution,
        cancel: watch::Receiver<bool>,
    ) -> Result<Finished, ExecutorError> {
        let task = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .cloned()
            .ok_or_else(|| ExecutorError::InvalidSpec("the execution carries no task".into()))?;
        let engine = task.engine.r#type.clone();
        let executor = self
            .executors
            .get(engine.as_str())
            .cloned()
            .ok_or_else(|| ExecutorError::Failed(format!("no executor for engine {engine:?}")))?;
        self.report(execution, ExecutionStateType::Running, Report::default())
            .await
            .map_err(|e| ExecutorError::Failed(e.to_string()))?;
        let work_dir = self.execution_dir(execution.id.as_str());
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            ExecutorError::Failed(format!("cannot create {}: {e}", work_dir.display()))
        })?;
        let partition = Partition {
            index: execution.partition_index,
            count: execution
                .job
                .as_ref()
                .map_or(1, |j| u64::try_from(j.count).unwrap_or(1).max(1)),
        };
        // The holders named with the execution; a restarted node no longer knows them and
        // reads only what it holds.
        let peers = self.lock_peers().remove(&execution.id).unwrap_or_default();
        let inputs = self
            .storages
            .prepare(&task, &work_dir, partition, &peers)
            .await;
        if inputs.is_err() {
            // Whatever arrived before the failure is of no use.
            let _ = tokio::fs::remove_dir_all(crate::inputs::root(&work_dir)).await;
        }
        let inputs = inputs.map_err(|e| match e {
            InputError::Invalid(reason) => ExecutorError::InvalidSpec(reason),
            other => ExecutorError::Failed(other.to_string()),
        })?;
        let input_bytes = inputs
            .iter()
            .filter(|i| i.in_tree)
            .map(|i| (i.target.clone(), i.bytes_read))
            .collect();
        let publishing = !task.publisher.is_empty();
        let results = if publishing {
            crate::publisher::prepare_results(&task, &work_dir).map_err(publish_error)?
        } else {
            Vec::new()
        };
        // Host variables are resolved into this run's copy of the job only; what is stored
        // and reported keeps the `env:NAME` references.
        let env = self
            .config
            .env_allow_list
            .resolve(&task)
            .map_err(ExecutorError::InvalidSpec)?;
        let mut run = execution.clone();
        let mut held_ports = Vec::new();
        if let Some(first) = run.job.as_mut().and_then(|j| j.tasks.first_mut()) {
            first.env = env;
            // A node that rejects networked jobs runs `Default` ones without a network.
            if self.config.reject_networked_jobs && first.network.r#type == NetworkType::Default {
                first.network.r#type = NetworkType::None;
            }
            // Published ports get host ports of this node for the length of the run.
            if !first.network.ports.is_empty() {
                let bridge = first.network.r#type == NetworkType::Bridge;
                if let Err(e) = self.config.ports.allocate(&mut first.network.ports, bridge) {
                    let _ = tokio::fs::remove_dir_all(crate::inputs::root(&work_dir)).await;
                    return Err(ExecutorError::Failed(e));
                }
                held_ports = first.network.ports.clone();
            }
        }
        let context = ExecutionContext {
            execution: run,
            cancel: cancel.clone(),
            work_dir: work_dir.clone(),
            inputs,
            results,
        };
        let output = self
            .run_with_timeout(execution, &task, executor.run(context), cancel)
            .await;
        self.config.ports.release(&held_ports);
        // Inputs fetched onto the node are not needed once the run is over.
        let _ = tokio::fs::remove_dir_all(crate::inputs::root(&work_dir)).await;
        let output = output?;
        let published = if publishing {
            Some(self.publish(execution, &task, &work_dir, &output).await?)
        } else {
            None
        };
        Ok(Finished {
            output,
            published,
            input_bytes,
        })
    }

    /// Runs an executor's future, stopping it when the task's execution timeout passes.
    async fn run_with_timeout(
        &self,
        execution: &Execution,
        task: &Task,
        run: BoxFuture<'_, Result<RunCommandResult, ExecutorError>>,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunCommandResult, ExecutorError> {
        let timeout_secs = task.timeouts.execution_timeout;
        tokio::pin!(run);
        if timeout_secs <= 0 {
            return run.await;
        }
        let limit = Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(0));
        tokio::select! {
            result = &mut run => result,
            _ = tokio::time::sleep(limit) => {
                // Ask the executor to stop, then wait for it to clean up.
                if let Some(stop) = self.lock_queue().running.get(&execution.id) {
                    let _ = stop.send(true);
                }
                let _ = cancel.changed().await;
                let _ = run.await;
                Err(ExecutorError::JobFault(format!(
                    "execution timed out: it took longer than {timeout_secs}s"
                )))
            }
        }
    }

    /// Writes the run's `stdout`, `stderr` and `exitCode` beside its result paths and hands
    /// the directory to the task's publisher.
    async fn publish(
        &self,
        execution: &Execution,
        task: &Task,
        work_dir: &std::path::Path,
        output: &RunCommandResult,
    ) -> Result<Published, ExecutorError> {
        self.report(execution, ExecutionStateType::Publishing, Report::default())
            .await
            .map_err(|e| ExecutorError::Failed(e.to_string()))?;
        let results_dir = crate::publisher::results_dir(work_dir);
        crate::logs::write_streams(work_dir, &results_dir)
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot write the run's output: {e}")))?;
        tokio::fs::write(results_dir.join("exitCode"), output.exit_code.to_string())
            .await
            .map_err(|e| ExecutorError::Failed(format!("cannot write the exit code: {e}")))?;
        let limit = self.config.max_result_bytes;
        if limit > 0 {
            let size = crate::publisher::dir_size(&results_dir)
                .map_err(|e| ExecutorError::Failed(format!("cannot size the results: {e}")))?;
            if size > limit {
                return Err(ExecutorError::JobFault(format!(
                    "the results are {size} bytes, more than this node publishes ({limit} bytes)"
                )));
            }
        }
        let publisher = self
            .publishers
            .get(&task.publisher)
            .map_err(publish_error)?;
        let published = publisher
            .publish(PublishRequest {
                execution,
                spec: &task.publisher,
                results_dir: &results_dir,
            })
            .await
            .map_err(publish_error)?;
        // The publisher has its own copy now (an archive, an upload).
        let _ = tokio::fs::remove_dir_all(&results_dir).await;
        Ok(published)
    }
}

fn publish_error(e: PublishError) -> ExecutorError {
    match e {
        PublishError::Invalid(reason) => ExecutorError::InvalidSpec(reason),
        other => ExecutorError::Failed(other.to_string()),
    }
}

fn update(execution: &Execution, state: ExecutionStateType, report: Report) -> Message {
    Message::ExecutionUpdate(ExecutionUpdate {
        execution_id: execution.id.clone(),
        job_id: execution.job_id.clone(),
        state,
        message: report.message,
        run_output: report.run_output,
        published_result: report.published_result,
        details: report.details,
    })
}

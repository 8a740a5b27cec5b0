//! The compute node: accepts executions, queues them by capacity, runs them, reports back.

use crate::capacity::CapacityTracker;
use crate::executor::{BoxFuture, ExecutionContext, Executor, ExecutorError};
use crate::store::{LocalExecution, NodeStore, StoreError};
use bacalhau_models::node::ComputeNodeInfo;
use bacalhau_models::{
    Execution, ExecutionId, ExecutionStateType, NodeId, NodeInfo, Resources, RunCommandResult,
};
use bacalhau_protocol::{ExecutionUpdate, Frame, Heartbeat, Message, RETRYABLE};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

/// Both directions of one connection to the orchestrator.
pub struct Link {
    /// Frames to the orchestrator.
    pub outgoing: mpsc::Sender<Frame>,
    /// Frames from the orchestrator.
    pub incoming: mpsc::Receiver<Frame>,
}

/// Opens a new connection to an orchestrator (a WebSocket, or an in-process pair).
pub type Connector = Arc<dyn Fn() -> BoxFuture<'static, Result<Link, String>> + Send + Sync>;

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
    /// Publishers the node supports.
    pub publishers: Vec<String>,
    /// Input source types the node can fetch.
    pub storage_sources: Vec<String>,
    /// Whether jobs may ask for network access (`JobAdmissionControl.AcceptNetworkedJobs`).
    pub accept_networked_jobs: bool,
    /// Host paths jobs may mount (`Compute.AllowListedLocalPaths`).
    pub allowed_local_paths: crate::inputs::AllowList,
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
    capacity: Mutex<CapacityTracker>,
    queue: Mutex<Queue>,
    /// Wakes the session when the outbox has new messages.
    pub(crate) outbox_wake: Notify,
    runner_wake: Notify,
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
        executors: Vec<Arc<dyn Executor>>,
    ) -> Result<Arc<Self>, StoreError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            StoreError::Db(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = NodeStore::open(&config.data_dir.join("compute.redb"))?;
        let node = Arc::new(Self {
            capacity: Mutex::new(CapacityTracker::new(config.capacity.clone())),
            executors: executors.into_iter().map(|e| (e.engine(), e)).collect(),
            config,
            store,
            queue: Mutex::new(Queue::default()),
            outbox_wake: Notify::new(),
            runner_wake: Notify::new(),
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
                        "the compute node restarted while the execution was running".into(),
                        None,
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

    /// What the node tells the orchestrator about itself.
    pub fn node_info(&self) -> NodeInfo {
        let capacity = self.lock_capacity();
        let mut engines: Vec<String> = self.executors.keys().map(|e| e.to_string()).collect();
        engines.sort();
        NodeInfo {
            node_id: self.config.node_id.clone(),
            node_type: "Compute".into(),
            labels: self.config.labels.clone(),
            supported_protocols: vec![bacalhau_protocol::PROTOCOL.into()],
            compute_node_info: ComputeNodeInfo {
                execution_engines: engines,
                publishers: self.config.publishers.clone(),
                storage_sources: self.config.storage_sources.clone(),
                max_capacity: capacity.total().clone(),
                available_capacity: capacity.available(),
                max_job_requirements: capacity.total().clone(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The node's current load.
    pub fn heartbeat(&self) -> Heartbeat {
        let queue = self.lock_queue();
        let mut queued = Resources::default();
        for execution in &queue.waiting {
            queued.add(&needs(execution));
        }
        Heartbeat {
            available: self.lock_capacity().available(),
            queued,
            running: queue.running.len() as u64,
            enqueued: queue.waiting.len() as u64,
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
    pub(crate) async fn handle_message(
        &self,
        seq: u64,
        message: Message,
    ) -> Result<(), StoreError> {
        match message {
            Message::RunExecution { execution } => self.accept(seq, *execution).await,
            Message::CancelExecution {
                execution_id,
                reason,
            } => self.cancel(seq, execution_id, reason).await,
            Message::ExecutionUpdate(_) => {
                tracing::warn!("the orchestrator sent an execution update; ignored");
                self.store
                    .write(move |t| {
                        if seq > t.applied_in()? {
                            t.set_applied_in(seq)?;
                        }
                        Ok(())
                    })
                    .await
            }
        }
    }

    /// Decides whether this node runs `execution`: the engine must exist and the job must fit.
    fn bid(&self, execution: &Execution) -> Result<(), String> {
        let engine = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .map(|t| t.engine.r#type.clone())
            .unwrap_or_default();
        if !self.executors.contains_key(engine.as_str()) {
            return Err(format!("this node does not support engine {engine:?}"));
        }
        let network = execution
            .job
            .as_ref()
            .and_then(|j| j.task())
            .map(|t| t.network.r#type.clone())
            .unwrap_or_default();
        if !matches!(network.as_str(), "" | "Default" | "None")
            && !self.config.accept_networked_jobs
        {
            return Err(format!(
                "this node does not accept networked jobs (network {network}); see JobAdmissionControl.AcceptNetworkedJobs"
            ));
        }
        if !self.lock_capacity().could_fit(&needs(execution)) {
            return Err("this node does not have enough capacity to ever run the job".into());
        }
        Ok(())
    }

    async fn accept(&self, seq: u64, execution: Execution) -> Result<(), StoreError> {
        let verdict = self.bid(&execution);
        let accepted = verdict.is_ok();
        let queued = execution.clone();
        let fresh = self
            .store
            .write(move |t| {
                if seq <= t.applied_in()? || t.execution(execution.id.as_str())?.is_some() {
                    if seq > t.applied_in()? {
                        t.set_applied_in(seq)?;
                    }
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
                t.enqueue(&update(&execution, state, message, None))?;
                t.set_applied_in(seq)?;
                Ok(true)
            })
            .await?;
        if fresh {
            self.outbox_wake.notify_waiters();
            if accepted {
                self.lock_queue().waiting.push_back(queued);
                self.runner_wake.notify_one();
            }
        }
        Ok(())
    }

    async fn cancel(&self, seq: u64, id: ExecutionId, reason: String) -> Result<(), StoreError> {
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
            .write(move |t| {
                if seq <= t.applied_in()? {
                    return Ok(false);
                }
                t.set_applied_in(seq)?;
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
                    reason,
                    None,
                ))?;
                Ok(true)
            })
            .await?;
        if cancelled {
            self.outbox_wake.notify_waiters();
        }
        Ok(())
    }

    /// Records a state change of an execution and queues its report, in one transaction.
    async fn report(
        &self,
        execution: &Execution,
        state: ExecutionStateType,
        message: String,
        run_output: Option<RunCommandResult>,
    ) -> Result<(), StoreError> {
        self.report_with(execution, state, message, run_output, BTreeMap::new())
            .await
    }

    /// [`ComputeNode::report`] with machine-readable details.
    async fn report_with(
        &self,
        execution: &Execution,
        state: ExecutionStateType,
        message: String,
        run_output: Option<RunCommandResult>,
        details: BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        let execution = execution.clone();
        self.store
            .write(move |t| {
                match t.state(execution.id.as_str())? {
                    Some((current, _)) if current.is_terminal() => return Ok(()),
                    Some(_) => t.put_state(execution.id.as_str(), state, &message)?,
                    None => t.put_execution(&LocalExecution {
                        execution: execution.clone(),
                        state,
                        message: message.clone(),
                    })?,
                }
                let mut message = update(&execution, state, message, run_output);
                if let Message::ExecutionUpdate(u) = &mut message {
                    u.details = details;
                }
                t.enqueue(&message)?;
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
        let mut details = BTreeMap::new();
        let (state, message, output) = match outcome {
            Ok(output) if output.exit_code == 0 => {
                (ExecutionStateType::Completed, String::new(), Some(output))
            }
            Ok(output) => {
                // The program itself failed: another attempt would fail the same way.
                details.insert(RETRYABLE.to_string(), "false".to_string());
                let message = format!("exited with code {}", output.exit_code);
                (ExecutionStateType::Failed, message, Some(output))
            }
            Err(ExecutorError::Cancelled) => (
                ExecutionStateType::Cancelled,
                "execution cancelled".to_string(),
                None,
            ),
            Err(e) => {
                details.insert(RETRYABLE.to_string(), e.retryable().to_string());
                let message = e.to_string();
                let output = RunCommandResult {
                    error_msg: message.clone(),
                    ..Default::default()
                };
                (ExecutionStateType::Failed, message, Some(output))
            }
        };
        if let Err(e) = self
            .report_with(&execution, state, message, output, details)
            .await
        {
            tracing::error!(execution = %execution.id, error = %e, "cannot record the end of an execution");
        }
        self.lock_queue().running.remove(&execution.id);
        self.lock_capacity().release(&needs(&execution));
        self.runner_wake.notify_one();
    }

    async fn run_execution(
        &self,
        execution: &Execution,
        mut cancel: watch::Receiver<bool>,
    ) -> Result<RunCommandResult, ExecutorError> {
        let task = execution.job.as_ref().and_then(|j| j.task()).cloned();
        let engine = task
            .as_ref()
            .map(|t| t.engine.r#type.clone())
            .unwrap_or_default();
        let executor = self
            .executors
            .get(engine.as_str())
            .cloned()
            .ok_or_else(|| ExecutorError::Failed(format!("no executor for engine {engine:?}")))?;
        self.report(execution, ExecutionStateType::Running, String::new(), None)
            .await
            .map_err(|e| ExecutorError::Failed(e.to_string()))?;
        let timeout_secs = task.as_ref().map_or(0, |t| t.timeouts.execution_timeout);
        let work_dir = self
            .config
            .data_dir
            .join("executions")
            .join(execution.id.as_str());
        std::fs::create_dir_all(&work_dir).map_err(|e| {
            ExecutorError::Failed(format!("cannot create {}: {e}", work_dir.display()))
        })?;
        let inputs = match &task {
            Some(task) => crate::inputs::prepare(task, &work_dir, &self.config.allowed_local_paths)
                .await
                .map_err(|e| ExecutorError::InvalidSpec(e.to_string()))?,
            None => Vec::new(),
        };
        let context = ExecutionContext {
            execution: execution.clone(),
            cancel: cancel.clone(),
            work_dir,
            inputs,
        };
        let run = executor.run(context);
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
}

fn update(
    execution: &Execution,
    state: ExecutionStateType,
    message: String,
    run_output: Option<RunCommandResult>,
) -> Message {
    Message::ExecutionUpdate(ExecutionUpdate {
        execution_id: execution.id.clone(),
        job_id: execution.job_id.clone(),
        state,
        message,
        run_output,
        published_result: None,
        details: BTreeMap::new(),
    })
}

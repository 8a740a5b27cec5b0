//! Schedulers turn an evaluation and a snapshot of the cluster into a [`Plan`], without side
//! effects; [`crate::planner::apply`] is the one place a plan is written.
//!
//! Node selection is a pipeline: [`feasible`] checks say yes or no with a reason, [`rank`]ers
//! only score. Batch and service jobs use [`batch::BatchScheduler`]; ops and daemon jobs,
//! which target every matching node, use [`all_nodes::AllNodesScheduler`].

pub mod all_nodes;
pub mod batch;
pub(crate) mod common;
pub mod feasible;
pub mod rank;
mod select;

use bacalhau_models::history::{Event, Topic};
use bacalhau_models::{
    Evaluation, EvaluationId, Execution, ExecutionId, Job, JobHistory, JobHistoryType,
    JobStateType, JobType, NodeId, NodeState, Resources, State, Timestamp, node, time,
};
use std::collections::BTreeMap;
use std::sync::Arc;

pub use select::{Selection, select_nodes};

/// A node as the scheduler sees it: its state plus what this snapshot already asks of it.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The node's stored state, shared with the node manager: a snapshot of thousands of
    /// nodes per evaluation copies pointers, not node records.
    pub state: Arc<NodeState>,
    /// Whether the node's connection is up.
    pub connected: bool,
    /// Whether the node has been gone past the grace period: its executions are given up.
    pub lost: bool,
    /// For a node that dropped off (or has not reconnected since an orchestrator restart) and
    /// is still within its grace period: when it will count as lost. Until then a job that
    /// only it could run waits for it instead of failing.
    pub returns_by: Option<Timestamp>,
}

impl NodeView {
    /// The node's ID.
    pub fn id(&self) -> &NodeId {
        &self.state.info.node_id
    }

    /// Builds a view from a stored node.
    pub fn new(state: impl Into<Arc<NodeState>>) -> Self {
        let state = state.into();
        let connected = state.connection_state.status == node::ConnectionStatus::Connected;
        Self {
            state,
            connected,
            lost: false,
            returns_by: None,
        }
    }
}

/// Everything a scheduler may look at: the job, all its executions and the nodes.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The job being evaluated.
    pub job: Job,
    /// Every execution of the job, of every version.
    pub executions: Vec<Execution>,
    /// Every known node (shared by the plans made close together: `NodeManager::views`).
    pub nodes: Arc<Vec<NodeView>>,
}

/// The IPFS addresses of the nodes that advertise a root CID the job reads: where its
/// executions fetch blocks they do not hold.
pub fn ipfs_peers(job: &Job, nodes: &[NodeView]) -> Vec<String> {
    let Some(task) = job.task() else {
        return Vec::new();
    };
    let wanted: Vec<&bacalhau_models::InputSource> = task
        .input_sources
        .iter()
        .filter(|input| input.source.r#type == "ipfs")
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let mut peers: Vec<String> = nodes
        .iter()
        .filter(|node| {
            let held = &node.state.info.compute_node_info.data_locality;
            wanted.iter().any(|input| held.holds(input))
        })
        .flat_map(|node| node.state.info.compute_node_info.ipfs_addresses.clone())
        .collect();
    peers.sort();
    peers.dedup();
    peers
}

/// Why an execution is stopped.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    /// The job was stopped or reached a terminal state.
    JobTerminal(JobStateType),
    /// A newer version of the job replaces it.
    JobUpdated,
    /// Its node is gone.
    NodeLost,
    /// It ran past its execution timeout.
    TimedOut(i64),
}

impl StopReason {
    /// The message recorded in history, as upstream words it.
    pub fn message(&self) -> String {
        match self {
            Self::JobTerminal(JobStateType::Stopped) => {
                "Execution stop requested because job has been stopped".into()
            }
            Self::JobTerminal(_) => "Execution stopped due to job failure".into(),
            Self::JobUpdated => "Execution stopped for job update".into(),
            Self::NodeLost => "Execution stop requested because node has disappeared".into(),
            Self::TimedOut(secs) => {
                format!("Execution timed out. Execution took longer than {secs}s")
            }
        }
    }

    /// Whether the stop counts as a failure of the execution rather than a cancellation.
    pub fn fails_execution(&self) -> bool {
        matches!(self, Self::NodeLost | Self::TimedOut(_))
    }
}

/// The outcome of scheduling one evaluation; applied atomically by the planner.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The evaluation that produced it.
    pub eval_id: EvaluationId,
    /// The job revision the plan was computed from; a changed job voids the plan.
    pub job_revision: u64,
    /// The job it applies to.
    pub job_id: bacalhau_models::JobId,
    /// New executions, node already chosen.
    pub create: Vec<Execution>,
    /// Executions to stop.
    pub stop: Vec<(ExecutionId, StopReason)>,
    /// The revisions of the executions it stops, as its snapshot saw them: one that changed
    /// since (a node's update came in between) voids the plan, which replaced that execution
    /// on a view that no longer holds. Executions missing here are not checked.
    pub stops_seen: BTreeMap<ExecutionId, u64>,
    /// The job's new state, when it changes.
    pub job_state: Option<State<JobStateType>>,
    /// Evaluations to run later (a queued job's deadline, a timeout).
    pub follow_ups: Vec<Evaluation>,
    /// History events to record.
    pub events: Vec<JobHistory>,
    /// IPFS nodes holding the CIDs the job reads, for the new executions to fetch from.
    pub ipfs_peers: Vec<String>,
}

impl Plan {
    /// An empty plan for `eval` on `job`.
    pub fn new(eval: &Evaluation, job: &Job) -> Self {
        Self {
            eval_id: eval.id.clone(),
            job_revision: job.revision,
            job_id: job.id.clone(),
            create: Vec::new(),
            stop: Vec::new(),
            stops_seen: BTreeMap::new(),
            job_state: None,
            follow_ups: Vec::new(),
            events: Vec::new(),
            ipfs_peers: Vec::new(),
        }
    }

    /// Whether the plan changes nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty()
            && self.stop.is_empty()
            && self.job_state.is_none()
            && self.follow_ups.is_empty()
            && self.events.is_empty()
    }

    /// Records a job state change (with its history event) unless the job is already there.
    pub fn set_job_state(&mut self, job: &Job, state: State<JobStateType>, now: Timestamp) {
        if job.state.state_type == state.state_type && job.state.message == state.message {
            return;
        }
        let mut details = BTreeMap::new();
        details.insert("NewState".to_string(), state.state_type.to_string());
        details.insert(
            "PreviousState".to_string(),
            job.state.state_type.to_string(),
        );
        let message = if state.message.is_empty() {
            state.state_type.to_string()
        } else {
            format!("{}: {}", state.state_type, state.message)
        };
        self.events
            .push(job_event(job, Topic::StateUpdate, message, details, now));
        self.job_state = Some(state);
    }
}

/// A job-level history event.
pub fn job_event(
    job: &Job,
    topic: Topic,
    message: impl Into<String>,
    details: BTreeMap<String, String>,
    now: Timestamp,
) -> JobHistory {
    let timestamp = time::rfc3339(now);
    JobHistory {
        seq_num: 0,
        r#type: JobHistoryType::JobLevel,
        job_id: job.id.clone(),
        job_version: job.version,
        execution_id: None,
        event: Event {
            message: message.into(),
            topic,
            timestamp: timestamp.clone(),
            details,
        },
        time: timestamp,
        actor: String::new(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// An execution-level history event.
pub fn execution_event(
    job: &Job,
    execution_id: &ExecutionId,
    topic: Topic,
    message: impl Into<String>,
    now: Timestamp,
) -> JobHistory {
    let mut event = job_event(job, topic, message, BTreeMap::new(), now);
    event.r#type = JobHistoryType::ExecutionLevel;
    event.execution_id = Some(execution_id.clone());
    event
}

/// A scheduler for one family of job types.
pub trait Scheduler: Send + Sync {
    /// Computes the plan for `eval` from `snapshot` at time `now`; never writes anything.
    fn plan(&self, eval: &Evaluation, snapshot: &Snapshot, now: Timestamp) -> Plan;
}

/// The scheduler for a job type.
pub fn scheduler_for(job_type: JobType) -> &'static dyn Scheduler {
    match job_type {
        JobType::Batch => &batch::BatchScheduler {
            long_running: false,
        },
        JobType::Service => &batch::BatchScheduler { long_running: true },
        JobType::Ops => &all_nodes::AllNodesScheduler {
            long_running: false,
        },
        JobType::Daemon => &all_nodes::AllNodesScheduler { long_running: true },
    }
}

/// Resources one execution of `job` needs, as numbers (unparseable requests count as zero:
/// validation rejected them at submission).
pub fn job_resources(job: &Job) -> Resources {
    job.task()
        .and_then(|t| t.resources.to_resources().ok())
        .unwrap_or_default()
}

/// A new execution of `job` on `node` for `partition`.
pub fn new_execution(
    job: &Job,
    eval: &Evaluation,
    node_id: &NodeId,
    partition: u64,
    now: Timestamp,
) -> Execution {
    let mut allocated = bacalhau_models::AllocatedResources::default();
    if let Some(task) = job.task() {
        allocated
            .tasks
            .insert(task.name.clone(), job_resources(job));
    }
    let id = ExecutionId::generate();
    Execution {
        name: id.to_string(),
        id,
        namespace: job.namespace.clone(),
        eval_id: eval.id.clone(),
        node_id: node_id.clone(),
        job_id: job.id.clone(),
        job_version: job.version,
        job: None,
        allocated_resources: allocated,
        desired_state: State::new(bacalhau_models::ExecutionDesiredStateType::Running),
        compute_state: State::new(bacalhau_models::ExecutionStateType::New),
        partition_index: partition,
        revision: 1,
        create_time: now,
        modify_time: now,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;

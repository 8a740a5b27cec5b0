//! An execution: one run of a job's task on one node, and what it produced.

use crate::ids::{EvaluationId, ExecutionId, JobId, NodeId};
use crate::job::Job;
use crate::resources::Resources;
use crate::state::{ExecutionDesiredStateType, ExecutionStateType, State};
use crate::task::SpecConfig;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Resources set aside for an execution, per task name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct AllocatedResources {
    /// Task name to its resources.
    #[serde(rename = "Tasks", default)]
    pub tasks: BTreeMap<String, Resources>,
}

/// What a finished run printed and returned; stdout and stderr are capped as upstream's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RunCommandResult {
    /// Standard output, possibly truncated.
    #[serde(rename = "Stdout", default)]
    pub stdout: String,
    /// Whether `stdout` was cut short.
    #[serde(rename = "StdoutTruncated", default)]
    pub stdout_truncated: bool,
    /// Standard error, possibly truncated (lowercase key, as upstream).
    #[serde(rename = "stderr", default)]
    pub stderr: String,
    /// Whether `stderr` was cut short.
    #[serde(rename = "StderrTruncated", default)]
    pub stderr_truncated: bool,
    /// The process's exit code.
    #[serde(rename = "ExitCode", default)]
    pub exit_code: i64,
    /// Why the run failed, when it did not run to an exit code.
    #[serde(rename = "ErrorMsg", default)]
    pub error_msg: String,
}

/// One run of a job on one node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Execution {
    /// The execution's ID, `e-<uuid>`.
    #[serde(rename = "ID")]
    pub id: ExecutionId,
    /// The job's namespace.
    #[serde(rename = "Namespace", default)]
    pub namespace: String,
    /// The evaluation that created the execution.
    #[serde(rename = "EvalID", default)]
    pub eval_id: EvaluationId,
    /// A readable name for the execution.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// The node that runs it.
    #[serde(rename = "NodeID", default)]
    pub node_id: NodeId,
    /// The job it belongs to.
    #[serde(rename = "JobID", default)]
    pub job_id: JobId,
    /// The job version it runs.
    #[serde(rename = "JobVersion", default)]
    pub job_version: u64,
    /// A copy of the job, sent to the node; stored executions leave it out.
    #[serde(rename = "Job", default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Box<Job>>,
    /// Resources set aside on the node.
    #[serde(rename = "AllocatedResources", default)]
    pub allocated_resources: AllocatedResources,
    /// What the orchestrator wants of the execution.
    #[serde(rename = "DesiredState", default)]
    pub desired_state: State<ExecutionDesiredStateType>,
    /// What the node reports of it.
    #[serde(rename = "ComputeState", default)]
    pub compute_state: State<ExecutionStateType>,
    /// Where its results were published.
    #[serde(
        rename = "PublishedResult",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub published_result: Option<SpecConfig>,
    /// Its output and exit code.
    #[serde(rename = "RunOutput", default, skip_serializing_if = "Option::is_none")]
    pub run_output: Option<RunCommandResult>,
    /// The execution this one replaces, if a retry.
    #[serde(rename = "PreviousExecution", default)]
    pub previous_execution: String,
    /// The execution that replaced this one.
    #[serde(rename = "NextExecution", default)]
    pub next_execution: String,
    /// The evaluation created when this execution changed.
    #[serde(rename = "FollowupEvalID", default)]
    pub followup_eval_id: String,
    /// Which partition of the job it processes, `0..Count`.
    #[serde(rename = "PartitionIndex", default)]
    pub partition_index: u64,
    /// Bumped on every change.
    #[serde(rename = "Revision", default)]
    pub revision: u64,
    /// When it was created, in nanoseconds since the epoch.
    #[serde(rename = "CreateTime", default)]
    pub create_time: Timestamp,
    /// When it last changed, in nanoseconds since the epoch.
    #[serde(rename = "ModifyTime", default)]
    pub modify_time: Timestamp,
}

/// The detail of a failed execution's state that says whether another attempt could succeed
/// (upstream's state details are a map of strings).
pub const RETRYABLE_DETAIL: &str = "Retryable";

impl Execution {
    /// For a failed execution: whether another attempt could succeed, when its node said.
    pub fn retryable(&self) -> Option<bool> {
        match self.compute_state.details.get(RETRYABLE_DETAIL)?.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    /// Records whether another attempt could succeed, in the state's details.
    pub fn set_retryable(&mut self, retryable: bool) {
        self.compute_state
            .details
            .insert(RETRYABLE_DETAIL.to_string(), retryable.to_string());
    }

    /// The partition of the job's data this execution processes and the job's partition
    /// count: `PartitionIndex` modulo `Count`, so the replicas of a verified job (one per
    /// node, numbered past `Count`) each process the same data.
    pub fn partition(&self) -> (u64, u64) {
        let count = self
            .job
            .as_ref()
            .map_or(1, |j| u64::try_from(j.count).unwrap_or(1).max(1));
        (self.partition_index % count, count)
    }

    /// Whether the execution is finished for good.
    pub fn is_terminal(&self) -> bool {
        self.compute_state.state_type.is_terminal()
    }

    /// Whether it finished without a result, so its partition needs another run.
    pub fn is_discarded(&self) -> bool {
        self.compute_state.state_type.is_discarded()
    }
}

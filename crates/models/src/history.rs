//! Job history: one event per change of a job or one of its executions.

use crate::ids::{ExecutionId, JobId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether an event concerns the job or one execution; a string on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobHistoryType {
    /// Unknown.
    #[serde(rename = "Undefined", alias = "undefined")]
    Undefined,
    /// About the job as a whole.
    #[serde(rename = "JobLevel", alias = "job")]
    JobLevel,
    /// About one execution.
    #[serde(rename = "ExecutionLevel", alias = "execution")]
    ExecutionLevel,
}

/// What happened, for people and machines.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Event {
    /// A readable message.
    #[serde(rename = "Message", default)]
    pub message: String,
    /// The area: `Submission`, `State Update`, `Scheduling`, `Queueing`...
    #[serde(rename = "Topic", default)]
    pub topic: String,
    /// When, as RFC 3339.
    #[serde(rename = "Timestamp", default)]
    pub timestamp: String,
    /// Machine-readable details.
    #[serde(
        rename = "Details",
        default,
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub details: BTreeMap<String, String>,
}

/// One event in a job's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHistory {
    /// Position in the store's global event log; increases with every event.
    #[serde(rename = "SeqNum")]
    pub seq_num: u64,
    /// Job- or execution-level.
    #[serde(rename = "Type")]
    pub r#type: JobHistoryType,
    /// The job.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// The job version current when it happened.
    #[serde(rename = "JobVersion")]
    pub job_version: u64,
    /// The execution, for execution-level events.
    #[serde(
        rename = "ExecutionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub execution_id: Option<ExecutionId>,
    /// What happened.
    #[serde(rename = "Event")]
    pub event: Event,
    /// When, as RFC 3339.
    #[serde(rename = "Time")]
    pub time: String,
}

/// Upstream's event topics.
pub mod topics {
    /// Submission, update and rerun of a job.
    pub const SUBMISSION: &str = "Submission";
    /// A state change.
    pub const STATE_UPDATE: &str = "State Update";
    /// Placement decisions.
    pub const SCHEDULING: &str = "Scheduling";
    /// A job waiting for nodes.
    pub const QUEUEING: &str = "Queueing";
    /// A job's total timeout.
    pub const JOB_TIMEOUT: &str = "Job Timeout";
    /// An execution's timeout.
    pub const EXEC_TIMEOUT: &str = "Exec Timeout";
    /// An execution's own progress.
    pub const EXECUTION: &str = "Execution";
}

//! An evaluation: a reason to look at a job again, handed to the job type's scheduler.

use crate::ids::{EvaluationId, JobId};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// What made the orchestrator evaluate a job, with upstream's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TriggeredBy {
    /// A new job.
    #[serde(rename = "job-register")]
    JobRegister,
    /// A job was stopped.
    #[serde(rename = "job-cancel")]
    JobCancel,
    /// A job was rerun.
    #[serde(rename = "job-rerun")]
    JobRerun,
    /// A new version of a job.
    #[serde(rename = "job-update")]
    JobUpdate,
    /// A queued job's wait ended (its queue timeout or new capacity).
    #[serde(rename = "job-queue")]
    JobQueue,
    /// A job ran past its total timeout.
    #[serde(rename = "job-timeout")]
    JobTimeout,
    /// An execution failed.
    #[serde(rename = "exec-failure")]
    ExecFailure,
    /// An execution changed state.
    #[serde(rename = "exec-update")]
    ExecUpdate,
    /// An execution ran past its timeout.
    #[serde(rename = "exec-timeout")]
    ExecTimeout,
    /// A node joined.
    #[serde(rename = "node-join")]
    NodeJoin,
    /// A node left.
    #[serde(rename = "node-leave")]
    NodeLeave,
}

/// An evaluation's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EvaluationStatus {
    /// Waiting for a scheduler.
    #[serde(rename = "pending")]
    Pending,
    /// Its plan was applied.
    #[serde(rename = "complete")]
    Complete,
    /// Scheduling it failed for good.
    #[serde(rename = "failed")]
    Failed,
    /// Superseded before it ran.
    #[serde(rename = "canceled")]
    Canceled,
}

/// A request to reschedule one job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The evaluation's ID.
    #[serde(rename = "ID")]
    pub id: EvaluationId,
    /// The job's namespace.
    #[serde(rename = "Namespace")]
    pub namespace: String,
    /// The job to evaluate.
    #[serde(rename = "JobID")]
    pub job_id: JobId,
    /// Why.
    #[serde(rename = "TriggeredBy")]
    pub triggered_by: TriggeredBy,
    /// The job's priority.
    #[serde(rename = "Priority")]
    pub priority: i64,
    /// The job's type, which picks the scheduler.
    #[serde(rename = "Type")]
    pub r#type: String,
    /// Progress.
    #[serde(rename = "Status")]
    pub status: EvaluationStatus,
    /// Not before this time, in nanoseconds since the epoch; 0 for at once.
    #[serde(rename = "WaitUntil", default)]
    pub wait_until: Timestamp,
    /// When it was created.
    #[serde(rename = "CreateTime")]
    pub create_time: Timestamp,
    /// When it last changed.
    #[serde(rename = "ModifyTime")]
    pub modify_time: Timestamp,
}

impl Evaluation {
    /// A pending evaluation of `job`, to run at once.
    pub fn for_job(job: &crate::Job, triggered_by: TriggeredBy, now: Timestamp) -> Self {
        Self::new(
            job.id.clone(),
            &job.namespace,
            &job.r#type,
            job.priority,
            triggered_by,
            now,
        )
    }

    /// A pending evaluation of `job_id`, to run at once.
    pub fn new(
        job_id: JobId,
        namespace: &str,
        job_type: &str,
        priority: i64,
        triggered_by: TriggeredBy,
        now: Timestamp,
    ) -> Self {
        Self {
            id: EvaluationId::generate(),
            namespace: namespace.to_string(),
            job_id,
            triggered_by,
            priority,
            r#type: job_type.to_string(),
            status: EvaluationStatus::Pending,
            wait_until: 0,
            create_time: now,
            modify_time: now,
        }
    }
}

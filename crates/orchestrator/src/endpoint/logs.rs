//! Logs: picks the execution whose output to stream and asks its node for it over the node
//! channel (not durable: a stream ends with its connection).

use super::{JobVersions, Orchestrator, not_found};
use crate::error::OrchestratorError;

impl Orchestrator {
    /// Streams the log of one of the executions of a job's `versions`: the one named (ID or
    /// prefix), else the most recently changed one that did not fail to start.
    pub async fn logs(
        &self,
        id_or_name: &str,
        namespace: &str,
        versions: JobVersions,
        execution_id: Option<&str>,
        tail: Option<usize>,
        follow: bool,
    ) -> Result<tokio::sync::mpsc::UnboundedReceiver<crate::nodes::LogEvent>, OrchestratorError>
    {
        let job = self.job(id_or_name, namespace)?;
        let mut executions = self.store.read()?.executions_of(&job.id)?;
        executions.retain(|e| versions.covers(e.job_version, job.version));
        let execution = match execution_id {
            Some(wanted) => executions
                .iter()
                .find(|e| e.id.as_str() == wanted || e.id.as_str().starts_with(wanted))
                .ok_or_else(|| not_found("execution", wanted))?,
            None => executions
                .iter()
                .filter(|e| {
                    !matches!(
                        e.compute_state.state_type,
                        bacalhau_models::ExecutionStateType::AskForBidRejected
                            | bacalhau_models::ExecutionStateType::BidRejected
                    )
                })
                .max_by_key(|e| e.modify_time)
                .ok_or_else(|| OrchestratorError::Conflict {
                    message: match versions {
                        JobVersions::Only(version) => {
                            format!("no executions found for job {} version {version}", job.id)
                        }
                        _ => format!("no executions found for job {}", job.id),
                    },
                    hint: Some("the job has not been scheduled on a node yet".into()),
                })?,
        };
        self.nodes
            .stream_log(&execution.node_id, &execution.id, tail, follow)
            .await
            .map_err(|message| OrchestratorError::Conflict {
                message,
                hint: None,
            })
    }
}

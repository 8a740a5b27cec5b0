//! Reporting: a state change of an execution and the `ExecutionUpdate` that tells the
//! orchestrator about it, recorded together in one transaction.

use super::ComputeNode;
use crate::store::{LocalExecution, StoreError};
use bacalhau_models::{Execution, ExecutionStateType, RunCommandResult, SpecConfig};
use bacalhau_protocol::{ExecutionUpdate, Message};
use std::collections::BTreeMap;

/// What a state change reports besides the state.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) message: String,
    pub(super) run_output: Option<RunCommandResult>,
    pub(super) published_result: Option<SpecConfig>,
    pub(super) details: BTreeMap<String, String>,
    /// For a failure: whether another attempt could succeed.
    pub(super) retryable: Option<bool>,
}

impl Report {
    pub(super) fn message(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            ..Default::default()
        }
    }
}

/// The message that reports `execution` in `state`.
pub(super) fn update(execution: &Execution, state: ExecutionStateType, report: Report) -> Message {
    Message::ExecutionUpdate(ExecutionUpdate {
        execution_id: execution.id.clone(),
        job_id: execution.job_id.clone(),
        state,
        message: report.message,
        run_output: report.run_output,
        published_result: report.published_result,
        details: report.details,
        retryable: report.retryable,
    })
}

impl ComputeNode {
    /// Records a state change of an execution and queues its report, in one transaction.
    pub(super) async fn report(
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
}

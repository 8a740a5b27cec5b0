//! Applies compute nodes' execution updates to the store: idempotent, forward-only, one
//! transaction per batch, each message applied through the channel's
//! `bacalhau_channel::store::apply` together with the sequence number that makes its replay
//! harmless.

use crate::scheduler::{NodeView, execution_event};
use crate::store::{Store, StoreError, Writer};
use bacalhau_channel::store::Applied as Delivered;
use bacalhau_models::history::Topic;
use bacalhau_models::{
    Evaluation, ExecutionDesiredStateType, ExecutionId, ExecutionStateType, JobId, NodeId, State,
    Timestamp, TriggeredBy,
};
use bacalhau_protocol::ExecutionUpdate;
use std::collections::HashSet;

/// Where a state sits in an execution's life; updates never move an execution backwards.
fn progress(state: ExecutionStateType) -> u8 {
    match state {
        ExecutionStateType::Undefined => 0,
        ExecutionStateType::New | ExecutionStateType::AskForBid => 1,
        ExecutionStateType::AskForBidAccepted | ExecutionStateType::BidAccepted => 2,
        ExecutionStateType::Running => 3,
        ExecutionStateType::Publishing => 4,
        _ => 5,
    }
}

fn describe(update: &ExecutionUpdate) -> String {
    let base = match update.state {
        ExecutionStateType::BidAccepted => "Accepted by the node",
        ExecutionStateType::AskForBidRejected | ExecutionStateType::BidRejected => {
            "Rejected by the node"
        }
        ExecutionStateType::Running => "Running",
        ExecutionStateType::Publishing => "Publishing results",
        ExecutionStateType::Completed => "Completed successfully",
        ExecutionStateType::Failed => "Failed",
        ExecutionStateType::Cancelled => "Cancelled",
        other => other.as_str(),
    };
    if update.message.is_empty() {
        base.to_string()
    } else {
        format!("{base}: {}", update.message)
    }
}

/// What applying a batch of a node's messages did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Evaluations to schedule.
    pub evaluations: Vec<Evaluation>,
    /// Evaluations planned in the batch's transaction, to conclude (`worker::Context`).
    pub(crate) planned: Vec<crate::worker::Planned>,
    /// The executions whose state changed, with the history event's message (for the log).
    pub reported: Vec<(JobId, ExecutionId, String)>,
    /// The node's messages applied up to here (to acknowledge).
    pub up_to: u64,
    /// A message was missing before the rest of the batch: this one should have come. The
    /// connection is dropped, and the next handshake resumes from `up_to`.
    pub missing: Option<u64>,
}

/// The jobs a batch's evaluations may be planned in its own transaction: those the caller
/// holds in the broker, and the nodes as the scheduler sees them.
#[derive(Debug, Default)]
pub struct Inline {
    /// Jobs claimed in the broker (`EvaluationBroker::claim`).
    pub claimed: HashSet<JobId>,
    /// The nodes, for the plans.
    pub nodes: std::sync::Arc<Vec<NodeView>>,
}

/// The jobs of `messages` whose executions ended: their evaluations are worth planning in the
/// batch's transaction.
pub fn ending_jobs(messages: &[(u64, Option<ExecutionUpdate>)]) -> HashSet<JobId> {
    messages
        .iter()
        .filter_map(|(_, update)| update.as_ref())
        .filter(|update| update.state.is_terminal())
        .map(|update| update.job_id.clone())
        .collect()
}

/// The root CIDs of the results `messages` report published.
pub fn published_roots(messages: &[(u64, Option<ExecutionUpdate>)]) -> Vec<String> {
    messages
        .iter()
        .filter_map(|(_, update)| update.as_ref())
        .filter(|update| update.state == ExecutionStateType::Completed)
        .filter_map(|update| {
            bacalhau_models::content::result_cid(update.published_result.as_ref()?)
        })
        .filter_map(|cid| cid.root_cid().map(str::to_string))
        .collect()
}

/// Applies a batch of `node`'s messages in order (`None` for a kind the orchestrator ignores,
/// which still counts as applied), following the channel's rules: a replay is skipped, a gap
/// stops the batch. The updates and the new sequence number are one transaction; an ended
/// execution's evaluation is planned in it too when its job is in `inline.claimed`, else
/// stored for a worker.
pub async fn apply(
    store: &Store,
    node: &NodeId,
    messages: Vec<(u64, Option<ExecutionUpdate>)>,
    inline: Inline,
    now: Timestamp,
) -> Result<Applied, StoreError> {
    let node = node.clone();
    store
        .write(move |w| {
            let mut evaluations = Vec::new();
            let mut reported = Vec::new();
            let mut missing = None;
            for (seq, update) in messages {
                let delivered = w.apply_message(&node, seq, |w| match update {
                    Some(update) => apply_update(w, &node, &update, now),
                    None => Ok(None),
                })?;
                match delivered {
                    Delivered::Done(Some(change)) => {
                        evaluations.extend(change.evaluation);
                        reported.push((change.job_id, change.execution_id, change.message));
                    }
                    Delivered::Done(None) => {}
                    Delivered::Replay => {}
                    Delivered::Missing { expected } => {
                        missing = Some(expected);
                        break;
                    }
                }
            }
            // One plan per job, after every report of the batch is in.
            let mut planned = Vec::new();
            let mut stored = Vec::new();
            let mut planned_jobs = HashSet::new();
            for evaluation in evaluations {
                if planned_jobs.contains(&evaluation.job_id) {
                    continue;
                }
                if inline.claimed.contains(&evaluation.job_id)
                    && let Some(plan) =
                        crate::worker::plan_in(w, &evaluation, inline.nodes.clone(), now)?
                {
                    planned_jobs.insert(evaluation.job_id.clone());
                    planned.push(plan);
                    continue;
                }
                w.put_evaluation(&evaluation)?;
                stored.push(evaluation);
            }
            Ok(Applied {
                evaluations: stored,
                planned,
                reported,
                up_to: w.applied_from(&node)?,
                missing,
            })
        })
        .await
}

/// An execution's state changed by a node's report.
struct Changed {
    job_id: JobId,
    execution_id: ExecutionId,
    /// The history event's message.
    message: String,
    /// The evaluation to schedule when the execution finished (not stored yet).
    evaluation: Option<Evaluation>,
}

/// Applies one update of `node`'s; `None` when it changed nothing (a replayed or stale one).
fn apply_update(
    w: &mut Writer<'_, '_>,
    node: &NodeId,
    update: &ExecutionUpdate,
    now: Timestamp,
) -> Result<Option<Changed>, StoreError> {
    let Some(mut execution) = w.execution(&update.job_id, &update.execution_id)? else {
        tracing::warn!(execution_id = %update.execution_id, "update for an unknown execution");
        return Ok(None);
    };
    // A node can only speak for its own executions; a terminal execution (stopped or given up
    // on by the orchestrator) stays as it is, so nothing completes twice.
    if execution.node_id != *node
        || execution.is_terminal()
        || progress(update.state) <= progress(execution.compute_state.state_type)
    {
        return Ok(None);
    }
    let Some(job) = w.job(&execution.job_id)? else {
        return Ok(None);
    };
    execution.compute_state = State::with_message(update.state, update.message.clone());
    execution.compute_state.details = update.details.clone();
    if let Some(retryable) = update.retryable {
        execution.set_retryable(retryable);
    }
    if update.state.is_terminal() {
        execution.desired_state = State::new(ExecutionDesiredStateType::Stopped);
    }
    if update.run_output.is_some() {
        execution.run_output = update.run_output.clone();
    }
    if update.published_result.is_some() {
        execution.published_result = update.published_result.clone();
    }
    execution.revision += 1;
    execution.modify_time = now;
    w.put_execution(&execution)?;
    let message = describe(update);
    w.add_history(
        execution_event(&job, &execution.id, Topic::Execution, message.clone(), now)
            .by(format!("node:{node}")),
    )?;
    if update.state == ExecutionStateType::Completed {
        crate::lineage::record_completion(w, &job, &execution, now)?;
    }
    let mut changed = Changed {
        job_id: job.id.clone(),
        execution_id: execution.id.clone(),
        message,
        evaluation: None,
    };
    if !update.state.is_terminal() {
        return Ok(Some(changed));
    }
    let trigger = if update.state == ExecutionStateType::Failed {
        TriggeredBy::ExecFailure
    } else {
        TriggeredBy::ExecUpdate
    };
    changed.evaluation = Some(Evaluation::for_job(&job, trigger, now));
    Ok(Some(changed))
}

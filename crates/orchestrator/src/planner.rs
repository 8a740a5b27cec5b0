//! Applies a scheduler's plan: the only writer of jobs and executions after submission, one
//! transaction per plan, with an optimistic check that the job did not change meanwhile.

use crate::scheduler::Plan;
use crate::store::{Store, StoreError, Writer};
use bacalhau_models::history::Topic;
use bacalhau_models::{
    Evaluation, EvaluationId, Execution, ExecutionDesiredStateType, ExecutionStateType, JobId,
    State, Timestamp,
};
use bacalhau_protocol::Message;

/// Why a plan was not applied.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The job changed after the snapshot was taken; schedule again on fresh state.
    #[error("job {job_id} changed since the plan was computed (revision {expected} → {found})")]
    Stale {
        /// The job.
        job_id: JobId,
        /// The revision the plan was based on.
        expected: u64,
        /// The revision found.
        found: u64,
    },
    /// An execution the plan stops changed after the snapshot was taken; schedule again.
    #[error("execution {execution_id} of job {job_id} changed since the plan was computed")]
    ExecutionChanged {
        /// The job.
        job_id: JobId,
        /// The execution.
        execution_id: bacalhau_models::ExecutionId,
    },
    /// The job no longer exists.
    #[error("job {0} not found")]
    JobGone(JobId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an applied plan changed, for the caller to act on after the commit.
#[derive(Debug, Default)]
pub struct Applied {
    /// Executions created: to be sent to their nodes.
    pub created: Vec<Execution>,
    /// Executions stopped: their nodes must cancel them.
    pub stopped: Vec<Execution>,
    /// Evaluations to hand to the broker.
    pub follow_ups: Vec<Evaluation>,
}

/// Writes `plan` atomically, deleting its evaluation and the ones it `superseded`.
pub async fn apply(
    store: &Store,
    plan: Plan,
    superseded: Vec<EvaluationId>,
    now: Timestamp,
) -> Result<Applied, PlanError> {
    store
        .write(move |w| apply_in(w, plan, &superseded, now))
        .await
}

/// Writes `plan` in the caller's transaction: [`apply`]'s body, for a plan made in the same
/// transaction as the change that called for it (see `worker::plan_in`).
pub(crate) fn apply_in(
    w: &mut Writer<'_, '_>,
    plan: Plan,
    superseded: &[EvaluationId],
    now: Timestamp,
) -> Result<Applied, PlanError> {
    // Checks first: nothing is written unless the plan still holds.
    let Some(mut job) = w.job(&plan.job_id)? else {
        return Err(PlanError::JobGone(plan.job_id.clone()));
    };
    if job.revision != plan.job_revision {
        return Err(PlanError::Stale {
            job_id: job.id.clone(),
            expected: plan.job_revision,
            found: job.revision,
        });
    }
    let mut to_stop = Vec::with_capacity(plan.stop.len());
    for (id, reason) in &plan.stop {
        let Some(execution) = w.execution(&plan.job_id, id)? else {
            continue;
        };
        // The plan may have replaced this execution (its node was lost) while the node
        // reported it finished: running the replacement would run the job twice.
        if let Some(&seen) = plan.stops_seen.get(id)
            && seen != execution.revision
        {
            return Err(PlanError::ExecutionChanged {
                job_id: job.id.clone(),
                execution_id: id.clone(),
            });
        }
        if !execution.is_terminal() {
            to_stop.push((execution, reason.clone()));
        }
    }

    let mut applied = Applied::default();
    for (mut execution, reason) in to_stop {
        let state = if reason.fails_execution() {
            ExecutionStateType::Failed
        } else {
            ExecutionStateType::Cancelled
        };
        execution.desired_state =
            State::with_message(ExecutionDesiredStateType::Stopped, reason.message());
        execution.compute_state = State::with_message(state, reason.message());
        execution.revision += 1;
        execution.modify_time = now;
        w.put_execution(&execution)?;
        w.enqueue_message(
            &execution.node_id,
            &Message::CancelExecution {
                execution_id: execution.id.clone(),
                reason: reason.message(),
            },
        )?;
        w.add_history(crate::scheduler::execution_event(
            &job,
            &execution.id,
            Topic::Scheduling,
            reason.message(),
            now,
        ))?;
        applied.stopped.push(execution);
    }
    if let Some(state) = plan.job_state.clone() {
        job.state = state;
    }
    for execution in &plan.create {
        w.put_execution(execution)?;
        let mut with_job = execution.clone();
        with_job.job = Some(Box::new(job.clone()));
        w.enqueue_message(
            &execution.node_id,
            &Message::RunExecution {
                execution: Box::new(with_job),
                ipfs_peers: plan.ipfs_peers.clone(),
            },
        )?;
    }
    let job_changed =
        plan.job_state.is_some() || !plan.create.is_empty() || !applied.stopped.is_empty();
    if job_changed {
        job.revision += 1;
        job.modify_time = now;
        w.put_job(&job)?;
    }
    for event in plan.events {
        w.add_history(event)?;
    }
    for evaluation in &plan.follow_ups {
        w.put_evaluation(evaluation)?;
    }
    w.delete_evaluation(&plan.eval_id)?;
    for id in superseded {
        w.delete_evaluation(id)?;
    }
    applied.created = plan.create;
    applied.follow_ups = plan.follow_ups;
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::StopReason;
    use bacalhau_models::{ExecutionId, Job, NodeId, TriggeredBy};

    /// A plan that replaces an execution on a lost node, computed before that node's report of
    /// the execution finishing was applied, is void: applying it would run the job twice.
    #[tokio::test]
    async fn a_plan_whose_stopped_execution_changed_meanwhile_is_void() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store.redb")).unwrap();
        let job = Job {
            id: JobId::from("j-1"),
            name: "j".into(),
            namespace: "default".into(),
            r#type: "batch".into(),
            version: 1,
            ..Default::default()
        };
        let execution = Execution {
            id: ExecutionId::from("e-1"),
            job_id: job.id.clone(),
            node_id: NodeId::from("n-lost"),
            compute_state: State::new(ExecutionStateType::Running),
            revision: 3,
            ..Default::default()
        };
        let (stored_job, stored) = (job.clone(), execution.clone());
        store
            .write(move |w| {
                w.put_job(&stored_job)?;
                w.put_execution(&stored)
            })
            .await
            .unwrap();

        let eval = bacalhau_models::Evaluation::for_job(&job, TriggeredBy::NodeLeave, 0);
        let mut plan = Plan::new(&eval, &job);
        plan.stop.push((execution.id.clone(), StopReason::NodeLost));
        plan.stops_seen.insert(execution.id.clone(), 3);
        plan.create.push(Execution {
            id: ExecutionId::from("e-2"),
            job_id: job.id.clone(),
            node_id: NodeId::from("n-other"),
            ..Default::default()
        });

        // The node's report lands first: the execution completed.
        let mut finished = execution.clone();
        finished.compute_state = State::new(ExecutionStateType::Completed);
        finished.revision = 4;
        store
            .write(move |w| w.put_execution(&finished))
            .await
            .unwrap();

        let outcome = apply(&store, plan, vec![], 1).await;
        assert!(
            matches!(outcome, Err(PlanError::ExecutionChanged { .. })),
            "{outcome:?}"
        );
        let read = store.read().unwrap();
        assert!(
            read.execution(&job.id, &ExecutionId::from("e-2"))
                .unwrap()
                .is_none()
        );
    }
}

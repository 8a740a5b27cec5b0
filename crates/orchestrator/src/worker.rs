//! Scheduler workers: take an evaluation from the broker, snapshot the job, plan, apply.

use crate::broker::{EvaluationBroker, Work};
use crate::nodes::NodeManager;
use crate::planner::{self, Applied, PlanError};
use crate::scheduler::{Snapshot, scheduler_for};
use crate::store::{Store, StoreError};
use bacalhau_models::{Evaluation, time};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Runs the `scheduler-worker` loop until the broker closes.
pub async fn run(
    name: String,
    store: Store,
    broker: Arc<EvaluationBroker>,
    nodes: Arc<NodeManager>,
) {
    tracing::debug!(worker = %name, "scheduler worker started");
    while let Some(work) = broker.dequeue().await {
        let job_id = work.evaluation.job_id.clone();
        let evaluation = work.evaluation.clone();
        match process(&store, &nodes, work).await {
            Ok(Some(applied)) => {
                nodes.plan_applied(&applied);
                for follow_up in applied.follow_ups {
                    broker.enqueue(follow_up);
                }
                broker.ack(&job_id);
            }
            Ok(None) => broker.ack(&job_id),
            Err(ProcessError::Plan(PlanError::Stale { .. })) => {
                // Someone changed the job meanwhile: plan again on fresh state, at once.
                broker.nack(evaluation, Duration::ZERO);
            }
            Err(e) => {
                tracing::warn!(worker = %name, job = %job_id, error = %e, "evaluation failed; retrying");
                broker.nack(evaluation, Duration::from_secs(1));
            }
        }
    }
    tracing::debug!(worker = %name, "scheduler worker stopped");
}

#[derive(Debug, thiserror::Error)]
enum ProcessError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

async fn process(
    store: &Store,
    nodes: &NodeManager,
    work: Work,
) -> Result<Option<Applied>, ProcessError> {
    let Work {
        evaluation,
        superseded,
    } = work;
    let now = time::to_nanos(SystemTime::now());
    let snapshot = {
        let reader = store.read()?;
        let Some(job) = reader.job(&evaluation.job_id)? else {
            drop(reader);
            forget(store, &evaluation, superseded).await?;
            return Ok(None);
        };
        Snapshot {
            executions: reader.executions_of(&job.id)?,
            nodes: nodes.views(now),
            job,
        }
    };
    let Some(job_type) = snapshot.job.job_type() else {
        tracing::error!(job = %snapshot.job.id, r#type = %snapshot.job.r#type, "stored job has an unknown type");
        forget(store, &evaluation, superseded).await?;
        return Ok(None);
    };
    let plan = scheduler_for(job_type).plan(&evaluation, &snapshot, now);
    let applied = planner::apply(store, plan, superseded, now).await?;
    tracing::trace!(job = %snapshot.job.id, created = applied.created.len(), "plan applied");
    Ok(Some(applied))
}

/// Deletes evaluations that have nothing left to evaluate.
async fn forget(
    store: &Store,
    evaluation: &Evaluation,
    superseded: Vec<bacalhau_models::EvaluationId>,
) -> Result<(), StoreError> {
    let id = evaluation.id.clone();
    store
        .write(move |w| {
            w.delete_evaluation(&id)?;
            for other in &superseded {
                w.delete_evaluation(other)?;
            }
            Ok::<_, StoreError>(())
        })
        .await
}
